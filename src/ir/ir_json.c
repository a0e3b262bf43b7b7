/* ir_json: the schedule as versioned JSON ("format": "fsdpsim-schedule", "version": IR_VERSION).
 *
 * Layout: {format, version, world, nodes, gpus_per_node, meta{}, groups[{name,size,stride}],
 * classes[{first_rank, n_ranks, rank_stride, streams[{name,host}], kernel_lists[[...]] (version
 * 3, ir_kern.c), ops[...]}]}. An op is an object with kind, stream (name), name, phase, deps
 * (indices of earlier ops of the class) and the fields of its kind (a compute op's kernel_list:
 * its index in kernel_lists). Numbers are printed so that they read back bit for bit. */
#include "ir_priv.h"

#include "../hw/hw.h"
#include "../util/cfg.h"

#include <math.h>
#include <string.h>

static cJSON *op_to_json(const IrClass *c, const IrOp *op, const uint32_t *list_of)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", ir_op_kind_name(op->kind));
    cJSON_AddStringToObject(o, "stream", c->streams[op->stream].name);
    cJSON_AddStringToObject(o, "name", ir_class_string(c, op->name));
    cJSON_AddStringToObject(o, "phase", ir_phase_name((IrPhase)op->phase));
    cJSON *deps = cJSON_AddArrayToObject(o, "deps");
    const uint32_t *d = ir_op_deps(c, op);
    for (uint32_t i = 0; i < op->n_deps; i++)
        cJSON_AddItemToArray(deps, cJSON_CreateNumber(d[i]));
    switch (op->kind) {
    case IR_OP_HOST:
        cJSON_AddNumberToObject(o, "seconds", op->u.host.seconds);
        break;
    case IR_OP_COMPUTE: {
        const IrCompute *p = ir_op_compute(c, op);
        cJSON_AddStringToObject(o, "dtype", hw_dtype_name((HwDtype)op->dtype));
        cJSON_AddNumberToObject(o, "flops", p->flops);
        cJSON_AddNumberToObject(o, "bytes", p->bytes);
        cJSON_AddNumberToObject(o, "model_flops", p->model_flops);
        cJSON_AddNumberToObject(o, "kernels", p->kernels);
        if (p->seconds > 0)
            cJSON_AddNumberToObject(o, "seconds", p->seconds);
        if (p->kern_first)
            cJSON_AddNumberToObject(o, "kernel_list", list_of[p->kern_first - 1]);
        break;
    }
    case IR_OP_COLL:
        cJSON_AddStringToObject(o, "coll", ir_coll_kind_name((IrCollKind)op->u.coll.coll));
        cJSON_AddStringToObject(o, "dtype", hw_dtype_name((HwDtype)op->dtype));
        cJSON_AddStringToObject(o, "group", "");
        cJSON_AddNumberToObject(o, "bytes", (double)op->u.coll.bytes);
        if (op->u.coll.sms)
            cJSON_AddNumberToObject(o, "sms", op->u.coll.sms);
        break;
    case IR_OP_SEND:
    case IR_OP_RECV:
        cJSON_AddNumberToObject(o, "peer_offset", op->u.p2p.peer_offset);
        cJSON_AddNumberToObject(o, "bytes", (double)op->u.p2p.bytes);
        cJSON_AddNumberToObject(o, "tag", op->u.p2p.tag);
        break;
    case IR_OP_MEMCPY:
        cJSON_AddStringToObject(o, "dir", op->u.memcpy.to_device ? "h2d" : "d2h");
        cJSON_AddNumberToObject(o, "bytes", (double)op->u.memcpy.bytes);
        break;
    case IR_OP_ALLOC:
    case IR_OP_FREE:
        cJSON_AddStringToObject(o, "buffer", ir_class_string(c, op->u.mem.buffer));
        cJSON_AddStringToObject(o, "category", ir_mem_category_name((IrMemCategory)op->u.mem.category));
        cJSON_AddNumberToObject(o, "bytes", (double)op->u.mem.bytes);
        break;
    default:
        g_assert_not_reached();
    }
    return o;
}

