/* kern: the kernel cost model; see kern.h.
 *
 * GEMM (cuBLAS-like). The output is cut into tiles of tm x tn; each tile is one CTA, and a GPU
 * runs one CTA per SM at a time, so a GEMM takes ceil(tiles / SMs) waves of one tile's time
 * (NVIDIA, "Matrix Multiplication Background User's Guide": tile and wave quantisation). A tile
 * computes 2 tm tn K FLOPs at its SM's share of the best-shape rate (matmul_efficiency of the
 * peak: measured MAMF), plus a prologue/epilogue worth gemm_k_overhead K-steps; smaller tiles
 * reuse each loaded operand less and pay gemm_small_tile_cost per unit of 1/tm + 1/tn. When the
 * output has too few tiles to fill the GPU, cuBLAS splits K across CTAs and reduces the fp32
 * partial sums through memory (split-K). The library's heuristic is modelled as picking the
 * fastest of these candidates. No candidate beats HBM: reading each operand once and writing
 * the output once bound it from below (the roofline), which binds for short K (eager attention's
 * QK^T, K = head dim). Every kernel also costs kernel_fixed_us (launch, ramp, tail).
 * A GEMM whose operands' contiguous dimensions are not whole multiples of 16 bytes cannot use
 * 16-byte vector loads (nor, on Hopper, TMA, whose global strides must be multiples of 16
 * bytes: CUDA driver API, cuTensorMapEncodeTiled); cuBLAS then runs a kernel for narrower
 * alignment, and the tiles' time is divided by gemm_misaligned_efficiency (measured: an H100
 * bmm with K = 10922 fp16 elements, 4-byte aligned, at 0.69 of its neighbours' rate).
 * Small and skinny GEMMs therefore come out slower than large square ones: too few tiles for one
 * wave, a fixed cost on little work, short K.
 *
 * Convolutions (cuDNN's implicit GEMM: rows = output pixels, n = output channels, k = input
 * channels x filter taps) run on the same tiles and waves, with two differences. Their roofline
 * is on the bytes the convolution really moves (input, weights, output): the implicit GEMM builds
 * its [rows x k] operand in shared memory from the input, which a 3x3 filter reads once, not
 * nine times. And they pay no gemm_k_overhead: that figure is fitted on cuBLAS(Lt) GEMMs, whose
 * kernel PyTorch's matmuls take from the library's heuristic without timing it, while cuDNN
 * under torch.backends.cudnn.benchmark (NVIDIA DeepLearningExamples' ConvNets main.py sets it)
 * times its algorithms for each layer's shape and keeps the fastest. A convolution's K is
 * short (64-4608 in ResNet-50), so a K-overhead of a few hundred K-steps would make it two to
 * eight times slower; shared/data/kernels holds no convolution timing to fit its own, so none
 * is charged (an optimistic bound where the kernels do not hide their epilogue).
 *
 * Fused attention (FlashAttention-2): one CTA per (sample, head, 128-row query block) walks the
 * 128-column key blocks, all of them, or under a causal mask those up to the diagonal (on
 * average (n + 1) / 2 of n). A block is 4 x 128 x 128 x d FLOPs at attention_efficiency of the
 * peak; each CTA pays attention_row_us of set-up and write-out. The backward pass is 2.5 times
 * the forward's FLOPs (FlashAttention-2 paper's convention) at the same rates. Short sequences
 * thus run at a lower rate (few blocks per row to amortise the row's cost), and causal masking
 * halves the work but not the rows.
 *
 * Memory-bound kernels move their bytes at the measured (BabelStream) fraction of HBM bandwidth,
 * memory_efficiency; a kernel takes at least kernel_fixed_us.
 *
 * Cost: a GEMM tries 6 tiles x 4 splits; a leaf is 1-4 kernels. Called once per leaf per
 * micro-batch size when a schedule is generated, never by the engine. */
#include "kern.h"

#include <math.h>

static const struct {
    double tm, tn;
} gemm_tiles[] = {{256, 128}, {128, 256}, {128, 128}, {128, 64}, {64, 128}, {64, 64}};
static const double gemm_splits[] = {1, 2, 4, 8};
/* FlashAttention-2's block sizes on Ampere and Hopper for head dims 64-128 */
static const double attn_block = 128;

