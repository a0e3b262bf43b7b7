/* Unit tests of the interconnect model: link loads of collectives, max-min fair sharing, and
 * contention in whole simulations. */
#include "testutil.h"
#include "net/net.h"

/* A small machine: nodes of `gpn` GPUs with `nics` NICs, 1 GB/s everywhere, so times are
 * bytes / 1e9 seconds. */
static HwTopology *toy_topo(int gpn, int nics)
{
    HwTopology *t = g_new0(HwTopology, 1);
    for (int d = 0; d < HW_DTYPE_COUNT; d++)
        t->gpu.peak_flops[d] = 1e12;
    t->gpu.matmul_efficiency = t->gpu.memory_efficiency = 1;
    t->gpu.compute_capability = 80; /* Ampere's NCCL rules, as a loaded A100 file */
    t->gpu.hbm_Bps = 1e12;
    t->gpus_per_node = gpn;
    t->gpu_link = "nvlink";
    t->gpu_link_Bps = 1e9;
    t->nics_per_node = nics;
    t->nic_Bps = 1e9;
    t->pcie_Bps = 1e9;
    t->nodes_max = 64;
    return t;
}

static double load_on(const NetLoad *l, int n, const NetTopo *t, const char *name)
{
    for (int i = 0; i < n; i++) {
        char *s = net_link_name(t, l[i].link);
        bool match = strcmp(s, name) == 0;
        g_free(s);
        if (match)
            return l[i].bytes;
    }
    return 0;
}

static void test_ring_loads(void **state)
{
    HwTopology *hw = toy_topo(4, 2);
    NetTopo *t = net_topo_new(hw, 2, 4);
    NetLoadBuilder *b = net_builder_new(t);
    /* one node: every GPU sends the whole volume over its own port */
    int node0[] = {0, 1, 2, 3};
    net_builder_ring(b, node0, 4, 600);
    int n;
    NetLoad *l = net_builder_take(b, &n);
    assert_int_equal(n, 8);
    assert_true(load_on(l, n, t, "node0.gpu2.tx") == 600);
    assert_true(load_on(l, n, t, "node0.gpu3.rx") == 600);
    assert_true(fabs(net_load_time_s(t, l, n) - 600e-9) < 1e-15);
    g_free(l);
    /* two nodes: the ring crosses each node boundary once per channel; the crossing is spread
     * over the NICs the members use (GPUs 0,1 -> NIC 0, GPUs 2,3 -> NIC 1) */
    int all[] = {0, 1, 2, 3, 4, 5, 6, 7};
    net_builder_ring(b, all, 8, 800);
    l = net_builder_take(b, &n);
    assert_true(load_on(l, n, t, "node0.nic0.tx") == 400);
    assert_true(load_on(l, n, t, "node0.nic1.tx") == 400);
    assert_true(load_on(l, n, t, "node1.nic1.rx") == 400);
    assert_true(load_on(l, n, t, "node1.gpu0.tx") == 600); /* (k-1)/k of the volume */
    g_free(l);
    /* one GPU per node of a 2-NIC node uses only its own NIC */
    int rail[] = {1, 5};
    net_builder_ring(b, rail, 2, 100);
    l = net_builder_take(b, &n);
    assert_int_equal(n, 4);
    assert_true(load_on(l, n, t, "node0.nic0.tx") == 100);
    assert_true(load_on(l, n, t, "node1.nic0.rx") == 100);
    g_free(l);
    net_builder_free(b);
    net_topo_free(t);
    g_free(hw);
}

static void test_groups_global_links(void **state)
{
    HwTopology *hw = toy_topo(1, 1);
    hw->net_nodes_per_group = 2;
    hw->net_group_global_Bps = 0.5e9;
    NetTopo *t = net_topo_new(hw, 4, 1);
    assert_int_equal(t->groups, 2);
    NetLoadBuilder *b = net_builder_new(t);
    int all[] = {0, 1, 2, 3}; /* ring 0>1>2>3>0: 1>2 and 3>0 cross groups */
    net_builder_ring(b, all, 4, 100);
    int n;
    NetLoad *l = net_builder_take(b, &n);
    assert_true(load_on(l, n, t, "group0.global.out") == 100);
    assert_true(load_on(l, n, t, "group1.global.in") == 100);
    assert_true(load_on(l, n, t, "group1.global.out") == 100);
    /* the global links at half the NIC rate are the bottleneck */
    assert_true(fabs(net_load_time_s(t, l, n) - 200e-9) < 1e-15);
    g_free(l);
    net_builder_free(b);
    net_topo_free(t);
    g_free(hw);
}

/* Three transfers, A on link 1, B on links 1 and 2, C on link 2 of twice the capacity. Max-min:
 * link 1 saturates first with A = B = 0.5 per second; C then takes the rest of link 2, 1.5. */
