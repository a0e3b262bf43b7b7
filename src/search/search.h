/* search: the best layout and knobs for a model on a machine, by simulation (issue 14).
 *
 * A space is a list of dimensions, each a simulation long option and its values. A point is
 * evaluated by a caller-supplied function (the CLI's in-process simulation) at two fidelities:
 * the analytic bound (search_bound_json: model-state bytes per GPU and a compute floor, no
 * schedule) and the full simulation. Constraints turn points into pruned records with a reason;
 * objectives rank the rest. Everything here is deterministic for a given point: records do not
 * depend on the order of evaluation, the method, the shard or a resume. */
#pragma once

#include "../hw/hw.h"
#include "../model/model.h"
#include "../strategy/strategy.h"

#include <cjson/cJSON.h>
#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* ---- the space (search_space.c) ---- */
typedef struct {
    char *option;      /* long option name without dashes: "tp" */
    GPtrArray *values; /* of char*: "4", "hybrid", "on", "off" */
} SearchDim;

typedef struct {
    GPtrArray *dims; /* of SearchDim* */
} SearchSpace;

void search_space_init(SearchSpace *space);
void search_space_clear(SearchSpace *space);
/* "tp=1,2,4", "nodes=1..64:x2", "micro-batch=1..4", "checkpoint-every=1..9:+2",
 * "activation-checkpointing=on,off". Input error naming the option on bad syntax. */
bool search_space_add_vary(SearchSpace *space, const char *text, GError **error);
/* {"vary": {"tp": [1, 2, 4], "nodes": "1..64:x2", "strategy": ["full", "hybrid"]}} */
bool search_space_load_json(SearchSpace *space, const char *file, GError **error);
/* the number of points: the product of the dimensions' sizes (saturates at UINT64_MAX) */
uint64_t search_space_size(const SearchSpace *space);
/* Point `index` (mixed radix, last dimension fastest): its value per dimension. */
void search_space_point(const SearchSpace *space, uint64_t index, const char **values);
/* The options of a value: "--tp=4"; "on" -> "--flag"; "off" -> nothing. Appended to argv. */
void search_point_argv(const SearchSpace *space, const char **values, GPtrArray *argv);
/* "nodes=8 strategy=hybrid tp=2": the record's key, in the space's dimension order */
char *search_point_key(const SearchSpace *space, const char **values);

/* ---- constraints and objectives (search.c) ---- */
typedef enum {
    SEARCH_OBJ_STEP,       /* step time */
    SEARCH_OBJ_TIME,       /* time to --tokens */
    SEARCH_OBJ_NODE_HOURS, /* whole nodes x wall clock, to --tokens */
    SEARCH_OBJ_GPU_HOURS,  /* the nodes' GPUs (all of them: JSC charges whole nodes) x wall clock */
    SEARCH_OBJ_CORE_HOURS, /* the nodes' cores x wall clock, as JSC's accounting counts */
    SEARCH_OBJ_COUNT
} SearchObjective;

typedef struct {
    SearchObjective objective;
    double tokens;            /* for the time and hours objectives; 0: not given */
    double global_batch;      /* sequences (or samples) per optimizer step; 0: not fixed */
    bool global_batch_tokens; /* global_batch was given in tokens */
    double headroom_bytes;    /* free memory a point must leave per GPU */
    double headroom_fraction; /* or this fraction of the capacity */
    int max_gpus, max_nodes;  /* budgets; 0: none */
    double walltime_s;        /* per job; 0: none */
    bool tp_across_nodes;     /* allow TP groups wider than a node */
    int cores_per_node;       /* for core-hours */
    bool no_memory_bound;     /* do not prune by the memory bound (options it does not model) */
} SearchSpec;

void search_spec_default(SearchSpec *spec);
bool search_objective_parse(const char *text, SearchObjective *out);
const char *search_objective_name(SearchObjective o);
/* "fits:headroom=2GiB", "fits:headroom=0.1", "gpus<=512", "nodes<=128", "walltime<=24h",
 * "tp-across-nodes". */
