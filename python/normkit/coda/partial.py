"""Partial correlations of compositional parts (Erb 2020).

I. Erb, "Partial correlations in compositional data analysis", Applied
Computing and Geosciences 6 (2020) 100026 (arXiv:1904.09480). With
``Omega`` the Moore-Penrose pseudo-inverse of the clr covariance,

* partial correlations ``rho_ij = -Omega_ij / sqrt(Omega_ii Omega_jj)``,
* partial variances ``1 / Omega_ii``.

They have a reference-free meaning: regress the log-ratio
``log(x_i / x_r)`` on the log-ratios ``log(x_k / x_r)`` of the remaining
parts ``k``; the residuals do not depend on the reference ``r`` (any part
other than ``i``), because the regressors span the same space of
log-contrasts for every ``r`` (``logratio_residuals``). The partial variance
is the variance of these residuals, and the partial correlation of ``i`` and
``j`` the correlation of their residuals when every other part is
controlled for. Equivalently, the inverse of the alr covariance with
reference ``r`` is ``Omega`` with row and column ``r`` removed (Aitchison
1986). Controlling for only a subset ``S`` of parts means working on the
subcomposition ``{i, j} u S`` (``partial_correlation``).

With fewer samples than parts (``n <= D``) the clr covariance has rank
``n - 1 < D - 1``; the pseudo-inverse still exists but the estimates are
not meaningful: use ``shrunk_partial_correlations``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._dask_hook import is_dask, on_dask
from . import _checks
from .covariance import centered_clr, precision_from_centered


@dataclass(frozen=True)
class PartialCorrelations:
    """Result of ``partial_correlations``.

    correlations: ``(D, D)`` partial correlations, 1 on the diagonal.
    partial_variances: ``(D,)`` ``1 / Omega_ii`` (same ddof as the covariance).
    precision: ``(D, D)`` ``Omega``, pseudo-inverse of the clr covariance.
    rank: rank of the clr covariance used in the pseudo-inverse.
    ddof: the delta degrees of freedom of the covariance.
    """

    correlations: np.ndarray
    partial_variances: np.ndarray
    precision: np.ndarray
    rank: int
    ddof: int


def correlations_from_precision(omega: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(-Omega_ij / sqrt(Omega_ii Omega_jj)`` with 1 on the diagonal,
    ``1 / Omega_ii)``. NaN/inf where ``Omega_ii`` is not positive."""
    diag = np.diag(omega).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 1.0 / np.sqrt(diag)
        pcor = -(omega * scale[:, None]) * scale[None, :]
        np.fill_diagonal(pcor, 1.0)
        return pcor, 1.0 / diag


def partial_correlations(x, *, ddof: int = 1, zeros: str = "raise") -> PartialCorrelations:
    """Partial correlations and partial variances of all parts (Erb 2020).

    ``x``: ``(n, D)`` positive compositions, ``n >= 2``, ``D >= 2``. The
    covariance divides by ``n - ddof`` (default 1); partial correlations do
    not depend on ddof, partial variances scale with ``1 / (n - ddof)``.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.coda import load_cups, partial_correlations
    >>> x, names = load_cups()
    >>> pc = partial_correlations(x)
    >>> pc.rank, pc.correlations.shape  # the clr covariance of D parts has rank D - 1
    (10, (11, 11))
    >>> names[:4], np.round(pc.correlations[0, :4], 3)
    (['Si', 'Al', 'Fe', 'Mg'], array([ 1.   ,  0.722, -0.663,  0.166]))
    """
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("partial_correlations", locals())
    z, ddof = centered_clr("partial_correlations", x, zeros, ddof)
    omega, rank = precision_from_centered(z, ddof)
    pcor, pvar = correlations_from_precision(omega)
    return PartialCorrelations(pcor, pvar, omega, rank, ddof)


def partial_correlation(x, i: int, j: int, given, *, zeros: str = "raise") -> float:
    """Partial correlation of parts ``i`` and ``j`` controlling for the parts
    in ``given`` only: ``partial_correlations`` on the subcomposition
    ``{i, j} u given`` (Erb 2020). ``given`` needs at least one part (on a
    two-part subcomposition the clr coordinates are ``c`` and ``-c``).

    Examples
    --------
    >>> from normkit.coda import load_cups, partial_correlation
    >>> x, names = load_cups()
    >>> names[0], names[1], [names[2], names[3]]
    ('Si', 'Al', ['Fe', 'Mg'])
    >>> round(partial_correlation(x, 0, 1, given=[2, 3]), 4)
    0.9596
    """
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("partial_correlation", locals())
    name = "partial_correlation"
    a, _ = _checks.positive(name, x, zeros, min_parts=3, min_samples=2)
    d = a.shape[1]
    parts = _checks.pair_given(name, i, j, given, d)
    return float(partial_correlations(a[:, parts]).correlations[0, 1])


def logratio_residuals(x, part: int, others=None, reference=None, *, zeros: str = "raise") -> np.ndarray:
    """Residuals of ``log(x_part / x_ref)`` regressed by least squares (with
    intercept) on ``log(x_k / x_ref)`` for the parts ``k`` in ``others``
    other than ``ref``.

    ``others``: the parts controlled for (default: every part but ``part``);
    ``reference``: the denominator, one of ``others`` (default: the last).
    The residuals are the same for every choice of ``reference`` in
    ``others`` (Erb 2020): they belong to ``part`` given the subcomposition
    ``others``. Their variance (with the covariance's ddof) is the partial
    variance of ``part`` in the subcomposition ``{part} u others``, and
    the correlation of the residuals of ``i`` and ``j`` with the same
    ``others`` is ``partial_correlation(x, i, j, others)``.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.coda import load_cups, logratio_residuals
    >>> x, _ = load_cups()
    >>> r = logratio_residuals(x, 0, reference=1)
    >>> r.shape
    (47,)
    >>> bool(np.allclose(r, logratio_residuals(x, 0, reference=2)))  # any reference part
    True
    """
    name = "logratio_residuals"
    a, _ = _checks.positive(name, x, zeros, min_samples=2)
    d = a.shape[1]
    p = _checks.part_index(name, "part", part, d)
    if others is None:
        rest = [k for k in range(d) if k != p]
    else:
        rest = _checks.part_indices(name, "others", others, d)
        if not rest:
            raise ValueError(f"{name}: others must name at least one part")
        if p in rest:
            raise ValueError(f"{name}: others must not contain part {p}")
    r = rest[-1] if reference is None else _checks.part_index(name, "reference", reference, d)
    if r not in rest:
        raise ValueError(f"{name}: reference {r} must be one of others {rest}")
    logs = np.log(a)
    response = logs[:, p] - logs[:, r]
    regressors = logs[:, [k for k in rest if k != r]] - logs[:, r : r + 1]
    design = np.column_stack([np.ones(a.shape[0]), regressors])
    coef, *_ = np.linalg.lstsq(design, response, rcond=None)
    return response - design @ coef
