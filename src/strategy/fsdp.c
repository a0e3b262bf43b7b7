/* fsdp: torch.distributed.fsdp.FullyShardedDataParallel (FSDP1, FlatParameter), following
 * torch/distributed/fsdp/_runtime_utils.py; and fully_shard (FSDP2, --fsdp-version 2), whose
 * differences are listed before fsdp2_padded below.
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
 * unit; DeepSpeed's optimizer offload, fsdp_offload.c: the shard in param_dtype only); unsharded
 * parameters in param_dtype while unsharded; the unsharded gradient until its reduce-scatter is
 * done; the low-precision shard copy during the all-gather.
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
#include "fsdp_priv.h"
#include "../kern/kern.h"
#include "../util/cfg.h"

#include <math.h>
#include <string.h>

static bool reshard_after_forward(Gen *g, int unit)
{
    ShardingStrategy s = g->opt->sharding;
    const Fsdp *f = g->strategy; /* not sharded: NO_SHARD, or hybrid clamped to it */
    if (f->v2) /* the root keeps its parameters for backward in FSDP2 too (_lazy_init) */
        return unit != 0 && f->raf > 0;
    return unit != 0 && f->sharded && (s == SHARD_FULL_SHARD || s == SHARD_HYBRID_SHARD);
}

static double shard_numel(Gen *g, Fsdp *f, int u)
{
    return (double)f->wrap->units[u].padded / g->layout->shard_size;
}

/* Elements of the unit's gradient: FSDP1's whole FlatParameter (frozen parts included); FSDP2's
 * trainable parameters only, where the unit mixes them (per-parameter gradients; padding left
 * out for such units). */
static double grad_numel(Fsdp *f, int u)
{
    bool mixed = f->trainable[u] < (double)f->wrap->units[u].numel;
    return f->v2 && mixed ? f->trainable[u] : (double)f->wrap->units[u].padded;
}

static char *unit_name(Gen *g, Fsdp *f, int u)
{
    const char *name = g->model->modules[f->wrap->units[u].module].name;
    return g_strdup(*name ? name : "root");
}

/* Frees the buffer `held` keeps, if any, from the host (FsdpHeld), and keeps `name` (taken;
 * NULL: none) of `bytes` in its place. */
static void held_replace(Gen *g, FsdpHeld *held, char *name, double bytes)
{
    if (held->name)
        gen_free(g, g->host, held->name, held->cat, held->bytes, -1);
    g_free(held->name);
    held->name = name;
    held->bytes = bytes;
}

/* FSDP1's rate limiter in _unshard() (_limiter_utils._FreeEventQueue): with two frees queued,
 * the host waits for the older one before it goes on. */
static void rate_limit(Gen *g, Fsdp *f, int u)
{
    if (!g->opt->limit_all_gathers || f->v2 || !f->sharded ||
        g_queue_get_length(&f->free_events) < 2)
        return;
    int free_op = GPOINTER_TO_INT(g_queue_pop_head(&f->free_events));
    char *uname = unit_name(g, f, u);
    char *name = cfg_strdup_printf("rate limiter wait (%s)", uname);
    gen_host_wait(g, free_op, name);
    g_free(name);
    g_free(uname);
}

/* FSDP1's _unshard(u), or FSDP2's FSDPParamGroup.unshard(). FSDP1 skips the call for a unit it
 * prefetched, and makes it, rate limiter included, for a unit that is unsharded already: the
 * root in its pre-backward, SHARD_GRAD_OP's units in backward, whose host it so holds within
 * two post-backward frees of the GPU. */
