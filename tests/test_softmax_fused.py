"""The fused attention form softmax(scale * x + bias, where=mask) and its
log-softmax: against float64 references (JAX's where= semantics), with
broadcast operands, special values, errors and every ISA level."""

from __future__ import annotations

import numpy as np
import pytest

import normkit

SENTINEL = -7.0
TOL = {np.float32: 2e-6, np.float64: 1e-13}


def reference(x, scale, bias, where, log=False, axis=-1):
    """float64 softmax of scale * x + bias over ``where`` (None: all);
    excluded entries 0 / -inf, fully excluded rows all 0 / -inf, and the
    scipy rules (NaN rows) among the included entries."""
    z = np.float64(1.0 if scale is None else scale) * x.astype(np.float64)
    if bias is not None:
        z = z + np.asarray(bias, np.float64)
    keep = np.ones(x.shape, bool) if where is None else np.broadcast_to(where, x.shape)
    z = np.where(keep, z, -np.inf)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(z, axis=axis, keepdims=True)
        special = ~np.isfinite(m) | np.isnan(z).any(axis=axis, keepdims=True)
        if log:
            shift = np.where(np.isfinite(m), m, 0.0)
            y = (z - shift) - np.log(np.sum(np.exp(z - shift), axis=axis, keepdims=True))
        else:
            e = np.exp(z - m)
            y = e / e.sum(axis=axis, keepdims=True)
            y = np.where(special, np.nan, y)
    dropped = -np.inf if log else 0.0
    none_kept = ~keep.any(axis=axis, keepdims=True)
    return np.where(~keep | none_kept, dropped, y)


def assert_matches(got, want, dtype, log=False):
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    with np.errstate(over="ignore"):
        want_t = want.astype(dtype)  # beyond the dtype's range: +-inf
    inf = np.isinf(want_t)
    np.testing.assert_array_equal(got[inf], want_t[inf])
    ok = ~nan & ~inf
    err = np.abs(got[ok].astype(np.float64) - want[ok])
    bound = (10 * TOL[dtype] + TOL[dtype] * np.abs(want[ok])) if log else TOL[dtype] * want[ok] + 1e-300
    assert np.all(err <= bound), err.max()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("algorithm", normkit.SOFTMAX_ALGORITHMS)
