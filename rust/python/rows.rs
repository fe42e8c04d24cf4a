//! Checked views of NumPy arrays, the parts the binding runner
//! (`runner.rs`) is built from: read-only rows ([`RowsRef`]), writeable rows
//! ([`RowsMut`]) and private copies of per-channel weights ([`Channel`]);
//! and the outputs a binding allocates when given None ([`out_or_new`]).
//!
//! A view is only made after the checks its type promises, and it borrows
//! the array object it came from, so it cannot outlive it. Row pointers are
//! computed with wrapping arithmetic (no `unsafe` needed to *form* them);
//! what the types guarantee is that, for `i < rows`, row `i` lies inside the
//! array's buffer. Reading or writing through the pointers is the kernels'
//! `unsafe` contract, which the runner discharges.
//!
//! Concurrency: while the GIL is released, another Python thread could write
//! an input or output array. That is a race in the caller's program, exactly
//! as for NumPy's own ufuncs (which also release the GIL); it can give wrong
//! numbers but never make a kernel read or write outside the arrays.

use crate::dispatch::{self, Isa};
use crate::simd::{bf16, f16};
use numpy::npyffi::flags::NPY_ARRAY_WRITEABLE;
use numpy::npyffi::{npy_intp, NpyTypes, PY_ARRAY_API};
use numpy::{PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::ffi::c_int;
use std::marker::PhantomData;

/// The element types the bindings hand to kernels, with the NumPy element
/// type their arrays are checked as (`Array`): the type itself; `uint16`
/// for bfloat16 and float16, which the Python layer passes as `uint16`
/// views (rust-numpy finds bfloat16 through `ml_dtypes` and panics when it
/// was never imported; float16 follows for one rule); and `u8` for the
/// bytes of a NumPy bool array, which may hold any byte (a uint8 array
/// viewed as bool keeps its 2s), so they are never read as Rust `bool`s.
///
/// # Safety
/// `Self` and `Self::Array` have the same size and alignment, and every bit
/// pattern of an `Array` is a valid `Self`.
pub(crate) unsafe trait Item: Copy + Default + Send + Sync + 'static {
    type Array: numpy::Element;
}

macro_rules! items {
    ($($t:ty => $array:ty),+) => {
        // SAFETY: each type is its own array type, a 16-bit float (a
        // `repr(transparent)` u16 in `half`) checked as uint16, or u8 checked
        // as bool (one byte, and every byte is a valid u8).
        $(unsafe impl Item for $t {
            type Array = $array;
        })+
    };
}

items!(f32 => f32, f64 => f64, i8 => i8, u8 => bool, isize => isize, bf16 => u16, f16 => u16);

/// The instruction set the kernels run at.
pub(crate) fn active_isa() -> PyResult<Isa> {
    dispatch::active().map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// The floating-point types the kernels are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FloatKind {
    F32,
    F64,
    Bf16,
    F16,
}

/// The `half` argument of the bindings: which 16-bit float a `uint16`
/// array holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Half(FloatKind);

impl<'a, 'py> FromPyObject<'a, 'py> for Half {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        match &*obj.extract::<pyo3::pybacked::PyBackedStr>()? {
            "bfloat16" => Ok(Half(FloatKind::Bf16)),
            "float16" => Ok(Half(FloatKind::F16)),
            other => Err(PyValueError::new_err(format!("half must be \"bfloat16\" or \"float16\", got {other:?}"))),
        }
    }
}

/// The `eps` argument of the norm and L1-norm bindings: a float, finite
/// and >= 0. The Python layer hands a float `eps` over unchecked on the
/// norms' direct path (`_norm` / `_add_norm`), so the refusal is here; it
/// then raises its own message from `_rowwise.check_eps`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Eps(pub(crate) f64);

impl<'a, 'py> FromPyObject<'a, 'py> for Eps {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let eps = obj.extract::<f64>()?;
        if eps.is_finite() && eps >= 0.0 {
            Ok(Eps(eps))
        } else {
            Err(PyValueError::new_err(format!("eps must be finite and >= 0, got {eps}")))
        }
    }
}

