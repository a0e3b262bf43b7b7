/* Helpers shared by the subcommands: messages, default paths, option parsing. */
#include "cli.h"
#include "../util/cfg.h"

#include <stdio.h>
#include <unistd.h>

#ifndef FSDPSIM_DATADIR
#define FSDPSIM_DATADIR "."
#endif

char *cli_default_path(const char *rel)
{
    if (g_file_test(rel, G_FILE_TEST_EXISTS))
        return g_strdup(rel);
    return g_build_filename(FSDPSIM_DATADIR, rel, NULL);
}

bool cli_check_writable(const char *option, const char *path, GError **error)
{
    if (!path)
        return true;
    char *dir = g_path_get_dirname(path);
    const char *why = !g_file_test(dir, G_FILE_TEST_IS_DIR) ? "no such directory"
                      : g_file_test(path, G_FILE_TEST_IS_DIR) ? "is a directory"
                      : access(dir, W_OK) != 0                ? "directory not writable"
                                                              : NULL;
    if (why)
        cfg_input_error(error, "option --%s: cannot write %s: %s", option, path, why);
    g_free(dir);
    return why == NULL;
}

bool cli_parse(const char *params, const char *summary, const char *description,
               const GOptionEntry *entries, int argc, char **argv, GError **error)
{
    GOptionContext *ctx = g_option_context_new(params);
    if (summary)
        g_option_context_set_summary(ctx, summary);
    g_option_context_set_description(ctx, description
        ? description
        : "Exit status: 0 success, 1 failure, 2 bad input.\nDefaults in brackets.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    bool ok = g_option_context_parse(ctx, &argc, &argv, error);
    g_option_context_free(ctx);
    if (ok && argc > 1)
        ok = cfg_input_error(error, "unexpected argument '%s' (see %s --help)", argv[1], argv[0]);
    else if (!ok) {
        GError *e = *error;
        *error = g_error_new(FSD_ERROR, FSD_ERROR_INPUT, "%s (see %s --help)", e->message, argv[0]);
        g_error_free(e);
    }
    return ok;
}

int cli_report_error(GError *error)
{
    fprintf(stderr, "fsdpsim: %s\n", error->message);
    int status = error->domain == FSD_ERROR && error->code == FSD_ERROR_FAILED ? 1 : 2;
    g_error_free(error);
    return status;
}
