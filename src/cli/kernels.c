/* fsdpsim kernels --table FILE: a kernel microbenchmark table (GEMM sweep or attention) beside the
 * kernel model of a topology's GPU, row by row, with the error; --fit refits the model's free
 * figures to the table and prints them as the topology's "gpu.kernels" entries. Several GEMM
 * tables (--table and --sustained-table, each given again for more) are fitted together, each
 * weighing the same; a sustained table (timed on a GPU held at its power limit) also fits
 * gpu.sustained_gemm_fraction. */
#include "cli.h"
#include "../kern/kern_table.h"
#include "../util/cfg.h"

#include <math.h>
#include <stdio.h>

static void print_fit(const HwGpu *gpu, KernClass cls, KernAttnImpl impl, const char *table,
                      bool sustained, bool fp8, bool relative)
{
    const HwKernels *k = &gpu->kernels;
    printf("fitted to %s (least mean |log error|); as \"gpu.kernels\" entries:\n", table);
    if (relative) {
        printf("  \"gemm_misaligned_efficiency\": %.3f\n(the table's misaligned rows against its "
               "aligned ones; the other figures kept)\n",
               k->gemm_misaligned_efficiency);
    } else if (cls == KERN_GEMM && fp8) {
        printf("  \"fp8_gemm_k_overhead\": %.0f,\n  \"fp8_gemm_small_tile_cost\": %.0f\n"
               "(kernel_fixed_us %.2f kept: the GPU's, fitted on bf16)\n",
               k->fp8_gemm_k_overhead, k->fp8_gemm_small_tile_cost, k->fixed_s * 1e6);
    } else if (cls == KERN_GEMM) {
        printf("  \"kernel_fixed_us\": %.2f,\n  \"gemm_k_overhead\": %.0f,\n"
               "  \"gemm_small_tile_cost\": %.0f\n",
               k->fixed_s * 1e6, k->gemm_k_overhead, k->gemm_small_tile_cost);
        if (sustained)
            printf("and \"gpu.sustained_gemm_fraction\": %.3f\n", gpu->sustained_gemm_fraction);
    } else if (impl == KERN_ATTN_TRITON) {
        printf("  \"triton_attention_efficiency\": %.3f,\n  \"triton_attention_row_us\": %.2f\n",
               k->triton_attention_efficiency, k->triton_attention_row_s * 1e6);
    } else if (impl == KERN_ATTN_FLASH1) {
        printf("  \"flash1_attention_efficiency\": %.3f,\n  \"flash1_attention_row_us\": %.2f\n",
               k->flash1_attention_efficiency, k->flash1_attention_row_s * 1e6);
    } else {
        printf("  \"attention_efficiency\": %.3f,\n  \"attention_row_us\": %.2f\n",
               k->attention_efficiency, k->attention_row_s * 1e6);
    }
}

/* One table's rows (unless quiet) and summary, its GEMMs at the sustained fraction if it is a
 * sustained table (or --sustained), else at 1. */
static void print_table(const HwGpu *gpu, const KernTable *t, const char *file, HwDtype dtype,
                        bool quiet)
{
    HwGpu g = *gpu;
    if (!t->sustained)
        g.sustained_gemm_fraction = 1;
    printf("%s: %s, %u rows, %s, against the kernel model of %s (%s%s%s)\n", file,
           t->cls == KERN_GEMM ? "GEMM" : "attention", t->rows->len, hw_dtype_name(dtype), g.name,
           g.kernels.present ? "shape-aware" : "best-shape rate only",
           t->sustained && t->cls == KERN_GEMM ? ", GEMMs at the sustained fraction" : "",
           t->relative ? "; a relative table: the model at the level of its aligned rows" : "");
    if (t->above_peak > 0)
        printf("(%d rows above the dense %s peak of %.0f TFLOP/s left out)\n", t->above_peak,
               hw_dtype_name(dtype), gpu->peak_flops[dtype] / 1e12);
    if (!quiet) {
        printf("%-28s %10s %10s %8s\n", "shape", "measured", "model", "error");
        for (guint i = 0; i < t->rows->len; i++) {
            const KernRow *r = &g_array_index(t->rows, KernRow, i);
            double model = kern_row_model_tflops_in(&g, t, r);
            printf("%-28s %10.1f %10.1f %+7.1f%%\n", r->label, r->measured_tflops, model,
                   100 * (model / r->measured_tflops - 1));
        }
    }
    double mae = 0, worst = 0;
    kern_table_error(&g, t, &mae, &worst);
    printf("mean absolute error %.1f %%, worst %+.1f %% (TFLOP/s; + = model faster)\n", mae, worst);
}

