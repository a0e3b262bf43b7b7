/* sim: the discrete-event engine. Replays a schedule on a hardware model: each rank class is
 * simulated once (its ranks behave identically), collectives start when every member class has
 * reached them, and the memory accountant sees allocations and frees in simulated time.
 *
 * Time is integer nanoseconds everywhere (int64: 292 years), so event order never depends on
 * floating-point rounding. Cost: O(E log E) for E ops plus their dependency edges; no per-GPU or
 * per-ring-step work. */
#ifndef FSD_SIM_H
#define FSD_SIM_H

#include "../coll/coll.h"
#include "../hw/hw.h"
#include "../ir/ir.h"
#include "../mem/mem.h"
#include "../net/net.h"

#include <glib.h>

/* The ops of skipped steady-state periods (sim_steady.c), whose times are not stored: op x of
 * the class, from `first` on, has the times of source op i = x - j * step (1 <= j <= periods,
 * the highest such i that is a source) plus j * period_ns. Sources are the ops from src_lo up
 * to src_lo + n_src that the skip copied (is_src), with their times; a window of ops moved by
 * the skip (from win_lo, win_set) holds stored times, -1 included. Kept so that a 1T-parameter
 * pipeline of 4096 micro-batches does not write 16 bytes per skipped op (11.6 M ops, 186 MB). */
typedef struct {
    int32_t src_lo, n_src, step, win_lo, n_win;
    int64_t first, periods, period_ns;
    uint8_t *is_src;    /* n_src */
    int64_t *src_start; /* n_src: the sources' times when they were copied */
    int64_t *src_end;
    uint8_t *win_set; /* n_win: the window's op was stored by the skip */
} SimSkipFill;

/* The host ops of a steady-state region that a host running ahead (sim_host.c) handled, whose
 * times are not stored: host op x from anchor + period up to last started at start[r] + t *
 * step_ns and ended at end[r] + t * step_ns, for x = anchor + t * period + r (is_host[r]): the
 * host's timeline repeats exactly there (integer durations of alike ops, no waits). Each op's
 * time was checked against the formula when the host handled it, and stored where it differs. */
typedef struct {
    int32_t anchor, period, last;
    int64_t step_ns;      /* INT64_MIN until the first op of the second period */
    uint8_t *is_host;     /* period */
    int64_t *start, *end; /* period: the anchor period's times */
} SimHostFill;

typedef struct {
    /* per op: when it started (for a collective: when this class arrived) and ended, plus one
     * (0: not started, -1, or an op of a skipped period: see `fill`); read them with
     * sim_op_start_ns and sim_op_end_ns. Stored plus one so that the arrays start as zero pages
     * (one calloc for all classes, SimResult.times) and those of skipped ops are never
     * written, so never resident. */
    int64_t *start_enc;
    int64_t *end_enc;
    SimSkipFill *fill; /* NULL: no period skipped */
    SimHostFill *host_fill; /* NULL: none */
    /* A compact run's (sim_run_compact): the schedule's program leaves out gap_ops ops (whole
     * periods of gap_period ops) at gap_at, which the run added back. Op indices a reader
     * passes (sim_op_start_ns, sim_op_ir) are the full program's: op gap_at + x of the gap is
     * op gap_at - gap_period + x % gap_period moved along, and op i past it the schedule's
     * i - gap_ops. gap_ops 0: none. */
    int32_t gap_at, gap_ops, gap_period;
    MemTracker mem;
    /* communication totals per GPU of this class */
    double coll_bytes_sent;
    double inter_node_bytes_sent;
    double coll_time_by_kind[IR_COLL_KIND_COUNT];
    int coll_count_by_kind[IR_COLL_KIND_COUNT];
    /* compute time added by communication running beside it (NCCL's SMs and HBM traffic) */
    double overlap_cost_s;
} SimClassResult;

/* A link of the flow-level model, for the report's list of the busiest. */
typedef struct {
    char *name;
    NetLinkKind kind;
    double capacity_Bps;
    NetLinkStats stats;
    int alike; /* links of its kind and capacity with the same statistics, itself included */
} SimLink;

