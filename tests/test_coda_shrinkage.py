"""Shrinkage covariance (corpcor's cov.shrink) and basis-shrinkage partial
correlations (propr's pcor.bshrink) against a direct, slow implementation of
the published formulas (Schafer & Strimmer 2005; Opgen-Rhein & Strimmer 2007)."""

import numpy as np
import pytest
import scipy.linalg

from normkit import coda


def slow_cov_shrink(y, lambda_cor=None, lambda_var=None):
    """corpcor's cov.shrink written out element by element."""
    n, p = y.shape
    mean = [sum(y[i, k] for i in range(n)) / n for k in range(p)]
    xc = np.array([[y[i, k] - mean[k] for k in range(p)] for i in range(n)])
    v = [sum(xc[i, k] ** 2 for i in range(n)) / (n - 1) for k in range(p)]
    v = [0.0 if vk < np.finfo(float).eps else vk for vk in v]
    xs = np.array([[xc[i, k] / np.sqrt(v[k]) if v[k] > 0 else 0.0 for k in range(p)] for i in range(n)])

    def var_hat(w):  # unbiased variance of the mean-of-products estimator
        wbar = sum(w) / n
        return n / (n - 1) ** 3 * sum((wi - wbar) ** 2 for wi in w)

    r = np.eye(p)
    num = den = 0.0
    for k in range(p):
        for m in range(p):
            if k == m:
                continue
            w = [xs[i, k] * xs[i, m] for i in range(n)]
            r[k, m] = sum(w) / (n - 1)
            num += var_hat(w)
            den += r[k, m] ** 2
    if lambda_cor is None:
        lambda_cor = 1.0 if den == 0 else min(1.0, num / den)
    target = float(np.median(v))
    if lambda_var is None:
        num = sum(var_hat([xc[i, k] ** 2 for i in range(n)]) for k in range(p))
        den = sum((v[k] - target) ** 2 for k in range(p))
        lambda_var = 1.0 if den == 0 else min(1.0, num / den)
    vs = [lambda_var * target + (1 - lambda_var) * vk for vk in v]
    cov = np.array(
        [[(r[k, m] if k == m else (1 - lambda_cor) * r[k, m]) * np.sqrt(vs[k] * vs[m]) for m in range(p)] for k in range(p)]
    )
    return cov, lambda_cor, lambda_var


def slow_bshrink(x, lambda_cor=None, lambda_var=None):
    """propr's pcor.bshrink: shrink cov of log-proportions, G S G, pinv, standardize."""
    d = x.shape[1]
    cov, lc, lv = slow_cov_shrink(np.log(x / x.sum(axis=1, keepdims=True)), lambda_cor, lambda_var)
    g = np.eye(d) - np.ones((d, d)) / d
    omega = scipy.linalg.pinv(g @ cov @ g)
    pcor = -omega / np.sqrt(np.outer(np.diag(omega), np.diag(omega)))
    np.fill_diagonal(pcor, 1.0)
    return pcor, omega, lc, lv


def compositions(n, d, seed):
    rng = np.random.default_rng(seed)
    logs = rng.normal(size=(n, d)) @ (rng.normal(size=(d, d)) / np.sqrt(d)) + rng.normal(size=d)
    return np.exp(logs)


@pytest.mark.parametrize("n, p, seed", [(8, 12, 0), (30, 5, 1), (5, 40, 2), (3, 4, 3)])
def test_shrink_covariance_matches_slow_formulas(n, p, seed):
    y = np.random.default_rng(seed).normal(size=(n, p)) * np.linspace(0.5, 3, p)
    cov, lc, lv = slow_cov_shrink(y)
    result = coda.shrink_covariance(y)
    assert result.lambda_cor == pytest.approx(lc, rel=1e-10)
    assert result.lambda_var == pytest.approx(lv, rel=1e-10)
    assert 0 < result.lambda_cor <= 1 and 0 <= result.lambda_var <= 1
    np.testing.assert_allclose(result.covariance, cov, rtol=1e-10, atol=1e-14)


