"""Every memory layout NumPy can hand over, for every kernel, on every ISA.

The kernels read rows that are contiguous, aligned and in native byte
order; the Python layer must copy anything else first, and compute into an
aligned temporary when ``out`` is not such an array. Each layout is
compared with the same call on a plain C-contiguous copy (values close to
a few ulps, dtype equal and native). The tests run in process at the
detected level and, through ``test_layouts_on_every_isa``, in a subprocess
at every lower level.
"""

from __future__ import annotations

import numpy as np
import pytest

import normkit

SHAPE = (5, 37)
SENTINEL = 77


def _byteswapped(a):
    """The same values in non-native byte order (``>f4`` on x86)."""
    return a.astype(a.dtype.newbyteorder("S"))


def _unaligned(a):
    """A C-contiguous, writeable copy one byte off alignment."""
    u = np.frombuffer(bytearray(a.nbytes + 1), a.dtype, count=a.size, offset=1).reshape(a.shape)
    u[...] = a
    assert u.flags.c_contiguous and (a.itemsize == 1 or not u.flags.aligned)
    return u


def _unaligned_read_only(a):
    """What dask's distributed scheduler hands back: an unaligned view of
    immutable bytes."""
    u = np.frombuffer(b"\0" + a.tobytes(), a.dtype, count=a.size, offset=1).reshape(a.shape)
    assert not u.flags.writeable
    return u


def _read_only(a):
    c = a.copy()
    c.flags.writeable = False
    return c


def _negative_strides(a):
    """The same values, every stride negative."""
    flip = (slice(None, None, -1),) * a.ndim
    r = np.ascontiguousarray(a[flip])[flip]
    assert all(s < 0 for s in r.strides if s)
    return r


def _fortran(a):
    return np.asfortranarray(a)


INPUT_LAYOUTS = {
    "byteswapped": _byteswapped,
    "unaligned": _unaligned,
    "unaligned_read_only": _unaligned_read_only,
    "read_only": _read_only,
    "negative_strides": _negative_strides,
    "fortran": _fortran,
    "byteswapped_fortran": lambda a: _fortran(_byteswapped(a)),
}

# Layouts of a writeable out= that must work.
OUT_LAYOUTS = {
    "unaligned": _unaligned,
    "negative_strides": _negative_strides,
    "fortran": _fortran,
}


def _ops():
    """name -> (call(x, r, w, b, axis, out), has_axis). ``r`` is the residual
    of the add_ forms; ``out`` is one array, or a pair for the add_ forms."""
    return {
        "softmax": (lambda x, r, w, b, axis, out: normkit.softmax(x, axis=axis, out=out), True),
        "log_softmax": (lambda x, r, w, b, axis, out: normkit.log_softmax(x, axis=axis, out=out), True),
        "layer_norm": (lambda x, r, w, b, axis, out: normkit.layer_norm(x, w, b, axis=axis, out=out), True),
        "rms_norm": (lambda x, r, w, b, axis, out: normkit.rms_norm(x, w, axis=axis, out=out), True),
        "crms_norm": (lambda x, r, w, b, axis, out: normkit.crms_norm(x, w, axis=axis, out=out), True),
        "add_layer_norm": (lambda x, r, w, b, axis, out: normkit.add_layer_norm(x, r, w, b, axis=axis, out=out), True),
        "add_rms_norm": (lambda x, r, w, b, axis, out: normkit.add_rms_norm(x, r, w, axis=axis, out=out), True),
        "l1_norm": (lambda x, r, w, b, axis, out: normkit.l1_norm(x, w, b, out=out), False),
    }


OPS = _ops()
PAIRED = ("add_layer_norm", "add_rms_norm")
TOL = {np.float32: dict(rtol=2e-6, atol=2e-6), np.float64: dict(rtol=1e-13, atol=1e-13)}


def _data(dtype, shape=SHAPE, axis=-1):
    rng = np.random.default_rng(sum(shape) + 3)
    n = shape[axis] if shape else 0
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    r = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(n).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    return x, r, w, b


