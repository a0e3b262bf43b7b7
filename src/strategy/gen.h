/* gen: what the DDP and FSDP generators share: the program builder (host issue order, streams,
 * implicit launch costs) and the walk over the module tree in forward and backward order.
 * Internal to src/strategy. */
#ifndef FSD_GEN_H
#define FSD_GEN_H

#include "strategy.h"
#include "../util/cfg.h" /* cfg_strdup_printf: the op and buffer names */

typedef struct Gen Gen;

/* Tensor parallelism (tp.c). Where a module sits decides how TP scales it. */
typedef enum { GEN_TP_PRE, GEN_TP_BLOCK, GEN_TP_POST } GenTpRegion; /* embedding, layers, head */
/* What TP does to the tensors a block's leaf keeps for backward (gen_tp_saved_kinds): whole on
 * every rank (a norm's, a column-parallel Linear's input; 1/t with sequence parallelism), split
 * over the ranks (the attention core's, the activation's, a row-parallel Linear's input: 1/t),
 * or, outside blocks and in blocks without attention, the layer's Korthikanti ratio. */
typedef enum { GEN_TP_SAVED_RATIO, GEN_TP_SAVED_WHOLE, GEN_TP_SAVED_SPLIT } GenTpSaved;
typedef struct {
    double flops, act, input, params; /* factors per TP rank: FLOPs, saved activations and
                                       * memory-bound bytes, checkpointed layer input, params */
} GenTpScale;
typedef struct {
    int size;            /* ranks per TP group; 0 or 1: no TP */
    int group;           /* the "tp" process group */
    bool sp;             /* sequence parallelism */
    double bytes;        /* one exchange: s*b*h activations of a micro-batch */
    GenTpRegion *region; /* per module */
    int head_leaf;       /* the output layer: the first GEMM after the blocks, -1 none */
} GenTp;

/* Called by the walks: `enter`/`exit` at boundary modules (FSDP units, blocks), `run` for each
 * maximal run of consecutive leaves between boundaries. */
typedef struct {
    void (*enter)(Gen *g, int module);
    void (*run)(Gen *g, const int *leaves, int n_leaves);
    void (*exit)(Gen *g, int module);
} GenHooks;

struct Gen {
    const Model *model;
    const HwTopology *topo;
    const StratOptions *opt;
    const StratLayout *layout;
    IrSchedule *sched;
    IrClass *cls;
    int host, compute; /* stream ids */
    double mb;         /* samples per micro-batch */
    int micro;         /* current micro-step */
    bool *boundary;    /* per module */
    /* per module: a block whose activations are checkpointed (gen_is_checkpointed), set once
     * by gen_init */
    bool *checkpointed;
    int act_bytes;     /* activation element size */
    /* the run is under torch.autocast with fp32 parameters (DDP's mixed precision, ddp.c): leaves
     * keep their autocast_extra_bytes too */
    bool autocast;
    HwDtype compute_dtype;
    /* activation checkpointing state */
    int ckpt_block;    /* module index of the checkpointed block being walked, -1 none */
    int last_compute;  /* last compute op issued */
    void *strategy;    /* the strategy's own state */
    GenTp tp;          /* FSDP x TP (2D): TP exchanges around each decoder layer's compute */
    GArray *kern_pending; /* of IrKernel: the next compute op's kernels (gen_kernels_*), or NULL */
    uint32_t kern_first_pending; /* or a list the class already has (its seconds are the op's) */
    guint kern_costed;    /* when the whole pending list came from one gen_leaves_s: its length */
    double kern_costed_s; /* and its seconds (each list costed once, not again by the op) */
    GHashTable *kern_cost; /* list content -> its seconds, each distinct list costed once (gen.c) */
    int launch_deferred[16]; /* --cuda-launch-blocking: sends whose host wait comes with */
    int n_launch_deferred;   /* the next receive's (gen_launch_p2p) */
    char *oversize;    /* the first buffer or transfer beyond GEN_SIZE_MAX (gen_size), or NULL */
    double oversize_bytes;
    /* --fp8-format (fp8.c): per module, a linear layer whose GEMMs run in fp8 (NULL: none, the
     * option off); their parameters in g->model, that over the blocks' parameters, and this
     * rank's fp8 weight copies (gen_fp8_weights; 0 until set) */
    bool *fp8_leaf;
    double fp8_params, fp8_block_fraction, fp8_weight_numel;
    int fp8_leaves, fp8_weight_tensors; /* fp8 linears in g->model; those on this rank */
    bool fp8_weights_each_forward;      /* FSDP: no cached fp8 weights, cast in each forward */
    /* Megatron pads the vocabulary to a multiple of this (make_vocab_size_divisible_by x tp:
     * 128 x tp, Megatron-LM's _vocab_size_with_padding), so its output layer's GEMMs are
     * aligned however odd the tokenizer's count (GPT-2's 50257); 0: no padding (PyTorch's
     * nn.Linear) */
    int vocab_pad;
};

