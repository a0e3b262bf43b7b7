/* net: the flow-level model, max-min fair sharing by progressive filling; see net.h.
 *
 * Progressive filling (Bertsekas and Gallager, Data Networks, 6.5.2; SimGrid's lmm solver does the
 * same for its parallel-task model): raise the rate of every unfrozen transfer together until a
 * link saturates; freeze the transfers on that link; repeat. Rates rise in bytes per second on
 * each transfer's most loaded link, not in fractions of the transfer: a 50 MB send beside a 2 GB
 * all-reduce gets the same bandwidth as the all-reduce, as two flows do, and finishes first.
 *
 * Link classes. A pattern of a whole group family loads tens of thousands of links (every NIC of
 * 5938 JUPITER nodes), most of them alike. Links of the same kind and capacity that every pattern
 * registered so far loads with the same bytes are interchangeable: progressive filling computes
 * the same sums, residuals and utilisations for them, in the same floating-point order, and they
 * have carried the same bytes since the start. So the model keeps one state per class of such
 * links, and patterns as (class, bytes per link) entries. Registering a pattern refines the
 * partition (a class whose links the pattern loads differently splits; the parts inherit its
 * state, and other patterns' entries for it gain the parts), in O(its loads) plus O(entries of
 * all patterns) when a class splits. Then every reschedule costs O(rounds x entries of the
 * transfers it re-solves), independent of the number of GPUs, and gives bit for bit the rates,
 * finish times and statistics of the per-link computation (net_flows_new_per_link, one class per
 * link, which the tests compare against). Rounds <= transfers re-solved. Everything runs in a
 * fixed order, so results are deterministic.
 *
 * Incremental. Each class lists the active transfers that load it. A reschedule re-solves only
 * the component of the transfers that started or ended: those connected to them through shared
 * classes. The rest keep their rates: max-min fairness decomposes over components. A pipeline
 * keeps a dozen transfers in flight (tensor-parallel collectives of each stage on NVLink, sends
 * between stages on NICs), in components of one or two: a reschedule used to re-solve all of
 * them, 42 % of a 1T-parameter pp 64 run. Solving a component alone takes fewer, larger steps than
 * solving it among others, so rates can differ from the full solve (net_flows_set_full) in the
 * last bits (test_net: <= 4e-16 relative over random scripts). Ended transfers' records are
 * reused, so memory is O(transfers in flight), not O(transfers).
 *
 * Progress per rate segment. A transfer's remaining load and the bytes it put on its classes
 * are brought up to date only where its rate changes or it ends (integrate): O(1) per event
 * for the others, whose finishes stand as computed. Brought up to date at every event instead,
 * as this model did until 2026-12, a transfer's remaining load was rounded at each of them, so
 * its finish moved by a nanosecond with events elsewhere in the job, and a pipeline whose
 * stages share links (tensor parallelism across nodes beside the stages' sends) drifted by a
 * few nanoseconds per period for ever: its steady state never repeated to the bit and was
 * never skipped (GPT-3 175B tp 8 x pp 16, 1T tp 4 x pp 64). What stays O(transfers in flight)
 * per event: the scan for those due (net_flows_complete), at a dozen transfers; it finds the
 * earliest finish of the others on the way, which reschedules keep (flow_fill.c).
 *
 * The reschedule itself (flow_fill.c) takes shortcuts for the common small components, each
 * giving the bits of the general computation (net_flows_set_reference, test_flow_fast). */
#include "flow_priv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static Transfer *tr(NetFlows *f, int id)
{
    return &f->tr[id];
}

/* Room for n classes: few on real machines, so the arrays grow rather than take n_links. */
static void classes_reserve(NetFlows *f, int n)
{
    if (n <= f->max_classes)
        return;
    f->max_classes = MAX(n, 2 * f->max_classes);
    f->cls = g_renew(LinkClass, f->cls, f->max_classes);
    f->bytes = g_renew(double, f->bytes, f->max_classes);
    f->busy = g_renew(uint32_t, f->busy, f->max_classes);
    f->busy_kind = g_renew(uint8_t, f->busy_kind, f->max_classes);
    f->busy_util = g_renew(float, f->busy_util, f->max_classes);
    f->touched = g_renew(uint32_t, f->touched, f->max_classes);
}

/* Class c joins the busy list. */
static void busy_list(NetFlows *f, uint32_t c)
{
    LinkClass *lc = &f->cls[c];
    lc->busy_pos = f->n_busy++;
    f->busy[lc->busy_pos] = c;
    f->busy_kind[lc->busy_pos] = (uint8_t)lc->kind;
    f->busy_util[lc->busy_pos] = (float)lc->util;
    flow_util_enter(f, lc->kind, f->busy_util[lc->busy_pos]);
}

