/* compare: see compare.h. */
#include "compare.h"

#include "../trace/trace.h"
#include "../util/cfg.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The traces compare reads. A PyTorch profiler trace has no otherData.generator; it is known by
 * its top-level schemaVersion and traceEvents (torch.profiler's export_chrome_trace). */
typedef struct {
    const char *generator;
    const char *described; /* for messages */
    bool iterations; /* otherData.step_time_s holds each iteration's step time; events args.iter */
    bool from_zero;  /* the clock starts at the step's start (a simulation); else at the first event
                      */
} CmpGenerator;

static const CmpGenerator GEN_FSDPRUN = {"fsdprun", "\"fsdprun\" (a real run, fsdprun --trace)",
                                         true, false};
/* read by src/trace and handed over as fsdprun's are: one iteration per ProfilerStep#N */
static const CmpGenerator GEN_PROFILER = {
    "pytorch-profiler", "a PyTorch profiler trace (torch.profiler, Kineto)", true, false};
static const CmpGenerator GEN_FSDPSIM = {
    "fsdpsim", "\"fsdpsim\" (a simulated run, fsdpsim --trace)", false, true};

double cmp_error(double sim, double real)
{
    return real > 0 ? (sim - real) / real : NAN;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static const cJSON *events_of(const cJSON *root, const char *file, GError **error)
{
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(root, "traceEvents");
    if (!cJSON_IsArray(ev)) {
        cfg_set_error(error, file, "", "traceEvents", "expected an array of Chrome trace events");
        return NULL;
    }
    return ev;
}

static const char *generator_of(const cJSON *root)
{
    const cJSON *other = cJSON_GetObjectItemCaseSensitive(root, "otherData");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(other, "generator");
    if (cJSON_IsString(g))
        return g->valuestring;
    if (cJSON_HasObjectItem(root, "schemaVersion"))
        return GEN_PROFILER.generator;
    return "";
}

const char *cmp_kind_of(const char *cat, const char *name)
{
    /* NCCL's kernel names: ncclKernel_AllGather_RING_LL_Sum_bf16, ncclDevKernel_SendRecv, ... */
    static const struct {
        const char *needle, *kind;
    } nccl[] = {{"AllGather", "allgather"}, {"ReduceScatter", "reduce_scatter"},
                {"AllReduce", "allreduce"}, {"Broadcast", "broadcast"},
                {"AllToAll", "alltoall"},   {"SendRecv", "send/recv"},
                {"Send", "send"},           {"Recv", "recv"},
                {"Reduce", "reduce"}}; /* after the two that hold it */
    static const char *const kinds[] = {"host",      "compute",   "send",      "recv",
                                        "memcpy",    "allgather", "allreduce", "reduce_scatter",
                                        "broadcast", "alltoall",  "send/recv", "reduce"};
    if (!strcmp(cat, "kernel")) {
        if (strstr(name, "nccl") || strstr(name, "NCCL"))
            for (size_t i = 0; i < G_N_ELEMENTS(nccl); i++)
                if (strstr(name, nccl[i].needle))
                    return nccl[i].kind;
        return "compute";
    }
    if (!strcmp(cat, "gpu_memcpy"))
        return "memcpy";
    for (size_t i = 0; i < G_N_ELEMENTS(kinds); i++)
        if (!strcmp(cat, kinds[i]))
            return kinds[i];
    return NULL;
}

static CmpKind *kind_get(GArray *kinds, const char *name)
{
    for (guint i = 0; i < kinds->len; i++) {
        CmpKind *k = &g_array_index(kinds, CmpKind, i);
        if (strcmp(k->kind, name) == 0)
            return k;
    }
    CmpKind k = {.kind = g_strdup(name)};
    g_array_append_val(kinds, k);
    return &g_array_index(kinds, CmpKind, kinds->len - 1);
}

static int kind_order(const void *a, const void *b)
{
    return strcmp(((const CmpKind *)a)->kind, ((const CmpKind *)b)->kind);
}

/* A compared complete event's fields; false for metadata, counters, malformed entries and events
 * of kinds not compared. */
static bool x_event(const cJSON *e, const char **kind, double *ts, double *dur, int *pid)
{
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(e, "ph");
    if (!cJSON_IsString(ph) || strcmp(ph->valuestring, "X") != 0)
        return false;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "cat"),
                *n = cJSON_GetObjectItemCaseSensitive(e, "name"),
                *t = cJSON_GetObjectItemCaseSensitive(e, "ts"),
                *d = cJSON_GetObjectItemCaseSensitive(e, "dur"),
                *p = cJSON_GetObjectItemCaseSensitive(e, "pid");
    if (!cJSON_IsString(c) || !cJSON_IsNumber(t) || !cJSON_IsNumber(d) || !cJSON_IsNumber(p))
        return false;
    *kind = cmp_kind_of(c->valuestring, cJSON_IsString(n) ? n->valuestring : "");
    *ts = t->valuedouble, *dur = d->valuedouble, *pid = p->valueint;
    return *kind != NULL;
}

/* An integer field of an event that must hold one: pid and tid (a missing tid became the row
 * "tid -2147483648"). */
static bool int_field(const cJSON *e, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, key);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) &&
           v->valuedouble == floor(v->valuedouble) && v->valuedouble >= INT_MIN &&
           v->valuedouble <= INT_MAX;
}

