/* pp: the closed forms of pipeline and tensor parallelism, measured on generated and simulated
 * schedules.
 *   Bubble (Narayanan et al., SC'21): (p-1)/m of the ideal time for GPipe and 1F1B, (1/v)(p-1)/m
 *   for the interleaved schedule, under uniform stage times: measured from the simulated
 *   timeline (idle time of each stage's compute stream), not recomputed from the formula.
 *   In-flight activations: GPipe keeps m micro-batches on the first stage, 1F1B p.
 *   Megatron's GEMM FLOPs per iteration with full recompute: 96 B s l h^2 (1 + s/(6h) + V/(16 l h)).
 *   TP communication per layer per micro-batch: two all-reduces of s*b*h in forward, two in
 *   backward (2(t-1)/t each, ring); sequence parallelism moves the same volume as reduce-scatters
 *   and all-gathers ((t-1)/t each), plus an all-gather per backward half that gathers the
 *   linear's input again for its weight gradient (Megatron-Core's layers.py). */
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

/* run_sim, with send/recv free and no launch cost when `ideal`: the setting of the closed forms,
 * each collective alone */
static void simulate(Run *r, bool ideal)
{
    if (ideal)
        r->topo->gpu.launch_overhead_s = 0;
    run_sim_with(r, false, ideal ? free_p2p : NULL);
}

static double bubble(PpSchedule kind, int p, int v, int m, double *stage0_activations)
{
    Run r;
    start(&r, uniform_path, 1, 4, 1, p, m);
    r.opt.pp_schedule = kind;
    r.opt.virtual_stages = v;
    /* the closed forms take compute time as fixed: without the kernel table, no slowdown of
     * compute by the send/recv kernels beside it (which differs between inner and end stages) */
    r.topo->gpu.kernels.present = false;
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
                total += c->n_ranks * (model ? ir_op_compute(c, ir_op(c, i))->model_flops
                                             : ir_op_compute(c, ir_op(c, i))->flops);
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
         * all-gathers ((t-1)/t X each) and, in backward, each half's input gathered again for
         * its weight gradient (Megatron keeps only the shard): 4 + 6; plus the
         * vocabulary-parallel embedding's one exchange (with SP a reduce-scatter in forward and
         * an all-gather of its gradient in backward); plus the output layer's, a
         * ColumnParallelLinear like a layer's first GEMM: its input gradient all-reduced in
         * backward, or with SP its input all-gathered in forward and again in backward and its
         * input gradient reduce-scattered */
        double per_layer = (sp ? 10 : 8) * (t - 1) / t * X;
        double embedding = 2 * (t - 1) / t * X;
        double head = (sp ? 3 : 2) * (t - 1) / t * X;
        assert_close(tp_bytes_per_gpu(&r), L * per_layer + embedding + head, 1e-12);
        assert_close(r.rep.comm_bytes_per_gpu, L * per_layer + embedding + head, 1e-9);
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
    /* the difference is in the layers only: sbh(10 + 24/t - 34/t) per layer (Megatron's fused
     * kernels keep Korthikanti's 34sbh a layer: model_fused_kernels) */
    assert_close(act[0] - act[1], m->layers * sbh * (10 + 6 - 8.5), 0.01);
    run_end(&r);
}

/* Collectives of one kind on one process group family, per rank of class 0, optionally only
 * those of one phase (-1: any). */
typedef struct {
    int count;
    double bytes; /* the ops' own sizes (the unsharded tensor), summed */
} CollCount;

static CollCount coll_count(const Run *r, const char *group, IrCollKind kind, int phase)
{
    CollCount n = {0, 0};
    const IrClass *c = r->sched->classes[0];
    for (int i = 0; i < ir_class_n_ops(c); i++) {
        const IrOp *op = ir_op(c, i);
        if (op->kind != IR_OP_COLL || op->u.coll.coll != kind || (phase >= 0 && op->phase != phase))
            continue;
        if (strcmp(r->sched->groups[op->u.coll.group].name, group) != 0)
            continue;
        n.count++;
        n.bytes += (double)op->u.coll.bytes;
    }
    return n;
}

static const IrGroup *group_named(const Run *r, const char *name)
{
    for (int i = 0; i < r->sched->n_groups; i++)
        if (strcmp(r->sched->groups[i].name, name) == 0)
            return &r->sched->groups[i];
    fail_msg("no process group %s", name);
    return NULL;
}

/* GPT-2 on one node of 4 GPUs as FSDP; tp 2 gives 2D (FSDP over dp 2, TP over 2). */
static void start_fsdp(Run *r, int nodes, int gpn, int tp, int pp, ShardingStrategy sharding, int m)
{
    char *path = src_path("models/gpt2.json");
    start(r, path, nodes, gpn, tp, pp, m);
    g_free(path);
    r->opt.kind = STRAT_FSDP;
    r->opt.sharding = sharding;
}

