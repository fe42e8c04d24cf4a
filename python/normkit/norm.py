"""RMSNorm, LayerNorm and CRMSNorm along an axis, and the fused residual
forms ``add_rms_norm`` / ``add_layer_norm`` of transformer inference.

Every function normalizes along ``axis`` (default: last) and follows the
NumPy contract of ``normkit._rowwise``: float32 and float64 are computed
natively (float32 in float32 registers with sums folded into float64 and
the reciprocal square root taken in float64), other real dtypes get the
dtype ``np.exp`` would give; ``out=`` may be the input itself. ``weight``
and ``bias`` are 1-d of the normalized axis' length, any real dtype,
converted to the computation dtype (they do not change the result dtype).

Special values: a row (1-d slice along ``axis``) holding NaN or +-inf
becomes all NaN. torch gives the same for ``layer_norm``; its ``rms_norm``
gives 0 at the finite entries of a row with an infinity (x * rsqrt(inf))
and NaN at the infinite ones. Finite rows never overflow or underflow
internally: a row of 1e30 or 1e-30 in float32 is as accurate as a row of
ones. An empty axis gives an empty result.
"""

from __future__ import annotations

import numpy as np

from ._dask_hook import is_dask, on_dask
from . import _native
from ._rowwise import (
    AxisError,
    Output,
    as_input_array,
    check_eps,
    check_out,
    compute_dtype,
    input_rows,
    normalize_axis,
    result_dtype,
    rowwise,
)


def layer_norm(x, weight=None, bias=None, *, eps: float = 1e-5, axis: int = -1, out: np.ndarray | None = None) -> np.ndarray:
    """LayerNorm (Ba et al. 2016) with torch semantics:
    ``(x - mean) / sqrt(var + eps) * weight + bias`` with the biased
    variance ``mean((x - mean)**2)``.

    No cancellation when ``|mean| >> std``: the variance comes from sums
    of ``x - x[0]`` (the shifted-data algorithm), or, for rows whose mean
    lies more than ``sqrt(3)`` standard deviations from ``x[0]``, from one
    more pass over the cached row with the corrected two-pass formula of
    Chan, Golub & LeVeque. A float32 row of 1e4 + N(0, 1) is normalized to
    float32 precision.
    """
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("layer_norm", locals())
    return _norm("layer_norm", "layer", x, weight, bias, eps, axis, out)


def rms_norm(x, weight=None, *, eps: float = 1e-6, axis: int = -1, out: np.ndarray | None = None) -> np.ndarray:
    """RMSNorm (Zhang & Sennrich 2019): ``x / sqrt(mean(x**2) + eps) * weight``."""
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("rms_norm", locals())
    return _norm("rms_norm", "rms", x, weight, None, eps, axis, out)


def crms_norm(x, weight=None, *, eps: float = 1e-6, axis: int = -1, out: np.ndarray | None = None) -> np.ndarray:
    """CRMSNorm (Jiang et al. 2023, "Pre-RMSNorm and Pre-CRMSNorm
    Transformers") of a compressed zero-mean vector: ``x`` holds the first
    ``d - 1`` entries of a vector of ``d`` entries summing to 0 (the last
    is ``-sum(x)``), so its RMS is ``sqrt((sum(x**2) + sum(x)**2) / d)``;
    the result is ``x / sqrt((sum(x**2) + sum(x)**2) / d + eps) * weight``
    with ``d = x.shape[axis] + 1``.
    """
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("crms_norm", locals())
    return _norm("crms_norm", "crms", x, weight, None, eps, axis, out)


def add_rms_norm(x, residual, weight=None, *, eps: float = 1e-6, axis: int = -1, out=None) -> tuple[np.ndarray, np.ndarray]:
    """Fused residual add and RMSNorm: returns ``(rms_norm(s, weight), s)``
    with ``s = x + residual``, computed in one kernel (``s`` is written once
    and normalized from cache).

    ``out``: None or a tuple of two arrays ``(normed, s)`` as for NumPy
    ufuncs with two outputs; either may be ``x`` or ``residual`` itself
    (e.g. ``out=(x, residual)`` updates both in place), but they must not
    share memory with each other. The result dtype follows
    ``np.result_type(x, residual)`` (then the rules of ``rms_norm``); both
    outputs have it.
    """
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("add_rms_norm", locals())
    return _add_norm("add_rms_norm", "rms", x, residual, weight, None, eps, axis, out)


