#!/usr/bin/env bash
# fsdpsim search (issue 14): exhaustive and ASHA agree on the best configuration; --shard's
# union is the one-process set of records; a search cut short and resumed gives the same file
# (sorted); an over-constrained search prints its pruning reasons and exits 0; the analytic
# bounds stay below the simulation; the global batch sets each layout's grad-accum.
#
# usage: search.sh FSDPSIM SOURCE_ROOT. Prints TAP.
set -u
FSDPSIM=$1
SRC=$2
case $FSDPSIM in /*) ;; *) FSDPSIM=$PWD/$FSDPSIM ;; esac
cd "$SRC" || exit 1
W=$(mktemp -d "${TMPDIR:-/tmp}/fsdpsim-search.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
n=0 failed=0
check() { # check NAME COMMAND...: ok when the command succeeds
    local name=$1
    shift
    n=$((n + 1))
    if "$@" >"$W/check.out" 2>&1; then
        echo "ok $n - $name"
    else
        echo "not ok $n - $name"
        sed 's/^/# /' "$W/check.out" | head -20
        failed=$((failed + 1))
    fi
}
# the best record's key of a JSON Lines file (lowest objective, then key)
best() {
    python3 -c '
import json, sys
ok = [json.loads(l) for l in open(sys.argv[1])]
ok = [r for r in ok if r["status"] == "ok"]
print(min(ok, key=lambda r: (r["objective"], r["key"]))["key"] if ok else "none")' "$1"
}
SPACE=(-m models/llama2-7b.json --vary nodes=1..8:x2 --vary strategy=full,grad_op,hybrid,ddp
       --vary micro-batch=1,2 --vary activation-checkpointing=on,off)

"$FSDPSIM" search "${SPACE[@]}" --out "$W/ex.jsonl" >"$W/ex.txt" 2>&1
"$FSDPSIM" search "${SPACE[@]}" --method asha --out "$W/asha.jsonl" >"$W/asha.txt" 2>&1
check "exhaustive and asha agree on the best (step time): $(best "$W/ex.jsonl")" \
    test "$(best "$W/ex.jsonl")" = "$(best "$W/asha.jsonl")" -a "$(best "$W/ex.jsonl")" != none
check "asha simulates fewer points than exhaustive" python3 -c '
import json, sys
full = [sum(json.loads(l)["stage"] == "full" for l in open(f)) for f in sys.argv[1:]]
print(full); assert full[1] < full[0]' "$W/ex.jsonl" "$W/asha.jsonl"
T=(--tokens 2e10 --objective node-hours --global-batch 256)
"$FSDPSIM" search "${SPACE[@]}" "${T[@]}" --out "$W/ex2.jsonl" >/dev/null 2>&1
"$FSDPSIM" search "${SPACE[@]}" "${T[@]}" --method asha --out "$W/asha2.jsonl" >/dev/null 2>&1
check "exhaustive and asha agree on the best (node-hours to 2e10 tokens): $(best "$W/ex2.jsonl")" \
    test "$(best "$W/ex2.jsonl")" = "$(best "$W/asha2.jsonl")" -a "$(best "$W/ex2.jsonl")" != none
# GPT-3 175B with pipelines (the bubble in the bound), tensor parallelism and both strategies
"$FSDPSIM" search -m models/gpt3-175b.json --nodes 128 --vary tp=2,4 --vary pp=4,8,16 \
    --vary strategy=ddp,full --vary activation-checkpointing=on --vary pp-schedule=1f1b,gpipe \
    --global-batch 1536 --out "$W/gpt3.jsonl" >/dev/null 2>&1
# Qwen1.5-MoE under expert parallelism: SHARD_GRAD_OP gathers 1/ep of the experts (the bound
# counted all of them and pruned the best, ep=4 grad_op, as "does not fit"). At 3584 tokens:
# since the experts' outputs kept by the routing-weight product are counted, ep=4 grad_op at
# the model's 4096 needs 41.3 GiB of the 40 (38.3 here)
"$FSDPSIM" search -m models/qwen1.5-moe-a2.7b.json --nodes 8 --seq-len 3584 --vary ep=1,4 \
    --vary strategy=grad_op,full --out "$W/moe.jsonl" >/dev/null 2>&1
check "expert parallelism: grad_op with ep=4 fits and wins" test "$(best "$W/moe.jsonl")" = \
    "ep=4 strategy=grad_op"
check "the bounds stay below the simulation (memory and objective)" python3 -c '
import json, sys
n = 0
for f in sys.argv[1:]:
    for l in open(f):
        r = json.loads(l)
        if r.get("stage") != "full" or "figures" not in r:
            continue
        n += 1
        assert r["memory_bound_bytes"] <= r["figures"]["memory"]["peak_bytes"], r["key"]
        if r["status"] == "ok":
            assert r["lower_bound"] <= r["objective"], r["key"]
assert n > 30, n' "$W/ex.jsonl" "$W/ex2.jsonl" "$W/gpt3.jsonl" "$W/moe.jsonl"
check "the global batch fixes tokens per step (256 x 4096); time = the time to train (steps x step + checkpoints and restarts), x nodes = node-hours" python3 -c '
import json, math, sys
n = 0
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["status"] != "ok":
        continue
    f = r["figures"]; n += 1
    tokens = f["tokens_per_s"] * f["step_time_s"]
    assert abs(tokens - 256 * 4096) < 1e-6 * tokens, (r["key"], tokens)
    steps = math.ceil(2e10 / (256 * 4096))
    assert f["train"]["steps"] == steps, (r["key"], f["train"]["steps"])
    assert r["time_to_tokens_s"] == f["train"]["time_s"], r["key"]
    assert r["time_to_tokens_s"] > steps * f["step_time_s"], r["key"]  # + saves, init
    assert abs(r["objective"] - r["nodes"] * r["time_to_tokens_s"] / 3600) < 1e-9 * r["objective"]
assert n > 5, n' "$W/ex2.jsonl"

# search and the simulation reckon the time to train alike: one point, with saves every 100
# steps and node failures (Young/Daly's rework and restarts), on JUWELS Booster (its file system)
TT=(-m models/llama2-7b.json --micro-batch 1 --grad-accum 8 --save-every 100 --failure-rate 0.001)
"$FSDPSIM" search "${TT[@]}" --vary nodes=8 --tokens 1T --objective time --out "$W/tt.jsonl" \
    >/dev/null 2>&1
"$FSDPSIM" "${TT[@]}" --nodes 8 --tokens 1T --json >"$W/tt.json" 2>/dev/null
check "search's time to 1T tokens is fsdpsim --tokens 1T's (saves, failures, restarts, jobs)" python3 -c '
import json, sys
r = json.loads(open(sys.argv[1]).readline())
t = json.load(open(sys.argv[2]))["train"]
assert r["status"] == "ok", r.get("reason")
assert r["time_to_tokens_s"] == t["time_s"] == r["objective"], (r["time_to_tokens_s"], t["time_s"])
assert t["failure_loss_s"] > 0 and t["jobs"] > 1 and t["save_every_steps"] == 100, t
assert t["time_s"] > t["compute_s"] + t["failure_loss_s"], t' "$W/tt.jsonl" "$W/tt.json"
# a machine without a file system section: the time is steps x step, as before
"$FSDPSIM" search -m models/llama2-7b.json -t topologies/jupiter-booster.json --vary nodes=8 \
    --tokens 1T --objective time --out "$W/tt2.jsonl" >/dev/null 2>&1
check "without the machine's file system, search's time to tokens is steps x step" python3 -c '
import json, math, sys
r = json.loads(open(sys.argv[1]).readline())
f = r["figures"]
assert r["status"] == "ok" and "train" not in f, r
steps = math.ceil(1e12 / (f["tokens_per_s"] * f["step_time_s"]))
assert abs(r["time_to_tokens_s"] - steps * f["step_time_s"]) <= 1e-9 * r["time_to_tokens_s"]' "$W/tt2.jsonl"

check "in-process records equal separate fsdpsim --json runs (no state leaks between points)" python3 -c '
import json, subprocess, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
recs = [r for r in recs if "figures" in r][::3]
assert len(recs) >= 8, len(recs)
for r in recs:
    args = ["--%s" % k if v == "on" else "--%s=%s" % (k, v) for k, v in r["options"].items() if v != "off"]
    out = subprocess.run([sys.argv[2], "-m", "models/llama2-7b.json"] + args + ["--json"],
                         capture_output=True, text=True, check=True)
    d = json.loads(out.stdout)
    assert d["step_time_s"] == r["figures"]["step_time_s"], r["key"]
    assert d["memory"]["peak_bytes"] == r["figures"]["memory"]["peak_bytes"], r["key"]' \
    "$W/ex.jsonl" "$FSDPSIM"

# --shard: two "array tasks", merged, give the one-process records
"$FSDPSIM" search "${SPACE[@]}" --shard 0/2 --out "$W/sh.jsonl" >/dev/null 2>&1
"$FSDPSIM" search "${SPACE[@]}" --shard 1/2 --out "$W/sh.jsonl" >/dev/null 2>&1
"$FSDPSIM" search --merge "$W/sh.jsonl.0-of-2" "$W/sh.jsonl.1-of-2" --out "$W/merged.jsonl" \
    >"$W/merged.txt" 2>&1
check "--shard 0/2 and 1/2 are disjoint and not empty" python3 -c '
import sys
a, b = (set(open(f)) for f in sys.argv[1:])
assert a and b and not (a & b), (len(a), len(b))' "$W/sh.jsonl.0-of-2" "$W/sh.jsonl.1-of-2"
check "--shard's merged records equal the one-process records" \
    cmp <(sort "$W/ex.jsonl") <(sort "$W/merged.jsonl")
check "--merge prints the same table" cmp "$W/ex.txt" "$W/merged.txt"

# mpirun -np 3: the ranks take points from a shared queue, rank 0 merges (no MPI library linked:
# the launcher's environment names the rank and the job)
if command -v mpirun >/dev/null; then
    mkdir -p "$W/ompi"
    MPI=(env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=vader,self
         TMPDIR="$W/ompi" timeout 120 mpirun --oversubscribe --bind-to none -np 3)
    "${MPI[@]}" "$FSDPSIM" search "${SPACE[@]}" --out "$W/mpi.jsonl" >"$W/mpi.txt" 2>"$W/mpi.err"
    check "mpirun -np 3 gives the one-process records" cmp <(sort "$W/ex.jsonl") <(sort "$W/mpi.jsonl")
    check "mpirun -np 3 prints the one-process table, once" cmp "$W/ex.txt" "$W/mpi.txt"
    check "mpirun -np 3: every rank took points, none twice" python3 -c '
import sys
parts = [open(f).read().splitlines() for f in sys.argv[1:]]
assert all(parts), [len(p) for p in parts]
assert sum(map(len, parts)) == len(set(l for p in parts for l in p))' "$W"/mpi.jsonl.*-of-3
    # a launched search cut short (one rank's file halved, a line cut), resumed by a new job
    f=$W/mpi.jsonl.0-of-3
    head -n $(($(wc -l <"$f") / 2)) "$f" >"$f.cut" && printf '{"key": "nodes=' >>"$f.cut"
    mv "$f.cut" "$f"
    "${MPI[@]}" "$FSDPSIM" search "${SPACE[@]}" --resume --out "$W/mpi.jsonl" >/dev/null 2>&1
    check "mpirun -np 3 --resume after a cut gives the same records" \
        cmp <(sort "$W/ex.jsonl") <(sort "$W/mpi.jsonl")
    "${MPI[@]}" "$FSDPSIM" search "${SPACE[@]}" --method asha --out "$W/mpi-asha.jsonl" >/dev/null 2>&1
    check "mpirun -np 3 --method asha finds the exhaustive best" \
        test "$(best "$W/ex.jsonl")" = "$(best "$W/mpi-asha.jsonl")"
else
    n=$((n + 1)); echo "ok $n # SKIP no mpirun"
fi

# a search killed half-way: half of the records and a line cut short, then --resume
lines=$(wc -l <"$W/ex.jsonl")
head -n $((lines / 2)) "$W/ex.jsonl" >"$W/res.jsonl"
sed -n "$((lines / 2 + 1))p" "$W/ex.jsonl" | head -c 100 >>"$W/res.jsonl"
"$FSDPSIM" search "${SPACE[@]}" --resume --out "$W/res.jsonl" >"$W/res.txt" 2>&1
check "a search resumed after a kill gives the same file (sorted)" \
    cmp <(sort "$W/ex.jsonl") <(sort "$W/res.jsonl")
check "a resumed search prints the same table" cmp "$W/ex.txt" "$W/res.txt"
"$FSDPSIM" search "${SPACE[@]}" --resume --out "$W/res.jsonl" >/dev/null 2>&1
check "resuming a finished search adds nothing" test "$(wc -l <"$W/res.jsonl")" -eq "$lines"

# over-constrained: nothing fits 2 GPUs with 39 GiB free: exit 0, no result, the reasons
"$FSDPSIM" search "${SPACE[@]}" --constraint gpus\<=8 --constraint fits:headroom=39GiB \
    >"$W/none.txt" 2>&1
rc=$?
check "an over-constrained search exits 0" test $rc -eq 0
check "... and says why, with counts" grep -qxE \
    'fsdpsim search: 64 configurations, 0 simulated, 0 pass, 64 pruned: 32 (over the GPU budget|does not fit \(analytic bound\)), 32 (over the GPU budget|does not fit \(analytic bound\))' \
    "$W/none.txt"
check "... and that nothing satisfies the constraints" \
    grep -q "no configuration satisfies the constraints" "$W/none.txt"
check "the table says why each runner-up loses" grep -qE '^2 .*; step \+[0-9]+ ms' "$W/ex.txt"
check "the table shows the step once when it is the objective" \
    grep -qxE 'rank +step +memory +MFU  options; why a runner-up loses to the best' "$W/ex.txt"
"$FSDPSIM" search "${SPACE[@]}" --method random --samples 10 --seed 3 --out "$W/rnd.jsonl" >/dev/null 2>&1
check "--method random evaluates --samples points, all of the space" python3 -c '
import json, sys
ex = {json.loads(l)["key"]: l for l in open(sys.argv[1])}
rnd = [l for l in open(sys.argv[2])]
assert len(rnd) == 10 and all(ex[json.loads(l)["key"]] == l for l in rnd)' "$W/ex.jsonl" "$W/rnd.jsonl"
# --plot: the Pareto figure and the TP x PP heat map, their data true to the records
"$FSDPSIM" search -m models/gpt3-175b.json --nodes 128 --vary tp=1,2,4 --vary pp=1,2,16 \
    --vary strategy=full --vary activation-checkpointing=on --global-batch 1536 \
    --out "$W/plot.jsonl" --plot "$W/fig" --plot-format png >/dev/null 2>&1
check "--plot writes the figures' data and scripts" test -s "$W/fig/search_pareto.dat" -a \
    -s "$W/fig/search_pareto.gp" -a -s "$W/fig/search_heatmap.dat" -a -s "$W/fig/search_heatmap.gp"
if command -v gnuplot >/dev/null; then
    check "--plot draws them" test -s "$W/fig/search_pareto.png" -a -s "$W/fig/search_heatmap.png"
fi
check "each heat-map cell is the best step time of its tp x pp, as in the records" python3 -c '
import json, sys
best = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["status"] == "ok":
        k = (r["options"]["tp"], r["options"]["pp"])
        best[k] = min(best.get(k, 1e300), r["objective"])
tps, pps = ["1", "2", "4"], ["1", "2", "16"]
cells = {}
for l in open(sys.argv[2]):
    if l.strip() and not l.startswith("#"):
        x, y, v = l.split()
        cells[(tps[int(x)], pps[int(y)])] = float(v)
assert best and cells.keys() == best.keys(), (cells, best)
for k in best:
    assert abs(cells[k] - best[k]) <= 1e-5 * best[k], (k, cells[k], best[k])' \
    "$W/plot.jsonl" "$W/fig/search_heatmap.dat"

# --space FILE: the same dimensions as JSON give the same records
cat >"$W/space.json" <<'JSON'
{"vary": {"nodes": "1..8:x2", "strategy": ["full", "grad_op", "hybrid", "ddp"],
          "micro-batch": [1, 2], "activation-checkpointing": [true, false]}}
JSON
"$FSDPSIM" search -m models/llama2-7b.json --space "$W/space.json" --out "$W/space.jsonl" >/dev/null 2>&1
check "--space FILE gives the --vary records" cmp <(sort "$W/ex.jsonl") <(sort "$W/space.jsonl")

# --csv: one row per record, the best first, the varied options as columns
"$FSDPSIM" search "${SPACE[@]}" --csv "$W/ex.csv" >/dev/null 2>&1
check "--csv has every record, best first, with its options" python3 -c '
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
recs = [json.loads(l) for l in open(sys.argv[2])]
assert len(rows) == len(recs), (len(rows), len(recs))
best = min((r for r in recs if r["status"] == "ok"), key=lambda r: (r["objective"], r["key"]))
assert rows[0]["key"] == best["key"] and abs(float(rows[0]["objective"]) - best["objective"]) <= 1e-8 * best["objective"]
assert all(rows[0]["--" + k] == v for k, v in best["options"].items())' "$W/ex.csv" "$W/ex.jsonl"

# --emit-jobs: the top 2 as sbatch scripts; each job's "Reproduce" command gives its step time
"$FSDPSIM" search "${SPACE[@]}" --top 2 --emit-jobs "$W/jobs" --out "$W/jobs.jsonl" >/dev/null 2>&1
check "--emit-jobs writes job-K and validate-K for the top 2" test -s "$W/jobs/job-1.sbatch" -a \
    -s "$W/jobs/job-2.sbatch" -a -s "$W/jobs/validate-2.sbatch" -a ! -e "$W/jobs/job-3.sbatch"
check "a job's settings and command are its configuration's" python3 -c '
import json, re, shlex, subprocess, sys
recs = sorted((json.loads(l) for l in open(sys.argv[1])), key=lambda r: (r.get("objective", 1e300), r["key"]))
for k, r in enumerate(recs[:2], 1):
    job = open("%s/job-%d.sbatch" % (sys.argv[2], k)).read()
    cmd = shlex.split(re.search(r"^# Reproduce: (.*)$", job, re.M).group(1))
    out = json.loads(subprocess.run([sys.argv[3]] + cmd[1:] + ["--json"], capture_output=True, text=True, check=True).stdout)
    assert out["step_time_s"] == r["figures"]["step_time_s"], (k, out["step_time_s"])
    assert "#SBATCH --nodes=%d\n" % r["nodes"] in job
    sharding = {"full": "FULL_SHARD", "grad_op": "SHARD_GRAD_OP", "hybrid": "HYBRID_SHARD"}
    s = r["options"]["strategy"]
    assert ("ShardingStrategy." + sharding[s]) in job if s in sharding else "DDP(model" in job, s' \
    "$W/jobs.jsonl" "$W/jobs" "$FSDPSIM"

echo "1..$n"
[ "$failed" -eq 0 ]
