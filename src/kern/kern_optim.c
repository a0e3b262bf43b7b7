/* kern_optim: the optimizer step, on the GPU as PyTorch's three implementations run it and on the
 * host as torch.optim runs it over CPU tensors (FSDP's CPUOffload).
 *
 * The GPU step is memory-bound: its time is the bytes its kernels move at the measured HBM
 * bandwidth (kern_memory_s), and how many bytes depends less on the optimizer than on its
 * implementation. PyTorch's default on CUDA tensors is foreach (torch/optim/optimizer.py
 * _default_to_fused_or_foreach: foreach unless fused=True is asked for): one multi-tensor kernel
 * per arithmetic op, each a full pass over the state. AdamW's foreach step
 * (torch/optim/adam.py _multi_tensor_adam, torch 2.1 and later) runs eight passes:
 *     _foreach_mul_(params, 1 - lr * wd)           p r/w                          2 accesses
 *     _foreach_lerp_(exp_avgs, grads, 1 - beta1)   m r/w, g r                     3
 *     _foreach_mul_(exp_avg_sqs, beta2)            v r/w                          2
 *     _foreach_addcmul_(exp_avg_sqs, g, g, ...)    v r/w, g r                     3
 *     denom = _foreach_sqrt(exp_avg_sqs)           v r, denom w                   2
 *     _foreach_div_(denom, ...), _foreach_add_     denom r/w twice                4
 *     _foreach_addcdiv_(params, exp_avgs, denom)   p r/w, m r, denom r            4
 * 20 fp32 accesses, 80 B per parameter, where the fused kernel (_fused_adamw_,
 * aten/src/ATen/native/cuda/FusedAdamWKernel.cu) reads p, g, m, v and writes p, m, v once:
 * 28 B. The for-loop implementation (foreach=False: _single_tensor_adam) runs the same passes
 * tensor by tensor, so it moves the foreach bytes in passes x tensors launches: host-bound
 * for models of many small tensors. Adam with its default weight_decay=0 skips the first pass.
 *
 * A foreach pass launches one kernel per list of at most max_tensors tensors (by the op's list
 * depth) and 320 blocks of 65536 elements (aten/src/ATen/native/cuda/MultiTensorApply.cuh:
 * depth_to_max_tensors {110, 64, 48, 36, 30}, depth_to_max_blocks 320, kChunkSize 65536).
 *
 * On the host, torch.optim runs the for-loop implementation (foreach defaults to CUDA tensors
 * only) with intra-op threads: OMP_NUM_THREADS, which torchrun sets to 1 when it starts more than
 * one process per node (torch/distributed/run.py: "Setting OMP_NUM_THREADS environment variable
 * for each process to be 1 in default"). One thread streams far less than the node's memory
 * bandwidth: the step takes bytes / min(threads x per-thread bandwidth, the node's bandwidth
 * shared by its ranks), and ranks x threads beyond the node's cores share them.
 *
 * DeepSpeed's optimizer offload steps with its own DeepSpeedCPUAdam instead (kern_cpu_adam_s,
 * below): one fused pass at the same host bandwidths.
 *
 * Cost: a table lookup and a few divisions per call. */
#include "kern.h"

#include <glib.h>
#include <math.h>

/* One implementation of one optimizer: its passes, the fp32 accesses per parameter over all of
 * them, and the deepest tensor list a pass takes (for the foreach launch count). */
typedef struct {
    int passes;
    double accesses;
    int depth;
} OptimImpl;

/* [optimizer][implementation]; the for-loop runs the foreach passes one tensor at a time. */
static const OptimImpl optim_impls[][KERN_OPTIM_IMPL_COUNT] = {
    /* AdamW (weight_decay 0.01 by default): the eight passes above; fused: p, g, m, v in, p, m,
     * v out (depth 4) */
    [MODEL_OPT_ADAMW] = {[KERN_OPTIM_FOREACH] = {8, 20, 3},
                         [KERN_OPTIM_FUSED] = {1, 7, 4},
                         [KERN_OPTIM_FORLOOP] = {8, 20, 3}},
    /* Adam (weight_decay 0 by default): no decay pass */
    [MODEL_OPT_ADAM] = {[KERN_OPTIM_FOREACH] = {7, 18, 3},
                        [KERN_OPTIM_FUSED] = {1, 7, 4},
                        [KERN_OPTIM_FORLOOP] = {7, 18, 3}},
    /* SGD without momentum (torch/optim/sgd.py _multi_tensor_sgd): _foreach_add_(params, grads,
     * alpha=-lr), p r/w and g r; fused (_fused_sgd_) the same bytes in one kernel */
    [MODEL_OPT_SGD] = {[KERN_OPTIM_FOREACH] = {1, 3, 2},
                       [KERN_OPTIM_FUSED] = {1, 3, 2},
                       [KERN_OPTIM_FORLOOP] = {1, 3, 2}},
    /* SGD with momentum: _foreach_mul_(bufs, momentum) (2), _foreach_add_(bufs, grads) (3),
     * _foreach_add_(params, bufs, alpha=-lr) (3); fused: p, g, buf in, p, buf out */
    [MODEL_OPT_SGD_MOMENTUM] = {[KERN_OPTIM_FOREACH] = {3, 8, 2},
                                [KERN_OPTIM_FUSED] = {1, 5, 3},
                                [KERN_OPTIM_FORLOOP] = {3, 8, 2}},
};

