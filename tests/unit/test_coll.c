/* coll: nccl-tests' bus bandwidth definitions, NCCL's cost model, and the one-node A100 table of
 * ../shared/data/nccl-tests (the multi-node tables are the flow-level model's job, issue 3). */
#include "testutil.h"

#include <stdio.h>
#include <unistd.h>

static void test_busbw_factors(void **state)
{
    assert_close(coll_busbw_factor(IR_COLL_ALLREDUCE, 8), 2.0 * 7 / 8, 1e-15);
    assert_close(coll_busbw_factor(IR_COLL_ALLGATHER, 16), 15.0 / 16, 1e-15);
    assert_close(coll_busbw_factor(IR_COLL_REDUCE_SCATTER, 4), 3.0 / 4, 1e-15);
    assert_true(coll_busbw_factor(IR_COLL_ALLREDUCE, 1) == 0);
}

static void test_large_ring_is_bandwidth_bound(void **state)
{
    HwTopology *t = load_topo("topologies/hgx-a100-40gb.json");
    CollModel m;
    coll_model_analytic_init(&m, t);
    CollShape sh = {IR_COLL_ALLREDUCE, 1ULL << 33, 8, 1, 8};
    CollChoice ch;
    double s = m.time_s(&m, &sh, &ch);
    assert_int_equal(ch.proto, COLL_PROTO_SIMPLE);
    double bw_term = (double)sh.bytes * 2 * 7 / 8 / t->gpu_link_Bps;
    assert_close(s, bw_term + ch.latency_s, 1e-12);
    assert_true(ch.latency_s < 1e-4);
    /* tiny messages are latency-bound and use LL */
    sh.bytes = 8;
    m.time_s(&m, &sh, &ch);
    assert_int_equal(ch.proto, COLL_PROTO_LL);
    /* forcing the protocol like NCCL_PROTO does */
    m.force_proto = COLL_PROTO_SIMPLE;
    m.time_s(&m, &sh, &ch);
    assert_int_equal(ch.proto, COLL_PROTO_SIMPLE);
    hw_topology_free(t);
}

static void test_inter_node_bandwidth_is_the_nics(void **state)
{
    HwTopology *t = load_topo("topologies/juwels-booster.json");
    CollModel m;
    coll_model_analytic_init(&m, t);
    CollChoice ch;
    /* 4 GPUs per node, 4 NICs: a ring over whole nodes gets all 4 NICs */
    CollShape all = {IR_COLL_ALLGATHER, 1ULL << 30, 16, 4, 4};
    m.time_s(&m, &all, &ch);
    assert_close(ch.bus_Bps, 4 * t->nic_Bps, 1e-12);
    /* one GPU per node (hybrid's replicate group): that GPU's NIC */
    CollShape rep = {IR_COLL_ALLREDUCE, 1ULL << 30, 4, 4, 1};
    m.time_s(&m, &rep, &ch);
    assert_close(ch.bus_Bps, t->nic_Bps, 1e-12);
    /* inside a node: NVLink */
    CollShape node = {IR_COLL_ALLGATHER, 1ULL << 30, 4, 1, 4};
    m.time_s(&m, &node, &ch);
    assert_close(ch.bus_Bps, t->gpu_link_Bps, 1e-12);
    hw_topology_free(t);
}

/* NVLS on an H100 NVSwitch node: chosen for large allreduces only, with the switch's traffic
 * (every byte read once for the reduction, the reduced 1/g multicast to all g GPUs) at NCCL's
 * NVLS efficiency; never on A100 nor for allgather. */
/* A forced algorithm that cannot run the collective (NVLS on an A100, the tree inside one node)
 * must not leave the choice empty: it once gave a ring with no latency at all (1 MiB in 6.6 us).
 * The tuner's own choice is taken and flagged. */
static void test_forced_algorithm_unavailable(void **state)
{
    (void)state;
    HwTopology *a = load_topo("topologies/hgx-a100-40gb.json");
    CollModel free_m, forced;
    coll_model_analytic_init(&free_m, a);
    CollShape sh = {IR_COLL_ALLREDUCE, 1 << 20, 8, 1, 8};
    CollChoice want, got;
    double t_free = free_m.time_s(&free_m, &sh, &want);
    assert_false(want.forced_unavailable);
    const int algos[] = {COLL_ALGO_NVLS, COLL_ALGO_NVLS_TREE, COLL_ALGO_TREE};
    for (size_t i = 0; i < G_N_ELEMENTS(algos); i++) {
        forced = free_m;
        forced.force_algo = algos[i];
        double t = forced.time_s(&forced, &sh, &got);
        assert_true(got.forced_unavailable);
        assert_true(got.latency_s > 0);
        assert_close(t, t_free, 1e-12);
        assert_int_equal(got.algo, want.algo);
    }
    /* the ring can always run, and forcing it is not flagged */
    forced = free_m;
    forced.force_algo = COLL_ALGO_RING;
    forced.time_s(&forced, &sh, &got);
    assert_false(got.forced_unavailable);
    hw_topology_free(a);
}

