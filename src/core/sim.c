/* sim: the engine; see sim.h.
 *
 * Each op waits for a count of predecessors: its explicit deps, the previous op on its stream, and
 * (for GPU ops) the host op that issued it. When the count reaches zero the op starts; its end is
 * an event in the (time, seq) queue. Collectives and point-to-point ops rendezvous with the other
 * classes that take part before they can finish. */
#include "sim.h"

#include "pq.h"
#include "../util/cfg.h"

#include <math.h>
#include <string.h>

typedef struct {
    const IrClass *cls;
    int n_ops;
    int32_t *pending;
    uint32_t *succ_start; /* CSR: successors of op i are succ[succ_start[i] .. succ_start[i+1]) */
    uint32_t *succ;
    uint32_t *coll_seq; /* per op: sequence number of this collective on its group */
    int n_done;
} ClassState;

/* A collective instance waiting for its member classes (or a send/recv pair). */
typedef struct {
    int arrived;
    int needed;
    int64_t last_arrival_ns;
    GArray *members; /* of {cls, op} */
} Rendezvous;

typedef struct {
    int32_t cls, op;
} ClassOp;

typedef struct {
    const IrSchedule *s;
    const SimConfig *cfg;
    ClassState *st;
    SimResult *res;
    Pq pq;
    GHashTable *rendezvous; /* key string -> Rendezvous* */
    int **partners;         /* [class][group] -> number of classes in the class's group instance */
    GError **error;
    bool failed;
    /* flow-level network model (cfg->net) */
    NetFlows *flows;
    NetLoadBuilder *builder;
    GHashTable *patterns; /* key string -> Pattern*: link loads per byte, registered once */
    GPtrArray *pending;   /* transfer id -> Pending* */
    int32_t net_version;  /* the one valid network event carries it */
} Engine;

/* Link loads of one collective pattern of a group family, per byte of volume: a pattern of the
 * flow model. */
typedef struct {
    int id;
} Pattern;

/* A transfer in the flow model and the ops that end with it. */
typedef struct {
    GArray *members; /* of ClassOp */
    int64_t latency_ns;
    int coll_kind; /* IrCollKind, or -1 for send/recv */
} Pending;

int64_t sim_op_duration_ns(const SimConfig *cfg, const IrOp *op)
{
    double s = 0;
    switch (op->kind) {
    case IR_OP_HOST:
        s = op->u.host.seconds;
        break;
    case IR_OP_COMPUTE:
        s = hw_gpu_compute_s(&cfg->topo->gpu, (HwDtype)op->dtype, op->u.compute.flops,
                             op->u.compute.bytes);
        break;
    case IR_OP_MEMCPY:
        s = (double)op->u.memcpy.bytes / cfg->topo->pcie_Bps;
        break;
    default:
        s = 0;
    }
    return (int64_t)llround(s * 1e9);
}

/* For each class and group: how many classes take part in the class's instance of the group.
 * Computed once from the first rank of the class; classes are symmetric by construction. */
static bool compute_partners(Engine *e)
{
    const IrSchedule *s = e->s;
    e->partners = g_new0(int *, s->n_classes);
    for (int c = 0; c < s->n_classes; c++) {
        e->partners[c] = g_new0(int, MAX(1, s->n_groups));
        for (int g = 0; g < s->n_groups; g++) {
            const IrGroup *grp = &s->groups[g];
            int *members = g_new(int, grp->size);
            ir_group_members(s, grp, s->classes[c]->first_rank, members);
            gboolean *seen = g_new0(gboolean, s->n_classes);
            int count = 0;
            for (int i = 0; i < grp->size; i++) {
                int mc = members[i] < s->world ? ir_class_of_rank(s, members[i]) : -1;
                if (mc < 0) {
                    g_set_error(e->error, FSD_ERROR, FSD_ERROR_INPUT,
                                "schedule: group \"%s\" of rank %d includes rank %d, which no "
                                "rank class holds",
                                grp->name, s->classes[c]->first_rank, members[i]);
                    g_free(members); /* after the message, which reads members[i] */
                    g_free(seen);
                    return false;
                }
                if (!seen[mc]) {
                    seen[mc] = TRUE;
                    count++;
                }
            }
            e->partners[c][g] = count;
            g_free(members);
            g_free(seen);
        }
    }
    return true;
}