static int compare_keys(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The text as cJSON prints it unformatted, a line per op: a newline after the comma of every
 * "},{" outside strings (one op per line keeps the file diffable without the size of full
 * indentation; inside a name, a newline would be a raw control character, which JSON refuses).
 * Fed in pieces, so a "},{" or an escape may straddle two: `state` is 1 after a '}', 2 after a
 * "}," held back. */
typedef struct {
    FILE *out;
    int state;
    bool in_string, escaped;
} Lines;

static void lines_put(Lines *l, const char *text)
{
    for (const char *p = text; *p; p++) {
        char ch = *p;
        if (l->state == 2) {
            fputs(ch == '{' ? ",\n" : ",", l->out);
            l->state = 0;
        }
        if (l->state == 1 && ch == ',') {
            l->state = 2; /* held: is a '{' next? */
            continue;
        }
        putc(ch, l->out);
        if (l->in_string) {
            l->in_string = l->escaped || ch != '"';
            l->escaped = !l->escaped && ch == '\\';
        } else {
            l->in_string = ch == '"';
            l->state = ch == '}';
        }
    }
}

static void lines_end(Lines *l)
{
    if (l->state == 2)
        putc(',', l->out);
    putc('\n', l->out);
}

/* An object printed without its closing brace, for the array streamed into it after. */
static void lines_open(Lines *l, const cJSON *o)
{
    char *text = cfg_json_print(o, false);
    text[strlen(text) - 1] = '\0';
    lines_put(l, text);
    cJSON_free(text);
}

/* Written op by op, never the whole tree (1.4-1.5 KB of memory per op, cli/budget.c): the same
 * bytes as printing it whole. */
bool ir_schedule_write_to(FILE *out, const IrSchedule *s)
{
    Lines l = {.out = out};
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", IR_FORMAT);
    cJSON_AddNumberToObject(root, "version", IR_VERSION);
    cJSON_AddNumberToObject(root, "world", s->world);
    cJSON_AddNumberToObject(root, "nodes", s->nodes);
    cJSON_AddNumberToObject(root, "gpus_per_node", s->gpus_per_node);
    cJSON *meta = cJSON_AddObjectToObject(root, "meta");
    /* sorted keys: same schedule, same bytes */
    GPtrArray *keys = g_ptr_array_new();
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->meta);
    while (g_hash_table_iter_next(&it, &k, &v))
        g_ptr_array_add(keys, k);
    g_ptr_array_sort(keys, compare_keys);
    for (guint i = 0; i < keys->len; i++)
        cJSON_AddStringToObject(meta, keys->pdata[i], g_hash_table_lookup(s->meta, keys->pdata[i]));
    g_ptr_array_free(keys, TRUE);
    cJSON *groups = cJSON_AddArrayToObject(root, "groups");
    for (int i = 0; i < s->n_groups; i++) {
        cJSON *g = cJSON_CreateObject();
        cJSON_AddStringToObject(g, "name", s->groups[i].name);
        cJSON_AddNumberToObject(g, "size", s->groups[i].size);
        cJSON_AddNumberToObject(g, "stride", s->groups[i].stride);
        cJSON_AddItemToArray(groups, g);
    }
    lines_open(&l, root);
    cJSON_Delete(root);
    lines_put(&l, ",\"classes\":[");
    char buf[4096];
    for (int ci = 0; ci < s->n_classes; ci++) {
        const IrClass *c = s->classes[ci];
        cJSON *co = cJSON_CreateObject();
        cJSON_AddNumberToObject(co, "first_rank", c->first_rank);
        cJSON_AddNumberToObject(co, "n_ranks", c->n_ranks);
        cJSON_AddNumberToObject(co, "rank_stride", c->rank_stride);
        cJSON *streams = cJSON_AddArrayToObject(co, "streams");
        for (int i = 0; i < c->n_streams; i++) {
            cJSON *st = cJSON_CreateObject();
            cJSON_AddStringToObject(st, "name", c->streams[i].name);
            cJSON_AddBoolToObject(st, "host", c->streams[i].host);
            cJSON_AddItemToArray(streams, st);
        }
        uint32_t *list_of = NULL;
        cJSON *lists = ir_kernel_lists_to_json(c, &list_of);
        if (lists)
            cJSON_AddItemToObject(co, "kernel_lists", lists);
        if (ci > 0)
            lines_put(&l, ",");
        lines_open(&l, co);
        cJSON_Delete(co);
        lines_put(&l, ",\"ops\":[");
        for (int i = 0; i < ir_class_n_ops(c); i++) {
            const IrOp *op = ir_op(c, i);
            cJSON *o = op_to_json(c, op, list_of);
            if (op->kind == IR_OP_COLL)
                cJSON_SetValuestring(cJSON_GetObjectItem(o, "group"), s->groups[op->u.coll.group].name);
            if (i > 0)
                lines_put(&l, ",");
            if (cJSON_PrintPreallocated(o, buf, (int)sizeof buf, false)) {
                lines_put(&l, buf);
            } else {
                char *text = cfg_json_print(o, false);
                lines_put(&l, text);
                cJSON_free(text);
            }
            cJSON_Delete(o);
        }
        lines_put(&l, "]}");
        g_free(list_of);
    }
    lines_put(&l, "]}");
    lines_end(&l);
    return !ferror(out);
}

