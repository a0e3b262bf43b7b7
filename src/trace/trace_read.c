/* trace: reading one profiler trace file (see trace.h). */
#include "trace.h"
#include "trace_deps.h"

#include "../util/cfg.h"

#include <errno.h>
#include <gio/gio.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A launch call on the host (cudaLaunchKernel, cudaMemcpyAsync, ...): what maps a GPU activity to
 * its step and to the communication annotation around it. */
typedef struct {
    int64_t correlation;
    double ts_us;
    int tid;
} Launch;

/* A communication annotation on the host: record_param_comms (with NCCL metadata in PyTorch >=
 * 2.1) or nccl:<collective> (with Input Dims when record_shapes was on). */
typedef struct {
    double start_us, end_us;
    int tid;
    int kind; /* TraceCollKind or -1 */
    int64_t in_nelems, out_nelems;
    int group_size, dtype_bytes;
    const char *dtype;
    char *pg;
    bool metadata; /* carries "Collective name" */
} Annotation;

typedef struct {
    TraceRank *rank;
    GArray *launches;     /* of Launch */
    GArray *shape_ops;    /* of TraceShapeOp */
    GArray *annotations;  /* of Annotation */
    GHashTable *name_ids; /* kernel name -> index + 1 */
    bool schema, distributed, events_seen;
    GArray *meta; /* of TraceColl: metadata read from NCCL kernels' args, by kernel index */
} Reader;

/* An error of the file as a whole (unreadable, a broken gzip stream), where no field applies. */
static void file_error(GError **error, const char *file, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void file_error(GError **error, const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT, "%s: %s", file, what);
    g_free(what);
}

/* --- reading events -------------------------------------------------------------------------- */

static const cJSON *arg(const cJSON *e, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "args"), key);
}

static int64_t arg_int(const cJSON *e, const char *key, int64_t fallback)
{
    const cJSON *v = arg(e, key);
    /* in int64's range before the cast (outside it the cast is undefined: the fuzzer's 1.1e57) */
    return cJSON_IsNumber(v) && fabs(v->valuedouble) < 9e18 ? (int64_t)v->valuedouble : fallback;
}

static const char *arg_string(const cJSON *e, const char *key)
{
    const cJSON *v = arg(e, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A collective's elements and ranks as the reader keeps them: 2^36 elements (137 GB in bf16,
 * a whole H200) per rank, 2^24 ranks. Below these an all-gather's output (input x group), in
 * bytes, stays inside int64 and uint64 (2^63); past them a file's 4e18 elements overflowed it. */
#define TRACE_NELEMS_MAX ((int64_t)1 << 36)
#define TRACE_GROUP_MAX (1 << 24)

static bool field_error(GError **error, const char *file, int64_t index, const char *field,
                        const char *expected, const cJSON *v);

/* args[key] as a whole number in [min, max]: absent is 0 (not known); present and out of range,
 * or not a number, is an error. */
static bool arg_count(const cJSON *e, const char *key, int64_t min, int64_t max, int64_t *out,
                      const char *file, int64_t index, GError **error)
{
    const cJSON *v = arg(e, key);
    *out = 0;
    if (!v)
        return true;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= (double)min && v->valuedouble <= (double)max) ||
        v->valuedouble != floor(v->valuedouble)) {
        char *field = g_strdup_printf("args.%s", key);
        char *expected = g_strdup_printf(
            "a whole number in [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]", min, max);
        field_error(error, file, index, field, expected, v);
        g_free(field), g_free(expected);
        return false;
    }
    *out = (int64_t)v->valuedouble;
    return true;
}

/* NCCL metadata (PyTorch's ParamCommsDebugInfo, on record_param_comms and, from Kineto 2024 on,
 * on the NCCL kernel itself): "Collective name", "In msg nelems", "Out msg nelems", "dtype",
 * "Group size", "Process Group Name". Sets *found when the event carries it; false: a count out
 * of range (error set). */
