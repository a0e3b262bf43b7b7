#!/usr/bin/env bash
# Re-creates the example reports checked in under reports/ (run from anywhere, after building
# ./build). PNG only, to keep the repository small; each folder's .gp scripts draw SVG and PDF
# too when their `formats` line says so.
set -euo pipefail
cd "$(dirname "$0")/.."
fsdpsim=build/src/fsdpsim

# ResNet-50 as the workshop trains it: FSDP hybrid sharding on 2 nodes x 4 A100s of JUWELS
# Booster, compared with DDP and full sharding on the same 8 GPUs
rm -rf reports/resnet50-2x4
$fsdpsim scale -m models/resnet50.json --nodes 2 --strategy hybrid,ddp,full \
    --report reports/resnet50-2x4 --plot-format png >/dev/null
$fsdpsim -m models/resnet50.json --nodes 2 --strategy hybrid \
    --report reports/resnet50-2x4/hybrid-step --plot-format png >/dev/null

# a GPT model (GPT-3 XL shape, 1.3 B parameters) from 1 to 64 JUWELS Booster nodes
rm -rf reports/gpt-1-64-nodes
$fsdpsim scale -m models/gpt.json --nodes 1,2,4,8,16,32,64 --strategy ddp,full,hybrid \
    --report reports/gpt-1-64-nodes --plot-format png >/dev/null
