/* hw: topology loading; see hw.h. */
#include "hw.h"

#include "../util/cfg.h"

#include <math.h>
#include <string.h>

static const char *const dtype_names[HW_DTYPE_COUNT] = {"fp32", "tf32", "bf16", "fp16", "fp8"};

static const char *const gpu_nic_path_names[HW_GPU_NIC_COUNT] = {"pix", "pxb", "c2c", "phb", "sys"};

const char *hw_gpu_nic_path_name(HwGpuNicPath path)
{
    return gpu_nic_path_names[path];
}

const char *hw_dtype_name(HwDtype dtype)
{
    return dtype_names[dtype];
}

bool hw_gemm_dtype_parse(const char *text, HwDtype *out)
{
    static const struct {
        const char *name;
        HwDtype dtype;
    } names[] = {{"fp32", HW_DTYPE_FP32}, {"float32", HW_DTYPE_FP32}, {"float", HW_DTYPE_FP32},
                 {"tf32", HW_DTYPE_TF32}, {"bf16", HW_DTYPE_BF16},    {"bfloat16", HW_DTYPE_BF16},
                 {"fp16", HW_DTYPE_FP16}, {"float16", HW_DTYPE_FP16}, {"half", HW_DTYPE_FP16},
                 {"fp8", HW_DTYPE_FP8},   {"float8_e4m3fn", HW_DTYPE_FP8}, {"fp8_e4m3", HW_DTYPE_FP8},
                 {"fp8_e4m3fn", HW_DTYPE_FP8}, {"e4m3", HW_DTYPE_FP8}};
    /* PyTorch's spellings too: torch.bfloat16, BF16 (any case) */
    if (text && g_str_has_prefix(text, "torch."))
        text += strlen("torch.");
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (text && g_ascii_strcasecmp(text, names[i].name) == 0) {
            *out = names[i].dtype;
            return true;
        }
    }
    return false;
}

bool hw_dtype_parse(const char *text, HwDtype *out)
{
    HwDtype d;
    if (!hw_gemm_dtype_parse(text, &d) || d == HW_DTYPE_FP8)
        return false;
    *out = d;
    return true;
}

int hw_dtype_bytes(HwDtype dtype)
{
    return dtype == HW_DTYPE_FP8 ? 1 : (dtype == HW_DTYPE_BF16 || dtype == HW_DTYPE_FP16) ? 2 : 4;
}

/* Inverse of the standard normal distribution function (Acklam's rational approximation,
 * relative error below 1.2e-9), for the expected maximum below. */