static void prepare_class(Engine *e, int ci)
{
    const IrClass *c = e->s->classes[ci];
    ClassState *st = &e->st[ci];
    int n = ir_class_n_ops(c);
    st->cls = c;
    st->n_ops = n;
    st->pending = g_new0(int32_t, n);
    st->coll_seq = g_new0(uint32_t, n);
    int *last_on_stream = g_new(int, c->n_streams);
    for (int i = 0; i < c->n_streams; i++)
        last_on_stream[i] = -1;
    uint32_t *group_seq = g_new0(uint32_t, MAX(1, e->s->n_groups));
    /* Edge list: (from, to). Count first, then fill (CSR). */
    GArray *edges = g_array_sized_new(FALSE, FALSE, sizeof(uint32_t) * 2, (guint)n * 3);
    int last_host = -1;
    for (int i = 0; i < n; i++) {
        const IrOp *op = ir_op(c, i);
        const uint32_t *deps = ir_op_deps(c, op);
        uint32_t edge[2];
        for (uint32_t d = 0; d < op->n_deps; d++) {
            edge[0] = deps[d];
            edge[1] = (uint32_t)i;
            g_array_append_val(edges, edge);
        }
        int prev = last_on_stream[op->stream];
        if (prev >= 0) {
            edge[0] = (uint32_t)prev;
            edge[1] = (uint32_t)i;
            g_array_append_val(edges, edge);
        }
        bool host = c->streams[op->stream].host;
        if (!host && last_host >= 0 && last_host != prev) {
            edge[0] = (uint32_t)last_host;
            edge[1] = (uint32_t)i;
            g_array_append_val(edges, edge);
        }
        if (host)
            last_host = i;
        last_on_stream[op->stream] = i;
        if (op->kind == IR_OP_COLL)
            st->coll_seq[i] = group_seq[op->u.coll.group]++;
    }
    st->succ_start = g_new0(uint32_t, n + 1);
    for (guint k = 0; k < edges->len; k++) {
        uint32_t *edge = &g_array_index(edges, uint32_t, 2 * k);
        st->succ_start[edge[0] + 1]++;
        st->pending[edge[1]]++;
    }
    for (int i = 0; i < n; i++)
        st->succ_start[i + 1] += st->succ_start[i];
    st->succ = g_new(uint32_t, MAX(1u, edges->len));
    uint32_t *fill = g_memdup2(st->succ_start, sizeof(uint32_t) * (gsize)(n + 1));
    for (guint k = 0; k < edges->len; k++) {
        uint32_t *edge = &g_array_index(edges, uint32_t, 2 * k);
        st->succ[fill[edge[0]]++] = edge[1];
    }
    g_free(fill);
    g_array_free(edges, TRUE);
    g_free(last_on_stream);
    g_free(group_seq);
}

static void finish_at(Engine *e, int ci, int op, int64_t end_ns)
{
    e->res->classes[ci].end_ns[op] = end_ns;
    pq_push(&e->pq, end_ns, ci, op);
}

/* The rendezvous named `key`, made on first arrival. The caller keeps `key` (a stack buffer) and
 * removes the entry with it once the rendezvous starts; the table holds its own copy. (It used to
 * take ownership and free the caller's key on a hit, which the caller then hashed again: a read of
 * freed memory on every send/recv and collective, unseen by ASan because GLib did the read.) */
static Rendezvous *rendezvous_get(Engine *e, const char *key, int needed)
{
    Rendezvous *r = g_hash_table_lookup(e->rendezvous, key);
    if (!r) {
        r = g_new0(Rendezvous, 1);
        r->needed = needed;
        r->members = g_array_new(FALSE, FALSE, sizeof(ClassOp));
        g_hash_table_insert(e->rendezvous, g_strdup(key), r);
    }
    return r;
}