/* Every compared complete event has what the comparison reads, in range: pid and tid integers,
 * ts finite, dur finite and >= 0 (a negative dur or an inf ts were summed as they were).
 * Checked once per trace, before anything is summed; events of kinds not compared (Kineto's
 * string-pid "Trace" span, metadata) are left as they are. */
static bool check_events(const cJSON *ev, const char *file, GError **error)
{
    int i = 0;
    for (const cJSON *e = ev->child; e; e = e->next, i++) {
        const cJSON *ph = cJSON_GetObjectItemCaseSensitive(e, "ph"),
                    *c = cJSON_GetObjectItemCaseSensitive(e, "cat"),
                    *n = cJSON_GetObjectItemCaseSensitive(e, "name");
        if (!cJSON_IsString(ph) || strcmp(ph->valuestring, "X") != 0 || !cJSON_IsString(c) ||
            !cmp_kind_of(c->valuestring, cJSON_IsString(n) ? n->valuestring : ""))
            continue;
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(e, "ts"),
                    *dur = cJSON_GetObjectItemCaseSensitive(e, "dur");
        const char *field = NULL, *expected = NULL;
        if (!int_field(e, "pid"))
            field = "pid", expected = "an integer process id";
        else if (!int_field(e, "tid"))
            field = "tid", expected = "an integer thread id";
        else if (!cJSON_IsNumber(ts) || !isfinite(ts->valuedouble))
            field = "ts", expected = "a finite time stamp in us";
        else if (!cJSON_IsNumber(dur) || !isfinite(dur->valuedouble) || dur->valuedouble < 0 ||
                 dur->valuedouble > 1e15)
            field = "dur", expected = "a duration in us in [0, 1e15]";
        if (field) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, field);
            /* a number as printf writes it: cJSON prints inf as null */
            char *got = !v                 ? NULL
                        : cJSON_IsNumber(v) ? g_strdup_printf("%g", v->valuedouble)
                                            : cfg_json_print(v, false);
            char *path = g_strdup_printf("traceEvents[%d]", i);
            cfg_set_error(error, file, path, field, "expected %s in a complete (\"X\") event of "
                          "category \"%s\", got %s", expected, c->valuestring,
                          got ? got : "none");
            if (v && cJSON_IsNumber(v))
                g_free(got);
            else
                cJSON_free(got);
            g_free(path);
            return false;
        }
    }
    return true;
}

static int event_iter(const cJSON *e)
{
    const cJSON *it =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "args"), "iter");
    return cJSON_IsNumber(it) ? it->valueint : -1;
}

/* Ranks per process: a simulated rank class's from its name "rank class C (N ranks from rank R)",
 * 1 for any other process (a real rank). */
static int pid_weight(GHashTable *sizes, int pid)
{
    gpointer n = g_hash_table_lookup(sizes, GINT_TO_POINTER(pid));
    return n ? GPOINTER_TO_INT(n) : 1;
}

