/* fsdp: torch.distributed.fsdp.FullyShardedDataParallel (FSDP1, FlatParameter), following
 * torch/distributed/fsdp/_runtime_utils.py.
 *
 * Per unit u, in host issue order:
 *  forward   pre_forward(u): unshard(u) = all-gather of the FlatParameter in param_dtype on the
 *            shard group; with forward_prefetch also the next unit in pre-forward order.
 *            post_forward(u): reshard(u) for FULL_SHARD / HYBRID_SHARD, except the root, whose
 *            parameters are used immediately in backward (_post_forward_reshard).
 *  backward  pre_backward(u): unshard(u) if needed; BACKWARD_PRE prefetches the unit before u in
 *            post-forward order. post_backward(u): reshard(u); BACKWARD_POST prefetches here;
 *            then reduce-scatter of the gradient on the shard group, and for hybrid strategies an
 *            all-reduce of the shard on the replicate group, on its own process group and stream.
 *  unshard   with limit_all_gathers, the host first waits for the free of the unit two reshards
 *            back (_limiter_utils._FreeEventQueue, at most 2 in flight).
 * All-gathers and reduce-scatters of one process group serialise on its NCCL stream.
 *
 * Memory: sharded fp32 parameters, optimizer state and sharded fp32 gradients (padded/S per
 * unit); unsharded parameters in param_dtype while unsharded; the unsharded gradient until its
 * reduce-scatter is done; the low-precision shard copy during the all-gather.
 *
 * Expert parallelism (--ep E, mixture-of-experts models), as torchtitan composes it with FSDP2:
 * the ranks of a shard group form EP groups of E consecutive ranks; each holds experts/E of every
 * MoE layer's experts, so a unit's expert weights are gathered only for those, on the "expert
 * shard" group of the S/E ranks that hold the same experts, and reduce-scattered there; the other
 * weights stay on the shard group. Per MoE layer and micro-batch the forward adds two
 * all-to-alls on the EP group, dispatch (each token's hidden vector to its top_k experts) and
 * combine (back), on the compute stream, since the experts wait for them; the backward two more,
 * reversed. Balanced routing: each GPU computes as many expert tokens as without EP. Sharded
 * state per GPU does not change: (e/E)/(S/E) = e/S. */
#include "gen.h"
#include "../util/cfg.h"

#include <string.h>

typedef struct {
    int ag_op;       /* the all-gather (or cast) that made the params available, -1 if none yet */
    bool unsharded;
    int last_use;    /* last compute op reading the unsharded params */
    bool grad_live;  /* unsharded gradient allocated in this backward */
    int last_bwd;    /* last backward compute op of the unit */
    bool grad_shard_live; /* persistent sharded gradient allocated */
    int generation;  /* lifetimes of the unsharded parameters: each gets its own buffer, since
                      * the host may allocate the next before the GPU passed the last free */
} UnitState;

typedef struct {
    PlanWrap *wrap;
    UnitState *units;
    int *post_forward_order, n_post; /* ... and their post-forward */
    int shard_group, replicate_group;
    int nccl_shard, nccl_replicate, h2d, d2h;
    GQueue free_events;              /* rate limiter: free ops of resharded units */
    GArray *reduce_ops;              /* reduce ops of this step, waited on at the end */
    int pbytes, rbytes;
    bool sharded;                    /* not NO_SHARD */
    bool hybrid;
    /* expert parallelism: ep > 1 */
    int ep, ep_group, expert_group;
    double *expert_numel;            /* per unit: parameters of its routed experts (all of them) */
    bool *expert_list;               /* per module: a routed-experts ModuleList */
    int ep_dep;                      /* the last all-to-all, for the compute after it; -1 none */
    bool in_experts;                 /* walking a routed-experts ModuleList */
} Fsdp;

/* The unit's parameters one GPU gathers: all but the experts, and 1/ep of those. */
static double local_numel(Fsdp *f, int u)
{
    double padded = (double)f->wrap->units[u].padded;
    return f->ep > 1 ? padded - f->expert_numel[u] * (1 - 1.0 / f->ep) : padded;
}

