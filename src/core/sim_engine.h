/* sim_engine: the engine's state, shared by the engine's files (sim*.c; internal to src/core). */
#ifndef FSD_SIM_ENGINE_H
#define FSD_SIM_ENGINE_H

#include "ktab.h"
#include "pq.h"
#include "sim.h"

#include <math.h>

/* A compute payload's cost at the job's pace (sim.c, compute_cost): what every compute op of the
 * payload computed again at its start, two llround calls and a kernel-model call among them. */
typedef struct {
    int64_t alone_ns;    /* its time alone, at the slowest GPU's pace */
    double mem_fraction; /* of that, memory-bound kernels' (sim_overlap_memory_fraction) */
    int dtype;           /* the dtype it was computed for; -1: not yet */
} SimComputeCost;

typedef struct {
    const IrClass *cls;
    int n_ops;
    /* per op: predecessors not yet done; -1 once the op itself is done (its end event handled:
     * rescheduled ends leave stale events). One array for both: 4 bytes per op, not 5. */
    int32_t *pending;
    uint32_t *succ_start; /* CSR: successors of op i are succ[succ_start[i] .. succ_start[i+1]) */
    uint32_t *succ;
    /* A collective's sequence number on its group (the rendezvous key). When every collective of
     * a group is on one stream (as ProcessGroupNCCL issues them), they start in program order and
     * a counter per group gives it (group_seq); otherwise coll_seq holds it per op. 4 bytes per op
     * saved in the usual case (44 MB for 1T pp 64 x 4096 micro-batches). */
    uint32_t *coll_seq; /* NULL: group_seq counts */
    uint32_t *group_seq;
    /* string index of a buffer's name -> the buffer's number, in the order the program first
     * names buffers (sim_buffer): what the memory tracker and the steady state key buffers by.
     * The string table also holds op names, and a pipeline's phases add different numbers of
     * them per micro-batch (GPT 1T pp 64: 2 in a stage's first pp steady pairs, 3 after), so
     * string indices step unevenly where the buffers' own numbers step by one per micro-batch:
     * keyed by string index, stage 0's periodic region started pp micro-batches later (and the
     * steady state's proof with it). 4 bytes per string. */
    uint32_t *buffer_of;
    SimComputeCost *compute_cost; /* per IrClass.computes entry, made on first use */
    int n_done;
    /* overlap: communication in flight on streams other than compute, by where it goes */
    int compute_stream; /* the stream named "compute", -1 none */
    int comm_intra, comm_inter;
    /* of which NCCL's (they hold the topology's channels) and the SMs the others hold */
    int comm_nccl, comm_own_sms;
    /* the compute op running on it: its work left (in seconds alone), since when, at what
     * slowdown, and the end it is scheduled for (earlier end events are stale) */
    int run_op;
    /* steady state (sim_steady.c): the first op not done, and one past the last op touched
     * (started, or a predecessor done): ops between are the class's state, ops past it are as
     * prepared */
    int frontier, horizon;
    /* the same horizon without the host's part, and host ops done / in the program: a host that
     * ran ahead to its program's end leaves ops it touched as they will stay */
    int horizon_gpu, host_done, host_ops, host_below; /* host ops below host_below */
    double run_left_s, run_factor, run_mem_fraction;
    int64_t run_since_ns, run_end_ns, run_alone_ns;
    /* the lazy host (sim_host.c): host_stream its one host stream, -1 when the class's host
     * cannot be lazy; host_lazy: the host has run ahead (host_next: its next op, parked until
     * the rest of the host is handled at once); host_pos: every host op below it is done;
     * host_wait: the highest host op a GPU op waits for alone (the last of its predecessors);
     * from host_from on, host ops were handled ahead, the last ending at host_end, and their
     * allocations and frees wait in host_mems (op ids) from host_mem_at, to be replayed in time
     * order */
    int host_stream, host_next, host_pos, host_wait, host_from;
    /* one past the highest op whose start or end was stored (sim_set_start_ns, sim_set_end_ns):
     * a skip stores the times of the skipped ops below it, leaves those past it to SimSkipFill */
    int times_hi;
    bool host_lazy;
    int64_t host_end;
    GArray *host_mems;
    guint host_mem_at;
    int64_t host_mem_start; /* the start of host_mems[host_mem_at], INT64_MIN: not read yet */
    /* a compact run (sim_run_compact): the host has run ahead past the periodic region, its
     * clock moved by the omitted periods (sim_gap.c); a host op of the region's timeline was not
     * its first period's moved (the host fill's check), so the gap's host time is not known;
     * the host's clock as it left the region (before the gap's time), the highest region host
     * op whose end a GPU op's start was decided by (-1: none), and when a GPU stream's last
     * allocation or free ran (-1: none): what placing the gap corrects and checks */
    bool gap_crossed, host_aperiodic;
    int late_hi;
    int64_t gap_cross_ns, gpu_mem_ns;
} ClassState;

