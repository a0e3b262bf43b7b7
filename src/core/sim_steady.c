/* sim_steady: exact steady-state pipelines. A pipeline's steady phase repeats: every stage runs
 * the same ops, with the same durations, on the same network state, one micro-batch later. The
 * engine simulates the warm-up and steady periods until it can prove the period, advances time
 * by whole periods, and simulates the rest (the cool-down) as usual.
 *
 * The proof. The engine is deterministic: what happens next is a function of its state (the
 * event queue in (time, seq) order, each class's ops between its frontier and horizon, the
 * rendezvous and transfers waiting, the flow model's transfers, users and last sample, the
 * memory accountant's live buffers) and of the ops it has not touched yet. If the ops repeat with
 * period K_c (op i+K_c is op i with dependencies, buffers and tags moved along: the periodic
 * region, sim_region.c) and the state after a checkpoint is the state after the previous one
 * moved by P ns and K_c ops (compared byte for byte, times relative to the checkpoint), then
 * every later period is that period moved again, for as long as the ops touched stay in the
 * region. So the skipped periods' ops get the proven period's times plus j * P, and the sums of
 * the results and link statistics get the proven period's additions again, in the same order:
 * every figure is the full simulation's to the bit (tests/unit/test_steady.c and
 * tests/integration/steady.sh compare both).
 *
 * Where it cannot prove it, it simulates everything: no periodic region in some class, a period
 * that raises the memory peak or rewrites the flow model's last sample, or states that never
 * repeat within SIM_STEADY_HIST periods.
 *
 * A group whose collectives run on several streams has them numbered in program order (the
 * engine's coll_seq): sequence parallelism's blocking gathers and reduce-scatters run on compute
 * and the backward's second gather on nccl:tp, all on the TP group. The numbering is a fixed
 * function of the op, and a repeated state has each class start as many of a group's
 * collectives per period as its partners (a rendezvous holds the difference, and it is part of
 * the state), so a waiting rendezvous m periods on is keyed by its moved op's number. Refusing
 * such classes kept the 1T SP interleaved layout (bench_sim) from skipping at all.
 * A compact run (sim_run_compact, sim_gap.c) leaves periods out of the schedule; the skip puts
 * them back: time, sums and counts move by the m blocks skipped, the engine's op indices by m
 * blocks less the gap.
 * FSDPSIM_NO_STEADY_STATE=1 in the environment turns it off; FSDPSIM_STEADY_DEBUG=1 prints each
 * class's region and, at each checkpoint, the first field that differs from the last one (the
 * state is the same, or which op's start, which transfer's rate...), with its bytes before and
 * now.
 *
 * States that repeat only after several periods: the 1T-parameter GPT (tp 8 x pp 64 x dp 6 on
 * JUWELS Booster, 1F1B) was aperiodic while a stage's receives were posted early and sat in
 * flight beside its compute (stage 0's period 150401545 ns half the time, 137 to 159 ms
 * otherwise): its neighbours' sends and receives re-rated its running compute (sim_overlap.c),
 * so each stage's timing fed on its neighbours' phase. With receives waiting for the compute
 * before them, as ProcessGroupNCCL runs them (pp.c), it settles into a cycle of several
 * micro-batches, which the lookup over the last SIM_STEADY_HIST states finds (336 periods of
 * 512 skipped).
 *
 * Cost: a checkpoint serialises the state, O(ops between frontier and horizon + events
 * queued + transfers in flight + link classes), once per period of the anchor class until the
 * proof (at most SIM_STEADY_TRIES + SIM_STEADY_HIST checkpoints); a state first seen again k
 * periods on has its next k periods simulated with their additions logged, and the skip is
 * O(ops skipped + logged additions x blocks of k periods). */
#include "sim_engine.h"

#include <stdlib.h>
#include <string.h>

#define SIM_STEADY_TRIES 32
#define SIM_STEADY_HIST 16

struct SimSteady {
    SimRegion *region; /* per class */
    GByteArray *prev;
    int64_t prev_time;
    int *prev_frontier;
    uint32_t **prev_group_seq;
    guint *prev_timeline;
    int **prev_count;
    uint64_t prev_events, prev_transfers;
    int32_t prev_version;
    int tries;
    bool logged; /* the additions since the last checkpoint are logged */
    /* the states of the last periods, newest first: a state may repeat only after several
     * periods (see sim_steady_check) */
    GByteArray *hist[SIM_STEADY_HIST];
    int n_hist;
    /* FSDPSIM_STEADY_DEBUG: the fields of the last snapshot (NetSnapField), to name the first
     * difference between periods on stderr; NULL otherwise */
    GArray *fields;
    /* the last checkpoint postponed (sim_steady_postpone): when, INT64_MIN none yet */
    int64_t postponed_ns;
};

