//! Vector math shared by the kernels.
//!
//! [`Real`] is the scalar element (f32 or f64) with the constants the
//! kernels need. [`Vector`] is one SIMD register of `Real`s; [`Simd`] is an
//! instruction set as a token type naming its registers. One file per
//! instruction set holds its token and register types (`avx2` and `avx512`
//! on x86-64, `neon` on aarch64). Kernels are written once, generic over
//! `V: Vector`, marked `#[inline(always)]`, and reached through
//! [`crate::dispatch::run`], whose one `#[target_feature]` trampoline per
//! level inlines every intrinsic into straight-line code.
//!
//! [`exp`] holds the exponential shared by the softmax kernels, [`prefetch`]
//! the software prefetch of the streaming passes, [`storage`]
//! the element types rows are stored in ([`Element`]: f32, f64, and the
//! 16-bit bfloat16 and float16 computed in f32) and their loads and stores.

pub mod exp;
pub mod prefetch;
mod storage;

#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx512;
#[cfg(target_arch = "aarch64")]
pub mod neon;

pub use storage::{bf16, f16, Element, Float, HalfFloats, Storage};

use crate::dispatch::Isa;
use std::fmt::Debug;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// A floating-point element type the kernels run on: `f32` or `f64`.
pub trait Real:
    Copy
    + Send
    + Sync
    + Debug
    + Default
    + PartialOrd
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    const INFINITY: Self;
    const NEG_INFINITY: Self;
    const NAN: Self;
    /// Mantissa bits including the implicit one (24 or 53).
    const MANTISSA_DIGITS: u32;

    /// log2(e), and ln(2) split in a high part and a low correction so that
    /// `x - n*ln2` is accurate for the `n` that occur (Cody & Waite).
    const LOG2E: Self;
    const LN2_HI: Self;
    const LN2_LO: Self;
    /// 1.5 * 2^(MANTISSA_DIGITS - 1): adding it rounds any |v| < 2^(digits-2)
    /// to an integer (to nearest, ties to even) and subtracting it again
    /// gives round(v) exactly, one add instead of a round instruction.
    const ROUND_MAGIC: Self;
    /// Coefficients c0..=ck of the polynomial that approximates exp(t) on
    /// [-ln2/2, ln2/2] with minimal relative error; c0 = 1.
    const EXP_POLY: &'static [Self];
    /// A cheaper polynomial for kernels that tolerate a little more error
    /// (softmax: its own tolerance is 2e-6 relative): degree 5 for f32,
    /// within `exp::EXP_FAST_MAX_ULP` (measured exhaustively: 2.02 ulp, vs
    /// 1.06 for `EXP_POLY`); the same as `EXP_POLY` for f64 (AVX2 and
    /// AVX-512 float64 use the table forms `exp::exp_parts_table4` and
    /// `exp::exp_parts_table16` instead).
    const EXP_POLY_FAST: &'static [Self];
    /// Clamp bounds for exp: exp(EXP_X_MAX) rounds to +inf and exp(EXP_X_MIN)
    /// rounds to 0, so clamping the input changes no result.
    const EXP_X_MAX: Self;
    const EXP_X_MIN: Self;

    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn from_usize(n: usize) -> Self;
    fn mul_add(self, a: Self, b: Self) -> Self;
    fn round_even(self) -> Self;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    fn is_nan(self) -> bool;
    fn is_finite(self) -> bool;
    /// IEEE maximum that ignores NaN (`f32::max` semantics).
    fn max(self, other: Self) -> Self;
    fn min(self, other: Self) -> Self;
    /// self * 2^n for an integral n of any size: exact where representable,
    /// a single rounding into the subnormal range, 0 or inf beyond.
    fn scale_pow2(self, n: Self) -> Self;
}

