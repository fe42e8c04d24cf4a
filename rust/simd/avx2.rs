//! [`Vector`] for AVX2 + FMA registers: 8 x f32 and 4 x f64; F16C and
//! integer rounding for their 16-bit float loads and stores ([`HalfFloats`]).

use super::{exp, HalfFloats, Simd, Table4, Table8, Vector};
use crate::dispatch::Isa;
use std::arch::x86_64::*;

/// The AVX2 + FMA instruction set as a token: [`crate::dispatch`] makes one
/// only after detecting the features.
#[derive(Clone, Copy, Debug)]
pub struct Avx2(());

impl Avx2 {
    /// # Safety
    /// The CPU must have AVX2 + FMA.
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked() -> Self {
        Avx2(())
    }
}

// SAFETY: the only constructor is `new_unchecked`, whose caller confirmed
// the features; the register types use only those features.
unsafe impl Simd for Avx2 {
    const ISA: Isa = Isa::Avx2;
    type F32 = F32x8;
    type F64 = F64x4;
}

/// Eight f32 lanes in a `__m256`.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct F32x8(__m256);

/// Four f64 lanes in a `__m256d`.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct F64x4(__m256d);

/// Lane mask with the first `n` 32-bit lanes set.
#[inline(always)]
unsafe fn first_lanes_32(n: usize) -> __m256i {
    // SAFETY: the caller has AVX2 + FMA (this function's contract).
    unsafe {
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
    }
}

/// Lane mask with the first `n` 64-bit lanes set.
#[inline(always)]
unsafe fn first_lanes_64(n: usize) -> __m256i {
    // SAFETY: the caller has AVX2 + FMA (this function's contract).
    unsafe {
        _mm256_cmpgt_epi64(_mm256_set1_epi64x(n as i64), _mm256_setr_epi64x(0, 1, 2, 3))
    }
}

/// 2^k as f32 for integer k in [-127, 127] (-127 gives +0), from the exponent bits.
#[inline(always)]
unsafe fn pow2_f32(k: __m256i) -> __m256 {
    // SAFETY: the caller has AVX2 + FMA (this function's contract).
    unsafe {
        _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(k, _mm256_set1_epi32(127))))
    }
}

/// 2^k as f64 for four integer k in [-1023, 1023] (-1023 gives +0), from the exponent bits.
#[inline(always)]
unsafe fn pow2_f64(k: __m128i) -> __m256d {
    // SAFETY: the caller has AVX2 + FMA (this function's contract).
    unsafe {
        let biased = _mm256_cvtepi32_epi64(_mm_add_epi32(k, _mm_set1_epi32(1023)));
        _mm256_castsi256_pd(_mm256_slli_epi64::<52>(biased))
    }
}

/// Runs intrinsics of AVX2 + FMA in a method of a register value.
///
/// Use only there: the value exists only after an `unsafe` constructor
/// whose caller confirmed the CPU has these features (see `Vector`).
macro_rules! avx2 {
    ($e:expr) => {
        // SAFETY: used only in methods of register values, which exist only
        // after an unsafe constructor confirmed the features (see above).
        unsafe { $e }
    };
}

/// RNE of eight f32 to bfloat16 bit patterns, in the low 16 bits of each
/// 32-bit lane: (bits + 0x7fff + lsb) >> 16, carrying into the exponent
/// where needed (up to infinity); NaN becomes (bits >> 16) | 0x40, quiet.
#[inline(always)]
unsafe fn round_to_bf16(v: __m256) -> __m256i {
    // SAFETY: the caller has AVX2 + FMA (this function's contract).
    unsafe {
        let bits = _mm256_castps_si256(v);
        let high = _mm256_srli_epi32::<16>(bits);
        let bias = _mm256_add_epi32(_mm256_and_si256(high, _mm256_set1_epi32(1)), _mm256_set1_epi32(0x7fff));
        let rounded = _mm256_srli_epi32::<16>(_mm256_add_epi32(bits, bias));
        let quiet = _mm256_or_si256(high, _mm256_set1_epi32(0x40));
        let nan = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
        _mm256_blendv_epi8(rounded, quiet, nan)
    }
}

