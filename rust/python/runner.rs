//! The one binding runner: every `#[pyfunction]` that runs a row kernel
//! goes through [`Call`].
//!
//! ```text
//! Call::<T, I, O>::new(inputs, outputs)?   views, shape checks, outputs apart,
//!                                          scratch for partial overlap
//!     .affine(weight, bias)?               1-d, row length, apart from outputs,
//!                                          one aligned private copy
//!     .row_values(name, array)?            one value per row (up to two),
//!                                          apart from everything else
//! call.table(name, rows, index)?           a broadcast operand's rows, read
//!                                          by the kernel closure per row
//!     .run(py, |block| kernel(block))      GIL rule, threads, copy-back,
//!                                          panics become RuntimeError
//! ```
//!
//! Division of labour: the Python layer (`python/normkit`) owns dtype
//! promotion, `axis` handling, layout conversions and the error messages
//! users see; it hands over arrays that pass these checks. The runner owns
//! everything memory safety depends on (types, alignment, writeability,
//! shapes, strides, aliasing and overlap) and re-checks it on every call,
//! so calling `normkit._native` directly cannot make a kernel read or write
//! outside the arrays or write what it still has to read.

use super::rows::{active_isa, Channel, Item, Output, RowTable, RowValues, RowsRef};
use crate::dispatch::Isa;
use crate::l1norm::{Affine, RowBatch};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The GIL rule, the same for every kernel: a call releases the GIL when
/// it has at least this many elements (rows × row length). Below it,
/// releasing and retaking the GIL costs about as much as the kernel does
/// on a few thousand elements, and other Python threads gain nothing.
pub(crate) const GIL_RELEASE_MIN_ELEMENTS: usize = 1 << 14;

/// Runs `$body` with the type alias `$T` set to the element type of the
/// float array `$x` (f32 or f64; a `TypeError` for other arrays), or with
/// `half = Some(..)`, to the 16-bit type named, whose `uint16` data the
/// call then checks. Without `half`, only f32 and f64 are instantiated.
macro_rules! with_float_type {
    ($x:expr, half = $half:expr, $T:ident => $body:expr) => {
        match $crate::python::rows::float_kind("x", $x, $half)? {
            $crate::python::rows::FloatKind::F32 => {
                type $T = f32;
                $body
            }
            $crate::python::rows::FloatKind::F64 => {
                type $T = f64;
                $body
            }
            $crate::python::rows::FloatKind::Bf16 => {
                type $T = $crate::simd::bf16;
                $body
            }
            $crate::python::rows::FloatKind::F16 => {
                type $T = $crate::simd::f16;
                $body
            }
        }
    };
    ($x:expr, $T:ident => $body:expr) => {
        match $crate::python::rows::float_kind("x", $x, None)? {
            $crate::python::rows::FloatKind::F32 => {
                type $T = f32;
                $body
            }
            $crate::python::rows::FloatKind::F64 => {
                type $T = f64;
                $body
            }
            kind => unreachable!("{kind:?} without a half argument"),
        }
    };
}
pub(crate) use with_float_type;

