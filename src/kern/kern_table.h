/* kern_table: kernel microbenchmark tables against the kernel model (kern.h), and the fit of
 * the model's free figures to them. Used by `fsdpsim kernels`. */
#ifndef FSD_KERN_TABLE_H
#define FSD_KERN_TABLE_H

#include "kern.h"

typedef struct {
    KernShape shape;
    bool fwd_and_bwd; /* attention rows: the rate of forward plus backward */
    double measured_tflops;
    char *label;
} KernRow;

typedef struct {
    KernClass cls; /* KERN_GEMM or KERN_ATTENTION */
    GArray *rows;  /* of KernRow */
    /* timed on a GPU held at its power limit (long warm-up): kern_tables_fit charges its GEMMs
     * at gpu.sustained_gemm_fraction, a cold table's at 1 */
    bool sustained;
    int above_peak; /* rows left out for being above filter->max_tflops */
    /* a table whose level is its own (ml-engineering's d_ff sweep: GPU SKU and clocks not
     * stated): only its rows against each other are read, its misaligned GEMMs against its
     * aligned ones; errors are taken after the aligned rows' mean log error is divided out */
    bool relative;
} KernTable;

typedef struct {
    HwDtype dtype;
    const char *gpu;    /* keep rows whose gpu column contains this (case-insensitive); NULL all */
    const char *method; /* attention: the method column to keep ("flashattention2") */
    double min_flops;   /* drop GEMM rows of fewer FLOPs (tables read off plots are unreliable at
                         * the smallest sizes) */
    double max_tflops;  /* drop GEMM rows measured above this (the GPU's dense peak: XLA's fp8
                         * column has 29 rows above it, which no kernel can do); 0: keep all */
} KernTableFilter;

KernTable *kern_table_load(const char *file, const KernTableFilter *filter, GError **error);
/* The implementation an attention table's method column names: flashattention1 FlashAttention
 * v1, anything with "triton" the Triton kernel, else FlashAttention-2 (NULL too). */
KernAttnImpl kern_table_method_impl(const char *method);
void kern_table_free(KernTable *t);

/* The model's TFLOP/s for a row, in the row's FLOP convention; _in: as its table reads it (a
 * relative table's level divided out). */
double kern_row_model_tflops(const HwGpu *gpu, const KernRow *row);
double kern_row_model_tflops_in(const HwGpu *gpu, const KernTable *t, const KernRow *row);
/* Mean |log(model / measured)| over the rows; also the mean absolute and the worst signed error
 * in percent (+: model faster) when asked. */
double kern_table_error(const HwGpu *gpu, const KernTable *t, double *mean_abs_pct,
                        double *worst_pct);
/* Fits the GEMM figures (kernel_fixed_us, gemm_k_overhead, gemm_small_tile_cost;
 * gemm_misaligned_efficiency alone from a relative table) or the attention figures (attention_efficiency, attention_row_us, or the triton_ or flash1_ pair for
 * those tables) of gpu->kernels to the table. */
void kern_table_fit(HwGpu *gpu, const KernTable *t);
/* The GEMM figures fitted to several GEMM tables at once, each table weighing the same (the mean
 * over tables of each one's mean |log error|); with fit_sustained, gpu->sustained_gemm_fraction
 * too (the level of the sustained tables against the cold ones). Returns that objective. */
double kern_tables_fit(HwGpu *gpu, KernTable *const *tables, int n, bool fit_sustained);
/* kern_table_error for one of kern_tables_fit's tables: its GEMMs at the sustained fraction
 * when the table is sustained, else at 1. */
double kern_table_error_as_timed(const HwGpu *gpu, const KernTable *t, double *mean_abs_pct,
                                 double *worst_pct);

#endif