static const char *const impl_names[KERN_OPTIM_IMPL_COUNT] = {"foreach", "fused", "forloop"};

const char *kern_optim_impl_name(KernOptimImpl impl)
{
    return impl >= 0 && impl < KERN_OPTIM_IMPL_COUNT ? impl_names[impl] : "?";
}

bool kern_optim_impl_parse(const char *text, KernOptimImpl *out)
{
    for (int i = 0; i < KERN_OPTIM_IMPL_COUNT; i++) {
        if (g_ascii_strcasecmp(text, impl_names[i]) == 0) {
            *out = (KernOptimImpl)i;
            return true;
        }
    }
    return false;
}

static const OptimImpl *impl_of(ModelOptimizer opt, KernOptimImpl impl)
{
    if ((int)opt < 0 || (size_t)opt >= G_N_ELEMENTS(optim_impls) || impl < 0 ||
        impl >= KERN_OPTIM_IMPL_COUNT)
        return NULL;
    return &optim_impls[opt][impl];
}

double kern_optim_bytes(ModelOptimizer opt, KernOptimImpl impl)
{
    const OptimImpl *o = impl_of(opt, impl);
    return o ? o->accesses * 4 : 0;
}

int kern_optim_kernels(ModelOptimizer opt, KernOptimImpl impl, double numel, double tensors)
{
    const OptimImpl *o = impl_of(opt, impl);
    if (!o || numel <= 0)
        return 0;
    tensors = MAX(1, tensors);
    static const int max_tensors[] = {110, 64, 48, 36, 30}; /* by list depth 1..5 */
    double per_pass;
    if (impl == KERN_OPTIM_FORLOOP)
        per_pass = tensors; /* one launch per tensor and op */
    else
        per_pass = MAX(ceil(tensors / max_tensors[CLAMP(o->depth, 1, 5) - 1]),
                       ceil(numel / (320.0 * 65536)));
    double kernels = o->passes * per_pass;
    return kernels > G_MAXINT ? G_MAXINT : (int)kernels;
}

double kern_optimizer_s(const HwGpu *gpu, ModelOptimizer opt, KernOptimImpl impl, double numel,
                        double tensors)
{
    return kern_memory_s(gpu, numel * kern_optim_bytes(opt, impl),
                         kern_optim_kernels(opt, impl, numel, tensors));
}

/* The host memory bandwidth one rank's step streams at: its threads' (each at the per-thread
 * bandwidth, ranks x threads beyond the node's cores at cores / (ranks x threads) of it), at
 * most the node's bandwidth shared by its ranks. */
static double host_rank_Bps(const KernHost *host)
{
    int ranks = MAX(1, host->ranks_per_node), threads = MAX(1, host->threads);
    double share = host->cores > 0 ? MIN(1.0, (double)host->cores / ((double)ranks * threads)) : 1;
    return MIN(threads * share * host->thread_Bps, host->memory_Bps / ranks);
}

double kern_cpu_optimizer_s(const KernHost *host, ModelOptimizer opt, double numel)
{
    if (numel <= 0)
        return 0;
    return numel * kern_optim_bytes(opt, KERN_OPTIM_FORLOOP) / host_rank_Bps(host);
}

/* DeepSpeedCPUAdam (csrc/adam/cpu_adam_impl.cpp, Step_AVX: AVX-512 or AVX2 lanes, `#pragma omp
 * parallel for` over tiles) updates each element in one pass: it reads the fp32 parameter,
 * gradient, exp_avg and exp_avg_sq (16 B) and writes the parameter and both moments (12 B);
 * the updated parameter in param_dtype for the GPU is `param_bytes` more (2 for bf16/fp16, 4 in
 * fp32 training; DeepSpeed's ZeRO-3 writes it with a separate copy_ that re-reads the fp32
 * parameter, 4 B not counted here). Adam and AdamW
 * (adamw_mode) move the same bytes. The for-loop torch.optim AdamW moves 80 B (above), so at
 * one bandwidth this step (bf16) is 80 / 30 = 2.7x faster; the kernel data quotes 5-7x
 * (pytorch/pytorch#74588), which a bandwidth-bound model does not reach: the README's
 * calibration check. */
double kern_cpu_adam_bytes(int param_bytes)
{
    return 16 + 12 + MAX(0, param_bytes);
}

double kern_cpu_adam_s(const KernHost *host, int param_bytes, double numel)
{
    if (numel <= 0)
        return 0;
    return numel * kern_cpu_adam_bytes(param_bytes) / host_rank_Bps(host);
}