static bool read_metadata(const cJSON *e, int *kind, int64_t *in, int64_t *out, int *group,
                          int *dtype_bytes, const char **dtype, const char **pg, bool *found,
                          const char *file, int64_t index, GError **error)
{
    const char *name = arg_string(e, "Collective name");
    int64_t ranks = 0;
    *found = name != NULL;
    if (!name)
        return true;
    *kind = trace_coll_kind_of(name);
    if (!arg_count(e, "In msg nelems", 0, TRACE_NELEMS_MAX, in, file, index, error) ||
        !arg_count(e, "Out msg nelems", 0, TRACE_NELEMS_MAX, out, file, index, error) ||
        !arg_count(e, "Group size", 0, TRACE_GROUP_MAX, &ranks, file, index, error))
        return false;
    *group = (int)ranks;
    const char *t = arg_string(e, "dtype");
    *dtype_bytes = t ? trace_dtype_bytes(t, dtype) : 0;
    *pg = arg_string(e, "Process Group Name");
    return true;
}

/* "Input Dims": [[394241], [], ...]: the elements of the first tensor. */
static int64_t first_dims(const cJSON *e)
{
    const cJSON *dims = cJSON_GetArrayItem(arg(e, "Input Dims"), 0);
    if (!cJSON_IsArray(dims) || cJSON_GetArraySize(dims) == 0)
        return 0;
    int64_t n = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, dims)
    {
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e15)
            return 0;
        int64_t dim = (int64_t)d->valuedouble;
        if (dim > 0 && n > TRACE_NELEMS_MAX / dim)
            return 0; /* beyond what one rank holds: size unknown, as for no shapes */
        n *= dim;
    }
    return n;
}

static bool field_error(GError **error, const char *file, int64_t index, const char *field,
                        const char *expected, const cJSON *v)
{
    char *path = g_strdup_printf("traceEvents[%" G_GINT64_FORMAT "]", index);
    char *got = !v                  ? g_strdup("none")
                : cJSON_IsNumber(v) ? g_strdup_printf("%g", v->valuedouble)
                                    : g_strdup(cJSON_IsString(v) ? v->valuestring : "not a number");
    cfg_set_error(error, file, path, field, "expected %s, got %s", expected, got);
    g_free(path), g_free(got);
    return false;
}

/* ts and dur of a complete event that is kept: finite, dur >= 0. */
static bool times_of(const cJSON *e, Reader *rd, int64_t index, double *ts, double *dur,
                     GError **error)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "ts"),
                *d = cJSON_GetObjectItemCaseSensitive(e, "dur");
    if (!cJSON_IsNumber(t) || !isfinite(t->valuedouble))
        return field_error(error, rd->rank->file, index, "ts", "a finite time stamp in us", t);
    if (!cJSON_IsNumber(d) || !isfinite(d->valuedouble) || d->valuedouble < 0 ||
        d->valuedouble > 1e15)
        return field_error(error, rd->rank->file, index, "dur", "a duration in us in [0, 1e15]", d);
    *ts = t->valuedouble, *dur = d->valuedouble;
    return true;
}

static int intern(Reader *rd, const char *name)
{
    gpointer id = g_hash_table_lookup(rd->name_ids, name);
    if (id)
        return GPOINTER_TO_INT(id) - 1;
    g_ptr_array_add(rd->rank->names, g_strdup(name));
    int n = (int)rd->rank->names->len - 1;
    g_hash_table_insert(rd->name_ids, g_ptr_array_index(rd->rank->names, n),
                        GINT_TO_POINTER(n + 1));
    return n;
}

static bool gpu_activity(Reader *rd, const cJSON *e, const char *cat, const char *name,
                         int64_t index, GError **error)
{
    double ts, dur;
    if (!times_of(e, rd, index, &ts, &dur, error))
        return false;
    bool mem = g_ascii_strncasecmp(cat, "gpu_mem", 7) == 0 || !g_ascii_strcasecmp(cat, "memcpy") ||
               !g_ascii_strcasecmp(cat, "memset");
    const cJSON *tid = cJSON_GetObjectItemCaseSensitive(e, "tid");
    TraceKernel k = {.start_us = ts,
                     .end_us = ts + dur,
                     .launch_us = NAN,
                     .correlation = arg_int(e, "correlation", -1),
                     .stream = (int)arg_int(e, "stream", cJSON_IsNumber(tid) ? tid->valueint : 0),
                     .step = -1,
                     .cls = (uint8_t)trace_class_of(name, mem),
                     .name = intern(rd, name),
                     .coll = -1};
    g_array_append_val(rd->rank->kernels, k);
    TraceColl c = {.kernel = -1, .instance = -1};
    if (k.cls == TRACE_CLASS_NCCL) {
        int kind;
        const char *pg = NULL;
        bool found = false;
        if (!read_metadata(e, &kind, &c.in_nelems, &c.out_nelems, &c.group_size, &c.dtype_bytes,
                           &c.dtype, &pg, &found, rd->rank->file, index, error))
            return false;
        if (found) {
            c.kind = (uint8_t)(kind >= 0 ? kind : TRACE_COLL_ALLREDUCE);
            c.kernel = (int)rd->rank->kernels->len - 1; /* marks "has metadata" */
            c.pg = g_strdup(pg ? pg : "");
            c.source = "nccl metadata";
        }
    }
    g_array_append_val(rd->meta, c);
    return true;
}

