/* run_plan: see run_plan.h. */
#include "run_plan.h"

#include "../hw/hw.h"
#include "../util/cfg.h"

#include <math.h>
#include <string.h>

RunGemmPlan run_gemm_plan(double flops)
{
    RunGemmPlan g = {0, 0, 0};
    if (!(flops >= 2.0 * 64 * 64))
        return g;
    g.t = 64;
    while (g.t < RUN_GEMM_T_MAX && 2.0 * (2.0 * g.t) * (2.0 * g.t) * (2.0 * g.t) <= flops)
        g.t *= 2;
    double k_total = flops / (2.0 * g.t * g.t);
    g.reps = (int)ceil(k_total / RUN_GEMM_K_MAX);
    double k = k_total / g.reps;
    /* multiples of 8 keep tensor cores aligned; below 64 the exact count matters more */
    g.k = k >= 64 ? (int)(8 * lround(k / 8)) : (int)MAX(1, lround(k));
    return g;
}

static void add_square(GArray *gemms, double flops)
{
    RunGemmPlan g = run_gemm_plan(flops);
    if (g.reps > 0) {
        RunGemm x = {g.t, g.t, g.k, 1, g.reps};
        g_array_append_val(gemms, x);
    }
}

static int whole(double x)
{
    return (int)MIN(MAX(1, llround(x)), INT32_MAX);
}

/* A GEMM of the list, split until each operand fits RUN_GEMM_OPERAND_MAX. */
static void add_gemm(GArray *gemms, const IrKernel *k)
{
    double m = k->shape[0], n = k->shape[1], kk = k->shape[2], batch = MAX(1, k->shape[3]);
    /* an fp8 record runs as bf16 (run_cuda.c dtype_of): its operands are sized at 2 bytes */
    HwDtype dtype = k->dtype == HW_DTYPE_FP8 ? HW_DTYPE_BF16 : (HwDtype)k->dtype;
    double reps = 1, size = hw_dtype_bytes(dtype);
    if (!(m >= 1 && n >= 1 && kk >= 1))
        return;
    if (k->share >= 1)
        reps = MAX(1, round(k->share));
    else
        m = MAX(1, ceil(m * k->share));
    double largest = MAX(m * kk, MAX(kk * n, m * n)) * size;
    if (batch * largest > RUN_GEMM_OPERAND_MAX) {
        double per = MAX(1, floor(RUN_GEMM_OPERAND_MAX / largest));
        double pieces = ceil(batch / per);
        batch = ceil(batch / pieces);
        reps *= pieces;
    }
    while (MAX(m * kk, MAX(kk * n, m * n)) * size > RUN_GEMM_OPERAND_MAX) {
        double *d = m >= n && m >= kk ? &m : n >= kk ? &n : &kk;
        *d = ceil(*d / 2);
        reps *= 2;
    }
    RunGemm g = {whole(m), whole(n), whole(kk), whole(batch), whole(reps)};
    g_array_append_val(gemms, g);
}

void run_kernel_plan(const IrClass *c, const IrOp *op, RunKernelPlan *plan)
{
    int n = 0;
    const IrCompute *p = ir_op_compute(c, op);
    const IrKernel *list = ir_kernels_of(c, p->kern_first, &n);
    plan->gemms = g_array_new(FALSE, FALSE, sizeof(RunGemm));
    plan->copy_bytes = 0;
    if (!list) {
        /* schedules before version 3 keep FLOPs and bytes only */
        add_square(plan->gemms, p->flops);
        plan->copy_bytes = p->bytes;
        return;
    }
    for (int i = 0; i < n; i++) {
        const IrKernel *k = &list[i];
        switch ((IrKernClass)k->cls) {
        case IR_KERN_GEMM:
            add_gemm(plan->gemms, k);
            break;
        case IR_KERN_CONV: { /* its implicit GEMM, once (shape[3] is its bytes, not a batch) */
            IrKernel gemm = *k;
            gemm.shape[3] = 1;
            add_gemm(plan->gemms, &gemm);
            break;
        }
        case IR_KERN_ATTENTION: {
            /* FlashAttention's FLOPs (kern.c's attention_flops): 4 b h s^2 d, halved under a
             * causal mask, s x window under a sliding one, 2.5 x in backward */
            double s = k->shape[1], w = k->shape[3] > 0 && k->shape[3] < s ? k->shape[3] : 0;
            double f = 4 * k->shape[0] * s * (w > 0 ? w : s) * k->shape[2];
            if (!w && (k->flags & IR_KERN_CAUSAL))
                f *= 0.5;
            if (k->flags & IR_KERN_BACKWARD)
                f *= 2.5;
            add_square(plan->gemms, f * k->share);
            break;
        }
        case IR_KERN_MEMORY:
            plan->copy_bytes += k->shape[0] * k->share;
            break;
        default:
            add_square(plan->gemms, k->shape[0] * k->share);
            break;
        }
    }
}

