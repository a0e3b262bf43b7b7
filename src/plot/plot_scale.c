/* plot: the scaling study. Reads the --json objects of the points (one simulation per strategy
 * and node count) and writes the CSV and the four figures. */
#include "plot.h"

#include <math.h>

#define GIB 1073741824.0

static double num(const cJSON *o, const char *path)
{
    /* "a.b.c": nested objects; NaN when absent, so a missing field shows as a gap, not as 0 */
    char **keys = g_strsplit(path, ".", -1);
    const cJSON *v = o;
    for (char **k = keys; *k && v; k++)
        v = cJSON_GetObjectItemCaseSensitive(v, *k);
    g_strfreev(keys);
    return cJSON_IsNumber(v) ? v->valuedouble : cJSON_IsBool(v) ? (cJSON_IsTrue(v) ? 1 : 0) : NAN;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static const cJSON *point(const PlotScale *sc, int s, int n)
{
    return sc->points[s * sc->n_nodes + n];
}

/* tokens per second for token models, samples (images) per second otherwise */
static bool token_model(const PlotScale *sc)
{
    return !isnan(num(point(sc, 0, 0), "tokens_per_s"));
}

static double per_gpu(const PlotScale *sc, const cJSON *p)
{
    double rate = num(p, token_model(sc) ? "tokens_per_s" : "samples_per_s");
    return rate / num(p, "world_size");
}

static bool oom(const cJSON *p)
{
    return num(p, "memory.oom") == 1;
}

/* Scaling efficiency: throughput per GPU relative to the smallest node count at which the
 * strategy fits in memory (the smallest simulated when it never fits). */
static double efficiency(const PlotScale *sc, int s, int n)
{
    int base = 0;
    while (base < sc->n_nodes - 1 && oom(point(sc, s, base)))
        base++;
    if (base == sc->n_nodes - 1 && oom(point(sc, s, base)))
        base = 0;
    return per_gpu(sc, point(sc, s, n)) / per_gpu(sc, point(sc, s, base));
}

/* bubble_s comes with pipeline parallelism; before that (or for DDP/FSDP) it is 0 */
static void breakdown(const cJSON *p, double out[4])
{
    double step = num(p, "step_time_s"), compute = num(p, "time.compute_s");
    double exposed = num(p, "time.exposed_communication_s"), bubble = num(p, "time.bubble_s");
    bubble = isnan(bubble) ? 0 : bubble;
    out[0] = compute, out[1] = exposed, out[2] = bubble;
    out[3] = fmax(0, step - compute - exposed - bubble);
}

static const char *mem_keys[] = {"params", "grads", "optimizer", "activations", "comm_buffers", "reserved"};
enum { MEM_SEGS = G_N_ELEMENTS(mem_keys) };

char *plot_scale_csv(const PlotScale *sc)
{
    GString *s = g_string_new("model,topology,strategy,nodes,gpus,step_time_s,throughput_per_gpu,throughput_unit,"
                              "scaling_efficiency,tflops_per_gpu,mfu,compute_s,exposed_communication_s,bubble_s,"
                              "other_wait_s,memory_peak_bytes,memory_capacity_bytes,oom");
    for (int k = 0; k < MEM_SEGS; k++)
        g_string_append_printf(s, ",memory_%s_bytes", mem_keys[k]);
    g_string_append_c(s, '\n');
    const char *unit = token_model(sc) ? "tokens/s" : "samples/s";
    for (int si = 0; si < sc->n_strategies; si++)
        for (int n = 0; n < sc->n_nodes; n++) {
            const cJSON *p = point(sc, si, n);
            double b[4];
            breakdown(p, b);
            /* names are quoted as RFC 4180 says when they hold a comma */
            g_string_append_printf(s, "\"%s\",%s,%s,%d,%d,%.9g,%.6g,%s,%.6g,%.6g,%.6g,%.9g,%.9g,%.9g,%.9g,%.0f,%.0f,%s",
                                   str(p, "model_name"), str(p, "topology"), sc->strategies[si], sc->nodes[n],
                                   (int)num(p, "world_size"), num(p, "step_time_s"), per_gpu(sc, p), unit,
                                   efficiency(sc, si, n), num(p, "tflops_per_gpu"), num(p, "mfu"), b[0], b[1],
                                   b[2], b[3], num(p, "memory.peak_bytes"), num(p, "memory.capacity_bytes"),
                                   oom(p) ? "true" : "false");
            for (int k = 0; k < MEM_SEGS; k++) {
                char *key = g_strdup_printf("memory.breakdown.%s", mem_keys[k]);
                double v = num(p, key);
                g_string_append_printf(s, ",%.0f", isnan(v) ? 0 : v);
                g_free(key);
            }
            g_string_append_c(s, '\n');
        }
    return g_string_free(s, FALSE);
}

static char *scale_title(const PlotScale *sc, const char *what)
{
    const cJSON *p = point(sc, 0, 0);
    int gpn = (int)num(p, "gpus_per_node");
    if (sc->n_nodes == 1)
        return g_strdup_printf("%s\n%s on %s, %d nodes x %d GPUs", what, str(p, "model_name"), str(p, "topology"),
                               sc->nodes[0], gpn);
    return g_strdup_printf("%s\n%s on %s, %d to %d nodes x %d GPUs", what, str(p, "model_name"), str(p, "topology"),
                           sc->nodes[0], sc->nodes[sc->n_nodes - 1], gpn);
}

/* Throughput per GPU or efficiency over GPUs: one line per strategy, points that do not fit in
 * memory drawn as crosses off the line. */
static bool figure_lines(PlotSet *set, const PlotScale *sc, bool eff, GError **error)
{
    char *t = scale_title(sc, eff ? "Scaling efficiency" : "Throughput per GPU");
    PlotFigure *fig = plot_figure_new(eff ? "efficiency" : "throughput", t);
    g_free(t);
    bool any_oom = false;
    double x_min = INFINITY, x_max = 0;
    g_string_append(fig->plot, "plot ");
    for (int si = 0; si < sc->n_strategies; si++) {
        g_string_append_printf(fig->data, "# %s: gpus fits_in_memory does_not_fit\n", sc->strategies[si]);
        for (int n = 0; n < sc->n_nodes; n++) {
            const cJSON *p = point(sc, si, n);
            double gpus = num(p, "world_size");
            double v = eff ? 100 * efficiency(sc, si, n) : per_gpu(sc, p);
            any_oom = any_oom || oom(p);
            x_min = fmin(x_min, gpus), x_max = fmax(x_max, gpus);
            g_string_append_printf(fig->data, "%g %.6g %.6g\n", gpus, oom(p) ? NAN : v, oom(p) ? v : NAN);
        }
        g_string_append(fig->data, "\n\n");
        char *q = plot_quote(sc->strategies[si]);
        g_string_append_printf(fig->plot,
                               /* the key entry on its own: a strategy that never fits has no line */
                               "%sNaN with linespoints lt %d title \"%s\", \\\n"
                               "        \"%s.dat\" index %d using 1:2 with linespoints lt %d notitle, \\\n"
                               "        \"\" index %d using 1:3 with points lt %d pt 2 ps 3 lw 3 notitle",
                               si ? ", \\\n        " : "", si + 1, q, fig->name, si, si + 1, si, si + 1);
        g_free(q);
    }
    if (any_oom)
        g_string_append(fig->plot, ", \\\n        NaN with points pt 2 ps 3 lw 3 lc rgb okabe_black title \"does not fit (OOM)\"");
    g_string_append_c(fig->plot, '\n');
    const char *unit = token_model(sc) ? "tokens/s per GPU" : "images/s per GPU";
    g_string_append_printf(fig->settings,
                           "set logscale x 2\nset xrange [%g:%g]\nset xlabel \"GPUs\"\nset ylabel \"%s\"\n"
                           "set key outside bottom center horizontal\n",
                           x_min / 1.3, x_max * 1.3, eff ? "scaling efficiency (%)" : unit);
    if (eff)
        g_string_append(fig->settings, "set yrange [0:115]\nset arrow from graph 0, first 100 to graph 1, first 100 "
                                       "nohead back lw 2 dt 3 lc rgb grey\n");
    else
        g_string_append(fig->settings, "set yrange [0:*]\n");
    return plot_figure_finish(set, fig, error);
}

/* Stacked bars grouped by strategy, one bar per node count. */
static bool figure_bars(PlotSet *set, const PlotScale *sc, bool memory, GError **error)
{
    static const char *time_names[] = {"compute", "exposed communication", "pipeline bubble", "other waiting"};
    static const char *time_colours[] = {"okabe_blue", "okabe_vermillion", "okabe_yellow", "grey"};
    static const char *mem_names[] = {"parameters", "gradients", "optimizer state", "activations",
                                      "communication buffers", "reserved (CUDA, NCCL)"};
    static const char *mem_colours[] = {"okabe_blue", "okabe_orange", "okabe_green", "okabe_vermillion",
                                        "okabe_purple", "grey"};
    int segs = memory ? MEM_SEGS : 4, bars = sc->n_strategies * sc->n_nodes;
    double *x = g_new(double, bars), *values = g_new0(double, (size_t)bars * segs), capacity = 0;
    char **labels = g_new0(char *, bars + 1), **marks = g_new0(char *, bars + 1);
    GString *groups = g_string_new(NULL);
    for (int si = 0; si < sc->n_strategies; si++) {
        double offset = si * (sc->n_nodes + 1);
        char *q = plot_quote(sc->strategies[si]);
        g_string_append_printf(groups, "%s\"%s\" %g", si ? ", " : "", q, offset + (sc->n_nodes - 1) / 2.0);
        g_free(q);
        for (int n = 0; n < sc->n_nodes; n++) {
            const cJSON *p = point(sc, si, n);
            int i = si * sc->n_nodes + n;
            x[i] = offset + n;
            labels[i] = g_strdup_printf("%d", sc->nodes[n]);
            if (memory) {
                for (int k = 0; k < MEM_SEGS; k++) {
                    char *key = g_strdup_printf("memory.breakdown.%s", mem_keys[k]);
                    double v = num(p, key);
                    values[i * segs + k] = isnan(v) ? 0 : v / GIB;
                    g_free(key);
                }
                capacity = num(p, "memory.capacity_bytes") / GIB;
                marks[i] = oom(p) ? g_strdup("OOM") : NULL;
            } else {
                double b[4];
                breakdown(p, b);
                for (int k = 0; k < 4; k++)
                    values[i * segs + k] = b[k] * 1e3;
            }
        }
    }
    char *t = scale_title(sc, memory ? "Memory per GPU at the peak" : "Where the step time goes");
    PlotFigure *fig = plot_figure_new(memory ? "memory" : "breakdown", t);
    g_free(t);
    g_string_append_printf(fig->settings, "set xlabel \"nodes\"\nset ylabel \"%s\"\nset x2tics (%s) scale 0\nset link x2\nset tmargin 6.5\n",
                           memory ? "GiB per GPU" : "ms per step", groups->str);
    char *cap = g_strdup_printf("capacity %.1f GiB", capacity);
    plot_stacked_bars(fig, bars, x, labels, segs, memory ? mem_names : time_names,
                      memory ? mem_colours : time_colours, values, marks, memory ? capacity : 0, cap);
    g_free(cap);
    g_string_free(groups, TRUE);
    g_free(x);
    g_free(values);
    for (int i = 0; i < bars; i++)
        g_free(labels[i]), g_free(marks[i]); /* marks has holes: not a NULL-terminated vector */
    g_free(labels);
    g_free(marks);
    return plot_figure_finish(set, fig, error);
}

bool plot_scale_figures(PlotSet *set, const PlotScale *sc, GError **error)
{
    /* one node count compares strategies: lines of one point each would show nothing */
    bool lines = sc->n_nodes > 1;
    return (!lines || (figure_lines(set, sc, false, error) && figure_lines(set, sc, true, error))) &&
           figure_bars(set, sc, false, error) && figure_bars(set, sc, true, error);
}