char *ir_schedule_to_json(const IrSchedule *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem)
        g_error("open_memstream: out of memory"); /* cfg_oom_install: exit 2 */
    ir_schedule_write_to(mem, s);
    fclose(mem);
    return text;
}

static bool write_schedule(FILE *f, void *ctx)
{
    return ir_schedule_write_to(f, ctx);
}

bool ir_schedule_write(const IrSchedule *s, const char *file, GError **error)
{
    if (cfg_write_streamed(file, write_schedule, (void *)s, error))
        return true;
    g_prefix_error(error, "schedule: ");
    return false;
}

static int lookup_name(const char *const *names, int n, const char *text)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i], text) == 0)
            return i;
    }
    return -1;
}

bool ir_json_enum(CfgObj *co, const char *key, const char *const *names, int n, int *out,
                       GError **error)
{
    char *text = NULL;
    if (!cfg_get_string(co, key, true, &text, error))
        return false;
    *out = lookup_name(names, n, text);
    if (*out < 0) {
        GString *list = g_string_new("");
        for (int i = 0; i < n; i++)
            g_string_append_printf(list, "%s%s", i ? ", " : "", names[i]);
        cfg_set_error(error, co->file, co->path, key, "expected one of %s, got \"%s\"", list->str, text);
        g_string_free(list, TRUE);
    }
    g_free(text);
    return *out >= 0;
}

/* Names to indices while reading, so that a lookup costs O(1): with linear searches a file of
 * many streams or groups took O(ops x streams) (65,535 streams and a million ops: minutes). */
/* Streams per class and process-group families per schedule: fsdpsim's generators use at most
 * a dozen of each; a thousand leaves room and keeps the ops' uint16 indices far from overflow. */
#define IR_READ_MAX_NAMES 1024

typedef struct {
    GHashTable *groups;  /* group name -> index + 1 */
    GHashTable *streams; /* stream name -> index + 1, of the class being read */
    int version;
    GArray *lists;       /* of the class being read: kern_first by kernel list index, or NULL */
} ReadNames;

static int name_index(GHashTable *names, const char *name)
{
    return GPOINTER_TO_INT(g_hash_table_lookup(names, name)) - 1;
}

/* A collective's, send's, copy's or buffer's bytes: a whole number (1.5 read as 1 was a silent
 * truncation), up to 10^18. */
static bool get_bytes(CfgObj *co, uint64_t *out, GError **error)
{
    int64_t bytes = 0;
    bool ok = cfg_get_int(co, "bytes", true, 0, 1000000000000000000LL, &bytes, error);
    *out = (uint64_t)bytes;
    return ok;
}

