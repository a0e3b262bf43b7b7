/* pp: tensor and pipeline parallelism as Megatron-LM does them, with DDP or FSDP over the
 * data-parallel dimension (issue 5).
 *
 * Layout: ranks have coordinates (tp, pp, dp) placed in the order the options give, fastest
 * first (Megatron: tp-dp-pp, so a TP group is consecutive GPUs of a node). Each pipeline stage is
 * its own program, hence its own rank class; the ranks of a stage that are not one arithmetic
 * progression (orders where pp is not the slowest) are split into several classes with the same
 * program.
 *
 * Stages: decoder layers are split over p * v virtual stages (balanced, or as given); virtual
 * stage c * p + s is chunk c of stage s. The embedding runs on virtual stage 0 and the output
 * layer and loss on the last, where Megatron puts them; with tied embeddings the last stage keeps
 * a copy of the word embedding and the two stages exchange its gradient.
 *
 * Tensor parallelism (Shoeybi et al. 2019; Korthikanti et al. 2022): every GEMM is split over the
 * t ranks of the TP group (column-parallel QKV and MLP-up, row-parallel projections), so FLOPs
 * and parameters of a layer are divided by t. Each layer has two all-reduces of the s*b*h
 * activations in forward (after the attention and MLP row-parallel layers) and two in backward
 * (the input gradients of the column-parallel layers); the output layer, column-parallel too,
 * all-reduces its input gradient in backward; sequence parallelism replaces each by a
 * reduce-scatter and an all-gather of the same volume. They run on the compute stream, blocking,
 * as Megatron issues them. Activations kept per layer follow Korthikanti et al. (flash attention,
 * no 5as/h term): 34sbh without TP, sbh(10 + 24/t) with TP, 34sbh/t with sequence parallelism;
 * the model's own per-layer accounting is scaled by these ratios. Full recompute keeps the layer
 * input (2sbh, /t with sequence parallelism) and reruns the forward, TP communication included.
 *
 * Data parallelism per stage: DDP all-reduces every model chunk's gradients once the rank's
 * schedule is done, its last send included (Megatron's finalize_model_grads, reduce_after_flush),
 * or with --overlap-grad-reduce in buckets during each chunk's last backward. FSDP shards each decoder layer
 * over the data-parallel group and, as torchtitan does with pipelining (reshard_after_forward is
 * off), gathers it once before the first micro-batch and reduce-scatters its gradient after the
 * last: under pipelining full_shard and shard_grad_op therefore behave alike. Hybrid sharding
 * splits the data-parallel dimension into shard groups (consecutive dp coordinates) and replica
 * groups across them. FSDP with TP and no pipeline (2D) is not made here but by fsdp.c on one TP
 * rank's share of the model (tp.c), with FSDP's own semantics. */
#include "pp_priv.h"
#include "../kern/kern.h"
#include "../util/cfg.h"

#include <string.h>

/* above every activation tag: (2 * p * v) * m stays far below it for any accepted layout */
#define EMBEDDING_TAG 0x40000000u

/* ---- program pieces (their names: pp_names.c) ---- */

/* A send or receive after `dep` and, when given (>= 0), `dep2`. Megatron issues them from the
 * compute stream, and ProcessGroupNCCL makes its NCCL stream wait for the work issued there so
 * far (syncStream in ProcessGroupNCCL.cpp, before every collective and batch_isend_irecv): a
 * receive posted for the next step starts once the compute issued before it is done, not while
 * that compute runs, so its kernel spinning for the peer takes nothing from it. */
static int p2p2(Pp *pp, IrOpKind kind, int stream, int peer_offset, double bytes, uint32_t tag,
                IrPhase phase, uint32_t name, int dep, int dep2)
{
    Gen *g = &pp->g;
    if (dep < 0)
        dep = g->last_compute;
    gen_host_named(g, g->topo->gpu.launch_overhead_s, name);
    uint64_t size = gen_size_named(g, name, bytes);
    int deps[2] = {dep, dep2}, i;
    IrOp *op = ir_op_push(g->cls, kind, stream, name, deps, 2, &i);
    op->phase = (uint8_t)phase;
    op->dtype = (uint8_t)g->compute_dtype;
    op->u.p2p.peer_offset = peer_offset;
    op->u.p2p.bytes = size;
    op->u.p2p.tag = tag;
    /* --cuda-launch-blocking: the host waits for a receive, and for a send with the next
     * receive, their NCCL group, or before the next kernel (gen.c). The interleaved schedule issues its sends and receives
     * a step away from the groups Megatron batches them in (recv_dep): a host waiting for them
     * there deadlocks neighbours (in the cool-down), so they do not block; its kernels do. */
    if (pp->v == 1)
        gen_launch_p2p(g, i, kind == IR_OP_RECV);
    return i;
}

static int p2p(Pp *pp, IrOpKind kind, int stream, int peer_offset, double bytes, uint32_t tag,
               IrPhase phase, uint32_t name, int dep)
{
    return p2p2(pp, kind, stream, peer_offset, bytes, tag, phase, name, dep, -1);
}

/* A stage boundary received with scatter-gather (strategy.h PpScatterGather): each TP rank sent
 * 1/T; the whole is all-gathered over the TP group, on the compute stream, before it is used. */
