/* gen: program builder and module-tree walks shared by the generators; see gen.h. */
#include "gen.h"
#include "../kern/kern.h"

#include "../util/cfg.h"

#include <string.h>

void gen_init(Gen *g, const Model *model, const HwTopology *topo, const StratOptions *opt,
              const StratLayout *layout)
{
    memset(g, 0, sizeof *g);
    g->model = model;
    g->topo = topo;
    g->opt = opt;
    g->layout = layout;
    g->sched = ir_schedule_new(layout->nodes, layout->gpus_per_node);
    /* Data parallelism only: every rank runs the same program, one rank class. */
    g->cls = ir_class_add(g->sched, 0, layout->world, 1);
    g->host = ir_stream_add(g->cls, "host", true);
    g->compute = ir_stream_add(g->cls, "compute", false);
    g->mb = model->training.micro_batch;
    g->ckpt_block = -1;
    g->last_compute = -1;
    g->boundary = g_new0(bool, model->n_modules);
    g->checkpointed = g_new0(bool, model->n_modules);
    /* a block's ordinal is the number of blocks before it in pre-order: O(modules), once */
    for (int i = 0, ordinal = 0; i < model->n_modules; i++) {
        if (!model->modules[i].is_block)
            continue;
        g->checkpointed[i] = gen_block_checkpointed(opt, ordinal++);
    }
    /* Under mixed precision the unsharded parameters and activations are in param_dtype. In full
     * precision, convolutions still run on TF32 tensor cores (cuDNN's allow_tf32 defaults to
     * True) while matmuls do not (torch.backends.cuda.matmul.allow_tf32 defaults to False). */
    g->compute_dtype = gen_compute_dtype(model, opt);
    g->act_bytes = opt->mixed_precision ? hw_dtype_bytes(opt->param_dtype) : 4;
    gen_fp8_init(g);
}

HwDtype strat_compute_dtype(const Model *model, const StratOptions *opt)
{
    return gen_compute_dtype(model, opt);
}

HwDtype gen_compute_dtype(const Model *model, const StratOptions *opt)
{
    if (opt->mixed_precision)
        return opt->param_dtype;
    if (opt->allow_tf32)
        return HW_DTYPE_TF32;
    return strcmp(model->model_type, "layers") == 0 ? HW_DTYPE_TF32 : HW_DTYPE_FP32;
}

/* ---- the kernel model's seconds of a list, memoised by content ----
 * A generator builds the same layer's list for every unit, micro-batch and direction it runs
 * again; costing one walks the kernel model for each record (kern_time_s: a GEMM's tile and
 * wave arithmetic and table interpolation, about 0.5 us for a GPT-3 decoder layer's nine
 * records on the development machine), a lookup hashes its bytes (ir_kernels_hash, 60 ns) and
 * compares them once: GPT-3 175B full_shard's generation went from 0.55 to 0.44 ms. A list costs
 * what kern_list_s returns for it, so the memo gives the same seconds bit for bit. */

typedef struct {
    const IrKernel *list; /* the records: a stored entry's own copy, or a probe's */
    int n;
    guint hash;
    double seconds;
} CostEntry;

static guint cost_hash(gconstpointer p)
{
    return ((const CostEntry *)p)->hash;
}

static gboolean cost_equal(gconstpointer a, gconstpointer b)
{
    const CostEntry *x = a, *y = b;
    return x->n == y->n && x->hash == y->hash &&
           memcmp(x->list, y->list, (size_t)x->n * sizeof(IrKernel)) == 0;
}

static double list_s(Gen *g, const IrKernel *list, int n)
{
    if (n <= 0)
        return 0;
    CostEntry probe = {list, n, ir_kernels_hash(list, n), 0};
    if (!g->kern_cost)
        g->kern_cost = g_hash_table_new_full(cost_hash, cost_equal, g_free, NULL);
    const CostEntry *found = g_hash_table_lookup(g->kern_cost, &probe);
    if (found)
        return found->seconds;
    /* one block: the entry, then its copy of the records (CostEntry is a multiple of 8 bytes) */
    CostEntry *entry = g_malloc(sizeof *entry + (size_t)n * sizeof(IrKernel));
    IrKernel *copy = (IrKernel *)(void *)(entry + 1);
    memcpy(copy, list, (size_t)n * sizeof(IrKernel));
    *entry = (CostEntry){copy, n, probe.hash, kern_list_s(&g->topo->gpu, list, n)};
    g_hash_table_add(g->kern_cost, entry);
    return entry->seconds;
}