/// The element type of a float32 / float64 array, or the 16-bit type
/// `half` names (its `uint16` data is checked with the other arrays).
pub(crate) fn float_kind(name: &str, array: &Bound<'_, PyAny>, half: Option<Half>) -> PyResult<FloatKind> {
    if let Some(Half(kind)) = half {
        Ok(kind)
    } else if array.cast::<PyArrayDyn<f32>>().is_ok() {
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

/// `array` as an array of `T` (native byte order), or a `TypeError`
/// saying it should be `what` ("an array", "a 1-d array") of `T`.
fn typed<'a, 'py, T: Item>(name: &str, array: &'a Bound<'py, PyAny>, what: &str) -> PyResult<&'a Bound<'py, PyArrayDyn<T::Array>>> {
    array.cast::<PyArrayDyn<T::Array>>().map_err(|_| {
        let want = numpy::dtype::<T::Array>(array.py());
        let got = match array.cast::<PyUntypedArray>() {
            Ok(a) => format!("an array of dtype {}", a.dtype()),
            Err(_) => format!("an object of type {}", array.get_type()),
        };
        PyTypeError::new_err(format!("{name}: expected {what} of {want} (native byte order), got {got}"))
    })
}

/// `array` as an aligned array of `T` (what every row view needs).
fn aligned<'a, 'py, T: Item>(name: &str, array: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, PyArrayDyn<T::Array>>> {
    let array = typed::<T>(name, array, "an array")?;
    if !array.is_aligned() {
        return Err(PyValueError::new_err(format!("{name}: array is not aligned")));
    }
    Ok(array)
}

fn is_writeable(array: &Bound<'_, PyUntypedArray>) -> bool {
    // SAFETY: `as_array_ptr` points at the live array object `array` holds a
    // reference to; the GIL is held (we have a `Bound`), so reading its
    // `flags` field cannot race with NumPy changing them.
    let flags = unsafe { (*array.as_array_ptr()).flags };
    flags & NPY_ARRAY_WRITEABLE != 0
}

/// `ValueError` unless `array` has exactly x's shape, when both are
/// arrays: the runner compares rows and row length only, and (6, 4) has
/// the rows of (2, 3, 4). A non-array is left to the call's own checks.
pub(crate) fn same_shape(name: &str, array: &Bound<'_, PyAny>, x: &Bound<'_, PyAny>) -> PyResult<()> {
    match (array.cast::<PyUntypedArray>(), x.cast::<PyUntypedArray>()) {
        (Ok(a), Ok(x)) if a.shape() != x.shape() => Err(PyValueError::new_err(format!("{name}: shape {:?} does not match x's {:?}", a.shape(), x.shape()))),
        _ => Ok(()),
    }
}

/// The output `name` of a binding that accepts `None` for it: the array
/// given, which must have exactly x's shape ([`same_shape`]), or a new
/// C-contiguous array of x's shape and element type. This is how the
/// Python layer's direct path (`_rowwise.is_direct`) calls a kernel without
/// allocating or checking shapes in Python. Nothing is written here: the
/// call's own checks come after, on the returned array.
pub(crate) fn out_or_new<'py, T: Item>(name: &str, x: &Bound<'py, PyAny>, out: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
    let Some(out) = out else {
        let x = typed::<T>("x", x, "an array")?;
        return new_array::<T>(x.py(), x.shape());
    };
    same_shape(name, out, x)?;
    Ok(out.clone())
}

/// A new C-contiguous array of `T` (its `Array` type) and `shape`, its
/// elements uninitialized, as `np.empty`; a `MemoryError` when NumPy cannot
/// allocate it (rust-numpy's `PyArray::new` panics then).
fn new_array<'py, T: Item>(py: Python<'py>, shape: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    let mut dims: Vec<npy_intp> = shape.iter().map(|&d| d as npy_intp).collect();
    // SAFETY: the arguments are what `PyArray_NewFromDescr` documents: the
    // ndarray type object, a new reference to the descriptor (the call
    // steals it), `dims.len()` dimensions from a live buffer (the sizes of
    // an existing array, so within npy_intp), NULL strides and data (NumPy
    // allocates a C-contiguous buffer) and no base object; the GIL is held.
    // On failure it returns NULL with the Python error set, which
    // `from_owned_ptr_or_err` turns into `Err`. The elements are plain
    // numbers (`Item`: `Copy`, nothing to drop) and never read here: every
    // binding with an `out_or_new` output writes its whole output (NaN rows
    // included) before Python sees it, and on an error the array is dropped
    // unread.
    unsafe {
        let array = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            PY_ARRAY_API.get_type_object(py, NpyTypes::PyArray_Type),
            numpy::dtype::<T::Array>(py).into_dtype_ptr(),
            dims.len() as c_int,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
        );
        Bound::from_owned_ptr_or_err(py, array)
    }
}

