#!/usr/bin/env bash
# fsdpsim search at scale (issue 14): over 10,000 configurations of Llama-2-7B and GPT-3 175B on
# JUWELS Booster, in process, as 2 shards (--shard 0/2, 1/2) on 2 cores, merged.
# Prints each search's configurations, simulations and wall time, and the total; the issue's
# target is 10 s. Run on demand: meson test -C build --benchmark search (or this script).
#
# usage: bench_search.sh FSDPSIM SOURCE_ROOT [METHOD]   (METHOD: asha [default] or exhaustive)
set -eu
FSDPSIM=$1
cd "$2"
METHOD=${3:-asha}
W=$(mktemp -d "${TMPDIR:-/tmp}/fsdpsim-bench-search.XXXXXX")
trap 'rm -rf "$W"' EXIT
run() { # run NAME ARGS...: one search as 2 shards on the 2 cores, merged; summary and wall time
    local name=$1 t0 t1
    shift
    t0=$(date +%s.%N)
    for i in 0 1; do
        "$FSDPSIM" search "$@" --method "$METHOD" --shard $i/2 --out "$W/$name.jsonl" >/dev/null &
    done
    wait
    "$FSDPSIM" search --merge "$W/$name.jsonl".*-of-2 --out "$W/$name.jsonl" --top 1 "${OBJ[@]}" \
        >"$W/$name.txt"
    t1=$(date +%s.%N)
    printf '%-12s %6.2f s  %s\n' "$name" "$(echo "$t1 - $t0" | bc)" "$(head -1 "$W/$name.txt")"
    sed -n '4p' "$W/$name.txt" | cut -c1-160 | sed 's/^/             best: /'
}
T0=$(date +%s.%N)
# Llama-2-7B: trained on 2T tokens (Touvron et al. 2023, arXiv:2307.09288, Table 1), 4M-token
# batches (1024 sequences of 4096)
OBJ=(--tokens 2T --objective node-hours)
run llama2-7b -m models/llama2-7b.json --vary nodes=1..128:x2 \
    --vary strategy=full,grad_op,no_shard,hybrid,hybrid_zero2,ddp --vary micro-batch=1..8:x2 \
    --vary activation-checkpointing=on,off --vary backward-prefetch=pre,post \
    --vary limit-all-gathers=true,false --vary forward-prefetch=on,off --vary wrap=transformer,none \
    --global-batch 1024 "${OBJ[@]}"
# GPT-3 175B: 300B tokens, batch 1536 sequences of 2048 (Brown et al. 2020, arXiv:2005.14165,
# Table 2.1: 3.2M tokens)
OBJ=(--tokens 300G --objective time)
run gpt3-175b -m models/gpt3-175b.json --vary nodes=32..512:x2 --vary tp=1..4:x2 \
    --vary pp=1..64:x2 --vary micro-batch=1,2,4 --vary strategy=ddp,full \
    --vary activation-checkpointing=on,off --vary use-distributed-optimizer=on,off \
    --vary sequence-parallel=on,off --global-batch 1536 "${OBJ[@]}"
T1=$(date +%s.%N)
n=$(cat "$W"/*.txt | grep -o '^fsdpsim search: [0-9]*' | awk '{s += $3} END {print s}')
printf 'total        %6.2f s  for %d configurations (%s; target <= 10 s)\n' \
    "$(echo "$T1 - $T0" | bc)" "$n" "$METHOD"
