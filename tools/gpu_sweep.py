#!/usr/bin/env python3
"""GPU microbenchmarks for the kernel model (issue 12, item 7), with PyTorch on the GPU at hand.

Writes, into OUTDIR, tables that `fsdpsim kernels --table FILE [--fit]` reads:
  gemm.tsv       torch.mm / torch.bmm TFLOP/s by shape: a grid of m, n, k in 256..8192 and
                 transformer shapes (tokens x {3h, h, ffn}), bf16 and fp32 on TF32 tensor cores
  attention.tsv  scaled_dot_product_attention TFLOP/s with the FlashAttention-2 backend (and
                 cuDNN's where PyTorch has it), forward and forward+backward, in the
                 FlashAttention benchmark's layout (batch 16384/seq, hidden 2048)
  misc.json      HBM copy and triad bandwidth, host time per eager launch, GPU time per kernel of
                 a CUDA graph of tiny kernels, and a sustained GEMM (clock, power, TFLOP/s over
                 time)
Timing: CUDA events around as many back-to-back calls as fill 20 ms (at least one), after 3
warm-up calls; random normal inputs. Cost: about two minutes on an H100/H200.

usage: python3 tools/gpu_sweep.py OUTDIR [--quick]
"""
import json
import math
import os
import sys
import time

import torch

OUT = sys.argv[1] if len(sys.argv) > 1 else "."
QUICK = "--quick" in sys.argv
os.makedirs(OUT, exist_ok=True)
DEV = torch.device("cuda")
NAME = torch.cuda.get_device_name()
LOG = open(os.path.join(OUT, "log.txt"), "w")


def log(*a):
    text = " ".join(str(x) for x in a)
    print(text, flush=True)
    LOG.write(text + "\n")
    LOG.flush()


def bench(fn, min_s=0.02, warm=3):
    """Seconds per call of fn on the GPU (CUDA events)."""
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    n = 1
    while True:
        start.record()
        for _ in range(n):
            fn()
        end.record()
        end.synchronize()
        t = start.elapsed_time(end) / 1e3
        if t >= min_s or n >= 1 << 16:
            return t / n
        n = max(n * 2, int(math.ceil(n * min_s / max(t, 1e-6) * 1.2)))


def header():
    log("device:", NAME, "| torch", torch.__version__, "| cuda", torch.version.cuda,
        "| cublas via torch.mm")
    try:
        import pynvml
        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        log("clocks (MHz): sm max", pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_SM),
            "mem max", pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_MEM),
            "| power limit (W):", pynvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000)
    except Exception as e:  # the sweep does not need it
        log("pynvml:", e)


