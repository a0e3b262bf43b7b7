/* init: model initialisation, the workshop's "deferred initialisation" topic. Compares, per
 * layout, the ways a rank can get its parameters: PyTorch DDP builds the whole model on every
 * rank (on the CPU, or directly on the GPU); Megatron-LM (DDP with --tp/--pp) builds each rank's
 * TP shard of its pipeline stage; FSDP builds the whole model on the CPU or GPU, or defers to the
 * meta device and materialises unit by unit (FSDP1's param_init_fn / reset_parameters) or only
 * the rank's shards (fully_shard, pipelines). Each mode's GPU peak is one rank's, the worst
 * stage's. Analytic: initialisation happens once, not every step. */
#ifndef FSD_INIT_H
#define FSD_INIT_H

#include "strategy.h"
#include "../coll/coll.h"

typedef struct {
    const char *name;       /* "cpu", "cuda", "meta" */
    const char *description;
    double gpu_peak_bytes;  /* tensors on one GPU at the worst moment of initialisation */
    double host_bytes_per_node;
    double time_s;
    bool gpu_oom, host_oom;
} InitMode;

typedef struct {
    InitMode modes[3];
    int n_modes;
    /* The broadcast that makes replicas equal, and what it is: DDP's constructor always runs it,
     * FSDP1's sync_module_states=True and Megatron's --data-parallel-random-init add it; 0 for
     * fully_shard, which has none (the description says so). */
    const char *sync_description;
    double sync_module_states_s;
} InitEstimate;

void strat_init_estimate(const Model *model, const HwTopology *topo, const CollModel *coll,
                         const StratOptions *opt, const StratLayout *layout, const StratInfo *info,
                         InitEstimate *out);

#endif
