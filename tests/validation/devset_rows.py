"""devset_rows: the development set's rows, as devset.py reads them (one reader per file of
../shared/data/training): each row's fsdpsim arguments, model, measured figure and the
approximations the source leaves to us. Split from devset.py, which runs and reports them."""

import csv
import json
import os

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

# Rows whose measured figure disagrees with the source's own neighbours run the same way, so
# that no mechanism of the tool can bring them and their neighbours right together. By row index;
# shown with the row (devset.txt), compared as before. What each note cites is in the TSV or in
# mosaicml/llm-foundry scripts/train/benchmarking/sweep.sh @ef350d9 (the A100 sweep).
FOUNDRY_ROW_NOTES = {
    179: "measured 15555 tok/s/GPU against 18647 and 19001 for 128 and 64 GPUs (rows 177, 178), "
         "all three from one sweep line (sweep.sh @ef350d9 line 119: 1b.yaml -g 32 64 128 "
         "--microbatch_size 10 --accum 1); the simulated per-GPU rates of the three differ by "
         "1.5 %: a slow run or an effect of the run the source does not show",
    120: "measured 29765 tok/s/GPU at s1024 mb48, slower than 32434 at s2048 mb24 (row 119, the "
         "same 49152 tokens per micro-batch and half the attention work per token); the "
         "corresponding sweep lines run 24 % faster at s1024 than at s2048 on H100 (rows 68, "
         "69) and 11 % on A100 40GB (rows 192, 193)",
    121: "measured 29446 tok/s/GPU at s512 mb96, slower than 32434 at s2048 mb24 (row 119, the "
         "same 49152 tokens per micro-batch) and than the A100 40GB's 34938 at s512 mb48 (row "
         "194); the corresponding sweep line runs 33 % faster at s512 than at s2048 on H100 "
         "(rows 68, 70)",
}


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
        if d["precision"] == "amp_fp8":
            # composer's amp_fp8: Transformer Engine's fp8_autocast with DelayedScaling, whose
            # default fp8_format is HYBRID, around bf16 autocast
            r.args += ["--fp8-format", "hybrid"]
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
                       "(the H100 files' Triton figures are estimated from the A100's ratio)")
        if i in FOUNDRY_ROW_NOTES:
            r.notes.append("source inconsistent with its neighbours: " + FOUNDRY_ROW_NOTES[i])
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
    # the release NCCL logs in the BLOOM-176B environment on these nodes (bigscience
    # experiments/bandwidth/all_reduce_bench-a100-n4.txt, 2022-01-28): what PyTorch 1.10/1.11's
    # cu113 wheels bundle; the sweeps ran in February 2022 in that environment's era
    r.args += ["--nccl-version", "2.10.3"]
    r.approx.append("NCCL 2.10.3, as logged in the BLOOM environment in January 2022")
    if precision == "fp16":
        r.args += ["--param-dtype", "fp16", "--reduce-dtype", "fp16"]
    elif "BF16_Optimizer" in precision:
        r.args += ["--param-dtype", "bf16", "--reduce-dtype", "fp32"]
        if tp > 1 and pp > 1:
            r.notes.append("DeepSpeed's BF16_Optimizer: fp32 gradients, reduced in fp32 and "
                           "filled after every micro-batch's backward (--reduce-dtype fp32 with "
                           "--pp-scatter-gather deepspeed)")
        else:
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
        if tp > 1:
            # DeepSpeed's PipelineEngine partitions what it sends over the model-parallel group
            # and all-gathers it on receipt, and keeps only its part of a stage's output until
            # the backward gathers it again (runtime/pipe/engine.py, v0.6.0: is_pipe_partitioned
            # = is_grad_partitioned = is_model_parallel; PartitionedTensor.full())
            r.args += ["--pp-scatter-gather", "deepspeed"]
            r.notes.append("DeepSpeed's pipeline sends 1/tp of each boundary per TP rank, "
                           "all-gathers it, and gathers its own output again before the "
                           "backward: --pp-scatter-gather deepspeed")
    r.notes.append("BLOOM shape as a GPT-2 config: 2048 learned positions (+0.02 % params) in "
                   "place of ALiBi, no embedding LayerNorm")
    r.notes.append("unfused attention (2022 Megatron-DeepSpeed), full recompute")
    return r


