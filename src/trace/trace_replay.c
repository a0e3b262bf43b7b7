/* trace: replaying a profiler trace from its dependencies, and re-costing its collectives at
 * another scale (fsdpsim trace whatif; see trace.h).
 *
 * Every GPU activity starts at the latest of its dependencies' replayed ends, each plus the lag
 * measured behind it capped at REPLAY_LAG_CAP_US (so a dependency that was not binding cannot
 * hold the activity back, and one that is missing shows as replay error):
 *   launch        the launch call on its host thread, replayed;
 *   stream order  the previous activity on its stream;
 *   cross-stream  a cudaStreamWaitEvent call: the next activity its host thread launches (else
 *                 the next any thread launches) waits for the last one launched before the call
 *                 on another stream (the trace records
 *                 no event ids, so the pairing is inferred); and when nothing else explains a
 *                 measured start, the activity on another stream that ended last before it;
 *   host sync     a cuda*Synchronize or cudaMemcpy call waits for the activity that ended last
 *                 inside it; the host thread's later calls move with the call's replayed end.
 * A collective matched across ranks ends, on each rank, at the replayed latest arrival plus that
 * rank's measured end - latest arrival (times a factor for what-if). The order of processing is
 * the measured time order of all ranks together (GPU activities by start, host syncs by end),
 * which every dependency respects. O(activities x log) per replay. */
#include "trace.h"
#include "trace_deps.h"

#include "../coll/coll.h"
#include "../hw/hw.h"
#include "../util/cfg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RANK(set, i) ((TraceRank *)g_ptr_array_index((set)->ranks, (i)))

typedef struct {
    double start, end; /* replayed, us */
    bool done;
} Replayed;

typedef struct {
    double t; /* measured end of a sync */
    double delay;
} DelayPoint;

typedef struct {
    int tid;
    GArray *points; /* of DelayPoint, by t */
} HostThread;

typedef struct {
    double key;
    int rank, index;
    bool sync;
} Item;

typedef struct {
    GArray *by_end;  /* kernel indices by measured end */
    int *wait_dep;   /* per kernel: the activity a cudaStreamWaitEvent made it wait for, or -1 */
    Replayed *rep;   /* per kernel */
    GArray *threads; /* of HostThread */
} RankState;

static int item_order(const void *a, const void *b)
{
    const Item *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    if (x->sync != y->sync)
        return x->sync ? 1 : -1;
    if (x->rank != y->rank)
        return x->rank - y->rank;
    return x->index - y->index;
}

static const TraceRank *sort_rank; /* for by_end_order: qsort has no context argument */
static int by_end_order(const void *a, const void *b)
{
    const TraceKernel *x = &g_array_index(sort_rank->kernels, TraceKernel, *(const int *)a),
                      *y = &g_array_index(sort_rank->kernels, TraceKernel, *(const int *)b);
    return (x->end_us > y->end_us) - (x->end_us < y->end_us);
}

static HostThread *thread_of(GArray *threads, int tid)
{
    for (guint i = 0; i < threads->len; i++)
        if (g_array_index(threads, HostThread, i).tid == tid)
            return &g_array_index(threads, HostThread, i);
    HostThread h = {tid, g_array_new(FALSE, FALSE, sizeof(DelayPoint))};
    g_array_append_val(threads, h);
    return &g_array_index(threads, HostThread, threads->len - 1);
}

/* The host thread's delay (replayed - measured) at measured time t: that of its last sync that
 * ended at or before t. The replay appends a thread's points in the order of its items, which
 * is by measured end for syncs, so they are sorted by t: a binary search, O(log syncs) per
 * launch, where the scan from the first point it replaces was O(syncs) per launch. */