static void rendezvous_free(gpointer p)
{
    Rendezvous *r = p;
    g_array_free(r->members, TRUE);
    g_free(r);
}

static void pattern_free(gpointer p)
{
    g_free(p);
}

/* The ops of a rendezvous end at `end`; collectives count their time per kind. */
static void finish_members(Engine *e, GArray *members, int coll_kind, int64_t end)
{
    for (guint i = 0; i < members->len; i++) {
        ClassOp m = g_array_index(members, ClassOp, i);
        SimClassResult *cr = &e->res->classes[m.cls];
        if (coll_kind >= 0) {
            cr->coll_time_by_kind[coll_kind] += sim_ns_to_s(end - cr->start_ns[m.op]);
            cr->coll_count_by_kind[coll_kind]++;
        }
        finish_at(e, m.cls, m.op, end);
    }
}

static void net_reschedule(Engine *e)
{
    int64_t next = net_flows_reschedule(e->flows);
    e->net_version++;
    if (next >= 0)
        pq_push(&e->pq, next, -1, e->net_version);
}

/* Hands a rendezvous to the flow model: its ops end `latency` after its transfer completes. */
static void start_transfer(Engine *e, int64_t now, const Pattern *pat, double scale, Rendezvous *r,
                           int coll_kind, double latency_s)
{
    net_flows_advance(e->flows, now);
    int id = net_flows_add(e->flows, now, pat->id, scale);
    Pending *p = g_new(Pending, 1);
    p->members = g_array_copy(r->members);
    p->latency_ns = (int64_t)llround(latency_s * 1e9);
    p->coll_kind = coll_kind;
    if ((guint)id >= e->pending->len)
        g_ptr_array_set_size(e->pending, id + 1);
    g_ptr_array_index(e->pending, id) = p;
    e->res->transfers++;
    net_reschedule(e);
}

static void net_event(Engine *e, int64_t now)
{
    net_flows_advance(e->flows, now);
    int ids[64], n;
    while ((n = net_flows_complete(e->flows, now, ids, G_N_ELEMENTS(ids))) > 0) {
        for (int i = 0; i < n; i++) {
            Pending *p = g_ptr_array_index(e->pending, ids[i]);
            finish_members(e, p->members, p->coll_kind, now + p->latency_ns);
            g_array_free(p->members, TRUE);
            g_free(p);
            g_ptr_array_index(e->pending, ids[i]) = NULL;
        }
    }
    net_reschedule(e);
}

enum { PATTERN_RING, PATTERN_TREE, PATTERN_ALLTOALL };

/* The loads the builder accumulated, as a pattern of the flow model. */
static Pattern *register_pattern(Engine *e)
{
    int n;
    NetLoad *loads = net_builder_take(e->builder, &n);
    Pattern *pat = g_new(Pattern, 1);
    pat->id = net_flows_pattern(e->flows, loads, n);
    g_free(loads);
    return pat;
}

/* Link loads per byte of one collective on every instance of group family g that holds a rank
 * of the rendezvous' classes: symmetric instances all move at once, so they all load links. */
static const Pattern *coll_pattern(Engine *e, int g, int kind, GArray *members)
{
    const IrSchedule *s = e->s;
    int first = INT32_MAX;
    for (guint i = 0; i < members->len; i++)
        first = MIN(first, g_array_index(members, ClassOp, i).cls);
    char *key = g_strdup_printf("c%d:%d:%d", g, kind, first);
    Pattern *pat = g_hash_table_lookup(e->patterns, key);
    if (pat) {
        g_free(key);
        return pat;
    }
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
            if (kind == PATTERN_RING)
                net_builder_ring(e->builder, m, grp->size, 1.0);
            else if (kind == PATTERN_TREE)
                net_builder_tree(e->builder, m, grp->size, 1.0);
            else
                net_builder_alltoall(e->builder, m, grp->size, 1.0);
        }
    }
    g_free(m);
    g_free(covered);
    pat = register_pattern(e);
    g_hash_table_insert(e->patterns, key, pat);
    return pat;
}

