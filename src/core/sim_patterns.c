/* sim_patterns: the link loads per byte that the engine's transfers put on the flow model
 * (cfg->net), registered once per collective kind and member classes, or send offset, and
 * reused (Engine.patterns). */
#include "sim_engine.h"

/* The loads the builder accumulated, as a pattern of the flow model, remembered under `key`. */
static int register_pattern(Engine *e, KtKey key)
{
    int n;
    NetLoad *loads = net_builder_take(e->builder, &n);
    int id = net_flows_pattern(e->flows, loads, n);
    g_free(loads);
    ktab_insert(&e->patterns, key, GINT_TO_POINTER(id + 1));
    return id;
}

/* Link loads per byte of one collective on every instance of group family g that holds a rank
 * of the rendezvous' classes: symmetric instances all move at once, so they all load links. */
int sim_coll_pattern(Engine *e, int g, int kind, GArray *members)
{
    const IrSchedule *s = e->s;
    int first = INT32_MAX;
    for (guint i = 0; i < members->len; i++)
        first = MIN(first, g_array_index(members, ClassOp, i).cls);
    KtKey key = {KEY_COLL, (uint32_t)g, (uint32_t)kind, (uint32_t)first};
    int found = GPOINTER_TO_INT(ktab_lookup(&e->patterns, key));
    if (found)
        return found - 1;
    const IrGroup *grp = &s->groups[g];
    guint8 *covered = g_new0(guint8, s->world);
    int *m = g_new(int, grp->size);
    for (guint i = 0; i < members->len; i++) {
        const IrClass *c = s->classes[g_array_index(members, ClassOp, i).cls];
        for (int k = 0; k < c->n_ranks; k++) {
            int rank = c->first_rank + k * c->rank_stride;
            if (covered[rank])
                continue;
            ir_group_members(s, grp, rank, m);
            for (int j = 0; j < grp->size; j++)
                covered[m[j]] = 1;
            if (kind == SIM_PATTERN_RING)
                net_builder_ring(e->builder, m, grp->size, 1.0);
            else if (kind == SIM_PATTERN_TREE)
                net_builder_tree(e->builder, m, grp->size, 1.0);
            else
                net_builder_alltoall(e->builder, m, grp->size, 1.0);
        }
    }
    g_free(m);
    g_free(covered);
    return register_pattern(e, key);
}

/* Loads per byte of every rank of class `from` sending to its rank + offset. */
int sim_p2p_pattern(Engine *e, int from, int offset)
{
    KtKey key = {KEY_P2P, (uint32_t)from, (uint32_t)offset, 0};
    int found = GPOINTER_TO_INT(ktab_lookup(&e->patterns, key));
    if (found)
        return found - 1;
    const IrClass *c = e->s->classes[from];
    for (int k = 0; k < c->n_ranks; k++) {
        int rank = c->first_rank + k * c->rank_stride;
        net_builder_p2p(e->builder, rank, rank + offset, 1.0);
    }
    return register_pattern(e, key);
}
