/* fsdprun: runs a schedule written by `fsdpsim --emit-schedule` for real, under mpirun or srun:
 *
 *   mpirun -np 4 fsdprun --schedule sched.json --topology topo.json --trace real.json
 *   srun fsdprun --calibrate topo.json
 *   srun fsdprun-nccl --schedule sched.json --topology topo.json --trace real.json   (GPUs)
 *
 * fsdprun-nccl is this program built with the CUDA/NCCL backend (FSDPRUN_NCCL) as its default.
 * Every rank reads the same files, so bad input is found by all of them alike: rank 0 prints the
 * one message and every rank exits with status 2. Where the NCCL backend finds no GPU to use,
 * rank 0 prints one message ("no CUDA device: ...") and every rank exits with status 3. */
#include "run.h"

#include "../kern/kern.h"
#include "../util/cfg.h"

#include <cblas.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#ifdef FSDPRUN_NCCL
#define PROG "fsdprun-nccl"
#define DEFAULT_BACKEND "nccl"
#else
#define PROG "fsdprun"
#define DEFAULT_BACKEND "mpi"
#endif
/* exit status where the NCCL backend cannot run: no driver, no GPU, more ranks than GPUs */
#define EXIT_NO_DEVICE 3

typedef struct {
    char *schedule, *topology, *mode, *coll, *trace, *calibrate, *name, *backend;
    bool nccl; /* the backend chosen */
    int iters, warmup, poll_us;
    double timeout_s;
} RunCli;