static GHashTable *class_sizes(const cJSON *ev)
{
    GHashTable *sizes = g_hash_table_new(g_direct_hash, g_direct_equal);
    const cJSON *e;
    cJSON_ArrayForEach(e, ev)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name"),
                    *pid = cJSON_GetObjectItemCaseSensitive(e, "pid");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(e, "args");
        const cJSON *pname = cJSON_GetObjectItemCaseSensitive(args, "name");
        int cls, n, first;
        if (cJSON_IsString(name) && strcmp(name->valuestring, "process_name") == 0 &&
            cJSON_IsNumber(pid) && cJSON_IsString(pname) &&
            sscanf(pname->valuestring, "rank class %d (%d ranks from rank %d)", &cls, &n, &first) ==
                3 &&
            n > 0)
            g_hash_table_insert(sizes, GINT_TO_POINTER(pid->valueint), GINT_TO_POINTER(n));
    }
    return sizes;
}

/* otherData.step_time_s: median, range and the (lower) median's iteration. */
static bool load_steps(CmpResult *r, const cJSON *root, const char *file, GError **error)
{
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "otherData"), "step_time_s");
    int n = cJSON_GetArraySize(steps);
    if (!cJSON_IsArray(steps) || n < 1) {
        cfg_set_error(error, file, "otherData", "step_time_s",
                      "expected a non-empty array of step times");
        return false;
    }
    double *v = g_new(double, n), *sorted = g_new(double, n);
    for (int i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetArrayItem(steps, i);
        if (!cJSON_IsNumber(x) || !(x->valuedouble > 0) || !isfinite(x->valuedouble)) {
            cfg_set_error(error, file, "otherData", "step_time_s",
                          "expected positive numbers, got item %d", i);
            g_free(v), g_free(sorted);
            return false;
        }
        v[i] = sorted[i] = x->valuedouble;
    }
    r->iterations = n;
    r->real_median_s = cfg_median(sorted, (size_t)n); /* and sorted is sorted */
    r->real_min_s = sorted[0], r->real_max_s = sorted[n - 1];
    for (int i = 0; i < n; i++)
        if (v[i] == sorted[(n - 1) / 2]) {
            r->median_iter = i;
            break;
        }
    g_free(v), g_free(sorted);
    return true;
}

/* The sums of one trace's compared events: per kind, the processes seen and the span. */
typedef struct {
    CmpResult *r;
    bool real;
    GHashTable *sizes, *pids;
    double t0, t1;
} CmpSums;

static void sum_event(CmpSums *s, const char *kind, double ts, double dur, int pid)
{
    g_hash_table_add(s->pids, GINT_TO_POINTER(pid));
    s->t0 = MIN(s->t0, ts), s->t1 = MAX(s->t1, ts + dur);
    double w = pid_weight(s->sizes, pid);
    CmpKind *k = kind_get(s->r->kinds, kind);
    *(s->real ? &k->real_s : &k->sim_s) += dur * 1e-6 * w;
    *(s->real ? &k->real_calls : &k->sim_calls) += w;
}

/* a profiler trace's activity, from the reader's arrays (trace_set_activities) */
static void sum_activity(void *data, const char *cat, const char *name, int pid, int tid,
                         double ts_us, double dur_us, int iter)
{
    (void)tid, (void)iter;
    const char *kind = cmp_kind_of(cat, name);
    if (kind)
        sum_event(data, kind, ts_us, dur_us, pid);
}

/* The (rank, step) pairs a profiler set's activities are summed over: each rank's steps among
 * rank 0's (the steps compare sees), so that a rank whose trace lacks one of them (its profiler
 * started a step later) does not count it. O(ranks x steps^2): steps are few. */
static int set_rank_steps(const TraceSet *set)
{
    const TraceRank *r0 = g_ptr_array_index(set->ranks, 0);
    int pairs = 0;
    for (guint i = 0; i < set->ranks->len; i++) {
        const TraceRank *r = g_ptr_array_index(set->ranks, i);
        for (guint s0 = 0; s0 < r0->steps->len; s0++)
            for (guint s = 0; s < r->steps->len; s++)
                if (g_array_index(r->steps, TraceStep, s).number ==
                    g_array_index(r0->steps, TraceStep, s0).number) {
                    pairs++;
                    break;
                }
    }
    return pairs;
}

/* One trace, real or simulated, from any of the `accepted` generators (NULL-terminated): checks
 * it, sums its op durations per kind into CmpKind.real_* or .sim_* per rank per step, and sets
 * the step time. With set (a profiler trace), the events summed are the set's, every step's,
 * and root holds the median step's only (cmp_load_traces). */
