/* sim_alone: benchmarks' ops alone on the machine (fsdpsim collective, the nccl-tests
 * comparison), as one-op schedules through the same engine and network model as a training
 * step; see sim.h. */
#include "sim.h"

bool sim_collective_s(const HwTopology *topo, const CollModel *coll, const NetTopo *net, int nodes,
                      int gpus_per_node, IrCollKind kind, HwDtype dtype, uint64_t bytes,
                      double *out, GError **error)
{
    int n = nodes * gpus_per_node;
    IrSchedule *s = ir_schedule_new(nodes, gpus_per_node);
    int g = ir_group_add(s, "world", n, 1);
    IrClass *c = ir_class_add(s, 0, n, 1);
    ir_stream_add(c, "host", true);
    ir_stream_add(c, "nccl", false);
    IrOp op = {.kind = IR_OP_COLL, .stream = 1, .dtype = (uint8_t)dtype};
    op.u.coll.coll = (uint8_t)kind;
    op.u.coll.group = (uint16_t)g;
    op.u.coll.bytes = bytes;
    ir_op_add(c, &op, ir_coll_kind_name(kind), NULL, 0);
    return sim_schedule_makespan_s(s, topo, coll, net, out, error);
}

bool sim_sendrecv_s(const HwTopology *topo, const CollModel *coll, const NetTopo *net, int nodes,
                    int gpus_per_node, uint64_t bytes, double *out, GError **error)
{
    int n = nodes * gpus_per_node;
    IrSchedule *s = ir_schedule_new(nodes, gpus_per_node);
    for (int r = 0; r < n; r++) {
        IrClass *c = ir_class_add(s, r, 1, 1);
        ir_stream_add(c, "host", true);
        /* ncclSend and ncclRecv in one group: two streams, so neither waits for the other */
        ir_stream_add(c, "send", false);
        ir_stream_add(c, "recv", false);
        IrOp send = {.kind = IR_OP_SEND, .stream = 1};
        send.u.p2p.peer_offset = (r + 1) % n - r;
        send.u.p2p.bytes = bytes;
        ir_op_add(c, &send, "send", NULL, 0);
        IrOp recv = {.kind = IR_OP_RECV, .stream = 2};
        recv.u.p2p.peer_offset = (r + n - 1) % n - r;
        recv.u.p2p.bytes = bytes;
        ir_op_add(c, &recv, "recv", NULL, 0);
    }
    return sim_schedule_makespan_s(s, topo, coll, net, out, error);
}

bool sim_schedule_makespan_s(IrSchedule *s, const HwTopology *topo, const CollModel *coll,
                             const NetTopo *net, double *out, GError **error)
{
    SimConfig cfg = {topo, coll, net};
    SimResult *res = sim_run(s, &cfg, error);
    if (res)
        *out = sim_ns_to_s(res->makespan_ns);
    sim_result_free(res);
    ir_schedule_free(s);
    return res != NULL;
}
