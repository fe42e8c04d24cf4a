"""Log-ratio transforms (Aitchison 1986; Egozcue et al. 2003).

Every function here takes N-d arrays with the parts along ``axis`` (default
the last, as in scikit-bio); every other axis indexes compositions, so a
1-d array is one composition and a 2-d array is samples x parts by
default. Results are new float64 arrays; a transform that changes the
number of entries along the parts axis (alr, ilr and their inverses) keeps
that axis in place. ``axis`` is an int (``TypeError`` otherwise) in range
(``numpy.exceptions.AxisError`` otherwise). The forward transforms take
strictly positive parts: a zero, negative, NaN or infinite value raises
``ValueError`` unless ``zeros='replace'`` asks for multiplicative
replacement (``multi_replace``; NaN, infinities and negatives still raise).

The inverse transforms return closed compositions (summing to 1 along
``axis``); they exponentiate and close with normkit's native ``softmax``
kernel, since ``closure(exp(z))`` is exactly the softmax of ``z``. They
compute with the parts as the last, contiguous axis and return the result
with that axis moved back to ``axis`` (a transposed view of a new array
when ``axis`` is not the last).
"""

from __future__ import annotations

import numpy as np

from ..softmax import softmax
from . import _checks


def closure(x, axis: int = -1) -> np.ndarray:
    """Each composition divided by its sum.

    Parameters
    ----------
    x : array_like
        Non-negative parts, N-d, with the parts along ``axis``. Zeros are
        allowed; negative, NaN or infinite values and compositions summing
        to zero raise ``ValueError``.
    axis : int
        The parts axis (default: last, as scikit-bio's ``closure``).

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.coda import closure
    >>> closure([[1.0, 3.0], [2.0, 2.0]])
    array([[0.25, 0.75],
           [0.5 , 0.5 ]])
    >>> closure([[1.0, 3.0], [2.0, 2.0]], axis=0)
    array([[0.33333333, 0.6       ],
           [0.66666667, 0.4       ]])
    """
    a, axis = _checks.nonnegative_along("closure", x, axis, min_parts=1)
    return a / a.sum(axis=axis, keepdims=True)


def _clr(a: np.ndarray, axis: int) -> np.ndarray:
    logs = np.log(a)
    logs -= logs.mean(axis=axis, keepdims=True)
    return logs


def _clr_rows(a: np.ndarray) -> np.ndarray:
    """The clr of a checked samples x parts matrix (for the statistics)."""
    return _clr(a, 1)


def _closed_exp(parts_last: np.ndarray, axis: int) -> np.ndarray:
    """``closure(exp(parts_last))`` along its last axis, computed in place
    (``parts_last`` is a new C-contiguous array) by the native softmax,
    with the parts then moved to ``axis``."""
    softmax(parts_last, axis=-1, out=parts_last)
    return np.moveaxis(parts_last, -1, axis)


def clr(x, axis: int = -1, *, zeros: str = "raise") -> np.ndarray:
    """Centred log-ratio: ``log(x_i) - mean_k log(x_k)`` over the parts.

    Parameters
    ----------
    x : array_like
        Strictly positive parts, N-d, with the parts along ``axis`` (at
        least 2).
    axis : int
        The parts axis (default: last, as scikit-bio's ``clr``).
    zeros : {"raise", "replace"}
        What a zero part does: ``ValueError``, or multiplicative
        replacement (``multi_replace``) before the transform.

    Returns
    -------
    ndarray
        float64, the shape of ``x``; sums to 0 along ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.coda import clr
    >>> x = np.array([[1.0, 2.0, 4.0], [1.0, 1.0, 1.0]])
    >>> np.round(clr(x), 4)
    array([[-0.6931,  0.    ,  0.6931],
           [ 0.    ,  0.    ,  0.    ]])
    >>> np.round(clr(x.T, axis=0), 4)  # parts along the rows
    array([[-0.6931,  0.    ],
           [ 0.    ,  0.    ],
           [ 0.6931,  0.    ]])
    """
    a, axis = _checks.positive_along("clr", x, axis, zeros)
    return _clr(a, axis)


def clr_inv(z, axis: int = -1) -> np.ndarray:
    """Inverse clr: ``closure(exp(z))`` over the parts.

    Any real ``z`` is accepted: adding a constant to a composition's clr
    values does not change the result (scikit-bio's ``clr_inv`` instead
    rejects ``z`` that does not sum to 0).

    Parameters
    ----------
    z : array_like
        Finite clr values, N-d, with the parts along ``axis`` (at least 2).
    axis : int
        The parts axis (default: last, as scikit-bio's ``clr_inv``).

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.coda import clr_inv
    >>> np.round(clr_inv([[-0.6931, 0.0, 0.6931], [0.0, 0.0, 0.0]]), 4)
    array([[0.1429, 0.2857, 0.5714],
           [0.3333, 0.3333, 0.3333]])
    >>> np.round(clr_inv([[0.0, 1.0], [0.0, 1.0]], axis=0), 4)
    array([[0.5, 0.5],
           [0.5, 0.5]])
    """
    a, axis = _checks.compositions("clr_inv", "z", z, axis, min_parts=2)
    parts_last = np.moveaxis(a, axis, -1)
    # softmax reads parts_last in place when its rows are contiguous (else
    # it copies them once) and writes a new C-contiguous result.
    return np.moveaxis(softmax(parts_last, axis=-1), -1, axis)


