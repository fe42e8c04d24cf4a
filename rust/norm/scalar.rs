//! Scalar reference of the norms: every element in f64 arithmetic, the
//! same rescaling and special-value rules as the vector kernels. Also the
//! portable path.

use super::{rescale_factor, safe_min, Affine, Norm, RowConstants, RowStats};
use crate::simd::{Element, Real};

/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
pub(crate) unsafe fn norm<T: Real>(kind: Norm, x: *const T, y: *mut T, n: usize, eps: f64, affine: Affine<T>, stats: RowStats<T>) {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for.
    unsafe {
        let k = if n == 0 { None } else { constants(kind, x, n, eps) };
        stats.write(k.as_ref());
        let Some(k) = k else {
            return fill(y, n, T::NAN);
        };
        for i in 0..n {
            let z = (((*x.add(i)).to_f64() * k.scale - k.c_hi) - k.c_lo) * k.r;
            let w = channel(affine.weight, i, 1.0);
            let b = channel(affine.bias, i, 0.0);
            *y.add(i) = T::from_f64(z * w + b);
        }
    }
}

/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn add_norm<M: Element>(
    kind: Norm,
    x: *const M,
    residual: *const M,
    sum: *mut M,
    y: *mut M,
    n: usize,
    eps: f64,
    affine: Affine<M::Real>,
    stats: RowStats<M::Real>,
) {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for; the sum is complete before the norm
    // reads it.
    unsafe {
        for i in 0..n {
            *sum.add(i) = M::from_real((*x.add(i)).to_real() + (*residual.add(i)).to_real());
        }
        M::scalar_row(sum, y, n, |s, y| norm(kind, s, y, n, eps, affine, stats))
    }
}

/// The row constants, or None for a row holding NaN or +-inf.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
unsafe fn constants<T: Real>(kind: Norm, x: *const T, n: usize, eps: f64) -> Option<RowConstants> {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for.
    unsafe {
        let (c_hi, c_lo, q) = sums(kind, x, n, 1.0);
        let div = kind.divisor(n);
        if q.is_finite() && q >= safe_min::<f64>() {
            return Some(RowConstants::new(1.0, c_hi, c_lo, q / div, eps));
        }
        // Overflow, underflow, a zero sum of squares, or a non-finite entry.
        let amax = (0..n).fold(0.0f64, |m, i| {
            let v = (*x.add(i)).to_f64().abs();
            if v.is_nan() || m.is_nan() { f64::NAN } else { m.max(v) }
        });
        if !amax.is_finite() {
            return None;
        }
        let scale = if amax == 0.0 { 1.0 } else { rescale_factor::<f64>(amax) };
        let (c_hi, c_lo, q) = sums(kind, x, n, scale);
        Some(RowConstants::new(scale, c_hi, c_lo, q / div, eps))
    }
}

/// (c_hi, c_lo, q) of the row times `scale`: the centre c_hi + c_lo and the
/// sum of squares the norm divides by the divisor (see the module docs).
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
unsafe fn sums<T: Real>(kind: Norm, x: *const T, n: usize, scale: f64) -> (f64, f64, f64) {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for.
    unsafe {
        let v = |i: usize| (*x.add(i)).to_f64() * scale;
        let sum: f64 = (0..n).map(v).sum();
        match kind {
            Norm::Rms => (0.0, 0.0, (0..n).map(|i| v(i) * v(i)).sum()),
            Norm::Crms => (0.0, 0.0, (0..n).map(|i| v(i) * v(i)).sum::<f64>() + sum * sum),
            Norm::Layer => {
                // The mean, refined once: on long rows of huge, nearly equal
                // values the plain sum / n can be thousands of ulps off, and
                // deviations that large next to the spread cost the
                // corrected formula below its digits (fuzzer finding: rows
                // of 4076 values within a few ulps of 1e160, 1e-11 off).
                let c0 = sum / n as f64;
                let c_hi = c0 + (0..n).map(|i| v(i) - c0).sum::<f64>() / n as f64;
                let (mut sd, mut sd2) = (0.0f64, 0.0f64);
                for i in 0..n {
                    let d = v(i) - c_hi;
                    sd += d;
                    sd2 += d * d;
                }
                // Chan, Golub & LeVeque (1983), eq. 1.7: the corrected two-pass sum.
                (c_hi, sd / n as f64, (sd2 - sd * sd / n as f64).max(0.0))
            }
        }
    }
}

/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
unsafe fn channel<T: Real>(p: *const T, i: usize, default: f64) -> f64 {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for.
    unsafe {
        if p.is_null() {
            default
        } else {
            (*p.add(i)).to_f64()
        }
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
