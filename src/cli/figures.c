/* The --plot and --report options of a single simulation (simulate.c): figures and a report
 * folder, from the same Report that the summary is printed from. */
#include "cli.h"
#include "figures.h"
#include "../plot/plot.h"
#include "../util/cfg.h"

#include <unistd.h>

/* An output folder must exist and be writable, or be creatable (its parent exists and is
 * writable): refused before any output is printed, never after. */
bool cli_check_dir(const char *option, const char *dir, GError **error)
{
    if (!dir)
        return true;
    if (!*dir)
        return cfg_input_error(error, "option --%s: expected a directory, got \"\"", option);
    if (g_file_test(dir, G_FILE_TEST_EXISTS)) {
        if (!g_file_test(dir, G_FILE_TEST_IS_DIR))
            return cfg_input_error(error, "option --%s: expected a directory, got %s: not a directory", option, dir);
        if (access(dir, W_OK) != 0)
            return cfg_input_error(error, "option --%s: cannot write in %s: directory not writable", option, dir);
        return true;
    }
    char *parent = g_path_get_dirname(dir);
    bool ok = g_file_test(parent, G_FILE_TEST_IS_DIR) && access(parent, W_OK) == 0;
    if (!ok)
        cfg_input_error(error, "option --%s: cannot create %s: %s", option, dir,
                        g_file_test(parent, G_FILE_TEST_IS_DIR) ? "directory not writable" : "no such parent directory");
    g_free(parent);
    return ok;
}

bool cli_figures_check(const char *plot_dir, const char *report_dir, const char *formats, GError **error)
{
    unsigned f;
    if (formats && !plot_formats_parse(formats, &f))
        return cfg_input_error(error, "option --plot-format: expected a comma-separated list of png, svg, pdf "
                                      "(or all), got \"%s\"", formats);
    if (formats && !plot_dir && !report_dir)
        return cfg_input_error(error, "option --plot-format applies to --plot and --report, and neither was given");
    return cli_check_dir("plot", plot_dir, error) && cli_check_dir("report", report_dir, error);
}

bool cli_figures_write(const char *plot_dir, const char *report_dir, const char *formats,
                       const char *command, const Report *rep, GError **error)
{
    unsigned f = PLOT_ALL;
    if (formats)
        plot_formats_parse(formats, &f);
    if (plot_dir) {
        PlotSet *set = plot_set_new("plot", plot_dir, f, error);
        bool ok = set && plot_run_figures(set, rep, error);
        plot_set_free(set);
        if (!ok)
            return false;
    }
    return !report_dir || plot_report_run(report_dir, f, rep, command, error);
}