/* Loads per byte of every rank of class `from` sending to its rank + offset. */
static const Pattern *p2p_pattern(Engine *e, int from, int offset)
{
    char *key = g_strdup_printf("p%d:%d", from, offset);
    Pattern *pat = g_hash_table_lookup(e->patterns, key);
    if (pat) {
        g_free(key);
        return pat;
    }
    const IrClass *c = e->s->classes[from];
    for (int k = 0; k < c->n_ranks; k++) {
        int rank = c->first_rank + k * c->rank_stride;
        net_builder_p2p(e->builder, rank, rank + offset, 1.0);
    }
    pat = register_pattern(e);
    g_hash_table_insert(e->patterns, key, pat);
    return pat;
}

static void start_coll(Engine *e, int ci, int opi, int64_t now)
{
    const IrSchedule *s = e->s;
    const IrOp *op = ir_op(e->st[ci].cls, opi);
    int g = op->u.coll.group;
    /* the key names the group instance (its lowest rank): classes of different instances of one
     * family (the TP groups of two pipeline stages) must not meet */
    const IrGroup *fam = &s->groups[g];
    int rank = s->classes[ci]->first_rank, span = fam->size * fam->stride;
    int base = (rank / span) * span + rank % fam->stride;
    char key[48];
    g_snprintf(key, sizeof key, "c%d:%d:%u", g, base, e->st[ci].coll_seq[opi]);
    Rendezvous *r = rendezvous_get(e, key, e->partners[ci][g]);
    ClassOp me = {ci, opi};
    g_array_append_val(r->members, me);
    r->arrived++;
    r->last_arrival_ns = MAX(r->last_arrival_ns, now);
    if (r->arrived < r->needed)
        return;
    const IrGroup *grp = &s->groups[g];
    CollShape shape = {(IrCollKind)op->u.coll.coll, op->u.coll.bytes, grp->size, 0, 0};
    ir_group_shape(s, grp, &shape.nodes, &shape.ranks_per_node);
    CollChoice choice;
    double dur_s = e->cfg->coll->time_s(e->cfg->coll, &shape, &choice);
    double sent = coll_bytes_sent_per_rank(shape.kind, shape.bytes, shape.nranks);
    double inter = shape.nodes > 1 ? sent / shape.ranks_per_node : 0;
    for (guint i = 0; i < r->members->len; i++) {
        ClassOp m = g_array_index(r->members, ClassOp, i);
        e->res->classes[m.cls].coll_bytes_sent += sent;
        e->res->classes[m.cls].inter_node_bytes_sent += inter;
    }
    if (e->flows && dur_s > 0) {
        /* The wire carries the payload over the protocol's efficiency (LL: half of each line). */
        double eff = choice.efficiency;
        const Pattern *pat;
        double scale;
        if (shape.kind == IR_COLL_ALLTOALL) {
            pat = coll_pattern(e, g, PATTERN_ALLTOALL, r->members);
            scale = (double)shape.bytes / shape.nranks / eff;
        } else if (choice.algo == COLL_ALGO_TREE) {
            pat = coll_pattern(e, g, PATTERN_TREE, r->members);
            scale = (double)shape.bytes / eff;
        } else {
            pat = coll_pattern(e, g, PATTERN_RING, r->members);
            scale = sent / eff;
        }
        start_transfer(e, r->last_arrival_ns, pat, scale, r, shape.kind, choice.latency_s);
    } else {
        finish_members(e, r->members, shape.kind,
                       r->last_arrival_ns + (int64_t)llround(dur_s * 1e9));
    }
    g_hash_table_remove(e->rendezvous, key);
}

