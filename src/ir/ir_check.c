/* ir_check: a schedule read from a file, checked as a whole before anything simulates or runs
 * it; see ir_schedule_check in ir.h.
 *
 * The reader (ir_json.c) checks each field on its own; what needs the whole file is here: the
 * rank classes partition the ranks (so every group member and every send/recv peer is some
 * class's rank, and the report's class 0 exists), and every peer is inside the world.
 * Dependencies need no cycle search: the reader takes only indices of earlier ops, so every
 * program is acyclic by construction, and streams run in issue order.
 *
 * Cost: O(world + ops): four bytes per rank (64 MiB at the largest world the reader takes, 2^24).
 */
#include "ir.h"

#include "../util/cfg.h"

#include <math.h>
#include <string.h>

/* The classes partition the ranks: each rank of the world in exactly one class. */
static bool check_partition(const IrSchedule *s, const char *file, GError **error)
{
    if (s->n_classes < 1) {
        cfg_set_error(error, file, "", "classes",
                      "expected at least one rank class (the classes must hold all %d ranks), "
                      "got none",
                      s->world);
        return false;
    }
    int32_t *owner = g_new(int32_t, (gsize)s->world);
    for (int r = 0; r < s->world; r++)
        owner[r] = -1;
    bool ok = true;
    for (int ci = 0; ci < s->n_classes && ok; ci++) {
        const IrClass *c = s->classes[ci];
        char *path = g_strdup_printf("classes[%d]", ci);
        /* int64: first_rank + (n_ranks - 1) * rank_stride can pass INT_MAX for bad input */
        int64_t last = c->first_rank + (int64_t)(c->n_ranks - 1) * c->rank_stride;
        if (last >= s->world) {
            cfg_set_error(error, file, path, "n_ranks",
                          "the class's last rank, first_rank + (n_ranks - 1) * rank_stride = "
                          "%" G_GINT64_FORMAT ", is outside the world (ranks 0..%d)",
                          last, s->world - 1);
            ok = false;
        }
        for (int i = 0; ok && i < c->n_ranks; i++) {
            int r = c->first_rank + i * c->rank_stride;
            if (owner[r] >= 0) {
                cfg_set_error(error, file, path, "first_rank",
                              "rank %d is also in classes[%d]; expected rank classes that "
                              "partition the ranks (each rank in exactly one class)",
                              r, owner[r]);
                ok = false;
            }
            owner[r] = ci;
        }
        g_free(path);
    }
    for (int r = 0; ok && r < s->world; r++) {
        if (owner[r] < 0) {
            cfg_set_error(error, file, "", "classes",
                          "no rank class holds rank %d; expected rank classes that partition "
                          "the %d ranks",
                          r, s->world);
            ok = false;
        }
    }
    g_free(owner);
    return ok;
}

/* Every send/recv peer, rank + peer_offset, is a rank of the world for every rank of the class. */
static bool check_peers(const IrSchedule *s, const char *file, GError **error)
{
    for (int ci = 0; ci < s->n_classes; ci++) {
        const IrClass *c = s->classes[ci];
        int64_t first = c->first_rank, last = first + (int64_t)(c->n_ranks - 1) * c->rank_stride;
        for (int i = 0; i < ir_class_n_ops(c); i++) {
            const IrOp *op = ir_op(c, i);
            if (op->kind != IR_OP_SEND && op->kind != IR_OP_RECV)
                continue;
            int64_t off = op->u.p2p.peer_offset;
            if (first + off < 0 || last + off >= s->world) {
                char *path = g_strdup_printf("classes[%d].ops[%d]", ci, i);
                cfg_set_error(error, file, path, "peer_offset",
                              "rank %" G_GINT64_FORMAT " + %" G_GINT64_FORMAT
                              " is outside the world (ranks 0..%d); expected an offset that "
                              "names a rank for every rank of the class",
                              first + off < 0 ? first : last, off, s->world - 1);
                g_free(path);
                return false;
            }
        }
    }
    return true;
}

/* Doubles as the JSON round trip keeps them: cJSON prints 15 digits when they read back within
 * an ulp or so, not always bit for bit (20 x 3e-6 s is written 6e-05). */
static bool near(double a, double b)
{
    return fabs(a - b) <= 1e-12 * fmax(fabs(a), fabs(b));
}

/* The same kernel list, record for record, when both ops have one: a version 1 or 2 file has
 * none and is still the program the options make (as its seconds, if any, are not compared). */
static bool kernels_same(const IrClass *ca, const IrOp *a, const IrClass *cb, const IrOp *b)
{
    int na, nb;
    const IrKernel *ka = ir_kernels_of(ca, ir_op_compute(ca, a)->kern_first, &na);
    const IrKernel *kb = ir_kernels_of(cb, ir_op_compute(cb, b)->kern_first, &nb);
    if (na == 0 || nb == 0)
        return true;
    return na == nb && memcmp(ka, kb, (size_t)na * sizeof *ka) == 0;
}

