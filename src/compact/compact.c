/* compact: see compact.h. */
#include "compact.h"

#include <string.h>

bool compact_applies(const StratOptions *opt, const StratLayout *layout)
{
    /* the gap's host time is the lazy host's: a run asked to queue every op is not compact */
    const char *off[] = {"FSDPSIM_NO_COMPACT", "FSDPSIM_NO_STEADY_STATE", "FSDPSIM_NO_LAZY_HOST"};
    for (size_t i = 0; i < G_N_ELEMENTS(off); i++) {
        const char *v = g_getenv(off[i]);
        if (v && *v && strcmp(v, "0") != 0)
            return false;
    }
    return layout->pp > 1 && opt->pp_schedule == PP_SCHEDULE_1F1B &&
           opt->grad_accum >= COMPACT_MICRO_BATCHES(layout->pp) + 64;
}

/* The compact program of `micro_batches`, *left its classes' omitted ops; NULL where a stage's
 * steady pairs are unlike (or any error: the whole generation words it). */
static IrSchedule *generate_compact(const Model *model, const HwTopology *topo,
                                    const StratOptions *opt, const StratLayout *layout,
                                    int micro_batches, StratInfo *info, int64_t **left)
{
    StratOptions small = *opt;
    small.pp_generate_micro_batches = micro_batches;
    GError *own = NULL;
    IrSchedule *s = strat_generate(model, topo, &small, layout, info, &own);
    g_clear_error(&own);
    bool ok = s && info->class_pair_ops && info->pp_omitted_micro_batches > 0;
    *left = ok ? g_new(int64_t, MAX(1, s->n_classes)) : NULL;
    for (int c = 0; ok && c < s->n_classes; c++) {
        (*left)[c] = (int64_t)info->class_pair_ops[c] * info->pp_omitted_micro_batches;
        ok = (*left)[c] > 0; /* every stage's steady pairs alike */
    }
    if (ok)
        return s;
    g_clear_pointer(left, g_free);
    ir_schedule_free(s);
    strat_info_clear(info);
    return NULL;
}

IrSchedule *compact_generate(const Model *model, const HwTopology *topo, const StratOptions *opt,
                             const StratLayout *layout, bool try_compact, StratInfo *info,
                             int64_t **omitted, CompactCheck check, void *ctx, GError **error)
{
    *omitted = NULL;
    if (try_compact && compact_applies(opt, layout)) {
        /* the smaller program where its regions leave the room, else the larger; the last
         * one tried where every class has a region at all (where one has none, the engine
         * would refuse: the whole program, not a third generation). O(ops) to find the
         * regions, a fraction of generating them. */
        const int sizes[2] = {COMPACT_MICRO_BATCHES(layout->pp),
                              COMPACT_MICRO_BATCHES_LATE(layout->pp)};
        int n_sizes = sizes[1] > sizes[0] && opt->grad_accum >= sizes[1] + 64 ? 2 : 1;
        for (int k = 0; k < n_sizes; k++) {
            if (check && !check(ctx, sizes[k], error))
                return NULL;
            IrSchedule *s = generate_compact(model, topo, opt, layout, sizes[k], info, omitted);
            if (!s)
                break;
            int room = sim_region_periods(s);
            if (g_getenv("FSDPSIM_STEADY_DEBUG"))
                g_printerr("compact: %d micro-batches, regions of %d periods or more\n", sizes[k],
                           room);
            if (room >= COMPACT_ROOM || (k == n_sizes - 1 && room >= 0))
                return s;
            g_clear_pointer(omitted, g_free);
            ir_schedule_free(s);
            strat_info_clear(info);
        }
        if (check && !check(ctx, 0, error))
            return NULL;
    }
    return strat_generate(model, topo, opt, layout, info, error);
}

SimResult *compact_run(const Model *model, const HwTopology *topo, const StratOptions *opt,
                       const StratLayout *layout, const SimConfig *cfg, IrSchedule **sched,
                       StratInfo *info, int64_t **omitted, CompactCheck check, void *ctx,
                       GError **error)
{
    if (!*omitted)
        return sim_run(*sched, cfg, error);
    SimResult *res = sim_run_compact(*sched, cfg, *omitted);
    if (res)
        return res;
    /* refused: the whole program */
    g_free(*omitted);
    *omitted = NULL;
    ir_schedule_free(*sched);
    *sched = NULL;
    strat_info_clear(info);
    if (check && !check(ctx, 0, error))
        return NULL;
    *sched = strat_generate(model, topo, opt, layout, info, error);
    return *sched ? sim_run(*sched, cfg, error) : NULL;
}
