"""normkit.coda transforms, closure and multi_replace along any axis of N-d
arrays: against scikit-bio, round trips, layouts, and axis errors.

The scikit-bio reference is always computed with the parts moved last
(``np.moveaxis``), which is unambiguous: scikit-bio 0.7.4's own ``ilr`` /
``ilr_inv`` with ``axis=`` swap the parts axis with the last one instead of
moving it back, so for an axis before the last two they return the other
axes permuted (shape ``(D - 1, 5, 4, 3)`` for ``(D, 3, 5, 4)`` and
``axis=0``); ``test_skbio_axis_argument_agrees`` compares with its
``axis=`` directly where it is right.
"""

import doctest

import numpy as np
import pytest

import skbio.stats.composition as skbio  # scikit-bio is in the test extra

from normkit import coda
from normkit.coda import transforms, zeros

try:
    from numpy.exceptions import AxisError
except ImportError:  # NumPy < 1.25
    from numpy import AxisError

# (shape, parts axis): 1-d, both axes of 2-d, the middle of 3-d, 4-d.
CASES = [
    ((6,), 0),
    ((6,), -1),
    ((5, 7), 0),
    ((5, 7), 1),
    ((5, 7), -2),
    ((3, 6, 4), 1),
    ((3, 6, 4), -2),
    ((2, 3, 5, 4), 2),
    ((2, 3, 5, 4), 0),
]
LAYOUTS = ["C", "F", "reversed", "strided"]


def compositions(shape, layout, seed=0):
    """Positive parts (lognormal, sigma 2: about e^-6 to e^6) of ``shape`` in
    the given memory layout."""
    rng = np.random.default_rng(seed)
    if layout == "strided":  # every other element along each axis
        return rng.lognormal(sigma=2, size=tuple(2 * n for n in shape))[(slice(None, None, 2),) * len(shape)]
    x = rng.lognormal(sigma=2, size=shape)
    if layout == "F":
        return np.asfortranarray(x)
    if layout == "reversed":
        return x[(slice(None, None, -1),) * len(shape)]
    return x


def along(fn, x, axis, *args):
    """scikit-bio's ``fn`` on ``x`` with its parts moved last, moved back."""
    return np.moveaxis(fn(np.moveaxis(x, axis, -1), *args), -1, axis)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape, axis", CASES)
def test_forward_transforms_match_skbio(shape, axis, layout):
    x = compositions(shape, layout)
    np.testing.assert_allclose(coda.closure(x, axis), along(skbio.closure, x, axis), rtol=4e-16, atol=0)
    # measured: exactly equal for clr and alr, 1.8e-15 for ilr (values up to ~10)
    np.testing.assert_allclose(coda.clr(x, axis), along(skbio.clr, x, axis), rtol=0, atol=2e-15)
    d = x.shape[axis]
    for ref in (0, d - 1, -2):
        np.testing.assert_allclose(coda.alr(x, ref, axis), along(skbio.alr, x, axis, ref % d), rtol=0, atol=2e-15)
    np.testing.assert_allclose(coda.ilr(x, None, axis), along(skbio.ilr, x, axis), rtol=0, atol=4e-15)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape, axis", CASES)
def test_inverse_transforms_match_skbio(shape, axis, layout):
    x = compositions(shape, layout, seed=1)
    # measured relative errors at most 2.3e-15 (the native softmax)
    z = along(skbio.clr, x, axis)
    np.testing.assert_allclose(coda.clr_inv(z, axis), along(skbio.clr_inv, z, axis), rtol=4e-15)
    d = x.shape[axis]
    for ref in (0, d - 1):
        y = along(skbio.alr, x, axis, ref)
        np.testing.assert_allclose(coda.alr_inv(y, ref, axis), along(skbio.alr_inv, y, axis, ref), rtol=4e-15)
    y = along(skbio.ilr, x, axis)
    np.testing.assert_allclose(coda.ilr_inv(y, None, axis), along(skbio.ilr_inv, y, axis), rtol=5e-15)


def test_skbio_axis_argument_agrees():
    x = compositions((3, 6, 4), "C", seed=2)
    for axis in (0, 1, 2, -1):
        np.testing.assert_allclose(coda.clr(x, axis), skbio.clr(x, axis=axis), rtol=0, atol=2e-15)
        np.testing.assert_allclose(coda.alr(x, 0, axis), skbio.alr(x, 0, axis=axis), rtol=0, atol=2e-15)
        z = skbio.clr(x, axis=axis)
        np.testing.assert_allclose(coda.clr_inv(z, axis), skbio.clr_inv(z, axis=axis), rtol=4e-15)
    for axis in (1, 2, -1):  # scikit-bio's ilr puts the axes back right for these only
        np.testing.assert_allclose(coda.ilr(x, None, axis), skbio.ilr(x, axis=axis), rtol=0, atol=4e-15)
        y = skbio.ilr(x, axis=axis)
        np.testing.assert_allclose(coda.ilr_inv(y, None, axis), skbio.ilr_inv(y, axis=axis), rtol=5e-15)