static bool op_same(const IrClass *ca, const IrOp *a, const IrClass *cb, const IrOp *b)
{
    /* dtype is part of compute and collective ops only (the JSON has no other) */
    bool typed = a->kind == IR_OP_COMPUTE || a->kind == IR_OP_COLL;
    if (a->kind != b->kind || a->phase != b->phase || (typed && a->dtype != b->dtype) ||
        a->n_deps != b->n_deps ||
        strcmp(ca->streams[a->stream].name, cb->streams[b->stream].name) != 0 ||
        strcmp(ir_class_string(ca, a->name), ir_class_string(cb, b->name)) != 0)
        return false;
    const uint32_t *da = ir_op_deps(ca, a), *db = ir_op_deps(cb, b);
    for (uint32_t k = 0; k < a->n_deps; k++)
        if (da[k] != db[k])
            return false;
    switch (a->kind) {
    case IR_OP_HOST:
        return near(a->u.host.seconds, b->u.host.seconds);
    case IR_OP_COMPUTE: {
        const IrCompute *pa = ir_op_compute(ca, a), *pb = ir_op_compute(cb, b);
        return near(pa->flops, pb->flops) && near(pa->bytes, pb->bytes) &&
               near(pa->model_flops, pb->model_flops) && pa->kernels == pb->kernels &&
               kernels_same(ca, a, cb, b);
    }
    case IR_OP_COLL:
        return a->u.coll.coll == b->u.coll.coll && a->u.coll.group == b->u.coll.group &&
               a->u.coll.bytes == b->u.coll.bytes && a->u.coll.sms == b->u.coll.sms;
    case IR_OP_SEND:
    case IR_OP_RECV:
        return a->u.p2p.peer_offset == b->u.p2p.peer_offset && a->u.p2p.bytes == b->u.p2p.bytes &&
               a->u.p2p.tag == b->u.p2p.tag;
    case IR_OP_MEMCPY:
        return a->u.memcpy.bytes == b->u.memcpy.bytes &&
               a->u.memcpy.to_device == b->u.memcpy.to_device;
    case IR_OP_ALLOC:
    case IR_OP_FREE:
        return a->u.mem.category == b->u.mem.category && a->u.mem.bytes == b->u.mem.bytes &&
               strcmp(ir_class_string(ca, a->u.mem.buffer), ir_class_string(cb, b->u.mem.buffer)) ==
                   0;
    default:
        return false;
    }
}

char *ir_schedule_diff(const IrSchedule *a, const IrSchedule *b)
{
    if (a->world != b->world || a->nodes != b->nodes)
        return g_strdup_printf("world %d, not %d", a->world, b->world);
    if (a->n_groups != b->n_groups)
        return g_strdup_printf("%d groups, not %d", a->n_groups, b->n_groups);
    for (int g = 0; g < a->n_groups; g++)
        if (strcmp(a->groups[g].name, b->groups[g].name) != 0 ||
            a->groups[g].size != b->groups[g].size || a->groups[g].stride != b->groups[g].stride)
            return g_strdup_printf("groups[%d] is %s of %d, not %s of %d", g, a->groups[g].name,
                                   a->groups[g].size, b->groups[g].name, b->groups[g].size);
    if (a->n_classes != b->n_classes)
        return g_strdup_printf("%d rank classes, not %d", a->n_classes, b->n_classes);
    for (int ci = 0; ci < a->n_classes; ci++) {
        const IrClass *ca = a->classes[ci], *cb = b->classes[ci];
        if (ca->first_rank != cb->first_rank || ca->n_ranks != cb->n_ranks ||
            ca->rank_stride != cb->rank_stride)
            return g_strdup_printf("classes[%d] holds other ranks", ci);
        int na = ir_class_n_ops(ca), nb = ir_class_n_ops(cb);
        for (int i = 0; i < MIN(na, nb); i++)
            if (!op_same(ca, ir_op(ca, i), cb, ir_op(cb, i)))
                return g_strdup_printf("classes[%d].ops[%d] (%s \"%s\") differs", ci, i,
                                       ir_op_kind_name(ir_op(ca, i)->kind),
                                       ir_class_string(ca, ir_op(ca, i)->name));
        if (na != nb)
            return g_strdup_printf("classes[%d] has %d ops, not %d", ci, na, nb);
    }
    return NULL;
}

bool ir_schedule_check(const IrSchedule *s, const char *file, GError **error)
{
    return check_partition(s, file, error) && check_peers(s, file, error);
}
