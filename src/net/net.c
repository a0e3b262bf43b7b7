/* net: links of a machine and the loads collectives put on them; see net.h.
 *
 * Link ids, W = nodes * gpus_per_node ranks, N = nodes, K = NICs per node, G = groups, L = G *
 * leaves per group (0 unless tapered):
 *   [0, W) GPU TX by rank, [W, 2W) GPU RX, then N*K NIC TX, N*K NIC RX, G group OUT, G group IN,
 *   L leaf UP, L leaf DOWN. */
#include "net.h"

#include <math.h>
#include <string.h>

struct NetLoadBuilder {
    const NetTopo *t;
    double *bytes;     /* dense, per link */
    uint32_t *touched; /* links with bytes > 0, in first-touch order */
    uint64_t *marked;  /* the same as bits, to list them in link order (net_builder_take) */
    int n_touched;
    int *nics, *far_nics; /* scratch: distinct NICs of a node's members */
};

static const char *const kind_names[NET_LINK_KIND_COUNT] = {"nvlink.tx", "nvlink.rx",  "nic.tx",
                                                            "nic.rx",    "global.out", "global.in",
                                                            "leaf.up",   "leaf.down"};

const char *net_link_kind_name(NetLinkKind kind)
{
    return kind_names[kind];
}

NetTopo *net_topo_new(const HwTopology *topo, int nodes, int gpus_per_node)
{
    NetTopo *t = g_new0(NetTopo, 1);
    t->topo = topo;
    t->nodes = nodes;
    t->gpus_per_node = gpus_per_node;
    /* A node without a NIC (a single-node machine) still gets one link out, at PCIe speed, so that
     * a multi-node layout is slow rather than impossible. */
    t->nics_per_node = MAX(1, topo->nics_per_node);
    t->nodes_per_group = topo->net_nodes_per_group > 0 ? topo->net_nodes_per_group : nodes;
    t->groups = (nodes + t->nodes_per_group - 1) / t->nodes_per_group;
    /* Leaves with less uplink bandwidth than their ports bring (node ports cabled in order,
     * ceil(ports / leaves) per leaf). Non-blocking ones cannot be a bottleneck: left out, so a
     * non-blocking fabric gives the same results as one described without leaves. */
    if (topo->net_leaves_per_group > 0 && topo->net_nodes_per_group > 0 &&
        topo->nics_per_node > 0) {
        int ports = topo->net_nodes_per_group * topo->nics_per_node;
        int per_leaf = (ports + topo->net_leaves_per_group - 1) / topo->net_leaves_per_group;
        if (topo->net_leaf_uplink_Bps < per_leaf * topo->nic_Bps) {
            t->leaves_per_group = topo->net_leaves_per_group;
            t->ports_per_leaf = per_leaf;
        }
    }
    int w = nodes * gpus_per_node, nk = nodes * t->nics_per_node;
    int gl = 2 * w + 2 * nk + 2 * t->groups; /* first leaf link */
    t->n_links = gl + 2 * t->groups * t->leaves_per_group;
    uint32_t l = (uint32_t)(t->groups * t->leaves_per_group);
    const uint32_t count[NET_LINK_KIND_COUNT] = {(uint32_t)w, (uint32_t)w, (uint32_t)nk,
                                                 (uint32_t)nk, (uint32_t)t->groups,
                                                 (uint32_t)t->groups, l, l};
    t->kind_base[0] = 0;
    for (int k = 0; k < NET_LINK_KIND_COUNT; k++)
        t->kind_base[k + 1] = t->kind_base[k] + count[k];
    t->capacity_Bps = g_new(double, t->n_links);
    double nic = topo->nics_per_node > 0 ? topo->nic_Bps : topo->pcie_Bps;
    /* Without global-link figures the groups are joined without a bottleneck. */
    double global = topo->net_group_global_Bps > 0 ? topo->net_group_global_Bps : INFINITY;
    for (int i = 0; i < t->n_links; i++) {
        double c;
        if (i < 2 * w)
            c = topo->gpu_link_Bps;
        else if (i < 2 * w + 2 * nk)
            c = nic;
        else if (i < gl)
            c = global;
        else
            c = topo->net_leaf_uplink_Bps;
        t->capacity_Bps[i] = c;
    }
    return t;
}

