/* sim_region: a class's periodic region, the ops of a pipeline's steady phase that repeat with
 * a fixed period (sim_steady.c proves and skips periods inside it). */
#include "sim_engine.h"

#include <limits.h>

uint32_t *sim_buffer_numbers(const IrClass *c)
{
    guint n_strings = MAX(1u, c->strings->len);
    uint32_t *number = g_new(uint32_t, n_strings), next = 0;
    uint8_t *seen = g_new0(uint8_t, n_strings);
    for (int i = 0; i < ir_class_n_ops(c); i++) {
        const IrOp *op = ir_op(c, i);
        if ((op->kind == IR_OP_ALLOC || op->kind == IR_OP_FREE) && !seen[op->u.mem.buffer]) {
            seen[op->u.mem.buffer] = 1;
            number[op->u.mem.buffer] = next++;
        }
    }
    g_free(seen);
    return number;
}

static bool same_payload(const IrClass *c, const IrOp *a, const IrOp *b)
{
    switch (a->kind) {
    case IR_OP_HOST:
        return a->u.host.seconds == b->u.host.seconds;
    case IR_OP_COMPUTE: {
        const IrCompute *x = ir_op_compute(c, a), *y = ir_op_compute(c, b);
        return x->flops == y->flops && x->bytes == y->bytes && x->model_flops == y->model_flops &&
               x->seconds == y->seconds && x->kern_first == y->kern_first &&
               x->kernels == y->kernels;
    }
    case IR_OP_COLL:
        return a->u.coll.coll == b->u.coll.coll && a->u.coll.group == b->u.coll.group &&
               a->u.coll.bytes == b->u.coll.bytes && a->u.coll.sms == b->u.coll.sms;
    case IR_OP_SEND:
    case IR_OP_RECV:
        return a->u.p2p.peer_offset == b->u.p2p.peer_offset && a->u.p2p.bytes == b->u.p2p.bytes;
    case IR_OP_MEMCPY:
        return a->u.memcpy.bytes == b->u.memcpy.bytes &&
               a->u.memcpy.to_device == b->u.memcpy.to_device;
    case IR_OP_ALLOC:
    case IR_OP_FREE:
        return a->u.mem.category == b->u.mem.category && a->u.mem.bytes == b->u.mem.bytes;
    default:
        return false;
    }
}

/* Whether op j is op i moved along by j - i ops (buffer and tag steps fixed by the first mem op
 * and the first send/recv seen). */
static bool alike(const ClassState *st, int i, int j, SimRegion *r)
{
    const IrClass *c = st->cls;
    const IrOp *a = ir_op(c, i), *b = ir_op(c, j);
    if (a->kind != b->kind || a->stream != b->stream || a->phase != b->phase ||
        a->dtype != b->dtype || a->n_deps != b->n_deps || !same_payload(c, a, b))
        return false;
    const uint32_t *da = ir_op_deps(c, a), *db = ir_op_deps(c, b);
    for (uint32_t k = 0; k < a->n_deps; k++)
        if ((int64_t)i - da[k] != (int64_t)j - db[k])
            return false;
    if (a->kind == IR_OP_ALLOC || a->kind == IR_OP_FREE) {
        int64_t step = (int64_t)sim_buffer(st, b) - sim_buffer(st, a);
        if (!r->has_buffer) {
            r->has_buffer = true;
            r->buffer_step = step;
        }
        if (step != r->buffer_step || step <= 0)
            return false;
    }
    if (a->kind == IR_OP_SEND || a->kind == IR_OP_RECV) {
        int64_t step = (int64_t)b->u.p2p.tag - a->u.p2p.tag;
        if (!r->has_tag) {
            r->has_tag = true;
            r->tag_step = step;
        }
        if (step != r->tag_step)
            return false;
    }
    return true;
}

/* Whether ops lo..lo + period hold forward and backward ops both: a micro-batch's whole step
 * (a 1F1B pipeline's steady pair, an accumulation step), not a repeat of the layers inside one
 * pass. */
static bool whole_step(const IrClass *c, int lo, int period)
{
    bool fwd = false, bwd = false;
    for (int i = lo; i < lo + period && !(fwd && bwd); i++) {
        fwd |= ir_op(c, i)->phase == IR_PHASE_FORWARD;
        bwd |= ir_op(c, i)->phase == IR_PHASE_BACKWARD;
    }
    return fwd && bwd;
}

