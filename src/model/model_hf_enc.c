/* model_hf_enc: encoder transformers from Hugging Face config.json: bert and roberta (text,
 * bidirectional attention, masked-language-model head) and vit (images cut into patches), built
 * as transformers' modeling_bert.py, modeling_roberta.py and modeling_vit.py build them:
 *  - BertForPreTraining: bert (embeddings; encoder.layer of BertLayer; pooler) and cls (the MLM
 *    head, decoder weight tied to the word embeddings with its own bias, and the next-sentence
 *    Linear(h, 2)), as the bert-large-uncased checkpoint is saved.
 *  - RobertaForMaskedLM: roberta (no pooler) and lm_head (dense, layer_norm, tied decoder + bias).
 *  - ViTForImageClassification: vit (cls token, position embeddings, Conv2d patch projection;
 *    pre-norm ViTLayer blocks; final layernorm) and classifier Linear(h, num_labels).
 *  - T5ForConditionalGeneration (modeling_t5.py): shared embedding, an encoder stack and a
 *    decoder stack of T5Block (self-attention, for the decoder cross-attention on the encoder's
 *    output, and a ReLU or gated-GELU feed-forward), T5LayerNorm (RMS, no bias), relative
 *    position bias in each stack's first block, lm_head tied to the shared embedding unless
 *    tie_word_embeddings is false (T5 v1.1). Encoder and decoder both run seq_len tokens.
 *    transformers' T5Attention adds the position bias to materialised scores: it has no
 *    FlashAttention or SDPA path, so T5 is costed as eager attention whatever --attention says.
 * Attention is not causal: every token sees every other, so FlashAttention visits all key
 * blocks (twice the causal work). Dropout after the embeddings, the attention output and the MLP
 * output (hidden_dropout_prob, BERT/RoBERTa) reads and writes its tensor and saves a 1-byte mask,
 * as GPT-2's does. Cost: O(layers) modules, built once per load. */
#include "model_hf_priv.h"

#include "../util/cfg.h"

#include <string.h>

typedef enum { ENC_BERT, ENC_ROBERTA, ENC_VIT, ENC_T5 } EncKind;

static void dropout(Ctx *c, int parent, const char *block, const char *name, double h)
{
    char *n = model_hf_sub(block, name);
    model_hf_leaf(c, parent, n, "Dropout", 0, 0, 2 * c->act * c->s * h + c->s * h, c->s * h, 1);
    g_free(n);
}

