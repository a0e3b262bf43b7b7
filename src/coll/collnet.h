/* coll/collnet: NCCL's CollNet all-reduce (CollNetDirect, CollNetChain) over InfiniBand switches
 * with SHARP, the part of the analytic model (coll.c) that belongs to it. Private to src/coll. */
#ifndef FSD_COLLNET_H
#define FSD_COLLNET_H

#include "coll.h"

/* Whether NCCL can run CollNet algorithm `algo` for this collective on this machine. */
bool collnet_possible(const HwTopology *topo, const CollShape *sh, CollAlgo algo);
/* NCCL's tuner latency of it, us (what the tuner compares). */
double collnet_latency_us(const CollShape *sh, CollAlgo algo);
/* Its algorithm bandwidth (bytes of the array per second): `link_Bps` is one GPU's NVLink (or
 * PCIe) bandwidth per direction, `nics_Bps` the node's NICs that the group uses, together, per
 * direction, `hopper` whether NCCL's sm90 rule applies. */
double collnet_algbw(const HwTopology *topo, const CollShape *sh, CollAlgo algo, double link_Bps,
                     double nics_Bps, bool hopper);

#endif
