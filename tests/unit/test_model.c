/* model: parameter counts of every shipped model equal their published totals; per-layer
 * activation memory and FLOPs follow Korthikanti et al. and Narayanan et al. */
#include "testutil.h"

static const char *const shipped[] = {
    "models/gpt.json",        "models/gpt2.json",       "models/gpt2-xl.json",
    "models/gpt3-175b.json",  "models/llama2-7b.json",  "models/llama2-70b.json",
    "models/llama3-8b.json",  "models/resnet50.json",   "models/mistral-7b.json",
    "models/qwen2.5-7b.json", "models/gemma-7b.json",   "models/gemma2-9b.json",
    "models/phi3-mini.json",  "models/gpt-neox-20b.json", "models/falcon-7b.json",
    "models/bert-large.json", "models/roberta-large.json", "models/vit-l16.json",
    "models/resnet18.json",   "models/resnet18-cifar10.json", "models/mixtral-8x7b.json",
    "models/qwen1.5-moe-a2.7b.json", "models/t5-base.json",
};

static void test_published_param_counts(void **state)
{
    for (size_t i = 0; i < G_N_ELEMENTS(shipped); i++) {
        Model *m = load_model(shipped[i], NULL);
        if (m->published_params == 0)
            fail_msg("%s has no published_params", shipped[i]);
        if (m->params != m->published_params)
            fail_msg("%s: %" G_GUINT64_FORMAT " parameters, published %" G_GUINT64_FORMAT, shipped[i],
                     m->params, m->published_params);
        model_free(m);
    }
}

/* Independent of the files: the totals everyone quotes. */
static void test_known_totals(void **state)
{
    struct {
        const char *file;
        uint64_t params;
    } known[] = {{"models/gpt2.json", 124439808ULL},        {"models/gpt2-xl.json", 1557611200ULL},
                 {"models/llama2-7b.json", 6738415616ULL},  {"models/llama2-70b.json", 68976648192ULL},
                 {"models/llama3-8b.json", 8030261248ULL},  {"models/resnet50.json", 25557032ULL},
                 /* keras-hub presets' "params" (mistral_7b_en, gemma_7b_en, gemma2_9b_en,
                  * phi3_mini_4k_instruct_en: keras_hub/src/models/<name>/<name>_presets.py) */
                 {"models/mistral-7b.json", 7241732096ULL}, {"models/gemma-7b.json", 8537680896ULL},
                 {"models/gemma2-9b.json", 9241705984ULL},  {"models/phi3-mini.json", 3821079552ULL},
                 /* Qwen2.5-7B model card (7.61B) recomputed from its config: 28 layers of
                  * q/k/v with biases; GPT-NeoX-20B paper (arXiv 2204.06745) Table 1 */
                 {"models/qwen2.5-7b.json", 7615616512ULL},
                 {"models/gpt-neox-20b.json", 20554567680ULL},
                 /* Falcon-7B (arXiv 2311.16867: 7B), exact from its config: multi-query */
                 {"models/falcon-7b.json", 6921720704ULL},
                 /* keras-hub bert_large_en_uncased (BertModel with pooler): 335141888, plus the
                  * pretraining heads: MLM transform 1049600 + 2048, decoder bias 30522, NSP 2050 */
                 {"models/bert-large.json", 335141888ULL + 1049600 + 2048 + 30522 + 2050},
                 /* RoBERTa paper (arXiv 1907.11692): 355M; exact from its config */
                 {"models/roberta-large.json", 355412057ULL},
                 /* torchvision vit_l_16 docs: num_params 304,326,632 */
                 {"models/vit-l16.json", 304326632ULL},
                 /* torchvision resnet18 docs: num_params 11,689,512; with a 10-class fc
                  * (512 x 10 + 10 instead of 512 x 1000 + 1000) for CIFAR-10 */
                 {"models/resnet18.json", 11689512ULL},
                 {"models/resnet18-cifar10.json", 11689512ULL - 513000 + 5130},
                 /* Mixtral-8x7B model card: 46.7B; Qwen1.5-MoE-A2.7B model card: 14.3B (exact
                  * sums from their configs) */
                 {"models/mixtral-8x7b.json", 46702792704ULL},
                 {"models/qwen1.5-moe-a2.7b.json", 14315784192ULL},
                 /* T5 paper (arXiv 1910.10683) Table 14: 220 million; exact from its config */
                 {"models/t5-base.json", 222903552ULL}};
    for (size_t i = 0; i < G_N_ELEMENTS(known); i++) {
        Model *m = load_model(known[i].file, NULL);
        assert_int_equal(m->params, known[i].params);
        model_free(m);
    }
}

