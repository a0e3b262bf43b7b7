/* trace: GEMM shapes and memory-bound bytes from the aten operators a trace records with
 * record_shapes=True (see trace_deps.h). */
#include "trace.h"
#include "trace_deps.h"

#include <math.h>
#include <string.h>

static const cJSON *arg(const cJSON *e, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "args"), key);
}

/* aten::mm [[m,k],[k,n]], addmm [bias, [m,k], [k,n]], bmm [[b,m,k],[b,k,n]], baddbmm [C, A, B]:
 * the last two inputs of two or more dimensions are the operands. */
static bool gemm_shape(const cJSON *dims, const cJSON *types, TraceShapeOp *g)
{
    const cJSON *ops[2] = {NULL, NULL};
    int at[2] = {-1, -1}, i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, dims)
    {
        if (cJSON_GetArraySize(d) >= 2)
            ops[0] = ops[1], at[0] = at[1], ops[1] = d, at[1] = i;
        i++;
    }
    if (!ops[0])
        return false;
    int na = cJSON_GetArraySize(ops[0]), nb = cJSON_GetArraySize(ops[1]);
    g->batch = 1;
    for (int j = 0; j + 2 < na; j++)
        g->batch *= cJSON_GetNumberValue(cJSON_GetArrayItem(ops[0], j));
    g->m = cJSON_GetNumberValue(cJSON_GetArrayItem(ops[0], na - 2));
    g->k = cJSON_GetNumberValue(cJSON_GetArrayItem(ops[0], na - 1));
    g->n = cJSON_GetNumberValue(cJSON_GetArrayItem(ops[1], nb - 1));
    const cJSON *t = cJSON_GetArrayItem(types, at[0]);
    if (cJSON_IsString(t))
        trace_dtype_bytes(t->valuestring, &g->dtype);
    return g->m >= 1 && g->n >= 1 && g->k >= 1 && g->batch >= 1 &&
           g->m * g->n * g->k * g->batch < 1e18 && g->dtype;
}

/* Every tensor input's bytes, plus an output the size of the largest (elementwise, norms,
 * optimizer steps write one tensor of their input's shape; in-place ops write it back). */
static double memory_bytes(const cJSON *dims, const cJSON *types)
{
    double sum = 0, largest = 0;
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, dims)
    {
        const cJSON *t = cJSON_GetArrayItem(types, i++);
        const char *name;
        int bytes = cJSON_IsString(t) ? trace_dtype_bytes(t->valuestring, &name) : 0;
        if (!cJSON_IsArray(d) || !cJSON_GetArraySize(d) || !bytes)
            continue;
        double n = 1;
        const cJSON *x;
        cJSON_ArrayForEach(x, d)
        {
            if (!cJSON_IsNumber(x) || x->valuedouble < 0)
                return 0;
            n *= x->valuedouble;
        }
        sum += n * bytes, largest = MAX(largest, n * bytes);
    }
    return isfinite(sum) && sum < 1e15 ? sum + largest : 0;
}

bool trace_shape_op_read(GArray *ops, const cJSON *e, const char *name, double ts, double dur)
{
    const cJSON *dims = arg(e, "Input Dims"), *types = arg(e, "Input type"),
                *tid = cJSON_GetObjectItemCaseSensitive(e, "tid");
    TraceShapeOp op = {
        .start_us = ts, .end_us = ts + dur, .tid = cJSON_IsNumber(tid) ? tid->valueint : 0};
    op.gemm = !strcmp(name, "aten::mm") || !strcmp(name, "aten::addmm") ||
              !strcmp(name, "aten::bmm") || !strcmp(name, "aten::baddbmm");
    if (op.gemm ? !gemm_shape(dims, types, &op)
                : (op.bytes = memory_bytes(dims, types)) < 1024.0 * 1024.0)
        return false;
    g_array_append_val(ops, op);
    return true;
}

static int start_order(const void *a, const void *b)
{
    double x = ((const TraceShapeOp *)a)->start_us, y = ((const TraceShapeOp *)b)->start_us;
    return (x > y) - (x < y);
}

/* The innermost operator of the kind around a launch on its thread: the last one starting at or
 * before it that still runs, among the 64 before it (operators nest a few deep). O(log ops). */
static int around(const GArray *ops, double t, int tid, bool gemm)
{
    int lo = 0, hi = (int)ops->len;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (g_array_index(ops, TraceShapeOp, mid).start_us <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (int i = lo - 1; i >= 0 && i >= lo - 64; i--) {
        const TraceShapeOp *o = &g_array_index(ops, TraceShapeOp, i);
        if (o->tid == tid && o->gemm == gemm && t <= o->end_us)
            return i;
    }
    return -1;
}

void trace_shapes_attach(TraceRank *r, GArray *ops)
{
    g_array_sort(ops, start_order);
    int *op_of = g_new(int, MAX(r->kernels->len, 1)), *launched = g_new0(int, MAX(ops->len, 1));
    for (guint i = 0; i < r->kernels->len; i++) {
        const TraceKernel *k = &g_array_index(r->kernels, TraceKernel, i);
        bool memory_bound = k->cls == TRACE_CLASS_ELEMENTWISE || k->cls == TRACE_CLASS_OTHER ||
                            k->cls == TRACE_CLASS_OPTIMIZER;
        op_of[i] = -1;
        if (isnan(k->launch_us) || (k->cls != TRACE_CLASS_GEMM && !memory_bound))
            continue;
        op_of[i] = around(ops, k->launch_us, k->launch_tid, k->cls == TRACE_CLASS_GEMM);
        if (op_of[i] >= 0)
            launched[op_of[i]]++;
    }
    for (guint i = 0; i < r->kernels->len; i++) {
        if (op_of[i] < 0)
            continue;
        const TraceShapeOp *o = &g_array_index(ops, TraceShapeOp, op_of[i]);
        if (o->gemm) {
            TraceGemm g = {(int)i, o->m, o->n, o->k, o->batch, o->dtype};
            g_array_append_val(r->gemms, g);
        } else if (launched[op_of[i]] == 1) { /* bytes of an operator split over kernels: no */
            TraceMem m = {(int)i, o->bytes};
            g_array_append_val(r->mems, m);
        }
    }
    g_free(op_of), g_free(launched);
}
