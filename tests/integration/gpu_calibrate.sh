#!/usr/bin/env bash
# fsdpsim-gpu-calibrate: bad options exit 2 naming them; without a GPU one message and exit 3;
# with one, a --quick run whose kernels.json a topology can take (issue 12, item 7).
# usage: gpu_calibrate.sh CALIBRATE SOURCE_ROOT
set -uo pipefail
bin=$1 root=$2
[ -x "$bin" ] || { echo "fsdpsim-gpu-calibrate not built (no CUDA/cuBLAS): skipped"; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
msg=$("$bin" --out "$out" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q -- "--topology" <<<"$msg" || { echo "missing --topology: rc $rc: $msg"; exit 1; }
msg=$("$bin" -t "$root/topologies/nonexistent.json" --out "$out" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "nonexistent.json" <<<"$msg" || { echo "bad topology: rc $rc: $msg"; exit 1; }
msg=$("$bin" -t "$root/topologies/hgx-h100-ndr400.json" --out "$out" --quick 2>&1); rc=$?
if [ $rc -eq 3 ]; then
    grep -q "no CUDA device" <<<"$msg" || { echo "exit 3 without the no-device message: $msg"; exit 1; }
    echo "no GPU here: exit 3 with '$msg'"
    exit 0
fi
[ $rc -eq 0 ] || { echo "calibration failed: rc $rc: $msg"; exit 1; }
python3 -c "import json,sys; k=json.load(open(sys.argv[1]))['gpu']['kernels']; assert k['sm_count']['value'] > 0" \
    "$out/kernels.json" || exit 1
echo "$msg"
