/* model_hf_parallel: the parallel-block decoders from Hugging Face config.json, model_type
 * gpt_neox and falcon (costs per leaf as model_hf.c describes them). */
#include "model.h"

#include "model_hf_priv.h"
#include "../util/cfg.h"

#include <string.h>

/* GPT-NeoX (modeling_gpt_neox.py) and Falcon (modeling_falcon.py): attention and MLP side by side
 * on the same normed input, x + attn(ln(x)) + mlp(ln'(x)) (use_parallel_residual, parallel_attn),
 * one fused query_key_value Linear, LayerNorms with bias, a plain 4h GELU MLP. GPT-NeoX norms the
 * two branches separately (input_layernorm, post_attention_layernorm), Falcon-7B once
 * (input_layernorm), Falcon-40B's new_decoder_architecture twice (ln_attn, ln_mlp). */
typedef struct {
    bool neox, bias, two_norms, parallel;
    double rotary_fraction; /* of each head's dims that rotary embedding rotates */
} ParallelArch;

static void build_parallel(Model *m, Ctx *c, const ParallelArch *p)
{
    double s = c->s, h = m->hidden, ffn = m->ffn, V = m->vocab, act = c->act;
    double qw = (double)m->heads * m->head_dim, kvw = (double)m->kv_heads * m->head_dim;
    const char *top = p->neox ? "gpt_neox" : "transformer";
    int root =
        model_builder_add(c->b, -1, "", p->neox ? "GPTNeoXForCausalLM" : "FalconForCausalLM");
    int md = model_builder_add(c->b, root, top, p->neox ? "GPTNeoXModel" : "FalconModel");
    char *n = model_hf_sub(top, p->neox ? "embed_in" : "word_embeddings");
    model_hf_leaf(c, md, n, "Embedding", (uint64_t)(V * h), 0, act * s * h, 0, 1), g_free(n);
    int list =
        model_builder_add(c->b, md, n = model_hf_sub(top, p->neox ? "layers" : "h"), "ModuleList");
    char *ln = n;
    model_builder_get(c->b, list)->is_list = true;
    for (int l = 0; l < m->layers; l++) {
        char *bn = g_strdup_printf("%s.%d", ln, l);
        int blk =
            model_builder_add(c->b, list, bn, p->neox ? "GPTNeoXLayer" : "FalconDecoderLayer");
        model_builder_get(c->b, blk)->is_block = true;
        /* the block's residual sum (x + attn + mlp: read three, write one) goes with the first norm
         * of the next block; the first norm charges a two-input add */
        model_hf_layer_norm(c, blk, bn,
                            p->neox        ? "input_layernorm"
                            : p->two_norms ? "ln_attn"
                                           : "input_layernorm",
                            h, true);
        if (p->two_norms)
            model_hf_layer_norm(c, blk, bn, p->neox ? "post_attention_layernorm" : "ln_mlp", h,
                                false);
        int at = model_builder_add(c->b, blk,
                                   n = model_hf_sub(bn, p->neox ? "attention" : "self_attention"),
                                   p->neox ? "GPTNeoXAttention" : "FalconAttention");
        char *an = n;
        int k = model_hf_linear(c, at, n = model_hf_sub(an, "query_key_value"), "Linear", h,
                                qw + 2 * kvw, p->bias, false);
        g_free(n);
        /* rotary embedding on the rotated part of q and k, as in the Llama family (10 accesses
         * in 6 kernels per tensor), and the output's transpose copy */
        model_builder_get(c->b, k)->mem_bytes_fwd =
            10 * act * s * (qw + kvw) * p->rotary_fraction + 2 * act * s * qw;
        model_builder_get(c->b, k)->kernels_fwd += p->rotary_fraction > 0 ? 13 : 1;
        model_hf_attention(c, at, an, m, 0, true);
        model_hf_linear(c, at, n = model_hf_sub(an, "dense"), "Linear", qw, h, p->bias, false),
            g_free(n);
        g_free(an);
        if (!p->parallel &&
            !p->neox) /* Falcon with parallel_attn false: a sequential post-attention norm */
            model_hf_layer_norm(c, blk, bn, "post_attention_layernorm", h, true);
        int mlp = model_builder_add(c->b, blk, n = model_hf_sub(bn, "mlp"),
                                    p->neox ? "GPTNeoXMLP" : "FalconMLP");
        char *mn = n;
        int up = model_hf_linear(c, mlp, n = model_hf_sub(mn, "dense_h_to_4h"), "Linear", h, ffn,
                                 p->bias, false);
        g_free(n);
        if (p->parallel && !p->two_norms) /* same normed input as query_key_value */
            model_builder_get(c->b, up)->saved_bytes = 0;
        int gelu = model_hf_leaf(c, mlp, n = model_hf_sub(mn, "act"),
                                 c->gelu_kernels > 1 ? "FastGELUActivation" : "GELU", 0, 0,
                                 c->gelu_accesses * act * s * ffn, c->gelu_saved * act * s * ffn,
                                 c->gelu_kernels);
        g_free(n);
        model_builder_get(c->b, gelu)->autocast_extra_bytes =
            c->gelu_saved_fp32_autocast * MAX(0, 4 - act) * s * ffn;
        /* Megatron's bias-GeLU keeps its input alone (Korthikanti's 8sbh) */
        model_builder_get(c->b, gelu)->eager_extra_bytes = (c->gelu_saved - 1) * act * s * ffn;
        model_hf_linear(c, mlp, n = model_hf_sub(mn, "dense_4h_to_h"), "Linear", ffn, h, p->bias,
                        false),
            g_free(n);
        g_free(mn);
        g_free(bn);
    }
    g_free(ln);
    model_hf_layer_norm(c, md, top, p->neox ? "final_layer_norm" : "ln_f", h, true);
    model_hf_linear(c, root, p->neox ? "embed_out" : "lm_head", "Linear", h, V, false,
                    m->tied_embeddings);
}