static int class_new(NetFlows *f, uint32_t first_link, NetLinkKind kind, double capacity_Bps)
{
    classes_reserve(f, f->n_classes + 1);
    int c = f->n_classes++;
    f->cls[c] = (LinkClass){
        .first_link = first_link, .capacity_Bps = capacity_Bps, .kind = kind, .child_head = -1};
    f->bytes[c] = 0;
    return c;
}

/* Initial classes: links of one kind and capacity. Kinds are contiguous ranges of link ids and
 * capacities are uniform within a kind on every machine described, so the search over the
 * classes made so far runs only at kind boundaries. */
static void partition_by_capacity(NetFlows *f)
{
    const NetTopo *t = f->t;
    for (int l = 0; l < t->n_links; l++) {
        NetLinkKind kind = net_link_kind(t, (uint32_t)l);
        double cap = t->capacity_Bps[l];
        int c = l > 0 ? (int)f->class_of[l - 1] : -1;
        if (c < 0 || f->cls[c].kind != kind || f->cls[c].capacity_Bps != cap) {
            for (c = 0; c < f->n_classes; c++)
                if (f->cls[c].kind == kind && f->cls[c].capacity_Bps == cap)
                    break;
            if (c == f->n_classes)
                class_new(f, (uint32_t)l, kind, cap);
        }
        f->class_of[l] = (uint32_t)c;
        f->cls[c].size++;
    }
}

static NetFlows *flows_new(const NetTopo *t, bool per_link)
{
    NetFlows *f = g_new0(NetFlows, 1);
    f->t = t;
    f->class_of = g_new(uint32_t, MAX(1, t->n_links));
    f->patterns = g_array_new(FALSE, FALSE, sizeof(FlowPattern));
    f->transfers = g_array_new(FALSE, FALSE, sizeof(Transfer));
    f->samples = g_array_new(FALSE, TRUE, sizeof(NetUtilSample));
    f->utils_moved = true; /* the first reschedule keeps a sample */
    f->next_ns = INT64_MAX;
    if (per_link) {
        classes_reserve(f, t->n_links);
        for (int l = 0; l < t->n_links; l++) {
            f->class_of[l] = (uint32_t)class_new(f, (uint32_t)l, net_link_kind(t, (uint32_t)l),
                                                 t->capacity_Bps[l]);
            f->cls[l].size = 1;
        }
    } else {
        partition_by_capacity(f);
    }
    return f;
}

NetFlows *net_flows_new(const NetTopo *t)
{
    return flows_new(t, false);
}

NetFlows *net_flows_new_per_link(const NetTopo *t)
{
    return flows_new(t, true);
}

void net_flows_free(NetFlows *f)
{
    if (!f)
        return;
    g_free(f->class_of);
    for (int c = 0; c < f->n_classes; c++)
        g_free(f->cls[c].users);
    g_free(f->cls);
    g_free(f->bytes);
    g_free(f->busy);
    g_free(f->busy_kind);
    g_free(f->busy_util);
    g_free(f->touched);
    for (guint i = 0; i < f->patterns->len; i++)
        g_array_free(g_array_index(f->patterns, FlowPattern, i).entries, TRUE);
    g_array_free(f->patterns, TRUE);
    for (guint i = 0; i < f->transfers->len; i++)
        g_free(tr(f, (int)i)->load);
    g_array_free(f->transfers, TRUE);
    g_free(f->active.v);
    g_array_free(f->samples, TRUE);
    if (f->log)
        g_array_free(f->log, TRUE);
    g_free(f->mark_busy_ns);
    g_free(f->free_ids.v);
    g_free(f->dirty.v);
    g_free(f->queue.v);
    g_free(f->comp.v);
    g_free(f->fresh.v);
    g_free(f);
}

void flow_vec_grow(void **v, int *max, size_t size)
{
    *max = MAX(16, 2 * *max);
    *v = g_realloc_n(*v, (gsize)*max, size);
}

/* A new class split off `parent`, with its state (the links have behaved alike so far). */
static int class_split(NetFlows *f, int parent)
{
    classes_reserve(f, f->n_classes + 1);
    int c = f->n_classes++;
    LinkClass *p = &f->cls[parent], *k = &f->cls[c];
    *k = *p;
    f->bytes[c] = f->bytes[parent];
    k->size = 0;
    k->first_link = UINT32_MAX; /* lowered as links move in */
    k->stamp = 0;
    k->mixed = false;
    k->parent = parent;
    k->child_head = -1;
    k->child_next = p->child_head;
    p->child_head = c;
    /* every active transfer on the parent loads the part too (net_flows_pattern adds entries) */
    k->users = p->n_users > 0 ? g_memdup2(p->users, sizeof(int) * (gsize)p->n_users) : NULL;
    k->max_users = k->n_users;
    if (k->listed) {
        busy_list(f, (uint32_t)c);
    }
    return c;
}