/* One all-gather or reduce-scatter of unit u: with expert parallelism, the non-expert part on the
 * shard group and the experts' 1/ep on the expert shard group (serialised on one NCCL stream, as
 * FSDP2 issues one collective per group). */
static int unit_coll(Gen *g, Fsdp *f, int u, IrCollKind kind, double bytes_per_param, HwDtype dtype,
                     IrPhase phase, const char *name, const int *deps, int n_deps)
{
    double padded = (double)f->wrap->units[u].padded;
    if (f->ep <= 1 || f->expert_numel[u] <= 0)
        return gen_coll(g, f->nccl_shard, kind, f->shard_group, padded * bytes_per_param, dtype,
                        phase, name, deps, n_deps);
    int first = gen_coll(g, f->nccl_shard, kind, f->shard_group,
                         (padded - f->expert_numel[u]) * bytes_per_param, dtype, phase, name, deps,
                         n_deps);
    char *ename = g_strdup_printf("%s (experts)", name);
    int op = gen_coll(g, f->nccl_shard, kind, f->expert_group,
                      f->expert_numel[u] / f->ep * bytes_per_param, dtype, phase, ename, &first, 1);
    g_free(ename);
    return op;
}

/* The dispatch or combine all-to-all of one MoE layer: every token's hidden vector to (or from)
 * each of its top_k experts, in the activation dtype, on the EP group. */
static int all_to_all(Gen *g, Fsdp *f, IrPhase phase, const char *what, int module)
{
    const Model *m = g->model;
    /* the busiest GPU receives moe_imbalance times the mean, and every rank waits for it */
    double imbalance = g->opt->moe_imbalance > 1 ? g->opt->moe_imbalance : 1;
    double bytes = g->mb * m->training.seq_len * m->moe.top_k * (double)m->hidden * g->act_bytes *
                   imbalance;
    char *name = g_strdup_printf("alltoall %s %s", what, m->modules[module].name);
    int dep = g->last_compute;
    f->ep_dep = gen_coll(g, g->compute, IR_COLL_ALLTOALL, f->ep_group, bytes,
                         g->opt->mixed_precision ? g->opt->param_dtype : HW_DTYPE_FP32, phase,
                         name, &dep, dep >= 0 ? 1 : 0);
    g_free(name);
    return f->ep_dep;
}

static bool reshard_after_forward(Gen *g, int unit)
{
    ShardingStrategy s = g->opt->sharding;
    return unit != 0 && (s == SHARD_FULL_SHARD || s == SHARD_HYBRID_SHARD);
}

static double shard_numel(Gen *g, Fsdp *f, int u)
{
    return (double)f->wrap->units[u].padded / g->layout->shard_size;
}

static char *unit_name(Gen *g, Fsdp *f, int u)
{
    const char *name = g->model->modules[f->wrap->units[u].module].name;
    return g_strdup(*name ? name : "root");
}