static bool load_trace(CmpResult *r, bool real, const cJSON *root, const char *file,
                       const CmpGenerator *const *accepted, const TraceSet *set, GError **error)
{
    const cJSON *ev = events_of(root, file, error);
    if (!ev)
        return false;
    const char *name = generator_of(root);
    const CmpGenerator *gen = NULL;
    for (int i = 0; accepted[i] && !gen; i++)
        if (strcmp(name, accepted[i]->generator) == 0)
            gen = accepted[i];
    if (!gen) {
        GString *want = g_string_new(NULL);
        for (int i = 0; accepted[i]; i++)
            g_string_append_printf(want, "%s%s", i ? " or " : "", accepted[i]->described);
        cfg_set_error(error, file, "otherData", "generator", "expected %s, got \"%s\"", want->str,
                      name);
        g_string_free(want, TRUE);
        return false;
    }
    if (!check_events(ev, file, error) || (gen->iterations && !load_steps(r, root, file, error)))
        return false;
    CmpSums sums = {r,
                    real,
                    class_sizes(ev),
                    g_hash_table_new(g_direct_hash, g_direct_equal),
                    gen->from_zero ? 0 : INFINITY,
                    -INFINITY};
    GHashTable *sizes = sums.sizes, *pids = sums.pids;
    if (set) {
        trace_set_activities(set, sum_activity, &sums);
    } else {
        const cJSON *e;
        cJSON_ArrayForEach(e, ev)
        {
            const char *kind;
            double ts, dur;
            int pid;
            if (x_event(e, &kind, &ts, &dur, &pid))
                sum_event(&sums, kind, ts, dur, pid);
        }
    }
    double t0 = sums.t0, t1 = sums.t1;
    double world = 0;
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, pids);
    while (g_hash_table_iter_next(&it, &key, NULL))
        world += pid_weight(sizes, GPOINTER_TO_INT(key));
    g_hash_table_destroy(sizes), g_hash_table_destroy(pids);
    if (world == 0) {
        cfg_set_error(error, file, "", "traceEvents",
                      "expected complete (\"X\") events of compute or communication, got none");
        return false;
    }
    int steps = gen->iterations ? r->iterations : 1;
    double rank_steps = set ? set_rank_steps(set) : world * steps;
    for (guint i = 0; i < r->kinds->len; i++) {
        CmpKind *k = &g_array_index(r->kinds, CmpKind, i);
        *(real ? &k->real_s : &k->sim_s) /= rank_steps;
        *(real ? &k->real_calls : &k->sim_calls) /= rank_steps;
    }
    double span = (t1 - t0) * 1e-6;
    if (real) {
        r->ranks = (int)world;
        r->real_generator = gen->generator;
        if (!gen->iterations) {
            r->iterations = 1, r->median_iter = -1;
            r->real_median_s = r->real_min_s = r->real_max_s = span;
        }
    } else {
        r->sim_s = span;
    }
    return true;
}

bool cmp_load(const char *real_file, const char *sim_file, CmpResult *r, GError **error)
{
    return cmp_load_traces(&real_file, 1, sim_file, r, error);
}

bool cmp_load_traces(const char *const *real_files, int n_real, const char *sim_file, CmpResult *r,
                     GError **error)
{
    static const CmpGenerator *const real_gens[] = {&GEN_FSDPRUN, &GEN_PROFILER, NULL};
    static const CmpGenerator *const sim_gens[] = {&GEN_FSDPSIM, NULL};
    memset(r, 0, sizeof *r);
    r->kinds = g_array_new(FALSE, TRUE, sizeof(CmpKind));
    /* profiler traces (one per rank, .json.gz, directories) through src/trace: its steps are
     * the ProfilerStep#N annotations, their GPU activities mapped by correlation id. The
     * streaming reader keeps compact arrays; every step is summed from them, and only the
     * median step (what the figure and the merged trace show) becomes a cJSON document, where
     * every activity of every step did (a cJSON object of 10 nodes and their strings each,
     * against the reader's 64-byte TraceKernel): peak memory of compare on the shared 3-step
     * A100 trace 11.5 -> 8.3 MB. */
    if (n_real > 1 || g_file_test(real_files[0], G_FILE_TEST_IS_DIR) ||
        trace_file_sniff(real_files[0])) {
        TraceSet *set = trace_set_read(real_files, n_real, error);
        if (!set)
            return false;
        cJSON *steps = trace_set_to_compare(set, -1);
        bool ok = load_steps(r, steps, real_files[0], error);
        cJSON_Delete(steps);
        r->real = ok ? trace_set_to_compare(set, r->median_iter) : NULL;
        ok = ok && load_trace(r, true, r->real, real_files[0], real_gens, set, error);
        trace_set_free(set);
        if (!ok)
            return false;
    } else {
        r->real = cfg_parse_file(real_files[0], error);
        if (!r->real || !load_trace(r, true, r->real, real_files[0], real_gens, NULL, error))
            return false;
    }
    r->sim = cfg_parse_file(sim_file, error);
    if (!r->sim || !load_trace(r, false, r->sim, sim_file, sim_gens, NULL, error))
        return false;
    g_array_sort(r->kinds, kind_order);
    r->error = cmp_error(r->sim_s, r->real_median_s);
    return true;
}

