/* model_layers: networks given as an explicit layer list ("format": "fsdpsim-layers"), e.g.
 * torchvision's ResNet-50. Each entry is one module of named_modules(), parents first.
 *
 * Leaf costs per sample: convolutions and linear layers run on tensor cores (their flops_fwd);
 * the others are memory-bound (read the input, write the output). Saved activations: each leaf
 * keeps its output for backward, except in-place ReLU (torchvision's inplace=True shares the
 * BatchNorm output) and the residual add (its backward needs no tensor). Max-pool also keeps
 * int64 indices. */
#include "model.h"

#include "../util/cfg.h"

#include <math.h>
#include <string.h>

static bool is_weighted(const char *kind)
{
    return strcmp(kind, "conv2d") == 0 || strcmp(kind, "linear") == 0;
}

static bool read_module(Model *m, ModelBuilder *b, GHashTable *by_name, CfgObj *co, double act,
                        GError **error)
{
    char *name = NULL, *kind = NULL, *shape = NULL;
    bool container = false;
    int64_t params = 0, buffers = 0;
    double flops = 0, out_elems = 0, in_elems = -1;
    bool ok = cfg_get_string(co, "name", true, &name, error) &&
              cfg_get_string(co, "kind", true, &kind, error) &&
              cfg_get_bool(co, "container", false, &container, error) &&
              cfg_get_int(co, "params", false, 0, (int64_t)1e13, &params, error) &&
              cfg_get_int(co, "buffers", false, 0, (int64_t)1e13, &buffers, error) &&
              cfg_get_double(co, "flops_fwd", !container, 0, 1e18, &flops, error) &&
              cfg_get_double(co, "output_elems", !container, 0, 1e15, &out_elems, error) &&
              cfg_get_double(co, "input_elems", false, 0, 1e15, &in_elems, error) &&
              cfg_get_string(co, "shape", false, &shape, error) &&
              cfg_obj_check_unknown(co, "expected name, kind, container, params, buffers, "
                                        "flops_fwd, output_elems, input_elems, shape", error);
    if (ok && g_hash_table_contains(by_name, name)) {
        cfg_set_error(error, co->file, co->path, "name", "module \"%s\" is listed twice", name);
        ok = false;
    }
    int parent = 0;
    if (ok) {
        const char *dot = strrchr(name, '.');
        char *pname = dot ? g_strndup(name, (gsize)(dot - name)) : g_strdup("");
        gpointer found = NULL;
        if (!g_hash_table_lookup_extended(by_name, pname, NULL, &found)) {
            cfg_set_error(error, co->file, co->path, "name",
                          "parent module \"%s\" of \"%s\" must be listed before it", pname, name);
            ok = false;
        }
        parent = GPOINTER_TO_INT(found);
        if (ok && !model_builder_get(b, parent)->kind[0]) {
            /* unreachable: the root has a kind */
        }
        /* every leaf runs a kernel (kernels_fwd 1), a container none: a relu or batchnorm leaf
         * (flops_fwd dropped: memory-bound) was taken as a parent and its own cost lost */
        if (ok && model_builder_get(b, parent)->kernels_fwd > 0) {
            cfg_set_error(error, co->file, co->path, "name",
                          "parent \"%s\" is a leaf (has flops_fwd); mark it \"container\": true",
                          pname);
            ok = false;
        }
        g_free(pname);
    }
    if (ok) {
        int i = model_builder_add(b, parent, name, kind);
        ModelModule *mod = model_builder_get(b, i);
        g_hash_table_insert(by_name, mod->name, GINT_TO_POINTER(i));
        mod->is_list = strcmp(kind, "ModuleList") == 0 || strcmp(kind, "ModuleDict") == 0;
        mod->params = (uint64_t)params;
        mod->buffers = (uint64_t)buffers;
        if (!container) {
            double out_bytes = out_elems * act;
            mod->flops_fwd = is_weighted(kind) ? flops : 0;
            mod->flops_bwd_ratio = is_weighted(kind) ? 2 : 1;
            mod->kernels_fwd = 1;
            if (is_weighted(kind)) {
                mod->saved_bytes = out_bytes;
                /* As an (implicit) GEMM: K = FLOPs per output element / 2, N = output
                 * channels = weights / K, rows = output elements / N. */
                double k = out_elems > 0 ? flops / (2 * out_elems) : 0;
                double n = k >= 1 ? floor((double)params / k) : 0;
                if (n >= 1 && k >= 1)
                    mod->kernel = (ModelKernel){.kind = MODEL_KERNEL_GEMM,
                                                .rows = out_elems / n, .n = n, .k = k};
                /* cuDNN's tensor-core convolutions work in NHWC; given NCHW tensors it transposes
                 * the input before and the output after (NVIDIA, "Convolutional Layers User's
                 * Guide", Tensor Layouts In Memory). A file without input_elems: the input
                 * taken as large as the output (the model says so in its note). */
                if (strcmp(kind, "conv2d") == 0) {
                    if (in_elems < 0)
                        m->conv_input_guessed++;
                    double in = in_elems < 0 ? out_elems : in_elems;
                    mod->layout_bytes_fwd = 2 * (in + out_elems) * act;
                    if (mod->kernel.kind == MODEL_KERNEL_GEMM)
                        mod->kernel.input = in;
                }
            } else if (strcmp(kind, "relu") == 0) {
                mod->mem_bytes_fwd = 2 * out_bytes;
            } else if (strcmp(kind, "add") == 0) {
                mod->mem_bytes_fwd = 3 * out_bytes;
            } else if (strcmp(kind, "maxpool2d") == 0) {
                mod->mem_bytes_fwd = 5 * out_bytes; /* 3x3 window over a 4x larger input */
                mod->saved_bytes = out_bytes + 8 * out_elems;
            } else {
                /* batchnorm: statistics pass + normalise pass; avgpool, flatten and others:
                 * read and write once. */
                double passes = strcmp(kind, "batchnorm2d") == 0 ? 3 : 2;
                mod->mem_bytes_fwd = passes * out_bytes;
                mod->saved_bytes = out_bytes;
            }
        }
    }
    g_free(name);
    g_free(kind);
    g_free(shape);
    return ok;
}

