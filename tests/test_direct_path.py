"""The direct path of the row-wise functions (``_rowwise.is_direct``: an
ndarray along its last axis goes straight to the native call) gives what
the general path gives: the same bits, and the same errors where the
native layer alone would accept the arrays or refuse them differently."""

from __future__ import annotations

import importlib
import pickle

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


ADD_FUNCS = {"add_rms_norm": normkit.add_rms_norm, "add_layer_norm": normkit.add_layer_norm}


def _add_general(name: str, x: np.ndarray, residual: np.ndarray, out: tuple, **kw) -> tuple:
    """The general path's (normed, sum) into ``out``, as ``_general``."""
    ADD_FUNCS[name](x.view(_Subclass), residual, out=out, **kw)
    return out[0].copy(), out[1].copy()


@pytest.mark.parametrize("name", ADD_FUNCS)
def test_add_forms_same_bits_as_the_general_path(name):
    x, residual = _x(), _x()[::-1].copy()
    weight = 1 + 0.1 * _x((x.shape[1],))
    out = (np.empty_like(x), np.empty_like(x))
    expected = _add_general(name, x, residual, out, weight=weight)
    for a in out:
        a.fill(0)
    got = ADD_FUNCS[name](x, residual, weight, out=out)
    assert got[0] is out[0] and got[1] is out[1]
    np.testing.assert_array_equal(out[0], expected[0])
    np.testing.assert_array_equal(out[1], expected[1])
    new = ADD_FUNCS[name](x, residual, weight)
    assert all(a.dtype == x.dtype and a.shape == x.shape and a.flags.c_contiguous for a in new)
    # In place: out=(x, residual) updates both.
    xi, ri = x.copy(), residual.copy()
    normed, summed = ADD_FUNCS[name](xi, ri, weight, out=(xi, ri))
    assert normed is xi and summed is ri
    np.testing.assert_array_equal(summed, expected[1])
    np.testing.assert_allclose(normed, expected[0], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("name", ADD_FUNCS)
def test_add_forms_refused_arguments_keep_their_errors(name):
    """What the native layer refuses reaches the general path, which
    converts it or raises the error users see, with nothing written."""
    x = _x((2, 3, 4))
    out = (np.zeros_like(x), np.zeros_like(x))
    with pytest.raises(ValueError, match=r"residual has shape \(6, 4\), expected \(2, 3, 4\)"):
        ADD_FUNCS[name](x, np.ones((6, 4)), out=out)
    with pytest.raises(ValueError, match=r"out\[1\] has shape \(6, 4\), expected \(2, 3, 4\)"):
        ADD_FUNCS[name](x, x, out=(out[0], np.zeros((6, 4))))
    with pytest.raises(TypeError, match="out must be None or a tuple of two arrays"):
        ADD_FUNCS[name](x, x, out=np.zeros((2, *x.shape)))
    with pytest.raises(TypeError, match=r"out\[0\]"):
        ADD_FUNCS[name](x, x, out=(None, out[1]))
    with pytest.raises(ValueError, match="must not share memory"):
        ADD_FUNCS[name](x, x, out=(out[0], out[0]))
    assert not out[0].any() and not out[1].any()
    # A float32 residual promotes with x's float64, as NumPy's add does.
    normed, summed = ADD_FUNCS[name](x, x.astype(np.float32))
    assert normed.dtype == summed.dtype == np.float64
    np.testing.assert_array_equal(summed, x + x.astype(np.float32))


def test_native_out_none_allocates_and_out_must_have_x_shape():
    """The native calls behind the direct path: out=None is a new
    C-contiguous array of x's shape, returned, with the same bits as the
    public call; an out (or residual) with x's rows but another shape is
    refused before anything is written."""
    from normkit import _native

    x = _x((2, 3, 4))
    calls = {
        "softmax": (lambda o: _native.softmax(x, o, "auto"), normkit.softmax(x.view(_Subclass))),
        "log_softmax": (lambda o: _native.log_softmax(x, o), normkit.log_softmax(x.view(_Subclass))),
        "rms_norm": (lambda o: _native.norm(x, o, "rms", 1e-6), normkit.rms_norm(x.view(_Subclass))),
        "l1_norm": (lambda o: _native.l1_norm_float(x, o, 1e-5), normkit.l1_norm(x.view(_Subclass))),
    }
    for name, (call, expected) in calls.items():
        y = call(None)
        assert type(y) is np.ndarray and y.shape == x.shape and y.dtype == x.dtype and y.flags.c_contiguous, name
        np.testing.assert_array_equal(y, expected, err_msg=name)
        out = np.empty_like(x)
        assert call(out) is out
        flat = np.zeros((6, 4))
        with pytest.raises(ValueError, match=r"out: shape \[6, 4\] does not match x's \[2, 3, 4\]"):
            call(flat)
        assert not flat.any()
    flat = (np.zeros((6, 4)), np.zeros((6, 4)))
    with pytest.raises(ValueError, match=r"residual: shape \[6, 4\] does not match x's \[2, 3, 4\]"):
        _native.add_norm(x, np.ones((6, 4)), None, None, "rms", 1e-6)
    with pytest.raises(ValueError, match=r"sum_out: shape \[6, 4\]"):
        _native.add_norm(x, x, np.empty_like(x), flat[1], "rms", 1e-6)
    assert not flat[1].any()
    normed, summed = _native.add_norm(x, x, None, None, "layer", 1e-5)
    np.testing.assert_array_equal(summed, x + x)
    np.testing.assert_allclose(normed, normkit.layer_norm(summed.view(_Subclass)), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("eps", [-1.0, -5e-324, float("nan"), float("inf"), -float("inf")])
def test_a_float_eps_out_of_range_is_refused_before_anything_is_written(eps):
    """A float eps goes to the native call unchecked on the direct path:
    the native layer refuses it (ValueError) with nothing written, and the
    public functions raise the general path's error, again with nothing
    written. eps = 0.0 is accepted."""
    from normkit import _native

    x = _x((2, 3, 4))
    out, summed = np.zeros_like(x), np.zeros_like(x)
    for kind in ("rms", "layer", "crms"):
        with pytest.raises(ValueError, match="eps must be finite and >= 0"):
            _native.norm(x, out, kind, eps)
        with pytest.raises(ValueError, match="eps must be finite and >= 0"):
            _native.add_norm(x, x, out, summed, kind, eps)
    with pytest.raises(ValueError, match="eps must be finite and >= 0"):
        _native.l1_norm_float(x, out, eps)
    for name in ("rms_norm", "layer_norm", "crms_norm"):
        with pytest.raises(ValueError, match=f"{name}: eps must be finite and >= 0"):
            FUNCS[name](x, eps=eps, out=out)
    for name in ADD_FUNCS:
        with pytest.raises(ValueError, match=f"{name}: eps must be finite and >= 0"):
            ADD_FUNCS[name](x, x, eps=eps, out=(out, summed))
    assert not out.any() and not summed.any()
    assert np.array_equal(_native.norm(x, None, "rms", 0.0), normkit.rms_norm(x.view(_Subclass), eps=0.0))


def test_eps_of_other_types_takes_the_direct_path(monkeypatch):
    """An int or NumPy-scalar eps is checked and converted in Python, then
    takes the direct path (the general one, ``_prepare``, is not reached)
    and gives the bits of the same float eps."""
    import normkit.norm

    def general_path(*args):
        raise AssertionError("the general path ran")

    x = _x((3, 40))
    monkeypatch.setattr(normkit.norm, "_prepare", general_path)
    for name in ("rms_norm", "layer_norm", "crms_norm"):
        for eps in (np.float64(0.5), np.float32(0.5), 1, 0):
            got = FUNCS[name](x, eps=eps)
            np.testing.assert_array_equal(got, FUNCS[name](x, eps=float(eps)), err_msg=f"{name} {eps!r}")
    for name, f in ADD_FUNCS.items():
        for eps in (np.float32(0.25), np.float64(0.25), 1):
            got = f(x, x, eps=eps)
            np.testing.assert_array_equal(got[0], f(x, x, eps=float(eps))[0], err_msg=f"{name} {eps!r}")


def _forbid_general_path(monkeypatch):
    """Make the general path of every function with a direct path
    (``rowwise``, the norms' ``_prepare``) fail the test if it runs."""
    def general_path(*args, **kwargs):
        raise AssertionError("the general path ran")

    # importlib: the attribute normkit.softmax is the function, not its module.
    for module, name in (("normkit.softmax", "rowwise"), ("normkit.l1norm", "rowwise"), ("normkit.norm", "_prepare")):
        monkeypatch.setattr(importlib.import_module(module), name, general_path)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_common_case_takes_the_direct_path(monkeypatch, dtype):
    """Every function with a direct path takes it for a float32 or float64
    ndarray along its last axis, out given or not: the general path
    (``rowwise``, the norms' ``_prepare``) is not reached."""
    _forbid_general_path(monkeypatch)
    x = _x((3, 40)).astype(dtype)
    w = np.ones(40, dtype)
    for name, f in FUNCS.items():
        for axis in ({} if name == "l1_norm" else {"axis": -1}, {} if name == "l1_norm" else {"axis": 1}):
            assert f(x, **axis).dtype == dtype
            out = np.empty_like(x)
            assert f(x, out=out, **axis) is out
        if name in WEIGHTED:
            f(x, w, out=out)
    for f in ADD_FUNCS.values():
        normed, summed = f(x, x.copy(), w)
        assert f(x, x.copy(), w, out=(normed, summed))[0] is normed


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_equal_dtype_that_is_another_descriptor_takes_the_direct_path(monkeypatch, dtype):
    """The dtype test compares NumPy's own float32 and float64 descriptors by
    identity first; an equal descriptor that is another object (an
    unpickled array's, or one with metadata) still takes the direct path,
    and gives the bits of the same memory viewed with NumPy's descriptor
    (the norms' sums depend on the row's alignment in the last bit)."""
    x = _x((3, 40)).astype(dtype)
    others = [pickle.loads(pickle.dumps(x)), x.astype(np.dtype(dtype, metadata={"unit": "logit"}))]
    expected = [{name: f(other.view(np.dtype(dtype))) for name, f in FUNCS.items()} for other in others]
    _forbid_general_path(monkeypatch)
    for other, want in zip(others, expected):
        assert other.dtype == x.dtype and other.dtype is not np.dtype(dtype)
        for name, f in FUNCS.items():
            np.testing.assert_array_equal(f(other), want[name], err_msg=name)


@pytest.mark.parametrize("name", [*FUNCS, *ADD_FUNCS])
def test_a_result_too_large_to_allocate_is_a_memory_error(name):
    """A broadcast x whose result would take 4 EiB (beyond any address
    space, even with 5-level paging and overcommit): the native allocation
    fails and says so, as ``np.empty`` does (not a panic)."""
    x = np.broadcast_to(np.float32(1), (2**30, 2**30))
    f = ADD_FUNCS[name] if name in ADD_FUNCS else FUNCS[name]
    args = (x, x) if name in ADD_FUNCS else (x,)
    with pytest.raises(MemoryError):
        f(*args)


@pytest.mark.parametrize("name", ADD_FUNCS)
def test_a_bad_argument_is_reported_before_an_unallocatable_result(name):
    """The native layer allocates the results before it checks residual
    and weight; a failed allocation takes the general path, which checks
    the arguments first, as without the direct path."""
    x = np.broadcast_to(np.float32(1), (2**30, 2**30))
    with pytest.raises(ValueError, match=r"residual has shape \(3,\)"):
        ADD_FUNCS[name](x, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="weight"):
        ADD_FUNCS[name](x, x, np.ones(3, np.float32))
