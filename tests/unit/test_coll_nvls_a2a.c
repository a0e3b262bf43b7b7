/* coll: NVLS's latencies by NCCL release (src/coll/coll.c nvls_tuner_latency_us), NVLSTree's
 * chunk, and the protocols of all-to-all, which NCCL runs as grouped sends and receives. */
#include "testutil.h"

/* NVLS and NVLSTree latencies as each release's tuning.cc charges them, at 1 KiB forced (the
 * pipeline fill, which the choice's latency also holds, is under 0.1 us there): 2.17 a base of
 * 40 us; 2.18 a base of 23, 18 over SHARP, 19 per node beyond the first both ways; 2.19-2.20 a
 * round of 23, 14 per tree level; 2.21-2.28.7 25 and 14; from 2.28.9 25 and 20.9. The newest
 * used to get 14 per level (2.21's), so NVLSTree over 12 nodes was 41.4 us too cheap. */
static void test_nvls_latency_by_release(void **state)
{
    (void)state;
    HwTopology *h = load_topo("topologies/aws-p5.json");
    CollModel m;
    coll_model_analytic_init(&m, h);
    m.force_proto = COLL_PROTO_SIMPLE;
    CollShape one = {IR_COLL_ALLREDUCE, 1024, 8, 1, 8};
    CollShape twelve = {IR_COLL_ALLREDUCE, 1024, 96, 12, 8};
    CollChoice ch;
    const struct {
        int version;
        double one_us, tree12_us;
    } rows[] = {
        {21701, 40, 0},
        {21805, 23, 23 + 2 * 11 * 19.0},
        {22003, 23, 23 + 2 * 3 * 14.0},
        {22602, 25, 25 + 2 * 3 * 14.0},
        {22807, 25, 25 + 2 * 3 * 14.0},
        {22809, 25, 25 + 2 * 3 * 20.9},
        {0, 25, 25 + 2 * 3 * 20.9}, /* the newest, 2.30.7 */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        m.nccl_version = rows[i].version;
        m.force_algo = COLL_ALGO_NVLS;
        m.time_s(&m, &one, &ch);
        assert_int_equal(ch.algo, COLL_ALGO_NVLS);
        assert_true(fabs(ch.latency_s - rows[i].one_us * 1e-6) < 0.1e-6);
        if (rows[i].version == 21701)
            continue; /* no NVLSTree before 2.18 */
        m.force_algo = COLL_ALGO_NVLS_TREE;
        m.time_s(&m, &twelve, &ch);
        assert_int_equal(ch.algo, COLL_ALGO_NVLS_TREE);
        assert_false(ch.forced_unavailable);
        assert_true(fabs(ch.latency_s - rows[i].tree12_us * 1e-6) < 0.1e-6);
    }
    /* the choice moves with it: two H100 NDR400 nodes at 1 MiB take NVLSTree under 2.26.2 and
     * the tree under 2.30.7, whose NVLSTree estimate is 13.8 us longer */
    HwTopology *n = load_topo("topologies/hgx-h100-ndr400.json");
    coll_model_analytic_init(&m, n);
    CollShape mid = {IR_COLL_ALLREDUCE, 1 << 20, 16, 2, 8};
    m.nccl_version = 22602;
    m.time_s(&m, &mid, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_NVLS_TREE);
    m.nccl_version = 0;
    m.time_s(&m, &mid, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_TREE);
    hw_topology_free(n);
    hw_topology_free(h);
}

/* NVLSTree's pipeline fill (what NCCL's tuner leaves out: two chunks per channel x head beyond the
 * first stage) with NCCL's chunk: 128 KiB on 2-3 nodes, at most 64 KiB from 4 nodes on
 * (transport/nvls.cc v2.30.7-1 l. 222, enqueue.cc v2.19.4-1 l. 1387); it was 128 KiB at any
 * node count, so from 4 nodes the fill was twice too long (4 H100 NDR400 nodes, 64 MiB: 639.47
 * us in `fsdpsim collective`, now 550.17). Before 2.19 NCCL had no such cap. */
