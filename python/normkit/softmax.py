"""Softmax and log-softmax along an axis."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._dask_hook import is_dask, on_dask
from . import _native
from ._half import half_name
from ._rowwise import (
    F32,
    F64,
    NATIVE_DTYPES,
    REFUSED,
    as_input_array,
    check_broadcast,
    check_out,
    call_native,
    compute_dtype,
    input_rows,
    kernel_dtype,
    normalize_axes,
    result_dtype,
    row_length,
    rowwise,
)

ALGORITHMS = ("auto",) + tuple(_native.SOFTMAX_ALGORITHMS)


def softmax(
    x,
    axis=-1,
    *,
    algorithm: str = "auto",
    scale=None,
    bias=None,
    where=None,
    dtype=None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Softmax along ``axis``: ``exp(x - max) / sum(exp(x - max))``.

    Parameters
    ----------
    x : array_like
        Real input. float32 and float64 are computed natively; float16 and
        bfloat16 are read and written as 16-bit floats and computed in
        float32 (the fused form: on a float32 copy); other real dtypes
        follow the NumPy ufunc result dtype (see ``normkit._rowwise``).
    axis : int, tuple of ints or None
        Axes to normalize over (default: the last). Several axes (or None:
        all) are normalized as one row, as ``scipy.special.softmax`` does;
        note that SciPy's default is ``axis=None``, normkit's (like torch's
        and JAX's) is ``-1``. A 0-d input is a row of one entry: 1.0.
    algorithm : str
        ``"auto"`` (three-pass reload; two-pass where it was measured
        faster, by ``cpu_info()["tuning"]``: with AVX-512, rows of 1 MiB
        and more (float64: 8 MiB), but on AMD Zen 4 (``"amd_zen4"``) only
        float32 rows of 32 MiB and float64 rows of 64 MiB and more, and
        in calls of 32 MiB and more, float32 and float64 rows of 8 MiB
        and more (float64: when two or more threads work on the call;
        the fused form never splits a row, so one thread works on a
        one-row call); with AVX2, float32 and float64 rows of 8 MiB and
        more, but on Zen 4 none), ``"two_pass"`` (Dukhan & Ablavatski
        2020: no max pass), ``"three_pass_reload"``,
        ``"three_pass_recompute"`` or ``"online"`` (Milakov & Gimelshein
        2018). All give the same result to within a few float32 ulps.
    scale : float, optional
        Fused attention form: normalize ``scale * x + bias``.
    bias : array_like, optional
        Added after scaling; broadcasts against ``x``; converted to the
        computation dtype.
    where : array_like of bool, optional
        Entries to include (broadcasts against ``x``). Excluded entries get
        probability 0, as in ``jax.nn.softmax(where=)``; a row with every
        entry excluded is all 0 (not NaN).
    dtype : dtype, optional
        Compute and return in this float dtype (float16, float32, float64
        or ``ml_dtypes.bfloat16``), as NumPy ufuncs' ``dtype=``. A half
        target is computed in float32 from x converted to float32 and
        rounded once; a half x with a float32 or float64 target is
        converted to that dtype first (exactly).
    out : ndarray, optional
        Destination of the input's shape and result dtype; may be ``x``.

    Notes
    -----
    The fused form runs in one kernel call per row: ``scale * x + bias``
    (or -inf where ``where`` is False) is written into the output row and
    normalized there while it is in cache; no array of it is made, and a
    broadcast ``bias`` or ``where`` is read as its distinct rows (a
    (batch, 1, 1, key) padding mask for (batch, head, query, key) scores
    is not expanded).

    With a float16 or bfloat16 x, the fused form is computed by the float32
    kernel on a float32 copy of x and rounded once to x's dtype: it is not
    zero-copy (the kernel's in-place prologue would round ``scale * x +
    bias`` to the half type before normalizing).

    Special values follow ``scipy.special.softmax``: a ``-inf`` entry gets
    probability 0; a row containing NaN or ``+inf``, or made only of
    ``-inf``, becomes all NaN (in the fused form: among the included
    entries; excluded ones stay 0). Finite inputs never overflow, even near
    +-3.4e38. Elementwise relative error against a float64 computation is
    at most 2e-6 (float32).

    Examples
    --------
    >>> import numpy as np, normkit
    >>> normkit.softmax(np.array([1.0, 2.0, 3.0]))
    array([0.09003057, 0.24472847, 0.66524096])
    >>> x = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> normkit.softmax(x, axis=None)  # one row over every entry
    array([[0.0320586 , 0.08714432],
           [0.23688282, 0.64391426]])
    >>> normkit.softmax(x, scale=0.5, where=np.array([True, False]))
    array([[1., 0.],
           [1., 0.]])
    """
    if type(x) is np.ndarray:
        # ``is_direct``, inline: a frame less on every call.
        if scale is None and bias is None and where is None and dtype is None and type(axis) is int and (axis == -1 or axis == x.ndim - 1) and ((d := x.dtype) is F32 or d is F64 or d in NATIVE_DTYPES):
            try:
                return _native.softmax(x, out, algorithm)
            except REFUSED:
                pass
    elif is_dask(x):
        return on_dask("softmax", locals())
    plain = scale is None and bias is None and where is None
    if algorithm not in ALGORITHMS:
        raise ValueError(f"softmax: algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if plain:
        return rowwise("softmax", _native.softmax, x, axis, out, algorithm, dtype=dtype, half_kernel=True)
    return _fused("softmax", False, x, axis, algorithm, scale, bias, where, dtype, out)


def log_softmax(x, axis=-1, *, scale=None, bias=None, where=None, dtype=None, out: np.ndarray | None = None) -> np.ndarray:
    """Log-softmax along ``axis``: ``(x - max) - log(sum(exp(x - max)))``.

    ``axis``, ``scale``, ``bias``, ``where``, ``dtype`` and ``out`` as for
    :func:`softmax`; excluded entries (``where`` False) get ``-inf``, and so
    does every entry of a row with all entries excluded.

    Special values follow ``scipy.special.log_softmax``: a non-finite row
    max is replaced by 0 before shifting, so ``-inf`` entries give ``-inf``,
    a row with ``+inf`` gives ``-inf`` for finite entries and NaN for the
    ``+inf`` ones, an all ``-inf`` row gives NaN, and NaN spreads to the row.
    Absolute error against float64 is at most 1e-5 (or one float32 ulp of
    the result where that is larger).

    Examples
    --------
    >>> import numpy as np, normkit
    >>> normkit.log_softmax(np.array([0.0, np.log(3.0)]))
    array([-1.38629436, -0.28768207])
    >>> normkit.log_softmax([1.0, 2.0, 5.0], where=[True, True, False])
    array([-1.31326169, -0.31326169,        -inf])
    """
    if type(x) is np.ndarray:
        # ``is_direct``, inline, as in softmax.
        if scale is None and bias is None and where is None and dtype is None and type(axis) is int and (axis == -1 or axis == x.ndim - 1) and ((d := x.dtype) is F32 or d is F64 or d in NATIVE_DTYPES):
            try:
                return _native.log_softmax(x, out)
            except REFUSED:
                pass
    elif is_dask(x):
        return on_dask("log_softmax", locals())
    plain = scale is None and bias is None and where is None
    if plain:
        return rowwise("log_softmax", _native.log_softmax, x, axis, out, dtype=dtype, half_kernel=True)
    return _fused("log_softmax", True, x, axis, "auto", scale, bias, where, dtype, out)


def _check_scale(name: str, scale) -> float:
    if scale is None:
        return 1.0
    if isinstance(scale, (bool, np.bool_)) or not isinstance(scale, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name}: scale must be a real number, got {type(scale).__name__}")
    try:
        value = float(scale)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise ValueError(f"{name}: scale must be finite, got {scale!r}")
    return value


def _operand(name: str, label: str, value, kinds: str, what: str) -> np.ndarray | None:
    if value is None:
        return None
    a = as_input_array(name, value, label)
    if a.dtype.kind not in kinds and not ("f" in kinds and half_name(a.dtype)):
        raise TypeError(f"{name}: {label} has dtype {a.dtype}; expected {what}")
    return a


def _fused(name, log, x, axis, algorithm, scale, bias, where, dtype, out):
    """softmax / log_softmax of ``scale * x + bias`` over ``where``: the
    operands checked here, the rest by ``rowwise``, before anything is
    written; then one native call."""
    scale = _check_scale(name, scale)
    x = as_input_array(name, x)
    bias = _operand(name, "bias", bias, "biuf", "a real dtype")
    where = _operand(name, "where", where, "b", "bool")
    for label, a in (("bias", bias), ("where", where)):
        if a is not None:
            check_broadcast(name, label, a, x.shape)
    return rowwise(name, _native.softmax_fused, x, axis, out, algorithm, log, scale, dtype=dtype, operands=(bias, where))


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
    One pass over the data for rows whose entries lie within ``2**18`` in
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
    >>> round(float(normkit.logsumexp(np.array([1000.0, 1000.0]))), 9)  # no overflow
    1000.693147181
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
    compute = kernel_dtype(x.dtype, result, True)
    values = np.empty(shape, dtype=compute)
    if row_length(x.shape, axes) == 0:
        values.fill(-np.inf)
    elif values.size:
        call_native(_native.logsumexp, (input_rows(x, axes, compute), values))
    if out is None:
        return values.astype(result, copy=False)
    np.copyto(out, values, casting="unsafe")
    return out
