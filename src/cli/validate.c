/* fsdpsim validate: the whole loop on an emulated cluster (tools/cluster, run as root): calibrate
 * with microbenchmarks (or reuse a calibration), simulate the job on the calibrated topology, run
 * the same schedule for real with fsdprun, and compare (src/compare). The simulator is told to use
 * NCCL's ring algorithm with the Simple protocol, which is what fsdprun's collectives run. */
#include "cli.h"
#include "figures.h"
#include "../compare/compare.h"
#include "../model/model.h"
#include "../strategy/strategy.h"
#include "../util/cfg.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

typedef struct {
    char *model, *strategy, *bandwidth, *calibration, *workdir, *mode, *plot_dir, *formats;
    int nodes, gpus_per_node, iters, warmup, timeout_s;
    int tp, pp, micro_batches; /* passed to the simulation when given (0: not given) */
    gboolean json;
} ValidateCli;

/* The steps run for minutes and tools/cluster holds network namespaces: if fsdpsim is killed, its
 * child gets SIGTERM too, and the cluster script cleans up instead of running on as an orphan. */
static void die_with_parent(gpointer data)
{
    (void)data;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
}

/* Runs argv; on failure the error carries the command's last lines of output. */
static bool run_step(const char *what, char **argv, bool quiet, GError **error)
{
    char *out = NULL, *err = NULL;
    int status = 0;
    GError *e = NULL;
    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, die_with_parent, NULL, quiet ? &out : NULL, &err,
                      &status, &e)) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_FAILED, "%s: %s", what, e->message);
        g_error_free(e);
        return false;
    }
    bool ok = g_spawn_check_wait_status(status, NULL);
    if (!ok && WIFEXITED(status) && WEXITSTATUS(status) == 2 && err &&
        g_str_has_prefix(err, "fsdpsim: ")) {
        /* the child refused its input: that is the user's input, so pass its message on as it is */
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT, "%s", g_strchomp(err + strlen("fsdpsim: ")));
    } else if (!ok) {
        size_t len = err ? strlen(err) : 0;
        const char *tail = len > 1500 ? err + len - 1500 : (err ? err : "");
        g_set_error(error, FSD_ERROR, FSD_ERROR_FAILED, "%s failed (%s):\n%s", what, argv[0], tail);
    }
    g_free(out), g_free(err);
    return ok;
}

static char *sibling(const char *name)
{
    char *self = g_file_read_link("/proc/self/exe", NULL);
    char *dir = self ? g_path_get_dirname(self) : g_strdup(".");
    char *path = g_build_filename(dir, name, NULL);
    g_free(self), g_free(dir);
    return path;
}

/* tools/cluster's rates, as tc writes them: checked here too, before any work folder exists
 * (a bad rate failed inside the calibration: exit 1, and the folder stayed behind). */
static bool bandwidth_ok(const char *rate)
{
    return g_regex_match_simple("^[0-9]+(\\.[0-9]+)?(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$", rate,
                                0, 0) &&
           g_ascii_strtod(rate, NULL) > 0;
}

