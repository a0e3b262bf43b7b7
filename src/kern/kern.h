/* kern: the kernel cost model. How long one GPU kernel takes, from what it is (class and shape),
 * calibrated on single-kernel microbenchmarks (the topology's "gpu.kernels" figures; see
 * topologies/README.md for where each comes from and `fsdpsim kernels` to check or refit them).
 *
 * One cost function per kernel class, in a const table (KernClassOps): GEMM, fused (flash)
 * attention, memory-bound. Everything else is composed from these: unfused attention is two
 * batched GEMMs plus its softmax traffic, a leaf's backward is its dgrad and wgrad GEMMs.
 *
 * Without "gpu.kernels" in the topology every FLOP runs at matmul_efficiency (the best-shape
 * rate): the model fsdpsim had before, kept so that hand-written topologies still work. */
#ifndef FSD_KERN_H
#define FSD_KERN_H

#include "../hw/hw.h"
#include "../model/model.h"

#include <stdbool.h>

/* KERN_FLOPS: tensor-core work of no known shape (a leaf without a kernel shape), at the
 * best-shape rate. KERN_CONV: a convolution as cuDNN runs it, an implicit GEMM of m x n x k
 * that moves `bytes` (its input, weights and output; kern.c says how it is costed). */
typedef enum {
    KERN_GEMM,
    KERN_ATTENTION,
    KERN_MEMORY,
    KERN_FLOPS,
    KERN_CONV,
    KERN_CLASS_COUNT
} KernClass;

/* How attention runs: eager (two batched GEMMs and a softmax), FlashAttention-2's CUDA kernels,
 * FlashAttention's Triton kernel (MPT's attn_impl=triton) or FlashAttention v1's CUDA kernels. */
typedef enum { KERN_ATTN_EAGER, KERN_ATTN_FLASH2, KERN_ATTN_TRITON, KERN_ATTN_FLASH1 } KernAttnImpl;
KernAttnImpl kern_attention_impl(const Model *model);

/* A kernel: its class and shape. */
typedef struct {
    KernClass cls;
    HwDtype dtype;
    /* GEMM: batch x [m x k] . [k x n]; convolution: m x n x k (batch 1) */
    double m, n, k, batch;
    /* GEMM: a contiguous dimension of an operand is not a multiple of 16 bytes
     * (kern_gemm_misaligned), so the GEMM runs at gpu.kernels.gemm_misaligned_efficiency of its
     * aligned rate */
    bool misaligned;
    /* attention (fused): batch x heads, sequence, head dim; the pass it runs */
    double heads, seq, head_dim;
    double window; /* keys a query sees under a sliding window (local attention); 0: all */
    bool causal, backward;
    KernAttnImpl impl; /* FLASH2, TRITON or FLASH1 (eager attention is GEMMs) */
    /* memory-bound: bytes moved and the number of kernels they are spread over; convolution:
     * the HBM bytes of its tensors (bytes only) */
    double bytes;
    int kernels;
    double flops; /* KERN_FLOPS */
    /* in a list (kern_leaf_kernels, schedules): how much of the kernel runs, 3 for three
     * launches of the shape, 0.5 for half; its time is share x kern_time_s */
    double share;
} KernShape;

typedef struct {
    const char *name;
    double (*time_s)(const HwGpu *gpu, const KernShape *shape);
} KernClassOps;

extern const KernClassOps kern_classes[KERN_CLASS_COUNT];

/* Device time of one kernel. */
double kern_time_s(const HwGpu *gpu, const KernShape *shape);

/* Shorthands. */
double kern_gemm_s(const HwGpu *gpu, HwDtype dtype, double m, double n, double k, double batch);
double kern_conv_s(const HwGpu *gpu, HwDtype dtype, double m, double n, double k, double bytes);
double kern_attention_impl_s(const HwGpu *gpu, HwDtype dtype, KernAttnImpl impl, double batch,
                             double heads, double seq, double head_dim, bool causal, bool backward);
double kern_memory_s(const HwGpu *gpu, double bytes, int kernels);

/* The tensor-core work of one model leaf for `samples` samples, forward or backward (dgrad and
 * wgrad GEMMs; attention's backward pass), with the leaf's GEMM width and heads divided by
 * `tp_split` (one tensor-parallel rank's share; 1 for none), attention as `attn` runs it.
 * Eager attention is two batched GEMMs per pass; its softmax traffic is in the leaf's memory
 * bytes. A leaf with
 * FLOPs but no known kernel shape runs at the best-shape rate. Memory-bound bytes are not
 * included: callers add kern_memory_s for the run's bytes. */
double kern_leaf_s(const HwGpu *gpu, HwDtype dtype, const ModelModule *leaf, KernAttnImpl attn,
                   double samples, double tp_split, bool backward);

/* The kernels kern_leaf_s sums, in its order (at most KERN_LEAF_MAX, each with its share):
 * kern_leaf_s == the sum of share x kern_time_s over them, bit for bit. Returns the count. */
#define KERN_LEAF_MAX 2
int kern_leaf_kernels(HwDtype dtype, const ModelModule *leaf, KernAttnImpl attn, double samples,
                      double tp_split, bool backward, KernShape out[KERN_LEAF_MAX]);