/* One BertLayer / RobertaLayer (post-norm) or ViTLayer (pre-norm). */
static void encoder_layer(Model *m, Ctx *c, EncKind kind, int list, const char *bn, bool qkv_bias)
{
    double h = m->hidden, ffn = m->ffn, s = c->s, act = c->act;
    bool vit = kind == ENC_VIT;
    const char *prefix = vit ? "ViT" : kind == ENC_BERT ? "Bert" : "Roberta";
    char *k = g_strconcat(prefix, "Layer", NULL);
    int blk = model_builder_add(c->b, list, bn, k);
    g_free(k);
    model_builder_get(c->b, blk)->is_block = true;
    char *n;
    if (vit)
        model_hf_layer_norm(c, blk, bn, "layernorm_before", h, false);
    int at = model_builder_add(c->b, blk, n = model_hf_sub(bn, "attention"),
                               vit                ? "ViTAttention"
                               : kind == ENC_BERT ? "BertAttention"
                                                  : "RobertaAttention");
    char *an = n;
    int sa = model_builder_add(c->b, at, n = model_hf_sub(an, vit ? "attention" : "self"),
                               vit ? "ViTSelfAttention" : "BertSelfAttention");
    char *sn = n;
    model_hf_linear(c, sa, n = model_hf_sub(sn, "query"), "Linear", h, h, qkv_bias, false);
    g_free(n);
    int kk = model_hf_linear(c, sa, n = model_hf_sub(sn, "key"), "Linear", h, h, qkv_bias, false);
    g_free(n);
    int vv = model_hf_linear(c, sa, n = model_hf_sub(sn, "value"), "Linear", h, h, qkv_bias, false);
    g_free(n);
    /* one saved input for the three; the heads' transposes (view + permute, then the output's
     * contiguous copy: read and write s*h) */
    model_builder_get(c->b, kk)->saved_bytes = 0;
    model_builder_get(c->b, vv)->saved_bytes = 0;
    model_builder_get(c->b, kk)->mem_bytes_fwd = 2 * act * s * h;
    model_builder_get(c->b, kk)->kernels_fwd += 1;
    model_hf_attention(c, sa, sn, m, 0, false);
    g_free(sn);
    int so = model_builder_add(c->b, at, n = model_hf_sub(an, "output"),
                               vit ? "ViTSelfOutput" : "BertSelfOutput");
    char *on = n;
    model_hf_linear(c, so, n = model_hf_sub(on, "dense"), "Linear", h, h, true, false), g_free(n);
    if (!vit) {
        dropout(c, so, on, "dropout", h);
        model_hf_layer_norm(c, so, on, "LayerNorm", h, true); /* LayerNorm(x + input) */
    }
    g_free(on);
    g_free(an);
    if (vit)
        model_hf_layer_norm(c, blk, bn, "layernorm_after", h, true); /* after the residual add */
    int in = model_builder_add(c->b, blk, n = model_hf_sub(bn, "intermediate"),
                               vit ? "ViTIntermediate" : "BertIntermediate");
    char *inn = n;
    model_hf_linear(c, in, n = model_hf_sub(inn, "dense"), "Linear", h, ffn, true, false);
    g_free(n);
    model_hf_leaf(c, in, n = model_hf_sub(inn, "intermediate_act_fn"), "GELUActivation", 0, 0,
                  2 * act * s * ffn, act * s * ffn, 1);
    g_free(n);
    g_free(inn);
    int out = model_builder_add(c->b, blk, n = model_hf_sub(bn, "output"),
                                vit ? "ViTOutput" : "BertOutput");
    char *outn = n;
    model_hf_linear(c, out, n = model_hf_sub(outn, "dense"), "Linear", ffn, h, true, false);
    g_free(n);
    if (!vit) {
        dropout(c, out, outn, "dropout", h);
        model_hf_layer_norm(c, out, outn, "LayerNorm", h, true);
    }
    g_free(outn);
}

