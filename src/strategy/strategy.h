/* strategy: schedule generators, one per parallelism strategy, named as PyTorch names them.
 * Each turns (model, layout, options) into the IR: what every rank issues in one training step,
 * in the order PyTorch issues it. */
#ifndef FSD_STRATEGY_H
#define FSD_STRATEGY_H

#include "../hw/hw.h"
#include "../ir/ir.h"
#include "../kern/kern.h"
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

/* Pipeline schedules (issue 5): GPipe (all forward, then all backward), 1F1B (PipeDream-Flush),
 * Megatron's interleaved 1F1B with several model chunks (virtual stages) per rank. */
typedef enum { PP_SCHEDULE_GPIPE, PP_SCHEDULE_1F1B, PP_SCHEDULE_INTERLEAVED } PpSchedule;

/* Stage boundaries split over tensor parallelism (--pp-scatter-gather): each TP rank sends 1/tp
 * of the activation or gradient and the receiver all-gathers the whole over its TP group, as
 * Megatron-LM v2.5-v2.6 does by default (p2p_communication.py; --no-scatter-gather-tensors-in-
 * pipeline turns it off; Megatron-Core parses the flag but no longer reads it). DeepSpeed's
 * pipeline engine with TP (runtime/pipe/engine.py v0.6.0, is_pipe_partitioned /
 * is_grad_partitioned) also keeps only its 1/tp of a stage's output after the forward and
 * all-gathers it again before the backward, beside the received gradient's. */
typedef enum { PP_SG_OFF, PP_SG_MEGATRON, PP_SG_DEEPSPEED } PpScatterGather;

/* Transformer Engine's fp8 recipe (DelayedScaling(fp8_format=...); Megatron-LM --fp8-format):
 * HYBRID is e4m3 forward and e5m2 for gradients, E4M3 e4m3 throughout. Both run on the same
 * Hopper tensor cores at the same rate, so the cost model treats them alike; the name is kept
 * for the summary. */
typedef enum { STRAT_FP8_OFF, STRAT_FP8_HYBRID, STRAT_FP8_E4M3 } StratFp8Format;
/* "off", "hybrid", "e4m3" */
const char *strat_fp8_format_name(StratFp8Format format);
bool strat_fp8_format_parse(const char *text, StratFp8Format *out);
/* Whether a module is a transformer block's linear layer, whose GEMMs --fp8-format runs in fp8
 * (fp8.c says which and why). */
bool strat_fp8_leaf(const Model *model, int leaf);
/* "off", "megatron", "deepspeed" (strategy.c) */
const char *strat_pp_scatter_gather_name(PpScatterGather mode);

/* Parallel dimensions, for the rank placement order (fastest-varying first). */
typedef enum { PAR_DIM_TP, PAR_DIM_PP, PAR_DIM_DP, PAR_DIM_COUNT } ParDim;

