/* sim_host: the lazy host. The CPU that launches a class's kernels runs ahead of its GPU, so most
 * of a pipeline's events are host ops (786 k of 983 k op ends for the 1T pp 64 layout at 512
 * micro-batches, 6.29 M of 6.48 M at 4096), each once through the queue, scattered over the
 * program (a cache miss per op array touched) and interleaved with every other class's.
 *
 * A class's host can be lazy when it never waits for its GPU: one host stream, whose ops are
 * host ops, allocations and frees, waiting only for host ops; and GPU ops wait for host ops only
 * through the op that issued them (the last host op before them, sim.c class_edges). Then a host
 * op touches only its class: predecessor counts, horizon and counters, its memory timeline. While
 * the host is ahead (its ops do not start GPU ops), its next op is parked (ClassState.host_next)
 * instead of queued, and parked ops are handled in program order (a catch-up, sim_end_op as for
 * an event) when something needs them: before each event of their class, the ops that end before
 * it; at a steady-state checkpoint, every class's; at the end, the rest.
 *
 * Why the results are the queue's to the bit. The queue pops by (time, seq); seq is the push
 * order. Events that are not parked host ops are pushed in the same order as before (a parked op
 * pushes nothing), so they pop in the same order among themselves. A parked op ending at t
 * before an event at t' > t of its class is handled before it, as the queue did; its effects on
 * other classes are none, and its effects on its class commute with other classes' events
 * (decrements, maxima, counts; the memory timeline is the class's). What does not commute is
 * checked, and where the order cannot be shown the run is abandoned and made again with every
 * op queued (sim.c sim_run; FSDPSIM_NO_LAZY_HOST=1 does that from the start):
 *  - a GPU op whose other predecessors are done waits for a host op not yet done: the host op's
 *    end goes into the queue (a late event, cls -2 - class) and starts it there; that late event
 *    was pushed later than the queue's would have been, so it must be alone at its time (no event
 *    popped or queued at the same ns), else abandon;
 *  - an allocation or free of a GPU stream at the time a parked host op ends (the memory
 *    timeline's order would be the seq's): abandon;
 *  - a checkpoint while a lazy host is not done (the snapshot would lack its queued event), or
 *    with a late event queued: abandon; the bench layouts' hosts are done long before;
 *  - a catch-up that would start a GPU op (it would start late): abandon (a safety net: the late
 *    events above prevent it).
 * A host behind its GPU (at the start, before the GPU has work queued) makes every host op start
 * a GPU op at the host's time, with ties between host and GPU events at the same ns: there the
 * host is queued as before (host_lazy false), and it parks again from the first real host event
 * that starts no GPU op and no GPU op waits for a later host op alone (sim_host_decide). Ties in
 * the queued part are the queue's own. After a steady-state skip hosts stay queued (the ops GPU
 * ops wait for moved).
 *
 * Cost: O(ops) once per class to check the host can be lazy; O(1) per host op handled (no queue
 * push or pop), plus O(ops between) for a GPU op that waits for a host op not yet issued. */
#include "sim_engine.h"

void sim_host_prepare(Engine *e, int ci, bool allowed)
{
    ClassState *st = &e->st[ci];
    const IrClass *c = st->cls;
    st->host_stream = st->host_next = st->host_wait = -1;
    st->host_pos = 0;
    st->host_lazy = false;
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

void sim_host_catch_up(Engine *e, int ci, int64_t before_ns, int until_op)
{
    ClassState *st = &e->st[ci];
    const int64_t *end = e->res->classes[ci].end_ns;
    e->host_catching_up = true;
    while (st->host_next >= 0 && !e->retry && !e->failed) {
        int h = st->host_next;
        if (until_op >= 0 ? h >= until_op : end[h] >= before_ns)
            break;
        st->host_next = -1;
        e->res->events++; /* the queue counted it */
        sim_end_op(e, ci, h, end[h], false);
    }
    e->host_catching_up = false;
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

void sim_host_waits(Engine *e, int ci, int op)
{
    ClassState *st = &e->st[ci];
    if (st->host_pos > op)
        return; /* its host op is done */
    int h = op - 1;
    while (h >= st->host_pos && !sim_host_is(st, h))
        h--;
    if (h < st->host_pos || st->pending[h] < 0)
        return;
    st->host_wait = MAX(st->host_wait, h);
    if (!st->host_lazy)
        return; /* queued: its event starts the op */
    if (st->host_next < 0 || st->host_next > h) {
        e->retry = true; /* not expected: a lazy host's first op not done is parked */
        return;
    }
    /* its end: the parked op's, then the host ops between, each starting at the last one's end
     * (sim_start_op: host ops their duration, allocations and frees none) */
    int64_t t = e->res->classes[ci].end_ns[st->host_next];
    for (int i = st->host_next + 1; i <= h; i++) {
        const IrOp *o = ir_op(st->cls, i);
        if (o->stream == st->host_stream && o->kind == IR_OP_HOST)
            t += sim_op_duration_ns(e->cfg, st->cls, o);
    }
    pq_push(&e->pq, t, -2 - ci, h);
}

bool sim_host_event(Engine *e, const PqEvent *ev)
{
    int ci = -2 - ev->cls, h = ev->op;
    ClassState *st = &e->st[ci];
    if (!st->host_lazy || st->pending[h] < 0)
        return false; /* done, or queued since (its own event starts the op) */
    PqEvent next;
    if (ev->time_ns == e->last_pop_ns || (pq_peek(&e->pq, &next) && next.time_ns == ev->time_ns)) {
        e->retry = true; /* not alone at its time: the queue's order is not known */
        return false;
    }
    sim_host_catch_up(e, ci, 0, h);
    if (e->retry || e->failed || st->host_next != h ||
        e->res->classes[ci].end_ns[h] != ev->time_ns) {
        e->retry = true;
        return false;
    }
    st->host_next = -1;
    return true;
}

bool sim_host_checkpoint(Engine *e, int64_t now)
{
    for (int c = 0; c < e->s->n_classes && !e->retry; c++) {
        ClassState *st = &e->st[c];
        if (st->host_next >= 0)
            sim_host_catch_up(e, c, now, -1);
        if (st->host_next >= 0)
            e->retry = true; /* a host not done: its queued event would be in the snapshot */
    }
    for (uint64_t i = 0; i < pq_size(&e->pq) && !e->retry; i++)
        if (e->pq.heap[i].cls < -1)
            e->retry = true;
    return !e->retry;
}

void sim_host_finish(Engine *e)
{
    for (int c = 0; c < e->s->n_classes && !e->retry && !e->failed; c++)
        sim_host_catch_up(e, c, INT64_MAX, -1);
}