static void test_2d_fsdp_follows_fsdp(void **state)
{
    /* FSDP x TP without a pipeline is FSDP on one TP rank's share: the same collectives, in the
     * same number, as pure FSDP over the same 2 data-parallel GPUs, each carrying half the unit */
    ShardingStrategy kinds[2] = {SHARD_FULL_SHARD, SHARD_SHARD_GRAD_OP};
    for (int k = 0; k < 2; k++) {
        Run twod, pure;
        start_fsdp(&twod, 1, 4, 2, 1, kinds[k], 1);
        simulate(&twod, false);
        start_fsdp(&pure, 1, 2, 1, 1, kinds[k], 1);
        simulate(&pure, false);
        int L = twod.model->layers, units = L + 1; /* a unit per block plus the root */
        assert_int_equal(twod.info.n_units, units);
        assert_int_equal(twod.sched->n_classes, 1);
        assert_int_equal(twod.rep.n_stages, 0); /* no pipeline, no pipeline section */
        CollCount ag = coll_count(&twod, "shard", IR_COLL_ALLGATHER, -1);
        CollCount rs = coll_count(&twod, "shard", IR_COLL_REDUCE_SCATTER, -1);
        CollCount ag1 = coll_count(&pure, "shard", IR_COLL_ALLGATHER, -1);
        CollCount rs1 = coll_count(&pure, "shard", IR_COLL_REDUCE_SCATTER, -1);
        /* full_shard reshards after forward and gathers again in backward (all but the root);
         * shard_grad_op keeps the parameters from forward to backward */
        assert_int_equal(ag.count, kinds[k] == SHARD_FULL_SHARD ? 2 * units - 1 : units);
        assert_int_equal(rs.count, units);
        assert_int_equal(ag.count, ag1.count);
        assert_int_equal(rs.count, rs1.count);
        /* every unit's parameters divided by tp (GPT-2's shapes split evenly over 2) */
        assert_close(ag.bytes, ag1.bytes / 2, 1e-6);
        assert_close(rs.bytes, rs1.bytes / 2, 1e-6);
        assert_close((double)twod.info.padded_params, (double)pure.model->params / 2, 1e-6);
        /* the groups: shard over the dp dimension (every 2nd rank under tp-dp-pp), TP inside */
        assert_int_equal(group_named(&twod, "shard")->size, 2);
        assert_int_equal(group_named(&twod, "shard")->stride, 2);
        assert_int_equal(group_named(&twod, "tp")->stride, 1);
        /* a GPU of the TP pair works on half the tokens of one data-parallel replica */
        assert_close(twod.info.tokens_per_step, pure.info.tokens_per_step / 2, 1e-12);
        run_end(&twod);
        run_end(&pure);
    }
}

static void test_2d_tp_exchanges_per_layer(void **state)
{
    /* Megatron: per layer 2 all-reduces in forward (after the row-parallel attention projection
     * and MLP) and 2 in backward (the column-parallel layers' input gradients), plus the
     * vocabulary-parallel embedding's one in forward and the column-parallel output layer's
     * (its input gradient) in backward; with sequence parallelism an all-gather and a
     * reduce-scatter in place of each, the embedding's gradient and the output layer's input
     * gathered; recompute adds the forward's exchanges to backward */
    for (int variant = 0; variant < 4; variant++) {
        bool sp = variant == 1, ckpt = variant == 2;
        int m = variant == 3 ? 2 : 1;
        Run r;
        start_fsdp(&r, 1, 4, 2, 1, SHARD_FULL_SHARD, m);
        r.opt.sequence_parallel = sp;
        r.opt.activation_checkpointing = ckpt;
        simulate(&r, false);
        int L = r.model->layers, units = L + 1;
        double X =
            (double)r.model->training.seq_len * r.model->training.micro_batch * r.model->hidden * 2;
        if (!sp) {
            CollCount f = coll_count(&r, "tp", IR_COLL_ALLREDUCE, IR_PHASE_FORWARD);
            CollCount b = coll_count(&r, "tp", IR_COLL_ALLREDUCE, IR_PHASE_BACKWARD);
            assert_int_equal(f.count, m * (2 * L + 1));
            assert_int_equal(b.count, m * (ckpt ? 4 * L + 1 : 2 * L + 1));
            assert_close(f.bytes, f.count * X, 1e-12);
            assert_int_equal(coll_count(&r, "tp", IR_COLL_ALLGATHER, -1).count, 0);
        } else {
            assert_int_equal(coll_count(&r, "tp", IR_COLL_ALLGATHER, IR_PHASE_FORWARD).count,
                             2 * L + 1);
            assert_int_equal(coll_count(&r, "tp", IR_COLL_REDUCE_SCATTER, IR_PHASE_FORWARD).count,
                             2 * L + 1);
            assert_int_equal(coll_count(&r, "tp", IR_COLL_ALLGATHER, IR_PHASE_BACKWARD).count,
                             2 * L + 1);
            assert_int_equal(coll_count(&r, "tp", IR_COLL_REDUCE_SCATTER, IR_PHASE_BACKWARD).count,
                             2 * L + 1);
            assert_int_equal(coll_count(&r, "tp", IR_COLL_ALLREDUCE, -1).count, 0);
        }
        /* gradient accumulation: FSDP without no_sync() gathers and reduce-scatters every
         * micro-batch, as pure FSDP does */
        assert_int_equal(coll_count(&r, "shard", IR_COLL_ALLGATHER, -1).count, m * (2 * units - 1));
        assert_int_equal(coll_count(&r, "shard", IR_COLL_REDUCE_SCATTER, -1).count, m * units);
        run_end(&r);
    }
}

