/* Checkpoint and time-to-train options of the simulation; see train.h. */
#include "train.h"

#include "../util/cfg.h"

#include <math.h>
#include <string.h>

/* A count such as 1e12 or 1T (decimal suffixes K, M, G, T, as token counts are quoted).
 * `example` is what the message shows: "1e12, or with a K, M, G or T suffix". */
#define COUNT_EXAMPLE "1e12, or with a K, M, G or T suffix"

static bool parse_count(const char *option, const char *text, double max, const char *example,
                        double *out, GError **error)
{
    char *end = NULL;
    double v = g_ascii_strtod(text, &end);
    double scale = 1;
    if (end != text && *end && !end[1]) {
        const char *suffixes = "KMGT";
        const char *at = strchr(suffixes, g_ascii_toupper(*end));
        if (at) {
            scale = pow(1e3, (double)(at - suffixes + 1));
            end++;
        }
    }
    if (end == text || *end || !(v > 0) || !(v * scale <= max))
        return cfg_input_error(error,
                               "option --%s: expected a positive number up to %g (%s), got "
                               "\"%s\"",
                               option, max, example, text);
    *out = v * scale;
    return true;
}

bool cli_train_options(const CliTrain *in, const Model *model, const HwTopology *topo,
                       ReportTrainOptions *out, GError **error)
{
    memset(out, 0, sizeof *out);
    out->checkpoint = in->state_dict || in->tokens || in->steps || in->save_every != UNSET ||
                      in->async_save || in->failure_rate;
    if (in->max_job_hours && !parse_count("max-job-hours", in->max_job_hours, 1e5, "hours: 24, 0.5",
                                          &out->max_job_s, error))
        return false;
    out->max_job_s *= 3600;
    if (!out->checkpoint)
        return true;
    if (in->state_dict) {
        /* in any case, and as FSDP's StateDictType names them (FULL_STATE_DICT) */
        g_autofree char *kind = g_ascii_strdown(in->state_dict, -1);
        const char *name = cli_strip_prefix(kind, "statedicttype.");
        static const char *const kinds[] = {"full", "sharded", NULL};
        if (!strcmp(name, "full") || !strcmp(name, "full_state_dict"))
            out->state_dict = REPORT_STATE_DICT_FULL;
        else if (!strcmp(name, "sharded") || !strcmp(name, "sharded_state_dict"))
            out->state_dict = REPORT_STATE_DICT_SHARDED;
        else
            return cfg_input_error(error,
                                   "option --state-dict: expected full or sharded (or "
                                   "StateDictType.FULL_STATE_DICT, SHARDED_STATE_DICT), got "
                                   "\"%s\"%s",
                                   in->state_dict, cli_did_you_mean(name, kinds));
    }
    out->async_save = in->async_save;
    if (in->save_every != UNSET) {
        if (in->save_every < 1)
            return cfg_input_error(error,
                                   "option --save-every: expected a positive number of "
                                   "steps, got %d",
                                   in->save_every);
        out->save_every = in->save_every;
    }
    if (in->tokens && in->steps)
        return cfg_input_error(error, "options --tokens and --steps: give one of them");
    if (in->tokens && !model->token_input)
        return cfg_input_error(error, "option --tokens: %s takes images, not tokens; give --steps",
                               model->name);
    if (in->tokens && !parse_count("tokens", in->tokens, 1e18, COUNT_EXAMPLE, &out->tokens, error))
        return false;
    if (in->steps && !parse_count("steps", in->steps, 1e12, COUNT_EXAMPLE, &out->steps, error))
        return false;
    if (in->failure_rate) {
        char *end = NULL;
        double rate = g_ascii_strtod(in->failure_rate, &end);
        if (end == in->failure_rate || *end || !(rate >= 0 && rate <= 1))
            return cfg_input_error(error,
                                   "option --failure-rate: expected failures per "
                                   "node-hour in [0, 1], got \"%s\"",
                                   in->failure_rate);
        out->failures_per_node_hour = rate;
    }
    if (topo->storage_write_Bps <= 0)
        return cfg_input_error(error,
                               "%s: field 'storage': missing; checkpoint and time-to-train "
                               "estimates need the file system's bandwidth (expected "
                               "storage.write_GBps_per_node, read_GBps_per_node, "
                               "write_GBps, read_GBps; see topologies/README.md)",
                               topo->file);
    return true;
}

