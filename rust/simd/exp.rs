//! The exponential, as a (mantissa, exponent) pair and as a value.
//!
//! exp(x) = 2^n * exp(t) with n = round(x * log2 e) and t = x - n ln2, so
//! |t| <= ln2/2. t is computed with two fused multiply-adds against ln2 split
//! in a high and a low part (Cody-Waite), exp(t) by the minimax polynomial
//! `Real::EXP_POLY`. Keeping n as a float separately from p = exp(t) is what
//! lets the two-pass softmax sum exponentials of any size without overflow
//! (Dukhan & Ablavatski 2020, section 3).
//!
//! The softmax kernels' pair form has a table variant on AVX2 float32
//! ([`exp_parts_table8`]): exp(x) = 2^n * 2^(j/8) * q(t) with an 8-entry
//! table in one register and a degree-3 polynomial q on |t| <= ln2/16, as
//! in XNNPACK's `avx2-rr2-lut8` exp kernels, and the kernels' shifted
//! value exp(x) / 2^n is built from it with an integer exponent
//! ([`exp_down_table8`]). AVX2 float64 has the analogue with a 4-entry
//! table and a degree-8 polynomial on |t| <= ln2/8 ([`exp_parts_table4`],
//! [`exp_down_table4`]) instead of the degree-11 polynomial, AVX-512
//! float64 a 16-entry table in two registers (one `vpermt2pd`) and a
//! degree-6 polynomial on |t| <= ln2/32 ([`exp_parts_table16`]), its
//! shifted value scaled by `vscalefpd` ([`exp_down_table16`]).

use super::{Real, Table16, Table16F32, Table4, Table8, Vector};

/// exp(t) for |t| <= ln2/2 by Horner's rule on the coefficients `c`.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub unsafe fn poly<V: Vector>(t: V, c: &[V::Elem]) -> V {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let mut acc = V::splat(c[c.len() - 1]);
        for &ck in c[..c.len() - 1].iter().rev() {
            acc = acc.mul_add(t, V::splat(ck));
        }
        acc
    }
}

/// (p, n) with exp(x) = p * 2^n, p in [~0.7, ~1.42], n integral.
/// Accurate for |x| up to ~2^21 (f32); NaN in, NaN p out. Callers bound x.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub unsafe fn exp_parts<V: Vector>(x: V) -> (V, V) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        exp_parts_poly(x, V::Elem::EXP_POLY)
    }
}

/// Max error of [`exp_fast`] on f32 in ulp, over every finite input (the
/// exhaustive test below measured 2.018 at x = 37.821556 with AVX2 and
/// AVX-512; [`exp`] stays within 2), and of the softmax kernels' pair
/// forms built on it: shifted by the exponent of a row maximum near
/// -2.6e5, the AVX-512 polynomial form measured 2.055
/// (`f32_shifted_forms_accurate_for_large_row_maxima_on_every_isa`).
pub const EXP_FAST_MAX_ULP: f64 = 2.1;

/// Max error in ulp of [`exp_down_table16_f32`] where its results are
/// normal (the exhaustive test measured 0.999 at x = -1.2347391).
pub const TABLE16_F32_MAX_ULP: f64 = 1.0;

/// Max error in ulp of the softmax kernels' f64 exponential
/// ([`exp_parts_fast`] as p * 2^n, [`exp_down_fast`]) where its results
/// are normal: the table forms' entries are rounded (0.5 ulp) before
/// the result is (0.5 ulp); the scalar degree-11 polynomial is evaluated
/// without FMA. Measured against a double-double exp on 30M points per
/// form plus around every table boundary: 1.131 ulp (AVX2 table form;
/// 1.137 at x = 420.476 on 2M points), 1.132 (AVX-512 table form,
/// x = 469.929; 1.123 for its shifted form), 1.210 (scalar polynomial,
/// x = 151.457); subnormal results
/// (rounded twice) within 1.05 ulp of their spacing (the test allows 1.1).
pub const EXP_F64_FAST_MAX_ULP: f64 = 1.25;

/// The softmax kernels' (p, n) pair, p * 2^n within [`EXP_FAST_MAX_ULP`]
/// (the exhaustive test measured 1.152 ulp at x = 6.525488 for the AVX2
/// table form; the polynomial form elsewhere is [`exp_fast`]'s): the
/// register's [`Vector::exp_parts_fast`], which is the cheaper polynomial
/// `Real::EXP_POLY_FAST` (p in [~0.7, ~1.42]) or, on AVX2 float32, the
/// table form [`exp_parts_table8`] (p in [~0.96, ~2), n never above the
/// polynomial's n; accurate for |x| < [`TABLE8_X_LIMIT`]), on AVX2
/// float64 [`exp_parts_table4`] (within [`EXP_F64_FAST_MAX_ULP`], p in
/// [~0.91, ~1.84], n never above the polynomial's n; accurate for
/// |x| < [`TABLE4_X_LIMIT`]), on AVX-512 float64 [`exp_parts_table16`]
/// (within [`EXP_F64_FAST_MAX_ULP`], p in [~0.97, ~1.98], n never above
/// the polynomial's n; accurate for |x| < [`TABLE16_X_LIMIT`]).
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub unsafe fn exp_parts_fast<V: Vector>(x: V) -> (V, V) {
    x.exp_parts_fast()
}

/// exp(max(x, lo)) / 2^n from the softmax kernels' pair form: the
/// register's [`Vector::exp_down_fast`], p * 2^(k - n) for the pair (p, k)
/// of [`exp_parts_fast`] (flushed to 0 below 2^-127 / 2^-1023), or on
/// AVX2 [`exp_down_table8`] (float32) and [`exp_down_table4`] (float64),
/// the same value with the exponent built in integers, on AVX-512 float64
/// [`exp_down_table16`] (scaled by `vscalefpd`). For n >= k(x) - 1
/// integral (the kernels: x <= the row max m, and n = n(m), one below
/// round(m log2 e)) and
/// lo >= -[`TABLE8_X_LIMIT`].
///
/// # Safety
/// The CPU must have the instruction set of `V`.
#[inline(always)]
pub unsafe fn exp_down_fast<V: Vector>(x: V, lo: V, n: V) -> V {
    x.exp_down_fast(lo, n)
}

/// 2^(j/8) for j = 0..8, rounded to f32 (relative error <= 3.2e-8).
const EXP2_EIGHTHS: [f32; 8] = [1.0, 1.090_507_7, 1.189_207_1, 1.296_839_6, std::f32::consts::SQRT_2, 1.542_210_8, 1.681_792_8, 1.834_008_1];

/// c2, c3 of q(t) = 1 + t + c2 t^2 + c3 t^3: minimax relative error for
/// exp on [-ln2/16, ln2/16] with c0 = c1 = 1 (2.6e-8; Lawson-weighted
/// least squares).
const EXP_TABLE8_POLY: [f32; 2] = [0.500_064_6, 0.166_668_6];

/// 1.5 * 2^20: adding it rounds x log2 e to eighths (its ulp is 1/8) as
/// long as the sum stays in [2^20, 2^21), and the low 3 mantissa bits of
/// the sum then hold N mod 8 for N = round(8 x log2 e).
const EIGHTHS_MAGIC: f32 = 1_572_864.0;

/// |x| below which [`exp_parts_table8`] is accurate: |x log2 e| < 2^19,
/// where the sum with [`EIGHTHS_MAGIC`] stays in [2^20, 2^21). Beyond, p
/// stays finite in [~0.96, ~2) and n near x log2 e (within a factor 2 of
/// exp(x)), but no more.
pub const TABLE8_X_LIMIT: f64 = 363_408.0;

/// (p, n) with exp(x) = p * 2^n, n = floor(N / 8) and p = 2^(j/8) q(t) in
/// [~0.96, ~2), for N = round(8 x log2 e), j = N mod 8 and
/// t = x - N ln2 / 8 (Cody-Waite, two FMAs; |t| <= ln2/16). Accurate for
/// |x| < [`TABLE8_X_LIMIT`]; NaN in, NaN p out.
///
/// Callers of the pair form: n = floor(N/8) <= floor(x log2 e + 1/16)
/// <= round(x log2 e), the polynomial form's exponent, so n(x) <= n(m) + 1
/// for x <= m (the kernels' n(m) is one below round(m log2 e)) and every
/// `scale_down_pow2(n - n(m))` of the kernels keeps a shift <= 1; a row's
/// largest n bounds every other n as before; terms below 4 instead of
/// 2.83 change no overflow margin of the sums.
///
/// # Safety
/// The CPU must have AVX2 + FMA (the instruction set of `V`).
#[inline(always)]
pub unsafe fn exp_parts_table8<V: Table8>(x: V) -> (V, V) {
    // SAFETY: the caller's contract: the CPU has the instruction set of V;
    // V has 8 lanes of f32, the length of the table loaded.
    unsafe {
        let magic = V::splat(EIGHTHS_MAGIC);
        let v = x.mul_add(V::splat(f32::LOG2E), magic);
        let r = v.sub(magic); // N / 8, exact
        let s = V::load(EXP2_EIGHTHS.as_ptr()).lookup8(v);
        (table_scaled(x, r, s, &EXP_TABLE8_POLY), r.floor())
    }
}

