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

from .covariance import named_clr_covariance


def _variation_from(gamma: np.ndarray) -> np.ndarray:
    v = np.diag(gamma)
    tau = v[:, None] + v[None, :] - 2.0 * gamma
    np.fill_diagonal(tau, 0.0)
    return np.maximum(tau, 0.0)  # rounding can leave tiny negatives


def variation_matrix(x, *, ddof: int = 1, zeros: str = "raise") -> np.ndarray:
    """Aitchison's variation matrix ``tau_ij = var(log(x_i / x_j))``, ``(D, D)``,
    with sample variances divided by ``n - ddof`` (default 1).

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.coda import variation_matrix
    >>> x = np.array([[1.0, 2.0, 4.0], [2.0, 4.0, 1.0], [3.0, 6.0, 2.0], [4.0, 8.0, 8.0]])  # part 1 = 2 x part 0
    >>> np.round(variation_matrix(x), 4)
    array([[0.    , 0.    , 0.9355],
           [0.    , 0.    , 0.9355],
           [0.9355, 0.9355, 0.    ]])
    """
    return _variation_from(named_clr_covariance("variation_matrix", x, ddof, zeros))


def proportionality_rho(x, *, zeros: str = "raise") -> np.ndarray:
    """Proportionality coefficient ``rho_ij = 1 - var(log(x_i/x_j)) / (var clr_i +
    var clr_j)`` (Erb & Notredame 2016, "How should we measure proportionality
    on relative gene expression data?", Theory Biosci. 135; propr's rho), in
    [-1, 1], 1 on the diagonal. It does not depend on ddof (a ratio of
    variances). NaN where both clr variances are zero.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.coda import proportionality_rho
    >>> x = np.array([[1.0, 2.0, 4.0], [2.0, 4.0, 1.0], [3.0, 6.0, 2.0], [4.0, 8.0, 8.0]])  # part 1 = 2 x part 0
    >>> np.round(proportionality_rho(x), 4)
    array([[ 1. ,  1. , -0.8],
           [ 1. ,  1. , -0.8],
           [-0.8, -0.8,  1. ]])
    """
    gamma = named_clr_covariance("proportionality_rho", x, 1, zeros)
    v = np.diag(gamma)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - _variation_from(gamma) / (v[:, None] + v[None, :])


def proportionality_phi(x, *, zeros: str = "raise") -> np.ndarray:
    """Lovell et al. (2015, "Proportionality: a valid alternative to
    correlation for relative data", PLoS Comput. Biol. 11) ``phi_ij =
    var(log(x_i / x_j)) / var(clr_i)``: 0 for perfectly proportional parts.
    Not symmetric: row ``i`` is scaled by part ``i``'s clr variance. Does not
    depend on ddof. Inf/NaN where ``var(clr_i)`` is zero.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.coda import proportionality_phi
    >>> x = np.array([[1.0, 2.0, 4.0], [2.0, 4.0, 1.0], [3.0, 6.0, 2.0], [4.0, 8.0, 8.0]])  # part 1 = 2 x part 0
    >>> np.round(proportionality_phi(x), 4)
    array([[0.  , 0.  , 9.  ],
           [0.  , 0.  , 9.  ],
           [2.25, 2.25, 0.  ]])
    """
    gamma = named_clr_covariance("proportionality_phi", x, 1, zeros)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _variation_from(gamma) / np.diag(gamma)[:, None]
