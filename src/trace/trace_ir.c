/* trace: one traced step as fsdpsim's schedule (src/ir), run by the engine (src/core) at another
 * job size (see trace.h).
 *
 * Each traced rank becomes a rank class that stands for ranks/R ranks (R traced ranks, class j
 * holds ranks j, j + R, ...). Its program is the step's host timeline, one host stream: the time
 * between launch calls and syncs as host ops of their measured length, each GPU activity issued
 * at its launch, on a stream per traced stream. A GPU op waits for the last host op before it
 * (the IR's launch rule), for the previous op on its stream, and for what a cudaStreamWaitEvent
 * or the timeline says it waited for on another stream (trace_deps.h); a sync is a host op that
 * waits for the activity that ended inside it. Compute, memcpy and memset ops take their measured
 * time (IR compute ops with seconds); NCCL collectives with a known size over the world group
 * or a smaller group become IR collectives, costed by the engine's NCCL and flow models (their
 * group of the same size, or the world at its new size); others keep their measured time. */
#include "trace.h"
#include "trace_deps.h"

#include "../coll/coll.h"
#include "../core/sim.h"
#include "../hw/hw.h"
#include "../ir/ir.h"
#include "../net/net.h"
#include "../util/cfg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RANK(set, i) ((const TraceRank *)g_ptr_array_index((set)->ranks, (i)))

typedef struct {
    double t;   /* measured host time */
    int kernel; /* >= 0: a launch of this activity; -1: a sync */
    int sync;
} HostEvent;

static int host_event_order(const void *a, const void *b)
{
    const HostEvent *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->kernel - y->kernel;
}

static HwDtype ir_dtype(const char *dtype)
{
    HwDtype d;
    /* an fp8 collective's bytes come from its own element size; its dtype stays FP32 as before */
    return hw_dtype_parse(dtype, &d) ? d : HW_DTYPE_FP32;
}

/* The group family for a traced group of `size` (the world grows to `ranks`). */
static int group_for(IrSchedule *s, int size, int world, int ranks)
{
    int n = size == world ? ranks : size;
    char *name = size == world ? g_strdup("world") : g_strdup_printf("group of %d", size);
    for (int g = 0; g < s->n_groups; g++)
        if (!strcmp(s->groups[g].name, name)) {
            g_free(name);
            return g;
        }
    int g = ir_group_add(s, name, n, 1);
    g_free(name);
    return g;
}

/* One class's program: rank r's step `step`. recosted/kept count the collectives. */
static void class_program(IrSchedule *s, IrClass *c, const TraceRank *r, int step, int world,
                          int ranks, int *recosted, int *kept)
{
    const TraceStep *st = &g_array_index(r->steps, TraceStep, step);
    int host = ir_stream_add(c, "host", true);
    GArray *events = g_array_new(FALSE, FALSE, sizeof(HostEvent));
    for (guint k = 0; k < r->kernels->len; k++) {
        const TraceKernel *kk = &g_array_index(r->kernels, TraceKernel, k);
        if (kk->step != step)
            continue;
        HostEvent e = {isnan(kk->launch_us) ? kk->start_us : kk->launch_us, (int)k, -1};
        g_array_append_val(events, e);
    }
    double step_end = st->cpu_start_us + st->cpu_dur_us;
    for (guint y = 0; y < r->syncs->len; y++) {
        const TraceSync *sy = &g_array_index(r->syncs, TraceSync, y);
        if (sy->start_us >= st->cpu_start_us && sy->start_us < step_end) {
            HostEvent e = {sy->start_us, -1, (int)y};
            g_array_append_val(events, e);
        }
    }
    g_array_sort(events, host_event_order);
    GArray *by_end = trace_by_end(r);
    int *wait_dep = g_new(int, MAX(r->kernels->len, 1));
    trace_pair_stream_waits(r, wait_dep);
    int *op_of = g_new(int, MAX(r->kernels->len, 1)); /* kernel -> IR op, -1 */
    for (guint k = 0; k < r->kernels->len; k++)
        op_of[k] = -1;
    GHashTable *streams = g_hash_table_new(g_direct_hash, g_direct_equal);
    double t = st->cpu_start_us;
    for (guint i = 0; i < events->len; i++) {
        const HostEvent *e = &g_array_index(events, HostEvent, i);
        if (e->t > t) {
            IrOp h = {.kind = IR_OP_HOST, .stream = (uint16_t)host, .phase = IR_PHASE_OTHER};
            h.u.host.seconds = (e->t - t) * 1e-6;
            ir_op_add(c, &h, "host", NULL, 0);
            t = e->t;
        }
        if (e->kernel < 0) {
            const TraceSync *sy = &g_array_index(r->syncs, TraceSync, e->sync);
            int w = trace_ended_in(r, by_end, sy->start_us, sy->end_us, -1);
            double mw = w >= 0 ? g_array_index(r->kernels, TraceKernel, w).end_us : sy->start_us;
            IrOp h = {.kind = IR_OP_HOST, .stream = (uint16_t)host, .phase = IR_PHASE_OTHER};
            h.u.host.seconds = MAX(0.0, sy->end_us - MAX(sy->start_us, mw)) * 1e-6;
            int dep = w >= 0 ? op_of[w] : -1;
            ir_op_add(c, &h, "sync", &dep, 1);
            t = MAX(t, sy->end_us);
            continue;
        }
        const TraceKernel *k = &g_array_index(r->kernels, TraceKernel, e->kernel);
        gpointer sid = g_hash_table_lookup(streams, GINT_TO_POINTER(k->stream));
        if (!sid) {
            char *name = g_strdup_printf(
                "%s %d", k->cls == TRACE_CLASS_NCCL ? "nccl stream" : "stream", k->stream);
            sid = GINT_TO_POINTER(ir_stream_add(c, name, false) + 1);
            g_hash_table_insert(streams, GINT_TO_POINTER(k->stream), sid);
            g_free(name);
        }
        IrOp op = {.kind = IR_OP_COMPUTE,
                   .stream = (uint16_t)(GPOINTER_TO_INT(sid) - 1),
                   .phase = IR_PHASE_OTHER};
        IrCompute payload = {.seconds = MAX(1e-9, (k->end_us - k->start_us) * 1e-6), .kernels = 1};
        op.u.compute.payload = ir_compute_add(c, &payload);
        const TraceColl *cl = k->coll >= 0 ? &g_array_index(r->colls, TraceColl, k->coll) : NULL;
        IrCollKind kind;
        uint64_t bytes =
            cl ? (uint64_t)MAX(cl->in_nelems, cl->out_nelems) * (uint64_t)cl->dtype_bytes : 0;
        if (cl && bytes && cl->group_size > 1 && cl->group_size <= world &&
            trace_coll_ir_kind(cl->kind, &kind)) {
            memset(&op.u, 0, sizeof op.u);
            op.kind = IR_OP_COLL;
            op.dtype = (uint8_t)ir_dtype(cl->dtype);
            op.u.coll.coll = (uint8_t)kind;
            op.u.coll.group = (uint16_t)group_for(s, cl->group_size, world, ranks);
            op.u.coll.bytes = bytes;
            (*recosted)++;
        } else if (cl) {
            (*kept)++;
        }
        /* cross-stream: the cudaStreamWaitEvent pair, else what the timeline says */
        int deps[2] = {-1, -1};
        int wd = wait_dep[e->kernel];
        if (wd >= 0 && g_array_index(r->kernels, TraceKernel, wd).end_us <= k->start_us + 1)
            deps[0] = op_of[wd];
        int x = trace_ended_in(r, by_end, k->start_us - REPLAY_LAG_CAP_US, k->start_us, k->stream);
        if (x >= 0)
            deps[1] = op_of[x];
        op_of[e->kernel] = ir_op_add(c, &op, g_ptr_array_index(r->names, k->name), deps, 2);
    }
    if (step_end > t) {
        IrOp h = {.kind = IR_OP_HOST, .stream = (uint16_t)host, .phase = IR_PHASE_OTHER};
        h.u.host.seconds = (step_end - t) * 1e-6;
        ir_op_add(c, &h, "host", NULL, 0);
    }
    g_hash_table_destroy(streams);
    g_array_free(events, TRUE), g_array_free(by_end, TRUE);
    g_free(wait_dep), g_free(op_of);
}

