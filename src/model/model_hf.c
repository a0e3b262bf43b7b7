/* model_hf: decoder transformers from Hugging Face config.json keys (model_type gpt2, llama,
 * mistral), built into the module tree PyTorch would show.
 *
 * Costs per leaf, for one sequence of s tokens, hidden size h, activations in the parameter dtype
 * (2 bytes for bf16):
 *  - Linear(in, out): 2*s*in*out FLOPs; saves its input.
 *  - attention core: 4*s^2*h FLOPs (QK^T and AV, counted in full as Megatron-LM's formula does);
 *    saves Q, K, V; without flash attention also the softmax output, dropout mask and dropout
 *    output (5*a*s^2 bytes with 2-byte activations, Korthikanti et al. 2022, arXiv 2205.05198).
 *  - The saved bytes of a GPT-2 block add up to Korthikanti's 34*s*h (+5*a*s^2) per layer.
 *  - Memory-bound kernels (norms, activations, residual adds, dropout) cost their HBM traffic. */
#include "model.h"

#include "../util/cfg.h"

#include <string.h>

typedef struct {
    ModelBuilder *b;
    double s;     /* tokens per sample */
    double act;   /* bytes per activation element */
    /* GPT-2's MLP activation in eager mode: activation elements read + written, kernels */
    double gelu_accesses;
    int gelu_kernels;
} Ctx;

/* GPT-2's activation_function as Hugging Face's ACT2FN runs it in eager mode. gelu_new (GPT-2's
 * default) is the tanh formula written out: pow, three multiplies by constants, two adds, tanh
 * and the final products, 8 kernels, 18 element reads and writes. The others are one kernel. */
static bool gpt2_activation(const char *name, Ctx *c)
{
    if (!name || strcmp(name, "gelu_new") == 0) {
        c->gelu_accesses = 18, c->gelu_kernels = 8;
        return true;
    }
    static const char *const one_kernel[] = {"gelu", "gelu_pytorch_tanh", "relu", "silu", "swish",
                                             NULL};
    for (int i = 0; one_kernel[i]; i++)
        if (strcmp(name, one_kernel[i]) == 0) {
            c->gelu_accesses = 2, c->gelu_kernels = 1;
            return true;
        }
    return false;
}

static int leaf(Ctx *c, int parent, const char *name, const char *kind, uint64_t params,
                double flops, double mem_bytes, double saved_bytes, int kernels)
{
    int i = model_builder_add(c->b, parent, name, kind);
    ModelModule *m = model_builder_get(c->b, i);
    m->params = params;
    m->flops_fwd = flops;
    m->mem_bytes_fwd = mem_bytes;
    m->saved_bytes = saved_bytes;
    m->kernels_fwd = kernels;
    m->flops_bwd_ratio = params > 0 || flops > 0 ? 2 : 1;
    return i;
}

static int linear(Ctx *c, int parent, const char *name, const char *kind, double in, double out,
                  bool bias, bool tied)
{
    uint64_t params = tied ? 0 : (uint64_t)(in * out + (bias ? out : 0));
    int i = leaf(c, parent, name, kind, params, 2 * c->s * in * out, 0, c->act * c->s * in, 1);
    ModelModule *m = model_builder_get(c->b, i);
    m->flops_bwd_ratio = 2; /* dgrad + wgrad, also when tied */
    m->kernel = (ModelKernel){.kind = MODEL_KERNEL_GEMM, .rows = c->s, .n = out, .k = in};
    return i;
}

static char *sub(const char *parent, const char *name)
{
    return *parent ? g_strdup_printf("%s.%s", parent, name) : g_strdup(name);
}

