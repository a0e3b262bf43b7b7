/* fsdp_units: what FSDP adds around one unit's collectives, apart from the walk in fsdp.c: FSDP2's
 * per-parameter padding, expert parallelism's split of a unit's collectives and its all-to-alls,
 * and FSDP1's gradient preparation before the reduce-scatter. Internal to src/strategy. */
#include "fsdp_priv.h"
#include "../kern/kern.h"

#include <math.h>
#include <string.h>

/* FSDP2 (torch/distributed/fsdp/_fully_shard/, "FSDP2" RFC pytorch/pytorch#114299), where it
 * differs from FSDP1 here:
 *  - each parameter is a DTensor sharded on dim 0, padded to a multiple of the shard group on
 *    that dim (_fsdp_param.py), not one FlatParameter padded as a whole (fsdp2_padded);
 *  - reshard_after_forward True / False / int: an int k keeps the parameters sharded over k
 *    ranks between forward and backward, whose backward all-gather stays in that group;
 *  - the all-gather output is copied out to the parameters on the compute stream when the unit
 *    runs (foreach_all_gather_copy_out) and freed after it, ordered by events instead of
 *    record_stream: both copies live during the copy-out, which costs HBM traffic;
 *  - gradients are per parameter: reduce-scatter needs a copy-in into one buffer
 *    (foreach_reduce_scatter_copy_in) before the unsharded gradients are freed;
 *  - no rate limiter: each all-gather waits on the stream for the previous one's copy-out,
 *    whose output it frees then (AllGatherState in _fsdp_param_group.py), so at most two
 *    outputs live; forward prefetch is implicit (the host runs ahead), backward prefetches the
 *    next unit in post-forward order after the current one's copy-out;
 *  - HSDP (a 2-D DeviceMesh) all-reduces over the replicas even with one rank per shard group. */
static double padded_rows(double rows, double cols, double shard)
{
    return ceil(rows / shard) * shard * cols;
}

double fsdp2_padded(const Model *model, const ModelModule *m, int shard)
{
    double params = (double)m->params, h = model->hidden;
    if (params == 0)
        return 0;
    if (m->kernel.kind == MODEL_KERNEL_GEMM && m->kernel.n * m->kernel.k <= params) {
        /* nn.Linear's weight is [out, in]; Hugging Face's Conv1D stores [in, out] */
        bool conv1d = strcmp(m->kind, "Conv1D") == 0;
        double rows = conv1d ? m->kernel.k : m->kernel.n, cols = conv1d ? m->kernel.n : m->kernel.k;
        double rest = params - m->kernel.n * m->kernel.k; /* bias (or adapters): 1-D */
        return padded_rows(rows, cols, shard) + (rest > 0 ? padded_rows(rest, 1, shard) : 0);
    }
    if (h > 0 && fmod(params, h) == 0) {
        /* embeddings [rows, hidden]; norms: one or two [hidden] vectors */
        if (strstr(m->kind, "Embedding"))
            return padded_rows(params / h, h, shard);
        return params / h * padded_rows(h, 1, shard);
    }
    return padded_rows(params, 1, shard);
}

/* The unit's parameters one GPU gathers: all but the experts, and 1/ep of those. */
double fsdp_local_numel(Fsdp *f, int u)
{
    double padded = (double)f->wrap->units[u].padded;
    return f->ep > 1 ? padded - f->expert_numel[u] * (1 - 1.0 / f->ep) : padded;
}

/* One all-gather or reduce-scatter of unit u: with expert parallelism, the non-expert part on the
 * shard group and the experts' 1/ep on the expert shard group (serialised on one NCCL stream, as
 * FSDP2 issues one collective per group). */
int fsdp_unit_coll(Gen *g, Fsdp *f, int u, IrCollKind kind, double bytes_per_param, HwDtype dtype,
                   IrPhase phase, const char *name, const int *deps, int n_deps)
{
    double padded = (double)f->wrap->units[u].padded;
    if (f->ep <= 1 || f->expert_numel[u] <= 0)
        return gen_coll(g, f->nccl_shard, kind, f->shard_group, padded * bytes_per_param, dtype,
                        phase, name, deps, n_deps);
    int first =
        gen_coll(g, f->nccl_shard, kind, f->shard_group,
                 (padded - f->expert_numel[u]) * bytes_per_param, dtype, phase, name, deps, n_deps);
    char *ename = cfg_strdup_printf("%s (experts)", name);
    int op = gen_coll(g, f->nccl_shard, kind, f->expert_group,
                      f->expert_numel[u] / f->ep * bytes_per_param, dtype, phase, ename, &first, 1);
    g_free(ename);
    return op;
}

