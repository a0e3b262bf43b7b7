/* model_hf: decoder transformers from Hugging Face config.json keys (model_type gpt2; the Llama
 * family llama, mistral, qwen2, gemma, gemma2, phi3; the parallel-block gpt_neox and falcon in
 * model_hf_parallel.c), built into the module tree PyTorch would show. Which keys are read,
 * accepted or refused: model_hf_keys.c.
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

#include "model_hf_priv.h"
#include "../util/cfg.h"

#include <string.h>

/* GPT-2's activation_function as Hugging Face's ACT2FN runs it in eager mode. gelu_new (GPT-2's
 * default) is the tanh formula written out: pow, three multiplies by constants, two adds, tanh
 * and the final products, 8 kernels, 18 element reads and writes. The others are one kernel.
 * What autograd keeps, in ffn-sized tensors (derivatives.yaml):
 * - gelu_new, activations.py NewGELUActivation: `0.5 * input * (1.0 + torch.tanh(math.sqrt(2.0 /
 *   math.pi) * (input + 0.044715 * torch.pow(input, 3.0))))`: products and sums with a Python
 *   number keep nothing (`mul.Scalar`, `add.Scalar`); pow keeps its input (`pow.Tensor_Scalar:
 *   self: pow_backward(grad, self, exponent)`), tanh its result (`tanh: self:
 *   tanh_backward(grad, result)`), the final product of two tensors both factors (`mul.Tensor`):
 *   0.5 * input and 1 + tanh(...): 4 tensors.
 * - gelu_fast, FastGELUActivation: `0.5 * input * (1.0 + torch.tanh(input * 0.7978845608 * (1.0 +
 *   0.044715 * input * input)))`: three products of two tensors (0.044715 * input by input, the
 *   tanh argument's two factors, 0.5 * input by 1 + tanh) keep 6 tensors, tanh its result: 7.
 * - the one-kernel ones keep one: gelu, gelu_pytorch_tanh and silu their input, relu its result.
 * Under torch.autocast (DDP's mixed precision) pow is on autocast's fp32 list (torch.amp docs,
 * "CUDA Ops that can autocast to float32"): gelu_new's pow keeps an fp32 copy of its input, and
 * tanh and 1 + tanh run on its fp32 result: 3 of its 4 tensors fp32. gelu_fast has no fp32-list
 * op. */
bool model_hf_gpt2_activation(const char *name, Ctx *c)
{
    if (!name || strcmp(name, "gelu_new") == 0 || strcmp(name, "gelu_fast") == 0) {
        c->gelu_accesses = 18, c->gelu_kernels = 8;
        bool fast = name && strcmp(name, "gelu_fast") == 0;
        c->gelu_saved = fast ? 7 : 4, c->gelu_saved_fp32_autocast = fast ? 0 : 3;
        return true;
    }
    static const char *const one_kernel[] = {"gelu", "gelu_pytorch_tanh", "relu", "silu", "swish",
                                             NULL};
    for (int i = 0; one_kernel[i]; i++)
        if (strcmp(name, one_kernel[i]) == 0) {
            c->gelu_accesses = 2, c->gelu_kernels = 1, c->gelu_saved = 1;
            return true;
        }
    return false;
}

