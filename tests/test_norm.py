"""normkit.layer_norm / rms_norm / crms_norm / add_rms_norm / add_layer_norm:
accuracy against a float64 NumPy computation (and torch when installed),
the special-value rules, and the NumPy contract (dtypes, axis, out=,
aliasing, errors before any write)."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.exceptions import AxisError

import normkit

RTOL = {np.float32: 1e-5, np.float64: 1e-12}
KINDS = ("layer", "rms", "crms")


def reference(kind, x, weight=None, bias=None, eps=None, axis=-1):
    """The norm in float64 from its definition. The LayerNorm centre is kept
    as an unevaluated sum c + c_lo, so |mean| >> std costs no digits."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    eps = {"layer": 1e-5, "rms": 1e-6, "crms": 1e-6}[kind] if eps is None else eps
    n = x.shape[-1]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if kind == "layer":
            c = x.mean(-1, keepdims=True)
            c_lo = (x - c).mean(-1, keepdims=True)
            d = (x - c) - c_lo
            ms = (d * d).mean(-1, keepdims=True)
        elif kind == "rms":
            d = x
            ms = (x * x).mean(-1, keepdims=True)
        else:
            d = x
            ms = ((x * x).sum(-1, keepdims=True) + x.sum(-1, keepdims=True) ** 2) / (n + 1)
        y = d / np.sqrt(ms + eps)
        if weight is not None:
            y = y * np.asarray(weight, np.float64)
        if bias is not None:
            y = y + np.asarray(bias, np.float64)
        y[~np.isfinite(x).all(-1)] = np.nan
    return np.moveaxis(y, -1, axis)


def call(kind, x, weight=None, bias=None, **kw):
    if kind == "layer":
        return normkit.layer_norm(x, weight, bias, **kw)
    assert bias is None
    return {"rms": normkit.rms_norm, "crms": normkit.crms_norm}[kind](x, weight, **kw)


def assert_norm_close(got, want, weight=None, rtol=None, axis=-1):
    """|got - want| <= rtol * (|want| + |weight|): relative to the result,
    with one output unit (|weight|) as the floor for results near 0; NaN
    exactly where the reference has NaN."""
    rtol = RTOL[got.dtype.type] if rtol is None else rtol
    got64 = np.asarray(got, np.float64)
    assert np.array_equal(np.isnan(got64), np.isnan(want)), "NaN pattern differs"
    w = 1.0 if weight is None else np.abs(np.asarray(weight, np.float64))
    w = np.moveaxis(np.broadcast_to(w, np.moveaxis(want, axis, -1).shape), -1, axis)
    ok = ~np.isnan(want)
    err = np.abs(got64[ok] - want[ok])
    bound = rtol * (np.abs(want[ok]) + w[ok])
    assert np.all(err <= bound), f"max err / bound {np.max(err / bound)}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 17), (64, 128), (2, 3, 300), (5, 4099)])
def test_matches_numpy_float64(kind, dtype, shape):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    w = rng.standard_normal(shape[-1]).astype(dtype)
    b = rng.standard_normal(shape[-1]).astype(dtype) if kind == "layer" else None
    for weight, bias in [(None, None), (w, b)]:
        y = call(kind, x, weight, bias)
        assert y.dtype == dtype and y.shape == x.shape
        assert_norm_close(y, reference(kind, x, weight, bias), weight)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch(dtype):
    """torch.nn.functional.layer_norm / rms_norm (in float64) on the same
    input. Skipped when torch is not installed (an optional peer; the float64
    NumPy reference is checked by the other tests)."""
    torch = pytest.importorskip("torch", reason="torch is an optional peer; not installed")
    F = torch.nn.functional
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((33, 384)) * 2 + 0.5).astype(dtype)
    w = rng.standard_normal(384).astype(dtype)
    b = rng.standard_normal(384).astype(dtype)
    t = lambda a: torch.from_numpy(a.astype(np.float64))  # noqa: E731
    want_ln = F.layer_norm(t(x), (384,), t(w), t(b), eps=1e-5).numpy()
    want_rms = F.rms_norm(t(x), (384,), t(w), eps=1e-6).numpy()
    assert_norm_close(normkit.layer_norm(x, w, b), want_ln, w)
    assert_norm_close(normkit.rms_norm(x, w), want_rms, w)


