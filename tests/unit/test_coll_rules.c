/* coll rules: when NCCL enables LL128 (the GPU-NIC path, the GPU generation and the NCCL
 * release; src/coll/coll.c coll_ll128_enabled), the topology key that says the path
 * (node.gpu_nic_path), nccl-tests' rooted and gathered benchmarks (reduce, gather, scatter), and
 * NCCL 2.8's tuner for releases before 2.10 (src/coll/nccl28.c), 2.12-2.20's own tables
 * (src/coll/nccl_tables.c). */
#include "testutil.h"

#include <unistd.h>

/* A topology file with `from` replaced by `to` (the first occurrence); NULL on a load error,
 * whose message is then returned in *message. */
static HwTopology *load_edited(const char *file, const char *from, const char *to, char **message)
{
    char *path = src_path(file);
    char *text = NULL;
    assert_true(g_file_get_contents(path, &text, NULL, NULL));
    assert_non_null(strstr(text, from));
    GString *edited = g_string_new(text);
    g_string_replace(edited, from, to, 1);
    char *tmp = NULL;
    int fd = g_file_open_tmp("topo-XXXXXX.json", &tmp, NULL);
    assert_true(fd >= 0);
    close(fd);
    assert_true(g_file_set_contents(tmp, edited->str, -1, NULL));
    GError *error = NULL;
    HwTopology *t = hw_topology_load(tmp, &error);
    if (!t) {
        *message = g_strdup(error->message);
        g_error_free(error);
    }
    g_unlink(tmp);
    g_free(tmp);
    g_string_free(edited, TRUE);
    g_free(text);
    g_free(path);
    return t;
}

static void test_nccl_version_parse(void **state)
{
    (void)state;
    int v = 0;
    assert_true(coll_nccl_version_parse("2.23.4", &v) && v == 22304);
    assert_true(coll_nccl_version_parse("2.23.4-1", &v) && v == 22304);
    assert_true(coll_nccl_version_parse("2.8", &v) && v == 20800);
    assert_false(coll_nccl_version_parse("3.1.0", &v));
    assert_false(coll_nccl_version_parse("2", &v));
    assert_false(coll_nccl_version_parse("2.23.4x", &v));
    assert_false(coll_nccl_version_parse("2.100.0", &v));
    assert_false(coll_nccl_version_parse("2.23x", &v));
    assert_false(coll_nccl_version_parse("2.23.4-junk", &v));
    assert_false(coll_nccl_version_parse(" 2.23", &v));
    assert_false(coll_nccl_version_parse("2.+3", &v));
}

/* NCCL's LL128 rule, one condition at a time (tuning.cc of each release). */
static void test_ll128_rule(void **state)
{
    (void)state;
    HwTopology *gh = load_topo("topologies/alps-gh200.json");
    assert_int_equal(gh->gpu_nic_path, HW_GPU_NIC_C2C);
    CollModel m;
    coll_model_analytic_init(&m, gh);
    CollShape across = {IR_COLL_ALLREDUCE, 4 << 20, 16, 4, 4};
    CollShape one = {IR_COLL_ALLREDUCE, 4 << 20, 4, 1, 4};
    /* GH200 across nodes: the path is PHB to NCCL 2.23 (off), P2C from 2.27 (on) */
    m.nccl_version = 22304;
    assert_false(coll_ll128_enabled(&m, &across));
    assert_true(coll_ll128_enabled(&m, &one)); /* no network graph inside one node */
    m.nccl_version = 22603;
    assert_false(coll_ll128_enabled(&m, &across));
    m.nccl_version = 22700;
    assert_true(coll_ll128_enabled(&m, &across));
    m.nccl_version = 0; /* the newest modelled, 2.30.7 */
    assert_true(coll_ll128_enabled(&m, &across));
    /* Hopper before 2.15: not even inside a node; from 2.15.1 inside it */
    m.nccl_version = 21403;
    assert_false(coll_ll128_enabled(&m, &one));
    m.nccl_version = 21501;
    assert_true(coll_ll128_enabled(&m, &one));
    hw_topology_free(gh);

    /* the same node with its NIC behind the GPU's PCIe switch (PXB) keeps LL128 in 2.23; behind
     * the host bridge (PHB) or the other socket (SYS) it has none in any release */
    char *msg = NULL;
    const char *key = "\"value\": \"c2c\"";
    const struct {
        const char *value;
        bool on;
    } paths[] = {{"\"value\": \"pix\"", true},
                 {"\"value\": \"pxb\"", true},
                 {"\"value\": \"PHB\"", false},
                 {"\"value\": \"sys\"", false}};
    for (size_t i = 0; i < G_N_ELEMENTS(paths); i++) {
        HwTopology *t = load_edited("topologies/alps-gh200.json", key, paths[i].value, &msg);
        assert_non_null(t);
        coll_model_analytic_init(&m, t);
        for (int v = 0; v < 2; v++) {
            m.nccl_version = v ? 22304 : 0;
            assert_true(coll_ll128_enabled(&m, &across) == paths[i].on);
        }
        hw_topology_free(t);
    }

    /* A100 (NCCL 2.8's Ampere) behind the NIC's own PCIe switch (PIX), so LL128 across nodes */
    HwTopology *a = load_topo("topologies/abci-a100.json");
    assert_int_equal(a->gpu_nic_path, HW_GPU_NIC_PIX);
    coll_model_analytic_init(&m, a);
    m.nccl_version = 20804;
    CollShape a16 = {IR_COLL_ALLREDUCE, 4 << 20, 16, 2, 8};
    assert_true(coll_ll128_enabled(&m, &a16));
    hw_topology_free(a);

    /* GPUs that reach each other over PCIe only (typeIntra beyond NVB): never, one GPU per
     * node excepted (no intra-node graph) */
    HwTopology *p = load_edited("topologies/hgx-a100-40gb.json", "\"gpu_link\": \"nvlink3\"",
                                "\"gpu_link\": \"pcie4\"", &msg);
    assert_non_null(p);
    coll_model_analytic_init(&m, p);
    CollShape pn = {IR_COLL_ALLREDUCE, 4 << 20, 8, 1, 8};
    CollShape p1 = {IR_COLL_ALLREDUCE, 4 << 20, 2, 2, 1};
    assert_false(coll_ll128_enabled(&m, &pn));
    assert_true(coll_ll128_enabled(&m, &p1));
    hw_topology_free(p);
}

