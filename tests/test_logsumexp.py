"""normkit.logsumexp against scipy.special.logsumexp and float64: axes,
keepdims, out=, special values, every ISA level."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.exceptions import AxisError

import normkit

# float32: pair sums in float32 lanes (~2e-7 absolute after log) plus the
# rounding of the result; float64: two ulps (ln(sum) + exp ln 2, each
# rounded, and the reference's own rounding).
TOL = {np.float32: (2e-7, 2**-24), np.float64: (2e-15, 2**-51)}


def _reference(x, axis, keepdims=False):
    with np.errstate(invalid="ignore", over="ignore"):
        return sp.logsumexp(x.astype(np.float64), axis=axis, keepdims=keepdims)


def assert_lse_close(got, x, axis, keepdims=False):
    want = _reference(x, axis, keepdims)
    abs_tol, rel = TOL[x.dtype.type]
    assert got.shape == np.shape(want) and got.dtype == x.dtype
    want_t = np.asarray(want).astype(x.dtype)
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    inf = np.isinf(want_t)
    np.testing.assert_array_equal(got[inf], want_t[inf])
    finite = ~nan & ~inf
    err = np.abs(got[finite].astype(np.float64) - want[finite])
    assert np.all(err <= abs_tol + rel * np.abs(want[finite])), err.max()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [-1, 0, 1, (0, 2), (2, 0, 1), None, ()])
@pytest.mark.parametrize("keepdims", [False, True])
def test_axes_and_keepdims_match_scipy(dtype, axis, keepdims):
    x = (np.random.default_rng(3).standard_normal((4, 6, 33)) * 30).astype(dtype)
    assert_lse_close(normkit.logsumexp(x, axis=axis, keepdims=keepdims), x, axis, keepdims)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_length_and_scale(dtype):
    rng = np.random.default_rng(5)
    for n in range(0, 200):
        for scale in (1.0, 1e3, 5e6):
            x = (rng.uniform(-1, 1, (2, n)) * scale).astype(dtype)
            assert_lse_close(normkit.logsumexp(x), x, -1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values_follow_scipy(dtype):
    inf, nan, big = np.inf, np.nan, np.finfo(dtype).max
    rows = [
        [-inf, 0.0, 1.0], [-inf, -inf], [inf, 1.0], [inf, -inf], [inf, inf], [nan, 1.0], [nan, inf],
        [1.0, nan], [big, big], [big, -big], [-big, -big], [big / 2, big / 3], [0.0, 0.0],
    ]
    for row in rows:
        x = np.array(row, dtype)
        got = normkit.logsumexp(x)
        assert_lse_close(got, x, -1)
    # All -inf, or empty rows: -inf (scipy: log(0)).
    assert normkit.logsumexp(np.full((3, 5), -np.inf, dtype)).tolist() == [-np.inf] * 3
    assert normkit.logsumexp(np.zeros((3, 0), dtype)).tolist() == [-np.inf] * 3
    # Near the float maximum the result stays finite when it is representable.
    assert normkit.logsumexp(np.array([big, big], dtype)) == dtype(big)


def test_dtypes_0d_and_out():
    assert normkit.logsumexp(np.float32(2.5)) == np.float32(2.5)
    assert normkit.logsumexp([1, 2, 3]).dtype == np.float64
    assert normkit.logsumexp(np.arange(3, dtype=np.int16)).dtype == np.float32
    assert normkit.logsumexp(np.arange(3, dtype=np.uint8)).dtype == np.float16
    x = np.random.default_rng(1).standard_normal((5, 9)).astype(np.float32)
    out = np.full(9, np.nan, np.float32)
    assert normkit.logsumexp(x, axis=0, out=out) is out
    assert_lse_close(out, x, 0)
    strided = np.zeros((5, 2), np.float64)[:, 0]  # non-contiguous out
    assert normkit.logsumexp(x.astype(np.float64), out=strided) is strided
    assert_lse_close(strided, x.astype(np.float64), -1)
    # Fortran-order and negatively strided inputs.
    f = np.asfortranarray(x)[::-1]
    assert_lse_close(normkit.logsumexp(f, axis=1), f, 1)


@pytest.mark.parametrize(
    "call, exc, text",
    [
        (lambda out: normkit.logsumexp(np.ones((2, 3)), axis=2, out=out), AxisError, "axis 2"),
        (lambda out: normkit.logsumexp(np.ones((2, 3)), axis=(1, 1), out=out), ValueError, "repeated"),
        (lambda out: normkit.logsumexp(np.ones((2, 3)), out=out.astype(np.float32)), TypeError, "dtype float32, expected float64"),
        (lambda out: normkit.logsumexp(np.ones((2, 3)), keepdims=True, out=out), ValueError, "shape (2,), expected (2, 1)"),
        (lambda out: normkit.logsumexp(np.ones(3, complex), out=out), TypeError, "complex128"),
        (lambda out: normkit.logsumexp(np.ones((2, 3)), axis=1.0, out=out), TypeError, "axis must be an integer"),
    ],
)
def test_errors_leave_out_untouched(call, exc, text):
    out = np.full(2, 7.0)
    with pytest.raises(exc, match=None) as info:
        call(out)
    assert text in str(info.value) and str(info.value).startswith("logsumexp")
    assert (out == 7.0).all()


def test_read_only_out():
    out = np.zeros(2)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        normkit.logsumexp(np.ones((2, 3)), out=out)


finite_or_special = st.one_of(
    st.floats(-3e4, 3e4, width=32),
    st.sampled_from([-np.inf, np.inf, np.nan, 0.0, -3e38, 3e38, 2e6, -2e6]),
)


@settings(max_examples=150, deadline=None)
@given(x=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=40), elements=finite_or_special), data=st.data())
def test_hypothesis_against_scipy(x, data):
    axis = data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    assert_lse_close(normkit.logsumexp(x, axis=axis), x, axis)


SCRIPT = """
import numpy as np, normkit, test_logsumexp as t
assert normkit.cpu_info()["active"] == {isa!r}
rng = np.random.default_rng(11)
for dtype in (np.float32, np.float64):
    for n in range(0, 130):
        x = (rng.uniform(-1, 1, (3, n + 3)) * 80).astype(dtype)[:, 3 - n % 4:][:, :n]  # unaligned starts
        t.assert_lse_close(normkit.logsumexp(x), x, -1)
    t.test_special_values_follow_scipy(dtype)
print("ok")
"""


@pytest.mark.parametrize("isa", normkit.cpu_info()["available"])
def test_every_isa(isa, run_with_isa):
    proc = run_with_isa(isa, SCRIPT.format(isa=isa), check=True)
    assert proc.stdout.startswith("ok")
