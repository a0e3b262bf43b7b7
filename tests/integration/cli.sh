#!/usr/bin/env bash
# Integration tests of the fsdpsim command line: exit status, the message on stderr, and what is
# (or is not) written to stdout and to output files.
#
# usage: cli.sh FSDPSIM SOURCE_ROOT [GROUP...]
#   GROUP: run, input, output (default: all). Prints TAP ("ok N - name" / "not ok N - name",
#   diagnostics as "# ..."), then a last line "P passed, F failed" (as a TAP comment "# P passed,
#   F failed" when CLI_SH_TAP_ONLY is set, as tests/integration/meson.build does); exit status 1
#   if any case failed, 2 on a usage error.
#
# Every case asserts the exact exit status; an exit status >= 124 (timeout, or killed by a signal)
# is reported as a crash. Error cases also assert that stdout stays empty and that the one-line
# message on stderr names the file or option, the field and the expectation.
set -u

if [ $# -lt 2 ]; then
    echo "usage: $0 FSDPSIM SOURCE_ROOT [GROUP...]" >&2
    exit 2
fi
FSDPSIM=$1
SRC=$2
shift 2
case $FSDPSIM in /*) ;; *) FSDPSIM=$PWD/$FSDPSIM ;; esac
case $SRC in /*) ;; *) SRC=$PWD/$SRC ;; esac
GROUPS_WANTED=${*:-run input output}

MAIN_C=$SRC/src/cli/simulate.c
MODEL=$SRC/models/gpt.json
TOPO=$SRC/topologies/juwels-booster.json
# explicit inputs, so that the cases below do not depend on the working directory
BASE=(-m "$MODEL" -t "$TOPO")

W=$(mktemp -d "${TMPDIR:-/tmp}/fsdpsim-cli.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
trap 'exit 1' INT TERM HUP

# ---------------------------------------------------------------------------------------------
# harness

RC=0    # exit status of the last fsd call
OUT=$W/stdout
ERR=$W/stderr

diag() {
    local line
    while IFS= read -r line; do printf '# %s\n' "$line"; done <<<"$*"
}

fail() {
    diag "$*"
    if [ -s "$ERR" ]; then diag "stderr: $(head -c 600 "$ERR")"; fi
    return 1
}

# fsd ARGS...: runs fsdpsim with a time limit, stdout to $OUT, stderr to $ERR, status to RC
fsd() {
    timeout 20 "$FSDPSIM" "$@" >"$OUT" 2>"$ERR"
    RC=$?
    if [ "$RC" -ge 124 ]; then
        diag "CRASH or TIMEOUT: fsdpsim $* -> exit status $RC"
    fi
    return 0
}

expect_rc() {
    [ "$RC" -eq "$1" ] || fail "expected exit status $1, got $RC"
}

# expect_err WORD...: each fixed string occurs in the message on stderr
expect_err() {
    local w
    for w in "$@"; do
        grep -qF -- "$w" "$ERR" || fail "stderr does not mention '$w'" || return 1
    done
}

# an input error: status 2, nothing on stdout, one line "fsdpsim: ..." on stderr with WORDs
expect_input_error() {
    expect_rc 2 || return 1
    [ ! -s "$OUT" ] || fail "stdout should be empty on an error, has $(wc -c <"$OUT") bytes: $(head -c 200 "$OUT")" || return 1
    [ "$(wc -l <"$ERR")" -eq 1 ] || fail "expected one line on stderr, got $(wc -l <"$ERR")" || return 1
    grep -q '^fsdpsim: ' "$ERR" || fail "stderr should start with 'fsdpsim: '" || return 1
    expect_err "$@"
}

expect_out() {
    local w
    for w in "$@"; do
        grep -qF -- "$w" "$OUT" || fail "stdout does not mention '$w'" || return 1
    done
}

expect_no_err() {
    [ ! -s "$ERR" ] || fail "stderr should be empty"
}

# a successful run: status 0, nothing on stderr, WORDs on stdout
expect_success() {
    expect_rc 0 && expect_no_err && expect_out "$@"
}

# expect_file FILE...: each was written and is not empty
expect_file() {
    local f
    for f in "$@"; do
        [ -s "$f" ] || fail "$f was not written (or is empty)" || return 1
    done
}

# edit SRC DEST SED-SCRIPT: copies a file with a sed edit and checks that the edit happened
edit() {
    sed -e "$3" "$1" >"$2" || return 1
    ! cmp -s "$1" "$2" || fail "test setup: sed '$3' did not change $1"
}

# pycheck PYTHON-CODE ARGS...: JSON checks in python3; fails with python's message
pycheck() {
    local code=$1 msg
    shift
    msg=$(python3 -c "$code" "$@" 2>&1) || fail "${msg:-python3 check failed}"
}

CASES=()
add() { CASES+=("$1 $2"); } # add GROUP FUNCTION

# ---------------------------------------------------------------------------------------------
# group run: runs with good input, --help, --version

t_default_run_in_source_tree() {
    (cd "$SRC" && fsd && expect_success 'step time' 'memory/GPU')
}
add run t_default_run_in_source_tree

t_default_run_elsewhere() {
    # no -m/-t: the defaults must be found through the data directory from any directory
    (cd "$W" && fsd && expect_success 'step time' 'memory/GPU' 'GPT-3 XL' 'juwels-booster')
}
add run t_default_run_elsewhere

t_help_lists_every_option() {
    local names name n=0 missing=""
    names=$(sed -n '/GOptionEntry entries\[\]/,/{NULL, 0/p' "$MAIN_C" | grep -oE '^[[:space:]]*\{"[a-z0-9-]+"' |
            grep -oE '[a-z0-9-]+')
    fsd --help
    expect_rc 0 && expect_no_err || return 1
    for name in $names; do
        n=$((n + 1))
        grep -qE -- "--$name([=[:space:]]|\$)" "$OUT" || missing="$missing --$name"
    done
    [ "$n" -ge 25 ] || fail "found only $n options in $MAIN_C's GOptionEntry table; did its layout change?" || return 1
    [ -z "$missing" ] || fail "--help does not mention:$missing" || return 1
    # and every subcommand of main.c's table
    names=$(grep -oE '^[[:space:]]*\{"[a-z-]+", cli_' "$SRC/src/cli/main.c" | grep -oE '"[a-z-]+"' | tr -d '"')
    [ -n "$names" ] || fail "found no subcommand table in src/cli/main.c; did its layout change?" || return 1
    for name in $names; do
        grep -qE -- "^  $name " "$OUT" || missing="$missing $name"
    done
    [ -z "$missing" ] || fail "--help does not list the subcommands:$missing"
}
add run t_help_lists_every_option

t_help_documents_exit_status() {
    fsd --help
    expect_success 'Exit status' 'bad input'
}
add run t_help_documents_exit_status

t_version() {
    local v
    v=$(sed -n "s/^[[:space:]]*version[[:space:]]*:[[:space:]]*'\([^']*\)'.*/\1/p" "$SRC/meson.build" | head -n1)
    [ -n "$v" ] || fail "test setup: no version in $SRC/meson.build" || return 1
    fsd --version
    expect_rc 0 && expect_no_err || return 1
    [ "$(cat "$OUT")" = "fsdpsim $v" ] || fail "expected 'fsdpsim $v', got '$(cat "$OUT")'"
}
add run t_version

