/* sim_steady: a pipeline's steady phase advanced over by whole periods gives the full
 * simulation's results to the bit: every op's start and end, the memory timeline and peak, the
 * communication sums, the link statistics and utilisation samples, the event counts. On the
 * pipeline examples of tests/integration/pp.sh and on random layouts (seeded); and the skip
 * does happen where the state repeats (GPT-3 175B, tp 8 x pp 8). */
#include "testutil.h"

#include "net/flow_priv.h" /* to reorder the model's lists as history could have */
#include "net/net.h"

static void same_result(const IrSchedule *s, const SimResult *a, const SimResult *b)
{
    same_run_totals(a, b);
    for (int c = 0; c < s->n_classes; c++) {
        const SimClassResult *x = &a->classes[c], *y = &b->classes[c];
        size_t n = (size_t)ir_class_n_ops(s->classes[c]);
        for (size_t i = 0; i < n; i++) {
            if (sim_op_start_ns(x, i) != sim_op_start_ns(y, i) ||
                sim_op_end_ns(x, i) != sim_op_end_ns(y, i))
                fail_msg("class %d op %zu: [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                         "] (steady) != [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]",
                         c, i, sim_op_start_ns(x, i), sim_op_end_ns(x, i), sim_op_start_ns(y, i),
                         sim_op_end_ns(y, i));
        }
        assert_int_equal(x->mem.timeline->len, y->mem.timeline->len);
        assert_memory_equal(x->mem.timeline->data, y->mem.timeline->data,
                            sizeof(MemSample) * x->mem.timeline->len);
    }
}

typedef struct {
    const char *model;
    int nodes, tp, pp, micro_batches, virtual_stages;
    bool sequence_parallel, fsdp;
} Layout;

/* Ops of the steady run whose times are derived, not stored (SimClassResult): those of a
 * host that ran ahead through the region (SimHostFill) and of skipped periods (SimSkipFill). */
typedef struct {
    int64_t host, skipped;
} Derived;

static Derived derived_ops(const IrSchedule *s, const SimResult *r)
{
    Derived d = {0, 0};
    for (int c = 0; c < s->n_classes; c++) {
        const SimClassResult *cr = &r->classes[c];
        for (int i = 0; i < ir_class_n_ops(s->classes[c]); i++) {
            if (cr->start_enc[i] != 0 || sim_op_start_ns(cr, i) < 0)
                continue; /* stored, or not started */
            if (sim_host_fill_covers(cr->host_fill, i))
                d.host++;
            else
                d.skipped++;
        }
    }
    return d;
}

/* Both ways; returns the periods skipped, or -1 for a layout the generator refuses (random
 * layouts: chunks that do not divide the layers, say). Ops with derived times in *derived. */
static int64_t compare_derived(const Layout *l, Derived *derived)
{
    Model *model = load_model(l->model, NULL);
    HwTopology *topo = load_topo("topologies/juwels-booster.json");
    StratOptions opt;
    strat_options_default(&opt, model);
    opt.kind = l->fsdp ? STRAT_FSDP : STRAT_DDP;
    opt.tp = l->tp;
    opt.pp = l->pp;
    opt.grad_accum = l->micro_batches;
    opt.virtual_stages = l->virtual_stages;
    opt.pp_schedule = l->virtual_stages > 1 ? PP_SCHEDULE_INTERLEAVED : PP_SCHEDULE_1F1B;
    opt.sequence_parallel = l->sequence_parallel;
    GError *error = NULL;
    StratLayout layout;
    StratInfo info;
    IrSchedule *s =
        generate_or_null(model, topo, &opt, l->nodes, topo->gpus_per_node, &layout, &info);
    if (!s) {
        hw_topology_free(topo);
        model_free(model);
        return -1;
    }
    CollModel coll;
    coll_model_analytic_init(&coll, topo);
    NetTopo *net = net_topo_new(topo, l->nodes, topo->gpus_per_node);
    SimConfig cfg = {topo, &coll, net};
    g_setenv("FSDPSIM_NO_STEADY_STATE", "1", TRUE);
    SimResult *full = sim_run(s, &cfg, &error);
    g_unsetenv("FSDPSIM_NO_STEADY_STATE");
    assert_non_null(full);
    assert_int_equal(full->steady_periods, 0);
    SimResult *steady = sim_run(s, &cfg, &error);
    if (!steady)
        fail_msg("tp %d pp %d m %d v %d sp %d fsdp %d nodes %d: %s", l->tp, l->pp,
                 l->micro_batches, l->virtual_stages, l->sequence_parallel, l->fsdp, l->nodes,
                 error ? error->message : "no message");
    same_result(s, steady, full);
    int64_t skipped = (int64_t)steady->steady_periods;
    if (derived)
        *derived = derived_ops(s, steady);
    sim_result_free(full);
    sim_result_free(steady);
    net_topo_free(net);
    strat_info_clear(&info);
    ir_schedule_free(s);
    hw_topology_free(topo);
    model_free(model);
    return skipped;
}

