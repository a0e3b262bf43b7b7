/* fsdpsim list models|topologies: the shipped data files, one line each, by the name that
 * --model and --topology accept; and the name lookup behind those options (cli_data_file).
 * Cost: reads every shipped file once (a few dozen JSON files, milliseconds). */
#include "cli.h"
#include "../util/cfg.h"

#include <stdio.h>
#include <string.h>

static const char *const kinds[] = {"models", "topologies", NULL};

/* The shipped file names of one kind, without ".json", sorted; NULL-terminated (g_strfreev). */
static char **shipped_names(const char *kind)
{
    g_autofree char *dir = cli_default_path(kind);
    GPtrArray *names = g_ptr_array_new();
    GDir *d = g_dir_open(dir, 0, NULL);
    for (const char *f; d && (f = g_dir_read_name(d));)
        if (g_str_has_suffix(f, ".json"))
            g_ptr_array_add(names, g_strndup(f, strlen(f) - 5));
    if (d)
        g_dir_close(d);
    /* insertion sort by strcmp: a few dozen names */
    for (guint i = 1; i < names->len; i++)
        for (guint j = i; j > 0 && strcmp(names->pdata[j - 1], names->pdata[j]) > 0; j--) {
            gpointer t = names->pdata[j];
            names->pdata[j] = names->pdata[j - 1];
            names->pdata[j - 1] = t;
        }
    g_ptr_array_add(names, NULL);
    return (char **)g_ptr_array_free(names, FALSE);
}

/* The shipped names that contain arg, in any case ("llama" -> llama2-70b, llama2-7b, llama3-8b),
 * as "; did you mean 'a', 'b' or 'c'?", at most four; "" when none or more. */
static char *shipped_containing(const char *arg, char *const *names)
{
    g_autofree char *want = g_ascii_strdown(arg, -1);
    GPtrArray *hits = g_ptr_array_new();
    for (int i = 0; names[i]; i++)
        if (strstr(names[i], want))
            g_ptr_array_add(hits, names[i]);
    GString *text = g_string_new("");
    if (hits->len > 0 && hits->len <= 4) {
        g_string_append(text, "; did you mean ");
        for (guint i = 0; i < hits->len; i++)
            g_string_append_printf(text, "%s'%s'",
                                   i == 0              ? ""
                                   : i + 1 < hits->len ? ", "
                                                       : " or ",
                                   (const char *)hits->pdata[i]);
        g_string_append(text, "?");
    }
    g_ptr_array_free(hits, TRUE);
    return g_string_free(text, FALSE);
}

bool cli_data_file(const char *option, const char *kind, const char *arg, char **path,
                   GError **error)
{
    bool models = strcmp(kind, "models") == 0;
    /* a directory: for a model, the config.json in it, as from_pretrained reads a directory
     * that save_pretrained wrote */
    if (g_file_test(arg, G_FILE_TEST_IS_DIR)) {
        g_autofree char *config = g_build_filename(arg, "config.json", NULL);
        if (models && g_file_test(config, G_FILE_TEST_IS_REGULAR)) {
            *path = g_steal_pointer(&config);
            return true;
        }
        return cfg_input_error(error, "option --%s: %s is a directory%s; expected %s", option, arg,
                               models ? " without a config.json" : "",
                               models ? "a Hugging Face config.json (or the directory holding it), "
                                        "an fsdpsim layer list or a shipped model's name"
                                      : "a topology file or a shipped topology's name");
    }
    /* a path as given: a file that exists, or anything that looks like a path (its own error
     * comes from the reader, naming it) */
    if (g_file_test(arg, G_FILE_TEST_EXISTS) || strchr(arg, G_DIR_SEPARATOR)) {
        *path = g_strdup(arg);
        return true;
    }
    /* "gpt2" or "gpt2.json": the shipped file of that name */
    g_autofree char *rel =
        g_strdup_printf("%s/%s%s", kind, arg, g_str_has_suffix(arg, ".json") ? "" : ".json");
    g_autofree char *shipped = cli_default_path(rel);
    if (g_file_test(shipped, G_FILE_TEST_IS_REGULAR)) {
        *path = g_steal_pointer(&shipped);
        return true;
    }
    if (g_str_has_suffix(arg, ".json")) { /* a file name: the reader's message names it */
        *path = g_strdup(arg);
        return true;
    }
    /* a shipped name in another case (-t JUWELS-Booster), as option values take any case */
    char **names = shipped_names(kind);
    for (int i = 0; names[i]; i++)
        if (g_ascii_strcasecmp(arg, names[i]) == 0) {
            g_autofree char *file = g_strdup_printf("%s/%s.json", kind, names[i]);
            *path = cli_default_path(file);
            g_strfreev(names);
            return true;
        }
    const char *close = cfg_closest(arg, (const char *const *)names);
    g_autofree char *hint =
        close ? g_strdup_printf("; did you mean '%s'?", close) : shipped_containing(arg, names);
    cfg_input_error(error,
                    "option --%s: no file '%s' and no shipped %s called '%s'%s (fsdpsim list "
                    "%s shows them)",
                    option, arg, models ? "model" : "topology", arg, hint, kind);
    g_strfreev(names);
    return false;
}