static void unshard(Gen *g, Fsdp *f, int u, const char *why)
{
    UnitState *us = &f->units[u];
    if (us->prefetched)
        return;
    if (us->unsharded) {
        if (f->wrap->units[u].padded > 0)
            rate_limit(g, f, u);
        return;
    }
    bool needs_copy = f->sharded || g->opt->mixed_precision;
    us->unsharded = true;
    if (!needs_copy || f->wrap->units[u].padded == 0) {
        us->ag_op = -1; /* NO_SHARD in full precision: parameters are used in place */
        return;
    }
    double padded = fsdp_local_numel(f, u);
    double shard = shard_numel(g, f, u);
    rate_limit(g, f, u);
    char *uname = unit_name(g, f, u);
    int h2d = -1;
    char *offload_buf = cfg_strdup_printf("offload:%d.%d", u, us->generation + 1);
    if (g->opt->cpu_offload) {
        /* the fp32 shard comes from pinned host memory (non_blocking copy) */
        char *name = cfg_strdup_printf("h2d shard %s", uname);
        IrOp op = {.kind = IR_OP_MEMCPY, .stream = (uint16_t)f->h2d, .phase = IR_PHASE_OTHER};
        op.u.memcpy.bytes = gen_size(g, "memcpy", shard * 4);
        op.u.memcpy.to_device = true;
        gen_alloc(g, offload_buf, IR_MEM_PARAMS, shard * 4);
        h2d = ir_op_add(g->cls, &op, name, NULL, 0);
        g_free(name);
    }
    us->generation++;
    char *buf = cfg_strdup_printf("unsharded:%d.%d", u, us->generation);
    if (!f->sharded) {
        /* NO_SHARD under mixed precision: a low-precision copy of the full parameters */
        gen_alloc(g, buf, IR_MEM_PARAMS, padded * f->pbytes);
        char *name = cfg_strdup_printf("cast params %s", uname);
        us->ag_op =
            gen_compute(g, IR_PHASE_OTHER, 0, padded * (4 + f->pbytes), 0, 1, name, &h2d, 1);
        g_free(name);
    } else {
        /* the all-gather input: FSDP1's _mp_shard, FSDP2's copy-in; FSDP2 resharded to a
         * smaller group after forward gathers from that copy instead */
        bool from_post = f->v2 && us->post_forward;
        double in_bytes = from_post ? padded / f->raf * f->pbytes : shard * f->pbytes;
        char *mp = from_post ? cfg_strdup_printf("post_forward:%d.%d", u, g->micro)
                             : cfg_strdup_printf("mp_shard:%d.%d", u, us->generation);
        /* DeepSpeed's offloaded ZeRO keeps the shard in param_dtype: no cast copy to gather */
        bool has_input =
            from_post || (g->opt->mixed_precision && !g->opt->offload_optimizer) || f->v2;
        if (has_input && !from_post)
            gen_alloc(g, mp, IR_MEM_PARAMS, in_bytes);
        int deps[2] = {h2d, -1}, n_deps = 1;
        if (f->ag_out.name) {
            /* FSDP2: the previous all-gather's output goes once its copy-out is done */
            deps[n_deps++] = f->last_copy_out;
            held_replace(g, &f->ag_out, NULL, 0);
        }
        char *out = f->v2 ? cfg_strdup_printf("ag_out:%d.%d", u, us->generation) : g_strdup(buf);
        gen_alloc(g, out, IR_MEM_PARAMS, padded * f->pbytes);
        char *name = cfg_strdup_printf("allgather %s (%s)", uname, why);
        HwDtype dtype = g->opt->mixed_precision ? g->opt->param_dtype : HW_DTYPE_FP32;
        /* from_post is FSDP2's, expert parallelism FSDP1's: never both */
        us->ag_op = from_post
                        ? gen_coll(g, f->nccl_shard, IR_COLL_ALLGATHER, f->raf_group,
                                   padded * f->pbytes, dtype, IR_PHASE_OTHER, name, deps, n_deps)
                        : fsdp_unit_coll(g, f, u, IR_COLL_ALLGATHER, f->pbytes, dtype,
                                         IR_PHASE_OTHER, name, deps, n_deps);
        g_free(name);
        if (has_input && f->v2 && !from_post) {
            /* FSDP2 keeps the input with the output in its AllGatherState: both go at the
             * next all-gather */
            held_replace(g, &f->ag_in, g_strdup(mp), in_bytes);
        } else if (has_input) {
            gen_free(g, f->nccl_shard, mp, IR_MEM_PARAMS, in_bytes, us->ag_op);
        }
        us->post_forward = false;
        us->copy_out_pending = f->v2;
        g_free(mp);
        g_free(out);
    }
    if (g->opt->cpu_offload && f->v2 && f->sharded) {
        /* FSDP2 (CPUOffloadPolicy): the copied-in shard goes with the all-gather input, at
         * the next all-gather */
        held_replace(g, &f->offload, g_strdup(offload_buf), shard * 4);
    } else if (g->opt->cpu_offload) {
        gen_free(g, f->sharded ? f->nccl_shard : g->compute, offload_buf, IR_MEM_PARAMS, shard * 4,
                 us->ag_op);
    }
    g_free(offload_buf);
    g_free(buf);
    g_free(uname);
}