double kern_gemm_best_rate(const HwGpu *gpu, HwDtype dtype)
{
    /* fp8: the fp8 MAMF (best torch._scaled_mm shape) over the fp8 peak; 0 without fp8, so a
     * caller that lets an fp8 op reach a GPU without fp8 gets an infinite time, never a fast one */
    if (dtype == HW_DTYPE_FP8)
        return gpu->peak_flops[HW_DTYPE_FP8] * gpu->fp8_matmul_efficiency;
    double eff = dtype == HW_DTYPE_TF32 && gpu->kernels.present ? gpu->kernels.tf32_efficiency
                                                                : gpu->matmul_efficiency;
    return gpu->peak_flops[dtype] * eff;
}

double kern_gemm_k_overhead(const HwKernels *k, HwDtype dtype)
{
    return dtype == HW_DTYPE_FP8 && k->fp8_gemm_k_overhead >= 0 ? k->fp8_gemm_k_overhead
                                                                : k->gemm_k_overhead;
}

double kern_gemm_small_tile_cost(const HwKernels *k, HwDtype dtype)
{
    return dtype == HW_DTYPE_FP8 && k->fp8_gemm_small_tile_cost >= 0 ? k->fp8_gemm_small_tile_cost
                                                                     : k->gemm_small_tile_cost;
}

/* A GEMM's best rate once the GPU runs at its power limit: microbenchmarks time cold bursts
 * (MAMF, XLA's table), training runs for seconds at the limit, where the clock drops
 * (gpu.sustained_gemm_fraction, measured; attention and memory-bound kernels draw less power
 * and keep their rates). */
static double gemm_rate(const HwGpu *gpu, HwDtype dtype)
{
    double f = gpu->sustained_gemm_fraction; /* 0 in a hand-built HwGpu: not given */
    return kern_gemm_best_rate(gpu, dtype) * (f > 0 ? f : 1);
}

static double memory_Bps(const HwGpu *gpu)
{
    return gpu->hbm_Bps * gpu->memory_efficiency;
}

/* The fastest tiling of m x n x k (batch of them) on the tensor cores: tiles, waves, split-K,
 * each tile paying k_overhead K-steps. */
static double gemm_tiles_s(const HwGpu *gpu, const KernShape *s, double k_overhead)
{
    const HwKernels *kp = &gpu->kernels;
    double sm_rate = gemm_rate(gpu, s->dtype) / kp->sm_count;
    double best = INFINITY;
    for (size_t t = 0; t < G_N_ELEMENTS(gemm_tiles); t++) {
        double tm = gemm_tiles[t].tm, tn = gemm_tiles[t].tn;
        double small =
            1 + kern_gemm_small_tile_cost(kp, s->dtype) * (1 / tm + 1 / tn - 3.0 / 256);
        double tiles = ceil(s->m / tm) * ceil(s->n / tn) * s->batch;
        for (size_t i = 0; i < G_N_ELEMENTS(gemm_splits); i++) {
            double split = gemm_splits[i];
            if (split > 1 && (s->k / split < 256 || tiles >= kp->sm_count))
                break;
            double waves = ceil(tiles * split / kp->sm_count);
            double tile_s = 2 * tm * tn * (ceil(s->k / split) + k_overhead) / sm_rate * small;
            double t_s = waves * tile_s;
            if (split > 1) /* fp32 partial sums written and read back, then the output */
                t_s += (2 * split * 4 + 2) * s->m * s->n * s->batch / memory_Bps(gpu);
            best = MIN(best, t_s);
        }
    }
    return best;
}

