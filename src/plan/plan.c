/* plan: wrap units; see plan.h. */
#include "plan.h"

#include "../util/cfg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool plan_wrap_parse(const char *text, PlanWrapPolicy *out, GError **error)
{
    *out = (PlanWrapPolicy){PLAN_WRAP_SIZE, 100000000};
    if (strcmp(text, "none") == 0) {
        out->kind = PLAN_WRAP_NONE;
        return true;
    }
    if (strcmp(text, "transformer") == 0) {
        out->kind = PLAN_WRAP_TRANSFORMER;
        return true;
    }
    if (strcmp(text, "size") == 0)
        return true;
    if (strncmp(text, "size:", 5) == 0) {
        const char *num = text + 5;
        char *end = NULL;
        double v = g_ascii_strtod(num, &end);
        if (end && *end == 'K') v *= 1e3, end++;
        else if (end && *end == 'M') v *= 1e6, end++;
        else if (end && *end == 'B') v *= 1e9, end++;
        if (end != num && end && *end == '\0' && isfinite(v) && v >= 1 && v <= 1e15) {
            out->min_num_params = (uint64_t)llround(v);
            return true;
        }
    }
    g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                "option --wrap: expected none, transformer, size or size:MIN_PARAMS (e.g. "
                "size:1e8 or size:100M), got \"%s\"", text);
    return false;
}

typedef struct {
    const Model *model;
    const PlanWrapPolicy *policy;
    gboolean *wrapped;
} WrapCtx;

/* PyTorch's _recursive_wrap with size_based_auto_wrap_policy (torch/distributed/fsdp/wrap.py):
 * recurse into a module only if its not-yet-wrapped parameters reach min_num_params; children
 * first; then wrap the module itself if the remainder still reaches it, unless it is a ModuleList
 * or ModuleDict (exclude_wrap_modules). Returns the parameters wrapped in this subtree. */
static uint64_t size_wrap(WrapCtx *w, int m, bool only_children)
{
    const Model *model = w->model;
    uint64_t nonwrapped = model_subtree_params(model, m);
    if (nonwrapped < w->policy->min_num_params)
        return 0;
    uint64_t wrapped_children = 0;
    for (int c = model->modules[m].first_child; c >= 0; c = model->modules[c].next_sibling)
        wrapped_children += size_wrap(w, c, false);
    uint64_t remainder = nonwrapped - wrapped_children;
    if (!only_children && remainder >= w->policy->min_num_params && !model->modules[m].is_list) {
        w->wrapped[m] = TRUE;
        return nonwrapped;
    }
    return wrapped_children;
}

PlanWrap *plan_wrap_build(const Model *model, const PlanWrapPolicy *policy, int shard_size)
{
    WrapCtx w = {model, policy, g_new0(gboolean, model->n_modules)};
    w.wrapped[0] = TRUE; /* FullyShardedDataParallel(model) wraps the root itself */
    if (policy->kind == PLAN_WRAP_SIZE)
        size_wrap(&w, 0, true);
    else if (policy->kind == PLAN_WRAP_TRANSFORMER)
        for (int i = 1; i < model->n_modules; i++)
            w.wrapped[i] = model->modules[i].is_block;
    PlanWrap *wrap = g_new0(PlanWrap, 1);
    wrap->unit_of_module = g_new(int, model->n_modules);
    GArray *units = g_array_new(FALSE, TRUE, sizeof(PlanUnit));
    for (int i = 0; i < model->n_modules; i++) {
        int parent = model->modules[i].parent;
        int parent_unit = parent >= 0 ? wrap->unit_of_module[parent] : -1;
        if (w.wrapped[i]) {
            PlanUnit u = {.module = i, .parent_unit = parent_unit};
            g_array_append_val(units, u);
            wrap->unit_of_module[i] = (int)units->len - 1;
        } else {
            wrap->unit_of_module[i] = parent_unit;
        }
        PlanUnit *owner = &g_array_index(units, PlanUnit, wrap->unit_of_module[i]);
        owner->numel += model->modules[i].params;
    }
    /* FlatParameter pads to a multiple of the world size of its shard group
     * (torch/distributed/fsdp/_flat_param.py), so every rank's shard has the same size. */
    for (guint u = 0; u < units->len; u++) {
        PlanUnit *unit = &g_array_index(units, PlanUnit, u);
        uint64_t n = (uint64_t)MAX(shard_size, 1);
        unit->padded = (unit->numel + n - 1) / n * n;
    }
    wrap->n_units = (int)units->len;
    wrap->units = (PlanUnit *)g_array_free(units, FALSE);
    g_free(w.wrapped);
    return wrap;
}

void plan_wrap_free(PlanWrap *wrap)
{
    if (!wrap)
        return;
    g_free(wrap->units);
    g_free(wrap->unit_of_module);
    g_free(wrap);
}
