//! Scalar references: the int8 contract in plain integer arithmetic and the
//! float formula with f64 sums. Also the portable path.

use super::fixed::{Mean, Requant};
use super::{Affine, RowBatch};
use crate::simd::Real;

/// Element `i` of an optional per-channel array, else `default`.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline]
unsafe fn channel<T: Copy>(p: *const T, i: usize, default: T) -> T {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for.
    unsafe {
        if p.is_null() {
            default
        } else {
            *p.add(i)
        }
    }
}

/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
pub(crate) unsafe fn l1_norm_i8_rows(batch: RowBatch<i8>, gain: f32, affine: Affine<i8>) {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for.
    unsafe {
        for i in 0..batch.rows {
            l1_norm_i8(batch.x_row(i), batch.y_row(i), batch.n, gain, affine);
        }
    }
}

/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
unsafe fn l1_norm_i8(x: *const i8, y: *mut i8, n: usize, gain: f32, affine: Affine<i8>) {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for.
    unsafe {
        if n == 0 {
            return;
        }
        let sum: i64 = (0..n).map(|i| *x.add(i) as i64).sum();
        let mean = Mean::new(sum, n as u64);
        // A = sum |n x - S| straight from its definition.
        let a: u128 = (0..n).map(|i| (n as i64 * *x.add(i) as i64 - sum).unsigned_abs() as u128).sum();
        let rq = Requant::new(n as u64, mean, a, gain);
        for i in 0..n {
            let (w, b) = (channel(affine.weight, i, 1), channel(affine.bias, i, 0));
            *y.add(i) = rq.apply(*x.add(i), w, b);
        }
    }
}

/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
pub(crate) unsafe fn l1_norm_float<T: Real>(x: *const T, y: *mut T, n: usize, eps: T, affine: Affine<T>) {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for.
    unsafe {
        if n == 0 {
            return;
        }
        let sum: f64 = (0..n).map(|i| (*x.add(i)).to_f64()).sum();
        // A constant row has its value as the exact mean and s = 0 (a rounded
        // f64 sum would leave x - mean = 1 ulp, and with eps = 0 give +-1).
        let constant = sum.is_finite() && (1..n).all(|i| *x.add(i) == *x);
        let mean64 = if constant { (*x).to_f64() } else { sum / n as f64 };
        let mean = T::from_f64(mean64);
        // Deviations in f64: x - mean can exceed T's range (float32 rows
        // holding -3.4e38 and 3.4e38; found by the fuzzer).
        let (mad, widest) = deviations(x, n, mean.to_f64());
        let spread = mad / n as f64 + eps.to_f64();
        if spread < tiny_spread::<T>() {
            // The mean rounded to T (to its subnormal spacing, at worst) is no
            // longer negligible against the spread: the whole row in f64.
            let (mad, _) = deviations(x, n, mean64);
            return write_scaled_f64(x, y, n, mean64, 1.0 / (mad / n as f64 + eps.to_f64()), affine);
        }
        let inverse = 1.0 / spread;
        let scale = T::from_f64(inverse);
        let fits = scale.is_finite() && T::from_f64(widest).is_finite();
        if inverse.is_finite() && !fits {
            // 1 / (s + eps) or a deviation beyond T's range (also eps = 0 and
            // a spread below T's smallest normal; hypothesis found
            // [0, 1.2e-38 x 6]): scale in f64, where they fit.
            return write_scaled_f64(x, y, n, mean.to_f64(), inverse, affine);
        }
        for i in 0..n {
            let v = (*x.add(i) - mean) * scale;
            *y.add(i) = v.mul_add(channel(affine.weight, i, T::ONE), channel(affine.bias, i, T::ZERO));
        }
    }
}

/// Sum and largest of |x - mean| over the row, in f64.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
unsafe fn deviations<T: Real>(x: *const T, n: usize, mean: f64) -> (f64, f64) {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for.
    unsafe {
        let (mut sum, mut widest) = (0.0f64, 0.0f64);
        for i in 0..n {
            let d = ((*x.add(i)).to_f64() - mean).abs();
            sum += d;
            widest = widest.max(d);
        }
        (sum, widest)
    }
}

/// Spreads s + eps below T's smallest normal times 2^digits: there the
/// rounding of the mean to T (absolute, down to T's subnormal spacing) can
/// be a large fraction of s. Rows this flat are computed in f64.
pub(crate) fn tiny_spread<T: Real>() -> f64 {
    let min_normal = if T::MANTISSA_DIGITS == 24 { f32::MIN_POSITIVE as f64 } else { f64::MIN_POSITIVE };
    min_normal * 2f64.powi(T::MANTISSA_DIGITS as i32)
}

/// y = (x - mean) * inverse (* w + b) with the product taken in f64.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
pub(crate) unsafe fn write_scaled_f64<T: Real>(x: *const T, y: *mut T, n: usize, mean: f64, inverse: f64, affine: Affine<T>) {
    // SAFETY: this function's contract: every access below stays inside the
    // elements the caller vouched for.
    unsafe {
        for i in 0..n {
            let v = ((*x.add(i)).to_f64() - mean) * inverse;
            let (w, b) = (channel(affine.weight, i, T::ONE).to_f64(), channel(affine.bias, i, T::ZERO).to_f64());
            *y.add(i) = T::from_f64(v.mul_add(w, b));
        }
    }
}
