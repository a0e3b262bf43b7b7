/* plot: real against simulated, from two Chrome traces. Reads fsdpsim's own traces
 * (report/trace.c: "cat" is the op kind) and PyTorch profiler (Kineto) traces, whose GPU kernels
 * have cat "kernel" and NCCL's kernel names (ncclKernel_AllGather_RING_LL_Sum_bf16...). */
#include "plot.h"
#include "../util/cfg.h"

#include <math.h>
#include <string.h>

static const struct {
    const char *kind, *colour;
} kinds[] = {
    {"compute", "okabe_blue"},       {"allgather", "okabe_orange"}, {"reduce_scatter", "okabe_vermillion"},
    {"allreduce", "okabe_green"},    {"broadcast", "okabe_purple"}, {"alltoall", "okabe_yellow"},
    {"send/recv", "okabe_sky"},      {"memcpy", "okabe_black"},     {"host", "grey"},
};
enum { N_KINDS = G_N_ELEMENTS(kinds) };

const char *plot_kind_colour(const char *kind)
{
    for (int k = 0; k < N_KINDS; k++)
        if (!strcmp(kinds[k].kind, kind))
            return kinds[k].colour;
    return "grey";
}

/* The kind of a trace event, or -1 for events not compared (CPU operators, annotations). */
static int event_kind(const char *cat, const char *name)
{
    static const struct {
        const char *needle;
        int kind;
    } nccl[] = {{"AllGather", 1}, {"ReduceScatter", 2}, {"AllReduce", 3}, {"Broadcast", 4},
                {"AllToAll", 5},  {"SendRecv", 6},      {"Send", 6},      {"Recv", 6}};
    if (!strcmp(cat, "kernel")) { /* Kineto */
        if (strstr(name, "nccl") || strstr(name, "NCCL"))
            for (size_t i = 0; i < G_N_ELEMENTS(nccl); i++)
                if (strstr(name, nccl[i].needle))
                    return nccl[i].kind;
        return 0;
    }
    if (!strcmp(cat, "gpu_memcpy") || !strcmp(cat, "memcpy"))
        return 7;
    if (!strcmp(cat, "send") || !strcmp(cat, "recv"))
        return 6;
    for (int k = 0; k < N_KINDS; k++)
        if (!strcmp(cat, kinds[k].kind))
            return k;
    return -1;
}

typedef struct {
    double start_us, end_us;
    int kind, row;
} TraceEvent;

typedef struct {
    GArray *events;   /* of TraceEvent, times from the trace's first event */
    GPtrArray *rows;  /* thread names, in first-seen order */
    double busy_us[N_KINDS];
    double span_us;
} Trace;

static const char *meta_name(const cJSON *events, double pid, double tid, bool thread)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, events)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
        const cJSON *ph = cJSON_GetObjectItemCaseSensitive(e, "ph");
        if (!cJSON_IsString(ph) || strcmp(ph->valuestring, "M") || !cJSON_IsString(name) ||
            strcmp(name->valuestring, thread ? "thread_name" : "process_name"))
            continue;
        if (cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "pid")) != pid ||
            (thread && cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "tid")) != tid))
            continue;
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "args"), "name");
        if (cJSON_IsString(n))
            return n->valuestring;
    }
    return NULL;
}