def test_large_mean_small_spread_is_stable():
    """A float32 row of 1e4 + N(0, 1): no sum / sum-of-squares cancellation."""
    rng = np.random.default_rng(2)
    for mean in (1e4, -3e5, 1e7):
        x = (mean + rng.standard_normal((4, 1000))).astype(np.float32)
        y = normkit.layer_norm(x)
        assert_norm_close(y, reference("layer", x))
        np.testing.assert_allclose(y.astype(np.float64).std(-1), 1.0, rtol=1e-4)
        y, s = normkit.add_layer_norm(x, np.zeros_like(x))
        assert_norm_close(y, reference("layer", x))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scale", [1e30, 3e38, 1e-30, 1e-42])
def test_huge_and_tiny_rows(kind, scale):
    rng = np.random.default_rng(3)
    x = (rng.uniform(-1, 1, (3, 50)) * scale).astype(np.float32)
    for eps in (0.0, 1e-5):
        with np.errstate(over="ignore", under="ignore"):
            assert_norm_close(call(kind, x, eps=eps), reference(kind, x, eps=eps))


@pytest.mark.parametrize("kind", KINDS)
def test_nan_and_inf_rows_become_nan(kind):
    x = np.arange(40, dtype=np.float32).reshape(4, 10) - 17
    x[0, 3] = np.nan
    x[1, 0] = np.inf
    x[2, 9] = -np.inf
    y = call(kind, x)
    assert np.isnan(y[:3]).all() and np.isfinite(y[3]).all()
    y, s = (normkit.add_layer_norm if kind == "layer" else normkit.add_rms_norm)(x, np.ones_like(x))
    assert np.isnan(y[:3]).all() and np.isfinite(y[3]).all()
    assert np.array_equal(s, x + 1, equal_nan=True)


def test_constant_rows_give_the_bias():
    x = np.full((3, 20), 4.25, np.float32)
    b = np.linspace(-1, 1, 20, dtype=np.float32)
    np.testing.assert_allclose(normkit.layer_norm(x, None, b), np.broadcast_to(b, x.shape), atol=1e-6)
    assert np.all(normkit.rms_norm(np.zeros((2, 5), np.float32)) == 0)


def test_crms_norm_is_rms_norm_of_the_zero_mean_vector():
    """Jiang et al. 2023: for x with zero mean, CRMSNorm of its first d - 1
    entries equals the first d - 1 entries of RMSNorm(x)."""
    rng = np.random.default_rng(4)
    full = rng.standard_normal((6, 65))
    full -= full.mean(-1, keepdims=True)
    w = rng.standard_normal(64)
    got = normkit.crms_norm(full[:, :-1], w, eps=1e-6)
    want = normkit.rms_norm(full, np.append(w, 1.0), eps=1e-6)[:, :-1]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2])
@pytest.mark.parametrize("kind", KINDS)
def test_every_axis(kind, axis):
    x = np.random.default_rng(5).standard_normal((4, 5, 6)).astype(np.float32)
    w = np.linspace(0.5, 2, x.shape[axis]).astype(np.float32)
    y = call(kind, x, w, axis=axis)
    wb = w.reshape([-1 if i == axis % 3 else 1 for i in range(3)])
    assert_norm_close(y, reference(kind, x, axis=axis) * wb, rtol=1e-5)


@pytest.mark.parametrize(
    "dtype, result",
    [(np.int8, np.float16), (np.uint8, np.float16), (np.bool_, np.float16), (np.int16, np.float32),
     (np.int64, np.float64), (np.float16, np.float16), (np.float32, np.float32)],
)
def test_dtype_rules_follow_numpy_ufuncs(dtype, result):
    x = (np.arange(24).reshape(3, 8) % 5).astype(dtype)
    w = np.linspace(1, 2, 8)  # float64 weight: converted, does not promote
    if dtype == np.float16:
        w = w.astype(np.float32)  # a half x takes float32 or half weights only (test_half.py)
    y = normkit.rms_norm(x, w)
    assert y.dtype == result
    rtol = 2e-3 if result == np.float16 else 1e-5
    np.testing.assert_allclose(y.astype(np.float64), reference("rms", x, w), rtol=rtol, atol=rtol)
    s_dtype = np.result_type(np.result_type(dtype, np.float32), np.float16)
    y, s = normkit.add_rms_norm(x, np.ones(8, np.float32) * np.ones((3, 1), np.float32))
    assert y.dtype == s.dtype == s_dtype


@pytest.mark.parametrize("bad", [np.array([1 + 2j]), np.array(["a", "b"]), np.array([object(), 1], dtype=object)])
def test_unsupported_dtypes_raise_type_error(bad):
    with pytest.raises(TypeError, match="dtype"):
        normkit.layer_norm(bad)


