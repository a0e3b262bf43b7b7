/* ddp: torch.nn.parallel.DistributedDataParallel.
 *
 * Every rank holds the whole model. Gradients are copied into buckets as they are produced in
 * backward; a bucket is all-reduced as soon as all its gradients are ready (reducer.cpp), on the
 * process group's NCCL stream, overlapping the rest of backward. Buckets are filled in reverse
 * parameter order (the order rebuild_buckets() finds after the first step), the first one capped
 * at 1 MiB (dist._DEFAULT_FIRST_BUCKET_BYTES), the others at bucket_cap_mb (25 MiB by default);
 * a bucket_cap_mb passed explicitly caps the first one too (DistributedDataParallel.__init__:
 * bucket_bytes_cap_default, PyTorch 2.3 and later). With gradient accumulation the first
 * micro-batches run under no_sync(): no communication, gradients accumulate.
 *
 * Memory: fp32 parameters, fp32 gradients (allocated in backward, set to None by zero_grad), the
 * bucket buffers (comm_buffers; the gradients are views into them with gradient_as_bucket_view),
 * optimizer state, activations; under torch.autocast the bf16 weight copies that autograd saves
 * for backward (counted with the parameters). */
#include "gen.h"

#include <string.h>

typedef struct {
    int *bucket_of_module;  /* -1 for modules without trainable parameters */
    int *ready_leaf;        /* per bucket: the leaf whose backward run lets it launch */
    double *grad_trainable; /* per leaf: trainable parameters whose gradients its run makes */
    double *bucket_bytes;
    int n_buckets;
    int next_bucket; /* the reducer's next_bucket_: the next bucket to all-reduce */
    int *ready_ops;  /* per bucket: the allreduce */
    int nccl, group;
    bool sync;               /* this micro-step communicates */
    GPtrArray *grad_buffers; /* names of the .grad allocations, freed by zero_grad */
    GArray *grad_bytes;
    HwDtype grad_dtype, comm_dtype;
} Ddp;

/* Forward position of every leaf below module m (children first to last, as gen_walk_forward
 * runs them); gen_walk_backward runs the leaves in the reverse order. O(modules). */
static void number_leaves(const Model *model, int m, int *forward_position, int *next)
{
    const ModelModule *mod = &model->modules[m];
    if (mod->first_child < 0)
        forward_position[m] = (*next)++;
    for (int c = mod->first_child; c >= 0; c = model->modules[c].next_sibling)
        number_leaves(model, c, forward_position, next);
}

/* The leaf after whose backward run a module's gradients all exist: the module itself for a
 * leaf; for a module with children that owns parameters too (ViT's embeddings own cls_token and
 * position_embeddings, its patch projection is the child), the last leaf of its subtree that the
 * backward reaches: the first one in forward order, since gen_walk_backward runs children last
 * to first. Autograd produces such a gradient inside the module's backward, so at the latest
 * when that leaf's is done: never before it exists. */
static int grad_leaf_of(const Model *model, int m)
{
    while (model->modules[m].first_child >= 0)
        m = model->modules[m].first_child;
    return m;
}

/* DDP's compute_bucket_assignment_by_size: add tensors until the bucket reaches its limit.
 * Modules are taken in reverse index order (model.parameters() reversed: a module's own
 * parameters before its children's, so they come after them here). */
static void assign_buckets(Gen *g, Ddp *d)
{
    const Model *m = g->model;
    d->bucket_of_module = g_new(int, m->n_modules);
    GArray *bytes = g_array_new(FALSE, FALSE, sizeof(double));
    double cap = g->opt->bucket_cap_mb * 1024 * 1024;
    double limit = g->opt->bucket_cap_mb_given ? cap : 1024.0 * 1024.0, current = 0;
    int bucket = 0;
    for (int i = m->n_modules - 1; i >= 0; i--) {
        d->bucket_of_module[i] = -1;
        /* only parameters that require grad get a bucket slot (reducer.cpp) */
        uint64_t trainable = m->modules[i].params - m->modules[i].frozen_params;
        if (trainable == 0)
            continue;
        d->bucket_of_module[i] = bucket;
        current += (double)trainable * hw_dtype_bytes(d->grad_dtype);
        if (current >= limit) {
            g_array_append_val(bytes, current);
            bucket++;
            current = 0;
            limit = cap;
        }
    }
    if (current > 0) {
        g_array_append_val(bytes, current);
        bucket++;
    }
    d->n_buckets = bucket;
    d->bucket_bytes = (double *)g_array_free(bytes, FALSE);
    d->ready_ops = g_new(int, MAX(1, bucket));
}

/* When each bucket can launch. A bucket is ready once every gradient in it exists (reducer.cpp
 * mark_variable_ready): after the backward run of the member whose grad_leaf the backward
 * reaches last. The reducer launches ready buckets in index order only (next_bucket_), so a
 * bucket ready before an earlier one waits for it. Not the member itself: a module with
 * children (vit.embeddings, the last bucket's last member) is never a run, and its bucket would
 * never be all-reduced. O(modules). */
