/* search: constraints, objectives and the evaluation of one point (bound, then simulation). */
#include "search.h"
#include "../util/cfg.h"

#include <math.h>
#include <string.h>

static const char *objective_names[SEARCH_OBJ_COUNT] = {"step", "time", "node-hours", "gpu-hours",
                                                        "core-hours"};

void search_spec_default(SearchSpec *spec)
{
    *spec = (SearchSpec){0};
    spec->objective = SEARCH_OBJ_STEP;
    spec->cores_per_node = 0; /* the topology's (search_cores_per_node) */
}

int search_cores_per_node(const SearchSpec *spec, int machine_cores)
{
    if (spec->cores_per_node > 0)
        return spec->cores_per_node;
    /* the topology's cores (node.cpu_cores or accounting.cores_per_node); where it gives none,
     * JUWELS Booster's: 2 x AMD EPYC 7402, 24 cores each, charged as whole nodes
     * (https://apps.fz-juelich.de/jsc/hps/juwels/configuration.html) */
    return machine_cores > 0 ? machine_cores : 48;
}

bool search_objective_parse(const char *text, SearchObjective *out)
{
    for (int i = 0; i < SEARCH_OBJ_COUNT; i++)
        if (!strcmp(text, objective_names[i]))
            return *out = (SearchObjective)i, true;
    return false;
}

const char *search_objective_name(SearchObjective o)
{
    return o < SEARCH_OBJ_COUNT ? objective_names[o] : "?";
}

/* "24h", "90m", "3600s", "3600" (seconds) */
static bool parse_duration(const char *text, double *out_s)
{
    char *end = NULL;
    double v = g_ascii_strtod(text, &end);
    if (end == text || !(v > 0) || !isfinite(v))
        return false;
    double unit = !*end || !strcmp(end, "s") ? 1
                  : !strcmp(end, "m")        ? 60
                  : !strcmp(end, "h")        ? 3600
                  : !strcmp(end, "d")        ? 86400
                                             : 0;
    *out_s = v * unit;
    return unit > 0;
}

static bool parse_count(const char *text, int *out)
{
    char *end = NULL;
    gint64 v = g_ascii_strtoll(text, &end, 10);
    *out = (int)v;
    return end != text && !*end && v >= 1 && v <= 10000000;
}

bool search_constraint_parse(SearchSpec *spec, const char *text, GError **error)
{
    const char *expected = "fits, fits:headroom=SIZE (2GiB) or =FRACTION (0.1), gpus<=N, "
                           "nodes<=N, walltime<=DURATION (24h) or tp-across-nodes";
    bool ok = false;
    if (!strcmp(text, "fits"))
        ok = true; /* the default: every result fits */
    else if (g_str_has_prefix(text, "fits:headroom=")) {
        const char *v = text + strlen("fits:headroom=");
        char *end = NULL;
        double f = g_ascii_strtod(v, &end);
        uint64_t bytes = 0;
        if (end != v && !*end && f >= 0 && f < 1)
            spec->headroom_fraction = f, ok = true;
        else {
            /* "2GiB" as well as "2G" and "2GB" (all powers of 1024, as --max-memory reads) */
            char *size = g_strdup(v);
            size_t n = strlen(size);
            if (n > 2 && !strcmp(size + n - 2, "iB"))
                size[n - 2] = 'B', size[n - 1] = '\0';
            if (cfg_parse_size(size, &bytes))
                spec->headroom_bytes = (double)bytes, ok = true;
            g_free(size);
        }
    } else if (g_str_has_prefix(text, "gpus<="))
        ok = parse_count(text + 6, &spec->max_gpus);
    else if (g_str_has_prefix(text, "nodes<="))
        ok = parse_count(text + 7, &spec->max_nodes);
    else if (g_str_has_prefix(text, "walltime<="))
        ok = parse_duration(text + 10, &spec->walltime_s);
    else if (!strcmp(text, "tp-across-nodes"))
        ok = spec->tp_across_nodes = true;
    if (!ok)
        cfg_input_error(error, "option --constraint: expected %s, got \"%s\"", expected, text);
    return ok;
}