static void test_nvls(void **state)
{
    HwTopology *h = load_topo("topologies/hgx-h100-ndr400.json");
    HwTopology *a = load_topo("topologies/hgx-a100-40gb.json");
    assert_true(h->nvls && !a->nvls);
    CollModel m;
    coll_model_analytic_init(&m, h);
    CollChoice ch;
    CollShape big = {IR_COLL_ALLREDUCE, 1ULL << 34, 8, 1, 8};
    double s = m.time_s(&m, &big, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_NVLS);
    double algbw = 0.85 * h->gpu_link_Bps / (1 + 1.0 / 8);
    assert_close(s, ch.latency_s + (double)big.bytes / algbw, 1e-9);
    /* busbw above the NVLink bandwidth: the switch does part of the reduction */
    assert_true(ch.bus_Bps > h->gpu_link_Bps && ch.efficiency > 1);
    big.nodes = 2;
    big.nranks = 16;
    m.time_s(&m, &big, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_NVLS_TREE);
    /* two nodes: 8 channels at NCCL's measured per-channel cap (57.7 GB/s busbw), below what
     * the switch gives (0.85 * 370.8/9 * 7/8 * 2 = 61.3) and the NIC (2 * 50) */
    assert_close(ch.bus_Bps, 8 * 57.7e9, 1e-9);
    /* NCCL 2.26.2's tuner (the H100 table's release, 14 us per NVLSTree level) picks NVLSTree
     * at 1 MiB by its estimate, which leaves out the pipeline fill; the time returned includes
     * it, and is longer than the tree's */
    m.nccl_version = 22602;
    CollShape mid = {IR_COLL_ALLREDUCE, 1 << 20, 16, 2, 8};
    double nvlstree_s = m.time_s(&m, &mid, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_NVLS_TREE);
    m.force_algo = COLL_ALGO_TREE;
    double tree_s = m.time_s(&m, &mid, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_TREE);
    assert_true(nvlstree_s > tree_s);
    m.force_algo = -1;
    m.nccl_version = 0;
    CollShape ag = {IR_COLL_ALLGATHER, 1ULL << 34, 8, 1, 8};
    m.time_s(&m, &ag, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_RING);
    /* small messages: NVLS's 25 us round does not pay */
    CollShape small = {IR_COLL_ALLREDUCE, 4096, 8, 1, 8};
    m.time_s(&m, &small, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_RING);
    coll_model_analytic_init(&m, a);
    CollShape abig = {IR_COLL_ALLREDUCE, 1ULL << 34, 8, 1, 8};
    m.time_s(&m, &abig, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_RING);
    int algo;
    assert_true(coll_algo_parse("NVLSTree", &algo) && algo == COLL_ALGO_NVLS_TREE);
    hw_topology_free(h);
    hw_topology_free(a);
}

/* Across nodes NCCL caps LL's bus bandwidth by host CPU vendor, not by GPU (tuning.cc llMaxBws):
 * 39 GB/s with two nodes of Intel hosts (the H100 table's), 22.5 with AMD hosts; on one node by
 * GPU generation (141 on Hopper), over half the link (the ring's LL from 2.21, v2.21.5-1 l. 180) */
static void test_ll_ceiling_by_cpu(void **state)
{
    HwTopology *h = load_topo("topologies/hgx-h100-ndr400.json");
    CollModel m;
    coll_model_analytic_init(&m, h);
    m.force_algo = COLL_ALGO_RING;
    m.force_proto = COLL_PROTO_LL;
    CollChoice ch;
    CollShape two = {IR_COLL_ALLREDUCE, 1 << 20, 16, 2, 8};
    m.time_s(&m, &two, &ch);
    assert_close(ch.bus_Bps, 39.0e9, 1e-9);
    g_free(h->cpu);
    h->cpu = g_strdup("AMD EPYC 9654");
    h->cpu_amd = true; /* as the loader resolves it */
    m.time_s(&m, &two, &ch);
    assert_close(ch.bus_Bps, 22.5e9, 1e-9);
    CollShape one = {IR_COLL_ALLREDUCE, 1 << 20, 8, 1, 8};
    m.time_s(&m, &one, &ch);
    assert_close(ch.bus_Bps, MIN(141.0e9, h->gpu_link_Bps / 2), 1e-9);
    hw_topology_free(h);
}

/* A topology whose collectives are a point-to-point ring (fsdprun's, calibrated): every step pays
 * the topology's link latency, no GPU library latency and no LL protocol. */
static void test_p2p_ring_latencies(void **state)
{
    HwTopology *t = load_topo("topologies/hgx-a100-40gb.json");
    t->coll_lib = HW_COLL_P2P_RING;
    t->gpu_link_latency_s = 30e-6;
    t->net_latency_s = 200e-6;
    t->nic_latency_s = 230e-6;
    CollModel m;
    coll_model_analytic_init(&m, t);
    CollChoice ch;
    CollShape sh = {IR_COLL_ALLREDUCE, 8, 4, 2, 2}; /* 6 steps, 2 of them across nodes */
    double s = m.time_s(&m, &sh, &ch);
    assert_int_equal(ch.proto, COLL_PROTO_SIMPLE);
    assert_close(ch.latency_s, 4 * 30e-6 + 2 * 230e-6, 1e-12);
    assert_close(ch.efficiency, 1.0, 0);
    assert_true(s > ch.latency_s);
    CollShape ag = {IR_COLL_ALLGATHER, 8, 2, 1, 2}; /* one step inside the node */
    m.time_s(&m, &ag, &ch);
    assert_close(ch.latency_s, 30e-6, 1e-12);
    hw_topology_free(t);
}

