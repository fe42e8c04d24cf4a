"""``return_stats=True`` and tuple ``axis`` of the norms (issue 13): the
statistics against float64 references on every ISA, their shape, dtype and
special values; norms over several trailing axes against the manual
reshape; the errors for bad tuples and weights, raised before any write."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.exceptions import AxisError

import normkit

KINDS = ("layer", "rms", "crms")
EPS = {"layer": 1e-5, "rms": 1e-6, "crms": 1e-6}
#: Relative error allowed on the statistics, as on y in test_norm: measured
#: up to ~2e-7 (float32) and ~5e-16 (float64) on the rows below, more where
#: LayerNorm's variance is small next to the squared mean.
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def reference_stats(kind, x, axes, eps=None):
    """(mean, rstd) in float64 from the definitions, keepdims over ``axes``;
    NaN for rows with a non-finite entry and for empty rows. Each row is
    scaled by 2^k (exact) to max |x| in [1, 2), so squares of 1e200 do
    not overflow nor those of 1e-200 underflow; the mean is refined once."""
    x = np.asarray(x, dtype=np.float64)
    eps = EPS[kind] if eps is None else eps
    n = int(np.prod([x.shape[a] for a in axes]))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        top = np.abs(x).max(axis=axes, keepdims=True, initial=0.0)
        k = np.where(np.isfinite(top) & (top > 0), -np.floor(np.log2(np.where(top > 0, top, 1.0))), 0.0).astype(int)
        xs = np.ldexp(x, k)
        s = xs.sum(axis=axes, keepdims=True)
        if kind == "layer":
            mean = s / n
            mean = mean + (xs - mean).sum(axis=axes, keepdims=True) / n
            ms = ((xs - mean) ** 2).sum(axis=axes, keepdims=True) / n
        elif kind == "rms":
            mean = np.zeros_like(s)
            ms = (xs * xs).sum(axis=axes, keepdims=True) / n
        else:
            mean = np.zeros_like(s)
            ms = ((xs * xs).sum(axis=axes, keepdims=True) + s * s) / (n + 1)
        # 1 / sqrt(ms / 2^2k + eps) = 2^k / sqrt(ms + eps 2^2k); when
        # eps 2^2k overflows, ms is negligible, and when ms = 0 (eps 2^2k
        # may underflow), it is exactly 1 / sqrt(eps).
        eps_s = np.ldexp(eps, 2 * k)
        rstd = np.where(np.isfinite(eps_s) & (ms > 0), np.ldexp(1.0 / np.sqrt(ms + eps_s), k), 1.0 / np.sqrt(eps))
        mean = np.ldexp(mean, -k)
        bad = ~np.isfinite(x).all(axis=axes, keepdims=True) | (n == 0)
    mean[bad] = np.nan
    rstd[bad] = np.nan
    return mean, rstd


def call(kind, x, weight=None, bias=None, **kw):
    if kind == "layer":
        return normkit.layer_norm(x, weight, bias, **kw)
    return {"rms": normkit.rms_norm, "crms": normkit.crms_norm}[kind](x, weight, **kw)


def check_stats(kind, x, y, stats, axes, eps=None):
    """``stats`` (what ``return_stats`` gave after ``y``) against the
    float64 reference: keepdims shape, the computation dtype (float32 for
    results of at most 4 bytes), NaN exactly where the reference has it,
    and |mean error| <= rtol (|mean| + std), |rstd error| <= rtol rstd."""
    want_mean, want_rstd = reference_stats(kind, x, axes, eps)
    compute = np.dtype(np.float32) if y.dtype.itemsize <= 4 else np.dtype(np.float64)
    if kind == "layer":
        mean, rstd = stats
        assert mean.shape == want_mean.shape and mean.dtype == compute
    else:
        (rstd,) = stats
        mean = None
    assert rstd.shape == want_rstd.shape and rstd.dtype == compute
    rtol = RTOL[compute]
    np.testing.assert_array_equal(np.isnan(rstd), np.isnan(want_rstd))
    ok = ~np.isnan(want_rstd)
    assert np.all(np.abs(rstd[ok] - want_rstd[ok]) <= rtol * want_rstd[ok])
    if mean is not None:
        np.testing.assert_array_equal(np.isnan(mean), np.isnan(want_mean))
        spread = np.abs(want_mean[ok]) + 1.0 / want_rstd[ok]
        assert np.all(np.abs(mean[ok] - want_mean[ok]) <= rtol * spread)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape, axis",
    [((7,), -1), ((3, 17), -1), ((3, 17), 0), ((2, 5, 33), 1), ((4, 3, 5), (-2, -1)), ((2, 3, 4, 5), (1, 2, 3)), ((3, 4), None)],
)
def test_stats_match_float64(kind, dtype, shape, axis):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    y, *stats = call(kind, x, return_stats=True, axis=axis)
    axes = tuple(range(x.ndim)) if axis is None else tuple(a % x.ndim for a in np.atleast_1d(axis))
    check_stats(kind, x, y, stats, axes)
    plain = call(kind, x, axis=axis)
    if axes == tuple(range(x.ndim - len(axes), x.ndim)):
        # Both read x in place: the same sums, bit for bit.
        np.testing.assert_array_equal(y, plain)
    else:
        # Both read a copy of x, at addresses that may split the vector
        # sums differently (the last bit; see normkit.norm's Rust docs).
        np.testing.assert_allclose(y, plain, rtol=RTOL[np.dtype(dtype)], atol=RTOL[np.dtype(dtype)])


@pytest.mark.parametrize("kind", KINDS)
def test_stats_of_half_and_integer_inputs_are_computed_dtype(kind):
    """float16 (and int8 / bool -> float16) inputs compute in float32, and
    their statistics are float32; int32 inputs compute in float64."""
    x = np.arange(24, dtype=np.float16).reshape(4, 6) / 8
    for a in (x, (x * 8).astype(np.int8), (x * 8).astype(np.int32)):
        y, *stats = call(kind, a, return_stats=True)
        check_stats(kind, a, y, stats, (1,))
        assert y.dtype == normkit.layer_norm(a).dtype


@pytest.mark.parametrize("kind", KINDS)
def test_stats_of_special_rows(kind):
    """NaN / inf rows give NaN statistics; constant rows a mean of the value
    and rstd 1 / sqrt(eps) (LayerNorm); huge and tiny rows stay accurate."""
    x = np.random.default_rng(2).standard_normal((7, 37)).astype(np.float32)
    x[1, 5] = np.nan
    x[2, 36] = np.inf
    x[3, 0] = -np.inf
    x[4] = 2.5
    x[5] *= 1e30
    x[6] *= 1e-30
    y, *stats = call(kind, x, return_stats=True)
    check_stats(kind, x, y, stats, (1,))
    assert np.isnan(stats[-1][1:4]).all()
    if kind == "layer":
        assert stats[0][4, 0] == 2.5 and stats[1][4, 0] == np.float32(1 / np.sqrt(1e-5))


def test_zero_rows_without_eps_have_infinite_rstd():
    y, mean, rstd = normkit.layer_norm(np.zeros((2, 8)), eps=0.0, return_stats=True)
    assert np.isnan(y).all() and (mean == 0).all() and (rstd == np.inf).all()


@pytest.mark.parametrize("kind", KINDS)
def test_empty_axes_give_nan_stats_and_empty_batches_empty_stats(kind):
    for shape, axis, kept in [((3, 0), -1, (3, 1)), ((2, 3, 0), (-2, -1), (2, 1, 1)), ((0, 4), -1, (0, 1)), ((0,), -1, (1,))]:
        x = np.ones(shape, np.float32)
        y, *stats = call(kind, x, return_stats=True, axis=axis)
        assert y.shape == shape
        for s in stats:
            assert s.shape == kept and s.dtype == np.float32 and np.isnan(s).all()
    y, s, *stats = normkit.add_layer_norm(np.ones((3, 0)), np.ones((3, 0)), return_stats=True)
    assert [a.shape for a in stats] == [(3, 1), (3, 1)] and all(np.isnan(a).all() for a in stats)


@pytest.mark.parametrize("kind", KINDS)
def test_out_receives_only_y(kind):
    x = np.random.default_rng(3).standard_normal((5, 40)).astype(np.float32)
    out = np.empty_like(x)
    y, *stats = call(kind, x, out=out, return_stats=True)
    assert y is out
    np.testing.assert_array_equal(out, call(kind, x))
    assert all(not np.shares_memory(s, out) for s in stats)
    # In place, and with a weight that is a view of out (computed into a
    # temporary, then copied).
    want_y, *want_stats = call(kind, x, x[0].copy(), return_stats=True)
    got_y, *got_stats = call(kind, x, x[0], out=x, return_stats=True)
    assert got_y is x
    np.testing.assert_array_equal(x, want_y)
    for a, b in zip(got_stats, want_stats):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["layer", "rms"])
def test_fused_forms_return_the_stats_of_the_sum(kind):
    rng = np.random.default_rng(4)
    x, r = rng.standard_normal((2, 3, 50)), rng.standard_normal((2, 3, 50))
    fn = normkit.add_layer_norm if kind == "layer" else normkit.add_rms_norm
    for axis in (-1, (-2, -1), 1):
        normed, s, *stats = fn(x, r, return_stats=True, axis=axis)
        np.testing.assert_array_equal(s, x + r)
        axes = tuple(a % 3 for a in np.atleast_1d(axis))
        check_stats(kind, x + r, normed, stats, axes)
        assert len(stats) == (2 if kind == "layer" else 1)
        # The fused kernels normalize the sum they write, whose address (and
        # so the vector loop's alignment, rust/norm/mod.rs) differs between
        # calls: the last bit may differ. Measured: at most 1 ulp.
        np.testing.assert_array_max_ulp(normed, fn(x, r, axis=axis)[0], maxulp=2)
    a, b = x.copy(), r.copy()
    got = fn(a, b, out=(a, b), return_stats=True)
    assert got[0] is a and got[1] is b and len(got) == 2 + len(stats)


def test_stats_across_threads():
    """Rows split over worker threads write their own statistics."""
    x = np.random.default_rng(5).standard_normal((600, 300)).astype(np.float32)
    before = normkit.get_num_threads()
    try:
        normkit.set_num_threads(1)
        one = normkit.layer_norm(x, return_stats=True) + normkit.add_rms_norm(x, x, return_stats=True)
        normkit.set_num_threads(3)
        three = normkit.layer_norm(x, return_stats=True) + normkit.add_rms_norm(x, x, return_stats=True)
    finally:
        normkit.set_num_threads(before)
    for a, b in zip(one, three):
        np.testing.assert_array_equal(a, b)
    check_stats("layer", x, one[0], one[1:3], (1,))


# --- several trailing axes ---------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_trailing_axes_equal_the_manual_reshape(kind, dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4, 5, 6)).astype(dtype) * 2 + 1
    w = rng.standard_normal((5, 6)).astype(dtype)
    b = rng.standard_normal((5, 6)).astype(dtype) if kind == "layer" else None
    flat = x.reshape(12, 30)
    want = call(kind, flat, w.reshape(30), None if b is None else b.reshape(30)).reshape(x.shape)
    for axis in [(-2, -1), (2, 3), (-1, 2), (3, -2)]:
        np.testing.assert_array_equal(call(kind, x, w, b, axis=axis), want)
    # Non-contiguous x and out: copied / written through a temporary.
    xt = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    out = np.empty((3, 4, 6, 5), dtype).transpose(0, 1, 3, 2)
    assert call(kind, xt, w, b, axis=(-2, -1), out=out) is out
    np.testing.assert_allclose(out, want, rtol=RTOL[np.dtype(dtype)] * 10, atol=RTOL[np.dtype(dtype)] * 10)
    # Three trailing axes, and None (every axis).
    w3 = rng.standard_normal((4, 5, 6)).astype(dtype)
    want3 = call(kind, x.reshape(3, 120), w3.reshape(120)).reshape(x.shape)
    np.testing.assert_array_equal(call(kind, x, w3, axis=(1, 2, 3)), want3)
    np.testing.assert_array_equal(call(kind, x[0], w3, axis=None), want3[0])


@pytest.mark.parametrize("kind", ["layer", "rms"])
def test_fused_forms_over_trailing_axes(kind):
    rng = np.random.default_rng(7)
    x, r = rng.standard_normal((2, 3, 4, 8)), rng.standard_normal((2, 3, 4, 8))
    w = rng.standard_normal((4, 8))
    fn = normkit.add_layer_norm if kind == "layer" else normkit.add_rms_norm
    normed, s = fn(x, r, w, axis=(-2, -1))
    want_normed, want_s = fn(x.reshape(6, 32), r.reshape(6, 32), w.reshape(32))
    # Bit-equal sums; the normalized values to the last bit or two (the
    # sums' addresses differ, see test_fused_forms_return_the_stats_of_the_sum).
    np.testing.assert_array_max_ulp(normed, want_normed.reshape(x.shape), maxulp=2)
    np.testing.assert_array_equal(s, want_s.reshape(x.shape))


class TestErrorsBeforeWrites:
    """Every bad tuple axis, weight or bias is refused before ``out`` (or
    x, for in-place calls) is written."""

    def setup_method(self):
        self.x = np.random.default_rng(8).standard_normal((2, 3, 4)).astype(np.float32)
        self.out = np.full_like(self.x, 7.0)

    def check(self, error, match, fn=normkit.layer_norm, **kw):
        before = self.x.copy()
        with pytest.raises(error, match=match):
            fn(self.x, out=self.out, **kw)
        assert np.all(self.out == 7.0) and np.array_equal(self.x, before)

    @pytest.mark.parametrize("return_stats", [False, True])
    def test_axes(self, return_stats):
        kw = {"return_stats": return_stats}
        self.check(ValueError, r"layer_norm: axis \(0, 2\) are not the trailing axes of a 3-d x", axis=(0, 2), **kw)
        self.check(ValueError, r"rms_norm: axis \(0, 1\) are not the trailing axes", fn=normkit.rms_norm, axis=(0, 1), **kw)
        self.check(ValueError, r"crms_norm: axis \(1, -2\) has repeated entries", fn=normkit.crms_norm, axis=(1, -2), **kw)
        self.check(AxisError, "layer_norm: axis 3 is out of bounds", axis=(2, 3), **kw)
        self.check(TypeError, "layer_norm: axis must be an integer, got float", axis=(1, 2.0), **kw)
        self.check(TypeError, "layer_norm: axis must be an integer, got list", axis=[1, 2], **kw)

    def test_weight_and_bias_shapes(self):
        self.check(ValueError, r"layer_norm: weight has shape \(12,\), expected \(3, 4\)", weight=np.ones(12), axis=(-2, -1))
        self.check(ValueError, r"weight has shape \(4, 3\), expected \(3, 4\)", weight=np.ones((4, 3)), axis=(-2, -1))
        self.check(ValueError, r"bias has shape \(1, 3, 4\), expected \(3, 4\)", bias=np.ones((1, 3, 4)), axis=(1, 2))
        self.check(ValueError, r"rms_norm: weight has shape \(3, 4\), expected \(4,\)", fn=normkit.rms_norm, weight=np.ones((3, 4)))
        self.check(ValueError, r"weight has shape \(4,\), expected \(3,\)", fn=normkit.crms_norm, weight=np.ones(4), axis=1)

    def test_fused_forms(self):
        for fn in (normkit.add_layer_norm, normkit.add_rms_norm):
            s_out = np.full_like(self.x, 7.0)
            with pytest.raises(ValueError, match="not the trailing axes"):
                fn(self.x, self.x, out=(self.out, s_out), axis=(0, 2), return_stats=True)
            with pytest.raises(ValueError, match=r"weight has shape \(12,\), expected \(3, 4\)"):
                fn(self.x, self.x, np.ones(12), out=(self.out, s_out), axis=(-1, -2))
            assert np.all(self.out == 7.0) and np.all(s_out == 7.0)


def test_native_checks_the_statistics_arrays():
    """Called directly, the native layer refuses statistics arrays of the
    wrong length, dtype or layout, or sharing memory with anything else,
    before any write."""
    from normkit import _native

    x = np.ones((3, 8), np.float32)
    out = np.full((3, 8), 7.0, np.float32)
    good = np.empty(3, np.float32)
    for mean, match in [
        (np.empty(4, np.float32), "mean: 4 elements, expected one per row"),
        (np.empty(3, np.float64), "mean"),
        (np.empty(6, np.float32)[::2], "mean: array must be C-contiguous"),
        (out[0, :3], "mean shares memory with out"),
        (x[0, :3], "mean shares memory with an input"),
        (good, "rstd and mean must not share memory"),
    ]:
        with pytest.raises((ValueError, TypeError), match=match):
            _native.norm(x, out, "layer", 1e-5, None, None, mean, good)
    assert (out == 7.0).all()


SCRIPT = textwrap.dedent(
    """
    import numpy as np, normkit
    from test_norm_stats import KINDS, call, check_stats
    assert normkit.cpu_info()["active"] == "{isa}", normkit.cpu_info()
    rng = np.random.default_rng(9)
    for n in list(range(1, 70)) + [255, 256, 257, 1024, 4099]:
        for dtype in (np.float32, np.float64):
            x = (rng.standard_normal((5, n)) * 5 + 2).astype(dtype)
            x[1, n // 2] = np.nan
            x[2] *= 1e30 if dtype == np.float32 else 1e200
            x[3] = 1e4 + rng.standard_normal(n)
            x[4, 0] = 50.0
            for kind in KINDS:
                y, *stats = call(kind, x, return_stats=True)
                check_stats(kind, x, y, stats, (1,))
                y, *stats = call(kind, x.reshape(5, 1, n), return_stats=True, axis=(-2, -1))
                check_stats(kind, x.reshape(5, 1, n), y, stats, (1, 2))
            r = rng.standard_normal((5, n)).astype(dtype)
            y, s, *stats = normkit.add_layer_norm(x, r, return_stats=True)
            check_stats("layer", s, y, stats, (1,))
            y, s, *stats = normkit.add_rms_norm(x, r, return_stats=True)
            check_stats("rms", s, y, stats, (1,))
    print("ok")
    """
)


@pytest.mark.parametrize("isa", normkit.cpu_info()["available"])
def test_stats_on_every_isa(isa, run_with_isa):
    proc = run_with_isa(isa, SCRIPT.format(isa=isa))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")


finite_or_special = st.one_of(
    st.floats(-1e4, 1e4, width=32),
    st.sampled_from([-np.inf, np.inf, np.nan, 0.0, -3e38, 3e38, 1e-30]),
)


@settings(max_examples=150, deadline=None)
@given(
    x=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=9), elements=finite_or_special),
    data=st.data(),
)
def test_hypothesis_trailing_axes_and_stats(x, data):
    """Any shape, any number of trailing axes in any order: the result is
    the norm of the reshaped rows, and the statistics match the float64
    reference."""
    k = data.draw(st.integers(1, x.ndim))
    axis = tuple(data.draw(st.permutations(range(-k, 0))))
    kind = data.draw(st.sampled_from(KINDS))
    rows = x.reshape(int(np.prod(x.shape[: x.ndim - k])), int(np.prod(x.shape[x.ndim - k :])))
    with np.errstate(invalid="ignore", over="ignore"):
        y, *stats = call(kind, x, axis=axis, return_stats=True)
        want = call(kind, rows).reshape(x.shape)
    np.testing.assert_array_equal(y, want)
    check_stats(kind, x, y, stats, tuple(range(x.ndim - k, x.ndim)))