/* Sizes are computed in double and stored in the schedule as uint64 bytes; a double beyond the
 * uint64 range (or NaN) has no defined conversion, and gave 0 B or half the bytes. gen_size
 * converts a size in [0, GEN_SIZE_MAX] as a cast does and records the first one outside, which
 * gen_sizes_check turns into an input error naming it. 2^60 B (1 EiB) is far beyond any GPU's
 * memory and leaves headroom for sums of sizes in int64. */
#define GEN_SIZE_MAX 1152921504606846976.0 /* 2^60 */
uint64_t gen_size(Gen *g, const char *name, double bytes);
/* The same for an op named by a string index: its text is read only when out of range. */
uint64_t gen_size_named(Gen *g, uint32_t name, double bytes);
/* False with an input error when some size was beyond GEN_SIZE_MAX; frees the record. */
bool gen_sizes_check(Gen *g, GError **error);

void gen_init(Gen *g, const Model *model, const HwTopology *topo, const StratOptions *opt,
              const StratLayout *layout);

/* Builder. All return the new op's index. Names are texts, interned (ir_string); the *_named
 * forms take a string index, so that a generator can compose names without formatting them
 * (ir_string_join: pp.c names millions of ops). */
int gen_host(Gen *g, double seconds, const char *name);
int gen_host_named(Gen *g, double seconds, uint32_t name);
int gen_host_wait(Gen *g, int dep, const char *name);
/* With --cuda-launch-blocking (gen.c) the compute and collective builders make the host wait for
 * each GPU op they launch; pp.c's sends and receives call gen_launch_p2p: the host waits for a
 * send with the next receive (`receive`), as for one NCCL group, or before the next kernel or
 * collective launched. Nothing without the option. */
void gen_launch_p2p(Gen *g, int op, bool receive);
/* The host waits for the sends still deferred (the end of a class's program). */
void gen_launch_p2p_flush(Gen *g);
int gen_compute(Gen *g, IrPhase phase, double flops, double bytes, double model_flops, int kernels,
                const char *name, const int *deps, int n_deps);
/* The same with the kernel model's device time (0: the simulator's best-shape rates). When
 * kernels are pending (gen_leaves_s, gen_kernels_*), the op carries them and its seconds are
 * their sum (kern_list_s, as the simulator re-costs them), whatever `seconds` says. */
int gen_compute_timed(Gen *g, IrPhase phase, double flops, double bytes, double model_flops,
                      int kernels, double seconds, const char *name, const int *deps, int n_deps);
/* The same on another stream (FSDP's post-backward stream); last_compute stays the compute
 * stream's. */
int gen_compute_on(Gen *g, int stream, IrPhase phase, double flops, double bytes,
                   double model_flops, int kernels, double seconds, const char *name,
                   const int *deps, int n_deps);
