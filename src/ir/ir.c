/* ir: schedule construction and queries; see ir.h. */
#include "ir.h"

#include "../util/cfg.h"

#include <string.h>

/* A class's interned strings (op and buffer names): every op interns its name, and a pipeline's
 * names are mostly distinct ("F12.0 steady layer 3"), so this is on the path of every op a
 * generator adds. Open addressing over string indices with each string's hash kept beside it
 * (the hash is computed once per call, and a probe compares text only when hashes match); the
 * characters live in a GStringChunk, not one allocation each. It replaced a GHashTable, which
 * hashed each new string twice and allocated per entry: 11 % of a 1T-parameter pipeline run. */
struct IrStringIndex {
    GStringChunk *text;
    GArray *hashes;  /* of uint32_t, per string */
    uint32_t *slots; /* string index + 1; 0: empty */
    uint32_t mask;   /* slots - 1, a power of two */
    /* joined strings (ir_string_join): their parts, kept; a pair -> join index table like the
     * strings' (dropped with it); the texts made so far (char *, NULL: not yet), under
     * join_lock */
    GArray *joins; /* of IrJoin */
    uint32_t *join_slots;
    uint32_t join_mask;
    GPtrArray *join_text;
    /* compute payloads (IrClass.computes) -> id + 1, as the joins' (dropped with them) */
    uint32_t *compute_slots;
    uint32_t compute_mask;
};

typedef struct {
    uint32_t first, second;
} IrJoin;

/* Guards the texts of joined strings, made on first read by whichever thread reads (fsdprun's
 * threads name ops in errors). Only readers of names take it: not the engine's hot path. */
static GMutex join_lock;

static uint32_t string_hash(const char *text, size_t *len)
{
    /* FNV-1a over 64-bit words (the tail zero-padded), then MurmurHash3's finaliser, as slots
     * are taken from the low bits: a 20-character op name in 3 multiplies and a strlen, where
     * FNV-1a a byte at a time took 20 in a dependent chain (8 % of GPT-3 full_shard's run) */
    size_t n = strlen(text);
    uint64_t h = 14695981039346656037u ^ n, w;
    size_t i = 0;
    for (; i + sizeof w <= n; i += sizeof w) {
        memcpy(&w, text + i, sizeof w);
        h = (h ^ w) * 1099511628211u;
        h ^= h >> 32;
    }
    w = 0;
    for (int shift = 0; i < n; i++, shift += 8)
        w |= (uint64_t)(uint8_t)text[i] << shift;
    h = (h ^ w) * 1099511628211u;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    *len = n;
    return (uint32_t)h;
}

static struct IrStringIndex *string_index_new(void)
{
    struct IrStringIndex *x = g_new0(struct IrStringIndex, 1);
    x->text = g_string_chunk_new(64 * 1024);
    x->hashes = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    x->mask = 255;
    x->slots = g_new0(uint32_t, x->mask + 1);
    x->joins = g_array_new(FALSE, FALSE, sizeof(IrJoin));
    return x;
}

static void string_index_free(struct IrStringIndex *x)
{
    g_string_chunk_free(x->text);
    if (x->hashes)
        g_array_free(x->hashes, TRUE);
    g_free(x->slots);
    g_array_free(x->joins, TRUE);
    g_free(x->join_slots);
    g_free(x->compute_slots);
    if (x->join_text)
        g_ptr_array_free(x->join_text, TRUE);
    g_free(x);
}

/* Open-addressing slots (mask + 1 of them, linear probing) holding 1 + the index of each of n
 * entries whose hashes are hashes[0..n). */
static uint32_t *slots_build(uint32_t mask, const uint32_t *hashes, uint32_t n)
{
    uint32_t *slots = g_new0(uint32_t, mask + 1);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = hashes[i] & mask;
        while (slots[k])
            k = (k + 1) & mask;
        slots[k] = i + 1;
    }
    return slots;
}

/* Twice the slots, when strings fill half of them. */
static void string_index_grow(struct IrStringIndex *x)
{
    uint32_t mask = 2 * x->mask + 1;
    uint32_t *slots = slots_build(mask, (const uint32_t *)x->hashes->data, x->hashes->len);
    g_free(x->slots);
    x->slots = slots;
    x->mask = mask;
}

IrSchedule *ir_schedule_new(int nodes, int gpus_per_node)
{
    IrSchedule *s = g_new0(IrSchedule, 1);
    s->nodes = nodes;
    s->gpus_per_node = gpus_per_node;
    s->world = nodes * gpus_per_node;
    s->version = IR_VERSION;
    s->meta = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return s;
}