t_busiest_links_grouped() {
    # hybrid on 8 nodes: every node's NIC 0 carries the same replica traffic, so one line stands
    # for the 32 NIC transmit links loaded alike, and no two listed links are alike
    fsd "${BASE[@]}" --strategy hybrid --nodes 8
    expect_success 'node0.nic0.tx' '(and 31 more alike)' || return 1
    fsd "${BASE[@]}" --strategy hybrid --nodes 8 --json
    expect_rc 0 || return 1
    pycheck '
import json, sys
links = json.load(open(sys.argv[1]))["communication"]["busiest_links"]
keys = [(l["kind"], l["capacity_Bps"], l["bytes"], l["busy_s"], l["peak_utilisation"]) for l in links]
assert len(set(keys)) == len(keys), "two listed links are alike: %s" % keys
nic = [l for l in links if l["name"] == "node0.nic0.tx"]
assert nic and nic[0]["links_alike"] == 32, nic
' "$OUT"
}
add run t_busiest_links_grouped

# the rows by kind sum nccl-tests' sizes, not the bytes sent above them, and the header says so:
# full_shard on 4 x 4 GPUs sends 15/16 of each all-gather's and reduce-scatter's size
t_communication_rows_are_sizes() {
    fsd "${BASE[@]}" --nodes 4
    expect_success '(by kind: calls, sizes as nccl-tests gives them, time in flight)' || return 1
    fsd "${BASE[@]}" --nodes 4 --json
    expect_rc 0 || return 1
    pycheck '
import json, sys
c = json.load(open(sys.argv[1]))["communication"]
size = sum(k["bytes"] for k in c["collectives"].values())
assert abs(c["bytes_per_gpu"] - size * 15 / 16) < 1e-6 * size, (c["bytes_per_gpu"], size)
' "$OUT"
}
add run t_communication_rows_are_sizes

# FSDP1's HYBRID_SHARD with 1 GPU per node never synchronises the replicas
# (pytorch/pytorch#154888): an error in the summary and in --json's errors (not warnings), and
# no byte between nodes
t_hybrid_one_gpu_per_node_errors() {
    fsd "${BASE[@]}" --strategy hybrid --gpus-per-node 1
    expect_success 'errors:' 'diverge' 'pytorch/pytorch#154888' || return 1
    fsd "${BASE[@]}" --strategy hybrid_zero2 --gpus-per-node 1 --json
    expect_rc 0 && expect_no_err || return 1
    pycheck '
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["errors"]) == 1 and "diverge" in d["errors"][0], d["errors"]
assert not any("diverge" in w for w in d["warnings"]), d["warnings"]
assert d["communication"]["inter_node_bytes_per_gpu"] == 0, d["communication"]
' "$OUT" || return 1
    fsd "${BASE[@]}" --strategy full_shard --gpus-per-node 1 --json
    pycheck '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["errors"] == [], d["errors"]
assert d["communication"]["inter_node_bytes_per_gpu"] > 0, d["communication"]
' "$OUT"
}
add run t_hybrid_one_gpu_per_node_errors

t_llama2_70b_out_of_memory() {
    fsd -m "$SRC/models/llama2-70b.json" -t "$TOPO" --nodes 4 --sharding full_shard
    expect_success 'OUT OF MEMORY' || return 1
    fsd -m "$SRC/models/llama2-70b.json" -t "$TOPO" --nodes 4 --sharding full_shard --json
    expect_rc 0 && expect_no_err || return 1
    pycheck '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["memory"]["oom"] is True, "memory.oom is %r" % (d["memory"]["oom"],)
assert d["memory"]["peak_bytes"] > d["memory"]["capacity_bytes"], "peak below capacity"
assert any("does not fit" in w for w in d["warnings"]), "no warning says it does not fit"
' "$OUT"
}
add run t_llama2_70b_out_of_memory

# The optimizer step by implementation and, offloaded, by threads (src/kern/kern_optim.c): DDP of
# the 1.3B default model with foreach AdamW moves 80 B per parameter, fused 28 B, so the step
# is (80 - 28) x 1.316e9 B at the A100's measured 1400 GB/s = 49 ms shorter fused (the host
# issues the for-loop's launches while the GPU still runs backward: same step as foreach). With
# CPU offload, torchrun's one thread per rank streams 22.3 GB/s: 82.2M parameters (1.316e9 / 16)
# x 80 B = 0.29 s; 12 threads are capped at the node's 200 GB/s / 4 ranks: 0.13 s.
t_optimizer_impl_and_threads() {
    local s
    for s in foreach fused forloop; do
        fsd "${BASE[@]}" --strategy ddp --optimizer-impl "$s" --json
        expect_rc 0 || return 1
        cp "$OUT" "$W/opt-$s.json"
    done
    fsd "${BASE[@]}" --cpu-offload --json && cp "$OUT" "$W/off-1.json"
    fsd "${BASE[@]}" --cpu-offload --omp-num-threads 12 --json && cp "$OUT" "$W/off-12.json"
    expect_rc 0 || return 1
    pycheck '
import json, sys
d = {k: json.load(open(sys.argv[1] + "/" + k + ".json"))["step_time_s"]
     for k in ("opt-foreach", "opt-fused", "opt-forloop", "off-1", "off-12")}
gain = d["opt-foreach"] - d["opt-fused"]
assert 0.040 < gain < 0.060, "foreach - fused = %.4f s, expected about 0.049" % gain
assert d["opt-forloop"] >= d["opt-foreach"], d
slow = d["off-1"] - d["off-12"]
assert 0.12 < slow < 0.20, "1 thread - 12 threads = %.4f s, expected about 0.16" % slow
w1 = json.load(open(sys.argv[1] + "/off-1.json"))["warnings"]
w12 = json.load(open(sys.argv[1] + "/off-12.json"))["warnings"]
assert any("OMP_NUM_THREADS=12" in w for w in w1), w1
assert not any("launch kernels" in w for w in w1), "CPU step called launch-bound: %r" % w1
assert not any("OMP_NUM_THREADS" in w for w in w12), w12
' "$W"
}
add run t_optimizer_impl_and_threads

# DeepSpeed's optimizer offload (--offload-optimizer cpu) against --cpu-offload on GPT-2 (16 A100,
# 124M parameters, 7.8M per rank): the parameter shards stay on the GPU (memory between the two),
# the CPU step moves 30 B per element instead of 80 (faster than --cpu-offload's), the summary
# and JSON say it, and its one-thread warning names OMP_NUM_THREADS as --cpu-offload's does.
t_offload_optimizer() {
    fsd "${BASE[@]}" --json && cp "$OUT" "$W/oo-none.json"
    fsd "${BASE[@]}" --cpu-offload --json && cp "$OUT" "$W/oo-params.json"
    fsd "${BASE[@]}" --offload-optimizer cpu --json && cp "$OUT" "$W/oo-opt.json"
    expect_rc 0 || return 1
    fsd "${BASE[@]}" --offload-optimizer cpu
    expect_rc 0 && expect_out "offload_optimizer=cpu (DeepSpeed ZeRO-Offload)" || return 1
    fsd "${BASE[@]}"
    grep -q offload_optimizer "$OUT" && fail "offload_optimizer named in a run without it" && return 1
    pycheck '
import json, sys
d = {k: json.load(open(sys.argv[1] + "/oo-" + k + ".json")) for k in ("none", "params", "opt")}
mem = {k: v["memory"]["peak_bytes"] for k, v in d.items()}
assert mem["params"] < mem["opt"] < mem["none"], mem
assert d["opt"]["fsdp"]["offload_optimizer"] == "cpu", d["opt"]["fsdp"]
assert "offload_optimizer" not in d["none"]["fsdp"]
assert d["opt"]["memory"]["breakdown"]["optimizer"] == 0, d["opt"]["memory"]["breakdown"]
step = {k: v["step_time_s"] for k, v in d.items()}
assert step["none"] < step["opt"] < step["params"], step
' "$W"
}
add run t_offload_optimizer

