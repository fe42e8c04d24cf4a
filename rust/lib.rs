//! normkit: SIMD normalization kernels.
//!
//! Each operation has its own module with a scalar reference and AVX2 /
//! AVX-512 versions side by side; [`dispatch`] picks the instruction set at
//! run time. The PyO3 bindings live in `python` behind the `python` feature.

pub mod dispatch;
pub mod l1norm;
pub mod norm;
pub mod rows;
pub mod simd;
pub mod softmax;

#[cfg(feature = "python")]
mod python;