static void test_2d_state_memory(void **state)
{
    /* mixed-precision Adam: 16 bytes per parameter of the TP share, divided by the shard group */
    Run r;
    start_fsdp(&r, 1, 4, 2, 1, SHARD_FULL_SHARD, 1);
    simulate(&r, false);
    const IrClass *c = r.sched->classes[0];
    double state_bytes = 0;
    for (int i = 0; i < ir_class_n_ops(c); i++) {
        const IrOp *op = ir_op(c, i);
        const char *buf = op->kind == IR_OP_ALLOC ? ir_class_string(c, op->u.mem.buffer) : "";
        if (g_str_has_prefix(buf, "params_shard") || g_str_has_prefix(buf, "optimizer_state") ||
            g_str_has_prefix(buf, "grad_shard:"))
            state_bytes += (double)op->u.mem.bytes;
    }
    assert_close(state_bytes, 16.0 * r.model->params / (2 * 2), 1e-6);
    run_end(&r);
}

static double activation_allocs(const Run *r)
{
    const IrClass *c = r->sched->classes[0];
    double total = 0;
    for (int i = 0; i < ir_class_n_ops(c); i++) {
        const IrOp *op = ir_op(c, i);
        if (op->kind == IR_OP_ALLOC && op->u.mem.category == IR_MEM_ACTIVATIONS)
            total += (double)op->u.mem.bytes;
    }
    return total;
}

static void test_2d_activations(void **state)
{
    /* the 2D generator (fsdp.c on the TP share) keeps Korthikanti's activations exactly as the
     * Megatron generator (pp.c) does: sbh(10 + 24/t) per layer, 34sbh/t with sequence
     * parallelism, and under checkpointing the layer input (2sbh, /t with SP) plus one layer's
     * recompute; where the layers' ops are the same (GPT-2 with the one-kernel gelu). With
     * gelu_new the 2D run (PyTorch's eager modules) keeps more: eager gelu_new keeps four 4h
     * tensors where Megatron's fused bias-GeLU keeps one (model_fused_kernels). Megatron's runs
     * compute the loss with vocab_parallel_cross_entropy: the 2D run is given the same loss
     * (--loss-impl megatron; with transformers' it keeps 2 B per logit more, over t) */
    char *gelu_path = g_build_filename(tmpdir, "gpt2-gelu.json", NULL);
    char *text = NULL;
    char *gpt2 = src_path("models/gpt2.json");
    assert_true(g_file_get_contents(gpt2, &text, NULL, NULL));
    char *at = strstr(text, "\"gelu_new\"");
    assert_non_null(at);
    GString *gelu = g_string_new_len(text, at - text);
    g_string_append(gelu, "\"gelu\"");
    g_string_append(gelu, at + strlen("\"gelu_new\""));
    g_file_set_contents(gelu_path, gelu->str, -1, NULL);
    g_string_free(gelu, TRUE);
    g_free(text);
    for (int variant = 0; variant < 6; variant++) {
        bool eager_gelu = variant >= 3;
        const char *path = eager_gelu ? gpt2 : gelu_path;
        Run twod, megatron;
        start(&twod, path, 1, 4, 2, 1, 1);
        model_free(twod.model);
        GError *error = NULL;
        twod.model = model_load(
            path, &(ModelOverrides){.flash_attention = -1, .loss_impl = MODEL_LOSS_MEGATRON},
            &error);
        assert_non_null(twod.model);
        twod.opt.kind = STRAT_FSDP;
        twod.opt.sharding = SHARD_FULL_SHARD;
        start(&megatron, path, 1, 4, 2, 1, 1); /* DDP x TP: pp.c */
        twod.opt.sequence_parallel = megatron.opt.sequence_parallel = variant % 3 == 1;
        twod.opt.activation_checkpointing = megatron.opt.activation_checkpointing =
            variant % 3 == 2;
        simulate(&twod, false);
        simulate(&megatron, false);
        assert_true(activation_allocs(&twod) > 0);
        if (eager_gelu)
            assert_true(activation_allocs(&twod) > activation_allocs(&megatron) * 1.1);
        else
            assert_close(activation_allocs(&twod), activation_allocs(&megatron), 1e-6);
        run_end(&twod);
        run_end(&megatron);
    }
    g_unlink(gelu_path);
    g_free(gelu_path);
    g_free(gpt2);
}

/* The activations micro-batch 0 keeps on a single stage (pp.c's act:0:0), over the model's own
 * per-sample leaves, with or without what eager ops keep beyond Megatron's fused kernels. */
