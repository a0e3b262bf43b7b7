/* coll: how long a collective takes. A CollModel is a small table of function pointers so the
 * analytic model here and the flow-level network model (issue 3) are interchangeable.
 *
 * The analytic model follows NCCL's own cost model (NVIDIA/nccl src/graph/tuning.cc):
 *   time = base_latency[algo][proto] + hops * hop_latency[link][algo][proto]
 *        + bytes / (bus_bandwidth * proto_efficiency * algo_ratio)
 * for ring and tree with the LL, LL128 and Simple protocols, and NVLS/NVLSTree on NVLink SHARP
 * nodes, choosing the fastest by that estimate as NCCL's tuner does (overridable like NCCL_ALGO /
 * NCCL_PROTO); the time returned adds what the estimate leaves out (NVLS's pipeline fill). Bus
 * bandwidth: the GPU's NVLink bandwidth inside a node; across nodes, the node's NICs that the
 * group's GPUs use. */
#ifndef FSD_COLL_H
#define FSD_COLL_H

#include "../hw/hw.h"
#include "../ir/ir.h"

#include <stdint.h>

/* NVLS: NVLink SHARP inside one node (the switch reduces and multicasts); NVLS_TREE: NVLS inside
 * each node and a tree of NICs between nodes; PAT: NCCL's parallel aggregated trees (2.23 on),
 * all-gather and reduce-scatter with one GPU per node; COLLNET_DIRECT, COLLNET_CHAIN: NCCL's
 * CollNet all-reduce, the InfiniBand switches reducing across nodes (SHARP, network.sharp;
 * src/coll/collnet.c). */
typedef enum {
    COLL_ALGO_RING,
    COLL_ALGO_TREE,
    COLL_ALGO_NVLS,
    COLL_ALGO_NVLS_TREE,
    COLL_ALGO_PAT,
    COLL_ALGO_COLLNET_DIRECT,
    COLL_ALGO_COLLNET_CHAIN,
    COLL_ALGO_COUNT
} CollAlgo;
typedef enum { COLL_PROTO_LL, COLL_PROTO_LL128, COLL_PROTO_SIMPLE, COLL_PROTO_COUNT } CollProto;

typedef struct {
    IrCollKind kind;
    uint64_t bytes; /* nccl-tests' size: full array */
    int nranks;
    int nodes;          /* nodes spanned by the group */
    int ranks_per_node; /* group members on each node */
} CollShape;

typedef struct {
    CollAlgo algo;
    CollProto proto;
    double latency_s;  /* everything but the bandwidth term, pipeline fill included */
    double bus_Bps;    /* bus bandwidth used for the bandwidth term */
    double efficiency; /* bus_Bps over the links' bandwidth: what the protocol makes of the wire */
    /* The forced algorithm/protocol (force_algo, force_proto) cannot run this collective (NVLS
     * without NVLink SHARP, the tree inside one node...): the choice is NCCL's tuner's instead. */
    bool forced_unavailable;
} CollChoice;

typedef struct CollModel CollModel;
struct CollModel {
    const char *name;
    /* Duration of one collective alone on the machine. */
    double (*time_s)(const CollModel *self, const CollShape *shape, CollChoice *choice);
    /* Duration of a point-to-point transfer of `bytes` between two ranks. */
    double (*p2p_s)(const CollModel *self, uint64_t bytes, bool same_node);
    const HwTopology *topo;
    int force_algo;  /* -1: choose, else CollAlgo */
    int force_proto; /* -1: choose, else CollProto */
    /* NCCL_COLLNET_ENABLE=1: the tuner may choose CollNetDirect/CollNetChain where the switches
     * offer SHARP (NCCL's default is off; a forced CollNet algorithm needs no more) */
    bool collnet_enable;
    /* The NCCL release whose rules apply, as NCCL_VERSION_CODE (2.23.4: 22304); 0: the newest
     * modelled (2.30.7). It selects only rules that changed between releases (when LL128 is
     * enabled, which row of the per-generation tables a GPU gets); the latencies and bandwidth
     * refinements are 2.26-2.30's from 2.23 on, each release's own from 2.12 to 2.22 (ring and
     * tree latencies, the bus caps of 2.12-2.17, the ring's LL and LL128 shares, the tree's 0.85
     * with one GPU per node from 2.18.3: nccl_tables.c), 2.8.4's and 2.10.3's before
     * (with those releases' per-channel caps of LL128 and the tree across nodes, nccl28.c
     * nccl28_bus_bw). */
    int nccl_version;
};

/* The release nccl_version 0 stands for. */
#define COLL_NCCL_NEWEST 23007

/* The analytic NCCL model over a topology. */
void coll_model_analytic_init(CollModel *model, const HwTopology *topo);
/* Parses NCCL_ALGO/NCCL_PROTO-style names ("ring", "tree", "nvls", "nvlstree", "pat",
 * "collnetdirect", "collnetchain"; "LL", "LL128", "Simple"). */
bool coll_algo_parse(const char *text, int *out);
/* Whether the machine has NVLink SHARP (NVLS, NVLSTree): Hopper or later, node.nvls set. */
bool coll_topology_has_nvls(const HwTopology *topo);
/* Whether the InfiniBand switches offer SHARP (network.sharp set): NCCL's CollNet can run. */
bool coll_topology_has_sharp(const HwTopology *topo);
bool coll_proto_parse(const char *text, int *out);
/* Parses an NCCL release, "2.23.4", "2.23.4-1" or "2.23" (patch 0), into NCCL_VERSION_CODE;
 * false unless it is 2.x with x and the patch in 0..99. */
