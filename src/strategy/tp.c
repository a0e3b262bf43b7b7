/* tp: Megatron tensor parallelism as the data-parallel generators see it (FSDP x TP, "2D", with
 * pp = 1), and the scaling rules pp.c shares.
 *
 * PyTorch's 2D recipe (pytorch/examples distributed/tensor_parallelism/fsdp_tp_example.py, the
 * "Large Scale Transformer model training with Tensor Parallel" tutorial): a (dp, tp) device
 * mesh, parallelize_module() with ColwiseParallel/RowwiseParallel on the tp mesh inside a node,
 * then FSDP over the dp mesh. FSDP then shards each TP rank's local share of a unit: its
 * all-gathers and reduce-scatters move the unit's parameters divided by t, over the dp group,
 * with FSDP's own semantics (reshard after forward for FULL_SHARD, gradients reduced every
 * micro-batch unless no_sync()). So the FSDP generator runs unchanged on a model in which every
 * leaf holds one TP rank's share (gen_tp_model), and the compute of each decoder layer gets the
 * TP exchanges of tp_compute below.
 *
 * Scaling per TP rank (Shoeybi et al. 2019; Korthikanti et al. 2022, flash attention, no
 * 5as/h term): GEMM FLOPs and parameters / t (vocabulary-parallel embedding and output layer
 * too); a layer's saved activations sbh(10 + 24/t) instead of 34sbh, or 34sbh/t with sequence
 * parallelism; the checkpointed layer input 2sbh, /t with sequence parallelism; the output
 * layer's activations / t (vocabulary-parallel cross-entropy). Korthikanti's 10 + 24/t is a GPT
 * layer's split of 34sbh into what every rank keeps whole (10) and what TP splits (24); other
 * layers split differently (a Llama layer in eager mode keeps 16h of 45.5h whole, not 10/34 of
 * it), so each leaf of a block with attention is scaled by where it sits (gen_tp_saved_kinds),
 * which gives Korthikanti's sum for a GPT layer. */
#include "gen.h"

#include <string.h>

GenTpScale gen_tp_scale(int t, bool sp, GenTpRegion region)
{
    double inv = 1.0 / t;
    switch (region) {
    case GEN_TP_BLOCK:
        return (GenTpScale){inv, sp ? inv : (10 + 24 * inv) / 34, sp ? inv : 1, inv};
    case GEN_TP_PRE:
        return (GenTpScale){inv, sp ? inv : 1, 1, inv};
    case GEN_TP_POST:
    default:
        return (GenTpScale){inv, inv, 1, inv};
    }
}

GenTpRegion *gen_tp_regions(const Model *model)
{
    GenTpRegion *region = g_new(GenTpRegion, MAX(model->n_modules, 1));
    bool seen_block = false;
    for (int i = 0; i < model->n_modules; i++) {
        int parent = model->modules[i].parent;
        bool in_block =
            model->modules[i].is_block || (parent >= 0 && region[parent] == GEN_TP_BLOCK);
        seen_block |= in_block;
        region[i] = in_block ? GEN_TP_BLOCK : seen_block ? GEN_TP_POST : GEN_TP_PRE;
    }
    return region;
}

/* Megatron's layer under TP (Shoeybi et al. 2019, Figure 3; Korthikanti et al. 2022, Figure 4):
 * each attention or MLP part opens with column-parallel Linears, whose saved input (the norm's
 * output) every rank keeps whole, and whose outputs are split by heads or by the FFN width; what
 * comes after them keeps split tensors (the attention core, the activation, Qwen3's per-head
 * norms), up to the row-parallel Linear, whose saved input is split and whose output, reduced,
 * is whole again (dropout masks, norms, residual sums after it keep whole tensors). So, walking a
 * block's leaves in order: a Linear after a split tensor is row-parallel (split) and makes the
 * stream whole; any other Linear is column-parallel (whole) and makes it split; another leaf
 * keeps what the stream is. For a GPT layer: ln 4, qkv input 2, dropout masks 2, fc1 input 2
 * whole (Korthikanti's 10sbh); Q, K, V 6, out-projection input 2, GeLU input 8, fc2 input 8 split
 * (24sbh). A block without an attention core (a ResNet bottleneck) keeps the ratio. O(modules). */