static double stage_activations(const Run *r)
{
    const IrClass *c = r->sched->classes[0];
    for (int i = 0; i < ir_class_n_ops(c); i++) {
        const IrOp *op = ir_op(c, i);
        if (op->kind == IR_OP_ALLOC && op->u.mem.category == IR_MEM_ACTIVATIONS &&
            strcmp(ir_class_string(c, op->u.mem.buffer), "act:0:0") == 0)
            return (double)op->u.mem.bytes;
    }
    fail_msg("no act:0:0");
    return 0;
}

static double leaves_saved(const Model *m, bool fused)
{
    double saved = 0;
    for (int i = 1; i < m->n_modules; i++)
        if (m->modules[i].first_child < 0)
            saved += MAX(0, m->modules[i].saved_bytes -
                                (fused ? m->modules[i].eager_extra_bytes : 0));
    return saved * m->training.micro_batch;
}

static void test_zero1_keeps_eager_activations(void **state)
{
    /* --strategy zero1 without --tp or --pp is DeepSpeed's ZeRO-1 around the transformers model
     * (pp.c generates it for the distributed optimizer's schedule): Llama's eager RMSNorm and
     * SiLU keep what they keep in eager mode (model_hf.c), 186368 B a layer and token. Megatron's
     * --use-distributed-optimizer runs Megatron's layers, fused kernels (model_fused_kernels).
     * Before the fix both kept the fused count. */
    char *path = src_path("models/llama2-7b.json");
    for (int megatron = 0; megatron < 2; megatron++) {
        Run r;
        start(&r, path, 1, 4, 1, 1, 1);
        if (megatron)
            r.opt.distributed_optimizer = true;
        else
            strat_options_zero1(&r.opt);
        simulate(&r, false);
        assert_close(stage_activations(&r), leaves_saved(r.model, megatron), 1e-9);
        run_end(&r);
    }
    g_free(path);
}

static void test_megatron_runs_megatron_loss(void **state)
{
    /* Megatron's GPTModel computes its loss with vocab_parallel_cross_entropy (the fp32 softmax,
     * 4 B per logit, and a mask and target per token; model_hf_loss), whatever --loss-impl says:
     * a Megatron run (--use-distributed-optimizer, here on one stage) keeps the same with
     * transformers' loss (the default, 6 B per logit) as with --loss-impl megatron. The
     * DeepSpeed ZeRO-1 run around the transformers model keeps transformers' 2 B per logit
     * more. Before the fix the Megatron run kept transformers' 6 B. */
    char *path = src_path("models/llama2-7b.json");
    double act[2][2];
    for (int megatron = 0; megatron < 2; megatron++)
        for (int impl = 0; impl < 2; impl++) {
            Run r;
            start(&r, path, 1, 4, 1, 1, 1);
            model_free(r.model);
            GError *error = NULL;
            r.model = model_load(path,
                                 &(ModelOverrides){.flash_attention = -1,
                                                   .loss_impl = impl ? MODEL_LOSS_MEGATRON
                                                                     : MODEL_LOSS_HF},
                                 &error);
            assert_non_null(r.model);
            if (megatron)
                r.opt.distributed_optimizer = true;
            else
                strat_options_zero1(&r.opt);
            simulate(&r, false);
            act[megatron][impl] = stage_activations(&r);
            run_end(&r);
        }
    assert_close(act[1][0], act[1][1], 1e-12);
    const double s = 4096, vocab = 32000; /* llama2-7b.json */
    assert_close(act[0][0] - act[0][1], 2 * s * vocab - 9 * s, 1e-9);
    g_free(path);
}

static void test_tp_activations_llama(void **state)
{
    /* Korthikanti's 10 + 24/t is a GPT layer's split; a Llama layer splits otherwise (tp.c
     * gen_tp_saved_kinds). With Megatron's fused kernels it keeps, per token, 8h bytes whole on
     * every rank (the two norms' inputs, the q/k/v and gate/up inputs, 2h each) and 8h + 6ffn
     * split (Q, K, V, o_proj's input, SwiGLU's input, down_proj's input); in eager mode (FSDP x
     * TP) 16h whole (the norms' fp32 copies and normalised tensors) and 8h + 8ffn split. Sequence
     * parallelism splits the whole part too: the runs differ by whole x (1 - 1/t) a layer. With
     * the ratio, the difference was the layer's total x (16/34 - 1/4): 3.8e9 B, not 3.2e9, for
     * Megatron's run. */
    char *path = src_path("models/llama2-7b.json");
    for (int fsdp = 0; fsdp < 2; fsdp++) {
        double act[2];
        for (int sp = 0; sp < 2; sp++) {
            Run r;
            start(&r, path, 1, 4, 4, 1, 1);
            if (fsdp)
                r.opt.kind = STRAT_FSDP, r.opt.sharding = SHARD_FULL_SHARD;
            r.opt.sequence_parallel = sp;
            simulate(&r, false);
            act[sp] = activation_allocs(&r);
            if (sp) {
                const Model *m = r.model;
                double whole = (fsdp ? 16 : 8) * m->hidden; /* bytes a token, bf16 */
                assert_close(act[0] - act[1],
                             m->layers * (double)m->training.seq_len * m->training.micro_batch *
                                 whole * (1 - 1.0 / 4),
                             1e-9);
            }
            run_end(&r);
        }
    }
    g_free(path);
}