static double delay_at(GArray *threads, int tid, double t)
{
    const HostThread *h = thread_of(threads, tid);
    guint lo = 0, hi = h->points->len;
    while (lo < hi) { /* the first point after t */
        guint mid = lo + (hi - lo) / 2;
        if (g_array_index(h->points, DelayPoint, mid).t <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? g_array_index(h->points, DelayPoint, lo - 1).delay : 0;
}

/* The latest-ending activity with a measured end in [from, to], on a stream other than
 * `not_stream` (-1: any), or -1. Scans back at most 16 entries past other-stream ones. */
int trace_ended_in(const TraceRank *r, const GArray *by_end, double from, double to, int not_stream)
{
    const int *idx = (const int *)by_end->data;
    int lo = 0, hi = (int)by_end->len;
    while (lo < hi) { /* first with end > to */
        int mid = (lo + hi) / 2;
        if (g_array_index(r->kernels, TraceKernel, idx[mid]).end_us <= to)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (int i = lo - 1, seen = 0; i >= 0 && seen < 16; i--, seen++) {
        const TraceKernel *k = &g_array_index(r->kernels, TraceKernel, idx[i]);
        if (k->end_us < from)
            return -1;
        if (k->stream != not_stream)
            return idx[i];
    }
    return -1;
}

GArray *trace_by_end(const TraceRank *r)
{
    GArray *by_end = g_array_new(FALSE, FALSE, sizeof(int));
    for (guint k = 0; k < r->kernels->len; k++) {
        int v = (int)k;
        g_array_append_val(by_end, v);
    }
    sort_rank = r;
    g_array_sort(by_end, by_end_order);
    return by_end;
}

static int by_launch_order(const void *a, const void *b)
{
    const TraceKernel *x = &g_array_index(sort_rank->kernels, TraceKernel, *(const int *)a),
                      *y = &g_array_index(sort_rank->kernels, TraceKernel, *(const int *)b);
    double lx = isnan(x->launch_us) ? INFINITY : x->launch_us,
           ly = isnan(y->launch_us) ? INFINITY : y->launch_us;
    return (lx > ly) - (lx < ly);
}

/* cudaStreamWaitEvent pairs: for each call, the next activity launched by its thread waits for
 * the last activity launched before the call on another stream. O(waits x scan), scans bounded
 * at 64 launches forward and 256 back. */
void trace_pair_stream_waits(const TraceRank *r, int *wait_dep)
{
    guint n = r->kernels->len;
    for (guint k = 0; k < n; k++)
        wait_dep[k] = -1;
    int *order = g_new(int, MAX(n, 1));
    for (guint k = 0; k < n; k++)
        order[k] = (int)k;
    sort_rank = r;
    qsort(order, n, sizeof *order, by_launch_order);
    for (guint w = 0; w < r->stream_waits->len; w++) {
        const TraceSync *call = &g_array_index(r->stream_waits, TraceSync, w);
        int lo = 0, hi = (int)n;
        while (lo < hi) { /* first launched after the call started */
            int mid = (lo + hi) / 2;
            double l = g_array_index(r->kernels, TraceKernel, order[mid]).launch_us;
            if (!isnan(l) && l <= call->start_us)
                lo = mid + 1;
            else
                hi = mid;
        }
        int next = -1;
        for (int i = lo; i < (int)n && i < lo + 64 && next < 0; i++) {
            const TraceKernel *k = &g_array_index(r->kernels, TraceKernel, order[i]);
            if (!isnan(k->launch_us) && k->launch_tid == call->tid)
                next = order[i];
        }
        if (next < 0 && lo < (int)n &&
            !isnan(g_array_index(r->kernels, TraceKernel, order[lo]).launch_us))
            next = order[lo]; /* a wait made for another thread's stream (DDP's final wait) */
        if (next < 0)
            continue;
        int stream = g_array_index(r->kernels, TraceKernel, next).stream;
        for (int i = lo - 1; i >= 0 && i >= lo - 256; i--) {
            const TraceKernel *k = &g_array_index(r->kernels, TraceKernel, order[i]);
            if (k->stream != stream) {
                if (wait_dep[next] < 0 ||
                    k->end_us > g_array_index(r->kernels, TraceKernel, wait_dep[next]).end_us)
                    wait_dep[next] = order[i];
                break;
            }
        }
    }
    g_free(order);
}

static double dep(double replayed_end, double measured_lag)
{
    return replayed_end + CLAMP(measured_lag, 0, REPLAY_LAG_CAP_US);
}

/* Replays the set; factor[i] scales instance i's transfer (NULL: 1). Fills step_s per rank and
 * step (an array of GArray of double): max(host step, GPU span), replayed. */
void trace_replay(const TraceSet *set, const double *factor, GPtrArray *step_s)
{
    guint nr = set->ranks->len;
    RankState *st = g_new0(RankState, nr);
    GArray *items = g_array_new(FALSE, FALSE, sizeof(Item));
    for (guint ri = 0; ri < nr; ri++) {
        const TraceRank *r = RANK(set, ri);
        st[ri].rep = g_new0(Replayed, MAX(r->kernels->len, 1));
        st[ri].threads = g_array_new(FALSE, FALSE, sizeof(HostThread));
        st[ri].by_end = trace_by_end(r);
        st[ri].wait_dep = g_new(int, MAX(r->kernels->len, 1));
        trace_pair_stream_waits(r, st[ri].wait_dep);
        for (guint k = 0; k < r->kernels->len; k++) {
            Item it = {g_array_index(r->kernels, TraceKernel, k).start_us, (int)ri, (int)k, false};
            g_array_append_val(items, it);
        }
        for (guint s = 0; s < r->syncs->len; s++) {
            Item it = {g_array_index(r->syncs, TraceSync, s).end_us, (int)ri, (int)s, true};
            g_array_append_val(items, it);
        }
    }
    g_array_sort(items, item_order);
    /* per instance: participants still to start, and the replayed latest start */
    int *pending = g_new0(int, MAX(set->instances->len, 1));
    double *latest = g_new(double, MAX(set->instances->len, 1));
    for (guint i = 0; i < set->instances->len; i++)
        pending[i] = g_array_index(set->instances, TraceInstance, i).ranks, latest[i] = -INFINITY;
    GHashTable **last_on_stream = g_new0(GHashTable *, nr);
    for (guint ri = 0; ri < nr; ri++)
        last_on_stream[ri] = g_hash_table_new(g_direct_hash, g_direct_equal);
    for (guint i = 0; i < items->len; i++) {
        const Item *it = &g_array_index(items, Item, i);
        const TraceRank *r = RANK(set, it->rank);
        RankState *rs = &st[it->rank];
        if (it->sync) {
            const TraceSync *sy = &g_array_index(r->syncs, TraceSync, it->index);
            double rstart = sy->start_us + delay_at(rs->threads, sy->tid, sy->start_us), rend;
            int w = trace_ended_in(r, rs->by_end, sy->start_us, sy->end_us, -1);
            if (w >= 0 && rs->rep[w].done) {
                double mw = g_array_index(r->kernels, TraceKernel, w).end_us;
                rend = MAX(rstart + (sy->end_us - MAX(sy->start_us, mw)),
                           rs->rep[w].end + (sy->end_us - mw));
            } else {
                rend = rstart + (sy->end_us - sy->start_us);
            }
            HostThread *h = thread_of(rs->threads, sy->tid);
            DelayPoint p = {sy->end_us, rend - sy->end_us};
            g_array_append_val(h->points, p);
            continue;
        }
        const TraceKernel *k = &g_array_index(r->kernels, TraceKernel, it->index);
        double start = -INFINITY, s_m = k->start_us;
        bool explained = false;
        if (!isnan(k->launch_us)) {
            double l_r = k->launch_us + delay_at(rs->threads, k->launch_tid, k->launch_us);
            start = MAX(start, dep(l_r, s_m - k->launch_us));
            explained |= s_m - k->launch_us <= REPLAY_LAG_CAP_US;
        }
        gpointer prev = g_hash_table_lookup(last_on_stream[it->rank], GINT_TO_POINTER(k->stream));
        if (prev) {
            int p = GPOINTER_TO_INT(prev) - 1;
            double pe = g_array_index(r->kernels, TraceKernel, p).end_us;
            start = MAX(start, dep(rs->rep[p].end, s_m - pe));
            explained |= s_m - pe <= REPLAY_LAG_CAP_US;
        }
        g_hash_table_insert(last_on_stream[it->rank], GINT_TO_POINTER(k->stream),
                            GINT_TO_POINTER(it->index + 1));
        int wd = rs->wait_dep[it->index];
        if (wd >= 0 && rs->rep[wd].done) {
            double we = g_array_index(r->kernels, TraceKernel, wd).end_us;
            if (we <= s_m + 1) /* else the pairing is wrong: the activity ran before it ended */
                start = MAX(start, dep(rs->rep[wd].end, s_m - we));
        }
        if (!explained) {
            int x = trace_ended_in(r, rs->by_end, s_m - REPLAY_LAG_CAP_US, s_m, k->stream);
            if (x >= 0 && rs->rep[x].done)
                start = MAX(start, dep(rs->rep[x].end,
                                       s_m - g_array_index(r->kernels, TraceKernel, x).end_us));
        }
        if (!isfinite(start))
            start = s_m;
        Replayed *me = &rs->rep[it->index];
        me->start = start;
        me->done = true;
        const TraceColl *c = k->coll >= 0 ? &g_array_index(r->colls, TraceColl, k->coll) : NULL;
        const TraceInstance *in =
            c ? &g_array_index(set->instances, TraceInstance, c->instance) : NULL;
        double f = c && factor ? factor[c->instance] : 1;
        if (!in || in->ranks < 2) {
            me->end = start + (k->end_us - k->start_us) * f;
            continue;
        }
        /* a matched collective: every participant ends when the last has arrived */
        latest[c->instance] = MAX(latest[c->instance], start);
        me->end = start + (k->end_us - k->start_us) * f; /* until the last arrives */
        if (--pending[c->instance] > 0)
            continue;
        for (guint ri = 0; ri < nr; ri++) {
            const TraceRank *o = RANK(set, ri);
            for (guint ci = 0; ci < o->colls->len; ci++) {
                const TraceColl *oc = &g_array_index(o->colls, TraceColl, ci);
                if (oc->instance != c->instance)
                    continue;
                const TraceKernel *ok = &g_array_index(o->kernels, TraceKernel, oc->kernel);
                st[ri].rep[oc->kernel].end =
                    latest[c->instance] + MAX(0.0, ok->end_us - in->latest_start_us) * f;
            }
        }
    }
    for (guint ri = 0; ri < nr; ri++) {
        const TraceRank *r = RANK(set, ri);
        GArray *out = g_array_new(FALSE, FALSE, sizeof(double));
        for (guint s = 0; s < r->steps->len; s++) {
            const TraceStep *step = &g_array_index(r->steps, TraceStep, s);
            double end_m = step->cpu_start_us + step->cpu_dur_us;
            double host = step->cpu_dur_us + delay_at(st[ri].threads, step->tid, end_m) -
                          delay_at(st[ri].threads, step->tid, step->cpu_start_us);
            double g0 = INFINITY, g1 = -INFINITY;
            for (guint k = 0; k < r->kernels->len; k++)
                if (g_array_index(r->kernels, TraceKernel, k).step == (int)s)
                    g0 = MIN(g0, st[ri].rep[k].start), g1 = MAX(g1, st[ri].rep[k].end);
            double v = MAX(host, g1 > g0 ? g1 - g0 : 0) * 1e-6;
            g_array_append_val(out, v);
        }
        g_ptr_array_add(step_s, out);
        for (guint t = 0; t < st[ri].threads->len; t++)
            g_array_free(g_array_index(st[ri].threads, HostThread, t).points, TRUE);
        g_array_free(st[ri].threads, TRUE), g_array_free(st[ri].by_end, TRUE);
        g_free(st[ri].rep), g_free(st[ri].wait_dep);
        g_hash_table_destroy(last_on_stream[ri]);
    }
    g_free(st), g_free(last_on_stream), g_free(pending), g_free(latest);
    g_array_free(items, TRUE);
}

/* The median over ranks and steps. */
double trace_median_step_s(GPtrArray *per_rank)
{
    GArray *all = g_array_new(FALSE, FALSE, sizeof(double));
    for (guint i = 0; i < per_rank->len; i++) {
        GArray *v = g_ptr_array_index(per_rank, i);
        g_array_append_vals(all, v->data, v->len);
    }
    double m = cfg_median((double *)all->data, all->len);
    g_array_free(all, TRUE);
    return m;
}

void trace_replay_error(const TraceSet *set, double *mean_abs, double *max_abs, double *median_s)
{
    GPtrArray *rep = g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);
    trace_replay(set, NULL, rep);
    double sum = 0, worst = 0;
    int n = 0;
    for (guint ri = 0; ri < set->ranks->len; ri++) {
        const TraceRank *r = RANK(set, ri);
        GArray *v = g_ptr_array_index(rep, ri);
        for (guint s = 0; s < r->steps->len; s++) {
            double m = g_array_index(r->steps, TraceStep, s).cpu_dur_us * 1e-6;
            double e = fabs(g_array_index(v, double, s) - m) / m;
            sum += e, worst = MAX(worst, e), n++;
        }
    }
    *mean_abs = n ? sum / n : 0, *max_abs = worst;
    *median_s = trace_median_step_s(rep);
    g_ptr_array_free(rep, TRUE);
}
