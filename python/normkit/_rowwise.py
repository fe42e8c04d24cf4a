"""The NumPy contract shared by every row-wise kernel.

A row-wise kernel reduces along one axis and writes a result of the input's
shape. This module turns any array-like, ``axis`` and ``out=`` into 2-d
views with contiguous rows that the native kernels take, checking every
argument before a single element is written:

* dtypes: float32 and float64 are computed natively; float16 and
  bfloat16 (``ml_dtypes``) are read and written by the kernels as 16-bit
  floats and computed in float32 (``normkit._half``). Other real dtypes get
  the result dtype a NumPy ufunc such as ``np.exp`` would give (bool, int8,
  uint8 -> float16; int16 -> float32; wider ints -> float64), computed in
  float32 (float16 results) or float64 and cast. Complex, object, string and
  other dtypes raise ``TypeError`` naming the dtype.
* ``axis``: an int, a tuple of ints or None (every axis). Several axes are
  one row: they are moved to the end in increasing order and flattened
  (C order), so a row of ``axis=(0, 2)`` holds ``x[:, j, :]``'s entries.
  Out-of-range axes raise ``numpy.exceptions.AxisError``, repeated ones
  ``ValueError``. A 0-d input is one row of one entry for ``axis`` in
  ``-1, 0, (), None`` (as torch and SciPy).
* layouts: input whose rows are contiguous and aligned, in native byte
  order, is read in place; other layouts (strided, negative strides,
  Fortran order, unaligned, byte-swapped) are copied first, to native
  byte order (the result dtype is always native).
* ``out=``: an ndarray of the input's shape and the result dtype, writeable.
  It may be the input itself (in place); an ``out`` that partially overlaps
  the input, or whose rows are not contiguous or not aligned, is computed
  into an aligned temporary and copied at the end. A byte-swapped ``out``
  does not have the result dtype: ``TypeError``.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from ._half import as_bits, half_name

try:
    from numpy.exceptions import AxisError
except ImportError:  # NumPy < 1.25
    from numpy import AxisError  # type: ignore[attr-defined,no-redef]

#: NumPy's float32 and float64 descriptors (native byte order), which the
#: kernels take as they are.
F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
NATIVE_DTYPES = (F32, F64)


def result_dtype(name: str, dtype: np.dtype) -> np.dtype:
    """The dtype a row-wise float kernel returns for input of ``dtype``."""
    if dtype in NATIVE_DTYPES or half_name(dtype):
        return dtype
    if dtype.kind in "biuf":
        # The ufunc rule: the smallest float that holds the input exactly.
        return np.result_type(dtype, np.float16)
    raise TypeError(f"{name}: x has unsupported dtype {dtype}; expected a real (bool, integer or float) dtype")


_REQUESTABLE = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def requested_dtype(name: str, dtype) -> np.dtype:
    """A ``dtype=`` argument: float16, float32, float64 or bfloat16 (the
    dtypes the kernels compute, or a half type computed in float32 and
    rounded once)."""
    try:
        d = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name}: dtype must be a float dtype, got {dtype!r}") from None
    if half_name(d):
        return d
    if d.newbyteorder("=") not in _REQUESTABLE:
        raise TypeError(f"{name}: dtype must be float16, float32 or float64 (or ml_dtypes.bfloat16), got {d}")
    return d.newbyteorder("=")


def compute_dtype(result: np.dtype) -> np.dtype:
    """The native dtype a result dtype is computed in."""
    if result in NATIVE_DTYPES:
        return result
    return np.dtype(np.float32) if result.itemsize <= 4 else np.dtype(np.float64)


def kernel_dtype(source: np.dtype, result: np.dtype, half_kernel: bool) -> np.dtype:
    """The dtype the kernel reads and writes: the half ``result`` itself when
    the input already is that half type (in any byte order) and the kernel
    takes half storage (``half_kernel``); else ``compute_dtype(result)``
    (a half result from another dtype is computed in float32 and rounded
    once at the end)."""
    if half_kernel and half_name(result) and source.newbyteorder("=") == result:
        return result
    return compute_dtype(result)


def call_native(native, rows: tuple, *args) -> None:
    """``native(*rows, *args)``; half ``rows`` go as ``uint16`` views with
    ``half=`` naming their type (None entries pass through)."""
    half = next((half_name(r.dtype) for r in rows if r is not None), None)
    if half is None:
        native(*rows, *args)
    else:
        native(*(None if r is None else as_bits(r) for r in rows), *args, half=half)


def check_eps(name: str, eps) -> float:
    """``eps`` as a float: a real number, finite and >= 0."""
    try:
        value = float(eps)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: eps must be a real number, got {type(eps).__name__}") from None
    except OverflowError:  # an int beyond float range, e.g. 10**400
        raise ValueError(f"{name}: eps must be finite and >= 0, got an integer too large for a float") from None
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name}: eps must be finite and >= 0, got {eps!r}")
    return value


def exact_int(value, what: str) -> int:
    """``value`` as an int (``operator.index``), refusing bools:
    ``operator.index(True)`` is 1, but NumPy rejects a bool axis, and so do
    we. A ``TypeError`` says ``"{what} must be an integer, got <type>"``."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be an integer, got {type(value).__name__}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an integer, got {type(value).__name__}") from None


