/* pp_layer: the pipeline generator's layers (pp.c): a decoder layer's forward and backward with
 * its tensor-parallel exchanges (blocking, sequence-parallel, or overlapped with the GEMMs as
 * Transformer Engine's userbuffers run them), and the output layer's backward. Internal to
 * src/strategy. */
#include "pp_priv.h"

/* A compute op on the compute stream (the stage's kernels). */
int pp_compute(Pp *pp, IrPhase phase, double flops, double bytes, double model_flops, int kernels,
               double seconds, uint32_t name, const int *deps, int n_deps)
{
    return gen_compute_named(&pp->g, pp->g.compute, phase, flops, bytes, model_flops, kernels,
                             seconds, name, deps, n_deps);
}

/* One TP exchange of the layer's activations: an all-reduce, or with sequence parallelism a
 * reduce-scatter (`scatter`) or an all-gather. Returns the op, or `dep` when t = 1. */
int pp_tp_comm(Pp *pp, IrPhase phase, bool scatter, uint32_t what, int dep)
{
    if (pp->T == 1)
        return dep;
    IrCollKind kind = !pp->sp   ? IR_COLL_ALLREDUCE
                      : scatter ? IR_COLL_REDUCE_SCATTER
                                : IR_COLL_ALLGATHER;
    return gen_coll_named(&pp->g, pp->g.compute, kind, pp->tp_group, pp->tp_bytes,
                          pp->g.compute_dtype, phase, pp_tp_name(pp, kind, what), &dep,
                          dep >= 0 ? 1 : 0, 0);
}

/* A decoder layer's forward: attention half, TP exchange, MLP half, TP exchange (with sequence
 * parallelism: all-gather before each half, reduce-scatter after). model_flops is 0 for a
 * recompute. */
/* Megatron's --tp-comm-overlap (with sequence parallelism): each half-layer's all-gather and
 * reduce-scatter are split into chunks pipelined with its GEMMs (userbuffers), so they run on
 * their own stream beside the half's compute; the half ends when both have. Their kernels are
 * Transformer Engine's, not NCCL's, and hold fewer SMs (transformer_engine/pytorch/module/
 * base.py, initialize_ub's get_default_config, TE 1.x-2.x): the all-gathers are ring exchanges
 * (qkv/fc1 fprop, proj/fc2 dgrad) by copy engines with 1 SM; the reduce-scatters are
 * "pipeline" (proj/fc2 fprop) or "bulk" (qkv/fc1 wgrad) kernels of 16 SMs. In backward a half
 * also re-gathers its input ("bulk", qkv/fc1 dgrad, 16 SMs: see regather). */
#define TE_UB_RING_SMS 1
#define TE_UB_KERNEL_SMS 16

/* Sequence parallelism keeps only each rank's shard of a column-parallel linear's input (the
 * layer norm's output) for backward and all-gathers it again there for the weight gradient,
 * beside the input-gradient GEMM (Megatron-Core tensor_parallel/layers.py
 * LinearWithGradAccumulationAndAsyncCommunication.backward: _all_gather_base(..., async_op=True),
 * waited before the wgrad GEMM; Transformer Engine's bulk dgrad overlap): one more all-gather of
 * the half's activations in every backward half, on the TP stream beside its compute. */
static int regather(Pp *pp, uint32_t name, int dep, int sms)
{
    return gen_coll_named(&pp->g, pp->tp_stream, IR_COLL_ALLGATHER, pp->tp_group, pp->tp_bytes,
                          pp->g.compute_dtype, IR_PHASE_BACKWARD,
                          pp_tp_name(pp, IR_COLL_KIND_COUNT, name), &dep, dep >= 0 ? 1 : 0, sms);
}

static int tp_overlapped_half(Pp *pp, IrPhase phase, bool backward, uint32_t name, int dep,
                              int gather, double flops, double bytes, double model_flops,
                              int kernels, double seconds)
{
    Gen *g = &pp->g;
    int ag = gen_coll_named(g, pp->tp_stream, IR_COLL_ALLGATHER, pp->tp_group, pp->tp_bytes,
                            g->compute_dtype, phase, pp_tp_name(pp, IR_COLL_ALLGATHER, name), &dep,
                            dep >= 0 ? 1 : 0, TE_UB_RING_SMS);
    if (backward) /* not a recompute's forward, which runs in the backward phase */
        ag = regather(pp, name, ag, TE_UB_KERNEL_SMS);
    int deps[2] = {dep, gather};
    int c = pp_compute(pp, phase, flops, bytes, model_flops, kernels, seconds, name, deps, 2);
    int rs = gen_coll_named(g, pp->tp_stream, IR_COLL_REDUCE_SCATTER, pp->tp_group, pp->tp_bytes,
                            g->compute_dtype, phase, pp_tp_name(pp, IR_COLL_REDUCE_SCATTER, name),
                            &ag, 1, TE_UB_KERNEL_SMS);
    int join[2] = {c, rs};
    return pp_compute(pp, phase, 0, 0, 0, 0, 0, name, join, 2);
}