# CUDA_LAUNCH_BLOCKING=1 (--cuda-launch-blocking) in BLOOM's environment: the prequel's section
# "dealing with JZ hanging on the large model" (chronicles-prequel.md, placed after the 02-17
# "Best TFLOPs" tables and before the 02-20 "Choosing the fastest 3D Topology" sweeps, all in the
# file's first commit 57f4e9b of 2022-02-21) sets it and the section "Hanging Issue" keeps it "for
# a time being"; tr11-176B-ml.slurm, from its first version (ddfe9cc, 2022-03-02) to the stored
# HEAD: "do not remove or the training will hang". Rows from 02-20 on ran with it (the dates are
# the tables' own; a row of 02-17 is before it). The authors' A/B (200B, tp 8 x pp 10, GBS 512):
# 91.04 against 97.20 TFLOP/s on 80 GPUs, 84.59 against 84.44 and 90.29 against 90.25 on 160.
BLOOM_LAUNCH_BLOCKING_FROM = "02-20"


def bloom_launch_blocking(r, why):
    """Adds --cuda-launch-blocking to a BLOOM row that ran with CUDA_LAUNCH_BLOCKING=1."""
    if r.args is None:
        return r
    r.args.append("--cuda-launch-blocking")
    r.notes.append("CUDA_LAUNCH_BLOCKING=1 (%s): --cuda-launch-blocking" % why)
    return r


def bloom_log_flops_per_seq(hidden, layers, seq=2048, vocab=BLOOM_VOCAB):
    """Megatron-DeepSpeed's logged FLOPs per sequence with full recompute (PR251 formula):
    96 s l h^2 (1 + s/6h + V/16lh)."""
    return 96 * seq * layers * hidden * hidden * (1 + seq / (6 * hidden)
                                                  + vocab / (16 * layers * hidden))


def bloom_single_node_gbs(d):
    """The global batch of a single-node row of the prequel's 'Max possible TFLOPs' table, whose
    header says GBS=512 while its rows print 2048: 512 where the row's own TFLOP/s x time agree
    with it (PR251 formula), else None (the row is taken as printed)."""
    if d["section"] != "48 node contenders" or d["gpus"] != "8" or na(d["sec_per_iter"]):
        return None
    implied = (float(d["tflops_per_gpu"]) * 1e12 * float(d["sec_per_iter"]) * int(d["gpus"])
               / bloom_log_flops_per_seq(int(d["hidden"]), int(d["layers"])))
    return 512 if abs(implied / 512 - 1) <= 0.05 else None


