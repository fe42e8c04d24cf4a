"""float16 and bfloat16 storage (issue 12): the kernels read and write
16-bit floats, compute in float32 and round once, to nearest even.

Accuracy is measured against a float64 computation, in units in the last
place (ulps) of the half type: softmax / log_softmax elementwise (relative),
the norms against the ulp of the row's largest output magnitude. The sweep
runs on every instruction set in a subprocess (``NORMKIT_ISA``), and the
outputs of the levels are compared bit for bit.
"""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import scipy.special as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import normkit
from normkit import _native
from test_l1norm import float_reference as l1_reference
from test_norm import reference as norm_reference

HALVES = ["float16", "bfloat16"]
#: (fraction bits, minimum normal exponent) of each half type.
FORMAT = {"float16": (10, -14), "bfloat16": (7, -126)}
NORMS = ["layer_norm", "rms_norm", "crms_norm", "l1_norm"]


def half_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        return np.dtype(pytest.importorskip("ml_dtypes").bfloat16)
    return np.dtype(np.float16)


def ulp(v, name: str) -> np.ndarray:
    """The spacing of the half type ``name`` at magnitude ``|v|`` (float64;
    subnormal spacing below the normal range)."""
    bits, emin = FORMAT[name]
    a = np.abs(np.asarray(v, np.float64))
    _, e = np.frexp(a)
    e = np.where(a == 0, emin + 1, e)  # zero: the subnormal spacing
    return np.ldexp(1.0, np.maximum(e - 1, emin) - bits)


def ulps_off(got: np.ndarray, want: np.ndarray, name: str, scale=None, atol=0.0) -> float:
    """The largest ``|got - want| - atol`` in ulps of ``scale`` (default: of
    each ``want``), after checking that NaNs agree and that ``got`` is
    infinite exactly where ``want`` rounded to the half type is (a finite
    value beyond the half range rounds to an infinity)."""
    with np.errstate(over="ignore"):
        rounded = want.astype(got.dtype).astype(np.float64)
    got = got.astype(np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(want)), "NaN pattern differs"
    finite = np.isfinite(rounded)
    assert np.array_equal(got[np.isinf(rounded)], rounded[np.isinf(rounded)]), "infinities differ"
    unit = ulp(want if scale is None else np.broadcast_to(scale, want.shape), name)
    with np.errstate(invalid="ignore"):
        err = np.maximum(np.abs(got - want) - atol, 0.0)
    return float(np.max(err[finite] / unit[finite], initial=0.0))


def softmax_reference(x, log=False):
    if x.shape[-1] == 0:
        return x.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        f = sp.log_softmax if log else sp.softmax
        return f(x.astype(np.float64), axis=-1)


def norm_of(fname, x, w, b):
    """(normkit's result, the float64 reference) of the norm ``fname``."""
    if fname == "l1_norm":
        with np.errstate(invalid="ignore", divide="ignore"):
            want = l1_reference(x, 1e-5, w.astype(np.float64), b.astype(np.float64))
        want[~np.isfinite(x.astype(np.float64)).all(-1)] = np.nan
        return normkit.l1_norm(x, w, b), want
    kind = fname.split("_")[0]
    args = (w, b) if kind == "layer" else (w,)
    return getattr(normkit, fname)(x, *args), norm_reference(kind, x, *[a.astype(np.float64) for a in args])


def row_scale(want: np.ndarray) -> np.ndarray:
    """Each row's largest finite output magnitude (keepdims)."""
    finite = np.where(np.isfinite(want), np.abs(want), 0.0)
    return finite.max(-1, keepdims=True, initial=0.0)


