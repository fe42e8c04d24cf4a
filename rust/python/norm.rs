//! Bindings of RMSNorm, LayerNorm, CRMSNorm and their fused residual forms.

use super::l1norm::channel;
use super::{active_isa, float_kind, FloatKind, RowsMut, RowsRef};
use crate::norm::{self as kernels, Affine, Norm};
use crate::simd::Element;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

fn parse_kind(name: &str) -> PyResult<Norm> {
    Norm::from_name(name).ok_or_else(|| {
        let names: Vec<_> = Norm::ALL.iter().map(|k| k.name()).collect();
        PyValueError::new_err(format!("norm: kind must be one of {names:?}, got {name:?}"))
    })
}

/// A copy of `v` that starts at the same offset from a 64-byte boundary
/// as `like` (the first input row). The kernels align their main loops on
/// the input rows; a weight that is aligned alike is then loaded without
/// straddling cache lines.
fn aligned_like<T: Copy + Default>(v: &[T], like: *const T, buf: &mut Vec<T>) -> usize {
    let size = std::mem::size_of::<T>();
    let slots = 64 / size;
    buf.resize(v.len() + slots, T::default());
    let want = like as usize % 64;
    let start = (0..slots).find(|&k| (buf.as_ptr() as usize + k * size) % 64 == want).unwrap_or(0);
    buf[start..start + v.len()].copy_from_slice(v);
    start
}

/// Weight and bias, checked against the row length and copied to start at
/// the same offset from a 64-byte boundary as the rows of `x`.
struct Channels<T> {
    weight: Option<(Vec<T>, usize)>,
    bias: Option<(Vec<T>, usize)>,
    n: usize,
}

impl<T: Element + numpy::Element> Channels<T> {
    fn new(weight: Option<&Bound<'_, PyAny>>, bias: Option<&Bound<'_, PyAny>>, x: &RowsRef<T>) -> PyResult<Self> {
        Ok(Channels { weight: Self::aligned("weight", weight, x)?, bias: Self::aligned("bias", bias, x)?, n: x.cols })
    }

    fn aligned(name: &str, array: Option<&Bound<'_, PyAny>>, x: &RowsRef<T>) -> PyResult<Option<(Vec<T>, usize)>> {
        let Some(array) = channel::<T>(name, array, x.cols)? else { return Ok(None) };
        let mut buf = Vec::new();
        let start = aligned_like(array.as_slice()?, x.ptr.0, &mut buf);
        Ok(Some((buf, start)))
    }

    fn affine(&self) -> Affine<T> {
        Affine::from_slices(aligned_part(&self.weight, self.n), aligned_part(&self.bias, self.n))
    }
}

/// The `n` elements a [`Channels`] buffer holds from its aligned start.
fn aligned_part<T>(channel: &Option<(Vec<T>, usize)>, n: usize) -> Option<&[T]> {
    channel.as_ref().map(|(buf, start)| &buf[*start..*start + n])
}

#[allow(clippy::too_many_arguments)]
fn run_norm<T: Element + numpy::Element>(
    py: Python<'_>,
    kind: Norm,
    x: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    eps: f64,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let isa = active_isa()?;
    let x = RowsRef::<T>::readonly("x", x)?;
    let y = RowsMut::<T>::writeable("out", out)?;
    x.same_shape("out", &y)?;
    let channels = Channels::new(weight, bias, &x)?;
    let mut scratch = Vec::new();
    let dest = y.destination(&[&x], &mut scratch);
    let work = || {
        crate::rows::for_each_row_range(x.rows, x.cols, |range| {
            // Rows were checked against the arrays' shapes and strides,
            // weight and bias against the row length.
            unsafe { kernels::norm_rows_raw(isa, kind, x.batch(&dest, range), eps, channels.affine()) }
        });
        if !scratch.is_empty() {
            unsafe { y.copy_rows_from(&dest) }
        }
    };
    super::without_gil_if_large(py, x.rows * x.cols, work);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_add_norm<T: Element + numpy::Element>(
    py: Python<'_>,
    kind: Norm,
    x: &Bound<'_, PyAny>,
    residual: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    sum_out: &Bound<'_, PyAny>,
    eps: f64,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let isa = active_isa()?;
    let x = RowsRef::<T>::readonly("x", x)?;
    let r = RowsRef::<T>::readonly("residual", residual)?;
    let y = RowsMut::<T>::writeable("out", out)?;
    let s = RowsMut::<T>::writeable("sum_out", sum_out)?;
    x.same_shape("residual", &r)?;
    x.same_shape("out", &y)?;
    x.same_shape("sum_out", &s)?;
    if y.overlaps_partially(&s) || (y.ptr.0 == s.ptr.0 && y.rows * y.cols > 0) {
        return Err(PyValueError::new_err("out and sum_out must not share memory"));
    }
    let channels = Channels::new(weight, bias, &x)?;
    let (mut y_scratch, mut s_scratch) = (Vec::new(), Vec::new());
    let y_dest = y.destination(&[&x, &r], &mut y_scratch);
    let s_dest = s.destination(&[&x, &r], &mut s_scratch);
    let work = || {
        crate::rows::for_each_row_range(x.rows, x.cols, |range| {
            let affine = channels.affine();
            for i in range {
                // As in run_norm; the outputs share no memory, and each is an
                // input exactly or overlaps none.
                unsafe { kernels::add_norm_raw(isa, kind, x.row(i), r.row(i), s_dest.row(i), y_dest.row(i), x.cols, eps, affine) }
            }
        });
        if !y_scratch.is_empty() {
            unsafe { y.copy_rows_from(&y_dest) }
        }
        if !s_scratch.is_empty() {
            unsafe { s.copy_rows_from(&s_dest) }
        }
    };
    super::without_gil_if_large(py, x.rows * x.cols, work);
    Ok(())
}

/// norm(x, out, kind, eps, weight=None, bias=None): the norm `kind`
/// ("rms", "layer", "crms") of each row of the 2-d array `x` into `out`
/// (same shape and dtype; may be `x`), with optional weight / bias of x's
/// dtype and the row length.
#[pyfunction]
#[pyo3(signature = (x, out, kind, eps, weight=None, bias=None))]
fn norm(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    kind: &str,
    eps: f64,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let kind = parse_kind(kind)?;
    match float_kind("x", x)? {
        FloatKind::F32 => run_norm::<f32>(py, kind, x, out, eps, weight, bias),
        FloatKind::F64 => run_norm::<f64>(py, kind, x, out, eps, weight, bias),
    }
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
    kind: &str,
    eps: f64,
    weight: Option<&Bound<'_, PyAny>>,
    bias: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let kind = parse_kind(kind)?;
    match float_kind("x", x)? {
        FloatKind::F32 => run_add_norm::<f32>(py, kind, x, residual, out, sum_out, eps, weight, bias),
        FloatKind::F64 => run_add_norm::<f64>(py, kind, x, residual, out, sum_out, eps, weight, bias),
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(norm, m)?)?;
    m.add_function(wrap_pyfunction!(add_norm, m)?)?;
    Ok(())
}
