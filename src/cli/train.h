/* Checkpoint, time-to-train and fine-tuning (LoRA) options of the simulation (train.c). */
#pragma once

#include "cli.h"
#include "../hw/hw.h"
#include "../model/model.h"
#include "../report/report.h"
#include "../strategy/strategy.h"

/* The command line's text and numbers, NULL / UNSET when not given. */
typedef struct {
    char *state_dict, *tokens, *steps, *failure_rate, *max_job_hours, *lora_targets;
    int save_every, lora_rank;
    gboolean async_save;
} CliTrain;

/* Option entries for the simulation's table (appended by the caller). */
#define CLI_TRAIN_ENTRIES(t)                                                                     \
    {"state-dict", 0, 0, G_OPTION_ARG_STRING, &(t).state_dict,                                   \
     "Checkpoint format: full (FULL_STATE_DICT gathered on rank 0) or sharded "                 \
     "(torch.distributed.checkpoint, every rank writes) [sharded]",                             \
     "KIND"},                                                                                    \
        {"save-every", 0, 0, G_OPTION_ARG_INT, &(t).save_every,                                  \
         "Save a checkpoint every N steps (--checkpoint-every is activation checkpointing) "     \
         "[Young/Daly's interval with --failure-rate, else only at the end of each job]",        \
         "N"},                                                                                   \
        {"async-save", 0, 0, G_OPTION_ARG_NONE, &(t).async_save,                                 \
         "Checkpoints with dcp.async_save: training waits for the copy to host memory only",     \
         NULL},                                                                                  \
        {"tokens", 0, 0, G_OPTION_ARG_STRING, &(t).tokens,                                       \
         "Time to train this many tokens (1e12, or with K, M, G, T suffixes: 1T)", "N"},         \
        {"steps", 0, 0, G_OPTION_ARG_STRING, &(t).steps, "Time to train this many steps", "N"},  \
        {"failure-rate", 0, 0, G_OPTION_ARG_STRING, &(t).failure_rate,                           \
         "Node failures per node-hour, for Young/Daly's checkpoint interval and the rework "     \
         "[0]",                                                                                  \
         "RATE"},                                                                                \
        {"max-job-hours", 0, 0, G_OPTION_ARG_STRING, &(t).max_job_hours,                         \
         "Longest job the batch system runs [the topology's accounting.max_job_hours, 24]", "H"}, \
        {"lora-rank", 0, 0, G_OPTION_ARG_INT, &(t).lora_rank,                                    \
         "LoRA fine-tuning: freeze every weight, train rank-R adapters beside the targets [off]", \
         "R"},                                                                                   \
        {"lora-targets", 0, 0, G_OPTION_ARG_STRING, &(t).lora_targets,                           \
         "LoRA target Linear modules, comma-separated [peft's: q_proj,v_proj for llama, c_attn " \
         "for gpt2]",                                                                            \
         "LIST"}

/* Checks the options against the model and the machine and fills out; out->checkpoint is false
 * when none was given. */
bool cli_train_options(const CliTrain *in, const Model *model, const HwTopology *topo,
                       ReportTrainOptions *out, GError **error);
/* --lora-rank / --lora-targets: freezes the model and adds the adapters (before generating);
 * refused with model parallelism and Megatron's optimizer, whose generator has no frozen
 * parameters. */
bool cli_lora_options(const CliTrain *in, Model *model, const StratOptions *opt, GError **error);
void cli_train_clear(CliTrain *t);
