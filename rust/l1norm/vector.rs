//! The float L1 norm written once over a SIMD register type `V`.
//!
//! Every function is `#[inline(always)]` and only meaningful when inlined
//! into a `#[target_feature]` entry point (`avx2.rs`, `avx512.rs`). Sums
//! are kept in registers for blocks of `BLOCK` elements and folded into an
//! f64 total, as in the softmax kernels.

use super::Affine;
use crate::simd::{Real, Vector};

/// Elements summed in registers before folding into the f64 total.
const BLOCK: usize = 4096;

/// Sum of x (ABS = false, center 0) or the pair (sum |x - center|,
/// sum (x - center)) (ABS = true).
#[inline(always)]
unsafe fn row_sum<V: Vector, const ABS: bool>(x: *const V::Elem, n: usize, center: V::Elem) -> (f64, f64) {
    let lanes = V::LANES;
    let c = V::splat(center);
    let zero = V::splat(V::Elem::ZERO);
    let (mut total, mut signed) = (0.0f64, 0.0f64);
    let mut start = 0;
    while start < n {
        let end = (start + BLOCK).min(n);
        let (mut s0, mut s1, mut d0, mut d1) = (zero, zero, zero, zero);
        let mut i = start;
        while i + 2 * lanes <= end {
            accumulate::<V, ABS>(&mut s0, &mut d0, V::load(x.add(i)), c);
            accumulate::<V, ABS>(&mut s1, &mut d1, V::load(x.add(i + lanes)), c);
            i += 2 * lanes;
        }
        if i + lanes <= end {
            accumulate::<V, ABS>(&mut s0, &mut d0, V::load(x.add(i)), c);
            i += lanes;
        }
        if i < end {
            // Fill with the center: its terms are 0 in both modes' sums
            // (for ABS = false the center passed is 0).
            accumulate::<V, ABS>(&mut s1, &mut d1, V::load_partial(x.add(i), end - i, center), c);
        }
        total += s0.add(s1).reduce_add().to_f64();
        if ABS {
            signed += d0.add(d1).reduce_add().to_f64();
        }
        start = end;
    }
    (total, signed)
}

#[inline(always)]
unsafe fn accumulate<V: Vector, const ABS: bool>(sum: &mut V, signed: &mut V, v: V, c: V) {
    if ABS {
        let d = v.sub(c);
        *sum = sum.add(d.abs());
        *signed = signed.add(d);
    } else {
        *sum = sum.add(v);
    }
}

/// `count <= LANES` elements at `p` (zeros past them).
#[inline(always)]
unsafe fn load_n<V: Vector>(p: *const V::Elem, count: usize) -> V {
    if count == V::LANES {
        V::load(p)
    } else {
        V::load_partial(p, count, V::Elem::ZERO)
    }
}

/// y = (x - mean) * scale (* w + b) for `lanes` (or fewer, `count`) elements at `i`.
#[inline(always)]
unsafe fn write_lanes<V: Vector, const W: bool, const B: bool>(
    x: *const V::Elem,
    y: *mut V::Elem,
    i: usize,
    count: usize,
    mean: V,
    scale: V,
    affine: Affine<V::Elem>,
) {
    let mut v = load_n::<V>(x.add(i), count).sub(mean).mul(scale);
    if W {
        let b = if B { load_n::<V>(affine.bias.add(i), count) } else { V::splat(V::Elem::ZERO) };
        v = v.mul_add(load_n::<V>(affine.weight.add(i), count), b);
    } else if B {
        v = v.add(load_n::<V>(affine.bias.add(i), count));
    }
    if count == V::LANES {
        v.store(y.add(i));
    } else {
        v.store_partial(y.add(i), count);
    }
}

#[inline(always)]
unsafe fn write_row<V: Vector, const W: bool, const B: bool>(
    x: *const V::Elem,
    y: *mut V::Elem,
    n: usize,
    mean: V::Elem,
    scale: V::Elem,
    affine: Affine<V::Elem>,
) {
    let (mean, scale) = (V::splat(mean), V::splat(scale));
    let mut i = 0;
    while i + V::LANES <= n {
        write_lanes::<V, W, B>(x, y, i, V::LANES, mean, scale, affine);
        i += V::LANES;
    }
    if i < n {
        write_lanes::<V, W, B>(x, y, i, n - i, mean, scale, affine);
    }
}

#[inline(always)]
pub unsafe fn l1_norm<V: Vector>(x: *const V::Elem, y: *mut V::Elem, n: usize, eps: V::Elem, affine: Affine<V::Elem>) {
    if n == 0 {
        return;
    }
    let zero = V::Elem::ZERO;
    let mean = V::Elem::from_f64(row_sum::<V, false>(x, n, zero).0 / n as f64);
    let (mad, residual) = row_sum::<V, true>(x, n, mean);
    // The register sums round the first mean (a constant row of float32
    // 0.118 gave 1 ulp off, so (x - mean) / eps = 7e-4 instead of 0). One
    // correction step, mean + sum(x - mean) / n (the corrected two-pass
    // algorithm of Chan, Golub & LeVeque 1983), recovers it; sum |x - mean|
    // moves by at most n times the correction, which is rounding-level.
    let mean = V::Elem::from_f64(mean.to_f64() + residual / n as f64);
    let mad = mad / n as f64;
    let scale = V::Elem::from_f64(super::scalar::inverse_spread(mad + eps.to_f64()));
    match (!affine.weight.is_null(), !affine.bias.is_null()) {
        (false, false) => write_row::<V, false, false>(x, y, n, mean, scale, affine),
        (false, true) => write_row::<V, false, true>(x, y, n, mean, scale, affine),
        (true, false) => write_row::<V, true, false>(x, y, n, mean, scale, affine),
        (true, true) => write_row::<V, true, true>(x, y, n, mean, scale, affine),
    }
}
