"""RMSNorm, LayerNorm and CRMSNorm along an axis, and the fused residual
forms ``add_rms_norm`` / ``add_layer_norm`` of transformer inference.

Every function normalizes along ``axis`` (default: last) and follows the
NumPy contract of ``normkit._rowwise``: float32 and float64 are computed
natively (float32 in float32 registers with sums folded into float64 and
the reciprocal square root taken in float64); float16 and bfloat16 are
read and written by the kernels as 16-bit floats, computed in float32 and
rounded once; other real dtypes get the dtype ``np.exp`` would give;
``out=`` may be the input itself.

``axis``: an int (any axis), or a tuple of the trailing axes (any order:
``(-2, -1)``, ``(1, 2)`` of a 3-d array; None for all axes), normalized as
one row, as torch's ``normalized_shape`` and ONNX's ``axis=k`` (every axis
from k on) do. Other tuples raise ``ValueError``: move the axes to the end
first (``np.moveaxis``).

``weight`` and ``bias`` have exactly the shape of the normalized axes
(``x.shape[axis]`` as a 1-d array for an int axis; ``(H, W)`` for
``axis=(-2, -1)``: torch's rule), any real dtype, converted to the
computation dtype (they do not change the result dtype). With a float16 or
bfloat16 x they must be float32 or x's own dtype (``normkit._half``): a
float64 weight would be rounded silently, so it is a ``TypeError``.

``return_stats=True`` also returns each row's statistics, computed in the
same pass as the result: ``mean`` (LayerNorm) and ``rstd`` =
``1 / sqrt(var + eps)`` (``1 / sqrt(mean(x**2) + eps)`` for RMSNorm, the
CRMSNorm denominator for CRMSNorm), so that ``y = (x - mean) * rstd *
weight + bias``: ONNX LayerNormalization's ``Mean`` / ``InvStdDev``
outputs, ``torch.native_layer_norm``'s. They have x's shape with the
normalized axes of length 1 (keepdims), and dtype float32 for float32,
float16 and bfloat16 inputs (and the other inputs computed in float32), float64
otherwise: the computation dtype, each value rounded once from float64.
``out=`` receives only the result; the statistics are new arrays.

Special values: a row (1-d slice along ``axis``) holding NaN or +-inf
becomes all NaN, and so do its statistics. torch gives the same for
``layer_norm``; its ``rms_norm`` gives 0 at the finite entries of a row
with an infinity (x * rsqrt(inf)) and NaN at the infinite ones. Finite
rows never overflow or underflow internally: a row of 1e30 or 1e-30 in
float32 is as accurate as a row of ones. An empty axis gives an empty
result, and NaN statistics (the mean of no values, as ``np.mean``).
"""

from __future__ import annotations

import numpy as np

from ._dask_hook import is_dask, on_dask
from . import _native
from ._half import FLOAT32, half_channel, half_name
from ._rowwise import (
    REFUSED,
    AxisError,
    Output,
    as_input_array,
    call_native,
    check_eps,
    check_out,
    compute_dtype,
    input_rows,
    is_direct,
    kernel_dtype,
    normalize_axes,
    result_dtype,
    row_length,
    rowwise,
)

#: The statistics each kind returns with ``return_stats=True``.
_STATS = {"layer": ("mean", "rstd"), "rms": ("rstd",), "crms": ("rstd",)}