/* FSDP2: the unit is about to run; its all-gather output is copied out to the parameters on
 * the compute stream and freed (wait_for_unshard). */
static void copy_out(Gen *g, Fsdp *f, int u)
{
    UnitState *us = &f->units[u];
    if (!us->copy_out_pending)
        return;
    us->copy_out_pending = false;
    double bytes = (double)f->wrap->units[u].padded * f->pbytes;
    char *out = cfg_strdup_printf("ag_out:%d.%d", u, us->generation);
    char *buf = cfg_strdup_printf("unsharded:%d.%d", u, us->generation);
    char *uname = unit_name(g, f, u);
    char *name = cfg_strdup_printf("all-gather copy-out %s", uname);
    gen_alloc(g, buf, IR_MEM_PARAMS, bytes);
    us->ag_op = gen_compute(g, IR_PHASE_OTHER, 0, 2 * bytes, 0, 1, name, &us->ag_op, 1);
    /* an older output nobody gathered after goes now */
    held_replace(g, &f->ag_out, out, bytes);
    f->last_copy_out = us->ag_op;
    g_free(name), g_free(uname), g_free(buf);
}

static void reshard(Gen *g, Fsdp *f, int u)
{
    UnitState *us = &f->units[u];
    us->prefetched = false; /* _reshard(), freeing or not */
    if (!us->unsharded)
        return;
    us->unsharded = false;
    if (us->copy_out_pending) {
        /* gathered, never used: the all-gather output goes */
        char *out = cfg_strdup_printf("ag_out:%d.%d", u, us->generation);
        gen_free(g, f->nccl_shard, out, IR_MEM_PARAMS, (double)f->wrap->units[u].padded * f->pbytes,
                 us->ag_op);
        g_free(out);
        us->copy_out_pending = false;
        return;
    }
    if ((!f->sharded && !g->opt->mixed_precision) || f->wrap->units[u].padded == 0)
        return;
    char *buf = cfg_strdup_printf("unsharded:%d.%d", u, us->generation);
    int dep = us->last_use >= 0 ? us->last_use : us->ag_op;
    /* FSDP1 record_stream()s the unsharded FlatParameter (made on the unshard stream): its
     * memory returns when the GPU has passed the last use. FSDP2's parameters live on the compute
     * stream they are used on: the block is reusable in stream order once the host frees it. */
    int op =
        f->v2
            ? gen_free(g, g->host, buf, IR_MEM_PARAMS, fsdp_local_numel(f, u) * f->pbytes, -1)
            : gen_free(g, g->compute, buf, IR_MEM_PARAMS, fsdp_local_numel(f, u) * f->pbytes, dep);
    if (g->opt->limit_all_gathers && f->sharded)
        g_queue_push_tail(&f->free_events, GINT_TO_POINTER(op));
    g_free(buf);
}

/* Backward prefetch: the unit before u in post-forward order runs backward next, unless its
 * backward ran already (_get_handle_to_prefetch: _needs_pre_backward_unshard; BACKWARD_POST's
 * prefetch in the root's post-backward, the last one, has no target). */
static void prefetch_backward(Gen *g, Fsdp *f, int u)
{
    for (int i = 1; i < f->n_post; i++) {
        if (f->post_forward_order[i] == u) {
            int target = f->post_forward_order[i - 1];
            if (!f->units[target].needs_bwd_unshard)
                return;
            unshard(g, f, target, "backward prefetch");
            f->units[target].prefetched = !f->v2;
            return;
        }
    }
}

/* A routed-experts ModuleList (expert parallelism): the walk entering or leaving it issues its
 * all-to-all (dispatch or combine), and nothing of a unit or a checkpoint. False for other
 * modules. */
static bool expert_boundary(Gen *g, Fsdp *f, int m, IrPhase phase, const char *what, bool entering)
{
    if (f->ep <= 1 || !f->expert_list[m])
        return false;
    fsdp_all_to_all(g, f, phase, what, m);
    f->in_experts = entering;
    return true;
}

/* The walk leaves module m, forward or backward: the experts' all-to-all (combine, or the
 * dispatch's gradient) or the checkpoint's end. Returns the unit m is the root of, else -1. */