static void test_hybrid_with_pipeline(void **state)
{
    /* 4 nodes x 4 GPUs, tp 2 x pp 2 x dp 4 (tp-dp-pp): hybrid shard groups are the dp peers
     * inside a node (gpus_per_node / tp = 2), replicas across nodes; a stage's ranks never mix
     * with another stage's or another TP rank's */
    Run r;
    start_fsdp(&r, 4, 4, 2, 2, SHARD_HYBRID_SHARD, 8);
    simulate(&r, false);
    assert_int_equal(r.layout.dp, 4);
    assert_int_equal(r.layout.shard_size, 2);
    assert_int_equal(r.layout.replicate_size, 2);
    assert_int_equal(r.rep.n_stages, 2);
    const IrGroup *shard = group_named(&r, "dp_shard"), *rep = group_named(&r, "dp_replicate");
    int members[4];
    ir_group_members(r.sched, shard, 0, members);
    assert_int_equal(shard->size, 2);
    assert_int_equal(members[0], 0);
    assert_int_equal(members[1], 2); /* same node, same TP rank, same stage */
    ir_group_members(r.sched, rep, 0, members);
    assert_int_equal(rep->size, 2);
    assert_int_equal(members[1], 4);              /* the next node */
    ir_group_members(r.sched, shard, 9, members); /* stage 1 starts at rank tp * dp = 8 */
    assert_int_equal(members[0], 9);
    assert_int_equal(members[1], 11);
    /* per stage (6 of GPT-2's 12 layers): each layer gathered once per step, reduce-scattered
     * in the shard group after its last micro-batch, the shard all-reduced over the replicas */
    int per_stage = r.model->layers / 2;
    CollCount ag = coll_count(&r, "dp_shard", IR_COLL_ALLGATHER, -1);
    CollCount rs = coll_count(&r, "dp_shard", IR_COLL_REDUCE_SCATTER, -1);
    CollCount ar = coll_count(&r, "dp_replicate", IR_COLL_ALLREDUCE, -1);
    assert_int_equal(ag.count, per_stage);
    assert_int_equal(rs.count, per_stage);
    assert_int_equal(ar.count, per_stage);
    assert_close(ar.bytes, rs.bytes / 2, 1e-12);
    run_end(&r);

    /* --shard-group-size 4: the whole dp dimension of a stage, across two nodes: no replicas */
    start_fsdp(&r, 4, 4, 2, 2, SHARD_HYBRID_SHARD, 8);
    r.opt.shard_group_size = 4;
    simulate(&r, false);
    assert_int_equal(r.layout.shard_size, 4);
    assert_int_equal(r.layout.replicate_size, 1);
    ir_group_members(r.sched, group_named(&r, "dp"), 0, members);
    assert_int_equal(members[3], 6);
    assert_int_equal(coll_count(&r, "dp", IR_COLL_ALLREDUCE, -1).count, 0);
    assert_int_equal(coll_count(&r, "dp", IR_COLL_REDUCE_SCATTER, -1).count, per_stage);
    run_end(&r);

    /* 3 does not divide the 4 data-parallel GPUs */
    GError *error = NULL;
    start_fsdp(&r, 4, 4, 2, 2, SHARD_HYBRID_SHARD, 8);
    r.opt.shard_group_size = 3;
    assert_false(strat_layout_make(&r.opt, 4, 4, &r.layout, &error));
    assert_true(g_error_matches(error, FSD_ERROR, FSD_ERROR_INPUT));
    assert_non_null(strstr(error->message, "4 data-parallel GPUs"));
    g_clear_error(&error);
    model_free(r.model);
    hw_topology_free(r.topo);
}

static void test_2d_hybrid(void **state)
{
    /* 2D hybrid: shard groups of gpus_per_node / tp = 2 inside a node, replicas across the 2
     * nodes, each unit's shard all-reduced over them after its reduce-scatter */
    Run r;
    start_fsdp(&r, 2, 4, 2, 1, SHARD_HYBRID_SHARD, 1);
    simulate(&r, false);
    int units = r.model->layers + 1;
    assert_int_equal(group_named(&r, "shard")->stride, 2);
    assert_int_equal(group_named(&r, "replicate")->stride, 4);
    assert_int_equal(coll_count(&r, "shard", IR_COLL_ALLGATHER, -1).count, 2 * units - 1);
    CollCount rs = coll_count(&r, "shard", IR_COLL_REDUCE_SCATTER, -1);
    CollCount ar = coll_count(&r, "replicate", IR_COLL_ALLREDUCE, -1);
    assert_int_equal(rs.count, units);
    assert_int_equal(ar.count, units);
    assert_close(ar.bytes, rs.bytes / 2, 1e-12);
    run_end(&r);
}