/// The entries of [`EXP2_EIGHTHS`] with j << 20 taken off their bits: the
/// bits of entry K mod 8 plus K << 20 (= floor(K/8) << 23 plus j << 20)
/// are those of 2^(K/8), while 2^(K/8) is normal (XNNPACK's
/// `avx2-rr2-lut8` table). K = -1016 gives +0 exactly.
const EXP2_EIGHTHS_LESS_J: [f32; 8] = {
    let mut t = [0.0f32; 8];
    let mut j = 0;
    while j < 8 {
        t[j] = f32::from_bits(EXP2_EIGHTHS[j].to_bits() - ((j as u32) << 20));
        j += 1;
    }
    t
};

/// exp(max(x, lo)) / 2^n on AVX2 float32: [`exp_parts_table8`]'s
/// p * 2^(k - n) with the exponent built in integers (XNNPACK's
/// `avx2-rr2-lut8` kernels), 13 vector operations instead of 17 with
/// `scale_down_pow2` (7 instead of 8 multiply-adds).
/// v = x log2 e + (MAGIC - n) rounds to the same eighths N / 8 as
/// [`exp_parts_table8`] (n is an integer, so MAGIC - n is exact and on the
/// same grid), so v = MAGIC + K / 8 for K = N - 8n, and
/// bits(v) = bits(MAGIC) + K; bits(MAGIC) is a multiple of 2^12, so
/// bits(v) << 20 = K << 20 and bits(v) & 7 = K mod 8: s = 2^(K/8) is one
/// table lookup, a shift and an integer add (no floor, no float-to-integer
/// conversion), after v is clamped to MAGIC - 127 (K >= -1016). The clamp
/// also covers every v below the binade [2^20, 2^21), where the sum is
/// rounded more finely than to eighths: s = +0 there, and p = 0 since t
/// stays small for |x| < [`TABLE8_X_LIMIT`].
///
/// For results >= 2^-126 the value equals p * 2^(k - n) bit for bit
/// (2^(k - n) scales p exactly), so [`EXP_FAST_MAX_ULP`] holds. K <= -1016
/// (x below n ln2 - 88, -inf included) gives +0, as `scale_down_pow2`
/// flushes at 2^-127; K in (-1016, -1008)
/// gives a value below 2^-126 (s, then subnormal, lacks its leading one),
/// within 2^-126 of the exact one.
///
/// Needs |n| < 2^19 integral, lo >= -[`TABLE8_X_LIMIT`] and
/// floor(N/8) <= n + 127 (x at most ~88 above n ln2: the kernels keep
/// floor(N/8) <= n + 1). NaN in, NaN out.
///
/// # Safety
/// The CPU must have AVX2 + FMA (the instruction set of `V`).
#[inline(always)]
pub unsafe fn exp_down_table8<V: Table8>(x: V, lo: V, n: V) -> V {
    // SAFETY: the caller's contract.
    unsafe { exp_down_table8_second(exp_down_table8_first(x, lo, n)) }
}

/// [`exp_down_table8`]'s first stage: (s, t), s = 2^(K/8) and
/// t = x - r ln2 (the rest of the function is s + s t q(t)).
///
/// # Safety
/// The CPU must have AVX2 + FMA (the instruction set of `V`).
#[inline(always)]
pub unsafe fn exp_down_table8_first<V: Table8>(x: V, lo: V, n: V) -> (V, V) {
    // SAFETY: the caller's contract: the CPU has the instruction set of V;
    // V has 8 lanes of f32, the length of the table loaded.
    unsafe {
        // Loop-invariant in the kernels (n is the row's).
        let base = V::splat(EIGHTHS_MAGIC).sub(n);
        // max returns its second operand for NaN: NaN passes through.
        let x = lo.max(x);
        let v = x.mul_add(V::splat(f32::LOG2E), base);
        let r = v.sub(base); // N / 8, exact
        // max returns its second operand for NaN: NaN v gives some s, NaN t.
        let s = V::load(EXP2_EIGHTHS_LESS_J.as_ptr()).lookup8_scaled(V::splat(EIGHTHS_MAGIC - 127.0).max(v));
        (s, reduced_t(x, r))
    }
}

/// [`exp_down_table8`]'s second stage: s + s t q(t) from its first's
/// (s, t).
///
/// # Safety
/// The CPU must have AVX2 + FMA (the instruction set of `V`).
#[inline(always)]
pub unsafe fn exp_down_table8_second<V: Table8>((s, t): (V, V)) -> V {
    // SAFETY: the caller's contract.
    unsafe { s.mul_add(expm1_poly(t, &EXP_TABLE8_POLY), s) }
}

/// s q(t) for t = x - r ln2 (Cody-Waite, two FMAs; |t| below ln2/16,
/// ln2/8 or ln2/32 for the 8-, 4- and 16-entry tables) and
/// q(t) = 1 + t + c2 t^2 + ... for the coefficients `c` = [c2, c3, ...]
/// ([`EXP_TABLE8_POLY`], [`EXP_TABLE4_POLY`], [`EXP_TABLE16_POLY`]),
/// computed as s + s (t (1 + c2 t + c3 t^2 + ...)) with one rounding of
/// the product by s: s enters only exactly, so s * 2^a gives the result
/// times 2^a bit for bit wherever that is normal (with s t rounded first,
/// s t may fall into the subnormal range for results below 2^-118 (f32)
/// and lose bits).
///
/// # Safety
/// The CPU must have the instruction set of `V`.
#[inline(always)]
unsafe fn table_scaled<V: Vector>(x: V, r: V, s: V, c: &[V::Elem]) -> V {
    // SAFETY: the caller's contract: the CPU has the instruction set of V.
    unsafe { s.mul_add(table_fraction(x, r, c), s) }
}

/// t (1 + c2 t + c3 t^2 + ...) for t = x - r ln2: the part of
/// [`table_scaled`] before its multiply-add by s (~exp(t) - 1).
///
/// # Safety
/// The CPU must have the instruction set of `V`.
#[inline(always)]
unsafe fn table_fraction<V: Vector>(x: V, r: V, c: &[V::Elem]) -> V {
    // SAFETY: the caller's contract: the CPU has the instruction set of V.
    unsafe { expm1_poly(reduced_t(x, r), c) }
}

/// t = x - r ln2 (Cody-Waite, two FMAs).
///
/// # Safety
/// The CPU must have the instruction set of `V`.
#[inline(always)]
unsafe fn reduced_t<V: Vector>(x: V, r: V) -> V {
    // SAFETY: the caller's contract: the CPU has the instruction set of V.
    unsafe {
        let t = r.mul_add(V::splat(-V::Elem::LN2_HI), x);
        r.mul_add(V::splat(-V::Elem::LN2_LO), t)
    }
}

/// t (1 + c2 t + c3 t^2 + ...), about exp(t) - 1.
///
/// # Safety
/// The CPU must have the instruction set of `V`.
#[inline(always)]
unsafe fn expm1_poly<V: Vector>(t: V, c: &[V::Elem]) -> V {
    // SAFETY: the caller's contract: the CPU has the instruction set of V.
    unsafe { poly(t, c).mul_add(t, V::splat(V::Elem::ONE)).mul(t) }
}

/// c2, c3 of q(t) = 1 + t + c2 t^2 + c3 t^3: minimax relative error for
/// exp on [-ln2/32, ln2/32] with c0 = c1 = 1 (1.6e-9 with the coefficients
/// rounded to f32; Lawson-weighted least squares).
const EXP_TABLE16_F32_POLY: [f32; 2] = [0.500_016_15, 0.166_667_21];

/// 1.5 * 2^19: adding it rounds x log2 e to sixteenths (its ulp is 1/16)
/// as long as the sum stays in [2^19, 2^20); the low 4 mantissa bits of
/// the sum then hold N mod 16 for N = round(16 x log2 e).
const SIXTEENTHS_MAGIC_F32: f32 = 786_432.0;

