"""Stress of the Python API: hypothesis over shapes, strides (negative,
zero-stride broadcast views), dtypes and aliasing ``out=``, all against
float64 references; many Python threads on shared read-only inputs against
single-threaded results; huge rows (> 2^31 elements) behind
NORMKIT_HUGE_TESTS=1."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import scipy.special as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import normkit

FLOAT_DTYPES = [np.float32, np.float64]
ALL_DTYPES = FLOAT_DTYPES + [np.float16, np.int8, np.int16, np.int32, np.uint8, np.bool_]
# Relative / absolute tolerances by result dtype (softmax: relative to the
# value; log_softmax and l1_norm: absolute plus relative).
RTOL = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-12}
ATOL = {np.float16: 2e-2, np.float32: 2e-5, np.float64: 1e-11}
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def softmax_ref(x, axis):
    return sp.softmax(x.astype(np.float64), axis=axis)


def log_softmax_ref(x, axis):
    return sp.log_softmax(x.astype(np.float64), axis=axis)


def l1_ref(x, eps=1e-5):
    x = x.astype(np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    # A constant row's mean is its value (as normkit.l1_norm documents); a
    # rounded float64 mean would leave x - mean = 1 ulp, divided by eps.
    constant = (x == x[..., :1]).all(axis=-1, keepdims=True)
    mean = np.where(constant, x[..., :1], mean)
    s = np.abs(x - mean).mean(axis=-1, keepdims=True)
    return (x - mean) / (s + eps)


def layer_ref(x, eps=1e-5):
    x = x.astype(np.float64)
    d = x - x.mean(axis=-1, keepdims=True)
    return d / np.sqrt((d * d).mean(axis=-1, keepdims=True) + eps)


def rms_ref(x, eps=1e-6):
    x = x.astype(np.float64)
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps)


def check(op, got, x, axis):
    """``got`` (any dtype) against the float64 reference of ``op``."""
    kind = np.dtype(got.dtype).type
    if op == "softmax":
        want = softmax_ref(x, axis)
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=RTOL[kind], atol=np.finfo(kind).tiny)
    elif op == "log_softmax":
        want = log_softmax_ref(x, axis)
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=RTOL[kind], atol=ATOL[kind])
    else:
        ref = {"l1_norm": l1_ref, "layer_norm": layer_ref, "rms_norm": rms_ref}[op]
        want = np.moveaxis(ref(np.moveaxis(x, axis, -1)), -1, axis)
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=RTOL[kind] * 10, atol=ATOL[kind] * 10)


def run(op, x, axis, out=None):
    if op == "softmax":
        return normkit.softmax(x, axis=axis, out=out)
    if op == "log_softmax":
        return normkit.log_softmax(x, axis=axis, out=out)
    if op == "layer_norm":
        return normkit.layer_norm(x, axis=axis, out=out)
    if op == "rms_norm":
        return normkit.rms_norm(x, axis=axis, out=out)
    assert axis in (-1, x.ndim - 1)
    return normkit.l1_norm(x, out=out)


def check_int8_l1_norm(x, gain=20.0):
    """The int8 mode: within 0.56 of clip((x - mean) / s * gain) (its
    documented contract; a constant row gives 0)."""
    got = normkit.l1_norm(x, out_scale=1 / gain)
    assert got.dtype == np.int8 and got.shape == x.shape
    xf = x.astype(np.float64)
    d = xf - xf.mean(axis=-1, keepdims=True)
    s = np.abs(d).mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.where(s > 0, np.clip(d / s * gain, -128, 127), 0.0)
    assert np.max(np.abs(got - want), initial=0.0) <= 0.56


OPS = st.sampled_from(["softmax", "log_softmax", "l1_norm", "layer_norm", "rms_norm"])


@st.composite
def strided_arrays(draw, dtypes=ALL_DTYPES):
    """An array of 1-3 dims viewed with random steps (negative included),
    maybe transposed, so its memory is not contiguous."""
    dtype = draw(st.sampled_from(dtypes))
    ndim = draw(st.integers(1, 3))
    shape = draw(st.lists(st.integers(1, 9), min_size=ndim, max_size=ndim))
    steps = draw(st.lists(st.sampled_from([1, 2, 3, -1, -2]), min_size=ndim, max_size=ndim))
    base_shape = [n * abs(s) for n, s in zip(shape, steps)]
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if dtype == np.bool_:
        base = rng.integers(0, 2, base_shape).astype(bool)
    elif np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        base = rng.integers(max(info.min, -100), min(info.max, 100), base_shape).astype(dtype)
    else:
        base = (rng.standard_normal(base_shape) * 4).astype(dtype)
    x = base[tuple(slice(None, None, s) for s in steps)]
    if draw(st.booleans()):
        x = x.T
    return x


@SETTINGS
@given(strided_arrays(), OPS, st.data())
def test_strided_views_of_every_dtype_match_float64(x, op, data):
    axis = -1 if op == "l1_norm" else data.draw(st.integers(-x.ndim, x.ndim - 1))
    before = x.copy()
    if op == "l1_norm" and x.dtype == np.int8:
        check_int8_l1_norm(x)
        np.testing.assert_array_equal(x, before)
        return
    got = run(op, x, axis)
    assert got.shape == x.shape
    assert got.dtype == np.result_type(x.dtype, np.float16)
    check(op, got, x, axis)
    np.testing.assert_array_equal(x, before)  # the input is never written


@SETTINGS
@given(strided_arrays(FLOAT_DTYPES), OPS, st.data())
def test_out_aliasing_the_input(x, op, data):
    """out=x (in place, any strides) and out a shifted view of x's buffer."""
    axis = -1 if op == "l1_norm" else data.draw(st.integers(-x.ndim, x.ndim - 1))
    want = run(op, x.copy(), axis)
    y = x.copy()
    assert run(op, y, axis, out=y) is y
    assert_same(op, y, want)
    # A partially overlapping out: the same buffer shifted by one element.
    flat = np.concatenate([x.ravel(), np.zeros(1, x.dtype)])
    src = flat[:-1].reshape(x.shape)
    dst = flat[1:].reshape(x.shape)
    assert run(op, src, axis, out=dst) is dst
    assert_same(op, dst, want)