/* The schedule's kernel records (kern_ir.c): conversion both ways (exact), the device time of
 * an op's list on a GPU (sum of share x kern_time_s, in list order), and the re-costing of every
 * compute op that has a list for the GPU at hand (the simulator's view of a schedule made for
 * another GPU, or read from a file). O(distinct lists x their kernels). */
#include "../ir/ir.h"
void kern_to_ir(const KernShape *shape, IrKernel *out);
void kern_from_ir(const IrKernel *k, KernShape *out);
double kern_list_s(const HwGpu *gpu, const IrKernel *list, int n);
void kern_schedule_retime(IrSchedule *s, const HwGpu *gpu);
/* Whether any kernel record of the schedule is of `dtype` (an fp8 schedule on a GPU without fp8
 * is refused before it is costed). O(records). */
bool kern_schedule_has_dtype(const IrSchedule *s, HwDtype dtype);

/* The GEMM tile figures for a dtype: fp8's own where the topology gives them, else bf16's. */
/* A GEMM's best-shape rate in `dtype`: the peak times matmul_efficiency (tf32's own with kernel
 * figures, fp8's MAMF fraction; 0 on a GPU without fp8), before the sustained fraction. */
double kern_gemm_best_rate(const HwGpu *gpu, HwDtype dtype);
double kern_gemm_k_overhead(const HwKernels *k, HwDtype dtype);
double kern_gemm_small_tile_cost(const HwKernels *k, HwDtype dtype);

/* Whether a Linear's GEMMs are misaligned: its input or output features (the contiguous
 * dimensions of every operand of its forward, dgrad and wgrad; tokens never are) are not a
 * whole multiple of 16 bytes of `dtype`. A fractional width (an uneven tensor-parallel split)
 * counts as misaligned: its shards are uneven whole numbers. Also eager attention's two GEMMs
 * (head dim and sequence). */
bool kern_gemm_misaligned(HwDtype dtype, double in_features, double out_features);
/* The same for a model leaf's Linear on one of `tp_split` tensor-parallel ranks: a
 * column-parallel layer's output split, a row-parallel one's input (ModelKernel.row_parallel);
 * false for a layer list's estimated shapes and for convolutions. */
bool kern_linear_misaligned(HwDtype dtype, const ModelKernel *k, double tp_split);
/* A single width (a traced GEMM's m, n or k, whose layout is not known). */
bool kern_width_misaligned(HwDtype dtype, double elements);
/* kern_leaf_kernels' list for `model`'s output layer under a vocabulary padded to a multiple of
 * vocab_pad (strat_vocab_pad; 0: none): judged by the padded width, the padding's FLOPs not
 * charged (at most vocab_pad / vocab of the layer). Other leaves' lists are left as they are. */
void kern_leaf_pad_vocab(HwDtype dtype, const Model *model, const ModelModule *leaf,
                         double tp_split, int vocab_pad, KernShape *list, int n);

/* The efficiency a GEMM of this shape reaches: FLOPs / (time x peak). For reports and tests. */
double kern_gemm_efficiency(const HwGpu *gpu, HwDtype dtype, double m, double n, double k,
                            double batch);

/* The optimizer step (kern_optim.c). PyTorch's implementations: foreach (the default on CUDA
 * tensors), fused (fused=True; Apex/Transformer Engine FusedAdam in Megatron and DeepSpeed) and
 * the for-loop (foreach=False, and torch.optim on CPU tensors). */
typedef enum {
    KERN_OPTIM_FOREACH,
    KERN_OPTIM_FUSED,
    KERN_OPTIM_FORLOOP,
    KERN_OPTIM_IMPL_COUNT
} KernOptimImpl;
const char *kern_optim_impl_name(KernOptimImpl impl);
bool kern_optim_impl_parse(const char *text, KernOptimImpl *out); /* case-insensitive */
/* HBM bytes one update moves per parameter (fp32 state), and the kernels it launches over
 * `numel` parameters in `tensors` tensors. */
double kern_optim_bytes(ModelOptimizer opt, KernOptimImpl impl);
int kern_optim_kernels(ModelOptimizer opt, KernOptimImpl impl, double numel, double tensors);
/* Device time of one step over `numel` parameters in `tensors` tensors. */
double kern_optimizer_s(const HwGpu *gpu, ModelOptimizer opt, KernOptimImpl impl, double numel,
                        double tensors);

/* The host a CPU-offloaded optimizer runs on: its cores (0: unknown, never oversubscribed), the
 * memory bandwidth one thread streams, the node's, the training ranks on the node and the
 * intra-op threads of each. */
typedef struct {
    int cores;
    double thread_Bps, memory_Bps;
    int ranks_per_node, threads;
} KernHost;
/* torch.optim's for-loop step over `numel` CPU parameters of one rank. */
double kern_cpu_optimizer_s(const KernHost *host, ModelOptimizer opt, double numel);
/* DeepSpeedCPUAdam (DeepSpeed's offload_optimizer): host bytes one element's fused step moves,
 * the updated parameter written out in param_dtype (`param_bytes`: 2 for bf16/fp16, 4 for fp32,
 * 0 for none), and the step's time over `numel` elements of one rank at the host's bandwidths. */
double kern_cpu_adam_bytes(int param_bytes);
double kern_cpu_adam_s(const KernHost *host, int param_bytes, double numel);

#endif
