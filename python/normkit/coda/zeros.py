"""Zero handling: multiplicative replacement.

Log-ratios are undefined for zero parts. Martin-Fernandez, Barcelo-Vidal &
Pawlowsky-Glahn (2003, "Dealing with zeros and missing values in
compositional data sets using nonparametric imputation", Math. Geology 35)
replace each zero of a closed composition by a small ``delta`` and shrink
the non-zero parts by the factor ``1 - (number of zeros) * delta`` so that
the row still sums to one and the ratios between non-zero parts are kept.
Like scikit-bio's ``multi_replace``, the default is ``delta = 1 / D**2``
for ``D`` parts.
"""

from __future__ import annotations

import numpy as np

from . import _checks


def replace_zeros(name: str, a: np.ndarray, delta) -> np.ndarray:
    """Closes the rows of a checked non-negative 2-d array and replaces its
    zeros; ``delta=None`` means ``1 / D**2``."""
    d = a.shape[1]
    delta = 1.0 / d**2 if delta is None else float(delta)
    if not 0.0 < delta < 1.0:
        raise ValueError(f"{name}: delta must be in (0, 1), got {delta!r}")
    closed = a / a.sum(axis=1, keepdims=True)
    is_zero = closed == 0
    keep = 1.0 - delta * is_zero.sum(axis=1, keepdims=True)
    if (keep <= 0).any():
        row = int(np.flatnonzero(keep[:, 0] <= 0)[0])
        raise ValueError(
            f"{name}: delta={delta} is too large for row {row} ({int(is_zero[row].sum())} zeros): "
            "the replaced zeros would take the whole composition; use a smaller delta"
        )
    return np.where(is_zero, delta, closed * keep)


def multi_replace(x, delta=None) -> np.ndarray:
    """Multiplicative replacement of zeros (Martin-Fernandez et al. 2003).

    Closes each row to sum 1, sets every zero to ``delta`` and scales the
    non-zero parts of the row by ``1 - k * delta`` (``k`` zeros in the row),
    keeping their ratios. ``delta`` defaults to ``1 / D**2`` for ``D`` parts,
    as in scikit-bio. Rows without zeros are only closed.

    Raises ``ValueError`` for negative, NaN or infinite values, all-zero rows,
    and a ``delta`` so large that a row's non-zero parts would vanish.
    """
    a, was_1d = _checks.nonnegative("multi_replace", x)
    return _checks.shaped(replace_zeros("multi_replace", a, delta), was_1d)