/* Link `l` joins class `to` (from the class it was in). */
static void link_move(NetFlows *f, uint32_t l, int to)
{
    f->class_of[l] = (uint32_t)to;
    f->cls[to].first_link = MIN(f->cls[to].first_link, l);
}

/* After a split, a class whose lowest link moved out finds its new lowest: the next link above
 * the old one still in it. The links skipped moved out in this refine or belong to other classes,
 * so this costs O(links between the old and the new lowest), at most O(links) per pattern. */
static void first_link_repair(NetFlows *f, int n_touched)
{
    for (int i = 0; i < n_touched; i++) {
        uint32_t c = f->touched[i];
        uint32_t l = f->cls[c].first_link;
        while (f->class_of[l] != c)
            l++;
        f->cls[c].first_link = l;
    }
}

static void entry_add(GArray *entries, int c, double bytes)
{
    NetLoad e = {(uint32_t)c, bytes};
    g_array_append_val(entries, e);
}

typedef struct {
    uint32_t cls, link;
    double bytes;
} Mixed;

static int cmp_mixed(const void *x, const void *y)
{
    const Mixed *a = x, *b = y;
    if (a->cls != b->cls)
        return a->cls < b->cls ? -1 : 1;
    if (a->bytes != b->bytes)
        return a->bytes < b->bytes ? -1 : 1;
    return a->link < b->link ? -1 : a->link > b->link;
}

/* Splits the classes that `loads` touch unevenly and writes the pattern's entries. A class whose
 * touched links all carry the same bytes (the common case: every NIC of a ring) splits in two at
 * most, in linear time; only classes loaded with several values sort their links. */
static void refine(NetFlows *f, const NetLoad *loads, int n, GArray *entries)
{
    uint32_t epoch = ++f->epoch;
    int n_touched = 0;
    bool any_mixed = false;
    for (int k = 0; k < n; k++) {
        uint32_t c = f->class_of[loads[k].link];
        LinkClass *lc = &f->cls[c];
        if (lc->stamp != epoch) {
            lc->stamp = epoch;
            lc->count = 0;
            lc->first = loads[k].bytes;
            lc->mixed = false;
            f->touched[n_touched++] = c;
        }
        lc->count++;
        if (loads[k].bytes != lc->first)
            lc->mixed = any_mixed = true;
    }
    for (int i = 0; i < n_touched; i++) {
        int c = (int)f->touched[i];
        if (f->cls[c].mixed)
            continue;
        int to = f->cls[c].count == f->cls[c].size ? c : class_split(f, c);
        LinkClass *lc = &f->cls[c]; /* after class_split, which may move the array */
        lc->split_to = to;
        lc->size -= lc->count;
        f->cls[to].size += lc->count;
        entry_add(entries, to, lc->first);
    }
    for (int k = 0; k < n; k++) {
        const LinkClass *lc = &f->cls[f->class_of[loads[k].link]];
        if (lc->stamp == epoch && !lc->mixed)
            link_move(f, loads[k].link, lc->split_to);
    }
    if (!any_mixed) {
        first_link_repair(f, n_touched);
        return;
    }
    GArray *mixed = g_array_new(FALSE, FALSE, sizeof(Mixed));
    for (int k = 0; k < n; k++) {
        uint32_t c = f->class_of[loads[k].link];
        if (f->cls[c].stamp == epoch && f->cls[c].mixed) {
            Mixed m = {c, loads[k].link, loads[k].bytes};
            g_array_append_val(mixed, m);
        }
    }
    g_array_sort(mixed, cmp_mixed);
    const Mixed *m = (const Mixed *)mixed->data;
    for (guint i = 0; i < mixed->len;) {
        int c = (int)m[i].cls;
        /* every link of the class loaded: the first group keeps its id */
        bool keep = f->cls[c].count == f->cls[c].size;
        f->cls[c].size -= f->cls[c].count;
        while (i < mixed->len && (int)m[i].cls == c) {
            int to = keep ? c : class_split(f, c);
            keep = false;
            entry_add(entries, to, m[i].bytes);
            double bytes = m[i].bytes;
            for (; i < mixed->len && (int)m[i].cls == c && m[i].bytes == bytes; i++) {
                link_move(f, m[i].link, to);
                f->cls[to].size++;
            }
        }
    }
    g_array_free(mixed, TRUE);
    first_link_repair(f, n_touched);
}

