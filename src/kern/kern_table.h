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
} KernTable;

typedef struct {
    HwDtype dtype;
    const char *gpu;    /* keep rows whose gpu column contains this (case-insensitive); NULL all */
    const char *method; /* attention: the method column to keep ("flashattention2") */
    double min_flops;   /* drop GEMM rows of fewer FLOPs (tables read off plots are unreliable at
                         * the smallest sizes) */
} KernTableFilter;

KernTable *kern_table_load(const char *file, const KernTableFilter *filter, GError **error);
/* The implementation an attention table's method column names: flashattention1 FlashAttention
 * v1, anything with "triton" the Triton kernel, else FlashAttention-2 (NULL too). */
KernAttnImpl kern_table_method_impl(const char *method);
void kern_table_free(KernTable *t);

/* The model's TFLOP/s for a row, in the row's FLOP convention. */
double kern_row_model_tflops(const HwGpu *gpu, const KernRow *row);
/* Mean |log(model / measured)| over the rows; also the mean absolute and the worst signed error
 * in percent (+: model faster) when asked. */
double kern_table_error(const HwGpu *gpu, const KernTable *t, double *mean_abs_pct,
                        double *worst_pct);
/* Fits the GEMM figures (kernel_fixed_us, gemm_k_overhead, gemm_small_tile_cost) or the
 * attention figures (attention_efficiency, attention_row_us, or the triton_ or flash1_ pair for
 * those tables) of gpu->kernels to the table. */
void kern_table_fit(HwGpu *gpu, const KernTable *t);

#endif
