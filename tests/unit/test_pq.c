/* pq: events pop in (time, push order) order, whatever the push order. ktab: the engine's
 * integer-keyed table finds what a string-keyed GHashTable finds. */
#include "testutil.h"
#include "core/ktab.h"
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

/* Random inserts, lookups and removes (the rendezvous table's life: most keys removed soon after
 * they arrive) against a GHashTable keyed by the same four numbers as a string; keys that differ
 * in one field only, so a hash that ignored a field would collide them all. */
static void test_ktab_against_ghashtable(void **state)
{
    Ktab t;
    ktab_init(&t);
    GHashTable *ref = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GRand *rng = g_rand_new_with_seed(7);
    int live_max = 0;
    for (int i = 0; i < 200000; i++) {
        KtKey k = {(uint32_t)g_rand_int_range(rng, 1, 3), (uint32_t)g_rand_int_range(rng, 0, 4),
                   (uint32_t)g_rand_int_range(rng, 0, 50), (uint32_t)g_rand_int_range(rng, 0, 60)};
        char name[64];
        g_snprintf(name, sizeof name, "%u:%u:%u:%u", k.tag, k.a, k.b, k.c);
        void *want = g_hash_table_lookup(ref, name);
        assert_ptr_equal(ktab_lookup(&t, k), want);
        if (!want && g_rand_int_range(rng, 0, 3) > 0) {
            void *v = GINT_TO_POINTER(i + 1);
            ktab_insert(&t, k, v);
            g_hash_table_insert(ref, g_strdup(name), v);
        } else if (want) {
            assert_ptr_equal(ktab_remove(&t, k), want);
            g_hash_table_remove(ref, name);
            assert_null(ktab_lookup(&t, k));
        }
        assert_int_equal(t.live, g_hash_table_size(ref));
        live_max = MAX(live_max, (int)t.live);
    }
    assert_true(live_max > 1000); /* the table grew and was rebuilt */
    assert_null(ktab_remove(&t, (KtKey){9, 9, 9, 9}));
    g_rand_free(rng);
    g_hash_table_destroy(ref);
    ktab_destroy(&t, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_ties),
        cmocka_unit_test(test_many_random),
        cmocka_unit_test(test_ktab_against_ghashtable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