static bool read_op(IrSchedule *s, IrClass *c, const ReadNames *names, CfgObj *co, int index,
                    GError **error)
{
    static const char *kinds[IR_OP_KIND_COUNT], *colls[IR_COLL_KIND_COUNT],
        *cats[IR_MEM_CATEGORY_COUNT], *phases[IR_PHASE_COUNT], *dtypes[HW_DTYPE_COUNT];
    for (int i = 0; i < IR_OP_KIND_COUNT; i++) kinds[i] = ir_op_kind_name((IrOpKind)i);
    for (int i = 0; i < IR_COLL_KIND_COUNT; i++) colls[i] = ir_coll_kind_name((IrCollKind)i);
    for (int i = 0; i < IR_MEM_CATEGORY_COUNT; i++) cats[i] = ir_mem_category_name((IrMemCategory)i);
    for (int i = 0; i < IR_PHASE_COUNT; i++) phases[i] = ir_phase_name((IrPhase)i);
    for (int i = 0; i < HW_DTYPE_COUNT; i++) dtypes[i] = hw_dtype_name((HwDtype)i);

    IrOp op = {0};
    IrCompute payload = {0};
    int kind = 0, phase = 0, value = 0;
    char *stream = NULL, *name = NULL, *text = NULL;
    bool ok = ir_json_enum(co, "kind", kinds, IR_OP_KIND_COUNT, &kind, error) &&
              cfg_get_string(co, "stream", true, &stream, error) &&
              cfg_get_string(co, "name", true, &name, error) &&
              ir_json_enum(co, "phase", phases, IR_PHASE_COUNT, &phase, error);
    op.kind = (IrOpKind)kind;
    op.phase = (uint8_t)phase;
    if (ok) {
        int st = name_index(names->streams, stream);
        if (st < 0) {
            GString *list = g_string_new(NULL);
            for (int k = 0; k < c->n_streams && k < 16; k++)
                g_string_append_printf(list, "%s%s", k ? ", " : "", c->streams[k].name);
            cfg_set_error(error, co->file, co->path, "stream",
                          "no stream named \"%s\" in this class; expected one of its streams: %s",
                          stream, list->str);
            g_string_free(list, TRUE);
            ok = false;
        }
        op.stream = (uint16_t)MAX(st, 0);
    }
    const cJSON *deps = ok ? cfg_item(co, "deps") : NULL;
    if (ok && !cJSON_IsArray(deps)) {
        cfg_set_error(error, co->file, co->path, "deps", "expected an array of earlier op indices");
        ok = false;
    }
    int n_deps = ok ? cJSON_GetArraySize(deps) : 0;
    if (ok && (uint32_t)n_deps > IR_MAX_DEPS) {
        cfg_set_error(error, co->file, co->path, "deps",
                      "expected at most %u earlier op indices, got %d", IR_MAX_DEPS, n_deps);
        ok = false;
        n_deps = 0;
    }
    int *dep_list = g_new0(int, n_deps + 1);
    for (int i = 0; ok && i < n_deps; i++) {
        const cJSON *d = cJSON_GetArrayItem(deps, i);
        /* range first: casting a double outside int's range is undefined (the fuzzer's 6.7e87) */
        if (!cJSON_IsNumber(d) || !(d->valuedouble >= 0 && d->valuedouble < index) ||
            d->valuedouble != floor(d->valuedouble)) {
            cfg_set_error(error, co->file, co->path, "deps",
                          "entry %d: expected the index of an earlier op (0..%d)", i, index - 1);
            ok = false;
        } else {
            dep_list[i] = (int)d->valuedouble;
        }
    }
    int64_t i64 = 0;
    if (ok) {
        switch (op.kind) {
        case IR_OP_HOST:
            ok = cfg_get_double(co, "seconds", true, 0, 1e9, &op.u.host.seconds, error);
            break;
        case IR_OP_COMPUTE:
            ok = ir_json_enum(co, "dtype", dtypes, HW_DTYPE_COUNT, &value, error) &&
                 cfg_get_double(co, "flops", true, 0, 1e30, &payload.flops, error) &&
                 cfg_get_double(co, "bytes", true, 0, 1e30, &payload.bytes, error) &&
                 cfg_get_double(co, "model_flops", true, 0, 1e30, &payload.model_flops, error) &&
                 cfg_get_int(co, "kernels", true, 0, 1 << 30, &i64, error) &&
                 cfg_get_double(co, "seconds", false, 0, 1e9, &payload.seconds, error);
            op.dtype = (uint8_t)value;
            payload.kernels = (uint32_t)i64;
            if (ok && cfg_has(co, "kernel_list")) {
                int n_lists = names->lists ? (int)names->lists->len : 0;
                if (n_lists == 0) {
                    cfg_set_error(error, co->file, co->path, "kernel_list",
                                  "the class has no \"kernel_lists\" (schedule version 3) to "
                                  "index; expected no kernel_list");
                    ok = false;
                }
                ok = ok && cfg_get_int(co, "kernel_list", true, 0, n_lists - 1, &i64, error);
                if (ok)
                    payload.kern_first = g_array_index(names->lists, uint32_t, i64);
            }
            if (ok)
                op.u.compute.payload = ir_compute_add(c, &payload);
            break;
        case IR_OP_COLL:
            ok = ir_json_enum(co, "coll", colls, IR_COLL_KIND_COUNT, &value, error);
            op.u.coll.coll = (uint8_t)value;
            ok = ok && ir_json_enum(co, "dtype", dtypes, HW_DTYPE_COUNT, &value, error);
            op.dtype = (uint8_t)value;
            ok = ok && cfg_get_string(co, "group", true, &text, error);
            if (ok) {
                int g = name_index(names->groups, text);
                if (g < 0) {
                    cfg_set_error(error, co->file, co->path, "group", "no group named \"%s\"", text);
                    ok = false;
                }
                op.u.coll.group = (uint16_t)MAX(g, 0);
            }
            ok = ok && get_bytes(co, &op.u.coll.bytes, error);
            i64 = 0;
            if (ok && names->version < 4 && cfg_has(co, "sms")) {
                cfg_set_error(error, co->file, co->path, "sms",
                              "a collective's SMs are new in schedule version 4; expected "
                              "version 4, or no sms in version %d",
                              names->version);
                ok = false;
            }
            ok = ok && cfg_get_int(co, "sms", false, 0, 255, &i64, error);
            op.u.coll.sms = (uint8_t)i64;
            break;
        case IR_OP_SEND:
        case IR_OP_RECV:
            ok = cfg_get_int(co, "peer_offset", true, -s->world, s->world, &i64, error);
            op.u.p2p.peer_offset = (int32_t)i64;
            ok = ok && get_bytes(co, &op.u.p2p.bytes, error) &&
                 cfg_get_int(co, "tag", true, 0, UINT32_MAX, &i64, error);
            op.u.p2p.tag = (uint32_t)i64;
            break;
        case IR_OP_MEMCPY: {
            static const char *dirs[] = {"d2h", "h2d"};
            ok = ir_json_enum(co, "dir", dirs, 2, &value, error) &&
                 get_bytes(co, &op.u.memcpy.bytes, error);
            op.u.memcpy.to_device = value == 1;
            break;
        }
        case IR_OP_ALLOC:
        case IR_OP_FREE:
            ok = cfg_get_string(co, "buffer", true, &text, error) &&
                 ir_json_enum(co, "category", cats, IR_MEM_CATEGORY_COUNT, &value, error) &&
                 get_bytes(co, &op.u.mem.bytes, error);
            if (ok)
                op.u.mem.buffer = ir_string(c, text);
            op.u.mem.category = (uint8_t)value;
            break;
        default:
            break;
        }
    }
    ok = ok && cfg_obj_check_unknown(co, "see src/ir/ir_json.c for the fields of each op kind", error);
    if (ok)
        ir_op_add(c, &op, name, dep_list, n_deps);
    g_free(dep_list);
    g_free(stream);
    g_free(name);
    g_free(text);
    return ok;
}