int cli_kernels(int argc, char **argv)
{
    char *topology = NULL, *dtype_text = NULL, *gpu_filter = NULL, *method = NULL;
    char **tables = NULL, **sustained_tables = NULL;
    gboolean fit = FALSE, quiet = FALSE, sustained = FALSE;
    double min_gflop = 0;
    GOptionEntry entries[] = {
        {"topology", 't', 0, G_OPTION_ARG_FILENAME, &topology,
         "Topology whose GPU to model, a file or a shipped name "
         "[topologies/juwels-booster.json]", "FILE|NAME"},
        {"table", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &tables,
         "Microbenchmark table (tab-separated; GEMM or attention columns, see "
         "src/kern/kern_table.c); again for more GEMM tables, fitted together",
         "FILE"},
        {"sustained-table", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &sustained_tables,
         "A GEMM table timed on a GPU held at its power limit (a long warm-up): its GEMMs at the "
         "topology's sustained_gemm_fraction, which --fit then fits too",
         "FILE"},
        {"dtype", 0, 0, G_OPTION_ARG_STRING, &dtype_text,
         "bf16, fp16, tf32, fp32 or fp8 (fp8_e4m3 rows; fits fp8's own figures) [bf16]", "DTYPE"},
        {"gpu", 0, 0, G_OPTION_ARG_STRING, &gpu_filter,
         "Only rows whose gpu column contains TEXT (e.g. A100; 'A100-SXM4|A100 SXM': any of "
         "them); a table without one keeps all",
         "TEXT"},
        {"method", 0, 0, G_OPTION_ARG_STRING, &method,
         "Attention tables: the method column to keep [flashattention2]", "NAME"},
        {"min-gflop", 0, 0, G_OPTION_ARG_DOUBLE, &min_gflop,
         "GEMM tables: leave out rows of fewer GFLOP (the smallest sizes of plots read by eye)",
         "X"},
        {"sustained", 0, 0, G_OPTION_ARG_NONE, &sustained,
         "Every table's GEMMs at the topology's sustained_gemm_fraction, as for tables timed on a "
         "GPU held at its power limit [off: microbenchmarks time cold bursts]",
         NULL},
        {"fit", 0, 0, G_OPTION_ARG_NONE, &fit,
         "Refit the model's free figures to the tables and print them", NULL},
        {"summary", 0, 0, G_OPTION_ARG_NONE, &quiet, "Print only the error summary", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GError *error = NULL;
    HwTopology *topo = NULL;
    GPtrArray *loaded = g_ptr_array_new_with_free_func((GDestroyNotify)kern_table_free);
    GPtrArray *names = g_ptr_array_new();
    int status = 0;
    if (!cli_parse("- kernel microbenchmark tables beside the kernel model",
                   "Each row: the shape, the measured TFLOP/s, the model's, and the error (+: the "
                   "model is faster).",
                   NULL, entries, argc, argv, &error))
        goto out;
    HwDtype dtype = HW_DTYPE_BF16;
    if (dtype_text && !hw_gemm_dtype_parse(dtype_text, &dtype)) {
        cfg_input_error(&error, "option --dtype: expected bf16, fp16, tf32, fp32 or fp8, got '%s'",
                        dtype_text);
        goto out;
    }
    if (!(min_gflop >= 0 && min_gflop < 1e12)) {
        cfg_input_error(&error, "option --min-gflop: expected a number of GFLOP >= 0, got %g",
                        min_gflop);
        goto out;
    }
    if (!tables && !sustained_tables) {
        cfg_input_error(&error, "option --table: required (a GEMM or attention table, e.g. "
                                "../shared/data/kernels/gemm_h100_xla_perf_table.tsv)");
        goto out;
    }
    char *topo_file = NULL; /* a path or a shipped name: -t jusuf */
    if (topology && !cli_data_file("topology", "topologies", topology, &topo_file, &error))
        goto out;
    if (!topo_file)
        topo_file = cli_default_path("topologies/juwels-booster.json");
    topo = hw_topology_load(topo_file, &error);
    g_free(topo_file);
    if (!topo)
        goto out;
    if (dtype == HW_DTYPE_FP8 && !(topo->gpu.peak_flops[HW_DTYPE_FP8] > 0)) {
        cfg_input_error(&error,
                        "option --dtype fp8: %s's GPU (%s) has no fp8 tensor cores; expected a "
                        "topology with gpu.peak_tflops_fp8 (Hopper: H100, H200, GH200)",
                        topo->name, topo->gpu.name);
        goto out;
    }
    /* rows above the dense peak are impossible (a timing that missed part of the work): left
     * out, and said so */
    KernTableFilter filter = {dtype, gpu_filter, method, min_gflop * 1e9,
                              topo->gpu.peak_flops[dtype] / 1e12};
    for (int pass = 0; pass < 2; pass++) {
        char **files = pass == 0 ? tables : sustained_tables;
        for (int i = 0; files && files[i]; i++) {
            KernTable *t = kern_table_load(files[i], &filter, &error);
            if (!t)
                goto out;
            t->sustained = pass == 1 || sustained;
            g_ptr_array_add(loaded, t);
            g_ptr_array_add(names, files[i]);
        }
    }
    int n = (int)loaded->len;
    KernTable **ts = (KernTable **)loaded->pdata;
    for (int i = 0; i < n && n > 1; i++)
        if (ts[i]->cls != KERN_GEMM) {
            cfg_input_error(&error, "%s: several tables are fitted together only when all are "
                                    "GEMM tables; give an attention table alone",
                            (const char *)names->pdata[i]);
            goto out;
        }
    HwGpu gpu = topo->gpu;
    if (fit) {
        if (!gpu.kernels.present) {
            cfg_input_error(&error,
                            "%s: field 'gpu.kernels': --fit needs a starting table "
                            "(sm_count and the other figures)",
                            topo->file);
            goto out;
        }
        for (int i = 0; i < n && n > 1; i++)
            if (ts[i]->relative) {
                cfg_input_error(&error,
                                "%s: a relative table (a d_ff sweep: its misaligned GEMMs "
                                "against its aligned ones) is fitted alone; give it as the "
                                "only --table",
                                (const char *)names->pdata[i]);
                goto out;
            }
        if (n == 1 && !sustained_tables) {
            if (!sustained) /* a cold table: fitted with GEMMs at the cold rate */
                gpu.sustained_gemm_fraction = 1;
            kern_table_fit(&gpu, ts[0]);
        } else {
            kern_tables_fit(&gpu, ts, n, sustained_tables != NULL);
        }
    }
    for (int i = 0; i < n; i++)
        print_table(&gpu, ts[i], names->pdata[i], dtype, quiet);
    if (n > 1) {
        double sum = 0;
        for (int i = 0; i < n; i++) {
            double mae = 0;
            kern_table_error_as_timed(&gpu, ts[i], &mae, NULL);
            sum += mae;
        }
        printf("mean over the %d tables of their mean absolute errors: %.1f %%\n", n, sum / n);
    }
    if (fit) {
        GString *all = g_string_new(NULL);
        for (int i = 0; i < n; i++)
            g_string_append_printf(all, "%s%s", i ? " and " : "", (const char *)names->pdata[i]);
        print_fit(&gpu, ts[0]->cls, kern_table_method_impl(method), all->str,
                  sustained_tables != NULL, dtype == HW_DTYPE_FP8, ts[0]->relative);
        g_string_free(all, TRUE);
    }
out:
    if (error)
        status = cli_report_error(error);
    g_ptr_array_free(loaded, TRUE);
    g_ptr_array_free(names, TRUE);
    hw_topology_free(topo);
    g_free(topology), g_free(dtype_text), g_free(gpu_filter), g_free(method);
    g_strfreev(tables), g_strfreev(sustained_tables);
    return status;
}
