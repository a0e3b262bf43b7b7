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
        .fsdp_version = 1,
        .reshard_after_forward = -1,
        .wrap = {PLAN_WRAP_TRANSFORMER, 100000000},
        .backward_prefetch = PREFETCH_BACKWARD_PRE, /* FSDP's default */
        .forward_prefetch = false,
        .limit_all_gathers = true, /* default since PyTorch 2.1 */
        .mixed_precision = model->training.param_dtype != HW_DTYPE_FP32,
        .param_dtype = model->training.param_dtype,
        .reduce_dtype = model->training.param_dtype,
        .cpu_offload = false,
        .offload_optimizer = false,
        .activation_checkpointing = false,
        .checkpoint_every = 1,
        .recompute_selective = false,
        .shard_group_size = 0,
        .bucket_cap_mb = 25, /* DDP's default */
        .gradient_as_bucket_view = false,
        .grad_accum = 1,
        .tp = 1,
        .pp = 1,
        .virtual_stages = 1,
        .pp_schedule = PP_SCHEDULE_1F1B, /* Megatron's default */
        .sequence_parallel = false,
        .order = {PAR_DIM_TP, PAR_DIM_DP, PAR_DIM_PP}, /* Megatron-LM's "tp-dp-pp" */
    };
}

HwDtype strat_grad_reduce_dtype(const StratOptions *opt)
{
    return opt->kind == STRAT_DDP && !opt->reduce_dtype_set ? HW_DTYPE_FP32 : opt->reduce_dtype;
}

void strat_options_zero1(StratOptions *opt)
{
    opt->kind = STRAT_DDP;
    opt->zero1 = true;
    opt->distributed_optimizer = true;
    if (!opt->reduce_dtype_set) {
        opt->reduce_dtype = opt->mixed_precision ? opt->param_dtype : HW_DTYPE_FP32;
        opt->reduce_dtype_set = true;
    }
}

bool strat_pp_schedule_parse(const char *text, PpSchedule *out)
{
    if (g_ascii_strcasecmp(text, "gpipe") == 0)
        *out = PP_SCHEDULE_GPIPE;
    else if (g_ascii_strcasecmp(text, "1f1b") == 0)
        *out = PP_SCHEDULE_1F1B;
    else if (g_ascii_strcasecmp(text, "interleaved") == 0 || g_ascii_strcasecmp(text, "interleaved_1f1b") == 0)
        *out = PP_SCHEDULE_INTERLEAVED;
    else
        return false;
    return true;
}

const char *strat_pp_schedule_name(PpSchedule s)
{
    return s == PP_SCHEDULE_GPIPE ? "gpipe" : s == PP_SCHEDULE_1F1B ? "1f1b" : "interleaved";
}

static const char *const dim_names[PAR_DIM_COUNT] = {"tp", "pp", "dp"};

bool strat_order_parse(const char *text, ParDim order[PAR_DIM_COUNT])
{
    char **parts = g_strsplit(text, "-", -1);
    bool seen[PAR_DIM_COUNT] = {false};
    bool ok = g_strv_length(parts) == PAR_DIM_COUNT;
    for (int i = 0; ok && i < PAR_DIM_COUNT; i++) {
        int d = 0;
        while (d < PAR_DIM_COUNT && g_ascii_strcasecmp(parts[i], dim_names[d]) != 0)
            d++;
        ok = d < PAR_DIM_COUNT && !seen[d];
        if (ok) {
            seen[d] = true;
            order[i] = (ParDim)d;
        }
    }
    g_strfreev(parts);
    return ok;
}

char *strat_order_name(const ParDim order[PAR_DIM_COUNT])
{
    return cfg_strdup_printf("%s-%s-%s", dim_names[order[0]], dim_names[order[1]], dim_names[order[2]]);
}

