/* trace: Chrome trace JSON ("traceEvents"), which chrome://tracing and ui.perfetto.dev open.
 * Times in microseconds. One process per rank class, one thread per stream, complete ("X")
 * events for every op with a duration, and a counter ("C") track of the memory in use. */
#include "report.h"
#include "../util/cfg.h"

#include <cjson/cJSON.h>
#include <math.h>

cJSON *report_trace_meta_event(const char *what, int pid, int tid, const char *name)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", what);
    cJSON_AddStringToObject(e, "ph", "M");
    cJSON_AddNumberToObject(e, "pid", pid);
    cJSON_AddNumberToObject(e, "tid", tid);
    cJSON *args = cJSON_AddObjectToObject(e, "args");
    cJSON_AddStringToObject(args, "name", name);
    return e;
}

cJSON *report_trace_op_event(const IrSchedule *sched, const IrClass *c, int i, int pid,
                             int64_t start_ns, int64_t end_ns)
{
    const IrOp *op = ir_op(c, i);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", ir_class_string(c, op->name));
    cJSON_AddStringToObject(e, "cat",
                            op->kind == IR_OP_COLL ? ir_coll_kind_name((IrCollKind)op->u.coll.coll)
                                                   : ir_op_kind_name(op->kind));
    cJSON_AddStringToObject(e, "ph", "X");
    cJSON_AddNumberToObject(e, "pid", pid);
    cJSON_AddNumberToObject(e, "tid", op->stream + 1);
    cJSON_AddNumberToObject(e, "ts", (double)start_ns / 1e3);
    cJSON_AddNumberToObject(e, "dur", (double)(end_ns - start_ns) / 1e3);
    cJSON *args = cJSON_AddObjectToObject(e, "args");
    cJSON_AddNumberToObject(args, "op", i);
    cJSON_AddStringToObject(args, "phase", ir_phase_name((IrPhase)op->phase));
    if (op->kind == IR_OP_COMPUTE) {
        cJSON_AddNumberToObject(args, "flops", ir_op_compute(c, op)->flops);
        cJSON_AddNumberToObject(args, "bytes", ir_op_compute(c, op)->bytes);
    } else if (op->kind == IR_OP_COLL) {
        cJSON_AddNumberToObject(args, "bytes", (double)op->u.coll.bytes);
        cJSON_AddStringToObject(args, "group", sched->groups[op->u.coll.group].name);
    } else if (op->kind == IR_OP_SEND || op->kind == IR_OP_RECV) {
        cJSON_AddNumberToObject(args, "bytes", (double)op->u.p2p.bytes);
    } else if (op->kind == IR_OP_MEMCPY) {
        cJSON_AddNumberToObject(args, "bytes", (double)op->u.memcpy.bytes);
    }
    return e;
}

/* One event, printed and freed: a comma before all but the first. cJSON_PrintPreallocated into a
 * reused buffer saves a malloc per event; an event too long for it is printed the usual way. */
typedef struct {
    FILE *out;
    bool first;
    char buf[4096];
} Writer;

static void emit(Writer *w, cJSON *e)
{
    FILE *out = w->out;
    if (!w->first)
        fputc(',', out);
    w->first = false;
    if (cJSON_PrintPreallocated(e, w->buf, (int)sizeof w->buf, false)) {
        fputs(w->buf, out);
    } else {
        char *text = cfg_json_print(e, false);
        fputs(text, out);
        cJSON_free(text);
    }
    cJSON_Delete(e);
}

/* Streamed, one event at a time, byte for byte what printing the whole tree printed: that tree
 * held every event as cJSON nodes, about ten times the text (2.1 GB of memory for the 204 MB trace
 * of GPT-3 tp 4 pp 4 interleaved at 256 micro-batches, 12 s, most of it the kernel clearing pages;
 * streamed: 3 s and the memory of the simulation). */
