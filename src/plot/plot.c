/* plot: writing a figure's data and script, and running gnuplot on it. */
#include "plot.h"
#include "../util/cfg.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <sys/wait.h>
#include <stdio.h>
#include <string.h>

static const struct {
    PlotFormat format;
    const char *name;
    /* the gnuplot terminal; sizes and fonts come from style.gp's variables. PNG and SVG are
     * sized in pixels, so their font is scaled by png width / pdf width (1600 px / 960 pt) to
     * keep the same proportions as the PDF. */
    const char *terminal;
} formats[] = {
    {PLOT_PNG, "png", "set terminal pngcairo size @png_size noenhanced font sprintf(\"%s,%g\", font_name, font_size*5/3.0) linewidth line_width"},
    {PLOT_SVG, "svg", "set terminal svg size @png_size noenhanced font sprintf(\"%s,%g\", font_name, font_size*5/3.0) linewidth line_width"},
    {PLOT_PDF, "pdf", "set terminal pdfcairo size @pdf_size noenhanced font sprintf(\"%s,%g\", font_name, font_size) linewidth line_width"},
};

bool plot_formats_parse(const char *text, unsigned *out)
{
    unsigned f = 0;
    char **parts = g_strsplit(text, ",", -1);
    bool ok = parts[0] != NULL;
    for (char **p = parts; *p && ok; p++) {
        char *w = g_strstrip(*p);
        unsigned bit = 0;
        for (size_t k = 0; k < G_N_ELEMENTS(formats); k++)
            if (!g_ascii_strcasecmp(w, formats[k].name))
                bit = formats[k].format;
        if (!g_ascii_strcasecmp(w, "all"))
            bit = PLOT_ALL;
        ok = bit != 0;
        f |= bit;
    }
    g_strfreev(parts);
    if (ok)
        *out = f;
    return ok;
}

PlotSet *plot_set_new(const char *option, const char *dir, unsigned formats_wanted, GError **error)
{
    if (g_mkdir_with_parents(dir, 0755) != 0 || !g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT, "option --%s: cannot create directory %s: %s",
                    option, dir, g_strerror(errno));
        return NULL;
    }
    PlotSet *set = g_new0(PlotSet, 1);
    set->dir = g_strdup(dir);
    set->formats = formats_wanted ? formats_wanted : PLOT_ALL;
    set->gnuplot = g_find_program_in_path("gnuplot");
    set->written = g_ptr_array_new_with_free_func(g_free);
    return set;
}

void plot_set_free(PlotSet *set)
{
    if (!set)
        return;
    g_free(set->dir);
    g_free(set->gnuplot);
    g_ptr_array_free(set->written, TRUE);
    g_free(set);
}

char *plot_quote(const char *text)
{
    GString *s = g_string_new(NULL);
    for (const char *p = text; *p; p++) {
        if (*p == '"' || *p == '\\')
            g_string_append_c(s, '\\');
        if (*p == '\n')
            g_string_append(s, "\\n"); /* a new line inside a double-quoted gnuplot string */
        else
            g_string_append_c(s, *p);
    }
    return g_string_free(s, FALSE);
}

PlotFigure *plot_figure_new(const char *name, const char *title)
{
    PlotFigure *fig = g_new0(PlotFigure, 1);
    fig->name = g_strdup(name);
    fig->data = g_string_new(NULL);
    fig->settings = g_string_new(NULL);
    fig->plot = g_string_new(NULL);
    char *q = plot_quote(title);
    /* centred on the whole figure, not on the plot area (which long tick labels push right), so
     * that a long second line stays inside the figure */
    g_string_append_printf(fig->settings, "set label 1000 \"%s\" at screen 0.5, screen 0.935 center front\n"
                                          "set tmargin 5\n", q);
    g_free(q);
    return fig;
}

static void figure_free(PlotFigure *fig)
{
    g_free(fig->name);
    g_string_free(fig->data, TRUE);
    g_string_free(fig->settings, TRUE);
    g_string_free(fig->plot, TRUE);
    g_free(fig);
}

/* The whole script: style, the figure's settings, then one plot per format. The plot command is
 * repeated per terminal (not `replot`) so that the script also works when a user edits it down
 * to one format. */
static char *figure_script(const PlotFigure *fig, unsigned formats_wanted)
{
    GString *s = g_string_new(NULL);
    g_string_append_printf(s, "# %s: written by fsdpsim. Draw it again with: gnuplot %s.gp\n"
                              "# (in this folder; it reads %s.dat)\n\n",
                           fig->name, fig->name, fig->name);
    g_string_append(s, plot_style_gp);
    g_string_append(s, "\n# --- the figure ---\n");
    g_string_append(s, fig->settings->str);
    GString *list = g_string_new(NULL);
    for (size_t k = 0; k < G_N_ELEMENTS(formats); k++)
        if (formats_wanted & formats[k].format)
            g_string_append_printf(list, "%s%s", list->len ? " " : "", formats[k].name);
    g_string_append_printf(s, "\n# the formats to draw: any of png svg pdf\nformats = \"%s\"\n", list->str);
    g_string_free(list, TRUE);
    g_string_append(s, "do for [format in formats] {\n");
    for (size_t k = 0; k < G_N_ELEMENTS(formats); k++)
        g_string_append_printf(s, "    if (format eq \"%s\") { %s }\n", formats[k].name, formats[k].terminal);
    g_string_append_printf(s, "    set output \"%s.\".format\n", fig->name);
    g_string_append(s, "    ");
    g_string_append(s, fig->plot->str);
    if (fig->plot->len && fig->plot->str[fig->plot->len - 1] != '\n')
        g_string_append_c(s, '\n');
    g_string_append(s, "    unset output\n}\n");
    return g_string_free(s, FALSE);
}