// SAFETY: F16C is part of the level's features (`dispatch`), and each
// method reads or writes exactly eight 16-bit values.
unsafe impl HalfFloats for F32x8 {
    #[inline(always)]
    unsafe fn load_bf16(p: *const u16) -> Self {
        // SAFETY: the caller's contract: the features, and 8 values at p.
        unsafe { Self(_mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast()))))) }
    }
    #[inline(always)]
    unsafe fn store_bf16(self, p: *mut u16) {
        // SAFETY: the caller's contract: 8 values at p. The pack works per
        // 128-bit half, so the qwords 0 and 2 hold the eight results.
        unsafe {
            let h = round_to_bf16(self.0);
            let packed = _mm256_permute4x64_epi64::<0b1000>(_mm256_packus_epi32(h, h));
            _mm_storeu_si128(p.cast(), _mm256_castsi256_si128(packed))
        }
    }
    #[inline(always)]
    unsafe fn load_f16(p: *const u16) -> Self {
        // SAFETY: the caller's contract: the features, and 8 values at p.
        unsafe { Self(_mm256_cvtph_ps(_mm_loadu_si128(p.cast()))) }
    }
    #[inline(always)]
    unsafe fn store_f16(self, p: *mut u16) {
        // SAFETY: the caller's contract: 8 values at p.
        unsafe { _mm_storeu_si128(p.cast(), _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(self.0)) }
    }
}