def test_shrink_covariance_fixed_intensities_and_constant_column():
    y = np.random.default_rng(4).normal(size=(10, 6))
    y[:, 3] = 2.5  # zero variance: standardized to 0, as corpcor
    for lc, lv in [(0.0, 0.0), (0.3, 0.7), (1.0, 1.0), (None, 0.2)]:
        cov, elc, elv = slow_cov_shrink(y, lc, lv)
        result = coda.shrink_covariance(y, lambda_cor=lc, lambda_var=lv)
        np.testing.assert_allclose(result.covariance, cov, rtol=1e-10, atol=1e-14)
        assert (result.lambda_cor, result.lambda_var) == pytest.approx((elc, elv), rel=1e-10)
    np.testing.assert_allclose(coda.shrink_covariance(y, lambda_cor=0, lambda_var=0).covariance, np.cov(y, rowvar=False), atol=1e-14)


@pytest.mark.parametrize("n, d, seed", [(8, 12, 5), (40, 6, 6), (4, 30, 7)])
def test_shrunk_partial_correlations_match_slow_bshrink(n, d, seed):
    x = compositions(n, d, seed)
    pcor, omega, lc, lv = slow_bshrink(x)
    result = coda.shrunk_partial_correlations(x)
    assert (result.lambda_cor, result.lambda_var) == pytest.approx((lc, lv), rel=1e-10)
    np.testing.assert_allclose(result.precision, omega, rtol=1e-8, atol=1e-8 * np.abs(omega).max())
    np.testing.assert_allclose(result.correlations, pcor, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(result.partial_variances, 1 / np.diag(omega), rtol=1e-8)
    np.testing.assert_allclose(result.clr_covariance.sum(axis=1), 0.0, atol=1e-12 * np.abs(result.clr_covariance).max())


def test_no_shrinkage_gives_the_plain_partial_correlations():
    x = compositions(50, 7, 8)  # n > D: the clr covariance has full rank D - 1
    shrunk = coda.shrunk_partial_correlations(x, lambda_cor=0, lambda_var=0)
    plain = coda.partial_correlations(x)
    np.testing.assert_allclose(shrunk.clr_covariance, coda.clr_covariance(x), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(shrunk.correlations, plain.correlations, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(shrunk.partial_variances, plain.partial_variances, rtol=1e-8)


def test_shrinkage_bad_input():
    x = compositions(6, 9, 9)
    with pytest.raises(ValueError, match=r"lambda_cor must be in \[0, 1\]"):
        coda.shrunk_partial_correlations(x, lambda_cor=1.5)
    with pytest.raises(ValueError, match=r"lambda_var must be in \[0, 1\]"):
        coda.shrink_covariance(np.log(x), lambda_var=-0.1)
    with pytest.raises(ValueError, match="1 sample"):
        coda.shrunk_partial_correlations(x[:1])
    with pytest.raises(ValueError, match="1 sample"):
        coda.shrink_covariance(np.log(x[:1]))
    bad = x.copy()
    bad[2, 2] = -1
    with pytest.raises(ValueError, match="negative"):
        coda.shrunk_partial_correlations(bad)
    with pytest.raises(ValueError, match="NaN"):
        coda.shrink_covariance(np.array([[1.0, np.nan], [2.0, 3.0]]))


def test_two_samples_are_too_few_to_estimate_the_intensities():
    """corpcor stops with "Sample size too small!" below 3 samples: with 2,
    both estimated intensities would be 0 (an unshrunk rank-1 result)."""
    x = compositions(2, 9, 10)
    for call in (
        lambda **kw: coda.shrunk_partial_correlations(x, **kw),
        lambda **kw: coda.shrink_covariance(np.log(x), **kw),
    ):
        for kw in ({}, {"lambda_cor": 0.5}, {"lambda_var": 0.5}):
            with pytest.raises(ValueError, match=r"2 sample\(s\).*at least 3.*Sample size too small"):
                call(**kw)
        # Fixed intensities need no estimate: 2 samples are enough.
        result = call(lambda_cor=0.5, lambda_var=0.5)
        assert (result.lambda_cor, result.lambda_var) == (0.5, 0.5)
    three = coda.shrunk_partial_correlations(compositions(3, 9, 10))
    assert np.isfinite(three.correlations).all()
