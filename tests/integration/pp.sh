#!/usr/bin/env bash
# Integration tests of tensor and pipeline parallelism on the command line (issue 5): the
# GPT-3 175B examples run and report per-stage results, the timeline shows the three 1F1B phases,
# output is byte-identical, and each bad option gets exit status 2 and one line naming it.
# usage: pp.sh FSDPSIM SOURCE_ROOT   (prints TAP)
set -u
FSDPSIM=$1
SRC=$2
W=$(mktemp -d "${TMPDIR:-/tmp}/fsdpsim-pp.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
BASE=(-m "$SRC/models/gpt3-175b.json" -t "$SRC/topologies/juwels-booster.json")
n=0 failed=0
check() { # NAME COMMAND...: ok when the command succeeds
    local name=$1
    shift
    n=$((n + 1))
    if "$@"; then echo "ok $n - $name"; else echo "not ok $n - $name"; failed=$((failed + 1)); fi
}

json_field() { # FILE PYTHON-EXPRESSION on d: prints its value
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

gpt3() { # STRATEGY: the issue's example, tp 8 across two 4-GPU nodes
    "$FSDPSIM" "${BASE[@]}" --tp 8 --pp 8 --strategy "$1" --nodes 48 --json --trace "$W/trace-$1.json" \
        >"$W/$1.json" 2>"$W/err" || return 1
    [ "$(json_field "$W/$1.json" "d['tp']['size'], d['pp']['size'], d['dp']['size'], len(d['pp']['stages'])")" = "8 8 3 8" ] || return 1
    # a 1F1B bubble near (p-1)/m = 7/32, and a peak per stage
    json_field "$W/$1.json" "0.15 < d['pp']['bubble_fraction'] < 0.35 and all(s['peak_bytes'] > 0 for s in d['pp']['stages'])" | grep -qx True || return 1
    grep -q "spans nodes" "$W/$1.json" || return 1
    for phase in warm-up steady cool-down; do grep -q "[FB][0-9]*\.0 $phase" "$W/trace-$1.json" || return 1; done
}
check "gpt3-175b tp8 pp8 ddp" gpt3 ddp
check "gpt3-175b tp8 pp8 fsdp" gpt3 fsdp

twod() { # FSDP x TP without a pipeline: FSDP's report, no pipeline section, the TP size in JSON
    "$FSDPSIM" -m "$SRC/models/gpt.json" --tp 2 --strategy full_shard --nodes 1 >"$W/2d.txt" 2>"$W/err" || return 1
    ! grep -q "^pipeline" "$W/2d.txt" && ! grep -q "reshard_after_forward off" "$W/2d.txt" || return 1
    grep -q "tensor parallel 2 x data parallel 2" "$W/2d.txt" || return 1
    "$FSDPSIM" -m "$SRC/models/gpt.json" --tp 2 --strategy full_shard --nodes 1 --json >"$W/2d.json" || return 1
    [ "$(json_field "$W/2d.json" "d['tp']['size'], d['dp']['size'], 'pp' in d")" = "2 2 False" ]
}
check "fsdp x tp (2D): no pipeline section" twod

# the communication figures are one GPU's of stage 0 and account for its sends and receives (the
# activations it sends, the gradients it receives: 32 micro-batches each), in the summary and JSON
p2p_rows() {
    local args=("${BASE[@]}" --tp 8 --pp 8 --nodes 48 --strategy ddp)
    "$FSDPSIM" "${args[@]}" >"$W/p2p.txt" 2>"$W/err" || return 1
    grep -q "^communication per GPU of stage 0 per step: " "$W/p2p.txt" || return 1
    grep -qE "^  send +[0-9]+ calls" "$W/p2p.txt" && grep -qE "^  recv +[0-9]+ calls" "$W/p2p.txt" || return 1
    json_field "$W/ddp.json" "d['communication']['stage'] == 0 and all(d['communication']['point_to_point'][k]['count'] >= 32 and d['communication']['point_to_point'][k]['bytes'] > 0 for k in ('send', 'recv'))" | grep -qx True || return 1
    json_field "$W/2d.json" "'stage' in d['communication'] or 'point_to_point' in d['communication']" | grep -qx False
}
check "a pipeline's communication rows: stage 0's, with its sends and receives" p2p_rows

# each stage's table row says what one of its GPUs sends (stage 0's is the communication total
# above), and the stages differ: the first and last exchange the tied embedding's gradient
stage_sent() {
    json_field "$W/ddp.json" "(lambda s: abs(s[0]['sent_bytes'] - d['communication']['bytes_per_gpu']) <= 1e-6 * s[0]['sent_bytes'] and all(x['sent_bytes'] > 0 and 0 <= x['inter_node_bytes'] <= x['sent_bytes'] for x in s) and len(set(x['sent_bytes'] for x in s)) > 1)(d['pp']['stages'])" | grep -qx True || return 1
    grep -q "stage  peak memory   busy        bubble      sent (across nodes)" "$W/p2p.txt"
}
check "each stage's communication sent, in the table and --json" stage_sent

# ZeRO-1 with Megatron's pipeline (issue 15): per stage, against DDP's fp32 master + bf16 working
# copy (6 B), fp32 gradients (4 B) and AdamW state (8 B) per parameter: ZeRO-1 holds 2 + 4/dp,
# 2 and 8/dp bytes (dp = 3 here), and reduce-scatters and all-gathers over dp instead of an
# all-reduce (the TP all-reduces remain)
zero1_pp() {
    "$FSDPSIM" "${BASE[@]}" --tp 8 --pp 8 --nodes 48 --strategy ddp --json >"$W/z-ddp.json" 2>"$W/err" || return 1
    "$FSDPSIM" "${BASE[@]}" --tp 8 --pp 8 --nodes 48 --strategy zero1 --json >"$W/z1.json" 2>"$W/err" || return 1
    python3 - "$W/z-ddp.json" "$W/z1.json" <<'PY'
import json, sys
ddp, z = (json.load(open(f)) for f in sys.argv[1:3])
assert z["strategy"] == "zero1", z["strategy"]
for a, b in zip(ddp["pp"]["stages"], z["pp"]["stages"]):
    psi = a["breakdown"]["params"] / 6
    for key, want in (("params", (2 + 4 / 3) * psi), ("grads", 2 * psi), ("optimizer", 8 / 3 * psi)):
        got = b["breakdown"][key]
        assert abs(got - want) <= 1e-9 * want, (b["stage"], key, got, want)
assert {"reduce_scatter", "allgather"} <= set(z["communication"]["collectives"]), z["communication"]
PY
}
check "zero1 with tp 8 x pp 8: 4 + 12/dp bytes per parameter per stage" zero1_pp

identical() {
    local args=("${BASE[@]}" --tp 4 --pp 4 --pp-schedule interleaved --virtual-stages 2 --nodes 16 --sequence-parallel)
    "$FSDPSIM" "${args[@]}" >"$W/a" && "$FSDPSIM" "${args[@]}" >"$W/b" && cmp -s "$W/a" "$W/b"
}
check "byte-identical output" identical

round_trip() {
    local args=("${BASE[@]}" --tp 4 --pp 8 --nodes 16 --strategy ddp --json)
    "$FSDPSIM" "${args[@]}" --emit-schedule "$W/s.json" >"$W/a" &&
        "$FSDPSIM" "${args[@]}" --schedule "$W/s.json" >"$W/b" && cmp -s "$W/a" "$W/b"
}
check "schedule round trip" round_trip

bad() { # TEXT-IN-MESSAGE OPTIONS...: exit 2, nothing on stdout, one line on stderr naming it
    local want=$1
    shift
    "$FSDPSIM" "${BASE[@]}" "$@" >"$W/out" 2>"$W/err"
    local rc=$?
    [ $rc -eq 2 ] && [ ! -s "$W/out" ] && [ "$(wc -l <"$W/err")" -eq 1 ] && grep -q -- "$want" "$W/err" ||
        { echo "# rc $rc: $(cat "$W/err")"; return 1; }
}
check "tp must divide heads" bad "field 'heads'" --tp 5 --nodes 5
check "tp x pp must divide GPUs" bad "does not divide" --pp 7 --nodes 4
check "pp must divide layers" bad "pp-partition" --pp 5 --nodes 5
check "partition must add up" bad "expected 96 layers" --pp 2 --pp-partition 40,40 --nodes 2
check "partition numbers" bad "option --pp-partition" --pp 2 --pp-partition 40,x --nodes 2
check "unknown schedule" bad "option --pp-schedule" --pp 2 --pp-schedule zigzag
check "schedule needs pp" bad "option --pp-schedule" --pp-schedule gpipe
check "virtual stages need interleaved" bad "interleaved" --pp 2 --pp-schedule 1f1b --virtual-stages 2
check "interleaved needs m multiple of pp" bad "multiple of 4" --pp 4 --virtual-stages 2 --micro-batches 6
check "sequence parallel needs tp" bad "option --sequence-parallel" --sequence-parallel
check "micro-batches range" bad "option --micro-batches" --pp 2 --micro-batches 0
check "micro-batches vs grad-accum" bad "disagree" --pp 2 --micro-batches 4 --grad-accum 8
check "placement" bad "option --placement" --tp 4 --placement tp-tp-dp
check "tp straddling nodes" bad "option --tp" --tp 6 --nodes 6
echo "1..$n"
[ "$failed" -eq 0 ]