static double gemm_time(const HwGpu *gpu, const KernShape *s)
{
    double flops = 2 * s->m * s->n * s->k * s->batch;
    if (flops <= 0)
        return 0;
    if (!gpu->kernels.present)
        return flops / gemm_rate(gpu, s->dtype);
    double best = gemm_tiles_s(gpu, s, kern_gemm_k_overhead(&gpu->kernels, s->dtype));
    double misaligned = gpu->kernels.gemm_misaligned_efficiency;
    if (s->misaligned && misaligned > 0) /* 0 in a hand-built HwGpu: not given */
        best /= misaligned;
    /* No tiling beats HBM: each operand is read once and the output written once at least.
     * Short-K GEMMs (eager attention's QK^T with K = head dim, batched over heads) are bound by
     * writing their output, which the compute terms above do not see. An fp8 GEMM reads 1-byte
     * operands and writes bf16 (Transformer Engine's output dtype). */
    double elt = hw_dtype_bytes(s->dtype);
    double bytes = s->dtype == HW_DTYPE_FP8
                       ? (s->m * s->k + s->k * s->n + 2 * s->m * s->n) * s->batch
                       : elt * (s->m * s->k + s->k * s->n + s->m * s->n) * s->batch;
    return gpu->kernels.fixed_s + MAX(best, bytes / memory_Bps(gpu));
}

/* A convolution: tiles and waves without the K-overhead, or its real bytes (see the top). */
static double conv_time(const HwGpu *gpu, const KernShape *s)
{
    KernShape one = *s;
    one.batch = 1;
    double flops = 2 * s->m * s->n * s->k;
    if (flops <= 0)
        return 0;
    if (!gpu->kernels.present)
        return flops / gemm_rate(gpu, s->dtype);
    double best = gemm_tiles_s(gpu, &one, 0);
    return gpu->kernels.fixed_s + MAX(best, s->bytes / memory_Bps(gpu));
}

static double attention_flops(const KernShape *s)
{
    /* 4 b h s^2 d forward (QK^T and PV), halved under a causal mask; backward 2.5 x. Under a
     * sliding window of w keys: 4 b h s w d, the mask's halving already inside the window. */
    if (s->window > 0 && s->window < s->seq)
        return 4 * s->batch * s->heads * s->seq * s->window * s->head_dim *
               (s->backward ? 2.5 : 1);
    double f = 4 * s->batch * s->heads * s->seq * s->seq * s->head_dim;
    return f * (s->causal ? 0.5 : 1) * (s->backward ? 2.5 : 1);
}

static double attention_time(const HwGpu *gpu, const KernShape *s)
{
    if (s->batch <= 0 || s->heads <= 0 || s->seq <= 0)
        return 0;
    if (!gpu->kernels.present)
        return attention_flops(s) / kern_gemm_best_rate(gpu, s->dtype);
    const HwKernels *kp = &gpu->kernels;
    double pass = s->backward ? 2.5 : 1;
    /* each implementation's own block rate and per-row cost where the GPU has them measured,
     * else FlashAttention-2's (the report says so) */
    double efficiency = kp->attention_efficiency, row_fixed_s = kp->attention_row_s;
    if (s->impl == KERN_ATTN_TRITON && kp->triton_attention_efficiency > 0)
        efficiency = kp->triton_attention_efficiency, row_fixed_s = kp->triton_attention_row_s;
    else if (s->impl == KERN_ATTN_FLASH1 && kp->flash1_attention_efficiency > 0)
        efficiency = kp->flash1_attention_efficiency, row_fixed_s = kp->flash1_attention_row_s;
    double n = ceil(s->seq / attn_block);
    double rows = s->batch * s->heads * n;
    double blocks_per_row = s->causal ? (n + 1) / 2 : n;
    /* FlashAttention-2's local attention (window_size, flash_attn_func) visits only the key
     * blocks that overlap the window: w / 128 of them, plus one the window straddles */
    if (s->window > 0 && s->window < s->seq)
        blocks_per_row = MIN(blocks_per_row, ceil(s->window / attn_block) + 1);
    double sm_rate = gpu->peak_flops[s->dtype] * efficiency / kp->sm_count;
    double block_s = 4 * attn_block * attn_block * s->head_dim / sm_rate;
    double row_s = pass * (blocks_per_row * block_s + row_fixed_s);
    return kp->fixed_s + ceil(rows / kp->sm_count) * row_s;
}

static double memory_time(const HwGpu *gpu, const KernShape *s)
{
    double t = s->bytes / memory_Bps(gpu);
    if (!gpu->kernels.present)
        return t;
    /* kernels of about equal size: each takes its share of the bytes or the fixed time */
    return MAX(t, s->kernels * gpu->kernels.fixed_s);
}

