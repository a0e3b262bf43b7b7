#!/usr/bin/env bash
# Validation on the emulated cluster (tools/cluster): real fsdprun runs against the simulation.
# usage: validate.sh FSDPSIM FSDPRUN SOURCE_ROOT BUILD_DIR calibrate|STRATEGY|NAME [OPTIONS]
#   calibrate: microbenchmarks -> BUILD_DIR/validation/topology.json (run first, by priority)
#   STRATEGY: fsdpsim validate on that topology; prints the errors, fails when the step-time error
#   of the median real iteration is 10 % or more. Skipped (77) where network namespaces cannot
#   be made (not root, or a container without CAP_SYS_ADMIN).
#   NAME OPTIONS: the same, named NAME, with fsdpsim validate OPTIONS (--strategy among them),
#   e.g. ddp_pp2 --strategy ddp --pp 2
set -euo pipefail
FSDPSIM=$(realpath "$1") FSDPRUN=$(realpath "$2") SRC=$(realpath "$3") BUILD=$(realpath "$4") WHAT=$5
shift 5
OPTIONS=("$@")
[ ${#OPTIONS[@]} -gt 0 ] || OPTIONS=(--strategy "$WHAT")
# the emulated cluster: 2 nodes x 2 ranks, node links shaped to 200 Mbit/s so that on a 2-core
# machine the network, not the CPUs, bounds the step (see README, "Validation")
NODES=2 RANKS=2 RATE=200mbit
DIR=$BUILD/validation
mkdir -p "$DIR"
probe=fsdpprobe$$
if [ "$(id -u)" -ne 0 ] || ! ip netns add "$probe" 2>/dev/null; then
    echo "skipped: needs root and network namespaces (ip netns add)"
    exit 77
fi
if ! { ip -n "$probe" link add probe0 type veth peer name probe1 &&
       tc -n "$probe" qdisc add dev probe0 root tbf rate 1mbit burst 64k latency 10ms; } 2>/dev/null; then
    ip netns del "$probe"
    echo "skipped: this kernel cannot make veth links shaped with tc tbf"
    exit 77
fi
ip netns del "$probe"
cd "$SRC"
if [ "$WHAT" = calibrate ]; then
    rm -f "$DIR/topology.json"
    tools/cluster --nodes $NODES --ranks-per-node $RANKS --bandwidth $RATE --timeout 200 -- \
        "$FSDPRUN" --calibrate "$DIR/topology.json" --name emulated-2x2-$RATE
    exit 0
fi
[ -f "$DIR/topology.json" ] || { echo "no calibration ($DIR/topology.json): run the 'calibrate' test first"; exit 1; }
"$FSDPSIM" validate --model tests/validation/tiny-gpt.json "${OPTIONS[@]}" --nodes $NODES --gpus-per-node $RANKS \
    --bandwidth $RATE --iters 5 --warmup 1 --calibration "$DIR/topology.json" --workdir "$DIR/$WHAT" --timeout 240 \
    --plot "$DIR/$WHAT-figures" --plot-format png --json >"$DIR/$WHAT.json"
python3 - "$DIR/$WHAT.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"{d['strategy']} tp {d['tp']} pp {d['pp']}: real {d['real']['step_time_s']*1e3:.1f} ms [{d['real']['step_time_min_s']*1e3:.1f}, "
      f"{d['real']['step_time_max_s']*1e3:.1f}], sim {d['sim']['step_time_s']*1e3:.1f} ms, error {100*d['error']:+.1f} %")
for k, v in d["op_kinds"].items():
    e = "-" if v["error"] is None else f"{100*v['error']:+.1f} %"
    print(f"  {k:15s} real {v['real_s']*1e3:9.2f} ms  sim {v['sim_s']*1e3:9.2f} ms  error {e}")
sys.exit(0 if abs(d["error"]) < 0.10 else 1)
PY