int gen_compute_named(Gen *g, int stream, IrPhase phase, double flops, double bytes,
                      double model_flops, int kernels, double seconds, uint32_t name,
                      const int *deps, int n_deps);
/* The dtype matmuls and convolutions run in: param_dtype under mixed precision; in full
 * precision TF32 for convolutions (cuDNN's allow_tf32 defaults to True) and FP32 for matmuls
 * (torch.backends.cuda.matmul.allow_tf32 defaults to False) unless the user allows TF32. */
HwDtype gen_compute_dtype(const Model *model, const StratOptions *opt);
/* Device time of a run of leaves for `samples` samples: the kernel model's tensor-core kernels
 * (one TP rank's share when tp_split > 1) plus `bytes` of memory-bound traffic in `kernels`
 * kernels. */
double gen_leaves_s(Gen *g, const int *leaves, int n, double samples, double tp_split,
                    bool backward, double bytes, int kernels);
/* The next compute op's kernel list (schedule version 3), built before gen_compute_timed takes
 * it: gen_leaves_s adds the leaves' kernels and the memory-bound one; these add kernels of a
 * leaf, a memory-bound kernel (none for no bytes and no kernels), or records with their share
 * multiplied by `share`. gen_kernels_take hands the pending list over (g_array_free it). */
void gen_kernels_leaf(Gen *g, GArray *into, int leaf, double samples, double tp_split,
                      bool backward);
/* fp8 (fp8.c, --fp8-format). gen_fp8_init marks the fp8 linears (nothing when off);
 * gen_leaf_dtype is a leaf's GEMM dtype; gen_fp8_cast_kernels adds a leaf's cast kernel (input
 * forward, output gradient backward) after its GEMMs; gen_fp8_weights allocates `numel`
 * parameters' fp8 copies on this rank and has gen_optimizer_step cast them each step. */
void gen_fp8_init(Gen *g);
void gen_fp8_clear(Gen *g);
HwDtype gen_leaf_dtype(const Gen *g, int leaf);
void gen_fp8_cast_kernels(Gen *g, GArray *into, int leaf, double samples, double tp_split,
                          bool backward);
void gen_fp8_weights(Gen *g, double numel);
void gen_kernels_memory(Gen *g, GArray *into, double bytes, int kernels);
void gen_kernels_add(Gen *g, const GArray *list, double share);
GArray *gen_kernels_take(Gen *g);
void gen_kernels_clear(Gen *g); /* frees the pending list */
int gen_alloc(Gen *g, const char *buffer, IrMemCategory cat, double bytes);
/* On g->host for tensors that live on one stream (freed when the host drops them), on the
 * stream of the last use (dep) for tensors recorded on another stream. */
int gen_free(Gen *g, int stream, const char *buffer, IrMemCategory cat, double bytes, int dep);
int gen_coll(Gen *g, int stream, IrCollKind kind, int group, double bytes, HwDtype dtype,
             IrPhase phase, const char *name, const int *deps, int n_deps);
/* The same run by kernels that hold `sms` SMs (IrOp.u.coll.sms), not NCCL's channels. */
int gen_coll_sms(Gen *g, int stream, IrCollKind kind, int group, double bytes, HwDtype dtype,
                 IrPhase phase, const char *name, const int *deps, int n_deps, int sms);
int gen_coll_named(Gen *g, int stream, IrCollKind kind, int group, double bytes, HwDtype dtype,
                   IrPhase phase, uint32_t name, const int *deps, int n_deps, int sms);

/* Walks: forward visits modules in pre-order, backward in reverse. */
void gen_walk_forward(Gen *g, const GenHooks *hooks);
void gen_walk_backward(Gen *g, const GenHooks *hooks);

/* Forward / backward compute of a leaf run, with activation memory and checkpointing handled:
 * forward allocates what the run saves for backward (or nothing inside a checkpointed block);
 * backward frees it. Returns the compute op. */