static void test_max_min_fair(void **state)
{
    HwTopology *hw = toy_topo(2, 1);
    NetTopo *t = net_topo_new(hw, 1, 2);
    t->capacity_Bps[2] = 2e9; /* node0.gpu0.rx */
    NetLoad a[] = {{0, 1e9}}, bl[] = {{0, 1e9}, {2, 1e9}}, c[] = {{2, 1e9}};
    NetFlows *f = net_flows_new(t);
    int ia = net_flows_add(f, 0, net_flows_pattern(f, a, 1), 1.0);
    int ib = net_flows_add(f, 0, net_flows_pattern(f, bl, 2), 1.0);
    int ic = net_flows_add(f, 0, net_flows_pattern(f, c, 1), 1.0);
    int64_t next = net_flows_reschedule(f);
    assert_int_equal(next, 666666667); /* C: 1 / 1.5 s, rounded up to the ns */
    net_flows_advance(f, next);
    int ids[4];
    assert_int_equal(net_flows_complete(f, next, ids, 4), 1);
    assert_int_equal(ids[0], ic);
    next = net_flows_reschedule(f);
    /* A and B still share link 1: both end at 2 s (to the ns: times round up) */
    assert_true(llabs(next - 2000000000) <= 1);
    net_flows_advance(f, next);
    assert_int_equal(net_flows_complete(f, next, ids, 4), 2);
    assert_int_equal(ids[0], ia);
    assert_int_equal(ids[1], ib);
    const NetLinkStats *st = net_flows_stats(f, 0);
    assert_true(fabs(st->bytes - 2e9) < 1);
    assert_true(st->peak_util > 0.999);
    assert_true(llabs(st->busy_ns - 2000000000) <= 1);
    net_flows_free(f);
    net_topo_free(t);
    g_free(hw);
}

/* A transfer's progress depends on its own rates only: events elsewhere in the job (here 500
 * short transfers on another link, starting at odd times) leave its finish and the bytes it
 * puts on its link unchanged to the bit. Brought up to date at every event, its remaining load
 * was rounded at each, its finish moved by a nanosecond now and then, and a pipeline's stages
 * drifted apart by nanoseconds for ever (flow.c integrate). */
static int64_t lone_transfer(bool others, double *bytes)
{
    HwTopology *hw = toy_topo(2, 1);
    NetTopo *t = net_topo_new(hw, 1, 2);
    NetLoad a[] = {{0, 731234567.891}, {1, 1e8 / 7}}, b[] = {{2, 1234.5}};
    NetFlows *f = net_flows_new(t);
    int pa = net_flows_pattern(f, a, 2), pb = net_flows_pattern(f, b, 1);
    int ia = net_flows_add(f, 0, pa, 1.0 / 3);
    int64_t next = net_flows_reschedule(f), finish = -1, start = 977;
    int started = 0, ids[4];
    while (next >= 0) {
        bool add = others && started < 500 && start <= next;
        int64_t now = add ? start : next;
        net_flows_advance(f, now);
        if (add) {
            net_flows_add(f, now, pb, 1.0 + started % 7);
            started++;
            start += 104729 + 7 * started;
        }
        int n = net_flows_complete(f, now, ids, 4);
        for (int i = 0; i < n; i++)
            if (ids[i] == ia)
                finish = now;
        next = net_flows_reschedule(f);
    }
    assert_true(!others || started == 500);
    *bytes = net_flows_stats(f, 0)->bytes;
    net_flows_free(f);
    net_topo_free(t);
    g_free(hw);
    return finish;
}

/* (the bytes differed in the last bit before: 243744855.96366671 against ...668 alone) */
/* net_repeat_adds gives the literal loop's bits: `periods` times, each slot += its values in
 * order. Random sums and values over many binades; values at exactly half an ulp of the sums'
 * binades (ties to even, which depend on the sum); values absorbed (below half an ulp); zeros,
 * negative values and sums starting at zero or below; slots sharing additions in interleaved
 * order; and many periods, so that sums cross binades while jumping. */
