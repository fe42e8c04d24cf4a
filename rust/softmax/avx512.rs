//! AVX-512 softmax entry points: the algorithms of `vector.rs` compiled
//! for `T::Avx512` registers.

use super::{vector, Algorithm};
use crate::simd::Element;

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) unsafe fn softmax<T: Element>(algorithm: Algorithm, x: *const T, y: *mut T, n: usize) {
    vector::softmax::<T::Avx512>(algorithm, x, y, n)
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) unsafe fn log_softmax<T: Element>(x: *const T, y: *mut T, n: usize) {
    vector::log_softmax::<T::Avx512>(x, y, n)
}
