/* ddp: when DDP's gradient buckets are all-reduced (ddp.c). A bucket is ready once every gradient
 * in it exists (reducer.cpp), so each bucket's all-reduce must come after the backward of every
 * module whose parameters it holds. ViT-L/16 is the shipped model where a module with children
 * owns parameters too: vit.embeddings (cls_token, position_embeddings; the patch projection is
 * its child). It is the last bucket's last member, and that bucket was never all-reduced: its
 * ready op was read uninitialised, and `search --vary strategy=ddp,no_shard` aborted. */
#include "testutil.h"

/* Leaves in the order the backward runs them: children last to first, a leaf after its
 * children (gen_walk_backward), the root never a run. */
static void backward_leaves(const Model *m, int i, GArray *into)
{
    GArray *children = g_array_new(FALSE, FALSE, sizeof(int));
    for (int c = m->modules[i].first_child; c >= 0; c = m->modules[c].next_sibling)
        g_array_append_val(children, c);
    for (int k = (int)children->len - 1; k >= 0; k--)
        backward_leaves(m, g_array_index(children, int, k), into);
    g_array_free(children, TRUE);
    if (m->modules[i].first_child < 0 && i != 0)
        g_array_append_val(into, i);
}

/* The ops that must finish before op `to` starts, as the engine orders them (sim.c
 * class_edges): explicit deps, the previous op on the same stream, and for a GPU op the host op
 * that issued it. O(ops) per call. */
static bool *ops_before(const IrClass *c, int to)
{
    int n = ir_class_n_ops(c);
    GArray **preds = g_new0(GArray *, n);
    int *last_on_stream = g_new(int, MAX(1, c->n_streams));
    for (int s = 0; s < c->n_streams; s++)
        last_on_stream[s] = -1;
    int last_host = -1;
    for (int i = 0; i <= to; i++) {
        const IrOp *op = ir_op(c, i);
        preds[i] = g_array_new(FALSE, FALSE, sizeof(int));
        const uint32_t *deps = ir_op_deps(c, op);
        for (uint32_t d = 0; d < op->n_deps; d++) {
            int dep = (int)deps[d];
            g_array_append_val(preds[i], dep);
        }
        int prev = last_on_stream[op->stream];
        if (prev >= 0)
            g_array_append_val(preds[i], prev);
        bool host = c->streams[op->stream].host;
        if (!host && last_host >= 0 && last_host != prev)
            g_array_append_val(preds[i], last_host);
        if (host)
            last_host = i;
        last_on_stream[op->stream] = i;
    }
    bool *before = g_new0(bool, n);
    GArray *stack = g_array_new(FALSE, FALSE, sizeof(int));
    g_array_append_val(stack, to);
    while (stack->len > 0) {
        int i = g_array_index(stack, int, stack->len - 1);
        g_array_set_size(stack, stack->len - 1);
        for (guint k = 0; k < preds[i]->len; k++) {
            int p = g_array_index(preds[i], int, k);
            if (!before[p]) {
                before[p] = true;
                g_array_append_val(stack, p);
            }
        }
    }
    for (int i = 0; i <= to; i++)
        g_array_free(preds[i], TRUE);
    g_free(preds);
    g_free(last_on_stream);
    g_array_free(stack, TRUE);
    return before;
}

static int module_index(const Model *m, const char *name)
{
    for (int i = 0; i < m->n_modules; i++)
        if (m->modules[i].name && strcmp(m->modules[i].name, name) == 0)
            return i;
    fail_msg("no module %s", name);
    return -1;
}

/* Every gradient all-reduced once, each bucket after the backward ops that produce its
 * gradients: the members taken in reverse module order (model.parameters() reversed), as many
 * as each all-reduce's fp32 bytes hold. */