static void unshard(Gen *g, Fsdp *f, int u, const char *why)
{
    UnitState *us = &f->units[u];
    if (us->unsharded)
        return;
    bool needs_copy = f->sharded || g->opt->mixed_precision;
    us->unsharded = true;
    if (!needs_copy || f->wrap->units[u].padded == 0) {
        us->ag_op = -1; /* NO_SHARD in full precision: parameters are used in place */
        return;
    }
    double padded = local_numel(f, u);
    double shard = shard_numel(g, f, u);
    char *uname = unit_name(g, f, u);
    if (g->opt->limit_all_gathers && f->sharded && g_queue_get_length(&f->free_events) >= 2) {
        int free_op = GPOINTER_TO_INT(g_queue_pop_head(&f->free_events));
        char *name = g_strdup_printf("rate limiter wait (%s)", uname);
        gen_host_wait(g, free_op, name);
        g_free(name);
    }
    int h2d = -1;
    char *offload_buf = g_strdup_printf("offload:%d.%d", u, us->generation + 1);
    if (g->opt->cpu_offload) {
        /* the fp32 shard comes from pinned host memory (non_blocking copy) */
        char *name = g_strdup_printf("h2d shard %s", uname);
        IrOp op = {.kind = IR_OP_MEMCPY, .stream = (uint16_t)f->h2d, .phase = IR_PHASE_OTHER};
        op.u.memcpy.bytes = gen_size(g, "memcpy", shard * 4);
        op.u.memcpy.to_device = true;
        gen_alloc(g, offload_buf, IR_MEM_PARAMS, shard * 4);
        h2d = ir_op_add(g->cls, &op, name, NULL, 0);
        g_free(name);
    }
    us->generation++;
    char *buf = g_strdup_printf("unsharded:%d.%d", u, us->generation);
    if (!f->sharded) {
        /* NO_SHARD under mixed precision: a low-precision copy of the full parameters */
        gen_alloc(g, buf, IR_MEM_PARAMS, padded * f->pbytes);
        char *name = g_strdup_printf("cast params %s", uname);
        us->ag_op = gen_compute(g, IR_PHASE_OTHER, 0, padded * (4 + f->pbytes), 0, 1, name, &h2d, 1);
        g_free(name);
    } else {
        char *mp = g_strdup_printf("mp_shard:%d.%d", u, us->generation);
        if (g->opt->mixed_precision)
            gen_alloc(g, mp, IR_MEM_PARAMS, shard * f->pbytes);
        gen_alloc(g, buf, IR_MEM_PARAMS, padded * f->pbytes);
        char *name = g_strdup_printf("allgather %s (%s)", uname, why);
        us->ag_op = unit_coll(g, f, u, IR_COLL_ALLGATHER, f->pbytes,
                              g->opt->mixed_precision ? g->opt->param_dtype : HW_DTYPE_FP32,
                              IR_PHASE_OTHER, name, &h2d, 1);
        g_free(name);
        if (g->opt->mixed_precision)
            gen_free(g, f->nccl_shard, mp, IR_MEM_PARAMS, shard * f->pbytes, us->ag_op);
        g_free(mp);
    }
    if (g->opt->cpu_offload)
        gen_free(g, f->sharded ? f->nccl_shard : g->compute, offload_buf, IR_MEM_PARAMS, shard * 4,
                 us->ag_op);
    g_free(offload_buf);
    g_free(buf);
    g_free(uname);
}

static void reshard(Gen *g, Fsdp *f, int u)
{
    UnitState *us = &f->units[u];
    if (!us->unsharded)
        return;
    us->unsharded = false;
    if ((!f->sharded && !g->opt->mixed_precision) || f->wrap->units[u].padded == 0)
        return;
    char *buf = g_strdup_printf("unsharded:%d.%d", u, us->generation);
    int dep = us->last_use >= 0 ? us->last_use : us->ag_op;
    int op = gen_free(g, g->compute, buf, IR_MEM_PARAMS, local_numel(f, u) * f->pbytes, dep);
    if (g->opt->limit_all_gathers && f->sharded)
        g_queue_push_tail(&f->free_events, GINT_TO_POINTER(op));
    g_free(buf);
}

/* The unit after `u` in `order` (forward prefetch) or before it (backward prefetch). */
static int neighbour(const int *order, int n, int u, int step)
{
    for (int i = 0; i < n; i++) {
        if (order[i] == u) {
            int j = i + step;
            return j >= 0 && j < n ? order[j] : -1;
        }
    }
    return -1;
}

static int owning_unit(Gen *g, Fsdp *f, const int *leaves, int n)
{
    return f->wrap->unit_of_module[leaves[0]];
}

/* ---- forward hooks ---- */

