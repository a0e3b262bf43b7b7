/* run_plan: what fsdprun-nccl derives from the schedule before it touches a GPU (run_plan.h).
 * Pins, on generated pipeline schedules (1F1B and interleaved, with data parallelism and tied
 * embeddings): every send and its receive name the same two-rank communicator, a communicator is
 * used by one stream per rank, every rank lists its communicators in one global order, every rank
 * makes the same collective communicators; the messages for broken schedules; and that the GEMM
 * standing for an op's FLOPs has those FLOPs. */
#include "testutil.h"

#include "run/run_plan.h"

static void test_gemm_plan(void **state)
{
    (void)state;
    double sizes[] = {1e6, 3e8, 1e9, 3.3e10, 2.0 * 4096 * 4096 * 4096, 1e12, 7.7e13};
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        RunGemmPlan g = run_gemm_plan(sizes[i]);
        assert_true(g.t >= 64 && g.t <= RUN_GEMM_T_MAX && (g.t & (g.t - 1)) == 0);
        assert_true(g.k >= 1 && g.k <= RUN_GEMM_K_MAX + 8 && g.reps >= 1);
        double flops = 2.0 * g.t * g.t * (double)g.k * g.reps;
        /* k is rounded to a multiple of 8: within 1 % from 1 GFLOP on */
        assert_close(flops, sizes[i], sizes[i] >= 1e9 ? 0.01 : 0.1);
    }
    RunGemmPlan g = run_gemm_plan(2.0 * 4096 * 4096 * 4096);
    assert_int_equal(g.t, 4096);
    assert_int_equal(g.k, 4096);
    assert_int_equal(g.reps, 1);
    g = run_gemm_plan(100);
    assert_int_equal(g.reps, 0); /* less than a 64 x 64 x 1 GEMM: nothing */
}

static IrSchedule *pipeline(int nodes, int gpn, int pp, PpSchedule kind, int v, Run *r)
{
    run_start(r, "models/gpt2.json", "topologies/juwels-booster.json", nodes, gpn);
    r->opt.kind = STRAT_DDP;
    r->opt.pp = pp;
    r->opt.pp_schedule = kind;
    r->opt.virtual_stages = v;
    r->opt.grad_accum = 8;
    GError *error = NULL;
    if (!strat_layout_make(&r->opt, nodes, gpn, &r->layout, &error))
        fail_msg("%s", error->message);
    r->sched = strat_generate(r->model, r->topo, &r->opt, &r->layout, &r->info, &error);
    if (!r->sched)
        fail_msg("%s", error->message);
    return r->sched;
}

static void pipeline_free(Run *r)
{
    ir_schedule_free(r->sched);
    strat_info_clear(&r->info);
    model_free(r->model);
    hw_topology_free(r->topo);
}

static bool key_equal(const RunP2pKey *a, const RunP2pKey *b)
{
    return run_p2p_key_order(a, b) == 0;
}

