/* fsdpsim scale: a scaling study. Runs one simulation per (strategy, node count) and prints a
 * table, the CSV (--csv), figures (--plot DIR) or a report folder (--report DIR).
 *
 * Each point is this same binary run with --json, as a child process, up to one per core at a
 * time. That keeps the study independent of how simulate.c builds a run: any option the
 * simulation takes (--model, --topology, --micro-batch, and those of later branches) is passed
 * through unchanged to every point, and its errors come back as the simulation words them. */
#include "cli.h"
#include "../plot/plot.h"
#include "../util/cfg.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    char **argv;    /* the child's command line */
    char *out, *err;
    int wait_status;
    bool spawned;
} Point;

typedef struct {
    GMutex lock;
    int done, total;
    bool progress; /* stderr is a terminal */
} Progress;

typedef struct {
    Point *point;
    Progress *progress;
} Job;

static void run_point(gpointer data, gpointer user_data)
{
    Point *p = data;
    Progress *pr = user_data;
    p->spawned = g_spawn_sync(NULL, p->argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &p->out, &p->err,
                              &p->wait_status, NULL);
    g_mutex_lock(&pr->lock);
    pr->done++;
    if (pr->progress)
        fprintf(stderr, "\rfsdpsim scale: %d of %d simulations done", pr->done, pr->total);
    g_mutex_unlock(&pr->lock);
}

/* "1,2,4,8": ascending, distinct, positive */
static bool parse_nodes(const char *text, GArray *out, GError **error)
{
    char **parts = g_strsplit(text, ",", -1);
    bool ok = parts[0] != NULL;
    for (char **p = parts; *p && ok; p++) {
        char *end = NULL;
        gint64 v = g_ascii_strtoll(g_strstrip(*p), &end, 10);
        ok = **p && !*end && v >= 1 && v <= 1000000;
        int n = (int)v;
        if (ok && out->len && n <= g_array_index(out, int, out->len - 1))
            ok = false;
        if (ok)
            g_array_append_val(out, n);
    }
    g_strfreev(parts);
    if (!ok)
        cfg_input_error(error, "option --nodes: expected ascending node counts separated by commas (1,2,4,8), "
                               "got \"%s\"", text);
    return ok;
}

static bool parse_strategies(const char *text, GPtrArray *out, GError **error)
{
    char **parts = g_strsplit(text, ",", -1);
    bool ok = parts[0] != NULL;
    for (char **p = parts; *p && ok; p++) {
        char *s = g_strstrip(*p);
        ok = *s != '\0';
        for (guint i = 0; ok && i < out->len; i++)
            ok = strcmp(g_ptr_array_index(out, i), s) != 0;
        if (ok)
            g_ptr_array_add(out, g_strdup(s));
    }
    g_strfreev(parts);
    if (!ok)
        cfg_input_error(error, "option --strategy: expected distinct strategies separated by commas "
                               "(ddp,full,hybrid), got \"%s\"", text);
    return ok;
}

/* Options of the simulation that would break the study: each point must print --json only. */
static bool check_passthrough(int argc, char **argv, GError **error)
{
    static const char *refused[] = {"--json", "--trace", "--emit-schedule", "--schedule", "--version"};
    for (int i = 1; i < argc; i++)
        for (size_t k = 0; k < G_N_ELEMENTS(refused); k++) {
            size_t n = strlen(refused[k]);
            if (!strncmp(argv[i], refused[k], n) && (argv[i][n] == '\0' || argv[i][n] == '='))
                return cfg_input_error(error, "option %s: not available in a scaling study (it runs many "
                                              "simulations); run fsdpsim %s on one point instead", refused[k],
                                       refused[k]);
        }
    return true;
}

static void print_table(const PlotScale *sc, FILE *out)
{
    const cJSON *p0 = sc->points[0];
    bool tokens = cJSON_GetObjectItemCaseSensitive(p0, "tokens_per_s") != NULL;
    char *csv = plot_scale_csv(sc);
    char **rows = g_strsplit(csv, "\n", -1);
    fprintf(out, "fsdpsim scale: %s on %s, %d GPUs per node\n",
            cJSON_GetObjectItemCaseSensitive(p0, "model_name")->valuestring,
            cJSON_GetObjectItemCaseSensitive(p0, "topology")->valuestring,
            cJSON_GetObjectItemCaseSensitive(p0, "gpus_per_node")->valueint);
    fprintf(out, "%-14s %6s %6s %11s %14s %10s %6s %12s\n", "strategy", "nodes", "GPUs", "step time",
            tokens ? "tokens/s/GPU" : "samples/s/GPU", "efficiency", "MFU", "memory/GPU");
    for (char **r = rows + 1; *r && **r; r++) {
        /* the CSV's fields after the quoted model name (see plot_scale_csv) */
        char **f = g_strsplit(strrchr(*r, '"') + 2, ",", -1);
        char *step = report_seconds(g_ascii_strtod(f[4], NULL));
        char *mem = report_bytes(g_ascii_strtod(f[14], NULL));
        fprintf(out, "%-14s %6s %6s %11s %14.1f %9.1f%% %5.1f%% %12s%s\n", f[1], f[2], f[3], step,
                g_ascii_strtod(f[5], NULL), 100 * g_ascii_strtod(f[7], NULL), 100 * g_ascii_strtod(f[9], NULL), mem,
                !strcmp(f[16], "true") ? "  does not fit" : "");
        g_free(step);
        g_free(mem);
        g_strfreev(f);
    }
    g_strfreev(rows);
    g_free(csv);
}

