/* sim: the engine; see sim.h.
 *
 * Each op waits for a count of predecessors: its explicit deps, the previous op on its stream, and
 * (for GPU ops) the host op that issued it. When the count reaches zero the op starts; its end is
 * an event in the (time, seq) queue. Collectives and point-to-point ops rendezvous with the other
 * classes that take part before they can finish. */
#include "sim.h"

#include "sim_engine.h"
#include "sim_links.h"
#include "../util/cfg.h"

#include <math.h>
#include <string.h>

/* A collective's shape on its group family, its time alone and NCCL's choice. */
typedef struct {
    CollShape shape;
    double dur_s;
    CollChoice choice;
} CollCost;

double sim_op_duration_s(const HwTopology *topo, const IrClass *c, const IrOp *op)
{
    double s = 0;
    switch (op->kind) {
    case IR_OP_HOST:
        s = op->u.host.seconds;
        break;
    case IR_OP_COMPUTE: {
        const IrCompute *p = ir_op_compute(c, op);
        if (p->seconds > 0) { /* the kernel model's, from the generator */
            s = p->seconds;
            break;
        }
        s = hw_gpu_compute_s(&topo->gpu, (HwDtype)op->dtype, p->flops, p->bytes);
        break;
    }
    case IR_OP_MEMCPY:
        s = (double)op->u.memcpy.bytes / topo->pcie_Bps;
        break;
    default:
        s = 0;
    }
    return s;
}

