/* fsdp: the order of FSDP's collectives and host waits, against torch/distributed/fsdp/
 * _runtime_utils.py (FSDP1) and _fully_shard (FSDP2), measured on generated schedules. */
#include "testutil.h"

/* Host ops of the schedule whose name starts with `prefix`. */
static int count_ops(const Run *r, IrOpKind kind, const char *prefix)
{
    const IrClass *c = r->sched->classes[0];
    int n = 0;
    for (int i = 0; i < ir_class_n_ops(c); i++) {
        const IrOp *op = ir_op(c, i);
        if (op->kind == kind && g_str_has_prefix(ir_class_string(c, op->name), prefix))
            n++;
    }
    return n;
}

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

/* SHARD_GRAD_OP keeps the parameters unsharded into backward, yet FSDP1 calls _unshard() in each
 * pre-backward or prefetch, and _unshard() dequeues the rate limiter's free events (pushed by
 * each post-backward reshard) before it looks whether an all-gather is needed: the host stays
 * within two units of the GPU, and the unsharded gradients, freed after their reduce-scatters,
 * do not pile up. Llama-2-7B on 4 A100s: 17.8 GiB of gradients at the peak without that, 0.5
 * GiB (the root's unsharded gradient) with it, the peak at the start of backward. */
static void test_shard_grad_op_backward_rate_limited(void **state)
{
    Run r;
    run_start(&r, "models/llama2-7b.json", "topologies/juwels-booster.json", 1, 4);
    r.opt.sharding = SHARD_SHARD_GRAD_OP;
    run_sim(&r);
    /* each block's backward prefetch from the fourth backward on waits: the queue holds two
     * frees from the third */
    int units = r.info.n_units;
    assert_true(count_ops(&r, IR_OP_HOST, "rate limiter wait") >= units - 4);
    double gib = 1024.0 * 1024 * 1024;
    assert_true(r.rep.mem_breakdown[IR_MEM_GRADS] < 1 * gib);
    assert_true(r.rep.mem_breakdown[IR_MEM_ACTIVATIONS] > 15 * gib);
    run_end(&r);
    /* without the limiter nothing holds the host back */
    run_start(&r, "models/llama2-7b.json", "topologies/juwels-booster.json", 1, 4);
    r.opt.sharding = SHARD_SHARD_GRAD_OP;
    r.opt.limit_all_gathers = false;
    run_sim(&r);
    assert_int_equal(count_ops(&r, IR_OP_HOST, "rate limiter wait"), 0);
    run_end(&r);
}

/* The cross-entropy loss's backward holds its logit gradients beside every saved activation
 * (gen.c gen_backward_transient, model_hf.c model_hf_loss). Llama-3-8B at 8192 tokens, 128256
 * logits per token, full_shard 2 x 4: the peak is at the start of backward, before the root's
 * gradient. transformers' loss (the default): the fp32 nll_loss gradient and log-softmax input
 * gradient, 8 B per logit (7.83 GiB); the peak was 57.69 GiB without them, 63.56 GiB with.
 * flash-attn's fused loss (--loss-impl fused) keeps 2 B per logit plus 4 B of lse per token
 * where transformers' keeps 6 B per logit, and its backward adds 2 B per logit (empty_like). */
static void test_loss_backward_logit_gradients(void **state)
{
    static const ModelLossImpl impls[] = {MODEL_LOSS_HF, MODEL_LOSS_FUSED};
    for (size_t k = 0; k < G_N_ELEMENTS(impls); k++) {
        Run r;
        run_start(&r, "models/llama3-8b.json", "topologies/juwels-booster.json", 2, 4);
        model_free(r.model);
        r.model = load_model("models/llama3-8b.json",
                             &(ModelOverrides){.flash_attention = -1, .loss_impl = impls[k]});
        strat_options_default(&r.opt, r.model);
        run_sim(&r);
        double saved = 0, loss_saved = 0, transient = 0;
        for (int i = 0; i < r.model->n_modules; i++) {
            saved += r.model->modules[i].saved_bytes;
            transient += r.model->modules[i].backward_transient_bytes;
            if (strcmp(r.model->modules[i].kind, "CrossEntropyLoss") == 0)
                loss_saved = r.model->modules[i].saved_bytes;
        }
        double s = r.model->training.seq_len, logits = s * r.model->vocab;
        bool hf = impls[k] == MODEL_LOSS_HF;
        assert_close(loss_saved, hf ? 6 * logits : 2 * logits + 4 * s, 1e-12);
        assert_close(transient, (hf ? 8 : 2) * logits, 1e-12);
        if (hf) { /* fused: the root's gradient (1.96 GiB) after it is as large a peak */
            assert_close(r.rep.mem_breakdown[IR_MEM_ACTIVATIONS], saved + transient, 1e-6);
            assert_true(r.rep.mem_breakdown[IR_MEM_GRADS] == 0);
        }
        run_end(&r);
    }
}

