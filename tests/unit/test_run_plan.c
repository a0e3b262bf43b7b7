/* run_plan: what fsdprun-nccl derives from the schedule before it touches a GPU (run_plan.h).
 * Pins, on generated pipeline schedules (1F1B and interleaved, with data parallelism and tied
 * embeddings): every send and its receive name the same two-rank communicator, a communicator is
 * used by one stream per rank, every rank lists its communicators in one global order, every rank
 * makes the same collective communicators; the messages for broken schedules; and that the GEMM
 * standing for an op's FLOPs has those FLOPs; the GEMMs of an op's kernel list, and the one-entry
 * plan of an op without one. */
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
            IrOp *op = ir_op(c, i);
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

/* fsdprun-nccl runs the kernels the schedule names: a GEMM at its shape (share 3: three times;
 * 0.5: half its rows), batched where it is; attention and shapeless FLOPs as square GEMMs of
 * their FLOPs; memory-bound bytes as a copy; a GEMM too large for one operand buffer in pieces
 * of the same FLOPs; an op without a list keeps the FLOP-equivalent GEMM. */
static double plan_flops(const RunKernelPlan *p)
{
    double f = 0;
    for (guint i = 0; i < p->gemms->len; i++) {
        const RunGemm *g = &g_array_index(p->gemms, RunGemm, i);
        f += 2.0 * g->m * g->n * (double)g->k * g->batch * g->reps;
    }
    return f;
}

static void test_kernel_plan(void **state)
{
    (void)state;
    IrSchedule *s = ir_schedule_new(1, 1);
    IrClass *c = ir_class_add(s, 0, 1, 1);
    IrKernel list[] = {
        {.cls = IR_KERN_GEMM, .dtype = HW_DTYPE_BF16, .shape = {8192, 2304, 768, 1}, .share = 1},
        {.cls = IR_KERN_GEMM, .dtype = HW_DTYPE_BF16, .shape = {1024, 64, 1024, 96}, .share = 3},
        {.cls = IR_KERN_GEMM, .dtype = HW_DTYPE_BF16, .shape = {4096, 4096, 4096, 1}, .share = 0.5},
        {.cls = IR_KERN_ATTENTION, .dtype = HW_DTYPE_BF16, .shape = {96, 1024, 64, 0},
         .flags = IR_KERN_CAUSAL, .share = 1},
        {.cls = IR_KERN_MEMORY, .dtype = HW_DTYPE_BF16, .shape = {1e8, 4}, .share = 1},
        {.cls = IR_KERN_FLOPS, .dtype = HW_DTYPE_BF16, .shape = {1e11}, .share = 1},
    };
    IrOp op = {.kind = IR_OP_COMPUTE};
    IrCompute payload = {.kern_first = ir_kernels_add(c, list, G_N_ELEMENTS(list))};
    op.u.compute.payload = ir_compute_add(c, &payload);
    RunKernelPlan p = {0};
    run_kernel_plan(c, &op, &p);
    assert_int_equal(p.gemms->len, 5);
    const RunGemm *g = (const RunGemm *)(void *)p.gemms->data;
    assert_true(g[0].m == 8192 && g[0].n == 2304 && g[0].k == 768 && g[0].batch == 1 &&
                g[0].reps == 1);
    assert_true(g[1].m == 1024 && g[1].n == 64 && g[1].batch == 96 && g[1].reps == 3);
    assert_true(g[2].m == 2048 && g[2].n == 4096 && g[2].reps == 1);
    double attn = 4.0 * 96 * 1024 * 1024 * 64 * 0.5;
    assert_close(2.0 * g[3].m * g[3].n * (double)g[3].k * g[3].reps, attn, 0.02);
    assert_close(2.0 * g[4].m * g[4].n * (double)g[4].k * g[4].reps, 1e11, 0.02);
    assert_float_equal(p.copy_bytes, 1e8, 0);
    run_kernel_plan_clear(&p);

    /* the LM head's weight gradient of a 128k vocabulary over 32k tokens: 8 GB of B operand */
    IrKernel big = {.cls = IR_KERN_GEMM, .dtype = HW_DTYPE_BF16, .shape = {4096, 128256, 32768, 1},
                    .share = 1};
    payload = (IrCompute){.kern_first = ir_kernels_add(c, &big, 1)};
    op.u.compute.payload = ir_compute_add(c, &payload);
    run_kernel_plan(c, &op, &p);
    g = (const RunGemm *)(void *)p.gemms->data;
    assert_true(g[0].reps > 1);
    assert_true((double)g[0].k * g[0].n * 2 <= RUN_GEMM_OPERAND_MAX &&
                (double)g[0].m * g[0].n * 2 <= RUN_GEMM_OPERAND_MAX);
    assert_close(plan_flops(&p), 2.0 * 4096 * 128256 * 32768, 0.001);
    run_kernel_plan_clear(&p);

    /* no kernel list (schedule versions 1-2): one square GEMM for the FLOPs, the bytes copied */
    payload = (IrCompute){.flops = 3.3e10, .bytes = 5e7};
    op.u.compute.payload = ir_compute_add(c, &payload);
    run_kernel_plan(c, &op, &p);
    RunGemmPlan sq = run_gemm_plan(payload.flops);
    assert_int_equal(p.gemms->len, 1);
    g = (const RunGemm *)(void *)p.gemms->data;
    assert_true(g[0].m == sq.t && g[0].n == sq.t && g[0].k == sq.k && g[0].batch == 1 &&
                g[0].reps == sq.reps);
    assert_float_equal(p.copy_bytes, 5e7, 0);
    run_kernel_plan_clear(&p);
    /* below one 64 x 64 x 1 GEMM: the copy alone */
    payload.flops = 100;
    op.u.compute.payload = ir_compute_add(c, &payload);
    run_kernel_plan(c, &op, &p);
    assert_int_equal(p.gemms->len, 0);
    assert_float_equal(p.copy_bytes, 5e7, 0);
    run_kernel_plan_clear(&p);
    ir_schedule_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_plan), cmocka_unit_test(test_kernel_plan),
        cmocka_unit_test(test_pipeline_plans),
        cmocka_unit_test(test_plan_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
