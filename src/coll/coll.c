/* coll: the analytic NCCL cost model; see coll.h.
 *
 * Constants are NCCL's (NVIDIA/nccl src/graph/tuning.cc, 2.30.x, as summarised in
 * ../shared/data/hardware.md; 2.8.4's and 2.10.3's where the model's nccl_version is older than
 * 2.12, nccl28.c; 2.12's to 2.22's for those releases, nccl_tables.c): base
 * latencies per algorithm and protocol, and per-hop latencies for NVLink and network hops.
 * Protocol efficiencies: LL sends 8 bytes of payload per 16-byte line (50 %), LL128 120 of 128
 * bytes (93.75 %), Simple all of it. */
#include "coll.h"
#include "coll_priv.h"
#include "collnet.h"
#include "nccl28.h"
#include "nccl_tables.h"
#include "nvls.h"

#include <math.h>
#include <stdio.h>
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

/* NCCL's correction of the tree's bandwidth at medium sizes, per protocol, for sizes 64 B << i
 * (tuning.cc treeCorrectionFactor, 2.26: "Trees are not perfectly sticking to the model for
 * medium sizes"). */
static const double tree_correction[COLL_PROTO_COUNT][23] = {
    {1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7,  .7,  .7,  .6, .5,
     .4,  .4,  .5,  .6,  .7, .8, .9, 1.0, 1.0, 1.0, 1.0},
    {1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7,  .6, .6,
     .6,  .6,  .6,  .6,  .8,  .9, .9, .9, .9, 1.0, 1.0},
    {.9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .6, .7, .8, .7, .7, .8, .9, .9},
};

/* NCCL's ceiling on LL's bus bandwidth, GB/s, for 1, 2, more nodes (tuning.cc llMaxBws): on one
 * node by GPU generation (Volta, Ampere, Hopper, Blackwell rows), across nodes by host CPU: the
 * second row for AMD, the first for any other. The Hopper row is 2.21.5's on: from 2.15.1 to
 * 2.20.5 it held Ampere's figures (nccl_ll_max_GBps). */
static const double ll_max_GBps[ARCH_COUNT][3] = {
    {39.0, 39.0, 20.4}, {87.7, 22.5, 19.0}, {141.0, 45.0, 35.0}, {2 * 141.0, 2 * 45.0, 2 * 35.0}};

/* The GPU generation by its compute capability (x 10): >= 100 Blackwell, >= 90 Hopper, >= 80
 * Ampere, else Volta, as NCCL's rules that compare minCompCap against a bound read it (the
 * Simple ring's latency factor, NVLS, CollNet). */
static int gpu_arch(const HwTopology *topo)
{
    int cc = topo->gpu.compute_capability;
    return cc >= 100 ? ARCH_BLACKWELL : cc >= 90 ? ARCH_HOPPER : cc >= 80 ? ARCH_AMPERE : ARCH_VOLTA;
}

/* The row of NCCL's per-generation tables a release uses (tuning.cc, at each tag of
 * NVIDIA/nccl): up to v2.14 "compCap80 = minCompCap == 80 && maxCompCap == 80", so only an
 * A100-class part gets Ampere's row and every other GPU, Hopper included, Volta's; v2.15-v2.16
 * match 80 and 90 exactly; from v2.17 ranges ("minCompCap >= 90 ? HOPPER : minCompCap >= 80 ?
 * AMPERE : VOLTA"), so an L40 (8.9) is Ampere; from v2.25.1 ">= 100" is Blackwell, which older
 * releases rate as Hopper. */
static int nccl_arch_row(const HwTopology *topo, int version)
{
    int cc = topo->gpu.compute_capability;
    if (version < 21500)
        return cc == 80 ? ARCH_AMPERE : ARCH_VOLTA;
    if (version < 21700)
        return cc == 80 ? ARCH_AMPERE : cc == 90 ? ARCH_HOPPER : ARCH_VOLTA;
    if (version < 22501)
        return cc >= 90 ? ARCH_HOPPER : cc >= 80 ? ARCH_AMPERE : ARCH_VOLTA;
    return gpu_arch(topo);
}

/* Whether a release enables LL128 for this GPU at all (tuning.cc): up to v2.26 only for the
 * compute capabilities it lists ("minCompCap == 70/80" to v2.14, "case 90" from v2.15.1, "case
 * 100" and "case 120" from v2.25.1), so an A40 (8.6), an L40 (8.9) or a B300 (10.3) never gets
 * it; from v2.27.3 any GPU from Volta on ("!(minCompCap < 70 || ...)"). */
static bool nccl_ll128_gpu(const HwTopology *topo, int version)
{
    int cc = topo->gpu.compute_capability;
    if (version >= 22700)
        return cc >= 70;
    return cc == 70 || cc == 80 || (cc == 90 && version >= 21500) ||
           ((cc == 100 || cc == 120) && version >= 22501);
}

