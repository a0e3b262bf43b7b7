/* compact: see compact.h. */
#include "compact.h"

#include <string.h>

/* The groups of an interleaved run's one compact program (0: none): a quarter of the run's, so
 * that a refusal (its simulation up to the refusal, at most its own size, then the full
 * program's) costs at most a quarter more, and at least COMPACT_GROUPS (room for the proof,
 * a block past it and the gap: sim_gap.c). */
static int interleaved_groups(int m, int pp)
{
    int groups = m / pp / 4;
    return groups >= COMPACT_GROUPS ? groups : 0;
}

/* The period each class's region must have, for sim_prep_compact and sim_run_periods: an
 * interleaved program's generator's group (its passes repeat every pp steps of a chunk too, a
 * region that proves nothing), NULL otherwise (found). Only for the generator's own classes:
 * a --schedule file without meta.strategy may have others, and class_pair_ops has one entry
 * per generated class. */
static const int *generator_period(const StratOptions *opt, const StratInfo *info,
                                   const IrSchedule *s)
{
    return opt->pp_schedule == PP_SCHEDULE_INTERLEAVED && info->class_pair_ops &&
                   info->n_class_stage == s->n_classes
               ? info->class_pair_ops
               : NULL;
}

bool compact_applies(const StratOptions *opt, const StratLayout *layout)
{
    /* the gap's host time is the lazy host's: a run asked to queue every op is not compact */
    const char *off[] = {"FSDPSIM_NO_COMPACT", "FSDPSIM_NO_STEADY_STATE", "FSDPSIM_NO_LAZY_HOST"};
    for (size_t i = 0; i < G_N_ELEMENTS(off); i++) {
        const char *v = g_getenv(off[i]);
        if (v && *v && strcmp(v, "0") != 0)
            return false;
    }
    if (layout->pp <= 1)
        return false;
    if (opt->pp_schedule == PP_SCHEDULE_INTERLEAVED)
        return interleaved_groups(opt->grad_accum, layout->pp) > 0;
    return opt->pp_schedule == PP_SCHEDULE_1F1B &&
           opt->grad_accum >= COMPACT_MICRO_BATCHES(layout->pp) + 64;
}

void compact_plan_clear(CompactPlan *plan)
{
    g_clear_pointer(&plan->omitted, g_free);
    g_clear_pointer(&plan->prep, sim_prep_free);
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
    int period = s ? info->pp_period_micro_batches : 0;
    bool ok = s && info->class_pair_ops && info->pp_omitted_micro_batches > 0 && period > 0 &&
              info->pp_omitted_micro_batches % period == 0;
    *left = ok ? g_new(int64_t, MAX(1, s->n_classes)) : NULL;
    for (int c = 0; ok && c < s->n_classes; c++) {
        (*left)[c] = (int64_t)info->class_pair_ops[c] * (info->pp_omitted_micro_batches / period);
        ok = (*left)[c] > 0; /* every stage's steady pairs alike */
    }
    if (ok)
        return s;
    g_clear_pointer(left, g_free);
    ir_schedule_free(s);
    strat_info_clear(info);
    return NULL;
}

/* The sizes a compact program is tried at, smallest first (COMPACT_MICRO_BATCHES and the larger
 * ones the run's micro-batches allow), each with the room its regions must hold: the count. */
static int compact_sizes(const StratOptions *opt, const StratLayout *layout, int sizes[3],
                         int rooms[3])
{
    const int pp = layout->pp;
    int n = 0;
    if (opt->pp_schedule == PP_SCHEDULE_INTERLEAVED) {
        /* whole groups of pp micro-batches (Megatron's, and the period's); one size only:
         * where the state settles late (a host whose lead over its GPU shrinks period by
         * period: 10 and more periods), larger programs were refused as often */
        int groups = interleaved_groups(opt->grad_accum, pp);
        if (groups > 0) {
            sizes[n] = groups * pp;
            rooms[n++] = COMPACT_GROUPS_ROOM;
        }
        return n;
    }
    const int want[3] = {COMPACT_MICRO_BATCHES(pp), COMPACT_MICRO_BATCHES_ROOMY(pp),
                         COMPACT_MICRO_BATCHES_LATE(pp)};
    const int room[3] = {COMPACT_ROOM, COMPACT_ROOM_ROOMY, COMPACT_ROOM_ROOMY};
    for (int k = 0; k < 3; k++)
        if ((n == 0 || want[k] > sizes[n - 1]) && opt->grad_accum >= want[k] + 64) {
            sizes[n] = want[k];
            rooms[n++] = room[k];
        }
    return n;
}

