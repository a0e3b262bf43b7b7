/* sim_host: the lazy host gives the queue's results to the bit (FSDPSIM_NO_LAZY_HOST=1 queues
 * every host op): every op's start and end, the memory timeline and peak, the sums and the event
 * count, on random hand-made schedules (seeded). Round durations make ties between host and GPU
 * events at the same ns, where the lazy host must give up and run again queued; durations with
 * odd nanoseconds make hosts fall behind their GPU and catch up without ties (late host events);
 * some classes' hosts wait for their GPU (a host op depending on a GPU op), so they stay queued
 * beside lazy ones. And on generated layouts (pipelines whose steady phase is skipped, FSDP),
 * with the flow model: the skips must be the same. */
#include "testutil.h"

static HwTopology topo;

/* collectives of 3 us, send/recv of 4 us: short beside the ops, so hosts fall behind too */
static double short_coll(const CollModel *self, const CollShape *shape, CollChoice *choice)
{
    return 3e-6;
}
static double short_p2p(const CollModel *self, uint64_t bytes, bool same_node)
{
    return 4e-6;
}

static CollModel coll = {"short", short_coll, short_p2p, &topo, -1, -1, false, 0};
static SimConfig cfg = {&topo, &coll, NULL};

static int setup(void **state)
{
    (void)state;
    toy_topology(&topo, 4);
    return 0;
}

/* a duration in seconds: whole microseconds, or (odd) with nanoseconds that rarely meet */
static double duration_s(GRand *rng, bool odd, int max_us)
{
    double us = g_rand_int_range(rng, 1, max_us + 1);
    if (odd)
        us += g_rand_int_range(rng, 1, 1000) * 1e-3;
    return us * 1e-6;
}

static int add(IrClass *c, IrOp *op, const char *stream, const int *deps, int n)
{
    op->stream = (uint16_t)ir_stream_find(c, stream);
    return ir_op_add(c, op, "op", deps, n);
}

/* One class's program: segments of host launches, kernels, allocations and frees, each ending
 * in a collective of the group every class is in (so the rendezvous always meet). */
static void program(IrClass *c, GRand *rng, int group, int segments, bool odd, bool host_waits)
{
    int last_compute = -1, buffers = 0;
    for (int seg = 0; seg < segments; seg++) {
        int n = g_rand_int_range(rng, 1, 6);
        for (int k = 0; k < n; k++) {
            IrOp h = {.kind = IR_OP_HOST};
            /* now and then a long host op (an optimizer step on the CPU): the GPU drains */
            h.u.host.seconds = duration_s(rng, odd, g_rand_int_range(rng, 0, 8) == 0 ? 200 : 6);
            add(c, &h, "host", NULL, 0);
            IrOp k_op = {.kind = IR_OP_COMPUTE, .dtype = HW_DTYPE_BF16};
            IrCompute payload = {.flops = duration_s(rng, odd, 20) * 1e12};
            k_op.u.compute.payload = ir_compute_add(c, &payload);
            /* now and then a kernel waits for an earlier one on its stream explicitly */
            bool dep = last_compute >= 0 && g_rand_boolean(rng);
            last_compute = add(c, &k_op, "compute", dep ? &last_compute : NULL, dep ? 1 : 0);
            if (g_rand_int_range(rng, 0, 3) == 0) { /* a buffer: allocated by the host */
                char name[32];
                g_snprintf(name, sizeof name, "b%d", buffers++);
                IrOp a = {.kind = IR_OP_ALLOC};
                a.u.mem.buffer = ir_string(c, name);
                a.u.mem.category = IR_MEM_ACTIVATIONS;
                a.u.mem.bytes = (uint64_t)g_rand_int_range(rng, 1, 100) * 1000;
                add(c, &a, "host", NULL, 0);
                IrOp f = a;
                f.kind = IR_OP_FREE; /* freed by the host or, after a kernel, by the GPU */
                if (g_rand_boolean(rng)) {
                    add(c, &f, "host", NULL, 0);
                } else {
                    IrOp h2 = {.kind = IR_OP_HOST};
                    h2.u.host.seconds = duration_s(rng, odd, 3);
                    add(c, &h2, "host", NULL, 0);
                    add(c, &f, "compute", NULL, 0);
                }
            }
            if (host_waits && last_compute >= 0 && g_rand_int_range(rng, 0, 6) == 0) {
                IrOp w = {.kind = IR_OP_HOST}; /* cudaStreamSynchronize */
                w.u.host.seconds = 1e-6;
                add(c, &w, "host", &last_compute, 1);
            }
        }
        IrOp h = {.kind = IR_OP_HOST};
        h.u.host.seconds = duration_s(rng, odd, 4);
        add(c, &h, "host", NULL, 0);
        IrOp a = {.kind = IR_OP_COLL};
        a.u.coll.coll = IR_COLL_ALLREDUCE;
        a.u.coll.group = (uint16_t)group;
        a.u.coll.bytes = 1000;
        add(c, &a, "nccl", NULL, 0);
    }
}

