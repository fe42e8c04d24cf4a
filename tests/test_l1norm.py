"""normkit.l1_norm: the int8 contract bit-exact against an independent
pure-Python integer implementation, within one output step of the float
formula, the float mode against NumPy float64, the NumPy argument rules,
and the lower instruction sets through NORMKIT_ISA in a subprocess."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import normkit

# ---------------------------------------------------------------- reference


def _floor_log2(v: Fraction) -> int:
    e = v.numerator.bit_length() - v.denominator.bit_length()
    return e if v >= Fraction(2) ** e else e - 1


def _round_half_up(v: Fraction) -> int:
    return (2 * v.numerator + v.denominator) // (2 * v.denominator)


def reference_row(x, gain: Fraction, w, b) -> list[int]:
    """The documented int8 contract, step by step, in Python integers and
    fractions (no overflow, no vector tricks)."""
    n = len(x)
    x = [int(v) for v in x]
    w = [1] * n if w is None else [int(v) for v in w]
    b = [0] * n if b is None else [int(v) for v in b]
    s = sum(x)
    q, r = s // n, s % n
    a = sum(abs(n * v - s) for v in x)
    if a == 0:
        return b
    k = gain * n * n / a
    c = gain * n * r / a
    if k > 512:
        c = min(c, Fraction(256)) if 2 * r <= n else 512 - min(k - c, Fraction(256))
        k = Fraction(512)
    sh = 21 - _floor_log2(k)
    assert 2**21 <= k * Fraction(2) ** sh < 2**22
    m = _round_half_up(k * Fraction(2) ** sh)
    cc = _round_half_up(c * Fraction(2) ** sh)
    t = sh - 12
    out = []
    for xi, wi, bi in zip(x, w, b):
        p = (xi - q) * m - cc
        rr = (2 * p + 2**t) // 2 ** (t + 1)  # floor(p / 2^t + 1/2)
        v = (2 * rr * wi + 4096) // 8192  # floor(rr w / 2^12 + 1/2)
        out.append(min(127, max(-128, v + bi)))
    return out


def reference(x: np.ndarray, out_scale: float, w=None, b=None) -> np.ndarray:
    gain = Fraction(float(np.float32(1.0 / out_scale)))
    rows = x.reshape(-1, x.shape[-1])
    y = [reference_row(row, gain, w, b) for row in rows]
    return np.array(y, dtype=np.int8).reshape(x.shape)


def float_formula(x: np.ndarray, gain: float, w=None, b=None) -> np.ndarray:
    """clip((x - mean) / s * gain * w + b) in float64."""
    x = x.astype(np.float64)
    m = x.mean(axis=-1, keepdims=True)
    s = np.abs(x - m).mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.where(s > 0, (x - m) / s * gain, 0.0)
    v = v * (1 if w is None else w.astype(np.float64)) + (0 if b is None else b.astype(np.float64))
    return np.clip(v, -128, 127)


# ---------------------------------------------------------------- int8 mode

int8_rows = st.integers(1, 4).flatmap(
    lambda rows: st.integers(1, 300).flatmap(
        lambda n: st.tuples(
            hnp.arrays(np.int8, (rows, n), elements=st.integers(-128, 127)),
            st.one_of(st.none(), hnp.arrays(np.int8, (n,))),
            st.one_of(st.none(), hnp.arrays(np.int8, (n,))),
        )
    )
)
scales = st.one_of(st.sampled_from([4 / 127, 1 / 16, 0.5, 1.0, 3.0, 1e-4, 1e3]), st.floats(1e-3, 10.0))


def _narrow(x: np.ndarray, data) -> np.ndarray:
    """Rows of small spread around a random center, where the mean's
    fraction and the clamp of K matter most."""
    center = data.draw(st.integers(-128, 127))
    spread = data.draw(st.integers(0, 3))
    return np.clip(center + (x.astype(np.int64) % (spread + 1)), -128, 127).astype(np.int8)


@settings(max_examples=120, deadline=None)
@given(int8_rows, scales, st.data())
def test_int8_bit_exact_and_within_one_step(args, out_scale, data):
    x, w, b = args
    if data.draw(st.booleans()):
        x = _narrow(x, data)
    y = normkit.l1_norm(x, w, b, out_scale=out_scale)
    assert y.dtype == np.int8 and y.shape == x.shape
    np.testing.assert_array_equal(y, reference(x, out_scale, w, b))
    gain = float(np.float32(1.0 / out_scale))
    err = np.abs(y - float_formula(x, gain, w, b))
    assert err.max() <= 0.55, err.max()


@pytest.mark.parametrize("value", [-128, 127, 0])
def test_int8_constant_and_extreme_rows(value):
    x = np.full((3, 257), value, dtype=np.int8)
    b = np.arange(257).astype(np.int8)
    np.testing.assert_array_equal(normkit.l1_norm(x, out_scale=0.03), 0)
    np.testing.assert_array_equal(normkit.l1_norm(x, bias=b, out_scale=0.03), np.broadcast_to(b, x.shape))
    x[1, 100] = -value - 1 if value else 1
    np.testing.assert_array_equal(normkit.l1_norm(x, bias=b, out_scale=0.03), reference(x, 0.03, None, b))


def test_int8_long_row_of_minus_128_with_an_outlier():
    n = 1 << 18
    x = np.full((1, n), -128, dtype=np.int8)
    x[0, 12345] = 127
    y = normkit.l1_norm(x, out_scale=1 / 32)
    np.testing.assert_array_equal(y, reference(x, 1 / 32))
    assert np.abs(y - float_formula(x, 32.0)).max() <= 0.55


def test_int8_extreme_scales_match_reference():
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, (2, 70)).astype(np.int8)
    x[1] = 5
    x[1, 3] = 6
    for out_scale in [1e-30, 1e-12, 1e12, 1e30, 1e38]:
        np.testing.assert_array_equal(normkit.l1_norm(x, out_scale=out_scale), reference(x, out_scale))


def test_int8_layouts_in_place_and_threads():
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (64, 3, 700)).astype(np.int8)
    want = reference(x, 0.05)
    np.testing.assert_array_equal(normkit.l1_norm(x, out_scale=0.05), want)
    # Non-contiguous input and output views.
    big = rng.integers(-128, 128, (64, 3, 1400)).astype(np.int8)
    view = big[..., ::2]
    out = np.zeros((64, 3, 1400), np.int8)[..., 1::2]
    normkit.l1_norm(view, out_scale=0.05, out=out)
    np.testing.assert_array_equal(out, reference(np.ascontiguousarray(view), 0.05))
    # In place, and the same with one and two threads.
    threads = normkit.get_num_threads()
    try:
        for t in (1, 2):
            normkit.set_num_threads(t)
            z = x.copy()
            assert normkit.l1_norm(z, out_scale=0.05, out=z) is z
            np.testing.assert_array_equal(z, want)
    finally:
        normkit.set_num_threads(threads)


def test_int8_partially_overlapping_out():
    buf = np.random.default_rng(5).integers(-128, 128, (6, 101)).astype(np.int8)
    x, out = buf[:, :-1], buf[:, 1:]
    want = reference(x.copy(), 0.1)
    normkit.l1_norm(x, out_scale=0.1, out=out)
    np.testing.assert_array_equal(buf[:, 1:], want)


def test_native_refuses_a_weight_or_bias_overlapping_out():
    """Issue 10, item 4: the native layer accepted a weight that is a view
    of out (``_native.l1_norm_i8(x, w, 20.0, w.reshape(128))``), so the
    kernel wrote into its own weight mid-computation. Now a ValueError
    naming both, raised before anything is written."""
    from normkit import _native

    x = np.random.default_rng(9).integers(-128, 128, (1, 128)).astype(np.int8)
    w = np.ones((1, 128), np.int8)
    with pytest.raises(ValueError, match="weight shares memory with out"):
        _native.l1_norm_i8(x, w, 20.0, w.reshape(128))
    assert (w == 1).all()
    out = np.full((3, 128), 7, np.int8)
    xs = np.zeros((3, 128), np.int8)
    for weight, bias, name in [
        (out[1], None, "weight"),
        (None, out[2, ::-1], "bias"),  # negative stride
        (None, out.reshape(-1)[64:192], "bias"),  # straddles two rows
    ]:
        with pytest.raises(ValueError, match=f"{name} shares memory with out"):
            _native.l1_norm_i8(xs, out, 1.0, weight, bias)
        assert (out == 7).all()
    xf, outf = np.ones((2, 8), np.float32), np.full((2, 8), 7.0, np.float32)
    for weight, bias, name in [(outf[0], None, "weight"), (np.ones(8, np.float32), outf[1], "bias")]:
        with pytest.raises(ValueError, match=f"{name} shares memory with out"):
            _native.l1_norm_float(xf, outf, 1e-5, weight, bias)
        assert (outf == 7.0).all()
    # A weight that only shares memory with x is fine (x is read-only here).
    _native.l1_norm_i8(xs, out, 1.0, xs[0], None)


def test_weight_sharing_memory_with_out_reads_the_weight_before_writing():
    """Through the public API a weight or bias that is a view of ``out``
    (or of x with ``out=x``) still works: it gives the result of a copy."""
    rng = np.random.default_rng(10)
    x = rng.integers(-100, 100, (6, 40)).astype(np.int8)
    want = normkit.l1_norm(x, x[0].copy(), x[1].copy(), out_scale=0.05)
    y = x.copy()
    assert normkit.l1_norm(y, y[0], y[1], out_scale=0.05, out=y) is y
    np.testing.assert_array_equal(y, want)
    xf = rng.standard_normal((6, 40)).astype(np.float32)
    want = normkit.l1_norm(xf, xf[0].copy(), xf[::-1][2].copy())  # same input memory
    assert normkit.l1_norm(xf, xf[0], xf[::-1][2], out=xf) is xf
    np.testing.assert_array_equal(xf, want)


def test_weights_reach_the_native_layer_uncopied(native_calls):
    """Weights are copied at most once: the Python layer converts a dtype
    when it must and otherwise hands the caller's array to the native
    layer, which makes the one private copy."""
    import normkit.l1norm as mod

    seen = native_calls(mod)
    x = np.arange(12, dtype=np.int8).reshape(3, 4)
    w, b = np.array([1, 2, 3, 4], np.int8), np.array([0, 1, 0, 1], np.int8)
    normkit.l1_norm(x, w, b, out_scale=0.1)
    assert seen[-1][3] is w and seen[-1][4] is b
    wf = np.ones(4, np.float32)
    normkit.l1_norm(x.astype(np.float32), wf)
    assert seen[-1][3] is wf


def test_int8_weight_as_python_ints():
    x = np.array([[1, 2, 3, 10]], np.int8)
    got = normkit.l1_norm(x, [1, -2, 127, -128], [0, 5, -128, 127], out_scale=0.25)
    w, b = np.array([1, -2, 127, -128]), np.array([0, 5, -128, 127])
    np.testing.assert_array_equal(got, reference(x, 0.25, w, b))


# ---------------------------------------------------------------- float mode


def float_reference(x, eps, w=None, b=None):
    x = np.asarray(x, np.float64)
    m = x.mean(axis=-1, keepdims=True)
    s = np.abs(x - m).mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = (x - m) / (s + eps)
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 300).flatmap(lambda n: hnp.arrays(np.float32, (3, n), elements=st.floats(-1e3, 1e3, width=32))),
    st.booleans(),
    st.booleans(),
    st.sampled_from([1e-5, 0.0, 0.1]),
)
def test_float32_matches_float64_formula(x, with_w, with_b, eps):
    n = x.shape[1]
    rng = np.random.default_rng(n)
    w = rng.normal(size=n).astype(np.float32) if with_w else None
    b = rng.normal(size=n).astype(np.float32) if with_b else None
    want = float_reference(x, eps, w, b)
    y = normkit.l1_norm(x, w, b, eps=eps)
    assert y.dtype == np.float32
    # float32 error: a few ulps of the result, plus the rounding of the
    # mean to float32 (|mean| * 2^-24), which moves x - mean (times |w|)
    # and s (times |y|), magnified by 1 / (s + eps).
    x64 = x.astype(np.float64)
    m = x64.mean(axis=-1, keepdims=True)
    s = np.abs(x64 - m).mean(axis=-1, keepdims=True)
    wabs = 1.0 if w is None else np.abs(w)
    with np.errstate(invalid="ignore", divide="ignore"):
        tol = 4e-6 * (1 + np.abs(want)) + 2 * (np.abs(m) + np.abs(x64)) * 2.0**-24 / (s + eps) * (wabs + np.abs(want))
    # With eps = 0 a (numerically) constant row is 0 / 0: not compared.
    rows = ((s + eps) > 1e-6 * np.abs(m)).ravel()
    assert np.all(np.abs(y - want)[rows] <= tol[rows])


_FLAT_ROWS = [
    [1e-45, 0, 0, 0],
    [3e-45, 1e-45, 0, 4e-45],
    [1e-39, -2e-39, 5e-40, 0],
    [1.2e-38, 1.2e-38, 0, 1.2e-38],
]


@pytest.mark.parametrize("isa", normkit.cpu_info()["available"])
def test_float32_flat_rows_with_eps_zero_match_float64(isa, run_with_isa):
    """Rows whose spread is near float32's subnormal range: the mean rounded
    to float32 would be a large part of s; such rows are computed in f64."""
    script = ("import json, numpy as np, normkit; "
              f"print(json.dumps(normkit.l1_norm(np.array({_FLAT_ROWS!r}, np.float32), eps=0.0).tolist()))")
    done = run_with_isa(isa, script, check=True)
    want = float_reference(np.array(_FLAT_ROWS, np.float32), 0.0)
    np.testing.assert_allclose(json.loads(done.stdout), want, rtol=1e-6, atol=0)


def test_float64_and_float16():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, (5, 123))
    np.testing.assert_allclose(normkit.l1_norm(x, eps=1e-8), float_reference(x, 1e-8), rtol=1e-12, atol=1e-12)
    h = x.astype(np.float16)
    y = normkit.l1_norm(h)
    assert y.dtype == np.float16
    np.testing.assert_allclose(y, float_reference(h, 1e-5), rtol=2e-3, atol=2e-3)


def test_float_in_place_and_constant_rows():
    x = np.full((2, 40), 7.0, np.float32)
    np.testing.assert_array_equal(normkit.l1_norm(x), 0.0)
    assert np.isnan(normkit.l1_norm(x, eps=0.0)).all()
    z = np.random.default_rng(2).normal(size=(4, 99)).astype(np.float32)
    want = normkit.l1_norm(z)
    assert normkit.l1_norm(z, out=z) is z
    np.testing.assert_array_equal(z, want)


# ---------------------------------------------------------------- errors


def _untouched_out(shape=(2, 5), dtype=np.int8):
    return np.full(shape, 77, dtype=dtype)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({}, TypeError, "out_scale"),
        ({"out_scale": 0.1, "eps": 1e-5}, TypeError, "eps"),
        ({"out_scale": 0.0}, ValueError, "out_scale"),
        ({"out_scale": float("nan")}, ValueError, "out_scale"),
        ({"out_scale": -1.0}, ValueError, "out_scale"),
        ({"out_scale": 1e-50}, ValueError, "out_scale"),
        ({"out_scale": "big"}, TypeError, "out_scale"),
        ({"out_scale": 0.1, "weight": np.ones(4, np.int8)}, ValueError, "weight"),
        ({"out_scale": 0.1, "bias": np.ones((1, 5), np.int8)}, ValueError, "bias"),
        ({"out_scale": 0.1, "weight": np.ones(5, np.float32)}, TypeError, "weight"),
        ({"out_scale": 0.1, "weight": np.full(5, 128)}, ValueError, "weight"),
        ({"out_scale": 0.1, "out": _untouched_out(dtype=np.float32)}, TypeError, "out"),
        ({"out_scale": 0.1, "out": _untouched_out((5, 2))}, ValueError, "out"),
        ({"out_scale": 0.1, "out": [[0] * 5] * 2}, TypeError, "out"),
    ],
)
def test_int8_bad_arguments(kwargs, exc, match):
    x = np.arange(10, dtype=np.int8).reshape(2, 5)
    out = kwargs.get("out")
    before = None if not isinstance(out, np.ndarray) else out.copy()
    with pytest.raises(exc, match=match):
        normkit.l1_norm(x, **kwargs)
    if before is not None:
        np.testing.assert_array_equal(out, before)


def test_read_only_out_and_bad_dtypes():
    x = np.arange(10, dtype=np.int8).reshape(2, 5)
    out = _untouched_out()
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        normkit.l1_norm(x, out_scale=0.1, out=out)
    np.testing.assert_array_equal(out, 77)
    with pytest.raises(TypeError, match="complex"):
        normkit.l1_norm(x.astype(np.complex64))
    with pytest.raises(TypeError, match="out_scale"):
        normkit.l1_norm(x.astype(np.float32), out_scale=0.1)
    with pytest.raises(ValueError, match="weight"):
        normkit.l1_norm(x.astype(np.float32), weight=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="eps"):
        normkit.l1_norm(x.astype(np.float32), eps=-1.0)
    with pytest.raises(np.exceptions.AxisError if hasattr(np, "exceptions") else Exception):
        normkit.l1_norm(np.int8(3), out_scale=0.1)
    f_out = np.full((2, 5), 5.0, np.float32)
    with pytest.raises(TypeError, match="out"):
        normkit.l1_norm(x.astype(np.float32), out=f_out.astype(np.float64))


def test_empty_inputs():
    assert normkit.l1_norm(np.zeros((0, 5), np.int8), out_scale=0.1).shape == (0, 5)
    out = np.full((3, 0), 1, np.int8)
    assert normkit.l1_norm(np.zeros((3, 0), np.int8), out_scale=0.1, out=out) is out


# ---------------------------------------------------------------- lower ISAs

_ISA_SCRIPT = """
import json, sys, numpy as np, normkit
rng = np.random.default_rng(11)
x = rng.integers(-128, 128, (40, 301)).astype(np.int8)
x[:10] = np.clip(rng.integers(-2, 3, (10, 301)) + 60, -128, 127)
w = rng.integers(-128, 128, 301).astype(np.int8)
b = rng.integers(-128, 128, 301).astype(np.int8)
f = rng.normal(size=(40, 301)).astype(np.float32)
print(json.dumps({
    "isa": normkit.cpu_info()["active"],
    "int8": normkit.l1_norm(x, w, b, out_scale=0.04).tobytes().hex(),
    "plain": normkit.l1_norm(x, out_scale=0.04).tobytes().hex(),
    "float": normkit.l1_norm(f).tolist(),
}))
"""


def test_lower_isas_match_bit_for_bit(run_with_isa):
    def run(isa):
        return json.loads(run_with_isa(isa, _ISA_SCRIPT, check=True).stdout)

    best = run(None)
    for isa in normkit.cpu_info()["available"]:
        got = run(isa)
        assert got["isa"] == isa
        assert got["int8"] == best["int8"], isa
        assert got["plain"] == best["plain"], isa
        np.testing.assert_allclose(got["float"], best["float"], rtol=1e-5, atol=1e-5)
    # ...and the best ISA's output is the contract.
    rng = np.random.default_rng(11)
    x = rng.integers(-128, 128, (40, 301)).astype(np.int8)
    x[:10] = np.clip(rng.integers(-2, 3, (10, 301)) + 60, -128, 127)
    w = rng.integers(-128, 128, 301).astype(np.int8)
    b = rng.integers(-128, 128, 301).astype(np.int8)
    want = reference(x, 0.04, w, b)
    assert bytes.fromhex(best["int8"]) == want.tobytes()
