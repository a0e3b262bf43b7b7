#!/usr/bin/env python3
"""Generate the layer list of a torchvision ResNet (resnet18, 34, 50, 101, 152) for fsdpsim.

Standard library only. Every number is computed from the layer shapes of
torchvision.models.resnetNN(num_classes=...) (ResNet v1.5: the stride-2 of a
downsampling block sits on its 3x3 conv; downsample = 1x1 conv + BatchNorm),
unmodified, at any square input size: --image-size 32 --num-classes 10 is
torchvision's resnet18 trained on CIFAR-10 as Ray's and PyTorch's tutorials do
it (models/resnet18-cifar10.json).

Checks (exit status 1 if one fails): at the published shape (224x224, 1000
classes) the parameter sum equals torchvision's num_params and conv + linear
FLOPs equal 2 x its GFLOPS column (multiply-adds, rounded to 3 digits) within
0.5 %; at other shapes the parameter sum equals the published one minus the
1000-class fc plus the new one.

Usage:  python3 tools/gen_resnet.py [--arch resnet50] [--image-size 224]
                                    [--num-classes 1000] [--output PATH]
        (default output: models/<arch>.json, or models/<arch>-<classes>c-<size>px.json)
"""

import argparse
import json
import os
import sys

# torchvision model docs, https://pytorch.org/vision/stable/models.html (num_params, GFLOPS)
ARCHS = {
    # name: (block, layers, published num_params, published GMACs)
    "resnet18": ("BasicBlock", [2, 2, 2, 2], 11689512, 1.81),
    "resnet34": ("BasicBlock", [3, 4, 6, 3], 21797672, 3.66),
    "resnet50": ("Bottleneck", [3, 4, 6, 3], 25557032, 4.09),
    "resnet101": ("Bottleneck", [3, 4, 23, 3], 44549160, 7.80),
    "resnet152": ("Bottleneck", [3, 8, 36, 3], 60192808, 11.51),
}