static void class_free(IrClass *c)
{
    for (int i = 0; i < c->n_streams; i++)
        g_free(c->streams[i].name);
    g_free(c->streams);
    g_free(c->ops);
    g_free(c->deps);
    g_array_free(c->computes, TRUE);
    g_array_free(c->kernels, TRUE);
    if (c->kernel_index)
        g_hash_table_destroy(c->kernel_index);
    g_ptr_array_free(c->strings, TRUE);
    string_index_free(c->string_index);
    g_free(c);
}

void ir_schedule_free(IrSchedule *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_groups; i++)
        g_free(s->groups[i].name);
    g_free(s->groups);
    for (int i = 0; i < s->n_classes; i++)
        class_free(s->classes[i]);
    g_free(s->classes);
    g_free(s->rank_class);
    g_hash_table_destroy(s->meta);
    g_free(s);
}

int ir_group_add(IrSchedule *s, const char *name, int size, int stride)
{
    for (int i = 0; i < s->n_groups; i++) {
        if (strcmp(s->groups[i].name, name) == 0)
            return i;
    }
    s->groups = g_renew(IrGroup, s->groups, s->n_groups + 1);
    s->groups[s->n_groups] = (IrGroup){g_strdup(name), size, stride};
    return s->n_groups++;
}

void ir_meta_set(IrSchedule *s, const char *key, const char *value)
{
    g_hash_table_insert(s->meta, g_strdup(key), g_strdup(value));
}

IrClass *ir_class_add(IrSchedule *s, int first_rank, int n_ranks, int rank_stride)
{
    IrClass *c = g_new0(IrClass, 1);
    c->first_rank = first_rank;
    c->n_ranks = n_ranks;
    c->rank_stride = rank_stride > 0 ? rank_stride : 1;
    c->computes = g_array_new(FALSE, FALSE, sizeof(IrCompute));
    c->kernels = g_array_new(FALSE, FALSE, sizeof(IrKernel));
    c->strings = g_ptr_array_new();
    c->string_index = string_index_new();
    s->classes = g_renew(IrClass *, s->classes, s->n_classes + 1);
    s->classes[s->n_classes++] = c;
    /* the index, for the ranks inside the world (a class past it is an error ir_check names);
     * O(ranks of the class in the world) */
    if (!s->rank_class && s->world > 0) {
        s->rank_class = g_new(int32_t, s->world);
        for (int r = 0; r < s->world; r++)
            s->rank_class[r] = -1;
    }
    for (int64_t r = first_rank, i = 0; i < n_ranks && r < s->world; i++, r += c->rank_stride)
        if (r >= 0 && s->rank_class[r] < 0)
            s->rank_class[r] = s->n_classes - 1;
    return c;
}

void ir_class_reserve(IrClass *c, int n_ops, int n_deps)
{
    if (c->n_ops == 0 && n_ops > 0 && (uint32_t)n_ops > c->cap_ops) {
        c->cap_ops = (uint32_t)n_ops;
        c->ops = g_renew(IrOp, c->ops, c->cap_ops);
    }
    if (c->n_deps == 0 && n_deps > 0 && (uint32_t)n_deps > c->cap_deps) {
        c->cap_deps = (uint32_t)n_deps;
        c->deps = g_renew(uint32_t, c->deps, c->cap_deps);
    }
}

/* Room for `more` dependencies past n_deps. */
static void deps_room(IrClass *c, uint32_t more)
{
    if (c->n_deps + more <= c->cap_deps)
        return;
    c->cap_deps = MAX(MAX(64u, 2 * c->cap_deps), c->n_deps + more);
    c->deps = g_renew(uint32_t, c->deps, c->cap_deps);
}

int ir_stream_add(IrClass *c, const char *name, bool host)
{
    int found = ir_stream_find(c, name);
    if (found >= 0)
        return found;
    g_assert(c->n_streams < UINT16_MAX);
    c->streams = g_renew(IrStream, c->streams, c->n_streams + 1);
    c->streams[c->n_streams] = (IrStream){g_strdup(name), host};
    return c->n_streams++;
}

int ir_stream_find(const IrClass *c, const char *name)
{
    for (int i = 0; i < c->n_streams; i++) {
        if (strcmp(c->streams[i].name, name) == 0)
            return i;
    }
    return -1;
}

