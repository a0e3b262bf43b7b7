/* Tensor and pipeline parallelism options of the simulation (parallel.c). */
#pragma once

#include "cli.h"
#include "../model/model.h"
#include "../strategy/strategy.h"

/* The command line's text and numbers, UNSET / NULL when not given. */
typedef struct {
    int tp, pp, micro_batches, virtual_stages;
    int ep; /* --ep: expert parallelism (issue 19) */
    double moe_imbalance; /* --moe-imbalance, 0 when not given */
    int grad_accum;   /* --grad-accum as given (0 when not), to catch a disagreement */
    char *pp_schedule, *placement, *pp_partition;
    const char *wrap; /* --wrap as given */
    gboolean sequence_parallel;
    char *pp_scatter_gather; /* --pp-scatter-gather: megatron or deepspeed */
} CliParallel;

/* Checks them against the model and the machine and fills opt (after its other options);
 * opt->pp_partition is allocated (g_free it). */
bool cli_parallel_options(const CliParallel *p, const Model *model, int gpus_per_node,
                          StratOptions *opt, GError **error);
