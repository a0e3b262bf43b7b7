/* coll/nccl_tables: NCCL 2.12-2.22's tuner constants; see nccl_tables.h.
 *
 * Every number is NCCL's, from src/graph/tuning.cc at the tag each range cites (NVIDIA/nccl;
 * releases of a range have the same file or the same ring and tree constants: v2.12.7-1 to
 * v2.13.4-1; v2.14.3-1 to v2.16.5-1, which differ only in the GPU rows that coll.c
 * nccl_arch_row and nccl_ll128_gpu model; v2.18.3-1 to v2.18.6-1; v2.19.1-1 to v2.20.5-1;
 * v2.21.5-1 to v2.22.3-1). What these releases share and today's model (coll.c) also has is not
 * repeated: the tree's 0.92, 1/3.8 and 7/9 or 120/128, the LL ceilings
 * (llMaxBws) and the tree's correction for medium sizes (treeCorrectionFactor, the same from
 * v2.10.3-1 to v2.29.7-1). Not modelled, as for today's rules: the per-channel caps of LL128 and
 * the tree (ll128MaxBwPerCh, perChMaxTreeBws; they need NCCL's channel count). NCCL's tables are
 * [tree, ring]; these are [ring, tree] as coll.c's. */
#include "nccl_tables.h"
#include "coll_priv.h"

#include <math.h>

/* Rows several ranges share ([ring, tree][LL, LL128, Simple], us), so that each range below
 * shows what it changes: base latencies (baseLat) of 2.12 (v2.12.12-1 l. 56) and of 2.18
 * (v2.18.1-1 l. 56-59); NVLink hops (hwLat) of 2.12 (l. 63) and 2.18 (LL 0.6, v2.18.1-1 l. 69);
 * PCIe hops of 2.12 on (l. 65); network hops with the ring's Simple at 9.6 (2.14, v2.14.3-1
 * l. 71) and 14 (2.18, v2.18.1-1 l. 73). */
#define BASE_2_12 {{3.6, 10.0, 8.4}, {4.4, 4.4, 0.0}}
#define BASE_2_18 {{6.6, 14.0, 8.4}, {6.8, 14.0, 0.0}}
#define NVLINK_2_12 {{0.47, 1.9, 3.4}, {0.52, 1.25, 28.0}}
#define NVLINK_2_18 {{0.6, 1.9, 3.4}, {0.6, 1.25, 28.0}}
#define PCIE_2_12 {{1.0, 2.5, 5.7}, {1.0, 1.9, 28.0}}
#define NET_2_14 {{2.7, 4.0, 9.6}, {5.0, 8.5, 28.0}}
#define NET_2_18 {{2.7, 4.0, 14.0}, {5.0, 8.5, 28.0}}

