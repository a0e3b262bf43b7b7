/* search: figures for slides (src/plot's .dat + .gp + images): every configuration that passes
 * by two objectives with the Pareto front, and a heat map of the best objective over two
 * dimensions (TP x PP, or strategy x nodes, or the first two varied options). */
#include "search.h"
#include "../plot/plot.h"
#include "../util/cfg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* a record's value on an axis: search_record_value, the time in days (seconds are unreadable on
 * a slide) */
static double axis_value(int which, double v)
{
    return which == SEARCH_OBJ_TIME ? v / 86400 : v;
}

static const char *axis_name(int which)
{
    static const char *names[SEARCH_OBJ_COUNT + 1] = {"step time (s)", "time to the tokens (days)",
                                                      "node-hours",    "GPU-hours",
                                                      "core-hours",    "peak memory per GPU (GiB)"};
    return names[which];
}

static bool figure_pareto(PlotSet *set, const SearchSpec *spec, GPtrArray *ok, int a, int b,
                          GError **error)
{
    char *title = g_strdup_printf("All configurations that pass, and the Pareto front\n%s vs %s",
                                  axis_name(a), axis_name(b));
    PlotFigure *fig = plot_figure_new("search_pareto", title);
    g_free(title);
    GArray *points = search_pareto(spec, ok, a, b);
    g_string_append(fig->data, "# every configuration that passes: x y\n");
    for (guint i = 0; i < points->len; i++) {
        const SearchParetoPoint *p = &g_array_index(points, SearchParetoPoint, i);
        g_string_append_printf(fig->data, "%.6g %.6g\n", axis_value(a, p->a), axis_value(b, p->b));
    }
    g_string_append(fig->data, "\n\n# the Pareto front: x y\n");
    for (guint i = 0; i < points->len; i++) {
        const SearchParetoPoint *p = &g_array_index(points, SearchParetoPoint, i);
        if (p->front)
            g_string_append_printf(fig->data, "%.6g %.6g\n", axis_value(a, p->a),
                                   axis_value(b, p->b));
    }
    g_array_free(points, TRUE);
    g_string_append_printf(fig->settings,
                           "set xlabel \"%s\"\nset ylabel \"%s\"\n"
                           "set key outside bottom center horizontal\n"
                           "set format x \"%%g\"\nset format y \"%%g\"\n",
                           axis_name(a), axis_name(b));
    g_string_append_printf(fig->plot,
                           "plot \"%s.dat\" index 0 using 1:2 with points pt 7 ps 0.8 lc rgb grey "
                           "title \"configurations\", \\\n"
                           "        \"\" index 1 using 1:2 with linespoints lw 3 pt 7 lc rgb "
                           "okabe_vermillion title \"Pareto front\"\n",
                           fig->name);
    return plot_figure_finish(set, fig, error);
}

/* the distinct values of option `dim` among the records, numeric ones in numeric order */
static GPtrArray *axis_values(GPtrArray *all, const char *dim)
{
    GPtrArray *v = g_ptr_array_new();
    bool numeric = true;
    for (guint i = 0; i < all->len; i++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(g_ptr_array_index(all, i), "options"), dim);
        if (!cJSON_IsString(o))
            continue;
        bool seen = false;
        for (guint k = 0; k < v->len && !seen; k++)
            seen = !strcmp(g_ptr_array_index(v, k), o->valuestring);
        if (!seen) {
            char *end = NULL;
            strtod(o->valuestring, &end);
            numeric = numeric && *end == '\0';
            g_ptr_array_add(v, o->valuestring);
        }
    }
    for (guint i = 1; numeric && i < v->len; i++) /* insertion sort: a dimension has few values */
        for (guint j = i;
             j > 0 && atof(g_ptr_array_index(v, j)) < atof(g_ptr_array_index(v, j - 1)); j--) {
            gpointer t = v->pdata[j];
            v->pdata[j] = v->pdata[j - 1], v->pdata[j - 1] = t;
        }
    return v;
}

static int index_of(GPtrArray *values, const char *v)
{
    for (guint i = 0; i < values->len; i++)
        if (!strcmp(g_ptr_array_index(values, i), v))
            return (int)i;
    return -1;
}

