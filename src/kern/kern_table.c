/* kern_table: microbenchmark tables (the .tsv files of shared/data/kernels, or a user's own in the
 * same columns) against the kernel model, and a least-log-error fit of the model's free figures.
 *
 * Formats read (tab-separated, '#' comment lines, then a header):
 *  - GEMM: columns m, n, k (b or batch optional, default 1) and a TFLOP/s column, either `tflops`
 *    (with a `dtype` column, and `gpu` to filter on) or one per dtype (`tflops_bf16`,
 *    `tflops_f32` = TF32 tensor cores, `tflops_fp16_bf16`, `tflops_tf32`); or `m_eq_n_eq_k` for
 *    square sweeps; or ml-engineering's MAMF table: `best_shape_MxNxK` ("1024x10240x5120") and
 *    `mamf_tflops`, with `dtype` and `gpu`.
 *    The layout of these GEMMs is not stated, so none is taken as misaligned (kern.h).
 *  - ml-engineering's SwiGLU d_ff sweep (swiglu-maf-bench.py): columns d_ff and tflops, fp16
 *    torch.bmm of 4 x [4096 x d_ff] . [d_ff x 4096], row-major, so d_ff is K and the contiguous
 *    dimension of the first operand: misaligned where d_ff is not a multiple of 8 elements. A
 *    relative table (KernTable.relative).
 *  - attention: columns gpu, pass (fwd, fwd+bwd), causal, head_dim, seqlen, batch, n_heads,
 *    method, tflops, with FLOPs counted as 4 b s^2 h d forward, halved when causal, backward 2.5x.
 * Rows without a number (NA, OOM) are skipped. */
#include "kern_table.h"

#include "../util/cfg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void kern_table_free(KernTable *t)
{
    if (!t)
        return;
    for (guint i = 0; t->rows && i < t->rows->len; i++)
        g_free(g_array_index(t->rows, KernRow, i).label);
    if (t->rows)
        g_array_free(t->rows, TRUE);
    g_free(t);
}

static int column(char **header, const char *name)
{
    for (int i = 0; header[i]; i++)
        if (strcmp(g_strstrip(header[i]), name) == 0)
            return i;
    return -1;
}

static bool number(char **cells, int n_cells, int col, double *out)
{
    if (col < 0 || col >= n_cells)
        return false;
    char *end = NULL;
    double v = g_ascii_strtod(cells[col], &end);
    if (end == cells[col] || !isfinite(v) || v <= 0)
        return false;
    *out = v;
    return true;
}

static const char *cell(char **cells, int n_cells, int col)
{
    return col >= 0 && col < n_cells ? cells[col] : "";
}

/* The TFLOP/s column of `dtype` in a GEMM table, or -1. */
static int gemm_rate_column(char **header, HwDtype dtype, bool *by_row)
{
    *by_row = false;
    if (column(header, "best_shape_MxNxK") >= 0) {
        *by_row = true;
        return column(header, "mamf_tflops");
    }
    const char *names[4] = {NULL, NULL, NULL, NULL};
    if (dtype == HW_DTYPE_BF16 || dtype == HW_DTYPE_FP16) {
        names[0] = "tflops_bf16", names[1] = "tflops_fp16_bf16", names[2] = "tflops_fp16";
    } else if (dtype == HW_DTYPE_TF32) {
        names[0] = "tflops_tf32", names[1] = "tflops_f32";
    } else if (dtype == HW_DTYPE_FP8) {
        names[0] = "tflops_fp8_e4m3", names[1] = "tflops_fp8";
    } else {
        names[0] = "tflops_fp32";
    }
    for (int i = 0; names[i]; i++) {
        int c = column(header, names[i]);
        if (c >= 0)
            return c;
    }
    int c = column(header, "tflops");
    *by_row = c >= 0;
    return c;
}

