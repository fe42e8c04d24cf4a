"""The norm ratio table: each kernel's median time over the median time of
numpy.copyto of the same bytes, measured interleaved in one run (the
machine may be shared and noisy: ratios measured side by side hold better
than absolute times), with torch.nn.functional and ONNX Runtime as peers
when they import. One thread everywhere.

Two groups, each with only its own arrays alive (at 4096 x 1024 float32
an input and an output already fill a 32 MiB L3; more live arrays change
what stays cached): the one-input norms against one copy, and the fused
residual forms (two inputs, two outputs) against two copies.

Run: OPENBLAS_NUM_THREADS=1 NORMKIT_NUM_THREADS=1 python benches/norm_compare.py [rows cols [rounds]]
"""

from __future__ import annotations

import sys
import time

import numpy as np

import normkit
from normkit.compare import OnnxNode, cpu_model


def peers(x, w, b, y):
    out = {}
    cols = x.shape[-1]
    try:
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(1)
        xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
        out["torch rms_norm weight (allocates its output)"] = lambda: F.rms_norm(xt, (cols,), wt, 1e-6)
        out["torch layer_norm weight+bias (allocates its output)"] = lambda: F.layer_norm(xt, (cols,), wt, bt, 1e-5)
    except ImportError:
        print("torch not installed: skipped")
    try:
        out["onnxruntime SimplifiedLayerNormalization weight"] = OnnxNode(
            "SimplifiedLayerNormalization", 17, x, y, {"w": w}, axis=-1, epsilon=1e-5)
        out["onnxruntime LayerNormalization weight+bias"] = OnnxNode(
            "LayerNormalization", 17, x, y, {"w": w, "b": b}, axis=-1, epsilon=1e-5)
    except ImportError:
        print("onnx / onnxruntime not installed: skipped")
    return out


def one_input(x, w, b):
    y = np.empty_like(x)
    funcs = {
        "numpy.copyto": lambda: np.copyto(y, x),
        "normkit rms_norm": lambda: normkit.rms_norm(x, out=y),
        "normkit rms_norm weight": lambda: normkit.rms_norm(x, w, out=y),
        "normkit layer_norm": lambda: normkit.layer_norm(x, out=y),
        "normkit layer_norm weight+bias": lambda: normkit.layer_norm(x, w, b, out=y),
        "normkit crms_norm weight": lambda: normkit.crms_norm(x, w, out=y),
    }
    funcs.update(peers(x, w, b, y))
    return funcs, 2 * x.nbytes


def fused(x, w, b):
    r = np.random.default_rng(1).standard_normal(x.shape).astype(x.dtype)
    y, s = np.empty_like(x), np.empty_like(x)
    funcs = {
        "numpy.copyto x2 (x -> y, r -> s)": lambda: (np.copyto(y, x), np.copyto(s, r)),
        "numpy add + normkit rms_norm weight": lambda: (np.add(x, r, out=s), normkit.rms_norm(s, w, out=y)),
        "normkit add_rms_norm weight": lambda: normkit.add_rms_norm(x, r, w, out=(y, s)),
        "normkit add_layer_norm weight+bias": lambda: normkit.add_layer_norm(x, r, w, b, out=(y, s)),
    }
    return funcs, 4 * x.nbytes


def measure(funcs, rounds):
    times = {name: [] for name in funcs}
    for _ in range(rounds):  # interleaved, so drift hits every candidate alike
        for name, f in funcs.items():
            f()  # untimed: the caches as this candidate leaves them
            for _ in range(3):
                t0 = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) for name, t in times.items()}


def table(title, med, nbytes):
    base = next(iter(med.values()))
    print(f"\n{title}")
    print("| kernel | median ms | / copy | GB/s |")
    print("|---|---|---|---|")
    for name, t in med.items():
        print(f"| {name} | {t * 1e3:.3f} | {t / base:.2f} | {nbytes / t / 1e9:.1f} |")


def main():
    rows, cols = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (4096, 1024)
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    normkit.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    w = (1 + 0.1 * rng.standard_normal(cols)).astype(np.float32)
    b = (0.1 * rng.standard_normal(cols)).astype(np.float32)
    print(f"cpu: {cpu_model()}")
    print(f"{rows}x{cols} float32, 1 thread, {rounds} rounds x (1 untimed + 3 timed calls) each, medians; {normkit.cpu_info()}")
    funcs, nbytes = one_input(x, w, b)
    table("one input, one output (GB/s: 1 read + 1 write of the array)", measure(funcs, rounds), nbytes)
    del funcs
    funcs, nbytes = fused(x, w, b)
    table("fused residual forms (GB/s: 2 reads + 2 writes)", measure(funcs, rounds), nbytes)


if __name__ == "__main__":
    main()
