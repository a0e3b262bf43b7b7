/* sim: the engine's semantics on hand-made schedules with round numbers: stream order, host
 * issue, dependencies, rendezvous of collectives across rank classes, memory replay, deadlock. */
#include "testutil.h"

/* A GPU doing 1e12 FLOP/s and 1e9 B/s exactly, collectives that take 2 ms, p2p 3 ms. */
static double fixed_coll(const CollModel *self, const CollShape *shape, CollChoice *choice)
{
    return 2e-3;
}
static double fixed_p2p(const CollModel *self, uint64_t bytes, bool same_node)
{
    return 3e-3;
}

static HwTopology topo;
static CollModel coll = {"fixed", fixed_coll, fixed_p2p, &topo, -1, -1, false, 0};
static SimConfig cfg = {&topo, &coll, NULL};

static int setup(void **state)
{
    (void)state;
    toy_topology(&topo, 2);
    return 0;
}

static int host(IrClass *c, double s, const int *deps, int n)
{
    IrOp op = {.kind = IR_OP_HOST, .stream = (uint16_t)ir_stream_find(c, "host")};
    op.u.host.seconds = s;
    return ir_op_add(c, &op, "host", deps, n);
}

static int compute(IrClass *c, double flops, const int *deps, int n)
{
    IrOp op = {.kind = IR_OP_COMPUTE, .stream = (uint16_t)ir_stream_find(c, "compute"),
               .dtype = HW_DTYPE_BF16};
    IrCompute payload = {.flops = flops};
    op.u.compute.payload = ir_compute_add(c, &payload);
    return ir_op_add(c, &op, "compute", deps, n);
}

static int coll_op(IrClass *c, int group, const int *deps, int n)
{
    IrOp op = {.kind = IR_OP_COLL, .stream = (uint16_t)ir_stream_find(c, "nccl")};
    op.u.coll.coll = IR_COLL_ALLREDUCE;
    op.u.coll.group = (uint16_t)group;
    op.u.coll.bytes = 1000;
    return ir_op_add(c, &op, "allreduce", deps, n);
}

static IrClass *new_class(IrSchedule *s, int first, int n)
{
    IrClass *c = ir_class_add(s, first, n, 1);
    ir_stream_add(c, "host", true);
    ir_stream_add(c, "compute", false);
    ir_stream_add(c, "nccl", false);
    return c;
}

#define US 1000

static void test_streams_host_issue_and_deps(void **state)
{
    IrSchedule *s = ir_schedule_new(1, 2);
    int g = ir_group_add(s, "all", 2, 1);
    IrClass *c = new_class(s, 0, 2);
    int h0 = host(c, 10e-6, NULL, 0);                   /* [0, 10us] */
    int c1 = compute(c, 1e9, NULL, 0);                  /* issued by h0: [10us, 1010us] */
    int h2 = host(c, 5e-6, NULL, 0);                    /* host is free again: [10us, 15us] */
    int a3 = coll_op(c, g, NULL, 0);                    /* issued by h2: [15us, 2015us] */
    int c4 = compute(c, 1e9, &a3, 1);                   /* waits for the allreduce: [2015, 3015] */
    GError *error = NULL;
    SimResult *r = sim_run(s, &cfg, &error);
    assert_non_null(r);
    const SimClassResult *cr = &r->classes[0];
    assert_int_equal(sim_op_end_ns(cr, h0), 10 * US);
    assert_int_equal(sim_op_start_ns(cr, c1), 10 * US);
    assert_int_equal(sim_op_end_ns(cr, c1), 1010 * US);
    assert_int_equal(sim_op_start_ns(cr, h2), 10 * US);
    assert_int_equal(sim_op_start_ns(cr, a3), 15 * US);
    assert_int_equal(sim_op_end_ns(cr, a3), 2015 * US);
    assert_int_equal(sim_op_start_ns(cr, c4), 2015 * US);
    assert_int_equal(r->makespan_ns, 3015 * US);
    sim_result_free(r);
    ir_schedule_free(s);
}