/* The dispatch or combine all-to-all of one MoE layer: every token's hidden vector to (or from)
 * each of its top_k experts, in the activation dtype, on the EP group. */
int fsdp_all_to_all(Gen *g, Fsdp *f, IrPhase phase, const char *what, int module)
{
    const Model *m = g->model;
    /* the busiest GPU receives moe_imbalance times the mean, and every rank waits for it */
    double imbalance = g->opt->moe_imbalance > 1 ? g->opt->moe_imbalance : 1;
    double bytes =
        g->mb * m->training.seq_len * m->moe.top_k * (double)m->hidden * g->act_bytes * imbalance;
    char *name = cfg_strdup_printf("alltoall %s %s", what, m->modules[module].name);
    int dep = g->last_compute;
    f->ep_dep = gen_coll(g, g->compute, IR_COLL_ALLTOALL, f->ep_group, bytes,
                         g->opt->mixed_precision ? g->opt->param_dtype : HW_DTYPE_FP32, phase, name,
                         &dep, dep >= 0 ? 1 : 0);
    g_free(name);
    return f->ep_dep;
}

/* torch/distributed/fsdp/_init_utils.py _get_gradient_predivide_factor */
static double predivide_factor(int world)
{
    int factor = 1;
    while (world % factor == 0 && world / factor > factor)
        factor *= 2;
    return factor;
}

/* The ranks FSDP1 averages a gradient over (_init_process_group_state: data_parallel_world_size):
 * the shard group, times the replicas for hybrid strategies. */
static int dp_world(Gen *g, Fsdp *f)
{
    return g->layout->shard_size * (f->hybrid ? g->layout->replicate_size : 1);
}

/* A memory-bound kernel on `stream`: FSDP1's post-backward stream (the shard group's NCCL stream
 * here), where it prepares the reduce-scatter beside the next unit's backward, or the hybrid
 * strategies' all-reduce stream. */
static int post_backward_kernel(Gen *g, int stream, double bytes, int dep, const char *what,
                                const char *uname)
{
    char *name = cfg_strdup_printf("%s %s", what, uname);
    gen_kernels_memory(g, NULL, bytes, 1);
    int i = gen_compute_on(g, stream, IR_PHASE_BACKWARD, 0, bytes, 0, 1, 0, name, &dep, 1);
    g_free(name);
    return i;
}

/* What FSDP1's post-backward hook does to a unit's unsharded gradient before the reduce-scatter
 * (torch/distributed/fsdp/_runtime_utils.py _post_backward_hook, _reduce_grad): a cast to
 * reduce_dtype when it differs from param_dtype (a new tensor: read the param_dtype gradient,
 * write the reduce_dtype copy), and the division by the predivide factor, in place
 * (_get_gradient_predivide_factor: the largest power of two f with world / f >= f, so 2 or more
 * whenever the group has 2 ranks). Each is a full pass over the unit's gradient per micro-step:
 * for bf16 parameters reduced in fp32, 14 B per parameter. */
int fsdp_grad_prepare(Gen *g, Fsdp *f, int u, double padded, int dep, const char *uname)
{
    const StratOptions *opt = g->opt;
    if (opt->mixed_precision && opt->reduce_dtype != opt->param_dtype) {
        char *cast = cfg_strdup_printf("unsharded_grad_cast:%d.%d", u, g->micro);
        gen_alloc(g, cast, IR_MEM_GRADS, padded * f->rbytes);
        g_free(cast);
        dep = post_backward_kernel(g, f->nccl_shard, padded * (f->pbytes + f->rbytes), dep,
                                   "cast gradient to reduce_dtype", uname);
    }
    if (predivide_factor(dp_world(g, f)) > 1)
        dep = post_backward_kernel(g, f->nccl_shard, 2 * padded * f->rbytes, dep,
                                   "predivide gradient", uname);
    return dep;
}

/* The rest of the division, on the shard: world / predivide; for hybrid strategies after the
 * replicas' all-reduce, on its stream (_reduce_grad). */
int fsdp_grad_postdivide(Gen *g, Fsdp *f, double shard, int dep, const char *uname)
{
    int world = dp_world(g, f);
    if ((double)world / predivide_factor(world) <= 1)
        return dep;
    return post_backward_kernel(g, f->hybrid ? f->nccl_replicate : f->nccl_shard,
                                2 * shard * f->rbytes, dep, "postdivide gradient", uname);
}
