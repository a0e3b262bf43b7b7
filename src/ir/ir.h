/* ir: the schedule, fsdpsim's one description of what every rank does in a training step.
 *
 * A program is the list of ops in the order the HOST ISSUES them (the Python thread launching
 * kernels). Each op runs on a named stream; a stream executes its ops in issue order, and an op
 * also waits for its explicit dependencies. Ops on GPU streams cannot start before the host has
 * issued them: each implicitly depends on the last host op before it. This is what makes CPU
 * run-ahead, prefetching and the FSDP rate limiter behave as they do in PyTorch: they are
 * properties of the generated program, not of the engine.
 *
 * Collectives on one process group share that group's NCCL stream, so they serialise in issue
 * order, as ProcessGroupNCCL does.
 *
 * Memory follows PyTorch's caching allocator: ALLOC is on the host stream (memory is handed out
 * when the host asks). A tensor that lives on one stream is freed on the host stream too, when the
 * host drops it: stream order makes the block safe to reuse at once. A tensor used on another
 * stream (record_stream: FSDP's unsharded parameters, the unsharded gradient) is freed on the
 * stream of its last use, with a dependency on that use: the block is reusable once that stream
 * has passed it.
 *
 * Ranks whose programs are identical up to renaming form one rank class and are stored once. */
#ifndef FSD_IR_H
#define FSD_IR_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define IR_FORMAT "fsdpsim-schedule"
/* 2: compute ops carry "seconds", the kernel model's device time (absent in version 1, whose
 * files are still read: their compute is charged at the best-shape rates).
 * 3: compute ops also carry what their kernels are (class and shape, IrKernel), so that the
 * simulator costs, and fsdprun-nccl runs, the same kernels; versions 1 and 2 are still read.
 * 4: collectives may say the SMs their kernels hold ("sms": Transformer Engine's userbuffers for
 * --tp-comm-overlap); in versions 1-3 every collective holds NCCL's channels.
 * 5: kernel lists may hold convolutions ("class": "conv"), which versions 3-4 ran as GEMMs.
 * 6: a gemm may say "misaligned": true (an operand's contiguous dimension off 16 bytes, kern.h),
 * which versions 3-5 ran at the aligned rate. */
#define IR_VERSION 6

typedef enum {
    IR_OP_HOST,    /* host-side work (Python, kernel launches) or a host wait on its deps */
    IR_OP_COMPUTE, /* GPU kernels */
    IR_OP_COLL,    /* a collective on a process group */
    IR_OP_SEND,    /* point-to-point to rank + peer_offset */
    IR_OP_RECV,
    IR_OP_ALLOC,
    IR_OP_FREE,
    IR_OP_MEMCPY, /* host <-> device copy over PCIe (CPU offload) */
    IR_OP_KIND_COUNT
} IrOpKind;

typedef enum {
    IR_COLL_ALLGATHER,
    IR_COLL_REDUCE_SCATTER,
    IR_COLL_ALLREDUCE,
    IR_COLL_BROADCAST,
    IR_COLL_ALLTOALL,
    IR_COLL_KIND_COUNT
} IrCollKind;

typedef enum {
    IR_MEM_PARAMS,
    IR_MEM_GRADS,
    IR_MEM_OPTIMIZER,
    IR_MEM_ACTIVATIONS,
    IR_MEM_COMM,
    IR_MEM_CATEGORY_COUNT
} IrMemCategory;

typedef enum {
    IR_PHASE_FORWARD,
    IR_PHASE_BACKWARD,
    IR_PHASE_OPTIMIZER,
    IR_PHASE_OTHER,
    IR_PHASE_COUNT
} IrPhase;

/* A kernel as the schedule carries it: what it is, not what it costs. The IR's own record (the
 * kernel cost model, src/kern, sits above the IR and converts: kern_to_ir, kern_from_ir). */
typedef enum {
    IR_KERN_GEMM,      /* shape: m, n, k, batch (batch x [m x k] . [k x n]) */
    IR_KERN_ATTENTION, /* fused (flash): batch x heads, sequence, head dim, window (0: none) */
    IR_KERN_MEMORY,    /* memory-bound: bytes, kernels they are spread over */
    IR_KERN_FLOPS,     /* tensor-core work of no known shape: FLOPs (best-shape rate) */
    IR_KERN_CONV,      /* convolution (implicit GEMM): m, n, k, the HBM bytes of its tensors */
    IR_KERN_CLASS_COUNT
} IrKernClass;