static int64_t compare(const Layout *l)
{
    return compare_derived(l, NULL);
}

/* pp.sh's examples, and the layout whose steady phase does repeat (it must be skipped). */
static void test_pipeline_examples(void **state)
{
    const Layout ddp = {"models/gpt3-175b.json", 48, 8, 8, 32, 1, false, false};
    const Layout fsdp = {"models/gpt3-175b.json", 48, 8, 8, 32, 1, false, true};
    const Layout interleaved = {"models/gpt3-175b.json", 16, 4, 4, 64, 2, true, false};
    const Layout long_1f1b = {"models/gpt3-175b.json", 48, 8, 8, 256, 1, false, false};
    assert_true(compare(&ddp) >= 0);
    assert_true(compare(&fsdp) >= 0);
    assert_true(compare(&interleaved) >= 0);
    Derived derived;
    int64_t skipped = compare_derived(&long_1f1b, &derived);
    assert_true(skipped > 100); /* 256 micro-batches: most of the steady phase skipped */
    /* and most of its ops' times derived, both ways, equal to the full simulation's above (the
     * host's ahead: about a third of the ops; the skipped periods' GPU ops: most of the rest) */
    print_message("256 micro-batches: %" G_GINT64_FORMAT " host and %" G_GINT64_FORMAT
                  " skipped ops' times derived\n",
                  derived.host, derived.skipped);
    assert_true(derived.host > 10000);
    assert_true(derived.skipped > 10000);
    /* with every host op queued (no host running ahead), the skip fill derives the host ops'
     * times too: still the full simulation's, to the bit */
    g_setenv("FSDPSIM_NO_LAZY_HOST", "1", TRUE);
    Derived queued;
    int64_t skipped_queued = compare_derived(&long_1f1b, &queued);
    g_unsetenv("FSDPSIM_NO_LAZY_HOST");
    print_message("without the lazy host: %" G_GINT64_FORMAT " periods skipped, %" G_GINT64_FORMAT
                  " ops' times derived\n", skipped_queued, queued.skipped);
    assert_true(skipped_queued > 100);
    assert_int_equal(queued.host, 0);
    assert_true(queued.skipped > 10000);
    /* Sequence parallelism puts a TP group's collectives on two streams (the blocking gathers
     * and reduce-scatters on compute, the backward's second gather on nccl:tp), so the engine
     * numbers them in program order (coll_seq); such a pipeline is skipped too, within a node
     * and with TP across two nodes (its rendezvous keys moved by the numbering; pp 2: on 4
     * stages its timing settles to the bit only after about 40 periods, past the tries) */
    const Layout sp_interleaved = {"models/gpt3-175b.json", 16, 4, 4, 256, 2, true, false};
    const Layout sp_tp_nodes = {"models/gpt3-175b.json", 16, 8, 2, 256, 2, true, false};
    int64_t sp_skipped = compare(&sp_interleaved), sp_nodes_skipped = compare(&sp_tp_nodes);
    print_message("interleaved SP: %" G_GINT64_FORMAT " and %" G_GINT64_FORMAT " periods skipped\n",
                  sp_skipped, sp_nodes_skipped);
    assert_true(sp_skipped > 0);
    assert_true(sp_nodes_skipped > 0);
}

