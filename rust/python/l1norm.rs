//! Bindings of the L1 norm: the int8 fixed-point contract and the float
//! formula (see `crate::l1norm`).

use super::{active_isa, float_kind, FloatKind, RowsMut, RowsRef};
use crate::dispatch::Isa;
use crate::l1norm::{self as kernels, Affine, RowBatch};
use crate::simd::Element;
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// An optional per-channel array: 1-d, contiguous, of `T`, `n` long.
pub(super) fn channel<'py, T: numpy::Element>(name: &str, array: Option<&Bound<'py, PyAny>>, n: usize) -> PyResult<Option<PyReadonlyArray1<'py, T>>> {
    let Some(array) = array else { return Ok(None) };
    let array = array.cast::<PyArray1<T>>().map_err(|_| {
        PyTypeError::new_err(format!("{name}: expected a 1-d array of {}", std::any::type_name::<T>()))
    })?;
    if array.len() != n {
        return Err(PyValueError::new_err(format!("{name}: length {} does not match the row length {n}", array.len())));
    }
    let array = array.try_readonly().map_err(|e| PyValueError::new_err(format!("{name}: {e}")))?;
    if !array.is_contiguous() {
        return Err(PyValueError::new_err(format!("{name}: array must be contiguous")));
    }
    Ok(Some(array))
}

/// Runs `kernel(isa, batch, affine)` over batches of consecutive rows
/// (one per thread's range) with the GIL released. An `out` that partially
/// overlaps `x` is computed into a temporary first (the kernels allow only
/// exact aliasing).
fn run<T: numpy::Element + Copy + Default + Sync>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
    kernel: impl Fn(Isa, RowBatch<T>, Affine<T>) + Send + Sync,
) -> PyResult<()> {
    let isa = active_isa()?;
    let x = RowsRef::<T>::readonly("x", x)?;
    let y = RowsMut::<T>::writeable("out", out)?;
    x.same_shape("out", &y)?;
    if x.cols as u64 >= 1 << 32 {
        return Err(PyValueError::new_err("x: rows must be shorter than 2**32 elements"));
    }
    let weight = channel::<T>("weight", weight, x.cols)?;
    let bias = channel::<T>("bias", bias, x.cols)?;
    let w = weight.as_ref().map(|a| a.as_slice()).transpose()?;
    let b = bias.as_ref().map(|a| a.as_slice()).transpose()?;
    let mut scratch = Vec::new();
    let dest = y.destination(&[&x], &mut scratch);
    py.detach(|| {
        crate::rows::for_each_row_range(x.rows, x.cols, |range| {
            // Rows were checked against the arrays' shapes and strides,
            // weight and bias against the row length.
            kernel(isa, unsafe { x.batch(&dest, range) }, Affine::from_slices(w, b))
        });
        if !scratch.is_empty() {
            unsafe { y.copy_rows_from(&dest) }
        }
    });
    Ok(())
}

/// l1_norm_i8(x, out, gain, weight=None, bias=None): the int8 L1 norm of
/// each row of the 2-d int8 array `x` into `out` (same shape; may be `x`),
/// with output gain `gain` (= 1 / out_scale as float32) and optional int8
/// weight / bias of the row length.
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
    run::<i8>(py, x, out, weight, bias, move |isa, batch, affine| unsafe {
        kernels::l1_norm_i8_rows_raw(isa, batch, gain, affine)
    })
}

/// l1_norm_float(x, out, eps, weight=None, bias=None): the float L1 norm
/// (x - mean) / (mean|x - mean| + eps) (* weight + bias) of each row of a
/// float32 / float64 array; weight and bias have x's dtype.
#[pyfunction]
#[pyo3(signature = (x, out, eps, weight=None, bias=None))]
fn l1_norm_float(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    eps: f64,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    fn go<T: Element + numpy::Element>(
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        out: &Bound<'_, PyAny>,
        eps: f64,
        weight: Option<&Bound<'_, PyAny>>,
        bias: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let eps = T::from_f64(eps);
        run::<T>(py, x, out, weight, bias, move |isa, batch, affine| {
            for i in 0..batch.rows {
                unsafe { kernels::l1_norm_float_raw(isa, batch.x_row(i), batch.y_row(i), batch.n, eps, affine) }
            }
        })
    }
    match float_kind("x", x)? {
        FloatKind::F32 => go::<f32>(py, x, out, eps, weight, bias),
        FloatKind::F64 => go::<f64>(py, x, out, eps, weight, bias),
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(l1_norm_i8, m)?)?;
    m.add_function(wrap_pyfunction!(l1_norm_float, m)?)?;
    Ok(())
}