static int leave_module(Gen *g, Fsdp *f, int m, bool forward)
{
    if (expert_boundary(g, f, m, forward ? IR_PHASE_FORWARD : IR_PHASE_BACKWARD,
                        forward ? "combine" : "dispatch grad", false))
        return -1;
    if (gen_is_checkpointed(g, m))
        (forward ? gen_ckpt_forward_exit : gen_ckpt_backward_exit)(g, m);
    int u = f->wrap->unit_of_module[m];
    return f->wrap->units[u].module == m ? u : -1;
}

/* One run of unit u's leaves, forward or backward (`run`), after the unit's all-gather and the
 * last all-to-all; returns its last op. The busiest GPU's experts run moe_imbalance times the
 * mean tokens (and save as much); their FLOPs count as model FLOPs, so MFU reads a little high
 * under imbalance. */
static int run_leaves(Gen *g, Fsdp *f, int u, const int *leaves, int n,
                      int (*run)(Gen *, const int *, int, const int *, int))
{
    int deps[2] = {f->units[u].ag_op, f->ep_dep};
    double mb = g->mb;
    if (f->in_experts && g->opt->moe_imbalance > 1)
        g->mb *= g->opt->moe_imbalance;
    int last = run(g, leaves, n, deps, f->ep_dep >= 0 ? 2 : 1);
    g->mb = mb;
    f->ep_dep = -1;
    return last;
}

/* ---- forward hooks ---- */

static void fwd_enter(Gen *g, int m)
{
    Fsdp *f = g->strategy;
    if (expert_boundary(g, f, m, IR_PHASE_FORWARD, "dispatch", true))
        return;
    int u = f->wrap->unit_of_module[m];
    if (f->wrap->units[u].module == m) {
        unshard(g, f, u, "forward");
        copy_out(g, f, u);
        /* units are numbered in module pre-order, which is their pre-forward order */
        if (g->opt->forward_prefetch && !f->v2 && u + 1 < f->wrap->n_units) {
            unshard(g, f, u + 1, "forward prefetch");
            f->units[u + 1].prefetched = true;
        }
    }
    if (gen_is_checkpointed(g, m))
        gen_ckpt_forward_enter(g, m);
}

static void fwd_run(Gen *g, const int *leaves, int n)
{
    Fsdp *f = g->strategy;
    int u = f->wrap->unit_of_module[leaves[0]];
    f->units[u].last_use = run_leaves(g, f, u, leaves, n, gen_forward_run);
}

static void fwd_exit(Gen *g, int m)
{
    Fsdp *f = g->strategy;
    int u = leave_module(g, f, m, true);
    if (u < 0)
        return;
    if (g->micro == 0)
        f->post_forward_order[f->n_post++] = u;
    /* _post_forward: _reshard() (freeing or not) and the pre-backward hooks */
    f->units[u].prefetched = false;
    f->units[u].needs_bwd_unshard = true;
    if (reshard_after_forward(g, u)) {
        reshard(g, f, u);
        if (f->v2 && f->raf < g->layout->shard_size && f->wrap->units[u].padded > 0) {
            /* FSDP2 reshard_after_forward=int: keep this rank's 1/raf slice of the unsharded
             * parameters (sliced before they are freed) for the backward all-gather; named by
             * micro-batch, as the next forward's slice may be taken before the backward
             * all-gather's stream has released this one */
            char *buf = cfg_strdup_printf("post_forward:%d.%d", u, g->micro);
            gen_alloc(g, buf, IR_MEM_PARAMS, (double)f->wrap->units[u].padded / f->raf * f->pbytes);
            g_free(buf);
            f->units[u].post_forward = true;
        }
    }
}

/* ---- backward hooks ---- */

static void bwd_enter(Gen *g, int m)
{
    Fsdp *f = g->strategy;
    /* the combine's gradient goes back to the experts */
    if (expert_boundary(g, f, m, IR_PHASE_BACKWARD, "combine grad", true))
        return;
    int u = f->wrap->unit_of_module[m];
    if (f->wrap->units[u].module == m) {
        unshard(g, f, u, "backward");
        copy_out(g, f, u);
        f->units[u].needs_bwd_unshard = false;
        if (g->opt->backward_prefetch == PREFETCH_BACKWARD_PRE || f->v2)
            prefetch_backward(g, f, u);
    }
    if (gen_is_checkpointed(g, m)) {
        int dep = f->units[u].ag_op;
        f->units[u].last_use = gen_ckpt_backward_enter(g, m, &dep, 1);
    }
}