static void start_p2p(Engine *e, int ci, int opi, int64_t now)
{
    const IrSchedule *s = e->s;
    const IrOp *op = ir_op(e->st[ci].cls, opi);
    int rank = s->classes[ci]->first_rank;
    int peer = rank + op->u.p2p.peer_offset;
    int pc = peer >= 0 && peer < s->world ? ir_class_of_rank(s, peer) : -1;
    if (pc < 0) {
        g_set_error(e->error, FSD_ERROR, FSD_ERROR_INPUT,
                    "schedule: %s of class %d to rank %d, which no rank class holds",
                    ir_op_kind_name(op->kind), ci, peer);
        e->failed = true;
        return;
    }
    int from = op->kind == IR_OP_SEND ? ci : pc, to = op->kind == IR_OP_SEND ? pc : ci;
    char key[48];
    g_snprintf(key, sizeof key, "p%d>%d:%u", from, to, op->u.p2p.tag);
    Rendezvous *r = rendezvous_get(e, key, 2);
    ClassOp me = {ci, opi};
    g_array_append_val(r->members, me);
    r->arrived++;
    r->last_arrival_ns = MAX(r->last_arrival_ns, now);
    if (r->arrived < r->needed)
        return;
    bool same_node = rank / s->gpus_per_node == peer / s->gpus_per_node;
    int send_offset = 0;
    for (guint i = 0; i < r->members->len; i++) {
        ClassOp m = g_array_index(r->members, ClassOp, i);
        const IrOp *mo = ir_op(e->st[m.cls].cls, m.op);
        if (mo->kind == IR_OP_SEND) {
            send_offset = mo->u.p2p.peer_offset;
            e->res->classes[m.cls].coll_bytes_sent += (double)mo->u.p2p.bytes;
            if (!same_node)
                e->res->classes[m.cls].inter_node_bytes_sent += (double)mo->u.p2p.bytes;
        }
    }
    if (e->flows) {
        const Pattern *pat = p2p_pattern(e, from, send_offset);
        double latency = e->cfg->coll->p2p_s(e->cfg->coll, 0, same_node);
        start_transfer(e, r->last_arrival_ns, pat, (double)op->u.p2p.bytes, r, -1, latency);
    } else {
        double dur_s = e->cfg->coll->p2p_s(e->cfg->coll, op->u.p2p.bytes, same_node);
        finish_members(e, r->members, -1, r->last_arrival_ns + (int64_t)llround(dur_s * 1e9));
    }
    g_hash_table_remove(e->rendezvous, key);
}

static void start_op(Engine *e, int ci, int opi, int64_t now)
{
    const IrClass *c = e->st[ci].cls;
    const IrOp *op = ir_op(c, opi);
    SimClassResult *cr = &e->res->classes[ci];
    cr->start_ns[opi] = now;
    switch (op->kind) {
    case IR_OP_HOST:
    case IR_OP_COMPUTE:
    case IR_OP_MEMCPY:
        finish_at(e, ci, opi, now + sim_op_duration_ns(e->cfg, op));
        break;
    case IR_OP_ALLOC:
        if (!mem_tracker_alloc(&cr->mem, now, op->u.mem.buffer,
                               ir_class_string(c, op->u.mem.buffer),
                               (IrMemCategory)op->u.mem.category, op->u.mem.bytes, e->error))
            e->failed = true;
        finish_at(e, ci, opi, now);
        break;
    case IR_OP_FREE:
        if (!mem_tracker_free(&cr->mem, now, op->u.mem.buffer, ir_class_string(c, op->u.mem.buffer),
                              e->error))
            e->failed = true;
        finish_at(e, ci, opi, now);
        break;
    case IR_OP_COLL:
        start_coll(e, ci, opi, now);
        break;
    case IR_OP_SEND:
    case IR_OP_RECV:
        start_p2p(e, ci, opi, now);
        break;
    default:
        g_assert_not_reached();
    }
}

static void report_deadlock(Engine *e)
{
    for (int ci = 0; ci < e->s->n_classes; ci++) {
        ClassState *st = &e->st[ci];
        for (int i = 0; i < st->n_ops; i++) {
            if (e->res->classes[ci].end_ns[i] < 0) {
                const IrOp *op = ir_op(st->cls, i);
                g_set_error(e->error, FSD_ERROR, FSD_ERROR_INPUT,
                            "schedule deadlock: op %d (\"%s\", %s on stream %s) of rank class %d "
                            "never completed; a collective or send/recv has no matching op in "
                            "its peers' programs",
                            i, ir_class_string(st->cls, op->name), ir_op_kind_name(op->kind),
                            st->cls->streams[op->stream].name, ci);
                return;
            }
        }
    }
}