def add_layer_norm(x, residual, weight=None, bias=None, *, eps: float = 1e-5, axis: int = -1, out=None) -> tuple[np.ndarray, np.ndarray]:
    """Fused residual add and LayerNorm: returns
    ``(layer_norm(s, weight, bias), s)`` with ``s = x + residual``; ``out``
    as for :func:`add_rms_norm`."""
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("add_layer_norm", locals())
    return _add_norm("add_layer_norm", "layer", x, residual, weight, bias, eps, axis, out)


def _channel(name: str, label: str, value, n: int, dtype: np.dtype) -> np.ndarray | None:
    """weight / bias as a 1-d array of the computation dtype: the caller's
    array when it already has that dtype, else converted. No private copy
    here: the native layer makes the one copy of each weight and bias."""
    if value is None:
        return None
    a = as_input_array(name, value, label)
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"{name}: {label} has shape {a.shape}, expected ({n},) (1-d, the length of the normalized axis)")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name}: {label} has unsupported dtype {a.dtype}; expected a real dtype")
    return np.asarray(a, dtype=dtype)


def shares_memory(outs, *channels) -> bool:
    """True when a weight or bias shares memory with one of ``outs`` (None
    entries ignored). The native layer refuses such a call (the kernel would
    overwrite its weight while reading it), so the public functions compute
    it into new arrays and copy the result into ``out`` at the end."""
    return any(
        isinstance(o, np.ndarray) and c is not None and np.may_share_memory(c, o) for o in outs for c in channels
    )


def _prepare(name: str, x, axis):
    """(x as ndarray, normalized axis, row length)."""
    x = as_input_array(name, x)
    if x.ndim == 0:
        raise AxisError(axis if isinstance(axis, int) else -1, 0, f"{name}: x is a 0-d array; expected at least 1 dimension to normalize along")
    axis = normalize_axis(axis, x.ndim, name)
    return x, axis, x.shape[axis]


def _norm(name, kind, x, weight, bias, eps, axis, out):
    eps = check_eps(name, eps)
    x, axis, n = _prepare(name, x, axis)
    compute = compute_dtype(result_dtype(name, x.dtype))
    w = _channel(name, "weight", weight, n, compute)
    b = _channel(name, "bias", bias, n, compute)
    if out is not None and shares_memory((out,), w, b):
        check_out(name, out, x.shape, result_dtype(name, x.dtype))
        np.copyto(out, rowwise(name, _native.norm, x, axis, None, kind, eps, w, b))
        return out
    return rowwise(name, _native.norm, x, axis, out, kind, eps, w, b)


def _check_outs(name: str, out, shape: tuple, dtype: np.dtype):
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError(f"{name}: out must be None or a tuple of two arrays (normed, sum), got {type(out).__name__}")
    normed = check_out(name, out[0], shape, dtype, "out[0]")
    summed = check_out(name, out[1], shape, dtype, "out[1]")
    if np.may_share_memory(normed, summed):
        raise ValueError(f"{name}: out[0] and out[1] must not share memory")
    return normed, summed


def _add_norm(name, kind, x, residual, weight, bias, eps, axis, out):
    eps = check_eps(name, eps)
    x, axis, n = _prepare(name, x, axis)
    residual = as_input_array(name, residual, "residual")
    if residual.shape != x.shape:
        raise ValueError(f"{name}: residual has shape {residual.shape}, expected {x.shape} (the shape of x)")
    result_dtype(name, x.dtype)  # names x when its dtype is not real
    if residual.dtype.kind not in "biuf":
        raise TypeError(f"{name}: residual has unsupported dtype {residual.dtype}; expected a real (bool, integer or float) dtype")
    result = result_dtype(name, np.result_type(x.dtype, residual.dtype))
    compute = compute_dtype(result)
    w = _channel(name, "weight", weight, n, compute)
    b = _channel(name, "bias", bias, n, compute)
    if out is None:
        normed, summed = np.empty(x.shape, dtype=result), np.empty(x.shape, dtype=result)
    else:
        normed, summed = _check_outs(name, out, x.shape, result)
    if x.size == 0:
        return normed, summed
    outs = None
    if out is not None and shares_memory((normed, summed), w, b):
        outs, normed, summed = (normed, summed), np.empty(x.shape, dtype=result), np.empty(x.shape, dtype=result)
    x_rows = input_rows(x, axis, compute)
    r_rows = input_rows(residual, axis, compute)
    dest_normed = Output(normed, axis, compute, x_rows, r_rows)
    dest_summed = Output(summed, axis, compute, x_rows, r_rows)
    _native.add_norm(x_rows, r_rows, dest_normed.rows, dest_summed.rows, kind, eps, w, b)
    if outs is not None:
        np.copyto(outs[0], dest_normed.finish())
        np.copyto(outs[1], dest_summed.finish())
        return outs
    return dest_normed.finish(), dest_summed.finish()
