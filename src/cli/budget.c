/* budget: the memory a simulation will take, estimated before it allocates, against a limit
 * (--max-memory, by default the memory the machine has available). A run beyond it is bad input
 * (exit 2) that says what to reduce, rather than a process that grows until the kernel or GLib
 * kills it (pp 1024 with 4096 micro-batches grew to about 22 GB and ended in SIGTRAP).
 *
 * Memory grows with the schedule's ops, and the ops with the micro-batches: the generators emit
 * the same ops for every micro-batch. So the schedule is generated for the two smallest valid
 * micro-batch counts and the op count extrapolated linearly; the two generations cost 3 pp / m of
 * the real one, the first alone pp / m where its upper bound fits (cli_memory_check_run). Bytes
 * per op, measured on this code (GPT-3 XL, grad_accum 1000, 599k ops; GPT-3 175B pp 16 x 1024
 * micro-batches, 951k ops): 122-167 B while simulating (ops, engine state, memory
 * timeline), 1.4-1.5 KB while a schedule or trace was written as JSON (cJSON tree, text, copy).
 * Both are streamed to their files now and add nothing (--emit-schedule of GPT-3 tp 8 x pp 8 at
 * 256 micro-batches, 66 MB: 663 MB of memory before, 32 MB now; --trace of tp 8 x pp 16 at 512,
 * 154 MB: 56 MB of memory). A --report folder's figures still hold per-op data (the same run at
 * 128 micro-batches: 223 MB, 457 MB when its trace was held too). The estimate uses 200 B per op,
 * and 1.6 KB more with --report, plus 16 MiB for the program. */
#include "cli.h"
#include "budget.h"
#include "../core/sim.h"
#include "../ir/ir.h"
#include "../report/report.h"
#include "../strategy/strategy.h"
#include "../util/cfg.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#define SIM_BYTES_PER_OP 200.0
#define JSON_BYTES_PER_OP 1600.0
#define BASE_BYTES (16.0 * 1048576)

/* MemAvailable of /proc/meminfo, in bytes; 0 when it cannot be read (no limit then). */
static double available_bytes(void)
{
    char *text = NULL;
    double kib = 0;
    if (g_file_get_contents("/proc/meminfo", &text, NULL, NULL)) {
        const char *line = strstr(text, "MemAvailable:");
        if (!line || sscanf(line, "MemAvailable: %lf kB", &kib) != 1)
            kib = 0;
    }
    g_free(text);
    return kib * 1024;
}

bool cli_memory_limit(const char *text, double *limit_bytes, GError **error)
{
    if (!text) {
        *limit_bytes = available_bytes();
        return true;
    }
    uint64_t bytes = 0;
    if (!cfg_parse_size(text, &bytes) || bytes < (1u << 20))
        return cfg_input_error(error,
                               "option --max-memory: expected a size of 1M or more (suffixes K, "
                               "M, G, T), got \"%s\"",
                               text);
    *limit_bytes = (double)bytes;
    return true;
}

double cli_memory_estimate(uint64_t ops, bool json_outputs)
{
    return BASE_BYTES + (double)ops * (SIM_BYTES_PER_OP + (json_outputs ? JSON_BYTES_PER_OP : 0));
}

static uint64_t schedule_ops(const IrSchedule *s)
{
    uint64_t n = 0;
    for (int c = 0; c < s->n_classes; c++)
        n += (uint64_t)ir_class_n_ops(s->classes[c]);
    return n;
}

bool cli_memory_check_ops(uint64_t ops, bool json_outputs, double limit, const char *what,
                          GError **error)
{
    double need = cli_memory_estimate(ops, json_outputs);
    if (limit <= 0 || need <= limit)
        return true;
    char *need_text = report_bytes(need), *limit_text = report_bytes(limit);
    cfg_input_error(
        error,
        "option --max-memory: %s has about %.3g million ops and would take about %s of "
        "memory%s, more than the %s allowed (--max-memory, by default the memory "
        "available); expected fewer micro-batches (--grad-accum, --micro-batches), fewer "
        "pipeline stages or layers%s, or a larger --max-memory",
        what, (double)ops / 1e6, need_text, json_outputs ? " with --report" : "",
        limit_text, json_outputs ? ", no --report" : "");
    g_free(need_text);
    g_free(limit_text);
    return false;
}

