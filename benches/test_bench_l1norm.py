"""pytest-benchmark: the L1 norm on 4096 x 1024 rows, one thread, out=
given, against copies of the same bytes and a NumPy float32 LayerNorm.

Run: python -m pytest benches/test_bench_l1norm.py --benchmark-enable
(elements/s = 4096 * 1024 / median time).
"""

from __future__ import annotations

import numpy as np
import pytest

import normkit

ROWS, COLS = 4096, 1024
OUT_SCALE = 4 / 127  # |z| <= 4 maps onto the int8 range


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x8 = rng.integers(-128, 128, (ROWS, COLS)).astype(np.int8)
    return {
        "x8": x8,
        "w8": rng.integers(-128, 128, COLS).astype(np.int8),
        "b8": rng.integers(-128, 128, COLS).astype(np.int8),
        "xf": (x8 * np.float32(0.03)).astype(np.float32),
        "y8": np.empty_like(x8),
        "yf": np.empty((ROWS, COLS), np.float32),
    }


def numpy_layer_norm(x, out, eps=1e-5):
    """float32 LayerNorm without affine, as a NumPy user would write it."""
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    np.subtract(x, mean, out=out)
    out *= 1 / np.sqrt(var + eps)
    return out


def _group(benchmark, name):
    benchmark.group = f"l1norm {ROWS}x{COLS}"
    benchmark.name = name
    benchmark.extra_info["elements"] = ROWS * COLS


def test_l1_norm_int8(benchmark, data):
    _group(benchmark, "l1_norm int8")
    benchmark(normkit.l1_norm, data["x8"], out_scale=OUT_SCALE, out=data["y8"])


def test_l1_norm_int8_weight_bias(benchmark, data):
    _group(benchmark, "l1_norm int8 weight+bias")
    benchmark(normkit.l1_norm, data["x8"], data["w8"], data["b8"], out_scale=OUT_SCALE, out=data["y8"])


def test_copy_int8(benchmark, data):
    _group(benchmark, "numpy.copyto int8")
    benchmark(np.copyto, data["y8"], data["x8"])


def test_l1_norm_float32(benchmark, data):
    _group(benchmark, "l1_norm float32")
    benchmark(normkit.l1_norm, data["xf"], out=data["yf"])


def test_numpy_layer_norm_float32(benchmark, data):
    _group(benchmark, "numpy layer norm float32")
    benchmark(numpy_layer_norm, data["xf"], data["yf"])


def test_copy_float32(benchmark, data):
    _group(benchmark, "numpy.copyto float32")
    benchmark(np.copyto, data["yf"], data["xf"])


# normkit.layer_norm comes from another branch: benchmarked once merged.
if hasattr(normkit, "layer_norm"):

    def test_normkit_layer_norm_float32(benchmark, data):
        _group(benchmark, "normkit.layer_norm float32")
        benchmark(normkit.layer_norm, data["xf"], out=data["yf"])