def layer_norm(
    x, weight=None, bias=None, *, eps: float = 1e-5, axis=-1, out: np.ndarray | None = None, return_stats: bool = False
):
    """LayerNorm (Ba et al. 2016) with torch semantics:
    ``(x - mean) / sqrt(var + eps) * weight + bias`` with the biased
    variance ``mean((x - mean)**2)``.

    No cancellation when ``|mean| >> std``: the variance comes from sums
    of ``x - x[0]`` (the shifted-data algorithm), or, for rows whose mean
    lies more than ``sqrt(3)`` standard deviations from ``x[0]``, from one
    more pass over the cached row with the corrected two-pass formula of
    Chan, Golub & LeVeque. A float32 row of 1e4 + N(0, 1) is normalized to
    float32 precision.

    Parameters
    ----------
    x : array_like
        Real input. float32 and float64 are computed natively; other real
        dtypes follow the NumPy ufunc result dtype (see ``normkit._rowwise``).
    weight, bias : array_like, optional
        Of exactly the shape of the normalized axes (torch's
        ``normalized_shape``): 1-d of ``x.shape[axis]`` for an int axis.
    eps : float
        Added to the variance; finite and >= 0.
    axis : int, tuple of ints or None
        The axis to normalize along (default: the last), or a tuple of the
        trailing axes, in any order (``(-2, -1)``; None: every axis),
        normalized as one row, as ONNX's ``axis=k``. Other tuples are a
        ``ValueError``.
    out : ndarray, optional
        Destination of the input's shape and result dtype; may be ``x``.
        Receives only the result, not the statistics.
    return_stats : bool
        Also return each row's ``mean`` and ``rstd = 1 / sqrt(var + eps)``
        (ONNX's Mean and InvStdDev, ``torch.native_layer_norm``'s).

    Returns
    -------
    y : ndarray
        The result (``out`` when given).
    mean, rstd : ndarray
        With ``return_stats=True`` only: x's shape with the normalized
        axes of length 1, float32 for float32 and float16 inputs (float64
        for float64), computed in the same pass as ``y``; NaN for rows
        holding NaN or +-inf, and for an empty axis.

    Examples
    --------
    >>> import numpy as np, normkit
    >>> x = np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 6.0]])
    >>> normkit.layer_norm(x).round(4)
    array([[-1.3416, -0.4472,  0.4472,  1.3416],
           [-0.5773, -0.5773, -0.5773,  1.732 ]])
    >>> y, mean, rstd = normkit.layer_norm(x, return_stats=True)
    >>> mean, rstd.round(4)
    (array([[2.5],
           [3. ]]), array([[0.8944],
           [0.5773]]))
    >>> image = np.arange(12.0).reshape(1, 2, 2, 3)  # normalize over (H, W, C)
    >>> normkit.layer_norm(image, np.full((2, 2, 3), 2.0), axis=(1, 2, 3))[0, 0].round(3)
    array([[-3.187, -2.607, -2.028],
           [-1.448, -0.869, -0.29 ]])
    """
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("layer_norm", locals())
    return _norm("layer_norm", "layer", x, weight, bias, eps, axis, out, return_stats)


def rms_norm(x, weight=None, *, eps: float = 1e-6, axis=-1, out: np.ndarray | None = None, return_stats: bool = False):
    """RMSNorm (Zhang & Sennrich 2019): ``x / sqrt(mean(x**2) + eps) * weight``.

    Parameters
    ----------
    x : array_like
        Real input, with the dtype rules of :func:`layer_norm`.
    weight : array_like, optional
        Of exactly the shape of the normalized axes.
    eps : float
        Added to the mean square; finite and >= 0.
    axis : int, tuple of ints or None
        As for :func:`layer_norm`: an axis, or the trailing axes.
    out : ndarray, optional
        Destination of the result (only); may be ``x``.
    return_stats : bool
        Also return ``rstd = 1 / sqrt(mean(x**2) + eps)`` of each row.

    Returns
    -------
    y : ndarray
        The result (``out`` when given).
    rstd : ndarray
        With ``return_stats=True`` only; shaped and typed as the
        statistics of :func:`layer_norm`.

    Examples
    --------
    >>> import numpy as np, normkit
    >>> x = np.array([[3.0, 4.0], [1.0, -1.0]], dtype=np.float32)
    >>> y, rstd = normkit.rms_norm(x, np.array([1.0, 0.5]), eps=0.0, return_stats=True)
    >>> y.round(4)
    array([[ 0.8485,  0.5657],
           [ 1.    , -0.5   ]], dtype=float32)
    >>> rstd.round(4)
    array([[0.2828],
           [1.    ]], dtype=float32)
    """
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("rms_norm", locals())
    return _norm("rms_norm", "rms", x, weight, None, eps, axis, out, return_stats)


