"""Bad input to the public API: the exception type, and a message that
names the function, the argument and what was expected. Raised before any
element of the caller's ``out`` is written. (The table in the README is
this file's CASES.)"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.special as sp

import normkit
from normkit import coda

try:
    from numpy.exceptions import AxisError
except ImportError:  # NumPy < 1.25
    from numpy import AxisError

X = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
XI = np.arange(12, dtype=np.int8).reshape(3, 4)
COMP = np.array([[1.0, 2, 3], [2, 3, 4], [5, 1, 2]])


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def _zero_stride(row, shape):
    return np.broadcast_to(row, shape)


# (id, call, exception type, substrings the message must contain)
CASES = [
    # softmax / log_softmax: dtype, shape, axis, algorithm
    ("softmax complex x", lambda: normkit.softmax(np.ones(3, complex)), TypeError, ["softmax", "x", "complex128", "expected a real"]),
    ("softmax object x", lambda: normkit.softmax(np.array([1, "a"], dtype=object)), TypeError, ["softmax", "x", "object"]),
    ("softmax str x", lambda: normkit.softmax(np.array(["a", "b"])), TypeError, ["softmax", "x", "<U1"]),
    ("softmax None x", lambda: normkit.softmax(None), TypeError, ["softmax", "x", "object"]),
    ("softmax ragged list x", lambda: normkit.softmax([[1, 2], [3]]), TypeError, ["softmax", "cannot convert x"]),
    ("softmax 0-d x", lambda: normkit.softmax(np.float32(1)), AxisError, ["softmax", "x is a 0-d array", "at least 1 dimension"]),
    ("softmax axis out of range", lambda: normkit.softmax(X, axis=2), AxisError, ["softmax", "axis 2", "dimension 2"]),
    ("softmax float axis", lambda: normkit.softmax(X, axis=1.5), TypeError, ["softmax", "axis must be an integer", "float"]),
    ("softmax axis=None", lambda: normkit.softmax(X, axis=None), TypeError, ["softmax", "axis must be an integer", "NoneType"]),
    ("softmax bad algorithm", lambda: normkit.softmax(X, algorithm="fast"), ValueError, ["softmax", "algorithm must be one of", "'fast'"]),
    ("softmax algorithm=None", lambda: normkit.softmax(X, algorithm=None), ValueError, ["softmax", "algorithm", "None"]),
    ("log_softmax complex x", lambda: normkit.log_softmax(np.ones(3, np.complex64)), TypeError, ["log_softmax", "x", "complex64"]),
    ("log_softmax 0-d x", lambda: normkit.log_softmax(3.0), AxisError, ["log_softmax", "x is a 0-d array"]),
    ("log_softmax axis out of range", lambda: normkit.log_softmax(X, axis=-3), AxisError, ["log_softmax", "axis -3"]),
    # out=
    ("softmax read-only out", lambda: normkit.softmax(X, out=_readonly(X)), ValueError, ["softmax", "out is read-only", "writeable"]),
    ("softmax broadcast (zero-stride) out", lambda: normkit.softmax(X, out=_zero_stride(np.zeros(4, np.float32), (3, 4))), ValueError, ["softmax", "out is read-only"]),
    ("softmax out of wrong dtype", lambda: normkit.softmax(X, out=np.empty((3, 4))), TypeError, ["softmax", "out has dtype float64", "expected float32"]),
    ("softmax float64 x, float32 out", lambda: normkit.softmax(X.astype(np.float64), out=np.empty((3, 4), np.float32)), TypeError, ["softmax", "out has dtype float32", "expected float64"]),
    ("softmax out of wrong shape", lambda: normkit.softmax(X, out=np.empty((4, 3), np.float32)), ValueError, ["softmax", "out has shape (4, 3)", "expected (3, 4)"]),
    ("softmax list out", lambda: normkit.softmax(X, out=[0.0] * 12), TypeError, ["softmax", "out must be a numpy.ndarray", "list"]),
    ("softmax int x, float32 out", lambda: normkit.softmax(np.ones((2, 2), np.int32), out=np.empty((2, 2), np.float32)), TypeError, ["softmax", "out has dtype float32", "expected float64"]),
    ("log_softmax read-only out", lambda: normkit.log_softmax(X, out=_readonly(X)), ValueError, ["log_softmax", "out is read-only"]),
    # l1_norm
    ("l1_norm complex x", lambda: normkit.l1_norm(np.ones(3, complex)), TypeError, ["l1_norm", "x", "complex128"]),
    ("l1_norm object x", lambda: normkit.l1_norm(np.array([1, None], dtype=object)), TypeError, ["l1_norm", "x", "object"]),
    ("l1_norm str x", lambda: normkit.l1_norm(np.array(["a"])), TypeError, ["l1_norm", "x", "<U1"]),
    ("l1_norm 0-d x", lambda: normkit.l1_norm(np.float32(1)), AxisError, ["l1_norm", "x is a 0-d array"]),
    ("l1_norm int8 without out_scale", lambda: normkit.l1_norm(XI), TypeError, ["l1_norm", "needs out_scale"]),
    ("l1_norm int8 with eps", lambda: normkit.l1_norm(XI, out_scale=1.0, eps=1e-5), TypeError, ["l1_norm", "eps applies to float input only"]),
    ("l1_norm float with out_scale", lambda: normkit.l1_norm(X, out_scale=1.0), TypeError, ["l1_norm", "out_scale applies to int8 input only"]),
    ("l1_norm out_scale=0", lambda: normkit.l1_norm(XI, out_scale=0), ValueError, ["l1_norm", "out_scale must be positive and finite"]),
    ("l1_norm out_scale=nan", lambda: normkit.l1_norm(XI, out_scale=float("nan")), ValueError, ["l1_norm", "out_scale must be positive and finite"]),
    ("l1_norm out_scale str", lambda: normkit.l1_norm(XI, out_scale="a"), TypeError, ["l1_norm", "out_scale must be a real number"]),
    ("l1_norm out_scale=1e-300", lambda: normkit.l1_norm(XI, out_scale=1e-300), ValueError, ["l1_norm", "out_scale=1e-300", "float32 range"]),
    ("l1_norm eps<0", lambda: normkit.l1_norm(X, eps=-1), ValueError, ["l1_norm", "eps must be finite and >= 0"]),
    ("l1_norm eps str", lambda: normkit.l1_norm(X, eps="a"), TypeError, ["l1_norm", "eps must be a real number"]),
    ("l1_norm weight too short", lambda: normkit.l1_norm(X, weight=np.ones(3)), ValueError, ["l1_norm", "weight has shape (3,)", "expected (4,)"]),
    ("l1_norm bias too long", lambda: normkit.l1_norm(X, bias=np.ones(5)), ValueError, ["l1_norm", "bias has shape (5,)", "expected (4,)"]),
    ("l1_norm 2-d weight", lambda: normkit.l1_norm(X, weight=np.ones((1, 4))), ValueError, ["l1_norm", "weight has shape (1, 4)"]),
    ("l1_norm complex weight", lambda: normkit.l1_norm(X, weight=np.ones(4, complex)), TypeError, ["l1_norm", "weight", "complex128", "expected a real"]),
    ("l1_norm ragged weight", lambda: normkit.l1_norm(X, weight=[[1], [2, 3]]), TypeError, ["l1_norm", "cannot convert weight"]),
    ("l1_norm int8, float weight", lambda: normkit.l1_norm(XI, np.ones(4), out_scale=1.0), TypeError, ["l1_norm", "weight must be an integer array", "float64"]),
    ("l1_norm int8, weight out of int8 range", lambda: normkit.l1_norm(XI, np.full(4, 300), out_scale=1.0), ValueError, ["l1_norm", "weight values must lie in [-128, 127]"]),
    ("l1_norm int8, bias too short", lambda: normkit.l1_norm(XI, bias=np.ones(3, np.int8), out_scale=1.0), ValueError, ["l1_norm", "bias has shape (3,)", "expected (4,)"]),
    ("l1_norm int8, int16 out", lambda: normkit.l1_norm(XI, out_scale=1.0, out=np.empty((3, 4), np.int16)), TypeError, ["l1_norm", "out has dtype int16", "expected int8"]),
    ("l1_norm int8, zero-stride out", lambda: normkit.l1_norm(XI, out_scale=1.0, out=_zero_stride(np.zeros(4, np.int8), (3, 4))), ValueError, ["l1_norm", "out is read-only"]),
    ("l1_norm int8, out of wrong shape", lambda: normkit.l1_norm(XI, out_scale=1.0, out=np.empty((3, 5), np.int8)), ValueError, ["l1_norm", "out has shape (3, 5)", "expected (3, 4)"]),
    ("l1_norm read-only out", lambda: normkit.l1_norm(X, out=_readonly(X)), ValueError, ["l1_norm", "out is read-only"]),
    ("l1_norm out of wrong dtype", lambda: normkit.l1_norm(X, out=np.empty((3, 4))), TypeError, ["l1_norm", "out has dtype float64", "expected float32"]),
    # float norms
    ("layer_norm complex x", lambda: normkit.layer_norm(np.ones(3, complex)), TypeError, ["layer_norm", "x has unsupported dtype complex128"]),
    ("rms_norm object x", lambda: normkit.rms_norm(np.array([1, None], dtype=object)), TypeError, ["rms_norm", "x has unsupported dtype object"]),
    ("crms_norm str x", lambda: normkit.crms_norm(np.array(["a"])), TypeError, ["crms_norm", "x has unsupported dtype <U1"]),
    ("layer_norm 0-d x", lambda: normkit.layer_norm(np.float32(1)), AxisError, ["layer_norm", "x is a 0-d array"]),
    ("layer_norm axis out of range", lambda: normkit.layer_norm(X, axis=3), AxisError, ["layer_norm", "axis 3"]),
    ("rms_norm float axis", lambda: normkit.rms_norm(X, axis=0.5), TypeError, ["rms_norm", "axis must be an integer"]),
    ("layer_norm weight too short", lambda: normkit.layer_norm(X, np.ones(3)), ValueError, ["layer_norm", "weight has shape (3,)", "expected (4,)"]),
    ("layer_norm bias too long", lambda: normkit.layer_norm(X, None, np.ones(5)), ValueError, ["layer_norm", "bias has shape (5,)"]),
    ("rms_norm 2-d weight", lambda: normkit.rms_norm(X, np.ones((1, 4))), ValueError, ["rms_norm", "weight has shape (1, 4)"]),
    ("rms_norm complex weight", lambda: normkit.rms_norm(X, np.ones(4, complex)), TypeError, ["rms_norm", "weight has unsupported dtype complex128"]),
    ("layer_norm eps<0", lambda: normkit.layer_norm(X, eps=-1), ValueError, ["layer_norm", "eps must be finite and >= 0"]),
    ("rms_norm eps str", lambda: normkit.rms_norm(X, eps="a"), TypeError, ["rms_norm", "eps must be a real number"]),
    ("layer_norm read-only out", lambda: normkit.layer_norm(X, out=_readonly(X)), ValueError, ["layer_norm", "out is read-only"]),
    ("layer_norm out of wrong dtype", lambda: normkit.layer_norm(X, out=np.empty((3, 4))), TypeError, ["layer_norm", "out has dtype float64", "expected float32"]),
    ("crms_norm out of wrong shape", lambda: normkit.crms_norm(X, out=np.empty((4, 3), np.float32)), ValueError, ["crms_norm", "out has shape (4, 3)"]),
    ("add_rms_norm residual of wrong shape", lambda: normkit.add_rms_norm(X, np.ones((3, 5), np.float32)), ValueError, ["add_rms_norm", "residual has shape (3, 5)", "expected (3, 4)"]),
    ("add_layer_norm complex residual", lambda: normkit.add_layer_norm(X, np.ones((3, 4), complex)), TypeError, ["add_layer_norm", "residual has unsupported dtype complex128"]),
    ("add_layer_norm out not a tuple", lambda: normkit.add_layer_norm(X, X.copy(), out=np.empty((3, 4), np.float32)), TypeError, ["add_layer_norm", "out must be None or a tuple of two arrays"]),
    ("add_layer_norm read-only out[0]", lambda: normkit.add_layer_norm(X, X.copy(), out=(_readonly(X), np.empty((3, 4), np.float32))), ValueError, ["add_layer_norm", "out[0] is read-only"]),
    ("add_rms_norm outs sharing memory", lambda: normkit.add_rms_norm(X, X.copy(), out=(np.empty((3, 4), np.float32),) * 2), ValueError, ["add_rms_norm", "out[0] and out[1] must not share memory"]),
    # coda
    ("clr zero part", lambda: coda.clr([[1.0, 0, 2]]), ValueError, ["clr", "x contains zeros", "row 0, column 1", "zeros='replace'"]),
    ("clr negative part", lambda: coda.clr([[1.0, -1, 2]]), ValueError, ["clr", "x has negative values"]),
    ("clr NaN", lambda: coda.clr([[1.0, np.nan, 2]]), ValueError, ["clr", "x contains NaN or infinite"]),
    ("clr inf", lambda: coda.clr([[1.0, np.inf, 2]]), ValueError, ["clr", "x contains NaN or infinite"]),
    ("clr complex", lambda: coda.clr(np.ones((2, 3), complex)), TypeError, ["clr", "x has dtype complex128", "expected a real"]),
    ("clr str", lambda: coda.clr(np.array([["a", "b"]])), TypeError, ["clr", "x has dtype <U1"]),
    ("clr object", lambda: coda.clr(np.array([[1, None]], dtype=object)), TypeError, ["clr", "x has dtype object"]),
    ("clr 3-d", lambda: coda.clr(np.ones((2, 2, 2))), ValueError, ["clr", "x must be 1-d", "got 3-d"]),
    ("clr 0-d", lambda: coda.clr(1.0), ValueError, ["clr", "x must be 1-d", "got 0-d"]),
    ("clr no rows", lambda: coda.clr(np.ones((0, 3))), ValueError, ["clr", "x has 0 sample(s)", "at least 1"]),
    ("clr one part", lambda: coda.clr(np.ones((2, 1))), ValueError, ["clr", "x has 1 part(s)", "at least 2"]),
    ("clr bad zeros policy", lambda: coda.clr(COMP, zeros="drop"), ValueError, ["clr", "zeros must be one of", "'drop'"]),
    ("alr reference out of range", lambda: coda.alr(COMP, reference=5), ValueError, ["alr", "reference=5 is out of range", "3 parts"]),
    ("alr float reference", lambda: coda.alr(COMP, reference=1.5), TypeError, ["alr", "reference must be an integer"]),
    ("ilr basis of wrong shape", lambda: coda.ilr(COMP, basis=np.ones((2, 2))), ValueError, ["ilr", "basis has shape (2, 2)", "expected (2, 3)"]),
    ("ilr_basis n_parts=1", lambda: coda.ilr_basis(1), ValueError, ["ilr_basis", "n_parts must be an integer >= 2"]),
    ("ilr_basis bad kind", lambda: coda.ilr_basis(3, kind="x"), ValueError, ["ilr_basis", "kind must be"]),
    ("closure negative", lambda: coda.closure([[1.0, -2]]), ValueError, ["closure", "x has negative values"]),
    ("closure zero row", lambda: coda.closure([[0.0, 0]]), ValueError, ["closure", "row 0 of x sums to zero"]),
    ("clr_inv NaN", lambda: coda.clr_inv([[np.nan, 1.0]]), ValueError, ["clr_inv", "z contains NaN"]),
    ("clr_covariance ddof too large", lambda: coda.clr_covariance(COMP, ddof=5), ValueError, ["clr_covariance", "ddof=5"]),
    ("clr_covariance ddof str", lambda: coda.clr_covariance(COMP, ddof="a"), TypeError, ["clr_covariance", "ddof must be an integer"]),
    ("variation_matrix one sample", lambda: coda.variation_matrix(COMP[:1]), ValueError, ["variation_matrix", "x has 1 sample(s)", "at least 2"]),
    ("proportionality_rho one part", lambda: coda.proportionality_rho(np.ones((3, 1))), ValueError, ["proportionality_rho", "x has 1 part(s)"]),
    ("proportionality_phi zeros", lambda: coda.proportionality_phi([[1.0, 0], [1, 2]]), ValueError, ["proportionality_phi", "x contains zeros"]),
    ("partial_correlations one sample", lambda: coda.partial_correlations(COMP[:1]), ValueError, ["partial_correlations", "x has 1 sample(s)"]),
    ("partial_correlation i == j", lambda: coda.partial_correlation(COMP, 0, 0, [1]), ValueError, ["partial_correlation", "i and j must be different"]),
    ("partial_correlation empty given", lambda: coda.partial_correlation(COMP, 0, 1, []), ValueError, ["partial_correlation", "given must name at least one part"]),
    ("partial_correlation j out of range", lambda: coda.partial_correlation(COMP, 0, 9, [1]), ValueError, ["partial_correlation", "j=9 is out of range"]),
    ("shrink_covariance lambda_cor=2", lambda: coda.shrink_covariance(COMP, lambda_cor=2), ValueError, ["shrink_covariance", "lambda_cor must be in [0, 1]"]),
    ("multi_replace delta=2", lambda: coda.multi_replace([[1.0, 0, 2]], delta=2), ValueError, ["multi_replace", "delta must be in (0, 1)"]),
]


@pytest.mark.parametrize("call, exc, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_a_message_naming_the_argument(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} missing from {message!r}"


OUT_CASES = [
    ("softmax wrong algorithm", lambda out: normkit.softmax(X, algorithm="nope", out=out)),
    ("softmax bad axis", lambda out: normkit.softmax(X, axis=5, out=out)),
    ("softmax complex x", lambda out: normkit.softmax(X.astype(complex), out=out)),
    ("l1_norm weight too short", lambda out: normkit.l1_norm(X, weight=np.ones(3), out=out)),
    ("l1_norm bad eps", lambda out: normkit.l1_norm(X, eps=-1.0, out=out)),
]


@pytest.mark.parametrize("call", [c[1] for c in OUT_CASES], ids=[c[0] for c in OUT_CASES])
def test_nothing_is_written_before_an_error(call):
    out = np.full(X.shape, 7.0, np.float32)
    with pytest.raises((TypeError, ValueError)):
        call(out)
    assert (out == 7.0).all()


def test_int8_out_untouched_on_bad_weight():
    out = np.full(XI.shape, 7, np.int8)
    with pytest.raises(ValueError, match="weight values"):
        normkit.l1_norm(XI, np.full(4, -129), out_scale=1.0, out=out)
    assert (out == 7).all()


# Inputs that are not errors: NaN / inf rows and empty arrays give the
# scipy results, as documented.


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_inf_rows_are_results_not_errors(dtype):
    x = np.array([[np.nan, 1, 2], [np.inf, 0, 1], [-np.inf] * 3, [-np.inf, 0, 1]], dtype)
    with np.errstate(invalid="ignore"):
        want = sp.softmax(x.astype(np.float64), axis=-1)
        want_log = sp.log_softmax(x.astype(np.float64), axis=-1)
    np.testing.assert_allclose(normkit.softmax(x), want, rtol=2e-6)
    np.testing.assert_allclose(normkit.log_softmax(x), want_log, rtol=2e-6, atol=1e-5)
    assert np.isnan(normkit.l1_norm(x)[:3]).all()


@pytest.mark.parametrize("shape", [(0,), (0, 5), (5, 0), (2, 0, 3)])
def test_empty_arrays_give_empty_results(shape):
    x = np.ones(shape, np.float32)
    for f in (normkit.softmax, normkit.log_softmax, normkit.l1_norm):
        y = f(x)
        assert y.shape == shape and y.dtype == np.float32
    y = normkit.l1_norm(np.ones(shape, np.int8), out_scale=0.1)
    assert y.shape == shape and y.dtype == np.int8


def _import_with_isa(value: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, NORMKIT_ISA=value)
    code = "import normkit; print(normkit.cpu_info()['active'])"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_unknown_normkit_isa_is_an_import_error_naming_the_variable():
    result = _import_with_isa("sse9")
    assert result.returncode != 0
    assert "RuntimeError" in result.stderr
    assert 'NORMKIT_ISA="sse9" is not a level; expected one of "scalar", "avx2", "avx512"' in result.stderr


def test_unsupported_normkit_isa_is_an_import_error():
    available = normkit.cpu_info()["available"]
    missing = [level for level in ("avx2", "avx512") if level not in available]
    if not missing:
        # Every level is supported here: the request must be honoured.
        result = _import_with_isa("avx2")
        assert result.returncode == 0 and result.stdout.strip() == "avx2", result.stderr
        return
    result = _import_with_isa(missing[0])
    assert result.returncode != 0
    assert f"NORMKIT_ISA={missing[0]} is not supported by this CPU" in result.stderr