macro_rules! impl_real {
    ($t:ident, $bits:ident, $digits:expr, $ln2_hi:expr, $ln2_lo:expr, $poly:expr, $poly_fast:expr, $xmax:expr, $xmin:expr, $max_exp:expr) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const INFINITY: Self = $t::INFINITY;
            const NEG_INFINITY: Self = $t::NEG_INFINITY;
            const NAN: Self = $t::NAN;
            const MANTISSA_DIGITS: u32 = $digits;
            const LOG2E: Self = std::$t::consts::LOG2_E;
            const LN2_HI: Self = $ln2_hi;
            const LN2_LO: Self = $ln2_lo;
            const ROUND_MAGIC: Self = 1.5 * (1u64 << ($digits - 1)) as $t;
            const EXP_POLY: &'static [Self] = &$poly;
            const EXP_POLY_FAST: &'static [Self] = &$poly_fast;
            const EXP_X_MAX: Self = $xmax;
            const EXP_X_MIN: Self = $xmin;

            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_usize(n: usize) -> Self {
                n as $t
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                $t::mul_add(self, a, b)
            }
            #[inline(always)]
            fn round_even(self) -> Self {
                $t::round_ties_even(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                $t::sqrt(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                $t::abs(self)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                $t::is_nan(self)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                $t::is_finite(self)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                $t::max(self, other)
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                $t::min(self, other)
            }
            fn scale_pow2(self, n: Self) -> Self {
                if n.is_nan() {
                    return $t::NAN;
                }
                // Three factors 2^a 2^b 2^c of one sign, each in
                // [2 - max_exp, max_exp - 1], so only the last multiply can
                // round; the clamp already sends every finite value to 0 or inf.
                let k = n.max(-3.0 * ($max_exp - 2) as $t).min(3.0 * ($max_exp - 1) as $t) as i64;
                let a = k / 3;
                let b = (k - a) / 2;
                let c = k - a - b;
                let pow2 = |e: i64| $t::from_bits(((e + $max_exp - 1) as $bits) << ($digits - 1));
                self * pow2(a) * pow2(b) * pow2(c)
            }
        }
    };
}

// ln2_hi is ln 2 rounded to the type; ln2_lo is the rounded remainder.
// Polynomials: minimax relative error on [-ln2/2, ln2/2] (Lawson-weighted
// least squares at 50 digits): degree 6 for f32 (0.03 ulp; the fast one,
// degree 5, 0.77 ulp), 11 for f64 (0.03 ulp).
impl_real!(
    f32,
    u32,
    24,
    std::f32::consts::LN_2,
    -1.904_654_3e-9,
    [1.0, 1.0, 0.499_999_94, 0.166_664_32, 0.041_668, 0.008_374_155_5, 0.001_384_365_3],
    [1.0, 0.999_999_7, 0.499_991_5, 0.166_676_36, 0.041_897_93, 0.008_290_312],
    89.0,
    -104.0,
    128
);
impl_real!(
    f64,
    u64,
    53,
    std::f64::consts::LN_2,
    2.319_046_813_846_299_6e-17,
    [
        1.0,
        1.0,
        0.500_000_000_000_001_2,
        0.166_666_666_666_662_16,
        0.041_666_666_666_517_825,
        0.008_333_333_333_549_697,
        0.001_388_888_894_635_319_6,
        0.000_198_412_694_367_867_94,
        2.480_149_063_605_64e-5,
        2.755_762_670_580_133e-6,
        2.763_103_417_799_931e-7,
        2.499_143_010_626_16e-8
    ],
    [
        1.0,
        1.0,
        0.500_000_000_000_001_2,
        0.166_666_666_666_662_16,
        0.041_666_666_666_517_825,
        0.008_333_333_333_549_697,
        0.001_388_888_894_635_319_6,
        0.000_198_412_694_367_867_94,
        2.480_149_063_605_64e-5,
        2.755_762_670_580_133e-6,
        2.763_103_417_799_931e-7,
        2.499_143_010_626_16e-8
    ],
    710.0,
    -746.0,
    1024
);

/// A vector instruction set, as a zero-sized token.
///
/// # Safety
/// A value of an implementing type may exist only on a CPU that has every
/// feature of the set: its constructor is `unsafe` and called only by
/// [`crate::dispatch`] after detection. Holding a token is the proof that
/// the register types `F32` and `F64` may be used.
pub unsafe trait Simd: Copy + Send + Sync + 'static {
    /// The level this token stands for.
    const ISA: Isa;
    type F32: HalfFloats;
    type F64: Vector<Elem = f64>;
}