static void fwd_enter(Gen *g, int m)
{
    Fsdp *f = g->strategy;
    if (f->ep > 1 && f->expert_list[m]) {
        all_to_all(g, f, IR_PHASE_FORWARD, "dispatch", m);
        f->in_experts = true;
        return;
    }
    int u = f->wrap->unit_of_module[m];
    if (f->wrap->units[u].module == m) {
        unshard(g, f, u, "forward");
        /* units are numbered in module pre-order, which is their pre-forward order */
        if (g->opt->forward_prefetch && u + 1 < f->wrap->n_units)
            unshard(g, f, u + 1, "forward prefetch");
    }
    if (gen_is_checkpointed(g, m))
        gen_ckpt_forward_enter(g, m);
}

static void fwd_run(Gen *g, const int *leaves, int n)
{
    Fsdp *f = g->strategy;
    int u = owning_unit(g, f, leaves, n);
    int deps[2] = {f->units[u].ag_op, f->ep_dep};
    /* the busiest GPU's experts run moe_imbalance times the mean tokens (and save as much); its
     * FLOPs count as model FLOPs, so MFU reads a little high under imbalance */
    double mb = g->mb;
    if (f->in_experts && g->opt->moe_imbalance > 1)
        g->mb *= g->opt->moe_imbalance;
    f->units[u].last_use = gen_forward_run(g, leaves, n, deps, f->ep_dep >= 0 ? 2 : 1);
    g->mb = mb;
    f->ep_dep = -1;
}

static void fwd_exit(Gen *g, int m)
{
    Fsdp *f = g->strategy;
    if (f->ep > 1 && f->expert_list[m]) {
        f->in_experts = false;
        all_to_all(g, f, IR_PHASE_FORWARD, "combine", m);
        return;
    }
    if (gen_is_checkpointed(g, m))
        gen_ckpt_forward_exit(g, m);
    int u = f->wrap->unit_of_module[m];
    if (f->wrap->units[u].module != m)
        return;
    if (g->micro == 0)
        f->post_forward_order[f->n_post++] = u;
    if (reshard_after_forward(g, u))
        reshard(g, f, u);
}

/* ---- backward hooks ---- */

static void bwd_enter(Gen *g, int m)
{
    Fsdp *f = g->strategy;
    if (f->ep > 1 && f->expert_list[m]) { /* the combine's gradient goes back to the experts */
        all_to_all(g, f, IR_PHASE_BACKWARD, "combine grad", m);
        f->in_experts = true;
        return;
    }
    int u = f->wrap->unit_of_module[m];
    if (f->wrap->units[u].module == m) {
        unshard(g, f, u, "backward");
        if (g->opt->backward_prefetch == PREFETCH_BACKWARD_PRE) {
            int next = neighbour(f->post_forward_order, f->n_post, u, -1);
            if (next >= 0)
                unshard(g, f, next, "backward prefetch");
        }
    }
    if (gen_is_checkpointed(g, m)) {
        int dep = f->units[u].ag_op;
        f->units[u].last_use = gen_ckpt_backward_enter(g, m, &dep, 1);
    }
}

static void bwd_run(Gen *g, const int *leaves, int n)
{
    Fsdp *f = g->strategy;
    int u = owning_unit(g, f, leaves, n);
    UnitState *us = &f->units[u];
    double padded = local_numel(f, u);
    if (!us->grad_live && padded > 0) {
        /* the FlatParameter's unsharded gradient, in param_dtype */
        char *buf = g_strdup_printf("unsharded_grad:%d.%d", u, g->micro);
        gen_alloc(g, buf, IR_MEM_GRADS, padded * f->pbytes);
        g_free(buf);
        us->grad_live = true;
    }
    int deps[2] = {us->ag_op, f->ep_dep};
    double mb = g->mb;
    if (f->in_experts && g->opt->moe_imbalance > 1)
        g->mb *= g->opt->moe_imbalance;
    us->last_use = us->last_bwd = gen_backward_run(g, leaves, n, deps, f->ep_dep >= 0 ? 2 : 1);
    g->mb = mb;
    f->ep_dep = -1;
}