/* The pending list, about to change: its cost is no longer known. */
static GArray *pending(Gen *g)
{
    g->kern_costed = 0;
    if (!g->kern_pending)
        g->kern_pending = g_array_new(FALSE, FALSE, sizeof(IrKernel));
    return g->kern_pending;
}

void gen_kernels_leaf(Gen *g, GArray *into, int leaf, double samples, double tp_split,
                      bool backward)
{
    KernShape list[KERN_LEAF_MAX];
    const ModelModule *m = &g->model->modules[leaf];
    HwDtype dtype = gen_leaf_dtype(g, leaf);
    int n = kern_leaf_kernels(dtype, m, kern_attention_impl(g->model), samples, tp_split,
                              backward, list);
    kern_leaf_pad_vocab(dtype, g->model, m, tp_split, g->vocab_pad, list, n);
    for (int i = 0; i < n; i++) {
        IrKernel k;
        kern_to_ir(&list[i], &k);
        g_array_append_val(into ? into : pending(g), k);
    }
    gen_fp8_cast_kernels(g, into, leaf, samples, tp_split, backward);
}

void gen_kernels_memory(Gen *g, GArray *into, double bytes, int kernels)
{
    if (bytes <= 0 && kernels <= 0)
        return;
    KernShape shape = {.cls = KERN_MEMORY, .dtype = g->compute_dtype, .bytes = bytes,
                       .kernels = kernels, .share = 1};
    IrKernel k;
    kern_to_ir(&shape, &k);
    g_array_append_val(into ? into : pending(g), k);
}

void gen_kernels_add(Gen *g, const GArray *list, double share)
{
    GArray *p = pending(g);
    for (guint i = 0; i < list->len; i++) {
        IrKernel k = g_array_index(list, IrKernel, i);
        k.share *= share;
        g_array_append_val(p, k);
    }
}

GArray *gen_kernels_take(Gen *g)
{
    GArray *list = pending(g); /* (pending() forgets the cost) */
    g->kern_pending = NULL;
    return list;
}

void gen_kernels_clear(Gen *g)
{
    if (g->kern_pending)
        g_array_free(g->kern_pending, TRUE);
    g->kern_pending = NULL;
    if (g->kern_cost)
        g_hash_table_destroy(g->kern_cost);
    g->kern_cost = NULL;
}

double gen_leaves_s(Gen *g, const int *leaves, int n, double samples, double tp_split,
                    bool backward, double bytes, int kernels)
{
    GArray *p = pending(g);
    guint from = p->len;
    for (int i = 0; i < n; i++)
        gen_kernels_leaf(g, p, leaves[i], samples, tp_split, backward);
    gen_kernels_memory(g, p, bytes, kernels);
    double t = list_s(g, &g_array_index(p, IrKernel, from), (int)(p->len - from));
    if (from == 0) {
        g->kern_costed = p->len;
        g->kern_costed_s = t;
    }
    return t;
}

uint64_t gen_size(Gen *g, const char *name, double bytes)
{
    if (bytes >= 0 && bytes <= GEN_SIZE_MAX)
        return (uint64_t)bytes;
    if (!g->oversize) {
        g->oversize = g_strdup(name ? name : "");
        g->oversize_bytes = bytes;
    }
    return 0;
}

uint64_t gen_size_named(Gen *g, uint32_t name, double bytes)
{
    if (bytes >= 0 && bytes <= GEN_SIZE_MAX)
        return (uint64_t)bytes;
    return gen_size(g, ir_class_string(g->cls, name), bytes);
}

bool gen_sizes_check(Gen *g, GError **error)
{
    if (!g->oversize)
        return true;
    cfg_input_error(error,
                    "%s: the run needs %.3g bytes for \"%s\" on one GPU, beyond the 2^60 "
                    "bytes (1 EiB) fsdpsim takes; expected a smaller model, --seq-len or "
                    "--micro-batch, or more GPUs",
                    g->model->file ? g->model->file : "model", g->oversize_bytes, g->oversize);
    g_free(g->oversize);
    g->oversize = NULL;
    return false;
}

int gen_host(Gen *g, double seconds, const char *name)
{
    return gen_host_named(g, seconds, ir_string(g->cls, name));
}

int gen_host_named(Gen *g, double seconds, uint32_t name)
{
    int i;
    IrOp *op = ir_op_push(g->cls, IR_OP_HOST, g->host, name, NULL, 0, &i);
    op->phase = IR_PHASE_OTHER;
    op->u.host.seconds = seconds;
    return i;
}

int gen_host_wait(Gen *g, int dep, const char *name)
{
    IrOp op = {.kind = IR_OP_HOST, .stream = (uint16_t)g->host, .phase = IR_PHASE_OTHER};
    return ir_op_add(g->cls, &op, name, &dep, 1);
}