static bool annotation(Reader *rd, const cJSON *e, const char *name, double ts, double dur,
                       int64_t index, GError **error)
{
    const cJSON *tid = cJSON_GetObjectItemCaseSensitive(e, "tid");
    Annotation a = {
        .start_us = ts, .end_us = ts + dur, .tid = cJSON_IsNumber(tid) ? tid->valueint : 0};
    const char *pg = NULL;
    if (!read_metadata(e, &a.kind, &a.in_nelems, &a.out_nelems, &a.group_size, &a.dtype_bytes,
                       &a.dtype, &pg, &a.metadata, rd->rank->file, index, error))
        return false;
    if (!a.metadata) {
        a.kind = g_str_has_prefix(name, "nccl:") ? trace_coll_kind_of(name + 5) : -1;
        a.in_nelems = a.out_nelems = first_dims(e);
        const cJSON *t = cJSON_GetArrayItem(arg(e, "Input type"), 0);
        if (cJSON_IsString(t))
            a.dtype_bytes = trace_dtype_bytes(t->valuestring, &a.dtype);
    }
    a.pg = g_strdup(pg ? pg : "");
    g_array_append_val(rd->annotations, a);
    return true;
}

static bool trace_event(Reader *rd, const cJSON *e, int64_t index, GError **error)
{
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(e, "ph"),
                *cat = cJSON_GetObjectItemCaseSensitive(e, "cat"),
                *name = cJSON_GetObjectItemCaseSensitive(e, "name");
    rd->rank->events++;
    if (!cJSON_IsString(ph) || strcmp(ph->valuestring, "X") != 0 || !cJSON_IsString(cat))
        return true;
    const char *c = cat->valuestring, *n = cJSON_IsString(name) ? name->valuestring : "";
    if (!g_ascii_strcasecmp(c, "kernel") || !g_ascii_strncasecmp(c, "gpu_mem", 7) ||
        !g_ascii_strcasecmp(c, "memcpy") || !g_ascii_strcasecmp(c, "memset"))
        return gpu_activity(rd, e, c, n, index, error);
    double ts, dur;
    if (!g_ascii_strcasecmp(c, "cuda_runtime") || !g_ascii_strcasecmp(c, "cuda_driver")) {
        int64_t corr = arg_int(e, "correlation", -1);
        if (corr < 0)
            return true;
        if (!times_of(e, rd, index, &ts, &dur, error))
            return false;
        const cJSON *tid = cJSON_GetObjectItemCaseSensitive(e, "tid");
        Launch l = {corr, ts, cJSON_IsNumber(tid) ? tid->valueint : 0};
        g_array_append_val(rd->launches, l);
        if (!strcmp(n, "cudaStreamWaitEvent")) {
            TraceSync w = {ts, ts + dur, l.tid};
            g_array_append_val(rd->rank->stream_waits, w);
        }
        if (strstr(n, "Synchronize") || g_str_has_prefix(n, "cudaMemcpy")) {
            TraceSync sy = {ts, ts + dur, l.tid};
            g_array_append_val(rd->rank->syncs, sy);
        }
        if (!strcmp(n, "cudaLaunchKernel") || !strcmp(n, "cudaLaunchKernelExC")) {
            float call_us = (float)dur;
            g_array_append_val(rd->rank->launch_call_us, call_us);
        }
        return true;
    }
    /* Kineto's GPU-row copies of host annotations (gpu_user_annotation: "nccl:all_reduce",
     * "ProfilerStep#N" over its kernels' span): a step or a launch's annotation is the host's */
    if (!g_ascii_strcasecmp(c, "gpu_user_annotation"))
        return true;
    bool step = g_str_has_prefix(n, "ProfilerStep#");
    bool comm = !strcmp(n, "record_param_comms") || g_str_has_prefix(n, "nccl:");
    bool shapes = g_str_has_prefix(n, "aten::") && arg(e, "Input Dims");
    if (!step && !comm && !shapes)
        return true;
    if (!times_of(e, rd, index, &ts, &dur, error))
        return false;
    if (shapes) {
        trace_shape_op_read(rd->shape_ops, e, n, ts, dur);
        return true;
    }
    if (comm)
        return annotation(rd, e, n, ts, dur, index, error);
    char *end = NULL;
    errno = 0;
    long number = strtol(n + 13, &end, 10);
    /* N beyond an int wrapped around to another step's number */
    if (end == n + 13 || *end || errno == ERANGE || number < 0 || number > INT_MAX)
        return field_error(error, rd->rank->file, index, "name",
                           "ProfilerStep#N with an integer N in [0, 2147483647]", name);
    const cJSON *stid = cJSON_GetObjectItemCaseSensitive(e, "tid");
    TraceStep s = {(int)number, ts, dur, cJSON_IsNumber(stid) ? stid->valueint : 0, NAN, NAN};
    g_array_append_val(rd->rank->steps, s);
    return true;
}

