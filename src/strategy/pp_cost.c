/* pp_cost: what each part of the model costs a pipeline stage (pp.c): FLOPs, bytes, saved
 * activations and parameters per sample after tensor parallelism's scaling, and the kernels of
 * one micro-batch, which the stage's compute ops carry (schedule version 3). Built once per
 * schedule: O(leaves). */
#include "pp_priv.h"
#include "../kern/kern.h"
#include "../util/cfg.h"

#include <math.h>

/* ---- model costs ---- */

static void add_leaf(PpCost *c, const ModelModule *m)
{
    if (c->input <= 0 && m->saved_bytes > 0)
        c->input = m->saved_bytes;
    c->flops += m->flops_fwd;
    c->bwd_flops += m->flops_fwd * m->flops_bwd_ratio;
    c->bytes += m->mem_bytes_fwd;
    c->saved += m->saved_bytes;
    c->kernels += m->kernels_fwd;
}

static void scale_cost(PpCost *c, double flops, double act, double input, double params)
{
    c->flops *= flops;
    c->bwd_flops *= flops;
    c->recompute_flops *= flops;
    c->recompute_saved *= act;
    c->recompute_dropped *= act;
    c->bytes *= act;
    c->saved *= act;
    c->input *= input;
    c->params *= params;
}

/* Selective recomputation (Megatron's --recompute-granularity selective) in layer l: on, and l
 * not recomputed whole by activation checkpointing. */
static bool selective_layer(const Pp *pp, int layer)
{
    return pp->g.opt->recompute_selective &&
           !(pp->ckpt && gen_block_checkpointed(pp->g.opt, layer));
}

/* Splits the model into pre (embedding), decoder layers, post (final norm, head, loss). */
bool pp_model_costs(Pp *pp, GError **error)
{
    const Model *model = pp->g.model;
    int *block_of = g_new(int, model->n_modules);
    int n = 0;
    for (int i = 0; i < model->n_modules; i++) {
        int parent = model->modules[i].parent;
        block_of[i] = parent >= 0 ? block_of[parent] : -1;
        if (model->modules[i].is_block && block_of[i] < 0)
            block_of[i] = n++;
    }
    pp->n_layers = n;
    pp->layer = g_new0(PpCost, MAX(n, 1));
    for (int l = -2; l < n; l++) {
        PpCost *c = l == -2 ? &pp->pre : l == -1 ? &pp->post : &pp->layer[l];
        c->fwd_k = g_array_new(FALSE, FALSE, sizeof(IrKernel));
        c->bwd_k = g_array_new(FALSE, FALSE, sizeof(IrKernel));
    }
    int first_block = 0;
    while (first_block < model->n_modules && block_of[first_block] < 0)
        first_block++;
    GenTpSaved *kind = gen_tp_saved_kinds(model);
    GenTpScale layer_scale = gen_tp_scale(pp->T, pp->sp, GEN_TP_BLOCK);
    for (int i = 0; i < model->n_modules; i++) {
        const ModelModule *m = &model->modules[i];
        PpCost *c = block_of[i] >= 0 ? &pp->layer[block_of[i]] : i < first_block ? &pp->pre : &pp->post;
        c->params += (double)m->params;
        if (m->first_child < 0 && i != 0) {
            add_leaf(c, m);
            /* unfused attention's score-matrix traffic splits by heads (1/t), not by
             * Korthikanti's activation factor that scale_cost applies to the rest below */
            double act = layer_scale.act;
            /* its own saved tensors too (tp.c scale_block_saved): 1/t after scale_cost's act */
            double by_heads = pp->T > 1 && act > 0 ? 1.0 / pp->T / act : 1;
            if (m->kernel.kind == MODEL_KERNEL_ATTENTION && pp->T > 1 && act > 0) {
                c->bytes += m->mem_bytes_fwd * (by_heads - 1);
                if (kind[i] == GEN_TP_SAVED_RATIO)
                    c->saved += m->recomputable_bytes * (by_heads - 1);
            }
            /* a leaf of a layer with attention: whole or split as it sits (tp.c
             * gen_tp_saved_kinds), not the layer's ratio that scale_cost applies */
            if (kind[i] != GEN_TP_SAVED_RATIO && block_of[i] >= 0 && pp->T > 1 && act > 0)
                c->saved += m->saved_bytes *
                            ((kind[i] == GEN_TP_SAVED_SPLIT ? layer_scale.flops : layer_scale.input) /
                                 act -
                             1);
            if (m->kernel.kind == MODEL_KERNEL_ATTENTION && block_of[i] >= 0 &&
                selective_layer(pp, block_of[i])) {
                c->recompute_flops += m->flops_fwd;
                c->recompute_bytes += m->mem_bytes_fwd / pp->T; /* by heads, as above */
                /* one core live again at a time (gen.c gen_backward_run) */
                c->recompute_saved = MAX(c->recompute_saved, m->recomputable_bytes * by_heads);
                c->recompute_dropped += m->recomputable_bytes * by_heads;
                c->recompute_kernels += m->kernels_fwd;
                gen_kernels_leaf(&pp->g, c->bwd_k, i, pp->g.mb, pp->T, false);
            }
            gen_kernels_leaf(&pp->g, c->fwd_k, i, pp->g.mb, pp->T, false);
            gen_kernels_leaf(&pp->g, c->bwd_k, i, pp->g.mb, pp->T, true);
        }
    }
    g_free(block_of);
    g_free(kind);
    if (n == 0)
        return cfg_input_error(error, "%s: field 'modules': pipeline and tensor parallelism split the model "
                           "at its blocks (decoder layers), and this model has none",
                           model->file);
    /* Korthikanti's per-TP-rank factors (tp.c): layers, vocabulary-parallel embedding and head */
    const GenTpRegion regions[3] = {GEN_TP_BLOCK, GEN_TP_PRE, GEN_TP_POST};
    for (int k = 0; k < 3; k++) {
        GenTpScale f = gen_tp_scale(pp->T, pp->sp, regions[k]);
        if (k == 0)
            for (int l = 0; l < n; l++)
                scale_cost(&pp->layer[l], f.flops, f.act, f.input, f.params);
        else
            scale_cost(k == 1 ? &pp->pre : &pp->post, f.flops, f.act, f.input, f.params);
    }
    /* then the memory-bound traffic: twice the forward's in backward, as gen.c charges it (and
     * the recomputed attention cores' once) */
    for (int l = -2; l < n; l++) {
        PpCost *c = l == -2 ? &pp->pre : l == -1 ? &pp->post : &pp->layer[l];
        double bytes = c->bytes * pp->act_bytes_scale * pp->g.mb;
        c->saved -= c->recompute_dropped;
        gen_kernels_memory(&pp->g, c->fwd_k, bytes, MAX(1, c->kernels));
        gen_kernels_memory(&pp->g, c->bwd_k,
                           2 * bytes + c->recompute_bytes * pp->act_bytes_scale * pp->g.mb,
                           2 * MAX(1, c->kernels) + c->recompute_kernels);
    }
    if (model->tied_embeddings && pp->P > 1)
        pp->tied_params = (double)model->vocab * model->hidden / pp->T;
    return true;
}

