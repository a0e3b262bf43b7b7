#!/usr/bin/env bash
# fsdpsim validate before and around the real run (issue 19, point 5), without an emulated
# cluster: tools/cluster is replaced by a stub that records its calls and fails, so no network
# namespace is ever made. Checks: the estimate of the real run's duration is said, a run beyond
# --max-minutes stops before launching, with the remedies; progress lines name each phase; the
# temporary work folder is removed whatever happens, or kept with --keep and its place said.
#
# usage: validate_guard.sh FSDPSIM SOURCE_ROOT. Prints TAP; exit status 1 if any case failed.
set -u
FSDPSIM=$1
SRC=$2
case $FSDPSIM in /*) ;; *) FSDPSIM=$PWD/$FSDPSIM ;; esac
case $SRC in /*) ;; *) SRC=$PWD/$SRC ;; esac
W=$(mktemp -d "${TMPDIR:-/tmp}/fsdpsim-vguard.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/tools" "$W/tmp"
cat >"$W/tools/cluster" <<'STUB'
#!/bin/sh
echo called >>"$(dirname "$0")/calls"
echo "stub cluster: no namespaces here" >&2
exit 1
STUB
chmod +x "$W/tools/cluster"
n=0 failed=0
check() { # check NAME CONDITION-STATUS WHY
    n=$((n + 1))
    if [ "$2" = 0 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; echo "# $3"; failed=$((failed + 1)); fi
}
V=(validate --calibration "$SRC/topologies/hgx-a100-40gb.json" --nodes 2 --gpus-per-node 2)
cd "$W"
# GPT-2 XL at 1024 tokens on the calibrated A100 node: far more than 0.01 minutes
TMPDIR=$W/tmp "$FSDPSIM" "${V[@]}" -m gpt2-xl --max-minutes 0.01 >out 2>err
rc=$?
why="exit $rc; stderr: $(tail -c 600 err)"
[ $rc = 2 ] && grep -q "validate: simulating the job on the calibrated cluster" err &&
    grep -q "validate: the real run should take about [0-9]* s (2 warm-up + 5 timed iterations" err &&
    grep -q "fsdpsim: the real run would take about .*beyond the 0.01-minute limit (--max-minutes).*smaller model.*--go-on" err
check stops-beyond-the-limit $? "$why"
[ ! -e tools/calls ]
check nothing-launched-beyond-the-limit $? "the stub cluster was called"
[ -z "$(ls tmp)" ]
check temporary-folder-removed-when-stopped $? "left: $(ls tmp)"
# --go-on launches (the stub fails: exit 1), and the folder still goes
TMPDIR=$W/tmp "$FSDPSIM" "${V[@]}" -m gpt2-xl --max-minutes 0.01 --go-on >out 2>err
rc=$?
[ $rc = 1 ] && [ -e tools/calls ] && grep -q "validate: running 2 warm-up and 5 timed iterations for real" err &&
    grep -q "failed in" err
check go-on-launches $? "exit $rc; stderr: $(tail -c 600 err)"
[ -z "$(ls tmp)" ]
check temporary-folder-removed-after-failure $? "left: $(ls tmp)"
# --keep keeps it and says where
rm -f tools/calls
TMPDIR=$W/tmp "$FSDPSIM" "${V[@]}" -m gpt2 --keep >out 2>err
rc=$?
kept=$(sed -n 's/^validate: files kept in //p' err)
[ $rc = 1 ] && [ -n "$kept" ] && [ -f "$kept/schedule.json" ]
check keep-says-where $? "exit $rc; stderr: $(tail -c 600 err)"
echo "1..$n"
[ $failed = 0 ]
