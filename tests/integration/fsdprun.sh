#!/usr/bin/env bash
# Integration tests of fsdprun on this machine (mpirun -np 4 --oversubscribe, one node, shared
# memory) and of `fsdpsim compare` on what it writes: the trace's shape, the comparison's fields,
# bad input (one message, exit status 2) and the watchdog (a stuck job ends with a message).
# usage: fsdprun.sh FSDPSIM FSDPRUN SOURCE_ROOT. Prints TAP.
set -u
FSDPSIM=$(realpath "$1") FSDPRUN=$(realpath "$2") SRC=$(realpath "$3")
. "$(dirname "$0")/mpi_tap.sh"

"$FSDPSIM" -m "$MODEL" -t "$TOPO" --nodes 1 --gpus-per-node 4 --strategy full --emit-schedule "$W/s.json" \
    --trace "$W/sim.json" >/dev/null
"${MPIRUN[@]}" -np 4 "$FSDPRUN" --schedule "$W/s.json" --topology "$TOPO" --iters 3 --warmup 1 \
    --trace "$W/real.json" >"$W/out" 2>"$W/err"
check "fsdprun runs a full_shard schedule on 4 ranks" test $? -eq 0
check "trace: 4 ranks, 3 step times, every rank the same ops 3 times, collectives with bytes" python3 - "$W/real.json" <<'PY'
import json, sys, collections
d = json.load(open(sys.argv[1]))
o = d["otherData"]
assert o["generator"] == "fsdprun" and o["world"] == 4 and o["iterations"] == 3, o
assert len(o["step_time_s"]) == 3 and all(t > 0 for t in o["step_time_s"])
x = [e for e in d["traceEvents"] if e["ph"] == "X"]
per = collections.Counter(e["pid"] for e in x)
assert sorted(per) == [1, 2, 3, 4] and len(set(per.values())) == 1, per
ops = collections.Counter((e["pid"], e["args"]["op"]) for e in x)
assert set(ops.values()) == {3}, "each op once per iteration"
coll = [e for e in x if e["cat"] in ("allgather", "reduce_scatter")]
assert coll and all(e["args"]["bytes"] > 0 for e in coll)
# a stream runs its ops in order: no overlap on one (pid, tid)
by = collections.defaultdict(list)
for e in x: by[(e["pid"], e["tid"], e["args"]["iter"])].append((e["args"]["op"], e["ts"], e["dur"]))
for k, v in by.items():
    v.sort()
    for a, b in zip(v, v[1:]): assert a[1] + a[2] <= b[1] + 1e-3, (k, a, b)
PY
"$FSDPSIM" compare --real "$W/real.json" --sim "$W/sim.json" --json --trace "$W/merged.json" >"$W/cmp" 2>"$W/err"
check "compare --json: real/sim step time, signed error, op kinds" python3 - "$W/cmp" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
r, s = d["real"]["step_time_s"], d["sim"]["step_time_s"]
assert r > 0 and s > 0 and abs(d["error"] - (s - r) / r) < 1e-9, d
assert "allgather" in d["op_kinds"] and "compute" in d["op_kinds"]
PY
check "compare --trace: real ranks and simulated classes in one trace" grep -q 'sim: rank class' "$W/merged.json"
check "compare --trace: real tracks" grep -q 'real: rank 3' "$W/merged.json"
"$FSDPSIM" compare --real "$W/real.json" --sim "$W/sim.json" --plot "$W/fig" --plot-format png >"$W/out" 2>"$W/err"
check "compare --plot: both figures' data and scripts, rows of the 4 real ranks above the class" python3 - "$W/fig" <<'PY'
import os, re, sys
d = sys.argv[1]
for n in ("compare_timeline", "compare_error"):
    assert os.path.getsize(f"{d}/{n}.dat") > 0 and f'"{n}.dat"' in open(f"{d}/{n}.gp").read(), n
tics = re.search(r"^set ytics \((.*)\)$", open(f"{d}/compare_timeline.gp").read(), re.M).group(1)
rows = re.findall(r'"(real|sim) (rank \d+|class \d+): [^"]*" (\d+)', tics)
assert {r[1] for r in rows if r[0] == "real"} == {"rank 0", "rank 1", "rank 2", "rank 3"}, rows
assert max(int(r[2]) for r in rows if r[0] == "real") < min(int(r[2]) for r in rows if r[0] == "sim"), rows
err = open(f"{d}/compare_error.dat").read()
assert re.search(r"^\d+ allgather [0-9.]+ [0-9.]+ -?[0-9.]+$", err, re.M), err
PY
"$FSDPSIM" validate --plot "$W/vfig" --plot-format gif >"$W/out" 2>"$W/err"
rc=$?
check "validate --plot-format gif: exit 2 before anything runs, no folder" \
    test $rc -eq 2 -a "$(grep -c 'option --plot-format: .*"gif"' "$W/err")" -eq 1 -a ! -e "$W/vfig"

