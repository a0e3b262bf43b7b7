/* model: the network being trained, as a module tree in forward execution order.
 *
 * Modules are stored in pre-order (a parent before its children, children in forward order), as
 * PyTorch's named_modules() lists them. Leaves carry the cost of their forward pass for ONE
 * sample (a sequence of seq_len tokens, or one image): FLOPs that run on tensor cores, bytes moved
 * by memory-bound kernels, bytes saved for backward. Strategies scale by the micro-batch. */
#ifndef FSD_MODEL_H
#define FSD_MODEL_H

#include "../hw/hw.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum { MODEL_OPT_ADAMW, MODEL_OPT_ADAM, MODEL_OPT_SGD, MODEL_OPT_SGD_MOMENTUM } ModelOptimizer;

/* What a leaf's forward runs on the tensor cores, for the kernel model (src/kern), per sample. */
typedef enum { MODEL_KERNEL_NONE, MODEL_KERNEL_GEMM, MODEL_KERNEL_ATTENTION } ModelKernelKind;
/* Whose fused attention kernels run: FlashAttention-2's CUDA kernels (also what SDPA runs),
 * FlashAttention's Triton kernel (MPT's attn_impl=triton), FlashAttention v1's CUDA kernels
 * (flash-attn < 2.0). */
typedef enum { MODEL_ATTN_FLASH2, MODEL_ATTN_TRITON, MODEL_ATTN_FLASH1 } ModelAttnKernel;
/* Whose cross-entropy computes a language model's loss (--loss-impl); what each keeps for
 * backward and what its backward adds is in model_hf.c model_hf_loss:
 * - HF: transformers' loss_utils.ForCausalLMLoss (logits.float(), log_softmax, nll_loss);
 * - FUSED: flash-attn's Triton CrossEntropyLoss (llm-foundry's loss_fn fused_crossentropy),
 *   inplace_backward=False, its default; FUSED_INPLACE: the same with inplace_backward=True
 *   (FlashAttention's own GPT training configs);
 * - MEGATRON: Megatron-LM's vocab_parallel_cross_entropy;
 * - TORCHTITAN: F.cross_entropy on the model's fp32 output, which the loop deletes before
 *   backward (torchtitan);
 * - LIGER: Liger-Kernel's LigerFusedLinearCrossEntropyLoss (head and loss in chunks). */
typedef enum {
    MODEL_LOSS_HF,
    MODEL_LOSS_FUSED,
    MODEL_LOSS_FUSED_INPLACE,
    MODEL_LOSS_MEGATRON,
    MODEL_LOSS_LIGER,
    MODEL_LOSS_TORCHTITAN
} ModelLossImpl;
typedef struct {
    uint8_t kind;     /* ModelKernelKind */
    bool causal;      /* attention: causal mask (decoders) */
    /* GEMM (Linear, or a convolution as implicit GEMM): out[rows x n] = in[rows x k] W[k x n],
     * rows per sample (tokens, or output pixels of a convolution). */
    double rows, n, k;
    /* attention: query heads, head dimension and sequence length of one sample */
    double heads, head_dim, seq;
    /* attention: keys each query sees under a sliding window (Mistral, Gemma 2's local layers);
     * 0 when it sees all (up to the diagonal when causal) */
    double window;
    /* GEMM: a convolution's input elements per sample (cuDNN's implicit GEMM builds its
     * [rows x k] operand from them on the fly; the kernel model charges its real bytes); 0 for a
     * Linear */
    double input;
    /* GEMM: n and k are the layer's own features (a Hugging Face config's Linear), not
     * estimated from its FLOPs and parameters (a layer list's: 2048.5 for a 2048 -> 1000
     * Linear with bias), so the kernel model may judge their alignment (kern.h) */
    bool exact_dims;
    /* GEMM with exact_dims: a row-parallel layer under tensor parallelism (its output is the
     * model's hidden size: attention's output and the MLP's down projection), whose input
     * features TP splits, not its output (model_finish) */
    bool row_parallel;
    /* GEMM: the tensor-parallel degree n was already divided by (gen_tp_model's copies); 0: none */
    double tp_applied;
} ModelKernel;