static void check_buckets_after_gradients(int nodes, bool checkpointing)
{
    Run r;
    run_start(&r, "models/vit-l16.json", "topologies/jupiter-booster.json", nodes, 4);
    r.opt.kind = STRAT_DDP;
    r.opt.activation_checkpointing = checkpointing;
    run_sim(&r);
    const Model *m = r.model;
    const IrClass *c = r.sched->classes[0];
    int n_ops = ir_class_n_ops(c);

    /* each leaf's backward op: a run's op is named after the first leaf the backward reaches,
     * and the run holds the leaves up to the next run's first */
    GArray *order = g_array_new(FALSE, FALSE, sizeof(int));
    backward_leaves(m, 0, order);
    int *run_op = g_new(int, order->len); /* per position in order: the run starting there */
    for (guint k = 0; k < order->len; k++)
        run_op[k] = -1;
    GArray *allreduces = g_array_new(FALSE, FALSE, sizeof(int));
    guint position = 0;
    int fin = -1;
    for (int i = 0; i < n_ops; i++) {
        const IrOp *op = ir_op(c, i);
        const char *name = ir_class_string(c, op->name);
        if (op->kind == IR_OP_COLL && op->u.coll.coll == IR_COLL_ALLREDUCE)
            g_array_append_val(allreduces, i);
        if (strcmp(name, "wait allreduce, copy grads") == 0)
            fin = i;
        if (op->kind != IR_OP_COMPUTE || !g_str_has_prefix(name, "bwd "))
            continue;
        char *first = g_strdup(name + 4);
        if (g_str_has_suffix(first, "+"))
            first[strlen(first) - 1] = '\0';
        int leaf = module_index(m, first);
        g_free(first);
        while (position < order->len && g_array_index(order, int, position) != leaf)
            position++;
        if (position == order->len)
            fail_msg("op %d: %s out of the backward's order", i, name);
        run_op[position++] = i;
    }
    int *bwd_op = g_new(int, m->n_modules);
    for (int i = 0; i < m->n_modules; i++)
        bwd_op[i] = -1;
    assert_true(order->len > 0 && run_op[0] >= 0);
    for (guint k = 1; k < order->len; k++)
        if (run_op[k] < 0)
            run_op[k] = run_op[k - 1];
    for (guint k = 0; k < order->len; k++)
        bwd_op[g_array_index(order, int, k)] = run_op[k];
    g_free(run_op);
    assert_int_equal(allreduces->len, r.info.n_buckets);
    assert_true(fin >= 0);
    bool *before_fin = ops_before(c, fin);

    int member = m->n_modules - 1;
    double trainable_bytes = 0, reduced_bytes = 0;
    for (int i = 0; i < m->n_modules; i++)
        trainable_bytes += 4.0 * (double)(m->modules[i].params - m->modules[i].frozen_params);
    for (guint b = 0; b < allreduces->len; b++) {
        int ar = g_array_index(allreduces, int, b);
        bool *before = ops_before(c, ar);
        double bucket = (double)ir_op(c, ar)->u.coll.bytes, held = 0;
        reduced_bytes += bucket;
        for (; member >= 0 && held < bucket; member--) {
            const ModelModule *mod = &m->modules[member];
            double bytes = 4.0 * (double)(mod->params - mod->frozen_params);
            if (bytes == 0)
                continue;
            held += bytes;
            /* its gradients exist once the backward of its whole subtree is done */
            for (guint k = 0; k < order->len; k++) {
                int leaf = g_array_index(order, int, k), up = leaf;
                while (up >= 0 && up != member)
                    up = m->modules[up].parent;
                if (up == member && !before[bwd_op[leaf]])
                    fail_msg("allreduce bucket %u (op %d) does not wait for %s's gradient (%s, op "
                             "%d)",
                             b, ar, mod->name, m->modules[leaf].name, bwd_op[leaf]);
            }
        }
        assert_true(held == bucket);
        g_free(before);
        /* the optimizer step waits for every bucket */
        assert_true(before_fin[ar]);
    }
    g_free(before_fin);
    assert_true(member < 0 || m->modules[member].params == 0);
    assert_true(reduced_bytes == trainable_bytes);
    /* without gradient_as_bucket_view every trainable parameter gets an fp32 .grad, the
     * embeddings' own included */
    double grad_bytes = 0;
    for (int i = 0; i < n_ops; i++) {
        const IrOp *op = ir_op(c, i);
        if (op->kind == IR_OP_ALLOC &&
            g_str_has_prefix(ir_class_string(c, op->u.mem.buffer), "grad:"))
            grad_bytes += (double)op->u.mem.bytes;
    }
    assert_true(grad_bytes == trainable_bytes);
    /* the case this pins is still in the model: a module with children and parameters */
    const ModelModule *embeddings = &m->modules[module_index(m, "vit.embeddings")];
    assert_true(embeddings->first_child >= 0 && embeddings->params > 0);
    g_array_free(order, TRUE);
    g_array_free(allreduces, TRUE);
    g_free(bwd_op);
    run_end(&r);
}

static void test_vit_buckets_checkpointing(void **state)
{
    (void)state;
    check_buckets_after_gradients(1, true);
    check_buckets_after_gradients(4, true);
}

static void test_vit_buckets(void **state)
{
    (void)state;
    check_buckets_after_gradients(1, false);
}

