/* --plot DIR, --plot-format LIST and --report DIR of a simulation (figures.c): checked before any
 * work is done, written after the summary is printed. */
#pragma once

#include "../report/report.h"

#include <glib.h>
#include <stdbool.h>

bool cli_figures_check(const char *plot_dir, const char *report_dir, const char *formats, GError **error);
bool cli_figures_write(const char *plot_dir, const char *report_dir, const char *formats, const Report *rep,
                       GError **error);