typedef struct {
    char *name; /* dotted, as named_modules() prints it; "" for the root */
    char *kind; /* class name: "GPT2Block", "Linear", "Bottleneck", ... */
    int parent; /* index, -1 for the root */
    int depth;
    int first_child, next_sibling; /* -1 when none */
    bool is_block;   /* a transformer_auto_wrap_policy target (decoder layer, Bottleneck) */
    bool is_list;    /* ModuleList/Sequential containers of blocks: never wrapped by size policy */
    /* Own parameters and buffers (not the children's). A weight tied to another module's is
     * counted once, at its first owner, as module.parameters() does. */
    uint64_t params;
    uint64_t buffers;
    uint64_t frozen_params; /* of params, those with requires_grad=False (LoRA's base weights,
                             * src/strategy/lora.c); 0 when everything trains */
    /* Forward cost per sample (leaves only). */
    double flops_fwd;      /* tensor-core FLOPs (GEMM, conv, attention) */
    double mem_bytes_fwd;  /* HBM traffic of memory-bound kernels (norms, activations, adds) */
    double saved_bytes;    /* activations kept for backward, in the activation dtype */
    /* of saved_bytes, what selective recomputation (Megatron's --recompute-granularity
     * selective) does not keep: the attention core's own tensors (unfused: softmax output,
     * dropout mask and output), recomputed from its kept inputs Q, K, V in backward */
    double recomputable_bytes;
    /* what this leaf's backward allocates beside the saved activations and frees before the
     * next leaf's backward starts (the cross-entropy loss's logit gradients, model_hf_loss);
     * 0 for most leaves */
    double backward_transient_bytes;
    /* what autograd keeps more when the leaf runs under torch.autocast with fp32 parameters (DDP's
     * mixed precision, gen.c): the fp32 residual stream into a norm, ops on autocast's fp32 list
     * (pow); per sample, beside saved_bytes (model_hf.c) */
    double autocast_extra_bytes;
    /* of saved_bytes, what PyTorch's eager ops keep beyond the fused kernel Megatron-LM (and
     * Megatron-DeepSpeed) runs in its place, which keeps its input alone: GPT-2's gelu_new beyond
     * bias-GeLU's input, RMSNorm's fp32 copy beyond the fused norm's input, SiLU's output beyond
     * bias-SwiGLU's input; for the loss, what --loss-impl's cross-entropy keeps beyond Megatron's
     * vocab_parallel_cross_entropy, negative where it keeps less (model_hf_loss). Per sample
     * (model_hf.c); model_fused_kernels takes it away. */
    double eager_extra_bytes;
    /* conv2d: what cuDNN's NCHW <-> NHWC transposes around it move per sample when it runs on
     * tensor cores with NCHW (contiguous) tensors: its input and output, each read and written
     * once (model_layers.c). Not in mem_bytes_fwd: strat_memory_format_apply adds it there when
     * the run's memory format and dtype call for it. */
    double layout_bytes_fwd;
    /* What freezing the weights (LoRA, src/strategy/lora.c) changes, per sample; all 0 where the
     * builder does not say, and then the leaf keeps what it keeps when everything trains.
     * weight_only_bytes: of saved_bytes, what only weight gradients need (autograd saves a tensor
     * that one input's derivative alone uses only when that input requires grad), so a frozen
     * leaf does not keep it: a Linear's input, a norm's normalised tensor its weight multiplies
     * (an opening norm's on the leaf its rest is charged to, model_hf.c).
     * weight_only_autocast_bytes: the same tensors' part of autocast_extra_bytes (it may exceed
     * the leaf's autocast_extra_bytes, where the rest is charged elsewhere).
     * input_bytes: a Linear's input, which a LoRA adapter on it keeps (lora_A's input);
     * input_leaf: the leaf whose weight_only_bytes hold that input (q_proj for q, k and v), -1
     * where another op keeps it anyway (flash attention's output, o_proj's input). */
    double weight_only_bytes, weight_only_autocast_bytes, input_bytes;
    int input_leaf;
    double flops_bwd_ratio;/* backward FLOPs / forward FLOPs: 2 for weighted layers, 1 otherwise */
    int kernels_fwd;       /* kernel launches in forward */
    ModelKernel kernel;    /* the tensor-core kernel behind flops_fwd, when known */
} ModelModule;

