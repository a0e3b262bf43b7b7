/* --plot DIR, --plot-format LIST and --report DIR of a simulation (figures.c): checked before any
 * work is done, written after the summary is printed. */
#pragma once

#include "../compare/compare.h"
#include "../report/report.h"

#include <glib.h>
#include <stdbool.h>

bool cli_figures_check(const char *plot_dir, const char *report_dir, const char *formats,
                       GError **error);
/* command: the command line, shown in the report's README (NULL: none) */
bool cli_figures_write(const char *plot_dir, const char *report_dir, const char *formats,
                       const char *command, const Report *rep, GError **error);

/* compare's and validate's --plot DIR (compare.c): the figures of a loaded comparison, titled
 * `title`, else by what the real trace names, else by the two file names. Formats already
 * checked by cli_figures_check. */
bool cli_compare_plot(const CmpResult *r, const char *dir, const char *formats, const char *title,
                      const char *real_file, const char *sim_file, GError **error);