static void test_repeat_adds_exact(void **state)
{
    (void)state;
    GRand *rng = g_rand_new_with_seed(7);
    for (int trial = 0; trial < 400; trial++) {
        int n_slots = g_rand_int_range(rng, 1, 6), n = g_rand_int_range(rng, 1, 24);
        int64_t periods =
            trial % 4 == 0 ? g_rand_int_range(rng, 1, 5) : g_rand_int_range(rng, 100, 20000);
        double a[6], b[6];
        for (int k = 0; k < n_slots; k++) {
            int kind = g_rand_int_range(rng, 0, 4);
            a[k] = kind == 0   ? 0
                   : kind == 1 ? -g_rand_double(rng)
                               : ldexp(g_rand_double(rng) + 0.5, g_rand_int_range(rng, -30, 40));
            b[k] = a[k];
        }
        double *slot_a[24], *slot_b[24], value[24];
        for (int i = 0; i < n; i++) {
            int k = g_rand_int_range(rng, 0, n_slots);
            slot_a[i] = &a[k];
            slot_b[i] = &b[k];
            int kind = g_rand_int_range(rng, 0, 6);
            double mag = fabs(a[k]) > 0 ? fabs(a[k]) : 1.0;
            int e;
            frexp(mag, &e);
            double ulp = ldexp(1.0, e - 53);
            value[i] = kind == 0 ? 0
                       : kind == 1
                           ? ulp / 2 * (double)g_rand_int_range(rng, 1, 8) /* ties, absorbed */
                       : kind == 2 ? ulp * g_rand_double(rng)
                       : kind == 3 ? -g_rand_double(rng) * (trial % 7 == 0)
                                   : ldexp(g_rand_double(rng), g_rand_int_range(rng, -40, 20));
        }
        for (int64_t j = 0; j < periods; j++)
            for (int i = 0; i < n; i++)
                *slot_a[i] += value[i];
        net_repeat_adds(slot_b, value, n, periods);
        for (int k = 0; k < n_slots; k++)
            if (memcmp(&a[k], &b[k], sizeof a[k]) != 0)
                fail_msg("trial %d slot %d: %a (literal) != %a", trial, k, a[k], b[k]);
    }
    g_rand_free(rng);
}

static void test_progress_ignores_unrelated_events(void **state)
{
    double alone_bytes, busy_bytes;
    int64_t alone = lone_transfer(false, &alone_bytes), busy = lone_transfer(true, &busy_bytes);
    assert_int_equal(alone, 243744856); /* a third of 731 MB at 1 GB/s, to the ns above */
    assert_int_equal(busy, alone);
    assert_memory_equal(&busy_bytes, &alone_bytes, sizeof alone_bytes);
}

/* A capped transfer is a demand of its own (net_flows_cap): alone it runs at its cap however idle
 * its link, and beside an uncapped one on the same link it takes its cap and leaves the rest, so
 * the other finishes sooner than a fair half would let it. */
static void test_transfer_cap(void **state)
{
    HwTopology *hw = toy_topo(2, 1);
    NetTopo *t = net_topo_new(hw, 1, 2);
    NetLoad a[] = {{0, 1e9}};
    NetFlows *f = net_flows_new(t);
    int pat = net_flows_pattern(f, a, 1);
    int ia = net_flows_add(f, 0, pat, 1.0);
    net_flows_cap(f, ia, 0.25); /* a quarter of its 1 GB per second: 0.25 GB/s of 1 */
    int64_t next = net_flows_reschedule(f);
    assert_true(llabs(next - 4000000000) <= 1);
    assert_true(fabs(net_flows_rate(f, ia) - 0.25) < 1e-12);
    int ib = net_flows_add(f, 0, pat, 1.0);
    next = net_flows_reschedule(f);
    /* B gets the 0.75 GB/s A leaves: done at 1 / 0.75 s, not at the fair 2 s */
    assert_true(fabs(net_flows_rate(f, ib) - 0.75) < 1e-12);
    assert_true(fabs(net_flows_rate(f, ia) - 0.25) < 1e-12);
    assert_true(llabs(next - 1333333334) <= 1);
    net_flows_advance(f, next);
    int ids[2];
    assert_int_equal(net_flows_complete(f, next, ids, 2), 1);
    assert_int_equal(ids[0], ib);
    net_flows_free(f);
    net_topo_free(t);
    g_free(hw);
}

/* net_flows_complete answers a repeated call at one time without a scan (none_due): a transfer
 * added at that time, ending at once (no loads), must still be found after its reschedule. */
static void test_complete_after_empty_scan(void **state)
{
    HwTopology *hw = toy_topo(2, 1);
    NetTopo *t = net_topo_new(hw, 1, 2);
    NetLoad a[] = {{0, 1e9}};
    NetFlows *f = net_flows_new(t);
    int ia = net_flows_add(f, 0, net_flows_pattern(f, a, 1), 1.0);
    assert_int_equal(net_flows_reschedule(f), 1000000000);
    int ids[4];
    net_flows_advance(f, 500000000);
    assert_int_equal(net_flows_complete(f, 500000000, ids, 4), 0);
    assert_int_equal(net_flows_complete(f, 500000000, ids, 4), 0);
    int ib = net_flows_add(f, 500000000, net_flows_pattern(f, NULL, 0), 1.0);
    assert_int_equal(net_flows_reschedule(f), 500000000);
    assert_int_equal(net_flows_complete(f, 500000000, ids, 4), 1);
    assert_int_equal(ids[0], ib);
    assert_int_equal(net_flows_complete(f, 500000000, ids, 4), 0);
    /* at most `max` per call: the rest in the next call at the same time */
    int ic = net_flows_add(f, 500000000, net_flows_pattern(f, NULL, 0), 1.0);
    int id = net_flows_add(f, 500000000, net_flows_pattern(f, NULL, 0), 1.0);
    assert_int_equal(net_flows_reschedule(f), 500000000);
    assert_int_equal(net_flows_complete(f, 500000000, ids, 1), 1);
    assert_int_equal(ids[0], ic);
    assert_int_equal(net_flows_complete(f, 500000000, ids, 1), 1);
    assert_int_equal(ids[0], id);
    assert_int_equal(net_flows_complete(f, 500000000, ids, 1), 0);
    assert_int_equal(net_flows_reschedule(f), 1000000000);
    net_flows_advance(f, 1000000000);
    assert_int_equal(net_flows_complete(f, 1000000000, ids, 4), 1);
    assert_int_equal(ids[0], ia);
    net_flows_free(f);
    net_topo_free(t);
    g_free(hw);
}