bool search_global_batch_parse(SearchSpec *spec, const char *text, GError **error)
{
    char *copy = g_strdup(text);
    size_t n = strlen(copy);
    bool tokens = n > 3 && !strcmp(copy + n - 3, "tok");
    if (tokens)
        copy[n - 3] = '\0';
    uint64_t v = 0;
    /* cfg_parse_size reads K, M, G as powers of 1024; a batch "4M" of tokens is 4 x 2^20
     * (4,194,304, GPT-3's 3.2M and Llama's 4M batches are quoted so) */
    bool ok = cfg_parse_size(copy, &v) && v >= 1 && v <= (1ull << 40);
    g_free(copy);
    if (!ok)
        return cfg_input_error(error,
                               "option --global-batch: expected a number of sequences "
                               "(1536, 4K) or of tokens with \"tok\" (4Mtok), got \"%s\"",
                               text);
    spec->global_batch = (double)v;
    spec->global_batch_tokens = tokens;
    return true;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* steps x step: the time to spec->tokens without checkpoints or restarts (the lower bound's,
 * and a point's where the simulation could not reckon them) */
static double compute_time_s(const SearchSpec *spec, double step_s, double tokens_per_step)
{
    double steps = tokens_per_step > 0 ? ceil(spec->tokens / tokens_per_step) : INFINITY;
    return steps * step_s;
}

/* The objective of a step of step_s taking time_s to spec->tokens in all. */
static double objective_from(const SearchSpec *spec, double step_s, double time_s, int nodes,
                             int machine_gpn, int machine_cores)
{
    if (spec->objective == SEARCH_OBJ_STEP)
        return step_s;
    double hours = time_s / 3600;
    switch (spec->objective) {
    case SEARCH_OBJ_TIME:
        return time_s;
    case SEARCH_OBJ_NODE_HOURS:
        return nodes * hours;
    case SEARCH_OBJ_GPU_HOURS:
        return (double)nodes * machine_gpn * hours;
    case SEARCH_OBJ_CORE_HOURS:
        return (double)nodes * search_cores_per_node(spec, machine_cores) * hours;
    default:
        return step_s;
    }
}

/* tokens (or samples, for image models) of one optimizer step of the whole job: a whole number
 * (sequences x seq_len, or samples), which the report's rate x step gives only to a rounding
 * (1048575.9999999999 for 2^20): rounded, or ceil(tokens / it) counted a step too many where
 * --tokens is a multiple of the batch (as the lower bound's exact count does not) */
static double tokens_per_step(const cJSON *figures)
{
    double per_s = num(figures, "tokens_per_s");
    if (per_s <= 0)
        per_s = num(figures, "samples_per_s");
    return round(per_s * num(figures, "step_time_s"));
}

/* The wall clock to spec->tokens: the simulation's time to train them where it reckoned one
 * (figures.train: saves, restarts after failures and at each job's end, initialisation; the
 * estimate `fsdpsim --tokens` prints, src/report/train.c), else steps x step. */
static double time_to_tokens_s(const SearchSpec *spec, const cJSON *figures)
{
    const cJSON *train = cJSON_GetObjectItemCaseSensitive(figures, "train");
    if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(train, "time_s")))
        return num(train, "time_s");
    return compute_time_s(spec, num(figures, "step_time_s"), tokens_per_step(figures));
}

double search_objective_value(const SearchSpec *spec, const cJSON *figures, int machine_gpn,
                              int machine_cores, int nodes)
{
    double step_s = num(figures, "step_time_s");
    return objective_from(
        spec, step_s, spec->objective == SEARCH_OBJ_STEP ? step_s : time_to_tokens_s(spec, figures),
        nodes, machine_gpn, machine_cores);
}

/* The figures a record keeps of --json: the scalars and the time, memory, model and layout
 * objects (not the per-collective detail, init and warnings, which make a record 3 times
 * longer). */
static cJSON *figures_of(const cJSON *full)
{
    static const char *objects[] = {"time", "memory", "model", "fsdp", "ddp",
                                    "tp",   "dp",     "pp",    "train"};
    cJSON *f = cJSON_CreateObject();
    for (const cJSON *v = full->child; v; v = v->next) {
        bool keep = cJSON_IsNumber(v) || cJSON_IsString(v) || cJSON_IsBool(v);
        for (size_t i = 0; i < G_N_ELEMENTS(objects); i++)
            keep = keep || (cJSON_IsObject(v) && !strcmp(v->string, objects[i]));
        if (keep)
            cJSON_AddItemToObject(f, v->string, cJSON_Duplicate(v, true));
    }
    return f;
}

/* The first clause of an error message ("option --tp" of "option --tp: expected ..."), so that
 * points refused for the same reason count together whatever their numbers. */
static char *short_reason(const char *message)
{
    const char *colon = strchr(message, ':');
    return g_strndup(message, colon ? (gsize)(colon - message) : strlen(message));
}

