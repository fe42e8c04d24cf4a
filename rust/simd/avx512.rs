//! [`Vector`] for AVX-512 registers: 16 x f32 and 8 x f64. Tails use lane
//! masks; `scale_pow2` is `vscalefps` / `vscalefpd`.

use super::{exp, HalfFloats, Simd, Table16, Table16F32, Vector};
use crate::dispatch::Isa;
use std::arch::x86_64::*;

/// The AVX-512 F/BW/DQ/VL (and AVX2, FMA, F16C, POPCNT) instruction set as a token: [`crate::dispatch`] makes one
/// only after detecting the features.
#[derive(Clone, Copy, Debug)]
pub struct Avx512(());

impl Avx512 {
    /// # Safety
    /// The CPU must have the `Avx512` features of `dispatch::vector_levels!`:
    /// AVX-512 F/BW/DQ/VL (and AVX2, FMA, F16C, POPCNT).
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked() -> Self {
        Avx512(())
    }
}

// SAFETY: the only constructor is `new_unchecked`, whose caller confirmed
// the features; the register types use only those features.
unsafe impl Simd for Avx512 {
    const ISA: Isa = Isa::Avx512;
    type F32 = F32x16;
    type F64 = F64x8;
}

/// Sixteen f32 lanes in a `__m512`.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct F32x16(__m512);

/// Eight f64 lanes in a `__m512d`.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct F64x8(__m512d);

const ROUND_NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

/// Runs intrinsics of AVX-512 F/BW/DQ/VL (and AVX2, FMA, F16C, POPCNT) in a method of a register value.
///
/// Use only there: the value exists only after an `unsafe` constructor
/// whose caller confirmed the CPU has these features (see `Vector`).
macro_rules! avx512 {
    ($e:expr) => {
        // SAFETY: used only in methods of register values, which exist only
        // after an unsafe constructor confirmed the features (see above).
        unsafe { $e }
    };
}

/// The sum of a `__m128`'s four f32 lanes in the last two steps of AVX2's and
/// AVX-512's [`Vector::reduce_add`]: lanes i and i + 2, then lanes 0 and 1.
///
/// # Safety
/// The CPU must have SSE3.
#[inline(always)]
unsafe fn sum_last_steps_ps(q: __m128) -> f32 {
    // SAFETY: the caller has SSE3 (this function's contract), which
    // AVX-512 includes.
    unsafe {
        let p = _mm_add_ps(q, _mm_movehl_ps(q, q));
        _mm_cvtss_f32(_mm_add_ss(p, _mm_movehdup_ps(p)))
    }
}

/// [`sum_last_steps_ps`] with max for add ([`Vector::reduce_max`]).
///
/// # Safety
/// The CPU must have SSE3.
#[inline(always)]
unsafe fn max_last_steps_ps(q: __m128) -> f32 {
    // SAFETY: the caller has SSE3 (this function's contract).
    unsafe {
        let p = _mm_max_ps(q, _mm_movehl_ps(q, q));
        _mm_cvtss_f32(_mm_max_ss(p, _mm_movehdup_ps(p)))
    }
}

/// The sum of a `__m128d`'s two f64 lanes, the last step of AVX2's and
/// AVX-512's [`Vector::reduce_add`].
#[inline(always)]
fn sum_last_step_pd(s: __m128d) -> f64 {
    // SAFETY: SSE2, which every x86-64 CPU has (a target feature of the
    // build, so this function needs no contract).
    unsafe { _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s))) }
}

/// [`sum_last_step_pd`] with max for add ([`Vector::reduce_max`]).
#[inline(always)]
fn max_last_step_pd(s: __m128d) -> f64 {
    // SAFETY: SSE2, which every x86-64 CPU has (a target feature of the
    // build, so this function needs no contract).
    unsafe { _mm_cvtsd_f64(_mm_max_sd(s, _mm_unpackhi_pd(s, s))) }
}