/* Two allreduces issued at once on two communication streams, over process groups that share the
 * nodes' single NIC: each takes twice as long as alone. */
static int64_t two_allreduces(bool both)
{
    HwTopology *hw = toy_topo(1, 1);
    IrSchedule *s = ir_schedule_new(2, 1);
    int ga = ir_group_add(s, "a", 2, 1), gb = ir_group_add(s, "b", 2, 1);
    IrClass *c = ir_class_add(s, 0, 2, 1);
    ir_stream_add(c, "host", true);
    ir_stream_add(c, "nccl:a", false);
    ir_stream_add(c, "nccl:b", false);
    for (int k = 0; k < (both ? 2 : 1); k++) {
        IrOp op = {.kind = IR_OP_COLL,
                   .stream = (uint16_t)ir_stream_find(c, k ? "nccl:b" : "nccl:a")};
        op.u.coll.coll = IR_COLL_ALLREDUCE;
        op.u.coll.group = (uint16_t)(k ? gb : ga);
        op.u.coll.bytes = 1000000000;
        ir_op_add(c, &op, "allreduce", NULL, 0);
    }
    CollModel coll;
    coll_model_analytic_init(&coll, hw);
    coll.force_algo = COLL_ALGO_RING;
    coll.force_proto = COLL_PROTO_SIMPLE;
    NetTopo *net = net_topo_new(hw, 2, 1);
    SimConfig cfg = {hw, &coll, net};
    GError *error = NULL;
    SimResult *r = sim_run(s, &cfg, &error);
    assert_non_null(r);
    int64_t t = r->makespan_ns;
    sim_result_free(r);
    net_topo_free(net);
    ir_schedule_free(s);
    g_free(hw);
    return t;
}

static void test_shared_link_halves_bandwidth(void **state)
{
    int64_t alone = two_allreduces(false), both = two_allreduces(true);
    /* 2 ranks: each sends 2 (n-1)/n x 1 GB = 1 GB over its NIC at 1 GB/s, plus NCCL's latency */
    assert_true(alone > 1000000000 && alone < 1001000000);
    assert_true(fabs((double)both / alone - 2.0) < 0.01);
}

/* Hybrid sharding's all-gathers (unshard stream) overlap the previous unit's replicate allreduce
 * (post-backward stream). Inside a node they use NVLink and the allreduce uses the NICs: no
 * slowdown against the collectives alone. With shard groups of two nodes, both cross the NICs
 * and slow each other down. */
static double coll_seconds(const char *shard, bool flows)
{
    Run r;
    run_start(&r, "models/gpt2.json", "topologies/juwels-booster.json", 4, 4);
    strat_sharding_parse("hybrid_shard", &r.opt.sharding);
    r.opt.shard_group_size = atoi(shard);
    GError *error = NULL;
    assert_true(strat_layout_make(&r.opt, 4, 4, &r.layout, &error));
    r.sched = strat_generate(r.model, r.topo, &r.opt, &r.layout, &r.info, &error);
    assert_non_null(r.sched);
    coll_model_analytic_init(&r.coll, r.topo);
    NetTopo *net = flows ? net_topo_new(r.topo, 4, 4) : NULL;
    SimConfig cfg = {r.topo, &r.coll, net};
    SimResult *sim = sim_run(r.sched, &cfg, &error);
    assert_non_null(sim);
    double total = 0;
    for (int k = 0; k < IR_COLL_KIND_COUNT; k++)
        total += sim->classes[0].coll_time_by_kind[k];
    sim_result_free(sim);
    net_topo_free(net);
    strat_info_clear(&r.info);
    ir_schedule_free(r.sched);
    model_free(r.model);
    hw_topology_free(r.topo);
    return total;
}

static void test_hybrid_contention_only_on_shared_nics(void **state)
{
    double node_alone = coll_seconds("4", false), node_flows = coll_seconds("4", true);
    double two_alone = coll_seconds("8", false), two_flows = coll_seconds("8", true);
    print_message("hybrid, shard group = node:   %.3f ms alone, %.3f ms with flows\n",
                  node_alone * 1e3, node_flows * 1e3);
    print_message("hybrid, shard group = 2 nodes: %.3f ms alone, %.3f ms with flows\n",
                  two_alone * 1e3, two_flows * 1e3);
    assert_true(fabs(node_flows / node_alone - 1) < 1e-3);
    assert_true(two_flows / two_alone > 1.05);
}