typedef struct {
    int seq_len;         /* tokens per sample (transformers) */
    int image_size;      /* pixels per side (image models) */
    int micro_batch;     /* samples per GPU per micro-step */
    HwDtype param_dtype; /* dtype of the unsharded/compute parameters (mixed precision) */
    ModelOptimizer optimizer;
} ModelTraining;

/* Mixture of experts (transformers' MixtralSparseMoeBlock, Qwen2MoeSparseMoeBlock): a router
 * Linear(h, experts) picks top_k experts per token; each expert is a gated MLP of expert_ffn;
 * Qwen2-MoE adds a shared expert (shared_ffn) that every token goes through, scaled by a
 * sigmoid gate Linear(h, 1). All zero for a dense model. */
typedef enum { MODEL_MOE_NONE, MODEL_MOE_MIXTRAL, MODEL_MOE_QWEN2 } ModelMoeStyle;
typedef struct {
    uint8_t style; /* ModelMoeStyle */
    int experts, top_k, expert_ffn, shared_ffn;
    int sparse_step;      /* layer l is MoE when (l + 1) % sparse_step == 0 ... */
    uint64_t dense_mask[4]; /* ... and it is not one of mlp_only_layers (bits, layers < 256) */
} ModelMoe;

typedef struct {
    char *file;
    char *name;
    char *model_type; /* "gpt2", "llama", or "layers" */
    bool token_input; /* samples are sequences of tokens; otherwise images */
    ModelModule *modules;
    int n_modules;
    uint64_t params;  /* total, tied weights once */
    uint64_t buffers;
    uint64_t frozen_params; /* total with requires_grad=False */
    uint64_t published_params; /* from the file, 0 if not given */
    /* Transformer shape (0 for layer-list models). */
    int hidden, layers, heads, kv_heads, ffn, vocab, positions;
    int head_dim;       /* per attention head; hidden / heads unless the config says (Gemma) */
    int sliding_window; /* tokens a query attends to in windowed layers; 0 when none */
    char *note;         /* keys of the file accepted without being read, for the user; or NULL */
    ModelMoe moe;       /* experts; moe.experts == 0 for a dense model */
    bool tied_embeddings;
    bool flash_attention;
    ModelAttnKernel attention_kernel; /* with flash_attention: whose fused kernels */
    bool compiled; /* torch.compile (model_load with ov->compile) */
    ModelLossImpl loss_impl; /* the language-model loss's implementation (--loss-impl) */
    int nchw_convs; /* convolutions charged cuDNN's layout transposes (strat_memory_format_apply) */
    int conv_input_guessed; /* conv2d entries of a layer list without input_elems */
    ModelTraining training; /* from the file, after overrides */
} Model;

/* Command-line overrides; zero / negative fields mean "keep the file's value". */
typedef struct {
    int seq_len;
    int micro_batch;
    const char *param_dtype;
    const char *optimizer;
    int flash_attention;   /* -1 keep, 0 off, 1 on */
    ModelAttnKernel attention_kernel; /* with flash: whose fused kernels */
    bool compile;        /* torch.compile: fuse each chain of elementwise kernels */
    ModelLossImpl loss_impl; /* 0 (MODEL_LOSS_HF): transformers' loss, the default */
} ModelOverrides;

Model *model_load(const char *file, const ModelOverrides *ov, GError **error);
void model_free(Model *model);
/* A copy of `model` with its own modules (a generator may rewrite them: a TP rank's share,
 * fused kernels' counts, the CLI's per-point overrides); names and strings stay the model's, so
 * it lives no longer than the model. O(modules). Free with model_modules_copy_free. */
