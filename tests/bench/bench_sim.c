/* bench_sim: how long fsdpsim takes, on the reference workloads, run the same way every time.
 * Not a test: it prints its figures (wall time of generation and simulation, the CPU time of
 * both, ops, events, transfers through the flow model, the link classes it kept apart, events
 * per CPU-second of the simulation, steady-state periods skipped) and the targets beside them
 * ("-": a reference row without one: the 1T layout's fill and drain, which bounds the 1T rows
 * from below whatever is skipped). The CPU time is the figure to trust on a shared
 * machine, where wall time includes waiting for a core. Pipelines run as fsdpsim runs them: a
 * long 1F1B one compact (src/compact). Then, once, in a fresh process (bench_sim memory), the
 * 1T layout at 4096 micro-batches (issue 13's memory case): its CPU time and that process's
 * peak resident set (VmHWM; the schedule, the engine's per-op state and the result, no
 * report), against issue 13's 100 MB. Run: build/tests/bench/bench_sim [REPEATS [LABEL]]
 * (REPEATS 0: the table only; LABEL: only the table's rows whose label contains it, without the
 * memory case, e.g. to profile one: perf record build/tests/bench/bench_sim 20 "1T tp 8 x pp 64,
 * 512"). */
#include "coll/coll.h"
#include "compact/compact.h"
#include "core/sim.h"
#include "model/model.h"
#include "strategy/strategy.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct {
    const char *label, *model, *topology, *sharding;
    int nodes, gpus_per_node;
    double target_s;
    /* Megatron layouts (DDP across the replicas): tp x pp, micro-batches, interleaving, SP */
    int tp, pp, micro_batches, virtual_stages;
    bool sequence_parallel;
} Case;

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The process's peak resident set, in MB: VmHWM of /proc/self/status, the high-water mark of
 * its memory since its exec (getrusage's ru_maxrss keeps the forking parent's from before the
 * exec: the table's process, after the SP layout, 128 MB); ru_maxrss where /proc cannot say. */
static double peak_resident_mb(void)
{
    char *text = NULL;
    double kib = 0;
    if (g_file_get_contents("/proc/self/status", &text, NULL, NULL)) {
        const char *line = strstr(text, "VmHWM:");
        if (!line || sscanf(line, "VmHWM: %lf kB", &kib) != 1)
            kib = 0;
    }
    g_free(text);
    if (kib <= 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kib = (double)ru.ru_maxrss;
    }
    return kib * 1024 / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    /* "memory": the memory case alone, in the fresh process the table runs it in, so that
     * the peak resident set is its own, not the largest case's before it */
    bool memory_only = argc > 1 && strcmp(argv[1], "memory") == 0;
    int repeats = argc > 1 && !memory_only ? atoi(argv[1]) : 11;
    /* 0: the table once, without the memory case (5 s and a GB) */
    const char *only = argc > 2 && !memory_only ? argv[2] : NULL;
    bool memory_case = repeats != 0 && !only;
    if (repeats < 1)
        repeats = 1;
    /* targets: CPU time of generation and simulation; issue 13's where it sets one (GPT-3
     * full_shard, JUPITER, the 1T layouts) */
    const Case cases[] = {
        {"GPT-3 175B full_shard, 1024 GPUs of JUWELS Booster", "models/gpt3-175b.json",
         "topologies/juwels-booster.json", "full_shard", 256, 4, 0.001, 1, 1, 1, 1, false},
        {"Llama-2-70B hybrid_shard, 23752 GPUs of JUPITER Booster", "models/llama2-70b.json",
         "topologies/jupiter-booster.json", "hybrid_shard", 5938, 4, 0.008, 1, 1, 1, 1, false},
        {"GPT-3 175B ddp, 1024 GPUs of JUWELS Booster", "models/gpt3-175b.json",
         "topologies/juwels-booster.json", NULL, 256, 4, 0.100, 1, 1, 1, 1, false},
        /* Megatron-LM's Table 1 (Narayanan et al., SC21) on JUWELS Booster: the 529.6B row (280
         * micro-batches, as issue 13 measured it) and the 1T row, then the 1T row with sequence
         * parallelism and 2 model chunks per stage (interleaved 1F1B) */
        /* a pipeline whose steady phase repeats exactly, so most of it is skipped (sim_steady.c);
         * its target is not the issue's: the full simulation's CPU time on the development
         * machine (FSDPSIM_NO_STEADY_STATE=1 bench_sim 3: 141 ms), to stay under */
        {"GPT-3 175B tp 8 x pp 8, 256 micro-batches, 192 GPUs", "models/gpt3-175b.json",
         "topologies/juwels-booster.json", NULL, 48, 4, 0.141, 8, 8, 256, 1, false},
        {"GPT 529.6B tp 8 x pp 35, 280 micro-batches, 2240 GPUs", "tests/bench/megatron-530b.json",
         "topologies/juwels-booster.json", NULL, 560, 4, 1.0, 8, 35, 280, 1, false},
        {"GPT 1T tp 8 x pp 64, 512 micro-batches, 3072 GPUs", "tests/bench/megatron-1t.json",
         "topologies/juwels-booster.json", NULL, 768, 4, 0.030, 8, 64, 512, 1, false},
        /* the 1T row's fill and drain alone (pp micro-batches: every op is in the fill or the
         * drain, one steady pair per stage), which an exact simulation cannot avoid at any
         * micro-batch count: the floor under the 1T row's figure at this engine's cost per
         * event (no target) */
        {"GPT 1T tp 8 x pp 64, 64 micro-batches (fill and drain)", "tests/bench/megatron-1t.json",
         "topologies/juwels-booster.json", NULL, 768, 4, 0, 8, 64, 64, 1, false},
        {"GPT 1T tp 8 x pp 64 x 2 chunks, SP, 512 micro-batches", "tests/bench/megatron-1t.json",
         "topologies/juwels-booster.json", NULL, 768, 4, 0.060, 8, 64, 512, 2, true},
        /* the same at 4096 micro-batches (64 groups of 64): compact from 16 groups (no target;
         * in fsdpsim the full program takes 3.0 s and 1.36 GB, the compact one 1.4 s and 407 MB) */
        {"GPT 1T tp 8 x pp 64 x 2 chunks, SP, 4096 micro-batches", "tests/bench/megatron-1t.json",
         "topologies/juwels-booster.json", NULL, 768, 4, 0, 8, 64, 4096, 2, true},
        /* the memory case, run once (its CPU target: the 512 micro-batch row's, scaled by 8) */
        {"GPT 1T tp 8 x pp 64, 4096 micro-batches (memory case)", "tests/bench/megatron-1t.json",
         "topologies/juwels-booster.json", NULL, 768, 4, 0.240, 8, 64, 4096, 1, false},
    };
    /* the table's cases, or the memory case (the last) alone */
    const size_t n_all = G_N_ELEMENTS(cases);
    size_t first = memory_only ? n_all - 1 : 0, end = memory_only ? n_all : n_all - 1;
    if (!memory_only)
        printf("%-58s %10s %10s %10s %6s %8s %9s %7s %12s %7s %8s\n",
               "workload (median of repeats, one core)", "generate", "simulate", "cpu", "ops",
               "events", "transfers", "classes", "events/cpu-s", "skipped", "target");
    for (size_t k = first; k < end; k++) {
        const Case *c = &cases[k];
        if (only && !strstr(c->label, only))
            continue;
        bool last = k == G_N_ELEMENTS(cases) - 1;
        int runs = last ? 1 : repeats;
        char *mpath = g_build_filename(FSDPSIM_SOURCE_ROOT, c->model, NULL);
        char *tpath = g_build_filename(FSDPSIM_SOURCE_ROOT, c->topology, NULL);
        GError *error = NULL;
        Model *model = model_load(mpath, NULL, &error);
        HwTopology *topo = model ? hw_topology_load(tpath, &error) : NULL;
        if (!topo) {
            fprintf(stderr, "bench_sim: %s\n", error->message);
            return 1;
        }
        StratOptions opt;
        strat_options_default(&opt, model);
        if (c->sharding)
            strat_sharding_parse(c->sharding, &opt.sharding);
        else
            opt.kind = STRAT_DDP;
        if (c->pp > 1) {
            opt.tp = c->tp;
            opt.pp = c->pp;
            opt.grad_accum = c->micro_batches;
            opt.virtual_stages = c->virtual_stages;
            opt.pp_schedule = c->virtual_stages > 1 ? PP_SCHEDULE_INTERLEAVED : PP_SCHEDULE_1F1B;
            opt.sequence_parallel = c->sequence_parallel;
        }
        StratLayout layout;
        strat_layout_make(&opt, c->nodes, c->gpus_per_node, &layout, &error);
        CollModel coll;
        coll_model_analytic_init(&coll, topo);
        NetTopo *net = net_topo_new(topo, c->nodes, c->gpus_per_node);
        SimConfig cfg = {topo, &coll, net};
        double *gen_s = g_new(double, runs), *sim_s = g_new(double, runs);
        double *cpu_s = g_new(double, runs), *sim_cpu_s = g_new(double, runs);
        uint64_t events = 0, transfers = 0, skipped = 0;
        int ops = 0, classes = 0;
        for (int r = 0; r < runs; r++) {
            StratInfo info;
            double c0 = thread_cpu_s();
            gint64 t0 = g_get_monotonic_time();
            /* as fsdpsim runs it: a long 1F1B or interleaved pipeline compact (src/compact) */
            CompactPlan plan = {0};
            IrSchedule *s = compact_generate(model, topo, &opt, &layout, true, &info, &plan, NULL,
                                             NULL, &error);
            gint64 t1 = g_get_monotonic_time();
            double c1 = thread_cpu_s();
            SimResult *res =
                compact_run(model, topo, &opt, &layout, &cfg, &s, &info, &plan, NULL, NULL, &error);
            compact_plan_clear(&plan);
            gint64 t2 = g_get_monotonic_time();
            double c2 = thread_cpu_s();
            cpu_s[r] = c2 - c0;
            sim_cpu_s[r] = c2 - c1;
            gen_s[r] = (t1 - t0) * 1e-6;
            sim_s[r] = (t2 - t1) * 1e-6;
            events = res->events;
            transfers = res->transfers;
            classes = res->link_classes;
            skipped = res->steady_periods;
            ops = sim_op_count(&res->classes[0], s->classes[0]);
            sim_result_free(res);
            ir_schedule_free(s);
            strat_info_clear(&info);
        }
        qsort(gen_s, (size_t)runs, sizeof(double), cmp_double);
        qsort(sim_s, (size_t)runs, sizeof(double), cmp_double);
        qsort(cpu_s, (size_t)runs, sizeof(double), cmp_double);
        qsort(sim_cpu_s, (size_t)runs, sizeof(double), cmp_double);
        double g = gen_s[runs / 2], s = sim_s[runs / 2], cpu = cpu_s[runs / 2];
        char target[32] = "       -";
        if (c->target_s > 0)
            snprintf(target, sizeof target, "%5.0f ms %s", c->target_s * 1e3,
                     cpu <= c->target_s ? "met" : "MISSED");
        printf("%-58s %7.2f ms %7.2f ms %7.2f ms %6d %8" G_GUINT64_FORMAT " %9" G_GUINT64_FORMAT
               " %7d %12.3g %7" G_GUINT64_FORMAT " %s\n",
               c->label, g * 1e3, s * 1e3, cpu * 1e3, ops, events, transfers, classes,
               (double)events / sim_cpu_s[runs / 2], skipped, target);
        if (last) {
            double mb = peak_resident_mb();
            printf("%-58s %7.0f MB %44s %5.0f MB %s\n", "  peak resident set of the process", mb,
                   "", 100.0, mb <= 100 ? "met" : "MISSED");
        }
        g_free(gen_s);
        g_free(sim_s);
        g_free(cpu_s);
        g_free(sim_cpu_s);
        g_free(mpath);
        g_free(tpath);
        net_topo_free(net);
        model_free(model);
        hw_topology_free(topo);
    }
    if (memory_case && !memory_only) {
        fflush(stdout);
        char *self[] = {argv[0], "memory", NULL};
        GError *error = NULL;
        gint status = 0;
        if (!g_spawn_sync(NULL, self, NULL,
                          G_SPAWN_CHILD_INHERITS_STDOUT | G_SPAWN_CHILD_INHERITS_STDERR, NULL, NULL,
                          NULL, NULL, &status, &error) ||
            !g_spawn_check_wait_status(status, &error)) {
            fprintf(stderr, "bench_sim: the memory case: %s\n", error->message);
            return 1;
        }
    }
    return 0;
}