/* A top-level member other than traceEvents. */
static bool top_member(Reader *rd, const char *key, const char *text, size_t len, GError **error)
{
    TraceRank *r = rd->rank;
    if (!strcmp(key, "schemaVersion")) {
        rd->schema = true;
        return true;
    }
    if (!strcmp(key, "baseTimeNanoseconds")) {
        /* an integer of ~1.7e18: read from the text, exact (a double keeps 256 ns steps) */
        char *t = g_strstrip(g_strndup(text, len)), *end = NULL;
        errno = 0;
        gint64 ns = g_ascii_strtoll(t, &end, 10);
        bool ok = end != t && !*end && errno == 0 && ns >= 0;
        if (ok)
            r->base_time_ns = ns;
        else
            cfg_set_error(error, r->file, "", key,
                          "expected a whole number of nanoseconds since the epoch (Kineto's base "
                          "time, ts are us after it), got '%.40s'",
                          t);
        g_free(t);
        return ok;
    }
    if (strcmp(key, "distributedInfo") != 0 && strcmp(key, "deviceProperties") != 0)
        return true;
    cJSON *v = cJSON_ParseWithLength(text, len);
    if (!v) {
        cfg_set_error(error, r->file, "", key, "expected valid JSON");
        return false;
    }
    if (!strcmp(key, "deviceProperties")) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(v, 0), "name");
        if (cJSON_IsString(n))
            g_free(r->device), r->device = g_strdup(n->valuestring);
        cJSON_Delete(v);
        return true;
    }
    const cJSON *rank = cJSON_GetObjectItemCaseSensitive(v, "rank"),
                *world = cJSON_GetObjectItemCaseSensitive(v, "world_size"),
                *backend = cJSON_GetObjectItemCaseSensitive(v, "backend"),
                *nccl = cJSON_GetObjectItemCaseSensitive(v, "nccl_version");
    bool ok = true;
    if (!cJSON_IsNumber(world) || world->valuedouble < 1 || world->valuedouble > 1e7 ||
        world->valuedouble != floor(world->valuedouble))
        ok = false, cfg_set_error(error, r->file, "distributedInfo", "world_size",
                                  "expected an integer in [1, 10000000]");
    else if (!cJSON_IsNumber(rank) || rank->valuedouble < 0 ||
             rank->valuedouble >= world->valuedouble ||
             rank->valuedouble != floor(rank->valuedouble))
        ok = false, cfg_set_error(error, r->file, "distributedInfo", "rank",
                                  "expected an integer in [0, world_size %d)", world->valueint);
    if (ok) {
        rd->distributed = r->has_distributed_info = true;
        r->rank = rank->valueint, r->world_size = world->valueint;
        g_free(r->backend),
            r->backend = g_strdup(cJSON_IsString(backend) ? backend->valuestring : "");
        g_free(r->nccl_version);
        r->nccl_version = g_strdup(cJSON_IsString(nccl) ? nccl->valuestring : "");
    }
    cJSON_Delete(v);
    return ok;
}