static int validate(ValidateCli *v, GError **error)
{
    if (v->bandwidth && !bandwidth_ok(v->bandwidth))
        return cfg_input_error(error,
                               "option --bandwidth: expected a tc rate such as 300mbit or 1gbit "
                               "(a number, then bit, kbit, mbit, gbit, bps, kbps, mbps or gbps), "
                               "got \"%s\"",
                               v->bandwidth),
               2;
    if (v->mode && strcmp(v->mode, "emulate") != 0 && strcmp(v->mode, "gemm") != 0)
        return cfg_input_error(error, "option --mode: expected emulate or gemm, got \"%s\"",
                               v->mode),
               2;
    g_autofree char *fsdpsim = sibling("fsdpsim");
    g_autofree char *fsdprun = sibling("fsdprun");
    g_autofree char *cluster = cli_default_path("tools/cluster");
    g_autofree char *model_default = cli_default_path("models/gpt2.json");
    if (!g_file_test(fsdprun, G_FILE_TEST_IS_EXECUTABLE))
        return cfg_input_error(
                   error,
                   "fsdprun: expected it beside fsdpsim (%s), got nothing: build with Open MPI "
                   "and OpenBLAS (meson -Dfsdprun=enabled)",
                   fsdprun)
                   ? 0
                   : 2;
    if (!g_file_test(cluster, G_FILE_TEST_IS_EXECUTABLE))
        return cfg_input_error(
                   error, "tools/cluster: expected the emulated-cluster script, got nothing at %s",
                   cluster)
                   ? 0
                   : 2;
    /* Check what can be checked before the calibration, which takes minutes. */
    if (v->model) { /* a shipped name (-m gpt2) becomes its path for fsdpsim and fsdprun */
        char *path = NULL;
        if (!cli_data_file("model", "models", v->model, &path, error))
            return 2;
        g_free(v->model);
        v->model = path;
    }
    const char *strategy = v->strategy ? v->strategy : "fsdp";
    ShardingStrategy sharding;
    if (strcmp(strategy, "ddp") && strcmp(strategy, "fsdp") &&
        !strat_sharding_parse(strategy, &sharding))
        return cfg_input_error(
                   error,
                   "option --strategy: expected ddp, fsdp, full, grad_op, no_shard, hybrid or "
                   "hybrid_zero2, got \"%s\"",
                   strategy)
                   ? 0
                   : 2;
    Model *checked = model_load(v->model ? v->model : model_default,
                                &(ModelOverrides){.flash_attention = -1}, error);
    if (!checked)
        return 2;
    model_free(checked);
    char *workdir =
        v->workdir ? g_strdup(v->workdir) : g_dir_make_tmp("fsdpsim-validate-XXXXXX", NULL);
    if (!workdir || g_mkdir_with_parents(workdir, 0755) != 0) {
        cfg_input_error(error, "option --workdir: cannot create %s",
                        workdir ? workdir : "a temporary directory");
        g_free(workdir);
        return 2;
    }
    g_autofree char *topo = v->calibration ? g_strdup(v->calibration)
                                           : g_build_filename(workdir, "topology.json", NULL);
    g_autofree char *sched = g_build_filename(workdir, "schedule.json", NULL);
    g_autofree char *sim_trace = g_build_filename(workdir, "sim-trace.json", NULL);
    g_autofree char *real_trace = g_build_filename(workdir, "real-trace.json", NULL);
    g_autofree char *nodes = g_strdup_printf("%d", v->nodes),
                    *ranks = g_strdup_printf("%d", v->gpus_per_node);
    g_autofree char *iters = g_strdup_printf("%d", v->iters),
                    *warmup = g_strdup_printf("%d", v->warmup);
    g_autofree char *timeout = g_strdup_printf("%d", v->timeout_s),
                    *run_timeout = g_strdup_printf("%d", MAX(10, v->timeout_s / 4));
    const char *bw = v->bandwidth ? v->bandwidth : "300mbit";
    bool ok = true;
    if (!g_file_test(topo, G_FILE_TEST_EXISTS)) {
        char *argv[] = {cluster, "--nodes",     nodes,      "--ranks-per-node",
                        ranks,   "--bandwidth", (char *)bw, "--timeout",
                        timeout, "--",          fsdprun,    "--calibrate",
                        topo,    NULL};
        ok = run_step("calibration", argv, true, error);
    }
    if (ok) {
        char *fixed[] = {fsdpsim,
                         "--model",
                         v->model ? v->model : model_default,
                         "--strategy",
                         v->strategy ? v->strategy : "fsdp",
                         "--nodes",
                         nodes,
                         "--gpus-per-node",
                         ranks,
                         "--topology",
                         topo,
                         "--nccl-algo",
                         "ring",
                         "--nccl-proto",
                         "Simple",
                         "--emit-schedule",
                         sched,
                         "--trace",
                         sim_trace,
                         "--json"};
        GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
        for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++)
            g_ptr_array_add(argv, g_strdup(fixed[i]));
        /* tensor and pipeline parallelism: the schedule carries them to fsdprun */
        const struct {
            const char *option;
            int value;
        } parallel[] = {{"--tp", v->tp}, {"--pp", v->pp}, {"--micro-batches", v->micro_batches}};
        for (size_t i = 0; i < G_N_ELEMENTS(parallel); i++) {
            if (parallel[i].value > 0) {
                g_ptr_array_add(argv, g_strdup(parallel[i].option));
                g_ptr_array_add(argv, g_strdup_printf("%d", parallel[i].value));
            }
        }
        g_ptr_array_add(argv, NULL);
        ok = run_step("simulation", (char **)argv->pdata, true, error);
        g_ptr_array_free(argv, TRUE);
    }
    if (ok) {
        char *argv[] = {cluster,
                        "--nodes",
                        nodes,
                        "--ranks-per-node",
                        ranks,
                        "--bandwidth",
                        (char *)bw,
                        "--timeout",
                        timeout,
                        "--",
                        fsdprun,
                        "--schedule",
                        sched,
                        "--topology",
                        topo,
                        "--iters",
                        iters,
                        "--warmup",
                        warmup,
                        "--mode",
                        v->mode ? v->mode : "emulate",
                        "--timeout",
                        run_timeout,
                        "--trace",
                        real_trace,
                        NULL};
        ok = run_step("real run", argv, true, error);
    }
    CmpResult r = {0};
    ok = ok && cmp_load(real_trace, sim_trace, &r, error);
    if (ok && v->json) {
        char *text = cmp_to_json(&r);
        /* the comparison object, plus what was run */
        printf("{\"strategy\":\"%s\",\"nodes\":%d,\"gpus_per_node\":%d,\"tp\":%d,\"pp\":%d,"
               "\"bandwidth\":\"%s\",\"workdir\":\"%s\",%s\n",
               v->strategy ? v->strategy : "fsdp", v->nodes, v->gpus_per_node, MAX(v->tp, 1),
               MAX(v->pp, 1), bw, workdir, text + 1);
        g_free(text);
    } else if (ok) {
        printf("validate: %s, %s on %d emulated nodes x %d ranks, links %s (files in %s)\n\n",
               v->model ? v->model : model_default, v->strategy ? v->strategy : "fsdp", v->nodes,
               v->gpus_per_node, bw, workdir);
        cmp_print_table(&r, real_trace, sim_trace, stdout);
    }
    if (ok && v->plot_dir) {
        fflush(stdout);
        char *model = g_path_get_basename(v->model ? v->model : model_default);
        char *title =
            g_strdup_printf("%s, %s, %d emulated nodes x %d ranks, links %s", model,
                            v->strategy ? v->strategy : "fsdp", v->nodes, v->gpus_per_node, bw);
        ok = cli_compare_plot(&r, v->plot_dir, v->formats, title, real_trace, sim_trace, error);
        g_free(model), g_free(title);
    }
    cmp_clear(&r);
    g_free(workdir);
    if (ok)
        return 0;
    return (*error)->code == FSD_ERROR_INPUT ? 2 : 1;
}