def gemm_rows():
    """(b, m, n, k) shapes: the grid, transformer layers' GEMMs, skinny ones."""
    sizes = [256, 512, 1024, 2048, 4096, 8192] if not QUICK else [512, 4096]
    shapes = [(1, m, n, k) for m in sizes for n in sizes for k in sizes]
    # transformer layers (hidden h, FFN f): QKV, attention output, FFN up, FFN down, for 2k-16k
    # tokens; and the weight gradient of the FFN (k = tokens)
    for h, f in [(2048, 8192), (4096, 11008), (4096, 14336), (5120, 13824), (8192, 28672)]:
        for t in [2048, 8192, 16384]:
            shapes += [(1, t, 3 * h, h), (1, t, h, h), (1, t, f, h), (1, t, h, f), (1, h, f, t)]
    # skinny: few rows (small micro-batches of tokens, decode-like)
    for m in [16, 64, 128]:
        shapes += [(1, m, 4096, 4096), (1, m, 14336, 4096)]
    # batched, as XLA's table has them
    for s in [1024, 2048, 4096]:
        shapes += [(4, s, s, s)]
    # eager attention's batched GEMMs by head dim: QK^T (k = d) and PV (n = d). Head dims that are
    # not multiples of 8 (108, 150) break cuBLAS's 16-byte alignment; BLOOM's sweeps ran them
    # 30-44 % slower than 144 or 216 in the same model (issue 12), which no table here times yet.
    for d in [64, 96, 108, 112, 128, 144, 150]:
        shapes += [(64, 2048, 2048, d), (64, 2048, d, 2048)]
    seen, out = set(), []
    for s in shapes:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def run_gemm():
    rows = []
    for dtype, col in [(torch.bfloat16, "bf16"), (torch.float32, "tf32")]:
        torch.backends.cuda.matmul.allow_tf32 = dtype == torch.float32
        for b, m, n, k in gemm_rows():
            if dtype == torch.float32 and m * n * k * b > 8192 ** 3:
                continue
            a = torch.randn(b, m, k, device=DEV, dtype=dtype)
            w = torch.randn(b, k, n, device=DEV, dtype=dtype)
            fn = (lambda a=a[0], w=w[0]: torch.mm(a, w)) if b == 1 else (lambda: torch.bmm(a, w))
            s = bench(fn)
            rows.append((col, b, m, n, k, 2.0 * b * m * n * k / s / 1e12, s * 1e6))
            del a, w
    torch.backends.cuda.matmul.allow_tf32 = False
    by_shape = {}
    for col, b, m, n, k, tf, us in rows:
        by_shape.setdefault((b, m, n, k), {})[col] = (tf, us)
    with open(os.path.join(OUT, "gemm.tsv"), "w") as f:
        f.write("# SOURCE: measured, python3 tools/gpu_sweep.py on %s, torch %s (CUDA %s): torch.mm/"
                "torch.bmm (cuBLAS/cuBLASLt), CUDA events over >= 20 ms of back-to-back calls after 3 "
                "warm-ups, random normal inputs; tflops_tf32 = fp32 inputs with allow_tf32.\n"
                % (NAME, torch.__version__, torch.version.cuda))
        f.write("b\tm\tn\tk\tgflop\ttflops_bf16\ttflops_tf32\tkernel_us_bf16\n")
        for (b, m, n, k), d in by_shape.items():
            bf, tf = d.get("bf16"), d.get("tf32")
            f.write("%d\t%d\t%d\t%d\t%.4f\t%s\t%s\t%s\n" % (
                b, m, n, k, 2.0 * b * m * n * k / 1e9, "%.1f" % bf[0] if bf else "NA",
                "%.1f" % tf[0] if tf else "NA", "%.2f" % bf[1] if bf else "NA"))
    log("gemm: %d rows" % len(by_shape))


def run_attention():
    from torch.nn.attention import SDPBackend, sdpa_kernel
    import torch.nn.functional as F
    backends = [("flashattention2", SDPBackend.FLASH_ATTENTION)]
    if hasattr(SDPBackend, "CUDNN_ATTENTION"):
        backends.append(("cudnn", SDPBackend.CUDNN_ATTENTION))
    seqs = [512, 1024, 2048, 4096, 8192, 16384] if not QUICK else [1024, 8192]
    rows = []
    for method, backend in backends:
        for hd in [64, 128]:
            for causal in [0, 1]:
                for s in seqs:
                    b, h = max(1, 16384 // s), 2048 // hd
                    try:
                        q, k, v = (torch.randn(b, h, s, hd, device=DEV, dtype=torch.bfloat16,
                                               requires_grad=True) for _ in range(3))
                        with sdpa_kernel(backend):
                            fwd = bench(lambda: F.scaled_dot_product_attention(
                                q, k, v, is_causal=bool(causal)))
                            grad = torch.randn(b, h, s, hd, device=DEV, dtype=torch.bfloat16)

                            def both():
                                o = F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal))
                                o.backward(grad)
                            fb = bench(both)
                    except Exception as e:
                        log("attention %s d=%d s=%d causal=%d: %s" % (method, hd, s, causal, e))
                        continue
                    flops = 4.0 * b * s * s * h * hd / (2 if causal else 1)
                    rows.append((method, "fwd", causal, hd, s, b, h, flops / fwd / 1e12))
                    rows.append((method, "fwd+bwd", causal, hd, s, b, h, 3.5 * flops / fb / 1e12))
                    del q, k, v
    with open(os.path.join(OUT, "attention.tsv"), "w") as f:
        f.write("# SOURCE: measured, python3 tools/gpu_sweep.py on %s, torch %s: F.scaled_dot_product_"
                "attention with one backend forced (flashattention2 = PyTorch's FlashAttention-2 "
                "kernel), bf16, batch 16384/seqlen, hidden 2048; FLOPs 4 b s^2 h d forward, halved "
                "when causal, fwd+bwd 3.5 x forward (the FlashAttention benchmark's convention)\n"
                % (NAME, torch.__version__))
        f.write("figure\tgpu\tpass\tcausal\thead_dim\tseqlen\tbatch\tn_heads\tmethod\ttflops\tnote\n")
        for method, p, causal, hd, s, b, h, tf in rows:
            f.write("sweep\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%.1f\t\n" % (NAME, p, causal, hd, s, b, h,
                                                                      method, tf))
    log("attention: %d rows" % len(rows))


