//! [`Vector`] for AVX-512 registers: 16 x f32 and 8 x f64. Tails use lane
//! masks; `scale_pow2` is `vscalefps` / `vscalefpd`.

use super::Vector;
use std::arch::x86_64::*;

/// Sixteen f32 lanes in a `__m512`.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct F32x16(pub __m512);

/// Eight f64 lanes in a `__m512d`.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct F64x8(pub __m512d);

const ROUND_NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

unsafe impl Vector for F32x16 {
    type Elem = f32;
    const LANES: usize = 16;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn splat(x: f32) -> Self {
        Self(_mm512_set1_ps(x))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn load(p: *const f32) -> Self {
        Self(_mm512_loadu_ps(p))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn load_partial(p: *const f32, n: usize, fill: f32) -> Self {
        let mask: __mmask16 = (1u32 << n).wrapping_sub(1) as __mmask16;
        Self(_mm512_mask_loadu_ps(_mm512_set1_ps(fill), mask, p))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn store(self, p: *mut f32) {
        _mm512_storeu_ps(p, self.0)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        let mask: __mmask16 = (1u32 << n).wrapping_sub(1) as __mmask16;
        _mm512_mask_storeu_ps(p, mask, self.0)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn add(self, b: Self) -> Self {
        Self(_mm512_add_ps(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn sub(self, b: Self) -> Self {
        Self(_mm512_sub_ps(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn mul(self, b: Self) -> Self {
        Self(_mm512_mul_ps(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn div(self, b: Self) -> Self {
        Self(_mm512_div_ps(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn mul_add(self, a: Self, b: Self) -> Self {
        Self(_mm512_fmadd_ps(self.0, a.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn max(self, b: Self) -> Self {
        Self(_mm512_max_ps(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn min(self, b: Self) -> Self {
        Self(_mm512_min_ps(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn abs(self) -> Self {
        Self(_mm512_abs_ps(self.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn sqrt(self) -> Self {
        Self(_mm512_sqrt_ps(self.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn round(self) -> Self {
        Self(_mm512_roundscale_ps::<ROUND_NEAREST>(self.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn scale_pow2(self, n: Self) -> Self {
        Self(_mm512_scalef_ps(self.0, n.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn scale_down_pow2(self, n: Self) -> Self {
        Self(_mm512_scalef_ps(self.0, n.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn reduce_add(self) -> f32 {
        _mm512_reduce_add_ps(self.0)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn reduce_max(self) -> f32 {
        _mm512_reduce_max_ps(self.0)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn reduce_min(self) -> f32 {
        _mm512_reduce_min_ps(self.0)
    }
}

unsafe impl Vector for F64x8 {
    type Elem = f64;
    const LANES: usize = 8;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn splat(x: f64) -> Self {
        Self(_mm512_set1_pd(x))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn load(p: *const f64) -> Self {
        Self(_mm512_loadu_pd(p))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn load_partial(p: *const f64, n: usize, fill: f64) -> Self {
        let mask: __mmask8 = (1u32 << n).wrapping_sub(1) as __mmask8;
        Self(_mm512_mask_loadu_pd(_mm512_set1_pd(fill), mask, p))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn store(self, p: *mut f64) {
        _mm512_storeu_pd(p, self.0)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn store_partial(self, p: *mut f64, n: usize) {
        let mask: __mmask8 = (1u32 << n).wrapping_sub(1) as __mmask8;
        _mm512_mask_storeu_pd(p, mask, self.0)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn add(self, b: Self) -> Self {
        Self(_mm512_add_pd(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn sub(self, b: Self) -> Self {
        Self(_mm512_sub_pd(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn mul(self, b: Self) -> Self {
        Self(_mm512_mul_pd(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn div(self, b: Self) -> Self {
        Self(_mm512_div_pd(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn mul_add(self, a: Self, b: Self) -> Self {
        Self(_mm512_fmadd_pd(self.0, a.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn max(self, b: Self) -> Self {
        Self(_mm512_max_pd(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn min(self, b: Self) -> Self {
        Self(_mm512_min_pd(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn abs(self) -> Self {
        Self(_mm512_abs_pd(self.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn sqrt(self) -> Self {
        Self(_mm512_sqrt_pd(self.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn round(self) -> Self {
        Self(_mm512_roundscale_pd::<ROUND_NEAREST>(self.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn scale_pow2(self, n: Self) -> Self {
        Self(_mm512_scalef_pd(self.0, n.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn scale_down_pow2(self, n: Self) -> Self {
        Self(_mm512_scalef_pd(self.0, n.0))
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn reduce_add(self) -> f64 {
        _mm512_reduce_add_pd(self.0)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn reduce_max(self) -> f64 {
        _mm512_reduce_max_pd(self.0)
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    unsafe fn reduce_min(self) -> f64 {
        _mm512_reduce_min_pd(self.0)
    }
}