static void bwd_run(Gen *g, const int *leaves, int n)
{
    Fsdp *f = g->strategy;
    int u = f->wrap->unit_of_module[leaves[0]];
    UnitState *us = &f->units[u];
    /* expert parallelism (FSDP1 only): the local experts' share of the unit */
    double padded = f->ep > 1 ? fsdp_local_numel(f, u) : grad_numel(f, u);
    gen_backward_transient(g, leaves, n);
    if (!us->grad_live && padded > 0 && f->trainable[u] > 0) {
        /* the FlatParameter's unsharded gradient, in param_dtype: all of it, frozen parameters
         * included, when the unit mixes them (use_orig_params=True; FSDP's docs: "gradient
         * memory ... equal to not freezing those parameters"); none for a frozen unit */
        char *buf = cfg_strdup_printf("unsharded_grad:%d.%d", u, g->micro);
        gen_alloc(g, buf, IR_MEM_GRADS, padded * f->pbytes);
        g_free(buf);
        us->grad_live = true;
    }
    us->last_use = us->last_bwd = run_leaves(g, f, u, leaves, n, gen_backward_run);
}

static void reduce_gradient(Gen *g, Fsdp *f, int u)
{
    UnitState *us = &f->units[u];
    double padded = f->ep > 1 ? fsdp_local_numel(f, u) : grad_numel(f, u);
    double shard = f->ep > 1 ? shard_numel(g, f, u) : padded / g->layout->shard_size;
    char *uname = unit_name(g, f, u);
    char *ugrad = cfg_strdup_printf("unsharded_grad:%d.%d", u, g->micro);
    char *gshard = cfg_strdup_printf("grad_shard:%d", u);
    HwDtype rdtype = g->opt->mixed_precision ? g->opt->reduce_dtype : HW_DTYPE_FP32;
    int last;
    if (!us->grad_shard_live && !g->opt->cpu_offload && !g->opt->offload_optimizer) {
        /* the fp32 sharded gradient that the optimizer reads (_saved_grad_shard) */
        gen_alloc(g, gshard, IR_MEM_GRADS, shard * 4);
        us->grad_shard_live = true;
    }
    if (f->sharded && f->v2) {
        /* FSDP2: per-parameter gradients copied into one reduce-scatter input, then freed */
        char *rs_in = cfg_strdup_printf("rs_in:%d.%d", u, g->micro);
        char *name = cfg_strdup_printf("reduce-scatter copy-in %s", uname);
        /* the previous input goes, whose reduce-scatter this one follows */
        held_replace(g, &f->rs_in, rs_in, padded * f->rbytes);
        gen_alloc(g, rs_in, IR_MEM_GRADS, padded * f->rbytes);
        /* post_backward: the compute stream waits for that reduce-scatter's event before the
         * copy-in, so a unit's backward never runs more than one reduce-scatter ahead */
        int deps[2] = {us->last_bwd, f->last_rs};
        int copy = gen_compute(g, IR_PHASE_BACKWARD, 0, padded * (f->pbytes + f->rbytes), 0, 1,
                               name, deps, f->last_rs >= 0 ? 2 : 1);
        gen_free(g, g->host, ugrad, IR_MEM_GRADS, padded * f->pbytes, -1);
        g_free(name);
        name = cfg_strdup_printf("reduce_scatter %s", uname);
        last = gen_coll(g, f->nccl_shard, IR_COLL_REDUCE_SCATTER, f->shard_group,
                        padded * f->rbytes, rdtype, IR_PHASE_BACKWARD, name, &copy, 1);
        f->last_rs = last;
        g_free(name);
    } else if (f->sharded) {
        int ready = fsdp_grad_prepare(g, f, u, padded, us->last_bwd, uname);
        char *name = cfg_strdup_printf("reduce_scatter %s", uname);
        last = fsdp_unit_coll(g, f, u, IR_COLL_REDUCE_SCATTER, f->rbytes, rdtype, IR_PHASE_BACKWARD,
                              name, &ready, 1);
        g_free(name);
        gen_free(g, f->nccl_shard, ugrad, IR_MEM_GRADS, padded * f->pbytes, last);
        if (g->opt->mixed_precision && g->opt->reduce_dtype != g->opt->param_dtype) {
            char *cast = cfg_strdup_printf("unsharded_grad_cast:%d.%d", u, g->micro);
            gen_free(g, f->nccl_shard, cast, IR_MEM_GRADS, padded * f->rbytes, last);
            g_free(cast);
        }
    } else {
        char *name = cfg_strdup_printf("allreduce %s", uname);
        last = gen_coll(g, f->nccl_shard, IR_COLL_ALLREDUCE, f->shard_group, padded * f->rbytes,
                        rdtype, IR_PHASE_BACKWARD, name, &us->last_bwd, 1);
        g_free(name);
        gen_free(g, f->nccl_shard, ugrad, IR_MEM_GRADS, padded * f->pbytes, last);
    }
    if (f->hybrid) { /* hybrid strategies shard: the shard's all-reduce over the replicas */
        char *name = cfg_strdup_printf("allreduce %s (replicas)", uname);
        last = gen_coll(g, f->nccl_replicate, IR_COLL_ALLREDUCE, f->replicate_group,
                        shard * f->rbytes, rdtype, IR_PHASE_BACKWARD, name, &last, 1);
        g_free(name);
    }
    if (f->sharded && !f->v2)
        last = fsdp_grad_postdivide(g, f, shard, last, uname);
    us->grad_live = false;
    if (g->opt->cpu_offload) {
        /* the sharded gradient goes to pinned host memory for the CPU optimizer step */
        char *name = cfg_strdup_printf("d2h grad %s", uname);
        IrOp op = {.kind = IR_OP_MEMCPY, .stream = (uint16_t)f->d2h, .phase = IR_PHASE_BACKWARD};
        op.u.memcpy.bytes = gen_size(g, "memcpy", shard * 4);
        last = ir_op_add(g->cls, &op, name, &last, 1);
        g_free(name);
    } else if (g->opt->offload_optimizer) {
        /* DeepSpeed partitions and offloads the trainable parameters' gradients only: a
         * FlatParameter's frozen part (FSDP1 with LoRA) stays behind */
        double numel = (double)f->wrap->units[u].numel;
        double trainable = numel > 0 ? MIN(1.0, f->trainable[u] / numel) : 1.0;
        last = fsdp_offload_grad(g, f, u, f->v2 ? shard : shard * trainable, last, uname);
    }
    g_array_append_val(f->reduce_ops, last);
    g_free(uname);
    g_free(ugrad);
    g_free(gshard);
}

