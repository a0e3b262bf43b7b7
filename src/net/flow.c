/* net: the flow-level model, max-min fair sharing by progressive filling; see net.h.
 *
 * Progressive filling (Bertsekas and Gallager, Data Networks, 6.5.2; SimGrid's lmm solver does the
 * same for its parallel-task model): raise the rate of every unfrozen transfer together until a
 * link saturates; freeze the transfers on that link; repeat. Rates rise in bytes per second on
 * each transfer's most loaded link, not in fractions of the transfer: a 50 MB send beside a 2 GB
 * all-reduce gets the same bandwidth as the all-reduce, as two flows do, and finishes first. Rounds <= active transfers, each
 * O(loads of the active transfers). Everything runs in a fixed order, so results are
 * deterministic. */
#include "net.h"

#include <math.h>
#include <string.h>

typedef struct {
    const NetLoad *loads;
    int n_loads;
    double scale;     /* bytes on each link = loads[k].bytes * scale */
    double peak;      /* bytes on its most loaded link: fairness is in bytes per second there */
    double remaining; /* fraction of the load still to move, 1 at the start */
    double rate;      /* fraction per second */
    int64_t finish_ns;
    bool frozen;
} Transfer;

struct NetFlows {
    const NetTopo *t;
    GArray *transfers; /* of Transfer, by id */
    GArray *active;    /* of int: ids in progress, in start order */
    int64_t now;
    double *sum;      /* per link: sum of unfrozen loads (scratch) */
    double *residual; /* per link: capacity left (scratch) */
    double *util;     /* per link: current utilisation */
    NetLinkStats *stats;
    uint32_t *busy;   /* links with util > 0 now */
    int n_busy;
    GArray *samples;  /* of NetUtilSample */
};

NetFlows *net_flows_new(const NetTopo *t)
{
    NetFlows *f = g_new0(NetFlows, 1);
    f->t = t;
    f->transfers = g_array_new(FALSE, FALSE, sizeof(Transfer));
    f->active = g_array_new(FALSE, FALSE, sizeof(int));
    f->sum = g_new0(double, t->n_links);
    f->residual = g_new0(double, t->n_links);
    f->util = g_new0(double, t->n_links);
    f->stats = g_new0(NetLinkStats, t->n_links);
    f->busy = g_new(uint32_t, t->n_links);
    f->samples = g_array_new(FALSE, TRUE, sizeof(NetUtilSample));
    return f;
}

void net_flows_free(NetFlows *f)
{
    if (!f)
        return;
    g_array_free(f->transfers, TRUE);
    g_array_free(f->active, TRUE);
    g_free(f->sum);
    g_free(f->residual);
    g_free(f->util);
    g_free(f->stats);
    g_free(f->busy);
    g_array_free(f->samples, TRUE);
    g_free(f);
}

static Transfer *tr(NetFlows *f, int id)
{
    return &g_array_index(f->transfers, Transfer, id);
}

int net_flows_add(NetFlows *f, int64_t now, const NetLoad *loads, int n_loads, double scale)
{
    g_assert(now == f->now || (f->active->len == 0 && now >= f->now));
    f->now = now;
    double peak = 0;
    for (int k = 0; k < n_loads; k++)
        peak = MAX(peak, loads[k].bytes * scale);
    Transfer t = {loads, n_loads, scale, peak, 1.0, 0, now, false};
    g_array_append_val(f->transfers, t);
    int id = (int)f->transfers->len - 1;
    g_array_append_val(f->active, id);
    return id;
}

void net_flows_advance(NetFlows *f, int64_t now)
{
    g_assert(now >= f->now);
    double dt = (double)(now - f->now) * 1e-9;
    if (dt > 0) {
        for (guint i = 0; i < f->active->len; i++) {
            Transfer *t = tr(f, g_array_index(f->active, int, i));
            double step = MIN(t->remaining, t->rate * dt);
            t->remaining -= step;
            for (int k = 0; k < t->n_loads; k++)
                f->stats[t->loads[k].link].bytes += t->loads[k].bytes * t->scale * step;
        }
        for (int i = 0; i < f->n_busy; i++)
            f->stats[f->busy[i]].busy_ns += now - f->now;
    }
    f->now = now;
}