# Pipeline and tensor parallelism: the schedule's send/recv pairs and TP all-reduces run for real.
# pipeline NAME NP STRATEGY M V [fsdpsim options]: tiny-gpt (4 layers, tied embeddings), tp 2 x pp 2
pipeline() {
    local name=$1 np=$2 strategy=$3 m=$4 v=$5
    shift 5
    "$FSDPSIM" -m "$MODEL" -t "$TOPO" --nodes 1 --gpus-per-node "$np" --strategy "$strategy" --tp 2 --pp 2 \
        --micro-batches "$m" "$@" --emit-schedule "$W/$name.json" >/dev/null || return 1
    "${MPIRUN[@]}" -np "$np" "$FSDPRUN" --schedule "$W/$name.json" --topology "$TOPO" --iters 2 --warmup 1 \
        --trace "$W/$name-real.json" >"$W/out" 2>"$W/err" || { cat "$W/err" | sed 's/^/# /'; return 1; }
    python3 - "$W/$name-real.json" "$np" "$m" "$v" <<'PY'
import json, sys, collections
d = json.load(open(sys.argv[1]))
np_, m, v = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
P, T, L = 2, 2, 4
D, iters = np_ // (T * P), d["otherData"]["iterations"]
streams = {(e["pid"], e["tid"]): e["args"]["name"] for e in d["traceEvents"] if e["name"] == "thread_name"}
count, sent = collections.Counter(), collections.Counter()
for e in d["traceEvents"]:
    if e["ph"] != "X":
        continue
    stream = streams[(e["pid"], e["tid"])]
    count[(e["pid"] - 1, e["cat"], stream)] += 1
    if e["cat"] in ("send", "recv"):
        assert e["args"]["bytes"] > 0 or e["name"] == "embedding grad ready", e
        sent[(e["pid"] - 1, e["cat"])] += e["args"]["bytes"]
for rank in range(np_):
    s = rank // (T * D)  # placement tp-dp-pp: a stage is T * D consecutive ranks
    # virtual stage c * P + s sends its activations forward unless it is the last, receives
    # them unless it is the first; gradients go the other way
    fwd_send = m * sum(1 for c in range(v) if c * P + s < P * v - 1)
    fwd_recv = m * sum(1 for c in range(v) if c * P + s > 0)
    want = {("send", "pp:send_next"): fwd_send, ("recv", "pp:recv_prev"): fwd_recv,
            ("send", "pp:send_prev"): fwd_recv, ("recv", "pp:recv_next"): fwd_send,
            # tied embeddings: the first and last stage swap the word embedding's gradient,
            # once the first stage (done last) has sent an empty "ready" message
            ("send", "pp:embedding_send"): 2 if s == 0 else 1,
            ("recv", "pp:embedding_recv"): 1 if s == 0 else 2}
    for (cat, stream), n in want.items():
        got = count[(rank, cat, stream)] / iters
        assert got == n, (rank, cat, stream, got, n)
    # TP: 2 all-reduces per layer in forward, 2 in backward, per micro-batch; the embedding's one
    # in forward and the output layer's (its input gradient) in backward
    tp = count[(rank, "allreduce", "compute")] / iters
    assert tp == m * (4 * L // P + (1 if s == 0 else 0) + (1 if s == P - 1 else 0)), (rank, tp)
# what one stage sends, the other receives
for rank in range(np_):
    peer = (rank + T * D) % np_
    assert sent[(rank, "send")] == sent[(peer, "recv")], (rank, peer)
PY
}
check "fsdprun runs a tp 2 x pp 2 x dp 2 full_shard 1F1B schedule on 8 ranks: send/recv per stage" \
    pipeline pp-1f1b 8 full 4 1
check "fsdprun runs a tp 2 x pp 2 interleaved (2 chunks) DDP schedule on 4 ranks: send/recv per stage" \
    pipeline pp-interleaved 4 ddp 4 2 --pp-schedule interleaved --virtual-stages 2

"${MPIRUN[@]}" -np 4 "$FSDPRUN" --schedule "$W/nothing.json" --topology "$TOPO" >"$W/out" 2>"$W/err"
rc=$?
check "missing schedule: exit 2, one message naming the file" \
    test $rc -eq 2 -a "$(grep -c '^fsdprun: .*nothing.json' "$W/err")" -eq 1
"${MPIRUN[@]}" -np 2 "$FSDPRUN" --schedule "$W/s.json" --topology "$TOPO" >"$W/out" 2>"$W/err"
rc=$?
check "world mismatch: exit 2, field 'world'" \
    test $rc -eq 2 -a "$(grep -c "field 'world': expected the 2 ranks of this MPI job, got 4" "$W/err")" -eq 1
"${MPIRUN[@]}" -np 1 "$FSDPRUN" --schedule "$W/s.json" --topology "$TOPO" --mode fast >"$W/out" 2>"$W/err"
rc=$?
check "bad --mode: exit 2" test $rc -eq 2 -a "$(grep -c "option --mode: expected emulate or gemm, got 'fast'" "$W/err")" -eq 1
"${MPIRUN[@]}" -np 1 "$FSDPRUN" --schedule "$W/s.json" --topology "$TOPO" --backend nccl >"$W/out" 2>"$W/err"
rc=$?
check "--backend nccl in fsdprun: exit 2, pointing to fsdprun-nccl" \
    test $rc -eq 2 -a "$(grep -c "option --backend: nccl is in fsdprun-nccl" "$W/err")" -eq 1
"$FSDPSIM" compare --sim "$W/sim.json" >"$W/out" 2>"$W/err"
rc=$?
check "compare without --real: exit 2" test $rc -eq 2 -a "$(grep -c 'option --real: expected' "$W/err")" -eq 1

# The watchdog: a GPU 1e6 times slower makes each emulated kernel outlast --timeout 0.3 s.
python3 - "$TOPO" "$W/slow.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
for k in ("peak_tflops_bf16", "peak_tflops_fp16", "peak_tflops_tf32", "peak_tflops_fp32"):
    t["gpu"][k]["value"] = 0.001
t["gpu"]["matmul_efficiency"]["value"] = 0.01
json.dump(t, open(sys.argv[2], "w"))
PY
"$FSDPSIM" -m "$MODEL" -t "$W/slow.json" --nodes 1 --gpus-per-node 2 --strategy ddp --emit-schedule "$W/slow-s.json" >/dev/null
start=$(date +%s)
"${MPIRUN[@]}" -np 2 "$FSDPRUN" --schedule "$W/slow-s.json" --topology "$W/slow.json" --timeout 0.3 --warmup 0 >"$W/out" 2>"$W/err"
rc=$? took=$(( $(date +%s) - start ))
check "stuck job: aborted by the watchdog with a message naming the op (rc $rc, ${took}s)" \
    test $rc -ne 0 -a $rc -ne 124 -a "$(grep -c 'no progress for .* stream compute waits in op' "$W/err")" -ge 1

# Faults: rank 0 stopped (SIGSTOP, as a hung node) or killed (kill -9) in the middle of a run.
# The job must end within --timeout plus a few seconds, the stopped case with a message naming
# the rank the others wait for, and no rank process may stay behind.
rank_pid() { # RANK: the pid of that fsdprun rank of the job started last in $W
    local p
    for p in $(pgrep -x fsdprun); do
        [ "$(readlink /proc/$p/cwd 2>/dev/null)" = "$W" ] || continue
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && echo "$p"
    done
}
"$FSDPSIM" -m "$MODEL" -t "$TOPO" --nodes 1 --gpus-per-node 2 --strategy ddp --emit-schedule "$W/f.json" >/dev/null
# one faulted run: sets rc, took, victim, left. A session folder of this job's own: mpirun
# sometimes segfaults after an abort (Open MPI 4.1, in PMIx_Finalize) and leaves its folder
# behind; the stuck-job case above may have. 30 s of outer timeout, not 120: the job must end
# in 10.
fault_run() {
    local sig=$1 attempt=$2 run=()
    start=$(date +%s)
    rm -rf "$W/ompi-$sig-$attempt" && mkdir -p "$W/ompi-$sig-$attempt"
    for a in "${MPIRUN[@]}"; do
        case $a in TMPDIR=*) a=TMPDIR=$W/ompi-$sig-$attempt ;; 120) a=30 ;; esac
        run+=("$a")
    done
    (cd "$W" && exec "${run[@]}" -np 2 "$FSDPRUN" --schedule f.json --topology "$TOPO" --iters 100000 \
        --warmup 0 --timeout 3 >"$W/out" 2>"$W/err") &
    job=$! victim=""
    for _ in $(seq 50); do victim=$(rank_pid 0); [ -n "$victim" ] && break; sleep 0.1; done
    sleep 1
    [ -n "$victim" ] && kill -$sig "$victim"
    start=$(date +%s) # the job must end within --timeout and a few seconds of the fault, however
    # long mpirun took to start its ranks before it (a loaded CI machine: 12 s start to end)
    # a job still up 15 s on is hanging: what its processes are doing is kept for the log
    rm -f "$W/hang"
    while kill -0 $job 2>/dev/null; do
        if [ ! -e "$W/hang" ] && [ $(( $(date +%s) - start )) -ge 15 ]; then
            ps -eo pid,ppid,stat,wchan:24,etime,args | grep -E '[m]pirun|[o]rted|[f]sdprun' \
                >"$W/hang" 2>&1
        fi
        sleep 0.5
    done
    wait $job
    rc=$? took=$(( $(date +%s) - start ))
    [ -s "$W/hang" ] && sed 's/^/#   /' "$W/hang" | cut -c1-160
    sleep 2
    left=$(pgrep -x fsdprun | while read -r p; do [ "$(readlink /proc/$p/cwd 2>/dev/null)" = "$W" ] && echo "$p"; done | wc -l)
    [ $sig = STOP ] && kill -CONT "$victim" 2>/dev/null
    ompi=$W/ompi-$sig-$attempt
}
for sig in STOP KILL; do
    fault_run $sig 1
    # Rarely (2 of 8 runs on 2026-12-02, both on a loaded 2-core machine) mpirun itself
    # hangs after rank 1's MPI_Abort when rank 0 is stopped, until the outer timeout, although
    # rank 1 has named rank 0 and no rank is left: Open MPI's teardown, not fsdprun's watchdog.
    # Such a run is said and tried once more; two in a row fail.
    if [ $sig = STOP ] && [ $rc -eq 124 ]; then
        echo "# rank 0 stopped: mpirun hung after the abort (rc 124, ${took}s); once more"
        pgrep -x fsdprun | while read -r p; do
            [ "$(readlink /proc/$p/cwd 2>/dev/null)" = "$W" ] && kill -9 "$p"
        done
        fault_run $sig 2
    fi
    if [ $sig = STOP ]; then
        named=$(grep -c 'rank 1: no progress .*waiting for rank 0' "$W/err")
        check "rank 0 stopped: job ends in ${took}s (--timeout 3, rc $rc), naming rank 0 as the one waited for" \
            test -n "$victim" -a $rc -ne 0 -a $rc -ne 124 -a $took -le 10 -a "$named" -ge 1
        [ "$named" -ge 1 ] || grep -v '^ *$' "$W/err" | head -20 | sed 's/^/# /'
    else
        check "rank 0 killed: job ends in ${took}s (rc $rc)" test -n "$victim" -a $rc -ne 0 -a $rc -ne 124 -a $took -le 10
    fi
    check "rank 0 ${sig}: no rank process left behind ($left)" test "$left" -eq 0
    check "rank 0 ${sig}: no Open MPI session file left behind" test -z "$(find "$ompi" -mindepth 1 | head -1)"