def crms_norm(x, weight=None, *, eps: float = 1e-6, axis=-1, out: np.ndarray | None = None, return_stats: bool = False):
    """CRMSNorm (Jiang et al. 2023, "Pre-RMSNorm and Pre-CRMSNorm
    Transformers") of a compressed zero-mean vector: ``x`` holds the first
    ``d - 1`` entries of a vector of ``d`` entries summing to 0 (the last
    is ``-sum(x)``), so its RMS is ``sqrt((sum(x**2) + sum(x)**2) / d)``;
    the result is ``x / sqrt((sum(x**2) + sum(x)**2) / d + eps) * weight``
    with ``d`` = the row length + 1.

    Parameters
    ----------
    x : array_like
        Real input, with the dtype rules of :func:`layer_norm`.
    weight : array_like, optional
        Of exactly the shape of the normalized axes.
    eps : float
        Added to the mean square; finite and >= 0.
    axis : int, tuple of ints or None
        As for :func:`layer_norm`: an axis, or the trailing axes.
    out : ndarray, optional
        Destination of the result (only); may be ``x``.
    return_stats : bool
        Also return ``rstd``, the reciprocal of the denominator above, of
        each row.

    Returns
    -------
    y : ndarray
        The result (``out`` when given).
    rstd : ndarray
        With ``return_stats=True`` only; shaped and typed as the
        statistics of :func:`layer_norm`.

    Examples
    --------
    >>> import numpy as np, normkit
    >>> v = np.array([1.0, 2.0, -3.0])  # sums to 0: compressed to [1.0, 2.0]
    >>> normkit.crms_norm(v[:2], eps=0.0).round(4)
    array([0.4629, 0.9258])
    >>> normkit.rms_norm(v, eps=0.0)[:2].round(4)
    array([0.4629, 0.9258])
    >>> normkit.crms_norm(v[:2], eps=0.0, return_stats=True)[1].round(4)
    array([0.4629])
    """
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("crms_norm", locals())
    return _norm("crms_norm", "crms", x, weight, None, eps, axis, out, return_stats)


def add_rms_norm(x, residual, weight=None, *, eps: float = 1e-6, axis=-1, out=None, return_stats: bool = False) -> tuple:
    """Fused residual add and RMSNorm: returns ``(rms_norm(s, weight), s)``
    with ``s = x + residual``, computed in one kernel (``s`` is written once
    and normalized from cache).

    Parameters
    ----------
    x, residual : array_like
        Real inputs of one shape. The result dtype follows
        ``np.result_type(x, residual)`` (then the rules of ``rms_norm``).
    weight : array_like, optional
        Of exactly the shape of the normalized axes.
    eps : float
        As for :func:`rms_norm`.
    axis : int, tuple of ints or None
        As for :func:`rms_norm`: an axis, or the trailing axes.
    out : tuple of two ndarrays, optional
        ``(normed, s)`` as for NumPy ufuncs with two outputs; either may be
        ``x`` or ``residual`` itself (``out=(x, residual)`` updates both in
        place), but they must not share memory with each other.
    return_stats : bool
        Also return the ``rstd`` of ``s`` (see :func:`rms_norm`).

    Returns
    -------
    normed, s : ndarray
        The norm of the sum, and the sum, both in the result dtype.
    rstd : ndarray
        With ``return_stats=True`` only.

    Examples
    --------
    >>> import numpy as np, normkit
    >>> x, residual = np.array([[1.0, 2.0]]), np.array([[2.0, 2.0]])
    >>> normed, s = normkit.add_rms_norm(x, residual, eps=0.0)
    >>> normed.round(4), s
    (array([[0.8485, 1.1314]]), array([[3., 4.]]))
    >>> normkit.add_rms_norm(x, residual, eps=0.0, return_stats=True)[2].round(4)
    array([[0.2828]])
    """
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("add_rms_norm", locals())
    return _add_norm("add_rms_norm", "rms", x, residual, weight, None, eps, axis, out, return_stats)


def add_layer_norm(
    x, residual, weight=None, bias=None, *, eps: float = 1e-5, axis=-1, out=None, return_stats: bool = False
) -> tuple:
    """Fused residual add and LayerNorm: returns
    ``(layer_norm(s, weight, bias), s)`` with ``s = x + residual``, in one
    kernel.

    Parameters
    ----------
    x, residual : array_like
        Real inputs of one shape, as for :func:`add_rms_norm`.
    weight, bias : array_like, optional
        Of exactly the shape of the normalized axes.
    eps : float
        As for :func:`layer_norm`.
    axis : int, tuple of ints or None
        As for :func:`layer_norm`: an axis, or the trailing axes.
    out : tuple of two ndarrays, optional
        ``(normed, s)``, as for :func:`add_rms_norm`.
    return_stats : bool
        Also return the ``mean`` and ``rstd`` of ``s`` (see
        :func:`layer_norm`).

    Returns
    -------
    normed, s : ndarray
        The norm of the sum, and the sum, both in the result dtype.
    mean, rstd : ndarray
        With ``return_stats=True`` only.

    Examples
    --------
    >>> import numpy as np, normkit
    >>> x, residual = np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 1.0, 1.0]])
    >>> normed, s, mean, rstd = normkit.add_layer_norm(x, residual, eps=0.0, return_stats=True)
    >>> normed.round(4), s, mean, rstd.round(4)
    (array([[-1.2247,  0.    ,  1.2247]]), array([[2., 3., 4.]]), array([[3.]]), array([[1.2247]]))
    """
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("add_layer_norm", locals())
    return _add_norm("add_layer_norm", "layer", x, residual, weight, bias, eps, axis, out, return_stats)