static int boundary_gather(Pp *pp, IrPhase phase, int recv)
{
    if (pp->boundary_gather_bytes <= 0)
        return recv;
    return gen_coll_named(&pp->g, pp->g.compute, IR_COLL_ALLGATHER, pp->tp_group,
                          pp->boundary_gather_bytes, pp->g.compute_dtype, phase,
                          pp_tp_name(pp, IR_COLL_ALLGATHER, ir_string(pp->g.cls, "stage input")),
                          &recv, 1, 0);
}

/* What a step's receive waits for. 1F1B and GPipe post it when the step starts, after the
 * compute before it (p2p2). Megatron's interleaved schedule with --overlap-p2p-communication
 * (its default; forward_backward_pipelining_with_interleaving, r0.7-r0.8) posts the receive for
 * the next forward right after a forward and the one for the next backward right after a
 * backward, so in the steady phase each runs during the step of the other kind between them. */
static int recv_dep(const Pp *pp, bool forward)
{
    if (pp->v <= 1)
        return -1;
    return forward ? pp->last_fwd_compute : pp->last_bwd_compute;
}

/* A stage's activation or gradient sent on. In the 1F1B schedule of Megatron (r0.8
 * p2p_communication._communicate with wait_on_reqs: req.wait() on every request) and of
 * DeepSpeed (runtime/pipe/p2p.py: a blocking dist.send), the compute stream waits for the send
 * before its next kernel, so the transfer is not hidden behind the next micro-batch; Megatron's
 * interleaved schedule (--overlap-p2p-communication, its default) waits later, and GPipe's
 * sends run beside compute. The wait is an empty op on the compute stream. The receive that
 * follows is posted with the send, not after the wait: Megatron batches the pair in the steady
 * phase (send_forward_recv_backward, one batch_isend_irecv), which is also what keeps two
 * stages that send to each other from waiting on each other. In warm-up and cool-down Megatron
 * receives after its send has completed; posting with it there is a little optimistic. */
static int send_waited(Pp *pp, int stream, int peer_offset, uint32_t tag, IrPhase phase,
                       uint32_t name, int dep)
{
    int send = p2p(pp, IR_OP_SEND, stream, peer_offset, pp->boundary_bytes, tag, phase, name, dep);
    if (!pp->sync_send)
        return send;
    int before = pp->g.last_compute;
    pp_compute(pp, phase, 0, 0, 0, 0, 0, name, &send, 1);
    pp->g.last_compute = before;
    return send;
}

static int chunk_layers(const Pp *pp, int chunk, int *first)
{
    int vs = chunk * pp->P + pp->stage;
    *first = pp->vs_first[vs];
    return pp->vs_first[vs + 1] - pp->vs_first[vs];
}

static bool is_first_vs(const Pp *pp, int chunk)
{
    return chunk == 0 && pp->stage == 0;
}

static bool is_last_vs(const Pp *pp, int chunk)
{
    return chunk == pp->v - 1 && pp->stage == pp->P - 1;
}

/* Activations that chunk keeps per micro-batch between its forward and its backward. */
static double chunk_saved(const Pp *pp, int chunk)
{
    int first, n = chunk_layers(pp, chunk, &first);
    double saved = 0;
    for (int l = first; l < first + n; l++)
        saved += pp->ckpt && gen_block_checkpointed(pp->g.opt, l) ? pp->layer[l].input
                                                                  : pp->layer[l].saved;
    if (is_first_vs(pp, chunk))
        saved += pp->pre.saved;
    if (is_last_vs(pp, chunk))
        saved += pp->post.saved;
    return saved * pp->act_bytes_scale * pp->g.mb;
}

/* Peer offsets: the next virtual stage is on the next rank of the pipeline, wrapping from the
 * last stage to the first (interleaving). */
static int offset_next(const Pp *pp)
{
    int stride = pp->g.layout->stride[PAR_DIM_PP];
    return pp->stage == pp->P - 1 ? -(pp->P - 1) * stride : stride;
}

static int offset_prev(const Pp *pp)
{
    int stride = pp->g.layout->stride[PAR_DIM_PP];
    return pp->stage == 0 ? (pp->P - 1) * stride : -stride;
}

static uint32_t tag(const Pp *pp, bool forward, int sender_vs, int micro_batch)
{
    return (uint32_t)(((forward ? 0 : 1) * pp->P * pp->v + sender_vs) * pp->m_gen + micro_batch);
}

static double unit_params(const Pp *pp, int layer)
{
    double p = pp->layer[layer].params;
    if (layer == 0)
        p += pp->pre.params;
    if (layer == pp->n_layers - 1)
        p += pp->post.params + pp->tied_params;
    return p;
}

static void fsdp_gather_chunk(Pp *pp, int chunk)
{
    Gen *g = &pp->g;
    int first, n = chunk_layers(pp, chunk, &first);
    double pbytes = hw_dtype_bytes(g->compute_dtype);
    for (int l = first; l < first + n; l++) {
        char *buf = cfg_strdup_printf("gathered:%d", l);
        gen_alloc(g, buf, IR_MEM_PARAMS, unit_params(pp, l) * pbytes);
        g_free(buf);
        if (pp->S > 1) {
            char *name = cfg_strdup_printf("allgather layer %d", l);
            pp->gather_op[l] = gen_coll(g, pp->nccl, IR_COLL_ALLGATHER, pp->dp_group,
                                        unit_params(pp, l) * pbytes, g->compute_dtype,
                                        IR_PHASE_FORWARD, name, NULL, 0);
            g_free(name);
        }
    }
}

