/* sim_gap: a compact run's gap (sim_run_compact, src/compact). A long 1F1B pipeline's program is
 * generated for fewer micro-batches; what it leaves out is whole periods of each class's
 * periodic region (sim_region.c), as many in every class. The engine puts them back where the
 * steady state skips (sim_steady.c): the skip moves time, sums and counts by its m blocks as
 * ever, and the engine's op indices (and buffer ids, tags, collective numbers) by m blocks less
 * the gap, which the schedule does not hold; the host, running ahead of its GPU on a periodic
 * timeline (sim_host.c), moves its clock by the gap's host periods as it passes it. Readers see
 * the full program's indices (SimClassResult.gap_at, sim_op_ir, sim_op_start_ns): the gap's
 * ops are skipped ops whose times the skip fill derives. Where any of it cannot hold, the
 * engine refuses (sim_compact_refuse) and the caller runs the full program. */
#include "sim_engine.h"

/* A compact run's gap (sim_run_compact): class c's omitted ops, whole periods of its region and
 * as many periods in every class, go back at a host op SIM_GAP_MARGIN periods before the end of
 * the region's safe part (the host's clock moves by them there, sim_host.c), so that a skip,
 * which lands at most a block of k <= SIM_STEADY_HIST periods and the window short of that end,
 * lands past them. The memory a period holds must be the host's (allocations and frees on the
 * host stream) and balanced (a period frees, category by category, the bytes it allocates):
 * the gap's are not replayed, so the peak and what it holds are the full program's only where
 * no period adds to them. The memory timeline lacks the gap's samples (only --trace reads it,
 * and a run with --trace is never compact). O(ops of the regions). */
#define SIM_GAP_MARGIN 40
void sim_gap_place(Engine *e)
{
    const SimRegion *regions = sim_steady_regions(e);
    int64_t periods = -1;
    bool ok = regions != NULL;
    for (int c = 0; ok && c < e->s->n_classes; c++) {
        const SimRegion *r = &regions[c];
        const ClassState *st = &e->st[c];
        SimClassResult *cr = &e->res->classes[c];
        int64_t d = e->omitted[c];
        ok = d > 0 && d % r->period == 0 && (periods < 0 || d / r->period == periods) &&
             st->host_stream >= 0 && d < INT32_MAX - (int64_t)st->n_ops;
        for (int i = r->lo; ok && i < r->hi; i++) {
            IrOpKind kind = ir_op(st->cls, i)->kind;
            ok = (kind != IR_OP_ALLOC && kind != IR_OP_FREE) || sim_host_is(st, i);
        }
        if (!ok)
            break;
        periods = d / r->period;
        int g = r->safe_end - SIM_GAP_MARGIN * r->period;
        ok = g - r->period >= r->lo + 2 * r->period;
        while (ok && g < r->safe_end && !sim_host_is(st, g))
            g++;
        ok = ok && g < r->safe_end;
        /* the period before the gap, whose copies the gap holds: its memory balanced */
        int64_t held[IR_MEM_CATEGORY_COUNT] = {0};
        for (int i = g - r->period; ok && i < g; i++) {
            const IrOp *op = ir_op(st->cls, i);
            if (op->kind == IR_OP_ALLOC || op->kind == IR_OP_FREE)
                held[op->u.mem.category] +=
                    (op->kind == IR_OP_ALLOC ? 1 : -1) * (int64_t)op->u.mem.bytes;
        }
        for (int k = 0; ok && k < IR_MEM_CATEGORY_COUNT; k++)
            ok = held[k] == 0;
        cr->gap_at = g;
        cr->gap_ops = (int32_t)d;
        cr->gap_period = r->period;
        if (g_getenv("FSDPSIM_STEADY_DEBUG"))
            g_printerr("steady: class %d: %" G_GINT64_FORMAT " omitted ops go back at op %d\n", c,
                       d, g);
    }
    if (!ok)
        sim_compact_refuse(e);
}

/* Whether a compact run's skip of m blocks lands each class's gap inside it: the gap after
 * the window's ops and their copies' sources (horizon + a block), the window moved past the gap.
 * Without a gap: true. */
bool sim_gap_inside(const Engine *e, int64_t m, const int *step)
{
    for (int c = 0; c < e->s->n_classes; c++) {
        const ClassState *st = &e->st[c];
        const SimClassResult *cr = &e->res->classes[c];
        if (!cr->gap_ops)
            continue;
        int64_t b = st->frontier, h = sim_steady_horizon(st), g = cr->gap_at;
        if (!st->gap_crossed || h + step[c] > g || g + cr->gap_ops > b + m * step[c])
            return false;
    }
    return true;
}
