/* fsdp: the FSDP generator's state, shared by fsdp.c (the walk) and fsdp_units.c (FSDP2's padding,
 * expert parallelism, FSDP1's gradient preparation). Internal to src/strategy. */
#ifndef FSD_FSDP_PRIV_H
#define FSD_FSDP_PRIV_H

#include "gen.h"

typedef struct {
    int ag_op; /* the all-gather (or cast) that made the params available, -1 if none yet */
    bool unsharded;
    int last_use;          /* last compute op reading the unsharded params */
    bool grad_live;        /* unsharded gradient allocated in this backward */
    int last_bwd;          /* last backward compute op of the unit */
    bool grad_shard_live;  /* persistent sharded gradient allocated */
    int generation;        /* lifetimes of the unsharded parameters: each gets its own buffer, since
                            * the host may allocate the next before the GPU passed the last free */
    bool copy_out_pending; /* FSDP2: all-gathered, not yet copied out to the parameters */
    bool post_forward;     /* FSDP2 reshard_after_forward=int: held sharded over the small group */
    bool prefetched;       /* FSDP1's handle._prefetched: unsharded by a prefetch, not resharded
                            * since; its own pre-forward or pre-backward skips _unshard() */
    bool needs_bwd_unshard; /* handle._needs_pre_backward_unshard: forward ran, backward not yet;
                             * only such a unit is a backward prefetch's target */
} UnitState;

/* FSDP2's deferred free: a buffer kept until the next one of its kind replaces it (the
 * AllGatherState and ReduceScatterState of _fsdp_param_group.py), then freed from the host, its
 * block reusable in stream order (held_replace in fsdp.c). */
typedef struct {
    char *name; /* the buffer held, NULL for none */
    double bytes;
    IrMemCategory cat;
} FsdpHeld;

typedef struct {
    PlanWrap *wrap;
    UnitState *units;
    int *post_forward_order, n_post; /* ... and their post-forward */
    int shard_group, replicate_group;
    int nccl_shard, nccl_replicate, h2d, d2h;
    GQueue free_events; /* rate limiter: free ops of resharded units */
    GArray *reduce_ops; /* reduce ops of this step, waited on at the end */
    int pbytes, rbytes;
    double *trainable; /* per unit: parameters that require grad */
    bool sharded;      /* not NO_SHARD */
    bool hybrid;
    bool v2;           /* FSDP2 */
    int raf;           /* FSDP2: 0 keep, else ranks to reshard to after forward */
    int raf_group;     /* FSDP2 with raf < shard size: the post-forward group */
    int last_copy_out; /* FSDP2: the latest copy-out op, -1 before the first */
    FsdpHeld ag_out;   /* ... and the all-gather output it read (AllGatherState) */
    FsdpHeld ag_in;    /* FSDP2: the input of the last all-gather */
    FsdpHeld offload;  /* FSDP2 with CPU offload: the last shard copied in */
    FsdpHeld rs_in;    /* FSDP2: the last reduce-scatter input (ReduceScatterState) */
    int last_rs;       /* FSDP2: ... and that reduce-scatter, -1 before the first */
    /* expert parallelism: ep > 1 */
    int ep, ep_group, expert_group;
    double *expert_numel; /* per unit: parameters of its routed experts (all of them) */
    bool *expert_list;    /* per module: a routed-experts ModuleList */
    int ep_dep;           /* the last all-to-all, for the compute after it; -1 none */
    bool in_experts;      /* walking a routed-experts ModuleList */
} Fsdp;

/* FSDP2: a module's parameters padded per parameter on dim 0 to a multiple of `shard`. */
double fsdp2_padded(const Model *model, const ModelModule *m, int shard);
/* Expert parallelism: the unit's parameters one GPU gathers (all but the experts, 1/ep of
 * those); one all-gather or reduce-scatter of the unit over its groups; a MoE layer's dispatch
 * or combine all-to-all. */
double fsdp_local_numel(Fsdp *f, int u);
int fsdp_unit_coll(Gen *g, Fsdp *f, int u, IrCollKind kind, double bytes_per_param, HwDtype dtype,
                   IrPhase phase, const char *name, const int *deps, int n_deps);
int fsdp_all_to_all(Gen *g, Fsdp *f, IrPhase phase, const char *what, int module);
/* FSDP1's post-backward work on a unit's unsharded gradient before its reduce-scatter (cast to
 * reduce_dtype, predivide) and on the shard after it (postdivide). Return the last op. */
int fsdp_grad_prepare(Gen *g, Fsdp *f, int u, double padded, int dep, const char *uname);
int fsdp_grad_postdivide(Gen *g, Fsdp *f, double shard, int dep, const char *uname);
/* DeepSpeed's optimizer offload (fsdp_offload.c): unit u's reduced gradient shard of `shard`
 * elements copied to the host after op `dep`; after the op `grads_done`, the CPU step over
 * `numel` elements and the updated shard copied back. Return the last op. */
int fsdp_offload_grad(Gen *g, Fsdp *f, int u, double shard, int dep, const char *uname);
int fsdp_offload_step(Gen *g, Fsdp *f, double numel, int grads_done);

#endif
