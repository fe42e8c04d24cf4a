"""normkit.coda transforms against scikit-bio, exact round trips, and bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import skbio.stats.composition as skbio  # scikit-bio is in the test extra

from normkit import coda


RNG = np.random.default_rng(7)
X = RNG.lognormal(size=(9, 6))  # positive compositions, rows = samples
X1 = X[0]


def test_closure_matches_skbio():
    np.testing.assert_allclose(coda.closure(X), skbio.closure(X), rtol=1e-14)
    np.testing.assert_allclose(coda.closure(X1), skbio.closure(X1), rtol=1e-14)
    with_zero = X.copy()
    with_zero[2, 3] = 0.0  # closure allows zeros
    np.testing.assert_allclose(coda.closure(with_zero), skbio.closure(with_zero), rtol=1e-14)


def test_clr_and_inverse_match_skbio():
    np.testing.assert_allclose(coda.clr(X), skbio.clr(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(coda.clr(X1), skbio.clr(X1), rtol=1e-12, atol=1e-14)
    z = skbio.clr(X)
    np.testing.assert_allclose(coda.clr_inv(z), skbio.clr_inv(z), rtol=1e-13)


@pytest.mark.parametrize("ref", [0, 2, 5])
def test_alr_and_inverse_match_skbio(ref):
    np.testing.assert_allclose(coda.alr(X, ref), skbio.alr(X, ref), rtol=1e-12, atol=1e-14)
    y = skbio.alr(X, ref)
    np.testing.assert_allclose(coda.alr_inv(y, ref), skbio.alr_inv(y, ref), rtol=1e-13)


def test_alr_default_reference_is_last_part():
    np.testing.assert_allclose(coda.alr(X), np.log(X[:, :-1] / X[:, -1:]), rtol=1e-13)
    np.testing.assert_allclose(coda.alr(X), coda.alr(X, -1))


def test_ilr_default_basis_matches_skbio():
    np.testing.assert_allclose(coda.ilr(X), skbio.ilr(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(coda.ilr(X1), skbio.ilr(X1), rtol=1e-12, atol=1e-14)
    y = skbio.ilr(X)
    np.testing.assert_allclose(coda.ilr_inv(y), skbio.ilr_inv(y), rtol=1e-13)


def test_ilr_user_basis_matches_skbio():
    # a sequential binary partition of 6 parts, turned into a basis by scikit-bio
    sbp = np.array(
        [
            [1, 1, 1, -1, -1, -1],
            [1, -1, 0, 0, 0, 0],
            [1, 1, -1, 0, 0, 0],
            [0, 0, 0, 1, -1, 0],
            [0, 0, 0, 1, 1, -1],
        ]
    )
    basis = skbio.sbp_basis(sbp)
    np.testing.assert_allclose(coda.ilr(X, basis), skbio.ilr(X, basis), rtol=1e-12, atol=1e-14)
    y = coda.ilr(X, basis)
    np.testing.assert_allclose(coda.ilr_inv(y, basis), skbio.ilr_inv(y, basis), rtol=1e-13)


def test_multi_replace_matches_skbio():
    z = coda.closure(X)
    z[0, 1] = z[3, 0] = z[3, 4] = 0.0
    np.testing.assert_allclose(coda.multi_replace(z), skbio.multi_replace(z), rtol=1e-14)
    np.testing.assert_allclose(coda.multi_replace(z, 1e-3), skbio.multi_replace(z, delta=1e-3), rtol=1e-14)


def test_multi_replace_keeps_ratios_and_closure():
    z = X.copy()
    z[1, 2] = 0.0
    r = coda.multi_replace(z)
    np.testing.assert_allclose(r.sum(axis=1), 1.0, rtol=1e-14)
    assert r[1, 2] == 1 / 36
    np.testing.assert_allclose(r[1, 0] / r[1, 5], z[1, 0] / z[1, 5], rtol=1e-14)
    np.testing.assert_allclose(r[0], coda.closure(z[0]), rtol=1e-14)  # no zeros: only closed


def test_zeros_replace_option_equals_explicit_replacement():
    z = X.copy()
    z[4, 4] = 0.0
    np.testing.assert_allclose(coda.clr(z, zeros="replace"), coda.clr(coda.multi_replace(z)), rtol=1e-14)
    np.testing.assert_allclose(coda.ilr(z, zeros="replace"), coda.ilr(coda.multi_replace(z)), rtol=1e-14)


@pytest.mark.parametrize("kind", ["helmert", "pivot"])
@pytest.mark.parametrize("d", [2, 3, 7, 40])
def test_ilr_basis_is_orthonormal_in_the_clr_plane(kind, d):
    b = coda.ilr_basis(d, kind)
    assert b.shape == (d - 1, d)
    np.testing.assert_allclose(b @ b.T, np.eye(d - 1), atol=1e-14)
    np.testing.assert_allclose(b.sum(axis=1), 0.0, atol=1e-14)


def test_default_basis_is_scipy_helmert():
    import scipy.linalg

    for d in (2, 5, 12):
        np.testing.assert_allclose(coda.ilr_basis(d), scipy.linalg.helmert(d), atol=1e-15)


def test_ilr_is_an_isometry():
    # Aitchison distance = Euclidean distance of clr = of ilr, for both bases
    dc = np.linalg.norm(coda.clr(X)[:, None] - coda.clr(X)[None], axis=-1)
    for kind in ("helmert", "pivot"):
        y = coda.ilr(X, kind)
        np.testing.assert_allclose(np.linalg.norm(y[:, None] - y[None], axis=-1), dc, atol=1e-12)


def test_pivot_first_coordinate_definition():
    d = X.shape[1]
    expected = np.sqrt((d - 1) / d) * np.log(X[:, 0] / np.exp(np.log(X[:, 1:]).mean(axis=1)))
    np.testing.assert_allclose(coda.ilr(X, "pivot")[:, 0], expected, rtol=1e-12)


positive_rows = arrays(
    np.float64,
    st.tuples(st.integers(1, 6), st.integers(2, 9)),
    elements=st.floats(1e-6, 1e6),
)


@settings(max_examples=60, deadline=None)
@given(positive_rows, st.integers(0, 100))
def test_round_trips(x, ref_seed):
    closed = coda.closure(x)
    np.testing.assert_allclose(coda.clr_inv(coda.clr(x)), closed, rtol=1e-9)
    ref = ref_seed % x.shape[1]
    np.testing.assert_allclose(coda.alr_inv(coda.alr(x, ref), ref), closed, rtol=1e-9)
    for basis in (None, "pivot"):
        np.testing.assert_allclose(coda.ilr_inv(coda.ilr(x, basis), basis), closed, rtol=1e-9)
    np.testing.assert_allclose(coda.clr(x).sum(axis=1), 0.0, atol=1e-9 * np.abs(np.log(x)).max())


def test_one_d_input_gives_one_d_output():
    assert coda.clr(X1).shape == (6,)
    assert coda.alr(X1).shape == (5,)
    assert coda.ilr(X1).shape == (5,)
    assert coda.clr_inv(coda.clr(X1)).shape == (6,)
    assert coda.alr_inv(coda.alr(X1)).shape == (6,)
    assert coda.ilr_inv(coda.ilr(X1)).shape == (6,)
    np.testing.assert_allclose(coda.clr(X1), coda.clr(X1[None])[0])


@pytest.mark.parametrize("fn", [coda.clr, coda.alr, coda.ilr])
@pytest.mark.parametrize(
    "value, message",
    [(0.0, "contains zeros"), (-1.0, "negative"), (np.nan, "NaN or infinite"), (np.inf, "NaN or infinite")],
)
def test_bad_values_raise_clear_errors(fn, value, message):
    bad = X.copy()
    bad[3, 2] = value
    before = bad.copy()
    with pytest.raises(ValueError, match=message):
        fn(bad)
    np.testing.assert_array_equal(bad, before)  # input untouched


def test_zeros_error_points_to_the_option():
    bad = X.copy()
    bad[0, 0] = 0
    with pytest.raises(ValueError, match=r"row 0, column 0.*zeros='replace'"):
        coda.clr(bad)
    with pytest.raises(ValueError, match="zeros must be one of"):
        coda.clr(X, zeros="ignore")


def test_shape_and_dtype_errors():
    with pytest.raises(ValueError, match=r"1 part\(s\) along axis 1; at least 2 are needed"):
        coda.clr(np.ones((4, 1)))
    with pytest.raises(ValueError, match=r"x of shape \(0, 3\) holds no composition"):
        coda.clr(np.ones((0, 3)))
    with pytest.raises(TypeError, match="dtype"):
        coda.clr(np.array([[1 + 1j, 2.0]]))
    with pytest.raises(TypeError, match="dtype"):
        coda.clr(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="sums to zero"):
        coda.closure(np.array([[0.0, 0.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="reference=6 is out of range"):
        coda.alr(X, 6)
    with pytest.raises(TypeError, match="reference must be an integer"):
        coda.alr(X, 1.5)
    with pytest.raises(ValueError, match="NaN"):
        coda.clr_inv(np.array([0.0, np.nan]))


def test_user_basis_errors():
    with pytest.raises(ValueError, match=r"basis has shape \(4, 6\)"):
        coda.ilr(X, np.ones((4, 6)))
    not_centered = np.eye(6)[:5]
    with pytest.raises(ValueError, match="sum to zero"):
        coda.ilr(X, not_centered)
    scaled = 2 * coda.ilr_basis(6)
    with pytest.raises(ValueError, match="not orthonormal"):
        coda.ilr(X, scaled)
    with pytest.raises(ValueError, match="not orthonormal"):
        coda.ilr_inv(np.zeros((2, 5)), scaled)
    with pytest.raises(ValueError, match="kind must be"):
        coda.ilr(X, "balances")


def test_multi_replace_errors():
    z = np.array([[0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match="too large"):
        coda.multi_replace(z, delta=0.5)
    with pytest.raises(ValueError, match=r"delta must be in \(0, 1\)"):
        coda.multi_replace(z, delta=0.0)
    with pytest.raises(ValueError, match="negative"):
        coda.multi_replace(np.array([[-1.0, 2.0]]))
