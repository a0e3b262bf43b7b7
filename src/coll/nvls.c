/* coll/nvls: NCCL's NVLS and NVLSTree all-reduce on NVLink SHARP nodes (the switch reduces and
 * multicasts), the part of the analytic model (coll.c) that belongs to them: their bandwidth and
 * latency as NCCL's tuner rates them, and the pipeline fill the tuner leaves out; see nvls.h. */
#include "nvls.h"
#include "coll_priv.h"

#include <math.h>

/* NVLS (NVIDIA/nccl 2.26): latencies by release (nvls_tuner_latency_us). Efficiency of the switch's
 * reduction and multicast on Hopper: 0.85 (tuning.cc 2.30 nvlsEfficiency). Most busbw one NVLSTree
 * channel reaches on Hopper with 2 nodes and with more: 57.7 and 45.5 GB/s (tuning.cc 2.28+,
 * perChMaxNVLSTreeBws, NVIDIA's measured caps). 16 NVLS compute channels on sm90 (transport/nvls.cc
 * NVLS_NCHANNELS_SM90), chunks of at most 128 KiB (NCCL_NVLS_CHUNKSIZE default). */
static const double nvls_efficiency = 0.85;
static const double nvls_tree_channel_cap_GBps[2] = {57.7, 45.5};
static const int nvls_channels = 16;
static const double nvls_chunk_max = 128 * 1024;

/* Chunk size NCCL gives each (channel, head) pipeline of NVLS and NVLSTree: smaller for smaller
 * messages so that every pipeline gets work (enqueue.cc calcCollChunking, v2.30.7-1 l.
 * 2258-2285). NVLS's rule holds across nodes too (over SHARP), where a communicator whose NVLS
 * algorithm bandwidth NCCL's tuner rates below 150 GB/s (`algbw`) gets 32 KiB at most; NVLSTree
 * over 4 nodes and more 64 KiB at most (NCCL_NVLSTREE_MAX_CHUNKSIZE unset: v2.19.4-1 l. 1387,
 * v2.29.7-1 l. 2175, transport/nvls.cc v2.30.7-1 l. 222), from 2.19. It had NVLSTree's rule for
 * NVLS across nodes and 128 KiB for NVLSTree on any number of nodes: a fill twice too long
 * from 4 nodes. */
static double nvls_chunk(const CollShape *sh, CollAlgo a, double algbw, int version)
{
    double ops = (double)nvls_channels * sh->ranks_per_node, b = (double)sh->bytes;
    double c = nvls_chunk_max;
    if (a == COLL_ALGO_NVLS_TREE) {
        if (sh->nodes >= 4 && version >= 21900)
            c = 65536;
        if (b < 4 * ops * c && c > 65536)
            c = 65536;
        if (b < 1 * ops * c && c > 32768)
            c = 32768;
    } else {
        if (sh->nodes > 1 && algbw < 150e9)
            c = 32768;
        if (b < 64 * ops * c && c > 65536)
            c = 65536;
        if (b < 8 * ops * c && c > 32768)
            c = 32768;
        if (b < 2 * ops * c && c > 16384)
            c = 16384;
    }
    return c;
}

/* NVLS allreduce bandwidth as NCCL's tuner models it (tuning.cc 2.28+, ncclTopoTuneModel). The
 * NVLS graph has one channel per GPU of the node, each GPU the head of one (search.cc: "NVLS
 * channels correspond to GPUs pulling from NVLS"). NCCL's search gives each channel the
 * bandwidth s its NVLink can carry for all of them, a head taking twice its share: (g + 1) s per
 * GPU (search.cc ncclTopoSearchTryNvls; NCCL then rounds s down to its speed grid, 40 GB/s on
 * H100, which is not modelled), and with a network no more than a head's NIC. Per channel the
 * switch delivers s * efficiency * (g - 1)/g, twice over as allreduce pipelines its reduce and its
 * multicast; NVLSTree is also bounded by the head's NIC (twice it with two nodes, where the tree
 * has one level) and by NVIDIA's measured per-channel cap. Bus bandwidth is g channels of that;
 * algorithm bandwidth n/(2(n-1)) of it, as for a ring. Returns the bus bandwidth. */
double nvls_bus_bw(const HwTopology *topo, const CollShape *sh, CollAlgo a)
{
    int g = sh->ranks_per_node;
    double s = topo->gpu_link_Bps / (g + 1);
    double bw = s * nvls_efficiency * (g - 1) / g * 2;
    if (sh->nodes > 1) {
        double head_nic = coll_gpu_nic_Bps(topo, g);
        s = MIN(s, head_nic);
        bw = s * nvls_efficiency * (g - 1) / g * 2;
        if (a == COLL_ALGO_NVLS) /* across nodes over SHARP: the head's NIC, no tree cap */
            return g * MIN(bw, head_nic);
        bw = MIN(bw, head_nic * (sh->nodes <= 2 ? 2 : 1));
        bw = MIN(bw, nvls_tree_channel_cap_GBps[sh->nodes <= 2 ? 0 : 1] * 1e9);
    }
    return g * bw;
}

/* NVLS's latency as NCCL's tuner charges it, us: one NVLink SHARP round, across nodes NVLS's
 * network hop over SHARP or NVLSTree's network levels up and down. By release (tuning.cc at each
 * tag of NVIDIA/nccl): 2.17 a base of 40 us and nothing else (v2.17.1-1 l. 56; its hwLat NVLS
 * rows are 0); 2.18 a base of 23, NVLS's network hop 18, NVLSTree 19 per node beyond the first,
 * both ways ("2*(nNodes-1)", v2.18.3-1 l. 59, 77, 236-238); from 2.19 no base but a round of 23
 * us over NVLink (v2.19.4-1 l. 59, 69), 25 from 2.21 (v2.21.5-1 l. 69), 14 per level of
 * NVLSTree's tree ("2 * log2i(nNodes)", v2.19.4-1 l. 77, 243), 20.9 from 2.28.9 (v2.28.7-1
 * l. 165: 14; v2.28.9-1 l. 165, v2.30.7-1 l. 173: 20.9). Every release used to get 2.21's. */
double nvls_tuner_latency_us(const CollShape *sh, CollAlgo a, int version)
{
    if (version < 21800)
        return 40;
    bool across = sh->nodes > 1;
    if (version < 21900) {
        if (a == COLL_ALGO_NVLS)
            return 23 + (across ? 18 : 0);
        return 23 + 2 * (sh->nodes - 1) * 19.0;
    }
    double round_us = version < 22100 ? 23 : 25;
    if (!across)
        return round_us;
    if (a == COLL_ALGO_NVLS)
        return round_us + 18;
    return round_us + 2 * coll_log2_floor(sh->nodes) * (version < 22809 ? 14 : 20.9);
}

/* What NCCL's tuner leaves out: the pipeline (reduce, multicast; and the network between them for
 * NVLSTree) fills once, one chunk per stage beyond the first in each of the channels x heads
 * pipelines, or the whole message where it is smaller than one chunk each. */
double nvls_fill_s(const CollShape *sh, CollAlgo a, double algbw, int version)
{
    int stages = sh->nodes > 1 ? 3 : 2;
    double round = (double)nvls_channels * sh->ranks_per_node * nvls_chunk(sh, a, algbw, version);
    return (stages - 1) * MIN(round, (double)sh->bytes) / algbw;
}
