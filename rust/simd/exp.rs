//! The exponential, as a (mantissa, exponent) pair and as a value.
//!
//! exp(x) = 2^n * exp(t) with n = round(x * log2 e) and t = x - n ln2, so
//! |t| <= ln2/2. t is computed with two fused multiply-adds against ln2 split
//! in a high and a low part (Cody-Waite), exp(t) by the minimax polynomial
//! `Real::EXP_POLY`. Keeping n as a float separately from p = exp(t) is what
//! lets the two-pass softmax sum exponentials of any size without overflow
//! (Dukhan & Ablavatski 2020, section 3).

use super::{Real, Vector};

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
        exp_parts_with(x, V::Elem::EXP_POLY)
    }
}

/// Max error of [`exp_fast`] on f32 in ulp, over every finite input (the
/// exhaustive test below measured 2.018 at x = 37.821556 with AVX2 and
/// AVX-512; [`exp`] stays within 2).
pub const EXP_FAST_MAX_ULP: f64 = 2.05;

/// [`exp_parts`] with the cheaper polynomial `Real::EXP_POLY_FAST`.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub unsafe fn exp_parts_fast<V: Vector>(x: V) -> (V, V) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        exp_parts_with(x, V::Elem::EXP_POLY_FAST)
    }
}

/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn exp_parts_with<V: Vector>(x: V, c: &[V::Elem]) -> (V, V) {
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

/// [`exp`] with the cheaper polynomial (within [`EXP_FAST_MAX_ULP`]).
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
        let (p, n) = exp_parts_fast(clamp_exp_arg(x));
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
const LN2_HI_F64: f64 = 6.931_471_803_691_238_164_9e-1;
#[allow(clippy::excessive_precision)]
const LN2_LO_F64: f64 = 1.908_214_929_270_587_700_02e-10;
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

    /// The vector exp of one level applied to a slice, tail included:
    /// [`exp`], or [`exp_fast`] with `FAST` (the scalar exp is the same for
    /// both).
    struct ExpSlice<'a, T, const FAST: bool> {
        x: &'a [T],
        y: &'a mut [T],
    }

    impl<T: Float, const FAST: bool> Kernel for ExpSlice<'_, T, FAST> {
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
                    let e = if FAST { exp_fast(v) } else { exp(v) };
                    e.store_n(y.as_mut_ptr().add(i), count);
                }
                i += count;
            }
        }
    }

    fn exp_slice_with<T: Float, const FAST: bool>(isa: Isa, x: &[T]) -> Vec<T> {
        let mut y = vec![T::ZERO; x.len()];
        dispatch::run(isa, ExpSlice::<T, FAST> { x, y: &mut y });
        y
    }

    fn exp_slice<T: Float>(isa: Isa, x: &[T]) -> Vec<T> {
        exp_slice_with::<T, false>(isa, x)
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
    fn max_ulps_f32<const FAST: bool>(isa: Isa, lo: f32, hi: f32, count: usize) -> f64 {
        let x: Vec<f32> = (0..count).map(|i| lo + (hi - lo) * (i as f32 / (count - 1) as f32)).collect();
        let y = exp_slice_with::<f32, FAST>(isa, &x);
        x.iter().zip(&y).map(|(&x, &y)| ulps_f32(y, (x as f64).exp())).fold(0.0, f64::max)
    }

    /// Points per sweep: Miri (which interprets every instruction) gets a
    /// coarse sweep of the same ranges.
    const SWEEP: usize = if cfg!(miri) { 1_001 } else { 1_000_001 };

    #[test]
    fn f32_exp_within_its_ulp_bound_over_the_finite_range_on_every_isa() {
        for isa in crate::dispatch::available() {
            for (fast, err) in [
                (false, max_ulps_f32::<false>(isa, -104.0, 89.0, 2 * SWEEP + 1)),
                (false, max_ulps_f32::<false>(isa, -1.0, 1.0, SWEEP)),
                (true, max_ulps_f32::<true>(isa, -104.0, 89.0, 2 * SWEEP + 1)),
                (true, max_ulps_f32::<true>(isa, -1.0, 1.0, SWEEP)),
            ] {
                let bound = if fast { EXP_FAST_MAX_ULP } else { 2.0 };
                assert!(err <= bound, "{isa} (fast: {fast}): {err} ulp");
            }
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
            let (err, x) = exhaustive_worst::<false>(isa);
            println!("{isa} exp: max {err:.3} ulp at x = {x:e}");
            assert!(err <= 2.0);
            if isa != Isa::Scalar {
                let (err, x) = exhaustive_worst::<true>(isa);
                println!("{isa} exp_fast: max {err:.3} ulp at x = {x:e}");
                assert!(err <= EXP_FAST_MAX_ULP);
            }
        }
    }

    /// The largest ulp error over every f32 in [-104, 89], and where.
    fn exhaustive_worst<const FAST: bool>(isa: Isa) -> (f64, f32) {
        let mut worst = (0.0f64, 0.0f32);
        let mut batch = Vec::with_capacity(1 << 20);
        let flush = |batch: &mut Vec<f32>, worst: &mut (f64, f32)| {
            let y = exp_slice_with::<f32, FAST>(isa, batch);
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
            if (-104.0..=89.0).contains(&x) {
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