/* The distributed optimizer's parameter all-gather of one chunk (bf16 parameters stay resident:
 * no buffer is allocated). With deps: after the optimizer step; without: at the step's start,
 * each layer's first forward waiting for its own (--overlap-param-gather). */
static void distopt_gather_chunk(Pp *pp, int chunk, int dep)
{
    Gen *g = &pp->g;
    int first, n = chunk_layers(pp, chunk, &first);
    double pbytes = hw_dtype_bytes(g->compute_dtype);
    for (int l = first; l < first + n; l++) {
        char *name = cfg_strdup_printf("distopt allgather layer %d", l);
        pp->gather_op[l] = gen_coll(g, pp->nccl, IR_COLL_ALLGATHER, pp->dp_group,
                                    unit_params(pp, l) * pbytes, g->compute_dtype,
                                    dep >= 0 ? IR_PHASE_OPTIMIZER : IR_PHASE_FORWARD, name,
                                    dep >= 0 ? &dep : NULL, dep >= 0 ? 1 : 0);
        g_free(name);
    }
}

static void forward(Pp *pp, const PpStep *st)
{
    Gen *g = &pp->g;
    int vs = st->chunk * pp->P + pp->stage;
    int first, n = chunk_layers(pp, st->chunk, &first);
    if (pp->fsdp && st->micro_batch == 0)
        fsdp_gather_chunk(pp, st->chunk);
    if (pp->distopt && g->opt->overlap_param_gather && pp->D > 1 && st->micro_batch == 0)
        distopt_gather_chunk(pp, st->chunk, -1);
    g->micro = st->micro_batch;
    char text[64];
    pp_two_ints(text, "F", st->micro_batch, ".", st->chunk);
    pp_put_text(pp_put_text(text + strlen(text), " "), strat_pp_phase_name(st->phase));
    uint32_t name = ir_string(g->cls, text);
    pp->label = name;
    int dep = -1;
    if (!is_first_vs(pp, st->chunk))
        dep = boundary_gather(pp, IR_PHASE_FORWARD,
                              p2p(pp, IR_OP_RECV, pp->recv_prev, offset_prev(pp),
                                  pp->boundary_bytes, tag(pp, true, vs - 1, st->micro_batch),
                                  IR_PHASE_FORWARD, name, recv_dep(pp, true)));
    pp_two_ints(text, "act:", st->chunk, ":", st->micro_batch);
    gen_alloc(g, text, IR_MEM_ACTIVATIONS, chunk_saved(pp, st->chunk));
    double mb = g->mb, s = pp->act_bytes_scale;
    if (is_first_vs(pp, st->chunk)) {
        dep = pp_compute(pp, IR_PHASE_FORWARD, pp->pre.flops * mb, pp->pre.bytes * s * mb,
                         pp->pre.flops * mb, MAX(1, pp->pre.kernels),
                         pp_seconds(pp, &pp->pre, false, 1), name, NULL, 0);
        /* vocabulary-parallel embedding: partial sums all-reduced (reduce-scattered with SP) */
        dep = pp_tp_comm(pp, IR_PHASE_FORWARD, true, ir_string(g->cls, "embedding"), dep);
    }
    for (int l = first; l < first + n; l++)
        dep = pp_layer_forward(pp, l, IR_PHASE_FORWARD, false, dep);
    if (is_last_vs(pp, st->chunk)) {
        /* the output layer's input gathered over the sequence first (head_backward) */
        if (pp->sp && pp->post.flops > 0)
            dep = pp_tp_comm(pp, IR_PHASE_FORWARD, false, ir_string(g->cls, "output layer"), dep);
        dep = pp_compute(pp, IR_PHASE_FORWARD, pp->post.flops * mb, pp->post.bytes * s * mb,
                         pp->post.flops * mb, MAX(1, pp->post.kernels),
                         pp_seconds(pp, &pp->post, false, 1), name, &dep, 1);
    } else
        send_waited(pp, pp->send_next, offset_next(pp), tag(pp, true, vs, st->micro_batch),
                    IR_PHASE_FORWARD, name, dep);
    pp->last_fwd_compute = g->last_compute;
}

/* Megatron's DDP without --overlap-grad-reduce reduces no gradient inside the pipeline schedule:
 * finalize_model_grads runs once forward_backward_func has returned (schedules.py), that is
 * after the rank's last backward and after its last send_backward has completed (waited:
 * p2p_communication._communicate, wait_on_reqs), and then reduces every chunk, in order. Issued
 * at the last backward instead, the reduction competes for the NICs with that last send and
 * slows the pipeline's drain (1T, tp 8 x pp 64: each hop of it 50 ms longer). */
static bool reduce_after_flush(const Pp *pp)
{
    return !pp->fsdp && !pp->g.opt->overlap_grad_reduce;
}

/* FSDP: reduce-scatter a layer's gradient after its last backward (and all-reduce the shard over
 * the replicas when hybrid); DDP: all-reduce (distributed optimizer: reduce-scatter) the chunk
 * after `last_op` and the last send (reduce_after_flush), or with --overlap-grad-reduce in
 * buckets during its last backward. */
