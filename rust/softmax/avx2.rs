//! AVX2 + FMA softmax entry points: the algorithms of `vector.rs` compiled
//! for `T::Avx2` registers.

use super::{vector, Algorithm};
use crate::simd::Element;

#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn softmax<T: Element>(algorithm: Algorithm, x: *const T, y: *mut T, n: usize) {
    vector::softmax::<T::Avx2>(algorithm, x, y, n)
}

#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn log_softmax<T: Element>(x: *const T, y: *mut T, n: usize) {
    vector::log_softmax::<T::Avx2>(x, y, n)
}