int64_t sim_op_duration_ns(const SimConfig *cfg, const IrClass *c, const IrOp *op)
{
    return sim_round(sim_op_duration_s(cfg->topo, c, op) * 1e9);
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

/* Every op's predecessors, in program order: its deps, the previous op on its stream, and for a
 * GPU op the host op that issued it (when that is not the previous one). Counting (succ NULL):
 * successors per op into succ_start[from + 1], predecessors into pending; filling: successors
 * at succ[fill[from]++], so each op's successors lie in the order of this walk. Twice over the
 * ops instead of an edge list appended to: 2.9 M appends were 15 % of the 1T pp 64 layout's
 * simulation. */
static void class_edges(const IrClass *c, int n, uint32_t *succ_start, int32_t *pending,
                        uint32_t *succ, uint32_t *fill)
{
    int *last_on_stream = g_new(int, MAX(1, c->n_streams));
    for (int i = 0; i < c->n_streams; i++)
        last_on_stream[i] = -1;
    int last_host = -1;
#define EDGE(from, to)                                                                             \
    do {                                                                                           \
        if (succ) {                                                                                \
            succ[fill[from]++] = (uint32_t)(to);                                                   \
        } else {                                                                                   \
            succ_start[(from) + 1]++;                                                              \
            pending[to]++;                                                                         \
        }                                                                                          \
    } while (0)
    for (int i = 0; i < n; i++) {
        const IrOp *op = ir_op(c, i);
        const uint32_t *deps = ir_op_deps(c, op);
        for (uint32_t d = 0; d < op->n_deps; d++)
            EDGE(deps[d], i);
        int prev = last_on_stream[op->stream];
        if (prev >= 0)
            EDGE(prev, i);
        bool host = c->streams[op->stream].host;
        if (!host && last_host >= 0 && last_host != prev)
            EDGE(last_host, i);
        if (host)
            last_host = i;
        last_on_stream[op->stream] = i;
    }
#undef EDGE
    g_free(last_on_stream);
}

static void prepare_class(Engine *e, int ci)
{
    const IrClass *c = e->s->classes[ci];
    ClassState *st = &e->st[ci];
    int n = ir_class_n_ops(c);
    st->cls = c;
    st->n_ops = n;
    st->compute_stream = -1;
    st->run_op = -1;
    for (int i = 0; i < c->n_streams; i++)
        if (!c->streams[i].host && strcmp(c->streams[i].name, "compute") == 0)
            st->compute_stream = i;
    st->pending = g_new0(int32_t, n);
    st->compute_cost = g_new(SimComputeCost, MAX(1u, c->computes->len));
    for (guint i = 0; i < c->computes->len; i++)
        st->compute_cost[i].dtype = -1;
    int n_groups = MAX(1, e->s->n_groups);
    uint32_t *group_seq = g_new0(uint32_t, n_groups);
    int *group_stream = g_new(int, n_groups); /* -1 none yet, -2 more than one */
    for (int g = 0; g < n_groups; g++)
        group_stream[g] = -1;
    for (int i = 0; i < n; i++) {
        const IrOp *op = ir_op(c, i);
        if (op->kind == IR_OP_COLL) {
            int *gs = &group_stream[op->u.coll.group];
            *gs = *gs == -1 || *gs == op->stream ? op->stream : -2;
        }
    }
    st->group_seq = g_new0(uint32_t, n_groups);
    for (int g = 0; g < n_groups && !st->coll_seq; g++) {
        if (group_stream[g] != -2)
            continue;
        /* a group on several streams: numbered in program order, once */
        st->coll_seq = g_new0(uint32_t, MAX(1, n));
        for (int i = 0; i < n; i++) {
            const IrOp *op = ir_op(c, i);
            if (op->kind == IR_OP_COLL)
                st->coll_seq[i] = group_seq[op->u.coll.group]++;
        }
    }
    g_free(group_stream);
    if (e->prep) { /* found by src/compact: taken */
        st->buffer_of = e->prep->buffer_of[ci];
        e->prep->buffer_of[ci] = NULL;
    } else {
        st->buffer_of = sim_buffer_numbers(c);
    }
    /* CSR: count, then fill */
    st->succ_start = g_new0(uint32_t, n + 1);
    class_edges(c, n, st->succ_start, st->pending, NULL, NULL);
    for (int i = 0; i < n; i++)
        st->succ_start[i + 1] += st->succ_start[i];
    st->succ = g_new(uint32_t, MAX(1u, st->succ_start[n]));
    uint32_t *fill = g_memdup2(st->succ_start, sizeof(uint32_t) * (gsize)(n + 1));
    class_edges(c, n, NULL, NULL, st->succ, fill);
    g_free(fill);
    g_free(group_seq);
}

void sim_finish_at(Engine *e, int ci, int op, int64_t end_ns)
{
    sim_set_end_ns(e, ci, op, end_ns);
    pq_push(&e->pq, end_ns, ci, op);
}

static GArray *members_new(Engine *e)
{
    GArray *m = sim_spare_take(&e->spare_members);
    if (!m)
        return g_array_new(FALSE, FALSE, sizeof(ClassOp));
    g_array_set_size(m, 0);
    return m;
}

/* The rendezvous of `key`, made on first arrival; the caller removes it (ktab_remove, then
 * rendezvous_release) once it starts. Keys are packed integers, not strings: formatting,
 * hashing and copying a string key per arrival was 6 % of a large pipeline's run. */
static Rendezvous *rendezvous_new(Engine *e, int needed)
{
    Rendezvous *r = sim_spare_take(&e->spare_rendezvous);
    if (!r)
        r = g_new(Rendezvous, 1);
    *r = (Rendezvous){.needed = needed, .members = members_new(e)};
    return r;
}

static Rendezvous *rendezvous_get(Engine *e, KtKey key, int needed)
{
    Rendezvous *r = ktab_lookup(&e->rendezvous, key);
    if (!r) {
        r = rendezvous_new(e, needed);
        ktab_insert(&e->rendezvous, key, r);
    }
    return r;
}

/* A rendezvous that started, back to the spares (its members array too, unless a Pending took
 * it). */
static void rendezvous_release(Engine *e, Rendezvous *r)
{
    if (r->members)
        sim_spare_put(&e->spare_members, r->members);
    sim_spare_put(&e->spare_rendezvous, r);
}

static void rendezvous_free(void *p)
{
    Rendezvous *r = p;
    if (r->members)
        g_array_free(r->members, TRUE);
    g_free(r);
}

static void members_free(void *p)
{
    g_array_free(p, TRUE);
}

/* The ops of a rendezvous end at `end`; collectives count their time per kind. */
static void finish_members(Engine *e, GArray *members, int coll_kind, int64_t end)
{
    for (guint i = 0; i < members->len; i++) {
        ClassOp m = g_array_index(members, ClassOp, i);
        SimClassResult *cr = &e->res->classes[m.cls];
        if (coll_kind >= 0) {
            sim_acc(e, m.cls, &cr->coll_time_by_kind[coll_kind],
                    sim_ns_to_s(end - sim_stored_start_ns(e, m.cls, m.op)));
            cr->coll_count_by_kind[coll_kind]++;
        }
        sim_finish_at(e, m.cls, m.op, end);
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
static void start_transfer(Engine *e, int64_t now, int pattern, double scale, Rendezvous *r,
                           int coll_kind, double latency_s, double max_rate)
{
    net_flows_advance(e->flows, now);
    int id = net_flows_add(e->flows, now, pattern, scale);
    if (isfinite(max_rate))
        net_flows_cap(e->flows, id, max_rate);
    Pending *p = sim_spare_take(&e->spare_pending);
    if (!p)
        p = g_new(Pending, 1);
    p->members = r->members; /* taken: the rendezvous is released next */
    r->members = NULL;
    p->latency_ns = sim_round(latency_s * 1e9);
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
            sim_spare_put(&e->spare_members, p->members);
            sim_spare_put(&e->spare_pending, p);
            g_ptr_array_index(e->pending, ids[i]) = NULL;
        }
    }
    net_reschedule(e);
}

/* The cost of a collective of `kind` and `bytes` on group family g: the collective model is a
 * function of the shape, which these determine, so it is asked once per distinct triple (a
 * pipeline asks for the same few collectives hundreds of thousands of times, and each answer
 * walks NCCL's algorithms and protocols). */
static const CollCost *coll_cost(Engine *e, int g, IrCollKind kind, uint64_t bytes)
{
    KtKey key = {KEY_COST, (uint32_t)g << 8 | (uint32_t)kind, (uint32_t)bytes,
                 (uint32_t)(bytes >> 32)};
    CollCost *cost = ktab_lookup(&e->costs, key);
    if (cost)
        return cost;
    const IrGroup *grp = &e->s->groups[g];
    cost = g_new0(CollCost, 1);
    cost->shape = (CollShape){kind, bytes, grp->size, 0, 0};
    ir_group_shape(e->s, grp, &cost->shape.nodes, &cost->shape.ranks_per_node);
    cost->dur_s = e->cfg->coll->time_s(e->cfg->coll, &cost->shape, &cost->choice);
    ktab_insert(&e->costs, key, cost);
    return cost;
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
    ClassState *st = &e->st[ci];
    uint32_t seq = st->coll_seq ? st->coll_seq[opi] : st->group_seq[g]++;
    KtKey key = {KEY_COLL, (uint32_t)g, (uint32_t)base, seq};
    /* a class that is its group instance alone (a stage's TP group) waits for no one: no table */
    int needed = e->partners[ci][g];
    Rendezvous *r = needed > 1 ? rendezvous_get(e, key, needed) : rendezvous_new(e, needed);
    ClassOp me = {ci, opi};
    g_array_append_val(r->members, me);
    r->arrived++;
    r->last_arrival_ns = MAX(r->last_arrival_ns, now);
    if (r->arrived < r->needed)
        return;
    const CollCost *cost = coll_cost(e, g, (IrCollKind)op->u.coll.coll, op->u.coll.bytes);
    const CollShape shape = cost->shape;
    const CollChoice choice = cost->choice;
    double dur_s = cost->dur_s;
    double sent = coll_bytes_sent_per_rank(shape.kind, shape.bytes, shape.nranks);
    double inter = coll_inter_node_bytes_per_rank(&shape, &choice);
    for (guint i = 0; i < r->members->len; i++) {
        ClassOp m = g_array_index(r->members, ClassOp, i);
        sim_acc(e, m.cls, &e->res->classes[m.cls].coll_bytes_sent, sent);
        sim_acc(e, m.cls, &e->res->classes[m.cls].inter_node_bytes_sent, inter);
    }
    if (e->flows && dur_s > 0) {
        /* The wire carries the payload over the protocol's efficiency (LL: half of each line). */
        double eff = choice.efficiency;
        int pat;
        double scale;
        if (shape.kind == IR_COLL_ALLTOALL) {
            pat = sim_coll_pattern(e, g, SIM_PATTERN_ALLTOALL, r->members);
            scale = (double)shape.bytes / shape.nranks / eff;
        } else if (choice.algo == COLL_ALGO_TREE) {
            pat = sim_coll_pattern(e, g, SIM_PATTERN_TREE, r->members);
            scale = (double)shape.bytes / eff;
        } else {
            pat = sim_coll_pattern(e, g, SIM_PATTERN_RING, r->members);
            scale = sent / eff;
        }
        start_transfer(e, r->last_arrival_ns, pat, scale, r, shape.kind, choice.latency_s,
                       coll_transfer_max_rate(e->cfg->coll, &shape, &choice, scale));
    } else {
        finish_members(e, r->members, shape.kind, r->last_arrival_ns + sim_round(dur_s * 1e9));
    }
    if (needed > 1)
        ktab_remove(&e->rendezvous, key);
    rendezvous_release(e, r);
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
    KtKey key = {KEY_P2P, (uint32_t)from, (uint32_t)to, op->u.p2p.tag};
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
            sim_acc(e, m.cls, &e->res->classes[m.cls].coll_bytes_sent, (double)mo->u.p2p.bytes);
            if (!same_node)
                sim_acc(e, m.cls, &e->res->classes[m.cls].inter_node_bytes_sent,
                        (double)mo->u.p2p.bytes);
        }
    }
    if (e->flows) {
        int pat = sim_p2p_pattern(e, from, send_offset);
        double latency = e->cfg->coll->p2p_s(e->cfg->coll, 0, same_node);
        start_transfer(e, r->last_arrival_ns, pat, (double)op->u.p2p.bytes, r, -1, latency,
                       coll_p2p_max_rate(e->cfg->coll, op->u.p2p.bytes, same_node));
    } else {
        double dur_s = e->cfg->coll->p2p_s(e->cfg->coll, op->u.p2p.bytes, same_node);
        finish_members(e, r->members, -1, r->last_arrival_ns + sim_round(dur_s * 1e9));
    }
    rendezvous_release(e, ktab_remove(&e->rendezvous, key));
}

