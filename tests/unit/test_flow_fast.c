/* The flow model's shortcuts against its reference computation (net_flows_set_reference), bit
 * for bit: a component of one transfer solved in one pass over its classes (flow_fill.c
 * fill_alone) instead of the general rounds, the component found without the search, the next
 * finish kept across reschedules instead of a pass over the active transfers, and samples skipped
 * where no utilisation changed. Random scripts on a DragonFly+-like machine (8 nodes of 4 GPUs
 * and 2 NICs, groups of 2 nodes, global links tapered or infinite): rings, trees, all-to-alls
 * and sends, most inside one node (components of one transfer), some over the machine (larger
 * ones), some empty or of no bytes, some capped (a cap that binds ends the round at the cap);
 * several starts before one reschedule; completions a few at a time. After every call both
 * models must return the same, and their snapshots (every transfer's rate, remaining load,
 * finish and state, every class's utilisation and users) must be equal byte for byte; at the
 * end, every link's statistics and the utilisation samples. */
#include "testutil.h"
#include "net/net.h"

static HwTopology *toy_topo(double global_Bps)
{
    HwTopology *t = g_new0(HwTopology, 1);
    for (int d = 0; d < HW_DTYPE_COUNT; d++)
        t->gpu.peak_flops[d] = 1e12;
    t->gpu.matmul_efficiency = t->gpu.memory_efficiency = 1;
    t->gpu.compute_capability = 80;
    t->gpu.hbm_Bps = 1e12;
    t->gpus_per_node = 4;
    t->gpu_link = "nvlink";
    t->gpu_link_Bps = 1e9;
    t->nics_per_node = 2;
    t->nic_Bps = 1e9;
    t->pcie_Bps = 1e9;
    t->nodes_max = 64;
    t->net_nodes_per_group = 2;
    t->net_group_global_Bps = global_Bps; /* 0: infinite */
    return t;
}

static void random_pattern(GRand *rng, NetLoadBuilder *b)
{
    int members[32], n = 0;
    int kind = g_rand_int_range(rng, 0, 4);
    if (g_rand_int_range(rng, 0, 4) > 0) { /* inside one node */
        int node = g_rand_int_range(rng, 0, 8);
        n = g_rand_int_range(rng, 2, 5);
        for (int i = 0; i < n; i++)
            members[i] = node * 4 + i;
    } else {
        for (int r = 0; r < 32; r++)
            if (g_rand_int_range(rng, 0, 4) == 0)
                members[n++] = r;
        if (n < 2)
            members[0] = 0, members[1] = 31, n = 2;
    }
    if (g_rand_int_range(rng, 0, 20) == 0)
        return; /* no loads */
    if (kind == 0)
        net_builder_ring(b, members, n, 1.0);
    else if (kind == 1)
        net_builder_tree(b, members, n, 1.0);
    else if (kind == 2)
        net_builder_alltoall(b, members, n, 1.0);
    else
        net_builder_p2p(b, members[0], members[n - 1], 1.0);
}

static void assert_same_state(NetFlows *fast, NetFlows *ref)
{
    GByteArray *a = g_byte_array_new(), *b = g_byte_array_new();
    net_flows_snapshot(fast, 0, a, NULL);
    net_flows_snapshot(ref, 0, b, NULL);
    assert_int_equal(a->len, b->len);
    assert_memory_equal(a->data, b->data, a->len);
    g_byte_array_free(a, TRUE);
    g_byte_array_free(b, TRUE);
}

