"""Argument checks shared by the coda modules.

Every public function validates its arguments here before computing
anything, so bad input raises a clear error naming the argument. Arrays
follow one layout: rows are samples, columns are parts; a 1-d array is one
composition (one sample).
"""

from __future__ import annotations

import operator

import numpy as np

ZERO_POLICIES = ("raise", "replace")


def as_float_matrix(name: str, arg: str, x) -> tuple[np.ndarray, bool]:
    """``x`` as a 2-d float64 array and whether it was 1-d."""
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: cannot convert {arg} to an array: {exc}") from exc
    if a.dtype.kind not in "iuf":
        raise TypeError(f"{name}: {arg} has dtype {a.dtype}; expected a real integer or float dtype")
    if a.ndim not in (1, 2):
        raise ValueError(
            f"{name}: {arg} must be 1-d (one composition) or 2-d (rows = samples, "
            f"columns = parts), got {a.ndim}-d"
        )
    was_1d = a.ndim == 1
    return np.atleast_2d(a).astype(np.float64, copy=False), was_1d


def check_finite(name: str, arg: str, a: np.ndarray) -> None:
    if not np.isfinite(a).all():
        row, col = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(f"{name}: {arg} contains NaN or infinite values (first at row {row}, column {col})")


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
    if (a < 0).any():
        row, col = np.argwhere(a < 0)[0]
        raise ValueError(f"{name}: {arg} has negative values (first at row {row}, column {col})")
    empty = ~(a.sum(axis=1) > 0)
    if empty.any():
        raise ValueError(f"{name}: row {np.flatnonzero(empty)[0]} of {arg} sums to zero")
    return a, was_1d


def positive(name: str, x, zeros: str = "raise", arg: str = "x", min_parts: int = 2, min_samples: int = 1):
    """Strictly positive, finite parts. ``zeros='replace'`` closes the rows and
    replaces zeros multiplicatively (see ``multi_replace``) first."""
    if zeros not in ZERO_POLICIES:
        raise ValueError(f"{name}: zeros must be one of {ZERO_POLICIES}, got {zeros!r}")
    a, was_1d = nonnegative(name, x, arg, min_parts, min_samples)
    if (a == 0).any():
        if zeros == "raise":
            row, col = np.argwhere(a == 0)[0]
            raise ValueError(
                f"{name}: {arg} contains zeros (first at row {row}, column {col}); log-ratios need "
                "positive parts. Pass zeros='replace' for multiplicative replacement or call "
                "multi_replace() with your own delta first."
            )
        from .zeros import replace_zeros  # imported here: zeros.py uses this module

        a = replace_zeros(name, a, None)
    return a, was_1d


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
