/* net: the interconnect as explicit links, and a flow-level model of bandwidth sharing.
 *
 * Links are directional and have a capacity. A node's GPUs reach each other through their own
 * NVLink (or PCIe) port into the node's switch: one TX and one RX link per GPU. Traffic between
 * nodes leaves through a NIC (GPU i uses NIC i * nics / gpus, as NCCL pairs each GPU with its
 * closest NIC) and enters through the peer's NIC. On a DragonFly+ machine, nodes form groups
 * (JUWELS Booster: cells of 48 nodes, each a non-blocking fat tree); traffic between groups also
 * crosses its group's global links, modelled as one OUT and one IN link per group with the
 * capacity of all of them together. Inside a group, node ports are cabled to leaf switches in
 * order (node-major, as many ports per leaf as evenly divides the group's); where the topology
 * gives each leaf less uplink bandwidth to the spines than its ports bring (a tapered fabric),
 * traffic between leaves, or leaving the group, also crosses its leaf's UP link and the far leaf's
 * DOWN link. Non-blocking leaves cannot be a bottleneck and are not modelled.
 *
 * A transfer is one collective (or send/recv) of a whole group family: its load is the number of
 * bytes it puts through each link. Concurrent transfers share links max-min fairly (progressive
 * filling, the model SimGrid uses for parallel tasks): each transfer progresses at a rate x
 * (fraction of its load per second) such that on every link sum(load * x) <= capacity, and no
 * transfer can go faster without slowing one that is slower, speed measured in bytes per second
 * on the transfer's most loaded link (so small and large transfers share a link as flows do).
 * Rates are recomputed when a transfer starts or ends. Alone, a transfer takes
 * max over its links of load / capacity: the bus-bandwidth form of NCCL's model. */
#ifndef FSD_NET_H
#define FSD_NET_H

#include "../hw/hw.h"
#include "../ir/ir.h"

#include <glib.h>
#include <stdint.h>

typedef enum {
    NET_LINK_GPU_TX, /* GPU -> node switch (NVLink port or PCIe) */
    NET_LINK_GPU_RX,
    NET_LINK_NIC_TX, /* node -> fabric */
    NET_LINK_NIC_RX,
    NET_LINK_GROUP_OUT, /* a DragonFly+ group's global links, leaving */
    NET_LINK_GROUP_IN,
    NET_LINK_LEAF_UP, /* a leaf switch's uplinks to its group's spines, together */
    NET_LINK_LEAF_DOWN,
    NET_LINK_KIND_COUNT
} NetLinkKind;

typedef struct {
    uint32_t link;
    double bytes;
} NetLoad;

typedef struct {
    const HwTopology *topo;
    int nodes, gpus_per_node; /* used by the job (gpus_per_node <= the node's) */
    int nics_per_node, groups, nodes_per_group;
    int leaves_per_group, ports_per_leaf; /* 0: leaves not modelled (non-blocking) */
    int n_links;
    double *capacity_Bps; /* per link */
    /* first link id of each kind (kinds are contiguous ranges, see net.c); the last is n_links */
    uint32_t kind_base[NET_LINK_KIND_COUNT + 1];
} NetTopo;

NetTopo *net_topo_new(const HwTopology *topo, int nodes, int gpus_per_node);
void net_topo_free(NetTopo *t);
NetLinkKind net_link_kind(const NetTopo *t, uint32_t link);
/* "node3.nic1.tx", "node0.gpu2.tx", "group4.global.out", "group4.leaf2.up" */
char *net_link_name(const NetTopo *t, uint32_t link);
const char *net_link_kind_name(NetLinkKind kind);

/* Link loads of collectives and send/recv, accumulated over all instances of a group family. */
typedef struct NetLoadBuilder NetLoadBuilder;
NetLoadBuilder *net_builder_new(const NetTopo *t);
void net_builder_free(NetLoadBuilder *b);
/* Ring over `members` (ranks in ring order; NCCL orders them by node): every rank sends
 * `bytes_per_rank` to its successor, through NVLink inside a node and spread over the NICs that
 * the members of a node use where the ring crosses to the next node. */
void net_builder_ring(NetLoadBuilder *b, const int *members, int n, double bytes_per_rank);
/* NCCL's tree allreduce: a chain inside each node, a binary tree across nodes; each edge carries
 * `bytes` each way. */
void net_builder_tree(NetLoadBuilder *b, const int *members, int n, double bytes);
/* All-to-all: every rank sends bytes_per_pair to every other member. */
void net_builder_alltoall(NetLoadBuilder *b, const int *members, int n, double bytes_per_pair);
void net_builder_p2p(NetLoadBuilder *b, int from, int to, double bytes);
/* Takes the accumulated loads (sorted by link) and resets the builder. */
NetLoad *net_builder_take(NetLoadBuilder *b, int *n_loads);

/* Seconds a load takes alone: max over links of bytes / capacity. */
double net_load_time_s(const NetTopo *t, const NetLoad *loads, int n);

/* Per-link statistics over a run. */
typedef struct {
    double bytes;     /* carried */
    int64_t busy_ns;  /* time with any load */
    double peak_util; /* highest fraction of capacity in use */
} NetLinkStats;

/* A sample of the highest link utilisation of each kind, at a time: the trace's counters. */
typedef struct {
    int64_t time_ns;
    float util[NET_LINK_KIND_COUNT];
} NetUtilSample;

/* The flow-level model: transfers in progress and their max-min fair rates. It keeps one state
 * per class of links that every registered pattern loads alike (see flow.c): the cost of a
 * reschedule grows with the distinct links of the active transfers, not with the GPUs. */