def test_empty_and_0d():
    for shape in [(0,), (5, 0), (0, 5), (2, 0, 3)]:
        x = np.ones(shape, np.float32)
        assert normkit.layer_norm(x).shape == shape
        w = np.ones(shape[-1], np.float32)
        y, s = normkit.add_rms_norm(x, x, w)
        assert y.shape == s.shape == shape
    with pytest.raises(AxisError):
        normkit.rms_norm(np.float32(2.0))


class TestErrorsBeforeWrites:
    def setup_method(self):
        self.x = np.random.default_rng(6).standard_normal((4, 10)).astype(np.float32)
        self.out = np.full_like(self.x, 7.0)

    def check(self, error, match, **kw):
        x = kw.pop("x", self.x)
        fn = kw.pop("fn", normkit.layer_norm)
        before = x.copy()
        with pytest.raises(error, match=match):
            fn(x, **kw)
        assert np.all(self.out == 7.0) and np.array_equal(x, before)

    def test_weight_and_bias_shape(self):
        self.check(ValueError, "weight", weight=np.ones(9, np.float32), out=self.out)
        self.check(ValueError, "weight", weight=np.ones((1, 10), np.float32), out=self.out)
        self.check(ValueError, "weight", weight=np.float32(1.0), out=self.out)
        self.check(ValueError, "bias", bias=np.ones(11), out=self.out)
        self.check(ValueError, "weight", fn=normkit.rms_norm, weight=np.ones(3), out=self.out)
        self.check(ValueError, "weight", fn=normkit.crms_norm, weight=np.ones(3), out=self.out)
        self.check(TypeError, "weight", weight=np.ones(10, complex), out=self.out)

    def test_weight_follows_the_axis(self):
        self.check(ValueError, "weight", weight=np.ones(10), axis=0, out=self.out)

    def test_eps(self):
        for eps in (-1.0, np.nan, np.inf):
            self.check(ValueError, "eps", eps=eps, out=self.out)
        self.check(TypeError, "eps", eps="small", out=self.out)

    def test_bad_out(self):
        self.check(ValueError, "out", out=np.zeros((4, 11), np.float32))
        self.check(TypeError, "out", out=np.zeros((4, 10), np.float64))
        self.check(TypeError, "out", out=[[0.0] * 10] * 4)
        ro = np.zeros_like(self.x)
        ro.flags.writeable = False
        self.check(ValueError, "read-only", out=ro)

    def test_add_forms(self):
        x, r = self.x, self.x * 2
        o1, o2 = np.full_like(x, 7.0), np.full_like(x, 7.0)
        bad = [
            (ValueError, "residual", dict(residual=r[:, :5], out=(o1, o2))),
            (TypeError, "tuple", dict(residual=r, out=o1)),
            (TypeError, "tuple", dict(residual=r, out=(o1,))),
            (ValueError, "share memory", dict(residual=r, out=(o1, o1))),
            (ValueError, "share memory", dict(residual=r, out=(o1, o1[::-1]))),
            (ValueError, r"out\[1\]", dict(residual=r, out=(o1, o2[:, :3]))),
            (ValueError, "weight", dict(residual=r, weight=np.ones(3), out=(o1, o2))),
            (ValueError, "bias", dict(residual=r, bias=np.ones(3), out=(o1, o2))),
        ]
        for error, match, kw in bad:
            r_before = r.copy()
            with pytest.raises(error, match=match):
                normkit.add_layer_norm(x, **kw)
            assert np.all(o1 == 7.0) and np.all(o2 == 7.0) and np.array_equal(r, r_before)