void run_kernel_plan_clear(RunKernelPlan *plan)
{
    if (plan->gemms)
        g_array_free(plan->gemms, TRUE);
    memset(plan, 0, sizeof *plan);
}

static const char *stream_of(const IrClass *c, const IrOp *op)
{
    return c->streams[op->stream].name;
}

/* Send/recv ops of the classes looked at, by (class, kind, peer offset, tag). */
typedef struct {
    const IrSchedule *s;
    GHashTable *index;   /* "class/kind/offset/tag" -> op + 1 */
    GHashTable *indexed; /* classes already in index */
} P2pIndex;

static int find_p2p(P2pIndex *ix, int ci, IrOpKind kind, int32_t offset, uint32_t tag)
{
    const IrClass *c = ix->s->classes[ci];
    if (!g_hash_table_contains(ix->indexed, GINT_TO_POINTER(ci))) {
        g_hash_table_add(ix->indexed, GINT_TO_POINTER(ci));
        for (int i = ir_class_n_ops(c) - 1; i >= 0; i--) { /* the first one wins */
            const IrOp *op = ir_op(c, i);
            if (op->kind == IR_OP_SEND || op->kind == IR_OP_RECV)
                g_hash_table_insert(ix->index,
                                    g_strdup_printf("%d/%d/%d/%u", ci, op->kind,
                                                    op->u.p2p.peer_offset, op->u.p2p.tag),
                                    GINT_TO_POINTER(i + 1));
        }
    }
    char *key = g_strdup_printf("%d/%d/%d/%u", ci, kind, offset, tag);
    int i = GPOINTER_TO_INT(g_hash_table_lookup(ix->index, key)) - 1;
    g_free(key);
    return i;
}

/* The partner of op i of class ci on rank `rank`: its class and op, or -1. */
static int partner(P2pIndex *ix, int rank, int ci, int i, int *pc)
{
    const IrOp *op = ir_op(ix->s->classes[ci], i);
    int peer = rank + op->u.p2p.peer_offset;
    *pc = peer >= 0 && peer < ix->s->world ? ir_class_of_rank(ix->s, peer) : -1;
    if (*pc < 0)
        return -1;
    return find_p2p(ix, *pc, op->kind == IR_OP_SEND ? IR_OP_RECV : IR_OP_SEND,
                    -op->u.p2p.peer_offset, op->u.p2p.tag);
}

static int coll_key_order(const void *a, const void *b)
{
    const RunCollKey *x = a, *y = b;
    return x->group != y->group ? (x->group > y->group) - (x->group < y->group)
                                : strcmp(x->stream, y->stream);
}

int run_p2p_key_order(const RunP2pKey *x, const RunP2pKey *y)
{
    int xl = MIN(x->src, x->dst), yl = MIN(y->src, y->dst);
    int xh = MAX(x->src, x->dst), yh = MAX(y->src, y->dst);
    if (xl != yl)
        return (xl > yl) - (xl < yl);
    if (xh != yh)
        return (xh > yh) - (xh < yh);
    if (x->src != y->src)
        return (x->src > y->src) - (x->src < y->src);
    int k = strcmp(x->sname, y->sname);
    return k ? k : strcmp(x->rname, y->rname);
}

static int p2p_key_cmp(const void *a, const void *b)
{
    return run_p2p_key_order(a, b);
}

static int key_index(GArray *keys, const void *key, size_t size, GCompareFunc cmp)
{
    for (guint j = 0; j < keys->len; j++)
        if (!cmp(keys->data + j * size, key))
            return (int)j;
    return -1;
}

/* The tags of the messages of channel k in the order its sender (or receiver) issues them. */
static GArray *channel_tags(P2pIndex *ix, const RunP2pKey *k, bool sender)
{
    const IrSchedule *s = ix->s;
    int me = sender ? k->src : k->dst;
    int ci = ir_class_of_rank(s, me);
    const IrClass *c = s->classes[ci];
    GArray *tags = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    int32_t off = sender ? k->dst - k->src : k->src - k->dst;
    for (int i = 0; i < ir_class_n_ops(c); i++) {
        const IrOp *op = ir_op(c, i);
        int pc;
        if (op->kind != (sender ? IR_OP_SEND : IR_OP_RECV) || op->u.p2p.peer_offset != off ||
            strcmp(stream_of(c, op), sender ? k->sname : k->rname))
            continue;
        int j = partner(ix, me, ci, i, &pc);
        if (j >= 0 && !strcmp(stream_of(s->classes[pc], ir_op(s->classes[pc], j)),
                              sender ? k->rname : k->sname))
            g_array_append_val(tags, op->u.p2p.tag);
    }
    return tags;
}

