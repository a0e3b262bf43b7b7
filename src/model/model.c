/* model: loading, the module tree and whole-model sums; see model.h. */
#include "model.h"

#include "../util/cfg.h"

#include <string.h>

int model_builder_add(ModelBuilder *b, int parent, const char *name, const char *kind)
{
    ModelModule m = {0};
    m.name = g_strdup(name);
    m.kind = g_strdup(kind);
    m.parent = parent;
    m.first_child = m.next_sibling = -1;
    m.flops_bwd_ratio = 1;
    g_array_append_val(b->modules, m);
    return (int)b->modules->len - 1;
}

ModelModule *model_builder_get(ModelBuilder *b, int index)
{
    return &g_array_index(b->modules, ModelModule, index);
}

/* Links children and computes depths and totals. O(n). */
bool model_finish(Model *model, ModelBuilder *b, const char *file, const char *fields,
                  GError **error)
{
    model->n_modules = (int)b->modules->len;
    model->modules = (ModelModule *)g_array_free(b->modules, FALSE);
    b->modules = NULL;
    int *last_child = g_new(int, model->n_modules);
    for (int i = 0; i < model->n_modules; i++)
        last_child[i] = -1;
    model->params = model->buffers = 0;
    bool overflow = false;
    for (int i = 0; i < model->n_modules; i++) {
        ModelModule *m = &model->modules[i];
        /* a wrapped sum reported half the parameters of n_embd 4194304 x n_layer 100000 */
        overflow |= __builtin_add_overflow(model->params, m->params, &model->params);
        overflow |= __builtin_add_overflow(model->buffers, m->buffers, &model->buffers);
        /* Megatron's row-parallel Linears take the hidden size out (kern.h judges the split
         * input's alignment); one with hidden in and out is either, the same widths */
        if (m->kernel.kind == MODEL_KERNEL_GEMM && m->kernel.exact_dims && model->hidden > 0)
            m->kernel.row_parallel = m->kernel.n == model->hidden;
        if (m->parent < 0)
            continue;
        m->depth = model->modules[m->parent].depth + 1;
        if (last_child[m->parent] < 0)
            model->modules[m->parent].first_child = i;
        else
            model->modules[last_child[m->parent]].next_sibling = i;
        last_child[m->parent] = i;
    }
    g_free(last_child);
    if (overflow || (double)model->params > MODEL_PARAMS_MAX ||
        (double)model->buffers > MODEL_PARAMS_MAX) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "%s: fields %s: the model has %s%.4g parameters and buffers, beyond the %g "
                    "fsdpsim takes; expected a smaller model",
                    file, fields, overflow ? "more than " : "",
                    overflow ? 18446744073709551615.0
                             : (double)MAX(model->params, model->buffers),
                    MODEL_PARAMS_MAX);
        return false;
    }
    return true;
}

uint64_t model_subtree_params(const Model *model, int index)
{
    uint64_t total = model->modules[index].params;
    for (int c = model->modules[index].first_child; c >= 0; c = model->modules[c].next_sibling)
        total += model_subtree_params(model, c);
    return total;
}

double model_flops_fwd_per_sample(const Model *model)
{
    double flops = 0;
    for (int i = 0; i < model->n_modules; i++)
        flops += model->modules[i].flops_fwd;
    return flops;
}

double model_flops_train_per_sample(const Model *model)
{
    double flops = 0;
    for (int i = 0; i < model->n_modules; i++)
        flops += model->modules[i].flops_fwd * (1 + model->modules[i].flops_bwd_ratio);
    return flops;
}

const char *model_optimizer_name(ModelOptimizer opt)
{
    switch (opt) {
    case MODEL_OPT_ADAMW: return "adamw";
    case MODEL_OPT_ADAM: return "adam";
    case MODEL_OPT_SGD: return "sgd";
    case MODEL_OPT_SGD_MOMENTUM: return "sgd_momentum";
    }
    return "?";
}

