#!/usr/bin/env python3
"""Independent NumPy reference for the `fusekit merge` golden tests (developer script).

Reads the demo checkpoints written by
    fusekit demo-checkpoints DEMO --hidden 32 --intermediate 48 --layers 3 --vocab 40 --heads 4 --kv-heads 2
with its own safetensors parser, re-implements mergekit's semantics for the three configs next to this
script (parameter resolution with gradients and filters, t assignment, slices, tied heads, vocabulary
cuts, TIES per mergekit's GTA pipeline) and writes the expected outputs as F32 safetensors to
tests/data/io/golden/<case>.safetensors.

Usage: python3 make_numpy_golden.py DEMO_DIR [OUT_DIR]   (needs numpy from PyPI)
"""
import json
import math
import os
import re
import struct
import sys

import numpy as np

LAYER = re.compile(r"^(.*\blayers\.)(\d+)\.(.*)$")


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    buf = data[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = buf[b:end]
        if e["dtype"] == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif e["dtype"] == "F32":
            a = np.frombuffer(raw, dtype="<f4").copy()
        else:
            raise ValueError(e["dtype"])
        out[name] = a.reshape(e["shape"])
    return out


def read_model(folder):
    idx = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(idx):
        files = sorted(set(json.load(open(idx))["weight_map"].values()))
        t = {}
        for f in files:
            t.update(read_safetensors(os.path.join(folder, f)))
        return t
    return read_safetensors(os.path.join(folder, "model.safetensors"))


def write_safetensors(path, tensors):
    header, off, blobs = {}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
        blobs.append(a.tobytes())
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---- mergekit parameter semantics ----
def evaluate(setting, tensor, t):
    """Scalar / gradient / [{filter, value}] (first match wins); None when no filter matches."""
    if setting is None:
        return None
    if isinstance(setting, (int, float)):
        return float(setting)
    if all(isinstance(e, (int, float)) for e in setting):
        s = t * (len(setting) - 1)
        i0 = int(math.floor(s))
        i1 = min(len(setting) - 1, i0 + 1)
        frac = s - i0
        return (1 - frac) * setting[i0] + frac * setting[i1]
    for e in setting:
        f = e.get("filter")
        if f is None or f == "*" or f in tensor:
            return evaluate(e["value"], tensor, t)
    return None


def lookup(name, levels, tensor, t, default=None):
    for lv in levels:
        if lv and name in lv:
            v = evaluate(lv[name], tensor, t)
            if v is not None:
                return v
    return default


# ---- methods (float32, mergekit GTA pipeline) ----
def ties(base, xs, weights, densities, lam, normalize=True):
    deltas = []
    for x, d in zip(xs, densities):
        delta = (x - base).astype(np.float32).ravel()
        k = int(math.floor(d * delta.size))
        keep = np.zeros(delta.size, dtype=bool)
        order = np.argsort(-np.abs(delta), kind="stable")  # ties: lowest index first
        keep[order[:k]] = True
        deltas.append(np.where(keep, delta, np.float32(0)))
    u = [np.float32(w) * d for w, d in zip(weights, deltas)]
    total = np.sum(u, axis=0, dtype=np.float64)
    sign = np.where(total >= 0, 1.0, -1.0)
    merged = np.zeros_like(total)
    div = np.zeros_like(total)
    for ui, w in zip(u, weights):
        agree = np.sign(ui) == sign
        merged += np.where(agree, ui, 0.0)
        div += np.where(agree, w, 0.0)
    if normalize:
        div[div == 0] = 1.0
        merged = merged / div
    merged *= lam
    return (base.ravel().astype(np.float64) + merged).reshape(base.shape)


def task_arithmetic(base, xs, weights, lam):
    m = np.zeros(base.size, dtype=np.float64)
    for x, w in zip(xs, weights):
        m += w * (x.astype(np.float64) - base).ravel()
    return (base.ravel().astype(np.float64) + lam * m).reshape(base.shape)


def linear(xs, weights):
    s = sum(weights)
    return sum(w * x.astype(np.float64) for w, x in zip(weights, xs)) / s


def source(models, m, name):
    t = models[m]
    if name in t:
        return t[name]
    if name == "lm_head.weight" and "model.embed_tokens.weight" in t:  # tied embeddings
        return t["model.embed_tokens.weight"]
    raise KeyError(f"{m}: {name}")


def output_names(models, base, srcs):
    """The base's tensors, plus lm_head.weight when the base is tied and some input stores a head."""
    names = list(base)
    if "lm_head.weight" not in base and any("lm_head.weight" in models[s] for s in srcs):
        names.append("lm_head.weight")
    return names


def layer_t(j, n):
    return j / (n - 1) if n > 1 else 1.0


def case_ties(models):
    base = models["base"]
    n = 3
    out = {}
    srcs = [("math", {"weight": [0.6, 0.4], "density": 0.5}),
            ("code", {"weight": [{"filter": "mlp", "value": 0.7}, {"value": 0.3}], "density": [0.8, 0.4]}),
            ("chat", {"weight": 0.3, "density": 0.3})]
    for name in output_names(models, base, [s for s, _ in srcs]):
        m = LAYER.match(name)
        t = layer_t(int(m.group(2)), n) if m else 0.0
        xs = [source(models, s, name) for s, _ in srcs]
        w = [lookup("weight", [p], name, t) for _, p in srcs]
        d = [lookup("density", [p], name, t, 1.0) for _, p in srcs]
        out[name] = ties(source(models, "base", name), xs, w, d, 0.9)
    return out


def case_linear(models):
    base = models["base"]
    n = 3
    out = {}
    srcs = [("base", {"weight": 0.5}), ("wide", {"weight": 0.3}),
            ("math", {"weight": [{"filter": "self_attn", "value": [0.1, 0.3]}, {"value": 0.2}]})]
    for name in output_names(models, base, [s for s, _ in srcs]):
        m = LAYER.match(name)
        t = layer_t(int(m.group(2)), n) if m else 0.0
        xs = [source(models, s, name) for s, _ in srcs]
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            r = min(x.shape[0] for x in xs)
            c = min(x.shape[1] for x in xs)
            xs = [x[:r, :c] for x in xs]
        w = [lookup("weight", [p], name, t) for _, p in srcs]
        out[name] = linear(xs, w)
    return out


def case_slices(models):
    base = models["base"]
    out = {}
    top = {"lambda": 1.5}
    slices = [
        {"params": {}, "src": [("base", 0, None), ("math", 0, {"weight": [1.0, 0.0]})], "len": 2, "off": 0},
        {"params": {"weight": 0.5}, "src": [("base", 1, None), ("code", 1, {})], "len": 2, "off": 2},
    ]
    lam = top["lambda"]
    for sl in slices:
        for j in range(sl["len"]):
            t = layer_t(j, sl["len"])
            for name in base:
                m = LAYER.match(name)
                if not m or int(m.group(2)) != j + sl["src"][0][1]:
                    continue
                oname = f"{m.group(1)}{sl['off'] + j}.{m.group(3)}"
                b = base[f"{m.group(1)}{sl['src'][0][1] + j}.{m.group(3)}"]
                xs, ws = [], []
                for mod, start, p in sl["src"][1:]:
                    iname = f"{m.group(1)}{start + j}.{m.group(3)}"
                    xs.append(source(models, mod, iname))
                    ws.append(lookup("weight", [p, sl["params"], top], iname, t))
                out[oname] = task_arithmetic(b, xs, ws, lam)
    for name in output_names(models, base, [s for s, _, _ in slices[-1]["src"]]):
        if LAYER.match(name):
            continue
        sl = slices[0] if "embed" in name else slices[-1]
        xs, ws = [], []
        for mod, _, p in sl["src"][1:]:
            xs.append(source(models, mod, name))
            ws.append(lookup("weight", [p, sl["params"], top], name, 0.0))
        out[name] = task_arithmetic(source(models, "base", name), xs, ws, lam)
    return out


def main():
    demo = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "..", "data", "io", "golden")
    os.makedirs(out_dir, exist_ok=True)
    models = {m: read_model(os.path.join(demo, m)) for m in ("base", "math", "code", "chat", "wide")}
    for case, fn in (("ties_gradient_filter", case_ties), ("linear_vocab", case_linear),
                     ("task_arithmetic_slices", case_slices)):
        res = fn(models)
        write_safetensors(os.path.join(out_dir, case + ".safetensors"), res)
        print(f"{case}: {len(res)} tensors")


if __name__ == "__main__":
    main()