/// Where the rows of a view lie: `rows` rows of `cols` contiguous elements
/// of `size` bytes, row `i` starting `i * stride` elements after `addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Grid {
    pub rows: usize,
    pub cols: usize,
    stride: isize,
}

impl Grid {
    /// The half-open byte range `[start, end)` the rows at `addr` span, or
    /// `None` when they hold no element.
    fn span<T>(&self, addr: usize) -> Option<(usize, usize)> {
        if self.rows == 0 || self.cols == 0 {
            return None;
        }
        let size = std::mem::size_of::<T>() as isize;
        let last = (self.rows as isize - 1) * self.stride * size;
        let start = addr as isize + last.min(0);
        let end = addr as isize + last.max(0) + self.cols as isize * size;
        Some((start as usize, end as usize))
    }

    /// The rows of `array` along its last axis, checked: a 2-d array may
    /// have any row stride that is a multiple of the item size, other ranks
    /// must be C-contiguous (the Python layer reshapes what is not); rows
    /// must be contiguous. With `disjoint_rows`, rows must not share memory
    /// (an `as_strided` view with a short row stride is refused).
    fn of<T: Item>(name: &str, array: &Bound<'_, PyArrayDyn<T::Array>>, disjoint_rows: bool) -> PyResult<Grid> {
        let shape = array.shape();
        let Some((&cols, outer)) = shape.split_last() else {
            return Err(PyValueError::new_err(format!("{name}: a 0-d array has no rows")));
        };
        let rows = outer.iter().product::<usize>();
        let size = std::mem::size_of::<T>() as isize;
        let stride = if shape.len() == 2 {
            let strides = array.strides();
            if cols > 1 && strides[1] != size {
                return Err(PyValueError::new_err(format!("{name}: rows must be contiguous")));
            }
            if rows > 1 && strides[0] % size != 0 {
                return Err(PyValueError::new_err(format!("{name}: row stride is not a multiple of the item size")));
            }
            if disjoint_rows && rows > 1 && cols > 0 && strides[0].unsigned_abs() < cols * size as usize {
                return Err(PyValueError::new_err(format!("{name}: rows of a writeable array overlap")));
            }
            if rows > 1 { strides[0] / size } else { cols as isize }
        } else if array.is_c_contiguous() {
            cols as isize
        } else {
            return Err(PyValueError::new_err(format!("{name}: a {}-d array must be C-contiguous", shape.len())));
        };
        Ok(Grid { rows, cols, stride })
    }

    /// Element offset of row `i` (wrapping: forming the pointer is safe
    /// for any `i`, and only rows `i < rows` are promised to be valid).
    #[inline]
    fn offset(&self, i: usize) -> isize {
        (i as isize).wrapping_mul(self.stride)
    }
}

/// Read-only rows of an array (an input). Nothing can be written through
/// it: it only hands out `*const T`.
///
/// Invariant: for `i < grid.rows`, the `grid.cols` elements of row `i` lie
/// inside the buffer of an aligned array of `T` that outlives `'a`.
#[derive(Debug)]
pub(crate) struct RowsRef<'a, T> {
    ptr: *const T,
    pub grid: Grid,
    _array: PhantomData<&'a ()>,
}

