/* model_hf_moe: mixture-of-experts blocks of Mixtral (modeling_mixtral.py, MixtralSparseMoeBlock)
 * and Qwen2-MoE (modeling_qwen2_moe.py, Qwen2MoeSparseMoeBlock), and the expert-parallel figures
 * derived from them (model.h).
 *
 * Cost of one MoE block for s tokens of width h, E experts, top-k routing, expert width f:
 *  - router: Linear(h, E), softmax and top-k over s x E logits;
 *  - each expert a gated MLP on the tokens routed to it: s * k / E of them with balanced routing
 *    (the load-balancing loss's aim; imbalance is not modelled), so the expert GEMMs are
 *    k/E-sized and their FLOPs total k times a dense MLP of width f;
 *  - the gather of each token's copy for its k experts (read and write s*k*h) and the weighted
 *    scatter-add back (read s*k*h, write s*h): HF's index_select / index_add_ loop;
 *  - Qwen2-MoE: a shared expert of width shared_ffn on all tokens and its sigmoid gate.
 * Saved for backward: each expert's input copy (s*k*h in total), its gate/up outputs, and its
 * output, which the product with the routing weights keeps (s*k*h in total): modeling_mixtral.py
 * MixtralSparseMoeBlock.forward `current_hidden_states = expert_layer(current_state) *
 * routing_weights[top_x, idx, None]` (Qwen2MoeSparseMoeBlock the same), a product of two
 * tensors that require grad (the weights come from the router's softmax), so derivatives.yaml's
 * `mul.Tensor` keeps both factors; index_add_ keeps only the indices. Qwen2-MoE's shared expert
 * output is kept the same way by `F.sigmoid(self.shared_expert_gate(hidden_states)) *
 * shared_expert_output`, with the sigmoid's result (one value per token). */
#include "model_hf_priv.h"

#include "../util/cfg.h"

#include <string.h>

/* Routed experts in all layers together (see model_hf_moe_read). */
#define MODEL_MOE_EXPERTS_MAX (1 << 18)

bool model_hf_moe_read(Model *m, void *cfg_root, int64_t layers, ModelMoe *moe, GError **error)
{
    CfgObj *root = cfg_root;
    const int64_t big = 1 << 22;
    int64_t experts = 0, top_k = 2, expert_ffn = m->ffn, shared = 0, step = 1;
    bool ok;
    memset(moe, 0, sizeof *moe);
    bool mixtral = !strcmp(m->model_type, "mixtral");
    if (mixtral) {
        moe->style = MODEL_MOE_MIXTRAL;
        ok = cfg_get_int(root, "num_local_experts", true, 1, 100000, &experts, error) &&
             cfg_get_int(root, "num_experts_per_tok", false, 1, 100000, &top_k, error);
    } else {
        moe->style = MODEL_MOE_QWEN2;
        top_k = 4;
        ok = cfg_get_int(root, "num_experts", true, 1, 100000, &experts, error) &&
             cfg_get_int(root, "num_experts_per_tok", false, 1, 100000, &top_k, error) &&
             cfg_get_int(root, "moe_intermediate_size", true, 1, big, &expert_ffn, error) &&
             cfg_get_int(root, "shared_expert_intermediate_size", false, 0, big, &shared, error) &&
             cfg_get_int(root, "decoder_sparse_step", false, 1, 100000, &step, error);
        const cJSON *dense = ok ? cfg_item(root, "mlp_only_layers") : NULL;
        if (ok && dense && !cJSON_IsNull(dense)) {
            if (!cJSON_IsArray(dense)) {
                cfg_set_error(error, root->file, root->path, "mlp_only_layers",
                              "expected a list of layer indices");
                return false;
            }
            for (const cJSON *it = dense->child; it; it = it->next) {
                if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= layers ||
                    it->valuedouble >= 256 || it->valuedouble != (int)it->valuedouble) {
                    cfg_set_error(error, root->file, root->path, "mlp_only_layers",
                                  "expected layer indices in [0, %" G_GINT64_FORMAT ")",
                                  MIN(layers, 256));
                    return false;
                }
                int l = (int)it->valuedouble;
                moe->dense_mask[l / 64] |= 1ULL << (l % 64);
            }
        }
    }
    if (!ok)
        return false;
    if (top_k > experts) {
        cfg_set_error(error, root->file, root->path, "num_experts_per_tok",
                      "expected at most the %" G_GINT64_FORMAT " experts, got %" G_GINT64_FORMAT,
                      experts, top_k);
        return false;
    }
    moe->experts = (int)experts, moe->top_k = (int)top_k, moe->expert_ffn = (int)expert_ffn;
    moe->shared_ffn = (int)shared, moe->sparse_step = (int)step;
    /* Each routed expert is five modules of the tree: 100,000 experts in each of 1,000 layers
     * ran out of memory building them. 2^18 in all (about 400 MB and 2 s of a run) is 1,024
     * times Mixtral-8x7B's 8 x 32 and 182 times Qwen1.5-MoE-A2.7B's 60 x 24. O(layers). */
    int64_t moe_layers = 0;
    for (int64_t l = 0; l < layers; l++)
        moe_layers += model_hf_moe_layer(moe, (int)l);
    if (experts * moe_layers > MODEL_MOE_EXPERTS_MAX) {
        cfg_set_error(error, root->file, root->path, mixtral ? "num_local_experts" : "num_experts",
                      "%" G_GINT64_FORMAT " experts in each of %" G_GINT64_FORMAT
                      " MoE layers are %" G_GINT64_FORMAT " routed experts; expected at most %d "
                      "in all (fewer experts or layers)",
                      experts, moe_layers, experts * moe_layers, MODEL_MOE_EXPERTS_MAX);
        return false;
    }
    return true;
}