static void reduce_gradients(Pp *pp, int chunk, int first, int n, int last_op)
{
    Gen *g = &pp->g;
    HwDtype dt = strat_grad_reduce_dtype(g->opt);
    double rb = hw_dtype_bytes(dt);
    IrCollKind reduce = pp->distopt ? IR_COLL_REDUCE_SCATTER : IR_COLL_ALLREDUCE;
    if (!pp->fsdp && g->opt->overlap_grad_reduce) {
        if (pp->D == 1)
            return;
        /* Megatron-Core's DDP with --overlap-grad-reduce: buckets of at least
         * max(40M, 1M x dp) parameters (DistributedDataParallelConfig.bucket_size), filled in
         * backward order, each all-reduced as soon as its last layer's backward of the last
         * micro-batch is done, overlapping the backward of the layers before it. */
        double bucket_cap = MAX(40e6, 1e6 * pp->D), params = 0;
        int bucket = 0;
        for (int l = first + n - 1; l >= first; l--) {
            params += unit_params(pp, l);
            if (params < bucket_cap && l > first)
                continue;
            char *name = cfg_strdup_printf("dp %s chunk %d bucket %d", ir_coll_kind_name(reduce),
                                         chunk, bucket++);
            int dep = pp->last_bwd[l];
            int op = gen_coll(g, pp->nccl, reduce, pp->dp_group, params * rb, dt,
                              IR_PHASE_BACKWARD, name, &dep, 1);
            g_array_append_val(pp->dp_ops, op);
            g_free(name);
            params = 0;
        }
        return;
    }
    if (!pp->fsdp) {
        if (pp->D == 1)
            return;
        double params = 0;
        for (int l = first; l < first + n; l++)
            params += unit_params(pp, l);
        char *name = cfg_strdup_printf("dp %s chunk %d", ir_coll_kind_name(reduce), chunk);
        int deps[2] = {last_op, pp->last_bwd_send};
        int op = gen_coll(g, pp->nccl, reduce, pp->dp_group, params * rb, dt,
                          IR_PHASE_BACKWARD, name, deps, pp->last_bwd_send >= 0 ? 2 : 1);
        g_array_append_val(pp->dp_ops, op);
        g_free(name);
        return;
    }
    for (int l = first + n - 1; l >= first; l--) {
        double params = unit_params(pp, l);
        char *name = cfg_strdup_printf("reduce_scatter layer %d", l);
        int op = pp->last_bwd[l];
        if (pp->S > 1)
            op = gen_coll(g, pp->nccl, IR_COLL_REDUCE_SCATTER, pp->dp_group, params * rb, dt,
                          IR_PHASE_BACKWARD, name, &op, 1);
        g_free(name);
        if (pp->D / pp->S > 1) {
            name = cfg_strdup_printf("replica allreduce layer %d", l);
            op = gen_coll(g, pp->nccl, IR_COLL_ALLREDUCE, pp->rep_group, params / pp->S * rb, dt,
                          IR_PHASE_BACKWARD, name, &op, 1);
            g_free(name);
        }
        g_array_append_val(pp->dp_ops, op);
        char *buf = cfg_strdup_printf("unsharded_grad:%d", l);
        gen_free(g, pp->nccl, buf, IR_MEM_GRADS, params * rb, op);
        g_free(buf);
        buf = cfg_strdup_printf("gathered:%d", l);
        gen_free(g, g->compute, buf, IR_MEM_PARAMS, params * hw_dtype_bytes(g->compute_dtype),
                 pp->last_bwd[l]);
        g_free(buf);
    }
}