static cJSON *prune(cJSON *rec, const char *stage, const char *reason, const char *message)
{
    cJSON_AddStringToObject(rec, "status", "pruned");
    cJSON_AddStringToObject(rec, "stage", stage);
    cJSON_AddStringToObject(rec, "reason", reason);
    if (message)
        cJSON_AddStringToObject(rec, "message", message);
    return rec;
}

static cJSON *prune_error(cJSON *rec, const char *stage, GError *e)
{
    char *reason = short_reason(e->message);
    char *full = g_strdup_printf("invalid: %s", reason);
    prune(rec, stage, full, e->message);
    g_free(full), g_free(reason);
    g_error_free(e);
    return rec;
}

struct SearchPending {
    cJSON *rec;     /* the record so far: key, options, the bound's figures, lower_bound */
    void *parsed;   /* the point's options, parsed once */
    int grad_accum; /* from the global batch; 0: the options' own */
    double limit;   /* memory a point may use per GPU */
    int nodes, machine_gpn, machine_cores;
};

static void pending_free(const SearchContext *ctx, SearchPending *p)
{
    ctx->eval->release(p->parsed);
    g_free(p);
}

cJSON *search_evaluate_bound(const SearchContext *ctx, uint64_t index, SearchPending **pending)
{
    const SearchSpace *space = ctx->space;
    const SearchSpec *spec = ctx->spec;
    *pending = NULL;
    const char **values = g_new0(const char *, space->dims->len + 1);
    search_space_point(space, index, values);
    cJSON *rec = cJSON_CreateObject();
    char *key = search_point_key(space, values);
    cJSON_AddStringToObject(rec, "key", key);
    g_free(key);
    cJSON *options = cJSON_AddObjectToObject(rec, "options");
    for (guint i = 0; i < space->dims->len; i++)
        cJSON_AddStringToObject(options, ((SearchDim *)g_ptr_array_index(space->dims, i))->option,
                                values[i]);
    for (const cJSON *p = ctx->provenance ? ctx->provenance->child : NULL; p; p = p->next)
        cJSON_AddItemToObject(rec, p->string, cJSON_Duplicate(p, true));
    GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(argv, g_strdup("fsdpsim"));
    for (guint i = 0; i < ctx->fixed->len; i++)
        g_ptr_array_add(argv, g_strdup(g_ptr_array_index(ctx->fixed, i)));
    search_point_argv(space, values, argv);
    g_free(values);
    GError *e = NULL;
    /* one parse per point (GOption copies what it keeps), for the bound and the simulation */
    void *parsed = ctx->eval->parse(ctx->eval_ctx, (int)argv->len, (char **)argv->pdata, &e);
    g_ptr_array_free(argv, TRUE);
    cJSON *bound = parsed ? ctx->eval->eval(ctx->eval_ctx, parsed, SEARCH_FID_BOUND, 0, &e) : NULL;
    if (!bound) {
        prune_error(rec, "bound", e);
        goto done;
    }
    int nodes = (int)num(bound, "nodes"), machine_gpn = (int)num(bound, "machine_gpus_per_node");
    int machine_cores = (int)num(bound, "machine_cores_per_node");
    int tp = (int)num(bound, "tp"), world = (int)num(bound, "world_size");
    double dp = num(bound, "dp"), micro = num(bound, "micro_batch");
    double ga = num(bound, "grad_accum"), seq = num(bound, "seq_len");
    double capacity = num(bound, "capacity_bytes");
    double limit = capacity - MAX(spec->headroom_bytes, spec->headroom_fraction * capacity);
    int grad_accum = 0;
    cJSON_AddNumberToObject(rec, "nodes", nodes);
    cJSON_AddNumberToObject(rec, "machine_gpus_per_node", machine_gpn);
    cJSON_AddNumberToObject(rec, "machine_cores_per_node", machine_cores);
    if (tp > (int)num(bound, "gpus_per_node") && !spec->tp_across_nodes) {
        prune(rec, "bound", "puts TP across nodes", NULL);
        goto done;
    }
    if (spec->max_nodes && nodes > spec->max_nodes) {
        prune(rec, "bound", "over the node budget", NULL);
        goto done;
    }
    if (spec->max_gpus && world > spec->max_gpus) {
        prune(rec, "bound", "over the GPU budget", NULL);
        goto done;
    }
    if (spec->global_batch > 0) {
        /* the micro-batches of one step follow from the global batch and the layout */
        double per_micro = dp * micro * (spec->global_batch_tokens ? MAX(1, seq) : 1);
        double m = spec->global_batch / per_micro;
        if (m < 1 || m != floor(m)) {
            prune(rec, "bound", "global batch not a multiple of dp x micro-batch", NULL);
            goto done;
        }
        if (m > G_MAXINT) { /* --grad-accum is an int */
            char *message = g_strdup_printf("option --grad-accum: the global batch gives %.0f "
                                            "micro-batches; expected at most %d",
                                            m, G_MAXINT);
            prune(rec, "bound", "invalid: option --grad-accum", message);
            g_free(message);
            goto done;
        }
        ga = m;
        grad_accum = (int)m;
        cJSON_AddNumberToObject(rec, "grad_accum", ga);
    }
    cJSON_AddNumberToObject(rec, "memory_bound_bytes", num(bound, "memory_bound_bytes"));
    if (!spec->no_memory_bound && num(bound, "memory_bound_bytes") > limit) {
        prune(rec, "bound", "does not fit (analytic bound)", NULL);
        goto done;
    }
    double floor_s = num(bound, "step_floor_per_micro_batch_s") *
                     (MAX(1, ga) + num(bound, "pipeline_fill_micro_batches"));
    /* below the simulation's: its step is above floor_s, and the time to train adds saves and
     * restarts to steps x step (src/report/train.c) */
    double lower = objective_from(
        spec, floor_s, compute_time_s(spec, floor_s, dp * micro * MAX(1, ga) * MAX(1, seq)), nodes,
        machine_gpn, machine_cores);
    cJSON_AddNumberToObject(rec, "lower_bound", lower);
    SearchPending *p = g_new(SearchPending, 1);
    *p = (SearchPending){rec, parsed, grad_accum, limit, nodes, machine_gpn, machine_cores};
    *pending = p;
    parsed = NULL, rec = NULL;
done:
    if (parsed)
        ctx->eval->release(parsed);
    cJSON_Delete(bound);
    return rec;
}