static bool parse_options(RunCli *cli, RunOptions *opt, int argc, char **argv, GError **error)
{
    GOptionEntry entries[] = {
        {"schedule", 's', 0, G_OPTION_ARG_FILENAME, &cli->schedule,
         "Schedule to run (fsdpsim --emit-schedule FILE)", "FILE"},
        {"topology", 't', 0, G_OPTION_ARG_FILENAME, &cli->topology,
         "Machine description whose GPU model gives the emulated compute times (the one the "
         "schedule was simulated on)",
         "FILE"},
        {"backend", 'b', 0, G_OPTION_ARG_STRING, &cli->backend,
         "mpi (CPU and MPI) or nccl (one GPU per rank: CUDA streams, cuBLAS, NCCL; fsdprun-nccl "
         "only) [" DEFAULT_BACKEND "]",
         "NAME"},
        {"mode", 'm', 0, G_OPTION_ARG_STRING, &cli->mode,
         "Compute, mpi backend: emulate (wait the modelled time, as the host waits for a GPU "
         "kernel) or gemm (real OpenBLAS sgemm with the op's FLOPs) [emulate]; nccl backend: "
         "cublas (cublasGemmEx with the op's FLOPs and dtype) [cublas]",
         "MODE"},
        {"collectives", 0, 0, G_OPTION_ARG_STRING, &cli->coll,
         "mpi backend: ring (NCCL's ring algorithms over MPI point-to-point) or mpi (MPI's own "
         "nonblocking collectives) [ring]; nccl backend: nccl [nccl]",
         "IMPL"},
        {"iters", 'i', 0, G_OPTION_ARG_INT, &cli->iters, "Measured iterations [10]", "K"},
        {"warmup", 0, 0, G_OPTION_ARG_INT, &cli->warmup,
         "Iterations run before timing (first-touch page faults, connection setup) [2]", "W"},
        {"trace", 0, 0, G_OPTION_ARG_FILENAME, &cli->trace,
         "Chrome trace of the measured iterations, all ranks [fsdprun-trace.json]", "FILE"},
        {"timeout", 0, 0, G_OPTION_ARG_DOUBLE, &cli->timeout_s,
         "Abort the whole job when no op has finished for this long [60]", "SECONDS"},
        {"poll-us", 0, 0, G_OPTION_ARG_INT, &cli->poll_us,
         "Sleep between polls of outstanding MPI requests [50]", "US"},
        {"calibrate", 0, 0, G_OPTION_ARG_FILENAME, &cli->calibrate,
         "Run the microbenchmarks (ping-pong, ring sweeps, GEMM rate) and write a topology file",
         "FILE"},
        {"name", 0, 0, G_OPTION_ARG_STRING, &cli->name,
         "--calibrate: the topology's name [calibrated]", "NAME"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *ctx = g_option_context_new("- run an fsdpsim schedule for real");
    g_option_context_set_description(
        ctx, "Launch with mpirun or srun; one MPI rank per GPU of the schedule.\n"
             "Exit status: 0 success, 1 failure, 2 bad input, 3 no CUDA device to run on (nccl "
             "backend).");
    g_option_context_add_main_entries(ctx, entries, NULL);
    bool ok = g_option_context_parse(ctx, &argc, &argv, error);
    g_option_context_free(ctx);
    if (!ok)
        return false;
    if (argc > 1) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "unexpected argument '%s' (see fsdprun --help)", argv[1]);
        return false;
    }
    const char *backend = cli->backend ? cli->backend : DEFAULT_BACKEND;
    if (strcmp(backend, "nccl") == 0) {
#ifndef FSDPRUN_NCCL
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "option --backend: nccl is in fsdprun-nccl, built beside fsdprun when meson "
                    "finds CUDA and NCCL (meson setup -Dnccl=enabled)");
        return false;
#endif
    } else if (strcmp(backend, "mpi") != 0) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "option --backend: expected mpi or nccl, got '%s'", backend);
        return false;
    }
    cli->nccl = strcmp(backend, "nccl") == 0;
    if (cli->nccl) {
        if ((cli->mode && strcmp(cli->mode, "cublas") != 0) ||
            (cli->coll && strcmp(cli->coll, "nccl") != 0)) {
            g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                        "option --%s: the nccl backend runs cublas and nccl only, got '%s'",
                        cli->mode && strcmp(cli->mode, "cublas") != 0 ? "mode" : "collectives",
                        cli->mode && strcmp(cli->mode, "cublas") != 0 ? cli->mode : cli->coll);
            return false;
        }
        if (cli->calibrate) {
            g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                        "option --calibrate: the microbenchmarks run on the CPU and MPI only; use "
                        "--backend mpi (or fsdprun)");
            return false;
        }
        opt->mode = RUN_MODE_CUBLAS;
        opt->coll = RUN_COLL_NCCL;
    } else {
        const char *mode = cli->mode ? cli->mode : "emulate",
                   *coll = cli->coll ? cli->coll : "ring";
        if (strcmp(mode, "emulate") == 0)
            opt->mode = RUN_MODE_EMULATE;
        else if (strcmp(mode, "gemm") == 0)
            opt->mode = RUN_MODE_GEMM;
        else {
            g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                        "option --mode: expected emulate or gemm, got '%s'", mode);
            return false;
        }
        if (strcmp(coll, "ring") == 0)
            opt->coll = RUN_COLL_RING;
        else if (strcmp(coll, "mpi") == 0)
            opt->coll = RUN_COLL_MPI;
        else {
            g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                        "option --collectives: expected ring or mpi, got '%s'", coll);
            return false;
        }
    }
    opt->iters = cli->iters == G_MININT ? 10 : cli->iters;
    opt->warmup = cli->warmup == G_MININT ? 2 : cli->warmup;
    opt->poll_us = cli->poll_us == G_MININT ? 50 : cli->poll_us;
    opt->timeout_s = cli->timeout_s < 0 ? 60 : cli->timeout_s;
    const char *bad = opt->iters < 1 || opt->iters > 100000              ? "iters"
                      : opt->warmup < 0 || opt->warmup > 1000            ? "warmup"
                      : opt->poll_us < 1 || opt->poll_us > 1000000       ? "poll-us"
                      : !(opt->timeout_s > 0 && opt->timeout_s <= 86400) ? "timeout"
                                                                         : NULL;
    if (bad) {
        char got[32];
        if (strcmp(bad, "timeout") == 0)
            snprintf(got, sizeof got, "%g", opt->timeout_s);
        else
            snprintf(got, sizeof got, "%d",
                     strcmp(bad, "iters") == 0    ? opt->iters
                     : strcmp(bad, "warmup") == 0 ? opt->warmup
                                                  : opt->poll_us);
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "option --%s: expected a number in range (iters "
                    "1-100000, warmup 0-1000, poll-us 1-1000000, timeout 0-86400 s), got %s",
                    bad, got);
        return false;
    }
    if (!cli->calibrate && (!cli->schedule || !cli->topology)) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "option --%s: expected a file, got nothing (a run needs "
                    "--schedule and --topology; or use --calibrate FILE)",
                    cli->schedule ? "topology" : "schedule");
        return false;
    }
    return true;
}

