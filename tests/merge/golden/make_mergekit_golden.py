#!/usr/bin/env python3
"""Golden files for fusekit's merge tests, produced by mergekit itself (developer script, not run by CI).

    python3 tests/merge/golden/make_mergekit_golden.py [--out tests/data/merge]

Creates (once) a virtual environment .venv-mergekit at the repository root, installs mergekit from PyPI into
it (torch comes along), re-runs itself there, and calls mergekit's own merge-method objects
(mergekit.merge_methods.registry.get(name)(groups, parameters=...)) on small seeded tensors. It writes

    <out>/golden.json  manifest: mergekit/torch versions, and per case the method, parameters, tensor name,
                       shape, dtype, comparison rule, and the byte offsets of its arrays
    <out>/golden.bin   little-endian float32 arrays: base (if any), inputs..., mergekit's output

DARE and DELLA draw their masks with torch.bernoulli; this script replaces torch.bernoulli by fusekit's
counter-based generator (Philox4x32-10 keyed by seed, stream FNV-1a(tensor name) ^ splitmix64(model index + 1),
element index e), so mergekit's DARE/DELLA arithmetic runs on exactly the masks fusekit draws and the outputs
can be compared element by element:
  DARE  (rng::bernoulli): T = ceil(p * 2^24); byte e % 4 of word e // 4 is b; keep = b < T >> 16, or, when
        b == T >> 16, (word(2^62 + e) >> 16) < (T & 0xFFFF)  (a 24-bit uniform read a byte first);
  DELLA (rng::uniform01 < p): u = (word e >> 8) * 2^-24, keep = u < p.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
VENV = ROOT / ".venv-mergekit"


def ensure_venv():
    if os.environ.get("FUSEKIT_GOLDEN_IN_VENV") == "1":
        return
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    try:
        subprocess.check_call([str(py), "-c", "import mergekit, torch, numpy"], stderr=subprocess.DEVNULL)
    except subprocess.CalledProcessError:
        subprocess.check_call([str(py), "-m", "pip", "install", "mergekit", "numpy"])
    env = dict(os.environ, FUSEKIT_GOLDEN_IN_VENV="1")
    sys.exit(subprocess.call([str(py), __file__] + sys.argv[1:], env=env))


ensure_venv()

import argparse  # noqa: E402
import importlib.metadata as md  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mergekit.merge_methods import registry  # noqa: E402
from mergekit.merge_methods.base import TensorGroup  # noqa: E402

M64 = (1 << 64) - 1


def fnv1a(name: str) -> int:
    h = 0xCBF29CE484222325
    for c in name.encode():
        h ^= c
        h = (h * 0x100000001B3) & M64
    return h


def splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def model_stream(name: str, model: int) -> int:
    return fnv1a(name) ^ splitmix64(model + 1)


def philox_words(seed: int, stream: int, idx: np.ndarray) -> np.ndarray:
    """fusekit::rng::random_u32(seed, stream, e) for the element indices e in idx (uint64)."""
    idx = np.asarray(idx, dtype=np.uint64)
    blk = idx >> np.uint64(2)
    c0 = blk & np.uint64(0xFFFFFFFF)
    c1 = blk >> np.uint64(32)
    c2 = np.full(blk.shape, stream & 0xFFFFFFFF, dtype=np.uint64)
    c3 = np.full(blk.shape, stream >> 32, dtype=np.uint64)
    k0, k1 = seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF
    m32 = np.uint64(0xFFFFFFFF)
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c0
        p1 = np.uint64(0xCD9E8D57) * c2
        n0 = ((p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0)) & m32
        n2 = ((p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1)) & m32
        c1, c3 = p1 & m32, p0 & m32
        c0, c2 = n0, n2
        k0 = (k0 + 0x9E3779B9) & 0xFFFFFFFF
        k1 = (k1 + 0xBB67AE85) & 0xFFFFFFFF
    words = np.stack([c0, c1, c2, c3], axis=-1)
    return np.take_along_axis(words, (idx & np.uint64(3)).astype(np.int64)[..., None], axis=-1)[..., 0]


def philox_uniform(seed: int, stream: int, n: int) -> np.ndarray:
    """fusekit::rng::uniform01(seed, stream, e) for e in [0, n)."""
    words = philox_words(seed, stream, np.arange(n, dtype=np.uint64))
    return ((words >> np.uint64(8)).astype(np.float64) * (1.0 / 16777216.0)).astype(np.float32)


def philox_bernoulli(seed: int, stream: int, p: np.ndarray) -> np.ndarray:
    """fusekit::rng::bernoulli(seed, stream, e, p[e]) for e in [0, p.size)."""
    p = np.asarray(p, dtype=np.float32).reshape(-1)
    n = p.size
    e = np.arange(n, dtype=np.uint64)
    pf = np.where(p > 0, np.minimum(p, np.float32(1)), np.float32(0)).astype(np.float64) * 16777216.0  # exact
    t = np.ceil(pf).astype(np.uint64)
    b = (philox_words(seed, stream, e >> np.uint64(2)) >> ((e & np.uint64(3)) * np.uint64(8))) & np.uint64(0xFF)
    tb, tl = t >> np.uint64(16), t & np.uint64(0xFFFF)
    keep = b < tb
    eq = np.nonzero(b == tb)[0]
    if eq.size:
        r = philox_words(seed, stream, np.uint64(1 << 62) + e[eq]) >> np.uint64(16)
        keep[eq] = r < tl[eq]
    return keep


class FusekitBernoulli:
    """Context manager: torch.bernoulli draws fusekit's mask for model 0, 1, ... in call order, as DARE
    (draw="bernoulli") or DELLA (draw="uniform") draws it."""

    def __init__(self, seed: int, name: str, draw: str):
        self.seed, self.name, self.draw, self.calls = seed, name, draw, 0

    def __enter__(self):
        self.orig = torch.bernoulli

        def fake(p, *args, **kwargs):
            stream = model_stream(self.name, self.calls)
            self.calls += 1
            if self.draw == "bernoulli":
                keep = torch.from_numpy(philox_bernoulli(self.seed, stream, p.float().numpy()))
                return keep.reshape(p.shape).to(p.dtype)
            u = torch.from_numpy(philox_uniform(self.seed, stream, p.numel()))
            return (u.reshape(p.shape) < p.float()).to(p.dtype)

        torch.bernoulli = fake
        return self

    def __exit__(self, *exc):
        torch.bernoulli = self.orig


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "tests" / "data" / "merge"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240905)
    blob = bytearray()
    cases = []

    def arr(a):
        off = len(blob)
        blob.extend(np.ascontiguousarray(a, dtype="<f4").tobytes())
        return off

    def data(shape, n_models, spread=0.05, sparse=False, dtype=torch.float32):
        base = rng.standard_normal(shape).astype(np.float32)
        xs = []
        for i in range(n_models):
            d = (rng.standard_normal(shape) * spread * (1 + 0.5 * i)).astype(np.float32)
            if sparse:
                d[rng.random(shape) < 0.4] = 0.0
            xs.append(base + d)
        to = lambda a: torch.from_numpy(a).to(dtype)  # noqa: E731
        return to(base), [to(x) for x in xs]

    def case(cid, method, shape, n_models, params=None, per_model=None, base=True, seed=None, compare="close",
             rtol=1e-5, atol=1e-6, dtype=torch.float32, spread=0.05, sparse=False, note=""):
        params = dict(params or {})
        per_model = per_model or []
        b, xs = data(shape, n_models, spread, sparse, dtype)
        name = f"model.layers.{len(cases)}.mlp.up_proj.weight"
        tensors = ([b] if base else []) + xs
        group = TensorGroup.from_tensors(tensors, base_index=0 if base else None, name=name)
        first = 1 if base else 0
        mk_params = dict(params)
        for key in {k for pm in per_model for k in pm}:
            mk_params[key] = {first + i: pm[key] for i, pm in enumerate(per_model) if key in pm}
        m = registry.get(method)
        if seed is not None:
            with FusekitBernoulli(seed, name, "bernoulli" if method.startswith("dare") else "uniform"):
                (res,) = m([group], parameters=mk_params)
        else:
            (res,) = m([group], parameters=mk_params)
        entry = {
            "id": cid, "method": method, "tensor": name, "shape": list(shape), "seed": seed or 0,
            "dtype": str(dtype).replace("torch.", ""), "params": params, "per_model": per_model,
            "compare": compare, "rtol": rtol, "atol": atol, "note": note,
            "base": arr(b.float().numpy()) if base else None,
            "inputs": [arr(x.float().numpy()) for x in xs],
            "output": arr(res.float().numpy()),
        }
        cases.append(entry)

    w3 = [{"weight": 0.5}, {"weight": 0.3}, {"weight": 0.2}]
    case("linear", "linear", (37, 29), 3, {}, w3, base=False)
    case("linear_unnormalized", "linear", (101,), 2, {"normalize": False}, [{"weight": 0.7}, {"weight": -0.2}], base=False)
    case("linear_bf16", "linear", (33, 17), 3, {}, w3, base=False, dtype=torch.bfloat16, rtol=8e-3, atol=1e-2,
         note="mergekit computes bf16 inputs in fp32 and rounds once, as fusekit does")
    case("task_arithmetic", "task_arithmetic", (37, 29), 3, {"lambda": 0.7}, w3)
    case("task_arithmetic_normalized", "task_arithmetic", (257,), 2, {"normalize": True}, [{"weight": 0.6}, {"weight": 0.9}])
    for d in (0.5, 0.3):
        case(f"ties_d{d}", "ties", (37, 29), 3, {}, [dict(w, density=d) for w in w3])
    case("ties_mixed_density_lambda", "ties", (1, 1001), 4, {"lambda": 0.8, "normalize": False},
         [{"weight": 0.4, "density": 0.7}, {"weight": 0.3, "density": 0.2}, {"weight": 0.2, "density": 0.5},
          {"weight": 0.1, "density": 0.9}])
    case("ties_rescale", "ties", (513,), 3, {"rescale": True}, [dict(w, density=0.4) for w in w3])
    case("breadcrumbs", "breadcrumbs", (37, 29), 3, {}, [dict(w, density=0.6, gamma=0.05) for w in w3])
    case("breadcrumbs_ties", "breadcrumbs_ties", (41, 23), 3, {"normalize": True},
         [dict(w, density=0.7, gamma=0.02) for w in w3])
    case("dare_ties", "dare_ties", (37, 29), 3, {}, [dict(w, density=0.6) for w in w3], seed=11)
    case("dare_linear", "dare_linear", (601,), 4, {"normalize": True},
         [{"weight": 0.25, "density": 0.5}] * 4, seed=12)
    case("dare_linear_no_rescale", "dare_linear", (31, 7), 2, {"rescale": False},
         [{"weight": 0.5, "density": 0.3}, {"weight": 0.5, "density": 0.8}], seed=13)
    case("della", "della", (37, 29), 3, {}, [dict(w, density=0.5, epsilon=0.1) for w in w3], seed=14,
         note="fp32 probabilities: a mask bit may differ where u and p agree to 1 ulp (never observed)")
    case("della_linear", "della_linear", (129,), 3, {"lambda": 1.2},
         [dict(w, density=0.6, epsilon=0.2) for w in w3], seed=15)
    case("sce", "sce", (37, 29), 3, {})
    case("sce_topk", "sce", (61, 19), 4, {"select_topk": 0.3})
    case("sce_topk_small", "sce", (4, 9), 2, {"select_topk": 0.1})
    for t in (0.0, 0.3, 0.7):
        case(f"slerp_t{t}", "slerp", (37, 29), 1, {"t": t}, spread=1.0)
    case("slerp_near_parallel", "slerp", (211,), 1, {"t": 0.4}, spread=1e-3)
    case("nuslerp_flatten_base", "nuslerp", (37, 29), 2, {}, [{"weight": 0.3}, {"weight": 0.7}], spread=0.5)
    case("nuslerp_rows_nobase", "nuslerp", (13, 11), 2, {"nuslerp_flatten": False}, [{"weight": 1.0}, {"weight": 2.0}],
         base=False)
    case("nuslerp_columns_base", "nuslerp", (13, 11), 2, {"nuslerp_flatten": False, "nuslerp_row_wise": True},
         [{"weight": 0.5}, {"weight": 0.5}])
    case("multislerp_base", "multislerp", (37, 29), 3, {}, w3, spread=0.5)
    case("multislerp_nobase", "multislerp", (301,), 4, {}, [{"weight": 1.0}] * 4, base=False, spread=0.5)
    case("karcher", "karcher", (37, 29), 3, {}, base=False, spread=1.0,
         note="mergekit ignores weights; fusekit with equal weights matches")
    case("karcher_5", "karcher", (257,), 5, {"max_iter": 20, "tol": 1e-7}, base=False, spread=1.0)
    case("model_stock", "model_stock", (37, 29), 3, {}, spread=0.3)
    case("model_stock_filter_wise", "model_stock", (17, 23), 4, {"filter_wise": True}, spread=0.3)
    case("nearswap", "nearswap", (37, 29), 1, {"t": 0.02}, spread=0.05)
    case("arcee_fusion", "arcee_fusion", (37, 29), 1, {}, spread=0.2, compare="mask",
         note="exact quantiles in both (fewer than 1e6 elements); elements whose importance is within rounding "
              "of the threshold may differ")
    case("ram", "ram", (37, 29), 3, {}, sparse=True)
    case("ramplus_tl", "ramplus_tl", (37, 29), 4, {"r": 0.3, "alpha": 0.5}, sparse=True)
    case("passthrough", "passthrough", (37, 29), 1, {}, [{"scale": 0.5}], base=False)

    (out / "golden.bin").write_bytes(bytes(blob))
    manifest = {
        "generator": "tests/merge/golden/make_mergekit_golden.py",
        "mergekit_version": md.version("mergekit"),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "cases": cases,
    }
    (out / "golden.json").write_text(json.dumps(manifest, indent=1))
    print(f"wrote {len(cases)} cases ({len(blob)} bytes) with mergekit {manifest['mergekit_version']} to {out}")


if __name__ == "__main__":
    main()