def _as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


def _assert_same(got, want, dtype):
    for g, v in zip(_as_tuple(got), _as_tuple(want)):
        assert g.dtype == v.dtype and g.dtype.isnative, (g.dtype, v.dtype)
        assert g.shape == v.shape
        np.testing.assert_allclose(g, v, **TOL[dtype])


def _cases():
    for name, (_, has_axis) in OPS.items():
        for axis in (-1, 0) if has_axis else (-1,):
            yield name, axis


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", INPUT_LAYOUTS)
@pytest.mark.parametrize("name, axis", list(_cases()))
def test_input_layouts(name, axis, layout, dtype):
    call = OPS[name][0]
    change = INPUT_LAYOUTS[layout]
    x, r, w, b = _data(dtype, axis=axis)
    want = call(x, r, w, b, axis, None)
    got = call(change(x), change(r), w, b, axis, None)
    _assert_same(got, want, dtype)


@pytest.mark.parametrize("layout", ["byteswapped", "unaligned", "unaligned_read_only", "negative_strides"])
@pytest.mark.parametrize("name", [n for n in OPS if n not in ("softmax", "log_softmax")])
def test_weight_and_bias_layouts(name, layout):
    call = OPS[name][0]
    change = INPUT_LAYOUTS[layout]
    x, r, w, b = _data(np.float32)
    want = call(x, r, w, b, -1, None)
    got = call(x, r, change(w), change(b), -1, None)
    _assert_same(got, want, np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", OUT_LAYOUTS)
@pytest.mark.parametrize("name, axis", list(_cases()))
def test_out_layouts(name, axis, layout, dtype):
    """An unaligned, reversed or Fortran ``out`` is written (through an
    aligned temporary where needed) and returned."""
    call = OPS[name][0]
    x, r, w, b = _data(dtype, axis=axis)
    want = call(x, r, w, b, axis, None)
    outs = tuple(OUT_LAYOUTS[layout](np.full(x.shape, SENTINEL, dtype)) for _ in _as_tuple(want))
    got = call(x, r, w, b, axis, outs if name in PAIRED else outs[0])
    for g, o in zip(_as_tuple(got), outs):
        assert g is o
    _assert_same(got, want, dtype)


@pytest.mark.parametrize("layout", ["unaligned", "negative_strides", "fortran"])
@pytest.mark.parametrize("name", OPS)
def test_in_place_on_a_copied_layout(name, layout):
    """``out=x`` where ``x`` itself has to be copied to be read."""
    call = OPS[name][0]
    x, r, w, b = _data(np.float32)
    want = call(x, r, w, b, -1, None)
    xl, rl = INPUT_LAYOUTS[layout](x), INPUT_LAYOUTS[layout](r)
    got = call(xl, rl, w, b, -1, (xl, rl) if name in PAIRED else xl)
    assert all(g is o for g, o in zip(_as_tuple(got), (xl, rl)))
    _assert_same(got, want, np.float32)


@pytest.mark.parametrize("name", OPS)
def test_byteswapped_out_is_a_type_error_and_is_left_alone(name):
    call = OPS[name][0]
    x, r, w, b = _data(np.float32)
    outs = tuple(_byteswapped(np.full(x.shape, SENTINEL, np.float32)) for _ in range(2 if name in PAIRED else 1))
    with pytest.raises(TypeError, match=r"non-native byte order"):
        call(x, r, w, b, -1, outs if name in PAIRED else outs[0])
    for o in outs:
        assert (o == SENTINEL).all()


@pytest.mark.parametrize("name", OPS)
def test_read_only_out_is_an_error_and_is_left_alone(name):
    call = OPS[name][0]
    x, r, w, b = _data(np.float32)
    outs = tuple(_unaligned_read_only(np.full(x.shape, SENTINEL, np.float32)) for _ in range(2 if name in PAIRED else 1))
    with pytest.raises(ValueError, match="read-only"):
        call(x, r, w, b, -1, outs if name in PAIRED else outs[0])
    for o in outs:
        assert (o == SENTINEL).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0,), (0, 37), (5, 0), (2, 0, 3)])