static bool dtype_matches(const char *text, HwDtype dtype)
{
    HwDtype d;
    if (hw_gemm_dtype_parse(text, &d))
        return d == dtype || (d == HW_DTYPE_FP16 && dtype == HW_DTYPE_BF16) ||
               (d == HW_DTYPE_BF16 && dtype == HW_DTYPE_FP16);
    return false;
}

/* hay contains needle, or one of needle's '|'-separated alternatives ("A100-SXM4|A100 SXM") */
static bool contains_ci(const char *hay, const char *needle)
{
    if (!needle || !*needle)
        return true;
    char *h = g_ascii_strdown(hay, -1), *n = g_ascii_strdown(needle, -1);
    char **alternatives = g_strsplit(n, "|", -1);
    bool found = false;
    for (int i = 0; alternatives[i] && !found; i++)
        found = *alternatives[i] && strstr(h, alternatives[i]) != NULL;
    g_strfreev(alternatives);
    g_free(h), g_free(n);
    return found;
}

/* "MxNxK" (the MAMF table's best shape) into m, n, k */
static bool shape_mnk(const char *text, KernShape *s)
{
    double v[3];
    const char *p = text;
    for (int i = 0; i < 3; i++) {
        char *end = NULL;
        v[i] = g_ascii_strtod(p, &end);
        if (end == p || !(v[i] >= 1) || (i < 2 && *end != 'x') || (i == 2 && *end))
            return false;
        p = end + 1;
    }
    s->m = v[0], s->n = v[1], s->k = v[2];
    return true;
}

KernAttnImpl kern_table_method_impl(const char *method)
{
    if (method && strcmp(method, "flashattention1") == 0)
        return KERN_ATTN_FLASH1;
    return method && strstr(method, "triton") ? KERN_ATTN_TRITON : KERN_ATTN_FLASH2;
}