def sweep_rows(name: str, seed: int = 0):
    """(label, x) pairs: every row length 0..70 and some long rows, each at
    an unaligned start (one element into a buffer), with -inf entries in a
    row and rows spanning a wide range."""
    dt = half_dtype(name)
    rng = np.random.default_rng(seed)
    for n in list(range(71)) + [127, 255, 256, 257, 1000, 4099]:
        buf = np.empty(3 * n + 1, dt)
        x = buf[1:].reshape(3, n)
        x[...] = (rng.standard_normal((3, n)) * [[1.0], [4.0], [12.0]]).astype(dt)
        x[1, : n // 4] = -np.inf
        yield n, x


def sweep(name: str) -> dict:
    """Worst error of every kernel over ``sweep_rows`` (ulps; see the module
    docstring) and the outputs' bits, keyed by kernel and row length."""
    worst, bits = {}, {}
    rng = np.random.default_rng(1)
    for n, x in sweep_rows(name):
        w = (1 + 0.5 * rng.standard_normal(n)).astype(np.float32)
        b = (0.1 * rng.standard_normal(n)).astype(np.float32)
        results = {}
        for label, log in (("softmax", False), ("log_softmax", True)):
            got = (normkit.log_softmax if log else normkit.softmax)(x)
            results[label] = (got, ulps_off(got, softmax_reference(x, log), name, atol=softmax_atol(log)))
        finite_x = x[[0, 2]]  # the norms of a row with -inf are NaN: tested in test_special_values
        for fname in NORMS:
            got, want = norm_of(fname, finite_x, w, b)
            results[fname] = (got, ulps_off(got, want, name, row_scale(want)))
        for label, (got, err) in results.items():
            worst[label] = max(worst.get(label, 0.0), err)
            bits[f"{label}/{n}"] = got.view(np.uint16).tolist()
    return {"worst": worst, "bits": bits}


#: Tolerances in ulps, set from the measured worst errors (see the report of
#: test_every_isa): a result rounded once from float32 is at most 0.5 ulp
#: from the exact value, plus the float32 computation's own error.
SOFTMAX_ULPS = 0.51
NORM_ULPS = 0.51
#: log_softmax entries near 0 (the row's largest entries) carry the float32
#: kernels' absolute error of log(sum), about one float32 ulp of 1 on the
#: vector levels (the scalar level is within 0.5 ulp): relative accuracy
#: holds only beyond it.
LOG_SOFTMAX_ATOL = 2.0**-22
#: softmax probabilities below float32's normal range (2**-126, which
#: bfloat16 shares) may be 0: the float32 exp flushes there, as for float32.
SOFTMAX_ATOL = float(np.finfo(np.float32).tiny)


def softmax_atol(log: bool) -> float:
    return LOG_SOFTMAX_ATOL if log else SOFTMAX_ATOL

ISA_SCRIPT = textwrap.dedent(
    """
    import json, sys, normkit
    from test_half import sweep
    assert normkit.cpu_info()["active"] == "{isa}", normkit.cpu_info()
    json.dump(sweep("{name}"), sys.stdout)
    """
)


@pytest.mark.parametrize("name", HALVES)
def test_every_isa_is_accurate_and_agrees(name, run_with_isa):
    """On every level the CPU has: softmax / log_softmax within SOFTMAX_ULPS
    of the float64 value, the norms within NORM_ULPS of the row's largest
    output; the levels' outputs differ by at most one ulp (log_softmax: plus
    LOG_SOFTMAX_ATOL)."""
    half_dtype(name)
    runs = {}
    for isa in normkit.cpu_info()["available"]:
        proc = run_with_isa(isa, ISA_SCRIPT.format(isa=isa, name=name), check=True)
        runs[isa] = json.loads(proc.stdout)
        worst = runs[isa]["worst"]
        print(name, isa, {k: round(v, 4) for k, v in worst.items()})
        for label, err in worst.items():
            assert err <= (SOFTMAX_ULPS if "softmax" in label else NORM_ULPS), (isa, label, err)
    levels = list(runs)
    base = runs[levels[0]]["bits"]
    for isa in levels[1:]:
        same = total = 0
        for key, ref in base.items():
            a = np.array(ref, np.uint16).view(half_dtype(name)).astype(np.float64)
            b = np.array(runs[isa]["bits"][key], np.uint16).view(half_dtype(name)).astype(np.float64)
            both_nan = np.isnan(a) & np.isnan(b)
            same += int(np.sum((a == b) | both_nan))
            total += a.size
            finite = np.isfinite(a)
            assert np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(a[~finite & ~both_nan], b[~finite & ~both_nan]), (isa, key)
            atol = softmax_atol(True) if key.startswith("log_softmax") else 0.0
            assert np.all(np.abs(a[finite] - b[finite]) <= ulp(a[finite], name) + atol), (isa, key)
        print(f"{name}: {levels[0]} vs {isa}: {same}/{total} = {same / total:.6f} bit-identical")


@pytest.mark.parametrize("name", HALVES)
def test_special_values(name):
    """NaN and +-inf follow the float32 rules; float16 subnormals and the
    largest finite values are kept (no flush to zero, no overflow)."""
    dt = half_dtype(name)
    big = float(np.finfo(np.float16).max) if name == "float16" else 3.0e38
    tiny = 2.0**-24 if name == "float16" else 2.0**-133  # the smallest subnormals
    inf, nan = np.inf, np.nan
    x = np.array(
        [
            [nan, 1.0, 2.0, 3.0],
            [inf, 1.0, 2.0, 3.0],
            [-inf, 1.0, 2.0, 3.0],
            [-inf, -inf, -inf, -inf],
            [big, -big, big, 0.0],
            [tiny, 2 * tiny, 3 * tiny, 0.0],
            [0.0, -10.0, -15.0, -17.0],  # float16: subnormal probabilities
            [big, big, big, big],
        ]
    ).astype(dt)
    for log in (False, True):
        got = (normkit.log_softmax if log else normkit.softmax)(x)
        assert got.dtype == dt
        assert ulps_off(got, softmax_reference(x, log), name, atol=softmax_atol(log)) <= SOFTMAX_ULPS
    if name == "float16":
        p = normkit.softmax(x[6])
        assert 0 < p[3] < np.finfo(np.float16).smallest_normal  # a subnormal result is kept
    for fname in NORMS:
        w, b = np.ones(4, np.float32), np.zeros(4, np.float32)
        got, want = norm_of(fname, x, w, b)
        assert got.dtype == dt
        assert ulps_off(got, want, name, row_scale(want)) <= NORM_ULPS, fname


@pytest.mark.parametrize("name", HALVES)
def test_dtype_out_in_place_and_stats(name):
    dt = half_dtype(name)
    x = np.random.default_rng(3).standard_normal((5, 33)).astype(dt)
    w = np.linspace(0.5, 1.5, 33, dtype=np.float32)
    for f in (normkit.softmax, normkit.log_softmax, normkit.layer_norm, normkit.rms_norm, normkit.crms_norm, normkit.l1_norm):
        y = f(x)
        assert y.dtype == dt and y.shape == x.shape
        z = x.copy()
        assert f(z, out=z) is z
        assert np.array_equal(z.view(np.uint16), y.view(np.uint16)), f.__name__
    # A weight of x's own dtype is converted to float32 exactly: same result.
    assert np.array_equal(normkit.rms_norm(x, w.astype(dt)).view(np.uint16), normkit.rms_norm(x, w.astype(dt).astype(np.float32)).view(np.uint16))
    y, mean, rstd = normkit.layer_norm(x, return_stats=True)
    assert mean.dtype == rstd.dtype == np.float32 and mean.shape == (5, 1)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean, x64.mean(-1, keepdims=True), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(rstd, 1 / np.sqrt(x64.var(-1, keepdims=True) + 1e-5), rtol=1e-6)
    lse = normkit.logsumexp(x)
    assert lse.dtype == dt and lse.shape == (5,)
    assert ulps_off(lse, sp.logsumexp(x64, axis=-1), name) <= SOFTMAX_ULPS
    out = np.empty(5, dt)
    assert normkit.logsumexp(x, out=out) is out and np.array_equal(out.view(np.uint16), lse.view(np.uint16))


@pytest.mark.parametrize("name", HALVES)
@pytest.mark.parametrize("fname", ["add_layer_norm", "add_rms_norm"])
def test_fused_add_sum_is_in_x_dtype(name, fname):
    dt = half_dtype(name)
    rng = np.random.default_rng(4)
    x, r = (rng.standard_normal((2, 7, 300)) * 3).astype(dt), rng.standard_normal((2, 7, 300)).astype(dt)
    normed, s, *stats = getattr(normkit, fname)(x, r, return_stats=True)
    assert normed.dtype == s.dtype == dt and all(a.dtype == np.float32 for a in stats)
    # The sum is formed in float32 and rounded once.
    assert np.array_equal(s.view(np.uint16), (x.astype(np.float32) + r.astype(np.float32)).astype(dt).view(np.uint16))
    # normed is the norm of the sum s as returned (rounded to x's dtype).
    want = norm_reference(fname.split("_")[1], s.astype(np.float64))
    assert ulps_off(normed, want, name, row_scale(want)) <= NORM_ULPS
    xc, rc = x.copy(), r.copy()
    getattr(normkit, fname)(xc, rc, out=(xc, rc))  # both in place
    assert np.array_equal(xc.view(np.uint16), normed.view(np.uint16)) and np.array_equal(rc.view(np.uint16), s.view(np.uint16))


@pytest.mark.parametrize("name", HALVES)
def test_contiguous_rows_reach_the_kernel_in_place(name, monkeypatch):
    """C-contiguous rows are passed as uint16 views of the caller's memory
    with half=name; other layouts are copied in the half dtype (never
    through float32) and give the same bits."""
    dt = half_dtype(name)
    seen = []

    class Spy:
        def __getattr__(self, attr):
            f = getattr(_native, attr)

            def spy(*args, **kwargs):
                seen.append((args, kwargs))
                return f(*args, **kwargs)

            return spy

    monkeypatch.setattr(sys.modules["normkit.softmax"], "_native", Spy())
    x = np.random.default_rng(5).standard_normal((6, 40)).astype(dt)
    y = normkit.softmax(x, out=x.copy())
    (args, kwargs), = seen
    assert kwargs == {"half": name} and args[0].dtype == np.uint16 and np.shares_memory(args[0], x)
    for view in (x.T.copy().T, x[:, ::-1][:, ::-1], np.asfortranarray(x)):
        seen.clear()
        assert np.array_equal(normkit.softmax(view).view(np.uint16), y.view(np.uint16))
        assert seen[0][1] == {"half": name} and seen[0][0][0].dtype == np.uint16
    seen.clear()
    t = normkit.softmax(np.ascontiguousarray(x.T), axis=0)  # strided rows: copied
    assert np.array_equal(t.T.view(np.uint16), y.view(np.uint16)) and seen[0][1] == {"half": name}
    # A byte-unaligned x is copied (in its dtype) first.
    raw = np.empty(x.nbytes + 1, np.uint8)
    odd = raw[1:].view(dt).reshape(x.shape)
    odd[...] = x
    assert not odd.flags.aligned
    assert np.array_equal(normkit.softmax(odd).view(np.uint16), y.view(np.uint16))


@pytest.mark.parametrize("name", HALVES)
def test_fused_softmax_rounds_the_float32_result_once(name):
    """scale / bias / where on a half x: the float32 fused kernel on a
    float32 copy, rounded once to x's dtype."""
    dt = half_dtype(name)
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((2, 3, 50)) * 4).astype(dt)
    bias = rng.standard_normal((1, 3, 50)).astype(dt)
    where = rng.random((2, 1, 50)) < 0.8
    for f in (normkit.softmax, normkit.log_softmax):
        got = f(x, scale=0.125, bias=bias, where=where)
        want = f(x.astype(np.float32), scale=0.125, bias=bias.astype(np.float32), where=where).astype(dt)
        assert got.dtype == dt and np.array_equal(got.view(np.uint16), want.view(np.uint16))


