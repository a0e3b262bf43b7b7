#!/usr/bin/env bash
# Every nccl-tests table of ../shared/data/nccl-tests that `fsdpsim collective` can express, run
# through `fsdpsim collective --reference` on a topology file of that cluster (topologies/, every
# number sourced there), printing the error of every size and asserting, per table and size range,
# a bound on the worst |error| of busbw (+ = simulation too fast). The bounds are what the model
# meets today, not targets; README ("How far to trust it") says why each is what it is.
# Tables not here: p5 (B) (rows elided by the source).
# Usage: nccl_tables.sh FSDPSIM SOURCE_ROOT [TABLE-NAME-FILTER]
set -uo pipefail
FSD=$1
SRC=$2
ONLY=${3:-}
DATA=$SRC/../shared/data/nccl-tests
if [ ! -d "$DATA" ]; then
    echo "1..0 # SKIP no $DATA"
    exit 0
fi
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
n=0
failed=0

# name file section topology nodes gpus-per-node op gpus-per-thread extra-options, then bounds:
# "LO-HI:BOUND ..." with sizes in bytes (K, M, G suffixes), BOUND a fraction
table() {
    local name=$1 file=$2 section=$3 topo=$4 nodes=$5 gpn=$6 op=$7 per_thread=$8 extra=$9
    shift 9
    [ -n "$ONLY" ] && [[ $name != *$ONLY* ]] && return 0
    local args=(collective -t "$SRC/topologies/$topo.json" -n "$nodes" -g "$gpn" -o "$op"
        --gpus-per-thread "$per_thread" --reference "$DATA/$file")
    [ "$section" != - ] && args+=(--reference-section "$section")
    [ "$extra" != - ] && args+=($extra)
    n=$((n + 1))
    if ! "$FSD" "${args[@]}" >"$W/out" 2>"$W/err"; then
        echo "not ok $n - $name: fsdpsim exited $?"
        sed 's/^/# /' "$W/err"
        failed=1
        return
    fi
    if python3 - "$W/out" "$name" "$@" <<'PY'; then
import sys
out, name, bounds = sys.argv[1], sys.argv[2], sys.argv[3:]
def size(t):
    m = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    return float(t[:-1]) * m[t[-1]] if t[-1] in m else float(t)
rows = []
for l in open(out):
    f = l.split()
    if f and f[0].isdigit() and f[-1].endswith("%"):
        rows.append((int(f[0]), float(f[-1].rstrip("%")), f[13] + "/" + f[14], float(f[5]), float(f[15]), float(f[16])))
print(f"# {name}: size, simulated algo/proto, sim us, real us (out-of-place, in-place), busbw error")
for b, e, ap, s, ro, ri in rows:
    print(f"# {b:>12} {ap:>16} {s:10.2f} {ro:10.2f} {ri:10.2f} {e:+7.1f}%")
ok = True
for spec in bounds:
    rng, bound = spec.split(":")
    lo, hi = (size(x) for x in rng.split("-"))
    sel = [e for b, e, *_ in rows if lo <= b <= hi]
    if len(sel) < 2:
        print(f"# {name}: fewer than 2 rows in {rng}"); ok = False; continue
    worst = max(abs(e) for e in sel)
    mean = sum(abs(e) for e in sel) / len(sel)
    verdict = "ok" if worst <= 100 * float(bound) else "ABOVE BOUND"
    print(f"# {name} {rng}: worst |error| {worst:.1f}%, mean {mean:.1f}%, {min(sel):+.1f}..{max(sel):+.1f}% (bound {100*float(bound):.0f}%) {verdict}")
    ok = ok and worst <= 100 * float(bound)
sys.exit(0 if ok else 1)
PY
        echo "ok $n - $name"
    else
        echo "not ok $n - $name"
        failed=1
    fi
}