// SAFETY: a `RowsRef` only ever reads the array it views (it hands out
// `*const T`), and the array outlives it (`'a`). Reading from several
// threads at once is fine for the `Copy` element types used (`Item: Sync`).
unsafe impl<T: Sync> Send for RowsRef<'_, T> {}
// SAFETY: as for `Send`: shared access only reads.
unsafe impl<T: Sync> Sync for RowsRef<'_, T> {}

impl<'a, T: Item> RowsRef<'a, T> {
    /// The rows of `array` (an aligned array of `T` in native byte order).
    pub fn new(name: &str, array: &'a Bound<'_, PyAny>) -> PyResult<Self> {
        let array = aligned::<T>(name, array)?;
        let grid = Grid::of::<T>(name, array, false)?;
        Ok(RowsRef { ptr: array.data().cast(), grid, _array: PhantomData })
    }

    /// Pointer to the first element of row `i` (`i < rows`).
    #[inline]
    pub fn row(&self, i: usize) -> *const T {
        self.ptr.wrapping_offset(self.grid.offset(i))
    }

    /// The row stride in elements.
    pub fn stride(&self) -> isize {
        self.grid.stride
    }

    /// The address of row 0 (for alignment decisions and overlap tests).
    pub fn addr(&self) -> usize {
        self.ptr as usize
    }

    fn span(&self) -> Option<(usize, usize)> {
        self.grid.span::<T>(self.addr())
    }
}

/// Writeable rows: a writeable array's, or a private scratch buffer's.
///
/// Invariant: for `i < grid.rows`, the `grid.cols` elements of row `i` lie
/// inside a buffer of `T` that is writeable, aligned and outlives `'a`, and
/// distinct rows do not overlap.
#[derive(Debug)]
pub(crate) struct RowsMut<'a, T> {
    ptr: *mut T,
    pub grid: Grid,
    _array: PhantomData<&'a mut ()>,
}

// SAFETY: the runner hands each thread a disjoint range of rows, and
// distinct rows of a `RowsMut` do not overlap (checked on construction), so
// no element is written by two threads or read by one while another writes
// it. The buffer outlives the view (`'a`).
unsafe impl<T: Send> Send for RowsMut<'_, T> {}
// SAFETY: as for `Send`.
unsafe impl<T: Send> Sync for RowsMut<'_, T> {}

impl<'a, T: Item> RowsMut<'a, T> {
    /// The rows of `array`: aligned, writeable, rows not sharing memory.
    pub fn new(name: &str, array: &'a Bound<'_, PyAny>) -> PyResult<Self> {
        let array = aligned::<T>(name, array)?;
        if !is_writeable(array.as_untyped()) {
            return Err(PyValueError::new_err(format!("{name}: array is read-only")));
        }
        let grid = Grid::of::<T>(name, array, true)?;
        Ok(RowsMut { ptr: array.data().cast(), grid, _array: PhantomData })
    }

    /// Contiguous rows of `grid`'s shape in `buf` (resized to fit). The view
    /// does not borrow `buf`.
    ///
    /// # Safety
    /// The caller keeps `buf` alive and does not resize it or access it
    /// otherwise for as long as it uses the view.
    unsafe fn scratch(buf: &mut Vec<T>, grid: Grid) -> RowsMut<'static, T> {
        buf.clear();
        buf.resize(grid.rows * grid.cols, T::default());
        let grid = Grid { stride: grid.cols as isize, ..grid };
        RowsMut { ptr: buf.as_mut_ptr(), grid, _array: PhantomData }
    }

    /// Pointer to the first element of row `i` (`i < rows`).
    #[inline]
    pub fn row(&self, i: usize) -> *mut T {
        self.ptr.wrapping_offset(self.grid.offset(i))
    }

    /// The row stride in elements.
    pub fn stride(&self) -> isize {
        self.grid.stride
    }

    fn addr(&self) -> usize {
        self.ptr as usize
    }

    fn span(&self) -> Option<(usize, usize)> {
        self.grid.span::<T>(self.addr())
    }

    /// True when this view shares (or may share) memory with `x` without
    /// being the very same rows. Exact aliasing (in place) is fine for every
    /// kernel: each reads an element before writing it.
    fn overlaps_partially(&self, x: &RowsRef<'_, T>) -> bool {
        let same = self.addr() == x.addr() && (self.grid.rows <= 1 || self.grid.stride == x.grid.stride);
        overlap(self.span(), x.span()) && !same
    }

    /// True when this view and `other` may share memory.
    fn overlaps(&self, other: &RowsMut<'_, T>) -> bool {
        overlap(self.span(), other.span())
    }
}