/* A class's string index, rebuilt from its strings when ir_schedule_compact dropped the hashes
 * and slots (a schedule compacted, then extended: tests, readers). O(strings), once. */
static struct IrStringIndex *string_index_of(IrClass *c)
{
    struct IrStringIndex *x = c->string_index;
    if (x->slots)
        return x;
    x->hashes = g_array_sized_new(FALSE, FALSE, sizeof(uint32_t), c->strings->len);
    x->mask = 255;
    while (x->mask + 1 < 4 * (c->strings->len + 1))
        x->mask = 2 * x->mask + 1;
    x->slots = g_new0(uint32_t, x->mask + 1);
    for (guint i = 0; i < c->strings->len; i++) {
        size_t len;
        uint32_t h = string_hash(g_ptr_array_index(c->strings, i), &len), k = h & x->mask;
        g_array_append_val(x->hashes, h);
        while (x->slots[k])
            k = (k + 1) & x->mask;
        x->slots[k] = i + 1;
    }
    return x;
}

uint32_t ir_string(IrClass *c, const char *text)
{
    struct IrStringIndex *x = string_index_of(c);
    size_t len;
    uint32_t h = string_hash(text, &len), k = h & x->mask;
    for (; x->slots[k]; k = (k + 1) & x->mask) {
        uint32_t i = x->slots[k] - 1;
        if (g_array_index(x->hashes, uint32_t, i) == h &&
            strcmp(g_ptr_array_index(c->strings, i), text) == 0)
            return i;
    }
    uint32_t index = c->strings->len;
    g_assert(index < IR_STRING_JOINED); /* the top bit tells joined strings apart */
    g_ptr_array_add(c->strings, g_string_chunk_insert_len(x->text, text, (gssize)len));
    g_array_append_val(x->hashes, h);
    x->slots[k] = index + 1;
    if (2 * c->strings->len > x->mask)
        string_index_grow(x);
    return index;
}

static uint32_t join_hash(uint32_t first, uint32_t second)
{
    uint64_t h = ((uint64_t)first << 32 | second) * 0x9e3779b97f4a7c15u;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    return (uint32_t)h;
}

/* Twice the join slots, when joins fill half of them (or the first, sized for `joins`). */
static void join_index_grow(struct IrStringIndex *x)
{
    uint32_t mask = x->join_slots ? 2 * x->join_mask + 1 : 255;
    while (mask + 1 < 4 * (x->joins->len + 1))
        mask = 2 * mask + 1;
    uint32_t n = x->joins->len, *hashes = g_new(uint32_t, MAX(n, 1));
    for (uint32_t i = 0; i < n; i++) {
        const IrJoin *j = &g_array_index(x->joins, IrJoin, i);
        hashes[i] = join_hash(j->first, j->second);
    }
    uint32_t *slots = slots_build(mask, hashes, n);
    g_free(hashes);
    g_free(x->join_slots);
    x->join_slots = slots;
    x->join_mask = mask;
}

uint32_t ir_string_join(IrClass *c, uint32_t first, uint32_t second)
{
    struct IrStringIndex *x = c->string_index;
    if (!x->join_slots)
        join_index_grow(x);
    uint32_t k = join_hash(first, second) & x->join_mask;
    for (; x->join_slots[k]; k = (k + 1) & x->join_mask) {
        uint32_t i = x->join_slots[k] - 1;
        const IrJoin *j = &g_array_index(x->joins, IrJoin, i);
        if (j->first == first && j->second == second)
            return i | IR_STRING_JOINED;
    }
    uint32_t index = x->joins->len;
    g_assert(index < IR_STRING_JOINED);
    IrJoin j = {first, second};
    g_array_append_val(x->joins, j);
    x->join_slots[k] = index + 1;
    if (2 * x->joins->len > x->join_mask)
        join_index_grow(x);
    return index | IR_STRING_JOINED;
}

