/* pq: events pop in (time, push order) order, whatever the push order. */
#include "testutil.h"
#include "core/pq.h"

static void test_order_and_ties(void **state)
{
    Pq q;
    pq_init(&q);
    pq_push(&q, 50, 0, 1);
    pq_push(&q, 10, 0, 2);
    pq_push(&q, 50, 0, 3); /* same time as op 1, pushed later: pops after it */
    pq_push(&q, 0, 0, 4);
    pq_push(&q, 10, 0, 5);
    int expected[] = {4, 2, 5, 1, 3};
    PqEvent ev;
    for (int i = 0; i < 5; i++) {
        assert_true(pq_pop(&q, &ev));
        assert_int_equal(ev.op, expected[i]);
    }
    assert_false(pq_pop(&q, &ev));
    pq_destroy(&q);
}

static void test_many_random(void **state)
{
    Pq q;
    pq_init(&q);
    GRand *rng = g_rand_new_with_seed(42);
    for (int i = 0; i < 10000; i++)
        pq_push(&q, g_rand_int_range(rng, 0, 100), 0, i);
    PqEvent prev = {-1, 0, 0, 0}, ev;
    int n = 0;
    while (pq_pop(&q, &ev)) {
        assert_true(ev.time_ns > prev.time_ns || (ev.time_ns == prev.time_ns && ev.seq > prev.seq));
        prev = ev;
        n++;
    }
    assert_int_equal(n, 10000);
    g_rand_free(rng);
    pq_destroy(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_ties),
        cmocka_unit_test(test_many_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