/* The decoder layers of each virtual stage: --pp-partition's, or an even split. */
bool pp_partition(Pp *pp, GError **error)
{
    const StratOptions *opt = pp->g.opt;
    int n_vs = pp->P * pp->v;
    pp->vs_first = g_new0(int, n_vs + 1);
    if (opt->pp_partition) {
        int sum = 0;
        if (opt->n_pp_partition != n_vs)
            return cfg_input_error(error, "option --pp-partition: field 'layers per stage': expected %d "
                               "numbers (pp %d x virtual stages %d), got %d",
                               n_vs, pp->P, pp->v, opt->n_pp_partition);
        for (int i = 0; i < n_vs; i++) {
            if (opt->pp_partition[i] < 1)
                return cfg_input_error(error, "option --pp-partition: field 'layers per stage': expected at "
                                   "least 1 layer per stage, got %d for stage %d",
                                   opt->pp_partition[i], i);
            sum += opt->pp_partition[i];
            pp->vs_first[i + 1] = sum;
        }
        if (sum != pp->n_layers)
            return cfg_input_error(error, "option --pp-partition: field 'layers per stage': expected %d "
                               "layers in all (the model's), got %d",
                               pp->n_layers, sum);
        return true;
    }
    if (pp->n_layers % n_vs != 0)
        return cfg_input_error(error, "option --pp: field 'stages': %d decoder layers do not split evenly "
                           "over pp %d x virtual stages %d = %d; expected a divisor of %d, or "
                           "give --pp-partition",
                           pp->n_layers, pp->P, pp->v, n_vs, pp->n_layers);
    for (int i = 0; i <= n_vs; i++)
        pp->vs_first[i] = i * (pp->n_layers / n_vs);
    return true;
}

