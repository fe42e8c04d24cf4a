"""Bad input to the public API: the exception type, and a message that
names the function, the argument and what was expected. Raised before any
element of the caller's ``out`` is written. (The table in the README is
this file's CASES.)"""

from __future__ import annotations


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
    a.flags.writeable = False
    return a


SENTINEL = 77  # fits every out dtype used below, int8 included


class _Outs:
    """Makes the ``out`` arrays of one case, filled with SENTINEL, and
    remembers them so the test can check none was written."""

    def __init__(self):
        self.arrays = []

    def __call__(self, shape, dtype):
        a = np.full(shape, SENTINEL, dtype)
        self.arrays.append(a)
        return a


def _zero_stride(row, shape):
    return np.broadcast_to(row, shape)


# (id, call, exception type, substrings the message must contain). ``call``
# takes ``o``: ``o(shape, dtype)`` is a fresh sentinel-filled array. Every
# kernel case passes an ``out`` made by ``o`` (a valid one unless ``out``
# itself is the error), and the test checks it is unchanged afterwards.
CASES = [
    # softmax / log_softmax: dtype, shape, axis, algorithm
    ("softmax complex x", lambda o: normkit.softmax(np.ones(3, complex), out=o((3,), np.float64)), TypeError, ["softmax", "x", "complex128", "expected a real"]),
    ("softmax object x", lambda o: normkit.softmax(np.array([1, "a"], dtype=object), out=o((3,), np.float64)), TypeError, ["softmax", "x", "object"]),
    ("softmax str x", lambda o: normkit.softmax(np.array(["a", "b"]), out=o((3,), np.float64)), TypeError, ["softmax", "x", "<U1"]),
    ("softmax None x", lambda o: normkit.softmax(None, out=o((3,), np.float64)), TypeError, ["softmax", "x", "object"]),
    ("softmax ragged list x", lambda o: normkit.softmax([[1, 2], [3]], out=o((3,), np.float64)), TypeError, ["softmax", "cannot convert x"]),
    ("softmax 0-d x with axis=1", lambda o: normkit.softmax(np.float32(1), axis=1, out=o((), np.float32)), AxisError, ["softmax", "axis 1", "dimension 1"]),
    ("softmax 0-d x, out of shape (3,)", lambda o: normkit.softmax(np.float32(1), out=o((3,), np.float32)), ValueError, ["softmax", "out has shape (3,), expected ()"]),
    ("softmax axis out of range", lambda o: normkit.softmax(X, axis=2, out=o(X.shape, np.float32)), AxisError, ["softmax", "axis 2", "dimension 2"]),
    ("softmax float axis", lambda o: normkit.softmax(X, axis=1.5, out=o(X.shape, np.float32)), TypeError, ["softmax", "axis must be an integer", "float"]),
    ("softmax bool axis", lambda o: normkit.softmax(X, axis=True, out=o(X.shape, np.float32)), TypeError, ["softmax", "axis must be an integer", "bool"]),
    ("layer_norm numpy bool axis", lambda o: normkit.layer_norm(X, axis=np.True_, out=o(X.shape, np.float32)), TypeError, ["layer_norm", "axis must be an integer", "bool"]),
    ("softmax repeated axes", lambda o: normkit.softmax(X, axis=(1, -1), out=o(X.shape, np.float32)), ValueError, ["softmax", "axis (1, -1) has repeated entries"]),
    ("softmax axis tuple out of range", lambda o: normkit.softmax(X, axis=(0, 2), out=o(X.shape, np.float32)), AxisError, ["softmax", "axis 2", "dimension 2"]),
    ("softmax axis tuple with a float", lambda o: normkit.softmax(X, axis=(0, 1.0), out=o(X.shape, np.float32)), TypeError, ["softmax", "axis must be an integer", "float"]),
    ("softmax axis list", lambda o: normkit.softmax(X, axis=[0, 1], out=o(X.shape, np.float32)), TypeError, ["softmax", "axis must be an integer", "list"]),
    ("softmax bad algorithm", lambda o: normkit.softmax(X, algorithm="fast", out=o(X.shape, np.float32)), ValueError, ["softmax", "algorithm must be one of", "'fast'"]),
    ("softmax algorithm=None", lambda o: normkit.softmax(X, algorithm=None, out=o(X.shape, np.float32)), ValueError, ["softmax", "algorithm", "None"]),
    ("log_softmax complex x", lambda o: normkit.log_softmax(np.ones(3, np.complex64), out=o((3,), np.float64)), TypeError, ["log_softmax", "x", "complex64"]),
    ("log_softmax 0-d x with axis=-2", lambda o: normkit.log_softmax(3.0, axis=-2, out=o((), np.float64)), AxisError, ["log_softmax", "axis -2"]),
    ("log_softmax axis out of range", lambda o: normkit.log_softmax(X, axis=-3, out=o(X.shape, np.float32)), AxisError, ["log_softmax", "axis -3"]),
    # out=
    ("softmax read-only out", lambda o: normkit.softmax(X, out=_readonly(o(X.shape, np.float32))), ValueError, ["softmax", "out is read-only", "writeable"]),
    ("softmax broadcast (zero-stride) out", lambda o: normkit.softmax(X, out=_zero_stride(o((4,), np.float32), (3, 4))), ValueError, ["softmax", "out is read-only"]),
    ("softmax out of wrong dtype", lambda o: normkit.softmax(X, out=o((3, 4), np.float64)), TypeError, ["softmax", "out has dtype float64", "expected float32"]),
    ("softmax float64 x, float32 out", lambda o: normkit.softmax(X.astype(np.float64), out=o((3, 4), np.float32)), TypeError, ["softmax", "out has dtype float32", "expected float64"]),
    ("softmax out of wrong shape", lambda o: normkit.softmax(X, out=o((4, 3), np.float32)), ValueError, ["softmax", "out has shape (4, 3)", "expected (3, 4)"]),
    ("softmax byte-swapped out", lambda o: normkit.softmax(X, out=o(X.shape, X.dtype.newbyteorder("S"))), TypeError, ["softmax", "out has dtype", "non-native byte order", "expected float32"]),
    ("softmax list out", lambda o: normkit.softmax(X, out=[0.0] * 12), TypeError, ["softmax", "out must be a numpy.ndarray", "list"]),
    ("softmax int x, float32 out", lambda o: normkit.softmax(np.ones((2, 2), np.int32), out=o((2, 2), np.float32)), TypeError, ["softmax", "out has dtype float32", "expected float64"]),
    ("log_softmax read-only out", lambda o: normkit.log_softmax(X, out=_readonly(o(X.shape, np.float32))), ValueError, ["log_softmax", "out is read-only"]),
    # l1_norm
    ("l1_norm complex x", lambda o: normkit.l1_norm(np.ones(3, complex), out=o((3,), np.float64)), TypeError, ["l1_norm", "x", "complex128"]),
    ("l1_norm object x", lambda o: normkit.l1_norm(np.array([1, None], dtype=object), out=o((3,), np.float64)), TypeError, ["l1_norm", "x", "object"]),
    ("l1_norm str x", lambda o: normkit.l1_norm(np.array(["a"]), out=o((3,), np.float64)), TypeError, ["l1_norm", "x", "<U1"]),
    ("l1_norm 0-d x", lambda o: normkit.l1_norm(np.float32(1), out=o((3,), np.float64)), AxisError, ["l1_norm", "x is a 0-d array"]),
    ("l1_norm int8 without out_scale", lambda o: normkit.l1_norm(XI, out=o(XI.shape, np.int8)), TypeError, ["l1_norm", "needs out_scale"]),
    ("l1_norm int8 with eps", lambda o: normkit.l1_norm(XI, out_scale=1.0, eps=1e-5, out=o(XI.shape, np.int8)), TypeError, ["l1_norm", "eps applies to float input only"]),
    ("l1_norm float with out_scale", lambda o: normkit.l1_norm(X, out_scale=1.0, out=o(X.shape, np.float32)), TypeError, ["l1_norm", "out_scale applies to int8 input only"]),
    ("l1_norm out_scale=0", lambda o: normkit.l1_norm(XI, out_scale=0, out=o(XI.shape, np.int8)), ValueError, ["l1_norm", "out_scale must be positive and finite"]),
    ("l1_norm out_scale=nan", lambda o: normkit.l1_norm(XI, out_scale=float("nan"), out=o(XI.shape, np.int8)), ValueError, ["l1_norm", "out_scale must be positive and finite"]),
    ("l1_norm out_scale str", lambda o: normkit.l1_norm(XI, out_scale="a", out=o(XI.shape, np.int8)), TypeError, ["l1_norm", "out_scale must be a real number"]),
    ("l1_norm out_scale=1e-300", lambda o: normkit.l1_norm(XI, out_scale=1e-300, out=o(XI.shape, np.int8)), ValueError, ["l1_norm", "out_scale=1e-300", "float32 range"]),
    ("l1_norm eps<0", lambda o: normkit.l1_norm(X, eps=-1, out=o(X.shape, np.float32)), ValueError, ["l1_norm", "eps must be finite and >= 0"]),
    ("l1_norm eps=10**400", lambda o: normkit.l1_norm(X, eps=10**400, out=o(X.shape, np.float32)), ValueError, ["l1_norm", "eps must be finite", "too large for a float"]),
    ("l1_norm out_scale=10**400", lambda o: normkit.l1_norm(XI, out_scale=10**400, out=o(XI.shape, np.int8)), ValueError, ["l1_norm", "out_scale must be positive and finite", "too large for a float"]),
    ("l1_norm eps str", lambda o: normkit.l1_norm(X, eps="a", out=o(X.shape, np.float32)), TypeError, ["l1_norm", "eps must be a real number"]),
    ("l1_norm weight too short", lambda o: normkit.l1_norm(X, weight=np.ones(3), out=o(X.shape, np.float32)), ValueError, ["l1_norm", "weight has shape (3,)", "expected (4,)"]),
    ("l1_norm bias too long", lambda o: normkit.l1_norm(X, bias=np.ones(5), out=o(X.shape, np.float32)), ValueError, ["l1_norm", "bias has shape (5,)", "expected (4,)"]),
    ("l1_norm 2-d weight", lambda o: normkit.l1_norm(X, weight=np.ones((1, 4)), out=o(X.shape, np.float32)), ValueError, ["l1_norm", "weight has shape (1, 4)"]),
    ("l1_norm complex weight", lambda o: normkit.l1_norm(X, weight=np.ones(4, complex), out=o(X.shape, np.float32)), TypeError, ["l1_norm", "weight", "complex128", "expected a real"]),
    ("l1_norm ragged weight", lambda o: normkit.l1_norm(X, weight=[[1], [2, 3]], out=o(X.shape, np.float32)), TypeError, ["l1_norm", "cannot convert weight"]),
    ("l1_norm int8, float weight", lambda o: normkit.l1_norm(XI, np.ones(4), out_scale=1.0, out=o(XI.shape, np.int8)), TypeError, ["l1_norm", "weight must be an integer array", "float64"]),
    ("l1_norm int8, weight out of int8 range", lambda o: normkit.l1_norm(XI, np.full(4, 300), out_scale=1.0, out=o(XI.shape, np.int8)), ValueError, ["l1_norm", "weight values must lie in [-128, 127]"]),
    ("l1_norm int8, bias too short", lambda o: normkit.l1_norm(XI, bias=np.ones(3, np.int8), out_scale=1.0, out=o(XI.shape, np.int8)), ValueError, ["l1_norm", "bias has shape (3,)", "expected (4,)"]),
    ("l1_norm int8, int16 out", lambda o: normkit.l1_norm(XI, out_scale=1.0, out=o((3, 4), np.int16)), TypeError, ["l1_norm", "out has dtype int16", "expected int8"]),
    ("l1_norm int8, zero-stride out", lambda o: normkit.l1_norm(XI, out_scale=1.0, out=_zero_stride(o((4,), np.int8), (3, 4))), ValueError, ["l1_norm", "out is read-only"]),
    ("l1_norm int8, out of wrong shape", lambda o: normkit.l1_norm(XI, out_scale=1.0, out=o((3, 5), np.int8)), ValueError, ["l1_norm", "out has shape (3, 5)", "expected (3, 4)"]),
    ("l1_norm read-only out", lambda o: normkit.l1_norm(X, out=_readonly(o(X.shape, np.float32))), ValueError, ["l1_norm", "out is read-only"]),
    ("l1_norm out of wrong dtype", lambda o: normkit.l1_norm(X, out=o((3, 4), np.float64)), TypeError, ["l1_norm", "out has dtype float64", "expected float32"]),
    # float norms
    ("layer_norm complex x", lambda o: normkit.layer_norm(np.ones(3, complex), out=o((3,), np.float64)), TypeError, ["layer_norm", "x has unsupported dtype complex128"]),
    ("rms_norm object x", lambda o: normkit.rms_norm(np.array([1, None], dtype=object), out=o((3,), np.float64)), TypeError, ["rms_norm", "x has unsupported dtype object"]),
    ("crms_norm str x", lambda o: normkit.crms_norm(np.array(["a"]), out=o((3,), np.float64)), TypeError, ["crms_norm", "x has unsupported dtype <U1"]),
    ("layer_norm 0-d x", lambda o: normkit.layer_norm(np.float32(1), out=o((3,), np.float64)), AxisError, ["layer_norm", "x is a 0-d array"]),
    ("layer_norm axis out of range", lambda o: normkit.layer_norm(X, axis=3, out=o(X.shape, np.float32)), AxisError, ["layer_norm", "axis 3"]),
    ("rms_norm float axis", lambda o: normkit.rms_norm(X, axis=0.5, out=o(X.shape, np.float32)), TypeError, ["rms_norm", "axis must be an integer"]),
    ("layer_norm weight too short", lambda o: normkit.layer_norm(X, np.ones(3), out=o(X.shape, np.float32)), ValueError, ["layer_norm", "weight has shape (3,)", "expected (4,)"]),
    ("layer_norm bias too long", lambda o: normkit.layer_norm(X, None, np.ones(5), out=o(X.shape, np.float32)), ValueError, ["layer_norm", "bias has shape (5,)"]),
    ("rms_norm 2-d weight", lambda o: normkit.rms_norm(X, np.ones((1, 4)), out=o(X.shape, np.float32)), ValueError, ["rms_norm", "weight has shape (1, 4)"]),
    ("rms_norm complex weight", lambda o: normkit.rms_norm(X, np.ones(4, complex), out=o(X.shape, np.float32)), TypeError, ["rms_norm", "weight has unsupported dtype complex128"]),
    ("layer_norm eps<0", lambda o: normkit.layer_norm(X, eps=-1, out=o(X.shape, np.float32)), ValueError, ["layer_norm", "eps must be finite and >= 0"]),
    ("layer_norm eps=10**400", lambda o: normkit.layer_norm(X, eps=10**400, out=o(X.shape, np.float32)), ValueError, ["layer_norm", "eps must be finite", "too large for a float"]),
    ("add_rms_norm eps=-10**400", lambda o: normkit.add_rms_norm(X, X.copy(), eps=-10**400, out=(o(X.shape, np.float32), o(X.shape, np.float32))), ValueError, ["add_rms_norm", "eps must be finite"]),
    ("rms_norm eps str", lambda o: normkit.rms_norm(X, eps="a", out=o(X.shape, np.float32)), TypeError, ["rms_norm", "eps must be a real number"]),
    # A float eps reaches the native call unchecked (the direct path), which refuses it.
    ("rms_norm eps=nan", lambda o: normkit.rms_norm(X, eps=float("nan"), out=o(X.shape, np.float32)), ValueError, ["rms_norm", "eps must be finite and >= 0", "nan"]),
    ("crms_norm eps=inf", lambda o: normkit.crms_norm(X, eps=float("inf"), out=o(X.shape, np.float32)), ValueError, ["crms_norm", "eps must be finite and >= 0"]),
    ("add_layer_norm eps=-1.0", lambda o: normkit.add_layer_norm(X, X.copy(), eps=-1.0, out=(o(X.shape, np.float32), o(X.shape, np.float32))), ValueError, ["add_layer_norm", "eps must be finite and >= 0"]),
    ("layer_norm read-only out", lambda o: normkit.layer_norm(X, out=_readonly(o(X.shape, np.float32))), ValueError, ["layer_norm", "out is read-only"]),
    ("layer_norm out of wrong dtype", lambda o: normkit.layer_norm(X, out=o((3, 4), np.float64)), TypeError, ["layer_norm", "out has dtype float64", "expected float32"]),
    ("crms_norm out of wrong shape", lambda o: normkit.crms_norm(X, out=o((4, 3), np.float32)), ValueError, ["crms_norm", "out has shape (4, 3)"]),
    ("add_rms_norm residual of wrong shape", lambda o: normkit.add_rms_norm(X, np.ones((3, 5), np.float32), out=(o(X.shape, np.float32), o(X.shape, np.float32))), ValueError, ["add_rms_norm", "residual has shape (3, 5)", "expected (3, 4)"]),
    ("add_layer_norm complex residual", lambda o: normkit.add_layer_norm(X, np.ones((3, 4), complex), out=(o(X.shape, np.float32), o(X.shape, np.float32))), TypeError, ["add_layer_norm", "residual has unsupported dtype complex128"]),
    ("add_layer_norm out not a tuple", lambda o: normkit.add_layer_norm(X, X.copy(), out=o((3, 4), np.float32)), TypeError, ["add_layer_norm", "out must be None or a tuple of two arrays"]),
    ("add_layer_norm read-only out[0]", lambda o: normkit.add_layer_norm(X, X.copy(), out=(_readonly(o(X.shape, np.float32)), o(X.shape, np.float32))), ValueError, ["add_layer_norm", "out[0] is read-only"]),
    ("add_rms_norm outs sharing memory", lambda o: normkit.add_rms_norm(X, X.copy(), out=(o((3, 4), np.float32),) * 2), ValueError, ["add_rms_norm", "out[0] and out[1] must not share memory"]),
    # coda
    ("clr zero part", lambda o: coda.clr([[1.0, 0, 2]]), ValueError, ["clr", "x contains zeros", "row 0, column 1", "zeros='replace'"]),
    ("clr negative part", lambda o: coda.clr([[1.0, -1, 2]]), ValueError, ["clr", "x has negative values"]),
    ("clr NaN", lambda o: coda.clr([[1.0, np.nan, 2]]), ValueError, ["clr", "x contains NaN or infinite"]),
    ("clr inf", lambda o: coda.clr([[1.0, np.inf, 2]]), ValueError, ["clr", "x contains NaN or infinite"]),
    ("clr complex", lambda o: coda.clr(np.ones((2, 3), complex)), TypeError, ["clr", "x has dtype complex128", "expected a real"]),
    ("clr str", lambda o: coda.clr(np.array([["a", "b"]])), TypeError, ["clr", "x has dtype <U1"]),
    ("clr object", lambda o: coda.clr(np.array([[1, None]], dtype=object)), TypeError, ["clr", "x has dtype object"]),
    ("clr axis out of range", lambda o: coda.clr(COMP, axis=2), AxisError, ["clr", "axis 2 is out of bounds for array of dimension 2"]),
    ("clr float axis", lambda o: coda.clr(COMP, axis=1.0), TypeError, ["clr", "axis must be an integer", "float"]),
    ("clr 0-d", lambda o: coda.clr(1.0), AxisError, ["clr", "x is a 0-d array", "at least 1 dimension"]),
    ("clr no rows", lambda o: coda.clr(np.ones((0, 3))), ValueError, ["clr", "x of shape (0, 3) holds no composition", "at least one"]),
    ("clr one part", lambda o: coda.clr(np.ones((2, 1))), ValueError, ["clr", "x has 1 part(s)", "at least 2"]),
    ("clr bad zeros policy", lambda o: coda.clr(COMP, zeros="drop"), ValueError, ["clr", "zeros must be one of", "'drop'"]),
    ("alr reference out of range", lambda o: coda.alr(COMP, reference=5), ValueError, ["alr", "reference=5 is out of range", "3 parts"]),
    ("alr float reference", lambda o: coda.alr(COMP, reference=1.5), TypeError, ["alr", "reference must be an integer"]),
    ("ilr basis of wrong shape", lambda o: coda.ilr(COMP, basis=np.ones((2, 2))), ValueError, ["ilr", "basis has shape (2, 2)", "expected (2, 3)"]),
    ("ilr_basis n_parts=1", lambda o: coda.ilr_basis(1), ValueError, ["ilr_basis", "n_parts must be an integer >= 2"]),
    ("ilr_basis bad kind", lambda o: coda.ilr_basis(3, kind="x"), ValueError, ["ilr_basis", "kind must be"]),
    ("closure negative", lambda o: coda.closure([[1.0, -2]]), ValueError, ["closure", "x has negative values"]),
    ("closure zero row", lambda o: coda.closure([[0.0, 0]]), ValueError, ["closure", "row 0 of x sums to zero"]),
    ("clr_inv NaN", lambda o: coda.clr_inv([[np.nan, 1.0]]), ValueError, ["clr_inv", "z contains NaN"]),
    ("clr_covariance ddof too large", lambda o: coda.clr_covariance(COMP, ddof=5), ValueError, ["clr_covariance", "ddof=5"]),
    ("clr_covariance ddof str", lambda o: coda.clr_covariance(COMP, ddof="a"), TypeError, ["clr_covariance", "ddof must be an integer"]),
    ("variation_matrix one sample", lambda o: coda.variation_matrix(COMP[:1]), ValueError, ["variation_matrix", "x has 1 sample(s)", "at least 2"]),
    ("proportionality_rho one part", lambda o: coda.proportionality_rho(np.ones((3, 1))), ValueError, ["proportionality_rho", "x has 1 part(s)"]),
    ("proportionality_phi zeros", lambda o: coda.proportionality_phi([[1.0, 0], [1, 2]]), ValueError, ["proportionality_phi", "x contains zeros"]),
    ("partial_correlations one sample", lambda o: coda.partial_correlations(COMP[:1]), ValueError, ["partial_correlations", "x has 1 sample(s)"]),
    ("partial_correlation i == j", lambda o: coda.partial_correlation(COMP, 0, 0, [1]), ValueError, ["partial_correlation", "i and j must be different"]),
    ("partial_correlation empty given", lambda o: coda.partial_correlation(COMP, 0, 1, []), ValueError, ["partial_correlation", "given must name at least one part"]),
    ("partial_correlation j out of range", lambda o: coda.partial_correlation(COMP, 0, 9, [1]), ValueError, ["partial_correlation", "j=9 is out of range"]),
    ("shrink_covariance lambda_cor=2", lambda o: coda.shrink_covariance(COMP, lambda_cor=2), ValueError, ["shrink_covariance", "lambda_cor must be in [0, 1]"]),
    ("shrunk_partial_correlations two samples", lambda o: coda.shrunk_partial_correlations(COMP[:2]), ValueError, ["shrunk_partial_correlations", "x has 2 sample(s)", "at least 3", "Sample size too small!"]),
    ("shrink_covariance two samples", lambda o: coda.shrink_covariance(COMP[:2]), ValueError, ["shrink_covariance", "y has 2 sample(s)", "at least 3"]),
    # threads
    ("set_num_threads 1025", lambda o: normkit.set_num_threads(1025), ValueError, ["set_num_threads", "between 1 and 1024", "got 1025"]),
    ("set_num_threads 0", lambda o: normkit.set_num_threads(0), ValueError, ["set_num_threads", "between 1 and 1024", "got 0"]),
    ("set_num_threads -1", lambda o: normkit.set_num_threads(-1), ValueError, ["set_num_threads", "between 1 and 1024", "got -1"]),
    ("set_num_threads 10**400", lambda o: normkit.set_num_threads(10**400), ValueError, ["set_num_threads", "between 1 and 1024", "401 digits"]),
    ("set_num_threads float", lambda o: normkit.set_num_threads(2.0), TypeError, ["set_num_threads", "must be an integer", "float"]),
    ("set_num_threads bool", lambda o: normkit.set_num_threads(True), TypeError, ["set_num_threads", "must be an integer", "bool"]),
    ("multi_replace delta=2", lambda o: coda.multi_replace([[1.0, 0, 2]], delta=2), ValueError, ["multi_replace", "delta must be in (0, 1)"]),
]


