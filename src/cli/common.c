/* Helpers shared by the subcommands: messages, default paths, option parsing. */
#include "cli.h"
#include "../coll/coll.h"
#include "../util/cfg.h"

#include <stdio.h>
#include <string.h>
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

const char *cli_did_you_mean(const char *got, const char *const *choices)
{
    static char text[128];
    const char *close = got ? cfg_closest(got, choices) : NULL;
    if (!close)
        return "";
    g_snprintf(text, sizeof text, "; did you mean '%s'?", close);
    return text;
}

const char *cli_strip_prefix(const char *text, const char *prefix)
{
    return g_str_has_prefix(text, prefix) ? text + strlen(prefix) : text;
}

char *cli_option_hint(const GError *e, const GOptionEntry *entries)
{
    if (e->domain != G_OPTION_ERROR || e->code != G_OPTION_ERROR_UNKNOWN_OPTION)
        return g_strdup("");
    const char *message = e->message;
    const char *dash = strstr(message, "--");
    if (!dash)
        return g_strdup("");
    g_autofree char *name = g_strdup(dash + 2);
    char *end = strpbrk(name, "= ");
    if (end)
        *end = '\0';
    GPtrArray *longs = g_ptr_array_new();
    for (const GOptionEntry *entry = entries; entry->long_name; entry++)
        g_ptr_array_add(longs, (gpointer)entry->long_name);
    g_ptr_array_add(longs, NULL);
    const char *close = cfg_closest(name, (const char *const *)longs->pdata);
    char *hint = close ? g_strdup_printf("; did you mean --%s?", close) : g_strdup("");
    g_ptr_array_free(longs, TRUE);
    return hint;
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
        g_autofree char *hint = cli_option_hint(e, entries);
        *error = g_error_new(FSD_ERROR, FSD_ERROR_INPUT, "%s%s (see %s --help)", e->message, hint,
                             argv[0]);
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

bool cli_nccl_version(const char *text, int *out, GError **error)
{
    if (!text || coll_nccl_version_parse(text, out))
        return true;
    cfg_input_error(error,
                    "option --nccl-version: expected an NCCL 2.x release such as 2.23.4 (or 2.23), "
                    "got \"%s\"",
                    text);
    return false;
}