static double flops_time(const HwGpu *gpu, const KernShape *s)
{
    return s->flops / gemm_rate(gpu, s->dtype);
}

const KernClassOps kern_classes[KERN_CLASS_COUNT] = {
    [KERN_GEMM] = {"gemm", gemm_time},
    [KERN_ATTENTION] = {"attention", attention_time},
    [KERN_MEMORY] = {"memory", memory_time},
    [KERN_FLOPS] = {"flops", flops_time},
    [KERN_CONV] = {"conv", conv_time},
};

double kern_time_s(const HwGpu *gpu, const KernShape *shape)
{
    return kern_classes[shape->cls].time_s(gpu, shape);
}

double kern_gemm_s(const HwGpu *gpu, HwDtype dtype, double m, double n, double k, double batch)
{
    KernShape s = {.cls = KERN_GEMM, .dtype = dtype, .m = m, .n = n, .k = k, .batch = batch};
    return kern_time_s(gpu, &s);
}

double kern_conv_s(const HwGpu *gpu, HwDtype dtype, double m, double n, double k, double bytes)
{
    KernShape s = {.cls = KERN_CONV, .dtype = dtype, .m = m, .n = n, .k = k, .batch = 1,
                   .bytes = bytes};
    return kern_time_s(gpu, &s);
}

double kern_attention_impl_s(const HwGpu *gpu, HwDtype dtype, KernAttnImpl impl, double batch,
                             double heads, double seq, double head_dim, bool causal, bool backward)
{
    KernShape s = {.cls = KERN_ATTENTION,
                   .dtype = dtype,
                   .batch = batch,
                   .heads = heads,
                   .seq = seq,
                   .head_dim = head_dim,
                   .causal = causal,
                   .backward = backward,
                   .impl = impl};
    return kern_time_s(gpu, &s);
}

KernAttnImpl kern_attention_impl(const Model *model)
{
    if (!model->flash_attention)
        return KERN_ATTN_EAGER;
    return model->attention_kernel == MODEL_ATTN_TRITON   ? KERN_ATTN_TRITON
           : model->attention_kernel == MODEL_ATTN_FLASH1 ? KERN_ATTN_FLASH1
                                                          : KERN_ATTN_FLASH2;
}

double kern_memory_s(const HwGpu *gpu, double bytes, int kernels)
{
    KernShape s = {.cls = KERN_MEMORY, .bytes = bytes, .kernels = kernels};
    return kern_time_s(gpu, &s);
}

double kern_gemm_efficiency(const HwGpu *gpu, HwDtype dtype, double m, double n, double k,
                            double batch)
{
    double t = kern_gemm_s(gpu, dtype, m, n, k, batch);
    return t > 0 ? 2 * m * n * k * batch / (t * gpu->peak_flops[dtype]) : 0;
}

static KernShape gemm_shape(HwDtype dtype, double m, double n, double k, double batch,
                            bool misaligned)
{
    return (KernShape){.cls = KERN_GEMM, .dtype = dtype, .m = m, .n = n, .k = k, .batch = batch,
                       .share = 1, .misaligned = misaligned};
}

bool kern_width_misaligned(HwDtype dtype, double elements)
{
    double bytes = elements * hw_dtype_bytes(dtype);
    return elements > 0 && (bytes != floor(bytes) || fmod(bytes, 16) != 0);
}

bool kern_gemm_misaligned(HwDtype dtype, double in_features, double out_features)
{
    return kern_width_misaligned(dtype, in_features) || kern_width_misaligned(dtype, out_features);
}

void kern_leaf_pad_vocab(HwDtype dtype, const Model *model, const ModelModule *leaf,
                         double tp_split, int vocab_pad, KernShape *list, int n)
{
    const ModelKernel *k = &leaf->kernel;
    if (vocab_pad <= 0 || k->kind != MODEL_KERNEL_GEMM || !k->exact_dims || model->vocab <= 0 ||
        k->n != model->vocab)
        return;
    double padded = ceil(k->n / vocab_pad) * vocab_pad;
    bool mis = kern_gemm_misaligned(dtype, k->k, padded / MAX(tp_split, 1));
    for (int i = 0; i < n; i++)
        list[i].misaligned = mis;
}

