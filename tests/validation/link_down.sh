#!/usr/bin/env bash
# A network partition on the emulated cluster (issue 18): node 1's link is taken down 3 s into an
# fsdprun job (tools/cluster --link-down). The job must end within fsdprun's --timeout (5 s) plus
# a few seconds, with rank 0 naming the op it waits in and the rank it waits for, and leave no
# process and no Open MPI session file behind. Before, rank 0 aborted after its timeout but the
# abort could not reach the cut-off node: the job stayed up until an outer timeout (173 s).
# usage: link_down.sh FSDPSIM FSDPRUN SOURCE_ROOT. Skipped (77) without network namespaces.
set -uo pipefail
FSDPSIM=$(realpath "$1") FSDPRUN=$(realpath "$2") SRC=$(realpath "$3")
probe=fsdpprobe$$
if [ "$(id -u)" -ne 0 ] || ! ip netns add "$probe" 2>/dev/null; then
    echo "skipped: needs root and network namespaces (ip netns add)"
    exit 77
fi
ip netns del "$probe"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$SRC"
"$FSDPSIM" -m tests/validation/tiny-gpt.json -t topologies/juwels-booster.json --nodes 2 \
    --gpus-per-node 1 --strategy ddp --emit-schedule "$W/s.json" >/dev/null || exit 1
mkdir "$W/tmp"
start=$(date +%s)
TMPDIR=$W/tmp timeout 120 tools/cluster --nodes 2 --ranks-per-node 1 --bandwidth 1gbit \
    --link-down 1@3 --timeout 100 -- "$FSDPRUN" --schedule "$W/s.json" \
    --topology topologies/juwels-booster.json --iters 100000 --warmup 0 --timeout 5 \
    >"$W/out" 2>"$W/err"
rc=$? took=$(( $(date +%s) - start ))
# the ranks of this job (their command line names its schedule), given a few seconds to go
for _ in $(seq 10); do
    left=$(pgrep -f -- "--schedule $W/s.json" | wc -l)
    [ "$left" -eq 0 ] && break
    sleep 0.5
done
files=$(find "$W/tmp" -mindepth 1 | wc -l)
named=$(grep -c 'rank 0: no progress .*waits in op .*waiting for rank 1' "$W/err")
echo "1..4"
ok() { if [ "$2" = 0 ]; then echo "ok $1"; else echo "not ok $1"; fail=1; fi; }
fail=0
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $took -le 20 ]; ok "1 - the job ends in ${took} s (link down at 3 s, --timeout 5; rc $rc)" $?
[ "$named" -ge 1 ]; ok "2 - rank 0 names the op it waits in and rank 1" $?
[ "$left" -eq 0 ]; ok "3 - no fsdprun process left ($left)" $?
[ "$files" -eq 0 ]; ok "4 - no Open MPI session file left ($files)" $?
[ $fail -eq 0 ] || grep -v '^\[' "$W/err" | head -20 | sed 's/^/# /'
exit $fail
