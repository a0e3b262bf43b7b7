/* run_cuda: fsdprun-nccl's backend (see run.h), one GPU per rank, host APIs only (no kernels of
 * its own, so no nvcc):
 *   - one CUDA stream (non-blocking) per GPU stream of the rank's class; host streams stay host
 *     threads, whose ops wait their modelled time as in the MPI backend;
 *   - compute: the op's kernel plan (run_kernel_plan), in the op's dtype (bf16, fp16, tf32,
 *     fp32; fp32 accumulation): with a kernel list (schedule version 3) each GEMM at its own
 *     shape, cublasGemmStridedBatchedEx where batch > 1, cublasGemmEx otherwise; fused attention
 *     and convolutions (kernels of no GEMM shape) as their FLOP-equivalent square GEMMs, not as
 *     FlashAttention or cuDNN kernels; memory-bound kernels as a device-to-device copy of their
 *     bytes. Without a list (versions 1-2) the plan's one GEMM is T x T x K, T the largest power
 *     of two up to 4096 that the op's FLOPs allow (run_gemm_plan), and its bytes one copy;
 *   - collectives: ncclAllGather, ncclReduceScatter, ncclAllReduce, ncclBroadcast in place;
 *     all-to-all as grouped ncclSend/ncclRecv (as PyTorch does). One communicator per (group,
 *     stream) used in the schedule, made with ncclCommInitRank from a unique id broadcast over
 *     the group's MPI communicator;
 *   - send/recv: ncclSend/ncclRecv on a two-rank communicator per (sender, receiver, sending
 *     stream, receiving stream), as ProcessGroupNCCL makes one per pair: a communicator is never
 *     used by two threads, and NCCL matches a pair's messages in issue order;
 *   - host <-> device copies (CPU offload): cudaMemcpyAsync from/to pinned host memory;
 *   - dependencies across streams: cudaStreamWaitEvent on the end event of the op waited for; a
 *     host op waiting for a GPU op synchronises on that event;
 *   - timing: every GPU op between two cudaEvents, read after the iteration relative to an event
 *     recorded when the iteration starts, so a collective's time runs from the rank's arrival to
 *     its end, as in the MPI backend and the simulator.
 * Every CUDA, cuBLAS and NCCL call is checked. Failures while setting up are returned; failures
 * inside a running iteration print one message naming the rank, op and call, and abort the job. */
#include "run.h"
#include "run_plan.h"

#include "../util/cfg.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <nccl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define COPY_MAX ((size_t)256 << 20) /* device-to-device copies in pieces of at most this */
#define ID_TAG 7101                  /* MPI tag of the unique ids of two-rank communicators */

/* The GPU this process uses, chosen by run_cuda_unavailable. */
static int chosen_device = -1;

typedef struct {
    RunBackend be;
    const IrSchedule *s;
    const IrClass *c;
    int rank;
    RunComms *mpi;
    RunCommPlan plan;
    ncclComm_t *coll_comm, *p2p_comm; /* of plan.coll, plan.p2p */
    ncclComm_t *op_comm;              /* per op: its communicator (collectives, send/recv) */
    RunKernelPlan *kplan;             /* per op: compute ops' (gemms NULL: other ops) */
    cudaEvent_t *ev_start, *ev_end;   /* per op on a GPU stream */
    cudaEvent_t t0;
    cudaStream_t t0_stream;
} CudaBackend;

typedef struct {
    int stream;
    bool host;
    cudaStream_t cs;
    cublasHandle_t blas;
    char *buf; /* collectives and send/recv (twice the largest for all-to-all) */
    size_t buf_bytes;
    void *a, *b, *c; /* GEMM operands */
    char *copy_src, *copy_dst;
    size_t copy_bytes;
    char *dev_mem, *host_mem; /* host <-> device copies; host_mem pinned */
    size_t mem_bytes;
} CudaStream;

/* --- errors ---------------------------------------------------------------------------------- */

static const char *blas_status(cublasStatus_t st)
{
    switch (st) {
    case CUBLAS_STATUS_NOT_INITIALIZED:
        return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED:
        return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE:
        return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH:
        return "CUBLAS_STATUS_ARCH_MISMATCH (dtype not supported by this GPU)";
    case CUBLAS_STATUS_EXECUTION_FAILED:
        return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED:
        return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_INTERNAL_ERROR:
        return "CUBLAS_STATUS_INTERNAL_ERROR";
    default:
        return "cuBLAS error";
    }
}

