/* search: the results file (JSON Lines), the summary table and the CSV. */
#include "search.h"
#include "../util/cfg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

char *search_record_line(const cJSON *record)
{
    char *text = cJSON_PrintUnformatted(record);
    char *line = g_strdup(text);
    cJSON_free(text);
    return line;
}

bool search_results_read(const char *file, GHashTable *out, bool cut_partial, GError **error)
{
    char *text = NULL;
    gsize len = 0;
    GError *io = NULL;
    if (!g_file_get_contents(file, &text, &len, &io)) {
        bool missing = g_error_matches(io, G_FILE_ERROR, G_FILE_ERROR_NOENT);
        if (!missing || !cut_partial)
            cfg_input_error(error, "%s: cannot read file: %s", file, io->message);
        g_error_free(io);
        return missing && cut_partial; /* --resume of a search not yet started */
    }
    /* a killed writer can leave a last line without its newline: not a record */
    gsize complete = len;
    while (complete > 0 && text[complete - 1] != '\n')
        complete--;
    bool ok = true;
    int line_no = 0;
    for (char *line = text, *next; ok && line < text + complete; line = next) {
        char *nl = memchr(line, '\n', (size_t)(text + complete - line));
        *nl = '\0';
        next = nl + 1;
        line_no++;
        if (!*line)
            continue;
        cJSON *rec = cJSON_Parse(line);
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(rec, "key");
        if (!cJSON_IsString(key)) {
            ok = cfg_input_error(error,
                                 "%s: line %d: expected a search record (a JSON object "
                                 "with a \"key\")",
                                 file, line_no);
            cJSON_Delete(rec);
            break;
        }
        g_hash_table_replace(out, g_strdup(key->valuestring), rec);
    }
    if (ok && cut_partial && complete < len && truncate(file, (off_t)complete) != 0)
        ok = cfg_input_error(error, "%s: cannot cut its last, partial line: %s", file,
                             g_strerror(errno));
    g_free(text);
    return ok;
}

static gint by_objective(gconstpointer a, gconstpointer b)
{
    const cJSON *ra = *(cJSON *const *)a, *rb = *(cJSON *const *)b;
    double oa = search_record_objective(ra), ob = search_record_objective(rb);
    if (oa != ob)
        return oa < ob ? -1 : 1;
    return strcmp(cJSON_GetObjectItemCaseSensitive(ra, "key")->valuestring,
                  cJSON_GetObjectItemCaseSensitive(rb, "key")->valuestring);
}

GPtrArray *search_results_sorted(GHashTable *records)
{
    GPtrArray *all = g_ptr_array_new();
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, records);
    while (g_hash_table_iter_next(&it, &k, &v))
        g_ptr_array_add(all, v);
    g_ptr_array_sort(all, by_objective);
    return all;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const cJSON *obj(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

/* "2.31 s", "1.2 h", "1840 node-h" */
static char *objective_text(SearchObjective o, double v)
{
    switch (o) {
    case SEARCH_OBJ_STEP:
        return g_strdup_printf("%.3f s", v);
    case SEARCH_OBJ_TIME:
        return v >= 86400 ? g_strdup_printf("%.2f d", v / 86400)
                          : g_strdup_printf("%.2f h", v / 3600);
    default:
        return g_strdup_printf("%.0f %s", v, search_objective_name(o));
    }
}

/* Why `r` loses to `best`: the part of the step time that grew most, or the nodes it charges. */
static char *why_loses(const SearchSpec *spec, const cJSON *best, const cJSON *r)
{
    const cJSON *fb = obj(best, "figures"), *fr = obj(r, "figures");
    const cJSON *tb = obj(fb, "time"), *tr = obj(fr, "time");
    double dstep = num(fr, "step_time_s") - num(fb, "step_time_s");
    if (spec->objective >= SEARCH_OBJ_NODE_HOURS && num(r, "nodes") != num(best, "nodes") &&
        dstep <= 0)
        return g_strdup_printf("charges %.0f nodes for %.0f%% less time", num(r, "nodes"),
                               -100 * dstep / num(fb, "step_time_s"));
    if (spec->objective != SEARCH_OBJ_STEP) {
        double tok_b = num(fb, "tokens_per_s"), tok_r = num(fr, "tokens_per_s");
        if (tok_r < tok_b * 0.999 && dstep <= 0)
            return g_strdup_printf("%.0f%% fewer tokens/s", 100 * (1 - tok_r / tok_b));
    }
    static const struct {
        const char *key, *words;
    } parts[] = {{"compute_s", "compute"},
                 {"exposed_communication_s", "exposed communication"},
                 {"overlap_cost_s", "overlap slowdown"},
                 {"host_wait_s", "host wait"}};
    double explained = 0, most = 0;
    const char *what = NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(parts); i++) {
        double d = num(tr, parts[i].key) - num(tb, parts[i].key);
        explained += d;
        if (d > most)
            most = d, what = parts[i].words;
    }
    if (dstep - explained > most) /* pipeline bubble, idle ranks */
        most = dstep - explained, what = "bubble and idle time";
    if (!what || dstep <= 0)
        return g_strdup("ties on step time");
    return g_strdup_printf("step +%.0f ms (+%.1f%%), most from %s +%.0f ms", 1e3 * dstep,
                           100 * dstep / num(fb, "step_time_s"), what, 1e3 * most);
}