class TestOut:
    def setup_method(self):
        rng = np.random.default_rng(7)
        self.x = rng.standard_normal((6, 40)).astype(np.float32)
        self.r = rng.standard_normal((6, 40)).astype(np.float32)
        self.w = rng.standard_normal(40).astype(np.float32)

    @pytest.mark.parametrize("kind", KINDS)
    def test_out_and_in_place(self, kind):
        out = np.empty_like(self.x)
        assert call(kind, self.x, self.w, out=out) is out
        assert_norm_close(out, reference(kind, self.x, self.w), self.w)
        x = self.x.copy()
        assert call(kind, x, self.w, out=x) is x
        assert_norm_close(x, reference(kind, self.x, self.w), self.w)

    def test_non_contiguous_and_overlapping_out(self):
        buf = np.full((6, 80), -7.0, np.float32)
        normkit.layer_norm(self.x, out=buf[:, ::2])
        assert_norm_close(buf[:, ::2], reference("layer", self.x))
        assert np.all(buf[:, 1::2] == -7.0)
        flat = np.random.default_rng(8).standard_normal(41 * 6).astype(np.float32)
        x, out = flat[:-6].reshape(5, 48), flat[6:].reshape(5, 48)
        want = reference("rms", x.copy())
        normkit.rms_norm(x, out=out)
        assert_norm_close(out, want)

    @pytest.mark.parametrize("fn, kind", [(normkit.add_rms_norm, "rms"), (normkit.add_layer_norm, "layer")])
    def test_add_forms_return_norm_and_sum(self, fn, kind):
        x, r, w = self.x, self.r, self.w
        s_want = x + r
        y, s = fn(x, r, w)
        assert np.array_equal(s, s_want)
        assert_norm_close(y, reference(kind, s_want, w), w)
        o1, o2 = np.empty_like(x), np.empty_like(x)
        res = fn(x, r, w, out=(o1, o2))
        assert res[0] is o1 and res[1] is o2
        assert np.array_equal(o1, y) and np.array_equal(o2, s)

    @pytest.mark.parametrize("fn", [normkit.add_rms_norm, normkit.add_layer_norm])
    @pytest.mark.parametrize("order", ["x_r", "r_x"])
    def test_add_forms_in_place(self, fn, order):
        y_want, s_want = fn(self.x, self.r, self.w)
        x, r = self.x.copy(), self.r.copy()
        out = (x, r) if order == "x_r" else (r, x)
        y, s = fn(x, r, self.w, out=out)
        assert y is out[0] and s is out[1]
        assert np.array_equal(s, s_want)
        assert_norm_close(y, y_want.astype(np.float64), self.w, rtol=2e-5)

    def test_add_forms_overlapping_and_strided_outputs(self):
        y_want, s_want = normkit.add_layer_norm(self.x, self.r)
        x = self.x.copy()
        o1 = np.empty((6, 80), np.float32)[:, ::2]
        normkit.add_layer_norm(x, self.r, out=(o1, x))  # sum over x, normed strided
        assert np.array_equal(x, s_want)
        assert_norm_close(o1, y_want.astype(np.float64), rtol=2e-5)
        flat = np.concatenate([self.x.ravel(), np.zeros(8, np.float32)])
        x, shifted = flat[:-8].reshape(6, 40), flat[8:].reshape(6, 40)
        y_want, s_want = normkit.add_rms_norm(x.copy(), self.r)
        o2 = np.empty_like(x)
        normkit.add_rms_norm(x, self.r, out=(shifted, o2))  # normed partially over x
        assert np.array_equal(o2, s_want)
        assert_norm_close(shifted, y_want.astype(np.float64), rtol=2e-5)

    def test_add_forms_other_axis_and_dtypes(self):
        x = self.x.astype(np.float64)
        y, s = normkit.add_layer_norm(x, self.r, axis=0)  # float64 + float32 -> float64
        assert y.dtype == s.dtype == np.float64
        assert np.array_equal(s, x + self.r)
        assert_norm_close(y, reference("layer", x + self.r, axis=0), axis=0)