Model *model_modules_copy(const Model *model);
void model_modules_copy_free(Model *copy);
/* A copy of `model` whose leaves keep for backward what Megatron's fused kernels keep
 * (saved_bytes less eager_extra_bytes: Korthikanti et al.'s 34sbh for a GPT layer), and whose
 * loss keeps what vocab_parallel_cross_entropy keeps; NULL where no leaf differs. Free with model_fused_kernels_free (the strings stay the model's). */
Model *model_fused_kernels(const Model *model);
void model_fused_kernels_free(Model *copy);

/* Sums over a module's subtree. */
uint64_t model_subtree_params(const Model *model, int index);
/* Forward FLOPs of one sample through the whole model. */
double model_flops_fwd_per_sample(const Model *model);
/* Model FLOPs per sample of one training step (forward + backward, no recompute). */
double model_flops_train_per_sample(const Model *model);

/* Mixture of experts under expert parallelism over `ep` GPUs (ep divides moe.experts), tokens
 * routed uniformly (balanced experts):
 * - bytes one token sends to other GPUs in one MoE layer's forward: its hidden vector to each of
 *   its top_k experts (dispatch all-to-all) and back (combine), of which the fraction (ep-1)/ep
 *   lands on other GPUs: 2 * top_k * hidden * act_bytes * (ep - 1) / ep. The backward sends as
 *   much again (the gradients take the same routes reversed).
 * - parameters of the routed experts (all layers), and those one GPU holds unsharded while a
 *   layer runs: its experts/ep experts of the layer plus the layer's other parameters. */
double model_moe_alltoall_bytes_per_token(const Model *model, int ep, double act_bytes);
uint64_t model_moe_expert_params(const Model *model);
double model_moe_layer_params_per_gpu(const Model *model, int ep);

const char *model_optimizer_name(ModelOptimizer opt);
/* --attention's name of a fused kernel (flash, triton, flash1), and back (any case). */
const char *model_attention_kernel_name(ModelAttnKernel kernel);
bool model_attention_kernel_parse(const char *text, ModelAttnKernel *out);
/* --loss-impl's name of a loss implementation (hf, fused, fused-inplace, megatron, liger,
 * torchtitan), and back (any case). */
const char *model_loss_impl_name(ModelLossImpl impl);
bool model_loss_impl_parse(const char *text, ModelLossImpl *out);
/* Optimizer state bytes per parameter (fp32 states); the step's cost is src/kern/kern_optim.c's. */
double model_optimizer_state_bytes(ModelOptimizer opt);

/* Internal: builders used by model_load (model_hf.c, model_layers.c). */
typedef struct {
    GArray *modules; /* of ModelModule */
} ModelBuilder;
int model_builder_add(ModelBuilder *b, int parent, const char *name, const char *kind);
ModelModule *model_builder_get(ModelBuilder *b, int index);
/* The largest model fsdpsim takes: 10^15 parameters, a thousand times the largest published
 * dense model, and small enough that every byte count derived from it (x 16 for fp32 Adam) is
 * exact in a double and far inside uint64. */
#define MODEL_PARAMS_MAX 1e15
/* Links the tree and sums the parameters, with overflow-checked sums: a model beyond
 * MODEL_PARAMS_MAX is an input error naming `file` and `fields` (what to make smaller). On
 * error the builder's modules still belong to the model (model_free frees them). */
bool model_finish(Model *model, ModelBuilder *b, const char *file, const char *fields,
                  GError **error);

bool model_hf_build(Model *model, const char *file, void *cfg_root_obj, GError **error);
/* After a Hugging Face builder has read its keys: bookkeeping keys go to model->note, a misspelt
 * key is refused with a did-you-mean, any other unread key is refused naming it. cfg_root is a
 * CfgObj. */
bool model_hf_check_keys(Model *model, void *cfg_root, GError **error);
bool model_layers_build(Model *model, const char *file, void *cfg_root_obj, GError **error);

#endif
