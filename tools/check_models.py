#!/usr/bin/env python3
"""Check the model description files in models/ (python3, standard library only).

For every models/*.json:
  * the file is valid JSON with 2-space indentation;
  * Hugging Face configs (model_type gpt2, llama, mistral, qwen2, gemma, gemma2, phi3,
    gpt_neox, falcon): the parameter count is
    recomputed from the shape keys exactly as sum(p.numel() for p in
    model.parameters()) of GPT2LMHeadModel / LlamaForCausalLM gives it
    (tied weights counted once) and compared with fsdpsim.published_params;
  * fsdpsim-layers files: the leaf params are summed and compared with
    fsdpsim.published_params, and the module tree is checked (unique names,
    every dotted parent listed before its children as a container, containers
    carry no numbers, leaves carry params/flops_fwd/output_elems).

Usage:  python3 tools/check_models.py [file.json ...]   (default: models/*.json)
Exit status 1 if any check fails.
"""

import glob
import json
import os
import sys


def gpt2_params(c):
    h = c["n_embd"]
    L = c["n_layer"]
    V = c["vocab_size"]
    P = c["n_positions"]
    inner = c.get("n_inner") or 4 * h
    per_layer = (
        2 * h                       # ln_1
        + h * 3 * h + 3 * h         # attn.c_attn
        + h * h + h                 # attn.c_proj
        + 2 * h                     # ln_2
        + h * inner + inner         # mlp.c_fc
        + inner * h + h             # mlp.c_proj
    )
    total = V * h + P * h + L * per_layer + 2 * h   # wte, wpe, blocks, ln_f
    if not c.get("tie_word_embeddings", True):
        total += V * h              # untied lm_head (no bias)
    return total


def llama_params(c):
    """Llama family: llama, mistral, qwen2 (q/k/v biases), gemma (tied, head_dim), gemma2 (four
    norms per layer), phi3 (fused projections: the same count)."""
    t = c["model_type"]
    h = c["hidden_size"]
    L = c["num_hidden_layers"]
    V = c["vocab_size"]
    I = c["intermediate_size"]
    nh = c["num_attention_heads"]
    nkv = c.get("num_key_value_heads") or nh
    hd = c.get("head_dim") or h // nh
    attn_bias = bool(c.get("attention_bias", False))
    qkv_bias = attn_bias or t in ("qwen2", "qwen2_moe")
    mlp_bias = bool(c.get("mlp_bias", False))
    q = h * nh * hd + (nh * hd if qkv_bias else 0)
    kv = 2 * (h * nkv * hd + (nkv * hd if qkv_bias else 0))
    o = nh * hd * h + (h if attn_bias else 0)
    mlp = 3 * h * I + ((2 * I + h) if mlp_bias else 0)
    if t == "mixtral":                             # router + num_local_experts gated MLPs
        mlp = h * c["num_local_experts"] + c["num_local_experts"] * 3 * h * I
    elif t == "qwen2_moe":                         # router, experts, shared expert and its gate
        E = c["num_experts"]
        S = c.get("shared_expert_intermediate_size", 0)
        mlp = h * E + E * 3 * h * c["moe_intermediate_size"] + (3 * h * S + h if S else 0)
    norms = 4 if t == "gemma2" else 2
    per_layer = q + kv + o + mlp + norms * h      # + RMSNorms
    total = V * h + L * per_layer + h              # embed_tokens, layers, norm
    if not c.get("tie_word_embeddings", t in ("gemma", "gemma2")):
        total += V * h                             # lm_head (no bias)
    return total


def parallel_params(c):
    """GPT-NeoX and Falcon: fused query_key_value, LayerNorms with bias, 4h MLP."""
    neox = c["model_type"] == "gpt_neox"
    h = c["hidden_size"]
    L = c["num_hidden_layers"]
    V = c["vocab_size"]
    nh = c["num_attention_heads"]
    hd = h // nh
    if neox:
        I = c["intermediate_size"]
        bias = c.get("attention_bias", True)
        nkv = nh
        norms = 2
    else:
        I = c.get("ffn_hidden_size") or 4 * h
        bias = c.get("bias", False)
        new = c.get("new_decoder_architecture", False)
        nkv = c.get("num_kv_heads", nh) if new else (1 if c.get("multi_query", True) else nh)
        norms = 2 if new or not c.get("parallel_attn", True) else 1
    qkv = h * (nh + 2 * nkv) * hd + ((nh + 2 * nkv) * hd if bias else 0)
    dense = h * h + (h if bias else 0)
    mlp = 2 * h * I + ((I + h) if bias else 0)
    total = V * h + L * (qkv + dense + mlp + norms * 2 * h) + 2 * h
    if not c.get("tie_word_embeddings", not neox):
        total += V * h
    return total