/* The end of a host op whose host runs ahead is parked (sim_host.c), not queued. */
static void finish_or_park(Engine *e, int ci, int opi, int64_t end_ns)
{
    ClassState *st = &e->st[ci];
    if (st->host_lazy && sim_host_is(st, opi)) {
        sim_set_end_ns(e, ci, opi, end_ns);
        st->host_next = opi;
        return;
    }
    sim_finish_at(e, ci, opi, end_ns);
}

/* A compute op's cost, its payload's: computed for the first op of the payload, read for the
 * rest (a pipeline stage's 180,000 compute ops share a few dozen payloads). An op of a dtype
 * other than the one cached (none the generators make) computes its own. */
static SimComputeCost compute_cost(Engine *e, int ci, const IrOp *op)
{
    const IrClass *c = e->st[ci].cls;
    SimComputeCost *cached = &e->st[ci].compute_cost[op->u.compute.payload];
    if (cached->dtype == op->dtype)
        return *cached;
    /* the slowest of the job's GPUs sets every class's pace (hw_gpu_pace) */
    SimComputeCost cost = {sim_round((double)sim_op_duration_ns(e->cfg, c, op) * e->pace), 0,
                           op->dtype};
    if (cost.alone_ns > 0)
        cost.mem_fraction =
            sim_overlap_memory_fraction(e, c, op, sim_ns_to_s(cost.alone_ns) / e->pace);
    if (cached->dtype < 0)
        *cached = cost;
    return cost;
}