/* Device time of `share` of a part's forward or backward for one micro-batch, its kernels
 * pending for the compute op that runs it (gen_compute_timed). */
double pp_seconds(Pp *pp, PpCost *c, bool backward, double share)
{
    Gen *g = &pp->g;
    int b = backward, h = share != 1;
    PpCost *m = c;
    if (m->memo_cls[b][h] != g->cls) {
        gen_kernels_add(g, backward ? c->bwd_k : c->fwd_k, share);
        const IrKernel *list = (const IrKernel *)(void *)g->kern_pending->data;
        int n = (int)g->kern_pending->len;
        m->memo_s[b][h] = kern_list_s(&g->topo->gpu, list, n);
        m->memo_first[b][h] = ir_kernels_add(g->cls, list, n);
        m->memo_cls[b][h] = g->cls;
        g_array_set_size(g->kern_pending, 0);
    }
    g->kern_first_pending = m->memo_first[b][h];
    return m->memo_s[b][h];
}

void pp_costs_free(Pp *pp)
{
    for (int l = -2; pp->layer && l < pp->n_layers; l++) {
        PpCost *c = l == -2 ? &pp->pre : l == -1 ? &pp->post : &pp->layer[l];
        if (c->fwd_k)
            g_array_free(c->fwd_k, TRUE);
        if (c->bwd_k)
            g_array_free(c->bwd_k, TRUE);
    }
    g_free(pp->layer);
    gen_kernels_clear(&pp->g);
}

/* ---- DeepSpeed's gradient accumulation ---- */

/* DeepSpeed's pipeline engine leaves each micro-batch's gradients to autograd and its optimizer,
 * where Megatron's engine adds them into fp32 main_grad inside the wgrad GEMM (gradient
 * accumulation fusion), at no cost here. Two cases, each at the topology's measured HBM
 * bandwidth, after the backward and before the gradient is sent on:
 * - bf16 with ZeRO stage 0 (BLOOM-176B's setup: fp32 gradients, the devset's --reduce-dtype
 *   fp32) runs BF16_Optimizer: it drops the bf16 gradients before each backward
 *   (clear_lp_grads) and after it calls update_hp_grads(), per parameter tensor
 *   hp_grad.add_(lp.grad.to(fp32)) (microsoft/DeepSpeed #1801, runtime/bf16_optimizer.py and
 *   runtime/pipe/engine.py _exec_backward_pass, 2022-04; the BigScience branch from
 *   2022-02-28): a cast (read 2, write 4 B) and an add (read 4 + 4, write 4 B) per parameter,
 *   two kernels per tensor, every micro-batch. BLOOM-176B at TP4 PP12: 3.7e9 parameters per GPU,
 *   66 GB, about 40 ms per micro-batch.
 * - otherwise (fp16, ZeRO stage 1 or none) the gradients stay in param.grad: ZeRO-1 registers no
 *   backward hooks (stage_1_and_2.py v0.6.0: only for partition_gradients or overlap_comm) and
 *   reduces once after the last micro-batch, so autograd's AccumulateGrad adds each later
 *   micro-batch's gradient in place (read both, write one: 3 x 2 B per parameter, a kernel per
 *   tensor); the first micro-batch's gradient is the GEMM's output itself.
 * Returns the op, or `dep` when there is none. */
int pp_deepspeed_grads(Pp *pp, double params, double tensors, bool first, uint32_t name, int dep)
{
    Gen *g = &pp->g;
    const StratOptions *opt = g->opt;
    if (opt->pp_scatter_gather != PP_SG_DEEPSPEED || pp->fsdp || pp->v > 1 ||
        !opt->mixed_precision || opt->param_dtype == HW_DTYPE_FP32 || params <= 0)
        return dep;
    double lp = hw_dtype_bytes(opt->param_dtype), bytes;
    int kernels;
    if (strat_grad_reduce_dtype(opt) == HW_DTYPE_FP32) {
        bytes = params * (lp + 4 + 3 * 4);
        kernels = (int)MAX(2, 2 * ceil(tensors));
    } else if (!first) {
        bytes = params * 3 * lp;
        kernels = (int)MAX(1, ceil(tensors));
    } else
        return dep;
    gen_kernels_memory(g, NULL, bytes, kernels);
    return gen_compute_named(g, g->compute, IR_PHASE_BACKWARD, 0, bytes, 0, kernels, 0, name,
                             &dep, 1);
}