static bool figure_heatmap(PlotSet *set, const SearchSpec *spec, GPtrArray *all, const char *dx,
                           const char *dy, GError **error)
{
    GPtrArray *xs = axis_values(all, dx), *ys = axis_values(all, dy);
    double *best = g_new(double, xs->len * ys->len);
    for (guint i = 0; i < xs->len * ys->len; i++)
        best[i] = INFINITY;
    for (guint i = 0; i < all->len; i++) {
        const cJSON *r = g_ptr_array_index(all, i);
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(r, "options");
        int x = index_of(xs, cJSON_GetObjectItemCaseSensitive(o, dx)->valuestring);
        int y = index_of(ys, cJSON_GetObjectItemCaseSensitive(o, dy)->valuestring);
        double v = search_record_objective(r);
        best[y * xs->len + x] = MIN(best[y * xs->len + x], v);
    }
    char *title = g_strdup_printf("Best %s per %s x %s (blank: nothing passes)",
                                  search_objective_name(spec->objective), dx, dy);
    PlotFigure *fig = plot_figure_new("search_heatmap", title);
    g_free(title);
    g_string_append_printf(fig->data,
                           "# x_index y_index best_%s (cells where nothing passes "
                           "are left out)\n",
                           search_objective_name(spec->objective));
    for (guint y = 0; y < ys->len; y++)
        for (guint x = 0; x < xs->len; x++)
            if (isfinite(best[y * xs->len + x]))
                g_string_append_printf(fig->data, "%u %u %.6g\n", x, y, best[y * xs->len + x]);
    GString *xt = g_string_new(NULL), *yt = g_string_new(NULL);
    for (guint x = 0; x < xs->len; x++) {
        char *q = plot_quote(g_ptr_array_index(xs, x));
        g_string_append_printf(xt, "%s\"%s\" %u", x ? ", " : "", q, x);
        g_free(q);
    }
    for (guint y = 0; y < ys->len; y++) {
        char *q = plot_quote(g_ptr_array_index(ys, y));
        g_string_append_printf(yt, "%s\"%s\" %u", y ? ", " : "", q, y);
        g_free(q);
    }
    g_string_append_printf(
        fig->settings,
        "set xtics (%s)\nset ytics (%s)\nset xlabel \"--%s\"\nset ylabel \"--%s\"\n"
        "set xrange [-0.5:%g]\nset yrange [-0.5:%g]\nunset grid\n"
        "set palette defined (0 \"#009E73\", 1 \"#F0E442\", 2 \"#D55E00\")\n"
        "set cblabel \"%s\"\n",
        xt->str, yt->str, dx, dy, xs->len - 0.5, ys->len - 0.5, axis_name(spec->objective));
    g_string_append_printf(fig->plot,
                           "plot \"%s.dat\" using 1:2:(0.5):(0.5):3 with boxxyerror fs solid "
                           "fc palette notitle, \\\n"
                           "        \"\" using 1:2:(sprintf(\"%%.3g\", $3)) with labels notitle\n",
                           fig->name);
    g_string_free(xt, TRUE), g_string_free(yt, TRUE);
    g_free(best);
    g_ptr_array_free(xs, TRUE), g_ptr_array_free(ys, TRUE);
    return plot_figure_finish(set, fig, error);
}

bool search_plot(const SearchSpec *spec, GHashTable *records, int pareto_a, int pareto_b,
                 const char *dir, unsigned formats, GError **error)
{
    PlotSet *set = plot_set_new("plot", dir, formats, error);
    if (!set)
        return false;
    GPtrArray *all = search_results_sorted(records), *ok = g_ptr_array_new();
    for (guint i = 0; i < all->len; i++)
        if (isfinite(search_record_objective(g_ptr_array_index(all, i))))
            g_ptr_array_add(ok, g_ptr_array_index(all, i));
    bool good = true;
    if (ok->len)
        good = figure_pareto(set, spec, ok,
                             pareto_a < SEARCH_OBJ_COUNT ? pareto_a : (int)spec->objective,
                             pareto_a < SEARCH_OBJ_COUNT ? pareto_b : SEARCH_OBJ_COUNT, error);
    /* the heat map's axes: TP x PP, else strategy x nodes, else the first two options */
    static const char *pairs[][2] = {{"tp", "pp"}, {"nodes", "strategy"}};
    const char *dx = NULL, *dy = NULL;
    const cJSON *opts =
        all->len ? cJSON_GetObjectItemCaseSensitive(g_ptr_array_index(all, 0), "options") : NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(pairs) && !dx && opts; i++)
        if (cJSON_HasObjectItem(opts, pairs[i][0]) && cJSON_HasObjectItem(opts, pairs[i][1]))
            dx = pairs[i][0], dy = pairs[i][1];
    if (!dx && opts && opts->child && opts->child->next)
        dx = opts->child->string, dy = opts->child->next->string;
    if (good && dx && ok->len)
        good = figure_heatmap(set, spec, all, dx, dy, error);
    g_ptr_array_free(ok, TRUE);
    g_ptr_array_free(all, TRUE);
    plot_set_free(set);
    return good;
}
