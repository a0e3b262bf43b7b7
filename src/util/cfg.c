/* cfg: JSON input reading with precise error messages; see cfg.h. */
#define _GNU_SOURCE /* pthread_getattr_np: the main thread's stack, for the out-of-memory handler */
#include "cfg.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK(fsdpsim - error - quark, fsd_error)

static char *field_name(const char *path, const char *key)
{
    if (!path || !*path)
        return g_strdup(key ? key : "(top level)");
    if (!key)
        return g_strdup(path);
    return g_strdup_printf("%s.%s", path, key);
}

void cfg_set_error(GError **error, const char *file, const char *path, const char *key,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    char *field = field_name(path, key);
    g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT, "%s: field '%s': %s", file, field, what);
    g_free(field);
    g_free(what);
}

/* Line and column of a byte offset, for parse errors. */
static void line_col(const char *text, size_t offset, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < offset && text[i]; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* The end of the JSON string that starts at the quote text[i] (the index of its closing quote).
 * The text has parsed, so the string is closed. */
static size_t string_end(const char *text, size_t i)
{
    for (i++; text[i] != '"'; i++)
        if (text[i] == '\\' && text[i + 1])
            i++;
    return i;
}

/* A key of the object being scanned: its text (in the file, or decoded when it has escapes,
 * so that "\u0061" and "a" are one key), its length and its line. */
typedef struct {
    const char *text;
    size_t len;
    int line;
} DupKey;

/* An open object or array of the scan: where its keys start in the scan's key list, and a table
 * of copies of them once it has more than DUP_PAIRWISE (NULL before, and for arrays). */
typedef struct {
    bool object;
    guint first;
    GHashTable *table; /* of DupKey*, owned */
} DupFrame;

enum { DUP_PAIRWISE = 16 }; /* up to 16 keys: compared one by one, no allocation */

static guint dup_key_hash(gconstpointer p)
{
    const DupKey *k = p;
    guint h = 5381; /* djb2, as g_str_hash, over a length-bounded key */
    for (size_t i = 0; i < k->len; i++)
        h = h * 33 + (unsigned char)k->text[i];
    return h;
}

static gboolean dup_key_equal(gconstpointer a, gconstpointer b)
{
    const DupKey *ka = a, *kb = b;
    return ka->len == kb->len && !memcmp(ka->text, kb->text, ka->len);
}

/* Refuses an object with the same key twice, naming both lines. cJSON would take the first;
 * Python's json (and so Hugging Face's loader) takes the last: either is a silent choice for a
 * file that says two things. One pass over text that has already parsed, with a stack of the
 * open objects and arrays. A key is a slice of the text (decoded only when it has a backslash),
 * compared with its object's earlier keys one by one up to DUP_PAIRWISE of them, then through a
 * table: O(length), with no allocation for objects of up to DUP_PAIRWISE plain keys (past that,
 * and for keys with escapes, a copy each). On a 99 MB Chrome trace (CPU time): cJSON's
 * parse 0.79 s; this scan 0.11 s; the scan it replaces, which g_strdup'ed every key into a table
 * per object, 0.47 s; a check on the parsed tree 0.48-0.62 s (a walk of millions of cJSON nodes
 * is cache misses, where this scan reads the text in order). Nesting is bounded by cJSON's
 * limit (1000). */
static bool check_duplicate_keys(const char *file, const char *text, GError **error)
{
    GArray *frames = g_array_new(FALSE, FALSE, sizeof(DupFrame));
    GArray *keys = g_array_new(FALSE, FALSE, sizeof(DupKey));
    GPtrArray *decoded = g_ptr_array_new_with_free_func(g_free); /* keys with escapes */
    int line = 1;
    bool ok = true;
    for (size_t i = 0; ok && text[i]; i++) {
        switch (text[i]) {
        case '\n':
            line++;
            break;
        case '{':
        case '[':
            g_array_append_val(frames, ((DupFrame){text[i] == '{', keys->len, NULL}));
            break;
        case '}':
        case ']':
            if (frames->len) {
                DupFrame *top = &g_array_index(frames, DupFrame, frames->len - 1);
                g_array_set_size(keys, top->first);
                if (top->table)
                    g_hash_table_destroy(top->table);
                g_array_set_size(frames, frames->len - 1);
            }
            break;
        case '"': {
            size_t end = string_end(text, i), j = end + 1;
            while (text[j] == ' ' || text[j] == '\t' || text[j] == '\r' || text[j] == '\n')
                j++;
            DupFrame *top = frames->len ? &g_array_index(frames, DupFrame, frames->len - 1) : NULL;
            if (text[j] == ':' && top && top->object) {
                DupKey key = {text + i + 1, end - i - 1, line};
                if (memchr(key.text, '\\', key.len)) {
                    char *raw = g_strndup(text + i, end - i + 1);
                    cJSON *s = cJSON_Parse(raw);
                    char *k = g_strdup(cJSON_IsString(s) ? s->valuestring : raw);
                    cJSON_Delete(s), g_free(raw);
                    g_ptr_array_add(decoded, k);
                    key.text = k, key.len = strlen(k);
                }
                const DupKey *first = NULL;
                if (top->table) {
                    first = g_hash_table_lookup(top->table, &key);
                } else {
                    for (guint k = top->first; k < keys->len && !first; k++)
                        if (dup_key_equal(&g_array_index(keys, DupKey, k), &key))
                            first = &g_array_index(keys, DupKey, k);
                }
                if (first) {
                    char *name = g_strndup(key.text, key.len);
                    g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                                "%s:%d: duplicate key \"%s\" (first at line %d); expected each "
                                "key once per object",
                                file, line, name, first->line);
                    g_free(name);
                    ok = false;
                    break;
                }
                if (top->table) {
                    g_hash_table_add(top->table, g_memdup2(&key, sizeof key));
                } else {
                    g_array_append_val(keys, key);
                    if (keys->len - top->first > DUP_PAIRWISE) {
                        /* a large object: its keys move to a table of copies */
                        top->table =
                            g_hash_table_new_full(dup_key_hash, dup_key_equal, g_free, NULL);
                        for (guint k = top->first; k < keys->len; k++)
                            g_hash_table_add(
                                top->table, g_memdup2(&g_array_index(keys, DupKey, k), sizeof key));
                        g_array_set_size(keys, top->first);
                    }
                }
            }
            i = end;
            break;
        }
        default:
            break;
        }
    }
    for (guint k = 0; k < frames->len; k++)
        if (g_array_index(frames, DupFrame, k).table)
            g_hash_table_destroy(g_array_index(frames, DupFrame, k).table);
    g_array_free(frames, TRUE), g_array_free(keys, TRUE);
    g_ptr_array_free(decoded, TRUE);
    return ok;
}

