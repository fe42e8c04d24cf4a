"""Softmax and log-softmax along an axis."""

from __future__ import annotations

import numpy as np

from ._dask_hook import is_dask, on_dask
from . import _native
from ._rowwise import (
    as_input_array,
    check_out,
    compute_dtype,
    input_rows,
    normalize_axes,
    result_dtype,
    row_length,
    rowwise,
)

ALGORITHMS = ("auto",) + tuple(_native.SOFTMAX_ALGORITHMS)


def softmax(x, axis: int = -1, *, algorithm: str = "auto", out: np.ndarray | None = None) -> np.ndarray:
    """Softmax along ``axis``: ``exp(x - max) / sum(exp(x - max))``.

    Parameters
    ----------
    x : array_like
        Real input. float32 and float64 are computed natively; other real
        dtypes follow the NumPy ufunc result dtype (see ``normkit._rowwise``).
    axis : int
        Axis to normalize along (default: last).
    algorithm : str
        ``"auto"`` (three-pass reload; with AVX-512, two-pass for rows of
        1 MB and more, where it was measured faster), ``"two_pass"`` (Dukhan & Ablavatski 2020: no max pass),
        ``"three_pass_reload"``, ``"three_pass_recompute"`` or ``"online"``
        (Milakov & Gimelshein 2018). All give the same result to within
        a few float32 ulps.
    out : ndarray, optional
        Destination of the input's shape and result dtype; may be ``x``.

    Special values follow ``scipy.special.softmax``: a ``-inf`` entry gets
    probability 0; a row containing NaN or ``+inf``, or made only of
    ``-inf``, becomes all NaN. Finite inputs never overflow, even near
    +-3.4e38. Elementwise relative error against a float64 computation is
    at most 2e-6 (float32).
    """
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("softmax", locals())
    if algorithm not in ALGORITHMS:
        raise ValueError(f"softmax: algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    return rowwise("softmax", _native.softmax, x, axis, out, algorithm)


def log_softmax(x, axis: int = -1, *, out: np.ndarray | None = None) -> np.ndarray:
    """Log-softmax along ``axis``: ``(x - max) - log(sum(exp(x - max)))``.

    Special values follow ``scipy.special.log_softmax``: a non-finite row
    max is replaced by 0 before shifting, so ``-inf`` entries give ``-inf``,
    a row with ``+inf`` gives ``-inf`` for finite entries and NaN for the
    ``+inf`` ones, an all ``-inf`` row gives NaN, and NaN spreads to the row.
    Absolute error against float64 is at most 1e-5 (or one float32 ulp of
    the result where that is larger).
    """
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("log_softmax", locals())
    return rowwise("log_softmax", _native.log_softmax, x, axis, out)


def logsumexp(x, axis=-1, *, keepdims: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """``log(sum(exp(x)))`` along ``axis``, without overflow.

    Parameters
    ----------
    x : array_like
        Real input, with the dtype rules of :func:`softmax`.
    axis : int, tuple of ints or None
        Axes to reduce (default: the last; None: all). Unlike
        ``scipy.special.logsumexp``, whose default is ``axis=None``.
    keepdims : bool
        Keep the reduced axes with length 1.
    out : ndarray, optional
        Destination of the result's shape and dtype.

    Returns
    -------
    ndarray
        x's shape without the reduced axes (or with them of length 1), in
        x's result dtype; a 0-d array when every axis is reduced.

    Notes
    -----
    One pass over the data for rows whose entries lie within ``2**20`` in
    magnitude: the first pass of the two-pass softmax (Dukhan & Ablavatski
    2020) sums ``exp(x)`` as (mantissa, exponent) pairs, from which
    ``log`` follows without a max pass. Other rows take a max pass first.
    Computed in float64 from the float32 or float64 sums, rounded once.
    Special values follow ``scipy.special.logsumexp``: a NaN entry gives NaN;
    otherwise a ``+inf`` entry gives ``+inf``; ``-inf`` entries contribute
    nothing, so a row of ``-inf`` only, or an empty row, gives ``-inf``.

    Examples
    --------
    >>> import numpy as np, normkit
    >>> float(normkit.logsumexp(np.array([1000.0, 1000.0])))  # no overflow
    1000.6931471805599
    >>> normkit.logsumexp(np.log([[1.0, 3.0], [2.0, 2.0]]), keepdims=True)
    array([[1.38629436],
           [1.38629436]])
    """
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("logsumexp", locals())
    name = "logsumexp"
    x = as_input_array(name, x)
    result = result_dtype(name, x.dtype)
    axes = normalize_axes(axis, max(x.ndim, 1), name)
    if x.ndim == 0:
        x, axes = x.reshape(1), (0,)
    kept = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
    shape = kept if keepdims else tuple(s for i, s in enumerate(x.shape) if i not in axes)
    if out is not None:
        check_out(name, out, shape, result)
    compute = compute_dtype(result)
    values = np.empty(shape, dtype=compute)
    if row_length(x.shape, axes) == 0:
        values.fill(-np.inf)
    elif values.size:
        _native.logsumexp(input_rows(x, axes, compute), values)
    if out is None:
        return values.astype(result, copy=False)
    np.copyto(out, values, casting="unsafe")
    return out
