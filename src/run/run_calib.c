/* run_calib: `fsdprun --calibrate FILE` measures the machine it runs on with microbenchmarks only
 * (never with the workloads whose error is reported) and writes a topology file that fsdpsim reads:
 *   - ping-pong of 8 B between two ranks of one node and between two nodes: half the round trip
 *     is the latency;
 *   - a bidirectional exchange of 1, 2, 4 and 8 MiB between those ranks, both directions at once
 *     as a ring step uses a link: the bandwidth is the least-squares slope, so the per-message
 *     overhead stays in the latency (used inside a node);
 *   - a ring allreduce sweep over all ranks (nccl-tests' columns): across nodes, the bus
 *     bandwidth of its slope over 1, 4 and 16 MiB is the NIC bandwidth, the link as rings use it;
 *   - single-threaded sgemm (256^3 tiles, OpenBLAS) on every rank at once: the compute rate;
 *   - memcpy of 64 MiB: the memory bandwidth; the overshoot of a 10 us clock_nanosleep: the
 *     executor's per-op overhead, written as the launch overhead.
 * Nodes are what MPI calls shared-memory domains (MPI_COMM_TYPE_SHARED). */
#include "run.h"

#include "../util/cfg.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB (1024.0 * 1024.0)

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* A barrier that sleeps while it waits, so idle ranks leave the CPU to the ones being measured. */
static void quiet_barrier(int poll_us)
{
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    run_wait(1, &req, poll_us);
}

/* Median seconds of one exchange of `bytes` between ranks a and b (others idle at the barrier).
 * bidirectional: both send at once (a ring step); else a ping-pong, reported as half its time. */
static double exchange_s(int a, int b, size_t bytes, bool bidirectional, int reps, int poll_us)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    char *sbuf = g_malloc0(MAX(bytes, 1)), *rbuf = g_malloc0(MAX(bytes, 1));
    double *t = g_new(double, reps);
    int peer = rank == a ? b : a;
    for (int r = 0; r < reps + 1; r++) { /* the first repetition warms up */
        quiet_barrier(poll_us);
        int64_t t0 = run_now_ns();
        if (rank == a || rank == b) {
            MPI_Request req[2];
            if (bidirectional) {
                MPI_Irecv(rbuf, (int)bytes, MPI_BYTE, peer, 1, MPI_COMM_WORLD, &req[0]);
                MPI_Isend(sbuf, (int)bytes, MPI_BYTE, peer, 1, MPI_COMM_WORLD, &req[1]);
                run_wait(2, req, poll_us);
            } else if (rank == a) {
                MPI_Isend(sbuf, (int)bytes, MPI_BYTE, peer, 1, MPI_COMM_WORLD, &req[0]);
                run_wait(1, req, poll_us);
                MPI_Irecv(rbuf, (int)bytes, MPI_BYTE, peer, 1, MPI_COMM_WORLD, &req[0]);
                run_wait(1, req, poll_us);
            } else {
                MPI_Irecv(rbuf, (int)bytes, MPI_BYTE, peer, 1, MPI_COMM_WORLD, &req[0]);
                run_wait(1, req, poll_us);
                MPI_Isend(sbuf, (int)bytes, MPI_BYTE, peer, 1, MPI_COMM_WORLD, &req[0]);
                run_wait(1, req, poll_us);
            }
        }
        double s = (double)(run_now_ns() - t0) * 1e-9;
        if (r > 0)
            t[r - 1] = bidirectional ? s : s / 2;
    }
    double m = median(t, reps);
    MPI_Request req;
    MPI_Ibcast(&m, 1, MPI_DOUBLE, a, MPI_COMM_WORLD, &req);
    run_wait(1, &req, poll_us);
    g_free(sbuf), g_free(rbuf), g_free(t);
    return m;
}

/* Bytes per second of the least-squares line through (bytes, seconds), so that the per-message
 * overhead stays in the intercept. On a loaded machine the times can be noisy enough that the
 * slope is not positive, or so flat that it would claim an absurd bandwidth (once, a two-point
 * slope gave 3 PB/s): then the effective rate of the largest size (its latency included, so a
 * lower bound) is the honest figure. */
