//! Checked 2-D row views of NumPy arrays, shared by every binding.

use crate::dispatch::{self, Isa};
use crate::rows::SharedPtr;
use numpy::npyffi::flags::{NPY_ARRAY_ALIGNED, NPY_ARRAY_WRITEABLE};
use numpy::{PyArray2, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

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

/// The element type of a 2-D float32 / float64 array.
pub(crate) fn float_kind(name: &str, array: &Bound<'_, PyAny>) -> PyResult<FloatKind> {
    if array.cast::<PyArray2<f32>>().is_ok() {
        Ok(FloatKind::F32)
    } else if array.cast::<PyArray2<f64>>().is_ok() {
        Ok(FloatKind::F64)
    } else {
        let what = match array.cast::<PyUntypedArray>() {
            Ok(a) => format!("a {}-d array of dtype {}", a.ndim(), a.dtype()),
            Err(_) => format!("an object of type {}", array.get_type().name()?),
        };
        Err(PyTypeError::new_err(format!("{name}: expected a 2-d float32 or float64 array, got {what}")))
    }
}

fn flags(array: &Bound<'_, PyUntypedArray>) -> i32 {
    unsafe { (*array.as_array_ptr()).flags }
}

/// A checked view of a 2-D array whose rows are contiguous: `rows` rows of
/// `cols` elements, row `i` starting `i * stride` elements after `ptr`.
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
        let array = array.cast::<PyArray2<T>>().map_err(|_| {
            PyTypeError::new_err(format!("{name}: expected a 2-d array of {}", std::any::type_name::<T>()))
        })?;
        let untyped = array.as_untyped();
        let size = std::mem::size_of::<T>() as isize;
        let (rows, cols) = (array.shape()[0], array.shape()[1]);
        let strides = array.strides();
        if flags(untyped) & NPY_ARRAY_ALIGNED == 0 {
            return Err(PyValueError::new_err(format!("{name}: array is not aligned")));
        }
        if writeable && flags(untyped) & NPY_ARRAY_WRITEABLE == 0 {
            return Err(PyValueError::new_err(format!("{name}: array is read-only")));
        }
        if cols > 1 && strides[1] != size {
            return Err(PyValueError::new_err(format!("{name}: rows must be contiguous")));
        }
        if rows > 1 && strides[0] % size != 0 {
            return Err(PyValueError::new_err(format!("{name}: row stride is not a multiple of the item size")));
        }
        if writeable && rows > 1 && cols > 0 && strides[0].unsigned_abs() < cols * size as usize {
            return Err(PyValueError::new_err(format!("{name}: rows of a writeable array overlap")));
        }
        let stride = if rows > 1 { strides[0] / size } else { cols as isize };
        Ok(RowView { ptr: SharedPtr(array.data()), rows, cols, stride })
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

    /// Pointer to the first element of row `i`.
    ///
    /// # Safety
    /// `i < self.rows`.
    #[inline]
    pub unsafe fn row(&self, i: usize) -> *mut T {
        self.ptr.row(i, self.stride)
    }
}
