/* report: metrics and diagnostics; see report.h. */
#include "report.h"
#include "../kern/kern.h"

#include <math.h>
#include <string.h>

typedef struct {
    int64_t start, end;
} Interval;

static int cmp_interval(const void *a, const void *b)
{
    const Interval *x = a, *y = b;
    return x->start < y->start   ? -1
           : x->start > y->start ? 1
                                 : (x->end > y->end) - (x->end < y->end);
}

/* Sorts and merges intervals in place; returns the count. O(n log n). */
static int merge(Interval *iv, int n)
{
    if (n == 0)
        return 0;
    qsort(iv, (size_t)n, sizeof *iv, cmp_interval);
    int out = 0;
    for (int i = 1; i < n; i++) {
        if (iv[i].start <= iv[out].end)
            iv[out].end = MAX(iv[out].end, iv[i].end);
        else
            iv[++out] = iv[i];
    }
    return out + 1;
}

static int64_t total(const Interval *iv, int n)
{
    int64_t t = 0;
    for (int i = 0; i < n; i++)
        t += iv[i].end - iv[i].start;
    return t;
}

/* Length of a minus b (both merged). */
static int64_t difference(const Interval *a, int na, const Interval *b, int nb)
{
    int64_t t = 0;
    int j = 0;
    for (int i = 0; i < na; i++) {
        int64_t cur = a[i].start, end = a[i].end;
        while (j < nb && b[j].end <= cur)
            j++;
        for (int k = j; k < nb && b[k].start < end; k++) {
            if (b[k].start > cur)
                t += b[k].start - cur;
            cur = MAX(cur, b[k].end);
            if (cur >= end)
                break;
        }
        if (cur < end)
            t += end - cur;
    }
    return t;
}

