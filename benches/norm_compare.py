"""The norm ratio table: each kernel's median time over the median time of
numpy.copyto of the same bytes, measured interleaved in one run (the
machine may be shared and noisy: ratios measured side by side hold better
than absolute times), with torch.nn.functional and ONNX Runtime as peers
when they import. One thread everywhere.

Run: OPENBLAS_NUM_THREADS=1 NORMKIT_NUM_THREADS=1 python benches/norm_compare.py [rows cols [rounds]]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

import normkit

sys.path.insert(0, os.path.dirname(__file__))


def candidates(x, r, w, b, y, s):
    cols = x.shape[-1]
    out = {
        "numpy.copyto": lambda: np.copyto(y, x),
        "normkit rms_norm": lambda: normkit.rms_norm(x, out=y),
        "normkit rms_norm weight": lambda: normkit.rms_norm(x, w, out=y),
        "normkit layer_norm": lambda: normkit.layer_norm(x, out=y),
        "normkit layer_norm weight+bias": lambda: normkit.layer_norm(x, w, b, out=y),
        "normkit crms_norm weight": lambda: normkit.crms_norm(x, w, out=y),
        "normkit add_rms_norm weight (2 in, 2 out)": lambda: normkit.add_rms_norm(x, r, w, out=(y, s)),
        "normkit add_layer_norm weight+bias (2 in, 2 out)": lambda: normkit.add_layer_norm(x, r, w, b, out=(y, s)),
    }
    try:
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(1)
        xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
        out["torch rms_norm weight (allocates)"] = lambda: F.rms_norm(xt, (cols,), wt, 1e-6)
        out["torch layer_norm weight+bias (allocates)"] = lambda: F.layer_norm(xt, (cols,), wt, bt, 1e-5)
    except ImportError:
        print("torch not installed: skipped")
    try:
        from norm_peers import ort_norm

        out["onnxruntime SimplifiedLayerNormalization weight"] = ort_norm("SimplifiedLayerNormalization", x, w, b, y)
        out["onnxruntime LayerNormalization weight+bias"] = ort_norm("LayerNormalization", x, w, b, y)
    except ImportError:
        print("onnx / onnxruntime not installed: skipped")
    return out


def main():
    rows, cols = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (4096, 1024)
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    normkit.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    r = rng.standard_normal((rows, cols)).astype(np.float32)
    w = (1 + 0.1 * rng.standard_normal(cols)).astype(np.float32)
    b = (0.1 * rng.standard_normal(cols)).astype(np.float32)
    y, s = np.empty_like(x), np.empty_like(x)
    funcs = candidates(x, r, w, b, y, s)
    times = {name: [] for name in funcs}
    for f in funcs.values():
        f()
    for _ in range(rounds):  # interleaved, so drift hits every candidate alike
        for name, f in funcs.items():
            f()  # untimed: the caches as this candidate leaves them
            for _ in range(3):
                t0 = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t0)
    med = {name: float(np.median(t)) for name, t in times.items()}
    copy = med["numpy.copyto"]
    nbytes = 2 * x.nbytes
    print(f"{rows}x{cols} float32, 1 thread, {rounds} rounds x (1 untimed + 3 timed calls) each, medians; {normkit.cpu_info()}")
    print("| kernel | median ms | / copyto | GB/s (1 read + 1 write) |")
    print("|---|---|---|---|")
    for name, t in med.items():
        print(f"| {name} | {t * 1e3:.3f} | {t / copy:.2f} | {nbytes / t / 1e9:.1f} |")


if __name__ == "__main__":
    main()