cJSON *cfg_parse_text(const char *file, const char *text, GError **error)
{
    const char *bad = NULL;
    if (!g_utf8_validate(text, -1, &bad)) {
        int line, col;
        line_col(text, (size_t)(bad - text), &line, &col);
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "%s:%d:%d: invalid UTF-8 (byte 0x%02x); expected UTF-8 text, as JSON is", file,
                    line, col, (unsigned char)*bad);
        return NULL;
    }
    /* cJSON reads nothing as "malformed at 1:1", which sends the user looking for a comma in a
     * file that has none (a download or a redirect that wrote 0 bytes) */
    const char *first = text;
    while (g_ascii_isspace(*first))
        first++;
    if (!*first) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "%s: empty file%s; expected a JSON object, {...}", file,
                    *text ? " (only white space)" : "");
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, true);
    if (root && !check_duplicate_keys(file, text, error)) {
        cJSON_Delete(root);
        return NULL;
    }
    if (!root) {
        int line, col;
        size_t off = end ? (size_t)(end - text) : 0;
        line_col(text, off, &line, &col);
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "%s:%d:%d: malformed JSON (expected a valid JSON document; check for a "
                    "missing comma, quote or brace near here)",
                    file, line, col);
    }
    return root;
}

cJSON *cfg_parse_file(const char *file, GError **error)
{
    char *text = NULL;
    gsize len = 0;
    GError *io = NULL;
    if (!g_file_get_contents(file, &text, &len, &io)) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT, "%s: cannot read file: %s", file,
                    io->message);
        g_error_free(io);
        return NULL;
    }
    if (strlen(text) != len) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "%s: not a text file (contains a NUL byte); expected JSON", file);
        g_free(text);
        return NULL;
    }
    cJSON *root = cfg_parse_text(file, text, error);
    g_free(text);
    return root;
}

