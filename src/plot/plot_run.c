/* plot: figures of one simulated step, from the schedule and the simulated times. */
#include "plot.h"

#include <math.h>

#define GIB 1073741824.0

char *plot_run_title(const cJSON *o)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(o, "model_name");
    const cJSON *topo = cJSON_GetObjectItemCaseSensitive(o, "topology");
    const cJSON *strategy = cJSON_GetObjectItemCaseSensitive(o, "strategy");
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(o, "nodes");
    const cJSON *world = cJSON_GetObjectItemCaseSensitive(o, "world_size");
    /* model parallelism belongs in the title too: "tp 2 x pp 4" is half of what was simulated */
    GString *par = g_string_new(NULL);
    const char *dims[] = {"tp", "pp"};
    for (size_t k = 0; k < G_N_ELEMENTS(dims); k++) {
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, dims[k]), "size");
        if (cJSON_IsNumber(size) && size->valueint > 1)
            g_string_append_printf(par, "%s%s %d", par->len ? " x " : " with ", dims[k], size->valueint);
    }
    char *t = g_strdup_printf("%s, %s%s, %d x %s nodes (%d GPUs)", cJSON_IsString(model) ? model->valuestring : "?",
                              cJSON_IsString(strategy) ? strategy->valuestring : "?", par->str,
                              cJSON_IsNumber(nodes) ? nodes->valueint : 0,
                              cJSON_IsString(topo) ? topo->valuestring : "?",
                              cJSON_IsNumber(world) ? world->valueint : 0);
    g_string_free(par, TRUE);
    return t;
}

/* Colour categories of the timeline: compute, each collective kind, point-to-point, host, copies.
 * Fixed colours, so that a kind looks the same in every figure and every talk. */
enum { CAT_COMPUTE, CAT_COLL0, CAT_P2P = CAT_COLL0 + IR_COLL_KIND_COUNT, CAT_MEMCPY, CAT_HOST, CAT_COUNT };

static const char *category_name(int cat)
{
    if (cat >= CAT_COLL0 && cat < CAT_P2P)
        return ir_coll_kind_name((IrCollKind)(cat - CAT_COLL0));
    static const char *names[CAT_COUNT] = {[CAT_COMPUTE] = "compute", [CAT_P2P] = "send/recv",
                                           [CAT_MEMCPY] = "host<->device copy", [CAT_HOST] = "host"};
    return names[cat];
}

static const char *category_colour(int cat)
{
    return plot_kind_colour(cat == CAT_MEMCPY ? "memcpy" : category_name(cat));
}

static int op_category(const IrOp *op)
{
    switch (op->kind) {
    case IR_OP_COMPUTE: return CAT_COMPUTE;
    case IR_OP_COLL: return CAT_COLL0 + op->u.coll.coll;
    case IR_OP_SEND:
    case IR_OP_RECV: return CAT_P2P;
    case IR_OP_MEMCPY: return CAT_MEMCPY;
    case IR_OP_HOST: return CAT_HOST;
    default: return -1;
    }
}

