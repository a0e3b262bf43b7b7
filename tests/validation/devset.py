#!/usr/bin/env python3
"""devset: fsdpsim against the end-to-end development set (issue 12).

Reads every row of ../shared/data/training/*.tsv (published training runs: llm-foundry MPT FSDP
benchmarks, BLOOM 3D sweeps on Jean Zay, Megatron-Core H100 scaling, single large runs,
FlashAttention GPT-3 on 8 x A100, Llama-3.1-8B on 8 x H200), turns each row the tool can express
into an `fsdpsim ... --json` command line, runs it, and compares the simulated step time with the
measured one. Rows it cannot express are counted and listed with the reason, never dropped
silently. The data are for checking, never for fitting: nothing here feeds a constant back into
the tool.

Usage
    python3 tests/validation/devset.py --fsdpsim build/src/fsdpsim --report
        per-row table and per-group summary, exit 0 (unless the harness itself fails)
    python3 tests/validation/devset.py --fsdpsim build/src/fsdpsim --assert
        the same, then exit 1 unless every group has MAE <= 12 % and no row is off by more than
        30 % (issue 12's targets; --mae-target, --row-target change them)
    --write-band FILE   also write the error band (format below)
    --out-dir DIR       where devset.tsv (per row, with the fsdpsim command of each row),
                        devset.txt (the full report) and devset-models/ (the generated
                        config.json files the commands name) go
                        [the build directory: the parent of the fsdpsim binary's directory]
    --data DIR          [../shared/data/training beside the repository]
    --only REGEX        rows whose id or group matches
    --exact-only        leave out rows that need an approximation (see below)
    -j N                parallel fsdpsim runs [2]
Exit status: 0 ok, 1 targets not met (--assert), 77 data directory missing (meson: skipped),
99 harness error (fsdpsim failed on a row, a file could not be read, a sanity check failed).

Error convention
    err = 1 - T_sim / T_real = (T_real - T_sim) / T_real, printed in %. "+" = the simulation is
    too fast (its step time is too short). |err| is DESIGN.md's |sim - real| / real of the step
    time. MAE of a group = mean |err| over its rows. Where a row gives only TFLOP/s per GPU, the
    measured step time is T_real = F / (TFLOP/s x 1e12), F = FLOPs per GPU per step in that
    row's own convention (file header), so the convention cancels: err = 1 - TFLOP/s_real /
    TFLOP/s_sim with TFLOP/s_sim = F / T_sim in the same convention.

Rows: exact, approximated, not expressible
    Each compared row carries its approximations in the table's notes column ("approx: ...");
    e.g. DeepSpeed ZeRO-1 / Megatron's distributed optimizer run as DDP (the same gradient bytes
    per step, optimizer state not sharded: memory verdicts differ), composer's DEFAULT FSDP mixed
    precision (fp32 parameters gathered, bf16 compute) run as bf16 parameters, MPT/BLOOM shapes as
    GPT-2 configs. Not expressible (listed with the reason): fp8, DeepSpeed optimizer-only CPU
    offload, unstated layouts or head counts, no measured time (OOM rows: the tool's own OOM
    verdict is printed beside them).

Groups
    The table groups rows by file x GPU (e.g. "foundry/H100"). The error band groups them by
    strategy family x GPU: family "fsdp" (FSDP without tp/pp), "ddp" (DDP or ZeRO-1 run as DDP,
    without tp/pp), "3d" (tp > 1 or pp > 1, any data parallelism).

Error band file (--write-band FILE), JSON:
    {
      "format": "fsdpsim-error-band", "version": 1,
      "quantity": "step_time_s",
      "ratio": "T_sim / T_real - 1 (negative: the simulation is too fast)",
      "quantiles": [0.1, 0.5, 0.9],
      "generated_by": "tests/validation/devset.py --write-band", "fsdpsim": "<--version>",
      "dataset": "shared/data/training", "rows": N,
      "groups": [
        {"family": "fsdp", "gpu_match": ["H100"], "rows": 64, "mae": 0.31,
         "ratio_q": [-0.45, -0.30, -0.12],
         "step_time_factor_low": 1.136, "step_time_factor_high": 1.818},
        ...
        {"family": "*", "gpu_match": [], ...}          (always last: every row)
      ]
    }
    Matching, for a prediction of family F on a GPU whose topology gpu.name is G: take the first
    group, in file order, whose family is F or "*" and whose gpu_match is empty or has a string
    that is a substring of G (case-sensitive; " H200" with its leading space, so that "GH200"
    does not match it). Groups come most specific first: (family, gpu), then (family, any GPU),
    then (*, any GPU); a (family, gpu) or (family, *) group needs at least 5 rows to be written.
    Band: real step time likely in [T_sim * step_time_factor_low, T_sim * step_time_factor_high]
    where factor_low = 1 / (1 + q90) and factor_high = 1 / (1 + q10) (10th / 90th percentiles of
    the ratio, linear interpolation between order statistics); tokens/s band = tokens_per_s /
    factor_high .. tokens_per_s / factor_low.
"""

import argparse
import concurrent.futures
import csv
import json
import math
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOPO = os.path.join(REPO, "topologies")

EXIT_TARGETS, EXIT_SKIP, EXIT_ERROR = 1, 77, 99
SANITY = []  # disagreements between a FLOP convention coded here and the source's own figures

# GPU column -> (topology file, group label, band GPU class)
GPUS = {
    "a100_40gb": ("mosaicml-a100-40gb.json", "A100-40GB", "A100"),
    "a100_80gb": ("mosaicml-a100-80gb.json", "A100-80GB", "A100"),
    "h100_80gb": ("h100-ndr400-cluster.json", "H100", "H100"),
    "jeanzay": ("jean-zay-a100-80gb.json", "A100-80GB", "A100"),
    "h200": ("hgx-h200.json", "H200", "H200"),
}
BAND_GPU_MATCH = {"A100": ["A100"], "H100": ["H100"], "H200": [" H200"]}