/* Records to reuse, a stack: a plain array, not GPtrArray, whose add and steal cost a call and
 * checks each (2 % of a long pipeline's instructions, 400 k of each per 1T run). */
typedef struct {
    void **v;
    int n, cap;
} SimSpares;

static inline void *sim_spare_take(SimSpares *s)
{
    return s->n > 0 ? s->v[--s->n] : NULL;
}

static inline void sim_spare_put(SimSpares *s, void *p)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = g_renew(void *, s->v, s->cap);
    }
    s->v[s->n++] = p;
}

static inline void sim_spares_free(SimSpares *s, GDestroyNotify free_fn)
{
    for (int i = 0; i < s->n; i++)
        free_fn(s->v[i]);
    g_free(s->v);
    *s = (SimSpares){0};
}

/* A collective instance waiting for its member classes (or a send/recv pair). */
typedef struct {
    int arrived;
    int needed;
    int64_t last_arrival_ns;
    GArray *members; /* of {cls, op} */
} Rendezvous;

typedef struct {
    int32_t cls, op;
} ClassOp;

/* Tags of the engine's integer keys (ktab.h). */
enum { KEY_COLL = 1, KEY_P2P = 2, KEY_COST = 3 };

/* A transfer in the flow model and the ops that end with it. */
typedef struct {
    GArray *members; /* of ClassOp */
    int64_t latency_ns;
    int coll_kind; /* IrCollKind, or -1 for send/recv */
} Pending;

typedef struct SimSteady SimSteady;

typedef struct {
    const IrSchedule *s;
    const SimConfig *cfg;
    ClassState *st;
    SimResult *res;
    Pq pq;
    Ktab rendezvous; /* (KEY_COLL, family, instance, sequence) or (KEY_P2P, from, to, tag) */
    Ktab costs;      /* (KEY_COST, family << 8 | kind, bytes low, bytes high) -> CollCost* */
    int **partners;  /* [class][group] -> number of classes in the class's group instance */
    GError **error;
    bool failed;
    /* flow-level network model (cfg->net) */
    NetFlows *flows;
    NetLoadBuilder *builder;
    Ktab patterns;      /* (KEY_COLL, family, kind, first class) or (KEY_P2P, class, offset, 0)
                         * -> pattern id + 1: link loads per byte, registered once */
    GPtrArray *pending; /* transfer id -> Pending* */
    /* Rendezvous and Pending records and members arrays of finished ones, reused: a pipeline
     * makes hundreds of thousands, a few in flight at a time */
    SimSpares spare_rendezvous, spare_pending, spare_members;
    int32_t net_version; /* the one valid network event carries it */
    double pace;         /* compute slowdown of the job's slowest GPU (hw_gpu_pace) */
    /* what NCCL beside compute takes from it (sim_overlap_init): SMs; HBM bandwidth when it moves
     * data inside the node, across nodes */
    double sm_count;  /* the GPU's SMs; 0: no kernel table, nothing is taken */
    int nccl_sms;     /* SMs an NCCL kernel holds: one CTA per channel */
    double hbm_share_intra, hbm_share_inter;
    /* steady state (sim_steady.c): NULL when off; the op whose end is the next checkpoint; the
     * additions to the results' sums since the last one (replayed when periods are skipped) */
    SimSteady *steady;
    int steady_cls, steady_op;
    GArray *acc_log; /* of SimAccAdd, NULL: not logging */
    /* the lazy host (sim_host.c): the time of the last event popped; retry: the lazy host could
     * not show its order is the queue's (a tie), so the run is abandoned and made again with
     * every op queued */
    int64_t last_pop_ns;
    bool retry;
    /* sim_run_compact: ops each class's program leaves out (NULL: a plain run); refused: the
     * run cannot add them back (it stops, e.failed); gap_skipped: it has */
    const int64_t *omitted;
    SimPrep *prep; /* sim_run_compact's (NULL: none): buffer numbers and regions found */
    const int *period; /* sim_run_periods' (NULL: none): each class's region period */
    bool compact_refused, gap_skipped;
} Engine;

