#!/usr/bin/env bash
# Bad input, every kind of it: models, topologies, schedules, nccl-tests reference tables, traces
# and options. Each case makes one bad input from a shipped or generated good one, runs fsdpsim
# on it and asserts what the README promises: exit status 2, nothing on stdout, one line on stderr
# ("fsdpsim: ...") naming the file or option and the field, with what is expected. An exit status
# of 124 or more (a timeout, or a signal such as SIGSEGV) is reported as a crash.
#
# usage: badinput.sh FSDPSIM SOURCE_ROOT. Prints TAP; exit status 1 if any case failed.
set -u

FSDPSIM=$1
SRC=$2
case $FSDPSIM in /*) ;; *) FSDPSIM=$PWD/$FSDPSIM ;; esac
case $SRC in /*) ;; *) SRC=$PWD/$SRC ;; esac
MODEL=$SRC/models/gpt2.json
LLAMA=$SRC/models/llama2-7b.json
RESNET=$SRC/models/resnet50.json
TOPO=$SRC/topologies/juwels-booster.json
BASE=(-m "$MODEL" -t "$TOPO")
W=$(mktemp -d "${TMPDIR:-/tmp}/fsdpsim-bad.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
OUT=$W/stdout ERR=$W/stderr

# jedit SRC DEST CODE: DEST is SRC's JSON with python CODE applied to it (as d)
jedit() {
    python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
$3
json.dump(d, open(sys.argv[2], 'w'), indent=1)
" "$1" "$2"
}

# the good files the cases start from: a schedule, a simulated trace, an nccl-tests table
"$FSDPSIM" "${BASE[@]}" --emit-schedule "$W/sched.json" --trace "$W/sim.json" >/dev/null ||
    { echo "Bail out! cannot make a schedule and a trace from the shipped files"; exit 1; }
python3 - "$W/sim.json" "$W/real.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
for e in t["traceEvents"]:
    if e.get("ph") == "X":
        e.setdefault("args", {})["iter"] = 0
t["otherData"] = {"generator": "fsdprun", "step_time_s": [0.5]}
json.dump(t, open(sys.argv[2], "w"))
PY
cat >"$W/ref.txt" <<'EOF'
#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
     1048576        262144     float     sum      -1    76.71   13.67   23.92      0    77.73   13.49   23.61      0
     4194304       1048576     float     sum      -1    134.5   31.18   54.57      0    134.7   31.13   54.48      0
EOF

n=0 failed=0

# bad NAME WORDS ARG...: fsdpsim ARG... must fail as bad input; WORDS (;-separated) in the message
bad() {
    local name=$1 words=$2 w why=""
    shift 2
    n=$((n + 1))
    timeout 20 "$FSDPSIM" "$@" >"$OUT" 2>"$ERR"
    local rc=$?
    if [ "$rc" -ge 124 ]; then
        why="CRASH or TIMEOUT: exit status $rc"
    elif [ "$rc" -ne 2 ]; then
        why="expected exit status 2, got $rc"
    elif [ -s "$OUT" ]; then
        why="stdout should be empty, has: $(head -c 200 "$OUT")"
    elif [ "$(wc -l <"$ERR")" -ne 1 ] || ! grep -q '^fsdpsim: ' "$ERR"; then
        why="expected one line 'fsdpsim: ...' on stderr"
    else
        IFS=';' read -ra ws <<<"$words"
        for w in "${ws[@]}"; do
            grep -qF -- "$w" "$ERR" || { why="stderr does not mention '$w'"; break; }
        done
    fi
    if [ -z "$why" ]; then
        echo "ok $n - $name"
    else
        echo "not ok $n - $name"
        echo "# fsdpsim $*"
        echo "# $why"
        echo "# stderr: $(head -c 400 "$ERR" | tr '\n' ' ')"
        failed=$((failed + 1))
    fi
}

# --- models -----------------------------------------------------------------------------------
m=$W/m
jedit "$MODEL" $m-1.json 'd["n_embd"] = -768'
bad model/negative-width "$m-1.json;field 'n_embd';expected an integer in [1," -m $m-1.json -t "$TOPO"
jedit "$MODEL" $m-2.json 'd["n_embd"] = "768"'
bad model/width-a-string "$m-2.json;field 'n_embd';got \"768\"" -m $m-2.json -t "$TOPO"
jedit "$MODEL" $m-3.json 'd["n_layer"] = 0'
bad model/no-layers "$m-3.json;field 'n_layer';expected an integer" -m $m-3.json -t "$TOPO"
jedit "$MODEL" $m-4.json 'd["n_layer"] = 1.5'
bad model/fractional-layers "$m-4.json;field 'n_layer';got 1.5" -m $m-4.json -t "$TOPO"
jedit "$MODEL" $m-5.json 'd["n_head"] = 5'
bad model/heads-not-dividing "$m-5.json;field 'n_head';expected a divisor" -m $m-5.json -t "$TOPO"
jedit "$MODEL" $m-6.json 'd["vocab_size"] = 1e30'
bad model/vocab-1e30 "$m-6.json;field 'vocab_size';expected an integer" -m $m-6.json -t "$TOPO"
jedit "$MODEL" $m-7.json 'd["n_embdd"] = 768'
bad model/misspelt-key "$m-7.json;field 'n_embdd';unknown key;did you mean 'n_embd'" -m $m-7.json -t "$TOPO"
sed 's/"n_layer": 12,/"n_layer": 12, "n_layer": 24,/' "$MODEL" >$m-8.json
bad model/duplicate-key "$m-8.json;duplicate key \"n_layer\";first at line" -m $m-8.json -t "$TOPO"
jedit "$MODEL" $m-9.json 'd["fsdpsim"]["name"] = "GPT-2 XXX"'
sed -i 's/XXX/\xff\xfe/' $m-9.json
bad model/invalid-utf8-name "$m-9.json;invalid UTF-8;expected UTF-8" -m $m-9.json -t "$TOPO"
jedit "$MODEL" $m-10.json 'd["model_type"] = "mamba"'
bad model/unknown-model-type "$m-10.json;field 'model_type';model_type gpt2, llama" -m $m-10.json -t "$TOPO"
jedit "$MODEL" $m-11.json 'd.update(n_embd=4194304, n_layer=100000, n_head=16, n_inner=None)'
bad model/parameters-beyond-range "$m-11.json;'n_layer';parameters;expected a smaller model" -m $m-11.json -t "$TOPO"
jedit "$LLAMA" $m-12.json 'd["num_key_value_heads"] = 3'
bad model/kv-heads-not-dividing "$m-12.json;field 'num_key_value_heads'" -m $m-12.json -t "$TOPO"
jedit "$LLAMA" $m-13.json 'del d["intermediate_size"]'
bad model/missing-ffn "$m-13.json;field 'intermediate_size';missing" -m $m-13.json -t "$TOPO"
jedit "$LLAMA" $m-14.json 'd["mlp_bias"] = True'
bad model/llama-mlp-bias "$m-14.json;field 'mlp_bias';expected false" -m $m-14.json -t "$TOPO"
jedit "$MODEL" $m-15.json 'd["fsdpsim"]["training"]["seq_len"] = 0'
bad model/sequence-zero "$m-15.json;field 'fsdpsim.training.seq_len'" -m $m-15.json -t "$TOPO"
head -c 300 "$MODEL" >$m-16.json
bad model/truncated "$m-16.json;malformed JSON" -m $m-16.json -t "$TOPO"
printf '{"model_type": "gpt2"\0}' >$m-17.json
bad model/nul-byte "$m-17.json;NUL byte" -m $m-17.json -t "$TOPO"
echo '[1, 2]' >$m-18.json
bad model/not-an-object "$m-18.json;expected a JSON object" -m $m-18.json -t "$TOPO"
: >$m-29.json
bad model/empty-file "$m-29.json: empty file;expected a JSON object" -m $m-29.json -t "$TOPO"
bad model/topology-as-model "$TOPO: this is a topology file (format fsdpsim-topology): give it with --topology, not --model" -m "$TOPO" -t "$TOPO"
bad model/schedule-as-model "$W/sched.json: this is a schedule (format fsdpsim-schedule): give it with --schedule, not --model" -m "$W/sched.json" -t "$TOPO"
jedit "$RESNET" $m-19.json 'd["modules"][0]["params"] = -1'
bad model/layer-list-negative-params "$m-19.json;field 'modules[0].params'" -m $m-19.json -t "$TOPO"
jedit "$MODEL" $m-20.json 'd.update(n_embd=4194304, n_head=16, n_inner=None, n_layer=1, n_positions=4194304)'
bad model/activations-beyond-range "$m-20.json;2^60 bytes;--micro-batch" -m $m-20.json -t "$TOPO" --seq-len 4194304 --micro-batch 1048576
# issue 19: real config.json files; typos get a did-you-mean, what cannot be modelled names its key
jedit "$LLAMA" $m-h1.json 'd["num_hiden_layers"] = d.pop("num_hidden_layers")'
bad model/hf-misspelt-required "$m-h1.json;field 'num_hidden_layers';missing (the file has 'num_hiden_layers': a misspelling?)" -m $m-h1.json -t "$TOPO"
jedit "$LLAMA" $m-h9.json 'd["intermedate_size"] = d.pop("intermediate_size")'
bad model/hf-misspelt-required-ffn "$m-h9.json;field 'intermediate_size';missing (the file has 'intermedate_size': a misspelling?)" -m $m-h9.json -t "$TOPO"
jedit "$LLAMA" $m-h2.json 'd["rms_norm_esp"] = 1e-5'
bad model/hf-misspelt-bookkeeping "$m-h2.json;field 'rms_norm_esp';did you mean 'rms_norm_eps'" -m $m-h2.json -t "$TOPO"
jedit "$LLAMA" $m-h3.json 'd["num_nextn_predict_layers"] = 1'
bad model/hf-unknown-key "$m-h3.json;field 'num_nextn_predict_layers';unknown key for model_type \"llama\"" -m $m-h3.json -t "$TOPO"
jedit "$LLAMA" $m-h8.json 'd["num_local_experts"] = 8'
bad model/hf-key-of-other-type "$m-h8.json;field 'num_local_experts';other model types;model_type \"llama\"" -m $m-h8.json -t "$TOPO"
jedit "$LLAMA" $m-h4.json 'd["model_type"] = "lama"'
bad model/hf-model-type-typo "$m-h4.json;field 'model_type';did you mean \"llama\"" -m $m-h4.json -t "$TOPO"
jedit "$LLAMA" $m-h5.json 'd["final_logit_softcapping"] = 30.0'
bad model/hf-softcap-not-gemma2 "$m-h5.json;field 'final_logit_softcapping';gemma2 only" -m $m-h5.json -t "$TOPO"
jedit "$SRC/models/falcon-7b.json" $m-h6.json 'd["alibi"] = True'
bad model/hf-falcon-alibi "$m-h6.json;field 'alibi';expected false" -m $m-h6.json -t "$TOPO"
jedit "$SRC/models/qwen2.5-7b.json" $m-h7.json 'd["attention_bias"] = True'
bad model/hf-qwen2-attention-bias "$m-h7.json;field 'attention_bias';always carry a bias" -m $m-h7.json -t "$TOPO"
jedit "$MODEL" $m-21.json 'd["fsdpsim"]["training"]["optimizer"] = "lion"'
bad model/unknown-optimizer "$m-21.json;optimizer;adamw" -m $m-21.json -t "$TOPO"
# values that parsed but gave a silent wrong answer or more modules than memory holds
jedit "$LLAMA" $m-22.json 'd.update(num_attention_heads=3, num_key_value_heads=3, head_dim=None)'
bad model/head-dim-null-not-dividing "$m-22.json;field 'num_attention_heads';divisor of hidden_size (4096)" -m $m-22.json -t "$TOPO"
jedit "$SRC/models/roberta-large.json" $m-23.json 'd["max_position_embeddings"] = 2; d["fsdpsim"]["training"].pop("seq_len", None)'
bad model/roberta-no-usable-position "$m-23.json;field 'max_position_embeddings';expected at least 3" -m $m-23.json -t "$TOPO"
jedit "$SRC/models/vit-l16.json" $m-24.json 'd.update(image_size=65536, patch_size=1)'
bad model/vit-patches-beyond-sequence "$m-24.json;field 'patch_size';4294967296 patches" -m $m-24.json -t "$TOPO"
jedit "$SRC/models/mixtral-8x7b.json" $m-25.json 'd.update(num_local_experts=100000, num_hidden_layers=1000)'
bad model/moe-experts-beyond-range "$m-25.json;field 'num_local_experts';expected at most 262144" -m $m-25.json -t "$TOPO"
jedit "$RESNET" $m-26.json 'd["modules"].insert(3, dict(name="relu.inner", kind="relu", flops_fwd=1, output_elems=1))'
bad model/layer-list-leaf-as-parent "$m-26.json;field 'modules[3].name';parent \"relu\" is a leaf" -m $m-26.json -t "$TOPO"
jedit "$SRC/models/vit-l16.json" $m-27.json 'd["fsdpsim"]["training"]["image_size"] = 384'
bad model/vit-image-size-not-the-configs "$m-27.json;field 'fsdpsim.training.image_size';384;expected 224" -m $m-27.json -t "$TOPO"
jedit "$RESNET" $m-28.json 'd["fsdpsim"]["training"]["seq_len"] = 128'
bad model/cnn-seq-len "$m-28.json;field 'fsdpsim.training.seq_len';takes images" -m $m-28.json -t "$TOPO"

# --- topologies -------------------------------------------------------------------------------
t=$W/t
jedit "$TOPO" $t-1.json 'd["nodes_max"]["value"] = 2.5'
bad topology/fractional-nodes-max "$t-1.json;field 'nodes_max.value';whole number" -m "$MODEL" -t $t-1.json
jedit "$TOPO" $t-2.json 'd["node"]["nics"]["value"] = 0'
bad topology/no-nics-several-nodes "$t-2.json;field 'node.nics.value';0 NICs" -m "$MODEL" -t $t-2.json --nodes 2
jedit "$TOPO" $t-3.json 'd["gpu"]["memory_GiB"]["value"] = -40'
bad topology/negative-memory "$t-3.json;field 'gpu.memory_GiB.value';expected a number in" -m "$MODEL" -t $t-3.json
jedit "$TOPO" $t-4.json 'd["gpu"]["peak_tflops_bf16"]["value"] = "312"'
bad topology/peak-a-string "$t-4.json;field 'gpu.peak_tflops_bf16.value'" -m "$MODEL" -t $t-4.json
jedit "$TOPO" $t-5.json 'd["gpu"]["hbm_GBps"]["source"] = ""'
bad topology/empty-source "$t-5.json;field 'gpu.hbm_GBps.source';source" -m "$MODEL" -t $t-5.json
jedit "$TOPO" $t-6.json 'd["gpu"]["tensor_cores"] = 432'
bad topology/unknown-key "$t-6.json;field 'gpu.tensor_cores';unknown key" -m "$MODEL" -t $t-6.json
jedit "$TOPO" $t-7.json 'd["format"] = "fsdpsim-model"'
bad topology/wrong-format "$t-7.json;field 'format';expected \"fsdpsim-topology\"" -m "$MODEL" -t $t-7.json
bad topology/model-as-topology "$MODEL: this looks like a model (a Hugging Face config.json: model_type \"gpt2\", no format): give it with --model, not --topology" -m "$MODEL" -t "$MODEL"
bad topology/layer-list-as-topology "$RESNET: this is a layer-list model (format fsdpsim-layers): give it with --model, not --topology" -m "$MODEL" -t "$RESNET"
printf ' \n' >$t-17.json
bad topology/empty-file "$t-17.json: empty file (only white space);expected a JSON object" -m "$MODEL" -t $t-17.json
jedit "$TOPO" $t-8.json 'd["version"] = 2'
bad topology/version-2 "$t-8.json;field 'version'" -m "$MODEL" -t $t-8.json
jedit "$TOPO" $t-9.json 'del d["network"]["kind"]'
bad topology/network-without-kind "$t-9.json;field 'network.kind';missing" -m "$MODEL" -t $t-9.json
jedit "$TOPO" $t-10.json 'd["node"]["nic_GBps"]["value"] = 1e99'
bad topology/nic-1e99 "$t-10.json;field 'node.nic_GBps.value'" -m "$MODEL" -t $t-10.json
jedit "$TOPO" $t-11.json 'd["gpu"]["reserved_GiB"]["value"] = 50'
bad topology/reserved-beyond-memory "$t-11.json;field 'gpu.reserved_GiB';below memory_GiB" -m "$MODEL" -t $t-11.json
sed '0,/"name":/s/"name":/"name": "x", "name":/' "$TOPO" >$t-12.json
bad topology/duplicate-key "$t-12.json;duplicate key \"name\"" -m "$MODEL" -t $t-12.json
jedit "$TOPO" $t-13.json 'd["node"]["gpus"]["value"] = 0'
bad topology/no-gpus "$t-13.json;field 'node.gpus.value'" -m "$MODEL" -t $t-13.json
jedit "$TOPO" $t-14.json 'd["network"]["leaves_per_group"]["value"] = 1.5'
bad topology/fractional-leaves "$t-14.json;field 'network.leaves_per_group';whole number" -m "$MODEL" -t $t-14.json
jedit "$TOPO" $t-sharp1.json 'd["network"]["sharp"] = {"value": 2.5, "source": "test"}'
bad topology/fractional-sharp "$t-sharp1.json;field 'network.sharp';SHARP generation" -m "$MODEL" -t $t-sharp1.json
jedit "$TOPO" $t-sharp2.json 'd["network"]["sharp"] = {"value": 4, "source": "test"}'
bad topology/sharp-generation-4 "$t-sharp2.json;field 'network.sharp.value';expected a number in" -m "$MODEL" -t $t-sharp2.json
jedit "$TOPO" $t-15.json 'd["storage"]["write_GBps"]["value"] = -1'
bad topology/storage-negative "$t-15.json;field 'storage.write_GBps.value';expected a number in" -m "$MODEL" -t $t-15.json
jedit "$TOPO" $t-16.json 'del d["storage"]["read_GBps_per_node"]'
bad topology/storage-missing-key "$t-16.json;field 'storage.read_GBps_per_node'" -m "$MODEL" -t $t-16.json
jedit "$TOPO" $t-17.json 'd["accounting"]["cores_per_node"]["value"] = 47.5'
bad topology/accounting-fractional-cores "$t-17.json;field 'accounting.cores_per_node';whole number" -m "$MODEL" -t $t-17.json
jedit "$TOPO" $t-18.json 'del d["storage"]'
bad topology/no-storage-for-checkpoints "$t-18.json;field 'storage';missing" -m "$MODEL" -t $t-18.json --save-every 100

# --- schedules --------------------------------------------------------------------------------
s=$W/s
jedit "$W/sched.json" $s-1.json 'd["classes"] = []'
bad schedule/no-classes "$s-1.json;field 'classes';at least one rank class" "${BASE[@]}" --schedule $s-1.json
jedit "$W/sched.json" $s-2.json 'd["classes"][0]["n_ranks"] = 15'
bad schedule/rank-in-no-class "$s-2.json;field 'classes';no rank class holds rank 15" "${BASE[@]}" --schedule $s-2.json
jedit "$W/sched.json" $s-3.json 'd["classes"].append(dict(d["classes"][0], first_rank=3, n_ranks=1))'
bad schedule/overlapping-classes "$s-3.json;field 'classes[1].first_rank';rank 3 is also in classes[0]" "${BASE[@]}" --schedule $s-3.json
jedit "$W/sched.json" $s-4.json 'd["classes"][0]["streams"].append({"name": "compute", "host": False})'
bad schedule/duplicate-stream "$s-4.json;field 'classes[0].streams[3].name';a second stream named \"compute\"" "${BASE[@]}" --schedule $s-4.json
jedit "$W/sched.json" $s-5.json 'd["groups"].append(dict(d["groups"][0], size=4))'
bad schedule/duplicate-group "$s-5.json;field 'groups[1].name';a second group named \"shard\"" "${BASE[@]}" --schedule $s-5.json
jedit "$W/sched.json" $s-6.json 'd["classes"][0]["ops"][5]["deps"] = [5]'
bad schedule/dependency-cycle "$s-6.json;field 'classes[0].ops[5].deps';earlier op" "${BASE[@]}" --schedule $s-6.json
jedit "$W/sched.json" $s-7.json 'd["classes"][0]["ops"].append({"kind": "send", "stream": "compute", "name": "x", "phase": "other", "deps": [], "peer_offset": 15, "bytes": 8, "tag": 0})'
bad schedule/peer-outside-world "$s-7.json;peer_offset;outside the world" "${BASE[@]}" --schedule $s-7.json
jedit "$W/sched.json" $s-8.json 'd["classes"][0]["ops"][0]["kind"] = "sleep"'
bad schedule/unknown-op-kind "$s-8.json;field 'classes[0].ops[0].kind';expected one of" "${BASE[@]}" --schedule $s-8.json
jedit "$W/sched.json" $s-9.json 'next(o for o in d["classes"][0]["ops"] if o["kind"] == "alloc")["bytes"] = -1'
bad schedule/negative-bytes "$s-9.json;bytes;expected an integer in [0," "${BASE[@]}" --schedule $s-9.json
jedit "$W/sched.json" $s-9b.json 'next(o for o in d["classes"][0]["ops"] if o["kind"] == "coll")["bytes"] = 1.5'
bad schedule/fractional-bytes "$s-9b.json;bytes;expected an integer in [0,;1.5" "${BASE[@]}" --schedule $s-9b.json
jedit "$W/sched.json" $s-10.json 'd["version"] = 7'
bad schedule/version-7 "$s-10.json;field 'version';version 7" "${BASE[@]}" --schedule $s-10.json
# kernel lists (version 3): each kernel's fields, the ops' indices into them, the version
K='c = d["classes"][0]; k = c["kernel_lists"]'
jedit "$W/sched.json" $s-k1.json "$K"'; k[0][0]["class"] = "winograd"'
bad schedule/kernel-class "$s-k1.json;field 'classes[0].kernel_lists[0][0].class';expected one of gemm, attention, memory, flops, conv;winograd" "${BASE[@]}" --schedule $s-k1.json
jedit "$W/sched.json" $s-k1c.json "$K"'; d["version"] = 4; k[0][0] = {"class": "conv", "dtype": "bf16", "m": 64, "n": 64, "k": 64, "bytes": 1e6}'
bad schedule/conv-in-version-4 "$s-k1c.json;field 'classes[0].kernel_lists';version 5" "${BASE[@]}" --schedule $s-k1c.json
jedit "$W/sched.json" $s-k1m.json "$K"'; d["version"] = 5; g = next(x for l in k for x in l if x["class"] == "gemm"); g["misaligned"] = True'
bad schedule/misaligned-in-version-5 "$s-k1m.json;field 'classes[0].kernel_lists';version 6" "${BASE[@]}" --schedule $s-k1m.json
jedit "$W/sched.json" $s-k1n.json "$K"'; g = next(x for l in k for x in l if x["class"] == "gemm"); g["misaligned"] = 1'
bad schedule/misaligned-not-bool "$s-k1n.json;field 'classes[0].kernel_lists[;misaligned;expected true or false" "${BASE[@]}" --schedule $s-k1n.json
jedit "$W/sched.json" $s-k2.json "$K"'; g = next(x for l in k for x in l if x["class"] == "gemm"); del g["m"]'
bad schedule/kernel-gemm-no-m "$s-k2.json;field 'classes[0].kernel_lists[;].m';missing" "${BASE[@]}" --schedule $s-k2.json
jedit "$W/sched.json" $s-k3.json "$K"'; next(o for o in c["ops"] if "kernel_list" in o)["kernel_list"] = len(k)'
bad schedule/kernel-list-index "$s-k3.json;field 'classes[0].ops[;kernel_list;expected" "${BASE[@]}" --schedule $s-k3.json
jedit "$W/sched.json" $s-k4.json 'd["version"] = 2'
bad schedule/kernel-lists-in-version-2 "$s-k4.json;field 'classes[0].kernel_lists';new in schedule version 3" "${BASE[@]}" --schedule $s-k4.json
jedit "$W/sched.json" $s-k5.json "$K"'; k[0][0]["share"] = -1'
bad schedule/kernel-negative-share "$s-k5.json;field 'classes[0].kernel_lists[0][0].share';expected a number in [0," "${BASE[@]}" --schedule $s-k5.json
jedit "$W/sched.json" $s-k6.json "$K"'; k[0][0]["tiles"] = 4'
bad schedule/kernel-unknown-field "$s-k6.json;classes[0].kernel_lists[0][0];tiles" "${BASE[@]}" --schedule $s-k6.json
jedit "$W/sched.json" $s-k7.json "$K"'; k[0] = []'
bad schedule/kernel-list-empty "$s-k7.json;field 'classes[0].kernel_lists[0]';non-empty array" "${BASE[@]}" --schedule $s-k7.json
# a list of 200,000 records (8.6 MB) read as any other; its copy on the stack crashed the reader
jedit "$W/sched.json" $s-k9.json "$K"'; k[0] = [{"class": "flops", "dtype": "bf16", "flops": 1}] * 200000; c["zzz"] = 1'
bad schedule/kernel-list-200000 "$s-k9.json;field 'classes[0].zzz';unknown key" "${BASE[@]}" --schedule $s-k9.json
# the simulator costs an op from its kernels: a GEMM of 10^17 x 10^4 x 10^4 outlasts the clock
# even though the op's "seconds" say otherwise
jedit "$W/sched.json" $s-k8.json 'del d["meta"]["strategy"]; '"$K"'; g = next(x for l in k for x in l if x["class"] == "gemm"); g["m"] = 1e17; g["n"] = 1e4; g["k"] = 1e4'
bad schedule/kernel-beyond-the-clock "$s-k8.json;classes[0].ops[;would take;expected ops under" "${BASE[@]}" --schedule $s-k8.json
jedit "$W/sched.json" $s-11.json 'd["world"] = 15'
bad schedule/world-not-nodes-times-gpus "$s-11.json;field 'world'" "${BASE[@]}" --schedule $s-11.json
bad schedule/option-it-fixes "$W/sched.json;field 'meta.tp';--tp" "${BASE[@]}" --schedule "$W/sched.json" --tp 2
bad schedule/other-layout "$W/sched.json;--nodes 4" "${BASE[@]}" --schedule "$W/sched.json" --nodes 2
bad schedule/made-with-other-options "$W/sched.json;field 'classes';not the one the options generate" "${BASE[@]}" --schedule "$W/sched.json" --grad-accum 2
# an op charged by its FLOPs (no kernel-model "seconds") and one by its seconds
jedit "$W/sched.json" $s-15.json 'del d["meta"]["strategy"]; o = next(o for o in d["classes"][0]["ops"] if o["kind"] == "compute"); o["flops"] = 1e30; o.pop("seconds", None); o.pop("kernel_list", None)'
bad schedule/op-beyond-the-clock "$s-15.json;classes[0].ops[;would take;expected ops under" "${BASE[@]}" --schedule $s-15.json
jedit "$W/sched.json" $s-16.json 'del d["meta"]["strategy"]; o = next(o for o in d["classes"][0]["ops"] if o["kind"] == "compute" and "seconds" in o); o["seconds"] = 5e8; o.pop("kernel_list", None)'
bad schedule/op-seconds-beyond-the-clock "$s-16.json;classes[0].ops[;would take;expected ops under" "${BASE[@]}" --schedule $s-16.json
jedit "$W/sched.json" $s-12.json 'd["classes"][0]["ops"][0]["stream"] = "gpu7"'
bad schedule/unknown-stream "$s-12.json;field 'classes[0].ops[0].stream';gpu7;expected one of its streams: host" "${BASE[@]}" --schedule $s-12.json
jedit "$W/sched.json" $s-13.json 'd["classes"][0]["rank_stride"] = 0'
bad schedule/rank-stride-zero "$s-13.json;field 'classes[0].rank_stride'" "${BASE[@]}" --schedule $s-13.json
jedit "$W/sched.json" $s-14.json 'd["meta"]["strategy"] = "no_shard"'
bad schedule/strategy-disagrees "$s-14.json;field 'meta.strategy';--strategy" "${BASE[@]}" --schedule $s-14.json
"$FSDPSIM" "${BASE[@]}" --fsdp-version 2 --emit-schedule $s-fsdp2.json >/dev/null
bad schedule/fsdp-version-disagrees "$s-fsdp2.json;field 'meta.fsdp_version';--fsdp-version" "${BASE[@]}" --schedule $s-fsdp2.json

# --- nccl-tests reference tables (fsdpsim collective --reference) -----------------------------
r=$W/r
HGX=(collective -t "$SRC/topologies/hgx-a100-40gb.json" --gpus-per-thread 8)
sed '2s/1048576 /inf     /' "$W/ref.txt" >$r-1.txt
bad reference/size-inf "$r-1.txt:2;field 'size';whole number of bytes" "${HGX[@]}" --reference $r-1.txt
sed '2s/1048576 /1e30    /' "$W/ref.txt" >$r-2.txt
bad reference/size-1e30 "$r-2.txt:2;field 'size'" "${HGX[@]}" --reference $r-2.txt
sed '3s/54.57/-54.57/' "$W/ref.txt" >$r-3.txt
bad reference/negative-busbw "$r-3.txt:3;field 'busbw'" "${HGX[@]}" --reference $r-3.txt
bad reference/allreduce-table-as-allgather "$W/ref.txt:2;field 'redop'/'root';--op allgather" "${HGX[@]}" --op allgather --reference "$W/ref.txt"
(echo '# Collective test starting: all_gather_perf'; cat "$W/ref.txt") >$r-4.txt
bad reference/other-binary "$r-4.txt:1;all_gather_perf;--op allreduce" "${HGX[@]}" --reference $r-4.txt
echo 'hello' >$r-5.txt
bad reference/no-rows "$r-5.txt;field 'rows'" "${HGX[@]}" --reference $r-5.txt
sed '2s/76.71/nan/' "$W/ref.txt" >$r-6.txt
bad reference/time-nan "$r-6.txt:2;field 'time'" "${HGX[@]}" --reference $r-6.txt
cat "$W/ref.txt" "$W/ref.txt" >$r-7.txt
bad reference/two-runs-in-one-file "$r-7.txt:5;field 'size';increasing sizes" "${HGX[@]}" --reference $r-7.txt
sed '3s/134.5 /abc   /' "$W/ref.txt" >$r-8.txt
bad reference/time-not-a-number "$r-8.txt:3;field 'time';got \"abc\"" "${HGX[@]}" --reference $r-8.txt
bad reference/missing-file "$W/nothere.txt;cannot read" "${HGX[@]}" --reference "$W/nothere.txt"

# --- traces (fsdpsim compare) -----------------------------------------------------------------
c=$W/c
X='next(e for e in d["traceEvents"] if e.get("ph") == "X" and e.get("cat") == "compute")'
jedit "$W/sim.json" $c-1.json "del $X[\"tid\"]"
bad trace/event-without-tid "$c-1.json;traceEvents[;.tid';integer thread id" compare --real "$W/real.json" --sim $c-1.json
jedit "$W/real.json" $c-2.json "$X[\"dur\"] = -5"
bad trace/negative-dur "$c-2.json;.dur';expected a duration" compare --real $c-2.json --sim "$W/sim.json"
jedit "$W/real.json" $c-3.json "$X[\"ts\"] = 123456789"
sed -i 's/123456789/1e999/' $c-3.json
bad trace/ts-inf "$c-3.json;.ts';finite;got inf" compare --real $c-3.json --sim "$W/sim.json"
jedit "$W/sim.json" $c-4.json "$X[\"pid\"] = 1.5"
bad trace/fractional-pid "$c-4.json;.pid';integer process id" compare --real "$W/real.json" --sim $c-4.json
jedit "$W/real.json" $c-5.json 'd["otherData"]["generator"] = "nsys"'
bad trace/unknown-generator "$c-5.json;field 'otherData.generator';expected" compare --real $c-5.json --sim "$W/sim.json"
jedit "$W/real.json" $c-6.json 'd["otherData"]["step_time_s"] = []'
bad trace/no-step-times "$c-6.json;field 'otherData.step_time_s'" compare --real $c-6.json --sim "$W/sim.json"
jedit "$W/real.json" $c-7.json 'del d["traceEvents"]'
bad trace/no-events "$c-7.json;field 'traceEvents'" compare --real $c-7.json --sim "$W/sim.json"
bad trace/swapped "$W/sim.json;field 'otherData.generator'" compare --real "$W/sim.json" --sim "$W/real.json"
sed 's/"traceEvents"/"traceEvents": [], "traceEvents"/' "$W/sim.json" >$c-8.json
bad trace/duplicate-key "$c-8.json;duplicate key \"traceEvents\"" compare --real "$W/real.json" --sim $c-8.json

# --- options ----------------------------------------------------------------------------------
bad option/nodes-zero "option --nodes;positive" "${BASE[@]}" --nodes 0
bad option/nodes-beyond-machine "option --nodes;expected 1..936" "${BASE[@]}" --nodes 937
bad option/micro-batch-negative "option --micro-batch" "${BASE[@]}" --micro-batch -1
bad option/seq-len-absurd "option --seq-len;expected" "${BASE[@]}" --seq-len 99999999
bad option/unknown-strategy "option --strategy;expected ddp, zero1" "${BASE[@]}" --strategy zero3
bad option/strategy-short-typo "option --strategy;got \"ful\";did you mean 'full'?" "${BASE[@]}" --strategy ful
bad option/state-dict "option --state-dict;expected full or sharded" "${BASE[@]}" --state-dict local
bad option/save-every-zero "option --save-every;expected a positive" "${BASE[@]}" --save-every 0
bad option/tokens-word "option --tokens;expected a positive number" "${BASE[@]}" --tokens lots
bad option/tokens-suffix "option --tokens;expected a positive number" "${BASE[@]}" --tokens 1X
bad option/tokens-and-steps "options --tokens and --steps" "${BASE[@]}" --tokens 1T --steps 10
bad option/tokens-image-model "option --tokens;takes images;--steps" -m "$SRC/models/resnet50.json" -t "$TOPO" --tokens 1T
bad option/steps-negative "option --steps;expected a positive number" "${BASE[@]}" --steps -5
bad option/failure-rate "option --failure-rate;per node-hour" "${BASE[@]}" --tokens 1T --failure-rate 2
bad option/max-job-hours "option --max-job-hours;expected a positive number;(hours: 24, 0.5)" "${BASE[@]}" --max-job-hours 0
bad option/state-dict-near-miss "option --state-dict;StateDictType.FULL_STATE_DICT;did you mean 'full'?" "${BASE[@]}" --state-dict fulll
bad option/lora-rank-zero "option --lora-rank;expected 1..65536" "${BASE[@]}" --lora-rank 0
bad option/lora-targets-alone "option --lora-targets needs --lora-rank" "${BASE[@]}" --lora-targets q_proj
bad option/lora-target-unknown "option --lora-targets;no Linear module;\"qkv\"" -m "$SRC/models/llama2-7b.json" -t "$TOPO" --lora-rank 8 --lora-targets qkv
bad option/lora-with-tp "option --lora-rank;--tp" -m "$SRC/models/llama2-7b.json" -t "$TOPO" --lora-rank 8 --tp 2
bad option/fsdp-version-3 "option --fsdp-version;expected 1 or 2" "${BASE[@]}" --fsdp-version 3
bad option/fsdp-version-ddp "option --fsdp-version;FSDP" "${BASE[@]}" --strategy ddp --fsdp-version 2
bad option/fsdp2-no-shard "option --fsdp-version 2;no_shard" "${BASE[@]}" --strategy no_shard --fsdp-version 2
bad option/reshard-fsdp1 "option --reshard-after-forward;--fsdp-version 2" "${BASE[@]}" --reshard-after-forward false
bad option/reshard-word "option --reshard-after-forward;expected true, false" "${BASE[@]}" --fsdp-version 2 --reshard-after-forward maybe
bad option/reshard-not-divisor "option --reshard-after-forward;divisor of 16" "${BASE[@]}" --fsdp-version 2 --reshard-after-forward 3
bad option/zero1-sharding "option --sharding;applies to FSDP" "${BASE[@]}" --strategy zero1 --sharding full_shard
bad option/bucket-cap-nan "option --bucket-cap-mb;expected a size" "${BASE[@]}" --strategy ddp --bucket-cap-mb nan
bad option/nccl-algo "option --nccl-algo;expected ring" "${BASE[@]}" --nccl-algo butterfly
bad option/nccl-proto "option --nccl-proto;expected LL" "${BASE[@]}" --nccl-proto LL256
bad option/grad-accum "option --grad-accum;expected 1..4096" "${BASE[@]}" --grad-accum 5000
bad option/plot-format "option --plot-format;png" "${BASE[@]}" --plot "$W/fig" --plot-format gif
bad option/gpus-per-node "option --gpus-per-node;expected 1..4" "${BASE[@]}" --gpus-per-node 8
bad option/collective-op "option --op;expected allreduce" collective --op allsum
bad option/collective-op-near-miss "option --op;did you mean 'allreduce'?;alreduce" collective --op alreduce
bad option/collective-sendrecv-one-rank "option --op sendrecv;at least 2 ranks" collective --op sendrecv -n 1 -g 1
bad option/collective-gather-algo "options --nccl-algo/--nccl-proto;gather is point-to-point" collective --op gather --nccl-algo ring
bad option/collective-scatter-one-rank "option --op scatter;at least 2 ranks" collective --op scatter -n 1 -g 1
bad option/collective-sendrecv-algo "options --nccl-algo/--nccl-proto;sendrecv" collective --op sendrecv --nccl-algo ring
bad option/collective-nccl-version "option --nccl-version;expected an NCCL 2.x release;3.1" collective --nccl-version 3.1
bad option/nccl-version "option --nccl-version;expected an NCCL 2.x release;2.x" --nccl-version 2.x
bad option/collective-collnet-no-sharp "option --nccl-collnet;network.sharp;juwels-booster" collective -n 2 --nccl-collnet
bad option/collective-collnet-one-node "options --nccl-algo/--nccl-proto;collnetchain cannot run allreduce;SHARP" collective -t "$SRC/topologies/coreweave-h100.json" -n 1 --nccl-algo collnetchain
bad option/simulate-collnet-no-sharp "option --nccl-algo;collnetdirect needs SHARP;network.sharp" "${BASE[@]}" --nccl-algo collnetdirect
bad option/collective-min-bytes "option --min-bytes;expected a size" collective --min-bytes 0
bad option/validate-bandwidth "option --bandwidth;300mbit" validate --bandwidth fast
bad option/tp-not-dividing "option --tp" "${BASE[@]}" --tp 3
bad option/max-memory-not-a-size "option --max-memory;expected a size" "${BASE[@]}" --max-memory 12x
bad option/max-memory-exceeded "option --max-memory;about;fewer micro-batches" "${BASE[@]}" --grad-accum 200 --max-memory 16M
bad option/pp-schedule "option --pp-schedule" "${BASE[@]}" --pp 2 --pp-schedule zigzag
# the kernel model's options and tables (issue 12)
bad option/attention "option --attention;expected flash, flash1, triton or eager" "${BASE[@]}" --attention sdpa
# FlashAttention v1 runs head dims up to 128 and no sliding window (its README)
bad option/attention-flash1-window "option --attention flash1;sliding window;expected --attention flash" \
    -m "$SRC/models/mistral-7b.json" --nodes 1 --attention flash1
bad option/attention-disagrees "options --no-flash-attention and --attention" "${BASE[@]}" --no-flash-attention --attention flash
bad option/checkpoint-every "option --checkpoint-every;positive" "${BASE[@]}" --checkpoint-every 0
bad option/optimizer-impl "option --optimizer-impl;expected foreach, fused or forloop" "${BASE[@]}" --optimizer-impl apex
bad option/omp-num-threads-range "option --omp-num-threads;expected 1 to 4096" "${BASE[@]}" --cpu-offload --omp-num-threads 0
bad option/omp-num-threads-no-offload "option --omp-num-threads;--cpu-offload;--offload-optimizer" "${BASE[@]}" --omp-num-threads 4
# DeepSpeed's optimizer offload (--offload-optimizer): sharded FSDP/ZeRO only, not with --cpu-offload
bad option/offload-optimizer-device "option --offload-optimizer;expected none or cpu" "${BASE[@]}" --offload-optimizer nvme
bad option/offload-optimizer-ddp "option --offload-optimizer;sharded FSDP/ZeRO;--strategy ddp" "${BASE[@]}" --strategy ddp --offload-optimizer cpu
bad option/offload-optimizer-zero1 "option --offload-optimizer;--strategy zero1" "${BASE[@]}" --strategy zero1 --offload-optimizer cpu
bad option/offload-optimizer-no-shard "option --offload-optimizer;no_shard" "${BASE[@]}" --strategy no_shard --offload-optimizer cpu
bad option/offload-optimizer-cpu-offload "options --offload-optimizer and --cpu-offload" "${BASE[@]}" --cpu-offload --offload-optimizer cpu
bad option/offload-optimizer-sgd "option --offload-optimizer cpu;DeepSpeedCPUAdam;adamw or adam" "${BASE[@]}" --optimizer sgd --offload-optimizer cpu
bad option/offload-optimizer-pp "option --offload-optimizer;--tp or --pp" "${BASE[@]}" --pp 2 --offload-optimizer cpu
# hybrid on one-GPU shard groups runs as NO_SHARD: nothing to offload a shard of
bad option/offload-optimizer-unsharded-hybrid "option --offload-optimizer;shard groups of one GPU;--shard-group-size 2" "${BASE[@]}" --strategy hybrid_shard --nodes 2 --shard-group-size 1 --offload-optimizer cpu
bad option/tp-comm-overlap "option --tp-comm-overlap;--sequence-parallel" "${BASE[@]}" --strategy ddp --tp 2 --tp-comm-overlap
bad option/overlap-param-gather "option --overlap-param-gather;--use-distributed-optimizer" "${BASE[@]}" --strategy ddp --overlap-param-gather
bad option/distopt-fsdp "--use-distributed-optimizer;--strategy ddp" "${BASE[@]}" --use-distributed-optimizer
bad option/kernels-no-table "option --table;required" kernels
bad option/kernels-dtype "option --dtype;expected bf16" kernels --table "$SRC/README.md" --dtype int8
bad option/kernels-dtype-fp8-a100 "option --dtype fp8;hgx-a100-40gb;NVIDIA A100-SXM4-40GB;no fp8;peak_tflops_fp8" kernels -t "$SRC/topologies/hgx-a100-40gb.json" --table "$SRC/README.md" --dtype fp8
# --fp8-format (Transformer Engine's fp8 linears): a GPU without fp8 (A100), an unknown format,
# full precision, and fp8 as a parameter dtype
bad option/fp8-format-a100 "option --fp8-format;juwels-booster;NVIDIA A100-SXM4-40GB;no fp8 tensor cores;expected a Hopper GPU" "${BASE[@]}" --fp8-format hybrid
# fp8 needs transformer blocks' linear layers; attention tables are not fp8
bad option/fp8-format-no-linears "option --fp8-format;no linear layer inside a transformer block" -m "$SRC/models/resnet50.json" -t "$SRC/topologies/hgx-h100-ndr400.json" --nodes 1 --param-dtype bf16 --fp8-format hybrid
printf 'figure\tgpu\tpass\tcausal\thead_dim\tseqlen\tbatch\tn_heads\tmethod\ttflops\nfa2_h100\tH100\tfwd+bwd\t0\t128\t8192\t2\t16\tflashattention2\t335\n' >"$W/attention.tsv"
bad option/kernels-fp8-attention "an attention table with --dtype fp8;expected --dtype bf16 or fp16" kernels -t "$SRC/topologies/hgx-h100-ndr400.json" --table "$W/attention.tsv" --dtype fp8
bad option/fp8-format-unknown "option --fp8-format;expected hybrid or e4m3;got \"e5m2\"" -m "$MODEL" -t "$SRC/topologies/hgx-h100-ndr400.json" --nodes 1 --fp8-format e5m2
bad option/fp8-format-fp32 "option --fp8-format;needs mixed precision;--param-dtype bf16" -m "$MODEL" -t "$SRC/topologies/hgx-h100-ndr400.json" --nodes 1 --param-dtype fp32 --fp8-format e4m3
bad option/param-dtype-fp8 "option --param-dtype;expected fp32, bf16 or fp16" "${BASE[@]}" --param-dtype fp8
bad option/kernels-min-gflop "option --min-gflop;expected" kernels --table "$SRC/README.md" --min-gflop -1
# fsdpsim search (issue 14): --vary syntax, unknown options, constraints, the space file
bad search/vary-no-equals "option --vary;expected OPTION=VALUES" search "${BASE[@]}" --vary tp
bad search/vary-duplicate-in-range "option --micro-batch;distinct values" search --vary micro-batch=2,1..3
bad search/vary-unknown-option "option --vary tpp=2;Unknown option --tpp" search "${BASE[@]}" --vary tpp=2
bad search/vary-bad-value "option --vary tp=two: expected an integer, got \"two\"" search "${BASE[@]}" --vary tp=two
# a bad value of the search's own options and of the simulation's, in the words fsdpsim uses
bad search/option-not-a-number "option --samples: expected an integer, got \"x\";fsdpsim search --help" search "${BASE[@]}" --vary nodes=1,2 --samples x
bad search/option-value-missing "option --top: its value is missing;fsdpsim search --help" search "${BASE[@]}" --vary nodes=1,2 --top
bad search/fixed-not-a-number "option -n (--nodes): expected an integer, got \"two\";fsdpsim --help" search "${BASE[@]}" --vary tp=1,2 -n two
bad search/fixed-number-not-a-number "option --moe-imbalance: expected a number, got \"x\"" search "${BASE[@]}" --vary tp=1,2 --moe-imbalance x
# a file of one simulation, which every point would have written again (the last point's left)
bad search/fixed-trace "option --trace: an output of one simulation;--emit-jobs" search "${BASE[@]}" --vary tp=1,2 --trace "$W/search-trace.json"
bad search/fixed-emit-schedule "option --emit-schedule: an output of one simulation" search "${BASE[@]}" --vary tp=1,2 --emit-schedule="$W/search-s.json"
bad search/fixed-misspelt "Unknown option --strategey;did you mean --strategy?" search "${BASE[@]}" --vary tp=1,2 --strategey full
bad search/vary-bad-range "option --vary nodes;expected integer bounds a..b" search "${BASE[@]}" --vary nodes=1..x
bad search/vary-bad-step "option --vary nodes;geometric factor" search "${BASE[@]}" --vary nodes=1..8:x1
bad search/vary-reversed "option --vary nodes;a <= b" search "${BASE[@]}" --vary nodes=8..1
bad search/vary-duplicate-value "option --vary tp;distinct values" search "${BASE[@]}" --vary tp=1,2,1
bad search/vary-twice "option --vary tp;varied twice" search "${BASE[@]}" --vary tp=1 --vary tp=2
bad search/vary-output "option --vary json;not a dimension" search "${BASE[@]}" --vary json=on
bad search/vary-and-fixed "option --vary nodes;also given as a fixed option" search "${BASE[@]}" --nodes 2 --vary nodes=1,2
bad search/no-space "option --vary;at least one dimension" search "${BASE[@]}"
bad search/method "option --method;expected exhaustive, random or asha" search "${BASE[@]}" --vary nodes=1,2 --method grid
bad search/constraint "option --constraint;expected fits" search "${BASE[@]}" --vary nodes=1,2 --constraint fits:room=1
bad search/objective-tokens "--tokens" search "${BASE[@]}" --vary nodes=1,2 --objective node-hours
bad search/shard "option --shard;0 <= I < N" search "${BASE[@]}" --vary nodes=1,2 --shard 2/2
bad search/global-batch "option --global-batch;expected a number of sequences" search "${BASE[@]}" --vary nodes=1,2 --global-batch many
bad search/global-batch-grad-accum "option --vary grad-accum;--global-batch" search "${BASE[@]}" --vary grad-accum=1,2 --global-batch 64
bad search/resume-no-out "option --resume;--out" search "${BASE[@]}" --vary nodes=1,2 --resume
bad search/plot-format "option --plot-format;expected png" search "${BASE[@]}" --vary nodes=1,2 --plot "$W/figs" --plot-format gif
bad search/emit-jobs-merge "option --emit-jobs;not --merge" search --merge "$W/x.jsonl" --out "$W/y.jsonl" --emit-jobs "$W/jobs"
bad search/ray-tune "option --ray-tune;expected KEY=VALUE" search "${BASE[@]}" --ray-tune samples=10,speed=3
echo '{"vary": {"tp": {"a": 1}}}' >"$W/space.json"
bad search/space-file "$W/space.json;field 'vary.tp';expected a list" search "${BASE[@]}" --space "$W/space.json"
bad search/merge-not-records "$SRC/README.md;line 1;search record" search --merge "$SRC/README.md" --out "$W/merged.jsonl"
bad search/tokens-and-steps "option --steps;--tokens;one of them" search "${BASE[@]}" --vary tp=1,2 --tokens 1T --steps 100
printf 'x\ty\n1\t2\n' >"$W/notatable.tsv"
bad kernels/not-a-table "$W/notatable.tsv;header;expected GEMM columns" kernels --table "$W/notatable.tsv"
printf 'm\tn\tk\ttflops_bf16\n256\t256\t256\tNA\n' >"$W/norows.tsv"
bad kernels/no-rows "$W/norows.tsv;no row matches" kernels --table "$W/norows.tsv"

# --- profiler traces (fsdpsim trace summary, compare --real; issue 16) ---------------------------
python3 "$SRC/tests/integration/trace_synth.py" "$W/ts" && python3 "$SRC/tests/integration/trace_synth.py" "$W/tz" zero-steps &&
    python3 "$SRC/tests/integration/trace_synth.py" "$W/tm" mixed && python3 "$SRC/tests/integration/trace_synth.py" "$W/tn" no-schema ||
    { echo "Bail out! trace_synth.py"; exit 1; }
head -c 3000 "$W/ts/rank0.json" >"$W/trunc.json"
bad ktrace/truncated "$W/trunc.json;traceEvents[;truncated" trace summary "$W/trunc.json"
head -c 300 "$W/ts/rank1.json.gz" >"$W/trunc.json.gz"
bad ktrace/truncated-gz "$W/trunc.json.gz;truncated" trace summary "$W/trunc.json.gz"
bad ktrace/not-a-trace "$MODEL;field 'traceEvents';PyTorch profiler trace" trace summary "$MODEL"
bad ktrace/no-schema "$W/tn/rank0.json;field 'schemaVersion'" trace summary "$W/tn"
bad ktrace/zero-steps "$W/tz/rank0.json;field 'traceEvents';ProfilerStep#N" trace summary "$W/tz"
bad ktrace/mixed-jobs "rank1.json.gz;field 'distributedInfo.world_size';expected \"2\"" trace summary "$W/tm"
bad ktrace/duplicate-rank "$W/ts/rank0.json;field 'distributedInfo.rank';each rank once" trace summary "$W/ts/rank0.json" "$W/ts/rank0.json"
# a set of files: each says its rank; their steps overlap; Kineto's base time is a whole number
jedit "$W/ts/rank0.json" "$W/knodist.json" 'del d["distributedInfo"]'
bad ktrace/set-without-distributedinfo "$W/knodist.json;field 'distributedInfo';expected distributedInfo (rank, world_size) in every trace" trace summary "$W/knodist.json" "$W/ts/rank1.json.gz"
jedit "$W/ts/rank0.json" "$W/kwindow.json" '[e.update(name="ProfilerStep#%d" % (int(e["name"][13:]) + 100)) for e in d["traceEvents"] if e.get("name", "").startswith("ProfilerStep#")]'
bad ktrace/different-windows "$W/kwindow.json;field 'traceEvents.ProfilerStep#N';different profiling windows" trace summary "$W/ts/rank1.json.gz" "$W/kwindow.json"
jedit "$W/ts/rank0.json" "$W/kbase.json" 'd["baseTimeNanoseconds"] = 1.5'
bad ktrace/fractional-base-time "$W/kbase.json;field 'baseTimeNanoseconds';expected a whole number of nanoseconds" trace summary "$W/kbase.json"
jedit "$W/ts/rank0.json" "$W/kstep.json" 'next(e for e in d["traceEvents"] if e.get("name", "").startswith("ProfilerStep#"))["name"] = "ProfilerStep#4294967297"'
bad ktrace/step-number-beyond-int "$W/kstep.json;field 'traceEvents[;name';ProfilerStep#N with an integer N in [0, 2147483647]" trace summary "$W/kstep.json"
jedit "$W/ts/rank0.json" "$W/kdur.json" 'd["traceEvents"][2]["dur"] = -1'
bad ktrace/negative-dur "$W/kdur.json;traceEvents[2].dur';expected a duration" trace summary "$W/kdur.json"
jedit "$W/ts/rank0.json" "$W/knelems.json" 'next(e for e in d["traceEvents"] if "Collective name" in e.get("args", {}))["args"]["In msg nelems"] = 4e18'
bad ktrace/nelems-beyond-range "$W/knelems.json;.args.In msg nelems';expected a whole number in [0, 68719476736]" trace summary "$W/knelems.json"
jedit "$W/ts/rank0.json" "$W/krank.json" 'd["distributedInfo"]["rank"] = 5'
bad ktrace/rank-out-of-range "$W/krank.json;field 'distributedInfo.rank';world_size" trace summary "$W/krank.json"
mkdir -p "$W/empty"
bad ktrace/empty-directory "$W/empty;found none" trace summary "$W/empty"
bad ktrace/no-files "expected one or more profiler traces" trace summary
bad ktrace/unknown-action "unknown action 'summarize'" trace summarize "$W/ts"
bad ktrace/calibrate-no-topology "option --topology;expected a topology" trace calibrate "$W/ts" -o "$W/cal.json"
bad ktrace/calibrate-no-output "option --output;expected a file" trace calibrate "$W/ts" -t "$TOPO"
bad ktrace/calibrate-bad-output "option --output;no such directory" trace calibrate "$W/ts" -t "$TOPO" -o "$W/nodir/cal.json"
bad ktrace/whatif-no-ranks "option --ranks;expected job sizes" trace whatif "$W/ts" -t "$TOPO"
bad ktrace/whatif-bad-ranks "option --ranks;got '0'" trace whatif "$W/ts" -t "$TOPO" --ranks 16,0
bad ktrace/whatif-ranks-not-divisible "option --ranks;got 6" trace whatif "$W/ts" -t "$TOPO" --ranks 6
bad ktrace/whatif-no-topology "option --topology" trace whatif "$W/ts" --ranks 16
bad ktrace/compare-zero-steps "$W/tz/rank0.json;ProfilerStep#N" compare --real "$W/tz/rank0.json" --sim "$W/sim.json"
bad ktrace/compare-truncated "$W/trunc.json.gz;truncated" compare --real "$W/trunc.json.gz" --sim "$W/sim.json"
# issue 19: names and near misses get a did-you-mean; options that do not apply say why
bad option/misspelt-option "Unknown option --strategey;did you mean --strategy?" "${BASE[@]}" --strategey hybrid
bad option/integer-not-a-number "option --nodes: expected an integer, got \"four\"" "${BASE[@]}" --nodes four
bad option/integer-short-not-a-number "option -n (--nodes): expected an integer, got \"two\";fsdpsim collective --help" collective -n two
bad option/integer-out-of-range "option --seq-len: expected an integer from -2147483648 to 2147483647" "${BASE[@]}" --seq-len 99999999999
bad option/number-not-a-number "option --moe-imbalance: expected a number, got \"x\"" "${BASE[@]}" --moe-imbalance x
bad option/value-missing "option --nodes: its value is missing;fsdpsim scale --help" scale --nodes
bad option/misspelt-option-collective "Unknown option --topolgy;did you mean --topology?" collective --topolgy jusuf
bad option/strategy-near-miss "option --strategy;got \"hybrd\";did you mean 'hybrid'?" "${BASE[@]}" --strategy hybrd
bad option/sharding-near-miss "option --sharding;did you mean 'full_shard'?" "${BASE[@]}" --sharding full_shrd
bad option/optimizer-near-miss "option --optimizer;did you mean 'adamw'?" "${BASE[@]}" --optimizer adamm
bad option/param-dtype-near-miss "option --param-dtype;did you mean 'bfloat16'?" "${BASE[@]}" --param-dtype bfloat61
bad option/attention-near-miss "option --attention;did you mean 'flash'?" "${BASE[@]}" --attention flahs
bad option/pp-scatter-gather "option --pp-scatter-gather;--tp 2 or more" "${BASE[@]}" --pp 2 --pp-scatter-gather megatron
bad option/pp-scatter-gather-mode "option --pp-scatter-gather;expected megatron or deepspeed" \
    "${BASE[@]}" --pp 2 --tp 2 --pp-scatter-gather bogus
bad option/memory-format "option --memory-format;expected channels_last or contiguous;did you mean 'channels_last'?" \
    "${BASE[@]}" --memory-format channel_last
bad option/recompute-granularity "option --recompute-granularity;expected full or selective;got \"foo\"" \
    "${BASE[@]}" --recompute-granularity foo
bad option/nccl-algo-near-miss "option --nccl-algo;did you mean 'ring'?" "${BASE[@]}" --nccl-algo rign
bad option/topology-name-unknown "option --topology;no shipped topology called 'jusf';did you mean 'jusuf'?;fsdpsim list topologies" -m "$MODEL" -t jusf
bad option/model-name-unknown "option --model;no shipped model called 'lama3-8b';did you mean 'llama3-8b'?" -m lama3-8b -t "$TOPO"
bad option/model-name-part "option --model;no shipped model called 'llama';did you mean 'llama2-70b', 'llama2-7b' or 'llama3-8b'?" -m llama -t "$TOPO"
bad option/topology-name-part "option --topology;did you mean 'juwels-booster'?" -m "$MODEL" -t juwels
mkdir -p "$W/empty-dir"
bad option/model-directory-without-config "option --model;$W/empty-dir is a directory without a config.json;Hugging Face config.json" -m "$W/empty-dir" -t "$TOPO"
bad option/topology-directory "option --topology;$W/empty-dir is a directory;expected a topology file" -m "$MODEL" -t "$W/empty-dir"
bad option/seq-len-on-cnn "option --seq-len;takes images;expected no --seq-len" -m "$RESNET" -t "$TOPO" --seq-len 128
bad option/seq-len-on-vit "option --seq-len;ViT-L/16;takes images" -m "$SRC/models/vit-l16.json" -t "$TOPO" --seq-len 128
bad option/attention-on-cnn "option --attention;no attention layers" -m "$RESNET" -t "$TOPO" --attention flash
bad option/no-flash-on-cnn "--no-flash-attention;no attention layers" -m "$RESNET" -t "$TOPO" --no-flash-attention
bad option/flash-on-t5 "option --attention flash;T5Attention;no FlashAttention" -m "$SRC/models/t5-base.json" -t "$TOPO" --attention flash
bad option/ep-dense-model "option --ep;no experts" -m "$LLAMA" -t "$TOPO" --ep 2
bad option/ep-not-dividing-experts "option --ep;field 'experts';8 experts" -m "$SRC/models/mixtral-8x7b.json" -t "$TOPO" --ep 3
bad option/ep-not-dividing-shard-group "option --ep;divides the 4 GPUs of a shard group" -m "$SRC/models/mixtral-8x7b.json" -t "$TOPO" --strategy hybrid --nodes 2 --ep 8
bad option/ep-with-ddp "option --ep is modelled with FSDP alone" -m "$SRC/models/mixtral-8x7b.json" -t "$TOPO" --strategy ddp --ep 2
bad option/ep-with-checkpointing "option --ep with activation checkpointing" -m "$SRC/models/mixtral-8x7b.json" -t "$TOPO" --activation-checkpointing --ep 2
bad option/ep-with-fsdp2 "option --ep;--fsdp-version 2" -m "$SRC/models/mixtral-8x7b.json" -t hgx-h100-ndr400 --nodes 2 --ep 8 --fsdp-version 2
bad option/moe-imbalance-without-ep "option --moe-imbalance applies to expert parallelism" -m "$SRC/models/mixtral-8x7b.json" -t "$TOPO" --moe-imbalance 2
bad option/moe-imbalance-below-one "option --moe-imbalance;1..1000" -m "$SRC/models/mixtral-8x7b.json" -t hgx-h100-ndr400 --nodes 2 --ep 8 --moe-imbalance 0.5
bad option/list-near-miss "list: expected models or topologies;did you mean 'models'?" list modls
bad option/list-nothing "list: expected one argument" list

echo "1..$n"
echo "# $((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