fn overlap(a: Option<(usize, usize)>, b: Option<(usize, usize)>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.0 < b.1 && b.0 < a.1,
        _ => false,
    }
}

/// An output of a call: the caller's rows, and where the kernel writes
/// them. That is the caller's rows themselves, or a private scratch buffer
/// when they partially overlap an input (the kernels allow only exact
/// aliasing); [`Output::copy_back`] then copies the scratch into them.
#[derive(Debug)]
pub(crate) struct Output<'a, T> {
    name: &'static str,
    rows: RowsMut<'a, T>,
    scratch: Option<(Vec<T>, RowsMut<'static, T>)>,
}

impl<'a, T: Item> Output<'a, T> {
    /// The output `name` for a kernel reading `inputs`.
    pub fn new(name: &'static str, array: &'a Bound<'_, PyAny>, inputs: &[RowsRef<'_, T>]) -> PyResult<Self> {
        let rows = RowsMut::new(name, array)?;
        let scratch = inputs.iter().any(|x| rows.overlaps_partially(x)).then(|| {
            let mut buf = Vec::new();
            // SAFETY: `buf` moves into `self` next to the view (its heap block
            // stays put), is never touched again, and is dropped with
            // `self`; `dest` lends the view only for as long as `&self`.
            let view = unsafe { RowsMut::scratch(&mut buf, rows.grid) };
            (buf, view)
        });
        Ok(Output { name, rows, scratch })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The caller's rows.
    pub fn rows(&self) -> &RowsMut<'a, T> {
        &self.rows
    }

    /// Where the kernel writes: the caller's rows or the scratch rows. Either
    /// way, each of its rows is the same pointer as the row of an input it
    /// aliases, or overlaps no input at all.
    #[inline]
    pub fn dest(&self) -> &RowsMut<'_, T> {
        match &self.scratch {
            Some((_, view)) => view,
            None => &self.rows,
        }
    }

    /// Copies the scratch rows (if used) into the caller's rows. Call once
    /// every kernel has finished.
    pub fn copy_back(&self) {
        let Some((_, scratch)) = &self.scratch else { return };
        for i in 0..self.rows.grid.rows {
            // SAFETY: row `i < rows` of both views holds `cols` elements
            // inside their buffers (the views' invariants), the caller's
            // writeable. The scratch is a private allocation, so the two do
            // not overlap, and the kernels have finished, so nothing else
            // touches either.
            unsafe { std::ptr::copy_nonoverlapping(scratch.row(i), self.rows.row(i), self.rows.grid.cols) }
        }
    }

    /// True when the two outputs may share memory.
    pub fn overlaps(&self, other: &Output<'_, T>) -> bool {
        self.rows.overlaps(&other.rows)
    }
}

/// A private copy of a per-channel weight or bias of `n` elements, placed
/// at the same offset from a 64-byte boundary as the first input row: the
/// kernels align their main loops on the input rows, and a weight aligned
/// alike is then loaded without straddling cache lines. It is the only copy
/// the bindings make of a weight (the Python layer converts dtypes only).
#[derive(Debug)]
pub(crate) struct Channel<T> {
    buf: Vec<T>,
    start: usize,
    n: usize,
}