bool cfg_obj_open(CfgObj *co, const char *file, const char *path, const cJSON *obj, GError **error)
{
    memset(co, 0, sizeof *co);
    if (!cJSON_IsObject(obj)) {
        cfg_set_error(error, file, path, NULL, "expected a JSON object");
        return false;
    }
    co->file = file;
    co->path = g_strdup(path ? path : "");
    co->obj = obj;
    co->seen = g_hash_table_new(g_str_hash, g_str_equal);
    return true;
}

void cfg_obj_close(CfgObj *co)
{
    if (co->seen)
        g_hash_table_destroy(co->seen);
    g_free(co->path);
    memset(co, 0, sizeof *co);
}

const cJSON *cfg_item(CfgObj *co, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(co->obj, key);
    if (item)
        g_hash_table_add(co->seen, (gpointer)item->string);
    return item;
}

bool cfg_has(CfgObj *co, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(co->obj, key) != NULL;
}

static char *missing_hint(CfgObj *co, const char *key);

bool cfg_obj_child(CfgObj *parent, const char *key, bool optional, CfgObj *child, GError **error)
{
    const cJSON *item = cfg_item(parent, key);
    memset(child, 0, sizeof *child);
    if (!item || cJSON_IsNull(item)) {
        if (optional)
            return true;
        char *hint = missing_hint(parent, key);
        cfg_set_error(error, parent->file, parent->path, key, "missing%s; expected a JSON object",
                      hint);
        g_free(hint);
        return false;
    }
    char *path = field_name(parent->path, key);
    bool ok = cfg_obj_open(child, parent->file, path, item, error);
    g_free(path);
    return ok;
}

void cfg_obj_ignore(CfgObj *co, const char *const *keys)
{
    for (; *keys; keys++)
        (void)cfg_item(co, *keys);
}

bool cfg_obj_check_unknown(CfgObj *co, const char *hint, GError **error)
{
    for (const cJSON *it = co->obj->child; it; it = it->next) {
        if (!g_hash_table_contains(co->seen, it->string)) {
            cfg_set_error(error, co->file, co->path, it->string, "unknown key%s%s",
                          hint ? "; " : "", hint ? hint : "");
            return false;
        }
    }
    return true;
}

/* Optimal string alignment distance, case-insensitive; words longer than 63 bytes are never
 * typos of our keys (all shorter), so they get a large distance instead of an allocation. */
static int edit_distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 63 || lb > 63)
        return 1 << 20;
    int d[64][64];
    for (int i = 0; i <= la; i++)
        d[i][0] = i;
    for (int j = 0; j <= lb; j++)
        d[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int cost = g_ascii_tolower(a[i - 1]) != g_ascii_tolower(b[j - 1]);
            int best = MIN(MIN(d[i - 1][j] + 1, d[i][j - 1] + 1), d[i - 1][j - 1] + cost);
            if (i > 1 && j > 1 && g_ascii_tolower(a[i - 1]) == g_ascii_tolower(b[j - 2]) &&
                g_ascii_tolower(a[i - 2]) == g_ascii_tolower(b[j - 1]))
                best = MIN(best, d[i - 2][j - 2] + 1);
            d[i][j] = best;
        }
    return d[la][lb];
}

