/* flow_fill: a reschedule (net_flows_reschedule): the component of the transfers that started or
 * ended, its rates by progressive filling, its classes' utilisations, the utilisation sample
 * and the next finish. See flow.c for the model. Internal to src/net.
 *
 * Cost. A pipeline reschedules at every transfer start and end, and most of its components hold
 * one transfer (a send, or a stage's tensor-parallel collective alone on its NVLink) or none (the
 * classes of one that ended, left idle): the fixed work per call, not the rounds, was the cost
 * (the search for the component, passes over its classes before, in and after the round, the
 * sample, a pass over all active transfers for the next finish). A component of one transfer or
 * none is found without the search (component_small); none is done at once, one is solved in
 * one pass over its classes (fill_alone); the earliest finish is kept across reschedules
 * (NetFlows.next_ns); the sample is skipped where no busy utilisation changed. Each gives the
 * bits the general computation gives (net_flows_set_reference; test_flow_fast compares them).
 * On the 1T pipeline's fill and drain (tests/bench/bench_sim) they took the reschedules from
 * 70 to 39 M instructions (850 to 480 per call). */
#include "flow_priv.h"

#include <math.h>

static Transfer *tr(NetFlows *f, int id)
{
    return &f->tr[id];
}

/* The highest utilisation of each kind over the busy classes, from 0: the MAX fold over the busy
 * list, which kind_max follows. A stale kind is recomputed (O(busy) where its highest class
 * dropped), a kind with odd values folded as before (order decides between -0 and 0, and NaN).
 * Where no busy utilisation changed since the last call, this one would compute the same sample
 * and find it equal to the last one kept: it returns at once. */
static void sample(NetFlows *f)
{
    if (!f->utils_moved && !f->reference)
        return;
    f->utils_moved = false;
    NetUtilSample *last =
        f->samples->len > 0 ? &g_array_index(f->samples, NetUtilSample, f->samples->len - 1) : NULL;
    bool walk = f->n_stale > 0 || f->n_odd > 0;
    if (!walk && last && memcmp(last->util, f->kind_max, sizeof last->util) == 0)
        return; /* the sample below, found equal to the last one */
    NetUtilSample s = {.time_ns = f->now};
    if (walk) {
        for (int k = 0; k < NET_LINK_KIND_COUNT; k++)
            if (f->kind_stale[k]) {
                f->kind_max[k] = 0;
                f->kind_at_max[k] = 0;
            }
        float fold[NET_LINK_KIND_COUNT] = {0};
        for (int i = 0; i < f->n_busy; i++) {
            int k = f->busy_kind[i];
            float u = f->busy_util[i];
            fold[k] = MAX(fold[k], u);
            if (f->kind_stale[k] && !flow_util_odd(u)) {
                if (u > f->kind_max[k]) {
                    f->kind_max[k] = u;
                    f->kind_at_max[k] = 1;
                } else if (u == f->kind_max[k]) {
                    f->kind_at_max[k]++;
                }
            }
        }
        for (int k = 0; k < NET_LINK_KIND_COUNT; k++) {
            f->kind_stale[k] = false;
            s.util[k] = f->kind_odd[k] > 0 ? fold[k] : f->kind_max[k];
        }
        f->n_stale = 0;
    } else {
        memcpy(s.util, f->kind_max, sizeof s.util);
    }
    if (last) {
        if (memcmp(last->util, s.util, sizeof s.util) == 0)
            return;
        if (last->time_ns == s.time_ns) {
            *last = s;
            return;
        }
    }
    g_array_append_val(f->samples, s);
}

/* Time to move the rest of a transfer at its rate: ceil(remaining / rate * 1e9) ns, 0 when there
 * is nothing to move or only infinite links. The ceiling by truncation below 2^62 (exact: a
 * double of 2^52 or more is an integer), as libm's ceil is a call on baseline x86-64. */