GenTpSaved *gen_tp_saved_kinds(const Model *model)
{
    GenTpSaved *kind = g_new0(GenTpSaved, MAX(model->n_modules, 1)); /* GEN_TP_SAVED_RATIO */
    for (int b = 0; b < model->n_modules; b++) {
        int parent = model->modules[b].parent;
        if (!model->modules[b].is_block || (parent >= 0 && kind[parent] != GEN_TP_SAVED_RATIO))
            continue;
        int end = b + 1;
        bool attention = false;
        while (end < model->n_modules && model->modules[end].depth > model->modules[b].depth)
            attention |= model->modules[end++].kernel.kind == MODEL_KERNEL_ATTENTION;
        if (!attention)
            continue;
        kind[b] = GEN_TP_SAVED_WHOLE; /* marks the block as walked for its nested blocks */
        enum { WHOLE, AFTER_COLUMN, SPLIT } stream = WHOLE;
        for (int i = b + 1; i < end; i++) {
            const ModelModule *m = &model->modules[i];
            if (m->first_child >= 0) {
                kind[i] = GEN_TP_SAVED_WHOLE;
                continue;
            }
            if (m->kernel.kind == MODEL_KERNEL_GEMM) {
                bool row = stream == SPLIT;
                kind[i] = row ? GEN_TP_SAVED_SPLIT : GEN_TP_SAVED_WHOLE;
                stream = row ? WHOLE : AFTER_COLUMN;
            } else if (m->kernel.kind == MODEL_KERNEL_ATTENTION) {
                kind[i] = GEN_TP_SAVED_SPLIT, stream = SPLIT; /* by heads, whatever came before */
            } else {
                kind[i] = stream == WHOLE ? GEN_TP_SAVED_WHOLE : GEN_TP_SAVED_SPLIT;
                stream = stream == WHOLE ? WHOLE : SPLIT;
            }
        }
    }
    return kind;
}

/* Scales the saved activations of one block's leaves: the first saving leaf (the layer input
 * that checkpointing keeps) by `input`; in a block with attention each other leaf by where it
 * sits (gen_tp_saved_kinds: whole as the input, split 1/t); otherwise the others so that the
 * block's total scales by `act`. */
static void scale_block_saved(Model *copy, const Model *model, int block, const GenTpScale *s,
                              const GenTpSaved *kind)
{
    /* the block's subtree: it and the modules after it that are deeper (pre-order) */
    int end = block + 1;
    while (end < model->n_modules && model->modules[end].depth > model->modules[block].depth)
        end++;
    /* The attention core's own tensors (unfused attention's scores: Korthikanti's 5as^2b) are
     * split by heads, 1/t; the rest of the layer (34sbh) scales by `act`: sbh(10 + 24/t + 5as/ht)
     * per TP rank, as Korthikanti's Table 2 has it (34sbh/t + 5as^2b/t with sequence parallelism). */
    double total = 0, first = 0, core = 0;
    int first_leaf = -1;
    for (int i = block; i < end; i++) {
        const ModelModule *m = &model->modules[i];
        if (m->first_child >= 0)
            continue;
        total += m->saved_bytes;
        core += m->recomputable_bytes;
        if (first_leaf < 0 && m->saved_bytes > 0)
            first = m->saved_bytes, first_leaf = i;
    }
    if (first_leaf < 0)
        return;
    if (kind[block] != GEN_TP_SAVED_RATIO) {
        for (int i = block; i < end; i++) {
            ModelModule *m = &copy->modules[i];
            if (m->first_child < 0) {
                m->saved_bytes *= i == first_leaf || kind[i] == GEN_TP_SAVED_WHOLE ? s->input
                                                                                  : s->flops;
                m->recomputable_bytes *= s->flops;
            }
        }
        return;
    }
    double rest = total - core - first;
    double rest_scale =
        rest > 0 ? MAX(0, (s->act * (total - core) - s->input * first) / rest) : 0;
    for (int i = block; i < end; i++) {
        ModelModule *m = &copy->modules[i];
        if (m->first_child < 0) {
            double own = m->recomputable_bytes;
            m->saved_bytes = i == first_leaf ? m->saved_bytes * s->input
                                             : (m->saved_bytes - own) * rest_scale + own * s->flops;
            m->recomputable_bytes = own * s->flops;
        }
    }
}

Model *gen_tp_model(const Model *model, int t, bool sp)
{
    Model *copy = model_modules_copy(model); /* only the modules are new */
    GenTpRegion *region = gen_tp_regions(model);
    copy->params = 0;
    for (int i = 0; i < model->n_modules; i++) {
        ModelModule *m = &copy->modules[i];
        GenTpScale s = gen_tp_scale(t, sp, region[i]);
        /* a rank's share of a split tensor, rounded up: FlatParameters hold whole elements */
        m->params = (m->params + (uint64_t)t - 1) / (uint64_t)t;
        copy->params += m->params;
        m->flops_fwd *= s.flops;
        m->mem_bytes_fwd *= s.act;
        /* the kernels' shapes: column- or row-parallel GEMMs are 1/t as wide (charged as a
         * narrower output; the time of a K split is the same at these sizes), attention runs
         * 1/t of the heads, and so does its score-matrix traffic when it is unfused (Megatron
         * splits attention by heads; Korthikanti's (10 + 24/t)/34 is for the other traffic) */
        if (m->kernel.kind == MODEL_KERNEL_GEMM) {
            m->kernel.n *= s.flops;
            m->kernel.tp_applied = 1 / s.flops; /* for kern.h's alignment of the split widths */
        } else if (m->kernel.kind == MODEL_KERNEL_ATTENTION) {
            m->kernel.heads /= t;
            m->mem_bytes_fwd = model->modules[i].mem_bytes_fwd / t;
        }
        if (region[i] != GEN_TP_BLOCK) {
            m->saved_bytes *= s.act;
            m->recomputable_bytes *= s.act;
        }
    }
    GenTpSaved *kind = gen_tp_saved_kinds(model);
    for (int i = 0; i < model->n_modules; i++) {
        int parent = model->modules[i].parent;
        if (model->modules[i].is_block && (parent < 0 || region[parent] != GEN_TP_BLOCK)) {
            GenTpScale s = gen_tp_scale(t, sp, GEN_TP_BLOCK);
            scale_block_saved(copy, model, i, &s, kind);
        }
    }
    g_free(kind);
    g_free(region);
    return copy;
}