const char *cfg_closest(const char *word, const char *const *candidates)
{
    const char *best = NULL;
    int best_d = 3, len = (int)strlen(word);
    for (; *candidates; candidates++) {
        int dist = edit_distance(word, *candidates);
        /* a third of the length refused every typo of a 3-letter word ("ful" for full); one
         * edit is taken from 2 letters on, where a single letter is no word to correct */
        bool close = 3 * dist < len || (dist == 1 && len >= 2);
        if (dist < best_d && close)
            best = *candidates, best_d = dist;
    }
    return best;
}

/* For a required key that is absent: " (the file has 'num_hiden_layers': a misspelling?)" when
 * a key of the object not read so far is within cfg_closest's reach of it, else "". A misspelt
 * required key is reported as the missing one, before the unknown keys are checked, so the
 * message names the typo here. Newly allocated; O(keys x len^2), on the error path only. */
static char *missing_hint(CfgObj *co, const char *key)
{
    GPtrArray *unread = g_ptr_array_new();
    for (const cJSON *it = co->obj->child; it; it = it->next)
        if (it->string && !g_hash_table_contains(co->seen, it->string))
            g_ptr_array_add(unread, it->string);
    g_ptr_array_add(unread, NULL);
    /* the other way round: the typo is the word, the key the one candidate */
    const char *typo = NULL;
    for (guint i = 0; !typo && i + 1 < unread->len; i++)
        if (cfg_closest(g_ptr_array_index(unread, i), (const char *const[]){key, NULL}))
            typo = g_ptr_array_index(unread, i);
    char *hint =
        typo ? g_strdup_printf(" (the file has '%s': a misspelling?)", typo) : g_strdup("");
    g_ptr_array_free(unread, TRUE);
    return hint;
}

/* The kinds of input file, by what identifies them, and the option each is given with. */
static const struct {
    const char *format; /* "format": ..., or NULL: a Hugging Face config.json (model_type) */
    const char *what, *option;
} file_kinds[] = {
    {"fsdpsim-topology", "a topology file", "--topology"},
    {"fsdpsim-layers", "a layer-list model", "--model"},
    {NULL, "a model", "--model"},
    {"fsdpsim-schedule", "a schedule", "--schedule"},
};

bool cfg_check_kind(const cJSON *root, const char *file, const char *option, GError **error)
{
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
    bool hf = !format && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "model_type"));
    for (size_t i = 0; i < G_N_ELEMENTS(file_kinds); i++) {
        bool match =
            file_kinds[i].format
                ? cJSON_IsString(format) && strcmp(format->valuestring, file_kinds[i].format) == 0
                : hf;
        if (!match || strcmp(file_kinds[i].option, option) == 0)
            continue;
        if (file_kinds[i].format)
            g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                        "%s: this is %s (format %s): give it with %s, not %s", file,
                        file_kinds[i].what, file_kinds[i].format, file_kinds[i].option, option);
        else
            g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                        "%s: this looks like %s (a Hugging Face config.json: model_type \"%s\", "
                        "no format): give it with %s, not %s",
                        file, file_kinds[i].what,
                        cJSON_GetObjectItemCaseSensitive(root, "model_type")->valuestring,
                        file_kinds[i].option, option);
        return false;
    }
    return true;
}

static bool absent(CfgObj *co, const char *key, const cJSON *item, bool required,
                   const char *expected, GError **error)
{
    if (item && !cJSON_IsNull(item))
        return false;
    if (required) {
        char *hint = missing_hint(co, key);
        cfg_set_error(error, co->file, co->path, key, "missing%s; expected %s", hint, expected);
        g_free(hint);
    }
    return true;
}