static const NcclTables nccl_tables[] = {
    /* 2.12-2.13, tuning.cc v2.12.12-1: 2.10's baseLat (l. 56) and hwLat (l. 63-70) but 28 us
     * per network hop of the ring's Simple (l. 69, 9.6 before); LL's intra-node hops 1.8 times
     * across nodes (l. 142); the plateau 1.9 on every GPU from nRanks/16 x 64 KiB (l. 283); an
     * A100 ("compCap80") communicator at most 235 GB/s (l. 126) */
    {.first = 21200,
     .end = 21400,
     .base_us = BASE_2_12,
     .nvlink_hop_us = NVLINK_2_12,
     .pcie_hop_us = PCIE_2_12,
     .net_hop_us = {{2.7, 4.0, 28.0}, {5.0, 8.5, 28.0}},
     .ll_intra_x18 = true,
     .plateau_below = 1.9,
     .plateau_from = 1.9,
     .ampere_bus_max_GBps = 235.0},
    /* 2.14-2.16, tuning.cc v2.14.3-1: the ring's Simple network hop back to 9.6 us (l. 71);
     * otherwise 2.12's (l. 56-72, 131, 155, 304); v2.15.5-1 keeps them (l. 145: the 235 GB/s
     * of Ampere's row, which v2.15 still gives an A100 alone) */
    {.first = 21400,
     .end = 21700,
     .base_us = BASE_2_12,
     .nvlink_hop_us = NVLINK_2_12,
     .pcie_hop_us = PCIE_2_12,
     .net_hop_us = NET_2_14,
     .ll_intra_x18 = true,
     .plateau_below = 1.9,
     .plateau_from = 1.9,
     .ampere_bus_max_GBps = 235.0},
    /* 2.17, tuning.cc v2.17.1-1: 2.14's latencies (l. 56-75); the plateau 1.5 on Hopper, 1.9
     * below (l. 344); Ampere's row (compute capability 8.x from 2.17) at most 235 GB/s, Hopper's
     * 370 (l. 153-154) */
    {.first = 21700,
     .end = 21800,
     .base_us = BASE_2_12,
     .nvlink_hop_us = NVLINK_2_12,
     .pcie_hop_us = PCIE_2_12,
     .net_hop_us = NET_2_14,
     .ll_intra_x18 = true,
     .plateau_cc = 90,
     .plateau_below = 1.9,
     .plateau_from = 1.5,
     .ampere_bus_max_GBps = 235.0,
     .hopper_bus_max_GBps = 370.0},
    /* 2.18.0-2.18.2, tuning.cc v2.18.1-1: today's base latencies but the tree's Simple 0 (l.
     * 56-59), LL's NVLink hops 0.6, the ring's Simple network hop 14 us, the tree's Simple still
     * 28 per hop (l. 69-77); no LL factor 1.8 and no bus caps (v2.17.1-1 l. 153-154, 181 are gone);
     * every ring step across nodes at least the proxy's post overhead (l. 209-214); the plateau
     * from 64 bytes per channel and rank, 1.4 from Ampere on, 1.9 below (l. 382) */
    {.first = 21800,
     .end = 21803,
     .base_us = BASE_2_18,
     .nvlink_hop_us = NVLINK_2_18,
     .pcie_hop_us = PCIE_2_12,
     .net_hop_us = NET_2_18,
     .net_overhead = true,
     .plateau_per_channel = true,
     .plateau_cc = 80,
     .plateau_below = 1.9,
     .plateau_from = 1.4},
    /* 2.18.3-2.18.6, tuning.cc v2.18.3-1: the tree's Simple hops 4 us over NVLink, 6 over PCIe,
     * 14 over the network (l. 67-75); 2.18.1's otherwise */
    {.first = 21803,
     .end = 21900,
     .base_us = BASE_2_18,
     .nvlink_hop_us = {{0.6, 1.9, 3.4}, {0.6, 1.25, 4.0}},
     .pcie_hop_us = {{1.0, 2.5, 5.7}, {1.0, 1.9, 6.0}},
     .net_hop_us = {{2.7, 4.0, 14.0}, {5.0, 8.5, 14.0}},
     .net_overhead = true,
     .plateau_per_channel = true,
     .plateau_cc = 80,
     .plateau_below = 1.9,
     .plateau_from = 1.4},
    /* 2.19-2.22, tuning.cc v2.19.4-1 (= v2.20.5-1's, v2.21.5-1's and v2.22.3-1's constants, l.
     * 56-78): the tree's Simple hops 28 us again (l. 67-75), 2.18.3's otherwise. What 2.21 and
     * 2.22 change is in the code, by version: LL's ring at half the bus bandwidth
     * (nccl_tables_ring_bus_factor), 2 nNodes network steps (v2.21.5-1 l. 161, v2.22.3-1 l. 159),
     * no exception for one rank per node (2.23's) */
    {.first = 21900,
     .end = 22300,
     .base_us = BASE_2_18,
     .nvlink_hop_us = NVLINK_2_18,
     .pcie_hop_us = PCIE_2_12,
     .net_hop_us = NET_2_18,
     .net_overhead = true,
     .plateau_per_channel = true,
     .plateau_cc = 80,
     .plateau_below = 1.9,
     .plateau_from = 1.4},
};

/* A linear search over 6 ranges per tuner call: a few compares. */
const NcclTables *nccl_tables_find(int nccl_version)
{
    for (size_t i = 0; i < G_N_ELEMENTS(nccl_tables); i++) {
        if (nccl_version >= nccl_tables[i].first && nccl_version < nccl_tables[i].end)
            return &nccl_tables[i];
    }
    return NULL;
}

/* The first release of each algorithm: NCCL_ALGO_* in src/include/devcomm.h (nccl_common.h from
 * 2.19) at each tag: v2.12.12-1 l. 18-21 "Tree/Ring/CollNet", v2.14.3-1 l. 21-22 COLLNET_DIRECT
 * and COLLNET_CHAIN, v2.17.1-1 l. 23 NVLS, v2.18.1-1 l. 24 NVLS_TREE, v2.23.4-1 l. 61 PAT. */
static const int algo_first_version[COLL_ALGO_COUNT] = {
    [COLL_ALGO_NVLS] = 21700,
    [COLL_ALGO_NVLS_TREE] = 21800,
    [COLL_ALGO_PAT] = 22300,
    [COLL_ALGO_COLLNET_CHAIN] = 21400,
};

bool nccl_tables_algo_exists(int nccl_version, CollAlgo algo)
{
    return nccl_version <= 0 || nccl_version >= algo_first_version[algo];
}