# ---------------------------------------------------------------------------------------------
# group input: bad input -> exit status 2 and a message naming file/option, field, expectation

t_missing_model_file() {
    fsd -m "$W/no/such/model.json" -t "$TOPO"
    expect_input_error "$W/no/such/model.json" 'cannot read'
}
add input t_missing_model_file

t_truncated_model_json() {
    local f=$W/truncated.json line
    head -c 500 "$SRC/models/gpt2.json" >"$f"
    line=$(($(tr -cd '\n' <"$f" | wc -c) + 1)) # the truncation is on the last line
    fsd -m "$f" -t "$TOPO"
    expect_input_error 'malformed JSON' || return 1
    grep -qE -- "^fsdpsim: $f:$line:[0-9]+: malformed JSON" "$ERR" ||
        fail "expected '$f:$line:COLUMN: malformed JSON'"
}
add input t_truncated_model_json

t_empty_model_file() {
    : >"$W/empty.json"
    fsd -m "$W/empty.json" -t "$TOPO"
    expect_input_error "$W/empty.json: empty file" 'expected a JSON object'
}
add input t_empty_model_file

t_model_unknown_key() {
    edit "$SRC/models/gpt2.json" "$W/typo.json" 's/"n_embd": 768,/"n_embd": 768, "n_embdd": 5,/' || return 1
    fsd -m "$W/typo.json" -t "$TOPO"
    expect_input_error "$W/typo.json" "field 'n_embdd'" 'unknown key'
}
add input t_model_unknown_key

t_model_negative_hidden_size() {
    edit "$SRC/models/llama2-7b.json" "$W/neg.json" 's/"hidden_size": [0-9]*/"hidden_size": -5/' || return 1
    fsd -m "$W/neg.json" -t "$TOPO"
    expect_input_error "$W/neg.json" "field 'hidden_size'" 'expected an integer' '-5'
}
add input t_model_negative_hidden_size

t_model_is_a_topology() {
    fsd -m "$TOPO" -t "$TOPO"
    expect_input_error "$TOPO" 'a topology file (format fsdpsim-topology)' 'give it with --topology'
}
add input t_model_is_a_topology

t_topology_unknown_key() {
    edit "$TOPO" "$W/topo-key.json" 's/"gpu": {/"gpu": { "frobnicate": 1,/' || return 1
    fsd -m "$MODEL" -t "$W/topo-key.json"
    expect_input_error "$W/topo-key.json" "field 'gpu.frobnicate'" 'unknown key'
}
add input t_topology_unknown_key

t_topology_empty_source() {
    # the first "source" in the file is that of nodes_max
    edit "$TOPO" "$W/topo-src.json" '0,/"source": ".*"/s//"source": ""/' || return 1
    fsd -m "$MODEL" -t "$W/topo-src.json"
    expect_input_error "$W/topo-src.json" "field 'nodes_max.source'" 'source' 'empty'
}
add input t_topology_empty_source

t_topology_leaves_without_uplink() {
    edit "$TOPO" "$W/topo-leaf.json" '/"leaf_uplink_GBps"/,/},/d' || return 1
    fsd -m "$MODEL" -t "$W/topo-leaf.json"
    expect_input_error "$W/topo-leaf.json" "field 'network.leaf_uplink_GBps'" '"value"'
}
add input t_topology_leaves_without_uplink

t_topology_leaves_without_groups() {
    edit "$TOPO" "$W/topo-leaf2.json" '/"nodes_per_group"/,/},/d' || return 1
    fsd -m "$MODEL" -t "$W/topo-leaf2.json"
    expect_input_error "$W/topo-leaf2.json" "field 'network.leaves_per_group'" 'nodes_per_group'
}
add input t_topology_leaves_without_groups

t_topology_more_leaves_than_ports() {
    edit "$TOPO" "$W/topo-leaf3.json" '/"leaves_per_group"/,/},/s/"value": 10,/"value": 500,/' || return 1
    fsd -m "$MODEL" -t "$W/topo-leaf3.json"
    expect_input_error "$W/topo-leaf3.json" "field 'network.leaves_per_group'" 'at most one leaf per node port'
}
add input t_topology_more_leaves_than_ports

t_micro_batch_negative() {
    fsd "${BASE[@]}" --micro-batch -1
    expect_input_error 'option --micro-batch' 'expected a positive number' 'got -1'
}
add input t_micro_batch_negative

t_seq_len_absurd() {
    fsd "${BASE[@]}" --seq-len 99999999
    expect_input_error 'option --seq-len' 'expected 1..' '99999999'
}
add input t_seq_len_absurd

t_nodes_beyond_machine() {
    fsd "${BASE[@]}" --nodes 100000
    expect_input_error 'option --nodes' 'juwels-booster' '936' '100000'
}
add input t_nodes_beyond_machine

t_default_nodes_beyond_machine() {
    # hgx-h100-ndr400 has 2 nodes, the default is 4: the message must give the 4 that was used
    fsd -m "$MODEL" -t "$SRC/topologies/hgx-h100-ndr400.json"
    expect_input_error 'option --nodes' '1..2' || return 1
    ! grep -q 'got 0' "$ERR" || fail "the message reports 'got 0', but no --nodes was given and 4 (the default) was used"
}
add input t_default_nodes_beyond_machine

t_zero_is_not_the_default() {
    # 0 must be refused, not read as "unset" (which would silently run the default layout)
    local o
    for o in --nodes --gpus-per-node --seq-len --micro-batch --grad-accum; do
        fsd "${BASE[@]}" "$o" 0
        expect_input_error "option $o" 'expected a positive number' 'got 0' || return 1
    done
}
add input t_zero_is_not_the_default

t_validate_checks_input_first() {
    # before the minutes-long calibration on the emulated cluster, and with exit status 2
    if [ ! -x "$(dirname "$FSDPSIM")/fsdprun" ]; then
        diag "fsdprun not built: only the status is checked"
        fsd validate --model "$W/missing.json"
        expect_rc 2
        return
    fi
    fsd validate --model "$W/missing.json"
    expect_input_error "$W/missing.json" 'cannot read' || return 1
    fsd validate --model "$MODEL" --strategy zero3
    expect_input_error 'option --strategy' 'zero3'
}
add input t_validate_checks_input_first

t_gpus_per_node_beyond_node() {
    fsd "${BASE[@]}" --gpus-per-node 8
    expect_input_error 'option --gpus-per-node' '1..4' 'got 8'
}
add input t_gpus_per_node_beyond_node

t_option_not_a_number() {
    fsd "${BASE[@]}" --nodes 4x
    expect_input_error '--nodes' '4x'
}
add input t_option_not_a_number

t_hybrid_group_does_not_divide() {
    fsd "${BASE[@]}" --strategy hybrid --shard-group-size 3 --nodes 4
    expect_input_error 'option --shard-group-size' 'divide' '16'
}
add input t_hybrid_group_does_not_divide

t_hybrid_group_negative() {
    fsd "${BASE[@]}" --strategy hybrid --shard-group-size -1
    expect_input_error 'option --shard-group-size' '-1'
}
add input t_hybrid_group_negative

