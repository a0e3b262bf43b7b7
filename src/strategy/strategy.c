/* strategy: options, layout and dispatch; see strategy.h. */
#include "strategy.h"

#include "gen.h"
#include "../util/cfg.h"

#include <string.h>

/* PyTorch's names, plus the shorthands of the command line. */
static const struct {
    const char *name;
    ShardingStrategy value;
} sharding_names[] = {
    {"full_shard", SHARD_FULL_SHARD},     {"full", SHARD_FULL_SHARD},
    {"shard_grad_op", SHARD_SHARD_GRAD_OP}, {"grad_op", SHARD_SHARD_GRAD_OP},
    {"no_shard", SHARD_NO_SHARD},         {"hybrid_shard", SHARD_HYBRID_SHARD},
    {"hybrid", SHARD_HYBRID_SHARD},       {"hybrid_zero2", SHARD_HYBRID_ZERO2},
    {"_hybrid_shard_zero2", SHARD_HYBRID_ZERO2},
};

bool strat_sharding_parse(const char *text, ShardingStrategy *out)
{
    for (size_t i = 0; i < G_N_ELEMENTS(sharding_names); i++) {
        if (g_ascii_strcasecmp(text, sharding_names[i].name) == 0) {
            *out = sharding_names[i].value;
            return true;
        }
    }
    return false;
}

const char *strat_sharding_name(ShardingStrategy s)
{
    static const char *const names[SHARD_COUNT] = {"full_shard", "shard_grad_op", "no_shard",
                                                   "hybrid_shard", "hybrid_zero2"};
    return names[s];
}

bool strat_prefetch_parse(const char *text, BackwardPrefetch *out)
{
    if (g_ascii_strcasecmp(text, "pre") == 0 || g_ascii_strcasecmp(text, "backward_pre") == 0)
        *out = PREFETCH_BACKWARD_PRE;
    else if (g_ascii_strcasecmp(text, "post") == 0 || g_ascii_strcasecmp(text, "backward_post") == 0)
        *out = PREFETCH_BACKWARD_POST;
    else if (g_ascii_strcasecmp(text, "none") == 0)
        *out = PREFETCH_NONE;
    else
        return false;
    return true;
}

const char *strat_prefetch_name(BackwardPrefetch p)
{
    return p == PREFETCH_BACKWARD_PRE ? "backward_pre" : p == PREFETCH_BACKWARD_POST ? "backward_post" : "none";
}

void strat_options_default(StratOptions *opt, const Model *model)
{
    *opt = (StratOptions){
        .kind = STRAT_FSDP,
        .sharding = SHARD_FULL_SHARD,
        .wrap = {PLAN_WRAP_TRANSFORMER, 100000000},
        .backward_prefetch = PREFETCH_BACKWARD_PRE, /* FSDP's default */
        .forward_prefetch = false,
        .limit_all_gathers = true, /* default since PyTorch 2.1 */
        .mixed_precision = model->training.param_dtype != HW_DTYPE_FP32,
        .param_dtype = model->training.param_dtype,
        .reduce_dtype = model->training.param_dtype,
        .cpu_offload = false,
        .activation_checkpointing = false,
        .shard_group_size = 0,
        .bucket_cap_mb = 25, /* DDP's default */
        .gradient_as_bucket_view = false,
        .grad_accum = 1,
    };
}

bool strat_layout_make(const StratOptions *opt, int nodes, int gpus_per_node, StratLayout *out,
                       GError **error)
{
    int world = nodes * gpus_per_node;
    *out = (StratLayout){nodes, gpus_per_node, world, 1, world};
    if (opt->kind == STRAT_DDP)
        return true;
    switch (opt->sharding) {
    case SHARD_FULL_SHARD:
    case SHARD_SHARD_GRAD_OP:
        out->shard_size = world;
        out->replicate_size = 1;
        break;
    case SHARD_NO_SHARD:
        out->shard_size = 1;
        out->replicate_size = world;
        break;
    case SHARD_HYBRID_SHARD:
    case SHARD_HYBRID_ZERO2: {
        /* PyTorch builds the intra-node shard group and inter-node replicate group from the
         * local world size unless a device mesh says otherwise (_init_utils.py). */
        int shard = opt->shard_group_size > 0 ? opt->shard_group_size : gpus_per_node;
        if (shard > world || world % shard != 0) {
            g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                        "option --shard-group-size: %d GPUs per shard group does not divide the "
                        "%d GPUs (%d nodes x %d); expected a divisor of %d",
                        shard, world, nodes, gpus_per_node, world);
            return false;
        }
        out->shard_size = shard;
        out->replicate_size = world / shard;
        break;
    }
    default:
        g_assert_not_reached();
    }
    return true;
}

IrSchedule *strat_generate(const Model *model, const HwTopology *topo, const StratOptions *opt,
                           const StratLayout *layout, StratInfo *info, GError **error)
{
    Gen g;
    memset(info, 0, sizeof *info);
    info->layout = *layout;
    info->samples_per_step = model->training.micro_batch * (double)opt->grad_accum;
    info->tokens_per_step = info->samples_per_step * (model->token_input ? model->training.seq_len : 1);
    gen_init(&g, model, topo, opt, layout);
    ir_meta_set(g.sched, "model", model->name);
    ir_meta_set(g.sched, "topology", topo->name);
    ir_meta_set(g.sched, "strategy", opt->kind == STRAT_DDP ? "ddp" : strat_sharding_name(opt->sharding));
    IrSchedule *s = opt->kind == STRAT_DDP ? strat_ddp_generate(&g, info, error)
                                           : strat_fsdp_generate(&g, info, error);
    g_free(g.boundary);
    if (!s)
        ir_schedule_free(g.sched);
    return s;
}

void strat_info_clear(StratInfo *info)
{
    g_free(info->wrap_description);
    memset(info, 0, sizeof *info);
}