static char *options_text(const cJSON *r)
{
    GString *s = g_string_new(NULL);
    for (const cJSON *o = obj(r, "options")->child; o; o = o->next)
        g_string_append_printf(s, "%s%s=%s", s->len ? " " : "", o->string, o->valuestring);
    if (cJSON_IsNumber(obj(r, "grad_accum")))
        g_string_append_printf(s, " (grad-accum %.0f)", num(r, "grad_accum"));
    return g_string_free(s, FALSE);
}

static int by_count_desc(gconstpointer a, gconstpointer b, gpointer counts)
{
    int ca = GPOINTER_TO_INT(g_hash_table_lookup(counts, *(char *const *)a));
    int cb = GPOINTER_TO_INT(g_hash_table_lookup(counts, *(char *const *)b));
    return ca != cb ? cb - ca : strcmp(*(char *const *)a, *(char *const *)b);
}

double search_record_value(const SearchSpec *spec, const cJSON *r, int which)
{
    const cJSON *f = obj(r, "figures");
    if (which == SEARCH_OBJ_COUNT)
        return num(obj(f, "memory"), "peak_bytes") / (1 << 30);
    SearchSpec s = *spec;
    s.objective = (SearchObjective)which;
    return search_objective_value(&s, f, (int)num(r, "machine_gpus_per_node"),
                                  (int)num(r, "machine_cores_per_node"), (int)num(r, "nodes"));
}

static int by_a_b_index(const void *x, const void *y)
{
    const SearchParetoPoint *p = x, *q = y;
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    if (p->b != q->b)
        return p->b < q->b ? -1 : 1;
    return (p->index > q->index) - (p->index < q->index);
}

GArray *search_pareto(const SearchSpec *spec, GPtrArray *ok, int a, int b)
{
    GArray *points = g_array_sized_new(FALSE, FALSE, sizeof(SearchParetoPoint), ok->len);
    for (guint i = 0; i < ok->len; i++) {
        const cJSON *r = g_ptr_array_index(ok, i);
        SearchParetoPoint p = {search_record_value(spec, r, a), search_record_value(spec, r, b), i,
                               false};
        g_array_append_val(points, p);
    }
    g_array_sort(points, by_a_b_index);
    double best_b = INFINITY;
    for (guint i = 0; i < points->len; i++) {
        SearchParetoPoint *p = &g_array_index(points, SearchParetoPoint, i);
        if ((p->front = p->b < best_b))
            best_b = p->b;
    }
    return points;
}

static void print_pareto(const SearchSpec *spec, GPtrArray *ok, SearchObjective a,
                         SearchObjective b, FILE *out)
{
    GArray *points = search_pareto(spec, ok, a, b);
    fprintf(out, "\nPareto front (%s, %s):\n", search_objective_name(a), search_objective_name(b));
    for (guint i = 0; i < points->len; i++) {
        const SearchParetoPoint *p = &g_array_index(points, SearchParetoPoint, i);
        if (!p->front)
            continue;
        char *ta = objective_text(a, p->a), *tb = objective_text(b, p->b);
        char *opts = options_text(g_ptr_array_index(ok, p->index));
        fprintf(out, "  %12s %14s  %s\n", ta, tb, opts);
        g_free(ta), g_free(tb), g_free(opts);
    }
    g_array_free(points, TRUE);
}