t_shard_group_size_with_ddp() {
    fsd "${BASE[@]}" --strategy ddp --shard-group-size 4
    expect_input_error 'option --shard-group-size'
}
add input t_shard_group_size_with_ddp

t_sharding_with_ddp() {
    fsd "${BASE[@]}" --sharding full_shard --strategy ddp
    expect_input_error 'option --sharding' 'ddp'
}
add input t_sharding_with_ddp

t_bucket_cap_nan() {
    fsd "${BASE[@]}" --strategy ddp --bucket-cap-mb nan
    expect_input_error 'option --bucket-cap-mb'
}
add input t_bucket_cap_nan

t_unknown_strategy() {
    fsd "${BASE[@]}" --strategy zero3
    expect_input_error 'option --strategy' '"zero3"' ddp fsdp full grad_op no_shard hybrid hybrid_zero2
}
add input t_unknown_strategy

t_collective_table() {
    fsd collective -t "$SRC/topologies/hgx-a100-40gb.json" -b 1M -e 4M
    expect_success 'algbw' 'busbw' 'Avg bus bandwidth' || return 1
    # three sizes doubling from 1 MiB, each row: size count type redop root time algbw busbw algo proto
    [ "$(grep -cE '^ +[0-9]+ +[0-9]+ +float +sum +-1 ' "$OUT")" -eq 3 ] || fail "expected 3 rows" || return 1
    grep -qE '^ +4194304 +1048576 ' "$OUT" || fail "no row for 4 MiB"
}
add run t_collective_table

t_collective_reference() {
    # a user's own nccl-tests output: its sizes are simulated, its times and the error printed
    cat >"$W/mine.txt" <<'EOF2'
# nThread 1 nGpus 8 minBytes 1048576 maxBytes 4194304 step: 2(factor) warmup iters: 5 iters: 20
#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
     1048576        262144     float     sum      -1    76.71   13.67   23.92    N/A    77.73   13.49   23.61    N/A
     4194304       1048576     float     sum      -1    134.5   31.18   54.57      0    134.7   31.13   54.48      0
# Avg bus bandwidth    : 39.2
EOF2
    fsd collective -t "$SRC/topologies/hgx-a100-40gb.json" --gpus-per-thread 8 --reference "$W/mine.txt"
    expect_success 'real oop' 'real ip' 'real busbw' 'error' || return 1
    [ "$(grep -cE '^ +[0-9]+ +[0-9]+ +float +sum +-1 ' "$OUT")" -eq 2 ] || fail "expected the reference's 2 sizes" || return 1
    # the 4 MiB row carries the reference's time and busbw, and an error that agrees with them
    pycheck '
import sys
row = [l.split() for l in open(sys.argv[1]) if l.split()[:1] == ["4194304"]][0]
# nccl-tests columns (out-of-place 5-8, in-place 9-12), algo proto, then the reference
sim_us, real_us, real_ip_us, real_bus = float(row[5]), float(row[15]), float(row[16]), float(row[17])
err = float(row[18].rstrip("%"))
assert row[9] == row[5] and row[8] == row[12] == "N/A", row
assert (real_us, real_ip_us, real_bus) == (134.5, 134.7, 54.57), row
assert abs(err - 100 * (real_us / sim_us - 1)) < 0.1, row
' "$OUT"
}
add run t_collective_reference

t_collective_reference_section() {
    # old nccl-tests output (no root column, an error column), one table of several picked by
    # its heading: the 4-node table of the ABCI file, 24 sizes from 4 B to 32 MiB
    cat >"$W/abci.txt" <<'EOF2'
=== 2 nodes, 16 GPUs ===
#       size         count    type   redop     time   algbw   busbw  error     time   algbw   busbw  error
    33554432       8388608   float     sum   1887.3   17.78   33.34  5e-07   1885.6   17.80   33.37  5e-07
=== 4 nodes, 32 GPUs ===
#       size         count    type   redop     time   algbw   busbw  error     time   algbw   busbw  error
     1048576        262144   float     sum    150.2    6.98   13.52  2e-07    149.6    7.01   13.58  2e-07
    33554432       8388608   float     sum   2652.9   12.65   24.51  5e-07   2650.2   12.66   24.53  5e-07
EOF2
    fsd collective -t "$SRC/topologies/abci-a100.json" -n 4 --reference "$W/abci.txt" \
        --reference-section "=== 4 nodes"
    expect_success 'real oop' || return 1
    [ "$(grep -cE '^ +[0-9]+ +[0-9]+ +float +sum +-1 ' "$OUT")" -eq 2 ] || fail "expected the 4-node table's 2 sizes" || return 1
    grep -qE '^ +33554432 .* 2652\.90 +2650\.20 +24\.53 ' "$OUT" || fail "32 MiB row: not the 4-node table's times"
}
add run t_collective_reference_section

t_collective_collnet() {
    # SHARP (network.sharp): NCCL's default never runs CollNet; NCCL_COLLNET_ENABLE=1
    # (--nccl-collnet) lets the tuner take it where its estimate is lowest: on 4 A100 nodes not at
    # 8 B (the tree LL's 35 us, 6.8 + 2 (7 x 0.6 + 2 x 5.0), against CollNetDirect's 44), at
    # 1 MiB CollNetDirect, at 1 GiB CollNetChain (the NICs, against Direct's NICs / 1.5 with 2
    # GPUs per NIC); a DDP run with NCCL_ALGO=COLLNETCHAIN exposes less communication
    local H=$SRC/topologies/coreweave-h100.json A=$SRC/topologies/coreweave-a100.json
    fsd collective -t "$A" -n 4 -b 8 -e 1G
    expect_success 'fsdpsim collective' || return 1
    ! grep -q collnet "$OUT" || fail "CollNet chosen without --nccl-collnet" || return 1
    fsd collective -t "$A" -n 4 -b 8 -e 1G --nccl-collnet
    expect_success 'fsdpsim collective' || return 1
    grep -qE '^ +1073741824 .* collnetchain +Simple' "$OUT" || fail "1 GiB: not CollNetChain" || return 1
    grep -qE '^ +8 .* tree +LL$' "$OUT" || fail "8 B: not the tree's LL" || return 1
    grep -qE '^ +1048576 .* collnetdirect +Simple' "$OUT" || fail "1 MiB: not CollNetDirect" || return 1
    fsd -m "$SRC/models/gpt2.json" -t "$H" -n 4 --strategy ddp
    expect_success 'exposed communication' || return 1
    local ring
    ring=$(sed -nE 's/.*exposed communication ([0-9.]+ [mu]s).*/\1/p' "$OUT")
    fsd -m "$SRC/models/gpt2.json" -t "$H" -n 4 --strategy ddp --nccl-algo collnetchain
    expect_success 'exposed communication' || return 1
    local cn
    cn=$(sed -nE 's/.*exposed communication ([0-9.]+ [mu]s).*/\1/p' "$OUT")
    python3 -c '
import sys
def us(t):
    v, u = t.split()
    return float(v) * (1000 if u == "ms" else 1)
sys.exit(0 if us(sys.argv[2]) < us(sys.argv[1]) else 1)' "$ring" "$cn" ||
        fail "DDP with CollNetChain exposes $cn, without $ring: expected less"
}
add run t_collective_collnet