enum {
    IR_KERN_CAUSAL = 1u << 0,   /* attention: causal mask */
    IR_KERN_BACKWARD = 1u << 1, /* attention: the backward pass */
    IR_KERN_TRITON = 1u << 2,   /* attention: FlashAttention's Triton kernel, not FA2's CUDA one */
    IR_KERN_FLASH1 = 1u << 3,   /* attention: FlashAttention v1's CUDA kernels */
    IR_KERN_MISALIGNED = 1u << 4, /* gemm: an operand's contiguous dimension is not a multiple
                                   * of 16 bytes (kern.h KernShape.misaligned) */
    IR_KERN_LAST = 1u << 15,    /* the last record of an op's list */
};

/* 48 bytes, no implicit padding (lists are interned by their bytes). */
typedef struct {
    uint8_t cls;    /* IrKernClass */
    uint8_t dtype;  /* HwDtype */
    uint16_t flags; /* IR_KERN_* */
    uint32_t reserved; /* 0 */
    double shape[4];
    /* how much of the kernel the op runs: 3 for three launches of one shape (eager attention's
     * backward), 0.5 for half (a layer split in two around tensor-parallel exchanges) */
    double share;
} IrKernel;

/* Most deps an op may have (n_deps is a 24-bit field; the reader says so past it). */
#define IR_MAX_DEPS ((1u << 24) - 1)

/* A compute op's payload: what its kernels do and what they cost. Ops of equal payloads share
 * one record (IrClass.computes, ir_compute_add): a pipeline repeats each layer's for every
 * micro-batch, so a stage of the 1T model holds a few dozen for 180,000 compute ops, each op
 * keeping a 4-byte id where it held these 40 bytes. */
typedef struct {
    double flops;       /* tensor-core FLOPs */
    double bytes;       /* HBM traffic of memory-bound kernels */
    double model_flops; /* FLOPs that count towards MFU (no recompute) */
    double seconds;     /* device time from the kernel model (src/kern) for the GPU the
                         * schedule was made for; 0: flops and bytes at the best-shape
                         * rates (schedule version 1, copies, optimizer) */
    uint32_t kernels;   /* kernel launches (host launch cost) */
    uint32_t kern_first; /* 1 + index into IrClass.kernels of the op's first kernel
                          * record (its list runs to the one flagged IR_KERN_LAST);
                          * 0: none (versions 1-2, copies, hand-made ops). Lists are
                          * interned, so ops of equal lists share one. */
} IrCompute;

/* 32 bytes (was 56): a pipeline holds one per op of every stage (12 M for 1T at 4096
 * micro-batches), so the header packs kind and n_deps into bit-fields beside the byte fields
 * (16 bytes), and the payloads fit in 16: a compute op's is an id (IrCompute), the others are
 * ordered so that their 64-bit sizes need no padding. */
typedef struct {
    IrOpKind kind : 8;
    uint8_t phase;   /* IrPhase */
    uint16_t stream;
    uint8_t dtype;   /* HwDtype of compute or collective elements */
    uint32_t n_deps : 24; /* <= IR_MAX_DEPS */
    uint32_t name;      /* string index (ir_class_string): plain or joined */
    uint32_t dep_start; /* into IrClass.deps */
    union {
        struct {
            uint32_t payload; /* into IrClass.computes (ir_compute_add; ir_op_compute reads) */
        } compute;
        struct {
            double seconds;
        } host;
        struct {
            uint8_t coll;   /* IrCollKind */
            /* SMs its kernels hold while they run (what concurrent compute loses): 0 = NCCL's,
             * the topology's channels, one CTA each; Transformer Engine's userbuffers set
             * their own (1 for a copy-engine ring exchange, 16 for its pipelined and bulk
             * kernels). In the byte the alignment of `group` left free. */
            uint8_t sms;
            uint16_t group; /* index into IrSchedule.groups */
            uint64_t bytes; /* nccl-tests' "size": the full array (gathered / unreduced) */
        } coll;
        struct {
            int32_t peer_offset; /* peer rank = own rank + offset */
            uint32_t tag;
            uint64_t bytes;
        } p2p;
        struct {
            uint64_t bytes;
            bool to_device; /* h2d when true, d2h otherwise */
        } memcpy;
        struct {
            uint32_t buffer;  /* string table index of the buffer's name */
            uint8_t category; /* IrMemCategory */
            uint64_t bytes;
        } mem;
    } u;
} IrOp;

typedef struct {
    char *name;
    bool host;
} IrStream;

/* A family of process groups that partitions the ranks: the group of rank r has `size` members
 * spaced `stride` apart, e.g. size 4 stride 1 = the GPUs of a node; size 8 stride 4 = one GPU
 * per node across 8 nodes (HYBRID_SHARD's replicate groups). */