/* llMaxBws[row][nodes], with the Hopper row as the release has it: Ampere's figures up to
 * v2.20.5, {141, 45, 35} from v2.21.5 (tuning.cc at each tag). */
static double nccl_ll_max_GBps(int row, int nidx, int version)
{
    if (row == ARCH_HOPPER && version < 22100)
        row = ARCH_AMPERE;
    return ll_max_GBps[row][nidx];
}

/* NCCL's default LL128 rule (NCCL_PROTO unset), for ring and tree alike: LL128 starts "enabled
 * by default only in certain cases" (protoEnable 2) and ncclTopoTuneModel zeroes its bandwidth
 * unless all of these hold (tuning.cc at each tag of NVIDIA/nccl):
 * - the GPUs: "(minCompCap == 70 && maxCompCap == 70) || (minCompCap == 80 && maxCompCap == 80)"
 *   in v2.8.4-1 to v2.14.3-1 (l. 194-195 of v2.8.4-1: Volta and Ampere only); v2.15.1-1 adds
 *   "(minCompCap == 90 && maxCompCap == 90)" (l. 231), v2.15.5-1 on have "case 90" (v2.17.1-1
 *   l. 253), so Hopper gets LL128 from 2.15 (but not for a two-rank ring allreduce built with
 *   CUDA 11.8, which is not modelled);
 * - inside the node, "graphs[a]->typeIntra <= PATH_NVB" (PATH_NVL before 2.18.3): GPUs that
 *   reach each other only over PCIe never get it;
 * - across nodes, the graph's GPU-NIC path: "graphs[a]->typeInter <= PATH_PXB || (minCompCap >=
 *   90 && graphs[a]->typeInter <= PATH_PXN)" (v2.23.4-1 l. 327; up to 2.26), "<=
 *   (ncclParamLl128C2c() ? PATH_P2C : PATH_PXN)" in v2.27.3-1 (l. 460, NCCL_LL128_C2C default
 *   1), "typeInter <= PATH_PXN" with PATH_P2C below PATH_PXN from v2.28.3-1 (l. 484; v2.30.7-1
 *   l. 522). So a NIC behind the GPU's own PCIe switches (PIX, PXB) always qualifies; one behind
 *   the CPU's host bridge (PHB) or the other socket (SYS) never does; a GH200's NIC, on the Grace
 *   CPU's PCIe with the GPU on NVLink-C2C, is PHB to NCCL before 2.27 (topo.h v2.26.2-1 has
 *   no PATH_P2C; paths.cc v2.27.3-1 l. 677-679 turns "PHB + C2C" into P2C), so Hopper gets
 *   LL128 across GH200 nodes only from 2.27 ("On GH200 ... the inter-node NIC->GPU receive path is
 *   classified as PATH_P2C", NVIDIA/nccl#2053). PXN (a GPU reaching a NIC through a peer GPU's
 *   PCIe switch) is NCCL's routing, not a path of the machine: where every GPU has its own
 *   NIC path, as in every topology here, it does not arise.
 * Where NCCL cannot use GPUDirect RDMA it routes the GPU's network traffic through the CPU and
 * the path becomes PHB (paths.cc v2.23.4-1 l. 618-628), which the topology's gpu_nic_path then
 * states. A single node has no network graph: typeInter stays PATH_PIX (search.cc v2.23.4-1 l.
 * 950, relaxed only "if (system->nodes[NET].count > 0 ...)"). Costs nothing: a few compares per
 * tuner call. */
bool coll_ll128_enabled(const CollModel *model, const CollShape *sh)
{
    const HwTopology *topo = model->topo;
    int version = model->nccl_version > 0 ? model->nccl_version : COLL_NCCL_NEWEST;
    int arch = gpu_arch(topo);
    if (!nccl_ll128_gpu(topo, version))
        return false;
    if (sh->ranks_per_node > 1 && topo->gpu_link && strncmp(topo->gpu_link, "pcie", 4) == 0)
        return false;
    if (sh->nodes <= 1)
        return true;
    switch (topo->gpu_nic_path) {
    case HW_GPU_NIC_PIX:
    case HW_GPU_NIC_PXB:
        return true;
    case HW_GPU_NIC_C2C:
        return arch >= ARCH_HOPPER && version >= 22700;
    default:
        return false;
    }
}

/* One number of a version: digits only (no sign, no space), at most 99; *p moves past it. */
static bool version_part(const char **p, unsigned *out)
{
    if (!g_ascii_isdigit(**p))
        return false;
    char *end = NULL;
    unsigned long v = strtoul(*p, &end, 10);
    if (v > 99)
        return false;
    *out = (unsigned)v;
    *p = end;
    return true;
}