/* The GPU generation NCCL's rules key on: the topology's compute_capability, else the product
 * family's; an unknown GPU without the key is refused, not given Ampere's rules. */
static void test_compute_capability(void **state)
{
    (void)state;
    const char *files[] = {"topologies/abci-v100.json", "topologies/hgx-a100-40gb.json",
                           "topologies/alps-gh200.json", "topologies/hgx-h200.json"};
    const int cc[] = {70, 80, 90, 90};
    for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
        HwTopology *t = load_topo(files[i]);
        assert_int_equal(t->gpu.compute_capability, cc[i]);
        hw_topology_free(t);
    }
    const char *name = "\"name\": \"NVIDIA A100-SXM4-40GB\",";
    char *msg = NULL;
    HwTopology *t = load_edited("topologies/hgx-a100-40gb.json", name,
                                "\"name\": \"NVIDIA Foo 9000\",", &msg);
    assert_null(t);
    assert_non_null(strstr(msg, "compute_capability"));
    assert_non_null(strstr(msg, "Foo 9000"));
    g_free(msg);
    msg = NULL;
    /* a family's name matches as a whole word only: an RTX A1000 (8.6) is no A100 */
    t = load_edited("topologies/hgx-a100-40gb.json", name, "\"name\": \"NVIDIA RTX A1000\",", &msg);
    assert_null(t);
    assert_non_null(strstr(msg, "compute_capability"));
    g_free(msg);
    msg = NULL;

    /* an A40-class part (8.6): LL128 only from NCCL 2.27, whose rule admits any GPU from Volta;
     * before, the release lists 7.0, 8.0, 9.0 (and 10.0) and nothing else */
    t = load_edited("topologies/hgx-a100-40gb.json", name,
                    "\"name\": \"NVIDIA Foo 9000\", \"compute_capability\": {\"value\": 8.6, "
                    "\"source\": \"test\"},",
                    &msg);
    assert_non_null(t);
    assert_int_equal(t->gpu.compute_capability, 86);
    CollModel m;
    coll_model_analytic_init(&m, t);
    CollShape one = {IR_COLL_ALLREDUCE, 4 << 20, 8, 1, 8};
    m.nccl_version = 22304;
    assert_false(coll_ll128_enabled(&m, &one));
    m.nccl_version = 22703;
    assert_true(coll_ll128_enabled(&m, &one));
    hw_topology_free(t);

    /* Blackwell by name: LL128 from 2.25.1 ("case 100") */
    t = load_edited("topologies/hgx-h200.json", "\"name\": \"NVIDIA H200 SXM 141GB HBM3e\"",
                    "\"name\": \"NVIDIA B200\"", &msg);
    assert_non_null(t);
    assert_int_equal(t->gpu.compute_capability, 100);
    coll_model_analytic_init(&m, t);
    m.nccl_version = 22403;
    assert_false(coll_ll128_enabled(&m, &one));
    m.nccl_version = 22501;
    assert_true(coll_ll128_enabled(&m, &one));
    hw_topology_free(t);
}

/* NCCL's LL ceiling on one node for an H100, release by release (tuning.cc llMaxBws): up to 2.14
 * the table has no Hopper row and an H100 gets Volta's 39 GB/s; from 2.15.1 to 2.20.5 the Hopper
 * row holds Ampere's 87.7; from 2.21.5 it is 141. A forced ring LL all-reduce runs at the lower
 * of the ceiling and a quarter of the link, half of it from 2.21 (v2.21.5-1 l. 180). */
static void test_arch_row_by_release(void **state)
{
    (void)state;
    HwTopology *h = load_topo("topologies/hgx-h100-ndr400.json");
    CollModel m;
    coll_model_analytic_init(&m, h);
    assert_true(coll_algo_parse("ring", &m.force_algo));
    assert_true(coll_proto_parse("LL", &m.force_proto));
    CollShape one = {IR_COLL_ALLREDUCE, 64 << 20, 8, 1, 8};
    const struct {
        int version;
        double ceiling_GBps, link_share;
    } rel[] = {{21403, 39.0, 0.25},
               {21700, 87.7, 0.25},
               {22005, 87.7, 0.25},
               {22100, 141.0, 0.5}, /* "2.21": no 2.21.0-2.21.4 tag, 2.21.5's rules */
               {22105, 141.0, 0.5},
               {0, 141.0, 0.5}};
    for (size_t i = 0; i < G_N_ELEMENTS(rel); i++) {
        CollChoice c;
        m.nccl_version = rel[i].version;
        m.time_s(&m, &one, &c);
        assert_close(c.bus_Bps, MIN(rel[i].ceiling_GBps * 1e9, h->gpu_link_Bps * rel[i].link_share),
                     1e-9);
    }
    /* the host CPU's vendor, which NCCL's tuner rates apart across nodes, resolved at load */
    assert_false(h->cpu_amd); /* Intel Xeon */
    hw_topology_free(h);
    HwTopology *jb = load_topo("topologies/juwels-booster.json"); /* AMD EPYC 7402 */
    assert_true(jb->cpu_amd);
    hw_topology_free(jb);
}

