"""Argument checks shared by the coda modules.

Every public function validates its arguments here before computing
anything, so bad input raises a clear error naming the argument. Two
layouts:

* the statistics (``as_float_matrix``, ``nonnegative``, ``positive``,
  ``coordinates``): rows are samples, columns are parts; a 1-d array is one
  composition (one sample);
* the transforms, ``closure`` and ``multi_replace`` (``compositions``,
  ``nonnegative_along``, ``positive_along``): N-d arrays with the parts
  along one ``axis``, every other axis indexing compositions.
"""

from __future__ import annotations

import operator

import numpy as np

from .._rowwise import AxisError, exact_int, normalize_axis

ZERO_POLICIES = ("raise", "replace")


def _real_array(name: str, arg: str, x) -> np.ndarray:
    """``x`` as an ndarray of a real integer or float dtype."""
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: cannot convert {arg} to an array: {exc}") from exc
    if a.dtype.kind not in "iuf":
        raise TypeError(f"{name}: {arg} has dtype {a.dtype}; expected a real integer or float dtype")
    return a


def as_float_matrix(name: str, arg: str, x) -> tuple[np.ndarray, bool]:
    """``x`` as a 2-d float64 array and whether it was 1-d."""
    a = _real_array(name, arg, x)
    if a.ndim not in (1, 2):
        raise ValueError(
            f"{name}: {arg} must be 1-d (one composition) or 2-d (rows = samples, "
            f"columns = parts), got {a.ndim}-d"
        )
    was_1d = a.ndim == 1
    return np.atleast_2d(a).astype(np.float64, copy=False), was_1d


def _position(index) -> str:
    """Where an element is: ``row r, column c`` (2-d) or its NumPy index."""
    index = tuple(int(i) for i in index)
    if len(index) == 2:
        return f"row {index[0]}, column {index[1]}"
    return f"index {index[0]}" if len(index) == 1 else f"index {index}"


def composition_label(arg: str, ndim: int, axis: int, batch_index) -> str:
    """The composition of ``arg`` at ``batch_index`` (its index along the
    axes other than the parts ``axis``): ``"x"`` (1-d), ``"row 2 of x"`` or
    ``"column 2 of x"`` (2-d), ``"x[1, :, 0]"`` (N-d)."""
    index = [str(int(i)) for i in batch_index]
    if ndim == 1:
        return arg
    if ndim == 2:
        return f"{'row' if axis == 1 else 'column'} {index[0]} of {arg}"
    index.insert(axis, ":")
    return f"{arg}[{', '.join(index)}]"


def check_finite(name: str, arg: str, a: np.ndarray) -> None:
    finite = np.isfinite(a)
    if not finite.all():
        raise ValueError(f"{name}: {arg} contains NaN or infinite values (first at {_position(np.argwhere(~finite)[0])})")


def _check_nonnegative(name: str, arg: str, a: np.ndarray, axis: int) -> None:
    """No negative part, every composition (along ``axis``) with a positive sum."""
    negative = a < 0
    if negative.any():
        raise ValueError(f"{name}: {arg} has negative values (first at {_position(np.argwhere(negative)[0])})")
    empty = ~(a.sum(axis=axis) > 0)
    if empty.any():
        raise ValueError(f"{name}: {composition_label(arg, a.ndim, axis, np.argwhere(empty)[0])} sums to zero")


def _check_zero_policy(name: str, zeros: str) -> None:
    if zeros not in ZERO_POLICIES:
        raise ValueError(f"{name}: zeros must be one of {ZERO_POLICIES}, got {zeros!r}")


def _without_zeros(name: str, arg: str, a: np.ndarray, axis: int, zeros: str) -> np.ndarray:
    """``a`` (checked non-negative) if it has no zero; else ``ValueError``
    (``zeros='raise'``) or its closed compositions with the zeros replaced."""
    is_zero = a == 0
    if not is_zero.any():
        return a
    if zeros == "raise":
        raise ValueError(
            f"{name}: {arg} contains zeros (first at {_position(np.argwhere(is_zero)[0])}); log-ratios need "
            "positive parts. Pass zeros='replace' for multiplicative replacement or call "
            "multi_replace() with your own delta first."
        )
    from .zeros import replace_zeros  # imported here: zeros.py uses this module

    return replace_zeros(name, a, None, axis)


def check_shape(name: str, arg: str, a: np.ndarray, min_parts: int, min_samples: int) -> None:
    n, d = a.shape
    if d < min_parts:
        raise ValueError(f"{name}: {arg} has {d} part(s) (columns); at least {min_parts} are needed")
    if n < min_samples:
        raise ValueError(f"{name}: {arg} has {n} sample(s) (rows); at least {min_samples} are needed")


def nonnegative(name: str, x, arg: str = "x", min_parts: int = 2, min_samples: int = 1):
    """Finite non-negative parts, every row with a positive sum."""
    a, was_1d = as_float_matrix(name, arg, x)
    check_shape(name, arg, a, min_parts, min_samples)
    check_finite(name, arg, a)
    _check_nonnegative(name, arg, a, axis=1)
    return a, was_1d