static void backward(Pp *pp, const PpStep *st)
{
    Gen *g = &pp->g;
    int vs = st->chunk * pp->P + pp->stage;
    int first, n = chunk_layers(pp, st->chunk, &first);
    g->micro = st->micro_batch;
    char text[64];
    pp_two_ints(text, "B", st->micro_batch, ".", st->chunk);
    pp_put_text(pp_put_text(text + strlen(text), " "), strat_pp_phase_name(st->phase));
    uint32_t name = ir_string(g->cls, text);
    pp->label = name;
    double mb = g->mb, s = pp->act_bytes_scale;
    HwDtype dt = strat_grad_reduce_dtype(g->opt);
    if (pp->fsdp && pp->bwd_count[st->chunk] == 0) {
        for (int l = first; l < first + n; l++) {
            char *buf = cfg_strdup_printf("unsharded_grad:%d", l);
            gen_alloc(g, buf, IR_MEM_GRADS, unit_params(pp, l) * hw_dtype_bytes(dt));
            g_free(buf);
        }
    }
    int dep = -1;
    if (is_last_vs(pp, st->chunk))
        dep = pp_head_backward(pp, name);
    else {
        dep = p2p(pp, IR_OP_RECV, pp->recv_next, offset_next(pp), pp->boundary_bytes,
                  tag(pp, false, vs + 1, st->micro_batch), IR_PHASE_BACKWARD, name,
                  recv_dep(pp, false));
        /* DeepSpeed kept 1/T of this stage's output: gathered again (part_output.full()) */
        if (g->opt->pp_scatter_gather == PP_SG_DEEPSPEED)
            dep = boundary_gather(pp, IR_PHASE_BACKWARD, dep);
        dep = boundary_gather(pp, IR_PHASE_BACKWARD, dep);
    }
    bool last_of_chunk = pp->bwd_count[st->chunk] == pp->m_gen - 1;
    for (int l = first + n - 1; l >= first; l--) {
        bool recompute = pp->ckpt && gen_block_checkpointed(g->opt, l);
        /* what lives again in the layer's backward: the whole layer's saved activations, or
         * under selective recomputation the attention cores' dropped tensors (pp_cost.c) */
        double bytes = (recompute ? pp->layer[l].saved : pp->layer[l].recompute_saved) * s * mb;
        if (bytes > 0 || recompute) {
            pp_two_ints(text, "recompute:", l, ":", st->micro_batch);
            gen_alloc(g, text, IR_MEM_ACTIVATIONS, bytes);
        }
        if (recompute)
            dep = pp_layer_forward(pp, l, IR_PHASE_BACKWARD, true, dep);
        dep = pp_layer_backward(pp, l, dep);
        if (bytes > 0 || recompute) {
            pp_two_ints(text, "recompute:", l, ":", st->micro_batch);
            gen_free(g, g->host, text, IR_MEM_ACTIVATIONS, bytes, -1);
        }
        pp->last_bwd[l] = dep;
    }
    if (is_first_vs(pp, st->chunk)) {
        /* SP: the embedding's output was scattered over the sequence (its forward exchange);
         * every rank's vocabulary shard needs every token's gradient, gathered again (the
         * scatter's backward, Megatron's mappings.py _ScatterToSequenceParallelRegion and
         * _ReduceScatterToSequenceParallelRegion: an all-gather) */
        if (pp->sp)
            dep = pp_tp_comm(pp, IR_PHASE_BACKWARD, false, ir_string(g->cls, "embedding"), dep);
        dep = pp_compute(pp, IR_PHASE_BACKWARD, pp->pre.bwd_flops * mb, 2 * pp->pre.bytes * s * mb,
                         pp->pre.bwd_flops * mb, MAX(1, 2 * pp->pre.kernels),
                         pp_seconds(pp, &pp->pre, true, 1), name, &dep, 1);
    }
    dep = pp_deepspeed_grads(pp, pp->stage_psi, pp->stage_ntensors,
                             pp->bwd_count[st->chunk] == 0, name, dep);
    if (!is_first_vs(pp, st->chunk))
        pp->last_bwd_send = send_waited(pp, pp->send_prev, offset_prev(pp),
                                        tag(pp, false, vs, st->micro_batch), IR_PHASE_BACKWARD,
                                        name, dep);
    pp_two_ints(text, "act:", st->chunk, ":", st->micro_batch);
    gen_free(g, g->host, text, IR_MEM_ACTIVATIONS, chunk_saved(pp, st->chunk), -1);
    if (last_of_chunk) {
        if (!reduce_after_flush(pp))
            reduce_gradients(pp, st->chunk, first, n, dep);
        /* Tied word embedding: the first and last stage add up their gradients, here as a
         * pair of send/recv. Megatron all-reduces them in the embedding group after the
         * pipeline flush (finalize_model_grads), so the exchange starts once both stages are
         * done, and the first stage is done last (its last backward needs every other stage's).
         * It says so with an empty message; without it the last stage's gradient would compete
         * with the activation gradients still going to the first stage (and, over MPI/TCP,
         * queue ahead of them on the same connection). */
        if (pp->tied_params > 0 && (is_first_vs(pp, st->chunk) || is_last_vs(pp, st->chunk))) {
            bool first_stage = is_first_vs(pp, st->chunk);
            int off = first_stage ? offset_prev(pp) : offset_next(pp);
            double bytes = pp->tied_params * hw_dtype_bytes(dt);
            uint32_t ready_tag = EMBEDDING_TAG + (uint32_t)pp->P;
            uint32_t ready_name = ir_string(g->cls, "embedding grad ready");
            int ready = first_stage ? p2p(pp, IR_OP_SEND, pp->emb_send, off, 0, ready_tag,
                                          IR_PHASE_BACKWARD, ready_name, dep)
                                    : p2p(pp, IR_OP_RECV, pp->emb_recv, off, 0, ready_tag,
                                          IR_PHASE_BACKWARD, ready_name, -1);
            uint32_t grad_name = ir_string(g->cls, "embedding grad");
            p2p2(pp, IR_OP_SEND, pp->emb_send, off, bytes, EMBEDDING_TAG + (uint32_t)pp->stage,
                 IR_PHASE_BACKWARD, grad_name, dep, first_stage ? -1 : ready);
            int r = p2p(pp, IR_OP_RECV, pp->emb_recv, off, bytes,
                        EMBEDDING_TAG + (uint32_t)(pp->P - 1 - pp->stage),
                        IR_PHASE_BACKWARD, grad_name, -1);
            g_array_append_val(pp->dp_ops, r);
        }
    }
    pp->bwd_count[st->chunk]++;
    pp->last_bwd_compute = g->last_compute;
}

/* ---- the program of one stage ---- */

static double stage_params(const Pp *pp)
{
    double psi = 0;
    for (int c = 0; c < pp->v; c++) {
        int first, n = chunk_layers(pp, c, &first);
        for (int l = first; l < first + n; l++)
            psi += unit_params(pp, l);
    }
    return psi;
}

/* the stage's share of the model's parameter tensors (FSDP steps one flat shard per layer) */
static double stage_tensors(const Pp *pp)
{
    return (pp->fsdp ? pp->n_layers : gen_param_tensors(&pp->g)) * stage_params(pp) /
           MAX(1.0, (double)pp->g.model->params);
}

/* Class g.cls's program for `stage`; returns its steady periods' op count
 * (StratInfo.class_pair_ops). */