typedef struct {
    int32_t cls;
    uint32_t offset; /* of the double in SimClassResult */
    double value;
} SimAccAdd;

/* *field += value, field a double of class ci's SimClassResult, logged for the steady state:
 * a skip adds the same values in the same order, so sums are the full simulation's to the bit. */
static inline void sim_acc(Engine *e, int ci, double *field, double value)
{
    *field += value;
    if (e->acc_log) {
        SimAccAdd a = {ci, (uint32_t)((char *)field - (char *)&e->res->classes[ci]), value};
        g_array_append_val(e->acc_log, a);
    }
}

/* llround(x) for the engine's times: the same integer (half away from zero) without libm's call
 * where |x| < 2^52 (x - trunc(x) is exact there), libm's beyond. Once or twice per op. */
static inline int64_t sim_round(double x)
{
    if (!(fabs(x) < 0x1p52))
        return (int64_t)llround(x);
    int64_t whole = (int64_t)x; /* truncated */
    double frac = x - (double)whole;
    return whole + (frac >= 0.5) - (frac <= -0.5);
}

/* An op's times as the engine reads them: it indexes the schedule's ops, a reader the full
 * program's (sim_op_full; the same but in a compact run). */
static inline int64_t sim_stored_start_ns(const Engine *e, int ci, int op)
{
    const SimClassResult *cr = &e->res->classes[ci];
    return sim_op_start_ns(cr, sim_op_full(cr, op));
}
static inline int64_t sim_stored_end_ns(const Engine *e, int ci, int op)
{
    const SimClassResult *cr = &e->res->classes[ci];
    return sim_op_end_ns(cr, sim_op_full(cr, op));
}
/* A compact run that cannot add the omitted periods back stops here (sim_run_compact). */
static inline void sim_compact_refuse(Engine *e)
{
    e->compact_refused = true;
    e->failed = true;
}

/* The only writers of an op's times (stored plus one: see SimClassResult). */
static inline void sim_set_start_ns(Engine *e, int ci, int op, int64_t start_ns)
{
    e->res->classes[ci].start_enc[op] = start_ns + 1;
    if (op >= e->st[ci].times_hi)
        e->st[ci].times_hi = op + 1;
}
static inline void sim_set_end_ns(Engine *e, int ci, int op, int64_t end_ns)
{
    e->res->classes[ci].end_enc[op] = end_ns + 1;
    if (op >= e->st[ci].times_hi)
        e->st[ci].times_hi = op + 1;
}

/* sim_region.c: ClassState.buffer_of for class c (g_free it). O(ops + strings). */
uint32_t *sim_buffer_numbers(const IrClass *c);
/* The number of the buffer an alloc or free names (ClassState.buffer_of). */
static inline uint32_t sim_buffer(const ClassState *st, const IrOp *op)
{
    return st->buffer_of[op->u.mem.buffer];
}

/* A class's periodic region: for lo <= i < hi - period, op i + period is op i moved along. */
typedef struct {
    int lo, hi, period;
    int64_t buffer_step; /* buffer id of op i + period minus that of op i (mem ops) */
    int64_t tag_step;    /* the same for send/recv tags */
    bool has_buffer, has_tag;
    uint32_t buffer_from; /* buffers with ids from here are the region's (they move along) */
    int safe_end; /* ops from lo up to here have no successor past hi (skipped ops must not) */
} SimRegion;
/* sim_region.c: class st->cls's periodic region around the middle of its program (safe_end not
 * set), false when it has none; `compact`: a compact program's (shorter regions taken);
 * `period` > 0: that period only (0: the shortest that repeats). */
bool sim_region_find(const ClassState *st, bool compact, int period, SimRegion *out);

/* sim.h's SimPrep: per class, its buffer numbers (taken by the run) and compact region. */
struct SimPrep {
    int n_classes;
    uint32_t **buffer_of;
    SimRegion *region;
    bool *found;
};

/* sim_steady.c: exact steady-state pipelines. init finds each class's periodic region and sets
 * the first checkpoint (or leaves e->steady NULL); check runs at each checkpoint (the end of
 * op steady_op of class steady_cls, just handled); free releases it. */
void sim_steady_init(Engine *e);
/* The classes' periodic regions (NULL when the steady state is off or over), and one past the
 * last op a class's progress touched (what a checkpoint compares). */