void sim_steady_init(Engine *e)
{
    const char *off = g_getenv("FSDPSIM_NO_STEADY_STATE");
    if ((off && *off && strcmp(off, "0") != 0) || e->s->n_classes == 0)
        return;
    int nc = e->s->n_classes;
    SimRegion *region = g_new0(SimRegion, nc);
    bool ok = true;
    int64_t tag_step = 0;
    bool has_tag = false;
    int c_bad = 0;
    for (int c = 0; ok && c < nc; c++) {
        c_bad = c;
        if (e->prep) /* found by src/compact in the same program */
            ok = e->prep->found[c] && (region[c] = e->prep->region[c], true);
        else
            ok = sim_region_find(&e->st[c], e->omitted != NULL, e->period ? e->period[c] : 0,
                                 &region[c]);
        if (ok && region[c].has_tag) { /* a send's step must be its peer's recv's */
            ok = !has_tag || region[c].tag_step == tag_step;
            tag_step = region[c].tag_step;
            has_tag = true;
        }
    }
    bool debug = g_getenv("FSDPSIM_STEADY_DEBUG") != NULL;
    if (!ok) {
        if (debug)
            g_printerr("steady: off, class %d has no periodic region (or a tag step unlike its "
                       "peers')\n",
                       c_bad);
        g_free(region);
        return;
    }
    for (int c = 0; c < nc; c++) { /* the host ops that must be done for the host to be parked */
        ClassState *st = &e->st[c];
        SimRegion *r = &region[c];
        r->safe_end = r->lo;
        while (r->safe_end < r->hi) {
            uint32_t k = st->succ_start[r->safe_end];
            while (k < st->succ_start[r->safe_end + 1] && (int)st->succ[k] < r->hi)
                k++;
            if (k < st->succ_start[r->safe_end + 1])
                break;
            r->safe_end++;
        }
        st->host_below = region[c].hi;
        for (int i = 0; i < region[c].hi; i++)
            st->host_ops += st->cls->streams[ir_op(st->cls, i)->stream].host;
    }
    SimSteady *sd = g_new0(SimSteady, 1);
    sd->region = region;
    sd->postponed_ns = INT64_MIN;
    if (debug) {
        sd->fields = g_array_new(FALSE, FALSE, sizeof(NetSnapField));
        for (int c = 0; c < nc; c++)
            g_printerr("steady: class %d: ops %d..%d repeat every %d\n", c, region[c].lo,
                       region[c].hi, region[c].period);
    }
    e->steady = sd;
    /* checkpoints at the ends of a GPU op of class 0, one period apart (a host op's end can come
     * long before the GPU gets there: the host runs ahead) */
    const IrClass *c0 = e->s->classes[0];
    int op = region[0].lo + region[0].period;
    while (op < region[0].lo + 2 * region[0].period && c0->streams[ir_op(c0, op)->stream].host)
        op++;
    e->steady_cls = 0;
    e->steady_op = op;
    if (c0->streams[ir_op(c0, op)->stream].host)
        sim_steady_free(e);
}

/* One past the last op whose state the class's progress changed: where the host has issued the
 * whole periodic region and waits (or has finished) past it, the ops it touched stay as they are
 * until the GPU gets there, so only the GPU's part counts. */
int sim_steady_horizon(const ClassState *st)
{
    int h = st->host_done == st->host_ops ? st->horizon_gpu : st->horizon;
    return MAX(h, st->frontier);
}

static void release_prev(Engine *e)
{
    SimSteady *sd = e->steady;
    if (sd->prev)
        g_byte_array_free(sd->prev, TRUE);
    sd->prev = NULL;
    g_free(sd->prev_frontier);
    g_free(sd->prev_timeline);
    for (int c = 0; sd->prev_group_seq && c < e->s->n_classes; c++) {
        g_free(sd->prev_group_seq[c]);
        g_free(sd->prev_count[c]);
    }
    g_free(sd->prev_group_seq);
    g_free(sd->prev_count);
    sd->prev_frontier = NULL;
    sd->prev_timeline = NULL;
    sd->prev_group_seq = NULL;
    sd->prev_count = NULL;
}

void sim_steady_free(Engine *e)
{
    if (e->acc_log)
        g_array_free(e->acc_log, TRUE);
    e->acc_log = NULL;
    if (e->flows)
        net_flows_unmark(e->flows);
    if (!e->steady)
        return;
    release_prev(e);
    for (int i = 0; i < e->steady->n_hist; i++)
        g_byte_array_free(e->steady->hist[i], TRUE);
    if (e->steady->fields)
        g_array_free(e->steady->fields, TRUE);
    g_free(e->steady->region);
    g_free(e->steady);
    e->steady = NULL;
}

