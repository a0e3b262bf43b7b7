/* sim_host: the lazy host. The CPU that launches a class's kernels runs ahead of its GPU, so most
 * of a pipeline's events are host ops (786 k of 983 k op ends for the 1T pp 64 layout at 512
 * micro-batches, 6.29 M of 6.48 M at 4096), each once through the queue, scattered over the
 * program (a cache miss per op array touched) and interleaved with every other class's.
 *
 * A class's host can be lazy when it never waits for its GPU: one host stream, whose ops are
 * host ops, allocations and frees, waiting only for host ops; and GPU ops wait for host ops only
 * through the op that issued them (the last host op before them, sim.c class_edges). Then the
 * host's timeline is its own: each host op starts when the one before ends. The host is queued
 * as before until it runs ahead: a host op whose end starts no GPU op, with no GPU op waiting for
 * a later host op alone (sim_host_decide). From there every later host op is handled at once, in
 * program order (sim_host_run_ahead: their times, the predecessor counts of the ops they issue,
 * counters), their allocations and frees kept to be replayed in time order, and nothing queued.
 *
 * Why the results are the queue's to the bit. The queue pops by (time, seq); seq is the push
 * order. The other events are pushed in the same order as before (a host op handled ahead
 * pushes nothing), so they pop in the same order among themselves. What a host op's end does
 * touches only its class and commutes with other events (decrements, maxima, counts), except:
 *  - a GPU op whose other predecessors are done: it starts at its host op's end, as the queue
 *    would have it start when that end pops. If that end is later than now, it is queued (a late
 *    event, cls -2 - class) and starts it there; pushed later than the queue would have, it must
 *    be alone at its ns (no event popped or queued then). At now: the order is the seq's;
 *  - allocations and frees: the class's memory timeline takes a GPU stream's in the order of the
 *    queue, so the host's are replayed first up to then (sim_host_memory); at the same ns the
 *    order is the seq's;
 *  - a steady-state checkpoint reads the state: every host op handled ahead must have ended by
 *    then, and no late event be queued; else the checkpoint waits a period
 *    (sim_steady_postpone: a long pipeline's host, a whole program of launches ahead, ends
 *    after its first periods).
 * Where the order is the seq's or the checks fail, the run is abandoned and made again with every
 * op queued (sim.c sim_run; FSDPSIM_NO_LAZY_HOST=1 does that from the start): hand-made schedules
 * with round durations do (test_host), generated ones seldom. The host behind its GPU at the
 * start (every host op starting a GPU op at the host's time, ties at the same ns) stays queued,
 * and after a steady-state skip hosts not yet ahead stay queued (the ops moved).
 *
 * Cost: O(ops) once per class to check the host can be lazy; per host op handled ahead O(its
 * successors), in program order (no queue push or pop, no class interleaving: the memory case's
 * simulation 1320 -> 620 ms of CPU); per GPU op started, O(ops back to its host op). */
#include "sim_engine.h"

void sim_host_prepare(Engine *e, int ci, bool allowed)
{
    ClassState *st = &e->st[ci];
    const IrClass *c = st->cls;
    st->host_stream = st->host_next = st->host_wait = -1;
    st->host_pos = 0;
    st->host_from = INT32_MAX;
    st->host_lazy = false;
    st->host_mems = NULL;
    st->host_mem_at = 0;
    st->host_mem_start = INT64_MIN;
    st->late_hi = -1;
    st->gpu_mem_ns = -1;
    int host = -1;
    for (int i = 0; allowed && i < c->n_streams; i++) {
        if (!c->streams[i].host)
            continue;
        if (host >= 0)
            return; /* two host threads: their ops interleave */
        host = i;
    }
    if (host < 0)
        return;
    /* a GPU op that waits for its host op alone: the first of its stream, with no deps */
    gboolean *seen = g_new0(gboolean, c->n_streams);
    int last_host = -1, wait = -1;
    bool ok = true;
    for (int i = 0; ok && i < st->n_ops; i++) {
        const IrOp *op = ir_op(c, i);
        bool on_host = op->stream == host;
        if (on_host && op->kind != IR_OP_HOST && op->kind != IR_OP_ALLOC && op->kind != IR_OP_FREE)
            ok = false;
        const uint32_t *deps = ir_op_deps(c, op);
        for (uint32_t d = 0; ok && d < op->n_deps; d++)
            ok = (ir_op(c, deps[d])->stream == host) == on_host;
        if (on_host) {
            last_host = i;
        } else {
            if (!seen[op->stream] && op->n_deps == 0 && last_host >= 0)
                wait = last_host;
            seen[op->stream] = TRUE;
        }
    }
    g_free(seen);
    if (!ok)
        return;
    st->host_stream = host;
    st->host_wait = wait;
}

void sim_host_free(Engine *e, int ci)
{
    if (e->st[ci].host_mems)
        g_array_free(e->st[ci].host_mems, TRUE);
    e->st[ci].host_mems = NULL;
}

