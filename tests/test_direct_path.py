"""The direct path of the row-wise functions (``_rowwise.direct``: an
ndarray along its last axis goes straight to the native call) gives what
the general path gives: the same bits, and the same errors where the
native layer alone would accept the arrays or refuse them differently."""

from __future__ import annotations

import numpy as np
import pytest

import normkit

FUNCS = {
    "softmax": normkit.softmax,
    "log_softmax": normkit.log_softmax,
    "rms_norm": normkit.rms_norm,
    "layer_norm": normkit.layer_norm,
    "crms_norm": normkit.crms_norm,
    "l1_norm": normkit.l1_norm,
}
WEIGHTED = ("rms_norm", "layer_norm", "crms_norm", "l1_norm")


def _x(shape=(5, 37)) -> np.ndarray:
    return np.random.default_rng(3).standard_normal(shape)


class _Subclass(np.ndarray):
    """Not exactly an ndarray: never takes the direct path."""


def _general(name: str, x: np.ndarray, out: np.ndarray, **kw) -> np.ndarray:
    """The general path's result for ``x`` into ``out``, on the same memory
    as the direct call it is compared with (the norms' last bits depend on
    where a row sits relative to the vector alignment)."""
    FUNCS[name](x.view(_Subclass), out=out, **kw)
    return out.copy()


@pytest.mark.parametrize("name", FUNCS)
def test_same_bits_as_the_general_path(name):
    x = _x()
    y = np.empty_like(x)
    expected = _general(name, x, y)
    y.fill(0)
    assert FUNCS[name](x, out=y) is y
    np.testing.assert_array_equal(y, expected)
    if name != "l1_norm":  # which has no axis argument
        y.fill(0)
        FUNCS[name](x, axis=1, out=y)
        np.testing.assert_array_equal(y, expected)
    inplace = x.copy()
    expected = _general(name, inplace, inplace)
    inplace[...] = x
    assert FUNCS[name](inplace, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, expected)
    new = FUNCS[name](x)
    assert new.dtype == x.dtype and new.shape == x.shape


@pytest.mark.parametrize("name", FUNCS)
def test_out_overlapping_x_partially(name):
    """The native layer computes into scratch and copies back."""
    rows, n = 5, 37
    buf = _x((rows * n + 3,))
    x, out = buf[: rows * n].reshape(rows, n), buf[3:].reshape(rows, n)
    expected = _general(name, x, out)
    buf[: rows * n] = _x((rows * n + 3,))[: rows * n]
    assert FUNCS[name](x, out=out) is out
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("name", WEIGHTED)
def test_weight_sharing_memory_with_out(name):
    """The native layer refuses the weight; the general path computes into
    a new array and copies."""
    x = _x()
    out = np.empty_like(x)
    weight = 1 + 0.1 * x[1]
    expected = _general(name, x, out, weight=weight)
    out[0] = weight
    FUNCS[name](x, out[0], out=out)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("name", FUNCS)
def test_out_with_x_rows_but_another_shape(name):
    """(6, 4) has the rows and row length of (2, 3, 4), which is all the
    native layer compares: the shape check stays in Python."""
    x = _x((2, 3, 4))
    out = np.zeros((6, 4))
    with pytest.raises(ValueError, match=r"out has shape \(6, 4\), expected \(2, 3, 4\)"):
        FUNCS[name](x, out=out)
    assert not out.any()


@pytest.mark.parametrize("name", FUNCS)
def test_refused_layouts_take_the_general_path(name):
    x = _x()
    strided_out = np.zeros((x.shape[0], 2 * x.shape[1]))[:, ::2]
    expected = _general(name, x, strided_out)
    strided_out.fill(0)
    FUNCS[name](x, out=strided_out)
    np.testing.assert_array_equal(strided_out, expected)
    fortran = np.asfortranarray(x)
    np.testing.assert_allclose(FUNCS[name](fortran), expected, rtol=1e-15, atol=1e-15)
    readonly = np.zeros_like(x)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match=f"{name}: out is read-only"):
        FUNCS[name](x, out=readonly)
    with pytest.raises(TypeError, match=f"{name}: out has dtype float32, expected float64"):
        FUNCS[name](x, out=np.zeros(x.shape, np.float32))
