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

#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    char *model, *strategy, *bandwidth, *calibration, *workdir, *mode, *plot_dir, *formats;
    int nodes, gpus_per_node, iters, warmup, timeout_s;
    int tp, pp, micro_batches; /* passed to the simulation when given (0: not given) */
    gboolean json, go_on, keep;
    double max_minutes;        /* refuse a real run estimated longer, unless go_on */
} ValidateCli;

/* Progress on stderr, so that a run of minutes never looks hung: on a terminal one line per phase
 * rewritten every second with the elapsed time (a ticker thread), otherwise one line when a
 * phase starts and one when it ends. Cost: one wake-up per second while a phase runs. */
typedef struct {
    GMutex lock;
    GCond stop;
    bool done;
    const char *what;
    gint64 start_us;
    GThread *ticker;
} Progress;

static gpointer progress_tick(gpointer data)
{
    Progress *p = data;
    g_mutex_lock(&p->lock);
    while (!p->done) {
        gint64 until = g_get_monotonic_time() + G_TIME_SPAN_SECOND;
        if (!g_cond_wait_until(&p->stop, &p->lock, until) && !p->done) {
            fprintf(stderr, "\rvalidate: %s ... %.0f s", p->what,
                    (g_get_monotonic_time() - p->start_us) / 1e6);
            fflush(stderr);
        }
    }
    g_mutex_unlock(&p->lock);
    return NULL;
}

static void progress_begin(Progress *p, const char *what)
{
    memset(p, 0, sizeof *p);
    g_mutex_init(&p->lock);
    g_cond_init(&p->stop);
    p->what = what;
    p->start_us = g_get_monotonic_time();
    fprintf(stderr, isatty(STDERR_FILENO) ? "validate: %s ..." : "validate: %s ...\n", what);
    fflush(stderr);
    if (isatty(STDERR_FILENO))
        p->ticker = g_thread_new("progress", progress_tick, p);
}

static void progress_end(Progress *p, bool ok)
{
    g_mutex_lock(&p->lock);
    p->done = true;
    g_cond_signal(&p->stop);
    g_mutex_unlock(&p->lock);
    if (p->ticker)
        g_thread_join(p->ticker);
    double s = (g_get_monotonic_time() - p->start_us) / 1e6;
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "\rvalidate: %s ... %s in %.1f s\n", p->what, ok ? "done" : "failed", s);
    else
        fprintf(stderr, "validate: %s %s in %.1f s\n", p->what, ok ? "done" : "failed", s);
    g_mutex_clear(&p->lock);
    g_cond_clear(&p->stop);
}

