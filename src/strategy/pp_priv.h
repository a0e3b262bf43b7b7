/* pp_priv: the pipeline generator's state (pp.c) and its model costs (pp_cost.c). Internal to
 * src/strategy. */
#ifndef FSD_PP_PRIV_H
#define FSD_PP_PRIV_H

#include "gen.h"

typedef struct {
    double flops, bwd_flops, bytes, saved, input, params;
    int kernels;
    /* selective recomputation (a layer not checkpointed whole): the attention cores' forward
     * again in backward; the bytes they no longer keep (dropped, already out of `saved`) and the
     * most of them live again at once (saved: one core at a time); else 0 */
    double recompute_flops, recompute_bytes, recompute_saved, recompute_dropped;
    int recompute_kernels;
    GArray *fwd_k, *bwd_k; /* IrKernel: one micro-batch's kernels, one TP rank's share */
    /* pp_seconds' memo by [backward][half]: the list in class `cls` and its seconds (a 1T
     * pipeline adds millions of compute ops; costing and interning each list again made
     * generating it 4 times slower) */
    const IrClass *memo_cls[2][2];
    uint32_t memo_first[2][2];
    double memo_s[2][2];
} PpCost; /* per sample (params: per rank), after TP scaling; fwd_k and bwd_k per micro-batch */

typedef struct {
    Gen g;
    int P, v, m, T, D, S; /* S: FSDP shard group size */
    int m_gen;            /* micro-batches in the programs: m, or fewer (compact, src/compact) */
    int *pair_ops;        /* per class: StratInfo.class_pair_ops */
    int n_layers;
    PpCost pre, post, *layer;
    int *vs_first;        /* first layer of each virtual stage, P * v + 1 entries */
    int tp_group, dp_group, rep_group;
    int send_next, recv_prev, send_prev, recv_next, nccl, emb_send, emb_recv;
    double act_bytes_scale; /* model's activation dtype -> this run's */
    double tp_bytes;      /* s*b*h activations of one micro-batch (full, before any TP split) */
    double boundary_bytes;/* activation sent between stages per micro-batch */
    /* scatter-gather across a stage boundary (--pp-scatter-gather): each TP rank sends 1/T of
     * it and the receiver all-gathers the whole over its TP group; 0: not (SP's is split) */
    double boundary_gather_bytes;
    double tied_params;   /* word embedding copy on the last stage (per rank) */
    bool fsdp, ckpt, sp, distopt, tp_overlap;
    bool sync_send; /* the compute stream waits for each send (1F1B: see send_waited) */
    int tp_stream; /* --tp-comm-overlap's exchanges */
    int stage;
    /* the stage's parameters and parameter tensors (all its chunks), set with `stage`: a walk
     * over the model's modules each, not to be made per micro-batch (stage_program) */
    double stage_psi, stage_ntensors;
    uint32_t label;       /* the current step, "F3.0 warm-up" (a string of the class): names
                           * its ops in the timeline */
    /* per class, rebuilt for each: */
    uint32_t *layer_suffix; /* per layer x recompute: " layer 5", UINT32_MAX: not interned yet */
    uint32_t tp_prefix[IR_COLL_KIND_COUNT + 1]; /* per kind: "tp allreduce "; the last: the
                                                 * backward's regather (see pp.c tp_name) */
    int *gather_op;       /* per layer: FSDP all-gather, -1 none */
    int *bwd_count;       /* per chunk: backwards done */
    int *last_bwd;        /* per layer: last backward compute op */
    /* the last compute op of the latest forward and backward step (-1: none yet): where
     * Megatron's interleaved schedule posts the next step's receive (see recv_dep) */
    int last_fwd_compute, last_bwd_compute;
    int last_bwd_send;    /* the latest activation gradient sent back (-1: none yet) */
    GArray *dp_ops;       /* ops the optimizer waits for */
} Pp;

/* Splits the model into pre (embedding), decoder layers, post (final norm, head, loss), with
 * each part's kernels per micro-batch. False with an input error for a model without blocks. */
bool pp_model_costs(Pp *pp, GError **error);
/* pp->vs_first: the first layer of each virtual stage (--pp-partition or an even split) */
bool pp_partition(Pp *pp, GError **error);
/* Device time of `share` (1 or 0.5) of a part's forward or backward for one micro-batch; its
 * kernel list is left pending for the compute op that runs it (gen_compute_timed). */
double pp_seconds(Pp *pp, PpCost *c, bool backward, double share);
/* pp_layer.c: a compute op on the stage's compute stream; one TP exchange of a layer's
 * activations (an all-reduce, or with sequence parallelism a reduce-scatter, `scatter`, or an
 * all-gather; `dep` when t = 1); a layer's forward (or its recompute) and backward, and the
 * output layer's backward, each after `dep`: the last op. */
int pp_compute(Pp *pp, IrPhase phase, double flops, double bytes, double model_flops, int kernels,
               double seconds, uint32_t name, const int *deps, int n_deps);
int pp_tp_comm(Pp *pp, IrPhase phase, bool scatter, uint32_t what, int dep);
int pp_layer_forward(Pp *pp, int layer, IrPhase phase, bool recompute, int dep);
int pp_layer_backward(Pp *pp, int layer, int dep);
int pp_head_backward(Pp *pp, uint32_t name);
/* DeepSpeed's engine accumulating a micro-batch's gradients (`params` in `tensors` tensors on
 * this rank; `first`: the step's first backward of the chunk): the op after `dep`, or `dep`. */
int pp_deepspeed_grads(Pp *pp, double params, double tensors, bool first, uint32_t name, int dep);
void pp_costs_free(Pp *pp); /* the parts and the generator's pending kernels */

/* Op names (pp_names.c): composed with ir_string_join from strings each class interns once. */
/* " layer 5" or " recompute layer 5" */
uint32_t pp_layer_suffix(Pp *pp, int layer, bool recompute);
/* "tp allreduce " + what (kind IR_COLL_KIND_COUNT: "tp allgather (input again) " + what) */
uint32_t pp_tp_name(Pp *pp, IrCollKind kind, uint32_t what);
/* Step labels and buffer names without printf, into 64-byte buffers: text at `at` (returns
 * its end), and "<prefix><first><separator><second>" */
char *pp_put_text(char *at, const char *text);
void pp_two_ints(char *text, const char *prefix, int first, const char *separator, int second);

#endif