KernTable *kern_table_load(const char *file, const KernTableFilter *filter, GError **error)
{
    char *text = NULL;
    GError *io = NULL;
    if (!g_file_get_contents(file, &text, NULL, &io)) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT, "%s: %s", file, io->message);
        g_error_free(io);
        return NULL;
    }
    char **lines = g_strsplit(text, "\n", -1);
    g_free(text);
    char **header = NULL;
    KernTable *t = g_new0(KernTable, 1);
    t->rows = g_array_new(FALSE, TRUE, sizeof(KernRow));
    int cm = -1, cn = -1, ck = -1, cb = -1, csq = -1, cbest = -1, crate = -1, cdtype = -1;
    int cdff = -1;
    int cgpu = -1;
    int cpass = -1, ccausal = -1, cd = -1, cs = -1, cheads = -1, cmethod = -1;
    bool by_row = false;
    for (int li = 0; lines[li]; li++) {
        char *line = lines[li];
        if (!*g_strstrip(line) || line[0] == '#')
            continue;
        char **cells = g_strsplit(line, "\t", -1);
        int n_cells = (int)g_strv_length(cells);
        if (!header) {
            header = cells;
            cm = column(header, "m"), cn = column(header, "n"), ck = column(header, "k");
            cb = column(header, "b");
            if (cb < 0)
                cb = column(header, "batch");
            csq = column(header, "m_eq_n_eq_k");
            cdff = column(header, "d_ff");
            cbest = column(header, "best_shape_MxNxK");
            cgpu = column(header, "gpu"), cdtype = column(header, "dtype");
            cpass = column(header, "pass"), ccausal = column(header, "causal");
            cd = column(header, "head_dim"), cs = column(header, "seqlen");
            cheads = column(header, "n_heads"), cmethod = column(header, "method");
            if (cs >= 0 && cd >= 0 && cheads >= 0) {
                t->cls = KERN_ATTENTION;
                /* fp8 attention kernels (FA3's fp8 path) are not modelled: their rows would be
                 * costed at the fp8 peak with bf16's attention efficiency */
                crate = filter->dtype == HW_DTYPE_FP8 ? -1 : column(header, "tflops");
            } else if (cdff >= 0) {
                t->cls = KERN_GEMM;
                t->relative = true;
                /* the sweep is fp16 (its TFLOP/s column has no dtype) */
                crate = filter->dtype == HW_DTYPE_FP16 || filter->dtype == HW_DTYPE_BF16
                            ? column(header, "tflops")
                            : -1;
            } else if ((cm >= 0 && cn >= 0 && ck >= 0) || csq >= 0 || cbest >= 0) {
                t->cls = KERN_GEMM;
                crate = gemm_rate_column(header, filter->dtype, &by_row);
            } else {
                crate = -1;
            }
            if (crate < 0) {
                if (t->cls == KERN_ATTENTION)
                    g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                                "%s: an attention table with --dtype fp8: the tool models "
                                "attention in bf16/fp16 only (fp8 applies to GEMMs); expected "
                                "--dtype bf16 or fp16",
                                file);
                else if (cdff >= 0)
                    g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                                "%s: a d_ff sweep (fp16 torch.bmm) with --dtype %s; expected "
                                "--dtype fp16 or bf16",
                                file, hw_dtype_name(filter->dtype));
                else
                    g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                                "%s: header: expected GEMM columns (m, n, k, m_eq_n_eq_k or "
                                "best_shape_MxNxK, and a tflops column for %s) or attention "
                                "columns (seqlen, head_dim, n_heads, tflops)",
                                file, hw_dtype_name(filter->dtype));
                g_strfreev(lines);
                g_strfreev(header);
                kern_table_free(t);
                return NULL;
            }
            continue;
        }
        KernRow row = {.shape = {.cls = t->cls, .dtype = filter->dtype}};
        bool keep = number(cells, n_cells, crate, &row.measured_tflops) &&
                    (cgpu < 0 || contains_ci(cell(cells, n_cells, cgpu), filter->gpu));
        if (keep && t->cls == KERN_GEMM) {
            KernShape *s = &row.shape;
            s->batch = 1;
            if (cb >= 0)
                number(cells, n_cells, cb, &s->batch);
            if (cdff >= 0) {
                keep = number(cells, n_cells, cdff, &s->k);
                s->batch = 4, s->m = s->n = 4096;
                s->misaligned = kern_gemm_misaligned(s->dtype, s->k, s->n);
            } else if (csq >= 0) {
                keep = number(cells, n_cells, csq, &s->m);
                s->n = s->k = s->m;
            } else if (cbest >= 0) {
                keep = shape_mnk(cell(cells, n_cells, cbest), s);
            } else {
                keep = number(cells, n_cells, cm, &s->m) && number(cells, n_cells, cn, &s->n) &&
                       number(cells, n_cells, ck, &s->k);
            }
            keep = keep && 2 * s->m * s->n * s->k * s->batch >= filter->min_flops;
            if (keep && by_row && cdtype >= 0)
                keep = dtype_matches(cell(cells, n_cells, cdtype), filter->dtype);
            if (keep)
                row.label = g_strdup_printf("%gx%gx%gx%g%s", s->batch, s->m, s->n, s->k,
                                            s->misaligned ? " misaligned" : "");
        } else if (keep) {
            KernShape *s = &row.shape;
            const char *pass = cell(cells, n_cells, cpass);
            double causal = 0;
            number(cells, n_cells, ccausal, &causal);
            s->causal = causal > 0;
            keep =
                (strcmp(pass, "fwd") == 0 || strcmp(pass, "fwd+bwd") == 0) &&
                strcmp(cell(cells, n_cells, cmethod),
                       filter->method ? filter->method : "flashattention2") == 0 &&
                number(cells, n_cells, cd, &s->head_dim) && number(cells, n_cells, cs, &s->seq) &&
                number(cells, n_cells, cheads, &s->heads) && number(cells, n_cells, cb, &s->batch);
            row.fwd_and_bwd = strcmp(pass, "fwd+bwd") == 0;
            s->impl = kern_table_method_impl(filter->method);
            if (keep)
                row.label = g_strdup_printf("%s d=%g s=%g%s", pass, s->head_dim, s->seq,
                                            s->causal ? " causal" : "");
        }
        if (keep && t->cls == KERN_GEMM && filter->max_tflops > 0 &&
            row.measured_tflops > filter->max_tflops) {
            keep = false, t->above_peak++;
            g_free(row.label);
        }
        if (keep)
            g_array_append_val(t->rows, row);
        g_strfreev(cells);
    }
    g_strfreev(lines);
    g_strfreev(header);
    /* a relative table is read through its aligned rows against its misaligned ones: it needs
     * both (the peak filter can drop one kind: the sweep's aligned rows are above an A100's) */
    int misaligned = 0;
    for (guint i = 0; t->relative && i < t->rows->len; i++)
        misaligned += g_array_index(t->rows, KernRow, i).shape.misaligned;
    if (t->relative && t->rows->len > 0 && (misaligned == 0 || misaligned == (int)t->rows->len)) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "%s: a d_ff sweep is read as its misaligned rows against its aligned ones, "
                    "and %u of its rows kept (%d above the GPU's dense peak left out) are all %s; "
                    "expected both kinds (a topology of the GPU the sweep ran on)",
                    file, t->rows->len, t->above_peak, misaligned ? "misaligned" : "aligned");
        kern_table_free(t);
        return NULL;
    }
    if (t->rows->len == 0) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "%s: no row matches (dtype %s%s%s%s%s): check --dtype, --gpu and --method",
                    file, hw_dtype_name(filter->dtype), filter->gpu ? ", gpu containing " : "",
                    filter->gpu ? filter->gpu : "", filter->method ? ", method " : "",
                    filter->method ? filter->method : "");
        kern_table_free(t);
        return NULL;
    }
    return t;
}