static void entries_cache(NetFlows *f, Transfer *t, bool find_peak);

int net_flows_pattern(NetFlows *f, const NetLoad *loads, int n_loads)
{
    for (int k = 0; k < n_loads; k++)
        g_assert(loads[k].link < (uint32_t)f->t->n_links &&
                 (k == 0 || loads[k].link > loads[k - 1].link));
    int before = f->n_classes;
    FlowPattern p = {g_array_new(FALSE, FALSE, sizeof(NetLoad))};
    refine(f, loads, n_loads, p.entries);
    if (f->n_classes > before) {
        /* The other patterns load every link of a split class alike: the parts too. */
        for (guint i = 0; i < f->patterns->len; i++) {
            GArray *e = g_array_index(f->patterns, FlowPattern, i).entries;
            guint len = e->len;
            for (guint k = 0; k < len; k++) {
                NetLoad old = g_array_index(e, NetLoad, k);
                for (int c = f->cls[old.link].child_head; c >= 0; c = f->cls[c].child_next)
                    entry_add(e, c, old.bytes);
            }
        }
        for (int c = before; c < f->n_classes; c++)
            f->cls[f->cls[c].parent].child_head = -1;
        for (int i = 0; i < f->active.n; i++)
            entries_cache(f, tr(f, f->active.v[i]), false);
    }
    g_array_append_val(f->patterns, p);
    return (int)f->patterns->len - 1;
}

static const FlowLoad *entries_of(NetFlows *f, const Transfer *t, int *n)
{
    *n = t->n_entries;
    return t->load;
}

/* The transfer's load from its pattern: O(entries). find_peak (net_flows_add): its peak too, the
 * largest of the bytes in entry order (the shares, which need it, are then left to the caller). */
static void entries_cache(NetFlows *f, Transfer *t, bool find_peak)
{
    GArray *entries = g_array_index(f->patterns, FlowPattern, t->pattern).entries;
    const NetLoad *e = (const NetLoad *)entries->data;
    int n = (int)entries->len;
    if (n > t->max_load) {
        t->max_load = MAX(n, 2 * t->max_load);
        t->load = g_renew(FlowLoad, t->load, t->max_load);
    }
    t->n_entries = n;
    for (int k = 0; k < n; k++) {
        double bytes = e[k].bytes * t->scale;
        /* the peak: the largest of these (net_flows_add), fixed (a split copies entries) */
        double share = 0;
        if (find_peak)
            t->peak = MAX(t->peak, bytes);
        else if (t->peak > 0)
            share = bytes / t->peak;
        t->load[k] = (FlowLoad){e[k].link, bytes, share};
    }
}

/* Transfer `id` now loads class c / no longer does. O(users of c). */
static void user_add(NetFlows *f, uint32_t c, int id)
{
    LinkClass *lc = &f->cls[c];
    if (lc->n_users == lc->max_users) {
        lc->max_users = MAX(4, 2 * lc->max_users);
        lc->users = g_renew(int, lc->users, lc->max_users);
    }
    lc->users[lc->n_users++] = id;
    if (!lc->listed) {
        lc->listed = true;
        lc->busy_since = f->now;
        busy_list(f, c);
    }
}

static void user_remove(NetFlows *f, uint32_t c, int id)
{
    LinkClass *lc = &f->cls[c];
    int k = 0;
    while (lc->users[k] != id)
        k++;
    lc->users[k] = lc->users[--lc->n_users];
    if (lc->n_users == 0) {
        flow_busy_flush(lc, f->now);
        lc->listed = false;
        lc->util = 0;
        int pos = lc->busy_pos, end = --f->n_busy;
        flow_util_leave(f, f->busy_kind[pos], f->busy_util[pos]);
        uint32_t last = f->busy[end];
        f->busy[pos] = last;
        f->busy_kind[pos] = f->busy_kind[end];
        f->busy_util[pos] = f->busy_util[end];
        f->cls[last].busy_pos = pos;
    }
}

/* The classes of transfer `id` change: its component is re-solved at the next reschedule. */
static void mark_dirty(NetFlows *f, int id)
{
    int n;
    const FlowLoad *e = entries_of(f, tr(f, id), &n);
    while (f->dirty.n + n > f->dirty.max) /* room for all at once: one test, not one a class */
        flow_vec_grow((void **)&f->dirty.v, &f->dirty.max, sizeof *f->dirty.v);
    for (int k = 0; k < n; k++)
        f->dirty.v[f->dirty.n++] = e[k].link;
}