/* The busiest links: by the time their bytes take at full capacity, then link id, so the order
 * is total. Selected in one pass (insertion into the SIM_TOP_LINKS best so far) rather than by
 * sorting every link: a JUPITER job has 100k. */
static bool busier(const NetLinkStats *a, double cap_a, uint32_t la, const NetLinkStats *b,
                   double cap_b, uint32_t lb)
{
    double ta = a->bytes / cap_a, tb = b->bytes / cap_b;
    return ta != tb ? ta > tb : la < lb;
}

static bool stats_alike(const NetTopo *net, const NetLinkStats *a, uint32_t la,
                        const NetLinkStats *b, uint32_t lb)
{
    /* bytes first: it tells most links apart, and this runs for every link of the job */
    return a->bytes == b->bytes && a->busy_ns == b->busy_ns && a->peak_util == b->peak_util &&
           net->capacity_Bps[la] == net->capacity_Bps[lb] &&
           net_link_kind(net, la) == net_link_kind(net, lb);
}

static bool alike_in(const NetTopo *net, const NetFlows *flows, const uint32_t *top, int n,
                     uint32_t l)
{
    for (int i = 0; i < n; i++)
        if (stats_alike(net, net_flows_stats(flows, top[i]), top[i], net_flows_stats(flows, l), l))
            return true;
    return false;
}

/* The busiest links, one per group of links with identical statistics (the first by index),
 * each with the size of its group. */
static void collect_links(SimResult *res, const NetTopo *net, const NetFlows *flows)
{
    const double *cap = net->capacity_Bps;
    uint32_t top[SIM_TOP_LINKS];
    int n = 0;
    for (uint32_t l = 0; l < (uint32_t)net->n_links; l++) {
        const NetLinkStats *st = net_flows_stats(flows, l);
        if (st->bytes <= 0 || alike_in(net, flows, top, n, l))
            continue; /* one line per group of links loaded alike; counted below */
        if (n == SIM_TOP_LINKS) {
            uint32_t w = top[n - 1];
            if (!busier(st, cap[l], l, net_flows_stats(flows, w), cap[w], w))
                continue;
            n--;
        }
        int i = n++;
        for (; i > 0 && busier(st, cap[l], l, net_flows_stats(flows, top[i - 1]), cap[top[i - 1]],
                               top[i - 1]);
             i--)
            top[i] = top[i - 1];
        top[i] = l;
    }
    res->n_links = n;
    res->links = g_new0(SimLink, MAX(1, n));
    for (int i = 0; i < n; i++)
        res->links[i] = (SimLink){net_link_name(net, top[i]), net_link_kind(net, top[i]),
                                  cap[top[i]], *net_flows_stats(flows, top[i]), 0};
    /* Symmetric jobs load many links alike (every node's NIC 0): the report says how many
     * instead of listing them. Links of one class share their statistics exactly. */
    for (uint32_t l = 0; l < (uint32_t)net->n_links; l++) {
        const NetLinkStats *st = net_flows_stats(flows, l);
        if (st->bytes <= 0)
            continue;
        for (int i = 0; i < n; i++)
            if (stats_alike(net, &res->links[i].stats, top[i], st, l))
                res->links[i].alike++;
    }
    int ns;
    const NetUtilSample *samples = net_flows_samples(flows, &ns);
    res->n_util_samples = ns;
    res->util_samples = g_memdup2(samples, sizeof *samples * (gsize)MAX(1, ns));
}