t_collective_rooted() {
    # nccl-tests' reduce_perf, gather_perf, scatter_perf: reduce as NCCL's tuner runs it (the
    # broadcast ring, busbw = algbw, a sum with root 0); gather and scatter as grouped sends and
    # receives of size / n each, bound by the root's one NIC: on 2 x 8 H100 the other node's 8
    # parts, 8 x 64 MiB over 47 GB/s (node.nic_GBps) at 1 GiB; busbw = algbw x 15/16
    local T=$SRC/topologies/hgx-h100-ndr400.json
    local op
    for op in reduce broadcast gather scatter; do
        fsd collective -t "$T" -n 2 --op "$op" -b 1G -e 1G
        expect_success 'fsdpsim collective' || return 1
        cp "$OUT" "$W/$op.txt"
    done
    pycheck '
import sys
rows = {}
for op in ("reduce", "broadcast", "gather", "scatter"):
    rows[op] = [l.split() for l in open(sys.argv[1] + "/" + op + ".txt") if l.split()[:1] == ["1073741824"]][0]
r, b, g, s = rows["reduce"], rows["broadcast"], rows["gather"], rows["scatter"]
assert r[3:5] == ["sum", "0"] and b[3:5] == ["none", "0"] and g[3:5] == ["none", "0"], (r, g)
assert r[5] == b[5] and r[13] == "ring", (r, b)
assert abs(float(r[7]) - float(r[6])) < 0.011, r
assert g[5] == s[5] and g[13:15] == ["p2p", "Simple"], (g, s)
expect_us = 8 * (2**30 / 16) / 47e9 * 1e6
assert abs(float(g[5]) / expect_us - 1) < 0.01, (g[5], expect_us)
assert abs(float(g[7]) - float(g[6]) * 15 / 16) < 0.011, g
' "$W"
}
add run t_collective_rooted

# --nccl-version on a training step: NCCL 2.23 has no LL128 across GH200 nodes (the NIC is behind
# the Grace CPU, PHB to it), 2.27 on has (P2C), so GPT-2's mid-size all-reduces over 16 Alps
# nodes take longer under 2.23.4
t_simulate_nccl_version() {
    local v
    for v in 2.23.4 2.30.7; do
        fsd -m gpt2 -t alps-gh200 --nodes 16 --strategy ddp --nccl-version "$v" --json
        expect_rc 0 || return 1
        cp "$OUT" "$W/nccl-$v.json"
    done
    pycheck '
import json, sys
old, new = (json.load(open(sys.argv[1] + "/nccl-%s.json" % v)) for v in ("2.23.4", "2.30.7"))
t = lambda d: d["communication"]["collectives"]["allreduce"]["time_s"]
assert t(old) > 1.1 * t(new), (t(old), t(new))
' "$W"
}
add run t_simulate_nccl_version

t_collective_section_needs_reference() {
    fsd collective --reference-section "=== 4 nodes"
    expect_input_error 'option --reference-section' '--reference FILE'
}
add input t_collective_section_needs_reference

t_collective_reference_not_a_table() {
    printf 'hello\n' >"$W/notatable.txt"
    fsd collective --reference "$W/notatable.txt"
    expect_input_error "$W/notatable.txt" "field 'rows'" 'nccl-tests' || return 1
    fsd collective --reference "$W/missing.txt"
    expect_input_error "$W/missing.txt" 'cannot read'
}
add input t_collective_reference_not_a_table

t_forced_algorithm_unavailable() {
    # NCCL_ALGO=NVLS on A100s: refused before any output, by both commands
    fsd collective --nccl-algo nvls -b 1M -e 2M
    expect_input_error 'options --nccl-algo/--nccl-proto' 'nvls cannot run allreduce' 'juwels-booster' || return 1
    fsd "${BASE[@]}" --nccl-algo nvls
    expect_input_error 'option --nccl-algo' 'NVLink SHARP' 'juwels-booster'
}
add input t_forced_algorithm_unavailable

t_collective_bad_op() {
    fsd collective --op allreduc
    expect_input_error 'option --op' '"allreduc"' allgather
}
add input t_collective_bad_op

t_collective_bad_range() {
    fsd collective -b 8M -e 1M
    expect_input_error 'option --max-bytes' '1M'
}
add input t_collective_bad_range

t_unknown_option() {
    fsd "${BASE[@]}" --frobnicate
    expect_input_error '--frobnicate' '--help'
}
add input t_unknown_option

t_stray_argument() {
    fsd "${BASE[@]}" stray
    expect_input_error "'stray'" '--help'
}
add input t_stray_argument

t_trace_unwritable() {
    fsd "${BASE[@]}" --trace "$W/no/such/dir/trace.json"
    expect_input_error 'option --trace' "$W/no/such/dir/trace.json"
}
add input t_trace_unwritable

t_emit_schedule_unwritable() {
    fsd "${BASE[@]}" --emit-schedule "$W/no/such/dir/s.json"
    expect_input_error "$W/no/such/dir/s.json" 'cannot write'
}
add input t_emit_schedule_unwritable

# a schedule file of the default run, edited by python3
make_schedule() {
    fsd "${BASE[@]}" --emit-schedule "$W/sched.json"
    expect_rc 0 && expect_file "$W/sched.json" || return 1
    python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
$2
json.dump(d, open(sys.argv[2], 'w'))
" "$W/sched.json" "$1"
}

t_schedule_forward_dep() {
    make_schedule "$W/fwd.json" 'd["classes"][0]["ops"][5]["deps"] = [10]' || return 1
    fsd "${BASE[@]}" --schedule "$W/fwd.json"
    expect_input_error "$W/fwd.json" 'deps' 'earlier op'
}
add input t_schedule_forward_dep

t_schedule_many_names_read_fast() {
    # each meta key was looked up again from the start (O(keys^2)), each op's stream and group
    # by a linear search: 100,000 meta keys took minutes
    make_schedule "$W/manymeta.json" 'd["meta"].update({"k%d" % i: "v" for i in range(100000)})' || return 1
    local start=$SECONDS
    fsd "${BASE[@]}" --schedule "$W/manymeta.json" --json
    expect_rc 0 || return 1
    [ $((SECONDS - start)) -le 5 ] || fail "a schedule with 100,000 meta keys took $((SECONDS - start)) s"
}
add input t_schedule_many_names_read_fast

t_schedule_version_7() {
    make_schedule "$W/v7.json" 'd["version"] = 7' || return 1
    fsd "${BASE[@]}" --schedule "$W/v7.json"
    expect_input_error "$W/v7.json" "field 'version'" 'version 7'
}
add input t_schedule_version_7

# A collective's SMs ("sms", version 4) in a version 3 file: named, with the version it needs
t_schedule_sms_in_version_3() {
    make_schedule "$W/v3sms.json" '
d["version"] = 3
for c in d["classes"]:  # GPT-2'"'"'s head is misaligned: a version 6 field, not what this tests
    for l in c.get("kernel_lists", []):
        for k in l: k.pop("misaligned", None)
op = next(o for c in d["classes"] for o in c["ops"] if o["kind"] == "coll")
op["sms"] = 16' || return 1
    fsd "${BASE[@]}" --schedule "$W/v3sms.json"
    expect_input_error "$W/v3sms.json" "field 'classes[" "sms" "version 4"
}
add input t_schedule_sms_in_version_3