int net_flows_add(NetFlows *f, int64_t now, int pattern, double scale)
{
    g_assert(now == f->now || (f->active.n == 0 && now >= f->now));
    g_assert(pattern >= 0 && (guint)pattern < f->patterns->len);
    f->now = now;
    f->none_due = false; /* the new transfer's finish is now until the reschedule */
    int id;
    if (f->free_ids.n > 0) { /* ended transfers' records are reused: memory stays O(active) */
        id = f->free_ids.v[--f->free_ids.n];
    } else {
        id = (int)f->transfers->len;
        g_array_set_size(f->transfers, f->transfers->len + 1);
        f->tr = (Transfer *)f->transfers->data;
        *tr(f, id) = (Transfer){0};
    }
    Transfer *t = tr(f, id);
    *t = (Transfer){.pattern = pattern,
                    .scale = scale,
                    .remaining = 1.0,
                    .max_rate = INFINITY,
                    .since = now,
                    .finish_ns = now,
                    .seq = f->seq++,
                    .load = t->load,
                    .max_load = t->max_load};
    entries_cache(f, t, true);
    int n;
    const FlowLoad *e = entries_of(f, t, &n);
    for (int k = 0; k < n && t->peak > 0; k++)
        t->load[k].share = t->load[k].bytes / t->peak;
    flow_ids_push(&f->active, id);
    t->fresh = true; /* joins next_ns at the reschedule, with its finish */
    flow_ids_push(&f->fresh, id);
    for (int k = 0; k < n; k++)
        user_add(f, e[k].link, id);
    mark_dirty(f, id);
    return id;
}

void net_flows_cap(NetFlows *f, int id, double max_rate)
{
    g_assert(max_rate > 0);
    tr(f, id)->max_rate = max_rate;
    f->any_cap = true;
    mark_dirty(f, id);
}

void net_flows_set_full(NetFlows *f, bool full)
{
    f->full = full;
}

void net_flows_set_reference(NetFlows *f, bool reference)
{
    f->reference = reference;
}

void net_flows_advance(NetFlows *f, int64_t now)
{
    g_assert(now >= f->now);
    f->now = now;
}

/* Transfer t's progress at its rate from `since` to now: its remaining load, and its bytes on
 * each class it loads (in entry order, logged for the steady state's skip). Called before its
 * rate changes and when it ends, and only then. */
void flow_integrate(NetFlows *f, Transfer *t)
{
    double dt = (double)(f->now - t->since) * 1e-9;
    t->since = f->now;
    if (!(dt > 0))
        return;
    double step = MIN(t->remaining, t->rate * dt);
    t->remaining -= step;
    int n;
    const FlowLoad *e = entries_of(f, t, &n);
    for (int k = 0; k < n; k++) /* (pattern bytes * scale) * step */
        f->bytes[e[k].link] += e[k].bytes * step;
    if (f->log) {
        StatAdd a = {t->pattern, n, t->scale, step};
        g_array_append_val(f->log, a);
    }
}

int net_flows_complete(NetFlows *f, int64_t now, int *ids, int max)
{
    if (f->none_due && f->none_due_at == now)
        return 0;
    /* the pass that finds the transfers due, in start order, finds the earliest finish of the
     * others too (flow_fill.c keeps it): 3 instructions per transfer kept, where the reschedule
     * that follows made a pass of its own */
    int n = 0, keep = 0;
    int64_t next = INT64_MAX;
    for (int i = 0; i < f->active.n; i++) {
        int id = f->active.v[i];
        Transfer *t = tr(f, id);
        if (t->finish_ns <= now && n < max) {
            ids[n++] = id;
            flow_integrate(f, t);
            t->remaining = 0;
            t->fresh = false;
        } else {
            f->active.v[keep++] = id;
            if (!t->fresh)
                next = MIN(next, t->finish_ns);
        }
    }
    f->active.n = keep;
    f->next_ns = next;
    f->none_due = n < max; /* every one looked at, none left due */
    f->none_due_at = now;
    for (int i = 0; i < n; i++) {
        Transfer *t = tr(f, ids[i]);
        int ne;
        const FlowLoad *e = entries_of(f, t, &ne);
        for (int k = 0; k < ne; k++)
            user_remove(f, e[k].link, ids[i]);
        mark_dirty(f, ids[i]);
        t->rate = 0;
        flow_ids_push(&f->free_ids, ids[i]);
    }
    return n;
}