bool strat_layout_make(const StratOptions *opt, int nodes, int gpus_per_node, StratLayout *out,
                       GError **error)
{
    int world = nodes * gpus_per_node;
    *out = (StratLayout){nodes, gpus_per_node, world, 1, world, 1, 1, world, {1, 1, 1}};
    int tp = MAX(opt->tp, 1), pp = MAX(opt->pp, 1);
    if (world % (tp * pp) != 0) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "options --tp/--pp: tp x pp = %d x %d = %d GPUs per model replica does not "
                    "divide the %d GPUs (%d nodes x %d); expected a divisor of %d",
                    tp, pp, tp * pp, world, nodes, gpus_per_node, world);
        return false;
    }
    int dp = world / (tp * pp);
    int size[PAR_DIM_COUNT] = {tp, pp, dp};
    int stride = 1;
    for (int i = 0; i < PAR_DIM_COUNT; i++) {
        out->stride[opt->order[i]] = stride;
        stride *= size[opt->order[i]];
    }
    out->tp = tp, out->pp = pp, out->dp = dp;
    /* data parallelism (DDP replicas, FSDP shard and replicate groups) spans the dp dimension */
    world = dp;
    out->replicate_size = dp;
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
        if (opt->shard_group_size <= 0 && tp * pp > 1) {
            /* the data-parallel peers that share a node: the node's GPUs not taken by TP */
            shard = gpus_per_node % tp == 0 ? MAX(1, gpus_per_node / tp) : 1;
            while (dp % shard != 0)
                shard--;
        }
        if (shard > world || world % shard != 0) {
            if (tp * pp > 1)
                g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                            "option --shard-group-size: %d GPUs per shard group does not divide the "
                            "%d data-parallel GPUs (%d nodes x %d / (tp %d x pp %d)); expected a "
                            "divisor of %d",
                            shard, world, nodes, gpus_per_node, tp, pp, world);
            else
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
    int raf = opt->reshard_after_forward;
    if (opt->fsdp_version == 2 && raf > 1 && (raf > out->shard_size || out->shard_size % raf != 0)) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "option --reshard-after-forward: %d GPUs does not divide the shard group of "
                    "%d; expected true, false or a divisor of %d (fully_shard's int reshards "
                    "within the shard group)",
                    raf, out->shard_size, out->shard_size);
        return false;
    }
    return true;
}

/* A pipeline, and DDP with TP (Megatron's DDP), go to pp.c; FSDP x TP without a pipeline (2D)
 * is FSDP on one TP rank's share of the model, with TP's exchanges added (tp.c). Megatron's DDP
 * options need Megatron's generator, with or without model parallelism. */
static bool to_pp(const StratOptions *opt, const StratLayout *layout)
{
    bool fsdp_2d = layout->pp == 1 && layout->tp > 1 && opt->kind == STRAT_FSDP;
    bool megatron_ddp =
        opt->kind == STRAT_DDP && (opt->distributed_optimizer || opt->overlap_grad_reduce);
    return (layout->tp * layout->pp > 1 && !fsdp_2d) || megatron_ddp;
}

/* DDP and ZeRO-1 in pp.c are Megatron-LM's (and Megatron-DeepSpeed's), whose layers run fused
 * kernels (bias-GeLU, bias-SwiGLU, fused norms) that keep less for backward than transformers'
 * eager ops; FSDP there is PyTorch's own (torchtitan), eager. --strategy zero1 without --tp or
 * --pp is DeepSpeed's ZeRO stage 1 (or torch's ZeroRedundancyOptimizer) around the transformers
 * model: its eager ops, not Megatron's kernels (it comes to pp.c for the distributed optimizer's
 * schedule only). */
bool strat_megatron_layers(const StratOptions *opt, const StratLayout *layout)
{
    return to_pp(opt, layout) && opt->kind != STRAT_FSDP &&
           !(opt->zero1 && layout->tp * layout->pp == 1);
}

int strat_vocab_pad(const StratOptions *opt, const StratLayout *layout)
{
    return strat_megatron_layers(opt, layout) ? 128 * MAX(1, layout->tp) : 0;
}