bool report_trace_write(FILE *out, const IrSchedule *sched, const SimResult *sim,
                        const HwTopology *topo)
{
    Writer w = {.out = out, .first = true};
    fputs("{\"traceEvents\":[", out);
    for (int ci = 0; ci < sched->n_classes; ci++) {
        const IrClass *c = sched->classes[ci];
        const SimClassResult *cr = &sim->classes[ci];
        /* every op by name, and the memory timeline: the whole program's run, never a compact
         * one (src/compact; the CLI runs --trace whole) */
        g_assert(cr->gap_ops == 0);
        int pid = ci + 1;
        char *pname =
            g_strdup_printf("rank class %d (%d ranks from rank %d)", ci, c->n_ranks, c->first_rank);
        emit(&w, report_trace_meta_event("process_name", pid, 0, pname));
        g_free(pname);
        for (int s = 0; s < c->n_streams; s++)
            emit(&w, report_trace_meta_event("thread_name", pid, s + 1, c->streams[s].name));
        for (int i = 0; i < ir_class_n_ops(c); i++) {
            const IrOp *op = ir_op(c, i);
            int64_t start = sim_op_start_ns(cr, i), end = sim_op_end_ns(cr, i), dur = end - start;
            if (dur <= 0 || op->kind == IR_OP_ALLOC || op->kind == IR_OP_FREE)
                continue;
            cJSON *e = report_trace_op_event(sched, c, i, pid, start, end);
            if (op->kind == IR_OP_COLL)
                cJSON_AddNumberToObject(cJSON_GetObjectItem(e, "args"), "algbw_GBps",
                                        (double)op->u.coll.bytes / (double)dur);
            emit(&w, e);
        }
        const GArray *tl = cr->mem.timeline;
        for (guint k = 0; tl && k < tl->len; k++) {
            const MemSample *smp = &g_array_index(tl, MemSample, k);
            /* one sample per instant: the last change at a time wins */
            if (k + 1 < tl->len && g_array_index(tl, MemSample, k + 1).time_ns == smp->time_ns)
                continue;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", "memory in use (GiB)");
            cJSON_AddStringToObject(e, "ph", "C");
            cJSON_AddNumberToObject(e, "pid", pid);
            cJSON_AddNumberToObject(e, "ts", (double)smp->time_ns / 1e3);
            cJSON *args = cJSON_AddObjectToObject(e, "args");
            cJSON_AddNumberToObject(args, "tensors", (double)smp->bytes / 1073741824.0);
            emit(&w, e);
        }
    }
    /* The flow model's link loads: the highest utilisation of each kind of link, one counter.
     * Leaf uplinks exist only on tapered fabrics: shown where they carried anything. */
    int kinds = NET_LINK_LEAF_UP;
    for (int k = 0; k < sim->n_util_samples; k++)
        if (sim->util_samples[k].util[NET_LINK_LEAF_UP] > 0 ||
            sim->util_samples[k].util[NET_LINK_LEAF_DOWN] > 0)
            kinds = NET_LINK_KIND_COUNT;
    for (int k = 0; k < sim->n_util_samples; k++) {
        const NetUtilSample *smp = &sim->util_samples[k];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", "link load, busiest of each kind (%)");
        cJSON_AddStringToObject(e, "ph", "C");
        cJSON_AddNumberToObject(e, "pid", 0);
        cJSON_AddNumberToObject(e, "ts", (double)smp->time_ns / 1e3);
        cJSON *args = cJSON_AddObjectToObject(e, "args");
        for (int kind = 0; kind < kinds; kind++)
            cJSON_AddNumberToObject(args, net_link_kind_name((NetLinkKind)kind),
                                    round(1000.0 * smp->util[kind]) / 10.0);
        emit(&w, e);
    }
    fputs("],\"displayTimeUnit\":\"ms\",\"otherData\":", out);
    cJSON *other = cJSON_CreateObject();
    cJSON_AddStringToObject(other, "generator", "fsdpsim");
    cJSON_AddStringToObject(other, "topology", topo->name);
    w.first = true;
    emit(&w, other);
    fputc('}', out);
    return !ferror(out);
}

typedef struct {
    const IrSchedule *sched;
    const SimResult *sim;
    const HwTopology *topo;
} TraceFile;

static bool write_to(FILE *f, void *ctx)
{
    const TraceFile *t = ctx;
    return report_trace_write(f, t->sched, t->sim, t->topo);
}

bool report_trace_save(const char *path, const IrSchedule *sched, const SimResult *sim,
                       const HwTopology *topo, GError **error)
{
    TraceFile t = {sched, sim, topo};
    return cfg_write_streamed(path, write_to, &t, error);
}