static int stage_program(Pp *pp, int stage)
{
    Gen *g = &pp->g;
    const StratOptions *opt = g->opt;
    pp->stage = stage;
    pp->stage_psi = stage_params(pp);
    pp->stage_ntensors = stage_tensors(pp);
    g->last_compute = -1; /* each class's program is its own */
    pp->last_fwd_compute = pp->last_bwd_compute = pp->last_bwd_send = -1;
    g->host = ir_stream_add(g->cls, "host", true);
    g->compute = ir_stream_add(g->cls, "compute", false);
    if (pp->P > 1) {
        pp->send_next = ir_stream_add(g->cls, "pp:send_next", false);
        pp->recv_prev = ir_stream_add(g->cls, "pp:recv_prev", false);
        pp->send_prev = ir_stream_add(g->cls, "pp:send_prev", false);
        pp->recv_next = ir_stream_add(g->cls, "pp:recv_next", false);
    }
    pp->nccl = ir_stream_add(g->cls, "nccl:dp", false);
    if (pp->tp_overlap || (pp->sp && pp->T > 1)) /* TE's userbuffers; the backward's regather */
        pp->tp_stream = ir_stream_add(g->cls, "nccl:tp", false);
    if (pp->tied_params > 0 && (stage == 0 || stage == pp->P - 1)) {
        pp->emb_send = ir_stream_add(g->cls, "pp:embedding_send", false);
        pp->emb_recv = ir_stream_add(g->cls, "pp:embedding_recv", false);
    }
    for (int l = 0; l < pp->n_layers; l++)
        pp->gather_op[l] = pp->last_bwd[l] = -1;
    /* name parts are the class's strings: interned again for each */
    for (int i = 0; i < 2 * pp->n_layers; i++)
        pp->layer_suffix[i] = UINT32_MAX;
    for (int i = 0; i < IR_COLL_KIND_COUNT + 1; i++)
        pp->tp_prefix[i] = UINT32_MAX;
    memset(pp->bwd_count, 0, sizeof(int) * (size_t)pp->v);
    g_array_set_size(pp->dp_ops, 0);

    double psi = pp->stage_psi, state = model_optimizer_state_bytes(g->model->training.optimizer);
    if (pp->fsdp) {
        gen_alloc(g, "params", IR_MEM_PARAMS, psi / pp->S * 4);
        gen_alloc(g, "grad_shard", IR_MEM_GRADS, psi / pp->S * 4);
        gen_alloc(g, "optimizer_state", IR_MEM_OPTIMIZER, psi / pp->S * state);
    } else {
        /* One rule for DDP, Megatron's distributed optimizer and ZeRO-1: under mixed precision
         * fp32 master weights plus the working copy in param_dtype (Megatron's Float16Module),
         * the distributed optimizer sharding the master weights and the state over dp; in fp32
         * the parameters are their own master and stay whole. Gradients are kept in the dtype
         * they are reduced in: fp32 main grads for Megatron (bf16 param, fp32 grads: 18 -> 6 +
         * 12/d bytes; fp32: 16 -> 8 + 8/d, Megatron-LM docs/source/api-guide/
         * dist_optimizer.md), param_dtype for ZeRO-1 (16 -> 4 + 12/N, ZeRO, SC'20). */
        double working = opt->mixed_precision ? hw_dtype_bytes(opt->param_dtype) : 0;
        double shard = pp->distopt ? 1.0 / pp->D : 1;
        double master = opt->mixed_precision ? 4 * shard : 4;
        HwDtype gdt = strat_grad_reduce_dtype(opt);
        gen_alloc(g, "params", IR_MEM_PARAMS, psi * (master + working));
        gen_alloc(g, "main_grads", IR_MEM_GRADS, psi * hw_dtype_bytes(gdt));
        gen_alloc(g, "optimizer_state", IR_MEM_OPTIMIZER, psi * state * shard);
    }
    if (g->fp8_leaf && !pp->fsdp) {
        /* --fp8-format: the stage's layers' fp8 linears, per TP rank (each layer holds the
         * model's block fraction of them; fp8.c) */
        double layer_params = 0;
        for (int c = 0; c < pp->v; c++) {
            int first, n_layers = chunk_layers(pp, c, &first);
            for (int l = first; l < first + n_layers; l++)
                layer_params += pp->layer[l].params;
        }
        gen_fp8_weights(g, g->fp8_block_fraction * layer_params);
    }
    PpStep *steps = g_new(PpStep, 2 * pp->m_gen * pp->v);
    int n = strat_pp_order(opt->pp_schedule, pp->P, pp->v, pp->m_gen, stage, steps);
    /* the ops each steady period adds, for src/compact: 1F1B's period is a forward-backward
     * pair (a micro-batch), the interleaved schedule's a group of P micro-batches through every
     * chunk (P x v forwards and as many backwards, strat_pp_order); the periods between the
     * first (after the warm-up) and the last (before the cool-down) must all add as many */
    GArray *starts = g_array_new(FALSE, FALSE, sizeof(int));
    int unit = MAX(1, pp_period_micro_batches(opt, pp->P) * pp->v), k_fwd = 0;
    for (int i = 0; i < n; i++) {
        if (steps[i].forward && steps[i].phase == PP_PHASE_STEADY && k_fwd % unit == 0) {
            int at = ir_class_n_ops(g->cls);
            g_array_append_val(starts, at);
        }
        k_fwd += steps[i].forward;
        if (steps[i].forward)
            forward(pp, &steps[i]);
        else
            backward(pp, &steps[i]);
    }
    const int *a = (const int *)(void *)starts->data;
    int pair_ops = pp_period_micro_batches(opt, pp->P) > 0 && starts->len >= 4 ? a[2] - a[1] : 0;
    for (guint k = 2; k + 1 < starts->len && pair_ops > 0; k++)
        if (a[k + 1] - a[k] != pair_ops)
            pair_ops = 0;
    g_array_free(starts, TRUE);
    g_free(steps);
    gen_launch_p2p_flush(g); /* the last sends, before the gradients are reduced */
    for (int c = 0; c < pp->v && reduce_after_flush(pp); c++) {
        int first, layers = chunk_layers(pp, c, &first);
        reduce_gradients(pp, c, first, layers, g->last_compute);
    }
    g_array_append_val(pp->dp_ops, g->last_compute);
    int step = gen_optimizer_step(g, pp->fsdp ? psi / pp->S : pp->distopt ? psi / pp->D : psi,
                                  pp->stage_ntensors, (const int *)(void *)pp->dp_ops->data,
                                  (int)pp->dp_ops->len);
    if (pp->distopt && !opt->overlap_param_gather && pp->D > 1)
        for (int c = 0; c < pp->v; c++)
            distopt_gather_chunk(pp, c, step);
    return pair_ops;
}