/* Gantt chart: one row per (class, stream), top to bottom in schedule order. */
static bool figure_timeline(PlotSet *set, const Report *rep, const char *title, GError **error)
{
    const IrSchedule *sched = rep->sched;
    char *t = g_strdup_printf("One training step\n%s", title);
    PlotFigure *fig = plot_figure_new("timeline", t);
    g_free(t);
    GString *tics = g_string_new(NULL);
    int row = 0;
    int *first_row = g_new(int, sched->n_classes);
    for (int ci = 0; ci < sched->n_classes; ci++) {
        const IrClass *c = sched->classes[ci];
        first_row[ci] = row;
        for (int s = 0; s < c->n_streams; s++, row++) {
            char *label = sched->n_classes > 1 ? g_strdup_printf("class %d: %s", ci, c->streams[s].name)
                                               : g_strdup(c->streams[s].name);
            char *q = plot_quote(label);
            g_string_append_printf(tics, "%s\"%s\" %d", tics->len ? ", " : "", q, row);
            g_free(q);
            g_free(label);
        }
    }
    g_string_append(fig->plot, "plot ");
    int block = 0;
    for (int cat = 0; cat < CAT_COUNT; cat++) {
        GString *rows = g_string_new(NULL);
        for (int ci = 0; ci < sched->n_classes; ci++) {
            const IrClass *c = sched->classes[ci];
            const SimClassResult *cr = &rep->sim->classes[ci];
            g_assert(cr->gap_ops == 0); /* never a compact run (src/compact: --plot runs whole) */
            for (int i = 0; i < ir_class_n_ops(c); i++) {
                const IrOp *op = ir_op(c, i);
                int64_t start = sim_op_start_ns(cr, i), end = sim_op_end_ns(cr, i);
                if (op_category(op) != cat || end <= start)
                    continue;
                g_string_append_printf(rows, "%.6f %.6f %d\n", (double)start * 1e-6,
                                       (double)end * 1e-6, first_row[ci] + op->stream);
            }
        }
        if (rows->len) {
            g_string_append_printf(fig->data, "# %s: start_ms end_ms row\n%s\n\n", category_name(cat), rows->str);
            g_string_append_printf(fig->plot,
                                   "%s\"timeline.dat\" index %d using (($1+$2)/2):3:1:2:($3-0.38):($3+0.38) "
                                   "with boxxyerror fc rgb %s fs solid 1.0 noborder title \"%s\"",
                                   block ? ", \\\n        " : "", block, category_colour(cat), category_name(cat));
            block++;
        }
        g_string_free(rows, TRUE);
    }
    if (!block)
        g_string_append(fig->plot, "NaN notitle");
    g_string_append_c(fig->plot, '\n');
    g_string_append_printf(fig->settings,
                           "set xlabel \"time in the step (ms)\"\nset ytics (%s)\nset yrange [%g:%g]\n"
                           "set xrange [0:%.6f]\nunset grid\nset grid xtics\n"
                           /* under the whole figure: "outside bottom" under the plot area drops
                              the entries that do not fit its width */
                           "set key at screen 0.5, screen 0.02 center bottom horizontal maxrows 2\nset bmargin 7\n",
                           tics->str, row - 0.4, -0.6, sim_ns_to_s(rep->sim->makespan_ns) * 1e3);
    /* many classes x streams: smaller row labels, so that they stay apart (style.gp: 16 points) */
    if (row > 10)
        g_string_append_printf(fig->settings, "set ytics font \",%d\"\n", MAX(6, 16 * 10 / row));
    g_string_free(tics, TRUE);
    g_free(first_row);
    return plot_figure_finish(set, fig, error);
}

/* Memory in use over the step, per class, with the peak marked and the capacity as a line. */
static bool figure_memory(PlotSet *set, const Report *rep, const char *title, GError **error)
{
    const IrSchedule *sched = rep->sched;
    double reserved = rep->mem_reserved_bytes, capacity = rep->mem_capacity_bytes;
    char *t = g_strdup_printf("Memory per GPU over one step\n%s", title);
    PlotFigure *fig = plot_figure_new("memory", t);
    g_free(t);
    double end_ms = sim_ns_to_s(rep->sim->makespan_ns) * 1e3, y_max = capacity;
    g_string_append(fig->plot, "plot ");
    for (int ci = 0; ci < sched->n_classes; ci++) {
        const MemTracker *m = &rep->sim->classes[ci].mem;
        g_string_append_printf(fig->data, "# class %d: time_ms GiB (tensors + %.3f GiB reserved)\n", ci,
                               reserved / GIB);
        double last = reserved;
        g_string_append_printf(fig->data, "0 %.6f\n", reserved / GIB);
        for (guint k = 0; m->timeline && k < m->timeline->len; k++) {
            const MemSample *smp = &g_array_index(m->timeline, MemSample, k);
            last = (double)smp->bytes + reserved;
            g_string_append_printf(fig->data, "%.6f %.6f\n", (double)smp->time_ns * 1e-6, last / GIB);
        }
        g_string_append_printf(fig->data, "%.6f %.6f\n\n\n", end_ms, last / GIB);
        double peak = (double)m->peak + reserved;
        y_max = peak > y_max ? peak : y_max;
        g_string_append_printf(fig->settings,
                               "set label \"peak %.2f GiB\" at %.6f, %.6f point pt 7 ps 2 lc rgb okabe_vermillion "
                               "offset 1,0.8 front\n",
                               peak / GIB, (double)m->peak_time_ns * 1e-6, peak / GIB);
        char *name = sched->n_classes > 1 ? g_strdup_printf("class %d in use", ci) : g_strdup("in use");
        g_string_append_printf(fig->plot, "%s\"memory.dat\" index %d using 1:2 with steps lt %d lw 3 title \"%s\"",
                               ci ? ", \\\n        " : "", ci, ci + 1, name);
        g_free(name);
    }
    g_string_append_c(fig->plot, '\n');
    g_string_append_printf(fig->settings,
                           "set xlabel \"time in the step (ms)\"\nset ylabel \"GiB per GPU\"\n"
                           "set xrange [0:%.6f]\nset yrange [0:%.6f]\nset key outside bottom center horizontal\n"
                           "set arrow from graph 0, first %.6f to graph 1, first %.6f nohead front lw 3 dt 2 lc rgb okabe_black\n"
                           "set label \"capacity %.1f GiB%s\" at graph 0.01, first %.6f left offset 0,0.7 front\n",
                           end_ms, y_max / GIB * 1.15, capacity / GIB, capacity / GIB, capacity / GIB,
                           rep->oom ? ": does NOT fit" : "", capacity / GIB);
    return plot_figure_finish(set, fig, error);
}