def run_misc():
    misc = {"device": NAME, "torch": torch.__version__, "cuda": torch.version.cuda}
    n = (1 << 30) // 2  # 1 GiB of bf16
    x = torch.randn(n, device=DEV, dtype=torch.bfloat16)
    y, z = torch.empty_like(x), torch.randn(n, device=DEV, dtype=torch.bfloat16)
    misc["copy_GBps"] = 2 * x.numel() * 2 / bench(lambda: y.copy_(x)) / 1e9
    misc["triad_GBps"] = 3 * x.numel() * 2 / bench(lambda: torch.add(x, z, alpha=0.5, out=y)) / 1e9
    del x, y, z
    # host: eager launches of a one-element kernel, the GPU never the bottleneck
    t = torch.zeros(1, device=DEV)
    for _ in range(100):
        t.add_(1)
    torch.cuda.synchronize()
    reps = 20000
    t0 = time.perf_counter()
    for _ in range(reps):
        t.add_(1)
    torch.cuda.synchronize()
    misc["eager_launch_us"] = (time.perf_counter() - t0) / reps * 1e6
    # GPU: a CUDA graph of tiny kernels replayed, per kernel (no host in the way)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(1000):
            t.add_(1)
    torch.cuda.synchronize()
    misc["graph_kernel_us"] = bench(lambda: g.replay(), min_s=0.05) / 1000 * 1e6
    # sustained bf16 GEMM: TFLOP/s, SM clock and power over about 15 s of back-to-back work
    m = 8192
    a = torch.randn(m, m, device=DEV, dtype=torch.bfloat16)
    w = torch.randn(m, m, device=DEV, dtype=torch.bfloat16)
    try:
        import pynvml
        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
    except Exception:
        h = None
    samples, t_end = [], time.time() + (4 if QUICK else 15)
    while time.time() < t_end:
        s = bench(lambda: torch.mm(a, w), min_s=0.5, warm=1)
        sample = {"t": round(time.time() - (t_end - (4 if QUICK else 15)), 2),
                  "tflops": round(2.0 * m ** 3 / s / 1e12, 1)}
        if h is not None:
            sample["sm_MHz"] = pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM)
            sample["power_W"] = round(pynvml.nvmlDeviceGetPowerUsage(h) / 1000, 1)
            sample["temp_C"] = pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)
        samples.append(sample)
        log("sustained:", sample)
    misc["sustained_gemm_8192"] = samples
    with open(os.path.join(OUT, "misc.json"), "w") as f:
        json.dump(misc, f, indent=1)
    log("misc:", {k: v for k, v in misc.items() if k != "sustained_gemm_8192"})


if __name__ == "__main__":
    header()
    for part in (run_misc, run_gemm, run_attention):
        t0 = time.time()
        try:
            part()
        except Exception as e:
            log("%s failed: %r" % (part.__name__, e))
        log("%s: %.1f s" % (part.__name__, time.time() - t0))