/* The periodic region around the middle of class c's program: the shortest period that repeats
 * twice from the middle, extended both ways while ops repeat, over at least 4 periods and a
 * quarter of the program, or, in a compact program (a 1F1B pipeline's: src/compact) where a
 * period is a micro-batch's whole step, 4 periods: its first stage has few steady pairs between
 * its long warm-up and cool-down (1T pp 64 at 74 micro-batches: 11 pairs in 3300 ops). Not in
 * others: an interleaved pipeline's steps repeat for pp steps a chunk, a region shorter than
 * its whole period of pp micro-batches, too short to prove and skip: a compact interleaved
 * program names its period (the generator's group), the only one tried. O(ops) for the
 * extension, O(ops x candidates tried) at worst for the period (the 1T SP interleaved layout's
 * full program: 400 M instructions, where its chunk runs repeat each step for pp steps). */
bool sim_region_find(const ClassState *st, bool compact, int period_only, SimRegion *out)
{
    const IrClass *c = st->cls;
    int n = ir_class_n_ops(c);
    if (n < 64)
        return false;
    int mid = n / 2;
    for (int j = mid + MAX(1, period_only); j + (j - mid) <= n; j++) {
        if (period_only > 0 && j - mid > period_only)
            break;
        SimRegion r = {0};
        int period = j - mid, t = 0;
        while (t < period && alike(st, mid + t, j + t, &r))
            t++;
        if (t < period)
            continue;
        int lo = mid, hi = j + period;
        while (lo > 0 && alike(st, lo - 1, lo - 1 + period, &r))
            lo--;
        while (hi < n && alike(st, hi - period, hi, &r))
            hi++;
        if (hi - lo < 4 * period || (hi - lo < n / 4 && !(compact && whole_step(c, lo, period))))
            continue; /* a repeat inside one micro-batch (the layers), not the pipeline's */
        r.lo = lo;
        r.hi = hi;
        r.period = period;
        /* the region's buffers: from the lowest id it allocates; every buffer allocated before
         * it must lie below (they do not move along) */
        r.buffer_from = UINT32_MAX;
        for (int i = lo; i < hi; i++)
            if (ir_op(c, i)->kind == IR_OP_ALLOC)
                r.buffer_from = MIN(r.buffer_from, sim_buffer(st, ir_op(c, i)));
        for (int i = 0; i < lo; i++)
            if (ir_op(c, i)->kind == IR_OP_ALLOC && sim_buffer(st, ir_op(c, i)) >= r.buffer_from)
                return false;
        *out = r;
        return true;
    }
    return false;
}

SimPrep *sim_prep_compact(const IrSchedule *sched, const int *period)
{
    SimPrep *p = g_new0(SimPrep, 1);
    int n = sched->n_classes;
    p->n_classes = n;
    p->buffer_of = g_new0(uint32_t *, MAX(1, n));
    p->region = g_new0(SimRegion, MAX(1, n));
    p->found = g_new0(bool, MAX(1, n));
    for (int c = 0; c < n; c++) {
        ClassState st = {.cls = sched->classes[c],
                         .buffer_of = sim_buffer_numbers(sched->classes[c])};
        p->buffer_of[c] = st.buffer_of;
        p->found[c] = (!period || period[c] > 0) &&
                      sim_region_find(&st, true, period ? period[c] : 0, &p->region[c]);
    }
    return p;
}

int sim_prep_periods(const SimPrep *p)
{
    int fewest = INT_MAX;
    for (int c = 0; c < p->n_classes && fewest >= 0; c++)
        fewest = p->found[c]
                     ? MIN(fewest, (p->region[c].hi - p->region[c].lo) / p->region[c].period)
                     : -1;
    return p->n_classes > 0 ? fewest : -1;
}

void sim_prep_free(SimPrep *p)
{
    if (!p)
        return;
    for (int c = 0; c < p->n_classes; c++)
        g_free(p->buffer_of[c]);
    g_free(p->buffer_of);
    g_free(p->region);
    g_free(p->found);
    g_free(p);
}

int sim_region_periods(const IrSchedule *sched)
{
    SimPrep *p = sim_prep_compact(sched, NULL);
    int fewest = sim_prep_periods(p);
    sim_prep_free(p);
    return fewest;
}
