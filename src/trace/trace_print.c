/* trace: the summary as text and JSON, and the set as compare reads it (see trace.h). */
#include "trace.h"

#include "../util/cfg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RANK(set, i) ((const TraceRank *)g_ptr_array_index((set)->ranks, (i)))

static int steps_total(const TraceSet *set)
{
    int n = 0;
    for (guint i = 0; i < set->ranks->len; i++)
        n += (int)RANK(set, i)->steps->len;
    return n;
}

void trace_print_summary(const TraceSet *set, FILE *out)
{
    const TraceRank *r0 = RANK(set, 0);
    fprintf(out, "profiler traces: %u of %d ranks (%s%s%s%s), %s\n", set->ranks->len,
            set->world_size, r0->backend[0] ? r0->backend : "no distributedInfo",
            r0->nccl_version[0] ? ", NCCL " : "", r0->nccl_version, "",
            r0->device[0] ? r0->device : "device not named");
    fprintf(out, "\nper rank and step (ms): step = ProfilerStep#N's span on the host; the rest "
                 "splits the step's GPU span\n(compute > exposed communication > waiting for "
                 "peers > memcpy > idle; idle host: the GPU waited for a launch)\n");
    fprintf(out, "  %4s %6s %9s %9s %9s %9s %9s %9s %9s %9s\n", "rank", "step", "step", "gpu span",
            "compute", "exp.comm", "comm wait", "memcpy", "idle host", "idle wait");
    double class_s[TRACE_CLASS_COUNT] = {0}, class_calls[TRACE_CLASS_COUNT] = {0};
    for (guint i = 0; i < set->ranks->len; i++) {
        const TraceRank *r = RANK(set, i);
        for (guint s = 0; s < r->steps->len; s++) {
            const TraceStep *st = &g_array_index(r->steps, TraceStep, s);
            const TraceBreakdown *b = &g_array_index(r->breakdown, TraceBreakdown, s);
            fprintf(out, "  %4d %6d %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n", r->rank,
                    st->number, st->cpu_dur_us * 1e-3, b->gpu_span_s * 1e3, b->compute_s * 1e3,
                    b->exposed_comm_s * 1e3, b->comm_wait_s * 1e3, b->memcpy_s * 1e3,
                    b->idle_host_s * 1e3, b->idle_wait_s * 1e3);
            for (int c = 0; c < TRACE_CLASS_COUNT; c++)
                class_s[c] += b->class_s[c], class_calls[c] += b->class_calls[c];
        }
    }
    /* said only where there are any: a whole trace prints as before */
    for (guint i = 0, first = 1; i < set->ranks->len; i++) {
        const TraceRank *r = RANK(set, i);
        if (!r->unlaunched)
            continue;
        if (first)
            fprintf(out, "GPU activities without a launch record (no host call with their "
                         "correlation id; before the trace: in no step):\n");
        first = 0;
        fprintf(out, "  rank %d: %d, %d of them launched before the trace\n", r->rank,
                r->unlaunched, r->unlaunched_before);
    }
    int n = MAX(steps_total(set), 1);
    fprintf(out, "\nkernel classes, per rank per step (sum of durations, mean over ranks and "
                 "steps):\n");
    for (int c = 0; c < TRACE_CLASS_COUNT; c++)
        fprintf(out, "  %-17s %9.3f ms %8.1f calls\n", trace_class_name((TraceClass)c),
                class_s[c] / n * 1e3, class_calls[c] / n);
    GArray *rows = trace_coll_table(set);
    fprintf(out, "\ncollectives (nccl-tests' columns; time = end - latest start over the ranks "
                 "matched, wait = mean per rank):\n");
    fprintf(out, "  %-14s %12s %12s %6s %5s %6s %5s %10s %8s %8s %10s  %s\n", "collective",
            "size(B)", "count", "type", "group", "calls", "ranks", "time(us)", "algbw", "busbw",
            "wait(us)", "size from");
    for (guint i = 0; i < rows->len; i++) {
        const TraceCollRow *x = &g_array_index(rows, TraceCollRow, i);
        /* no size, no bandwidth: "-", not a measured 0 GB/s */
        char algbw[32] = "-", busbw[32] = "-";
        if (x->size_bytes) {
            g_snprintf(algbw, sizeof algbw, "%.2f", x->algbw_GBps);
            g_snprintf(busbw, sizeof busbw, "%.2f", x->busbw_GBps);
        }
        fprintf(out,
                "  %-14s %12" G_GUINT64_FORMAT " %12" G_GUINT64_FORMAT
                " %6s %5d %6d %5d %10.2f %8s %8s %10.2f  %s\n",
                trace_coll_kind_name(x->kind), x->size_bytes, x->count, x->dtype, x->group_size,
                x->calls, x->matched_ranks, x->time_us, algbw, busbw, x->wait_us, x->source);
    }
    if (!rows->len)
        fprintf(out, "  (no NCCL kernels)\n");
    g_array_free(rows, TRUE);
    GArray *st = trace_stragglers(set);
    fprintf(out, "\nstragglers (who arrives last at a collective, and the waiting it costs the "
                 "others):\n");
    if (!st->len)
        fprintf(out, "  (needs collectives seen on two or more ranks)\n");
    else
        fprintf(out, "  %4s %6s %6s %12s\n", "rank", "last", "of", "caused (ms)");
    for (guint i = 0; i < st->len; i++) {
        const TraceStraggler *s = &g_array_index(st, TraceStraggler, i);
        fprintf(out, "  %4d %6d %6d %12.3f\n", s->rank, s->last, s->instances,
                s->waiting_caused_s * 1e3);
    }
    g_array_free(st, TRUE);
    double mean_abs, max_abs, median_s;
    trace_replay_error(set, &mean_abs, &max_abs, &median_s);
    fprintf(out,
            "\nreplay from the trace's dependencies (launch, stream order, cross-stream waits "
            "and host syncs) with measured\ndurations: median step %.3f ms; error against "
            "ProfilerStep mean %.1f %%, worst %.1f %%\n",
            median_s * 1e3, 100 * mean_abs, 100 * max_abs);
}

