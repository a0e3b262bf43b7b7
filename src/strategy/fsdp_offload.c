/* fsdp_offload: DeepSpeed's optimizer offload (zero_optimization.offload_optimizer {device: cpu},
 * ZeRO-Offload: Ren et al., USENIX ATC'21) on the FSDP walk, ZeRO-3 as full_shard and ZeRO-2 as
 * shard_grad_op (--offload-optimizer cpu). Unlike FSDP's CPUOffload (--cpu-offload) the parameter
 * shards stay on the GPU, in param_dtype; the fp32 master weights, the gradient they are stepped
 * with and Adam's moments live in host memory. Per step:
 *   backward  after a unit's reduce-scatter, its reduced gradient shard goes to the host as fp32
 *             (DeepSpeed's stage3.py partition_grads:
 * `fp32_grad_tensor.copy_(grad_buffer.float())`): a memcpy of 4 B per shard element on the d2h
 * stream, which overlaps the rest of backward as DeepSpeed's overlap_comm does; costed at the
 * topology's PCIe bandwidth as FSDP's offload copies are. Every micro-batch's shard goes (DeepSpeed
 * round-trips the partition through a pinned host buffer before the accumulation boundary: not
 *             modelled byte for byte).
 *   step      after the last copy the host runs DeepSpeedCPUAdam over the rank's shard
 *             (kern_cpu_adam_s: one fused pass, 30 B per element with bf16 parameters), then the
 *             updated shard is copied to the GPU in param_dtype (stage3.py
 *             _reassign_or_swap_out_partitioned_parameters: a blocking copy_, so the host waits for
 *             it and the next step's first all-gather is issued after it). That copy overlaps
 *             nothing in the step: DeepSpeed steps sub-group by sub-group (sub_group_size, 1e9
 *             elements by default) and could copy one while stepping the next; with one 8B model
 *             over 8 GPUs that is about one sub-group, and the pipelining is not modelled.
 * Cost: a few ops per unit and micro-batch, three per step. */
#include "fsdp_priv.h"

int fsdp_offload_grad(Gen *g, Fsdp *f, int u, double shard, int dep, const char *uname)
{
    /* the fp32 cast of the reduced shard lives on the GPU until its copy is done (the cast
     * kernel itself, shard x (reduce_dtype + 4) B of HBM traffic, is left out) */
    double bytes = shard * 4;
    char *buf = cfg_strdup_printf("offload_grad:%d.%d", u, g->micro);
    char *name = cfg_strdup_printf("d2h grad %s", uname);
    gen_alloc(g, buf, IR_MEM_GRADS, bytes);
    IrOp op = {.kind = IR_OP_MEMCPY, .stream = (uint16_t)f->d2h, .phase = IR_PHASE_BACKWARD};
    op.u.memcpy.bytes = gen_size(g, "memcpy", bytes);
    int copy = ir_op_add(g->cls, &op, name, &dep, 1);
    gen_free(g, f->d2h, buf, IR_MEM_GRADS, bytes, copy);
    g_free(name);
    g_free(buf);
    return copy;
}

int fsdp_offload_step(Gen *g, Fsdp *f, double numel, int grads_done)
{
    gen_host_wait(g, grads_done, "wait for offloaded gradients");
    gen_cpu_adam_step(g, numel, f->pbytes);
    IrOp op = {.kind = IR_OP_MEMCPY, .stream = (uint16_t)f->h2d, .phase = IR_PHASE_OPTIMIZER};
    op.u.memcpy.bytes = gen_size(g, "memcpy", numel * f->pbytes);
    op.u.memcpy.to_device = true;
    int copy = ir_op_add(g->cls, &op, "h2d updated params", NULL, 0);
    return gen_host_wait(g, copy, "wait for updated params (blocking copy_)");
}