def rows_bloom(path):
    _, data = read_tsv(path)
    out = []
    for i, d in enumerate(data, 1):
        header_gbs = bloom_single_node_gbs(d)
        if header_gbs:
            d = dict(d, gbs=str(header_gbs))
        cfg = "bloom-%s L%s h%s a%s tp%s pp%s dp%s mbs%s gbs%s %s %s" % (
            d["size"], d["layers"], d["hidden"], d["heads"], d["tp"], d["pp"], d["dp"],
            d["mbs"], d["gbs"], d["precision"].split()[0], d["date"])
        r = Row("bloom", i, "bloom/A100-80GB", cfg)
        if header_gbs:
            r.approx.append("single-node 'Max possible TFLOPs' table: its header says GBS=512, "
                            "its rows 2048; the row's own TFLOP/s x time imply 512, taken")
        blocking = d["date"] >= BLOOM_LAUNCH_BLOCKING_FROM
        if not na(d["heads"]) and int(d["hidden"]) % (8 * int(d["heads"])):
            r.approx.append("head dim %s not a multiple of 8 fp16 elements: the attention bmms "
                            "run on misaligned operands, modelled at the H100's measured 0.69 of "
                            "the aligned rate (1-1.5 %% of these steps); the prequel measured such "
                            "head counts 20-40 %% slower, far more than that explains"
                            % (int(d["hidden"]) / int(d["heads"])))
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
            if blocking:
                bloom_launch_blocking(r, "the JZ-hang workaround from the 02-20 sweeps on")
            r.reason = r.reason or ("measured OOM, no time" if d["mem"] == "OOM"
                                    else "no time measured")
            continue
        bloom_common(r, int(d["layers"]), int(d["hidden"]), int(d["heads"]), tp, pp, dp, mbs,
                     gbs, int(d["zero_stage"]), d["precision"],
                     d["section"] == "Rebalancing layers")
        if r.args is None:
            continue
        if blocking:
            bloom_launch_blocking(r, "the JZ-hang workaround from the 02-20 sweeps on")
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
        if d["model"] == "BLOOM-176B":
            bloom_launch_blocking(r, "tr11-176B-ml.slurm: \"do not remove or the training will "
                                     "hang\"")
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
                  "--grad-accum", str(ga), "--optimizer-impl", "fused", "--attention", "flash1"]
        r.approx.append("optimizer taken as apex's FusedAdam (the flash-attention training "
                        "configs' adamw-apex)")
        if "ZeRO" in d["parallel"]:
            r.args += ["--use-distributed-optimizer", "--overlap-grad-reduce"]
            r.approx.append("DDP + ZeRO-1 sharded optimizer (its parameter broadcast after the "
                            "step) as --use-distributed-optimizer; DDP's bucketed overlap as "
                            "--overlap-grad-reduce (Megatron's 40M-parameter buckets, not DDP's "
                            "25 MB)")
        r.notes.append("FlashAttention v1 (--attention flash1), fused kernels; topology "
                       "mosaicml-a100-80gb (one node: GPU and NVLink only)")
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
        seq = int(d["seq_len"])
        if seq > 16384:
            # Measured with --offload-optimizer cpu (2026-12-02): 32k -27 %, 64k -50 %, 128k
            # -68 %, 192k -73 %, 256k -75 % (the simulation too slow), while its CPU step is 1.35 s
            # in every row (0.5 % of the 256k step): the miss is attention's.
            r.skip("FlashAttention-3 at %d tokens, attention %s %% of the FLOPs: the tool's "
                   "flash attention is FlashAttention-2's, fitted on kernel data of 16k tokens at "
                   "most (the FA3 figure there is forward only); 27-75 %% too slow on these rows"
                   % (seq, d["attn_share_of_flops_pct"]))
            continue
        r.gpu_class, r.family = "H200", "fsdp"
        r.model = dict(LLAMA31_8B)
        sharding = "shard_grad_op" if d["zero_stage"] == "2" else "full_shard"
        r.args = ["-t", GPUS["h200"][0], "--nodes", "1", "--strategy", "fsdp",
                  "--sharding", sharding, "--seq-len", str(seq), "--micro-batch", "1",
                  "--grad-accum", "1", "--param-dtype", "bf16"]
        if d["cpu_offload_optimizer"] == "yes":
            # DeepSpeed's offload_optimizer {device: cpu}: DeepSpeedCPUAdam on the host, the
            # bf16 shards on the GPU (src/strategy/fsdp_offload.c)
            r.args += ["--offload-optimizer", "cpu"]
            r.notes.append("DeepSpeed offload_optimizer: --offload-optimizer cpu (DeepSpeedCPUAdam, "
                           "one thread per rank as the launcher sets OMP_NUM_THREADS)")
            r.approx.append("hgx-h200.json states no host figures: PCIe 25 GB/s, 200 GB/s host "
                            "memory, cores unknown, 22.3 GB/s per CPU thread (the tool's defaults)")
            if d["note"].startswith("torch-version"):
                r.approx.append("torch %s %s: the tool has no torch-version knob, compared as the "
                                "same configuration as mleng:1" % (d["torch"], d["cuda"]))
        else:
            r.args += ["--optimizer-impl", "fused"]
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


# ---------------------------------------------------------------------------------------------
# Published runs from outside ../shared/data/training (tests/validation/published_runs.tsv, whose
# header gives each row's source): the layout as fsdpsim arguments, the model a repository file or
# a Megatron-LM GPT shape, the step time as published

PUBLISHED = os.path.join(HERE, "published_runs.tsv")