/* --attention's names for the fused kernels ("flash" is FlashAttention-2, as SDPA runs it). */
static const char *const attention_kernel_names[] = {
    [MODEL_ATTN_FLASH2] = "flash", [MODEL_ATTN_TRITON] = "triton", [MODEL_ATTN_FLASH1] = "flash1"};

const char *model_attention_kernel_name(ModelAttnKernel kernel)
{
    return kernel < G_N_ELEMENTS(attention_kernel_names) ? attention_kernel_names[kernel] : "?";
}

/* The index of `text` in names[0..n) (any case; empty slots skipped), -1 if none. */
static int name_index(const char *const *names, size_t n, const char *text)
{
    for (size_t i = 0; i < n; i++)
        if (names[i] && g_ascii_strcasecmp(text, names[i]) == 0)
            return (int)i;
    return -1;
}

bool model_attention_kernel_parse(const char *text, ModelAttnKernel *out)
{
    int i = name_index(attention_kernel_names, G_N_ELEMENTS(attention_kernel_names), text);
    if (i >= 0)
        *out = (ModelAttnKernel)i;
    return i >= 0;
}

static const char *const loss_impl_names[] = {
    [MODEL_LOSS_HF] = "hf",         [MODEL_LOSS_FUSED] = "fused",
    [MODEL_LOSS_FUSED_INPLACE] = "fused-inplace", [MODEL_LOSS_MEGATRON] = "megatron",
    [MODEL_LOSS_LIGER] = "liger", [MODEL_LOSS_TORCHTITAN] = "torchtitan"};

const char *model_loss_impl_name(ModelLossImpl impl)
{
    return impl < G_N_ELEMENTS(loss_impl_names) ? loss_impl_names[impl] : "?";
}

bool model_loss_impl_parse(const char *text, ModelLossImpl *out)
{
    int i = name_index(loss_impl_names, G_N_ELEMENTS(loss_impl_names), text);
    if (i >= 0)
        *out = (ModelLossImpl)i;
    return i >= 0;
}

/* adamw, adam, sgd, sgd_momentum, in any case, and as torch.optim names them (AdamW,
 * torch.optim.AdamW, SGD). */
static bool optimizer_parse(const char *text, ModelOptimizer *out)
{
    if (g_str_has_prefix(text, "torch.optim."))
        text += strlen("torch.optim.");
    for (int i = MODEL_OPT_ADAMW; i <= MODEL_OPT_SGD_MOMENTUM; i++) {
        if (g_ascii_strcasecmp(text, model_optimizer_name((ModelOptimizer)i)) == 0) {
            *out = (ModelOptimizer)i;
            return true;
        }
    }
    return false;
}

/* Adam keeps exp_avg and exp_avg_sq in fp32 (torch.optim.AdamW); SGD with momentum one buffer. */
double model_optimizer_state_bytes(ModelOptimizer opt)
{
    switch (opt) {
    case MODEL_OPT_ADAMW:
    case MODEL_OPT_ADAM: return 8;
    case MODEL_OPT_SGD_MOMENTUM: return 4;
    case MODEL_OPT_SGD: return 0;
    }
    return 0;
}

void model_free(Model *model)
{
    if (!model)
        return;
    for (int i = 0; i < model->n_modules; i++) {
        g_free(model->modules[i].name);
        g_free(model->modules[i].kind);
    }
    g_free(model->modules);
    g_free(model->file);
    g_free(model->name);
    g_free(model->model_type);
    g_free(model->note);
    g_free(model);
}

/* Reads the "fsdpsim" section: name, published total and training defaults; *file_seq and
 * *file_image: the training section's seq_len and image_size, 0 where it has none. */
