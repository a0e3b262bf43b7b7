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

IrSchedule *compact_generate(const Model *model, const HwTopology *topo, const StratOptions *opt,
                             const StratLayout *layout, bool try_compact, StratInfo *info,
                             int64_t **omitted, CompactWholeCheck check, void *ctx, GError **error)
{
    *omitted = NULL;
    if (try_compact && compact_applies(opt, layout)) {
        StratOptions small = *opt;
        small.pp_generate_micro_batches = COMPACT_MICRO_BATCHES(layout->pp);
        GError *own = NULL;
        IrSchedule *s = strat_generate(model, topo, &small, layout, info, &own);
        g_clear_error(&own); /* the whole generation below words it */
        bool ok = s && info->class_pair_ops && info->pp_omitted_micro_batches > 0;
        int64_t *left = ok ? g_new(int64_t, MAX(1, s->n_classes)) : NULL;
        for (int c = 0; ok && c < s->n_classes; c++) {
            left[c] = (int64_t)info->class_pair_ops[c] * info->pp_omitted_micro_batches;
            ok = left[c] > 0; /* every stage's steady pairs alike */
        }
        if (ok) {
            *omitted = left;
            return s;
        }
        g_free(left);
        ir_schedule_free(s);
        strat_info_clear(info);
        if (check && !check(ctx, error))
            return NULL;
    }
    return strat_generate(model, topo, opt, layout, info, error);
}

SimResult *compact_run(const Model *model, const HwTopology *topo, const StratOptions *opt,
                       const StratLayout *layout, const SimConfig *cfg, IrSchedule **sched,
                       StratInfo *info, int64_t **omitted, CompactWholeCheck check, void *ctx,
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
    if (check && !check(ctx, error))
        return NULL;
    *sched = strat_generate(model, topo, opt, layout, info, error);
    return *sched ? sim_run(*sched, cfg, error) : NULL;
}
