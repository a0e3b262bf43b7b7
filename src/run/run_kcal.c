/* fsdpsim-gpu-calibrate: measures the kernel model's figures on the GPU it runs on and writes
 * them as a topology's "gpu.kernels" (issue 12, item 7).
 *
 *   fsdpsim-gpu-calibrate -t topologies/juwels-booster.json --out DIR [--quick]
 *
 * What it measures (CUDA runtime and cuBLAS host APIs only, so the C compiler builds it):
 *  - a GEMM sweep with cublasGemmEx, bf16 and TF32 (fp32 with CUBLAS_COMPUTE_32F_FAST_TF32),
 *    m, n, k over powers of two from 256 to 8192 (256 to 4096 with --quick), median of 10 timed
 *    runs after 3 warm-ups, CUDA events: DIR/gemm.tsv, in the columns of XLA's table, so that
 *    `fsdpsim kernels --table DIR/gemm.tsv` reads it like the published ones;
 *  - HBM bandwidth: device-to-device copies of 1 GiB (read + write), best of 10;
 *  - the fixed cost of a kernel: 1000 back-to-back 4-byte cudaMemsetAsync, GPU time per kernel;
 *    and the host's launch time per call;
 * then fits the GEMM figures (kern_table_fit, as `fsdpsim kernels --fit` does) and writes
 * DIR/kernels.json: the "gpu.kernels" object and memory_efficiency / launch_overhead_us, each
 * with `source: "measured: <command line>"`, and prints the model against the measurement by
 * shape class. Attention is not measured (no FlashAttention here): the topology's attention
 * figures are kept and the output says so.
 *
 * Cost: the full sweep is 2 x 216 GEMMs, about a minute on an H100; --quick 2 x 64. */
#include "../kern/kern_table.h"
#include "../util/cfg.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK_CUDA(call)                                                                           \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "fsdpsim-gpu-calibrate: %s: %s\n", #call, cudaGetErrorString(e_));     \
            exit(3);                                                                               \
        }                                                                                          \
    } while (0)
#define CHECK_BLAS(call)                                                                           \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                         \
            fprintf(stderr, "fsdpsim-gpu-calibrate: %s: cuBLAS status %d\n", #call, (int)s_);      \
            exit(3);                                                                               \
        }                                                                                          \
    } while (0)

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median time in seconds of one GEMM of this shape and dtype. */
static double time_gemm(cublasHandle_t h, void *a, void *b, void *c, int m, int n, int k, bool tf32)
{
    const float one = 1, zero = 0;
    cudaDataType t = tf32 ? CUDA_R_32F : CUDA_R_16BF;
    cublasComputeType_t ct = tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    cudaEvent_t start, stop;
    CHECK_CUDA(cudaEventCreate(&start));
    CHECK_CUDA(cudaEventCreate(&stop));
    float ms[10];
    for (int r = -3; r < 10; r++) {
        CHECK_CUDA(cudaEventRecord(start, 0));
        CHECK_BLAS(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, a, t, m, b, t, k, &zero,
                                c, t, m, ct, CUBLAS_GEMM_DEFAULT));
        CHECK_CUDA(cudaEventRecord(stop, 0));
        CHECK_CUDA(cudaEventSynchronize(stop));
        if (r >= 0)
            CHECK_CUDA(cudaEventElapsedTime(&ms[r], start, stop));
    }
    CHECK_CUDA(cudaEventDestroy(start));
    CHECK_CUDA(cudaEventDestroy(stop));
    qsort(ms, 10, sizeof ms[0], cmp_float);
    return 0.5 * (ms[4] + ms[5]) * 1e-3;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sourced(GString *s, const char *key, double value, const char *source, bool last)
{
    char *quoted = g_strescape(source, NULL);
    g_string_append_printf(s, "    \"%s\": {\"value\": %.6g, \"source\": \"%s\"}%s\n", key, value,
                           quoted, last ? "" : ",");
    g_free(quoted);
}