/* What the engine will read of the class's ops a few ahead of the one starting, asked for now.
 * A class's ops start nearly in program order, but the 64 classes of a pipeline take turns, so
 * by its next event a class's next ops (their IrOp, counts, times, successors: ~60 bytes each,
 * 380 KB per stage of the 1T layout) have left the caches, and the engine waited on the loads.
 * 8 ops ahead: about 10 % less CPU for the 1T pp 64 fill and drain (8 and 16 alike, 2 and 4
 * less); the IrOp alone gave 6 %. Prefetches never fault, and change nothing but timing.
 * Inlined by force: GCC finds a function of loads and prefetches pure, and drops the call. */
enum { PREFETCH_OPS = 8, PREFETCH_SUCC = 16 };
static inline __attribute__((always_inline)) void prefetch_ahead(const ClassState *st,
                                                                 const SimClassResult *cr, int opi)
{
    __builtin_prefetch(&st->succ_start[opi + 1]);
    uint32_t succ = st->succ_start[opi] + PREFETCH_SUCC;
    if (succ < st->succ_start[st->n_ops])
        __builtin_prefetch(&st->succ[succ]);
    int ahead = opi + PREFETCH_OPS;
    if (ahead < st->n_ops) {
        __builtin_prefetch(ir_op(st->cls, ahead));
        __builtin_prefetch(&st->pending[ahead]);
        __builtin_prefetch(&cr->start_enc[ahead], 1);
        __builtin_prefetch(&cr->end_enc[ahead], 1);
    }
}