/// One call of a row kernel over `I` input and `O` output arrays of `T` of
/// one shape (rows × `n`), checked, with per-channel weights and per-row
/// values of `W` (`T`, or f32 for 16-bit rows); see the module
/// documentation.
pub(crate) struct Call<'a, T, const I: usize, const O: usize, W = T> {
    isa: Isa,
    inputs: [RowsRef<'a, T>; I],
    outputs: [Output<'a, T>; O],
    weight: Option<Channel<W>>,
    bias: Option<Channel<W>>,
    values: [Option<RowValues<'a, W>>; MAX_ROW_VALUES],
}

/// The most per-row value arrays a call writes (a norm's mean and 1/std).
const MAX_ROW_VALUES: usize = 2;

/// `f` applied to each element of `a`, or the first error (without a heap
/// allocation: this runs on every call).
fn try_map<A, B, const N: usize>(a: [A; N], f: impl FnMut(A) -> PyResult<B>) -> PyResult<[B; N]> {
    let results = a.map(f);
    if let Some(k) = results.iter().position(Result::is_err) {
        return Err(results.into_iter().nth(k).and_then(Result::err).unwrap_or_else(|| unreachable!("an error at {k}")));
    }
    Ok(results.map(|r| r.unwrap_or_else(|_| unreachable!("no errors"))))
}

impl<'a, T: Item, const I: usize, const O: usize, W: Item> Call<'a, T, I, O, W> {
    /// Views of the named `inputs` (read-only) and `outputs` (writeable),
    /// all of the first input's shape. Outputs must not share memory with
    /// each other; one that partially overlaps an input is computed into a
    /// scratch buffer and copied back (exact aliasing, in place, is fine).
    pub fn new(inputs: [(&str, &'a Bound<'_, PyAny>); I], outputs: [(&'static str, &'a Bound<'_, PyAny>); O]) -> PyResult<Self> {
        const { assert!(I > 0) };
        let isa = active_isa()?;
        let names = inputs.map(|(name, _)| name);
        let inputs = try_map(inputs, |(name, array)| RowsRef::new(name, array))?;
        let outputs = try_map(outputs, |(name, array)| Output::new(name, array, &inputs))?;
        let x = inputs[0].grid;
        let grids = inputs.iter().map(|v| v.grid).chain(outputs.iter().map(|o| o.rows().grid));
        let all_names = names.iter().copied().chain(outputs.iter().map(|o| o.name()));
        for (grid, name) in grids.zip(all_names).skip(1) {
            if (grid.rows, grid.cols) != (x.rows, x.cols) {
                return Err(PyValueError::new_err(format!(
                    "{name}: shape ({}, {}) does not match {}'s ({}, {})",
                    grid.rows, grid.cols, names[0], x.rows, x.cols
                )));
            }
        }
        for (k, a) in outputs.iter().enumerate() {
            if let Some(b) = outputs[k + 1..].iter().find(|b| a.overlaps(b)) {
                return Err(PyValueError::new_err(format!("{} and {} must not share memory", a.name(), b.name())));
            }
        }
        Ok(Call { isa, inputs, outputs, weight: None, bias: None, values: [None, None] })
    }

    /// The row length.
    pub fn n(&self) -> usize {
        self.inputs[0].grid.cols
    }

    /// Adds the optional per-channel `weight` and `bias`: 1-d arrays of `W`
    /// and the row length, sharing no memory with any output (the kernel
    /// would overwrite them while reading them). Each is copied once, next
    /// to the rows' alignment (see [`Channel`]).
    pub fn affine(mut self, weight: Option<&Bound<'_, PyAny>>, bias: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let (n, like) = (self.n(), self.inputs[0].addr());
        let outputs = &self.outputs;
        let channel = |name, array: Option<&Bound<'_, PyAny>>| array.map(|a| Channel::new(name, a, n, like, outputs)).transpose();
        let (weight, bias) = (channel("weight", weight)?, channel("bias", bias)?);
        self.weight = weight;
        self.bias = bias;
        Ok(self)
    }

    /// Adds an array receiving one value per row (see [`RowValues`]); at
    /// most [`MAX_ROW_VALUES`], read back in order by [`Block::value`].
    pub fn row_values(mut self, name: &'static str, array: &'a Bound<'_, PyAny>) -> PyResult<Self> {
        let values = RowValues::new(name, array, self.inputs[0].grid.rows, &self.inputs, &self.outputs)?;
        if let Some(other) = self.values.iter().flatten().find(|v| v.overlaps(&values)) {
            return Err(PyValueError::new_err(format!("{name} and {} must not share memory", other.name())));
        }
        let Some(slot) = self.values.iter_mut().find(|v| v.is_none()) else {
            return Err(PyRuntimeError::new_err("normkit internal error: too many row-value outputs"));
        };
        *slot = Some(values);
        Ok(self)
    }

    /// The rows of an operand broadcast against the call's rows (see
    /// [`RowTable`]): checked against its shape, apart from every output.
    /// The kernel closure reads row `i`'s through [`RowTable::row`].
    pub fn table<U: Item>(&self, name: &'static str, table: &'a Bound<'_, PyAny>, index: &'a Bound<'_, PyAny>) -> PyResult<RowTable<'a, U>> {
        RowTable::new(name, table, index, self.inputs[0].grid.rows, self.n(), &self.outputs)
    }

    /// Runs `kernel` over blocks of consecutive rows that together cover
    /// every row once (up to 16 blocks per thread for large calls), then
    /// copies scratch outputs back. The GIL is released for calls of
    /// [`GIL_RELEASE_MIN_ELEMENTS`] elements or more. A panic (a bug) is a
    /// `RuntimeError`, never a `PanicException`.
    pub fn run<K>(self, py: Python<'_>, kernel: K) -> PyResult<()>
    where
        K: Fn(Block<'_, 'a, T, I, O, W>) + Send + Sync,
    {
        let Call { isa, inputs, outputs, weight, bias, values } = self;
        let (rows, n) = (inputs[0].grid.rows, inputs[0].grid.cols);
        // Read once, so that every block splits rows (and picks an
        // algorithm) alike even if another thread changes the count.
        let threads = crate::rows::num_threads();
        let work = || {
            catch_unwind(AssertUnwindSafe(|| {
                crate::rows::for_each_row_range(rows, n, |range| {
                    let affine = Affine::from_slices(weight.as_ref().map(Channel::as_slice), bias.as_ref().map(Channel::as_slice));
                    kernel(Block { isa, n, range, threads, affine, inputs: &inputs, outputs: &outputs, values: &values })
                });
                outputs.iter().for_each(Output::copy_back);
            }))
        };
        let done = if rows.saturating_mul(n) >= GIL_RELEASE_MIN_ELEMENTS { py.detach(work) } else { work() };
        done.map_err(|panic| {
            let what = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
            PyRuntimeError::new_err(format!("normkit internal error: {}", what.unwrap_or_else(|| "panic".into())))
        })
    }
}

/// The rows `range` of a [`Call`], handed to its kernel.
///
/// The runner's guarantee, on which each binding's `unsafe` kernel call
/// rests: for every `i` in `range`, and for the duration of the kernel
/// call,
/// * `input(k, i)` is valid for reading `n` elements;
/// * `output(k, i)` is valid for writing `n` elements, and no other thread
///   reads or writes it;
/// * each output row is either the very same pointer as row `i` of an input
///   (in place) or overlaps no row of that input; distinct outputs overlap
///   nowhere;
/// * the non-null pointers of `affine` are valid for reading `n` elements
///   and overlap no output;
/// * `value(k, i)`, for each row-value array `k` the call has, is valid for
///   writing one element, no other thread reads or writes it, and it
///   overlaps no input, output or other value;
/// * `isa` is supported by this CPU.
///
/// The fields are private, so a kernel closure cannot change what the
/// guarantee is about.
pub(crate) struct Block<'b, 'a, T, const I: usize, const O: usize, W = T> {
    isa: Isa,
    n: usize,
    range: Range<usize>,
    /// The thread count, read once per call.
    threads: usize,
    affine: Affine<W>,
    inputs: &'b [RowsRef<'a, T>; I],
    outputs: &'b [Output<'a, T>; O],
    values: &'b [Option<RowValues<'a, W>>; MAX_ROW_VALUES],
}

impl<T: Item, const I: usize, const O: usize, W: Item> Block<'_, '_, T, I, O, W> {
    /// The instruction set to run at (supported by this CPU).
    #[inline]
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The row length.
    #[inline]
    pub fn n(&self) -> usize {
        self.n
    }

    /// The block's rows.
    #[inline]
    pub fn rows(&self) -> Range<usize> {
        self.range.clone()
    }

    /// The rows of the whole call (of every block).
    #[inline]
    pub fn call_rows(&self) -> usize {
        self.inputs[0].grid.rows
    }

    /// The chunk length to split each row of the call across the pool
    /// with, when its rows are few and long (see [`crate::rows::split_len`]).
    #[inline]
    pub fn split_len(&self) -> Option<usize> {
        crate::rows::split_len(self.threads, self.call_rows(), self.n)
    }

    /// The threads working on the call, for a kernel that splits rows as
    /// [`Block::split_len`] says (`splits`) or never splits them (see
    /// [`crate::rows::call_threads`]).
    #[inline]
    pub fn call_threads(&self, splits: bool) -> usize {
        crate::rows::call_threads(self.threads, self.call_rows(), self.n, splits)
    }

    /// Weight and bias (null when absent).
    #[inline]
    pub fn affine(&self) -> Affine<W> {
        self.affine
    }

    /// Row `i` of input `k`.
    #[inline]
    pub fn input(&self, k: usize, i: usize) -> *const T {
        self.inputs[k].row(i)
    }

    /// Where the kernel writes row `i` of output `k`.
    #[inline]
    pub fn output(&self, k: usize, i: usize) -> *mut T {
        self.outputs[k].dest().row(i)
    }

    /// Where row `i`'s value goes in row-value array `k` (in the order of
    /// [`Call::row_values`]). Panics when the call has no such array.
    #[inline]
    pub fn value(&self, k: usize, i: usize) -> *mut W {
        self.values[k].as_ref().expect("a row-value array the call was given").at(i)
    }

    /// (input 0, output 0) row pointers for each row of the block.
    pub fn pairs(&self) -> impl Iterator<Item = (*const T, *mut T)> + '_ {
        self.range.clone().map(|i| (self.input(0, i), self.output(0, i)))
    }

    /// The block's rows of input 0 into output 0 as one kernel batch.
    pub fn batch(&self) -> RowBatch<T> {
        let (x, y) = (&self.inputs[0], self.outputs[0].dest());
        let (x0, y0) = (x.row(self.range.start), y.row(self.range.start));
        RowBatch { x: x0, x_stride: x.stride(), y: y0, y_stride: y.stride(), rows: self.range.len(), n: self.n }
    }
}
