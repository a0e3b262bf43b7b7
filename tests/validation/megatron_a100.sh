#!/usr/bin/env bash
# NVIDIA's own Megatron-LM step times on A100 (DGX A100 nodes of Selene) against the simulation:
# an independent check of the A100 kernel model and of tensor x pipeline parallelism with
# Megatron's fused kernels, beside the development set's BLOOM rows (Megatron-DeepSpeed on Jean Zay,
# 19 % too fast). Nothing here was fitted; both runs are outside ../shared/data/training.
#  - GPT-3 175B: NVIDIA/Megatron-LM README.md at 152aab304d (2021-01-11), "GPT-3 Example": "With
#    full global batch size of 1536 on 1024 A100 GPUs, each iteration takes around 32 seconds";
#    layout from examples/pretrain_gpt3_175B.sh at that commit (tp 8, pp 16, micro-batch 1, fp16,
#    --checkpoint-activations, container pytorch:20.12-py3, whose NCCL is 2.8; no scatter-gather
#    across stages yet: the option arrived later in 2021).
#  - GPT 1T: Narayanan et al., SC21 (arXiv 2104.04473), abstract: 502 petaFLOP/s on 3072 GPUs;
#    layout from examples/academic_paper_scripts/sc21/run_table_1.sh (tp 8, pp 64, micro-batch 1,
#    global batch 3072, 128 layers, hidden 25600, 160 heads, uniform full recompute, DDP local,
#    same container, scatter-gather on by default at the commit its README names, 6985e58).
#    The step time is the paper's FLOP count over that rate: 96 B s l h^2 (1 + s/6h + V/16lh)
#    = 5.139e19 FLOP / 502e15 = 102.4 s.
# Prints each error (+ = simulation too fast) and asserts it within 10 %.
# usage: megatron_a100.sh FSDPSIM SOURCE_ROOT
set -uo pipefail
fsd=$1 root=$2
n=0 failed=0
check() { # NAME MEASURED_S ARGS...
    local name=$1 real=$2; shift 2
    n=$((n + 1))
    local out sim
    out=$("$fsd" -t "$root/topologies/dgx-a100-superpod.json" --strategy ddp --tp 8 \
        --micro-batch 1 --seq-len 2048 --activation-checkpointing --param-dtype fp16 \
        --reduce-dtype fp16 --no-flash-attention --optimizer-impl fused --nccl-version 2.8.3 \
        "$@" --json 2>&1)
    sim=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["step_time_s"])' <<<"$out" 2>/dev/null)
    if [ -z "$sim" ]; then
        echo "not ok $n - $name: fsdpsim gave no step time"
        sed 's/^/# /' <<<"$out" | head -5
        failed=$((failed + 1))
        return
    fi
    local line
    line=$(awk -v r="$real" -v s="$sim" 'BEGIN { e = 1 - s / r;
        printf "measured %.1f s, simulated %.2f s: error %+.1f %%", r, s, 100 * e;
        exit !(e <= 0.10 && e >= -0.10) }')
    if [ $? -eq 0 ]; then echo "ok $n - $name: $line"
    else echo "not ok $n - $name: $line (bound 10 %)"; failed=$((failed + 1)); fi
}
echo "1..2"
check "GPT-3 175B, 1024 A100, tp 8 x pp 16, micro-batch 1, global batch 1536" 32 \
    --model "$root/models/gpt3-175b.json" --nodes 128 --pp 16 --micro-batches 192
check "GPT 1T, 3072 A100, tp 8 x pp 64, micro-batch 1, global batch 3072" 102.4 \
    --model "$root/tests/bench/megatron-1t.json" --nodes 384 --pp 64 --micro-batches 512 \
    --pp-scatter-gather megatron
exit $((failed > 0))
