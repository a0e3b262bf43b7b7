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
    int ia = net_flows_add(f, 0, a, 1, 1.0);
    int ib = net_flows_add(f, 0, bl, 2, 1.0);
    int ic = net_flows_add(f, 0, c, 1, 1.0);
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
    const NetLinkStats *st = net_flows_stats(f);
    assert_true(fabs(st[0].bytes - 2e9) < 1);
    assert_true(st[0].peak_util > 0.999);
    assert_true(llabs(st[0].busy_ns - 2000000000) <= 1);
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
        IrOp op = {.kind = IR_OP_COLL, .stream = (uint16_t)ir_stream_find(c, k ? "nccl:b" : "nccl:a")};
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_loads),
        cmocka_unit_test(test_groups_global_links),
        cmocka_unit_test(test_max_min_fair),
        cmocka_unit_test(test_shared_link_halves_bandwidth),
        cmocka_unit_test(test_hybrid_contention_only_on_shared_nics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
