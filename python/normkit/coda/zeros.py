"""Zero handling: multiplicative replacement.

Log-ratios are undefined for zero parts. Martin-Fernandez, Barcelo-Vidal &
Pawlowsky-Glahn (2003, "Dealing with zeros and missing values in
compositional data sets using nonparametric imputation", Math. Geology 35)
replace each zero of a closed composition by a small ``delta`` and shrink
the non-zero parts by the factor ``1 - (number of zeros) * delta`` so that
the composition still sums to one and the ratios between non-zero parts are
kept. Like scikit-bio's ``multi_replace``, the default is
``delta = 1 / D**2`` for ``D`` parts.
"""

from __future__ import annotations

import numpy as np

from . import _checks


def check_delta(name: str, delta) -> float | None:
    """``None`` (the default ``1 / D**2``) or a real number in (0, 1)."""
    if delta is None:
        return None
    if isinstance(delta, (bool, np.bool_)) or not isinstance(delta, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: delta must be a real number in (0, 1) or None, got {type(delta).__name__}")
    value = float(delta)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name}: delta must be in (0, 1), got {delta!r}")
    return value


def replace_zeros(name: str, a: np.ndarray, delta: float | None, axis: int = -1) -> np.ndarray:
    """Closes the compositions (along ``axis``) of a checked non-negative
    array and replaces their zeros; ``delta`` is checked (``check_delta``),
    ``None`` means ``1 / D**2``."""
    if delta is None:
        delta = 1.0 / a.shape[axis] ** 2
    axis %= a.ndim
    closed = a / a.sum(axis=axis, keepdims=True)
    is_zero = closed == 0
    n_zeros = is_zero.sum(axis=axis, keepdims=True)
    keep = 1.0 - delta * n_zeros
    too_many = np.squeeze(keep <= 0, axis=axis)
    if too_many.any():
        first = np.argwhere(too_many)[0]
        raise ValueError(
            f"{name}: delta={delta} is too large for {_checks.composition_label('x', a.ndim, axis, first)} "
            f"({np.squeeze(n_zeros, axis=axis)[tuple(first)]} zeros): the replaced zeros would take the "
            "whole composition; use a smaller delta"
        )
    return np.where(is_zero, delta, closed * keep)


def multi_replace(x, delta=None, axis: int = -1) -> np.ndarray:
    """Multiplicative replacement of zeros (Martin-Fernandez et al. 2003).

    Closes each composition to sum 1, sets every zero to ``delta`` and
    scales the non-zero parts of that composition by ``1 - k * delta``
    (``k`` zeros in it), keeping their ratios. Compositions without zeros
    are only closed.

    Parameters
    ----------
    x : array_like
        Non-negative parts, N-d, with the parts along ``axis``.
    delta : float, optional
        The replacement value in (0, 1); default ``1 / D**2`` for ``D``
        parts, as in scikit-bio.
    axis : int
        The parts axis (default: last). scikit-bio's ``multi_replace`` has
        no ``axis`` and always uses the last one.

    Returns
    -------
    ndarray
        float64, the shape of ``x``.

    Raises ``ValueError`` for negative, NaN or infinite values, compositions
    summing to zero, and a ``delta`` so large that a composition's non-zero
    parts would vanish; ``TypeError`` for a non-integer ``axis`` and
    ``numpy.exceptions.AxisError`` for one out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.coda import multi_replace
    >>> np.round(multi_replace([[2.0, 0.0, 2.0], [1.0, 1.0, 2.0]]), 4)
    array([[0.4444, 0.1111, 0.4444],
           [0.25  , 0.25  , 0.5   ]])
    >>> np.round(multi_replace([[2.0, 1.0], [0.0, 1.0], [2.0, 2.0]], axis=0), 4)
    array([[0.4444, 0.25  ],
           [0.1111, 0.25  ],
           [0.4444, 0.5   ]])
    """
    delta = check_delta("multi_replace", delta)
    a, axis = _checks.nonnegative_along("multi_replace", x, axis)
    return replace_zeros("multi_replace", a, delta, axis)