bool coll_nccl_version_parse(const char *text, int *out)
{
    /* "2.23", "2.23.4", "2.23.4-1" (the package's build number), nothing else */
    unsigned major = 0, minor = 0, patch = 0, build = 0;
    const char *p = text;
    if (!p || !version_part(&p, &major) || *p++ != '.' || !version_part(&p, &minor))
        return false;
    if (*p == '.') {
        p++;
        if (!version_part(&p, &patch))
            return false;
        if (*p == '-') {
            p++;
            if (!version_part(&p, &build))
                return false;
        }
    }
    if (*p != '\0' || major != 2)
        return false;
    *out = (int)(major * 10000 + minor * 100 + patch);
    return true;
}

/* The bus bandwidth NCCL's model expects of an algorithm and protocol ("various model
 * refinements" in tuning.cc ncclTopoTuneModel): the ring's LL and LL128 at the release's share of
 * the link (nccl_tables_ring_bus_factor), LL capped per GPU generation; the tree 0.92, its LL
 * 1/3.8 of that and its LL128 7/9 inside a node, then 0.85 of it all with one GPU per node from
 * 2.18.3 (nccl_tables_tree_pattern_factor). The per-channel caps of LL128 and the tree are not
 * applied: they need NCCL's channel count, which the topology does not give, and they bind only
 * with few channels. */
static double nccl_bus_bw(const CollModel *model, CollAlgo a, CollProto p, const CollShape *sh,
                          double bus)
{
    int nidx = sh->nodes <= 1 ? 0 : sh->nodes == 2 ? 1 : 2;
    const HwTopology *topo = model->topo;
    int version = model->nccl_version > 0 ? model->nccl_version : COLL_NCCL_NEWEST;
    int row = sh->nodes <= 1 ? nccl_arch_row(topo, version) : topo->cpu_amd ? 1 : 0;
    double ll_max = nccl_ll_max_GBps(row, nidx, version) * 1e9;
    /* before 2.12 an A100 communicator's cap (nccl28.c; across nodes nccl28_bus_bw applies it);
     * to 2.17 Ampere's and Hopper's row's (nccl_tables.c) */
    bus = nccl28_bus_cap(model, bus);
    bus =
        MIN(bus, nccl_tables_bus_max_Bps(nccl_tables_find(version), nccl_arch_row(topo, version)));
    if (a == COLL_ALGO_RING) {
        double share = bus * nccl_tables_ring_bus_factor(version, p, sh);
        return p == COLL_PROTO_LL ? MIN(ll_max, share) : share;
    }
    double pattern = nccl_tables_tree_pattern_factor(version, sh);
    bus *= 0.92;
    if (p == COLL_PROTO_LL)
        return pattern * MIN(bus / 3.8, ll_max);
    if (p == COLL_PROTO_LL128)
        return pattern * bus * (sh->nodes == 1 ? 7.0 / 9.0 : 120.0 / 128.0);
    return pattern * bus;
}

static const char *const algo_names[COLL_ALGO_COUNT] = {
    "ring", "tree", "nvls", "nvlstree", "pat", "collnetdirect", "collnetchain"};
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
    case IR_COLL_ALLREDUCE:
        return 2.0 * (n - 1) / n;
    case IR_COLL_ALLGATHER:
    case IR_COLL_REDUCE_SCATTER:
    case IR_COLL_ALLTOALL:
        return (double)(n - 1) / n;
    case IR_COLL_BROADCAST:
        return 1.0;
    default:
        return 1.0;
    }
}

double coll_bytes_sent_per_rank(IrCollKind kind, uint64_t bytes, int n)
{
    return (double)bytes * coll_busbw_factor(kind, n);
}

/* The network bandwidth one GPU has to itself: its NIC where the node has one per GPU, its share
 * of them otherwise (of PCIe among the g group members without NICs). */
double coll_gpu_nic_Bps(const HwTopology *topo, int g)
{
    double nics_per_gpu =
        topo->nics_per_node > 0 ? (double)topo->nics_per_node / topo->gpus_per_node : 0;
    return nics_per_gpu > 0 ? MIN(1.0, nics_per_gpu) * topo->nic_Bps : topo->pcie_Bps / g;
}

static bool is_pcie(const HwTopology *topo)
{
    return topo->gpu_link && strncmp(topo->gpu_link, "pcie", 4) == 0;
}

double coll_nics_reached(const HwTopology *topo, int ranks_per_node, bool whole_nics)
{
    double share = ranks_per_node * ((double)topo->nics_per_node / topo->gpus_per_node);
    return MAX(1.0, MIN((double)topo->nics_per_node, whole_nics ? floor(share) : share));
}

/* The NICs that a node's group members use, together (one NIC, or rail, per GPU where a node has
 * as many as GPUs; shared ones where it has fewer); PCIe where the node has none. bus_net_Bps:
 * at most what the communicator's channels carry where the topology caps a channel
 * (net_channel_Bps); CollNet's legs are the heads' NICs and are not capped (no capped topology
 * has SHARP). */
