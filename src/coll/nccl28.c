/* coll/nccl28: NCCL 2.8-2.11's tuner where it differs from today's; see nccl28.h.
 *
 * Every number is NCCL's, from tuning.cc at tags v2.8.4-1 (identical at v2.9.9-1) and v2.10.3-1
 * (identical at v2.11.4-1). 2.10 kept 2.8's latencies, LL's 1.8 across nodes, the ring's plateau
 * and the A100's 235 GB/s, and changed the per-channel caps (LL128 a flat 20 GB/s, Ampere's tree
 * 23.6 / 17.8), the tree's LL128 factor across nodes (0.915 -> 120/128) and its LL128 correction
 * row. 2.12 raised the ring's Simple network hop to 28 us; the latency tables and caps changed
 * again up to 2.22: releases 2.12 to 2.22 get their own (nccl_tables.c), later ones today's
 * (coll.c). */
#include "nccl28.h"
#include "coll_priv.h"

#include <math.h>

/* Releases before this one get the rules below; those from 2.10 their 2.10 variants. */
#define NCCL28_END 21200
#define NCCL210 21000

bool nccl28_applies(const CollModel *model)
{
    return model->nccl_version > 0 && model->nccl_version < NCCL28_END;
}

/* An A100 ("compCap80") communicator's bus bandwidth, one node or more, at most 235 GB/s
 * (tuning.cc v2.8.4-1 l. 124, "if (compCap80) busBw = std::min(busBw, 235.0f)"; still in 2.11). */
#define NCCL28_A100_BUS_MAX_BPS 235e9

double nccl28_bus_cap(const CollModel *model, double bus)
{
    if (nccl28_applies(model) && model->topo->gpu.compute_capability == 80)
        return MIN(bus, NCCL28_A100_BUS_MAX_BPS);
    return bus;
}

/* tuning.cc v2.8.4-1 l. 56-70 (baseLat, hwLat): other base latencies than today's (ring LL 3.6,
 * ring LL128 10, tree Simple 0), 28 us per hop of the tree's Simple on every kind of link ("the
 * latency a 256kB chunk"), 9.6 per network hop of the ring's Simple, 0.47 and 0.52 per NVLink
 * hop of LL. */
const double nccl28_base_latency_us[2][COLL_PROTO_COUNT] = {{3.6, 10.0, 8.4}, {4.4, 4.4, 0.0}};
const double nccl28_nvlink_hop_us[2][COLL_PROTO_COUNT] = {{0.47, 1.9, 3.4}, {0.52, 1.25, 28.0}};
const double nccl28_pcie_hop_us[2][COLL_PROTO_COUNT] = {{1.0, 2.5, 5.7}, {1.0, 1.9, 28.0}};
const double nccl28_net_hop_us[2][COLL_PROTO_COUNT] = {{2.7, 4.0, 9.6}, {5.0, 8.5, 28.0}};
/* treeCorrectionFactor's LL128 row (v2.8.4-1 l. 267): lower than today's from 512 KiB on, 0.92
 * at the top; v2.10.3-1 l. 269: 0.6 from 512 KiB to 4 MiB, 1.0 at the top */
static const double tree_correction_ll128[2][23] = {
    {1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .5, .6, .6, .7, .7, .8, .9, .9, .92, .92},
    {1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .6, .6, .6, .8, .9, .9, .9, .9, 1.0, 1.0}};

double nccl28_tree_correction_ll128(const CollModel *model, int log_size)
{
    return tree_correction_ll128[model->nccl_version >= NCCL210][log_size];
}

/* Per channel, GB/s: LL128 by collective (ll128MaxBwPerCh, v2.8.4-1 l. 74: broadcast 18.8,
 * reduce 12.0, all-gather 18.3, reduce-scatter 15.2, all-reduce 16.9; from 2.10 20.0 for all) and
 * the tree by release, GPU and node count (perChMaxTreeBws, l. 76: [<2.10, 2.10-2.11][Volta,
 * A100][2 nodes, more]; every GPU but an A100, "compCap80", takes Volta's row). */
static const double ll128_max_per_channel_GBps[IR_COLL_KIND_COUNT] = {
    [IR_COLL_ALLGATHER] = 18.3,
    [IR_COLL_REDUCE_SCATTER] = 15.2,
    [IR_COLL_ALLREDUCE] = 16.9,
    [IR_COLL_BROADCAST] = 18.8,
    [IR_COLL_ALLTOALL] = INFINITY};