typedef struct {
    StratKind kind;
    ShardingStrategy sharding;
    int fsdp_version;           /* 1: FullyShardedDataParallel (FlatParameter), the default;
                                 * 2: fully_shard (per-parameter DTensor shards), fsdp.c */
    int reshard_after_forward;  /* FSDP2: -1 from the sharding strategy (True for full_shard and
                                 * hybrid_shard), 0 False, 1 True, k > 1: reshard to k ranks */
    PlanWrapPolicy wrap;
    BackwardPrefetch backward_prefetch;
    bool forward_prefetch;
    bool limit_all_gathers;     /* FSDP's rate limiter: at most 2 all-gathers in flight */
    bool mixed_precision;       /* MixedPrecision(param_dtype=...) / torch.autocast for DDP */
    int checkpoint_every;       /* with activation_checkpointing: every k-th block (torchtitan's
                                 * selective layer checkpointing, ac_freq; fms-fsdp's fraction
                                 * 1/k); 1 or 0: every block */
    StratFp8Format fp8_format;  /* --fp8-format: the transformer blocks' linear layers' GEMMs in
                                 * fp8 with Transformer Engine's casts (gen.c); off: none */
    bool allow_tf32;            /* torch.backends.cuda.matmul.allow_tf32 (set_float32_matmul_precision
                                 * "high"): fp32 matmuls on TF32 tensor cores */
    bool channels_last;         /* model and inputs .to(memory_format=torch.channels_last): cuDNN's
                                 * convolutions need no layout transposes */
    bool overlap_grad_reduce;   /* Megatron-Core DDP --overlap-grad-reduce (with --tp/--pp) */
    bool distributed_optimizer; /* Megatron's --use-distributed-optimizer (ZeRO-1): gradients
                                 * reduce-scattered, fp32 master weights and optimizer state
                                 * sharded over dp, bf16 parameters all-gathered after the step */
    bool zero1;                 /* --strategy zero1: ZeRO stage 1 (Rajbhandari et al., SC'20,
                                 * "P_os", Figure 1: 2 + 2 + 12/N bytes per parameter with
                                 * fp16/bf16 parameters and gradients): DDP's replicas with
                                 * distributed_optimizer set and the gradients kept and reduced
                                 * in param_dtype. One memory rule with Megatron's optimizer
                                 * (pp.c), which keeps fp32 main grads (6 + 12/N); --reduce-dtype
                                 * fp32 gives that here too (as DeepSpeed's bf16 optimizer, which
                                 * accumulates fp32 gradients) */
    bool tp_comm_overlap;       /* Megatron's --tp-comm-overlap (needs sequence parallelism) */
    bool overlap_param_gather;  /* Megatron's --overlap-param-gather: that all-gather overlaps the
                                 * next step's forward (here: each layer's before its first use) */
    bool cuda_launch_blocking;  /* CUDA_LAUNCH_BLOCKING=1: every kernel launch (NCCL's too)
                                 * returns when the kernel has finished, so the host waits for
                                 * each GPU op it issues (gen.c) */
    KernOptimImpl optimizer_impl; /* foreach (PyTorch's default on CUDA), fused, forloop */
    int omp_threads;            /* CPU offload (either): the CPU step's threads per rank; 0: as
                                 * torchrun sets them (1 with several ranks per node, else all
                                 * cores) */
    HwDtype param_dtype;        /* unsharded params and compute */
    HwDtype reduce_dtype;       /* gradient communication (FSDP: defaults to param_dtype) */
    bool reduce_dtype_set;      /* DDP all-reduces fp32 gradients unless this asks otherwise
                                 * (a compression comm hook such as bf16_compress_hook) */
    bool cpu_offload;           /* CPUOffload(offload_params=True) */
    bool offload_optimizer;     /* DeepSpeed's offload_optimizer {device: cpu} (ZeRO-Offload):
                                 * parameter shards stay on the GPU in param_dtype; fp32 master
                                 * weights, Adam's moments and the step (DeepSpeedCPUAdam) on the
                                 * host (fsdp_offload.c) */
    bool activation_checkpointing; /* per block (decoder layer, Bottleneck) */
    bool recompute_selective;   /* Megatron's --recompute-granularity selective (Korthikanti et
                                 * al. 2022, section 5): each attention core keeps only Q, K and V
                                 * and runs its forward again in its backward; in blocks that
                                 * activation_checkpointing recomputes whole, nothing changes */
    int shard_group_size;       /* hybrid: GPUs per shard group, 0 = GPUs per node */
    double bucket_cap_mb;       /* DDP */
    bool bucket_cap_mb_given;   /* DDP: bucket_cap_mb passed, not left None: since PyTorch 2.3 the
                                 * first bucket is then capped by it too, not by 1 MiB */
    bool gradient_as_bucket_view; /* DDP */
    int grad_accum;             /* micro-batches per optimizer step (with --pp: per pipeline flush) */
    /* Model parallelism (pp.c). tp = pp = 1 is pure data parallelism (ddp.c, fsdp.c). */
    int ep;                     /* expert parallelism (FSDP, MoE models): GPUs each MoE layer's
                                 * experts are spread over; 0 or 1: none (fsdp.c) */
    double moe_imbalance;       /* with ep: tokens the busiest GPU's experts get over the mean
                                 * (1 or 0: balanced); that GPU paces every all-to-all */
    int tp;                     /* Megatron tensor parallelism: ranks per TP group */
    int pp;                     /* pipeline stages */
    int virtual_stages;         /* model chunks per rank (interleaved schedule), 1 otherwise */
    /* Not an option: src/compact asks a 1F1B or interleaved pipeline's program for only this
     * many of its grad_accum micro-batches (0: all), the rest being whole steady-state periods
     * the simulator adds back (StratInfo.class_pair_ops) */
    int pp_generate_micro_batches;
    PpSchedule pp_schedule;
    bool sequence_parallel;     /* Korthikanti et al.: reduce-scatter/all-gather instead of all-reduce */
    PpScatterGather pp_scatter_gather; /* stage boundaries split over TP (pp.c) */
    ParDim order[PAR_DIM_COUNT];/* rank placement, fastest first; Megatron: tp, dp, pp */
    int *pp_partition;          /* decoder layers per virtual stage (pp * virtual_stages), NULL: balanced */
    int n_pp_partition;
} StratOptions;