/* The bytes of the first bucket all-reduced (the first all-reduce issued). */
static double first_bucket_bytes(bool cap_given)
{
    Run r;
    run_start(&r, "models/gpt2.json", "topologies/juwels-booster.json", 2, 4);
    r.opt.kind = STRAT_DDP;
    r.opt.bucket_cap_mb = 25;
    r.opt.bucket_cap_mb_given = cap_given;
    run_sim(&r);
    const IrClass *c = r.sched->classes[0];
    double bytes = -1;
    for (int i = 0; i < ir_class_n_ops(c) && bytes < 0; i++)
        if (ir_op(c, i)->kind == IR_OP_COLL)
            bytes = (double)ir_op(c, i)->u.coll.bytes;
    run_end(&r);
    return bytes;
}

/* bucket_cap_mb left None: the first bucket closes at 1 MiB (GPT-2's last c_proj, 9.4 MB, closes
 * it); bucket_cap_mb=25 passed: every bucket, the first included, closes at 25 MiB
 * (DistributedDataParallel.__init__, bucket_bytes_cap_default, PyTorch 2.3 and later). */
static void test_first_bucket_cap(void **state)
{
    (void)state;
    double mib = 1024.0 * 1024;
    assert_true(first_bucket_bytes(false) < 10 * mib);
    assert_true(first_bucket_bytes(true) >= 25 * mib);
}

/* foreach AdamW's step makes a denominator list of the whole state's size (gen.c
 * gen_optimizer_denom_alloc): with activation checkpointing and one sample, GPT-2 XL's DDP
 * peak is that step, 4 + 4 + 4 + 8 + 4 = 24 bytes per parameter (parameters, gradients,
 * buckets, state, denominator): 30.87 GiB without it, 36.52 GiB with it. Fused AdamW has none. */
static double optimizer_at_peak(KernOptimImpl impl, double *params)
{
    Run r;
    run_start(&r, "models/gpt2-xl.json", "topologies/juwels-booster.json", 1, 4);
    r.opt.kind = STRAT_DDP;
    r.opt.activation_checkpointing = true;
    r.opt.optimizer_impl = impl;
    r.model->training.micro_batch = 1;
    run_sim(&r);
    *params = (double)r.model->params;
    double bytes = r.rep.mem_breakdown[IR_MEM_OPTIMIZER];
    run_end(&r);
    return bytes;
}

static void test_foreach_adamw_denominator(void **state)
{
    (void)state;
    double psi;
    double foreach = optimizer_at_peak(KERN_OPTIM_FOREACH, &psi);
    assert_close(foreach, 12 * psi, 1e-9);
    double fused = optimizer_at_peak(KERN_OPTIM_FUSED, &psi);
    assert_close(fused, 8 * psi, 1e-9);
}

/* DDP's mixed precision is torch.autocast over fp32 parameters: the residual stream stays fp32,
 * so each LayerNorm keeps an fp32 input, and gelu_new's pow (on autocast's fp32 list) makes 3 of
 * its 4 kept tensors fp32 (model_hf.c autocast_extra_bytes, gen.c leaf_saved). GPT-2, bf16: per
 * layer 2 x 2sh for ln_1 and ln_2 and 3 x 2 x 4sh for gelu_new, 28sh more than FSDP's pure bf16
 * (58sh); the forward's saved activations of micro-batch 0 are the model's saved bytes plus
 * those. Without autocast (fp32) nothing is added. */
static void test_autocast_keeps_fp32_residual_stream(void **state)
{
    (void)state;
    Run r;
    run_start(&r, "models/gpt2.json", "topologies/juwels-booster.json", 1, 4);
    r.opt.kind = STRAT_DDP;
    run_sim(&r);
    const Model *m = r.model;
    double saved = 0, extra = 0;
    for (int i = 0; i < m->n_modules; i++)
        saved += m->modules[i].saved_bytes, extra += m->modules[i].autocast_extra_bytes;
    double s = m->training.seq_len, h = m->hidden;
    assert_close(extra, (m->layers * 28 + 2) * s * h, 1e-12); /* + ln_f */
    const IrClass *c = r.sched->classes[0];
    double act = 0;
    for (int i = 0; i < ir_class_n_ops(c); i++) {
        const IrOp *op = ir_op(c, i);
        if (op->kind == IR_OP_ALLOC && op->u.mem.category == IR_MEM_ACTIVATIONS &&
            g_str_has_prefix(ir_class_string(c, op->u.mem.buffer), "act:") &&
            g_str_has_suffix(ir_class_string(c, op->u.mem.buffer), ":0"))
            act += (double)op->u.mem.bytes;
    }
    assert_close(act, (saved + extra) * m->training.micro_batch, 1e-9);
    run_end(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vit_buckets_checkpointing),
        cmocka_unit_test(test_vit_buckets),
        cmocka_unit_test(test_first_bucket_cap),
        cmocka_unit_test(test_foreach_adamw_denominator),
        cmocka_unit_test(test_autocast_keeps_fp32_residual_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
