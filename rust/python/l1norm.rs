//! Bindings of the L1 norm: the int8 fixed-point contract and the float
//! formula (see `crate::l1norm`).

use super::rows::{out_or_new, Eps, Half};
use super::runner::{with_float_type, Call};
use crate::simd::{Element, Real};
use crate::l1norm as kernels;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The kernels' row-length limit (their sums are sized for it).
fn check_row_length(n: usize) -> PyResult<()> {
    if n as u64 >= 1 << 32 {
        return Err(PyValueError::new_err("x: rows must be shorter than 2**32 elements"));
    }
    Ok(())
}

/// l1_norm_i8(x, out, gain, weight=None, bias=None): the int8 L1 norm of
/// each row of the 2-d int8 array `x` into `out` (same shape; may be `x`),
/// with output gain `gain` (= 1 / out_scale as float32) and optional int8
/// weight / bias of the row length, sharing no memory with `out`.
#[pyfunction]
#[pyo3(signature = (x, out, gain, weight=None, bias=None))]
fn l1_norm_i8(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    gain: f32,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    if !(gain > 0.0 && gain.is_finite()) {
        return Err(PyValueError::new_err(format!("gain must be positive and finite as a float32, got {gain}")));
    }
    let call = Call::<i8, 1, 1>::new([("x", x)], [("out", out)])?;
    check_row_length(call.n())?;
    call.affine(weight, bias)?.run(py, |b| {
        // SAFETY: the runner's guarantee (`runner::Block`) covers the batch's
        // rows and the affine pointers; gain and row length are checked above.
        unsafe { kernels::l1_norm_i8_rows_raw(b.isa(), b.batch(), gain, b.affine()) }
    })
}

/// l1_norm_float(x, out, eps, weight=None, bias=None): the float L1 norm
/// (x - mean) / (mean|x - mean| + eps) (* weight + bias) of each row of a
/// float32 / float64 array into `out` (as for `softmax`: None is a new
/// array, and `out` is returned); weight and bias have x's dtype and
/// share no memory with `out`; `eps` finite and >= 0 ([`Eps`]). With
/// `half`, x and out are `uint16` arrays of that 16-bit type and weight
/// and bias float32.
#[pyfunction]
#[pyo3(signature = (x, out, eps, weight=None, bias=None, *, half=None))]
fn l1_norm_float<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
    eps: Eps,
    weight: Option<&Bound<'py, PyAny>>,
    bias: Option<&Bound<'py, PyAny>>,
    half: Option<Half>,
) -> PyResult<Bound<'py, PyAny>> {
    with_float_type!(x, half = half, T => {
        let out = out_or_new::<T>("out", x, out)?;
        let call = Call::<T, 1, 1, <T as Element>::Real>::new([("x", x)], [("out", &out)])?;
        check_row_length(call.n())?;
        let eps = <T as Element>::Real::from_f64(eps.0);
        call.affine(weight, bias)?.run(py, |b| {
            for (x, y) in b.pairs() {
                // SAFETY: as in `l1_norm_i8`, one row at a time.
                unsafe { kernels::l1_norm_float_raw(b.isa(), x, y, b.n(), eps, b.affine()) }
            }
        })?;
        Ok(out)
    })
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(l1_norm_i8, m)?)?;
    m.add_function(wrap_pyfunction!(l1_norm_float, m)?)?;
    Ok(())
}