int model_hf_leaf(Ctx *c, int parent, const char *name, const char *kind, uint64_t params,
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

int model_hf_linear(Ctx *c, int parent, const char *name, const char *kind, double in, double out,
                    bool bias, bool tied)
{
    uint64_t params = tied ? 0 : (uint64_t)(in * out + (bias ? out : 0));
    int i =
        model_hf_leaf(c, parent, name, kind, params, 2 * c->s * in * out, 0, c->act * c->s * in, 1);
    ModelModule *m = model_builder_get(c->b, i);
    m->flops_bwd_ratio = 2; /* dgrad + wgrad, also when tied */
    m->kernel =
        (ModelKernel){.kind = MODEL_KERNEL_GEMM, .rows = c->s, .n = out, .k = in, .exact_dims = true};
    return i;
}

/* LoRA's facts about a Linear (model.h): its input, the leaf holding that input
 * (-1: kept anyway) and what only its weight gradient needs. */
static void lora_linear(Ctx *c, int leaf, int input_leaf, double in, double weight_only)
{
    ModelModule *m = model_builder_get(c->b, leaf);
    m->input_bytes = c->act * m->kernel.rows * in;
    m->input_leaf = input_leaf;
    m->weight_only_bytes = weight_only;
}

char *model_hf_sub(const char *parent, const char *name)
{
    return *parent ? g_strdup_printf("%s.%s", parent, name) : g_strdup(name);
}

/* Attention core (scaled dot product) with a query heads of head_dim d and kv_heads K/V heads
 * (GQA). Under a sliding window of w < s tokens a query sees w keys: FlashAttention-2's local
 * attention (window_size) skips the key blocks outside the window, so the model FLOPs are
 * 4*s*w*a*d instead of 4*s^2*a*d. Eager and SDPA attention build the full s x s score matrix and
 * mask it (transformers' sliding-window causal mask), so their cost does not change. */
void model_hf_attention(Ctx *c, int parent, const char *pname, const Model *m, double window,
                        bool causal)
{
    double s = c->s, a = m->heads, d = m->head_dim;
    double seen = window > 0 && window < s ? window : s;
    double saved = c->act * s * d * (a + 2.0 * m->kv_heads); /* Q, K, V */
    double mem = 0, own = 0; /* own: the core's saved tensors beyond its inputs */
    int kernels = 1;
    if (!m->flash_attention) {
        /* softmax out (2 B), dropout mask (1 B), dropout out (2 B) per score, and the
         * traffic of writing and reading the score matrix in each kernel. */
        own = 5 * a * s * s;
        saved += own;
        mem = 3 * 2 * c->act * a * s * s;
        kernels = 5;
    }
    char *name = model_hf_sub(pname, "core");
    int i = model_hf_leaf(c, parent, name, "ScaledDotProductAttention", 0, 4 * s * seen * a * d,
                          mem, saved, kernels);
    model_builder_get(c->b, i)->recomputable_bytes = own;
    model_builder_get(c->b, i)->kernel = (ModelKernel){.kind = MODEL_KERNEL_ATTENTION,
                                                       .causal = causal,
                                                       .heads = a,
                                                       .head_dim = d,
                                                       .seq = s,
                                                       .window = seen < s ? seen : 0};
    g_free(name);
}

static void build_gpt2(Model *m, Ctx *c)
{
    double s = c->s, h = m->hidden, ffn = m->ffn, V = m->vocab, P = m->positions, act = c->act;
    int root = model_builder_add(c->b, -1, "", "GPT2LMHeadModel");
    int tr = model_builder_add(c->b, root, "transformer", "GPT2Model");
    model_hf_leaf(c, tr, "transformer.wte", "Embedding", (uint64_t)(V * h), 0, act * s * h, 0, 1);
    model_hf_leaf(c, tr, "transformer.wpe", "Embedding", (uint64_t)(P * h), 0, 3 * act * s * h, 0,
                  2);
    model_hf_leaf(c, tr, "transformer.drop", "Dropout", 0, 0, 2 * act * s * h + s * h, s * h, 1);
    int list = model_builder_add(c->b, tr, "transformer.h", "ModuleList");
    model_builder_get(c->b, list)->is_list = true;
    for (int l = 0; l < m->layers; l++) {
        char *bn = g_strdup_printf("transformer.h.%d", l);
        int blk = model_builder_add(c->b, list, bn, "GPT2Block");
        model_builder_get(c->b, blk)->is_block = true;
        char *n;
        /* LayerNorm: read + write, saves its input. The residual add before ln_2 and after the
         * block are charged to the dropout leaves (read two, write one). */
        model_hf_layer_norm(c, blk, bn, "ln_1", h, false);
        int at = model_builder_add(c->b, blk, n = model_hf_sub(bn, "attn"), "GPT2Attention");
        char *an = n;
        /* frozen (LoRA): Conv1D's addmm keeps its input only for the weight's gradient
         * (derivatives.yaml `addmm: mat2: mm_mat2_backward(grad, mat1, ...)`); LayerNorm keeps
         * its own input whatever (native_layer_norm's one formula for input, weight and bias);
         * attention's output is flash attention's own (as o_proj's in build_decoder) */
        int qkv =
            model_hf_linear(c, at, n = model_hf_sub(an, "c_attn"), "Conv1D", h, 3 * h, true, false);
        g_free(n);
        lora_linear(c, qkv, qkv, h, act * s * h);
        model_hf_attention(c, at, an, m, 0, true);
        int proj =
            model_hf_linear(c, at, n = model_hf_sub(an, "c_proj"), "Conv1D", h, h, true, false);
        g_free(n);
        lora_linear(c, proj, m->flash_attention ? -1 : proj, h,
                    m->flash_attention ? 0 : act * s * h);
        model_hf_leaf(c, at, n = model_hf_sub(an, "resid_dropout"), "Dropout", 0, 0,
                      5 * act * s * h + s * h, s * h, 2),
            g_free(n);
        g_free(an);
        model_hf_layer_norm(c, blk, bn, "ln_2", h, false);
        int mlp = model_builder_add(c->b, blk, n = model_hf_sub(bn, "mlp"), "GPT2MLP");
        char *mn = n;
        int fc =
            model_hf_linear(c, mlp, n = model_hf_sub(mn, "c_fc"), "Conv1D", h, ffn, true, false);
        g_free(n);
        lora_linear(c, fc, fc, h, act * s * h);
        /* the activation in eager mode (model_hf_gpt2_activation) */
        int gelu = model_hf_leaf(c, mlp, n = model_hf_sub(mn, "act"),
                                 c->gelu_kernels > 1 ? "NewGELUActivation" : "GELUActivation", 0,
                                 0, c->gelu_accesses * act * s * ffn,
                                 c->gelu_saved * act * s * ffn, c->gelu_kernels);
        g_free(n);
        model_builder_get(c->b, gelu)->autocast_extra_bytes =
            c->gelu_saved_fp32_autocast * MAX(0, 4 - act) * s * ffn;
        /* Megatron's bias-GeLU keeps its input alone (Korthikanti's 8sbh) */
        model_builder_get(c->b, gelu)->eager_extra_bytes = (c->gelu_saved - 1) * act * s * ffn;
        int down =
            model_hf_linear(c, mlp, n = model_hf_sub(mn, "c_proj"), "Conv1D", ffn, h, true, false);
        g_free(n);
        /* gelu_new's and gelu_fast's products keep their factors, not the result; of the
         * one-kernel ones relu keeps its result, c_proj's input: left as it is */
        if (c->gelu_kernels > 1)
            lora_linear(c, down, down, ffn, act * s * ffn);
        model_hf_leaf(c, mlp, n = model_hf_sub(mn, "dropout"), "Dropout", 0, 0,
                      5 * act * s * h + s * h, s * h, 2),
            g_free(n);
        g_free(mn);
        g_free(bn);
    }
    model_hf_layer_norm(c, tr, "transformer", "ln_f", h, false);
    int head = model_hf_linear(c, root, "lm_head", "Linear", h, V, false, m->tied_embeddings);
    lora_linear(c, head, head, h, act * s * h);
}

/* The Llama family of decoders: pre-norm blocks of RMSNorm, rotary attention and a gated MLP, as
 * transformers' modeling_llama.py and the files derived from it build them. What differs, from
 * each model's modeling_<type>.py: */
typedef enum { WINDOW_NONE, WINDOW_ALL, WINDOW_EVEN_LAYERS, WINDOW_FROM_LAYER } WindowRule;
typedef struct {
    const char *type;   /* model_type */
    const char *prefix; /* class names: <prefix>ForCausalLM, <prefix>DecoderLayer, ... */
    bool qkv_bias;      /* Qwen2: q, k and v projections carry a bias, o does not */
    bool fused;         /* Phi-3: one qkv_proj and one gate_up_proj Linear */
    bool sandwich;      /* Gemma 2: norms before and after attention and MLP (4 per layer) */
    bool tied;          /* tie_word_embeddings default of the config class */
    /* Mistral and Phi-3: every layer when sliding_window is set; Gemma 2: even layers
     * (Gemma2Attention: is_sliding = not bool(layer_idx % 2)); Qwen2: layers from
     * max_window_layers on, when use_sliding_window */
    WindowRule window;
} DecoderArch;

static const DecoderArch decoder_archs[] = {
    {"llama", "Llama", false, false, false, false, WINDOW_NONE},
    {"mistral", "Mistral", false, false, false, false, WINDOW_ALL},
    {"qwen2", "Qwen2", true, false, false, false, WINDOW_FROM_LAYER},
    {"gemma", "Gemma", false, false, false, true, WINDOW_NONE},
    {"gemma2", "Gemma2", false, false, true, true, WINDOW_EVEN_LAYERS},
    {"phi3", "Phi3", false, true, false, false, WINDOW_ALL},
    /* mixture of experts (model_hf_moe.c) */
    {"mixtral", "Mixtral", false, false, false, false, WINDOW_ALL},
    {"qwen2_moe", "Qwen2Moe", true, false, false, false, WINDOW_FROM_LAYER},
};

static double layer_window(const DecoderArch *arch, const Model *m, int layer, int from_layer)
{
    switch (arch->window) {
    case WINDOW_NONE:
        return 0;
    case WINDOW_ALL:
        return m->sliding_window;
    case WINDOW_EVEN_LAYERS:
        return layer % 2 == 0 ? m->sliding_window : 0;
    case WINDOW_FROM_LAYER:
        return layer >= from_layer ? m->sliding_window : 0;
    }
    return 0;
}

static char *cls(const DecoderArch *arch, const char *suffix)
{
    return g_strconcat(arch->prefix, suffix, NULL);
}

/* What only a frozen RMSNorm's weight gradient needs, per sample (rms_norm's tensors): the
 * normalised tensor the weight multiplies, act B (Gemma: its fp32 product, 4 B), and under
 * autocast its fp32 excess (*autocast). mul.Tensor's `self: mul_tensor_backward(grad, other, ...)`
 * uses `other` in the weight's derivative alone, so autograd saves it only when the weight
 * requires grad (tools/autograd/gen_variable_type.py, emit_save_inputs: a saved tensor used by one
 * input's derivative is guarded by `grad_fn->should_compute_output(...)`); the fp32 copy stays
 * (pow's and the rsqrt product's input gradients). */
static double rms_norm_weight_only(const Ctx *c, const DecoderArch *arch, double h,
                                   double *autocast)
{
    bool gemma = !strncmp(arch->type, "gemma", 5);
    *autocast = gemma ? 0 : MAX(0, 4 - c->act) * c->s * h;
    return (gemma ? 4 : c->act) * c->s * h;
}

/* RMSNorm in fp32, as HF LlamaRMSNorm runs in eager mode: to(fp32) (read 2 B, write 4), pow (4, 4),
 * mean (4), x * rsqrt (4, 4), to(bf16) (4, 2), * weight (2, 2): 36 B per element in 6 kernels
 * (18 x 2-byte activations). `residual`: the residual add before it (read two, write one) is
 * charged to it.
 * Saved for backward, per element (derivatives.yaml): LlamaRMSNorm.forward
 * (modeling_llama.py: `hidden_states = hidden_states.to(torch.float32)`, `variance =
 * hidden_states.pow(2).mean(-1, keepdim=True)`, `hidden_states = hidden_states *
 * torch.rsqrt(variance + self.variance_epsilon)`, `return self.weight *
 * hidden_states.to(input_dtype)`): pow (`self: pow_backward(grad, self, exponent)`) and the
 * multiply by rsqrt (`mul.Tensor: self: mul_tensor_backward(grad, other, ...), other: ...(grad,
 * self, ...)`) keep the fp32 copy, 4 B, once; rsqrt keeps its result, one value per token; the
 * multiply by the weight keeps the normalised tensor cast back, act B (to() and _to_copy keep
 * nothing). 4 + act in all; the input itself is kept by nothing. Gemma (GemmaRMSNorm:
 * `output = self._norm(x.float())`, `output = output * (1.0 + self.weight.float())`,
 * `output.type_as(x)`) multiplies in fp32: the fp32 copy and the fp32 normalised tensor, 8 B.
 * A block's first saving leaf stands for the block's input (what torch.utils.checkpoint keeps,
 * what a pipeline stage sends: gen.c block_sums, pp_cost.c, tp.c), so a norm that opens a block
 * keeps the input's size (act) itself and returns the rest, which the caller charges to the next
 * leaf (the q/k/v projection); the block's sum is the same. Returns 0 otherwise. */
static double rms_norm(Ctx *c, const DecoderArch *arch, int parent, const char *block,
                       const char *name, double h, bool residual, bool opens_block)
{
    char *n = model_hf_sub(block, name), *kind = cls(arch, "RMSNorm");
    bool gemma = !strncmp(arch->type, "gemma", 5);
    double saved = (gemma ? 8 : 4 + c->act) * c->s * h, kept = opens_block ? c->act * c->s * h : saved;
    int i = model_hf_leaf(c, parent, n, kind, (uint64_t)h, 0,
                          (residual ? 21 : 18) * c->act * c->s * h, kept, residual ? 7 : 6);
    if (!opens_block) {
        ModelModule *leaf = model_builder_get(c->b, i);
        leaf->weight_only_bytes =
            rms_norm_weight_only(c, arch, h, &leaf->weight_only_autocast_bytes);
    }
    /* under torch.autocast the residual stream is fp32 (fp32 embeddings and sums), so
     * `input_dtype` is fp32 and the normalised tensor the weight multiplies is kept in fp32 */
    model_builder_get(c->b, i)->autocast_extra_bytes = gemma ? 0 : MAX(0, 4 - c->act) * c->s * h;
    /* Megatron's fused RMSNorm (apex, Transformer Engine) keeps its input and one rstd a token:
     * the rest is eager's (where the norm opens the block, the rest goes to the next leaf, and
     * the caller marks it there) */
    model_builder_get(c->b, i)->eager_extra_bytes = kept - c->act * c->s * h;
    g_free(n);
    g_free(kind);
    return saved - kept;
}

/* The gated MLP act(x W_gate) * (x W_up) W_down on `rows` tokens: one module with three Linear
 * leaves (or a fused gate_up Linear, Phi-3) and the activation, named as `names` (gate, up, down:
 * Mixtral's experts call them w1, w3, w2). */
int model_hf_gated_mlp(Ctx *c, int parent, const char *name, const char *kind, double h, double ffn,
                       bool fused, const char *act_kind, const char *const names[3], double rows)
{
    double tokens = c->s, act = c->act;
    c->s = rows;
    int mlp = model_builder_add(c->b, parent, name, kind);
    char *n;
    if (fused) {
        model_hf_linear(c, mlp, n = model_hf_sub(name, "gate_up_proj"), "Linear", h, 2 * ffn, false,
                        false);
        g_free(n);
    } else {
        model_hf_linear(c, mlp, n = model_hf_sub(name, names[0]), "Linear", h, ffn, false, false);
        g_free(n);
        int up = model_hf_linear(c, mlp, n = model_hf_sub(name, names[1]), "Linear", h, ffn, false,
                                 false);
        g_free(n);
        model_builder_get(c->b, up)->saved_bytes = 0; /* same input as the gate */
    }
    /* act(gate) * up (SiLU, or GELU-tanh for Gemma: one kernel each), LlamaMLP.forward's
     * `self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))`: the activation keeps
     * its input, the gate output (derivatives.yaml `silu: self: ...silu_backward(grad, self)`,
     * `gelu: self: gelu_backward(grad, self, approximate)`), and the product keeps both factors
     * (`mul.Tensor`), the activation's output and the up output: 3 x act per ffn element (the
     * product itself is the down projection's saved input). Phi-3's gate_up_proj output chunked
     * into views keeps as much: the views hold their 2 x ffn storage, with silu's output. */
    int fn = model_hf_leaf(c, mlp, n = model_hf_sub(name, "act_fn"), act_kind, 0, 0,
                           5 * act * rows * ffn, 3 * act * rows * ffn, 2);
    /* Megatron's bias-SwiGLU keeps its input, gate and up, alone */
    model_builder_get(c->b, fn)->eager_extra_bytes = act * rows * ffn;
    g_free(n);
    model_hf_linear(c, mlp, n = model_hf_sub(name, names[2]), "Linear", ffn, h, false, false);
    g_free(n);
    c->s = tokens;
    return mlp;
}

static void build_decoder(Model *m, Ctx *c, const DecoderArch *arch, bool attn_bias,
                          int window_from_layer, const ModelMoe *moe)
{
    double s = c->s, h = m->hidden, ffn = m->ffn, V = m->vocab, act = c->act;
    double qw = (double)m->heads * m->head_dim, kvw = (double)m->kv_heads * m->head_dim;
    char *k_root = cls(arch, "ForCausalLM"), *k_model = cls(arch, "Model");
    char *k_layer = cls(arch, "DecoderLayer"), *k_attn = cls(arch, "Attention");
    char *k_mlp = cls(arch, "MLP");
    bool qkv_bias = attn_bias || arch->qkv_bias;
    int root = model_builder_add(c->b, -1, "", k_root);
    int md = model_builder_add(c->b, root, "model", k_model);
    model_hf_leaf(c, md, "model.embed_tokens", "Embedding", (uint64_t)(V * h), 0, act * s * h, 0,
                  1);
    int list = model_builder_add(c->b, md, "model.layers", "ModuleList");
    model_builder_get(c->b, list)->is_list = true;
    for (int l = 0; l < m->layers; l++) {
        char *bn = g_strdup_printf("model.layers.%d", l);
        int blk = model_builder_add(c->b, list, bn, k_layer);
        model_builder_get(c->b, blk)->is_block = true;
        char *n;
        double norm_rest = rms_norm(c, arch, blk, bn, "input_layernorm", h, false, true);
        int at = model_builder_add(c->b, blk, n = model_hf_sub(bn, "self_attn"), k_attn);
        char *an = n;
        int k, q;
        if (arch->fused) {
            k = q = model_hf_linear(c, at, n = model_hf_sub(an, "qkv_proj"), "Linear", h,
                                    qw + 2 * kvw, qkv_bias, false);
            g_free(n);
        } else {
            /* q, k and v share one saved input. */
            q = model_hf_linear(c, at, n = model_hf_sub(an, "q_proj"), "Linear", h, qw, qkv_bias,
                                false);
            g_free(n);
            k = model_hf_linear(c, at, n = model_hf_sub(an, "k_proj"), "Linear", h, kvw, qkv_bias,
                                false);
            g_free(n);
            int v = model_hf_linear(c, at, n = model_hf_sub(an, "v_proj"), "Linear", h, kvw,
                                    qkv_bias, false);
            g_free(n);
            model_builder_get(c->b, k)->saved_bytes = 0;
            model_builder_get(c->b, v)->saved_bytes = 0;
        }
        /* the input norm's tensors beyond the block input's size (rms_norm) */
        model_builder_get(c->b, q)->saved_bytes += norm_rest;
        model_builder_get(c->b, q)->eager_extra_bytes += norm_rest; /* not in a fused norm */
        /* frozen (LoRA): q, k and v keep their shared input x for no weight gradient (mm's
         * `mat2: mm_mat2_backward(grad, self, ...)` alone uses `self`), nor the input norm's
         * normalised tensor charged here; an adapter on any of them keeps x (lora.c) */
        double norm_only, norm_only_autocast;
        norm_only = rms_norm_weight_only(c, arch, h, &norm_only_autocast);
        lora_linear(c, q, q, h, c->act * s * h + norm_only);
        model_builder_get(c->b, q)->weight_only_autocast_bytes = norm_only_autocast;
        if (!arch->fused)
            for (int j = q + 1; j <= q + 2; j++)
                lora_linear(c, j, q, h, 0);
        /* rotary embedding on q and k (HF apply_rotary_pos_emb): x * cos (read, write),
         * rotate_half's negation of one half and cat (1 + 2), * sin (2), the sum (3): 10 element
         * accesses in 6 kernels per tensor; and the attention output's transpose(1, 2).contiguous()
         * copy */
        model_builder_get(c->b, k)->mem_bytes_fwd = 10 * act * s * (qw + kvw) + 2 * act * s * qw;
        model_builder_get(c->b, k)->kernels_fwd += 13;
        model_hf_attention(c, at, an, m, layer_window(arch, m, l, window_from_layer), true);
        int o = model_hf_linear(c, at, n = model_hf_sub(an, "o_proj"), "Linear", qw, h, attn_bias,
                                false);
        g_free(n);
        /* flash attention keeps its output for its own backward (FlashAttnFunc's
         * save_for_backward(q, k, v, out, softmax_lse, ...), SDPA's flash kernel likewise), the
         * same storage as o_proj's input (a view); eager attention's contiguous() copy only
         * o_proj keeps */
        lora_linear(c, o, m->flash_attention ? -1 : o, qw, m->flash_attention ? 0 : act * s * qw);
        g_free(an);
        /* residual add (read two, write one) charged to the following norm */
        if (arch->sandwich) {
            rms_norm(c, arch, blk, bn, "post_attention_layernorm", h, false, false);
            rms_norm(c, arch, blk, bn, "pre_feedforward_layernorm", h, true, false);
        } else {
            rms_norm(c, arch, blk, bn, "post_attention_layernorm", h, true, false);
        }
        const char *act_kind =
            arch->sandwich || !strcmp(arch->type, "gemma") ? "PytorchGELUTanh" : "SiLU";
        if (moe && model_hf_moe_layer(moe, l)) {
            model_hf_moe_block(c, m, moe, blk, bn);
        } else {
            n = model_hf_sub(bn, "mlp");
            int mlp =
                model_hf_gated_mlp(c, blk, n, k_mlp, h, ffn, arch->fused, act_kind,
                                   (const char *const[]){"gate_proj", "up_proj", "down_proj"}, s);
            g_free(n);
            /* frozen (LoRA): gate and up keep their shared input for no weight gradient, down its
             * input (the product, which mul keeps nothing of: it keeps its factors, act_fn's) */
            int gate = mlp + 1, down = arch->fused ? mlp + 3 : mlp + 4;
            lora_linear(c, gate, gate, h, act * s * h);
            if (!arch->fused)
                lora_linear(c, gate + 1, gate, h, 0);
            lora_linear(c, down, down, ffn, act * s * ffn);
        }
        if (arch->sandwich)
            rms_norm(c, arch, blk, bn, "post_feedforward_layernorm", h, false, false);
        g_free(bn);
    }
    rms_norm(c, arch, md, "model", "norm", h, true, false);
    int head = model_hf_linear(c, root, "lm_head", "Linear", h, V, false, m->tied_embeddings);
    lora_linear(c, head, head, h, act * s * h);
    g_free(k_root), g_free(k_model), g_free(k_layer), g_free(k_attn), g_free(k_mlp);
}

/* Cross-entropy over the vocabulary, per sample of s tokens and V logits per token (sv = s*V
 * logits; act: the logits' dtype). What autograd keeps (saved_bytes) and what the loss's backward
 * allocates beside it before the head's backward (backward_transient_bytes), by implementation
 * (m->loss_impl, --loss-impl):
 * - hf, transformers' loss_utils.ForCausalLMLoss: `logits = logits.float()`, then
 *   nn.functional.cross_entropy = log_softmax + nll_loss. Kept: the logits in their dtype (act,
 *   returned in CausalLMOutputWithPast.logits, which the training loop's `outputs` holds) and
 *   log_softmax's fp32 result (4; derivatives.yaml `_log_softmax: self:
 *   _log_softmax_backward_data(grad, result, ...)`, nll_loss saves the same tensor); the fp32
 *   copy itself is saved by nothing (`_to_copy` saves no tensor). Backward: nll_loss_backward's
 *   fp32 gradient and _log_softmax_backward_data's fp32 result, live at once: 8 B per logit.
 * - fused, flash-attn's ops/triton/cross_entropy.py CrossEntropyLossFunction (llm-foundry's
 *   loss_fn fused_crossentropy: `FusedCrossEntropyLoss(ignore_index=-100)`, inplace_backward
 *   False): `ctx.save_for_backward(logits, lse, labels)`: the logits (act) and an fp32 lse per
 *   token; backward `dlogits = logits if ctx.inplace_backward else torch.empty_like(logits)`:
 *   act per logit. fused-inplace (inplace_backward=True): nothing more.
 * - megatron, megatron/core/tensor_parallel/cross_entropy.py: calculate_logits_max's
 *   `vocab_parallel_logits.float()`, max subtracted, exp and the division in place, then
 *   `ctx.save_for_backward(exp_logits, target_mask, masked_target_1d)`: the fp32 softmax (4) and
 *   a bool mask and an int64 target per token; GPTModel returns the loss only, so the logits in
 *   their own dtype are not kept. Backward writes the gradient into the saved softmax in place;
 *   the autograd engine casts it to the logits' dtype (validate_outputs): act per logit.
 * - liger, liger_kernel/ops/fused_linear_cross_entropy.py: the head's GEMM and the loss run in
 *   row chunks inside the forward, which computes both gradients there and keeps them
 *   (`ctx.save_for_backward(grad_input.detach(), grad_weight.detach() ...)`); the logits never
 *   exist whole. grad_input is as large as the head's saved input (counted at lm_head), so the
 *   loss keeps nothing per logit; grad_weight (V x h in the weight's dtype, once per micro-batch)
 *   is charged as the backward's transient, divided by the micro-batch (the field is per sample).
 *   The chunk's logits (about s*h elements) are not counted.
 * - torchtitan: its Llama's `output = self.output(h).float()` and F.cross_entropy; train.py
 *   deletes the fp32 logits before backward (`del pred`, "need to free to before bwd to avoid
 *   peaking memory"): kept only log_softmax's fp32 result, 4 B; backward as hf's, 8 B.
 * Megatron's runs (model_fused_kernels: DDP or ZeRO-1 with --tp or --pp, Megatron's DDP options)
 * compute their loss with vocab_parallel_cross_entropy whatever --loss-impl says (GPTModel's
 * compute_language_model_loss has no other), so the leaf's eager_extra_bytes is what the chosen
 * implementation keeps beyond Megatron's: 2 B per logit for hf, negative where it keeps less
 * (fused, liger), and model_fused_kernels leaves Megatron's count.
 * Memory traffic and kernels are transformers' in every case (not modelled per implementation).
 * Gemma 2's final logit soft-capping (logits / cap, tanh, * cap: Gemma2ForCausalLM.forward) adds
 * three elementwise kernels over the logits and saves the tanh output. */
void model_hf_loss(Model *m, Ctx *c, bool softcap)
{
    double sv = c->s * m->vocab, saved = 0, transient = 0;
    double megatron_saved = 4 * sv + (1 + 8) * c->s;
    switch (m->loss_impl) {
    case MODEL_LOSS_HF:
        saved = (c->act + 4) * sv, transient = 8 * sv;
        break;
    case MODEL_LOSS_FUSED:
    case MODEL_LOSS_FUSED_INPLACE:
        saved = c->act * sv + 4 * c->s;
        transient = m->loss_impl == MODEL_LOSS_FUSED ? c->act * sv : 0;
        break;
    case MODEL_LOSS_MEGATRON:
        saved = megatron_saved, transient = c->act * sv;
        break;
    case MODEL_LOSS_TORCHTITAN:
        saved = 4 * sv, transient = 8 * sv;
        break;
    case MODEL_LOSS_LIGER:
        saved = 0;
        transient = c->act * m->vocab * m->hidden / MAX(1, m->training.micro_batch);
        break;
    }
    int i = model_hf_leaf(c, 0, "loss", "CrossEntropyLoss", 0, 0,
                          (c->act + 4 + 4 + 4) * sv + (softcap ? 6 * c->act * sv : 0),
                          saved + (softcap ? c->act * sv : 0), softcap ? 7 : 4);
    model_builder_get(c->b, i)->backward_transient_bytes = transient;
    model_builder_get(c->b, i)->eager_extra_bytes = saved - megatron_saved;
}

static bool get_first_int(CfgObj *co, const char *a, const char *b, bool required, int64_t max,
                          int64_t *out, GError **error)
{
    if (cfg_has(co, a) || !b)
        return cfg_get_int(co, a, required, 1, max, out, error);
    if (cfg_has(co, b))
        return cfg_get_int(co, b, required, 1, max, out, error);
    return cfg_get_int(co, a, required, 1, max, out, error);
}

/* LayerNorm with weight and bias: read + write, saves its input; `residual`: a residual add (read
 * two, write one) before it is charged to it. */
void model_hf_layer_norm(Ctx *c, int parent, const char *block, const char *name, double h,
                         bool residual)
{
    char *n = model_hf_sub(block, name);
    int i = model_hf_leaf(c, parent, n, "LayerNorm", (uint64_t)(2 * h), 0,
                          (residual ? 5 : 2) * c->act * c->s * h, c->act * c->s * h,
                          residual ? 2 : 1);
    /* under torch.autocast the residual stream stays fp32 (fp32 embeddings, fp32 + bf16 sums)
     * and layer_norm is on autocast's fp32 list: its saved input is fp32 */
    model_builder_get(c->b, i)->autocast_extra_bytes = MAX(0, 4 - c->act) * c->s * h;
    g_free(n);
}

static const DecoderArch *find_arch(const char *type)
{
    for (size_t i = 0; i < G_N_ELEMENTS(decoder_archs); i++)
        if (!strcmp(decoder_archs[i].type, type))
            return &decoder_archs[i];
    return NULL;
}

/* sliding_window, use_sliding_window and max_window_layers: the window of the decoder's windowed
 * layers (0: none) and the first windowed layer (Qwen2). */
static bool read_window(CfgObj *root, const DecoderArch *arch, int64_t layers, int64_t *window,
                        int64_t *from_layer, GError **error)
{
    *window = 0, *from_layer = 0;
    const cJSON *w = cfg_item(root, "sliding_window");
    if (w && !cJSON_IsNull(w) &&
        !cfg_get_int(root, "sliding_window", false, 1, 1 << 24, window, error))
        return false;
    if (arch->window == WINDOW_FROM_LAYER) {
        bool on = false;
        *from_layer = layers;
        if (!cfg_get_bool(root, "use_sliding_window", false, &on, error) ||
            !cfg_get_int(root, "max_window_layers", false, 0, 100000, from_layer, error))
            return false;
        if (!on)
            *window = 0;
    }
    if (arch->window == WINDOW_NONE)
        *window = 0;
    return true;
}

bool model_hf_build(Model *m, const char *file, void *root_obj, GError **error)
{
    CfgObj *root = root_obj;
    char *type = NULL;
    if (!cfg_get_string(root, "model_type", true, &type, error))
        return false;
    m->model_type = type;
    if (!strcmp(type, "gpt_neox") || !strcmp(type, "falcon"))
        return model_hf_build_parallel(m, file, root, error);
    if (!strcmp(type, "bert") || !strcmp(type, "roberta") || !strcmp(type, "vit") ||
        !strcmp(type, "t5"))
        return model_hf_build_encoder(m, file, root, error);
    bool gpt2 = strcmp(type, "gpt2") == 0;
    const DecoderArch *arch = find_arch(type);
    if (!gpt2 && !arch) {
        static const char *const types[] = {
            "gpt2",      "llama",    "mistral", "qwen2", "gemma",   "gemma2", "phi3", "mixtral",
            "qwen2_moe", "gpt_neox", "falcon",  "bert",  "roberta", "vit",    "t5",   NULL};
        const char *close = cfg_closest(type, types);
        cfg_set_error(error, file, "", "model_type",
                      "expected a Hugging Face config.json of model_type gpt2, llama, mistral, "
                      "qwen2, gemma, gemma2, phi3, mixtral, qwen2_moe, gpt_neox, falcon, bert, "
                      "roberta, vit or t5, or a layer list "
                      "with \"format\": \"fsdpsim-layers\"; got \"%s\"%s%s%s",
                      type, close ? " (did you mean \"" : "", close ? close : "",
                      close ? "\"?)" : "");
        return false;
    }
    m->token_input = true;
    const int64_t big = 1 << 22;
    int64_t h = 0, layers = 0, heads = 0, kv = 0, ffn = 0, vocab = 0, pos = 0, head_dim = 0;
    int64_t window = 0, window_from = 0;
    bool tied = gpt2 || arch->tied, mlp_bias = false, attn_bias = false, softcap = false;
    bool ok =
        get_first_int(root, gpt2 ? "n_embd" : "hidden_size", "hidden_size", true, big, &h, error) &&
        get_first_int(root, gpt2 ? "n_layer" : "num_hidden_layers", "num_hidden_layers", true,
                      100000, &layers, error) &&
        get_first_int(root, gpt2 ? "n_head" : "num_attention_heads", "num_attention_heads", true,
                      100000, &heads, error) &&
        cfg_get_int(root, "vocab_size", true, 1, 1 << 26, &vocab, error) &&
        get_first_int(root, gpt2 ? "n_positions" : "max_position_embeddings",
                      "max_position_embeddings", gpt2, 1 << 24, &pos, error) &&
        cfg_get_bool(root, "tie_word_embeddings", false, &tied, error) &&
        cfg_get_bool(root, "mlp_bias", false, &mlp_bias, error) &&
        cfg_get_bool(root, "attention_bias", false, &attn_bias, error);
    if (!ok)
        return false;
    if (gpt2) {
        /* n_inner: null means 4 * n_embd */
        const cJSON *inner = cfg_item(root, "n_inner");
        ffn = 4 * h;
        if (inner && !cJSON_IsNull(inner) &&
            !cfg_get_int(root, "n_inner", false, 1, big, &ffn, error))
            return false;
        kv = heads;
        head_dim = h / heads;
    } else {
        kv = heads;
        head_dim = h / heads;
        const cJSON *hd = cfg_item(root, "head_dim");
        const cJSON *cap = cfg_item(root, "final_logit_softcapping");
        softcap = cap && !cJSON_IsNull(cap) && !strcmp(type, "gemma2");
        if (!cfg_get_int(root, "num_key_value_heads", false, 1, heads, &kv, error) ||
            !cfg_get_int(root, "intermediate_size", true, 1, big, &ffn, error) ||
            (hd && !cJSON_IsNull(hd) &&
             !cfg_get_int(root, "head_dim", false, 1, big, &head_dim, error)) ||
            !read_window(root, arch, layers, &window, &window_from, error))
            return false;
        if (cap && !cJSON_IsNull(cap) && !softcap) {
            cfg_set_error(error, file, "", "final_logit_softcapping",
                          "soft-capping is modelled for gemma2 only; expected null");
            return false;
        }
    }
    if (mlp_bias) {
        cfg_set_error(error, file, "", "mlp_bias",
                      "biases in the gated MLP's projections are not modelled yet; expected false");
        return false;
    }
    if (!gpt2 && attn_bias && arch->qkv_bias) {
        cfg_set_error(error, file, "", "attention_bias",
                      "%s's q, k and v projections always carry a bias and o_proj none; expected "
                      "false",
                      type);
        return false;
    }
    if (gpt2 && h % heads != 0) {
        cfg_set_error(error, file, "", "n_head",
                      "expected a divisor of the hidden size (%" G_GINT64_FORMAT ")", h);
        return false;
    }
    /* "head_dim": null is the config class's default, as an absent key: 4096 / 3 heads was
     * taken as head dim 1365 without a word */
    const cJSON *given_head_dim = gpt2 ? NULL : cfg_item(root, "head_dim");
    if (!gpt2 && (!given_head_dim || cJSON_IsNull(given_head_dim)) && h % heads != 0) {
        cfg_set_error(error, file, "", "num_attention_heads",
                      "expected a divisor of hidden_size (%" G_GINT64_FORMAT "), or give head_dim",
                      h);
        return false;
    }
    if (heads % kv != 0) {
        cfg_set_error(error, file, "", "num_key_value_heads",
                      "expected a divisor of num_attention_heads (%" G_GINT64_FORMAT ")", heads);
        return false;
    }
    char *activation = NULL;
    Ctx c = {NULL, 0, 0, 0, 0, 0, 0};
    if (gpt2 && !cfg_get_string(root, "activation_function", false, &activation, error))
        return false;
    if (gpt2 && !model_hf_gpt2_activation(activation, &c)) {
        cfg_set_error(error, file, "", "activation_function",
                      "expected gelu_new, gelu, gelu_pytorch_tanh, relu or silu, got \"%s\"",
                      activation);
        g_free(activation);
        return false;
    }
    g_free(activation);
    ModelMoe moe = {0};
    m->ffn = (int)ffn; /* Mixtral's experts are intermediate_size wide */
    if ((!strcmp(type, "mixtral") || !strcmp(type, "qwen2_moe")) &&
        !model_hf_moe_read(m, root, layers, &moe, error))
        return false;
    if (!model_hf_check_keys(m, root, error))
        return false;
    m->moe = moe;
    m->hidden = (int)h;
    m->layers = (int)layers;
    m->heads = (int)heads;
    m->kv_heads = (int)kv;
    m->head_dim = (int)head_dim;
    m->ffn = (int)ffn;
    m->vocab = (int)vocab;
    m->positions = (int)pos;
    m->tied_embeddings = tied;
    m->sliding_window = (int)window;
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
        build_decoder(m, &c, arch, attn_bias, (int)window_from, moe.experts ? &moe : NULL);
    model_hf_loss(m, &c, softcap);
    return model_finish(m, &b, file,
                        gpt2 ? "'n_embd', 'n_layer', 'n_inner', 'vocab_size'"
                             : "'hidden_size', 'num_hidden_layers', 'intermediate_size', "
                               "'vocab_size'",
                        error);
}