bool model_hf_moe_layer(const ModelMoe *moe, int layer)
{
    if (moe->experts == 0 || (layer + 1) % moe->sparse_step != 0)
        return false;
    return layer >= 256 || !(moe->dense_mask[layer / 64] & (1ULL << (layer % 64)));
}

void model_hf_moe_block(Ctx *c, Model *m, const ModelMoe *moe, int block, const char *block_name)
{
    bool mixtral = moe->style == MODEL_MOE_MIXTRAL;
    double s = c->s, h = m->hidden, act = c->act, E = moe->experts, k = moe->top_k;
    char *bn = model_hf_sub(block_name, mixtral ? "block_sparse_moe" : "mlp"), *n;
    int sparse = model_builder_add(c->b, block, bn,
                                   mixtral ? "MixtralSparseMoeBlock" : "Qwen2MoeSparseMoeBlock");
    /* the router, with the softmax/top-k over s x E logits (fp32: read, write 4 B each) and the
     * gather and scatter-add of the routed copies (read+write s*k*h, read s*k*h + write s*h) */
    int gate =
        model_hf_linear(c, sparse, n = model_hf_sub(bn, "gate"), "Linear", h, E, false, false);
    g_free(n);
    ModelModule *g = model_builder_get(c->b, gate);
    g->mem_bytes_fwd = 3 * 4 * s * E + act * s * h * (3 * k + 1);
    g->kernels_fwd += 4 + 3 * moe->experts; /* softmax, topk, one_hot, where; per expert gather,
                                               scale, index_add */
    /* the experts' input copies, and their outputs kept by the routing-weight product */
    g->saved_bytes += 2 * act * s * k * h;
    int list = model_builder_add(c->b, sparse, n = model_hf_sub(bn, "experts"), "ModuleList");
    g_free(n);
    char *ln = model_hf_sub(bn, "experts");
    const char *const names_mixtral[3] = {"w1", "w3", "w2"};
    const char *const names_qwen[3] = {"gate_proj", "up_proj", "down_proj"};
    for (int e = 0; e < moe->experts; e++) {
        char *en = g_strdup_printf("%s.%d", ln, e);
        int ex = model_hf_gated_mlp(
            c, list, en, mixtral ? "MixtralBlockSparseTop2MLP" : "Qwen2MoeMLP", h, moe->expert_ffn,
            false, "SiLU", mixtral ? names_mixtral : names_qwen, s * k / E);
        /* the input copy is saved once, by the gate leaf: the expert's first Linear saves none */
        ModelModule *first = model_builder_get(c->b, ex + 1);
        first->saved_bytes = 0;
        g_free(en);
    }
    g_free(ln);
    if (moe->shared_ffn > 0) {
        n = model_hf_sub(bn, "shared_expert");
        model_hf_gated_mlp(c, sparse, n, "Qwen2MoeMLP", h, moe->shared_ffn, false, "SiLU",
                           names_qwen, s);
        g_free(n);
        /* sigmoid(x W) * shared: a Linear(h, 1), then the scale and the add to the routed sum */
        int sg = model_hf_linear(c, sparse, n = model_hf_sub(bn, "shared_expert_gate"), "Linear", h,
                                 1, false, false);
        g_free(n);
        /* its input is the block's (saved by the router); the product with the shared expert
         * keeps that expert's output and the sigmoid's result */
        model_builder_get(c->b, sg)->saved_bytes = act * s * (h + 1);
        model_builder_get(c->b, sg)->mem_bytes_fwd = 5 * act * s * h;
        model_builder_get(c->b, sg)->kernels_fwd += 3;
    }
    g_free(bn);
}

double model_moe_alltoall_bytes_per_token(const Model *model, int ep, double act_bytes)
{
    if (model->moe.experts == 0 || ep <= 1)
        return 0;
    return 2.0 * model->moe.top_k * model->hidden * act_bytes * (ep - 1) / ep;
}

/* Parameters of the modules under a routed-experts ModuleList ("...experts"), all layers. */
uint64_t model_moe_expert_params(const Model *model)
{
    uint64_t total = 0;
    for (int i = 0; i < model->n_modules; i++) {
        const ModelModule *mod = &model->modules[i];
        if (mod->is_list || mod->parent < 0)
            continue;
        const ModelModule *parent = &model->modules[mod->parent];
        if (g_str_has_suffix(parent->name, ".experts") && !strcmp(parent->kind, "ModuleList"))
            total += model_subtree_params(model, i);
    }
    return total;
}

double model_moe_layer_params_per_gpu(const Model *model, int ep)
{
    /* the largest block: its parameters with the routed experts cut to experts/ep */
    double best = 0;
    for (int i = 0; i < model->n_modules; i++) {
        if (!model->modules[i].is_block)
            continue;
        double all = (double)model_subtree_params(model, i), experts = 0;
        for (int j = i + 1;
             j < model->n_modules && model->modules[j].depth > model->modules[i].depth; j++) {
            const ModelModule *mod = &model->modules[j];
            if (!strcmp(mod->kind, "ModuleList") && g_str_has_suffix(mod->name, ".experts"))
                experts += (double)model_subtree_params(model, j);
        }
        best = MAX(best, all - experts + experts / MAX(ep, 1));
    }
    return best;
}