int main(int argc, char **argv)
{
    char *topology = NULL, *out = NULL;
    gboolean quick = FALSE;
    GOptionEntry entries[] = {
        {"topology", 't', 0, G_OPTION_ARG_FILENAME, &topology,
         "Topology of this machine (its peaks and HBM figure; the result is its gpu.kernels)",
         "FILE"},
        {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Folder for gemm.tsv and kernels.json", "DIR"},
        {"quick", 0, 0, G_OPTION_ARG_NONE, &quick, "Sizes 256-4096 only (about 10 s)", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *ctx = g_option_context_new("- measure the kernel model's figures on this GPU");
    g_option_context_add_main_entries(ctx, entries, NULL);
    GError *error = NULL;
    char *command = g_strjoinv(" ", argv);
    if (!g_option_context_parse(ctx, &argc, &argv, &error) || !topology || !out) {
        fprintf(stderr, "fsdpsim-gpu-calibrate: %s\n",
                error ? error->message : "options --topology and --out are required");
        return 2;
    }
    g_option_context_free(ctx);
    HwTopology *topo = hw_topology_load(topology, &error);
    if (!topo) {
        fprintf(stderr, "fsdpsim-gpu-calibrate: %s\n", error->message);
        return 2;
    }
    if (g_mkdir_with_parents(out, 0755) != 0) {
        fprintf(stderr, "fsdpsim-gpu-calibrate: option --out: cannot create %s\n", out);
        return 2;
    }
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        fprintf(stderr, "fsdpsim-gpu-calibrate: no CUDA device: nothing measured\n");
        return 3;
    }
    struct cudaDeviceProp prop;
    CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
    printf("fsdpsim-gpu-calibrate: %s, %d SMs; topology %s models %s\n", prop.name,
           prop.multiProcessorCount, topo->name, topo->gpu.name);

    /* GEMM sweep */
    int max = quick ? 4096 : 8192;
    size_t bytes = (size_t)max * max * 4;
    void *a, *b, *c;
    CHECK_CUDA(cudaMalloc(&a, bytes));
    CHECK_CUDA(cudaMalloc(&b, bytes));
    CHECK_CUDA(cudaMalloc(&c, bytes));
    CHECK_CUDA(cudaMemset(a, 0, bytes));
    CHECK_CUDA(cudaMemset(b, 0, bytes));
    cublasHandle_t h;
    CHECK_BLAS(cublasCreate(&h));
    char *gemm_file = g_build_filename(out, "gemm.tsv", NULL);
    FILE *f = fopen(gemm_file, "w");
    if (!f) {
        fprintf(stderr, "fsdpsim-gpu-calibrate: cannot write %s\n", gemm_file);
        return 2;
    }
    fprintf(f,
            "# SOURCE: measured: %s\n# GPU: %s, %d SMs. cublasGemmEx, column-major, no "
            "transposes, median of 10 after 3 warm-ups. flop = 2*b*m*n*k.\n",
            command, prop.name, prop.multiProcessorCount);
    fprintf(f, "b\tm\tn\tk\ttflops_bf16\ttflops_f32\n");
    double best_bf16 = 0, best_tf32 = 0;
    for (int m = 256; m <= max; m *= 2)
        for (int n = 256; n <= max; n *= 2)
            for (int k = 256; k <= max; k *= 2) {
                double flops = 2.0 * m * n * k;
                double bf16 = flops / time_gemm(h, a, b, c, m, n, k, false) / 1e12;
                double tf32 = flops / time_gemm(h, a, b, c, m, n, k, true) / 1e12;
                best_bf16 = MAX(best_bf16, bf16), best_tf32 = MAX(best_tf32, tf32);
                fprintf(f, "1\t%d\t%d\t%d\t%.1f\t%.1f\n", m, n, k, bf16, tf32);
            }
    fclose(f);

    /* HBM: a device-to-device copy reads and writes every byte */
    size_t copy = (size_t)1 << 30;
    void *x, *y;
    CHECK_CUDA(cudaMalloc(&x, copy));
    CHECK_CUDA(cudaMalloc(&y, copy));
    cudaEvent_t e0, e1;
    CHECK_CUDA(cudaEventCreate(&e0));
    CHECK_CUDA(cudaEventCreate(&e1));
    double best_Bps = 0;
    for (int r = 0; r < 11; r++) {
        float ms = 0;
        CHECK_CUDA(cudaEventRecord(e0, 0));
        CHECK_CUDA(cudaMemcpyAsync(y, x, copy, cudaMemcpyDeviceToDevice, 0));
        CHECK_CUDA(cudaEventRecord(e1, 0));
        CHECK_CUDA(cudaEventSynchronize(e1));
        CHECK_CUDA(cudaEventElapsedTime(&ms, e0, e1));
        if (r > 0)
            best_Bps = MAX(best_Bps, 2.0 * (double)copy / (ms * 1e-3));
    }
    /* the fixed cost of a kernel: tiny memsets back to back */
    float ms = 0;
    CHECK_CUDA(cudaEventRecord(e0, 0));
    double t0 = wall_s();
    for (int r = 0; r < 1000; r++)
        CHECK_CUDA(cudaMemsetAsync(x, r, 4, 0));
    double host_s = (wall_s() - t0) / 1000;
    CHECK_CUDA(cudaEventRecord(e1, 0));
    CHECK_CUDA(cudaEventSynchronize(e1));
    CHECK_CUDA(cudaEventElapsedTime(&ms, e0, e1));
    double kernel_s = ms * 1e-3 / 1000;

    /* fit the GEMM figures on the sweep, starting from the topology's */
    HwGpu gpu = topo->gpu;
    gpu.kernels.present = true;
    gpu.kernels.sm_count = prop.multiProcessorCount;
    gpu.matmul_efficiency = MIN(1, best_bf16 * 1e12 / gpu.peak_flops[HW_DTYPE_BF16]);
    gpu.kernels.tf32_efficiency = MIN(1, best_tf32 * 1e12 / gpu.peak_flops[HW_DTYPE_TF32]);
    KernTableFilter filter = {HW_DTYPE_BF16, NULL, NULL, 0, 0};
    KernTable *t = kern_table_load(gemm_file, &filter, &error);
    if (!t) {
        fprintf(stderr, "fsdpsim-gpu-calibrate: %s\n", error->message);
        return 1;
    }
    kern_table_fit(&gpu, t);
    /* model against measurement by shape class */
    const char *classes[3] = {"small (< 1 GFLOP)", "medium", "large (>= 100 GFLOP)"};
    double err[3] = {0, 0, 0};
    int count[3] = {0, 0, 0};
    for (guint i = 0; i < t->rows->len; i++) {
        const KernRow *r = &g_array_index(t->rows, KernRow, i);
        double flops = 2 * r->shape.m * r->shape.n * r->shape.k;
        int cls = flops < 1e9 ? 0 : flops < 1e11 ? 1 : 2;
        err[cls] += fabs(kern_row_model_tflops(&gpu, r) / r->measured_tflops - 1);
        count[cls]++;
    }
    for (int i = 0; i < 3; i++)
        if (count[i])
            printf("  GEMM %-22s %3d shapes, model mean abs. error %.1f %%\n", classes[i], count[i],
                   100 * err[i] / count[i]);
    kern_table_free(t);

    GString *s = g_string_new("{\n  \"gpu\": {\n");
    char *src = g_strdup_printf("measured: %s (%s)", command, prop.name);
    sourced(s, "matmul_efficiency", gpu.matmul_efficiency, src, false);
    sourced(s, "memory_efficiency", MIN(1, best_Bps / gpu.hbm_Bps), src, false);
    sourced(s, "launch_overhead_us", host_s * 1e6, src, false);
    g_string_append(s, "    \"kernels\": {\n");
    sourced(s, "sm_count", gpu.kernels.sm_count, src, false);
    sourced(s, "tf32_efficiency", gpu.kernels.tf32_efficiency, src, false);
    sourced(s, "kernel_fixed_us", MAX(gpu.kernels.fixed_s, kernel_s) * 1e6, src, false);
    sourced(s, "gemm_k_overhead", gpu.kernels.gemm_k_overhead, src, false);
    sourced(s, "gemm_small_tile_cost", gpu.kernels.gemm_small_tile_cost, src, false);
    char *kept = g_strdup_printf("not measured by fsdpsim-gpu-calibrate (no FlashAttention); kept "
                                 "from %s",
                                 topology);
    sourced(s, "attention_efficiency", gpu.kernels.attention_efficiency, kept, false);
    sourced(s, "attention_row_us", gpu.kernels.attention_row_s * 1e6, kept, true);
    g_string_append(s, "    }\n  }\n}\n");
    char *json_file = g_build_filename(out, "kernels.json", NULL);
    if (!g_file_set_contents(json_file, s->str, -1, &error)) {
        fprintf(stderr, "fsdpsim-gpu-calibrate: %s\n", error->message);
        return 1;
    }
    printf("  HBM copy %.0f GB/s (%.1f %% of %s's %.0f), kernel %.2f us on the GPU, %.2f us to "
           "launch\n",
           best_Bps / 1e9, 100 * best_Bps / gpu.hbm_Bps, topo->name, gpu.hbm_Bps / 1e9,
           kernel_s * 1e6, host_s * 1e6);
    printf("  attention: not measured (no FlashAttention in this program); the topology's kept\n");
    printf("wrote %s and %s\n", gemm_file, json_file);
    cublasDestroy(h);
    g_string_free(s, TRUE);
    g_free(src), g_free(kept), g_free(json_file), g_free(gemm_file), g_free(command);
    hw_topology_free(topo);
    return 0;
}