int cli_validate(int argc, char **argv)
{
    ValidateCli v = {.nodes = 2, .gpus_per_node = 2, .iters = 5, .warmup = 2, .timeout_s = 600};
    GOptionEntry entries[] = {
        {"model", 'm', 0, G_OPTION_ARG_FILENAME, &v.model,
         "Model, a file or a shipped name (small: every rank really moves its bytes) "
         "[models/gpt2.json]", "FILE|NAME"},
        {"strategy", 's', 0, G_OPTION_ARG_STRING, &v.strategy,
         "As for fsdpsim: ddp, full, grad_op, hybrid, ... [fsdp]", "S"},
        {"nodes", 'n', 0, G_OPTION_ARG_INT, &v.nodes, "Emulated nodes [2]", "N"},
        {"gpus-per-node", 'g', 0, G_OPTION_ARG_INT, &v.gpus_per_node, "Ranks per emulated node [2]",
         "R"},
        {"bandwidth", 0, 0, G_OPTION_ARG_STRING, &v.bandwidth,
         "Node link rate as tc spells it [300mbit]", "RATE"},
        {"tp", 0, 0, G_OPTION_ARG_INT, &v.tp, "Tensor parallelism, as for fsdpsim [1]", "T"},
        {"pp", 0, 0, G_OPTION_ARG_INT, &v.pp, "Pipeline stages, as for fsdpsim [1]", "P"},
        {"micro-batches", 0, 0, G_OPTION_ARG_INT, &v.micro_batches,
         "Micro-batches per step, as for fsdpsim [4 x pp with --pp, else 1]", "M"},
        {"iters", 0, 0, G_OPTION_ARG_INT, &v.iters, "Measured iterations [5]", "K"},
        {"warmup", 0, 0, G_OPTION_ARG_INT, &v.warmup, "Iterations before timing [2]", "W"},
        {"mode", 0, 0, G_OPTION_ARG_STRING, &v.mode, "fsdprun compute: emulate or gemm [emulate]",
         "MODE"},
        {"calibration", 0, 0, G_OPTION_ARG_FILENAME, &v.calibration,
         "Topology from an earlier calibration; written there when absent", "FILE"},
        {"workdir", 0, 0, G_OPTION_ARG_FILENAME, &v.workdir,
         "Where the schedule and traces go [a new temporary directory]", "DIR"},
        {"timeout", 0, 0, G_OPTION_ARG_INT, &v.timeout_s,
         "Limit for each launch on the emulated cluster [600]", "SECONDS"},
        {"json", 0, 0, G_OPTION_ARG_NONE, &v.json, "Print one JSON object instead of the table",
         NULL},
        {"plot", 0, 0, G_OPTION_ARG_FILENAME, &v.plot_dir,
         "Write compare's figures (compare_timeline, compare_error) to DIR", "DIR"},
        {"plot-format", 0, 0, G_OPTION_ARG_STRING, &v.formats,
         "Image formats: png, svg, pdf, comma-separated [png,svg,pdf]", "LIST"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GError *error = NULL;
    int status;
    if (!cli_parse("- simulate and run a job on an emulated cluster, and compare",
                   "Needs root: the cluster is made of network namespaces (tools/cluster).", NULL,
                   entries, argc, argv, &error) ||
        !cli_figures_check(v.plot_dir, NULL, v.formats, &error)) {
        status = cli_report_error(error);
    } else if (v.nodes < 1 || v.nodes > 64 || v.gpus_per_node < 1 || v.gpus_per_node > 64) {
        cfg_input_error(&error, "option --%s: expected 1..64, got %d",
                        v.nodes < 1 || v.nodes > 64 ? "nodes" : "gpus-per-node",
                        v.nodes < 1 || v.nodes > 64 ? v.nodes : v.gpus_per_node);
        status = cli_report_error(error);
    } else if (v.tp < 0 || v.pp < 0 || v.micro_batches < 0) {
        cfg_input_error(&error, "option --%s: expected 1 or more, got %d",
                        v.tp < 0   ? "tp"
                        : v.pp < 0 ? "pp"
                                   : "micro-batches",
                        v.tp < 0   ? v.tp
                        : v.pp < 0 ? v.pp
                                   : v.micro_batches);
        status = cli_report_error(error);
    } else if (v.iters < 1 || v.iters > 1000 || v.warmup < 0 || v.warmup > 100 ||
               v.timeout_s < 10) {
        cfg_input_error(&error,
                        "option --%s: expected iters 1..1000, warmup 0..100, timeout >= 10, got %d",
                        v.iters < 1 || v.iters > 1000    ? "iters"
                        : v.warmup < 0 || v.warmup > 100 ? "warmup"
                                                         : "timeout",
                        v.iters < 1 || v.iters > 1000    ? v.iters
                        : v.warmup < 0 || v.warmup > 100 ? v.warmup
                                                         : v.timeout_s);
        status = cli_report_error(error);
    } else {
        status = validate(&v, &error);
        if (status != 0)
            status = cli_report_error(error);
    }
    g_free(v.model), g_free(v.strategy), g_free(v.bandwidth), g_free(v.calibration),
        g_free(v.workdir), g_free(v.mode), g_free(v.plot_dir), g_free(v.formats);
    return status;
}
