/* trace: kernel classes, collective and dtype spellings (see trace.h). */
#include "trace.h"

#include <string.h>

/* --- classification ------------------------------------------------------------------------ */

static bool has(const char *haystack, const char *needle)
{
    return strstr(haystack, needle) != NULL;
}

TraceClass trace_class_of(const char *name, bool memcpy)
{
    if (memcpy)
        return TRACE_CLASS_MEMCPY;
    char *n = g_ascii_strdown(name, -1);
    TraceClass c = TRACE_CLASS_OTHER;
    /* the order matters: "flash_fwd" kernels contain no "gemm", cutlass GEMMs no "attention" */
    if (has(n, "nccl"))
        c = TRACE_CLASS_NCCL;
    else if (has(n, "flash") || has(n, "fmha") || has(n, "attention") || has(n, "attn") ||
             has(n, "sdpa"))
        c = TRACE_CLASS_ATTENTION;
    else if (has(n, "gemm") || has(n, "gemv") || has(n, "cutlass") || has(n, "cublas") ||
             has(n, "sgemm") || has(n, "hmma") || has(n, "xmma") || has(n, "matmul") ||
             has(n, "s884") || has(n, "s1688") || has(n, "s16816") || has(n, "wgmma"))
        c = TRACE_CLASS_GEMM;
    else if (has(n, "adam") || has(n, "sgd") || has(n, "optimizer") || has(n, "multi_tensor_apply"))
        c = TRACE_CLASS_OPTIMIZER;
    else if (has(n, "elementwise") || has(n, "norm") || has(n, "softmax") || has(n, "reduce") ||
             has(n, "vectorized") || has(n, "gelu") || has(n, "relu") || has(n, "silu") ||
             has(n, "dropout") || has(n, "copy") || has(n, "fill") || has(n, "triton") ||
             has(n, "cat") || has(n, "index"))
        c = TRACE_CLASS_ELEMENTWISE;
    g_free(n);
    return c;
}

int trace_coll_kind_of(const char *text)
{
    /* lower case without separators: "_all_gather_base" and "AllGather" both read "allgatherbase"
     */
    GString *n = g_string_new(NULL);
    for (const char *p = text; *p; p++)
        if (g_ascii_isalnum(*p))
            g_string_append_c(n, g_ascii_tolower(*p));
    static const struct {
        const char *needle;
        TraceCollKind kind;
    } kinds[] = {{"allreduce", TRACE_COLL_ALLREDUCE},
                 {"barrier", TRACE_COLL_ALLREDUCE}, /* NCCL barrier: a 1-element all-reduce */
                 {"allgather", TRACE_COLL_ALLGATHER},
                 {"reducescatter", TRACE_COLL_REDUCE_SCATTER},
                 {"alltoall", TRACE_COLL_ALLTOALL},
                 {"broadcast", TRACE_COLL_BROADCAST},
                 {"sendrecv", TRACE_COLL_SENDRECV},
                 {"send", TRACE_COLL_SENDRECV},
                 {"recv", TRACE_COLL_SENDRECV},
                 {"reduce", TRACE_COLL_REDUCE}};
    int kind = -1;
    for (size_t i = 0; i < G_N_ELEMENTS(kinds) && kind < 0; i++)
        if (has(n->str, kinds[i].needle))
            kind = (int)kinds[i].kind;
    g_string_free(n, TRUE);
    return kind;
}

const char *trace_coll_kind_name(TraceCollKind kind)
{
    static const char *const names[] = {"allreduce", "allgather", "reduce_scatter", "broadcast",
                                        "reduce",    "alltoall",  "sendrecv"};
    return names[kind];
}

const char *trace_class_name(TraceClass cls)
{
    static const char *const names[] = {
        "gemm", "attention", "norm_elementwise", "optimizer", "nccl", "memcpy_memset", "other"};
    return names[cls];
}

int trace_dtype_bytes(const char *text, const char **canonical)
{
    char *n = g_ascii_strdown(text, -1);
    /* the longest names first: "bfloat16" holds "float", "uint8_t" holds "int8";
     * "Float8_e4m3fn" (torchao's float8 all-gathers) holds "float", "ComplexFloat" holds "float"
     * (two of them), "short int" and "UInt16" hold "int": each before the name it holds */
    static const struct {
        const char *needle, *name;
        int bytes;
    } types[] = {{"complexdouble", "complex128", 16},
                 {"complex<double>", "complex128", 16},
                 {"complexhalf", "complex32", 4},
                 {"complex<c10::half>", "complex32", 4},
                 {"complex", "complex64", 8},
                 {"float8", "fp8", 1},
                 {"e4m3", "fp8", 1},
                 {"e5m2", "fp8", 1},
                 {"int16", "int16", 2},
                 {"short", "int16", 2},
                 {"bfloat16", "bf16", 2},
                 {"bf16", "bf16", 2},
                 {"half", "half", 2},
                 {"float16", "half", 2},
                 {"f16", "half", 2},
                 {"double", "double", 8},
                 {"float64", "double", 8},
                 {"float", "float", 4},
                 {"f32", "float", 4},
                 {"int64", "int64", 8},
                 {"long", "int64", 8},
                 {"int32", "int32", 4},
                 {"int8", "int8", 1},
                 {"byte", "int8", 1},
                 {"char", "int8", 1},
                 {"bool", "int8", 1},
                 {"f8", "fp8", 1},
                 {"int", "int32", 4}};
    int bytes = 0;
    *canonical = NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(types) && !bytes; i++)
        if (has(n, types[i].needle))
            bytes = types[i].bytes, *canonical = types[i].name;
    g_free(n);
    return bytes;
}

bool trace_coll_ir_kind(TraceCollKind kind, IrCollKind *out)
{
    switch (kind) {
    case TRACE_COLL_ALLREDUCE:
        return *out = IR_COLL_ALLREDUCE, true;
    case TRACE_COLL_ALLGATHER:
        return *out = IR_COLL_ALLGATHER, true;
    case TRACE_COLL_REDUCE_SCATTER:
        return *out = IR_COLL_REDUCE_SCATTER, true;
    case TRACE_COLL_BROADCAST:
        return *out = IR_COLL_BROADCAST, true;
    case TRACE_COLL_ALLTOALL:
        return *out = IR_COLL_ALLTOALL, true;
    default:
        return false; /* reduce and send/recv: no collective of the schedule */
    }
}