void sim_host_decide(Engine *e, int ci, int op)
{
    ClassState *st = &e->st[ci];
    bool lazy = st->host_wait <= op;
    for (uint32_t k = st->succ_start[op]; k < st->succ_start[op + 1] && lazy; k++) {
        uint32_t next = st->succ[k];
        lazy = sim_host_is(st, (int)next) || st->pending[next] > 1;
    }
    st->host_lazy = lazy;
}

void sim_host_run_ahead(Engine *e, int ci)
{
    ClassState *st = &e->st[ci];
    const IrClass *c = st->cls;
    SimClassResult *cr = &e->res->classes[ci];
    int h = st->host_next;
    st->host_next = -1;
    st->host_from = h;
    st->host_mems = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    /* Inside the steady state's region, past its first period from here, the host's times are
     * the first period's moved by whole host periods (each checked): not stored, so that their
     * pages stay unwritten (SimHostFill; 12 M ops for 1T at 4096 micro-batches, 16 bytes each,
     * every page holding host ops) */
    SimHostFill *fill = NULL;
    int lo, hi = 0, period;
    if (!cr->host_fill && sim_steady_region(e, ci, &lo, &hi, &period) &&
        hi - MAX(lo, h + 1) >= 2 * period) {
        fill = g_new0(SimHostFill, 1);
        *fill = (SimHostFill){.anchor = MAX(lo, h + 1),
                              .period = period,
                              .last = -1,
                              .step_ns = INT64_MIN,
                              .is_host = g_new(uint8_t, period),
                              .start = g_new0(int64_t, period),
                              .end = g_new0(int64_t, period)};
        for (int r = 0; r < period; r++)
            fill->is_host[r] = sim_host_is(st, fill->anchor + r);
        cr->host_fill = fill;
    }
    /* as end_op and sim_start_op would, event by event, less what host ops do not do (overlap,
     * a running compute op, GPU horizons), and allocations and frees kept for later */
    int64_t now = sim_stored_end_ns(e, ci, h);
    while (h >= 0) {
        st->pending[h] = -1;
        st->n_done++;
        e->res->events++; /* the queue counted it */
        e->res->makespan_ns = MAX(e->res->makespan_ns, now);
        st->host_done += h < st->host_below;
        st->host_pos = h + 1;
        st->host_end = now;
        int next_host = -1;
        int64_t next_end = 0;
        bool queued = false;
        for (uint32_t k = st->succ_start[h]; k < st->succ_start[h + 1]; k++) {
            uint32_t next = st->succ[k];
            if ((int)next >= st->horizon && (int)next < st->host_below)
                st->horizon = (int)next + 1;
            if (--st->pending[next] != 0)
                continue;
            if (!sim_host_is(st, (int)next)) {
                /* a GPU op waiting for this host op alone: it starts at its end, queued (at a
                 * time a compact run's gap, not yet placed, may move: sim_gap_place) */
                if (!queued)
                    pq_push(&e->pq, now, -2 - ci, h);
                queued = true;
                if (h < st->host_below)
                    st->late_hi = MAX(st->late_hi, h);
                continue;
            }
            const IrOp *op = ir_op(c, (int)next);
            if (e->omitted && !st->gap_crossed && (int)next >= st->host_below) {
                /* a compact run's gap: the omitted periods' host ops, whole host periods of a
                 * timeline shown periodic (the fill's check), wherever in the region the skip
                 * puts them (sim_gap.c): the ops past the region take the full program's times
                 * here, those inside it read theirs from the fill; else the run is refused */
                if (!fill || fill->step_ns == INT64_MIN || st->host_aperiodic) {
                    sim_compact_refuse(e);
                    return;
                }
                st->gap_cross_ns = now; /* the host's clock as it leaves the region */
                int64_t periods = e->omitted[ci] / period, per_period = 0;
                for (int r = 0; r < period; r++)
                    per_period += fill->is_host[r];
                now += periods * fill->step_ns;
                e->res->events += (uint64_t)(periods * per_period); /* the queue counted them */
                st->gap_crossed = true;
            }
            int64_t end = now;
            if (op->kind == IR_OP_HOST)
                end += sim_op_duration_ns(e->cfg, c, op);
            else
                g_array_append_val(st->host_mems, next);
            bool filled = false;
            int full = sim_op_full(cr, (int)next); /* the fill's index (next but past a gap) */
            if (fill && full >= fill->anchor && (int)next < hi) {
                int r = (full - fill->anchor) % period;
                int64_t t = (full - fill->anchor) / period;
                if (t == 0) {
                    fill->start[r] = now;
                    fill->end[r] = end;
                } else {
                    if (fill->step_ns == INT64_MIN)
                        fill->step_ns = now - fill->start[r];
                    filled = now == fill->start[r] + t * fill->step_ns &&
                             end == fill->end[r] + t * fill->step_ns;
                    st->host_aperiodic |= !filled;
                }
            }
            if (filled) {
                fill->last = full;
            } else {
                sim_set_start_ns(e, ci, (int)next, now);
                sim_set_end_ns(e, ci, (int)next, end);
            }
            next_host = (int)next;
            next_end = end;
        }
        h = next_host;
        now = next_end;
    }
}