SimResult *sim_run(const IrSchedule *s, const SimConfig *cfg, GError **error)
{
    Engine e = {.s = s, .cfg = cfg, .error = error};
    e.res = g_new0(SimResult, 1);
    e.res->n_classes = s->n_classes;
    e.res->classes = g_new0(SimClassResult, s->n_classes);
    e.st = g_new0(ClassState, s->n_classes);
    e.rendezvous = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, rendezvous_free);
    pq_init(&e.pq);
    if (cfg->net) {
        e.flows = net_flows_new(cfg->net);
        e.builder = net_builder_new(cfg->net);
        e.patterns = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, pattern_free);
        e.pending = g_ptr_array_new();
    }
    bool ok = compute_partners(&e);
    for (int ci = 0; ok && ci < s->n_classes; ci++) {
        prepare_class(&e, ci);
        SimClassResult *cr = &e.res->classes[ci];
        int n = e.st[ci].n_ops;
        cr->start_ns = g_new(int64_t, MAX(1, n));
        cr->end_ns = g_new(int64_t, MAX(1, n));
        for (int i = 0; i < n; i++)
            cr->start_ns[i] = cr->end_ns[i] = -1;
        mem_tracker_init(&cr->mem);
    }
    /* Ops with nothing to wait for start at time zero, in program order. */
    for (int ci = 0; ok && ci < s->n_classes; ci++)
        for (int i = 0; i < e.st[ci].n_ops && !e.failed; i++)
            if (e.st[ci].pending[i] == 0)
                start_op(&e, ci, i, 0);
    PqEvent ev;
    while (ok && !e.failed && pq_pop(&e.pq, &ev)) {
        e.res->events++;
        if (ev.cls < 0) { /* the network: a transfer completes, unless the rates changed since */
            if (ev.op == e.net_version)
                net_event(&e, ev.time_ns);
            continue;
        }
        ClassState *st = &e.st[ev.cls];
        st->n_done++;
        e.res->makespan_ns = MAX(e.res->makespan_ns, ev.time_ns);
        for (uint32_t k = st->succ_start[ev.op]; k < st->succ_start[ev.op + 1] && !e.failed; k++) {
            uint32_t next = st->succ[k];
            if (--st->pending[next] == 0)
                start_op(&e, ev.cls, (int)next, ev.time_ns);
        }
    }
    ok = ok && !e.failed;
    for (int ci = 0; ok && ci < s->n_classes; ci++) {
        if (e.st[ci].n_done != e.st[ci].n_ops) {
            report_deadlock(&e);
            ok = false;
        }
    }
    for (int ci = 0; ci < s->n_classes; ci++) {
        g_free(e.st[ci].pending);
        g_free(e.st[ci].succ_start);
        g_free(e.st[ci].succ);
        g_free(e.st[ci].coll_seq);
        if (e.partners)
            g_free(e.partners[ci]);
    }
    g_free(e.partners);
    g_free(e.st);
    if (e.flows) {
        if (ok)
            collect_links(e.res, cfg->net, e.flows);
        e.res->link_classes = net_flows_link_classes(e.flows);
        for (guint i = 0; i < e.pending->len; i++) {
            Pending *p = g_ptr_array_index(e.pending, i);
            if (p) {
                g_array_free(p->members, TRUE);
                g_free(p);
            }
        }
        g_ptr_array_free(e.pending, TRUE);
        g_hash_table_destroy(e.patterns);
        net_builder_free(e.builder);
        net_flows_free(e.flows);
    }
    g_hash_table_destroy(e.rendezvous);
    pq_destroy(&e.pq);
    if (!ok) {
        sim_result_free(e.res);
        return NULL;
    }
    return e.res;
}

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
    SimConfig cfg = {topo, coll, net};
    SimResult *r = sim_run(s, &cfg, error);
    if (r)
        *out = sim_ns_to_s(r->makespan_ns);
    sim_result_free(r);
    ir_schedule_free(s);
    return r != NULL;
}

void sim_result_free(SimResult *r)
{
    if (!r)
        return;
    for (int ci = 0; ci < r->n_classes; ci++) {
        g_free(r->classes[ci].start_ns);
        g_free(r->classes[ci].end_ns);
        mem_tracker_clear(&r->classes[ci].mem);
    }
    g_free(r->classes);
    for (int i = 0; i < r->n_links; i++)
        g_free(r->links[i].name);
    g_free(r->links);
    g_free(r->util_samples);
    g_free(r);
}