static void test_collective_waits_for_every_class(void **state)
{
    IrSchedule *s = ir_schedule_new(1, 2);
    int g = ir_group_add(s, "all", 2, 1);
    IrClass *a = new_class(s, 0, 1), *b = new_class(s, 1, 1);
    int ca = coll_op(a, g, NULL, 0);
    int cb0 = compute(b, 1e9, NULL, 0); /* rank 1 is 1 ms late */
    int cb = coll_op(b, g, &cb0, 1);
    GError *error = NULL;
    SimResult *r = sim_run(s, &cfg, &error);
    assert_non_null(r);
    assert_int_equal(sim_op_start_ns(&r->classes[0], ca), 0);
    assert_int_equal(sim_op_end_ns(&r->classes[0], ca), 3000 * US); /* 1 ms wait + 2 ms */
    assert_int_equal(sim_op_end_ns(&r->classes[1], cb), 3000 * US);
    sim_result_free(r);
    ir_schedule_free(s);
}

/* Collectives pair up across classes by their order in the program on their group, not by the
 * order they start in: rank 0's first all-reduce (stream nccl, behind 1 ms of compute) starts
 * after its second (stream nccl2), yet meets rank 1's first. The engine counts starts per group
 * only when a group keeps to one stream; this group does not. */
static void test_collectives_pair_in_program_order(void **state)
{
    IrSchedule *s = ir_schedule_new(1, 2);
    int g = ir_group_add(s, "all", 2, 1);
    IrClass *a = new_class(s, 0, 1), *b = new_class(s, 1, 1);
    ir_stream_add(a, "nccl2", false);
    ir_stream_add(b, "nccl2", false);
    int late = compute(a, 1e9, NULL, 0);
    int xa = coll_op(a, g, &late, 1);
    IrOp y = {.kind = IR_OP_COLL, .stream = (uint16_t)ir_stream_find(a, "nccl2")};
    y.u.coll.coll = IR_COLL_ALLREDUCE;
    y.u.coll.group = (uint16_t)g;
    y.u.coll.bytes = 1000;
    int ya = ir_op_add(a, &y, "second", NULL, 0);
    int xb = coll_op(b, g, NULL, 0);
    int yb = ir_op_add(b, &y, "second", NULL, 0);
    GError *error = NULL;
    SimResult *r = sim_run(s, &cfg, &error);
    assert_non_null(r);
    assert_int_equal(sim_op_start_ns(&r->classes[0], xa), 1000 * US);
    assert_int_equal(sim_op_end_ns(&r->classes[0], xa), 3000 * US);
    assert_int_equal(sim_op_end_ns(&r->classes[1], xb),
                     3000 * US); /* with rank 0's first, not its second */
    assert_int_equal(sim_op_end_ns(&r->classes[0], ya), 2000 * US);
    assert_int_equal(sim_op_end_ns(&r->classes[1], yb), 2000 * US);
    sim_result_free(r);
    ir_schedule_free(s);
}

static void test_deadlock_is_reported(void **state)
{
    IrSchedule *s = ir_schedule_new(1, 2);
    int g = ir_group_add(s, "all", 2, 1);
    IrClass *a = new_class(s, 0, 1);
    new_class(s, 1, 1);
    coll_op(a, g, NULL, 0); /* rank 1 never joins */
    GError *error = NULL;
    SimResult *r = sim_run(s, &cfg, &error);
    assert_null(r);
    assert_non_null(strstr(error->message, "deadlock"));
    g_error_free(error);
    ir_schedule_free(s);
}

