//! AVX2 + FMA norm entry points: the kernels of `vector.rs` compiled for
//! `T::Avx2` registers.

use super::{vector, Affine, Norm, RowBatch};
use crate::simd::Element;

#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn norm<T: Element>(kind: Norm, x: *const T, y: *mut T, n: usize, eps: f64, affine: Affine<T>) {
    vector::norm::<T::Avx2>(kind, x, y, n, eps, affine)
}

#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn norm_rows<T: Element>(kind: Norm, batch: RowBatch<T>, eps: f64, affine: Affine<T>) {
    vector::norm_rows::<T::Avx2>(kind, batch, eps, affine)
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn add_norm<T: Element>(
    kind: Norm,
    x: *const T,
    residual: *const T,
    sum: *mut T,
    y: *mut T,
    n: usize,
    eps: f64,
    affine: Affine<T>,
) {
    vector::add_norm::<T::Avx2>(kind, x, residual, sum, y, n, eps, affine)
}