#define PUT(x) g_byte_array_append(out, (const guint8 *)&(x), sizeof(x))
/* the next field's name, under FSDPSIM_STEADY_DEBUG */
#define FIELD(name, owner, index) NET_SNAP_FIELD(fields, out, name, owner, index)

static int64_t rel(int64_t t, int64_t origin)
{
    return t < 0 ? INT64_MIN : t - origin;
}

static int cmp_event(const void *x, const void *y)
{
    const PqEvent *a = x, *b = y;
    if (a->time_ns != b->time_ns)
        return (a->time_ns > b->time_ns) - (a->time_ns < b->time_ns);
    return (a->seq > b->seq) - (a->seq < b->seq);
}

static int cmp_bytes(const void *x, const void *y)
{
    const GByteArray *a = *(GByteArray *const *)x, *b = *(GByteArray *const *)y;
    if (a->len != b->len)
        return (a->len > b->len) - (a->len < b->len);
    return memcmp(a->data, b->data, a->len);
}

/* An op as the snapshot writes it: relative to its class's frontier, or, past the periodic
 * region (an op issued early that waits for the cool-down: the last stage's embedding gradient),
 * as itself, marked: it stays where it is while periods are skipped. */
static int32_t op_norm(const Engine *e, int cls, int32_t op)
{
    const ClassState *st = &e->st[cls];
    return op >= st->host_below ? INT32_MIN / 2 + op : op - st->frontier;
}

/* The same op moved on by a skip (shift: per class, ops of the schedule). */
static int32_t op_moved(const Engine *e, int cls, int32_t op, const int64_t *shift)
{
    return op >= e->st[cls].host_below ? op : (int32_t)(op + shift[cls]);
}

static void put_members(Engine *e, const GArray *members, GByteArray *out)
{
    guint n = members->len;
    PUT(n);
    for (guint i = 0; i < n; i++) {
        ClassOp m = g_array_index(members, ClassOp, i);
        int32_t op = op_norm(e, m.cls, m.op);
        PUT(m.cls);
        PUT(op);
    }
}

/* Everything the engine's future depends on, with times relative to `now`, ops relative to each
 * class's frontier, buffer ids relative to the periods the class has passed. */
static GByteArray *snapshot(Engine *e, int64_t now)
{
    GByteArray *out = g_byte_array_new();
    const SimSteady *sd = e->steady;
    GArray *fields = sd->fields;
    if (fields)
        g_array_set_size(fields, 0);
    for (int c = 0; c < e->s->n_classes; c++) {
        const ClassState *st = &e->st[c];
        const SimClassResult *cr = &e->res->classes[c];
        int b = st->frontier, h = sim_steady_horizon(st), width = h - b;
        uint8_t host_finished = st->host_done == st->host_ops;
        FIELD("class: host finished, ops in the window", c, -1);
        PUT(host_finished);
        PUT(width);
        for (int i = b; i < h; i++) {
            /* a done op's times are results only (the engine reads the start of ops in flight,
             * and skips events of done ops before it looks at their end) */
            FIELD("op: predecessors pending", c, i);
            PUT(st->pending[i]);
            if (st->pending[i] < 0)
                continue;
            int64_t s = rel(sim_stored_start_ns(e, c, i), now),
                    t = rel(sim_stored_end_ns(e, c, i), now);
            FIELD("op: start_ns", c, i);
            PUT(s);
            FIELD("op: end_ns", c, i);
            PUT(t);
        }
        int32_t run = st->run_op < 0 ? -1 : op_norm(e, c, st->run_op);
        FIELD("class: compute op running", c, st->run_op);
        PUT(run);
        if (st->run_op >= 0) {
            int64_t since = st->run_since_ns - now, end = st->run_end_ns - now;
            FIELD("running compute: work left (s)", c, st->run_op);
            PUT(st->run_left_s);
            FIELD("running compute: slowdown", c, st->run_op);
            PUT(st->run_factor);
            PUT(st->run_mem_fraction);
            FIELD("running compute: since, end", c, st->run_op);
            PUT(since);
            PUT(end);
            PUT(st->run_alone_ns);
        }
        FIELD("class: communication in flight", c, -1);
        PUT(st->comm_intra);
        PUT(st->comm_inter);
        PUT(st->comm_nccl);
        PUT(st->comm_own_sms);
        FIELD("class: live buffers", c, -1);
        const SimRegion *r = &sd->region[c];
        int64_t passed = (b - r->lo) / r->period;
        mem_tracker_snapshot(&cr->mem, r->buffer_from, passed * r->buffer_step, out);
    }
    /* the queue, in the order it pops */
    uint64_t n = pq_size(&e->pq);
    PqEvent *ev = g_memdup2(e->pq.heap, sizeof *ev * MAX(1, n));
    qsort(ev, n, sizeof *ev, cmp_event);
    FIELD("events queued", -1, -1);
    PUT(n);
    for (uint64_t i = 0; i < n; i++) {
        int64_t t = ev[i].time_ns - now;
        int32_t op = ev[i].cls < 0 ? ev[i].op - e->net_version : op_norm(e, ev[i].cls, ev[i].op);
        FIELD("event: time, class, op", ev[i].cls, ev[i].op);
        PUT(t);
        PUT(ev[i].cls);
        PUT(op);
    }
    g_free(ev);
    /* rendezvous waiting, each as its members (their ops determine the key), sorted */
    uint32_t nr = ktab_count(&e->rendezvous);
    KtKey *keys = g_new(KtKey, MAX(1, nr));
    void **values = g_new(void *, MAX(1, nr));
    ktab_entries(&e->rendezvous, keys, values);
    GByteArray **parts = g_new(GByteArray *, MAX(1, nr));
    for (uint32_t i = 0; i < nr; i++) {
        const Rendezvous *rv = values[i];
        GByteArray *saved = out;
        out = parts[i] = g_byte_array_new();
        /* one waiting past the regions (the embedding gradient's recv) stays as it is */
        ClassOp first = g_array_index(rv->members, ClassOp, 0);
        bool past = first.op >= e->st[first.cls].host_below;
        int64_t last = past ? rv->last_arrival_ns : rv->last_arrival_ns - now;
        PUT(keys[i].tag);
        put_members(e, rv->members, out);
        PUT(rv->arrived);
        PUT(rv->needed);
        PUT(last);
        out = saved;
    }
    if (nr > 1)
        qsort(parts, nr, sizeof *parts, cmp_bytes);
    FIELD("rendezvous waiting", -1, -1);
    PUT(nr);
    for (uint32_t i = 0; i < nr; i++) {
        FIELD("rendezvous (sorted)", -1, i);
        g_byte_array_append(out, parts[i]->data, parts[i]->len);
        g_byte_array_free(parts[i], TRUE);
    }
    g_free(parts);
    g_free(keys);
    g_free(values);
    if (e->flows) {
        int na;
        const int *active = net_flows_active_ids(e->flows, &na);
        for (int a = 0; a < na; a++) { /* in start order: ids are labels */
            const Pending *p = g_ptr_array_index(e->pending, active[a]);
            FIELD("transfer's ops", a, -1);
            put_members(e, p->members, out);
            PUT(p->latency_ns);
            PUT(p->coll_kind);
        }
        net_flows_snapshot(e->flows, now, out, fields);
    }
    return out;
}