/* A joined string's text, made once (join_lock held): its parts' texts one after the other. */
static const char *join_text(struct IrStringIndex *x, const IrClass *c, uint32_t join)
{
    if (!x->join_text)
        x->join_text = g_ptr_array_new();
    if (x->join_text->len < x->joins->len)
        g_ptr_array_set_size(x->join_text, (gint)x->joins->len);
    const char *text = g_ptr_array_index(x->join_text, join);
    if (text)
        return text;
    const IrJoin *j = &g_array_index(x->joins, IrJoin, join);
    const char *parts[2];
    uint32_t ids[2] = {j->first, j->second};
    for (int p = 0; p < 2; p++)
        parts[p] = ids[p] & IR_STRING_JOINED ? join_text(x, c, ids[p] & ~IR_STRING_JOINED)
                                             : g_ptr_array_index(c->strings, ids[p]);
    size_t n0 = strlen(parts[0]), n1 = strlen(parts[1]);
    char *joined = g_malloc(n0 + n1 + 1);
    memcpy(joined, parts[0], n0);
    memcpy(joined + n0, parts[1], n1 + 1);
    text = g_string_chunk_insert_len(x->text, joined, (gssize)(n0 + n1));
    g_free(joined);
    g_ptr_array_index(x->join_text, join) = (gpointer)text;
    return text;
}

const char *ir_class_string(const IrClass *c, uint32_t index)
{
    if (!(index & IR_STRING_JOINED))
        return g_ptr_array_index(c->strings, index);
    g_mutex_lock(&join_lock);
    const char *text = join_text(c->string_index, c, index & ~IR_STRING_JOINED);
    g_mutex_unlock(&join_lock);
    return text;
}

/* The 40 bytes of a payload, as 64-bit words folded as ir_kernels_hash does. */
static uint32_t compute_hash(const IrCompute *p)
{
    G_STATIC_ASSERT(sizeof(IrCompute) == 40);
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < sizeof *p / sizeof h; i++) {
        uint64_t w;
        memcpy(&w, (const char *)p + i * sizeof w, sizeof w);
        h = (h ^ w) * 1099511628211u;
        h ^= h >> 32;
    }
    h *= 0xff51afd7ed558ccdu;
    return (uint32_t)(h >> 32);
}

/* Twice the compute slots, when payloads fill half of them (or the first, sized for them). */
static void compute_index_grow(struct IrStringIndex *x, const GArray *computes)
{
    uint32_t mask = x->compute_slots ? 2 * x->compute_mask + 1 : 63;
    while (mask + 1 < 4 * (computes->len + 1))
        mask = 2 * mask + 1;
    uint32_t *slots = g_new0(uint32_t, mask + 1);
    for (uint32_t i = 0; i < computes->len; i++) {
        uint32_t k = compute_hash(&g_array_index(computes, IrCompute, i)) & mask;
        while (slots[k])
            k = (k + 1) & mask;
        slots[k] = i + 1;
    }
    g_free(x->compute_slots);
    x->compute_slots = slots;
    x->compute_mask = mask;
}

uint32_t ir_compute_add(IrClass *c, const IrCompute *payload)
{
    struct IrStringIndex *x = c->string_index;
    if (!x->compute_slots)
        compute_index_grow(x, c->computes);
    uint32_t k = compute_hash(payload) & x->compute_mask;
    for (; x->compute_slots[k]; k = (k + 1) & x->compute_mask) {
        uint32_t i = x->compute_slots[k] - 1;
        if (memcmp(&g_array_index(c->computes, IrCompute, i), payload, sizeof *payload) == 0)
            return i;
    }
    uint32_t id = c->computes->len;
    g_array_append_vals(c->computes, payload, 1);
    x->compute_slots[k] = id + 1;
    if (2 * c->computes->len > x->compute_mask)
        compute_index_grow(x, c->computes);
    return id;
}

int ir_op_add(IrClass *c, const IrOp *op, const char *name, const int *deps, int n_deps)
{
    return ir_op_add_named(c, op, ir_string(c, name ? name : ""), deps, n_deps);
}

int ir_op_add_named(IrClass *c, const IrOp *op, uint32_t name, const int *deps, int n_deps)
{
    g_assert(op->kind != IR_OP_COMPUTE || op->u.compute.payload < c->computes->len);
    IrOp copy = *op; /* op may be one of the class's, moved when the array grows */
    int index;
    IrOp *o = ir_op_push(c, copy.kind, copy.stream, name, deps, n_deps, &index);
    o->phase = copy.phase;
    o->dtype = copy.dtype;
    o->u = copy.u;
    return index;
}