def _channel(name: str, label: str, value, shape: tuple, dtype: np.dtype) -> np.ndarray | None:
    """weight / bias, of exactly the normalized axes' ``shape``, as a 1-d
    array of the computation dtype (float32 for a half ``dtype``, under
    ``half_channel``'s promotion rule): the caller's array when it already
    is one, else converted or flattened. No private copy here: the native
    layer makes the one copy of each weight and bias."""
    if value is None:
        return None
    a = as_input_array(name, value, label)
    if a.shape != shape:
        what = "1-d, the length of the normalized axis" if len(shape) == 1 else "the shape of the normalized axes, as torch's normalized_shape"
        raise ValueError(f"{name}: {label} has shape {a.shape}, expected {shape} ({what})")
    if a.dtype.kind not in "biuf" and not half_name(a.dtype):
        raise TypeError(f"{name}: {label} has unsupported dtype {a.dtype}; expected a real dtype")
    a = half_channel(name, label, a, dtype) if half_name(dtype) else np.asarray(a, dtype=dtype)
    return a if a.ndim == 1 else a.reshape(-1)


def shares_memory(outs, *channels) -> bool:
    """True when a weight or bias shares memory with one of ``outs`` (None
    entries ignored). The native layer refuses such a call (the kernel would
    overwrite its weight while reading it), so the public functions compute
    it into new arrays and copy the result into ``out`` at the end."""
    return any(
        isinstance(o, np.ndarray) and c is not None and np.may_share_memory(c, o) for o in outs for c in channels
    )


def _prepare(name: str, x, axis):
    """(x as ndarray, its normalized axes as a sorted tuple, their shape).
    A tuple (or None) must be the trailing axes."""
    x = as_input_array(name, x)
    if x.ndim == 0:
        raise AxisError(axis if isinstance(axis, int) else -1, 0, f"{name}: x is a 0-d array; expected at least 1 dimension to normalize along")
    axes = normalize_axes(axis, x.ndim, name)
    if len(axes) > 1 and axes != tuple(range(x.ndim - len(axes), x.ndim)):
        trailing = tuple(range(-len(axes), 0))
        raise ValueError(
            f"{name}: axis {axis} are not the trailing axes of a {x.ndim}-d x; the norms normalize over trailing "
            f"axes (torch's normalized_shape, ONNX's axis=k): use axis={trailing} after np.moveaxis"
        )
    return x, axes, tuple(x.shape[a] for a in axes)


class _Stats:
    """The statistics arrays of one call: ``names`` (a subset of
    ``("mean", "rstd")``, or none), each of x's shape with the normalized
    axes of length 1, in the computation dtype (float32 for half storage). C-contiguous, so their
    elements are in the order of the kernel's rows (the other axes, in
    order)."""

    def __init__(self, names: tuple, x: np.ndarray, axes: tuple, compute: np.dtype):
        kept = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
        dtype = FLOAT32 if half_name(compute) else compute
        self.arrays = {k: np.empty(kept, dtype=dtype) for k in names}
        if row_length(x.shape, axes) == 0:
            for a in self.arrays.values():
                a.fill(np.nan)

    def native_args(self) -> tuple:
        """(mean, rstd) for the native call, None where not asked for."""
        return self.arrays.get("mean"), self.arrays.get("rstd")

    def values(self) -> tuple:
        return tuple(self.arrays.values())


