#!/usr/bin/env bash
# The first hour (issue 19): shipped files by name (-t jusuf, -m llama3-8b), `fsdpsim list`, enum
# values in any case and in PyTorch's spellings. Each case fails if the name or spelling were
# refused or read as something else.
#
# usage: names.sh FSDPSIM SOURCE_ROOT. Prints TAP; exit status 1 if any case failed.
set -u
FSDPSIM=$1
SRC=$2
case $FSDPSIM in /*) ;; *) FSDPSIM=$PWD/$FSDPSIM ;; esac
W=$(mktemp -d "${TMPDIR:-/tmp}/fsdpsim-names.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
n=0 failed=0
# ok NAME PATTERN ARG...: fsdpsim ARG... exits 0 with nothing on stderr and PATTERN on stdout
ok() {
    local name=$1 pattern=$2
    shift 2
    n=$((n + 1))
    (cd "$SRC" && "$FSDPSIM" "$@") >"$W/out" 2>"$W/err"
    local rc=$?
    if [ $rc = 0 ] && [ ! -s "$W/err" ] && grep -q -- "$pattern" "$W/out"; then
        echo "ok $n - $name"
    else
        echo "not ok $n - $name"
        echo "# exit $rc; stderr: $(head -c 300 "$W/err"); stdout lacks '$pattern'"
        failed=$((failed + 1))
    fi
}
ok topology-by-name "on jusuf, 2 nodes x 1 GPUs" -t jusuf --nodes 2
ok model-by-name "Llama-3-8B on juwels-booster" -m llama3-8b --nodes 2
ok model-by-file-name-elsewhere "GPT-2 (124M) on jusuf" -m gpt2.json -t jusuf.json --nodes 1
mkdir -p "$W/Meta-Llama-3-8B" && cp "$SRC/models/llama3-8b.json" "$W/Meta-Llama-3-8B/config.json"
ok model-by-directory-as-from-pretrained "Llama-3-8B on juwels-booster" -m "$W/Meta-Llama-3-8B" --nodes 2
# a config.json without fsdpsim.name is named by what identifies the model, not "config.json":
# transformers' _name_or_path, else its directory (from_pretrained's layout), else the file name
mkdir -p "$W/Mistral-Own" && python3 -c "
import json, sys
d = json.load(open(sys.argv[1])); d.pop('fsdpsim')
json.dump(d, open(sys.argv[2] + '/Mistral-Own/config.json', 'w'))
json.dump(d, open(sys.argv[2] + '/my-mistral.json', 'w'))
d['_name_or_path'] = 'mistralai/Mistral-7B-v0.1'
json.dump(d, open(sys.argv[2] + '/saved.json', 'w'))
" "$SRC/models/mistral-7b.json" "$W"
ok model-name-from-directory "^fsdpsim: Mistral-Own on jusuf" -m "$W/Mistral-Own/config.json" -t jusuf --nodes 1
ok model-name-from-directory-given "^fsdpsim: Mistral-Own on jusuf" -m "$W/Mistral-Own" -t jusuf --nodes 1
ok model-name-from-file-name "^fsdpsim: my-mistral on jusuf" -m "$W/my-mistral.json" -t jusuf --nodes 1
ok model-name-from-name-or-path "^fsdpsim: mistralai/Mistral-7B-v0.1 on jusuf" -m "$W/saved.json" -t jusuf --nodes 1
ok model-name-in-json '"model_name":[[:space:]]*"Mistral-Own"' -m "$W/Mistral-Own/config.json" -t jusuf --nodes 1 --json
ok topology-by-name-any-case "on juwels-booster, 1 node" -t JUWELS-Booster -m gpt2 --nodes 1
ok collective-topology-by-name "allreduce" collective -t hgx-h200 --max-bytes 1M
ok list-models "^mistral-7b .* 7.242 B  mistral" list models
ok list-models-every-file "^resnet18-cifar10 " list models
ok list-topologies "^jusuf  .* 61 nodes x 1 GPU   NVIDIA Tesla V100" list topologies
ok strategy-upper-case "FSDP full_shard" --strategy FULL_SHARD --nodes 1
ok sharding-pytorch-enum "FSDP hybrid_shard" --sharding ShardingStrategy.HYBRID_SHARD --nodes 2
ok param-dtype-torch "param_dtype fp16" --param-dtype torch.float16 --nodes 1
ok reduce-dtype-torch "reduce_dtype fp32" --reduce-dtype torch.float32 --nodes 1
ok optimizer-pytorch-class "optimizer adam$" --optimizer torch.optim.Adam --nodes 1
ok optimizer-mixed-case "optimizer adamw" --optimizer AdamW --nodes 1
ok collective-op-nccl-tests-binary "^# fsdpsim collective: allreduce on juwels-booster, 1 node x" collective --op all_reduce_perf --max-bytes 1M
ok collective-op-pytorch "^# fsdpsim collective: allgather on" collective --op dist.all_gather_into_tensor --max-bytes 1M
ok collective-op-pytorch-reduce-scatter "^# fsdpsim collective: reduce_scatter on" collective --op reduce_scatter_tensor --max-bytes 1M
ok state-dict-pytorch-enum "^checkpoint   full (rank 0) state dict" --state-dict StateDictType.FULL_STATE_DICT -m gpt2 --nodes 1
ok state-dict-any-case "^checkpoint   sharded (DCP) state dict" --state-dict Sharded -m gpt2 --nodes 1
ok prefetch-pytorch-enum "backward_prefetch=backward_post" --backward-prefetch BackwardPrefetch.BACKWARD_POST --nodes 1
n=$((n + 1))
# every name `list models` prints is one --model takes
bad_names=""
for name in $(cd "$SRC" && "$FSDPSIM" list models | awk '{print $1}'); do
    (cd "$SRC" && "$FSDPSIM" -m "$name" --nodes 2 >/dev/null 2>"$W/err") || bad_names="$bad_names $name"
done
if [ -z "$bad_names" ]; then echo "ok $n - every-listed-model-loads-by-name"; else
    echo "not ok $n - every-listed-model-loads-by-name"; echo "# failed:$bad_names"; failed=$((failed + 1)); fi
echo "1..$n"
[ $failed = 0 ]
