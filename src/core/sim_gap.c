/* sim_gap: a compact run's gap (sim_run_compact, src/compact). A long 1F1B pipeline's program is
 * generated for fewer micro-batches; what it leaves out is whole periods of each class's
 * periodic region (sim_region.c), as many in every class. The engine puts them back where the
 * steady state skips (sim_steady.c): the skip moves time, sums and counts by its m blocks as
 * ever, and the engine's op indices (and buffer ids, tags, collective numbers) by m blocks less
 * the gap, which the schedule does not hold. Readers see the full program's indices
 * (SimClassResult.gap_at, sim_op_ir, sim_op_start_ns): the gap's ops are skipped ops whose times
 * the skip fill derives. Where any of it cannot hold, the engine refuses (sim_compact_refuse)
 * and the caller runs a larger program or the full one.
 *
 * Where the gap goes is decided at the skip, once the proof says where each class is: the first
 * host op past the ops the skip's window and sources take (horizon + a block). So the program
 * needs room for the proof and a block past it, not for a margin guessed before the run (40
 * periods before the region's end, sized for the class that ends up furthest from its end at
 * the proof: the 1T layout's stages are up to 20 periods apart there, and the program had 168
 * micro-batches of 512; now 76). That works because the host, which runs ahead of its GPU
 * through the whole program long before the proof (sim_host.c), does not need to know where the
 * gap lies: inside the region its timeline is periodic (the host fill), so its ops' times are
 * the first period's moved by whole host periods, read from the full program's index; and it
 * moves its clock by the gap's host periods where it leaves the region, so every op past the
 * region has its full program's time wherever the gap is put in the region. What the host did
 * with region ops before the gap was known is checked or corrected when it is put there
 * (sim_gap_place): allocations and frees replayed at times that lacked the gap (the timeline's
 * samples and the peak's time move by it; a GPU stream's allocation or free since the period
 * before the gap, whose order with them, or the peak inside the gap, would change, refuses),
 * and GPU ops whose start hung on such a host op's end (refuses).
 *
 * The memory a period holds must be the host's (allocations and frees on the host stream) and
 * balanced (a period frees, category by category, the bytes it allocates): the gap's are not
 * replayed, so the peak and what it holds are the full program's only where no period adds to
 * them. The memory timeline lacks the gap's samples (only --trace reads it, and a run with
 * --trace is never compact). */
#include "sim_engine.h"

/* Before the run: whether each class's omitted ops can go back in its region at all (whole
 * periods, as many in every class, a lazy host, the region's allocations and frees the host's);
 * else the run is refused. O(ops of the regions). */
void sim_gap_check(Engine *e)
{
    const SimRegion *regions = sim_steady_regions(e);
    int64_t periods = -1;
    bool ok = regions != NULL;
    for (int c = 0; ok && c < e->s->n_classes; c++) {
        const SimRegion *r = &regions[c];
        const ClassState *st = &e->st[c];
        int64_t d = e->omitted[c];
        ok = d > 0 && d % r->period == 0 && (periods < 0 || d / r->period == periods) &&
             st->host_stream >= 0 && d < INT32_MAX - (int64_t)st->n_ops;
        for (int i = r->lo; ok && i < r->hi; i++) {
            IrOpKind kind = ir_op(st->cls, i)->kind;
            ok = (kind != IR_OP_ALLOC && kind != IR_OP_FREE) || sim_host_is(st, i);
        }
        periods = d / r->period;
    }
    if (!ok)
        sim_compact_refuse(e);
}

/* The host op of class c where its gap can go for a skip of m blocks of step ops: past the
 * window's ops and their copies' sources (horizon + a block), past the host fill's first
 * period, after two periods of the region (the period before the gap, whose copies the gap
 * holds, inside it and not its first), a host op that takes time (ops before it end by its
 * start, ops after it start after it), the period before it balanced in memory, and inside the
 * skip (the window moved past the gap). -1: none. */
