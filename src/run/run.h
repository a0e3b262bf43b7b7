/* run: fsdprun, the real executor. It runs the schedule that fsdpsim simulates (the IR read from
 * `fsdpsim --emit-schedule`): one thread per stream of the rank's class, each running its ops in
 * issue order after their dependencies (run_exec.c). What an op does is the backend's:
 *   - mpi (run_mpi.c, fsdprun): real buffers of the schedule's sizes in host memory, real
 *     collectives over MPI on communicators built from the schedule's group families, send/recv
 *     for pipeline ops; compute either waits the modelled device time (emulate, as a host waits
 *     for a GPU kernel) or runs a real BLAS GEMM with the op's FLOPs (gemm);
 *   - nccl (run_cuda.c, fsdprun-nccl, built when CUDA and NCCL are found): one CUDA stream per
 *     GPU stream of the schedule, cuBLAS GEMMs, NCCL collectives and send/recv, cudaEvents for
 *     the dependencies across streams and for the timing; one GPU per rank.
 *
 * Communication threads never spin inside MPI: they post nonblocking operations and poll them
 * with a short sleep in between, so that on a small machine (2 cores, many ranks) the CPU is left
 * to the kernel's network stack and to compute. Cost: up to one poll interval of extra latency
 * per message step. */
#ifndef FSD_RUN_H
#define FSD_RUN_H

#include "../hw/hw.h"
#include "../ir/ir.h"

#include <glib.h>
#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum { RUN_MODE_EMULATE, RUN_MODE_GEMM, RUN_MODE_CUBLAS } RunMode;
typedef enum { RUN_COLL_RING, RUN_COLL_MPI, RUN_COLL_NCCL } RunCollImpl;

typedef struct {
    RunMode mode;
    RunCollImpl coll;
    int iters, warmup;
    double timeout_s;   /* no progress for this long: abort the whole job */
    int poll_us;        /* sleep between polls of outstanding MPI requests */
    const char *device; /* the GPU's name (nccl backend), for the trace; NULL on the CPU */
} RunOptions;

/* Timings of one rank: per measured iteration and op, ns since the iteration's start (the exit of
 * the barrier that starts it), and the iteration's start on this rank's monotonic clock. */
typedef struct {
    int iters, n_ops;
    int64_t *start_ns, *end_ns; /* [iter * n_ops + op] */
    int64_t *iter_t0_ns;        /* [iter], CLOCK_MONOTONIC */
} RunTimes;

/* A failure found on another rank, which prints the message itself: exit status 1, and only
 * rank 0 says that something failed elsewhere. */
#define RUN_ERROR_ELSEWHERE (g_quark_from_static_string("fsdprun-failed-elsewhere"))

/* Communicators of one rank: one per group family (MPI_Comm_split), one for point-to-point. */
typedef struct {
    MPI_Comm *group_comm; /* [n_groups] */
    int n_groups;
    MPI_Comm p2p;
} RunComms;

bool run_comms_build(const IrSchedule *s, int rank, RunComms *comms, GError **error);
void run_comms_free(RunComms *comms);

/* What the executor knows of the rank's program, shared with its backend. */
typedef struct {
    const IrSchedule *s;
    const IrClass *c;
    const RunOptions *opt;
    int rank, n_ops;
    const int *tag;        /* per collective: its sequence number on its group */
    const int64_t *dur_ns; /* per op: the modelled duration (emulated host ops and compute) */
} RunProgram;

/* What an op does, on the machine the executor runs on. The executor calls, per stream thread
 * and op: wait_deps once the op's dependencies have been run (or, for a backend that issues
 * device work asynchronously, issued), then run, timing run on the host clock. A failure inside
 * wait_deps or run is fatal: the backend prints one message and aborts the job (MPI_Abort), as
 * the watchdog does. */
typedef struct RunBackend RunBackend;
struct RunBackend {
    const char *name; /* "mpi", "nccl" */
    /* State of one stream (buffers sized for its ops: ops[k] are op indices in issue order). */
    void *(*stream_new)(RunBackend *be, const RunProgram *p, int stream, const int *ops, int n_ops,
                        GError **error);
    void (*stream_free)(RunBackend *be, void *stream_state);
    /* Called first in every stream thread (NULL: nothing to do). */
    void (*thread_init)(RunBackend *be);
    /* Before op i: make it wait for its dependencies (NULL: the executor's waiting suffices). */
    void (*wait_deps)(RunBackend *be, void *stream_state, const RunProgram *p, int i,
                      const int *deps, int n_deps);
    void (*run)(RunBackend *be, void *stream_state, const RunProgram *p, int i, int64_t start_ns);
    /* Around each iteration (NULL: nothing). iter_end runs after every stream thread has
     * returned; a backend that times ops on the device waits for them there and overwrites
     * their start_ns/end_ns (ns since the iteration's start, the barrier's exit). A failure
     * (false) aborts the job with the error's message. */
    bool (*iter_begin)(RunBackend *be, const RunProgram *p, GError **error);
    bool (*iter_end)(RunBackend *be, const RunProgram *p, int64_t *start_ns, int64_t *end_ns,
                     GError **error);
    void (*free)(RunBackend *be);
};

/* The MPI backend (run_mpi.c) on the given communicators. */
RunBackend *run_backend_mpi_new(RunComms *comms);

#ifdef FSDPRUN_NCCL
/* The CUDA/NCCL backend (run_cuda.c): selects this rank's GPU, creates its streams, cuBLAS
 * handles and NCCL communicators (collectively over MPI_COMM_WORLD). */
RunBackend *run_backend_cuda_new(const IrSchedule *s, int rank, RunComms *comms,
                                 const RunOptions *opt, GError **error);
/* Why this rank cannot use a GPU (no driver, no device, more ranks on its node than GPUs), NULL
 * when it can; then *device is the GPU's name. g_free both. Collective over MPI_COMM_WORLD. */
char *run_cuda_unavailable(char **device);
#endif

/* Executes iters + warmup iterations of the rank's program; times only the last iters. */
bool run_execute(const IrSchedule *s, const HwTopology *topo, const RunOptions *opt, int rank,
                 RunBackend *be, RunTimes *times, GError **error);
void run_times_free(RunTimes *t);

/* Collectives (run_coll.c). buf holds `bytes` (rounded up to whole chunks, see run_coll_buffer_
 * bytes); scratch at least one chunk. Polls with the given sleep. */
size_t run_coll_buffer_bytes(IrCollKind kind, uint64_t bytes, int nranks);
void run_coll(RunCollImpl impl, IrCollKind kind, uint64_t bytes, MPI_Comm comm, int tag, char *buf,
              char *scratch, int poll_us);
void run_wait(int n, MPI_Request *req, int poll_us);

/* Writes the Chrome trace of all ranks (collective over MPI_COMM_WORLD; rank 0 writes). */
bool run_trace_write(const IrSchedule *s, const RunOptions *opt, int rank, int world,
                     const RunTimes *times, const char *file, GError **error);

/* Microbenchmarks -> topology JSON (collective over MPI_COMM_WORLD; rank 0 writes). */
bool run_calibrate(const char *file, const char *name, int poll_us, GError **error);

int64_t run_now_ns(void);
void run_sleep_until_ns(int64_t deadline_ns);

#endif