bool run_comm_plan(const IrSchedule *s, int rank, RunCommPlan *plan, GError **error)
{
    memset(plan, 0, sizeof *plan);
    plan->coll = g_array_new(FALSE, FALSE, sizeof(RunCollKey));
    plan->p2p = g_array_new(FALSE, FALSE, sizeof(RunP2pKey));
    int ci = ir_class_of_rank_or_error(s, rank, error);
    if (ci < 0)
        return false;
    /* every class's (group, stream): the members of a group must all make its communicators */
    for (int k = 0; k < s->n_classes; k++) {
        const IrClass *c = s->classes[k];
        for (int i = 0; i < ir_class_n_ops(c); i++) {
            const IrOp *op = ir_op(c, i);
            RunCollKey key = {op->u.coll.group, stream_of(c, op)};
            if (op->kind == IR_OP_COLL && s->groups[op->u.coll.group].size > 1 &&
                key_index(plan->coll, &key, sizeof key, coll_key_order) < 0)
                g_array_append_val(plan->coll, key);
        }
    }
    g_array_sort(plan->coll, coll_key_order);

    const IrClass *c = s->classes[ci];
    plan->n_ops = ir_class_n_ops(c);
    plan->op_key = g_new(int, MAX(plan->n_ops, 1));
    P2pIndex ix = {s, g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
                   g_hash_table_new(g_direct_hash, g_direct_equal)};
    bool ok = true;
    for (int i = 0; i < plan->n_ops && ok; i++) {
        const IrOp *op = ir_op(c, i);
        plan->op_key[i] = -1;
        if (op->kind == IR_OP_COLL) {
            RunCollKey key = {op->u.coll.group, stream_of(c, op)};
            plan->op_key[i] = key_index(plan->coll, &key, sizeof key, coll_key_order);
            continue;
        }
        if (op->kind != IR_OP_SEND && op->kind != IR_OP_RECV)
            continue;
        bool send = op->kind == IR_OP_SEND;
        int peer = rank + op->u.p2p.peer_offset, pc;
        int j = partner(&ix, rank, ci, i, &pc);
        if (j < 0 || ir_op(s->classes[pc], j)->u.p2p.bytes != op->u.p2p.bytes) {
            g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                        "schedule: op %d of rank %d (%s %s, %" G_GUINT64_FORMAT
                        " bytes, tag %u): expected a matching %s of the same size on rank %d, "
                        "got %s",
                        i, rank, ir_op_kind_name(op->kind), ir_class_string(c, op->name),
                        op->u.p2p.bytes, op->u.p2p.tag, send ? "recv" : "send", peer,
                        j < 0 ? "none" : "another size");
            ok = false;
            break;
        }
        const char *other = stream_of(s->classes[pc], ir_op(s->classes[pc], j));
        RunP2pKey key = {send ? rank : peer, send ? peer : rank, send ? stream_of(c, op) : other,
                         send ? other : stream_of(c, op)};
        int idx = key_index(plan->p2p, &key, sizeof key, p2p_key_cmp);
        if (idx < 0) {
            GArray *st = channel_tags(&ix, &key, true), *rt = channel_tags(&ix, &key, false);
            bool same =
                st->len == rt->len && !memcmp(st->data, rt->data, st->len * sizeof(uint32_t));
            g_array_free(st, TRUE), g_array_free(rt, TRUE);
            if (!same) {
                g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                            "schedule: messages from rank %d (stream %s) to rank %d (stream %s): "
                            "expected them received in the order they are sent (NCCL matches "
                            "them in order), got another order",
                            key.src, key.sname, key.dst, key.rname);
                ok = false;
                break;
            }
            idx = (int)plan->p2p->len;
            g_array_append_val(plan->p2p, key);
        }
        plan->op_key[i] = idx;
    }
    g_hash_table_destroy(ix.index), g_hash_table_destroy(ix.indexed);
    if (!ok)
        return false;
    /* sort the p2p keys into the global order, and renumber the ops' indices */
    int n = (int)plan->p2p->len;
    RunP2pKey *old = g_memdup2(plan->p2p->data, sizeof(RunP2pKey) * (size_t)MAX(n, 1));
    g_array_sort(plan->p2p, p2p_key_cmp);
    int *renum = g_new(int, MAX(n, 1));
    for (int k = 0; k < n; k++)
        renum[k] = key_index(plan->p2p, &old[k], sizeof(RunP2pKey), p2p_key_cmp);
    for (int i = 0; i < plan->n_ops; i++) {
        IrOpKind kind = ir_op(c, i)->kind;
        if ((kind == IR_OP_SEND || kind == IR_OP_RECV) && plan->op_key[i] >= 0)
            plan->op_key[i] = renum[plan->op_key[i]];
    }
    g_free(old), g_free(renum);
    return true;
}

void run_comm_plan_clear(RunCommPlan *plan)
{
    if (plan->coll)
        g_array_free(plan->coll, TRUE);
    if (plan->p2p)
        g_array_free(plan->p2p, TRUE);
    g_free(plan->op_key);
    memset(plan, 0, sizeof *plan);
}
