/* trace: a set of ranks, collectives matched across them, step breakdowns, the NCCL and
 * straggler tables (see trace.h). */
#include "trace.h"

#include "../coll/coll.h"
#include "../util/cfg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double trace_busbw_factor(TraceCollKind kind, int n)
{
    /* nccl-tests' factors (coll_busbw_factor); reduce and send/recv, which the schedule has no
     * collective for, 1 as broadcast's */
    IrCollKind k;
    if (kind == TRACE_COLL_SENDRECV)
        return 1.0;
    return coll_busbw_factor(trace_coll_ir_kind(kind, &k) ? k : IR_COLL_BROADCAST, n);
}

/* --- reading a set -----------------------------------------------------------------------------
 */

static int name_order(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* FILE itself, or a directory's *.json and *.json.gz files in name order. */
static bool expand(const char *file, GPtrArray *out, GError **error)
{
    if (!g_file_test(file, G_FILE_TEST_IS_DIR)) {
        g_ptr_array_add(out, g_strdup(file));
        return true;
    }
    GError *e = NULL;
    GDir *dir = g_dir_open(file, 0, &e);
    if (!dir) {
        cfg_input_error(error, "%s: cannot read the directory: %s", file, e->message);
        g_error_free(e);
        return false;
    }
    GPtrArray *names = g_ptr_array_new();
    const char *n;
    while ((n = g_dir_read_name(dir)))
        if (g_str_has_suffix(n, ".json") || g_str_has_suffix(n, ".json.gz"))
            g_ptr_array_add(names, g_build_filename(file, n, NULL));
    g_dir_close(dir);
    g_ptr_array_sort(names, name_order);
    bool ok = names->len > 0;
    if (!ok)
        cfg_input_error(error,
                        "%s: expected profiler traces (*.json or *.json.gz) in the "
                        "directory, found none",
                        file);
    for (guint i = 0; i < names->len; i++)
        g_ptr_array_add(out, g_ptr_array_index(names, i));
    g_ptr_array_free(names, TRUE);
    return ok;
}

static int rank_order(const void *a, const void *b)
{
    const TraceRank *x = *(TraceRank *const *)a, *y = *(TraceRank *const *)b;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

/* A file of several says which rank it is: without distributedInfo it was read as rank 0 of 1,
 * and two such files were "rank 0 twice", one beside ranks of 8 "world size 1, not 8". The rank
 * is not guessed from the file name (worker0..., rank0...: names are the user's). */
static bool has_rank(const TraceRank *r, guint files, GError **error)
{
    if (r->has_distributed_info)
        return true;
    cfg_set_error(error, r->file, "", "distributedInfo",
                  "expected distributedInfo (rank, world_size) in every trace of a set of %u "
                  "files (torch.distributed initialised before the profiler starts), got none: "
                  "the file's rank is not known",
                  files);
    return false;
}

/* Ranks of one job: same world size, backend and NCCL version, each rank once. */
static bool check_same_job(const TraceSet *set, const TraceRank *r, GError **error)
{
    for (guint i = 0; i < set->ranks->len; i++) {
        const TraceRank *o = g_ptr_array_index(set->ranks, i);
        const char *field = NULL;
        char *want = NULL, *got = NULL;
        if (o->world_size != r->world_size)
            field = "world_size", want = g_strdup_printf("%d", o->world_size),
            got = g_strdup_printf("%d", r->world_size);
        else if (strcmp(o->backend, r->backend))
            field = "backend", want = g_strdup(o->backend), got = g_strdup(r->backend);
        else if (strcmp(o->nccl_version, r->nccl_version))
            field = "nccl_version", want = g_strdup(o->nccl_version),
            got = g_strdup(r->nccl_version);
        if (field) {
            cfg_set_error(error, r->file, "distributedInfo", field,
                          "expected \"%s\" as in %s (the ranks of one job), got \"%s\"", want,
                          o->file, got);
            g_free(want), g_free(got);
            return false;
        }
        if (o->rank == r->rank) {
            cfg_set_error(error, r->file, "distributedInfo", "rank",
                          "rank %d is also the rank of %s: expected each rank once", r->rank,
                          o->file);
            return false;
        }
    }
    return true;
}

/* Several files: their ProfilerStep#N must share a number with the lowest rank's: traces of
 * different profiling windows (a worker's trace of another cycle, tensorboard_trace_handler's files
 * of an earlier run) have no collective in common, and matched by sequence number they paired
 * unrelated kernels. */
static bool check_set(const TraceSet *set, GError **error)
{
    if (set->ranks->len < 2)
        return true;
    const TraceRank *first = g_ptr_array_index(set->ranks, 0);
    for (guint i = 1; i < set->ranks->len; i++) {
        const TraceRank *r = g_ptr_array_index(set->ranks, i);
        bool shared = false;
        for (guint a = 0; a < r->steps->len && !shared; a++)
            for (guint b = 0; b < first->steps->len && !shared; b++)
                shared = g_array_index(r->steps, TraceStep, a).number ==
                         g_array_index(first->steps, TraceStep, b).number;
        if (!shared) {
            const GArray *x = first->steps, *y = r->steps;
            cfg_set_error(error, r->file, "traceEvents", "ProfilerStep#N",
                          "expected a step of the other ranks (#%d..#%d in %s), got #%d..#%d: "
                          "traces of different profiling windows",
                          g_array_index(x, TraceStep, 0).number,
                          g_array_index(x, TraceStep, x->len - 1).number, first->file,
                          g_array_index(y, TraceStep, 0).number,
                          g_array_index(y, TraceStep, y->len - 1).number);
            return false;
        }
    }
    return true;
}

/* Every time of rank R moved by OFFSET_US. */
static void shift_rank(TraceRank *r, double offset_us)
{
    for (guint i = 0; i < r->kernels->len; i++) {
        TraceKernel *k = &g_array_index(r->kernels, TraceKernel, i);
        k->start_us += offset_us, k->end_us += offset_us, k->launch_us += offset_us;
    }
    for (guint i = 0; i < r->steps->len; i++) {
        TraceStep *s = &g_array_index(r->steps, TraceStep, i);
        s->cpu_start_us += offset_us, s->gpu_start_us += offset_us, s->gpu_end_us += offset_us;
    }
    GArray *syncs[] = {r->syncs, r->stream_waits};
    for (int a = 0; a < 2; a++)
        for (guint i = 0; i < syncs[a]->len; i++) {
            TraceSync *s = &g_array_index(syncs[a], TraceSync, i);
            s->start_us += offset_us, s->end_us += offset_us;
        }
}

/* Ranks on one clock: ts are us after each file's baseTimeNanoseconds (0 when absent: us since
 * the epoch), so a rank is moved by its base's distance from the set's earliest base. Kineto's
 * base is the start of the quarter (output_json.h), the same on every rank unless the job
 * crossed one, or ranks ran different PyTorch versions; then, unaligned, every collective's
 * latest start and every wait were off by the difference. The difference is taken in integer
 * ns: exact. With one base in the set, nothing moves (outputs as before). */
static void align_clocks(TraceSet *set)
{
    int64_t base = INT64_MAX;
    for (guint i = 0; i < set->ranks->len; i++)
        base = MIN(base, ((TraceRank *)g_ptr_array_index(set->ranks, i))->base_time_ns);
    for (guint i = 0; i < set->ranks->len; i++) {
        TraceRank *r = g_ptr_array_index(set->ranks, i);
        if (r->base_time_ns != base)
            shift_rank(r, (double)(r->base_time_ns - base) * 1e-3);
    }
}

TraceSet *trace_set_read(const char *const *files, int n_files, GError **error)
{
    GPtrArray *paths = g_ptr_array_new_with_free_func(g_free);
    TraceSet *set = g_new0(TraceSet, 1);
    set->ranks = g_ptr_array_new_with_free_func((GDestroyNotify)trace_rank_free);
    set->instances = g_array_new(FALSE, FALSE, sizeof(TraceInstance));
    bool ok = n_files > 0;
    if (!ok)
        cfg_input_error(error, "expected one or more profiler traces (files or directories)");
    for (int i = 0; ok && i < n_files; i++)
        ok = expand(files[i], paths, error);
    for (guint i = 0; ok && i < paths->len; i++) {
        TraceRank *r = trace_rank_read(g_ptr_array_index(paths, i), error);
        ok = r && (paths->len == 1 || has_rank(r, paths->len, error)) &&
             check_same_job(set, r, error);
        if (r && !ok)
            trace_rank_free(r);
        else if (r)
            g_ptr_array_add(set->ranks, r);
    }
    g_ptr_array_free(paths, TRUE);
    if (ok)
        g_ptr_array_sort(set->ranks, rank_order);
    if (!ok || !check_set(set, error)) {
        trace_set_free(set);
        return NULL;
    }
    align_clocks(set);
    set->world_size = ((TraceRank *)g_ptr_array_index(set->ranks, 0))->world_size;
    trace_set_analyze(set);
    return set;
}

void trace_set_free(TraceSet *set)
{
    if (!set)
        return;
    g_ptr_array_free(set->ranks, TRUE);
    g_array_free(set->instances, TRUE);
    g_free(set);
}

/* --- matching collectives ------------------------------------------------------------------ */

#define RANK(set, i) ((TraceRank *)g_ptr_array_index((set)->ranks, (i)))
#define COLL(r, i) (&g_array_index((r)->colls, TraceColl, (i)))
#define KERNEL(r, i) (&g_array_index((r)->kernels, TraceKernel, (i)))

/* The same collective on two ranks: kind, and size where every member passes the same (an
 * all-to-all's or a send/recv's may differ by rank). */
static bool coll_same(const TraceColl *a, const TraceColl *b)
{
    return a->kind == b->kind &&
           (a->kind == TRACE_COLL_ALLTOALL || a->kind == TRACE_COLL_SENDRECV ||
            (a->in_nelems == b->in_nelems && a->dtype_bytes == b->dtype_bytes));
}

/* How far a rank's sequence numbers in a group are shifted against the group's first rank: a
 * trace whose window holds a collective more or less (one lost, one issued before the profiler
 * started) numbers every later one differently, and keyed as they were, its kernels were matched
 * to other collectives (an all-reduce with an all-to-all). The shift in [-ALIGN_MAX, ALIGN_MAX]
 * that lines up the most of them, 0 on a tie. O(collectives x 2 ALIGN_MAX) hash lookups. */
#define ALIGN_MAX 16

static char *coll_key(const char *pg, int seq)
{
    return g_strdup_printf("%s\x1f%d", pg, seq);
}

static GHashTable *align(const TraceSet *set)
{
    GHashTable *first = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL); /* pg */
    GHashTable *ref = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);   /* key */
    for (guint ri = 0; ri < set->ranks->len; ri++) {
        TraceRank *r = RANK(set, ri);
        for (guint ci = 0; ci < r->colls->len; ci++) {
            TraceColl *c = COLL(r, ci);
            if (!g_hash_table_contains(first, c->pg))
                g_hash_table_insert(first, g_strdup(c->pg), GINT_TO_POINTER(ri + 1));
            if (GPOINTER_TO_INT(g_hash_table_lookup(first, c->pg)) == (int)ri + 1)
                g_hash_table_insert(ref, coll_key(c->pg, c->seq), c);
        }
    }
    /* shift per rank and group: "rank\x1fpg" -> shift + ALIGN_MAX + 1 */
    GHashTable *shift = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint ri = 0; ri < set->ranks->len; ri++) {
        TraceRank *r = RANK(set, ri);
        GHashTable *done = g_hash_table_new(g_str_hash, g_str_equal);
        for (guint ci = 0; ci < r->colls->len; ci++) {
            const char *pg = COLL(r, ci)->pg;
            if (g_hash_table_contains(done, pg) ||
                GPOINTER_TO_INT(g_hash_table_lookup(first, pg)) == (int)ri + 1)
                continue;
            g_hash_table_add(done, (gpointer)pg);
            int best = 0, best_score = -1;
            for (int d = 0; d <= 2 * ALIGN_MAX; d++) {
                int delta = d % 2 ? (d + 1) / 2 : -d / 2; /* 0, 1, -1, 2, -2, ... */
                int score = 0;
                for (guint cj = ci; cj < r->colls->len; cj++) {
                    const TraceColl *c = COLL(r, cj);
                    if (strcmp(c->pg, pg))
                        continue;
                    char *key = coll_key(pg, c->seq + delta);
                    const TraceColl *o = g_hash_table_lookup(ref, key);
                    g_free(key);
                    score += o && coll_same(c, o);
                }
                if (score > best_score)
                    best = delta, best_score = score;
            }
            g_hash_table_insert(shift, g_strdup_printf("%u\x1f%s", ri, pg),
                                GINT_TO_POINTER(best + ALIGN_MAX + 1));
        }
        g_hash_table_destroy(done);
    }
    g_hash_table_destroy(first), g_hash_table_destroy(ref);
    return shift;
}