/* --- the streaming scanner ------------------------------------------------------------------- */

/* The top-level object is scanned one byte at a time (strings and escapes tracked, so braces in
 * names do not count); an element of traceEvents, or another top-level member's value, is copied
 * into one buffer and parsed alone. Cost: one pass over the bytes plus one cJSON parse per event;
 * memory: the largest event or top-level member. */
typedef struct {
    int depth;
    bool started, done, in_string, escape, reading_key, expect_key, in_events, events_next;
    bool capturing; /* buf holds the value being read */
    GString *key, *buf;
    int64_t index; /* of the next traceEvents element */
} Scanner;

static bool scan(Reader *rd, Scanner *s, const char *data, size_t len, GError **error)
{
    const char *file = rd->rank->file;
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (s->done) {
            if (!g_ascii_isspace(c)) {
                file_error(error, file,
                           "expected the end of the file after the top-level "
                           "object, got '%c'",
                           c);
                return false;
            }
            continue;
        }
        if (!s->started) {
            if (g_ascii_isspace(c))
                continue;
            if (c != '{') {
                cfg_set_error(error, file, "", "traceEvents",
                              "expected a PyTorch profiler trace (a JSON object with "
                              "traceEvents), got text starting with '%c'",
                              c);
                return false;
            }
            s->started = s->expect_key = true, s->depth = 1;
            continue;
        }
        if (s->capturing)
            g_string_append_c(s->buf, c);
        if (s->in_string) {
            if (s->escape)
                s->escape = false;
            else if (c == '\\')
                s->escape = true;
            else if (c == '"')
                s->in_string = false, s->reading_key = false;
            else if (s->reading_key)
                g_string_append_c(s->key, c);
            continue;
        }
        switch (c) {
        case '"':
            s->in_string = true;
            if (s->depth == 1 && s->expect_key)
                s->reading_key = true, s->expect_key = false, g_string_truncate(s->key, 0);
            break;
        case ':':
            if (s->depth == 1) {
                if (!strcmp(s->key->str, "traceEvents"))
                    s->events_next = true, rd->events_seen = true;
                else
                    s->capturing = true, g_string_truncate(s->buf, 0);
            }
            break;
        case '{':
        case '[':
            s->depth++;
            if (s->events_next && s->depth == 2) {
                s->events_next = false;
                if (c != '[') {
                    cfg_set_error(error, file, "", "traceEvents", "expected an array of events");
                    return false;
                }
                s->in_events = true;
            } else if (s->in_events && s->depth == 3 && c == '{') {
                s->capturing = true;
                g_string_assign(s->buf, "{");
            }
            if (s->depth > 200) {
                cfg_set_error(error, file, "", "traceEvents", "expected at most 200 nested levels");
                return false;
            }
            break;
        case '}':
        case ']':
            s->depth--;
            if (s->in_events && s->depth == 2 && s->capturing) {
                s->capturing = false;
                cJSON *e = cJSON_ParseWithLength(s->buf->str, s->buf->len);
                if (!e) {
                    char *path = g_strdup_printf("traceEvents[%" G_GINT64_FORMAT "]", s->index);
                    cfg_set_error(error, file, "", path, "expected a valid JSON event object");
                    g_free(path);
                    return false;
                }
                bool ok = trace_event(rd, e, s->index, error);
                cJSON_Delete(e);
                if (!ok)
                    return false;
            } else if (s->in_events && s->depth == 1) {
                s->in_events = false;
            } else if (s->depth == 0) {
                s->done = true;
                if (s->capturing) {
                    s->capturing = false;
                    g_string_truncate(s->buf, s->buf->len - 1);
                    if (!top_member(rd, s->key->str, s->buf->str, s->buf->len, error))
                        return false;
                }
            }
            break;
        case ',':
            if (s->depth == 1) {
                s->expect_key = true;
                if (s->capturing) {
                    s->capturing = false;
                    g_string_truncate(s->buf, s->buf->len - 1);
                    if (!top_member(rd, s->key->str, s->buf->str, s->buf->len, error))
                        return false;
                }
            } else if (s->in_events && s->depth == 2) {
                s->index++; /* elements are counted by their commas: scalars count too */
            }
            break;
        default:
            break;
        }
    }
    return true;
}

