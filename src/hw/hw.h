/* hw: the node-level hardware model of a machine, loaded from topologies/NAME.json.
 *
 * Units are in the names: *_Bps is bytes per second (1e9 bytes = 1 GB), *_s seconds, *_bytes
 * bytes, peak_flops in FLOP/s. Every number in the file carries its source; the loader keeps them
 * so reports can cite them. */
#ifndef FSD_HW_H
#define FSD_HW_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* HW_DTYPE_FP8: Hopper's fp8 tensor cores (e4m3 or e5m2 operands, bf16/fp32 output), used only
 * for the linear layers' GEMMs under --fp8-format (Transformer Engine); never a parameter,
 * activation or reduction dtype. Last, so the others keep their numbers in schedules. */
typedef enum {
    HW_DTYPE_FP32,
    HW_DTYPE_TF32,
    HW_DTYPE_BF16,
    HW_DTYPE_FP16,
    HW_DTYPE_FP8,
    HW_DTYPE_COUNT
} HwDtype;

/* The kernel cost model's figures for one GPU (src/kern), from the topology's "gpu.kernels"
 * object. `present` is false when the file has none: kern then charges every FLOP at
 * matmul_efficiency (the best-shape rate), as fsdpsim did before it had a kernel model. */
typedef struct {
    bool present;
    int sm_count;                 /* streaming multiprocessors: one GEMM tile or attention block
                                   * per SM per wave */
    double tf32_efficiency;       /* best-shape fraction of the TF32 peak (matmul_efficiency is
                                   * the bf16/fp16 one) */
    double fixed_s;               /* GPU time every kernel costs at least: launch, ramp, tail */
    double gemm_k_overhead;       /* a GEMM tile's prologue and epilogue, in K-steps (elements) */
    double gemm_small_tile_cost;  /* slowdown of a tile per unit of (1/tm + 1/tn - 3/256): small
                                   * tiles reuse operands less */
    double attention_efficiency;  /* fraction of the tensor peak a fused attention block reaches */
    double attention_row_s;       /* fixed time per query block (CTA) of fused attention */
    /* the same for FlashAttention's Triton kernel and for FlashAttention v1's CUDA kernels; 0:
     * not measured, FlashAttention-2's used */
    double triton_attention_efficiency, triton_attention_row_s;
    double flash1_attention_efficiency, flash1_attention_row_s;
    /* fp8 GEMMs' own tile figures (fitted on fp8 rows only, `fsdpsim kernels --dtype fp8`):
     * fp8 tiles run K twice as fast, so prologue/epilogue and small-tile losses weigh
     * differently; < 0 when the file gives none (the bf16 figures are used) */
    double fp8_gemm_k_overhead, fp8_gemm_small_tile_cost;
    /* the rate a GEMM keeps, as a fraction of its aligned rate, when a contiguous dimension of
     * an operand is not a multiple of 16 bytes (cuBLAS's vectorised and, on Hopper, TMA loads
     * need 16-byte strides); 1 (no loss) when the file gives none */
    double gemm_misaligned_efficiency;
} HwKernels;

typedef struct {
    char *name;
    double peak_flops[HW_DTYPE_COUNT]; /* dense tensor/vector peak per dtype */
    double memory_bytes;               /* HBM capacity */
    double reserved_bytes;             /* not usable by tensors: CUDA context, cuBLAS, NCCL */
    double hbm_Bps;                    /* HBM peak bandwidth */
    double matmul_efficiency;          /* fraction of peak reached by large GEMMs */
    double fp8_matmul_efficiency;      /* the same for fp8 GEMMs (MAMF at fp8_e4m3fn); 0 when
                                        * the GPU has no fp8 (peak_flops[HW_DTYPE_FP8] == 0) */
    double memory_efficiency;          /* fraction of HBM peak reached by streaming kernels */
    double launch_overhead_s;          /* host time to launch one kernel */
    double boost_clock_MHz;            /* the SM clock the peaks are quoted at (0: not given) */
    double clock_MHz;                  /* the sustained SM clock, when capped: peaks scaled by
                                        * clock / boost at load (0: as quoted) */
    double sustained_gemm_fraction;    /* of the matmul rate, what a GEMM keeps when the GPU has
                                        * run at its power limit for a while (seconds of training)
                                        * against the cold-GPU bursts microbenchmarks time; 1 when
                                        * the file does not say */
    double speed_spread;               /* standard deviation of sustained speed between GPUs of
                                        * the same model (cooling, silicon): a synchronous job
                                        * runs at its slowest GPU's pace (0: all equal) */
    int compute_capability;            /* CUDA compute capability x 10 (70 V100, 80 A100, 90
                                        * H100): NCCL's tuner and protocol rules depend on it */
    HwKernels kernels;
} HwGpu;