def _norm(name, kind, x, weight, bias, eps, axis, out, return_stats):
    if type(eps) is not float:  # a float goes to the native call as is, which checks it
        eps = check_eps(name, eps)
    if not return_stats and is_direct(x, axis):
        # weight and bias as given: the native layer takes 1-d arrays of x's
        # dtype and the row length, apart from out, and refuses anything
        # else, which the general path below converts or reports.
        try:
            return _native.norm(x, out, kind, eps, weight, bias)
        except REFUSED:
            pass
    eps = check_eps(name, eps)  # a float eps unchecked so far, or refused by the native call
    x, axes, shape = _prepare(name, x, axis)
    result = result_dtype(name, x.dtype)
    compute = kernel_dtype(x.dtype, result, True)
    w = _channel(name, "weight", weight, shape, compute)
    b = _channel(name, "bias", bias, shape, compute)
    if not return_stats:
        if out is not None and shares_memory((out,), w, b):
            check_out(name, out, x.shape, result)
            np.copyto(out, rowwise(name, _native.norm, x, axis, None, kind, eps, w, b, half_kernel=True))
            return out
        return rowwise(name, _native.norm, x, axis, out, kind, eps, w, b, half_kernel=True)
    if out is not None:
        check_out(name, out, x.shape, result)
    stats = _Stats(_STATS[kind], x, axes, compute)
    into_out = out is not None and not shares_memory((out,), w, b)
    target = out if into_out else np.empty(x.shape, dtype=result)
    if x.size:
        x_rows = input_rows(x, axes, compute)
        dest = Output(target, axes, compute, x_rows)
        call_native(_native.norm, (x_rows, dest.rows), kind, eps, w, b, *stats.native_args())
        dest.finish()
    if out is not None and not into_out:
        np.copyto(out, target)
        target = out
    return (target, *stats.values())


def _check_outs(name: str, out, shape: tuple, dtype: np.dtype):
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError(f"{name}: out must be None or a tuple of two arrays (normed, sum), got {type(out).__name__}")
    normed = check_out(name, out[0], shape, dtype, "out[0]")
    summed = check_out(name, out[1], shape, dtype, "out[1]")
    if np.may_share_memory(normed, summed):
        raise ValueError(f"{name}: out[0] and out[1] must not share memory")
    return normed, summed


def _add_norm(name, kind, x, residual, weight, bias, eps, axis, out, return_stats):
    if type(eps) is not float:  # a float goes to the native call as is, which checks it
        eps = check_eps(name, eps)
    pair = out is None or (type(out) is tuple and len(out) == 2 and out[0] is not None and out[1] is not None)
    if not return_stats and pair and is_direct(x, axis):
        # As in _norm: the arrays as given, which the native layer takes or
        # refuses (then the general path below converts or reports).
        normed, summed = (None, None) if out is None else out
        try:
            return _native.add_norm(x, residual, normed, summed, kind, eps, weight, bias)
        except REFUSED:
            pass
    eps = check_eps(name, eps)  # a float eps unchecked so far, or refused by the native call
    x, axes, shape = _prepare(name, x, axis)
    residual = as_input_array(name, residual, "residual")
    if residual.shape != x.shape:
        raise ValueError(f"{name}: residual has shape {residual.shape}, expected {x.shape} (the shape of x)")
    result_dtype(name, x.dtype)  # names x when its dtype is not real
    if residual.dtype.kind not in "biuf" and not half_name(residual.dtype):
        raise TypeError(f"{name}: residual has unsupported dtype {residual.dtype}; expected a real (bool, integer or float) dtype")
    try:
        common = np.result_type(x.dtype, residual.dtype)
    except TypeError:  # bfloat16 with float16 before ml_dtypes 0.7: DTypePromotionError
        raise TypeError(f"{name}: x has dtype {x.dtype} and residual {residual.dtype}, which have no common dtype; convert one of them") from None
    result = result_dtype(name, common)
    # Half storage when x and residual both are the result's half type.
    compute = kernel_dtype(x.dtype, result, residual.dtype.newbyteorder("=") == result)
    w = _channel(name, "weight", weight, shape, compute)
    b = _channel(name, "bias", bias, shape, compute)
    if out is None:
        normed, summed = np.empty(x.shape, dtype=result), np.empty(x.shape, dtype=result)
    else:
        normed, summed = _check_outs(name, out, x.shape, result)
    stats = _Stats(_STATS[kind] if return_stats else (), x, axes, compute)
    if x.size == 0:
        return (normed, summed, *stats.values())
    outs = None
    if out is not None and shares_memory((normed, summed), w, b):
        outs, normed, summed = (normed, summed), np.empty(x.shape, dtype=result), np.empty(x.shape, dtype=result)
    x_rows = input_rows(x, axes, compute)
    r_rows = input_rows(residual, axes, compute)
    dest_normed = Output(normed, axes, compute, x_rows, r_rows)
    dest_summed = Output(summed, axes, compute, x_rows, r_rows)
    call_native(_native.add_norm, (x_rows, r_rows, dest_normed.rows, dest_summed.rows), kind, eps, w, b, *stats.native_args())
    if outs is not None:
        np.copyto(outs[0], dest_normed.finish())
        np.copyto(outs[1], dest_summed.finish())
        return (*outs, *stats.values())
    return (dest_normed.finish(), dest_summed.finish(), *stats.values())
