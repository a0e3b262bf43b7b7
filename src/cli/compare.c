/* fsdpsim compare --real REAL_TRACE --sim SIM_TRACE: a real run (fsdprun, either backend, here or
 * on JUWELS; or a PyTorch profiler trace) beside the simulated one; see src/compare/compare.h for
 * what is compared and how. --trace writes both timelines as one Chrome trace, --plot DIR the
 * figures (src/plot/plot_compare.c). */
#include "cli.h"
#include "figures.h"
#include "../util/cfg.h"
#include "../compare/compare.h"
#include "../plot/plot.h"

#include <stdio.h>

/* The figures of a comparison in DIR; title NULL: what the real trace names, else the files. */
bool cli_compare_plot(const CmpResult *r, const char *dir, const char *formats_text,
                      const char *title, const char *real_file, const char *sim_file,
                      GError **error)
{
    unsigned formats = PLOT_ALL;
    if (formats_text)
        plot_formats_parse(formats_text, &formats); /* checked by cli_figures_check */
    char *what = title ? g_strdup(title) : cmp_title(r);
    if (!what) {
        char *a = g_filename_display_basename(real_file);
        char *b = g_filename_display_basename(sim_file);
        what = g_strdup_printf("%s against %s", a, b);
        g_free(a), g_free(b);
    }
    PlotSet *set = plot_set_new("plot", dir, formats, error);
    bool ok = set && plot_compare(set, r, what, error);
    plot_set_free(set);
    g_free(what);
    return ok;
}

int cli_compare(int argc, char **argv)
{
    char **reals = NULL;
    char *real = NULL, *sim = NULL, *trace = NULL, *plot_dir = NULL, *formats = NULL, *title = NULL;
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        {"real", 'r', 0, G_OPTION_ARG_FILENAME_ARRAY, &reals,
         "Chrome trace of a real run (fsdprun --trace), or PyTorch profiler traces (.json, "
         ".json.gz, a directory; repeat for one file per rank)",
         "FILE"},
        {"sim", 's', 0, G_OPTION_ARG_FILENAME, &sim,
         "Chrome trace of the simulated run (fsdpsim --trace)", "FILE"},
        {"trace", 0, 0, G_OPTION_ARG_FILENAME, &trace,
         "Write a merged Chrome trace: the median real iteration above the simulated step", "FILE"},
        {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print one JSON object instead of the table",
         NULL},
        {"plot", 0, 0, G_OPTION_ARG_FILENAME, &plot_dir,
         "Write the figures compare_timeline and compare_error (data, gnuplot script, images) to "
         "DIR",
         "DIR"},
        {"plot-format", 0, 0, G_OPTION_ARG_STRING, &formats,
         "Image formats: png, svg, pdf, comma-separated [png,svg,pdf]", "LIST"},
        {"title", 0, 0, G_OPTION_ARG_STRING, &title,
         "What was run, for the figures' titles [model, strategy and topology from the real "
         "trace, else the file names]",
         "TEXT"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GError *error = NULL;
    CmpResult r = {0};
    int status = 0;
    if (!cli_parse("- compare a real run with the simulated one",
                   "Step time (median and range over the real iterations) and time per op kind per "
                   "rank per step,\nwith error = (sim - real) / real.\n\n"
                   "Example:\n  fsdpsim compare --real real.json --sim sim.json --plot figures",
                   NULL, entries, argc, argv, &error) ||
        !(real = reals ? g_strdup(reals[0]) : NULL, true) ||
        (!real &&
         !cfg_input_error(&error, "option --real: expected a trace file (fsdprun --trace), got "
                                  "nothing (--real and --sim are required)")) ||
        (!sim && !cfg_input_error(&error, "option --sim: expected a trace file (fsdpsim --trace), "
                                          "got nothing (--real and --sim are required)")) ||
        !cli_check_writable("trace", trace, &error) ||
        !cli_figures_check(plot_dir, NULL, formats, &error) ||
        /* read both traces before writing anything, so that bad input leaves nothing behind */
        !cmp_load_traces((const char *const *)reals, (int)g_strv_length(reals), sim, &r, &error)) {
        status = cli_report_error(error);
        goto out;
    }
    if (trace) {
        char *text = cmp_merged_trace(&r);
        GError *e = NULL;
        if (!g_file_set_contents(trace, text, -1, &e)) {
            cfg_input_error(&error, "option --trace: %s", e->message);
            g_error_free(e);
            g_free(text);
            status = cli_report_error(error);
            goto out;
        }
        g_free(text);
    }
    if (json) {
        char *text = cmp_to_json(&r);
        printf("%s\n", text);
        g_free(text);
    } else {
        guint n_real = g_strv_length(reals);
        char *shown =
            n_real > 1 ? g_strdup_printf("%s (+%u more)", real, n_real - 1) : g_strdup(real);
        cmp_print_table(&r, shown, sim, stdout);
        g_free(shown);
    }
    fflush(stdout);
    /* a factor of two is no model error: the real run and the simulation describe different
     * jobs (another model, batch or layout) */
    if (r.real_median_s > 0 && (r.sim_s > 2 * r.real_median_s || r.sim_s < 0.5 * r.real_median_s))
        fprintf(stderr,
                "fsdpsim: note: real (%.3f ms) and simulated (%.3f ms) steps differ by "
                "more than 2x: the same model, batch and layout?\n",
                r.real_median_s * 1e3, r.sim_s * 1e3);
    if (plot_dir && !cli_compare_plot(&r, plot_dir, formats, title, real, sim, &error))
        status = cli_report_error(error);
out:
    cmp_clear(&r);
    g_strfreev(reals);
    g_free(real), g_free(sim), g_free(trace), g_free(plot_dir), g_free(formats), g_free(title);
    return status;
}
