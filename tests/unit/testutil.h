/* Helpers shared by the unit tests: paths into the source tree and one-call simulation. */
#ifndef FSD_TESTUTIL_H
#define FSD_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "coll/coll.h"
#include "core/sim.h"
#include "hw/hw.h"
#include "ir/ir.h"
#include "model/model.h"
#include "report/report.h"
#include "strategy/strategy.h"
#include "util/cfg.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static inline char *src_path(const char *rel)
{
    return g_build_filename(FSDPSIM_SOURCE_ROOT, rel, NULL);
}

static inline Model *load_model(const char *rel, const ModelOverrides *ov)
{
    char *path = src_path(rel);
    GError *error = NULL;
    Model *m = model_load(path, ov, &error);
    if (!m)
        fail_msg("%s", error->message);
    g_free(path);
    return m;
}

static inline HwTopology *load_topo(const char *rel)
{
    char *path = src_path(rel);
    GError *error = NULL;
    HwTopology *t = hw_topology_load(path, &error);
    if (!t)
        fail_msg("%s", error->message);
    g_free(path);
    return t;
}

/* Two doubles the same to the bit (memcmp: -0 and 0 differ, NaN equals itself). */
static inline void same_bits(double a, double b, const char *what)
{
    if (memcmp(&a, &b, sizeof a) != 0)
        fail_msg("%s: %.17g != %.17g", what, a, b);
}

/* Two runs of one job the same to the bit, ops' times and the memory timeline aside: makespan,
 * events, transfers, each class's memory peak (when, what it held), communication sums and
 * counts, the busiest links and the utilisation samples (test_steady, test_compact). */
static inline void same_run_totals(const SimResult *a, const SimResult *b)
{
    assert_int_equal(a->makespan_ns, b->makespan_ns);
    assert_int_equal(a->events, b->events);
    assert_int_equal(a->transfers, b->transfers);
    assert_int_equal(a->link_classes, b->link_classes);
    assert_int_equal(a->n_classes, b->n_classes);
    for (int c = 0; c < a->n_classes; c++) {
        const SimClassResult *x = &a->classes[c], *y = &b->classes[c];
        assert_int_equal(x->mem.peak, y->mem.peak);
        assert_int_equal(x->mem.peak_time_ns, y->mem.peak_time_ns);
        assert_memory_equal(x->mem.at_peak, y->mem.at_peak, sizeof x->mem.at_peak);
        same_bits(x->coll_bytes_sent, y->coll_bytes_sent, "coll_bytes_sent");
        same_bits(x->inter_node_bytes_sent, y->inter_node_bytes_sent, "inter_node_bytes_sent");
        same_bits(x->overlap_cost_s, y->overlap_cost_s, "overlap_cost_s");
        for (int k = 0; k < IR_COLL_KIND_COUNT; k++) {
            same_bits(x->coll_time_by_kind[k], y->coll_time_by_kind[k], "coll_time_by_kind");
            assert_int_equal(x->coll_count_by_kind[k], y->coll_count_by_kind[k]);
        }
    }
    assert_int_equal(a->n_links, b->n_links);
    for (int i = 0; i < a->n_links; i++) {
        assert_string_equal(a->links[i].name, b->links[i].name);
        assert_int_equal(a->links[i].alike, b->links[i].alike);
        same_bits(a->links[i].stats.bytes, b->links[i].stats.bytes, "link bytes");
        assert_int_equal(a->links[i].stats.busy_ns, b->links[i].stats.busy_ns);
        same_bits(a->links[i].stats.peak_util, b->links[i].stats.peak_util, "link peak");
    }
    assert_int_equal(a->n_util_samples, b->n_util_samples);
    for (int i = 0; i < a->n_util_samples; i++) {
        assert_int_equal(a->util_samples[i].time_ns, b->util_samples[i].time_ns);
        assert_memory_equal(a->util_samples[i].util, b->util_samples[i].util,
                            sizeof a->util_samples[i].util);
    }
}