static void same_result(const IrSchedule *s, const SimResult *a, const SimResult *b, guint32 seed)
{
    if (a->makespan_ns != b->makespan_ns || a->events != b->events)
        fail_msg("seed %u: makespan %" G_GINT64_FORMAT " events %" G_GUINT64_FORMAT
                 " (lazy) != %" G_GINT64_FORMAT " %" G_GUINT64_FORMAT,
                 seed, a->makespan_ns, a->events, b->makespan_ns, b->events);
    for (int c = 0; c < s->n_classes; c++) {
        const SimClassResult *x = &a->classes[c], *y = &b->classes[c];
        size_t n = (size_t)ir_class_n_ops(s->classes[c]);
        for (size_t i = 0; i < n; i++)
            if (sim_op_start_ns(x, i) != sim_op_start_ns(y, i) ||
                sim_op_end_ns(x, i) != sim_op_end_ns(y, i))
                fail_msg("seed %u class %d op %zu: [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                         "] (lazy) != [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]",
                         seed, c, i, sim_op_start_ns(x, i), sim_op_end_ns(x, i),
                         sim_op_start_ns(y, i), sim_op_end_ns(y, i));
        assert_int_equal(x->mem.peak, y->mem.peak);
        assert_int_equal(x->mem.peak_time_ns, y->mem.peak_time_ns);
        assert_int_equal(x->mem.timeline->len, y->mem.timeline->len);
        assert_memory_equal(x->mem.timeline->data, y->mem.timeline->data,
                            sizeof(MemSample) * x->mem.timeline->len);
        assert_memory_equal(&x->coll_time_by_kind, &y->coll_time_by_kind,
                            sizeof x->coll_time_by_kind);
        assert_memory_equal(&x->coll_bytes_sent, &y->coll_bytes_sent, sizeof(double));
        assert_memory_equal(&x->overlap_cost_s, &y->overlap_cost_s, sizeof(double));
    }
}

static void test_random_schedules(void **state)
{
    for (guint32 seed = 1; seed <= 300; seed++) {
        GRand *rng = g_rand_new_with_seed(seed);
        int n_classes = g_rand_int_range(rng, 1, 5);
        bool odd = g_rand_boolean(rng);
        IrSchedule *s = ir_schedule_new(1, n_classes);
        int g = ir_group_add(s, "all", n_classes, 1);
        int segments = g_rand_int_range(rng, 1, 12);
        /* alike classes (the same program): their hosts fall behind at the same ns */
        bool alike = g_rand_boolean(rng);
        guint32 program_seed = g_rand_int(rng);
        for (int c = 0; c < n_classes; c++) {
            IrClass *cls = ir_class_add(s, c, 1, 1);
            ir_stream_add(cls, "host", true);
            ir_stream_add(cls, "compute", false);
            ir_stream_add(cls, "nccl", false);
            GRand *prng = alike ? g_rand_new_with_seed(program_seed) : NULL;
            program(cls, alike ? prng : rng, g, segments, odd, g_rand_int_range(rng, 0, 4) == 0);
            if (prng)
                g_rand_free(prng);
        }
        GError *error = NULL;
        g_setenv("FSDPSIM_NO_LAZY_HOST", "1", TRUE);
        SimResult *queued = sim_run(s, &cfg, &error);
        g_unsetenv("FSDPSIM_NO_LAZY_HOST");
        if (!queued)
            fail_msg("seed %u: %s", seed, error->message);
        SimResult *lazy = sim_run(s, &cfg, &error);
        assert_non_null(lazy);
        same_result(s, lazy, queued, seed);
        sim_result_free(lazy);
        sim_result_free(queued);
        ir_schedule_free(s);
        g_rand_free(rng);
    }
}