/* The PCIe path between a GPU and its closest NIC, in NCCL's terms (src/graph/topo.h PATH_*; what
 * `nvidia-smi topo -m` prints between them, its NODE being NCCL's PHB). NCCL enables LL128 across
 * nodes only up to a path type (src/coll/coll.c coll_ll128_enabled). */
typedef enum {
    HW_GPU_NIC_PIX, /* one PCIe switch between them */
    HW_GPU_NIC_PXB, /* several PCIe switches, not through the CPU's host bridge */
    HW_GPU_NIC_C2C, /* GPU on NVLink-C2C to its CPU, NIC on that CPU's PCIe (GH200, GB200):
                     * NCCL's PHB before 2.27, its P2C from 2.27 */
    HW_GPU_NIC_PHB, /* through the CPU's PCIe host bridge (also where NCCL cannot use GPUDirect
                     * RDMA: it routes the traffic through the CPU, paths.cc) */
    HW_GPU_NIC_SYS, /* across the CPUs' SMP interconnect */
    HW_GPU_NIC_COUNT
} HwGpuNicPath;

/* Which library runs the collectives, and so whose latencies the collective model uses. */
typedef enum {
    HW_COLL_NCCL,     /* NCCL on GPUs: NCCL's own base and per-hop latencies (tuning.cc) */
    HW_COLL_P2P_RING, /* a ring over point-to-point messages (fsdprun's MPI ring): each step costs
                       * the topology's link latency, there are no LL protocols */
} HwCollLib;