const SimRegion *sim_steady_regions(const Engine *e);
int sim_steady_horizon(const ClassState *st);
/* sim_gap.c: sim_run_compact, after init: whether each class's omitted ops can go back in its
 * region, else the run refused (sim_compact_refuse); at a skip of m blocks of step[c] ops, each
 * class's gap (SimClassResult.gap_at) placed inside it, false where one cannot be. */
void sim_gap_check(Engine *e);
bool sim_gap_place(Engine *e, int64_t m, const int *step);
void sim_steady_check(Engine *e, int64_t now);
/* The checkpoint at the end of steady_op could not be taken (sim_host_checkpoint): the same op
 * one period on is the next. */
void sim_steady_postpone(Engine *e, int64_t now);
void sim_steady_free(Engine *e);
/* sim_times.c */
void sim_skip_fill_free(SimSkipFill *fill);
void sim_host_fill_free(SimHostFill *fill);
/* Class ci's periodic region (ops lo..hi repeat every period), false when the steady state is
 * off or over. */
bool sim_steady_region(const Engine *e, int ci, int *lo, int *hi, int *period);

/* Ends op `op` of class ci at end_ns (an event); a later call for the same op moves its end. */
void sim_finish_at(Engine *e, int ci, int op, int64_t end_ns);
/* sim.c: op `op` of class ci starts at `now`. */
void sim_start_op(Engine *e, int ci, int op, int64_t now);

/* sim_host.c: the lazy host. A class whose host never waits for its GPU (host ops wait only for
 * host ops) has the rest of its host ops handled at once when it runs ahead, not through the
 * queue: see sim_host.c for why the results are the queue's to the bit. */
void sim_host_prepare(Engine *e, int ci, bool allowed);
void sim_host_free(Engine *e, int ci);
static inline bool sim_host_is(const ClassState *st, int op)
{
    return st->host_stream >= 0 && ir_op(st->cls, op)->stream == st->host_stream;
}
/* A real host event of class ci (before its successors): whether the host runs ahead. */
void sim_host_decide(Engine *e, int ci, int op);
/* After it: the parked host op and every later one handled now. */
void sim_host_run_ahead(Engine *e, int ci);
/* GPU op `op` of class ci has one predecessor left after a GPU op's end: noted if that is a host
 * op not done (the host cannot run ahead before it is). */
void sim_host_waits(Engine *e, int ci, int op);
/* GPU op `op` of class ci is ready at `now`: false when its host op, handled ahead, ends later
 * (its end is queued, a late event, and starts it) or at `now` (e->retry). */
bool sim_host_ready(Engine *e, int ci, int op, int64_t now);
/* Before an allocation or free of a GPU stream at `now`: the host's handled ahead replayed up
 * to `now`; false (e->retry) when one is at `now`. */
bool sim_host_memory(Engine *e, int ci, int64_t now);
/* A late event (cls <= -2) popped: the GPU ops waiting for its host op start. */
void sim_host_event(Engine *e, const PqEvent *ev);
/* A checkpoint at `now`: false when the queue's state cannot be shown (a host handled ahead not
 * done by now, a late event queued: the checkpoint waits, sim_steady_postpone) or a replay
 * failed (e->retry, e->failed). */
bool sim_host_checkpoint(Engine *e, int64_t now);
/* The end: the allocations and frees handled ahead replayed. */
void sim_host_finish(Engine *e);

/* sim_patterns.c: the flow model's pattern (id) of a collective of `kind` (SIM_PATTERN_*) on
 * group family g among the classes of `members` (ClassOp), and of class `from`'s ranks sending
 * to rank + offset; made on first use. */
enum { SIM_PATTERN_RING, SIM_PATTERN_TREE, SIM_PATTERN_ALLTOALL };
int sim_coll_pattern(Engine *e, int g, int kind, GArray *members);
int sim_p2p_pattern(Engine *e, int from, int offset);

/* sim_overlap.c */
void sim_overlap_init(Engine *e);
/* A collective or send/recv of class ci starts (+1) or ends (-1) at `now`: the running compute
 * op is re-rated when it overlaps. Other ops are ignored. */
void sim_overlap_count(Engine *e, int ci, const IrOp *op, int delta, int64_t now);
double sim_overlap_memory_fraction(const Engine *e, const IrClass *c, const IrOp *op,
                                   double alone_s);
double sim_overlap_slowdown(const Engine *e, int ci, double mem_fraction);

#endif
