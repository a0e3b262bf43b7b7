/* collnet: NCCL's CollNet all-reduce over SHARP switches (src/coll/collnet.c): when NCCL may run
 * it, its bandwidth and latency by NCCL 2.30.7's rules, and that the flow-level run carries it. */
#include "testutil.h"

#include "net/net.h"

/* Only where the topology says the switches offer SHARP, only all-reduce across nodes, and only
 * when enabled (NCCL_COLLNET_ENABLE) or forced (NCCL_ALGO): NCCL's default never takes it. On
 * NVLink SHARP nodes CollNet also carries NVLS across nodes, which then wins. */
static void test_collnet_when(void **state)
{
    (void)state;
    HwTopology *h = load_topo("topologies/coreweave-h100.json");
    HwTopology *a = load_topo("topologies/coreweave-a100.json");
    HwTopology *plain = load_topo("topologies/hgx-h100-ndr400.json");
    assert_true(coll_topology_has_sharp(a));
    assert_false(coll_topology_has_sharp(plain));
    CollModel m;
    coll_model_analytic_init(&m, a);
    CollShape big = {IR_COLL_ALLREDUCE, 1ULL << 33, 32, 4, 8};
    CollChoice ch;
    m.time_s(&m, &big, &ch);
    assert_true(ch.algo != COLL_ALGO_COLLNET_DIRECT && ch.algo != COLL_ALGO_COLLNET_CHAIN);
    m.collnet_enable = true;
    double t_on = m.time_s(&m, &big, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_COLLNET_CHAIN);
    assert_int_equal(ch.proto, COLL_PROTO_SIMPLE);
    m.collnet_enable = false;
    assert_true(t_on < m.time_s(&m, &big, NULL));
    /* H100 with NVLink SHARP: NVLS across 12 nodes only with CollNet, at 8 channels x the head's
     * NIC (47 GB/s; NVLink allows 370.8/9 x 0.85 x 7/8 x 2 = 61 per channel) */
    CollModel hm;
    coll_model_analytic_init(&hm, h);
    CollShape h12 = {IR_COLL_ALLREDUCE, 1ULL << 33, 96, 12, 8};
    hm.time_s(&hm, &h12, &ch);
    assert_true(ch.algo != COLL_ALGO_NVLS);
    hm.collnet_enable = true;
    hm.time_s(&hm, &h12, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_NVLS);
    assert_close(ch.bus_Bps, 8 * h->nic_Bps, 1e-9);
    /* NCCL's 25 us of NVLS and 18 us of network; at 8 B no pipeline to fill */
    CollShape tiny = {IR_COLL_ALLREDUCE, 8, 96, 12, 8};
    hm.time_s(&hm, &tiny, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_NVLS);
    assert_close(ch.latency_s, 43e-6, 1e-3);
    /* not for all-gather, not inside one node */
    m.collnet_enable = true;
    CollShape ag = {IR_COLL_ALLGATHER, 1ULL << 33, 96, 12, 8};
    m.time_s(&m, &ag, &ch);
    assert_true(ch.algo != COLL_ALGO_COLLNET_DIRECT && ch.algo != COLL_ALGO_COLLNET_CHAIN);
    CollShape one = {IR_COLL_ALLREDUCE, 1ULL << 33, 8, 1, 8};
    m.force_algo = COLL_ALGO_COLLNET_CHAIN;
    m.time_s(&m, &one, &ch);
    assert_true(ch.forced_unavailable);
    /* forced without SHARP in the switches: not available */
    CollModel p;
    coll_model_analytic_init(&p, plain);
    p.force_algo = COLL_ALGO_COLLNET_DIRECT;
    CollShape two = {IR_COLL_ALLREDUCE, 1ULL << 30, 16, 2, 8};
    p.time_s(&p, &two, &ch);
    assert_true(ch.forced_unavailable);
    int algo;
    assert_true(coll_algo_parse("CollNetChain", &algo) && algo == COLL_ALGO_COLLNET_CHAIN);
    assert_true(coll_algo_parse("collnetdirect", &algo) && algo == COLL_ALGO_COLLNET_DIRECT);
    hw_topology_free(h);
    hw_topology_free(a);
    hw_topology_free(plain);
}

/* Bandwidth: each node sends the array up and gets it back once over its NICs, so the algorithm
 * bandwidth is the node's NICs, or what the GPUs' links carry: the chain moves the array twice
 * each way over every GPU's link; Direct with h heads (g - 1 + h - 1)/h times, then NCCL's
 * GPU-per-NIC factor r - (r - 1)/2 and 0.85 on Hopper. busbw = algbw x 2(n-1)/n. */
