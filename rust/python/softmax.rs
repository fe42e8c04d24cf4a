//! Bindings of the softmax family.

use super::rows::{active_isa, out_or_new, Half};
use super::runner::{with_float_type, Block, Call};
use crate::rows;
use crate::simd::{Element, Real};
use crate::softmax::{self as kernels, Algorithm, AutoCall};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;

/// The `algorithm` argument, parsed once at the boundary: `None` is
/// "auto", chosen per call from the row length.
#[derive(Clone, Copy, Debug)]
struct AlgorithmArg(Option<Algorithm>);

impl<'a, 'py> FromPyObject<'a, 'py> for AlgorithmArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let name = obj.extract::<PyBackedStr>()?;
        if &*name == "auto" {
            return Ok(AlgorithmArg(None));
        }
        Algorithm::from_name(&name).map(|a| AlgorithmArg(Some(a))).ok_or_else(|| {
            let names: Vec<_> = Algorithm::ALL.iter().map(|a| a.name()).collect();
            PyValueError::new_err(format!("softmax: algorithm must be \"auto\" or one of {names:?}, got {:?}", &*name))
        })
    }
}

/// The call as `auto` sees it (`splits`: the kernel splits long rows as
/// [`Block::split_len`] says).
fn auto_call<T, const I: usize, const O: usize, W>(b: &Block<'_, '_, T, I, O, W>, splits: bool) -> AutoCall
where
    T: super::rows::Item,
    W: super::rows::Item,
{
    AutoCall { len: b.n(), rows: b.call_rows(), threads: b.call_threads(splits) }
}

/// softmax(x, out, algorithm): softmax of each row of `x` (along its last
/// axis) into `out` (x's shape and dtype; may be `x` itself; None: a new
/// array), which is returned.
#[pyfunction]
#[pyo3(signature = (x, out, algorithm, *, half=None))]
fn softmax<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
    algorithm: AlgorithmArg,
    half: Option<Half>,
) -> PyResult<Bound<'py, PyAny>> {
    with_float_type!(x, half = half, T => {
        let out = out_or_new::<T>("out", x, out)?;
        Call::<T, 1, 1>::new([("x", x)], [("out", &out)])?.run(py, |b| {
            let algorithm = algorithm.0.unwrap_or_else(|| Algorithm::auto(auto_call(&b, true), size_of::<T>(), b.isa()));
            match b.split_len() {
                // SAFETY: the runner's guarantee (`runner::Block`): the block's
                // rows hold `b.n()` valid elements, each output row is its input
                // row or overlaps no row of x, and no other thread touches them.
                None => unsafe { kernels::softmax_rows_raw(b.isa(), algorithm, b.batch()) },
                Some(len) => {
                    for (x, y) in b.pairs() {
                        // SAFETY: as above, for one row (the split's chunks are
                        // the row's own).
                        unsafe { kernels::softmax_split_raw(b.isa(), algorithm, x, y, b.n(), len) }
                    }
                }
            }
        })?;
        Ok(out)
    })
}

/// log_softmax(x, out): log-softmax of each row of `x` into `out`, as for
/// `softmax`.
#[pyfunction]
#[pyo3(signature = (x, out, *, half=None))]
fn log_softmax<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, out: Option<&Bound<'py, PyAny>>, half: Option<Half>) -> PyResult<Bound<'py, PyAny>> {
    with_float_type!(x, half = half, T => {
        let out = out_or_new::<T>("out", x, out)?;
        Call::<T, 1, 1>::new([("x", x)], [("out", &out)])?.run(py, |b| {
            match b.split_len() {
                // SAFETY: as in `softmax`.
                None => unsafe { kernels::log_softmax_rows_raw(b.isa(), b.batch()) },
                Some(len) => {
                    for (x, y) in b.pairs() {
                        // SAFETY: as in `softmax`.
                        unsafe { kernels::log_softmax_split_raw(b.isa(), x, y, b.n(), len) }
                    }
                }
            }
        })?;
        Ok(out)
    })
}