def normalize_axis(axis, ndim: int, name: str | None = None) -> int:
    """``axis`` in [0, ndim); errors are prefixed with ``name`` when given."""
    prefix = f"{name}: " if name else ""
    axis = exact_int(axis, f"{prefix}axis")
    if not -ndim <= axis < ndim:
        raise AxisError(axis, ndim, name)
    return axis % ndim


def normalize_axes(axis, ndim: int, name: str | None = None) -> tuple[int, ...]:
    """``axis`` (an int, a tuple of ints or None for every axis) as a sorted
    tuple of distinct axes in [0, ndim)."""
    if axis is None:
        return tuple(range(ndim))
    if not isinstance(axis, tuple):
        return (normalize_axis(axis, ndim, name),)
    axes = tuple(normalize_axis(a, ndim, name) for a in axis)
    if len(set(axes)) != len(axes):
        prefix = f"{name}: " if name else ""
        raise ValueError(f"{prefix}axis {axis} has repeated entries")
    return tuple(sorted(axes))


def row_length(shape: tuple, axes: tuple[int, ...]) -> int:
    """Entries per row: the product of the normalized axes' lengths."""
    return math.prod(shape[a] for a in axes)


def axes_last(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``a`` with ``axes`` moved to the end (in their order): a view."""
    k = len(axes)
    if axes == tuple(range(a.ndim - k, a.ndim)):
        return a
    return np.moveaxis(a, axes, tuple(range(a.ndim - k, a.ndim)))


def as_input_array(name: str, x, arg: str = "x") -> np.ndarray:
    """``x`` as an ndarray, with a clear error for what NumPy cannot convert."""
    if isinstance(x, np.ndarray):
        return x
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name}: cannot convert {arg} to an array: {exc}") from exc


def check_out(name: str, out, shape: tuple, dtype: np.dtype, label: str = "out") -> np.ndarray:
    """Validates a caller-supplied output array (nothing is written)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: {label} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"{name}: {label} has shape {out.shape}, expected {shape}")
    if out.dtype != dtype:
        if out.dtype.newbyteorder("=") == dtype:
            # The kernels write native floats; converting the result into a
            # byte-swapped out would be a hidden copy the caller did not ask for.
            raise TypeError(f"{name}: {label} has dtype {out.dtype.str} (non-native byte order), expected {dtype} in native byte order")
        raise TypeError(f"{name}: {label} has dtype {out.dtype}, expected {dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{name}: {label} is read-only; expected a writeable array")
    return out


def _rows_view(a: np.ndarray, axes: tuple[int, ...], n: int) -> np.ndarray | None:
    """``a`` with ``axes`` moved last as a 2-d view with contiguous rows, or
    None if that needs a copy."""
    moved = axes_last(a, axes)
    try:
        rows = moved.reshape(-1, n, copy=False)
    except TypeError:  # NumPy < 2.1 has no copy= on reshape
        rows = moved.view()
        try:
            rows.shape = (-1, n)
        except AttributeError:
            return None
    except ValueError:
        return None
    if n > 1 and rows.strides[1] != rows.itemsize:
        return None
    if not rows.flags.aligned:
        return None
    return rows