def assert_same(op, got, want):
    """Bit-identical, except for the norms: their vector sums start at the
    row's register alignment, so the same values at another address may
    differ in the last bit (documented in rust/norm/mod.rs)."""
    if op in ("layer_norm", "rms_norm"):
        tol = RTOL[got.dtype.type]
        np.testing.assert_allclose(got, want, rtol=4 * tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


@SETTINGS
@given(st.sampled_from(FLOAT_DTYPES), st.integers(1, 40), st.integers(1, 12), OPS, st.booleans())
def test_zero_stride_broadcast_inputs_are_read(dtype, n, rows, op, along_rows):
    rng = np.random.default_rng(n * 100 + rows)
    if along_rows:
        # Every row is the same memory (row stride 0).
        x = np.broadcast_to(rng.standard_normal(n).astype(dtype), (rows, n))
    else:
        # Each row is one repeated value (element stride 0).
        x = np.broadcast_to(rng.standard_normal((rows, 1)).astype(dtype), (rows, n))
    assert not x.flags.writeable
    got = run(op, x, -1)
    check(op, got, x, -1)
    if op != "l1_norm":
        check(op, run(op, x, 0), x, 0)
    # A broadcast view is read-only: refused as out=, nothing written.
    with pytest.raises(ValueError, match="out is read-only"):
        run(op, x.copy(), -1, out=x)


def test_writeable_out_with_overlapping_rows_is_written_like_numpy():
    """A writeable as_strided out whose rows share memory: NumPy writes the
    rows in order, so the last row wins; normkit gives the same."""
    x = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)
    buf = np.zeros(8, np.float32)
    out = np.lib.stride_tricks.as_strided(buf, shape=(5, 8), strides=(0, 4))
    normkit.softmax(x, out=out)
    np.testing.assert_array_equal(buf, normkit.softmax(x[-1]))


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(1, 300), st.integers(1, 9), st.sampled_from([1, 2, -1, -3]))
def test_int8_strided_rows_match_contiguous(seed, n, rows, step):
    rng = np.random.default_rng(seed)
    base = rng.integers(-128, 128, (rows * abs(step), n), dtype=np.int8)
    x = base[::step]
    got = normkit.l1_norm(x, out_scale=0.05)
    np.testing.assert_array_equal(got, normkit.l1_norm(np.ascontiguousarray(x), out_scale=0.05))
    y = x.copy()
    normkit.l1_norm(y, out_scale=0.05, out=y)
    np.testing.assert_array_equal(y, got)


# Threads ------------------------------------------------------------------


def _thread_inputs():
    rng = np.random.default_rng(7)
    shared = {
        "small32": (rng.standard_normal((16, 37)) * 5).astype(np.float32),
        "large32": (rng.standard_normal((64, 1024)) * 5).astype(np.float32),
        "large64": rng.standard_normal((40, 2000)),
        "int8": rng.integers(-128, 128, (64, 777), dtype=np.int8),
    }
    for a in shared.values():
        a.flags.writeable = False
    return shared


def _call(kind, x, algorithm, out):
    if kind == "softmax":
        return normkit.softmax(x, algorithm=algorithm, out=out)
    if kind == "log_softmax":
        return normkit.log_softmax(x, out=out)
    if kind == "layer_norm":
        return normkit.layer_norm(x, out=out)
    if kind == "rms_norm":
        return normkit.rms_norm(x, out=out)
    if x.dtype == np.int8:
        return normkit.l1_norm(x, out_scale=0.03, out=out)
    return normkit.l1_norm(x, out=out)


