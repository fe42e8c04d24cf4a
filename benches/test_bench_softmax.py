"""pytest-benchmark: the Python softmax calls on one thread with out= given,
next to numpy.copyto of the same array (the yardstick) and the peers that
are installed.

    OPENBLAS_NUM_THREADS=1 python -m pytest benches/test_bench_softmax.py --benchmark-enable

Compare within a group: time / copy is the number the README quotes.
"""

from __future__ import annotations

import numpy as np
import pytest

import normkit

SHAPES = {"4096x1024": (4096, 1024), "1x16M": (1, 1 << 24), "64x128": (64, 128)}
ALGORITHMS = list(normkit.SOFTMAX_ALGORITHMS)


@pytest.fixture(scope="module", params=list(SHAPES))
def arrays(request):
    x = np.random.default_rng(0).standard_normal(SHAPES[request.param]).astype(np.float32)
    return request.param, x, np.empty_like(x)


def _name(benchmark, shape, name):
    benchmark.group = f"softmax {shape} float32"
    benchmark.name = name


def test_copy(benchmark, arrays):
    shape, x, y = arrays
    _name(benchmark, shape, "numpy.copyto")
    benchmark(np.copyto, y, x)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_normkit_softmax(benchmark, arrays, algorithm):
    shape, x, y = arrays
    _name(benchmark, shape, f"normkit {algorithm}")
    benchmark(normkit.softmax, x, algorithm=algorithm, out=y)


def test_normkit_log_softmax(benchmark, arrays):
    shape, x, y = arrays
    _name(benchmark, shape, "normkit log_softmax")
    benchmark(normkit.log_softmax, x, out=y)


def test_scipy_softmax(benchmark, arrays):
    special = pytest.importorskip("scipy.special")
    shape, x, _ = arrays
    _name(benchmark, shape, "scipy.special.softmax")
    benchmark(special.softmax, x, axis=-1)


def test_onnxruntime_softmax(benchmark, arrays):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from normkit import compare

    shape, x, y = arrays
    case = compare.softmax_case(x)
    _name(benchmark, shape, "onnxruntime Softmax")
    benchmark(case.impls["onnxruntime"])
