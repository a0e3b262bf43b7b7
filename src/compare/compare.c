/* compare: see compare.h. */
#include "compare.h"

#include "../util/cfg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Offset of the simulated processes in the merged trace, so they sort below the real ranks. */
#define SIM_PID_BASE 100000

double cmp_error(double sim, double real)
{
    return real > 0 ? (sim - real) / real : NAN;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
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
    return cJSON_IsString(g) ? g->valuestring : "";
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

/* A complete event's fields; false for metadata, counters and malformed entries. */
static bool x_event(const cJSON *e, const char **cat, double *ts, double *dur, int *pid)
{
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(e, "ph");
    if (!cJSON_IsString(ph) || strcmp(ph->valuestring, "X") != 0)
        return false;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "cat"),
                *t = cJSON_GetObjectItemCaseSensitive(e, "ts"),
                *d = cJSON_GetObjectItemCaseSensitive(e, "dur"),
                *p = cJSON_GetObjectItemCaseSensitive(e, "pid");
    if (!cJSON_IsString(c) || !cJSON_IsNumber(t) || !cJSON_IsNumber(d) || !cJSON_IsNumber(p))
        return false;
    *cat = c->valuestring, *ts = t->valuedouble, *dur = d->valuedouble, *pid = p->valueint;
    return true;
}

static bool load_real(CmpResult *r, const char *file, GError **error)
{
    const cJSON *ev = events_of(r->real, file, error);
    if (!ev)
        return false;
    if (strcmp(generator_of(r->real), "fsdprun") != 0) {
        cfg_set_error(error, file, "otherData", "generator",
                      "expected \"fsdprun\" (a real run), got \"%s\"", generator_of(r->real));
        return false;
    }
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(r->real, "otherData"), "step_time_s");
    int n = cJSON_GetArraySize(steps);
    if (!cJSON_IsArray(steps) || n < 1) {
        cfg_set_error(error, file, "otherData", "step_time_s",
                      "expected a non-empty array of step times");
        return false;
    }
    double *v = g_new(double, n), *sorted = g_new(double, n);
    for (int i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetArrayItem(steps, i);
        if (!cJSON_IsNumber(x) || !(x->valuedouble > 0)) {
            cfg_set_error(error, file, "otherData", "step_time_s",
                          "expected positive numbers, got item %d", i);
            g_free(v), g_free(sorted);
            return false;
        }
        v[i] = sorted[i] = x->valuedouble;
    }
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_double);
    r->iterations = n;
    r->real_median_s = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    r->real_min_s = sorted[0], r->real_max_s = sorted[n - 1];
    for (int i = 0; i < n; i++)
        if (v[i] == sorted[(n - 1) / 2]) {
            r->median_iter = i;
            break;
        }
    g_free(v), g_free(sorted);
    GHashTable *pids = g_hash_table_new(g_direct_hash, g_direct_equal);
    const cJSON *e;
    cJSON_ArrayForEach(e, ev)
    {
        const char *cat;
        double ts, dur;
        int pid;
        if (!x_event(e, &cat, &ts, &dur, &pid))
            continue;
        g_hash_table_add(pids, GINT_TO_POINTER(pid));
        CmpKind *k = kind_get(r->kinds, cat);
        k->real_s += dur * 1e-6;
        k->real_calls += 1;
    }
    r->ranks = (int)g_hash_table_size(pids);
    g_hash_table_destroy(pids);
    if (r->ranks == 0) {
        cfg_set_error(error, file, "", "traceEvents",
                      "expected complete (\"X\") events of at least one rank, got none");
        return false;
    }
    for (guint i = 0; i < r->kinds->len; i++) {
        CmpKind *k = &g_array_index(r->kinds, CmpKind, i);
        k->real_s /= (double)r->ranks * n;
        k->real_calls /= (double)r->ranks * n;
    }
    return true;
}

/* Ranks in a simulated rank class, from its process name "rank class C (N ranks from rank R)". */
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
                3)
            g_hash_table_insert(sizes, GINT_TO_POINTER(pid->valueint), GINT_TO_POINTER(n));
    }
    return sizes;
}

static bool load_sim(CmpResult *r, const char *file, GError **error)
{
    const cJSON *ev = events_of(r->sim, file, error);
    if (!ev)
        return false;
    if (strcmp(generator_of(r->sim), "fsdpsim") != 0) {
        cfg_set_error(error, file, "otherData", "generator",
                      "expected \"fsdpsim\" (a simulated run, fsdpsim "
                      "--trace), got \"%s\"",
                      generator_of(r->sim));
        return false;
    }
    GHashTable *sizes = class_sizes(ev);
    double world = 0;
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, sizes);
    while (g_hash_table_iter_next(&it, &key, &value))
        world += GPOINTER_TO_INT(value);
    const cJSON *e;
    double end = 0;
    bool any = false;
    cJSON_ArrayForEach(e, ev)
    {
        const char *cat;
        double ts, dur;
        int pid;
        if (!x_event(e, &cat, &ts, &dur, &pid))
            continue;
        any = true;
        end = MAX(end, (ts + dur) * 1e-6);
        double weight =
            world > 0 ? GPOINTER_TO_INT(g_hash_table_lookup(sizes, GINT_TO_POINTER(pid))) / world
                      : 1;
        CmpKind *k = kind_get(r->kinds, cat);
        k->sim_s += dur * 1e-6 * weight;
        k->sim_calls += weight;
    }
    g_hash_table_destroy(sizes);
    if (!any) {
        cfg_set_error(error, file, "", "traceEvents", "expected complete (\"X\") events, got none");
        return false;
    }
    r->sim_s = end;
    return true;
}