static bool run_schedule(const RunCli *cli, const RunOptions *opt, int rank, int world,
                         GError **error)
{
    IrSchedule *s = ir_schedule_read(cli->schedule, error);
    if (!s)
        return false;
    HwTopology *topo = hw_topology_load(cli->topology, error);
    bool ok = topo != NULL;
    /* the modelled compute times (what the MPI backend sleeps) of ops that name their kernels:
     * the kernel model's for this topology's GPU, as fsdpsim --schedule costs them */
    if (ok)
        kern_schedule_retime(s, &topo->gpu);
    if (ok && s->world != world) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "%s: field 'world': expected the %d ranks of this MPI "
                    "job, got %d (launch one rank per GPU of the schedule)",
                    cli->schedule, world, s->world);
        ok = false;
    }
    RunComms comms = {0};
    RunTimes times = {0};
    ok = ok && run_comms_build(s, rank, &comms, error);
    if (ok) {
        RunBackend *be = NULL;
#ifdef FSDPRUN_NCCL
        if (cli->nccl)
            be = run_backend_cuda_new(s, rank, &comms, opt, error);
        else
#endif
            be = run_backend_mpi_new(&comms);
        ok = be && run_execute(s, topo, opt, rank, be, &times, error) &&
             run_trace_write(s, opt, rank, world, &times,
                             cli->trace ? cli->trace : "fsdprun-trace.json", error);
        if (be)
            be->free(be);
        run_times_free(&times);
        run_comms_free(&comms);
    }
    if (topo)
        hw_topology_free(topo);
    ir_schedule_free(s);
    return ok;
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "C");
    int provided = 0, rank = 0, world = 1;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    /* after MPI_Init: Open MPI installs its backtrace printer only where no SIGSEGV handler is
     * in place, and ours falls back to it on any crash but running out of memory */
    cfg_oom_install("fsdprun");
    openblas_set_num_threads(1); /* one core per rank, as one GPU per rank */
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    RunCli cli = {.iters = G_MININT, .warmup = G_MININT, .poll_us = G_MININT, .timeout_s = -1};
    RunOptions opt = {0};
    GError *error = NULL;
    bool ok = parse_options(&cli, &opt, argc, argv, &error);
    if (ok && provided < MPI_THREAD_MULTIPLE) {
        g_set_error(&error, FSD_ERROR, FSD_ERROR_FAILED,
                    "MPI: expected MPI_THREAD_MULTIPLE (one thread per "
                    "stream), got thread level %d from this MPI library",
                    provided);
        ok = false;
    }
    int status = 0;
    char *device = NULL;
#ifdef FSDPRUN_NCCL
    if (ok && cli.nccl) {
        /* before anything else: without a GPU there is nothing to run */
        char *why = run_cuda_unavailable(&device);
        if (why) {
            if (rank == 0)
                fprintf(stderr, PROG ": %s\n", why);
            g_free(why);
            status = EXIT_NO_DEVICE;
        }
        opt.device = device;
    }
#endif
    if (ok && status == 0)
        ok = cli.calibrate ? run_calibrate(cli.calibrate, cli.name ? cli.name : "calibrated",
                                           opt.poll_us, &error)
                           : run_schedule(&cli, &opt, rank, world, &error);
    if (!ok) {
        bool elsewhere = error->domain == RUN_ERROR_ELSEWHERE;
        status =
            elsewhere || (error->domain == FSD_ERROR && error->code == FSD_ERROR_FAILED) ? 1 : 2;
        if (rank == 0 || (status == 1 && !elsewhere))
            fprintf(stderr, PROG ": %s\n", error->message);
        g_error_free(error);
    }
    g_free(device);
    g_free(cli.schedule), g_free(cli.topology), g_free(cli.mode), g_free(cli.coll),
        g_free(cli.trace);
    g_free(cli.calibrate), g_free(cli.name), g_free(cli.backend);
    MPI_Finalize();
    return status;
}
