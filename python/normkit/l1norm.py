"""L1 normalization along the last axis: an int8 fixed-point mode and a
float mode (Wu et al. 2018, L1BN; the int8 mode after the L1 norm layer of
"Towards Accurate and Efficient Sub-8-Bit Integer Training", whose
fixed-point details are not public: normkit's integer contract, documented
in ``l1_norm``, is its own design)."""

from __future__ import annotations

import math

import numpy as np

from ._dask_hook import is_dask, on_dask
from . import _native
from ._half import half_channel, half_name
from ._rowwise import REFUSED, AxisError, Output, as_input_array, check_eps, check_out, input_rows, is_direct, kernel_dtype, result_dtype, rowwise
from .norm import shares_memory

_INT8 = np.dtype(np.int8)


def l1_norm(x, weight=None, bias=None, *, out_scale=None, eps=None, out: np.ndarray | None = None) -> np.ndarray:
    """L1 normalization of each row (last axis): the standard deviation of
    LayerNorm is replaced by the mean absolute deviation
    ``s = mean(|x - mean(x)|)`` (for Gaussian data sigma ~= 1.2533 s).

    **int8 input** gives int8 output by an exact integer contract
    (``out_scale`` required, ``eps`` not allowed). With ``g =
    float32(1 / out_scale)`` (the float64 quotient rounded to float32; it
    must be positive and finite), ``w`` the int8 weight (1 if absent) and
    ``b`` the int8 bias (0 if absent), each row of ``n`` values gets, in
    exact integer / rational arithmetic:

    1. ``S = sum(x)``, ``q = floor(S / n)``, ``r = S - q*n`` (the mean is
       exactly ``q + r/n``; it is not rounded);
    2. ``A = sum(|n*x_i - S|)`` (``= n**2 * s``);
    3. if ``A == 0`` (constant row): ``y_i = b_i``;
    4. ``K = g*n**2/A``, ``c = g*n*r/A``; if ``K > 512``: ``c :=
       min(c, 256)`` when ``2r <= n`` else ``c := 512 - min(K - c, 256)``,
       then ``K := 512`` (every output that does not saturate keeps its
       exact value ``(x_i - q)*K - c``);
    5. ``sh`` with ``2**21 <= K * 2**sh < 2**22``; ``M = floor(K*2**sh +
       1/2)``, ``C = floor(c*2**sh + 1/2)``, ``t = sh - 12``;
    6. ``P_i = (x_i - q)*M - C``, ``R_i = floor(P_i / 2**t + 1/2)``;
    7. ``y_i = clip(floor(R_i*w_i / 2**12 + 1/2) + b_i, -128, 127)``.

    Rounding is to nearest, ties toward +inf; saturation to [-128, 127].
    The result is within 0.55 of ``clip((x - mean)/s * g * w + b, -128,
    127)``, i.e. within one output step of the float formula, and is the
    same on every instruction set. Nothing overflows for rows of any length
    below 2**32 (all -128 or all 127 included). The weight is used as the
    integer it is: for a weight quantized as ``w_q * w_scale`` pass
    ``w_q`` and ``out_scale / w_scale``. ``weight`` and ``bias`` may be any
    integer arrays with values in [-128, 127].

    **float input** gives ``(x - mean) / (s + eps) * weight + bias`` (``eps``
    default 1e-5). float32 is computed in float32 and float64 in float64,
    with sums accumulated in float64; other real dtypes (except int8)
    follow the ufunc result dtype rules of ``normkit._rowwise``. float16
    and bfloat16 are read and written as 16-bit floats and computed in
    float32; their weight and bias must be float32 or x's own dtype.
    ``out_scale`` is not allowed. A constant row
    has ``s = 0`` exactly: it gives ``bias`` (0 without it), or NaN
    (``0 / 0``) when ``eps=0``.

    ``out``: an ndarray of the input's shape and the result dtype (int8 for
    int8 input), writeable; it may be ``x`` itself. Every argument is checked
    before anything is written.
    """
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("l1_norm", locals())
    name = "l1_norm"
    x = as_input_array(name, x)
    if x.ndim == 0:
        raise AxisError(-1, 0, f"{name}: x is a 0-d array; expected at least 1 dimension to normalize along")
    n = x.shape[-1]
    if x.dtype == _INT8:
        if eps is not None:
            raise TypeError(f"{name}: eps applies to float input only; int8 input uses out_scale")
        gain = _gain(name, out_scale)
        w = _int8_channel(name, "weight", weight, n)
        b = _int8_channel(name, "bias", bias, n)
        return _l1_norm_int8(name, x, gain, w, b, out)
    if out_scale is not None:
        raise TypeError(f"{name}: out_scale applies to int8 input only, got dtype {x.dtype}")
    eps = 1e-5 if eps is None else check_eps(name, eps)
    result = result_dtype(name, x.dtype)
    w = _float_channel(name, "weight", weight, n)
    b = _float_channel(name, "bias", bias, n)
    if half_name(kernel_dtype(x.dtype, result, True)):
        w, b = (None if a is None else half_channel(name, label, a, result) for label, a in (("weight", w), ("bias", b)))
    if out is not None and shares_memory((out,), w, b):
        check_out(name, out, x.shape, result)
        np.copyto(out, rowwise(name, _float_rows, x, -1, None, eps, w, b, half_kernel=True))
        return out
    if is_direct(x, -1):
        try:
            return _float_rows(x, out, eps, w, b)
        except REFUSED:
            pass
    return rowwise(name, _float_rows, x, -1, out, eps, w, b, half_kernel=True)