/* opt's layout on nodes x gpn and its schedule, *layout and *info filled; NULL where the layout
 * or the generator refuses (random layouts: chunks that do not divide the layers), the error
 * dropped. */
static inline IrSchedule *generate_or_null(const Model *model, const HwTopology *topo,
                                           const StratOptions *opt, int nodes, int gpn,
                                           StratLayout *layout, StratInfo *info)
{
    GError *error = NULL;
    IrSchedule *s = NULL;
    if (strat_layout_make(opt, nodes, gpn, layout, &error))
        s = strat_generate(model, topo, opt, layout, info, &error);
    g_clear_error(&error);
    return s;
}

/* A whole run: generate, simulate, report. */
typedef struct {
    Model *model;
    HwTopology *topo;
    StratOptions opt;
    StratLayout layout;
    StratInfo info;
    IrSchedule *sched;
    SimResult *sim;
    CollModel coll;
    Report rep;
} Run;

static inline void run_start(Run *r, const char *model, const char *topo, int nodes, int gpn)
{
    memset(r, 0, sizeof *r);
    r->model = load_model(model, NULL);
    r->topo = load_topo(topo);
    strat_options_default(&r->opt, r->model);
    r->layout.nodes = nodes;
    r->layout.gpus_per_node = gpn;
}

/* Generates and simulates r's job: with the flow-level network when `flow`, else each collective
 * alone (the setting of closed forms); `p2p_s`, when given, replaces the model's send/recv cost. */
static inline void run_sim_with(Run *r, bool flow,
                                double (*p2p_s)(const CollModel *, uint64_t, bool))
{
    GError *error = NULL;
    if (!strat_layout_make(&r->opt, r->layout.nodes, r->layout.gpus_per_node, &r->layout, &error))
        fail_msg("%s", error->message);
    r->sched = strat_generate(r->model, r->topo, &r->opt, &r->layout, &r->info, &error);
    if (!r->sched)
        fail_msg("%s", error->message);
    coll_model_analytic_init(&r->coll, r->topo);
    if (p2p_s)
        r->coll.p2p_s = p2p_s;
    NetTopo *net = flow ? net_topo_new(r->topo, r->layout.nodes, r->layout.gpus_per_node) : NULL;
    SimConfig cfg = {r->topo, &r->coll, net};
    r->sim = sim_run(r->sched, &cfg, &error);
    net_topo_free(net);
    if (!r->sim)
        fail_msg("%s", error->message);
    r->rep = (Report){.model = r->model, .topo = r->topo, .opt = &r->opt, .info = &r->info,
                      .sched = r->sched, .sim = r->sim};
    report_build(&r->rep);
}

static inline void run_sim(Run *r)
{
    run_sim_with(r, true, NULL);
}

static inline void run_end(Run *r)
{
    report_clear(&r->rep);
    sim_result_free(r->sim);
    ir_schedule_free(r->sched);
    strat_info_clear(&r->info);
    model_free(r->model);
    hw_topology_free(r->topo);
}

/* Relative closeness. */
static inline void assert_close(double got, double want, double rel)
{
    if (fabs(got - want) > rel * fabs(want))
        fail_msg("got %.9g, expected %.9g (within %.3g%%)", got, want, 100 * rel);
}

/* A hand-built machine of round figures for engine tests: every peak 1 TFLOP/s, HBM and PCIe
 * 1 GB/s, all of it reached, Ampere's NCCL rules (as a loaded A100 file), gpus GPUs a node. */
static inline void toy_topology(HwTopology *t, int gpus)
{
    memset(t, 0, sizeof *t);
    for (int d = 0; d < HW_DTYPE_COUNT; d++)
        t->gpu.peak_flops[d] = 1e12;
    t->gpu.matmul_efficiency = 1;
    t->gpu.compute_capability = 80;
    t->gpu.hbm_Bps = 1e9;
    t->gpu.memory_efficiency = 1;
    t->gpus_per_node = gpus;
    t->pcie_Bps = 1e9;
}

#endif