double nccl_tables_bus_max_Bps(const NcclTables *tables, int arch_row)
{
    double cap = !tables                   ? 0
                 : arch_row == ARCH_AMPERE ? tables->ampere_bus_max_GBps
                 : arch_row == ARCH_HOPPER ? tables->hopper_bus_max_GBps
                                           : 0;
    return cap > 0 ? cap * 1e9 : INFINITY;
}

/* As today's ring latency (coll.c ring_latency_us), but: an allreduce across nodes counts 2 nNodes
 * network steps (every tag from v2.12.12-1 l. 114 to v2.22.3-1 l. 159: 2 more than the ring has,
 * so with one rank per node the intra-node count goes negative, as in NCCL); no exception for one rank
 * per node (2.23's "latencies are fully exposed"); LL's 1.8 and the proxy's overhead by release;
 * the plateau multiplies the whole latency, base included, as NCCL's ncclTopoGetAlgoTime does,
 * its channel count taken as NCCL's most (32), as coll.c does. */
double nccl_tables_ring_latency_us(const NcclTables *tables, const CollShape *sh, CollProto p,
                                   double base_us, double intra_hop_us, int steps, int inter_steps,
                                   int compute_capability, double overhead_us)
{
    bool allreduce = sh->kind == IR_COLL_ALLREDUCE, across = sh->nodes > 1;
    if (allreduce && across)
        inter_steps = 2 * sh->nodes;
    /* one GPU per node: NCCL's search leaves the intra-node path PATH_LOC (search.cc v2.21.5-1
     * l. 869), and its tuner rates anything but NVLink at the PCIe hop (tuning.cc l. 154) */
    if (sh->ranks_per_node == 1)
        intra_hop_us = tables->pcie_hop_us[COLL_ALGO_RING][p];
    if (across && p == COLL_PROTO_LL && tables->ll_intra_x18)
        intra_hop_us *= 1.8;
    if (across && tables->net_overhead)
        intra_hop_us = MAX(intra_hop_us, overhead_us * (p == COLL_PROTO_SIMPLE ? 3 : 1));
    double lat = base_us + (steps - inter_steps) * intra_hop_us +
                 inter_steps * tables->net_hop_us[COLL_ALGO_RING][p];
    bool plateau = tables->plateau_per_channel ? sh->bytes / (32ULL * sh->nranks) >= 64
                                               : (double)sh->bytes >= sh->nranks / 16.0 * 65536;
    if (p == COLL_PROTO_SIMPLE && across && allreduce && plateau)
        lat *=
            compute_capability < tables->plateau_cc ? tables->plateau_below : tables->plateau_from;
    return lat;
}

/* The ring's "model refinements" of LL and LL128 (tuning.cc ncclTopoTuneModel): LL at a quarter
 * of the bus bandwidth, a third for the gathers on one node, up to 2.20 (v2.20.5-1 l. 181), half
 * of it from 2.21 (v2.21.5-1 l. 180, v2.30.7-1 l. 327); LL128 0.92, 0.7 with one GPU per node up
 * to 2.22 (v2.22.3-1 l. 179; v2.23.4-1 l. 188 dropped it). The same rules before 2.12 (nccl28.c
 * applies its own across nodes). */
double nccl_tables_ring_bus_factor(int nccl_version, CollProto p, const CollShape *sh)
{
    int version = nccl_version > 0 ? nccl_version : COLL_NCCL_NEWEST;
    if (p == COLL_PROTO_LL) {
        if (version >= 22100)
            return 0.5;
        return sh->nodes > 1 || sh->kind == IR_COLL_ALLREDUCE ? 1.0 / 4.0 : 1.0 / 3.0;
    }
    if (p == COLL_PROTO_LL128)
        return sh->ranks_per_node < 2 && version < 22300 ? 0.7 : 0.92;
    return 1.0;
}

/* From 2.18.3 (v2.18.3-1 l. 183, v2.30.7-1 l. 336) the tree's bus bandwidth is 0.85 of itself
 * where its graph has NCCL_TOPO_PATTERN_TREE, which a node with one GPU of the communicator
 * always has (search.cc v2.18.3-1 l. 832, v2.30.7-1 l. 1133: "if (ngpus == 1 && graph->pattern
 * != NCCL_TOPO_PATTERN_RING) graph->pattern = NCCL_TOPO_PATTERN_TREE"). NCCL's search also falls
 * back to that pattern on Hopper and later when it finds no balanced tree at full speed ("Try a
 * simpler tree"): not modelled, the search's outcome is not known here. */
double nccl_tables_tree_pattern_factor(int nccl_version, const CollShape *sh)
{
    int version = nccl_version > 0 ? nccl_version : COLL_NCCL_NEWEST;
    return version >= 21803 && sh->ranks_per_node == 1 ? 0.85 : 1.0;
}
