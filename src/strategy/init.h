/* init: model initialisation, the workshop's "deferred initialisation" topic. Compares building
 * the full model on each rank (on the CPU, or directly on the GPU) with deferred initialisation
 * on the meta device, materialised unit by unit on the GPU (param_init_fn / reset_parameters)
 * as FSDP wraps it. Analytic: initialisation happens once, not every step. */
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
    double sync_module_states_s; /* broadcast of all parameters from rank 0 */
} InitEstimate;

void strat_init_estimate(const Model *model, const HwTopology *topo, const CollModel *coll,
                         const StratOptions *opt, const StratLayout *layout, const StratInfo *info,
                         InitEstimate *out);

#endif