char *trace_summary_json(const TraceSet *set)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "world_size", set->world_size);
    cJSON *ranks = cJSON_AddArrayToObject(root, "ranks");
    for (guint i = 0; i < set->ranks->len; i++) {
        const TraceRank *r = RANK(set, i);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(ranks, o);
        cJSON_AddNumberToObject(o, "rank", r->rank);
        cJSON_AddStringToObject(o, "file", r->file);
        cJSON_AddStringToObject(o, "device", r->device);
        cJSON_AddNumberToObject(o, "unlaunched", r->unlaunched);
        cJSON_AddNumberToObject(o, "unlaunched_before_trace", r->unlaunched_before);
        cJSON *steps = cJSON_AddArrayToObject(o, "steps");
        for (guint s = 0; s < r->steps->len; s++) {
            const TraceStep *st = &g_array_index(r->steps, TraceStep, s);
            const TraceBreakdown *b = &g_array_index(r->breakdown, TraceBreakdown, s);
            cJSON *so = cJSON_CreateObject();
            cJSON_AddItemToArray(steps, so);
            cJSON_AddNumberToObject(so, "step", st->number);
            cJSON_AddNumberToObject(so, "duration_s", st->cpu_dur_us * 1e-6);
            cJSON_AddNumberToObject(so, "gpu_span_s", b->gpu_span_s);
            cJSON_AddNumberToObject(so, "compute_s", b->compute_s);
            cJSON_AddNumberToObject(so, "exposed_comm_s", b->exposed_comm_s);
            cJSON_AddNumberToObject(so, "comm_wait_s", b->comm_wait_s);
            cJSON_AddNumberToObject(so, "memcpy_s", b->memcpy_s);
            cJSON_AddNumberToObject(so, "idle_host_s", b->idle_host_s);
            cJSON_AddNumberToObject(so, "idle_wait_s", b->idle_wait_s);
            cJSON *k = cJSON_AddObjectToObject(so, "kernels_s");
            for (int c = 0; c < TRACE_CLASS_COUNT; c++)
                cJSON_AddNumberToObject(k, trace_class_name((TraceClass)c), b->class_s[c]);
        }
    }
    GArray *rows = trace_coll_table(set);
    cJSON *colls = cJSON_AddArrayToObject(root, "collectives");
    for (guint i = 0; i < rows->len; i++) {
        const TraceCollRow *x = &g_array_index(rows, TraceCollRow, i);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(colls, o);
        /* nccl-tests' column names */
        cJSON_AddStringToObject(o, "collective", trace_coll_kind_name(x->kind));
        cJSON_AddNumberToObject(o, "size", (double)x->size_bytes);
        cJSON_AddNumberToObject(o, "count", (double)x->count);
        cJSON_AddStringToObject(o, "type", x->dtype);
        cJSON_AddNumberToObject(o, "nranks", x->group_size);
        cJSON_AddNumberToObject(o, "time", x->time_us);
        cJSON_AddNumberToObject(o, "algbw", x->algbw_GBps);
        cJSON_AddNumberToObject(o, "busbw", x->busbw_GBps);
        cJSON_AddNumberToObject(o, "calls", x->calls);
        cJSON_AddNumberToObject(o, "matched_ranks", x->matched_ranks);
        cJSON_AddNumberToObject(o, "wait", x->wait_us);
        cJSON_AddStringToObject(o, "size_from", x->source);
    }
    g_array_free(rows, TRUE);
    GArray *st = trace_stragglers(set);
    cJSON *stragglers = cJSON_AddArrayToObject(root, "stragglers");
    for (guint i = 0; i < st->len; i++) {
        const TraceStraggler *s = &g_array_index(st, TraceStraggler, i);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(stragglers, o);
        cJSON_AddNumberToObject(o, "rank", s->rank);
        cJSON_AddNumberToObject(o, "last", s->last);
        cJSON_AddNumberToObject(o, "instances", s->instances);
        cJSON_AddNumberToObject(o, "waiting_caused_s", s->waiting_caused_s);
    }
    g_array_free(st, TRUE);
    double mean_abs, max_abs, median_s;
    trace_replay_error(set, &mean_abs, &max_abs, &median_s);
    cJSON *replay = cJSON_AddObjectToObject(root, "replay");
    cJSON_AddNumberToObject(replay, "median_step_s", median_s);
    cJSON_AddNumberToObject(replay, "mean_abs_error", mean_abs);
    cJSON_AddNumberToObject(replay, "max_abs_error", max_abs);
    char *text = cfg_json_print(root, false);
    cJSON_Delete(root);
    return text;
}