def test_many_threads_on_shared_read_only_inputs():
    """16 Python threads, each running every kernel on the same read-only
    inputs into its own outputs, many times: bit-identical to the
    single-threaded results, no crash, no deadlock (joined with a timeout)."""
    shared = _thread_inputs()
    jobs = []
    for name, x in shared.items():
        kinds = ["l1_norm"] if x.dtype == np.int8 else ["softmax", "log_softmax", "l1_norm", "layer_norm", "rms_norm"]
        for kind in kinds:
            for algorithm in normkit.SOFTMAX_ALGORITHMS if kind == "softmax" else ["auto"]:
                jobs.append((name, kind, algorithm, _call(kind, x, algorithm, None)))
    errors = []

    def worker(index):
        try:
            outs = {i: np.empty_like(want) for i, (_, _, _, want) in enumerate(jobs)}
            for repeat in range(6):
                for k in range(len(jobs)):
                    i = (k + index + repeat) % len(jobs)  # threads start at different jobs
                    name, kind, algorithm, want = jobs[i]
                    got = _call(kind, shared[name], algorithm, outs[i])
                    if not np.array_equal(got, want, equal_nan=True):
                        errors.append(f"thread {index}: {kind} {algorithm} on {name} differs")
                        return
        except Exception as exc:  # reported below, in the main thread
            errors.append(f"thread {index}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "threads still running after 120 s: deadlock?"
    assert not errors, errors[:5]


def test_threads_changing_the_thread_count_meanwhile():
    """set_num_threads from one thread while others compute: results stay
    right (the pool size is a tuning knob, not shared state of a call)."""
    x = np.random.default_rng(3).standard_normal((256, 512)).astype(np.float32)
    x.flags.writeable = False
    want = normkit.softmax(x)
    before = normkit.get_num_threads()
    errors, stop = [], threading.Event()

    def compute():
        out = np.empty_like(want)
        for _ in range(30):
            if not np.array_equal(normkit.softmax(x, out=out), want):
                errors.append("softmax differs")
                return

    def flip():
        k = 0
        while not stop.is_set():
            normkit.set_num_threads(1 + k % 3)
            k += 1

    flipper = threading.Thread(target=flip, daemon=True)
    workers = [threading.Thread(target=compute, daemon=True) for _ in range(6)]
    flipper.start()
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    stop.set()
    flipper.join(timeout=30)
    normkit.set_num_threads(before)
    assert not any(t.is_alive() for t in workers + [flipper]), "deadlock"
    assert not errors


# Huge rows -----------------------------------------------------------------

HUGE = os.environ.get("NORMKIT_HUGE_TESTS") == "1"
huge = pytest.mark.skipif(not HUGE, reason="set NORMKIT_HUGE_TESTS=1 to run rows of 2^31 + 1 elements (needs ~9 GiB of RAM)")
# 2^31 + 1 = 3 * 715827883: a row made of one 3-element pattern repeated has
# the pattern's mean and mean absolute deviation, so its results are the
# pattern's (l1_norm: exactly, by the integer contract's scaling in n;
# softmax: the pattern's softmax divided by the repeat count).
HUGE_N = 2**31 + 1
REPEATS = HUGE_N // 3
CHUNK = 1 << 27


@huge
def test_huge_int8_l1_norm_row():
    pattern = np.array([-128, 5, 127], np.int8)
    x = np.tile(pattern, REPEATS)
    assert x.size == HUGE_N
    y = normkit.l1_norm(x, out_scale=1 / 40)
    want = np.tile(normkit.l1_norm(pattern, out_scale=1 / 40), CHUNK // 3 + 1)
    for start in range(0, HUGE_N, CHUNK // 3 * 3):
        part = y[start : start + CHUNK // 3 * 3]
        np.testing.assert_array_equal(part, want[: part.size])


@huge
def test_huge_float32_softmax_row_in_place():
    pattern = np.array([-3.0, 0.5, 2.0], np.float32)
    x = np.tile(pattern, REPEATS)
    normkit.softmax(x, out=x)
    want = np.tile(sp.softmax(pattern.astype(np.float64)) / REPEATS, CHUNK // 3 + 1)
    worst = 0.0
    for start in range(0, HUGE_N, CHUNK // 3 * 3):
        part = x[start : start + CHUNK // 3 * 3].astype(np.float64)
        worst = max(worst, float(np.max(np.abs(part - want[: part.size]) / want[: part.size])))
    print(f"huge float32 softmax: max rel err {worst:.3e}")
    assert worst <= 2e-5


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_float_l1_norm_out_shifted_over_its_input(dtype):
    """Found by test_out_aliasing_the_input: a C-contiguous out overlapping
    x shifted by one element took the fast path into a native layer that
    did not check overlap, so the kernel read elements it had already
    written (wrong last element). The native layer now uses a temporary."""
    flat = np.linspace(-2, 3, 10, dtype=dtype)
    x = flat[:-1]
    want = normkit.l1_norm(x.copy())
    out = flat[1:]
    normkit.l1_norm(x, out=out)
    np.testing.assert_array_equal(out, want)