def input_rows(x: np.ndarray, axes, dtype: np.dtype) -> np.ndarray:
    """The rows of ``x`` along ``axes`` (an int or a normalized tuple) as a
    2-d array of ``dtype`` with contiguous rows: a view when the layout
    allows, else a copy."""
    axes = _as_axes(axes)
    n = row_length(x.shape, axes)
    if x.dtype != dtype:
        x = x.astype(dtype)
    rows = _rows_view(x, axes, n)
    if rows is None:
        # Not contiguous along the axes, or unaligned (np.ascontiguousarray
        # would return an unaligned C-contiguous array as it is): copy.
        rows = np.array(axes_last(x, axes), order="C", copy=True).reshape(-1, n)
    return rows


def _as_axes(axes) -> tuple[int, ...]:
    return axes if isinstance(axes, tuple) else (axes,)


class Output:
    """Where a row-wise result goes: 2-d ``rows`` for the kernel to write,
    and ``finish()`` that returns the caller's array (copying from a
    temporary when the kernel could not write the caller's memory)."""

    def __init__(self, target: np.ndarray, axes, compute: np.dtype, *inputs: np.ndarray):
        self.target = target
        self.axes = axes = _as_axes(axes)
        n = row_length(target.shape, axes)
        direct = target.dtype == compute
        rows = _rows_view(target, axes, n) if direct else None
        if rows is not None and (_overlaps_itself(rows) or any(_overlaps_differently(rows, x) for x in inputs)):
            rows = None
        self.direct = rows is not None
        if rows is None:
            count = math.prod(s for i, s in enumerate(target.shape) if i not in axes)
            rows = np.empty((count, n), dtype=compute)
        self.rows = rows

    def finish(self) -> np.ndarray:
        if not self.direct:
            moved = axes_last(self.target, self.axes)
            np.copyto(moved, self.rows.reshape(moved.shape), casting="unsafe")
        return self.target


def _overlaps_itself(rows: np.ndarray) -> bool:
    """True when rows of a 2-d view with contiguous rows share memory (a
    writeable ``as_strided`` view with a short or zero row stride): NumPy
    writes such an ``out`` in order, the kernels write rows in parallel, so
    the result goes through a temporary."""
    return rows.shape[0] > 1 and rows.shape[1] > 0 and abs(rows.strides[0]) < rows.shape[1] * rows.itemsize


def _overlaps_differently(out_rows: np.ndarray, x_rows: np.ndarray) -> bool:
    """True when the kernel must not write ``out_rows`` while reading
    ``x_rows``: they share memory but are not the very same elements (exact
    aliasing is fine: every kernel reads an element before writing it)."""
    if not np.may_share_memory(out_rows, x_rows):
        return False
    same = (
        out_rows.__array_interface__["data"][0] == x_rows.__array_interface__["data"][0]
        and out_rows.strides == x_rows.strides
        and out_rows.shape == x_rows.shape
        and out_rows.dtype == x_rows.dtype
    )
    return not same


#: What a native call raises when it does not take its arguments as they
#: are (see :func:`is_direct`).
REFUSED = (TypeError, ValueError, MemoryError)


def is_direct(x, axis) -> bool:
    """True for the common case the native layer may take without the
    general machinery: a float32 or float64 ndarray (not a subclass) along
    its last axis (an int ``axis``). Half dtypes go the general way at once
    (their kernels take uint16 views). The dtype is first compared by
    identity with NumPy's own float32 and float64 descriptors, which an
    array of native byte order almost always holds (``x.dtype in
    NATIVE_DTYPES`` alone cost 20-45 ns of every call; issue 11, round 39).
    Left to the native layer, which refuses other dtypes with a
    ``TypeError``, a float16 softmax of 64x128 took 15.8 us instead of
    11.6: the refusal costs more than the check.

    A public function then calls the native function itself, inline (each
    Python frame between the user and the native call cost 35-110 ns in
    issue 11's round 18, against about 300 ns for a whole native call on a
    small array; softmax and log_softmax inline this test too)::

        if is_direct(x, axis) and <the function's own plain case>:
            try:
                return _native.softmax(x, out, algorithm)
            except REFUSED:
                pass
        <the general path: rowwise>

    The native layer checks the rest once, before anything is written:
    native byte order, out's dtype and full shape (x's), alignment,
    contiguous rows, a writeable ``out``, ``out`` overlapping ``x`` (then
    computed through a scratch buffer), softmax's ``algorithm`` and
    ``eps`` (the norms pass a float ``eps`` unchecked; ``l1_norm`` checks
    its own first). It allocates the result when ``out`` is None. What it
    refuses (``TypeError`` / ``ValueError``: a strided or byte-swapped
    array, a read-only or mistyped ``out``, an ``eps`` out of range) goes
    the general way, which converts what the kernels cannot read in place
    or raises the error users see; so does a result it cannot allocate
    (``MemoryError``), so that the general path reports a bad argument
    before trying that allocation."""
    return type(x) is np.ndarray and type(axis) is int and (axis == -1 or axis == x.ndim - 1) and ((d := x.dtype) is F32 or d is F64 or d in NATIVE_DTYPES)


