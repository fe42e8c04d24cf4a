"""One long row split across two threads, through the public API.

With two threads, a call with fewer rows than threads whose rows have at
least ``rows::SPLIT_MIN_ELEMENTS`` (2**20) elements splits each row into
chunks that run on the pool and combine their partial sums exactly
(tests/split_kernels.rs checks the kernels chunk by chunk). Here: the
results stay within the documented error of a float64 computation, and
within twice it of the one-thread (unsplit) results; special values in
one part of the row still rule the whole row.
"""

from __future__ import annotations

import numpy as np
import pytest

import normkit

N = (1 << 20) + 13  # above the split threshold, chunks at odd offsets


def softmax64(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def norm64(kind, x, eps, w=None, b=None):
    c = x.mean() if kind == "layer" else 0.0
    q = ((x - c) ** 2).sum() + (x.sum() ** 2 if kind == "crms" else 0.0)
    y = (x - c) / np.sqrt(q / (len(x) + (kind == "crms")) + eps)
    return y * (1.0 if w is None else w) + (0.0 if b is None else b)


# The scalar level (NORMKIT_ISA=scalar) sums in f64 one term after another,
# the vector levels in blocks: on rows this long its float64 error grows
# with the length (Higham, "Accuracy and Stability of Numerical
# Algorithms", eq. 4.4; measured 8.4e-13 relative at N, scalar).
SCALAR = normkit.cpu_info()["active"] == "scalar"
F64_SUM = N * 2.0**-53 if SCALAR else 0.0
TOL = {np.float32: (2e-6, 1e-5), np.float64: (1e-13 + F64_SUM, 1e-12 + F64_SUM)}


def unsplit(f):
    """f() with one thread: the unsplit kernels."""
    before = normkit.get_num_threads()
    normkit.set_num_threads(1)
    try:
        return f()
    finally:
        normkit.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algorithm", ["auto", *normkit._native.SOFTMAX_ALGORITHMS])
def test_softmax_of_a_split_row(two_threads, dtype, algorithm):
    x = (np.random.default_rng(1).standard_normal(N) * 6).astype(dtype)
    want = softmax64(x.astype(np.float64))
    rel = TOL[dtype][0]
    y = normkit.softmax(x, algorithm=algorithm)
    assert np.all(np.abs(y - want) <= rel * want + 1e-300)
    y1 = unsplit(lambda: normkit.softmax(x, algorithm=algorithm))
    assert np.all(np.abs(y - y1) <= 2 * rel * want + 1e-300)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_and_logsumexp_of_a_split_row(two_threads, dtype):
    x = (np.random.default_rng(2).standard_normal(N) * 6).astype(dtype)
    x64 = x.astype(np.float64)
    m = x64.max()
    lse = m + np.log(np.exp(x64 - m).sum())
    f32 = dtype == np.float32
    y = normkit.log_softmax(x)
    assert np.max(np.abs(y - (x64 - lse))) <= (1e-5 if f32 else 1e-12 + F64_SUM)
    got = float(normkit.logsumexp(x))
    assert abs(got - lse) <= (2e-7 + 2**-24 * abs(lse) if f32 else 2e-15 + 2**-51 * abs(lse) + F64_SUM)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["layer", "rms", "crms"])
def test_norms_of_a_split_row(two_threads, dtype, kind):
    rng = np.random.default_rng(3)
    # An offset row with a trend: the chunk means differ by far more than
    # the spread, so Chan's combination term carries most of the variance.
    x = (1e4 + np.linspace(0, 50, N) + rng.standard_normal(N)).astype(dtype)
    w = rng.uniform(0.5, 1.5, N).astype(dtype)
    b = rng.uniform(-0.5, 0.5, N).astype(dtype)
    eps = 1e-5
    call = {
        "layer": lambda: normkit.layer_norm(x, w, b, eps=eps, return_stats=True),
        "rms": lambda: normkit.rms_norm(x, w, eps=eps, return_stats=True),
        "crms": lambda: normkit.crms_norm(x, w, eps=eps, return_stats=True),
    }[kind]
    y, *stats = call()
    mean, rstd = stats if kind == "layer" else (0.0, stats[0])
    bias = b if kind == "layer" else None
    want = norm64(kind, x.astype(np.float64), eps, w.astype(np.float64), bias)
    rel = TOL[dtype][1]
    assert np.all(np.abs(y - want) <= rel * (np.abs(want) + np.abs(w)))
    x64 = x.astype(np.float64)
    want_mean = x64.mean() if kind == "layer" else 0.0
    q = ((x64 - want_mean) ** 2).sum() + (x64.sum() ** 2 if kind == "crms" else 0.0)
    want_rstd = 1 / np.sqrt(q / (N + (kind == "crms")) + eps)
    assert abs(np.asarray(mean).item() - want_mean) <= rel * (abs(want_mean) + 1 / want_rstd)
    assert abs(np.asarray(rstd).item() - want_rstd) <= rel * want_rstd
    y1 = unsplit(call)[0]
    assert np.all(np.abs(y - y1) <= 2 * rel * (np.abs(want) + np.abs(w)))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_special_value_in_one_part_rules_the_whole_row(two_threads, value):
    x = np.random.default_rng(4).standard_normal(N).astype(np.float32)
    x[N - 5] = value
    assert np.isnan(normkit.softmax(x)).all()
    assert np.isnan(normkit.softmax(x, algorithm="two_pass")).all()
    assert np.isnan(normkit.layer_norm(x)).all()
    assert np.isnan(normkit.rms_norm(x)).all()
    # -inf: that entry alone becomes 0, the rest of the row is untouched.
    x[N - 5] = -np.inf
    y = normkit.softmax(x)
    assert y[N - 5] == 0 and abs(float(y.sum(dtype=np.float64)) - 1) <= 1e-5


def test_in_place_split_row(two_threads):
    x = np.random.default_rng(5).standard_normal(N).astype(np.float32)
    want = normkit.softmax(x)
    normkit.softmax(x, out=x)
    np.testing.assert_array_equal(x, want)


# Float32 and float64 rows of at least 8 MiB (the kernel's
# LOG_TWO_PASS_MIN_BYTES) take log_softmax in two passes, split or not: the
# pair sum, which also finds the max, then the write; a row the pair sum
# does not represent (NaN, +inf, x > 2^18) takes three passes, -inf is
# clamped in the sum.
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", [None, np.nan, np.inf, -np.inf, 3e5])
def test_log_softmax_of_a_long_row_in_two_passes(threads, dtype, value):
    from scipy import special as sp
    n = (1 << 23) // np.dtype(dtype).itemsize + 13
    x = (np.random.default_rng(6).standard_normal(n) * 6).astype(dtype)
    if value is not None:
        x[n - 5] = value
    with np.errstate(invalid="ignore"):  # scipy's inf - inf for a +inf entry
        want = sp.log_softmax(x.astype(np.float64))
    before = normkit.get_num_threads()
    normkit.set_num_threads(threads)
    try:
        y = normkit.log_softmax(x)
    finally:
        normkit.set_num_threads(before)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    finite = np.isfinite(want)
    np.testing.assert_array_equal(y[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
    err = np.abs(y[finite] - want[finite])
    bound = 1e-5 + 1e-7 * np.abs(want[finite]) if dtype == np.float32 else 1e-12 + F64_SUM + 1e-15 * np.abs(want[finite])
    assert np.all(err <= bound)
