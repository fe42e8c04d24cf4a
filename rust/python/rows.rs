//! Checked 2-D row views of NumPy arrays, shared by every binding.

use crate::dispatch::{self, Isa};
use crate::l1norm::RowBatch;
use crate::rows::SharedPtr;
use numpy::npyffi::flags::{NPY_ARRAY_ALIGNED, NPY_ARRAY_WRITEABLE};
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::ops::Range;

/// The instruction set the kernels run at.
pub(crate) fn active_isa() -> PyResult<Isa> {
    dispatch::active().map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// The floating-point types the kernels are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FloatKind {
    F32,
    F64,
}

/// The element type of a float32 / float64 array.
pub(crate) fn float_kind(name: &str, array: &Bound<'_, PyAny>) -> PyResult<FloatKind> {
    if array.cast::<PyArrayDyn<f32>>().is_ok() {
        Ok(FloatKind::F32)
    } else if array.cast::<PyArrayDyn<f64>>().is_ok() {
        Ok(FloatKind::F64)
    } else {
        let what = match array.cast::<PyUntypedArray>() {
            Ok(a) => format!("an array of dtype {}", a.dtype()),
            Err(_) => format!("an object of type {}", array.get_type().name()?),
        };
        Err(PyTypeError::new_err(format!("{name}: expected a float32 or float64 array, got {what}")))
    }
}

fn flags(array: &Bound<'_, PyUntypedArray>) -> i32 {
    unsafe { (*array.as_array_ptr()).flags }
}

/// A checked view of an array as rows along its last axis: `rows` rows of
/// `cols` contiguous elements, row `i` starting `i * stride` elements after
/// `ptr`. A 2-d array may have any row stride; other ranks must be
/// C-contiguous (the Python layer reshapes what is not).
#[derive(Debug)]
pub(crate) struct RowView<T> {
    pub ptr: SharedPtr<T>,
    pub rows: usize,
    pub cols: usize,
    pub stride: isize,
}

impl<T> Clone for RowView<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for RowView<T> {}

pub(crate) type RowsRef<T> = RowView<T>;
pub(crate) type RowsMut<T> = RowView<T>;

impl<T: numpy::Element> RowView<T> {
    fn new(name: &str, array: &Bound<'_, PyAny>, writeable: bool) -> PyResult<Self> {
        let array = array.cast::<PyArrayDyn<T>>().map_err(|_| {
            PyTypeError::new_err(format!("{name}: expected an array of {}", std::any::type_name::<T>()))
        })?;
        let untyped = array.as_untyped();
        let flags = flags(untyped);
        if flags & NPY_ARRAY_ALIGNED == 0 {
            return Err(PyValueError::new_err(format!("{name}: array is not aligned")));
        }
        if writeable && flags & NPY_ARRAY_WRITEABLE == 0 {
            return Err(PyValueError::new_err(format!("{name}: array is read-only")));
        }
        let shape = array.shape();
        let Some((&cols, outer)) = shape.split_last() else {
            return Err(PyValueError::new_err(format!("{name}: a 0-d array has no rows")));
        };
        let rows = outer.iter().product::<usize>();
        let stride = if shape.len() == 2 {
            Self::row_stride(name, array.strides(), rows, cols, writeable)?
        } else if array.is_c_contiguous() {
            cols as isize
        } else {
            return Err(PyValueError::new_err(format!("{name}: a {}-d array must be C-contiguous", shape.len())));
        };
        Ok(RowView { ptr: SharedPtr(array.data()), rows, cols, stride })
    }

    /// The row stride in elements of a 2-d array with byte strides `strides`.
    fn row_stride(name: &str, strides: &[isize], rows: usize, cols: usize, writeable: bool) -> PyResult<isize> {
        let size = std::mem::size_of::<T>() as isize;
        if cols > 1 && strides[1] != size {
            return Err(PyValueError::new_err(format!("{name}: rows must be contiguous")));
        }
        if rows > 1 && strides[0] % size != 0 {
            return Err(PyValueError::new_err(format!("{name}: row stride is not a multiple of the item size")));
        }
        if writeable && rows > 1 && cols > 0 && strides[0].unsigned_abs() < cols * size as usize {
            return Err(PyValueError::new_err(format!("{name}: rows of a writeable array overlap")));
        }
        Ok(if rows > 1 { strides[0] / size } else { cols as isize })
    }