static void test_p2p_rendezvous(void **state)
{
    IrSchedule *s = ir_schedule_new(1, 2);
    IrClass *a = new_class(s, 0, 1), *b = new_class(s, 1, 1);
    int c0 = compute(a, 1e9, NULL, 0);
    IrOp send = {.kind = IR_OP_SEND, .stream = (uint16_t)ir_stream_find(a, "nccl")};
    send.u.p2p = (typeof(send.u.p2p)){.peer_offset = 1, .bytes = 10, .tag = 7};
    int sa = ir_op_add(a, &send, "send", &c0, 1);
    IrOp recv = {.kind = IR_OP_RECV, .stream = (uint16_t)ir_stream_find(b, "nccl")};
    recv.u.p2p = (typeof(recv.u.p2p)){.peer_offset = -1, .bytes = 10, .tag = 7};
    int rb = ir_op_add(b, &recv, "recv", NULL, 0);
    GError *error = NULL;
    SimResult *r = sim_run(s, &cfg, &error);
    assert_non_null(r);
    assert_int_equal(sim_op_end_ns(&r->classes[0], sa), 4000 * US);
    assert_int_equal(sim_op_end_ns(&r->classes[1], rb), 4000 * US);
    sim_result_free(r);
    ir_schedule_free(s);
}

static void test_memory_replay(void **state)
{
    IrSchedule *s = ir_schedule_new(1, 1);
    IrClass *c = new_class(s, 0, 1);
    IrOp alloc = {.kind = IR_OP_ALLOC, .stream = (uint16_t)ir_stream_find(c, "host")};
    alloc.u.mem = (typeof(alloc.u.mem)){ir_string(c, "a"), IR_MEM_ACTIVATIONS, 100};
    ir_op_add(c, &alloc, "a", NULL, 0);
    int k = compute(c, 1e9, NULL, 0);
    alloc.u.mem = (typeof(alloc.u.mem)){ir_string(c, "b"), IR_MEM_PARAMS, 50};
    ir_op_add(c, &alloc, "b", NULL, 0); /* host runs ahead: b is live while k runs */
    IrOp fr = {.kind = IR_OP_FREE, .stream = (uint16_t)ir_stream_find(c, "compute")};
    fr.u.mem = (typeof(fr.u.mem)){ir_string(c, "a"), IR_MEM_ACTIVATIONS, 100};
    ir_op_add(c, &fr, "a", &k, 1);
    GError *error = NULL;
    SimResult *r = sim_run(s, &cfg, &error);
    assert_non_null(r);
    const MemTracker *m = &r->classes[0].mem;
    assert_int_equal(m->peak, 150);
    assert_int_equal(m->at_peak[IR_MEM_ACTIVATIONS], 100);
    assert_int_equal(m->at_peak[IR_MEM_PARAMS], 50);
    assert_int_equal(m->total, 50);
    /* the free happened when the GPU finished k, at 1 ms */
    const MemSample *last = &g_array_index(m->timeline, MemSample, m->timeline->len - 1);
    assert_int_equal(last->time_ns, 1000 * US);
    sim_result_free(r);

    /* freeing what is not allocated is an error in the schedule */
    fr.u.mem.buffer = ir_string(c, "never");
    ir_op_add(c, &fr, "never", &k, 1);
    r = sim_run(s, &cfg, &error);
    assert_null(r);
    assert_non_null(strstr(error->message, "never"));
    g_error_free(error);
    ir_schedule_free(s);
}

/* The engine asks the collective model once per (group family, kind, bytes) and reuses the
 * answer: a model that counts its calls and takes 1 ns per byte. Six allreduces in a chain on two
 * families: 1000 B twice on each, then sizes that differ only above bit 32 (a key that kept the
 * low 32 bits would reuse the first answer) and a different kind of the same size. */
static int coll_calls;
static double counting_coll(const CollModel *self, const CollShape *shape, CollChoice *choice)
{
    coll_calls++;
    return (double)shape->bytes * 1e-9 * (shape->kind == IR_COLL_ALLGATHER ? 2 : 1) *
           shape->nranks / 2;
}