@pytest.mark.parametrize("call, exc, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_a_message_naming_the_argument(call, exc, words):
    outs = _Outs()
    threads = normkit.get_num_threads()
    with pytest.raises(exc) as info:
        call(outs)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} missing from {message!r}"
    for out in outs.arrays:
        assert (out == SENTINEL).all(), "out was written before the error"
    assert normkit.get_num_threads() == threads


OUT_CASES = [
    ("softmax wrong algorithm", lambda out: normkit.softmax(X, algorithm="nope", out=out)),
    ("softmax bad axis", lambda out: normkit.softmax(X, axis=5, out=out)),
    ("softmax complex x", lambda out: normkit.softmax(X.astype(complex), out=out)),
    ("l1_norm weight too short", lambda out: normkit.l1_norm(X, weight=np.ones(3), out=out)),
    ("l1_norm bad eps", lambda out: normkit.l1_norm(X, eps=-1.0, out=out)),
    ("layer_norm eps=nan", lambda out: normkit.layer_norm(X, eps=float("nan"), out=out)),
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


_PRINT_ACTIVE = "import normkit; print(normkit.cpu_info()['active'])"


def test_unknown_normkit_isa_is_an_import_error_naming_the_variable(run_with_isa):
    result = run_with_isa("sse9", _PRINT_ACTIVE, timeout=120)
    assert result.returncode != 0
    assert "RuntimeError" in result.stderr
    assert 'NORMKIT_ISA="sse9" is not a level; expected one of "scalar", "avx2", "avx512"' in result.stderr


def test_unsupported_normkit_isa_is_an_import_error(run_with_isa):
    available = normkit.cpu_info()["available"]
    missing = [level for level in ("avx2", "avx512") if level not in available]
    if not missing:
        # Every level is supported here: the request must be honoured.
        result = run_with_isa("avx2", _PRINT_ACTIVE, timeout=120)
        assert result.returncode == 0 and result.stdout.strip() == "avx2", result.stderr
        return
    result = run_with_isa(missing[0], _PRINT_ACTIVE, timeout=120)
    assert result.returncode != 0
    assert f"NORMKIT_ISA={missing[0]} is not supported by this CPU" in result.stderr