/* A generated layout both ways, steady state on: the same results and the same skips. */
static uint64_t compare_layout(const char *model_path, int nodes, int tp, int pp, int micro_batches,
                               int chunks, bool sp, StratKind kind, PpSchedule schedule)
{
    Model *model = load_model(model_path, NULL);
    HwTopology *juwels = load_topo("topologies/juwels-booster.json");
    StratOptions opt;
    strat_options_default(&opt, model);
    opt.kind = kind;
    opt.tp = tp;
    opt.pp = pp;
    opt.grad_accum = micro_batches;
    opt.virtual_stages = chunks;
    opt.pp_schedule = schedule;
    opt.sequence_parallel = sp;
    GError *error = NULL;
    StratLayout layout;
    StratInfo info;
    assert_true(strat_layout_make(&opt, nodes, juwels->gpus_per_node, &layout, &error));
    IrSchedule *s = strat_generate(model, juwels, &opt, &layout, &info, &error);
    if (!s)
        fail_msg("%s", error->message);
    CollModel analytic;
    coll_model_analytic_init(&analytic, juwels);
    NetTopo *net = net_topo_new(juwels, nodes, juwels->gpus_per_node);
    SimConfig net_cfg = {juwels, &analytic, net};
    g_setenv("FSDPSIM_NO_LAZY_HOST", "1", TRUE);
    SimResult *queued = sim_run(s, &net_cfg, &error);
    g_unsetenv("FSDPSIM_NO_LAZY_HOST");
    assert_non_null(queued);
    SimResult *lazy = sim_run(s, &net_cfg, &error);
    assert_non_null(lazy);
    same_result(s, lazy, queued, 0);
    assert_int_equal(lazy->steady_periods, queued->steady_periods);
    assert_int_equal(lazy->transfers, queued->transfers);
    assert_int_equal(lazy->n_links, queued->n_links);
    for (int i = 0; i < lazy->n_links; i++) {
        assert_int_equal(lazy->links[i].stats.busy_ns, queued->links[i].stats.busy_ns);
        assert_memory_equal(&lazy->links[i].stats.bytes, &queued->links[i].stats.bytes,
                            sizeof(double));
    }
    uint64_t skipped = lazy->steady_periods;
    sim_result_free(lazy);
    sim_result_free(queued);
    net_topo_free(net);
    strat_info_clear(&info);
    ir_schedule_free(s);
    hw_topology_free(juwels);
    model_free(model);
    return skipped;
}

static void test_generated_layouts(void **state)
{
    const char *gpt3 = "models/gpt3-175b.json";
    /* 1F1B whose steady phase is skipped, interleaved with sequence parallelism (skipped too),
     * GPipe, FSDP across stages; FSDP and DDP without pipelines */
    assert_true(compare_layout(gpt3, 48, 8, 8, 256, 1, false, STRAT_DDP, PP_SCHEDULE_1F1B) > 0);
    assert_true(compare_layout(gpt3, 16, 4, 4, 256, 2, true, STRAT_DDP, PP_SCHEDULE_INTERLEAVED) >
                0);
    compare_layout(gpt3, 16, 4, 8, 64, 1, false, STRAT_DDP, PP_SCHEDULE_GPIPE);
    compare_layout(gpt3, 48, 8, 8, 32, 1, false, STRAT_FSDP, PP_SCHEDULE_1F1B);
    compare_layout("models/gpt.json", 4, 1, 1, 1, 1, false, STRAT_FSDP, PP_SCHEDULE_1F1B);
    compare_layout("models/gpt.json", 4, 1, 1, 1, 1, false, STRAT_DDP, PP_SCHEDULE_1F1B);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_schedules),
        cmocka_unit_test(test_generated_layouts),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