/* What occupies memory at each class's peak: one stacked bar per rank class. */
static bool figure_memory_breakdown(PlotSet *set, const Report *rep, const char *title, GError **error)
{
    enum { SEGS = IR_MEM_CATEGORY_COUNT + 1 };
    static const char *names[SEGS] = {"parameters", "gradients", "optimizer state", "activations",
                                      "communication buffers", "reserved (CUDA, NCCL)"};
    static const char *colours[SEGS] = {"okabe_blue", "okabe_orange", "okabe_green", "okabe_vermillion",
                                        "okabe_purple", "grey"};
    int n = rep->sched->n_classes;
    double *x = g_new(double, n), *values = g_new0(double, (size_t)n * SEGS);
    char **labels = g_new0(char *, n + 1), **marks = g_new0(char *, n + 1);
    for (int ci = 0; ci < n; ci++) {
        const MemTracker *m = &rep->sim->classes[ci].mem;
        const IrClass *c = rep->sched->classes[ci];
        x[ci] = ci;
        labels[ci] = n > 1 ? g_strdup_printf("class %d (%d GPUs)", ci, c->n_ranks) : g_strdup("at the peak");
        double total = rep->mem_reserved_bytes;
        for (int k = 0; k < IR_MEM_CATEGORY_COUNT; k++) {
            values[ci * SEGS + k] = (double)m->at_peak[k] / GIB;
            total += (double)m->at_peak[k];
        }
        values[ci * SEGS + IR_MEM_CATEGORY_COUNT] = rep->mem_reserved_bytes / GIB;
        marks[ci] = total > rep->mem_capacity_bytes ? g_strdup_printf("OOM: %.1f GiB", total / GIB)
                                                    : g_strdup_printf("%.1f GiB", total / GIB);
    }
    char *t = g_strdup_printf("Memory per GPU at the peak\n%s", title);
    PlotFigure *fig = plot_figure_new("memory_breakdown", t);
    g_free(t);
    g_string_append(fig->settings, "set ylabel \"GiB per GPU\"\n");
    char *cap = g_strdup_printf("capacity %.1f GiB", rep->mem_capacity_bytes / GIB);
    plot_stacked_bars(fig, n, x, labels, SEGS, names, colours, values, marks, rep->mem_capacity_bytes / GIB, cap);
    g_free(cap);
    g_free(x);
    g_free(values);
    g_strfreev(labels);
    g_strfreev(marks);
    return plot_figure_finish(set, fig, error);
}

bool plot_run_figures(PlotSet *set, const Report *rep, GError **error)
{
    char *json = report_to_json(rep);
    cJSON *o = cJSON_Parse(json);
    cJSON_free(json);
    char *title = plot_run_title(o);
    cJSON_Delete(o);
    bool ok = figure_timeline(set, rep, title, error) && figure_memory(set, rep, title, error) &&
              figure_memory_breakdown(set, rep, title, error);
    g_free(title);
    return ok;
}