bool cmp_load(const char *real_file, const char *sim_file, CmpResult *r, GError **error)
{
    memset(r, 0, sizeof *r);
    r->kinds = g_array_new(FALSE, TRUE, sizeof(CmpKind));
    r->real = cfg_parse_file(real_file, error);
    if (!r->real || !load_real(r, real_file, error))
        return false;
    r->sim = cfg_parse_file(sim_file, error);
    if (!r->sim || !load_sim(r, sim_file, error))
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

static void print_error(FILE *out, double e)
{
    if (isnan(e))
        fprintf(out, "%9s", "-");
    else
        fprintf(out, "%+8.1f%%", 100 * e);
}

void cmp_print_table(const CmpResult *r, const char *real_file, const char *sim_file, FILE *out)
{
    fprintf(out, "real       %s: %d measured iterations, %d ranks\n", real_file, r->iterations,
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
    char *text = cJSON_PrintUnformatted(root);
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

static int event_iter(const cJSON *e)
{
    const cJSON *it =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "args"), "iter");
    return cJSON_IsNumber(it) ? it->valueint : -1;
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

char *cmp_merged_trace(const CmpResult *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *out = cJSON_AddArrayToObject(root, "traceEvents");
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(r->real, "traceEvents"), *e;
    /* each rank's start of the median iteration */
    GHashTable *t0 = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    cJSON_ArrayForEach(e, ev)
    {
        const char *cat;
        double ts, dur;
        int pid;
        if (!x_event(e, &cat, &ts, &dur, &pid) || event_iter(e) != r->median_iter)
            continue;
        double *v = g_hash_table_lookup(t0, GINT_TO_POINTER(pid));
        if (!v) {
            v = g_new(double, 1);
            *v = ts;
            g_hash_table_insert(t0, GINT_TO_POINTER(pid), v);
        }
        *v = MIN(*v, ts);
    }
    cJSON_ArrayForEach(e, ev)
    {
        const cJSON *ph = cJSON_GetObjectItemCaseSensitive(e, "ph");
        bool x = cJSON_IsString(ph) && strcmp(ph->valuestring, "X") == 0;
        if (x && event_iter(e) != r->median_iter)
            continue;
        cJSON *copy = cJSON_Duplicate(e, true);
        int pid = cJSON_GetObjectItemCaseSensitive(e, "pid")->valueint;
        if (x) {
            double *shift = g_hash_table_lookup(t0, GINT_TO_POINTER(pid));
            double ts =
                cJSON_GetObjectItemCaseSensitive(e, "ts")->valuedouble - (shift ? *shift : 0);
            cJSON_ReplaceItemInObjectCaseSensitive(copy, "ts", cJSON_CreateNumber(ts));
        }
        prefix_process_name(copy, "real: ");
        cJSON_AddItemToArray(out, copy);
    }
    g_hash_table_destroy(t0);
    GHashTable *pids = g_hash_table_new(g_direct_hash, g_direct_equal);
    ev = cJSON_GetObjectItemCaseSensitive(r->sim, "traceEvents");
    cJSON_ArrayForEach(e, ev)
    {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "pid");
        if (!cJSON_IsNumber(p))
            continue;
        cJSON *copy = cJSON_Duplicate(e, true);
        int pid = SIM_PID_BASE + p->valueint;
        cJSON_ReplaceItemInObjectCaseSensitive(copy, "pid", cJSON_CreateNumber(pid));
        prefix_process_name(copy, "sim: ");
        cJSON_AddItemToArray(out, copy);
        g_hash_table_add(pids, GINT_TO_POINTER(pid));
    }
    /* real ranks first, then the simulated classes */
    for (int rank = 1; rank <= r->ranks; rank++)
        cJSON_AddItemToArray(out, sort_index(rank, rank));
    guint n_sim = 0;
    gpointer *keys = g_hash_table_get_keys_as_array(pids, &n_sim);
    int *sorted = g_new(int, MAX(n_sim, 1));
    for (guint i = 0; i < n_sim; i++)
        sorted[i] = GPOINTER_TO_INT(keys[i]);
    qsort(sorted, n_sim, sizeof *sorted, cmp_int);
    for (guint i = 0; i < n_sim; i++)
        cJSON_AddItemToArray(out, sort_index(sorted[i], sorted[i]));
    g_free(keys), g_free(sorted);
    g_hash_table_destroy(pids);
    cJSON_AddStringToObject(root, "displayTimeUnit", "ms");
    cJSON *other = cJSON_AddObjectToObject(root, "otherData");
    cJSON_AddStringToObject(other, "generator", "fsdpsim compare");
    cJSON_AddNumberToObject(other, "real_iteration", r->median_iter);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}