static const double tree_max_per_channel_GBps[2][2][2] = {{{18.5, 10.0}, {22.5, 16.0}},
                                                           {{18.5, 10.0}, {23.6, 17.8}}};

/* As today's ring latency (coll.c ring_latency_us) but (l. 141-155, 281): no network proxy
 * overhead and no exception for one rank per node, LL's intra-node hops 1.8 times as long across
 * nodes, and the "plateau effect of ring" 1.9 on every GPU, on the whole latency, from 4 KiB per
 * rank on (nBytes >= nRanks/16 x 64 KiB). */
double nccl28_ring_latency_us(const CollShape *sh, CollProto p, double base_us, double intra_hop_us,
                              int steps, int inter_steps)
{
    if (sh->nodes > 1 && p == COLL_PROTO_LL)
        intra_hop_us *= 1.8;
    double lat = base_us + (steps - inter_steps) * intra_hop_us +
                 inter_steps * nccl28_net_hop_us[COLL_ALGO_RING][p];
    if (p == COLL_PROTO_SIMPLE && sh->nodes > 1 && sh->kind == IR_COLL_ALLREDUCE &&
        (double)sh->bytes >= sh->nranks / 16.0 * 65536)
        lat *= 1.9;
    return lat;
}

/* The tuner's refinements (l. 118-130) with that release's per-channel caps, which bind here:
 * - an A100 communicator at most 235 GB/s (nccl28_bus_cap);
 * - LL128 at most ll128MaxBwPerCh per channel, ring and tree; the tree's LL128 across nodes 0.915;
 * - the tree at most perChMaxTreeBws per channel, then LL 1/3.8 of that.
 * The channel count is the graph's (graphs[a]->nChannels, which the tuner multiplies). NCCL 2.8's
 * search runs at the fastest speed of its grid (42, 30, 24, 21, 18, 15, 12 ...) that a GPU's path
 * to a NIC carries and puts as many channels on each NIC as its width holds at that speed
 * (search.cc v2.8.4-1 l. 651-720); it duplicates channels only from 25 GB/s (l. 798), and the tree
 * gets the ring's count (init.cc l. 656, 694). On both ABCI nodes a NIC holds one: HDR's 25 GB/s
 * (NCCL's width, 200 Gb/s / 8) at 24 (an A100's PCIe Gen4 x16 in NCCL's units: 16 x 120 / 80,
 * topo.cc l. 310-363), EDR's 12.5 at 12 (a V100's Gen3 x16). So the graph has one channel per
 * NIC, the node's NICs in all; that is taken here for every machine (an HDR NIC behind a Gen3 GPU
 * would hold two, not modelled). The two-node tree's raised intra-node speed (`tree_gain`) comes
 * first, as in NCCL (search.cc, then tuning.cc). Costs a few compares per tuner call. */
double nccl28_bus_bw(const CollModel *model, CollAlgo a, CollProto p, const CollShape *sh,
                     double bus, double ll_max, double tree_gain)
{
    const HwTopology *topo = model->topo;
    bool a100 = topo->gpu.compute_capability == 80, v210 = model->nccl_version >= NCCL210;
    /* the channels of this communicator's graph: one per NIC its members reach (a GPU's PCIe
     * holds one NIC at the search's speed, see above), or what the topology's log says */
    double channels = topo->net_channels > 0 ? topo->net_channels : INFINITY;
    if (topo->net_channels <= 0 && topo->nics_per_node > 0)
        channels = coll_nics_reached(topo, sh->ranks_per_node, true);
    double ll128_cap = channels * (v210 ? 20.0 : ll128_max_per_channel_GBps[sh->kind]) * 1e9;
    if (a == COLL_ALGO_TREE)
        bus *= tree_gain;
    bus = nccl28_bus_cap(model, bus);
    if (a == COLL_ALGO_RING) {
        if (p == COLL_PROTO_LL)
            return MIN(ll_max, bus / 4.0);
        if (p == COLL_PROTO_LL128)
            return MIN(bus * (sh->ranks_per_node < 2 ? 0.7 : 0.92), ll128_cap);
        return bus;
    }
    double tree_cap = tree_max_per_channel_GBps[v210][a100][sh->nodes == 2 ? 0 : 1] * 1e9;
    bus = MIN(bus * 0.92, channels * tree_cap);
    if (p == COLL_PROTO_LL)
        return MIN(bus / 3.8, ll_max);
    if (p == COLL_PROTO_LL128)
        return MIN(bus * (v210 ? 120.0 / 128.0 : 0.915), ll128_cap);
    return bus;
}