class Row:
    """One data row: either a run to simulate (args set) or a row not expressible (reason set)."""

    def __init__(self, file_key, index, group, config):
        self.id = "%s:%d" % (file_key, index)
        self.file_key = file_key
        self.group = group
        self.config = config
        self.reason = None      # not expressible / not comparable
        self.args = None        # fsdpsim arguments (without --json)
        # knobs the source leaves open, for a tuned run: (label, extra args) each simulated with
        # args, and the fastest that fits the GPU taken (chosen by the tool, not the measurement)
        self.variants = None
        self.model = None       # dict written as config.json
        self.gpu_class = None
        self.family = None
        self.approx = []        # approximations, shown per row
        self.notes = []         # facts that are not approximations
        self.metric = "step_s"  # what the row measured: step_s or tflops
        self.measured = None    # in the metric's unit
        self.flops_per_gpu_step = None  # for tflops rows: F in the row's convention
        self.expect_params = None       # published parameter count to check the shape against
        self.t_real = None
        self.t_sim = None
        self.sim = None         # fsdpsim's JSON

    def skip(self, reason):
        self.reason = reason
        return self

    @property
    def err(self):
        return 1.0 - self.t_sim / self.t_real


def read_tsv(path):
    """Returns (header comment lines, list of dicts) of a development-set file."""
    comments, lines = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                comments.append(line)
            elif line.strip():
                lines.append(line.rstrip("\n"))
    rows = list(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))
    header = rows[0]
    out = []
    for r in rows[1:]:
        if len(r) < len(header):
            r = r + [""] * (len(header) - len(r))
        out.append(dict(zip(header, r)))
    return comments, out


def na(v):
    return v is None or v.strip() in ("", "NA")


def gpt2_config(hidden, layers, heads, vocab, positions, ffn=None):
    """A Hugging Face GPT-2 config.json: learned positions, LayerNorm, GELU MLP, tied head."""
    # activation "gelu": one kernel, as MPT (nn.GELU), Megatron (bias-GELU fusion) and
    # FlashAttention's training (fused dense + GELU) run it; HF GPT-2's default gelu_new is 8
    cfg = {"model_type": "gpt2", "n_embd": hidden, "n_layer": layers, "n_head": heads,
           "vocab_size": vocab, "n_positions": positions, "tie_word_embeddings": True,
           "activation_function": "gelu"}
    if ffn is not None and ffn != 4 * hidden:
        cfg["n_inner"] = ffn
    return cfg


# ---------------------------------------------------------------------------------------------
# llm-foundry MPT benchmarks (PyTorch FSDP via composer)