def encoder_params(c):
    """BertForPreTraining, RobertaForMaskedLM, ViTForImageClassification."""
    t = c["model_type"]
    h = c["hidden_size"]
    L = c["num_hidden_layers"]
    I = c["intermediate_size"]
    qkv_bias = c.get("qkv_bias", True)
    layer = 3 * (h * h + (h if qkv_bias else 0)) + h * h + h + 2 * 2 * h + h * I + I + I * h + h
    if t == "vit":
        n = (c["image_size"] // c["patch_size"]) ** 2
        labels = len(c.get("id2label") or {}) or 2
        emb = h + (n + 1) * h + c.get("num_channels", 3) * c["patch_size"] ** 2 * h + h
        return emb + L * layer + 2 * h + h * labels + labels
    V = c["vocab_size"]
    emb = (V + c.get("max_position_embeddings", 512) + c.get("type_vocab_size", 2)) * h + 2 * h
    head = h * h + h + 2 * h + V          # transform dense, LayerNorm, decoder bias (weight tied)
    if t == "bert":
        head += h * h + h + 2 * h + 2     # pooler, next-sentence Linear(h, 2)
    return emb + L * layer + head


def t5_params(c):
    """T5ForConditionalGeneration: shared embedding, encoder and decoder stacks."""
    d, kv, ff, H = c["d_model"], c.get("d_kv", 64), c["d_ff"], c["num_heads"]
    L = c["num_layers"]
    Ld = c.get("num_decoder_layers") or L
    gated = c.get("feed_forward_proj", "relu").startswith("gated-")
    attn = 4 * d * H * kv + d                       # q, k, v, o and the layer's norm
    ffn = (3 if gated else 2) * d * ff + d
    rel = c.get("relative_attention_num_buckets", 32) * H
    enc = L * (attn + ffn) + rel + d
    dec = Ld * (2 * attn + ffn) + rel + d
    total = c["vocab_size"] * d + enc + dec
    if not c.get("tie_word_embeddings", True):
        total += c["vocab_size"] * d
    return total


def check_indent(text):
    for n, line in enumerate(text.splitlines(), 1):
        lead = len(line) - len(line.lstrip(" "))
        if "\t" in line[:lead + 1] or lead % 2:
            return "line %d is not 2-space indented" % n
    if not text.startswith("{\n  "):
        return "top level is not indented by 2 spaces"
    return None


def check_layers(doc, errors):
    names = set()
    containers = set()
    total = 0
    for m in doc["modules"]:
        name = m["name"]
        if name in names:
            errors.append("duplicate module name %s" % name)
        names.add(name)
        if "." in name:
            parent = name.rsplit(".", 1)[0]
            if parent not in containers:
                errors.append("%s: parent %s not listed before it as a container" % (name, parent))
        if m.get("container"):
            containers.add(name)
            for k in ("params", "flops_fwd", "output_elems"):
                if k in m:
                    errors.append("container %s has %s" % (name, k))
        else:
            for k in ("params", "flops_fwd", "output_elems"):
                if not isinstance(m.get(k), int) or m[k] < 0:
                    errors.append("leaf %s lacks a non-negative integer %s" % (name, k))
            if m.get("kind") == "batchnorm2d" and m.get("buffers") != m.get("params", 0) + 1:
                errors.append("batchnorm %s: buffers should be 2C+1" % name)
            total += m.get("params", 0)
    mm = sum(m["flops_fwd"] for m in doc["modules"]
             if m.get("kind") in ("conv2d", "linear"))
    return total, mm


def check_file(path):
    errors = []
    with open(path) as f:
        text = f.read()
    try:
        doc = json.loads(text)
    except ValueError as e:
        return ["invalid JSON: %s" % e], None
    bad = check_indent(text)
    if bad:
        errors.append(bad)
    fs = doc.get("fsdpsim")
    if not isinstance(fs, dict):
        return errors + ["no fsdpsim object"], None
    if list(doc.keys())[-1] != "fsdpsim":
        errors.append("fsdpsim is not the last top-level key")
    published = fs.get("published_params")
    if not fs.get("published_params_source"):
        errors.append("no published_params_source")
    kind = doc.get("model_type") or doc.get("format")
    extra = ""
    if kind == "gpt2":
        computed = gpt2_params(doc)
        want = ["name", "published_params", "published_params_source", "training"]
    elif kind in ("llama", "mistral", "qwen2", "gemma", "gemma2", "phi3", "mixtral", "qwen2_moe"):
        computed = llama_params(doc)
        want = ["name", "published_params", "published_params_source", "training"]
    elif kind == "t5":
        computed = t5_params(doc)
        want = ["name", "published_params", "published_params_source", "training"]
    elif kind in ("bert", "roberta", "vit"):
        computed = encoder_params(doc)
        want = ["name", "published_params", "published_params_source", "training"]
    elif kind in ("gpt_neox", "falcon"):
        computed = parallel_params(doc)
        want = ["name", "published_params", "published_params_source", "training"]
    elif kind == "fsdpsim-layers":
        computed, mm = check_layers(doc, errors)
        extra = ", conv+linear flops_fwd %.4e" % mm
        want = ["published_params", "published_params_source", "wrap_block_kind", "training"]
    else:
        return errors + ["unknown model_type/format %r" % kind], None
    if list(fs.keys()) != want:
        errors.append("fsdpsim keys %s, expected %s" % (list(fs.keys()), want))
    if computed != published:
        errors.append("computed params %s != published_params %s"
                      % (format(computed, ","), format(published, ",")))
    summary = "%-16s %-14s computed %18s  published %18s%s" % (
        os.path.basename(path), kind, format(computed, ","), format(published or 0, ","), extra)
    return errors, summary


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    paths = sys.argv[1:] or sorted(glob.glob(os.path.join(here, os.pardir, "models", "*.json")))
    failed = 0
    for p in paths:
        errors, summary = check_file(p)
        status = "OK" if not errors else "FAIL"
        print("%s  %s" % (summary or os.path.basename(p), status))
        for e in errors:
            print("    - " + e)
        failed += bool(errors)
    print("%d file(s) checked, %d failed" % (len(paths), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
