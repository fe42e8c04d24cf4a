"""normkit.softmax / log_softmax: accuracy against SciPy in float64, the
special-value rules, and the NumPy contract (dtypes, axis, out=, layouts)."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import scipy.special as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.exceptions import AxisError

import normkit
from normkit import _native

ALGORITHMS = normkit.SOFTMAX_ALGORITHMS
RTOL = {np.float32: 2e-6, np.float64: 1e-12}


def reference(x, axis=-1):
    return sp.softmax(np.asarray(x, dtype=np.float64), axis=axis)


def assert_softmax_close(got, x, axis=-1):
    want = reference(x, axis)
    rtol = RTOL[got.dtype.type]
    bad = np.argwhere(np.isnan(got) != np.isnan(want))
    if bad.size:
        where = tuple(bad[0])
        line = np.moveaxis(np.asarray(x), axis, -1)[tuple(np.delete(bad[0], axis % x.ndim))]
        raise AssertionError(f"NaN pattern differs at {where}: row {line!r} gives {np.moveaxis(got, axis, -1)[tuple(np.delete(bad[0], axis % x.ndim))]!r}")
    finite = ~np.isnan(want)
    err = np.abs(got[finite] - want[finite])
    # Below the normal range of the result type only absolute error counts.
    tiny = np.finfo(got.dtype).tiny
    assert np.all(err <= rtol * want[finite] + tiny), f"max rel err {np.max(err / np.maximum(want[finite], tiny))}"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 17), (64, 128), (2, 3, 300), (5, 4099)])
def test_matches_scipy(algorithm, dtype, shape):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 8).astype(dtype)
    y = normkit.softmax(x, algorithm=algorithm)
    assert y.dtype == dtype and y.shape == x.shape
    assert_softmax_close(y, x)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_special_values_follow_scipy(algorithm):
    inf, nan = np.inf, np.nan
    rows = [
        [-inf, 0.0, 1.0, 2.0],
        [-inf, -inf, -inf, -inf],
        [1.0, inf, 2.0, 3.0],
        [nan, 1.0, 2.0, 3.0],
        [3e38, -3e38, 3e38, 0.0],
        [-3.4e38, -3.3e38, -3.2e38, -3.1e38],
        [1e4, 1e4 + 1, 1e4 - 1, 1e4],
        [5.0, 5.0, 5.0, 5.0],
    ]
    for dtype in (np.float32, np.float64):
        x = np.array(rows, dtype=dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            assert_softmax_close(normkit.softmax(x, algorithm=algorithm), x)


def test_log_softmax_matches_scipy():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((33, 301)) * 20).astype(np.float32)
    x[0, 5] = -np.inf
    x[1, :] = -np.inf
    x[2, 7] = np.inf
    x[3, 9] = np.nan
    got = normkit.log_softmax(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = sp.log_softmax(x.astype(np.float64), axis=-1)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(np.isinf(got), np.isinf(want))
    ok = np.isfinite(want)
    assert np.max(np.abs(got[ok] - want[ok])) <= 1e-5


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
def test_every_axis(axis):
    x = np.random.default_rng(1).standard_normal((4, 5, 6)).astype(np.float32)
    y = normkit.softmax(x, axis=axis)
    assert y.flags.c_contiguous
    assert_softmax_close(y, x, axis)
    np.testing.assert_allclose(normkit.log_softmax(x, axis=axis), sp.log_softmax(x.astype(np.float64), axis=axis), atol=1e-5)


@pytest.mark.parametrize(
    "dtype, result",
    [(np.int8, np.float16), (np.uint8, np.float16), (np.bool_, np.float16), (np.int16, np.float32),
     (np.int32, np.float64), (np.int64, np.float64), (np.float16, np.float16), (np.float32, np.float32)],
)
def test_dtype_rules_follow_numpy_ufuncs(dtype, result):
    x = np.arange(12).reshape(3, 4).astype(dtype)
    y = normkit.softmax(x)
    assert y.dtype == np.result_type(np.exp(x).dtype) == result
    np.testing.assert_allclose(y.astype(np.float64), reference(x), rtol=2e-3 if result == np.float16 else 1e-6)


def test_array_likes():
    np.testing.assert_allclose(normkit.softmax([[1, 2, 3]]), reference([[1, 2, 3]]), rtol=1e-12)
    np.testing.assert_allclose(normkit.softmax((0.5, 1.5)), reference([0.5, 1.5]), rtol=1e-12)


@pytest.mark.parametrize("bad", [np.array([1 + 2j]), np.array(["a", "b"]), np.array([object(), 1], dtype=object),
                                 np.array(["2020-01-01"], dtype="datetime64[D]")])
def test_unsupported_dtypes_raise_type_error(bad):
    with pytest.raises(TypeError, match="dtype"):
        normkit.softmax(bad)


def test_axis_errors():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(AxisError):
        normkit.softmax(x, axis=2)
    with pytest.raises(AxisError):
        normkit.softmax(x, axis=-3)
    with pytest.raises(TypeError, match="axis"):
        normkit.softmax(x, axis=1.0)
    with pytest.raises(AxisError):
        normkit.softmax(np.float32(3.0), axis=1)


def _softmax64(x, axis):
    z = x.astype(np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [None, (0, 2), (2, 0), (1,), (-1, -3, 1), (0, 1), ()])
def test_several_axes_are_one_row_as_in_scipy(dtype, axis):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((3, 5, 7)) * 4).astype(dtype)
    tol = 2e-6 if dtype == np.float32 else 1e-13
    norm_axis = None if axis is None else tuple(a % 3 for a in axis)
    expected = _softmax64(x, norm_axis)
    y = normkit.softmax(x, axis=axis)
    assert y.shape == x.shape and y.dtype == dtype
    np.testing.assert_allclose(y, expected, rtol=tol, atol=0)
    np.testing.assert_allclose(y, sp.softmax(x, axis=axis), rtol=4 * tol, atol=0)
    logp = normkit.log_softmax(x, axis=axis)
    np.testing.assert_allclose(logp, np.log(expected), rtol=0, atol=10 * tol)
    # out= on a non-contiguous (Fortran-order) destination
    out = np.asfortranarray(np.full(x.shape, -1, dtype))
    assert normkit.softmax(x, axis=axis, out=out) is out
    np.testing.assert_array_equal(out, y)


@pytest.mark.parametrize("axis", [-1, 0, None, ()])
def test_zero_d_input_is_a_row_of_one(axis):
    for x in (np.float32(3.5), np.float64(-1e300), 7):
        y = normkit.softmax(x, axis=axis)
        assert y.shape == () and y == 1.0
        assert normkit.log_softmax(x, axis=axis) == 0.0
    assert np.isnan(normkit.softmax(np.float32(np.nan)))
    out = np.zeros((), np.float32)
    assert normkit.softmax(np.float32(2), out=out) is out and out == 1.0


def test_bad_algorithm():
    with pytest.raises(ValueError, match="algorithm"):
        normkit.softmax(np.ones(3), algorithm="fast")


def test_empty_arrays():
    for shape in [(0,), (0, 5), (5, 0), (2, 0, 3)]:
        x = np.ones(shape, np.float32)
        y = normkit.softmax(x)
        assert y.shape == shape and y.dtype == np.float32
        assert normkit.log_softmax(x, axis=0).shape == shape


class TestOut:
    def setup_method(self):
        self.x = np.random.default_rng(2).standard_normal((6, 40)).astype(np.float32)

    def test_out_is_filled_and_returned(self):
        out = np.empty_like(self.x)
        assert normkit.softmax(self.x, out=out) is out
        assert_softmax_close(out, self.x)

    def test_in_place(self):
        x = self.x.copy()
        assert normkit.softmax(x, out=x) is x
        assert_softmax_close(x, self.x)

    def test_in_place_along_first_axis(self):
        x = self.x.copy()
        normkit.softmax(x, axis=0, out=x)
        assert_softmax_close(x, self.x, axis=0)

    def test_non_contiguous_out(self):
        buf = np.full((6, 80), -7.0, np.float32)
        out = buf[:, ::2]
        normkit.softmax(self.x, out=out)
        assert_softmax_close(out, self.x)
        assert np.all(buf[:, 1::2] == -7.0)

    def test_partially_overlapping_out(self):
        buf = np.random.default_rng(3).standard_normal(41 * 6).astype(np.float32)
        x = buf[:-6].reshape(5, 48)
        out = buf[6:].reshape(5, 48)
        want = reference(x.copy())
        normkit.softmax(x, out=out)
        np.testing.assert_allclose(out, want, rtol=2e-6)

    @pytest.mark.parametrize(
        "out, error",
        [
            (np.zeros((6, 41), np.float32), ValueError),
            (np.zeros((6, 40), np.float64), TypeError),
            ([[0.0] * 40] * 6, TypeError),
        ],
    )
    def test_bad_out_raises_and_writes_nothing(self, out, error):
        before = np.array(out, copy=True)
        with pytest.raises(error, match="out"):
            normkit.softmax(self.x, out=out)
        assert np.array_equal(np.asarray(out), before)

    def test_read_only_out(self):
        out = np.zeros_like(self.x)
        out.flags.writeable = False
        with pytest.raises(ValueError, match="read-only"):
            normkit.softmax(self.x, out=out)
        assert not out.any()

    def test_half_precision_out(self):
        x = np.arange(6, dtype=np.int8).reshape(2, 3)
        out = np.empty((2, 3), np.float16)
        normkit.softmax(x, out=out)
        np.testing.assert_allclose(out, reference(x), rtol=2e-3)


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a.T,
        lambda a: a[:, ::3],
        lambda a: a[::-1, ::-1],
        lambda a: a[1:, 2:],
        lambda a: np.broadcast_to(a[:1], a.shape),
        lambda a: np.asfortranarray(a),
    ],
)
def test_non_contiguous_inputs(make):
    a = np.random.default_rng(4).standard_normal((30, 30)).astype(np.float32)
    x = make(a)
    assert_softmax_close(normkit.softmax(x), x)
    assert_softmax_close(normkit.softmax(x, axis=0), x, axis=0)


def test_contiguous_rows_are_read_in_place(monkeypatch):
    seen = []
    native = _native.softmax

    def spy(x_rows, out_rows, algorithm):
        seen.append(x_rows)
        native(x_rows, out_rows, algorithm)

    monkeypatch.setattr(_native, "softmax", spy)
    monkeypatch.setattr(normkit.softmax.__globals__["_native"], "softmax", spy)
    base = np.random.default_rng(5).standard_normal((8, 64)).astype(np.float32)
    for x in (base, base[2:6], base[:, :32], base.reshape(2, 4, 64)):
        seen.clear()
        normkit.softmax(x)
        assert np.shares_memory(seen[0], x), x.shape


def test_threads_give_the_same_result():
    x = np.random.default_rng(6).standard_normal((512, 1000)).astype(np.float32)
    before = normkit.get_num_threads()
    try:
        normkit.set_num_threads(1)
        one = normkit.softmax(x)
        normkit.set_num_threads(2)
        assert normkit.get_num_threads() == 2
        two = normkit.softmax(x)
    finally:
        normkit.set_num_threads(before)
    assert np.array_equal(one, two)


def test_cpu_info_reports_levels():
    info = normkit.cpu_info()
    assert info["active"] in info["available"]
    assert info["detected"] == info["available"][-1]
    assert info["available"][0] == "scalar"


def documented_auto(n, itemsize, rows, threads, splits=True):
    """The algorithm the ``softmax`` docstring documents for ``auto`` on
    this CPU (level and ``cpu_info()["tuning"]``), for a call of ``rows``
    rows of ``n`` elements on ``threads`` threads; ``splits``: the kernel
    splits a row of 1M elements or more across every thread when the call
    has fewer rows than threads (the fused form never does)."""
    info = normkit.cpu_info()
    tuning, active = info["tuning"], info["active"]
    MiB = 1 << 20
    row = n * itemsize
    if active == "avx512" and tuning == "amd_zen4":
        # Rows from memory: a call of 32 MiB and more, rows of 8 MiB and
        # more; float64 only with two or more threads on the call (these
        # calls are large enough to run in parallel).
        split = splits and rows < threads and n >= 1 << 20
        call_threads = threads if split else min(threads, rows)
        large = row * rows >= 32 * MiB and row >= 8 * MiB
        two_pass = {4: row >= 32 * MiB or large, 8: row >= 64 * MiB or large and call_threads >= 2}.get(itemsize, False)
    elif active == "avx512":
        two_pass = row >= (8 * MiB if itemsize == 8 else 1 * MiB)
    elif active == "avx2" and tuning == "default":
        two_pass = itemsize >= 4 and row >= 8 * MiB
    else:
        two_pass = False
    return "two_pass" if two_pass else "three_pass_reload"


def test_auto_follows_the_documented_rule_for_this_cpu():
    """The crossover to two-pass, per level, ``cpu_info()["tuning"]``,
    call size and thread count, as the binding applies it."""
    info = normkit.cpu_info()
    assert info["tuning"] in ("amd_zen4", "default")
    if info["tuning"] == "amd_zen4":  # AMD family 25 with AVX-512, which prefetches nothing
        assert info["detected"] == "avx512" and not info["prefetch"]
    MiB = 1 << 20
    before = normkit.get_num_threads()
    try:
        for threads in (1, 2, 3):
            normkit.set_num_threads(threads)
            for itemsize in (2, 4, 8):
                for size in (64 * 1024, MiB, 8 * MiB, 16 * MiB, 32 * MiB, 64 * MiB, 128 * MiB):
                    for n in (size // itemsize - 1, size // itemsize):
                        for rows in (1, 2, 3, 4, 8, 64):
                            got = normkit._native.auto_algorithm(n, itemsize, rows)
                            assert got == documented_auto(n, itemsize, rows, threads), (itemsize, n, rows, threads)
    finally:
        normkit.set_num_threads(before)


def test_auto_runs_the_documented_algorithm_plain_and_fused():
    """One float64 row of 32 MiB at two threads: the plain call splits it
    across both threads, the fused form (``scale=``) runs it on one, and
    each gives bit for bit the result of the algorithm the rule names
    for it (on Zen 4 two-pass and reload). At AVX-512 the two algorithms
    differ in some bits on this row, so the check tells them apart there;
    at AVX2 they agree bit for bit on it."""
    x = np.random.default_rng(1).standard_normal((1, 1 << 22))
    before = normkit.get_num_threads()
    try:
        normkit.set_num_threads(2)
        for fused, kwargs in ((False, {}), (True, {"scale": 0.5})):
            got = {a: normkit.softmax(x, algorithm=a, **kwargs) for a in ("auto", "two_pass", "three_pass_reload")}
            want = documented_auto(x.shape[1], 8, 1, 2, splits=not fused)
            other = "two_pass" if want == "three_pass_reload" else "three_pass_reload"
            assert np.array_equal(got["auto"], got[want]), (fused, want)
            if normkit.cpu_info()["active"] == "avx512":
                assert not np.array_equal(got[want], got[other]), (fused, want)
    finally:
        normkit.set_num_threads(before)


SCRIPT = textwrap.dedent(
    """
    import numpy as np, scipy.special as sp, normkit
    assert normkit.cpu_info()["active"] == "{isa}", normkit.cpu_info()
    rng = np.random.default_rng(7)
    worst = 0.0
    for n in list(range(1, 70)) + [255, 256, 257, 4099]:
        for dtype in (np.float32, np.float64):
            x = (rng.standard_normal((3, n)) * 10).astype(dtype)
            x[0, : n // 3] = -np.inf
            want = sp.softmax(x.astype(np.float64), axis=-1)
            for algorithm in normkit.SOFTMAX_ALGORITHMS:
                got = normkit.softmax(x, algorithm=algorithm)
                err = np.max(np.abs(got - want) / np.maximum(want, 1e-30), initial=0.0)
                worst = max(worst, err) if dtype == np.float32 else worst
                assert err <= (2e-6 if dtype == np.float32 else 1e-12), (algorithm, n, dtype, err)
    print("ok", worst)
    """
)


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
def test_every_isa_through_the_python_api(isa, run_with_isa):
    proc = run_with_isa(isa, SCRIPT.format(isa=isa))
    if isa in normkit.cpu_info()["available"]:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("ok")
    else:
        # Forcing a level the CPU lacks is an import error, not a fallback.
        assert proc.returncode != 0 and "not supported by this CPU" in proc.stderr


def test_unknown_isa_is_a_clear_error(run_with_isa):
    proc = run_with_isa("sse9", "import normkit")
    assert proc.returncode != 0 and "NORMKIT_ISA" in proc.stderr and "sse9" in proc.stderr


finite_or_special = st.one_of(
    st.floats(-1e4, 1e4, width=32),
    st.sampled_from([-np.inf, np.inf, np.nan, 0.0, -3e38, 3e38]),
)


@settings(max_examples=150, deadline=None)
@given(
    x=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=40), elements=finite_or_special),
    data=st.data(),
)
def test_hypothesis_against_scipy(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    algorithm = data.draw(st.sampled_from(ALGORITHMS))
    with np.errstate(invalid="ignore", over="ignore"):
        assert_softmax_close(normkit.softmax(x, axis=axis, algorithm=algorithm), x, axis)