def alr(x, reference: int = -1, axis: int = -1, *, zeros: str = "raise") -> np.ndarray:
    """Additive log-ratio ``log(x_k / x_reference)`` for every part ``k``
    but the reference.

    Parameters
    ----------
    x : array_like
        Strictly positive parts, N-d, with the parts along ``axis``.
    reference : int
        The reference part, an index along ``axis`` (default: the last
        part; scikit-bio's ``ref_idx`` defaults to the first, 0).
    axis : int
        The parts axis (default: last, as scikit-bio's ``alr``).
    zeros : {"raise", "replace"}
        As for ``clr``.

    Returns
    -------
    ndarray
        float64, with ``D - 1`` entries along ``axis`` (in the order of
        the remaining parts), the other axes as in ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.coda import alr
    >>> x = np.array([[1.0, 2.0, 4.0], [3.0, 3.0, 1.0]])
    >>> np.round(alr(x), 4)
    array([[-1.3863, -0.6931],
           [ 1.0986,  1.0986]])
    >>> np.round(alr(x, reference=0), 4)
    array([[ 0.6931,  1.3863],
           [ 0.    , -1.0986]])
    >>> np.round(alr(x.T, axis=0), 4)
    array([[-1.3863,  1.0986],
           [-0.6931,  1.0986]])
    """
    a, axis = _checks.positive_along("alr", x, axis, zeros)
    r = _checks.part_index("alr", "reference", reference, a.shape[axis])
    logs = np.log(a)
    out = np.delete(logs, r, axis=axis)
    out -= np.take(logs, [r], axis=axis)
    return out


def alr_inv(y, reference: int = -1, axis: int = -1) -> np.ndarray:
    """Inverse alr: inserts ``0 = log(x_r / x_r)`` at position ``reference``
    of the ``D = y.shape[axis] + 1`` parts, then exponentiates and closes.

    Parameters
    ----------
    y : array_like
        Finite alr values, N-d, with ``D - 1`` entries along ``axis``.
    reference : int
        The reference part's index among the ``D`` parts (default: last;
        scikit-bio's default is 0).
    axis : int
        The parts axis (default: last, as scikit-bio's ``alr_inv``).

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.coda import alr_inv
    >>> np.round(alr_inv([[-1.3863, -0.6931], [1.0986, 1.0986]]), 4)
    array([[0.1429, 0.2857, 0.5714],
           [0.4286, 0.4286, 0.1429]])
    >>> np.round(alr_inv([[-1.3863, 1.0986], [-0.6931, 1.0986]], axis=0), 4)
    array([[0.1429, 0.4286],
           [0.2857, 0.4286],
           [0.5714, 0.1429]])
    """
    a, axis = _checks.compositions("alr_inv", "y", y, axis, min_parts=1, what="coordinate")
    r = _checks.part_index("alr_inv", "reference", reference, a.shape[axis] + 1)
    return _closed_exp(np.insert(np.moveaxis(a, axis, -1), r, 0.0, axis=-1), axis)


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


def ilr(x, basis=None, axis: int = -1, *, zeros: str = "raise") -> np.ndarray:
    """Isometric log-ratio ``clr(x) @ basis.T`` over the parts: ``D - 1``
    coordinates.

    Parameters
    ----------
    x : array_like
        Strictly positive parts, N-d, with the ``D`` parts along ``axis``.
    basis : None, str or array_like
        ``None`` or ``"helmert"`` (default, the same basis as scikit-bio's
        default), ``"pivot"``, or a ``(D - 1, D)`` array whose rows are
        orthonormal and sum to zero (checked, ``ValueError`` otherwise).
        Its rows are indexed by the coordinates and its columns by the
        parts, whatever ``axis`` is.
    axis : int
        The parts axis (default: last, as scikit-bio's ``ilr``).
    zeros : {"raise", "replace"}
        As for ``clr``.

    Returns
    -------
    ndarray
        float64, with ``D - 1`` coordinates along ``axis``, the other axes
        as in ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.coda import ilr
    >>> x = np.array([[1.0, 2.0, 4.0], [2.0, 1.0, 1.0]])
    >>> np.round(ilr(x), 4)
    array([[-0.4901, -0.8489],
           [ 0.4901,  0.283 ]])
    >>> np.round(ilr(x.T, axis=0), 4)
    array([[-0.4901,  0.4901],
           [-0.8489,  0.283 ]])
    """
    a, axis = _checks.positive_along("ilr", x, axis, zeros)
    b = _checked_basis("ilr", basis, a.shape[axis])
    return np.moveaxis(np.moveaxis(_clr(a, axis), axis, -1) @ b.T, -1, axis)


def ilr_inv(y, basis=None, axis: int = -1) -> np.ndarray:
    """Inverse ilr: ``clr_inv(y @ basis)`` for ``D = y.shape[axis] + 1``
    parts.

    Parameters
    ----------
    y : array_like
        Finite ilr coordinates, N-d, with ``D - 1`` entries along ``axis``.
    basis : None, str or array_like
        As for ``ilr``: ``(D - 1, D)``.
    axis : int
        The coordinates' (and the result's parts) axis (default: last, as
        scikit-bio's ``ilr_inv``).

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.coda import ilr_inv
    >>> y = np.array([[-0.4901, -0.8489], [0.4901, 0.283]])
    >>> np.round(ilr_inv(y), 4)
    array([[0.1429, 0.2857, 0.5714],
           [0.5   , 0.25  , 0.25  ]])
    >>> np.round(ilr_inv(y.T, axis=0), 4)
    array([[0.1429, 0.5   ],
           [0.2857, 0.25  ],
           [0.5714, 0.25  ]])
    """
    a, axis = _checks.compositions("ilr_inv", "y", y, axis, min_parts=1, what="coordinate")
    b = _checked_basis("ilr_inv", basis, a.shape[axis] + 1)
    return _closed_exp(np.moveaxis(a, axis, -1) @ b, axis)
