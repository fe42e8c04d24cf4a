//! [`Vector`] for AVX2 + FMA registers: 8 x f32 and 4 x f64.

use super::Vector;
use std::arch::x86_64::*;

/// Eight f32 lanes in a `__m256`.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct F32x8(pub __m256);

/// Four f64 lanes in a `__m256d`.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct F64x4(pub __m256d);

/// Lane mask with the first `n` 32-bit lanes set.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn first_lanes_32(n: usize) -> __m256i {
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
}

/// Lane mask with the first `n` 64-bit lanes set.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn first_lanes_64(n: usize) -> __m256i {
    _mm256_cmpgt_epi64(_mm256_set1_epi64x(n as i64), _mm256_setr_epi64x(0, 1, 2, 3))
}

/// 2^k as f32 for integer k in [-127, 127] (-127 gives +0), from the exponent bits.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn pow2_f32(k: __m256i) -> __m256 {
    _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(k, _mm256_set1_epi32(127))))
}

/// 2^k as f64 for four integer k in [-1023, 1023] (-1023 gives +0), from the exponent bits.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn pow2_f64(k: __m128i) -> __m256d {
    let biased = _mm256_cvtepi32_epi64(_mm_add_epi32(k, _mm_set1_epi32(1023)));
    _mm256_castsi256_pd(_mm256_slli_epi64::<52>(biased))
}