/* compact_generate, with programs of more than `after` micro-batches only (0: any). */
static IrSchedule *generate_after(const Model *model, const HwTopology *topo,
                                  const StratOptions *opt, const StratLayout *layout,
                                  bool try_compact, int after, StratInfo *info, CompactPlan *plan,
                                  CompactCheck check, void *ctx, GError **error)
{
    compact_plan_clear(plan);
    if (try_compact && compact_applies(opt, layout)) {
        /* the smallest program whose regions leave the room; the last one tried where every
         * class has a region at all (where one has none, the engine would refuse: the whole
         * program, not another generation). O(ops) to find the regions, a fraction of
         * generating them. */
        int sizes[3], rooms[3], n_sizes = compact_sizes(opt, layout, sizes, rooms);
        for (int k = 0; k < n_sizes; k++) {
            if (sizes[k] <= after)
                continue;
            if (check && !check(ctx, sizes[k], error))
                return NULL;
            IrSchedule *s =
                generate_compact(model, topo, opt, layout, sizes[k], info, &plan->omitted);
            if (!s)
                break;
            plan->prep = sim_prep_compact(s, generator_period(opt, info, s)); /* the run's too */
            int room = sim_prep_periods(plan->prep);
            if (g_getenv("FSDPSIM_STEADY_DEBUG"))
                g_printerr("compact: %d micro-batches, regions of %d periods or more\n", sizes[k],
                           room);
            /* an interleaved program's one size: too little room is no compact run at all
             * (its refusal would cost a quarter of the full program's simulation) */
            bool last = k == n_sizes - 1 && opt->pp_schedule != PP_SCHEDULE_INTERLEAVED;
            if (room >= rooms[k] || (last && room >= 0))
                return s;
            compact_plan_clear(plan);
            ir_schedule_free(s);
            strat_info_clear(info);
        }
        if (check && !check(ctx, 0, error))
            return NULL;
    }
    return strat_generate(model, topo, opt, layout, info, error);
}

IrSchedule *compact_generate(const Model *model, const HwTopology *topo, const StratOptions *opt,
                             const StratLayout *layout, bool try_compact, StratInfo *info,
                             CompactPlan *plan, CompactCheck check, void *ctx, GError **error)
{
    return generate_after(model, topo, opt, layout, try_compact, 0, info, plan, check, ctx, error);
}

SimResult *compact_run(const Model *model, const HwTopology *topo, const StratOptions *opt,
                       const StratLayout *layout, const SimConfig *cfg, IrSchedule **sched,
                       StratInfo *info, CompactPlan *plan, CompactCheck check, void *ctx,
                       GError **error)
{
    while (plan->omitted) {
        SimPrep *prep = plan->prep; /* the run takes it */
        plan->prep = NULL;
        SimResult *res = sim_run_compact(*sched, cfg, plan->omitted, prep);
        if (res)
            return res;
        /* refused: a larger program, or the whole one */
        int size = opt->grad_accum - info->pp_omitted_micro_batches;
        compact_plan_clear(plan);
        ir_schedule_free(*sched);
        strat_info_clear(info);
        *sched =
            generate_after(model, topo, opt, layout, true, size, info, plan, check, ctx, error);
        if (!*sched)
            return NULL;
    }
    return sim_run_periods(*sched, cfg, generator_period(opt, info, *sched), error);
}
