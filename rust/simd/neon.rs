//! [`Vector`] for aarch64 Advanced SIMD (NEON) registers: 4 x f32 and 2 x f64.
//!
//! NEON is part of the aarch64 baseline, so every aarch64 CPU has it; the
//! token still comes only from [`crate::dispatch`], like the x86 ones.
//!
//! Two things differ from x86 and are emulated so that the kernels, written
//! once, see the same semantics on every level:
//! - `max` / `min` follow x86 (`self > b ? self : b`, so `b` when either
//!   is NaN), a compare and a bit select: NEON's `fmax` returns NaN for a
//!   NaN in either operand and `fmaxnm` the number.
//! - There are no masked loads and stores: partial ones go through a
//!   register-sized stack buffer, touching only the `n` elements given.

use super::{HalfFloats, Simd, Vector};
use crate::dispatch::Isa;
use std::arch::aarch64::*;
use std::ptr;

/// The NEON instruction set as a token: [`crate::dispatch`] makes one only
/// after detecting the feature (always present on aarch64).
#[derive(Clone, Copy, Debug)]
pub struct Neon(());

impl Neon {
    /// # Safety
    /// The CPU must have NEON.
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked() -> Self {
        Neon(())
    }
}

// SAFETY: the only constructor is `new_unchecked`, whose caller confirmed
// the feature; the register types use only NEON.
unsafe impl Simd for Neon {
    const ISA: Isa = Isa::Neon;
    type F32 = F32x4;
    type F64 = F64x2;
}

/// Four f32 lanes in a `float32x4_t`.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct F32x4(float32x4_t);

/// Two f64 lanes in a `float64x2_t`.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct F64x2(float64x2_t);

/// 2^k as f32 for integer k in [-127, 127] (-127 gives +0), from the exponent bits.
#[inline(always)]
unsafe fn pow2_f32(k: int32x4_t) -> float32x4_t {
    // SAFETY: the caller has NEON (this function's contract).
    unsafe { vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(k, vdupq_n_s32(127)))) }
}

/// 2^k as f64 for integer k in [-1023, 1023] (-1023 gives +0), from the exponent bits.
#[inline(always)]
unsafe fn pow2_f64(k: int64x2_t) -> float64x2_t {
    // SAFETY: the caller has NEON (this function's contract).
    unsafe { vreinterpretq_f64_s64(vshlq_n_s64::<52>(vaddq_s64(k, vdupq_n_s64(1023)))) }
}

/// Runs NEON intrinsics in a method of a register value.
///
/// Use only there: the value exists only after an `unsafe` constructor
/// whose caller confirmed the CPU has NEON (see `Vector`).
macro_rules! neon {
    ($e:expr) => {
        // SAFETY: used only in methods of register values, which exist only
        // after an unsafe constructor confirmed the feature (see above).
        unsafe { $e }
    };
}

// SAFETY: `fcvtl` / `fcvtn` and the integer operations are base aarch64
// Advanced SIMD; each method reads or writes exactly four 16-bit values.
// The float16 conversions round as FPCR says: to nearest even, no flush to
// zero and NaN payloads kept, the defaults every aarch64 OS runs with.
unsafe impl HalfFloats for F32x4 {
    #[inline(always)]
    unsafe fn load_bf16(p: *const u16) -> Self {
        // SAFETY: the caller's contract: 4 values at p.
        unsafe { Self(vreinterpretq_f32_u32(vshll_n_u16::<16>(vld1_u16(p)))) }
    }
    #[inline(always)]
    unsafe fn store_bf16(self, p: *mut u16) {
        // SAFETY: the caller's contract: 4 values at p. Rounding as on
        // x86 (`avx2::round_to_bf16`).
        unsafe {
            let bits = vreinterpretq_u32_f32(self.0);
            let high = vshrq_n_u32::<16>(bits);
            let bias = vaddq_u32(vandq_u32(high, vdupq_n_u32(1)), vdupq_n_u32(0x7fff));
            let rounded = vshrq_n_u32::<16>(vaddq_u32(bits, bias));
            let quiet = vorrq_u32(high, vdupq_n_u32(0x40));
            let is_number = vceqq_f32(self.0, self.0);
            vst1_u16(p, vmovn_u32(vbslq_u32(is_number, rounded, quiet)))
        }
    }
    #[inline(always)]
    unsafe fn load_f16(p: *const u16) -> Self {
        // SAFETY: the caller's contract: 4 values at p; `fcvtl` only
        // touches registers.
        unsafe {
            let half = vld1_u16(p);
            let wide: float32x4_t;
            std::arch::asm!("fcvtl {w:v}.4s, {h:v}.4h", w = lateout(vreg) wide, h = in(vreg) half, options(pure, nomem, nostack, preserves_flags));
            Self(wide)
        }
    }
    #[inline(always)]
    unsafe fn store_f16(self, p: *mut u16) {
        // SAFETY: the caller's contract: 4 values at p; `fcvtn` only
        // touches registers.
        unsafe {
            let half: uint16x4_t;
            std::arch::asm!("fcvtn {h:v}.4h, {w:v}.4s", h = lateout(vreg) half, w = in(vreg) self.0, options(pure, nomem, nostack, preserves_flags));
            vst1_u16(p, half)
        }
    }
}