typedef struct {
    char *name;
    char *description;
    char *file;
    int nodes_max;
    HwGpu gpu;
    int gpus_per_node;
    char *gpu_link;      /* "nvlink3", "pcie4", ... */
    double gpu_link_Bps; /* per GPU per direction into the node fabric */
    double gpu_link_latency_s;
    int nics_per_node;
    /* The node's GPUs hang off an NVSwitch that can reduce and multicast (NVLink SHARP, third
     * generation NVSwitch onwards): NCCL's NVLS and NVLSTree algorithms run here. The file gives
     * "nvls": {"value": 0 or 1, "source": ...}; absent means 0. */
    bool nvls;
    /* NCCL's channels on this node: each runs as one CTA on its own SM while a collective is in
     * flight, taken from compute that overlaps it (src/core/sim.c). Default 2, NCCL's minimum. */
    int nccl_channels;
    char *cpu; /* host CPU model ("AMD EPYC 7402"); NULL when the file does not say */
    bool cpu_amd; /* the CPU is AMD's: NCCL's tuner rates AMD hosts apart (resolved at load) */
    char *nic;
    /* node.gpu_nic_path ({"value": "pix" | "pxb" | "c2c" | "phb" | "sys", "source": ...});
     * absent: pxb, the HGX/DGX layout of a NIC on each GPU's PCIe switch */
    HwGpuNicPath gpu_nic_path;
    /* Where a node has k times as many NICs as GPUs, NCCL stripes each GPU's channels over its k
     * closest NICs (search.cc: ncclTopoGetLocalNet gives channel c the GPU's c-th local NIC, and
     * ncclTopoSearchRecNet starts each new channel at the next NIC). The rest of fsdpsim then
     * sees one NIC per GPU, a rail of k ports: nics_per_node is gpus, nic_Bps k ports' worth.
     * The file's count is nic_ports_per_node; nics_per_rail is k ("nics_per_gpu" in the file,
     * default nics / gpus where that is a whole number above 1, else 1). */
    int nic_ports_per_node;
    int nics_per_rail;
    double nic_Bps; /* achieved per NIC (per rail of nics_per_rail NICs) per direction */
    /* node.net_channel_GBps: the most one NCCL channel carries across the network, per direction,
     * where something other than the NIC binds first (a host-staged path without GPUDirect RDMA:
     * each channel's CTA copies through pinned host memory, one step at a time). 0: no such cap,
     * the NICs bind. A collective across nodes gets net_channels of it, a send to a rank on
     * another node NCCL's channels per network peer (src/coll/coll.c). */
    double net_channel_Bps;
    /* node.net_channels: NCCL's channels in a communicator that spans nodes, as NCCL's log says
     * ("N coll channels"); 0 when the file does not say: the channel cap then takes
     * nccl_channels, NCCL 2.8-2.11's caps one channel per NIC (nccl28.c). */
    int net_channels;
    double nic_latency_s;
    double net_latency_s; /* end-to-end inter-node latency */
    char *net_kind;       /* "dragonfly+", "fat-tree", ... */
    /* DragonFly+ (and any fabric built of non-blocking groups joined by fewer global links):
     * nodes per group (JUWELS Booster: a 48-node cell), and each group's global bandwidth per
     * direction, all its global links together. 0: one non-blocking group. */
    int net_nodes_per_group;
    double net_group_global_Bps;
    /* Inside a group: leaf switches, and the bandwidth of each leaf's uplinks to the group's
     * spines, per direction, all together (0: not described, the group is non-blocking). */
    int net_leaves_per_group;
    double net_leaf_uplink_Bps;
    char *net_description;
    /* SHARP (Scalable Hierarchical Aggregation and Reduction Protocol) in the InfiniBand switches:
     * its generation, 1 (Switch-IB 2, EDR), 2 (Quantum, HDR), 3 (Quantum-2, NDR); 0: none, or
     * the sources do not say. The file gives "network.sharp": {"value": G, "source": ...}. Where
     * set, NCCL's CollNet algorithms (CollNetDirect, CollNetChain) can run all-reduce over it
     * (src/coll/collnet.c); NCCL uses them only when told to (NCCL_COLLNET_ENABLE=1, NCCL_ALGO). */
    int net_sharp;
    /* Host side, used by CPU offload and initialisation; defaults when a file omits them. */
    double pcie_Bps; /* host<->GPU per GPU per direction */
    double host_memory_bytes;
    double host_memory_Bps;
    /* The parallel file system checkpoints go to ("storage", optional): bandwidth one node
     * reaches, and the file system's for all nodes together. 0: not described. */
    double storage_write_Bps_per_node, storage_read_Bps_per_node;
    double storage_write_Bps, storage_read_Bps; /* aggregate */
    char *storage_name;                         /* "JUST $SCRATCH (GPFS)" */
    /* How the site charges and limits jobs ("accounting", optional): whole nodes x wall-clock x
     * cores per node, and the longest job the batch system runs (0: not described). */
    int cores_per_node;
    double max_job_s;
    /* The CPU-offloaded optimizer's host (src/kern/kern_optim.c): the node's cores (node.cpu_cores,
     * else accounting.cores_per_node; 0: the file does not say) and the memory bandwidth one
     * thread of torch.optim streams. */
    int cpu_cores;
    double cpu_thread_Bps;
    HwCollLib coll_lib;  /* "collectives": "nccl" (default) or "p2p-ring" */
    GHashTable *sources; /* "gpu.peak_tflops_bf16" -> source string */
} HwTopology;

HwTopology *hw_topology_load(const char *file, GError **error);
void hw_topology_free(HwTopology *topo);

const char *hw_dtype_name(HwDtype dtype);
/* "pix", "pxb", "c2c", "phb", "sys" */
const char *hw_gpu_nic_path_name(HwGpuNicPath path);

/* Parses "fp32", "tf32", "bf16", "fp16" (also "float32", "bfloat16", "float16", torch.*): a
 * parameter, activation, reduction or compute dtype, never fp8. */
bool hw_dtype_parse(const char *text, HwDtype *out);
/* The same, and "fp8" ("float8_e4m3fn", "fp8_e4m3", "fp8_e4m3fn", "e4m3"): a GEMM's dtype, as a
 * kernel table or `fsdpsim kernels --dtype` names it. */
bool hw_gemm_dtype_parse(const char *text, HwDtype *out);
/* Storage bytes per element (tf32 is stored as fp32, fp8 is 1). */
int hw_dtype_bytes(HwDtype dtype);

/* The pace of a synchronous job on `gpus` GPUs relative to one GPU: 1 / (1 - spread x E[max of
 * `gpus` standard normals]), the expected slowest of them setting it (Blom's approximation of the
 * expected maximum). */
double hw_gpu_pace(const HwGpu *gpu, int gpus);

/* Time of a kernel sequence: flops at the achieved tensor peak plus bytes at the achieved HBM
 * bandwidth (GEMMs compute-bound, elementwise kernels memory-bound). */
double hw_gpu_compute_s(const HwGpu *gpu, HwDtype dtype, double flops, double bytes);

#endif