# Version 2 (compute ops with "seconds", no kernel lists) is still read; on the GPU the schedule
# was made for, its step is version 3's to the last digit (the lists re-cost to the same seconds).
t_schedule_version_2() {
    make_schedule "$W/v2.json" '
d["version"] = 2
for c in d["classes"]:
    c.pop("kernel_lists", None)
    for op in c["ops"]:
        op.pop("kernel_list", None)' || return 1
    grep -q '"kernel_lists"' "$W/sched.json" || fail "the emitted schedule has no kernel_lists" || return 1
    fsd "${BASE[@]}" --schedule "$W/v2.json" --json
    expect_rc 0 || return 1
    local v2; v2=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["step_time_s"])' <"$OUT")
    fsd "${BASE[@]}" --schedule "$W/sched.json" --json
    expect_rc 0 || return 1
    local v3; v3=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["step_time_s"])' <"$OUT")
    [ "$v2" = "$v3" ] || fail "version 2 step $v2 s, version 3 step $v3 s"
}
add input t_schedule_version_2

# A version 3 schedule made for one GPU and simulated on another is costed from its kernels for
# the GPU at hand: GPT-2 made for JUWELS Booster's A100s, run on JUPITER's GH200s, takes the step
# of the schedule generated for JUPITER, to the last digit; without its kernel lists (version 2)
# it keeps the A100's times and comes out slower.
t_schedule_other_gpu() {
    local B=(-m "$MODEL" --nodes 2 --gpus-per-node 4) J=(-t "$SRC/topologies/jupiter-booster.json")
    fsd "${B[@]}" -t "$SRC/topologies/juwels-booster.json" --emit-schedule "$W/a100.json"
    expect_rc 0 || return 1
    python3 -c "
import json, sys
d = json.load(open(sys.argv[1])); d['meta'].pop('topology', None)
json.dump(d, open(sys.argv[2], 'w'))
d['version'] = 2
for c in d['classes']:
    c.pop('kernel_lists', None)
    for o in c['ops']: o.pop('kernel_list', None)
json.dump(d, open(sys.argv[3], 'w'))" "$W/a100.json" "$W/a100-v3.json" "$W/a100-v2.json" || return 1
    local step=()
    for args in "--schedule $W/a100-v3.json" "--schedule $W/a100-v2.json" ""; do
        # shellcheck disable=SC2086
        fsd "${B[@]}" "${J[@]}" $args --json
        expect_rc 0 || return 1
        step+=("$(python3 -c 'import json,sys; print(json.load(sys.stdin)["step_time_s"])' <"$OUT")")
    done
    [ "${step[0]}" = "${step[2]}" ] || fail "A100 schedule on GH200: ${step[0]} s, generated for GH200: ${step[2]} s" || return 1
    python3 -c "import sys; sys.exit(0 if float('${step[1]}') > 1.5 * float('${step[0]}') else 1)" ||
        fail "version 2 on GH200 (${step[1]} s) not slower than version 3 (${step[0]} s)"
}
add input t_schedule_other_gpu

# FlashAttention v1 (--attention flash1): its kernels are written as "impl": "flash1", read back
# to the same step, and charged at FA1's measured A100 rate, so the step is slower than with
# FlashAttention-2's kernels.
t_schedule_flash1() {
    local B=(-m "$MODEL" --nodes 1 -t "$SRC/topologies/juwels-booster.json" --json)
    fsd "${B[@]}" --attention flash1 --emit-schedule "$W/fa1.json"
    expect_rc 0 || return 1
    local fa1; fa1=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["step_time_s"])' <"$OUT")
    grep -q '"impl":[[:space:]]*"flash1"' "$W/fa1.json" || fail "no flash1 kernel in the schedule" || return 1
    fsd "${B[@]}" --attention flash1 --schedule "$W/fa1.json"
    expect_rc 0 || return 1
    local back; back=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["step_time_s"])' <"$OUT")
    [ "$fa1" = "$back" ] || fail "flash1 step $fa1 s, read back $back s" || return 1
    fsd "${B[@]}" --attention flash
    expect_rc 0 || return 1
    local fa2; fa2=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["step_time_s"])' <"$OUT")
    python3 -c "import sys; sys.exit(0 if float('$fa1') > float('$fa2') else 1)" ||
        fail "flash1 step $fa1 s not slower than FlashAttention-2's $fa2 s"
}
add input t_schedule_flash1

# Version 1 (no kernel-model "seconds" on compute ops) is still read; its compute is charged at
# the best-shape rates, so the step comes out faster than version 2's.
t_schedule_version_1() {
    make_schedule "$W/v1.json" '
d["version"] = 1
for c in d["classes"]:
    c.pop("kernel_lists", None)
    for op in c["ops"]:
        op.pop("kernel_list", None)
        if op["kind"] == "compute": op.pop("seconds", None)' || return 1
    fsd "${BASE[@]}" --schedule "$W/v1.json" --json
    expect_rc 0 || return 1
    local v1; v1=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["step_time_s"])' <"$OUT")
    fsd "${BASE[@]}" --schedule "$W/sched.json" --json
    expect_rc 0 || return 1
    local v2; v2=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["step_time_s"])' <"$OUT")
    python3 -c "import sys; sys.exit(0 if float('$v1') < float('$v2') else 1)" ||
        { echo "version 1 step $v1 s not below version 2's $v2 s"; return 1; }
}
add input t_schedule_version_1

t_schedule_made_with_other_options() {
    # the report's tokens come from the options: a schedule of 4 micro-batches reported without
    # --grad-accum 4 gave a quarter of the tokens per second
    fsd "${BASE[@]}" --grad-accum 4 --json --emit-schedule "$W/ga4.json"
    expect_rc 0 && cp "$OUT" "$W/ga4-gen.json" || return 1
    fsd "${BASE[@]}" --schedule "$W/ga4.json"
    expect_input_error "$W/ga4.json" "field 'classes'" 'not the one the options generate' '--grad-accum' || return 1
    fsd "${BASE[@]}" --schedule "$W/ga4.json" --grad-accum 4 --seq-len 1024
    expect_input_error "$W/ga4.json" 'differs' || return 1
    fsd "${BASE[@]}" --schedule "$W/ga4.json" --grad-accum 4 --json
    expect_rc 0 || return 1
    cmp -s "$OUT" "$W/ga4-gen.json" || fail "--schedule with the file's options reports other numbers"
}
add input t_schedule_made_with_other_options

t_schedule_other_layout() {
    fsd "${BASE[@]}" --emit-schedule "$W/sched.json"
    expect_rc 0 && expect_file "$W/sched.json" || return 1
    fsd "${BASE[@]}" --schedule "$W/sched.json" --nodes 2
    expect_input_error "$W/sched.json" '--nodes 4'
}
add input t_schedule_other_layout

t_failed_run_leaves_no_schedule_file() {
    # a schedule that cannot run (a buffer freed twice) is simulated, and fails: the
    # --emit-schedule file it was asked for is not written (it used to be, before the simulation)
    make_schedule "$W/twice.json" '
del d["meta"]["strategy"]  # edited by hand: simulated as it is
ops = d["classes"][0]["ops"]
i = next(k for k, o in enumerate(ops) if o["kind"] == "free")
ops.append(dict(ops[i], deps=[]))' || return 1
    rm -f "$W/emitted.json"
    fsd "${BASE[@]}" --schedule "$W/twice.json" --emit-schedule "$W/emitted.json" --trace "$W/emitted-trace.json"
    expect_input_error 'schedule' 'freed' || return 1
    [ ! -e "$W/emitted.json" ] || fail "a failed run wrote --emit-schedule $W/emitted.json" || return 1
    [ ! -e "$W/emitted-trace.json" ] || fail "a failed run wrote --trace"
}
add input t_failed_run_leaves_no_schedule_file

