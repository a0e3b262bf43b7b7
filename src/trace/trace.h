/* trace: PyTorch profiler (Kineto) traces of real jobs, one file per rank: a reader shared by
 * `fsdpsim trace` and `fsdpsim compare`, the step breakdown Holistic Trace Analysis users know
 * (compute, exposed communication, memcpy, idle), kernel classes, an NCCL table in nccl-tests'
 * columns with the collectives matched across ranks, and a straggler table.
 *
 * Reading (trace_read.c): .json or .json.gz (GLib's GZlibDecompressor), streamed: the top-level
 * object is scanned byte by byte and each element of traceEvents is parsed on its own, so memory
 * is one event's text plus the compact records kept (a GPU activity is ~80 bytes, a launch ~24);
 * CPU operators other than communication annotations and ProfilerStep are dropped. The rank comes
 * from distributedInfo.rank; steps are the CPU annotations ProfilerStep#N, and a GPU activity
 * belongs to the step whose CPU span holds its launch (cudaLaunchKernel, cudaMemcpyAsync, ...),
 * found through the launch's correlation id.
 *
 * Analysis (trace_analyze.c): collectives are matched across ranks by process group and sequence
 * number within it; an instance's transfer time is end - latest start, the rest of each rank's
 * kernel is waiting for a late peer (counted as such, not as communication). */
#ifndef FSD_TRACE_H
#define FSD_TRACE_H

#include "../hw/hw.h"
#include "../ir/ir.h"

#include <cjson/cJSON.h>
#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Kernel classes, as HTA groups them (hta/analyzers/breakdown_analysis.py) plus memcpy/memset. */
typedef enum {
    TRACE_CLASS_GEMM,
    TRACE_CLASS_ATTENTION,
    TRACE_CLASS_ELEMENTWISE, /* normalisation, activations, reductions, copies on the SMs */
    TRACE_CLASS_OPTIMIZER,
    TRACE_CLASS_NCCL,
    TRACE_CLASS_MEMCPY, /* gpu_memcpy and gpu_memset activities */
    TRACE_CLASS_OTHER,  /* embedding lookups, sorts, ... */
    TRACE_CLASS_COUNT
} TraceClass;

/* Collective kinds as nccl-tests names its tests. */
typedef enum {
    TRACE_COLL_ALLREDUCE,
    TRACE_COLL_ALLGATHER,
    TRACE_COLL_REDUCE_SCATTER,
    TRACE_COLL_BROADCAST,
    TRACE_COLL_REDUCE,
    TRACE_COLL_ALLTOALL,
    TRACE_COLL_SENDRECV,
    TRACE_COLL_COUNT
} TraceCollKind;

/* One GPU activity: kernel, memcpy or memset. Times in us on the trace's clock. */
typedef struct {
    double start_us, end_us;
    double launch_us; /* its launch call's start on the host; NAN when not found */
    int launch_tid;   /* the host thread that launched it */
    int64_t correlation;
    int stream;
    int step;    /* index into TraceRank.steps, -1 when launched outside every step */
    uint8_t cls; /* TraceClass */
    int name;    /* index into TraceRank.names */
    int coll;    /* index into TraceRank.colls, -1 for non-NCCL activities */
} TraceKernel;

/* An NCCL kernel's collective. */
typedef struct {
    int kernel;   /* index into TraceRank.kernels */
    uint8_t kind; /* TraceCollKind */
    char *pg;     /* process group name ("" for the default group) */
    int group_size;
    int64_t in_nelems, out_nelems;
    int dtype_bytes;
    const char *dtype;  /* canonical: "float", "bf16", ... (static) */
    int seq;            /* order within its process group on this rank */
    const char *source; /* where the size came from: "nccl metadata", "record_param_comms", ... */
    int instance;       /* index into TraceSet.instances after matching */
    double wait_us;     /* of this rank's kernel, waiting for the latest peer (0 unmatched) */
} TraceColl;

/* A GEMM kernel's shape, from the aten::mm / addmm / bmm / baddbmm around its launch (traces
 * recorded with record_shapes=True): batch x [m x k] . [k x n]. */
typedef struct {
    int kernel; /* index into TraceRank.kernels */
    double m, n, k, batch;
    const char *dtype; /* canonical, as trace_dtype_bytes names it */
} TraceGemm;

/* A memory-bound kernel's bytes, from the one aten operator around its launch (record_shapes):
 * its input tensors read plus an output the size of the largest written. Kept when >= 1 MiB. */
typedef struct {
    int kernel;
    double bytes;
} TraceMem;

typedef struct {
    int number; /* N of ProfilerStep#N */
    double cpu_start_us, cpu_dur_us;
    int tid;                         /* the host thread of the annotation */
    double gpu_start_us, gpu_end_us; /* of its activities; NAN when it launched none */
} TraceStep;

/* A host call that may block until GPU work is done: cuda*Synchronize, cudaMemcpy(Async): which
 * work is inferred at replay (the latest activity ending inside the call). */
typedef struct {
    double start_us, end_us;
    int tid;
} TraceSync;