static int run(const char *nodes_text, const char *strategies_text, int jobs, bool csv, const char *plot_dir,
               const char *report_dir, const char *formats_text, int argc, char **argv, GError **error)
{
    unsigned formats = PLOT_ALL;
    if (formats_text && !plot_formats_parse(formats_text, &formats))
        return cfg_input_error(error, "option --plot-format: expected a comma-separated list of png, svg, pdf "
                                      "(or all), got \"%s\"", formats_text), 2;
    if (jobs < 0 || jobs > 1024)
        return cfg_input_error(error, "option --jobs: expected 1..1024 (0: one per core), got %d", jobs), 2;
    if (!check_passthrough(argc, argv, error) || !cli_check_dir("plot", plot_dir, error) ||
        !cli_check_dir("report", report_dir, error))
        return 2;
    GArray *nodes = g_array_new(FALSE, FALSE, sizeof(int));
    GPtrArray *strategies = g_ptr_array_new_with_free_func(g_free);
    int status = 2;
    int n_points = 0;
    Point *points = NULL;
    cJSON **results = NULL;
    if (!parse_nodes(nodes_text, nodes, error) || !parse_strategies(strategies_text, strategies, error))
        goto out;
    n_points = (int)(nodes->len * strategies->len);
    if (n_points > 100000) {
        cfg_input_error(error, "options --nodes and --strategy: %d simulations; expected at most 100000", n_points);
        goto out;
    }
    char *self = g_file_read_link("/proc/self/exe", NULL);
    points = g_new0(Point, n_points);
    for (int i = 0; i < n_points; i++) {
        GPtrArray *a = g_ptr_array_new();
        g_ptr_array_add(a, g_strdup(self ? self : argv[0]));
        g_ptr_array_add(a, g_strdup("--json"));
        g_ptr_array_add(a, g_strdup_printf("--nodes=%d", g_array_index(nodes, int, i % nodes->len)));
        g_ptr_array_add(a, g_strdup_printf("--strategy=%s", (char *)g_ptr_array_index(strategies, i / nodes->len)));
        for (int k = 1; k < argc; k++)
            g_ptr_array_add(a, g_strdup(argv[k]));
        g_ptr_array_add(a, NULL);
        points[i].argv = (char **)g_ptr_array_free(a, FALSE);
    }
    g_free(self);
    Progress progress = {.total = n_points, .progress = isatty(STDERR_FILENO) && n_points > 1};
    g_mutex_init(&progress.lock);
    int threads = jobs > 0 ? jobs : (int)g_get_num_processors();
    GThreadPool *pool = g_thread_pool_new(run_point, &progress, threads < n_points ? threads : n_points, TRUE, NULL);
    for (int i = 0; i < n_points; i++)
        g_thread_pool_push(pool, &points[i], NULL);
    g_thread_pool_free(pool, FALSE, TRUE); /* waits for every point */
    g_mutex_clear(&progress.lock);
    if (progress.progress)
        fprintf(stderr, "\r\033[K");
    /* the first failing point, in order, so that the message does not depend on timing */
    results = g_new0(cJSON *, n_points);
    for (int i = 0; i < n_points; i++) {
        Point *p = &points[i];
        if (!p->spawned) {
            g_set_error(error, FSD_ERROR, FSD_ERROR_FAILED, "cannot run %s", p->argv[0]);
            goto out;
        }
        if (!WIFEXITED(p->wait_status) || WEXITSTATUS(p->wait_status) != 0) {
            /* one line: the simulation's own message, and which point it was */
            char *msg = g_strstrip(g_strdup(p->err && *p->err ? p->err : "fsdpsim: the simulation failed"));
            fprintf(stderr, "%s (in the point --strategy %s --nodes %d)\n", msg,
                    (char *)g_ptr_array_index(strategies, i / nodes->len), g_array_index(nodes, int, i % nodes->len));
            g_free(msg);
            status = WIFEXITED(p->wait_status) && WEXITSTATUS(p->wait_status) == 2 ? 2 : 1;
            goto out;
        }
        results[i] = cJSON_Parse(p->out);
        if (!results[i] || !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(results[i], "memory"))) {
            g_set_error(error, FSD_ERROR, FSD_ERROR_FAILED, "the simulation of point %d printed no JSON result", i);
            goto out;
        }
    }
    /* labels as the simulation names the strategy (full -> full_shard) */
    const char **labels = g_new(const char *, strategies->len);
    for (guint s = 0; s < strategies->len; s++)
        labels[s] = cJSON_GetObjectItemCaseSensitive(results[s * nodes->len], "strategy")->valuestring;
    GString *command = g_string_new("fsdpsim scale");
    g_string_append_printf(command, " --nodes %s --strategy %s", nodes_text, strategies_text);
    for (int k = 1; k < argc; k++)
        g_string_append_printf(command, " %s", argv[k]);
    PlotScale sc = {labels, (int)strategies->len, (int *)nodes->data, (int)nodes->len, results, command->str};
    if (csv) {
        char *text = plot_scale_csv(&sc);
        fputs(text, stdout);
        g_free(text);
    } else {
        print_table(&sc, stdout);
    }
    fflush(stdout);
    bool ok = true;
    if (plot_dir) {
        PlotSet *set = plot_set_new("plot", plot_dir, formats, error);
        ok = set && plot_scale_figures(set, &sc, error);
        plot_set_free(set);
    }
    ok = ok && (!report_dir || plot_report_scale(report_dir, formats, &sc, error));
    g_string_free(command, TRUE);
    g_free(labels);
    status = ok ? 0 : 1;