static void test_tied_embedding_after_flush(void **state)
{
    /* Megatron all-reduces the tied embedding's gradient after the pipeline flush: the last
     * stage's copy leaves only once the first stage has finished its last backward */
    Run r;
    start(&r, uniform_path, 1, 4, 1, 2, 4);
    simulate(&r, false);
    assert_int_equal(r.sched->n_classes, 2);
    int64_t first_done = 0, last_sends = -1;
    for (int ci = 0; ci < 2; ci++) {
        const IrClass *c = r.sched->classes[ci];
        int stage = r.info.class_stage[ci];
        for (int i = 0; i < ir_class_n_ops(c); i++) {
            const IrOp *op = ir_op(c, i);
            const char *name = ir_class_string(c, op->name);
            if (stage == 0 && op->kind == IR_OP_COMPUTE && op->phase == IR_PHASE_BACKWARD)
                first_done = MAX(first_done, sim_op_end_ns(&r.sim->classes[ci], i));
            if (stage == 1 && op->kind == IR_OP_SEND && strcmp(name, "embedding grad") == 0) {
                assert_true(op->u.p2p.bytes > 0);
                last_sends = sim_op_start_ns(&r.sim->classes[ci], i);
            }
        }
    }
    assert_true(first_done > 0 && last_sends >= first_done);
    run_end(&r);
}

/* Megatron's DDP without --overlap-grad-reduce reduces the gradients in finalize_model_grads,
 * after the schedule has returned: after the rank's last backward and its last send (waited),
 * every chunk at once, none during the cool-down of another chunk */
static void dp_reduce_after_flush(PpSchedule kind, int v)
{
    Run r;
    start(&r, uniform_path, 1, 4, 1, 2, 4); /* pp 2 x dp 2 */
    r.opt.pp_schedule = kind;
    r.opt.virtual_stages = v;
    simulate(&r, false);
    for (int ci = 0; ci < r.sched->n_classes; ci++) {
        const IrClass *c = r.sched->classes[ci];
        const SimClassResult *t = &r.sim->classes[ci];
        int64_t flushed = 0, first_reduce = INT64_MAX;
        int reduces = 0;
        for (int i = 0; i < ir_class_n_ops(c); i++) {
            const IrOp *op = ir_op(c, i);
            const char *name = ir_class_string(c, op->name);
            if ((op->kind == IR_OP_COMPUTE && op->phase == IR_PHASE_BACKWARD) ||
                (op->kind == IR_OP_SEND && strncmp(name, "embedding", 9) != 0))
                flushed = MAX(flushed, sim_op_end_ns(t, i));
            if (op->kind == IR_OP_COLL && strncmp(name, "dp allreduce chunk", 18) == 0) {
                first_reduce = MIN(first_reduce, sim_op_start_ns(t, i));
                reduces++;
            }
        }
        assert_int_equal(reduces, v);
        assert_true(flushed > 0 && first_reduce >= flushed);
    }
    run_end(&r);
}