static void build_text_encoder(Model *m, Ctx *c, EncKind kind, int64_t type_vocab)
{
    double s = c->s, h = m->hidden, V = m->vocab, act = c->act;
    bool bert = kind == ENC_BERT;
    const char *top = bert ? "bert" : "roberta";
    int root = model_builder_add(c->b, -1, "", bert ? "BertForPreTraining" : "RobertaForMaskedLM");
    int md = model_builder_add(c->b, root, top, bert ? "BertModel" : "RobertaModel");
    char *en = model_hf_sub(top, "embeddings"), *n;
    int emb = model_builder_add(c->b, md, en, bert ? "BertEmbeddings" : "RobertaEmbeddings");
    /* three lookups and their sum (read two, write one, twice) */
    model_hf_leaf(c, emb, n = model_hf_sub(en, "word_embeddings"), "Embedding", (uint64_t)(V * h),
                  0, act * s * h, 0, 1);
    g_free(n);
    model_hf_leaf(c, emb, n = model_hf_sub(en, "position_embeddings"), "Embedding",
                  (uint64_t)((double)m->positions * h), 0, 7 * act * s * h, 0, 3);
    g_free(n);
    model_hf_leaf(c, emb, n = model_hf_sub(en, "token_type_embeddings"), "Embedding",
                  (uint64_t)((double)type_vocab * h), 0, act * s * h, 0, 1);
    g_free(n);
    model_hf_layer_norm(c, emb, en, "LayerNorm", h, false);
    dropout(c, emb, en, "dropout", h);
    g_free(en);
    int enc = model_builder_add(c->b, md, n = model_hf_sub(top, "encoder"),
                                bert ? "BertEncoder" : "RobertaEncoder");
    char *encn = n;
    int list = model_builder_add(c->b, enc, n = model_hf_sub(encn, "layer"), "ModuleList");
    char *ln = n;
    model_builder_get(c->b, list)->is_list = true;
    for (int l = 0; l < m->layers; l++) {
        char *bn = g_strdup_printf("%s.%d", ln, l);
        encoder_layer(m, c, kind, list, bn, true);
        g_free(bn);
    }
    g_free(ln);
    g_free(encn);
    if (bert) {
        /* pooler: dense + tanh on the first token of each sample */
        int pool = model_builder_add(c->b, md, "bert.pooler", "BertPooler");
        double tokens = c->s;
        c->s = 1;
        model_hf_linear(c, pool, "bert.pooler.dense", "Linear", h, h, true, false);
        c->s = tokens;
    }
    const char *head = bert ? "cls.predictions" : "lm_head";
    int hd = model_builder_add(c->b, root, bert ? "cls" : "lm_head",
                               bert ? "BertPreTrainingHeads" : "RobertaLMHead");
    int pred = hd;
    if (bert) {
        pred = model_builder_add(c->b, hd, head, "BertLMPredictionHead");
        model_builder_add(c->b, pred, "cls.predictions.transform", "BertPredictionHeadTransform");
    }
    const char *tr = bert ? "cls.predictions.transform" : "lm_head";
    int trn = bert ? pred + 1 : hd;
    model_hf_linear(c, trn, n = model_hf_sub(tr, "dense"), "Linear", h, h, true, false), g_free(n);
    model_hf_leaf(c, trn, n = model_hf_sub(tr, "transform_act_fn"), "GELUActivation", 0, 0,
                  2 * act * s * h, act * s * h, 1);
    g_free(n);
    model_hf_layer_norm(c, trn, tr, bert ? "LayerNorm" : "layer_norm", h, false);
    /* the decoder's weight is the word embedding's; its bias (V) is its own */
    int dec =
        model_hf_linear(c, pred, n = model_hf_sub(head, "decoder"), "Linear", h, V, false, true);
    g_free(n);
    model_builder_get(c->b, dec)->params = (uint64_t)V;
    if (bert) {
        double tokens = c->s;
        c->s = 1;
        model_hf_linear(c, hd, "cls.seq_relationship", "Linear", h, 2, true, false);
        c->s = tokens;
    }
    model_hf_loss(m, c, false);
}

static void build_vit(Model *m, Ctx *c, double patches, double patch_pixels, int64_t labels,
                      bool qkv_bias)
{
    double h = m->hidden, act = c->act;
    int root = model_builder_add(c->b, -1, "", "ViTForImageClassification");
    int md = model_builder_add(c->b, root, "vit", "ViTModel");
    /* cls_token (h) and position_embeddings ((N + 1) h) are the embeddings' own parameters; the
     * cat and the position add move the sequence twice */
    int emb = model_hf_leaf(c, md, "vit.embeddings", "ViTEmbeddings", (uint64_t)(h + c->s * h), 0,
                            5 * act * c->s * h, 0, 2);
    /* patch projection: Conv2d(C, h, p, stride p), an implicit GEMM of N patch rows by C*p*p */
    double tokens = c->s;
    c->s = patches;
    int proj = model_hf_linear(c, emb, "vit.embeddings.patch_embeddings.projection", "Conv2d",
                               patch_pixels, h, true, false);
    /* cuDNN's implicit GEMM builds its patch operand in shared memory: not a Linear's layout,
     * so its alignment is not judged (kern.h) */
    model_builder_get(c->b, proj)->kernel.exact_dims = false;
    c->s = tokens;
    int enc = model_builder_add(c->b, md, "vit.encoder", "ViTEncoder");
    int list = model_builder_add(c->b, enc, "vit.encoder.layer", "ModuleList");
    model_builder_get(c->b, list)->is_list = true;
    for (int l = 0; l < m->layers; l++) {
        char *bn = g_strdup_printf("vit.encoder.layer.%d", l);
        encoder_layer(m, c, ENC_VIT, list, bn, qkv_bias);
        g_free(bn);
    }
    model_hf_layer_norm(c, md, "vit", "layernorm", h, true);
    /* the classifier sees the cls token only */
    c->s = 1;
    model_hf_linear(c, root, "classifier", "Linear", h, (double)labels, true, false);
    model_hf_leaf(c, 0, "loss", "CrossEntropyLoss", 0, 0, 16.0 * labels, 8.0 * labels, 4);
    c->s = tokens;
}

