/* coll: the analytic NCCL cost model; see coll.h.
 *
 * Constants are NCCL's (NVIDIA/nccl src/graph/tuning.cc, 2.30.x, as summarised in
 * ../shared/data/hardware.md): base latencies per algorithm and protocol, and per-hop latencies
 * for NVLink and network hops. Protocol efficiencies: LL sends 8 bytes of payload per 16-byte
 * line (50 %), LL128 120 of 128 bytes (93.75 %), Simple all of it. */
#include "coll.h"

#include <math.h>
#include <string.h>

/* [algo][proto], microseconds */
static const double base_latency_us[COLL_ALGO_COUNT][COLL_PROTO_COUNT] = {
    {6.6, 14.0, 8.4}, /* ring */
    {6.8, 14.0, 8.4}, /* tree */
};
static const double nvlink_hop_us[COLL_ALGO_COUNT][COLL_PROTO_COUNT] = {
    {0.6, 1.9, 3.4},  /* ring */
    {0.6, 1.25, 4.0}, /* tree */
};
static const double pcie_hop_us[COLL_ALGO_COUNT][COLL_PROTO_COUNT] = {
    {1.0, 2.5, 5.7},
    {1.0, 1.9, 4.0},
};
static const double net_hop_us[COLL_ALGO_COUNT][COLL_PROTO_COUNT] = {
    {2.7, 4.0, 14.0},
    {5.0, 8.5, 14.0},
};
static const double proto_efficiency[COLL_PROTO_COUNT] = {0.5, 120.0 / 128.0, 1.0};

/* NCCL's ceiling on LL's bus bandwidth, GB/s, by GPU generation and 1, 2, more nodes
 * (tuning.cc llMaxBws). */
enum { ARCH_VOLTA, ARCH_AMPERE, ARCH_HOPPER, ARCH_COUNT };
static const double ll_max_GBps[ARCH_COUNT][3] = {
    {39.0, 39.0, 20.4}, {87.7, 22.5, 19.0}, {141.0, 45.0, 35.0}};

static int gpu_arch(const HwTopology *topo)
{
    const char *name = topo->gpu.name ? topo->gpu.name : "";
    if (strstr(name, "H100") || strstr(name, "H200") || strstr(name, "GH200"))
        return ARCH_HOPPER;
    if (strstr(name, "V100"))
        return ARCH_VOLTA;
    return ARCH_AMPERE;
}

/* The bus bandwidth NCCL's model expects of an algorithm and protocol ("various model
 * refinements" in tuning.cc ncclTopoTuneModel): LL moves 8 bytes per 16-byte line and its ring
 * reaches a quarter of the link (a third for the gathers on one node), capped per GPU generation;
 * LL128 0.92 of it (0.7 with one GPU per node); the tree 0.92, its LL 1/3.8 of that and its LL128
 * 7/9 inside a node. The per-channel caps of LL128 and the tree are not applied: they need NCCL's
 * channel count, which the topology does not give, and they bind only with few channels. */
static double nccl_bus_bw(const HwTopology *topo, CollAlgo a, CollProto p, const CollShape *sh, double bus)
{
    int nidx = sh->nodes <= 1 ? 0 : sh->nodes == 2 ? 1 : 2;
    double ll_max = ll_max_GBps[gpu_arch(topo)][nidx] * 1e9;
    bool reduce = sh->kind == IR_COLL_ALLREDUCE;
    if (a == COLL_ALGO_RING) {
        if (p == COLL_PROTO_LL)
            return MIN(ll_max, bus * (sh->nodes > 1 || reduce ? 1.0 / 4.0 : 1.0 / 3.0));
        if (p == COLL_PROTO_LL128)
            return bus * (sh->ranks_per_node < 2 ? 0.7 : 0.92);
        return bus;
    }
    bus *= 0.92;
    if (p == COLL_PROTO_LL)
        return MIN(bus / 3.8, ll_max);
    if (p == COLL_PROTO_LL128)
        return bus * (sh->nodes == 1 ? 7.0 / 9.0 : 120.0 / 128.0);
    return bus;
}

static const char *const algo_names[COLL_ALGO_COUNT] = {"ring", "tree"};
static const char *const proto_names[COLL_PROTO_COUNT] = {"LL", "LL128", "Simple"};

double coll_proto_efficiency(CollProto proto)
{
    return proto_efficiency[proto];
}

const char *coll_algo_name(CollAlgo algo)
{
    return algo_names[algo];
}
const char *coll_proto_name(CollProto proto)
{
    return proto_names[proto];
}

bool coll_algo_parse(const char *text, int *out)
{
    for (int i = 0; i < COLL_ALGO_COUNT; i++) {
        if (g_ascii_strcasecmp(text, algo_names[i]) == 0) {
            *out = i;
            return true;
        }
    }
    return false;
}

bool coll_proto_parse(const char *text, int *out)
{
    for (int i = 0; i < COLL_PROTO_COUNT; i++) {
        if (g_ascii_strcasecmp(text, proto_names[i]) == 0) {
            *out = i;
            return true;
        }
    }
    return false;
}

double coll_busbw_factor(IrCollKind kind, int n)
{
    if (n <= 1)
        return 0;
    switch (kind) {
    case IR_COLL_ALLREDUCE: return 2.0 * (n - 1) / n;
    case IR_COLL_ALLGATHER:
    case IR_COLL_REDUCE_SCATTER:
    case IR_COLL_ALLTOALL: return (double)(n - 1) / n;
    case IR_COLL_BROADCAST: return 1.0;
    default: return 1.0;
    }
}