void sim_start_op(Engine *e, int ci, int opi, int64_t now)
{
    const IrClass *c = e->st[ci].cls;
    const IrOp *op = ir_op(c, opi);
    SimClassResult *cr = &e->res->classes[ci];
    if (op->kind == IR_OP_ALLOC || op->kind == IR_OP_FREE) {
        /* the allocations and frees of a host that ran ahead come first, up to now */
        if (e->st[ci].host_mems && !sim_host_memory(e, ci, now))
            return;
        if (!c->streams[op->stream].host)
            e->st[ci].gpu_mem_ns = now; /* a compact run's gap checks it (sim_gap.c) */
    }
    sim_set_start_ns(e, ci, opi, now);
    prefetch_ahead(&e->st[ci], cr, opi);
    if (opi >= e->st[ci].horizon && opi < e->st[ci].host_below)
        e->st[ci].horizon = opi + 1;
    if (opi >= e->st[ci].horizon_gpu && opi < e->st[ci].host_below && !c->streams[op->stream].host)
        e->st[ci].horizon_gpu = opi + 1;
    sim_overlap_count(e, ci, op, +1, now);
    switch (op->kind) {
    case IR_OP_COMPUTE: {
        SimComputeCost cost = compute_cost(e, ci, op);
        int64_t alone = cost.alone_ns;
        ClassState *st = &e->st[ci];
        if (op->stream != st->compute_stream || alone <= 0) {
            sim_finish_at(e, ci, opi, now + alone);
            break;
        }
        st->run_op = opi;
        st->run_left_s = sim_ns_to_s(alone);
        st->run_alone_ns = alone;
        st->run_since_ns = now;
        st->run_mem_fraction = cost.mem_fraction;
        st->run_factor = sim_overlap_slowdown(e, ci, st->run_mem_fraction);
        st->run_end_ns = now + sim_round(st->run_left_s * st->run_factor * 1e9);
        sim_finish_at(e, ci, opi, st->run_end_ns);
        break;
    }
    case IR_OP_HOST:
    case IR_OP_MEMCPY:
        finish_or_park(e, ci, opi, now + sim_op_duration_ns(e->cfg, c, op));
        break;
    case IR_OP_ALLOC:
        if (!mem_tracker_alloc(&cr->mem, now, sim_buffer(&e->st[ci], op),
                               ir_class_string(c, op->u.mem.buffer),
                               (IrMemCategory)op->u.mem.category, op->u.mem.bytes, e->error))
            e->failed = true;
        finish_or_park(e, ci, opi, now);
        break;
    case IR_OP_FREE:
        if (!mem_tracker_free(&cr->mem, now, sim_buffer(&e->st[ci], op),
                              ir_class_string(c, op->u.mem.buffer), e->error))
            e->failed = true;
        finish_or_park(e, ci, opi, now);
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

/* Op `op` of class ci ends at `now` (its event): its successors' predecessor counts, the starts
 * of those ready. */
static void end_op(Engine *e, int ci, int opi, int64_t now)
{
    ClassState *st = &e->st[ci];
    SimClassResult *cr = &e->res->classes[ci];
    st->pending[opi] = -1;
    if (opi == st->run_op) {
        sim_acc(e, ci, &cr->overlap_cost_s,
                sim_ns_to_s(now - sim_stored_start_ns(e, ci, opi) - st->run_alone_ns));
        st->run_op = -1;
    }
    st->n_done++;
    /* Per event, whether or not the steady state is on, and sim_overlap_count for every op
     * (it returns at once for other than communication): guarding both (e.steady set; a
     * collective or send/recv) was tried and measured slower, 574-603 against 542-557 ms of
     * CPU for the 1T pp 64 layout (the op's cache miss moved where less work overlaps it). */
    const IrOp *op = ir_op(st->cls, opi);
    sim_overlap_count(e, ci, op, -1, now);
    e->res->makespan_ns = MAX(e->res->makespan_ns, now);
    bool host_op = st->cls->streams[op->stream].host;
    st->host_done += host_op && opi < st->host_below;
    if (host_op && st->host_stream >= 0) {
        st->host_pos = opi + 1;
        sim_host_decide(e, ci, opi);
    }
    for (uint32_t k = st->succ_start[opi]; k < st->succ_start[opi + 1] && !e->failed; k++) {
        uint32_t next = st->succ[k];
        /* ops past the periodic region (host_below) are not the steady state's */
        if ((int)next >= st->horizon && (int)next < st->host_below)
            st->horizon = (int)next + 1;
        if (!host_op && (int)next >= st->horizon_gpu && (int)next < st->host_below)
            st->horizon_gpu = (int)next + 1;
        int32_t left = --st->pending[next];
        if (left == 0 && (!st->host_mems || host_op || sim_host_ready(e, ci, (int)next, now)))
            sim_start_op(e, ci, (int)next, now);
        else if (left == 1 && !host_op && st->host_stream >= 0)
            sim_host_waits(e, ci, (int)next);
    }
    if (st->host_next >= 0) /* the host runs ahead: the rest of it now */
        sim_host_run_ahead(e, ci);
    while (st->frontier < st->n_ops && st->pending[st->frontier] < 0)
        st->frontier++;
    if (e->steady && ci == e->steady_cls && opi == e->steady_op && !e->failed) {
        if (!sim_host_checkpoint(e, now)) {
            if (!e->retry && !e->failed)
                sim_steady_postpone(e, now); /* a host handled ahead not done: later */
        } else {
            sim_steady_check(e, now);
            /* the ops GPU ops wait for moved with the skip: no host parks from here on */
            if (e->res->steady_periods)
                for (int c = 0; c < e->s->n_classes; c++)
                    e->st[c].host_wait = INT32_MAX;
        }
    }
}

static void report_deadlock(Engine *e)
{
    for (int ci = 0; ci < e->s->n_classes; ci++) {
        ClassState *st = &e->st[ci];
        for (int i = 0; i < st->n_ops; i++) {
            if (st->pending[i] >= 0) {
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

/* lazy_host: hosts that never wait for their GPU run lazily (sim_host.c); NULL also when such a
 * run could not keep the queue's order (e.retry): run it again without. */
static SimResult *engine_run(const IrSchedule *s, const SimConfig *cfg, GError **error,
                             bool lazy_host, const int64_t *omitted, SimPrep *prep,
                             const int *period)
{
    Engine e = {.s = s,
                .cfg = cfg,
                .error = error,
                .omitted = omitted,
                .prep = prep,
                .period = period,
                .pace = hw_gpu_pace(&cfg->topo->gpu, s->world),
                .last_pop_ns = -1};
    sim_overlap_init(&e);
    e.res = g_new0(SimResult, 1);
    e.res->n_classes = s->n_classes;
    e.res->classes = g_new0(SimClassResult, s->n_classes);
    e.st = g_new0(ClassState, s->n_classes);
    ktab_init(&e.rendezvous);
    ktab_init(&e.costs);
    pq_init(&e.pq);
    if (cfg->net) {
        e.flows = net_flows_new(cfg->net);
        e.builder = net_builder_new(cfg->net);
        ktab_init(&e.patterns);
        e.pending = g_ptr_array_new();
    }
    bool ok = compute_partners(&e);
    /* the times of every op, zero (not started): one calloc, so that a large one is fresh
     * pages from the kernel, resident only where written (SimClassResult) */
    size_t n_times = 0;
    for (int ci = 0; ci < s->n_classes; ci++)
        n_times += 2 * (size_t)MAX(1, ir_class_n_ops(s->classes[ci]));
    e.res->times = g_new0(int64_t, MAX(1, n_times));
    n_times = 0;
    for (int ci = 0; ci < s->n_classes; ci++) {
        SimClassResult *cr = &e.res->classes[ci];
        size_t n = (size_t)MAX(1, ir_class_n_ops(s->classes[ci]));
        cr->start_enc = e.res->times + n_times;
        cr->end_enc = cr->start_enc + n;
        n_times += 2 * n;
        mem_tracker_init(&cr->mem);
    }
    for (int ci = 0; ok && ci < s->n_classes; ci++) {
        prepare_class(&e, ci);
        sim_host_prepare(&e, ci, lazy_host);
    }
    if (ok)
        sim_steady_init(&e);
    if (ok && omitted)
        sim_gap_check(&e);
    /* Ops with nothing to wait for start at time zero, in program order. */
    for (int ci = 0; ok && ci < s->n_classes; ci++)
        for (int i = 0; i < e.st[ci].n_ops && !e.failed; i++)
            if (e.st[ci].pending[i] == 0)
                sim_start_op(&e, ci, i, 0);
    PqEvent ev;
    while (ok && !e.failed && !e.retry && pq_pop(&e.pq, &ev)) {
        if (ev.cls < -1) { /* a host op handled ahead ends: GPU ops wait for it */
            sim_host_event(&e, &ev);
            continue;
        }
        e.res->events++;
        e.last_pop_ns = ev.time_ns;
        if (ev.cls < 0) { /* the network: a transfer completes, unless the rates changed since */
            if (ev.op == e.net_version)
                net_event(&e, ev.time_ns);
            continue;
        }
        ClassState *st = &e.st[ev.cls];
        /* an end that was moved (rerate) left its earlier event behind */
        if (st->pending[ev.op] < 0 || ev.time_ns != sim_stored_end_ns(&e, ev.cls, ev.op))
            continue;
        end_op(&e, ev.cls, ev.op, ev.time_ns);
    }
    if (ok && !e.failed && !e.retry)
        sim_host_finish(&e);
    if (omitted && !e.gap_skipped)
        e.compact_refused = true; /* no skip: the gap was never added back */
    if (e.compact_refused && g_getenv("FSDPSIM_STEADY_DEBUG"))
        g_printerr("steady: the compact run is refused: a larger program or the full one runs "
                   "instead\n");
    ok = ok && !e.failed && !e.retry && !e.compact_refused;
    sim_steady_free(&e);
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
        g_free(e.st[ci].group_seq);
        g_free(e.st[ci].buffer_of);
        g_free(e.st[ci].compute_cost);
        sim_host_free(&e, ci);
        if (e.partners)
            g_free(e.partners[ci]);
    }
    g_free(e.partners);
    g_free(e.st);
    if (e.flows) {
        if (ok)
            sim_collect_links(e.res, cfg->net, e.flows);
        e.res->link_classes = net_flows_link_classes(e.flows);
        for (guint i = 0; i < e.pending->len; i++) {
            Pending *p = g_ptr_array_index(e.pending, i);
            if (p) {
                g_array_free(p->members, TRUE);
                g_free(p);
            }
        }
        g_ptr_array_free(e.pending, TRUE);
        ktab_destroy(&e.patterns, NULL);
        net_builder_free(e.builder);
        net_flows_free(e.flows);
    }
    ktab_destroy(&e.rendezvous, rendezvous_free);
    sim_spares_free(&e.spare_rendezvous, g_free);
    sim_spares_free(&e.spare_pending, g_free);
    sim_spares_free(&e.spare_members, members_free);
    ktab_destroy(&e.costs, g_free);
    pq_destroy(&e.pq);
    if (!ok) {
        sim_result_free(e.res);
        return NULL;
    }
    return e.res;
}

SimResult *sim_run_periods(const IrSchedule *s, const SimConfig *cfg, const int *period,
                           GError **error)
{
    const char *off = g_getenv("FSDPSIM_NO_LAZY_HOST");
    bool lazy = !(off && *off && strcmp(off, "0") != 0);
    SimResult *res = engine_run(s, cfg, error, lazy, NULL, NULL, period);
    /* abandoned (a tie), or an error, which the queue's run words as it always did */
    if (res || !lazy)
        return res;
    g_clear_error(error);
    return engine_run(s, cfg, error, false, NULL, NULL, period);
}

SimResult *sim_run(const IrSchedule *s, const SimConfig *cfg, GError **error)
{
    return sim_run_periods(s, cfg, NULL, error);
}

SimResult *sim_run_compact(const IrSchedule *s, const SimConfig *cfg, const int64_t *omitted_ops,
                           SimPrep *prep)
{
    /* the gap's host time is the lazy host's (sim_host.c): a run that needs every op queued,
     * or that fails in any way, is the full program's to make (and to word the error) */
    GError *error = NULL;
    SimResult *res = engine_run(s, cfg, &error, true, omitted_ops, prep, NULL);
    sim_prep_free(prep);
    g_clear_error(&error);
    return res;
}

void sim_result_free(SimResult *r)
{
    if (!r)
        return;
    for (int ci = 0; ci < r->n_classes; ci++) {
        sim_skip_fill_free(r->classes[ci].fill);
        sim_host_fill_free(r->classes[ci].host_fill);
        mem_tracker_clear(&r->classes[ci].mem);
    }
    g_free(r->times);
    g_free(r->classes);
    for (int i = 0; i < r->n_links; i++)
        g_free(r->links[i].name);
    g_free(r->links);
    g_free(r->util_samples);
    g_free(r);
}