static int64_t finish_in_ns(const Transfer *t)
{
    if (t->remaining <= 0 || t->rate <= 0 || !isfinite(t->remaining / t->rate))
        return 0;
    double ns = t->remaining / t->rate * 1e9;
    if (!(ns < 0x1p62))
        return (int64_t)ceil(ns);
    int64_t whole = (int64_t)ns;
    return whole + ((double)whole < ns);
}

/* The component to re-solve: the transfers reachable from the dirty classes through shared
 * classes (f->comp, in start order) and their classes (f->queue). Transfers outside it share no
 * link with any that started or ended, so max-min fairness gives them the same rates as before.
 * O(classes and users of the component) + O(active) for the order. */
static void collect_component(NetFlows *f)
{
    uint32_t epoch = ++f->epoch;
    f->queue.n = 0;
    f->comp.n = 0;
    if (f->full) /* every class in use, and those just left */
        for (int i = 0; i < f->n_busy; i++)
            flow_classes_push(&f->dirty, f->busy[i]);
    for (int i = 0; i < f->dirty.n; i++) {
        uint32_t c = f->dirty.v[i];
        if (f->cls[c].stamp != epoch) {
            f->cls[c].stamp = epoch;
            flow_classes_push(&f->queue, c);
        }
    }
    f->dirty.n = 0;
    for (int q = 0; q < f->queue.n; q++) {
        const LinkClass *lc = &f->cls[f->queue.v[q]];
        for (int u = 0; u < lc->n_users; u++) {
            Transfer *t = tr(f, lc->users[u]);
            if (t->stamp == epoch)
                continue;
            t->stamp = epoch;
            for (int k = 0; k < t->n_entries; k++) {
                uint32_t c = t->load[k].link;
                if (f->cls[c].stamp != epoch) {
                    f->cls[c].stamp = epoch;
                    flow_classes_push(&f->queue, c);
                }
            }
            flow_ids_push(&f->comp, lc->users[u]);
        }
    }
    /* into start order: by insertion while the component is small (one to three transfers in a
     * pipeline's events), else by a pass over the active ones */
    int n = f->comp.n, *comp = f->comp.v;
    if (n <= 16) {
        for (int i = 1; i < n; i++) {
            int id = comp[i];
            uint64_t seq = tr(f, id)->seq;
            int j = i;
            for (; j > 0 && tr(f, comp[j - 1])->seq > seq; j--)
                comp[j] = comp[j - 1];
            comp[j] = id;
        }
    } else {
        f->comp.n = 0;
        for (int i = 0; i < f->active.n; i++)
            if (tr(f, f->active.v[i])->stamp == epoch)
                f->comp.v[f->comp.n++] = f->active.v[i];
    }
}

/* The component when it is one transfer or none, found without the search: every dirty class
 * idle or loaded by one transfer alone, the same one, and each of its classes by it alone (a
 * pipeline's send or a stage's collective, starting or ending). Sets f->comp (f->queue is not
 * built: fill_rounds, which reads it, runs after collect_component) and leaves f->dirty for
 * collect_component; false where the search must run. O(dirty classes + the transfer's). */
static bool component_small(NetFlows *f)
{
    int only = -1;
    for (int i = 0; i < f->dirty.n; i++) {
        const LinkClass *lc = &f->cls[f->dirty.v[i]];
        if (lc->n_users == 0)
            continue;
        if (lc->n_users > 1 || (only >= 0 && lc->users[0] != only))
            return false;
        only = lc->users[0];
    }
    f->comp.n = 0;
    if (only < 0)
        return true;
    const Transfer *t = tr(f, only);
    for (int k = 0; k < t->n_entries; k++)
        if (f->cls[t->load[k].link].n_users != 1)
            return false;
    flow_ids_push(&f->comp, only);
    return true;
}