@pytest.mark.parametrize("name", HALVES)
def test_dtype_argument(name):
    dt = half_dtype(name)
    x = np.random.default_rng(7).standard_normal((4, 64)).astype(np.float32)
    # A float32 x with a half target: computed in float32, rounded once.
    got = normkit.softmax(x, dtype=dt)
    assert got.dtype == dt and np.array_equal(got.view(np.uint16), normkit.softmax(x).astype(dt).view(np.uint16))
    # A half x with a float32 target: x converted exactly, computed in float32.
    h = x.astype(dt)
    got = normkit.log_softmax(h, dtype=np.float32)
    assert got.dtype == np.float32 and np.array_equal(got, normkit.log_softmax(h.astype(np.float32)))


def test_errors_leave_out_untouched():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf = np.ones((2, 8), ml_dtypes.bfloat16)
    f16 = np.ones((2, 8), np.float16)
    out = np.full((2, 8), 7, ml_dtypes.bfloat16)
    # bfloat16 with float16: no common dtype before ml_dtypes 0.7, float32
    # since (normkit follows NumPy's promotion, so then out is the wrong dtype).
    try:
        common = np.result_type(bf.dtype, f16.dtype)
    except TypeError:
        common = None
    mixed = "no common dtype" if common is None else f"out\\[0\\] has dtype bfloat16, expected {common}"
    cases = [
        (lambda: normkit.layer_norm(bf, np.ones(8), out=out), TypeError, "weight has dtype float64 but x is bfloat16.*silently lose precision"),
        (lambda: normkit.rms_norm(bf, np.ones(8, np.float16), out=out), TypeError, "weight has dtype float16 but x is bfloat16.*differ in range"),
        (lambda: normkit.layer_norm(bf, None, np.ones(8), out=out), TypeError, "bias has dtype float64"),
        (lambda: normkit.l1_norm(bf, np.ones(8), out=out), TypeError, "weight has dtype float64 but x is bfloat16"),
        (lambda: normkit.softmax(bf, out=np.empty((2, 8), np.float32)), TypeError, "out has dtype float32, expected bfloat16"),
        (lambda: normkit.softmax(f16, out=out), TypeError, "out has dtype bfloat16, expected float16"),
        (lambda: normkit.add_rms_norm(bf, f16, out=(out, out.copy())), TypeError, mixed),
    ]
    for call, exc, match in cases:
        with pytest.raises(exc, match=match):
            call()
        assert np.all(out.astype(np.float32) == 7)
    frozen = bf.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        normkit.softmax(bf, out=frozen)
    if common is not None:
        # Promoted: computed as float32 from both, converted exactly.
        x = np.random.default_rng(3).standard_normal((2, 8)).astype(ml_dtypes.bfloat16)
        r = np.random.default_rng(4).standard_normal((2, 8)).astype(np.float16)
        got = normkit.add_rms_norm(x, r)
        want = normkit.add_rms_norm(x.astype(np.float32), r.astype(np.float32))
        assert all(g.dtype == np.float32 and np.array_equal(g, w) for g, w in zip(got, want))