static void reduce_gradient(Gen *g, Fsdp *f, int u)
{
    UnitState *us = &f->units[u];
    double padded = local_numel(f, u);
    double shard = shard_numel(g, f, u);
    char *uname = unit_name(g, f, u);
    char *ugrad = g_strdup_printf("unsharded_grad:%d.%d", u, g->micro);
    char *gshard = g_strdup_printf("grad_shard:%d", u);
    HwDtype rdtype = g->opt->mixed_precision ? g->opt->reduce_dtype : HW_DTYPE_FP32;
    int last;
    if (!us->grad_shard_live && !g->opt->cpu_offload) {
        /* the fp32 sharded gradient that the optimizer reads (_saved_grad_shard) */
        gen_alloc(g, gshard, IR_MEM_GRADS, shard * 4);
        us->grad_shard_live = true;
    }
    if (f->sharded) {
        char *name = g_strdup_printf("reduce_scatter %s", uname);
        last = unit_coll(g, f, u, IR_COLL_REDUCE_SCATTER, f->rbytes, rdtype, IR_PHASE_BACKWARD,
                         name, &us->last_bwd, 1);
        g_free(name);
        gen_free(g, f->nccl_shard, ugrad, IR_MEM_GRADS, padded * f->pbytes, last);
        if (f->hybrid) {
            name = g_strdup_printf("allreduce %s (replicas)", uname);
            last = gen_coll(g, f->nccl_replicate, IR_COLL_ALLREDUCE, f->replicate_group,
                            shard * f->rbytes, rdtype, IR_PHASE_BACKWARD, name, &last, 1);
            g_free(name);
        }
    } else {
        char *name = g_strdup_printf("allreduce %s", uname);
        last = gen_coll(g, f->nccl_shard, IR_COLL_ALLREDUCE, f->shard_group, padded * f->rbytes,
                        rdtype, IR_PHASE_BACKWARD, name, &us->last_bwd, 1);
        g_free(name);
        gen_free(g, f->nccl_shard, ugrad, IR_MEM_GRADS, padded * f->pbytes, last);
    }
    us->grad_live = false;
    if (g->opt->cpu_offload) {
        /* the sharded gradient goes to pinned host memory for the CPU optimizer step */
        char *name = g_strdup_printf("d2h grad %s", uname);
        IrOp op = {.kind = IR_OP_MEMCPY, .stream = (uint16_t)f->d2h, .phase = IR_PHASE_BACKWARD};
        op.u.memcpy.bytes = gen_size(g, "memcpy", shard * 4);
        last = ir_op_add(g->cls, &op, name, &last, 1);
        g_free(name);
    }
    g_array_append_val(f->reduce_ops, last);
    g_free(uname);
    g_free(ugrad);
    g_free(gshard);
}

static void bwd_exit(Gen *g, int m)
{
    Fsdp *f = g->strategy;
    if (f->ep > 1 && f->expert_list[m]) {
        f->in_experts = false;
        all_to_all(g, f, IR_PHASE_BACKWARD, "dispatch grad", m);
        return;
    }
    if (gen_is_checkpointed(g, m))
        gen_ckpt_backward_exit(g, m);
    int u = f->wrap->unit_of_module[m];
    if (f->wrap->units[u].module != m)
        return;
    reshard(g, f, u);
    if (g->opt->backward_prefetch == PREFETCH_BACKWARD_POST) {
        int next = neighbour(f->post_forward_order, f->n_post, u, -1);
        if (next >= 0)
            unshard(g, f, next, "backward prefetch");
    }
    if (f->units[u].last_bwd >= 0 && f->wrap->units[u].padded > 0)
        reduce_gradient(g, f, u);
    f->units[u].last_bwd = -1;
}