/* Link classes. The flow model keeps one state per class of links loaded alike by every pattern
 * (net_flows_new) instead of one per link (net_flows_new_per_link); the results must be the
 * same to the bit. A script of transfers on a DragonFly+-like machine (8 nodes of 4 GPUs and 2
 * NICs, groups of 2 nodes): rings over everything, over one rail and inside every node, a tree
 * over another rail, an all-to-all over half the machine, a send, and an empty pattern; patterns
 * are registered as first used, several while others are in flight (classes split mid-run);
 * transfers start mid-way through others and contend. The log holds every completion time, every
 * rate, every completed id, then every link's statistics and the utilisation samples. */
enum { SCRIPT_PATTERNS = 8 };

static void build_patterns(const NetTopo *t, NetLoad **loads, int *n)
{
    NetLoadBuilder *b = net_builder_new(t);
    int all[32], rail0[8], rail1[8], half[16];
    for (int i = 0; i < 32; i++)
        all[i] = i;
    for (int i = 0; i < 8; i++)
        rail0[i] = 4 * i, rail1[i] = 4 * i + 1;
    for (int i = 0; i < 16; i++)
        half[i] = i;
    net_builder_ring(b, all, 32, 1.0);
    loads[0] = net_builder_take(b, &n[0]);
    net_builder_ring(b, rail0, 8, 1.0);
    loads[1] = net_builder_take(b, &n[1]);
    net_builder_tree(b, rail1, 8, 1.0);
    loads[2] = net_builder_take(b, &n[2]);
    net_builder_alltoall(b, half, 16, 1.0);
    loads[3] = net_builder_take(b, &n[3]);
    /* 8 instances of one family and a ring over 6 GPUs of nodes 0 and 1, as one pattern: it loads
     * every GPU link, those of nodes 0 and 1 more (a class split in several, one keeping its id) */
    for (int node = 0; node < 8; node++)
        net_builder_ring(b, all + 4 * node, 4, 1.0);
    net_builder_ring(b, all, 6, 1.0);
    loads[4] = net_builder_take(b, &n[4]);
    net_builder_p2p(b, 3, 17, 1.0);
    loads[5] = net_builder_take(b, &n[5]);
    loads[6] = net_builder_take(b, &n[6]); /* nothing */
    net_builder_ring(b, all, 6, 1.0);      /* GPUs of one node more loaded than the other's */
    loads[7] = net_builder_take(b, &n[7]);
    net_builder_free(b);
}

static void log_value(GArray *log, double v)
{
    g_array_append_val(log, v);
}

static GArray *run_script(const NetTopo *t, NetFlows *f, int *second_rates)
{
    NetLoad *loads[SCRIPT_PATTERNS];
    int n[SCRIPT_PATTERNS], id[SCRIPT_PATTERNS];
    build_patterns(t, loads, n);
    for (int p = 0; p < SCRIPT_PATTERNS; p++)
        id[p] = -1;
    const struct {
        int pattern;
        double scale;
    } adds[] = {{0, 1e9}, {1, 2e9}, {2, 0.5e9}, {3, 1e7}, {4, 3e9},  {5, 1e9},
                {6, 1e9}, {7, 2e9}, {0, 0.3e9}, {2, 1e9}, {1, 0.1e9}};
    GArray *log = g_array_new(FALSE, FALSE, sizeof(double));
    int64_t now = 0, next = -1;
    int n_ids = 0, ids[16]; /* ids are reused once their transfer ends */
    double second_rate = 0;
    *second_rates = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(adds) || next >= 0; i++) {
        /* alternately: start the next transfer half way to the next completion, or complete */
        bool add = i < G_N_ELEMENTS(adds) && (i % 3 != 2 || next < 0);
        if (next >= 0)
            now = add ? now + (next - now) / 2 : next;
        net_flows_advance(f, now);
        if (!add) {
            int k = net_flows_complete(f, now, ids, 16);
            for (int j = 0; j < k; j++)
                log_value(log, ids[j]);
        } else {
            int p = adds[i].pattern;
            if (id[p] < 0)
                id[p] = net_flows_pattern(f, loads[p], n[p]);
            n_ids = MAX(n_ids, net_flows_add(f, now, id[p], adds[i].scale) + 1);
        }
        next = net_flows_reschedule(f);
        log_value(log, (double)next);
        for (int k = 0; k < n_ids; k++)
            log_value(log, net_flows_rate(f, k));
        if (n_ids > 1 && net_flows_rate(f, 1) != second_rate)
            second_rate = net_flows_rate(f, 1), ++*second_rates;
    }
    for (uint32_t l = 0; l < (uint32_t)t->n_links; l++) {
        const NetLinkStats *st = net_flows_stats(f, l);
        log_value(log, st->bytes);
        log_value(log, (double)st->busy_ns);
        log_value(log, st->peak_util);
    }
    int ns;
    const NetUtilSample *smp = net_flows_samples(f, &ns);
    for (int k = 0; k < ns; k++) {
        log_value(log, (double)smp[k].time_ns);
        for (int j = 0; j < NET_LINK_KIND_COUNT; j++)
            log_value(log, smp[k].util[j]);
    }
    for (int p = 0; p < SCRIPT_PATTERNS; p++)
        g_free(loads[p]);
    return log;
}