/* Random layouts: tp, pp, micro-batches, chunks, sequence parallelism, DDP or FSDP. */
static void test_random_layouts(void **state)
{
    GRand *rng = g_rand_new_with_seed(13);
    int compared = 0, skipped = 0;
    for (int k = 0; k < 24; k++) {
        Layout l = {"models/gpt3-175b.json", 0, 0, 0, 0, 1, false, false};
        int tps[] = {1, 2, 4, 8}, pps[] = {2, 4, 8};
        l.tp = tps[g_rand_int_range(rng, 0, 4)];
        l.pp = pps[g_rand_int_range(rng, 0, 3)];
        l.micro_batches = l.pp * g_rand_int_range(rng, 1, 9);
        l.virtual_stages = g_rand_int_range(rng, 0, 3) == 0 ? 2 : 1;
        l.sequence_parallel = l.tp > 1 && g_rand_boolean(rng);
        l.fsdp = g_rand_int_range(rng, 0, 4) == 0;
        int gpus = l.tp * l.pp * g_rand_int_range(rng, 1, 3);
        l.nodes = MAX(1, gpus / 4);
        int64_t periods = compare(&l);
        compared += periods >= 0;
        skipped += periods > 0;
    }
    g_rand_free(rng);
    assert_true(compared >= 12);
    /* some repeat and are skipped, some do not and run in full: both compared */
    print_message("random layouts: %d compared, %d skipped periods\n", compared, skipped);
}

/* ---- the flow model's lists written as sets ----
 * Two models with the same history, one with its busy list and every class's users list in
 * reverse (orders another history of starts and ends leaves): their snapshots are the same
 * bytes, and the same script from there gives both the same rates, finish times, statistics and
 * samples to the bit, so a snapshot that ignores those orders proves no less. */

typedef struct {
    int64_t at;
    int pattern;
} Start;

/* Starts [from, to) as the engine plays them (advance, start or complete, reschedule), with the
 * completions before starts[to] (all of them when to is the last); logs every finish and rate. */
static int64_t play(NetFlows *f, const Start *st, int from, int to, int n, int64_t now,
                    int64_t *next, GArray *log)
{
    for (int k = from;;) {
        int64_t start_at = k < to ? st[k].at : -1, stop = to < n ? st[to].at : INT64_MAX;
        bool start = k < to && (*next < 0 || start_at < *next);
        if (!start && (*next < 0 || *next >= stop))
            return now;
        now = start ? start_at : *next;
        net_flows_advance(f, now);
        if (start) {
            net_flows_add(f, now, st[k++].pattern, 1.0);
        } else {
            int ids[16];
            int done = net_flows_complete(f, now, ids, 16);
            for (int i = 0; i < done; i++) {
                int64_t id = ids[i];
                g_array_append_val(log, id);
            }
        }
        *next = net_flows_reschedule(f);
        g_array_append_val(log, *next);
        int na;
        const int *active = net_flows_active_ids(f, &na);
        for (int a = 0; a < na; a++) {
            double rate = net_flows_rate(f, active[a]);
            int64_t bits;
            memcpy(&bits, &rate, sizeof bits);
            g_array_append_val(log, bits);
        }
    }
}