/* Attention core (scaled dot product). kv_ratio = kv_heads / heads (GQA). */
static void attention_core(Ctx *c, int parent, const char *pname, const Model *m)
{
    double s = c->s, h = m->hidden, a = m->heads, kv = (double)m->kv_heads / m->heads;
    double saved = c->act * s * h * (1 + 2 * kv); /* Q, K, V */
    double mem = 0;
    int kernels = 1;
    if (!m->flash_attention) {
        /* softmax out (2 B), dropout mask (1 B), dropout out (2 B) per score, and the
         * traffic of writing and reading the score matrix in each kernel. */
        saved += 5 * a * s * s;
        mem = 3 * 2 * c->act * a * s * s;
        kernels = 5;
    }
    char *name = sub(pname, "core");
    int i = leaf(c, parent, name, "ScaledDotProductAttention", 0, 4 * s * s * h, mem, saved, kernels);
    model_builder_get(c->b, i)->kernel = (ModelKernel){
        .kind = MODEL_KERNEL_ATTENTION, .causal = true, .heads = a, .head_dim = h / a, .seq = s};
    g_free(name);
}

static void build_gpt2(Model *m, Ctx *c)
{
    double s = c->s, h = m->hidden, ffn = m->ffn, V = m->vocab, P = m->positions, act = c->act;
    int root = model_builder_add(c->b, -1, "", "GPT2LMHeadModel");
    int tr = model_builder_add(c->b, root, "transformer", "GPT2Model");
    leaf(c, tr, "transformer.wte", "Embedding", (uint64_t)(V * h), 0, act * s * h, 0, 1);
    leaf(c, tr, "transformer.wpe", "Embedding", (uint64_t)(P * h), 0, 3 * act * s * h, 0, 2);
    leaf(c, tr, "transformer.drop", "Dropout", 0, 0, 2 * act * s * h + s * h, s * h, 1);
    int list = model_builder_add(c->b, tr, "transformer.h", "ModuleList");
    model_builder_get(c->b, list)->is_list = true;
    for (int l = 0; l < m->layers; l++) {
        char *bn = g_strdup_printf("transformer.h.%d", l);
        int blk = model_builder_add(c->b, list, bn, "GPT2Block");
        model_builder_get(c->b, blk)->is_block = true;
        char *n;
        /* LayerNorm: read + write, saves its input. The residual add before ln_2 and after the
         * block are charged to the dropout leaves (read two, write one). */
        leaf(c, blk, n = sub(bn, "ln_1"), "LayerNorm", (uint64_t)(2 * h), 0, 2 * act * s * h,
             act * s * h, 1), g_free(n);
        int at = model_builder_add(c->b, blk, n = sub(bn, "attn"), "GPT2Attention");
        char *an = n;
        linear(c, at, n = sub(an, "c_attn"), "Conv1D", h, 3 * h, true, false), g_free(n);
        attention_core(c, at, an, m);
        linear(c, at, n = sub(an, "c_proj"), "Conv1D", h, h, true, false), g_free(n);
        leaf(c, at, n = sub(an, "resid_dropout"), "Dropout", 0, 0, 5 * act * s * h + s * h, s * h,
             2), g_free(n);
        g_free(an);
        leaf(c, blk, n = sub(bn, "ln_2"), "LayerNorm", (uint64_t)(2 * h), 0, 2 * act * s * h,
             act * s * h, 1), g_free(n);
        int mlp = model_builder_add(c->b, blk, n = sub(bn, "mlp"), "GPT2MLP");
        char *mn = n;
        linear(c, mlp, n = sub(mn, "c_fc"), "Conv1D", h, ffn, true, false), g_free(n);
        /* the activation in eager mode (gpt2_activation) */
        leaf(c, mlp, n = sub(mn, "act"), c->gelu_kernels > 1 ? "NewGELUActivation" : "GELUActivation",
             0, 0, c->gelu_accesses * act * s * ffn, act * s * ffn, c->gelu_kernels),
            g_free(n);
        linear(c, mlp, n = sub(mn, "c_proj"), "Conv1D", ffn, h, true, false), g_free(n);
        leaf(c, mlp, n = sub(mn, "dropout"), "Dropout", 0, 0, 5 * act * s * h + s * h, s * h, 2),
            g_free(n);
        g_free(mn);
        g_free(bn);
    }
    leaf(c, tr, "transformer.ln_f", "LayerNorm", (uint64_t)(2 * h), 0, 2 * act * s * h,
         act * s * h, 1);
    linear(c, root, "lm_head", "Linear", h, V, false, m->tied_embeddings);
}