bool cfg_get_int(CfgObj *co, const char *key, bool required, int64_t min, int64_t max, int64_t *out,
                 GError **error)
{
    const cJSON *item = cfg_item(co, key);
    char expected[96];
    g_snprintf(expected, sizeof expected, "an integer in [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]",
               min, max);
    if (absent(co, key, item, required, expected, error))
        return !required;
    double v = item->valuedouble;
    if (!cJSON_IsNumber(item) || v != floor(v) || v < (double)min || v > (double)max) {
        char *got = cfg_json_print(item, false);
        cfg_set_error(error, co->file, co->path, key, "expected %s, got %s", expected, got);
        cJSON_free(got);
        return false;
    }
    *out = (int64_t)v;
    return true;
}

bool cfg_get_double(CfgObj *co, const char *key, bool required, double min, double max, double *out,
                    GError **error)
{
    const cJSON *item = cfg_item(co, key);
    char expected[96];
    g_snprintf(expected, sizeof expected, "a number in [%g, %g]", min, max);
    if (absent(co, key, item, required, expected, error))
        return !required;
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble) || item->valuedouble < min ||
        item->valuedouble > max) {
        char *got = cfg_json_print(item, false);
        cfg_set_error(error, co->file, co->path, key, "expected %s, got %s", expected, got);
        cJSON_free(got);
        return false;
    }
    *out = item->valuedouble;
    return true;
}

bool cfg_get_bool(CfgObj *co, const char *key, bool required, bool *out, GError **error)
{
    const cJSON *item = cfg_item(co, key);
    if (absent(co, key, item, required, "true or false", error))
        return !required;
    if (!cJSON_IsBool(item)) {
        char *got = cfg_json_print(item, false);
        cfg_set_error(error, co->file, co->path, key, "expected true or false, got %s", got);
        cJSON_free(got);
        return false;
    }
    *out = cJSON_IsTrue(item);
    return true;
}

bool cfg_get_string(CfgObj *co, const char *key, bool required, char **out, GError **error)
{
    const cJSON *item = cfg_item(co, key);
    if (absent(co, key, item, required, "a string", error))
        return !required;
    if (!cJSON_IsString(item)) {
        char *got = cfg_json_print(item, false);
        cfg_set_error(error, co->file, co->path, key, "expected a string, got %s", got);
        cJSON_free(got);
        return false;
    }
    g_free(*out);
    *out = g_strdup(item->valuestring);
    return true;
}

/* {"value": ..., "source": "...", "note": ...}: a number in [min, max] (num) or a string (str). */
static bool sourced_value(CfgObj *co, const char *key, bool required, double min, double max,
                          double *num, char **str, char **source_out, GError **error)
{
    CfgObj child;
    if (!cfg_has(co, key) && !required) {
        (void)cfg_item(co, key);
        return true;
    }
    if (!cfg_obj_child(co, key, false, &child, error)) {
        if (error && *error && strstr((*error)->message, "expected a JSON object")) {
            g_clear_error(error);
            cfg_set_error(error, co->file, co->path, key,
                          "expected {\"value\": <%s>, \"source\": \"<URL, data sheet or "
                          "measurement command>\"}",
                          num ? "number" : "name");
        }
        return false;
    }
    char *source = NULL;
    bool ok = (num ? cfg_get_double(&child, "value", true, min, max, num, error)
                   : cfg_get_string(&child, "value", true, str, error)) &&
              cfg_get_string(&child, "source", true, &source, error);
    if (ok && (!source || !*source)) {
        cfg_set_error(error, child.file, child.path, "source",
                      "empty; every hardware number needs its source (URL, data sheet or "
                      "measurement command)");
        ok = false;
    }
    if (ok) {
        cfg_obj_ignore(&child, (const char *const[]){"note", NULL});
        ok = cfg_obj_check_unknown(&child, "expected only \"value\", \"source\" and \"note\"", error);
    }
    if (ok && source_out) {
        g_free(*source_out);
        *source_out = source;
        source = NULL;
    }
    g_free(source);
    cfg_obj_close(&child);
    return ok;
}

bool cfg_get_sourced(CfgObj *co, const char *key, bool required, double min, double max, double *out,
                     char **source_out, GError **error)
{
    return sourced_value(co, key, required, min, max, out, NULL, source_out, error);
}