/* Class lc's utilisation from its residual, and the busy list's copy (kind_max follows). */
static void util_update(NetFlows *f, LinkClass *lc)
{
    double cap = lc->capacity_Bps;
    lc->util = isfinite(cap) ? (cap - lc->residual) / cap : 0;
    lc->stats.peak_util = MAX(lc->stats.peak_util, lc->util);
    float *util = &f->busy_util[lc->busy_pos], now_util = (float)lc->util;
    if (memcmp(util, &now_util, sizeof now_util) != 0) {
        flow_util_leave(f, lc->kind, *util);
        *util = now_util;
        flow_util_enter(f, lc->kind, now_util);
    }
}

/* Progressive filling over the component only: the same rounds, in the same order, as over all
 * active transfers when the component is all of them (net_flows_set_full). Where several
 * components are active, solving each alone changes rates at the last bit (a component's rate is
 * no longer the sum of deltas of rounds that other components ended); see test_net. Cost per
 * round: O(the component's classes + its transfers' entries). */
static void fill_rounds(NetFlows *f)
{
    LinkClass *cls = f->cls;
    const uint32_t *qc = f->queue.v;
    int nq = f->queue.n, n = f->comp.n;
    const int *comp = f->comp.v;
    for (int i = 0; i < nq; i++) {
        cls[qc[i]].util = 0;
        cls[qc[i]].residual = cls[qc[i]].capacity_Bps;
    }
    int unfrozen = 0;
    for (int i = 0; i < n; i++) {
        Transfer *t = tr(f, comp[i]);
        t->rate = 0;
        t->frozen = t->n_entries == 0 || t->remaining <= 0 || t->peak <= 0;
        unfrozen += !t->frozen;
    }
    while (unfrozen > 0) {
        for (int i = 0; i < nq; i++)
            cls[qc[i]].sum = 0;
        for (int i = 0; i < n; i++) {
            Transfer *t = tr(f, comp[i]);
            if (t->frozen)
                continue;
            for (int k = 0; k < t->n_entries; k++)
                cls[t->load[k].link].sum += t->load[k].share; /* (bytes * scale) / peak */
        }
        double delta = INFINITY;
        for (int i = 0; i < nq; i++) {
            const LinkClass *lc = &cls[qc[i]];
            if (lc->sum > 0)
                delta = MIN(delta, lc->residual / lc->sum);
        }
        /* a capped transfer is a demand of its own: the round ends where it reaches its cap
         * (a pass over the component only where some transfer was ever capped) */
        for (int i = 0; i < n && f->any_cap; i++) {
            const Transfer *t = tr(f, comp[i]);
            if (!t->frozen && isfinite(t->max_rate))
                delta = MIN(delta, MAX(0.0, (t->max_rate - t->rate) * t->peak));
        }
        if (!isfinite(delta)) /* only links of infinite capacity */
            delta = 0;
        for (int i = 0; i < nq; i++)
            cls[qc[i]].residual -= delta * cls[qc[i]].sum;
        for (int i = 0; i < n; i++) {
            Transfer *t = tr(f, comp[i]);
            if (t->frozen)
                continue;
            t->rate += delta / t->peak;
            bool saturated = delta == 0 || t->rate >= t->max_rate * (1 - 1e-12);
            for (int k = 0; k < t->n_entries && !saturated; k++) {
                const LinkClass *lc = &cls[t->load[k].link];
                saturated = lc->residual <= 1e-9 * lc->capacity_Bps;
            }
            if (saturated) {
                t->frozen = true;
                unfrozen--;
            }
        }
    }
    for (int i = 0; i < nq; i++)
        if (cls[qc[i]].listed) /* else its last transfer ended */
            util_update(f, &cls[qc[i]]);
}

/* Transfer t alone in its component: fill_rounds' first round, which saturates one of its classes
 * (or its cap), in one pass over its entries instead of passes over the component's classes.
 * Bit for bit: its entries are distinct classes, each with t its only user, so each class's sum
 * is 0 + its share and its residual capacity - delta x sum, as there; the classes of the
 * component without users (those of transfers that ended) keep a utilisation of 0 (user_remove
 * set it) and their scratch is not read. The operations and their order are fill_rounds', but
 * the minimum over the classes is taken in entry order, not the component's: the same value
 * where every ratio is above 0, so where one is 0 or NaN (whose minimum depends on the order),
 * or where a second round would follow, it returns false, having changed nothing that
 * fill_rounds does not set again. Updates of the busy utilisations in another order leave
 * sample()'s result alone (a maximum). O(t's entries). */
