"""Variation matrix and proportionality coefficients.

All three are computed from the clr covariance ``Gamma``:
``var(log(x_i / x_j)) = Gamma_ii + Gamma_jj - 2 Gamma_ij``. This costs one
matrix product instead of ``D^2`` variances; the price is an absolute
rounding error of about ``eps * var(clr)``, so a nearly proportional pair
(``tau_ij`` below ~1e-12 of the clr variances) is resolved less finely than
by computing ``var(log(x_i / x_j))`` directly.
"""

from __future__ import annotations

import numpy as np

from .._dask_hook import is_dask, on_dask
from .covariance import named_clr_covariance


def _variation_from(gamma: np.ndarray) -> np.ndarray:
    v = np.diag(gamma)
    tau = v[:, None] + v[None, :] - 2.0 * gamma
    np.fill_diagonal(tau, 0.0)
    return np.maximum(tau, 0.0)  # rounding can leave tiny negatives


def variation_matrix(x, *, ddof: int = 1, zeros: str = "raise") -> np.ndarray:
    """Aitchison's variation matrix ``tau_ij = var(log(x_i / x_j))``, ``(D, D)``,
    with sample variances divided by ``n - ddof`` (default 1)."""
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("variation_matrix", locals())
    return _variation_from(named_clr_covariance("variation_matrix", x, ddof, zeros))


def proportionality_rho(x, *, zeros: str = "raise") -> np.ndarray:
    """Proportionality coefficient ``rho_ij = 1 - var(log(x_i/x_j)) / (var clr_i +
    var clr_j)`` (Erb & Notredame 2016, "How should we measure proportionality
    on relative gene expression data?", Theory Biosci. 135; propr's rho), in
    [-1, 1], 1 on the diagonal. It does not depend on ddof (a ratio of
    variances). NaN where both clr variances are zero."""
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("proportionality_rho", locals())
    gamma = named_clr_covariance("proportionality_rho", x, 1, zeros)
    v = np.diag(gamma)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - _variation_from(gamma) / (v[:, None] + v[None, :])


def proportionality_phi(x, *, zeros: str = "raise") -> np.ndarray:
    """Lovell et al. (2015, "Proportionality: a valid alternative to
    correlation for relative data", PLoS Comput. Biol. 11) ``phi_ij =
    var(log(x_i / x_j)) / var(clr_i)``: 0 for perfectly proportional parts.
    Not symmetric: row ``i`` is scaled by part ``i``'s clr variance. Does not
    depend on ddof. Inf/NaN where ``var(clr_i)`` is zero."""
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("proportionality_phi", locals())
    gamma = named_clr_covariance("proportionality_phi", x, 1, zeros)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _variation_from(gamma) / np.diag(gamma)[:, None]