static double nics_Bps(const HwTopology *topo, const CollShape *sh)
{
    return topo->nics_per_node > 0
               ? coll_nics_reached(topo, sh->ranks_per_node, false) * topo->nic_Bps
               : topo->pcie_Bps;
}

static double bus_net_Bps(const HwTopology *topo, const CollShape *sh)
{
    /* all-to-all is a send and a receive per peer, each on its own channels: not this cap */
    double bw = nics_Bps(topo, sh);
    return sh->kind == IR_COLL_ALLTOALL ? bw : MIN(bw, coll_net_channel_cap_Bps(topo, -1));
}

/* Bus bandwidth of the slowest part of the path. A ring that spans nodes crosses each node's
 * boundary once per channel and direction, so its bus bandwidth across nodes is the bandwidth of
 * the NICs that the node's group members use, independent of how many GPUs per node take part. */
static double bus_bandwidth(const HwTopology *topo, const CollShape *sh)
{
    double bw = INFINITY;
    if (sh->ranks_per_node > 1)
        bw = topo->gpu_link_Bps;
    if (sh->nodes > 1)
        bw = MIN(bw, bus_net_Bps(topo, sh));
    return isfinite(bw) ? bw : topo->gpu_link_Bps;
}

/* NCCL's channels to one rank on another node for send/receive (paths.cc ncclTopoGetNchannels,
 * "Remote rank, use network", and ncclTopoComputeP2pChannels): one up to 2.11;
 * NCCL_NCHANNELS_PER_NET_PEER, default 2, from 2.12; from 2.20.3 two, halved while 2 x ranks
 * exceed 4 x the communicator's channels, but at least the GPU's NICs. PyTorch sends over a
 * communicator of the two ranks alone (ProcessGroupNCCL's send/recv key), so nothing is halved:
 * MAX(2, NICs per GPU). Never more than the communicator's channels (the minimum starts there),
 * net_channels here. NCCL rounds the count up to a power of two (nextPow2): not modelled, it
 * matters only with 3 NICs per GPU. */
/* A communicator's channels across nodes: the log's (node.net_channels), else nccl_channels. */
static int comm_net_channels(const HwTopology *topo)
{
    return topo->net_channels > 0 ? topo->net_channels : topo->nccl_channels;
}

int coll_net_peer_channels(const HwTopology *topo, int nccl_version)
{
    int version = nccl_version > 0 ? nccl_version : COLL_NCCL_NEWEST;
    int n = version < 21200 ? 1 : version < 22003 ? 2 : MAX(2, topo->nics_per_rail);
    return MAX(1, MIN(n, comm_net_channels(topo)));
}

/* What `channels` NCCL channels carry across a node boundary at most, per direction and per
 * communicator, where the topology caps a channel (node.net_channel_GBps); -1: a collective's
 * (node.net_channels). INFINITY without a cap, and for fsdprun's MPI rings (not NCCL). */
double coll_net_channel_cap_Bps(const HwTopology *topo, int channels)
{
    if (topo->net_channel_Bps <= 0 || topo->coll_lib != HW_COLL_NCCL)
        return INFINITY;
    return (channels < 0 ? comm_net_channels(topo) : channels) * topo->net_channel_Bps;
}

/* The flow model's bound on a transfer of this collective (fraction of its load per second)
 * where channels are capped: the communicator's channels carry at most the cap across each node
 * boundary, however idle the NICs. A ring crosses it once per direction with `scale` bytes (its
 * load unit), a tree twice (net_builder_tree: each node's NICs carry twice the bytes, and on two
 * nodes `scale` already holds the tree's gain); PAT as a ring. Not all-to-all (a send and a
 * receive per peer, each on its own channels) nor NVLS or CollNet (their network legs are the
 * heads' NICs; no capped topology has them). INFINITY: no bound. */
double coll_transfer_max_rate(const CollModel *model, const CollShape *sh, const CollChoice *ch,
                              double scale)
{
    bool capped_algo =
        ch->algo == COLL_ALGO_RING || ch->algo == COLL_ALGO_TREE || ch->algo == COLL_ALGO_PAT;
    if (sh->nodes <= 1 || sh->kind == IR_COLL_ALLTOALL || !capped_algo || scale <= 0)
        return INFINITY;
    double crossing = ch->algo == COLL_ALGO_TREE ? 2 * scale : scale;
    return coll_net_channel_cap_Bps(model->topo, -1) / crossing;
}

/* The same for a send of `bytes` (INFINITY inside a node). */
double coll_p2p_max_rate(const CollModel *model, uint64_t bytes, bool same_node)
{
    if (same_node || bytes == 0)
        return INFINITY;
    int channels = coll_net_peer_channels(model->topo, model->nccl_version);
    return coll_net_channel_cap_Bps(model->topo, channels) / (double)bytes;
}