/* Korthikanti et al. (arXiv 2205.05198) eq. 1: a GPT layer saves s*b*h*(34 + 5*a*s/h) bytes with
 * 2-byte activations; 34*s*b*h with flash attention (no score matrix). Their GELU is one fused
 * kernel keeping its input (2 x 4h); GPT-2's gelu_new in eager transformers keeps 4 tensors of
 * 4h (model_hf.c model_hf_gpt2_activation): 3 x 2 x 4h = 24h more, 58*s*b*h. */
static void test_gpt_layer_activation_bytes(void **state)
{
    for (int flash = 0; flash <= 1; flash++) {
        ModelOverrides ov = {.flash_attention = flash, .seq_len = 512};
        Model *m = load_model("models/gpt2.json", &ov);
        int block = -1;
        for (int i = 0; i < m->n_modules; i++)
            if (strcmp(m->modules[i].name, "transformer.h.3") == 0)
                block = i;
        assert_true(block > 0);
        double saved = 0;
        for (int i = block + 1; i < m->n_modules && m->modules[i].depth > m->modules[block].depth; i++)
            saved += m->modules[i].saved_bytes;
        double s = 512, h = m->hidden, a = m->heads;
        double want = s * h * (34 + 24) + (flash ? 0 : 5 * a * s * s);
        assert_close(saved, want, 1e-12);
        model_free(m);
    }
}

/* What autograd keeps of one Llama-2-7B layer in eager transformers, per token, bf16 (model_hf.c
 * rms_norm and model_hf_gated_mlp, from modeling_llama.py and derivatives.yaml): each of the two
 * LlamaRMSNorms its fp32 copy and the normalised bf16 tensor (6h), the q/k/v projections their
 * shared input (2h), flash attention Q, K, V (2 x 3h), o_proj its input (2h), gate/up their
 * shared input (2h), SiLU's input, its output and the up output (3 x 2 ffn), down_proj its input
 * (2 ffn): 186368 B per token for h 4096, ffn 11008. The norms were counted as their bf16
 * input (2h) and the MLP as two ffn tensors: 131584 B, 29.4 % low. */
static void test_llama_layer_activation_bytes(void **state)
{
    Model *m = load_model("models/llama2-7b.json", &(ModelOverrides){.flash_attention = -1});
    int block = -1;
    for (int i = 0; i < m->n_modules; i++)
        if (strcmp(m->modules[i].name, "model.layers.3") == 0)
            block = i;
    assert_true(block > 0);
    double saved = 0, first = 0;
    for (int i = block + 1; i < m->n_modules && m->modules[i].depth > m->modules[block].depth; i++) {
        if (first == 0)
            first = m->modules[i].saved_bytes;
        saved += m->modules[i].saved_bytes;
    }
    double h = m->hidden, ffn = m->ffn;
    /* the first saving leaf stands for the block's input (checkpointing, pipeline sends): the
     * bf16 hidden state, the norm's other 4 B charged to q_proj */
    assert_close(first, 2 * h * m->training.seq_len, 1e-12);
    assert_close(saved / m->training.seq_len, 2 * 6 * h + 2 * h + 2 * 3 * h + 2 * h + 2 * h +
                                                  3 * 2 * ffn + 2 * ffn, 1e-12);
    assert_close(saved / m->training.seq_len, 186368, 1e-12);
    model_free(m);
}