/// 2^(j/16) for j = 0..16 rounded to f32 (relative error <= 2^-24), with
/// j << 19 taken off their bits: the bits of entry K mod 16 plus K << 19
/// (= floor(K/16) << 23 plus j << 19) are those of 2^(K/16) while that is
/// normal.
const EXP2_SIXTEENTHS_F32_LESS_J: [f32; 16] = {
    let mut t = [0.0f32; 16];
    let mut j = 0;
    while j < 16 {
        t[j] = f32::from_bits((EXP2_SIXTEENTHS[j] as f32).to_bits() - ((j as u32) << 19));
        j += 1;
    }
    t
};

/// exp(x) / 2^n on AVX-512 float32, the softmax kernels' shifted
/// exponential: 2^(K/16) q(t) for K = N - 16n, N = round(16 x log2 e) and
/// t = x - N ln2 / 16 (Cody-Waite, two FMAs; |t| <= ln2/32), with q of
/// degree 3 ([`EXP_TABLE16_F32_POLY`]). v = x log2 e + (MAGIC - n) rounds
/// to N / 16 - n + MAGIC (n integral, so MAGIC - n is exact and on the
/// same grid), whose bits are bits(MAGIC) + K; bits(MAGIC) is a multiple
/// of 2^19, so 2^(K/16) is one `vpermps` of the 16-entry table in one
/// register by the low 4 bits (the table of XNNPACK's
/// `avx512f-rr2-lut16-p3-perm` kernels), a shift and an integer add (as
/// in [`exp_down_table8`]). Nine operations on the FMA port and three
/// beside it, instead of twelve for the polynomial pair form and
/// `vscalefps`; within 1 ulp (the exhaustive test: 0.999;
/// `f32_shifted_forms_accurate_for_large_row_maxima_on_every_isa`: 0.975).
///
/// Lanes whose 2^(K/16) is below 2^-127 (K < -2032: x below about
/// n ln2 - 88.0, -inf included) are +0, as with [`exp_down_table8`]: the
/// lane mask of one comparison zeroes them in the last multiply-add, and
/// with them every lane whose v left the table's range. For K in
/// [-2032, -2016) 2^(K/16) is below 2^-126 and its integer form lacks the
/// leading one (a subnormal): the result is then within 2^-127 of the
/// exact one. So `lo` is not needed: every x below it (the
/// kernels: lo = -2^18 with n at least n(lo + 2048)) gives +0 either way.
/// NaN in, NaN out (the comparison keeps unordered lanes); +inf gives NaN.
///
/// Needs n integral with |n| < 2^19, |x| < [`TABLE8_X_LIMIT`] (so N / 16
/// fits the 24-bit significand of r) and x at most ~88 above n ln2 (the
/// kernels: x <= m, n = n(m)).
///
/// # Safety
/// The CPU must have AVX-512F (the instruction set of `V`).
#[inline(always)]
pub unsafe fn exp_down_table16_f32<V: Table16F32>(x: V, n: V) -> V {
    const { assert!(V::LANES == 16, "the table load reads 16 lanes") };
    // SAFETY: the caller's contract: the CPU has the instruction set of V;
    // V has 16 lanes of f32 (asserted above), the length of the table loaded.
    unsafe {
        // Loop-invariant in the kernels (n is the row's).
        let base = V::splat(SIXTEENTHS_MAGIC_F32).sub(n);
        let v = x.mul_add(V::splat(f32::LOG2E), base);
        let r = v.sub(base); // N / 16, exact
        let s = V::load(EXP2_SIXTEENTHS_F32_LESS_J.as_ptr()).lookup16_scaled(v);
        // `table_scaled`'s s + s (q t), in the lanes with K >= -2032.
        s.mul_add_unless_below(table_fraction(x, r, &EXP_TABLE16_F32_POLY), s, v, V::splat(SIXTEENTHS_MAGIC_F32 - 127.0))
    }
}

/// 2^(j/4) for j = 0..4, rounded to f64 (relative error <= 2^-53).
const EXP2_QUARTERS: [f64; 4] = [1.0, 1.189_207_115_002_721, std::f64::consts::SQRT_2, 1.681_792_830_507_429];

/// c2..=c8 of q(t) = 1 + t + c2 t^2 + ... + c8 t^8: minimax relative
/// error for exp on [-ln2/8, ln2/8] with c0 = c1 = 1 (4.5e-18 = 0.04 ulp
/// with the coefficients rounded to f64; Lawson-weighted least squares at
/// 50 digits with mpmath on 400 Chebyshev nodes, the error checked on a
/// 20001-point grid).
const EXP_TABLE4_POLY: [f64; 7] = [
    0.500_000_000_000_000_7,
    0.166_666_666_666_958_42,
    0.041_666_666_666_109_894,
    0.008_333_333_130_558_734,
    0.001_388_889_010_251_453,
    0.000_198_455_101_027_340_7,
    2.479_569_546_143_227_7e-5,
];

/// 1.5 * 2^50: adding it rounds x log2 e to quarters (its ulp is 1/4) as
/// long as the sum stays in [2^50, 2^51), and the low 2 mantissa bits of
/// the sum then hold N mod 4 for N = round(4 x log2 e).
const QUARTERS_MAGIC: f64 = 1_688_849_860_263_936.0;

/// |x| below which [`exp_parts_table4`] is accurate: 2^48, so
/// |x log2 e| < 2^49 and the sum with [`QUARTERS_MAGIC`] stays in
/// [2^50, 2^51).
pub const TABLE4_X_LIMIT: f64 = 281_474_976_710_656.0;

/// The f64 analogue of [`exp_parts_table8`] (AVX2 float64): (p, n) with
/// exp(x) = p * 2^n, n = floor(N / 4) and p = 2^(j/4) q(t) in
/// [~0.91, ~1.84], for N = round(4 x log2 e), j = N mod 4 and
/// t = x - N ln2 / 4 (Cody-Waite, two FMAs; |t| <= ln2/8), q of degree 8
/// ([`EXP_TABLE4_POLY`]) instead of `EXP_POLY_FAST`'s degree 11. Accurate
/// for |x| < [`TABLE4_X_LIMIT`]; NaN in, NaN p out.
///
/// Callers of the pair form: n = floor(N/4) <= floor(x log2 e + 1/8)
/// <= round(x log2 e), the polynomial form's exponent, with the same
/// consequences as for [`exp_parts_table8`] (p below 2 there too).
///
/// # Safety
/// The CPU must have AVX2 + FMA (the instruction set of `V`).
#[inline(always)]
pub unsafe fn exp_parts_table4<V: Table4>(x: V) -> (V, V) {
    // SAFETY: the caller's contract: the CPU has the instruction set of V;
    // V has 4 lanes of f64, the length of the table loaded.
    unsafe {
        let magic = V::splat(QUARTERS_MAGIC);
        let v = x.mul_add(V::splat(f64::LOG2E), magic);
        let r = v.sub(magic); // N / 4, exact
        let s = V::load(EXP2_QUARTERS.as_ptr()).lookup4(v);
        (table_scaled(x, r, s, &EXP_TABLE4_POLY), r.floor())
    }
}

/// The entries of [`EXP2_QUARTERS`] with j << 50 taken off their bits:
/// the bits of entry K mod 4 plus K << 50 (= floor(K/4) << 52 plus
/// j << 50) are those of 2^(K/4), while 2^(K/4) is normal. K = -4092
/// gives +0 exactly.
const EXP2_QUARTERS_LESS_J: [f64; 4] = {
    let mut t = [0.0f64; 4];
    let mut j = 0;
    while j < 4 {
        t[j] = f64::from_bits(EXP2_QUARTERS[j].to_bits() - ((j as u64) << 50));
        j += 1;
    }
    t
};

/// exp(max(x, lo)) / 2^n on AVX2 float64: [`exp_parts_table4`]'s
/// p * 2^(k - n) with the exponent built in integers, as
/// [`exp_down_table8`] does for f32: v = x log2 e + (MAGIC - n) is
/// MAGIC + K / 4 for K = N - 4n, bits(MAGIC) is a multiple of 2^51, so
/// bits(v) << 50 = K << 50 and bits(v) & 3 = K mod 4; v is clamped to
/// MAGIC - 1023 (K >= -4092, which gives s = +0; so does every v below the
/// binade [2^50, 2^51)).
///
/// For results >= 2^-1022 the value equals p * 2^(k - n) bit for bit.
/// K <= -4092 (x below n ln2 - 709, -inf included) gives +0, as
/// `scale_down_pow2` flushes at 2^-1023; K in (-4092, -4088) gives a value
/// below 2^-1022, within 2^-1022 of the exact one.
///
/// Needs |n| < 2^48 integral, lo >= -[`TABLE4_X_LIMIT`] and
/// floor(N/4) <= n + 1023 (the kernels keep floor(N/4) <= n + 1). NaN
/// in, NaN out.
///
/// # Safety
/// The CPU must have AVX2 + FMA (the instruction set of `V`).
#[inline(always)]
pub unsafe fn exp_down_table4<V: Table4>(x: V, lo: V, n: V) -> V {
    // SAFETY: the caller's contract: the CPU has the instruction set of V;
    // V has 4 lanes of f64, the length of the table loaded.
    unsafe {
        // Loop-invariant in the kernels (n is the row's).
        let base = V::splat(QUARTERS_MAGIC).sub(n);
        // max returns its second operand for NaN: NaN passes through.
        let x = lo.max(x);
        let v = x.mul_add(V::splat(f64::LOG2E), base);
        let r = v.sub(base); // N / 4, exact
        // max returns its second operand for NaN: NaN v gives some s, NaN t.
        let s = V::load(EXP2_QUARTERS_LESS_J.as_ptr()).lookup4_scaled(V::splat(QUARTERS_MAGIC - 1023.0).max(v));
        table_scaled(x, r, s, &EXP_TABLE4_POLY)
    }
}