double coll_bytes_sent_per_rank(IrCollKind kind, uint64_t bytes, int n)
{
    return (double)bytes * coll_busbw_factor(kind, n);
}

static bool is_pcie(const HwTopology *topo)
{
    return topo->gpu_link && strncmp(topo->gpu_link, "pcie", 4) == 0;
}

/* Bus bandwidth of the slowest part of the path. A ring that spans nodes crosses each node's
 * boundary once per channel and direction, so its bus bandwidth across nodes is the bandwidth of
 * the NICs that the node's group members use (one NIC per GPU where a node has as many NICs as
 * GPUs), independent of how many GPUs per node take part. */
static double bus_bandwidth(const HwTopology *topo, const CollShape *sh)
{
    double bw = INFINITY;
    if (sh->ranks_per_node > 1)
        bw = topo->gpu_link_Bps;
    if (sh->nodes > 1) {
        double nics_per_gpu = topo->nics_per_node > 0
                                  ? (double)topo->nics_per_node / topo->gpus_per_node
                                  : 0;
        double nics = MAX(1.0, MIN((double)topo->nics_per_node, sh->ranks_per_node * nics_per_gpu));
        double net = topo->nics_per_node > 0 ? nics * topo->nic_Bps : topo->pcie_Bps;
        bw = MIN(bw, net);
    }
    return isfinite(bw) ? bw : topo->gpu_link_Bps;
}

static int log2_ceil(int n)
{
    int l = 0;
    while ((1 << l) < n)
        l++;
    return l;
}

/* Steps of the ring: allreduce 2(n-1), others n-1; of those, how many cross a node boundary. */
static void ring_steps(const CollShape *sh, int *steps, int *inter_steps)
{
    int n = sh->nranks, nodes = sh->nodes;
    if (sh->kind == IR_COLL_ALLREDUCE) {
        *steps = 2 * (n - 1);
        *inter_steps = 2 * (nodes - 1);
    } else {
        *steps = n - 1;
        *inter_steps = nodes - 1;
    }
}

static double analytic_time(const CollModel *self, const CollShape *sh, CollChoice *choice)
{
    const HwTopology *topo = self->topo;
    CollChoice best = {COLL_ALGO_RING, COLL_PROTO_SIMPLE, 0, 0, 1};
    double best_s = INFINITY;
    if (sh->nranks <= 1 || sh->bytes == 0) {
        if (choice)
            *choice = best;
        return 0;
    }
    const double (*intra_hop)[COLL_PROTO_COUNT] = is_pcie(topo) ? pcie_hop_us : nvlink_hop_us;
    double bus = bus_bandwidth(topo, sh);
    for (int a = 0; a < COLL_ALGO_COUNT; a++) {
        /* NCCL's tree only implements allreduce, and inside one node it is a chain: only the
         * ring is considered there. */
        if (a == COLL_ALGO_TREE && (sh->kind != IR_COLL_ALLREDUCE || sh->nodes < 2))
            continue;
        if (self->force_algo >= 0 && self->force_algo != a &&
            !(a == COLL_ALGO_RING && sh->kind != IR_COLL_ALLREDUCE))
            continue;
        for (int p = 0; p < COLL_PROTO_COUNT; p++) {
            if (self->force_proto >= 0 && self->force_proto != p)
                continue;
            double lat_us = base_latency_us[a][p];
            double ratio; /* algorithm bandwidth = bus bandwidth * ratio */
            if (a == COLL_ALGO_RING) {
                int steps, inter;
                ring_steps(sh, &steps, &inter);
                lat_us += (steps - inter) * intra_hop[a][p] + inter * net_hop_us[a][p];
                ratio = 1.0 / coll_busbw_factor(sh->kind, sh->nranks);
            } else {
                /* double binary tree over nodes, chain inside a node, up and down */
                lat_us += 2 * ((sh->ranks_per_node - 1) * intra_hop[a][p] +
                               log2_ceil(sh->nodes) * net_hop_us[a][p]);
                ratio = 0.5;
            }
            double eff_bus = nccl_bus_bw(topo, (CollAlgo)a, (CollProto)p, sh, bus);
            double algbw = eff_bus * ratio;
            double t = lat_us * 1e-6 + (double)sh->bytes / algbw;
            if (t < best_s) {
                best_s = t;
                best = (CollChoice){(CollAlgo)a, (CollProto)p, lat_us * 1e-6, eff_bus, eff_bus / bus};
            }
        }
    }
    if (choice)
        *choice = best;
    return best_s;
}

static double analytic_p2p(const CollModel *self, uint64_t bytes, bool same_node)
{
    const HwTopology *topo = self->topo;
    if (same_node)
        return topo->gpu_link_latency_s + (double)bytes / topo->gpu_link_Bps;
    double bw = topo->nics_per_node > 0 ? topo->nic_Bps : topo->pcie_Bps;
    return topo->net_latency_s + (double)bytes / bw;
}

void coll_model_analytic_init(CollModel *model, const HwTopology *topo)
{
    *model = (CollModel){
        .name = "analytic-nccl",
        .time_s = analytic_time,
        .p2p_s = analytic_p2p,
        .topo = topo,
        .force_algo = -1,
        .force_proto = -1,
    };
}