@pytest.mark.parametrize("name", OPS)
def test_zero_size(name, shape, dtype):
    call = OPS[name][0]
    x, r, w, b = _data(dtype, shape)
    for layout in (lambda a: a, _byteswapped, _fortran, _read_only):
        got = call(layout(x), layout(r), w, b, -1, None)
        for g in _as_tuple(got):
            assert g.shape == shape and g.dtype == np.dtype(dtype)
    outs = tuple(np.empty(shape, dtype) for _ in range(2 if name in PAIRED else 1))
    got = call(x, r, w, b, -1, outs if name in PAIRED else outs[0])
    for g, o in zip(_as_tuple(got), outs):
        assert g is o


# ------------------------------------------------------------ int8 l1_norm

INT8_LAYOUTS = {k: v for k, v in INPUT_LAYOUTS.items() if not k.startswith("byteswapped")}


def _int8_data(shape=SHAPE):
    rng = np.random.default_rng(9)
    x = rng.integers(-128, 128, shape).astype(np.int8)
    w = rng.integers(-128, 128, shape[-1]).astype(np.int8)
    b = rng.integers(-128, 128, shape[-1]).astype(np.int8)
    return x, w, b


@pytest.mark.parametrize("layout", INT8_LAYOUTS)
def test_int8_l1_norm_input_layouts(layout):
    x, w, b = _int8_data()
    want = normkit.l1_norm(x, w, b, out_scale=0.05)
    got = normkit.l1_norm(INT8_LAYOUTS[layout](x), w, b, out_scale=0.05)
    assert got.dtype == np.int8 and np.array_equal(got, want)


@pytest.mark.parametrize("layout", ["byteswapped", "unaligned", "negative_strides"])
def test_int8_l1_norm_weight_layouts(layout):
    """Integer weights of any byte order (here int16) are taken by value."""
    x, w, b = _int8_data()
    want = normkit.l1_norm(x, w, b, out_scale=0.05)
    change = INPUT_LAYOUTS[layout]
    got = normkit.l1_norm(x, change(w.astype(np.int16)), change(b.astype(np.int16)), out_scale=0.05)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("layout", OUT_LAYOUTS)
def test_int8_l1_norm_out_layouts(layout):
    x, w, b = _int8_data()
    want = normkit.l1_norm(x, w, b, out_scale=0.05)
    out = OUT_LAYOUTS[layout](np.full(x.shape, SENTINEL, np.int8))
    assert normkit.l1_norm(x, w, b, out_scale=0.05, out=out) is out
    assert np.array_equal(out, want)


@pytest.mark.parametrize("shape", [(0,), (0, 37), (5, 0), (2, 0, 3)])
def test_int8_l1_norm_zero_size(shape):
    x = np.zeros(shape, np.int8)
    for layout in (lambda a: a, _fortran, _read_only):
        got = normkit.l1_norm(layout(x), out_scale=0.05)
        assert got.shape == shape and got.dtype == np.int8


# ------------------------------------------------------------ every ISA

_ACTIVE = normkit.cpu_info()["active"]


@pytest.mark.parametrize("isa", [i for i in normkit.cpu_info()["available"] if i != _ACTIVE])
def test_layouts_on_every_isa(isa, run_with_isa):
    """This module's tests (run above at the active level) at each other
    level the CPU has, in a subprocess with NORMKIT_ISA set."""
    code = (
        "import sys, pytest, normkit\n"
        f"assert normkit.cpu_info()['active'] == {isa!r}, normkit.cpu_info()\n"
        f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', {__file__!r}, '-k', 'not on_every_isa']))\n"
    )
    proc = run_with_isa(isa, code, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
