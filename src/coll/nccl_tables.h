/* coll/nccl_tables: NCCL 2.12-2.22's tuner constants and rules where they differ from today's,
 * the part of the analytic model (coll.c) that a CollModel's nccl_version from 2.12 to 2.22
 * selects (before 2.12: nccl28.c; from 2.23 on: coll.c's own tables), and the release-dependent
 * bandwidth factors of the ring's LL protocols and of the tree. Ring and tree only, with
 * LL, LL128 and Simple. Private to src/coll. */
#ifndef FSD_NCCL_TABLES_H
#define FSD_NCCL_TABLES_H

#include "coll.h"

/* One range of releases whose tuning.cc has the same ring and tree constants. */
typedef struct {
    int first, end; /* NCCL_VERSION_CODE, [first, end) */
    /* [ring, tree][protocol], us: base latency (baseLat) and per hop over NVLink, PCIe and the
     * network (hwLat) */
    double base_us[2][COLL_PROTO_COUNT];
    double nvlink_hop_us[2][COLL_PROTO_COUNT];
    double pcie_hop_us[2][COLL_PROTO_COUNT];
    double net_hop_us[2][COLL_PROTO_COUNT];
    /* LL's intra-node hops 1.8 times as long when the communicator spans nodes */
    bool ll_intra_x18;
    /* every ring step across nodes at least the network proxy's post overhead */
    bool net_overhead;
    /* "plateau effect of ring" on a multi-node Simple allreduce: from 64 bytes per channel and
     * rank (else from nRanks/16 x 64 KiB), `plateau_below` times the latency on GPUs below
     * compute capability `plateau_cc` (x 10), `plateau_from` on the others */
    bool plateau_per_channel;
    int plateau_cc;
    double plateau_below, plateau_from;
    /* a communicator's bus bandwidth at most this on GPUs of Ampere's and of Hopper's row of
     * the per-generation tables, GB/s; 0: no cap */
    double ampere_bus_max_GBps, hopper_bus_max_GBps;
} NcclTables;

/* The tables of this release (NCCL_VERSION_CODE; 0 the newest); NULL where coll.c's or
 * nccl28.c's own apply (before 2.12, from 2.23). */
const NcclTables *nccl_tables_find(int nccl_version);

/* Whether the release (0: the newest) has the algorithm: NVLS from 2.17, NVLSTree from 2.18,
 * PAT from 2.23, CollNetChain from 2.14 (2.12-2.13's one "CollNet" is CollNetDirect). */
bool nccl_tables_algo_exists(int nccl_version, CollAlgo algo);

/* The most bus bandwidth, B/s, that the release gives a communicator whose GPUs take row
 * `arch_row` (ARCH_*, coll_priv.h) of its per-generation tables; INFINITY without a cap or
 * tables. */
double nccl_tables_bus_max_Bps(const NcclTables *tables, int arch_row);

/* The ring's latency, us, base `base_us` included, for `steps` steps of which `inter_steps`
 * cross nodes (2 (nodes - 1) for an allreduce), intra-node hops of `intra_hop_us`, on GPUs of
 * compute capability `compute_capability` (x 10), the proxy's overhead per step `overhead_us`. */
double nccl_tables_ring_latency_us(const NcclTables *tables, const CollShape *sh, CollProto p,
                                   double base_us, double intra_hop_us, int steps, int inter_steps,
                                   int compute_capability, double overhead_us);

/* The factor on the ring's bus bandwidth for protocol `p` under the release (0: the newest),
 * before the LL ceiling: 1/4 or 1/3 (LL, to 2.20), 1/2 (LL, from 2.21), 0.7 (LL128 with one GPU
 * per node, to 2.22), 0.92 (LL128 otherwise), 1 (Simple). */
double nccl_tables_ring_bus_factor(int nccl_version, CollProto p, const CollShape *sh);

/* The factor on the tree's bus bandwidth, after its protocol refinements: 0.85 where the
 * release (0: the newest) rates the tree's graph as NCCL_TOPO_PATTERN_TREE (from 2.18.3, one
 * GPU per node), else 1. */
double nccl_tables_tree_pattern_factor(int nccl_version, const CollShape *sh);

#endif
