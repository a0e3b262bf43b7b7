#!/usr/bin/env bash
# --fp8-format on a Hopper machine (topologies/hgx-h100-ndr400.json), through the command line:
# the run, its summary, the schedule's fp8 kernel records read back to the same step, and an fp8
# schedule refused on an A100. Prints TAP; exit status 1 if a case failed.
#
# usage: fp8.sh FSDPSIM SOURCE_ROOT
set -u
FSDPSIM=$1
SRC=$2
case $FSDPSIM in /*) ;; *) FSDPSIM=$PWD/$FSDPSIM ;; esac
case $SRC in /*) ;; *) SRC=$PWD/$SRC ;; esac
W=$(mktemp -d "${TMPDIR:-/tmp}/fsdpsim-fp8.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
H100=(-m "$SRC/models/llama2-7b.json" -t "$SRC/topologies/hgx-h100-ndr400.json" --nodes 1)
n=0 failed=0

# check NAME COMMAND...: the command's exit status 0 is a pass
check() {
    local name=$1
    shift
    n=$((n + 1))
    if "$@" >"$W/diag" 2>&1; then
        echo "ok $n - $name"
    else
        echo "not ok $n - $name"
        sed 's/^/# /' "$W/diag"
        failed=$((failed + 1))
    fi
}

step() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["step_time_s"])' "$1"; }

# bf16 against fp8: the linears' GEMMs at the fp8 rate, so the step is shorter, but by less than
# half (attention, the head, norms and the casts stay); hybrid and e4m3 cost the same
t_run() {
    timeout 60 "$FSDPSIM" "${H100[@]}" --json >"$W/bf16.json" || return 1
    timeout 60 "$FSDPSIM" "${H100[@]}" --fp8-format hybrid --json >"$W/hybrid.json" || return 1
    timeout 60 "$FSDPSIM" "${H100[@]}" --fp8-format e4m3 --json >"$W/e4m3.json" || return 1
    local b h e
    b=$(step "$W/bf16.json") h=$(step "$W/hybrid.json") e=$(step "$W/e4m3.json")
    [ "$h" = "$e" ] || { echo "hybrid $h s, e4m3 $e s: expected the same"; return 1; }
    python3 -c "import sys; b, h = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if 0.5 * b < h < 0.95 * b else 1)" "$b" "$h" ||
        { echo "bf16 $b s, fp8 $h s: expected fp8 5-50 % faster"; return 1; }
}
check run/fp8-faster-than-bf16 t_run

t_summary() {
    timeout 60 "$FSDPSIM" "${H100[@]}" --fp8-format hybrid >"$W/summary.txt" || return 1
    grep -q "fp8 linear layers (Transformer Engine, hybrid)" "$W/summary.txt" ||
        { echo "summary does not name fp8:"; head -8 "$W/summary.txt"; return 1; }
}
check run/summary-names-fp8 t_summary

# --emit-schedule writes the linears' GEMMs as "dtype": "fp8" kernel records (the attention and
# the head as bf16); --schedule reads them back to the same step, bit for bit
t_schedule() {
    timeout 60 "$FSDPSIM" "${H100[@]}" --fp8-format hybrid --emit-schedule "$W/s.json" --json >"$W/a.json" || return 1
    python3 - "$W/s.json" <<'PY' || return 1
import json, sys
d = json.load(open(sys.argv[1]))
dt = [k["dtype"] for c in d["classes"] for l in c.get("kernel_lists", []) for k in l]
assert "fp8" in dt and "bf16" in dt, sorted(set(dt))
PY
    timeout 60 "$FSDPSIM" "${H100[@]}" --fp8-format hybrid --schedule "$W/s.json" --json >"$W/b.json" || return 1
    [ "$(step "$W/a.json")" = "$(step "$W/b.json")" ] || { echo "read back: $(step "$W/b.json") s, generated $(step "$W/a.json") s"; return 1; }
}
check run/schedule-round-trip t_schedule

# the same schedule, its meta left out (a hand-edited file), on an A100: refused, one line
t_schedule_a100() {
    python3 -c "
import json, sys
d = json.load(open(sys.argv[1])); d['meta'].pop('topology', None); d['meta'].pop('strategy', None)
json.dump(d, open(sys.argv[2], 'w'))" "$W/s.json" "$W/s-a100.json" || return 1
    timeout 60 "$FSDPSIM" -m "$SRC/models/llama2-7b.json" -t "$SRC/topologies/hgx-a100-40gb.json" --nodes 1 \
        --schedule "$W/s-a100.json" >"$W/out" 2>"$W/err"
    local rc=$?
    [ $rc -eq 2 ] && [ ! -s "$W/out" ] && [ "$(wc -l <"$W/err")" -eq 1 ] &&
        grep -q "fp8 GEMMs.*no fp8 tensor cores" "$W/err" || { echo "rc $rc: $(cat "$W/err")"; return 1; }
}
check input/fp8-schedule-on-a100 t_schedule_a100

echo "1..$n"
[ "$failed" -eq 0 ]