// SAFETY: the register is private (values come only from the unsafe
// constructors) and every method uses only the token's features.
unsafe impl Vector for F32x8 {
    type Elem = f32;
    const LANES: usize = 8;

    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has AVX2 + FMA and the pointer is valid for the lanes touched.
        unsafe {
            Self(_mm256_set1_ps(x))
        }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has AVX2 + FMA and the pointer is valid for the lanes touched.
        unsafe {
            Self(_mm256_loadu_ps(p))
        }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize, fill: f32) -> Self {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has AVX2 + FMA and the pointer is valid for the lanes touched.
        unsafe {
            let mask = first_lanes_32(n);
            let loaded = _mm256_maskload_ps(p, mask);
            Self(_mm256_blendv_ps(_mm256_set1_ps(fill), loaded, _mm256_castsi256_ps(mask)))
        }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has AVX2 + FMA and the pointer is valid for the lanes touched.
        unsafe {
            _mm256_storeu_ps(p, self.0)
        }
    }
    #[inline(always)]
    unsafe fn store_stream(self, p: *mut f32) {
        // SAFETY: the caller upholds this method's contract: the CPU has
        // AVX2 + FMA, the pointer is valid for the lanes and aligned to the
        // register's size.
        unsafe {
            _mm256_stream_ps(p, self.0)
        }
    }
    #[inline(always)]
    unsafe fn stream_fence() {
        // SAFETY: SSE is baseline on x86-64.
        unsafe { _mm_sfence() }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has AVX2 + FMA and the pointer is valid for the lanes touched.
        unsafe {
            _mm256_maskstore_ps(p, first_lanes_32(n), self.0)
        }
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        avx2!(Self(_mm256_add_ps(self.0, b.0)))
    }
    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        avx2!(Self(_mm256_sub_ps(self.0, b.0)))
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        avx2!(Self(_mm256_mul_ps(self.0, b.0)))
    }
    #[inline(always)]
    fn div(self, b: Self) -> Self {
        avx2!(Self(_mm256_div_ps(self.0, b.0)))
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        avx2!(Self(_mm256_fmadd_ps(self.0, a.0, b.0)))
    }
    #[inline(always)]
    fn max(self, b: Self) -> Self {
        avx2!(Self(_mm256_max_ps(self.0, b.0)))
    }
    #[inline(always)]
    fn min(self, b: Self) -> Self {
        avx2!(Self(_mm256_min_ps(self.0, b.0)))
    }
    #[inline(always)]
    fn abs(self) -> Self {
        avx2!(Self(_mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0)))
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        avx2!(Self(_mm256_sqrt_ps(self.0)))
    }
    #[inline(always)]
    fn round(self) -> Self {
        avx2!(Self(_mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self.0)))
    }
    /// Two steps of 2^k built from exponent bits, each k in [-126, 127]:
    /// exact for |self| in [2^-100, 2^100] (and 0), which covers every use
    /// in the kernels (polynomial values and running sums). `n` must not be
    /// NaN unless `self` is.
    #[inline(always)]
    fn scale_pow2(self, n: Self) -> Self {
        avx2!({
            let n = _mm256_min_ps(_mm256_set1_ps(254.0), _mm256_max_ps(_mm256_set1_ps(-252.0), n.0));
            let k = _mm256_cvtps_epi32(n);
            let a = _mm256_srai_epi32::<1>(k);
            let b = _mm256_sub_epi32(k, a);
            Self(_mm256_mul_ps(_mm256_mul_ps(self.0, pow2_f32(a)), pow2_f32(b)))
        })
    }
    /// k = max(n, -127): 2^-127 built from exponent bits is +0.
    #[inline(always)]
    fn scale_down_pow2(self, n: Self) -> Self {
        avx2!({
            let k = _mm256_cvtps_epi32(_mm256_max_ps(_mm256_set1_ps(-127.0), n.0));
            Self(_mm256_mul_ps(self.0, pow2_f32(k)))
        })
    }
    #[inline(always)]
    fn reduce_add(self) -> f32 {
        avx2!({
            let s = _mm_add_ps(_mm256_castps256_ps128(self.0), _mm256_extractf128_ps::<1>(self.0));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_movehdup_ps(s));
            _mm_cvtss_f32(s)
        })
    }
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        avx2!({
            let s = _mm_max_ps(_mm256_castps256_ps128(self.0), _mm256_extractf128_ps::<1>(self.0));
            let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_max_ss(s, _mm_movehdup_ps(s));
            _mm_cvtss_f32(s)
        })
    }
    #[inline(always)]
    fn reduce_min(self) -> f32 {
        avx2!({
            let s = _mm_min_ps(_mm256_castps256_ps128(self.0), _mm256_extractf128_ps::<1>(self.0));
            let s = _mm_min_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_min_ss(s, _mm_movehdup_ps(s));
            _mm_cvtss_f32(s)
        })
    }
    #[inline(always)]
    fn first_lane(self) -> f32 {
        avx2!(_mm256_cvtss_f32(self.0))
    }
    /// The table form: in-cache softmax passes measured 9-15% faster with
    /// it than with the polynomial on Zen 3 (benches/softmax.rs, in_cache).
    #[inline(always)]
    fn exp_parts_fast(self) -> (Self, Self) {
        avx2!(exp::exp_parts_table8(self))
    }
    /// The integer-exponent table form: in-cache three-pass softmax and
    /// log_softmax measured 10-11% faster with it than with
    /// `exp_parts_fast` + `scale_down_pow2` on Zen 3, two-pass 7%.
    #[inline(always)]
    fn exp_down_fast(self, lo: Self, n: Self) -> Self {
        avx2!(exp::exp_down_table8(self, lo, n))
    }
    /// Split as [`exp::exp_down_table8_first`] and
    /// [`exp::exp_down_table8_second`].
    const EXP_DOWN_STAGED: bool = true;
    #[inline(always)]
    fn exp_down_first(self, lo: Self, n: Self) -> (Self, Self) {
        avx2!(exp::exp_down_table8_first(self, lo, n))
    }
    #[inline(always)]
    fn exp_down_second(first: (Self, Self), _lo: Self, _n: Self) -> Self {
        avx2!(exp::exp_down_table8_second(first))
    }
}