void net_topo_free(NetTopo *t)
{
    if (!t)
        return;
    g_free(t->capacity_Bps);
    g_free(t);
}

static int world(const NetTopo *t)
{
    return t->nodes * t->gpus_per_node;
}

/* At most 7 comparisons against the bases net_topo_new computed once (it used to recompute them
 * on every call: 30 % of a JUPITER run, called for every one of its 95k links). */
NetLinkKind net_link_kind(const NetTopo *t, uint32_t link)
{
    int k = 0;
    while (k + 1 < NET_LINK_KIND_COUNT && link >= t->kind_base[k + 1])
        k++;
    return (NetLinkKind)k;
}

char *net_link_name(const NetTopo *t, uint32_t link)
{
    NetLinkKind kind = net_link_kind(t, link);
    uint32_t i = link - t->kind_base[kind];
    switch (kind) {
    case NET_LINK_GPU_TX:
    case NET_LINK_GPU_RX:
        return g_strdup_printf("node%u.gpu%u.%s", i / (uint32_t)t->gpus_per_node,
                               i % (uint32_t)t->gpus_per_node,
                               kind == NET_LINK_GPU_TX ? "tx" : "rx");
    case NET_LINK_NIC_TX:
    case NET_LINK_NIC_RX:
        return g_strdup_printf("node%u.nic%u.%s", i / (uint32_t)t->nics_per_node,
                               i % (uint32_t)t->nics_per_node,
                               kind == NET_LINK_NIC_TX ? "tx" : "rx");
    case NET_LINK_LEAF_UP:
    case NET_LINK_LEAF_DOWN:
        return g_strdup_printf("group%u.leaf%u.%s", i / (uint32_t)t->leaves_per_group,
                               i % (uint32_t)t->leaves_per_group,
                               kind == NET_LINK_LEAF_UP ? "up" : "down");
    default:
        return g_strdup_printf("group%u.global.%s", i, kind == NET_LINK_GROUP_OUT ? "out" : "in");
    }
}

static uint32_t gpu_tx(const NetTopo *t, int rank)
{
    return (uint32_t)rank;
}
static uint32_t gpu_rx(const NetTopo *t, int rank)
{
    return (uint32_t)(world(t) + rank);
}
/* NIC index within the node of a rank: GPU i of the physical node uses NIC i * nics / gpus. */
static int nic_of(const NetTopo *t, int rank)
{
    int local = rank % t->gpus_per_node;
    return local * t->nics_per_node / MAX(1, t->topo->gpus_per_node);
}
static uint32_t nic_tx(const NetTopo *t, int node, int nic)
{
    return (uint32_t)(2 * world(t) + node * t->nics_per_node + nic);
}
static uint32_t nic_rx(const NetTopo *t, int node, int nic)
{
    return (uint32_t)(2 * world(t) + t->nodes * t->nics_per_node + node * t->nics_per_node + nic);
}
static uint32_t group_out(const NetTopo *t, int group)
{
    return (uint32_t)(2 * world(t) + 2 * t->nodes * t->nics_per_node + group);
}
static uint32_t group_in(const NetTopo *t, int group)
{
    return (uint32_t)(2 * world(t) + 2 * t->nodes * t->nics_per_node + t->groups + group);
}

/* The leaf (global index, group * leaves_per_group + leaf) of a node's NIC port: ports of a group
 * are cabled node-major, ports_per_leaf to each leaf. -1 when leaves are not modelled. */
static int leaf_of(const NetTopo *t, int node, int nic)
{
    if (t->leaves_per_group == 0)
        return -1;
    int group = node / t->nodes_per_group;
    int port = (node % t->nodes_per_group) * t->nics_per_node + nic;
    return group * t->leaves_per_group + port / t->ports_per_leaf;
}
static uint32_t leaf_up(const NetTopo *t, int leaf)
{
    return (uint32_t)(2 * world(t) + 2 * t->nodes * t->nics_per_node + 2 * t->groups + leaf);
}
static uint32_t leaf_down(const NetTopo *t, int leaf)
{
    return leaf_up(t, leaf) + (uint32_t)(t->groups * t->leaves_per_group);
}

