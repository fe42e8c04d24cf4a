//! The float L1 norm written once over a SIMD register type `V`.
//!
//! Every function is `#[inline(always)]` and only meaningful when inlined
//! into the `#[target_feature]` trampoline of `dispatch::run`. Sums
//! are kept in registers for blocks of `BLOCK` elements and folded into an
//! f64 total, as in the softmax kernels.

use super::Affine;
use crate::simd::{Element, Real, Storage, Vector};

/// Elements summed in registers before folding into the f64 total.
const BLOCK: usize = 4096;

/// The row sum, and whether the row is constant (every element equal to
/// the first, and the sum finite: NaN and infinities are not constant).
///
/// The register sums are compensated (Kahan 1965): a plain float32 lane
/// sum drifts by about (terms per lane) ulps, and the mean's error is
/// amplified by |mean| / s in the output (rows of -18.8 with s = 0.08 were
/// 4e-4 off, rows of 6196 with s = 0.08 4e-3 with float32 lane reductions;
/// found by the fuzzer).
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn sum_and_constancy<V: Storage<M>, M>(x: *const M, n: usize) -> (f64, bool) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let lanes = V::LANES;
        let zero = V::splat(V::Elem::ZERO);
        let (mut lo, mut hi) = (V::splat(V::read(x)), V::splat(V::read(x)));
        let mut total = 0.0f64;
        let mut start = 0;
        while start < n {
            let end = (start + BLOCK).min(n);
            let (mut s0, mut c0, mut s1, mut c1) = (zero, zero, zero, zero);
            let mut i = start;
            while i + 2 * lanes <= end {
                let (a, b) = (V::load_from(x.add(i)), V::load_from(x.add(i + lanes)));
                kahan_add(&mut s0, &mut c0, a);
                kahan_add(&mut s1, &mut c1, b);
                (lo, hi) = (lo.min(a).min(b), hi.max(a).max(b));
                i += 2 * lanes;
            }
            if i + lanes <= end {
                let a = V::load_from(x.add(i));
                kahan_add(&mut s0, &mut c0, a);
                (lo, hi) = (lo.min(a), hi.max(a));
                i += lanes;
            }
            if i < end {
                // The sum pads with 0, the range with the first element.
                kahan_add(&mut s1, &mut c1, V::load_partial_from(x.add(i), end - i, V::Elem::ZERO));
                let a = V::load_partial_from(x.add(i), end - i, V::read(x));
                (lo, hi) = (lo.min(a), hi.max(a));
            }
            total += (lanes_f64(s0) + lanes_f64(s1)) - (lanes_f64(c0) + lanes_f64(c1));
            start = end;
        }
        (total, total.is_finite() && lo.reduce_min() == hi.reduce_max())
    }
}

/// The sum of the lanes of `v` in f64 (a float32 reduction of the lane
/// sums would round away what the compensation kept).
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn lanes_f64<V: Vector>(v: V) -> f64 {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let mut lanes = [V::Elem::ZERO; 16];
        debug_assert!(V::LANES <= lanes.len());
        v.store(lanes.as_mut_ptr());
        lanes[..V::LANES].iter().map(|e| e.to_f64()).sum()
    }
}

/// sum += v with the compensation c holding what the rounding lost (the
/// true sum is sum - c).
#[inline(always)]
fn kahan_add<V: Vector>(sum: &mut V, c: &mut V, v: V) {
    let y = v.sub(*c);
    let t = sum.add(y);
    *c = t.sub(*sum).sub(y);
    *sum = t;
}

/// sum |x - center|.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn deviation_sum<V: Storage<M>, M>(x: *const M, n: usize, center: V::Elem) -> f64 {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let lanes = V::LANES;
        let c = V::splat(center);
        let zero = V::splat(V::Elem::ZERO);
        let mut total = 0.0f64;
        let mut start = 0;
        while start < n {
            let end = (start + BLOCK).min(n);
            let (mut s0, mut s1) = (zero, zero);
            let mut i = start;
            while i + 2 * lanes <= end {
                s0 = s0.add(V::load_from(x.add(i)).sub(c).abs());
                s1 = s1.add(V::load_from(x.add(i + lanes)).sub(c).abs());
                i += 2 * lanes;
            }
            if i + lanes <= end {
                s0 = s0.add(V::load_from(x.add(i)).sub(c).abs());
                i += lanes;
            }
            if i < end {
                // Padded with the center: its terms are 0.
                s1 = s1.add(V::load_partial_from(x.add(i), end - i, center).sub(c).abs());
            }
            total += s0.add(s1).reduce_add().to_f64();
            start = end;
        }
        total
    }
}