static double normal_quantile(double p)
{
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                               1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                               6.680131188771972e+01, -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                               -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                               3.754408661907416e+00};
    if (p < 0.02425) {
        double q = sqrt(-2 * log(p));
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
               ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    if (p > 1 - 0.02425)
        return -normal_quantile(1 - p);
    double q = p - 0.5, r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
           (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

double hw_gpu_pace(const HwGpu *gpu, int gpus)
{
    if (gpu->speed_spread <= 0 || gpus <= 1)
        return 1;
    double expected_max = normal_quantile((gpus - 0.375) / (gpus + 0.25)); /* Blom */
    return 1 / (1 - MIN(0.5, gpu->speed_spread * expected_max));
}

double hw_gpu_compute_s(const HwGpu *gpu, HwDtype dtype, double flops, double bytes)
{
    /* GEMMs are compute-bound and elementwise kernels memory-bound, and an op is a sequence of
     * both, so the two terms add. */
    double sustained = gpu->sustained_gemm_fraction > 0 ? gpu->sustained_gemm_fraction : 1;
    double flop_s = flops / (gpu->peak_flops[dtype] * gpu->matmul_efficiency * sustained);
    double mem_s = bytes / (gpu->hbm_Bps * gpu->memory_efficiency);
    return flop_s + mem_s;
}

void hw_topology_free(HwTopology *topo)
{
    if (!topo)
        return;
    g_free(topo->name);
    g_free(topo->description);
    g_free(topo->file);
    g_free(topo->storage_name);
    g_free(topo->gpu.name);
    g_free(topo->gpu_link);
    g_free(topo->cpu);
    g_free(topo->nic);
    g_free(topo->net_kind);
    g_free(topo->net_description);
    if (topo->sources)
        g_hash_table_destroy(topo->sources);
    g_free(topo);
}

/* Reads {"value", "source"} at key, scales it and records the source under "section.key". */
static bool sourced(HwTopology *topo, CfgObj *co, const char *key, bool required, double min,
                    double max, double scale, double *out, GError **error)
{
    double value = *out / scale;
    char *source = NULL;
    if (!cfg_get_sourced(co, key, required, min, max, &value, &source, error))
        return false;
    *out = value * scale;
    if (source)
        g_hash_table_insert(topo->sources,
                            *co->path ? g_strdup_printf("%s.%s", co->path, key) : g_strdup(key),
                            source);
    return true;
}

/* "node.gpu_nic_path": {"value": NAME, "source": "..."}, a sourced name; absent keeps *out. */
static bool load_gpu_nic_path(HwTopology *topo, CfgObj *co, HwGpuNicPath *out, GError **error)
{
    g_autofree char *value = NULL;
    char *source = NULL;
    if (!cfg_get_sourced_string(co, "gpu_nic_path", false, &value, &source, error))
        return false;
    if (!value)
        return true;
    for (int i = 0; i < HW_GPU_NIC_COUNT; i++)
        if (g_ascii_strcasecmp(value, gpu_nic_path_names[i]) == 0) {
            *out = (HwGpuNicPath)i;
            g_hash_table_insert(topo->sources, g_strdup_printf("%s.gpu_nic_path", co->path),
                                source);
            return true;
        }
    g_free(source);
    g_autofree char *path = g_strdup_printf("%s.gpu_nic_path", co->path);
    cfg_set_error(error, co->file, path, "value",
                  "expected the PCIe path between a GPU and its NIC as NCCL names it: pix, pxb, "
                  "c2c (GPU on NVLink-C2C, NIC on the CPU's PCIe), phb or sys; got \"%s\"",
                  value);
    return false;
}

/* "gpu.kernels": the kernel model's figures (HwKernels). All or nothing: a partial table would
 * mix a shape-aware GEMM with a best-shape attention. */
static bool load_kernels(HwTopology *topo, CfgObj *gpu_obj, GError **error)
{
    HwKernels *k = &topo->gpu.kernels;
    if (!cfg_has(gpu_obj, "kernels"))
        return true;
    CfgObj co;
    if (!cfg_obj_child(gpu_obj, "kernels", true, &co, error))
        return false;
    double sms = 0;
    const double us = 1e-6;
    k->fp8_gemm_k_overhead = k->fp8_gemm_small_tile_cost = -1; /* not given: bf16's */
    k->gemm_misaligned_efficiency = 1;                            /* not given: no loss */
    bool ok = sourced(topo, &co, "sm_count", true, 1, 10000, 1, &sms, error) &&
              sourced(topo, &co, "tf32_efficiency", true, 0.01, 1, 1, &k->tf32_efficiency, error) &&
              sourced(topo, &co, "kernel_fixed_us", true, 0, 1000, us, &k->fixed_s, error) &&
              sourced(topo, &co, "gemm_k_overhead", true, 0, 1e5, 1, &k->gemm_k_overhead, error) &&
              sourced(topo, &co, "gemm_small_tile_cost", true, 0, 1e4, 1,
                      &k->gemm_small_tile_cost, error) &&
              sourced(topo, &co, "attention_efficiency", true, 0.01, 1, 1,
                      &k->attention_efficiency, error) &&
              sourced(topo, &co, "attention_row_us", true, 0, 1e4, us, &k->attention_row_s,
                      error) &&
              sourced(topo, &co, "triton_attention_efficiency", false, 0.01, 1, 1,
                      &k->triton_attention_efficiency, error) &&
              sourced(topo, &co, "triton_attention_row_us", k->triton_attention_efficiency > 0, 0,
                      1e4, us, &k->triton_attention_row_s, error) &&
              sourced(topo, &co, "flash1_attention_efficiency", false, 0.01, 1, 1,
                      &k->flash1_attention_efficiency, error) &&
              sourced(topo, &co, "flash1_attention_row_us", k->flash1_attention_efficiency > 0, 0,
                      1e4, us, &k->flash1_attention_row_s, error) &&
              sourced(topo, &co, "fp8_gemm_k_overhead", false, 0, 1e5, 1, &k->fp8_gemm_k_overhead,
                      error) &&
              sourced(topo, &co, "fp8_gemm_small_tile_cost", false, 0, 1e4, 1,
                      &k->fp8_gemm_small_tile_cost, error) &&
              sourced(topo, &co, "gemm_misaligned_efficiency", false, 0.01, 1, 1,
                      &k->gemm_misaligned_efficiency, error) &&
              cfg_obj_check_unknown(&co, "expected sm_count, tf32_efficiency, kernel_fixed_us, "
                                         "gemm_k_overhead, gemm_small_tile_cost, "
                                         "attention_efficiency, attention_row_us, "
                                         "triton_attention_efficiency, triton_attention_row_us, "
                                         "flash1_attention_efficiency, flash1_attention_row_us, "
                                         "fp8_gemm_k_overhead, fp8_gemm_small_tile_cost, "
                                         "gemm_misaligned_efficiency",
                                    error);
    if (ok && sms != (int)sms) {
        cfg_set_error(error, co.file, co.path, "sm_count", "expected a whole number, got %g", sms);
        ok = false;
    }
    k->sm_count = (int)sms;
    k->present = ok;
    cfg_obj_close(&co);
    return ok;
}

/* CUDA compute capability by product name, for files that do not state "compute_capability":
 * the families of NVIDIA's CUDA GPUs list (developer.nvidia.com/cuda-gpus). A part matches as a
 * whole word of the name ("A100" in "NVIDIA A100-SXM4-80GB", not in "RTX A1000"). 0: not known. */
static int gpu_compute_capability(const char *name)
{
    static const struct {
        const char *part;
        int cc;
    } known[] = {
        {"GB300", 103}, {"B300", 103}, {"GB200", 100}, {"B200", 100}, {"B100", 100},
        {"GH200", 90},  {"H200", 90},  {"H100", 90},   {"H800", 90},  {"H20", 90},
        {"L40S", 89},   {"L40", 89},   {"L4", 89},     {"A100", 80},  {"A800", 80},
        {"A30", 80},    {"A40", 86},   {"A10", 86},    {"V100", 70},
    };
    for (size_t i = 0; name && i < G_N_ELEMENTS(known); i++) {
        size_t n = strlen(known[i].part);
        for (const char *p = strstr(name, known[i].part); p; p = strstr(p + 1, known[i].part))
            if ((p == name || !g_ascii_isalnum(p[-1])) && !g_ascii_isalnum(p[n]))
                return known[i].cc;
    }
    return 0;
}

static bool load_gpu(HwTopology *topo, CfgObj *root, GError **error)
{
    CfgObj co;
    HwGpu *gpu = &topo->gpu;
    if (!cfg_obj_child(root, "gpu", false, &co, error))
        return false;
    const double TF = 1e12, GiB = 1073741824.0, GB = 1e9, us = 1e-6;
    /* Defaults for optional figures; files should state them (see topologies/README.md). */
    gpu->reserved_bytes = 0;
    gpu->launch_overhead_s = 0;
    gpu->sustained_gemm_fraction = 1;
    double cc = 0;
    bool ok =
        cfg_get_string(&co, "name", true, &gpu->name, error) &&
        sourced(topo, &co, "peak_tflops_bf16", true, 1e-3, 1e5, TF, &gpu->peak_flops[HW_DTYPE_BF16],
                error) &&
        sourced(topo, &co, "peak_tflops_fp16", true, 1e-3, 1e5, TF, &gpu->peak_flops[HW_DTYPE_FP16],
                error) &&
        sourced(topo, &co, "peak_tflops_tf32", false, 1e-3, 1e5, TF,
                &gpu->peak_flops[HW_DTYPE_TF32], error) &&
        sourced(topo, &co, "peak_tflops_fp32", true, 1e-3, 1e5, TF, &gpu->peak_flops[HW_DTYPE_FP32],
                error) &&
        /* optional: absent, the GPU has no fp8 tensor cores (A100, V100) and --fp8-format is
         * refused; present, its MAMF fraction comes with it */
        sourced(topo, &co, "peak_tflops_fp8", false, 1e-3, 1e5, TF, &gpu->peak_flops[HW_DTYPE_FP8],
                error) &&
        sourced(topo, &co, "matmul_efficiency_fp8", gpu->peak_flops[HW_DTYPE_FP8] > 0, 0.01, 1, 1,
                &gpu->fp8_matmul_efficiency, error) &&
        sourced(topo, &co, "memory_GiB", true, 0.001, 1e5, GiB, &gpu->memory_bytes, error) &&
        sourced(topo, &co, "hbm_GBps", true, 1, 1e6, GB, &gpu->hbm_Bps, error) &&
        sourced(topo, &co, "matmul_efficiency", true, 0.01, 1, 1, &gpu->matmul_efficiency, error) &&
        sourced(topo, &co, "memory_efficiency", true, 0.01, 1, 1, &gpu->memory_efficiency, error) &&
        sourced(topo, &co, "launch_overhead_us", false, 0, 1e4, us, &gpu->launch_overhead_s,
                error) &&
        sourced(topo, &co, "reserved_GiB", false, 0, 1e4, GiB, &gpu->reserved_bytes, error) &&
        sourced(topo, &co, "boost_clock_MHz", false, 1, 1e5, 1, &gpu->boost_clock_MHz, error) &&
        sourced(topo, &co, "clock_MHz", false, 1, 1e5, 1, &gpu->clock_MHz, error) &&
        sourced(topo, &co, "speed_spread", false, 0, 0.2, 1, &gpu->speed_spread, error) &&
        sourced(topo, &co, "sustained_gemm_fraction", false, 0.2, 1, 1,
                &gpu->sustained_gemm_fraction, error) &&
        sourced(topo, &co, "compute_capability", false, 3, 20, 1, &cc, error) &&
        load_kernels(topo, &co, error) &&
        cfg_obj_check_unknown(&co, "see topologies/README.md for the keys of \"gpu\"", error);
    /* A sustained or locked clock (power cap, nvidia-smi -lgc) below the one the peaks are
     * quoted at: tensor and vector throughput scale with the SM clock; HBM does not. */
    if (ok && gpu->clock_MHz > 0) {
        if (gpu->boost_clock_MHz <= 0) {
            cfg_set_error(error, co.file, co.path, "clock_MHz",
                          "needs boost_clock_MHz, the clock the peak_tflops figures are quoted at");
            ok = false;
        } else {
            for (int d = 0; d < HW_DTYPE_COUNT; d++)
                gpu->peak_flops[d] *= gpu->clock_MHz / gpu->boost_clock_MHz;
        }
    }
    /* The generation NCCL's rules key on: the file's figure, else the product family's (0:
     * unknown, refused below where NCCL runs the collectives). */
    if (ok)
        gpu->compute_capability = cc > 0 ? (int)(cc * 10 + 0.5) : gpu_compute_capability(gpu->name);
    /* No TF32 figure (e.g. V100): fp32 matmuls run at the fp32 peak. */
    if (ok && gpu->peak_flops[HW_DTYPE_TF32] == 0)
        gpu->peak_flops[HW_DTYPE_TF32] = gpu->peak_flops[HW_DTYPE_FP32];
    if (ok && gpu->reserved_bytes >= gpu->memory_bytes) {
        cfg_set_error(error, co.file, co.path, "reserved_GiB", "must be below memory_GiB");
        ok = false;
    }
    cfg_obj_close(&co);
    return ok;
}

static bool load_node(HwTopology *topo, CfgObj *root, GError **error)
{
    CfgObj co;
    if (!cfg_obj_child(root, "node", false, &co, error))
        return false;
    const double GB = 1e9, GiB = 1073741824.0, us = 1e-6;
    double gpus = 0, nics = 0, nvls = 0, channels = 2, per_gpu = 0, net_channels = 0;
    /* Host figures default to a PCIe Gen4 x16 link and a two-socket DDR4 node when absent. */
    topo->pcie_Bps = 25e9;
    topo->host_memory_bytes = 512 * GiB;
    topo->host_memory_Bps = 200e9;
    /* One thread of torch.optim's AdamW on CPU tensors: ISEEKYAN/Megatron-LM#188 measured 1.93 s
     * for 536.9M fp32 elements on one thread of an 8 x H100 node (CPU not named; the time also
     * holds that code's per-parameter copies, so this is a lower bound), which at the for-loop
     * AdamW's 80 B per element (kern_optim.c) is 22.3 GB/s. ../shared/data/kernels/
     * host_overheads_and_optimizer.tsv. */
    double cores = 0;
    topo->cpu_thread_Bps = 536.9e6 * 80 / 1.93;
    bool ok =
        sourced(topo, &co, "gpus", true, 1, 64, 1, &gpus, error) &&
        cfg_get_string(&co, "gpu_link", true, &topo->gpu_link, error) &&
        sourced(topo, &co, "gpu_link_GBps", true, 0.1, 1e5, GB, &topo->gpu_link_Bps, error) &&
        sourced(topo, &co, "gpu_link_latency_us", true, 0, 1e4, us, &topo->gpu_link_latency_s,
                error) &&
        sourced(topo, &co, "nics", true, 0, 64, 1, &nics, error) &&
        sourced(topo, &co, "nvls", false, 0, 1, 1, &nvls, error) &&
        sourced(topo, &co, "nccl_channels", false, 1, 64, 1, &channels, error) &&
        sourced(topo, &co, "nics_per_gpu", false, 1, 64, 1, &per_gpu, error) &&
        cfg_get_string(&co, "cpu", false, &topo->cpu, error) &&
        cfg_get_string(&co, "nic", false, &topo->nic, error) &&
        load_gpu_nic_path(topo, &co, &topo->gpu_nic_path, error) &&
        sourced(topo, &co, "nic_GBps", nics > 0, 0.01, 1e4, GB, &topo->nic_Bps, error) &&
        sourced(topo, &co, "nic_latency_us", false, 0, 1e4, us, &topo->nic_latency_s, error) &&
        sourced(topo, &co, "net_channel_GBps", false, 0.01, 1e4, GB, &topo->net_channel_Bps,
                error) &&
        sourced(topo, &co, "net_channels", false, 1, 64, 1, &net_channels, error) &&
        sourced(topo, &co, "pcie_GBps", false, 0.1, 1e4, GB, &topo->pcie_Bps, error) &&
        sourced(topo, &co, "host_memory_GiB", false, 1, 1e6, GiB, &topo->host_memory_bytes,
                error) &&
        sourced(topo, &co, "host_memory_GBps", false, 1, 1e5, GB, &topo->host_memory_Bps, error) &&
        sourced(topo, &co, "cpu_cores", false, 1, 4096, 1, &cores, error) &&
        sourced(topo, &co, "cpu_thread_GBps", false, 0.1, 1e4, GB, &topo->cpu_thread_Bps, error) &&
        cfg_obj_check_unknown(&co, "see topologies/README.md for the keys of \"node\"", error);
    if (ok && (gpus != floor(gpus) || nics != floor(nics) || channels != floor(channels) ||
               cores != floor(cores) || net_channels != floor(net_channels))) {
        cfg_set_error(error, co.file, co.path,
                      gpus != floor(gpus)                   ? "gpus"
                      : nics != floor(nics)                 ? "nics"
                      : cores != floor(cores)               ? "cpu_cores"
                      : net_channels != floor(net_channels) ? "net_channels"
                                                            : "nccl_channels",
                      "expected a whole number");
        ok = false;
    }
    if (ok && nvls != 0 && nvls != 1) {
        cfg_set_error(error, co.file, co.path, "nvls", "expected 0 or 1 (NVLink SHARP switch)");
        ok = false;
    }
    /* striping: a GPU's NICs become one rail (see hw.h) */
    int whole = gpus > 0 && nics > gpus && fmod(nics, gpus) == 0 ? (int)(nics / gpus) : 1;
    if (ok && per_gpu != 0 && (per_gpu != floor(per_gpu) || per_gpu * gpus > nics)) {
        cfg_set_error(error, co.file, co.path, "nics_per_gpu",
                      "expected a whole number of NICs each GPU stripes over, at most nics / gpus "
                      "(%g)",
                      floor(nics / MAX(1, gpus)));
        ok = false;
    }
    topo->nvls = nvls == 1;
    topo->cpu_cores = (int)cores;
    topo->nccl_channels = (int)channels;
    topo->net_channels = (int)net_channels; /* 0: not stated (coll.c takes nccl_channels) */
    topo->gpus_per_node = (int)gpus;
    topo->nic_ports_per_node = (int)nics;
    topo->nics_per_rail = per_gpu > 0 ? (int)per_gpu : whole;
    topo->nics_per_node = topo->nics_per_rail > 1 ? (int)gpus : (int)nics;
    topo->nic_Bps *= topo->nics_per_rail;
    cfg_obj_close(&co);
    return ok;
}

static bool load_network(HwTopology *topo, CfgObj *root, GError **error)
{
    CfgObj co;
    if (!cfg_obj_child(root, "network", false, &co, error))
        return false;
    double per_group = 0, leaves = 0, sharp = 0;
    bool ok =
        cfg_get_string(&co, "kind", true, &topo->net_kind, error) &&
        sourced(topo, &co, "latency_us", true, 0, 1e5, 1e-6, &topo->net_latency_s, error) &&
        sourced(topo, &co, "nodes_per_group", false, 1, 1e6, 1, &per_group, error) &&
        sourced(topo, &co, "group_global_GBps", per_group > 0, 0.01, 1e7, 1e9,
                &topo->net_group_global_Bps, error) &&
        sourced(topo, &co, "leaves_per_group", false, 1, 1e4, 1, &leaves, error) &&
        sourced(topo, &co, "leaf_uplink_GBps", leaves > 0, 0.01, 1e7, 1e9,
                &topo->net_leaf_uplink_Bps, error) &&
        sourced(topo, &co, "sharp", false, 0, 3, 1, &sharp, error) &&
        cfg_get_string(&co, "description", false, &topo->net_description, error) &&
        cfg_obj_check_unknown(&co, "see topologies/README.md for the keys of \"network\"", error);
    if (ok && (per_group != floor(per_group) || leaves != floor(leaves))) {
        cfg_set_error(error, co.file, co.path,
                      per_group != floor(per_group) ? "nodes_per_group" : "leaves_per_group",
                      "expected a whole number");
        ok = false;
    }
    if (ok && sharp != floor(sharp)) {
        cfg_set_error(error, co.file, co.path, "sharp",
                      "expected the SHARP generation of the switches: 1 (Switch-IB 2), 2 "
                      "(Quantum), 3 (Quantum-2), or 0 / absent for none");
        ok = false;
    }
    topo->net_sharp = (int)sharp;
    /* Leaves are counted per group: a fabric without groups has no size to divide. */
    if (ok && leaves > 0 && per_group == 0) {
        cfg_set_error(error, co.file, co.path, "leaves_per_group",
                      "needs nodes_per_group (the nodes under one set of leaves and spines)");
        ok = false;
    }
    if (ok && leaves > per_group * MAX(1, topo->nics_per_node)) {
        cfg_set_error(
            error, co.file, co.path, "leaves_per_group",
            "expected at most one leaf per node port of a group (nodes_per_group x nics)");
        ok = false;
    }
    topo->net_nodes_per_group = (int)per_group;
    topo->net_leaves_per_group = (int)leaves;
    cfg_obj_close(&co);
    return ok;
}

/* "storage" and "accounting": optional; checkpoint and time-to-train estimates need them
 * (src/report/train.c says so when they are absent). */
static bool load_site(HwTopology *topo, CfgObj *root, GError **error)
{
    const double GB = 1e9;
    CfgObj co;
    bool ok = true;
    if (!cfg_obj_child(root, "storage", true, &co, error))
        return false;
    if (co.obj) {
        ok = cfg_get_string(&co, "name", false, &topo->storage_name, error) &&
             sourced(topo, &co, "write_GBps_per_node", true, 0.001, 1e5, GB,
                     &topo->storage_write_Bps_per_node, error) &&
             sourced(topo, &co, "read_GBps_per_node", true, 0.001, 1e5, GB,
                     &topo->storage_read_Bps_per_node, error) &&
             sourced(topo, &co, "write_GBps", true, 0.001, 1e7, GB, &topo->storage_write_Bps,
                     error) &&
             sourced(topo, &co, "read_GBps", true, 0.001, 1e7, GB, &topo->storage_read_Bps, error) &&
             cfg_obj_check_unknown(&co, "expected name, write_GBps_per_node, read_GBps_per_node, "
                                        "write_GBps, read_GBps",
                                   error);
        cfg_obj_close(&co);
    }
    if (!ok || !cfg_obj_child(root, "accounting", true, &co, error))
        return false;
    if (co.obj) {
        double cores = 0, hours = 0;
        ok = sourced(topo, &co, "cores_per_node", true, 1, 1e5, 1, &cores, error) &&
             sourced(topo, &co, "max_job_hours", true, 0.01, 1e5, 1, &hours, error) &&
             cfg_obj_check_unknown(&co, "expected cores_per_node, max_job_hours", error);
        if (ok && cores != floor(cores)) {
            cfg_set_error(error, co.file, co.path, "cores_per_node", "expected a whole number, got %g",
                          cores);
            ok = false;
        }
        topo->cores_per_node = (int)cores;
        topo->max_job_s = hours * 3600;
        cfg_obj_close(&co);
    }
    return ok;
}

HwTopology *hw_topology_load(const char *file, GError **error)
{
    cJSON *json = cfg_parse_file(file, error);
    if (!json)
        return NULL;
    HwTopology *topo = g_new0(HwTopology, 1);
    topo->file = g_strdup(file);
    topo->gpu_nic_path = HW_GPU_NIC_PXB; /* node.gpu_nic_path's default (hw.h) */
    topo->sources = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    CfgObj root;
    char *format = NULL, *coll_lib = NULL;
    int64_t version = 0;
    double nodes_max = 0;
    bool ok = cfg_obj_open(&root, file, "", json, error) &&
              cfg_check_kind(json, file, "--topology", error) &&
              cfg_get_string(&root, "format", true, &format, error);
    if (ok && strcmp(format, "fsdpsim-topology") != 0) {
        cfg_set_error(error, file, "", "format", "expected \"fsdpsim-topology\", got \"%s\"",
                      format);
        ok = false;
    }
    ok = ok && cfg_get_int(&root, "version", true, 1, 1, &version, error) &&
         cfg_get_string(&root, "name", true, &topo->name, error) &&
         cfg_get_string(&root, "description", false, &topo->description, error) &&
         cfg_get_string(&root, "collectives", false, &coll_lib, error) &&
         sourced(topo, &root, "nodes_max", true, 1, 1e6, 1, &nodes_max, error) &&
         load_gpu(topo, &root, error) && load_node(topo, &root, error) &&
         load_network(topo, &root, error) && load_site(topo, &root, error) &&
         cfg_obj_check_unknown(&root,
                               "expected format, version, name, description, collectives, "
                               "nodes_max, gpu, node, network, storage, accounting",
                               error);
    if (ok && coll_lib && strcmp(coll_lib, "nccl") != 0) {
        if (strcmp(coll_lib, "p2p-ring") == 0) {
            topo->coll_lib = HW_COLL_P2P_RING;
        } else {
            cfg_set_error(error, file, "", "collectives",
                          "expected \"nccl\" or \"p2p-ring\", got \"%s\"", coll_lib);
            ok = false;
        }
    }
    if (ok)
        topo->cpu_amd = topo->cpu && (strstr(topo->cpu, "AMD") || strstr(topo->cpu, "EPYC"));
    /* NCCL's tuner and protocol rules depend on the GPU generation: an unknown GPU must state
     * it rather than silently get Ampere's rules (fsdprun's MPI ring has no such rules) */
    if (ok && topo->coll_lib == HW_COLL_NCCL && topo->gpu.compute_capability == 0) {
        cfg_set_error(error, file, "gpu", "compute_capability",
                      "GPU \"%s\" is not one fsdpsim knows; give its CUDA compute capability "
                      "(e.g. 9.0 for H100) as {\"value\": 9.0, \"source\": \"...\"}: NCCL's "
                      "rules depend on it",
                      topo->gpu.name);
        ok = false;
    }
    /* the host's cores, where the node section does not give them: the cores JSC charges per
     * node are all its physical cores (accounting.cores_per_node) */
    if (ok && topo->cpu_cores == 0)
        topo->cpu_cores = topo->cores_per_node;
    if (ok && nodes_max != floor(nodes_max)) {
        cfg_set_error(error, file, "nodes_max", "value", "expected a whole number of nodes, got %g",
                      nodes_max);
        ok = false;
    }
    /* Without NICs a node has no way out: a job over several nodes would run over an invented
     * one (the network model falls back to a PCIe-speed port). */
    if (ok && topo->nics_per_node == 0 && nodes_max > 1) {
        cfg_set_error(error, file, "node.nics", "value",
                      "0 NICs per node, but nodes_max is %g; expected at least one NIC, or "
                      "nodes_max 1 for a single node",
                      nodes_max);
        ok = false;
    }
    topo->nodes_max = (int)nodes_max;
    if (root.seen)
        cfg_obj_close(&root);
    g_free(format);
    g_free(coll_lib);
    cJSON_Delete(json);
    if (!ok) {
        hw_topology_free(topo);
        return NULL;
    }
    return topo;
}