/* --- after reading: steps, launches and collectives ------------------------------------------ */

static int launch_order(const void *a, const void *b)
{
    int64_t x = ((const Launch *)a)->correlation, y = ((const Launch *)b)->correlation;
    return (x > y) - (x < y);
}

static int kernel_order(const void *a, const void *b)
{
    const TraceKernel *x = a, *y = b;
    if (x->start_us != y->start_us)
        return x->start_us < y->start_us ? -1 : 1;
    return (x->correlation > y->correlation) - (x->correlation < y->correlation);
}

static int step_order(const void *a, const void *b)
{
    double x = ((const TraceStep *)a)->cpu_start_us, y = ((const TraceStep *)b)->cpu_start_us;
    return (x > y) - (x < y);
}

static int sync_order(const void *a, const void *b)
{
    double x = ((const TraceSync *)a)->end_us, y = ((const TraceSync *)b)->end_us;
    return (x > y) - (x < y);
}

static int step_of(const GArray *steps, double t)
{
    for (guint i = 0; i < steps->len; i++) {
        const TraceStep *s = &g_array_index(steps, TraceStep, i);
        if (t >= s->cpu_start_us && t <= s->cpu_start_us + s->cpu_dur_us)
            return (int)i;
    }
    return -1;
}

/* The innermost communication annotation around a launch on its thread, preferring one with NCCL
 * metadata. O(annotations) per NCCL kernel: a step has tens to thousands of each; fine. */
static const Annotation *annotation_of(const Reader *rd, const Launch *l)
{
    const Annotation *best = NULL;
    for (guint i = 0; i < rd->annotations->len; i++) {
        const Annotation *a = &g_array_index(rd->annotations, Annotation, i);
        if (a->tid != l->tid || l->ts_us < a->start_us || l->ts_us > a->end_us)
            continue;
        if (!best || (a->metadata && !best->metadata) ||
            (a->metadata == best->metadata && a->start_us >= best->start_us &&
             (a->in_nelems || !best->in_nelems)))
            best = a;
    }
    return best;
}

/* When an activity without a launch record (a kernel launched before the profiler's window, or
 * through a launch call the trace does not hold) was launched, as far as the trace tells: CUPTI
 * hands out correlation ids in call order, so after the recorded host call with the next lower
 * id (whose start stands in for it); below every recorded id, before the trace's first call,
 * i.e. before the window and so in no step of it (Kineto keeps a kernel by when it ran, its
 * launch by when it was called: the tail of the step before the window, DLRM's ranks 1 and 3).
 * NAN then (no step), *before set. Without an id or any host call: its own start, as ever.
 * O(log launches). */
static double unlaunched_time(const Reader *rd, const TraceKernel *k, bool *before)
{
    const GArray *ls = rd->launches;
    *before = false;
    if (k->correlation < 0 || ls->len == 0)
        return k->start_us;
    guint lo = 0, hi = ls->len; /* the first call with a larger id */
    while (lo < hi) {
        guint mid = lo + (hi - lo) / 2;
        if (g_array_index(ls, Launch, mid).correlation < k->correlation)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) {
        *before = true;
        return NAN;
    }
    return g_array_index(ls, Launch, lo - 1).ts_us;
}

