/* run_plan: what fsdprun-nccl derives from the schedule alone, without MPI, CUDA or NCCL (so that
 * the unit tests pin it on machines without a GPU):
 *   - the NCCL communicators a rank takes part in, and in which global order every rank makes
 *     them (ncclCommInitRank blocks until all members call it: a consistent order means no rank
 *     waits for one that waits for another communicator first);
 *   - each collective's and each send/recv's communicator;
 *   - the GEMMs a compute op runs: its kernel list's shapes, or one that stands for its FLOPs.
 * Collectives: one communicator per (group family, stream name) that any class uses, on the
 * rank's instance of the group, so that a communicator is never used by two streams (threads)
 * of a rank. Send/recv: one two-rank communicator per (sender, receiver, sending stream,
 * receiving stream), as ProcessGroupNCCL makes one per pair; NCCL matches a pair's messages in
 * issue order, so a channel's messages must be received in the order they are sent. */
#ifndef FSD_RUN_PLAN_H
#define FSD_RUN_PLAN_H

#include "../ir/ir.h"

#include <glib.h>
#include <stdbool.h>

typedef struct {
    int group;          /* IrSchedule.groups index */
    const char *stream; /* points into the schedule */
} RunCollKey;

typedef struct {
    int src, dst;              /* world ranks: sender (rank 0 of the pair's comm) and receiver */
    const char *sname, *rname; /* their streams */
} RunP2pKey;

typedef struct {
    GArray *coll; /* of RunCollKey, sorted by group, stream: the whole schedule's (each rank makes
                     all of them, on its instance of the group); groups of one rank need none */
    GArray *p2p;  /* of RunP2pKey: this rank's, in the global order of initialisation */
    int *op_key;  /* per op of the rank's class: index into coll (collectives) or p2p (send/recv),
                     -1 for other ops and collectives over one rank */
    int n_ops;
} RunCommPlan;

/* The rank's plan; FSD_ERROR_INPUT naming the op when a send or recv has no partner of the same
 * size, or a channel's messages are received in another order than they are sent. */
bool run_comm_plan(const IrSchedule *s, int rank, RunCommPlan *plan, GError **error);
void run_comm_plan_clear(RunCommPlan *plan);
/* The global order of p2p communicators: (lower rank, higher rank, sender, streams). */
int run_p2p_key_order(const RunP2pKey *a, const RunP2pKey *b);

/* The GEMM of a compute op: reps cuBLAS calls of t x t x k (t a power of two, 64..4096, k up to
 * 8192), together 2 t^2 k reps ~ flops. All zero below one 64 x 64 x 1 GEMM. The schedule keeps
 * FLOPs, not shapes: the largest square output the FLOPs allow stands for the op's GEMMs. */
typedef struct {
    int t, k, reps;
} RunGemmPlan;

#define RUN_GEMM_T_MAX 4096
#define RUN_GEMM_K_MAX 8192

RunGemmPlan run_gemm_plan(double flops);

/* What fsdprun-nccl runs for a compute op. With its kernel list (schedule version 3): each GEMM
 * at its own shape, batched where batch > 1 (cublasGemmStridedBatchedEx), `reps`
 * times; fused attention and shapeless FLOPs (convolutions) as their FLOP-equivalent square
 * GEMMs (run_gemm_plan: no attention kernel of our own, no cuDNN); memory-bound kernels as a
 * device-to-device copy of their bytes (half read, half written). A kernel's share scales it:
 * 3 runs it three times, 0.5 (half a layer) halves its m (its rows). A GEMM whose operands
 * would exceed RUN_GEMM_OPERAND_MAX bytes each runs as pieces: its batch split first, then
 * its largest dimension halved (reps doubled) until each operand fits, the same FLOPs in
 * shapes nearly as large. Allocates nothing on the GPU: the backend sizes its buffers from
 * the largest operands. */
#define RUN_GEMM_OPERAND_MAX ((double)(1u << 30))
typedef struct {
    int m, n, k, batch; /* one cuBLAS call: batch x [m x k] . [k x n], column-major */
    int reps;
} RunGemm;
typedef struct {
    GArray *gemms;     /* of RunGemm (shaped and square ones alike) */
    double copy_bytes; /* device-to-device copy, bytes moved (read + written) */
} RunKernelPlan;
/* `op` is a compute op. Without a kernel list (versions 1-2) the plan has one entry, the
 * run_gemm_plan GEMM of its FLOPs (none below one 64 x 64 x 1 GEMM), and a copy of its bytes. */
void run_kernel_plan(const IrClass *c, const IrOp *op, RunKernelPlan *plan);
void run_kernel_plan_clear(RunKernelPlan *plan);

#endif