/* CUDA_LAUNCH_BLOCKING=1 (--cuda-launch-blocking). The CUDA Programming Guide: "Programmers can
 * globally disable asynchronicity of kernel launches for all CUDA applications running on a
 * system by setting the CUDA_LAUNCH_BLOCKING environment variable to 1" (a debugging aid): the
 * launch returns once the kernel has run. NCCL's collectives and point-to-point operations are
 * kernels too (ncclLaunchKernel, cudaLaunchKernel or cuLaunchKernelEx), so the host waits for
 * them, their wait for the peers included. What the variable leaves asynchronous: copies by the
 * copy engines (cudaMemcpyAsync to or from pinned memory, fsdp.c's CPU-offload copies) and
 * cudaStreamWaitEvent (the empty ops on a stream that only order it: no kernel, no wait here).
 * An op here stands for `kernels` launches one after the other; under the variable each waits
 * for its kernel, so the op's host launches and its device time add up: the launch op before it
 * and one wait after it give that sum, whatever the kernels' split.
 *
 * A pipeline's sends and receives are grouped by the frameworks (Megatron's batch_isend_irecv:
 * one NCCL group, one launch; DeepSpeed orders its blocking sends and receives so that
 * neighbours' match, pipe/schedule.py), not as pp.c issues them (each send after its compute,
 * each receive before its own): the host waits for a send with the next receive it issues, as
 * one group (gen_launch_p2p), or before the next kernel or collective it launches, whichever
 * comes first (a send alone, as Megatron's warm-up send_forward and GPipe's first stage: its
 * NCCL kernel returns once it has run, so the host launches nothing more before). Waiting for
 * each alone deadlocks two stages that send to each other first; waiting for sends before the
 * next kernel deadlocks the interleaved schedule (pp.c: its sends and receives do not block).
 * One host op per GPU op or group; nothing without the option, so its schedules stay those of
 * before. */
static uint32_t sync_name(Gen *g, uint32_t name)
{
    return ir_string_join(g->cls, ir_string(g->cls, "sync "), name);
}

static int launch_wait(Gen *g, int op, uint32_t name)
{
    if (!g->opt->cuda_launch_blocking)
        return -1;
    int i;
    IrOp *wait = ir_op_push(g->cls, IR_OP_HOST, g->host, sync_name(g, name), &op, 1, &i);
    wait->phase = IR_PHASE_OTHER;
    return i;
}

void gen_launch_p2p_flush(Gen *g)
{
    if (g->n_launch_deferred == 0)
        return;
    int last = g->launch_deferred[g->n_launch_deferred - 1], i;
    IrOp *wait = ir_op_push(g->cls, IR_OP_HOST, g->host, sync_name(g, ir_op(g->cls, last)->name),
                            g->launch_deferred, g->n_launch_deferred, &i);
    wait->phase = IR_PHASE_OTHER;
    g->n_launch_deferred = 0;
}

void gen_launch_p2p(Gen *g, int op, bool receive)
{
    if (!g->opt->cuda_launch_blocking)
        return;
    g->launch_deferred[g->n_launch_deferred++] = op;
    if (receive || g->n_launch_deferred == (int)G_N_ELEMENTS(g->launch_deferred))
        gen_launch_p2p_flush(g);
}

int gen_compute(Gen *g, IrPhase phase, double flops, double bytes, double model_flops, int kernels,
                const char *name, const int *deps, int n_deps)
{
    return gen_compute_timed(g, phase, flops, bytes, model_flops, kernels, 0, name, deps, n_deps);
}

int gen_compute_timed(Gen *g, IrPhase phase, double flops, double bytes, double model_flops,
                      int kernels, double seconds, const char *name, const int *deps, int n_deps)
{
    return gen_compute_on(g, g->compute, phase, flops, bytes, model_flops, kernels, seconds, name,
                          deps, n_deps);
}

int gen_compute_on(Gen *g, int stream, IrPhase phase, double flops, double bytes,
                   double model_flops, int kernels, double seconds, const char *name,
                   const int *deps, int n_deps)
{
    return gen_compute_named(g, stream, phase, flops, bytes, model_flops, kernels, seconds,
                             ir_string(g->cls, name), deps, n_deps);
}