/* A failure inside a running iteration: the other ranks would wait for this one forever. */
static void die(const CudaBackend *b, int op, const char *call, const char *why)
{
    if (op >= 0) {
        const IrOp *o = ir_op(b->c, op);
        fprintf(stderr,
                "fsdprun-nccl: rank %d: op %d (%s %s on stream %s): %s: %s; aborting the job\n",
                b->rank, op, ir_op_kind_name(o->kind), ir_class_string(b->c, o->name),
                b->c->streams[o->stream].name, call, why);
    } else {
        fprintf(stderr, "fsdprun-nccl: rank %d: %s: %s; aborting the job\n", b->rank, call, why);
    }
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* Inside a running iteration every call is checked: `ok` is the call's success value, `why`
 * turns a failure into its message. The call's text is taken before macro expansion. */
#define MUST_(b, op, type, ok, why, call, text)                                                    \
    do {                                                                                           \
        type r_ = (call);                                                                          \
        if (r_ != (ok))                                                                            \
            die(b, op, text, why(r_));                                                             \
    } while (0)
#define CUDA_MUST(b, op, call)                                                                     \
    MUST_(b, op, cudaError_t, cudaSuccess, cudaGetErrorString, call, #call)
#define NCCL_MUST(b, op, call)                                                                     \
    MUST_(b, op, ncclResult_t, ncclSuccess, ncclGetErrorString, call, #call)
#define BLAS_MUST(b, op, call)                                                                     \
    MUST_(b, op, cublasStatus_t, CUBLAS_STATUS_SUCCESS, blas_status, call, #call)

/* Setting up: a failure is returned (run_execute stops every rank). */
static bool cuda_ok(cudaError_t e, int rank, const char *what, GError **error)
{
    if (e == cudaSuccess)
        return true;
    g_set_error(error, FSD_ERROR, FSD_ERROR_FAILED, "rank %d: %s: %s", rank, what,
                cudaGetErrorString(e));
    return false;
}

/* --- which GPU ------------------------------------------------------------------------------- */

char *run_cuda_unavailable(char **device)
{
    int rank = 0, world = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    int local = 0, local_n = 1;
    MPI_Comm_rank(node, &local);
    MPI_Comm_size(node, &local_n);
    char *why = NULL;
    int n = 0;
    unsigned char uuid[16] = {0};
    cudaError_t e = cudaGetDeviceCount(&n);
    const char *visible = g_getenv("CUDA_VISIBLE_DEVICES");
    if (e != cudaSuccess) {
        why = g_strdup_printf("no CUDA device: rank %d on %s: cudaGetDeviceCount: %s%s", rank, host,
                              cudaGetErrorString(e),
                              e == cudaErrorInsufficientDriver
                                  ? " (no NVIDIA driver here, or one older than this CUDA)"
                                  : "");
    } else if (n == 0) {
        why = g_strdup_printf("no CUDA device: rank %d on %s sees none (CUDA_VISIBLE_DEVICES=%s)",
                              rank, host, visible ? visible : "unset");
    } else {
        /* srun --gpus-per-task=1 shows each rank one GPU; mpirun shows all: pick by node rank */
        int dev = local % n;
        struct cudaDeviceProp prop;
        e = cudaSetDevice(dev);
        if (e == cudaSuccess)
            e = cudaGetDeviceProperties(&prop, dev);
        if (e != cudaSuccess) {
            why = g_strdup_printf("no CUDA device: rank %d on %s: device %d: %s", rank, host, dev,
                                  cudaGetErrorString(e));
        } else {
            chosen_device = dev;
            memcpy(uuid, prop.uuid.bytes, sizeof uuid);
            *device = g_strdup(prop.name);
        }
    }
    /* two ranks of a node on one GPU: NCCL refuses it, and the timings would be shared */
    unsigned char *all = g_new0(unsigned char, 16 * (size_t)local_n);
    MPI_Allgather(uuid, 16, MPI_BYTE, all, 16, MPI_BYTE, node);
    for (int r = 0; r < local && !why && chosen_device >= 0; r++)
        if (memcmp(all + 16 * r, uuid, 16) == 0)
            why =
                g_strdup_printf("rank %d on %s: shares its GPU (%s) with node rank %d: launch one "
                                "rank per GPU (srun --ntasks-per-node=GPUS --gpus-per-task=1)",
                                rank, host, *device, r);
    g_free(all);
    MPI_Comm_free(&node);
    /* the first rank that cannot run tells rank 0 why; every rank learns that one cannot */
    int first = why ? rank : world, count = why ? 1 : 0;
    MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &count, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (first == world)
        return NULL;
    if (first != 0 && rank == first)
        MPI_Send(why, (int)strlen(why) + 1, MPI_CHAR, 0, ID_TAG, MPI_COMM_WORLD);
    if (first != 0 && rank == 0) {
        MPI_Status st;
        int len = 0;
        MPI_Probe(first, ID_TAG, MPI_COMM_WORLD, &st);
        MPI_Get_count(&st, MPI_CHAR, &len);
        g_free(why);
        why = g_malloc0((size_t)len + 1);
        MPI_Recv(why, len, MPI_CHAR, first, ID_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    char *msg = g_strdup_printf("%s (%d of %d ranks cannot run; fsdprun-nccl needs one GPU per "
                                "rank, fsdprun runs on CPUs)",
                                why ? why : "another rank has no GPU", count, world);
    g_free(why);
    return msg;
}

/* --- communicators -------------------------------------------------------------------------- */

/* Makes the plan's communicators (run_plan.h). Collective: every rank runs this, in the plan's
 * global order. */
static void make_comms(CudaBackend *b)
{
    for (guint i = 0; i < b->plan.coll->len; i++) {
        const RunCollKey *k = &g_array_index(b->plan.coll, RunCollKey, i);
        MPI_Comm g = b->mpi->group_comm[k->group];
        int grank, gn;
        MPI_Comm_rank(g, &grank);
        MPI_Comm_size(g, &gn);
        ncclUniqueId id;
        if (grank == 0)
            NCCL_MUST(b, -1, ncclGetUniqueId(&id));
        MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, g);
        NCCL_MUST(b, -1, ncclCommInitRank(&b->coll_comm[i], gn, id, grank));
    }
    for (guint i = 0; i < b->plan.p2p->len; i++) {
        const RunP2pKey *k = &g_array_index(b->plan.p2p, RunP2pKey, i);
        bool src = k->src == b->rank;
        ncclUniqueId id;
        if (src) {
            NCCL_MUST(b, -1, ncclGetUniqueId(&id));
            MPI_Send(&id, sizeof id, MPI_BYTE, k->dst, ID_TAG, b->mpi->p2p);
        } else {
            MPI_Recv(&id, sizeof id, MPI_BYTE, k->src, ID_TAG, b->mpi->p2p, MPI_STATUS_IGNORE);
        }
        /* the sender is rank 0 of the pair */
        NCCL_MUST(b, -1, ncclCommInitRank(&b->p2p_comm[i], 2, id, src ? 0 : 1));
    }
    for (int i = 0; i < b->plan.n_ops; i++) {
        IrOpKind kind = ir_op(b->c, i)->kind;
        int k = b->plan.op_key[i];
        if (k >= 0)
            b->op_comm[i] = kind == IR_OP_COLL ? b->coll_comm[k] : b->p2p_comm[k];
    }
}

/* --- compute --------------------------------------------------------------------------------- */

static void dtype_of(HwDtype d, cudaDataType *t, cublasComputeType_t *ct, size_t *size)
{
    switch (d) {
    case HW_DTYPE_FP8: /* fp8 (--fp8-format) is run as bf16: fsdprun has no fp8 scaling recipe
                        * (amax history, per-tensor scales), so its GEMMs time bf16's */
    case HW_DTYPE_BF16:
        *t = CUDA_R_16BF, *ct = CUBLAS_COMPUTE_32F, *size = 2;
        break;
    case HW_DTYPE_FP16:
        *t = CUDA_R_16F, *ct = CUBLAS_COMPUTE_32F, *size = 2;
        break;
    case HW_DTYPE_TF32:
        *t = CUDA_R_32F, *ct = CUBLAS_COMPUTE_32F_FAST_TF32, *size = 4;
        break;
    default:
        *t = CUDA_R_32F, *ct = CUBLAS_COMPUTE_32F, *size = 4;
        break;
    }
}

static ncclDataType_t nccl_dtype(HwDtype d, size_t *size)
{
    switch (d) {
    case HW_DTYPE_BF16:
        *size = 2;
        return ncclBfloat16;
    case HW_DTYPE_FP16:
        *size = 2;
        return ncclFloat16;
    default:
        *size = 4;
        return ncclFloat32;
    }
}

/* Elements per rank of a collective of `bytes` (the full array) over n ranks. */
static size_t coll_chunk(const IrOp *op, int n, size_t *elem)
{
    nccl_dtype((HwDtype)op->dtype, elem);
    size_t elems = (size_t)((op->u.coll.bytes + *elem - 1) / *elem);
    return (elems + (size_t)n - 1) / (size_t)n;
}

/* Operands of small random values, so that the GEMMs draw the power of real data (an all-zero
 * GEMM runs faster on a power-limited GPU). */
static bool fill_random(void *dev, size_t bytes, int rank, GError **error)
{
    uint16_t *h = g_malloc(bytes);
    size_t n = bytes / 2;
    guint32 x = 12345u + (guint32)rank;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        /* 0x3d00-0x3eff with a random sign: as bf16 |v| in [1/32, 1/2), as fp16 in [1.25, 2),
         * as the high half of an fp32 small numbers too: never NaN or Inf */
        h[i] = (uint16_t)(((x >> 16) & 0x8000) | (0x3d00 + ((x >> 8) & 0x1ff)));
    }
    bool ok = cuda_ok(cudaMemcpy(dev, h, n * 2, cudaMemcpyHostToDevice), rank,
                      "cudaMemcpy of the GEMM operands", error);
    g_free(h);
    return ok;
}

/* --- the backend ----------------------------------------------------------------------------- */

static void *stream_new(RunBackend *be, const RunProgram *p, int stream, const int *ops, int n_ops,
                        GError **error)
{
    CudaBackend *b = (CudaBackend *)be;
    CudaStream *st = g_new0(CudaStream, 1);
    st->stream = stream;
    st->host = p->c->streams[stream].host;
    if (st->host)
        return st;
    size_t gemm_a = 0, gemm_b = 0, gemm_c = 0;
    bool blas = false;
    for (int k = 0; k < n_ops; k++) {
        const IrOp *op = ir_op(p->c, ops[k]);
        if (op->kind == IR_OP_COLL) {
            int n = p->s->groups[op->u.coll.group].size;
            size_t elem, chunk = coll_chunk(op, n, &elem);
            size_t bytes = chunk * elem * (size_t)n;
            st->buf_bytes =
                MAX(st->buf_bytes, op->u.coll.coll == IR_COLL_ALLTOALL ? 2 * bytes : bytes);
        } else if (op->kind == IR_OP_SEND || op->kind == IR_OP_RECV) {
            st->buf_bytes = MAX(st->buf_bytes, (size_t)op->u.p2p.bytes);
        } else if (op->kind == IR_OP_MEMCPY) {
            st->mem_bytes = MAX(st->mem_bytes, (size_t)op->u.memcpy.bytes);
        } else if (op->kind == IR_OP_COMPUTE) {
            cudaDataType t;
            cublasComputeType_t ct;
            size_t size;
            dtype_of((HwDtype)op->dtype, &t, &ct, &size);
            RunKernelPlan *kp = &b->kplan[ops[k]];
            run_kernel_plan(p->c, op, kp);
            for (guint j = 0; j < kp->gemms->len; j++) {
                const RunGemm *x = &g_array_index(kp->gemms, RunGemm, j);
                size_t m = (size_t)x->m, n = (size_t)x->n, kk = (size_t)x->k;
                size_t batch = (size_t)x->batch;
                blas = true;
                gemm_a = MAX(gemm_a, m * kk * batch * size);
                gemm_b = MAX(gemm_b, kk * n * batch * size);
                gemm_c = MAX(gemm_c, m * n * batch * size);
            }
            st->copy_bytes = MAX(st->copy_bytes, MIN(COPY_MAX, (size_t)(kp->copy_bytes / 2)));
        }
    }
    const char *name = p->c->streams[stream].name;
    char *what = g_strdup_printf("stream %s: cudaStreamCreateWithFlags", name);
    bool ok =
        cuda_ok(cudaStreamCreateWithFlags(&st->cs, cudaStreamNonBlocking), b->rank, what, error);
    g_free(what);
    struct {
        void **ptr;
        size_t bytes;
    } allocs[] = {{(void **)&st->buf, st->buf_bytes},
                  {&st->a, gemm_a},
                  {&st->b, gemm_b},
                  {&st->c, gemm_c},
                  {(void **)&st->copy_src, st->copy_bytes},
                  {(void **)&st->copy_dst, st->copy_bytes},
                  {(void **)&st->dev_mem, st->mem_bytes}};
    for (size_t k = 0; ok && k < G_N_ELEMENTS(allocs); k++) {
        if (!allocs[k].bytes)
            continue;
        what = g_strdup_printf("stream %s: cudaMalloc of %zu bytes", name, allocs[k].bytes);
        ok = cuda_ok(cudaMalloc(allocs[k].ptr, allocs[k].bytes), b->rank, what, error) &&
             cuda_ok(cudaMemset(*allocs[k].ptr, 0, allocs[k].bytes), b->rank, what, error);
        g_free(what);
    }
    if (ok && st->mem_bytes) {
        what = g_strdup_printf("stream %s: cudaMallocHost of %zu bytes", name, st->mem_bytes);
        ok = cuda_ok(cudaMallocHost((void **)&st->host_mem, st->mem_bytes), b->rank, what, error);
        g_free(what);
    }
    ok = ok && (!gemm_a || fill_random(st->a, gemm_a, b->rank, error)) &&
         (!gemm_b || fill_random(st->b, gemm_b, b->rank + 7919, error));
    if (ok && blas) {
        cublasStatus_t bs = cublasCreate(&st->blas);
        if (bs == CUBLAS_STATUS_SUCCESS)
            bs = cublasSetStream(st->blas, st->cs);
        if (bs != CUBLAS_STATUS_SUCCESS) {
            g_set_error(error, FSD_ERROR, FSD_ERROR_FAILED, "rank %d: stream %s: cuBLAS: %s",
                        b->rank, name, blas_status(bs));
            ok = false;
        }
    }
    if (!ok) {
        be->stream_free(be, st);
        return NULL;
    }
    return st;
}

static void stream_free(RunBackend *be, void *state)
{
    CudaStream *st = state;
    if (st->blas)
        cublasDestroy(st->blas);
    void *dev[] = {st->buf, st->a, st->b, st->c, st->copy_src, st->copy_dst, st->dev_mem};
    for (size_t k = 0; k < G_N_ELEMENTS(dev); k++)
        if (dev[k])
            cudaFree(dev[k]);
    if (st->host_mem)
        cudaFreeHost(st->host_mem);
    if (st->cs)
        cudaStreamDestroy(st->cs);
    g_free(st);
}

static void thread_init(RunBackend *be)
{
    CUDA_MUST((CudaBackend *)be, -1, cudaSetDevice(chosen_device));
}

static bool on_gpu(const IrClass *c, int op)
{
    return !c->streams[ir_op(c, op)->stream].host;
}

static void wait_deps(RunBackend *be, void *state, const RunProgram *p, int i, const int *deps,
                      int n_deps)
{
    CudaBackend *b = (CudaBackend *)be;
    CudaStream *st = state;
    for (int k = 0; k < n_deps; k++) {
        int d = deps[k];
        if (!on_gpu(p->c, d))
            continue; /* a host op: done already */
        if (st->host)
            CUDA_MUST(b, i, cudaEventSynchronize(b->ev_end[d]));
        else if (ir_op(p->c, d)->stream != st->stream) /* the same stream runs in order */
            CUDA_MUST(b, i, cudaStreamWaitEvent(st->cs, b->ev_end[d], 0));
    }
}

/* The op's kernel plan: each GEMM at its shape (operands column-major, packed: lda = m, ldb = k,
 * ldc = m; batched ones strided by a whole matrix), then the memory-bound bytes as copies, half
 * read and half written. */
static void run_compute(CudaBackend *b, CudaStream *st, int i, const IrOp *op)
{
    const RunKernelPlan *kp = &b->kplan[i];
    cudaDataType t;
    cublasComputeType_t ct;
    size_t size;
    dtype_of((HwDtype)op->dtype, &t, &ct, &size);
    const float one = 1.0f, zero = 0.0f;
    for (guint j = 0; j < kp->gemms->len; j++) {
        const RunGemm *g = &g_array_index(kp->gemms, RunGemm, j);
        long long sa = (long long)g->m * g->k, sb = (long long)g->k * g->n;
        long long sc = (long long)g->m * g->n;
        for (int r = 0; r < g->reps; r++) {
            if (g->batch > 1)
                BLAS_MUST(b, i,
                          cublasGemmStridedBatchedEx(st->blas, CUBLAS_OP_N, CUBLAS_OP_N, g->m, g->n,
                                                     g->k, &one, st->a, t, g->m, sa, st->b, t, g->k,
                                                     sb, &zero, st->c, t, g->m, sc, g->batch, ct,
                                                     CUBLAS_GEMM_DEFAULT));
            else
                BLAS_MUST(b, i,
                          cublasGemmEx(st->blas, CUBLAS_OP_N, CUBLAS_OP_N, g->m, g->n, g->k, &one,
                                       st->a, t, g->m, st->b, t, g->k, &zero, st->c, t, g->m, ct,
                                       CUBLAS_GEMM_DEFAULT));
        }
    }
    size_t left = (size_t)(kp->copy_bytes / 2);
    while (left > 0 && st->copy_bytes > 0) {
        size_t n = MIN(left, st->copy_bytes);
        CUDA_MUST(b, i,
                  cudaMemcpyAsync(st->copy_dst, st->copy_src, n, cudaMemcpyDeviceToDevice, st->cs));
        left -= n;
    }
}

static void run_coll_op(CudaBackend *b, CudaStream *st, int i, const IrOp *op)
{
    int n = b->s->groups[op->u.coll.group].size;
    if (n < 2 || op->u.coll.bytes == 0)
        return;
    ncclComm_t comm = b->op_comm[i];
    int r = 0;
    NCCL_MUST(b, i, ncclCommUserRank(comm, &r));
    size_t elem;
    ncclDataType_t t = nccl_dtype((HwDtype)op->dtype, &elem);
    size_t chunk = coll_chunk(op, n, &elem);
    char *buf = st->buf, *mine = buf + (size_t)r * chunk * elem;
    switch ((IrCollKind)op->u.coll.coll) {
    case IR_COLL_ALLGATHER:
        NCCL_MUST(b, i, ncclAllGather(mine, buf, chunk, t, comm, st->cs));
        break;
    case IR_COLL_REDUCE_SCATTER:
        NCCL_MUST(b, i, ncclReduceScatter(buf, mine, chunk, t, ncclSum, comm, st->cs));
        break;
    case IR_COLL_ALLREDUCE:
        NCCL_MUST(b, i, ncclAllReduce(buf, buf, chunk * (size_t)n, t, ncclSum, comm, st->cs));
        break;
    case IR_COLL_BROADCAST:
        NCCL_MUST(b, i, ncclBroadcast(buf, buf, chunk * (size_t)n, t, 0, comm, st->cs));
        break;
    case IR_COLL_ALLTOALL:
    default: {
        char *out = buf + chunk * elem * (size_t)n;
        NCCL_MUST(b, i, ncclGroupStart());
        for (int peer = 0; peer < n; peer++) {
            NCCL_MUST(b, i,
                      ncclSend(buf + (size_t)peer * chunk * elem, chunk, t, peer, comm, st->cs));
            NCCL_MUST(b, i,
                      ncclRecv(out + (size_t)peer * chunk * elem, chunk, t, peer, comm, st->cs));
        }
        NCCL_MUST(b, i, ncclGroupEnd());
        break;
    }
    }
}

static void run_op(RunBackend *be, void *state, const RunProgram *p, int i, int64_t start)
{
    CudaBackend *b = (CudaBackend *)be;
    CudaStream *st = state;
    const IrOp *op = ir_op(p->c, i);
    if (st->host) {
        /* host work waits its modelled time, as in the MPI backend; alloc/free take none (the
         * buffers are allocated once, before timing) */
        if (p->dur_ns[i] > 0)
            run_sleep_until_ns(start + p->dur_ns[i]);
        return;
    }
    CUDA_MUST(b, i, cudaEventRecord(b->ev_start[i], st->cs));
    switch (op->kind) {
    case IR_OP_COMPUTE:
        run_compute(b, st, i, op);
        break;
    case IR_OP_COLL:
        run_coll_op(b, st, i, op);
        break;
    case IR_OP_SEND:
        NCCL_MUST(b, i,
                  ncclSend(st->buf, (size_t)op->u.p2p.bytes, ncclInt8, 1, b->op_comm[i], st->cs));
        break;
    case IR_OP_RECV:
        NCCL_MUST(b, i,
                  ncclRecv(st->buf, (size_t)op->u.p2p.bytes, ncclInt8, 0, b->op_comm[i], st->cs));
        break;
    case IR_OP_MEMCPY:
        if (op->u.memcpy.bytes)
            CUDA_MUST(b, i,
                      cudaMemcpyAsync(op->u.memcpy.to_device ? st->dev_mem : st->host_mem,
                                      op->u.memcpy.to_device ? st->host_mem : st->dev_mem,
                                      (size_t)op->u.memcpy.bytes,
                                      op->u.memcpy.to_device ? cudaMemcpyHostToDevice
                                                             : cudaMemcpyDeviceToHost,
                                      st->cs));
        break;
    case IR_OP_HOST: /* a host op on a GPU stream: the schedule never makes one; wait its time */
        run_sleep_until_ns(start + p->dur_ns[i]);
        break;
    default: /* alloc/free on a GPU stream: its end event still orders what waits for it */
        break;
    }
    CUDA_MUST(b, i, cudaEventRecord(b->ev_end[i], st->cs));
}

static bool iter_begin(RunBackend *be, const RunProgram *p, GError **error)
{
    CudaBackend *b = (CudaBackend *)be;
    return cuda_ok(cudaEventRecord(b->t0, b->t0_stream), b->rank, "cudaEventRecord", error);
}

/* Waits for the device, then reads every GPU op's events against the iteration's start. */
static bool iter_end(RunBackend *be, const RunProgram *p, int64_t *start_ns, int64_t *end_ns,
                     GError **error)
{
    CudaBackend *b = (CudaBackend *)be;
    if (!cuda_ok(cudaDeviceSynchronize(), b->rank, "cudaDeviceSynchronize after an iteration",
                 error))
        return false;
    for (int i = 0; i < p->n_ops; i++) {
        if (!on_gpu(p->c, i))
            continue;
        float s = 0, e = 0;
        if (!cuda_ok(cudaEventElapsedTime(&s, b->t0, b->ev_start[i]), b->rank,
                     "cudaEventElapsedTime", error) ||
            !cuda_ok(cudaEventElapsedTime(&e, b->t0, b->ev_end[i]), b->rank, "cudaEventElapsedTime",
                     error))
            return false;
        start_ns[i] = (int64_t)llround((double)s * 1e6);
        end_ns[i] = (int64_t)llround((double)e * 1e6);
    }
    return true;
}

/* Whether every rank set up; if not, every rank's error is the first failing rank's, so that one
 * message is printed (run_main.c: rank 0 prints; another rank only a failure of its own). The
 * plan's checks of send/recv are per rank: a broken channel between stages 2 and 3 fails there, not
 * on rank 0, whose "failed elsewhere" would otherwise be the only message. Collective. */
static bool setup_agreed(int rank, bool ok, GError **error)
{
    int world = 1, first = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    first = ok ? world : rank;
    MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == world)
        return true;
    /* the code and message of the first failure, to every rank */
    int head[2] = {0, 0};
    char *msg = NULL;
    if (rank == first) {
        bool known = error && *error && (*error)->domain == FSD_ERROR;
        head[0] = known ? (*error)->code : FSD_ERROR_FAILED;
        msg = g_strdup(error && *error ? (*error)->message : "could not set up the nccl backend");
        head[1] = (int)strlen(msg) + 1;
    }
    MPI_Bcast(head, 2, MPI_INT, first, MPI_COMM_WORLD);
    if (rank != first)
        msg = g_malloc0((size_t)head[1]);
    MPI_Bcast(msg, head[1], MPI_CHAR, first, MPI_COMM_WORLD);
    g_clear_error(error);
    /* bad input: every rank exits with status 2, rank 0 says why; a failure: status 1, rank 0 says
     * which rank failed (its message names it) */
    if (head[0] == FSD_ERROR_INPUT || rank == 0)
        g_set_error_literal(error, FSD_ERROR, head[0], msg);
    else
        g_set_error(error, RUN_ERROR_ELSEWHERE, 0,
                    "another rank could not set up the nccl backend (see rank 0's message)");
    g_free(msg);
    return false;
}

static void backend_free(RunBackend *be)
{
    CudaBackend *b = (CudaBackend *)be;
    for (int i = 0; b->kplan && i < ir_class_n_ops(b->c); i++)
        run_kernel_plan_clear(&b->kplan[i]);
    g_free(b->kplan);
    for (int i = 0; b->ev_start && i < ir_class_n_ops(b->c); i++) {
        if (b->ev_start[i])
            cudaEventDestroy(b->ev_start[i]);
        if (b->ev_end[i])
            cudaEventDestroy(b->ev_end[i]);
    }
    if (b->t0)
        cudaEventDestroy(b->t0);
    if (b->t0_stream)
        cudaStreamDestroy(b->t0_stream);
    for (guint i = 0; b->coll_comm && i < b->plan.coll->len; i++)
        if (b->coll_comm[i])
            ncclCommDestroy(b->coll_comm[i]);
    for (guint i = 0; b->p2p_comm && i < b->plan.p2p->len; i++)
        if (b->p2p_comm[i])
            ncclCommDestroy(b->p2p_comm[i]);
    run_comm_plan_clear(&b->plan);
    g_free(b->coll_comm), g_free(b->p2p_comm);
    g_free(b->op_comm), g_free(b->ev_start), g_free(b->ev_end);
    g_free(b);
}

RunBackend *run_backend_cuda_new(const IrSchedule *s, int rank, RunComms *comms,
                                 const RunOptions *opt, GError **error)
{
    CudaBackend *b = g_new0(CudaBackend, 1);
    b->be = (RunBackend){.name = "nccl",
                         .stream_new = stream_new,
                         .stream_free = stream_free,
                         .thread_init = thread_init,
                         .wait_deps = wait_deps,
                         .run = run_op,
                         .iter_begin = iter_begin,
                         .iter_end = iter_end,
                         .free = backend_free};
    b->s = s, b->rank = rank, b->mpi = comms;
    bool ok = run_comm_plan(s, rank, &b->plan, error);
    if (ok) {
        b->c = s->classes[ir_class_of_rank(s, rank)];
        int n = ir_class_n_ops(b->c);
        b->coll_comm = g_new0(ncclComm_t, MAX(b->plan.coll->len, 1));
        b->p2p_comm = g_new0(ncclComm_t, MAX(b->plan.p2p->len, 1));
        b->op_comm = g_new0(ncclComm_t, MAX(n, 1));
        b->kplan = g_new0(RunKernelPlan, MAX(n, 1));
        b->ev_start = g_new0(cudaEvent_t, MAX(n, 1));
        b->ev_end = g_new0(cudaEvent_t, MAX(n, 1));
        ok = cuda_ok(cudaSetDevice(chosen_device), rank, "cudaSetDevice", error) &&
             cuda_ok(cudaStreamCreateWithFlags(&b->t0_stream, cudaStreamNonBlocking), rank,
                     "cudaStreamCreateWithFlags", error) &&
             cuda_ok(cudaEventCreate(&b->t0), rank, "cudaEventCreate", error);
        for (int i = 0; ok && i < n; i++)
            if (on_gpu(b->c, i))
                ok = cuda_ok(cudaEventCreate(&b->ev_start[i]), rank, "cudaEventCreate", error) &&
                     cuda_ok(cudaEventCreate(&b->ev_end[i]), rank, "cudaEventCreate", error);
    }
    /* no rank makes communicators unless every rank can: ncclCommInitRank would wait forever */
    if (!setup_agreed(rank, ok, error)) {
        backend_free(&b->be);
        return NULL;
    }
    make_comms(b);
    (void)opt;
    return &b->be;
}
