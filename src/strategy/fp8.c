/* fp8: Transformer Engine's fp8 training (Megatron-LM --fp8-format; te.Linear, te.LayerNormLinear
 * and te.LayerNormMLP under te.fp8_autocast with DelayedScaling), as the generators charge it.
 *
 * What runs in fp8: the GEMMs of the transformer blocks' linear layers (QKV, the attention
 * output projection, the MLP's up/gate/down and the MoE experts' own), in forward, input
 * gradient (dgrad) and weight gradient (wgrad). Everything else stays in param_dtype: the
 * attention core (QK^T, softmax, PV, or the fused flash kernels), embeddings, the LM head,
 * norms and elementwise ops, and the MoE router (a plain nn.Linear in Megatron and Hugging
 * Face; its few outputs are not a multiple of 16, which TE's fp8 GEMMs need).
 *
 * Transformer Engine's casts, each a memory-bound kernel at the HBM rate (kern.c memory_time):
 *  - forward, per fp8 linear: its input cast from bf16 to fp8 together with the transposed fp8
 *    copy wgrad needs (tex.fp8_cast_transpose_fused): read 2 B, write 2 x 1 B = 4 B per input
 *    element;
 *  - backward, per fp8 linear: the output gradient likewise (read 2, write 1 + 1 transposed);
 *  - weights, Megatron (DDP, distributed optimizer, --tp/--pp: pp.c, ddp.c): cast once per
 *    optimizer step (Megatron passes is_first_microbatch, so TE caches them for the step's other
 *    micro-batches), 4 B per parameter of those linears, charged with the optimizer step
 *    (gen_optimizer_step) as the GPU work it is; the fp8 weight and its transpose stay
 *    allocated (+2 B per parameter, gen_fp8_weights);
 *  - weights, FSDP (fsdp.c: composer/llm-foundry, torchtitan): FSDP frees each gathered weight
 *    after use and the training loop passes no is_first_microbatch, so TE casts the weight in
 *    every forward (recomputed ones too), 4 B per parameter each time, into a workspace that
 *    lives for the layer's forward and backward only (transient, 2 B per parameter of one
 *    layer: not added to the memory model).
 * TE fuses the forward input cast into its LayerNorm where a te.LayerNormLinear follows a norm;
 * that saves the cast's 2 B read only, not modelled (an upper bound of a few percent of a cast).
 * Scaling-factor and amax-history updates are a handful of tiny kernels per step: not charged.
 *
 * Cost: O(modules) once per generator; one extra kernel record per fp8 leaf and pass. */
#include "gen.h"
#include "../kern/kern.h"

#include <math.h>
#include <string.h>

const char *strat_fp8_format_name(StratFp8Format format)
{
    static const char *const names[] = {"off", "hybrid", "e4m3"};
    return names[format];
}

bool strat_fp8_format_parse(const char *text, StratFp8Format *out)
{
    if (!text)
        return false;
    if (!g_ascii_strcasecmp(text, "hybrid"))
        *out = STRAT_FP8_HYBRID;
    else if (!g_ascii_strcasecmp(text, "e4m3"))
        *out = STRAT_FP8_E4M3;
    else
        return false;
    return true;
}

/* A transformer block's linear layer (not a convolution, not the MoE router): fp8 under TE. */
static bool fp8_linear(const Model *model, int leaf)
{
    const ModelModule *m = &model->modules[leaf];
    if (m->first_child >= 0 || m->kernel.kind != MODEL_KERNEL_GEMM || m->kernel.input > 0 ||
        !(m->flops_fwd > 0))
        return false;
    if (strcmp(m->kind, "Linear") != 0 && strcmp(m->kind, "Conv1D") != 0)
        return false;
    if (g_str_has_suffix(m->name, ".gate") || g_str_has_suffix(m->name, ".shared_expert_gate"))
        return false;
    for (int p = m->parent; p >= 0; p = model->modules[p].parent)
        if (model->modules[p].is_block)
            return true;
    return false;
}

bool strat_fp8_leaf(const Model *model, int leaf)
{
    return fp8_linear(model, leaf);
}

void gen_fp8_init(Gen *g)
{
    g->fp8_leaf = NULL;
    g->fp8_params = 0, g->fp8_block_fraction = 0, g->fp8_weight_numel = 0;
    g->fp8_leaves = g->fp8_weight_tensors = 0;
    if (g->opt->fp8_format == STRAT_FP8_OFF)
        return;
    const Model *model = g->model;
    g->fp8_leaf = g_new0(bool, model->n_modules);
    double block_params = 0;
    for (int i = 0; i < model->n_modules; i++) {
        const ModelModule *m = &model->modules[i];
        if (m->is_block)
            block_params += (double)model_subtree_params(model, i);
        if (fp8_linear(model, i)) {
            g->fp8_leaf[i] = true;
            g->fp8_params += (double)m->params;
            g->fp8_leaves++;
        }
    }
    g->fp8_block_fraction = block_params > 0 ? g->fp8_params / block_params : 0;
}

void gen_fp8_clear(Gen *g)
{
    g_free(g->fp8_leaf);
    g->fp8_leaf = NULL;
}

HwDtype gen_leaf_dtype(const Gen *g, int leaf)
{
    return g->fp8_leaf && g->fp8_leaf[leaf] ? HW_DTYPE_FP8 : g->compute_dtype;
}

void gen_fp8_cast_kernels(Gen *g, GArray *into, int leaf, double samples, double tp_split,
                          bool backward)
{
    if (!g->fp8_leaf || !g->fp8_leaf[leaf] || samples <= 0)
        return;
    /* the GEMM's own shape (kern_leaf_kernels): forward input rows x k, output gradient
     * rows x n/tp; 2 B read, 1 B fp8 and 1 B transposed fp8 written per element */
    const ModelModule *m = &g->model->modules[leaf];
    const ModelKernel *k = &m->kernel;
    double rows = k->rows * samples, cols = backward ? k->n / MAX(tp_split, 1) : k->k;
    double bytes = (2.0 + 1 + 1) * rows * cols;
    int kernels = 1;
    if (!backward && g->fp8_weights_each_forward) /* FSDP: this rank's weight (1/tp of it under
                                                   * the pipeline's TP), every forward */
        bytes += 4.0 * (double)m->params / MAX(tp_split, 1), kernels++;
    gen_kernels_memory(g, into, bytes, kernels);
}

void gen_fp8_weights(Gen *g, double numel)
{
    if (!g->fp8_leaf || !(numel > 0))
        return;
    g->fp8_weight_numel = numel;
    /* one cast-transpose kernel per weight: the rank's share of the fp8 linears */
    double share = g->fp8_params > 0 ? MIN(1, numel / g->fp8_params) : 1;
    g->fp8_weight_tensors = (int)MAX(1, ceil(g->fp8_leaves * share));
    /* the fp8 weight and its transpose, 1 B each, kept: forward's and dgrad's operands (Hopper's
     * fp8 GEMMs take only the TN layout, so dgrad needs W transposed in fp8) */
    gen_alloc(g, "fp8_weights", IR_MEM_PARAMS, 2 * numel);
}