void report_warn(Report *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_ptr_array_add(r->warnings, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

static void error_diag(Report *r, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void error_diag(Report *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_ptr_array_add(r->errors, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

char *report_bytes(double bytes)
{
    const double GiB = 1073741824.0, MiB = 1048576.0, KiB = 1024.0;
    if (fabs(bytes) >= GiB)
        return g_strdup_printf("%.2f GiB", bytes / GiB);
    if (fabs(bytes) >= MiB)
        return g_strdup_printf("%.1f MiB", bytes / MiB);
    if (fabs(bytes) >= KiB)
        return g_strdup_printf("%.1f KiB", bytes / KiB);
    return g_strdup_printf("%.0f B", bytes);
}

char *report_seconds(double s)
{
    if (s >= 1)
        return g_strdup_printf("%.3f s", s);
    if (s >= 1e-3)
        return g_strdup_printf("%.2f ms", s * 1e3);
    return g_strdup_printf("%.1f us", s * 1e6);
}

static void timeline_metrics(Report *r)
{
    const IrClass *c = r->sched->classes[0];
    const SimClassResult *cr = &r->sim->classes[0];
    int n = sim_op_count(cr, c); /* a compact run's gap included */
    Interval *comp = g_new(Interval, MAX(1, n)), *comm = g_new(Interval, MAX(1, n));
    int nc = 0, nm = 0;
    for (int i = 0; i < n; i++) {
        const IrOp *op = ir_op(c, sim_op_ir(cr, i));
        Interval iv = {sim_op_start_ns(cr, i), sim_op_end_ns(cr, i)};
        if (iv.end <= iv.start)
            continue;
        if (op->kind == IR_OP_COMPUTE) {
            comp[nc++] = iv;
            r->time_by_phase[op->phase] += sim_ns_to_s(iv.end - iv.start);
            r->model_flops_per_gpu += ir_op_compute(c, op)->model_flops;
        } else if (op->kind == IR_OP_HOST && op->phase == IR_PHASE_OPTIMIZER) {
            r->cpu_optimizer_s += sim_ns_to_s(iv.end - iv.start);
        } else if (op->kind == IR_OP_COLL || op->kind == IR_OP_SEND || op->kind == IR_OP_RECV ||
                   op->kind == IR_OP_MEMCPY) {
            comm[nm++] = iv;
        }
    }
    nc = merge(comp, nc);
    nm = merge(comm, nm);
    r->compute_s = sim_ns_to_s(total(comp, nc));
    r->comm_s = sim_ns_to_s(total(comm, nm));
    r->exposed_comm_s = sim_ns_to_s(difference(comm, nm, comp, nc));
    r->overlap_cost_s = cr->overlap_cost_s;
    r->idle_s = MAX(0, r->step_time_s - r->compute_s - r->exposed_comm_s);
    g_free(comp);
    g_free(comm);
}

/* The memory remedies that are not in use already, as one phrase. */
static char *memory_remedies(const Report *r, int top)
{
    const StratOptions *opt = r->opt;
    const StratLayout *lay = &r->info->layout;
    bool fsdp = opt->kind == STRAT_FSDP;
    GString *s = g_string_new(NULL);
#define ADD(text) g_string_append_printf(s, "%s%s", s->len ? ", " : "", text)
    if (!fsdp || opt->sharding == SHARD_NO_SHARD)
        ADD("FSDP full_shard (shards parameters, gradients and optimizer state)");
    if (fsdp && (opt->sharding == SHARD_HYBRID_SHARD || opt->sharding == SHARD_HYBRID_ZERO2) &&
        lay->shard_size < lay->world)
        ADD("a larger shard group (full_shard, or --shard-group-size)");
    if (!opt->activation_checkpointing && opt->ep <= 1) /* --ep refuses checkpointing */
        ADD("activation checkpointing");
    else if (opt->checkpoint_every > 1)
        ADD("checkpointing every block (--checkpoint-every 1)");
    /* eager attention keeps its s x s scores (5as^2b per layer, Korthikanti): Megatron's
     * selective recomputation drops them for one attention-core forward in the backward */
    if (top == IR_MEM_ACTIVATIONS && r->model->heads > 0 && !r->model->flash_attention &&
        !opt->recompute_selective && !strat_recomputes_every_block(opt))
        ADD("selective recomputation of the attention scores (--recompute-granularity "
            "selective) or flash attention");
    if (top == IR_MEM_ACTIVATIONS && r->model->training.micro_batch > 1)
        ADD("a smaller micro-batch");
    if (top == IR_MEM_ACTIVATIONS && r->model->token_input)
        ADD("a shorter sequence");
    if (fsdp && !opt->cpu_offload && opt->sharding != SHARD_NO_SHARD)
        ADD(opt->offload_optimizer ? "cpu_offload (the parameter shards too; instead of "
                                     "--offload-optimizer)"
                                   : "cpu_offload");
    if (fsdp && r->model->moe.experts > 0 && opt->ep <= 1)
        ADD("expert parallelism (--ep: each GPU gathers only its share of a layer's experts)");
    if (r->model->heads > 0 && lay->tp == 1)
        ADD("tensor or pipeline parallelism (--tp, --pp)");
#undef ADD
    return g_string_free(s, FALSE);
}

/* Does not fit: what is largest, what is not on yet, and whether any node count of this machine
 * would do. Sharded state (parameters, gradients, optimizer) shrinks as 1/GPUs under FSDP; the
 * rest of the peak (activations, the unsharded units, buffers) does not. */
static void out_of_memory(Report *r)
{
    const StratOptions *opt = r->opt;
    const StratLayout *lay = &r->info->layout;
    int top = 0;
    for (int i = 1; i < IR_MEM_CATEGORY_COUNT; i++)
        if (r->mem_breakdown[i] > r->mem_breakdown[top])
            top = i;
    char *peak = report_bytes(r->mem_peak_bytes), *cap = report_bytes(r->mem_capacity_bytes);
    char *part = report_bytes(r->mem_breakdown[top]);
    char *remedies = memory_remedies(r, top);
    char *scale = g_strdup("");
    bool sharded = opt->kind == STRAT_FSDP && opt->sharding == SHARD_FULL_SHARD;
    /* with cpu_offload the sharded state lives in host memory: the GPU count does not bound it */
    if (sharded && !opt->cpu_offload && !opt->offload_optimizer && lay->tp == 1 && lay->pp == 1) {
        /* the whole machine: full_shard over every GPU it has */
        double gpus_max = (double)r->topo->nodes_max * lay->gpus_per_node;
        double optim = model_optimizer_state_bytes(r->model->training.optimizer);
        /* foreach Adam's denominator (4 bytes a parameter, sharded too: gen.c
         * gen_optimizer_denom_alloc) when the peak is the step: the optimizer's part of the peak
         * is then half as large again as its state */
        if (r->mem_breakdown[IR_MEM_OPTIMIZER] >
            1.25 * (double)r->model->params * optim / lay->world)
            optim += 4;
        double state_bytes = (double)r->model->params * (4 + 4 + optim);
        /* what does not shrink with more GPUs: the peak less the sharded state */
        double fixed = r->mem_peak_bytes - state_bytes / lay->world;
        double room = r->mem_capacity_bytes - fixed;
        char *per_gpu = report_bytes(state_bytes / gpus_max);
        /* more nodes only shrink the sharded state: when the rest alone is too big (room <= 0),
         * the remedies above are the answer, not the machine's size */
        if (state_bytes / gpus_max > r->mem_capacity_bytes ||
            (room > 0 && state_bytes / gpus_max > room)) {
            g_free(scale);
            scale = g_strdup_printf(
                ". It does not fit on the whole machine either: sharded over all %.0f GPUs of "
                "%s the fp32 parameters, gradients and optimizer state alone take %s per GPU%s; "
                "it needs tensor or pipeline parallelism (--tp, --pp), cpu_offload (the state in "
                "host memory) or a larger machine",
                gpus_max, r->topo->name, per_gpu,
                state_bytes / gpus_max > r->mem_capacity_bytes ? ", more than the GPU has"
                                                               : " next to the rest of the peak");
        } else if (room > 0) {
            int nodes_needed = (int)ceil(state_bytes / room / lay->gpus_per_node);
            if (nodes_needed > lay->nodes && nodes_needed <= r->topo->nodes_max) {
                g_free(scale);
                scale = g_strdup_printf("; or more nodes: full_shard over %d nodes (--nodes %d) "
                                        "brings the sharded state within the memory",
                                        nodes_needed, nodes_needed);
            }
        }
        g_free(per_gpu);
    }
    report_warn(
        r,
        "memory: does not fit: the peak of %s per GPU exceeds the %s of the %s; the largest "
        "part is %s (%s). Options: %s%s",
        peak, cap, r->topo->gpu.name, ir_mem_category_name((IrMemCategory)top), part,
        *remedies ? remedies : "a GPU with more memory", scale);
    g_free(peak);
    g_free(cap);
    g_free(part);
    g_free(remedies);
    g_free(scale);
}

/* PyTorch's caching allocator rounds blocks up and cannot always reuse freed blocks of another
 * size, so reserved memory exceeds allocated memory by a few percent to tens of percent
 * (https://pytorch.org/docs/stable/notes/cuda.html#memory-management, and
 * PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to reduce it). A simulated peak above 90 % of
 * the GPU leaves less than 10 % for that: it fits on paper and may not in the run. */
static void memory_headroom(Report *r)
{
    if (r->mem_capacity_bytes <= 0 || r->mem_peak_bytes <= 0.9 * r->mem_capacity_bytes)
        return;
    char *peak = report_bytes(r->mem_peak_bytes), *cap = report_bytes(r->mem_capacity_bytes);
    char *left = report_bytes(r->mem_capacity_bytes - r->mem_peak_bytes);
    char *remedies = memory_remedies(r, IR_MEM_ACTIVATIONS);
    report_warn(
        r,
        "memory: the peak of %s is %.1f%% of the %s: only %s is left for the fragmentation "
        "of PyTorch's caching allocator (often 5-30%% of the peak), so the real run may run "
        "out of memory; PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True reduces "
        "fragmentation%s%s",
        peak, 100 * r->mem_peak_bytes / r->mem_capacity_bytes, cap, left,
        *remedies ? ", and so would " : "", remedies);
    g_free(peak);
    g_free(cap);
    g_free(left);
    g_free(remedies);
}

static void diagnostics(Report *r)
{
    const HwKernels *k = &r->topo->gpu.kernels;
    /* Without gpu.kernels every FLOP runs at the best-shape GEMM rate and no kernel has a fixed
     * cost: SC21's Megatron-LM A100 runs (tests/validation/published_runs.tsv) simulate 4-9 %
     * faster without the A100's table. Every shipped file has one; a user's new file may not. */
    if (!k->present)
        report_warn(r,
                    "correctness: compute: %s has no gpu.kernels table, so every FLOP runs at the "
                    "best-shape GEMM rate (optimistic: 4-9 %% faster on A100 Megatron-LM steps); "
                    "copy the table of a file with the same GPU (topologies/README.md)",
                    r->topo->name);
    if (r->model->flash_attention && k->present &&
        ((r->model->attention_kernel == MODEL_ATTN_TRITON && k->triton_attention_efficiency <= 0) ||
         (r->model->attention_kernel == MODEL_ATTN_FLASH1 && k->flash1_attention_efficiency <= 0)))
        report_warn(r,
                    "correctness: attention: %s has no figures for %s (no benchmark of it on this "
                    "GPU); charged at FlashAttention-2's rates, which are faster",
                    r->topo->gpu.name,
                    r->model->attention_kernel == MODEL_ATTN_TRITON ? "FlashAttention's Triton kernel"
                                                                    : "FlashAttention v1's kernels");
    /* cuBLAS's tensor-core GEMMs want 16-byte-aligned leading dimensions; eager attention's
     * batched GEMMs have the head dim as one (QK^T's K, PV's N). BLOOM's sweeps on A100 (bigscience
     * tr11 chronicles-prequel, "NHEADs comparison" and its second round, NHIDDEN 13824) ran 128
     * heads (head dim 108) 30-44 % slower than 64 or 96 heads (216, 144) of the same model and
     * layout. The kernel model charges them at gemm_misaligned_efficiency (one H100 bmm, 0.69;
     * misaligned_warning below), which explains 1-1.5 points of those steps, so this says the rest
     * is not modelled. */
    int dt_bytes = hw_dtype_bytes(strat_compute_dtype(r->model, r->opt));
    if (!r->model->flash_attention && r->model->heads > 0 && dt_bytes < 16 &&
        (r->model->head_dim * dt_bytes) % 16 != 0)
        report_warn(r,
                    "correctness: attention: head dim %d is not a multiple of %d elements (16 "
                    "bytes): cuBLAS runs eager attention's GEMMs on slower unaligned kernels, "
                    "%s, while BLOOM's A100 sweeps ran head dim 108 30-44 %% slower than 144 or "
                    "216 in the same model, far more: expect this run slower than predicted; a "
                    "head count that makes hidden / heads a multiple of %d avoids it",
                    r->model->head_dim, 16 / dt_bytes,
                    r->topo->gpu.kernels.present &&
                            r->topo->gpu.kernels.gemm_misaligned_efficiency < 1
                        ? "which the model charges only where they are compute-bound, at the "
                          "fraction of the aligned rate one H100 benchmark measured"
                        : "which the model does not charge on this GPU (its topology gives no "
                          "gpu.kernels.gemm_misaligned_efficiency)",
                    16 / dt_bytes);
    const StratOptions *opt = r->opt;
    const StratLayout *lay = &r->info->layout;
    bool fsdp = opt->kind == STRAT_FSDP;
    bool hybrid =
        fsdp && (opt->sharding == SHARD_HYBRID_SHARD || opt->sharding == SHARD_HYBRID_ZERO2);
    if (strat_hybrid_unsynced(opt, lay))
        error_diag(
            r,
            "%s with a shard group of 1 GPU (%d GPU%s per node): PyTorch FSDP1 turns it into "
            "NO_SHARD on the one-rank shard group and never all-reduces gradients across "
            "the %d replicas, so the model replicas silently diverge (pytorch/pytorch#154888, "
            "closed as not planned); simulated as PyTorch runs it, with no gradient traffic "
            "between nodes. Fix: --strategy full_shard, or --strategy ddp, or a shard group "
            "across nodes (--shard-group-size 2 or more)",
            strat_sharding_name(opt->sharding), lay->gpus_per_node,
            lay->gpus_per_node == 1 ? "" : "s", lay->replicate_size);
    else if (hybrid && lay->shard_size == 1 && opt->fsdp_version == 2 && lay->replicate_size > 1)
        report_warn(r,
                    "memory: %s under fully_shard (FSDP2, HSDP on a 2-D DeviceMesh) with a shard "
                    "group of 1 "
                    "GPU does all-reduce gradients across the %d replicas (unlike FSDP1, "
                    "pytorch/pytorch#154888), but shards nothing: every GPU keeps full parameters, "
                    "gradients and optimizer state, like DDP",
                    strat_sharding_name(opt->sharding), lay->replicate_size);
    else if (hybrid && lay->shard_size == 1)
        report_warn(r,
                    "memory: %s with a shard group of 1 GPU (%d GPU per node) shards nothing: "
                    "every GPU keeps "
                    "full parameters, gradients and optimizer state, like no_shard or DDP; use "
                    "full_shard, or more GPUs per node",
                    strat_sharding_name(opt->sharding), lay->gpus_per_node);
    if (hybrid && lay->replicate_size == 1 && lay->shard_size > 1)
        report_warn(r,
                    "communication: %s on a single shard group (%d GPUs) has no replicas to "
                    "all-reduce with: it "
                    "behaves like %s",
                    strat_sharding_name(opt->sharding), lay->world,
                    opt->sharding == SHARD_HYBRID_SHARD ? "full_shard" : "shard_grad_op");
    if (fsdp && r->info->mixed_units > 0) {
        char *grad = report_bytes(r->info->mixed_grad_bytes);
        report_warn(r,
                    "memory: %d FSDP units mix frozen and trainable parameters: FSDP1 needs "
                    "use_orig_params=True for that, and then allocates and reduce-scatters the "
                    "gradient of the whole FlatParameter (%s unsharded over those units), as if "
                    "nothing were frozen; wrap the trainable parameters in their own units (peft's "
                    "fsdp_auto_wrap_policy) or use FSDP2, whose gradients are per parameter",
                    r->info->mixed_units, grad);
        g_free(grad);
    }
    if (fsdp && lay->world == 1)
        report_warn(r, "memory: FSDP on 1 GPU shards nothing: all parameters, gradients and "
                       "optimizer state stay "
                       "on the one GPU");
    if (fsdp && r->info->n_units == 1 && lay->world > 1)
        report_warn(
            r,
            "memory: FSDP with a single unit (wrap policy 'none' or nothing large enough to wrap) "
            "gathers the whole model at once: no overlap of communication with computation "
            "and the peak holds all parameters unsharded; use --wrap transformer or --wrap size:N");
    if (r->oom)
        out_of_memory(r);
    else
        memory_headroom(r);
    if (r->step_time_s > 0 && r->exposed_comm_s > 0.3 * r->step_time_s) {
        char *exposed = report_seconds(r->exposed_comm_s), *step = report_seconds(r->step_time_s);
        /* hybrid_shard only helps when full_shard's all-gathers cross nodes; on one node the
         * remedy is more work per GPU */
        bool multi_node = lay->world > lay->gpus_per_node;
        bool can_hybrid = fsdp && !hybrid && multi_node && lay->gpus_per_node > 1 &&
                          opt->sharding != SHARD_NO_SHARD; /* 1 GPU per node: shards nothing */
        report_warn(r,
                    "communication: %.0f%% of the step is exposed communication (%s of %s): the "
                    "GPUs wait for %s; larger micro-batches%s would help",
                    100 * r->exposed_comm_s / r->step_time_s, exposed, step,
                    multi_node ? "the network" : "NVLink/PCIe transfers",
                    can_hybrid   ? " or hybrid_shard (keeps all-gathers inside a node)"
                    : multi_node ? " or fewer nodes"
                                 : "");
        g_free(exposed);
        g_free(step);
    }
    /* idle while the host works: the CPU optimizer step has its own warning below */
    double host_bound = r->idle_s - r->cpu_optimizer_s;
    if (r->step_time_s > 0 && host_bound > 0.3 * r->step_time_s) {
        if (opt->cpu_offload)
            report_warn(r,
                        "host: the GPU is idle %.0f%% of the step waiting for the host: with "
                        "cpu_offload the gradients and parameters cross PCIe; more GPUs (smaller "
                        "shards) or no cpu_offload if the memory allows would help",
                        100 * host_bound / r->step_time_s);
        else if (opt->offload_optimizer)
            report_warn(r,
                        "host: the GPU is idle %.0f%% of the step waiting for the host: with "
                        "offload_optimizer the gradient shards and the updated parameters cross "
                        "PCIe; more GPUs (smaller shards) or no offload if the memory allows "
                        "would help",
                        100 * host_bound / r->step_time_s);
        else
            report_warn(
                r,
                "host: the GPU is idle %.0f%% of the step waiting for the host to launch "
                "kernels: each GPU's work per kernel is too small for eager PyTorch; a larger "
                "micro-batch%s would help",
                100 * host_bound / r->step_time_s,
                r->model->compiled ? " or CUDA graphs" : ", torch.compile or CUDA graphs");
    }
    /* torchrun leaves one intra-op thread per rank, and one thread streams a fraction of the
     * node's memory bandwidth (src/kern/kern_optim.c) */
    int cores = r->topo->cpu_cores;
    if ((opt->cpu_offload || opt->offload_optimizer) && opt->omp_threads == 0 &&
        lay->gpus_per_node > 1 && r->step_time_s > 0 && r->cpu_optimizer_s > 0.1 * r->step_time_s) {
        char *cpu = report_seconds(r->cpu_optimizer_s);
        char *more = cores > 0 ? g_strdup_printf("%d (the node's %d cores over its %d GPUs)",
                                                 MAX(1, cores / lay->gpus_per_node), cores,
                                                 lay->gpus_per_node)
                               : g_strdup("N (the node's cores over its GPUs)");
        report_warn(
            r,
            "host: CPU offload: the optimizer step takes %s on the host (%.0f%% of the step) "
            "on one thread per rank, as torchrun sets OMP_NUM_THREADS=1 with several GPUs per "
            "node; OMP_NUM_THREADS=%s gives it more of the node's memory bandwidth "
            "(--omp-num-threads)",
            cpu, 100 * r->cpu_optimizer_s / r->step_time_s, more);
        g_free(cpu);
        g_free(more);
    }
    if (r->init) {
        for (int i = 0; i < r->init->n_modes; i++) {
            const InitMode *m = &r->init->modes[i];
            if (strcmp(m->name, "cpu") == 0 && m->host_oom) {
                char *need = report_bytes(m->host_bytes_per_node),
                     *have = report_bytes(r->topo->host_memory_bytes);
                report_warn(r,
                            "host: initialisation: building the full model on the CPU in each of "
                            "the %d ranks "
                            "of a node needs %s of host memory, more than the node's %s; %s",
                            lay->gpus_per_node, need, have,
                            fsdp ? "use deferred initialisation (device='meta' with param_init_fn)"
                                 : "build on the GPU or use FSDP with deferred initialisation");
                g_free(need);
                g_free(have);
            }
        }
    }
    if (r->model->token_input && r->model->positions > 0 &&
        r->model->training.seq_len > r->model->positions)
        report_warn(
            r, "correctness: sequence length %d exceeds the model's max_position_embeddings %d",
            r->model->training.seq_len, r->model->positions);
}

/* What a step loses to misaligned GEMMs (kern.h), on the rank class that loses the most: the
 * kernel model's time of each misaligned kernel less its aligned time, summed over the class's
 * compute ops (each distinct kernel list costed once). Named with the model's leaves whose own
 * features are off 16 bytes (the output layer of a vocabulary Megatron pads is not). O(ops of
 * the classes that have a misaligned kernel). */
static void misaligned_warning(Report *r)
{
    const HwGpu *gpu = &r->topo->gpu;
    if (!gpu->kernels.present || !(gpu->kernels.gemm_misaligned_efficiency < 1))
        return;
    double worst = 0;
    int dtype = -1;
    for (int ci = 0; ci < r->sched->n_classes; ci++) {
        const IrClass *c = r->sched->classes[ci];
        guint nk = c->kernels ? c->kernels->len : 0;
        bool any = false;
        for (guint k = 0; k < nk && !any; k++)
            any = (g_array_index(c->kernels, IrKernel, k).flags & IR_KERN_MISALIGNED) != 0;
        if (!any)
            continue;
        /* per kernel record: its list's loss, or NAN until costed */
        double *loss = g_new(double, nk + 1);
        for (guint k = 0; k <= nk; k++)
            loss[k] = NAN;
        const SimClassResult *cr = &r->sim->classes[ci];
        double sum = 0;
        for (int i = 0; i < sim_op_count(cr, c); i++) {
            const IrOp *op = ir_op(c, sim_op_ir(cr, i));
            if (op->kind != IR_OP_COMPUTE)
                continue;
            uint32_t first = ir_op_compute(c, op)->kern_first;
            if (first == 0)
                continue;
            if (isnan(loss[first])) {
                int n = 0;
                const IrKernel *list = ir_kernels_of(c, first, &n);
                loss[first] = 0;
                for (int j = 0; j < n; j++) {
                    if (!(list[j].flags & IR_KERN_MISALIGNED))
                        continue;
                    KernShape s;
                    kern_from_ir(&list[j], &s);
                    double t = kern_time_s(gpu, &s);
                    s.misaligned = false;
                    loss[first] += list[j].share * (t - kern_time_s(gpu, &s));
                    dtype = list[j].dtype;
                }
            }
            sum += loss[first];
        }
        g_free(loss);
        worst = MAX(worst, sum);
    }
    /* below half a percent of the step it is not worth a line */
    if (!(worst > 0.005 * r->step_time_s) || dtype < 0)
        return;
    /* the leaves that carry it, by what each loses per micro-batch as the run splits it (its
     * tensor-parallel widths; Megatron's padded vocabulary is not misaligned), alike ones (same
     * kind and widths) as one entry with a count, named when they carry 5 % or more of it (not
     * BERT's 2-way next-sentence head beside its 30522-way decoder, not eager attention bound by
     * its bytes, which misalignment does not slow) */
    const Model *m = r->model;
    const StratOptions *opt = r->opt;
    const StratLayout *lay = &r->info->layout;
    double tp = MAX(1, lay->tp);
    int vocab_pad = strat_vocab_pad(opt, lay);
    HwDtype compute = strat_compute_dtype(m, opt);
    typedef struct {
        int first, count;
        bool gemm;
        double a, b, loss;
    } Entry;
    Entry *e = g_new0(Entry, MAX(1, m->n_modules));
    int n_e = 0;
    double total = 0;
    for (int i = 0; i < m->n_modules; i++) {
        const ModelModule *leaf = &m->modules[i];
        const ModelKernel *k = &leaf->kernel;
        if (leaf->first_child >= 0)
            continue;
        double loss = 0;
        for (int pass = 0; pass < 2; pass++) {
            KernShape list[KERN_LEAF_MAX];
            int n = kern_leaf_kernels(compute, leaf, kern_attention_impl(m),
                                      m->training.micro_batch, tp, pass == 1, list);
            kern_leaf_pad_vocab(compute, m, leaf, tp, vocab_pad, list, n);
            for (int j = 0; j < n; j++) {
                if (!list[j].misaligned)
                    continue;
                double t = kern_time_s(gpu, &list[j]);
                list[j].misaligned = false;
                loss += list[j].share * (t - kern_time_s(gpu, &list[j]));
            }
        }
        if (!(loss > 0))
            continue;
        bool gemm = k->kind == MODEL_KERNEL_GEMM;
        double a = gemm ? k->k : k->head_dim, b = gemm ? k->n : k->seq;
        int j = 0;
        while (j < n_e && !(e[j].gemm == gemm && e[j].a == a && e[j].b == b))
            j++;
        if (j == n_e)
            e[n_e++] = (Entry){i, 0, gemm, a, b, 0};
        e[j].count++;
        e[j].loss += loss;
        total += loss;
    }
    GString *what = g_string_new(NULL);
    int named = 0;
    for (int j = 0; j < n_e; j++) {
        if (e[j].loss < 0.05 * total || named++ >= 3)
            continue;
        char alike[32] = "";
        if (e[j].count > 1)
            snprintf(alike, sizeof alike, " and %d alike", e[j].count - 1);
        if (e[j].gemm)
            g_string_append_printf(what, "%s%s%s (features %g -> %g%s)", named > 1 ? ", " : "",
                                   m->modules[e[j].first].name, alike, e[j].a, e[j].b,
                                   tp > 1 ? ", split over the tensor-parallel ranks" : "");
        else
            g_string_append_printf(what, "%s%s%s (head dim %g, sequence %g)", named > 1 ? ", " : "",
                                   m->modules[e[j].first].name, alike, e[j].a, e[j].b);
    }
    g_free(e);
    char *lost = report_seconds(worst);
    report_warn(
        r,
        "compute: misaligned GEMMs cost about %s of GPU time a step (%.1f %% of the step, at %.2f "
        "of the aligned rate): %s, a width off a multiple of 16 bytes; widths padded to a "
        "multiple of 64 avoid it (nanoGPT pads GPT-2's vocabulary of 50257 to 50304)",
        lost, 100 * worst / MAX(r->step_time_s, 1e-30), gpu->kernels.gemm_misaligned_efficiency,
        named ? what->str : "the model's GEMMs");
    g_free(lost);
    g_string_free(what, TRUE);
}

void report_build(Report *r)
{
    const SimClassResult *cr = &r->sim->classes[0];
    const StratLayout *lay = &r->info->layout;
    r->warnings = g_ptr_array_new_with_free_func(g_free);
    r->errors = g_ptr_array_new_with_free_func(g_free);
    r->step_time_s = sim_ns_to_s(r->sim->makespan_ns);
    timeline_metrics(r);
    double step = r->step_time_s > 0 ? r->step_time_s : 1e-30;
    r->samples_per_s = r->info->samples_per_step * lay->world / step;
    r->tokens_per_s = r->model->token_input ? r->info->tokens_per_step * lay->world / step : 0;
    r->tflops_per_gpu = r->model_flops_per_gpu / step / 1e12;
    /* against the peak of the dtype the matmuls run in, as the generators charge them */
    r->mfu = r->model_flops_per_gpu / step /
             r->topo->gpu.peak_flops[strat_compute_dtype(r->model, r->opt)];
    r->mem_reserved_bytes = r->topo->gpu.reserved_bytes;
    r->mem_capacity_bytes = r->topo->gpu.memory_bytes;
    for (int i = 0; i < IR_MEM_CATEGORY_COUNT; i++)
        r->mem_breakdown[i] = (double)cr->mem.at_peak[i];
    r->mem_peak_bytes = (double)cr->mem.peak + r->mem_reserved_bytes;
    r->mem_peak_time_s = sim_ns_to_s(cr->mem.peak_time_ns);
    r->oom = r->mem_peak_bytes > r->mem_capacity_bytes;
    r->comm_bytes_per_gpu = cr->coll_bytes_sent;
    r->inter_node_bytes_per_gpu = cr->inter_node_bytes_sent;
    /* by kind, so that the rows under the total account for it: the collectives and a
     * pipeline's sends and receives, of rank class 0 (a pipeline's first stage) */
    r->comm_stage =
        lay->pp > 1 && r->info->class_stage && r->info->n_class_stage == r->sched->n_classes
            ? r->info->class_stage[0]
            : -1;
    const IrClass *c = r->sched->classes[0];
    for (int i = 0; i < sim_op_count(cr, c); i++) {
        const IrOp *op = ir_op(c, sim_op_ir(cr, i));
        ReportCollStats *s;
        double bytes;
        if (op->kind == IR_OP_COLL)
            s = &r->coll[op->u.coll.coll], bytes = (double)op->u.coll.bytes;
        else if (op->kind == IR_OP_SEND || op->kind == IR_OP_RECV)
            s = op->kind == IR_OP_SEND ? &r->send : &r->recv, bytes = (double)op->u.p2p.bytes;
        else
            continue;
        s->count++;
        s->bytes += bytes;
        s->time_s += sim_ns_to_s(sim_op_end_ns(cr, i) - sim_op_start_ns(cr, i));
    }
    report_parallel_build(r);
    diagnostics(r);
    misaligned_warning(r);
    report_train_build(r);
}

void report_clear(Report *r)
{
    if (r->warnings)
        g_ptr_array_free(r->warnings, TRUE);
    r->warnings = NULL;
    if (r->errors)
        g_ptr_array_free(r->errors, TRUE);
    r->errors = NULL;
    g_free(r->stages);
    r->stages = NULL;
}