/* T5LayerNorm: RMS norm without bias or mean, in fp32 (variance in fp32, then the weight): like
 * the Llama family's, 18 two-byte accesses per element in 6 kernels.
 * Saved for backward, per element (modeling_t5.py T5LayerNorm.forward: `variance =
 * hidden_states.to(torch.float32).pow(2).mean(-1, keepdim=True)`, `hidden_states = hidden_states *
 * torch.rsqrt(variance + self.variance_epsilon)`, `hidden_states =
 * hidden_states.to(self.weight.dtype)` for a bf16/fp16 weight, `return self.weight *
 * hidden_states`; derivatives.yaml): pow keeps the fp32 copy (4), the multiply by rsqrt its
 * input in its own dtype (act; rsqrt one value a token), the multiply by the weight the
 * normalised tensor cast back (act): 4 + 2 act (it counted act, as model_hf.c's rms_norm did
 * before Llama's). The input is what a block's first saving leaf stands for (checkpointing,
 * pipeline sends, TP's input scale: model_hf.c rms_norm), so a norm that opens a block keeps act
 * and returns the rest, which the caller charges to the next leaf (q); 0 otherwise. A fused
 * kernel (Megatron, torch.compile's partitioner) keeps the input alone: the rest is
 * eager_extra_bytes. Under torch.autocast the residual stream is fp32 and the total the same
 * (fp32 input and normalised tensor); the block's fp32 input is not counted apart (as Gemma's). */
static double t5_norm(Ctx *c, int parent, const char *prefix, const char *name, double d,
                      bool opens_block)
{
    char *n = model_hf_sub(prefix, name);
    double input = c->act * c->s * d, saved = (4 + 2 * c->act) * c->s * d;
    int i = model_hf_leaf(c, parent, n, "T5LayerNorm", (uint64_t)d, 0, 18 * c->act * c->s * d,
                          opens_block ? input : saved, 6);
    model_builder_get(c->b, i)->eager_extra_bytes = opens_block ? 0 : saved - input;
    g_free(n);
    return opens_block ? saved - input : 0;
}

/* One T5 attention sub-layer: layer_norm, q/k/v/o without bias (inner width heads x d_kv), the
 * core (causal in the decoder's self-attention), the first block's relative_attention_bias
 * Embedding(buckets, heads), dropout and the residual add. */