static bool finish(Reader *rd, GError **error)
{
    TraceRank *r = rd->rank;
    if (!rd->events_seen || !rd->schema) {
        cfg_set_error(error, r->file, "", rd->events_seen ? "schemaVersion" : "traceEvents",
                      "expected a PyTorch profiler trace (torch.profiler's export_chrome_trace or "
                      "tensorboard_trace_handler: schemaVersion and traceEvents)");
        return false;
    }
    if (r->steps->len == 0) {
        cfg_set_error(error, r->file, "", "traceEvents",
                      "expected ProfilerStep#N annotations (torch.profiler.profile with a "
                      "schedule and prof.step() once per step), got none");
        return false;
    }
    if (!rd->distributed)
        r->rank = 0, r->world_size = 1;
    g_array_sort(r->steps, step_order);
    g_array_sort(r->syncs, sync_order);
    g_array_sort(r->stream_waits, sync_order);
    g_array_sort(rd->launches, launch_order);
    /* kernels and their metadata sorted together: metadata's kernel field holds the old index */
    GArray *k = r->kernels;
    for (guint i = 0; i < k->len; i++)
        g_array_index(k, TraceKernel, i).coll = (int)i; /* old index, temporarily */
    g_array_sort(k, kernel_order);
    GHashTable *seq = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint i = 0; i < k->len; i++) {
        TraceKernel *kk = &g_array_index(k, TraceKernel, i);
        TraceColl meta = g_array_index(rd->meta, TraceColl, kk->coll);
        kk->coll = -1;
        Launch key = {.correlation = kk->correlation};
        const Launch *l =
            kk->correlation >= 0 && rd->launches->len > 0 /* an empty GArray's data is NULL */
                ? bsearch(&key, rd->launches->data, rd->launches->len, sizeof(Launch), launch_order)
                : NULL;
        bool before = false;
        if (l)
            kk->launch_us = l->ts_us, kk->launch_tid = l->tid;
        else
            r->unlaunched++;
        kk->step = step_of(r->steps, l ? l->ts_us : unlaunched_time(rd, kk, &before));
        r->unlaunched_before += before;
        if (kk->step >= 0) {
            TraceStep *s = &g_array_index(r->steps, TraceStep, kk->step);
            s->gpu_start_us =
                isnan(s->gpu_start_us) ? kk->start_us : MIN(s->gpu_start_us, kk->start_us);
            s->gpu_end_us = isnan(s->gpu_end_us) ? kk->end_us : MAX(s->gpu_end_us, kk->end_us);
        }
        if (kk->cls != TRACE_CLASS_NCCL)
            continue;
        /* what the kernel says, else its annotation's metadata or shapes, else its name */
        TraceColl c = meta;
        const char *name = g_ptr_array_index(r->names, kk->name);
        if (c.kernel < 0) {
            const Annotation *a = l ? annotation_of(rd, l) : NULL;
            c.kind = (uint8_t)(a && a->kind >= 0 ? a->kind : MAX(trace_coll_kind_of(name), 0));
            if (a) {
                c.in_nelems = a->in_nelems, c.out_nelems = a->out_nelems;
                c.group_size = a->group_size, c.dtype_bytes = a->dtype_bytes, c.dtype = a->dtype;
                c.pg = g_strdup(a->pg);
                /* an annotation without Input Dims (record_shapes off): the kind is known, the
                 * size is not, which the table must not present as read from the shapes */
                c.source = a->metadata    ? "record_param_comms"
                           : a->in_nelems ? "annotation input dims"
                                          : "unknown (record_shapes off)";
            } else {
                c.pg = g_strdup("");
                c.source = "kernel name";
            }
        }
        if (c.group_size <= 0)
            c.group_size = r->world_size;
        if (!c.dtype_bytes) {
            /* the name up to its parameters: "(ncclDevComm*, unsigned long, ...)" is no dtype */
            char *base = g_strndup(name, strcspn(name, "("));
            c.dtype_bytes = trace_dtype_bytes(base, &c.dtype);
            g_free(base);
        }
        if (!c.dtype)
            c.dtype = "?";
        if (c.kernel < 0 && c.in_nelems) {
            /* shapes give the input: a gather's output is the group's inputs, a scatter's the
             * input's share */
            if (c.kind == TRACE_COLL_ALLGATHER)
                c.out_nelems = c.in_nelems * c.group_size;
            else if (c.kind == TRACE_COLL_REDUCE_SCATTER)
                c.out_nelems = c.in_nelems / MAX(c.group_size, 1);
        }
        c.kernel = (int)i;
        c.instance = -1;
        gpointer n = NULL;
        if (g_hash_table_lookup_extended(seq, c.pg, NULL, &n))
            g_hash_table_replace(seq, g_strdup(c.pg), GINT_TO_POINTER(GPOINTER_TO_INT(n) + 1));
        else
            g_hash_table_insert(seq, g_strdup(c.pg), GINT_TO_POINTER(1));
        c.seq = GPOINTER_TO_INT(n);
        kk->coll = (int)r->colls->len;
        g_array_append_val(r->colls, c);
    }
    g_hash_table_destroy(seq);
    trace_shapes_attach(r, rd->shape_ops);
    return true;
}