int gen_compute_named(Gen *g, int stream, IrPhase phase, double flops, double bytes,
                      double model_flops, int kernels, double seconds, uint32_t name,
                      const int *deps, int n_deps)
{
    /* an op that launches nothing (an ordering point on its stream) does not block */
    bool launches = kernels > 0 || seconds > 0 || flops > 0 || bytes > 0 ||
                    (g->kern_pending && g->kern_pending->len > 0) || g->kern_first_pending;
    if (launches)
        gen_launch_p2p_flush(g); /* a send still deferred: its kernel has run before this launch */
    /* the host launches the kernels first */
    gen_host_named(g, kernels * g->topo->gpu.launch_overhead_s, name);
    IrCompute payload = {.flops = flops, .bytes = bytes, .model_flops = model_flops,
                         .kernels = (uint32_t)kernels, .seconds = seconds};
    if (g->kern_pending && g->kern_pending->len > 0) {
        const IrKernel *list = (const IrKernel *)(void *)g->kern_pending->data;
        int n = (int)g->kern_pending->len;
        payload.kern_first = ir_kernels_add(g->cls, list, n);
        payload.seconds = g->kern_costed == (guint)n ? g->kern_costed_s : list_s(g, list, n);
        g_array_set_size(pending(g), 0);
    } else if (g->kern_first_pending) {
        payload.kern_first = g->kern_first_pending;
    }
    g->kern_first_pending = 0;
    uint32_t id = ir_compute_add(g->cls, &payload);
    int i;
    IrOp *op = ir_op_push(g->cls, IR_OP_COMPUTE, stream, name, deps, n_deps, &i);
    op->phase = (uint8_t)phase;
    op->dtype = (uint8_t)g->compute_dtype;
    op->u.compute.payload = id;
    if (stream == g->compute)
        g->last_compute = i;
    if (launches)
        launch_wait(g, i, name);
    return i;
}

int gen_alloc(Gen *g, const char *buffer, IrMemCategory cat, double bytes)
{
    IrOp op = {.kind = IR_OP_ALLOC, .stream = (uint16_t)g->host, .phase = IR_PHASE_OTHER};
    op.u.mem.buffer = ir_string(g->cls, buffer);
    op.u.mem.category = (uint8_t)cat;
    op.u.mem.bytes = gen_size(g, buffer, bytes);
    return ir_op_add(g->cls, &op, buffer, NULL, 0);
}

int gen_free(Gen *g, int stream, const char *buffer, IrMemCategory cat, double bytes, int dep)
{
    IrOp op = {.kind = IR_OP_FREE, .stream = (uint16_t)stream, .phase = IR_PHASE_OTHER};
    op.u.mem.buffer = ir_string(g->cls, buffer);
    op.u.mem.category = (uint8_t)cat;
    op.u.mem.bytes = gen_size(g, buffer, bytes);
    return ir_op_add(g->cls, &op, buffer, &dep, 1);
}

int gen_coll(Gen *g, int stream, IrCollKind kind, int group, double bytes, HwDtype dtype,
             IrPhase phase, const char *name, const int *deps, int n_deps)
{
    return gen_coll_sms(g, stream, kind, group, bytes, dtype, phase, name, deps, n_deps, 0);
}

int gen_coll_sms(Gen *g, int stream, IrCollKind kind, int group, double bytes, HwDtype dtype,
                 IrPhase phase, const char *name, const int *deps, int n_deps, int sms)
{
    return gen_coll_named(g, stream, kind, group, bytes, dtype, phase, ir_string(g->cls, name),
                          deps, n_deps, sms);
}

int gen_coll_named(Gen *g, int stream, IrCollKind kind, int group, double bytes, HwDtype dtype,
                   IrPhase phase, uint32_t name, const int *deps, int n_deps, int sms)
{
    gen_launch_p2p_flush(g); /* as in gen_compute_named */
    /* NCCL enqueue, plus the copy-in/out kernels FSDP and DDP run around it */
    gen_host_named(g, 3 * g->topo->gpu.launch_overhead_s, name);
    uint64_t size = gen_size_named(g, name, bytes);
    int i;
    IrOp *op = ir_op_push(g->cls, IR_OP_COLL, stream, name, deps, n_deps, &i);
    op->phase = (uint8_t)phase;
    op->dtype = (uint8_t)dtype;
    op->u.coll.coll = (uint8_t)kind;
    op->u.coll.group = (uint16_t)group;
    op->u.coll.sms = (uint8_t)CLAMP(sms, 0, 255);
    op->u.coll.bytes = size;
    launch_wait(g, i, name);
    return i;
}

/* ---- walks ---- */

typedef struct {
    Gen *g;
    const GenHooks *hooks;
    GArray *run; /* of int leaf indices */
} Walk;

static void flush(Walk *w)
{
    if (w->run->len == 0)
        return;
    w->hooks->run(w->g, (const int *)(void *)w->run->data, (int)w->run->len);
    g_array_set_size(w->run, 0);
}

