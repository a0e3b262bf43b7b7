/* fsdpsim search: the best layout and knobs for a model on a machine, by simulation (issue 14).
 *
 * Every point is simulated in this process (simulate.h), with the model and topology files
 * loaded once: no process per point. The space, the constraints, the objectives and the records
 * are src/search's; this file parses the command line, walks the space by a method (exhaustive,
 * random, asha), writes the JSON Lines file as it goes and prints the summary. */
#include "cli.h"
#include "search_launch.h"
#include "simulate.h"
#include "../plot/plot.h"
#include "../search/search.h"
#include "../util/cfg.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char **vary, **constraints;
    char *space_file, *method, *objective, *tokens, *global_batch, *pareto, *out, *csv, *shard;
    char *plot, *plot_format, *emit_jobs, *ray_tune;
    unsigned formats;
    gboolean resume, merge;
    int samples, seed, top, reduction, cores_per_node;
} SearchCli;

typedef struct {
    CliSimCache *cache;
    double tokens; /* the search's --tokens: each simulation's time to train them */
} EvalCtx;

static void *parse_point(void *data, int argc, char **argv, GError **error)
{
    (void)data;
    char **copy = g_new0(char *, argc + 1); /* NULL-terminated, as GOption reads it */
    memcpy(copy, argv, sizeof(char *) * (size_t)argc);
    CliSimOptions *o = cli_sim_options_parse(argc, copy, error);
    g_free(copy);
    return o;
}

static cJSON *eval_point(void *data, void *parsed, SearchFidelity fid, int grad_accum,
                         GError **error)
{
    EvalCtx *ctx = data;
    cJSON *result = NULL;
    return cli_sim_run(ctx->cache, parsed, fid == SEARCH_FID_BOUND ? CLI_SIM_BOUND : CLI_SIM_FULL,
                       grad_accum, ctx->tokens, &result, error)
               ? result
               : NULL;
}

static void release_point(void *parsed)
{
    cli_sim_options_free(parsed);
}

static const SearchEvaluator evaluator = {parse_point, eval_point, release_point};

static bool parse_only(EvalCtx *ctx, GPtrArray *argv, GError **error)
{
    void *o = parse_point(ctx, (int)argv->len, (char **)argv->pdata, error);
    release_point(o);
    return o != NULL;
}

/* "3e11", "300G" (decimal: 300 x 10^9 tokens), "2T" */
static bool parse_tokens(const char *text, double *out)
{
    char *end = NULL;
    double v = g_ascii_strtod(text, &end);
    double unit = !*end                                    ? 1
                  : !strcmp(end, "K")                      ? 1e3
                  : !strcmp(end, "M")                      ? 1e6
                  : !strcmp(end, "G") || !strcmp(end, "B") ? 1e9
                  : !strcmp(end, "T")                      ? 1e12
                                                           : 0;
    *out = v * unit;
    return end != text && unit > 0 && *out >= 1 && isfinite(*out);
}

/* the value of a simulation option among the fixed ones ("--model X", "--model=X", "-m X") */
static const char *fixed_value(GPtrArray *fixed, const char *name, char short_name)
{
    char *eq = g_strdup_printf("--%s=", name), *bare = g_strdup_printf("--%s", name);
    const char *value = NULL;
    for (guint i = 0; i < fixed->len; i++) {
        const char *a = g_ptr_array_index(fixed, i);
        if (g_str_has_prefix(a, eq))
            value = a + strlen(eq);
        else if ((!strcmp(a, bare) || (a[0] == '-' && a[1] == short_name && !a[2])) &&
                 i + 1 < fixed->len)
            value = g_ptr_array_index(fixed, i + 1);
    }
    g_free(eq), g_free(bare);
    return value;
}

static bool option_fixed(GPtrArray *fixed, const char *name)
{
    char *eq = g_strdup_printf("--%s=", name), *bare = g_strdup_printf("--%s", name);
    bool found = false;
    for (guint i = 0; i < fixed->len && !found; i++) {
        const char *a = g_ptr_array_index(fixed, i);
        found = g_str_has_prefix(a, eq) || !strcmp(a, bare);
    }
    g_free(eq), g_free(bare);
    return found;
}

static void add_hash(cJSON *prov, const char *key, const SearchSpace *space, const char *option,
                     const char *kind, const char *arg)
{
    for (guint i = 0; i < space->dims->len; i++)
        if (!strcmp(((SearchDim *)g_ptr_array_index(space->dims, i))->option, option)) {
            cJSON_AddStringToObject(prov, key, "varied");
            return;
        }
    char *text = NULL, *file = NULL;
    gsize len = 0;
    /* a shipped name (-m gpt2) as the simulation resolves it; an unknown one is its error */
    if (cli_data_file(option, kind, arg, &file, NULL) &&
        g_file_get_contents(file, &text, &len, NULL)) {
        char *sum = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)text, len);
        cJSON_AddStringToObject(prov, key, sum);
        g_free(sum);
    }
    g_free(text);
    g_free(file);
}

