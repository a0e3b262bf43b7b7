/* model_hf_priv: helpers shared by the Hugging Face builders (model_hf.c, model_hf_enc.c,
 * model_hf_parallel.c, model_hf_moe.c); not part of the model module's interface. Costs per leaf
 * are described in model_hf.c. */
#ifndef FSD_MODEL_HF_PRIV_H
#define FSD_MODEL_HF_PRIV_H

#include "model.h"

typedef struct {
    ModelBuilder *b;
    double s;   /* tokens per sample */
    double act; /* bytes per activation element */
    /* GPT-2's MLP activation in eager mode: activation elements read + written, kernels */
    double gelu_accesses;
    int gelu_kernels;
    /* ... and the ffn-sized tensors autograd keeps of it (model_hf.c model_hf_gpt2_activation), of
     * them those that are fp32 under torch.autocast */
    double gelu_saved, gelu_saved_fp32_autocast;
} Ctx;

/* A leaf with its own parameters and forward cost per sample. */
int model_hf_leaf(Ctx *c, int parent, const char *name, const char *kind, uint64_t params,
                  double flops, double mem_bytes, double saved_bytes, int kernels);
/* Linear(in, out) on c->s rows: 2*s*in*out FLOPs, saves its input; tied: no own parameters. */
int model_hf_linear(Ctx *c, int parent, const char *name, const char *kind, double in, double out,
                    bool bias, bool tied);
/* "parent.name", or name for the root; g_free it. */
char *model_hf_sub(const char *parent, const char *name);
/* Scaled dot-product attention of m's heads over c->s tokens; window 0: none. */
void model_hf_attention(Ctx *c, int parent, const char *pname, const Model *m, double window,
                        bool causal);
/* LayerNorm(h) with weight and bias; residual: charge the residual add before it. */
void model_hf_layer_norm(Ctx *c, int parent, const char *block, const char *name, double h,
                         bool residual);
/* An activation by its transformers name (GPT-2's activation_function, GPT-NeoX's hidden_act)
 * as eager mode runs it: its kernels, traffic and saved tensors in *c; false for one not known. */
bool model_hf_gpt2_activation(const char *name, Ctx *c);
/* Cross-entropy over m->vocab logits per token (Gemma 2: soft-capped first). */
void model_hf_loss(Model *m, Ctx *c, bool softcap);

/* The gated MLP act(x W_gate) * (x W_up) W_down on `rows` tokens (model_hf.c). */
int model_hf_gated_mlp(Ctx *c, int parent, const char *name, const char *kind, double h, double ffn,
                       bool fused, const char *act_kind, const char *const names[3], double rows);

/* Mixture of experts (model_hf_moe.c): the config's expert keys for model_type mixtral or
 * qwen2_moe, whether layer l is a MoE layer, and its sparse block in place of the MLP. */
bool model_hf_moe_read(Model *m, void *cfg_root, int64_t layers, ModelMoe *moe, GError **error);
bool model_hf_moe_layer(const ModelMoe *moe, int layer);
void model_hf_moe_block(Ctx *c, Model *m, const ModelMoe *moe, int block, const char *block_name);

/* Parallel-block decoders (model_hf_parallel.c): gpt_neox, falcon. */
bool model_hf_build_parallel(Model *m, const char *file, void *cfg_root, GError **error);

/* Encoders (model_hf_enc.c): bert, roberta, vit. */
bool model_hf_build_encoder(Model *m, const char *file, void *cfg_root, GError **error);

#endif
