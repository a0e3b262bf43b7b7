/* simulate: the command line of `fsdpsim` (no subcommand), shared by simulate.c (the run) and
 * simulate_options.c (turning it into strategy options). Internal to src/cli. */
#ifndef FSD_CLI_SIMULATE_PRIV_H
#define FSD_CLI_SIMULATE_PRIV_H

#include "cli.h"
#include "parallel.h"
#include "train.h"
#include "../model/model.h"
#include "../strategy/strategy.h"

#include <glib.h>

typedef struct {
    char *model, *topology, *strategy, *sharding, *wrap, *backward_prefetch;
    char *limit_all_gathers, *param_dtype, *reduce_dtype, *optimizer, *nccl_algo, *nccl_proto;
    char *nccl_version; /* --nccl-version: the NCCL release whose rules apply (LL128) */
    char *trace, *emit_schedule, *schedule, *attention, *max_memory, *optimizer_impl;
    char *offload_optimizer;           /* --offload-optimizer none|cpu */
    char *plot, *plot_format, *report; /* figures.c */
    char *command; /* the command line as given, for --report's README; NULL in process */
    int nodes, gpus_per_node, seq_len, micro_batch, grad_accum, shard_group_size, checkpoint_every;
    int omp_num_threads;
    char *bucket_cap_mb; /* text: GOption would accept "nan" and "inf" as doubles */
    gboolean forward_prefetch, cpu_offload, activation_checkpointing, mixed_precision_off;
    gboolean allow_tf32, compile, overlap_grad_reduce, distributed_optimizer, overlap_param_gather;
    gboolean tp_comm_overlap, cuda_launch_blocking;
    gboolean gradient_as_bucket_view, json, version, no_flash_attention;
    CliParallel par; /* --tp, --pp, ... (parallel.c) */
    CliTrain train;  /* --state-dict, --save-every, --tokens, ... (train.c) */
    int fsdp_version;
    char *reshard_after_forward;
    char *memory_format; /* --memory-format: channels_last or contiguous */
    char *recompute_granularity; /* --recompute-granularity: full or selective (Megatron's) */
    char *fp8_format;            /* --fp8-format: hybrid or e4m3 (Megatron-LM's flag) */
    char *loss_impl; /* --loss-impl: whose cross-entropy (hf, fused, ...; model.h ModelLossImpl) */
} CliOptions;

/* Turns the command line into strategy options, after the model is known (its training settings
 * give the defaults). False with an input error naming the option. */
bool cli_make_options(const CliOptions *cli, const Model *model, StratOptions *opt, GError **error);

#endif
