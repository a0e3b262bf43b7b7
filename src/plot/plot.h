/* plot: figures for slides. Each figure is three files in one folder: NAME.dat (the numbers),
 * NAME.gp (a gnuplot script: the style of reports/templates/style.gp, then the figure) and the
 * images gnuplot draws from them (NAME.png, NAME.svg, NAME.pdf). A user restyles a figure by
 * editing NAME.gp and running `gnuplot NAME.gp` in that folder.
 *
 * gnuplot is found on PATH when the figures are drawn. Without it the data and scripts are still
 * written, and one note on stderr says how to draw them later. */
#ifndef FSD_PLOT_H
#define FSD_PLOT_H

#include "../compare/compare.h"
#include "../report/report.h"

#include <cjson/cJSON.h>
#include <glib.h>
#include <stdbool.h>

typedef enum { PLOT_PNG = 1, PLOT_SVG = 2, PLOT_PDF = 4, PLOT_ALL = 7 } PlotFormat;

typedef struct {
    char *dir;
    unsigned formats;   /* PlotFormat bits */
    char *gnuplot;      /* full path, NULL when not on PATH */
    bool noted;         /* the "gnuplot not found" note was printed */
    GPtrArray *written; /* figure names (char*), in the order written */
} PlotSet;

/* Parses "png,svg,pdf" (any subset; "all"). */
bool plot_formats_parse(const char *text, unsigned *formats);

/* Creates DIR (and its parents) when missing. `option` names it in messages ("plot"). */
PlotSet *plot_set_new(const char *option, const char *dir, unsigned formats, GError **error);
void plot_set_free(PlotSet *set);

/* One figure being written: append the data file's text to `data`, gnuplot `set` commands to
 * `settings`, and the `plot ...` command (which reads NAME.dat) to `plot`. */
typedef struct {
    char *name;
    GString *data;
    GString *settings;
    GString *plot;
} PlotFigure;

PlotFigure *plot_figure_new(const char *name, const char *title);
/* Writes NAME.dat and NAME.gp, runs gnuplot on it, frees the figure. FSD_ERROR_FAILED when a
 * file cannot be written or gnuplot fails. */
bool plot_figure_finish(PlotSet *set, PlotFigure *fig, GError **error);
/* Writes DIR/FILE (FSD_ERROR_FAILED naming the path when it cannot). */
bool plot_write_text(const char *dir, const char *file, const char *text, GError **error);

/* Text safe inside a double-quoted gnuplot string. */
char *plot_quote(const char *text);
/* The style script (reports/templates/style.gp), compiled in. */
extern const char plot_style_gp[];

/* How the labels under and the marks above n_bars bars fit across the plot: the pitch between
 * bars in pixels of the PNG, and what is done so that no two labels or marks overlap: labels
 * turned upright when they are wider than the pitch, and only every label_every-th one written
 * when even upright ones are; marks (OOM) written upright, or as a cross when text does not fit.
 * Sizes from style.gp: a 1600 px wide PNG with a 16 pt font drawn at 5/3 px per pt. */
typedef struct {
    double pitch_px;      /* between neighbouring bars */
    double label_px;      /* width the widest label takes in its chosen direction */
    bool labels_upright;  /* rotated by 90 degrees */
    int label_every;      /* 1: every bar labelled */
    int mark_style;       /* 0 text, 1 upright text, 2 a cross */
} PlotBarLayout;
PlotBarLayout plot_bar_layout(double x_span, int max_label_chars, int max_mark_chars);

/* Stacked bars: n_bars bars at x[i] labelled xlabels[i], n_segs segments each (values[i * n_segs
 * + k], bottom first) named seg_names[k] in colour seg_colours[k] (a colour or a style.gp
 * variable). Segments that are zero in every bar are left out of the legend. marks[i] (or NULL)
 * is written above bar i; a horizontal line at hline (if > 0) is labelled hline_label. */
void plot_stacked_bars(PlotFigure *fig, int n_bars, const double *x, char *const *xlabels,
                       int n_segs, const char *const *seg_names, const char *const *seg_colours,
                       const double *values, char *const *marks, double hline,
                       const char *hline_label);

/* Figures of one simulated step (the --plot option): timeline (Gantt of every stream of every
 * rank class), memory (in use over time, with the peak and the capacity), memory_breakdown
 * (at each class's peak). */
bool plot_run_figures(PlotSet *set, const Report *rep, GError **error);
/* "GPT-3 XL (1.3B), full_shard, 4 x juwels-booster nodes (16 GPUs)" from a --json object. */
char *plot_run_title(const cJSON *result);

/* A report folder (--report DIR): the figures, result.json, result.csv, summary.txt, trace.json
 * and README.md that shows them, and the command line that simulated it (NULL: none). */
bool plot_report_run(const char *dir, unsigned formats, const Report *rep, const char *command,
                     GError **error);

/* The scaling study (fsdpsim scale): one --json object per point, points[i] for strategy
 * i / n_nodes and node count i % n_nodes (NULL where the simulation failed). */
typedef struct {
    const char *const *strategies;
    int n_strategies;
    const int *nodes;
    int n_nodes;
    cJSON **points;
    char *command; /* the command line, for the README */
} PlotScale;

/* CSV of every point: one row per (strategy, nodes), the columns named in the header. */
char *plot_scale_csv(const PlotScale *sc);
/* throughput (per GPU), efficiency, breakdown (stacked step time), memory (stacked, capacity);
 * with one node count, breakdown and memory only. */
bool plot_scale_figures(PlotSet *set, const PlotScale *sc, GError **error);
bool plot_report_scale(const char *dir, unsigned formats, const PlotScale *sc, GError **error);

/* Real against simulated (fsdpsim compare and validate --plot): compare_timeline (the median real
 * iteration's rows above the simulated step's rows) and compare_error (time per op kind per rank
 * per step, side by side, with the relative error), from a loaded comparison. */
bool plot_compare(PlotSet *set, const CmpResult *r, const char *title, GError **error);
/* The colour (a style.gp variable) of an op kind: compute, allgather, ..., send/recv, memcpy, host.
 */
const char *plot_kind_colour(const char *kind);

#endif