impl Table8 for F32x8 {
    #[inline(always)]
    fn floor(self) -> Self {
        avx2!(Self(_mm256_round_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(self.0)))
    }
    /// `vpermps` reads only the low 3 bits of each index lane.
    #[inline(always)]
    fn lookup8(self, index: Self) -> Self {
        avx2!(Self(_mm256_permutevar8x32_ps(self.0, _mm256_castps_si256(index.0))))
    }
    /// `vpermps`, `vpslld`, `vpaddd`.
    #[inline(always)]
    fn lookup8_scaled(self, index: Self) -> Self {
        avx2!({
            let k = _mm256_castps_si256(index.0);
            let entry = _mm256_castps_si256(_mm256_permutevar8x32_ps(self.0, k));
            Self(_mm256_castsi256_ps(_mm256_add_epi32(entry, _mm256_slli_epi32::<20>(k))))
        })
    }
}

// SAFETY: the register is private (values come only from the unsafe
// constructors) and every method uses only the token's features.
unsafe impl Vector for F64x4 {
    type Elem = f64;
    const LANES: usize = 4;

    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has AVX2 + FMA and the pointer is valid for the lanes touched.
        unsafe {
            Self(_mm256_set1_pd(x))
        }
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has AVX2 + FMA and the pointer is valid for the lanes touched.
        unsafe {
            Self(_mm256_loadu_pd(p))
        }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f64, n: usize, fill: f64) -> Self {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has AVX2 + FMA and the pointer is valid for the lanes touched.
        unsafe {
            let mask = first_lanes_64(n);
            let loaded = _mm256_maskload_pd(p, mask);
            Self(_mm256_blendv_pd(_mm256_set1_pd(fill), loaded, _mm256_castsi256_pd(mask)))
        }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has AVX2 + FMA and the pointer is valid for the lanes touched.
        unsafe {
            _mm256_storeu_pd(p, self.0)
        }
    }
    #[inline(always)]
    unsafe fn store_stream(self, p: *mut f64) {
        // SAFETY: the caller upholds this method's contract: the CPU has
        // AVX2 + FMA, the pointer is valid for the lanes and aligned to the
        // register's size.
        unsafe {
            _mm256_stream_pd(p, self.0)
        }
    }
    #[inline(always)]
    unsafe fn stream_fence() {
        // SAFETY: SSE is baseline on x86-64.
        unsafe { _mm_sfence() }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f64, n: usize) {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has AVX2 + FMA and the pointer is valid for the lanes touched.
        unsafe {
            _mm256_maskstore_pd(p, first_lanes_64(n), self.0)
        }
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        avx2!(Self(_mm256_add_pd(self.0, b.0)))
    }
    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        avx2!(Self(_mm256_sub_pd(self.0, b.0)))
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        avx2!(Self(_mm256_mul_pd(self.0, b.0)))
    }
    #[inline(always)]
    fn div(self, b: Self) -> Self {
        avx2!(Self(_mm256_div_pd(self.0, b.0)))
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        avx2!(Self(_mm256_fmadd_pd(self.0, a.0, b.0)))
    }
    #[inline(always)]
    fn max(self, b: Self) -> Self {
        avx2!(Self(_mm256_max_pd(self.0, b.0)))
    }
    #[inline(always)]
    fn min(self, b: Self) -> Self {
        avx2!(Self(_mm256_min_pd(self.0, b.0)))
    }
    #[inline(always)]
    fn abs(self) -> Self {
        avx2!(Self(_mm256_andnot_pd(_mm256_set1_pd(-0.0), self.0)))
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        avx2!(Self(_mm256_sqrt_pd(self.0)))
    }
    #[inline(always)]
    fn round(self) -> Self {
        avx2!(Self(_mm256_round_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self.0)))
    }
    /// Two steps of 2^k, each k in [-1022, 1023]: exact for |self| in
    /// [2^-900, 2^900] (and 0). `n` must not be NaN unless `self` is.
    #[inline(always)]
    fn scale_pow2(self, n: Self) -> Self {
        avx2!({
            let n = _mm256_min_pd(_mm256_set1_pd(2046.0), _mm256_max_pd(_mm256_set1_pd(-2044.0), n.0));
            let k = _mm256_cvtpd_epi32(n);
            let a = _mm_srai_epi32::<1>(k);
            let b = _mm_sub_epi32(k, a);
            Self(_mm256_mul_pd(_mm256_mul_pd(self.0, pow2_f64(a)), pow2_f64(b)))
        })
    }
    /// k = max(n, -1023): 2^-1023 built from exponent bits is +0.
    #[inline(always)]
    fn scale_down_pow2(self, n: Self) -> Self {
        avx2!({
            let k = _mm256_cvtpd_epi32(_mm256_max_pd(_mm256_set1_pd(-1023.0), n.0));
            Self(_mm256_mul_pd(self.0, pow2_f64(k)))
        })
    }
    #[inline(always)]
    fn reduce_add(self) -> f64 {
        avx2!({
            let s = _mm_add_pd(_mm256_castpd256_pd128(self.0), _mm256_extractf128_pd::<1>(self.0));
            _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
        })
    }
    #[inline(always)]
    fn reduce_max(self) -> f64 {
        avx2!({
            let s = _mm_max_pd(_mm256_castpd256_pd128(self.0), _mm256_extractf128_pd::<1>(self.0));
            _mm_cvtsd_f64(_mm_max_sd(s, _mm_unpackhi_pd(s, s)))
        })
    }
    #[inline(always)]
    fn reduce_min(self) -> f64 {
        avx2!({
            let s = _mm_min_pd(_mm256_castpd256_pd128(self.0), _mm256_extractf128_pd::<1>(self.0));
            _mm_cvtsd_f64(_mm_min_sd(s, _mm_unpackhi_pd(s, s)))
        })
    }
    #[inline(always)]
    fn first_lane(self) -> f64 {
        avx2!(_mm256_cvtsd_f64(self.0))
    }

    /// The table form ([`exp::exp_parts_table4`]): float64 softmax and
    /// log_softmax measured 10-33% faster with it (and the form below)
    /// than with the degree-11 polynomial on Zen 3 (A/B, public API).
    #[inline(always)]
    fn exp_parts_fast(self) -> (Self, Self) {
        avx2!(exp::exp_parts_table4(self))
    }

    /// The integer-exponent table form ([`exp::exp_down_table4`]).
    #[inline(always)]
    fn exp_down_fast(self, lo: Self, n: Self) -> Self {
        avx2!(exp::exp_down_table4(self, lo, n))
    }
}