void cmp_clear(CmpResult *r)
{
    for (guint i = 0; r->kinds && i < r->kinds->len; i++)
        g_free(g_array_index(r->kinds, CmpKind, i).kind);
    if (r->kinds)
        g_array_free(r->kinds, TRUE);
    cJSON_Delete(r->real);
    cJSON_Delete(r->sim);
    memset(r, 0, sizeof *r);
}

char *cmp_title(const CmpResult *r)
{
    const cJSON *other = cJSON_GetObjectItemCaseSensitive(r->real, "otherData");
    const char *keys[] = {"model", "strategy", "topology"};
    GString *t = g_string_new(NULL);
    for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(other, keys[k]);
        /* a title is one line of a figure: long names are cut */
        if (cJSON_IsString(v))
            g_string_append_printf(t, "%s%.40s%s", t->len ? ", " : "", v->valuestring,
                                   strlen(v->valuestring) > 40 ? "..." : "");
    }
    if (!t->len)
        return g_string_free(t, TRUE);
    g_string_append_printf(t, ", %d ranks", r->ranks);
    return g_string_free(t, FALSE);
}

static void print_error(FILE *out, double e)
{
    if (isnan(e))
        fprintf(out, "%9s", "-");
    else
        fprintf(out, "%+8.1f%%", 100 * e);
}

void cmp_print_table(const CmpResult *r, const char *real_file, const char *sim_file, FILE *out)
{
    if (r->median_iter < 0)
        fprintf(out, "real       %s: %s, one step, %d ranks\n", real_file, r->real_generator,
                r->ranks);
    else
        fprintf(out, "real       %s: %s, %d %s, %d ranks\n", real_file, r->real_generator,
                r->iterations,
                strcmp(r->real_generator, GEN_PROFILER.generator)
                    ? "measured iterations"
                    : "ProfilerSteps (each the median over the ranks)",
                r->ranks);
    fprintf(out, "simulated  %s\n\n", sim_file);
    fprintf(out, "%-16s %12s %25s %12s %9s\n", "", "real (ms)", "real spread [min, max]",
            "sim (ms)", "error");
    fprintf(out, "%-16s %12.3f      [%8.3f, %8.3f] %12.3f ", "step time", r->real_median_s * 1e3,
            r->real_min_s * 1e3, r->real_max_s * 1e3, r->sim_s * 1e3);
    print_error(out, r->error);
    fprintf(out, "\n\nper rank per step, by op kind (sum of op durations; calls real/sim):\n");
    for (guint i = 0; i < r->kinds->len; i++) {
        const CmpKind *k = &g_array_index(r->kinds, CmpKind, i);
        char calls[64];
        snprintf(calls, sizeof calls, "%.0f/%.0f calls", k->real_calls, k->sim_calls);
        fprintf(out, "  %-14s %12.3f %25s %12.3f ", k->kind, k->real_s * 1e3, calls,
                k->sim_s * 1e3);
        print_error(out, cmp_error(k->sim_s, k->real_s));
        fputc('\n', out);
    }
}

static void add_number_or_null(cJSON *o, const char *key, double v)
{
    if (isnan(v))
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddNumberToObject(o, key, v);
}