def rowwise(name: str, native, x, axis, out, *args, dtype=None, operands=(), half_kernel=False) -> np.ndarray:
    """The general path (callers first try the native call where
    :func:`is_direct` allows): ``native(x_rows, out_rows, *args, *tables)``
    along ``axis`` (an int, a tuple of ints or None); ``dtype``: the
    result dtype (None: x's). ``operands``: arrays that broadcast against x
    (checked by the caller with ``check_broadcast``) or None; each reaches
    ``native`` as its ``broadcast_rows`` (table, index) pair, or (None,
    None). Numeric operands are converted to the computation dtype, bool
    ones kept.
    ``half_kernel``: ``native`` takes half storage (``call_native``), so a
    half x with a result of its own dtype is never converted."""
    x = as_input_array(name, x)
    result = result_dtype(name, x.dtype) if dtype is None else requested_dtype(name, dtype)
    if dtype is not None and x.dtype.kind not in "biuf":
        result_dtype(name, x.dtype)  # the same TypeError for a non-real x
    if out is not None:
        check_out(name, out, x.shape, result)
    if x.ndim == 0:
        # One row of one entry (torch and SciPy agree), after the same axis
        # checks as a 1-d input.
        normalize_axes(axis, 1, name)
        target = out if out is not None else np.empty((), dtype=result)
        ones = tuple(None if a is None else a.reshape(1) for a in operands)
        target[...] = rowwise(name, native, x.reshape(1), -1, None, *args, dtype=result, operands=ones, half_kernel=half_kernel)[0]
        return target
    axes = normalize_axes(axis, x.ndim, name)
    compute = kernel_dtype(x.dtype, result, half_kernel)
    target = out if out is not None else np.empty(x.shape, dtype=result)
    if x.size == 0:
        return target
    x_rows = input_rows(x, axes, compute)
    dest = Output(target, axes, compute, x_rows)
    tables = []
    for a in operands:
        if a is None:
            tables += [None, None]
        else:
            a = a if a.dtype == np.bool_ else a.astype(compute, copy=False)
            tables += broadcast_rows(a, x.shape, axes, dest.rows)
    call_native(native, (x_rows, dest.rows), *args, *tables)
    return dest.finish()


def check_broadcast(name: str, label: str, a: np.ndarray, shape: tuple) -> None:
    """``ValueError`` unless ``a`` broadcasts to ``shape`` (without
    changing it)."""
    try:
        ok = np.broadcast_shapes(a.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: {label} of shape {a.shape} does not broadcast to x's shape {shape}")


def broadcast_rows(a: np.ndarray, shape: tuple, axes: tuple[int, ...], avoid: np.ndarray):
    """An operand ``a`` that broadcasts to ``shape`` as the native row
    table of the rows along ``axes``: ``(table, index)`` with ``table`` the
    distinct rows (2-d, C-contiguous, aligned) and ``index[i]`` the table
    row of row ``i``. Leading axes ``a`` does not vary along are not
    copied: a (batch, 1, 1, key) mask for (batch, head, query, key) scores
    is ``batch`` rows. The table is copied when it shares memory with
    ``avoid`` (the kernel's output). ``a`` must pass ``check_broadcast``."""
    moved = axes_last(np.broadcast_to(a, shape), axes)
    lead = moved.ndim - len(axes)
    compact = moved[tuple(slice(0, 1) if moved.strides[d] == 0 else slice(None) for d in range(lead))]
    n = row_length(shape, axes)
    table = np.require(compact, requirements=["C", "A"]).reshape(-1, n)
    if np.may_share_memory(table, avoid):
        table = table.copy()
    ids = np.arange(table.shape[0], dtype=np.intp).reshape(compact.shape[:lead])
    index = np.ascontiguousarray(np.broadcast_to(ids, moved.shape[:lead])).reshape(-1)
    return table, index