void search_print_summary(const SearchSpec *spec, GHashTable *records, int top,
                          SearchObjective pareto_a, SearchObjective pareto_b, FILE *out)
{
    GPtrArray *sorted = search_results_sorted(records);
    GHashTable *counts = g_hash_table_new(g_str_hash, g_str_equal);
    GPtrArray *reasons = g_ptr_array_new();
    GPtrArray *ok = g_ptr_array_new();
    int simulated = 0;
    for (guint i = 0; i < sorted->len; i++) {
        const cJSON *r = g_ptr_array_index(sorted, i);
        const cJSON *stage = obj(r, "stage");
        simulated += cJSON_IsString(stage) && !strcmp(stage->valuestring, "full");
        if (isfinite(search_record_objective(r))) {
            g_ptr_array_add(ok, (gpointer)r);
            continue;
        }
        const char *why = search_record_reason(r);
        why = why ? why : "not simulated (bound only)";
        int c = GPOINTER_TO_INT(g_hash_table_lookup(counts, why));
        if (!c)
            g_ptr_array_add(reasons, (gpointer)why);
        g_hash_table_insert(counts, (gpointer)why, GINT_TO_POINTER(c + 1));
    }
    g_ptr_array_sort_with_data(reasons, by_count_desc, counts);
    GString *pruned = g_string_new(NULL);
    for (guint i = 0; i < reasons->len; i++) {
        const char *why = g_ptr_array_index(reasons, i);
        g_string_append_printf(pruned, "%s%d %s", i ? ", " : "",
                               GPOINTER_TO_INT(g_hash_table_lookup(counts, why)), why);
    }
    fprintf(out, "fsdpsim search: %u configurations, %d simulated, %u pass, %u pruned%s%s\n",
            sorted->len, simulated, ok->len, sorted->len - ok->len, pruned->len ? ": " : "",
            pruned->str);
    if (!ok->len) {
        fprintf(out, "no configuration satisfies the constraints\n");
    } else {
        const cJSON *best = g_ptr_array_index(ok, 0);
        /* the objective's column, unless it would be the step column again (--objective step) */
        bool objective_column = spec->objective != SEARCH_OBJ_STEP;
        char *head = objective_column
                         ? g_strdup_printf(" %12s", search_objective_name(spec->objective))
                         : g_strdup("");
        fprintf(out, "\n%-4s%s %9s %10s %5s  %s\n", "rank", head, "step", "memory", "MFU",
                "options; why a runner-up loses to the best");
        g_free(head);
        for (guint i = 0; i < ok->len && (int)i < top; i++) {
            const cJSON *r = g_ptr_array_index(ok, i);
            const cJSON *f = obj(r, "figures");
            char *text = objective_text(spec->objective, search_record_objective(r));
            char *o = objective_column ? g_strdup_printf(" %12s", text) : g_strdup("");
            g_free(text);
            char *opts = options_text(r);
            char *why = i ? why_loses(spec, best, r) : g_strdup("best");
            fprintf(out, "%-4u%s %7.3f s %6.1f GiB %4.0f%%  %s; %s\n", i + 1, o,
                    num(f, "step_time_s"), num(obj(f, "memory"), "peak_bytes") / (1 << 30),
                    100 * num(f, "mfu"), opts, why);
            g_free(o), g_free(opts), g_free(why);
        }
        if (pareto_b < SEARCH_OBJ_COUNT)
            print_pareto(spec, ok, pareto_a, pareto_b, out);
    }
    g_string_free(pruned, TRUE);
    g_ptr_array_free(reasons, TRUE);
    g_ptr_array_free(ok, TRUE);
    g_ptr_array_free(sorted, TRUE);
    g_hash_table_destroy(counts);
}

bool search_write_csv(const SearchSpec *spec, GHashTable *records, const char *file, GError **error)
{
    GPtrArray *sorted = search_results_sorted(records);
    GString *s = g_string_new(NULL);
    const cJSON *first = sorted->len ? g_ptr_array_index(sorted, 0) : NULL;
    g_string_append(s, "key,status,reason,objective,step_time_s,tokens_per_s,mfu,peak_bytes,nodes");
    for (const cJSON *o = first ? obj(first, "options")->child : NULL; o; o = o->next)
        g_string_append_printf(s, ",--%s", o->string);
    g_string_append_c(s, '\n');
    for (guint i = 0; i < sorted->len; i++) {
        const cJSON *r = g_ptr_array_index(sorted, i);
        const cJSON *f = obj(r, "figures");
        const char *reason = search_record_reason(r);
        double o = search_record_objective(r);
        g_string_append_printf(s, "\"%s\",%s,\"%s\",", obj(r, "key")->valuestring,
                               obj(r, "status")->valuestring, reason ? reason : "");
        if (isfinite(o))
            g_string_append_printf(s, "%.9g", o);
        if (f)
            g_string_append_printf(s, ",%.9g,%.9g,%.6g,%.0f,%.0f", num(f, "step_time_s"),
                                   num(f, "tokens_per_s"), num(f, "mfu"),
                                   num(obj(f, "memory"), "peak_bytes"), num(r, "nodes"));
        else
            g_string_append_printf(s, ",,,,,%.0f", num(r, "nodes"));
        for (const cJSON *v = obj(r, "options")->child; v; v = v->next)
            g_string_append_printf(s, ",%s", v->valuestring);
        g_string_append_c(s, '\n');
    }
    GError *io = NULL;
    bool ok = g_file_set_contents(file, s->str, (gssize)s->len, &io);
    if (!ok) {
        cfg_input_error(error, "option --csv: cannot write %s: %s", file, io->message);
        g_error_free(io);
    }
    g_string_free(s, TRUE);
    g_ptr_array_free(sorted, TRUE);
    (void)spec;
    return ok;
}