/* Layout of the job: block placement of ranks on nodes. */
typedef struct {
    int nodes, gpus_per_node, world;
    int shard_size;     /* FSDP: ranks that shard one FlatParameter */
    int replicate_size; /* FSDP hybrid: shard groups holding replicas; DDP: world */
    int tp, pp, dp;     /* model-parallel sizes; dp = world / (tp * pp) */
    int stride[PAR_DIM_COUNT]; /* rank = sum over dims of coordinate * stride */
} StratLayout;

/* What the generator knows beyond the IR, for the report. */
typedef struct {
    StratLayout layout;
    int n_units;             /* FSDP units */
    uint64_t largest_unit_numel;
    uint64_t padded_params;  /* sum of padded FlatParameters */
    int mixed_units;         /* FSDP units mixing frozen and trainable parameters */
    double mixed_grad_bytes; /* unsharded gradient those units allocate (whole FlatParameter) */
    int n_buckets;           /* DDP */
    double tokens_per_step;  /* per GPU; samples for image models */
    double samples_per_step; /* per GPU */
    char *wrap_description;
    /* pipeline: the stage each rank class runs (NULL without model parallelism) */
    int *class_stage;
    int n_class_stage;
    /* a 1F1B or interleaved pipeline's: per rank class, the ops one steady-state period
     * (pp_period_micro_batches: 1F1B a forward and a backward, interleaved a group of pp
     * micro-batches) adds to its program, the same for each but the first and last (0: not so,
     * or GPipe); and the micro-batches left out of the programs (pp_generate_micro_batches, a
     * whole number of periods), so that a class's full program has omitted / period x
     * pair_ops more ops */
    int *class_pair_ops;
    int pp_omitted_micro_batches;
    int pp_period_micro_batches;
} StratInfo;

void strat_options_default(StratOptions *opt, const Model *model);
/* The dtype gradients are reduced in: DDP (and Megatron's DDP) keep fp32 gradients under autocast
 * and reduce them in fp32 unless told otherwise (Megatron forces it for bf16: arguments.py
 * accumulate_allreduce_grads_in_fp32); FSDP its MixedPrecision reduce_dtype. */
HwDtype strat_grad_reduce_dtype(const StratOptions *opt);
/* --strategy zero1 on options whose precision is set: DDP's replicas, distributed optimizer,
 * gradients reduced in param_dtype (fp32 without mixed precision) unless reduce_dtype_set. */
void strat_options_zero1(StratOptions *opt);
bool strat_sharding_parse(const char *text, ShardingStrategy *out);
const char *strat_sharding_name(ShardingStrategy s);
bool strat_prefetch_parse(const char *text, BackwardPrefetch *out);
const char *strat_prefetch_name(BackwardPrefetch p);

bool strat_pp_schedule_parse(const char *text, PpSchedule *out);
const char *strat_pp_schedule_name(PpSchedule s);
/* "tp-dp-pp" style placement orders, fastest first. */
bool strat_order_parse(const char *text, ParDim order[PAR_DIM_COUNT]);
char *strat_order_name(const ParDim order[PAR_DIM_COUNT]);

/* One forward or backward pass of a micro-batch through one model chunk on a pipeline stage. */
typedef enum { PP_PHASE_WARMUP, PP_PHASE_STEADY, PP_PHASE_COOLDOWN } PpPhase;
typedef struct {
    bool forward;
    int micro_batch;
    int chunk;     /* model chunk (virtual stage index on this rank), 0 without interleaving */
    PpPhase phase;
} PpStep;
/* The order stage `stage` of p runs its 2 * m * v passes (steps must hold that many); returns the
 * count. v is used by the interleaved schedule only. */