static void t5_attention(Ctx *c, Model *m, int parent, const char *ln, bool cross, bool causal,
                         bool rel_bias, int64_t buckets)
{
    double d = m->hidden, inner = (double)m->heads * m->head_dim, s = c->s, act = c->act;
    int layer = model_builder_add(c->b, parent, ln,
                                  cross ? "T5LayerCrossAttention" : "T5LayerSelfAttention");
    /* the self-attention's norm opens the block (T5Block.layer[0]) */
    double norm_rest = t5_norm(c, layer, ln, "layer_norm", d, !cross);
    char *an = model_hf_sub(ln, cross ? "EncDecAttention" : "SelfAttention"), *n;
    int at = model_builder_add(c->b, layer, an, "T5Attention");
    int q = model_hf_linear(c, at, n = model_hf_sub(an, "q"), "Linear", d, inner, false, false);
    g_free(n);
    model_builder_get(c->b, q)->saved_bytes += norm_rest;
    model_builder_get(c->b, q)->eager_extra_bytes += norm_rest;
    int k = model_hf_linear(c, at, n = model_hf_sub(an, "k"), "Linear", d, inner, false, false);
    g_free(n);
    int v = model_hf_linear(c, at, n = model_hf_sub(an, "v"), "Linear", d, inner, false, false);
    g_free(n);
    model_builder_get(c->b, v)->saved_bytes = 0;
    /* self-attention: k and v share q's input; cross-attention: they read the encoder's output,
     * saved once for each block's k (and v) */
    model_builder_get(c->b, k)->saved_bytes = cross ? act * s * d : 0;
    model_hf_attention(c, at, an, m, 0, causal);
    model_hf_linear(c, at, n = model_hf_sub(an, "o"), "Linear", inner, d, false, false), g_free(n);
    if (rel_bias) {
        n = model_hf_sub(an, "relative_attention_bias");
        /* the bucketed bias for every (query, key) pair, a x s x s, and its add to the
         * scores: computed in the first block, reused by the others (position_bias) */
        model_hf_leaf(c, at, n, "Embedding", (uint64_t)(buckets * m->heads), 0,
                      4 * act * m->heads * s * s, 0, 4);
        g_free(n);
    }
    g_free(an);
    n = model_hf_sub(ln, "dropout");
    model_hf_leaf(c, layer, n, "Dropout", 0, 0, 5 * act * s * d + s * d, s * d, 2);
    g_free(n);
}

/* T5LayerFF: layer_norm, DenseReluDense (wi, ReLU, wo) or, gated-gelu (T5 v1.1, flan-t5),
 * DenseGatedActDense (wi_0, wi_1, GELU-tanh, wo), dropout and the residual add. */
static void t5_ff(Ctx *c, Model *m, int parent, const char *ln, bool gated)
{
    double d = m->hidden, ff = m->ffn, s = c->s, act = c->act;
    int layer = model_builder_add(c->b, parent, ln, "T5LayerFF");
    t5_norm(c, layer, ln, "layer_norm", d, false);
    char *dn = model_hf_sub(ln, "DenseReluDense"), *n;
    int dense =
        model_builder_add(c->b, layer, dn, gated ? "T5DenseGatedActDense" : "T5DenseActDense");
    if (gated) {
        model_hf_linear(c, dense, n = model_hf_sub(dn, "wi_0"), "Linear", d, ff, false, false);
        g_free(n);
        int wi1 =
            model_hf_linear(c, dense, n = model_hf_sub(dn, "wi_1"), "Linear", d, ff, false, false);
        g_free(n);
        model_builder_get(c->b, wi1)->saved_bytes = 0;
        model_hf_leaf(c, dense, n = model_hf_sub(dn, "act"), "NewGELUActivation", 0, 0,
                      5 * act * s * ff, 2 * act * s * ff, 2);
    } else {
        model_hf_linear(c, dense, n = model_hf_sub(dn, "wi"), "Linear", d, ff, false, false);
        g_free(n);
        model_hf_leaf(c, dense, n = model_hf_sub(dn, "act"), "ReLU", 0, 0, 2 * act * s * ff,
                      act * s * ff, 1);
    }
    g_free(n);
    /* dropout inside, before wo */
    model_hf_leaf(c, dense, n = model_hf_sub(dn, "dropout"), "Dropout", 0, 0,
                  2 * act * s * ff + s * ff, s * ff, 1);
    g_free(n);
    model_hf_linear(c, dense, n = model_hf_sub(dn, "wo"), "Linear", ff, d, false, false), g_free(n);
    g_free(dn);
    n = model_hf_sub(ln, "dropout");
    model_hf_leaf(c, layer, n, "Dropout", 0, 0, 5 * act * s * d + s * d, s * d, 2);
    g_free(n);
}

