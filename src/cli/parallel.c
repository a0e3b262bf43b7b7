/* parallel: the tensor and pipeline parallelism options of the simulation (issue 5), checked
 * against the model and the machine before anything is generated. */
#include "parallel.h"
#include "../util/cfg.h"

#include <stdlib.h>
#include <string.h>

static bool parse_partition(const char *text, StratOptions *opt, GError **error)
{
    char **parts = g_strsplit(text, ",", -1);
    int n = (int)g_strv_length(parts);
    opt->pp_partition = g_new0(int, MAX(n, 1));
    opt->n_pp_partition = n;
    for (int i = 0; i < n; i++) {
        char *end = NULL;
        long v = strtol(parts[i], &end, 10);
        if (end == parts[i] || *end || v < 1 || v > 100000) {
            cfg_input_error(error, "option --pp-partition: field 'layers per stage': expected "
                                   "comma-separated layer counts of 1 or more, got \"%s\"", parts[i]);
            g_strfreev(parts);
            return false;
        }
        opt->pp_partition[i] = (int)v;
    }
    g_strfreev(parts);
    return true;
}

bool cli_parallel_options(const CliParallel *p, const Model *model, int gpus_per_node,
                          StratOptions *opt, GError **error)
{
    opt->tp = p->tp == UNSET ? 1 : p->tp;
    opt->pp = p->pp == UNSET ? 1 : p->pp;
    if (opt->tp < 1 || opt->tp > 4096)
        return cfg_input_error(error, "option --tp: expected 1..4096 GPUs per tensor-parallel group, got %d", opt->tp);
    if (opt->tp > 1) {
        if (model->heads <= 0)
            return cfg_input_error(error, "option --tp: %s is not a transformer; Megatron's tensor "
                                          "parallelism splits attention heads and MLPs", model->file);
        int kv = model->kv_heads > 0 ? model->kv_heads : model->heads;
        if (model->heads % opt->tp != 0 || kv % opt->tp != 0)
            return cfg_input_error(error, "option --tp: field 'heads': %s has %d attention heads (%d "
                                          "key/value heads); expected a tp that divides both, got %d",
                                   model->name, model->heads, kv, opt->tp);
        if (gpus_per_node % opt->tp != 0 && opt->tp % gpus_per_node != 0)
            return cfg_input_error(error, "option --tp: expected a divisor or a multiple of the %d GPUs "
                                          "per node, so that TP groups do not straddle nodes unevenly; "
                                          "got %d", gpus_per_node, opt->tp);
    }
    int layers = model->layers > 0 ? model->layers : 0;
    if (opt->pp < 1 || (opt->pp > 1 && layers > 0 && opt->pp > layers) || opt->pp > 4096)
        return cfg_input_error(error, "option --pp: expected 1..%d pipeline stages (one layer at "
                                      "least per stage), got %d", MAX(layers, 1), opt->pp);
    if (p->sequence_parallel && opt->tp == 1)
        return cfg_input_error(error, "option --sequence-parallel applies to tensor parallelism; "
                                      "give --tp 2 or more");
    opt->sequence_parallel = p->sequence_parallel;
    if (p->pp_scatter_gather) {
        if (strcmp(p->pp_scatter_gather, "megatron") == 0)
            opt->pp_scatter_gather = PP_SG_MEGATRON;
        else if (strcmp(p->pp_scatter_gather, "deepspeed") == 0)
            opt->pp_scatter_gather = PP_SG_DEEPSPEED;
        else
            return cfg_input_error(error, "option --pp-scatter-gather: expected megatron or "
                                          "deepspeed, got \"%s\"", p->pp_scatter_gather);
        if (opt->tp == 1 || opt->pp == 1)
            return cfg_input_error(error, "option --pp-scatter-gather splits a pipeline's stage "
                                          "boundaries over tensor parallelism; give --tp 2 or "
                                          "more and --pp 2 or more");
        if (p->sequence_parallel)
            return cfg_input_error(error, "option --pp-scatter-gather: with --sequence-parallel "
                                          "the stage boundaries are split over TP already");
    }
    if (opt->tp_comm_overlap && !opt->sequence_parallel)
        return cfg_input_error(error, "option --tp-comm-overlap needs --tp 2 or more with "
                                      "--sequence-parallel (as Megatron's does)");
    if (opt->tp_comm_overlap && opt->kind == STRAT_FSDP && opt->pp == 1)
        return cfg_input_error(error, "option --tp-comm-overlap is modelled for Megatron's "
                                      "generator (--strategy ddp, or --pp 2 or more), not FSDP x TP");
    if (p->micro_batches != UNSET) {
        if (p->micro_batches < 1 || p->micro_batches > 4096)
            return cfg_input_error(error, "option --micro-batches: expected 1..4096, got %d", p->micro_batches);
        if (p->grad_accum > 0 && p->grad_accum != p->micro_batches)
            return cfg_input_error(error, "options --micro-batches %d and --grad-accum %d disagree (they "
                                          "name the same thing: micro-batches per optimizer step)",
                                   p->micro_batches, p->grad_accum);
        opt->grad_accum = p->micro_batches;
    } else if (p->grad_accum <= 0 && opt->pp > 1) {
        opt->grad_accum = 4 * opt->pp; /* bubble (p-1)/m under 25 % */
    }
    if (p->virtual_stages != UNSET && (p->virtual_stages < 1 || p->virtual_stages > 1024))
        return cfg_input_error(error, "option --virtual-stages: expected 1..1024 model chunks per "
                                      "rank, got %d", p->virtual_stages);
    opt->virtual_stages = p->virtual_stages == UNSET ? 1 : p->virtual_stages;
    opt->pp_schedule = opt->virtual_stages > 1 ? PP_SCHEDULE_INTERLEAVED : PP_SCHEDULE_1F1B;
    if (p->pp_schedule) {
        if (!strat_pp_schedule_parse(p->pp_schedule, &opt->pp_schedule))
            return cfg_input_error(error, "option --pp-schedule: expected gpipe, 1f1b or interleaved, got \"%s\"",
                                   p->pp_schedule);
        if (opt->pp == 1)
            return cfg_input_error(error, "option --pp-schedule applies to pipeline parallelism; give --pp 2 or more");
    }
    if (opt->virtual_stages > 1 && opt->pp_schedule != PP_SCHEDULE_INTERLEAVED)
        return cfg_input_error(error, "option --virtual-stages %d needs --pp-schedule interleaved, got %s",
                               opt->virtual_stages, strat_pp_schedule_name(opt->pp_schedule));
    if (opt->pp_scatter_gather && opt->pp_schedule == PP_SCHEDULE_INTERLEAVED)
        return cfg_input_error(error, "option --pp-scatter-gather is modelled with the 1f1b and "
                                      "gpipe schedules (the interleaved one posts its receives as "
                                      "Megatron-Core r0.7-r0.8 does, which no longer scatters)");
    if (opt->pp_schedule == PP_SCHEDULE_INTERLEAVED) {
        if (opt->virtual_stages < 2)
            return cfg_input_error(error, "option --pp-schedule interleaved: expected --virtual-stages 2 "
                                          "or more (model chunks per rank)");
        if (opt->grad_accum % opt->pp != 0)
            return cfg_input_error(error, "option --micro-batches: the interleaved schedule runs "
                                          "micro-batches in groups of pp; expected a multiple of %d, got %d",
                                   opt->pp, opt->grad_accum);
    }
    if (p->placement && !strat_order_parse(p->placement, opt->order))
        return cfg_input_error(error, "option --placement: expected the three dimensions tp, pp, dp, "
                                      "fastest first, like tp-dp-pp (Megatron's) or tp-pp-dp, got \"%s\"",
                               p->placement);
    bool model_parallel = opt->tp * opt->pp > 1;
    if (p->pp_partition) {
        if (opt->pp == 1)
            return cfg_input_error(error, "option --pp-partition applies to pipeline parallelism; give --pp 2 or more");
        if (!parse_partition(p->pp_partition, opt, error))
            return false;
    }
    opt->ep = p->ep == UNSET ? 1 : p->ep;
    if (opt->ep < 1 || opt->ep > 4096)
        return cfg_input_error(error, "option --ep: expected 1..4096 GPUs per expert-parallel "
                                      "group, got %d", opt->ep);
    if (opt->ep > 1) {
        if (model->moe.experts == 0)
            return cfg_input_error(error, "option --ep: %s has no experts (a dense model); expert "
                                          "parallelism applies to mixture-of-experts models",
                                   model->name);
        if (model->moe.experts % opt->ep != 0)
            return cfg_input_error(error, "option --ep: field 'experts': %s has %d experts per "
                                          "layer; expected an ep that divides them, got %d",
                                   model->name, model->moe.experts, opt->ep);
        if (opt->kind != STRAT_FSDP || model_parallel)
            return cfg_input_error(error, "option --ep is modelled with FSDP alone (no --strategy "
                                          "ddp, --tp or --pp)");
        if (opt->activation_checkpointing)
            return cfg_input_error(error, "option --ep with activation checkpointing: the "
                                          "recomputed forward's all-to-alls are not modelled yet; "
                                          "leave one of them out");
        if (p->wrap && opt->wrap.kind != PLAN_WRAP_TRANSFORMER)
            return cfg_input_error(error, "option --ep needs --wrap transformer (each decoder "
                                          "layer a unit, its experts inside it)");
    }
    opt->moe_imbalance = 1;
    if (p->moe_imbalance != 0) {
        if (opt->ep <= 1)
            return cfg_input_error(error, "option --moe-imbalance applies to expert parallelism "
                                          "(--ep 2 or more): without it every GPU runs all experts "
                                          "on its own tokens, whatever the routing");
        if (!(p->moe_imbalance >= 1 && p->moe_imbalance <= 1000))
            return cfg_input_error(error, "option --moe-imbalance: expected the busiest GPU's "
                                          "tokens over the mean, 1..1000, got %g",
                                   p->moe_imbalance);
        opt->moe_imbalance = p->moe_imbalance;
    }
    if (model_parallel && opt->cpu_offload)
        return cfg_input_error(error, "option --cpu-offload is not modelled with --tp or --pp");
    if (model_parallel && opt->offload_optimizer)
        return cfg_input_error(error,
                               "option --offload-optimizer is not modelled with --tp or --pp");
    if (model_parallel && p->wrap)
        return cfg_input_error(error, "option --wrap: with --tp or --pp, FSDP wraps each decoder layer "
                                      "(its pipeline stage's share); leave --wrap out");
    return true;
}