static void test_dp_reduce_after_flush(void **state)
{
    (void)state;
    dp_reduce_after_flush(PP_SCHEDULE_1F1B, 1);
    dp_reduce_after_flush(PP_SCHEDULE_INTERLEAVED, 2);
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

/* Megatron's DDP options: each hides or shrinks communication, each with its own mechanism. */
static double megatron_step(int tp, bool overlap_grad, bool distopt, bool overlap_param,
                            bool tp_overlap, double *optimizer_bytes, double *rs_bytes)
{
    Run r;
    char *path = src_path("models/gpt2-xl.json");
    start(&r, path, 4, 4, tp, 1, 4);
    g_free(path);
    r.opt.sequence_parallel = tp > 1;
    r.opt.overlap_grad_reduce = overlap_grad;
    r.opt.distributed_optimizer = distopt;
    r.opt.overlap_param_gather = overlap_param;
    r.opt.tp_comm_overlap = tp_overlap;
    simulate(&r, false);
    double step = r.rep.step_time_s;
    if (optimizer_bytes)
        *optimizer_bytes = r.rep.mem_breakdown[IR_MEM_OPTIMIZER];
    if (rs_bytes)
        *rs_bytes = r.rep.coll[IR_COLL_REDUCE_SCATTER].bytes;
    run_end(&r);
    return step;
}

static void test_megatron_ddp_options(void **state)
{
    (void)state;
    double opt_plain, opt_dist, rs_plain, rs_dist;
    double plain = megatron_step(2, false, false, false, false, &opt_plain, &rs_plain);
    /* gradient buckets reduced during the last backward: less exposed */
    double overlap = megatron_step(2, true, false, false, false, NULL, NULL);
    assert_true(overlap < plain);
    /* the distributed optimizer: state sharded over dp (8 replicas), gradients reduce-scattered */
    double dist = megatron_step(2, true, true, true, false, &opt_dist, &rs_dist);
    assert_close(opt_dist, opt_plain / 8, 0.01);
    assert_true(rs_dist > rs_plain);
    assert_true(dist > 0);
    /* the parameter all-gather after the step is exposed unless it overlaps the forward */
    assert_true(megatron_step(2, true, true, false, false, NULL, NULL) > dist);
    /* TP exchanges pipelined with the GEMMs */
    assert_true(megatron_step(2, true, true, true, true, NULL, NULL) < dist);
}

/* --tp-comm-overlap runs Transformer Engine's userbuffers, not NCCL: the all-gathers are ring
 * exchanges of 1 SM, the reduce-scatters kernels of 16 (TE's defaults), and the compute beside
 * them loses that much, not NCCL's 24 channels. */
static void test_tp_overlap_sms(void **state)
{
    (void)state;
    Run r;
    start(&r, uniform_path, 1, 4, 4, 1, 2);
    r.opt.sequence_parallel = r.opt.tp_comm_overlap = true;
    simulate(&r, false);
    double cost = 0;
    for (int k = 0; k < r.sched->n_classes; k++)
        cost = MAX(cost, r.sim->classes[k].overlap_cost_s);
    int ag = 0, rs = 0;
    IrClass *c = r.sched->classes[0];
    for (int i = 0; i < ir_class_n_ops(c); i++) {
        const IrOp *op = ir_op(c, i);
        if (op->kind != IR_OP_COLL || strcmp(c->streams[op->stream].name, "nccl:tp") != 0)
            continue;
        ag += op->u.coll.coll == IR_COLL_ALLGATHER && op->u.coll.sms == 1;
        rs += op->u.coll.coll == IR_COLL_REDUCE_SCATTER && op->u.coll.sms == 16;
    }
    assert_true(ag > 0 && ag == rs);
    assert_true(cost > 0);
    /* the same schedule with NCCL's kernels in their place: on NCCL's 24 channels of an
     * NVSwitch board it costs more, on JUWELS Booster's 8 (fewer than TE's 16) less */
    for (int i = 0; i < ir_class_n_ops(c); i++)
        if (ir_op(c, i)->kind == IR_OP_COLL)
            ((IrOp *)ir_op(c, i))->u.coll.sms = 0;
    for (int channels = 24; channels >= 8; channels -= 16) {
        r.topo->nccl_channels = channels;
        SimConfig cfg = {r.topo, &r.coll, NULL};
        GError *error = NULL;
        SimResult *nccl = sim_run(r.sched, &cfg, &error);
        assert_non_null(nccl);
        double nccl_cost = 0;
        for (int k = 0; k < r.sched->n_classes; k++)
            nccl_cost = MAX(nccl_cost, nccl->classes[k].overlap_cost_s);
        assert_true(channels == 24 ? nccl_cost > 1.3 * cost : nccl_cost < cost);
        sim_result_free(nccl);
    }
    run_end(&r);
}

/* A 1F1B pipeline's sends and receives take nothing from compute: ProcessGroupNCCL starts a
 * receive once the compute issued before it is done, and Megatron's and DeepSpeed's 1F1B wait
 * for each send before the next kernel (an empty op on the compute stream after the send).
 * GPipe's sends run beside compute and do slow it. */
static double pipeline_overlap_cost(PpSchedule kind, int *waits, int *sends)
{
    Run r;
    start(&r, uniform_path, 4, 1, 1, 4, 8); /* one stage per node: sends cross the network */
    r.opt.pp_schedule = kind;
    simulate(&r, false);
    double cost = r.rep.overlap_cost_s;
    *waits = *sends = 0;
    IrClass *c = r.sched->classes[1];
    for (int i = 0; i < ir_class_n_ops(c); i++) {
        const IrOp *op = ir_op(c, i);
        *sends += op->kind == IR_OP_SEND;
        const uint32_t *d = ir_op_deps(c, op);
        if (op->kind == IR_OP_COMPUTE && ir_op_compute(c, op)->seconds == 0 && op->n_deps == 1 &&
            ir_op(c, (int)d[0])->kind == IR_OP_SEND)
            (*waits)++;
    }
    run_end(&r);
    return cost;
}

/* Where a steady-phase receive for a forward is posted: in 1F1B after the step before it (a
 * backward), in Megatron's interleaved schedule right after the last forward, so that it runs
 * during the backward between (--overlap-p2p-communication). Counts, over stage 1's steady
 * forward receives, those whose wait is on a forward's compute and on a backward's. */
static void steady_recv_after(PpSchedule kind, int v, int *after_fwd, int *after_bwd)
{
    Run r;
    start(&r, uniform_path, 4, 1, 1, 4, 16);
    r.opt.pp_schedule = kind;
    r.opt.virtual_stages = v;
    simulate(&r, false);
    *after_fwd = *after_bwd = 0;
    const IrClass *c = r.sched->classes[1];
    for (int i = 0; i < ir_class_n_ops(c); i++) {
        const IrOp *op = ir_op(c, i);
        const char *name = ir_class_string(c, op->name);
        if (op->kind != IR_OP_RECV || name[0] != 'F' || !strstr(name, "steady") || op->n_deps < 1)
            continue;
        const IrOp *d = ir_op(c, (int)ir_op_deps(c, op)[0]);
        const char *dname = ir_class_string(c, d->name);
        assert_int_equal(d->kind, IR_OP_COMPUTE);
        *after_fwd += dname[0] == 'F';
        *after_bwd += dname[0] == 'B';
    }
    run_end(&r);
}

static void test_recv_posting(void **state)
{
    (void)state;
    int f, b;
    steady_recv_after(PP_SCHEDULE_1F1B, 1, &f, &b);
    assert_true(b > 4 && f <= 1); /* the first steady step follows the last warm-up forward */
    steady_recv_after(PP_SCHEDULE_INTERLEAVED, 2, &f, &b);
    assert_true(f > 0 && b == 0);
}

static void test_pipeline_p2p_overlap(void **state)
{
    (void)state;
    int waits, sends;
    assert_float_equal(pipeline_overlap_cost(PP_SCHEDULE_1F1B, &waits, &sends), 0, 1e-12);
    assert_true(sends > 0 && waits == sends);
    assert_true(pipeline_overlap_cost(PP_SCHEDULE_GPIPE, &waits, &sends) > 0);
    assert_int_equal(waits, 0);
}

/* DeepSpeed's pipeline engine accumulates gradients outside the GEMMs. With BF16_Optimizer (bf16,
 * fp32 gradients) every micro-batch's bf16 gradients are cast and added into fp32 ones after the
 * backward: 2 + 4 + 3 x 4 = 18 bytes per parameter of the stage, per micro-batch. In fp16 (ZeRO
 * stage 1 or none) autograd adds each later micro-batch's gradient into param.grad in place:
 * 3 x 2 bytes per parameter, per micro-batch after the first. Megatron's engine (fused wgrad
 * accumulation) has neither. */
static double compute_bytes(const Run *r, int cls, double *main_grads)
{
    const IrClass *c = r->sched->classes[cls];
    double total = 0;
    for (int i = 0; i < ir_class_n_ops(c); i++) {
        const IrOp *op = ir_op(c, i);
        if (op->kind == IR_OP_COMPUTE)
            total += ir_op_compute(c, op)->bytes;
        if (op->kind == IR_OP_ALLOC &&
            strcmp(ir_class_string(c, op->u.mem.buffer), "main_grads") == 0)
            *main_grads = (double)op->u.mem.bytes;
    }
    return total;
}

static void test_deepspeed_grad_accumulation(void **state)
{
    (void)state;
    for (int fp16 = 0; fp16 < 2; fp16++) {
        double bytes[2], grads = 0;
        for (int ds = 0; ds < 2; ds++) {
            Run r;
            start(&r, uniform_path, 2, 4, 2, 4, 4); /* tp 2, pp 4, dp 1, 4 micro-batches */
            r.opt.mixed_precision = true;
            r.opt.param_dtype = fp16 ? HW_DTYPE_FP16 : HW_DTYPE_BF16;
            r.opt.reduce_dtype = fp16 ? HW_DTYPE_FP16 : HW_DTYPE_FP32;
            r.opt.reduce_dtype_set = true;
            r.opt.pp_scatter_gather = ds ? PP_SG_DEEPSPEED : PP_SG_MEGATRON;
            simulate(&r, false);
            bytes[ds] = compute_bytes(&r, 0, &grads);
            run_end(&r);
        }
        /* main_grads: the stage's parameters per rank, in the gradients' dtype */
        assert_true(grads > 0);
        if (fp16)
            assert_close(bytes[1] - bytes[0], 3 * 6 * (grads / 2), 1e-9);
        else
            assert_close(bytes[1] - bytes[0], 4 * 18 * (grads / 4), 1e-9);
    }
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
        cmocka_unit_test(test_2d_fsdp_follows_fsdp),
        cmocka_unit_test(test_2d_tp_exchanges_per_layer),
        cmocka_unit_test(test_2d_state_memory),
        cmocka_unit_test(test_2d_activations),
        cmocka_unit_test(test_hybrid_with_pipeline),
        cmocka_unit_test(test_2d_hybrid),
        cmocka_unit_test(test_tied_embedding_after_flush),
        cmocka_unit_test(test_dp_reduce_after_flush),
        cmocka_unit_test(test_placement_classes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_megatron_ddp_options),
        cmocka_unit_test(test_tp_overlap_sms),
        cmocka_unit_test(test_pipeline_p2p_overlap),
        cmocka_unit_test(test_recv_posting),
        cmocka_unit_test(test_deepspeed_grad_accumulation),
        cmocka_unit_test(test_zero1_keeps_eager_activations),
        cmocka_unit_test(test_megatron_runs_megatron_loss),
        cmocka_unit_test(test_tp_activations_llama),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