bool cfg_get_sourced_string(CfgObj *co, const char *key, bool required, char **out,
                            char **source_out, GError **error)
{
    return sourced_value(co, key, required, 0, 0, NULL, out, source_out, error);
}

bool cfg_parse_size(const char *text, uint64_t *out)
{
    if (!text || !*text)
        return false;
    errno = 0;
    char *end = NULL;
    double v = strtod(text, &end);
    if (errno || end == text || !isfinite(v) || v < 0)
        return false;
    double mult = 1;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': mult = 1024.0; end++; break;
    case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
    case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
    case 't': case 'T': mult = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: return false;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end)
        return false;
    double bytes = v * mult;
    if (bytes > 1e18)
        return false;
    *out = (uint64_t)llround(bytes);
    return true;
}

/* The message, made when cfg_oom_install runs: out of memory, nothing can be allocated to say so,
 * and the SIGSEGV handler may only write(2). */
static char oom_message[256] = "fsdpsim: out of memory\n";
static size_t oom_message_len = sizeof "fsdpsim: out of memory\n" - 1;

__attribute__((noreturn)) static void oom_exit(void)
{
    ssize_t written = write(STDERR_FILENO, oom_message, oom_message_len);
    (void)written; /* nothing left to do if stderr is gone */
    _exit(2);
}

static void *cjson_malloc(size_t size)
{
    void *p = malloc(size);
    if (!p && size)
        oom_exit();
    return p;
}

static void glib_fatal_handler(const gchar *domain, GLogLevelFlags level, const gchar *message,
                               gpointer data)
{
    /* g_malloc: "gmem.c:NNN: failed to allocate N bytes" at G_LOG_LEVEL_ERROR, then abort() */
    if (message && strstr(message, "failed to allocate"))
        oom_exit();
    g_log_default_handler(domain, level, message, data);
}

/* GLib's g_logv formats its message with g_strdup_vprintf before it calls any handler. When a
 * small allocation fails (the address space full to the last page, not one large request), that
 * formatting fails too, and g_vasprintf reports it with g_error: g_logv again, which formats
 * again, until the stack cannot grow (GLib 2.74: g_malloc -> g_error -> g_logv ->
 * g_strdup_vprintf -> g_vasprintf -> g_error -> ...). glib_fatal_handler is never reached and
 * the program dies of SIGSEGV. GLib has no hook before the formatting (g_mem_set_vtable is a
 * no-op since 2.46), so the recursion is caught where it ends: a SIGSEGV handler, on a stack of
 * its own. It is out of memory only when both hold: the fault is the main thread's stack that
 * could not grow (its address inside the stack's region, or just below it), and the kernel
 * refuses 1 MiB (malloc had just failed to get 1 MiB, MMAP_AS_MORECORE_SIZE, for a small block);
 * then the message and exit status 2. Any other fault (a NULL or wild pointer, memory full or
 * not) is a crash: the handler that was there before (the default, a sanitizer's, Open MPI's)
 * is put back and the faulting access runs again into it. Other threads' stacks are not
 * watched (their recursion still ends in SIGSEGV). The cost: one sigaction and 64 KiB of static
 * stack per process. fsdprun installs it after MPI_Init, so that Open MPI's backtrace printer
 * is the handler a crash falls back to. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OOM_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(OOM_ASAN)
#define OOM_ASAN 1
#endif

#ifndef OOM_ASAN
enum { OOM_PROBE_BYTES = 1 << 20, OOM_ALT_STACK_BYTES = 64 * 1024 };
static struct sigaction oom_segv_previous;
static char oom_alt_stack[OOM_ALT_STACK_BYTES] __attribute__((aligned(16)));
/* the main thread's stack region (pthread_getattr_np: its rlimit's extent) and the slack below
 * it where a growth that failed faults */