t_memory_bound_before_allocating() {
    # the op count --max-memory's estimate extrapolates from two small schedules is the count
    # of the real schedule (pipeline and data parallel), and a run beyond the limit is refused;
    # the first small schedule's count times m / step, which alone lets a run through, is not
    # below the real count
    local spec args small ratio
    # the run | its first small schedule (step micro-batches: 1, or pp) | m / step
    for spec in "--grad-accum 40|--grad-accum 1|40" \
        "--pp 2 --micro-batches 24 --nodes 2|--pp 2 --micro-batches 2 --nodes 2|12"; do
        IFS='|' read -r args small ratio <<<"$spec"
        fsd "${BASE[@]}" $args --emit-schedule "$W/budget.json"
        expect_rc 0 || return 1
        fsd "${BASE[@]}" $small --emit-schedule "$W/budget-small.json"
        expect_rc 0 || return 1
        pycheck '
import json, sys
ops = lambda f: sum(len(c["ops"]) for c in json.load(open(f))["classes"])
full, small, ratio = ops(sys.argv[1]), ops(sys.argv[2]), float(sys.argv[3])
assert small * ratio >= full, "bound %g below the schedule'"'"'s %d ops" % (small * ratio, full)
assert small * ratio <= 2 * full, "bound %g loose: %d ops" % (small * ratio, full)
' "$W/budget.json" "$W/budget-small.json" "$ratio" || return 1
        # 1M: below any run's estimate (16 MiB for the program alone)
        fsd "${BASE[@]}" $args --max-memory 1M
        expect_input_error 'option --max-memory' 'million ops' 'than the 1.0 MiB allowed' 'fewer micro-batches' || return 1
        pycheck '
import json, re, sys
d = json.load(open(sys.argv[1]))
ops = sum(len(c["ops"]) for c in d["classes"])
est = float(re.search(r"about ([0-9.e+-]+) million ops", open(sys.argv[2]).read()).group(1)) * 1e6
assert abs(est - ops) <= 0.01 * ops, "estimated %g ops, the schedule has %d" % (est, ops)
' "$W/budget.json" "$ERR" || return 1
    done
    fsd "${BASE[@]}" --grad-accum 40 --max-memory 1G --json
    expect_rc 0 || return 1
    # a long 1F1B pipeline is sized as the compact program it runs (src/compact): GPT-3 175B
    # tp 8 x pp 8 at 3000 micro-batches, about 5 M ops whole (0.9 GiB), runs in 300 MiB; where
    # the compact run is refused (FSDP's parameters freed on a GPU stream), the whole program is
    # checked before it is made
    local gpt3=(-m "$SRC/models/gpt3-175b.json" -t "$SRC/topologies/juwels-booster.json" --tp 8
        --pp 8 --nodes 48 --micro-batches 3000 --max-memory 300M)
    fsd "${gpt3[@]}" --strategy ddp
    expect_rc 0 || return 1
    fsd "${gpt3[@]}" --strategy full
    expect_input_error 'option --max-memory' 'million ops' '3000 micro-batches' || return 1
    # a compact program beyond the limit says it is one, and of how many micro-batches: the
    # smallest program is checked first (pp + 12 = 20, src/compact)
    fsd "${gpt3[@]/300M/1M}" --strategy ddp
    expect_input_error 'option --max-memory' "the compact program (20 of the run's 3000 micro-batches" || return 1
    # --trace and --emit-schedule are streamed to their files and add nothing to the estimate; a
    # --report folder's figures hold per-op data (GPT-3 tp 8 x pp 8 at 128 micro-batches, 0.21 M
    # ops: 56 MiB, or 378 MiB with --report)
    local g128=(-m "$SRC/models/gpt3-175b.json" -t "$SRC/topologies/juwels-booster.json" --tp 8
        --pp 8 --nodes 48 --micro-batches 128 --strategy ddp --max-memory 200M)
    fsd "${g128[@]}" --trace "$W/budget-trace.json" --emit-schedule "$W/budget-schedule.json"
    expect_rc 0 || return 1
    fsd "${g128[@]}" --report "$W/budget-report"
    expect_input_error 'option --max-memory' 'with --report' 'no --report' || return 1
    [ ! -e "$W/budget-report" ]
}
add input t_memory_bound_before_allocating

t_out_of_memory_is_exit_2() {
    # past --max-memory's estimate (here made generous on purpose), an allocation that fails
    # inside GLib aborted with SIGTRAP; it is one message and exit status 2. ulimit -v cannot be
    # used under AddressSanitizer (it reserves terabytes of address space): skipped there.
    if ldd "$FSDPSIM" 2>/dev/null | grep -q libasan; then
        diag "skipped: AddressSanitizer build"
        return 0
    fi
    (ulimit -v 200000 && exec timeout 20 "$FSDPSIM" "${BASE[@]}" --grad-accum 3000 --max-memory 100G) >"$OUT" 2>"$ERR"
    RC=$?
    expect_rc 2 || return 1
    [ "$(wc -l <"$ERR")" -eq 1 ] || fail "expected one line on stderr" || return 1
    expect_err 'fsdpsim: out of memory' '--max-memory' || return 1
    # wherever the limit falls: a large request refused (GLib's log handler), or the space full
    # to the last page, where GLib's own message cannot be made and its logging recursed until
    # the stack overflowed (SIGSEGV; cfg_oom_install's SIGSEGV handler): a run that fits, or the
    # message and exit status 2, never a signal
    local kib
    for kib in 40000 70000 100000 130000 160000 190000 220000 250000; do
        (ulimit -v $kib && exec timeout 20 "$FSDPSIM" "${BASE[@]}" --grad-accum 3000 --max-memory 100G) >"$OUT" 2>"$ERR"
        RC=$?
        [ $RC = 0 ] && continue
        [ $RC = 2 ] || fail "ulimit -v $kib: exit status $RC, expected 0 or 2" || return 1
        [ "$(wc -l <"$ERR")" -eq 1 ] || fail "ulimit -v $kib: expected one line on stderr" || return 1
        expect_err 'fsdpsim: out of memory' || return 1
    done
}
add input t_out_of_memory_is_exit_2

t_long_layer_list_loads_fast() {
    # the module table was rebuilt after every module: 40,000 modules took 27 s to load
    python3 -c '
import json, sys
mods = [{"name": "l%d" % i, "kind": "linear", "params": 10, "flops_fwd": 100, "output_elems": 10}
        for i in range(40000)]
json.dump({"format": "fsdpsim-layers", "name": "many", "input_kind": "image", "modules": mods},
          open(sys.argv[1], "w"))
' "$W/many.json" || return 1
    local start=$SECONDS
    fsd -m "$W/many.json" -t "$TOPO" --nodes 1 --json
    expect_rc 0 || return 1
    [ $((SECONDS - start)) -le 5 ] || fail "a 40,000-module list took $((SECONDS - start)) s"
}
add input t_long_layer_list_loads_fast

t_validate_bad_bandwidth() {
    # checked before the work folder is made (it failed in the calibration: exit 1, folder left)
    local before after
    before=$(ls -d "${TMPDIR:-/tmp}"/fsdpsim-validate-* 2>/dev/null | wc -l)
    fsd validate --bandwidth fast
    expect_input_error 'option --bandwidth' '300mbit' '"fast"' || return 1
    after=$(ls -d "${TMPDIR:-/tmp}"/fsdpsim-validate-* 2>/dev/null | wc -l)
    [ "$before" -eq "$after" ] || fail "validate left a work folder"
}
add input t_validate_bad_bandwidth