/* The steps compare sees: rank 0's, by number; each one's time the median over the ranks that
 * have it (a rank's ProfilerStep spans its host's step, which differ by its stalls). Fills
 * numbers (the step numbers, an iteration's index into them) and, when steps is set, the times. */
static void compare_steps(const TraceSet *set, GArray *numbers, cJSON *steps)
{
    const TraceRank *r0 = RANK(set, 0);
    for (guint s = 0; s < r0->steps->len; s++) {
        int number = g_array_index(r0->steps, TraceStep, s).number;
        g_array_append_val(numbers, number);
        if (!steps)
            continue;
        double *d = g_new(double, set->ranks->len);
        guint n = 0;
        for (guint i = 0; i < set->ranks->len; i++) {
            const TraceRank *r = RANK(set, i);
            for (guint j = 0; j < r->steps->len; j++)
                if (g_array_index(r->steps, TraceStep, j).number == number) {
                    d[n++] = g_array_index(r->steps, TraceStep, j).cpu_dur_us * 1e-6;
                    break;
                }
        }
        cJSON_AddItemToArray(steps, cJSON_CreateNumber(cfg_median(d, n)));
        g_free(d);
    }
}

/* A rank's stepped activities, in kernel order, each with its iteration (the index of its step's
 * number in numbers); the one walk of trace_set_to_compare and trace_set_activities. */
