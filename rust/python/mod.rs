//! PyO3 bindings: the `normkit._native` extension module.
//!
//! The Python layer (`python/normkit`) does the NumPy contract (array-likes,
//! dtypes, `axis`, `out=` checks) and hands over 2-D views whose rows are
//! contiguous. This layer re-checks what memory safety depends on (shapes,
//! strides, alignment, writeability), releases the GIL and runs the
//! pure-Rust kernels over the rows.

mod l1norm;
mod norm;
mod rows;
mod softmax;

use crate::dispatch::{self, Isa};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

pub(crate) use rows::{active_isa, float_kind, FloatKind, RowsMut, RowsRef};

/// Inputs smaller than this run with the GIL held: releasing and retaking it
/// costs about as much as the kernel on a few thousand elements.
pub(crate) const GIL_RELEASE_MIN_ELEMENTS: usize = 1 << 14;

/// Runs `work` with the GIL released when `elements` is large enough.
pub(crate) fn without_gil_if_large<F: Send + FnOnce()>(py: Python<'_>, elements: usize, work: F) {
    if elements >= GIL_RELEASE_MIN_ELEMENTS {
        py.detach(work)
    } else {
        work()
    }
}

/// The instruction-set levels detected on this CPU and in use.
#[pyfunction]
fn cpu_info(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let info = PyDict::new(py);
    info.set_item("detected", dispatch::detected().name())?;
    info.set_item("available", dispatch::available().iter().map(|i| i.name()).collect::<Vec<_>>())?;
    info.set_item("active", active_isa()?.name())?;
    info.set_item("forced", std::env::var("NORMKIT_ISA").ok())?;
    info.set_item("arch", std::env::consts::ARCH)?;
    info.set_item("num_threads", crate::rows::num_threads())?;
    Ok(info)
}

/// Sets the number of threads used for large inputs.
#[pyfunction]
fn set_num_threads(threads: usize) {
    crate::rows::set_num_threads(threads)
}

/// The number of threads used for large inputs.
#[pyfunction]
fn get_num_threads() -> usize {
    crate::rows::num_threads()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // An impossible NORMKIT_ISA is an import error, not a silent fallback.
    dispatch::active().map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    m.add_function(wrap_pyfunction!(cpu_info, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add("ISA_LEVELS", Isa::ALL.iter().map(|i| i.name()).collect::<Vec<_>>())?;
    softmax::register(m)?;
    l1norm::register(m)?;
    norm::register(m)?;
    Ok(())
}
