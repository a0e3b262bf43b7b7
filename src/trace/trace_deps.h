/* trace: the dependency inference that the replay (trace_replay.c) and the schedule built from a
 * trace (trace_ir.c) share. Private to src/trace. */
#ifndef FSD_TRACE_DEPS_H
#define FSD_TRACE_DEPS_H

#include "trace.h"

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

#endif
