/* init: see init.h.
 *
 * Rates: torch.nn.init fills fp32 tensors on the CPU at roughly 1 GB/s per rank (single-threaded
 * RNG; estimate, settle with `python -c "import torch,time; t=torch.empty(2**28); s=time.time();
 * t.uniform_(); print(4*2**28/(time.time()-s)/1e9)"`), on the GPU at HBM speed. Copies to the GPU
 * run at the PCIe bandwidth of the topology.
 *
 * What each framework builds where (the per-rank GPU peak follows from it):
 * - PyTorch DDP (no --tp/--pp): the model is built whole on every rank and moved to the GPU;
 *   DDP's constructor then always broadcasts rank 0's parameters and buffers
 *   (torch/nn/parallel/distributed.py, _sync_module_states). Nothing is sharded.
 * - Megatron-LM (DDP with --tp/--pp): each rank builds only its TP shard of its pipeline stage's
 *   layers, in params_dtype (bf16 with --bf16, arguments.py), directly on the GPU
 *   (megatron/core/tensor_parallel/layers.py, _initialize_affine_weight_gpu under the TP RNG
 *   tracker); --use-cpu-initialization builds each weight whole in fp32 on the CPU and keeps the
 *   rank's shard (_initialize_affine_weight_cpu). Data-parallel ranks draw the same weights from
 *   one seed (training/initialize.py _set_random_seed: offset by pipeline rank, by data-parallel
 *   rank only with --data-parallel-random-init, which then broadcasts them, broadcast_params).
 * - FSDP1 (FullyShardedDataParallel): the model on the CPU is moved and flattened unit by unit
 *   (device_id), on the GPU it is whole before sharding, on the meta device each unit is
 *   materialised by param_init_fn / reset_parameters and sharded before the next
 *   (torch/distributed/fsdp/_init_utils.py, _init_param_handle_from_module). sync_module_states
 *   broadcasts each unit over the shard group, and for hybrid sharding again over the
 *   inter-node replicate group.
 * - FSDP2 (fully_shard), and FSDP with a pipeline (pp.c gathers as FSDP2 does, torchtitan's
 *   recipe): on the meta device, cut to the rank's stage, TP-split and sharded, then
 *   to_empty() + init_weights() allocate and fill only the rank's shards. fully_shard has no
 *   sync_module_states: ranks rely on one seed. */
#include "init.h"

#include <string.h>

#define CPU_INIT_Bps 1e9

/* Parameters of one rank's share of the model before data parallelism: its TP share of its
 * pipeline stage (the largest stage, the worst rank), split at the decoder layers as pp_cost.c
 * splits it (embedding on the first virtual stage, final norm and head, plus the tied embedding's
 * copy, on the last). largest_unit: the biggest FSDP unit of that share (pp.c wraps each layer,
 * the first with the embedding, the last with the head). stage_whole: the largest stage before
 * the TP split. O(modules). */
typedef struct {
    double params, largest_unit, stage_whole;
} InitShare;

