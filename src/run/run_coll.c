/* run_coll: collectives for fsdprun.
 *
 * RUN_COLL_RING runs NCCL's ring algorithms (allgather and reduce_scatter in n-1 steps of one
 * chunk each, allreduce as reduce_scatter then allgather) over nonblocking MPI point-to-point, so
 * the algorithm is the one the simulator's collective model assumes, whatever MPI's tuner would
 * pick. Elements are float32 and reduce_scatter really adds them. Broadcast and all-to-all, and
 * everything under RUN_COLL_MPI, use MPI's own nonblocking collectives (MPI_Iallgather, ...).
 * Every wait sleeps between polls (see run.h). */
#include "run.h"

#include <string.h>
#include <time.h>

int64_t run_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void run_sleep_until_ns(int64_t deadline_ns)
{
    struct timespec ts = {(time_t)(deadline_ns / 1000000000), (long)(deadline_ns % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
    }
}

void run_wait(int n, MPI_Request *req, int poll_us)
{
    int done = 0;
    struct timespec pause = {0, (long)poll_us * 1000};
    for (;;) {
        MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE);
        if (done)
            return;
        nanosleep(&pause, NULL);
    }
}

/* Chunk of a ring collective: whole float32 elements, the array split in nranks equal parts. */
static size_t chunk_bytes(uint64_t bytes, int n)
{
    size_t elems = (size_t)((bytes + 3) / 4);
    return ((elems + (size_t)n - 1) / (size_t)n) * 4;
}

size_t run_coll_buffer_bytes(IrCollKind kind, uint64_t bytes, int nranks)
{
    (void)kind;
    return chunk_bytes(bytes, nranks) * (size_t)nranks;
}

static void ring_step(char *send, char *recv, size_t len, MPI_Comm comm, int right, int left,
                      int tag, int poll_us)
{
    MPI_Request req[2];
    MPI_Irecv(recv, (int)len, MPI_BYTE, left, tag, comm, &req[0]);
    MPI_Isend(send, (int)len, MPI_BYTE, right, tag, comm, &req[1]);
    run_wait(2, req, poll_us);
}

/* own: the chunk this rank holds at the start */
static void ring_allgather(char *buf, size_t chunk, int n, int r, int own, MPI_Comm comm, int tag,
                           int poll_us)
{
    int right = (r + 1) % n, left = (r + n - 1) % n;
    for (int k = 0; k < n - 1; k++) {
        int send = (own - k + n) % n, recv = (own - k - 1 + 2 * n) % n;
        ring_step(buf + (size_t)send * chunk, buf + (size_t)recv * chunk, chunk, comm, right, left,
                  tag, poll_us);
    }
}

/* After n-1 steps rank r holds the sum of chunk (r + 1) % n. */
static void ring_reduce_scatter(char *buf, char *scratch, size_t chunk, int n, int r, MPI_Comm comm,
                                int tag, int poll_us)
{
    int right = (r + 1) % n, left = (r + n - 1) % n;
    for (int k = 0; k < n - 1; k++) {
        int send = (r - k + n) % n, recv = (r - k - 1 + 2 * n) % n;
        ring_step(buf + (size_t)send * chunk, scratch, chunk, comm, right, left, tag, poll_us);
        float *acc = (float *)(buf + (size_t)recv * chunk);
        const float *in = (const float *)scratch;
        for (size_t i = 0; i < chunk / 4; i++)
            acc[i] += in[i];
    }
}

void run_coll(RunCollImpl impl, IrCollKind kind, uint64_t bytes, MPI_Comm comm, int tag, char *buf,
              char *scratch, int poll_us)
{
    int n, r;
    MPI_Comm_size(comm, &n);
    MPI_Comm_rank(comm, &r);
    if (n <= 1 || bytes == 0)
        return;
    size_t chunk = chunk_bytes(bytes, n);
    int count = (int)(chunk / 4);
    MPI_Request req;
    if (impl == RUN_COLL_RING && kind != IR_COLL_BROADCAST && kind != IR_COLL_ALLTOALL) {
        if (kind == IR_COLL_REDUCE_SCATTER || kind == IR_COLL_ALLREDUCE)
            ring_reduce_scatter(buf, scratch, chunk, n, r, comm, tag, poll_us);
        if (kind == IR_COLL_ALLGATHER || kind == IR_COLL_ALLREDUCE) {
            /* allreduce: rank r now holds reduced chunk r + 1; the allgather ring starts there */
            int own = kind == IR_COLL_ALLREDUCE ? (r + 1) % n : r;
            ring_allgather(buf, chunk, n, r, own, comm, tag, poll_us);
        }
        return;
    }
    switch (kind) {
    case IR_COLL_ALLGATHER:
        MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, count, MPI_FLOAT, comm, &req);
        break;
    case IR_COLL_REDUCE_SCATTER:
        MPI_Ireduce_scatter_block(buf, scratch, count, MPI_FLOAT, MPI_SUM, comm, &req);
        break;
    case IR_COLL_ALLREDUCE:
        MPI_Iallreduce(MPI_IN_PLACE, buf, count * n, MPI_FLOAT, MPI_SUM, comm, &req);
        break;
    case IR_COLL_BROADCAST:
        MPI_Ibcast(buf, count * n, MPI_FLOAT, 0, comm, &req);
        break;
    case IR_COLL_ALLTOALL:
    default:
        /* all-to-all out of place: the second half of scratch is not needed, buf is both */
        MPI_Ialltoall(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, count, MPI_FLOAT, comm, &req);
        break;
    }
    run_wait(1, &req, poll_us);
}