/* Every class names its lowest link and its size (what the report's busiest links walk instead
 * of the links): a link's statistics are its class's, so the links whose statistics are a class's
 * are that class's links. */
static void check_class_first_links(const NetTopo *t, const NetFlows *f)
{
    int n = net_flows_link_classes(f), total = 0;
    for (int c = 0; c < n; c++) {
        uint32_t first;
        int size;
        const NetLinkStats *st = net_flows_class_stats(f, c, &first, &size);
        uint32_t lowest = UINT32_MAX;
        int count = 0;
        for (uint32_t l = 0; l < (uint32_t)t->n_links; l++)
            if (net_flows_stats(f, l) == st) {
                lowest = MIN(lowest, l);
                count++;
            }
        assert_int_equal(first, lowest);
        assert_int_equal(size, count);
        total += size;
    }
    assert_int_equal(total, t->n_links);
}

static void check_classes_match_links(double global_Bps)
{
    HwTopology *hw = toy_topo(4, 2);
    hw->net_nodes_per_group = 2;
    hw->net_group_global_Bps = global_Bps; /* 0: infinite */
    NetTopo *t = net_topo_new(hw, 8, 4);
    NetFlows *merged = net_flows_new(t), *per_link = net_flows_new_per_link(t);
    int rates_a, rates_b;
    GArray *a = run_script(t, merged, &rates_a), *b = run_script(t, per_link, &rates_b);
    print_message("%d link classes for %d links; log of %u values\n",
                  net_flows_link_classes(merged), t->n_links, a->len);
    assert_int_equal(net_flows_link_classes(per_link), t->n_links);
    assert_true(net_flows_link_classes(merged) < t->n_links / 2);
    check_class_first_links(t, merged);
    check_class_first_links(t, per_link);
    assert_int_equal(a->len, b->len);
    for (guint i = 0; i < a->len; i++)
        if (memcmp(&g_array_index(a, double, i), &g_array_index(b, double, i), sizeof(double)))
            fail_msg("value %u: %.17g with classes, %.17g per link", i, g_array_index(a, double, i),
                     g_array_index(b, double, i));
    /* the transfers did contend: the rail ring ran at several rates */
    assert_true(rates_a >= 4);
    assert_int_equal(rates_a, rates_b);
    g_array_free(a, TRUE);
    g_array_free(b, TRUE);
    net_flows_free(merged);
    net_flows_free(per_link);
    net_topo_free(t);
    g_free(hw);
}

static void test_link_classes_exact(void **state)
{
    check_classes_match_links(1.5e9);
    check_classes_match_links(0);
}

/* Incremental max-min sharing. A reschedule re-solves only the transfers connected through
 * shared link classes to one that started or ended; net_flows_set_full re-solves all active
 * transfers together, as every reschedule did before. Random scripts on a DragonFly+-like machine
 * (8 nodes of 4 GPUs and 2 NICs, groups of 2 nodes, tapered global links): random rings, trees,
 * all-to-alls and sends over random members, often inside one node (so several components are
 * active at once: that is where the two differ), started at random times while others are in
 * flight. Both must complete the same transfers at the same nanosecond, with rates, link bytes
 * and utilisations equal to rounding (the full solve adds a component's rate up from the deltas
 * of rounds other components ended, the incremental one in fewer, larger steps). */
typedef struct {
    double rate, bytes, util; /* largest relative differences seen */
    int multi;                /* reschedules with transfers in several components */
} IncrementalDiff;

static double rel_diff(double a, double b)
{
    double m = MAX(fabs(a), fabs(b));
    return m > 0 ? fabs(a - b) / m : 0;
}

static void random_pattern(GRand *rng, NetLoadBuilder *b, int world, int gpn)
{
    int members[32], n;
    int kind = g_rand_int_range(rng, 0, 4);
    if (g_rand_boolean(rng)) { /* inside one node */
        int node = g_rand_int_range(rng, 0, world / gpn);
        n = g_rand_int_range(rng, 2, gpn + 1);
        for (int i = 0; i < n; i++)
            members[i] = node * gpn + i;
    } else { /* a random subset of the machine, in rank order */
        n = 0;
        for (int r = 0; r < world; r++)
            if (g_rand_int_range(rng, 0, 4) == 0)
                members[n++] = r;
        if (n < 2)
            members[0] = 0, members[1] = world - 1, n = 2;
    }
    if (kind == 0)
        net_builder_ring(b, members, n, 1.0);
    else if (kind == 1)
        net_builder_tree(b, members, n, 1.0);
    else if (kind == 2)
        net_builder_alltoall(b, members, n, 1.0);
    else
        net_builder_p2p(b, members[0], members[n - 1], 1.0);
}