static void place_buckets(Gen *g, Ddp *d)
{
    const Model *m = g->model;
    int *forward_position = g_new(int, m->n_modules), n_leaves = 0;
    number_leaves(m, 0, forward_position, &n_leaves);
    d->ready_leaf = g_new(int, MAX(1, d->n_buckets));
    d->grad_trainable = g_new0(double, m->n_modules);
    for (int b = 0; b < d->n_buckets; b++)
        d->ready_leaf[b] = -1;
    for (int i = 0; i < m->n_modules; i++) {
        int b = d->bucket_of_module[i];
        if (b < 0)
            continue;
        int leaf = grad_leaf_of(m, i);
        d->grad_trainable[leaf] += (double)(m->modules[i].params - m->modules[i].frozen_params);
        /* the backward reaches the smallest forward position last */
        if (d->ready_leaf[b] < 0 || forward_position[leaf] < forward_position[d->ready_leaf[b]])
            d->ready_leaf[b] = leaf;
    }
    for (int b = 1; b < d->n_buckets; b++)
        if (forward_position[d->ready_leaf[b - 1]] < forward_position[d->ready_leaf[b]])
            d->ready_leaf[b] = d->ready_leaf[b - 1];
    g_free(forward_position);
}

static double run_params(Gen *g, const int *leaves, int n)
{
    double p = 0;
    for (int i = 0; i < n; i++)
        p += (double)g->model->modules[leaves[i]].params;
    return p;
}

/* The trainable parameters whose gradients a backward run produces: its leaves' own, and those
 * of modules with children whose grad_leaf is in it (ViT's cls_token and position_embeddings). */
static double run_trainable(const Ddp *d, const int *leaves, int n)
{
    double p = 0;
    for (int i = 0; i < n; i++)
        p += d->grad_trainable[leaves[i]];
    return p;
}

static void fwd_enter(Gen *g, int m)
{
    if (gen_is_checkpointed(g, m))
        gen_ckpt_forward_enter(g, m);
}

static void fwd_exit(Gen *g, int m)
{
    if (gen_is_checkpointed(g, m))
        gen_ckpt_forward_exit(g, m);
}

static void fwd_run(Gen *g, const int *leaves, int n)
{
    double params = run_params(g, leaves, n);
    if (g->opt->mixed_precision && params > 0) {
        /* autocast casts each weight once per forward and autograd keeps the copy */
        char *buf = cfg_strdup_printf("autocast:%d:%d", leaves[0], g->micro);
        gen_alloc(g, buf, IR_MEM_PARAMS, params * hw_dtype_bytes(g->opt->param_dtype));
        g_free(buf);
    }
    gen_forward_run(g, leaves, n, NULL, 0);
}

static void bwd_enter(Gen *g, int m)
{
    if (gen_is_checkpointed(g, m))
        gen_ckpt_backward_enter(g, m, NULL, 0);
}

static void bwd_exit(Gen *g, int m)
{
    if (gen_is_checkpointed(g, m))
        gen_ckpt_backward_exit(g, m);
}

static void bwd_run(Gen *g, const int *leaves, int n)
{
    Ddp *d = g->strategy;
    double params = run_params(g, leaves, n), trainable = run_trainable(d, leaves, n);
    gen_backward_transient(g, leaves, n);
    if (g->micro == 0 && trainable > 0 && !g->opt->gradient_as_bucket_view) {
        char *buf = cfg_strdup_printf("grad:%d", leaves[0]);
        double bytes = trainable * hw_dtype_bytes(d->grad_dtype);
        gen_alloc(g, buf, IR_MEM_GRADS, bytes);
        g_ptr_array_add(d->grad_buffers, buf);
        g_array_append_val(d->grad_bytes, bytes);
    }
    int op = gen_backward_run(g, leaves, n, NULL, 0);
    if (g->opt->mixed_precision && params > 0) {
        char *buf = cfg_strdup_printf("autocast:%d:%d", leaves[n - 1], g->micro);
        gen_free(g, g->host, buf, IR_MEM_PARAMS, params * hw_dtype_bytes(g->opt->param_dtype), -1);
        g_free(buf);
    }
    if (!d->sync)
        return;
    for (int i = 0; i < n; i++)
        while (d->next_bucket < d->n_buckets && d->ready_leaf[d->next_bucket] == leaves[i]) {
            int b = d->next_bucket++;
            /* the autograd hooks copied each gradient into the bucket; now it is ready */
            char *name = cfg_strdup_printf("bucket %d copy-in", b);
            int copy =
                gen_compute(g, IR_PHASE_BACKWARD, 0, 2 * d->bucket_bytes[b], 0, 1, name, &op, 1);
            g_free(name);
            name = cfg_strdup_printf("allreduce bucket %d", b);
            double elems = d->bucket_bytes[b] / hw_dtype_bytes(d->grad_dtype);
            d->ready_ops[b] = gen_coll(g, d->nccl, IR_COLL_ALLREDUCE, d->group,
                                       elems * hw_dtype_bytes(d->comm_dtype), d->comm_dtype,
                                       IR_PHASE_BACKWARD, name, &copy, 1);
            g_free(name);
        }
}