def test_attention_shapes_against_float64(dtype, log, algorithm):
    rng = np.random.default_rng(3)
    batch, heads, length = 3, 4, 37
    scores = (rng.standard_normal((batch, heads, length, length)) * 3).astype(dtype)
    padding = rng.random((batch, 1, 1, length)) > 0.3
    padding[0, ..., :] = False  # a sequence of padding only: zeros, not NaN
    causal = np.tril(np.ones((length, length), bool))
    bias = rng.standard_normal((length, length)).astype(dtype)
    for scale, b, where in [(0.125, None, padding), (None, bias, None), (0.5, bias, padding & causal), (-2.0, bias[0], causal)]:
        want = reference(scores, scale, b, where, log)
        if log:
            got = normkit.log_softmax(scores, scale=scale, bias=b, where=where)
        else:
            got = normkit.softmax(scores, scale=scale, bias=b, where=where, algorithm=algorithm)
        assert got.dtype == dtype
        assert_matches(got, want, dtype, log)
    if not log:
        assert (got[0, :, 0, 1:] == 0).all()  # causal row 0 keeps only key 0 ...
        np.testing.assert_allclose(got[0, :, 0, 0], 1.0, rtol=TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_length_and_mask_position(dtype):
    rng = np.random.default_rng(9)
    for n in range(1, 70):
        x = (rng.standard_normal((4, n + 3)) * 5).astype(dtype)[:, 3 - n % 4:][:, :n]  # unaligned rows
        where = rng.random((4, n)) > 0.4
        bias = rng.standard_normal(n).astype(dtype)
        for log in (False, True):
            f = normkit.log_softmax if log else normkit.softmax
            assert_matches(f(x, scale=0.7, bias=bias, where=where), reference(x, 0.7, bias, where, log), dtype, log)
    empty = np.zeros((4, 0), dtype)
    assert normkit.softmax(empty, scale=2.0, where=np.zeros(0, bool)).shape == (4, 0)


@pytest.mark.parametrize("log", [False, True])
def test_special_values(log):
    inf, nan = np.inf, np.nan
    x = np.array([
        [nan, 1.0, 2.0, 3.0],    # NaN excluded: ignored
        [1.0, nan, 2.0, 3.0],    # NaN included: NaN among the included
        [inf, 1.0, 2.0, 3.0],    # +inf included
        [-inf, -inf, 5.0, 1.0],  # included entries all -inf (entries 0, 1 kept)
        [-inf, 0.0, 5.0, 1.0],
        [3e38, -3e38, 1.0, 3e38],
    ], np.float32)
    where = np.array([False, True, True, False])
    f = normkit.log_softmax if log else normkit.softmax
    got = f(x, where=np.broadcast_to(np.array([[False, True, True, True]] * 3 + [[True, True, False, False]] * 3), x.shape))
    keep = np.array([[False, True, True, True]] * 3 + [[True, True, False, False]] * 3)
    assert_matches(got, reference(x, None, None, keep, log), np.float32, log)
    # masked entries are exactly 0 / -inf even in NaN rows
    assert np.all(got[~keep] == (-inf if log else 0.0))
    # scale times a large finite x that overflows: +inf included, NaN row
    big = f(np.array([3e38, 1.0], np.float32), scale=10.0, where=where[:2] | True)
    assert np.isnan(big).all() if not log else np.isnan(big[0])


def test_where_without_scale_or_bias_and_in_place():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 10)).astype(np.float32)
    where = rng.random((6, 10)) > 0.5
    want = reference(x, None, None, where)
    y = x.copy()
    assert normkit.softmax(y, where=where, out=y) is y
    assert_matches(y, want, np.float32)
    # bias is the output itself: read as a copy, the result unchanged
    y = x.copy()
    assert normkit.softmax(x, bias=y, out=y) is y
    assert_matches(y, reference(x, None, x, None), np.float32)
    # several axes and a Fortran-order out
    out = np.asfortranarray(np.zeros((6, 10), np.float64))
    normkit.softmax(x.astype(np.float64), axis=(0, 1), where=where, out=out)
    flat = reference(x.reshape(1, -1), None, None, where.reshape(1, -1))
    np.testing.assert_allclose(out.reshape(1, -1), flat, rtol=1e-13)


@pytest.mark.parametrize("log", [False, True])
def test_a_bool_mask_holding_other_bytes_than_0_and_1(log):
    """NumPy keeps any byte in a bool array: a uint8 array viewed as bool
    holds 2 (or 255) as True. The kernels read the mask as bytes, so every
    nonzero byte keeps its entry, as NumPy's own bool logic does."""
    x = np.random.default_rng(4).standard_normal((3, 40)).astype(np.float32)
    raw = np.tile(np.array([2, 0, 1, 255, 0], np.uint8), (3, 8))
    raw[2] = 0  # a row that keeps nothing
    where = raw.view(bool)
    assert where.dtype == bool and (where.view(np.uint8) > 1).any()
    f = normkit.log_softmax if log else normkit.softmax
    np.testing.assert_array_equal(f(x, where=where, scale=1.0), f(x, where=raw != 0, scale=1.0))


def test_broadcast_mask_is_not_expanded(native_calls):
    import importlib

    module = importlib.import_module("normkit.softmax")

    calls = native_calls(module)
    x = np.zeros((2, 8, 16, 16), np.float32)
    padding = np.ones((2, 1, 1, 16), bool)
    module.softmax(x, where=padding, bias=np.zeros(16, np.float32))
    (args,) = calls
    bias_table, bias_index, mask_table, mask_index = args[-4:]
    assert bias_table.shape == (1, 16) and mask_table.shape == (2, 16)
    assert bias_index.shape == mask_index.shape == (2 * 8 * 16,)
    np.testing.assert_array_equal(mask_index, np.repeat([0, 1], 8 * 16))


def test_dtype_argument():
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    y = normkit.softmax(x, dtype=np.float64)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, reference(x, None, None, None), rtol=1e-13)
    assert normkit.log_softmax(np.arange(4), dtype="float32").dtype == np.float32
    assert normkit.softmax(x, dtype=np.float16, where=[True, True, False]).dtype == np.float16
    assert normkit.softmax(np.float32(2.0), dtype=np.float64).dtype == np.float64