bool search_constraint_parse(SearchSpec *spec, const char *text, GError **error);
/* "1536" sequences, "4M" sequences, "4Mtok" tokens */
bool search_global_batch_parse(SearchSpec *spec, const char *text, GError **error);

/* The analytic bounds of one layout, before any schedule is made (search_bound.c): the
 * object {"world_size", "nodes", "gpus_per_node", "machine_gpus_per_node", "tp", "pp", "dp",
 * "micro_batch", "grad_accum", "seq_len", "memory_bound_bytes", "capacity_bytes",
 * "step_floor_per_micro_batch_s", "pipeline_fill_micro_batches"}. Both bounds are below what the
 * simulation reports. */
cJSON *search_bound_json(const Model *model, const HwTopology *topo, const StratOptions *opt,
                         const StratLayout *layout);

/* ---- evaluating points (search.c) ---- */
typedef enum { SEARCH_FID_BOUND, SEARCH_FID_FULL } SearchFidelity;
/* The evaluator of points (the CLI's in-process simulation). parse reads a point's argv (the
 * simulation's own options) once into a handle, or fails with an input error; eval runs a
 * handle at a fidelity, grad_accum > 0 in place of its --grad-accum: the bound object or the
 * --json object, or an error; release frees a handle. */
typedef struct {
    void *(*parse)(void *ctx, int argc, char **argv, GError **error);
    cJSON *(*eval)(void *ctx, void *parsed, SearchFidelity fid, int grad_accum, GError **error);
    void (*release)(void *parsed);
} SearchEvaluator;

typedef struct {
    const SearchSpace *space;
    const SearchSpec *spec;
    GPtrArray *fixed; /* of char*: the simulation options given to every point */
    const SearchEvaluator *eval;
    void *eval_ctx;
    cJSON *provenance; /* merged into each record: file hashes, version */
} SearchContext;

/* One record: {"key", "options", "status": "ok" | "pruned", "reason", "stage", "objective",
 * "lower_bound", "figures", ...provenance}: the bound, then the simulation. The caller deletes
 * it. */
cJSON *search_evaluate(const SearchContext *ctx, uint64_t index);
/* A point that passed its bound and waits for its simulation (ASHA's first rung): its parsed
 * options and its record so far, so that neither the parse nor the bound is done twice. */
typedef struct SearchPending SearchPending;
/* Point `index` up to its bound: its final record when the bound or a constraint prunes it;
 * else NULL and *pending. */
cJSON *search_evaluate_bound(const SearchContext *ctx, uint64_t index, SearchPending **pending);
double search_pending_lower_bound(const SearchPending *p);
const char *search_pending_key(const SearchPending *p);
/* The simulation of a pending point: its record; frees p. */
cJSON *search_pending_simulate(const SearchContext *ctx, SearchPending *p);
/* A pending point left unsimulated: its record, pruned at the bound for `reason`; frees p. */
cJSON *search_pending_drop(const SearchContext *ctx, SearchPending *p, const char *reason);
/* The short reason of a pruned record ("does not fit", "option --tp"), for the counts. */
const char *search_record_reason(const cJSON *record);
double search_record_objective(const cJSON *record); /* +inf unless status "ok" */
/* Cores charged per node: --cores-per-node, else the topology's (machine_cores), else JUWELS
 * Booster's 48. */
int search_cores_per_node(const SearchSpec *spec, int machine_cores);
double search_objective_value(const SearchSpec *spec, const cJSON *figures, int machine_gpn,
                              int machine_cores,
                              int nodes);

/* ---- the results (search_out.c) ---- */
/* Reads a JSON Lines file of records into `out` (cJSON*), keyed by "key". A last line cut short
 * (a killed run) is dropped and, with truncate, cut from the file. */