static const char *json_string(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* A number, or a sourced number {"value": X, "source": ...}; 0 when absent. */
static double json_number(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsObject(it))
        it = cJSON_GetObjectItemCaseSensitive(it, "value");
    return cJSON_IsNumber(it) ? it->valuedouble : 0;
}

/* One line for a model: name, parameters, architecture, the file's own name for it. */
static void print_model(const char *name, const cJSON *doc)
{
    const cJSON *fs = cJSON_GetObjectItemCaseSensitive(doc, "fsdpsim");
    const char *type = json_string(doc, "model_type");
    const char *title = json_string(fs, "name");
    if (!title)
        title = json_string(doc, "name");
    double params = json_number(fs, "published_params");
    printf("%-22s %9.3f B  %-14s %s\n", name, params / 1e9, type ? type : "layer list",
           title ? title : "");
}

/* One line for a topology: name, GPUs per node x nodes, the GPU. */
static void print_topology(const char *name, const cJSON *doc)
{
    const cJSON *node = cJSON_GetObjectItemCaseSensitive(doc, "node");
    const cJSON *gpu = cJSON_GetObjectItemCaseSensitive(doc, "gpu");
    const char *gpu_name = json_string(gpu, "name");
    double nodes = json_number(doc, "nodes_max"), gpus = json_number(node, "gpus");
    printf("%-24s %5.0f node%s x %.0f GPU%s  %s\n", name, nodes, nodes == 1 ? " " : "s", gpus,
           gpus == 1 ? " " : "s", gpu_name ? gpu_name : "");
}

int cli_list(int argc, char **argv)
{
    GError *error = NULL;
    GOptionEntry entries[] = {{NULL}};
    /* options (--help) go to GOption; the one positional argument is read here */
    bool options = false;
    for (int i = 1; i < argc; i++)
        options |= argv[i][0] == '-';
    if (options && !cli_parse("models|topologies",
                              "The shipped models and topologies, one line each, by the name "
                              "--model and --topology take.",
                              NULL, entries, argc, argv, &error))
        return cli_report_error(error);
    if (argc != 2) {
        return cli_report_error(g_error_new(FSD_ERROR, FSD_ERROR_INPUT,
                                            "list: expected one argument, models or topologies "
                                            "(see fsdpsim list --help)"));
    }
    const char *kind = NULL;
    for (int i = 0; kinds[i]; i++)
        if (!g_ascii_strcasecmp(argv[1], kinds[i]) ||
            (!g_ascii_strncasecmp(argv[1], kinds[i], 5) && strlen(argv[1]) >= 5))
            kind = kinds[i];
    if (!kind) {
        const char *close = cfg_closest(argv[1], kinds);
        return cli_report_error(g_error_new(
            FSD_ERROR, FSD_ERROR_INPUT, "list: expected models or topologies, got '%s'%s%s%s",
            argv[1], close ? "; did you mean '" : "", close ? close : "", close ? "'?" : ""));
    }
    char **names = shipped_names(kind);
    for (char **n = names; *n; n++) {
        g_autofree char *rel = g_strdup_printf("%s/%s.json", kind, *n);
        g_autofree char *path = cli_default_path(rel);
        cJSON *doc = cfg_parse_file(path, NULL);
        if (!doc)
            continue; /* a broken file is reported when it is used, naming the field */
        if (strcmp(kind, "models") == 0)
            print_model(*n, doc);
        else
            print_topology(*n, doc);
        cJSON_Delete(doc);
    }
    g_strfreev(names);
    return 0;
}
