"""pytest-benchmark: RMSNorm / LayerNorm / CRMSNorm and the fused residual
forms on 4096 x 1024 float32 rows, one thread, out= given, against
numpy.copyto of the same bytes, torch.nn.functional and ONNX Runtime (both
optional peers: their benchmarks are skipped when they do not import).

Run: OPENBLAS_NUM_THREADS=1 NORMKIT_NUM_THREADS=1 \\
     python -m pytest benches/test_bench_norm.py --benchmark-enable
For the ratio table (time / copy time, medians, same run) use
``python benches/norm_compare.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

import normkit

ROWS, COLS = 4096, 1024


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    return {
        "x": f32(rng.standard_normal((ROWS, COLS))),
        "r": f32(rng.standard_normal((ROWS, COLS))),
        "w": f32(1 + 0.1 * rng.standard_normal(COLS)),
        "b": f32(0.1 * rng.standard_normal(COLS)),
        "y": np.empty((ROWS, COLS), np.float32),
        "s": np.empty((ROWS, COLS), np.float32),
    }


def _group(benchmark, name, arrays=2):
    """``arrays``: how many arrays of ROWS x COLS the call reads or writes
    (the fused forms and their yardstick: four)."""
    benchmark.group = f"norm {ROWS}x{COLS} float32"
    benchmark.name = name
    benchmark.extra_info["bytes"] = arrays * ROWS * COLS * 4


def test_copy(benchmark, data):
    _group(benchmark, "numpy.copyto")
    benchmark(np.copyto, data["y"], data["x"])


def test_copy_two(benchmark, data):
    """The fused forms' yardstick: x -> y and r -> s, the four arrays they
    read and write (twice one copy of x touches half their bytes, which
    the L3 can partly keep between calls)."""
    _group(benchmark, "numpy.copyto x2 (x -> y, r -> s)", arrays=4)
    benchmark(lambda: (np.copyto(data["y"], data["x"]), np.copyto(data["s"], data["r"])))


def test_rms_norm(benchmark, data):
    _group(benchmark, "normkit.rms_norm")
    benchmark(normkit.rms_norm, data["x"], out=data["y"])


def test_rms_norm_weight(benchmark, data):
    _group(benchmark, "normkit.rms_norm weight")
    benchmark(normkit.rms_norm, data["x"], data["w"], out=data["y"])


def test_layer_norm(benchmark, data):
    _group(benchmark, "normkit.layer_norm")
    benchmark(normkit.layer_norm, data["x"], out=data["y"])


def test_layer_norm_weight_bias(benchmark, data):
    _group(benchmark, "normkit.layer_norm weight+bias")
    benchmark(normkit.layer_norm, data["x"], data["w"], data["b"], out=data["y"])


def test_crms_norm(benchmark, data):
    _group(benchmark, "normkit.crms_norm weight")
    benchmark(normkit.crms_norm, data["x"], data["w"], out=data["y"])


def test_add_rms_norm(benchmark, data):
    _group(benchmark, "normkit.add_rms_norm weight", arrays=4)
    benchmark(normkit.add_rms_norm, data["x"], data["r"], data["w"], out=(data["y"], data["s"]))


def test_add_layer_norm(benchmark, data):
    _group(benchmark, "normkit.add_layer_norm weight+bias", arrays=4)
    benchmark(normkit.add_layer_norm, data["x"], data["r"], data["w"], data["b"], out=(data["y"], data["s"]))


def test_torch_layer_norm(benchmark, data):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    x, w, b = (torch.from_numpy(data[k]) for k in "xwb")
    _group(benchmark, "torch layer_norm weight+bias")
    benchmark(torch.nn.functional.layer_norm, x, (COLS,), w, b, 1e-5)


def test_torch_rms_norm(benchmark, data):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    x, w = torch.from_numpy(data["x"]), torch.from_numpy(data["w"])
    _group(benchmark, "torch rms_norm weight")
    benchmark(torch.nn.functional.rms_norm, x, (COLS,), w, 1e-6)


@pytest.mark.parametrize("op", ["LayerNormalization", "SimplifiedLayerNormalization"])
def test_onnxruntime(benchmark, data, op):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from normkit.compare import OnnxNode

    consts = {"w": data["w"], "b": data["b"]} if op == "LayerNormalization" else {"w": data["w"]}
    run = OnnxNode(op, 17, data["x"], data["y"], consts, axis=-1, epsilon=1e-5)
    _group(benchmark, f"onnxruntime {op}")
    benchmark(run)