static bool read_class(IrSchedule *s, ReadNames *names, CfgObj *co, GError **error)
{
    int64_t first = 0, n = 0, stride = 1;
    bool ok = cfg_get_int(co, "first_rank", true, 0, s->world - 1, &first, error) &&
              cfg_get_int(co, "n_ranks", true, 1, s->world, &n, error) &&
              cfg_get_int(co, "rank_stride", true, 1, s->world, &stride, error);
    if (!ok)
        return false;
    IrClass *c = ir_class_add(s, (int)first, (int)n, (int)stride);
    const cJSON *streams = cfg_item(co, "streams");
    const cJSON *ops = cfg_item(co, "ops");
    if (!cJSON_IsArray(streams) || !cJSON_IsArray(ops)) {
        cfg_set_error(error, co->file, co->path, !cJSON_IsArray(streams) ? "streams" : "ops",
                      "expected an array");
        return false;
    }
    if (cfg_has(co, "kernel_lists")) {
        if (names->version < 3) {
            cfg_set_error(error, co->file, co->path, "kernel_lists",
                          "kernel lists are new in schedule version 3; expected version 3, or "
                          "no kernel_lists in version %d",
                          names->version);
            return false;
        }
        names->lists = ir_kernel_lists_read(c, co, error);
        if (!names->lists)
            return false;
        for (guint k = 0; names->version < 5 && k < c->kernels->len; k++)
            if (g_array_index(c->kernels, IrKernel, k).cls == IR_KERN_CONV) {
                cfg_set_error(error, co->file, co->path, "kernel_lists",
                              "convolution kernels (\"class\": \"conv\") are new in schedule "
                              "version 5; expected version 5, or gemm in version %d",
                              names->version);
                return false;
            }
        for (guint k = 0; names->version < 6 && k < c->kernels->len; k++)
            if (g_array_index(c->kernels, IrKernel, k).flags & IR_KERN_MISALIGNED) {
                cfg_set_error(error, co->file, co->path, "kernel_lists",
                              "misaligned GEMMs (\"misaligned\": true) are new in schedule "
                              "version 6; expected version 6, or no misaligned in version %d",
                              names->version);
                return false;
            }
    }
    int i = 0;
    for (const cJSON *it = streams->child; it && ok; it = it->next, i++) {
        CfgObj so;
        char *path = g_strdup_printf("%s.streams[%d]", co->path, i);
        char *name = NULL;
        bool host = false;
        ok = cfg_obj_open(&so, co->file, path, it, error) &&
             cfg_get_string(&so, "name", true, &name, error) &&
             cfg_get_bool(&so, "host", true, &host, error) &&
             cfg_obj_check_unknown(&so, "expected name and host", error);
        if (ok && name_index(names->streams, name) >= 0) {
            cfg_set_error(error, co->file, path, "name",
                          "a second stream named \"%s\" in this class; expected unique stream "
                          "names",
                          name);
            ok = false;
        }
        if (ok && c->n_streams >= IR_READ_MAX_NAMES) {
            cfg_set_error(error, co->file, co->path, "streams", "expected at most %d streams",
                          IR_READ_MAX_NAMES);
            ok = false;
        }
        if (ok)
            g_hash_table_insert(names->streams, g_strdup(name),
                                GINT_TO_POINTER(ir_stream_add(c, name, host) + 1));
        if (so.seen)
            cfg_obj_close(&so);
        g_free(name);
        g_free(path);
    }
    i = 0;
    for (const cJSON *it = ops->child; it && ok; it = it->next, i++) {
        CfgObj oo;
        char *path = g_strdup_printf("%s.ops[%d]", co->path, i);
        ok = cfg_obj_open(&oo, co->file, path, it, error) && read_op(s, c, names, &oo, i, error);
        if (oo.seen)
            cfg_obj_close(&oo);
        g_free(path);
    }
    if (names->lists)
        g_array_free(names->lists, TRUE);
    names->lists = NULL;
    return ok && cfg_obj_check_unknown(co, "expected first_rank, n_ranks, rank_stride, streams, "
                                           "kernel_lists, ops", error);
}