static void build_t5(Model *m, Ctx *c, int64_t dec_layers, int64_t buckets, bool gated)
{
    double d = m->hidden, V = m->vocab, act = c->act, s = c->s;
    int root = model_builder_add(c->b, -1, "", "T5ForConditionalGeneration");
    model_hf_leaf(c, root, "shared", "Embedding", (uint64_t)(V * d), 0, act * s * d, 0, 1);
    for (int stack = 0; stack < 2; stack++) {
        bool dec = stack == 1;
        const char *sn = dec ? "decoder" : "encoder";
        int st = model_builder_add(c->b, root, sn, "T5Stack");
        char *n;
        /* embed_tokens is the shared embedding (tied): a lookup, no parameters of its own */
        model_hf_leaf(c, st, n = model_hf_sub(sn, "embed_tokens"), "Embedding", 0, 0, act * s * d,
                      0, 1);
        g_free(n);
        int list = model_builder_add(c->b, st, n = model_hf_sub(sn, "block"), "ModuleList");
        char *ln = n;
        model_builder_get(c->b, list)->is_list = true;
        int64_t blocks = dec ? dec_layers : m->layers;
        for (int l = 0; l < blocks; l++) {
            char *bn = g_strdup_printf("%s.%d", ln, l);
            int blk = model_builder_add(c->b, list, bn, "T5Block");
            model_builder_get(c->b, blk)->is_block = true;
            int ll = model_builder_add(c->b, blk, n = model_hf_sub(bn, "layer"), "ModuleList");
            char *lln = n;
            char *sub0 = g_strdup_printf("%s.0", lln);
            t5_attention(c, m, ll, sub0, false, dec, l == 0, buckets);
            g_free(sub0);
            if (dec) {
                char *sub1 = g_strdup_printf("%s.1", lln);
                t5_attention(c, m, ll, sub1, true, false, false, buckets);
                g_free(sub1);
            }
            char *subf = g_strdup_printf("%s.%d", lln, dec ? 2 : 1);
            t5_ff(c, m, ll, subf, gated);
            g_free(subf);
            g_free(lln);
            g_free(bn);
        }
        g_free(ln);
        t5_norm(c, st, sn, "final_layer_norm", d, false);
        n = model_hf_sub(sn, "dropout");
        model_hf_leaf(c, st, n, "Dropout", 0, 0, 2 * act * s * d + s * d, s * d, 1);
        g_free(n);
    }
    model_hf_linear(c, root, "lm_head", "Linear", d, V, false, m->tied_embeddings);
    model_hf_loss(m, c, false);
}

/* T5's config.json keys (T5Config): d_model, d_kv, d_ff, num_layers, num_decoder_layers,
 * num_heads, relative_attention_num_buckets, feed_forward_proj. */
