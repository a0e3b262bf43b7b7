/* trace: a topology calibrated from a profiler trace (fsdpsim trace calibrate; see trace.h). */
#include "trace.h"

#include "../coll/coll.h"
#include "../hw/hw.h"
#include "../kern/kern_table.h"
#include "../util/cfg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RANK(set, i) ((const TraceRank *)g_ptr_array_index((set)->ranks, (i)))

static double median(GArray *v)
{
    return cfg_median((double *)v->data, v->len);
}

/* The trace's dtype as the kernel model names it. "float" GEMMs are FP32: PyTorch leaves TF32
 * matmuls off by default since 1.12 (torch.backends.cuda.matmul.allow_tf32, docs "TensorFloat-32
 * (TF32) on Ampere (and later) devices"); a trace cannot tell when a job turned it on. */
static bool model_dtype(const char *dtype, HwDtype *out)
{
    /* fp8 GEMMs in a trace are not calibrated (as before fsdpsim knew fp8): the GPU at hand may
     * have no fp8 peak */
    return dtype && hw_dtype_parse(dtype, out);
}

/* One row per GEMM shape and dtype: the median duration of its kernels. Only GEMM kernels whose
 * host operator recorded its shape (record_shapes=True) count; one kernel per operator (split-K
 * GEMMs that launch two kernels are counted by the GEMM one alone). */
static KernTable *gemm_table(const TraceSet *set, int *kernels)
{
    GHashTable *by_shape = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GPtrArray *durations = g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);
    KernTable *t = g_new0(KernTable, 1);
    t->cls = KERN_GEMM;
    t->rows = g_array_new(FALSE, TRUE, sizeof(KernRow));
    *kernels = 0;
    for (guint i = 0; i < set->ranks->len; i++) {
        const TraceRank *r = RANK(set, i);
        for (guint j = 0; j < r->gemms->len; j++) {
            const TraceGemm *g = &g_array_index(r->gemms, TraceGemm, j);
            const TraceKernel *k = &g_array_index(r->kernels, TraceKernel, g->kernel);
            HwDtype dtype;
            if (!model_dtype(g->dtype, &dtype) || !(k->end_us > k->start_us))
                continue;
            char *key = g_strdup_printf("%s %gx%gx%gx%g", g->dtype, g->batch, g->m, g->n, g->k);
            gpointer row = g_hash_table_lookup(by_shape, key);
            if (!row) {
                /* misaligned (kern.h) when any of its widths is off 16 bytes: the trace
                 * records shapes, not strides, and which two are contiguous depends on the
                 * transposes (a Linear's weight gradient has its features as m and n) */
                bool mis = kern_gemm_misaligned(dtype, g->m, g->n) ||
                           kern_width_misaligned(dtype, g->k);
                KernRow kr = {.shape = {.cls = KERN_GEMM,
                                        .dtype = dtype,
                                        .m = g->m,
                                        .n = g->n,
                                        .k = g->k,
                                        .batch = g->batch,
                                        .misaligned = mis},
                              .label = g_strdup(key)};
                g_array_append_val(t->rows, kr);
                g_ptr_array_add(durations, g_array_new(FALSE, FALSE, sizeof(double)));
                row = GINT_TO_POINTER(t->rows->len);
                g_hash_table_insert(by_shape, key, row);
            } else {
                g_free(key);
            }
            double us = k->end_us - k->start_us;
            g_array_append_val(g_ptr_array_index(durations, GPOINTER_TO_INT(row) - 1), us);
            (*kernels)++;
        }
    }
    for (guint i = 0; i < t->rows->len; i++) {
        KernRow *kr = &g_array_index(t->rows, KernRow, i);
        double flops = 2 * kr->shape.m * kr->shape.n * kr->shape.k * kr->shape.batch;
        kr->measured_tflops = flops / (median(g_ptr_array_index(durations, i)) * 1e-6) / 1e12;
    }
    g_hash_table_destroy(by_shape);
    g_ptr_array_free(durations, TRUE);
    return t;
}