void sim_host_waits(Engine *e, int ci, int op)
{
    ClassState *st = &e->st[ci];
    if (st->host_pos > op)
        return; /* its host op is done */
    int h = op - 1;
    while (h >= st->host_pos && !sim_host_is(st, h))
        h--;
    if (h >= st->host_pos && st->pending[h] >= 0)
        st->host_wait = MAX(st->host_wait, h);
}

bool sim_host_ready(Engine *e, int ci, int op, int64_t now)
{
    ClassState *st = &e->st[ci];
    int h = op - 1;
    while (h >= st->host_from && !sim_host_is(st, h))
        h--;
    if (h < st->host_from)
        return true; /* issued by a host op of the queue's (or none) */
    int64_t end = sim_stored_end_ns(e, ci, h);
    /* the op's start hangs on h's time, which a compact run's gap, not yet placed, may move
     * (sim_gap.c) */
    if (h < st->host_below && !e->gap_skipped)
        st->late_hi = MAX(st->late_hi, h);
    if (end < now)
        return true;
    if (end == now) {
        e->retry = true; /* which comes first is the queue's seq */
        return false;
    }
    pq_push(&e->pq, end, -2 - ci, h);
    return false;
}

/* The allocation or free `op` of a host that ran ahead, at its time. */
static bool replay(Engine *e, int ci, int op, int64_t start_ns)
{
    const IrClass *c = e->st[ci].cls;
    const IrOp *o = ir_op(c, op);
    SimClassResult *cr = &e->res->classes[ci];
    const char *name = ir_class_string(c, o->u.mem.buffer);
    uint32_t buffer = sim_buffer(&e->st[ci], o);
    if (o->kind == IR_OP_ALLOC)
        return mem_tracker_alloc(&cr->mem, start_ns, buffer, name,
                                 (IrMemCategory)o->u.mem.category, o->u.mem.bytes, e->error);
    return mem_tracker_free(&cr->mem, start_ns, buffer, name, e->error);
}

bool sim_host_memory(Engine *e, int ci, int64_t now)
{
    ClassState *st = &e->st[ci];
    while (st->host_mem_at < st->host_mems->len && !e->failed) {
        int op = (int)g_array_index(st->host_mems, uint32_t, st->host_mem_at);
        /* read once per op, not at every GPU allocation before it (a host fill's is derived) */
        if (st->host_mem_start == INT64_MIN)
            st->host_mem_start = sim_stored_start_ns(e, ci, op);
        int64_t start = st->host_mem_start;
        if (start >= now) {
            if (start == now)
                e->retry = true; /* which comes first is the queue's seq */
            break;
        }
        st->host_mem_at++;
        st->host_mem_start = INT64_MIN;
        if (!replay(e, ci, op, start))
            e->failed = true;
    }
    return !e->retry && !e->failed;
}

void sim_host_event(Engine *e, const PqEvent *ev)
{
    int ci = -2 - ev->cls, h = ev->op;
    ClassState *st = &e->st[ci];
    PqEvent next;
    /* the same host op queued again for another GPU op: one event starts them all */
    while (pq_peek(&e->pq, &next) && next.cls == ev->cls && next.op == h &&
           next.time_ns == ev->time_ns)
        pq_pop(&e->pq, &next);
    if (ev->time_ns == e->last_pop_ns || (pq_peek(&e->pq, &next) && next.time_ns == ev->time_ns)) {
        e->retry = true; /* not alone at its time: the queue's order is not known */
        return;
    }
    e->last_pop_ns = ev->time_ns;
    for (uint32_t k = st->succ_start[h]; k < st->succ_start[h + 1] && !e->failed && !e->retry;
         k++) {
        uint32_t op = st->succ[k];
        if (!sim_host_is(st, (int)op) && st->pending[op] == 0 &&
            sim_stored_start_ns(e, ci, (int)op) < 0)
            sim_start_op(e, ci, (int)op, ev->time_ns);
    }
}

bool sim_host_checkpoint(Engine *e, int64_t now)
{
    /* the queue would hold a host event, and have done less: not a state the snapshot can
     * show; the results do not depend on it (the lazy host's are the queue's), so the
     * checkpoint waits for a later period (a long pipeline's host, ahead by a whole program of
     * launches, ends after the first periods: GPT-3 175B pp 8 at 3000 micro-batches ran again
     * with every op queued before) */
    for (int c = 0; c < e->s->n_classes; c++)
        if (e->st[c].host_mems && e->st[c].host_end >= now)
            return false;
    for (uint64_t i = 0; i < pq_size(&e->pq); i++)
        if (e->pq.heap[i].cls < -1)
            return false;
    for (int c = 0; c < e->s->n_classes && !e->retry && !e->failed; c++)
        if (e->st[c].host_mems)
            sim_host_memory(e, c, now);
    return !e->retry && !e->failed;
}

void sim_host_finish(Engine *e)
{
    for (int c = 0; c < e->s->n_classes && !e->retry && !e->failed; c++)
        if (e->st[c].host_mems)
            sim_host_memory(e, c, INT64_MAX);
}