// SAFETY: the register is private (values come only from the unsafe
// constructors) and every method uses only NEON.
unsafe impl Vector for F32x4 {
    type Elem = f32;
    const LANES: usize = 4;

    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: the caller upholds this constructor's contract: the CPU has NEON.
        unsafe { Self(vdupq_n_f32(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has NEON and `p` is valid for reading 4 elements.
        unsafe { Self(vld1q_f32(p)) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize, fill: f32) -> Self {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has NEON, n < 4 and `p` is valid for reading n elements; the
        // register is loaded from the local buffer.
        unsafe {
            let mut buf = [fill; 4];
            ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
            Self(vld1q_f32(buf.as_ptr()))
        }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller upholds this method's contract: `p` is valid
        // for writing 4 elements.
        unsafe { vst1q_f32(p, self.0) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        // SAFETY: the caller upholds this method's contract: n < 4 and `p`
        // is valid for writing n elements; the register goes to the local
        // buffer first.
        unsafe {
            let mut buf = [0.0f32; 4];
            vst1q_f32(buf.as_mut_ptr(), self.0);
            ptr::copy_nonoverlapping(buf.as_ptr(), p, n);
        }
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        neon!(Self(vaddq_f32(self.0, b.0)))
    }
    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        neon!(Self(vsubq_f32(self.0, b.0)))
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        neon!(Self(vmulq_f32(self.0, b.0)))
    }
    #[inline(always)]
    fn div(self, b: Self) -> Self {
        neon!(Self(vdivq_f32(self.0, b.0)))
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        // vfmaq_f32(c, a, b) = c + a * b, one rounding.
        neon!(Self(vfmaq_f32(b.0, self.0, a.0)))
    }
    #[inline(always)]
    fn max(self, b: Self) -> Self {
        neon!(Self(vbslq_f32(vcgtq_f32(self.0, b.0), self.0, b.0)))
    }
    #[inline(always)]
    fn min(self, b: Self) -> Self {
        neon!(Self(vbslq_f32(vcltq_f32(self.0, b.0), self.0, b.0)))
    }
    #[inline(always)]
    fn abs(self) -> Self {
        neon!(Self(vabsq_f32(self.0)))
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        neon!(Self(vsqrtq_f32(self.0)))
    }
    #[inline(always)]
    fn round(self) -> Self {
        neon!(Self(vrndnq_f32(self.0)))
    }
    /// Two steps of 2^k built from exponent bits, each k in [-126, 127], as
    /// on AVX2: exact for |self| in [2^-100, 2^100] (and 0). `n` must not be
    /// NaN unless `self` is (a NaN `n` converts to k = 0 here).
    #[inline(always)]
    fn scale_pow2(self, n: Self) -> Self {
        neon!({
            let n = vminq_f32(vdupq_n_f32(254.0), vmaxq_f32(vdupq_n_f32(-252.0), n.0));
            let k = vcvtnq_s32_f32(n);
            let a = vshrq_n_s32::<1>(k);
            let b = vsubq_s32(k, a);
            Self(vmulq_f32(vmulq_f32(self.0, pow2_f32(a)), pow2_f32(b)))
        })
    }
    /// k = max(n, -127): 2^-127 built from exponent bits is +0.
    #[inline(always)]
    fn scale_down_pow2(self, n: Self) -> Self {
        neon!({
            let k = vcvtnq_s32_f32(vmaxq_f32(vdupq_n_f32(-127.0), n.0));
            Self(vmulq_f32(self.0, pow2_f32(k)))
        })
    }
    #[inline(always)]
    fn reduce_add(self) -> f32 {
        // Pairwise: (l0 + l1) + (l2 + l3).
        neon!(vaddvq_f32(self.0))
    }
    /// The x86 reduction order with the x86 `max`: lanes i and i + 2, then
    /// the two results.
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        neon!({
            let s = self.max(Self(vextq_f32::<2>(self.0, self.0)));
            vgetq_lane_f32::<0>(s.max(Self(vextq_f32::<1>(s.0, s.0))).0)
        })
    }
    /// As `reduce_max`.
    #[inline(always)]
    fn reduce_min(self) -> f32 {
        neon!({
            let s = self.min(Self(vextq_f32::<2>(self.0, self.0)));
            vgetq_lane_f32::<0>(s.min(Self(vextq_f32::<1>(s.0, s.0))).0)
        })
    }
    #[inline(always)]
    fn first_lane(self) -> f32 {
        neon!(vgetq_lane_f32::<0>(self.0))
    }
}

// SAFETY: the register is private (values come only from the unsafe
// constructors) and every method uses only NEON.
unsafe impl Vector for F64x2 {
    type Elem = f64;
    const LANES: usize = 2;

    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        // SAFETY: the caller upholds this constructor's contract: the CPU has NEON.
        unsafe { Self(vdupq_n_f64(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has NEON and `p` is valid for reading 2 elements.
        unsafe { Self(vld1q_f64(p)) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f64, n: usize, fill: f64) -> Self {
        // SAFETY: the caller upholds this constructor's contract: the CPU
        // has NEON, n < 2 and `p` is valid for reading n elements; the
        // register is loaded from the local buffer.
        unsafe {
            let mut buf = [fill; 2];
            ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
            Self(vld1q_f64(buf.as_ptr()))
        }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: the caller upholds this method's contract: `p` is valid
        // for writing 2 elements.
        unsafe { vst1q_f64(p, self.0) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f64, n: usize) {
        // SAFETY: the caller upholds this method's contract: n < 2 and `p`
        // is valid for writing n elements; the register goes to the local
        // buffer first.
        unsafe {
            let mut buf = [0.0f64; 2];
            vst1q_f64(buf.as_mut_ptr(), self.0);
            ptr::copy_nonoverlapping(buf.as_ptr(), p, n);
        }
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        neon!(Self(vaddq_f64(self.0, b.0)))
    }
    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        neon!(Self(vsubq_f64(self.0, b.0)))
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        neon!(Self(vmulq_f64(self.0, b.0)))
    }
    #[inline(always)]
    fn div(self, b: Self) -> Self {
        neon!(Self(vdivq_f64(self.0, b.0)))
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        // vfmaq_f64(c, a, b) = c + a * b, one rounding.
        neon!(Self(vfmaq_f64(b.0, self.0, a.0)))
    }
    #[inline(always)]
    fn max(self, b: Self) -> Self {
        neon!(Self(vbslq_f64(vcgtq_f64(self.0, b.0), self.0, b.0)))
    }
    #[inline(always)]
    fn min(self, b: Self) -> Self {
        neon!(Self(vbslq_f64(vcltq_f64(self.0, b.0), self.0, b.0)))
    }
    #[inline(always)]
    fn abs(self) -> Self {
        neon!(Self(vabsq_f64(self.0)))
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        neon!(Self(vsqrtq_f64(self.0)))
    }
    #[inline(always)]
    fn round(self) -> Self {
        neon!(Self(vrndnq_f64(self.0)))
    }
    /// Two steps of 2^k, each k in [-1022, 1023]: exact for |self| in
    /// [2^-900, 2^900] (and 0). `n` must not be NaN unless `self` is.
    #[inline(always)]
    fn scale_pow2(self, n: Self) -> Self {
        neon!({
            let n = vminq_f64(vdupq_n_f64(2046.0), vmaxq_f64(vdupq_n_f64(-2044.0), n.0));
            let k = vcvtnq_s64_f64(n);
            let a = vshrq_n_s64::<1>(k);
            let b = vsubq_s64(k, a);
            Self(vmulq_f64(vmulq_f64(self.0, pow2_f64(a)), pow2_f64(b)))
        })
    }
    /// k = max(n, -1023): 2^-1023 built from exponent bits is +0.
    #[inline(always)]
    fn scale_down_pow2(self, n: Self) -> Self {
        neon!({
            let k = vcvtnq_s64_f64(vmaxq_f64(vdupq_n_f64(-1023.0), n.0));
            Self(vmulq_f64(self.0, pow2_f64(k)))
        })
    }
    #[inline(always)]
    fn reduce_add(self) -> f64 {
        neon!(vaddvq_f64(self.0))
    }
    #[inline(always)]
    fn reduce_max(self) -> f64 {
        neon!(vgetq_lane_f64::<0>(self.max(Self(vextq_f64::<1>(self.0, self.0))).0))
    }
    #[inline(always)]
    fn reduce_min(self) -> f64 {
        neon!(vgetq_lane_f64::<0>(self.min(Self(vextq_f64::<1>(self.0, self.0))).0))
    }
    #[inline(always)]
    fn first_lane(self) -> f64 {
        neon!(vgetq_lane_f64::<0>(self.0))
    }
}