/// `vpermps` indices (2j, 2j + 1) into four f64 viewed as eight f32, for
/// j the low 2 bits of each 64-bit lane of `k`: the lane's low half
/// duplicated, doubled, plus (0, 1).
#[inline(always)]
unsafe fn table4_index(k: __m256i) -> __m256i {
    // SAFETY: the caller has AVX2 + FMA (this function's contract).
    unsafe {
        let low = _mm256_shuffle_epi32::<0b10_10_00_00>(k);
        _mm256_add_epi32(_mm256_add_epi32(low, low), _mm256_setr_epi32(0, 1, 0, 1, 0, 1, 0, 1))
    }
}

impl Table4 for F64x4 {
    #[inline(always)]
    fn floor(self) -> Self {
        avx2!(Self(_mm256_round_pd::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(self.0)))
    }
    /// `vpshufd`, two `vpaddd`, `vpermps`.
    #[inline(always)]
    fn lookup4(self, index: Self) -> Self {
        avx2!({
            let i = table4_index(_mm256_castpd_si256(index.0));
            Self(_mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_castpd_ps(self.0), i)))
        })
    }
    /// [`Table4::lookup4`], `vpsllq`, `vpaddq`.
    #[inline(always)]
    fn lookup4_scaled(self, index: Self) -> Self {
        avx2!({
            let k = _mm256_castpd_si256(index.0);
            let entry = _mm256_castps_si256(_mm256_permutevar8x32_ps(_mm256_castpd_ps(self.0), table4_index(k)));
            Self(_mm256_castsi256_pd(_mm256_add_epi64(entry, _mm256_slli_epi64::<50>(k))))
        })
    }
}