static bool read_fsdpsim_section(Model *model, CfgObj *root, char **block_kind, int64_t *file_seq,
                                 int64_t *file_image, GError **error)
{
    CfgObj sec, tr;
    if (!cfg_obj_child(root, "fsdpsim", true, &sec, error))
        return false;
    if (!sec.obj)
        return true;
    int64_t published = 0;
    bool ok = cfg_get_string(&sec, "name", false, &model->name, error) &&
              cfg_get_int(&sec, "published_params", false, 1, (int64_t)1e15, &published, error) &&
              cfg_get_string(&sec, "wrap_block_kind", false, block_kind, error);
    cfg_obj_ignore(&sec, (const char *const[]){"published_params_source", "note", NULL});
    model->published_params = (uint64_t)published;
    ok = ok && cfg_obj_child(&sec, "training", true, &tr, error);
    if (ok && tr.obj) {
        int64_t seq = model->training.seq_len, img = model->training.image_size;
        int64_t mb = model->training.micro_batch;
        char *dtype = NULL, *opt = NULL;
        ok = cfg_get_int(&tr, "seq_len", false, 1, 1 << 22, &seq, error) &&
             cfg_get_int(&tr, "image_size", false, 1, 1 << 16, &img, error) &&
             cfg_get_int(&tr, "micro_batch_size", false, 1, 1 << 20, &mb, error) &&
             cfg_get_string(&tr, "param_dtype", false, &dtype, error) &&
             cfg_get_string(&tr, "optimizer", false, &opt, error) &&
             cfg_get_bool(&tr, "flash_attention", false, &model->flash_attention, error) &&
             cfg_obj_check_unknown(&tr, "expected seq_len, image_size, micro_batch_size, "
                                        "param_dtype, optimizer, flash_attention", error);
        if (ok && dtype && !hw_dtype_parse(dtype, &model->training.param_dtype)) {
            cfg_set_error(error, tr.file, tr.path, "param_dtype",
                          "expected one of fp32, bf16, fp16, got \"%s\"", dtype);
            ok = false;
        }
        if (ok && opt && !optimizer_parse(opt, &model->training.optimizer)) {
            cfg_set_error(error, tr.file, tr.path, "optimizer",
                          "expected one of adamw, adam, sgd, sgd_momentum, got \"%s\"", opt);
            ok = false;
        }
        *file_seq = cfg_has(&tr, "seq_len") ? seq : 0;
        *file_image = cfg_has(&tr, "image_size") ? img : 0;
        model->training.seq_len = (int)seq;
        model->training.image_size = (int)img;
        model->training.micro_batch = (int)mb;
        g_free(dtype);
        g_free(opt);
        cfg_obj_close(&tr);
    }
    ok = ok && cfg_obj_check_unknown(&sec, "expected name, published_params, "
                                           "published_params_source, wrap_block_kind, training",
                                     error);
    cfg_obj_close(&sec);
    return ok;
}

static const char *const dtype_names[] = {"fp32", "bf16", "fp16", "bfloat16", "float16",
                                           "float32", NULL};
static const char *const optimizer_names[] = {"adamw", "adam", "sgd", "sgd_momentum", NULL};

/* "; did you mean 'x'?" for a near miss, or "" (a static buffer: one message at a time) */
static const char *did_you_mean(const char *got, const char *const *choices)
{
    static char text[96];
    const char *close = cfg_closest(got, choices);
    if (!close)
        return "";
    g_snprintf(text, sizeof text, "; did you mean '%s'?", close);
    return text;
}