/* Instances are keyed by process group and sequence number within it: PyTorch issues a group's
 * collectives in the same order on every member (its NCCL watchdog's sequence numbers rely on
 * it), a rank's numbers shifted as align() finds; a kernel that is not the instance's collective
 * still (kind or size differ) is an instance of its own. Ranks' clocks are compared as they are:
 * on one node they share one; across nodes an offset (NTP: ~0.1-1 ms) shows as waiting.
 * O(collectives) with one hash lookup each, plus align(). */
static void match(TraceSet *set)
{
    GHashTable *index = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GHashTable *shift = align(set);
    for (guint ri = 0; ri < set->ranks->len; ri++) {
        TraceRank *r = RANK(set, ri);
        for (guint ci = 0; ci < r->colls->len; ci++) {
            TraceColl *c = COLL(r, ci);
            char *rank_pg = g_strdup_printf("%u\x1f%s", ri, c->pg);
            int delta = GPOINTER_TO_INT(g_hash_table_lookup(shift, rank_pg));
            g_free(rank_pg);
            char *key = coll_key(c->pg, c->seq + (delta ? delta - ALIGN_MAX - 1 : 0));
            gpointer found = g_hash_table_lookup(index, key);
            if (found) {
                const TraceInstance *in =
                    &g_array_index(set->instances, TraceInstance, GPOINTER_TO_INT(found) - 1);
                if (!coll_same(c, COLL(RANK(set, in->first_rank), in->coll_of_first))) {
                    /* not this instance's collective: one of its own, under a key no
                     * sequence number has */
                    char *own = g_strdup_printf("%s\x1f%u\x1f%u", key, ri, ci);
                    g_free(key), key = own, found = NULL;
                }
            }
            const TraceKernel *k = KERNEL(r, c->kernel);
            if (!found) {
                TraceInstance in = {.coll_of_first = (int)ci,
                                    .first_rank = (int)ri,
                                    .latest_start_us = k->start_us,
                                    .last_rank = r->rank};
                g_array_append_val(set->instances, in);
                g_hash_table_insert(index, key, GINT_TO_POINTER(set->instances->len));
                found = GINT_TO_POINTER(set->instances->len);
            } else {
                g_free(key);
            }
            TraceInstance *in =
                &g_array_index(set->instances, TraceInstance, GPOINTER_TO_INT(found) - 1);
            c->instance = GPOINTER_TO_INT(found) - 1;
            in->ranks++;
            if (k->start_us > in->latest_start_us)
                in->latest_start_us = k->start_us, in->last_rank = r->rank;
        }
    }
    g_hash_table_destroy(index), g_hash_table_destroy(shift);
    /* transfer: the mean over participants of end - latest start; waiting: latest start - start */
    for (guint ri = 0; ri < set->ranks->len; ri++) {
        TraceRank *r = RANK(set, ri);
        for (guint ci = 0; ci < r->colls->len; ci++) {
            TraceColl *c = COLL(r, ci);
            TraceInstance *in = &g_array_index(set->instances, TraceInstance, c->instance);
            const TraceKernel *k = KERNEL(r, c->kernel);
            if (in->ranks < 2) {
                c->wait_us = 0;
                in->transfer_us = k->end_us - k->start_us;
                continue;
            }
            c->wait_us = MIN(in->latest_start_us - k->start_us, k->end_us - k->start_us);
            in->waiting_caused_us += c->wait_us;
            in->transfer_us += MAX(0.0, k->end_us - in->latest_start_us) / in->ranks;
        }
    }
}

