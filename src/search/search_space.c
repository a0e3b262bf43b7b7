/* search: the space of options, from --vary and from a JSON file. */
#include "search.h"
#include "../util/cfg.h"

#include <math.h>
#include <string.h>

/* a space this large is a typo, and its points could not be enumerated in a day */
#define SEARCH_MAX_VALUES 100000

void search_space_init(SearchSpace *space)
{
    space->dims = g_ptr_array_new();
}

static void dim_free(SearchDim *d)
{
    g_free(d->option);
    g_ptr_array_free(d->values, TRUE);
    g_free(d);
}

void search_space_clear(SearchSpace *space)
{
    if (!space->dims)
        return;
    for (guint i = 0; i < space->dims->len; i++)
        dim_free(g_ptr_array_index(space->dims, i));
    g_ptr_array_free(space->dims, TRUE);
    space->dims = NULL;
}

static bool parse_int(const char *text, gint64 *out)
{
    char *end = NULL;
    *out = g_ascii_strtoll(text, &end, 10);
    return end != text && *end == '\0';
}

/* "a..b" (step 1), "a..b:+s" (linear), "a..b:xf" (geometric); appended to values. */
static bool expand_range(const char *item, GPtrArray *values, const char **why)
{
    char **ab = g_strsplit(item, "..", 2);
    char *colon = strchr(ab[1], ':');
    char step_kind = '+';
    gint64 a, b, step = 1;
    bool ok = true;
    if (colon) {
        *colon = '\0';
        step_kind = colon[1];
        ok = (step_kind == '+' || step_kind == 'x' || step_kind == '*') &&
             parse_int(colon + 2, &step);
        if (!ok)
            *why = "a step after ':' as +N (linear) or xN (geometric)";
    }
    if (ok && !(parse_int(ab[0], &a) && parse_int(ab[1], &b)))
        ok = false, *why = "integer bounds a..b";
    if (ok && b < a)
        ok = false, *why = "a range a..b with a <= b";
    if (ok && step_kind == '+' && step < 1)
        ok = false, *why = "a linear step of 1 or more";
    if (ok && step_kind != '+' && (step < 2 || a < 1))
        ok = false, *why = "a geometric factor of 2 or more from a start of 1 or more";
    for (gint64 v = a; ok && v <= b; v = step_kind == '+' ? v + step : v * step) {
        if (values->len >= SEARCH_MAX_VALUES) {
            ok = false, *why = "at most 100000 values";
            break;
        }
        g_ptr_array_add(values, g_strdup_printf("%" G_GINT64_FORMAT, v));
    }
    g_strfreev(ab);
    return ok;
}

static bool add_dim(SearchSpace *space, const char *option, GPtrArray *items, const char *where,
                    GError **error)
{
    static const char *refused[] = {"json", "trace",       "emit-schedule", "schedule",
                                    "plot", "plot-format", "report",        "version",
                                    "help", "max-memory"};
    if (!*option || option[0] == '-' || strchr(option, ' '))
        return cfg_input_error(error,
                               "%s: expected OPTION=VALUES with a long option name of the "
                               "simulation (tp=1,2,4), got \"%s\"",
                               where, option);
    for (size_t i = 0; i < G_N_ELEMENTS(refused); i++)
        if (!strcmp(option, refused[i]))
            return cfg_input_error(error,
                                   "%s: option --%s is an output of one simulation, not a "
                                   "dimension of a search",
                                   where, option);
    for (guint i = 0; i < space->dims->len; i++)
        if (!strcmp(((SearchDim *)g_ptr_array_index(space->dims, i))->option, option))
            return cfg_input_error(error, "%s: option --%s is varied twice", where, option);
    SearchDim *d = g_new0(SearchDim, 1);
    d->option = g_strdup(option);
    d->values = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < items->len; i++) {
        const char *item = g_ptr_array_index(items, i);
        const char *why = NULL;
        guint before = d->values->len;
        if (!*item)
            why = "no empty values";
        else if (strstr(item, "..")) {
            if (!expand_range(item, d->values, &why) && !why)
                why = "a range a..b, a..b:+N or a..b:xN";
        } else
            g_ptr_array_add(d->values, g_strdup(item));
        /* every value this item added against every earlier one (a range adds several) */
        for (guint j = before; !why && j < d->values->len; j++)
            for (guint k = 0; !why && k < j; k++)
                if (!strcmp(g_ptr_array_index(d->values, k), g_ptr_array_index(d->values, j)))
                    why = "distinct values";
        if (why) {
            cfg_input_error(error, "%s: option --%s: expected %s, got \"%s\"", where, option, why,
                            item);
            dim_free(d);
            return false;
        }
    }
    g_ptr_array_add(space->dims, d);
    return true;
}