bool kern_linear_misaligned(HwDtype dtype, const ModelKernel *k, double tp_split)
{
    /* judged on a Linear's own features only: a convolution's implicit GEMM builds its operand
     * in shared memory, and a layer list's K and N are estimates */
    if (k->kind != MODEL_KERNEL_GEMM || k->input > 0 || !k->exact_dims)
        return false;
    double applied = k->tp_applied > 1 ? k->tp_applied : 1;
    double t = MAX(tp_split, 1) * applied, out = k->n * applied; /* the unsplit width */
    return k->row_parallel ? kern_gemm_misaligned(dtype, k->k / t, out)
                           : kern_gemm_misaligned(dtype, k->k, out / t);
}

int kern_leaf_kernels(HwDtype dtype, const ModelModule *leaf, KernAttnImpl attn, double samples,
                      double tp_split, bool backward, KernShape out[KERN_LEAF_MAX])
{
    const ModelKernel *k = &leaf->kernel;
    if (leaf->flops_fwd <= 0 || samples <= 0)
        return 0;
    tp_split = MAX(tp_split, 1);
    if (k->kind == MODEL_KERNEL_GEMM) {
        double rows = k->rows * samples, n = k->n / tp_split;
        bool mis = kern_linear_misaligned(dtype, k, tp_split);
        if (!backward) {
            out[0] = gemm_shape(dtype, rows, n, k->k, 1, mis);
        } else {
            /* dgrad: dX[rows x k] = dY[rows x n] W^T; wgrad: dW[k x n] = X^T dY, reducing over
             * rows */
            out[0] = gemm_shape(dtype, rows, k->k, n, 1, mis);
            out[1] = gemm_shape(dtype, k->k, n, rows, 1, mis);
        }
        if (k->input > 0) {
            /* a convolution: each pass reads two of input, weights and output (or their
             * gradients) and writes the third */
            double bytes = hw_dtype_bytes(dtype) * (k->input * samples + k->k * n + rows * n);
            for (int i = 0; i < (backward ? 2 : 1); i++)
                out[i].cls = KERN_CONV, out[i].bytes = bytes;
        }
        return backward ? 2 : 1;
    }
    if (k->kind == MODEL_KERNEL_ATTENTION) {
        double heads = k->heads / tp_split, s = k->seq, d = k->head_dim, bh = samples * heads;
        if (attn != KERN_ATTN_EAGER) {
            out[0] = (KernShape){.cls = KERN_ATTENTION, .dtype = dtype, .batch = samples,
                                 .heads = heads, .seq = s, .head_dim = d, .window = k->window,
                                 .causal = k->causal, .backward = backward, .impl = attn,
                                 .share = 1};
            return 1;
        }
        /* eager: S = QK^T [s x s], O = PV [s x d]; backward dP and dV, dQ and dK (three GEMMs
         * of PV's shape) */
        bool mis = kern_gemm_misaligned(dtype, d, s);
        out[0] = gemm_shape(dtype, s, s, d, bh, mis);
        out[1] = gemm_shape(dtype, s, d, s, bh, mis);
        out[1].share = backward ? 3 : 1;
        return 2;
    }
    out[0] = (KernShape){.cls = KERN_FLOPS, .dtype = dtype, .share = 1,
                         .flops = leaf->flops_fwd * samples / tp_split *
                                  (backward ? leaf->flops_bwd_ratio : 1)};
    return 1;
}

/* The sum of kern_leaf_kernels' list (one source for the decomposition). */
double kern_leaf_s(const HwGpu *gpu, HwDtype dtype, const ModelModule *leaf, KernAttnImpl attn,
                   double samples, double tp_split, bool backward)
{
    KernShape list[KERN_LEAF_MAX];
    int n = kern_leaf_kernels(dtype, leaf, attn, samples, tp_split, backward, list);
    double s = 0;
    for (int i = 0; i < n; i++)
        s += list[i].share * kern_time_s(gpu, &list[i]);
    return s;
}