typedef struct {
    FILE *out;
    GHashTable *records;
    bool progress;
    gint64 start_us, last_us;
    uint64_t done, total, pruned;
    double best;
    SearchObjective objective;
} Walk;

static void walk_record(Walk *w, cJSON *rec)
{
    if (w->out) {
        char *line = search_record_line(rec);
        fprintf(w->out, "%s\n", line);
        fflush(w->out); /* a killed search loses at most the line being written */
        g_free(line);
    }
    double o = search_record_objective(rec);
    w->done++;
    w->pruned += !isfinite(o);
    w->best = MIN(w->best, o);
    g_hash_table_replace(w->records,
                         g_strdup(cJSON_GetObjectItemCaseSensitive(rec, "key")->valuestring), rec);
    gint64 now = g_get_monotonic_time();
    if (w->progress && (now - w->last_us > 200000 || w->done == w->total)) {
        double rate = w->done / MAX(1e-6, (now - w->start_us) / 1e6);
        fprintf(stderr,
                "\rfsdpsim search: %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT
                " done, %" G_GUINT64_FORMAT " pruned, best %.4g (%s), %.0f/s, ETA %.0f s   ",
                w->done, w->total, w->pruned, w->best, search_objective_name(w->objective), rate,
                (w->total - w->done) / MAX(rate, 1e-9));
        w->last_us = now;
    }
}

static gint by_bound_then_key(gconstpointer a, gconstpointer b)
{
    const SearchPending *pa = *(SearchPending *const *)a, *pb = *(SearchPending *const *)b;
    double la = search_pending_lower_bound(pa), lb = search_pending_lower_bound(pb);
    if (la != lb)
        return la < lb ? -1 : 1;
    return strcmp(search_pending_key(pa), search_pending_key(pb));
}

/* ASHA over fidelity: the bound of every point (rung 0), then full simulations in order of the
 * bound, in batches of 1/reduction of what remains, until the next bound is above the best
 * simulated objective. The bound is a true lower bound (search_bound.c), so nothing left out
 * could have won: the best equals the exhaustive search's, at a fraction of the simulations.
 * A point that passed rung 0 keeps its parsed options and its record for the simulation
 * (SearchPending): each point is parsed and bounded once. */
static void run_asha(const SearchContext *ctx, GArray *todo, int reduction, Walk *w)
{
    GPtrArray *bounded = g_ptr_array_new();
    for (guint i = 0; i < todo->len; i++) {
        SearchPending *p = NULL;
        cJSON *rec = search_evaluate_bound(ctx, g_array_index(todo, uint64_t, i), &p);
        if (rec)
            walk_record(w, rec);
        else
            g_ptr_array_add(bounded, p);
    }
    /* by bound, then key (a total order: keys are unique), the same whatever the space's
     * order; O(n log n) (an insertion sort was O(n^2): ~10^9 comparisons at 10^5 points) */
    g_ptr_array_sort(bounded, by_bound_then_key);
    guint next = 0;
    double best = INFINITY;
    while (next < bounded->len) {
        guint batch = MAX(1, (bounded->len - next + (guint)reduction - 1) / (guint)reduction);
        for (guint k = 0; k < batch && next < bounded->len; k++, next++) {
            SearchPending *p = g_ptr_array_index(bounded, next);
            if (search_pending_lower_bound(p) > best)
                goto rest;
            cJSON *rec = search_pending_simulate(ctx, p);
            best = MIN(best, search_record_objective(rec));
            walk_record(w, rec);
        }
    }
rest:
    for (; next < bounded->len; next++)
        walk_record(w, search_pending_drop(ctx, g_ptr_array_index(bounded, next),
                                           "lower bound above the best"));
    g_ptr_array_free(bounded, TRUE);
}

/* what every search ends with: the table, then --csv and --plot */
static int finish(SearchCli *cli, const SearchSpec *spec, GHashTable *records, SearchObjective pa,
                  SearchObjective pb, GError **error)
{
    search_print_summary(spec, records, cli->top, pa, pb, stdout);
    if (cli->csv && !search_write_csv(spec, records, cli->csv, error))
        return 2;
    if (cli->plot && !search_plot(spec, records, pa, pb, cli->plot, cli->formats, error))
        return 1;
    return 0;
}