/* The HTA-style breakdown of one rank's step, over its GPU span (first activity start to last
 * activity end): every instant is charged to one bucket, by priority compute > communication
 * transfer > communication waiting > memcpy > idle. Idle before an activity whose launch came
 * after the gap began is host-bound (the GPU waited for the CPU), the rest is waiting (on an
 * event, a synchronisation or a peer). class_s sums durations, overlap counted per kernel. */
typedef struct {
    double gpu_span_s, compute_s, exposed_comm_s, comm_wait_s, memcpy_s, idle_host_s, idle_wait_s;
    double class_s[TRACE_CLASS_COUNT];
    int class_calls[TRACE_CLASS_COUNT];
} TraceBreakdown;

typedef struct {
    char *file;
    int rank, world_size;
    char *backend, *nccl_version; /* from distributedInfo, "" when absent */
    char *device;                 /* deviceProperties[0].name, "" when absent */
    GArray *kernels;              /* of TraceKernel, by start */
    GArray *colls;                /* of TraceColl, by kernel start */
    GArray *steps;                /* of TraceStep, by start */
    GArray *breakdown;            /* of TraceBreakdown, one per step (trace_set_analyze) */
    GArray *gemms;                /* of TraceGemm, GEMM kernels whose shape the trace records */
    GArray *mems;                 /* of TraceMem, memory-bound kernels whose bytes it records */
    GArray *launch_call_us;       /* of float: each cudaLaunchKernel's host duration */
    GArray *syncs;                /* of TraceSync, by end */
    GArray *stream_waits;         /* of TraceSync: cudaStreamWaitEvent calls, by end */
    GPtrArray *names;             /* kernel names, interned */
    int64_t events;               /* traceEvents read */
    /* GPU activities with no host call of their correlation id (launched before the profiler's
     * window, or by a launch API the trace does not record): all, and those whose id is below
     * every recorded call's (launched before the trace began: no step). */
    int unlaunched, unlaunched_before;
    /* baseTimeNanoseconds (Kineto since 2024-05, PyTorch >= 2.4): ts is us after it; absent
     * (older traces), ts is us since the epoch and the base 0. trace_set_read aligns the ranks on
     * it. */
    int64_t base_time_ns;
    bool has_distributed_info; /* the file had one (without it: rank 0 of 1) */
} TraceRank;

/* A collective instance matched across the ranks of the set. */
typedef struct {
    int coll_of_first; /* index into the first participating rank's colls */
    int first_rank;    /* index into TraceSet.ranks */
    int ranks;         /* participants found in the set */
    double latest_start_us, transfer_us;
    int last_rank;            /* the rank that arrived last (distributedInfo.rank) */
    double waiting_caused_us; /* summed over the other participants */
} TraceInstance;

typedef struct {
    GPtrArray *ranks;  /* of TraceRank, by rank */
    GArray *instances; /* of TraceInstance */
    int world_size;
} TraceSet;

/* Reads FILES (each a trace file or a directory of *.json / *.json.gz traces) into a set ordered
 * by rank and analyses it. Refuses (FSD_ERROR_INPUT, naming the file and field): unreadable or
 * truncated files, JSON that is not a profiler trace, traces with no ProfilerStep#N, duplicated
 * ranks, and ranks of different jobs (world size, backend or NCCL version differ). */
TraceSet *trace_set_read(const char *const *files, int n_files, GError **error);
void trace_set_free(TraceSet *set);

/* Reads one file into rank (the caller's set does the cross-file checks); trace_read.c. */
TraceRank *trace_rank_read(const char *file, GError **error);
void trace_rank_free(TraceRank *rank);

/* Whether FILE looks like a profiler trace: gzip, or JSON with schemaVersion before traceEvents
 * in its first 64 KiB. Used by compare to pick the reader; false on any read error. */
bool trace_file_sniff(const char *file);

/* Matching, waiting and the breakdowns; trace_analyze.c. */
void trace_set_analyze(TraceSet *set);

/* Classification, exposed for the tests. */
TraceClass trace_class_of(const char *kernel_name, bool memcpy);
/* -1 when the text names no collective. Accepts metadata ("allreduce", "_allgather_base"),
 * annotations ("nccl:all_to_all") and kernel names (ncclKernel_ReduceScatter_RING_...). */
int trace_coll_kind_of(const char *text);
const char *trace_coll_kind_name(TraceCollKind kind);
/* The schedule's collective for a traced one; false for those the schedule has none of. */
bool trace_coll_ir_kind(TraceCollKind kind, IrCollKind *out);
const char *trace_class_name(TraceClass cls);
/* Bytes per element from a dtype as the metadata ("BFloat16"), an annotation ("c10::Half") or a
 * kernel name ("..._Sum_bf16") spells it; 0 and NULL name when unknown. */
int trace_dtype_bytes(const char *text, const char **canonical);
/* nccl-tests' bus bandwidth factor (nccl-tests doc/PERFORMANCE.md). */
double trace_busbw_factor(TraceCollKind kind, int nranks);