static void sample(NetFlows *f)
{
    NetUtilSample s = {.time_ns = f->now};
    for (int i = 0; i < f->n_busy; i++) {
        uint32_t l = f->busy[i];
        NetLinkKind k = net_link_kind(f->t, l);
        s.util[k] = MAX(s.util[k], (float)f->util[l]);
    }
    if (f->samples->len > 0) {
        NetUtilSample *last = &g_array_index(f->samples, NetUtilSample, f->samples->len - 1);
        if (memcmp(last->util, s.util, sizeof s.util) == 0)
            return;
        if (last->time_ns == s.time_ns) {
            *last = s;
            return;
        }
    }
    g_array_append_val(f->samples, s);
}

int64_t net_flows_reschedule(NetFlows *f)
{
    const double *cap = f->t->capacity_Bps;
    for (int i = 0; i < f->n_busy; i++)
        f->util[f->busy[i]] = 0;
    f->n_busy = 0;
    int n = (int)f->active->len;
    /* Links in use: residual capacity; f->busy lists them. */
    for (int i = 0; i < n; i++) {
        Transfer *t = tr(f, g_array_index(f->active, int, i));
        t->rate = 0;
        t->frozen = t->n_loads == 0 || t->remaining <= 0 || t->peak <= 0;
        for (int k = 0; k < t->n_loads; k++) {
            uint32_t l = t->loads[k].link;
            if (f->util[l] == 0) {
                f->util[l] = -1; /* mark: listed */
                f->busy[f->n_busy++] = l;
                f->residual[l] = cap[l];
            }
        }
    }
    int unfrozen = 0;
    for (int i = 0; i < n; i++)
        unfrozen += !tr(f, g_array_index(f->active, int, i))->frozen;
    while (unfrozen > 0) {
        for (int i = 0; i < f->n_busy; i++)
            f->sum[f->busy[i]] = 0;
        for (int i = 0; i < n; i++) {
            Transfer *t = tr(f, g_array_index(f->active, int, i));
            if (!t->frozen)
                for (int k = 0; k < t->n_loads; k++)
                    f->sum[t->loads[k].link] += t->loads[k].bytes * t->scale / t->peak;
        }
        double delta = INFINITY;
        for (int i = 0; i < f->n_busy; i++) {
            uint32_t l = f->busy[i];
            if (f->sum[l] > 0)
                delta = MIN(delta, f->residual[l] / f->sum[l]);
        }
        if (!isfinite(delta)) /* only links of infinite capacity */
            delta = 0;
        for (int i = 0; i < f->n_busy; i++)
            f->residual[f->busy[i]] -= delta * f->sum[f->busy[i]];
        for (int i = 0; i < n; i++) {
            Transfer *t = tr(f, g_array_index(f->active, int, i));
            if (t->frozen)
                continue;
            t->rate += delta / t->peak;
            bool saturated = delta == 0;
            for (int k = 0; k < t->n_loads && !saturated; k++) {
                uint32_t l = t->loads[k].link;
                saturated = f->residual[l] <= 1e-9 * cap[l];
            }
            if (saturated) {
                t->frozen = true;
                unfrozen--;
            }
        }
    }
    for (int i = 0; i < f->n_busy; i++) {
        uint32_t l = f->busy[i];
        f->util[l] = isfinite(cap[l]) ? (cap[l] - f->residual[l]) / cap[l] : 0;
        f->stats[l].peak_util = MAX(f->stats[l].peak_util, f->util[l]);
    }
    sample(f);
    int64_t next = -1;
    for (int i = 0; i < n; i++) {
        Transfer *t = tr(f, g_array_index(f->active, int, i));
        if (t->remaining <= 0 || t->rate <= 0 || !isfinite(t->remaining / t->rate))
            t->finish_ns = f->now; /* nothing to move, or only infinite links */
        else
            t->finish_ns = f->now + (int64_t)ceil(t->remaining / t->rate * 1e9);
        if (next < 0 || t->finish_ns < next)
            next = t->finish_ns;
    }
    return next;
}

int net_flows_complete(NetFlows *f, int64_t now, int *ids, int max)
{
    int n = 0;
    guint keep = 0;
    for (guint i = 0; i < f->active->len; i++) {
        int id = g_array_index(f->active, int, i);
        Transfer *t = tr(f, id);
        if (t->finish_ns <= now && n < max) {
            ids[n++] = id;
            t->remaining = 0;
        } else {
            g_array_index(f->active, int, keep++) = id;
        }
    }
    g_array_set_size(f->active, keep);
    return n;
}

int net_flows_active(const NetFlows *f)
{
    return (int)f->active->len;
}

const NetLinkStats *net_flows_stats(const NetFlows *f)
{
    return f->stats;
}

const NetUtilSample *net_flows_samples(const NetFlows *f, int *n)
{
    *n = (int)f->samples->len;
    return (const NetUtilSample *)f->samples->data;
}