/* --- breakdown -------------------------------------------------------------------------------- */

enum { B_COMPUTE, B_TRANSFER, B_WAIT, B_MEMCPY, B_COUNT };

typedef struct {
    double t, launch_us;
    int8_t delta, bucket;
} Edge;

static int edge_order(const void *a, const void *b)
{
    const Edge *x = a, *y = b;
    return (x->t > y->t) - (x->t < y->t);
}

static void edge_add(GArray *edges, double from, double to, int bucket, double launch)
{
    if (!(to > from))
        return;
    Edge s = {from, launch, 1, (int8_t)bucket}, e = {to, NAN, -1, (int8_t)bucket};
    g_array_append_val(edges, s);
    g_array_append_val(edges, e);
}

/* A sweep over the step's activity edges: O(n log n) in its activities. */
static void breakdown(const TraceRank *r, int step, TraceBreakdown *b)
{
    memset(b, 0, sizeof *b);
    GArray *edges = g_array_new(FALSE, FALSE, sizeof(Edge));
    for (guint i = 0; i < r->kernels->len; i++) {
        const TraceKernel *k = KERNEL(r, i);
        if (k->step != step)
            continue;
        b->class_s[k->cls] += (k->end_us - k->start_us) * 1e-6;
        b->class_calls[k->cls]++;
        if (k->cls == TRACE_CLASS_MEMCPY) {
            edge_add(edges, k->start_us, k->end_us, B_MEMCPY, k->launch_us);
        } else if (k->cls == TRACE_CLASS_NCCL) {
            double wait = k->coll >= 0 ? COLL(r, k->coll)->wait_us : 0;
            edge_add(edges, k->start_us, k->start_us + wait, B_WAIT, k->launch_us);
            edge_add(edges, k->start_us + wait, k->end_us, B_TRANSFER,
                     wait > 0 ? NAN : k->launch_us);
        } else {
            edge_add(edges, k->start_us, k->end_us, B_COMPUTE, k->launch_us);
        }
    }
    g_array_sort(edges, edge_order);
    int active[B_COUNT] = {0};
    double *bucket_s[B_COUNT] = {&b->compute_s, &b->exposed_comm_s, &b->comm_wait_s, &b->memcpy_s};
    for (guint i = 0; i < edges->len; i++) {
        const Edge *e = &g_array_index(edges, Edge, i);
        if (i > 0) {
            double from = g_array_index(edges, Edge, i - 1).t, len_s = (e->t - from) * 1e-6;
            int top = -1;
            for (int j = 0; j < B_COUNT && top < 0; j++)
                if (active[j] > 0)
                    top = j;
            if (top >= 0) {
                *bucket_s[top] += len_s;
            } else if (len_s > 0) {
                /* idle until the activities starting at e->t: host-bound for as long as the
                 * earliest-launched of them had not been launched yet */
                double launch = INFINITY;
                for (guint j = i; j < edges->len && g_array_index(edges, Edge, j).t == e->t; j++)
                    if (g_array_index(edges, Edge, j).delta > 0 &&
                        !isnan(g_array_index(edges, Edge, j).launch_us))
                        launch = MIN(launch, g_array_index(edges, Edge, j).launch_us);
                double host_s = isfinite(launch) ? CLAMP((launch - from) * 1e-6, 0, len_s) : 0;
                b->idle_host_s += host_s;
                b->idle_wait_s += len_s - host_s;
            }
        }
        active[e->bucket] += e->delta;
    }
    if (edges->len)
        b->gpu_span_s =
            (g_array_index(edges, Edge, edges->len - 1).t - g_array_index(edges, Edge, 0).t) * 1e-6;
    g_array_free(edges, TRUE);
}