/* The host's cudaLaunchKernel call (what gpu.launch_overhead_us is: hw.h), and for reference
 * the GPU's gap between back-to-back kernels on each rank's busiest compute stream, counted only
 * where the next kernel was launched before the previous one ended (else the gap is the host's). */
static void launch_figures(const TraceSet *set, double *call_us, double *gap_us, int *calls,
                           int *gaps)
{
    GArray *c = g_array_new(FALSE, FALSE, sizeof(double)),
           *g = g_array_new(FALSE, FALSE, sizeof(double));
    for (guint i = 0; i < set->ranks->len; i++) {
        const TraceRank *r = RANK(set, i);
        for (guint j = 0; j < r->launch_call_us->len; j++) {
            double v = g_array_index(r->launch_call_us, float, j);
            g_array_append_val(c, v);
        }
        GHashTable *count = g_hash_table_new(g_direct_hash, g_direct_equal);
        int stream = -1, best = 0;
        for (guint j = 0; j < r->kernels->len; j++) {
            const TraceKernel *k = &g_array_index(r->kernels, TraceKernel, j);
            if (k->cls == TRACE_CLASS_NCCL || k->cls == TRACE_CLASS_MEMCPY)
                continue;
            int n = GPOINTER_TO_INT(g_hash_table_lookup(count, GINT_TO_POINTER(k->stream))) + 1;
            g_hash_table_insert(count, GINT_TO_POINTER(k->stream), GINT_TO_POINTER(n));
            if (n > best)
                best = n, stream = k->stream;
        }
        g_hash_table_destroy(count);
        const TraceKernel *prev = NULL;
        for (guint j = 0; j < r->kernels->len; j++) {
            const TraceKernel *k = &g_array_index(r->kernels, TraceKernel, j);
            if (k->stream != stream || k->cls == TRACE_CLASS_NCCL || k->cls == TRACE_CLASS_MEMCPY)
                continue;
            if (prev && !isnan(k->launch_us) && k->launch_us < prev->end_us &&
                k->start_us >= prev->end_us) {
                double v = k->start_us - prev->end_us;
                g_array_append_val(g, v);
            }
            prev = k;
        }
    }
    *calls = (int)c->len, *gaps = (int)g->len;
    *call_us = median(c), *gap_us = median(g);
    g_array_free(c, TRUE), g_array_free(g, TRUE);
}

static void set_sourced(cJSON *obj, const char *key, double value, const char *source)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "value", value);
    cJSON_AddStringToObject(o, "source", source);
    if (cJSON_HasObjectItem(obj, key))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, o);
    else
        cJSON_AddItemToObject(obj, key, o);
}

