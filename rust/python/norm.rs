//! Bindings of RMSNorm, LayerNorm, CRMSNorm and their fused residual forms.

use super::rows::{out_or_new, same_shape, Eps, Half, Item};
use crate::simd::Element;
use super::runner::{with_float_type, Block, Call};
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

/// Which row-value arrays (`Call::row_values`, in this order) receive the
/// statistics: the index of mean's and of rstd's, when given.
#[derive(Clone, Copy)]
struct StatsSlots {
    mean: Option<usize>,
    rstd: Option<usize>,
}

impl StatsSlots {
    /// Adds `mean` and `rstd` (each optional) to `call` as row values.
    fn add<'a, T: Item, const I: usize, const O: usize, W: Item>(
        call: Call<'a, T, I, O, W>,
        mean: Option<&'a Bound<'_, PyAny>>,
        rstd: Option<&'a Bound<'_, PyAny>>,
    ) -> PyResult<(Call<'a, T, I, O, W>, StatsSlots)> {
        let mut call = call;
        if let Some(m) = mean {
            call = call.row_values("mean", m)?;
        }
        if let Some(r) = rstd {
            call = call.row_values("rstd", r)?;
        }
        Ok((call, StatsSlots { mean: mean.map(|_| 0), rstd: rstd.map(|_| usize::from(mean.is_some())) }))
    }

    /// The statistics of the block's rows, from its first row on (null
    /// where not asked for).
    fn of<T: Item, const I: usize, const O: usize, W: Item>(self, b: &Block<'_, '_, T, I, O, W>) -> RowStats<W> {
        let at = |slot: Option<usize>| slot.map_or(std::ptr::null_mut(), |k| b.value(k, b.rows().start));
        RowStats { mean: at(self.mean), rstd: at(self.rstd) }
    }
}

/// norm(x, out, kind, eps, weight=None, bias=None, mean=None, rstd=None):
/// the norm `kind` ("rms", "layer", "crms") of each row of `x` (along its
/// last axis) into `out` (x's shape and dtype; may be `x`; None: a new
/// array), which is returned, with optional weight /
/// bias of x's dtype and the row length, sharing no memory with `out`;
/// `eps` finite and >= 0 ([`Eps`]).
/// `mean` and `rstd`, when given, receive each row's statistics
/// (`kernels::RowStats`): C-contiguous arrays of x's dtype with one element
/// per row, apart from everything else. With `half` ("bfloat16" or
/// "float16"), x and out (and for `add_norm` residual and sum_out) are
/// `uint16` arrays holding that type; weight, bias and the statistics are
/// float32.
#[pyfunction]
#[pyo3(signature = (x, out, kind, eps, weight=None, bias=None, mean=None, rstd=None, *, half=None))]
#[allow(clippy::too_many_arguments)]
fn norm<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
    kind: Kind,
    eps: Eps,
    weight: Option<&Bound<'py, PyAny>>,
    bias: Option<&Bound<'py, PyAny>>,
    mean: Option<&Bound<'py, PyAny>>,
    rstd: Option<&Bound<'py, PyAny>>,
    half: Option<Half>,
) -> PyResult<Bound<'py, PyAny>> {
    with_float_type!(x, half = half, T => {
        let out = out_or_new::<T>("out", x, out)?;
        let call = Call::<T, 1, 1, <T as Element>::Real>::new([("x", x)], [("out", &out)])?.affine(weight, bias)?;
        let (call, slots) = StatsSlots::add(call, mean, rstd)?;
        call.run(py, |b| {
            let stats = slots.of(&b);
            // SAFETY: the runner's guarantee (`runner::Block`) covers the
            // batch's rows, the affine pointers and each row's value
            // element; a row-value array is C-contiguous with one element
            // per row, so element j after the block's first is row
            // start + j's, inside the block. No other thread touches the
            // block's rows (a split row's chunks are its own).
            unsafe {
                match b.split_len() {
                    Some(len) => {
                        for (j, (x, y)) in b.pairs().enumerate() {
                            kernels::norm_split_raw(b.isa(), kind.0, x, y, b.n(), eps.0, b.affine(), stats.row(j), len)
                        }
                    }
                    None => kernels::norm_rows_part_raw(b.isa(), kind.0, b.batch(), b.call_rows(), eps.0, b.affine(), stats),
                }
            }
        })?;
        Ok(out)
    })
}

/// add_norm(x, residual, out, sum_out, kind, eps, weight=None, bias=None,
/// mean=None, rstd=None): sum_out = x + residual and out = its norm
/// `kind`, in one pass per row, with the statistics of the sum as for
/// `norm`; returns (out, sum_out). residual, out and sum_out have x's
/// shape (out or sum_out None: a new array); out and sum_out must not
/// share memory; each may be x or residual; `eps` as for `norm`.
#[pyfunction]
#[pyo3(signature = (x, residual, out, sum_out, kind, eps, weight=None, bias=None, mean=None, rstd=None, *, half=None))]
#[allow(clippy::too_many_arguments)]
fn add_norm<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    residual: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
    sum_out: Option<&Bound<'py, PyAny>>,
    kind: Kind,
    eps: Eps,
    weight: Option<&Bound<'py, PyAny>>,
    bias: Option<&Bound<'py, PyAny>>,
    mean: Option<&Bound<'py, PyAny>>,
    rstd: Option<&Bound<'py, PyAny>>,
    half: Option<Half>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    with_float_type!(x, half = half, T => {
        let (out, sum_out) = (out_or_new::<T>("out", x, out)?, out_or_new::<T>("sum_out", x, sum_out)?);
        same_shape("residual", residual, x)?;
        let (inputs, outputs) = ([("x", x), ("residual", residual)], [("out", &out), ("sum_out", &sum_out)]);
        let call = Call::<T, 2, 2, <T as Element>::Real>::new(inputs, outputs)?.affine(weight, bias)?;
        let (call, slots) = StatsSlots::add(call, mean, rstd)?;
        call.run(py, |b| {
            let block = slots.of(&b);
            for (j, i) in b.rows().enumerate() {
                // SAFETY: the runner's guarantee (`runner::Block`): the out
                // and sum_out rows are valid and apart from each other, and
                // each is an input row exactly or overlaps neither input;
                // row i's value elements are the j-th after the block's
                // first (C-contiguous, one element per row).
                unsafe {
                    kernels::add_norm_raw(b.isa(), kind.0, b.input(0, i), b.input(1, i), b.output(1, i), b.output(0, i), b.n(), eps.0, b.affine(), block.row(j))
                }
            }
        })?;
        Ok((out, sum_out))
    })
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(norm, m)?)?;
    m.add_function(wrap_pyfunction!(add_norm, m)?)?;
    Ok(())
}