static int merge(SearchCli *cli, char **files, int n, const SearchSpec *spec, SearchObjective pa,
                 SearchObjective pb, GError **error)
{
    if (!cli->out)
        return cfg_input_error(error, "option --merge: expected --out FILE for the joined "
                                      "records"),
               2;
    GHashTable *records =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)cJSON_Delete);
    int status = 2;
    for (int i = 0; i < n; i++)
        if (!search_results_read(files[i], records, false, error))
            goto out;
    GPtrArray *sorted = search_results_sorted(records);
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < sorted->len; i++) {
        char *line = search_record_line(g_ptr_array_index(sorted, i));
        g_string_append_printf(s, "%s\n", line);
        g_free(line);
    }
    GError *io = NULL;
    if (!g_file_set_contents(cli->out, s->str, (gssize)s->len, &io)) {
        cfg_input_error(error, "option --out: cannot write %s: %s", cli->out, io->message);
        g_error_free(io);
    } else {
        status = finish(cli, spec, records, pa, pb, error);
    }
    g_string_free(s, TRUE);
    g_ptr_array_free(sorted, TRUE);
out:
    g_hash_table_destroy(records);
    return status;
}

/* Under mpirun or srun (search_launch.c): each rank takes points from a shared queue (or, for
 * asha, the interleaved shard I/N), writes FILE.I-of-N and a marker; rank 0 waits for the
 * markers, merges into FILE and prints. */
static int merge(SearchCli *cli, char **files, int n, const SearchSpec *spec, SearchObjective pa,
                 SearchObjective pb, GError **error);

/* rank 0 of a launched search: waits for every rank's marker, then merges their files */
static int launcher_merge(SearchCli *cli, int size, const char *job_id, const SearchSpec *spec,
                          SearchObjective pa, SearchObjective pb, GError **error)
{
    char **files = g_new0(char *, size + 1);
    for (int i = 0; i < size; i++) {
        files[i] = g_strdup_printf("%s.%d-of-%d", cli->out, i, size);
        cli_launch_wait_done(files[i], job_id);
    }
    int status = merge(cli, files, size, spec, pa, pb, error);
    g_strfreev(files);
    return status;
}

/* --ray-tune: the campaign's plan; one trial's step simulated from the simulation options given
 * (the trial's layout: --nodes, --gpus-per-node, --model, ...) unless step_s is given */
static int ray_tune_plan(SearchCli *cli, const SearchSpec *spec, int argc, char **argv,
                         GError **error)
{
    SearchTune tune;
    search_tune_default(&tune);
    if (!search_tune_parse(cli->ray_tune, &tune, error))
        return 2;
    EvalCtx ectx = {cli_sim_cache_new(), 0}; /* the step only: no time to train */
    GPtrArray *args = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(args, g_strdup("fsdpsim"));
    for (int i = 1; i < argc; i++)
        g_ptr_array_add(args, g_strdup(argv[i]));
    int status = 2;
    cJSON *full = NULL, *bound = NULL;
    void *parsed = parse_point(&ectx, (int)args->len, (char **)args->pdata, error);
    if (!parsed || !(bound = eval_point(&ectx, parsed, SEARCH_FID_BOUND, 0, error)))
        goto out;
    if (tune.step_s <= 0) {
        full = eval_point(&ectx, parsed, SEARCH_FID_FULL, 0, error);
        if (!full)
            goto out;
        tune.step_s = cJSON_GetObjectItemCaseSensitive(full, "step_time_s")->valuedouble;
        printf("one trial, simulated: %s on %.0f x %.0f GPUs, step %.3f s\n",
               cJSON_GetObjectItemCaseSensitive(full, "model_name")->valuestring,
               cJSON_GetObjectItemCaseSensitive(full, "nodes")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(full, "gpus_per_node")->valuedouble, tune.step_s);
    }
    int gpn = (int)cJSON_GetObjectItemCaseSensitive(bound, "machine_gpus_per_node")->valuedouble;
    SearchTunePlan plan;
    int cores = (int)cJSON_GetObjectItemCaseSensitive(bound, "machine_cores_per_node")->valuedouble;
    search_tune_plan(&tune, gpn, search_cores_per_node(spec, cores), &plan);
    search_tune_print(&tune, &plan, gpn, stdout);
    status = 0;
out:
    cJSON_Delete(bound), cJSON_Delete(full);
    release_point(parsed);
    g_ptr_array_free(args, TRUE);
    cli_sim_cache_free(ectx.cache);
    return status;
}