void trace_set_analyze(TraceSet *set)
{
    g_array_set_size(set->instances, 0);
    match(set);
    for (guint ri = 0; ri < set->ranks->len; ri++) {
        TraceRank *r = RANK(set, ri);
        g_array_set_size(r->breakdown, r->steps->len);
        for (guint s = 0; s < r->steps->len; s++)
            breakdown(r, (int)s, &g_array_index(r->breakdown, TraceBreakdown, s));
    }
}

/* --- tables ---------------------------------------------------------------------------------- */

static int row_order(const void *a, const void *b)
{
    const TraceCollRow *x = a, *y = b;
    if (x->kind != y->kind)
        return (int)x->kind - (int)y->kind;
    if (x->size_bytes != y->size_bytes)
        return x->size_bytes < y->size_bytes ? -1 : 1;
    return x->group_size - y->group_size;
}

GArray *trace_coll_table(const TraceSet *set)
{
    GArray *rows = g_array_new(FALSE, TRUE, sizeof(TraceCollRow));
    GArray *waits = g_array_new(FALSE, TRUE, sizeof(double)); /* summed waits per row */
    for (guint i = 0; i < set->instances->len; i++) {
        const TraceInstance *in = &g_array_index(set->instances, TraceInstance, i);
        const TraceRank *r = RANK(set, in->first_rank);
        const TraceColl *c = COLL(r, in->coll_of_first);
        uint64_t count = (uint64_t)MAX(c->in_nelems, c->out_nelems);
        uint64_t size = count * (uint64_t)c->dtype_bytes;
        TraceCollRow *row = NULL;
        for (guint j = 0; j < rows->len && !row; j++) {
            TraceCollRow *x = &g_array_index(rows, TraceCollRow, j);
            if (x->kind == c->kind && x->size_bytes == size && x->count == count &&
                x->group_size == c->group_size && !strcmp(x->dtype, c->dtype))
                row = x;
        }
        if (!row) {
            TraceCollRow n = {.kind = c->kind,
                              .size_bytes = size,
                              .count = count,
                              .dtype = c->dtype,
                              .group_size = c->group_size,
                              .source = c->source};
            g_array_append_val(rows, n);
            double zero = 0;
            g_array_append_val(waits, zero);
            row = &g_array_index(rows, TraceCollRow, rows->len - 1);
        }
        row->calls++;
        row->time_us += in->transfer_us;
        row->matched_ranks = MAX(row->matched_ranks, in->ranks);
        g_array_index(waits, double, row - (TraceCollRow *)rows->data) +=
            in->ranks ? in->waiting_caused_us / in->ranks : 0;
    }
    for (guint j = 0; j < rows->len; j++) {
        TraceCollRow *x = &g_array_index(rows, TraceCollRow, j);
        x->time_us /= x->calls;
        x->wait_us = g_array_index(waits, double, j) / x->calls;
        x->algbw_GBps = x->time_us > 0 ? (double)x->size_bytes / (x->time_us * 1e-6) / 1e9 : 0;
        x->busbw_GBps = x->algbw_GBps * trace_busbw_factor(x->kind, x->group_size);
    }
    g_array_free(waits, TRUE);
    g_array_sort(rows, row_order);
    return rows;
}

