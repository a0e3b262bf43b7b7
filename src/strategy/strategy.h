/* strategy: schedule generators, one per parallelism strategy, named as PyTorch names them.
 * Each turns (model, layout, options) into the IR: what every rank issues in one training step,
 * in the order PyTorch issues it. */
#ifndef FSD_STRATEGY_H
#define FSD_STRATEGY_H

#include "../hw/hw.h"
#include "../ir/ir.h"
#include "../model/model.h"
#include "../plan/plan.h"

#include <glib.h>
#include <stdbool.h>

typedef enum { STRAT_DDP, STRAT_FSDP } StratKind;

/* torch.distributed.fsdp.ShardingStrategy */
typedef enum {
    SHARD_FULL_SHARD,
    SHARD_SHARD_GRAD_OP,
    SHARD_NO_SHARD,
    SHARD_HYBRID_SHARD,
    SHARD_HYBRID_ZERO2, /* _HYBRID_SHARD_ZERO2 */
    SHARD_COUNT
} ShardingStrategy;

/* torch.distributed.fsdp.BackwardPrefetch */
typedef enum { PREFETCH_BACKWARD_PRE, PREFETCH_BACKWARD_POST, PREFETCH_NONE } BackwardPrefetch;

typedef struct {
    StratKind kind;
    ShardingStrategy sharding;
    PlanWrapPolicy wrap;
    BackwardPrefetch backward_prefetch;
    bool forward_prefetch;
    bool limit_all_gathers;     /* FSDP's rate limiter: at most 2 all-gathers in flight */
    bool mixed_precision;       /* MixedPrecision(param_dtype=...) / torch.autocast for DDP */
    HwDtype param_dtype;        /* unsharded params and compute */
    HwDtype reduce_dtype;       /* gradient communication (FSDP: defaults to param_dtype) */
    bool reduce_dtype_set;      /* DDP all-reduces fp32 gradients unless this asks otherwise
                                 * (a compression comm hook such as bf16_compress_hook) */
    bool cpu_offload;           /* CPUOffload(offload_params=True) */
    bool activation_checkpointing; /* per block (decoder layer, Bottleneck) */
    int shard_group_size;       /* hybrid: GPUs per shard group, 0 = GPUs per node */
    double bucket_cap_mb;       /* DDP */
    bool gradient_as_bucket_view; /* DDP */
    int grad_accum;             /* micro-batches per optimizer step */
} StratOptions;

/* Layout of the job: block placement of ranks on nodes. */
typedef struct {
    int nodes, gpus_per_node, world;
    int shard_size;     /* FSDP: ranks that shard one FlatParameter */
    int replicate_size; /* FSDP hybrid: shard groups holding replicas; DDP: world */
} StratLayout;

/* What the generator knows beyond the IR, for the report. */
typedef struct {
    StratLayout layout;
    int n_units;             /* FSDP units */
    uint64_t largest_unit_numel;
    uint64_t padded_params;  /* sum of padded FlatParameters */
    int n_buckets;           /* DDP */
    double tokens_per_step;  /* per GPU; samples for image models */
    double samples_per_step; /* per GPU */
    char *wrap_description;
} StratInfo;

void strat_options_default(StratOptions *opt, const Model *model);
bool strat_sharding_parse(const char *text, ShardingStrategy *out);
const char *strat_sharding_name(ShardingStrategy s);
bool strat_prefetch_parse(const char *text, BackwardPrefetch *out);
const char *strat_prefetch_name(BackwardPrefetch p);

/* Checks that the layout is possible (groups divide the GPUs) and fills it. */
bool strat_layout_make(const StratOptions *opt, int nodes, int gpus_per_node, StratLayout *out,
                       GError **error);

/* Builds the schedule of one training step. */
IrSchedule *strat_generate(const Model *model, const HwTopology *topo, const StratOptions *opt,
                           const StratLayout *layout, StratInfo *info, GError **error);
void strat_info_clear(StratInfo *info);

#endif