X = np.ones((3, 4), np.float32)


@pytest.mark.parametrize(
    "kwargs, exc, text",
    [
        ({"where": np.ones((3, 5), bool)}, ValueError, "where of shape (3, 5) does not broadcast to x's shape (3, 4)"),
        ({"where": np.ones((2, 3, 4), bool)}, ValueError, "does not broadcast"),
        ({"where": np.ones((3, 4), np.int8)}, TypeError, "where has dtype int8; expected bool"),
        ({"bias": np.ones(5)}, ValueError, "bias of shape (5,) does not broadcast"),
        ({"bias": np.ones(4, complex)}, TypeError, "bias has dtype complex128"),
        ({"scale": np.inf}, ValueError, "scale must be finite"),
        ({"scale": np.nan}, ValueError, "scale must be finite"),
        ({"scale": 10**400}, ValueError, "scale must be finite"),
        ({"scale": "2"}, TypeError, "scale must be a real number, got str"),
        ({"scale": True}, TypeError, "scale must be a real number, got bool"),
        ({"scale": 1.0, "dtype": np.int32}, TypeError, "dtype must be float16, float32 or float64"),
        ({"scale": 1.0, "dtype": np.longdouble}, TypeError, "dtype must be float16, float32 or float64"),
        ({"scale": 1.0, "axis": (0, 0)}, ValueError, "repeated"),
        ({"dtype": np.float64}, TypeError, "out has dtype float32, expected float64"),
    ],
)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_errors_leave_out_untouched(name, kwargs, exc, text):
    out = np.full(X.shape, SENTINEL, np.float32)
    with pytest.raises(exc) as info:
        getattr(normkit, name)(X, out=out, **kwargs)
    assert text in str(info.value) and str(info.value).startswith(name)
    assert (out == SENTINEL).all()


SCRIPT = """
import numpy as np, normkit, test_softmax_fused as t
assert normkit.cpu_info()["active"] == {isa!r}
for dtype in (np.float32, np.float64):
    t.test_every_length_and_mask_position(dtype)
for log in (False, True):
    t.test_special_values(log)
print("ok")
"""


@pytest.mark.parametrize("isa", normkit.cpu_info()["available"])
def test_every_isa(isa, run_with_isa):
    proc = run_with_isa(isa, SCRIPT.format(isa=isa), check=True)
    assert proc.stdout.startswith("ok")


def test_native_layer_checks_its_tables():
    """normkit._native.softmax_fused re-checks what memory safety rests
    on, whatever the Python layer passed."""
    from normkit import _native

    x = np.zeros((3, 4), np.float32)
    out = np.zeros_like(x)
    table = np.zeros((2, 4), np.float32)
    cases = [
        ((table, np.array([0, 1, 2], np.intp)), "index 2 out of range for 2 rows"),
        ((table, np.array([0, -1, 0], np.intp)), "index -1 out of range"),
        ((table, np.array([0, 1], np.intp)), "2 index entries, expected 3"),
        ((np.zeros((2, 5), np.float32), np.zeros(3, np.intp)), "rows of 5 elements, expected 4"),
        ((table, np.zeros(3, np.int32)), "bias: expected an index array"),
        ((out[:2], np.zeros(3, np.intp)), "bias shares memory with out"),
    ]
    for (t, k), text in cases:
        with pytest.raises((ValueError, TypeError)) as info:
            _native.softmax_fused(x, out, "auto", False, 1.0, t, k)
        assert text in str(info.value)
    with pytest.raises(ValueError, match="scale must be finite"):
        _native.softmax_fused(x, out, "auto", False, np.nan)
    with pytest.raises(ValueError, match="go together"):
        _native.softmax_fused(x, out, "auto", False, 1.0, table)
    logsumexp_out = np.zeros(2, np.float32)
    with pytest.raises(ValueError, match="expected one per row"):
        _native.logsumexp(x, logsumexp_out)
    with pytest.raises(ValueError, match="shares memory"):
        _native.logsumexp(x, x[0, :3])
