//! Bindings of the softmax family.

use super::{active_isa, float_kind, FloatKind, RowsMut, RowsRef};
use crate::dispatch::Isa;
use crate::simd::Element;
use crate::softmax::{self as kernels, Algorithm};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// `None` means "auto": chosen per call from the row length.
fn parse_algorithm(name: &str) -> PyResult<Option<Algorithm>> {
    if name == "auto" {
        return Ok(None);
    }
    Algorithm::from_name(name).map(Some).ok_or_else(|| {
        let names: Vec<_> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        PyValueError::new_err(format!("softmax: algorithm must be \"auto\" or one of {names:?}, got {name:?}"))
    })
}

/// Runs `kernel(isa, x_row, y_row, cols)` over every row, with the GIL
/// released for large inputs. An `out` that partially overlaps `x` is
/// computed into a temporary first.
fn run<T: Element + numpy::Element>(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    kernel: impl Fn(Isa, *const T, *mut T, usize) + Send + Sync,
) -> PyResult<()> {
    let isa = active_isa()?;
    let x = RowsRef::<T>::readonly("x", x)?;
    let y = RowsMut::<T>::writeable("out", out)?;
    x.same_shape("out", &y)?;
    let mut scratch = Vec::new();
    let dest = y.destination(&[&x], &mut scratch);
    let work = || {
        crate::rows::for_each_row_range(x.rows, x.cols, |range| {
            for i in range {
                // Rows were checked against the arrays' shapes and strides.
                unsafe { kernel(isa, x.row(i), dest.row(i), x.cols) }
            }
        });
        if !scratch.is_empty() {
            unsafe { y.copy_rows_from(&dest) }
        }
    };
    super::without_gil_if_large(py, x.rows * x.cols, work);
    Ok(())
}

/// softmax(x, out, algorithm): softmax of each row of the 2-d array `x`
/// into `out` (same shape and dtype; may be `x` itself).
#[pyfunction]
fn softmax(py: Python<'_>, x: &Bound<'_, PyAny>, out: &Bound<'_, PyAny>, algorithm: &str) -> PyResult<()> {
    let chosen = parse_algorithm(algorithm)?;
    fn go<T: Element + numpy::Element>(py: Python<'_>, x: &Bound<'_, PyAny>, out: &Bound<'_, PyAny>, chosen: Option<Algorithm>) -> PyResult<()> {
        run::<T>(py, x, out, move |isa, x, y, n| {
            let algorithm = chosen.unwrap_or_else(|| Algorithm::auto(n, std::mem::size_of::<T>(), isa));
            unsafe { kernels::softmax_raw(isa, algorithm, x, y, n) }
        })
    }
    match float_kind("x", x)? {
        FloatKind::F32 => go::<f32>(py, x, out, chosen),
        FloatKind::F64 => go::<f64>(py, x, out, chosen),
    }
}

/// log_softmax(x, out): log-softmax of each row of `x` into `out`.
#[pyfunction]
fn log_softmax(py: Python<'_>, x: &Bound<'_, PyAny>, out: &Bound<'_, PyAny>) -> PyResult<()> {
    match float_kind("x", x)? {
        FloatKind::F32 => run::<f32>(py, x, out, |isa, x, y, n| unsafe { kernels::log_softmax_raw(isa, x, y, n) }),
        FloatKind::F64 => run::<f64>(py, x, out, |isa, x, y, n| unsafe { kernels::log_softmax_raw(isa, x, y, n) }),
    }
}

/// The algorithm "auto" picks for rows of `n` elements of `itemsize` bytes
/// at the active instruction set.
#[pyfunction]
fn auto_algorithm(n: usize, itemsize: usize) -> PyResult<&'static str> {
    Ok(Algorithm::auto(n, itemsize, active_isa()?).name())
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(softmax, m)?)?;
    m.add_function(wrap_pyfunction!(log_softmax, m)?)?;
    m.add_function(wrap_pyfunction!(auto_algorithm, m)?)?;
    m.add("SOFTMAX_ALGORITHMS", Algorithm::ALL.iter().map(|a| a.name()).collect::<Vec<_>>())?;
    Ok(())
}