static void compare_incremental_to_full(unsigned seed, IncrementalDiff *d)
{
    HwTopology *hw = toy_topo(4, 2);
    hw->net_nodes_per_group = 2;
    hw->net_group_global_Bps = 1.5e9;
    NetTopo *t = net_topo_new(hw, 8, 4);
    NetFlows *inc = net_flows_new(t), *full = net_flows_new(t);
    net_flows_set_full(full, true);
    NetLoadBuilder *b = net_builder_new(t);
    GRand *rng = g_rand_new_with_seed(seed);
    int64_t now = 0, next = -1;
    int to_add = 40, ids_a[64], ids_b[64], n_ids = 0;
    while (to_add > 0 || next >= 0) {
        bool add = to_add > 0 && (next < 0 || g_rand_int_range(rng, 0, 3) > 0);
        if (next >= 0)
            now = add ? now + (int64_t)((next - now) * g_rand_double(rng)) : next;
        net_flows_advance(inc, now);
        net_flows_advance(full, now);
        if (add) {
            random_pattern(rng, b, 32, 4);
            int n;
            NetLoad *loads = net_builder_take(b, &n);
            double scale = g_rand_double_range(rng, 1e6, 1e9);
            int ia = net_flows_add(inc, now, net_flows_pattern(inc, loads, n), scale);
            int ib = net_flows_add(full, now, net_flows_pattern(full, loads, n), scale);
            assert_int_equal(ia, ib);
            n_ids = MAX(n_ids, ia + 1);
            g_free(loads);
            to_add--;
        } else {
            int na = net_flows_complete(inc, now, ids_a, 64);
            int nb = net_flows_complete(full, now, ids_b, 64);
            assert_int_equal(na, nb);
            assert_memory_equal(ids_a, ids_b, sizeof(int) * (size_t)na);
        }
        int64_t next_a = net_flows_reschedule(inc);
        next = net_flows_reschedule(full);
        assert_true(next_a == next);
        int moving = 0, alone = 0;
        for (int k = 0; k < n_ids; k++) {
            double ra = net_flows_rate(inc, k), rb = net_flows_rate(full, k);
            d->rate = MAX(d->rate, rel_diff(ra, rb));
            moving += rb > 0;
            alone += ra != rb; /* solved in other rounds than the full solve's */
        }
        d->multi += moving > 1 && alone > 0;
    }
    for (uint32_t l = 0; l < (uint32_t)t->n_links; l++) {
        const NetLinkStats *a = net_flows_stats(inc, l), *s = net_flows_stats(full, l);
        d->bytes = MAX(d->bytes, rel_diff(a->bytes, s->bytes));
        d->util = MAX(d->util, rel_diff(a->peak_util, s->peak_util));
        assert_true(a->busy_ns == s->busy_ns);
    }
    g_rand_free(rng);
    net_builder_free(b);
    net_flows_free(inc);
    net_flows_free(full);
    net_topo_free(t);
    g_free(hw);
}

static void test_incremental_matches_full(void **state)
{
    IncrementalDiff d = {0};
    for (unsigned seed = 1; seed <= 40; seed++)
        compare_incremental_to_full(seed, &d);
    print_message("incremental vs full re-solve: rates within %.2g, link bytes within %.2g, peak "
                  "utilisation within %.2g (relative); %d reschedules with rates off the full "
                  "solve's last bits\n",
                  d.rate, d.bytes, d.util, d.multi);
    assert_true(d.rate <= 1e-13);
    assert_true(d.bytes <= 1e-13);
    assert_true(d.util <= 1e-13);
}

/* Leaves inside a group: 4 nodes of one GPU and one NIC in one group, 2 leaves of 2 ports each.
 * With a 2:1 taper (each leaf's uplinks carry one port's worth) traffic between leaves crosses
 * them; a non-blocking leaf is not modelled at all, so the links and loads are those of a fabric
 * described without leaves. */
static NetTopo *leaf_topo(HwTopology *hw, double uplink_Bps)
{
    hw->net_nodes_per_group = 4;
    hw->net_group_global_Bps = 4e9;
    hw->net_leaves_per_group = uplink_Bps > 0 ? 2 : 0;
    hw->net_leaf_uplink_Bps = uplink_Bps;
    return net_topo_new(hw, 4, 1);
}

