/* pp: the closed forms of pipeline and tensor parallelism, measured on generated and simulated
 * schedules.
 *   Bubble (Narayanan et al., SC'21): (p-1)/m of the ideal time for GPipe and 1F1B, (1/v)(p-1)/m
 *   for the interleaved schedule, under uniform stage times: measured from the simulated
 *   timeline (idle time of each stage's compute stream), not recomputed from the formula.
 *   In-flight activations: GPipe keeps m micro-batches on the first stage, 1F1B p.
 *   Megatron's GEMM FLOPs per iteration with full recompute: 96 B s l h^2 (1 + s/(6h) + V/(16 l h)).
 *   TP communication per layer per micro-batch: two all-reduces of s*b*h in forward, two in
 *   backward (2(t-1)/t each, ring); sequence parallelism moves the same volume as reduce-scatters
 *   and all-gathers ((t-1)/t each). */
#include "testutil.h"

/* GPT-2 shaped, 64 uniform layers, a vocabulary of 8 so that the embedding and head add almost
 * nothing to the first and last stage: stage times are uniform to well under 1 %. */
static const char *uniform_model =
    "{\"model_type\": \"gpt2\", \"n_embd\": 4096, \"n_head\": 32, \"n_layer\": 64, "
    "\"n_positions\": 1024, \"vocab_size\": 8, \"tie_word_embeddings\": true, "
    "\"fsdpsim\": {\"name\": \"uniform\", \"training\": {\"seq_len\": 1024, \"micro_batch_size\": 1, "
    "\"param_dtype\": \"bf16\", \"optimizer\": \"adamw\"}}}";

static char *tmpdir, *uniform_path;

static int setup(void **state)
{
    tmpdir = g_dir_make_tmp("fsdpsim-pp-XXXXXX", NULL);
    uniform_path = g_build_filename(tmpdir, "uniform.json", NULL);
    g_file_set_contents(uniform_path, uniform_model, -1, NULL);
    return 0;
}

static int teardown(void **state)
{
    g_unlink(uniform_path);
    g_rmdir(tmpdir);
    g_free(uniform_path);
    g_free(tmpdir);
    return 0;
}

static double free_p2p(const CollModel *self, uint64_t bytes, bool same_node)
{
    return 0;
}

static void start(Run *r, const char *model_path, int nodes, int gpn, int tp, int pp, int m)
{
    memset(r, 0, sizeof *r);
    GError *error = NULL;
    r->model = model_load(model_path, NULL, &error);
    if (!r->model)
        fail_msg("%s", error->message);
    r->topo = load_topo("topologies/juwels-booster.json");
    strat_options_default(&r->opt, r->model);
    r->opt.kind = STRAT_DDP;
    r->opt.tp = tp;
    r->opt.pp = pp;
    r->opt.grad_accum = m;
    r->layout.nodes = nodes;
    r->layout.gpus_per_node = gpn;
}

/* run_sim, with send/recv free and no launch cost when `ideal`: the setting of the closed forms */
static void simulate(Run *r, bool ideal)
{
    GError *error = NULL;
    if (ideal)
        r->topo->gpu.launch_overhead_s = 0;
    if (!strat_layout_make(&r->opt, r->layout.nodes, r->layout.gpus_per_node, &r->layout, &error))
        fail_msg("%s", error->message);
    r->sched = strat_generate(r->model, r->topo, &r->opt, &r->layout, &r->info, &error);
    if (!r->sched)
        fail_msg("%s", error->message);
    coll_model_analytic_init(&r->coll, r->topo);
    if (ideal)
        r->coll.p2p_s = free_p2p;
    SimConfig cfg = {r->topo, &r->coll, NULL}; /* closed forms: each collective alone */
    r->sim = sim_run(r->sched, &cfg, &error);
    if (!r->sim)
        fail_msg("%s", error->message);
    r->rep = (Report){.model = r->model, .topo = r->topo, .opt = &r->opt, .info = &r->info,
                      .sched = r->sched, .sim = r->sim};
    report_build(&r->rep);
}