/* Narayanan et al. (SC'21, arXiv 2104.04473): forward FLOPs of a GPT = 24*B*s*l*h^2*(1 + s/(6h)
 * + V/(16*l*h)) counting the logit layer once in forward (2*B*s*h*V). */
static void test_gpt_forward_flops(void **state)
{
    Model *m = load_model("models/gpt3-175b.json", NULL);
    double s = m->training.seq_len, h = m->hidden, l = m->layers, V = m->vocab;
    double want = 24 * s * l * h * h * (1 + s / (6 * h)) + 2 * s * h * V;
    assert_close(model_flops_fwd_per_sample(m), want, 1e-12);
    /* training FLOPs without recompute: 3x forward for every matmul */
    assert_close(model_flops_train_per_sample(m), 3 * want, 1e-12);
    model_free(m);
}

static void test_resnet50_flops(void **state)
{
    Model *m = load_model("models/resnet50.json", NULL);
    /* torchvision: 4.09 GMACs per 224x224 image = 8.18 GFLOPs */
    assert_close(model_flops_fwd_per_sample(m), 8.18e9, 0.01);
    assert_false(m->token_input);
    int blocks = 0;
    for (int i = 0; i < m->n_modules; i++)
        blocks += m->modules[i].is_block;
    assert_int_equal(blocks, 16); /* 3 + 4 + 6 + 3 Bottlenecks */
    model_free(m);
}

static void expect_error(const char *json, const char *needle)
{
    char *dir = g_dir_make_tmp("fsdpsim-XXXXXX", NULL);
    char *path = g_build_filename(dir, "m.json", NULL);
    g_file_set_contents(path, json, -1, NULL);
    GError *error = NULL;
    Model *m = model_load(path, NULL, &error);
    assert_null(m);
    assert_non_null(error);
    assert_int_equal(error->code, FSD_ERROR_INPUT);
    if (!strstr(error->message, needle) || !strstr(error->message, path))
        fail_msg("message \"%s\" should name %s and %s", error->message, path, needle);
    g_error_free(error);
    g_unlink(path);
    g_rmdir(dir);
    g_free(path);
    g_free(dir);
}

static void test_bad_models(void **state)
{
    expect_error("{\"model_type\": \"llama\", \"hidden_size\": -4}", "hidden_size");
    expect_error("{\"model_type\": \"mamba\"}", "model_type");
    expect_error("{\"model_type\": \"gpt2\", \"n_embd\": 64, \"n_layer\": 2, \"n_head\": 4, "
                 "\"vocab_size\": 100, \"n_positions\": 64, \"n_embdd\": 3}", "n_embdd");
    expect_error("{\"model_type\": \"gpt2\", \"n_embd\": 64, \"n_layer\": 2, \"n_head\": 5, "
                 "\"vocab_size\": 100, \"n_positions\": 64}", "n_head");
    expect_error("{\"model_type\": \"gpt2\", \"n_embd\": 64, \"n_layer\": 2, \"n_head\": 4, "
                 "\"vocab_size\": 100, \"n_positions\": 64, \"fsdpsim\": {\"training\": "
                 "{\"seq_len\": 0}}}", "seq_len");
    expect_error("{\"model_type\": \"gpt2\", \"n_embd\": 64", "malformed JSON");
    expect_error("{\"format\": \"fsdpsim-layers\", \"modules\": [{\"name\": \"a.b\", \"kind\": "
                 "\"linear\", \"params\": 1, \"flops_fwd\": 1, \"output_elems\": 1}]}", "parent");
    /* a memory-bound leaf (its flops_fwd dropped) is no parent either: its cost was lost */
    expect_error("{\"format\": \"fsdpsim-layers\", \"modules\": [{\"name\": \"r\", \"kind\": "
                 "\"relu\", \"flops_fwd\": 1, \"output_elems\": 1}, {\"name\": \"r.c\", "
                 "\"kind\": \"conv2d\", \"params\": 1, \"flops_fwd\": 1, \"output_elems\": 1}]}",
                 "parent \"r\" is a leaf");
    /* a sample size the model has no use for: image_size of a decoder, seq_len of a CNN */
    expect_error("{\"model_type\": \"gpt2\", \"n_embd\": 64, \"n_layer\": 2, \"n_head\": 4, "
                 "\"vocab_size\": 100, \"n_positions\": 64, \"fsdpsim\": {\"training\": "
                 "{\"image_size\": 224}}}",
                 "'fsdpsim.training.image_size': ");
    expect_error("{\"format\": \"fsdpsim-layers\", \"modules\": [{\"name\": \"c\", \"kind\": "
                 "\"conv2d\", \"params\": 1, \"flops_fwd\": 1, \"output_elems\": 1}], "
                 "\"fsdpsim\": {\"training\": {\"seq_len\": 128}}}",
                 "'fsdpsim.training.seq_len': ");
    /* "head_dim": null is no head dim: 64 / 3 heads was taken as 21 */
    expect_error("{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_hidden_layers\": 2, "
                 "\"num_attention_heads\": 3, \"intermediate_size\": 128, \"vocab_size\": 100, "
                 "\"head_dim\": null}",
                 "'num_attention_heads': expected a divisor of hidden_size (64)");
}