typedef struct {
    int n_classes;
    SimClassResult *classes;
    int64_t *times; /* the classes' start_enc and end_enc, one allocation */
    int64_t makespan_ns;
    uint64_t events;
    uint64_t transfers; /* collectives and send/recv pairs through the flow model */
    int link_classes;   /* classes of links the flow model kept apart (see net.h) */
    /* periods of a pipeline's steady phase advanced over instead of simulated (sim_steady.c),
     * 0 when none; the results are the full simulation's either way */
    uint64_t steady_periods;
    /* With the flow-level model: the busiest links (by busy time, then bytes) and the highest
     * utilisation of each link kind over time. */
    SimLink *links;
    int n_links;
    NetUtilSample *util_samples;
    int n_util_samples;
} SimResult;

typedef struct {
    const HwTopology *topo;
    const CollModel *coll; /* chooses NCCL's algorithm and protocol, gives latencies */
    /* The links of the job's nodes: collectives and send/recv become transfers that share link
     * bandwidth max-min fairly. NULL: each collective takes its time alone (analytic model). */
    const NetTopo *net;
} SimConfig;

/* how many of the busiest links a result keeps */
#define SIM_TOP_LINKS 8

/* The ops of class ci a reader walks, the schedule's and a compact run's gap (O(1)). */
static inline int sim_op_count(const SimClassResult *cr, const IrClass *c)
{
    return ir_class_n_ops(c) + cr->gap_ops;
}
/* The schedule's op that op `op` of the full program is (itself, or alike: kind, stream, phase
 * and payload; not its name, dependencies, buffer or tag). */
static inline int sim_op_ir(const SimClassResult *cr, int op)
{
    if (!cr->gap_ops || op < cr->gap_at)
        return op;
    if (op >= cr->gap_at + cr->gap_ops)
        return op - cr->gap_ops;
    return cr->gap_at - cr->gap_period + (op - cr->gap_at) % cr->gap_period;
}
/* The full program's index of the schedule's op `op` (the engine's side of sim_op_ir). */
static inline int sim_op_full(const SimClassResult *cr, int op)
{
    return cr->gap_ops && op >= cr->gap_at ? op + cr->gap_ops : op;
}

/* Runs the schedule. A pipeline's steady phase is simulated until its period is proven, then
 * advanced over by whole periods (exact: see sim_steady.c); FSDPSIM_NO_STEADY_STATE=1 in the
 * environment simulates every op. A host that runs ahead of its GPU has its ops handled at once,
 * not through the event queue (exact: see sim_host.c); FSDPSIM_NO_LAZY_HOST=1 queues them all. Errors (FSD_ERROR_INPUT) for schedules that cannot run: a collective whose
 * peers never arrive (deadlock), a free of a buffer that is not allocated, a group that does not
 * fit the layout. */
SimResult *sim_run(const IrSchedule *sched, const SimConfig *cfg, GError **error);
/* sim_run, with each class's steady-state period given (0: found): the generator's, where the
 * shortest one that repeats is known and the search for it costly (an interleaved pipeline's
 * chunk runs repeat step by step for pp steps: 400 M instructions on the 1T SP layout). */
SimResult *sim_run_periods(const IrSchedule *sched, const SimConfig *cfg, const int *period,
                           GError **error);
void sim_result_free(SimResult *r);
/* What the engine finds in a compact program before it runs it (each class's buffer numbers and
 * periodic region): found once by src/compact to size the program (sim_prep_periods) and handed
 * to its run (sim_run_compact), not found again there (2.8 % of the 1T pipeline's
 * instructions). O(ops). */
typedef struct SimPrep SimPrep;
/* period (may be NULL): per class, the only period its region may have (the generator's, where
 * shorter ones repeat too but prove nothing: an interleaved pipeline's chunk runs). */
SimPrep *sim_prep_compact(const IrSchedule *sched, const int *period);
/* The fewest periods a class's periodic region holds, -1 where a class has none. */
int sim_prep_periods(const SimPrep *prep);
void sim_prep_free(SimPrep *prep);
/* Runs a compact 1F1B pipeline (src/compact): class c's program is its full one less
 * omitted_ops[c] ops of whole steady-state periods, the same number of periods in every class;
 * prep (may be NULL) is sim_prep_compact's of the same schedule, which the run takes (frees).
 * The engine proves the steady state's period as sim_run does, and where it skips periods it
 * skips the omitted ones too (a gap in each class's program: SimClassResult.gap_at), so that
 * every result is the full program's, to the bit (test_compact compares). Where it cannot (no
 * periodic region, a host that does not run ahead through the gap on a periodic timeline, no
 * skip, a skip short of the gap, any error), it stops and returns NULL: run the full program
 * (which words any error). */