void gen_tp_model_free(Model *copy)
{
    model_modules_copy_free(copy);
}

void gen_tp_setup(Gen *g, int group)
{
    g->tp.size = g->layout->tp;
    g->tp.sp = g->opt->sequence_parallel && g->tp.size > 1;
    g->tp.group = group;
    g->tp.region = gen_tp_regions(g->model);
    g->tp.head_leaf = -1;
    for (int i = 0; i < g->model->n_modules && g->tp.head_leaf < 0; i++)
        if (g->tp.region[i] == GEN_TP_POST && g->model->modules[i].first_child < 0 &&
            g->model->modules[i].kernel.kind == MODEL_KERNEL_GEMM)
            g->tp.head_leaf = i;
    /* one exchange: the s*b*h activations of a micro-batch (the full tensor before any split) */
    g->tp.bytes = (double)g->model->training.seq_len * g->model->hidden * g->act_bytes * g->mb;
}

void gen_tp_clear(Gen *g)
{
    g_free(g->tp.region);
    g->tp.region = NULL;
}

/* One TP exchange on the compute stream, blocking it as Megatron's are: an all-reduce, or with
 * sequence parallelism a reduce-scatter (`scatter`) or an all-gather of the same tensor. */
static int exchange(Gen *g, IrPhase phase, bool scatter, const char *what, int dep)
{
    IrCollKind kind = !g->tp.sp ? IR_COLL_ALLREDUCE
                      : scatter ? IR_COLL_REDUCE_SCATTER
                                : IR_COLL_ALLGATHER;
    char *name = cfg_strdup_printf("tp %s %s", ir_coll_kind_name(kind), what);
    int op = gen_coll(g, g->compute, kind, g->tp.group, g->tp.bytes, g->compute_dtype, phase, name,
                      &dep, 1);
    g_free(name);
    return op;
}

int gen_tp_compute(Gen *g, int leaf, bool head, IrPhase phase, bool forward, double flops,
                   double bytes, double model_flops, int kernels, double seconds,
                   const char *name, const int *deps, int n_deps)
{
    GenTpRegion region = g->tp.region[leaf];
    if (region != GEN_TP_BLOCK) {
        /* with SP, a tensor split over the sequence gathered first: the output layer's input
         * (ColwiseParallel with input_layouts Shard(1)) and, in backward, the embedding's
         * gradient (its forward reduce-scattered it, RowwiseParallel with output_layouts
         * Shard(1)) */
        int gathered = -1;
        if (g->tp.sp && (head ? forward : region == GEN_TP_PRE && !forward)) {
            char *what = cfg_strdup_printf("tp %s %s", ir_coll_kind_name(IR_COLL_ALLGATHER), name);
            gathered = gen_coll(g, g->compute, IR_COLL_ALLGATHER, g->tp.group, g->tp.bytes,
                                g->compute_dtype, phase, what, deps, n_deps);
            g_free(what);
            deps = &gathered, n_deps = 1;
        }
        int op = gen_compute_timed(g, phase, flops, bytes, model_flops, kernels, seconds, name,
                                   deps, n_deps);
        /* vocabulary-parallel embedding: partial sums all-reduced (reduce-scattered with SP) */
        if (region == GEN_TP_PRE && forward)
            op = exchange(g, phase, true, "embedding", op);
        /* the column-parallel output layer: its input gradient summed over the group,
         * all-reduced (reduce-scattered with SP) */
        if (head && !forward)
            op = exchange(g, phase, true, name, op);
        return op;
    }
    /* A decoder layer in two halves, attention and MLP. Forward: an exchange after each
     * row-parallel GEMM (with SP also an all-gather before each column-parallel one); backward
     * the same for the input gradients of the column-parallel GEMMs. */
    int dep = -1;
    GArray *list = gen_kernels_take(g); /* each half runs half of each kernel */
    for (int half = 0; half < 2; half++) {
        gen_kernels_add(g, list, 0.5);
        if (g->tp.sp)
            dep = exchange(g, phase, false, name, dep);
        int all[9], n = 0;
        for (int i = 0; half == 0 && i < n_deps && n < 8; i++)
            all[n++] = deps[i];
        all[n++] = dep;
        dep = gen_compute_timed(g, phase, flops / 2, bytes / 2, model_flops / 2,
                                MAX(1, kernels / 2), seconds / 2, name, all, n);
        dep = exchange(g, phase, true, name, dep);
    }
    g_array_free(list, TRUE);
    return dep;
}