int gen_forward_run(Gen *g, const int *leaves, int n, const int *deps, int n_deps);
int gen_backward_run(Gen *g, const int *leaves, int n, const int *deps, int n_deps);
/* The leaves' backward transients (the cross-entropy loss's logit gradients, see gen.c):
 * allocated and freed at once, so call it before the run's parameter gradient is allocated. */
void gen_backward_transient(Gen *g, const int *leaves, int n);
/* Checkpointing at block boundaries (call from enter/exit hooks). */
bool gen_is_checkpointed(Gen *g, int module);
/* Whether the block of this ordinal (0 = first decoder layer) is checkpointed. */
bool gen_block_checkpointed(const StratOptions *opt, int ordinal);
void gen_ckpt_forward_enter(Gen *g, int block);
void gen_ckpt_forward_exit(Gen *g, int block);
int gen_ckpt_backward_enter(Gen *g, int block, const int *deps, int n_deps);
void gen_ckpt_backward_exit(Gen *g, int block);

/* Optimizer step over `numel` parameters on the GPU (memory-bound update). */
/* The optimizer step over `numel` parameters in `tensors` tensors, on the GPU as the options'
 * implementation runs it (src/kern/kern_optim.c). */
int gen_optimizer_step(Gen *g, double numel, double tensors, const int *deps, int n_deps);
/* foreach Adam's temporary denominator list around that step (gen.c): alloc before it, returning
 * the bytes (0 for fused, for-loop or SGD), free after it. The data-parallel generators (ddp.c,
 * fsdp.c) call them; pp.c does not yet. */
double gen_optimizer_denom_alloc(Gen *g, double numel);
void gen_optimizer_denom_free(Gen *g, double bytes);
/* The same on the host (CPU offload): torch.optim's for-loop at the threads torchrun gives. */
int gen_cpu_optimizer_step(Gen *g, double numel);
/* DeepSpeed's optimizer offload: DeepSpeedCPUAdam's fused step at the same threads, the
 * parameter written out in `param_bytes` too (kern_cpu_adam_s). */
int gen_cpu_adam_step(Gen *g, double numel, int param_bytes);
/* Parameter tensors of the whole model, as the optimizer sees them without flattening. */
double gen_param_tensors(const Gen *g);

/* Tensor parallelism (tp.c). */
GenTpScale gen_tp_scale(int t, bool sp, GenTpRegion region);
GenTpRegion *gen_tp_regions(const Model *model); /* per module; g_free it */
GenTpSaved *gen_tp_saved_kinds(const Model *model); /* per module; g_free it */
/* One TP rank's share of the model: params and FLOPs / t, activations as gen_tp_scale says.
 * Shares the model's strings: free with gen_tp_model_free, before the model. */
Model *gen_tp_model(const Model *model, int t, bool sp);
void gen_tp_model_free(Model *copy);
void gen_tp_setup(Gen *g, int group);
void gen_tp_clear(Gen *g);
/* gen_compute for a run starting at `leaf`, with the TP exchanges its region needs; `head`:
 * the run holds the output layer (GenTp.head_leaf). */
int gen_tp_compute(Gen *g, int leaf, bool head, IrPhase phase, bool forward, double flops,
                   double bytes, double model_flops, int kernels, double seconds,
                   const char *name, const int *deps, int n_deps);

IrSchedule *strat_ddp_generate(Gen *g, StratInfo *info, GError **error);
IrSchedule *strat_fsdp_generate(Gen *g, StratInfo *info, GError **error);
/* Tensor and pipeline parallelism, combined with DDP or FSDP over the data-parallel dimension
 * (pp.c); one rank class per pipeline stage, so it builds its own Gen per class. */
IrSchedule *strat_pp_generate(const Model *model, const HwTopology *topo, const StratOptions *opt,
                              const StratLayout *layout, StratInfo *info, GError **error);

#endif