static bool apply_overrides(Model *model, const ModelOverrides *ov, GError **error)
{
    if (!ov)
        return true;
    if (ov->seq_len > 0)
        model->training.seq_len = ov->seq_len;
    if (ov->micro_batch > 0)
        model->training.micro_batch = ov->micro_batch;
    if (ov->flash_attention >= 0)
        model->flash_attention = ov->flash_attention;
    model->attention_kernel = model->flash_attention ? ov->attention_kernel : MODEL_ATTN_FLASH2;
    model->loss_impl = ov->loss_impl;
    if (ov->param_dtype && !hw_dtype_parse(ov->param_dtype, &model->training.param_dtype)) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "option --param-dtype: expected fp32, bf16 or fp16 (or torch.bfloat16, ...), "
                    "got \"%s\"%s",
                    ov->param_dtype, did_you_mean(ov->param_dtype, dtype_names));
        return false;
    }
    if (ov->optimizer && !optimizer_parse(ov->optimizer, &model->training.optimizer)) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "option --optimizer: expected adamw, adam, sgd or sgd_momentum (or AdamW, "
                    "torch.optim.SGD, ...), got \"%s\"%s",
                    ov->optimizer, did_you_mean(ov->optimizer, optimizer_names));
        return false;
    }
    return true;
}

/* torch.compile (Inductor) fuses the chain of elementwise kernels a memory-bound leaf runs in
 * eager mode (a norm's mean, rsqrt, multiply, cast; GELU's tanh formula) into one kernel that
 * reads its inputs and writes its output once. Each of a leaf's k eager kernels moves about the
 * same tensor, so the fused kernel moves 1/k of the bytes. GEMMs and attention stay library
 * calls; graph breaks and CUDA graphs are not modelled.
 * Nor does the compiled graph keep what the eager ops keep for backward: AOTAutograd splits the
 * joint graph with min_cut_rematerialization_partition (torch/_functorch/partitioners.py, the
 * partition_fn of Inductor's compile_fx), which recomputes pointwise ops in the backward and
 * saves the smallest set of tensors it can recompute them from: a norm's input (and one rstd a
 * token), an activation's input, SwiGLU's two inputs: what a fused kernel keeps, so each leaf
 * loses its eager_extra_bytes (model_hf.c: gelu_new's pow/tanh tensors, RMSNorm's fp32 copy and
 * normalised tensor, SiLU's output). Under torch.autocast (DDP) a norm still keeps its fp32
 * input, the residual stream (its autocast_extra_bytes), while an activation's fp32
 * intermediates (gelu_new's pow) are recomputed from its input in the compute dtype. The loss
 * keeps its own count (--loss-impl; its eager_extra_bytes is against Megatron's loss). */
static void fuse_elementwise(Model *model)
{
    for (int i = 0; i < model->n_modules; i++) {
        ModelModule *m = &model->modules[i];
        if (m->first_child >= 0)
            continue;
        if (m->eager_extra_bytes > 0 && strcmp(m->kind, "CrossEntropyLoss") != 0) {
            m->saved_bytes = MAX(0, m->saved_bytes - m->eager_extra_bytes);
            m->eager_extra_bytes = 0;
            if (m->kernel.kind == MODEL_KERNEL_NONE && m->params == 0) /* an activation */
                m->autocast_extra_bytes = 0;
        }
        if (m->kernel.kind != MODEL_KERNEL_NONE || m->kernels_fwd <= 1)
            continue;
        m->mem_bytes_fwd /= m->kernels_fwd;
        m->kernels_fwd = 1;
    }
    model->compiled = true;
}

/* The name of a model whose file gives none (no fsdpsim.name, no layer list "name"): what
 * identifies it, not the file it sits in, which for a checkpoint is always "config.json".
 * - _name_or_path, as transformers' save_pretrained writes it: a Hub id
 *   ("meta-llama/Llama-2-7b-hf") as it is; a local path (absolute, ./ ../ ~, or more than one
 *   '/') by its last part;
 * - for a file called config.json, its directory's name (from_pretrained's layout);
 * - else the file's name without its extension.
 * UTF-8 for --json, whatever the path. */