# ---------------------------------------------------------------------------------------------
# group output: --json, --trace, --emit-schedule/--schedule, determinism

t_same_input_same_output() {
    fsd "${BASE[@]}" --json --trace "$W/t1.json"
    expect_rc 0 || return 1
    cp "$OUT" "$W/o1.json"
    fsd "${BASE[@]}" --json --trace "$W/t2.json"
    expect_rc 0 && expect_file "$W/t1.json" "$W/t2.json" || return 1
    cmp -s "$W/o1.json" "$OUT" || fail "two runs with the same input print different --json" || return 1
    cmp -s "$W/t1.json" "$W/t2.json" || fail "two runs with the same input write different traces"
}
add output t_same_input_same_output

t_json_keys() {
    fsd "${BASE[@]}" --json
    expect_rc 0 && expect_no_err || return 1
    pycheck '
import json, sys
d = json.load(open(sys.argv[1]))
keys = ["step_time_s", "tokens_per_s", "tflops_per_gpu", "mfu", "memory.peak_bytes",
        "memory.capacity_bytes", "memory.oom", "memory.breakdown.params", "memory.breakdown.grads",
        "memory.breakdown.optimizer", "memory.breakdown.activations", "memory.breakdown.comm_buffers",
        "communication.bytes_per_gpu", "communication.inter_node_bytes_per_gpu",
        "communication.exposed_s", "model.params", "fsdp.units", "warnings"]
for k in keys:
    v = d
    for part in k.split("."):
        if not isinstance(v, dict) or part not in v:
            sys.exit("missing key " + k)
        v = v[part]
    if k == "warnings":
        assert isinstance(v, list), "warnings is not a list"
    elif k == "memory.oom":
        assert isinstance(v, bool), "memory.oom is not a boolean"
    else:
        assert isinstance(v, (int, float)) and not isinstance(v, bool), k + " is not a number"
assert d["step_time_s"] > 0 and d["tokens_per_s"] > 0 and 0 < d["mfu"] < 1, "implausible numbers"
' "$OUT"
}
add output t_json_keys

t_json_image_model() {
    fsd -m "$SRC/models/resnet50.json" -t "$TOPO" --json
    expect_rc 0 && expect_no_err || return 1
    pycheck '
import json, sys
d = json.load(open(sys.argv[1]))
assert "samples_per_s" in d and d["samples_per_s"] > 0, "no samples_per_s"
assert "tokens_per_s" not in d, "an image model has tokens_per_s"
' "$OUT"
}
add output t_json_image_model

t_trace_format() {
    fsd "${BASE[@]}" --trace "$W/trace.json"
    expect_success 'step time' && expect_file "$W/trace.json" || return 1
    pycheck '
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["traceEvents"]
assert isinstance(ev, list) and ev, "traceEvents is empty or not a list"
xs = [e for e in ev if e.get("ph") == "X"]
assert xs, "no X (complete) events"
for e in xs:
    for k in ("pid", "tid", "ts", "dur"):
        assert k in e, "an X event has no %s: %r" % (k, e)
    assert e["dur"] >= 0, "negative dur: %r" % (e,)
threads = {m["args"]["name"] for m in ev if m.get("ph") == "M" and m.get("name") == "thread_name"}
for s in ("compute", "nccl:shard"):
    assert s in threads, "no thread_name metadata for stream %s (have %s)" % (s, sorted(threads))
' "$W/trace.json"
}
add output t_trace_format

t_schedule_round_trip() {
    fsd "${BASE[@]}" --json --emit-schedule "$W/s1.json"
    expect_rc 0 && expect_file "$W/s1.json" || return 1
    cp "$OUT" "$W/gen.json"
    fsd "${BASE[@]}" --json --schedule "$W/s1.json" --emit-schedule "$W/s2.json"
    expect_rc 0 && expect_no_err && expect_file "$W/s2.json" || return 1
    cmp -s "$W/gen.json" "$OUT" || fail "simulating the emitted schedule prints different --json" || return 1
    cmp -s "$W/s1.json" "$W/s2.json" || fail "re-emitting a read schedule gives a different file"
}
add output t_schedule_round_trip

t_schedule_round_trip_hybrid_ddp() {
    local s
    for s in hybrid ddp; do
        rm -f "$W/h1.json" "$W/h2.json"
        fsd "${BASE[@]}" --strategy $s --nodes 2 --json --emit-schedule "$W/h1.json"
        expect_rc 0 && expect_file "$W/h1.json" || return 1
        cp "$OUT" "$W/hgen.json"
        fsd "${BASE[@]}" --strategy $s --nodes 2 --json --schedule "$W/h1.json" --emit-schedule "$W/h2.json"
        expect_rc 0 && expect_file "$W/h2.json" || return 1
        cmp -s "$W/hgen.json" "$OUT" || fail "--strategy $s: simulating the emitted schedule prints different --json" || return 1
        cmp -s "$W/h1.json" "$W/h2.json" || fail "--strategy $s: re-emitted schedule differs" || return 1
    done
}
add output t_schedule_round_trip_hybrid_ddp

t_json_output_is_utf8_whatever_the_path() {
    # a model without a name is named after its file (less .json); a path is bytes, the output
    # is UTF-8
    local bad=$W/$'model-\xff'.json
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1])); del d["fsdpsim"]["name"]; json.dump(d, open(sys.argv[2], "w"))
' "$SRC/models/gpt2.json" "$bad" || return 1
    fsd -m "$bad" -t "$TOPO" --json --trace "$W/utf8-trace.json" --emit-schedule "$W/utf8-s.json"
    expect_rc 0 || return 1
    pycheck '
import json, sys
for f in sys.argv[1:]:
    json.loads(open(f, "rb").read().decode("utf-8"))  # strict: fails on invalid UTF-8
s = json.load(open(sys.argv[3]))
assert s["meta"]["model"] == "model-\ufffd", s["meta"]
' "$OUT" "$W/utf8-trace.json" "$W/utf8-s.json"
}
add output t_json_output_is_utf8_whatever_the_path

t_json_on_error_prints_nothing() {
    fsd "${BASE[@]}" --json --nodes 100000
    expect_input_error 'option --nodes'
}
add output t_json_on_error_prints_nothing

# ---------------------------------------------------------------------------------------------
# driver

selected=()
for c in "${CASES[@]}"; do
    for g in $GROUPS_WANTED; do
        if [ "${c%% *}" = "$g" ]; then selected+=("$c"); fi
    done
done
if [ ${#selected[@]} -eq 0 ]; then
    echo "no cases in groups: $GROUPS_WANTED" >&2
    exit 2
fi
if [ ! -x "$FSDPSIM" ]; then
    echo "not executable: $FSDPSIM" >&2
    exit 2
fi

echo "1..${#selected[@]}"
n=0 passed=0 failed=0
for c in "${selected[@]}"; do
    group=${c%% *} fn=${c#* }
    n=$((n + 1))
    : >"$OUT"
    : >"$ERR"
    if "$fn" >"$W/diag"; then
        echo "ok $n - $group/${fn#t_}"
        passed=$((passed + 1))
    else
        echo "not ok $n - $group/${fn#t_}"
        failed=$((failed + 1))
    fi
    cat "$W/diag" # diagnostics ("# ...") after the result line, as TAP has them
done
if [ -n "${CLI_SH_TAP_ONLY:-}" ]; then
    # under `meson test` (protocol tap): a line that is not TAP syntax would be flagged as an error
    echo "# $passed passed, $failed failed"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