static double bubble(PpSchedule kind, int p, int v, int m, double *stage0_activations)
{
    Run r;
    start(&r, uniform_path, 1, 4, 1, p, m);
    r.opt.pp_schedule = kind;
    r.opt.virtual_stages = v;
    simulate(&r, true);
    assert_int_equal(r.rep.n_stages, p);
    double fraction = r.rep.pp_bubble_fraction;
    /* every stage sees the same bubble */
    for (int s = 0; s < p; s++)
        assert_close(r.rep.stages[s].bubble_s / r.rep.stages[s].busy_s, fraction, 0.02);
    if (stage0_activations)
        *stage0_activations = r.rep.stages[0].breakdown[IR_MEM_ACTIVATIONS];
    run_end(&r);
    return fraction;
}

static void test_bubble_gpipe_1f1b(void **state)
{
    double act_gpipe, act_1f1b;
    assert_close(bubble(PP_SCHEDULE_GPIPE, 4, 1, 8, &act_gpipe), 3.0 / 8, 0.01);
    assert_close(bubble(PP_SCHEDULE_1F1B, 4, 1, 8, &act_1f1b), 3.0 / 8, 0.01);
    assert_close(bubble(PP_SCHEDULE_1F1B, 4, 1, 16, NULL), 3.0 / 16, 0.01);
    assert_close(bubble(PP_SCHEDULE_1F1B, 2, 1, 8, NULL), 1.0 / 8, 0.01);
    /* the first stage holds m micro-batches' activations under GPipe, p under 1F1B */
    assert_close(act_gpipe / act_1f1b, 8.0 / 4, 1e-9);
}

static void test_bubble_interleaved(void **state)
{
    assert_close(bubble(PP_SCHEDULE_INTERLEAVED, 4, 2, 8, NULL), 0.5 * 3.0 / 8, 0.01);
    assert_close(bubble(PP_SCHEDULE_INTERLEAVED, 4, 4, 8, NULL), 0.25 * 3.0 / 8, 0.02);
    assert_close(bubble(PP_SCHEDULE_INTERLEAVED, 2, 2, 4, NULL), 0.5 * 1.0 / 4, 0.01);
}

static void test_order_1f1b(void **state)
{
    int p = 4, m = 8;
    PpStep steps[16];
    for (int s = 0; s < p; s++) {
        assert_int_equal(strat_pp_order(PP_SCHEDULE_1F1B, p, 1, m, s, steps), 2 * m);
        int warmup = 0, in_flight = 0, max_in_flight = 0, fwd_next = 0, bwd_next = 0;
        for (int i = 0; i < 2 * m; i++) {
            if (steps[i].phase == PP_PHASE_WARMUP)
                warmup++;
            /* micro-batches in order, each backward after its forward */
            if (steps[i].forward)
                assert_int_equal(steps[i].micro_batch, fwd_next++);
            else
                assert_int_equal(steps[i].micro_batch, bwd_next++);
            assert_true(bwd_next <= fwd_next);
            in_flight += steps[i].forward ? 1 : -1;
            max_in_flight = MAX(max_in_flight, in_flight);
        }
        assert_int_equal(warmup, p - s - 1);
        assert_int_equal(max_in_flight, p - s);
    }
}