static int gap_op(const Engine *e, int c, int64_t m, int step)
{
    const ClassState *st = &e->st[c];
    const SimRegion *r = &sim_steady_regions(e)[c];
    const SimHostFill *fill = e->res->classes[c].host_fill;
    int64_t d = e->omitted[c], b = st->frontier;
    int64_t g = MAX((int64_t)sim_steady_horizon(st) + step, (int64_t)r->lo + 3 * r->period);
    g = MAX(g, (int64_t)fill->anchor + fill->period);
    for (; g + d <= b + m * step && g < r->safe_end; g++) {
        const IrOp *op = ir_op(st->cls, (int)g);
        if (op->kind != IR_OP_HOST || sim_op_duration_ns(e->cfg, st->cls, op) <= 0)
            continue;
        int64_t held[IR_MEM_CATEGORY_COUNT] = {0};
        for (int64_t i = g - r->period; i < g; i++) {
            const IrOp *o = ir_op(st->cls, (int)i);
            if (o->kind == IR_OP_ALLOC || o->kind == IR_OP_FREE)
                held[o->u.mem.category] +=
                    (o->kind == IR_OP_ALLOC ? 1 : -1) * (int64_t)o->u.mem.bytes;
        }
        bool balanced = true;
        for (int k = 0; k < IR_MEM_CATEGORY_COUNT; k++)
            balanced = balanced && held[k] == 0;
        if (balanced)
            return (int)g;
    }
    return -1;
}

/* When the period before class c's gap op g began on the host: the start of its first host op
 * (in the host fill: the gap's op is a period past its first). */
static int64_t period_start_ns(const Engine *e, int c, int g)
{
    const ClassState *st = &e->st[c];
    int i = g - e->res->classes[c].host_fill->period;
    while (i < g && !sim_host_is(st, i))
        i++;
    return sim_stored_start_ns(e, c, i);
}

bool sim_gap_place(Engine *e, int64_t m, const int *step)
{
    int nc = e->s->n_classes;
    int *at = g_new(int, MAX(1, nc));
    bool ok = true;
    for (int c = 0; ok && c < nc; c++) {
        const ClassState *st = &e->st[c];
        const SimHostFill *fill = e->res->classes[c].host_fill;
        /* the host has left the region, its clock moved by the gap (sim_host_run_ahead) */
        ok = st->gap_crossed && fill && fill->step_ns != INT64_MIN && !st->host_aperiodic;
        at[c] = ok ? gap_op(e, c, m, step[c]) : -1;
        /* no GPU op queued to start at the end of a host op past the gap (a host time that
         * lacked it; wherever that GPU op lies), no allocation or free of a GPU stream since the
         * period before the gap began (the gap's periods are that period's copies only if no GPU
         * stream's allocation interleaves with them: else the full program's peak could be
         * first reached inside the gap, or its order with the host's replayed ones change) */
        ok = ok && at[c] >= 0 && st->late_hi < at[c] &&
             st->gpu_mem_ns < period_start_ns(e, c, at[c]);
        if (!ok && g_getenv("FSDPSIM_STEADY_DEBUG")) /* which condition: the op -1 is no room */
            g_printerr("steady: class %d: no place for the gap (host crossed it %d, periodic %d, "
                       "op %d, last host op a GPU op waited on %d)\n",
                       c, st->gap_crossed, fill && !st->host_aperiodic, at[c], st->late_hi);
    }
    for (int c = 0; ok && c < nc; c++) {
        ClassState *st = &e->st[c];
        SimClassResult *cr = &e->res->classes[c];
        SimHostFill *fill = cr->host_fill;
        int g = at[c];
        int64_t d = e->omitted[c], periods = d / fill->period;
        int64_t host_ns = periods * fill->step_ns; /* the gap's host time */
        /* the allocations and frees of the region's host ops past the gap were replayed at
         * their times without it: later by the gap's host time. Theirs are the samples after
         * the gap's host op's start (ops before it end by then, see gap_op; no GPU stream's
         * after it, checked above) up to where the host left the region (those past it have
         * their full program's times, sim_host_run_ahead). O(samples). */
        int64_t from = sim_stored_start_ns(e, c, g);
        GArray *tl = cr->mem.timeline;
        for (guint i = 0; i < tl->len; i++) {
            MemSample *x = &g_array_index(tl, MemSample, i);
            if (x->time_ns > from && x->time_ns <= st->gap_cross_ns)
                x->time_ns += host_ns;
        }
        if (cr->mem.peak_time_ns > from && cr->mem.peak_time_ns <= st->gap_cross_ns)
            cr->mem.peak_time_ns += host_ns;
        cr->gap_at = g;
        cr->gap_ops = (int32_t)d;
        cr->gap_period = fill->period;
        if (fill->last >= g)
            fill->last += (int32_t)d;   /* the full program's index */
        st->host_mem_start = INT64_MIN; /* read again */
        if (g_getenv("FSDPSIM_STEADY_DEBUG"))
            g_printerr("steady: class %d: %" G_GINT64_FORMAT " omitted ops go back at op %d\n", c,
                       d, g);
    }
    g_free(at);
    return ok;
}