static bool build_t5_model(Model *m, const char *file, CfgObj *root, GError **error)
{
    const int64_t big = 1 << 22;
    int64_t d = 512, dkv = 64, dff = 2048, layers = 6, dec_layers = -1, heads = 8, vocab = 32128;
    int64_t buckets = 32;
    bool tied = true;
    char *proj = NULL;
    bool ok =
        cfg_get_int(root, "d_model", true, 1, big, &d, error) &&
        cfg_get_int(root, "d_kv", false, 1, big, &dkv, error) &&
        cfg_get_int(root, "d_ff", true, 1, big, &dff, error) &&
        cfg_get_int(root, "num_layers", true, 1, 100000, &layers, error) &&
        cfg_get_int(root, "num_heads", true, 1, 100000, &heads, error) &&
        cfg_get_int(root, "vocab_size", true, 1, 1 << 26, &vocab, error) &&
        cfg_get_int(root, "relative_attention_num_buckets", false, 1, 1 << 20, &buckets, error) &&
        cfg_get_bool(root, "tie_word_embeddings", false, &tied, error) &&
        cfg_get_string(root, "feed_forward_proj", false, &proj, error);
    const cJSON *dl = ok ? cfg_item(root, "num_decoder_layers") : NULL;
    if (ok && dl && !cJSON_IsNull(dl))
        ok = cfg_get_int(root, "num_decoder_layers", false, 1, 100000, &dec_layers, error);
    if (dec_layers < 0)
        dec_layers = layers;
    bool gated = proj && g_str_has_prefix(proj, "gated-");
    if (ok && proj && strcmp(proj, "relu") != 0 && strcmp(proj, "gated-gelu") != 0) {
        cfg_set_error(error, file, "", "feed_forward_proj",
                      "expected \"relu\" or \"gated-gelu\", got \"%s\"", proj);
        ok = false;
    }
    g_free(proj);
    if (!ok || !model_hf_check_keys(m, root, error))
        return false;
    m->token_input = true;
    m->hidden = (int)d, m->layers = (int)layers, m->heads = (int)heads, m->kv_heads = (int)heads;
    m->head_dim = (int)dkv, m->ffn = (int)dff, m->vocab = (int)vocab, m->tied_embeddings = tied;
    m->flash_attention = false; /* T5Attention: scores + position bias, no fused kernel */
    m->attention_kernel = MODEL_ATTN_FLASH2;
    if (m->training.seq_len <= 0)
        m->training.seq_len = 512; /* T5's pretraining inputs (Raffel et al. 2020, section 3.1) */
    ModelBuilder b = {g_array_new(FALSE, TRUE, sizeof(ModelModule))};
    Ctx c = {&b, m->training.seq_len, hw_dtype_bytes(m->training.param_dtype), 2, 1, 1, 0};
    build_t5(m, &c, dec_layers, buckets, gated);
    return model_finish(m, &b, file, "'d_model', 'd_ff', 'num_layers', 'vocab_size'", error);
}