/* What the rule does to the time: on 4 GH200 nodes under NCCL 2.23, 4 MiB allreduce runs without
 * LL128 (NCCL's tuner then takes the tree with Simple), so it is slower than under 2.30, whose
 * choice is ring LL128 - by the mechanism, not a factor: the time is the tuner's own estimate of
 * the next best protocol. NCCL_PROTO=LL128 still forces it (the rule is only NCCL's default). */
static void test_ll128_rule_timing(void **state)
{
    (void)state;
    HwTopology *gh = load_topo("topologies/alps-gh200.json");
    CollModel m;
    coll_model_analytic_init(&m, gh);
    CollShape sh = {IR_COLL_ALLREDUCE, 4 << 20, 16, 4, 4};
    CollChoice ch;
    double t_new = m.time_s(&m, &sh, &ch);
    assert_int_equal(ch.proto, COLL_PROTO_LL128);
    m.nccl_version = 22304;
    double t_old = m.time_s(&m, &sh, &ch);
    assert_int_not_equal(ch.proto, COLL_PROTO_LL128);
    assert_true(t_old > 1.2 * t_new);
    /* the same as the best of the forced alternatives */
    double best = INFINITY;
    for (int p = 0; p < COLL_PROTO_COUNT; p++) {
        if (p == COLL_PROTO_LL128)
            continue;
        m.force_proto = p;
        best = MIN(best, m.time_s(&m, &sh, NULL));
    }
    assert_close(t_old, best, 1e-12);
    m.force_proto = COLL_PROTO_LL128;
    assert_close(m.time_s(&m, &sh, &ch), t_new, 1e-12);
    assert_false(ch.forced_unavailable);
    hw_topology_free(gh);
}