bool search_results_read(const char *file, GHashTable *out, bool cut_partial, GError **error);
/* Records sorted by objective, then key (a total, stable order). */
GPtrArray *search_results_sorted(GHashTable *records);
/* The top k with, for each runner-up, why it loses to the best; the pruning counts; the Pareto
 * front of two objectives when pareto_b < SEARCH_OBJ_COUNT. */
void search_print_summary(const SearchSpec *spec, GHashTable *records, int top,
                          SearchObjective pareto_a, SearchObjective pareto_b, FILE *out);
bool search_write_csv(const SearchSpec *spec, GHashTable *records, const char *file,
                      GError **error);
/* An objective of a record (which < SEARCH_OBJ_COUNT) or, which == SEARCH_OBJ_COUNT, its peak
 * memory per GPU in GiB. */
double search_record_value(const SearchSpec *spec, const cJSON *record, int which);
/* The records of ok (that pass) on two axes (search_record_value's a and b), sorted by a, then
 * b, then their order in ok; front marks the Pareto front: each point whose b is below every b
 * before it. O(n log n). The one front of the summary and of the figure. */
typedef struct {
    double a, b;
    guint index; /* in ok */
    bool front;
} SearchParetoPoint;
GArray *search_pareto(const SearchSpec *spec, GPtrArray *ok, int a, int b);
/* Figures in DIR (search_plot.c): search_pareto (every passing configuration by two
 * objectives, pareto_a and pareto_b, or by the objective and peak memory when pareto_a is
 * SEARCH_OBJ_COUNT, with the front) and search_heatmap (the best objective over TP x PP, or
 * nodes x strategy, or the first two options). formats: PlotFormat bits. */
bool search_plot(const SearchSpec *spec, GHashTable *records, int pareto_a, int pareto_b,
                 const char *dir, unsigned formats, GError **error);
/* --emit-jobs (search_jobs.c): for the first `top` of `ok` (sorted records that pass),
 * DIR/job-K.sbatch (srun + torchrun on JUWELS Booster, the PyTorch settings as comments) and
 * DIR/validate-K.sbatch (fsdprun on the simulated schedule, then fsdpsim compare). */
bool search_emit_jobs(const SearchSpace *space, GPtrArray *fixed, GPtrArray *ok, int top,
                      const char *dir, GError **error);
/* ---- a Ray Tune campaign as a plan (search_tune.c) ---- */
#define SEARCH_TUNE_MAX_RUNGS 32
typedef struct {
    int samples;           /* num_samples */
    double max_t, grace;   /* ASHAScheduler's max_t and grace_period, in iterations */
    double reduction;      /* reduction_factor */
    int concurrent;        /* max_concurrent_trials */
    int gpus_per_trial;    /* resources_per_trial={"gpu": N} */
    double step_s;         /* one training step (simulated when not given) */
    double steps_per_iter; /* training steps per reported iteration */
} SearchTune;

typedef struct {
    int rungs;
    double rung_iters[SEARCH_TUNE_MAX_RUNGS];
    int rung_trials[SEARCH_TUNE_MAX_RUNGS]; /* trials that reach each rung */
    int finished;                           /* trials run to max_t */
    double trial_iters;                     /* iterations of all trials */
    double wall_s;
    int concurrency, trials_per_node, nodes;
    double gpu_hours_used, gpu_hours_charged, node_hours, core_hours;
} SearchTunePlan;

void search_tune_default(SearchTune *t);
/* "samples=20,max_t=100,grace=10,reduction=3,concurrent=4,gpus_per_trial=1[,step_s=2.5]" */
bool search_tune_parse(const char *text, SearchTune *t, GError **error);
void search_tune_plan(const SearchTune *t, int gpus_per_node, int cores_per_node,
                      SearchTunePlan *out);
void search_tune_print(const SearchTune *t, const SearchTunePlan *p, int gpus_per_node, FILE *out);

/* A record as one line (no newline), keys in a fixed order */
char *search_record_line(const cJSON *record);