static void check_plans(const IrSchedule *s)
{
    RunCommPlan *plan = g_new0(RunCommPlan, s->world);
    GError *error = NULL;
    for (int r = 0; r < s->world; r++)
        if (!run_comm_plan(s, r, &plan[r], &error))
            fail_msg("rank %d: %s", r, error->message);
    int p2p_ops = 0;
    for (int r = 0; r < s->world; r++) {
        const IrClass *c = s->classes[ir_class_of_rank(s, r)];
        /* the same collective communicators everywhere */
        assert_int_equal(plan[r].coll->len, plan[0].coll->len);
        for (guint k = 0; k < plan[r].coll->len; k++) {
            assert_int_equal(g_array_index(plan[r].coll, RunCollKey, k).group,
                             g_array_index(plan[0].coll, RunCollKey, k).group);
            assert_string_equal(g_array_index(plan[r].coll, RunCollKey, k).stream,
                                g_array_index(plan[0].coll, RunCollKey, k).stream);
        }
        /* one global order */
        for (guint k = 1; k < plan[r].p2p->len; k++)
            assert_true(run_p2p_key_order(&g_array_index(plan[r].p2p, RunP2pKey, k - 1),
                                          &g_array_index(plan[r].p2p, RunP2pKey, k)) < 0);
        int *stream_of_key = g_new(int, MAX(plan[r].p2p->len, 1));
        for (guint k = 0; k < plan[r].p2p->len; k++)
            stream_of_key[k] = -1;
        for (int i = 0; i < plan[r].n_ops; i++) {
            const IrOp *op = ir_op(c, i);
            int k = plan[r].op_key[i];
            if (op->kind == IR_OP_COLL && s->groups[op->u.coll.group].size > 1) {
                const RunCollKey *key = &g_array_index(plan[r].coll, RunCollKey, k);
                assert_int_equal(key->group, op->u.coll.group);
                assert_string_equal(key->stream, c->streams[op->stream].name);
            }
            if (op->kind != IR_OP_SEND && op->kind != IR_OP_RECV)
                continue;
            p2p_ops++;
            assert_true(k >= 0);
            const RunP2pKey *key = &g_array_index(plan[r].p2p, RunP2pKey, k);
            bool send = op->kind == IR_OP_SEND;
            int peer = r + op->u.p2p.peer_offset;
            assert_int_equal(send ? key->src : key->dst, r);
            assert_int_equal(send ? key->dst : key->src, peer);
            assert_string_equal(send ? key->sname : key->rname, c->streams[op->stream].name);
            /* a communicator is used by one stream of the rank */
            if (stream_of_key[k] < 0)
                stream_of_key[k] = op->stream;
            assert_int_equal(stream_of_key[k], op->stream);
            /* the peer lists the same communicator */
            bool found = false;
            for (guint m = 0; m < plan[peer].p2p->len && !found; m++)
                found = key_equal(&g_array_index(plan[peer].p2p, RunP2pKey, m), key);
            assert_true(found);
        }
        g_free(stream_of_key);
    }
    assert_true(p2p_ops > 0);
    for (int r = 0; r < s->world; r++)
        run_comm_plan_clear(&plan[r]);
    g_free(plan);
}

static void test_pipeline_plans(void **state)
{
    (void)state;
    Run r;
    /* 2 nodes x 4 GPUs: pp 4 x dp 2, 1F1B; tied embeddings send between first and last stage */
    check_plans(pipeline(2, 4, 4, PP_SCHEDULE_1F1B, 1, &r));
    pipeline_free(&r);
    /* interleaved, 3 model chunks per rank, pp 2 x dp 2: sends wrap from the last stage to the
     * first (12 layers over 6 virtual stages) */
    check_plans(pipeline(1, 4, 2, PP_SCHEDULE_INTERLEAVED, 3, &r));
    pipeline_free(&r);
    /* two stages: activations, gradients and the embedding between the same two ranks */
    check_plans(pipeline(1, 2, 2, PP_SCHEDULE_1F1B, 1, &r));
    pipeline_free(&r);
}

static void expect_plan_error(IrSchedule *s, const char *needle)
{
    GError *error = NULL;
    bool failed = false;
    for (int r = 0; r < s->world && !failed; r++) {
        RunCommPlan plan;
        failed = !run_comm_plan(s, r, &plan, &error);
        run_comm_plan_clear(&plan);
    }
    assert_true(failed);
    if (!strstr(error->message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", error->message, needle);
    assert_int_equal(error->code, FSD_ERROR_INPUT);
    g_error_free(error);
}

/* The first and second receive of the first class that has two on one stream from one peer. */
static bool two_recvs(IrSchedule *s, IrOp **a, IrOp **b)
{
    for (int ci = 0; ci < s->n_classes; ci++) {
        IrClass *c = s->classes[ci];
        *a = NULL;
        for (int i = 0; i < ir_class_n_ops(c); i++) {
            IrOp *op = &g_array_index(c->ops, IrOp, i);
            if (op->kind != IR_OP_RECV)
                continue;
            if (!*a)
                *a = op;
            else if (op->stream == (*a)->stream &&
                     op->u.p2p.peer_offset == (*a)->u.p2p.peer_offset) {
                *b = op;
                return true;
            }
        }
    }
    return false;
}

static void test_plan_errors(void **state)
{
    (void)state;
    Run r;
    IrOp *a = NULL, *b = NULL;
    IrSchedule *s = pipeline(1, 4, 4, PP_SCHEDULE_1F1B, 1, &r);
    assert_true(two_recvs(s, &a, &b));
    uint32_t t = a->u.p2p.tag;
    a->u.p2p.tag = b->u.p2p.tag, b->u.p2p.tag = t; /* received in the other order */
    expect_plan_error(s, "expected them received in the order they are sent");
    a->u.p2p.tag = 999999; /* no sender */
    expect_plan_error(s, "expected a matching");
    pipeline_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_plan),
        cmocka_unit_test(test_pipeline_plans),
        cmocka_unit_test(test_plan_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