/* The start of a period: what the next checkpoint compares with and, with `log`, the additions
 * a skip replays (logged in the first period and once a state has repeated: logging every
 * period cost the 1T interleaved layout, when it never repeated, 15 %). */
static void mark(Engine *e, int64_t now, GByteArray *snap, bool log)
{
    SimSteady *sd = e->steady;
    int nc = e->s->n_classes, ng = MAX(1, e->s->n_groups);
    release_prev(e);
    sd->prev = snap;
    sd->prev_time = now;
    sd->prev_frontier = g_new(int, nc);
    sd->prev_timeline = g_new(guint, nc);
    sd->prev_group_seq = g_new(uint32_t *, nc);
    sd->prev_count = g_new(int *, nc);
    for (int c = 0; c < nc; c++) {
        sd->prev_frontier[c] = e->st[c].frontier;
        sd->prev_timeline[c] = e->res->classes[c].mem.timeline->len;
        sd->prev_group_seq[c] = g_memdup2(e->st[c].group_seq, sizeof(uint32_t) * ng);
        sd->prev_count[c] = g_memdup2(e->res->classes[c].coll_count_by_kind,
                                      sizeof e->res->classes[c].coll_count_by_kind);
    }
    sd->prev_events = e->res->events;
    sd->prev_transfers = e->res->transfers;
    sd->prev_version = e->net_version;
    sd->logged = log;
    if (!log) {
        if (e->acc_log)
            g_array_free(e->acc_log, TRUE);
        e->acc_log = NULL;
        if (e->flows)
            net_flows_unmark(e->flows);
        return;
    }
    if (!e->acc_log)
        e->acc_log = g_array_new(FALSE, FALSE, sizeof(SimAccAdd));
    g_array_set_size(e->acc_log, 0);
    if (e->flows)
        net_flows_mark(e->flows);
}

/* Periods that can be skipped (0: none): the classes advanced by whole periods of their ops
 * since the last checkpoint, from inside their regions, and every op the skipped periods touch
 * stays inside them, with one period to spare. */