/// The sum of a `__m256`'s eight f32 lanes as AVX2's and AVX-512's
/// [`Vector::reduce_add`] add them from there: lanes i and i + 4, then
/// [`sum_last_steps_ps`].
///
/// # Safety
/// The CPU must have AVX.
#[inline(always)]
unsafe fn sum_half_ps(h: __m256) -> f32 {
    // SAFETY: the caller has AVX (this function's contract).
    unsafe { sum_last_steps_ps(_mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h))) }
}

/// [`sum_half_ps`] with max for add ([`Vector::reduce_max`]).
///
/// # Safety
/// The CPU must have AVX.
#[inline(always)]
unsafe fn max_half_ps(h: __m256) -> f32 {
    // SAFETY: the caller has AVX (this function's contract).
    unsafe { max_last_steps_ps(_mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h))) }
}

/// The sum of a `__m256d`'s four f64 lanes: lanes i and i + 2, then
/// [`sum_last_step_pd`].
///
/// # Safety
/// The CPU must have AVX.
#[inline(always)]
unsafe fn sum_half_pd(h: __m256d) -> f64 {
    // SAFETY: the caller has AVX (this function's contract).
    unsafe { sum_last_step_pd(_mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd::<1>(h))) }
}

/// [`sum_half_pd`] with max for add ([`Vector::reduce_max`]).
///
/// # Safety
/// The CPU must have AVX.
#[inline(always)]
unsafe fn max_half_pd(h: __m256d) -> f64 {
    // SAFETY: the caller has AVX (this function's contract).
    unsafe { max_last_step_pd(_mm_max_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd::<1>(h))) }
}

// SAFETY: F16C and AVX-512 F are part of the level's features
// (`dispatch`), and each method reads or writes exactly sixteen 16-bit
// values.
unsafe impl HalfFloats for F32x16 {
    #[inline(always)]
    unsafe fn load_bf16(p: *const u16) -> Self {
        // SAFETY: the caller's contract: the features, and 16 values at p.
        unsafe { Self(_mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(_mm256_loadu_si256(p.cast()))))) }
    }
    #[inline(always)]
    unsafe fn store_bf16(self, p: *mut u16) {
        // SAFETY: the caller's contract: 16 values at p. The rounding is
        // the AVX2 one (`avx2::round_to_bf16`), on 16 lanes.
        unsafe {
            let bits = _mm512_castps_si512(self.0);
            let high = _mm512_srli_epi32::<16>(bits);
            let bias = _mm512_add_epi32(_mm512_and_si512(high, _mm512_set1_epi32(1)), _mm512_set1_epi32(0x7fff));
            let rounded = _mm512_srli_epi32::<16>(_mm512_add_epi32(bits, bias));
            let quiet = _mm512_or_si512(high, _mm512_set1_epi32(0x40));
            let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(self.0, self.0);
            _mm256_storeu_si256(p.cast(), _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, quiet)))
        }
    }
    #[inline(always)]
    unsafe fn load_f16(p: *const u16) -> Self {
        // SAFETY: the caller's contract: the features, and 16 values at p.
        unsafe { Self(_mm512_cvtph_ps(_mm256_loadu_si256(p.cast()))) }
    }
    #[inline(always)]
    unsafe fn store_f16(self, p: *mut u16) {
        // SAFETY: the caller's contract: 16 values at p.
        unsafe { _mm256_storeu_si256(p.cast(), _mm512_cvtps_ph::<ROUND_NEAREST>(self.0)) }
    }
}