char *cmp_to_json(const CmpResult *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *real = cJSON_AddObjectToObject(root, "real");
    cJSON_AddStringToObject(real, "generator", r->real_generator);
    cJSON_AddNumberToObject(real, "step_time_s", r->real_median_s);
    cJSON_AddNumberToObject(real, "step_time_min_s", r->real_min_s);
    cJSON_AddNumberToObject(real, "step_time_max_s", r->real_max_s);
    cJSON_AddNumberToObject(real, "iterations", r->iterations);
    cJSON_AddNumberToObject(real, "ranks", r->ranks);
    cJSON *sim = cJSON_AddObjectToObject(root, "sim");
    cJSON_AddNumberToObject(sim, "step_time_s", r->sim_s);
    add_number_or_null(root, "error", r->error);
    cJSON *kinds = cJSON_AddObjectToObject(root, "op_kinds");
    for (guint i = 0; i < r->kinds->len; i++) {
        const CmpKind *k = &g_array_index(r->kinds, CmpKind, i);
        cJSON *o = cJSON_AddObjectToObject(kinds, k->kind);
        cJSON_AddNumberToObject(o, "real_s", k->real_s);
        cJSON_AddNumberToObject(o, "sim_s", k->sim_s);
        add_number_or_null(o, "error", cmp_error(k->sim_s, k->real_s));
        cJSON_AddNumberToObject(o, "real_calls", k->real_calls);
        cJSON_AddNumberToObject(o, "sim_calls", k->sim_calls);
    }
    char *text = cfg_json_print(root, false);
    cJSON_Delete(root);
    return text;
}

static cJSON *sort_index(int pid, int index)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", "process_sort_index");
    cJSON_AddStringToObject(e, "ph", "M");
    cJSON_AddNumberToObject(e, "pid", pid);
    cJSON *args = cJSON_AddObjectToObject(e, "args");
    cJSON_AddNumberToObject(args, "sort_index", index);
    return e;
}

static void prefix_process_name(cJSON *e, const char *prefix)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
    cJSON *args = cJSON_GetObjectItemCaseSensitive(e, "args");
    cJSON *pname = cJSON_GetObjectItemCaseSensitive(args, "name");
    if (cJSON_IsString(name) && strcmp(name->valuestring, "process_name") == 0 &&
        cJSON_IsString(pname)) {
        char *n = g_strdup_printf("%s%s", prefix, pname->valuestring);
        cJSON_ReplaceItemInObjectCaseSensitive(args, "name", cJSON_CreateString(n));
        g_free(n);
    }
}

/* Each real rank's start of the median iteration (pid -> double *), so that every rank starts at
 * 0 as the simulated step does (ranks' clocks are not synchronised). */
static GHashTable *real_starts(const CmpResult *r)
{
    GHashTable *t0 = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(r->real, "traceEvents"))
    {
        const char *kind;
        double ts, dur;
        int pid;
        if (!x_event(e, &kind, &ts, &dur, &pid) || event_iter(e) != r->median_iter)
            continue;
        double *v = g_hash_table_lookup(t0, GINT_TO_POINTER(pid));
        if (!v) {
            v = g_new(double, 1);
            *v = ts;
            g_hash_table_insert(t0, GINT_TO_POINTER(pid), v);
        }
        *v = MIN(*v, ts);
    }
    return t0;
}

/* The events shown: the real median iteration's compared events, shifted by their rank's start
 * and with cat set to their kind (a profiler's "kernel" becomes "allgather", ...), then every
 * simulated compared event. Calls fn(event, kind, ts, real) for each, in trace order. */
typedef void (*ShownFn)(const cJSON *e, const char *kind, double ts, bool real, void *data);

static void for_each_shown(const CmpResult *r, ShownFn fn, void *data)
{
    GHashTable *t0 = real_starts(r);
    for (int w = 0; w < 2; w++) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(w ? r->sim : r->real, "traceEvents"))
        {
            const char *kind;
            double ts, dur;
            int pid;
            if (!x_event(e, &kind, &ts, &dur, &pid) || (!w && event_iter(e) != r->median_iter))
                continue;
            const double *shift = w ? NULL : g_hash_table_lookup(t0, GINT_TO_POINTER(pid));
            fn(e, kind, ts - (shift ? *shift : 0), !w, data);
        }
    }
    g_hash_table_destroy(t0);
}

typedef struct {
    cJSON *out;
    GHashTable *pids; /* of the merged trace, real and simulated */
} MergeState;

