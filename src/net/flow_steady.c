/* flow_steady: the flow model's side of the engine's steady-state skip (src/core/sim_steady.c):
 * the statistics logged over one period, a snapshot of the state to compare periods by, and
 * advancing the state by whole periods. Internal to src/net. */
#include "flow_priv.h"

#include <stdlib.h>
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
    for (int c = 0; c < f->n_classes; c++) {
        flow_busy_flush(&f->cls[c], f->now);
        f->mark_busy_ns[c] = f->cls[c].stats.busy_ns;
    }
    f->mark_samples = f->samples->len;
    if (f->samples->len > 0)
        f->mark_last = g_array_index(f->samples, NetUtilSample, f->samples->len - 1);
}

#define PUT(x) g_byte_array_append(out, (const guint8 *)&(x), sizeof(x))
/* the next field's name, when the caller asked for them */
#define FIELD(name, owner, index) NET_SNAP_FIELD(fields, out, name, owner, index)

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return (a > b) - (a < b);
}

static int cmp_int(const void *x, const void *y)
{
    int a = *(const int *)x, b = *(const int *)y;
    return (a > b) - (a < b);
}

void net_flows_snapshot(const NetFlows *f, int64_t origin_ns, GByteArray *out, GArray *fields)
{
    FIELD("flows: now", -1, -1);
    int64_t now = f->now - origin_ns;
    PUT(now);
    PUT(f->n_classes);
    guint n_patterns = f->patterns->len, n_active = (guint)f->active.n;
    guint n_dirty = (guint)f->dirty.n;
    FIELD("flows: patterns, transfers in flight", -1, -1);
    PUT(n_patterns);
    PUT(n_active);
    /* transfer ids are labels (which one is reused does not change rates): written as their
     * place in start order */
    int *rank = g_new(int, MAX(1, f->transfers->len));
    for (guint i = 0; i < f->transfers->len; i++)
        rank[i] = -1;
    for (guint i = 0; i < n_active; i++)
        rank[f->active.v[i]] = (int)i;
    for (guint i = 0; i < n_active; i++) {
        int id = f->active.v[i];
        const Transfer *t = &g_array_index(f->transfers, Transfer, id);
        int64_t finish = t->finish_ns - origin_ns;
        uint8_t frozen = t->frozen;
        FIELD("flows: transfer pattern", (int)i, -1);
        PUT(t->pattern);
        FIELD("flows: transfer scale", (int)i, -1);
        PUT(t->scale);
        FIELD("flows: transfer peak", (int)i, -1);
        PUT(t->peak);
        FIELD("flows: transfer rate cap", (int)i, -1);
        PUT(t->max_rate);
        int64_t since = t->since - origin_ns;
        FIELD("flows: transfer remaining, since", (int)i, -1);
        PUT(t->remaining);
        PUT(since);
        FIELD("flows: transfer rate", (int)i, -1);
        PUT(t->rate);
        FIELD("flows: transfer finish_ns", (int)i, -1);
        PUT(finish);
        FIELD("flows: transfer frozen", (int)i, -1);
        PUT(frozen);
    }
    /* Sets written as sets, in a canonical order: the dirty classes (sorted, once each), the
     * busy classes (sorted, each with its utilisation) and each class's users (their places in
     * start order, sorted). Their order in the model's arrays is history (a class or user that
     * leaves is replaced by the last one), and it never reaches a result: dirty only seeds the
     * component (collect_component marks classes once), users only extend it, and the order of
     * the component's classes (f->queue) only orders per-class updates and a minimum; busy is
     * read by sample (a maximum per kind) and flow_busy_flush (integer sums). Written as
     * they lie, the 1T-parameter interleaved pipeline's periods differed in nothing but the
     * order of its busy list, and were never proven. */
    uint32_t *set = g_new(uint32_t, MAX(1, MAX((int)n_dirty, MAX(f->n_busy, f->n_classes))));
    guint n_set = 0;
    if (n_dirty > 0)
        memcpy(set, f->dirty.v, sizeof(uint32_t) * n_dirty);
    qsort(set, n_dirty, sizeof *set, cmp_u32);
    for (guint i = 0; i < n_dirty; i++)
        if (n_set == 0 || set[n_set - 1] != set[i])
            set[n_set++] = set[i];
    FIELD("flows: dirty classes", -1, -1);
    PUT(n_set);
    g_byte_array_append(out, (const guint8 *)set, (guint)(sizeof(uint32_t) * n_set));
    memcpy(set, f->busy, sizeof(uint32_t) * (size_t)f->n_busy);
    qsort(set, (size_t)f->n_busy, sizeof *set, cmp_u32);
    FIELD("flows: busy classes", -1, -1);
    PUT(f->n_busy);
    for (int i = 0; i < f->n_busy; i++) {
        float util = f->busy_util[f->cls[set[i]].busy_pos];
        PUT(set[i]);
        PUT(util);
    }
    for (int c = 0; c < f->n_classes; c++) {
        const LinkClass *lc = &f->cls[c];
        uint8_t listed = lc->listed;
        FIELD("flows: link class util", -1, c);
        PUT(lc->util);
        FIELD("flows: link class listed, users", -1, c);
        PUT(listed);
        PUT(lc->n_users);
        int *users = g_new(int, MAX(1, lc->n_users));
        for (int u = 0; u < lc->n_users; u++)
            users[u] = rank[lc->users[u]];
        qsort(users, (size_t)lc->n_users, sizeof *users, cmp_int);
        g_byte_array_append(out, (const guint8 *)users, (guint)(sizeof(int) * lc->n_users));
        g_free(users);
    }
    g_free(set);
    g_free(rank);
    guint n_samples = f->samples->len;
    if (n_samples > 0) {
        const NetUtilSample *last = &g_array_index(f->samples, NetUtilSample, n_samples - 1);
        int64_t time = last->time_ns - origin_ns;
        FIELD("flows: last sample", -1, -1);
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
    /* The same products added to each class in the same order as the period's rate segments
     * did (flow.c integrate): the same bits. The products are formed once (bytes * scale *
     * step, as integrate rounds them), then added into the classes' bytes (NetFlows.bytes) as
     * `periods` repeats of the period would (net_repeat_adds: whole runs of periods at once
     * where a sum stays in its binade). */
    int n_adds = 0;
    for (guint i = 0; i < f->log->len; i++)
        n_adds += g_array_index(f->log, StatAdd, i).n_entries;
    double **add_to = g_new(double *, MAX(1, n_adds));
    double *add_bytes = g_new(double, MAX(1, n_adds));
    n_adds = 0;
    for (guint i = 0; i < f->log->len; i++) {
        const StatAdd *a = &g_array_index(f->log, StatAdd, i);
        const GArray *entries = g_array_index(f->patterns, FlowPattern, a->pattern).entries;
        const NetLoad *e = (const NetLoad *)entries->data;
        g_assert((int)entries->len == a->n_entries);
        for (int k = 0; k < a->n_entries; k++, n_adds++) {
            add_to[n_adds] = &f->bytes[e[k].link];
            add_bytes[n_adds] = e[k].bytes * a->scale * a->step;
        }
    }
    net_repeat_adds(add_to, add_bytes, n_adds, periods);
    g_free(add_to);
    g_free(add_bytes);
    for (int c = 0; c < f->n_classes; c++) {
        flow_busy_flush(&f->cls[c], f->now);
        f->cls[c].stats.busy_ns += periods * (f->cls[c].stats.busy_ns - f->mark_busy_ns[c]);
        f->cls[c].busy_since += periods * period_ns; /* the skipped periods are counted */
    }
    guint len = f->samples->len;
    for (int64_t j = 1; j <= periods; j++)
        for (guint i = f->mark_samples; i < len; i++) {
            NetUtilSample s = g_array_index(f->samples, NetUtilSample, i);
            s.time_ns += j * period_ns;
            g_array_append_val(f->samples, s);
        }
    f->now += periods * period_ns;
    f->none_due = false;
    f->utils_moved = true;       /* the next sample is computed and compared, as after any change */
    if (f->next_ns != INT64_MAX) /* every finish moves alike: the earliest stays the earliest */
        f->next_ns += periods * period_ns;
    for (int i = 0; i < f->active.n; i++) {
        Transfer *t = &g_array_index(f->transfers, Transfer, f->active.v[i]);
        t->finish_ns += periods * period_ns;
        t->since += periods * period_ns; /* its segment moves along with it */
    }
}