IrSchedule *strat_ddp_generate(Gen *g, StratInfo *info, GError **error)
{
    const Model *m = g->model;
    const StratOptions *opt = g->opt;
    Ddp d = {0};
    g->strategy = &d;
    d.grad_dtype = HW_DTYPE_FP32; /* parameters stay fp32 under autocast, so do gradients */
    /* torch.autocast: the residual stream and the fp32-list ops stay fp32 (the leaves'
     * autocast_extra_bytes). Not with tensor parallelism or Megatron's own options (distributed
     * optimizer, overlapped reduce, TP communication overlap): Megatron's Float16Module holds bf16
     * parameters and runs without autocast, its residual stream in the parameters' dtype */
    bool megatron = opt->distributed_optimizer || opt->overlap_grad_reduce || opt->tp_comm_overlap;
    g->autocast = opt->mixed_precision && hw_dtype_bytes(opt->param_dtype) < 4 &&
                  g->tp.size <= 1 && !megatron;
    d.comm_dtype = strat_grad_reduce_dtype(opt);
    d.grad_buffers = g_ptr_array_new_with_free_func(g_free);
    d.grad_bytes = g_array_new(FALSE, FALSE, sizeof(double));
    d.group = ir_group_add(g->sched, "dp", g->layout->world, 1);
    d.nccl = ir_stream_add(g->cls, "nccl:dp", false);
    for (int i = 0; i < m->n_modules; i++)
        g->boundary[i] = m->modules[i].is_block;
    assign_buckets(g, &d);
    place_buckets(g, &d);
    info->n_buckets = d.n_buckets;

    /* frozen parameters (LoRA's base) have no gradient, bucket slot or optimizer state */
    double psi = (double)(m->params - m->frozen_params);
    double grad_b = hw_dtype_bytes(d.grad_dtype);
    gen_alloc(g, "params", IR_MEM_PARAMS, (double)m->params * 4 + (double)m->buffers * 4);
    gen_alloc(g, "optimizer_state", IR_MEM_OPTIMIZER, psi * model_optimizer_state_bytes(m->training.optimizer));
    gen_alloc(g, "ddp_buckets", IR_MEM_COMM, psi * grad_b);
    gen_fp8_weights(g, g->fp8_params); /* --fp8-format: each replica's fp8 weight copies */

    GenHooks fwd = {fwd_enter, fwd_run, fwd_exit}, bwd = {bwd_enter, bwd_run, bwd_exit};
    for (g->micro = 0; g->micro < opt->grad_accum; g->micro++) {
        d.sync = g->micro == opt->grad_accum - 1;
        gen_walk_forward(g, &fwd);
        gen_walk_backward(g, &bwd);
    }
    /* every bucket launched, so each ready_ops entry below is set */
    g_assert(d.next_bucket == d.n_buckets);
    g->micro = opt->grad_accum - 1;
    /* finalize_backward: the default stream waits for every bucket's allreduce, then the reduced
     * buckets are copied back into .grad unless the gradients are views into them. */
    int *deps = g_new(int, d.n_buckets + 1);
    for (int b = 0; b < d.n_buckets; b++)
        deps[b] = d.ready_ops[b];
    double copy_out = opt->gradient_as_bucket_view ? 0 : 2 * psi * grad_b;
    int fin = gen_compute(g, IR_PHASE_BACKWARD, 0, copy_out, 0, 1, "wait allreduce, copy grads", deps,
                          d.n_buckets);
    g_free(deps);
    double denom = gen_optimizer_denom_alloc(g, psi);
    gen_optimizer_step(g, psi, gen_param_tensors(g), &fin, 1);
    gen_optimizer_denom_free(g, denom);
    /* zero_grad(set_to_none=True) releases the gradients once the step has read them */
    for (guint i = 0; i < d.grad_buffers->len; i++)
        gen_free(g, g->host, d.grad_buffers->pdata[i], IR_MEM_GRADS,
                 g_array_index(d.grad_bytes, double, i), -1);
    g_ptr_array_free(d.grad_buffers, TRUE);
    g_array_free(d.grad_bytes, TRUE);
    info->wrap_description =
        opt->bucket_cap_mb_given
            ? cfg_strdup_printf("%d gradient buckets of %g MiB (bucket_cap_mb given: the first too)",
                              d.n_buckets, opt->bucket_cap_mb)
            : cfg_strdup_printf("%d gradient buckets (first 1 MiB, then %g MB)", d.n_buckets,
                              opt->bucket_cap_mb);
    g_free(d.bucket_of_module);
    g_free(d.ready_leaf);
    g_free(d.grad_trainable);
    g_free(d.bucket_bytes);
    g_free(d.ready_ops);
    (void)error;
    return g->sched;
}
