/* compare: a real run beside a simulated one (fsdpsim --trace): step time and time per op kind,
 * with the signed relative error (sim - real) / real, a merged Chrome trace with the real ranks
 * above the simulated rank classes, and the same selection as spans for a Gantt chart (src/plot).
 *
 * The real trace is fsdprun's (either backend: MPI or NCCL) or a PyTorch profiler (Kineto) trace,
 * whose GPU kernels are classified by name (ncclKernel_AllGather_... is an allgather, any other
 * kernel is compute). Both traces are read by one loader; what differs is said by the generator
 * (otherData.generator): whether the trace holds several iterations with their step times, and
 * whether its clock starts at the step's start.
 *
 * Step time: fsdprun lists each measured iteration's step time (otherData.step_time_s), summarised
 * by the median and the range; a simulated step ends with its last op; a profiler trace spans its
 * first to its last compared event. Per op kind (compute, host, allgather, ..., send, recv,
 * memcpy): the summed durations per rank per step, averaged over the ranks (over the rank classes
 * weighted by their ranks for a simulation). A collective's duration runs from the rank's arrival
 * to its end in both, so waiting for late peers counts in both. */
#ifndef FSD_COMPARE_H
#define FSD_COMPARE_H

#include <cjson/cJSON.h>
#include <glib.h>
#include <stdbool.h>
#include <stdio.h>

/* Offset of the simulated processes in the merged trace, so that they sort below the real ranks. */
#define CMP_SIM_PID_BASE 100000

typedef struct {
    char *kind;
    double real_s, sim_s; /* per rank per step */
    double real_calls, sim_calls;
} CmpKind;

typedef struct {
    int iterations, ranks; /* of the real trace */
    double real_median_s, real_min_s, real_max_s;
    double sim_s;
    double error;               /* (sim - real) / real, of the median */
    GArray *kinds;              /* of CmpKind, by name */
    cJSON *real, *sim;          /* the parsed traces */
    int median_iter;            /* the iteration whose step time is the median (lower median);
                                   -1 when the real trace has no iterations (a profiler trace) */
    const char *real_generator; /* "fsdprun" or "pytorch-profiler" */
} CmpResult;

/* The op kind of a Chrome trace event from its cat and name, NULL for events not compared (CPU
 * operators, annotations, counters). fsdpsim's and fsdprun's cats are kinds already. */
const char *cmp_kind_of(const char *cat, const char *name);

/* Loads and checks both traces; errors name the file and field (FSD_ERROR_INPUT). */
bool cmp_load(const char *real_file, const char *sim_file, CmpResult *out, GError **error);
/* Several real traces: PyTorch profiler traces, one per rank (or directories of them), read by
 * src/trace; a real iteration is a ProfilerStep#N, its step time the median over the ranks of
 * that step's ProfilerStep duration. One fsdprun trace (or one profiler trace) as cmp_load. */
bool cmp_load_traces(const char *const *real_files, int n_real, const char *sim_file,
                     CmpResult *out, GError **error);
void cmp_clear(CmpResult *r);

/* Signed relative error, NAN when real is 0. */
double cmp_error(double sim, double real);

void cmp_print_table(const CmpResult *r, const char *real_file, const char *sim_file, FILE *out);
char *cmp_to_json(const CmpResult *r);
/* The median real iteration (each rank shifted to start at 0) above the simulated step. */
char *cmp_merged_trace(const CmpResult *r);
/* What was run, for figure titles: the real trace's model, strategy and topology when it names
 * them (fsdprun does), else NULL. g_free it. */
char *cmp_title(const CmpResult *r);

/* The merged trace's events as spans for a Gantt chart: real rows (rank, stream) first, then the
 * simulated rows (rank class, stream), each group sorted by process and thread id. */
typedef struct {
    double start_s, end_s;
    int row;
    const char *kind; /* points into CmpResult.kinds */
} CmpSpan;

typedef struct {
    GArray *spans;    /* of CmpSpan */
    GPtrArray *rows;  /* labels: "real rank 0: compute", "sim class 1: nccl:dp" */
    int n_real_rows;  /* rows[0 .. n_real_rows) are real */
    double span_s[2]; /* latest end: real, simulated */
} CmpTimeline;

void cmp_timeline(const CmpResult *r, CmpTimeline *t);
void cmp_timeline_clear(CmpTimeline *t);

#endif