/* A double binary tree over two nodes is one edge: each node sends the message once over its
 * NICs (half up the first tree, half down the second) where with three nodes and more an inner
 * node sends it twice, so across two nodes the tree's algorithm bandwidth is the NICs', not half
 * of it; the chain inside the node still moves it twice over each GPU's link. NCCL does the
 * same: its search raises a tree graph's intra-node bandwidth up to twice its network bandwidth
 * (search.cc ncclTopoCompute, "increase bwIntra for trees (2 nodes or collnet)") and its tuner
 * rates trees on two nodes by that (tuning.cc: bw = nNodes <= 2 ? bwIntra : bwInter), so the
 * tuner's tree gets about the NICs' bandwidth there, the ring about half. Measured: 2 x 8
 * A100 over 4 x 100 Gb/s EFA reach 78 GB/s busbw at 2 GiB and 2 x 4 GH200 over 4 x 200 Gb/s
 * Slingshot 153 (../shared/data/nccl-tests), above what a ring over the same NICs can carry (48
 * and 96). Returns the factor on half the bus bandwidth `bus`. */
static double two_node_tree_gain(const HwTopology *topo, const CollShape *sh, double bus)
{
    double reach = bus_net_Bps(topo, sh);
    if (sh->ranks_per_node > 1)
        reach = MIN(reach, topo->gpu_link_Bps / 2);
    return MAX(1.0, 2 * reach / bus);
}

/* NCCL's log2i (src/include/utils.h v2.21.5-1 l. 46, v2.30.7-1 l. 56: log2Down), rounded down:
 * the levels its tuner counts in a tree of n nodes (3 at 12 nodes, not 4) */