bool cli_memory_check_run(const Model *model, const HwTopology *topo, const StratOptions *opt,
                          const StratLayout *layout, bool json_outputs, double limit,
                          int of_micro_batches, GError **error)
{
    /* the micro-batch counts the generators take: any for data parallelism, multiples of the
     * stages for the interleaved pipeline (the others take any too; multiples are valid for all) */
    int step = MAX(1, opt->pp);
    int m = MAX(1, opt->grad_accum);
    if (limit <= 0 || m <= 2 * step)
        return true; /* the schedule itself is the cheapest estimate of itself */
    /* One generation first: ops(m) = F + a m for the fixed ops F >= 0 (optimizer, gradient
     * reduction) and a per micro-batch, so ops(step) * m / step >= ops(m) bounds it from above;
     * where that fits, the second generation (2/m of the run, a tenth of a 1T pp 64 run at 512
     * micro-batches) is not needed. */
    uint64_t ops[2];
    for (int i = 0; i < 2; i++) {
        StratOptions small = *opt;
        small.grad_accum = (i + 1) * step;
        StratInfo info;
        IrSchedule *s = strat_generate(model, topo, &small, layout, &info, error);
        strat_info_clear(&info);
        if (!s)
            return false;
        ops[i] = schedule_ops(s);
        ir_schedule_free(s);
        double bound = (double)ops[0] * m / step;
        if (i == 0 && cli_memory_estimate((uint64_t)MIN(bound, 1e18), json_outputs) <= limit)
            return true;
    }
    double per_step = ops[1] > ops[0] ? (double)(ops[1] - ops[0]) : 0;
    double total = (double)ops[0] + per_step * (double)(m - step) / step;
    char *what = of_micro_batches > m
                     ? g_strdup_printf("the compact program (%d of the run's %d micro-batches)",
                                       m, of_micro_batches)
                     : g_strdup_printf("the run (%d micro-batches)", m);
    bool ok = cli_memory_check_ops((uint64_t)MIN(total, 1e18), json_outputs, limit, what, error);
    g_free(what);
    return ok;
}

bool cli_memory_check_file(const char *file, double limit, GError **error)
{
    GStatBuf st;
    if (limit <= 0 || g_stat(file, &st) != 0 || 9.0 * (double)st.st_size + BASE_BYTES <= limit)
        return true; /* an unreadable file is the reader's error to report */
    char *file_text = report_bytes((double)st.st_size);
    char *need_text = report_bytes(9.0 * (double)st.st_size + BASE_BYTES);
    char *limit_text = report_bytes(limit);
    cfg_input_error(error,
                    "option --max-memory: reading %s (%s) would take about %s of memory, more "
                    "than the %s allowed (--max-memory, by default the memory available); "
                    "expected a smaller schedule or a larger --max-memory",
                    file, file_text, need_text, limit_text);
    g_free(file_text);
    g_free(need_text);
    g_free(limit_text);
    return false;
}

bool cli_check_op_times(const IrSchedule *s, const HwTopology *topo, const char *what,
                        GError **error)
{
    /* the slowest link a transfer may cross: a lower bound on any collective's bandwidth */
    double slowest = MIN(topo->gpu_link_Bps, topo->pcie_Bps);
    if (topo->nics_per_node > 0)
        slowest = MIN(slowest, topo->nic_Bps);
    if (topo->net_group_global_Bps > 0)
        slowest = MIN(slowest, topo->net_group_global_Bps);
    if (topo->net_leaf_uplink_Bps > 0)
        slowest = MIN(slowest, topo->net_leaf_uplink_Bps);
    for (int ci = 0; ci < s->n_classes; ci++) {
        const IrClass *c = s->classes[ci];
        for (int i = 0; i < ir_class_n_ops(c); i++) {
            const IrOp *op = ir_op(c, i);
            double t = 0;
            switch (op->kind) {
            case IR_OP_HOST:
            case IR_OP_COMPUTE:
            case IR_OP_MEMCPY:
                t = sim_op_duration_s(topo, c, op); /* what the engine will charge */
                break;
            case IR_OP_COLL:
                /* a ring moves at most twice the array through each link */
                t = 2.0 * (double)op->u.coll.bytes / slowest;
                break;
            case IR_OP_SEND:
            case IR_OP_RECV:
                t = (double)op->u.p2p.bytes / slowest;
                break;
            default:
                break;
            }
            if (!(t <= OP_TIME_MAX_S)) {
                return cfg_input_error(error,
                                       "%s: classes[%d].ops[%d] (%s \"%s\") would take %.3g s on "
                                       "%s; expected ops under %g s (fewer FLOPs or bytes, or a "
                                       "faster machine)",
                                       what, ci, i, ir_op_kind_name(op->kind),
                                       ir_class_string(c, op->name), t, topo->name, OP_TIME_MAX_S);
            }
        }
    }
    return true;
}

uint64_t cli_schedule_ops(const IrSchedule *s)
{
    return schedule_ops(s);
}