typedef struct {
    char *name;
    int size;
    int stride;
} IrGroup;

typedef struct {
    int first_rank, n_ranks, rank_stride; /* the ranks of this class */
    IrStream *streams;
    int n_streams;
    /* The ops (n_ops of them, room for cap_ops) and their dependencies (op indices, always
     * earlier ops: programs are acyclic). Plain arrays that double, not GArray, whose set_size
     * and append are a call, checks and a maybe_expand per op: 6 % of generating a 1T pipeline.
     * The room past the length is allocated, never written, so never resident. */
    IrOp *ops;
    uint32_t n_ops, cap_ops;
    uint32_t *deps;
    uint32_t n_deps, cap_deps;
    GArray *computes; /* of IrCompute: the compute ops' payloads, each once (ir_compute_add) */
    GArray *kernels; /* of IrKernel: the compute ops' kernel lists, each once (ir_kern.c) */
    GHashTable *kernel_index; /* list bytes -> kern_first while generating; NULL once compact */
    GPtrArray *strings;                /* of const char *, in string_index's storage */
    struct IrStringIndex *string_index; /* string -> index (ir.c) */
} IrClass;

typedef struct {
    int world, nodes, gpus_per_node;
    IrGroup *groups;
    int n_groups;
    IrClass **classes;
    int n_classes;
    /* rank -> the first class holding it, -1 none (ir_class_add fills it): ir_class_of_rank in
     * O(1), once per send/recv in the engine. 4 bytes a rank; NULL until a class is added */
    int32_t *rank_class;
    GHashTable *meta; /* free-form key -> value strings: model, strategy, topology, options */
    int version;      /* the file's schedule version (ir_schedule_read); IR_VERSION when made */
} IrSchedule;

IrSchedule *ir_schedule_new(int nodes, int gpus_per_node);
void ir_schedule_free(IrSchedule *s);
int ir_group_add(IrSchedule *s, const char *name, int size, int stride);
void ir_meta_set(IrSchedule *s, const char *key, const char *value);

IrClass *ir_class_add(IrSchedule *s, int first_rank, int n_ranks, int rank_stride);
/* Room for n_ops ops and n_deps dependencies, for a generator that knows about how many it will
 * add (a pipeline stage: its neighbour's count): GLib grows an array by copying it whole below
 * malloc's mmap threshold (32 MB once large blocks have been freed), 11 % of generating a 1T
 * pipeline. Room never used is never written, so never resident. Only while the class is empty
 * (else no-op). */
void ir_class_reserve(IrClass *c, int n_ops, int n_deps);
int ir_stream_add(IrClass *c, const char *name, bool host);
int ir_stream_find(const IrClass *c, const char *name);
uint32_t ir_string(IrClass *c, const char *text);
/* A string made of two of the class's strings read one after the other (either may itself be
 * joined): an op's name such as "tp allreduce " + ("F12.0 steady" + " layer 3"), kept as its two
 * parts and written out only when ir_class_string reads it (a trace, --emit-schedule, an error).
 * A pipeline's op names are nearly all distinct, and formatting and interning each cost two
 * thirds of generating one (11 M of them for 1T at 4096 micro-batches); a join is 8 bytes and
 * one lookup of the pair. Its index has IR_STRING_JOINED set; the same pair gives the same index,
 * but a joined string and a plain one of equal text have different indices (compare texts). */
#define IR_STRING_JOINED 0x80000000u
uint32_t ir_string_join(IrClass *c, uint32_t first, uint32_t second);
/* The text of a string index, plain or joined. A joined string's text is made on its first read
 * (under a lock: readers may be threads) and kept with the class; O(its length) then, O(1) after. */
const char *ir_class_string(const IrClass *c, uint32_t index);

/* Appends an op (program order = host issue order). deps: n_deps earlier op indices; a negative
 * index is skipped, so optional dependencies can be passed as -1. Returns the op's index. */
int ir_op_add(IrClass *c, const IrOp *op, const char *name, const int *deps, int n_deps);
/* The same with the name as a string index (ir_string, ir_string_join). */
int ir_op_add_named(IrClass *c, const IrOp *op, uint32_t name, const int *deps, int n_deps);
/* Appends an op of `kind` on `stream`, named and with its deps as ir_op_add takes them, zero
 * otherwise, and returns it for the caller to fill in (phase, dtype, payload) before it adds
 * another: the generators' path, which writes each op where it is kept. An op built on the stack
 * and copied in stalls on the copy's load (the stores that built it cannot forward to it): a
 * fifth of generating a pipeline. The pointer is valid until the next op is added. */