NetLoadBuilder *net_builder_new(const NetTopo *t)
{
    NetLoadBuilder *b = g_new0(NetLoadBuilder, 1);
    b->t = t;
    b->bytes = g_new0(double, t->n_links);
    b->touched = g_new(uint32_t, t->n_links);
    b->marked = g_new0(uint64_t, t->n_links / 64 + 1);
    b->nics = g_new(int, t->nics_per_node);
    b->far_nics = g_new(int, t->nics_per_node);
    return b;
}

void net_builder_free(NetLoadBuilder *b)
{
    if (!b)
        return;
    g_free(b->bytes);
    g_free(b->touched);
    g_free(b->marked);
    g_free(b->nics);
    g_free(b->far_nics);
    g_free(b);
}

static inline void add(NetLoadBuilder *b, uint32_t link, double bytes)
{
    if (bytes <= 0)
        return;
    if (b->bytes[link] == 0) {
        b->touched[b->n_touched++] = link;
        b->marked[link / 64] |= (uint64_t)1 << (link % 64);
    }
    b->bytes[link] += bytes;
}

static int node_of(const NetTopo *t, int rank)
{
    return rank / t->gpus_per_node;
}

/* Distinct NICs used by members[from, to) (all on one node), written to nics. */
static int node_nics(NetLoadBuilder *b, const int *members, int from, int to, int *nics)
{
    int n = 0;
    for (int i = from; i < to; i++) {
        int nic = nic_of(b->t, members[i]);
        bool seen = false;
        for (int j = 0; j < n && !seen; j++)
            seen = nics[j] == nic;
        if (!seen)
            nics[n++] = nic;
    }
    return n;
}

/* Bytes from node segment [from, to) to node segment [nfrom, nto) through tapered leaves. With as
 * many NICs on both sides, the i-th of one talks to the i-th of the other (NCCL gives each
 * channel one NIC a side, matched by rail); otherwise the bytes spread over all pairs. Only what
 * joins ports on different leaves goes up and down. */
static void add_leaves(NetLoadBuilder *b, const int *m, int from, int to, int nfrom, int nto,
                       double bytes)
{
    const NetTopo *t = b->t;
    if (t->leaves_per_group == 0)
        return;
    int a = node_of(t, m[from]), z = node_of(t, m[nfrom]);
    int na = node_nics(b, m, from, to, b->nics), nz = node_nics(b, m, nfrom, nto, b->far_nics);
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nz; j++) {
            if (na == nz && i != j)
                continue;
            double share = na == nz ? bytes / na : bytes / na / nz;
            int la = leaf_of(t, a, b->nics[i]), lz = leaf_of(t, z, b->far_nics[j]);
            if (la != lz) {
                add(b, leaf_up(t, la), share);
                add(b, leaf_down(t, lz), share);
            }
        }
}

/* Bytes leaving node segment [from, to) towards the node of segment [nfrom, nto): spread over the
 * NICs each side uses, and through the global links when the nodes are in different groups. */
static void add_inter(NetLoadBuilder *b, const int *m, int from, int to, int nfrom, int nto,
                      double bytes)
{
    const NetTopo *t = b->t;
    int a = node_of(t, m[from]), z = node_of(t, m[nfrom]);
    int n = node_nics(b, m, from, to, b->nics);
    for (int i = 0; i < n; i++)
        add(b, nic_tx(t, a, b->nics[i]), bytes / n);
    n = node_nics(b, m, nfrom, nto, b->nics);
    for (int i = 0; i < n; i++)
        add(b, nic_rx(t, z, b->nics[i]), bytes / n);
    int ga = a / t->nodes_per_group, gz = z / t->nodes_per_group;
    if (ga != gz) {
        add(b, group_out(t, ga), bytes);
        add(b, group_in(t, gz), bytes);
    }
    add_leaves(b, m, from, to, nfrom, nto, bytes);
}

/* Splits members (sorted by node) into per-node segments: seg[i] is the first member of segment
 * i, seg[nseg] = n. Returns nseg. */