static void test_leaf_taper_loads(void **state)
{
    HwTopology *hw = toy_topo(1, 1);
    NetTopo *tapered = leaf_topo(hw, 1e9), *flat = leaf_topo(hw, 0);
    assert_int_equal(tapered->n_links, flat->n_links + 4);
    NetLoadBuilder *b = net_builder_new(tapered);
    int all[] = {0, 1, 2, 3}; /* ring 0>1>2>3>0: 1>2 and 3>0 cross between the leaves */
    net_builder_ring(b, all, 4, 100);
    int n;
    NetLoad *l = net_builder_take(b, &n);
    assert_true(load_on(l, n, tapered, "group0.leaf0.up") == 100);
    assert_true(load_on(l, n, tapered, "group0.leaf1.down") == 100);
    assert_true(load_on(l, n, tapered, "group0.leaf1.up") == 100);
    g_free(l);
    /* all-to-all: each node sends p to the 2 nodes of the other leaf: 4p up per leaf, 3p per NIC */
    net_builder_alltoall(b, all, 4, 10);
    l = net_builder_take(b, &n);
    assert_true(load_on(l, n, tapered, "group0.leaf0.up") == 40);
    assert_true(load_on(l, n, tapered, "group0.leaf1.down") == 40);
    assert_true(load_on(l, n, tapered, "node0.nic0.tx") == 30);
    assert_true(fabs(net_load_time_s(tapered, l, n) - 40e-9) < 1e-15);
    g_free(l);
    /* tree over the 4 nodes: edges 1-0, 2-0 (crosses), 3-1 (crosses): bytes each way per edge */
    net_builder_tree(b, all, 4, 10);
    l = net_builder_take(b, &n);
    assert_true(load_on(l, n, tapered, "group0.leaf1.up") == 20);
    assert_true(load_on(l, n, tapered, "group0.leaf0.up") == 20);
    g_free(l);
    net_builder_free(b);
    /* non-blocking (2 ports' worth up): no leaf links, the same loads as without leaves */
    NetTopo *full = leaf_topo(hw, 2e9);
    assert_int_equal(full->n_links, flat->n_links);
    NetLoadBuilder *bf = net_builder_new(full), *b0 = net_builder_new(flat);
    net_builder_alltoall(bf, all, 4, 10);
    net_builder_alltoall(b0, all, 4, 10);
    int nf, n0;
    NetLoad *lf = net_builder_take(bf, &nf), *l0 = net_builder_take(b0, &n0);
    assert_int_equal(nf, n0);
    for (int i = 0; i < nf; i++) {
        assert_int_equal(lf[i].link, l0[i].link);
        assert_true(lf[i].bytes == l0[i].bytes);
    }
    g_free(lf);
    g_free(l0);
    net_builder_free(bf);
    net_builder_free(b0);
    net_topo_free(full);
    net_topo_free(tapered);
    net_topo_free(flat);
    g_free(hw);
}

/* Two rings, over nodes {0, 2} and {1, 3}, each between the two leaves. Alone each moves 1 GB
 * in 1 s over its NICs. Together on a 2:1 tapered fabric they share the leaf uplinks and take
 * twice as long; on a non-blocking one they do not slow each other. */
static int64_t two_rings_s(double uplink_Bps)
{
    HwTopology *hw = toy_topo(1, 1);
    NetTopo *t = leaf_topo(hw, uplink_Bps);
    NetLoadBuilder *b = net_builder_new(t);
    int ra[] = {0, 2}, rb[] = {1, 3};
    int na, nb;
    net_builder_ring(b, ra, 2, 1e9);
    NetLoad *la = net_builder_take(b, &na);
    net_builder_ring(b, rb, 2, 1e9);
    NetLoad *lb = net_builder_take(b, &nb);
    NetFlows *f = net_flows_new(t);
    net_flows_add(f, 0, net_flows_pattern(f, la, na), 1.0);
    net_flows_add(f, 0, net_flows_pattern(f, lb, nb), 1.0);
    int64_t end = net_flows_reschedule(f);
    net_flows_free(f);
    g_free(la);
    g_free(lb);
    net_builder_free(b);
    net_topo_free(t);
    g_free(hw);
    return end;
}

static void test_leaf_taper_contention(void **state)
{
    assert_true(llabs(two_rings_s(2e9) - 1000000000) <= 1);
    assert_true(llabs(two_rings_s(1e9) - 2000000000) <= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_loads),
        cmocka_unit_test(test_groups_global_links),
        cmocka_unit_test(test_max_min_fair),
        cmocka_unit_test(test_complete_after_empty_scan),
        cmocka_unit_test(test_link_classes_exact),
        cmocka_unit_test(test_incremental_matches_full),
        cmocka_unit_test(test_leaf_taper_loads),
        cmocka_unit_test(test_leaf_taper_contention),
        cmocka_unit_test(test_transfer_cap),
        cmocka_unit_test(test_progress_ignores_unrelated_events),
        cmocka_unit_test(test_repeat_adds_exact),
        cmocka_unit_test(test_shared_link_halves_bandwidth),
        cmocka_unit_test(test_hybrid_contention_only_on_shared_nics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
