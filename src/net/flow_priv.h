/* flow: the flow model's state, shared by flow.c (classes, patterns, transfers), flow_fill.c
 * (the reschedule: progressive filling), flow_read.c (what the engine reads) and flow_steady.c
 * (what the engine's steady-state skip needs from it). Internal to src/net. */
#ifndef FSD_FLOW_PRIV_H
#define FSD_FLOW_PRIV_H

#include "net.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>

/* A transfer's load on one class: its pattern's entry times the transfer's scale. */
typedef struct {
    uint32_t link; /* a class */
    double bytes;  /* pattern bytes * scale */
    double share;  /* bytes / peak: what progressive filling adds to the class per round */
} FlowLoad;

typedef struct {
    GArray *entries; /* of NetLoad: .link is a class, .bytes what each of its links carries */
} FlowPattern;

/* Arrays the flow model appends to at every event: pushed inline (g_array_append_val was a call
 * of ~70 instructions, 8 % of the 1T SP interleaved pipeline's simulation). */
typedef struct {
    int *v;
    int n, max;
} FlowIds;

typedef struct {
    uint32_t *v;
    int n, max;
} FlowClasses;

void flow_vec_grow(void **v, int *max, size_t size);

static inline void flow_ids_push(FlowIds *a, int x)
{
    if (a->n == a->max)
        flow_vec_grow((void **)&a->v, &a->max, sizeof *a->v);
    a->v[a->n++] = x;
}

static inline void flow_classes_push(FlowClasses *a, uint32_t x)
{
    if (a->n == a->max)
        flow_vec_grow((void **)&a->v, &a->max, sizeof *a->v);
    a->v[a->n++] = x;
}

typedef struct {
    int pattern;
    double scale;     /* bytes on each link = entry bytes * scale */
    double peak;      /* bytes on its most loaded link: fairness is in bytes per second there */
    double remaining; /* fraction of the load still to move at `since`, 1 at the start */
    double rate;      /* fraction per second */
    int64_t since;    /* when remaining was brought up to date (flow.c integrate) */
    double max_rate;  /* fraction per second it cannot exceed (net_flows_cap); INFINITY: none */
    int64_t finish_ns;
    bool frozen;
    uint32_t stamp; /* scratch of reschedule: in the component being solved */
    bool fresh;     /* started since the last reschedule: not in NetFlows.next_ns yet */
    uint64_t seq;   /* start order: the component is solved in it */
    /* its pattern's entries with bytes * scale, rounded as every use rounds them (the product
     * first): read for every transfer in flight at every event, a multiplication fewer per
     * entry (net_flows_pattern refreshes them when classes split). The record's own buffer,
     * kept when the record is reused. */
    FlowLoad *load;
    int n_entries, max_load;
} Transfer;

/* Links loaded alike by every pattern so far, and their (common) state. */
typedef struct {
    int size;            /* links */
    uint32_t first_link; /* the lowest id among them: the class's name in reports */
    double capacity_Bps;
    NetLinkKind kind;
    NetLinkStats stats;
    double sum;      /* sum of unfrozen loads (scratch of reschedule) */
    double residual; /* capacity left (scratch of reschedule) */
    double util;     /* current utilisation */
    bool listed;     /* in busy (at busy_pos): n_users > 0 */
    int busy_pos;
    /* while listed, stats.busy_ns lacks the time since busy_since (flow_busy_flush): adding
     * each event's step to every busy class was a fifth of the per-event progress pass */
    int64_t busy_since;
    int *users; /* active transfers loading it (ids, any order) */
    int n_users, max_users;
    /* scratch of refine */
    uint32_t stamp;
    bool mixed;
    int count, split_to, parent, child_head, child_next;
    double first;
} LinkClass;

