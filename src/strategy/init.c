/* init: see init.h.
 *
 * Rates: torch.nn.init fills fp32 tensors on the CPU at roughly 1 GB/s per rank (single-threaded
 * RNG; estimate, settle with `python -c "import torch,time; t=torch.empty(2**28); s=time.time();
 * t.uniform_(); print(4*2**28/(time.time()-s)/1e9)"`), on the GPU at HBM speed. Copies to the GPU
 * run at the PCIe bandwidth of the topology. */
#include "init.h"

#define CPU_INIT_Bps 1e9

void strat_init_estimate(const Model *model, const HwTopology *topo, const CollModel *coll,
                         const StratOptions *opt, const StratLayout *layout, const StratInfo *info,
                         InitEstimate *out)
{
    double psi = (double)model->params, fp32 = 4 * psi + 4 * (double)model->buffers;
    bool fsdp = opt->kind == STRAT_FSDP;
    double shard = fsdp ? (double)info->padded_params / layout->shard_size * 4 : fp32;
    double largest = fsdp ? (double)info->largest_unit_numel * 4 : fp32;
    double capacity = topo->gpu.memory_bytes - topo->gpu.reserved_bytes;
    double gpu_init_s = fp32 / (topo->gpu.hbm_Bps * topo->gpu.memory_efficiency);

    InitMode *cpu = &out->modes[0], *cuda = &out->modes[1], *meta = &out->modes[2];
    out->n_modes = fsdp ? 3 : 2;
    /* Built on the CPU by every rank, then moved to the GPU: FSDP moves and shards one unit at a
     * time (children first), DDP moves the whole model. */
    *cpu = (InitMode){"cpu", "full model built on the CPU by every rank, then moved to the GPU",
                      fsdp ? shard + largest : fp32, fp32 * layout->gpus_per_node,
                      fp32 / CPU_INIT_Bps + fp32 / topo->pcie_Bps, false, false};
    /* Built directly on the GPU (device="cuda"): the whole fp32 model on every GPU before
     * sharding. */
    *cuda = (InitMode){"cuda", "full model built on the GPU by every rank, then sharded",
                       fp32 + (fsdp ? shard : 0), 0, gpu_init_s, false, false};
    /* Deferred: meta device, each unit materialised on the GPU when FSDP wraps it. */
    *meta = (InitMode){"meta", "deferred: meta device, each unit materialised on the GPU as it is sharded",
                       shard + largest, 0, gpu_init_s, false, false};
    for (int i = 0; i < 3; i++) {
        out->modes[i].gpu_oom = out->modes[i].gpu_peak_bytes > capacity;
        out->modes[i].host_oom = out->modes[i].host_bytes_per_node > topo->host_memory_bytes;
    }
    CollShape bcast = {IR_COLL_BROADCAST, (uint64_t)fp32, layout->world, layout->nodes,
                       layout->gpus_per_node};
    out->sync_module_states_s = layout->world > 1 ? coll->time_s(coll, &bcast, NULL) : 0;
}