static void bwd_exit(Gen *g, int m)
{
    Fsdp *f = g->strategy;
    int u = leave_module(g, f, m, false);
    if (u < 0)
        return;
    reshard(g, f, u);
    /* FSDP2 has no BackwardPrefetch: its pre-backward prefetches (bwd_enter) */
    if (g->opt->backward_prefetch == PREFETCH_BACKWARD_POST && !f->v2)
        prefetch_backward(g, f, u);
    if (f->units[u].last_bwd >= 0 && f->wrap->units[u].padded > 0 && f->trainable[u] > 0)
        reduce_gradient(g, f, u);
    f->units[u].last_bwd = -1;
}

static void describe_wrap(Gen *g, Fsdp *f, StratInfo *info)
{
    GString *s = g_string_new("");
    uint64_t largest = 0;
    for (int u = 0; u < f->wrap->n_units; u++)
        largest = MAX(largest, f->wrap->units[u].numel);
    const char *policy = g->opt->wrap.kind == PLAN_WRAP_NONE          ? "none (root only)"
                         : g->opt->wrap.kind == PLAN_WRAP_TRANSFORMER ? "transformer blocks"
                                                                      : "size-based";
    g_string_printf(s, "%d units, wrap policy %s", f->wrap->n_units, policy);
    if (g->opt->wrap.kind == PLAN_WRAP_SIZE)
        g_string_append_printf(s, " (min_num_params %" G_GUINT64_FORMAT ")",
                               g->opt->wrap.min_num_params);
    g_string_append_printf(
        s, "; root holds %" G_GUINT64_FORMAT " params, largest unit %" G_GUINT64_FORMAT,
        f->wrap->units[0].numel, largest);
    info->wrap_description = g_string_free(s, FALSE);
    info->n_units = f->wrap->n_units;
    info->largest_unit_numel = largest;
}