static void test_collnet_bandwidth(void **state)
{
    (void)state;
    HwTopology *h = load_topo("topologies/coreweave-h100.json");
    HwTopology *a = load_topo("topologies/coreweave-a100.json");
    CollModel m;
    CollChoice ch;
    coll_model_analytic_init(&m, h);
    m.force_algo = COLL_ALGO_COLLNET_CHAIN;
    CollShape h12 = {IR_COLL_ALLREDUCE, 1ULL << 33, 96, 12, 8};
    double t = m.time_s(&m, &h12, &ch);
    /* 8 x 47 GB/s of NICs against 370.8 / 2 of NVLink: the links bind */
    assert_close(ch.bus_Bps, h->gpu_link_Bps / 2 * 2 * 95 / 96, 1e-9);
    assert_close(t, ch.latency_s + (double)h12.bytes / (h->gpu_link_Bps / 2), 1e-12);
    /* Chain latency: 2 x 7 NVLink hops of 2.8 us, 30 us of network */
    assert_close(ch.latency_s, (2 * 7 * 2.8 + 30) * 1e-6, 1e-12);
    m.force_algo = COLL_ALGO_COLLNET_DIRECT;
    m.time_s(&m, &h12, &ch);
    /* 8 heads: 14/8 arrays per direction of 370.8, x 0.85 (Hopper) */
    assert_close(ch.bus_Bps, h->gpu_link_Bps * 8 / 14 * 0.85 * 2 * 95 / 96, 1e-9);
    assert_close(ch.latency_s, (2 * (3.7 + 7 * 0.4) + 31) * 1e-6, 1e-12);

    coll_model_analytic_init(&m, a);
    CollShape a4 = {IR_COLL_ALLREDUCE, 1ULL << 33, 32, 4, 8};
    m.force_algo = COLL_ALGO_COLLNET_DIRECT;
    m.time_s(&m, &a4, &ch);
    /* 4 NICs of 24 GB/s bind (the links allow 240 x 4/10); 2 GPUs per NIC: / 1.5 */
    double nics = 4 * a->nic_Bps;
    assert_close(ch.bus_Bps, nics / 1.5 * 2 * 31 / 32, 1e-9);
    m.force_algo = COLL_ALGO_COLLNET_CHAIN;
    m.time_s(&m, &a4, &ch);
    assert_close(ch.bus_Bps, nics * 2 * 31 / 32, 1e-9);
    /* one GPU per node: that GPU's NIC, and the tree's network latency (14 us) */
    CollShape a1 = {IR_COLL_ALLREDUCE, 1ULL << 33, 4, 4, 1};
    m.time_s(&m, &a1, &ch);
    assert_close(ch.latency_s, 14e-6, 1e-12);
    assert_close(ch.bus_Bps, a->nic_Bps * 2 * 3 / 4, 1e-9);
    hw_topology_free(h);
    hw_topology_free(a);
}

/* The flow-level run (what `fsdpsim collective` prints) carries CollNet at the bandwidth of the
 * analytic model within the 1.4 % between the node's NICs (376 GB/s) and NVLink (370.8) that the
 * ring pattern's bottleneck differs by (as for NVLS). */
static void test_collnet_flow(void **state)
{
    (void)state;
    HwTopology *h = load_topo("topologies/coreweave-h100.json");
    CollModel m;
    coll_model_analytic_init(&m, h);
    m.force_algo = COLL_ALGO_COLLNET_CHAIN;
    NetTopo *net = net_topo_new(h, 12, 8);
    uint64_t bytes = 1ULL << 33;
    double flow = 0;
    GError *error = NULL;
    assert_true(sim_collective_s(h, &m, net, 12, 8, IR_COLL_ALLREDUCE, HW_DTYPE_FP32, bytes, &flow,
                                 &error));
    CollShape sh = {IR_COLL_ALLREDUCE, bytes, 96, 12, 8};
    double analytic = m.time_s(&m, &sh, NULL);
    assert_true(fabs(flow / analytic - 1) < 0.02);
    net_topo_free(net);
    hw_topology_free(h);
}

/* The report's bytes across nodes: CollNet sends the node's array up once (bytes per node),
 * a ring 2(n - 1)/n of it; both averaged over the node's GPUs. Checked on the function and on
 * what a simulated all-reduce accumulates (sim.c start_coll). */
static void test_collnet_inter_node_bytes(void **state)
{
    (void)state;
    HwTopology *h = load_topo("topologies/coreweave-h100.json");
    CollShape sh = {IR_COLL_ALLREDUCE, 1ULL << 30, 32, 4, 8};
    CollChoice ring = {.algo = COLL_ALGO_RING}, chain = {.algo = COLL_ALGO_COLLNET_CHAIN},
               direct = {.algo = COLL_ALGO_COLLNET_DIRECT};
    assert_close(coll_inter_node_bytes_per_rank(&sh, &ring), 2.0 * 31 / 32 * (1 << 30) / 8, 1e-12);
    assert_close(coll_inter_node_bytes_per_rank(&sh, &chain), (double)(1 << 30) / 8, 1e-12);
    assert_close(coll_inter_node_bytes_per_rank(&sh, &direct), (double)(1 << 30) / 8, 1e-12);
    CollShape one = {IR_COLL_ALLREDUCE, 1ULL << 30, 8, 1, 8};
    assert_true(coll_inter_node_bytes_per_rank(&one, &chain) == 0);
    for (int forced = 0; forced < 2; forced++) {
        CollModel m;
        coll_model_analytic_init(&m, h);
        m.force_algo = forced ? COLL_ALGO_COLLNET_CHAIN : COLL_ALGO_RING;
        IrSchedule *s = ir_schedule_new(4, 8);
        int g = ir_group_add(s, "world", 32, 1);
        IrClass *c = ir_class_add(s, 0, 32, 1);
        ir_stream_add(c, "host", true);
        ir_stream_add(c, "nccl", false);
        IrOp op = {.kind = IR_OP_COLL, .stream = 1, .dtype = HW_DTYPE_BF16};
        op.u.coll.coll = IR_COLL_ALLREDUCE;
        op.u.coll.group = (uint16_t)g;
        op.u.coll.bytes = 1ULL << 30;
        ir_op_add(c, &op, "allreduce", NULL, 0);
        SimConfig cfg = {h, &m, NULL};
        GError *error = NULL;
        SimResult *r = sim_run(s, &cfg, &error);
        assert_non_null(r);
        assert_close(r->classes[0].inter_node_bytes_sent,
                     forced ? (double)(1 << 30) / 8 : 2.0 * 31 / 32 * (1 << 30) / 8, 1e-12);
        sim_result_free(r);
        ir_schedule_free(s);
    }
    hw_topology_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collnet_when),
        cmocka_unit_test(test_collnet_bandwidth),
        cmocka_unit_test(test_collnet_flow),
        cmocka_unit_test(test_collnet_inter_node_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