// SAFETY: the register is private (values come only from the unsafe
// constructors) and every method uses only the token's features.
unsafe impl Vector for F32x16 {
    type Elem = f32;
    const LANES: usize = 16;

    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has AVX-512 F/BW/DQ/VL and the pointer is valid for the lanes touched.
        unsafe {
            Self(_mm512_set1_ps(x))
        }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has AVX-512 F/BW/DQ/VL and the pointer is valid for the lanes touched.
        unsafe {
            Self(_mm512_loadu_ps(p))
        }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize, fill: f32) -> Self {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has AVX-512 F/BW/DQ/VL and the pointer is valid for the lanes touched.
        unsafe {
            let mask: __mmask16 = (1u32 << n).wrapping_sub(1) as __mmask16;
            Self(_mm512_mask_loadu_ps(_mm512_set1_ps(fill), mask, p))
        }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has AVX-512 F/BW/DQ/VL and the pointer is valid for the lanes touched.
        unsafe {
            _mm512_storeu_ps(p, self.0)
        }
    }
    #[inline(always)]
    unsafe fn store_stream(self, p: *mut f32) {
        // SAFETY: the caller upholds this method's contract: the CPU has
        // AVX-512 F/BW/DQ/VL, the pointer is valid for the lanes and aligned to the
        // register's size.
        unsafe {
            _mm512_stream_ps(p, self.0)
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
        // has AVX-512 F/BW/DQ/VL and the pointer is valid for the lanes touched.
        unsafe {
            let mask: __mmask16 = (1u32 << n).wrapping_sub(1) as __mmask16;
            _mm512_mask_storeu_ps(p, mask, self.0)
        }
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        avx512!(Self(_mm512_add_ps(self.0, b.0)))
    }
    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        avx512!(Self(_mm512_sub_ps(self.0, b.0)))
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        avx512!(Self(_mm512_mul_ps(self.0, b.0)))
    }
    #[inline(always)]
    fn div(self, b: Self) -> Self {
        avx512!(Self(_mm512_div_ps(self.0, b.0)))
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        avx512!(Self(_mm512_fmadd_ps(self.0, a.0, b.0)))
    }
    #[inline(always)]
    fn max(self, b: Self) -> Self {
        avx512!(Self(_mm512_max_ps(self.0, b.0)))
    }
    #[inline(always)]
    fn min(self, b: Self) -> Self {
        avx512!(Self(_mm512_min_ps(self.0, b.0)))
    }
    #[inline(always)]
    fn abs(self) -> Self {
        avx512!(Self(_mm512_abs_ps(self.0)))
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        avx512!(Self(_mm512_sqrt_ps(self.0)))
    }
    #[inline(always)]
    fn round(self) -> Self {
        avx512!(Self(_mm512_roundscale_ps::<ROUND_NEAREST>(self.0)))
    }
    #[inline(always)]
    fn scale_pow2(self, n: Self) -> Self {
        avx512!(Self(_mm512_scalef_ps(self.0, n.0)))
    }
    #[inline(always)]
    fn scale_down_pow2(self, n: Self) -> Self {
        avx512!(Self(_mm512_scalef_ps(self.0, n.0)))
    }
    const PART_REDUCTIONS: bool = true;
    /// Lanes i and i + 8 added, then i and i + 4, i and i + 2, 0 and 1:
    /// written out (as stdarch's `_mm512_reduce_add_ps` adds them today,
    /// an order Intel does not specify) because `reduce_add16` must add in
    /// the same order.
    #[inline(always)]
    fn reduce_add(self) -> f32 {
        avx512!({
            sum_half_ps(_mm256_add_ps(_mm512_castps512_ps256(self.0), _mm512_extractf32x8_ps::<1>(self.0)))
        })
    }
    /// PART 2: the lower 256 bits alone, AVX2's three steps; PART 4: the
    /// lower 128 bits, two steps.
    #[inline(always)]
    fn reduce_add_part<const PART: usize>(self) -> f32 {
        avx512!(match PART {
            4 => sum_last_steps_ps(_mm512_castps512_ps128(self.0)),
            2 => sum_half_ps(_mm512_castps512_ps256(self.0)),
            _ => self.reduce_add(),
        })
    }
    /// Sixteen sums in four levels of shuffles and adds and one permute
    /// (15 adds and 30 shuffles, against 16 x 4 adds and their shuffles one
    /// register at a time), each level adding the same lane pairs as
    /// [`Vector::reduce_add`] does in one register: lanes i and i + 8,
    /// then i and i + 4, i and i + 2, i and i + 1. So every sum has the
    /// bits of `reduce_add`.
    #[inline(always)]
    fn reduce_add16(regs: &[Self; 16]) -> [f32; 16] {
        avx512!({
            // (Loops, not closures: a closure not inlined would be compiled
            // without AVX-512.)
            // Halves: registers 2p and 2p + 1 (lanes 0-7 | 8-15), each lane
            // i < 8 of a row holding its lanes i + (i + 8).
            let mut halves = [_mm512_setzero_ps(); 8];
            for (p, h) in halves.iter_mut().enumerate() {
                let (a, b) = (regs[2 * p].0, regs[2 * p + 1].0);
                *h = _mm512_add_ps(_mm512_shuffle_f32x4::<0x44>(a, b), _mm512_shuffle_f32x4::<0xEE>(a, b));
            }
            // Quarters: rows 4q .. 4q + 3, one 128-bit block each, lanes i
            // and i + 4 of the halves added.
            let mut quarters = [_mm512_setzero_ps(); 4];
            for (q, h) in quarters.iter_mut().enumerate() {
                let (a, b) = (halves[2 * q], halves[2 * q + 1]);
                *h = _mm512_add_ps(_mm512_shuffle_f32x4::<0x88>(a, b), _mm512_shuffle_f32x4::<0xDD>(a, b));
            }
            // Pairs: block k holds (lanes 0, 1) of row 8w + k, then of row
            // 8w + 4 + k: lanes i and i + 2 of the quarters added.
            let mut pairs = [_mm512_setzero_ps(); 2];
            for (w, h) in pairs.iter_mut().enumerate() {
                let (a, b) = (quarters[2 * w], quarters[2 * w + 1]);
                *h = _mm512_add_ps(_mm512_shuffle_ps::<0x44>(a, b), _mm512_shuffle_ps::<0xEE>(a, b));
            }
            // Lane 4k + m: the sum of row 4m + k (lanes 0 and 1 added).
            let (a, b) = (pairs[0], pairs[1]);
            let sums = _mm512_add_ps(_mm512_shuffle_ps::<0x88>(a, b), _mm512_shuffle_ps::<0xDD>(a, b));
            // Row j = 4m + k from lane 4k + m: a 4x4 transpose of the lanes.
            let rows = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), sums);
            // Sixteen f32 lanes into an array of sixteen.
            let mut out = [0.0f32; 16];
            _mm512_storeu_ps(out.as_mut_ptr(), rows);
            out
        })
    }
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        avx512!(_mm512_reduce_max_ps(self.0))
    }
    /// As `reduce_add_part`; `_mm512_reduce_max_ps` ends in
    /// [`max_last_steps_ps`]'s steps.
    #[inline(always)]
    fn reduce_max_part<const PART: usize>(self) -> f32 {
        avx512!(match PART {
            4 => max_last_steps_ps(_mm512_castps512_ps128(self.0)),
            2 => max_half_ps(_mm512_castps512_ps256(self.0)),
            _ => self.reduce_max(),
        })
    }
    #[inline(always)]
    fn first_lane(self) -> f32 {
        avx512!(_mm512_cvtss_f32(self.0))
    }
    const INLINE_LN: bool = true;
    #[inline(always)]
    unsafe fn ln8(s: &[f64; 8]) -> [f64; 8] {
        // SAFETY: the caller's contract: the CPU has this level's
        // features, which include AVX-512 F and DQ.
        unsafe { crate::softmax::ln::ln8_avx512(s) }
    }
    #[inline(always)]
    fn reduce_min(self) -> f32 {
        avx512!(_mm512_reduce_min_ps(self.0))
    }
    /// The table form with the exponent built in integers
    /// ([`exp::exp_down_table16_f32`]); `lo` is not needed there.
    #[inline(always)]
    fn exp_down_n_first(self, _lo: Self, n: Self) -> Self {
        avx512!(exp::exp_down_table16_f32(self, n))
    }
}