/// 2^(j/16) for j = 0..16, rounded to f64 (relative error <= 2^-53).
const EXP2_SIXTEENTHS: [f64; 16] = [
    1.0,
    1.044_273_782_427_413_8,
    1.090_507_732_665_257_7,
    1.138_788_634_756_691_6,
    1.189_207_115_002_721,
    1.241_857_812_073_484,
    1.296_839_554_651_009_6,
    1.354_255_546_936_892_7,
    std::f64::consts::SQRT_2,
    1.476_826_145_939_499_3,
    1.542_210_825_407_940_7,
    1.610_490_331_949_254_3,
    1.681_792_830_507_429,
    1.756_252_160_373_299_5,
    1.834_008_086_409_342_4,
    1.915_206_561_397_147_4,
];

/// c2..=c6 of q(t) = 1 + t + c2 t^2 + ... + c6 t^6: minimax relative
/// error for exp on [-ln2/32, ln2/32] (widened by 0.1%) with c0 = c1 = 1
/// (1.17e-17 = 0.053 ulp with the coefficients rounded to f64;
/// Lawson-weighted least squares at 50 digits with mpmath on 400
/// Chebyshev nodes, 60 iterations, the error checked on a 20001-point
/// grid).
const EXP_TABLE16_POLY: [f64; 5] = [
    0.499_999_999_999_996,
    0.166_666_666_644_089_3,
    0.041_666_666_693_358_05,
    0.008_333_472_198_868_17,
    0.001_388_859_345_060_824_6,
];

/// 1.5 * 2^48: adding it rounds x log2 e to sixteenths (its ulp is 1/16)
/// as long as the sum stays in [2^48, 2^49), and the low 4 mantissa bits
/// of the sum then hold N mod 16 for N = round(16 x log2 e).
const SIXTEENTHS_MAGIC: f64 = 422_212_465_065_984.0;

/// |x| below which [`exp_parts_table16`] is accurate: 2^46, so
/// |x log2 e| < 2^47 and the sum with [`SIXTEENTHS_MAGIC`] stays in
/// [2^48, 2^49).
pub const TABLE16_X_LIMIT: f64 = 70_368_744_177_664.0;

/// The AVX-512 float64 pair form: (p, n) with exp(x) = p * 2^n,
/// n = floor(N / 16) and p = 2^(j/16) q(t) in [~0.97, ~1.98], for
/// N = round(16 x log2 e), j = N mod 16 and t = x - N ln2 / 16
/// (Cody-Waite, two FMAs; |t| <= ln2/32), q of degree 6
/// ([`EXP_TABLE16_POLY`]) instead of `EXP_POLY_FAST`'s degree 11: 13
/// vector operations instead of 15, the table in two registers and one
/// `vpermt2pd`. Accurate for |x| < [`TABLE16_X_LIMIT`]; NaN in, NaN p
/// out.
///
/// Callers of the pair form: n = floor(N/16) <= floor(x log2 e + 1/32)
/// <= round(x log2 e), the polynomial form's exponent, with the same
/// consequences as for [`exp_parts_table8`] (p below 2 there too).
///
/// # Safety
/// The CPU must have AVX-512 F (the instruction set of `V`).
#[inline(always)]
pub unsafe fn exp_parts_table16<V: Table16>(x: V) -> (V, V) {
    // SAFETY: the caller's contract: the CPU has the instruction set of V.
    unsafe {
        let magic = V::splat(SIXTEENTHS_MAGIC);
        let v = x.mul_add(V::splat(f64::LOG2E), magic);
        let r = v.sub(magic); // N / 16, exact
        let s = v.lookup16(&EXP2_SIXTEENTHS);
        (table_scaled(x, r, s, &EXP_TABLE16_POLY), r.floor())
    }
}

/// exp(max(x, lo)) / 2^n on AVX-512 float64: [`exp_parts_table16`]'s
/// p * 2^(k - n), 15 vector operations instead of 18. v = x log2 e +
/// (MAGIC - n) rounds to the same sixteenths N / 16 as
/// [`exp_parts_table16`] (MAGIC - n is exact and on the same grid), so
/// r = v - (MAGIC - n) = N / 16 gives the same p, and
/// `vscalefpd(p, r - n)` = p * 2^floor(N/16 - n) = p * 2^(k - n), bit for
/// bit, subnormal results and +0 below them included (x = lo = -2^18
/// for -inf in the kernels).
///
/// Needs |n| < 2^46 integral and lo >= -[`TABLE16_X_LIMIT`]. NaN in,
/// NaN out.
///
/// # Safety
/// The CPU must have AVX-512 F (the instruction set of `V`).
#[inline(always)]
pub unsafe fn exp_down_table16<V: Table16>(x: V, lo: V, n: V) -> V {
    // SAFETY: the caller's contract: the CPU has the instruction set of V.
    unsafe {
        // Loop-invariant in the kernels (n is the row's).
        let base = V::splat(SIXTEENTHS_MAGIC).sub(n);
        // max returns its second operand for NaN: NaN passes through.
        let x = lo.max(x);
        let v = x.mul_add(V::splat(f64::LOG2E), base);
        let r = v.sub(base); // N / 16, exact
        let s = v.lookup16(&EXP2_SIXTEENTHS);
        table_scaled(x, r, s, &EXP_TABLE16_POLY).scale_pow2_floor(r.sub(n))
    }
}

/// (p, n) with the polynomial `c` for exp on [-ln2/2, ln2/2].
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub(crate) unsafe fn exp_parts_poly<V: Vector>(x: V, c: &[V::Elem]) -> (V, V) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        // round(x * log2 e) by the magic-number addition (x is bounded by the
        // callers far below 2^21, where it is exact).
        let magic = V::splat(V::Elem::ROUND_MAGIC);
        let n = x.mul_add(V::splat(V::Elem::LOG2E), magic).sub(magic);
        let t = n.mul_add(V::splat(-V::Elem::LN2_HI), x);
        let t = n.mul_add(V::splat(-V::Elem::LN2_LO), t);
        (poly(t, c), n)
    }
}

/// exp(x) for every x: +inf above the range, 0 below, NaN for NaN.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub unsafe fn exp<V: Vector>(x: V) -> V {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let (p, n) = exp_parts(clamp_exp_arg(x));
        p.scale_pow2(n)
    }
}

/// [`exp`] with the cheaper polynomial (within [`EXP_FAST_MAX_ULP`]); the
/// polynomial on every ISA: the online softmax step, its user, measured
/// 1-4% slower with the table form.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub unsafe fn exp_fast<V: Vector>(x: V) -> V {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let (p, n) = exp_parts_poly(clamp_exp_arg(x), V::Elem::EXP_POLY_FAST);
        p.scale_pow2(n)
    }
}

/// Clamps to [EXP_X_MIN, EXP_X_MAX], which changes no result of exp.
/// max/min return their second operand for NaN, so NaN passes through.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn clamp_exp_arg<V: Vector>(x: V) -> V {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        V::splat(V::Elem::EXP_X_MAX).min(V::splat(V::Elem::EXP_X_MIN).max(x))
    }
}

// The scalar path runs on any target, where a fused multiply-add may be a
// slow library call, so it computes in f64 with plain operations: ln2 split
// as in fdlibm, whose 32-bit high part makes n * LN2_HI exact for |n| < 2^21.
#[allow(clippy::excessive_precision)] // fdlibm's digits, kept as published
pub(crate) const LN2_HI_F64: f64 = 6.931_471_803_691_238_164_9e-1;
#[allow(clippy::excessive_precision)]
pub(crate) const LN2_LO_F64: f64 = 1.908_214_929_270_587_700_02e-10;
/// Adding and subtracting 1.5 * 2^52 rounds an f64 below 2^51 to the
/// nearest integer, ties to even, without a library call.
const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0;