bool model_hf_build_encoder(Model *m, const char *file, void *cfg_root, GError **error)
{
    CfgObj *root = cfg_root;
    if (!strcmp(m->model_type, "t5"))
        return build_t5_model(m, file, root, error);
    EncKind kind = !strcmp(m->model_type, "vit")       ? ENC_VIT
                   : !strcmp(m->model_type, "roberta") ? ENC_ROBERTA
                                                       : ENC_BERT;
    const int64_t big = 1 << 22;
    int64_t h = 0, layers = 0, heads = 0, ffn = 0, vocab = 0, pos = 512, type_vocab = 2;
    int64_t image = 224, patch = 16, channels = 3, labels = 2;
    bool qkv_bias = true;
    char *act = NULL, *pe = NULL;
    bool ok = cfg_get_int(root, "hidden_size", true, 1, big, &h, error) &&
              cfg_get_int(root, "num_hidden_layers", true, 1, 100000, &layers, error) &&
              cfg_get_int(root, "num_attention_heads", true, 1, 100000, &heads, error) &&
              cfg_get_int(root, "intermediate_size", true, 1, big, &ffn, error) &&
              cfg_get_string(root, "hidden_act", false, &act, error);
    if (ok && kind == ENC_VIT) {
        /* num_labels: PretrainedConfig takes it from id2label when the file has one */
        const cJSON *id2label = cfg_item(root, "id2label");
        if (cJSON_IsObject(id2label))
            labels = cJSON_GetArraySize(id2label);
        ok = cfg_get_int(root, "image_size", false, 1, 1 << 16, &image, error) &&
             cfg_get_int(root, "patch_size", false, 1, 1 << 16, &patch, error) &&
             cfg_get_int(root, "num_channels", false, 1, 1 << 16, &channels, error) &&
             cfg_get_bool(root, "qkv_bias", false, &qkv_bias, error);
    } else if (ok) {
        ok = cfg_get_int(root, "vocab_size", true, 1, 1 << 26, &vocab, error) &&
             cfg_get_int(root, "max_position_embeddings", false, 1, 1 << 24, &pos, error) &&
             cfg_get_int(root, "type_vocab_size", false, 0, 1 << 20, &type_vocab, error) &&
             cfg_get_string(root, "position_embedding_type", false, &pe, error);
    }
    if (ok && act && strcmp(act, "gelu") != 0) {
        cfg_set_error(error, file, "", "hidden_act", "expected \"gelu\", got \"%s\"", act);
        ok = false;
    }
    if (ok && pe && strcmp(pe, "absolute") != 0) {
        cfg_set_error(error, file, "", "position_embedding_type",
                      "relative position embeddings are not modelled; expected \"absolute\", "
                      "got \"%s\"",
                      pe);
        ok = false;
    }
    g_free(act);
    g_free(pe);
    if (!ok)
        return false;
    if (h % heads != 0) {
        cfg_set_error(error, file, "", "num_attention_heads",
                      "expected a divisor of hidden_size (%" G_GINT64_FORMAT ")", h);
        return false;
    }
    if (kind == ENC_VIT && image % patch != 0) {
        cfg_set_error(error, file, "", "patch_size",
                      "expected a divisor of image_size (%" G_GINT64_FORMAT ")", image);
        return false;
    }
    /* a sample's tokens are its patches: at most the longest sequence fsdpsim takes (image 65536,
     * patch 1: 2^32 patches overflowed the sequence length) */
    if (kind == ENC_VIT && (image / patch) * (image / patch) + 1 > (1 << 22)) {
        cfg_set_error(error, file, "", "patch_size",
                      "(image_size / patch_size)^2 = %" G_GINT64_FORMAT " patches per image; "
                      "expected at most 4194303 (a sequence of 2^22 tokens with the cls token)",
                      (image / patch) * (image / patch));
        return false;
    }
    /* RoBERTa's positions start after padding_idx 1: a table of 2 left no usable position, and
     * the run was simulated with sequences of 0 tokens */
    if (kind == ENC_ROBERTA && pos < 3) {
        cfg_set_error(error, file, "", "max_position_embeddings",
                      "RoBERTa's first two positions are padding_idx's; expected at least 3, got "
                      "%" G_GINT64_FORMAT,
                      pos);
        return false;
    }
    if (!model_hf_check_keys(m, root, error))
        return false;
    m->hidden = (int)h, m->layers = (int)layers, m->heads = (int)heads, m->kv_heads = (int)heads;
    m->head_dim = (int)(h / heads), m->ffn = (int)ffn, m->vocab = (int)vocab;
    m->positions = (int)pos;
    m->tied_embeddings = kind != ENC_VIT;
    double patches = 0;
    if (kind == ENC_VIT) {
        /* a sample is an image: its tokens are the patches and the cls token */
        m->token_input = false;
        m->training.image_size = (int)image;
        patches = (double)(image / patch) * (double)(image / patch);
        m->training.seq_len = (int)patches + 1;
    } else {
        m->token_input = true;
        /* RoBERTa's positions start after padding_idx (1): 2 fewer usable than the table */
        int64_t usable = kind == ENC_ROBERTA ? pos - 2 : pos;
        if (m->training.seq_len <= 0)
            m->training.seq_len = (int)MIN(usable, 512);
        if (m->training.seq_len > usable) {
            g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                        "%s: sequence length %d exceeds the %" G_GINT64_FORMAT
                        " learned positions of max_position_embeddings",
                        file, m->training.seq_len, usable);
            return false;
        }
    }
    ModelBuilder b = {g_array_new(FALSE, TRUE, sizeof(ModelModule))};
    Ctx c = {&b, m->training.seq_len, hw_dtype_bytes(m->training.param_dtype), 2, 1, 1, 0};
    if (kind == ENC_VIT)
        build_vit(m, &c, patches, (double)(channels * patch * patch), labels, qkv_bias);
    else
        build_text_encoder(m, &c, kind, type_vocab);
    return model_finish(m, &b, file,
                        "'hidden_size', 'num_hidden_layers', 'intermediate_size', 'vocab_size'",
                        error);
}
