//! Bindings of RMSNorm, LayerNorm, CRMSNorm and their fused residual forms.

use super::runner::{with_float_type, Call};
use crate::norm::{self as kernels, Norm, RowStats};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;

/// The `kind` argument ("rms", "layer", "crms"), parsed once at the boundary.
#[derive(Clone, Copy, Debug)]
struct Kind(Norm);

impl<'a, 'py> FromPyObject<'a, 'py> for Kind {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let name = obj.extract::<PyBackedStr>()?;
        Norm::from_name(&name).map(Kind).ok_or_else(|| {
            let names: Vec<_> = Norm::ALL.iter().map(|k| k.name()).collect();
            PyValueError::new_err(format!("norm: kind must be one of {names:?}, got {:?}", &*name))
        })
    }
}

/// norm(x, out, kind, eps, weight=None, bias=None): the norm `kind`
/// ("rms", "layer", "crms") of each row of the 2-d array `x` into `out`
/// (same shape and dtype; may be `x`), with optional weight / bias of x's
/// dtype and the row length, sharing no memory with `out`.
#[pyfunction]
#[pyo3(signature = (x, out, kind, eps, weight=None, bias=None))]
fn norm(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    kind: Kind,
    eps: f64,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    with_float_type!(x, T => Call::<T, 1, 1>::new([("x", x)], [("out", out)])?.affine(weight, bias)?.run(py, |b| {
        // SAFETY: the runner's guarantee (`runner::Block`) covers the batch's
        // rows and the affine pointers.
        unsafe { kernels::norm_rows_raw(b.isa(), kind.0, b.batch(), eps, b.affine(), RowStats::NONE) }
    }))
}

/// add_norm(x, residual, out, sum_out, kind, eps, weight=None, bias=None):
/// sum_out = x + residual and out = its norm `kind`, in one pass per row.
/// out and sum_out must not share memory; each may be x or residual.
#[pyfunction]
#[pyo3(signature = (x, residual, out, sum_out, kind, eps, weight=None, bias=None))]
#[allow(clippy::too_many_arguments)]
fn add_norm(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    residual: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    sum_out: &Bound<'_, PyAny>,
    kind: Kind,
    eps: f64,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let (inputs, outputs) = ([("x", x), ("residual", residual)], [("out", out), ("sum_out", sum_out)]);
    with_float_type!(x, T => Call::<T, 2, 2>::new(inputs, outputs)?.affine(weight, bias)?.run(py, |b| {
        for i in b.rows() {
            // SAFETY: the runner's guarantee (`runner::Block`): the out and
            // sum_out rows are valid and apart from each other, and each is
            // an input row exactly or overlaps neither input.
            unsafe { kernels::add_norm_raw(b.isa(), kind.0, b.input(0, i), b.input(1, i), b.output(1, i), b.output(0, i), b.n(), eps, b.affine(), RowStats::NONE) }
        }
    }))
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(norm, m)?)?;
    m.add_function(wrap_pyfunction!(add_norm, m)?)?;
    Ok(())
}
