#!/usr/bin/env bash
# The steady-state pipeline simulation (src/core/sim_steady.c) against the full one
# (FSDPSIM_NO_STEADY_STATE=1): summary, --json and --trace byte-identical on pp.sh's layouts and
# longer ones whose steady phase repeats (issue 13); and compact runs against the full program.
# usage: steady.sh FSDPSIM SOURCE_ROOT   (prints TAP)
set -u
FSDPSIM=$1
SRC=$2
W=$(mktemp -d "${TMPDIR:-/tmp}/fsdpsim-steady.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
n=0 failed=0
same() { # NAME ARGS...: both ways, every output the same
    local name=$1
    shift
    n=$((n + 1))
    local ok=1
    for mode in summary json; do
        local extra=()
        [ "$mode" = json ] && extra=(--json)
        FSDPSIM_NO_STEADY_STATE=1 "$FSDPSIM" "$@" "${extra[@]}" --trace "$W/full.trace" >"$W/full.out" 2>&1 || ok=0
        "$FSDPSIM" "$@" "${extra[@]}" --trace "$W/steady.trace" >"$W/steady.out" 2>&1 || ok=0
        cmp -s "$W/full.out" "$W/steady.out" && cmp -s "$W/full.trace" "$W/steady.trace" || ok=0
    done
    if [ $ok = 1 ]; then echo "ok $n - $name"; else echo "not ok $n - $name"; failed=$((failed + 1)); fi
}
GPT3=(-m "$SRC/models/gpt3-175b.json" -t "$SRC/topologies/juwels-booster.json")
same "tp 8 pp 8 ddp (pp.sh)" "${GPT3[@]}" --tp 8 --pp 8 --strategy ddp --nodes 48
same "tp 8 pp 8 fsdp (pp.sh)" "${GPT3[@]}" --tp 8 --pp 8 --strategy fsdp --nodes 48
same "tp 8 pp 8 ddp, 256 micro-batches (skips)" "${GPT3[@]}" --tp 8 --pp 8 --strategy ddp --nodes 48 --micro-batches 256
same "tp 4 pp 4 x 2 chunks, sequence parallel" "${GPT3[@]}" --tp 4 --pp 4 --virtual-stages 2 --sequence-parallel --strategy ddp --nodes 16 --micro-batches 64
same "tp 8 pp 16, 64 micro-batches" "${GPT3[@]}" --tp 8 --pp 16 --strategy ddp --nodes 64 --micro-batches 64
same "tp 8 pp 8 zero1 (pp.sh)" "${GPT3[@]}" --tp 8 --pp 8 --strategy zero1 --nodes 48
same "tp 4 pp 4 interleaved, sequence parallel (pp.sh)" "${GPT3[@]}" --tp 4 --pp 4 --pp-schedule interleaved --virtual-stages 2 --nodes 16 --sequence-parallel
same "tp 4 pp 4 interleaved, sequence parallel, 256 micro-batches (skips)" "${GPT3[@]}" --tp 4 --pp 4 --pp-schedule interleaved --virtual-stages 2 --nodes 16 --sequence-parallel --micro-batches 256
same "tp 4 pp 8 ddp (pp.sh)" "${GPT3[@]}" --tp 4 --pp 8 --nodes 16 --strategy ddp
same "tp 4 pp 8 gpipe, 64 micro-batches" "${GPT3[@]}" --tp 4 --pp 8 --nodes 16 --strategy ddp --pp-schedule gpipe --micro-batches 64
same "gpt pp 4, 64 micro-batches" -m "$SRC/models/gpt.json" --pp 4 --strategy ddp --nodes 2 --micro-batches 64
# a schedule read back from its JSON (buffer and op names interned in the file's order)
"$FSDPSIM" "${GPT3[@]}" --tp 8 --pp 8 --strategy ddp --nodes 48 --micro-batches 128 --emit-schedule "$W/s.json" >/dev/null
same "schedule file, 128 micro-batches" "${GPT3[@]}" --tp 8 --pp 8 --strategy ddp --nodes 48 --micro-batches 128 --schedule "$W/s.json"
# A long 1F1B pipeline runs compact (src/compact: fewer micro-batches generated, the rest added
# back at the skip): summary and --json byte-identical to the full program's
# (FSDPSIM_NO_COMPACT=1), and compact it was, from a program of SIZE micro-batches
# (FSDPSIM_STEADY_DEBUG names the programs made, then each class's gap, and no refusal after the
# last program made; REFUSED 1: the engine refused a smaller one before it, 0: none)
compact() { # NAME SIZE REFUSED ARGS...
    local name=$1 size=$2 refused=$3
    shift 3
    n=$((n + 1))
    local ok=1
    for mode in summary json; do
        local extra=()
        [ "$mode" = json ] && extra=(--json)
        FSDPSIM_NO_COMPACT=1 "$FSDPSIM" "$@" "${extra[@]}" >"$W/full.out" 2>&1 || ok=0
        FSDPSIM_STEADY_DEBUG=1 "$FSDPSIM" "$@" "${extra[@]}" >"$W/compact.out" 2>"$W/compact.err" || ok=0
        cmp -s "$W/full.out" "$W/compact.out" || ok=0
        sed -n '/^compact: /h; /^compact: /!H; ${x; p}' "$W/compact.err" >"$W/last.err"
        grep -q "^compact: $size micro-batches" "$W/last.err" || ok=0
        grep -q "^steady: class 0: [0-9]* omitted ops go back at op [0-9]*$" "$W/last.err" || ok=0
        grep -q "refused" "$W/last.err" && ok=0
        [ "$(grep -c "refused" "$W/compact.err")" = "$refused" ] || ok=0
    done
    if [ $ok = 1 ]; then echo "ok $n - $name"; else echo "not ok $n - $name"; failed=$((failed + 1)); fi
}
compact "compact: tp 8 pp 8 ddp, 256 micro-batches" 20 0 "${GPT3[@]}" --tp 8 --pp 8 --strategy ddp --nodes 48 --micro-batches 256
compact "compact: tp 8 pp 8 zero1, checkpointing, 300 micro-batches (regions short at 20: 112)" 112 0 "${GPT3[@]}" --tp 8 --pp 8 --strategy zero1 --nodes 48 --micro-batches 300 --activation-checkpointing
compact "compact: tp 8 pp 8 ddp, 3000 micro-batches (the host still ahead at the first checkpoints: refused at 20, 112)" 112 1 "${GPT3[@]}" --tp 8 --pp 8 --strategy ddp --nodes 48 --micro-batches 3000
compact "compact: Llama-2-70B tp 4 pp 4, selective recompute, 200 micro-batches" 16 0 -m "$SRC/models/llama2-70b.json" -t "$SRC/topologies/juwels-booster.json" --tp 4 --pp 4 --strategy ddp --nodes 8 --micro-batches 200 --recompute-granularity selective
# FSDPSIM_STEADY_DEBUG=1: each class's region, then at each checkpoint the first field that
# differs from the last one, or "same state" where the period is proven (then skipped); the
# outputs themselves unchanged
debug() { # NAME EXPECT ARGS...
    local name=$1 expect=$2
    shift 2
    n=$((n + 1))
    FSDPSIM_STEADY_DEBUG=1 "$FSDPSIM" "$@" >"$W/debug.out" 2>"$W/debug.err"
    "$FSDPSIM" "$@" >"$W/plain.out" 2>&1
    if grep -q "^steady: class 0: ops [0-9]*\.\.[0-9]* repeat every [0-9]*$" "$W/debug.err" &&
        grep -q "^steady: checkpoint at [0-9]* ns, period [0-9]* ns: $expect" "$W/debug.err" &&
        cmp -s "$W/debug.out" "$W/plain.out"; then
        echo "ok $n - $name"
    else
        echo "not ok $n - $name"
        failed=$((failed + 1))
    fi
}
debug "debug: a period proven" "same state" "${GPT3[@]}" --tp 8 --pp 8 --strategy ddp --nodes 48 --micro-batches 256
# tensor parallelism across two nodes beside the stages' sends: proven since a transfer's
# progress depends on its own rates only (src/net/flow.c integrate); its stages drifted by a few
# nanoseconds per period for ever before
debug "debug: TP across nodes, a period proven" "same state" "${GPT3[@]}" --tp 8 --pp 16 --strategy ddp --nodes 64 --micro-batches 64
# (interleaved tp 4 x pp 4: its sends' start times drift for tens of periods before they settle)
debug "debug: a period that differs, named" "differs at byte [0-9]* of [0-9]* (was [0-9]*): op: start_ns (class or transfer [0-9]*, op or index [0-9]*); op [a-z]* \"[BF][0-9.]* steady[^\"]*\" on [a-z:_]*" "${GPT3[@]}" --tp 4 --pp 4 --strategy ddp --nodes 16 --pp-schedule interleaved --virtual-stages 2 --micro-batches 64
echo "1..$n"
[ $failed = 0 ]
