#!/usr/bin/env python3
"""Generate models/resnet50.json: the layer list of torchvision ResNet-50 at 224x224.

Standard library only. Every number is computed from the layer shapes of
torchvision.models.resnet50() (ResNet v1.5: the stride-2 of a downsampling
Bottleneck sits on its 3x3 conv2; downsample = 1x1 conv + BatchNorm).

Usage:  python3 tools/gen_resnet50.py [output_path]
        (default output: models/resnet50.json next to this tools/ folder)

Checks printed at the end (and enforced: exit status 1 if one fails):
  * sum of params == 25,557,032 (torchvision's published num_params)
  * sum of conv + linear flops_fwd ~= 8.18e9 (= 2 x torchvision's 4.09 GMACs,
    listed as "GFLOPS 4.09" in torchvision's table)
"""

import json
import os
import sys

IMAGE = 224
NUM_CLASSES = 1000
PUBLISHED_PARAMS = 25557032
PUBLISHED_GMACS = 4.09

FLOPS_NOTE = (
    "flops_fwd is forward FLOPs per sample, a multiply-add counted as 2 FLOPs. "
    "conv2d: 2*Cin/groups*k*k*Cout*Hout*Wout (torchvision ResNet convs have no bias); "
    "linear: 2*in*out + out (bias). Elementwise modules are counted per element: "
    "batchnorm2d 2 FLOPs per output element (scale+shift, inference-style affine), "
    "relu 1 per output element, maxpool2d k*k per output element (k=3), "
    "adaptive avgpool 1 per input element, add 1 per output element. "
    "Backward cost is not listed (the simulator derives it, ~2x forward for conv/linear). "
    "torchvision's Bottleneck owns ONE nn.ReLU module that its forward calls three times "
    "(after bn1, after bn2, after the residual add); it is listed once per Bottleneck as "
    "'layerX.Y.relu', placed after the add (its last use), and its output_elems and "
    "flops_fwd are the sum over the three calls. The 'layerX.Y.add' entries (kind 'add', "
    "params 0) are synthetic leaves for the residual addition 'out += identity', which "
    "torchvision does inline and which therefore is not a module in named_modules(). "
    "Within a Bottleneck the downsample branch is listed after bn3, as torchvision's "
    "forward computes it. Sum of conv+linear flops_fwd = 2 x torchvision's 4.09 GMACs "
    "('GFLOPS 4.09' in torchvision's table counts multiply-adds)."
)


def conv_out(size, k, s, p):
    return (size + 2 * p - k) // s + 1