static void walk_fwd(Walk *w, int m)
{
    const ModelModule *mod = &w->g->model->modules[m];
    bool b = w->g->boundary[m];
    if (b) {
        flush(w);
        w->hooks->enter(w->g, m);
    }
    if (mod->first_child < 0 && m != 0)
        g_array_append_val(w->run, m);
    for (int c = mod->first_child; c >= 0; c = w->g->model->modules[c].next_sibling)
        walk_fwd(w, c);
    if (b) {
        flush(w);
        w->hooks->exit(w->g, m);
    }
}

static void walk_bwd(Walk *w, int m)
{
    const Model *model = w->g->model;
    const ModelModule *mod = &model->modules[m];
    bool b = w->g->boundary[m];
    if (b) {
        flush(w);
        w->hooks->enter(w->g, m);
    }
    int n_children = 0;
    for (int c = mod->first_child; c >= 0; c = model->modules[c].next_sibling)
        n_children++;
    int *children = g_new(int, MAX(1, n_children));
    int i = 0;
    for (int c = mod->first_child; c >= 0; c = model->modules[c].next_sibling)
        children[i++] = c;
    for (i = n_children - 1; i >= 0; i--)
        walk_bwd(w, children[i]);
    g_free(children);
    if (mod->first_child < 0 && m != 0)
        g_array_append_val(w->run, m);
    if (b) {
        flush(w);
        w->hooks->exit(w->g, m);
    }
}

void gen_walk_forward(Gen *g, const GenHooks *hooks)
{
    Walk w = {g, hooks, g_array_new(FALSE, FALSE, sizeof(int))};
    walk_fwd(&w, 0);
    flush(&w);
    g_array_free(w.run, TRUE);
}

void gen_walk_backward(Gen *g, const GenHooks *hooks)
{
    Walk w = {g, hooks, g_array_new(FALSE, FALSE, sizeof(int))};
    walk_bwd(&w, 0);
    flush(&w);
    g_array_free(w.run, TRUE);
}

/* ---- compute runs and activation memory ---- */

static int min_leaf(const int *leaves, int n)
{
    int m = leaves[0];
    for (int i = 1; i < n; i++)
        m = MIN(m, leaves[i]);
    return m;
}

/* Saved activations scale from the model's 2-byte (or 4-byte) accounting to this run's dtype. */
static double saved_scale(Gen *g)
{
    return (double)g->act_bytes / hw_dtype_bytes(g->model->training.param_dtype);
}

/* A run's compute, with tensor parallelism's exchanges when there is TP. */
static int run_compute(Gen *g, const int *leaves, int n, IrPhase phase, bool forward,
                       double flops, double bytes, double model_flops, int kernels, double seconds,
                       const char *name, const int *deps, int n_deps)
{
    if (g->tp.size > 1) {
        bool head = false;
        for (int i = 0; i < n && g->tp.head_leaf >= 0; i++)
            head |= leaves[i] == g->tp.head_leaf;
        return gen_tp_compute(g, leaves[0], head, phase, forward, flops, bytes, model_flops,
                              kernels, seconds, name, deps, n_deps);
    }
    return gen_compute_timed(g, phase, flops, bytes, model_flops, kernels, seconds, name, deps,
                             n_deps);
}

/* Selective recomputation (Megatron's --recompute-granularity selective) in this run: on, and
 * outside a block that checkpointing recomputes whole. It recomputes each attention core. */
static bool selective_here(const Gen *g)
{
    return g->opt->recompute_selective && g->ckpt_block < 0;
}

static bool recomputed_leaf(const Gen *g, const ModelModule *m)
{
    return selective_here(g) && m->kernel.kind == MODEL_KERNEL_ATTENTION;
}

/* What a leaf keeps for backward: under selective recomputation an attention core keeps only its
 * inputs (Q, K, V). */
/* What a leaf keeps for backward in this run: under torch.autocast also its fp32 extras (the
 * residual stream into a norm, fp32-list ops: autocast_extra_bytes). */
static double leaf_kept(const Gen *g, const ModelModule *m)
{
    return m->saved_bytes + (g->autocast ? m->autocast_extra_bytes : 0);
}

static double leaf_saved(const Gen *g, const ModelModule *m)
{
    double saved = leaf_kept(g, m);
    return recomputed_leaf(g, m) ? saved - m->recomputable_bytes : saved;
}

