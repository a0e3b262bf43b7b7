#!/usr/bin/env python3
"""Small synthetic PyTorch profiler traces of a 2-rank job, with figures known by construction
(the shared traces lack several steps per rank, memcpys, host-bound gaps and matched ranks with
NCCL metadata). usage: trace_synth.py OUTDIR [VARIANT]; VARIANT: good (default), zero-steps
(rank 0 without ProfilerStep#N), mixed (rank 1 of a 4-rank job), no-schema (no schemaVersion).

Each rank, each step s (us from 1000*s): a GEMM, then an all-reduce of 1 Mi floats (NCCL
metadata, process group "0"), an elementwise kernel, and on rank 0 a memcpy. Rank 0's GEMM ends
at 300, rank 1's at 500: rank 1 arrives last at every all-reduce, rank 0 waits 200 us, the
transfer takes 700 - 500 = 200 us. Rank 0, step 1: GPU span 100..950 = 850 us; compute 200 + 100;
waiting 200; exposed communication 200; idle 700..800 with the launch at 750: 50 host-bound, 50
waiting; memcpy 900..950 exposed 50. One kernel before the first step belongs to no step.
Every cudaLaunchKernel takes 5 us on the host; the GEMMs are 1024^3 FP32 (aten::mm's shapes),
200 us on rank 0 and 400 us on rank 1 (median 300 us: 7.16 TFLOP/s); the elementwise add moves
48 MiB (aten::add's shapes) in 100 us: 503 GB/s."""
import gzip
import json
import os
import sys

out, variant = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "good")
os.makedirs(out, exist_ok=True)

for rank in (0, 1):
    ev = [{"ph": "M", "name": "process_name", "pid": 0, "tid": 0, "args": {"name": "GPU 0"}}]
    corr = [100 * (rank + 1)]

    def gpu(cat, name, start, end, launch, **args):
        corr[0] += 1
        ev.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 9,
                   "tid": 9, "ts": launch, "dur": 5, "args": {"correlation": corr[0]}})
        a = {"correlation": corr[0], "stream": 13 if "nccl" in name else 7}
        a.update(args)
        ev.append({"ph": "X", "cat": cat, "name": name, "pid": 0, "tid": a["stream"],
                   "ts": start, "dur": end - start, "args": a})

    gpu("kernel", "ampere_sgemm_64x64_nn", -400, -300, -450)  # warm-up, outside every step
    for s in (1, 2):
        t0 = 1000 * (s - 1)
        dur = 1000 if rank == 0 or s == 1 else 1200
        if not (variant == "zero-steps" and rank == 0):
            ev.append({"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#%d" % s,
                       "pid": 9, "tid": 9, "ts": t0, "dur": dur, "args": {}})
        gemm_end = 300 if rank == 0 else 500
        # the GEMM's operator with its shapes (record_shapes=True) around its launch at t0 + 50
        ev.append({"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 9, "tid": 9,
                   "ts": t0 + 45, "dur": 12, "args": {"Input Dims": [[1024, 1024], [1024, 1024]],
                                                      "Input type": ["float", "float"]}})
        gpu("kernel", "ampere_sgemm_128x64_nn", t0 + 100, t0 + gemm_end, t0 + 50)
        gpu("kernel", "ncclKernel_AllReduce_RING_LL_Sum_float(ncclDevComm*, unsigned long)",
            t0 + gemm_end, t0 + 700, t0 + 60, **{
                "Collective name": "allreduce", "In msg nelems": 1048576,
                "Out msg nelems": 1048576, "Group size": 2, "dtype": "Float",
                "Process Group Name": "0", "Process Group Ranks": "[0, 1]"})
        # the elementwise add's operator: two 16 MiB float inputs, a 16 MiB output
        ev.append({"ph": "X", "cat": "cpu_op", "name": "aten::add", "pid": 9, "tid": 9,
                   "ts": t0 + 745, "dur": 10, "args": {"Input Dims": [[4096, 1024], [4096, 1024], []],
                                                       "Input type": ["float", "float", "Scalar"]}})
        gpu("kernel", "vectorized_elementwise_kernel<4, add>", t0 + 800, t0 + 900, t0 + 750)
        if rank == 0:
            gpu("gpu_memcpy", "Memcpy DtoH (Device -> Pinned)", t0 + 900, t0 + 950, t0 + 760)
    world = 4 if variant == "mixed" and rank == 1 else 2
    doc = {"schemaVersion": 1, "distributedInfo": {"backend": "nccl", "rank": rank,
                                                   "world_size": world},
           "deviceProperties": [{"id": 0, "name": "synthetic GPU"}], "traceEvents": ev}
    if variant == "no-schema":
        del doc["schemaVersion"]
    text = json.dumps(doc)
    if rank == 0:
        open(os.path.join(out, "rank0.json"), "w").write(text)
    else:
        with gzip.open(os.path.join(out, "rank1.json.gz"), "wt") as f:
            f.write(text)