static bool trace_load(const char *file, Trace *t, GError **error)
{
    char *text = NULL;
    GError *io = NULL;
    if (!g_file_get_contents(file, &text, NULL, &io)) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT, "%s: cannot read: %s", file, io->message);
        g_error_free(io);
        return false;
    }
    cJSON *root = cJSON_Parse(text);
    g_free(text);
    const cJSON *events = cJSON_IsArray(root) ? root : cJSON_GetObjectItemCaseSensitive(root, "traceEvents");
    if (!cJSON_IsArray(events)) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT, "%s: field 'traceEvents': expected a Chrome trace (JSON "
                    "with an array of events; gunzip .json.gz first), got %s", file,
                    root ? "no such array" : "text that is not JSON");
        cJSON_Delete(root);
        return false;
    }
    t->events = g_array_new(FALSE, FALSE, sizeof(TraceEvent));
    t->rows = g_ptr_array_new_with_free_func(g_free);
    GHashTable *row_of = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    double t0 = INFINITY, t1 = -INFINITY;
    const cJSON *e;
    cJSON_ArrayForEach(e, events)
    {
        const cJSON *ph = cJSON_GetObjectItemCaseSensitive(e, "ph");
        const cJSON *cat = cJSON_GetObjectItemCaseSensitive(e, "cat");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(e, "ts");
        const cJSON *dur = cJSON_GetObjectItemCaseSensitive(e, "dur");
        if (!cJSON_IsString(ph) || strcmp(ph->valuestring, "X") || !cJSON_IsString(cat) || !cJSON_IsNumber(ts) ||
            !cJSON_IsNumber(dur) || !(dur->valuedouble > 0))
            continue;
        int kind = event_kind(cat->valuestring, cJSON_IsString(name) ? name->valuestring : "");
        if (kind < 0)
            continue;
        double pid = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "pid"));
        double tid = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "tid"));
        char *key = g_strdup_printf("%.17g/%.17g", pid, tid);
        gpointer found;
        if (!g_hash_table_lookup_extended(row_of, key, NULL, &found)) {
            const char *pname = meta_name(events, pid, tid, false);
            const char *tname = meta_name(events, pid, tid, true);
            char *label = tname ? g_strdup(tname) : g_strdup_printf("tid %.0f", tid);
            if (pname && strncmp(pname, "rank class 0 ", 13) != 0) { /* fsdpsim's class 0: no prefix */
                char *l = g_strdup_printf("%s: %s", pname, label);
                g_free(label);
                label = l;
            }
            found = GINT_TO_POINTER(t->rows->len);
            g_ptr_array_add(t->rows, label);
            g_hash_table_insert(row_of, key, found);
        } else {
            g_free(key);
        }
        TraceEvent ev = {ts->valuedouble, ts->valuedouble + dur->valuedouble, kind, GPOINTER_TO_INT(found)};
        t0 = fmin(t0, ev.start_us), t1 = fmax(t1, ev.end_us);
        t->busy_us[kind] += dur->valuedouble;
        g_array_append_val(t->events, ev);
    }
    g_hash_table_destroy(row_of);
    cJSON_Delete(root);
    if (!t->events->len) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT, "%s: field 'traceEvents': expected complete (\"X\") events "
                    "of compute or communication, got none", file);
        return false;
    }
    for (guint i = 0; i < t->events->len; i++) {
        TraceEvent *ev = &g_array_index(t->events, TraceEvent, i);
        ev->start_us -= t0, ev->end_us -= t0;
    }
    t->span_us = t1 - t0;
    return true;
}

static void trace_clear(Trace *t)
{
    if (t->events)
        g_array_free(t->events, TRUE);
    if (t->rows)
        g_ptr_array_free(t->rows, TRUE);
}

/* Both timelines on one time axis, real rows above simulated rows. */
static bool figure_timeline(PlotSet *set, const Trace *tr, const char *title, GError **error)
{
    char *t = g_strdup_printf("Real (top) and simulated (bottom)\n%s", title);
    PlotFigure *fig = plot_figure_new("compare_timeline", t);
    g_free(t);
    GString *tics = g_string_new(NULL);
    int offset[2] = {0, (int)tr[0].rows->len + 1}; /* a gap row between the two */
    for (int w = 0; w < 2; w++)
        for (guint r = 0; r < tr[w].rows->len; r++) {
            char *q = plot_quote(g_ptr_array_index(tr[w].rows, r));
            g_string_append_printf(tics, "%s\"%s: %s\" %d", tics->len ? ", " : "", w ? "sim" : "real", q,
                                   offset[w] + (int)r);
            g_free(q);
        }
    g_string_append(fig->plot, "plot ");
    int block = 0;
    for (int k = 0; k < N_KINDS; k++) {
        GString *rows = g_string_new(NULL);
        for (int w = 0; w < 2; w++)
            for (guint i = 0; i < tr[w].events->len; i++) {
                const TraceEvent *ev = &g_array_index(tr[w].events, TraceEvent, i);
                if (ev->kind == k)
                    g_string_append_printf(rows, "%.6f %.6f %d\n", ev->start_us * 1e-3, ev->end_us * 1e-3,
                                           offset[w] + ev->row);
            }
        if (rows->len) {
            g_string_append_printf(fig->data, "# %s: start_ms end_ms row\n%s\n\n", kinds[k].kind, rows->str);
            g_string_append_printf(fig->plot,
                                   "%s\"compare_timeline.dat\" index %d using (($1+$2)/2):3:1:2:($3-0.38):($3+0.38) "
                                   "with boxxyerror fc rgb %s fs solid 1.0 noborder title \"%s\"",
                                   block ? ", \\\n        " : "", block, kinds[k].colour, kinds[k].kind);
            block++;
        }
        g_string_free(rows, TRUE);
    }
    g_string_append_c(fig->plot, '\n');
    int n_rows = offset[1] + (int)tr[1].rows->len;
    g_string_append_printf(fig->settings,
                           "set xlabel \"time from the first event (ms)\"\nset ytics (%s)\nset yrange [%g:-0.6]\n"
                           "set xrange [0:%.6f]\nunset grid\nset grid xtics\nset key outside bottom center horizontal maxcols 4\n"
                           "set arrow from graph 0, first %g to graph 1, first %g nohead lw 2 dt 2 lc rgb okabe_black\n",
                           tics->str, n_rows - 0.4, fmax(tr[0].span_us, tr[1].span_us) * 1e-3, offset[1] - 1.0,
                           offset[1] - 1.0);
    g_string_free(tics, TRUE);
    return plot_figure_finish(set, fig, error);
}