def positive(name: str, x, zeros: str = "raise", arg: str = "x", min_parts: int = 2, min_samples: int = 1):
    """Strictly positive, finite parts. ``zeros='replace'`` closes the rows and
    replaces zeros multiplicatively (see ``multi_replace``) first."""
    _check_zero_policy(name, zeros)
    a, was_1d = nonnegative(name, x, arg, min_parts, min_samples)
    return _without_zeros(name, arg, a, 1, zeros), was_1d


def coordinates(name: str, y, arg: str, min_cols: int = 1):
    """Finite real coordinates (clr, alr or ilr values)."""
    a, was_1d = as_float_matrix(name, arg, y)
    check_shape(name, arg, a, min_cols, 1)
    check_finite(name, arg, a)
    return a, was_1d


def part_index(name: str, arg: str, index, n_parts: int) -> int:
    """A part (column) index in ``[-n_parts, n_parts)``, made non-negative."""
    try:
        i = operator.index(index)
    except TypeError:
        raise TypeError(f"{name}: {arg} must be an integer part index, got {type(index).__name__}") from None
    if not -n_parts <= i < n_parts:
        raise ValueError(f"{name}: {arg}={i} is out of range for {n_parts} parts")
    return i % n_parts


def part_indices(name: str, arg: str, indices, n_parts: int) -> list[int]:
    """Distinct part indices."""
    try:
        items = list(indices)
    except TypeError:
        raise TypeError(f"{name}: {arg} must be a sequence of part indices") from None
    out = [part_index(name, arg, i, n_parts) for i in items]
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: {arg} repeats a part: {items}")
    return out


def pair_given(name: str, i, j, given, n_parts: int) -> list[int]:
    """``[i, j, *given]`` as part indices of a partial correlation of parts
    i and j given the others: i != j, ``given`` non-empty and apart from
    both."""
    pair = [part_index(name, "i", i, n_parts), part_index(name, "j", j, n_parts)]
    if pair[0] == pair[1]:
        raise ValueError(f"{name}: i and j must be different parts, both are {pair[0]}")
    rest = part_indices(name, "given", given, n_parts)
    if not rest:
        raise ValueError(f"{name}: given must name at least one part to control for")
    if set(rest) & set(pair):
        raise ValueError(f"{name}: given must not contain i or j")
    return pair + rest


def ddof(name: str, value, n_samples: int) -> int:
    try:
        d = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: ddof must be an integer, got {type(value).__name__}") from None
    if d < 0 or d >= n_samples:
        raise ValueError(f"{name}: ddof={d} needs more than {d} samples and must be >= 0; x has {n_samples}")
    return d


def unit_interval(name: str, arg: str, value) -> float | None:
    """``None`` (estimate it) or a float in [0, 1]."""
    if value is None:
        return None
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name}: {arg} must be in [0, 1] (or None to estimate it), got {value!r}")
    return v


def shaped(a: np.ndarray, was_1d: bool) -> np.ndarray:
    """Undo the 1-d -> 2-d promotion of a row-wise result."""
    return a[0] if was_1d else a


def parts_axis(name: str, axis, ndim: int, arg: str = "x") -> int:
    """The parts axis in ``[0, ndim)``: an int (``TypeError`` otherwise, a
    composition has one parts axis), in range (``AxisError`` otherwise)."""
    axis = exact_int(axis, f"{name}: axis")
    if ndim == 0:
        raise AxisError(axis, 0, f"{name}: {arg} is a 0-d array; expected at least 1 dimension (the parts)")
    return normalize_axis(axis, ndim, name)


def compositions(name: str, arg: str, x, axis, min_parts: int, what: str = "part") -> tuple[np.ndarray, int]:
    """``x`` as a finite float64 array of any dimension >= 1 with at least
    ``min_parts`` entries (``what``: parts or coordinates) along the parts
    axis and at least one composition, and that axis in ``[0, x.ndim)``."""
    a = _real_array(name, arg, x)
    axis = parts_axis(name, axis, a.ndim, arg)
    d = a.shape[axis]
    if d < min_parts:
        raise ValueError(f"{name}: {arg} has {d} {what}(s) along axis {axis}; at least {min_parts} are needed")
    if a.size == 0:
        raise ValueError(f"{name}: {arg} of shape {a.shape} holds no composition (parts along axis {axis}); at least one is needed")
    a = a.astype(np.float64, copy=False)
    check_finite(name, arg, a)
    return a, axis


def nonnegative_along(name: str, x, axis, min_parts: int = 2) -> tuple[np.ndarray, int]:
    """Finite non-negative parts of ``x`` along ``axis``, every composition
    with a positive sum."""
    a, axis = compositions(name, "x", x, axis, min_parts)
    _check_nonnegative(name, "x", a, axis)
    return a, axis


def positive_along(name: str, x, axis, zeros: str = "raise") -> tuple[np.ndarray, int]:
    """Strictly positive, finite parts of ``x`` along ``axis`` (at least 2).
    With ``zeros='replace'`` the compositions are closed and their zeros
    replaced multiplicatively (``multi_replace``) first."""
    _check_zero_policy(name, zeros)
    a, axis = nonnegative_along(name, x, axis)
    return _without_zeros(name, "x", a, axis, zeros), axis
