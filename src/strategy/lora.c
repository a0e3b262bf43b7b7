/* lora: LoRA fine-tuning (Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models",
 * ICLR 2022) as peft's LoraModel sets it up: every base weight frozen (requires_grad=False), and
 * beside each targeted Linear two trainable adapters, A (rank x in) and B (out x rank).
 *
 * Costs the generators see: the adapters' rank x (in + out) parameters per target (kept with
 * their Linear, so in its FSDP unit, as peft's modules are children of the layer they adapt); no
 * weight gradient for a frozen weight, so the backward of a frozen Linear is its input gradient
 * only, one forward's FLOPs instead of two. The adapters' own FLOPs, 2 x rank x (in + out) per
 * token, are left out: below 1 % of the Linear's at rank 16 and hidden 4096.
 *
 * What backward keeps (lora_frozen_saved_bytes, lora_adapter_saved_bytes): autograd saves a tensor
 * that one input's derivative alone uses only when that input requires grad
 * (tools/autograd/gen_variable_type.py, emit_save_inputs guards it with
 * `grad_fn->should_compute_output(...)`). mm and addmm use their input `self` only for the weight's
 * gradient (derivatives.yaml `mm: mat2: mm_mat2_backward(grad, self, ...)`, `addmm: mat2:
 * mm_mat2_backward(grad, mat1, ...)`), so a frozen Linear keeps nothing for itself; nor does a
 * frozen norm keep the normalised tensor its weight multiplies (`self.weight * hidden_states`:
 * `mul.Tensor: self: mul_tensor_backward(grad, other, ...)` alone uses `other`). What the input
 * gradients need stays: the norm's fp32 copy, the activation's and the gate product's tensors,
 * attention's Q, K, V (and its output under flash attention, or its softmax without).
 * The adapter, peft's LoraLayer (tuners/lora/layer.py, Linear.forward: `result =
 * self.base_layer(x, ...)`, `result = result + lora_B(lora_A(dropout(x))) * scaling`), keeps x for
 * lora_A's gradient (dropout is nn.Identity at peft's default lora_dropout=0.0; a dropout would
 * keep its output and mask instead) and lora_A's output, rank values a token, for lora_B's; the
 * product by a Python number and the sum keep nothing. A tensor several leaves need is kept once
 * (x of q, k and v, ModelModule.input_leaf). Builders that do not say what is weight-only
 * (ModelModule.weight_only_bytes 0: encoders, gpt_neox and falcon, MoE experts, layer lists)
 * keep full fine-tuning's counts, which over-count. Not modelled: under autocast each adapter
 * casts x itself (a bf16 copy each; x is counted once); the first layer, whose input does not
 * require grad unless transformers' enable_input_require_grads made it (its input norm keeps
 * nothing there; counted as every other layer's). */
#include "strategy.h"

#include "../util/cfg.h"

#include <string.h>

/* peft's default targets (peft/utils/constants.py,
 * TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING): llama q_proj, v_proj; gpt2 c_attn. */
const char *strat_lora_default_targets(const Model *model)
{
    if (!strcmp(model->model_type, "llama"))
        return "q_proj,v_proj";
    if (!strcmp(model->model_type, "gpt2"))
        return "c_attn";
    return NULL;
}

/* A frozen model's saved activations, before the adapters (see the top): each leaf loses what
 * only its weight gradients need. O(modules). */
static void lora_frozen_saved_bytes(Model *model)
{
    for (int i = 0; i < model->n_modules; i++) {
        ModelModule *m = &model->modules[i];
        m->saved_bytes -= MIN(m->saved_bytes, m->weight_only_bytes);
        m->autocast_extra_bytes -= m->weight_only_autocast_bytes;
    }
}

/* An adapter on `target` keeps lora_A's output and, unless another op or another adapter keeps it,
 * the Linear's input (charged where the builder charged it: input_leaf). */
static void lora_adapter_saved_bytes(Model *model, ModelModule *target, int rank, bool *input_kept)
{
    if (target->input_bytes <= 0)
        return; /* a builder that does not say: the input was never taken away */
    target->saved_bytes += target->input_bytes * rank / target->kernel.k;
    int keeper = target->input_leaf;
    if (keeper >= 0 && !input_kept[keeper]) {
        model->modules[keeper].saved_bytes += target->input_bytes;
        input_kept[keeper] = true;
    }
}

bool strat_lora_apply(Model *model, int rank, const char *targets, GError **error)
{
    char **names = g_strsplit(targets, ",", -1);
    int n_names = (int)g_strv_length(names);
    int *hits = g_new0(int, MAX(1, n_names));
    uint64_t added = 0, frozen = 0;
    bool ok = true;
    bool *input_kept = g_new0(bool, MAX(1, model->n_modules));
    lora_frozen_saved_bytes(model);
    for (int i = 0; ok && i < model->n_modules; i++) {
        ModelModule *m = &model->modules[i];
        /* weighted leaves lose their weight gradient, dgrad only; a head tied to the frozen
         * embedding too (attention, which has no weight, keeps its backward) */
        if ((m->params > 0 || m->kernel.kind == MODEL_KERNEL_GEMM) && m->flops_bwd_ratio > 1)
            m->flops_bwd_ratio = 1;
        if (m->params == 0)
            continue;
        m->frozen_params = m->params;
        frozen += m->params;
        const char *dot = strrchr(m->name, '.');
        const char *last = dot ? dot + 1 : m->name;
        for (int t = 0; t < n_names; t++) {
            if (strcmp(g_strstrip(names[t]), last) != 0)
                continue;
            if (m->kernel.kind != MODEL_KERNEL_GEMM) {
                cfg_input_error(error,
                                "option --lora-targets: %s (%s) is not a Linear layer; "
                                "expected names of Linear modules such as q_proj",
                                m->name, m->kind);
                ok = false;
                break;
            }
            uint64_t adapter = (uint64_t)rank * (uint64_t)(m->kernel.k + m->kernel.n);
            m->params += adapter;
            added += adapter;
            lora_adapter_saved_bytes(model, m, rank, input_kept);
            hits[t]++;
        }
    }
    for (int t = 0; ok && t < n_names; t++) {
        if (!hits[t]) {
            cfg_input_error(error,
                            "option --lora-targets: no Linear module of %s is named \"%s\"; "
                            "expected the last part of module names (q_proj, v_proj, "
                            "c_attn, ...)",
                            model->name, names[t]);
            ok = false;
        }
    }
    if (ok) {
        model->params += added;
        model->frozen_params = frozen;
    }
    g_free(hits);
    g_free(input_kept);
    g_strfreev(names);
    return ok;
}