out:
    for (int i = 0; i < n_points; i++) {
        g_strfreev(points[i].argv);
        g_free(points[i].out);
        g_free(points[i].err);
        if (results)
            cJSON_Delete(results[i]);
    }
    g_free(points);
    g_free(results);
    g_array_free(nodes, TRUE);
    g_ptr_array_free(strategies, TRUE);
    return status;
}

int cli_scale(int argc, char **argv)
{
    char *nodes = NULL, *strategies = NULL, *plot_dir = NULL, *report_dir = NULL, *formats = NULL;
    gboolean csv = FALSE;
    int jobs = 0;
    GOptionEntry entries[] = {
        {"nodes", 'n', 0, G_OPTION_ARG_STRING, &nodes, "Node counts, ascending, comma-separated [1,2,4,8,16,32,64]", "LIST"},
        {"strategy", 's', 0, G_OPTION_ARG_STRING, &strategies, "Strategies as fsdpsim --strategy takes them, comma-separated [ddp,full,hybrid]", "LIST"},
        {"csv", 0, 0, G_OPTION_ARG_NONE, &csv, "Print the CSV (one row per strategy and node count) instead of the table", NULL},
        {"plot", 0, 0, G_OPTION_ARG_FILENAME, &plot_dir, "Write figures (throughput, efficiency, breakdown, memory) with their data and gnuplot scripts to DIR", "DIR"},
        {"plot-format", 0, 0, G_OPTION_ARG_STRING, &formats, "Image formats: png, svg, pdf, comma-separated [png,svg,pdf]", "LIST"},
        {"report", 0, 0, G_OPTION_ARG_FILENAME, &report_dir, "Write a report folder: figures, CSV, JSON and a README.md showing them", "DIR"},
        {"jobs", 'j', 0, G_OPTION_ARG_INT, &jobs, "Simulations run at once [one per core]", "N"},
        {NULL, 0, 0, 0, NULL, NULL, NULL}};
    GOptionContext *ctx = g_option_context_new("[SIMULATION OPTIONS] - a scaling study over node counts and strategies");
    g_option_context_set_summary(ctx,
        "Simulates every strategy at every node count and compares them: throughput per GPU, scaling\n"
        "efficiency, where the step time goes, and memory per GPU against the capacity.\n"
        "Any other option is a simulation option (see fsdpsim --help) and applies to every point.\n\n"
        "Example:\n  fsdpsim scale --model models/gpt.json --nodes 1,2,4,8,16,32,64 --strategy ddp,full,hybrid --report gpt-scaling");
    g_option_context_set_description(ctx, "Exit status: 0 success, 1 failure, 2 bad input.\nDefaults in brackets.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_ignore_unknown_options(ctx, TRUE);
    GError *error = NULL;
    int status;
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        g_autofree char *text = cli_option_message(error, entries, argv[0]);
        fprintf(stderr, "fsdpsim: %s\n", text);
        g_error_free(error);
        status = 2;
    } else {
        status = run(nodes ? nodes : "1,2,4,8,16,32,64", strategies ? strategies : "ddp,full,hybrid", jobs, csv,
                     plot_dir, report_dir, formats, argc, argv, &error);
        if (error)
            status = cli_report_error(error);
    }
    g_option_context_free(ctx);
    g_free(nodes), g_free(strategies), g_free(plot_dir), g_free(report_dir), g_free(formats);
    return status;
}