double kern_row_model_tflops(const HwGpu *gpu, const KernRow *row)
{
    const KernShape *s = &row->shape;
    double flops, time_s;
    if (s->cls == KERN_GEMM) {
        flops = 2 * s->m * s->n * s->k * s->batch;
        time_s = kern_time_s(gpu, s);
    } else {
        KernShape bwd = *s;
        bwd.backward = true;
        double fwd_flops =
            4 * s->batch * s->heads * s->seq * s->seq * s->head_dim * (s->causal ? 0.5 : 1);
        flops = fwd_flops * (row->fwd_and_bwd ? 3.5 : 1);
        time_s = kern_time_s(gpu, s) + (row->fwd_and_bwd ? kern_time_s(gpu, &bwd) : 0);
    }
    return time_s > 0 ? flops / time_s / 1e12 : 0;
}

/* A relative table's level: the mean log(model / measured) of its aligned rows (0 for others). */
static double table_level(const HwGpu *gpu, const KernTable *t)
{
    double sum = 0;
    int n = 0;
    for (guint i = 0; t->relative && i < t->rows->len; i++) {
        const KernRow *r = &g_array_index(t->rows, KernRow, i);
        if (!r->shape.misaligned)
            sum += log(kern_row_model_tflops(gpu, r) / r->measured_tflops), n++;
    }
    return n > 0 ? sum / n : 0;
}

double kern_row_model_tflops_in(const HwGpu *gpu, const KernTable *t, const KernRow *row)
{
    return kern_row_model_tflops(gpu, row) / exp(table_level(gpu, t));
}