bool coll_nccl_version_parse(const char *text, int *out);
/* Whether NCCL, by default (no NCCL_PROTO), lets the ring and the tree use LL128 for this
 * collective on this machine (tuning.cc ncclTopoTuneModel; coll.c says which release does what). */
bool coll_ll128_enabled(const CollModel *model, const CollShape *shape);
const char *coll_algo_name(CollAlgo algo);
/* Fraction of the wire carrying payload: LL 0.5, LL128 120/128, Simple 1. */
double coll_proto_efficiency(CollProto proto);
const char *coll_proto_name(CollProto proto);

/* The time per op that nccl-tests reports for back-to-back ops of `device_s` each when one host
 * thread drives `gpus_per_thread` GPUs (its -g): the thread launches one kernel per GPU per op, so
 * an op takes at least that many launches (gpu.launch_overhead_us each); with one GPU per thread
 * the launches hide behind the running kernels. */
double coll_nccltests_op_s(const HwTopology *topo, double device_s, int gpus_per_thread);

/* nccl-tests' bus bandwidth factor: busbw = algbw * factor. */
double coll_busbw_factor(IrCollKind kind, int nranks);
/* Bytes each rank sends for one collective (ring algorithm): the closed forms that FSDP's and
 * DDP's communication volumes come from. */
double coll_bytes_sent_per_rank(IrCollKind kind, uint64_t bytes, int nranks);

/* Bytes a group member sends across node boundaries for one collective, averaged over the
 * node's members (the report's "bytes across nodes"): a ring's per-rank bytes over the ranks of a
 * node (each node boundary carries what one ring link does); CollNetDirect, CollNetChain and NVLS
 * across nodes (which runs over CollNet) send the node's array up to the switches once, bytes per
 * node (src/coll/collnet.c). 0 inside one node. */
double coll_inter_node_bytes_per_rank(const CollShape *shape, const CollChoice *choice);
/* NCCL's channels to a rank on another node for send/receive, by release (0: the newest). */
int coll_net_peer_channels(const HwTopology *topo, int nccl_version);
/* The most `channels` channels of one communicator carry across a node boundary per direction
 * (topology node.net_channel_GBps; -1: node.net_channels, a collective's); INFINITY where the
 * topology sets no such cap or the collectives are not NCCL's. */
double coll_net_channel_cap_Bps(const HwTopology *topo, int channels);
/* The flow model's bound on a collective's transfer (fraction of its load per second, for
 * net_flows_cap) whose load unit is `scale` bytes, and on a send's; INFINITY: none. */
double coll_transfer_max_rate(const CollModel *model, const CollShape *shape,
                              const CollChoice *choice, double scale);
double coll_p2p_max_rate(const CollModel *model, uint64_t bytes, bool same_node);

/* One row of an nccl-tests result table (all_reduce_perf ...): the size, and the faster of the
 * out-of-place and in-place runs; and each of them. */
typedef struct {
    uint64_t bytes;
    double time_s;
    double busbw_GBps;
    double out_of_place_s, in_place_s;
} CollNcclTestsRow;

/* Reads the rows of nccl-tests output in `text`, between a line containing `from` and one
 * containing `to` (NULL: from the start, to the end). Both layouts: nccl-tests 2.10 on (a root
 * column, #wrong) and before (no root column, an error column). Returns how many (at most max). */
int coll_nccltests_parse(const char *text, const char *from, const char *to, CollNcclTestsRow *rows,
                         int max);
/* How `fsdpsim collective` runs a benchmark: one collective through the collective model, or
 * point-to-point messages through the engine as NCCL issues them (grouped ncclSend/ncclRecv). */
typedef enum {
    COLL_RUN_COLLECTIVE, /* `kind` */
    COLL_RUN_SENDRECV,   /* every rank to the next, from the previous */
    COLL_RUN_GATHER,     /* every rank sends its part to the root */
    COLL_RUN_SCATTER,    /* the root sends each rank its part */
} CollTestRun;

/* An nccl-tests benchmark that `fsdpsim collective` runs: its --op name, nccl-tests' binary, how
 * it runs (the collective for COLL_RUN_COLLECTIVE, IR_COLL_KIND_COUNT otherwise), what its redop
 * and root columns hold, and busbw / algbw (nccl-tests' Get*Bw: coll_test_busbw_factor). */
typedef struct {
    const char *op;
    const char *perf;
    IrCollKind kind;
    bool reduces; /* a reduction in the redop column (sendrecv prints nccl-tests' default, sum) */
    bool rooted;  /* a root >= 0 (broadcast, reduce, gather, scatter) */
    CollTestRun run;
} CollTest;
/* The benchmark of that --op name, or NULL. coll_tests_names: "allreduce, ..., scatter". */
const CollTest *coll_test_find(const char *op);
extern const char coll_tests_names[];
double coll_test_busbw_factor(const CollTest *test, int nranks);

/* A user's own nccl-tests output (`collective --reference`), read strictly: every result row's
 * values in their ranges (size a whole number of bytes up to 1 TiB, finite positive times), rows
 * of `test` (by the redop and root columns, and by the "Collective test starting:" line when
 * there is one), at most max rows. Returns the number of rows, or -1 with an input error naming
 * the file, the line and the field. */
int coll_nccltests_read(const char *file, const char *text, const CollTest *test,
                        CollNcclTestsRow *rows, int max, GError **error);

#endif