static char *default_name(const char *file, const cJSON *json)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(json, "_name_or_path");
    const char *v = cJSON_IsString(id) ? id->valuestring : "";
    while (g_ascii_isspace(*v))
        v++;
    if (*v) {
        const char *slash = strchr(v, '/');
        bool local = strchr("/.~", v[0]) || strchr(v, '\\') || (slash && strchr(slash + 1, '/'));
        char *name = local ? g_path_get_basename(v) : g_strdup(v);
        if (*name && strcmp(name, "/") && strcmp(name, ".") && strcmp(name, ".."))
            return name;
        g_free(name);
    }
    char *base = g_path_get_basename(file), *name = NULL;
    if (strcmp(base, "config.json") == 0) {
        char *abs = g_canonicalize_filename(file, NULL);
        char *dir = g_path_get_dirname(abs);
        char *parent = g_path_get_basename(dir);
        if (strcmp(parent, G_DIR_SEPARATOR_S) && strcmp(parent, "."))
            name = g_filename_display_name(parent);
        g_free(parent), g_free(dir), g_free(abs);
    }
    if (!name) {
        char *dot = strrchr(base, '.');
        if (dot && dot != base)
            *dot = '\0';
        name = g_filename_display_name(base);
    }
    g_free(base);
    return name;
}

Model *model_modules_copy(const Model *model)
{
    Model *copy = g_new(Model, 1);
    *copy = *model;
    copy->modules = g_memdup2(model->modules, sizeof(ModelModule) * (size_t)model->n_modules);
    return copy;
}

void model_modules_copy_free(Model *copy)
{
    if (!copy)
        return;
    g_free(copy->modules);
    g_free(copy);
}

Model *model_fused_kernels(const Model *model)
{
    bool any = false;
    for (int i = 0; i < model->n_modules && !any; i++)
        any = model->modules[i].eager_extra_bytes != 0;
    if (!any)
        return NULL;
    Model *copy = model_modules_copy(model);
    for (int i = 0; i < model->n_modules; i++) {
        ModelModule *m = &copy->modules[i];
        m->saved_bytes = MAX(0, m->saved_bytes - m->eager_extra_bytes);
        m->eager_extra_bytes = 0;
    }
    copy->loss_impl = MODEL_LOSS_MEGATRON; /* the loss leaf's count (model_hf_loss) */
    return copy;
}

void model_fused_kernels_free(Model *copy)
{
    model_modules_copy_free(copy);
}