static void build_llama(Model *m, Ctx *c)
{
    double s = c->s, h = m->hidden, ffn = m->ffn, V = m->vocab, act = c->act;
    double kvh = h * m->kv_heads / m->heads; /* width of K and V projections */
    int root = model_builder_add(c->b, -1, "", "LlamaForCausalLM");
    int md = model_builder_add(c->b, root, "model", "LlamaModel");
    leaf(c, md, "model.embed_tokens", "Embedding", (uint64_t)(V * h), 0, act * s * h, 0, 1);
    int list = model_builder_add(c->b, md, "model.layers", "ModuleList");
    model_builder_get(c->b, list)->is_list = true;
    for (int l = 0; l < m->layers; l++) {
        char *bn = g_strdup_printf("model.layers.%d", l);
        int blk = model_builder_add(c->b, list, bn, "LlamaDecoderLayer");
        model_builder_get(c->b, blk)->is_block = true;
        char *n;
        /* RMSNorm in fp32, as HF LlamaRMSNorm runs in eager mode: to(fp32) (read 2 B, write 4),
         * pow (4, 4), mean (4), x * rsqrt (4, 4), to(bf16) (4, 2), * weight (2, 2): 36 B per
         * element in 6 kernels (18 x 2-byte activations); saves its input. */
        leaf(c, blk, n = sub(bn, "input_layernorm"), "LlamaRMSNorm", (uint64_t)h, 0,
             18 * act * s * h, act * s * h, 6), g_free(n);
        int at = model_builder_add(c->b, blk, n = sub(bn, "self_attn"), "LlamaAttention");
        char *an = n;
        /* q, k and v share one saved input. */
        int q = linear(c, at, n = sub(an, "q_proj"), "Linear", h, h, false, false);
        g_free(n);
        int k = linear(c, at, n = sub(an, "k_proj"), "Linear", h, kvh, false, false);
        g_free(n);
        int v = linear(c, at, n = sub(an, "v_proj"), "Linear", h, kvh, false, false);
        g_free(n);
        (void)q;
        model_builder_get(c->b, k)->saved_bytes = 0;
        model_builder_get(c->b, v)->saved_bytes = 0;
        /* rotary embedding on q and k (HF apply_rotary_pos_emb): x * cos (read, write), rotate_half's
         * negation of one half and cat (1 + 2), * sin (2), the sum (3): 10 element accesses in 6
         * kernels per tensor; and the attention output's transpose(1, 2).contiguous() copy */
        model_builder_get(c->b, k)->mem_bytes_fwd = 10 * act * s * (h + kvh) + 2 * act * s * h;
        model_builder_get(c->b, k)->kernels_fwd += 13;
        attention_core(c, at, an, m);
        linear(c, at, n = sub(an, "o_proj"), "Linear", h, h, false, false), g_free(n);
        g_free(an);
        /* residual add (read two, write one) charged to the following norm */
        leaf(c, blk, n = sub(bn, "post_attention_layernorm"), "LlamaRMSNorm", (uint64_t)h, 0,
             21 * act * s * h, act * s * h, 7), g_free(n);
        int mlp = model_builder_add(c->b, blk, n = sub(bn, "mlp"), "LlamaMLP");
        char *mn = n;
        int gate = linear(c, mlp, n = sub(mn, "gate_proj"), "Linear", h, ffn, false, false);
        g_free(n);
        int up = linear(c, mlp, n = sub(mn, "up_proj"), "Linear", h, ffn, false, false);
        g_free(n);
        (void)gate;
        model_builder_get(c->b, up)->saved_bytes = 0; /* same input as gate_proj */
        /* SiLU(gate) * up: saves gate and up outputs (the product is down_proj's input). */
        leaf(c, mlp, n = sub(mn, "act_fn"), "SiLU", 0, 0, 5 * act * s * ffn, 2 * act * s * ffn, 2),
            g_free(n);
        linear(c, mlp, n = sub(mn, "down_proj"), "Linear", ffn, h, false, false), g_free(n);
        g_free(mn);
        g_free(bn);
    }
    leaf(c, md, "model.norm", "LlamaRMSNorm", (uint64_t)h, 0, 21 * act * s * h, act * s * h, 7);
    linear(c, root, "lm_head", "Linear", h, V, false, m->tied_embeddings);
}

