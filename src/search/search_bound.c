/* search: analytic lower bounds of one layout, from the model and the layout alone (no schedule
 * generated, no simulation): microseconds per point, where a simulation takes milliseconds to a
 * tenth of a second. A search prunes with them before simulating; the ASHA's first rung ranks by
 * them. Both must stay below what the simulation reports for the same options, or a search would
 * prune the best point: tests/unit/test_search.c and tests/integration/search.sh check that. */
#include "search.h"
#include "../plan/plan.h"

#include <math.h>
#include <string.h>

/* Expert parallelism (--ep, fsdp.c): a GPU gathers only experts/ep of each MoE layer's routed
 * experts (the ModuleLists named "*.experts", as fsdp.c finds them); of the parameters of unit
 * `unit` (-1: all units) those it never holds unsharded. O(modules) per call, only with
 * --ep: microseconds. */
static double expert_params_not_gathered(const Model *model, const PlanWrap *wrap, int unit, int ep)
{
    if (ep <= 1)
        return 0;
    double experts = 0;
    for (int i = 0; i < model->n_modules; i++) {
        const ModelModule *mod = &model->modules[i];
        if (!strcmp(mod->kind, "ModuleList") && g_str_has_suffix(mod->name, ".experts") &&
            (unit < 0 || wrap->unit_of_module[i] == unit))
            experts += (double)model_subtree_params(model, i);
    }
    return experts * (ep - 1) / ep;
}