/* The generator's own memory (the schedule keeps what it needs). */
static void fsdp_clear(Fsdp *f)
{
    g_queue_clear(&f->free_events);
    g_array_free(f->reduce_ops, TRUE);
    g_free(f->post_forward_order);
    g_free(f->trainable);
    g_free(f->units);
    g_free(f->expert_numel);
    g_free(f->expert_list);
    plan_wrap_free(f->wrap);
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
    /* a hybrid strategy on a one-rank shard group runs as NO_SHARD on that group, with no
     * replicate group at all: no gradient leaves the rank (strat_hybrid_unsynced) */
    bool unsynced = strat_hybrid_unsynced(opt, lay);
    if (unsynced && opt->offload_optimizer) {
        fsdp_clear(&f);
        cfg_input_error(error,
                        "option --offload-optimizer: a hybrid strategy on shard groups of one GPU "
                        "shards nothing (NO_SHARD on each GPU, no gradient exchanged); expected "
                        "--shard-group-size 2 or more, or full_shard");
        return NULL;
    }
    f.sharded = opt->sharding != SHARD_NO_SHARD && !unsynced;
    f.hybrid =
        (opt->sharding == SHARD_HYBRID_SHARD || opt->sharding == SHARD_HYBRID_ZERO2) && !unsynced;
    f.v2 = opt->fsdp_version == 2;
    f.last_copy_out = f.last_rs = -1;
    f.ag_out.cat = f.ag_in.cat = f.offload.cat = IR_MEM_PARAMS;
    f.rs_in.cat = IR_MEM_GRADS;
    if (f.v2) {
        /* per-parameter padding replaces the FlatParameter's */
        for (int u = 0; u < f.wrap->n_units; u++)
            f.wrap->units[u].padded = 0;
        for (int i = 0; i < m->n_modules; i++)
            f.wrap->units[f.wrap->unit_of_module[i]].padded +=
                (uint64_t)fsdp2_padded(m, &m->modules[i], lay->shard_size);
        int raf = opt->reshard_after_forward;
        if (raf < 0)
            raf = opt->sharding == SHARD_FULL_SHARD || opt->sharding == SHARD_HYBRID_SHARD;
        f.raf = raf == 1 ? lay->shard_size : raf;
    }
    f.pbytes = opt->mixed_precision ? hw_dtype_bytes(opt->param_dtype) : 4;
    f.rbytes = opt->mixed_precision ? hw_dtype_bytes(opt->reduce_dtype) : 4;
    /* the data-parallel dimension: all ranks without TP, every t-th (by --placement) with it */
    int dp_stride = lay->stride[PAR_DIM_DP];
    if (f.sharded || unsynced) {
        /* unsynced: state.process_group is the one-rank intra-node group (shard_size 1), whose
         * all-reduce has no peer */
        f.shard_group = ir_group_add(g->sched, "shard", lay->shard_size, dp_stride);
        f.nccl_shard = ir_stream_add(g->cls, "nccl:shard", false);
    } else {
        f.shard_group = ir_group_add(g->sched, "dp", lay->dp, dp_stride);
        f.nccl_shard = ir_stream_add(g->cls, "nccl:dp", false);
    }
    if (f.v2 && f.raf > 0 && f.raf < lay->shard_size)
        f.raf_group = ir_group_add(g->sched, "post_forward", f.raf, dp_stride);
    if (f.hybrid) {
        f.replicate_group =
            ir_group_add(g->sched, "replicate", lay->replicate_size, dp_stride * lay->shard_size);
        f.nccl_replicate = ir_stream_add(g->cls, "nccl:replicate", false);
    }
    if (opt->cpu_offload || opt->offload_optimizer) {
        f.h2d = ir_stream_add(g->cls, "h2d", false);
        f.d2h = ir_stream_add(g->cls, "d2h", false);
    }
    f.ep = opt->ep > 1 ? opt->ep : 1;
    f.ep_dep = -1;
    f.expert_numel = g_new0(double, f.wrap->n_units);
    f.expert_list = g_new0(bool, m->n_modules);
    if (f.ep > 1) {
        if (!f.sharded || lay->shard_size % f.ep != 0) {
            cfg_input_error(error,
                            "option --ep: expected an ep that divides the %d GPUs of a "
                            "shard group (FSDP sharding, not no_shard), got %d",
                            lay->shard_size, f.ep);
            fsdp_clear(&f);
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
        f.expert_group =
            ir_group_add(g->sched, "expert_shard", lay->shard_size / f.ep, dp_stride * f.ep);
    }
    for (int i = 0; i < m->n_modules; i++)
        g->boundary[i] = f.wrap->units[f.wrap->unit_of_module[i]].module == i ||
                         gen_is_checkpointed(g, i) || f.expert_list[i];
    describe_wrap(g, &f, info);
    if (f.ep > 1) {
        char *d = cfg_strdup_printf("%s; experts over EP groups of %d GPUs (%d of %d per GPU, "
                                  "all-to-all dispatch and combine), their weights sharded over "
                                  "%d GPUs",
                                  info->wrap_description, f.ep, m->moe.experts / f.ep,
                                  m->moe.experts, lay->shard_size / f.ep);
        g_free(info->wrap_description);
        info->wrap_description = d;
    }

    f.trainable = g_new0(double, f.wrap->n_units);
    for (int i = 0; i < m->n_modules; i++)
        f.trainable[f.wrap->unit_of_module[i]] +=
            (double)(m->modules[i].params - m->modules[i].frozen_params);
    double padded_total = 0, trainable_total = 0;
    for (int u = 0; u < f.wrap->n_units; u++) {
        padded_total += (double)f.wrap->units[u].padded;
        /* the optimizer holds state for the trainable parameters only; a unit with no frozen
         * parameter counts its padding, as the FlatParameter's shard is what it steps */
        bool mixed = f.trainable[u] > 0 && f.trainable[u] < (double)f.wrap->units[u].numel;
        trainable_total +=
            mixed || f.trainable[u] == 0 ? f.trainable[u] : (double)f.wrap->units[u].padded;
        if (mixed && !f.v2) {
            info->mixed_units++;
            info->mixed_grad_bytes += (double)f.wrap->units[u].padded * f.pbytes;
        }
    }
    info->padded_params = (uint64_t)padded_total;
    double shard_total = padded_total / lay->shard_size;
    double trainable_shard = trainable_total / lay->shard_size;
    double state = model_optimizer_state_bytes(m->training.optimizer);
    if (opt->offload_optimizer) {
        /* the GPU keeps the shard in param_dtype; master weights and state are the host's */
        gen_alloc(g, "params_shard", IR_MEM_PARAMS, shard_total * f.pbytes);
    } else if (!opt->cpu_offload) {
        gen_alloc(g, "params_shard", IR_MEM_PARAMS, shard_total * 4);
        gen_alloc(g, "optimizer_state", IR_MEM_OPTIMIZER, trainable_shard * state);
    }
    gen_alloc(g, "buffers", IR_MEM_PARAMS, (double)m->buffers * 4);
    /* --fp8-format under FSDP: each forward casts the weight FSDP has just gathered (fp8.c) */
    g->fp8_weights_each_forward = g->fp8_leaf != NULL;

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
        /* torch.optim on the CPU tensors (kern_optim.c) */
        gen_host_wait(g, fin, "wait for offloaded gradients");
        gen_cpu_optimizer_step(g, trainable_shard);
    } else if (opt->offload_optimizer) {
        fsdp_offload_step(g, &f, trainable_shard, fin); /* DeepSpeedCPUAdam (fsdp_offload.c) */
    } else {
        /* FSDP1 steps one FlatParameter shard per unit (use_orig_params=False), FSDP2 every
         * parameter's DTensor shard */
        double denom = gen_optimizer_denom_alloc(g, trainable_shard);
        gen_optimizer_step(g, trainable_shard, f.v2 ? gen_param_tensors(g) : f.wrap->n_units, &fin,
                           1);
        gen_optimizer_denom_free(g, denom);
    }
    for (int u = 0; u < f.wrap->n_units; u++) {
        /* SHARD_GRAD_OP keeps nothing unsharded past backward; the root under FULL_SHARD was
         * resharded in its post-backward: everything is sharded again here. */
        if (f.units[u].grad_shard_live) {
            char *buf = cfg_strdup_printf("grad_shard:%d", u);
            gen_free(g, g->host, buf, IR_MEM_GRADS, grad_numel(&f, u) / lay->shard_size * 4, -1);
            g_free(buf);
        }
    }
    /* FSDP2's held buffers go at the end of the step */
    held_replace(g, &f.ag_out, NULL, 0);
    held_replace(g, &f.rs_in, NULL, 0);
    held_replace(g, &f.ag_in, NULL, 0);
    held_replace(g, &f.offload, NULL, 0);
    fsdp_clear(&f);
    return g->sched;
}