static void rank_activities(const TraceRank *r, const GArray *numbers, TraceActivityFn fn,
                            void *data)
{
    for (guint k = 0; k < r->kernels->len; k++) {
        const TraceKernel *kk = &g_array_index(r->kernels, TraceKernel, k);
        if (kk->step < 0)
            continue;
        int number = g_array_index(r->steps, TraceStep, kk->step).number, iter = -1;
        for (guint j = 0; j < numbers->len; j++)
            if (g_array_index(numbers, int, j) == number)
                iter = (int)j;
        if (iter < 0)
            continue;
        const char *name = g_ptr_array_index(r->names, kk->name);
        const char *cat = kk->cls == TRACE_CLASS_MEMCPY ? "gpu_memcpy" : "kernel";
        if (kk->coll >= 0) {
            /* a collective run by a kernel named for another (PyTorch's all_to_all is NCCL's
             * SendRecv kernel): the cat names the collective the metadata or annotation gave,
             * which compare takes for the op kind; send/recv keeps its name (compare's
             * "send/recv"). One name scan per NCCL kernel. */
            const TraceColl *c = &g_array_index(r->colls, TraceColl, kk->coll);
            if (c->kind != TRACE_COLL_SENDRECV && trace_coll_kind_of(name) != (int)c->kind)
                cat = trace_coll_kind_name(c->kind);
        }
        fn(data, cat, name, r->rank, kk->stream, kk->start_us, kk->end_us - kk->start_us, iter);
    }
}

void trace_set_activities(const TraceSet *set, TraceActivityFn fn, void *data)
{
    GArray *numbers = g_array_new(FALSE, FALSE, sizeof(int));
    compare_steps(set, numbers, NULL);
    for (guint i = 0; i < set->ranks->len; i++)
        rank_activities(RANK(set, i), numbers, fn, data);
    g_array_free(numbers, TRUE);
}

typedef struct {
    cJSON *events;
    int only_iter;
} CompareDoc;

static void add_activity(void *data, const char *cat, const char *name, int pid, int tid,
                         double ts_us, double dur_us, int iter)
{
    CompareDoc *doc = data;
    if (doc->only_iter != TRACE_COMPARE_ALL && iter != doc->only_iter)
        return;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "ph", "X");
    cJSON_AddStringToObject(e, "cat", cat);
    cJSON_AddStringToObject(e, "name", name);
    cJSON_AddNumberToObject(e, "pid", pid);
    cJSON_AddNumberToObject(e, "tid", tid);
    cJSON_AddNumberToObject(e, "ts", ts_us);
    cJSON_AddNumberToObject(e, "dur", dur_us);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(e, "args"), "iter", iter);
    cJSON_AddItemToArray(doc->events, e);
}

cJSON *trace_set_to_compare(const TraceSet *set, int only_iter)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *events = cJSON_AddArrayToObject(root, "traceEvents");
    cJSON *other = cJSON_AddObjectToObject(root, "otherData");
    cJSON_AddStringToObject(other, "generator", "pytorch-profiler");
    GArray *numbers = g_array_new(FALSE, FALSE, sizeof(int));
    compare_steps(set, numbers, cJSON_AddArrayToObject(other, "step_time_s"));
    CompareDoc doc = {events, only_iter};
    for (guint i = 0; i < set->ranks->len; i++) {
        const TraceRank *r = RANK(set, i);
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "name", "process_name");
        cJSON_AddStringToObject(m, "ph", "M");
        cJSON_AddNumberToObject(m, "pid", r->rank);
        cJSON_AddNumberToObject(m, "tid", 0);
        char *pname = g_strdup_printf("rank %d (%s)", r->rank, r->device);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(m, "args"), "name", pname);
        g_free(pname);
        cJSON_AddItemToArray(events, m);
        if (only_iter != -1)
            rank_activities(r, numbers, add_activity, &doc);
    }
    g_array_free(numbers, TRUE);
    return root;
}