int gen_forward_run(Gen *g, const int *leaves, int n, const int *deps, int n_deps)
{
    double flops = 0, bytes = 0, saved = 0;
    int kernels = 0;
    for (int i = 0; i < n; i++) {
        const ModelModule *m = &g->model->modules[leaves[i]];
        flops += m->flops_fwd;
        bytes += m->mem_bytes_fwd;
        saved += leaf_saved(g, m);
        kernels += m->kernels_fwd;
    }
    double s = saved_scale(g);
    const char *first = g->model->modules[leaves[0]].name;
    char *name = cfg_strdup_printf("fwd %s%s", first, n > 1 ? "+" : "");
    if (g->ckpt_block < 0 && saved > 0) {
        char *buf = cfg_strdup_printf("act:%d:%d", min_leaf(leaves, n), g->micro);
        gen_alloc(g, buf, IR_MEM_ACTIVATIONS, saved * s * g->mb);
        g_free(buf);
    }
    double seconds = gen_leaves_s(g, leaves, n, g->mb, 1, false, bytes * s * g->mb, kernels);
    int op = run_compute(g, leaves, n, IR_PHASE_FORWARD, true, flops * g->mb, bytes * s * g->mb,
                         flops * g->mb, MAX(kernels, 1), seconds, name, deps, n_deps);
    g_free(name);
    return op;
}

int gen_backward_run(Gen *g, const int *leaves, int n, const int *deps, int n_deps)
{
    double flops = 0, bytes = 0, saved = 0, recomputed = 0;
    int kernels = 0;
    for (int i = 0; i < n; i++) {
        const ModelModule *m = &g->model->modules[leaves[i]];
        flops += m->flops_fwd * m->flops_bwd_ratio;
        bytes += 2 * m->mem_bytes_fwd; /* read saved input and grad, write grad */
        saved += leaf_saved(g, m);
        kernels += 2 * m->kernels_fwd;
    }
    double model_flops = flops; /* the recompute's are not the model's */
    /* Selective recomputation: each attention core's forward again first (Megatron's
     * CoreAttention under tensor_parallel.checkpoint), its kernels on the run's list before the
     * backward's. Megatron recomputes each core just before that core's backward, so of a run of
     * several layers (a unit wrapping many) one core's dropped tensors are live at a time: the
     * largest, until the run's backward is done. */
    for (int i = 0; i < n; i++) {
        const ModelModule *m = &g->model->modules[leaves[i]];
        if (!recomputed_leaf(g, m))
            continue;
        gen_kernels_leaf(g, NULL, leaves[i], g->mb, 1, false);
        flops += m->flops_fwd;
        bytes += m->mem_bytes_fwd;
        kernels += m->kernels_fwd;
        recomputed = MAX(recomputed, m->recomputable_bytes);
    }
    double s = saved_scale(g);
    char *again = NULL;
    if (recomputed > 0) {
        again = cfg_strdup_printf("recompute:%d:%d", min_leaf(leaves, n), g->micro);
        gen_alloc(g, again, IR_MEM_ACTIVATIONS, recomputed * s * g->mb);
    }
    char *name = cfg_strdup_printf("bwd %s%s", g->model->modules[leaves[0]].name, n > 1 ? "+" : "");
    double seconds = gen_leaves_s(g, leaves, n, g->mb, 1, true, bytes * s * g->mb, kernels);
    int op = run_compute(g, leaves, n, IR_PHASE_BACKWARD, false, flops * g->mb, bytes * s * g->mb,
                         model_flops * g->mb, MAX(kernels, 1), seconds, name, deps, n_deps);
    g_free(name);
    if (again) {
        gen_free(g, g->host, again, IR_MEM_ACTIVATIONS, recomputed * s * g->mb, -1);
        g_free(again);
    }
    if (g->ckpt_block < 0 && saved > 0) {
        char *buf = cfg_strdup_printf("act:%d:%d", min_leaf(leaves, n), g->micro);
        /* single-stream tensor: reusable as soon as the host has issued its last use */
        gen_free(g, g->host, buf, IR_MEM_ACTIVATIONS, saved * s * g->mb, -1);
        g_free(buf);
    }
    return op;
}

/* What the run's leaves' backward allocates beside every saved activation and frees before the
 * run's parameter gradient exists (ModelModule.backward_transient_bytes: the cross-entropy loss's
 * logit gradients, model_hf.c model_hf_loss; e.g. transformers' loss on Llama-3-8B at 8192 tokens
 * and 128256 logits per token, 8 B per logit: 8.4 GB). Not under --tp: Megatron's vocab-parallel
 * loss, what a TP run has, keeps its per-rank share, and the TP generator does not call this. */