FLOPS_NOTE = (
    "flops_fwd is forward FLOPs per sample, a multiply-add counted as 2 FLOPs. "
    "conv2d: 2*Cin/groups*k*k*Cout*Hout*Wout (torchvision ResNet convs have no bias); "
    "linear: 2*in*out + out (bias). Elementwise modules are counted per element: "
    "batchnorm2d 2 FLOPs per output element (scale+shift, inference-style affine), "
    "relu 1 per output element, maxpool2d k*k per output element (k=3), "
    "adaptive avgpool 1 per input element, add 1 per output element. "
    "Backward cost is not listed (the simulator derives it, ~2x forward for conv/linear). "
    "torchvision's Bottleneck (BasicBlock) owns ONE nn.ReLU module that its forward calls three "
    "(two) times: after each bn but the last, and after the residual add; it is listed once per Bottleneck as "
    "'layerX.Y.relu', placed after the add (its last use), and its output_elems and "
    "flops_fwd are the sum over the three calls. The 'layerX.Y.add' entries (kind 'add', "
    "params 0) are synthetic leaves for the residual addition 'out += identity', which "
    "torchvision does inline and which therefore is not a module in named_modules(). "
    "Within a Bottleneck the downsample branch is listed after bn3, as torchvision's "
    "forward computes it. Sum of conv+linear flops_fwd = 2 x torchvision's GMACs "
    "(its table's 'GFLOPS' column counts multiply-adds). conv2d input_elems = Cin*Hin*Win "
    "(cuDNN's NCHW <-> NHWC transposes move the input and the output)."
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
            "flops_fwd": flops, "output_elems": out, "input_elems": cin * hin * hin,
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


def basic_block(b, prefix, cin, h, planes, stride, downsample):
    """torchvision BasicBlock (expansion 1): two 3x3 convs."""
    b.container(prefix, "BasicBlock")
    _, h1 = b.conv(prefix + ".conv1", cin, h, planes, 3, stride, 1)
    b.bn(prefix + ".bn1", planes, h1)
    _, h2 = b.conv(prefix + ".conv2", planes, h1, planes, 3, 1, 1)
    b.bn(prefix + ".bn2", planes, h2)
    if downsample:
        b.container(prefix + ".downsample", "Sequential")
        b.conv(prefix + ".downsample.0", cin, h, planes, 1, stride, 0)
        b.bn(prefix + ".downsample.1", planes, h2)
    b.add(prefix + ".add", planes, h2)
    b.relu(prefix + ".relu", planes * h1 * h1 + planes * h2 * h2,
           "one nn.ReLU called 2x: %dx%dx%d + %dx%dx%d (in place)"
           % (planes, h1, h1, planes, h2, h2))
    return planes, h2


def build(arch, image, classes):
    block, layers, _, _ = ARCHS[arch]
    expansion = 4 if block == "Bottleneck" else 1
    make = bottleneck if block == "Bottleneck" else basic_block
    b = Builder()
    c, h = b.conv("conv1", 3, image, 64, 7, 2, 3)
    b.bn("bn1", c, h)
    b.relu("relu", c * h * h, "%dx%dx%d (in place)" % (c, h, h))
    c, h = b.maxpool("maxpool", c, h, 3, 2, 1)
    for li, (blocks, planes, stride) in enumerate(
            zip(layers, [64, 128, 256, 512], [1, 2, 2, 2]), start=1):
        lname = "layer%d" % li
        b.container(lname, "Sequential")
        for bi in range(blocks):
            s = stride if bi == 0 else 1
            ds = bi == 0 and (s != 1 or c != planes * expansion)
            c, h = make(b, "%s.%d" % (lname, bi), c, h, planes, s, ds)
    b.avgpool("avgpool", c, h)
    b.linear("fc", c, classes)
    return b.modules, c


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
    ap = argparse.ArgumentParser(description="Write a torchvision ResNet as an fsdpsim layer list.")
    ap.add_argument("--arch", choices=sorted(ARCHS), default="resnet50")
    ap.add_argument("--image-size", type=int, default=224, help="pixels per side (default 224)")
    ap.add_argument("--num-classes", type=int, default=1000, help="fc outputs (default 1000)")
    ap.add_argument("--micro-batch", type=int, default=32, help="default micro-batch (32)")
    ap.add_argument("--output", help="output path (default: models/ next to tools/)")
    args = ap.parse_args()
    if args.image_size < 32:
        ap.error("--image-size: expected 32 or more (the stem and four stages halve it 5 times)")
    if args.num_classes < 1:
        ap.error("--num-classes: expected 1 or more")
    block, _, pub_params, pub_gmacs = ARCHS[args.arch]
    standard = args.image_size == 224 and args.num_classes == 1000
    stem = args.arch if standard else "%s-%dc-%dpx" % (args.arch, args.num_classes, args.image_size)
    if args.arch == "resnet18" and args.image_size == 32 and args.num_classes == 10:
        stem = "resnet18-cifar10"
    out_path = args.output or os.path.join(here, os.pardir, "models", stem + ".json")
    modules, features = build(args.arch, args.image_size, args.num_classes)
    # the published total with the 1000-class fc swapped for this one
    expected = pub_params - (features * 1000 + 1000) + (features * args.num_classes + args.num_classes)
    doc_url = ("https://pytorch.org/vision/stable/models/generated/torchvision.models.%s.html"
               % args.arch)
    if standard:
        name = "%s (torchvision, 224x224)" % args.arch.replace("resnet", "ResNet-")
        source = "%s (num_params %s; GFLOPS %.2f)" % (doc_url, format(pub_params, ","), pub_gmacs)
    else:
        name = "%s (torchvision, %dx%d, %d classes)" % (
            args.arch.replace("resnet", "ResNet-"), args.image_size, args.image_size,
            args.num_classes)
        source = ("%s: num_params %s with 1000 classes; fc of %d x %d + %d replaced by %d x %d + "
                  "%d (the convolutions do not depend on the image size)"
                  % (doc_url, format(pub_params, ","), features, 1000, 1000, features,
                     args.num_classes, args.num_classes))
    doc = {
        "format": "fsdpsim-layers",
        "name": name,
        "input_kind": "image",
        "flops_note": FLOPS_NOTE,
        "modules": modules,
        "fsdpsim": {
            "published_params": expected,
            "published_params_source": source,
            "wrap_block_kind": block,
            "training": {
                "image_size": args.image_size,
                "micro_batch_size": args.micro_batch,
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
    mm_flops = sum(m["flops_fwd"] for m in leaves if m["kind"] in ("conv2d", "linear"))
    print("wrote %s: %d entries (%d leaves, %d %s)"
          % (os.path.normpath(out_path), len(modules), len(leaves),
             sum(1 for m in modules if m["kind"] == block), block))
    ok = params == expected
    print("check params: sum = %s, expected %s -> %s"
          % (format(params, ","), format(expected, ","), "OK" if ok else "MISMATCH"))
    if standard:
        target = 2 * pub_gmacs * 1e9
        rel = abs(mm_flops - target) / target
        ok_flops = rel < 0.005  # the GFLOPS column is rounded to 3 significant digits
        print("check conv+linear flops_fwd: %.4e, expected ~ 2 x %.2f GMACs, rel. diff %.2e -> %s"
              % (mm_flops, pub_gmacs, rel, "OK" if ok_flops else "MISMATCH"))
        ok = ok and ok_flops
    else:
        print("info: conv+linear flops_fwd %.4e per sample" % mm_flops)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
