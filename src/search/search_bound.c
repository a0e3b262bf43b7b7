/* search: analytic lower bounds of one layout, from the model and the layout alone (no schedule
 * generated, no simulation): microseconds per point, where a simulation takes milliseconds to a
 * tenth of a second. A search prunes with them before simulating; the ASHA's first rung ranks by
 * them. Both must stay below what the simulation reports for the same options, or a search would
 * prune the best point: tests/unit/test_search.c and tests/integration/search.sh check that. */
#include "search.h"

#include <math.h>

cJSON *search_bound_json(const Model *model, const HwTopology *topo, const StratOptions *opt,
                         const StratLayout *layout)
{
    int model_parallel = MAX(1, layout->tp) * MAX(1, layout->pp);
    /* Parameters a GPU holds at least: its 1/(tp x pp) of the model (the first and last stages
     * hold more, the embedding; the bound takes the mean, which the largest stage exceeds). */
    double params = (double)model->params / model_parallel;
    /* The model state that stays on the GPU all step: the fp32 parameter shard (FSDP keeps its
     * sharded FlatParameter in fp32, fsdp.c; DDP its fp32 parameters) and the optimizer state
     * (model_optimizer_state_bytes: Adam's m and v, 8 bytes). Gradients, unsharded parameters,
     * activations and buffers all come on top, so this is a lower bound. */
    double param_shard = 1, opt_shard = 1;
    if (opt->kind == STRAT_FSDP) {
        param_shard = opt_shard = MAX(1, layout->shard_size);
        if (opt->sharding == SHARD_NO_SHARD)
            param_shard = opt_shard = 1;
    } else if (opt->distributed_optimizer) {
        opt_shard = MAX(1, layout->dp); /* ZeRO-1: optimizer state over dp, params replicated */
    }
    double state = model_optimizer_state_bytes(model->training.optimizer);
    double bytes = opt->cpu_offload ? 0 : params * (4.0 / param_shard + state / opt_shard);
    /* A compute floor: the model's training FLOPs of one micro-batch on the whole job, shared
     * evenly by all GPUs at the dense peak of the compute dtype (no efficiency, no
     * communication, no recompute, no pipeline bubble). */
    HwDtype dtype = strat_compute_dtype(model, opt);
    double peak = topo->gpu.peak_flops[dtype] > 0 ? topo->gpu.peak_flops[dtype]
                                                  : topo->gpu.peak_flops[HW_DTYPE_BF16];
    double samples = (double)model->training.micro_batch * MAX(1, layout->dp);
    double floor_s = peak > 0 ? model_flops_train_per_sample(model) * samples / layout->world / peak
                              : 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "world_size", layout->world);
    cJSON_AddNumberToObject(o, "nodes", layout->nodes);
    cJSON_AddNumberToObject(o, "gpus_per_node", layout->gpus_per_node);
    cJSON_AddNumberToObject(o, "machine_gpus_per_node", topo->gpus_per_node);
    cJSON_AddNumberToObject(o, "tp", MAX(1, layout->tp));
    cJSON_AddNumberToObject(o, "pp", MAX(1, layout->pp));
    cJSON_AddNumberToObject(o, "dp", MAX(1, layout->dp));
    cJSON_AddNumberToObject(o, "micro_batch", model->training.micro_batch);
    cJSON_AddNumberToObject(o, "grad_accum", MAX(1, opt->grad_accum));
    cJSON_AddNumberToObject(o, "seq_len", model->token_input ? model->training.seq_len : 0);
    cJSON_AddNumberToObject(o, "memory_bound_bytes", bytes);
    cJSON_AddNumberToObject(o, "capacity_bytes", topo->gpu.memory_bytes);
    cJSON_AddNumberToObject(o, "step_floor_per_micro_batch_s", floor_s);
    return o;
}