def test_user_basis_along_an_axis_matches_skbio():
    sbp = np.array([[1, 1, -1, -1, -1], [1, -1, 0, 0, 0], [0, 0, 1, -1, -1], [0, 0, 0, 1, -1]])
    basis = skbio.sbp_basis(sbp)  # (4, 5): coordinates x parts, whatever the axis
    x = compositions((3, 5, 4), "C", seed=3)
    np.testing.assert_allclose(coda.ilr(x, basis, 1), along(skbio.ilr, x, 1, basis), rtol=0, atol=4e-15)
    y = coda.ilr(x, basis, 1)
    assert y.shape == (3, 4, 4)
    np.testing.assert_allclose(coda.ilr_inv(y, basis, 1), along(skbio.ilr_inv, y, 1, basis), rtol=5e-15)
    with pytest.raises(ValueError, match=r"basis has shape \(4, 5\), expected \(3, 4\) for 4 parts"):
        coda.ilr(x, basis, -1)


@pytest.mark.parametrize("shape, axis", CASES)
def test_multi_replace_along_an_axis_matches_skbio(shape, axis):
    x = compositions(shape, "C", seed=4)
    is_zero = np.random.default_rng(5).random(shape) < 0.3
    np.moveaxis(is_zero, axis, 0)[0] = False  # every composition keeps its first part
    assert is_zero.any()
    x[is_zero] = 0.0
    np.testing.assert_allclose(coda.multi_replace(x, axis=axis), along(skbio.multi_replace, x, axis), rtol=4e-16, atol=0)
    np.testing.assert_allclose(
        coda.multi_replace(x, 0.01, axis), along(lambda m: skbio.multi_replace(m, delta=0.01), x, axis), rtol=4e-16, atol=0
    )
    np.testing.assert_allclose(coda.clr(x, axis, zeros="replace"), coda.clr(coda.multi_replace(x, axis=axis), axis), rtol=0, atol=0)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape, axis", CASES)
def test_round_trips(shape, axis, layout):
    x = compositions(shape, layout, seed=5)
    closed = coda.closure(x, axis)
    # measured relative errors at most 2.8e-15
    np.testing.assert_allclose(coda.clr_inv(coda.clr(x, axis), axis), closed, rtol=5e-15)
    np.testing.assert_allclose(coda.alr_inv(coda.alr(x, 1, axis), 1, axis), closed, rtol=5e-15)
    for basis in (None, "pivot"):
        np.testing.assert_allclose(coda.ilr_inv(coda.ilr(x, basis, axis), basis, axis), closed, rtol=5e-15)
    np.testing.assert_allclose(coda.clr(x, axis).sum(axis=axis), 0.0, atol=1e-14)
    np.testing.assert_allclose(closed.sum(axis=axis), 1.0, rtol=4e-16)


@pytest.mark.parametrize("shape, axis", CASES)
def test_output_shapes_keep_the_parts_axis_in_place(shape, axis):
    x = compositions(shape, "C", seed=6)
    fewer = list(shape)
    fewer[axis] -= 1
    for fn in (coda.closure, coda.clr, coda.multi_replace):
        assert fn(x, axis=axis).shape == shape
    assert coda.alr(x, axis=axis).shape == tuple(fewer)
    assert coda.ilr(x, axis=axis).shape == tuple(fewer)
    y = np.zeros(fewer)
    assert coda.alr_inv(y, axis=axis).shape == shape
    assert coda.ilr_inv(y, axis=axis).shape == shape
    assert coda.clr_inv(np.zeros(shape), axis=axis).shape == shape


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_softmax_based_inverses_are_the_parts_last_result(axis):
    # The native softmax sees the very same rows whatever the axis: exact.
    z = np.random.default_rng(7).normal(size=(3, 6, 4))
    moved = np.ascontiguousarray(np.moveaxis(z, axis, -1))
    np.testing.assert_array_equal(coda.clr_inv(z, axis), np.moveaxis(coda.clr_inv(moved), -1, axis))
    y = np.moveaxis(moved[..., 1:], -1, axis)
    np.testing.assert_array_equal(coda.alr_inv(y, 0, axis), np.moveaxis(coda.alr_inv(np.moveaxis(y, axis, -1), 0), -1, axis))
    np.testing.assert_array_equal(coda.ilr_inv(y, None, axis), np.moveaxis(coda.ilr_inv(np.moveaxis(y, axis, -1)), -1, axis))


