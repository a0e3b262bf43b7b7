/* flow_steady: the flow model's side of the engine's steady-state skip (src/core/sim_steady.c):
 * the statistics logged over one period, a snapshot of the state to compare periods by, and
 * advancing the state by whole periods. Internal to src/net. */
#include "flow_priv.h"

#include <string.h>

void net_flows_unmark(NetFlows *f)
{
    if (f->log)
        g_array_free(f->log, TRUE);
    f->log = NULL;
}

void net_flows_mark(NetFlows *f)
{
    if (!f->log)
        f->log = g_array_new(FALSE, FALSE, sizeof(StatAdd));
    g_array_set_size(f->log, 0);
    f->mark_busy_ns = g_renew(int64_t, f->mark_busy_ns, MAX(1, f->n_classes));
    f->mark_classes = f->n_classes;
    for (int c = 0; c < f->n_classes; c++)
        f->mark_busy_ns[c] = f->cls[c].stats.busy_ns;
    f->mark_samples = f->samples->len;
    if (f->samples->len > 0)
        f->mark_last = g_array_index(f->samples, NetUtilSample, f->samples->len - 1);
}

#define PUT(x) g_byte_array_append(out, (const guint8 *)&(x), sizeof(x))

void net_flows_snapshot(const NetFlows *f, int64_t origin_ns, GByteArray *out)
{
    int64_t now = f->now - origin_ns;
    PUT(now);
    PUT(f->n_classes);
    guint n_patterns = f->patterns->len, n_active = f->active->len;
    guint n_dirty = f->dirty->len;
    PUT(n_patterns);
    PUT(n_active);
    /* transfer ids are labels (which one is reused does not change rates): written as their
     * place in start order */
    int *rank = g_new(int, MAX(1, f->transfers->len));
    for (guint i = 0; i < f->transfers->len; i++)
        rank[i] = -1;
    for (guint i = 0; i < n_active; i++)
        rank[g_array_index(f->active, int, i)] = (int)i;
    for (guint i = 0; i < n_active; i++) {
        int id = g_array_index(f->active, int, i);
        const Transfer *t = &g_array_index(f->transfers, Transfer, id);
        int64_t finish = t->finish_ns - origin_ns;
        uint8_t frozen = t->frozen;
        PUT(t->pattern);
        PUT(t->scale);
        PUT(t->peak);
        PUT(t->remaining);
        PUT(t->rate);
        PUT(finish);
        PUT(frozen);
    }
    PUT(n_dirty);
    g_byte_array_append(out, (const guint8 *)f->dirty->data, (guint)(sizeof(uint32_t) * n_dirty));
    PUT(f->n_busy);
    g_byte_array_append(out, (const guint8 *)f->busy, (guint)(sizeof(uint32_t) * f->n_busy));
    g_byte_array_append(out, (const guint8 *)f->busy_util, (guint)(sizeof(float) * f->n_busy));
    for (int c = 0; c < f->n_classes; c++) {
        const LinkClass *lc = &f->cls[c];
        uint8_t listed = lc->listed;
        PUT(lc->util);
        PUT(listed);
        PUT(lc->n_users);
        for (int u = 0; u < lc->n_users; u++)
            PUT(rank[lc->users[u]]);
    }
    g_free(rank);
    guint n_samples = f->samples->len;
    if (n_samples > 0) {
        const NetUtilSample *last = &g_array_index(f->samples, NetUtilSample, n_samples - 1);
        int64_t time = last->time_ns - origin_ns;
        PUT(time);
        g_byte_array_append(out, (const guint8 *)last->util, sizeof last->util);
    }
}

bool net_flows_can_skip(const NetFlows *f)
{
    if (!f->log || f->mark_classes != f->n_classes)
        return false;
    if (f->mark_samples == 0)
        return true;
    const NetUtilSample *s = &g_array_index(f->samples, NetUtilSample, f->mark_samples - 1);
    return s->time_ns == f->mark_last.time_ns &&
           memcmp(s->util, f->mark_last.util, sizeof s->util) == 0;
}

void net_flows_skip(NetFlows *f, int64_t periods, int64_t period_ns)
{
    g_assert(net_flows_can_skip(f));
    for (int64_t j = 0; j < periods; j++)
        for (guint i = 0; i < f->log->len; i++) {
            const StatAdd *a = &g_array_index(f->log, StatAdd, i);
            f->cls[a->cls].stats.bytes += a->bytes;
        }
    for (int c = 0; c < f->n_classes; c++)
        f->cls[c].stats.busy_ns += periods * (f->cls[c].stats.busy_ns - f->mark_busy_ns[c]);
    guint len = f->samples->len;
    for (int64_t j = 1; j <= periods; j++)
        for (guint i = f->mark_samples; i < len; i++) {
            NetUtilSample s = g_array_index(f->samples, NetUtilSample, i);
            s.time_ns += j * period_ns;
            g_array_append_val(f->samples, s);
        }
    f->now += periods * period_ns;
    for (guint i = 0; i < f->active->len; i++)
        g_array_index(f->transfers, Transfer, g_array_index(f->active, int, i)).finish_ns +=
            periods * period_ns;
}