static void describe_wrap(Gen *g, Fsdp *f, StratInfo *info)
{
    GString *s = g_string_new("");
    uint64_t largest = 0;
    for (int u = 0; u < f->wrap->n_units; u++)
        largest = MAX(largest, f->wrap->units[u].numel);
    const char *policy = g->opt->wrap.kind == PLAN_WRAP_NONE ? "none (root only)"
                         : g->opt->wrap.kind == PLAN_WRAP_TRANSFORMER ? "transformer blocks"
                                                                      : "size-based";
    g_string_printf(s, "%d units, wrap policy %s", f->wrap->n_units, policy);
    if (g->opt->wrap.kind == PLAN_WRAP_SIZE)
        g_string_append_printf(s, " (min_num_params %" G_GUINT64_FORMAT ")", g->opt->wrap.min_num_params);
    g_string_append_printf(s, "; root holds %" G_GUINT64_FORMAT " params, largest unit %" G_GUINT64_FORMAT,
                           f->wrap->units[0].numel, largest);
    info->wrap_description = g_string_free(s, FALSE);
    info->n_units = f->wrap->n_units;
    info->largest_unit_numel = largest;
}

IrSchedule *strat_fsdp_generate(Gen *g, StratInfo *info, GError **error)
{
    const Model *m = g->model;
    const StratOptions *opt = g->opt;
    const StratLayout *lay = g->layout;
    Fsdp f = {0};
    g->strategy = &f;
    f.wrap = plan_wrap_build(m, &opt->wrap, lay->shard_size);
    f.units = g_new0(UnitState, f.wrap->n_units);
    for (int u = 0; u < f.wrap->n_units; u++)
        f.units[u] = (UnitState){.ag_op = -1, .last_use = -1, .last_bwd = -1};
    f.post_forward_order = g_new(int, f.wrap->n_units);
    g_queue_init(&f.free_events);
    f.reduce_ops = g_array_new(FALSE, FALSE, sizeof(int));
    f.sharded = opt->sharding != SHARD_NO_SHARD;
    f.hybrid = opt->sharding == SHARD_HYBRID_SHARD || opt->sharding == SHARD_HYBRID_ZERO2;
    f.pbytes = opt->mixed_precision ? hw_dtype_bytes(opt->param_dtype) : 4;
    f.rbytes = opt->mixed_precision ? hw_dtype_bytes(opt->reduce_dtype) : 4;
    /* the data-parallel dimension: all ranks without TP, every t-th (by --placement) with it */
    int dp_stride = lay->stride[PAR_DIM_DP];
    if (f.sharded) {
        f.shard_group = ir_group_add(g->sched, "shard", lay->shard_size, dp_stride);
        f.nccl_shard = ir_stream_add(g->cls, "nccl:shard", false);
    } else {
        f.shard_group = ir_group_add(g->sched, "dp", lay->dp, dp_stride);
        f.nccl_shard = ir_stream_add(g->cls, "nccl:dp", false);
    }
    if (f.hybrid) {
        f.replicate_group =
            ir_group_add(g->sched, "replicate", lay->replicate_size, dp_stride * lay->shard_size);
        f.nccl_replicate = ir_stream_add(g->cls, "nccl:replicate", false);
    }
    if (opt->cpu_offload) {
        f.h2d = ir_stream_add(g->cls, "h2d", false);
        f.d2h = ir_stream_add(g->cls, "d2h", false);
    }
    f.ep = opt->ep > 1 ? opt->ep : 1;
    f.ep_dep = -1;
    f.expert_numel = g_new0(double, f.wrap->n_units);
    f.expert_list = g_new0(bool, m->n_modules);
    if (f.ep > 1) {
        if (!f.sharded || lay->shard_size % f.ep != 0) {
            cfg_input_error(error, "option --ep: expected an ep that divides the %d GPUs of a "
                                   "shard group (FSDP sharding, not no_shard), got %d",
                            lay->shard_size, f.ep);
            g_free(f.expert_numel), g_free(f.expert_list), g_free(f.units);
            g_free(f.post_forward_order), g_array_free(f.reduce_ops, TRUE);
            plan_wrap_free(f.wrap);
            return NULL;
        }
        for (int i = 0; i < m->n_modules; i++) {
            const ModelModule *mod = &m->modules[i];
            if (strcmp(mod->kind, "ModuleList") != 0 || !g_str_has_suffix(mod->name, ".experts"))
                continue;
            f.expert_list[i] = true;
            f.expert_numel[f.wrap->unit_of_module[i]] += (double)model_subtree_params(m, i);
        }
        /* consecutive ranks share the tokens (EP), every ep-th rank the same experts */
        f.ep_group = ir_group_add(g->sched, "ep", f.ep, dp_stride);
        f.expert_group = ir_group_add(g->sched, "expert_shard", lay->shard_size / f.ep,
                                      dp_stride * f.ep);
    }
    for (int i = 0; i < m->n_modules; i++)
        g->boundary[i] = f.wrap->units[f.wrap->unit_of_module[i]].module == i ||
                         gen_is_checkpointed(g, i) || f.expert_list[i];
    describe_wrap(g, &f, info);
    if (f.ep > 1) {
        char *d = g_strdup_printf("%s; experts over EP groups of %d GPUs (%d of %d per GPU, "
                                  "all-to-all dispatch and combine), their weights sharded over "
                                  "%d GPUs",
                                  info->wrap_description, f.ep, m->moe.experts / f.ep,
                                  m->moe.experts, lay->shard_size / f.ep);
        g_free(info->wrap_description);
        info->wrap_description = d;
    }

    double padded_total = 0;
    for (int u = 0; u < f.wrap->n_units; u++)
        padded_total += (double)f.wrap->units[u].padded;
    info->padded_params = (uint64_t)padded_total;
    double shard_total = padded_total / lay->shard_size;
    double state = model_optimizer_state_bytes(m->training.optimizer);
    if (!opt->cpu_offload) {
        gen_alloc(g, "params_shard", IR_MEM_PARAMS, shard_total * 4);
        gen_alloc(g, "optimizer_state", IR_MEM_OPTIMIZER, shard_total * state);
    }
    gen_alloc(g, "buffers", IR_MEM_PARAMS, (double)m->buffers * 4);

    GenHooks fwd = {fwd_enter, fwd_run, fwd_exit}, bwd = {bwd_enter, bwd_run, bwd_exit};
    for (g->micro = 0; g->micro < opt->grad_accum; g->micro++) {
        /* _root_pre_forward: the unshard stream waits for the previous step's work */
        gen_walk_forward(g, &fwd);
        gen_walk_backward(g, &bwd);
    }
    g->micro = opt->grad_accum - 1;
    /* _post_backward_final_callback: the default stream waits for every gradient reduction */
    int fin = gen_compute(g, IR_PHASE_BACKWARD, 0, 0, 0, 0, "wait gradient reduction",
                          (const int *)(void *)f.reduce_ops->data, (int)f.reduce_ops->len);
    if (opt->cpu_offload) {
        /* torch.optim on the CPU: memory-bound, the node's memory bandwidth shared by its ranks */
        double bw = g->topo->host_memory_Bps / lay->gpus_per_node;
        gen_host_wait(g, fin, "wait for offloaded gradients");
        gen_host(g, shard_total * model_optimizer_step_bytes(m->training.optimizer) / bw,
                        "optimizer.step (CPU)");
    } else {
        gen_optimizer_step(g, shard_total, &fin, 1);
    }
    for (int u = 0; u < f.wrap->n_units; u++) {
        /* SHARD_GRAD_OP keeps nothing unsharded past backward; the root under FULL_SHARD was
         * resharded in its post-backward: everything is sharded again here. */
        if (f.units[u].grad_shard_live) {
            char *buf = g_strdup_printf("grad_shard:%d", u);
            gen_free(g, g->host, buf, IR_MEM_GRADS, shard_numel(g, &f, u) * 4, -1);
            g_free(buf);
        }
    }
    g_queue_clear(&f.free_events);
    g_array_free(f.reduce_ops, TRUE);
    g_free(f.post_forward_order);
    g_free(f.units);
    g_free(f.expert_numel);
    g_free(f.expert_list);
    plan_wrap_free(f.wrap);
    return g->sched;
}
