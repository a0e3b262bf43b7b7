/* coll_priv: helpers that coll.c and nccl28.c share. Private to src/coll. */
#ifndef FSD_COLL_PRIV_H
#define FSD_COLL_PRIV_H

#include "coll.h"

/* GPU generations, the rows of NCCL's per-generation tables (compCapIndex): coll.c gpu_arch and
 * nccl_arch_row say which GPU takes which. */
enum { ARCH_VOLTA, ARCH_AMPERE, ARCH_HOPPER, ARCH_BLACKWELL, ARCH_COUNT };

/* The NICs that a communicator's `ranks_per_node` members on a node reach: their share of the
 * node's NICs (nics_per_node / gpus_per_node each), at least one, at most the node's; for a node
 * with NICs (nics_per_node > 0). `whole_nics` rounds the share down first. The two callers differ
 * on purpose: the bandwidth model (coll.c) spreads a fractional share, e.g. 3 GPUs of 8 on 4 NICs
 * use 1.5 NICs' bandwidth, while NCCL 2.8's graph (nccl28.c) has one channel per NIC, a whole
 * count. */
double coll_nics_reached(const HwTopology *topo, int ranks_per_node, bool whole_nics);

/* The network bandwidth one GPU has to itself: its NIC where the node has one per GPU, its share
 * of them otherwise (of PCIe among the g group members without NICs). */
double coll_gpu_nic_Bps(const HwTopology *topo, int g);
/* NCCL's log2i, rounded down: the levels its tuner counts in a tree of n nodes. */
int coll_log2_floor(int n);

#endif