/* Counts beyond what sums of uint64 and conversions from double hold: the sum of parameters
 * wrapped (n_embd 4194304 x n_layer 100000 reported half of them), the byte counts cast from
 * double gave 0 B of gradients at 20,000 layers. Both are refused, naming the fields. */
/* Index of the module called `name`, failing the test when there is none. */
static int module_index(const Model *m, const char *name)
{
    for (int i = 0; i < m->n_modules; i++)
        if (!strcmp(m->modules[i].name, name))
            return i;
    fail_msg("%s has no module %s", m->file, name);
    return -1;
}

/* Sliding windows change the attention leaf: Mistral-7B's 4096-token window at 8192 tokens halves
 * its FLOPs (each query sees 4096 keys: 4*s*w*a*d) and tells the kernel model the window; Gemma 2
 * windows its even layers only (Gemma2Attention: is_sliding = not bool(layer_idx % 2)); Qwen2.5
 * has use_sliding_window false: no window. */
static void test_sliding_window_attention(void **state)
{
    Model *m = load_model("models/mistral-7b.json", NULL);
    const ModelModule *core = &m->modules[module_index(m, "model.layers.0.self_attn.core")];
    assert_int_equal(m->sliding_window, 4096);
    assert_close(core->flops_fwd, 4.0 * 8192 * 4096 * 32 * 128, 1e-12);
    assert_close(core->kernel.window, 4096, 0);
    model_free(m);
    ModelOverrides shorter = {.seq_len = 2048, .flash_attention = -1};
    m = load_model("models/mistral-7b.json", &shorter); /* window beyond the sequence: no effect */
    core = &m->modules[module_index(m, "model.layers.0.self_attn.core")];
    assert_close(core->flops_fwd, 4.0 * 2048 * 2048 * 32 * 128, 1e-12);
    assert_close(core->kernel.window, 0, 0);
    model_free(m);
    m = load_model("models/gemma2-9b.json", NULL);
    assert_close(m->modules[module_index(m, "model.layers.0.self_attn.core")].kernel.window, 4096, 0);
    assert_close(m->modules[module_index(m, "model.layers.1.self_attn.core")].kernel.window, 0, 0);
    /* head_dim 256 with 16 heads: q_proj is 3584 x 4096, not square */
    assert_int_equal(m->modules[module_index(m, "model.layers.0.self_attn.q_proj")].params,
                     3584ULL * 16 * 256);
    assert_non_null(strstr(m->modules[module_index(m, "model.layers.0")].kind, "Gemma2"));
    model_free(m);
    m = load_model("models/qwen2.5-7b.json", NULL);
    assert_int_equal(m->sliding_window, 0);
    /* Qwen2: q, k, v carry biases, o_proj none */
    assert_int_equal(m->modules[module_index(m, "model.layers.0.self_attn.q_proj")].params,
                     3584ULL * 3584 + 3584);
    assert_int_equal(m->modules[module_index(m, "model.layers.0.self_attn.o_proj")].params,
                     3584ULL * 3584);
    model_free(m);
}

