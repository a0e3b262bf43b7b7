#!/usr/bin/env bash
# One tensor x pipeline parallel simulation under valgrind (issue 18): memcheck sees reads of freed
# memory that happen inside GLib (hash tables), which ASan misses because GLib is not instrumented.
# It caught the engine hashing a rendezvous key it had just freed, on every send/recv. ~1.5 s.
# usage: valgrind.sh FSDPSIM SOURCE_ROOT
set -uo pipefail
fsdpsim=$1 root=$2
if ! command -v valgrind >/dev/null; then
    echo "valgrind not installed (tools/bootstrap installs it): skipped"
    exit 77
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
valgrind -q --error-exitcode=9 --leak-check=no "$fsdpsim" --model "$root/models/gpt3-175b.json" \
    --nodes 16 --tp 4 --pp 8 --json >/dev/null 2>"$log"
rc=$?
if [ $rc -ne 0 ]; then
    cat "$log"
    echo "valgrind: fsdpsim --tp 4 --pp 8 exited $rc (9: memcheck found errors)"
    exit 1
fi
echo "valgrind: tp 4 x pp 8 on 64 GPUs clean"
