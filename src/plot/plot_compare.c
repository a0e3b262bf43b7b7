/* plot: real against simulated (fsdpsim compare --plot, fsdpsim validate --plot), from a loaded
 * comparison (src/compare): the same events and the same per-rank-per-step times that compare
 * prints, so that a figure never disagrees with the table beside it. */
#include "plot.h"

#include <math.h>
#include <string.h>

/* Fixed colours per op kind, so that a kind looks the same in every figure and every talk. */
static const struct {
    const char *kind, *colour;
} kind_colours[] = {
    {"compute", "okabe_blue"},
    {"allgather", "okabe_orange"},
    {"reduce_scatter", "okabe_vermillion"},
    {"allreduce", "okabe_green"},
    {"broadcast", "okabe_purple"},
    {"alltoall", "okabe_yellow"},
    {"send/recv", "okabe_sky"},
    {"send", "okabe_sky"},
    {"recv", "okabe_sky"},
    {"memcpy", "okabe_black"},
    {"host", "grey"},
};

const char *plot_kind_colour(const char *kind)
{
    for (size_t k = 0; k < G_N_ELEMENTS(kind_colours); k++)
        if (!strcmp(kind_colours[k].kind, kind))
            return kind_colours[k].colour;
    return "grey";
}

/* Both timelines on one time axis, real rows above simulated rows: the median real iteration
 * (each rank from its own start) and the simulated step. */
static bool figure_timeline(PlotSet *set, const CmpResult *r, const char *title, GError **error)
{
    CmpTimeline tl;
    cmp_timeline(r, &tl);
    char *t = g_strdup_printf("Real (top, median iteration) and simulated (bottom)\n%s", title);
    PlotFigure *fig = plot_figure_new("compare_timeline", t);
    g_free(t);
    GString *tics = g_string_new(NULL);
    /* a gap row between real and simulated */
    int n_rows = (int)tl.rows->len, gap = tl.n_real_rows;
    for (int row = 0; row < n_rows; row++) {
        char *q = plot_quote(g_ptr_array_index(tl.rows, row));
        g_string_append_printf(tics, "%s\"%s\" %d", row ? ", " : "", q, row + (row >= gap));
        g_free(q);
    }
    g_string_append(fig->plot, "plot ");
    int block = 0;
    for (guint k = 0; k < r->kinds->len; k++) {
        const char *kind = g_array_index(r->kinds, CmpKind, k).kind;
        GString *rows = g_string_new(NULL);
        for (guint i = 0; i < tl.spans->len; i++) {
            const CmpSpan *s = &g_array_index(tl.spans, CmpSpan, i);
            if (s->kind == kind && s->end_s > s->start_s)
                g_string_append_printf(rows, "%.6f %.6f %d\n", s->start_s * 1e3, s->end_s * 1e3,
                                       s->row + (s->row >= gap));
        }
        if (rows->len) {
            g_string_append_printf(fig->data, "# %s: start_ms end_ms row\n%s\n\n", kind, rows->str);
            g_string_append_printf(
                fig->plot,
                "%s\"compare_timeline.dat\" index %d using (($1+$2)/2):3:1:2:($3-0.38):($3+0.38) "
                "with boxxyerror fc rgb %s fs solid 1.0 noborder title \"%s\"",
                block ? ", \\\n        " : "", block, plot_kind_colour(kind), kind);
            block++;
        }
        g_string_free(rows, TRUE);
    }
    g_string_append_c(fig->plot, '\n');
    g_string_append_printf(
        fig->settings,
        "set xlabel \"time from the rank's start of the step (ms)\"\nset ytics (%s)\n"
        "set yrange [%g:-0.6]\nset xrange [0:%.6f]\nunset grid\nset grid xtics\n"
        /* under the whole figure: "outside bottom" under the plot area drops
           the entries that do not fit its width */
        "set key at screen 0.5, screen 0.02 center bottom horizontal maxrows 2\nset bmargin 7\n"
        "set arrow from graph 0, first %d to graph 1, first %d nohead lw 2 dt 2 lc rgb "
        "okabe_black\n",
        tics->str, n_rows + 0.6, fmax(tl.span_s[0], tl.span_s[1]) * 1e3 + 1e-9, gap, gap);
    g_string_free(tics, TRUE);
    /* many ranks x streams: smaller row labels, so that they stay apart (style.gp: 16 points) */
    if (n_rows > 10)
        g_string_append_printf(fig->settings, "set ytics font \",%d\"\n", MAX(6, 16 * 10 / n_rows));
    cmp_timeline_clear(&tl);
    return plot_figure_finish(set, fig, error);
}

/* Time per op kind per rank per step, real and simulated side by side, the error above each pair.
 */
static bool figure_error(PlotSet *set, const CmpResult *r, const char *title, GError **error)
{
    char *t =
        g_strdup_printf("Time per op kind per rank per step: real against simulated\n%s", title);
    PlotFigure *fig = plot_figure_new("compare_error", t);
    g_free(t);
    GString *tics = g_string_new(NULL);
    double y_max = 0;
    int x = 0;
    g_string_append(fig->data,
                    "# x kind real_ms simulated_ms error_percent ((sim - real) / real)\n");
    for (guint i = 0; i < r->kinds->len; i++) {
        const CmpKind *k = &g_array_index(r->kinds, CmpKind, i);
        double real = k->real_s * 1e3, sim = k->sim_s * 1e3;
        if (real <= 0 && sim <= 0)
            continue;
        double err = 100 * cmp_error(sim, real);
        g_string_append_printf(fig->data, "%d %s %.6f %.6f %.3f\n", x, k->kind, real, sim, err);
        g_string_append_printf(tics, "%s\"%s\" %d", tics->len ? ", " : "", k->kind, x);
        y_max = fmax(y_max, fmax(real, sim));
        if (!isnan(err))
            g_string_append_printf(fig->settings,
                                   "set label \"%+.1f %%\" at %d, %.6f center offset 0,0.8 front\n",
                                   err, x, fmax(real, sim));
        x++;
    }
    g_string_append_printf(
        fig->settings,
        "set xtics (%s) rotate by -25 left\nset xrange [-0.7:%g]\nset yrange [0:%.6f]\n"
        "set ylabel \"time per rank per step (ms)\"\n"
        "set key outside bottom center horizontal\nunset grid\nset grid ytics\n",
        tics->str, x - 0.3, y_max * 1.2 + 1e-9);
    g_string_free(tics, TRUE);
    g_string_append(
        fig->plot,
        "plot \"compare_error.dat\" using ($1-0.2):3:($1-0.38):($1-0.02):(0):3 with boxxyerror "
        "fc rgb okabe_black fs solid 0.35 noborder title \"real\", \\\n"
        "        \"\" using ($1+0.2):4:($1+0.02):($1+0.38):(0):4 with boxxyerror fc rgb okabe_blue "
        "fs solid 1.0 noborder title \"simulated\"\n");
    return plot_figure_finish(set, fig, error);
}

bool plot_compare(PlotSet *set, const CmpResult *r, const char *title, GError **error)
{
    return figure_timeline(set, r, title, error) && figure_error(set, r, title, error);
}