static void test_order_interleaved(void **state)
{
    int p = 4, v = 2, m = 8;
    PpStep steps[32];
    for (int s = 0; s < p; s++) {
        assert_int_equal(strat_pp_order(PP_SCHEDULE_INTERLEAVED, p, v, m, s, steps), 2 * m * v);
        int seen_f[2][8] = {{0}}, seen_b[2][8] = {{0}}, warmup = 0;
        for (int i = 0; i < 2 * m * v; i++) {
            int c = steps[i].chunk, mb = steps[i].micro_batch;
            if (steps[i].forward) {
                seen_f[c][mb]++;
            } else {
                assert_int_equal(seen_f[c][mb], 1); /* forward before backward */
                seen_b[c][mb]++;
            }
            warmup += steps[i].phase == PP_PHASE_WARMUP;
        }
        for (int c = 0; c < v; c++)
            for (int mb = 0; mb < m; mb++)
                assert_true(seen_f[c][mb] == 1 && seen_b[c][mb] == 1);
        /* Megatron: (p - s - 1) * 2 + (v - 1) * p warm-up forwards */
        assert_int_equal(warmup, MIN((p - s - 1) * 2 + (v - 1) * p, m * v));
    }
}

static double flops_total(const Run *r, bool model)
{
    double total = 0;
    for (int ci = 0; ci < r->sched->n_classes; ci++) {
        const IrClass *c = r->sched->classes[ci];
        for (int i = 0; i < ir_class_n_ops(c); i++)
            if (ir_op(c, i)->kind == IR_OP_COMPUTE)
                total += c->n_ranks * (model ? ir_op(c, i)->u.compute.model_flops : ir_op(c, i)->u.compute.flops);
    }
    return total;
}

static void test_recompute_flops(void **state)
{
    Run r;
    char *path = src_path("models/gpt2.json");
    start(&r, path, 2, 4, 2, 2, 4); /* dp 2 */
    g_free(path);
    r.opt.activation_checkpointing = true;
    simulate(&r, false);
    const Model *m = r.model;
    /* the whole job: every rank of every stage, for the global batch */
    double B = m->training.micro_batch * 4.0 * 2, s = m->training.seq_len, l = m->layers,
           h = m->hidden, V = m->vocab;
    double want = 96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h));
    /* flops_total counts every rank; the TP group's t ranks each do 1/t of the work */
    assert_close(flops_total(&r, false), want, 1e-9);
    assert_close(flops_total(&r, true), B * model_flops_train_per_sample(m), 1e-9);
    run_end(&r);
}

static double tp_bytes_per_gpu(const Run *r)
{
    const IrClass *c = r->sched->classes[0];
    double sent = 0;
    for (int i = 0; i < ir_class_n_ops(c); i++) {
        const IrOp *op = ir_op(c, i);
        const IrGroup *g = op->kind == IR_OP_COLL ? &r->sched->groups[op->u.coll.group] : NULL;
        if (g && strcmp(g->name, "tp") == 0)
            sent += coll_bytes_sent_per_rank((IrCollKind)op->u.coll.coll, op->u.coll.bytes, g->size);
    }
    return sent;
}

static void test_tp_volume(void **state)
{
    for (int sp = 0; sp < 2; sp++) {
        Run r;
        char *path = src_path("models/gpt2.json");
        start(&r, path, 1, 4, 4, 1, 1); /* tp 4, dp 1: the only communication is TP's */
        g_free(path);
        r.opt.sequence_parallel = sp;
        simulate(&r, false);
        const Model *m = r.model;
        double t = 4, L = m->layers;
        double X = (double)m->training.seq_len * m->training.micro_batch * m->hidden * 2; /* bf16 */
        /* per layer 2 + 2 all-reduces of X (2(t-1)/t X each), or with SP 4 + 4 reduce-scatters and
         * all-gathers ((t-1)/t X each); plus the vocabulary-parallel embedding's one exchange */
        double per_layer = 4 * 2 * (t - 1) / t * X;
        double embedding = (sp ? 1 : 2) * (t - 1) / t * X;
        assert_close(tp_bytes_per_gpu(&r), L * per_layer + embedding, 1e-12);
        assert_close(r.rep.comm_bytes_per_gpu, L * per_layer + embedding, 1e-9);
        run_end(&r);
    }
}

