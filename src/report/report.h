/* report: what a simulation means to a user. Metrics from the simulated timeline, diagnostics in
 * plain words, the summary on stdout, the --json object and the Chrome trace. */
#ifndef FSD_REPORT_H
#define FSD_REPORT_H

#include "../core/sim.h"
#include "../strategy/init.h"
#include "../strategy/strategy.h"

#include <glib.h>
#include <stdio.h>

typedef struct {
    double time_s; /* sum of op durations (arrival to end) */
    double bytes;  /* nccl-tests' size, summed */
    int count;
} ReportCollStats;

/* One pipeline stage (issue 5): its memory peak and how long its compute stream waited inside
 * the pipeline (from the first forward anywhere to the last backward anywhere). */
typedef struct {
    double peak_bytes; /* tensors at the peak + reserved */
    double breakdown[IR_MEM_CATEGORY_COUNT];
    bool oom;
    double busy_s;      /* forward and backward work on the compute stream, TP exchanges included */
    double bubble_s;    /* the pipeline window minus busy_s */
    double model_flops; /* per GPU of the stage */
    /* communication sent per GPU of the stage (collectives and sends: stages differ, the first
     * and last exchanging the tied embedding's gradient, uneven ones reducing more), and of it
     * across nodes; the summary's communication rows are stage 0's */
    double sent_bytes, inter_node_bytes;
} ReportStage;

/* How far to trust a step time: the development set's error for runs of this kind (band.c). */
typedef struct {
    bool present;
    double factor_low, factor_high; /* the real step time is likely step x [low, high] */
    int rows;                       /* development-set runs behind it */
    int sources;                    /* their sources (0: not stated), each at most 5 rows' worth */
    double mae;
    char family[8];                 /* the group matched: "fsdp", "ddp", "3d" or "*" */
} ReportBand;

/* Checkpoints and time to train (train.c). */
typedef enum { REPORT_STATE_DICT_SHARDED, REPORT_STATE_DICT_FULL } ReportStateDict;

typedef struct {
    bool checkpoint;              /* estimate checkpoints (any of the options below given) */
    ReportStateDict state_dict;   /* FULL_STATE_DICT on rank 0, or SHARDED / DCP by every rank */
    bool async_save;              /* torch.distributed.checkpoint.async_save */
    int save_every;               /* steps between saves; 0: Young/Daly's from the failure rate */
    double tokens, steps;         /* time to train: one of them, 0 = not asked */
    double failures_per_node_hour;/* 0: no failures */
    double max_job_s;             /* 0: the topology's accounting.max_job_hours, else 24 h */
} ReportTrainOptions;

typedef struct {
    bool present;
    double bytes;             /* on disk: fp32 parameters and optimizer state */
    double save_s;            /* the training loop blocked per save */
    double save_background_s; /* async: written while training goes on */
    double load_s;            /* at restart */
    double rank0_host_bytes, rank0_gpu_bytes; /* beyond training's own, during a save */
    double load_host_bytes_per_node;
} ReportCheckpoint;

typedef struct {
    bool present;
    double tokens, steps;
    double compute_s;             /* steps x step time */
    double save_every_steps;      /* the interval used */
    bool young_daly;              /* ... from the failure rate (Young/Daly), not given */
    double checkpoint_overhead_s; /* saves at the interval and at the end of every job */
    double failure_loss_s;        /* expected rework and restarts after failures */
    double init_s, restart_s;     /* first job: init; later jobs: init + checkpoint load */
    double max_job_s;
    bool max_job_assumed;         /* 24 h, the topology does not say */
    int jobs;
    double time_s;                /* wall-clock of all jobs */
    double node_hours, core_hours;
} ReportTrain;