/* Encoders attend both ways (no causal mask); ViT's sample is an image of 197 tokens whose forward
 * FLOPs match torchvision's published 61.55 GFLOPS (multiply-adds, so 2x in FLOPs) for vit_l_16
 * (https://pytorch.org/vision/stable/models/generated/torchvision.models.vit_l_16.html). */
static void test_encoders(void **state)
{
    Model *m = load_model("models/bert-large.json", NULL);
    const ModelModule *core = &m->modules[module_index(m, "bert.encoder.layer.0.attention.self.core")];
    assert_false(core->kernel.causal);
    assert_true(m->token_input);
    model_free(m);
    /* T5: the decoder's self-attention is causal, its cross-attention and the encoder's are not;
     * T5Attention has no fused kernel (position bias), so it is costed eager */
    m = load_model("models/t5-base.json", NULL);
    assert_false(m->modules[module_index(m, "encoder.block.0.layer.0.SelfAttention.core")].kernel.causal);
    assert_true(m->modules[module_index(m, "decoder.block.3.layer.0.SelfAttention.core")].kernel.causal);
    assert_false(m->modules[module_index(m, "decoder.block.3.layer.1.EncDecAttention.core")].kernel.causal);
    assert_false(m->flash_attention);
    model_free(m);
    m = load_model("models/vit-l16.json", NULL);
    assert_false(m->token_input);
    assert_int_equal(m->training.seq_len, 197);
    assert_close(model_flops_fwd_per_sample(m), 2 * 61.55e9, 0.01);
    model_free(m);
    /* image 65536 in patches of 1: 2^32 tokens overflowed the sequence length */
    expect_error("{\"model_type\": \"vit\", \"hidden_size\": 64, \"num_hidden_layers\": 2, "
                 "\"num_attention_heads\": 4, \"intermediate_size\": 128, \"image_size\": 65536, "
                 "\"patch_size\": 1}",
                 "'patch_size': (image_size / patch_size)^2 = 4294967296 patches");
    /* RoBERTa's positions after padding_idx: a table of 2 left sequences of 0 tokens */
    expect_error("{\"model_type\": \"roberta\", \"hidden_size\": 64, \"num_hidden_layers\": 2, "
                 "\"num_attention_heads\": 4, \"intermediate_size\": 128, \"vocab_size\": 100, "
                 "\"max_position_embeddings\": 2}",
                 "'max_position_embeddings': RoBERTa's first two positions");
    /* a ViT's sample size is its config's: the training section's seq_len or another image_size
     * were dropped without a word */
#define VIT(training)                                                                              \
    "{\"model_type\": \"vit\", \"hidden_size\": 64, \"num_hidden_layers\": 2, "                    \
    "\"num_attention_heads\": 4, \"intermediate_size\": 128, \"image_size\": 32, "                 \
    "\"patch_size\": 8, \"fsdpsim\": {\"training\": {" training "}}}"
    expect_error(VIT("\"seq_len\": 1024"), "'fsdpsim.training.seq_len': ");
    expect_error(VIT("\"image_size\": 384"),
                 "'fsdpsim.training.image_size': 384, but the config's image_size");
    GError *error = NULL;
    char *dir = g_dir_make_tmp("fsdpsim-XXXXXX", NULL);
    char *path = g_build_filename(dir, "vit.json", NULL);
    g_file_set_contents(path, VIT("\"image_size\": 32"), -1, NULL);
#undef VIT
    m = model_load(path, NULL, &error);
    assert_non_null(m); /* the config's own size */
    assert_int_equal(m->training.seq_len, 17);
    model_free(m);
    g_unlink(path), g_rmdir(dir);
    g_free(path), g_free(dir);
}