def test_import_without_ml_dtypes(run_with_isa):
    """normkit never imports ml_dtypes: without it, import works, float16
    is computed, and ml_dtypes is still not loaded afterwards."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["ml_dtypes"] = None  # any import of it now fails
        import numpy as np, normkit
        y = normkit.layer_norm(np.arange(8, dtype=np.float16))
        assert y.dtype == np.float16, y.dtype
        print("ok")
        """
    )
    proc = run_with_isa(None, code, check=True)
    assert proc.stdout.strip() == "ok"
    proc = run_with_isa(None, "import sys, normkit, numpy as np; normkit.softmax(np.ones(3, np.float16)); print('ml_dtypes' in sys.modules)", check=True)
    assert proc.stdout.strip() == "False"


@pytest.mark.parametrize("name", HALVES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_property_softmax_and_layer_norm(name, data):
    dt = half_dtype(name)
    x = data.draw(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=40),
                             elements=st.floats(-6e4, 6e4, width=32))).astype(dt)
    p = normkit.softmax(x)
    assert p.dtype == dt
    assert ulps_off(p, softmax_reference(x), name, atol=SOFTMAX_ATOL) <= SOFTMAX_ULPS
    y = normkit.layer_norm(x)
    want = norm_reference("layer", x)
    assert ulps_off(y, want, name, row_scale(want)) <= NORM_ULPS