static void test_nvls_tree_chunk(void **state)
{
    (void)state;
    HwTopology *h = load_topo("topologies/h100-ndr400-cluster.json");
    CollModel m;
    coll_model_analytic_init(&m, h);
    m.force_algo = COLL_ALGO_NVLS_TREE;
    CollChoice ch;
    const struct {
        int nodes, version;
        double chunk;
    } rows[] = {{2, 0, 131072}, {3, 0, 131072}, {4, 0, 65536}, {8, 0, 65536}, {8, 21805, 131072}};
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        m.nccl_version = rows[i].version;
        int n = rows[i].nodes * 8, version = rows[i].version ? rows[i].version : COLL_NCCL_NEWEST;
        CollShape big = {IR_COLL_ALLREDUCE, 1ULL << 30, n, rows[i].nodes, 8};
        m.time_s(&m, &big, &ch);
        assert_int_equal(ch.algo, COLL_ALGO_NVLS_TREE);
        double algbw = ch.bus_Bps / coll_busbw_factor(IR_COLL_ALLREDUCE, n);
        double levels = 0;
        for (int k = rows[i].nodes; k > 1; k >>= 1)
            levels++;
        double tuner_us =
            version < 21900 ? 23 + 2 * (rows[i].nodes - 1) * 19.0 : 25 + 2 * levels * 20.9;
        double fill_s = 2 * 16 * 8 * rows[i].chunk / algbw;
        assert_true(fabs(ch.latency_s - (tuner_us * 1e-6 + fill_s)) < 1e-9);
    }
    hw_topology_free(h);
}

/* All-to-all is NCCL's grouped sends and receives: LL up to 16 KiB per peer (one channel's
 * part, NCCL_P2P_LL_THRESHOLD), Simple above, never LL128 (enqueue.cc v2.30.7-1 l. 932-933).
 * JUWELS Booster, 4 nodes of 4 A100: the tuner's ring estimate took LL to 128 KiB per peer and
 * LL128 from there (64 MiB: 2329.5 us, 27.0 GB/s busbw in `fsdpsim collective`; Simple 2219.6
 * us, 28.4). */
static void test_alltoall_protocols(void **state)
{
    (void)state;
    HwTopology *j = load_topo("topologies/juwels-booster.json");
    CollModel m;
    coll_model_analytic_init(&m, j);
    CollChoice ch;
    const struct {
        uint64_t bytes;
        CollProto proto;
    } rows[] = {
        {1024, COLL_PROTO_LL},
        {16 * 16384, COLL_PROTO_LL},
        {16 * 16384 + 16, COLL_PROTO_SIMPLE},
        {2 << 20, COLL_PROTO_SIMPLE},
        {64 << 20, COLL_PROTO_SIMPLE},
        {1ULL << 32, COLL_PROTO_SIMPLE},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        CollShape a2a = {IR_COLL_ALLTOALL, rows[i].bytes, 16, 4, 4};
        m.time_s(&m, &a2a, &ch);
        assert_int_equal(ch.proto, rows[i].proto);
        a2a.nodes = 1, a2a.nranks = 4; /* inside a node alike: 64 KiB per peer is Simple */
        m.time_s(&m, &a2a, &ch);
        assert_int_equal(ch.proto, rows[i].bytes / 4 <= 16384 ? COLL_PROTO_LL : COLL_PROTO_SIMPLE);
    }
    /* NCCL_PROTO=LL128 cannot make a send LL128: flagged, as any forced choice that cannot run */
    m.force_proto = COLL_PROTO_LL128;
    CollShape big = {IR_COLL_ALLTOALL, 64 << 20, 16, 4, 4};
    m.time_s(&m, &big, &ch);
    assert_true(ch.forced_unavailable);
    assert_int_equal(ch.proto, COLL_PROTO_SIMPLE);
    /* the other collectives keep the tuner's LL128 */
    m.force_proto = -1;
    CollShape ag = {IR_COLL_ALLGATHER, 64 << 20, 16, 4, 4};
    m.time_s(&m, &ag, &ch);
    assert_int_equal(ch.proto, COLL_PROTO_LL128);
    hw_topology_free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nvls_latency_by_release),
        cmocka_unit_test(test_alltoall_protocols),
        cmocka_unit_test(test_nvls_tree_chunk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