bool trace_calibrate(const TraceSet *set, const char *what, const char *topo_file,
                     const char *out_file, FILE *report, GError **error)
{
    HwTopology *topo = hw_topology_load(topo_file, error);
    if (!topo)
        return false;
    cJSON *doc = cfg_parse_file(topo_file, error);
    if (!doc) {
        hw_topology_free(topo);
        return false;
    }
    cJSON *gpu = cJSON_GetObjectItemCaseSensitive(doc, "gpu");
    const TraceRank *r0 = RANK(set, 0);
    fprintf(report, "calibrating %s (%s) from %s: %u ranks, %s\n", topo->name, topo->gpu.name, what,
            set->ranks->len, r0->device[0] ? r0->device : "device not named");
    if (r0->device[0] && !strstr(topo->gpu.name, r0->device) && !strstr(r0->device, topo->gpu.name))
        fprintf(report, "note: the trace ran on %s, the topology describes %s\n", r0->device,
                topo->gpu.name);

    /* launch */
    double call_us, gap_us;
    int calls, gaps;
    launch_figures(set, &call_us, &gap_us, &calls, &gaps);
    fprintf(report,
            "\nlaunch: cudaLaunchKernel on the host, median %.2f us of %d calls (was %.2f "
            "us); GPU gap between back-to-back kernels, ",
            call_us, calls, topo->gpu.launch_overhead_s * 1e6);
    if (gaps)
        fprintf(report, "median %.2f us of %d gaps\n", gap_us, gaps);
    else
        fprintf(report, "none seen (no kernel queued behind another on the compute stream)\n");
    if (calls > 0) {
        char *src = g_strdup_printf("measured from trace %s: median host duration of %d "
                                    "cudaLaunchKernel calls (fsdpsim trace calibrate)",
                                    what, calls);
        set_sourced(gpu, "launch_overhead_us", call_us, src);
        g_free(src);
    }

    /* GEMMs */
    int kernels = 0;
    KernTable *t = gemm_table(set, &kernels);
    fprintf(report, "\nGEMMs: %d kernels with recorded shapes, %u shapes\n", kernels, t->rows->len);
    cJSON *kj = cJSON_GetObjectItemCaseSensitive(gpu, "kernels");
    if (t->rows->len && topo->gpu.kernels.present && kj) {
        double before_abs = 0, after_abs = 0, worst = 0;
        kern_table_error(&topo->gpu, t, &before_abs, &worst);
        kern_table_fit(&topo->gpu, t);
        kern_table_error(&topo->gpu, t, &after_abs, &worst);
        fprintf(report, "  %-28s %12s %12s\n", "shape (dtype batch x m x n x k)", "trace TFLOP/s",
                "model (fit)");
        for (guint i = 0; i < t->rows->len && i < 20; i++) {
            const KernRow *kr = &g_array_index(t->rows, KernRow, i);
            fprintf(report, "  %-28s %12.3f %12.3f\n", kr->label, kr->measured_tflops,
                    kern_row_model_tflops(&topo->gpu, kr));
        }
        if (t->rows->len > 20)
            fprintf(report, "  ... %u more shapes\n", t->rows->len - 20);
        fprintf(report,
                "  kernel model: mean abs. error %.1f %% before the fit, %.1f %% after "
                "(worst %+.1f %%)\n",
                before_abs, after_abs, worst);
        char *src = g_strdup_printf("measured from trace %s: fit of the kernel model to %u GEMM "
                                    "shapes (%d kernels, median duration per shape), mean abs. "
                                    "error %.1f %% (fsdpsim trace calibrate)",
                                    what, t->rows->len, kernels, after_abs);
        set_sourced(kj, "kernel_fixed_us", topo->gpu.kernels.fixed_s * 1e6, src);
        set_sourced(kj, "gemm_k_overhead", topo->gpu.kernels.gemm_k_overhead, src);
        set_sourced(kj, "gemm_small_tile_cost", topo->gpu.kernels.gemm_small_tile_cost, src);
        g_free(src);
    } else {
        fprintf(report, "  not calibrated: %s\n",
                !t->rows->len ? "the trace records no GEMM shapes (profile with "
                                "record_shapes=True)"
                              : "the topology has no gpu.kernels object to fit");
    }
    kern_table_free(t);

    /* memory-bound kernels: the median rate of those moving >= 16 MiB, where HBM bandwidth and
     * not the launch or the tail decides (STREAM-like kernels reach their plateau from a few
     * MiB on: BabelStream's array-size sweeps, UoB-HPC/BabelStream) */
    GArray *rates = g_array_new(FALSE, FALSE, sizeof(double));
    for (guint i = 0; i < set->ranks->len; i++) {
        const TraceRank *r = RANK(set, i);
        for (guint j = 0; j < r->mems->len; j++) {
            const TraceMem *m = &g_array_index(r->mems, TraceMem, j);
            const TraceKernel *k = &g_array_index(r->kernels, TraceKernel, m->kernel);
            if (m->bytes >= 16.0 * 1024 * 1024 && k->end_us > k->start_us) {
                double Bps = m->bytes / ((k->end_us - k->start_us) * 1e-6);
                g_array_append_val(rates, Bps);
            }
        }
    }
    int n_rates = (int)rates->len;
    double rate = median(rates);
    g_array_free(rates, TRUE);
    fprintf(report,
            "\nmemory-bound kernels: %d moving >= 16 MiB (bytes from their operators' "
            "shapes)",
            n_rates);
    if (n_rates && topo->gpu.hbm_Bps > 0) {
        double eff = CLAMP(rate / topo->gpu.hbm_Bps, 0.01, 1.0); /* the range topologies take */
        fprintf(report, ", median %.0f GB/s = %.3f of the HBM peak (was %.3f)\n", rate / 1e9, eff,
                topo->gpu.memory_efficiency);
        char *src = g_strdup_printf("measured from trace %s: median rate of %d memory-bound "
                                    "kernels moving >= 16 MiB (inputs read + output written, "
                                    "from the operators' recorded shapes) over hbm_GBps "
                                    "(fsdpsim trace calibrate)",
                                    what, n_rates);
        set_sourced(gpu, "memory_efficiency", eff, src);
        g_free(src);
    } else {
        fprintf(report, ": not calibrated (profile with record_shapes=True; small tensors are "
                        "latency-bound)\n");
    }

    /* NCCL against the collective model */
    GArray *rows = trace_coll_table(set);
    CollModel model;
    coll_model_analytic_init(&model, topo);
    fprintf(report,
            "\nNCCL: measured busbw against the collective model on %s (ranks packed "
            "onto nodes of %d GPUs):\n",
            topo->name, topo->gpus_per_node);
    fprintf(report, "  %-14s %12s %5s %10s %10s %8s\n", "collective", "size(B)", "group", "trace",
            "model", "error");
    for (guint i = 0; i < rows->len; i++) {
        const TraceCollRow *x = &g_array_index(rows, TraceCollRow, i);
        IrCollKind kind;
        if (!x->size_bytes || x->group_size < 2 || !trace_coll_ir_kind(x->kind, &kind))
            continue;
        int per_node = MIN(x->group_size, topo->gpus_per_node);
        CollShape shape = {kind, x->size_bytes, x->group_size,
                           (x->group_size + topo->gpus_per_node - 1) / topo->gpus_per_node,
                           per_node};
        CollChoice choice;
        double s = model.time_s(&model, &shape, &choice);
        double busbw = (double)x->size_bytes / s / 1e9 * trace_busbw_factor(x->kind, x->group_size);
        fprintf(report, "  %-14s %12" G_GUINT64_FORMAT " %5d %10.2f %10.2f %+7.1f%%\n",
                trace_coll_kind_name(x->kind), x->size_bytes, x->group_size, x->busbw_GBps, busbw,
                x->busbw_GBps > 0 ? 100 * (busbw - x->busbw_GBps) / x->busbw_GBps : 0);
    }
    g_array_free(rows, TRUE);
    fprintf(report, "  (reported, not written: the collective model's figures are link "
                    "bandwidths and NCCL's latencies, which one trace does not separate)\n");

    /* the topology: named as measured, every changed figure with its source */
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc, "name");
    char *new_name =
        g_strdup_printf("%s-from-trace", cJSON_IsString(name) ? name->valuestring : "");
    cJSON_ReplaceItemInObjectCaseSensitive(doc, "name", cJSON_CreateString(new_name));
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(doc, "description");
    char *new_desc = g_strdup_printf("%s Calibrated: launch and GEMM figures measured from trace "
                                     "%s (fsdpsim trace calibrate).",
                                     cJSON_IsString(desc) ? desc->valuestring : "", what);
    if (desc)
        cJSON_ReplaceItemInObjectCaseSensitive(doc, "description", cJSON_CreateString(new_desc));
    else
        cJSON_AddStringToObject(doc, "description", new_desc);
    g_free(new_name), g_free(new_desc);
    char *text = cfg_json_print(doc, true);
    GError *e = NULL;
    bool ok = g_file_set_contents(out_file, text, -1, &e);
    if (!ok) {
        cfg_input_error(error, "option --output: cannot write %s: %s", out_file, e->message);
        g_error_free(e);
    } else {
        fprintf(report, "\nwrote %s\n", out_file);
    }
    cJSON_free(text);
    cJSON_Delete(doc);
    hw_topology_free(topo);
    return ok;
}