/// One SIMD register of `LANES` elements of `Self::Elem`.
///
/// Constructors (`splat`, the loads) are `unsafe`: they need the CPU
/// feature of the implementing type, which code reached through
/// [`crate::dispatch::run`] has. Everything else is a safe call, because a
/// value of the type exists only after such a constructor ran.
///
/// # Safety
/// Implementors must keep their register private, so that values are only
/// made by the constructors below, and every method must use only
/// instructions of the type's feature set.
pub unsafe trait Vector: Copy {
    type Elem: Real;
    const LANES: usize;

    /// Every lane set to `x`.
    ///
    /// # Safety
    /// The CPU must have this type's features.
    unsafe fn splat(x: Self::Elem) -> Self;
    /// Unaligned load of `LANES` elements.
    ///
    /// # Safety
    /// As for [`Vector::splat`], and `p` must be valid for reading `LANES`
    /// elements.
    unsafe fn load(p: *const Self::Elem) -> Self;
    /// Loads `n < LANES` elements; the other lanes hold `fill`.
    ///
    /// # Safety
    /// As for [`Vector::splat`], `n < LANES`, and `p` must be valid for
    /// reading `n` elements (nothing past them is read).
    unsafe fn load_partial(p: *const Self::Elem, n: usize, fill: Self::Elem) -> Self;
    /// Unaligned store of all lanes.
    ///
    /// # Safety
    /// `p` must be valid for writing `LANES` elements.
    unsafe fn store(self, p: *mut Self::Elem);
    /// Stores the first `n < LANES` lanes; memory past them is not touched.
    ///
    /// # Safety
    /// `n < LANES` and `p` must be valid for writing `n` elements.
    unsafe fn store_partial(self, p: *mut Self::Elem, n: usize);
    /// Store of all lanes that bypasses the caches (a non-temporal store)
    /// where the level has one, for outputs too large to stay in the
    /// last-level cache: the line is then written without being read
    /// first. Such stores are weakly ordered until [`Vector::stream_fence`].
    /// A plain store where the level has none.
    ///
    /// # Safety
    /// As for [`Vector::store`], and `p` must be aligned to
    /// `LANES * size_of::<Elem>()` bytes.
    #[inline(always)]
    unsafe fn store_stream(self, p: *mut Self::Elem) {
        // SAFETY: the caller's contract includes `store`'s.
        unsafe { self.store(p) }
    }
    /// Orders every earlier [`Vector::store_stream`] before later stores
    /// (so another thread that synchronizes with this one sees them).
    ///
    /// # Safety
    /// As for [`Vector::splat`].
    #[inline(always)]
    unsafe fn stream_fence() {}

    /// Loads `count <= LANES` elements: a full load when `count == LANES`,
    /// else a partial one with `fill` in the other lanes. The one tail
    /// helper of every kernel.
    ///
    /// # Safety
    /// As for [`Vector::splat`], `count <= LANES`, and `p` must be valid
    /// for reading `count` elements.
    #[inline(always)]
    unsafe fn load_n(p: *const Self::Elem, count: usize, fill: Self::Elem) -> Self {
        if count == Self::LANES {
            // SAFETY: the caller's contract with count = LANES.
            unsafe { Self::load(p) }
        } else {
            // SAFETY: the caller's contract with count < LANES.
            unsafe { Self::load_partial(p, count, fill) }
        }
    }
    /// Stores the first `count <= LANES` lanes.
    ///
    /// # Safety
    /// `count <= LANES` and `p` must be valid for writing `count` elements.
    #[inline(always)]
    unsafe fn store_n(self, p: *mut Self::Elem, count: usize) {
        if count == Self::LANES {
            // SAFETY: the caller's contract with count = LANES.
            unsafe { self.store(p) }
        } else {
            // SAFETY: the caller's contract with count < LANES.
            unsafe { self.store_partial(p, count) }
        }
    }