static double slope_Bps(const double *bytes, const double *t, int n)
{
    double mb = 0, mt = 0, cov = 0, var = 0;
    for (int i = 0; i < n; i++)
        mb += bytes[i] / n, mt += t[i] / n;
    for (int i = 0; i < n; i++)
        cov += (bytes[i] - mb) * (t[i] - mt), var += (bytes[i] - mb) * (bytes[i] - mb);
    double effective = bytes[n - 1] / t[n - 1];
    if (!(cov > 0) || !(var > 0))
        return effective;
    double Bps = var / cov;
    return Bps > 4 * effective ? effective : Bps;
}

typedef struct {
    double latency_s, Bps;
} LinkFit;

static LinkFit measure_link(int a, int b, int poll_us)
{
    LinkFit f;
    f.latency_s = exchange_s(a, b, 8, false, 50, poll_us);
    double bytes[4], t[4];
    for (int i = 0; i < 4; i++) {
        bytes[i] = (double)(1 << i) * MiB;
        t[i] = exchange_s(a, b, (size_t)bytes[i], true, 5, poll_us);
    }
    f.Bps = slope_Bps(bytes, t, 4);
    return f;
}

static double gemm_flops_per_s(void)
{
    const int n = 256;
    float *a = g_new0(float, n *n), *b = g_new0(float, n *n), *c = g_new0(float, n *n);
    int reps = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    int64_t t0 = run_now_ns(), t = t0;
    while (t - t0 < 500 * 1000 * 1000 || reps < 3) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                    n);
        reps++;
        t = run_now_ns();
    }
    g_free(a), g_free(b), g_free(c);
    return 2.0 * n * n * n * reps / ((double)(t - t0) * 1e-9);
}

static double memcpy_Bps(void)
{
    size_t bytes = (size_t)(64 * MiB);
    char *a = g_malloc(bytes), *b = g_malloc(bytes);
    memset(a, 1, bytes), memset(b, 2, bytes);
    double best = 0;
    for (int r = 0; r < 3; r++) {
        int64_t t0 = run_now_ns();
        memcpy(b, a, bytes);
        double s = (double)(run_now_ns() - t0) * 1e-9;
        best = MAX(best, 2.0 * (double)bytes / s); /* read + write, as HBM traffic is counted */
    }
    g_free(a), g_free(b);
    return best;
}

static double sleep_overshoot_s(void)
{
    double v[200];
    for (int i = 0; i < 200; i++) {
        int64_t t0 = run_now_ns();
        run_sleep_until_ns(t0 + 10000);
        v[i] = (double)(run_now_ns() - t0 - 10000) * 1e-9;
    }
    return median(v, 200);
}

/* Returns the bus bandwidth of the slope over 1, 4 and 16 MiB (slope_Bps x the busbw factor). */
static double allreduce_sweep(int rank, int world, int poll_us)
{
    double fit_bytes[3], fit_t[3];
    int nfit = 0;
    if (rank == 0)
        printf("# ring allreduce over %d ranks\n"
               "#%12s %12s %10s %10s\n",
               world, "size(B)", "time(us)", "algbw(GB/s)", "busbw(GB/s)");
    for (size_t bytes = 64 * 1024; bytes <= (size_t)(16 * MiB); bytes *= 4) {
        size_t buf_bytes = run_coll_buffer_bytes(IR_COLL_ALLREDUCE, bytes, world);
        char *buf = g_malloc0(buf_bytes), *scratch = g_malloc0(buf_bytes);
        double t[3];
        for (int r = 0; r < 4; r++) {
            quiet_barrier(poll_us);
            int64_t t0 = run_now_ns();
            run_coll(RUN_COLL_RING, IR_COLL_ALLREDUCE, bytes, MPI_COMM_WORLD, 7, buf, scratch,
                     poll_us);
            if (r > 0)
                t[r - 1] = (double)(run_now_ns() - t0) * 1e-9;
        }
        double s = median(t, 3), algbw = (double)bytes / s / 1e9;
        if (bytes >= (size_t)MiB && nfit < 3)
            fit_bytes[nfit] = (double)bytes, fit_t[nfit++] = s;
        if (rank == 0)
            printf(" %12zu %12.1f %10.4f %10.4f\n", bytes, s * 1e6, algbw,
                   algbw * 2.0 * (world - 1) / world);
        g_free(buf), g_free(scratch);
    }
    return 2.0 * (world - 1) / world * slope_Bps(fit_bytes, fit_t, nfit);
}