double search_pending_lower_bound(const SearchPending *p)
{
    return cJSON_GetObjectItemCaseSensitive(p->rec, "lower_bound")->valuedouble;
}

const char *search_pending_key(const SearchPending *p)
{
    return cJSON_GetObjectItemCaseSensitive(p->rec, "key")->valuestring;
}

cJSON *search_pending_drop(const SearchContext *ctx, SearchPending *p, const char *reason)
{
    cJSON *rec = prune(p->rec, "bound", reason, NULL);
    pending_free(ctx, p);
    return rec;
}

cJSON *search_pending_simulate(const SearchContext *ctx, SearchPending *p)
{
    const SearchSpec *spec = ctx->spec;
    cJSON *rec = p->rec;
    GError *e = NULL;
    cJSON *full = ctx->eval->eval(ctx->eval_ctx, p->parsed, SEARCH_FID_FULL, p->grad_accum, &e);
    if (!full) {
        prune_error(rec, "full", e);
        pending_free(ctx, p);
        return rec;
    }
    int nodes = p->nodes, machine_gpn = p->machine_gpn, machine_cores = p->machine_cores;
    cJSON *figures = figures_of(full);
    const cJSON *memory = cJSON_GetObjectItemCaseSensitive(full, "memory");
    double peak = num(memory, "peak_bytes");
    double objective = search_objective_value(spec, figures, machine_gpn, machine_cores, nodes);
    double time_s =
        spec->tokens > 0 ? time_to_tokens_s(spec, figures) : num(figures, "step_time_s");
    if (peak > p->limit || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(memory, "oom")))
        prune(rec, "full", "does not fit", NULL);
    else if (spec->walltime_s > 0 && time_s > spec->walltime_s)
        prune(rec, "full", "over the wall-time limit", NULL);
    else {
        cJSON_AddStringToObject(rec, "status", "ok");
        cJSON_AddStringToObject(rec, "stage", "full");
        cJSON_AddNumberToObject(rec, "objective", objective);
        if (spec->tokens > 0)
            cJSON_AddNumberToObject(rec, "time_to_tokens_s", time_s);
    }
    cJSON_AddItemToObject(rec, "figures", figures);
    cJSON_Delete(full);
    pending_free(ctx, p);
    return rec;
}

cJSON *search_evaluate(const SearchContext *ctx, uint64_t index)
{
    SearchPending *p = NULL;
    cJSON *rec = search_evaluate_bound(ctx, index, &p);
    return rec ? rec : search_pending_simulate(ctx, p);
}

const char *search_record_reason(const cJSON *record)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(record, "reason");
    return cJSON_IsString(r) ? r->valuestring : NULL;
}

double search_record_objective(const cJSON *record)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(record, "status");
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(record, "objective");
    return cJSON_IsString(s) && !strcmp(s->valuestring, "ok") && cJSON_IsNumber(o) ? o->valuedouble
                                                                                   : INFINITY;
}
