/* sim_overlap: compute slowed by the communication running beside it on the same GPU, in time
 * (processor sharing): the engine's running compute op is re-rated whenever a collective or
 * send/recv on another stream of its class starts or ends. Internal to src/core (sim_engine.h).
 * Cost: O(1) per communication op start and end. */
#include "sim_engine.h"

#include "../kern/kern.h"

#include <math.h>

/* Communication that overlaps compute: a collective or send/recv on a stream other than
 * compute. +1 intra-node (NVLink), +2 across nodes, 0 not overlapping. */
static int overlap_kind(const Engine *e, int ci, const IrOp *op)
{
    const ClassState *st = &e->st[ci];
    if (st->compute_stream < 0 || op->stream == st->compute_stream)
        return 0;
    const IrSchedule *s = e->s;
    if (op->kind == IR_OP_COLL) {
        int nodes = 1, per_node = 1;
        ir_group_shape(s, &s->groups[op->u.coll.group], &nodes, &per_node);
        return nodes > 1 ? 2 : 1;
    }
    if (op->kind == IR_OP_SEND || op->kind == IR_OP_RECV) {
        int rank = s->classes[ci]->first_rank, peer = rank + op->u.p2p.peer_offset;
        return rank / s->gpus_per_node == peer / s->gpus_per_node ? 1 : 2;
    }
    return 0;
}

/* What communication running beside compute on the same GPU takes from it, per topology. Its
 * kernels hold SMs, and tensor-core work gets the rest: NCCL one per channel (node.nccl_channels
 * of gpu.kernels.sm_count), charged once while any NCCL op is in flight (a simplification: a
 * group's collectives serialise on its stream, and a posted send/recv holds fewer channels, but
 * two groups' collectives in flight at once do hold their own CTAs); other libraries' kernels
 * (Transformer Engine's userbuffers) the SMs the op says (IrOp.u.coll.sms), on top. At most half
 * the GPU is taken: the block scheduler still interleaves compute CTAs. And communication moves at
 * least twice its link bandwidth through HBM (store, then read back: S. Jeaugey in
 * NVIDIA/nccl#1428), which memory-bound kernels lose. Published reports of 1.8x
 * (shared/data/kernels/comm_compute_interference.tsv) bound it from above; they are not fitted.
 * Without the kernel table (no SM count) nothing is taken. */
void sim_overlap_init(Engine *e)
{
    const HwTopology *topo = e->cfg->topo;
    const HwGpu *gpu = &topo->gpu;
    if (!gpu->kernels.present)
        return;
    double hbm = gpu->hbm_Bps * gpu->memory_efficiency;
    double nic =
        topo->gpus_per_node > 0 ? topo->nic_Bps * topo->nics_per_node / topo->gpus_per_node : 0;
    e->sm_count = gpu->kernels.sm_count;
    e->nccl_sms = topo->nccl_channels;
    e->hbm_share_intra = 2 * topo->gpu_link_Bps / hbm;
    e->hbm_share_inter = 2 * MIN(topo->gpu_link_Bps, nic) / hbm;
}

/* The part of a compute op's time its memory-bound kernels take (they lose HBM to NCCL too). */
double sim_overlap_memory_fraction(const Engine *e, const IrClass *c, const IrOp *op,
                                   double alone_s)
{
    const HwGpu *gpu = &e->cfg->topo->gpu;
    if (alone_s <= 0)
        return 0;
    const IrCompute *p = ir_op_compute(c, op);
    double mem_s = p->seconds > 0
                       ? kern_memory_s(gpu, p->bytes, (int)p->kernels)
                       : alone_s - p->flops / (gpu->peak_flops[op->dtype] * gpu->matmul_efficiency);
    return MAX(0, MIN(1, mem_s / alone_s));
}

/* The running compute op's slowdown with the class's communication in flight now. */
double sim_overlap_slowdown(const Engine *e, int ci, double mem_fraction)
{
    const ClassState *st = &e->st[ci];
    if ((st->comm_intra == 0 && st->comm_inter == 0) || e->sm_count <= 0)
        return 1;
    double sm_share =
        MIN(0.5, ((st->comm_nccl > 0 ? e->nccl_sms : 0) + st->comm_own_sms) / e->sm_count);
    double hbm_share = MIN(0.5, (st->comm_intra > 0 ? e->hbm_share_intra : 0) +
                                    (st->comm_inter > 0 ? e->hbm_share_inter : 0));
    return (1 - mem_fraction) / (1 - sm_share) + mem_fraction / MAX(0.2, 1 - sm_share - hbm_share);
}

/* The running compute op's slowdown changes at `now`: its work done so far is booked at the old
 * rate, the rest goes at the new one, and its end moves (the old end event becomes stale).
 * Processor sharing in time: only the part of a kernel that overlaps NCCL is slowed. */
static void rerate(Engine *e, int ci, int64_t now)
{
    ClassState *st = &e->st[ci];
    if (st->run_op < 0)
        return;
    double factor = sim_overlap_slowdown(e, ci, st->run_mem_fraction);
    if (factor == st->run_factor)
        return;
    st->run_left_s = MAX(0, st->run_left_s - sim_ns_to_s(now - st->run_since_ns) / st->run_factor);
    st->run_since_ns = now;
    st->run_factor = factor;
    int64_t end = now + sim_round(st->run_left_s * factor * 1e9);
    if (end != st->run_end_ns) {
        st->run_end_ns = end;
        sim_finish_at(e, ci, st->run_op, end);
    }
}

void sim_overlap_count(Engine *e, int ci, const IrOp *op, int delta, int64_t now)
{
    int kind = overlap_kind(e, ci, op);
    if (kind == 0)
        return;
    if (kind == 1)
        e->st[ci].comm_intra += delta;
    else
        e->st[ci].comm_inter += delta;
    if (op->kind == IR_OP_COLL && op->u.coll.sms)
        e->st[ci].comm_own_sms += delta * op->u.coll.sms;
    else
        e->st[ci].comm_nccl += delta;
    rerate(e, ci, now);
}