TraceRank *trace_rank_read(const char *file, GError **error)
{
    TraceRank *r = g_new0(TraceRank, 1);
    r->file = g_strdup(file);
    r->backend = g_strdup(""), r->nccl_version = g_strdup(""), r->device = g_strdup("");
    r->kernels = g_array_new(FALSE, FALSE, sizeof(TraceKernel));
    r->colls = g_array_new(FALSE, FALSE, sizeof(TraceColl));
    r->steps = g_array_new(FALSE, FALSE, sizeof(TraceStep));
    r->breakdown = g_array_new(FALSE, TRUE, sizeof(TraceBreakdown));
    r->gemms = g_array_new(FALSE, FALSE, sizeof(TraceGemm));
    r->mems = g_array_new(FALSE, FALSE, sizeof(TraceMem));
    r->launch_call_us = g_array_new(FALSE, FALSE, sizeof(float));
    r->syncs = g_array_new(FALSE, FALSE, sizeof(TraceSync));
    r->stream_waits = g_array_new(FALSE, FALSE, sizeof(TraceSync));
    r->names = g_ptr_array_new_with_free_func(g_free);
    Reader rd = {r,
                 g_array_new(FALSE, FALSE, sizeof(Launch)),
                 g_array_new(FALSE, FALSE, sizeof(TraceShapeOp)),
                 g_array_new(FALSE, FALSE, sizeof(Annotation)),
                 g_hash_table_new(g_str_hash, g_str_equal),
                 false,
                 false,
                 false,
                 g_array_new(FALSE, FALSE, sizeof(TraceColl))};
    Scanner s = {.key = g_string_new(NULL), .buf = g_string_new(NULL)};
    GInputStream *in = trace_open_stream(file, error);
    bool ok = in != NULL;
    char chunk[1 << 16];
    while (ok) {
        GError *e = NULL;
        gssize n = g_input_stream_read(in, chunk, sizeof chunk, NULL, &e);
        if (n < 0) {
            file_error(error, file,
                       "cannot read the file (a damaged or truncated gzip "
                       "stream?): %s",
                       e->message);
            g_error_free(e);
            ok = false;
        } else if (n == 0) {
            break;
        } else {
            ok = scan(&rd, &s, chunk, (size_t)n, error);
        }
    }
    if (ok && !s.done) {
        char *where = g_strdup_printf("traceEvents[%" G_GINT64_FORMAT "]", s.index);
        cfg_set_error(error, file, "", s.in_events ? where : "traceEvents",
                      "the file ends before the trace's JSON does (truncated?)");
        g_free(where);
        ok = false;
    }
    ok = ok && finish(&rd, error);
    if (in)
        g_object_unref(in);
    g_string_free(s.key, TRUE), g_string_free(s.buf, TRUE);
    for (guint i = 0; i < rd.annotations->len; i++)
        g_free(g_array_index(rd.annotations, Annotation, i).pg);
    for (guint i = 0; i < rd.meta->len; i++)
        if (g_array_index(rd.meta, TraceColl, i).kernel >= 0 && !ok)
            g_free(g_array_index(rd.meta, TraceColl, i).pg);
    g_array_free(rd.launches, TRUE), g_array_free(rd.annotations, TRUE);
    g_array_free(rd.shape_ops, TRUE);
    g_array_free(rd.meta, TRUE);
    g_hash_table_destroy(rd.name_ids);
    if (!ok) {
        trace_rank_free(r);
        return NULL;
    }
    return r;
}

void trace_rank_free(TraceRank *r)
{
    if (!r)
        return;
    for (guint i = 0; i < r->colls->len; i++)
        g_free(g_array_index(r->colls, TraceColl, i).pg);
    g_array_free(r->kernels, TRUE), g_array_free(r->colls, TRUE), g_array_free(r->steps, TRUE);
    g_array_free(r->breakdown, TRUE), g_array_free(r->gemms, TRUE);
    g_array_free(r->mems, TRUE);
    g_array_free(r->launch_call_us, TRUE), g_array_free(r->syncs, TRUE);
    g_array_free(r->stream_waits, TRUE);
    g_ptr_array_free(r->names, TRUE);
    g_free(r->file), g_free(r->backend), g_free(r->nccl_version), g_free(r->device);
    g_free(r);
}
