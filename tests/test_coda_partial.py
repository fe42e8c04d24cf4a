"""Erb (2020) partial correlations, proportionality and the clr covariance:
exact identities, independent references (direct formulas, SciPy's pinv,
scikit-bio's pairwise_vlr) and bad input."""

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import skbio.stats.composition as skbio  # scikit-bio is in the test extra

from normkit import coda


def correlated_compositions(n, d, seed):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    logs = rng.normal(size=(n, d)) @ mix + rng.normal(size=d)
    scale = rng.lognormal(size=(n, 1))  # arbitrary row totals: must not matter
    return np.exp(logs) * scale


X = correlated_compositions(40, 7, 1)
N, D = X.shape


def direct_logratio_variances(x, ddof=1):
    logs = np.log(x)
    d = x.shape[1]
    return np.array([[np.var(logs[:, i] - logs[:, j], ddof=ddof) for j in range(d)] for i in range(d)])


@pytest.mark.parametrize("ddof", [0, 1, 5])
def test_clr_covariance_is_numpy_cov_of_clr(ddof):
    expected = np.cov(coda.clr(X), rowvar=False, ddof=ddof)
    np.testing.assert_allclose(coda.clr_covariance(X, ddof=ddof), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("ddof", [0, 1])
def test_variation_matrix(ddof):
    tau = coda.variation_matrix(X, ddof=ddof)
    np.testing.assert_allclose(tau, direct_logratio_variances(X, ddof), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(tau, skbio.pairwise_vlr(X, ddof=ddof).data, rtol=1e-11, atol=1e-14)


def test_rho_and_phi_direct_formulas():
    tau = direct_logratio_variances(X)
    clr_var = coda.clr(X).var(axis=0, ddof=1)
    rho = 1 - tau / (clr_var[:, None] + clr_var[None, :])
    np.testing.assert_allclose(coda.proportionality_rho(X), rho, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(coda.proportionality_phi(X), tau / clr_var[:, None], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(np.diag(coda.proportionality_rho(X)), 1.0)


def test_proportional_parts_have_rho_one_and_phi_zero():
    x = np.column_stack([X, 3.0 * X[:, 2]])  # part 7 proportional to part 2
    assert coda.proportionality_rho(x)[2, 7] == pytest.approx(1.0, abs=1e-12)
    assert coda.proportionality_phi(x)[7, 2] == pytest.approx(0.0, abs=1e-12)


def test_precision_is_scipy_pinv_of_clr_covariance():
    result = coda.partial_correlations(X)
    omega = scipy.linalg.pinv(np.cov(coda.clr(X), rowvar=False))
    np.testing.assert_allclose(result.precision, omega, rtol=1e-9, atol=1e-9 * np.abs(omega).max())
    assert result.rank == D - 1 and result.ddof == 1
    np.testing.assert_allclose(result.partial_variances, 1 / np.diag(omega), rtol=1e-9)
    pcor = -omega / np.sqrt(np.outer(np.diag(omega), np.diag(omega)))
    np.fill_diagonal(pcor, 1.0)
    np.testing.assert_allclose(result.correlations, pcor, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("r", range(D))
def test_inverse_alr_covariance_is_clr_pinv_without_reference(r):
    omega = coda.partial_correlations(X).precision
    inv_alr = np.linalg.inv(np.cov(coda.alr(X, r), rowvar=False))
    block = np.delete(np.delete(omega, r, axis=0), r, axis=1)
    np.testing.assert_allclose(inv_alr, block, rtol=1e-9, atol=1e-9 * np.abs(block).max())


@pytest.mark.parametrize("i", range(D))
def test_residuals_do_not_depend_on_the_reference(i):
    others = [k for k in range(D) if k != i]
    residuals = [coda.logratio_residuals(X, i, reference=r) for r in others]
    for res in residuals[1:]:
        np.testing.assert_allclose(res, residuals[0], atol=1e-10)
    # and on a subcomposition
    subset = others[:3]
    sub = [coda.logratio_residuals(X, i, others=subset, reference=r) for r in subset]
    for res in sub[1:]:
        np.testing.assert_allclose(res, sub[0], atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(3, 8), st.data())
def test_residual_invariance_property(seed, d, data):
    x = correlated_compositions(12, d, seed)
    i = data.draw(st.integers(0, d - 1))
    others = data.draw(st.lists(st.sampled_from([k for k in range(d) if k != i]), min_size=1, unique=True))
    base = coda.logratio_residuals(x, i, others=others)
    for r in others:
        np.testing.assert_allclose(coda.logratio_residuals(x, i, others=others, reference=r), base, atol=1e-9)


@pytest.mark.parametrize("ddof", [0, 1])
def test_partial_variance_is_residual_variance(ddof):
    pvar = coda.partial_correlations(X, ddof=ddof).partial_variances
    for i in range(D):
        res = coda.logratio_residuals(X, i)
        assert res.mean() == pytest.approx(0.0, abs=1e-12)
        np.testing.assert_allclose(np.sum(res**2) / (N - ddof), pvar[i], rtol=1e-10)


def test_partial_correlation_is_correlation_of_residuals():
    full = coda.partial_correlations(X).correlations
    for i, j in [(0, 1), (2, 5), (6, 3)]:
        rest = [k for k in range(D) if k not in (i, j)]
        ri = coda.logratio_residuals(X, i, others=rest)
        rj = coda.logratio_residuals(X, j, others=rest)
        np.testing.assert_allclose(np.corrcoef(ri, rj)[0, 1], full[i, j], rtol=1e-10)


@pytest.mark.parametrize("i, j, given", [(0, 1, [2]), (3, 6, [0, 5]), (4, 2, [6, 1, 0]), (1, 5, [0, 2, 3, 4, 6])])
def test_subset_partial_correlation(i, j, given):
    value = coda.partial_correlation(X, i, j, given)
    sub = coda.partial_correlations(X[:, [i, j, *given]]).correlations[0, 1]
    assert value == pytest.approx(sub, rel=1e-12)
    ri = coda.logratio_residuals(X, i, others=given)
    rj = coda.logratio_residuals(X, j, others=given)
    assert value == pytest.approx(np.corrcoef(ri, rj)[0, 1], rel=1e-9)
    if len(given) == D - 2:  # everything else controlled for: the full matrix
        assert value == pytest.approx(coda.partial_correlations(X).correlations[i, j], rel=1e-10)


def test_partial_correlations_are_compositional_and_permutation_equivariant():
    base = coda.partial_correlations(X)
    rescaled = coda.partial_correlations(X * np.arange(1, N + 1)[:, None])
    np.testing.assert_allclose(rescaled.correlations, base.correlations, atol=1e-10)
    perm = np.random.default_rng(0).permutation(D)
    permuted = coda.partial_correlations(X[:, perm])
    np.testing.assert_allclose(permuted.correlations, base.correlations[np.ix_(perm, perm)], atol=1e-10)


def test_more_parts_than_samples_uses_the_pseudo_inverse():
    x = correlated_compositions(6, 10, 3)
    result = coda.partial_correlations(x)
    assert result.rank == 5
    omega = scipy.linalg.pinv(np.cov(coda.clr(x), rowvar=False), rtol=1e-10)
    np.testing.assert_allclose(result.precision, omega, rtol=1e-7, atol=1e-7 * np.abs(omega).max())


def test_bad_input():
    with pytest.raises(ValueError, match="1 sample"):
        coda.partial_correlations(X[:1])
    with pytest.raises(ValueError, match="1 sample"):
        coda.variation_matrix(X[0])
    with pytest.raises(ValueError, match="1 part"):
        coda.partial_correlations(X[:, :1])
    with pytest.raises(ValueError, match="ddof=40"):
        coda.clr_covariance(X, ddof=40)
    bad = X.copy()
    bad[5, 5] = 0
    with pytest.raises(ValueError, match="contains zeros"):
        coda.partial_correlations(bad)
    with pytest.raises(ValueError, match="contains zeros"):
        coda.proportionality_rho(bad)
    bad[5, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        coda.proportionality_phi(bad)
    with pytest.raises(ValueError, match="different parts"):
        coda.partial_correlation(X, 1, 1, [2])
    with pytest.raises(ValueError, match="at least one part"):
        coda.partial_correlation(X, 0, 1, [])
    with pytest.raises(ValueError, match="must not contain i or j"):
        coda.partial_correlation(X, 0, 1, [1, 2])
    with pytest.raises(ValueError, match="repeats a part"):
        coda.partial_correlation(X, 0, 1, [2, 2])
    with pytest.raises(ValueError, match="reference 0 must be one of others"):
        coda.logratio_residuals(X, 1, others=[2, 3], reference=0)
    with pytest.raises(ValueError, match="must not contain part 1"):
        coda.logratio_residuals(X, 1, others=[1, 3])
    with pytest.raises(ValueError, match="part=9 is out of range"):
        coda.logratio_residuals(X, 9)