/* Under torch.compile AOTAutograd's min-cut partitioner recomputes pointwise ops in backward and
 * saves what a fused kernel keeps (model.c fuse_elementwise): a Llama-2-7B layer 131584 B a
 * token (each RMSNorm its input, SwiGLU its two inputs), not eager's 186368; GPT-2's gelu_new its
 * input alone, with no fp32 tensors under autocast, while a LayerNorm still keeps its fp32 input
 * there. Before the fix a compiled run kept eager's counts. */
static void test_compile_keeps_fused_counts(void **state)
{
    Model *m = load_model("models/llama2-7b.json",
                          &(ModelOverrides){.flash_attention = -1, .compile = true});
    int block = module_index(m, "model.layers.3");
    double saved = 0;
    for (int i = block + 1; i < m->n_modules && m->modules[i].depth > m->modules[block].depth; i++)
        saved += m->modules[i].saved_bytes;
    assert_close(saved / m->training.seq_len, 131584, 1e-12);
    model_free(m);
    m = load_model("models/gpt2.json", &(ModelOverrides){.flash_attention = -1, .compile = true});
    double s = m->training.seq_len, h = m->hidden;
    const ModelModule *gelu = &m->modules[module_index(m, "transformer.h.3.mlp.act")];
    assert_close(gelu->saved_bytes, 2 * s * m->ffn, 1e-12);
    assert_close(gelu->autocast_extra_bytes, 0, 0);
    assert_close(m->modules[module_index(m, "transformer.h.3.ln_2")].autocast_extra_bytes,
                 2 * s * h, 1e-12);
    model_free(m);
}

/* T5LayerNorm in eager mode (model_hf_enc.c t5_norm, modeling_t5.py): pow keeps the fp32 copy,
 * the multiply by rsqrt its bf16 input, the multiply by the weight the normalised bf16 tensor:
 * 8 B an element, where it counted its input (2 B). The self-attention's norm opens the block
 * and keeps the block's input (2 B, what checkpointing keeps), its other 6 B on q (beside q's own
 * 2); the feed-forward norm keeps all 8. */
static void test_t5_norm_saved(void **state)
{
    Model *m = load_model("models/t5-base.json", NULL);
    double sd = m->training.seq_len * (double)m->hidden;
    assert_close(m->modules[module_index(m, "encoder.block.1.layer.0.layer_norm")].saved_bytes,
                 2 * sd, 1e-12);
    assert_close(
        m->modules[module_index(m, "encoder.block.1.layer.0.SelfAttention.q")].saved_bytes,
        8 * sd, 1e-12);
    assert_close(m->modules[module_index(m, "encoder.block.1.layer.1.layer_norm")].saved_bytes,
                 8 * sd, 1e-12);
    model_free(m);
}

/* What a MoE block keeps for backward in eager transformers (model_hf_moe.c, modeling_mixtral.py
 * and modeling_qwen2_moe.py): the router's input, each token's k copies for its experts and the
 * k expert outputs that `expert_layer(current_state) * routing_weights[top_x, idx, None]` keeps
 * (both factors require grad): h (1 + 2k) bf16 values per token on the router leaf (Mixtral, k 2:
 * 5h; the outputs were not counted: 3h); Qwen2-MoE's shared expert output and its sigmoid gate,
 * kept by their product, h + 1. */
static void test_moe_saved(void **state)
{
    Model *m = load_model("models/mixtral-8x7b.json", NULL);
    double s = m->training.seq_len, h = m->hidden;
    assert_close(m->modules[module_index(m, "model.layers.3.block_sparse_moe.gate")].saved_bytes,
                 2 * s * h * (1 + 2 * 2), 1e-12);
    model_free(m);
    m = load_model("models/qwen1.5-moe-a2.7b.json", NULL);
    s = m->training.seq_len, h = m->hidden;
    assert_close(m->modules[module_index(m, "model.layers.3.mlp.gate")].saved_bytes,
                 2 * s * h * (1 + 2 * 4), 1e-12);
    assert_close(m->modules[module_index(m, "model.layers.3.mlp.shared_expert_gate")].saved_bytes,
                 2 * s * (h + 1), 1e-12);
    model_free(m);
}