typedef struct {
    /* inputs */
    const Model *model;
    const HwTopology *topo;
    const StratOptions *opt;
    const StratInfo *info;
    const IrSchedule *sched;
    const SimResult *sim;
    const InitEstimate *init;
    ReportBand band; /* set by the caller (report_band_load); absent: no band printed */
    const ReportTrainOptions *train_opt; /* NULL: no checkpoint or time-to-train estimate */
    ReportCheckpoint checkpoint;
    ReportTrain train;
    /* time */
    double step_time_s;
    double compute_s;                     /* compute stream busy */
    double comm_s;                        /* some collective in progress */
    double exposed_comm_s;                /* a collective in progress and the compute stream idle */
    double overlap_cost_s;                /* compute time added by communication beside it */
    double idle_s;                        /* neither: host-bound or waiting */
    double cpu_optimizer_s;               /* CPU offload: the optimizer step on the host */
    double time_by_phase[IR_PHASE_COUNT]; /* compute time per phase */
    /* throughput */
    double tokens_per_s; /* whole job; 0 for image models */
    double samples_per_s;
    double model_flops_per_gpu; /* per step, no recompute */
    double tflops_per_gpu;
    double mfu;
    /* memory, per GPU */
    double mem_peak_bytes; /* tensors at the peak + reserved */
    double mem_capacity_bytes;
    double mem_reserved_bytes;
    double mem_breakdown[IR_MEM_CATEGORY_COUNT];
    double mem_peak_time_s;
    bool oom;
    /* communication, per GPU per step: a GPU of rank class 0 (with a pipeline, of comm_stage:
     * the stages' differ, the first sends activations, the last gradients) */
    double comm_bytes_per_gpu; /* bytes sent: the collectives' and the sends' */
    double inter_node_bytes_per_gpu;
    ReportCollStats coll[IR_COLL_KIND_COUNT];
    ReportCollStats send, recv; /* a pipeline's activations and gradients, stage to stage */
    int comm_stage;             /* -1: no pipeline */
    GPtrArray *warnings; /* of char* */
    GPtrArray *errors;   /* of char*: the run does not do what the user wants (replicas that
                          * diverge), as opposed to a warning about cost */
    /* model parallelism (parallel.c); n_stages = 0 without it */
    int n_stages;
    ReportStage *stages;
    double pp_bubble_s;        /* mean over stages */
    double pp_bubble_fraction; /* mean over stages of bubble / busy: (p-1)/m for 1F1B */
} Report;

void report_build(Report *r);
/* Adds a warning (its text begins with its kind: "memory: ", "host: ", ...). */
void report_warn(Report *r, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
void report_clear(Report *r);
void report_print_summary(const Report *r, FILE *out);
char *report_to_json(const Report *r);
/* Chrome trace JSON (chrome://tracing, Perfetto): one process per rank class, one thread per
 * stream, memory as a counter. Written to `out` event by event (false: a write failed). */
bool report_trace_write(FILE *out, const IrSchedule *sched, const SimResult *sim,
                        const HwTopology *topo);
/* The same into the file `path`, whole or not at all (cfg_write_streamed: "cannot write PATH:
 * WHY"). */
bool report_trace_save(const char *path, const IrSchedule *sched, const SimResult *sim,
                       const HwTopology *topo, GError **error);
/* A Chrome trace metadata event ("process_name" or "thread_name"), shared with fsdprun's trace. */
struct cJSON *report_trace_meta_event(const char *what, int pid, int tid, const char *name);
/* A Chrome trace event for op i of a class, from start to end (ns), with what the op moves or
 * computes in its args; shared with fsdprun's trace, so that both read alike. */
struct cJSON *report_trace_op_event(const IrSchedule *sched, const IrClass *c, int i, int pid,
                                    int64_t start_ns, int64_t end_ns);

/* Model parallelism: per-stage metrics, called by report_build; the summary and JSON parts. */
void report_parallel_build(Report *r);
void report_parallel_print(const Report *r, FILE *out);
void report_parallel_json(const Report *r, void *json_object);

/* The error band of a run of `family` (report_band_family) on `gpu`, from an error-band file
 * (reports/error-band.json). No matching group leaves band->present false. */
bool report_band_load(const char *file, const char *family, const char *gpu, ReportBand *band,
                      GError **error);
const char *report_band_family(const StratOptions *opt, const StratLayout *layout);

/* Checkpoints and time to train from the simulated step (train.c), called by report_build when
 * train_opt is set; the summary and JSON parts. */
void report_train_build(Report *r);
void report_train_print(const Report *r, FILE *out);
void report_train_json(const Report *r, void *json_object);

/* Human units: "1.23 GiB", "12.3 ms". */
char *report_bytes(double bytes);
char *report_seconds(double s);

#endif