    fn add(self, b: Self) -> Self;
    fn sub(self, b: Self) -> Self;
    fn mul(self, b: Self) -> Self;
    fn div(self, b: Self) -> Self;
    /// self * a + b with one rounding.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// x86 `max`: returns `b` when either operand is NaN (and for equal
    /// operands, such as -0 and +0). Put the value that must propagate NaN
    /// second. NEON emulates it with a compare and a select.
    fn max(self, b: Self) -> Self;
    /// x86 `min`: returns `b` when either operand is NaN (or they are equal).
    fn min(self, b: Self) -> Self;
    fn abs(self) -> Self;
    fn sqrt(self) -> Self;
    /// Round to the nearest integer, ties to even.
    fn round(self) -> Self;
    /// self * 2^n for integral `n`: exact where representable, one rounding
    /// into the subnormal range, 0 / inf beyond. `n` must be finite when
    /// `self` may be NaN: AVX-512's vscalefps(NaN, +inf) returns +inf.
    fn scale_pow2(self, n: Self) -> Self;
    /// self * 2^n for integral n <= 1 where the result may be flushed to 0
    /// once 2^n is below the smallest normal power (2^-126 / 2^-1022): one
    /// step on AVX2 instead of two. For terms of sums and for results that
    /// small. `n` must not be NaN or -inf unless `self` is NaN.
    fn scale_down_pow2(self, n: Self) -> Self;

    fn reduce_add(self) -> Self::Elem;
    /// Sixteen registers' [`Vector::reduce_add`] at once, bit for bit:
    /// element j is `regs[j].reduce_add()`. One reduction after another
    /// unless the register overrides it with a transposed tree
    /// (AVX-512 float32, whose 16 lanes take the 16 sums).
    #[inline(always)]
    fn reduce_add16(regs: &[Self; 16]) -> [Self::Elem; 16] {
        // A loop, not a closure: one not inlined would be compiled without
        // the level's features.
        let mut sums = [Self::Elem::ZERO; 16];
        for (s, r) in sums.iter_mut().zip(regs) {
            *s = r.reduce_add();
        }
        sums
    }
    fn reduce_max(self) -> Self::Elem;
    /// Whether [`Vector::reduce_add_part`] and [`Vector::reduce_max_part`]
    /// take fewer steps than the whole register's reductions, so that
    /// loops over short rows are worth a copy for each part
    /// (`softmax::vector::register_part`): AVX-512 only. AVX2 has the
    /// defaults: with the copies (and the lower 128 bits for PART 2 and
    /// 4), softmax rows of 8 to 32 float32 and 4 to 8 float64, which the
    /// parts do not shorten, took 1.03-1.13x the time, and in the hot loop
    /// of rows of 16, 15 sampled instructions had a ymm register and a
    /// stack operand, against 2; rows of at most 4 float32 and 2 float64
    /// took 0.70-0.73x, log-softmax 0.33-0.92x (issue 11, round 46, one
    /// run in each order).
    const PART_REDUCTIONS: bool = false;
    /// [`Vector::reduce_add`] of a register whose lanes from LANES / `PART`
    /// on hold +0 (`PART` 1, 2 or 4), without the halving steps that would
    /// add only those zeros (AVX-512: one or two of a short row's
    /// reduction). The same bits unless a lane holds -0 (x + 0 is x for
    /// every other x, so a zero sum may differ in sign) or two lanes hold
    /// NaNs of different payloads (which one a sum passes on is the
    /// compiler's choice).
    #[inline(always)]
    fn reduce_add_part<const PART: usize>(self) -> Self::Elem {
        self.reduce_add()
    }
    /// [`Vector::reduce_max`] of a register whose lanes from LANES / `PART`
    /// on hold -inf, without the halving steps that would take the max
    /// with only those. The same bits in a register without NaN (max(a,
    /// -inf) is a); with NaN, either may be NaN or below the largest
    /// element (x86's max returns its second operand if one is NaN, so
    /// max(NaN, -inf) drops the NaN).
    #[inline(always)]
    fn reduce_max_part<const PART: usize>(self) -> Self::Elem {
        self.reduce_max()
    }
    fn reduce_min(self) -> Self::Elem;
    /// Lane 0: the value of a register whose lanes are all equal, without
    /// a reduction's chain of shuffles.
    fn first_lane(self) -> Self::Elem;
    /// Whether the level takes normkit's own logarithm, inline
    /// (`softmax::ln::ln`, and [`Vector::ln8`] in one register), rather than
    /// the C library's: at AVX-512, where it measured faster (see
    /// `softmax::vector::row_ln`).
    const INLINE_LN: bool = false;
    /// The natural logarithm of each of eight f64 values, as the level
    /// takes it (`softmax::vector::row_ln`): with [`Vector::INLINE_LN`], the
    /// eight in one register (`softmax::ln::ln8_avx512`), bit for bit
    /// `softmax::ln::ln` of each; otherwise the C library's, one at a time.
    ///
    /// # Safety
    /// The CPU must have this type's features.
    #[inline(always)]
    unsafe fn ln8(s: &[f64; 8]) -> [f64; 8] {
        let mut ln = [0.0; 8];
        for (ln, s) in ln.iter_mut().zip(s) {
            *ln = s.ln();
        }
        ln
    }

