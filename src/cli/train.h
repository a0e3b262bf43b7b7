/* Checkpoint and time-to-train options of the simulation (train.c). */
#pragma once

#include "cli.h"
#include "../hw/hw.h"
#include "../model/model.h"
#include "../report/report.h"

/* The command line's text and numbers, NULL / UNSET when not given. */
typedef struct {
    char *state_dict, *tokens, *steps, *failure_rate, *max_job_hours;
    int save_every;
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
         "Longest job the batch system runs [the topology's accounting.max_job_hours, 24]", "H"}

/* Checks the options against the model and the machine and fills out; out->checkpoint is false
 * when none was given. */
bool cli_train_options(const CliTrain *in, const Model *model, const HwTopology *topo,
                       ReportTrainOptions *out, GError **error);
void cli_train_clear(CliTrain *t);