static int64_t periods_to_skip(Engine *e, int *step)
{
    SimSteady *sd = e->steady;
    int64_t m = INT64_MAX;
    for (int c = 0; c < e->s->n_classes; c++) {
        const SimRegion *r = &sd->region[c];
        const ClassState *st = &e->st[c];
        step[c] = st->frontier - sd->prev_frontier[c];
        if (step[c] <= 0 || step[c] % r->period != 0 || sd->prev_frontier[c] < r->lo + r->period)
            return 0;
        int h = sim_steady_horizon(st);
        /* a compact run's gap counts: its periods are skipped with the others */
        int64_t room =
            ((int64_t)r->safe_end + (e->omitted ? e->omitted[c] : 0) - h - step[c]) / step[c];
        m = MIN(m, room);
    }
    /* a rendezvous is all inside the regions or all past them */
    uint32_t nr = ktab_count(&e->rendezvous);
    KtKey *keys = g_new(KtKey, MAX(1, nr));
    void **values = g_new(void *, MAX(1, nr));
    ktab_entries(&e->rendezvous, keys, values);
    for (uint32_t i = 0; i < nr && m > 0; i++) {
        const GArray *mem = ((const Rendezvous *)values[i])->members;
        int past = 0;
        for (guint k = 0; k < mem->len; k++) {
            ClassOp mo = g_array_index(mem, ClassOp, k);
            past += mo.op >= e->st[mo.cls].host_below;
        }
        if (past != 0 && past != (int)mem->len)
            m = 0;
    }
    g_free(keys);
    g_free(values);
    return m > 0 && m != INT64_MAX ? m : 0;
}

/* Skips m blocks of step[c] ops (k periods each) in every class: time and sums by m blocks; the
 * engine's op indices by m blocks less a compact run's gap (ops the schedule does not hold:
 * shift[c]), buffer ids, tags and collective numbers by as many periods. Times and the fill are
 * the full program's (sim_op_full: the same ops without a gap). */