bool search_space_add_vary(SearchSpace *space, const char *text, GError **error)
{
    const char *eq = strchr(text, '=');
    if (!eq || eq == text)
        return cfg_input_error(error,
                               "option --vary: expected OPTION=VALUES (tp=1,2,4 or "
                               "nodes=1..64:x2), got \"%s\"",
                               text);
    char *option = g_strndup(text, (gsize)(eq - text));
    GPtrArray *items = g_ptr_array_new_with_free_func(g_free);
    char **parts = g_strsplit(eq + 1, ",", -1);
    for (char **p = parts; *p; p++)
        g_ptr_array_add(items, g_strdup(g_strstrip(*p)));
    if (!items->len)
        g_ptr_array_add(items, g_strdup(""));
    g_strfreev(parts);
    char *where = g_strdup_printf("option --vary %s", option);
    bool ok = add_dim(space, option, items, where, error);
    g_free(where), g_free(option);
    g_ptr_array_free(items, TRUE);
    return ok;
}

bool search_space_load_json(SearchSpace *space, const char *file, GError **error)
{
    char *text = NULL;
    GError *io = NULL;
    if (!g_file_get_contents(file, &text, NULL, &io)) {
        cfg_input_error(error, "%s: cannot read file: %s", file, io->message);
        g_error_free(io);
        return false;
    }
    cJSON *root = cJSON_Parse(text);
    g_free(text);
    cJSON *vary = cJSON_GetObjectItemCaseSensitive(root, "vary");
    bool ok = cJSON_IsObject(vary);
    if (!ok)
        cfg_input_error(error,
                        "%s: field 'vary': expected an object of option: values "
                        "({\"vary\": {\"tp\": [1, 2, 4]}})",
                        file);
    for (cJSON *d = vary ? vary->child : NULL; ok && d; d = d->next) {
        GPtrArray *items = g_ptr_array_new_with_free_func(g_free);
        if (cJSON_IsString(d))
            g_ptr_array_add(items, g_strdup(d->valuestring));
        for (cJSON *v = cJSON_IsArray(d) ? d->child : NULL; v; v = v->next) {
            if (cJSON_IsString(v))
                g_ptr_array_add(items, g_strdup(v->valuestring));
            else if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble))
                g_ptr_array_add(items, g_strdup_printf("%.0f", v->valuedouble));
            else if (cJSON_IsNumber(v))
                g_ptr_array_add(items, g_strdup_printf("%.17g", v->valuedouble));
            else if (cJSON_IsBool(v))
                g_ptr_array_add(items, g_strdup(cJSON_IsTrue(v) ? "on" : "off"));
            else
                g_ptr_array_add(items, g_strdup(""));
        }
        if (!items->len)
            ok = cfg_input_error(error,
                                 "%s: field 'vary.%s': expected a list of values or a "
                                 "range string (\"1..64:x2\")",
                                 file, d->string);
        char *where = g_strdup_printf("%s: field 'vary.%s'", file, d->string);
        ok = ok && add_dim(space, d->string, items, where, error);
        g_free(where);
        g_ptr_array_free(items, TRUE);
    }
    cJSON_Delete(root);
    return ok;
}

uint64_t search_space_size(const SearchSpace *space)
{
    uint64_t n = 1;
    for (guint i = 0; i < space->dims->len; i++) {
        uint64_t k = ((SearchDim *)g_ptr_array_index(space->dims, i))->values->len;
        n = k && n > UINT64_MAX / k ? UINT64_MAX : n * k;
    }
    return n;
}

void search_space_point(const SearchSpace *space, uint64_t index, const char **values)
{
    for (guint i = space->dims->len; i-- > 0;) {
        const SearchDim *d = g_ptr_array_index(space->dims, i);
        values[i] = g_ptr_array_index(d->values, index % d->values->len);
        index /= d->values->len;
    }
}

void search_point_argv(const SearchSpace *space, const char **values, GPtrArray *argv)
{
    for (guint i = 0; i < space->dims->len; i++) {
        const SearchDim *d = g_ptr_array_index(space->dims, i);
        if (!strcmp(values[i], "off"))
            continue; /* a flag left out */
        if (!strcmp(values[i], "on"))
            g_ptr_array_add(argv, g_strdup_printf("--%s", d->option));
        else
            g_ptr_array_add(argv, g_strdup_printf("--%s=%s", d->option, values[i]));
    }
}

char *search_point_key(const SearchSpace *space, const char **values)
{
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < space->dims->len; i++)
        g_string_append_printf(s, "%s%s=%s", i ? " " : "",
                               ((SearchDim *)g_ptr_array_index(space->dims, i))->option, values[i]);
    return g_string_free(s, FALSE);
}