SimResult *sim_run_compact(const IrSchedule *sched, const SimConfig *cfg,
                           const int64_t *omitted_ops, SimPrep *prep);
/* sim_prep_periods of sim_prep_compact(sched): the fewest periods a class's periodic region holds
 * (the region the steady state proves and skips in), -1 where a class has none. O(ops). */
int sim_region_periods(const IrSchedule *sched);

/* Seconds of one collective of `bytes` over every GPU of the layout, alone on the machine: a
 * one-op schedule through the same engine and network model as a training step (what
 * `fsdpsim collective` prints and the nccl-tests comparison checks). */
bool sim_collective_s(const HwTopology *topo, const CollModel *coll, const NetTopo *net, int nodes,
                      int gpus_per_node, IrCollKind kind, HwDtype dtype, uint64_t bytes,
                      double *out, GError **error);
/* Simulates a hand-made schedule (a benchmark's ops alone on the machine), frees it, and gives
 * its makespan in seconds. */
bool sim_schedule_makespan_s(IrSchedule *s, const HwTopology *topo, const CollModel *coll,
                             const NetTopo *net, double *out, GError **error);
/* Seconds of nccl-tests' sendrecv: every rank sends `bytes` to the next (rank + 1 mod n) and
 * receives as much from the previous, both at once (one class per rank: the ring is not
 * symmetric under the rank classes' first-rank view). Needs at least 2 ranks. */
bool sim_sendrecv_s(const HwTopology *topo, const CollModel *coll, const NetTopo *net, int nodes,
                    int gpus_per_node, uint64_t bytes, double *out, GError **error);

/* Whether op `op`'s times are the host fill's (h may be NULL). */
static inline bool sim_host_fill_covers(const SimHostFill *h, int op)
{
    return h && h->step_ns != INT64_MIN && op >= h->anchor + h->period && op <= h->last &&
           h->is_host[(op - h->anchor) % h->period];
}
/* An op's times when the class's stored one is 0: -1, a host op's handled ahead (O(1)), or a
 * skipped period's (O(periods the sources span), a few steps). */
int64_t sim_op_time_skipped(const SimClassResult *cr, int op, bool end);
/* When op `op` of a class started (for a collective: when the class arrived), -1 if it did
 * not; O(1) for ops simulated. `op` is the full program's index (the schedule's own but in a
 * compact run: sim_op_full), as in SimSkipFill and SimHostFill. */
static inline int64_t sim_op_start_ns(const SimClassResult *cr, int op)
{
    int at = op;
    if (cr->gap_ops && op >= cr->gap_at) {
        if (op < cr->gap_at + cr->gap_ops)
            return sim_op_time_skipped(cr, op, false);
        at = op - cr->gap_ops;
    }
    int64_t enc = cr->start_enc[at];
    return enc ? enc - 1 : sim_op_time_skipped(cr, op, false);
}
static inline int64_t sim_op_end_ns(const SimClassResult *cr, int op)
{
    int at = op;
    if (cr->gap_ops && op >= cr->gap_at) {
        if (op < cr->gap_at + cr->gap_ops)
            return sim_op_time_skipped(cr, op, true);
        at = op - cr->gap_ops;
    }
    int64_t enc = cr->end_enc[at];
    return enc ? enc - 1 : sim_op_time_skipped(cr, op, true);
}

/* Duration of one op on this hardware, in ns (compute, host; 0 for others). */
int64_t sim_op_duration_ns(const SimConfig *cfg, const IrClass *c, const IrOp *op);
/* The same in seconds (no rounding, no overflow: what input checks bound before simulating). */
double sim_op_duration_s(const HwTopology *topo, const IrClass *c, const IrOp *op);

static inline double sim_ns_to_s(int64_t ns)
{
    return (double)ns * 1e-9;
}

#endif