bool plot_write_text(const char *dir, const char *file, const char *text, GError **error)
{
    char *path = g_build_filename(dir, file, NULL);
    GError *io = NULL;
    bool ok = g_file_set_contents(path, text, -1, &io);
    if (!ok) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_FAILED, "cannot write %s: %s", path, io->message);
        g_error_free(io);
    }
    g_free(path);
    return ok;
}

static bool write_file(const char *dir, const char *name, const char *ext, const char *text, GError **error)
{
    char *base = g_strdup_printf("%s.%s", name, ext);
    bool ok = plot_write_text(dir, base, text, error);
    g_free(base);
    return ok;
}

/* The date a PDF carries, as the 14 digits of PDF's D:YYYYMMDDHHmmSS: SOURCE_DATE_EPOCH's
 * (reproducible-builds.org) when set, else 1970-01-01, so that the same input gives the same
 * bytes. */
static void fixed_pdf_date(char digits[15])
{
    const char *epoch = g_getenv("SOURCE_DATE_EPOCH");
    gint64 seconds = 0;
    if (epoch && *epoch) {
        char *end = NULL;
        gint64 v = g_ascii_strtoll(epoch, &end, 10);
        if (end && !*end && v >= 0 && v < G_GINT64_CONSTANT(253402300800)) /* before year 10000 */
            seconds = v;
    }
    GDateTime *t = g_date_time_new_from_unix_utc(seconds);
    char *text = g_date_time_format(t, "%Y%m%d%H%M%S");
    g_strlcpy(digits, text, 15);
    g_free(text);
    g_date_time_unref(t);
}

/* cairo 1.16 (Debian 12) writes the time of drawing into every PDF's /CreationDate (and ignores
 * SOURCE_DATE_EPOCH, which cairo reads from 1.17.2 on): two runs differed. The date's digits are
 * overwritten in place with fixed_pdf_date's, the same length, so the cross-reference offsets
 * stay right; gnuplot runs with TZ=UTC so that the zone suffix is always "Z". */
static bool pdf_fix_dates(const char *dir, const char *name, GError **error)
{
    char *path = g_strdup_printf("%s/%s.pdf", dir, name);
    char *text = NULL;
    gsize len = 0;
    GError *io = NULL;
    bool ok = g_file_get_contents(path, &text, &len, &io);
    if (ok) {
        char digits[15];
        fixed_pdf_date(digits);
        static const char *const keys[] = {"/CreationDate (D:", "/ModDate (D:"};
        for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
            size_t klen = strlen(keys[k]);
            for (gsize i = 0; i + klen + 14 <= len; i++) {
                if (memcmp(text + i, keys[k], klen) == 0)
                    memcpy(text + i + klen, digits, 14);
            }
        }
        ok = g_file_set_contents(path, text, (gssize)len, &io);
    }
    if (!ok) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_FAILED, "cannot rewrite %s: %s", path, io->message);
        g_error_free(io);
    }
    g_free(text);
    g_free(path);
    return ok;
}

/* A figure whose drawing failed leaves no image behind: gnuplot writes them in place, so one
 * it gave up on may be half written. */
static void remove_images(const PlotSet *set, const char *name)
{
    for (size_t k = 0; k < G_N_ELEMENTS(formats); k++) {
        char *path = g_strdup_printf("%s/%s.%s", set->dir, name, formats[k].name);
        g_unlink(path);
        g_free(path);
    }
}

static bool run_gnuplot(PlotSet *set, const char *name, GError **error)
{
    if (!set->gnuplot) {
        if (!set->noted)
            fprintf(stderr, "fsdpsim: note: gnuplot was not found on PATH, so no images were drawn; the "
                            "data and scripts are in %s: run `gnuplot NAME.gp` there (Debian: apt-get "
                            "install gnuplot-nox)\n", set->dir);
        set->noted = true;
        return true;
    }
    char *script = g_strdup_printf("%s.gp", name);
    char *argv[] = {set->gnuplot, script, NULL};
    char *err = NULL;
    int wait_status = 0;
    GError *spawn = NULL;
    char **env = g_environ_setenv(g_get_environ(), "TZ", "UTC", TRUE);
    /* for a cairo that reads it (1.17.2 and later); a user's own value is kept */
    env = g_environ_setenv(env, "SOURCE_DATE_EPOCH", "0", FALSE);
    bool ok = g_spawn_sync(set->dir, argv, env, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err,
                           &wait_status, &spawn);
    g_strfreev(env);
    if (!ok) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_FAILED, "cannot run %s: %s", set->gnuplot, spawn->message);
        g_error_free(spawn);
    } else if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
        /* gnuplot names the script and line; the first lines say what went wrong */
        char *msg = g_strndup(err ? err : "", 600);
        g_set_error(error, FSD_ERROR, FSD_ERROR_FAILED, "gnuplot failed on %s/%s: %s", set->dir, script,
                    g_strstrip(msg));
        g_free(msg);
        ok = false;
    }
    if (ok && (set->formats & PLOT_PDF))
        ok = pdf_fix_dates(set->dir, name, error);
    if (!ok)
        remove_images(set, name);
    g_free(err);
    g_free(script);
    return ok;
}

bool plot_figure_finish(PlotSet *set, PlotFigure *fig, GError **error)
{
    char *script = figure_script(fig, set->formats);
    bool ok = write_file(set->dir, fig->name, "dat", fig->data->str, error) &&
              write_file(set->dir, fig->name, "gp", script, error) && run_gnuplot(set, fig->name, error);
    if (ok)
        g_ptr_array_add(set->written, g_strdup(fig->name));
    g_free(script);
    figure_free(fig);
    return ok;
}