static void merge_event(const cJSON *e, const char *kind, double ts, bool real, void *data)
{
    MergeState *m = data;
    cJSON *copy = cJSON_Duplicate(e, true);
    int pid = cJSON_GetObjectItemCaseSensitive(e, "pid")->valueint + (real ? 0 : CMP_SIM_PID_BASE);
    cJSON_ReplaceItemInObjectCaseSensitive(copy, "pid", cJSON_CreateNumber(pid));
    cJSON_ReplaceItemInObjectCaseSensitive(copy, "ts", cJSON_CreateNumber(ts));
    cJSON_ReplaceItemInObjectCaseSensitive(copy, "cat", cJSON_CreateString(kind));
    cJSON_AddItemToArray(m->out, copy);
    g_hash_table_add(m->pids, GINT_TO_POINTER(pid));
}

/* Process and thread names, prefixed "real: " or "sim: ". */
static void merge_meta(MergeState *m, const cJSON *root, bool real)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "traceEvents"))
    {
        const cJSON *ph = cJSON_GetObjectItemCaseSensitive(e, "ph"),
                    *p = cJSON_GetObjectItemCaseSensitive(e, "pid");
        if (!cJSON_IsString(ph) || strcmp(ph->valuestring, "M") != 0 || !cJSON_IsNumber(p))
            continue;
        cJSON *copy = cJSON_Duplicate(e, true);
        int pid = p->valueint + (real ? 0 : CMP_SIM_PID_BASE);
        cJSON_ReplaceItemInObjectCaseSensitive(copy, "pid", cJSON_CreateNumber(pid));
        prefix_process_name(copy, real ? "real: " : "sim: ");
        cJSON_AddItemToArray(m->out, copy);
    }
}

char *cmp_merged_trace(const CmpResult *r)
{
    cJSON *root = cJSON_CreateObject();
    MergeState m = {cJSON_AddArrayToObject(root, "traceEvents"),
                    g_hash_table_new(g_direct_hash, g_direct_equal)};
    merge_meta(&m, r->real, true);
    merge_meta(&m, r->sim, false);
    for_each_shown(r, merge_event, &m);
    /* real ranks first, then the simulated classes */
    guint n = 0;
    gpointer *keys = g_hash_table_get_keys_as_array(m.pids, &n);
    int *sorted = g_new(int, MAX(n, 1));
    for (guint i = 0; i < n; i++)
        sorted[i] = GPOINTER_TO_INT(keys[i]);
    qsort(sorted, n, sizeof *sorted, cmp_int);
    for (guint i = 0; i < n; i++)
        cJSON_AddItemToArray(m.out, sort_index(sorted[i], (int)i));
    g_free(keys), g_free(sorted);
    g_hash_table_destroy(m.pids);
    cJSON_AddStringToObject(root, "displayTimeUnit", "ms");
    cJSON *other = cJSON_AddObjectToObject(root, "otherData");
    cJSON_AddStringToObject(other, "generator", "fsdpsim compare");
    cJSON_AddNumberToObject(other, "real_iteration", r->median_iter);
    char *text = cfg_json_print(root, false);
    cJSON_Delete(root);
    return text;
}

/* --- the timeline as spans ------------------------------------------------------------------ */

typedef struct {
    int pid, tid;
    bool real;
    int first; /* row index in first-seen order */
} RowKey;

typedef struct {
    const CmpResult *r;
    GArray *keys;     /* of RowKey, in first-seen order */
    GHashTable *rows; /* "r/pid/tid" -> index in keys + 1 */
    GArray *spans;    /* of CmpSpan, row = index in keys until renumbered */
} TimelineState;

static const char *kind_name(const CmpResult *r, const char *kind)
{
    for (guint i = 0; i < r->kinds->len; i++)
        if (!strcmp(g_array_index(r->kinds, CmpKind, i).kind, kind))
            return g_array_index(r->kinds, CmpKind, i).kind;
    return NULL; /* not reached: every shown event's kind was counted */
}

static void timeline_event(const cJSON *e, const char *kind, double ts, bool real, void *data)
{
    TimelineState *st = data;
    RowKey k = {cJSON_GetObjectItemCaseSensitive(e, "pid")->valueint,
                (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "tid")), real,
                (int)st->keys->len};
    char *key = g_strdup_printf("%d/%d/%d", real, k.pid, k.tid);
    int row = GPOINTER_TO_INT(g_hash_table_lookup(st->rows, key)) - 1;
    if (row < 0) {
        row = (int)st->keys->len;
        g_array_append_val(st->keys, k);
        g_hash_table_insert(st->rows, key, GINT_TO_POINTER(row + 1));
    } else {
        g_free(key);
    }
    double dur = cJSON_GetObjectItemCaseSensitive(e, "dur")->valuedouble;
    CmpSpan s = {ts * 1e-6, (ts + dur) * 1e-6, row, kind_name(st->r, kind)};
    g_array_append_val(st->spans, s);
}