/* Cross-entropy over the vocabulary: HF upcasts logits to fp32; saves the bf16 logits and the
 * fp32 copy (6*s*V bytes), and reads/writes them in softmax and its backward. */
static void loss_leaf(Model *m, Ctx *c)
{
    double sv = c->s * m->vocab;
    leaf(c, 0, "loss", "CrossEntropyLoss", 0, 0, (c->act + 4 + 4 + 4) * sv, (c->act + 4) * sv, 4);
}

/* Keys of Hugging Face configs that do not change the parameter count or cost model. */
static const char *const hf_ignored[] = {
    "_name_or_path", "architectures", "transformers_version", "bos_token_id", "eos_token_id",
    "pad_token_id", "initializer_range", "use_cache", "layer_norm_epsilon", "layer_norm_eps",
    "rms_norm_eps", "rope_theta", "rope_scaling", "attention_dropout", "attn_pdrop",
    "embd_pdrop", "resid_pdrop", "summary_activation", "summary_first_dropout",
    "summary_proj_to_labels", "summary_type", "summary_use_proj", "task_specific_params",
    "scale_attn_weights", "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn",
    "pretraining_tp", "hidden_act", "sliding_window", "tokenizer_class",
    "output_past", "n_ctx", "prefix", "id2label", "label2id", "gradient_checkpointing",
    "max_sequence_length", "bias", "model_name", "do_sample", "max_length", "temperature",
    "top_p", "torch_dtype", "use_sliding_window", "max_window_layers", "tie_embeddings", NULL};

static bool get_first_int(CfgObj *co, const char *a, const char *b, bool required, int64_t max,
                          int64_t *out, GError **error)
{
    if (cfg_has(co, a) || !b)
        return cfg_get_int(co, a, required, 1, max, out, error);
    if (cfg_has(co, b))
        return cfg_get_int(co, b, required, 1, max, out, error);
    return cfg_get_int(co, a, required, 1, max, out, error);
}