void gen_backward_transient(Gen *g, const int *leaves, int n)
{
    if (g->tp.size > 1)
        return;
    for (int i = 0; i < n; i++) {
        double bytes = g->model->modules[leaves[i]].backward_transient_bytes * g->mb;
        if (bytes <= 0)
            continue;
        char *buf = cfg_strdup_printf("bwd_transient:%d:%d", leaves[i], g->micro);
        gen_alloc(g, buf, IR_MEM_ACTIVATIONS, bytes);
        gen_free(g, g->host, buf, IR_MEM_ACTIVATIONS, bytes, -1);
        g_free(buf);
    }
}

bool gen_is_checkpointed(Gen *g, int module)
{
    return g->checkpointed[module];
}

/* torchtitan's every-K-th-block policy counts blocks from 1 and wraps the K-th, 2K-th, ...
 * (parallelize_llama.py at 157a12c56: `_count += 1; if _count % every_x_layer == 0`): blocks
 * K-1, 2K-1, ... from 0, the last of an even count among them. */
bool gen_block_checkpointed(const StratOptions *opt, int ordinal)
{
    return strat_recomputes_every_block(opt) ||
           (opt->activation_checkpointing && (ordinal + 1) % opt->checkpoint_every == 0);
}

/* Subtree sums of a block, for checkpointing. */
static void block_sums(Gen *g, int m, double *flops, double *bytes, double *saved, int *kernels,
                       double *first_saved)
{
    const ModelModule *mod = &g->model->modules[m];
    if (mod->first_child < 0) {
        /* under autocast the block's input is the fp32 residual stream (leaf_kept) */
        double kept = leaf_kept(g, mod);
        if (*first_saved < 0 && kept > 0)
            *first_saved = kept;
        *flops += mod->flops_fwd;
        *bytes += mod->mem_bytes_fwd;
        *saved += kept;
        *kernels += mod->kernels_fwd;
    }
    for (int c = mod->first_child; c >= 0; c = g->model->modules[c].next_sibling)
        block_sums(g, c, flops, bytes, saved, kernels, first_saved);
}

/* A block's forward kernels (its subtree's leaves) onto the pending list, for the recompute;
 * gen_compute_timed costs the list. */
static void block_kernels(Gen *g, int m)
{
    const ModelModule *mod = &g->model->modules[m];
    if (mod->first_child < 0)
        gen_kernels_leaf(g, pending(g), m, g->mb, 1, false);
    for (int c = mod->first_child; c >= 0; c = g->model->modules[c].next_sibling)
        block_kernels(g, c);
}

/* torch.utils.checkpoint keeps only the block's input: the first saving leaf's input (for a
 * decoder layer, the hidden state entering its first norm). */
void gen_ckpt_forward_enter(Gen *g, int block)
{
    double flops = 0, bytes = 0, saved = 0, first = -1;
    int kernels = 0;
    block_sums(g, block, &flops, &bytes, &saved, &kernels, &first);
    char *buf = cfg_strdup_printf("ckpt:%d:%d", block, g->micro);
    gen_alloc(g, buf, IR_MEM_ACTIVATIONS, MAX(first, 0) * saved_scale(g) * g->mb);
    g_free(buf);
    g->ckpt_block = block;
}

void gen_ckpt_forward_exit(Gen *g, int block)
{
    g->ckpt_block = -1;
}

int gen_ckpt_backward_enter(Gen *g, int block, const int *deps, int n_deps)
{
    double flops = 0, bytes = 0, saved = 0, first = -1;
    int kernels = 0;
    block_sums(g, block, &flops, &bytes, &saved, &kernels, &first);
    double s = saved_scale(g);
    char *buf = cfg_strdup_printf("recompute:%d:%d", block, g->micro);
    gen_alloc(g, buf, IR_MEM_ACTIVATIONS, saved * s * g->mb);
    g_free(buf);
    char *name = cfg_strdup_printf("recompute %s", g->model->modules[block].name);
    /* the recompute reruns the forward, TP exchanges included; its time is its kernel list's */
    block_kernels(g, block);
    gen_kernels_memory(g, NULL, bytes * s * g->mb, kernels);
    int op = run_compute(g, &block, 1, IR_PHASE_BACKWARD, true, flops * g->mb, bytes * s * g->mb, 0,
                         MAX(kernels, 1), 0, name, deps, n_deps);
    g_free(name);
    g->ckpt_block = block;
    return op;
}

void gen_ckpt_backward_exit(Gen *g, int block)
{
    double flops = 0, bytes = 0, saved = 0, first = -1;
    int kernels = 0;
    block_sums(g, block, &flops, &bytes, &saved, &kernels, &first);
    double s = saved_scale(g);
    char *buf = cfg_strdup_printf("recompute:%d:%d", block, g->micro);
    gen_free(g, g->host, buf, IR_MEM_ACTIVATIONS, saved * s * g->mb, -1);
    g_free(buf);
    buf = cfg_strdup_printf("ckpt:%d:%d", block, g->micro);
    gen_free(g, g->host, buf, IR_MEM_ACTIVATIONS, MAX(first, 0) * s * g->mb, -1);
    g_free(buf);
    g->ckpt_block = -1;
}

