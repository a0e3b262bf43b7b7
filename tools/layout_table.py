#!/usr/bin/env python3
"""The README's GPT-3 175B layout table ("Which layout for GPT-3 175B on 128 JUWELS Booster
nodes?"): runs fsdpsim --json for each layout (three times, for the CPU time) and prints the
Markdown table to paste there. Run from the source root after bootstrap:
    python3 tools/layout_table.py
"""
import json
import resource
import subprocess
base = "build/src/fsdpsim --model models/gpt3-175b.json --nodes 128 --micro-batch 1 --activation-checkpointing --json".split()
rows = [
 ("DDP, tp 4, pp 8, dp 16, 1F1B, m 96", "--strategy ddp --tp 4 --pp 8 --micro-batches 96"),
 ("same, Megatron's distributed optimizer and overlaps", "--strategy ddp --tp 4 --pp 8 --micro-batches 96 --use-distributed-optimizer --overlap-grad-reduce --overlap-param-gather"),
 ("DDP, tp 4, pp 16, dp 8, 1F1B, m 192", "--strategy ddp --tp 4 --pp 16 --micro-batches 192"),
 ("same, `--sequence-parallel`", "--strategy ddp --tp 4 --pp 16 --micro-batches 192 --sequence-parallel"),
 ("same without SP, interleaved v 2", "--strategy ddp --tp 4 --pp 16 --micro-batches 192 --pp-schedule interleaved --virtual-stages 2"),
 ("DDP, tp 8 (across 2 nodes), pp 8, dp 8, m 192", "--strategy ddp --tp 8 --pp 8 --micro-batches 192"),
 ("FSDP full_shard, tp 4, pp 8, dp 16, m 96", "--strategy fsdp --sharding full_shard --tp 4 --pp 8 --micro-batches 96"),
 ("FSDP full_shard x tp 4 (2D), dp 128, grad-accum 12", "--strategy fsdp --sharding full_shard --tp 4 --grad-accum 12"),
 ("FSDP full_shard alone, dp 512, grad-accum 3", "--strategy fsdp --sharding full_shard --grad-accum 3"),
 ("FSDP hybrid_shard alone, shard group 256 (2 replicas), grad-accum 3", "--strategy fsdp --sharding hybrid_shard --shard-group-size 256 --grad-accum 3"),
]
print("| layout | step (likely) | MFU | bubble | peak memory per GPU | simulated in |")
print("|---|---|---|---|---|---|")
for name, args in rows:
    walls = []
    for _ in range(3):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(base + args.split(), capture_output=True, text=True)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        walls.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    wall = min(walls)
    if out.returncode:
        print("ERR", name, out.stderr); continue
    d = json.loads(out.stdout)
    pp = d.get("pp") or {}
    bub = pp.get("bubble_fraction")
    mem = d["memory"]
    peak = mem.get("peak_bytes") or mem.get("peak_GiB")
    pk = mem["peak_bytes"]/2**30 if "peak_bytes" in mem else mem.get("peak_GiB")
    fits = "OOM" if mem.get("oom") else "fits"
    lo, hi = d.get("step_time_s_low"), d.get("step_time_s_high")
    print("| %s | %.1f s (%.0f-%.0f) | %.1f %% | %s | %.1f GiB: %s | %s |" % (name, d["step_time_s"], lo, hi, 100*d["mfu"], "%.1f %%" % (100*bub) if bub is not None else "-", pk, fits, "%.2f s" % wall if wall >= 0.01 else "< 0.01 s"))
