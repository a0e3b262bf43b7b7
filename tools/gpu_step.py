#!/usr/bin/env python3
"""Does a training step slow down at the power limit as a held GEMM does? (issue 12, item 4)

Runs forward and backward of a stack of GPT-style decoder layers (bf16, hidden 4096, FFN 16384,
32 heads, sequence 2048, micro-batch 4, FlashAttention-2 through SDPA) back to back for 20 s and
prints, every half second, the model TFLOP/s (6 x parameters x tokens + attention, causal), the SM
clock, the power and the temperature. The first half second against the rest is what the power
limit takes from a step; tools/gpu_sweep.py's held GEMM is the same measure for a GEMM alone.

usage: python3 tools/gpu_step.py OUTDIR
"""
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = sys.argv[1] if len(sys.argv) > 1 else "."
os.makedirs(OUT, exist_ok=True)
H, FFN, HEADS, SEQ, MB, LAYERS = 4096, 16384, 32, 2048, 4, 4


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(H), nn.LayerNorm(H)
        self.qkv, self.proj = nn.Linear(H, 3 * H), nn.Linear(H, H)
        self.fc1, self.fc2 = nn.Linear(H, FFN), nn.Linear(FFN, H)

    def forward(self, x):
        b, s, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, s, 3, HEADS, H // HEADS).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, s, H))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


def main():
    dev = torch.device("cuda")
    model = nn.Sequential(*[Layer() for _ in range(LAYERS)]).to(dev, torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    tokens = MB * SEQ
    # model FLOPs per step: 6 N T for the weights, attention 4 s^2 h per layer forward (causal:
    # half), x3 for forward and backward
    flops = 6 * params * tokens + 3 * LAYERS * MB * 2 * SEQ * SEQ * H
    x = torch.randn(MB, SEQ, H, device=dev, dtype=torch.bfloat16)
    try:
        import pynvml
        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
    except Exception:
        h = None
    def step():
        model(x).float().pow(2).mean().backward()
    for _ in range(2):
        step()
    torch.cuda.synchronize()
    time.sleep(5)  # idle: the clock back up before the timed run
    samples, t0 = [], time.time()
    while time.time() - t0 < 20:
        t1, n = time.time(), 0
        while time.time() - t1 < 0.5:
            step()
            n += 1
        torch.cuda.synchronize()
        dt = time.time() - t1
        s = {"t": round(time.time() - t0, 2), "steps": n, "tflops": round(n * flops / dt / 1e12, 1)}
        if h is not None:
            s["sm_MHz"] = pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM)
            s["power_W"] = round(pynvml.nvmlDeviceGetPowerUsage(h) / 1000, 1)
            s["temp_C"] = pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)
        samples.append(s)
        print(s, flush=True)
    res = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
           "layers": LAYERS, "hidden": H, "ffn": FFN, "seq": SEQ, "micro_batch": MB,
           "params": params, "model_flops_per_step": flops, "samples": samples}
    json.dump(res, open(os.path.join(OUT, "step.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
