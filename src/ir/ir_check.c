/* ir_check: a schedule read from a file, checked as a whole before anything simulates or runs
 * it; see ir_schedule_check in ir.h.
 *
 * The reader (ir_json.c) checks each field on its own; what needs the whole file is here: the
 * rank classes partition the ranks (so every group member and every send/recv peer is some
 * class's rank, and the report's class 0 exists), and every peer is inside the world.
 * Dependencies need no cycle search: the reader takes only indices of earlier ops, so every
 * program is acyclic by construction, and streams run in issue order.
 *
 * Cost: O(world + ops): four bytes per rank (64 MiB at the largest world the reader takes, 2^24). */
#include "ir.h"

#include "../util/cfg.h"

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

bool ir_schedule_check(const IrSchedule *s, const char *file, GError **error)
{
    return check_partition(s, file, error) && check_peers(s, file, error);
}