struct NetFlows {
    const NetTopo *t;
    uint32_t *class_of; /* per link */
    LinkClass *cls;
    int n_classes, max_classes;
    /* each class's stats.bytes, kept here (copied into stats when read): each transfer adds
     * to them at the end of each of its rate segments (flow.c integrate), and the classes of a
     * 1T pipeline (288, of 200 bytes) outgrow the L1 cache where their bytes (2 KB) do not */
    double *bytes;
    uint32_t *busy; /* classes with load now */
    /* beside busy, each one's kind and utilisation: what sample() reads at every reschedule,
     * in 5 bytes instead of a LinkClass's cache line */
    uint8_t *busy_kind;
    float *busy_util;
    int n_busy;
    /* per kind, the highest busy utilisation (0 if none is higher) and how many busy classes
     * have it, kept as utilisations change so that sample() need not walk the busy list; a
     * kind whose highest class dropped, or that has a negative zero or NaN, is recomputed */
    float kind_max[NET_LINK_KIND_COUNT];
    int kind_at_max[NET_LINK_KIND_COUNT];
    int kind_odd[NET_LINK_KIND_COUNT]; /* busy utilisations with the sign bit set or NaN */
    bool kind_stale[NET_LINK_KIND_COUNT];
    /* the sums of kind_odd and of kind_stale, so that sample() tells whether to walk the list in
     * two loads rather than a loop over the kinds (7 % of a pipeline's reschedule) */
    int n_odd, n_stale;
    /* a busy utilisation changed since the last sample(): if none did, sample() would compute
     * the sample it last kept and keep nothing (rare in a pipeline, where every start and end
     * lists or unlists classes: a test, not a saving there) */
    bool utils_moved;
    uint32_t *touched; /* scratch of refine */
    uint32_t epoch;
    GArray *patterns;  /* of FlowPattern */
    GArray *transfers; /* of Transfer, by id */
    Transfer *tr;      /* transfers->data: one load fewer per transfer visited */
    FlowIds active;    /* ids in progress, in start order */
    /* the earliest finish of the active transfers but the fresh ones (INT64_MAX: none), kept
     * across reschedules (flow_fill.c): a pass over the active ones for the next event only
     * where a transfer that held it was re-solved (net_flows_complete's pass sets it) */
    int64_t next_ns;
    FlowIds fresh;     /* ids started since the last reschedule (some may have ended) */
    FlowIds free_ids;  /* ids of ended transfers, reused by net_flows_add */
    FlowClasses dirty; /* classes whose transfers changed since the last reschedule */
    FlowClasses queue; /* scratch of reschedule, the component's classes */
    FlowIds comp;      /* scratch of reschedule, the component's transfers */
    uint64_t seq;      /* transfers started */
    /* net_flows_complete found no transfer due at none_due_at, and no finish changed since:
     * the engine calls it until it returns 0, so every event's last call is answered in O(1) */
    bool none_due;
    int64_t none_due_at;
    bool full; /* re-solve all active transfers every time (net_flows_set_full) */
    /* the reference computation (net_flows_set_reference): no one-transfer shortcut, the next
     * finish by a pass over the active transfers, a sample computed at every reschedule */
    bool reference;
    bool any_cap; /* net_flows_cap was ever called: reschedule looks at transfers' caps */
    int64_t now;
    GArray *samples; /* of NetUtilSample */
    /* steady state (net_flows_mark): additions to link bytes since the mark, busy time and
     * samples at the mark; log NULL until the first mark */
    GArray *log; /* of StatAdd */
    int64_t *mark_busy_ns;
    int mark_classes;
    guint mark_samples;
    NetUtilSample mark_last;
};

/* A busy utilisation of `kind` appears / disappears: the kind's maximum follows (kind_max). O(1);
 * a kind whose every class at the maximum left is marked stale, for sample() to recompute. */
static inline bool flow_util_odd(float util)
{
    uint32_t bits;
    memcpy(&bits, &util, sizeof bits);
    return (bits >> 31) != 0 || (bits & 0x7fffffffu) > 0x7f800000u; /* sign bit, NaN */
}

static inline void flow_util_enter(NetFlows *f, int kind, float util)
{
    f->utils_moved = true;
    if (flow_util_odd(util)) {
        f->kind_odd[kind]++; /* the MAX fold's result depends on order: sample() walks the list */
        f->n_odd++;
        return;
    }
    if (f->kind_stale[kind])
        return;
    if (util > f->kind_max[kind]) {
        f->kind_max[kind] = util;
        f->kind_at_max[kind] = 1;
    } else if (util == f->kind_max[kind]) {
        f->kind_at_max[kind]++;
    }
}

static inline void flow_util_leave(NetFlows *f, int kind, float util)
{
    f->utils_moved = true;
    if (flow_util_odd(util)) {
        f->kind_odd[kind]--;
        f->n_odd--;
        return;
    }
    if (!f->kind_stale[kind] && util == f->kind_max[kind] && util > 0 &&
        --f->kind_at_max[kind] == 0) {
        f->kind_stale[kind] = true;
        f->n_stale++;
    }
}

/* A class's busy time brought up to `now` (integers: the same sum as adding every step). */
static inline void flow_busy_flush(LinkClass *lc, int64_t now)
{
    if (lc->listed) {
        lc->stats.busy_ns += now - lc->busy_since;
        lc->busy_since = now;
    }
}

/* One transfer's progress over one of its rate segments while logging (flow.c integrate): its
 * pattern's classes each got
 * entry bytes * scale * step, in entry order. A record per transfer, not per class it loads:
 * the 1T SP interleaved pipeline's logged period made 8.9 M per-class records (142 MB). */
typedef struct {
    int pattern;
    int n_entries; /* the pattern's at the time (entries change only when a class splits) */
    double scale, step;
} StatAdd;

/* flow.c */
void flow_integrate(NetFlows *f, Transfer *t);

#endif