static cJSON *sourced(cJSON *obj, const char *key, double value, const char *source)
{
    cJSON *o = cJSON_AddObjectToObject(obj, key);
    cJSON_AddNumberToObject(o, "value", value);
    cJSON_AddStringToObject(o, "source", source);
    return o;
}

bool run_calibrate(const char *file, const char *name, int poll_us, GError **error)
{
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local);
    int local_size, local_rank;
    MPI_Comm_size(local, &local_size);
    MPI_Comm_rank(local, &local_rank);
    MPI_Comm_free(&local);
    /* ranks per node must be equal and placed in blocks, as srun and mpirun --map-by node:PE place
     * them */
    int *sizes = g_new(int, world);
    MPI_Allgather(&local_size, 1, MPI_INT, sizes, 1, MPI_INT, MPI_COMM_WORLD);
    bool uniform = true;
    for (int r = 0; r < world; r++)
        uniform = uniform && sizes[r] == sizes[0];
    g_free(sizes);
    int block_ok = local_rank == rank % local_size, all_ok = 0;
    MPI_Allreduce(&block_ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!uniform || !all_ok) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "option --calibrate: expected the same number of "
                    "ranks on every node, placed in blocks (rank r on node r / ranks-per-node), "
                    "got another layout");
        return false;
    }
    int nodes = world / local_size;
    char cmd[256];
    LinkFit intra = {0, 0}, inter = {0, 0};
    if (local_size > 1)
        intra = measure_link(0, 1, poll_us);
    if (nodes > 1)
        inter = measure_link(0, local_size, poll_us);
    double gemm = gemm_flops_per_s(), gemm_med = 0;
    double *all = rank == 0 ? g_new(double, world) : NULL;
    MPI_Gather(&gemm, 1, MPI_DOUBLE, all, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    if (rank == 0)
        gemm_med = median(all, world);
    g_free(all);
    double copy = rank == 0 ? memcpy_Bps() : 0, overshoot = rank == 0 ? sleep_overshoot_s() : 0;
    MPI_Barrier(MPI_COMM_WORLD);
    double ring_busbw = allreduce_sweep(rank, world, poll_us);
    if (rank != 0)
        return true;

    snprintf(cmd, sizeof cmd, "measured: fsdprun --calibrate on %d node(s) x %d ranks", nodes,
             local_size);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", "fsdpsim-topology");
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddStringToObject(root, "name", name);
    char *desc =
        g_strdup_printf("Calibrated by fsdprun --calibrate (microbenchmarks only): %d node(s) x %d "
                        "MPI ranks, each rank a 'GPU' whose compute is one CPU core's sgemm rate",
                        nodes, local_size);
    cJSON_AddStringToObject(root, "description", desc);
    g_free(desc);
    /* fsdprun's collectives are a ring of MPI messages (run_coll.c): the collective model charges
     * the latencies measured below per step, not NCCL's GPU latencies */
    cJSON_AddStringToObject(root, "collectives", "p2p-ring");
    char *src;
    sourced(root, "nodes_max", nodes, cmd);
    cJSON *gpu = cJSON_AddObjectToObject(root, "gpu");
    cJSON_AddStringToObject(gpu, "name", "CPU core (fsdprun)");
    src = g_strdup_printf(
        "%s: single-threaded OpenBLAS sgemm 256^3, all ranks at once, median %.2f GFLOP/s; "
        "the same rate for every dtype (CPU)",
        cmd, gemm_med / 1e9);
    const char *dtypes[] = {"peak_tflops_bf16", "peak_tflops_fp16", "peak_tflops_tf32",
                            "peak_tflops_fp32"};
    for (int d = 0; d < 4; d++)
        sourced(gpu, dtypes[d], gemm_med / 1e12, src);
    g_free(src);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    sourced(gpu, "memory_GiB", (double)pages * (double)page / 1073741824.0 / local_size,
            "measured: sysconf(_SC_PHYS_PAGES) x page size / ranks per node");
    src = g_strdup_printf("%s: memcpy of 64 MiB, read + write bytes, best of 3", cmd);
    sourced(gpu, "hbm_GBps", MAX(copy / 1e9, 1.0), src);
    g_free(src);
    sourced(gpu, "matmul_efficiency", 1.0,
            "the peak above is the measured sgemm rate, so all of it is reached");
    sourced(gpu, "memory_efficiency", 1.0, "the bandwidth above is the measured memcpy rate");
    src = g_strdup_printf(
        "%s: median overshoot of a 10 us clock_nanosleep, the executor's cost per op", cmd);
    sourced(gpu, "launch_overhead_us", overshoot * 1e6, src);
    g_free(src);
    cJSON *node = cJSON_AddObjectToObject(root, "node");
    sourced(node, "gpus", local_size, cmd);
    cJSON_AddStringToObject(node, "gpu_link", "shm");
    src = g_strdup_printf(
        "%s: ranks 0 and 1, bidirectional exchange, least-squares slope over 1, 2, 4 and 8 MiB",
        cmd);
    sourced(node, "gpu_link_GBps", local_size > 1 ? MAX(intra.Bps / 1e9, 0.1) : 1.0,
            local_size > 1 ? src : "not measured: one rank per node");
    g_free(src);
    src = g_strdup_printf("%s: ranks 0 and 1, half the round trip of an 8 B ping-pong", cmd);
    sourced(node, "gpu_link_latency_us", intra.latency_s * 1e6,
            local_size > 1 ? src : "not measured: one rank per node");
    g_free(src);
    sourced(node, "nics", nodes > 1 ? 1 : 0,
            "one network interface per node (veth or the node's NIC MPI uses)");
    if (nodes > 1) {
        cJSON_AddStringToObject(node, "nic", "TCP (MPI btl tcp)");
        /* The link as a ring uses it: both directions busy, steps back to back. A lone exchange
         * between two ranks (in the source string, as a check) used to reach about half of it:
         * Open MPI's rendezvous serialised the two directions at times; tools/cluster now sends
         * eagerly up to 16 MiB, and the two agree. */
        src = g_strdup_printf(
            "%s: ring allreduce sweep over all ranks, bus bandwidth of the least-squares slope "
            "over 1, 4 and 16 MiB (a lone bidirectional exchange between nodes reached %.3f GB/s)",
            cmd, inter.Bps / 1e9);
        sourced(node, "nic_GBps", MAX(ring_busbw / 1e9, 0.01), src);
        g_free(src);
        src = g_strdup_printf("%s: ranks 0 and %d, half the round trip of an 8 B ping-pong", cmd,
                              local_size);
        sourced(node, "nic_latency_us", inter.latency_s * 1e6, src);
        g_free(src);
    }
    cJSON *net = cJSON_AddObjectToObject(root, "network");
    cJSON_AddStringToObject(net, "kind", "switch");
    src = g_strdup_printf("%s: half the round trip of an 8 B ping-pong between nodes", cmd);
    sourced(net, "latency_us", nodes > 1 ? inter.latency_s * 1e6 : intra.latency_s * 1e6, src);
    g_free(src);
    cJSON_AddStringToObject(net, "description", "as calibrated");
    char *text = cfg_json_print(root, true);
    cJSON_Delete(root);
    GError *e = NULL;
    bool ok = g_file_set_contents(file, text, -1, &e);
    if (!ok) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_FAILED, "option --calibrate: %s", e->message);
        g_error_free(e);
    } else {
        printf("# intra-node: latency %.1f us, %.3f GB/s; inter-node: latency %.1f us, %.3f GB/s "
               "(ring busbw %.3f); sgemm %.2f "
               "GFLOP/s per rank; wrote %s\n",
               intra.latency_s * 1e6, intra.Bps / 1e9, inter.latency_s * 1e6, inter.Bps / 1e9,
               ring_busbw / 1e9, gemm_med / 1e9, file);
    }
    g_free(text);
    return ok;
}
