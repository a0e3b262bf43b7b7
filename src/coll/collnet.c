/* coll/collnet: NCCL's CollNet all-reduce over SHARP switches; see collnet.h.
 *
 * With CollNet, the InfiniBand switches reduce (SHARP): each node sends its partial sums up once
 * and receives the result once, where a ring sends 2(n-1)/n of the array over the NICs, so
 * across many nodes CollNet reaches about twice a ring's bus bandwidth. Inside the node NCCL
 * either reduces along a chain of the node's GPUs to the GPU at the NIC and broadcasts back down
 * (CollNetChain), or scatters each channel's part straight to its head GPU, one per NIC, and
 * gathers it back (CollNetDirect). Rules and constants are NCCL 2.30.7's (NVIDIA/nccl at
 * 5067397c, src/graph/tuning.cc ncclTopoTuneModel, src/enqueue.cc topoGetAlgoInfo, src/graph/
 * search.cc ncclTopoCompute); NCCL 2.12 to 2.18 (the measured tables) have the same bandwidth
 * rules except where said. Cost: a few multiplications per call. */
#include "collnet.h"

#include <math.h>
#include <string.h>

/* NCCL_MAX_DIRECT_ARITY (src/include/device.h) + 1: CollNetDirect and CollNetChain run with at
 * most 8 GPUs of a node (enqueue.cc: "CollNetDirect is only supported for up to 8 local GPUs",
 * "Disable CollNet Chain for more than 8 local GPUs"). */
static const int collnet_max_local = 8;

/* tuning.cc hwLatencies, Simple (CollNet runs only Simple), us: per NVLink or PCIe hop 3.7
 * (Direct) and 2.8 (Chain); the network 31 and 30, or the tree's 14 with one GPU per node ("With
 * ppn=1 latencies are fully exposed, use the Tree network latency"); Direct adds 0.4 per local
 * rank beyond the first ("arity serialization latency"). Base latency 0. */
static const double direct_intra_us = 3.7, chain_intra_us = 2.8;
static const double direct_net_us = 31.0, chain_net_us = 30.0, ppn1_net_us = 14.0;
static const double direct_arity_us = 0.4;

/* NCCL runs CollNetDirect only on NVSwitch systems (tuning.cc: "Disable CollNet+Direct if not on
 * an NVSwitch system", ncclTopoGetNvsCount). The topology does not name the switch: an 8-GPU
 * NVLink node is taken to have one (the HGX/DGX boards of every such file here); the 4-GPU nodes
 * of the files (JUWELS Booster, GH200, V100) link their GPUs directly. */
static bool has_nvswitch(const HwTopology *topo)
{
    return topo->gpus_per_node >= 8 && topo->gpu_link && strncmp(topo->gpu_link, "nvlink", 6) == 0;
}

bool collnet_possible(const HwTopology *topo, const CollShape *sh, CollAlgo algo)
{
    if (topo->net_sharp <= 0 || sh->kind != IR_COLL_ALLREDUCE || sh->nodes < 2 ||
        sh->ranks_per_node > collnet_max_local)
        return false;
    return algo == COLL_ALGO_COLLNET_CHAIN ||
           (algo == COLL_ALGO_COLLNET_DIRECT && has_nvswitch(topo));
}

double collnet_latency_us(const CollShape *sh, CollAlgo algo)
{
    int local = sh->ranks_per_node - 1;
    if (algo == COLL_ALGO_COLLNET_DIRECT)
        return 2 * (MIN(1, local) * direct_intra_us + local * direct_arity_us) +
               (local == 0 ? ppn1_net_us : direct_net_us);
    return 2 * local * chain_intra_us + (local == 0 ? ppn1_net_us : chain_net_us);
}

/* Both algorithms: NCCL's search raises a CollNet graph's intra-node bandwidth up to twice its
 * network bandwidth (search.cc: "increase bwIntra for trees (2 nodes or collnet)"), and its tuner
 * rates CollNet by the intra-node bandwidth of all channels, halved for the way up and down
 * (tuning.cc: bw = bwIntra for collnet; ratio .5): algorithm bandwidth = min(the node's links'
 * share, the node's NICs). That is also what the wire allows: each node sends the array up and
 * receives it back once over its NICs, each way.
 *
 * Chain: every GPU of a channel's chain receives and sends the channel's part on the way up and
 * again on the way down, 2 arrays per direction of its link over all channels: link / 2.
 *
 * Direct: with h heads (one per NIC, at most one per GPU: search.cc ncclTopoSearchTryCollnetDirect
 * gives each channel a head and NCCL_MAX_DIRECT_ARITY + 1 channels at most) a head GPU moves its
 * channel's 1/h of the array in from the g-1 others and back out to them, and as a member sends
 * the other h-1 parts out and receives them: (g - 1 + h - 1) / h arrays per direction. NCCL's
 * tuner then divides by r - (r - 1)/2 with r = g/h GPUs per NIC ("Collnet+Direct requires all
 * GPUs to have a local NIC to work at full speed", 2.18 on) and takes 0.85 of it on Hopper
 * (minCompCap >= 90, 2.18 on). */
double collnet_algbw(const HwTopology *topo, const CollShape *sh, CollAlgo algo, double link_Bps,
                     double nics_Bps, bool hopper)
{
    int g = sh->ranks_per_node;
    if (algo == COLL_ALGO_COLLNET_CHAIN)
        return g > 1 ? MIN(link_Bps / 2, nics_Bps) : nics_Bps;
    int nics = topo->nics_per_node > 0 ? topo->nics_per_node : 1;
    int heads = MAX(1, MIN(g, MIN(nics, collnet_max_local)));
    double link_share = g > 1 ? link_Bps * heads / (g - 1 + heads - 1) : INFINITY;
    double bw = MIN(link_share, nics_Bps);
    double r = (double)g / heads;
    bw /= r - (r - 1) / 2;
    return hopper ? bw * 0.85 : bw;
}

/* Across nodes, CollNet moves the node's array through its NICs once each way: CollNetChain from
 * the chain's last GPU, CollNetDirect split over the heads (one per NIC), and NVLS across nodes
 * from its heads over the same CollNet connections (enqueue.cc: NVLS with nNodes > 1 needs
 * collNetSupport). So each node sends `bytes` across, where a ring's node boundary carries
 * 2(n - 1)/n of them: what a GPU sends, on average, is bytes over the node's members. */
double coll_inter_node_bytes_per_rank(const CollShape *sh, const CollChoice *ch)
{
    if (sh->nodes <= 1 || sh->ranks_per_node < 1)
        return 0;
    if (ch && (ch->algo == COLL_ALGO_COLLNET_DIRECT || ch->algo == COLL_ALGO_COLLNET_CHAIN ||
               ch->algo == COLL_ALGO_NVLS))
        return (double)sh->bytes / sh->ranks_per_node;
    return coll_bytes_sent_per_rank(sh->kind, sh->bytes, sh->nranks) / sh->ranks_per_node;
}
