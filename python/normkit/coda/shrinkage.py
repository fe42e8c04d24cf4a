"""Shrinkage covariance and basis-shrinkage partial correlations.

For more parts than samples the clr covariance is rank deficient.
``shrink_covariance`` is the James-Stein-type estimator of corpcor's
``cov.shrink`` (Schafer & Strimmer 2005, "A shrinkage approach to
large-scale covariance matrix estimation", Stat. Appl. Genet. Mol. Biol.
4:32; Opgen-Rhein & Strimmer 2007, same journal, 6:9):

* correlations are shrunk towards the identity,
  ``R* = (1 - lambda) R + lambda I``, with the analytic intensity
  ``lambda = sum_{k != l} Var^(r_kl) / sum_{k != l} r_kl^2``;
* variances are shrunk towards their median ``t``,
  ``v* = lambda_var t + (1 - lambda_var) v``, with
  ``lambda_var = sum_k Var^(v_k) / sum_k (v_k - t)^2``;
* ``Cov* = diag(sqrt(v*)) R* diag(sqrt(v*))``.

``Var^`` is the unbiased estimate of the variance of an empirical
(co)variance from the products ``w_kli = xs_ki xs_li`` of standardized data:
``Var^(r_kl) = n / (n-1)^3 sum_i (w_kli - mean_i w_kl)^2``. Both intensities
are clipped to at most 1. Variances and correlations are unbiased
(``n - 1``); zero-variance columns (variance below machine epsilon) are
treated as constant, as in corpcor.

``shrunk_partial_correlations`` is propr's ``pcor.bshrink`` ("basis
shrinkage", Jin, Notredame & Erb 2023, "Compositional covariance shrinkage
and regularised partial correlations", SORT 47, arXiv:2212.00496): shrink the
covariance of the log-proportions ``log(closure(x))``, project it onto the clr
plane with the centring matrix ``G = I - 1 1^T / D`` and convert the
pseudo-inverse of ``G Cov* G`` into partial correlations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._dask_hook import is_dask, on_dask
from . import _checks
from .covariance import pinv_clr_covariance
from .partial import correlations_from_precision

_EPS = np.finfo(np.float64).eps


@dataclass(frozen=True)
class ShrunkCovariance:
    """covariance: ``(p, p)`` shrinkage covariance; lambda_cor, lambda_var:
    the correlation and variance shrinkage intensities used."""

    covariance: np.ndarray
    lambda_cor: float
    lambda_var: float


@dataclass(frozen=True)
class ShrunkPartialCorrelations:
    """Result of ``shrunk_partial_correlations``.

    correlations: ``(D, D)`` partial correlations, 1 on the diagonal.
    partial_variances: ``(D,)`` ``1 / Omega_ii``.
    precision: ``Omega``, pseudo-inverse of ``clr_covariance``.
    clr_covariance: ``G Cov* G``, the shrunk covariance in clr coordinates.
    lambda_cor, lambda_var: the shrinkage intensities.
    """

    correlations: np.ndarray
    partial_variances: np.ndarray
    precision: np.ndarray
    clr_covariance: np.ndarray
    lambda_cor: float
    lambda_var: float


def _intensity(numerator: float, denominator: float, n: int) -> float:
    """``numerator / denominator / (n - 1)`` clipped to [0, 1]; 1 when the
    target already equals the estimate (zero denominator), as corpcor."""
    if denominator == 0.0:
        return 1.0
    return float(min(1.0, max(0.0, numerator / denominator / (n - 1))))


def _off_diagonal_sum(m: np.ndarray) -> float:
    return float(m.sum() - np.trace(m))


def _correlation_lambda(xs: np.ndarray, gram: np.ndarray) -> float:
    """Schafer-Strimmer intensity for standardized columns ``xs`` (``gram =
    xs.T @ xs``). With the products ``w_kli = xs_ki xs_li``,
    ``Var^(r_kl) / r_kl^2 = (mean_i w_kli^2 - (mean_i w_kli)^2) / ((n-1)
    (mean_i w_kli)^2)``, summed over k != l; both sums come from matrix
    products."""
    n = xs.shape[0]
    sq = xs * xs
    sum_mean_w2 = _off_diagonal_sum(sq.T @ sq) / n
    sum_mean_w_squared = _off_diagonal_sum(gram * gram) / n**2
    return _intensity(sum_mean_w2 - sum_mean_w_squared, sum_mean_w_squared, n)


def _variance_lambda(xc: np.ndarray, target: float) -> float:
    """Opgen-Rhein-Strimmer intensity for centred columns ``xc`` towards the
    variance ``target``; the same moments with ``w_ki = xc_ki^2``."""
    n = xc.shape[0]
    sq = xc * xc
    q1 = sq.mean(axis=0)
    q2 = (sq * sq).mean(axis=0) - q1 * q1
    return _intensity(q2.sum(), ((q1 - target * (n - 1) / n) ** 2).sum(), n)


#: Fewest samples from which the intensities are estimated (corpcor stops
#: with "Sample size too small!" below 3: with 2 samples every standardized
#: product ``w_kli`` is the same for both samples, so both intensities come
#: out 0 and the "shrunk" estimate is the rank-1 sample covariance).
MIN_SAMPLES_TO_ESTIMATE = 3


def _check_estimable(name: str, arg: str, n: int, lambda_cor, lambda_var) -> None:
    if n < MIN_SAMPLES_TO_ESTIMATE and (lambda_cor is None or lambda_var is None):
        raise ValueError(
            f"{name}: {arg} has {n} sample(s) (rows); estimating the shrinkage intensities needs at "
            f"least {MIN_SAMPLES_TO_ESTIMATE} (corpcor: 'Sample size too small!'), or pass both "
            "lambda_cor and lambda_var to fix them"
        )


def _shrink(y: np.ndarray, lambda_cor, lambda_var) -> ShrunkCovariance:
    n = y.shape[0]
    xc = y - y.mean(axis=0)
    v = (xc * xc).sum(axis=0) / (n - 1)
    v[v < _EPS] = 0.0
    sd = np.sqrt(v)
    xs = np.divide(xc, sd, out=np.zeros_like(xc), where=sd > 0)
    gram = xs.T @ xs
    if lambda_cor is None:
        lambda_cor = _correlation_lambda(xs, gram)
    target = float(np.median(v))
    if lambda_var is None:
        lambda_var = _variance_lambda(xc, target)
    return shrunk_from(gram, v, target, n, lambda_cor, lambda_var)


def shrunk_from(gram: np.ndarray, v: np.ndarray, target: float, n: int, lambda_cor, lambda_var) -> ShrunkCovariance:
    """The shrunk covariance from the Gram matrix of the standardized
    columns, their variances ``v``, the variance target and the two
    intensities (corpcor's ``cov.shrink`` once the intensities are known;
    also the finish of ``normkit.dask``'s out-of-core form)."""
    cov = gram * ((1.0 - lambda_cor) / (n - 1))
    np.fill_diagonal(cov, 1.0)
    sd_shrunk = np.sqrt(lambda_var * target + (1.0 - lambda_var) * v)
    cov *= sd_shrunk[:, None]
    cov *= sd_shrunk[None, :]
    return ShrunkCovariance(cov, float(lambda_cor), float(lambda_var))


def shrink_covariance(y, *, lambda_cor=None, lambda_var=None) -> ShrunkCovariance:
    """corpcor's ``cov.shrink`` for an ``(n, p)`` data matrix (rows =
    samples). ``lambda_cor`` / ``lambda_var``: ``None`` estimates the
    intensity, which needs ``n >= 3`` (as corpcor; ``ValueError``
    otherwise); a number in [0, 1] fixes it (0, 0 gives the unbiased sample
    covariance), and with both fixed ``n >= 2`` suffices.

    Examples
    --------
    >>> import numpy as np
    >>> from normkit.coda import shrink_covariance
    >>> y = np.random.default_rng(0).standard_normal((10, 4))
    >>> s = shrink_covariance(y)
    >>> round(s.lambda_cor, 4), round(s.lambda_var, 4), s.covariance.shape
    (0.6795, 1.0, (4, 4))
    >>> unshrunk = shrink_covariance(y, lambda_cor=0, lambda_var=0)
    >>> bool(np.allclose(unshrunk.covariance, np.cov(y, rowvar=False)))
    True
    """
    name = "shrink_covariance"
    a, _ = _checks.as_float_matrix(name, "y", y)
    _checks.check_shape(name, "y", a, 1, 2)
    _checks.check_finite(name, "y", a)
    lc = _checks.unit_interval(name, "lambda_cor", lambda_cor)
    lv = _checks.unit_interval(name, "lambda_var", lambda_var)
    _check_estimable(name, "y", a.shape[0], lc, lv)
    return _shrink(a, lc, lv)


def _center_both(cov: np.ndarray) -> np.ndarray:
    """``G C G`` for the centring matrix ``G = I - 1 1^T / D``, in O(D^2)."""
    rows = cov.mean(axis=1, keepdims=True)
    cols = cov.mean(axis=0, keepdims=True)
    return cov - rows - cols + cov.mean()


def shrunk_partial_correlations(x, *, lambda_cor=None, lambda_var=None, zeros: str = "raise") -> ShrunkPartialCorrelations:
    """Basis-shrinkage partial correlations (propr's ``pcor.bshrink``).

    ``x``: ``(n, D)`` positive compositions (meant for ``D > n``), ``n >= 3``
    when an intensity is estimated (``lambda_cor`` or ``lambda_var`` None;
    corpcor stops with "Sample size too small!" there, and with 2 samples
    both estimates are 0, an unshrunk rank-1 result), ``n >= 2`` when both
    are fixed; fewer raise ``ValueError``. The shrunk covariance of ``log(closure(x))`` is positive
    definite when ``lambda_cor > 0`` and all shrunk variances are positive;
    its clr projection then has rank ``D - 1`` and is pseudo-inverted with one
    LU inverse, otherwise with an SVD.

    Examples
    --------
    Eight cups, eleven parts:

    >>> from normkit.coda import load_cups, shrunk_partial_correlations
    >>> x, _ = load_cups()
    >>> pc = shrunk_partial_correlations(x[:8])
    >>> round(pc.lambda_cor, 4), round(pc.lambda_var, 4), pc.correlations.shape
    (0.3741, 0.8455, (11, 11))
    """
    if type(x) is not np.ndarray and is_dask(x):
        return on_dask("shrunk_partial_correlations", locals())
    name = "shrunk_partial_correlations"
    a, _ = _checks.positive(name, x, zeros, min_samples=2)
    lc = _checks.unit_interval(name, "lambda_cor", lambda_cor)
    lv = _checks.unit_interval(name, "lambda_var", lambda_var)
    _check_estimable(name, "x", a.shape[0], lc, lv)
    log_props = np.log(a / a.sum(axis=1, keepdims=True))
    shrunk = _shrink(log_props, lc, lv)
    gamma = _center_both(shrunk.covariance)
    full_rank = shrunk.lambda_cor > 0 and bool((np.diag(shrunk.covariance) > 0).all())
    omega = pinv_clr_covariance(gamma, full_rank)
    pcor, pvar = correlations_from_precision(omega)
    return ShrunkPartialCorrelations(pcor, pvar, omega, gamma, shrunk.lambda_cor, shrunk.lambda_var)