static uintptr_t oom_stack_lo, oom_stack_hi;
enum { OOM_STACK_SLACK = 64 * 1024 };

static void oom_segv_handler(int sig, siginfo_t *info, void *context)
{
    (void)context;
    uintptr_t at = (uintptr_t)info->si_addr;
    bool stack = info->si_code > 0 && oom_stack_hi > 0 && at < oom_stack_hi &&
                 at + OOM_STACK_SLACK >= oom_stack_lo;
    if (stack) {
        void *probe = mmap(NULL, OOM_PROBE_BYTES, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (probe == MAP_FAILED)
            oom_exit();
        munmap(probe, OOM_PROBE_BYTES);
    }
    sigaction(sig, &oom_segv_previous, NULL);
    if (info->si_code <= 0) /* sent (kill, raise), not a fault that repeats on return */
        raise(sig);
}
#endif

#define OOM_LOG_DOMAIN "fsdpsim-oom"

static void oom_log_drop(const gchar *domain, GLogLevelFlags level, const gchar *message,
                         gpointer data)
{
    (void)domain, (void)level, (void)message, (void)data;
}

void cfg_oom_install(const char *program)
{
    static bool installed; /* twice would save its own handler as the one to fall back to */
    if (installed)
        return;
    installed = true;
    int len = g_snprintf(oom_message, sizeof oom_message,
                         "%s: out of memory; expected a smaller run (fewer micro-batches, stages "
                         "or layers) or more memory (see --max-memory)\n",
                         program);
    oom_message_len = MIN((size_t)len, sizeof oom_message - 1);
    cJSON_Hooks hooks = {cjson_malloc, free};
    cJSON_InitHooks(&hooks);
    g_log_set_handler("GLib", G_LOG_LEVEL_ERROR | G_LOG_FLAG_FATAL, glib_fatal_handler, NULL);
    /* g_logv's first call allocates its GPrivate (the recursion depth): out of memory, that
     * malloc failed first, and GLib aborted ("Unexpected error from C library during 'malloc'",
     * SIGABRT). One message to a handler that drops it, now, allocates it while there is room. */
    g_log_set_handler(OOM_LOG_DOMAIN, G_LOG_LEVEL_DEBUG, oom_log_drop, NULL);
    g_log(OOM_LOG_DOMAIN, G_LOG_LEVEL_DEBUG, "GLib's logging state allocated");
#ifndef OOM_ASAN
    /* AddressSanitizer has its own SIGSEGV handler and alternate stack, and reserves terabytes
     * of address space (ulimit -v cannot be used there): left alone */
    pthread_attr_t attr;
    void *stack_addr = NULL;
    size_t stack_size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        if (pthread_attr_getstack(&attr, &stack_addr, &stack_size) == 0) {
            oom_stack_lo = (uintptr_t)stack_addr;
            oom_stack_hi = oom_stack_lo + stack_size;
        }
        pthread_attr_destroy(&attr);
    }
    stack_t alt = {.ss_sp = oom_alt_stack, .ss_size = sizeof oom_alt_stack};
    struct sigaction act = {.sa_sigaction = oom_segv_handler, .sa_flags = SA_SIGINFO | SA_ONSTACK};
    sigemptyset(&act.sa_mask);
    if (sigaltstack(&alt, NULL) == 0)
        sigaction(SIGSEGV, &act, &oom_segv_previous);
#endif
}

char *cfg_json_print(const cJSON *item, bool formatted)
{
    char *text = formatted ? cJSON_Print(item) : cJSON_PrintUnformatted(item);
    if (!text) {
        fprintf(stderr, "%s: out of memory while writing JSON; expected a smaller run (fewer "
                        "nodes, layers or micro-batches)\n",
                g_get_prgname() ? g_get_prgname() : "fsdpsim");
        exit(2);
    }
    return text;
}