static int segments(const NetTopo *t, const int *m, int n, int *seg)
{
    int ns = 0;
    for (int i = 0; i < n; i++)
        if (i == 0 || node_of(t, m[i]) != node_of(t, m[i - 1]))
            seg[ns++] = i;
    seg[ns] = n;
    return ns;
}

void net_builder_ring(NetLoadBuilder *b, const int *m, int n, double v)
{
    if (n < 2 || v <= 0)
        return;
    int *seg = g_new(int, n + 1);
    int ns = segments(b->t, m, n, seg);
    for (int s = 0; s < ns; s++) {
        int k = seg[s + 1] - seg[s];
        /* Inside a node each GPU forwards to the next; one edge per channel leaves the node, and
         * the channels rotate which GPU that is, so each GPU carries (k-1)/k of the volume. */
        double intra = ns == 1 ? v : v * (k - 1) / k;
        for (int i = seg[s]; i < seg[s + 1]; i++) {
            add(b, gpu_tx(b->t, m[i]), intra);
            add(b, gpu_rx(b->t, m[i]), intra);
        }
        if (ns > 1) {
            int nx = (s + 1) % ns;
            add_inter(b, m, seg[s], seg[s + 1], seg[nx], seg[nx + 1], v);
        }
    }
    g_free(seg);
}

/* NCCL's model runs the tree at half the bus bandwidth (algorithm bandwidth = busBw / 2,
 * tuning.cc): the reduction goes up and the result comes down, so every GPU and every node moves
 * the data twice. The loads follow that, so that alone the flow model agrees with the model NCCL
 * chose the tree by: each GPU (of a node with more than one) and each node's NICs carry 2 x bytes
 * each way; between groups, each tree edge carries the bytes up and down. */
void net_builder_tree(NetLoadBuilder *b, const int *m, int n, double bytes)
{
    if (n < 2 || bytes <= 0)
        return;
    const NetTopo *t = b->t;
    int *seg = g_new(int, n + 1);
    int ns = segments(t, m, n, seg);
    for (int s = 0; s < ns; s++) {
        if (seg[s + 1] - seg[s] > 1)
            for (int i = seg[s]; i < seg[s + 1]; i++) {
                add(b, gpu_tx(t, m[i]), 2 * bytes);
                add(b, gpu_rx(t, m[i]), 2 * bytes);
            }
        if (ns < 2)
            continue;
        int node = node_of(t, m[seg[s]]), k = node_nics(b, m, seg[s], seg[s + 1], b->nics);
        for (int i = 0; i < k; i++) {
            add(b, nic_tx(t, node, b->nics[i]), 2 * bytes / k);
            add(b, nic_rx(t, node, b->nics[i]), 2 * bytes / k);
        }
        if (s > 0) {
            int ps = (s - 1) / 2, parent = node_of(t, m[seg[ps]]);
            int g = node / t->nodes_per_group, gp = parent / t->nodes_per_group;
            if (g != gp) {
                add(b, group_out(t, g), bytes);
                add(b, group_in(t, gp), bytes);
                add(b, group_out(t, gp), bytes);
                add(b, group_in(t, g), bytes);
            }
            add_leaves(b, m, seg[s], seg[s + 1], seg[ps], seg[ps + 1], bytes);
            add_leaves(b, m, seg[ps], seg[ps + 1], seg[s], seg[s + 1], bytes);
        }
    }
    g_free(seg);
}