/* FSDP2's post_backward makes the compute stream wait for the previous reduce-scatter's event
 * (comm_ctx.reduce_scatter_state) before the next unit's reduce-scatter copy-in: each copy-in
 * but the first depends on the reduce-scatter issued before it. */
static void test_fsdp2_copy_in_waits_previous_reduce_scatter(void **state)
{
    Run r;
    run_start(&r, "models/gpt2.json", "topologies/juwels-booster.json", 2, 4);
    r.opt.fsdp_version = 2;
    run_sim(&r);
    const IrClass *c = r.sched->classes[0];
    int last_rs = -1, copies = 0;
    for (int i = 0; i < ir_class_n_ops(c); i++) {
        const IrOp *op = ir_op(c, i);
        const char *name = ir_class_string(c, op->name);
        if (op->kind == IR_OP_COLL && op->u.coll.coll == IR_COLL_REDUCE_SCATTER) {
            last_rs = i;
        } else if (op->kind == IR_OP_COMPUTE && g_str_has_prefix(name, "reduce-scatter copy-in")) {
            const uint32_t *deps = ir_op_deps(c, op);
            bool waits = last_rs < 0;
            for (uint32_t d = 0; d < op->n_deps; d++)
                waits = waits || (int)deps[d] == last_rs;
            if (!waits)
                fail_msg("op %d (%s) does not wait for reduce-scatter op %d", i, name, last_rs);
            copies++;
        }
    }
    assert_int_equal(copies, r.info.n_units);
    run_end(&r);
}

/* FSDP1 divides a gradient by the data-parallel world, shard group times replicas for hybrid
 * strategies (_init_process_group_state), before the reduce-scatter by the predivide factor and
 * after the replicas' all-reduce, on its stream, by the rest (_reduce_grad). Shard groups of 2
 * on 4 nodes: 16 ranks, predivide 4, postdivide 4, each after its unit's all-reduce. */
static void test_hybrid_divides_by_replicas_after_all_reduce(void **state)
{
    Run r;
    run_start(&r, "models/gpt2.json", "topologies/juwels-booster.json", 4, 4);
    r.opt.sharding = SHARD_HYBRID_SHARD;
    r.opt.shard_group_size = 2;
    run_sim(&r);
    const IrClass *c = r.sched->classes[0];
    int last_all_reduce = -1, postdivides = 0, predivides = 0;
    for (int i = 0; i < ir_class_n_ops(c); i++) {
        const IrOp *op = ir_op(c, i);
        const char *name = ir_class_string(c, op->name);
        if (op->kind == IR_OP_COLL && op->u.coll.coll == IR_COLL_ALLREDUCE)
            last_all_reduce = i;
        if (op->kind != IR_OP_COMPUTE)
            continue;
        predivides += g_str_has_prefix(name, "predivide gradient");
        if (g_str_has_prefix(name, "postdivide gradient")) {
            assert_int_equal(op->n_deps, 1);
            assert_int_equal(ir_op_deps(c, op)[0], last_all_reduce);
            postdivides++;
        }
    }
    assert_int_equal(predivides, r.info.n_units);
    assert_int_equal(postdivides, r.info.n_units);
    run_end(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backward_post_gathers_no_extra),
        cmocka_unit_test(test_shard_grad_op_backward_rate_limited),
        cmocka_unit_test(test_loss_backward_logit_gradients),
        cmocka_unit_test(test_fsdp2_copy_in_waits_previous_reduce_scatter),
        cmocka_unit_test(test_hybrid_divides_by_replicas_after_all_reduce),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