class Builder:
    def __init__(self):
        self.modules = []

    def container(self, name, kind):
        self.modules.append({"name": name, "kind": kind, "container": True})

    def conv(self, name, cin, hin, cout, k, s, p, groups=1):
        hout = conv_out(hin, k, s, p)
        params = cout * (cin // groups) * k * k
        flops = 2 * (cin // groups) * k * k * cout * hout * hout
        out = cout * hout * hout
        self.modules.append({
            "name": name, "kind": "conv2d", "params": params,
            "flops_fwd": flops, "output_elems": out,
            "shape": "%dx%dx%d -> %dx%dx%d, k%d s%d p%d, no bias"
                     % (cin, hin, hin, cout, hout, hout, k, s, p),
        })
        return cout, hout

    def bn(self, name, c, h):
        out = c * h * h
        self.modules.append({
            "name": name, "kind": "batchnorm2d", "params": 2 * c,
            "buffers": 2 * c + 1, "flops_fwd": 2 * out, "output_elems": out,
            "shape": "%dx%dx%d, weight+bias %d each; running_mean, running_var, num_batches_tracked"
                     % (c, h, h, c),
        })

    def relu(self, name, elems, shape):
        self.modules.append({
            "name": name, "kind": "relu", "params": 0, "flops_fwd": elems,
            "output_elems": elems, "shape": shape,
        })

    def maxpool(self, name, c, hin, k, s, p):
        hout = conv_out(hin, k, s, p)
        out = c * hout * hout
        self.modules.append({
            "name": name, "kind": "maxpool2d", "params": 0, "flops_fwd": k * k * out,
            "output_elems": out,
            "shape": "%dx%dx%d -> %dx%dx%d, k%d s%d p%d" % (c, hin, hin, c, hout, hout, k, s, p),
        })
        return c, hout

    def avgpool(self, name, c, hin):
        self.modules.append({
            "name": name, "kind": "adaptive_avgpool2d", "params": 0,
            "flops_fwd": c * hin * hin, "output_elems": c,
            "shape": "%dx%dx%d -> %dx1x1, output_size (1, 1)" % (c, hin, hin, c),
        })

    def add(self, name, c, h):
        out = c * h * h
        self.modules.append({
            "name": name, "kind": "add", "params": 0, "flops_fwd": out,
            "output_elems": out,
            "shape": "%dx%dx%d + %dx%dx%d (residual, in place: out += identity)"
                     % (c, h, h, c, h, h),
        })

    def linear(self, name, fin, fout):
        self.modules.append({
            "name": name, "kind": "linear", "params": fin * fout + fout,
            "flops_fwd": 2 * fin * fout + fout, "output_elems": fout,
            "shape": "%d -> %d, bias" % (fin, fout),
        })


def bottleneck(b, prefix, cin, h, planes, stride, downsample):
    """torchvision Bottleneck (expansion 4, base_width 64, groups 1)."""
    width = planes
    cout = planes * 4
    b.container(prefix, "Bottleneck")
    _, h1 = b.conv(prefix + ".conv1", cin, h, width, 1, 1, 0)
    b.bn(prefix + ".bn1", width, h1)
    _, h2 = b.conv(prefix + ".conv2", width, h1, width, 3, stride, 1)
    b.bn(prefix + ".bn2", width, h2)
    _, h3 = b.conv(prefix + ".conv3", width, h2, cout, 1, 1, 0)
    b.bn(prefix + ".bn3", cout, h3)
    if downsample:
        b.container(prefix + ".downsample", "Sequential")
        b.conv(prefix + ".downsample.0", cin, h, cout, 1, stride, 0)
        b.bn(prefix + ".downsample.1", cout, h3)
    b.add(prefix + ".add", cout, h3)
    relu_elems = width * h1 * h1 + width * h2 * h2 + cout * h3 * h3
    b.relu(prefix + ".relu", relu_elems,
           "one nn.ReLU called 3x: %dx%dx%d + %dx%dx%d + %dx%dx%d (in place)"
           % (width, h1, h1, width, h2, h2, cout, h3, h3))
    return cout, h3


def build():
    b = Builder()
    c, h = b.conv("conv1", 3, IMAGE, 64, 7, 2, 3)
    b.bn("bn1", c, h)
    b.relu("relu", c * h * h, "%dx%dx%d (in place)" % (c, h, h))
    c, h = b.maxpool("maxpool", c, h, 3, 2, 1)
    # (name, blocks, planes, stride) as in torchvision resnet50: [3, 4, 6, 3]
    for li, (blocks, planes, stride) in enumerate(
            [(3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)], start=1):
        lname = "layer%d" % li
        b.container(lname, "Sequential")
        for bi in range(blocks):
            s = stride if bi == 0 else 1
            ds = bi == 0 and (s != 1 or c != planes * 4)
            c, h = bottleneck(b, "%s.%d" % (lname, bi), c, h, planes, s, ds)
    b.avgpool("avgpool", c, h)
    b.linear("fc", c, NUM_CLASSES)
    return b.modules


def render(doc):
    """2-space indented JSON, one module object per line for readability."""
    lines = ["{"]
    keys = list(doc.keys())
    for i, k in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        if k == "modules":
            lines.append('  "modules": [')
            mods = doc[k]
            for j, m in enumerate(mods):
                mc = "," if j < len(mods) - 1 else ""
                lines.append("    " + json.dumps(m) + mc)
            lines.append("  ]" + comma)
        else:
            val = json.dumps(doc[k], indent=2).replace("\n", "\n  ")
            lines.append("  %s: %s%s" % (json.dumps(k), val, comma))
    lines.append("}")
    return "\n".join(lines) + "\n"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        here, os.pardir, "models", "resnet50.json")
    modules = build()
    doc = {
        "format": "fsdpsim-layers",
        "name": "ResNet-50 (torchvision, 224x224)",
        "input_kind": "image",
        "flops_note": FLOPS_NOTE,
        "modules": modules,
        "fsdpsim": {
            "published_params": PUBLISHED_PARAMS,
            "published_params_source": (
                "https://pytorch.org/vision/stable/models/generated/"
                "torchvision.models.resnet50.html (num_params 25,557,032; GFLOPS 4.09)"),
            "wrap_block_kind": "Bottleneck",
            "training": {
                "image_size": IMAGE,
                "micro_batch_size": 32,
                "param_dtype": "fp32",
                "optimizer": "sgd_momentum",
            },
        },
    }
    text = render(doc)
    json.loads(text)  # must round-trip
    with open(out_path, "w") as f:
        f.write(text)

    leaves = [m for m in modules if not m.get("container")]
    params = sum(m["params"] for m in leaves)
    buffers = sum(m.get("buffers", 0) for m in leaves)
    mm_flops = sum(m["flops_fwd"] for m in leaves if m["kind"] in ("conv2d", "linear"))
    all_flops = sum(m["flops_fwd"] for m in leaves)
    out_elems = sum(m["output_elems"] for m in leaves)
    n_conv = sum(1 for m in leaves if m["kind"] == "conv2d")
    n_bn = sum(1 for m in leaves if m["kind"] == "batchnorm2d")
    n_block = sum(1 for m in modules if m["kind"] == "Bottleneck")

    print("wrote %s: %d entries (%d leaves, %d conv2d, %d batchnorm2d, %d Bottleneck)"
          % (os.path.normpath(out_path), len(modules), len(leaves), n_conv, n_bn, n_block))
    ok_params = params == PUBLISHED_PARAMS
    print("check params: sum = %s, published = %s -> %s"
          % (format(params, ","), format(PUBLISHED_PARAMS, ","), "OK" if ok_params else "MISMATCH"))
    target = 2 * PUBLISHED_GMACS * 1e9
    rel = abs(mm_flops - target) / target
    ok_flops = rel < 0.005  # 4.09 is rounded to 3 significant digits
    print("check conv+linear flops_fwd: %s = %.4e (= %.4f GMACs), expected ~ 2 x %.2f GMACs = %.3e, rel. diff %.2e -> %s"
          % (format(mm_flops, ","), mm_flops, mm_flops / 2e9, PUBLISHED_GMACS, target, rel,
             "OK" if ok_flops else "MISMATCH"))
    print("info: buffers (BN running stats + num_batches_tracked) = %s; all-leaf flops_fwd = %.4e; "
          "sum output_elems per sample = %s" % (format(buffers, ","), all_flops, format(out_elems, ",")))
    return 0 if (ok_params and ok_flops) else 1


if __name__ == "__main__":
    sys.exit(main())