static void test_collective_cost_cached(void **state)
{
    CollModel counting = {"counting", counting_coll, fixed_p2p, &topo, -1, -1, false, 0};
    SimConfig ccfg = {&topo, &counting, NULL};
    IrSchedule *s = ir_schedule_new(1, 2);
    int pair = ir_group_add(s, "pair", 2, 1), self = ir_group_add(s, "self", 1, 1);
    IrClass *c = new_class(s, 0, 2);
    const struct {
        int group, kind;
        uint64_t bytes;
        int64_t ns; /* duration */
    } ops[] = {{pair, IR_COLL_ALLREDUCE, 1000, 1000},
               {self, IR_COLL_ALLREDUCE, 1000, 500},
               {pair, IR_COLL_ALLREDUCE, 1000, 1000},
               {pair, IR_COLL_ALLREDUCE, 1000 + (1ull << 32), 1000 + (1ll << 32)},
               {pair, IR_COLL_ALLGATHER, 1000, 2000},
               {self, IR_COLL_ALLREDUCE, 1000, 500}};
    int idx[G_N_ELEMENTS(ops)], prev = -1;
    for (size_t k = 0; k < G_N_ELEMENTS(ops); k++) {
        IrOp op = {.kind = IR_OP_COLL, .stream = (uint16_t)ir_stream_find(c, "nccl")};
        op.u.coll.coll = (uint8_t)ops[k].kind;
        op.u.coll.group = (uint16_t)ops[k].group;
        op.u.coll.bytes = ops[k].bytes;
        idx[k] = prev = ir_op_add(c, &op, "coll", &prev, 1);
    }
    coll_calls = 0;
    GError *error = NULL;
    SimResult *r = sim_run(s, &ccfg, &error);
    assert_non_null(r);
    for (size_t k = 0; k < G_N_ELEMENTS(ops); k++)
        assert_int_equal(sim_op_end_ns(&r->classes[0], idx[k]) -
                             sim_op_start_ns(&r->classes[0], idx[k]),
                         ops[k].ns);
    assert_int_equal(coll_calls, 4);
    sim_result_free(r);
    ir_schedule_free(s);
}

/* sim_region_periods: the fewest periods any class's periodic region holds, whichever class
 * that is, and -1 where a class has none (src/compact sizes its programs by it). A class here
 * is `prologue` distinct compute ops, then `periods` pairs of two alike ones. */
static void periodic_class(IrSchedule *s, int first, int prologue, int periods)
{
    IrClass *c = new_class(s, first, 1);
    for (int i = 0; i < prologue; i++)
        compute(c, 1e9 + i, NULL, 0);
    for (int i = 0; i < periods; i++) {
        compute(c, 5e8, NULL, 0);
        compute(c, 2e8, NULL, 0);
    }
}

static void test_region_periods_fewest(void **state)
{
    (void)state;
    /* 30 periods in one class, 100 in the other, in either order */
    for (int order = 0; order < 2; order++) {
        IrSchedule *s = ir_schedule_new(1, 2);
        periodic_class(s, 0, 20, order ? 100 : 30);
        periodic_class(s, 1, 10, order ? 30 : 100);
        assert_int_equal(sim_region_periods(s), 30);
        ir_schedule_free(s);
    }
    /* a class of distinct ops only: no region */
    IrSchedule *s = ir_schedule_new(1, 2);
    periodic_class(s, 0, 10, 100);
    periodic_class(s, 1, 80, 0);
    assert_int_equal(sim_region_periods(s), -1);
    ir_schedule_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_streams_host_issue_and_deps, setup),
        cmocka_unit_test_setup(test_collective_waits_for_every_class, setup),
        cmocka_unit_test_setup(test_collectives_pair_in_program_order, setup),
        cmocka_unit_test_setup(test_deadlock_is_reported, setup),
        cmocka_unit_test_setup(test_p2p_rendezvous, setup),
        cmocka_unit_test_setup(test_memory_replay, setup),
        cmocka_unit_test_setup(test_collective_cost_cached, setup),
        cmocka_unit_test(test_region_periods_fewest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