static int run(SearchCli *cli, int argc, char **argv, GError **error)
{
    SearchSpec spec;
    search_spec_default(&spec);
    spec.cores_per_node = cli->cores_per_node > 0 ? cli->cores_per_node : spec.cores_per_node;
    const char *method = cli->method ? cli->method : "exhaustive";
    if (strcmp(method, "exhaustive") && strcmp(method, "random") && strcmp(method, "asha"))
        return cfg_input_error(error,
                               "option --method: expected exhaustive, random or asha, got "
                               "\"%s\"",
                               method),
               2;
    if (cli->objective && !search_objective_parse(cli->objective, &spec.objective))
        return cfg_input_error(error,
                               "option --objective: expected step, time, node-hours, "
                               "gpu-hours or core-hours, got \"%s\"",
                               cli->objective),
               2;
    if (cli->tokens && !parse_tokens(cli->tokens, &spec.tokens))
        return cfg_input_error(error,
                               "option --tokens: expected a number of tokens (3e11, 300G, "
                               "2T), got \"%s\"",
                               cli->tokens),
               2;
    for (char **c = cli->constraints; c && *c; c++)
        if (!search_constraint_parse(&spec, *c, error))
            return 2;
    if (cli->global_batch && !search_global_batch_parse(&spec, cli->global_batch, error))
        return 2;
    SearchObjective pa = SEARCH_OBJ_COUNT, pb = SEARCH_OBJ_COUNT;
    if (cli->pareto) {
        char **ab = g_strsplit(cli->pareto, ",", -1);
        bool ok = g_strv_length(ab) == 2 && search_objective_parse(ab[0], &pa) &&
                  search_objective_parse(ab[1], &pb) && pa != pb;
        g_strfreev(ab);
        if (!ok)
            return cfg_input_error(error,
                                   "option --pareto: expected two different objectives "
                                   "(step,node-hours), got \"%s\"",
                                   cli->pareto),
                   2;
    }
    bool needs_tokens =
        spec.objective != SEARCH_OBJ_STEP ||
        (pa != SEARCH_OBJ_COUNT && (pa != SEARCH_OBJ_STEP || pb != SEARCH_OBJ_STEP));
    if (needs_tokens && spec.tokens <= 0)
        return cfg_input_error(error, "option --objective/--pareto: time and hours are to a "
                                      "number of tokens: expected --tokens N"),
               2;
    cli->formats = PLOT_ALL;
    if (cli->plot_format && !plot_formats_parse(cli->plot_format, &cli->formats))
        return cfg_input_error(error,
                               "option --plot-format: expected png, svg, pdf or all, "
                               "comma-separated, got \"%s\"",
                               cli->plot_format),
               2;
    if (cli->plot && !cli_check_dir("plot", cli->plot, error))
        return 2;
    int shard = 0, shards = 1;
    if (cli->shard) {
        char *end = NULL;
        shard = (int)g_ascii_strtoll(cli->shard, &end, 10);
        bool ok = end != cli->shard && *end == '/';
        char *end2 = NULL;
        shards = ok ? (int)g_ascii_strtoll(end + 1, &end2, 10) : 0;
        if (!ok || end2 == end + 1 || *end2 || shards < 1 || shard < 0 || shard >= shards)
            return cfg_input_error(error,
                                   "option --shard: expected I/N with 0 <= I < N (a SLURM "
                                   "job array: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT), "
                                   "got \"%s\"",
                                   cli->shard),
                   2;
    }
    int launched_rank = -1;
    if (!cli->shard && !cli->merge && cli_launch_rank(&shard, &shards)) {
        if (!cli->out)
            return cfg_input_error(error, "option --out: a search run by mpirun or srun writes "
                                          "one file per rank: expected --out FILE"),
                   2;
        launched_rank = shard;
    }
    if (cli->merge && cli->emit_jobs)
        return cfg_input_error(error, "option --emit-jobs: needs the search's options (the "
                                      "simulation's command line of each job), not --merge"),
               2;
    if (cli->emit_jobs && !cli_check_dir("emit-jobs", cli->emit_jobs, error))
        return 2;
    if (cli->merge) {
        for (int i = 1; i < argc; i++)
            if (argv[i][0] == '-')
                return cfg_input_error(error,
                                       "option --merge: expected record files, got the "
                                       "option %s (the simulation's options are not "
                                       "needed to merge)",
                                       argv[i]),
                       2;
        return merge(cli, argv + 1, argc - 1, &spec, pa, pb, error);
    }
    if (cli->ray_tune)
        return ray_tune_plan(cli, &spec, argc, argv, error);
    /* what GOption left: the simulation's options, the same for every point */
    GPtrArray *fixed = g_ptr_array_new_with_free_func(g_free);
    for (int i = 1; i < argc; i++)
        g_ptr_array_add(fixed, g_strdup(argv[i]));
    SearchSpace space;
    search_space_init(&space);
    EvalCtx ectx = {cli_sim_cache_new(), spec.tokens};
    GHashTable *records =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)cJSON_Delete);
    cJSON *prov = cJSON_CreateObject();
    GArray *todo = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    Walk w = {.records = records, .best = INFINITY, .objective = spec.objective};
    char *out_file = NULL;
    int status = 2;
    /* launched: a queue for exhaustive and random (asha ranks its own shard by the bound) */
    char *job_id = launched_rank >= 0 ? cli_launch_job_id() : NULL;
    bool dynamic = job_id && strcmp(method, "asha") != 0;
    if (launched_rank >= 0 && !job_id)
        job_id = g_strdup("static");
    for (char **v = cli->vary; v && *v; v++)
        if (!search_space_add_vary(&space, *v, error))
            goto out;
    if (cli->space_file && !search_space_load_json(&space, cli->space_file, error))
        goto out;
    if (!space.dims->len) {
        cfg_input_error(error, "option --vary: expected at least one dimension (--vary tp=1,2,4 "
                               "or --space FILE)");
        goto out;
    }
    /* every value of every dimension parsed by the simulation's own option table, so that a typo
     * is an input error naming it before anything runs */
    for (guint d = 0; d < space.dims->len; d++) {
        SearchDim *dim = g_ptr_array_index(space.dims, d);
        if (option_fixed(fixed, dim->option)) {
            cfg_input_error(error, "option --vary %s: --%s is also given as a fixed option",
                            dim->option, dim->option);
            goto out;
        }
        if (spec.global_batch > 0 &&
            (!strcmp(dim->option, "grad-accum") || !strcmp(dim->option, "micro-batches"))) {
            cfg_input_error(error,
                            "option --vary %s: --global-batch sets the micro-batches of "
                            "each layout",
                            dim->option);
            goto out;
        }
        for (guint k = 0; k < dim->values->len; k++) {
            GPtrArray *argv1 = g_ptr_array_new_with_free_func(g_free);
            g_ptr_array_add(argv1, g_strdup("fsdpsim"));
            const char **vals = g_new0(const char *, space.dims->len);
            for (guint j = 0; j < space.dims->len; j++)
                vals[j] = "off";
            vals[d] = g_ptr_array_index(dim->values, k);
            search_point_argv(&space, vals, argv1);
            g_free(vals);
            GError *e = NULL;
            bool ok = parse_only(&ectx, argv1, &e);
            g_ptr_array_free(argv1, TRUE);
            if (!ok) {
                /* "option --tp: expected an integer, got "two"" said once, as the --vary value */
                g_autofree char *named = g_strdup_printf("option --%s: ", dim->option);
                cfg_input_error(error, "option --vary %s=%s: %s", dim->option,
                                (char *)g_ptr_array_index(dim->values, k),
                                cli_strip_prefix(e->message, named));
                g_error_free(e);
                goto out;
            }
        }
    }
    if (spec.global_batch > 0 &&
        (option_fixed(fixed, "grad-accum") || option_fixed(fixed, "micro-batches"))) {
        cfg_input_error(error, "option --global-batch: the micro-batches follow from it; drop "
                               "--grad-accum and --micro-batches");
        goto out;
    }
    /* a file each point would write again, the last point's left (not the best's) */
    static const char *const per_run[] = {"trace", "emit-schedule", "report"};
    for (size_t i = 0; i < G_N_ELEMENTS(per_run); i++)
        if (option_fixed(fixed, per_run[i])) {
            cfg_input_error(error,
                            "option --%s: an output of one simulation, which every point of a "
                            "search would write again; expected it on the fsdpsim command of the "
                            "configuration chosen (--emit-jobs writes the top ones')",
                            per_run[i]);
            goto out;
        }
    if (spec.tokens > 0 && option_fixed(fixed, "steps")) {
        /* each point's time to train is to --tokens (simulate.c); --steps would replace it */
        cfg_input_error(error, "option --steps: the search's --tokens is the length of training; "
                               "expected one of them");
        goto out;
    }
    {
        GPtrArray *argv0 = g_ptr_array_new_with_free_func(g_free);
        g_ptr_array_add(argv0, g_strdup("fsdpsim"));
        for (guint i = 0; i < fixed->len; i++)
            g_ptr_array_add(argv0, g_strdup(g_ptr_array_index(fixed, i)));
        GError *e = NULL;
        bool ok = parse_only(&ectx, argv0, &e);
        g_ptr_array_free(argv0, TRUE);
        if (!ok) { /* the simulation's options, which search --help does not list */
            cfg_input_error(error, "%s (see fsdpsim --help)", e->message);
            g_error_free(e);
            goto out;
        }
    }
    /* LoRA (--lora-rank, --lora-targets) freezes the base weights: no gradient or optimizer
     * state for them, which the memory bound (search_bound.c) does not know; such searches
     * prune on the simulated memory only */
    for (guint i = 0; i < fixed->len; i++)
        spec.no_memory_bound |= g_str_has_prefix(g_ptr_array_index(fixed, i), "--lora");
    for (guint d = 0; d < space.dims->len; d++)
        spec.no_memory_bound |=
            g_str_has_prefix(((SearchDim *)g_ptr_array_index(space.dims, d))->option, "lora");
    const char *model_file = fixed_value(fixed, "model", 'm');
    const char *topo_file = fixed_value(fixed, "topology", 't');
    char *model_default = cli_default_path("models/gpt.json");
    char *topo_default = cli_default_path("topologies/juwels-booster.json");
    add_hash(prov, "model_sha256", &space, "model", "models",
             model_file ? model_file : model_default);
    add_hash(prov, "topology_sha256", &space, "topology", "topologies",
             topo_file ? topo_file : topo_default);
    g_free(model_default), g_free(topo_default);
    cJSON_AddStringToObject(prov, "fsdpsim_version", FSDPSIM_VERSION);
    uint64_t size = search_space_size(&space);
    if (size > (1ull << 32)) {
        cfg_input_error(error,
                        "option --vary: the space has %" G_GUINT64_FORMAT " points; expected "
                        "at most 2^32 (use --method random --samples N on a smaller one)",
                        size);
        goto out;
    }
    if (!strcmp(method, "random")) {
        /* --samples distinct points, drawn with --seed: the same points on every shard */
        uint64_t n = MIN((uint64_t)MAX(cli->samples, 1), size);
        GRand *rng = g_rand_new_with_seed((guint32)cli->seed);
        GHashTable *seen = g_hash_table_new(g_int64_hash, g_int64_equal);
        gint64 *keys = g_new(gint64, n);
        for (uint64_t k = 0; k < n;) {
            keys[k] = (gint64)(g_rand_double(rng) * (double)size);
            if (!g_hash_table_contains(seen, &keys[k]))
                g_hash_table_add(seen, &keys[k]), k++;
        }
        for (uint64_t k = 0; k < n; k++)
            if (dynamic || (uint64_t)keys[k] % (uint64_t)shards == (uint64_t)shard) {
                uint64_t idx = (uint64_t)keys[k];
                g_array_append_val(todo, idx);
            }
        g_hash_table_destroy(seen), g_free(keys), g_rand_free(rng);
    } else {
        for (uint64_t i = dynamic ? 0 : (uint64_t)shard; i < size;
             i += dynamic ? 1 : (uint64_t)shards)
            g_array_append_val(todo, i);
    }
    SearchContext ctx = {&space, &spec, fixed, &evaluator, &ectx, prov};
    if (cli->out) {
        out_file = shards > 1 ? g_strdup_printf("%s.%d-of-%d", cli->out, shard, shards)
                              : g_strdup(cli->out);
        if (cli->resume && !search_results_read(out_file, records, true, error))
            goto out;
        /* with a queue any rank may have done any point: a resume skips the records of all */
        for (int r = 0; dynamic && cli->resume && r < shards; r++) {
            char *other = g_strdup_printf("%s.%d-of-%d", cli->out, r, shards);
            bool ok = r == shard || !g_file_test(other, G_FILE_TEST_EXISTS) ||
                      search_results_read(other, records, false, error);
            g_free(other);
            if (!ok)
                goto out;
        }
        if (!cli_check_writable("out", out_file, error))
            goto out;
        if (launched_rank >= 0 && !strcmp(job_id, "static")) {
            char *done = g_strdup_printf("%s.done", out_file);
            g_remove(done); /* a previous run's: without a job id, markers are not told apart */
            g_free(done);
        }
        w.out = fopen(out_file, cli->resume ? "a" : "w");
        if (!w.out) {
            cfg_input_error(error, "option --out: cannot write %s: %s", out_file,
                            g_strerror(errno));
            goto out;
        }
    } else if (cli->resume) {
        cfg_input_error(error, "option --resume: expected --out FILE, the records to resume");
        goto out;
    }
    /* --resume: the points already in the file are not evaluated again */
    GArray *left = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    const char **vals = g_new0(const char *, space.dims->len);
    for (guint i = 0; i < todo->len; i++) {
        search_space_point(&space, g_array_index(todo, uint64_t, i), vals);
        char *key = search_point_key(&space, vals);
        if (!g_hash_table_contains(records, key))
            g_array_append_val(left, g_array_index(todo, uint64_t, i));
        g_free(key);
    }
    g_free(vals);
    w.total = left->len;
    w.progress = isatty(STDERR_FILENO) && launched_rank <= 0;
    w.start_us = g_get_monotonic_time();
    if (dynamic) {
        /* batches of 4: a lock per 4 to 400 ms of work */
        char *qfile = g_strdup_printf("%s.queue-%s", cli->out, job_id);
        CliLaunchQueue q;
        bool opened = cli_launch_queue_open(&q, qfile, shard, shards, error);
        g_free(qfile);
        if (!opened)
            goto out;
        /* the queue walks the whole list, the same on every rank (a rank's resumed records,
         * read while others append, may differ): points already recorded are skipped */
        uint64_t start;
        const char **qvals = g_new0(const char *, space.dims->len);
        while (cli_launch_queue_next(&q, 4, todo->len, &start))
            for (uint64_t i = start; i < MIN(start + 4, (uint64_t)todo->len); i++) {
                uint64_t index = g_array_index(todo, uint64_t, i);
                search_space_point(&space, index, qvals);
                char *key = search_point_key(&space, qvals);
                if (!g_hash_table_contains(records, key))
                    walk_record(&w, search_evaluate(&ctx, index));
                g_free(key);
            }
        g_free(qvals);
        cli_launch_queue_close(&q, false);
    } else if (!strcmp(method, "asha"))
        run_asha(&ctx, left, MAX(2, cli->reduction), &w);
    else
        for (guint i = 0; i < left->len; i++)
            walk_record(&w, search_evaluate(&ctx, g_array_index(left, uint64_t, i)));
    g_array_free(left, TRUE);
    if (w.progress)
        fprintf(stderr, "\n");
    if (launched_rank >= 0) {
        fclose(w.out);
        w.out = NULL;
        cli_launch_mark_done(out_file, job_id);
        status = launched_rank == 0 ? launcher_merge(cli, shards, job_id, &spec, pa, pb, error) : 0;
        if (launched_rank == 0 && dynamic) {
            char *qfile = g_strdup_printf("%s.queue-%s", cli->out, job_id);
            g_remove(qfile); /* every rank has left it: the markers are all there */
            g_free(qfile);
        }
        if (status || launched_rank != 0 || !cli->emit_jobs)
            goto out;
        g_hash_table_remove_all(records); /* the jobs are the merged search's */
        if (!search_results_read(cli->out, records, false, error)) {
            status = 2;
            goto out;
        }
    } else
        status = finish(cli, &spec, records, pa, pb, error);
    if (!status && cli->emit_jobs) {
        GPtrArray *sorted = search_results_sorted(records), *ok = g_ptr_array_new();
        for (guint i = 0; i < sorted->len; i++)
            if (isfinite(search_record_objective(g_ptr_array_index(sorted, i))))
                g_ptr_array_add(ok, g_ptr_array_index(sorted, i));
        if (!search_emit_jobs(&space, fixed, ok, cli->top, cli->emit_jobs, error))
            status = 2;
        g_ptr_array_free(ok, TRUE);
        g_ptr_array_free(sorted, TRUE);
    }