typedef struct NetFlows NetFlows;
NetFlows *net_flows_new(const NetTopo *t);
/* The same model with one class per link: slower, identical results; for the tests. */
NetFlows *net_flows_new_per_link(const NetTopo *t);
void net_flows_free(NetFlows *f);
/* Registers the loads per unit of scale of a kind of transfer (sorted by link, each link once, as
 * net_builder_take gives them; copied) and returns its id for net_flows_add. */
int net_flows_pattern(NetFlows *f, const NetLoad *loads, int n_loads);
/* Starts a transfer at `now` (ns) that puts the pattern's bytes * scale on each of its links.
 * Returns its id, valid until net_flows_complete returns it (then reused). */
int net_flows_add(NetFlows *f, int64_t now, int pattern, double scale);
/* Moves the model's clock to `now` (each transfer's progress at its rate is brought up to date
 * when its rate changes or it ends). Then, if transfers started or ended, call
 * net_flows_reschedule. */
void net_flows_advance(NetFlows *f, int64_t now);
/* Recomputes the rates of the transfers that share a link class, directly or through others,
 * with one that started or ended since the last call (the others' rates cannot change); returns
 * the earliest completion time (ns) of a transfer in progress, or -1 when none is. */
int64_t net_flows_reschedule(NetFlows *f);
/* Ids of the transfers whose completion time is `now`, removed from the model (call after
 * advance; then reschedule). Returns how many were written to ids (at most max). */
int net_flows_complete(NetFlows *f, int64_t now, int *ids, int max);
int net_flows_active(const NetFlows *f);
/* Transfer `id` never moves more than max_rate of its load per second, however idle its links
 * (a per-transfer demand, as SimGrid's variable bounds): what a communicator's channels carry at
 * most where each channel is capped (topology node.net_channel_GBps). Call after net_flows_add,
 * before the reschedule. */
void net_flows_cap(NetFlows *f, int id, double max_rate);
/* true: every reschedule re-solves all active transfers together (the reference the incremental
 * solver is tested against; rates differ only in the last bits where several components are
 * active at once). */
void net_flows_set_full(NetFlows *f, bool full);
/* Tests: the reference computation, which the shortcuts must match to the bit (every component
 * by the general rounds of progressive filling, finishes by passes over the active transfers, a
 * utilisation sample at every reschedule). */
void net_flows_set_reference(NetFlows *f, bool reference);
/* A transfer's current rate: the fraction of its load it moves per second (0 once it ended). */
double net_flows_rate(const NetFlows *f, int id);
/* Classes of links the model distinguishes (the links, for net_flows_new_per_link). */
int net_flows_link_classes(const NetFlows *f);
/* A link's statistics (shared by its class: valid until the next net_flows_pattern). Its bytes
 * lack what transfers still in flight moved since their rates last changed: read them when none
 * is. */
const NetLinkStats *net_flows_stats(const NetFlows *f, uint32_t link);
/* Class `c` (0 <= c < net_flows_link_classes): the lowest id of its links, how many links it has,
 * and their common statistics. O(1): reports walk the classes, not the links. */
const NetLinkStats *net_flows_class_stats(const NetFlows *f, int c, uint32_t *first_link,
                                          int *n_links);
const NetUtilSample *net_flows_samples(const NetFlows *f, int *n);

/* For the engine's steady state (src/core/sim_steady.c). net_flows_mark starts a period: from
 * here the model logs what it adds to link statistics (in order, so a replay adds the same
 * doubles in the same order) and remembers its samples so far. net_flows_snapshot appends the
 * state its future depends on, with times relative to `origin_ns` (transfers in flight, their
 * order, ids free for reuse, the classes' users and utilisation, the last sample).
 * net_flows_can_skip: the period left the samples before it alone. net_flows_skip advances by
 * `periods` repeats of the period since the mark: statistics added again, samples again
 * `period_ns` later each time, times of transfers in flight moved. */
void net_flows_mark(NetFlows *f);
/* Stops the log net_flows_mark started (no skip to come). */
void net_flows_unmark(NetFlows *f);
/* The transfers in flight, in start order. */
const int *net_flows_active_ids(const NetFlows *f, int *n);
/* With `fields` (a GArray of NetSnapField, or NULL): where each field starts, to name the first
 * difference between two snapshots (FSDPSIM_STEADY_DEBUG, sim_steady.c). */
typedef struct {
    guint offset;      /* in the snapshot's bytes */
    const char *field; /* a static name */
    int owner;         /* the class (engine) or transfer in start order (flows); -1: none */
    int64_t index;     /* the op, user or entry; -1: none */
} NetSnapField;
/* Names the field about to be written to the snapshot `out`, when `fields` is not NULL. */
#define NET_SNAP_FIELD(fields, out, name, owner, index)                                        \
    do {                                                                                       \
        if (fields) {                                                                          \
            NetSnapField fl_ = {(out)->len, name, owner, index};                               \
            g_array_append_val(fields, fl_);                                                   \
        }                                                                                      \
    } while (0)
void net_flows_snapshot(const NetFlows *f, int64_t origin_ns, GByteArray *out, GArray *fields);
bool net_flows_can_skip(const NetFlows *f);
void net_flows_skip(NetFlows *f, int64_t periods, int64_t period_ns);
/* net_repeat.c: `periods` times, *slot[i] += value[i] for i in 0..n in order, to the bit as that
 * loop would, in O(n log n + n x binades the sums cross) (a steady-state skip's sums). */
void net_repeat_adds(double *const *slot, const double *value, int n, int64_t periods);

#endif
