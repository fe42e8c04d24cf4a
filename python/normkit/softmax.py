"""Softmax and log-softmax along an axis."""

from __future__ import annotations

import numpy as np

from ._dask_hook import is_dask, on_dask
from . import _native
from ._rowwise import rowwise

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