static InitShare init_rank_share(const Model *model, const StratOptions *opt,
                                 const StratLayout *layout)
{
    int n_mod = model->n_modules, n = 0;
    int *block_of = g_new(int, MAX(n_mod, 1));
    for (int i = 0; i < n_mod; i++) {
        int parent = model->modules[i].parent;
        block_of[i] = parent >= 0 ? block_of[parent] : -1;
        if (model->modules[i].is_block && block_of[i] < 0)
            block_of[i] = n++;
    }
    double pre = 0, post = 0, *layer = g_new0(double, MAX(n, 1));
    int first_block = 0;
    while (first_block < n_mod && block_of[first_block] < 0)
        first_block++;
    for (int i = 0; i < n_mod; i++) {
        double p = (double)model->modules[i].params;
        if (block_of[i] >= 0)
            layer[block_of[i]] += p;
        else if (i < first_block)
            pre += p;
        else
            post += p;
    }
    g_free(block_of);
    int P = MAX(1, layout->pp), T = MAX(1, layout->tp);
    if (model->tied_embeddings && P > 1)
        post += (double)model->vocab * model->hidden;
    InitShare s = {0};
    if (n == 0) { /* no decoder layers: the generator refuses a pipeline; one part */
        s.params = s.largest_unit = s.stage_whole = pre + post;
        g_free(layer);
        return s;
    }
    int v = opt->pp_schedule == PP_SCHEDULE_INTERLEAVED ? MAX(1, opt->virtual_stages) : 1;
    int n_vs = P * v;
    int *first = g_new0(int, n_vs + 1);
    bool given = opt->pp_partition && opt->n_pp_partition == n_vs;
    for (int i = 0; i < n_vs; i++)
        first[i + 1] = given ? first[i] + opt->pp_partition[i] : (int)((i + 1) * (double)n / n_vs);
    for (int stage = 0; stage < P; stage++) {
        double psi = 0;
        for (int c = 0; c < v; c++) {
            int vs = c * P + stage;
            for (int l = first[vs]; l < MIN(first[vs + 1], n); l++) {
                double unit = layer[l] + (l == 0 ? pre : 0) + (l == n - 1 ? post : 0);
                psi += unit;
                s.largest_unit = MAX(s.largest_unit, unit / T);
            }
        }
        s.stage_whole = MAX(s.stage_whole, psi);
    }
    s.params = s.stage_whole / T;
    g_free(first);
    g_free(layer);
    return s;
}

static InitMode init_mode(const char *name, const char *description, double gpu_peak_bytes,
                          double host_bytes_per_node, double time_s)
{
    return (InitMode){name, description, gpu_peak_bytes, host_bytes_per_node, time_s, false, false};
}

/* A broadcast over the group of `size` ranks `stride` apart from rank 0 (ranks fill nodes in
 * order); 0 for a group of one. */
static double init_broadcast_s(const CollModel *coll, const StratLayout *layout, double bytes,
                               int size, int stride)
{
    if (size <= 1 || bytes <= 0)
        return 0;
    int gpn = layout->gpus_per_node;
    int nodes = (size - 1) * stride / gpn + 1;
    nodes = MIN(nodes, size);
    CollShape bcast = {IR_COLL_BROADCAST, (uint64_t)bytes, size, nodes, MAX(1, size / nodes)};
    return coll->time_s(coll, &bcast, NULL);
}