impl Table16F32 for F32x16 {
    /// `vpermps` reads the low 4 bits of each index lane.
    #[inline(always)]
    fn lookup16_scaled(self, index: Self) -> Self {
        avx512!({
            let index = _mm512_castps_si512(index.0);
            let entry = _mm512_castps_si512(_mm512_permutexvar_ps(index, self.0));
            Self(_mm512_castsi512_ps(_mm512_add_epi32(entry, _mm512_slli_epi32::<19>(index))))
        })
    }
    #[inline(always)]
    fn mul_add_unless_below(self, a: Self, b: Self, v: Self, limit: Self) -> Self {
        avx512!(Self(_mm512_maskz_fmadd_ps(_mm512_cmp_ps_mask::<_CMP_NLT_UQ>(v.0, limit.0), self.0, a.0, b.0)))
    }
}

// SAFETY: the register is private (values come only from the unsafe
// constructors) and every method uses only the token's features.
unsafe impl Vector for F64x8 {
    type Elem = f64;
    const LANES: usize = 8;

    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has AVX-512 F/BW/DQ/VL and the pointer is valid for the lanes touched.
        unsafe {
            Self(_mm512_set1_pd(x))
        }
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has AVX-512 F/BW/DQ/VL and the pointer is valid for the lanes touched.
        unsafe {
            Self(_mm512_loadu_pd(p))
        }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f64, n: usize, fill: f64) -> Self {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has AVX-512 F/BW/DQ/VL and the pointer is valid for the lanes touched.
        unsafe {
            let mask: __mmask8 = (1u32 << n).wrapping_sub(1) as __mmask8;
            Self(_mm512_mask_loadu_pd(_mm512_set1_pd(fill), mask, p))
        }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has AVX-512 F/BW/DQ/VL and the pointer is valid for the lanes touched.
        unsafe {
            _mm512_storeu_pd(p, self.0)
        }
    }
    #[inline(always)]
    unsafe fn store_stream(self, p: *mut f64) {
        // SAFETY: the caller upholds this method's contract: the CPU has
        // AVX-512 F/BW/DQ/VL, the pointer is valid for the lanes and aligned to the
        // register's size.
        unsafe {
            _mm512_stream_pd(p, self.0)
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
        // has AVX-512 F/BW/DQ/VL and the pointer is valid for the lanes touched.
        unsafe {
            let mask: __mmask8 = (1u32 << n).wrapping_sub(1) as __mmask8;
            _mm512_mask_storeu_pd(p, mask, self.0)
        }
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        avx512!(Self(_mm512_add_pd(self.0, b.0)))
    }
    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        avx512!(Self(_mm512_sub_pd(self.0, b.0)))
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        avx512!(Self(_mm512_mul_pd(self.0, b.0)))
    }
    #[inline(always)]
    fn div(self, b: Self) -> Self {
        avx512!(Self(_mm512_div_pd(self.0, b.0)))
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        avx512!(Self(_mm512_fmadd_pd(self.0, a.0, b.0)))
    }
    #[inline(always)]
    fn max(self, b: Self) -> Self {
        avx512!(Self(_mm512_max_pd(self.0, b.0)))
    }
    #[inline(always)]
    fn min(self, b: Self) -> Self {
        avx512!(Self(_mm512_min_pd(self.0, b.0)))
    }
    #[inline(always)]
    fn abs(self) -> Self {
        avx512!(Self(_mm512_abs_pd(self.0)))
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        avx512!(Self(_mm512_sqrt_pd(self.0)))
    }
    #[inline(always)]
    fn round(self) -> Self {
        avx512!(Self(_mm512_roundscale_pd::<ROUND_NEAREST>(self.0)))
    }
    #[inline(always)]
    fn scale_pow2(self, n: Self) -> Self {
        avx512!(Self(_mm512_scalef_pd(self.0, n.0)))
    }
    #[inline(always)]
    fn scale_down_pow2(self, n: Self) -> Self {
        avx512!(Self(_mm512_scalef_pd(self.0, n.0)))
    }
    #[inline(always)]
    fn reduce_add(self) -> f64 {
        avx512!(_mm512_reduce_add_pd(self.0))
    }
    const PART_REDUCTIONS: bool = true;
    /// PART 2: the lower 256 bits alone, AVX2's two steps; PART 4: the
    /// lower 128 bits, one step.
    /// `_mm512_reduce_add_pd` ends in [`sum_last_step_pd`]'s step.
    #[inline(always)]
    fn reduce_add_part<const PART: usize>(self) -> f64 {
        avx512!(match PART {
            4 => sum_last_step_pd(_mm512_castpd512_pd128(self.0)),
            2 => sum_half_pd(_mm512_castpd512_pd256(self.0)),
            _ => self.reduce_add(),
        })
    }
    #[inline(always)]
    fn reduce_max(self) -> f64 {
        avx512!(_mm512_reduce_max_pd(self.0))
    }
    /// As `reduce_add_part`.
    #[inline(always)]
    fn reduce_max_part<const PART: usize>(self) -> f64 {
        avx512!(match PART {
            4 => max_last_step_pd(_mm512_castpd512_pd128(self.0)),
            2 => max_half_pd(_mm512_castpd512_pd256(self.0)),
            _ => self.reduce_max(),
        })
    }
    #[inline(always)]
    fn first_lane(self) -> f64 {
        avx512!(_mm512_cvtsd_f64(self.0))
    }
    const INLINE_LN: bool = true;
    #[inline(always)]
    unsafe fn ln8(s: &[f64; 8]) -> [f64; 8] {
        // SAFETY: the caller's contract: the CPU has this level's
        // features, which include AVX-512 F and DQ.
        unsafe { crate::softmax::ln::ln8_avx512(s) }
    }
    #[inline(always)]
    fn reduce_min(self) -> f64 {
        avx512!(_mm512_reduce_min_pd(self.0))
    }
    /// The table form ([`exp::exp_parts_table16`]).
    #[inline(always)]
    fn exp_parts_fast(self) -> (Self, Self) {
        avx512!(exp::exp_parts_table16(self))
    }
    /// The table form scaled by `vscalefpd` ([`exp::exp_down_table16`]).
    #[inline(always)]
    fn exp_down_fast(self, lo: Self, n: Self) -> Self {
        avx512!(exp::exp_down_table16(self, lo, n))
    }
}

impl Table16 for F64x8 {
    #[inline(always)]
    fn floor(self) -> Self {
        avx512!(Self(_mm512_roundscale_pd::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(self.0)))
    }
    /// `vpermt2pd` reads the low 3 bits of each index lane and bit 3 to
    /// pick the register: entries 0..8 in the first, 8..16 in the second
    /// (two loads the kernels' loops hoist).
    #[inline(always)]
    fn lookup16(self, table: &[f64; 16]) -> Self {
        avx512!({
            // Both loads stay inside the 16 entries of `table`.
            let (low, high) = (_mm512_loadu_pd(table.as_ptr()), _mm512_loadu_pd(table.as_ptr().add(8)));
            Self(_mm512_permutex2var_pd(low, _mm512_castpd_si512(self.0), high))
        })
    }
    #[inline(always)]
    fn scale_pow2_floor(self, e: Self) -> Self {
        avx512!(Self(_mm512_scalef_pd(self.0, e.0)))
    }
}
