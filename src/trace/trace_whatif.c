/* trace: the layout a trace shows, and its step re-costed at another scale (fsdpsim trace whatif;
 * see trace.h). */
#include "trace.h"

#include "../coll/coll.h"
#include "../hw/hw.h"
#include "../util/cfg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RANK(set, i) ((const TraceRank *)g_ptr_array_index((set)->ranks, (i)))

/* What the collectives of the first rank's steps say about the layout: process groups and their
 * sizes, and per step the collectives of each kind. DDP issues all-reduces of gradient buckets
 * (25 MiB by default: torch.nn.parallel.DistributedDataParallel, bucket_cap_mb) over the data-
 * parallel group; FSDP all-gathers parameters and reduce-scatters gradients per wrap unit; tensor
 * parallelism all-reduces activations in groups smaller than the world, twice per layer and pass
 * (Megatron-LM, Shoeybi et al. 2019, Fig. 3); DLRM-style model-parallel embeddings exchange with
 * all-to-all. */
char *trace_infer_layout(const TraceSet *set)
{
    const TraceRank *r = RANK(set, 0);
    int steps = (int)r->steps->len, per_kind[TRACE_COLL_COUNT] = {0};
    int smaller_ar = 0;
    GString *groups = g_string_new(NULL);
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint i = 0; i < r->colls->len; i++) {
        const TraceColl *c = &g_array_index(r->colls, TraceColl, i);
        if (g_array_index(r->kernels, TraceKernel, c->kernel).step < 0)
            continue;
        per_kind[c->kind]++;
        if (c->kind == TRACE_COLL_ALLREDUCE && c->group_size < set->world_size)
            smaller_ar++;
        char *key = g_strdup_printf("%s (%d ranks)", c->pg[0] ? c->pg : "world", c->group_size);
        if (g_hash_table_add(seen, key))
            g_string_append_printf(groups, "%s%s", groups->len ? ", " : "", key);
    }
    g_hash_table_destroy(seen);
    GString *s = g_string_new(NULL);
    g_string_append_printf(s,
                           "world %d; process groups: %s\n  per step on rank %d:", set->world_size,
                           groups->len ? groups->str : "none with collectives in a step", r->rank);
    for (int k = 0; k < TRACE_COLL_COUNT; k++)
        if (per_kind[k])
            g_string_append_printf(s, " %.1f %s", (double)per_kind[k] / MAX(steps, 1),
                                   trace_coll_kind_name((TraceCollKind)k));
    g_string_append(s, "\n  inferred:");
    int n = 0;
    if (per_kind[TRACE_COLL_ALLGATHER] && per_kind[TRACE_COLL_REDUCE_SCATTER])
        g_string_append(s, " FSDP (parameters all-gathered, gradients reduce-scattered)"), n++;
    if (per_kind[TRACE_COLL_ALLREDUCE] - smaller_ar > 0)
        g_string_append_printf(s,
                               "%s data parallel (DDP: gradient buckets all-reduced over the "
                               "world)",
                               n++ ? " +" : "");
    if (smaller_ar > 0)
        g_string_append_printf(s,
                               "%s tensor parallel (all-reduces in groups smaller than the "
                               "world)",
                               n++ ? " +" : "");
    if (per_kind[TRACE_COLL_ALLTOALL])
        g_string_append_printf(s, "%s all-to-all (model-parallel embeddings or experts)",
                               n++ ? " +" : "");
    if (!n)
        g_string_append(s, " no collectives inside the steps: one GPU, or communication outside "
                           "the profiled steps");
    g_string_free(groups, TRUE);
    return g_string_free(s, FALSE);
}

static double model_s(const CollModel *m, const HwTopology *topo, IrCollKind kind, uint64_t bytes,
                      int n)
{
    CollShape shape = {kind, bytes, n, (n + topo->gpus_per_node - 1) / topo->gpus_per_node,
                       MIN(n, topo->gpus_per_node)};
    CollChoice choice;
    return m->time_s(m, &shape, &choice);
}