def rows_published(path):
    _, data = read_tsv(path)
    out = []
    for d in data:
        key, idx = d["id"].rsplit(":", 1)
        r = Row(key, int(idx), d["group"], d["config"])
        if d["model"].startswith("gpt:"):
            hidden, layers, heads = (int(x) for x in d["model"][4:].split(","))
            r.model = gpt2_config(hidden, layers, heads, 51200, 2048)
        elif d["model"].startswith("llama:"):
            f = d["model"][6:].split(",")
            hidden, layers, heads, kv, ffn, vocab, positions = (int(x) for x in f[:7])
            r.model = {"model_type": "llama", "architectures": ["LlamaForCausalLM"],
                       "hidden_size": hidden, "num_hidden_layers": layers,
                       "num_attention_heads": heads, "num_key_value_heads": kv,
                       "intermediate_size": ffn, "vocab_size": vocab,
                       "max_position_embeddings": positions, "rope_theta": float(f[7]),
                       "hidden_act": "silu", "rms_norm_eps": 1e-5, "tie_word_embeddings": False}
        else:
            with open(os.path.join(REPO, d["model"]), encoding="utf-8") as f:
                r.model = json.load(f)
        r.args = d["args"].split()
        if d["variants"]:
            r.variants = [(label, extra.split()) for label, extra in
                          (v.split("=", 1) for v in d["variants"].split("|"))]
        r.approx = [a for a in d["approx"].split("; ") if a]
        r.family = d["family"]
        r.gpu_class = d["gpu"]
        r.measured = float(d["step_s"])
        r.t_real = r.measured
        if d["not_compared"]:
            r.args = None
            r.skip(d["not_compared"])
        out.append(r)
    return apply_loss_impl(out)


# ---------------------------------------------------------------------------------------------
# The loss each source's runs computed (fsdpsim --loss-impl): what the cross-entropy keeps for
# backward differs by 2-14 bytes per logit between implementations (src/model/model_hf.c
# model_hf_loss), which at 50k-250k logits per token is often more than a layer's activations.
# By the row id's prefix; rows without a vocabulary (ResNet-50) take none.

LOSS_IMPL = {
    "foundry": ("fused", "loss: llm-foundry's MPT default loss_fn fused_crossentropy, flash-attn's "
                "CrossEntropyLoss(ignore_index=-100) (inplace_backward False): --loss-impl fused"),
    "flash": ("fused-inplace", "loss: the FlashAttention training configs' loss_fn "
              "(experiment/pile/base.yaml: CrossEntropyLossApex, inplace_backward True): "
              "--loss-impl fused-inplace"),
    "bloom": ("megatron", "loss: Megatron-DeepSpeed's vocab_parallel_cross_entropy: "
              "--loss-impl megatron"),
    "misc": ("megatron", "loss: Megatron-DeepSpeed's vocab_parallel_cross_entropy: "
             "--loss-impl megatron"),
    "megatron": ("megatron", "loss: Megatron-Core's vocab_parallel_cross_entropy: "
                 "--loss-impl megatron"),
    "megatron-lm": ("megatron", "loss: Megatron-LM's vocab_parallel_cross_entropy: "
                    "--loss-impl megatron"),
    "sc21": ("megatron", "loss: Megatron-LM's vocab_parallel_cross_entropy: --loss-impl megatron"),
    "sc21z": ("megatron", "loss: Megatron-DeepSpeed's vocab_parallel_cross_entropy: "
              "--loss-impl megatron"),
    "mleng": ("liger", "loss: Liger-Kernel's fused linear cross-entropy "
              "(apply_liger_kernel_to_llama): --loss-impl liger"),
    "tt": ("torchtitan", "loss: torchtitan's F.cross_entropy on the model's .float() output, "
           "deleted before backward (train.py `del pred`): --loss-impl torchtitan"),
}


def apply_loss_impl(rows):
    for r in rows:
        impl = LOSS_IMPL.get(r.file_key)
        if impl and r.args is not None:
            r.args = r.args + ["--loss-impl", impl[0]]
            r.notes.append(impl[1])
    return rows


def with_loss_impl(reader):
    return lambda path: apply_loss_impl(reader(path))


FILES = [
    ("llm_foundry_mpt_benchmarks.tsv", with_loss_impl(rows_foundry)),
    ("bloom_jeanzay_a100_3d_sweeps.tsv", with_loss_impl(rows_bloom)),
    ("large_runs_misc.tsv", with_loss_impl(rows_misc)),
    ("flash_attention_gpt3_8xa100.tsv", with_loss_impl(rows_flash)),
    ("megatron_core_h100_scaling.tsv", with_loss_impl(rows_megatron)),
    ("ml_engineering_h200_llama31_8b.tsv", with_loss_impl(rows_mleng)),
]
