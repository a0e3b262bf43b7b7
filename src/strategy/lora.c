/* lora: LoRA fine-tuning (Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models",
 * ICLR 2022) as peft's LoraModel sets it up: every base weight frozen (requires_grad=False), and
 * beside each targeted Linear two trainable adapters, A (rank x in) and B (out x rank).
 *
 * Costs the generators see: the adapters' rank x (in + out) parameters per target (kept with
 * their Linear, so in its FSDP unit, as peft's modules are children of the layer they adapt); no
 * weight gradient for a frozen weight, so the backward of a frozen Linear is its input gradient
 * only, one forward's FLOPs instead of two. The adapters' own FLOPs, 2 x rank x (in + out) per
 * token, are left out: below 1 % of the Linear's at rank 16 and hidden 4096. */
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

bool strat_lora_apply(Model *model, int rank, const char *targets, GError **error)
{
    char **names = g_strsplit(targets, ",", -1);
    int n_names = (int)g_strv_length(names);
    int *hits = g_new0(int, MAX(1, n_names));
    uint64_t added = 0, frozen = 0;
    bool ok = true;
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
    g_strfreev(names);
    return ok;
}
