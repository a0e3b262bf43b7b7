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

/* Adds the options to the simulation's command line (GLib copies the entries). */
void cli_train_add_entries(GOptionContext *ctx, CliTrain *t);

/* Checks the options against the model and the machine and fills out; out->checkpoint is false
 * when none was given. */
bool cli_train_options(const CliTrain *in, const Model *model, const HwTopology *topo,
                       ReportTrainOptions *out, GError **error);
/* --lora-rank / --lora-targets: freezes the model and adds the adapters (before generating);
 * refused with model parallelism and Megatron's optimizer, whose generator has no frozen
 * parameters. */
bool cli_lora_options(const CliTrain *in, Model *model, const StratOptions *opt, GError **error);
void cli_train_clear(CliTrain *t);
