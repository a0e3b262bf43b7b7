/* plan: how the job is laid out. Ranks on nodes (block placement, as srun places them), the
 * data-parallel groups of each strategy, and FSDP's wrap units. */
#ifndef FSD_PLAN_H
#define FSD_PLAN_H

#include "../model/model.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum { PLAN_WRAP_NONE, PLAN_WRAP_SIZE, PLAN_WRAP_TRANSFORMER } PlanWrapKind;

typedef struct {
    PlanWrapKind kind;
    uint64_t min_num_params; /* size policy; PyTorch's default is 1e8 */
} PlanWrapPolicy;

/* One FSDP unit: a wrapped module and the parameters it flattens (its subtree minus the subtrees
 * of wrapped descendants). */
typedef struct {
    int module;       /* index in Model.modules; 0 = root */
    int parent_unit;  /* -1 for the root unit */
    uint64_t numel;   /* parameters in the FlatParameter */
    uint64_t padded;  /* numel padded to a multiple of the shard group size */
} PlanUnit;

typedef struct {
    PlanUnit *units;
    int n_units;
    int *unit_of_module; /* per module: the unit whose FlatParameter holds its parameters */
} PlanWrap;

/* Parses "none", "transformer", "size", "size:N" (N may be 1e8, 100M or 100000000). */
bool plan_wrap_parse(const char *text, PlanWrapPolicy *out, GError **error);
PlanWrap *plan_wrap_build(const Model *model, const PlanWrapPolicy *policy, int shard_size);
void plan_wrap_free(PlanWrap *wrap);

#endif