bool model_layers_build(Model *m, const char *file, void *root_obj, GError **error)
{
    CfgObj *root = root_obj;
    char *format = NULL, *input = NULL, *name = NULL;
    bool ok = cfg_get_string(root, "format", true, &format, error);
    if (ok && strcmp(format, "fsdpsim-layers") != 0) {
        cfg_set_error(error, file, "", "format", "expected \"fsdpsim-layers\", got \"%s\"", format);
        ok = false;
    }
    g_free(format);
    ok = ok && cfg_get_string(root, "name", false, &name, error) &&
         cfg_get_string(root, "input_kind", false, &input, error);
    if (ok && name) {
        g_free(m->name);
        m->name = name;
        name = NULL;
    }
    g_free(name);
    if (ok && input && strcmp(input, "image") != 0 && strcmp(input, "tokens") != 0) {
        cfg_set_error(error, file, "", "input_kind", "expected \"image\" or \"tokens\"");
        ok = false;
    }
    m->token_input = ok && input && strcmp(input, "tokens") == 0;
    g_free(input);
    const cJSON *list = ok ? cfg_item(root, "modules") : NULL;
    if (ok && (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0 ||
               cJSON_GetArraySize(list) > 1000000)) {
        /* a million: 4,000 times torchvision's ResNet-50 (it lists 250) */
        cfg_set_error(error, file, "", "modules",
                      "expected a non-empty array of at most 1000000 modules, got %d",
                      cJSON_IsArray(list) ? cJSON_GetArraySize(list) : 0);
        ok = false;
    }
    cfg_obj_ignore(root, (const char *const[]){"flops_note", "description", "source", NULL});
    ok = ok && cfg_obj_check_unknown(root, "expected format, name, input_kind, modules, "
                                           "flops_note, fsdpsim", error);
    if (!ok)
        return false;
    if (m->token_input && m->training.seq_len <= 0)
        m->training.seq_len = 1;
    ModelBuilder b = {g_array_new(FALSE, TRUE, sizeof(ModelModule))};
    GHashTable *by_name = g_hash_table_new(g_str_hash, g_str_equal);
    int root_i = model_builder_add(&b, -1, "", "Model");
    g_hash_table_insert(by_name, model_builder_get(&b, root_i)->name, GINT_TO_POINTER(root_i));
    double act = hw_dtype_bytes(m->training.param_dtype);
    int index = 0;
    for (const cJSON *it = list->child; it && ok; it = it->next, index++) {
        char *path = g_strdup_printf("modules[%d]", index);
        CfgObj co;
        ok = cfg_obj_open(&co, file, path, it, error) && read_module(m, &b, by_name, &co, act, error);
        if (co.seen)
            cfg_obj_close(&co);
        g_free(path);
        /* by_name's keys are the modules' own name strings, which stay where they are when the
         * builder's array grows: nothing to re-point (rebuilding the table after every module
         * made a list of 40,000 modules take 27 s) */
    }
    g_hash_table_destroy(by_name);
    if (ok && m->conv_input_guessed > 0 && !m->note)
        m->note = g_strdup_printf("%s: %d conv2d modules without \"input_elems\": their input "
                                  "taken as large as their output for cuDNN's NCHW transposes "
                                  "(tools/gen_resnet.py writes it)",
                                  file, m->conv_input_guessed);
    if (!ok) {
        for (guint i = 0; i < b.modules->len; i++) {
            g_free(model_builder_get(&b, (int)i)->name);
            g_free(model_builder_get(&b, (int)i)->kind);
        }
        g_array_free(b.modules, TRUE);
        return false;
    }
    return model_finish(m, &b, file, "'modules[].params'/'modules[].buffers'", error);
}