    /// The (p, n) pair of exp the softmax kernels use
    /// ([`exp::exp_parts_fast`]): the polynomial
    /// `Real::EXP_POLY_FAST` unless the register overrides it with the
    /// table form ([`exp::exp_parts_table8`], AVX2 float32, where it
    /// measured faster, [`exp::exp_parts_table4`], AVX2 float64, and
    /// [`exp::exp_parts_table16`], AVX-512 float64).
    #[inline(always)]
    fn exp_parts_fast(self) -> (Self, Self) {
        // SAFETY: a value of this type exists only after a constructor
        // confirmed the CPU has its features.
        unsafe { exp::exp_parts_poly(self, Self::Elem::EXP_POLY_FAST) }
    }

    /// exp(max(self, lo)) / 2^n for an integral n at least the exponent k
    /// of every lane's [`Vector::exp_parts_fast`] pair less one (the
    /// kernels' n(m) is one below exp(m)'s exponent): p * 2^(k - n) by
    /// [`Vector::scale_down_pow2`] unless the register overrides it with
    /// the integer-exponent form ([`exp::exp_down_table8`], AVX2 float32;
    /// [`exp::exp_down_table4`], AVX2 float64) or the `vscalefpd` one
    /// ([`exp::exp_down_table16`], AVX-512 float64).
    /// The softmax kernels' shifted exponential ([`exp::exp_down_fast`]).
    #[inline(always)]
    fn exp_down_fast(self, lo: Self, n: Self) -> Self {
        let (p, k) = lo.max(self).exp_parts_fast();
        p.scale_down_pow2(k.sub(n))
    }

    /// [`Vector::exp_down_fast`] within the same bound, for passes that
    /// know n well before their first element: unless the register
    /// overrides it with a form whose every operation waits on n
    /// ([`exp::exp_down_table16_f32`], AVX-512 float32, fewer operations
    /// on the FMA port), the same function. Results below 2^-126 may be
    /// off by up to 2^-127, and below 2^-127 flushed to +0.
    #[inline(always)]
    fn exp_down_n_first(self, lo: Self, n: Self) -> Self {
        self.exp_down_fast(lo, n)
    }

    /// Whether [`Vector::exp_down_first`] and [`Vector::exp_down_second`]
    /// split [`Vector::exp_down_fast`] in two, so that a loop can issue
    /// them for different registers (software pipelining: the softmax
    /// kernels' `sum_map_staged`). A register that splits it keeps
    /// [`Vector::exp_down_n_first`] as [`Vector::exp_down_fast`], which the
    /// staged loop then stands for too.
    const EXP_DOWN_STAGED: bool = false;

    /// The first stage of [`Vector::exp_down_fast`], whose result only
    /// [`Vector::exp_down_second`] reads; without the split, `self` as is.
    #[inline(always)]
    fn exp_down_first(self, _lo: Self, _n: Self) -> (Self, Self) {
        (self, self)
    }

    /// `self.exp_down_fast(lo, n)` from `self.exp_down_first(lo, n)`, bit
    /// for bit.
    #[inline(always)]
    fn exp_down_second(first: (Self, Self), lo: Self, n: Self) -> Self {
        first.0.exp_down_fast(lo, n)
    }
}

/// Eight f32 lanes with a one-instruction lookup in an 8-entry table
/// (AVX2 `vpermps`): what [`exp::exp_parts_table8`] and
/// [`exp::exp_down_table8`] need.
pub trait Table8: Vector<Elem = f32> {
    /// Round toward -inf.
    fn floor(self) -> Self;
    /// Lane i of the result is lane `bits(index_i) & 7` of `self`.
    fn lookup8(self, index: Self) -> Self;
    /// Lane i of the result has the bits of lane `bits(index_i) & 7` of
    /// `self` plus `bits(index_i) << 20` (integer addition).
    fn lookup8_scaled(self, index: Self) -> Self;
}