/* Mixture of experts, Mixtral-8x7B (8 experts, top-2, h 4096, expert width 14336):
 * - each expert's GEMMs see s * k / E tokens of the s = 4096 (balanced routing): 1024 rows;
 * - forward FLOPs per token are those of the active parameters (two experts, not eight);
 * - under expert parallelism over 8 GPUs a token's hidden vector (4096 bf16 values, 8 KiB) goes to
 *   2 experts and back, 7/8 of them on other GPUs: 2 x 2 x 8192 x 7/8 = 28672 bytes per layer;
 * - the routed experts hold 32 x 8 x 3 x 4096 x 14336 parameters; with ep 8 a GPU gathers one of
 *   the 8 experts of a layer: 41,984,000 other parameters + 176,160,768 = 218,144,768. */
static void test_moe(void **state)
{
    Model *m = load_model("models/mixtral-8x7b.json", NULL);
    const ModelModule *w1 =
        &m->modules[module_index(m, "model.layers.0.block_sparse_moe.experts.3.w1")];
    assert_close(w1->kernel.rows, 4096.0 * 2 / 8, 0);
    assert_int_equal(w1->params, 4096ULL * 14336);
    double active = 32 * (41943040.0 + 4096 * 8 + 2 * 3 * 4096.0 * 14336) + 4096.0 * 32000;
    double attention = 32 * 4.0 * 4096 * 4096 * 4096;
    assert_close(model_flops_fwd_per_sample(m), 2 * 4096 * active + attention, 1e-9);
    assert_close(model_moe_alltoall_bytes_per_token(m, 8, 2), 28672, 0);
    assert_close(model_moe_alltoall_bytes_per_token(m, 1, 2), 0, 0);
    assert_int_equal(model_moe_expert_params(m), 32ULL * 8 * 3 * 4096 * 14336);
    assert_close(model_moe_layer_params_per_gpu(m, 8), 218144768, 0);
    assert_close(model_moe_layer_params_per_gpu(m, 1), 1451270144, 0);
    model_free(m);
    /* Qwen2-MoE: 60 experts of width 1408, top-4, and a shared expert every token runs */
    m = load_model("models/qwen1.5-moe-a2.7b.json", NULL);
    assert_close(m->modules[module_index(m, "model.layers.5.mlp.experts.59.down_proj")].kernel.rows,
                 4096.0 * 4 / 60, 1e-12);
    assert_close(m->modules[module_index(m, "model.layers.5.mlp.shared_expert.down_proj")].kernel.rows,
                 4096, 0);
    model_free(m);
    expect_error("{\"model_type\": \"mixtral\", \"hidden_size\": 64, \"num_hidden_layers\": 2, "
                 "\"num_attention_heads\": 4, \"intermediate_size\": 128, \"vocab_size\": 100, "
                 "\"num_local_experts\": 2, \"num_experts_per_tok\": 3}",
                 "num_experts_per_tok");
    /* 100,000 experts in each of 1,000 layers: refused before building 5e8 modules */
    expect_error("{\"model_type\": \"mixtral\", \"hidden_size\": 64, \"num_hidden_layers\": 1000, "
                 "\"num_attention_heads\": 4, \"intermediate_size\": 128, \"vocab_size\": 100, "
                 "\"num_local_experts\": 100000}",
                 "'num_local_experts': 100000 experts in each of 1000 MoE layers");
    /* only the MoE layers count: decoder_sparse_step 2 makes 3 of the 6 */
    expect_error("{\"model_type\": \"qwen2_moe\", \"hidden_size\": 64, \"num_hidden_layers\": 6, "
                 "\"num_attention_heads\": 4, \"intermediate_size\": 128, \"vocab_size\": 100, "
                 "\"num_experts\": 100000, \"moe_intermediate_size\": 8, "
                 "\"decoder_sparse_step\": 2}",
                 "100000 experts in each of 3 MoE layers");
}

