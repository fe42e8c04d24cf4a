//! Scalar reference of each softmax algorithm: plain loops, f64 sums, the
//! same special-value rules as the vector kernels. Also the portable path.

use super::Algorithm;
use crate::simd::exp::{exp_parts_scalar, exp_scalar, LN2_HI_F64, LN2_LO_F64, TABLE16_X_LIMIT, TABLE4_X_LIMIT, TABLE8_X_LIMIT};
use crate::simd::Real;

/// Inputs are clamped to at least `-TWO_PASS_X_LIMIT` in the two-pass
/// kernels, and rows whose largest exponent is beyond the accurate range of
/// `exp_parts` fall back to three-pass (see `two_pass_sum`). 2^18: inside
/// the accurate range of the table exps (`TABLE8_X_LIMIT`, ~3.6e5, AVX2
/// float32; `TABLE4_X_LIMIT`, 2^48, AVX2 float64; `TABLE16_X_LIMIT`, 2^46,
/// AVX-512 float64).
pub(crate) const TWO_PASS_X_LIMIT: f64 = 262_144.0;
const _: () = assert!(TWO_PASS_X_LIMIT < TABLE8_X_LIMIT && TWO_PASS_X_LIMIT < TABLE4_X_LIMIT && TWO_PASS_X_LIMIT < TABLE16_X_LIMIT);

/// Exponent margin: a term 2^-MARGIN below the largest is below every
/// rounding of the sum, in f32 and f64 alike.
pub(crate) const TWO_PASS_EXP_MARGIN: f64 = 1_100.0;

/// The outcome of the two-pass first pass: the row sum is `sum * 2^exp`.
/// `None` when the row needs the three-pass path (NaN, inf, huge values).
pub(crate) fn two_pass_accept(sum: f64, exp: f64) -> Option<(f64, f64)> {
    let limit = TWO_PASS_X_LIMIT * std::f64::consts::LOG2_E;
    let ok = sum.is_finite() && sum > 0.0 && exp <= limit - 2.0 && exp >= -limit + TWO_PASS_EXP_MARGIN;
    ok.then_some((sum, exp))
}

/// Adds the pair (v, e) to the running pair (sum, exp) = sum * 2^exp.
#[inline]
pub(crate) fn merge_pair(sum: f64, exp: f64, v: f64, e: f64) -> (f64, f64) {
    let m = exp.max(e);
    if m == f64::NEG_INFINITY {
        return (sum + v, m);
    }
    (sum * exp2_int(exp - m) + v * exp2_int(e - m), m)
}

/// ln(sum exp(x - m)) of a row whose exponentials add up to `sum * 2^exp`
/// (a pair [`two_pass_accept`] accepted) and whose max is `m`:
/// ln(sum) + (exp ln 2 - m). The pair's exponent is the one the
/// exponential gives m (round(m log2 e) in the polynomial forms, the
/// table index's high part in the table forms), within ln 2 of m / ln 2,
/// so exp ln 2 - m is small. With ln 2 split as in fdlibm, exp LN2_HI is
/// exact (|exp| < 2^19 < 2^21 in an accepted pair), and so is its
/// difference with m wherever the two are within a factor of 2
/// (Sterbenz: |m| above about 1.4; below, one rounding under 1.2e-16), so
/// the result's error is that of the logarithm and of the sum.
pub(crate) fn pair_ln_sum(sum: f64, exp: f64, m: f64) -> f64 {
    sum.ln() + ((exp * LN2_HI_F64 - m) + exp * LN2_LO_F64)
}

/// 2^d for an integral d <= 0 (or -inf: 0; NaN: NaN), without libm.
#[inline]
fn exp2_int(d: f64) -> f64 {
    if d.is_nan() {
        d
    } else if d < -1074.0 {
        0.0
    } else {
        crate::simd::exp::ldexp_f64(1.0, d as i64)
    }
}

/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
unsafe fn row_max<T: Real>(x: *const T, n: usize) -> T {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for.
    unsafe {
        let mut m = T::NEG_INFINITY;
        for i in 0..n {
            let v = *x.add(i);
            if v.is_nan() {
                return v;
            }
            m = m.max(v);
        }
        m
    }
}

/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
unsafe fn fill<T: Real>(y: *mut T, n: usize, value: T) {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for.
    unsafe {
        for i in 0..n {
            *y.add(i) = value;
        }
    }
}

/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
pub(crate) unsafe fn softmax<T: Real>(algorithm: Algorithm, x: *const T, y: *mut T, n: usize) {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for.
    unsafe {
        match algorithm {
            Algorithm::ThreePassReload => three_pass::<T, true>(x, y, n),
            Algorithm::ThreePassRecompute => three_pass::<T, false>(x, y, n),
            Algorithm::TwoPass => two_pass(x, y, n),
            Algorithm::Online => online(x, y, n),
        }
    }
}