void net_builder_alltoall(NetLoadBuilder *b, const int *m, int n, double p)
{
    if (n < 2 || p <= 0)
        return;
    const NetTopo *t = b->t;
    int *seg = g_new(int, n + 1);
    int ns = segments(t, m, n, seg);
    int *in_group = g_new0(int, t->groups);
    for (int i = 0; i < n; i++)
        in_group[node_of(t, m[i]) / t->nodes_per_group]++;
    int *in_leaf = t->leaves_per_group ? g_new0(int, t->groups * t->leaves_per_group) : NULL;
    for (int i = 0; i < n && in_leaf; i++)
        in_leaf[leaf_of(t, node_of(t, m[i]), nic_of(t, m[i]))]++;
    for (int s = 0; s < ns; s++) {
        int k = seg[s + 1] - seg[s], node = node_of(t, m[seg[s]]), g = node / t->nodes_per_group;
        for (int i = seg[s]; i < seg[s + 1]; i++) {
            add(b, gpu_tx(t, m[i]), p * (k - 1));
            add(b, gpu_rx(t, m[i]), p * (k - 1));
            add(b, nic_tx(t, node, nic_of(t, m[i])), p * (n - k));
            add(b, nic_rx(t, node, nic_of(t, m[i])), p * (n - k));
        }
        add(b, group_out(t, g), p * k * (n - in_group[g]));
        add(b, group_in(t, g), p * k * (n - in_group[g]));
        /* through tapered leaves: to every member on another node and another leaf */
        for (int i = seg[s]; i < seg[s + 1] && in_leaf; i++) {
            int leaf = leaf_of(t, node, nic_of(t, m[i])), here = 0;
            for (int j = seg[s]; j < seg[s + 1]; j++)
                here += leaf_of(t, node, nic_of(t, m[j])) == leaf;
            double out = p * ((n - k) - (in_leaf[leaf] - here));
            add(b, leaf_up(t, leaf), out);
            add(b, leaf_down(t, leaf), out);
        }
    }
    g_free(in_leaf);
    g_free(in_group);
    g_free(seg);
}

void net_builder_p2p(NetLoadBuilder *b, int from, int to, double bytes)
{
    const NetTopo *t = b->t;
    if (from == to || bytes <= 0)
        return;
    int a = node_of(t, from), z = node_of(t, to);
    if (a == z) {
        add(b, gpu_tx(t, from), bytes);
        add(b, gpu_rx(t, to), bytes);
        return;
    }
    int m[2] = {from, to};
    add_inter(b, m, 0, 1, 1, 2, bytes);
}

/* Sorted by link: a pattern over a whole machine touches a good part of its links, and then one
 * pass over the dense array is cheaper than sorting (JUPITER: 100k links); a smaller one is
 * listed from the bitmap of the links it touched (a word per 64 links: the 1T layout's 12k
 * links in 192 words), a few by insertion. The sort by qsort was 1.7 % of the 1T pipeline's
 * instructions (256 patterns of a few hundred links). */
NetLoad *net_builder_take(NetLoadBuilder *b, int *n_loads)
{
    int n = b->n_touched;
    NetLoad *out = g_new(NetLoad, MAX(1, n));
    if (n >= b->t->n_links / 16) {
        int k = 0;
        for (int l = 0; l < b->t->n_links && k < n; l++)
            if (b->bytes[l] > 0) {
                out[k++] = (NetLoad){(uint32_t)l, b->bytes[l]};
                b->bytes[l] = 0;
            }
        g_assert(k == n);
    } else if (n <= 32) {
        for (int i = 0; i < n; i++) {
            uint32_t l = b->touched[i];
            int j = i;
            for (; j > 0 && out[j - 1].link > l; j--)
                out[j] = out[j - 1];
            out[j] = (NetLoad){l, b->bytes[l]};
            b->bytes[l] = 0;
        }
    } else {
        int k = 0;
        for (int w = 0; w <= b->t->n_links / 64 && k < n; w++)
            for (uint64_t bits = b->marked[w]; bits; bits &= bits - 1) {
                uint32_t l = (uint32_t)w * 64 + (uint32_t)__builtin_ctzll(bits);
                out[k++] = (NetLoad){l, b->bytes[l]};
                b->bytes[l] = 0;
            }
        g_assert(k == n);
    }
    if (n >= b->t->n_links / 64) /* a word a link, or fewer words than links */
        memset(b->marked, 0, sizeof(uint64_t) * (size_t)(b->t->n_links / 64 + 1));
    else
        for (int i = 0; i < n; i++)
            b->marked[out[i].link / 64] = 0;
    *n_loads = n;
    b->n_touched = 0;
    return out;
}

double net_load_time_s(const NetTopo *t, const NetLoad *loads, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s = MAX(s, loads[i].bytes / t->capacity_Bps[loads[i].link]);
    return s;
}