cJSON *search_bound_json(const Model *model, const HwTopology *topo, const StratOptions *opt,
                         const StratLayout *layout)
{
    int model_parallel = MAX(1, layout->tp) * MAX(1, layout->pp);
    /* Parameters a GPU holds at least: its 1/(tp x pp) of the model (the first and last stages
     * hold more, the embedding; the bound takes the mean, which the largest stage exceeds). */
    double params = (double)model->params / model_parallel;
    /* The model state that stays on the GPU all step, and the gradients at the end of the
     * backward:
     * - FSDP: the sharded FlatParameter in fp32 (fsdp.c), the optimizer state on the same shard
     *   (model_optimizer_state_bytes: Adam's m and v, 8 bytes), the fp32 sharded gradient;
     * - a distributed optimizer (Megatron's, ZeRO-1): parameter replicas in the compute dtype
     *   (at least 2 bytes), fp32 master weights and the state sharded over dp, gradients at
     *   least 2 bytes (Rajbhandari et al. 2020, "P_os": 2 + 2 + 12/N);
     * - DDP: fp32 parameters (autocast) and state replicated, fp32 param.grad.
     * Unsharded parameters, activations and buffers come on top, so this is a lower bound.
     * Not modelled: frozen parameters (LoRA), which have no gradient or optimizer state. */
    double state = model_optimizer_state_bytes(model->training.optimizer);
    double compute_bytes = MAX(2, hw_dtype_bytes(opt->param_dtype));
    double param_bytes, state_bytes, grad_bytes;
    if (opt->kind == STRAT_FSDP) {
        double shard = opt->sharding == SHARD_NO_SHARD ? 1 : MAX(1, layout->shard_size);
        param_bytes = 4.0 / shard, state_bytes = state / shard, grad_bytes = 4.0 / shard;
        /* DeepSpeed's optimizer offload: the shard in param_dtype (2 B at least), master
         * weights, state and the reduced gradients on the host (fsdp_offload.c) */
        if (opt->offload_optimizer)
            param_bytes = 2.0 / shard, state_bytes = 0, grad_bytes = 0;
    } else if (opt->distributed_optimizer) {
        double dp = MAX(1, layout->dp);
        param_bytes = MIN(4, compute_bytes), state_bytes = (4 + state) / dp, grad_bytes = 2;
    } else {
        double p = opt->mixed_precision ? 4 : MIN(4, compute_bytes);
        param_bytes = p, state_bytes = state, grad_bytes = p;
    }
    double bytes = opt->cpu_offload ? 0 : params * (param_bytes + state_bytes);
    /* Without activation checkpointing, the end of a micro-batch's forward holds everything its
     * backward needs (gen.c frees each leaf's saved tensors only in backward), beside the model
     * state: the model's saved bytes per sample (model_*.c) x micro-batch, over tp x pp (Megatron's
     * TP keeps at least 1/t of a layer's, Korthikanti et al. 2022; a stage at least 1/p of the
     * layers), in at least a 2-byte dtype. With checkpointing the bound counts none. */
    double activations = 0;
    if (!opt->activation_checkpointing) {
        double saved = 0;
        for (int i = 0; i < model->n_modules; i++) /* selective recomputation drops some */
            saved += model->modules[i].saved_bytes -
                     (opt->recompute_selective ? model->modules[i].recomputable_bytes : 0);
        double scale = MIN(1.0, 2.0 / hw_dtype_bytes(model->training.param_dtype));
        activations = saved * scale * model->training.micro_batch / model_parallel;
        /* the loss's backward comes next, its logit gradients beside all of that (gen.c
         * gen_backward_transient; not under TP, and with a pipeline on one stage only) */
        if (model_parallel == 1)
            for (int i = 0; i < model->n_modules; i++)
                activations +=
                    model->modules[i].backward_transient_bytes * model->training.micro_batch;
    }
    /* The end of backward holds every gradient, the activations by then freed: the larger of
     * the two moments counts. */
    double grads = opt->cpu_offload ? 0 : params * grad_bytes;
    /* FSDP computes a unit with its FlatParameter unsharded, and its backward makes the
     * unsharded gradient beside it: the largest unit's parameters twice, in at least 2 bytes
     * (plan.c builds the units as FSDP's auto-wrap policy does). Without model parallelism only:
     * with tp or pp the units are per stage and the bound keeps to what holds for every layout. */
    double unit = 0;
    if (opt->kind == STRAT_FSDP && model_parallel == 1) {
        PlanWrap *wrap = plan_wrap_build(model, &opt->wrap, MAX(1, layout->shard_size));
        for (int u = 0; u < wrap->n_units; u++) /* with --ep: the local experts only */
            unit = MAX(unit, ((double)wrap->units[u].numel -
                              expert_params_not_gathered(model, wrap, u, opt->ep)) *
                                 2 * 2);
        plan_wrap_free(wrap);
    }
    /* SHARD_GRAD_OP and _HYBRID_SHARD_ZERO2 keep every unit unsharded from its forward to its
     * backward (reshard_after_forward=False): at the end of the forward all parameters are
     * there in the compute dtype (at least 2 bytes), beside the activations; with --ep only
     * the GPU's experts/ep of the routed experts (counting all of them made the bound up to
     * twice Mixtral's simulated peak, and pruned layouts that fit). FSDP2's
     * --reshard-after-forward overrides the strategy's (fsdp.c): true frees them, N keeps 1/N
     * of them (counting them whole made the bound up to 1.38 times the simulated peak). */
    double kept_after_forward = 1;
    if (opt->fsdp_version == 2 && opt->reshard_after_forward >= 0) {
        int shard = MAX(1, layout->shard_size);
        int raf = opt->reshard_after_forward == 1 ? shard : opt->reshard_after_forward;
        kept_after_forward = raf == 0 ? 1 : raf < shard ? 1.0 / raf : 0;
    }
    if (opt->kind == STRAT_FSDP &&
        (opt->sharding == SHARD_SHARD_GRAD_OP || opt->sharding == SHARD_HYBRID_ZERO2))
        activations +=
            ((double)model->params - expert_params_not_gathered(model, NULL, -1, opt->ep)) /
            model_parallel * 2 * kept_after_forward;
    /* The step holds the gradients and, with foreach Adam, its denominator list: fp32 over the
     * optimizer's shard of the trainable parameters (gen.c gen_optimizer_denom_alloc; the
     * data-parallel generators only, not pp.c), at least the gradient's bytes a parameter */
    ModelOptimizer optimizer = model->training.optimizer;
    if (grads > 0 && model_parallel == 1 && opt->optimizer_impl == KERN_OPTIM_FOREACH &&
        (optimizer == MODEL_OPT_ADAMW || optimizer == MODEL_OPT_ADAM) &&
        !opt->distributed_optimizer)
        grads += (double)(model->params - model->frozen_params) * grad_bytes;
    /* the report adds the memory no tensor can use (CUDA context, cuBLAS, NCCL) to its peak */
    bytes += MAX(MAX(activations, grads), unit) + topo->gpu.reserved_bytes;
    /* A compute floor: the model's training FLOPs of one micro-batch on the whole job, shared
     * evenly by all GPUs, each kernel at the best rate the kernel model gives it (kern.c): GEMMs
     * (and convolutions) at most matmul_efficiency of the peak; attention, which the model counts
     * whole (4 s^2 h) while a causal FlashAttention kernel computes about half the blocks, at
     * most twice the better of the fused kernels' efficiencies (eager attention's GEMMs do all
     * the work, at most matmul_efficiency); memory-bound kernels at the measured fraction of
     * HBM bandwidth. No communication, launch cost or pipeline imbalance is counted, so the
     * floor stays below the simulated compute time. */
    HwDtype dtype = strat_compute_dtype(model, opt);
    double peak = topo->gpu.peak_flops[dtype] > 0 ? topo->gpu.peak_flops[dtype]
                                                  : topo->gpu.peak_flops[HW_DTYPE_BF16];
    const HwKernels *kp = &topo->gpu.kernels;
    double gemm_eff =
        dtype == HW_DTYPE_TF32 && kp->present ? kp->tf32_efficiency : topo->gpu.matmul_efficiency;
    gemm_eff = gemm_eff > 0 && gemm_eff <= 1 ? gemm_eff : 1;
    double attn_eff = gemm_eff;
    /* --fp8-format: the blocks' linears run at up to the fp8 rate (strategy/fp8.c); the floor
     * takes every GEMM at the better of the two, so it stays a floor (casts ignored) */
    double gemm_rate = peak * gemm_eff;
    if (opt->fp8_format != STRAT_FP8_OFF)
        gemm_rate = MAX(gemm_rate, kern_gemm_best_rate(&topo->gpu, HW_DTYPE_FP8));
    if (kp->present)
        attn_eff =
            MAX(attn_eff, 2 * MAX(kp->attention_efficiency,
                                  MAX(kp->triton_attention_efficiency,
                                      kp->flash1_attention_efficiency)));
    else
        attn_eff = 2; /* no kernel table: attention at the GEMM rate on half the work, bounded
                       * by twice the peak to be safe */
    /* Activation checkpointing runs each checkpointed block's forward again in its backward
     * (gen.c): with --checkpoint-every k, floor(blocks / k) of the blocks. */
    int n_blocks = 0;
    for (int i = 0; i < model->n_modules; i++)
        n_blocks += model->modules[i].is_block;
    int every = MAX(1, opt->checkpoint_every);
    double recompute =
        opt->activation_checkpointing && n_blocks ? (double)(n_blocks / every) / n_blocks : 0;
    double attn_flops = 0, gemm_flops = 0, bytes_moved = 0;
    for (int i = 0; i < model->n_modules; i++) {
        const ModelModule *m = &model->modules[i];
        bool in_block = false;
        for (int a = i; a >= 0 && !in_block; a = model->modules[a].parent)
            in_block = model->modules[a].is_block;
        double passes = 1 + m->flops_bwd_ratio + (in_block ? recompute : 0);
        if (m->kernel.kind == MODEL_KERNEL_ATTENTION)
            attn_flops += m->flops_fwd * passes;
        else
            gemm_flops += m->flops_fwd * passes;
        /* memory-bound kernels: forward, backward twice the forward's bytes (gen.c), the
         * recomputed forward; in the activation dtype, at least 2 bytes */
        bytes_moved += m->mem_bytes_fwd * (3 + (in_block ? recompute : 0));
    }
    double act_scale = MIN(1.0, 2.0 / hw_dtype_bytes(model->training.param_dtype));
    double hbm = topo->gpu.hbm_Bps * topo->gpu.memory_efficiency;
    /* GEMMs and memory-bound kernels run one after the other on the compute stream, their
     * times add (hw_gpu_compute_s, kern_memory_s) */
    double per_sample_s =
        peak > 0 ? gemm_flops / gemm_rate + attn_flops / (peak * attn_eff) : 0;
    if (hbm > 0)
        per_sample_s += bytes_moved * act_scale / hbm;
    double samples = (double)model->training.micro_batch * MAX(1, layout->dp);
    double floor_s = per_sample_s * samples / layout->world;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "world_size", layout->world);
    cJSON_AddNumberToObject(o, "nodes", layout->nodes);
    cJSON_AddNumberToObject(o, "gpus_per_node", layout->gpus_per_node);
    cJSON_AddNumberToObject(o, "machine_gpus_per_node", topo->gpus_per_node);
    cJSON_AddNumberToObject(o, "machine_cores_per_node", topo->cpu_cores);
    cJSON_AddNumberToObject(o, "tp", MAX(1, layout->tp));
    cJSON_AddNumberToObject(o, "pp", MAX(1, layout->pp));
    cJSON_AddNumberToObject(o, "dp", MAX(1, layout->dp));
    cJSON_AddNumberToObject(o, "micro_batch", model->training.micro_batch);
    cJSON_AddNumberToObject(o, "grad_accum", MAX(1, opt->grad_accum));
    cJSON_AddNumberToObject(o, "seq_len", model->token_input ? model->training.seq_len : 0);
    cJSON_AddNumberToObject(o, "memory_bound_bytes", bytes);
    cJSON_AddNumberToObject(o, "capacity_bytes", topo->gpu.memory_bytes);
    cJSON_AddNumberToObject(o, "step_floor_per_micro_batch_s", floor_s);
    /* A pipeline runs m micro-batches in at least m + (p - 1) / v slots of one micro-batch's
     * stage time (the fill and drain of 1F1B and GPipe; interleaving divides them by v). */
    double fill = layout->pp > 1 ? (double)(layout->pp - 1) / MAX(1, opt->virtual_stages) : 0;
    cJSON_AddNumberToObject(o, "pipeline_fill_micro_batches", fill);
    return o;
}