/* save_pretrained's bookkeeping keys load and are named in the note; the shipped file's own
 * documented keys are silent; a typo of a known key gets a did-you-mean. */
static void test_hf_key_leniency(void **state)
{
    Model *m = load_model("models/llama3-8b.json", NULL);
    assert_null(m->note);
    model_free(m);
    char *dir = g_dir_make_tmp("fsdpsim-XXXXXX", NULL);
    char *path = g_build_filename(dir, "config.json", NULL);
    g_file_set_contents(path,
                        "{\"model_type\": \"mistral\", \"hidden_size\": 64, \"num_hidden_layers\": 2, "
                        "\"num_attention_heads\": 4, \"intermediate_size\": 128, \"vocab_size\": 100, "
                        "\"_attn_implementation_autoset\": true, \"quantization_config\": {}, "
                        "\"sliding_window\": null}",
                        -1, NULL);
    GError *error = NULL;
    m = model_load(path, NULL, &error);
    assert_non_null(m);
    assert_non_null(m->note);
    assert_non_null(strstr(m->note, "_attn_implementation_autoset, quantization_config"));
    assert_int_equal(m->sliding_window, 0); /* null: no window */
    model_free(m);
    g_unlink(path);
    g_rmdir(dir);
    g_free(path);
    g_free(dir);
    expect_error("{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_hidden_layers\": 2, "
                 "\"num_attention_heads\": 4, \"intermediate_size\": 128, \"vocab_size\": 100, "
                 "\"num_key_value_head\": 2}",
                 "did you mean 'num_key_value_heads'");
    assert_string_equal(cfg_closest("FULL_SHRAD", (const char *const[]){"full_shard", "no_shard", NULL}),
                        "full_shard");
    assert_null(cfg_closest("bert", (const char *const[]){"gpt2", "llama", NULL}));
}

static void test_model_beyond_size_range(void **state)
{
    (void)state;
    expect_error("{\"model_type\": \"gpt2\", \"n_embd\": 4194304, \"n_layer\": 100000, "
                 "\"n_head\": 16, \"vocab_size\": 50257, \"n_positions\": 1024}",
                 "more than 1.845e+19 parameters");
    expect_error("{\"model_type\": \"gpt2\", \"n_embd\": 4194304, \"n_layer\": 20000, "
                 "\"n_head\": 16, \"vocab_size\": 50257, \"n_positions\": 1024}",
                 "'n_layer'");
    /* a layer list of 120 modules of 10^13 parameters each (each one within its own range) */
    GString *list = g_string_new("{\"format\": \"fsdpsim-layers\", \"modules\": [");
    for (int i = 0; i < 120; i++)
        g_string_append_printf(list,
                               "%s{\"name\": \"l%d\", \"kind\": \"linear\", \"params\": 1e13, "
                               "\"flops_fwd\": 1, \"output_elems\": 1}",
                               i ? ", " : "", i);
    g_string_append(list, "]}");
    expect_error(list->str, "modules[].params");
    g_string_free(list, TRUE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_param_counts),
        cmocka_unit_test(test_known_totals),
        cmocka_unit_test(test_gpt_layer_activation_bytes),
        cmocka_unit_test(test_llama_layer_activation_bytes),
        cmocka_unit_test(test_compile_keeps_fused_counts),
        cmocka_unit_test(test_gpt_forward_flops),
        cmocka_unit_test(test_resnet50_flops),
        cmocka_unit_test(test_bad_models),
        cmocka_unit_test(test_sliding_window_attention),
        cmocka_unit_test(test_hf_key_leniency),
        cmocka_unit_test(test_encoders),
        cmocka_unit_test(test_moe),
        cmocka_unit_test(test_moe_saved),
        cmocka_unit_test(test_t5_norm_saved),
        cmocka_unit_test(test_model_beyond_size_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
