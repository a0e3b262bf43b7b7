/* One simulation in process (simulate.c), for fsdpsim search: an argv of the simulation's own
 * long options parsed exactly as `fsdpsim` parses it, simulated without printing. Model and
 * topology files are loaded once per cache: a search of 10,000 points reads each file once
 * instead of 10,000 times, and starts no process (a fork + exec costs about as much as a small
 * simulation). */
#pragma once

#include <cjson/cJSON.h>
#include <glib.h>
#include <stdbool.h>

typedef struct CliSimCache CliSimCache;

typedef enum {
    CLI_SIM_PARSE, /* the options only: result stays NULL */
    CLI_SIM_BOUND, /* the analytic bounds (search_bound_json), no schedule generated */
    CLI_SIM_FULL,  /* the simulation: result is the object --json prints */
} CliSimFidelity;

/* A point's options, parsed once by GOption, for its bound and then its simulation */
typedef struct CliSimOptions CliSimOptions;

typedef struct {
    CliSimCache *cache;
    CliSimFidelity fidelity;
    cJSON *result;          /* out: the caller's to cJSON_Delete */
    GError *error;          /* internal */
    CliSimOptions **parsed; /* out, CLI_SIM_PARSE: the options */
    double train_tokens;    /* > 0: the time to train this many tokens, where it can */
} CliSimPoint;

CliSimCache *cli_sim_cache_new(void);
void cli_sim_cache_free(CliSimCache *cache);
/* argv[0] is a program name; the rest are options of `fsdpsim`, parsed exactly as its command
 * line parses them. NULL with an error (domain FSD_ERROR) for options it refuses, worded as the
 * command line words them. */
CliSimOptions *cli_sim_options_parse(int argc, char **argv, GError **error);
void cli_sim_options_free(CliSimOptions *options);
/* Simulates parsed options at a fidelity (not CLI_SIM_PARSE), grad_accum > 0 in place of their
 * --grad-accum: *result is the bound object or the --json object. train_tokens > 0 adds the
 * object's "train" (time to train them: checkpoints, restarts, jobs) as --tokens does, where
 * the topology has a file system and the options give no --tokens or --steps of their own.
 * False with an error for options the run refuses. */
bool cli_sim_run(CliSimCache *cache, const CliSimOptions *options, CliSimFidelity fidelity,
                 int grad_accum, double train_tokens, cJSON **result, GError **error);