IrSchedule *strat_generate(const Model *model, const HwTopology *topo, const StratOptions *opt,
                           const StratLayout *layout, StratInfo *info, GError **error)
{
    Gen g;
    memset(info, 0, sizeof *info);
    info->layout = *layout;
    info->samples_per_step = model->training.micro_batch * (double)opt->grad_accum;
    info->tokens_per_step = info->samples_per_step * (model->token_input ? model->training.seq_len : 1);
    if (to_pp(opt, layout)) {
        Model *fused = strat_megatron_layers(opt, layout) ? model_fused_kernels(model) : NULL;
        IrSchedule *pp = strat_pp_generate(fused ? fused : model, topo, opt, layout, info, error);
        model_fused_kernels_free(fused);
        if (pp)
            ir_schedule_compact(pp);
        return pp;
    }
    /* FSDP x TP without a pipeline (2D): FSDP on one TP rank's share of the model */
    bool fsdp_2d = layout->tp > 1;
    Model *share = fsdp_2d ? gen_tp_model(model, layout->tp, opt->sequence_parallel) : NULL;
    gen_init(&g, share ? share : model, topo, opt, layout);
    ir_meta_set(g.sched, "model", model->name);
    ir_meta_set(g.sched, "topology", topo->name);
    ir_meta_set(g.sched, "strategy", opt->kind == STRAT_DDP ? "ddp" : strat_sharding_name(opt->sharding));
    if (opt->kind == STRAT_FSDP && opt->fsdp_version == 2)
        ir_meta_set(g.sched, "fsdp_version", "2"); /* absent: 1 */
    if (fsdp_2d) {
        char *text = cfg_strdup_printf("%d", layout->tp);
        ir_meta_set(g.sched, "tp", text);
        g_free(text);
        gen_tp_setup(&g, ir_group_add(g.sched, "tp", layout->tp, layout->stride[PAR_DIM_TP]));
        /* the TP group works on one micro-batch together */
        info->samples_per_step /= layout->tp;
        info->tokens_per_step /= layout->tp;
    }
    IrSchedule *s = opt->kind == STRAT_DDP ? strat_ddp_generate(&g, info, error)
                                           : strat_fsdp_generate(&g, info, error);
    if (s && fsdp_2d) {
        char *order = strat_order_name(opt->order);
        char *text = cfg_strdup_printf(
            "%s; tensor parallel %d%s x data parallel %d, placement %s", info->wrap_description,
            layout->tp, g.tp.sp ? " with sequence parallelism" : "", layout->dp, order);
        g_free(info->wrap_description);
        info->wrap_description = text;
        g_free(order);
    }
    if (s && !gen_sizes_check(&g, error))
        s = NULL;
    g_free(g.oversize);
    gen_kernels_clear(&g);
    gen_tp_clear(&g);
    gen_tp_model_free(share);
    g_free(g.boundary);
    g_free(g.checkpointed);
    gen_fp8_clear(&g);
    if (!s)
        ir_schedule_free(g.sched);
    else
        ir_schedule_compact(s);
    return s;
}

bool strat_recomputes_every_block(const StratOptions *opt)
{
    return opt->activation_checkpointing && opt->checkpoint_every <= 1;
}

bool strat_hybrid_unsynced(const StratOptions *opt, const StratLayout *layout)
{
    bool hybrid = opt->kind == STRAT_FSDP &&
                  (opt->sharding == SHARD_HYBRID_SHARD || opt->sharding == SHARD_HYBRID_ZERO2);
    /* FSDP2's HSDP keeps its 2-D mesh and all-reduces over the replicate dimension */
    return hybrid && opt->fsdp_version != 2 && layout->pp == 1 && layout->shard_size == 1 &&
           layout->replicate_size > 1;
}

void strat_info_clear(StratInfo *info)
{
    g_free(info->wrap_description);
    g_free(info->class_stage);
    g_free(info->class_pair_ops);
    memset(info, 0, sizeof *info);
}

/* cuDNN's tensor-core convolutions work in NHWC (NVIDIA, "Convolutional Layers User's Guide",
 * Tensor Layouts In Memory: NCHW vs NHWC): with PyTorch's default contiguous (NCHW) tensors each
 * one transposes its input before and its output after, in its own kernels, and the backward's
 * dgrad and wgrad transpose theirs again (gen.c charges a leaf's backward twice its forward bytes
 * and kernels: dy and dx, x and dy). Tensor cores: fp16 from Volta on, bf16 and fp32 as TF32
 * (cuDNN's allow_tf32 defaults to True) from Ampere on. None with torch.channels_last, nor under
 * torch.compile, whose Inductor turns convolution graphs channels-last itself
 * (torch/_inductor/config.py layout_optimization, default True). Moves each convolution's
 * layout_bytes_fwd into its memory traffic, once; O(modules). */
int strat_memory_format_apply(Model *model, const HwTopology *topo, const StratOptions *opt)
{
    HwDtype d = strat_compute_dtype(model, opt);
    if (d == HW_DTYPE_FP32) /* matmuls in fp32 (a Hugging Face model): its convolutions still TF32 */
        d = HW_DTYPE_TF32;
    int cc = topo->gpu.compute_capability; /* fp16 tensor cores from Volta, bf16/TF32 Ampere */
    bool tensor_cores = (d == HW_DTYPE_FP16 && cc >= 70) ||
                        ((d == HW_DTYPE_BF16 || d == HW_DTYPE_TF32) && cc >= 80);
    if (opt->channels_last || model->compiled || !tensor_cores)
        return 0;
    int n = 0;
    for (int i = 0; i < model->n_modules; i++) {
        ModelModule *m = &model->modules[i];
        if (m->layout_bytes_fwd <= 0)
            continue;
        m->mem_bytes_fwd += m->layout_bytes_fwd;
        m->kernels_fwd += 2;
        m->layout_bytes_fwd = 0; /* folded: a second call adds nothing */
        n++;
    }
    model->nchw_convs += n;
    return n;
}

const char *strat_pp_scatter_gather_name(PpScatterGather mode)
{
    static const char *const names[] = {"off", "megatron", "deepspeed"};
    return names[mode];
}