static void reverse_lists(NetFlows *f)
{
    for (int i = 0, j = f->n_busy - 1; i < j; i++, j--) {
        uint32_t c = f->busy[i];
        f->busy[i] = f->busy[j];
        f->busy[j] = c;
        uint8_t kind = f->busy_kind[i];
        f->busy_kind[i] = f->busy_kind[j];
        f->busy_kind[j] = kind;
        float util = f->busy_util[i];
        f->busy_util[i] = f->busy_util[j];
        f->busy_util[j] = util;
    }
    for (int i = 0; i < f->n_busy; i++)
        f->cls[f->busy[i]].busy_pos = i;
    for (int c = 0; c < f->n_classes; c++)
        for (int i = 0, j = f->cls[c].n_users - 1; i < j; i++, j--) {
            int u = f->cls[c].users[i];
            f->cls[c].users[i] = f->cls[c].users[j];
            f->cls[c].users[j] = u;
        }
}

static void test_snapshot_sets(void **state)
{
    (void)state;
    HwTopology *topo = load_topo("topologies/juwels-booster.json");
    NetTopo *t = net_topo_new(topo, 2, 4);
    NetLoadBuilder *b = net_builder_new(t);
    const int all[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    NetFlows *f[2] = {net_flows_new(t), net_flows_new(t)};
    int pat[2][5];
    for (int m = 0; m < 2; m++)
        for (int p = 0; p < 5; p++) {
            if (p == 0)
                net_builder_ring(b, all, 8, 2e8);
            else if (p == 1)
                net_builder_ring(b, all, 4, 4e8);
            else
                net_builder_p2p(b, p - 2, 4 + p - 2, 1e8);
            int n;
            NetLoad *l = net_builder_take(b, &n);
            pat[m][p] = net_flows_pattern(f[m], l, n);
            g_free(l);
        }
    assert_memory_equal(pat[0], pat[1], sizeof pat[0]);
    const Start script[] = {{0, 0},       {0, 2},       {1000000, 1}, {2000000, 3},
                            {2500000, 4}, {4000000, 2}, {6000000, 0}, {7000000, 4}};
    const int n = G_N_ELEMENTS(script), split = 5;
    GArray *log[2];
    GByteArray *snap[2];
    for (int m = 0; m < 2; m++) {
        log[m] = g_array_new(FALSE, TRUE, sizeof(int64_t));
        int64_t next = -1, now = play(f[m], script, 0, split, n, 0, &next, log[m]);
        if (m == 1) {
            uint32_t first = f[m]->busy[0];
            reverse_lists(f[m]);
            assert_true(f[m]->n_busy >= 2 && f[m]->busy[0] != first); /* a real reordering */
        }
        snap[m] = g_byte_array_new();
        net_flows_snapshot(f[m], now, snap[m], NULL);
        play(f[m], script, split, n, n, now, &next, log[m]);
        assert_int_equal(next, -1);
    }
    assert_int_equal(snap[0]->len, snap[1]->len);
    assert_memory_equal(snap[0]->data, snap[1]->data, snap[0]->len);
    assert_int_equal(log[0]->len, log[1]->len);
    assert_memory_equal(log[0]->data, log[1]->data, log[0]->len * sizeof(int64_t));
    for (int c = 0; c < net_flows_link_classes(f[0]); c++) {
        uint32_t first[2];
        int links[2];
        const NetLinkStats *x = net_flows_class_stats(f[0], c, &first[0], &links[0]);
        const NetLinkStats *y = net_flows_class_stats(f[1], c, &first[1], &links[1]);
        assert_memory_equal(x, y, sizeof *x);
    }
    int ns[2];
    const NetUtilSample *sa = net_flows_samples(f[0], &ns[0]), *sb = net_flows_samples(f[1], &ns[1]);
    assert_int_equal(ns[0], ns[1]);
    assert_memory_equal(sa, sb, sizeof *sa * (size_t)ns[0]);
    for (int m = 0; m < 2; m++) {
        g_array_free(log[m], TRUE);
        g_byte_array_free(snap[m], TRUE);
        net_flows_free(f[m]);
    }
    net_builder_free(b);
    net_topo_free(t);
    hw_topology_free(topo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_examples),
        cmocka_unit_test(test_random_layouts),
        cmocka_unit_test(test_snapshot_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