static int double_order(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cfg_median(double *values, size_t n)
{
    if (!n)
        return NAN;
    qsort(values, n, sizeof *values, double_order);
    return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

bool cfg_input_error(GError **error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(error, FSD_ERROR, FSD_ERROR_INPUT, msg);
    g_free(msg);
    return false;
}

bool cfg_write_streamed(const char *path, CfgWriteFn write, void *ctx, GError **error)
{
    /* an existing target that is not a regular file (/dev/stdout, a pipe) is written in place:
     * renaming over it would replace the device node or FIFO with a file */
    GStatBuf st;
    bool in_place = g_stat(path, &st) == 0 && !S_ISREG(st.st_mode);
    char *tmp = in_place ? NULL : g_strconcat(path, ".XXXXXX", NULL);
    int err = 0;
    FILE *f = NULL;
    if (in_place) {
        f = fopen(path, "w");
    } else {
        int fd = g_mkstemp_full(tmp, O_WRONLY, 0666); /* less the umask, as any new file */
        f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (fd >= 0 && !f) {
            err = errno;
            close(fd);
            g_unlink(tmp);
        } else if (fd < 0) {
            err = errno;
            g_clear_pointer(&tmp, g_free); /* nothing made, nothing to remove */
        }
    }
    if (!f && !err)
        err = errno;
    errno = 0; /* a writer that fails without an I/O error says nothing of why */
    bool ok = f && write(f, ctx);
    if (f && !ok)
        err = errno;
    if (f && fclose(f) != 0 && ok)
        ok = false, err = errno;
    if (ok && tmp && g_rename(tmp, path) != 0)
        ok = false, err = errno;
    if (!ok && f && tmp)
        g_unlink(tmp);
    if (!ok)
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT, "cannot write %s: %s", path,
                    err ? g_strerror(err) : "the writer failed");
    g_free(tmp);
    return ok;
}

/* Appends len bytes to *buf (n used of *cap; `small` the caller's stack buffer it starts in). */
static void fmt_put(char **buf, size_t *n, size_t *cap, char *small, const char *text, size_t len)
{
    if (*n + len + 1 > *cap) {
        size_t want = MAX(2 * *cap, *n + len + 1);
        if (*buf == small) {
            *buf = g_malloc(want);
            memcpy(*buf, small, *n);
        } else {
            *buf = g_realloc(*buf, want);
        }
        *cap = want;
    }
    memcpy(*buf + *n, text, len);
    *n += len;
}

char *cfg_strdup_vprintf(const char *fmt, va_list ap)
{
    for (const char *p = strchr(fmt, '%'); p; p = strchr(p + 2, '%'))
        if (p[1] != 'd' && p[1] != 's' && p[1] != '%')
            return g_strdup_vprintf(fmt, ap);
    char small[256], *buf = small;
    size_t n = 0, cap = sizeof small;
    const char *p = fmt;
    for (const char *q; (q = strchr(p, '%')); p = q + 2) {
        fmt_put(&buf, &n, &cap, small, p, (size_t)(q - p));
        if (q[1] == 's') {
            const char *text = va_arg(ap, const char *);
            if (!text)
                text = "(null)"; /* as glibc's printf */
            fmt_put(&buf, &n, &cap, small, text, strlen(text));
        } else if (q[1] == 'd') {
            char digits[16], *d = digits + sizeof digits;
            long long v = va_arg(ap, int);
            unsigned long long u = v < 0 ? (unsigned long long)-v : (unsigned long long)v;
            do
                *--d = (char)('0' + u % 10);
            while (u /= 10);
            if (v < 0)
                *--d = '-';
            fmt_put(&buf, &n, &cap, small, d, (size_t)(digits + sizeof digits - d));
        } else {
            fmt_put(&buf, &n, &cap, small, "%", 1);
        }
    }
    fmt_put(&buf, &n, &cap, small, p, strlen(p));
    buf[n] = '\0';
    return buf == small ? g_memdup2(small, n + 1) : buf;
}

char *cfg_strdup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = cfg_strdup_vprintf(fmt, ap);
    va_end(ap);
    return text;
}