static void skip(Engine *e, int64_t now, int64_t m, const int *step)
{
    SimSteady *sd = e->steady;
    int nc = e->s->n_classes, ng = e->s->n_groups;
    int64_t period = now - sd->prev_time, shift = m * period;
    /* per class: the schedule's ops moved, and the same in the region's periods */
    int64_t *moved = g_new(int64_t, MAX(1, nc)), *moved_periods = g_new(int64_t, MAX(1, nc));
    for (int c = 0; c < nc; c++) {
        moved[c] = m * step[c] - e->res->classes[c].gap_ops;
        moved_periods[c] = moved[c] / sd->region[c].period;
    }
    /* rendezvous under their keys m periods on (before the classes' counters move) */
    uint32_t nr = ktab_count(&e->rendezvous);
    KtKey *keys = g_new(KtKey, MAX(1, nr));
    void **values = g_new(void *, MAX(1, nr));
    ktab_entries(&e->rendezvous, keys, values);
    for (uint32_t i = 0; i < nr; i++)
        ktab_remove(&e->rendezvous, keys[i]);
    for (uint32_t i = 0; i < nr; i++) {
        Rendezvous *rv = values[i];
        ClassOp first = g_array_index(rv->members, ClassOp, 0);
        int fc = first.cls, p = sd->region[fc].period, k = step[fc] / p;
        if (first.op >= e->st[fc].host_below) {
            /* waiting past the region (periods_to_skip checked that all its members are) */
        } else if (keys[i].tag == KEY_COLL && e->st[fc].coll_seq) {
            /* numbered in program order: the moved op's number (sim.c start_coll) */
            keys[i].c = e->st[fc].coll_seq[op_moved(e, fc, first.op, moved)];
        } else if (keys[i].tag == KEY_COLL) {
            uint32_t g = keys[i].a; /* the sequence moves as the first member's class's */
            int64_t block = e->st[fc].group_seq[g] - sd->prev_group_seq[fc][g];
            keys[i].c += (uint32_t)(moved_periods[fc] * block / k);
        } else {
            const IrClass *cls = e->s->classes[fc];
            keys[i].c += (uint32_t)(moved_periods[fc] * ((int64_t)ir_op(cls, first.op + p)->u.p2p.tag -
                                                          ir_op(cls, first.op)->u.p2p.tag));
        }
        for (guint x = 0; x < rv->members->len; x++) {
            ClassOp *mo = &g_array_index(rv->members, ClassOp, x);
            mo->op = op_moved(e, mo->cls, mo->op, moved);
        }
        rv->last_arrival_ns += shift;
        ktab_insert(&e->rendezvous, keys[i], rv);
    }
    g_free(keys);
    g_free(values);
    for (int c = 0; c < nc; c++) {
        ClassState *st = &e->st[c];
        SimClassResult *cr = &e->res->classes[c];
        const SimRegion *r = &sd->region[c];
        int K = step[c], b = st->frontier, h = sim_steady_horizon(st), w = h - b;
        int b0 = sd->prev_frontier[c];
        int64_t dK = m * K; /* in the full program's ops; the schedule's: moved[c] */
        /* the window, moved: saved first, as the skipped periods' ops overlap it */
        int32_t *wp = g_new(int32_t, MAX(1, w));
        int64_t *ws = g_new(int64_t, MAX(1, w)), *we = g_new(int64_t, MAX(1, w));
        for (int i = 0; i < w; i++) {
            int64_t start = sim_stored_start_ns(e, c, b + i), end = sim_stored_end_ns(e, c, b + i);
            wp[i] = st->pending[b + i];
            ws[i] = start < 0 ? -1 : start + shift;
            we[i] = end < 0 ? -1 : end + shift;
        }
        /* ops done in the proven period: done now, and op + K not done now. Their copies from
         * the horizon on are left to the fill (sim_op_time_skipped), unless the engine stored
         * times there (a host that ran ahead): pages of skipped ops are never written. A
         * compact run's gap holds copies only (sim_gap_place: it lies past the horizon and the
         * sources' next block), which the schedule has no room for. */
        int n_src = MAX(0, h - b0);
        SimSkipFill *fill = g_new0(SimSkipFill, 1);
        *fill = (SimSkipFill){.src_lo = b0,
                              .n_src = n_src,
                              .step = K,
                              .win_lo = (int32_t)(b + dK),
                              .n_win = w,
                              .first = h,
                              .periods = m,
                              .period_ns = period,
                              .is_src = g_new0(uint8_t, MAX(1, n_src)),
                              .src_start = g_new0(int64_t, MAX(1, n_src)),
                              .src_end = g_new0(int64_t, MAX(1, n_src)),
                              .win_set = g_new0(uint8_t, MAX(1, w))};
        int64_t gap_lo = cr->gap_ops ? cr->gap_at : INT64_MAX, gap_hi = gap_lo + cr->gap_ops;
        for (int i = b0; i < h; i++) {
            if (st->pending[i] >= 0 || (i + K < st->n_ops && st->pending[i + K] < 0))
                continue;
            int64_t start = sim_stored_start_ns(e, c, i), end = sim_stored_end_ns(e, c, i);
            fill->is_src[i - b0] = 1;
            fill->src_start[i - b0] = start;
            fill->src_end[i - b0] = end;
            for (int64_t j = 1; j <= m; j++) {
                int64_t x = i + j * K; /* the full program's */
                if (x >= gap_lo && x < gap_hi) {
                    j = (gap_hi - 1 - i) / K; /* past the gap's copies at once */
                    continue;
                }
                int64_t y = x < gap_lo ? x : x - cr->gap_ops; /* the schedule's */
                st->n_done += st->pending[y] >= 0;
                st->pending[y] = -1;
                if (x < h || (y < st->times_hi && (cr->start_enc[y] || cr->end_enc[y])) ||
                    sim_host_fill_covers(cr->host_fill, (int)x)) {
                    sim_set_start_ns(e, c, (int)y, start + j * period);
                    sim_set_end_ns(e, c, (int)y, end + j * period);
                }
            }
        }
        int64_t to = b + moved[c]; /* the window's first op, moved, in the schedule */
        for (int i = 0; i < w; i++) {
            if (wp[i] < 0)
                continue; /* done: by the fill, or long before (a host that ran ahead) */
            st->n_done -= st->pending[to + i] < 0;
            st->pending[to + i] = wp[i];
            sim_set_start_ns(e, c, (int)(to + i), ws[i]);
            sim_set_end_ns(e, c, (int)(to + i), we[i]);
            fill->win_set[i] = 1;
        }
        cr->fill = fill;
        st->host_mem_start = INT64_MIN; /* read again, should the skip have stored it */
        g_free(wp);
        g_free(ws);
        g_free(we);
        st->frontier += (int)moved[c];
        if (st->host_done != st->host_ops)
            st->horizon += (int)moved[c];
        st->horizon_gpu += (int)moved[c];
        if (st->run_op >= 0) {
            st->run_op = op_moved(e, c, st->run_op, moved);
            st->run_since_ns += shift;
            st->run_end_ns += shift;
        }
        int k = K / r->period;
        for (int g = 0; g < ng; g++)
            st->group_seq[g] +=
                (uint32_t)(moved_periods[c] * (st->group_seq[g] - sd->prev_group_seq[c][g]) / k);
        for (int x = 0; x < IR_COLL_KIND_COUNT; x++)
            cr->coll_count_by_kind[x] +=
                (int)(m * (cr->coll_count_by_kind[x] - sd->prev_count[c][x]));
        mem_tracker_skip(&cr->mem, sd->prev_timeline[c], m, period, r->buffer_from,
                         moved_periods[c] * r->buffer_step);
    }
    /* the sums, the same additions again in the same order (net_repeat_adds: to the bit, whole
     * runs of periods at once where a sum stays in its binade) */
    guint n_acc = e->acc_log->len;
    double **acc_to = g_new(double *, MAX(1, n_acc));
    double *acc_value = g_new(double, MAX(1, n_acc));
    for (guint i = 0; i < n_acc; i++) {
        const SimAccAdd *a = &g_array_index(e->acc_log, SimAccAdd, i);
        acc_to[i] = (double *)((char *)&e->res->classes[a->cls] + a->offset);
        acc_value[i] = a->value;
    }
    net_repeat_adds(acc_to, acc_value, (int)n_acc, m);
    g_free(acc_to);
    g_free(acc_value);
    int32_t dv = e->net_version - sd->prev_version;
    for (uint64_t i = 0; i < pq_size(&e->pq); i++) {
        PqEvent *ev = &e->pq.heap[i];
        ev->time_ns += shift;
        ev->op = ev->cls < 0 ? ev->op + (int32_t)(m * dv) : op_moved(e, ev->cls, ev->op, moved);
    }
    e->net_version += (int32_t)(m * dv);
    if (e->flows) {
        for (guint id = 0; id < e->pending->len; id++) {
            Pending *p = g_ptr_array_index(e->pending, id);
            for (guint x = 0; p && x < p->members->len; x++) {
                ClassOp *mo = &g_array_index(p->members, ClassOp, x);
                mo->op = op_moved(e, mo->cls, mo->op, moved);
            }
        }
        net_flows_skip(e->flows, m, period);
    }
    e->res->events += (uint64_t)m * (e->res->events - sd->prev_events);
    e->res->transfers += (uint64_t)m * (e->res->transfers - sd->prev_transfers);
    e->res->makespan_ns = MAX(e->res->makespan_ns, now + shift);
    e->gap_skipped = true;
    g_free(moved);
    g_free(moved_periods);
}