bool cli_lora_options(const CliTrain *in, Model *model, const StratOptions *opt, GError **error)
{
    if (in->lora_rank == UNSET) {
        if (in->lora_targets)
            return cfg_input_error(error, "option --lora-targets needs --lora-rank");
        return true;
    }
    if (in->lora_rank < 1 || in->lora_rank > 65536)
        return cfg_input_error(error, "option --lora-rank: expected 1..65536, got %d",
                               in->lora_rank);
    if (opt->tp > 1 || opt->pp > 1 || opt->distributed_optimizer || opt->overlap_grad_reduce)
        return cfg_input_error(error, "option --lora-rank: LoRA is simulated with DDP and FSDP "
                                      "data parallelism; expected no --tp, --pp, zero1 or "
                                      "Megatron options");
    const char *targets = in->lora_targets ? in->lora_targets : strat_lora_default_targets(model);
    if (!targets)
        return cfg_input_error(error,
                               "option --lora-targets: peft has no default targets for "
                               "%s (%s); expected a list such as q_proj,v_proj",
                               model->name, model->model_type);
    return strat_lora_apply(model, in->lora_rank, targets, error);
}

void cli_train_add_entries(GOptionContext *ctx, CliTrain *t)
{
    GOptionEntry entries[] = {
        {"state-dict", 0, 0, G_OPTION_ARG_STRING, &t->state_dict,
         "Checkpoint format: full (FULL_STATE_DICT gathered on rank 0) or sharded "
         "(torch.distributed.checkpoint, every rank writes) [sharded]",
         "KIND"},
        {"save-every", 0, 0, G_OPTION_ARG_INT, &t->save_every,
         "Save a checkpoint every N steps (--checkpoint-every is activation checkpointing) "
         "[Young/Daly's interval with --failure-rate, else only at the end of each job]",
         "N"},
        {"async-save", 0, 0, G_OPTION_ARG_NONE, &t->async_save,
         "Checkpoints with dcp.async_save: training waits for the copy to host memory only", NULL},
        {"tokens", 0, 0, G_OPTION_ARG_STRING, &t->tokens,
         "Time to train this many tokens (1e12, or with K, M, G, T suffixes: 1T)", "N"},
        {"steps", 0, 0, G_OPTION_ARG_STRING, &t->steps, "Time to train this many steps", "N"},
        {"failure-rate", 0, 0, G_OPTION_ARG_STRING, &t->failure_rate,
         "Node failures per node-hour, for Young/Daly's checkpoint interval and the rework [0]",
         "RATE"},
        {"max-job-hours", 0, 0, G_OPTION_ARG_STRING, &t->max_job_hours,
         "Longest job the batch system runs [the topology's accounting.max_job_hours, 24]", "H"},
        {"lora-rank", 0, 0, G_OPTION_ARG_INT, &t->lora_rank,
         "LoRA fine-tuning: freeze every weight, train rank-R adapters beside the targets [off]",
         "R"},
        {"lora-targets", 0, 0, G_OPTION_ARG_STRING, &t->lora_targets,
         "LoRA target Linear modules, comma-separated [peft's: q_proj,v_proj for llama, c_attn "
         "for gpt2]",
         "LIST"},
        {NULL, 0, 0, 0, NULL, NULL, NULL}};
    g_option_context_add_main_entries(ctx, entries, NULL);
}

void cli_train_clear(CliTrain *t)
{
    g_free(t->state_dict), g_free(t->tokens), g_free(t->steps);
    g_free(t->failure_rate), g_free(t->max_job_hours), g_free(t->lora_targets);
}
