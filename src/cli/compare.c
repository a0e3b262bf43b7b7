/* fsdpsim compare --real REAL_TRACE --sim SIM_TRACE: a real run (fsdprun, here or on JUWELS) beside
 * the simulated one; see src/compare/compare.h for what is compared and how. */
#include "cli.h"
#include "../util/cfg.h"
#include "../compare/compare.h"

#include <stdio.h>

int cli_compare(int argc, char **argv)
{
    char *real = NULL, *sim = NULL, *trace = NULL;
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        {"real", 'r', 0, G_OPTION_ARG_FILENAME, &real,
         "Chrome trace of a real run (fsdprun --trace)", "FILE"},
        {"sim", 's', 0, G_OPTION_ARG_FILENAME, &sim,
         "Chrome trace of the simulated run (fsdpsim --trace)", "FILE"},
        {"trace", 0, 0, G_OPTION_ARG_FILENAME, &trace,
         "Write a merged Chrome trace: the median real iteration above the simulated step", "FILE"},
        {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print one JSON object instead of the table",
         NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GError *error = NULL;
    CmpResult r = {0};
    int status = 0;
    if (!cli_parse("- compare a real run with the simulated one",
                   "Step time (median and range over the real iterations) and time per op kind, "
                   "with error = (sim - real) / real.",
                   NULL, entries, argc, argv, &error) ||
        (!real &&
         !cfg_input_error(&error,
                          "option --real: expected a trace file (fsdprun --trace), got nothing")) ||
        (!sim &&
         !cfg_input_error(&error,
                          "option --sim: expected a trace file (fsdpsim --trace), got nothing")) ||
        !cli_check_writable("trace", trace, &error) || !cmp_load(real, sim, &r, &error)) {
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
        cmp_print_table(&r, real, sim, stdout);
    }
out:
    cmp_clear(&r);
    g_free(real), g_free(sim), g_free(trace);
    return status;
}