static bool same_bytes(const GByteArray *a, const GByteArray *b)
{
    return a && b && a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* FSDPSIM_STEADY_DEBUG: this checkpoint against the last one, on stderr: the same, or the
 * first field that differs and its bytes before and now. */
static void debug_diff(const Engine *e, int64_t now, const GByteArray *snap)
{
    const SimSteady *sd = e->steady;
    if (!sd->prev) {
        g_printerr("steady: checkpoint at %" G_GINT64_FORMAT " ns (first, %u bytes)\n", now,
                   snap->len);
        return;
    }
    guint n = MIN(sd->prev->len, snap->len), at = 0;
    while (at < n && sd->prev->data[at] == snap->data[at])
        at++;
    g_printerr("steady: checkpoint at %" G_GINT64_FORMAT " ns, period %" G_GINT64_FORMAT " ns: ",
               now, now - sd->prev_time);
    if (at == n && sd->prev->len == snap->len) {
        g_printerr("same state\n");
        return;
    }
    const NetSnapField *f = NULL;
    for (guint i = 0; i < sd->fields->len; i++) {
        const NetSnapField *x = &g_array_index(sd->fields, NetSnapField, i);
        if (x->offset > at)
            break;
        f = x;
    }
    g_printerr("differs at byte %u of %u (was %u): %s (class or transfer %d, op or index %"
               G_GINT64_FORMAT ");",
               at, snap->len, sd->prev->len, f ? f->field : "?", f ? f->owner : -1,
               f ? f->index : (int64_t)-1);
    if (f && f->owner >= 0 && f->owner < e->s->n_classes && f->index >= 0 &&
        strncmp(f->field, "op", 2) == 0 && f->index < e->st[f->owner].n_ops) {
        const IrClass *c = e->s->classes[f->owner];
        const IrOp *op = ir_op(c, (int)f->index);
        g_printerr(" op %s \"%s\" on %s, %" G_GINT64_FORMAT " past the frontier;",
                   ir_op_kind_name(op->kind), ir_class_string(c, op->name),
                   c->streams[op->stream].name, f->index - e->st[f->owner].frontier);
    }
    guint from = f ? f->offset : at;
    for (int which = 0; which < 2; which++) {
        const GByteArray *b = which ? snap : sd->prev;
        g_printerr(" %s", which ? "now" : "before");
        if (from + 8 <= b->len) {
            int64_t i64;
            double d;
            memcpy(&i64, b->data + from, 8);
            memcpy(&d, b->data + from, 8);
            g_printerr(" %" G_GINT64_FORMAT " / %.17g", i64, d);
        }
    }
    g_printerr("\n");
}

/* The state is checked once a period. It may repeat only after k periods: in a 1F1B pipeline
 * whose stages wait for their peers (a receive posted after the compute before it), the
 * stages' transfers fall into a pattern that cycles over several micro-batches (7 for GPT-3 on
 * pp 8). So each state is looked up among the last SIM_STEADY_HIST; found k periods back, the
 * next k periods are simulated with their additions logged, and if the state then repeats
 * again, whole blocks of k periods are skipped. Cost: a snapshot and up to SIM_STEADY_HIST
 * comparisons of it per period, until the proof. */
void sim_steady_check(Engine *e, int64_t now)
{
    SimSteady *sd = e->steady;
    const SimRegion *anchor = &sd->region[e->steady_cls];
    GByteArray *snap = snapshot(e, now);
    bool same = sd->logged && same_bytes(sd->prev, snap);
    if (sd->fields)
        debug_diff(e, now, snap);
    int *step = g_new(int, e->s->n_classes);
    int64_t m = same && (!e->flows || net_flows_can_skip(e->flows)) ? periods_to_skip(e, step) : 0;
    if (m > 0 && e->omitted && !sim_gap_place(e, m, step)) {
        g_byte_array_free(snap, TRUE);
        g_free(step);
        sim_compact_refuse(e); /* a compact run's gap cannot go inside the skip */
        return;
    }
    if (m > 0) {
        skip(e, now, m, step);
        /* in periods of the anchor class's program, m blocks of k */
        e->res->steady_periods = (uint64_t)(m * (step[e->steady_cls] / anchor->period));
        g_byte_array_free(snap, TRUE);
        g_free(step);
        sim_steady_free(e); /* one skip: the rest is the cool-down */
        return;
    }
    g_free(step);
    bool first = sd->n_hist == 0;
    int k = 0;
    for (int i = 0; i < sd->n_hist && !k; i++)
        if (same_bytes(sd->hist[i], snap))
            k = i + 1;
    if (sd->n_hist == SIM_STEADY_HIST)
        g_byte_array_free(sd->hist[--sd->n_hist], TRUE);
    memmove(sd->hist + 1, sd->hist, sizeof sd->hist[0] * (size_t)sd->n_hist);
    sd->hist[0] = g_byte_array_new();
    g_byte_array_append(sd->hist[0], snap->data, snap->len);
    sd->n_hist++;
    /* a state seen k periods ago is likely to come back k periods on: log them to replay; and
     * the first period, whose repeat can then be skipped at once (a proof one period sooner:
     * the 1T interleaved layout at 512 micro-batches has room for one skip after it, none
     * after two) */
    mark(e, now, snap, k > 0 || first);
    e->steady_op += (k > 0 ? k : 1) * anchor->period;
    /* A state that has not repeated after SIM_STEADY_TRIES + SIM_STEADY_HIST checks is taken as
     * one that does not; each try costs a snapshot (tens of kB). The pipelines that repeat do so
     * within a few periods of the steady phase. */
    if (e->steady_op >= anchor->hi || ++sd->tries >= SIM_STEADY_TRIES + SIM_STEADY_HIST) {
        sim_steady_free(e);
        if (e->omitted)
            sim_compact_refuse(e); /* no skip to come: the full program, at once */
    }
}

const SimRegion *sim_steady_regions(const Engine *e)
{
    return e->steady ? e->steady->region : NULL;
}

void sim_steady_postpone(Engine *e, int64_t now)
{
    SimSteady *sd = e->steady;
    const SimRegion *anchor = &sd->region[e->steady_cls];
    /* A compact run whose hosts end only after its GPU would reach the anchor's region end (a
     * host ahead by the whole program's launches, the gap's included: small micro-batches on
     * few stages) can take no checkpoint before it: refused at the second postponement, from
     * the period the first measured, not at the region's end. */
    if (e->omitted && sd->postponed_ns != INT64_MIN) {
        int64_t host_end = INT64_MIN;
        for (int c = 0; c < e->s->n_classes; c++)
            if (e->st[c].host_mems)
                host_end = MAX(host_end, e->st[c].host_end);
        int64_t periods = (anchor->safe_end - e->steady_op) / anchor->period;
        if (now + periods * (now - sd->postponed_ns) <= host_end) {
            sim_steady_free(e);
            sim_compact_refuse(e);
            return;
        }
    }
    sd->postponed_ns = now;
    e->steady_op += anchor->period;
    if (e->steady_op >= anchor->hi) {
        sim_steady_free(e);
        if (e->omitted)
            sim_compact_refuse(e); /* no skip to come: the full program, at once */
    }
}

bool sim_steady_region(const Engine *e, int ci, int *lo, int *hi, int *period)
{
    if (!e->steady)
        return false;
    const SimRegion *r = &e->steady->region[ci];
    *lo = r->lo;
    *hi = r->hi;
    *period = r->period;
    return true;
}