IrOp *ir_op_push(IrClass *c, IrOpKind kind, int stream, uint32_t name, const int *deps, int n_deps,
                 int *index)
{
    int at = (int)c->n_ops;
    g_assert(stream >= 0 && stream < c->n_streams);
    g_assert(n_deps >= 0 && (uint32_t)n_deps <= IR_MAX_DEPS);
    uint32_t dep_start = c->n_deps, kept_n = 0;
    deps_room(c, (uint32_t)n_deps);
    for (int i = 0; i < n_deps; i++) {
        if (deps[i] < 0)
            continue;
        g_assert(deps[i] < at); /* programs are in issue order: deps point backwards */
        c->deps[c->n_deps++] = (uint32_t)deps[i];
        kept_n++;
    }
    if (c->n_ops == c->cap_ops) {
        c->cap_ops = MAX(64u, 2 * c->cap_ops);
        c->ops = g_renew(IrOp, c->ops, c->cap_ops);
    }
    IrOp *o = &c->ops[c->n_ops++];
    *o = (IrOp){0};
    o->kind = kind;
    o->stream = (uint16_t)stream;
    o->n_deps = kept_n;
    o->name = name;
    o->dep_start = dep_start;
    *index = at;
    return o;
}

/* Only the indices go (the joins' parts stay: they are the names). Cutting the op and dependency
 * arrays to their length (they double as they grow) was tried and measured: the capacity past
 * the length is never written, so never resident, and the copies cost 30-40 ms of page faults on
 * the 1T pp 64 x 512 layout for no change in peak resident set (157 MB either way; 1.18 GB at
 * 4096 micro-batches). */
void ir_schedule_compact(IrSchedule *s)
{
    for (int i = 0; i < s->n_classes; i++) {
        if (s->classes[i]->kernel_index) { /* rebuilt empty if lists are added again */
            g_hash_table_destroy(s->classes[i]->kernel_index);
            s->classes[i]->kernel_index = NULL;
        }
        struct IrStringIndex *x = s->classes[i]->string_index;
        g_free(x->join_slots); /* rebuilt by the next ir_string_join, ir_compute_add */
        x->join_slots = NULL;
        g_free(x->compute_slots);
        x->compute_slots = NULL;
        if (!x->slots)
            continue;
        g_array_free(x->hashes, TRUE);
        x->hashes = NULL;
        g_free(x->slots);
        x->slots = NULL;
    }
}

void ir_group_members(const IrSchedule *s, const IrGroup *g, int rank, int *members)
{
    int span = g->size * g->stride;
    int base = (rank / span) * span + rank % g->stride;
    for (int i = 0; i < g->size; i++)
        members[i] = base + i * g->stride;
}

void ir_group_shape(const IrSchedule *s, const IrGroup *g, int *nodes, int *ranks_per_node)
{
    int G = s->gpus_per_node;
    int per_node;
    if (g->stride >= G)
        per_node = 1;
    else
        per_node = MIN(g->size, (G + g->stride - 1) / g->stride);
    *ranks_per_node = per_node;
    *nodes = (g->size + per_node - 1) / per_node;
}

bool ir_class_has_rank(const IrClass *c, int rank)
{
    int off = rank - c->first_rank;
    return off >= 0 && off % c->rank_stride == 0 && off / c->rank_stride < c->n_ranks;
}

int ir_class_of_rank(const IrSchedule *s, int rank)
{
    if (rank >= 0 && rank < s->world && s->rank_class)
        return s->rank_class[rank];
    for (int c = 0; c < s->n_classes; c++)
        if (ir_class_has_rank(s->classes[c], rank))
            return c;
    return -1;
}

int ir_class_of_rank_or_error(const IrSchedule *s, int rank, GError **error)
{
    int ci = ir_class_of_rank(s, rank);
    if (ci < 0)
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "schedule: field 'classes': expected a rank class holding rank %d, got none",
                    rank);
    return ci;
}

static const char *const op_kind_names[IR_OP_KIND_COUNT] = {"host", "compute", "coll", "send",
                                                            "recv", "alloc",   "free", "memcpy"};
static const char *const coll_kind_names[IR_COLL_KIND_COUNT] = {
    "allgather", "reduce_scatter", "allreduce", "broadcast", "alltoall"};
static const char *const mem_names[IR_MEM_CATEGORY_COUNT] = {"params", "grads", "optimizer",
                                                             "activations", "comm_buffers"};
static const char *const phase_names[IR_PHASE_COUNT] = {"forward", "backward", "optimizer",
                                                        "other"};

const char *ir_op_kind_name(IrOpKind kind)
{
    return op_kind_names[kind];
}
const char *ir_coll_kind_name(IrCollKind kind)
{
    return coll_kind_names[kind];
}
const char *ir_mem_category_name(IrMemCategory cat)
{
    return mem_names[cat];
}
const char *ir_phase_name(IrPhase phase)
{
    return phase_names[phase];
}
