/* fsdpsim compare-traces: a real run's Chrome trace against a simulated one. Prints busy time per
 * op kind and the relative error; --plot DIR draws both timelines one above the other and the
 * error per op kind. `compare` and `validate` (the real backend) can call plot_compare_traces
 * the same way. */
#include "cli.h"
#include "../util/cfg.h"
#include "../plot/plot.h"

#include <stdio.h>

int cli_compare_traces(int argc, char **argv)
{
    char *real = NULL, *sim = NULL, *plot_dir = NULL, *formats_text = NULL, *title = NULL;
    GOptionEntry entries[] = {
        {"real", 'r', 0, G_OPTION_ARG_FILENAME, &real, "Trace of the real run: fsdprun's, or a PyTorch profiler (Kineto) trace (required)", "FILE"},
        {"simulated", 's', 0, G_OPTION_ARG_FILENAME, &sim, "Trace of the simulation: fsdpsim --trace FILE (required)", "FILE"},
        {"plot", 0, 0, G_OPTION_ARG_FILENAME, &plot_dir, "Write the figures (compare_timeline, compare_error) with their data and gnuplot scripts to DIR", "DIR"},
        {"plot-format", 0, 0, G_OPTION_ARG_STRING, &formats_text, "Image formats: png, svg, pdf, comma-separated [png,svg,pdf]", "LIST"},
        {"title", 0, 0, G_OPTION_ARG_STRING, &title, "What was run, for the figures' titles [the two file names]", "TEXT"},
        {NULL, 0, 0, 0, NULL, NULL, NULL}};
    GError *error = NULL;
    int status = 2;
    unsigned formats = PLOT_ALL;
    if (!cli_parse("- real against simulated, from two Chrome traces",
                   "Busy time per op kind (compute, each collective, send/recv) in both traces, and the\n"
                   "relative error (simulated - real) / real.\n\n"
                   "Example:\n  fsdpsim compare-traces --real real.json --simulated sim.json --plot figures",
                   NULL, entries, argc, argv, &error))
        goto out;
    if (!real || !sim) {
        cfg_input_error(&error, "option --%s: expected a trace file, got nothing (both --real and --simulated "
                                "are required)", real ? "simulated" : "real");
        goto out;
    }
    if (formats_text && !plot_formats_parse(formats_text, &formats)) {
        cfg_input_error(&error, "option --plot-format: expected a comma-separated list of png, svg, pdf (or all), "
                                "got \"%s\"", formats_text);
        goto out;
    }
    if (!cli_check_dir("plot", plot_dir, &error))
        goto out;
    char *real_base = g_path_get_basename(real), *sim_base = g_path_get_basename(sim);
    char *what = title ? g_strdup(title) : g_strdup_printf("%s against %s", real_base, sim_base);
    g_free(real_base), g_free(sim_base);
    GString *table = g_string_new(NULL);
    /* read both traces before creating the folder, so that bad input leaves nothing behind */
    bool ok = plot_compare_traces(NULL, real, sim, what, table, &error);
    if (ok) {
        fputs(table->str, stdout);
        fflush(stdout);
        if (plot_dir) {
            PlotSet *set = plot_set_new("plot", plot_dir, formats, &error);
            ok = set && plot_compare_traces(set, real, sim, what, NULL, &error);
            plot_set_free(set);
        }
    }
    g_string_free(table, TRUE);
    g_free(what);
    status = ok ? 0 : 2;
out:
    if (error)
        status = cli_report_error(error);
    g_free(real), g_free(sim), g_free(plot_dir), g_free(formats_text), g_free(title);
    return status;
}
