/* plot: stacked bars, drawn as boxes with explicit bottoms and tops (boxxyerror) rather than with
 * gnuplot's histogram style, so that bars can sit anywhere on the x axis (groups with gaps) and
 * labels can be placed at a bar's x. */
#include "plot.h"

void plot_stacked_bars(PlotFigure *fig, int n_bars, const double *x, char *const *xlabels, int n_segs,
                       const char *const *seg_names, const char *const *seg_colours, const double *values,
                       char *const *marks, double hline, const char *hline_label)
{
    GString *tics = g_string_new(NULL);
    double x_min = 0, x_max = 1, y_max = hline;
    for (int i = 0; i < n_bars; i++) {
        char *q = plot_quote(xlabels[i]);
        g_string_append_printf(tics, "%s\"%s\" %g", tics->len ? ", " : "", q, x[i]);
        g_free(q);
        x_min = i == 0 || x[i] < x_min ? x[i] : x_min;
        x_max = i == 0 || x[i] > x_max ? x[i] : x_max;
        double total = 0;
        for (int k = 0; k < n_segs; k++)
            total += values[i * n_segs + k];
        y_max = total > y_max ? total : y_max;
        if (marks && marks[i]) {
            char *m = plot_quote(marks[i]);
            g_string_append_printf(fig->settings,
                                   "set label \"%s\" at %g, %.6g center offset 0,0.8 front tc rgb okabe_vermillion\n",
                                   m, x[i], total);
            g_free(m);
        }
    }
    g_string_append_printf(fig->settings, "set xtics (%s)\nset xrange [%g:%g]\nset yrange [0:%.6g]\n"
                                          "set key outside bottom center horizontal\nunset grid\nset grid ytics\n",
                           tics->str, x_min - 0.7, x_max + 0.7, y_max > 0 ? y_max * 1.15 : 1);
    g_string_free(tics, TRUE);
    if (hline > 0) {
        char *q = plot_quote(hline_label ? hline_label : "");
        g_string_append_printf(fig->settings,
                               "set arrow from graph 0, first %.6g to graph 1, first %.6g nohead front lw 3 dt 2 lc rgb okabe_black\n"
                               "set label \"%s\" at graph 0.01, first %.6g left offset 0,0.7 front\n",
                               hline, hline, q, hline);
        g_free(q);
    }
    /* one data block per segment: x bottom top */
    g_string_append(fig->plot, "plot ");
    int block = 0;
    for (int k = 0; k < n_segs; k++) {
        bool any = false;
        for (int i = 0; i < n_bars; i++)
            any = any || values[i * n_segs + k] > 0;
        if (!any)
            continue;
        g_string_append_printf(fig->data, "# %s: x bottom top\n", seg_names[k]);
        for (int i = 0; i < n_bars; i++) {
            double bottom = 0;
            for (int j = 0; j < k; j++)
                bottom += values[i * n_segs + j];
            double v = values[i * n_segs + k];
            if (v > 0)
                g_string_append_printf(fig->data, "%g %.9g %.9g\n", x[i], bottom, bottom + v);
        }
        g_string_append(fig->data, "\n\n");
        char *q = plot_quote(seg_names[k]);
        g_string_append_printf(fig->plot,
                               "%s\"%s.dat\" index %d using 1:(($2+$3)/2):($1-0.38):($1+0.38):2:3 with boxxyerror "
                               "fc rgb %s fs solid 1.0 noborder title \"%s\"",
                               block ? ", \\\n        " : "", fig->name, block, seg_colours[k], q);
        g_free(q);
        block++;
    }
    if (!block) /* nothing to stack: an empty frame rather than a gnuplot error */
        g_string_append(fig->plot, "NaN notitle");
    g_string_append_c(fig->plot, '\n');
}
