/* trace: opening a file, and the dependency inference that the replay (trace_replay.c) and the
 * schedule built from a trace (trace_ir.c) share. Private to src/trace. */
#ifndef FSD_TRACE_DEPS_H
#define FSD_TRACE_DEPS_H

#include "trace.h"

#include <gio/gio.h>

/* FILE as a stream of its JSON: gunzipped when it starts with gzip's magic bytes, whatever its
 * name. Error (FSD_ERROR_INPUT, naming the file) when it cannot be opened. trace_open.c. */
GInputStream *trace_open_stream(const char *file, GError **error);

/* Lags above this are not the cost of the dependency itself (a launch reaches the GPU in ~5-20
 * us, an event in a few: NVIDIA's CUDA C++ Best Practices Guide, "Kernel launch overhead"). */
#define REPLAY_LAG_CAP_US 30.0

/* The rank's activity indices by measured end. */
GArray *trace_by_end(const TraceRank *r);
/* The latest-ending activity with a measured end in [from, to], on a stream other than
 * not_stream (-1: any), or -1. Scans back at most 16 entries past other-stream ones. */
int trace_ended_in(const TraceRank *r, const GArray *by_end, double from, double to,
                   int not_stream);
/* cudaStreamWaitEvent pairs: wait_dep[k] = the activity activity k waits for, or -1. */
void trace_pair_stream_waits(const TraceRank *r, int *wait_dep);

/* An aten operator with recorded shapes: a GEMM (mm, addmm, bmm, baddbmm) or one moving at least
 * 1 MiB of tensors (smaller ones are not kept: bounded memory, and their kernels are latency-
 * bound anyway). trace_shapes.c. */
typedef struct {
    double start_us, end_us;
    int tid;
    bool gemm;
    double m, n, k, batch; /* GEMM: batch x [m x k] . [k x n] */
    const char *dtype;
    double bytes; /* memory-bound: inputs read + the largest written */
} TraceShapeOp;

/* Appends the operator's shapes to ops (of TraceShapeOp); false when it has none usable. */
bool trace_shape_op_read(GArray *ops, const cJSON *e, const char *name, double ts, double dur);
/* Fills r->gemms and r->mems: each GEMM kernel gets the innermost GEMM operator around its launch
 * on its thread, each memory-bound kernel the innermost operator when that launched it alone. */
void trace_shapes_attach(TraceRank *r, GArray *ops);

#endif