/* node.gpu_nic_path is read strictly: a name NCCL has, and a source. */
static void test_gpu_nic_path_key(void **state)
{
    (void)state;
    const struct {
        const char *to, *needle;
    } bad[] = {
        {"\"value\": \"nvlink\"", "field 'node.gpu_nic_path.value': expected the PCIe path"},
        {"\"value\": 3", "gpu_nic_path.value"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        char *msg = NULL;
        HwTopology *t =
            load_edited("topologies/alps-gh200.json", "\"value\": \"c2c\"", bad[i].to, &msg);
        assert_null(t);
        if (!strstr(msg, bad[i].needle))
            fail_msg("message \"%s\" should contain \"%s\"", msg, bad[i].needle);
        g_free(msg);
    }
    char *msg = NULL;
    HwTopology *t =
        load_edited("topologies/alps-gh200.json", "\"value\": \"c2c\",\n      \"source\"",
                    "\"value\": \"c2c\",\n      \"sorce\"", &msg);
    assert_null(t);
    assert_non_null(strstr(msg, "gpu_nic_path"));
    g_free(msg);
}

/* nccl-tests' reduce_perf, gather_perf and scatter_perf (src/reduce.cu, gather.cu, scatter.cu):
 * busbw factors, the redop and root columns, and how each runs. */
static void test_rooted_benchmarks(void **state)
{
    (void)state;
    const CollTest *r = coll_test_find("reduce"), *g = coll_test_find("gather"),
                   *s = coll_test_find("scatter");
    assert_non_null(r);
    assert_non_null(g);
    assert_non_null(s);
    assert_string_equal(r->perf, "reduce_perf");
    assert_string_equal(g->perf, "gather_perf");
    assert_string_equal(s->perf, "scatter_perf");
    /* ReduceGetBw: busbw = algbw; Gather/ScatterGetBw: algbw (n - 1)/n */
    assert_float_equal(coll_test_busbw_factor(r, 16), 1.0, 1e-15);
    assert_float_equal(coll_test_busbw_factor(g, 16), 15.0 / 16, 1e-15);
    assert_float_equal(coll_test_busbw_factor(s, 8), 7.0 / 8, 1e-15);
    assert_float_equal(coll_test_busbw_factor(g, 1), 0.0, 1e-15);
    /* broadcast's and reduce's factor is 1 at any rank count, one rank included */
    assert_float_equal(coll_test_busbw_factor(r, 1), 1.0, 1e-15);
    assert_float_equal(coll_test_busbw_factor(coll_test_find("broadcast"), 1), 1.0, 1e-15);
    /* reduce: a ring with broadcast's steps in NCCL's tuner; gather, scatter: point-to-point */
    assert_int_equal(r->run, COLL_RUN_COLLECTIVE);
    assert_int_equal(r->kind, IR_COLL_BROADCAST);
    assert_int_equal(g->run, COLL_RUN_GATHER);
    assert_int_equal(s->run, COLL_RUN_SCATTER);
    assert_true(r->reduces && r->rooted && !g->reduces && g->rooted && s->rooted);
    assert_non_null(strstr(coll_tests_names, "gather"));

    /* their rows: reduce's "sum 0", gather's "none 0"; each refused as the other's */
    const char *reduce_row = "     1048576        262144     float     sum       0    "
                             "50.10   20.93   20.93      0    49.90   21.01   21.01      0\n";
    const char *gather_row = "     1048576         16384     float    none       0    "
                             "60.00   17.48   16.38      0    61.00   17.19   16.12      0\n";
    CollNcclTestsRow rows[2];
    GError *error = NULL;
    assert_int_equal(coll_nccltests_read("ref.txt", reduce_row, r, rows, 2, &error), 1);
    assert_int_equal(coll_nccltests_read("ref.txt", gather_row, g, rows, 2, &error), 1);
    assert_int_equal(coll_nccltests_read("ref.txt", gather_row, s, rows, 2, &error), 1);
    assert_int_equal(coll_nccltests_read("ref.txt", reduce_row, g, rows, 2, &error), -1);
    assert_non_null(strstr(error->message, "redop none with a root >= 0"));
    g_clear_error(&error);
    assert_int_equal(coll_nccltests_read("ref.txt", gather_row, r, rows, 2, &error), -1);
    assert_non_null(strstr(error->message, "a reduction (sum, prod, min, max, avg) with a root"));
    g_clear_error(&error);
    /* an allreduce row (root -1) is not reduce's */
    const char *allreduce_row = "     1048576        262144     float     sum      -1    "
                                "50.10   20.93   39.24      0    49.90   21.01   39.40      0\n";
    assert_int_equal(coll_nccltests_read("ref.txt", allreduce_row, r, rows, 2, &error), -1);
    g_clear_error(&error);
}

/* Reduce's time is NCCL's ring with ratio 1: on one 8-GPU node a large reduce moves the array
 * once over each GPU's NVLink port, bytes / link plus the latency, where allreduce's ring moves
 * 2 (n - 1)/n of it. */
static void test_reduce_timing(void **state)
{
    (void)state;
    HwTopology *t = load_topo("topologies/hgx-a100-40gb.json");
    CollModel m;
    coll_model_analytic_init(&m, t);
    const CollTest *r = coll_test_find("reduce");
    CollShape sh = {r->kind, 1ULL << 32, 8, 1, 8};
    CollChoice ch;
    double s = m.time_s(&m, &sh, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_RING);
    assert_int_equal(ch.proto, COLL_PROTO_SIMPLE);
    assert_close(s, (double)sh.bytes / t->gpu_link_Bps + ch.latency_s, 1e-12);
    /* across nodes too, NCCL runs Reduce as a ring only (never the tree, NVLS or CollNet) */
    CollShape across = {r->kind, 1ULL << 24, 32, 4, 8};
    m.time_s(&m, &across, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_RING);
    hw_topology_free(t);
}

/* NCCL 2.8's tuner (src/coll/nccl28.c, tuning.cc v2.8.4-1), selected by a release before 2.10:
 * its per-channel caps, with one graph channel per NIC (ABCI's 4 HDR NICs for 8 A100s, 2 EDR
 * NICs for 4 V100s), bind across nodes; at 2.10 and on, today's rules are unchanged. At 1 GiB the
 * tree's correction for medium sizes is 1, so the bus bandwidth is the tuner's own. */
static void test_nccl28_caps(void **state)
{
    (void)state;
    HwTopology *a = load_topo("topologies/abci-a100.json");
    HwTopology *v = load_topo("topologies/abci-v100.json");
    assert_int_equal(a->nics_per_node, 4);
    assert_int_equal(v->nics_per_node, 2);
    CollModel m;
    coll_model_analytic_init(&m, a);
    CollShape four = {IR_COLL_ALLREDUCE, 1ULL << 30, 32, 4, 8};
    CollShape two = {IR_COLL_ALLREDUCE, 1ULL << 30, 16, 2, 8};
    CollChoice ch;
    struct {
        int algo, proto;
        const CollShape *sh;
        double newest_GBps, v284_GBps, v2103_GBps;
    } rows[] = {
        /* ring LL128: 0.92 of the 4 NICs' 96 GB/s, then at most 4 x ll128MaxBwPerCh 16.9 (2.10:
         * 20 for every collective) */
        {COLL_ALGO_RING, COLL_PROTO_LL128, &four, 96 * 0.92, 4 * 16.9, 4 * 20.0},
        /* the tree on 4 nodes: 0.92 of 96, then at most 4 x perChMaxTreeBws 16.0 (A100, N4;
         * 2.10: 17.8) */
        {COLL_ALGO_TREE, COLL_PROTO_SIMPLE, &four, 96 * 0.92, 4 * 16.0, 4 * 17.8},
        /* its LL128: 0.915 of that (2.10: 120/128, as today's of the uncapped tree) */
        {COLL_ALGO_TREE, COLL_PROTO_LL128, &four, 96 * 0.92 * 120 / 128, 4 * 16.0 * 0.915,
         4 * 17.8 * 120 / 128},
        /* the two-node tree, raised to twice the NICs, then at most 4 x 22.5 (A100, N2; 2.10:
         * 23.6) */
        {COLL_ALGO_TREE, COLL_PROTO_SIMPLE, &two, 2 * 96 * 0.92, 4 * 22.5, 4 * 23.6},
        /* the ring's Simple has no cap */
        {COLL_ALGO_RING, COLL_PROTO_SIMPLE, &four, 96, 96, 96},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        m.force_algo = rows[i].algo;
        m.force_proto = rows[i].proto;
        m.nccl_version = 0;
        m.time_s(&m, rows[i].sh, &ch);
        assert_close(ch.bus_Bps, rows[i].newest_GBps * 1e9, 1e-9);
        m.nccl_version = 21200; /* 2.12: no per-channel caps, 235 GB/s not reached */
        m.time_s(&m, rows[i].sh, &ch);
        assert_close(ch.bus_Bps, rows[i].newest_GBps * 1e9, 1e-9);
        m.nccl_version = 21003; /* 2.10.3: 2.8's rules with 2.10's caps */
        m.time_s(&m, rows[i].sh, &ch);
        assert_close(ch.bus_Bps, rows[i].v2103_GBps * 1e9, 1e-9);
        m.nccl_version = 20804;
        m.time_s(&m, rows[i].sh, &ch);
        assert_close(ch.bus_Bps, rows[i].v284_GBps * 1e9, 1e-9);
    }
    /* NCCL 2.8.4's own choice at 32 MiB on two A100 nodes: the capped tree (90 / 2 GB/s of
     * algorithm bandwidth) loses to the ring's Simple (96 x 16/30), which today's uncapped tree
     * beats */
    CollShape mid = {IR_COLL_ALLREDUCE, 32 << 20, 16, 2, 8};
    m.force_algo = m.force_proto = -1;
    m.nccl_version = 0;
    m.time_s(&m, &mid, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_TREE);
    m.nccl_version = 20804;
    m.time_s(&m, &mid, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_RING);
    assert_int_equal(ch.proto, COLL_PROTO_SIMPLE);
    /* one GPU per node (a tp 8 layout's data-parallel groups): its graph has one channel, the
     * one NIC that GPU reaches, so the tree on 4 nodes is at most 1 x 16.0, under its NIC's
     * 0.92 x 24 */
    m.force_algo = COLL_ALGO_TREE;
    m.force_proto = COLL_PROTO_SIMPLE;
    m.nccl_version = 20804;
    CollShape one = {IR_COLL_ALLREDUCE, 1ULL << 30, 4, 4, 1};
    m.time_s(&m, &one, &ch);
    assert_close(ch.bus_Bps, 16.0e9, 1e-9);
    /* V100 (Volta's row): the two-node tree at most 2 x 18.5, on more nodes 2 x 10.0 */
    coll_model_analytic_init(&m, v);
    m.force_algo = COLL_ALGO_TREE;
    m.force_proto = COLL_PROTO_SIMPLE;
    m.nccl_version = 20804;
    CollShape v2 = {IR_COLL_ALLREDUCE, 1ULL << 30, 8, 2, 4};
    CollShape v8 = {IR_COLL_ALLREDUCE, 1ULL << 30, 32, 8, 4};
    m.time_s(&m, &v2, &ch);
    assert_close(ch.bus_Bps, 2 * 18.5e9, 1e-9);
    m.time_s(&m, &v8, &ch);
    assert_close(ch.bus_Bps, 2 * 10.0e9, 1e-9);
    hw_topology_free(a);
    hw_topology_free(v);
}

/* ABCI's PCIe layouts (block diagrams in the ABCI User Guide): V100's NICs on CPU root ports,
 * so PHB, no LL128 across nodes under any release; A100's NIC on the PCIe switch of two GPUs,
 * PIX, LL128 on. At 4 MiB on 8 V100 nodes under NCCL 2.8.4 the tuner would take ring LL128 were
 * the path PXB. */
static void test_abci_gpu_nic_path(void **state)
{
    (void)state;
    HwTopology *v = load_topo("topologies/abci-v100.json");
    HwTopology *a = load_topo("topologies/abci-a100.json");
    assert_int_equal(v->gpu_nic_path, HW_GPU_NIC_PHB);
    assert_int_equal(a->gpu_nic_path, HW_GPU_NIC_PIX);
    CollModel m;
    coll_model_analytic_init(&m, v);
    m.nccl_version = 20804;
    CollShape sh = {IR_COLL_ALLREDUCE, 4 << 20, 32, 8, 4};
    assert_false(coll_ll128_enabled(&m, &sh));
    CollChoice ch;
    m.time_s(&m, &sh, &ch);
    assert_int_not_equal(ch.proto, COLL_PROTO_LL128);
    v->gpu_nic_path = HW_GPU_NIC_PXB;
    assert_true(coll_ll128_enabled(&m, &sh));
    m.time_s(&m, &sh, &ch);
    assert_int_equal(ch.proto, COLL_PROTO_LL128);
    coll_model_analytic_init(&m, a);
    CollShape across = {IR_COLL_ALLREDUCE, 4 << 20, 32, 4, 8};
    assert_true(coll_ll128_enabled(&m, &across));
    hw_topology_free(v);
    hw_topology_free(a);
}

/* NCCL 2.8's latencies (tuning.cc v2.8.4-1 baseLat, hwLat, "plateau effect of ring"): two A100
 * nodes, 32 MiB, so each rank's share is past the ring's plateau threshold (4 KiB). */
static void test_nccl28_latency(void **state)
{
    (void)state;
    HwTopology *a = load_topo("topologies/abci-a100.json");
    CollModel m;
    coll_model_analytic_init(&m, a);
    m.nccl_version = 20804;
    CollShape sh = {IR_COLL_ALLREDUCE, 32 << 20, 16, 2, 8};
    CollChoice ch;
    /* ring Simple: (8.4 base + 28 NVLink steps x 3.4 + 2 network steps x 9.6) x 1.9 */
    m.force_algo = COLL_ALGO_RING;
    m.force_proto = COLL_PROTO_SIMPLE;
    m.time_s(&m, &sh, &ch);
    assert_close(ch.latency_s, (8.4 + 28 * 3.4 + 2 * 9.6) * 1.9e-6, 1e-9);
    /* tree Simple: no base, 28 us per hop, 7 up the chain and 1 across, both ways */
    m.force_algo = COLL_ALGO_TREE;
    m.time_s(&m, &sh, &ch);
    assert_close(ch.latency_s, 2 * (7 * 28.0 + 28.0) * 1e-6, 1e-9);
    /* ring LL: 3.6 base, NVLink hops 0.47 x 1.8 across nodes, network hops 2.7; no plateau */
    m.force_algo = COLL_ALGO_RING;
    m.force_proto = COLL_PROTO_LL;
    m.time_s(&m, &sh, &ch);
    assert_close(ch.latency_s, (3.6 + 28 * 0.47 * 1.8 + 2 * 2.7) * 1e-6, 1e-9);
    hw_topology_free(a);
}

/* NCCL 2.12-2.20's own latencies (src/coll/nccl_tables.c, tuning.cc at each tag): two A100
 * nodes (Intel hosts: a proxy overhead of 1 us per step, 3 for Simple, from 2.18), 32 MiB, past
 * every release's plateau threshold. An allreduce's ring counts 2 nNodes = 4 network steps and
 * 30 - 4 NVLink steps to 2.22 (today: 2 and 28); the plateau multiplies the base too. */
static void test_nccl_tables_latency(void **state)
{
    (void)state;
    HwTopology *a = load_topo("topologies/abci-a100.json");
    CollModel m;
    coll_model_analytic_init(&m, a);
    CollShape sh = {IR_COLL_ALLREDUCE, 32 << 20, 16, 2, 8};
    CollChoice ch;
    struct {
        int version, algo, proto;
        double us;
    } rows[] = {
        /* ring Simple: 8.4 base, NVLink 3.4, network 28 (2.12), 9.6 (2.14-2.17), 14 (2.18 on);
         * the plateau 1.9 on the whole latency, 1.4 on an A100 from 2.18 */
        {21212, COLL_ALGO_RING, COLL_PROTO_SIMPLE, (8.4 + 26 * 3.4 + 4 * 28.0) * 1.9},
        {21403, COLL_ALGO_RING, COLL_PROTO_SIMPLE, (8.4 + 26 * 3.4 + 4 * 9.6) * 1.9},
        {21701, COLL_ALGO_RING, COLL_PROTO_SIMPLE, (8.4 + 26 * 3.4 + 4 * 9.6) * 1.9},
        {21801, COLL_ALGO_RING, COLL_PROTO_SIMPLE, (8.4 + 26 * 3.4 + 4 * 14.0) * 1.4},
        {22005, COLL_ALGO_RING, COLL_PROTO_SIMPLE, (8.4 + 26 * 3.4 + 4 * 14.0) * 1.4},
        /* 2.21-2.22 (v2.21.5-1 l. 161): still 2 nNodes network steps; from 2.23 2 (nNodes - 1),
         * the plateau on the base too (v2.30.7-1 l. 649) */
        {22105, COLL_ALGO_RING, COLL_PROTO_SIMPLE, (8.4 + 26 * 3.4 + 4 * 14.0) * 1.4},
        {22203, COLL_ALGO_RING, COLL_PROTO_SIMPLE, (8.4 + 26 * 3.4 + 4 * 14.0) * 1.4},
        {22304, COLL_ALGO_RING, COLL_PROTO_SIMPLE, (8.4 + 28 * 3.4 + 2 * 14.0) * 1.4},
        {0, COLL_ALGO_RING, COLL_PROTO_SIMPLE, (8.4 + 28 * 3.4 + 2 * 14.0) * 1.4},
        /* ring LL: 3.6 base and NVLink hops 0.47 x 1.8 to 2.17; from 2.18 6.6 and 0.6 raised to
         * the 1 us proxy overhead */
        {21403, COLL_ALGO_RING, COLL_PROTO_LL, 3.6 + 26 * 0.47 * 1.8 + 4 * 2.7},
        {21803, COLL_ALGO_RING, COLL_PROTO_LL, 6.6 + 26 * 1.0 + 4 * 2.7},
        /* tree Simple: no base to 2.22, 28 us per hop to 2.18.1 and from 2.19; 2.18.3-2.18.6: 4
         * over NVLink, 14 over the network; 7 hops up the chain and 1 across, both ways */
        {21403, COLL_ALGO_TREE, COLL_PROTO_SIMPLE, 2 * (7 * 28.0 + 28.0)},
        {21801, COLL_ALGO_TREE, COLL_PROTO_SIMPLE, 2 * (7 * 28.0 + 28.0)},
        {21806, COLL_ALGO_TREE, COLL_PROTO_SIMPLE, 2 * (7 * 4.0 + 14.0)},
        {21904, COLL_ALGO_TREE, COLL_PROTO_SIMPLE, 2 * (7 * 28.0 + 28.0)},
        /* 2.21-2.22 as 2.19 (v2.21.5-1 l. 57, 67, 75); 2.23 on: 8.4 base, 4 and 14 */
        {22105, COLL_ALGO_TREE, COLL_PROTO_SIMPLE, 2 * (7 * 28.0 + 28.0)},
        {22203, COLL_ALGO_TREE, COLL_PROTO_SIMPLE, 2 * (7 * 28.0 + 28.0)},
        {22304, COLL_ALGO_TREE, COLL_PROTO_SIMPLE, 8.4 + 2 * (7 * 4.0 + 14.0)},
        /* tree LL: 4.4 base, NVLink 0.52 x 1.8 to 2.17; 6.8 and 0.6 from 2.18 */
        {21605, COLL_ALGO_TREE, COLL_PROTO_LL, 4.4 + 2 * (7 * 0.52 * 1.8 + 5.0)},
        {21805, COLL_ALGO_TREE, COLL_PROTO_LL, 6.8 + 2 * (7 * 0.6 + 5.0)},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        m.nccl_version = rows[i].version;
        m.force_algo = rows[i].algo;
        m.force_proto = rows[i].proto;
        m.time_s(&m, &sh, &ch);
        assert_close(ch.latency_s, rows[i].us * 1e-6, 1e-9);
    }
    /* 2.17 on Hopper: the plateau 1.5 (1.9 to 2.16); p5's AMD hosts, no proxy overhead yet */
    HwTopology *h = load_topo("topologies/aws-p5.json");
    coll_model_analytic_init(&m, h);
    m.force_algo = COLL_ALGO_RING;
    m.force_proto = COLL_PROTO_SIMPLE;
    m.nccl_version = 21605;
    m.time_s(&m, &sh, &ch);
    assert_close(ch.latency_s, (8.4 + 26 * 3.4 + 4 * 9.6) * 1.9e-6, 1e-9);
    m.nccl_version = 21701;
    m.time_s(&m, &sh, &ch);
    assert_close(ch.latency_s, (8.4 + 26 * 3.4 + 4 * 9.6) * 1.5e-6, 1e-9);
    /* one GPU per node, ring Simple, 2.21.5: the intra-node steps (6 - 2 x 4 = -2) at the PCIe
     * hop, 5.7 us (NCCL's path inside a one-GPU node is PATH_LOC, rated as PCIe), not NVLink's
     * 3.4; 32 MiB over 4 ranks is on the plateau (x 1.4 on the A100) */
    coll_model_analytic_init(&m, a);
    CollShape one = {IR_COLL_ALLREDUCE, 32 << 20, 4, 4, 1};
    m.force_algo = COLL_ALGO_RING;
    m.force_proto = COLL_PROTO_SIMPLE;
    m.nccl_version = 22105;
    m.time_s(&m, &one, &ch);
    assert_close(ch.latency_s, (8.4 - 2 * 5.7 + 8 * 14.0) * 1.4e-6, 1e-9);
    hw_topology_free(a);
    hw_topology_free(h);
}

/* One GPU per node, 4 A100 nodes (one HDR NIC each): the ring's and the tree's bandwidth
 * factors by release. Ring LL at 1/4 of the bus bandwidth to 2.20, 1/2 from 2.21 (v2.21.5-1 l.
 * 180); ring LL128 0.7 to 2.22, 0.92 from 2.23 (v2.23.4-1 l. 188); the tree 0.85 of 0.92 from
 * 2.18.3 (NCCL_TOPO_PATTERN_TREE: v2.18.3-1 l. 183, search.cc l. 832), not with 8 GPUs per
 * node. And the ring's latency with one rank per node: 2 nNodes network steps at the ring's LL
 * hop (2.7) to 2.22, 2 (nNodes - 1) at the tree's (5.0) from 2.23. */
static void test_nccl_one_gpu_per_node(void **state)
{
    (void)state;
    HwTopology *a = load_topo("topologies/abci-a100.json");
    CollModel m;
    coll_model_analytic_init(&m, a);
    CollShape one = {IR_COLL_ALLREDUCE, 1ULL << 30, 4, 4, 1};
    CollShape full = {IR_COLL_ALLREDUCE, 1ULL << 30, 32, 4, 8};
    CollChoice ch;
    m.force_algo = COLL_ALGO_RING;
    m.force_proto = COLL_PROTO_SIMPLE;
    m.time_s(&m, &one, &ch);
    double nic = ch.bus_Bps; /* under every LL ceiling across 4 nodes (19 GB/s and more) */
    assert_true(nic * 0.5 < 19e9);
    struct {
        int version, algo, proto;
        double factor;
    } rows[] = {
        {22005, COLL_ALGO_RING, COLL_PROTO_LL, 0.25},
        {22105, COLL_ALGO_RING, COLL_PROTO_LL, 0.5},
        {0, COLL_ALGO_RING, COLL_PROTO_LL, 0.5},
        {22203, COLL_ALGO_RING, COLL_PROTO_LL128, 0.7},
        {22304, COLL_ALGO_RING, COLL_PROTO_LL128, 0.92},
        {0, COLL_ALGO_RING, COLL_PROTO_LL128, 0.92},
        {21801, COLL_ALGO_TREE, COLL_PROTO_SIMPLE, 0.92},
        {21803, COLL_ALGO_TREE, COLL_PROTO_SIMPLE, 0.92 * 0.85},
        {0, COLL_ALGO_TREE, COLL_PROTO_SIMPLE, 0.92 * 0.85},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        m.nccl_version = rows[i].version;
        m.force_algo = rows[i].algo;
        m.force_proto = rows[i].proto;
        m.time_s(&m, &one, &ch);
        assert_close(ch.bus_Bps, nic * rows[i].factor, 1e-9);
    }
    /* 8 GPUs per node: the balanced tree, no 0.85 */
    m.nccl_version = 0;
    m.force_algo = COLL_ALGO_TREE;
    m.force_proto = COLL_PROTO_SIMPLE;
    double tree_full = m.time_s(&m, &full, &ch), bus_full = ch.bus_Bps;
    m.force_algo = COLL_ALGO_RING;
    m.time_s(&m, &full, &ch);
    assert_close(bus_full, ch.bus_Bps * 0.92, 1e-9);
    assert_true(tree_full > 0);
    /* ring LL's latency, 6 steps: 2.22 counts 8 network ones and -2 inside the node (the proxy's
     * 1 us), 2.23 6 network ones at the tree's hop */
    m.force_proto = COLL_PROTO_LL;
    m.nccl_version = 22203;
    m.time_s(&m, &one, &ch);
    assert_close(ch.latency_s, (6.6 - 2 * 1.0 + 8 * 2.7) * 1e-6, 1e-9);
    m.nccl_version = 22304;
    m.time_s(&m, &one, &ch);
    assert_close(ch.latency_s, (6.6 + 6 * 5.0) * 1e-6, 1e-9);
    hw_topology_free(a);
}

/* NCCL counts a tree's levels with log2i, rounded down (src/include/utils.h v2.30.7-1 l. 56;
 * tuning.cc v2.30.7-1 l. 416, 428; v2.19.4-1 l. 233; v2.8.4-1 l. 156): 3 on 12 nodes, not 4. */
static void test_nccl_tree_levels(void **state)
{
    (void)state;
    HwTopology *a = load_topo("topologies/abci-a100.json");
    HwTopology *h = load_topo("topologies/aws-p5.json");
    CollModel m;
    coll_model_analytic_init(&m, a);
    CollShape twelve = {IR_COLL_ALLREDUCE, 32 << 20, 96, 12, 8};
    CollChoice ch;
    m.force_algo = COLL_ALGO_TREE;
    m.force_proto = COLL_PROTO_SIMPLE;
    m.time_s(&m, &twelve, &ch);
    assert_close(ch.latency_s, (8.4 + 2 * (7 * 4.0 + 3 * 14.0)) * 1e-6, 1e-9);
    m.nccl_version = 21904;
    m.time_s(&m, &twelve, &ch);
    assert_close(ch.latency_s, 2 * (7 * 28.0 + 3 * 28.0) * 1e-6, 1e-9);
    m.nccl_version = 20804;
    m.time_s(&m, &twelve, &ch);
    assert_close(ch.latency_s, 2 * (7 * 28.0 + 3 * 28.0) * 1e-6, 1e-9);
    /* NVLSTree on p5 (v2.30.7-1 l. 428): 25 us inside the node and 20.9 per level (l. 173), up
     * and down;
     * at 1 KiB the pipeline's fill, which the choice's latency also holds, is under 0.1 us */
    coll_model_analytic_init(&m, h);
    m.force_algo = COLL_ALGO_NVLS_TREE;
    m.force_proto = COLL_PROTO_SIMPLE;
    CollShape nvls12 = {IR_COLL_ALLREDUCE, 1024, 96, 12, 8};
    m.time_s(&m, &nvls12, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_NVLS_TREE);
    assert_false(ch.forced_unavailable);
    assert_true(fabs(ch.latency_s - (25.0 + 2 * 3 * 20.9) * 1e-6) < 0.1e-6);
    hw_topology_free(a);
    hw_topology_free(h);
}

/* The bus caps of 2.12-2.17 (tuning.cc v2.12.12-1 l. 126, v2.17.1-1 l. 153-154): an A100
 * communicator at most 235 GB/s, an H100's 370 in 2.17 alone; gone in 2.18. One node, the ring's
 * Simple at 1 GiB: the GPU's NVLink, capped. Two nodes of 8 HDR NICs: the tree's raised
 * bandwidth capped too. */
static void test_nccl_tables_caps(void **state)
{
    (void)state;
    HwTopology *a = load_topo("topologies/dgx-a100-superpod.json");
    HwTopology *h = load_topo("topologies/aws-p5.json");
    assert_true(a->gpu_link_Bps > 235e9 && h->gpu_link_Bps > 370e9);
    CollModel m;
    coll_model_analytic_init(&m, a);
    m.force_algo = COLL_ALGO_RING;
    m.force_proto = COLL_PROTO_SIMPLE;
    CollShape one = {IR_COLL_ALLREDUCE, 1ULL << 30, 8, 1, 8};
    CollChoice ch;
    const int versions[] = {21212, 21403, 21701, 21801, 0};
    const double a100_GBps[] = {235, 235, 235, 0, 0}, h100_GBps[] = {0, 0, 370, 0, 0};
    for (size_t i = 0; i < G_N_ELEMENTS(versions); i++) {
        m.nccl_version = versions[i];
        m.topo = a;
        m.time_s(&m, &one, &ch);
        assert_close(ch.bus_Bps, a100_GBps[i] ? a100_GBps[i] * 1e9 : a->gpu_link_Bps, 1e-9);
        m.topo = h;
        m.time_s(&m, &one, &ch);
        assert_close(ch.bus_Bps, h100_GBps[i] ? h100_GBps[i] * 1e9 : h->gpu_link_Bps, 1e-9);
    }
    m.topo = a;
    m.force_algo = COLL_ALGO_TREE;
    CollShape two = {IR_COLL_ALLREDUCE, 1ULL << 30, 16, 2, 8};
    m.nccl_version = 0;
    m.time_s(&m, &two, &ch);
    assert_true(ch.bus_Bps > 235e9 * 0.92);
    m.nccl_version = 21403;
    m.time_s(&m, &two, &ch);
    assert_close(ch.bus_Bps, 235e9 * 0.92, 1e-9);
    hw_topology_free(a);
    hw_topology_free(h);
}

/* Algorithms by release (NCCL_ALGO_* at each tag): on one p5 node NCCL 2.16 has no NVLS and
 * takes the ring at 64 MiB where 2.17 takes NVLS; across two, NVLSTree from 2.18; PAT from 2.23;
 * a forced algorithm the release lacks is flagged. */
static void test_nccl_tables_algos(void **state)
{
    (void)state;
    HwTopology *h = load_topo("topologies/aws-p5.json");
    CollModel m;
    coll_model_analytic_init(&m, h);
    CollShape one = {IR_COLL_ALLREDUCE, 64 << 20, 8, 1, 8};
    CollShape two = {IR_COLL_ALLREDUCE, 64 << 20, 16, 2, 8};
    CollChoice ch;
    m.nccl_version = 21605;
    m.time_s(&m, &one, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_RING);
    m.nccl_version = 21701;
    m.time_s(&m, &one, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_NVLS);
    m.time_s(&m, &two, &ch);
    assert_int_not_equal(ch.algo, COLL_ALGO_NVLS_TREE);
    m.nccl_version = 21801;
    m.time_s(&m, &two, &ch);
    assert_int_equal(ch.algo, COLL_ALGO_NVLS_TREE);
    m.nccl_version = 21605;
    m.force_algo = COLL_ALGO_NVLS;
    m.time_s(&m, &one, &ch);
    assert_true(ch.forced_unavailable);
    CollShape gather = {IR_COLL_ALLGATHER, 1 << 20, 4, 4, 1};
    m.force_algo = COLL_ALGO_PAT;
    m.nccl_version = 22203;
    m.time_s(&m, &gather, &ch);
    assert_true(ch.forced_unavailable);
    m.nccl_version = 22304;
    m.time_s(&m, &gather, &ch);
    assert_false(ch.forced_unavailable);
    assert_int_equal(ch.algo, COLL_ALGO_PAT);
    hw_topology_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nccl_version_parse), cmocka_unit_test(test_ll128_rule),
        cmocka_unit_test(test_compute_capability), cmocka_unit_test(test_arch_row_by_release),
        cmocka_unit_test(test_ll128_rule_timing),  cmocka_unit_test(test_gpu_nic_path_key),
        cmocka_unit_test(test_rooted_benchmarks),  cmocka_unit_test(test_reduce_timing),
        cmocka_unit_test(test_nccl28_caps),
        cmocka_unit_test(test_nccl28_latency),
        cmocka_unit_test(test_abci_gpu_nic_path),
        cmocka_unit_test(test_nccl_tables_latency),
        cmocka_unit_test(test_nccl_tables_caps),
        cmocka_unit_test(test_nccl_tables_algos),
        cmocka_unit_test(test_nccl_one_gpu_per_node),
        cmocka_unit_test(test_nccl_tree_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