def rows_foundry(path):
    _, data = read_tsv(path)
    out = []
    for i, d in enumerate(data, 1):
        gpu = d["gpu"]
        label = GPUS.get(gpu, (None, gpu, None))[1]
        cfg = "mpt-%s s%s %sx%s %s%s mb%s ga%s %s" % (
            d["model"], d["seq_len"], d["n_gpus"], label, d["sharding"].lower(),
            "+ckpt" if d["act_ckpt"] == "True" else "", d["micro_batch"], d["grad_accum"],
            d["fsdp_mp_mode"])
        r = Row("foundry", i, "foundry/" + label, cfg)
        out.append(r)
        if gpu not in GPUS:
            r.skip("GPU %s has no topology" % gpu)
            continue
        if d["precision"] == "amp_fp8":
            r.skip("fp8 (Transformer Engine amp_fp8): the tool has no fp8 compute")
            continue
        if d["act_cpu_offload"] == "True":
            r.skip("activation CPU offload: not modelled")
            continue
        n_gpus = int(d["n_gpus"])
        if n_gpus % 8:
            r.skip("%d GPUs is not whole 8-GPU nodes" % n_gpus)
            continue
        if na(d["step_time_s_derived"]):
            r.skip("no measured throughput")
            continue
        mb, ga, seq = int(d["micro_batch"]), int(d["grad_accum"]), int(d["seq_len"])
        if int(d["global_batch_seqs"]) != mb * ga * n_gpus:
            r.skip("global batch %s != micro_batch x grad_accum x GPUs" % d["global_batch_seqs"])
            continue
        r.gpu_class = GPUS[gpu][2]
        r.family = "fsdp"
        r.model = gpt2_config(int(d["d_model"]), int(d["n_layers"]), int(d["n_heads"]),
                              int(d["vocab"]), seq, int(d["ffn"]))
        sharding = {"FULL_SHARD": "full_shard", "SHARD_GRAD_OP": "shard_grad_op"}[d["sharding"]]
        r.args = ["-t", GPUS[gpu][0], "--nodes", str(n_gpus // 8), "--strategy", "fsdp",
                  "--sharding", sharding, "--seq-len", str(seq), "--micro-batch", str(mb),
                  "--grad-accum", str(ga), "--param-dtype", "bf16"]
        if d["act_ckpt"] == "True":
            r.args.append("--activation-checkpointing")
        if d["fsdp_mp_mode"] == "DEFAULT":
            # composer's get_mixed_precision: PURE = param/reduce/buffer in the precision;
            # DEFAULT = bf16 parameters, fp32 reduce in the 2023+ releases, but fp32 parameters
            # and bf16 reduce in earlier ones. The release of each run is not pinned.
            r.args += ["--reduce-dtype", "fp32"]
            r.approx.append("composer mixed_precision DEFAULT taken as bf16 parameters + fp32 "
                            "reduce (later composer; earlier releases: fp32 parameters + bf16 "
                            "reduce); release of the run not pinned")
        else:
            r.args += ["--reduce-dtype", "bf16"]
        r.notes.append("MPT shape as a GPT-2 config (GPT-2 has biases, MPT none)")
        if n_gpus > 8:
            r.approx.append("network not stated: 8 x NDR400 per node assumed" if gpu == "h100_80gb"
                            else "1600 Gb/s RoCE per node split as 16 x 100G (assumed)")
        r.args += ["--attention", "triton", "--optimizer-impl", "forloop"]
        r.notes.append("optimizer decoupled_adamw (the MPT yamls): composer's DecoupledAdamW "
                       "steps tensor by tensor, as --optimizer-impl forloop")
        r.notes.append("attn_impl triton (submit_benchmarks.py default): --attention triton "
                       "(FlashAttention-2's rates where the GPU has no Triton figures: H100)")
        r.expect_params = int(d["num_params"]) if not na(d["num_params"]) else None
        r.measured = float(d["step_time_s_derived"])
        r.t_real = r.measured
    return out


# ---------------------------------------------------------------------------------------------
# BLOOM Jean Zay sweeps (Megatron-DeepSpeed, TP x PP x DP, ZeRO-1)

BLOOM_VOCAB = 250880  # 250,680 padded to a multiple of 128 x tp (large_runs_misc.tsv)


def bloom_common(r, layers, hidden, heads, tp, pp, dp, mbs, gbs, zero, precision, rebalanced):
    """Fills r.args for a Megatron-DeepSpeed BLOOM run; returns r (or r.skip(...))."""
    if gbs % (mbs * dp):
        return r.skip("global batch %d is not a multiple of micro-batch x dp (%d)"
                      % (gbs, mbs * dp))
    if (tp * pp * dp) % 8:
        return r.skip("tp x pp x dp = %d is not whole 8-GPU nodes" % (tp * pp * dp))
    micro_batches = gbs // (mbs * dp)
    r.gpu_class = "A100"
    r.family = "3d" if tp > 1 or pp > 1 else "ddp"
    r.model = gpt2_config(hidden, layers, heads, BLOOM_VOCAB, 2048)
    r.args = ["-t", GPUS["jeanzay"][0], "--nodes", str(tp * pp * dp // 8), "--strategy", "ddp",
              "--tp", str(tp), "--pp", str(pp), "--micro-batch", str(mbs),
              "--micro-batches", str(micro_batches), "--seq-len", "2048",
              "--activation-checkpointing", "--no-flash-attention", "--optimizer-impl", "fused"]
    r.notes.append("Megatron-DeepSpeed's Adam is apex's FusedAdam: --optimizer-impl fused")
    if precision == "fp16":
        r.args += ["--param-dtype", "fp16", "--reduce-dtype", "fp16"]
    elif "BF16_Optimizer" in precision:
        r.args += ["--param-dtype", "bf16", "--reduce-dtype", "fp32"]
        r.approx.append("BF16_Optimizer's fp32 gradient accumulation taken as fp32 gradient "
                        "all-reduce")
    else:
        r.args += ["--param-dtype", "bf16", "--reduce-dtype", "bf16"]
        r.approx.append("bf16 before BF16_Optimizer: gradient all-reduce dtype not stated, bf16 "
                        "assumed")
    if zero == 1 and dp > 1:
        # ZeRO stage 1 (Rajbhandari et al.): gradients reduce-scattered, optimizer state and
        # master weights sharded, updated parameters all-gathered after the step (DeepSpeed does
        # not overlap that all-gather with the next forward)
        r.args.append("--use-distributed-optimizer")
        r.notes.append("ZeRO-1 as --use-distributed-optimizer (reduce-scatter, sharded optimizer, "
                       "all-gather after the step)")
    if pp > 1:
        # DeepSpeed PipelineModule partitions by 'type:transformer' (rebalanced runs:
        # 'type:transformer|embedding', the two embeddings counted as layers) with
        # partition_balanced: contiguous parts whose largest weight is minimal. Where the layers
        # do not divide evenly, which stages get the extra layer is not known: larger first.
        items = layers + 2 if rebalanced else layers
        q, rem = divmod(items, pp)
        part = [q + 1] * rem + [q] * (pp - rem)
        if rebalanced:
            part[0] -= 1
            part[-1] -= 1
            r.notes.append("pp partition type:transformer|embedding")
        if min(part) < 1:
            return r.skip("pipeline stage without a decoder layer")
        r.args += ["--pp-partition", ",".join(map(str, part))]
        if rem:
            r.approx.append("%d layers over %d stages: the stages with one layer more assumed "
                            "first" % (items, pp))
        r.approx.append("DeepSpeed pipeline as 1F1B")
    r.notes.append("BLOOM shape as a GPT-2 config: 2048 learned positions (+0.02 % params) in "
                   "place of ALiBi, no embedding LayerNorm")
    r.notes.append("unfused attention (2022 Megatron-DeepSpeed), full recompute")
    return r


def bloom_log_flops_per_seq(hidden, layers, seq=2048, vocab=BLOOM_VOCAB):
    """Megatron-DeepSpeed's logged FLOPs per sequence with full recompute (PR251 formula):
    96 s l h^2 (1 + s/6h + V/16lh)."""
    return 96 * seq * layers * hidden * hidden * (1 + seq / (6 * hidden)
                                                  + vocab / (16 * layers * hidden))


def rows_bloom(path):
    _, data = read_tsv(path)
    out = []
    for i, d in enumerate(data, 1):
        cfg = "bloom-%s L%s h%s a%s tp%s pp%s dp%s mbs%s gbs%s %s %s" % (
            d["size"], d["layers"], d["hidden"], d["heads"], d["tp"], d["pp"], d["dp"],
            d["mbs"], d["gbs"], d["precision"].split()[0], d["date"])
        r = Row("bloom", i, "bloom/A100-80GB", cfg)
        out.append(r)
        if na(d["heads"]):
            r.skip("head count not stated (unfused attention's score traffic depends on it)")
            continue
        tp, pp, dp, mbs, gbs = (int(d[k]) for k in ("tp", "pp", "dp", "mbs", "gbs"))
        if int(d["gpus"]) != tp * pp * dp:
            r.skip("tp x pp x dp != gpus")
            continue
        if na(d["sec_per_iter"]):
            r.skip("measured OOM, no time" if d["mem"] == "OOM" else "no time measured")
            r.notes.append("measured: %s" % (d["mem"] or "NA"))
            # still simulated, for the OOM verdict only
            bloom_common(r, int(d["layers"]), int(d["hidden"]), int(d["heads"]), tp, pp, dp,
                         mbs, gbs, int(d["zero_stage"]), d["precision"],
                         d["section"] == "Rebalancing layers")
            r.reason = r.reason or ("measured OOM, no time" if d["mem"] == "OOM"
                                    else "no time measured")
            continue
        bloom_common(r, int(d["layers"]), int(d["hidden"]), int(d["heads"]), tp, pp, dp, mbs,
                     gbs, int(d["zero_stage"]), d["precision"],
                     d["section"] == "Rebalancing layers")
        if r.args is None:
            continue
        # The row must agree with itself: its TFLOP/s x time x GPUs, divided by the log's FLOPs
        # per sequence, gives the global batch it ran. Pre-PR251 rows read 3.6 % low (the
        # formula change the file header documents).
        implied = (float(d["tflops_per_gpu"]) * 1e12 * float(d["sec_per_iter"]) * int(d["gpus"])
                   / bloom_log_flops_per_seq(int(d["hidden"]), int(d["layers"])))
        expected = 0.964 if d["flops_formula"].startswith("pre") else 1.0
        if abs(implied / gbs / expected - 1) > 0.05:
            r.args = None
            r.skip("inconsistent in the source: its TFLOP/s x time imply a global batch of %.0f, "
                   "the row says %d" % (implied / expected, gbs))
            continue
        if "swapped" in d["note"]:
            r.notes.append("source note: time/TFLOPs may be swapped, kept as printed")
        r.measured = float(d["sec_per_iter"])
        r.t_real = r.measured
    return out


# ---------------------------------------------------------------------------------------------
# large_runs_misc: BLOOM-176B production, OPT-175B, Megatron 2022

def rows_misc(path):
    _, data = read_tsv(path)
    out = []
    bloom_flops_per_seq = None
    for i, d in enumerate(data, 1):
        cfg = "%s %s gpus tp%s pp%s dp%s mbs%s gbs%s" % (
            d["model"], d["n_gpus"], d["tp"], d["pp"], d["dp"], d["micro_batch"],
            d["global_batch_seqs"] if d["global_batch_seqs"].isdigit() else "NA")
        r = Row("misc", i, "misc/A100-80GB", cfg)
        out.append(r)
        if d["source"] == "OPT":
            r.skip("OPT-175B: micro-batch, step time and FLOP convention not stated ('up to')")
            continue
        if d["source"] == "MEGATRON22":
            r.skip("Megatron 2022 MFU row: layout and shape not in the source read")
            continue
        tp, pp, dp, mbs, gbs = (int(d[k]) for k in ("tp", "pp", "dp", "micro_batch",
                                                    "global_batch_seqs"))
        bloom_common(r, int(d["n_layers"]), int(d["hidden"]), int(d["n_heads"]), tp, pp, dp,
                     mbs, gbs, 1, "bf16 (BF16_Optimizer)", True)
        r.approx.append("production pp partition assumed type:transformer|embedding")
        if not na(d["step_time_s"]):
            r.measured = float(d["step_time_s"])
            r.t_real = r.measured
            if bloom_flops_per_seq is None:
                # FLOPs per sequence in the log's own convention, from its time and TFLOP/s
                bloom_flops_per_seq = (float(d["tflops_per_gpu"]) * 1e12 * r.t_real
                                       * int(d["n_gpus"]) / gbs)
        elif bloom_flops_per_seq is not None and not na(d["tflops_per_gpu"]):
            r.metric = "tflops"
            r.measured = float(d["tflops_per_gpu"])
            r.flops_per_gpu_step = bloom_flops_per_seq * gbs / int(d["n_gpus"])
            r.t_real = r.flops_per_gpu_step / (r.measured * 1e12)
            r.notes.append("time from the log's TFLOP/s, FLOPs/sequence implied by row misc:1")
        else:
            r.skip("neither step time nor convertible TFLOP/s")
    return out


# ---------------------------------------------------------------------------------------------
# FlashAttention GPT-3 on one 8 x A100 80GB node

def rows_flash(path):
    _, data = read_tsv(path)
    out = []
    for i, d in enumerate(data, 1):
        cfg = "%s 8xA100-80GB %s mb%s ga%s" % (d["model"], d["parallel"].split()[0] +
                                              ("+zero1" if "ZeRO" in d["parallel"] else ""),
                                              d["micro_batch_per_gpu"], d["grad_accum"])
        r = Row("flash", i, "flash/A100-80GB", cfg)
        out.append(r)
        mb, ga = int(d["micro_batch_per_gpu"]), int(d["grad_accum"])
        if mb * ga * 8 != int(d["global_batch_seqs"]):
            r.skip("global batch != micro-batch x grad_accum x 8")
            continue
        r.gpu_class, r.family = "A100", "ddp"
        r.model = gpt2_config(int(d["d_model"]), int(d["n_layers"]), int(d["n_heads"]),
                              int(d["vocab"]), int(d["seq_len"]), int(d["ffn"]))
        r.args = ["-t", GPUS["a100_80gb"][0], "--nodes", "1", "--strategy", "ddp",
                  "--param-dtype", "bf16", "--seq-len", d["seq_len"], "--micro-batch", str(mb),
                  "--grad-accum", str(ga), "--optimizer-impl", "fused"]
        r.approx.append("optimizer taken as apex's FusedAdam (the flash-attention training "
                        "configs' adamw-apex)")
        if "ZeRO" in d["parallel"]:
            r.args += ["--use-distributed-optimizer", "--overlap-grad-reduce"]
            r.approx.append("DDP + ZeRO-1 sharded optimizer (its parameter broadcast after the "
                            "step) as --use-distributed-optimizer; DDP's bucketed overlap as "
                            "--overlap-grad-reduce (Megatron's 40M-parameter buckets, not DDP's "
                            "25 MB)")
        r.notes.append("FlashAttention v1, fused kernels; topology mosaicml-a100-80gb (one node: "
                       "GPU and NVLink only)")
        r.measured = float(d["step_time_s_derived"])
        r.t_real = r.measured
    return out


# ---------------------------------------------------------------------------------------------
# Megatron-Core H100 weak scaling

def megatron_flops(batch, seq, layers, hidden, ffn, vocab, heads, groups):
    """Megatron-LM num_floating_point_operations (megatron/training/training.py, r0.8 era):
    model FLOPs per step, attention counted non-causal, no recompute."""
    return (12 * batch * seq * layers * hidden * hidden
            * ((1 + groups / heads + seq / hidden) + ffn / hidden + vocab / (2 * layers * hidden)))


def megatron_tunings(per_replica, layers, pp):
    """Micro-batch size and pipeline schedule, which the source leaves unstated. NVIDIA's
    scaling runs are tuned for throughput, so every tuning Megatron-Core r0.8 accepts is
    simulated and the fastest that fits is taken: micro-batches of 1-8 sequences that divide the
    replica's batch; 1F1B, or the interleaved schedule with v model chunks per stage where v
    divides the stage's layers and the micro-batch count is a multiple of pp (r0.8's rule)."""
    out = []
    for mb in (1, 2, 4, 8):
        if per_replica % mb:
            continue
        m = per_replica // mb
        base = ["--micro-batch", str(mb), "--micro-batches", str(m)]
        out.append(("micro-batch %d%s" % (mb, ", 1F1B" if pp > 1 else ""), base))
        if pp == 1 or layers % pp or m % pp:
            continue
        for v in range(2, 9):
            if (layers // pp) % v == 0:
                out.append(("micro-batch %d, interleaved v=%d" % (mb, v), base + [
                    "--pp-schedule", "interleaved", "--virtual-stages", str(v)]))
    return out


def rows_megatron(path):
    _, data = read_tsv(path)
    out = []
    for i, d in enumerate(data, 1):
        cfg = "gpt-%s %s %sxH100 tp%s pp%s dp%s gbs%s" % (
            d["model_size"], d["study"], d["n_gpus"], d["tp"], d["pp"], d["dp"],
            d["global_batch_seqs"])
        r = Row("megatron", i, "megatron/H100", cfg)
        out.append(r)
        if na(d["tp"]) or na(d["hidden"]):
            r.skip("strong-scaling end point: layout (tp/pp/dp) and shape not stated")
            continue
        tp, pp, dp = int(d["tp"]), int(d["pp"]), int(d["dp"])
        h, L, a = int(d["hidden"]), int(d["n_layers"]), int(d["n_heads"])
        seq, gbs = int(d["seq_len"]), int(d["global_batch_seqs"])
        vocab, n = int(d["vocab"]), int(d["n_gpus"])
        if tp * pp * dp != n or n % 8 or gbs % dp:
            r.skip("layout does not divide")
            continue
        r.gpu_class, r.family = "H100", "3d" if tp > 1 or pp > 1 else "ddp"
        r.model = gpt2_config(h, L, a, vocab, seq)
        r.args = ["-t", GPUS["h100_80gb"][0], "--nodes", str(n // 8), "--strategy", "ddp",
                  "--tp", str(tp), "--pp", str(pp), "--seq-len", str(seq),
                  "--param-dtype", "bf16", "--use-distributed-optimizer", "--overlap-grad-reduce",
                  "--overlap-param-gather"]
        r.notes.append("distributed optimizer, --overlap-grad-reduce and --overlap-param-gather "
                       "as the source states")
        if tp > 1:
            r.args += ["--sequence-parallel", "--tp-comm-overlap"]
            r.notes.append("sequence parallel and --tp-comm-overlap, as the source states")
        r.approx.append("unstated, assumed: FFN 4h, MHA, bf16, no recompute, "
                        "learned positions, tied head, fp32 gradient reduce, 8 GPUs and "
                        "8 x NDR400 per node")
        r.variants = megatron_tunings(gbs // dp, L, pp)
        r.metric = "tflops"
        r.measured = float(d["tflops_per_gpu"])
        r.flops_per_gpu_step = megatron_flops(gbs, seq, L, h, 4 * h, vocab, a, a) / n
        r.t_real = r.flops_per_gpu_step / (r.measured * 1e12)
    return out


# ---------------------------------------------------------------------------------------------
# ml-engineering: Llama-3.1-8B on 8 x H200

LLAMA31_8B = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
              "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
              "vocab_size": 128256, "max_position_embeddings": 131072,
              "tie_word_embeddings": False}


def mleng_flops(seq, cfg=LLAMA31_8B, batch=1):
    """estimate_tflos() of stas00/ml-engineering insights/when-to-upgrade-gpus/benchmark.py:
    6 x dense params x tokens (embedding and head counted once) + causal attention
    6 x b x s^2 x head_dim x heads x layers, per GPU per step (micro-batch 1, no accumulation)."""
    h, f, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    a, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = h // a
    dense = (h * f * 3 + h * (2 * a * hd + 2 * kv * hd)) * L + cfg["vocab_size"] * h
    return 6 * dense * batch * seq + 6 * batch * seq * seq * hd * a * L


def rows_mleng(path):
    _, data = read_tsv(path)
    out = []
    for i, d in enumerate(data, 1):
        # The FLOP convention, checked against the source: its attention share of the FLOPs.
        if not na(d["attn_share_of_flops_pct"]):
            seq = int(d["seq_len"])
            hd = LLAMA31_8B["hidden_size"] // LLAMA31_8B["num_attention_heads"]
            attn = 6 * seq * seq * hd * LLAMA31_8B["num_attention_heads"]
            attn *= LLAMA31_8B["num_hidden_layers"]
            share = 100 * attn / mleng_flops(seq)
            if abs(share - float(d["attn_share_of_flops_pct"])) > 1:
                SANITY.append("mleng:%d: attention share %.1f %% by benchmark.py's formula, %s %% "
                              "printed" % (i, share, d["attn_share_of_flops_pct"]))
        cfg = "llama3.1-8b s%s 8xH200 zero%s ckpt=%s offload=%s torch%s" % (
            d["seq_len"], d["zero_stage"], d["act_ckpt"], d["cpu_offload_optimizer"], d["torch"])
        r = Row("mleng", i, "mleng/H200", cfg)
        out.append(r)
        if d["cpu_offload_optimizer"] == "yes":
            r.skip("DeepSpeed offload_optimizer (optimizer state and step on the CPU, parameters "
                   "on the GPU): the tool has FSDP CPUOffload(offload_params=True) only")
            continue
        seq = int(d["seq_len"])
        r.gpu_class, r.family = "H200", "fsdp"
        r.model = dict(LLAMA31_8B)
        r.args = ["-t", GPUS["h200"][0], "--nodes", "1", "--strategy", "fsdp",
                  "--sharding", "shard_grad_op", "--seq-len", str(seq), "--micro-batch", "1",
                  "--grad-accum", "1", "--param-dtype", "bf16", "--optimizer-impl", "fused"]
        r.notes.append("DeepSpeed ZeRO steps with its FusedAdam: --optimizer-impl fused")
        if d["act_ckpt"] == "yes":
            r.args.append("--activation-checkpointing")
        r.approx.append("DeepSpeed ZeRO-%s as FSDP %s" % (
            d["zero_stage"], "shard_grad_op" if d["zero_stage"] == "2" else "full_shard"))
        r.approx.append("grad accumulation not stated: 1")
        r.notes.append("Liger-Kernel fused ops, FlashAttention-3")
        r.metric = "tflops"
        r.measured = float(d["tflops_per_gpu"])
        r.flops_per_gpu_step = mleng_flops(seq)
        r.t_real = r.flops_per_gpu_step / (r.measured * 1e12)
    return out


FILES = [
    ("llm_foundry_mpt_benchmarks.tsv", rows_foundry),
    ("bloom_jeanzay_a100_3d_sweeps.tsv", rows_bloom),
    ("large_runs_misc.tsv", rows_misc),
    ("flash_attention_gpt3_8xa100.tsv", rows_flash),
    ("megatron_core_h100_scaling.tsv", rows_megatron),
    ("ml_engineering_h200_llama31_8b.tsv", rows_mleng),
]


# ---------------------------------------------------------------------------------------------

def run_args(fsdpsim, path, args):
    argv = [fsdpsim, "--model", path] + [
        os.path.join(TOPO, a) if a.endswith(".json") and not os.path.isabs(a) else a
        for a in args] + ["--json"]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=600)
    cmd = " ".join(["fsdpsim", "--model", path] + [
        "topologies/" + a if a.endswith(".json") else a for a in args])
    if p.returncode != 0:
        return cmd, None, "exit %d: %s" % (p.returncode, p.stderr.strip()[:300])
    return cmd, json.loads(p.stdout), None


def run_row(fsdpsim, tmp, r):
    path = os.path.join(tmp, r.id.replace(":", "_") + ".json")
    with open(path, "w") as f:
        json.dump(r.model, f)
    best, n_fit, refused = None, 0, []
    for label, extra in r.variants or [(None, [])]:
        cmd, sim, err = run_args(fsdpsim, path, r.args + extra)
        if err:
            if not r.variants:
                return r, cmd, err
            refused.append("%s (%s)" % (label, err))
            continue
        fits = not sim["memory"]["oom"]
        n_fit += fits
        key = (not fits, sim["step_time_s"])
        if best is None or key < best[0]:
            best = (key, label, cmd, sim)
    if best is None:
        return r, cmd, "every tuning refused: " + "; ".join(refused)
    _, label, cmd, r.sim = best
    r.t_sim = r.sim["step_time_s"]
    if label:
        r.approx.append("the tool's fastest of %d tunings (%d fit%s): %s"
                        % (len(r.variants), n_fit,
                           "" if n_fit else "; none does, so the fastest of all", label))
    if refused:
        r.notes.append("tunings fsdpsim refused: " + "; ".join(refused))
    return r, cmd, None


def quantile(values, q):
    v = sorted(values)
    if not v:
        return float("nan")
    pos = (len(v) - 1) * q
    lo, hi = int(math.floor(pos)), int(math.ceil(pos))
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def fmt_metric(r, value):
    return ("%.3f s" % value) if r.metric == "step_s" else ("%.1f TF/s" % value)


def predicted_metric(r):
    if r.metric == "step_s":
        return r.t_sim
    return r.flops_per_gpu_step / r.t_sim / 1e12


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fsdpsim", required=True)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(REPO), "shared", "data",
                                                   "training"))
    ap.add_argument("--out-dir")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--report", action="store_true", help="report only (default)")
    mode.add_argument("--assert", dest="check", action="store_true",
                      help="exit 1 unless the targets are met")
    ap.add_argument("--mae-target", type=float, default=12.0, help="per-group MAE, %%")
    ap.add_argument("--group-mae-target", action="append", default=[], metavar="GROUP=PCT",
                    help="a group's own MAE bound (repeatable), in place of --mae-target")
    ap.add_argument("--row-target", type=float, default=30.0, help="worst row, %%")
    ap.add_argument("--write-band")
    ap.add_argument("--only")
    ap.add_argument("--exact-only", action="store_true")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--worst", type=int, default=3, help="worst rows listed per group")
    opt = ap.parse_args()

    if not os.path.isdir(opt.data):
        print("devset: no development set at %s (skipped)" % opt.data)
        return EXIT_SKIP
    fsdpsim = os.path.abspath(opt.fsdpsim)
    out_dir = opt.out_dir or os.path.dirname(os.path.dirname(fsdpsim))
    os.makedirs(out_dir, exist_ok=True)

    rows = []
    for name, reader in FILES:
        path = os.path.join(opt.data, name)
        if not os.path.exists(path):
            print("devset: %s missing" % path, file=sys.stderr)
            return EXIT_ERROR
        rows += reader(path)
    if opt.only:
        rx = re.compile(opt.only)
        rows = [r for r in rows if rx.search(r.id) or rx.search(r.group) or rx.search(r.config)]
    if opt.exact_only:
        for r in rows:
            if r.reason is None and r.approx:
                r.reason = "approximated (--exact-only): " + "; ".join(r.approx)

    to_run = [r for r in rows if r.args is not None]
    failures, cmds = [], {}
    # The generated model files stay beside the report, so any row can be rerun by hand with
    # the command in the table (run from the repository root).
    models = os.path.join(out_dir, "devset-models")
    os.makedirs(models, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, opt.jobs)) as pool:
        for r, cmd, err in pool.map(lambda r: run_row(fsdpsim, models, r), to_run):
            cmds[r.id] = cmd
            if err:
                failures.append("%s (%s): %s\n    %s" % (r.id, r.config, err, cmd))

    compared = [r for r in rows if r.reason is None and r.t_sim is not None]
    skipped = [r for r in rows if r.reason is not None]

    # Sanity: the generated shapes must have the published parameter counts (llm-foundry
    # prints them); a wrong shape would make every comparison meaningless.
    sanity = list(SANITY)
    for r in compared:
        if r.expect_params:
            got = r.sim["model"]["params"]
            rel = got / r.expect_params - 1
            r.notes.append("params %+.2f %% vs published" % (100 * rel))
            if abs(rel) > 0.02:
                sanity.append("%s: %d parameters simulated, %d published (%+.1f %%)"
                              % (r.id, got, r.expect_params, 100 * rel))

    # ---- per-row table -------------------------------------------------------------------
    tsv = os.path.join(out_dir, "devset.tsv")
    with open(tsv, "w") as f:
        f.write("id\tgroup\tfamily\tconfig\tmetric\tmeasured\tpredicted\tT_real_s\tT_sim_s\t"
                "err_pct\tsim_oom\tapprox\tnotes\tcommand\n")
        for r in compared:
            f.write("\t".join([
                r.id, r.group, r.family, r.config, r.metric, "%.6g" % r.measured,
                "%.6g" % predicted_metric(r), "%.6g" % r.t_real, "%.6g" % r.t_sim,
                "%+.1f" % (100 * r.err), str(r.sim["memory"]["oom"]).lower(),
                "; ".join(r.approx), "; ".join(r.notes), cmds.get(r.id, "")]) + "\n")

    lines = []
    w = lines.append
    w("fsdpsim against the development set (%s)" % opt.data)
    w("err = 1 - T_sim/T_real; + = simulation too fast. Targets: MAE <= %.0f %% per group, "
      "no row beyond %.0f %%." % (opt.mae_target, opt.row_target))
    w("")
    w("%-14s %-62s %12s %12s %8s  %s" % ("row", "config", "measured", "predicted", "err",
                                        "flags"))
    for r in compared:
        flags = []
        if r.approx:
            flags.append("approx")
        if r.sim["memory"]["oom"]:
            flags.append("sim-OOM")
        w("%-14s %-62s %12s %12s %+7.1f%%  %s" % (
            r.id, r.config[:62], fmt_metric(r, r.measured), fmt_metric(r, predicted_metric(r)),
            100 * r.err, ",".join(flags)))
    w("")
    w("Approximations and notes per row:")
    for r in compared:
        if r.approx or r.notes:
            w("  %s: %s" % (r.id, "; ".join(["approx: " + a for a in r.approx] + r.notes)))

    # ---- groups --------------------------------------------------------------------------
    groups = {}
    for r in compared:
        groups.setdefault(r.group, []).append(r)
    summary = ["", "%-18s %5s %8s %8s %8s %14s  worst rows (err)" % (
        "group", "rows", "MAE", "mean", "max|e|", "exact: n, MAE")]
    failed = []
    for g, rs in groups.items():
        errs = [r.err for r in rs]
        mae = sum(abs(e) for e in errs) / len(errs)
        worst = sorted(rs, key=lambda r: -abs(r.err))
        exact = [abs(r.err) for r in rs if not r.approx]
        summary.append("%-18s %5d %7.1f%% %+7.1f%% %7.1f%% %14s  %s" % (
            g, len(rs), 100 * mae, 100 * sum(errs) / len(errs), 100 * abs(worst[0].err),
            "%d, %.1f%%" % (len(exact), 100 * sum(exact) / len(exact)) if exact else "0, -",
            ", ".join("%s %+.0f%%" % (r.id, 100 * r.err) for r in worst[:opt.worst])))
        target = dict((k, float(v)) for k, v in
                      (x.split("=", 1) for x in opt.group_mae_target)).get(g, opt.mae_target)
        if 100 * mae > target:
            failed.append("%s: MAE %.1f %% > %.0f %%" % (g, 100 * mae, target))
        bad = [r for r in rs if 100 * abs(r.err) > opt.row_target]
        if bad:
            failed.append("%s: %d of %d rows beyond %.0f %%" % (g, len(bad), len(rs),
                                                              opt.row_target))
    if compared:
        errs = [r.err for r in compared]
        summary.append("%-18s %5d %7.1f%% %+7.1f%% %7.1f%%" % (
            "all", len(errs), 100 * sum(abs(e) for e in errs) / len(errs),
            100 * sum(errs) / len(errs), 100 * max(abs(e) for e in errs)))
    summary.append("")
    summary.append("rows: %d in the files, %d compared (%d with approximations), %d not "
                   "compared" % (len(rows), len(compared), sum(1 for r in compared if r.approx),
                                 len(skipped)))
    oom_ran = [r.id for r in compared if r.sim["memory"]["oom"]]
    summary.append("memory: the tool says OOM for %d of the %d compared rows (which ran); for "
                   "%d of %d rows measured OOM it says OOM too"
                   % (len(oom_ran), len(compared),
                      sum(1 for r in skipped if r.sim and r.sim["memory"]["oom"]
                          and r.reason.startswith("measured OOM")),
                      sum(1 for r in skipped if r.reason.startswith("measured OOM"))))
    reasons = {}
    for r in skipped:
        reasons.setdefault(r.reason, []).append(r)
    for reason, rs in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
        summary.append("  %3d  %s" % (len(rs), reason))
    lines += summary
    lines.append("")
    lines.append("Rows not compared:")
    for r in skipped:
        extra = ""
        if r.sim is not None:
            extra = " [tool: %s]" % ("OOM" if r.sim["memory"]["oom"] else "fits")
        lines.append("  %-14s %-62s %s%s" % (r.id, r.config[:62], r.reason, extra))

    txt = os.path.join(out_dir, "devset.txt")
    with open(txt, "w") as f:
        f.write("\n".join(lines) + "\n")

    print("devset: per-row table in %s, full report in %s" % (tsv, txt))
    print("\n".join(summary))

    if opt.write_band:
        write_band(opt.write_band, compared, fsdpsim)
        print("devset: error band written to %s" % opt.write_band)

    if failures:
        print("devset: fsdpsim failed on %d rows:\n  %s" % (len(failures),
                                                          "\n  ".join(failures)))
        return EXIT_ERROR
    if sanity:
        print("devset: sanity checks failed (model shapes vs published parameter counts, FLOP "
              "conventions vs the sources' own figures):\n  "
              + "\n  ".join(sanity))
        return EXIT_ERROR
    if not compared:
        print("devset: no row compared")
        return EXIT_ERROR
    if failed:
        print("devset: targets not met:\n  " + "\n  ".join(failed))
        return EXIT_TARGETS if opt.check else 0
    print("devset: targets met")
    return 0