impl<W: Item> Channel<W> {
    /// Checks `array` (1-d, of `T`, `n` long, sharing no memory with any of
    /// `outputs`) and copies it next to `like` (an input row's address).
    pub fn new<T: Item>(name: &str, array: &Bound<'_, PyAny>, n: usize, like: usize, outputs: &[Output<'_, T>]) -> PyResult<Self> {
        let array = typed::<W>(name, array, "a 1-d array")?;
        if array.ndim() != 1 {
            return Err(PyValueError::new_err(format!("{name}: expected a 1-d array, got {} dimensions", array.ndim())));
        }
        if array.len() != n {
            return Err(PyValueError::new_err(format!("{name}: length {} does not match the row length {n}", array.len())));
        }
        let size = std::mem::size_of::<W>();
        let stride = array.strides()[0];
        let first = array.data().cast::<W>();
        if n > 0 {
            let last = (n as isize - 1) * stride;
            let start = first as isize + last.min(0);
            let span = Some((start as usize, (first as isize + last.max(0)) as usize + size));
            if let Some(out) = outputs.iter().find(|o| overlap(span, o.rows().span())) {
                return Err(PyValueError::new_err(format!(
                    "{name} shares memory with {}: the kernel would overwrite it while reading it; pass a copy",
                    out.name()
                )));
            }
        }
        let slots = 64 / size;
        let mut buf = vec![W::default(); n + slots];
        let want = like % 64;
        let start = (0..slots).find(|&k| (buf.as_ptr() as usize + k * size) % 64 == want).unwrap_or(0);
        let dest = &mut buf[start..start + n];
        if stride == size as isize {
            // SAFETY: `array` is a live 1-d array of `n` elements of `T`
            // (checked above), contiguous here, so its `n * size` bytes from
            // `data` lie inside its buffer; `dest` is `n` elements of a
            // private `Vec`, so they do not overlap. Copied as bytes, which
            // needs no alignment (NumPy allows unaligned arrays). Any bit
            // pattern is a valid `T` (a NumPy numeric type), and with the
            // GIL held no Python code writes the array meanwhile.
            unsafe { std::ptr::copy_nonoverlapping(first.cast::<u8>(), dest.as_mut_ptr().cast::<u8>(), n * size) }
        } else {
            for (k, slot) in dest.iter_mut().enumerate() {
                let src = first.cast::<u8>().wrapping_offset(k as isize * stride).cast::<W>();
                // SAFETY: as above: element `k < n` at `data + k * stride`
                // lies inside the array's buffer, possibly unaligned, hence
                // `read_unaligned`.
                *slot = unsafe { src.read_unaligned() };
            }
        }
        Ok(Channel { buf, start, n })
    }

    pub fn as_slice(&self) -> &[W] {
        &self.buf[self.start..self.start + self.n]
    }
}

/// One value per row of a call (logsumexp, a norm's mean or 1/std): a
/// writeable, aligned, C-contiguous array of `T` with one element per row,
/// whatever its shape (the Python layer shapes it like x with the
/// normalized axes of length 1).
///
/// Invariant: for `i < len`, element `i` lies inside a writeable, aligned
/// buffer of `T` that outlives `'a` and overlaps no input or output rows of
/// the call.
#[derive(Debug)]
pub(crate) struct RowValues<'a, T> {
    name: &'static str,
    ptr: *mut T,
    len: usize,
    _array: PhantomData<&'a mut ()>,
}

// SAFETY: the runner hands each thread a disjoint range of rows, and each
// row writes only its own element, so no element is written by two
// threads. The buffer outlives the view (`'a`).
unsafe impl<T: Send> Send for RowValues<'_, T> {}
// SAFETY: as for `Send`.
unsafe impl<T: Send> Sync for RowValues<'_, T> {}

