/* fsdp: the order of FSDP's collectives and host waits, against torch/distributed/fsdp/
 * _runtime_utils.py (FSDP1) and _fully_shard (FSDP2), measured on generated schedules. */
#include "testutil.h"

/* BACKWARD_POST prefetches in each post-backward hook; the root's runs last, when the unit before
 * it in post-forward order has had its backward (_needs_pre_backward_unshard is False): no
 * target, so no all-gather. Every mode gathers the blocks twice and the root once. FSDP2 has no
 * BackwardPrefetch: --backward-prefetch post changes nothing there. */
static void test_backward_post_gathers_no_extra(void **state)
{
    BackwardPrefetch modes[3] = {PREFETCH_BACKWARD_PRE, PREFETCH_BACKWARD_POST, PREFETCH_NONE};
    for (int version = 1; version <= 2; version++)
        for (int i = 0; i < 3; i++) {
            Run r;
            run_start(&r, "models/gpt2.json", "topologies/juwels-booster.json", 2, 4);
            r.opt.backward_prefetch = modes[i];
            r.opt.fsdp_version = version;
            run_sim(&r);
            int units = r.info.n_units;
            assert_int_equal(r.rep.coll[IR_COLL_ALLGATHER].count, 2 * units - 1);
            assert_int_equal(r.rep.coll[IR_COLL_REDUCE_SCATTER].count, units);
            run_end(&r);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backward_post_gathers_no_extra),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