int coll_log2_floor(int n)
{
    int l = 0;
    while (n >>= 1)
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

/* The ring's latency as NCCL charges it (tuning.cc 2.26, ncclTopoTuneModel and
 * ncclTopoGetAlgoTime): the base, intra-node steps at the link's hop latency, but across nodes
 * every step at least the network proxy's post overhead (1 us, 2 us on AMD hosts; thrice that for
 * Simple); network steps at the ring's network latency, or the tree's where each node holds one
 * rank ("latencies are fully exposed"); and a multi-node Simple allreduce 1.4 times the whole
 * latency, base included (1.9 before Ampere: "plateau effect of ring", ncclTopoGetAlgoTime
 * v2.30.7-1 l. 649 scales comm->latencies, which start at the base) once each channel's share
 * of a rank is 64 bytes or more, taken with NCCL's most channels (32) as the channel count is not
 * known here. Before 2.12, NCCL 2.8-2.11's rules (nccl28.c); to 2.22, that release's
 * (nccl_tables.c). */
static double ring_latency_us(const CollModel *model, const CollShape *sh, CollProto p, double base,
                              double intra_hop)
{
    const HwTopology *topo = model->topo;
    int steps, inter;
    ring_steps(sh, &steps, &inter);
    if (nccl28_applies(model))
        return nccl28_ring_latency_us(sh, p, base, intra_hop, steps, inter);
    const NcclTables *release = nccl_tables_find(model->nccl_version);
    if (release)
        return nccl_tables_ring_latency_us(release, sh, p, base, intra_hop, steps, inter,
                                           topo->gpu.compute_capability, topo->cpu_amd ? 2.0 : 1.0);
    double net_hop = net_hop_us[COLL_ALGO_RING][p];
    if (sh->nodes > 1) {
        double overhead = (topo->cpu_amd ? 2.0 : 1.0) * (p == COLL_PROTO_SIMPLE ? 3 : 1);
        intra_hop = MAX(intra_hop, overhead);
        if (sh->ranks_per_node == 1)
            net_hop = net_hop_us[COLL_ALGO_TREE][p];
    }
    double lat = base + (steps - inter) * intra_hop + inter * net_hop;
    if (p == COLL_PROTO_SIMPLE && sh->nodes > 1 && sh->kind == IR_COLL_ALLREDUCE &&
        sh->bytes / (32ULL * sh->nranks) >= 64)
        lat *= gpu_arch(topo) < ARCH_AMPERE ? 1.9 : 1.4;
    return lat;
}

/* A ring of point-to-point messages (fsdprun's MPI ring, run_coll.c): 2(n-1) or n-1 steps, each
 * a message of bytes/n that costs the link's latency (calibrated or cited in the topology), no
 * LL protocols, no base latency of a GPU library. */
static double p2p_ring_time(const HwTopology *topo, const CollShape *sh, CollChoice *choice)
{
    int steps, inter;
    ring_steps(sh, &steps, &inter);
    double inter_lat = MAX(topo->net_latency_s, topo->nic_latency_s);
    double lat = (steps - inter) * topo->gpu_link_latency_s + inter * inter_lat;
    double bus = bus_bandwidth(topo, sh);
    double t = lat + (double)sh->bytes * coll_busbw_factor(sh->kind, sh->nranks) / bus;
    if (sh->kind == IR_COLL_BROADCAST)
        t = lat + (double)sh->bytes / bus;
    if (choice)
        *choice = (CollChoice){COLL_ALGO_RING, COLL_PROTO_SIMPLE, lat, bus, 1.0, false};
    return t;
}

bool coll_topology_has_nvls(const HwTopology *topo)
{
    return topo->nvls && gpu_arch(topo) >= ARCH_HOPPER;
}

bool coll_topology_has_sharp(const HwTopology *topo)
{
    return topo->net_sharp > 0;
}

/* PAT (NCCL 2.23 on, tuning.cc ncclPatEnable and ncclTopoTuneModel): all-gather and
 * reduce-scatter, Simple only, when every node holds one rank of the group, on sm60 or later (all
 * GPUs modelled here) and a host-driven network (all of them). Latency, us: a base of 8, the
 * tree's network latency (14 for Simple, as with one rank per node) over 3.5 per tree level
 * (log2 of the nodes, rounded down as NCCL's log2i), and 2.8 per rank ("still a linear part").
 * Bandwidth: 0.75 of the tree graph's, which with one GPU per node is that GPU's NIC; NCCL's
 * tuner divides the whole array by it (no ring factor), so the bus bandwidth that carries the
 * ring's (n - 1)/n of the array is 0.75 (n - 1)/n of the NIC's. */
static const double pat_base_us = 8.0, pat_level_div = 3.5, pat_per_rank_us = 2.8, pat_bw = 0.75;

static bool pat_possible(const CollShape *sh)
{
    return (sh->kind == IR_COLL_ALLGATHER || sh->kind == IR_COLL_REDUCE_SCATTER) &&
           sh->ranks_per_node == 1 && sh->nodes > 1;
}

static bool nvls_possible(const HwTopology *topo, const CollShape *sh)
{
    /* NCCL: NVLS needs a multicast-capable NVSwitch and more than 2 GPUs (nvls.cc), runs Simple
     * only, and across nodes only as NVLSTree for allreduce (tuning.cc). */
    return coll_topology_has_nvls(topo) && sh->kind == IR_COLL_ALLREDUCE && sh->ranks_per_node > 2;
}

/* NCCL runs an all-to-all as one group of sends and receives, a pair per peer (enqueue.cc
 * v2.30.7-1 l. 3070-3079; nccl-tests' alltoall did the same before 2.28), and picks a send's
 * protocol by its size, not by the tuner: LL where a channel's part is at most
 * NCCL_P2P_LL_THRESHOLD (16 KiB), else Simple; never LL128 (addP2pToPlan, v2.30.7-1 l. 859,
 * 932-933; v2.21.5-1 l. 529). A part below 64 KiB goes on one channel (l. 921-924), so LL up to
 * 16 KiB per peer; 2.23-2.28 allow the peer's channels x 16 KiB (v2.26.2-1 l. 779), which is not
 * modelled (the threshold would be 32 KiB across nodes). The tuner's ring estimate chose LL up to
 * 128 KiB per peer and LL128 beyond, 6-10 % slower than Simple at the plateau. */
static CollProto alltoall_proto(const CollShape *sh)
{
    return sh->bytes / (uint64_t)sh->nranks <= 16384 ? COLL_PROTO_LL : COLL_PROTO_SIMPLE;
}

static double analytic_time(const CollModel *self, const CollShape *sh, CollChoice *choice)
{
    const HwTopology *topo = self->topo;
    CollChoice best = {COLL_ALGO_RING, COLL_PROTO_SIMPLE, 0, 0, 1, false};
    /* NCCL's tuner picks by its own estimate (best_tuner_s); the time returned (best_s) is ours,
     * which adds what the tuner leaves out (NVLS's pipeline fill) */
    double best_s = INFINITY, best_tuner_s = INFINITY;
    if (sh->nranks <= 1 || sh->bytes == 0) {
        if (choice)
            *choice = best;
        return 0;
    }
    if (topo->coll_lib == HW_COLL_P2P_RING)
        return p2p_ring_time(topo, sh, choice);
    /* the latency tables of the model's release: before 2.12 nccl28.c's, to 2.22 nccl_tables.c's,
     * then today's */
    bool v28 = nccl28_applies(self);
    const NcclTables *release = nccl_tables_find(self->nccl_version);
    const double(*intra_hop)[COLL_PROTO_COUNT] = is_pcie(topo) ? pcie_hop_us : nvlink_hop_us;
    const double(*base_lat)[COLL_PROTO_COUNT] = base_latency_us;
    const double(*net_hop)[COLL_PROTO_COUNT] = net_hop_us;
    if (v28 || release) {
        intra_hop = is_pcie(topo) ? (v28 ? nccl28_pcie_hop_us : release->pcie_hop_us)
                                  : (v28 ? nccl28_nvlink_hop_us : release->nvlink_hop_us);
        base_lat = v28 ? nccl28_base_latency_us : release->base_us;
        net_hop = v28 ? nccl28_net_hop_us : release->net_hop_us;
    }
    bool ll_intra_x18 = v28 || (release && release->ll_intra_x18);
    double bus = bus_bandwidth(topo, sh);
    int log_size = 0;
    while (log_size < 62 && (sh->bytes >> 6) >> (log_size + 1))
        log_size++;
    for (int a = 0; a < COLL_ALGO_COUNT; a++) {
        /* NCCL's tree only implements allreduce, and inside one node it is a chain: only the
         * ring is considered there. Nor an algorithm newer than the release. */
        if ((a == COLL_ALGO_TREE && (sh->kind != IR_COLL_ALLREDUCE || sh->nodes < 2)) ||
            !nccl_tables_algo_exists(self->nccl_version, (CollAlgo)a))
            continue;
        /* NVLS across nodes runs over CollNet (the IB switches reduce between nodes): only with
         * SHARP and CollNet enabled or NVLS forced (enqueue.cc: "if (a == NCCL_ALGO_NVLS &&
         * collNetSupport != 1 && comm->nNodes > 1) continue") */
        bool nvls_sharp = coll_topology_has_sharp(topo) &&
                          (self->collnet_enable || self->force_algo == COLL_ALGO_NVLS);
        if ((a == COLL_ALGO_NVLS && ((sh->nodes > 1 && !nvls_sharp) || !nvls_possible(topo, sh))) ||
            (a == COLL_ALGO_NVLS_TREE && (sh->nodes < 2 || !nvls_possible(topo, sh))) ||
            (a == COLL_ALGO_PAT && !pat_possible(sh)))
            continue;
        /* CollNet: where the switches offer SHARP, and only when enabled or forced, as NCCL
         * (NCCL_COLLNET_ENABLE, default 0: tuning.cc disables it otherwise) */
        bool collnet = a == COLL_ALGO_COLLNET_DIRECT || a == COLL_ALGO_COLLNET_CHAIN;
        if (collnet && (!collnet_possible(topo, sh, (CollAlgo)a) ||
                        !(self->collnet_enable || self->force_algo == a)))
            continue;
        /* a forced all-reduce algorithm leaves the other collectives to the ring; a forced PAT,
         * which only the gathers have, does not */
        if (self->force_algo >= 0 && self->force_algo != a &&
            !(a == COLL_ALGO_RING && sh->kind != IR_COLL_ALLREDUCE &&
              self->force_algo != COLL_ALGO_PAT))
            continue;
        for (int p = 0; p < COLL_PROTO_COUNT; p++) {
            if (self->force_proto >= 0 && self->force_proto != p)
                continue;
            /* NCCL's default LL128 rule; NCCL_PROTO=LL128 enables it regardless (tuning.cc:
             * the rule applies only to protoEnable 2, the default) */
            if (p == COLL_PROTO_LL128 && self->force_proto != p && !coll_ll128_enabled(self, sh))
                continue;
            if (sh->kind == IR_COLL_ALLTOALL &&
                (p == COLL_PROTO_LL128 || (self->force_proto < 0 && p != (int)alltoall_proto(sh))))
                continue;
            double lat_us, eff_bus, algbw, fill_s = 0;
            if (collnet) {
                if (p != COLL_PROTO_SIMPLE)
                    continue;
                /* as NVLS: the flow model carries the ring's loads at this bus bandwidth */
                algbw = collnet_algbw(topo, sh, (CollAlgo)a, topo->gpu_link_Bps,
                                      nics_Bps(topo, sh), gpu_arch(topo) >= ARCH_HOPPER);
                eff_bus = algbw * coll_busbw_factor(sh->kind, sh->nranks);
                lat_us = collnet_latency_us(sh, (CollAlgo)a);
            } else if (a == COLL_ALGO_PAT) {
                if (p != COLL_PROTO_SIMPLE)
                    continue;
                lat_us = pat_base_us +
                         coll_log2_floor(sh->nodes) * net_hop_us[COLL_ALGO_TREE][p] / pat_level_div +
                         pat_per_rank_us * sh->nranks;
                algbw = pat_bw * bus;
                eff_bus = algbw * coll_busbw_factor(sh->kind, sh->nranks);
            } else if (a == COLL_ALGO_NVLS || a == COLL_ALGO_NVLS_TREE) {
                if (p != COLL_PROTO_SIMPLE)
                    continue;
                /* the flow model carries the ring's loads: NVLS is a ring of this efficiency
                 * (above 1: the switch does part of the work) */
                eff_bus = nvls_bus_bw(topo, sh, (CollAlgo)a);
                algbw = eff_bus / coll_busbw_factor(sh->kind, sh->nranks);
                int version = self->nccl_version > 0 ? self->nccl_version : COLL_NCCL_NEWEST;
                lat_us = nvls_tuner_latency_us(sh, (CollAlgo)a, version);
                fill_s = nvls_fill_s(sh, (CollAlgo)a, algbw, version);
            } else {
                double ratio; /* algorithm bandwidth = bus bandwidth * ratio */
                if (a == COLL_ALGO_RING) {
                    lat_us =
                        ring_latency_us(self, sh, (CollProto)p, base_lat[a][p], intra_hop[a][p]);
                    ratio = 1.0 / coll_busbw_factor(sh->kind, sh->nranks);
                } else {
                    /* double binary tree over nodes, chain inside a node, up and down; before
                     * 2.18 LL's intra-node hops count 1.8 times across nodes (v2.8.4-1 l. 141,
                     * v2.17.1-1 l. 181) */
                    double hop = intra_hop[a][p] * (ll_intra_x18 && p == COLL_PROTO_LL ? 1.8 : 1.0);
                    lat_us = base_lat[a][p] + 2 * ((sh->ranks_per_node - 1) * hop +
                                                   coll_log2_floor(sh->nodes) * net_hop[a][p]);
                    ratio = 0.5;
                }
                /* before 2.12: that release's refinements and caps, the two-node tree's gain
                 * included */
                bool caps_v28 = v28 && sh->nodes > 1;
                if (caps_v28) {
                    int nidx = sh->nodes == 2 ? 1 : 2;
                    double ll_max =
                        1e9 * nccl_ll_max_GBps(topo->cpu_amd ? 1 : 0, nidx, self->nccl_version);
                    double gain = sh->nodes == 2 ? two_node_tree_gain(topo, sh, bus) : 1.0;
                    eff_bus = nccl28_bus_bw(self, (CollAlgo)a, (CollProto)p, sh, bus, ll_max, gain);
                } else {
                    eff_bus = nccl_bus_bw(self, (CollAlgo)a, (CollProto)p, sh, bus);
                }
                if (a == COLL_ALGO_TREE && log_size < 23)
                    eff_bus *= v28 && p == COLL_PROTO_LL128
                                   ? nccl28_tree_correction_ll128(self, log_size)
                                   : tree_correction[p][log_size];
                algbw = eff_bus * ratio;
                if (a == COLL_ALGO_TREE && sh->nodes == 2 && !caps_v28) {
                    /* to 2.17 the cap of an A100's (H100's) communicator bounds the raised
                     * bandwidth too: NCCL caps busBw after its search raised bwIntra */
                    int version = self->nccl_version > 0 ? self->nccl_version : COLL_NCCL_NEWEST;
                    double cap = nccl_tables_bus_max_Bps(release, nccl_arch_row(topo, version));
                    double gain = two_node_tree_gain(topo, sh, bus);
                    algbw *= MIN(gain, MAX(1.0, cap / MIN(bus, cap)));
                    /* the flow model loads every NIC and GPU port of a tree with twice the
                     * message (three nodes and more): the bus bandwidth it must see */
                    eff_bus = algbw / ratio;
                }
            }
            double tuner_s = lat_us * 1e-6 + (double)sh->bytes / algbw;
            if (tuner_s < best_tuner_s) {
                best_tuner_s = tuner_s;
                best_s = tuner_s + fill_s;
                best = (CollChoice){(CollAlgo)a,  (CollProto)p,  lat_us * 1e-6 + fill_s,
                                    eff_bus,      eff_bus / bus, false};
            }
        }
    }
    if (best_s == INFINITY) {
        /* only a forced algorithm or protocol can leave nothing to choose: NCCL would refuse the
         * call; here the tuner's choice is taken and flagged, so that callers can say so */
        CollModel free_choice = *self;
        free_choice.force_algo = free_choice.force_proto = -1;
        best_s = analytic_time(&free_choice, sh, &best);
        best.forced_unavailable = true;
    }
    if (choice)
        *choice = best;
    return best_s;
}

double coll_nccltests_op_s(const HwTopology *topo, double device_s, int gpus_per_thread)
{
    return MAX(device_s, gpus_per_thread * topo->gpu.launch_overhead_s);
}

static double analytic_p2p(const CollModel *self, uint64_t bytes, bool same_node)
{
    const HwTopology *topo = self->topo;
    if (same_node)
        return topo->gpu_link_latency_s + (double)bytes / topo->gpu_link_Bps;
    double bw = topo->nics_per_node > 0 ? topo->nic_Bps : topo->pcie_Bps;
    bw = MIN(bw, coll_net_channel_cap_Bps(topo, coll_net_peer_channels(topo, self->nccl_version)));
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