impl<'a, W: Item> RowValues<'a, W> {
    /// Checks `array` (aligned, writeable, C-contiguous, `rows` elements,
    /// sharing no memory with the call's `inputs` and `outputs`).
    pub fn new<T: Item>(name: &'static str, array: &'a Bound<'_, PyAny>, rows: usize, inputs: &[RowsRef<'_, T>], outputs: &[Output<'_, T>]) -> PyResult<Self> {
        let array = aligned::<W>(name, array)?;
        if !is_writeable(array.as_untyped()) {
            return Err(PyValueError::new_err(format!("{name}: array is read-only")));
        }
        if !array.is_c_contiguous() {
            return Err(PyValueError::new_err(format!("{name}: array must be C-contiguous")));
        }
        if array.len() != rows {
            return Err(PyValueError::new_err(format!("{name}: {} elements, expected one per row ({rows})", array.len())));
        }
        let ptr = array.data().cast::<W>();
        let span = (rows > 0).then(|| (ptr as usize, ptr as usize + rows * std::mem::size_of::<W>()));
        let spans = inputs.iter().map(|x| (x.span(), "an input")).chain(outputs.iter().map(|o| (o.rows().span(), o.name())));
        for (other, what) in spans {
            if overlap(span, other) {
                return Err(PyValueError::new_err(format!("{name} shares memory with {what}")));
            }
        }
        Ok(RowValues { name, ptr, len: rows, _array: PhantomData })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Where row `i`'s value goes (`i < len`).
    #[inline]
    pub fn at(&self, i: usize) -> *mut W {
        self.ptr.wrapping_add(i)
    }

    fn span(&self) -> Option<(usize, usize)> {
        (self.len > 0).then(|| (self.ptr as usize, self.ptr as usize + self.len * std::mem::size_of::<W>()))
    }

    /// True when the two may share memory.
    pub fn overlaps(&self, other: &RowValues<'_, W>) -> bool {
        overlap(self.span(), other.span())
    }
}

/// Rows of an operand broadcast against the rows of a call (an attention
/// bias or mask): a table of distinct rows and, for each row of the call,
/// the index of its table row. The Python layer builds both from any
/// operand that broadcasts against x, so a (batch, 1, 1, key) mask for
/// (batch, head, query, key) scores is `batch` table rows, not a copy per
/// row.
///
/// Invariant: for `i < index.len()`, `row(i)` points at `cols` elements of
/// `U` inside an aligned array that outlives `'a` and overlaps no output of
/// the call.
#[derive(Debug)]
pub(crate) struct RowTable<'a, U> {
    table: RowsRef<'a, U>,
    index: &'a [isize],
}

// SAFETY: a `RowTable` only reads (it hands out `*const U`) arrays that
// outlive it; `U: Sync` makes shared reads from several threads fine.
unsafe impl<U: Sync> Send for RowTable<'_, U> {}
// SAFETY: as for `Send`.
unsafe impl<U: Sync> Sync for RowTable<'_, U> {}

impl<'a, U: Item> RowTable<'a, U> {
    /// Checks `table` (rows of `cols` elements) and `index` (a 1-d,
    /// C-contiguous intp array with `rows` entries, each a row of the
    /// table); the table must share no memory with `outputs`.
    pub fn new<T: Item>(name: &'static str, table: &'a Bound<'_, PyAny>, index: &'a Bound<'_, PyAny>, rows: usize, cols: usize, outputs: &[Output<'_, T>]) -> PyResult<Self> {
        let table = RowsRef::<U>::new(name, table)?;
        if table.grid.cols != cols {
            return Err(PyValueError::new_err(format!("{name}: rows of {} elements, expected {cols}", table.grid.cols)));
        }
        let index = typed::<isize>(name, index, "an index array")?;
        // SAFETY: the index array is only read, and no Python code runs (the
        // GIL is held until the call releases it, and the slice lives no
        // longer than the call); a copy-on-write race is the caller's, as
        // for any input.
        let index = unsafe { index.as_slice() }.map_err(|_| PyValueError::new_err(format!("{name}: index must be C-contiguous")))?;
        if index.len() != rows {
            return Err(PyValueError::new_err(format!("{name}: {} index entries, expected {rows}", index.len())));
        }
        if let Some(bad) = index.iter().find(|&&k| k < 0 || k as usize >= table.grid.rows) {
            return Err(PyValueError::new_err(format!("{name}: index {bad} out of range for {} rows", table.grid.rows)));
        }
        let span = table.span();
        if let Some(out) = outputs.iter().find(|o| overlap(span, o.rows().span())) {
            return Err(PyValueError::new_err(format!("{name} shares memory with {}", out.name())));
        }
        Ok(RowTable { table, index })
    }

    /// The table row of call row `i` (`i < rows`).
    #[inline]
    pub fn row(&self, i: usize) -> *const U {
        self.table.row(self.index[i] as usize)
    }
}