double kern_table_error(const HwGpu *gpu, const KernTable *t, double *mean_abs_pct,
                        double *worst_pct)
{
    double log_sum = 0, abs_sum = 0, worst = 0, level = exp(table_level(gpu, t));
    for (guint i = 0; i < t->rows->len; i++) {
        const KernRow *r = &g_array_index(t->rows, KernRow, i);
        double model = kern_row_model_tflops(gpu, r) / level;
        double err = model / r->measured_tflops - 1;
        log_sum += fabs(log(model / r->measured_tflops));
        abs_sum += fabs(err);
        if (fabs(err) > fabs(worst))
            worst = err;
    }
    if (mean_abs_pct)
        *mean_abs_pct = 100 * abs_sum / t->rows->len;
    if (worst_pct)
        *worst_pct = 100 * worst;
    return log_sum / t->rows->len;
}

/* Coordinate grid search: each figure over its grid with the others fixed, three rounds. The
 * objective (mean |log(model / measured)|) is cheap: a few hundred rows x 24 tile candidates. */
typedef struct {
    double *value;
    double lo, hi, step;
} Knob;

/* What a fit minimises: one table's error (kern_table_fit) or several tables' mean
 * (kern_tables_fit). */
typedef struct {
    const KernTable *const *tables;
    int n;
    bool as_timed; /* each table at its own timing (kern_table_error_as_timed) */
} FitTables;

static double fit_error(const HwGpu *gpu, const FitTables *f);

static void fit_knobs(HwGpu *gpu, const FitTables *f, Knob *knobs, int n)
{
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < n; i++) {
            double best_v = *knobs[i].value, best = fit_error(gpu, f);
            for (double v = knobs[i].lo; v <= knobs[i].hi + 1e-12; v += knobs[i].step) {
                *knobs[i].value = v;
                double e = fit_error(gpu, f);
                if (e < best - 1e-12)
                    best = e, best_v = v;
            }
            *knobs[i].value = best_v;
        }
    }
}

double kern_table_error_as_timed(const HwGpu *gpu, const KernTable *t, double *mean_abs_pct,
                                 double *worst_pct)
{
    HwGpu g = *gpu;
    if (!t->sustained)
        g.sustained_gemm_fraction = 1;
    return kern_table_error(&g, t, mean_abs_pct, worst_pct);
}

static double fit_error(const HwGpu *gpu, const FitTables *f)
{
    if (!f->as_timed)
        return kern_table_error(gpu, f->tables[0], NULL, NULL);
    double sum = 0;
    for (int i = 0; i < f->n; i++)
        sum += kern_table_error_as_timed(gpu, f->tables[i], NULL, NULL);
    return sum / f->n;
}

double kern_tables_fit(HwGpu *gpu, KernTable *const *tables, int n, bool fit_sustained)
{
    HwKernels *k = &gpu->kernels;
    k->present = true;
    /* fp8 tables fit fp8's own K-overhead and small-tile cost only: kernel_fixed_us (launch,
     * ramp, tail) and the sustained fraction are the GPU's, fitted on its bf16 tables */
    bool fp8 = n > 0 && g_array_index(tables[0]->rows, KernRow, 0).shape.dtype == HW_DTYPE_FP8;
    if (fp8) {
        fit_sustained = false;
        if (k->fp8_gemm_small_tile_cost < 0)
            k->fp8_gemm_small_tile_cost = k->gemm_small_tile_cost;
    }
    bool any_sustained = fit_sustained;
    if (any_sustained && !(gpu->sustained_gemm_fraction > 0))
        gpu->sustained_gemm_fraction = 1;
    /* The K-overhead trades against the small-tile cost and the fixed time (all three slow
     * small GEMMs), so coordinate descent from one start stalls in a local minimum: each value
     * of its grid is a start, the others descended from there, the best kept. 65 starts x 3
     * rounds x ~130 values x the rows x 24 tilings: well under a second for a few hundred rows. */
    Knob knobs[] = {
        {&gpu->sustained_gemm_fraction, 0.8, 1.0, 0.005},
        {&k->fixed_s, 0, 10e-6, 0.25e-6},
        {&k->gemm_small_tile_cost, 0, 200, 4},
    };
    if (fp8) /* fixed_s kept: both remaining slots fit fp8's small-tile cost */
        knobs[1] = knobs[2] = (Knob){&k->fp8_gemm_small_tile_cost, 0, 200, 4};
    HwGpu best_gpu = *gpu;
    double best = INFINITY;
    const FitTables all = {(const KernTable *const *)tables, n, true}; /* const added */
    for (double kov = 0; kov <= 512 + 1e-9; kov += 8) {
        HwGpu g = *gpu;
        *(fp8 ? &g.kernels.fp8_gemm_k_overhead : &g.kernels.gemm_k_overhead) = kov;
        Knob local[G_N_ELEMENTS(knobs)];
        for (size_t i = 0; i < G_N_ELEMENTS(knobs); i++) {
            local[i] = knobs[i];
            /* the same field of the copy */
            local[i].value = (double *)((char *)&g + ((char *)knobs[i].value - (char *)gpu));
        }
        fit_knobs(&g, &all, any_sustained ? local : local + 1,
                  (int)G_N_ELEMENTS(local) - (any_sustained ? 0 : 1));
        double e = fit_error(&g, &all);
        if (e < best - 1e-12)
            best = e, best_gpu = g;
    }
    *gpu = best_gpu;
    return best;
}

