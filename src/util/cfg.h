/* cfg: reading fsdpsim's JSON input files (models, topologies, schedules) with errors that name
 * the file, the field and what is expected.
 *
 * Every reader takes the file name and a dotted field path so that a message reads
 *   "models/x.json: field 'fsdpsim.training.seq_len': expected an integer in [1, 1048576], got -3"
 * All such errors are in FSD_ERROR / FSD_ERROR_INPUT: the command line maps them to exit status 2. */
#ifndef FSD_CFG_H
#define FSD_CFG_H

#include <glib.h>
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define FSD_ERROR (fsd_error_quark())
GQuark fsd_error_quark(void);

typedef enum {
    FSD_ERROR_INPUT,  /* bad input: missing/malformed file, unknown key, impossible layout (exit 2) */
    FSD_ERROR_FAILED, /* the run itself failed (exit 1) */
} FsdErrorCode;

/* A JSON object being read: remembers which keys were consumed, so that unknown keys can be
 * reported (a misspelt key must not be silently ignored). */
typedef struct {
    const char *file;
    char *path; /* dotted path of this object, "" for the top level */
    const cJSON *obj;
    GHashTable *seen; /* key -> non-NULL, keys consumed so far */
} CfgObj;

/* Parse a whole file. Returns NULL and sets error for missing file or malformed JSON. */
cJSON *cfg_parse_file(const char *file, GError **error);
/* Parse text that came from `file` (used for messages only). */
cJSON *cfg_parse_text(const char *file, const char *text, GError **error);

/* Opens `obj` (must be a JSON object) for reading; path may be "" for the root. */
bool cfg_obj_open(CfgObj *co, const char *file, const char *path, const cJSON *obj, GError **error);
void cfg_obj_close(CfgObj *co);
/* Opens the child object `key` (required unless optional; absent optional -> returns true with co->obj NULL). */
bool cfg_obj_child(CfgObj *parent, const char *key, bool optional, CfgObj *child, GError **error);

/* Marks keys as known without reading them (e.g. documented Hugging Face keys that do not change
 * the shape). NULL-terminated list. */
void cfg_obj_ignore(CfgObj *co, const char *const *keys);
/* Fails naming the first key that was never read nor ignored; `hint` is appended to the message. */
bool cfg_obj_check_unknown(CfgObj *co, const char *hint, GError **error);

/* The candidate closest to `word` (case-insensitive optimal-string-alignment distance: insertions,
 * deletions, substitutions and swaps of neighbours), or NULL when none is close enough to be a
 * typo: at most 2 edits, and fewer than a third of the word's length (one edit for a word of 2 to
 * 4 letters: "ful" for "full"). For did-you-mean messages.
 * NULL-terminated list; O(len^2) per candidate, fine for option and key lists. */
const char *cfg_closest(const char *word, const char *const *candidates);

/* Fails when `root` is another option's file: a topology given with --model, a config.json
 * (model_type, no format) or a layer list with --topology, a schedule with either: "FILE: this
 * is a topology file (format fsdpsim-topology): give it with --topology, not --model". `option`
 * is the option the file came with ("--model", "--topology"). A file of no known kind passes, for
 * the reader's own messages. */
bool cfg_check_kind(const cJSON *root, const char *file, const char *option, GError **error);

bool cfg_has(CfgObj *co, const char *key);
/* Returns the raw item (marks it seen) or NULL. */
const cJSON *cfg_item(CfgObj *co, const char *key);

/* Typed getters. `required`: absent key is an error; otherwise *out keeps its default.
 * Ranges are inclusive. */
bool cfg_get_int(CfgObj *co, const char *key, bool required, int64_t min, int64_t max, int64_t *out,
                 GError **error);
bool cfg_get_double(CfgObj *co, const char *key, bool required, double min, double max, double *out,
                    GError **error);
bool cfg_get_bool(CfgObj *co, const char *key, bool required, bool *out, GError **error);
/* *out is newly allocated (g_free) when found. */
bool cfg_get_string(CfgObj *co, const char *key, bool required, char **out, GError **error);
/* A sourced number: {"value": X, "source": "..."}; the source must be a non-empty string. */
bool cfg_get_sourced(CfgObj *co, const char *key, bool required, double min, double max, double *out,
                     char **source_out, GError **error);
/* A sourced name: {"value": "NAME", "source": "..."}, the same rules; *out newly allocated. */
bool cfg_get_sourced_string(CfgObj *co, const char *key, bool required, char **out,
                            char **source_out, GError **error);

/* Sets an input error naming file and field. */
void cfg_set_error(GError **error, const char *file, const char *path, const char *key,
                   const char *fmt, ...) G_GNUC_PRINTF(5, 6);

/* Sets an FSD_ERROR_INPUT error with a formatted message; returns false so that callers can
 * `return cfg_input_error(...)`. For options and layouts, where there is no file to name. */
bool cfg_input_error(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* cJSON_Print (formatted) or cJSON_PrintUnformatted, never NULL: cJSON returns NULL when it runs
 * out of memory, and callers wrote through it (SIGSEGV with --trace). Out of memory cannot be
 * recovered from here, so it ends the program with one message and exit status 2. Free the text
 * with cJSON_free. */
char *cfg_json_print(const cJSON *item, bool formatted);

/* g_strdup_printf's result, about a tenth of its cost where the format has only %d, %s and %%
 * (anything else goes to g_strdup_vprintf): the generators name their ops and buffers with it,
 * and vasprintf was a quarter of generating an FSDP schedule (1300 instructions a name). */
char *cfg_strdup_printf(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
char *cfg_strdup_vprintf(const char *fmt, va_list ap);

/* Writes PATH through write(f, ctx) (false: it failed) into a temporary file beside it
 * (PATH.XXXXXX), renamed into place when whole, else removed: what g_file_set_contents does,
 * without the whole text in memory (a --trace of a long pipeline is hundreds of MB). A PATH that
 * exists and is not a regular file (/dev/stdout, a FIFO) is written in place. The error is
 * "cannot write PATH: WHY", for the caller to prefix with its option. */
typedef bool (*CfgWriteFn)(FILE *f, void *ctx);
bool cfg_write_streamed(const char *path, CfgWriteFn write, void *ctx, GError **error);

/* Out of memory as an input-sized problem, not a signal: GLib's g_malloc logs "failed to
 * allocate" and aborts (SIGTRAP), cJSON's allocations return NULL, and where even GLib's message
 * cannot be allocated its logging recurses until the stack overflows (SIGSEGV; cfg.c says how it
 * is caught). After this, all three print "PROGRAM: out of memory ..." and exit with status 2.
 * Call once at the start of main, in the main thread. */
void cfg_oom_install(const char *program);

/* Parses sizes like "8", "64K", "1M", "8G" (binary multiples, as nccl-tests' -b/-e do). */
bool cfg_parse_size(const char *text, uint64_t *out);

/* The median of n values (the mean of the two middle ones when n is even; NAN when n is 0).
 * Sorts the values in place (qsort: O(n log n)), so that callers can read the range after. */
double cfg_median(double *values, size_t n);

#endif