/// Four f64 lanes with a lookup in a 4-entry table (AVX2 `vpermps` on the
/// 32-bit halves): what [`exp::exp_parts_table4`] and
/// [`exp::exp_down_table4`] need.
pub trait Table4: Vector<Elem = f64> {
    /// Round toward -inf.
    fn floor(self) -> Self;
    /// Lane i of the result is lane `bits(index_i) & 3` of `self`.
    fn lookup4(self, index: Self) -> Self;
    /// Lane i of the result has the bits of lane `bits(index_i) & 3` of
    /// `self` plus `bits(index_i) << 50` (64-bit integer addition).
    fn lookup4_scaled(self, index: Self) -> Self;
}

/// Sixteen f32 lanes with a one-instruction lookup in a 16-entry table
/// (AVX-512 `vpermps`) and a zero-masked multiply-add: what
/// [`exp::exp_down_table16_f32`] needs.
pub trait Table16F32: Vector<Elem = f32> {
    /// Lane i of the result has the bits of lane `bits(index_i) & 15` of
    /// `self` plus `bits(index_i) << 19` (integer addition).
    fn lookup16_scaled(self, index: Self) -> Self;
    /// self * a + b in the lanes where `v` is not below `limit` (NaN lanes
    /// of `v` included), +0 in the others.
    fn mul_add_unless_below(self, a: Self, b: Self, v: Self, limit: Self) -> Self;
}