IrOp *ir_op_push(IrClass *c, IrOpKind kind, int stream, uint32_t name, const int *deps,
                 int n_deps, int *index);
static inline IrOp *ir_op(const IrClass *c, int index)
{
    return &c->ops[index];
}
static inline int ir_class_n_ops(const IrClass *c)
{
    return (int)c->n_ops;
}
/* NULL for an op without dependencies: in a class of none the array has no data, and NULL + 0
 * is undefined (UBSan, on a schedule file whose ops all have "deps": []). */
static inline const uint32_t *ir_op_deps(const IrClass *c, const IrOp *op)
{
    return op->n_deps ? &c->deps[op->dep_start] : NULL;
}
/* A compute op's payload id for `payload`: an equal one added before is shared (bytes
 * compared: set unused fields to 0). O(1) expected: one hash of the 40 bytes. */
uint32_t ir_compute_add(IrClass *c, const IrCompute *payload);
/* The payload of a compute op. */
static inline const IrCompute *ir_op_compute(const IrClass *c, const IrOp *op)
{
    return &g_array_index(c->computes, IrCompute, op->u.compute.payload);
}

/* Adds an op's kernel list (n records; flags IR_KERN_LAST set on the last here) and returns
 * the op's kern_first; an equal list added before is shared. n = 0 gives 0. O(n) to hash. */
uint32_t ir_kernels_add(IrClass *c, const IrKernel *list, int n);
/* The content hash ir_kernels_add keys lists by (over all bytes of the n records, flags
 * included), for callers that key their own tables by list content. O(n). */
guint ir_kernels_hash(const IrKernel *list, int n);
/* The records of a list (kern_first != 0) and their number. */
const IrKernel *ir_kernels_of(const IrClass *c, uint32_t kern_first, int *n);
const char *ir_kern_class_name(IrKernClass cls);

/* Drops every class's string index (hashes and slots, about 16 bytes per string, and the
 * joins' slots; rebuilt if ir_string or ir_string_join is called again): a finished schedule only reads its strings by index while it is
 * simulated. Generators and the reader call it when they are done. O(classes). */
void ir_schedule_compact(IrSchedule *s);

/* Members of rank's group in a group family (size entries written to members). */
void ir_group_members(const IrSchedule *s, const IrGroup *g, int rank, int *members);
/* How a group of the family lies on the nodes: nodes spanned, ranks per node. */
void ir_group_shape(const IrSchedule *s, const IrGroup *g, int *nodes, int *ranks_per_node);
/* Whether a rank belongs to a class. */
bool ir_class_has_rank(const IrClass *c, int rank);
/* The class that holds a rank (the first, should several), or -1. O(1) for ranks of the world,
 * O(classes) beyond it. */
int ir_class_of_rank(const IrSchedule *s, int rank);
/* The same, for an executor about to run `rank`'s program: -1 sets an input error naming it. */
int ir_class_of_rank_or_error(const IrSchedule *s, int rank, GError **error);

const char *ir_op_kind_name(IrOpKind kind);
const char *ir_coll_kind_name(IrCollKind kind);
const char *ir_mem_category_name(IrMemCategory cat);
const char *ir_phase_name(IrPhase phase);

/* Versioned JSON (--emit-schedule). Writing then reading gives back the same schedule. Streamed
 * op by op to `out` (false: a write failed), as a string (g_free it), or into a file, whole or
 * not at all (cfg_write_streamed). */
bool ir_schedule_write_to(FILE *out, const IrSchedule *s);
char *ir_schedule_to_json(const IrSchedule *s);
bool ir_schedule_write(const IrSchedule *s, const char *file, GError **error);
IrSchedule *ir_schedule_read(const char *file, GError **error);
IrSchedule *ir_schedule_from_text(const char *file, const char *text, GError **error);
/* The checks that need the whole schedule (ir_check.c), run by the reader before it returns: the
 * rank classes partition the ranks (at least one class, none outside the world, none
 * overlapping), every send/recv peer is inside the world. Input errors name `file`. */
bool ir_schedule_check(const IrSchedule *s, const char *file, GError **error);
/* Where schedule a first differs from b (a description to g_free), or NULL when they are the same
 * op for op. O(ops), no allocation until a difference. */
char *ir_schedule_diff(const IrSchedule *a, const IrSchedule *b);
/* Structural equality (for tests). */
bool ir_schedule_equal(const IrSchedule *a, const IrSchedule *b);

#endif
