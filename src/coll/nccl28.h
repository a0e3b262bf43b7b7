/* coll/nccl28: NCCL 2.8-2.11's tuner where it differs from today's, the part of the analytic
 * model (coll.c) that a CollModel's nccl_version before 2.12 selects (the ABCI tables ran NCCL
 * 2.8.4, the BLOOM runs 2.10.3). Private to src/coll. */
#ifndef FSD_NCCL28_H
#define FSD_NCCL28_H

#include "coll.h"

/* Whether the model's release is older than 2.12 (0, the newest, is not). */
bool nccl28_applies(const CollModel *model);
/* `bus`, B/s, capped as the model's release caps a communicator of its GPU: at most 235 GB/s on
 * an A100 before 2.12; unchanged otherwise. */
double nccl28_bus_cap(const CollModel *model, double bus);

/* tuning.cc v2.8.4-1's latencies (the same to 2.11), us, [ring, tree][protocol]: base, and per
 * hop over NVLink, PCIe and the network. */
extern const double nccl28_base_latency_us[2][COLL_PROTO_COUNT];
extern const double nccl28_nvlink_hop_us[2][COLL_PROTO_COUNT];
extern const double nccl28_pcie_hop_us[2][COLL_PROTO_COUNT];
extern const double nccl28_net_hop_us[2][COLL_PROTO_COUNT];
/* The tree's LL128 correction of the model's release for sizes 64 B << log_size (< 23). */
double nccl28_tree_correction_ll128(const CollModel *model, int log_size);

/* The ring's latency, us, base included, for `steps` steps of which `inter_steps` cross nodes,
 * intra-node hops of `intra_hop_us`. */
double nccl28_ring_latency_us(const CollShape *sh, CollProto p, double base_us, double intra_hop_us,
                              int steps, int inter_steps);

/* The bus bandwidth the tuner gives an algorithm and protocol across nodes, before the tree's
 * correction for medium sizes: `bus` is the NICs' (or the GPU link's, where smaller), `ll_max` the
 * LL ceiling for the host CPU, `tree_gain` the two-node tree's factor on `bus` (1 otherwise). */
double nccl28_bus_bw(const CollModel *model, CollAlgo a, CollProto p, const CollShape *sh,
                     double bus, double ll_max, double tree_gain);

#endif
