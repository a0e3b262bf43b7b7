/* plot: stacked bars, drawn as boxes with explicit bottoms and tops (boxxyerror) rather than with
 * gnuplot's histogram style, so that bars can sit anywhere on the x axis (groups with gaps) and
 * labels can be placed at a bar's x. */
#include "plot.h"

#include <math.h>

/* style.gp: 1600 px PNG, font 16 pt at 5/3 px per pt (26.7 px); about 1280 px of it is the
 * plot area (y label, tic labels and the right margin take the rest, measured on the scale
 * figures); a Sans digit is about 0.6 em wide, an upright line of text 1.2 em (its line
 * height). */
static const double canvas_plot_px = 1280, font_px = 16 * 5 / 3.0, char_em = 0.6, line_em = 1.2;

PlotBarLayout plot_bar_layout(double x_span, int max_label_chars, int max_mark_chars)
{
    PlotBarLayout l = {.label_every = 1};
    l.pitch_px = canvas_plot_px / (x_span > 0 ? x_span : 1);
    double room = 0.9 * l.pitch_px; /* a tenth of the pitch between neighbours */
    l.label_px = max_label_chars * char_em * font_px;
    if (l.label_px > room) {
        l.labels_upright = true;
        l.label_px = line_em * font_px; /* upright, a label is one line of text wide */
        if (l.label_px > room)
            l.label_every = (int)ceil(l.label_px / room);
    }
    double mark_px = max_mark_chars * char_em * font_px;
    l.mark_style = mark_px <= room ? 0 : line_em * font_px <= room ? 1 : 2;
    return l;
}

void plot_stacked_bars(PlotFigure *fig, int n_bars, const double *x, char *const *xlabels, int n_segs,
                       const char *const *seg_names, const char *const *seg_colours, const double *values,
                       char *const *marks, double hline, const char *hline_label)
{
    GString *tics = g_string_new(NULL);
    double x_min = 0, x_max = 1, y_max = hline;
    int label_chars = 1, mark_chars = 1;
    bool any_mark = false;
    const char *mark_title = "";
    for (int i = 0; i < n_bars; i++) {
        x_min = i == 0 || x[i] < x_min ? x[i] : x_min;
        x_max = i == 0 || x[i] > x_max ? x[i] : x_max;
        label_chars = MAX(label_chars, (int)g_utf8_strlen(xlabels[i], -1));
        if (marks && marks[i]) {
            mark_chars = MAX(mark_chars, (int)g_utf8_strlen(marks[i], -1)), any_mark = true;
            mark_title = marks[i];
        }
    }
    /* the x range is [x_min - 0.7, x_max + 0.7] */
    PlotBarLayout lay = plot_bar_layout(x_max - x_min + 1.4, label_chars, mark_chars);
    for (int i = 0; i < n_bars; i++) {
        char *q = plot_quote(i % lay.label_every == 0 ? xlabels[i] : "");
        g_string_append_printf(tics, "%s\"%s\" %g", tics->len ? ", " : "", q, x[i]);
        g_free(q);
        double total = 0;
        for (int k = 0; k < n_segs; k++)
            total += values[i * n_segs + k];
        y_max = total > y_max ? total : y_max;
        if (marks && marks[i] && lay.mark_style == 2) {
            /* too narrow for text: a cross above the bar (the key says what it means) */
            g_string_append_printf(fig->settings,
                                   "set label \"\" at %g, %.6g point pt 2 ps %.2f lw 3 lc rgb "
                                   "okabe_vermillion offset 0,0.8 front\n",
                                   x[i], total, MAX(0.5, MIN(2.0, 0.8 * lay.pitch_px / font_px)));
        } else if (marks && marks[i]) {
            char *m = plot_quote(marks[i]);
            g_string_append_printf(fig->settings,
                                   lay.mark_style == 1
                                       ? "set label \"%s\" at %g, %.6g left rotate by 90 offset 0.3,0.5 "
                                         "front tc rgb okabe_vermillion\n"
                                       : "set label \"%s\" at %g, %.6g center offset 0,0.8 front tc rgb "
                                         "okabe_vermillion\n",
                                   m, x[i], total);
            g_free(m);
        }
    }
    g_string_append_printf(fig->settings, "set xtics (%s)\nset xrange [%g:%g]\nset yrange [0:%.6g]\n"
                                          "set key outside bottom center horizontal\nunset grid\nset grid ytics\n",
                           tics->str, x_min - 0.7, x_max + 0.7,
                           /* upright marks are taller: more room above the bars for them */
                           y_max > 0 ? y_max * (any_mark && lay.mark_style == 1 ? 1.35 : 1.15) : 1);
    g_string_free(tics, TRUE);
    if (lay.labels_upright) /* after the list, so that nothing resets it */
        g_string_append(fig->settings, "set xtics rotate by 90 right\n");
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
    else if (any_mark && lay.mark_style == 2) { /* the crosses' meaning, in the key */
        char *q = plot_quote(mark_title);
        g_string_append_printf(fig->plot,
                               ", \\\n        NaN with points pt 2 ps 2 lw 3 lc rgb okabe_vermillion "
                               "title \"%s\"",
                               q);
        g_free(q);
    }
    g_string_append_c(fig->plot, '\n');
}