/* gpt_neox and falcon config.json keys (GPTNeoXConfig, FalconConfig defaults). */
bool model_hf_build_parallel(Model *m, const char *file, void *cfg_root, GError **error)
{
    CfgObj *root = cfg_root;
    bool neox = !strcmp(m->model_type, "gpt_neox");
    const int64_t big = 1 << 22;
    int64_t h = 0, layers = 0, heads = 0, vocab = 0, pos = 2048, ffn = 0, kv = 0;
    double rotary = 1;
    bool tied = !neox, bias = neox, parallel = true, multi_query = !neox, new_arch = false;
    bool alibi = false;
    char *act = NULL;
    bool ok = cfg_get_int(root, "hidden_size", true, 1, big, &h, error) &&
              cfg_get_int(root, "num_hidden_layers", true, 1, 100000, &layers, error) &&
              cfg_get_int(root, "num_attention_heads", true, 1, 100000, &heads, error) &&
              cfg_get_int(root, "vocab_size", true, 1, 1 << 26, &vocab, error) &&
              cfg_get_int(root, "max_position_embeddings", false, 1, 1 << 24, &pos, error) &&
              cfg_get_bool(root, "tie_word_embeddings", false, &tied, error);
    if (ok && neox)
        ok = cfg_get_int(root, "intermediate_size", true, 1, big, &ffn, error) &&
             cfg_get_double(root, "rotary_pct", false, 0, 1, &rotary, error) &&
             cfg_get_bool(root, "use_parallel_residual", false, &parallel, error) &&
             cfg_get_bool(root, "attention_bias", false, &bias, error) &&
             cfg_get_string(root, "hidden_act", false, &act, error);
    else if (ok)
        ok = cfg_get_bool(root, "bias", false, &bias, error) &&
             cfg_get_bool(root, "parallel_attn", false, &parallel, error) &&
             cfg_get_bool(root, "multi_query", false, &multi_query, error) &&
             cfg_get_bool(root, "new_decoder_architecture", false, &new_arch, error) &&
             cfg_get_bool(root, "alibi", false, &alibi, error);
    if (!ok)
        return false;
    Ctx c = {NULL, 0, 0, 0, 0, 0, 0};
    if (neox && act && !model_hf_gpt2_activation(act, &c)) {
        cfg_set_error(error, file, "", "hidden_act",
                      "expected gelu, gelu_fast, gelu_new or relu, got \"%s\"", act);
        g_free(act);
        return false;
    }
    g_free(act);
    if (!neox)
        c.gelu_accesses = 2, c.gelu_kernels = 1, c.gelu_saved = 1; /* FalconMLP: nn.GELU() */
    else if (!c.gelu_kernels) /* GPTNeoXConfig's default hidden_act "gelu" */
        c.gelu_accesses = 2, c.gelu_kernels = 1, c.gelu_saved = 1;
    if (alibi) {
        cfg_set_error(error, file, "", "alibi",
                      "ALiBi attention biases are not modelled (fsdpsim's attention kernels are "
                      "FlashAttention's without a bias); expected false");
        return false;
    }
    kv = heads;
    if (!neox && new_arch) {
        ok = cfg_get_int(root, "num_kv_heads", false, 1, heads, &kv, error);
    } else if (!neox && multi_query) {
        kv = 1;
    }
    if (!neox)
        ok = ok && cfg_get_int(root, "ffn_hidden_size", false, 1, big, &ffn, error);
    if (!ok)
        return false;
    if (!neox && ffn == 0)
        ffn = 4 * h;
    if (h % heads != 0 || heads % kv != 0) {
        cfg_set_error(error, file, "", h % heads ? "num_attention_heads" : "num_kv_heads",
                      "expected a divisor of %s (%" G_GINT64_FORMAT ")",
                      h % heads ? "hidden_size" : "num_attention_heads", h % heads ? h : heads);
        return false;
    }
    if (!neox && new_arch && !parallel) {
        cfg_set_error(error, file, "", "parallel_attn",
                      "new_decoder_architecture runs attention and MLP in parallel; expected true");
        return false;
    }
    if (!model_hf_check_keys(m, root, error))
        return false;
    m->token_input = true;
    m->hidden = (int)h, m->layers = (int)layers, m->heads = (int)heads, m->kv_heads = (int)kv;
    m->head_dim = (int)(h / heads), m->ffn = (int)ffn, m->vocab = (int)vocab;
    m->positions = (int)pos, m->tied_embeddings = tied;
    if (m->training.seq_len <= 0)
        m->training.seq_len = (int)MIN(pos, 4096);
    ParallelArch p = {neox, bias, neox || new_arch, parallel, rotary};
    ModelBuilder b = {g_array_new(FALSE, TRUE, sizeof(ModelModule))};
    c.b = &b;
    c.s = m->training.seq_len;
    c.act = hw_dtype_bytes(m->training.param_dtype);
    build_parallel(m, &c, &p);
    model_hf_loss(m, &c, false);
    return model_finish(m, &b, file,
                        "'hidden_size', 'num_hidden_layers', 'intermediate_size', 'vocab_size'",
                        error);
}
