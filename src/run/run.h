/* run: fsdprun, the real executor. It runs the schedule that fsdpsim simulates (the IR read from
 * `fsdpsim --emit-schedule`) with MPI: one thread per stream of the rank's class, so that
 * communication overlaps compute as CUDA streams do; real buffers of the schedule's sizes; real
 * collectives on communicators built from the schedule's group families; send/recv for pipeline
 * ops. Compute either waits the modelled device time (emulate, as a host waits for a GPU kernel)
 * or runs a real BLAS GEMM with the op's FLOPs (gemm).
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

typedef enum { RUN_MODE_EMULATE, RUN_MODE_GEMM } RunMode;
typedef enum { RUN_COLL_RING, RUN_COLL_MPI } RunCollImpl;

typedef struct {
    RunMode mode;
    RunCollImpl coll;
    int iters, warmup;
    double timeout_s; /* no progress for this long: abort the whole job */
    int poll_us;      /* sleep between polls of outstanding MPI requests */
} RunOptions;

/* Timings of one rank: per measured iteration and op, ns since the iteration's start (the exit of
 * the barrier that starts it), and the iteration's start on this rank's monotonic clock. */
typedef struct {
    int iters, n_ops;
    int64_t *start_ns, *end_ns; /* [iter * n_ops + op] */
    int64_t *iter_t0_ns;        /* [iter], CLOCK_MONOTONIC */
} RunTimes;

/* Communicators of one rank: one per group family (MPI_Comm_split), one for point-to-point. */
typedef struct {
    MPI_Comm *group_comm; /* [n_groups] */
    int n_groups;
    MPI_Comm p2p;
} RunComms;

bool run_comms_build(const IrSchedule *s, int rank, RunComms *comms, GError **error);
void run_comms_free(RunComms *comms);

/* Executes iters + warmup iterations of the rank's program; times only the last iters. */
bool run_execute(const IrSchedule *s, const HwTopology *topo, const RunOptions *opt, int rank,
                 RunComms *comms, RunTimes *times, GError **error);
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