unsafe impl Vector for F32x8 {
    type Elem = f32;
    const LANES: usize = 8;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn splat(x: f32) -> Self {
        Self(_mm256_set1_ps(x))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load(p: *const f32) -> Self {
        Self(_mm256_loadu_ps(p))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load_partial(p: *const f32, n: usize, fill: f32) -> Self {
        let mask = first_lanes_32(n);
        let loaded = _mm256_maskload_ps(p, mask);
        Self(_mm256_blendv_ps(_mm256_set1_ps(fill), loaded, _mm256_castsi256_ps(mask)))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store(self, p: *mut f32) {
        _mm256_storeu_ps(p, self.0)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        _mm256_maskstore_ps(p, first_lanes_32(n), self.0)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn add(self, b: Self) -> Self {
        Self(_mm256_add_ps(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sub(self, b: Self) -> Self {
        Self(_mm256_sub_ps(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn mul(self, b: Self) -> Self {
        Self(_mm256_mul_ps(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn div(self, b: Self) -> Self {
        Self(_mm256_div_ps(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn mul_add(self, a: Self, b: Self) -> Self {
        Self(_mm256_fmadd_ps(self.0, a.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn max(self, b: Self) -> Self {
        Self(_mm256_max_ps(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn min(self, b: Self) -> Self {
        Self(_mm256_min_ps(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn abs(self) -> Self {
        Self(_mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sqrt(self) -> Self {
        Self(_mm256_sqrt_ps(self.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn round(self) -> Self {
        Self(_mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self.0))
    }
    /// Two steps of 2^k built from exponent bits, each k in [-126, 127]:
    /// exact for |self| in [2^-100, 2^100] (and 0), which covers every use
    /// in the kernels (polynomial values and running sums). `n` must not be
    /// NaN unless `self` is.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn scale_pow2(self, n: Self) -> Self {
        let n = _mm256_min_ps(_mm256_set1_ps(254.0), _mm256_max_ps(_mm256_set1_ps(-252.0), n.0));
        let k = _mm256_cvtps_epi32(n);
        let a = _mm256_srai_epi32::<1>(k);
        let b = _mm256_sub_epi32(k, a);
        Self(_mm256_mul_ps(_mm256_mul_ps(self.0, pow2_f32(a)), pow2_f32(b)))
    }
    /// k = max(n, -127): 2^-127 built from exponent bits is +0.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn scale_down_pow2(self, n: Self) -> Self {
        let k = _mm256_cvtps_epi32(_mm256_max_ps(_mm256_set1_ps(-127.0), n.0));
        Self(_mm256_mul_ps(self.0, pow2_f32(k)))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn reduce_add(self) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(self.0), _mm256_extractf128_ps::<1>(self.0));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn reduce_max(self) -> f32 {
        let s = _mm_max_ps(_mm256_castps256_ps128(self.0), _mm256_extractf128_ps::<1>(self.0));
        let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_max_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn reduce_min(self) -> f32 {
        let s = _mm_min_ps(_mm256_castps256_ps128(self.0), _mm256_extractf128_ps::<1>(self.0));
        let s = _mm_min_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_min_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }
}

unsafe impl Vector for F64x4 {
    type Elem = f64;
    const LANES: usize = 4;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn splat(x: f64) -> Self {
        Self(_mm256_set1_pd(x))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load(p: *const f64) -> Self {
        Self(_mm256_loadu_pd(p))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load_partial(p: *const f64, n: usize, fill: f64) -> Self {
        let mask = first_lanes_64(n);
        let loaded = _mm256_maskload_pd(p, mask);
        Self(_mm256_blendv_pd(_mm256_set1_pd(fill), loaded, _mm256_castsi256_pd(mask)))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store(self, p: *mut f64) {
        _mm256_storeu_pd(p, self.0)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store_partial(self, p: *mut f64, n: usize) {
        _mm256_maskstore_pd(p, first_lanes_64(n), self.0)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn add(self, b: Self) -> Self {
        Self(_mm256_add_pd(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sub(self, b: Self) -> Self {
        Self(_mm256_sub_pd(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn mul(self, b: Self) -> Self {
        Self(_mm256_mul_pd(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn div(self, b: Self) -> Self {
        Self(_mm256_div_pd(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn mul_add(self, a: Self, b: Self) -> Self {
        Self(_mm256_fmadd_pd(self.0, a.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn max(self, b: Self) -> Self {
        Self(_mm256_max_pd(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn min(self, b: Self) -> Self {
        Self(_mm256_min_pd(self.0, b.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn abs(self) -> Self {
        Self(_mm256_andnot_pd(_mm256_set1_pd(-0.0), self.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sqrt(self) -> Self {
        Self(_mm256_sqrt_pd(self.0))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn round(self) -> Self {
        Self(_mm256_round_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self.0))
    }
    /// Two steps of 2^k, each k in [-1022, 1023]: exact for |self| in
    /// [2^-900, 2^900] (and 0). `n` must not be NaN unless `self` is.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn scale_pow2(self, n: Self) -> Self {
        let n = _mm256_min_pd(_mm256_set1_pd(2046.0), _mm256_max_pd(_mm256_set1_pd(-2044.0), n.0));
        let k = _mm256_cvtpd_epi32(n);
        let a = _mm_srai_epi32::<1>(k);
        let b = _mm_sub_epi32(k, a);
        Self(_mm256_mul_pd(_mm256_mul_pd(self.0, pow2_f64(a)), pow2_f64(b)))
    }
    /// k = max(n, -1023): 2^-1023 built from exponent bits is +0.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn scale_down_pow2(self, n: Self) -> Self {
        let k = _mm256_cvtpd_epi32(_mm256_max_pd(_mm256_set1_pd(-1023.0), n.0));
        Self(_mm256_mul_pd(self.0, pow2_f64(k)))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn reduce_add(self) -> f64 {
        let s = _mm_add_pd(_mm256_castpd256_pd128(self.0), _mm256_extractf128_pd::<1>(self.0));
        _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn reduce_max(self) -> f64 {
        let s = _mm_max_pd(_mm256_castpd256_pd128(self.0), _mm256_extractf128_pd::<1>(self.0));
        _mm_cvtsd_f64(_mm_max_sd(s, _mm_unpackhi_pd(s, s)))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn reduce_min(self) -> f64 {
        let s = _mm_min_pd(_mm256_castpd256_pd128(self.0), _mm256_extractf128_pd::<1>(self.0));
        _mm_cvtsd_f64(_mm_min_sd(s, _mm_unpackhi_pd(s, s)))
    }
}