out:
    g_free(job_id);
    if (w.out)
        fclose(w.out);
    g_free(out_file);
    g_array_free(todo, TRUE);
    cJSON_Delete(prov);
    g_hash_table_destroy(records);
    cli_sim_cache_free(ectx.cache);
    search_space_clear(&space);
    g_ptr_array_free(fixed, TRUE);
    return status;
}

int cli_search(int argc, char **argv)
{
    SearchCli cli = {.samples = 100, .seed = 1, .top = 5, .reduction = 3};
    GOptionEntry entries[] = {
        {"vary", 0, 0, G_OPTION_ARG_STRING_ARRAY, &cli.vary,
         "A dimension: a simulation long option and its values: tp=1,2,4, nodes=1..64:x2, "
         "micro-batch=1..8, activation-checkpointing=on,off (repeatable)",
         "OPTION=VALUES"},
        {"space", 0, 0, G_OPTION_ARG_FILENAME, &cli.space_file,
         "The dimensions as JSON: {\"vary\": {\"tp\": [1, 2, 4], \"nodes\": \"1..64:x2\"}}",
         "FILE"},
        {"method", 0, 0, G_OPTION_ARG_STRING, &cli.method,
         "exhaustive, random (--samples points), asha (bounds, then simulations in bound order "
         "until no bound can win) [exhaustive]",
         "M"},
        {"samples", 0, 0, G_OPTION_ARG_INT, &cli.samples, "Points of a random search [100]", "N"},
        {"seed", 0, 0, G_OPTION_ARG_INT, &cli.seed, "Seed of a random search [1]", "N"},
        {"reduction", 0, 0, G_OPTION_ARG_INT, &cli.reduction,
         "ASHA's reduction factor: each batch of simulations is 1/R of the points left [3]", "R"},
        {"objective", 0, 0, G_OPTION_ARG_STRING, &cli.objective,
         "step, time (to --tokens), node-hours, gpu-hours or core-hours (whole nodes x wall "
         "clock, as JSC charges) [step]",
         "OBJ"},
        {"tokens", 0, 0, G_OPTION_ARG_STRING, &cli.tokens,
         "Tokens to train, for time and hours: 3e11, 300G, 2T", "N"},
        {"global-batch", 0, 0, G_OPTION_ARG_STRING, &cli.global_batch,
         "Sequences per optimizer step (1536), or tokens with \"tok\" (4Mtok): each layout's "
         "--grad-accum follows",
         "N"},
        {"constraint", 0, 0, G_OPTION_ARG_STRING_ARRAY, &cli.constraints,
         "fits:headroom=2GiB (or =0.1 of the memory), gpus<=N, nodes<=N, walltime<=24h, "
         "tp-across-nodes (repeatable)",
         "C"},
        {"cores-per-node", 0, 0, G_OPTION_ARG_INT, &cli.cores_per_node,
         "Cores charged per node for core-hours [the topology's, else 48 as on JUWELS Booster]",
         "N"},
        {"top", 0, 0, G_OPTION_ARG_INT, &cli.top, "Rows of the table [5]", "K"},
        {"pareto", 0, 0, G_OPTION_ARG_STRING, &cli.pareto,
         "Print the Pareto front of two objectives: step,node-hours", "A,B"},
        {"out", 'o', 0, G_OPTION_ARG_FILENAME, &cli.out,
         "Append-only JSON Lines, one record per configuration (with --shard I/N: FILE.I-of-N)",
         "FILE"},
        {"csv", 0, 0, G_OPTION_ARG_FILENAME, &cli.csv, "Write every record as CSV", "FILE"},
        {"plot", 0, 0, G_OPTION_ARG_FILENAME, &cli.plot,
         "Write figures (gnuplot, .dat and .gp beside them): the configurations by two objectives "
         "with the Pareto front (--pareto, else the objective and memory), and a heat map of the "
         "best objective over TP x PP (or nodes x strategy)",
         "DIR"},
        {"emit-jobs", 0, 0, G_OPTION_ARG_FILENAME, &cli.emit_jobs,
         "Write, for the --top K, job-K.sbatch (JUWELS Booster: srun + torchrun, the PyTorch "
         "settings spelled out) and validate-K.sbatch (fsdprun on the simulated schedule)",
         "DIR"},
        {"ray-tune", 0, 0, G_OPTION_ARG_STRING, &cli.ray_tune,
         "Plan a Ray Tune ASHA campaign instead of searching: samples=N,max_t=T,grace=G,"
         "reduction=R,concurrent=C,gpus_per_trial=G[,steps_per_iter=S][,step_s=SECONDS]; the "
         "step is simulated from the options given (one trial's layout) unless step_s is given",
         "SPEC"},
        {"plot-format", 0, 0, G_OPTION_ARG_STRING, &cli.plot_format,
         "Image formats for --plot: png, svg, pdf [png,svg,pdf]", "LIST"},
        {"resume", 0, 0, G_OPTION_ARG_NONE, &cli.resume,
         "Continue the search in --out: its records are kept, the rest evaluated", NULL},
        {"shard", 0, 0, G_OPTION_ARG_STRING, &cli.shard,
         "Evaluate only the points I, I+N, I+2N, ... (a SLURM job array without MPI)", "I/N"},
        {"merge", 0, 0, G_OPTION_ARG_NONE, &cli.merge,
         "Join the record files given as arguments into --out and print the summary", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL}};
    GOptionContext *octx = g_option_context_new("[SIMULATION OPTIONS] [--merge FILES...]");
    g_option_context_set_summary(
        octx,
        "Searches layouts and knobs by simulation, in process. Options not listed here are the\n"
        "simulation's (fsdpsim --help) and are given to every point.\n\n"
        "Example:\n  fsdpsim search --model models/gpt3-175b.json --nodes 128 --vary tp=1..4:x2 "
        "--vary pp=1..16:x2 --global-batch 1536");
    g_option_context_set_description(octx, "Exit status: 0 success (also when nothing fits: the "
                                           "reasons are printed), 2 bad input.");
    g_option_context_add_main_entries(octx, entries, NULL);
    g_option_context_set_ignore_unknown_options(octx, TRUE);
    GError *error = NULL;
    int status;
    if (!g_option_context_parse(octx, &argc, &argv, &error)) {
        g_autofree char *text = cli_option_message(error, entries, argv[0]);
        fprintf(stderr, "fsdpsim: %s\n", text);
        g_error_free(error);
        status = 2;
    } else {
        status = run(&cli, argc, argv, &error);
        if (error)
            status = cli_report_error(error);
    }
    g_option_context_free(octx);
    g_strfreev(cli.vary), g_strfreev(cli.constraints);
    g_free(cli.space_file), g_free(cli.method), g_free(cli.objective), g_free(cli.tokens);
    g_free(cli.global_batch), g_free(cli.pareto), g_free(cli.out), g_free(cli.csv);
    g_free(cli.shard), g_free(cli.plot), g_free(cli.plot_format);
    g_free(cli.emit_jobs), g_free(cli.ray_tune);
    return status;
}