/// y = (x - mean) * scale (* w + b) for `lanes` (or fewer, `count`) elements at `i`.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn write_lanes<V: Storage<M>, M, const W: bool, const B: bool>(
    x: *const M,
    y: *mut M,
    i: usize,
    count: usize,
    mean: V,
    scale: V,
    affine: Affine<V::Elem>,
) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let mut v = V::load_n_from(x.add(i), count, V::Elem::ZERO).sub(mean).mul(scale);
        if W {
            let b = if B { V::load_n(affine.bias.add(i), count, V::Elem::ZERO) } else { V::splat(V::Elem::ZERO) };
            v = v.mul_add(V::load_n(affine.weight.add(i), count, V::Elem::ZERO), b);
        } else if B {
            v = v.add(V::load_n(affine.bias.add(i), count, V::Elem::ZERO));
        }
        if count == V::LANES {
            v.store_to(y.add(i));
        } else {
            v.store_partial_to(y.add(i), count);
        }
    }
}

/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn write_row<V: Storage<M>, M, const W: bool, const B: bool>(
    x: *const M,
    y: *mut M,
    n: usize,
    mean: V::Elem,
    scale: V::Elem,
    affine: Affine<V::Elem>,
) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let (mean, scale) = (V::splat(mean), V::splat(scale));
        let mut i = 0;
        while i + V::LANES <= n {
            write_lanes::<V, M, W, B>(x, y, i, V::LANES, mean, scale, affine);
            i += V::LANES;
        }
        if i < n {
            write_lanes::<V, M, W, B>(x, y, i, n - i, mean, scale, affine);
        }
    }
}

/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub unsafe fn l1_norm<V: Storage<M>, M: Element<Real = V::Elem>>(x: *const M, y: *mut M, n: usize, eps: V::Elem, affine: Affine<V::Elem>) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        if n == 0 {
            return;
        }
        let (sum, constant) = sum_and_constancy::<V, M>(x, n);
        if !sum.is_finite() {
            // The register sums overflow for large finite values (750 float32
            // 1.7e38s gave NaN; found by the fuzzer): the scalar reference sums
            // in f64. Rows holding NaN or infinities take it too (NaN results).
            return M::scalar_row(x, y, n, |x, y| super::scalar::l1_norm_float(x, y, n, eps, affine));
        }
        let (mean, mad) = if constant {
            // The exact mean and s = 0, as in the scalar reference.
            (V::read(x), 0.0)
        } else {
            let mean = V::Elem::from_f64(sum / n as f64);
            let mad = deviation_sum::<V, M>(x, n, mean);
            if !mad.is_finite() {
                return M::scalar_row(x, y, n, |x, y| super::scalar::l1_norm_float(x, y, n, eps, affine));
            }
            (mean, mad / n as f64)
        };
        if mad + eps.to_f64() < super::scalar::tiny_spread::<V::Elem>() {
            // Rows this flat are computed in f64 (see scalar::tiny_spread).
            return M::scalar_row(x, y, n, |x, y| super::scalar::l1_norm_float(x, y, n, eps, affine));
        }
        let inverse = 1.0 / (mad + eps.to_f64());
        let scale = V::Elem::from_f64(inverse);
        if inverse.is_finite() && !scale.is_finite() {
            // Beyond the element type's range (see scalar::l1_norm_float).
            return M::scalar_row(x, y, n, |x, y| super::scalar::write_scaled_f64(x, y, n, mean.to_f64(), inverse, affine));
        }
        match (!affine.weight.is_null(), !affine.bias.is_null()) {
            (false, false) => write_row::<V, M, false, false>(x, y, n, mean, scale, affine),
            (false, true) => write_row::<V, M, false, true>(x, y, n, mean, scale, affine),
            (true, false) => write_row::<V, M, true, false>(x, y, n, mean, scale, affine),
            (true, true) => write_row::<V, M, true, true>(x, y, n, mean, scale, affine),
        }
    }
}