static bool fill_alone(NetFlows *f, Transfer *t)
{
    LinkClass *cls = f->cls;
    int ne = t->n_entries;
    const FlowLoad *e = t->load;
    t->rate = 0;
    if (!(ne == 0 || t->remaining <= 0 || t->peak <= 0)) {
        double delta = INFINITY;
        for (int k = 0; k < ne; k++) {
            double sum = 0.0 + e[k].share;
            if (sum > 0) {
                double ratio = cls[e[k].link].capacity_Bps / sum;
                if (!(ratio > 0))
                    return false;
                delta = MIN(delta, ratio);
            }
        }
        if (f->any_cap && isfinite(t->max_rate))
            delta = MIN(delta, MAX(0.0, (t->max_rate - t->rate) * t->peak));
        if (!isfinite(delta)) /* only links of infinite capacity */
            delta = 0;
        t->rate += delta / t->peak;
        bool saturated = delta == 0 || t->rate >= t->max_rate * (1 - 1e-12);
        for (int k = 0; k < ne; k++) { /* residuals, and whether one is used up */
            LinkClass *lc = &cls[e[k].link];
            lc->residual = lc->capacity_Bps;
            lc->residual -= delta * (0.0 + e[k].share);
            saturated |= lc->residual <= 1e-9 * lc->capacity_Bps;
        }
        if (!saturated)
            return false;
    } else {
        for (int k = 0; k < ne; k++)
            cls[e[k].link].residual = cls[e[k].link].capacity_Bps;
    }
    t->frozen = true;
    for (int k = 0; k < ne; k++)
        util_update(f, &cls[e[k].link]);
    return true;
}

int64_t net_flows_reschedule(NetFlows *f)
{
    f->none_due = false; /* finishes change */
    bool small = !f->reference && !f->full && component_small(f);
    if (!small)
        collect_component(f);
    int n = f->comp.n;
    for (int i = 0; i < n; i++)
        flow_integrate(f, tr(f, f->comp.v[i])); /* at the rate it had */
    /* none: the component's classes are idle, with a utilisation of 0 (user_remove) */
    if (f->reference || n > 1 || (n == 1 && !fill_alone(f, tr(f, f->comp.v[0])))) {
        if (small) /* one transfer that fill_alone left to the rounds (integrated: no-op) */
            collect_component(f);
        fill_rounds(f);
    }
    f->dirty.n = 0;
    const int *comp = f->comp.v;
    sample(f);
    /* the component's finishes from their remaining loads; the others' stand (their rates did
     * not change), and so does their earliest, unless a transfer of the component held it:
     * O(component + started) here, O(active) where it was lost or in the reference */
    bool lost = f->reference;
    for (int i = 0; i < n; i++)
        lost |= !tr(f, comp[i])->fresh && tr(f, comp[i])->finish_ns == f->next_ns;
    int64_t next = f->next_ns;
    for (int i = 0; i < n; i++) {
        Transfer *t = tr(f, comp[i]);
        t->finish_ns = f->now + finish_in_ns(t);
        t->fresh = false;
        next = MIN(next, t->finish_ns);
    }
    for (int i = 0; i < f->fresh.n; i++) { /* started outside the component: without load */
        Transfer *t = tr(f, f->fresh.v[i]);
        if (t->fresh) {
            t->fresh = false;
            next = MIN(next, t->finish_ns);
        }
    }
    f->fresh.n = 0;
    if (lost) {
        next = INT64_MAX;
        for (int i = 0; i < f->active.n; i++)
            next = MIN(next, tr(f, f->active.v[i])->finish_ns);
    }
    f->next_ns = next;
    return next == INT64_MAX ? -1 : next;
}