Model *model_load(const char *file, const ModelOverrides *ov, GError **error)
{
    cJSON *json = cfg_parse_file(file, error);
    if (!json)
        return NULL;
    Model *model = g_new0(Model, 1);
    model->file = g_strdup(file);
    model->flash_attention = true;
    model->training = (ModelTraining){
        .seq_len = 0, .image_size = 224, .micro_batch = 1,
        .param_dtype = HW_DTYPE_BF16, .optimizer = MODEL_OPT_ADAMW};
    CfgObj root;
    char *block_kind = NULL;
    int64_t file_seq = 0, file_image = 0;
    bool ok =
        cfg_obj_open(&root, file, "", json, error) && cfg_check_kind(json, file, "--model", error);
    bool layers = ok && cfg_has(&root, "format");
    if (ok) {
        /* A real checkpoint's config.json may say which dtype it was saved in; use it as the
         * default parameter dtype of the unsharded model. */
        char *torch_dtype = NULL;
        ok = cfg_get_string(&root, "torch_dtype", false, &torch_dtype, error);
        HwDtype d;
        if (ok && torch_dtype && hw_dtype_parse(torch_dtype, &d))
            model->training.param_dtype = d;
        g_free(torch_dtype);
    }
    ok = ok && read_fsdpsim_section(model, &root, &block_kind, &file_seq, &file_image, error) &&
         apply_overrides(model, ov, error);
    if (ok && layers) {
        g_free(model->model_type);
        model->model_type = g_strdup("layers");
        ok = model_layers_build(model, file, &root, error);
        if (ok && block_kind) {
            for (int i = 0; i < model->n_modules; i++)
                model->modules[i].is_block = strcmp(model->modules[i].kind, block_kind) == 0;
        }
    } else if (ok) {
        ok = model_hf_build(model, file, &root, error);
    }
    if (ok && !model->name)
        model->name = default_name(file, json);
    /* the training section's sample size where the model has no such size, or another one: a
     * ViT's seq_len (its patches) or image_size (its config's), a CNN's seq_len, a decoder's
     * image_size were dropped without a word */
    if (ok && (file_seq > 0 && !model->token_input)) {
        cfg_set_error(error, file, "fsdpsim.training", "seq_len",
                      "%s takes images (%dx%d pixels per sample), not token sequences; expected "
                      "no seq_len",
                      model->name, model->training.image_size, model->training.image_size);
        ok = false;
    } else if (ok && file_image > 0 && model->token_input) {
        cfg_set_error(error, file, "fsdpsim.training", "image_size",
                      "%s takes token sequences, not images; expected no image_size (seq_len "
                      "sets the tokens per sample)",
                      model->name);
        ok = false;
    } else if (ok && file_image > 0 && file_image != model->training.image_size) {
        cfg_set_error(error, file, "fsdpsim.training", "image_size",
                      "%" G_GINT64_FORMAT ", but the config's image_size (what its position "
                      "embeddings are for) is %d; expected %d or no image_size",
                      file_image, model->training.image_size, model->training.image_size);
        ok = false;
    }
    if (root.seen)
        cfg_obj_close(&root);
    g_free(block_kind);
    cJSON_Delete(json);
    if (!ok) {
        model_free(model);
        return NULL;
    }
    if (ov && ov->flash_attention >= 0 && model->heads == 0) {
        /* a layer list (CNN) has no attention: the option would be silently ignored */
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "option --attention (or --no-flash-attention): %s has no attention layers; "
                    "expected no attention option",
                    model->name);
        model_free(model);
        return NULL;
    }
    if (ov && ov->flash_attention == 1 && model->model_type && !strcmp(model->model_type, "t5")) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "option --attention %s: transformers' T5Attention adds a relative position "
                    "bias to materialised scores and has no FlashAttention or SDPA path; expected "
                    "--attention eager or none",
                    model_attention_kernel_name(ov->attention_kernel));
        model_free(model);
        return NULL;
    }
    /* FlashAttention v1 (its README, e.g. at Dao-AILab/flash-attention 88173a1: "Head
     * dimensions that are multiples of 8, up to 128") has no window_size either: a model it
     * cannot run would be costed as if it could */
    if (ov && model->flash_attention && ov->attention_kernel == MODEL_ATTN_FLASH1 &&
        (model->head_dim > 128 || model->head_dim % 8 != 0 ||
         (model->sliding_window > 0 && model->sliding_window < model->training.seq_len))) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "option --attention flash1: FlashAttention v1 runs head dims that are "
                    "multiples of 8 up to 128 and no sliding window; %s has head dim %d%s; "
                    "expected --attention flash (FlashAttention-2) or eager",
                    model->name, model->head_dim,
                    model->sliding_window > 0 && model->sliding_window < model->training.seq_len
                        ? " and a sliding window"
                        : "");
        model_free(model);
        return NULL;
    }
    if (ov && ov->loss_impl != MODEL_LOSS_HF && model->vocab == 0) {
        /* a CNN or a ViT classifier has no language-model loss the option could change */
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "option --loss-impl %s: %s has no language-model head (no vocabulary); "
                    "expected no --loss-impl",
                    model_loss_impl_name(ov->loss_impl), model->name);
        model_free(model);
        return NULL;
    }
    if (ov && ov->seq_len > 0 && !model->token_input) {
        /* a CNN or ViT sample is an image: a sequence length would be silently ignored */
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "option --seq-len: %s takes images (%dx%d pixels per sample), not token "
                    "sequences; expected no --seq-len (--micro-batch sets the images per GPU)",
                    model->name, model->training.image_size, model->training.image_size);
        model_free(model);
        return NULL;
    }
    if (ov && ov->compile)
        fuse_elementwise(model);
    return model;
}