def _gain(name: str, out_scale) -> np.float32:
    if out_scale is None:
        raise TypeError(f"{name}: int8 input needs out_scale (the float scale of the int8 output)")
    try:
        scale = float(out_scale)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: out_scale must be a real number, got {type(out_scale).__name__}") from None
    except OverflowError:  # an int beyond float range, e.g. 10**400
        raise ValueError(f"{name}: out_scale must be positive and finite, got an integer too large for a float") from None
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"{name}: out_scale must be positive and finite, got {out_scale!r}")
    with np.errstate(over="ignore", under="ignore"):
        gain = np.float32(1.0 / scale)
    if not (np.isfinite(gain) and gain > 0):
        raise ValueError(f"{name}: out_scale={out_scale!r} is outside the float32 range of 1/out_scale")
    return gain


def _channel_array(name: str, label: str, value, n: int) -> np.ndarray:
    a = as_input_array(name, value, label)
    if a.shape != (n,):
        raise ValueError(f"{name}: {label} has shape {a.shape}, expected ({n},)")
    return a


def _int8_channel(name: str, label: str, value, n: int) -> np.ndarray | None:
    if value is None:
        return None
    a = _channel_array(name, label, value, n)
    if a.dtype.kind not in "biu":
        raise TypeError(f"{name}: {label} must be an integer array for int8 input, got dtype {a.dtype}")
    if a.dtype != _INT8 and a.size and (a.min() < -128 or a.max() > 127):
        raise ValueError(f"{name}: {label} values must lie in [-128, 127]")
    # Converted only when needed: the native layer makes the one copy.
    return np.asarray(a, dtype=_INT8)


def _float_channel(name: str, label: str, value, n: int) -> np.ndarray | None:
    if value is None:
        return None
    a = _channel_array(name, label, value, n)
    if a.dtype.kind not in "biuf" and not half_name(a.dtype):
        raise TypeError(f"{name}: {label} has unsupported dtype {a.dtype}; expected a real dtype")
    return a


def _float_rows(x_rows: np.ndarray, out_rows: np.ndarray | None, eps: float, weight, bias, half=None) -> np.ndarray:
    """The native float L1 norm, returning its output (a new array when
    ``out_rows`` is None); with half storage (``half``: rows are uint16
    views) weight and bias already are float32 (``half_channel``)."""
    if half is None:
        dt = x_rows.dtype
        weight = None if weight is None else np.asarray(weight, dtype=dt)
        bias = None if bias is None else np.asarray(bias, dtype=dt)
        return _native.l1_norm_float(x_rows, out_rows, eps, weight, bias)
    return _native.l1_norm_float(x_rows, out_rows, eps, weight, bias, half=half)


def _l1_norm_int8(name: str, x: np.ndarray, gain: np.float32, w, b, out) -> np.ndarray:
    axis = x.ndim - 1
    if out is not None:
        check_out(name, out, x.shape, _INT8)
    target = out if out is not None else np.empty(x.shape, dtype=_INT8)
    if x.size == 0:
        return target
    apart = out is not None and shares_memory((out,), w, b)
    if apart:
        target = np.empty(x.shape, dtype=_INT8)
    x_rows = input_rows(x, axis, _INT8)
    dest = Output(target, axis, _INT8, x_rows)
    _native.l1_norm_i8(x_rows, dest.rows, float(gain), w, b)
    if apart:
        np.copyto(out, dest.finish())
        return out
    return dest.finish()
