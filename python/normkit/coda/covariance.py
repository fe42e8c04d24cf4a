"""The clr covariance matrix and its Moore-Penrose pseudo-inverse.

The clr covariance ``Gamma = cov(clr(x))`` has the ones vector in its null
space (every clr row sums to zero), so it is singular and its natural
inverse is the pseudo-inverse ``Omega = Gamma^+`` (Aitchison 1986; Erb
2020). Variances and covariances use ``ddof`` (default 1, the unbiased
sample covariance, as R's ``var`` and propr).
"""

from __future__ import annotations

import numpy as np

from . import _checks
from .transforms import _clr_rows


def centered_clr(name: str, x, zeros: str, ddof) -> tuple[np.ndarray, int]:
    """Column-centred clr data of checked positive 2-d input, and the ddof."""
    a, _ = _checks.positive(name, x, zeros, min_samples=2)
    ddof = _checks.ddof(name, ddof, a.shape[0])
    z = _clr_rows(a)
    z -= z.mean(axis=0)
    return z, ddof


def clr_covariance(x, *, ddof: int = 1, zeros: str = "raise") -> np.ndarray:
    """``(D, D)`` covariance of the clr-transformed rows, divided by ``n - ddof``.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.coda import clr_covariance
    >>> x = np.array([[1.0, 2.0, 4.0], [2.0, 4.0, 1.0], [3.0, 6.0, 2.0], [4.0, 8.0, 8.0]])  # part 1 = 2 x part 0
    >>> np.round(clr_covariance(x), 4)  # rows sum to zero: singular
    array([[ 0.1039,  0.1039, -0.2079],
           [ 0.1039,  0.1039, -0.2079],
           [-0.2079, -0.2079,  0.4158]])
    """
    return named_clr_covariance("clr_covariance", x, ddof, zeros)


def named_clr_covariance(name: str, x, ddof, zeros: str) -> np.ndarray:
    """``clr_covariance`` whose errors name the public function ``name``."""
    z, ddof = centered_clr(name, x, zeros, ddof)
    return (z.T @ z) / (z.shape[0] - ddof)


def precision_from_centered(z: np.ndarray, ddof: int) -> tuple[np.ndarray, int]:
    """``Omega = pinv(z.T z / (n - ddof))`` and its rank, from the thin SVD of
    the centred clr data ``z = U S V^T``: ``Omega = (n - ddof) V S^-2 V^T``
    over the kept singular values. This never forms ``Gamma`` (squaring the
    condition number) and costs ``O(n D min(n, D))``. A singular value is kept
    when above NumPy's ``matrix_rank`` tolerance, ``s_max * max(n, D) * eps``;
    the rank is at most ``min(n - 1, D - 1)`` (centring, and clr rows summing
    to zero), which also drops the known null directions exactly."""
    n, d = z.shape
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    tol = s[0] * max(n, d) * np.finfo(np.float64).eps if s.size else 0.0
    rank = min(int((s > tol).sum()), n - 1, d - 1)
    v = vt[:rank]
    omega = (v.T * ((n - ddof) / s[:rank] ** 2)) @ v
    return omega, rank


def pinv_clr_covariance(gamma: np.ndarray, full_rank: bool) -> np.ndarray:
    """Pseudo-inverse of a clr covariance (symmetric, ``Gamma @ 1 = 0``).

    When ``Gamma`` is known to have rank ``D - 1`` (null space exactly the
    ones vector), ``Gamma^+ = (Gamma + J)^-1 - J`` with ``J = 1 1^T / D`` the
    projector on that null space: one LU inverse instead of an SVD.
    Otherwise NumPy's SVD-based ``pinv``.
    """
    if not full_rank:
        return np.linalg.pinv(gamma)
    d = gamma.shape[0]
    omega = np.linalg.inv(gamma + 1.0 / d)
    omega -= 1.0 / d
    return omega