static int row_order(const void *a, const void *b)
{
    const RowKey *x = a, *y = b;
    if (x->real != y->real)
        return x->real ? -1 : 1;
    if (x->pid != y->pid)
        return (x->pid > y->pid) - (x->pid < y->pid);
    return (x->tid > y->tid) - (x->tid < y->tid);
}

/* A process's or thread's name from the trace's metadata events, NULL when it has none. */
static const char *meta_name(const cJSON *root, const char *which, int pid, int tid)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "traceEvents"))
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
        const cJSON *ph = cJSON_GetObjectItemCaseSensitive(e, "ph");
        if (!cJSON_IsString(ph) || strcmp(ph->valuestring, "M") || !cJSON_IsString(name) ||
            strcmp(name->valuestring, which) ||
            cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "pid")) != pid ||
            (tid >= 0 && cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "tid")) != tid))
            continue;
        const cJSON *n =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "args"), "name");
        if (cJSON_IsString(n))
            return n->valuestring;
    }
    return NULL;
}

/* "real rank 0: compute", "sim class 1: nccl:dp", "real GPU 0: stream 7". */
static char *row_label(const CmpResult *r, const RowKey *k)
{
    const cJSON *root = k->real ? r->real : r->sim;
    const char *pname = meta_name(root, "process_name", k->pid, -1);
    const char *tname = meta_name(root, "thread_name", k->pid, k->tid);
    int a, b, c;
    char *proc = !pname ? g_strdup_printf("pid %d", k->pid)
                 : sscanf(pname, "rank class %d (%d ranks from rank %d)", &a, &b, &c) == 3
                     ? g_strdup_printf("class %d", a)
                 : sscanf(pname, "rank %d (", &a) == 1 ? g_strdup_printf("rank %d", a)
                                                       : g_strdup(pname);
    char *label = tname ? g_strdup_printf("%s %s: %s", k->real ? "real" : "sim", proc, tname)
                        : g_strdup_printf("%s %s: tid %d", k->real ? "real" : "sim", proc, k->tid);
    g_free(proc);
    return label;
}

void cmp_timeline(const CmpResult *r, CmpTimeline *t)
{
    TimelineState st = {r, g_array_new(FALSE, FALSE, sizeof(RowKey)),
                        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
                        g_array_new(FALSE, FALSE, sizeof(CmpSpan))};
    for_each_shown(r, timeline_event, &st);
    /* rows sorted (real first, then by pid and tid); spans renumbered */
    int n = (int)st.keys->len;
    RowKey *sorted = g_new(RowKey, MAX(n, 1));
    if (n)
        memcpy(sorted, st.keys->data, sizeof(RowKey) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof *sorted, row_order);
    int *new_row = g_new(int, MAX(n, 1));
    for (int j = 0; j < n; j++)
        new_row[sorted[j].first] = j;
    memset(t, 0, sizeof *t);
    t->spans = st.spans;
    t->rows = g_ptr_array_new_with_free_func(g_free);
    for (int j = 0; j < n; j++) {
        g_ptr_array_add(t->rows, row_label(r, &sorted[j]));
        t->n_real_rows += sorted[j].real;
    }
    for (guint i = 0; i < t->spans->len; i++) {
        CmpSpan *s = &g_array_index(t->spans, CmpSpan, i);
        bool real = g_array_index(st.keys, RowKey, s->row).real;
        s->row = new_row[s->row];
        t->span_s[real ? 0 : 1] = MAX(t->span_s[real ? 0 : 1], s->end_s);
    }
    g_free(sorted), g_free(new_row);
    g_array_free(st.keys, TRUE);
    g_hash_table_destroy(st.rows);
}

void cmp_timeline_clear(CmpTimeline *t)
{
    if (t->spans)
        g_array_free(t->spans, TRUE);
    if (t->rows)
        g_ptr_array_free(t->rows, TRUE);
    memset(t, 0, sizeof *t);
}
