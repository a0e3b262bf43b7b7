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

/* "-n" as "-n (--nodes)", from the entries; anything else as it is. */
static char *option_long_name(const char *option, const GOptionEntry *entries)
{
    if (option[0] == '-' && option[1] && option[1] != '-' && !option[2])
        for (const GOptionEntry *entry = entries; entry->long_name; entry++)
            if (entry->short_name == option[1])
                return g_strdup_printf("%s (--%s)", option, entry->long_name);
    return g_strdup(option);
}

/* GLib's own words for a bad value ("Cannot parse integer value “four” for --nodes"), in the C
 * locale main() sets, rewritten as every other option's message: "option --nodes: expected an
 * integer, got "four"". Any other text is kept as GLib wrote it. */
static char *option_bad_value(const char *message, const GOptionEntry *entries)
{
    static const struct {
        const char *before, *after, *expected;
    } forms[] = {
        {"Cannot parse integer value \u201c", "\u201d for ", "an integer"},
        {"Integer value \u201c", "\u201d for ", "an integer from -2147483648 to 2147483647"},
        {"Cannot parse double value \u201c", "\u201d for ", "a number"},
        {"Double value \u201c", "\u201d for ", "a finite number"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(forms); i++) {
        if (!g_str_has_prefix(message, forms[i].before))
            continue;
        const char *value = message + strlen(forms[i].before);
        const char *end = strstr(value, forms[i].after);
        if (!end)
            break;
        g_autofree char *option = g_strdup(end + strlen(forms[i].after));
        char *space = strchr(option, ' '); /* " out of range" */
        if (space)
            *space = '\0';
        g_autofree char *named = option_long_name(option, entries);
        return g_strdup_printf("option %s: expected %s, got \"%.*s\"", named, forms[i].expected,
                               (int)(end - value), value);
    }
    if (g_str_has_prefix(message, "Missing argument for ")) {
        g_autofree char *named =
            option_long_name(message + strlen("Missing argument for "), entries);
        return g_strdup_printf("option %s: its value is missing", named);
    }
    return g_strdup(message);
}

char *cli_option_message(const GError *e, const GOptionEntry *entries, const char *command)
{
    g_autofree char *hint = cli_option_hint(e, entries);
    g_autofree char *text =
        e->domain == G_OPTION_ERROR ? option_bad_value(e->message, entries) : g_strdup(e->message);
    if (!command)
        return g_strdup_printf("%s%s", text, hint);
    return g_strdup_printf("%s%s (see %s --help)", text, hint, command);
}

char *cli_command_line(const char *name, int argc, char **argv)
{
    GString *line = g_string_new(name);
    for (int i = 1; i < argc; i++) {
        bool plain = *argv[i] != '\0';
        for (const char *c = argv[i]; *c && plain; c++)
            plain = g_ascii_isalnum(*c) || strchr("_./:=,+-@%", *c);
        g_autofree char *quoted = plain ? g_strdup(argv[i]) : g_shell_quote(argv[i]);
        g_string_append_printf(line, " %s", quoted);
    }
    return g_string_free(line, FALSE);
}

bool cli_parse(const char *params, const char *summary, const char *description,
               const GOptionEntry *entries, int argc, char **argv, GError **error)
{
    GOptionContext *ctx = g_option_context_new(params);
    if (summary)
        g_option_context_set_summary(ctx, summary);
    g_option_context_set_description(
        ctx, description
                 ? description
                 : "Exit status: 0 success, 1 failure, 2 bad input.\nDefaults in brackets.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    bool ok = g_option_context_parse(ctx, &argc, &argv, error);
    g_option_context_free(ctx);
    if (ok && argc > 1)
        ok = cfg_input_error(error, "unexpected argument '%s' (see %s --help)", argv[1], argv[0]);
    else if (!ok) {
        GError *e = *error;
        g_autofree char *text = cli_option_message(e, entries, argv[0]);
        *error = g_error_new_literal(FSD_ERROR, FSD_ERROR_INPUT, text);
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