/* Removes a work folder that validate made (files and folders below it). */
static void remove_tree(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    for (const char *f; d && (f = g_dir_read_name(d));) {
        char *child = g_build_filename(path, f, NULL);
        if (g_file_test(child, G_FILE_TEST_IS_DIR) && !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
            remove_tree(child);
        else
            g_unlink(child);
        g_free(child);
    }
    if (d)
        g_dir_close(d);
    g_rmdir(path);
}

/* The steps run for minutes and tools/cluster holds network namespaces: if fsdpsim is killed, its
 * child gets SIGTERM too, and the cluster script cleans up instead of running on as an orphan. */
static void die_with_parent(gpointer data)
{
    (void)data;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
}

/* Runs argv, showing progress; on failure the error carries the command's last lines of output.
 * stdout_text: where the command's output goes (g_free it), or NULL to drop it. */
static bool run_step(const char *what, char **argv, char **stdout_text, GError **error)
{
    char *out = NULL, *err = NULL;
    Progress progress;
    progress_begin(&progress, what);
    int status = 0;
    GError *e = NULL;
    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, die_with_parent, NULL, &out, &err,
                      &status, &e)) {
        progress_end(&progress, false);
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
    progress_end(&progress, ok);
    if (ok && stdout_text)
        *stdout_text = g_steal_pointer(&out);
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

/* The real run takes about (warm-up + iterations) simulated steps on the calibrated cluster, plus
 * a few seconds to start the ranks: say so before launching it, and stop above the limit, since
 * a run of half an hour on an emulated cluster looks hung and is rarely what was meant. */
static bool estimate_ok(const ValidateCli *v, const char *sim_json, GError **error)
{
    cJSON *doc = sim_json ? cJSON_Parse(sim_json) : NULL;
    const cJSON *step = doc ? cJSON_GetObjectItemCaseSensitive(doc, "step_time_s") : NULL;
    if (!cJSON_IsNumber(step)) {
        cJSON_Delete(doc);
        return true; /* nothing to estimate from: the run itself will tell */
    }
    double step_s = step->valuedouble, total_s = (v->warmup + v->iters) * step_s;
    cJSON_Delete(doc);
    g_autofree char *total = total_s < 120 ? g_strdup_printf("%.0f s", total_s)
                                           : g_strdup_printf("%.0f min", total_s / 60);
    fprintf(stderr,
            "validate: the real run should take about %s (%d warm-up + %d timed iterations of "
            "%.3g s simulated on the calibrated cluster)\n",
            total, v->warmup, v->iters, step_s);
    if (total_s <= v->max_minutes * 60 || v->go_on)
        return true;
    return cfg_input_error(error,
                           "the real run would take about %s (%d x %.3g s per step), beyond "
                           "the %g-minute limit (--max-minutes): the emulated cluster moves "
                           "every byte for real; expected a smaller model, a shorter sequence "
                           "(--seq-len is taken from the model file: use a smaller one) or "
                           "micro-batch, fewer --iters, or --go-on to run it anyway",
                           total, v->warmup + v->iters, step_s, v->max_minutes);
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
        ok = run_step("calibrating the emulated cluster", argv, NULL, error);
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
        char *sim_json = NULL;
        ok = run_step("simulating the job on the calibrated cluster", (char **)argv->pdata,
                      &sim_json, error);
        g_ptr_array_free(argv, TRUE);
        ok = ok && estimate_ok(v, sim_json, error);
        g_free(sim_json);
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
        g_autofree char *what = g_strdup_printf("running %d warm-up and %d timed iterations for "
                                                "real", v->warmup, v->iters);
        ok = run_step(what, argv, NULL, error);
    }
    CmpResult r = {0};
    ok = ok && cmp_load(real_trace, sim_trace, &r, error);
    if (ok && v->json) {
        char *text = cmp_to_json(&r);
        /* the comparison object, plus what was run */
        /* workdir: null when the temporary folder is removed at the end */
        char *where = v->workdir || v->keep ? g_strdup_printf("\"%s\"", workdir) : g_strdup("null");
        printf("{\"strategy\":\"%s\",\"nodes\":%d,\"gpus_per_node\":%d,\"tp\":%d,\"pp\":%d,"
               "\"bandwidth\":\"%s\",\"workdir\":%s,%s\n",
               v->strategy ? v->strategy : "fsdp", v->nodes, v->gpus_per_node, MAX(v->tp, 1),
               MAX(v->pp, 1), bw, where, text + 1);
        g_free(where);
        g_free(text);
    } else if (ok) {
        printf("validate: %s, %s on %d emulated nodes x %d ranks, links %s (files %s%s)\n\n",
               v->model ? v->model : model_default, v->strategy ? v->strategy : "fsdp", v->nodes,
               v->gpus_per_node, bw, v->workdir || v->keep ? "in " : "removed; --keep keeps them",
               v->workdir || v->keep ? workdir : "");
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
    if (!v->workdir && !v->keep) {
        remove_tree(workdir); /* a temporary folder of ours: gone, whatever happened */
    } else if (!v->workdir) {
        fprintf(stderr, "validate: files kept in %s\n", workdir);
    }
    g_free(workdir);
    if (ok)
        return 0;
    return (*error)->code == FSD_ERROR_INPUT ? 2 : 1;
}

int cli_validate(int argc, char **argv)
{
    ValidateCli v = {.nodes = 2, .gpus_per_node = 2, .iters = 5, .warmup = 2, .timeout_s = 600,
                     .max_minutes = 10};
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
        {"max-minutes", 0, 0, G_OPTION_ARG_DOUBLE, &v.max_minutes,
         "Stop before the real run when it is estimated to take longer [10]", "MIN"},
        {"go-on", 0, 0, G_OPTION_ARG_NONE, &v.go_on,
         "Run for real even beyond --max-minutes", NULL},
        {"keep", 0, 0, G_OPTION_ARG_NONE, &v.keep,
         "Keep the temporary work folder (schedule, traces) and say where; --workdir is always "
         "kept",
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
    } else if (!(v.max_minutes > 0 && v.max_minutes <= 10000)) {
        cfg_input_error(&error, "option --max-minutes: expected a number of minutes in (0, 10000], "
                                "got %g", v.max_minutes);
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