    pub fn readonly(name: &str, array: &Bound<'_, PyAny>) -> PyResult<Self> {
        Self::new(name, array, false)
    }

    pub fn writeable(name: &str, array: &Bound<'_, PyAny>) -> PyResult<Self> {
        Self::new(name, array, true)
    }

    /// Errors unless `other` has the same shape.
    pub fn same_shape<U>(&self, name: &str, other: &RowView<U>) -> PyResult<()> {
        if (self.rows, self.cols) != (other.rows, other.cols) {
            return Err(PyValueError::new_err(format!(
                "{name}: shape ({}, {}) does not match ({}, {})",
                other.rows, other.cols, self.rows, self.cols
            )));
        }
        Ok(())
    }

    /// A contiguous view of `scratch`, resized to `rows * cols` elements.
    pub fn scratch(scratch: &mut Vec<T>, rows: usize, cols: usize) -> Self
    where
        T: Default + Clone,
    {
        scratch.resize(rows * cols, T::default());
        RowView { ptr: SharedPtr(scratch.as_mut_ptr()), rows, cols, stride: cols as isize }
    }

    /// Copies every row of `src` (same shape, no overlap) into `self`.
    ///
    /// # Safety
    /// Both views must be valid and `self` writeable.
    pub unsafe fn copy_rows_from(&self, src: &RowView<T>) {
        for i in 0..self.rows {
            std::ptr::copy_nonoverlapping(src.row(i), self.row(i), self.cols);
        }
    }

    /// The byte range the rows span.
    fn span(&self) -> (usize, usize) {
        let size = std::mem::size_of::<T>() as isize;
        let last = (self.rows.max(1) as isize - 1) * self.stride * size;
        let start = self.ptr.0 as isize + last.min(0);
        let end = self.ptr.0 as isize + last.max(0) + self.cols as isize * size;
        (start as usize, end as usize)
    }

    /// True when the two views share memory without being the very same
    /// elements. Exact aliasing (in place) is fine for every kernel: each
    /// reads an element before writing it.
    pub fn overlaps_partially(&self, other: &RowView<T>) -> bool {
        if self.rows == 0 || self.cols == 0 || other.rows == 0 || other.cols == 0 {
            return false;
        }
        let (a, b) = (self.span(), other.span());
        let disjoint = a.1 <= b.0 || b.1 <= a.0;
        let same = self.ptr.0 == other.ptr.0 && (self.rows <= 1 || self.stride == other.stride);
        !disjoint && !same
    }

    /// Where a kernel writes this output view: the view itself, or a
    /// scratch buffer of its shape when it partially overlaps one of
    /// `inputs` (the kernels allow only exact aliasing). When `scratch` is
    /// used, copy it back with `copy_rows_from` after the kernel.
    pub fn destination(self, inputs: &[&RowView<T>], scratch: &mut Vec<T>) -> Self
    where
        T: Default + Clone,
    {
        if inputs.iter().any(|x| x.overlaps_partially(&self)) {
            Self::scratch(scratch, self.rows, self.cols)
        } else {
            self
        }
    }

    /// Rows `range` of this input view and of `out`, as one kernel batch.
    ///
    /// # Safety
    /// `range` lies within both views' rows.
    pub unsafe fn batch(&self, out: &RowView<T>, range: Range<usize>) -> RowBatch<T> {
        RowBatch {
            x: self.row(range.start),
            x_stride: self.stride,
            y: out.row(range.start),
            y_stride: out.stride,
            rows: range.len(),
            n: self.cols,
        }
    }

    /// Pointer to the first element of row `i`.
    ///
    /// # Safety
    /// `i < self.rows`.
    #[inline]
    pub unsafe fn row(&self, i: usize) -> *mut T {
        self.ptr.row(i, self.stride)
    }
}