done

# A rank stopped while the others wait at the barrier between iterations (a schedule without
# communication, so that the barrier is the only place they meet): they name it too.
cat >"$W/nocomm.json" <<'EOF'
{"format": "fsdpsim-schedule", "version": 1, "world": 2, "nodes": 1, "gpus_per_node": 2, "meta": {},
 "groups": [], "classes": [{"first_rank": 0, "n_ranks": 2, "rank_stride": 1,
  "streams": [{"name": "host", "host": true}],
  "ops": [{"kind": "host", "stream": "host", "name": "work", "phase": "other", "deps": [], "seconds": 0.01}]}]}
EOF
(cd "$W" && exec "${MPIRUN[@]}" -np 2 "$FSDPRUN" --schedule nocomm.json --topology "$TOPO" --iters 100000 \
    --warmup 0 --timeout 2 >"$W/out" 2>"$W/err") &
job=$! victim=""
for _ in $(seq 50); do victim=$(rank_pid 0); [ -n "$victim" ] && break; sleep 0.1; done
sleep 1
[ -n "$victim" ] && kill -STOP "$victim"
wait $job
rc=$?
kill -CONT "$victim" 2>/dev/null
check "rank 0 stopped between iterations: rank 1 names it at the barrier (rc $rc)" \
    test -n "$victim" -a $rc -ne 0 -a $rc -ne 124 -a \
    "$(grep -c 'rank 1: no progress .*at the barrier before iteration [0-9]*, waiting for rank 0 (stopped' "$W/err")" -ge 1
tap_end