/// Eight f64 lanes with a one-instruction lookup in a 16-entry table
/// (AVX-512 `vpermt2pd` on two registers) and a scale by 2^floor(e):
/// what [`exp::exp_parts_table16`] and [`exp::exp_down_table16`] need.
pub trait Table16: Vector<Elem = f64> {
    /// Round toward -inf.
    fn floor(self) -> Self;
    /// Lane i of the result is `table[bits(self_i) & 15]`.
    fn lookup16(self, table: &[f64; 16]) -> Self;
    /// self * 2^floor(e) (`vscalefpd`): exact where representable, one
    /// rounding into the subnormal range, 0 / inf beyond; NaN if either
    /// operand is NaN (for finite self).
    fn scale_pow2_floor(self, e: Self) -> Self;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{self, Isa, Kernel};
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// [`Vector::reduce_add16`] of sixteen registers against
    /// [`Vector::reduce_add`] of each.
    struct ReduceAdd16<'a, T> {
        regs: &'a [[T; 16]; 16],
    }

    impl<T: Float> Kernel for ReduceAdd16<'_, T> {
        type Output = Vec<(T, T)>;

        fn scalar(self) -> Self::Output {
            Vec::new()
        }

        #[inline(always)]
        fn vector<S: Simd>(self, _: S) -> Self::Output {
            // SAFETY: the token proves the CPU has S; each register is
            // loaded from an array of 16 >= LANES elements.
            unsafe {
                let regs: [T::Vector<S>; 16] = std::array::from_fn(|j| <T::Vector<S>>::load(self.regs[j].as_ptr()));
                let sums = <T::Vector<S>>::reduce_add16(&regs);
                (0..16).map(|j| (sums[j], regs[j].reduce_add())).collect()
            }
        }
    }

    /// Bit for bit, on every level and both types, with lanes of every
    /// magnitude (so that the order of the additions shows in the bits),
    /// cancellations, signed zeros, infinities and NaN.
    #[test]
    fn reduce_add16_is_reduce_add_of_each_register() {
        fn check<T: Float>() {
            let mut rng = SmallRng::seed_from_u64(0x9e37_79b9_7f4a_7c15);
            let specials = [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e30, -1e30, 3.0e-39];
            for round in 0..if cfg!(miri) { 4 } else { 200 } {
                let regs: [[T; 16]; 16] = std::array::from_fn(|j| {
                    std::array::from_fn(|i| {
                        let r: u64 = rng.random();
                        let v = ((r >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2f64.powi((r % 60) as i32 - 30);
                        match (round % 4, (r >> 8) % 16) {
                            (0, 0) => T::from_f64(specials[(j + i) % specials.len()]),
                            (1, _) if j % 3 == 0 => T::from_f64(-0.0),
                            _ => T::from_f64(v),
                        }
                    })
                });
                for isa in dispatch::available().into_iter().filter(|&isa| isa != Isa::Scalar) {
                    for (j, (got, want)) in dispatch::run(isa, ReduceAdd16 { regs: &regs }).into_iter().enumerate() {
                        // NaN payloads are not compared: Rust does not
                        // promise them, and no kernel result depends on them.
                        let (got, want) = (got.to_f64(), want.to_f64());
                        assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{isa} {} bits, round {round}, register {j}: {got:e} against {want:e}", T::MANTISSA_DIGITS);
                    }
                }
            }
        }
        check::<f32>();
        check::<f64>();
    }

    /// [`Vector::reduce_add_part`] and [`Vector::reduce_max_part`] of the
    /// first LANES / PART lanes, for PART 1, 2 and 4, against
    /// [`Vector::reduce_add`] and [`Vector::reduce_max`] of the register
    /// padded with +0 and -inf.
    struct ReducePart<'a, T> {
        lanes: &'a [T; 16],
    }

    impl<T: Float> Kernel for ReducePart<'_, T> {
        /// (lanes used, sum of those, sum of the padded register, max of
        /// those, max of the padded register)
        type Output = Vec<(usize, T, T, T, T)>;

        fn scalar(self) -> Self::Output {
            Vec::new()
        }

        #[inline(always)]
        fn vector<S: Simd>(self, _: S) -> Self::Output {
            let padded = |n: usize, pad: f64| -> [T; 16] { std::array::from_fn(|i| if i < n { self.lanes[i] } else { T::from_f64(pad) }) };
            let n = |part: usize| <T::Vector<S>>::LANES / part;
            let (z1, z2, z4) = (padded(n(1), 0.0), padded(n(2), 0.0), padded(n(4), 0.0));
            let (m1, m2, m4) = (padded(n(1), f64::NEG_INFINITY), padded(n(2), f64::NEG_INFINITY), padded(n(4), f64::NEG_INFINITY));
            // SAFETY: the token proves the CPU has S; each register is
            // loaded from an array of 16 >= LANES elements.
            unsafe {
                let load = |lanes: &[T; 16]| <T::Vector<S>>::load(lanes.as_ptr());
                let (z1, z2, z4) = (load(&z1), load(&z2), load(&z4));
                let (m1, m2, m4) = (load(&m1), load(&m2), load(&m4));
                vec![
                    (n(1), z1.reduce_add_part::<1>(), z1.reduce_add(), m1.reduce_max_part::<1>(), m1.reduce_max()),
                    (n(2), z2.reduce_add_part::<2>(), z2.reduce_add(), m2.reduce_max_part::<2>(), m2.reduce_max()),
                    (n(4), z4.reduce_add_part::<4>(), z4.reduce_add(), m4.reduce_max_part::<4>(), m4.reduce_max()),
                ]
            }
        }
    }

    /// Bit for bit, on every level and both types, with lanes of every
    /// magnitude, cancellations, +0, infinities and (in the sums) NaN; -0
    /// in the maxes only (its sum with a padding +0 is +0, the reductions'
    /// documented exception), where max(+0, -0) is its second operand, so
    /// that the order of the steps shows in the bits. No NaN in the maxes.
    #[test]
    fn reduce_part_is_reduce_of_the_padded_register() {
        fn check<T: Float>() {
            let mut rng = SmallRng::seed_from_u64(0x51_7cc1_b727_220a);
            let specials = [0.0, f64::INFINITY, f64::NEG_INFINITY, 1e30, -1e30, 3.0e-39, f64::NAN];
            for round in 0..if cfg!(miri) { 4 } else { 400 } {
                let lanes: [T; 16] = std::array::from_fn(|i| {
                    let r: u64 = rng.random();
                    let v = ((r >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2f64.powi((r % 60) as i32 - 30);
                    T::from_f64(if round % 3 == 0 && (r >> 8) % 4 == 1 { specials[(i + round) % specials.len()] } else { v })
                });
                // The same lanes with every other lane a signed zero, for
                // the maxes.
                let zeros: [T; 16] = std::array::from_fn(|i| match (i + round) % 4 {
                    0 => T::from_f64(-0.0),
                    2 => T::ZERO,
                    _ if lanes[i].to_f64().is_nan() => T::ZERO,
                    _ => lanes[i],
                });
                for isa in dispatch::available().into_iter().filter(|&isa| isa != Isa::Scalar) {
                    for (n, _, _, max_part, max) in dispatch::run(isa, ReducePart { lanes: &zeros }) {
                        let what = format!("{isa} {} bits, round {round}, n={n}, signed zeros", T::MANTISSA_DIGITS);
                        assert_eq!(max_part.to_f64().to_bits(), max.to_f64().to_bits(), "{what}: max {:e} against {:e}", max_part.to_f64(), max.to_f64());
                    }
                    for (n, sum_part, sum, max_part, max) in dispatch::run(isa, ReducePart { lanes: &lanes }) {
                        let same = |a: T, b: T| a.to_f64().to_bits() == b.to_f64().to_bits() || (a.to_f64().is_nan() && b.to_f64().is_nan());
                        let what = format!("{isa} {} bits, round {round}, n={n}", T::MANTISSA_DIGITS);
                        assert!(same(sum_part, sum), "{what}: sum {:e} against {:e}", sum_part.to_f64(), sum.to_f64());
                        if !lanes[..n].iter().any(|v| v.to_f64().is_nan()) {
                            assert!(same(max_part, max), "{what}: max {:e} against {:e}", max_part.to_f64(), max.to_f64());
                        }
                    }
                }
            }
        }
        check::<f32>();
        check::<f64>();
    }

    /// [`Vector::first_lane`] of a register loaded from the array.
    struct FirstLane<T>([T; 16]);

    impl<T: Float> Kernel for FirstLane<T> {
        type Output = Option<T>;

        fn scalar(self) -> Option<T> {
            None
        }

        #[inline(always)]
        fn vector<S: Simd>(self, _: S) -> Option<T> {
            // SAFETY: the token proves the CPU has S; the register is
            // loaded from an array of 16 >= LANES elements.
            unsafe { Some(<T::Vector<S>>::load(self.0.as_ptr()).first_lane()) }
        }
    }

    /// Lane 0, bit for bit, whatever the other lanes hold, on every level.
    #[test]
    fn first_lane_is_element_0() {
        fn check<T: Float>() {
            for first in [1.5, -0.0, 0.0, f64::INFINITY, -3.0e-39, 1e30] {
                let lanes: [T; 16] = std::array::from_fn(|i| T::from_f64(if i == 0 { first } else { i as f64 + 0.25 }));
                for isa in dispatch::available() {
                    if let Some(got) = dispatch::run(isa, FirstLane(lanes)) {
                        assert_eq!(got.to_f64().to_bits(), lanes[0].to_f64().to_bits(), "{isa} {} bits, lane 0 {first:e}", T::MANTISSA_DIGITS);
                    }
                }
            }
        }
        check::<f32>();
        check::<f64>();
    }

    #[test]
    fn ln2_split_is_accurate() {
        let f32_split = f32::LN2_HI as f64 + f32::LN2_LO as f64;
        assert!((f32_split - std::f64::consts::LN_2).abs() < 1e-15);
        assert_eq!(f64::LN2_HI, std::f64::consts::LN_2);
    }

    #[test]
    fn scalar_scale_pow2_matches_powi_and_handles_extremes() {
        for n in -160..=140 {
            let want = 1.5f64 * 2f64.powi(n);
            assert_eq!(1.5f32.scale_pow2(n as f32) as f64, want as f32 as f64, "n={n}");
        }
        assert_eq!(1.0f32.scale_pow2(-1e30), 0.0);
        assert_eq!(1.0f32.scale_pow2(1e30), f32::INFINITY);
        assert_eq!(1.0f64.scale_pow2(-1074.0), f64::from_bits(1));
        assert_eq!(1.0f64.scale_pow2(1023.0), 2f64.powi(1023));
        assert_eq!(0.75f64.scale_pow2(1025.0), f64::INFINITY);
    }
}