void strat_init_estimate(const Model *model, const HwTopology *topo, const CollModel *coll,
                         const StratOptions *opt, const StratLayout *layout, const StratInfo *info,
                         InitEstimate *out)
{
    double psi = (double)model->params, buffers = 4 * (double)model->buffers;
    double full = 4 * psi + buffers; /* the whole model in fp32 */
    double capacity = topo->gpu.memory_bytes - topo->gpu.reserved_bytes;
    double hbm_Bps = topo->gpu.hbm_Bps * topo->gpu.memory_efficiency;
    int gpn = layout->gpus_per_node, dp_stride = layout->stride[PAR_DIM_DP];
    bool fsdp = opt->kind == STRAT_FSDP, pipeline = layout->pp > 1;
    bool megatron = !fsdp && layout->tp * layout->pp > 1;
    bool fsdp2 = fsdp && (opt->fsdp_version == 2 || pipeline);
    InitMode *cpu = &out->modes[0], *cuda = &out->modes[1], *meta = &out->modes[2];
    memset(out, 0, sizeof *out);

    if (!fsdp && !megatron) {
        out->n_modes = 2;
        *cpu = init_mode("cpu", "model built whole on the CPU by every rank, then moved to the GPU",
                         full, full * gpn, full / CPU_INIT_Bps + full / topo->pcie_Bps);
        *cuda = init_mode("cuda", "model built whole on the GPU by every rank (device='cuda')",
                          full, 0, full / hbm_Bps);
        out->sync_description = "DDP's constructor broadcasts rank 0's parameters and buffers";
        out->sync_module_states_s = init_broadcast_s(coll, layout, full, layout->world, 1);
    } else if (megatron) {
        InitShare share = init_rank_share(model, opt, layout);
        double dtype = opt->mixed_precision ? hw_dtype_bytes(opt->param_dtype) : 4;
        double part = share.params * dtype + buffers;
        out->n_modes = 2;
        /* --use-cpu-initialization: every weight of the stage drawn whole in fp32 (the cost),
         * the rank's TP shard kept and copied over PCIe */
        *cpu = init_mode("cpu",
                         "--use-cpu-initialization: each rank draws its stage's weights whole on "
                         "the CPU, keeps its TP shard and moves it to the GPU",
                         part, part * gpn,
                         (4 * share.stage_whole + buffers) / CPU_INIT_Bps + part / topo->pcie_Bps);
        *cuda = init_mode("cuda",
                          "Megatron's default: each rank builds its TP shard of its stage's layers "
                          "directly on the GPU",
                          part, 0, part / hbm_Bps);
        out->sync_description =
            "--data-parallel-random-init adds a broadcast of each shard over its "
            "data-parallel group (by default every data-parallel rank draws the "
            "same weights from one seed)";
        out->sync_module_states_s = init_broadcast_s(coll, layout, part, layout->dp, dp_stride);
    } else {
        /* one rank's shard and its largest unit: the generator's for FSDP without a pipeline
         * (fsdp.c, on the TP share in 2D), else the stage's TP share cut by the shard group */
        double shard, largest, kept;
        int S = MAX(1, layout->shard_size);
        if (pipeline) {
            InitShare share = init_rank_share(model, opt, layout);
            shard = share.params / S * 4;
            largest = share.largest_unit * 4;
            kept = share.params * 4;
        } else {
            shard = (double)info->padded_params / S * 4;
            largest = (double)info->largest_unit_numel * 4;
            kept = full / layout->tp;
        }
        out->n_modes = 3;
        /* Built on the CPU by every rank, then moved to the GPU and sharded one unit at a time
         * (children first). */
        *cpu =
            init_mode("cpu",
                      pipeline ? "full model built on the CPU by every rank, cut to its stage; "
                                 "each layer moved to the GPU and sharded"
                               : "full model built on the CPU by every rank, then moved to the GPU",
                      shard + largest, full * gpn,
                      full / CPU_INIT_Bps + (pipeline ? kept : full) / topo->pcie_Bps);
        /* Built directly on the GPU (device="cuda"): the whole fp32 model on every GPU before
         * sharding. */
        *cuda = init_mode("cuda",
                          pipeline ? "full model built on the GPU by every rank, then cut to its "
                                     "stage and sharded"
                                   : "full model built on the GPU by every rank, then sharded",
                          full + shard, 0, full / hbm_Bps);
        if (fsdp2)
            /* to_empty() allocates the shards only; init_weights() fills them where they are */
            *meta =
                init_mode("meta",
                          pipeline ? "deferred: meta device, cut to its stage and sharded; "
                                     "to_empty() and init_weights() fill only this rank's shards"
                                   : "deferred: meta device, sharded by fully_shard; to_empty() "
                                     "and reset_parameters() fill only this rank's shards",
                          shard, 0, shard / hbm_Bps);
        else
            /* Each unit materialised whole on the GPU when FSDP wraps it, then sharded. */
            *meta = init_mode(
                "meta", "deferred: meta device, each unit materialised on the GPU as it is sharded",
                shard + largest, 0, full / hbm_Bps);
        if (fsdp2) {
            out->sync_description = "fully_shard has no sync_module_states: ranks that hold the "
                                    "same shard draw the same weights from one seed";
        } else {
            /* each rank's TP share, over the shard group, then for hybrid sharding over the
             * replicate group */
            int R = layout->dp / S;
            out->sync_description = "sync_module_states=True adds a broadcast of all parameters";
            out->sync_module_states_s =
                R > 1 ? init_broadcast_s(coll, layout, kept, S, dp_stride) +
                            init_broadcast_s(coll, layout, kept, R, dp_stride * S)
                      : init_broadcast_s(coll, layout, kept, layout->dp, dp_stride);
        }
    }
    for (int i = 0; i < out->n_modes; i++) {
        out->modes[i].gpu_oom = out->modes[i].gpu_peak_bytes > capacity;
        out->modes[i].host_oom = out->modes[i].host_bytes_per_node > topo->host_memory_bytes;
    }
}