def test_native_refuses_a_weight_or_bias_overlapping_an_output():
    """Issue 10, item 4, as for l1_norm: the native norms refuse a weight or
    bias that shares memory with out (or sum_out), before any write."""
    from normkit import _native

    x, r = np.ones((3, 8), np.float32), np.full((3, 8), 2.0, np.float32)
    out, sum_out = np.full((3, 8), 7.0, np.float32), np.full((3, 8), 7.0, np.float32)
    ones = np.ones(8, np.float32)
    for weight, bias, name in [(out[0], None, "weight"), (ones, out[2, ::-1], "bias"), (out.reshape(-1)[4:12], None, "weight")]:
        with pytest.raises(ValueError, match=f"{name} shares memory with out"):
            _native.norm(x, out, "layer", 1e-5, weight, bias)
        with pytest.raises(ValueError, match=f"{name} shares memory with out"):
            _native.add_norm(x, r, out, sum_out, "layer", 1e-5, weight, bias)
    with pytest.raises(ValueError, match="bias shares memory with sum_out"):
        _native.add_norm(x, r, out, sum_out, "layer", 1e-5, ones, sum_out[1])
    assert (out == 7.0).all() and (sum_out == 7.0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_weight_sharing_memory_with_out_reads_the_weight_before_writing(kind):
    """Through the public API a weight (or bias) that is a view of ``out``
    still works, with the result of a copy."""
    rng = np.random.default_rng(11)
    x, r = rng.standard_normal((6, 40)).astype(np.float32), rng.standard_normal((6, 40)).astype(np.float32)
    # The same input memory for both calls: summation order follows the
    # input rows' alignment.
    bias = {"bias": x[1].copy()} if kind == "layer" else {}
    want = call(kind, x, x[0].copy(), **bias)
    bias = {"bias": x[1]} if kind == "layer" else {}
    assert call(kind, x, x[0], out=x, **bias) is x
    np.testing.assert_array_equal(x, want)
    if kind == "crms":
        return
    fn = normkit.add_layer_norm if kind == "layer" else normkit.add_rms_norm
    a, b = x.copy(), r
    want_y, want_s = fn(a, b, b[2].copy())
    got = fn(a, b, b[2], out=(a, b))
    assert got[0] is a and got[1] is b
    np.testing.assert_array_equal(a, want_y)
    np.testing.assert_array_equal(b, want_s)


def test_weights_reach_the_native_layer_uncopied(native_calls):
    """Weights are copied at most once: the Python layer converts a dtype
    only when it must (here float64 -> float32) and otherwise hands over the
    caller's array; the native layer makes the one private copy."""
    import normkit.norm as mod

    seen = native_calls(mod)
    x = np.ones((3, 4), np.float32)
    w, b = np.full(4, 2.0, np.float32), np.full(4, 3.0, np.float32)
    normkit.layer_norm(x, w, b)
    assert seen[-1][4] is w and seen[-1][5] is b
    normkit.add_rms_norm(x, x, w)
    assert seen[-1][6] is w
    w64 = w.astype(np.float64)
    normkit.rms_norm(x, w64)
    assert seen[-1][4].dtype == np.float32 and not np.shares_memory(seen[-1][4], w64)


@pytest.mark.parametrize(
    "make",
    [lambda a: a.T, lambda a: a[:, ::3], lambda a: a[::-1, ::-1], lambda a: np.asfortranarray(a)],
)
def test_non_contiguous_inputs(make):
    a = np.random.default_rng(9).standard_normal((30, 30)).astype(np.float32)
    x = make(a)
    for kind in KINDS:
        assert_norm_close(call(kind, x), reference(kind, x))
        assert_norm_close(call(kind, x, axis=0), reference(kind, x, axis=0))


def test_threads_give_the_same_result():
    x = np.random.default_rng(10).standard_normal((512, 1000)).astype(np.float32)
    before = normkit.get_num_threads()
    try:
        normkit.set_num_threads(1)
        one = [normkit.layer_norm(x), normkit.rms_norm(x), normkit.add_layer_norm(x, x)[0]]
        normkit.set_num_threads(2)
        two = [normkit.layer_norm(x), normkit.rms_norm(x), normkit.add_layer_norm(x, x)[0]]
    finally:
        normkit.set_num_threads(before)
    for a, b in zip(one, two):
        assert np.array_equal(a, b)


SCRIPT = textwrap.dedent(
    """
    import numpy as np, normkit, sys
    from test_norm import reference, assert_norm_close
    assert normkit.cpu_info()["active"] == "{isa}", normkit.cpu_info()
    rng = np.random.default_rng(11)
    for n in list(range(1, 70)) + [255, 256, 257, 1024, 4099]:
        for dtype in (np.float32, np.float64):
            x = (rng.standard_normal((3, n)) * 5 + 2).astype(dtype)
            r = rng.standard_normal((3, n)).astype(dtype)
            w = rng.standard_normal(n).astype(dtype)
            b = rng.standard_normal(n).astype(dtype)
            assert_norm_close(normkit.layer_norm(x, w, b), reference("layer", x, w, b), w)
            assert_norm_close(normkit.rms_norm(x, w), reference("rms", x, w), w)
            assert_norm_close(normkit.crms_norm(x, w), reference("crms", x, w), w)
            y, s = normkit.add_layer_norm(x, r, w, b)
            assert np.array_equal(s, x + r)
            assert_norm_close(y, reference("layer", x + r, w, b), w)
            y, s = normkit.add_rms_norm(x, r, w)
            assert_norm_close(y, reference("rms", x + r, w), w)
    print("ok")
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


finite_or_special = st.one_of(
    st.floats(-1e4, 1e4, width=32),
    st.sampled_from([-np.inf, np.inf, np.nan, 0.0, -3e38, 3e38, 1e-30]),
)


@settings(max_examples=150, deadline=None)
@given(
    x=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=40), elements=finite_or_special),
    data=st.data(),
)
def test_hypothesis_against_numpy(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    kind = data.draw(st.sampled_from(KINDS))
    eps = data.draw(st.sampled_from([1e-5, 1e-6, 0.5]))
    with np.errstate(invalid="ignore", over="ignore"):
        assert_norm_close(call(kind, x, eps=eps, axis=axis), reference(kind, x, eps=eps, axis=axis), axis=axis)
