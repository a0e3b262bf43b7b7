/* coll/nvls: NVLS and NVLSTree (NVLink SHARP inside a node; NVLSTree: and a tree of NICs between
 * nodes), the part of the analytic model (coll.c) that belongs to them. Private to src/coll. */
#ifndef FSD_NVLS_H
#define FSD_NVLS_H

#include "coll.h"

/* The bus bandwidth NCCL's tuner (2.28+) gives NVLS or NVLSTree all-reduce, B/s. */
double nvls_bus_bw(const HwTopology *topo, const CollShape *sh, CollAlgo a);
/* Their latency as the tuner of release `version` (NCCL_VERSION_CODE) charges it, us. */
double nvls_tuner_latency_us(const CollShape *sh, CollAlgo a, int version);
/* What the tuner leaves out, s: the pipeline's fill with NCCL's chunk, at algorithm bandwidth
 * `algbw` (B/s, the tuner's). */
double nvls_fill_s(const CollShape *sh, CollAlgo a, double algbw, int version);

#endif
