//! PyO3 bindings: the `normkit._native` extension module.
//!
//! The Python layer (`python/normkit`) does the NumPy contract (array-likes,
//! dtype promotion, `axis`, `out=` and the error messages users see) and
//! hands over 2-D views whose rows are contiguous. Every kernel binding is a
//! few lines around the one runner (`runner.rs`, built on the views of
//! `rows.rs`), which owns what memory safety depends on (types, alignment,
//! writeability, shapes, strides, aliasing and overlap), the GIL rule and
//! the threads.

mod l1norm;
mod norm;
mod rows;
mod runner;
mod softmax;

use crate::dispatch::{self, Isa};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use rows::active_isa;

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
    // Which set of measured choices applies (`dispatch::Tuning`: softmax's
    // `auto` crossover and the prefetches), and whether the kernels issue
    // software prefetches (off where measured to cost:
    // `simd::prefetch::pays_on_this_cpu`).
    info.set_item("tuning", dispatch::tuning().name())?;
    info.set_item("prefetch", crate::simd::prefetch::enabled())?;
    // Sub-features of the levels that concern 16-bit floats: F16C is part
    // of the x86 levels; AVX-512 BF16 is reported but not used (see
    // `simd::storage`); aarch64's FP16 arithmetic is not needed for the
    // conversions, which are base Advanced SIMD.
    #[cfg(target_arch = "x86_64")]
    {
        info.set_item("f16c", std::arch::is_x86_feature_detected!("f16c"))?;
        info.set_item("avx512_bf16", std::arch::is_x86_feature_detected!("avx512bf16"))?;
    }
    #[cfg(target_arch = "aarch64")]
    info.set_item("fp16", std::arch::is_aarch64_feature_detected!("fp16"))?;
    Ok(info)
}

/// Sets the number of threads used for large inputs (1..=MAX_THREADS).
#[pyfunction]
fn set_num_threads(threads: usize) -> PyResult<()> {
    crate::rows::set_num_threads(threads).map_err(|e| match e {
        crate::rows::ThreadsError::OutOfRange(_) => pyo3::exceptions::PyValueError::new_err(format!("set_num_threads: {e}")),
        crate::rows::ThreadsError::Spawn { .. } => PyRuntimeError::new_err(format!("set_num_threads: {e}")),
    })
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
    m.add("MAX_THREADS", crate::rows::MAX_THREADS)?;
    m.add("ISA_LEVELS", Isa::ALL.iter().map(|i| i.name()).collect::<Vec<_>>())?;
    softmax::register(m)?;
    l1norm::register(m)?;
    norm::register(m)?;
    Ok(())
}
