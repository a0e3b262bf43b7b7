#!/usr/bin/env bash
# The kernel model (src/kern) against the microbenchmark tables it was calibrated on
# (../shared/data/kernels): prints each table's error and asserts a bound a little above what the
# model reaches today, so that a change that makes it worse fails. Skipped when shared/ is absent.
# usage: kernels.sh FSDPSIM SOURCE_ROOT
set -uo pipefail
fsdpsim=$1 root=$2
data=$root/../shared/data/kernels
if [ ! -d "$data" ]; then echo "1..0 # SKIP $data not found"; exit 0; fi
n=0 failed=0
check() { # NAME BOUND_MAE_PCT ARGS...
    local name=$1 bound=$2; shift 2
    n=$((n + 1))
    local out; out=$("$fsdpsim" kernels --summary "$@" 2>&1)
    local mae; mae=$(sed -n 's/^mean absolute error \([0-9.]*\) %.*/\1/p' <<<"$out")
    if [ -n "$mae" ] && awk -v m="$mae" -v b="$bound" 'BEGIN { exit !(m <= b) }'; then
        echo "ok $n - $name: mean abs. error $mae % (bound $bound %); $(tail -1 <<<"$out" | sed 's/.*, worst/worst/')"
    else
        echo "not ok $n - $name: mean abs. error ${mae:-?} % above $bound %"
        sed 's/^/# /' <<<"$out" | tail -5
        failed=$((failed + 1))
    fi
}
echo "1..10"
check "H100 GEMM bf16 (XLA table, 375 shapes)" 6 -t "$root/topologies/hgx-h100-ndr400.json" \
    --table "$data/gemm_h100_xla_perf_table.tsv"
check "A100 GEMM bf16 (CUDA 11 blog, square 512-8192)" 7 -t "$root/topologies/juwels-booster.json" \
    --table "$data/gemm_a100_cublas_square_cuda11.tsv" --min-gflop 0.1
check "A100 GEMM fp16 (Azure cuBLASLt, 10,000 warm-ups: at the sustained fraction)" 11 \
    -t "$root/topologies/mosaicml-a100-80gb.json" --table "$data/gemm_azure_cublaslt.tsv" --gpu A100 \
    --dtype fp16 --sustained
check "A100 GEMM bf16 (MAMF best shapes, A100 SXM)" 2.5 -t "$root/topologies/juwels-booster.json" \
    --table "$data/gemm_mamf_best_shape.tsv" --gpu "A100 SXM"
check "A100 GEMM tf32 (CUDA 11 blog)" 14 -t "$root/topologies/juwels-booster.json" \
    --table "$data/gemm_a100_cublas_square_cuda11.tsv" --min-gflop 0.1 --dtype tf32
check "A100 FlashAttention-2 fwd+bwd" 5 -t "$root/topologies/juwels-booster.json" \
    --table "$data/attention_flash_tflops.tsv" --gpu A100
check "H100 FlashAttention-2 fwd and fwd+bwd" 8 -t "$root/topologies/hgx-h100-ndr400.json" \
    --table "$data/attention_flash_tflops.tsv" --gpu H100
check "A100 FlashAttention Triton kernel fwd+bwd" 12 -t "$root/topologies/juwels-booster.json" \
    --table "$data/attention_flash_tflops.tsv" --gpu A100 --method flashattention_triton
check "A100 FlashAttention v1 fwd+bwd" 12 -t "$root/topologies/juwels-booster.json" \
    --table "$data/attention_flash_tflops.tsv" --gpu A100 --method flashattention1
check "H100 GEMM fp16, misaligned K (ml-engineering's d_ff sweep, relative to its aligned rows)" 1 \
    -t "$root/topologies/hgx-h100-ndr400.json" --table "$data/gemm_h100_swiglu_dff_sweep.tsv" \
    --dtype fp16
echo "# $((n - failed)) passed, $failed failed"
[ $failed -eq 0 ]