double gen_param_tensors(const Gen *g)
{
    /* modules that own parameters: one tensor each (weights; biases are not told apart, so this
     * undercounts by at most half) */
    double n = 0;
    for (int i = 0; i < g->model->n_modules; i++)
        n += g->model->modules[i].params > 0;
    return MAX(1, n);
}

int gen_optimizer_step(Gen *g, double numel, double tensors, const int *deps, int n_deps)
{
    ModelOptimizer opt = g->model->training.optimizer;
    KernOptimImpl impl = g->opt->optimizer_impl;
    int kernels = kern_optim_kernels(opt, impl, numel, tensors);
    /* one memory-bound kernel record: the update's bytes over its launches */
    double bytes = numel * kern_optim_bytes(opt, impl);
    gen_kernels_memory(g, NULL, bytes, kernels);
    if (g->fp8_weight_numel > 0) {
        /* --fp8-format: the updated weights cast to fp8 and transposed, once per step (fp8.c):
         * read 2 B, write 2 x 1 B per parameter, one cast-transpose kernel per weight */
        double cast = 4 * g->fp8_weight_numel;
        gen_kernels_memory(g, NULL, cast, g->fp8_weight_tensors);
        bytes += cast, kernels += g->fp8_weight_tensors;
    }
    return gen_compute_timed(g, IR_PHASE_OPTIMIZER, 0, bytes, 0, kernels, 0, "optimizer.step", deps,
                             n_deps);
}

/* Adam's foreach step makes its denominator a new list of the whole state's size,
 * `exp_avg_sq_sqrt = torch._foreach_sqrt(device_exp_avg_sqs)` (torch/optim/adam.py
 * _multi_tensor_adam, torch 2.1 and later; kern_optim.c), fp32 as the state, live until the
 * step's last pass: 4 bytes per parameter stepped beside the parameters, gradients and state
 * (torch.optim's docs: foreach's intermediates are a tensorlist, the for-loop's one tensor;
 * the fused kernel has none). Allocated before the step op, freed after it (the host's issue
 * of its last pass). */
double gen_optimizer_denom_alloc(Gen *g, double numel)
{
    ModelOptimizer opt = g->model->training.optimizer;
    if (g->opt->optimizer_impl != KERN_OPTIM_FOREACH ||
        (opt != MODEL_OPT_ADAMW && opt != MODEL_OPT_ADAM) || numel <= 0)
        return 0;
    gen_alloc(g, "optimizer_denom", IR_MEM_OPTIMIZER, 4 * numel);
    return 4 * numel;
}

void gen_optimizer_denom_free(Gen *g, double bytes)
{
    if (bytes > 0)
        gen_free(g, g->host, "optimizer_denom", IR_MEM_OPTIMIZER, bytes, -1);
}

/* The node's host as a CPU optimizer step of one rank sees it. */
static KernHost gen_kern_host(const Gen *g)
{
    const HwTopology *t = g->topo;
    int ranks = g->layout->gpus_per_node;
    /* torchrun: OMP_NUM_THREADS=1 with several processes per node; one process gets them all */
    int threads = g->opt->omp_threads > 0 ? g->opt->omp_threads
                  : ranks > 1             ? 1
                  : t->cpu_cores > 0      ? t->cpu_cores
                                          : 1;
    return (KernHost){.cores = t->cpu_cores,
                      .thread_Bps = t->cpu_thread_Bps,
                      .memory_Bps = t->host_memory_Bps,
                      .ranks_per_node = ranks,
                      .threads = threads};
}

static int host_step(Gen *g, double seconds, const char *name)
{
    IrOp op = {.kind = IR_OP_HOST, .stream = (uint16_t)g->host, .phase = IR_PHASE_OPTIMIZER};
    op.u.host.seconds = seconds;
    return ir_op_add(g->cls, &op, name, NULL, 0);
}

int gen_cpu_optimizer_step(Gen *g, double numel)
{
    KernHost host = gen_kern_host(g);
    return host_step(g, kern_cpu_optimizer_s(&host, g->model->training.optimizer, numel),
                     "optimizer.step (CPU)");
}

int gen_cpu_adam_step(Gen *g, double numel, int param_bytes)
{
    KernHost host = gen_kern_host(g);
    return host_step(g, kern_cpu_adam_s(&host, param_bytes, numel),
                     "optimizer.step (DeepSpeedCPUAdam)");
}