void kern_table_fit(HwGpu *gpu, const KernTable *t)
{
    const KernTable *one[1] = {t};
    const FitTables f = {one, 1, false};
    HwKernels *k = &gpu->kernels;
    k->present = true;
    if (t->relative) {
        /* its misaligned rows against its aligned ones: the one figure they show */
        Knob knobs[] = {{&k->gemm_misaligned_efficiency, 0.2, 1.0, 0.005}};
        fit_knobs(gpu, &f, knobs, G_N_ELEMENTS(knobs));
    } else if (t->cls == KERN_GEMM &&
               g_array_index(t->rows, KernRow, 0).shape.dtype == HW_DTYPE_FP8) {
        /* fp8's own tile figures; kernel_fixed_us is the GPU's (fitted on bf16) */
        if (k->fp8_gemm_k_overhead < 0)
            k->fp8_gemm_k_overhead = k->gemm_k_overhead;
        if (k->fp8_gemm_small_tile_cost < 0)
            k->fp8_gemm_small_tile_cost = k->gemm_small_tile_cost;
        Knob knobs[] = {
            {&k->fp8_gemm_k_overhead, 0, 512, 8},
            {&k->fp8_gemm_small_tile_cost, 0, 200, 4},
        };
        fit_knobs(gpu, &f, knobs, G_N_ELEMENTS(knobs));
    } else if (t->cls == KERN_GEMM) {
        Knob knobs[] = {
            {&k->fixed_s, 0, 10e-6, 0.25e-6},
            {&k->gemm_k_overhead, 0, 512, 8},
            {&k->gemm_small_tile_cost, 0, 200, 4},
        };
        fit_knobs(gpu, &f, knobs, G_N_ELEMENTS(knobs));
    } else {
        /* each implementation's own pair, started from FlashAttention-2's */
        KernAttnImpl impl = g_array_index(t->rows, KernRow, 0).shape.impl;
        double *eff = &k->attention_efficiency, *row = &k->attention_row_s;
        if (impl == KERN_ATTN_TRITON)
            eff = &k->triton_attention_efficiency, row = &k->triton_attention_row_s;
        else if (impl == KERN_ATTN_FLASH1)
            eff = &k->flash1_attention_efficiency, row = &k->flash1_attention_row_s;
        if (*eff <= 0)
            *eff = k->attention_efficiency, *row = k->attention_row_s;
        Knob knobs[] = {
            {eff, 0.1, 1.0, 0.005},
            {row, 0, 30e-6, 0.1e-6},
        };
        fit_knobs(gpu, &f, knobs, G_N_ELEMENTS(knobs));
    }
}