/* nccl-tests -g G: one thread launches each op on G GPUs, so an op takes at least G launches. */
static void test_nccltests_launch_floor(void **state)
{
    HwTopology *t = load_topo("topologies/hgx-a100-40gb.json");
    double launch = t->gpu.launch_overhead_s;
    assert_close(coll_nccltests_op_s(t, 1e-6, 8), 8 * launch, 1e-15);
    assert_close(coll_nccltests_op_s(t, 1e-3, 8), 1e-3, 1e-15);
    assert_close(coll_nccltests_op_s(t, 20e-6, 1), 20e-6, 1e-15);
    hw_topology_free(t);
}

/* The topology's new keys reject bad values with a message naming the field. */
static void test_topology_keys(void **state)
{
    char *path = src_path("topologies/hgx-h100-ndr400.json");
    char *text = NULL;
    assert_true(g_file_get_contents(path, &text, NULL, NULL));
    const struct {
        const char *from, *to, *field;
    } cases[] = {
        {"\"nvls\": {\n      \"value\": 1", "\"nvls\": {\n      \"value\": 2", "nvls"},
        {"\"version\": 1,", "\"version\": 1, \"collectives\": \"mpi\",", "collectives"},
        /* a fraction of a node was taken as 2 */
        {"\"nodes_max\": {\n    \"value\": 2", "\"nodes_max\": {\n    \"value\": 2.5",
         "field 'nodes_max.value': expected a whole number"},
        /* nodes without NICs in a machine of several nodes ran over an invented NIC */
        {"\"nics\": {\n      \"value\": 8", "\"nics\": {\n      \"value\": 0",
         "field 'node.nics.value': 0 NICs per node, but nodes_max is 2"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        assert_non_null(strstr(text, cases[i].from));
        GString *bad = g_string_new(text);
        g_string_replace(bad, cases[i].from, cases[i].to, 1);
        char *file = NULL;
        int fd = g_file_open_tmp("topo-XXXXXX.json", &file, NULL);
        assert_true(fd >= 0);
        close(fd);
        assert_true(g_file_set_contents(file, bad->str, -1, NULL));
        GError *error = NULL;
        HwTopology *t = hw_topology_load(file, &error);
        assert_null(t);
        assert_non_null(strstr(error->message, cases[i].field));
        g_error_free(error);
        g_unlink(file);
        g_free(file);
        g_string_free(bad, TRUE);
    }
    /* absent keys: NCCL, no NVLS */
    HwTopology *a = load_topo("topologies/hgx-a100-40gb.json");
    assert_true(a->coll_lib == HW_COLL_NCCL && !a->nvls);
    hw_topology_free(a);
    g_free(text);
    g_free(path);
}

/* nccl-tests output as users paste it: comments, two sections, "N/A" in #wrong (-c 0), and an
 * out-of-place outlier that the in-place run does not have. */
static void expect_reference_error(const char *text, const char *op, int max, const char *needle)
{
    CollNcclTestsRow rows[4];
    GError *error = NULL;
    assert_int_equal(coll_nccltests_read("ref.txt", text, coll_test_find(op), rows, max, &error), -1);
    assert_non_null(error);
    if (!strstr(error->message, needle) || !strstr(error->message, "ref.txt:"))
        fail_msg("message \"%s\" should name ref.txt and \"%s\"", error->message, needle);
    g_error_free(error);
}

/* A user's reference table, read strictly: a size of inf or 1e30 became 0 B and a perfect
 * "+0.0 %" match; an allreduce table given with --op allgather was compared anyway. */
static void test_nccltests_read_strict(void **state)
{
    (void)state;
    const char *row = "  1024   256 float  sum   -1  30.0  0.03  0.06    0  31.0  0.03  0.06    0\n";
    CollNcclTestsRow rows[4];
    GError *error = NULL;
    assert_int_equal(coll_nccltests_read("ref.txt", row, coll_test_find("allreduce"), rows, 4, &error), 1);
    assert_null(error);
    assert_int_equal(rows[0].bytes, 1024);
    expect_reference_error("   inf   256 float  sum   -1  30.0  0.03  0.06    0  31.0  0.03  0.06  0\n",
                           "allreduce", 4, "ref.txt:1: field 'size'");
    expect_reference_error("# x\n  1e30  256 float  sum   -1  30.0  0.03  0.06    0  31.0  0.03  0.06  0\n",
                           "allreduce", 4, "ref.txt:2: field 'size': expected a whole number");
    expect_reference_error("  1024   256 float  sum   -1  nan  0.03  0.06    0  31.0  0.03  0.06  0\n",
                           "allreduce", 4, "field 'time'");
    expect_reference_error("  1024   256 float  sum   -1  30.0  0.03  -1    0  31.0  0.03  0.06  0\n",
                           "allreduce", 4, "field 'busbw'");
    expect_reference_error(row, "allgather", 4, "field 'redop'/'root'");
    expect_reference_error("  1024   256 float  none   -1  30.0  0.03  0.06    0  31.0  0.03  0.06  0\n",
                           "allreduce", 4, "expected a reduction");
    /* nccl-tests before 2.10: no root column, an error column; the time was read as 0.29 us */
    const char *old = "           4             1   float     sum    17.29    0.00    0.00  0e+00    17.15    0.00    0.00  1e-07\n";
    assert_int_equal(coll_nccltests_read("ref.txt", old, coll_test_find("allreduce"), rows, 4, &error), 1);
    assert_null(error);
    assert_int_equal(rows[0].bytes, 4);
    assert_float_equal(rows[0].time_s, 17.15e-6, 1e-12);
    assert_int_equal(coll_nccltests_parse(old, NULL, NULL, rows, 4), 1);
    assert_float_equal(rows[0].time_s, 17.15e-6, 1e-12);
    expect_reference_error("  1024   256 float  sum   -1  abc  0.03  0.06    0  31.0  0.03  0.06  0\n",
                           "allreduce", 4, "field 'time': expected a time in us in (0, 1e9], got \"abc\"");
    expect_reference_error("  2048   512 float  sum   -1  30.0  0.03  0.06    0  31.0  0.03  0.06  0\n"
                           "  1024   256 float  sum   -1  30.0  0.03  0.06    0  31.0  0.03  0.06  0\n",
                           "allreduce", 4, "ref.txt:2: field 'size': 1024 B after 2048 B");
    expect_reference_error("# Collective test starting: all_reduce_perf\n", "allgather", 4,
                           "expected all_gather_perf's (option --op allgather)");
    expect_reference_error("  1024   256 float  sum   -1  30.0  0.03  0.06    0  31.0  0.03  0.06  0\n"
                           "  2048   512 float  sum   -1  30.0  0.03  0.06    0  31.0  0.03  0.06  0\n",
                           "allreduce", 1, "at most 1 result rows");
}

static void test_nccltests_parse(void **state)
{
    (void)state;
    const char *text =
        "=== (A)\n"
        "#  size count type redop root time algbw busbw #wrong time algbw busbw #wrong\n"
        "   256    64 float  sum   -1  94.0  0.00  0.01  N/A  26.0  0.01  0.02  N/A\n"
        "  1024   256 float  sum   -1  30.0  0.03  0.06    0  31.0  0.03  0.06    0\n"
        "# Avg bus bandwidth : 0.03\n"
        "=== (B)\n"
        "  2048   512 float  sum   -1  40.0  0.05  0.09    0  41.0  0.05  0.09    0\n";
    CollNcclTestsRow rows[8];
    assert_int_equal(coll_nccltests_parse(text, NULL, NULL, rows, 8), 3);
    assert_int_equal(coll_nccltests_parse(text, "=== (A)", "=== (B)", rows, 8), 2);
    assert_int_equal(rows[0].bytes, 256);
    assert_float_equal(rows[0].time_s, 26.0e-6, 1e-12); /* the faster, in-place run */
    assert_float_equal(rows[0].busbw_GBps, 0.02, 1e-12);
    assert_float_equal(rows[1].time_s, 30.0e-6, 1e-12);
    assert_int_equal(coll_nccltests_parse(text, "=== (B)", NULL, rows, 8), 1);
    assert_int_equal(rows[0].bytes, 2048);
    assert_int_equal(coll_nccltests_parse(text, NULL, NULL, rows, 2), 2); /* at most max */
    assert_int_equal(coll_nccltests_parse("no table here\n", NULL, NULL, rows, 8), 0);
    /* nccl-tests before 2.10 (ABCI, CoreWeave): no root column, an error column; and a table of
     * the out-of-place columns only, in either layout */
    const char *old_layout =
        "#  size count type redop time algbw busbw error time algbw busbw error\n"
        "    4    1 float  sum  17.29  0.00  0.00  0e+00  17.15  0.00  0.00  1e-07\n"
        " 4096 1024 float  sum  25.78  0.16  0.28  2e-07\n"
        " 8192 2048 float  sum    -1  26.00  0.31  0.54  N/A\n";
    assert_int_equal(coll_nccltests_parse(old_layout, NULL, NULL, rows, 8), 3);
    assert_int_equal(rows[0].bytes, 4);
    assert_float_equal(rows[0].time_s, 17.15e-6, 1e-12);
    assert_float_equal(rows[0].out_of_place_s, 17.29e-6, 1e-12);
    assert_float_equal(rows[0].in_place_s, 17.15e-6, 1e-12);
    assert_float_equal(rows[1].time_s, 25.78e-6, 1e-12);
    assert_float_equal(rows[1].busbw_GBps, 0.28, 1e-12);
    assert_int_equal(rows[2].bytes, 8192);
    assert_float_equal(rows[2].time_s, 26.0e-6, 1e-12);
}

/* One nccl-tests all_reduce_perf table of ../shared/data/nccl-tests (the section between the
 * `from` and `to` markers, NULL for the whole file), read in place, against `fsdpsim collective`
 * on the matching topology: the same engine and flow model, and nccl-tests' loop of
 * back-to-back ops with `gpus_per_thread` GPUs per host thread (its -g), under the NCCL release
 * the table's source states (`nccl_version`, 0: not stated, the newest). */
typedef struct {
    int n;
    double size[64], err[64]; /* error of simulated busbw: + means the simulation is too fast */
} Table;

static bool table_load(Table *tb, const char *file, const char *from, const char *to,
                       const char *topo_file, int nodes, int gpn, int gpus_per_thread,
                       int nccl_version)
{
    char *path = src_path(file);
    char *text = NULL;
    bool found = g_file_get_contents(path, &text, NULL, NULL);
    g_free(path);
    if (!found)
        return false;
    HwTopology *t = load_topo(topo_file);
    CollModel m;
    coll_model_analytic_init(&m, t);
    m.nccl_version = nccl_version;
    NetTopo *net = net_topo_new(t, nodes, gpn);
    CollNcclTestsRow rows[64];
    int n_rows = coll_nccltests_parse(text, from, to, rows, 64);
    int n = nodes * gpn;
    tb->n = 0;
    printf("# %s%s%s, %d x %d GPUs, %d per thread: size, measured busbw, simulated, error\n", file,
           from ? " " : "", from ? from : "", nodes, gpn, gpus_per_thread);
    for (int r = 0; r < n_rows; r++) {
        double size = (double)rows[r].bytes;
        double sim_s;
        GError *error = NULL;
        if (!sim_collective_s(t, &m, net, nodes, gpn, IR_COLL_ALLREDUCE, HW_DTYPE_FP32,
                              rows[r].bytes, &sim_s, &error))
            fail_msg("%s", error->message);
        sim_s = coll_nccltests_op_s(t, sim_s, gpus_per_thread);
        /* busbw is size / time times one factor: its error is the ratio of the times (the
         * printed busbw of small sizes is rounded to 0.00) */
        double err = rows[r].time_s / sim_s - 1;
        double sim_busbw = size / sim_s * coll_busbw_factor(IR_COLL_ALLREDUCE, n) / 1e9;
        printf("# %12.0f %8.2f %8.2f %+6.1f%%\n", size, rows[r].busbw_GBps, sim_busbw, 100 * err);
        tb->size[tb->n] = size;
        tb->err[tb->n++] = err;
    }
    g_free(text);
    net_topo_free(net);
    hw_topology_free(t);
    return true;
}

/* Worst |error| over sizes in [lo, hi]; fails when no row is in range. */
static double table_worst(const Table *tb, double lo, double hi)
{
    double worst = 0;
    int rows = 0;
    for (int i = 0; i < tb->n; i++) {
        if (tb->size[i] >= lo && tb->size[i] <= hi) {
            worst = MAX(worst, fabs(tb->err[i]));
            rows++;
        }
    }
    assert_true(rows >= 2);
    return worst;
}

static void check_range(const Table *tb, double lo, double hi, double bound, const char *why)
{
    double worst = table_worst(tb, lo, hi);
    printf("# sizes %.0f..%.0f: worst |error| %.1f%% (bound %.0f%%%s%s)\n", lo, hi, 100 * worst,
           100 * bound, why ? ": " : "", why ? why : "");
    if (worst > bound)
        fail_msg("worst busbw error %.1f%% above %.0f%% for sizes %.0f..%.0f B", 100 * worst,
                 100 * bound, lo, hi);
}

#define MiB (1024.0 * 1024.0)
#define TOP 1e12
#define A100_FILE "../shared/data/nccl-tests/a100-sxm4-40gb_1node-8gpu_and_2node-roce.txt"
#define H100_FILE "../shared/data/nccl-tests/h100_2node-16gpu_ndr400.txt"

/* Issue 3 asks for 10 % from 1 MiB up and 25 % below. Where the model meets that the test asserts
 * it; elsewhere it asserts the bound the model reaches today, as a regression guard, and README
 * ("How far to trust it") says why. */

/* One HGX A100 node, nccl-tests -g 8: one thread launches each op on all 8 GPUs. */
static void test_a100_one_node_table(void **state)
{
    Table tb;
    if (!table_load(&tb, A100_FILE, "=== (A)", "=== (B)", "topologies/hgx-a100-40gb.json", 1, 8, 8, 0))
        skip();
    check_range(&tb, 0, 32 * 1024, 0.25, NULL);
    check_range(&tb, 64 * 1024, 512 * 1024, 0.85, "LL slower than NCCL's model");
    /* 1.15: NCCL's ring LL at half the link from 2.21 (v2.21.5-1 l. 180; 1 was with a quarter) */
    check_range(&tb, 1 * MiB, 32 * MiB, 1.15, "protocol switch and per-step costs");
    check_range(&tb, 64 * MiB, TOP, 0.16, NULL);
    check_range(&tb, 256 * MiB, TOP, 0.10, NULL);
}

/* Two HGX H100 nodes over NDR400, one GPU per process (-g 1), NCCL 2.26.2 (its source); NCCL
 * used NVLS/NVLSTree. */
static void test_h100_two_node_table(void **state)
{
    Table tb;
    if (!table_load(&tb, H100_FILE, NULL, NULL, "topologies/hgx-h100-ndr400.json", 2, 8, 1,
                    22602))
        skip();
    check_range(&tb, 0, 512 * 1024, 0.35, "LL slower than NCCL's model at 256-512 KiB");
    check_range(&tb, 1 * MiB, TOP, 0.16, "NVLSTree's pipeline fill at 4-8 MiB");
    check_range(&tb, 16 * MiB, TOP, 0.10, NULL);
}

/* Two A100 nodes over RoCE: the source calls the run irregular (busbw falls to 21-37 GB/s
 * between 16 and 256 MiB, then 71.6 at 8 GiB); printed for the record, asserted only loosely on
 * the plateau. The model stripes each GPU's channels over its two 12 GB/s ports as NCCL does
 * and runs a two-node tree there (206 GB/s busbw); the run reached less than what even a ring
 * with one port per GPU gives (96 GB/s), so the bound says only that the simulation is within
 * 3.2x. */
static void test_a100_two_node_roce_table(void **state)
{
    Table tb;
    if (!table_load(&tb, A100_FILE, "=== (B)", NULL, "topologies/hgx-a100-40gb.json", 2, 8, 1, 0))
        skip();
    check_range(&tb, 1024 * MiB, TOP, 2.2, "irregular run, below one port per GPU");
}

/* A topology file with `from` replaced by `to`, loaded (NULL and the error on failure). */
static HwTopology *load_edited(const char *file, const char *from, const char *to, GError **error)
{
    char *path = src_path(file), *text = NULL, *tmp = NULL;
    assert_true(g_file_get_contents(path, &text, NULL, NULL));
    assert_non_null(strstr(text, from));
    GString *edited = g_string_new(text);
    g_string_replace(edited, from, to, 1);
    int fd = g_file_open_tmp("topo-XXXXXX.json", &tmp, NULL);
    assert_true(fd >= 0);
    close(fd);
    assert_true(g_file_set_contents(tmp, edited->str, -1, NULL));
    HwTopology *t = hw_topology_load(tmp, error);
    g_unlink(tmp);
    g_free(tmp);
    g_string_free(edited, TRUE);
    g_free(text);
    g_free(path);
    return t;
}

/* Striping: with two NICs per GPU (OCI's 16 ports for 8 A100), NCCL spreads each GPU's channels
 * over both, so a large ring across two nodes runs at twice the bandwidth it has when each GPU
 * is held to one NIC (nics_per_gpu 1), through the engine and the flow model alike. */
static void test_nic_striping(void **state)
{
    (void)state;
    HwTopology *two = load_topo("topologies/hgx-a100-40gb.json");
    GError *error = NULL;
    HwTopology *one = load_edited("topologies/hgx-a100-40gb.json", "\"nics_per_gpu\": {\n      \"value\": 2",
                                  "\"nics_per_gpu\": {\n      \"value\": 1", &error);
    assert_non_null(one);
    assert_true(two->nics_per_rail == 2 && two->nic_ports_per_node == 16 && two->nics_per_node == 8);
    assert_true(one->nics_per_rail == 1 && one->nics_per_node == 16);
    double t[2];
    HwTopology *topo[2] = {one, two};
    for (int i = 0; i < 2; i++) {
        CollModel m;
        coll_model_analytic_init(&m, topo[i]);
        m.force_algo = COLL_ALGO_RING;
        m.force_proto = COLL_PROTO_SIMPLE;
        NetTopo *net = net_topo_new(topo[i], 2, 8);
        assert_true(sim_collective_s(topo[i], &m, net, 2, 8, IR_COLL_ALLREDUCE, HW_DTYPE_FP32,
                                     1ULL << 33, &t[i], &error));
        net_topo_free(net);
    }
    /* bandwidth-bound at 8 GiB: 16 x 12 GB/s against 8 x 12 (NVLink's 240 is not the limit) */
    assert_close(t[0] / t[1], 2.0, 0.01);
    /* a GPU with one NIC of four (p5: 32 EFA for 8 H100) stripes over four */
    HwTopology *p5 = load_topo("topologies/aws-p5.json");
    assert_true(p5->nics_per_rail == 4 && p5->nics_per_node == 8);
    assert_close(p5->nic_Bps, 4 * 12e9, 1e-9);
    /* more than the node has per GPU is refused */
    HwTopology *bad = load_edited("topologies/hgx-a100-40gb.json", "\"nics_per_gpu\": {\n      \"value\": 2",
                                  "\"nics_per_gpu\": {\n      \"value\": 3", &error);
    assert_null(bad);
    assert_non_null(strstr(error->message, "nics_per_gpu"));
    g_error_free(error);
    hw_topology_free(p5);
    hw_topology_free(one);
    hw_topology_free(two);
}

/* A channel cap (node.net_channel_GBps: Jean Zay's Omni-Path without GPUDirect RDMA, 2.53 GB/s
 * per channel, net_channels 2): a ring across nodes moves net_channels x cap, not its NICs' 4 x
 * 12 GB/s, in the analytic model and the flow model alike, and so does a tree on two nodes and
 * on four; a send to another node moves NCCL's channels per network peer x cap, one channel up
 * to NCCL 2.11 and two from 2.12; all-to-all is not capped. With the cap raised above the NICs,
 * the NICs bind again. */
static void test_net_channel_cap(void **state)
{
    (void)state;
    GError *error = NULL;
    HwTopology *jz = load_topo("topologies/jean-zay-a100-80gb.json");
    HwTopology *uncapped = load_edited("topologies/jean-zay-a100-80gb.json",
                                   "\"net_channel_GBps\": {\n      \"value\": 2.53",
                                   "\"net_channel_GBps\": {\n      \"value\": 1000", &error);
    assert_non_null(uncapped);
    assert_close(jz->net_channel_Bps, 2.53e9, 1e-12);
    assert_int_equal(jz->net_channels, 2);
    assert_int_equal(jz->nccl_channels, 24); /* the SMs NCCL holds: not the cap's count */
    HwTopology *topo[2] = {jz, uncapped};
    double t[2];
    for (int i = 0; i < 2; i++) {
        CollModel m;
        coll_model_analytic_init(&m, topo[i]);
        m.force_algo = COLL_ALGO_RING;
        m.force_proto = COLL_PROTO_SIMPLE;
        CollChoice ch;
        CollShape ring = {IR_COLL_ALLREDUCE, 4000000000ULL, 32, 4, 8};
        m.time_s(&m, &ring, &ch);
        assert_close(ch.bus_Bps, i == 0 ? 2 * 2.53e9 : 4 * topo[i]->nic_Bps, 1e-12);
        NetTopo *net = net_topo_new(topo[i], 4, 8);
        assert_true(sim_collective_s(topo[i], &m, net, 4, 8, IR_COLL_ALLREDUCE, HW_DTYPE_FP32,
                                     4000000000ULL, &t[i], &error));
        net_topo_free(net);
    }
    /* the measurement the cap comes from: 4 GB in 1.53 s (busbw 5.07 GB/s) */
    double bus = 4e9 / t[0] * 2 * 31 / 32;
    assert_close(bus, 2 * 2.53e9, 0.01);
    assert_true(t[0] > 4 * t[1]); /* the NICs allow 48 GB/s, the channels 5.06 */
    /* the tree (NCCL's choice at 4 GiB on two nodes) in the flow model at the analytic model's
     * rate, two nodes and four: its loads cross each node's NICs twice */
    for (int nodes = 2; nodes <= 4; nodes += 2) {
        CollModel mt;
        coll_model_analytic_init(&mt, jz);
        mt.force_algo = COLL_ALGO_TREE;
        mt.force_proto = COLL_PROTO_SIMPLE;
        CollChoice ch;
        CollShape tree = {IR_COLL_ALLREDUCE, 1ULL << 32, 8 * nodes, nodes, 8};
        double analytic = mt.time_s(&mt, &tree, &ch), flow;
        assert_int_equal(ch.algo, COLL_ALGO_TREE);
        NetTopo *net = net_topo_new(jz, nodes, 8);
        assert_true(sim_collective_s(jz, &mt, net, nodes, 8, IR_COLL_ALLREDUCE, HW_DTYPE_FP32,
                                     1ULL << 32, &flow, &error));
        net_topo_free(net);
        assert_close(flow, analytic, 0.01);
    }
    CollModel m;
    coll_model_analytic_init(&m, jz);
    double lat = m.p2p_s(&m, 0, false);
    m.nccl_version = 21003;
    assert_close(m.p2p_s(&m, 1000000000ULL, false) - lat, 1e9 / 2.53e9, 1e-9);
    m.nccl_version = 21200;
    assert_close(m.p2p_s(&m, 1000000000ULL, false) - lat, 1e9 / (2 * 2.53e9), 1e-9);
    assert_int_equal(coll_net_peer_channels(jz, 22003), 2); /* MAX(2, its 1 NIC), <= 2 */
    /* all-to-all: a send and a receive per peer, each on its own channels: not capped */
    CollChoice ch;
    CollShape a2a = {IR_COLL_ALLTOALL, 1ULL << 30, 32, 4, 8};
    m.time_s(&m, &a2a, &ch);
    assert_close(ch.bus_Bps, 4 * jz->nic_Bps, 1e-12);
    /* inside the node NVLink, no cap */
    assert_close(m.p2p_s(&m, 1000000000ULL, true) - m.p2p_s(&m, 0, true), 1e9 / jz->gpu_link_Bps,
                 1e-9);
    hw_topology_free(uncapped);
    hw_topology_free(jz);
}

/* PAT (NCCL 2.23 on): all-gather and reduce-scatter with one GPU per node, where NCCL's tuner
 * estimate is lowest: at mid sizes on 16 JUSUF nodes (its latency grows 2.8 us per rank where the
 * ring's grows 14 us per node), never for all-reduce, never with more than one GPU per node, and
 * not for large sizes (0.75 of the NIC against the ring's (n-1)/n). */
static void test_pat(void **state)
{
    (void)state;
    HwTopology *t = load_topo("topologies/jusuf.json");
    CollModel m;
    coll_model_analytic_init(&m, t);
    CollChoice ch;
    CollShape ag = {IR_COLL_ALLGATHER, 1 << 20, 16, 16, 1};
    double s = m.time_s(&m, &ag, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_PAT);
    assert_int_equal(ch.proto, COLL_PROTO_SIMPLE);
    /* NCCL's estimate: 8 + log2(16) x 14 / 3.5 + 2.8 x 16 us, and the array at 0.75 of the NIC */
    assert_close(ch.latency_s, (8 + 4 * 14 / 3.5 + 2.8 * 16) * 1e-6, 1e-12);
    assert_close(s, ch.latency_s + (double)ag.bytes / (0.75 * t->nic_Bps), 1e-12);
    CollShape rs = ag;
    rs.kind = IR_COLL_REDUCE_SCATTER;
    m.time_s(&m, &rs, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_PAT);
    CollShape big = ag;
    big.bytes = 1ULL << 30;
    m.time_s(&m, &big, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_RING);
    CollShape ar = ag;
    ar.kind = IR_COLL_ALLREDUCE;
    m.time_s(&m, &ar, &ch);
    assert_true(ch.algo != COLL_ALGO_PAT);
    hw_topology_free(t);
    /* JUWELS Booster, 4 GPUs per node: never; one GPU of each of 16 nodes (hybrid's replicas): yes */
    t = load_topo("topologies/juwels-booster.json");
    coll_model_analytic_init(&m, t);
    CollShape full = {IR_COLL_ALLGATHER, 1 << 20, 64, 16, 4};
    m.time_s(&m, &full, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_RING);
    m.time_s(&m, &ag, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_PAT);
    /* forced, like NCCL_ALGO=PAT, where it cannot run: flagged */
    m.force_algo = COLL_ALGO_PAT;
    m.time_s(&m, &full, &ch);
    assert_true(ch.forced_unavailable);
    int algo;
    assert_true(coll_algo_parse("PAT", &algo) && algo == COLL_ALGO_PAT);
    hw_topology_free(t);
}

/* Across two nodes the double binary tree is one edge: each node sends the message once over its
 * NICs, so the tree's algorithm bandwidth is the NICs' (times the protocol's 0.92), twice what it
 * is with more nodes; the engine with the flow model gives the analytic time. Measured (Alps,
 * 2 x 4 GH200, 4 x 200 Gb/s: 153 GB/s busbw at 4 GiB) above what a ring over those NICs carries
 * (96 GB/s). */
static void test_two_node_tree(void **state)
{
    (void)state;
    HwTopology *t = load_topo("topologies/alps-gh200.json");
    CollModel m;
    coll_model_analytic_init(&m, t);
    m.force_algo = COLL_ALGO_TREE;
    m.force_proto = COLL_PROTO_SIMPLE;
    CollChoice ch;
    double nics = 4 * t->nic_Bps;
    CollShape two = {IR_COLL_ALLREDUCE, 1ULL << 32, 8, 2, 4};
    double s2 = m.time_s(&m, &two, &ch);
    assert_close(s2, ch.latency_s + (double)two.bytes / (0.92 * nics), 1e-9);
    CollShape four = {IR_COLL_ALLREDUCE, 1ULL << 32, 16, 4, 4};
    double s4 = m.time_s(&m, &four, &ch);
    assert_close(s4, ch.latency_s + (double)four.bytes / (0.5 * 0.92 * nics), 1e-9);
    /* the engine and flow model agree with the analytic time, for two nodes as for four */
    GError *error = NULL;
    const CollShape *shapes[2] = {&two, &four};
    double analytic[2] = {s2, s4};
    for (int i = 0; i < 2; i++) {
        NetTopo *net = net_topo_new(t, shapes[i]->nodes, 4);
        double sim_s;
        assert_true(sim_collective_s(t, &m, net, shapes[i]->nodes, 4, IR_COLL_ALLREDUCE,
                                     HW_DTYPE_FP32, shapes[i]->bytes, &sim_s, &error));
        assert_close(sim_s, analytic[i], 1e-6 * analytic[i]);
        net_topo_free(net);
    }
    /* NCCL's choice at 4 GiB on two nodes: the tree, faster than a ring over the same NICs */
    m.force_algo = m.force_proto = -1;
    m.time_s(&m, &two, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_TREE);
    hw_topology_free(t);
}

/* nccl-tests' sendrecv (each rank to the next, from the previous, at once): inside a node each
 * transfer has its GPU's NVLink, so 1 GiB takes bytes / gpu_link_Bps plus a latency; across two
 * nodes of one GPU the two transfers cross the NICs and go at nic_Bps. busbw = algbw. The
 * simulated table reads back as its own reference with no error. */
static void test_sendrecv(void **state)
{
    (void)state;
    HwTopology *t = load_topo("topologies/juwels-booster.json");
    CollModel m;
    coll_model_analytic_init(&m, t);
    GError *error = NULL;
    double s = 0;
    uint64_t bytes = 1ULL << 30;
    NetTopo *net = net_topo_new(t, 1, 4);
    assert_true(sim_sendrecv_s(t, &m, net, 1, 4, bytes, &s, &error));
    net_topo_free(net);
    assert_close(s, (double)bytes / t->gpu_link_Bps, 0.01);
    net = net_topo_new(t, 2, 1);
    assert_true(sim_sendrecv_s(t, &m, net, 2, 1, bytes, &s, &error));
    net_topo_free(net);
    assert_close(s, (double)bytes / t->nic_Bps, 0.01);
    const CollTest *sr = coll_test_find("sendrecv");
    assert_non_null(sr);
    assert_true(sr->kind == IR_COLL_KIND_COUNT && sr->reduces && !sr->rooted);
    assert_float_equal(coll_test_busbw_factor(sr, 8), 1, 0);
    assert_float_equal(coll_test_busbw_factor(coll_test_find("allgather"), 8), 7.0 / 8, 1e-15);
    assert_null(coll_test_find("allsum"));
    /* fsdpsim collective's rows: nccl-tests' 13 columns and NCCL's choice */
    const char *own = "  1048576  262144  float  sum  -1  59.61  17.59  30.79  N/A  59.61  17.59  "
                      "30.79  N/A  tree  LL128\n  2097152  524288  float  sum  -1  80.7  26.0  "
                      "45.5  N/A  80.7  26.0  45.5  N/A  p2p  Simple\n";
    CollNcclTestsRow rows[4];
    assert_int_equal(coll_nccltests_read("own.txt", own, coll_test_find("allreduce"), rows, 4,
                                         &error),
                     2);
    assert_float_equal(rows[0].time_s, 59.61e-6, 1e-12);
    hw_topology_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_busbw_factors),
        cmocka_unit_test(test_large_ring_is_bandwidth_bound),
        cmocka_unit_test(test_inter_node_bandwidth_is_the_nics),
        cmocka_unit_test(test_nvls),
        cmocka_unit_test(test_topology_keys),
        cmocka_unit_test(test_ll_ceiling_by_cpu),
        cmocka_unit_test(test_p2p_ring_latencies),
        cmocka_unit_test(test_nccltests_launch_floor),
        cmocka_unit_test(test_nccltests_parse),
        cmocka_unit_test(test_nccltests_read_strict),
        cmocka_unit_test(test_forced_algorithm_unavailable),
        cmocka_unit_test(test_a100_one_node_table),
        cmocka_unit_test(test_h100_two_node_table),
        cmocka_unit_test(test_a100_two_node_roce_table),
        cmocka_unit_test(test_nic_striping),
        cmocka_unit_test(test_pat),
        cmocka_unit_test(test_net_channel_cap),
        cmocka_unit_test(test_two_node_tree),
        cmocka_unit_test(test_sendrecv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