def test_inputs_are_never_written():
    rng = np.random.default_rng(8)
    x = rng.lognormal(size=(4, 5, 3))
    y = rng.normal(size=(4, 5, 3))
    x0, y0 = x.copy(), y.copy()
    for axis in (0, 1, 2):
        for fn in (coda.closure, coda.clr, coda.alr, coda.ilr, coda.multi_replace):
            fn(x, axis=axis)
        for fn in (coda.clr_inv, coda.alr_inv, coda.ilr_inv):
            fn(y, axis=axis)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)


def test_integer_input_along_axis_zero():
    counts = np.array([[3, 1], [1, 1], [0, 2]])
    np.testing.assert_array_equal(coda.closure(counts, 0), counts / counts.sum(axis=0))
    np.testing.assert_array_equal(coda.multi_replace(counts, axis=0)[2, 0], 1 / 9)


ALL = [coda.closure, coda.clr, coda.clr_inv, coda.alr, coda.alr_inv, coda.ilr, coda.ilr_inv, coda.multi_replace]


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
@pytest.mark.parametrize("axis", [2, -3, 5])
def test_axis_out_of_range_is_an_axis_error(fn, axis):
    with pytest.raises(AxisError, match=rf"{fn.__name__}: axis {axis} is out of bounds for array of dimension 2"):
        fn(np.ones((3, 4)), axis=axis)


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
@pytest.mark.parametrize("axis, typename", [(1.0, "float"), (True, "bool"), ((0, 1), "tuple"), (None, "NoneType"), ("0", "str")])
def test_axis_must_be_one_integer(fn, axis, typename):
    with pytest.raises(TypeError, match=rf"{fn.__name__}: axis must be an integer, got {typename}"):
        fn(np.ones((3, 4)), axis=axis)


def test_numpy_integer_axis_is_accepted():
    x = compositions((3, 4), "C")
    np.testing.assert_array_equal(coda.clr(x, np.int64(0)), coda.clr(x, 0))


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.__name__)
def test_zero_d_input_is_an_axis_error(fn):
    with pytest.raises(AxisError, match=rf"{fn.__name__}: \w is a 0-d array; expected at least 1 dimension"):
        fn(np.float64(2.0))


def test_bad_values_are_located_in_n_d():
    x = compositions((3, 4, 5), "C")
    bad = x.copy()
    bad[1, 2, 3] = 0.0
    with pytest.raises(ValueError, match=r"clr: x contains zeros \(first at index \(1, 2, 3\)\)"):
        coda.clr(bad, axis=1)
    bad[1, 2, 3] = -1.0
    with pytest.raises(ValueError, match=r"closure: x has negative values \(first at index \(1, 2, 3\)\)"):
        coda.closure(bad, axis=0)
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match=r"ilr_inv: y contains NaN or infinite values \(first at index \(1, 2, 3\)\)"):
        coda.ilr_inv(bad, axis=2)
    with pytest.raises(ValueError, match=r"alr: x contains NaN or infinite values \(first at index 2\)"):
        coda.alr(np.array([1.0, 2.0, np.inf]))


def test_empty_compositions_are_named_by_their_index():
    x = np.ones((3, 4, 5))
    x[2, :, 1] = 0.0
    with pytest.raises(ValueError, match=r"closure: x\[2, :, 1\] sums to zero"):
        coda.closure(x, axis=1)
    columns = np.ones((5, 4))
    columns[:, 3] = 0.0
    with pytest.raises(ValueError, match=r"multi_replace: column 3 of x sums to zero"):
        coda.multi_replace(columns, axis=0)
    with pytest.raises(ValueError, match=r"closure: x sums to zero"):
        coda.closure(np.zeros(3))


def test_shape_errors_name_the_axis():
    with pytest.raises(ValueError, match="clr: x has 1 part\\(s\\) along axis 0; at least 2 are needed"):
        coda.clr(np.ones((1, 4)), axis=0)
    with pytest.raises(ValueError, match="alr_inv: y has 0 coordinate\\(s\\) along axis 1; at least 1 are needed"):
        coda.alr_inv(np.ones((3, 0, 2)), axis=1)
    with pytest.raises(ValueError, match=r"ilr: x of shape \(4, 0\) holds no composition \(parts along axis 0\)"):
        coda.ilr(np.ones((4, 0)), axis=0)
    with pytest.raises(ValueError, match="alr: reference=4 is out of range for 4 parts"):
        coda.alr(np.ones((4, 3)), 4, axis=0)
    with pytest.raises(ValueError, match="too large for x\\[0, :, 1\\] \\(2 zeros\\)"):
        coda.multi_replace(np.array([[[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]]), 0.5, axis=1)


@pytest.mark.parametrize("delta", ["0.1", [0.1], True])
def test_delta_must_be_a_real_number(delta):
    with pytest.raises(TypeError, match="multi_replace: delta must be a real number in \\(0, 1\\) or None"):
        coda.multi_replace(np.ones((2, 3)), delta)


@pytest.mark.parametrize("module", [transforms, zeros], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0