/* ---- layout ---- */

/* The ranks of one stage as rank classes: one class when the stage's ranks are an arithmetic
 * progression, else one per coordinate of the faster of tp and dp. */
static void stage_classes(Pp *pp, int stage, GArray *stages)
{
    const StratLayout *lay = pp->g.layout;
    int size[PAR_DIM_COUNT] = {lay->tp, lay->pp, lay->dp};
    ParDim a = PAR_DIM_TP, b = PAR_DIM_DP;
    if (lay->stride[a] > lay->stride[b])
        a = PAR_DIM_DP, b = PAR_DIM_TP;
    int base = stage * lay->stride[PAR_DIM_PP];
    if (size[a] == 1 || size[a] * lay->stride[a] == lay->stride[b] || size[b] == 1) {
        int stride = size[a] > 1 ? lay->stride[a] : lay->stride[b];
        ir_class_add(pp->g.sched, base, size[a] * size[b], stride);
        g_array_append_val(stages, stage);
        return;
    }
    for (int x = 0; x < size[a]; x++) {
        ir_class_add(pp->g.sched, base + x * lay->stride[a], size[b], lay->stride[b]);
        g_array_append_val(stages, stage);
    }
}

IrSchedule *strat_pp_generate(const Model *model, const HwTopology *topo, const StratOptions *opt,
                              const StratLayout *layout, StratInfo *info, GError **error)
{
    Pp pp = {0};
    Gen *g = &pp.g;
    g->model = model, g->topo = topo, g->opt = opt, g->layout = layout;
    g->mb = model->training.micro_batch;
    g->ckpt_block = -1;
    g->last_compute = -1;
    g->compute_dtype = gen_compute_dtype(model, opt);
    g->act_bytes = opt->mixed_precision ? hw_dtype_bytes(opt->param_dtype) : 4;
    gen_fp8_init(g);
    pp.act_bytes_scale = (double)g->act_bytes / hw_dtype_bytes(model->training.param_dtype);
    pp.P = layout->pp, pp.T = layout->tp, pp.D = layout->dp;
    pp.v = opt->pp_schedule == PP_SCHEDULE_INTERLEAVED ? MAX(1, opt->virtual_stages) : 1;
    pp.m = MAX(1, opt->grad_accum);
    pp.m_gen = opt->pp_generate_micro_batches > 0 ? MIN(pp.m, opt->pp_generate_micro_batches) : pp.m;
    pp.fsdp = opt->kind == STRAT_FSDP && opt->sharding != SHARD_NO_SHARD;
    pp.distopt = !pp.fsdp && opt->distributed_optimizer;
    pp.tp_overlap = opt->tp_comm_overlap && opt->sequence_parallel && layout->tp > 1;
    pp.sync_send = opt->pp_schedule == PP_SCHEDULE_1F1B;
    pp.S = pp.fsdp ? layout->shard_size : 1;
    g->vocab_pad = strat_vocab_pad(opt, layout);
    /* --fp8-format: FSDP gathers and frees each weight, TE casts it in each forward (fp8.c);
     * Megatron's caches it for the step */
    g->fp8_weights_each_forward = g->fp8_leaf && pp.fsdp;
    pp.ckpt = opt->activation_checkpointing;
    pp.sp = opt->sequence_parallel && pp.T > 1;
    if (!pp_model_costs(&pp, error) || !pp_partition(&pp, error)) {
        pp_costs_free(&pp);
        gen_fp8_clear(g);
        g_free(pp.vs_first);
        return NULL;
    }
    pp.tp_bytes = (double)model->training.seq_len * model->hidden * g->act_bytes * g->mb;
    pp.boundary_bytes = pp.layer[0].input * pp.act_bytes_scale * g->mb;
    if (opt->pp_scatter_gather && pp.T > 1 && !pp.sp) {
        pp.boundary_gather_bytes = pp.boundary_bytes;
        pp.boundary_bytes /= pp.T;
    }

    g->sched = ir_schedule_new(layout->nodes, layout->gpus_per_node);
    ir_meta_set(g->sched, "model", model->name);
    ir_meta_set(g->sched, "topology", topo->name);
    ir_meta_set(g->sched, "strategy", opt->zero1 ? "zero1"
                                      : opt->kind == STRAT_DDP ? "ddp"
                                                               : strat_sharding_name(opt->sharding));
    char *text = cfg_strdup_printf("%d", pp.T);
    ir_meta_set(g->sched, "tp", text);
    g_free(text);
    text = cfg_strdup_printf("%d", pp.P);
    ir_meta_set(g->sched, "pp", text);
    g_free(text);
    ir_meta_set(g->sched, "pp_schedule", strat_pp_schedule_name(opt->pp_schedule));
    if (pp.T > 1)
        pp.tp_group = ir_group_add(g->sched, "tp", pp.T, layout->stride[PAR_DIM_TP]);
    int dp_stride = layout->stride[PAR_DIM_DP];
    if (pp.fsdp && pp.S < pp.D) {
        pp.dp_group = ir_group_add(g->sched, "dp_shard", pp.S, dp_stride);
        pp.rep_group = ir_group_add(g->sched, "dp_replicate", pp.D / pp.S, dp_stride * pp.S);
    } else if (pp.D > 1) {
        pp.dp_group = ir_group_add(g->sched, "dp", pp.D, dp_stride);
        pp.rep_group = pp.dp_group;
    }
    pp.gather_op = g_new(int, pp.n_layers);
    pp.layer_suffix = g_new(uint32_t, 2 * pp.n_layers);
    pp.last_bwd = g_new(int, pp.n_layers);
    pp.bwd_count = g_new0(int, pp.v);
    pp.dp_ops = g_array_new(FALSE, FALSE, sizeof(int));

    GArray *stages = g_array_new(FALSE, FALSE, sizeof(int));
    for (int s = 0; s < pp.P; s++)
        stage_classes(&pp, s, stages);
    pp.pair_ops = g_new0(int, g->sched->n_classes);
    for (int c = 0; c < g->sched->n_classes; c++) {
        g->cls = g->sched->classes[c];
        if (c > 0) /* stages' programs are about as long as each other (a little room spare) */
            ir_class_reserve(g->cls, ir_class_n_ops(g->sched->classes[c - 1]) * 17 / 16,
                             (int)g->sched->classes[c - 1]->n_deps * 17 / 16);
        pp.pair_ops[c] = stage_program(&pp, g_array_index(stages, int, c));
    }
    info->class_pair_ops = pp.pair_ops;
    info->pp_omitted_micro_batches = pp.m - pp.m_gen;
    info->pp_period_micro_batches = pp_period_micro_batches(opt, pp.P);
    /* without a pipeline (DDP x TP) there is one rank class and no stage to report */
    info->n_class_stage = pp.P > 1 ? (int)stages->len : 0;
    info->class_stage = pp.P > 1 ? (int *)(void *)g_array_free(stages, FALSE) : NULL;
    if (pp.P == 1)
        g_array_free(stages, TRUE);
    info->n_units = pp.fsdp ? pp.n_layers : 0;
    info->samples_per_step = g->mb * pp.m / (double)(pp.T * pp.P);
    info->tokens_per_step = info->samples_per_step * (model->token_input ? model->training.seq_len : 1);
    char *order = strat_order_name(opt->order);
    if (pp.P == 1)
        info->wrap_description = cfg_strdup_printf(
            "tensor parallel %d%s x data parallel %d, placement %s; %s: gradients "
            "%s %s (%d micro-batches per step)",
            pp.T, pp.sp ? " with sequence parallelism" : "", pp.D, order,
            opt->zero1 ? "ZeRO-1" : pp.distopt ? "Megatron's distributed optimizer" : "Megatron's DDP",
            pp.distopt ? "reduce-scattered, parameters all-gathered after the step;"
                       : "all-reduced",
            opt->overlap_grad_reduce ? "in buckets during the last micro-batch's backward "
                                       "(--overlap-grad-reduce)"
                                     : "once per step, after the last micro-batch",
            pp.m);
    else
        info->wrap_description = cfg_strdup_printf(
            "pipeline %s: %d stage%s x %d chunk%s, %d..%d decoder layers per chunk, %d "
            "micro-batches; "
            "tensor parallel %d%s; data parallel %d; placement %s%s",
            strat_pp_schedule_name(opt->pp_schedule), pp.P, pp.P == 1 ? "" : "s", pp.v,
            pp.v == 1 ? "" : "s", pp.vs_first[1] - pp.vs_first[0],
            pp.vs_first[pp.P * pp.v] - pp.vs_first[pp.P * pp.v - 1], pp.m, pp.T,
            pp.sp ? " with sequence parallelism" : "", pp.D, order,
            pp.fsdp ? "; FSDP gathers each layer once per step (reshard_after_forward off)" : "");
    g_free(order);
    g_array_free(pp.dp_ops, TRUE);
    g_free(pp.gather_op);
    g_free(pp.layer_suffix);
    g_free(pp.last_bwd);
    g_free(pp.bwd_count);
    pp_costs_free(&pp);
    gen_fp8_clear(g);
    g_free(pp.vs_first);
    if (!gen_sizes_check(g, error)) {
        ir_schedule_free(g->sched);
        return NULL;
    }
    return g->sched;
}
