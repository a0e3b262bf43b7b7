#!/usr/bin/env bash
# Integration tests of fsdprun-nccl, the CUDA/NCCL executor. Where it was not built (no CUDA or
# NCCL at configure time) the test is skipped (exit 77). On a machine without a GPU it must say so
# in one message ("no CUDA device: ...") and exit with status 3, never crash; with a GPU it runs
# one rank and its trace must be one that `fsdpsim compare` reads, in fsdprun's format.
# usage: fsdprun_nccl.sh FSDPSIM FSDPRUN_NCCL|"" SOURCE_ROOT. Prints TAP.
set -u
if [ -z "${2:-}" ] || [ ! -x "$2" ]; then
    echo "1..0 # SKIP fsdprun-nccl was not built (meson found no CUDA runtime, cuBLAS or NCCL)"
    exit 77
fi
FSDPSIM=$(realpath "$1") NCCLRUN=$(realpath "$2") SRC=$(realpath "$3")
. "$(dirname "$0")/mpi_tap.sh"
"$FSDPSIM" -m "$MODEL" -t "$TOPO" --nodes 1 --gpus-per-node 1 --strategy ddp --emit-schedule "$W/s.json" \
    --trace "$W/sim.json" >/dev/null

"${MPIRUN[@]}" -np 1 "$NCCLRUN" --schedule "$W/s.json" --topology "$TOPO" --iters 3 --warmup 1 \
    --trace "$W/real.json" >"$W/out" 2>"$W/err"
rc=$?
if [ $rc -eq 3 ]; then
    # no GPU here: one message from fsdprun-nccl, nothing written
    check "no GPU: exit 3, one line 'no CUDA device: ...' naming the rank" \
        test "$(grep -c '^fsdprun-nccl: no CUDA device: rank 0 on ' "$W/err")" -eq 1 -a \
        "$(grep -c '^fsdprun-nccl' "$W/err")" -eq 1
    check "no GPU: no trace written, nothing on stdout" test ! -e "$W/real.json" -a ! -s "$W/out"
    # the same without mpirun (a singleton MPI process), and with 2 ranks: still one message
    "$NCCLRUN" --schedule "$W/s.json" --topology "$TOPO" >"$W/out" 2>"$W/err"
    rc=$?
    check "no GPU, no mpirun: exit 3, one message" \
        test $rc -eq 3 -a "$(grep -c '^fsdprun-nccl: no CUDA device: ' "$W/err")" -eq 1
    "${MPIRUN[@]}" -np 2 "$NCCLRUN" --schedule "$W/s.json" --topology "$TOPO" >"$W/out" 2>"$W/err"
    rc=$?
    check "no GPU, 2 ranks: exit 3, one message counting both" \
        test $rc -eq 3 -a "$(grep -c '^fsdprun-nccl: no CUDA device: .*(2 of 2 ranks cannot run' "$W/err")" -eq 1
else
    check "GPU: fsdprun-nccl runs a DDP schedule on one rank (rc $rc)" test $rc -eq 0
    check "GPU: trace in fsdprun's format, backend nccl, device named, 3 iterations" python3 - "$W/real.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
o = d["otherData"]
assert o["generator"] == "fsdprun" and o["backend"] == "nccl" and o["collectives"] == "nccl", o
assert o["mode"] == "cublas" and o["device"] and len(o["step_time_s"]) == 3, o
x = [e for e in d["traceEvents"] if e["ph"] == "X"]
assert any(e["cat"] == "compute" and e["dur"] > 0 for e in x)
PY
    "$FSDPSIM" compare --real "$W/real.json" --sim "$W/sim.json" --json >"$W/cmp" 2>"$W/err"
    check "GPU: compare reads the trace" python3 -c \
        'import json,sys; d=json.load(open(sys.argv[1])); assert d["real"]["ranks"] == 1 and "compute" in d["op_kinds"]' "$W/cmp"
fi

# bad input: one message, exit 2, whether or not there is a GPU
"$NCCLRUN" --schedule "$W/s.json" --topology "$TOPO" --mode gemm >"$W/out" 2>"$W/err"
rc=$?
check "--mode gemm: exit 2, the nccl backend runs cublas" \
    test $rc -eq 2 -a "$(grep -c "option --mode: the nccl backend runs cublas and nccl only, got 'gemm'" "$W/err")" -eq 1
"$NCCLRUN" --calibrate "$W/t.json" >"$W/out" 2>"$W/err"
rc=$?
check "--calibrate: exit 2, pointing to the mpi backend" \
    test $rc -eq 2 -a "$(grep -c 'option --calibrate: .*--backend mpi' "$W/err")" -eq 1
tap_end
