#!/usr/bin/env bash
# --cuda-launch-blocking (CUDA_LAUNCH_BLOCKING=1, src/strategy/gen.c): listed by --help, takes
# the variable's values (=1 the flag, =0 none) and no other (exit 2, one line naming the option),
# makes every layout slower than its asynchronous run (DDP, FSDP, 1F1B, interleaved and GPipe
# pipelines), and a pipeline's steady-state skip gives the full run's output with it.
# usage: launch_blocking.sh FSDPSIM SOURCE_ROOT   (prints TAP)
set -u
FSDPSIM=$1
SRC=$2
W=$(mktemp -d "${TMPDIR:-/tmp}/fsdpsim-launch.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
n=0 failed=0
result() { # NAME OK
    n=$((n + 1))
    if [ "$2" = 1 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=$((failed + 1)); fi
}
GPT=(-m "$SRC/models/gpt.json" -t "$SRC/topologies/juwels-booster.json")
GPT3=(-m "$SRC/models/gpt3-175b.json" -t "$SRC/topologies/juwels-booster.json")
step() { # ARGS...: the step time of a --json run, or nothing
    "$FSDPSIM" "$@" --json 2>"$W/err" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["step_time_s"])' 2>/dev/null
}

ok=0
"$FSDPSIM" --help >"$W/help" 2>&1 && grep -qE -- '--cuda-launch-blocking[[:space:]].*CUDA_LAUNCH_BLOCKING=1' "$W/help" && ok=1
result "--help lists --cuda-launch-blocking" $ok

# slower than the asynchronous run, on every generator that launches kernels
slower() { # NAME ARGS...
    local name=$1 a b ok=0
    shift
    a=$(step "$@")
    b=$(step "$@" --cuda-launch-blocking)
    if [ -n "$a" ] && [ -n "$b" ] && python3 -c "import sys; sys.exit(0 if $b > $a else 1)"; then
        ok=1
    else
        echo "# $name: asynchronous ${a:-failed}, blocking ${b:-failed}: $(head -c 300 "$W/err")"
    fi
    result "$name: slower with blocking launches" $ok
}
slower "ddp" "${GPT[@]}" --strategy ddp --nodes 2
slower "fsdp full_shard" "${GPT[@]}" --nodes 2
slower "hybrid_shard, cpu offload" "${GPT[@]}" --strategy hybrid --nodes 2 --cpu-offload
slower "tp 4 pp 4 1F1B" "${GPT3[@]}" --tp 4 --pp 4 --strategy ddp --nodes 16 --micro-batches 16
slower "tp 4 pp 4 interleaved, sequence parallel" "${GPT3[@]}" --tp 4 --pp 4 --virtual-stages 2 --sequence-parallel --strategy ddp --nodes 16 --micro-batches 16
slower "tp 4 pp 8 gpipe" "${GPT3[@]}" --tp 4 --pp 8 --strategy ddp --nodes 16 --pp-schedule gpipe --micro-batches 16

# the variable's values: =1 is the flag, =0 none, the last one given counts
same_json() { # NAME "ARGS A" "ARGS B" (word-split)
    local ok=0
    # shellcheck disable=SC2086
    "$FSDPSIM" "${GPT[@]}" --nodes 2 $2 --json >"$W/a" 2>&1 &&
        "$FSDPSIM" "${GPT[@]}" --nodes 2 $3 --json >"$W/b" 2>&1 && cmp -s "$W/a" "$W/b" && ok=1
    result "$1" $ok
}
same_json "=1 is the flag" "--cuda-launch-blocking=1" "--cuda-launch-blocking"
same_json "=0 is no flag" "--cuda-launch-blocking=0" ""
same_json "the last one counts" "--cuda-launch-blocking --cuda-launch-blocking=0" ""

bad() { # VALUE
    local ok=0
    "$FSDPSIM" "${GPT[@]}" "--cuda-launch-blocking=$1" >"$W/out" 2>"$W/err"
    local rc=$?
    if [ $rc = 2 ] && [ ! -s "$W/out" ] && [ "$(wc -l <"$W/err")" = 1 ] &&
        grep -qF "fsdpsim: option --cuda-launch-blocking: expected 1 or 0" "$W/err" &&
        grep -qF "got \"$1\"" "$W/err"; then
        ok=1
    else
        echo "# exit $rc: $(head -c 300 "$W/err")"
    fi
    result "--cuda-launch-blocking=$1: exit 2, one message" $ok
}
bad yes
bad 2
bad ""

# the steady-state skip (src/core/sim_steady.c) against the full run, with blocking launches
steady_same() { # NAME ARGS...
    local name=$1 ok=0
    shift
    FSDPSIM_NO_STEADY_STATE=1 "$FSDPSIM" "$@" --cuda-launch-blocking --json >"$W/full" 2>&1 &&
        "$FSDPSIM" "$@" --cuda-launch-blocking --json >"$W/steady" 2>&1 &&
        cmp -s "$W/full" "$W/steady" && ok=1
    result "$name: steady-state skip = full run" $ok
}
steady_same "tp 8 pp 8, 256 micro-batches" "${GPT3[@]}" --tp 8 --pp 8 --strategy ddp --nodes 48 --micro-batches 256
steady_same "gpt pp 4, 64 micro-batches" "${GPT[@]}" --pp 4 --strategy ddp --nodes 2 --micro-batches 64
# GPipe's first stage sends 64 forwards with no receive between them: each send waited for
# before the next forward (gen.c), in the skipped periods as in the full run
steady_same "gpt pp 4 gpipe, 64 micro-batches" "${GPT[@]}" --pp 4 --strategy ddp --nodes 2 --micro-batches 64 --pp-schedule gpipe
# with checkpointing a warm-up micro-batch's activation is freed by a steady backward, and with
# a host that waits for its GPU that free is still in flight at the checkpoints: the memory
# snapshot took a moving buffer's number for the fixed one's, proved a period that was not, and
# the skip freed a buffer never allocated (mem_tracker_snapshot marks the moving ones apart)
steady_same "gpt tp 2 pp 4, checkpointing, 64 micro-batches" "${GPT[@]}" --tp 2 --pp 4 --strategy ddp --nodes 2 --micro-batches 64 --activation-checkpointing

echo "1..$n"
[ "$failed" -eq 0 ]