/* One row of the NCCL table: instances grouped by collective, size, type and group size. */
typedef struct {
    TraceCollKind kind;
    uint64_t size_bytes, count;
    const char *dtype;
    int group_size, calls, matched_ranks;
    double time_us; /* mean transfer time (kernel duration when unmatched) */
    double wait_us; /* mean waiting per participant */
    double algbw_GBps, busbw_GBps;
    const char *source;
} TraceCollRow;

GArray *trace_coll_table(const TraceSet *set); /* of TraceCollRow, by kind then size */

typedef struct {
    int rank, last, instances;
    double waiting_caused_s;
} TraceStraggler;

GArray *trace_stragglers(const TraceSet *set); /* of TraceStraggler, most often last first */

/* fsdpsim trace calibrate (trace_calib.c): TOPO_FILE with the figures the trace measures
 * replaced, each with source "measured from trace WHAT ...", written to OUT_FILE: the launch call
 * (median cudaLaunchKernel), the kernel model's GEMM figures fitted to the GEMM shapes the trace
 * records (record_shapes=True), the memory efficiency from its memory-bound kernels of >= 16
 * MiB. The NCCL table against the collective model is reported, not
 * written. What was done goes to REPORT. Errors: the topology's, or OUT_FILE unwritable. */
bool trace_calibrate(const TraceSet *set, const char *what, const char *topo_file,
                     const char *out_file, FILE *report, GError **error);

/* Replay (trace_replay.c): every GPU activity from its dependencies (launch, stream order,
 * cross-stream waits and host syncs, the last two inferred from the timeline) with its measured
 * duration; a matched collective's transfer (end - latest start) times factor[instance] (NULL: 1).
 * step_s gets one GArray of double per rank: each step's replayed time, max(host span of
 * ProfilerStep, GPU span of its activities), s. */
void trace_replay(const TraceSet *set, const double *factor, GPtrArray *step_s);
double trace_median_step_s(GPtrArray *step_s);
/* |replayed - ProfilerStep| / ProfilerStep over ranks and steps: mean and max; the replayed
 * median step. */
void trace_replay_error(const TraceSet *set, double *mean_abs, double *max_abs, double *median_s);

/* What-if (trace_whatif.c): the layout the collectives show (process groups, per-step pattern:
 * DDP buckets, FSDP gathers, TP all-reduces, all-to-all), then the replayed step at the trace's
 * own scale and at each of RANKS on TOPO_FILE: collectives over the world group re-costed by the
 * NCCL model's ratio, everything else kept as measured; and the step as fsdpsim's schedule run by
 * the engine at each size; all said on OUT. EMIT_SCHEDULE (or NULL): where to write the schedule
 * at the first of RANKS (fsdpsim --schedule FILE runs it). */
char *trace_infer_layout(const TraceSet *set);
bool trace_whatif(const TraceSet *set, const char *topo_file, const int *ranks, int n_ranks,
                  const char *emit_schedule, FILE *out, GError **error);

/* The schedule of one traced step (trace_ir.c): rank 0's median ProfilerStep#N on every rank,
 * each traced rank a class of ranks/R ranks; host time, compute, memcpy as measured, NCCL
 * collectives of known size as IR collectives (the world group at its new size); recosted and
 * kept count rank 0's collectives. Input error when the traced ranks or the topology's GPUs per
 * node do not divide `ranks`, or a rank lacks the step. */
IrSchedule *trace_to_schedule(const TraceSet *set, int ranks, const HwTopology *topo, int *recosted,
                              int *kept, GError **error);
/* That schedule through the engine (NCCL model, flow-level network): its step (makespan). */
bool trace_engine_step_s(const TraceSet *set, int ranks, const HwTopology *topo, double *step_s,
                         int *recosted, int *kept, GError **error);

/* Output; trace_print.c. */
void trace_print_summary(const TraceSet *set, FILE *out);
char *trace_summary_json(const TraceSet *set);

/* The set's stepped GPU activities as a trace `compare` reads like fsdprun's: otherData.generator
 * "pytorch-profiler", otherData.step_time_s (per step: the median over ranks of ProfilerStep#N's
 * duration), one process per rank (pid = rank), args.iter = the step. With only_iter >= 0 the
 * activities of that step only, with -1 none: compare sums every step through
 * trace_set_activities and keeps the document of its median step (the figure, the merged
 * trace), so that its memory is the reader's compact arrays and one step's events, not a cJSON
 * object per activity of the whole trace. TRACE_COMPARE_ALL: every step. */
#define TRACE_COMPARE_ALL (-2)
cJSON *trace_set_to_compare(const TraceSet *set, int only_iter);
/* Every stepped GPU activity of the document trace_set_to_compare(set, TRACE_COMPARE_ALL)
 * would hold, in its order, from the set's arrays: cat "kernel" or "gpu_memcpy" (or the
 * collective's kind, trace_coll_kind_name, for an NCCL kernel named for another), the kernel's
 * name, pid (the rank), tid (the stream), ts and dur in us, and iter (the index into
 * step_time_s). */
typedef void (*TraceActivityFn)(void *data, const char *cat, const char *name, int pid, int tid,
                                double ts_us, double dur_us, int iter);
void trace_set_activities(const TraceSet *set, TraceActivityFn fn, void *data);

#endif