int pp_layer_forward(Pp *pp, int layer, IrPhase phase, bool recompute, int dep)
{
    Gen *g = &pp->g;
    PpCost *c = &pp->layer[layer];
    double mb = g->mb;
    uint32_t name = ir_string_join(g->cls, pp->label, pp_layer_suffix(pp, layer, recompute));
    for (int half = 0; half < 2 && pp->tp_overlap; half++)
        dep = tp_overlapped_half(pp, phase, false, name, dep, pp->gather_op[layer],
                                 c->flops * mb / 2, c->bytes * pp->act_bytes_scale * mb / 2,
                                 recompute ? 0 : c->flops * mb / 2, MAX(1, c->kernels / 2),
                                 pp_seconds(pp, c, false, 0.5));
    for (int half = 0; half < 2 && !pp->tp_overlap; half++) {
        if (pp->sp)
            dep = pp_tp_comm(pp, phase, false, name, dep);
        int deps[2] = {dep, pp->gather_op[layer]};
        dep = pp_compute(pp, phase, c->flops * mb / 2, c->bytes * pp->act_bytes_scale * mb / 2,
                         recompute ? 0 : c->flops * mb / 2, MAX(1, c->kernels / 2),
                         pp_seconds(pp, c, false, 0.5), name, deps, 2);
        dep = pp_tp_comm(pp, phase, true, name, dep);
    }
    return dep;
}

int pp_layer_backward(Pp *pp, int layer, int dep)
{
    Gen *g = &pp->g;
    PpCost *c = &pp->layer[layer];
    double mb = g->mb;
    uint32_t name = ir_string_join(g->cls, pp->label, pp_layer_suffix(pp, layer, false));
    /* with selective recomputation the attention cores' forward runs again too (pp_cost.c) */
    double flops = c->bwd_flops + c->recompute_flops;
    double bytes = (2 * c->bytes + c->recompute_bytes) * pp->act_bytes_scale * mb;
    int kernels = MAX(1, c->kernels + (c->recompute_kernels + 1) / 2);
    for (int half = 0; half < 2 && pp->tp_overlap; half++)
        dep = tp_overlapped_half(pp, IR_PHASE_BACKWARD, true, name, dep, -1, flops * mb / 2,
                                 bytes / 2, c->bwd_flops * mb / 2, kernels,
                                 pp_seconds(pp, c, true, 0.5));
    for (int half = 0; half < 2 && !pp->tp_overlap; half++) {
        int again = -1;
        if (pp->sp) {
            dep = pp_tp_comm(pp, IR_PHASE_BACKWARD, false, name, dep);
            again = regather(pp, name, dep, 0);
        }
        dep = pp_compute(pp, IR_PHASE_BACKWARD, flops * mb / 2, bytes / 2, c->bwd_flops * mb / 2,
                         kernels, pp_seconds(pp, c, true, 0.5), name, &dep, 1);
        if (again >= 0) { /* the weight gradient waited for it */
            int join[2] = {dep, again};
            dep = pp_compute(pp, IR_PHASE_BACKWARD, 0, 0, 0, 0, 0, name, join, 2);
        }
        dep = pp_tp_comm(pp, IR_PHASE_BACKWARD, true, name, dep);
    }
    return dep;
}

/* The output layer's backward (final norm, head, loss). The head is Megatron's
 * ColumnParallelLinear (gpt_model.py output_layer; tensor_parallel/layers.py): every TP rank
 * holds the whole s*b*h input, so its input gradient is summed over the group, an all-reduce
 * (allreduce_dgrad); with sequence parallelism a reduce-scatter, the input having been
 * all-gathered in forward and gathered again here for the weight gradient, as a layer's
 * column-parallel linears are. Blocking on the compute stream as pp_layer_backward's exchanges
 * are (Megatron issues them async beside the weight-gradient GEMM; neither models that). */
int pp_head_backward(Pp *pp, uint32_t name)
{
    Gen *g = &pp->g;
    double mb = g->mb, s = pp->act_bytes_scale;
    bool head = pp->T > 1 && pp->post.flops > 0;
    uint32_t what = head ? ir_string(g->cls, "output layer") : 0;
    int again = head && pp->sp ? regather(pp, what, g->last_compute, 0) : -1;
    int dep =
        pp_compute(pp, IR_PHASE_BACKWARD, pp->post.bwd_flops * mb, 2 * pp->post.bytes * s * mb,
                   pp->post.bwd_flops * mb, MAX(1, 2 * pp->post.kernels),
                   pp_seconds(pp, &pp->post, true, 1), name, NULL, 0);
    if (again >= 0) {
        int join[2] = {dep, again};
        dep = pp_compute(pp, IR_PHASE_BACKWARD, 0, 0, 0, 0, 0, name, join, 2);
    }
    return head ? pp_tp_comm(pp, IR_PHASE_BACKWARD, true, what, dep) : dep;
}