A100_OCI=a100-sxm4-40gb_1node-8gpu_and_2node-roce.txt
H100_NDR=h100_2node-16gpu_ndr400.txt
ABCI_A=a100-sxm4-40gb_1-16node-8gpu_hdr200x4-ib_allreduce_abci.txt
ABCI_V=v100-sxm2-16gb_1-32node-4gpu_edr100x2-ib_allreduce_abci.txt
P4DE=a100-sxm4-80gb_2node-16gpu_efa4x100_allreduce_p4de.txt
P5=h100-sxm_2node-16gpu_efa32x100_allreduce_p5.txt
CW=a100-sxm4-80gb_16node-128gpu_ib4nic_allreduce_plus-4node-sharp_coreweave.txt
ALPS=gh200_1-16node-4gpu_slingshot11x4_allreduce_alps.txt
KESTREL=h100-sxm_16node-64gpu-4pernode_slingshot11x2_allreduce-allgather_kestrel.txt
GCP=h100-sxm_2node-16gpu_tcpx4nic_allgather_gcp-a3high.txt
# --nccl-version: the release the table's source states (ABCI 2.8.4, H100 NDR 2.26.2, Alps 2.23.4,
# Kestrel 2.21.5 per its build script); it selects NCCL's LL128 rule of that release (coll.c
# coll_ll128_enabled), and for ABCI NCCL 2.8's latencies and per-channel caps (nccl28.c). The
# others do not state it (p4de/p5 list container defaults only) or force a Simple-only
# algorithm, and run under the newest rules.
# Size ranges: small (latency-bound), mid (protocol switches), large (to 128 MiB), plateau (from
# 256 MiB; the ABCI runs stop at 32 MiB). Each bound is the worst |error| the model has today,
# rounded up to 5 %: a regression guard, not a target. Where it is large, the reason (README, "How
# far to trust it"): fabrics NCCL's model does not describe (Slingshot and EFA through aws-ofi-nccl,
# GPUDirect-TCPX: latencies of 100 us to 1 ms, a collapse at 1-8 MiB on Slingshot), NIC speeds
# the sources do not give (CoreWeave, GCP), runs their sources call irregular (OCI RoCE), and the
# one-node A100 mid sizes that NCCL's model does not explain (issue 3).
table oci-a100-1node $A100_OCI "=== (A)" hgx-a100-40gb 1 8 allreduce 8 - 0-512K:0.85 1M-8M:1.15 16M-128M:0.45 256M-1T:0.1
table oci-a100-2node-roce $A100_OCI "=== (B)" hgx-a100-40gb 2 8 allreduce 1 - 0-512K:1.4 1M-8M:1.65 16M-128M:4.4 256M-1T:4.15
table h100-ndr400-2node $H100_NDR - hgx-h100-ndr400 2 8 allreduce 1 "--nccl-version 2.26.2" 0-512K:0.35 1M-8M:0.2 16M-128M:0.1 256M-1T:0.05
table abci-a100-1node $ABCI_A "=== 1 node" abci-a100 1 8 allreduce 1 "--nccl-version 2.8.4" 0-512K:2.25 1M-8M:1.2 16M-32M:0.3
table abci-a100-2node $ABCI_A "=== 2 node" abci-a100 2 8 allreduce 1 "--nccl-version 2.8.4" 0-512K:0.8 1M-8M:0.8 16M-32M:1.15
table abci-a100-4node $ABCI_A "=== 4 node" abci-a100 4 8 allreduce 1 "--nccl-version 2.8.4" 0-512K:0.7 1M-8M:0.5 16M-32M:0.9
table abci-a100-8node $ABCI_A "=== 8 node" abci-a100 8 8 allreduce 1 "--nccl-version 2.8.4" 0-512K:0.5 1M-8M:1.35 16M-32M:2.5
table abci-a100-16node $ABCI_A "=== 16 node" abci-a100 16 8 allreduce 1 "--nccl-version 2.8.4" 0-512K:0.5 1M-8M:0.5 16M-32M:0.85
table abci-v100-1node $ABCI_V "=== 1 node" abci-v100 1 4 allreduce 1 "--nccl-version 2.8.4" 0-512K:1.5 1M-8M:1.25 16M-32M:0.1
table abci-v100-2node $ABCI_V "=== 2 node" abci-v100 2 4 allreduce 1 "--nccl-version 2.8.4" 0-512K:0.65 1M-8M:0.1 16M-32M:0.2
table abci-v100-4node $ABCI_V "=== 4 node" abci-v100 4 4 allreduce 1 "--nccl-version 2.8.4" 0-512K:0.6 1M-8M:0.2 16M-32M:0.1
table abci-v100-8node $ABCI_V "=== 8 node" abci-v100 8 4 allreduce 1 "--nccl-version 2.8.4" 0-512K:1 1M-8M:0.25 16M-32M:0.05
table abci-v100-16node $ABCI_V "=== 16 node" abci-v100 16 4 allreduce 1 "--nccl-version 2.8.4" 0-512K:1.3 1M-8M:0.3 16M-32M:0.1
table abci-v100-32node $ABCI_V "=== 32 node" abci-v100 32 4 allreduce 1 "--nccl-version 2.8.4" 0-512K:1.7 1M-8M:0.25 16M-32M:0.3
table p4de-2node $P4DE - aws-p4de 2 8 allreduce 1 - 0-512K:6.7 1M-8M:2.45 16M-128M:1.45 256M-1T:0.15
# p5 (A) states no release and runs under the newest rules: from 2.28.9 NVLSTree's 20.9 us per
# tree level (14 before) leave 1-4 MiB to the tree, +104..+109 % where NVLSTree gave +30..+88 %; the
# run (2024) predates that release.
table p5-2node $P5 "=== (A)" aws-p5 2 8 allreduce 1 - 0-512K:2.1 1M-8M:1.1 16M-128M:0.7 256M-1T:0.2
table coreweave-a100-16node $CW "=== (A)" coreweave-a100 16 8 allreduce 1 - 0-512K:0.85 1M-8M:1 16M-128M:1.15 256M-1T:1.15
table alps-gh200-1node $ALPS "=== 1 node(s)" alps-gh200 1 4 allreduce 1 "--nccl-version 2.23.4" 0-512K:0.35 1M-8M:0.35 16M-128M:0.15 256M-1T:0.15
table alps-gh200-2node $ALPS "=== 2 node(s)" alps-gh200 2 4 allreduce 1 "--nccl-version 2.23.4" 0-512K:6.8 1M-8M:1.3 16M-128M:0.35 256M-1T:0.1
table alps-gh200-4node $ALPS "=== 4 node(s)" alps-gh200 4 4 allreduce 1 "--nccl-version 2.23.4" 0-512K:4.3 1M-8M:3.25 16M-128M:0.2 256M-1T:0.1
table alps-gh200-8node $ALPS "=== 8 node(s)" alps-gh200 8 4 allreduce 1 "--nccl-version 2.23.4" 0-512K:3 1M-8M:1.8 16M-128M:0.5 256M-1T:0.1
table alps-gh200-16node $ALPS "=== 16 node(s)" alps-gh200 16 4 allreduce 1 "--nccl-version 2.23.4" 0-512K:2.2 1M-8M:2.25 16M-128M:0.75 256M-1T:0.1
table kestrel-allreduce $KESTREL "=== (A)" kestrel-h100 16 4 allreduce 1 "--nccl-version 2.21.5" 0-512K:2.55 1M-8M:10 16M-128M:0.8 256M-1T:0.1
table kestrel-allgather $KESTREL "=== (B)" kestrel-h100 16 4 allgather 1 "--nccl-version 2.21.5" 0-512K:3.45 1M-8M:5.2 16M-128M:0.8 256M-1T:0.1
# SHARP/CollNet (network.sharp): the H100 run forced NCCL_ALGO=COLLNETCHAIN; CoreWeave (B) ran
# NCCL 2.12, whose only CollNet is CollNetDirect ("CollNet", tuning.cc v2.12.12), forced here
# for all sizes (NCCL 2.12's tuner may have taken ring or tree below some size; the table does not
# say); (C) ran NCCL 2.14.3 with NCCL_COLLNET_ENABLE=1 and NCCL's choice.
CWH=h100-sxm_12node-96gpu_ib8nic_sharp-collnetchain_allreduce_coreweave.txt
table coreweave-h100-12node-collnetchain $CWH - coreweave-h100 12 8 allreduce 1 "--nccl-algo collnetchain" 256M-1T:0.05
table coreweave-a100-4node-sharp-b $CW "=== (B)" coreweave-a100 4 8 allreduce 1 "--nccl-algo collnetdirect" 0-512K:1.55 1M-8M:1.55 16M-128M:0.5 256M-1T:0.15
table coreweave-a100-4node-sharp-c $CW "=== (C)" coreweave-a100 4 8 allreduce 1 --nccl-collnet 256M-1T:0.25
table gcp-a3-allgather $GCP - gcp-a3-high 2 8 allgather 1 "--nccl-algo ring --nccl-proto Simple" 1M-8M:11.45 16M-128M:3.55 256M-1T:0.35
echo "1..$n"
exit $failed