def write_band(path, compared, fsdpsim):
    version = subprocess.run([fsdpsim, "--version"], stdout=subprocess.PIPE, text=True).stdout
    qs = [0.1, 0.5, 0.9]

    def group(family, gpu, rs):
        ratios = [r.t_sim / r.t_real - 1 for r in rs]
        q = [quantile(ratios, x) for x in qs]
        return {"family": family, "gpu_match": BAND_GPU_MATCH.get(gpu, []), "rows": len(rs),
                "mae": round(sum(abs(r.err) for r in rs) / len(rs), 4),
                "ratio_q": [round(x, 4) for x in q],
                "step_time_factor_low": round(1 / (1 + q[2]), 4),
                "step_time_factor_high": round(1 / (1 + q[0]), 4)}

    out = []
    families = sorted({r.family for r in compared})
    for fam in families:
        for gpu in sorted({r.gpu_class for r in compared}):
            rs = [r for r in compared if r.family == fam and r.gpu_class == gpu]
            if len(rs) >= 5:
                out.append(group(fam, gpu, rs))
    for fam in families:
        rs = [r for r in compared if r.family == fam]
        if len(rs) >= 5:
            out.append(group(fam, None, rs))
    out.append(group("*", None, compared))
    band = {"format": "fsdpsim-error-band", "version": 1, "quantity": "step_time_s",
            "ratio": "T_sim / T_real - 1 (negative: the simulation is too fast)",
            "quantiles": qs, "generated_by": "tests/validation/devset.py --write-band",
            "fsdpsim": version.strip(), "dataset": "shared/data/training", "rows": len(compared),
            "groups": out}
    with open(path, "w") as f:
        json.dump(band, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ValueError, KeyError, subprocess.SubprocessError) as e:
        print("devset: harness error: %r" % e, file=sys.stderr)
        sys.exit(EXIT_ERROR)