/// 2^k for integer k in [-1022, 1023].
#[inline]
fn pow2i(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// p * 2^n for p in [0.5, 2] and integer n in [-2044, 2046]: one rounding.
#[inline]
pub(crate) fn ldexp_f64(p: f64, n: i64) -> f64 {
    let a = n / 2;
    p * pow2i(a) * pow2i(n - a)
}

/// Scalar (p, n) pair with exp(x) = p * 2^n, computed in f64 for both
/// element types; valid for |x| <= 2^20.
#[inline]
pub fn exp_parts_scalar<T: Real>(x: T) -> (T, T) {
    let (p, n) = exp_parts_f64(x.to_f64());
    (T::from_f64(p), T::from_f64(n))
}

#[inline]
fn exp_parts_f64(x: f64) -> (f64, f64) {
    let n = (x * std::f64::consts::LOG2_E + ROUND_MAGIC) - ROUND_MAGIC;
    let t = (x - n * LN2_HI_F64) - n * LN2_LO_F64;
    let c = f64::EXP_POLY;
    let mut p = c[c.len() - 1];
    for &ck in c[..c.len() - 1].iter().rev() {
        p = p * t + ck;
    }
    (p, n)
}

/// Scalar exp(x) for every x: +inf above the range, 0 below, NaN for NaN.
#[inline]
pub fn exp_scalar<T: Real>(x: T) -> T {
    if x.is_nan() {
        return x;
    }
    T::from_f64(exp_f64(x.to_f64().max(T::EXP_X_MIN.to_f64()).min(T::EXP_X_MAX.to_f64())))
}

/// exp in f64 for x in [-746, 710] (NaN passes through).
#[inline]
pub(crate) fn exp_f64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let x = x.clamp(f64::EXP_X_MIN, f64::EXP_X_MAX);
    let (p, n) = exp_parts_f64(x);
    ldexp_f64(p, n as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{self, Isa, Kernel};
    use crate::simd::{Float, Simd};

    /// Which vector exp a test applies.
    const EXP: u8 = 0;
    /// [`exp_fast`].
    const FAST: u8 = 1;
    /// p * 2^n from [`exp_parts_fast`] (the softmax kernels' pair form:
    /// the table form on AVX2), on the clamped input.
    const PAIRS: u8 = 2;
    /// [`exp_down_fast`] with n = 0, E/2 or E (x <= 0, <= E ln2 / 2,
    /// beyond; E = 128 for f32, 1024 for f64: the lane's pair exponent
    /// never above n), scaled back by 2^n: the softmax kernels' shifted
    /// exponential. exp(x) / 2^n is normal for x >= -87.33 (f32),
    /// -708.39 (f64); below, it may be flushed.
    const DOWN: u8 = 3;
    /// [`DOWN`] through [`Vector::exp_down_n_first`] (the table form on
    /// AVX-512 float32).
    const DOWN_N_FIRST: u8 = 4;

    /// The vector exp `FORM` of one level applied to a slice, tail
    /// included (the scalar exp is the same for every form).
    struct ExpSlice<'a, T, const FORM: u8> {
        x: &'a [T],
        y: &'a mut [T],
    }

    impl<T: Float, const FORM: u8> Kernel for ExpSlice<'_, T, FORM> {
        type Output = ();

        fn scalar(self) {
            self.y.iter_mut().zip(self.x).for_each(|(y, &x)| *y = exp_scalar(x));
        }

        #[inline(always)]
        fn vector<S: Simd>(self, _: S) {
            let (x, y) = (self.x, self.y);
            let mut i = 0;
            while i < x.len() {
                let count = (x.len() - i).min(<T::Vector<S>>::LANES);
                // SAFETY: the token proves the CPU has S; `count` elements
                // from `i` lie inside both slices.
                unsafe {
                    let v = <T::Vector<S>>::load_n(x.as_ptr().add(i), count, T::ZERO);
                    let e = match FORM {
                        EXP => exp(v),
                        FAST => exp_fast(v),
                        DOWN | DOWN_N_FIRST => {
                            let e = if T::MANTISSA_DIGITS == 24 { 128.0 } else { 1024.0 };
                            let mut n = [T::ZERO; 16];
                            for (n, &x) in n.iter_mut().zip(&x[i..i + count]) {
                                let x = x.to_f64();
                                *n = T::from_f64(if x <= 0.0 { 0.0 } else if x <= e * std::f64::consts::LN_2 / 2.0 { e / 2.0 } else { e });
                            }
                            let n = <T::Vector<S>>::load(n.as_ptr());
                            let lo = <T::Vector<S>>::splat(T::from_f64(-262_144.0));
                            let down = if FORM == DOWN { exp_down_fast(v, lo, n) } else { v.exp_down_n_first(lo, n) };
                            down.scale_pow2(n)
                        }
                        _ => {
                            let (p, n) = exp_parts_fast(clamp_exp_arg(v));
                            p.scale_pow2(n)
                        }
                    };
                    e.store_n(y.as_mut_ptr().add(i), count);
                }
                i += count;
            }
        }
    }

    fn exp_slice_with<T: Float, const FORM: u8>(isa: Isa, x: &[T]) -> Vec<T> {
        let mut y = vec![T::ZERO; x.len()];
        dispatch::run(isa, ExpSlice::<T, FORM> { x, y: &mut y });
        y
    }

    fn exp_slice<T: Float>(isa: Isa, x: &[T]) -> Vec<T> {
        exp_slice_with::<T, EXP>(isa, x)
    }

    /// Error of `got` against a reference, in units in the last place of the
    /// reference rounded to f32 (subnormal spacing below the normal range).
    fn ulps_f32(got: f32, want: f64) -> f64 {
        if got as f64 == want || (got.is_infinite() && want > f32::MAX as f64) {
            return 0.0;
        }
        let w = want as f32;
        let ulp = if w.abs() < f32::MIN_POSITIVE { f32::from_bits(1) as f64 } else {
            (f32::from_bits(w.abs().to_bits() + 1) - w.abs()) as f64
        };
        (got as f64 - want).abs() / ulp
    }

    /// Max ulp error of the f32 exp of `isa` on `count` points spread over
    /// [lo, hi], against f64 `exp` (correct to far below an f32 ulp).
    fn max_ulps_f32<const FORM: u8>(isa: Isa, lo: f32, hi: f32, count: usize) -> f64 {
        let x: Vec<f32> = (0..count).map(|i| lo + (hi - lo) * (i as f32 / (count - 1) as f32)).collect();
        let y = exp_slice_with::<f32, FORM>(isa, &x);
        x.iter().zip(&y).map(|(&x, &y)| ulps_f32(y, (x as f64).exp())).fold(0.0, f64::max)
    }

    /// Points per sweep: Miri (which interprets every instruction) gets a
    /// coarse sweep of the same ranges.
    const SWEEP: usize = if cfg!(miri) { 1_001 } else { 1_000_001 };

    #[test]
    fn f32_exp_within_its_ulp_bound_over_the_finite_range_on_every_isa() {
        for isa in crate::dispatch::available() {
            for (form, err) in [
                (EXP, max_ulps_f32::<EXP>(isa, -104.0, 89.0, 2 * SWEEP + 1)),
                (EXP, max_ulps_f32::<EXP>(isa, -1.0, 1.0, SWEEP)),
                (FAST, max_ulps_f32::<FAST>(isa, -104.0, 89.0, 2 * SWEEP + 1)),
                (FAST, max_ulps_f32::<FAST>(isa, -1.0, 1.0, SWEEP)),
                (PAIRS, max_ulps_f32::<PAIRS>(isa, -104.0, 89.0, 2 * SWEEP + 1)),
                (PAIRS, max_ulps_f32::<PAIRS>(isa, -1.0, 1.0, SWEEP)),
                (DOWN, max_ulps_f32::<DOWN>(isa, -87.33, 89.0, 2 * SWEEP + 1)),
                (DOWN, max_ulps_f32::<DOWN>(isa, -1.0, 1.0, SWEEP)),
                (DOWN_N_FIRST, max_ulps_f32::<DOWN_N_FIRST>(isa, -87.33, 89.0, 2 * SWEEP + 1)),
                (DOWN_N_FIRST, max_ulps_f32::<DOWN_N_FIRST>(isa, -1.0, 1.0, SWEEP)),
            ] {
                let bound = match form {
                    EXP => 2.0,
                    DOWN_N_FIRST => n_first_max_ulp(isa),
                    _ => EXP_FAST_MAX_ULP,
                };
                assert!(err <= bound, "{isa} (form {form}): {err} ulp");
            }
        }
    }

    /// The bound of [`DOWN_N_FIRST`] on `isa`: the table form's on AVX-512
    /// (the polynomial form would fail it), else `exp_down_fast`'s.
    fn n_first_max_ulp(isa: Isa) -> f64 {
        if isa == Isa::Avx512 { TABLE16_F32_MAX_ULP } else { EXP_FAST_MAX_ULP }
    }

    /// The AVX-512 float32 table form's special values and its cut at
    /// 2^-127 (n = 0): -inf, very negative x and results below 2^-127 are
    /// +0, NaN stays NaN, results in [2^-127, 2^-126) are within 2^-127.
    #[test]
    fn f32_table_form_special_values_and_cut() {
        if !Isa::Avx512.is_supported() {
            return;
        }
        let x = [f32::NEG_INFINITY, f32::MIN, -1e30, -300.0, -88.5, -87.8, -87.5, -87.33, f32::NAN, 0.0];
        let y = exp_slice_with::<f32, DOWN_N_FIRST>(Isa::Avx512, &x);
        for (&x, &y) in x.iter().zip(&y) {
            let want = (x as f64).exp();
            if x.is_nan() {
                assert!(y.is_nan(), "x = {x}: {y}");
            } else if want < 2f64.powi(-127) * 0.99 {
                assert_eq!(y, 0.0, "x = {x}");
            } else if want < 2f64.powi(-126) {
                assert!((y as f64 - want).abs() <= 2f64.powi(-127), "x = {x}: {y} vs {want}");
            } else {
                assert!(ulps_f32(y, want) <= TABLE16_F32_MAX_ULP, "x = {x}: {y} vs {want}");
            }
        }
    }

    /// The shifted forms far from 0, as the softmax kernels use them: x in
    /// [m - 87, m] for row maxima m up to 2^18 - 2048 in magnitude, with
    /// n = round(m log2 e), against exp(x - n ln2) in f64, where the
    /// result is normal (within [`EXP_FAST_MAX_ULP`]).
    #[test]
    fn f32_shifted_forms_accurate_for_large_row_maxima_on_every_isa() {
        struct Shifted<'a, const FORM: u8> {
            x: &'a [f32],
            n: f32,
            y: &'a mut [f32],
        }
        impl<const FORM: u8> Kernel for Shifted<'_, FORM> {
            type Output = ();
            fn scalar(self) {
                unreachable!("vector levels only");
            }
            #[inline(always)]
            fn vector<S: Simd>(self, _: S) {
                type V<S> = <S as Simd>::F32;
                for (x, y) in self.x.chunks(V::<S>::LANES).zip(self.y.chunks_mut(V::<S>::LANES)) {
                    // SAFETY: the token proves the CPU has S; each chunk
                    // holds at most LANES elements of both slices.
                    unsafe {
                        let (lo, n) = (V::<S>::splat(-262_144.0), V::<S>::splat(self.n));
                        let v = V::<S>::load_n(x.as_ptr(), x.len(), 0.0);
                        let e = if FORM == DOWN { exp_down_fast(v, lo, n) } else { v.exp_down_n_first(lo, n) };
                        e.store_n(y.as_mut_ptr(), y.len());
                    }
                }
            }
        }
        fn worst<const FORM: u8>(isa: Isa, m: f32) -> f64 {
            let n = (m as f64 * std::f64::consts::LOG2_E).round();
            let points = if cfg!(miri) { 200 } else { 20_000 };
            let x: Vec<f32> = (0..=points).map(|i| m - 87.0 * i as f32 / points as f32).collect();
            let mut y = vec![0.0f32; x.len()];
            dispatch::run(isa, Shifted::<FORM> { x: &x, n: n as f32, y: &mut y });
            let want = |x: f32| (x as f64 - n * std::f64::consts::LN_2).exp();
            x.iter().zip(&y).filter(|&(&x, _)| want(x) >= f32::MIN_POSITIVE as f64).map(|(&x, &y)| ulps_f32(y, want(x))).fold(0.0, f64::max)
        }
        for isa in crate::dispatch::available().into_iter().filter(|&isa| isa != Isa::Scalar) {
            for m in [-260_000.0f32, -100_000.5, -1000.25, -87.0, 0.0, 44.4, 1000.75, 100_000.5, 260_000.0] {
                for (form, err, bound) in [(DOWN, worst::<DOWN>(isa, m), EXP_FAST_MAX_ULP), (DOWN_N_FIRST, worst::<DOWN_N_FIRST>(isa, m), n_first_max_ulp(isa))] {
                    assert!(err <= bound, "{isa} (form {form}) m = {m}: {err} ulp");
                }
            }
        }
    }

    /// The pair form stays accurate up to [`TABLE8_X_LIMIT`], the range
    /// the softmax kernels use it in (`TWO_PASS_X_LIMIT`): ln p + n ln2
    /// against x in f64, within [`EXP_FAST_MAX_ULP`] units of 2^-23
    /// (measured: 1.32 with the AVX2 table form, 0.50 scalar). A wrong
    /// table entry would be off by ln2 / 8.
    #[test]
    fn f32_pair_form_accurate_up_to_its_x_limit_on_every_isa() {
        struct Pairs<'a>(&'a [f32], &'a mut [f64]);
        impl Kernel for Pairs<'_> {
            type Output = ();
            fn scalar(self) {
                for (&x, out) in self.0.iter().zip(self.1.iter_mut()) {
                    let (p, n) = exp_parts_scalar(x);
                    *out = (p as f64).ln() + n as f64 * std::f64::consts::LN_2;
                }
            }
            #[inline(always)]
            fn vector<S: Simd>(self, _: S) {
                let lanes = S::F32::LANES;
                for (x, out) in self.0.chunks_exact(lanes).zip(self.1.chunks_exact_mut(lanes)) {
                    let (mut p, mut n) = ([0f32; 16], [0f32; 16]);
                    // SAFETY: the token proves the CPU has S; each chunk
                    // and buffer holds `lanes` <= 16 elements.
                    unsafe {
                        let (vp, vn) = exp_parts_fast(S::F32::load(x.as_ptr()));
                        vp.store(p.as_mut_ptr());
                        vn.store(n.as_mut_ptr());
                    }
                    for k in 0..lanes {
                        out[k] = (p[k] as f64).ln() + n[k] as f64 * std::f64::consts::LN_2;
                    }
                }
            }
        }
        let limit = TABLE8_X_LIMIT as f32;
        let x: Vec<f32> = (0..SWEEP / 16 * 16).map(|i| -limit + 2.0 * limit * (i as f32 / SWEEP as f32)).collect();
        for isa in crate::dispatch::available() {
            let mut got = vec![0.0; x.len()];
            dispatch::run(isa, Pairs(&x, &mut got));
            let worst = x.iter().zip(&got).map(|(&x, &got)| (got - x as f64).abs()).fold(0.0, f64::max);
            assert!(worst <= EXP_FAST_MAX_ULP * 2f64.powi(-23), "{isa}: {worst:e}");
        }
    }

    /// [`exp_down_fast`] (on AVX2 the integer-exponent forms) against
    /// p * 2^(k - n) from the pair (p, k) of [`exp_parts_fast`], scaled
    /// exactly by `scale_pow2`: bit for bit where that is at least the
    /// smallest normal; below, bit for bit (AVX-512's `vscalef` forms) or
    /// within it of it and +0 below a quarter of it (the AVX2 table forms). For each n, x from n ln2 - `span` to n ln2 + 0.3 (the row max's
    /// exponent is n), -inf, the most negative finite, NaN, all with the
    /// kernels' lo = -2^18.
    fn check_exp_down_is_the_scaled_pair<T: Float>(ns: &[f64], span: f64) {
        struct Down<'a, T>(&'a [T], T, &'a mut [T], &'a mut [T]);
        impl<T: Float> Kernel for Down<'_, T> {
            type Output = ();
            fn scalar(self) {}
            #[inline(always)]
            fn vector<S: Simd>(self, _: S) {
                let lanes = <T::Vector<S>>::LANES;
                let chunks = self.0.chunks_exact(lanes).zip(self.2.chunks_exact_mut(lanes)).zip(self.3.chunks_exact_mut(lanes));
                for ((x, got), want) in chunks {
                    // SAFETY: the token proves the CPU has S; each chunk
                    // holds `lanes` elements.
                    unsafe {
                        let x = <T::Vector<S>>::load(x.as_ptr());
                        let (lo, n) = (<T::Vector<S>>::splat(T::from_f64(-262_144.0)), <T::Vector<S>>::splat(self.1));
                        exp_down_fast(x, lo, n).store(got.as_mut_ptr());
                        let (p, k) = exp_parts_fast(lo.max(x));
                        p.scale_pow2(k.sub(n)).store(want.as_mut_ptr());
                    }
                }
            }
        }
        let min_positive = if T::MANTISSA_DIGITS == 24 { f32::MIN_POSITIVE as f64 } else { f64::MIN_POSITIVE };
        let points = SWEEP / 5 / 16 * 16;
        for &n in ns {
            let top = n * std::f64::consts::LN_2;
            let mut x: Vec<T> = (0..points).map(|i| T::from_f64(top + 0.3 - (span + 0.3) * i as f64 / points as f64)).collect();
            x[..4].copy_from_slice(&[T::NEG_INFINITY, T::from_f64(f64::MIN), T::NAN, T::from_f64(-262_144.0)]);
            for isa in crate::dispatch::available().into_iter().filter(|&isa| isa != Isa::Scalar) {
                let (mut got, mut want) = (vec![T::ZERO; x.len()], vec![T::ZERO; x.len()]);
                dispatch::run(isa, Down(&x, T::from_f64(n), &mut got, &mut want));
                for ((&x, &got), &want) in x.iter().zip(&got).zip(&want) {
                    let (got, want) = (got.to_f64(), want.to_f64());
                    let ok = if want.is_nan() {
                        got.is_nan()
                    } else if want >= min_positive || got == want {
                        got == want
                    } else {
                        (0.0..min_positive).contains(&got) && (got - want).abs() < min_positive && (got == 0.0 || want >= min_positive / 4.0)
                    };
                    assert!(ok, "{isa} n = {n}, x = {x:?}: {got:e}, want {want:e}");
                }
            }
        }
    }

    /// The f64 pair form stays accurate over 4x the softmax kernels' range
    /// (`TWO_PASS_X_LIMIT` = 2^18): p * 2^n against [`exp_double_double`]
    /// (relative error), within [`EXP_F64_FAST_MAX_ULP`] units of 2^-52
    /// (measured: 0.76 AVX2 table form, 0.91 AVX-512, 0.82 scalar). A wrong
    /// table entry would be off by at least 4% (2^(1/16)); n must not be above the
    /// polynomial form's round(x log2 e).
    #[test]
    fn f64_pair_form_accurate_over_the_kernels_range_on_every_isa() {
        struct Pairs<'a>(&'a [f64], &'a mut [f64], &'a mut [f64]);
        impl Kernel for Pairs<'_> {
            type Output = ();
            fn scalar(self) {
                for ((&x, p), n) in self.0.iter().zip(self.1.iter_mut()).zip(self.2.iter_mut()) {
                    (*p, *n) = exp_parts_scalar(x);
                }
            }
            #[inline(always)]
            fn vector<S: Simd>(self, _: S) {
                let chunks = self.0.chunks_exact(S::F64::LANES).zip(self.1.chunks_exact_mut(S::F64::LANES)).zip(self.2.chunks_exact_mut(S::F64::LANES));
                for ((x, p), n) in chunks {
                    // SAFETY: the token proves the CPU has S; each chunk
                    // holds `LANES` elements.
                    unsafe {
                        let (vp, vn) = exp_parts_fast(S::F64::load(x.as_ptr()));
                        vp.store(p.as_mut_ptr());
                        vn.store(n.as_mut_ptr());
                    }
                }
            }
        }
        let limit = 4.0 * crate::softmax::scalar::TWO_PASS_X_LIMIT;
        assert!(limit < TABLE4_X_LIMIT.min(TABLE16_X_LIMIT));
        let x: Vec<f64> = (0..SWEEP / 16 * 16).map(|i| -limit + 2.0 * limit * (i as f64 / SWEEP as f64)).collect();
        for isa in crate::dispatch::available() {
            let (mut p, mut n) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            dispatch::run(isa, Pairs(&x, &mut p, &mut n));
            let mut worst = 0.0f64;
            for ((&x, &p), &n) in x.iter().zip(&p).zip(&n) {
                assert!(n <= (x * std::f64::consts::LOG2_E).round(), "{isa} x = {x}: n = {n}");
                let (h, l, k) = exp_double_double(x);
                worst = worst.max(((p * 2f64.powi(n as i32 - k) - h) - l).abs() / h);
            }
            assert!(worst <= EXP_F64_FAST_MAX_ULP * 2f64.powi(-52), "{isa}: {:.3} ulp", worst / 2f64.powi(-52));
        }
    }

    /// n across the kernels' range (|n ln2| <= 2^18), x down to 200 below.
    #[test]
    fn f32_exp_down_is_the_scaled_pair_on_every_isa() {
        check_exp_down_is_the_scaled_pair::<f32>(&[-378_000.0, -20_000.0, -129.0, -1.0, 0.0, 1.0, 127.0, 5_000.0, 378_000.0], 200.0);
    }

    /// n across the kernels' range (|n ln2| <= 2^18), x down to 1500 below.
    #[test]
    fn f64_exp_down_is_the_scaled_pair_on_every_isa() {
        check_exp_down_is_the_scaled_pair::<f64>(&[-378_000.0, -20_000.0, -1025.0, -1.0, 0.0, 1.0, 1023.0, 5_000.0, 378_000.0], 1500.0);
    }

    /// a + b as an unevaluated sum (s, e), s = fl(a + b) (Knuth's TwoSum).
    fn two_sum(a: f64, b: f64) -> (f64, f64) {
        let s = a + b;
        let bb = s - a;
        (s, (a - (s - bb)) + (b - bb))
    }

    /// a + b as (s, e) for |a| >= |b| (Dekker's FastTwoSum).
    fn fast_two_sum(a: f64, b: f64) -> (f64, f64) {
        let s = a + b;
        (s, b - (s - a))
    }

    /// exp(x) = (h + l) * 2^n in double-double (relative error ~1e-30, far
    /// below an f64 ulp), h in [~0.7, ~1.42]: x = n ln2 + r with r in
    /// double-double (n ln2_hi split exactly by an FMA; x - n ln2_hi exact
    /// by Sterbenz' lemma), then exp(r) = 1 + r (1 + r/2 (1 + r/3 (...)))
    /// to 22 terms (|r| <= 0.35: the rest is below 1e-28).
    fn exp_double_double(x: f64) -> (f64, f64, i32) {
        let n = (x * std::f64::consts::LOG2_E).round();
        let p = n * f64::LN2_HI;
        let p_err = n.mul_add(f64::LN2_HI, -p);
        let (r, r_err) = two_sum(x - p, -p_err);
        let r = fast_two_sum(r, r_err - n * f64::LN2_LO);
        let mut s = (1.0, 0.0);
        for k in (1..=22).rev() {
            // s = 1 + (r * s) / k in double-double.
            let ph = r.0 * s.0;
            let pl = r.0.mul_add(s.0, -ph) + (r.0 * s.1 + r.1 * s.0);
            let (ph, pl) = fast_two_sum(ph, pl);
            let q = ph / k as f64;
            let q_low = ((-q).mul_add(k as f64, ph) + pl) / k as f64;
            let (h, e) = two_sum(1.0, q);
            s = fast_two_sum(h, e + q_low);
        }
        (s.0, s.1, n as i32)
    }

    /// Error of `got` as exp(x), in units in the last place of the exact
    /// value (subnormal spacing below the normal range), against
    /// [`exp_double_double`]; computed at the scale of h (got * 2^-n is
    /// exact in two steps).
    fn ulps_f64(got: f64, x: f64) -> f64 {
        let (h, l, n) = exp_double_double(x);
        let scaled = got * 2f64.powi(-n / 2) * 2f64.powi(-n + n / 2);
        let exponent = n + if h < 1.0 { -1 } else { 0 };
        let ulp = 2f64.powi((exponent - 52).max(-1074) - n);
        ((scaled - h) - l).abs() / ulp
    }

    /// The double-double reference agrees with std's `f64::exp` (a
    /// faithful libm: glibc's is within 0.52 ulp) to within one ulp, and
    /// catches a one-ulp change.
    #[test]
    fn f64_reference_exp_agrees_with_std() {
        let worst = f64_sweep(-745.0, 709.78, SWEEP / 10).into_iter().map(|x| ulps_f64(x.exp(), x)).fold(0.0, f64::max);
        assert!(worst <= 1.0, "{worst}");
        assert!(ulps_f64(f64::from_bits(1.5f64.exp().to_bits() + 1), 1.5) > 0.5);
    }

    /// f64 test inputs in [lo, hi]: `dense` evenly spread, and around every
    /// multiple of ln2 / 32 (where the table forms change their entry or
    /// exponent, and the polynomial form its exponent) the 8 neighbours on
    /// each side and 8 points each side 2^-30 apart (around every 16000th
    /// under Miri).
    fn f64_sweep(lo: f64, hi: f64, dense: usize) -> Vec<f64> {
        let mut x: Vec<f64> = (0..dense).map(|i| lo + (hi - lo) * (i as f64 / (dense - 1) as f64)).collect();
        let step = std::f64::consts::LN_2 / 32.0;
        for k in ((lo / step).ceil() as i64..=(hi / step).floor() as i64).step_by(if cfg!(miri) { 16000 } else { 1 }) {
            let b = k as f64 * step;
            for i in 1..=8 {
                x.extend([f64::from_bits(b.to_bits() + i), f64::from_bits(b.to_bits() - i), b + i as f64 * 2f64.powi(-30), b - i as f64 * 2f64.powi(-30)]);
            }
            x.push(b);
        }
        x.retain(|x| (lo..=hi).contains(x));
        x
    }

    /// The largest (ulp error, x) over normal results and over subnormal ones.
    type Worst = [(f64, f64); 2];

    /// The largest ulp error of the f64 exp `FORM` ([`ulps_f64`]), and
    /// where, over the inputs whose results are normal and over those whose
    /// are subnormal.
    fn max_ulps_f64<const FORM: u8>(isa: Isa, x: &[f64]) -> Worst {
        let y = exp_slice_with::<f64, FORM>(isa, x);
        let mut worst = [(0.0, 0.0); 2];
        for (&x, &y) in x.iter().zip(&y) {
            let w = &mut worst[usize::from(x.exp() < f64::MIN_POSITIVE)];
            let e = ulps_f64(y, x);
            if e > w.0 {
                *w = (e, x);
            }
        }
        worst
    }

    /// The largest ulp errors (results normal, subnormal) of the softmax
    /// kernels' f64 pair form and shifted exponential (the table forms on
    /// AVX2 and AVX-512, the degree-11 polynomial in scalar and NEON code) on `dense` points over
    /// [-745, 709.78] ([-708.39, 709.78] for the shifted one, where its
    /// results are normal) and around every boundary, on every ISA.
    fn f64_fast_forms_worst(dense: usize) -> Vec<(Isa, u8, Worst)> {
        let (pairs, down) = (f64_sweep(-745.0, 709.78, dense), f64_sweep(-708.39, 709.78, dense));
        let mut worst = Vec::new();
        for isa in crate::dispatch::available() {
            worst.push((isa, PAIRS, max_ulps_f64::<PAIRS>(isa, &pairs)));
            worst.push((isa, DOWN, max_ulps_f64::<DOWN>(isa, &down)));
        }
        worst
    }

    /// [`f64_fast_forms_worst`] on ~3.2M points per form (measured: 1.13
    /// ulp for the AVX2 table form, 1.12 for the AVX-512 one, 1.18 for the
    /// scalar polynomial; 1.05 for subnormal results, rounded twice: at
    /// most 0.5 + 0.57).
    #[test]
    fn f64_fast_forms_within_their_ulp_bound_on_every_isa() {
        for (isa, form, [normal, subnormal]) in f64_fast_forms_worst(if cfg!(miri) { 201 } else { SWEEP }) {
            assert!(normal.0 <= EXP_F64_FAST_MAX_ULP, "{isa} (form {form}): {normal:?}");
            assert!(subnormal.0 <= 1.1, "{isa} (form {form}): {subnormal:?}");
        }
    }

    /// The same on 30M points per form (a few minutes):
    /// `cargo test --release --lib f64_fast_forms_ulp_report -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn f64_fast_forms_ulp_report() {
        for (isa, form, [normal, subnormal]) in f64_fast_forms_worst(30_000_000) {
            println!("{isa} f64 form {form}: max {:.3} ulp at x = {:e}; subnormal results {:.3} at {:e}", normal.0, normal.1, subnormal.0, subnormal.1);
            assert!(normal.0 <= EXP_F64_FAST_MAX_ULP && subnormal.0 <= 1.1);
        }
    }

    #[test]
    fn f64_exp_matches_std_on_every_isa() {
        for isa in crate::dispatch::available() {
            let points = SWEEP / 5;
            let x: Vec<f64> = (0..=points).map(|i| -745.0 + 1454.0 * i as f64 / points as f64).collect();
            let y = exp_slice(isa, &x);
            for (&x, &y) in x.iter().zip(&y) {
                let want = x.exp();
                let tol = 4.0 * f64::EPSILON * want.abs() + f64::from_bits(2);
                assert!((y - want).abs() <= tol || (want.is_infinite() && y == want), "{isa} x={x}: {y} vs {want}");
            }
        }
    }

    #[test]
    fn exp_special_values_on_every_isa() {
        for isa in crate::dispatch::available() {
            let x = [f32::NEG_INFINITY, f32::INFINITY, f32::NAN, 0.0, -0.0, 100.0, -200.0, f32::MAX, f32::MIN];
            let y = exp_slice(isa, &x);
            assert_eq!(y[0], 0.0, "{isa}");
            assert_eq!(y[1], f32::INFINITY, "{isa}");
            assert!(y[2].is_nan(), "{isa}");
            assert_eq!(y[3], 1.0, "{isa}");
            assert_eq!(y[4], 1.0, "{isa}");
            assert_eq!(y[5], f32::INFINITY, "{isa}");
            assert_eq!(y[6], 0.0, "{isa}");
            assert_eq!(y[7], f32::INFINITY, "{isa}");
            assert_eq!(y[8], 0.0, "{isa}");
        }
    }

    /// Exhaustive check of [`exp`] and [`exp_fast`] over every f32 in
    /// [-104, 89] (~2.1e9 values, about a minute per ISA and polynomial in
    /// release mode):
    /// `cargo test --release --lib exhaustive -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn exhaustive_f32_exp_ulp_report() {
        for isa in crate::dispatch::available() {
            let (err, x) = exhaustive_worst::<EXP>(isa);
            println!("{isa} exp: max {err:.3} ulp at x = {x:e}");
            assert!(err <= 2.0);
            if isa != Isa::Scalar {
                let (err, x) = exhaustive_worst::<FAST>(isa);
                println!("{isa} exp_fast: max {err:.3} ulp at x = {x:e}");
                assert!(err <= EXP_FAST_MAX_ULP);
            }
        }
    }

    /// The same for the softmax kernels' pair form [`exp_parts_fast`] (the
    /// table form on AVX2, the polynomial of [`exp_fast`] elsewhere), their
    /// shifted exponential [`exp_down_fast`] built from it, and
    /// [`Vector::exp_down_n_first`]:
    /// `cargo test --release --lib exhaustive_f32_pair -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn exhaustive_f32_pair_form_ulp_report() {
        for isa in crate::dispatch::available().into_iter().filter(|&isa| isa != Isa::Scalar) {
            let (err, x) = exhaustive_worst::<PAIRS>(isa);
            println!("{isa} exp_parts_fast: max {err:.3} ulp at x = {x:e}");
            assert!(err <= EXP_FAST_MAX_ULP);
            let (err, x) = exhaustive_worst::<DOWN>(isa);
            println!("{isa} exp_down_fast: max {err:.3} ulp at x = {x:e}");
            assert!(err <= EXP_FAST_MAX_ULP);
            let (err, x) = exhaustive_worst::<DOWN_N_FIRST>(isa);
            println!("{isa} exp_down_n_first: max {err:.3} ulp at x = {x:e}");
            assert!(err <= n_first_max_ulp(isa));
        }
    }

    /// The largest ulp error over every f32 in [-104, 89] (for [`DOWN`] and
    /// [`DOWN_N_FIRST`]: [-87.33, 89], where their results are normal), and
    /// where.
    fn exhaustive_worst<const FORM: u8>(isa: Isa) -> (f64, f32) {
        let mut worst = (0.0f64, 0.0f32);
        let mut batch = Vec::with_capacity(1 << 20);
        let flush = |batch: &mut Vec<f32>, worst: &mut (f64, f32)| {
            let y = exp_slice_with::<f32, FORM>(isa, batch);
            for (&x, &y) in batch.iter().zip(&y) {
                let e = ulps_f32(y, (x as f64).exp());
                if e > worst.0 {
                    *worst = (e, x);
                }
            }
            batch.clear();
        };
        for bits in (0u32..=(-104.0f32).to_bits()).rev().chain(0u32..=89.0f32.to_bits()) {
            let x = f32::from_bits(bits);
            let lo = if FORM == DOWN || FORM == DOWN_N_FIRST { -87.33 } else { -104.0 };
            if (lo..=89.0).contains(&x) {
                batch.push(x);
            }
            if batch.len() == batch.capacity() {
                flush(&mut batch, &mut worst);
            }
        }
        flush(&mut batch, &mut worst);
        worst
    }
}