/// Three-pass softmax; `RELOAD` stores exp(x - max) in pass 2 and rescales
/// it in pass 3, otherwise pass 3 recomputes it.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
unsafe fn three_pass<T: Real, const RELOAD: bool>(x: *const T, y: *mut T, n: usize) {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for.
    unsafe {
        let m = row_max(x, n);
        if !m.is_finite() {
            return fill(y, n, T::NAN);
        }
        // x - m in f64 is exact for f32 rows; the vector kernels get the same
        // accuracy from (mantissa, exponent) pairs (see vector::ShiftedExp).
        let shifted = |i: usize| exp_scalar((*x.add(i)).to_f64() - m.to_f64());
        let mut sum = 0.0f64;
        for i in 0..n {
            let e = shifted(i);
            if RELOAD {
                *y.add(i) = T::from_f64(e);
            }
            sum += e;
        }
        let r = 1.0 / sum;
        for i in 0..n {
            let e = if RELOAD { (*y.add(i)).to_f64() } else { shifted(i) };
            *y.add(i) = T::from_f64(e * r);
        }
    }
}

/// The Two-Pass softmax of Dukhan & Ablavatski (2020): sums of (p, n) pairs.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
unsafe fn two_pass<T: Real>(x: *const T, y: *mut T, n: usize) {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for.
    unsafe {
        let lo = T::from_f64(-TWO_PASS_X_LIMIT);
        let (mut sum, mut exp) = (0.0f64, f64::NEG_INFINITY);
        for i in 0..n {
            // max(lo) maps -inf to a finite value whose term vanishes; NaN
            // stays NaN (f32::max would drop it, so test first).
            let xi = *x.add(i);
            let (p, e) = exp_parts_scalar(if xi.is_nan() { xi } else { xi.max(lo) });
            (sum, exp) = merge_pair(sum, exp, p.to_f64(), e.to_f64());
        }
        let Some((sum, exp)) = two_pass_accept(sum, exp) else {
            return three_pass::<T, false>(x, y, n);
        };
        let r = T::from_f64(1.0 / sum);
        let exp = T::from_f64(exp);
        for i in 0..n {
            let (p, e) = exp_parts_scalar((*x.add(i)).max(lo));
            *y.add(i) = (p * r).scale_pow2(e - exp);
        }
    }
}

/// Online softmax: one pass of running (max, sum rescaled to max).
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
unsafe fn online<T: Real>(x: *const T, y: *mut T, n: usize) {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for.
    unsafe {
        let (mut m, mut d) = (f64::NEG_INFINITY, 0.0f64);
        for i in 0..n {
            let v = (*x.add(i)).to_f64();
            if v.is_nan() {
                return fill(y, n, T::NAN);
            }
            if v == f64::NEG_INFINITY {
                continue; // contributes exp(-inf) = 0
            }
            if v > m {
                d = d * exp_scalar(m - v) + 1.0;
                m = v;
            } else {
                d += exp_scalar(v - m);
            }
        }
        if !m.is_finite() {
            return fill(y, n, T::NAN);
        }
        let r = 1.0 / d;
        for i in 0..n {
            *y.add(i) = T::from_f64(exp_scalar((*x.add(i)).to_f64() - m) * r);
        }
    }
}

/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
pub(crate) unsafe fn log_softmax<T: Real>(x: *const T, y: *mut T, n: usize) {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for.
    unsafe {
        let m = row_max(x, n);
        let m = if m.is_finite() { m } else { T::ZERO };
        let mut sum = 0.0f64;
        for i in 0..n {
            sum += exp_scalar(*x.add(i) - m).to_f64();
        }
        let ln_sum = T::from_f64(sum.ln());
        for i in 0..n {
            *y.add(i) = (*x.add(i) - m) - ln_sum;
        }
    }
}

/// logsumexp of one row in f64: max + ln(sum exp(x - max)), with the
/// special values of `scipy.special.logsumexp` (NaN anywhere: NaN; else a
/// `+inf` entry: `+inf`; all `-inf` or empty: `-inf`).
///
/// # Safety
/// `x` must be valid for reading `n` elements.
pub(crate) unsafe fn logsumexp<T: Real>(x: *const T, n: usize) -> f64 {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for.
    unsafe {
        let m = row_max(x, n).to_f64();
        if !m.is_finite() {
            return m;
        }
        let mut sum = 0.0f64;
        for i in 0..n {
            sum += exp_scalar((*x.add(i)).to_f64() - m);
        }
        m + sum.ln()
    }
}
