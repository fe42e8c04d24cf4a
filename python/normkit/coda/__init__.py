"""Compositional data analysis: log-ratio transforms, proportionality and
partial correlations.

Layout: the transforms, ``closure`` and ``multi_replace`` take N-d arrays
with the parts along ``axis`` (an int, default -1, the last axis, as in
scikit-bio); every other axis indexes compositions. The statistics take
samples x parts: rows are samples and columns are parts (2-d); a 1-d array
is one composition. Parts must be strictly positive; zeros raise
``ValueError`` unless ``zeros='replace'`` (multiplicative replacement,
``multi_replace``). Statistics use sample (co)variances with ``ddof=1``
unless told otherwise.

Modules: ``transforms`` (closure, clr, alr, ilr and inverses), ``zeros``
(multiplicative replacement), ``covariance`` (clr covariance and its
pseudo-inverse), ``proportionality`` (variation matrix, rho, phi),
``partial`` (Erb 2020 partial correlations), ``shrinkage`` (corpcor-style
shrinkage and propr's basis shrinkage), ``example`` (Roman glass cups).
"""

from .covariance import clr_covariance
from .example import example_cups, load_cups
from .partial import PartialCorrelations, logratio_residuals, partial_correlation, partial_correlations
from .proportionality import proportionality_phi, proportionality_rho, variation_matrix
from .shrinkage import ShrunkCovariance, ShrunkPartialCorrelations, shrink_covariance, shrunk_partial_correlations
from .transforms import alr, alr_inv, closure, clr, clr_inv, ilr, ilr_basis, ilr_inv
from .zeros import multi_replace

__all__ = [
    "PartialCorrelations",
    "ShrunkCovariance",
    "ShrunkPartialCorrelations",
    "alr",
    "alr_inv",
    "closure",
    "clr",
    "clr_covariance",
    "clr_inv",
    "example_cups",
    "ilr",
    "ilr_basis",
    "ilr_inv",
    "load_cups",
    "logratio_residuals",
    "multi_replace",
    "partial_correlation",
    "partial_correlations",
    "proportionality_phi",
    "proportionality_rho",
    "shrink_covariance",
    "shrunk_partial_correlations",
    "variation_matrix",
]
