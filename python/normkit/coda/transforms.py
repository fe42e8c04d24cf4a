"""Log-ratio transforms (Aitchison 1986; Egozcue et al. 2003).

Rows are samples and columns are parts; a 1-d array is one composition and
gives a 1-d result. Results are float64. The forward transforms take
strictly positive parts: a zero, negative, NaN or infinite value raises
``ValueError`` unless ``zeros='replace'`` asks for multiplicative
replacement (``multi_replace``; NaN, infinities and negatives still raise).

The inverse transforms return closed compositions (rows sum to 1); they
exponentiate and close with normkit's native ``softmax`` kernel, since
``closure(exp(z))`` is exactly the softmax of ``z``.
"""

from __future__ import annotations

import numpy as np

from ..softmax import softmax
from . import _checks


def closure(x) -> np.ndarray:
    """Each row divided by its sum. Zeros are allowed; negative, NaN or
    infinite values and rows summing to zero raise ``ValueError``."""
    a, was_1d = _checks.nonnegative("closure", x, min_parts=1)
    return _checks.shaped(a / a.sum(axis=1, keepdims=True), was_1d)


def _clr_rows(a: np.ndarray) -> np.ndarray:
    logs = np.log(a)
    logs -= logs.mean(axis=1, keepdims=True)
    return logs


def clr(x, *, zeros: str = "raise") -> np.ndarray:
    """Centred log-ratio: ``log(x_i) - mean_k log(x_k)`` along each row."""
    a, was_1d = _checks.positive("clr", x, zeros)
    return _checks.shaped(_clr_rows(a), was_1d)


def clr_inv(z) -> np.ndarray:
    """Inverse clr: ``closure(exp(z))``. Any real row is accepted (adding a
    constant to a row does not change the result)."""
    a, was_1d = _checks.coordinates("clr_inv", z, "z", min_cols=2)
    return _checks.shaped(softmax(a, axis=1), was_1d)


def alr(x, reference: int = -1, *, zeros: str = "raise") -> np.ndarray:
    """Additive log-ratio ``log(x_k / x_reference)`` for every part ``k`` but
    the reference (default: the last part); ``D - 1`` columns in the order of
    the remaining parts."""
    a, was_1d = _checks.positive("alr", x, zeros)
    r = _checks.part_index("alr", "reference", reference, a.shape[1])
    logs = np.log(a)
    out = np.delete(logs, r, axis=1) - logs[:, r : r + 1]
    return _checks.shaped(out, was_1d)


def alr_inv(y, reference: int = -1) -> np.ndarray:
    """Inverse alr: inserts ``0 = log(x_r / x_r)`` at position ``reference``
    of the ``D = y.shape[-1] + 1`` parts, then exponentiates and closes."""
    a, was_1d = _checks.coordinates("alr_inv", y, "y")
    r = _checks.part_index("alr_inv", "reference", reference, a.shape[1] + 1)
    full = np.insert(a, r, 0.0, axis=1)
    return _checks.shaped(softmax(full, axis=1), was_1d)


def ilr_basis(n_parts: int, kind: str = "helmert") -> np.ndarray:
    """An orthonormal basis of the clr plane, shape ``(D - 1, D)``; its rows
    are orthonormal and sum to zero.

    * ``"helmert"`` (default; rows 2..D of the Helmert matrix, the basis of
      Egozcue et al. 2003 that scikit-bio uses by default): row ``k``
      (1-based) is ``(1, ..., 1, -k, 0, ..., 0) / sqrt(k (k + 1))`` with ``k``
      ones; coordinate ``k`` contrasts part ``k + 1`` with the geometric
      mean of the parts before it.
    * ``"pivot"`` (pivot coordinates, Hron, Filzmoser & Thompson 2012): row
      ``k`` contrasts part ``k`` with the geometric mean of the parts after
      it: ``sqrt((D-k)/(D-k+1)) * (0, ..., 0, 1, -1/(D-k), ..., -1/(D-k))``.
    """
    if not isinstance(n_parts, (int, np.integer)) or n_parts < 2:
        raise ValueError(f"ilr_basis: n_parts must be an integer >= 2, got {n_parts!r}")
    if kind == "helmert":
        return _helmert(n_parts)
    if kind == "pivot":
        return _pivot(n_parts)
    raise ValueError(f"ilr_basis: kind must be 'helmert' or 'pivot', got {kind!r}")


def _helmert(d: int) -> np.ndarray:
    basis = np.zeros((d - 1, d))
    for k in range(1, d):
        basis[k - 1, :k] = 1.0
        basis[k - 1, k] = -k
        basis[k - 1] /= np.sqrt(k * (k + 1.0))
    return basis


def _pivot(d: int) -> np.ndarray:
    basis = np.zeros((d - 1, d))
    for k in range(1, d):
        rest = d - k
        basis[k - 1, k - 1] = 1.0
        basis[k - 1, k:] = -1.0 / rest
        basis[k - 1] *= np.sqrt(rest / (rest + 1.0))
    return basis


def _checked_basis(name: str, basis, n_parts: int) -> np.ndarray:
    """The default Helmert basis, a named kind, or a user basis that must be
    ``(D - 1, D)`` with orthonormal rows summing to zero (tolerance 1e-6)."""
    if basis is None:
        return _helmert(n_parts)
    if isinstance(basis, str):
        return ilr_basis(n_parts, basis)
    b, _ = _checks.as_float_matrix(name, "basis", basis)
    if b.shape != (n_parts - 1, n_parts):
        raise ValueError(f"{name}: basis has shape {b.shape}, expected {(n_parts - 1, n_parts)} for {n_parts} parts")
    _checks.check_finite(name, "basis", b)
    row_sums = np.abs(b.sum(axis=1)).max()
    if row_sums > 1e-6:
        raise ValueError(f"{name}: basis rows must sum to zero (lie in the clr plane); max |row sum| = {row_sums:.3g}")
    gram = np.abs(b @ b.T - np.eye(n_parts - 1)).max()
    if gram > 1e-6:
        raise ValueError(f"{name}: basis rows are not orthonormal; max |B B^T - I| = {gram:.3g}")
    return b


def ilr(x, basis=None, *, zeros: str = "raise") -> np.ndarray:
    """Isometric log-ratio ``clr(x) @ basis.T``: ``D - 1`` coordinates.

    ``basis``: ``None`` or ``"helmert"`` (default, the same basis as
    scikit-bio's default), ``"pivot"``, or a ``(D - 1, D)`` array whose rows
    are orthonormal and sum to zero (checked, ``ValueError`` otherwise).
    """
    a, was_1d = _checks.positive("ilr", x, zeros)
    b = _checked_basis("ilr", basis, a.shape[1])
    return _checks.shaped(_clr_rows(a) @ b.T, was_1d)


def ilr_inv(y, basis=None) -> np.ndarray:
    """Inverse ilr: ``clr_inv(y @ basis)`` for ``D = y.shape[-1] + 1`` parts."""
    a, was_1d = _checks.coordinates("ilr_inv", y, "y")
    b = _checked_basis("ilr_inv", basis, a.shape[1] + 1)
    return _checks.shaped(softmax(a @ b, axis=1), was_1d)