static void test_tp_activations(void **state)
{
    /* Korthikanti et al.: per layer sbh(10 + 24/t) with TP, 34sbh/t with sequence parallelism */
    double act[2];
    Run r;
    for (int sp = 0; sp < 2; sp++) {
        char *path = src_path("models/gpt2.json");
        start(&r, path, 1, 4, 4, 1, 1);
        g_free(path);
        r.opt.sequence_parallel = sp;
        simulate(&r, false);
        const IrClass *c = r.sched->classes[0];
        act[sp] = 0;
        for (int i = 0; i < ir_class_n_ops(c); i++) {
            const IrOp *op = ir_op(c, i);
            if (op->kind == IR_OP_ALLOC && op->u.mem.category == IR_MEM_ACTIVATIONS)
                act[sp] += (double)op->u.mem.bytes;
        }
        if (sp)
            break;
        run_end(&r);
    }
    const Model *m = r.model;
    double sbh = (double)m->training.seq_len * m->training.micro_batch * m->hidden;
    /* the difference is in the layers only: sbh(10 + 24/t - 34/t) per layer */
    assert_close(act[0] - act[1], m->layers * sbh * (10 + 6 - 8.5), 0.01);
    run_end(&r);
}

static void test_placement_classes(void **state)
{
    /* tp-pp-dp: a stage's ranks are not one progression: one class per TP rank, same result */
    double step[2];
    for (int i = 0; i < 2; i++) {
        Run r;
        start(&r, uniform_path, 2, 4, 2, 2, 4);
        if (i)
            assert_true(strat_order_parse("tp-pp-dp", r.opt.order));
        simulate(&r, true);
        assert_int_equal(r.sched->n_classes, i ? 4 : 2);
        assert_int_equal(r.info.n_class_stage, r.sched->n_classes);
        step[i] = r.rep.step_time_s;
        run_end(&r);
    }
    assert_true(step[0] > 0 && step[1] > 0);
}

static void test_errors(void **state)
{
    Run r;
    GError *error = NULL;
    start(&r, uniform_path, 1, 4, 1, 3, 4); /* 3 stages on 4 GPUs */
    assert_false(strat_layout_make(&r.opt, 1, 4, &r.layout, &error));
    assert_true(g_error_matches(error, FSD_ERROR, FSD_ERROR_INPUT));
    assert_non_null(strstr(error->message, "does not divide"));
    g_clear_error(&error);
    r.opt.pp = 2;
    r.opt.pp_schedule = PP_SCHEDULE_INTERLEAVED;
    r.opt.virtual_stages = 3; /* 64 layers over 6 virtual stages */
    assert_true(strat_layout_make(&r.opt, 1, 4, &r.layout, &error));
    assert_null(strat_generate(r.model, r.topo, &r.opt, &r.layout, &r.info, &error));
    assert_true(g_error_matches(error, FSD_ERROR, FSD_ERROR_INPUT));
    assert_non_null(strstr(error->message, "--pp-partition"));
    g_clear_error(&error);
    int partition[6] = {10, 10, 10, 10, 12, 11};
    r.opt.pp_partition = partition;
    r.opt.n_pp_partition = 6;
    assert_null(strat_generate(r.model, r.topo, &r.opt, &r.layout, &r.info, &error));
    assert_non_null(strstr(error->message, "expected 64 layers"));
    g_clear_error(&error);
    partition[5] = 12; /* now 64: fine */
    r.opt.grad_accum = 4;
    simulate(&r, false);
    assert_int_equal(r.rep.n_stages, 2);
    run_end(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_1f1b),
        cmocka_unit_test(test_order_interleaved),
        cmocka_unit_test(test_bubble_gpipe_1f1b),
        cmocka_unit_test(test_bubble_interleaved),
        cmocka_unit_test(test_recompute_flops),
        cmocka_unit_test(test_tp_volume),
        cmocka_unit_test(test_tp_activations),
        cmocka_unit_test(test_placement_classes),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