bool model_hf_build(Model *m, const char *file, void *root_obj, GError **error)
{
    CfgObj *root = root_obj;
    char *type = NULL;
    if (!cfg_get_string(root, "model_type", true, &type, error))
        return false;
    bool gpt2 = strcmp(type, "gpt2") == 0;
    bool llama = strcmp(type, "llama") == 0 || strcmp(type, "mistral") == 0;
    m->model_type = type;
    if (!gpt2 && !llama) {
        cfg_set_error(error, file, "", "model_type",
                      "expected \"gpt2\", \"llama\" or \"mistral\" (a Hugging Face decoder "
                      "config.json), or a layer list with \"format\": \"fsdpsim-layers\"; got \"%s\"",
                      type);
        return false;
    }
    m->token_input = true;
    const int64_t big = 1 << 22;
    int64_t h = 0, layers = 0, heads = 0, kv = 0, ffn = 0, vocab = 0, pos = 0;
    bool tied = gpt2, mlp_bias = false, attn_bias = false;
    bool ok = get_first_int(root, gpt2 ? "n_embd" : "hidden_size", "hidden_size", true, big, &h, error) &&
              get_first_int(root, gpt2 ? "n_layer" : "num_hidden_layers", "num_hidden_layers", true, 100000, &layers, error) &&
              get_first_int(root, gpt2 ? "n_head" : "num_attention_heads", "num_attention_heads", true, 100000, &heads, error) &&
              cfg_get_int(root, "vocab_size", true, 1, 1 << 26, &vocab, error) &&
              get_first_int(root, gpt2 ? "n_positions" : "max_position_embeddings", "max_position_embeddings", gpt2, 1 << 24, &pos, error) &&
              cfg_get_bool(root, "tie_word_embeddings", false, &tied, error) &&
              cfg_get_bool(root, "mlp_bias", false, &mlp_bias, error) &&
              cfg_get_bool(root, "attention_bias", false, &attn_bias, error);
    if (!ok)
        return false;
    if (gpt2) {
        /* n_inner: null means 4 * n_embd */
        const cJSON *inner = cfg_item(root, "n_inner");
        ffn = 4 * h;
        if (inner && !cJSON_IsNull(inner) && !cfg_get_int(root, "n_inner", false, 1, big, &ffn, error))
            return false;
        kv = heads;
    } else {
        kv = heads;
        if (!cfg_get_int(root, "num_key_value_heads", false, 1, heads, &kv, error) ||
            !cfg_get_int(root, "intermediate_size", true, 1, big, &ffn, error))
            return false;
        int64_t head_dim = h / heads;
        if (!cfg_get_int(root, "head_dim", false, 1, big, &head_dim, error))
            return false;
        if (head_dim * heads != h) {
            cfg_set_error(error, file, "", "head_dim",
                          "fsdpsim models head_dim * num_attention_heads == hidden_size only");
            return false;
        }
    }
    if (mlp_bias || attn_bias) {
        cfg_set_error(error, file, "", mlp_bias ? "mlp_bias" : "attention_bias",
                      "biases in Llama projections are not modelled yet; expected false");
        return false;
    }
    if (h % heads != 0) {
        cfg_set_error(error, file, "", gpt2 ? "n_head" : "num_attention_heads",
                      "expected a divisor of the hidden size (%" G_GINT64_FORMAT ")", h);
        return false;
    }
    if (heads % kv != 0) {
        cfg_set_error(error, file, "", "num_key_value_heads",
                      "expected a divisor of num_attention_heads (%" G_GINT64_FORMAT ")", heads);
        return false;
    }
    char *activation = NULL;
    Ctx c = {NULL, 0, 0, 0, 0};
    if (gpt2 && !cfg_get_string(root, "activation_function", false, &activation, error))
        return false;
    if (gpt2 && !gpt2_activation(activation, &c)) {
        cfg_set_error(error, file, "", "activation_function",
                      "expected gelu_new, gelu, gelu_pytorch_tanh, relu or silu, got \"%s\"",
                      activation);
        g_free(activation);
        return false;
    }
    g_free(activation);
    cfg_obj_ignore(root, hf_ignored);
    if (!cfg_obj_check_unknown(root, "fsdpsim reads Hugging Face config.json keys of gpt2 and "
                                     "llama models; remove the key or report it if it is a real "
                                     "Hugging Face setting",
                               error))
        return false;
    m->hidden = (int)h;
    m->layers = (int)layers;
    m->heads = (int)heads;
    m->kv_heads = (int)kv;
    m->ffn = (int)ffn;
    m->vocab = (int)vocab;
    m->positions = (int)pos;
    m->tied_embeddings = tied;
    if (m->training.seq_len <= 0)
        m->training.seq_len = pos > 0 ? (int)MIN(pos, 4096) : 2048;
    if (gpt2 && m->training.seq_len > pos) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "%s: sequence length %d exceeds n_positions (%" G_GINT64_FORMAT
                    "): GPT-2 has learned position embeddings for at most that many tokens",
                    file, m->training.seq_len, pos);
        return false;
    }
    ModelBuilder b = {g_array_new(FALSE, TRUE, sizeof(ModelModule))};
    c.b = &b;
    c.s = m->training.seq_len;
    c.act = hw_dtype_bytes(m->training.param_dtype);
    if (gpt2)
        build_gpt2(m, &c);
    else
        build_llama(m, &c);
    loss_leaf(m, &c);
    return model_finish(m, &b, file,
                        gpt2 ? "'n_embd', 'n_layer', 'n_inner', 'vocab_size'"
                             : "'hidden_size', 'num_hidden_layers', 'intermediate_size', "
                               "'vocab_size'",
                        error);
}
