/* run_mpi: fsdprun's MPI backend (see run.h): buffers in host memory, collectives over MPI
 * (run_coll.c), send/recv with MPI point-to-point, compute emulated (the modelled time waited) or
 * run as OpenBLAS sgemm (gemm). Moved out of run_exec.c unchanged, behind the RunBackend
 * interface. */
#include "run.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* GEMM mode runs the op's FLOPs as square sgemm tiles of this size: the IR keeps FLOPs and bytes,
 * not the GEMM's shape. 256 is large enough for OpenBLAS to reach its single-core rate. */
#define GEMM_TILE 256
#define COPY_BLOCK (8u << 20)

typedef struct {
    RunBackend be;
    RunComms *comms;
    int tag_ub; /* MPI_TAG_UB: send/recv tags are taken modulo tag_ub + 1 */
} MpiBackend;

typedef struct {
    char *buf, *scratch; /* collective / p2p buffers, sized for the largest op */
    size_t buf_bytes, scratch_bytes;
    float *a, *b, *c; /* GEMM tiles */
    char *copy_src, *copy_dst;
} StreamCtx;

static void *xmalloc_touched(size_t bytes)
{
    char *p = g_malloc(MAX(bytes, 64));
    memset(p, 0, MAX(bytes, 64)); /* first touch now, not inside a timed iteration */
    return p;
}

static void *stream_buffers(RunBackend *be, const RunProgram *x, int stream, const int *ops,
                            int n_ops, GError **error)
{
    StreamCtx *sc = g_new0(StreamCtx, 1);
    for (int k = 0; k < n_ops; k++) {
        const IrOp *op = ir_op(x->c, ops[k]);
        if (op->kind == IR_OP_COLL) {
            int n = x->s->groups[op->u.coll.group].size;
            size_t b = run_coll_buffer_bytes((IrCollKind)op->u.coll.coll, op->u.coll.bytes, n);
            sc->buf_bytes = MAX(sc->buf_bytes, b);
            sc->scratch_bytes = MAX(sc->scratch_bytes, b / (size_t)n);
        } else if (op->kind == IR_OP_SEND || op->kind == IR_OP_RECV) {
            sc->buf_bytes = MAX(sc->buf_bytes, (size_t)op->u.p2p.bytes);
        }
    }
    sc->buf = xmalloc_touched(sc->buf_bytes);
    sc->scratch =
        xmalloc_touched(MAX(sc->scratch_bytes, sc->buf_bytes)); /* MPI reduce_scatter, alltoall */
    if (x->opt->mode == RUN_MODE_GEMM) {
        size_t tile = (size_t)GEMM_TILE * GEMM_TILE * sizeof(float);
        sc->a = xmalloc_touched(tile);
        sc->b = xmalloc_touched(tile);
        sc->c = xmalloc_touched(tile);
        sc->copy_src = xmalloc_touched(COPY_BLOCK);
        sc->copy_dst = xmalloc_touched(COPY_BLOCK);
    }
    return sc;
}

static void stream_free(RunBackend *be, void *state)
{
    StreamCtx *sc = state;
    g_free(sc->buf), g_free(sc->scratch), g_free(sc->a), g_free(sc->b), g_free(sc->c);
    g_free(sc->copy_src), g_free(sc->copy_dst);
    g_free(sc);
}

/* gemm mode: the op's FLOPs as sgemm tiles, its memory traffic as copies (read + write). */
static void run_real_compute(StreamCtx *sc, double flops, double bytes)
{
    double tile_flops = 2.0 * GEMM_TILE * GEMM_TILE * GEMM_TILE;
    long tiles = lround(flops / tile_flops);
    for (long t = 0; t < tiles; t++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, GEMM_TILE, GEMM_TILE, GEMM_TILE,
                    1.0f, sc->a, GEMM_TILE, sc->b, GEMM_TILE, 0.0f, sc->c, GEMM_TILE);
    double left = bytes / 2;
    while (left >= 1) {
        size_t n = (size_t)MIN(left, (double)COPY_BLOCK);
        memcpy(sc->copy_dst, sc->copy_src, n);
        left -= (double)n;
    }
}

static void run_op(RunBackend *be, void *state, const RunProgram *x, int i, int64_t start)
{
    StreamCtx *sc = state;
    RunComms *comms = ((MpiBackend *)be)->comms;
    const IrOp *op = ir_op(x->c, i);
    bool real = x->opt->mode == RUN_MODE_GEMM;
    switch (op->kind) {
    case IR_OP_HOST:
        run_sleep_until_ns(start + x->dur_ns[i]);
        break;
    case IR_OP_COMPUTE:
        /* FLOPs and bytes, not the op's kernel list: a CPU cannot run a decoder layer's GEMM
         * shapes in anything like their GPU time, so --real-compute stays a FLOP-sized load */
        if (real)
            run_real_compute(sc, ir_op_compute(x->c, op)->flops, ir_op_compute(x->c, op)->bytes);
        else
            run_sleep_until_ns(start + x->dur_ns[i]);
        break;
    case IR_OP_MEMCPY:
        if (real)
            run_real_compute(sc, 0, 2.0 * (double)op->u.memcpy.bytes);
        else
            run_sleep_until_ns(start + x->dur_ns[i]);
        break;
    case IR_OP_COLL:
        run_coll(x->opt->coll, (IrCollKind)op->u.coll.coll, op->u.coll.bytes,
                 comms->group_comm[op->u.coll.group], x->tag[i], sc->buf, sc->scratch,
                 x->opt->poll_us);
        break;
    case IR_OP_SEND:
    case IR_OP_RECV: {
        MPI_Request req;
        /* the schedule's tags tell apart every message of a step between two ranks (pp.c);
         * Open MPI's bound (2^31 - 1 over ob1) keeps them distinct */
        int peer = x->rank + op->u.p2p.peer_offset;
        int tag = (int)(op->u.p2p.tag % ((uint32_t)((MpiBackend *)be)->tag_ub + 1));
        if (op->kind == IR_OP_SEND)
            MPI_Isend(sc->buf, (int)op->u.p2p.bytes, MPI_BYTE, peer, tag, comms->p2p, &req);
        else
            MPI_Irecv(sc->buf, (int)op->u.p2p.bytes, MPI_BYTE, peer, tag, comms->p2p, &req);
        run_wait(1, &req, x->opt->poll_us);
        break;
    }
    default: /* alloc/free: the buffers above are allocated once, before timing */
        break;
    }
}

static void backend_free(RunBackend *be)
{
    g_free(be);
}

RunBackend *run_backend_mpi_new(RunComms *comms)
{
    MpiBackend *b = g_new0(MpiBackend, 1);
    b->be = (RunBackend){.name = "mpi",
                         .stream_new = stream_buffers,
                         .stream_free = stream_free,
                         .run = run_op,
                         .free = backend_free};
    b->comms = comms;
    int *tag_ub = NULL, has_tag_ub = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tag_ub, &has_tag_ub);
    b->tag_ub = has_tag_ub && tag_ub ? *tag_ub : 32767; /* the standard's minimum */
    return &b->be;
}