/* Returns the reschedules the script made. */
static int compare_to_reference(unsigned seed, double global_Bps)
{
    HwTopology *hw = toy_topo(global_Bps);
    NetTopo *t = net_topo_new(hw, 8, 4);
    NetFlows *fast = net_flows_new(t), *ref = net_flows_new(t);
    net_flows_set_reference(ref, true);
    NetLoadBuilder *b = net_builder_new(t);
    GRand *rng = g_rand_new_with_seed(seed);
    int64_t now = 0, next = -1;
    int to_add = 60, ids_a[64], ids_b[64], n_ids = 0, reschedules = 0;
    while (to_add > 0 || next >= 0) {
        bool add = to_add > 0 && (next < 0 || g_rand_int_range(rng, 0, 3) > 0);
        if (next >= 0)
            now = add ? now + (int64_t)((next - now) * g_rand_double(rng)) : next;
        net_flows_advance(fast, now);
        net_flows_advance(ref, now);
        /* one start, or a few at once; or completions, a few per call */
        int starts = add ? (g_rand_int_range(rng, 0, 6) == 0 ? 2 : 1) : 0;
        for (int s = 0; s < starts && to_add > 0; s++, to_add--) {
            random_pattern(rng, b);
            int n;
            NetLoad *loads = net_builder_take(b, &n);
            double scale =
                g_rand_int_range(rng, 0, 30) == 0 ? 0 : g_rand_double_range(rng, 1e6, 1e9);
            int ia = net_flows_add(fast, now, net_flows_pattern(fast, loads, n), scale);
            int ib = net_flows_add(ref, now, net_flows_pattern(ref, loads, n), scale);
            assert_int_equal(ia, ib);
            if (g_rand_int_range(rng, 0, 3) == 0) { /* a cap that binds, or one that does not */
                double cap = g_rand_boolean(rng) ? g_rand_double_range(rng, 0.01, 2)
                                                 : g_rand_double_range(rng, 1e3, 1e6);
                net_flows_cap(fast, ia, cap);
                net_flows_cap(ref, ib, cap);
            }
            n_ids = MAX(n_ids, ia + 1);
            g_free(loads);
        }
        if (!add) {
            int max = g_rand_int_range(rng, 1, 4), na, nb;
            do {
                na = net_flows_complete(fast, now, ids_a, max);
                nb = net_flows_complete(ref, now, ids_b, max);
                assert_int_equal(na, nb);
                assert_memory_equal(ids_a, ids_b, sizeof(int) * (size_t)na);
            } while (na > 0);
        }
        int64_t next_a = net_flows_reschedule(fast);
        next = net_flows_reschedule(ref);
        reschedules++;
        assert_true(next_a == next);
        for (int k = 0; k < n_ids; k++) {
            double ra = net_flows_rate(fast, k), rb = net_flows_rate(ref, k);
            assert_memory_equal(&ra, &rb, sizeof ra);
        }
        assert_same_state(fast, ref);
        if (next >= 0 && g_rand_int_range(rng, 0, 8) == 0) { /* nothing due yet */
            int64_t early = now + (next - now) / 2;
            net_flows_advance(fast, early);
            net_flows_advance(ref, early);
            assert_int_equal(net_flows_complete(fast, early, ids_a, 64),
                             net_flows_complete(ref, early, ids_b, 64));
            now = early;
        }
    }
    for (uint32_t l = 0; l < (uint32_t)t->n_links; l++) {
        NetLinkStats a = *net_flows_stats(fast, l), s = *net_flows_stats(ref, l);
        assert_memory_equal(&a, &s, sizeof a);
    }
    int na, nb;
    const NetUtilSample *sa = net_flows_samples(fast, &na), *sb = net_flows_samples(ref, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(sa, sb, sizeof *sa * (size_t)na);
    g_rand_free(rng);
    net_builder_free(b);
    net_flows_free(fast);
    net_flows_free(ref);
    net_topo_free(t);
    g_free(hw);
    return reschedules;
}

static void test_shortcuts_match_reference(void **state)
{
    int reschedules = 0;
    for (unsigned seed = 1; seed <= 60; seed++)
        reschedules += compare_to_reference(seed, seed % 3 == 0 ? 0 : 1.5e9);
    print_message("%d reschedules, each to the bit of the reference's\n", reschedules);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shortcuts_match_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
