/* simulate_options: the command line of `fsdpsim` as strategy options: every option's check and
 * the defaults the model and PyTorch give. */
#include "simulate_priv.h"
#include "../kern/kern.h"
#include "../util/cfg.h"

#include <string.h>

static bool parse_bool(const char *option, const char *text, bool *out, GError **error)
{
    if (!text)
        return true;
    if (!g_ascii_strcasecmp(text, "true") || !strcmp(text, "1") || !g_ascii_strcasecmp(text, "yes"))
        *out = true;
    else if (!g_ascii_strcasecmp(text, "false") || !strcmp(text, "0") ||
             !g_ascii_strcasecmp(text, "no"))
        *out = false;
    else {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "option --%s: expected true or false, got \"%s\"", option, text);
        return false;
    }
    return true;
}

/* Turns the command line into strategy options, after the model is known (its training settings
 * give the defaults). */
bool cli_make_options(const CliOptions *cli, const Model *model, StratOptions *opt,
                         GError **error)
{
    strat_options_default(opt, model);
    const char *strategy = cli->strategy ? cli->strategy : "fsdp";
    static const char *const strategies[] = {"ddp",     "zero1",        "fsdp",     "full",     "grad_op",
                                             "no_shard", "hybrid",      "hybrid_zero2",
                                             "full_shard", "shard_grad_op", "hybrid_shard", NULL};
    if (!g_ascii_strcasecmp(strategy, "ddp")) {
        opt->kind = STRAT_DDP;
    } else if (!g_ascii_strcasecmp(strategy, "zero1")) {
        /* ZeRO-1 runs on Megatron's distributed-optimizer generator (pp.c), gradients in
         * param_dtype unless --reduce-dtype says otherwise */
        opt->kind = STRAT_DDP;
        opt->zero1 = true;
    } else if (!g_ascii_strcasecmp(strategy, "fsdp")) {
        opt->kind = STRAT_FSDP;
    } else if (strat_sharding_parse(strategy, &opt->sharding)) {
        opt->kind = STRAT_FSDP;
    } else {
        return cfg_input_error(error,
                               "option --strategy: expected ddp, zero1, fsdp, full, grad_op, "
                               "no_shard, hybrid or hybrid_zero2, got \"%s\"%s",
                               strategy, cli_did_you_mean(strategy, strategies));
    }
    if (cli->sharding) {
        if (opt->kind == STRAT_DDP)
            return cfg_input_error(
                error, "option --sharding applies to FSDP; --strategy %s has no sharding", strategy);
        ShardingStrategy s;
        if (!strat_sharding_parse(cli_strip_prefix(cli->sharding, "ShardingStrategy."), &s))
            return cfg_input_error(
                error,
                "option --sharding: expected full_shard, shard_grad_op, no_shard, "
                "hybrid_shard or hybrid_zero2 (any case, or ShardingStrategy.FULL_SHARD), got "
                "\"%s\"%s",
                cli->sharding, cli_did_you_mean(cli->sharding, strategies + 2));
        if (g_ascii_strcasecmp(strategy, "fsdp") != 0 && s != opt->sharding)
            return cfg_input_error(error, "options --strategy %s and --sharding %s disagree",
                                   strategy, cli->sharding);
        opt->sharding = s;
    }
    if (cli->wrap && !plan_wrap_parse(cli->wrap, &opt->wrap, error))
        return false;
    if (cli->fsdp_version != UNSET) {
        if (cli->fsdp_version != 1 && cli->fsdp_version != 2)
            return cfg_input_error(error, "option --fsdp-version: expected 1 or 2, got %d",
                                   cli->fsdp_version);
        if (opt->kind != STRAT_FSDP)
            return cfg_input_error(error, "option --fsdp-version applies to FSDP strategies");
        if (cli->fsdp_version == 2 && opt->sharding == SHARD_NO_SHARD)
            return cfg_input_error(error, "option --fsdp-version 2: fully_shard has no no_shard; "
                                          "expected --strategy ddp (or replicate) for that");
        opt->fsdp_version = cli->fsdp_version;
    }
    if (cli->reshard_after_forward) {
        if (opt->fsdp_version != 2)
            return cfg_input_error(error, "option --reshard-after-forward is fully_shard's "
                                          "(--fsdp-version 2); FSDP1 sets it by --sharding");
        const char *t = cli->reshard_after_forward;
        char *end = NULL;
        long k = strtol(t, &end, 10);
        if (!g_ascii_strcasecmp(t, "true"))
            opt->reshard_after_forward = 1;
        else if (!g_ascii_strcasecmp(t, "false"))
            opt->reshard_after_forward = 0;
        else if (end != t && !*end && k >= 2 && k <= 1 << 20)
            opt->reshard_after_forward = (int)k;
        else
            return cfg_input_error(error, "option --reshard-after-forward: expected true, false "
                                          "or a number of GPUs (2 or more) to reshard to, got "
                                          "\"%s\"",
                                   t);
    }
    if (cli->backward_prefetch &&
        !strat_prefetch_parse(cli_strip_prefix(cli->backward_prefetch, "BackwardPrefetch."),
                              &opt->backward_prefetch))
        return cfg_input_error(error,
                               "option --backward-prefetch: expected pre, post or none, got \"%s\"%s",
                               cli->backward_prefetch,
                               cli_did_you_mean(cli->backward_prefetch,
                                                (const char *const[]){"pre", "post", "none",
                                                                      "backward_pre",
                                                                      "backward_post", NULL}));
    opt->forward_prefetch = cli->forward_prefetch;
    if (!parse_bool("limit-all-gathers", cli->limit_all_gathers, &opt->limit_all_gathers, error))
        return false;
    opt->param_dtype = model->training.param_dtype;
    opt->mixed_precision = opt->param_dtype != HW_DTYPE_FP32 && !cli->mixed_precision_off;
    opt->reduce_dtype = opt->param_dtype;
    if (cli->reduce_dtype && !hw_dtype_parse(cli->reduce_dtype, &opt->reduce_dtype))
        return cfg_input_error(error,
                               "option --reduce-dtype: expected fp32, bf16 or fp16 (or "
                               "torch.float32, ...), got \"%s\"%s",
                               cli->reduce_dtype,
                               cli_did_you_mean(cli->reduce_dtype,
                                                (const char *const[]){"fp32", "bf16", "fp16",
                                                                      "float32", "bfloat16",
                                                                      "float16", NULL}));
    opt->reduce_dtype_set = cli->reduce_dtype != NULL;
    opt->cpu_offload = cli->cpu_offload;
    if (opt->cpu_offload && opt->kind == STRAT_DDP)
        return cfg_input_error(error,
                               "option --cpu-offload is an FSDP option (CPUOffload); DDP keeps "
                               "everything on the GPU");
    if (cli->offload_optimizer && strcmp(cli->offload_optimizer, "none") != 0) {
        /* DeepSpeed's zero_optimization.offload_optimizer.device: none, cpu or nvme */
        if (strcmp(cli->offload_optimizer, "cpu") != 0)
            return cfg_input_error(error,
                                   "option --offload-optimizer: expected none or cpu (DeepSpeed's "
                                   "offload_optimizer device; nvme is not modelled), got \"%s\"",
                                   cli->offload_optimizer);
        if (opt->kind != STRAT_FSDP || opt->sharding == SHARD_NO_SHARD)
            return cfg_input_error(error,
                                   "option --offload-optimizer applies to sharded FSDP/ZeRO "
                                   "strategies (full_shard as ZeRO-3, shard_grad_op as ZeRO-2, "
                                   "hybrid); --strategy %s has none",
                                   opt->kind == STRAT_FSDP ? "no_shard" : strategy);
        if (opt->cpu_offload)
            return cfg_input_error(error, "options --offload-optimizer and --cpu-offload exclude "
                                          "each other: --cpu-offload moves the parameter shards "
                                          "and the optimizer to the host, --offload-optimizer the "
                                          "optimizer only; give one");
        ModelOptimizer o = model->training.optimizer;
        if (o != MODEL_OPT_ADAMW && o != MODEL_OPT_ADAM)
            return cfg_input_error(error, "option --offload-optimizer cpu steps with "
                                          "DeepSpeedCPUAdam: expected --optimizer adamw or adam");
        opt->offload_optimizer = true;
    }
    opt->activation_checkpointing = cli->activation_checkpointing || cli->checkpoint_every > 0;
    opt->checkpoint_every = MAX(1, cli->checkpoint_every);
    if (cli->recompute_granularity) {
        /* Megatron's spelling: full recomputes whole layers (--activation-checkpointing),
         * selective only each attention core */
        if (!strcmp(cli->recompute_granularity, "full"))
            opt->activation_checkpointing = true;
        else if (!strcmp(cli->recompute_granularity, "selective"))
            opt->recompute_selective = true;
        else
            return cfg_input_error(error,
                                   "option --recompute-granularity: expected full or selective, "
                                   "got \"%s\"%s",
                                   cli->recompute_granularity,
                                   cli_did_you_mean(cli->recompute_granularity,
                                                    (const char *const[]){"full", "selective",
                                                                          NULL}));
    }
    opt->allow_tf32 = cli->allow_tf32;
    if (cli->fp8_format) {
        if (!strat_fp8_format_parse(cli->fp8_format, &opt->fp8_format))
            return cfg_input_error(
                error, "option --fp8-format: expected hybrid or e4m3, got \"%s\"%s",
                cli->fp8_format,
                cli_did_you_mean(cli->fp8_format, (const char *const[]){"hybrid", "e4m3", NULL}));
        /* Transformer Engine runs everything but its GEMMs in the autocast dtype */
        if (!opt->mixed_precision)
            return cfg_input_error(error,
                                   "option --fp8-format: needs mixed precision (--param-dtype bf16 "
                                   "or fp16): Transformer Engine runs all but its fp8 GEMMs in it");
    }
    if (cli->memory_format) {
        const char *f = g_str_has_prefix(cli->memory_format, "torch.") ? cli->memory_format + 6
                                                                      : cli->memory_format;
        if (strcmp(f, "channels_last") == 0)
            opt->channels_last = true;
        else if (strcmp(f, "contiguous") != 0 && strcmp(f, "contiguous_format") != 0)
            return cfg_input_error(error,
                                   "option --memory-format: expected channels_last or contiguous "
                                   "(torch.channels_last, torch.contiguous_format), got \"%s\"%s",
                                   cli->memory_format,
                                   cli_did_you_mean(cli->memory_format,
                                                    (const char *const[]){"channels_last",
                                                                          "contiguous", NULL}));
    }
    opt->overlap_grad_reduce = cli->overlap_grad_reduce;
    opt->distributed_optimizer = cli->distributed_optimizer;
    if (opt->zero1)
        strat_options_zero1(opt);
    opt->overlap_param_gather = cli->overlap_param_gather;
    opt->tp_comm_overlap = cli->tp_comm_overlap;
    opt->cuda_launch_blocking = cli->cuda_launch_blocking;
    if ((opt->distributed_optimizer || opt->overlap_grad_reduce) && opt->kind != STRAT_DDP)
        return cfg_input_error(error, "options --use-distributed-optimizer and --overlap-grad-reduce "
                                      "are Megatron's DDP options: give --strategy ddp (FSDP shards "
                                      "and overlaps by itself)");
    if (opt->overlap_param_gather && !opt->distributed_optimizer)
        return cfg_input_error(error, "option --overlap-param-gather needs "
                                      "--use-distributed-optimizer (only it gathers parameters)");
    /* Megatron steps with Apex's or Transformer Engine's FusedAdam; PyTorch defaults to foreach */
    bool megatron = opt->distributed_optimizer || opt->overlap_grad_reduce || opt->tp_comm_overlap;
    opt->optimizer_impl = megatron ? KERN_OPTIM_FUSED : KERN_OPTIM_FOREACH;
    if (cli->optimizer_impl && !kern_optim_impl_parse(cli->optimizer_impl, &opt->optimizer_impl))
        return cfg_input_error(error,
                               "option --optimizer-impl: expected foreach, fused or forloop, got "
                               "\"%s\"",
                               cli->optimizer_impl);
    if (cli->omp_num_threads != UNSET) {
        if (!opt->cpu_offload && !opt->offload_optimizer)
            return cfg_input_error(error, "option --omp-num-threads applies to --cpu-offload and "
                                          "--offload-optimizer cpu (the optimizer step on the "
                                          "CPU)");
        if (cli->omp_num_threads < 1 || cli->omp_num_threads > 4096)
            return cfg_input_error(
                error, "option --omp-num-threads: expected 1 to 4096 threads per rank, got %d",
                cli->omp_num_threads);
        opt->omp_threads = cli->omp_num_threads;
    }
    if (cli->shard_group_size != UNSET) {
        bool hybrid = opt->kind == STRAT_FSDP &&
                      (opt->sharding == SHARD_HYBRID_SHARD || opt->sharding == SHARD_HYBRID_ZERO2);
        if (!hybrid)
            return cfg_input_error(
                error, "option --shard-group-size applies to hybrid_shard and hybrid_zero2");
        if (cli->shard_group_size < 1)
            return cfg_input_error(
                error, "option --shard-group-size: expected a positive number of GPUs, got %d",
                cli->shard_group_size);
        opt->shard_group_size = cli->shard_group_size;
    }
    if (cli->bucket_cap_mb) {
        if (opt->kind != STRAT_DDP)
            return cfg_input_error(
                error, "option --bucket-cap-mb applies to DDP (FSDP buckets per wrapped unit)");
        char *end = NULL;
        double mb = g_ascii_strtod(cli->bucket_cap_mb, &end);
        if (end == cli->bucket_cap_mb || *end || !(mb > 0 && mb <= 1e6))
            return cfg_input_error(
                error, "option --bucket-cap-mb: expected a size in MB in (0, 1e6], got \"%s\"",
                cli->bucket_cap_mb);
        opt->bucket_cap_mb = mb;
        opt->bucket_cap_mb_given = true;
    }
    opt->gradient_as_bucket_view = cli->gradient_as_bucket_view;
    if (cli->grad_accum < 0 || cli->grad_accum > 4096)
        return cfg_input_error(error, "option --grad-accum: expected 1..4096, got %d",
                               cli->grad_accum);
    if (cli->grad_accum > 0)
        opt->grad_accum = cli->grad_accum;
    return true;
}