int strat_pp_order(PpSchedule kind, int p, int v, int m, int stage, PpStep *steps);
const char *strat_pp_phase_name(PpPhase phase);
/* The micro-batches after which a pipeline's steady phase repeats its order of passes: 1 for
 * 1F1B (a forward-backward pair), p for the interleaved schedule (a group of p micro-batches
 * through every chunk), 0 for GPipe (no steady phase). */
static inline int pp_period_micro_batches(const StratOptions *opt, int p)
{
    return opt->pp_schedule == PP_SCHEDULE_1F1B          ? 1
           : opt->pp_schedule == PP_SCHEDULE_INTERLEAVED ? p
                                                         : 0;
}

/* Checks that the layout is possible (groups divide the GPUs) and fills it. */
bool strat_layout_make(const StratOptions *opt, int nodes, int gpus_per_node, StratLayout *out,
                       GError **error);

/* Builds the schedule of one training step. */
IrSchedule *strat_generate(const Model *model, const HwTopology *topo, const StratOptions *opt,
                           const StratLayout *layout, StratInfo *info, GError **error);
void strat_info_clear(StratInfo *info);

/* The dtype matmuls and convolutions run in (gen.c): param_dtype under mixed precision; in full
 * precision TF32 for convolutions (cuDNN's default) and for matmuls only with allow_tf32. */
HwDtype strat_compute_dtype(const Model *model, const StratOptions *opt);

/* Whether the run goes to Megatron's generator with Megatron's layers (pp.c; DDP and ZeRO-1 with
 * --tp or --pp, or Megatron's DDP options), and the multiple it pads the vocabulary to there
 * (make_vocab_size_divisible_by x tp, Megatron-LM's _vocab_size_with_padding: 128 x tp; 0
 * elsewhere: PyTorch's nn.Linear keeps the tokenizer's count). */
bool strat_megatron_layers(const StratOptions *opt, const StratLayout *layout);
int strat_vocab_pad(const StratOptions *opt, const StratLayout *layout);

/* With contiguous (NCHW) tensors, cuDNN's layout transposes around every convolution that runs on
 * tensor cores, added to the model's memory traffic (strategy.c); returns how many. Call once,
 * after the options are made, before generating. */
int strat_memory_format_apply(Model *model, const HwTopology *topo, const StratOptions *opt);

/* LoRA (lora.c): freezes every parameter of the model and adds rank x (in + out) trainable
 * adapter parameters beside each Linear whose last name part is in `targets` (comma-separated);
 * the leaves' saved activations become what a frozen model and the adapters keep. Errors name
 * --lora-targets. */
bool strat_lora_apply(Model *model, int rank, const char *targets, GError **error);
/* peft's default targets for the model's architecture, NULL when peft has none. */
const char *strat_lora_default_targets(const Model *model);

/* FSDP1's HYBRID_SHARD or _HYBRID_SHARD_ZERO2 with a shard group of one rank and more than one
 * replica (1 GPU per node, or --shard-group-size 1): FSDP1 clamps a strategy on a process group
 * of world size 1 to NO_SHARD (torch/distributed/fsdp/_init_utils.py, _init_core_state: "FSDP is
 * switching to use NO_SHARD ... since the world size is 1"), and NO_SHARD all-reduces gradients
 * on that one-rank shard group only: the replicas are never synchronised and diverge
 * (pytorch/pytorch#154888, closed as not planned; volcengine/verl#7493). The generator (fsdp.c)
 * simulates exactly that; the report makes it an error. Pipelines (pp.c) gather as FSDP2 does,
 * which synchronises, so only the pure data-parallel and 2D (TP) generator is affected. */
bool strat_hybrid_unsynced(const StratOptions *opt, const StratLayout *layout);
/* Activation checkpointing recomputes every block whole (no --checkpoint-every K > 1): then
 * selective recomputation has nothing left to do. */
bool strat_recomputes_every_block(const StratOptions *opt);

#endif