IrSchedule *ir_schedule_from_text(const char *file, const char *text, GError **error)
{
    cJSON *json = cfg_parse_text(file, text, error);
    if (!json)
        return NULL;
    CfgObj root;
    char *format = NULL;
    int64_t version = 0, world = 0, nodes = 0, gpn = 0;
    IrSchedule *s = NULL;
    ReadNames names = {g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
                       g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL), 0, NULL};
    bool ok = cfg_obj_open(&root, file, "", json, error) &&
              cfg_get_string(&root, "format", true, &format, error);
    if (ok && strcmp(format, IR_FORMAT) != 0) {
        cfg_set_error(error, file, "", "format", "expected \"%s\", got \"%s\"", IR_FORMAT, format);
        ok = false;
    }
    ok = ok && cfg_get_int(&root, "version", true, 1, 1000, &version, error);
    if (ok && (version < 1 || version > IR_VERSION)) {
        cfg_set_error(error, file, "", "version",
                      "this fsdpsim reads schedule versions 1 to %d, the file has version %" G_GINT64_FORMAT,
                      IR_VERSION, version);
        ok = false;
    }
    names.version = (int)version;
    ok = ok && cfg_get_int(&root, "world", true, 1, 1 << 24, &world, error) &&
         cfg_get_int(&root, "nodes", true, 1, 1 << 24, &nodes, error) &&
         cfg_get_int(&root, "gpus_per_node", true, 1, 1024, &gpn, error);
    if (ok && world != nodes * gpn) {
        cfg_set_error(error, file, "", "world", "expected nodes * gpus_per_node = %" G_GINT64_FORMAT,
                      nodes * gpn);
        ok = false;
    }
    if (ok) {
        s = ir_schedule_new((int)nodes, (int)gpn);
        s->version = (int)version;
    }
    CfgObj meta = {0};
    ok = ok && cfg_obj_child(&root, "meta", false, &meta, error);
    /* each entry as it comes: looking each key up again was O(keys^2) */
    for (const cJSON *it = ok ? meta.obj->child : NULL; it && ok; it = it->next) {
        if (!cJSON_IsString(it)) {
            char *got = cfg_json_print(it, false);
            cfg_set_error(error, file, "meta", it->string, "expected a string, got %s", got);
            cJSON_free(got);
            ok = false;
        } else {
            ir_meta_set(s, it->string, it->valuestring);
        }
    }
    if (meta.seen)
        cfg_obj_close(&meta);
    const cJSON *groups = ok ? cfg_item(&root, "groups") : NULL;
    if (ok && !cJSON_IsArray(groups)) {
        cfg_set_error(error, file, "", "groups", "expected an array");
        ok = false;
    }
    int i = 0;
    for (const cJSON *it = ok ? groups->child : NULL; it && ok; it = it->next, i++) {
        CfgObj go;
        char *path = g_strdup_printf("groups[%d]", i), *name = NULL;
        int64_t size = 0, stride = 0;
        ok = cfg_obj_open(&go, file, path, it, error) &&
             cfg_get_string(&go, "name", true, &name, error) &&
             cfg_get_int(&go, "size", true, 1, world, &size, error) &&
             cfg_get_int(&go, "stride", true, 1, world, &stride, error) &&
             cfg_obj_check_unknown(&go, "expected name, size, stride", error);
        if (ok && world % (size * stride) != 0) {
            cfg_set_error(error, file, path, "size", "size * stride must divide world (%" G_GINT64_FORMAT ")", world);
            ok = false;
        }
        int first = ok ? name_index(names.groups, name) : -1;
        if (first >= 0) {
            cfg_set_error(error, file, path, "name",
                          "a second group named \"%s\" (groups[%d]); expected unique group names",
                          name, first);
            ok = false;
        }
        if (ok && s->n_groups >= IR_READ_MAX_NAMES) {
            cfg_set_error(error, file, "", "groups", "expected at most %d groups",
                          IR_READ_MAX_NAMES);
            ok = false;
        }
        if (ok)
            g_hash_table_insert(names.groups, g_strdup(name),
                                GINT_TO_POINTER(ir_group_add(s, name, (int)size, (int)stride) + 1));
        if (go.seen)
            cfg_obj_close(&go);
        g_free(name);
        g_free(path);
    }
    const cJSON *classes = ok ? cfg_item(&root, "classes") : NULL;
    if (ok && !cJSON_IsArray(classes)) {
        cfg_set_error(error, file, "", "classes", "expected an array");
        ok = false;
    }
    i = 0;
    for (const cJSON *it = ok ? classes->child : NULL; it && ok; it = it->next, i++) {
        CfgObj co;
        char *path = g_strdup_printf("classes[%d]", i);
        g_hash_table_remove_all(names.streams);
        ok = cfg_obj_open(&co, file, path, it, error) && read_class(s, &names, &co, error);
        if (co.seen)
            cfg_obj_close(&co);
        g_free(path);
    }
    ok = ok && cfg_obj_check_unknown(&root, "expected format, version, world, nodes, "
                                            "gpus_per_node, meta, groups, classes", error);
    ok = ok && ir_schedule_check(s, file, error);
    if (root.seen)
        cfg_obj_close(&root);
    g_hash_table_destroy(names.groups);
    g_hash_table_destroy(names.streams);
    g_free(format);
    cJSON_Delete(json);
    if (!ok) {
        ir_schedule_free(s);
        return NULL;
    }
    return s;
}

IrSchedule *ir_schedule_read(const char *file, GError **error)
{
    char *text = NULL;
    GError *io = NULL;
    if (!g_file_get_contents(file, &text, NULL, &io)) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT, "%s: cannot read schedule: %s", file, io->message);
        g_error_free(io);
        return NULL;
    }
    IrSchedule *s = ir_schedule_from_text(file, text, error);
    g_free(text);
    if (s)
        ir_schedule_compact(s);
    return s;
}

bool ir_schedule_equal(const IrSchedule *a, const IrSchedule *b)
{
    char *ja = ir_schedule_to_json(a), *jb = ir_schedule_to_json(b);
    bool same = strcmp(ja, jb) == 0;
    g_free(ja);
    g_free(jb);
    return same;
}