static int straggler_order(const void *a, const void *b)
{
    const TraceStraggler *x = a, *y = b;
    if (x->last != y->last)
        return y->last - x->last;
    if (x->waiting_caused_s != y->waiting_caused_s)
        return x->waiting_caused_s > y->waiting_caused_s ? -1 : 1;
    return x->rank - y->rank;
}

GArray *trace_stragglers(const TraceSet *set)
{
    GArray *out = g_array_new(FALSE, TRUE, sizeof(TraceStraggler));
    for (guint ri = 0; ri < set->ranks->len; ri++) {
        TraceStraggler s = {.rank = RANK(set, ri)->rank};
        g_array_append_val(out, s);
    }
    /* one pass over each rank's collectives, one over the instances: O(collectives + instances x
     * ranks) */
    bool any = false;
    for (guint ri = 0; ri < out->len; ri++) {
        const TraceRank *r = RANK(set, ri);
        for (guint ci = 0; ci < r->colls->len; ci++)
            if (g_array_index(set->instances, TraceInstance, COLL(r, ci)->instance).ranks >= 2)
                g_array_index(out, TraceStraggler, ri).instances++, any = true;
    }
    for (guint i = 0; i < set->instances->len; i++) {
        const TraceInstance *in = &g_array_index(set->instances, TraceInstance, i);
        for (guint ri = 0; in->ranks >= 2 && ri < out->len; ri++) {
            TraceStraggler *s = &g_array_index(out, TraceStraggler, ri);
            if (s->rank == in->last_rank)
                s->last++, s->waiting_caused_s += in->waiting_caused_us * 1e-6;
        }
    }
    if (!any)
        g_array_set_size(out, 0);
    g_array_sort(out, straggler_order);
    return out;
}
