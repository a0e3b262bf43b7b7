#!/usr/bin/env bash
# Integration tests of the profiler-trace reader (src/trace) through `fsdpsim trace summary` and
# `fsdpsim compare` (issue 16). Figures are checked against what python computes from the raw
# traces (the shared DLRM and A100 traces, ../shared/data/kineto) or against a synthetic 2-rank
# job whose figures are known by construction (trace_synth.py).
# usage: trace.sh FSDPSIM SOURCE_ROOT   (prints TAP)
set -u
FSDPSIM=$1
SRC=$2
case $FSDPSIM in /*) ;; *) FSDPSIM=$PWD/$FSDPSIM ;; esac
case $SRC in /*) ;; *) SRC=$PWD/$SRC ;; esac
K=$SRC/../shared/data/kineto
DLRM=$K/dlrm-v100-8rank
A100=$K/a100-2rank-rank0.json.gz
W=$(mktemp -d "${TMPDIR:-/tmp}/fsdpsim-trace.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
n=0 failed=0
check() { # NAME COMMAND...: ok when the command succeeds
    local name=$1
    shift
    n=$((n + 1))
    if "$@"; then echo "ok $n - $name"; else echo "not ok $n - $name"; failed=$((failed + 1)); fi
}
shared() { # NAME COMMAND...: a check on the shared traces, skipped where they are not
    if [ -d "$DLRM" ] && [ -f "$A100" ]; then check "$@"; else n=$((n + 1)); echo "ok $n - $1 # SKIP no ../shared/data/kineto"; fi
}
python3 "$SRC/tests/integration/trace_synth.py" "$W/synth" || { echo "Bail out! trace_synth.py"; exit 1; }

# python's reading of the raw traces: {rank: [ProfilerStep durations in s]}
raw_steps() {
    python3 - "$@" <<'PY'
import glob, gzip, json, os, sys
out = {}
for a in sys.argv[1:]:
    for f in sorted(glob.glob(os.path.join(a, "*.json*"))) if os.path.isdir(a) else [a]:
        d = json.load(gzip.open(f) if f.endswith(".gz") else open(f))
        steps = sorted((e["ts"], e["dur"]) for e in d["traceEvents"]
                       if e.get("ph") == "X" and str(e.get("name", "")).startswith("ProfilerStep#"))
        out[d["distributedInfo"]["rank"]] = [dur * 1e-6 for _, dur in steps]
print(json.dumps(out))
PY
}

step_times() { # TRACES...: every rank's step times within 1 % of its ProfilerStep durations
    "$FSDPSIM" trace summary "$@" --json >"$W/s.json" 2>"$W/err" || { cat "$W/err"; return 1; }
    raw_steps "$@" >"$W/raw.json" || return 1
    python3 - "$W/s.json" "$W/raw.json" <<'PY'
import json, sys
got = {str(r["rank"]): [s["duration_s"] for s in r["steps"]] for r in json.load(open(sys.argv[1]))["ranks"]}
want = json.load(open(sys.argv[2]))
assert got.keys() == want.keys(), (got.keys(), want.keys())
for r in want:
    assert len(got[r]) == len(want[r]) > 0, (r, got[r], want[r])
    for g, w in zip(got[r], want[r]):
        assert abs(g - w) <= 0.01 * w, (r, g, w)
PY
}
shared "DLRM 8 x V100: step times = ProfilerStep durations" step_times "$DLRM"
a100_steps() { step_times "$A100" && [ "$(python3 -c "import json; print(len(json.load(open('$W/s.json'))['ranks'][0]['steps']))")" = 3 ]; }
shared "A100 .json.gz: three ProfilerSteps, each its own step" a100_steps
check "synthetic 2 ranks (.json + .json.gz): step times" step_times "$W/synth/rank0.json" "$W/synth/rank1.json.gz"

a100_nccl() { # every collective the NCCL metadata names, with its size, and a busbw
    "$FSDPSIM" trace summary "$A100" --json >"$W/a.json" || return 1
    python3 - "$A100" "$W/a.json" <<'PY' || return 1
import gzip, json, sys
d = json.load(gzip.open(sys.argv[1]))
want = set()
for e in d["traceEvents"]:
    a = e.get("args", {})
    if e.get("cat") == "kernel" and "Collective name" in a:
        want.add((a["Collective name"], a["In msg nelems"] * {"Float": 4, "Long": 8}[a["dtype"]]))
got = {(c["collective"], c["size"]): c for c in json.load(open(sys.argv[2]))["collectives"]}
assert {k for k in got} == want, (sorted(got), sorted(want))
for c in got.values():
    assert c["busbw"] > 0 and c["time"] > 0 and c["type"] in ("float", "int64") and c["nranks"] == 2, c
    assert abs(c["busbw"] - c["algbw"] * 1.0) < 1e-9  # 2 ranks: 2(n-1)/n = 1, broadcast 1
    assert c["size_from"] == "nccl metadata", c
PY
    "$FSDPSIM" trace summary "$A100" >"$W/a.txt" || return 1
    grep -q 'busbw' "$W/a.txt" && grep -Eq '^  allreduce +26550272 +6637568 +float +2 +3 ' "$W/a.txt"
}
shared "A100: NCCL table from the NCCL metadata, sizes and busbw" a100_nccl

dlrm_straggler() { # the rank arriving last most often at the matched collectives
    "$FSDPSIM" trace summary "$DLRM" --json >"$W/d.json" || return 1
    local want
    want=$(python3 - "$DLRM" <<'PY'
import collections, glob, json, os, sys
k = {}
for f in glob.glob(os.path.join(sys.argv[1], "*.json")):
    d = json.load(open(f))
    k[d["distributedInfo"]["rank"]] = sorted(e["ts"] for e in d["traceEvents"]
        if e.get("cat") == "kernel" and "nccl" in e["name"])
last = collections.Counter(max(k, key=lambda r: k[r][i]) for i in range(min(map(len, k.values()))))
print(last.most_common(1)[0][0])
PY
) || return 1
    [ "$(python3 -c "import json; print(json.load(open('$W/d.json'))['stragglers'][0]['rank'])")" = "$want" ] || return 1
    "$FSDPSIM" trace summary "$DLRM" | sed -n '/^stragglers/,$p' | sed -n 3p | grep -Eq "^ +$want +"
}
shared "DLRM: the straggler table names the rank that arrives last" dlrm_straggler

synth_figures() { # the breakdown, the matched all-reduce and the straggler, known by construction
    "$FSDPSIM" trace summary "$W/synth" --json >"$W/y.json" || return 1
    python3 - "$W/y.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
r0 = d["ranks"][0]
assert [r["rank"] for r in d["ranks"]] == [0, 1]
assert [s["step"] for s in r0["steps"]] == [1, 2]
s = r0["steps"][0]
us = lambda k: round(s[k] * 1e6, 6)
assert (us("gpu_span_s"), us("compute_s"), us("exposed_comm_s"), us("comm_wait_s"), us("memcpy_s"),
        us("idle_host_s"), us("idle_wait_s")) == (850, 300, 200, 200, 50, 50, 50), s
assert round(s["kernels_s"]["gemm"] * 1e6, 6) == 200  # the warm-up GEMM belongs to no step
assert [x["duration_s"] for x in d["ranks"][1]["steps"]] == [1e-3, 1.2e-3]
(c,) = d["collectives"]
assert (c["collective"], c["size"], c["count"], c["calls"], c["matched_ranks"]) == ("allreduce", 4194304, 1048576, 2, 2), c
assert abs(c["time"] - 200) < 1e-9 and abs(c["busbw"] - 4194304 / 200e-6 / 1e9) < 1e-9, c
assert abs(c["wait"] - 100) < 1e-9, c  # rank 0 waits 200 us, rank 1 none
st = d["stragglers"]
assert (st[0]["rank"], st[0]["last"], st[0]["instances"]) == (1, 2, 2), st
assert abs(st[0]["waiting_caused_s"] - 400e-6) < 1e-12, st
PY
}
check "synthetic: breakdown, NCCL row and straggler as constructed" synth_figures

same_but_file() { # A.json B.json: two trace summaries (--json) alike but for each rank's file name
    python3 - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
for d in (a, b):
    for r in d["ranks"]:
        del r["file"]
assert a == b
PY
}

same_reading() { # gzip and plain, files and their directory: the same figures
    gzip -c "$W/synth/rank0.json" >"$W/r0.json.gz" && gunzip -c "$W/synth/rank1.json.gz" >"$W/r1.json" || return 1
    "$FSDPSIM" trace summary "$W/r0.json.gz" "$W/r1.json" --json >"$W/g.json" || return 1
    "$FSDPSIM" trace summary "$W/synth" --json >"$W/y.json" || return 1
    same_but_file "$W/g.json" "$W/y.json"
}
check "synthetic: .json.gz = .json, files = their directory" same_reading

base_time() { # rank 1 written by a newer PyTorch: ts 1000 us smaller, baseTimeNanoseconds 1 ms later
    mkdir -p "$W/base" && cp "$W/synth/rank0.json" "$W/base/" || return 1
    python3 - "$W/synth/rank1.json.gz" "$W/base/rank1.json" <<'PY' || return 1
import gzip, json, sys
d = json.load(gzip.open(sys.argv[1]))
for e in d["traceEvents"]:
    if "ts" in e:
        e["ts"] -= 1000
d["baseTimeNanoseconds"] = 1000000
json.dump(d, open(sys.argv[2], "w"))
PY
    "$FSDPSIM" trace summary "$W/base" --json >"$W/b.json" || return 1
    "$FSDPSIM" trace summary "$W/synth" --json >"$W/y.json" || return 1
    same_but_file "$W/b.json" "$W/y.json"
}
check "synthetic: ranks aligned on baseTimeNanoseconds (the same figures)" base_time

dlrm_unlaunched() { # kernels with no host call of their correlation id: counted, in no step
    "$FSDPSIM" trace summary "$DLRM" --json >"$W/d.json" || return 1
    python3 - "$DLRM" "$W/d.json" <<'PY'
import glob, json, os, sys
want = {}
for f in glob.glob(os.path.join(sys.argv[1], "*.json")):
    d = json.load(open(f))
    ev = d["traceEvents"]
    calls = {e["args"]["correlation"] for e in ev if e.get("cat") in ("cuda_runtime", "cuda_driver")
             and "correlation" in e.get("args", {})}
    gpu = [e["args"]["correlation"] for e in ev if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    want[d["distributedInfo"]["rank"]] = (sum(c not in calls for c in gpu),
                                          sum(c not in calls and c < min(calls) for c in gpu))
got = {r["rank"]: (r["unlaunched"], r["unlaunched_before_trace"]) for r in json.load(open(sys.argv[2]))["ranks"]}
assert got == want and want[1] == (64, 64), (got, want)
PY
    "$FSDPSIM" trace summary "$DLRM" | grep -q '^  rank 3: 64, 64 of them launched before the trace$'
}
shared "DLRM: kernels without a launch record counted, none in step 10" dlrm_unlaunched

compare_dlrm() { # compare: the real step is the median over ranks of the ProfilerStep durations
    "$FSDPSIM" -m "$SRC/models/gpt2.json" -t "$SRC/topologies/juwels-booster.json" --trace "$W/sim.json" >/dev/null || return 1
    "$FSDPSIM" compare --real "$DLRM" --sim "$W/sim.json" --json >"$W/c.json" 2>"$W/c.err" || return 1
    grep -q 'differ by more than 2x' "$W/c.err" || return 1
    raw_steps "$DLRM" >"$W/raw.json" || return 1
    python3 - "$W/c.json" "$W/raw.json" <<'PY'
import json, statistics, sys
c, raw = (json.load(open(f)) for f in sys.argv[1:])
want = statistics.median(v[0] for v in raw.values())
assert c["real"]["ranks"] == 8 and c["real"]["iterations"] == 1, c["real"]
assert abs(c["real"]["step_time_s"] - want) < 1e-9, (c["real"]["step_time_s"], want)
PY
}
shared "compare --real DIR: 8 ranks, real step = median ProfilerStep" compare_dlrm

compare_dlrm_alltoall() { # DLRM's all_to_all runs as NCCL SendRecv kernels: compare's alltoall
    [ -f "$W/sim.json" ] || "$FSDPSIM" -m "$SRC/models/gpt2.json" -t "$SRC/topologies/juwels-booster.json" --trace "$W/sim.json" >/dev/null || return 1
    "$FSDPSIM" compare --real "$DLRM" --sim "$W/sim.json" --json >"$W/c3.json" 2>/dev/null || return 1
    python3 - "$W/c3.json" "$DLRM" <<'PY'
import glob, json, os, sys
k = json.load(open(sys.argv[1]))["op_kinds"]
sums = []  # per rank: the SendRecv kernels' durations (each under an nccl:all_to_all annotation)
for f in sorted(glob.glob(os.path.join(sys.argv[2], "*.json"))):
    ev = json.load(open(f))["traceEvents"]
    sums.append(sum(e["dur"] for e in ev if e.get("cat") == "kernel" and "SendRecv" in e["name"]))
assert "send/recv" not in k and k["alltoall"]["real_calls"] == 5, k
assert abs(k["alltoall"]["real_s"] - sum(sums) / len(sums) * 1e-6) < 1e-9, (k["alltoall"], sums)
PY
}
shared "compare: DLRM's all_to_all (NCCL SendRecv kernels) is alltoall, not send/recv" compare_dlrm_alltoall

compare_missing_step() { # a rank without one of rank 0's steps: sums per (rank, step) it has
    [ -f "$W/sim.json" ] || "$FSDPSIM" -m "$SRC/models/gpt2.json" -t "$SRC/topologies/juwels-booster.json" --trace "$W/sim.json" >/dev/null || return 1
    python3 - "$A100" "$W/r1.json" >"$W/want.txt" <<'PY' || return 1
import gzip, json, sys
d = json.load(gzip.open(sys.argv[1]))
def allreduce_us(events, steps):  # allreduce kernels launched inside the named steps
    launch = {e["args"]["correlation"]: e["ts"] for e in events
              if e.get("cat") == "cuda_runtime" and "correlation" in e.get("args", {})}
    spans = [(e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") in steps]
    return sum(e["dur"] for e in events if e.get("cat") == "kernel" and "AllReduce" in e["name"]
               and any(a <= launch.get(e["args"]["correlation"], -1) <= b for a, b in spans))
ev = d["traceEvents"]
total = allreduce_us(ev, {"ProfilerStep#4", "ProfilerStep#5", "ProfilerStep#6"})
d["distributedInfo"]["rank"] = 1  # rank 1: the same run without its ProfilerStep#4
d["traceEvents"] = [e for e in ev if e.get("name") != "ProfilerStep#4"]
json.dump(d, open(sys.argv[2], "w"))
total += allreduce_us(ev, {"ProfilerStep#5", "ProfilerStep#6"})
print(total / 5 * 1e-6)  # 3 + 2 (rank, step) pairs
PY
    "$FSDPSIM" compare --real "$A100" --real "$W/r1.json" --sim "$W/sim.json" --json >"$W/c4.json" 2>/dev/null || return 1
    python3 -c "
import json; k = json.load(open('$W/c4.json'))['op_kinds']['allreduce']; want = float(open('$W/want.txt').read())
assert abs(k['real_s'] - want) < 1e-9, (k, want)
"
}
shared "compare: a rank lacking a step is not counted for it (A100 + a copy without step 4)" compare_missing_step

dlrm_no_shapes() { # record_shapes off: the size is unknown, no bandwidth is shown as measured
    mkdir -p "$W/noshapes" && python3 - "$DLRM" "$W/noshapes" <<'PY' || return 1
import glob, json, os, sys
for f in glob.glob(os.path.join(sys.argv[1], "*.json")):
    d = json.load(open(f))
    for e in d["traceEvents"]:
        for k in ("Input Dims", "Input type"):
            e.get("args", {}).pop(k, None)
    json.dump(d, open(os.path.join(sys.argv[2], os.path.basename(f)), "w"))
PY
    "$FSDPSIM" trace summary "$W/noshapes" >"$W/ns.txt" || return 1
    "$FSDPSIM" trace summary "$W/noshapes" --json >"$W/ns.json" || return 1
    grep -Eq '^  alltoall +0 +0 .* - +- .*unknown \(record_shapes off\)$' "$W/ns.txt" || return 1
    python3 -c "
import json; c = json.load(open('$W/ns.json'))['collectives']
assert len(c) == 2 and all(x['size'] == 0 and x['size_from'] == 'unknown (record_shapes off)' for x in c), c
"
}
shared "DLRM without record_shapes: collective sizes unknown, bandwidth '-'" dlrm_no_shapes

a100_gpu_annotations() { # Kineto's GPU-row copies of ProfilerStep#N are not steps of their own
    python3 - "$A100" "$W/gpustep.json" <<'PY' || return 1
import gzip, json, sys
d = json.load(gzip.open(sys.argv[1]))
ev = d["traceEvents"]
for s in [e for e in ev if str(e.get("name", "")).startswith("ProfilerStep#")]:
    ev.append({"ph": "X", "cat": "gpu_user_annotation", "name": s["name"], "pid": 0, "tid": 7,
               "ts": s["ts"] + 10, "dur": s["dur"] - 20, "args": {}})
json.dump(d, open(sys.argv[2], "w"))
PY
    "$FSDPSIM" trace summary "$W/gpustep.json" --json >"$W/g1.json" || return 1
    "$FSDPSIM" trace summary "$A100" --json >"$W/g0.json" || return 1
    python3 -c "
import json; a, b = (json.load(open('$W/g%d.json' % i))['ranks'][0]['steps'] for i in (0, 1))
assert a == b and len(a) == 3, (len(a), len(b))
"
}
shared "A100 with gpu_user_annotation ProfilerStep#N copies: the same three steps" a100_gpu_annotations

dlrm_shifted() { # rank 1's trace lacks its first NCCL kernel: the rest still meet their peers
    mkdir -p "$W/shift" && python3 - "$DLRM" "$W/shift" <<'PY' || return 1
import glob, json, os, sys
for f in glob.glob(os.path.join(sys.argv[1], "*.json")):
    d = json.load(open(f))
    if os.path.basename(f).startswith("worker1_"):
        nccl = min((e for e in d["traceEvents"] if e.get("cat") == "kernel" and e["name"].startswith("nccl")),
                   key=lambda e: e["ts"])
        d["traceEvents"].remove(nccl)
    json.dump(d, open(os.path.join(sys.argv[2], os.path.basename(f)), "w"))
PY
    "$FSDPSIM" trace summary "$DLRM" --json >"$W/sh0.json" || return 1
    "$FSDPSIM" trace summary "$W/shift" --json >"$W/sh1.json" || return 1
    python3 - "$W/sh0.json" "$W/sh1.json" <<'PY'
import json, sys
a, b = ({(c["collective"], c["size"]): c for c in json.load(open(f))["collectives"]} for f in sys.argv[1:])
assert a.keys() == b.keys(), (sorted(a), sorted(b))
for key in a:  # every collective but the one rank 1 lost: the same instances, ranks, times
    if key != ("alltoall", 24576):
        assert a[key] == b[key], (a[key], b[key])
assert b[("alltoall", 24576)]["matched_ranks"] == 8 and b[("alltoall", 24576)]["calls"] == 2, b
PY
}
shared "DLRM, rank 1 without its first NCCL kernel: collectives still matched" dlrm_shifted

compare_repeated() { # --real twice: both ranks, not the second alone
    "$FSDPSIM" -m "$SRC/models/gpt2.json" -t "$SRC/topologies/juwels-booster.json" --trace "$W/sim.json" >/dev/null || return 1
    "$FSDPSIM" compare --real "$W/synth/rank0.json" --real "$W/synth/rank1.json.gz" --sim "$W/sim.json" --json >"$W/c2.json" 2>/dev/null || return 1
    python3 -c "
import json; c = json.load(open('$W/c2.json'))['real']
assert c['ranks'] == 2 and c['iterations'] == 2, c
assert abs(c['step_time_s'] - 1.05e-3) < 1e-12, c  # steps: 1.0 and median(1.0, 1.2) = 1.1 ms
"
}
check "compare --real A --real B: both ranks, median of steps" compare_repeated

calibrate_synth() { # the launch call and the GEMM fit written with their sources; the file loads
    "$FSDPSIM" trace calibrate "$W/synth" -t "$SRC/topologies/juwels-booster.json" -o "$W/cal.json" >"$W/cal.txt" || return 1
    grep -q 'mean abs. error .* after' "$W/cal.txt" || return 1
    python3 - "$W/cal.json" <<'PY' || return 1
import json, sys
g = json.load(open(sys.argv[1]))["gpu"]
assert g["launch_overhead_us"]["value"] == 5, g["launch_overhead_us"]
for key in ("kernel_fixed_us", "gemm_k_overhead", "gemm_small_tile_cost"):
    assert g["kernels"][key]["source"].startswith("measured from trace"), g["kernels"][key]
assert g["launch_overhead_us"]["source"].startswith("measured from trace")
# 48 MiB in 100 us over the A100's 1555 GB/s
assert abs(g["memory_efficiency"]["value"] - 48 * 2**20 / 100e-6 / 1555e9) < 1e-9, g["memory_efficiency"]
assert g["memory_efficiency"]["source"].startswith("measured from trace")
PY
    # the fitted model gives the trace's 1024^3 FP32 GEMM its measured rate (7.16 TFLOP/s) within 2 %
    awk '/^  float 1x1024x1024x1024/ { e = ($4 - $3) / $3; ok = e < 0.02 && e > -0.02 } END { exit !ok }' "$W/cal.txt" || return 1
    "$FSDPSIM" -m "$SRC/models/gpt2.json" -t "$W/cal.json" --json >/dev/null
}
check "calibrate: launch and GEMM figures measured from the trace, topology loads" calibrate_synth

calibrate_dlrm() { # the launch call: the median of python's cudaLaunchKernel durations; on a
    # topology without a kernel table (abci-v100's, table removed), the GEMMs are left alone
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); del d["gpu"]["kernels"]; json.dump(d, open(sys.argv[2], "w"))' \
        "$SRC/topologies/abci-v100.json" "$W/v100-nokern.json" || return 1
    "$FSDPSIM" trace calibrate "$DLRM" -t "$W/v100-nokern.json" -o "$W/cal2.json" >"$W/cal2.txt" || return 1
    grep -q 'no gpu.kernels object' "$W/cal2.txt" && grep -q '^  allreduce .*%$' "$W/cal2.txt" || return 1
    python3 - "$DLRM" "$W/cal2.json" <<'PY'
import glob, json, os, statistics, sys
d = [e["dur"] for f in glob.glob(os.path.join(sys.argv[1], "*.json")) for e in json.load(open(f))["traceEvents"]
     if e.get("cat") == "cuda_runtime" and e.get("name") == "cudaLaunchKernel" and "correlation" in e.get("args", {})]
got = json.load(open(sys.argv[2]))["gpu"]["launch_overhead_us"]["value"]
assert abs(got - statistics.median(d)) < 1e-9, (got, statistics.median(d))
PY
}
shared "calibrate DLRM: launch call, NCCL against the model" calibrate_dlrm

replay_within() { # TRACES...: the replayed step within 5 % of each rank's ProfilerStep
    "$FSDPSIM" trace summary "$@" --json >"$W/r.json" || return 1
    python3 -c "
import json; r = json.load(open('$W/r.json'))['replay']
assert r['max_abs_error'] <= 0.05, r
"
}
shared "replay of the DLRM step within 5 %" replay_within "$DLRM"
shared "replay of the A100 steps within 5 %" replay_within "$A100"

whatif_dlrm() { # the layout, what was re-costed and kept; the own scale = the replay
    "$FSDPSIM" trace whatif "$DLRM" -t "$SRC/topologies/abci-v100.json" --ranks 16,64 >"$W/w.txt" || return 1
    grep -q '^  inferred: data parallel (DDP.* + all-to-all' "$W/w.txt" &&
        grep -q '^re-costed: 8 collective instances' "$W/w.txt" &&
        grep -q '^kept as measured: compute kernels' "$W/w.txt" &&
        grep -Eq '^ +8 +2 +16\.126 +\+0\.0% .*own scale' "$W/w.txt" &&
        grep -Eq '^ +16 +4 ' "$W/w.txt" && grep -Eq '^ +64 +16 ' "$W/w.txt" || return 1
    # more ranks, more transfer time (the ring's latency grows with the ranks), in the ratio
    # column and in the engine's schedule
    awk '$1 ~ /^(8|16|64)$/ && $4 ~ /%$/ { t[$1] = $5; e[$1] = $6 }
         END { exit !(t[8] < t[16] && t[16] < t[64] && e[8] <= e[16] && e[16] <= e[64]) }' "$W/w.txt" || return 1
    # the engine at the trace's scale: within 20 % of the measured median step (it starts every
    # rank's step together, where the trace's ranks start theirs up to 7 ms apart)
    awk '$1 == 8 && $4 ~ /%$/ { e = ($6 - 16.126) / 16.126; ok = e < 0.2 && e > -0.2 } END { exit !ok }' "$W/w.txt"
}
shared "whatif DLRM at 16 and 64 ranks: layout, re-costed, kept" whatif_dlrm

whatif_synth() { # the re-costed all-reduce pushes the GPU span as the dependencies say
    "$FSDPSIM" trace whatif "$W/synth" -t "$SRC/topologies/juwels-booster.json" --ranks 64 >"$W/ws.txt" || return 1
    # T: the transfer at 64 ranks (one all-reduce per rank and step). Step 1: the all-reduce ends
    # at 500 + T (rank 1 arrives last), the span from 100. Step 2: each rank's all-reduce waits for
    # its GEMM (1300, 1500: a cross-stream wait) and the previous one (stream order, + the 30 us
    # lag cap), all end at the latest start + T, span from 1100. Median over 2 ranks x 2 steps.
    awk '$4 !~ /%$/ { next } $1 == 2 { own = $3 } $1 == 64 { got = $3; T = $5 * 1000 }
         END { s1 = (400 + T > 850 ? 400 + T : 850); l = (530 + T > 1500 ? 530 + T : 1500);
               s2 = l + T - 1100; if (s2 < 850) s2 = 850; if (s1 < 1000) s1 = 1000;
               want = (s1 + s2) / 2 / 1000; exit !(own == 1.000 && T > 200 && (got - want) ^ 2 < 1e-6) }' "$W/ws.txt"
}
check "whatif synthetic: the re-costed all-reduce through the dependencies" whatif_synth

whatif_schedule() { # --emit-schedule: fsdpsim --schedule runs it to the engine column's step
    "$FSDPSIM" trace whatif "$W/synth" -t "$SRC/topologies/juwels-booster.json" --ranks 8,64 \
        --emit-schedule "$W/sched.json" >"$W/wt.txt" || return 1
    # host-bound: the engine's step is the host's 1 ms at the traced scale
    awk '$1 == 2 && $4 ~ /%$/ { ok = $6 == 1.000 } END { exit !ok }' "$W/wt.txt" || return 1
    "$FSDPSIM" --schedule "$W/sched.json" -t "$SRC/topologies/juwels-booster.json" --nodes 2 --gpus-per-node 4 --json >"$W/ss.json" || return 1
    local want
    want=$(awk '$1 == 8 && $4 ~ /%$/ { print $6 }' "$W/wt.txt")
    python3 -c "
import json; got = json.load(open('$W/ss.json'))['step_time_s'] * 1e3
assert abs(got - $want) < 0.0015, (got, $want)
"
}
check "whatif --emit-schedule: the schedule runs in fsdpsim to the engine's step" whatif_schedule

echo "1..$n"
[ "$failed" -eq 0 ]