/* The step of every rank with rank 0's median step's number; -1 where a rank lacks it. */
static int median_step_number(const TraceSet *set)
{
    const TraceRank *r = RANK(set, 0);
    int n = (int)r->steps->len, *order = g_new(int, n);
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = 1; i < n; i++) /* insertion sort by duration: a handful of steps */
        for (int j = i; j > 0 && g_array_index(r->steps, TraceStep, order[j]).cpu_dur_us <
                                     g_array_index(r->steps, TraceStep, order[j - 1]).cpu_dur_us;
             j--) {
            int tmp = order[j];
            order[j] = order[j - 1], order[j - 1] = tmp;
        }
    int number = g_array_index(r->steps, TraceStep, order[(n - 1) / 2]).number;
    g_free(order);
    return number;
}

IrSchedule *trace_to_schedule(const TraceSet *set, int ranks, const HwTopology *topo, int *recosted,
                              int *kept, GError **error)
{
    int traced = (int)set->ranks->len, world = set->world_size;
    int gpn = MIN(topo->gpus_per_node, ranks);
    if (ranks % traced || ranks % gpn || ranks < world) {
        cfg_input_error(error,
                        "option --ranks: expected job sizes of at least %d that %d traced "
                        "ranks and %d GPUs per node divide, got %d",
                        world, traced, gpn, ranks);
        return NULL;
    }
    int number = median_step_number(set);
    IrSchedule *s = ir_schedule_new(ranks / gpn, gpn);
    ir_meta_set(s, "generator", "fsdpsim trace: a profiler trace's step");
    *recosted = *kept = 0;
    for (int j = 0; j < traced; j++) {
        const TraceRank *r = RANK(set, j);
        int step = -1;
        for (guint i = 0; i < r->steps->len; i++)
            if (g_array_index(r->steps, TraceStep, i).number == number)
                step = (int)i;
        if (step < 0) {
            cfg_set_error(error, r->file, "", "traceEvents",
                          "expected ProfilerStep#%d as on rank %d, got none", number,
                          RANK(set, 0)->rank);
            ir_schedule_free(s);
            return NULL;
        }
        IrClass *c = ir_class_add(s, j, ranks / traced, traced);
        class_program(s, c, r, step, world, ranks, j ? &(int){0} : recosted, j ? &(int){0} : kept);
    }
    return s;
}

bool trace_engine_step_s(const TraceSet *set, int ranks, const HwTopology *topo, double *step_s,
                         int *recosted, int *kept, GError **error)
{
    IrSchedule *s = trace_to_schedule(set, ranks, topo, recosted, kept, error);
    if (!s)
        return false;
    CollModel coll;
    coll_model_analytic_init(&coll, topo);
    NetTopo *net = net_topo_new(topo, s->nodes, s->gpus_per_node);
    SimConfig cfg = {topo, &coll, net};
    SimResult *res = sim_run(s, &cfg, error);
    if (res)
        *step_s = sim_ns_to_s(res->makespan_ns);
    sim_result_free(res);
    net_topo_free(net);
    ir_schedule_free(s);
    return res != NULL;
}