/* Busy time per op kind, real and simulated side by side, the relative error above each pair. */
static bool figure_error(PlotSet *set, const Trace *tr, const char *title, GError **error)
{
    char *t = g_strdup_printf("Busy time per op kind: real against simulated\n%s", title);
    PlotFigure *fig = plot_figure_new("compare_error", t);
    g_free(t);
    GString *tics = g_string_new(NULL);
    double y_max = 0;
    int x = 0;
    g_string_append(fig->data, "# x kind real_ms simulated_ms error_percent ((sim - real) / real)\n");
    for (int k = 0; k < N_KINDS; k++) {
        double real = tr[0].busy_us[k] * 1e-3, sim = tr[1].busy_us[k] * 1e-3;
        if (real <= 0 && sim <= 0)
            continue;
        double err = real > 0 ? 100 * (sim - real) / real : NAN;
        g_string_append_printf(fig->data, "%d %s %.6f %.6f %.3f\n", x, kinds[k].kind, real, sim, err);
        g_string_append_printf(tics, "%s\"%s\" %d", tics->len ? ", " : "", kinds[k].kind, x);
        y_max = fmax(y_max, fmax(real, sim));
        if (!isnan(err))
            g_string_append_printf(fig->settings, "set label \"%+.1f %%\" at %d, %.6f center offset 0,0.8 front\n",
                                   err, x, fmax(real, sim));
        x++;
    }
    g_string_append_printf(fig->settings,
                           "set xtics (%s) rotate by -25 left\nset xrange [-0.7:%g]\nset yrange [0:%.6f]\nset ylabel \"busy time (ms)\"\n"
                           "set key outside bottom center horizontal\nunset grid\nset grid ytics\n",
                           tics->str, x - 0.3, y_max * 1.2 + 1e-9);
    g_string_free(tics, TRUE);
    g_string_append(fig->plot,
                    "plot \"compare_error.dat\" using ($1-0.2):3:($1-0.38):($1-0.02):(0):3 with boxxyerror "
                    "fc rgb okabe_black fs solid 0.35 noborder title \"real\", \\\n"
                    "        \"\" using ($1+0.2):4:($1+0.02):($1+0.38):(0):4 with boxxyerror fc rgb okabe_blue "
                    "fs solid 1.0 noborder title \"simulated\"\n");
    return plot_figure_finish(set, fig, error);
}

bool plot_compare_traces(PlotSet *set, const char *real_file, const char *sim_file, const char *title,
                         GString *table, GError **error)
{
    Trace tr[2] = {{0}, {0}};
    bool ok = trace_load(real_file, &tr[0], error) && trace_load(sim_file, &tr[1], error);
    if (ok && table) {
        g_string_append_printf(table, "%-16s %12s %12s %9s\n", "kind", "real ms", "simulated ms", "error");
        for (int k = 0; k < N_KINDS; k++) {
            double real = tr[0].busy_us[k] * 1e-3, sim = tr[1].busy_us[k] * 1e-3;
            if (real > 0)
                g_string_append_printf(table, "%-16s %12.3f %12.3f %8.1f%%\n", kinds[k].kind, real, sim,
                                       100 * (sim - real) / real);
            else if (sim > 0) /* no relative error against nothing */
                g_string_append_printf(table, "%-16s %12.3f %12.3f %9s\n", kinds[k].kind, real, sim, "-");
        }
        g_string_append_printf(table, "%-16s %12.3f %12.3f %8.1f%%\n", "span", tr[0].span_us * 1e-3,
                               tr[1].span_us * 1e-3, 100 * (tr[1].span_us - tr[0].span_us) / tr[0].span_us);
    }
    ok = ok && (!set || (figure_timeline(set, tr, title, error) && figure_error(set, tr, title, error)));
    trace_clear(&tr[0]);
    trace_clear(&tr[1]);
    return ok;
}