/// softmax_fused(x, out, algorithm, log, scale, bias, bias_index, mask,
/// mask_index): softmax (log-softmax with `log`) of each row of
/// `scale * x + bias` over the entries `mask` keeps. `bias` (of x's dtype)
/// and `mask` (bool) are tables of rows with an intp index giving each row
/// of x its table row (see `rows::RowTable`); either may be None.
#[pyfunction]
#[pyo3(signature = (x, out, algorithm, log, scale, bias=None, bias_index=None, mask=None, mask_index=None))]
#[allow(clippy::too_many_arguments)]
fn softmax_fused(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    algorithm: AlgorithmArg,
    log: bool,
    scale: f64,
    bias: Option<&Bound<'_, PyAny>>,
    bias_index: Option<&Bound<'_, PyAny>>,
    mask: Option<&Bound<'_, PyAny>>,
    mask_index: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    if !scale.is_finite() {
        return Err(PyValueError::new_err(format!("softmax: scale must be finite, got {scale}")));
    }
    with_float_type!(x, T => {
        let call = Call::<T, 1, 1>::new([("x", x)], [("out", out)])?;
        let bias = match (bias, bias_index) {
            (Some(t), Some(k)) => Some(call.table::<T>("bias", t, k)?),
            (None, None) => None,
            _ => return Err(PyValueError::new_err("softmax_fused: bias and bias_index go together")),
        };
        let mask = match (mask, mask_index) {
            (Some(t), Some(k)) => Some(call.table::<u8>("where", t, k)?),
            (None, None) => None,
            _ => return Err(PyValueError::new_err("softmax_fused: mask and mask_index go together")),
        };
        let scale = T::from_f64(scale);
        call.run(py, |b| {
            // Fused rows are never split.
            let algorithm = (!log).then(|| algorithm.0.unwrap_or_else(|| Algorithm::auto(auto_call(&b, false), size_of::<T>(), b.isa())));
            for i in b.rows() {
                let fused = kernels::Fused {
                    scale,
                    bias: bias.as_ref().map_or(std::ptr::null(), |t| t.row(i)),
                    mask: mask.as_ref().map_or(std::ptr::null(), |t| t.row(i)),
                };
                // SAFETY: the runner's guarantee (`runner::Block`) for x and
                // out; the tables' rows hold `b.n()` elements and overlap no
                // output (`RowTable`'s invariant).
                unsafe { kernels::softmax_fused_raw(b.isa(), algorithm, fused, b.input(0, i), b.output(0, i), b.n()) }
            }
        })
    })
}

/// logsumexp(x, out): ln(sum(exp(row))) of each row of `x` into `out`, an
/// array with one element per row.
#[pyfunction]
#[pyo3(signature = (x, out, *, half=None))]
fn logsumexp(py: Python<'_>, x: &Bound<'_, PyAny>, out: &Bound<'_, PyAny>, half: Option<Half>) -> PyResult<()> {
    with_float_type!(x, half = half, T => Call::<T, 1, 0>::new([("x", x)], [])?.row_values("out", out)?.run(py, |b| {
        let split = b.split_len();
        for i in b.rows() {
            // SAFETY: the runner's guarantee (`runner::Block`): input row `i`
            // holds `b.n()` valid elements and `value(0, i)` is this row's own
            // writeable element, apart from every input.
            unsafe {
                let (x, n) = (b.input(0, i), b.n());
                let lse = match split {
                    Some(len) => kernels::logsumexp_split_raw(b.isa(), x, n, len),
                    None => kernels::logsumexp_raw(b.isa(), x, n),
                };
                *b.value(0, i) = T::round_from_f64(lse);
            }
        }
    }))
}

/// The algorithm "auto" picks for a plain softmax call (not the fused
/// form) of `rows` rows of `n` elements of `itemsize` bytes at the active
/// instruction set and thread count.
#[pyfunction]
#[pyo3(signature = (n, itemsize, rows=1))]
fn auto_algorithm(n: usize, itemsize: usize, rows: usize) -> PyResult<&'static str> {
    let call = AutoCall { len: n, rows, threads: rows::call_threads(rows::num_threads(), rows, n, true) };
    Ok(Algorithm::auto(call, itemsize, active_isa()?).name())
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(softmax, m)?)?;
    m.add_function(wrap_pyfunction!(log_softmax, m)?)?;
    m.add_function(wrap_pyfunction!(logsumexp, m)?)?;
    m.add_function(wrap_pyfunction!(softmax_fused, m)?)?;
    m.add_function(wrap_pyfunction!(auto_algorithm, m)?)?;
    m.add("SOFTMAX_ALGORITHMS", Algorithm::ALL.iter().map(|a| a.name()).collect::<Vec<_>>())?;
    Ok(())
}