bool trace_whatif(const TraceSet *set, const char *topo_file, const int *ranks, int n_ranks,
                  const char *emit_schedule, FILE *out, GError **error)
{
    HwTopology *topo = hw_topology_load(topo_file, error);
    if (!topo)
        return false;
    /* the sizes asked for are checked before anything is printed */
    int recosted_ir = 0, kept_ir = 0;
    for (int j = 0; j < n_ranks; j++) {
        IrSchedule *sched = trace_to_schedule(set, ranks[j], topo, &recosted_ir, &kept_ir, error);
        if (!sched) {
            hw_topology_free(topo);
            return false;
        }
        bool ok = j > 0 || !emit_schedule || ir_schedule_write(sched, emit_schedule, error);
        ir_schedule_free(sched);
        if (!ok) {
            hw_topology_free(topo);
            return false;
        }
    }
    CollModel model;
    coll_model_analytic_init(&model, topo);
    char *layout = trace_infer_layout(set);
    fprintf(out, "layout inferred from the trace: %s\n", layout);
    g_free(layout);
    double mean_abs, max_abs, replay_s;
    trace_replay_error(set, &mean_abs, &max_abs, &replay_s);
    GArray *measured = g_array_new(FALSE, FALSE, sizeof(double));
    for (guint i = 0; i < set->ranks->len; i++)
        for (guint s = 0; s < RANK(set, i)->steps->len; s++) {
            double v = g_array_index(RANK(set, i)->steps, TraceStep, s).cpu_dur_us * 1e-6;
            g_array_append_val(measured, v);
        }
    GPtrArray *wrap = g_ptr_array_new();
    g_ptr_array_add(wrap, measured);
    double measured_s = trace_median_step_s(wrap);
    g_ptr_array_free(wrap, TRUE);
    g_array_free(measured, TRUE);
    fprintf(out,
            "replay (measured durations; launch, stream-order, cross-stream and host-sync "
            "dependencies):\n  median step %.3f ms, measured %.3f ms; error per rank and "
            "step mean %.1f %%, worst %.1f %%\n",
            replay_s * 1e3, measured_s * 1e3, 100 * mean_abs, 100 * max_abs);

    /* what is re-costed: collectives over the whole world, whose group grows with the job */
    int world = set->world_size, recosted = 0, kept = 0;
    guint ni = set->instances->len;
    for (guint i = 0; i < ni; i++) {
        const TraceInstance *in = &g_array_index(set->instances, TraceInstance, i);
        const TraceColl *c =
            &g_array_index(RANK(set, in->first_rank)->colls, TraceColl, in->coll_of_first);
        IrCollKind kind;
        if (c->group_size == world && world > 1 && c->dtype_bytes && trace_coll_ir_kind(c->kind, &kind))
            recosted++;
        else
            kept++;
    }
    fprintf(out,
            "re-costed: %d collective instances over the world group (its size grows with "
            "the job):\n  measured transfer (end - latest arrival) x the NCCL model's time "
            "at N ranks / at %d, on %s;\n  the same nccl-tests size per instance (weak "
            "scaling: the local batch and buckets as traced)\n",
            recosted, world, topo->name);
    fprintf(out,
            "kept as measured: compute kernels, memcpy/memset, host time, each rank's arrival "
            "at collectives\n  (the %u traced ranks stand for all N), %d other collectives "
            "(smaller groups, unknown size or kind)\n",
            set->ranks->len, kept);
    fprintf(out,
            "engine: the step as fsdpsim's schedule, one rank class per traced rank (all "
            "starting the step together),\n  %d collectives of rank %d through the NCCL "
            "model and the flow-level network, %d kept as measured; its makespan\n",
            recosted_ir, RANK(set, 0)->rank, kept_ir);
    fprintf(out, "  %6s %6s %12s %10s %22s %14s\n", "ranks", "nodes", "step (ms)", "vs replay",
            "transfer (ms/step/rank)", "engine (ms)");
    int steps = 0;
    for (guint i = 0; i < set->ranks->len; i++)
        steps += (int)RANK(set, i)->steps->len;
    double *factor = g_new(double, MAX(ni, 1));
    for (int j = -1; j < n_ranks; j++) {
        int n = j < 0 ? world : ranks[j];
        for (guint i = 0; i < ni; i++) {
            const TraceInstance *in = &g_array_index(set->instances, TraceInstance, i);
            const TraceColl *c =
                &g_array_index(RANK(set, in->first_rank)->colls, TraceColl, in->coll_of_first);
            IrCollKind kind;
            uint64_t bytes = (uint64_t)MAX(c->in_nelems, c->out_nelems) * (uint64_t)c->dtype_bytes;
            factor[i] = 1;
            if (c->group_size == world && world > 1 && bytes && trace_coll_ir_kind(c->kind, &kind)) {
                double base = model_s(&model, topo, kind, bytes, world);
                factor[i] = base > 0 ? model_s(&model, topo, kind, bytes, n) / base : 1;
            }
        }
        /* the collectives' transfer time per rank and step, over every instance in a step */
        double transfer_us = 0;
        for (guint ri = 0; ri < set->ranks->len; ri++) {
            const TraceRank *r = RANK(set, ri);
            for (guint ci = 0; ci < r->colls->len; ci++) {
                const TraceColl *c = &g_array_index(r->colls, TraceColl, ci);
                const TraceKernel *k = &g_array_index(r->kernels, TraceKernel, c->kernel);
                const TraceInstance *in =
                    &g_array_index(set->instances, TraceInstance, c->instance);
                if (k->step >= 0)
                    transfer_us += (in->ranks >= 2 ? MAX(0.0, k->end_us - in->latest_start_us)
                                                   : k->end_us - k->start_us) *
                                   factor[c->instance];
            }
        }
        GPtrArray *per_rank = g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);
        trace_replay(set, factor, per_rank);
        double s = trace_median_step_s(per_rank);
        g_ptr_array_free(per_rank, TRUE);
        double engine_s = NAN;
        int rc = 0, kc = 0;
        GError *e = NULL;
        if (!trace_engine_step_s(set, n, topo, &engine_s, &rc, &kc, &e)) {
            if (j >= 0 || e->code != FSD_ERROR_INPUT) { /* a size asked for: checked above */
                g_propagate_error(error, e);
                g_free(factor);
                hw_topology_free(topo);
                return false;
            }
            g_error_free(e); /* the trace's own size, when its ranks do not divide it */
        }
        fprintf(out, "  %6d %6d %12.3f %+9.1f%% %22.3f %14.3f%s\n", n,
                (n + topo->gpus_per_node - 1) / topo->gpus_per_node, s * 1e3,
                100 * (s - replay_s) / replay_s, transfer_us / MAX(steps, 1) * 1e-3, engine_s * 1e3,
                j < 0 ? "  (the trace's own scale)" : "");
    }
    g_free(factor);
    hw_topology_free(topo);
    return true;
}
