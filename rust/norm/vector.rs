//! The norms written once over a SIMD register type `V`.
//!
//! Every function is `#[inline(always)]` and only meaningful when inlined
//! into a `#[target_feature]` entry point (`avx2.rs`, `avx512.rs`). Sums
//! run in four register chains per statistic (to hide the add / FMA
//! latency) over blocks of `BLOCK` elements and are folded into f64
//! totals; the last `n % LANES` elements of a statistics pass are summed
//! in f64 directly.
//!
//! Passes over a row (it stays in L1 / L2 cache after the first):
//! RMSNorm: sum x^2, write. CRMSNorm: sum x and x^2, write. LayerNorm:
//! sum x, sums of d = x - c and d^2, write. The fused forms replace the
//! first pass by s = x + residual, stored, with both sums of s.

use super::{inv_rms, rescale_factor, safe_min, Affine, Norm, RowConstants, BLOCK};
use crate::simd::{Real, Vector};

/// Register chains per statistic.
const CHAINS: usize = 4;

/// The value a statistics or write pass works on: x * scale (`SCALED`),
/// minus the centre (`CENTER`; `neg_c` = -c), one rounding for both.
#[inline(always)]
unsafe fn map<V: Vector, const SCALED: bool, const CENTER: bool>(x: V, scale: V, neg_c: V) -> V {
    match (SCALED, CENTER) {
        (false, false) => x,
        (true, false) => x.mul(scale),
        (false, true) => x.add(neg_c),
        (true, true) => x.mul_add(scale, neg_c),
    }
}

/// The same map on one element.
#[inline(always)]
fn map_one<T: Real, const SCALED: bool, const CENTER: bool>(x: T, scale: T, neg_c: T) -> T {
    match (SCALED, CENTER) {
        (false, false) => x,
        (true, false) => x * scale,
        (false, true) => x + neg_c,
        (true, true) => x.mul_add(scale, neg_c),
    }
}

/// (sum v, sum v^2) over the row for v = map(x); `LIN` / `SQ` select which
/// sums are computed (the other is 0).
#[inline(always)]
unsafe fn sums<V: Vector, const SCALED: bool, const CENTER: bool, const LIN: bool, const SQ: bool>(
    x: *const V::Elem,
    n: usize,
    scale: V::Elem,
    neg_c: V::Elem,
) -> (f64, f64) {
    let lanes = V::LANES;
    let (vs, vc) = (V::splat(scale), V::splat(neg_c));
    let zero = V::splat(V::Elem::ZERO);
    let (mut lin, mut sq) = (0.0f64, 0.0f64);
    let body = n - n % lanes;
    let mut start = 0;
    while start < body {
        let end = (start + BLOCK).min(body);
        let (mut l, mut q) = ([zero; CHAINS], [zero; CHAINS]);
        let mut i = start;
        while i + CHAINS * lanes <= end {
            for c in 0..CHAINS {
                let v = map::<V, SCALED, CENTER>(V::load(x.add(i + c * lanes)), vs, vc);
                if LIN {
                    l[c] = l[c].add(v);
                }
                if SQ {
                    q[c] = v.mul_add(v, q[c]);
                }
            }
            i += CHAINS * lanes;
        }
        while i < end {
            let v = map::<V, SCALED, CENTER>(V::load(x.add(i)), vs, vc);
            if LIN {
                l[0] = l[0].add(v);
            }
            if SQ {
                q[0] = v.mul_add(v, q[0]);
            }
            i += lanes;
        }
        if LIN {
            lin += l[0].add(l[1]).add(l[2].add(l[3])).reduce_add().to_f64();
        }
        if SQ {
            sq += q[0].add(q[1]).add(q[2].add(q[3])).reduce_add().to_f64();
        }
        start = end;
    }
    for i in body..n {
        let v = map_one::<V::Elem, SCALED, CENTER>(*x.add(i), scale, neg_c).to_f64();
        lin += v;
        sq += v * v;
    }
    (if LIN { lin } else { 0.0 }, if SQ { sq } else { 0.0 })
}

/// s = x + r, stored, and (sum s, sum s^2).
#[inline(always)]
unsafe fn add_store<V: Vector>(x: *const V::Elem, r: *const V::Elem, s: *mut V::Elem, n: usize) -> (f64, f64) {
    let lanes = V::LANES;
    let zero = V::splat(V::Elem::ZERO);
    let (mut lin, mut sq) = (0.0f64, 0.0f64);
    let mut start = 0;
    while start < n {
        let end = (start + BLOCK).min(n);
        let (mut l, mut q) = ([zero; CHAINS], [zero; CHAINS]);
        let mut i = start;
        while i + CHAINS * lanes <= end {
            for c in 0..CHAINS {
                let j = i + c * lanes;
                let v = V::load(x.add(j)).add(V::load(r.add(j)));
                v.store(s.add(j));
                l[c] = l[c].add(v);
                q[c] = v.mul_add(v, q[c]);
            }
            i += CHAINS * lanes;
        }
        while i < end {
            let count = (end - i).min(lanes);
            let v = if count == lanes {
                let v = V::load(x.add(i)).add(V::load(r.add(i)));
                v.store(s.add(i));
                v
            } else {
                // Zero-filled lanes add nothing to either sum.
                let v = V::load_partial(x.add(i), count, V::Elem::ZERO).add(V::load_partial(r.add(i), count, V::Elem::ZERO));
                v.store_partial(s.add(i), count);
                v
            };
            l[0] = l[0].add(v);
            q[0] = v.mul_add(v, q[0]);
            i += count;
        }
        lin += l[0].add(l[1]).add(l[2].add(l[3])).reduce_add().to_f64();
        sq += q[0].add(q[1]).add(q[2].add(q[3])).reduce_add().to_f64();
        start = end;
    }
    (lin, sq)
}

/// max |x| over the row (a NaN may be dropped: callers catch NaN rows
/// through their sums, which NaN always poisons).
#[inline(always)]
unsafe fn abs_max<V: Vector>(x: *const V::Elem, n: usize) -> f64 {
    let lanes = V::LANES;
    let zero = V::Elem::ZERO;
    let (mut m0, mut m1) = (V::splat(zero), V::splat(zero));
    let mut i = 0;
    while i + 2 * lanes <= n {
        m0 = m0.max(V::load(x.add(i)).abs());
        m1 = m1.max(V::load(x.add(i + lanes)).abs());
        i += 2 * lanes;
    }
    if i + lanes <= n {
        m0 = m0.max(V::load(x.add(i)).abs());
        i += lanes;
    }
    if i < n {
        m1 = m1.max(V::load_partial(x.add(i), n - i, zero).abs());
    }
    m0.max(m1).reduce_max().to_f64()
}

/// The row constants from the sums of the first pass, computed on x times
/// `scale` (a power of two; 1 on the fast path). None when the sum of
/// squares is not finite.
#[inline(always)]
unsafe fn constants<V: Vector, const SCALED: bool>(
    kind: Norm,
    x: *const V::Elem,
    n: usize,
    eps: f64,
    scale: f64,
    (lin, sq): (f64, f64),
) -> Option<(RowConstants, f64)> {
    let s = V::Elem::from_f64(scale);
    let (c_hi, c_lo, q) = match kind {
        Norm::Rms => (0.0, 0.0, sq),
        Norm::Crms => (0.0, 0.0, sq + lin * lin),
        Norm::Layer => {
            let c = V::Elem::from_f64(lin / n as f64);
            let (sd, sd2) = sums::<V, SCALED, true, true, true>(x, n, s, -c);
            // Chan, Golub & LeVeque (1983), eq. 1.7: the corrected two-pass sum.
            (c.to_f64(), sd / n as f64, (sd2 - sd * sd / n as f64).max(0.0))
        }
    };
    q.is_finite().then(|| (RowConstants { scale, c_hi, c_lo, r: inv_rms(q / kind.divisor(n), eps, scale) }, q))
}

/// The first-pass sums of `kind` on x * scale.
#[inline(always)]
unsafe fn first_sums<V: Vector, const SCALED: bool>(kind: Norm, x: *const V::Elem, n: usize, scale: V::Elem) -> (f64, f64) {
    let zero = V::Elem::ZERO;
    match kind {
        Norm::Rms => sums::<V, SCALED, false, false, true>(x, n, scale, zero),
        Norm::Layer => sums::<V, SCALED, false, true, false>(x, n, scale, zero),
        Norm::Crms => sums::<V, SCALED, false, true, true>(x, n, scale, zero),
    }
}

/// The constants of a row whose first pass gave `first`: the fast path
/// when its sum of squares is safe, else recomputed on the rescaled row.
/// None for a row holding NaN or +-inf.
#[inline(always)]
unsafe fn row_constants<V: Vector>(kind: Norm, x: *const V::Elem, n: usize, eps: f64, first: (f64, f64)) -> Option<RowConstants> {
    if let Some((k, q)) = constants::<V, false>(kind, x, n, eps, 1.0, first) {
        if q >= safe_min::<V::Elem>() {
            return Some(k);
        }
    }
    let amax = abs_max::<V>(x, n);
    if !amax.is_finite() {
        return None;
    }
    let scale = if amax == 0.0 { 1.0 } else { rescale_factor::<V::Elem>(amax) };
    let first = first_sums::<V, true>(kind, x, n, V::Elem::from_f64(scale));
    constants::<V, true>(kind, x, n, eps, scale, first).map(|(k, _)| k)
}

/// Loads `count <= LANES` elements (zeros past them).
#[inline(always)]
unsafe fn load_n<V: Vector>(p: *const V::Elem, count: usize) -> V {
    if count == V::LANES {
        V::load(p)
    } else {
        V::load_partial(p, count, V::Elem::ZERO)
    }
}

/// The write-pass constants as registers.
#[derive(Clone, Copy)]
struct Coeffs<V> {
    scale: V,
    neg_c: V,
    r: V,
    /// -c_lo * r: the low part of the centre, applied in the final FMA.
    neg_clo_r: V,
}

/// y = map(x) * r (- c_lo r) (* w + b) for `count` elements at `i`.
#[inline(always)]
unsafe fn write_lanes<V: Vector, const SCALED: bool, const CENTER: bool, const W: bool, const B: bool>(
    x: *const V::Elem,
    y: *mut V::Elem,
    i: usize,
    count: usize,
    k: Coeffs<V>,
    affine: Affine<V::Elem>,
) {
    let d = map::<V, SCALED, CENTER>(load_n::<V>(x.add(i), count), k.scale, k.neg_c);
    let mut z = if CENTER { d.mul_add(k.r, k.neg_clo_r) } else { d.mul(k.r) };
    if W && B {
        z = z.mul_add(load_n::<V>(affine.weight.add(i), count), load_n::<V>(affine.bias.add(i), count));
    } else if W {
        z = z.mul(load_n::<V>(affine.weight.add(i), count));
    } else if B {
        z = z.add(load_n::<V>(affine.bias.add(i), count));
    }
    if count == V::LANES {
        z.store(y.add(i));
    } else {
        z.store_partial(y.add(i), count);
    }
}

#[inline(always)]
unsafe fn write_row<V: Vector, const SCALED: bool, const CENTER: bool, const W: bool, const B: bool>(
    x: *const V::Elem,
    y: *mut V::Elem,
    n: usize,
    k: Coeffs<V>,
    affine: Affine<V::Elem>,
) {
    let mut i = 0;
    while i + V::LANES <= n {
        write_lanes::<V, SCALED, CENTER, W, B>(x, y, i, V::LANES, k, affine);
        i += V::LANES;
    }
    if i < n {
        write_lanes::<V, SCALED, CENTER, W, B>(x, y, i, n - i, k, affine);
    }
}

#[inline(always)]
unsafe fn write_affine<V: Vector, const SCALED: bool, const CENTER: bool>(
    x: *const V::Elem,
    y: *mut V::Elem,
    n: usize,
    k: Coeffs<V>,
    affine: Affine<V::Elem>,
) {
    match (!affine.weight.is_null(), !affine.bias.is_null()) {
        (false, false) => write_row::<V, SCALED, CENTER, false, false>(x, y, n, k, affine),
        (false, true) => write_row::<V, SCALED, CENTER, false, true>(x, y, n, k, affine),
        (true, false) => write_row::<V, SCALED, CENTER, true, false>(x, y, n, k, affine),
        (true, true) => write_row::<V, SCALED, CENTER, true, true>(x, y, n, k, affine),
    }
}

/// Normalizes the row `x` (whose first-pass sums are `first`) into `y`.
#[inline(always)]
unsafe fn finish<V: Vector>(kind: Norm, x: *const V::Elem, y: *mut V::Elem, n: usize, eps: f64, affine: Affine<V::Elem>, first: (f64, f64)) {
    let Some(k) = row_constants::<V>(kind, x, n, eps, first) else {
        for i in 0..n {
            *y.add(i) = V::Elem::NAN;
        }
        return;
    };
    let coeffs = Coeffs {
        scale: V::splat(V::Elem::from_f64(k.scale)),
        neg_c: V::splat(V::Elem::from_f64(-k.c_hi)),
        r: V::splat(V::Elem::from_f64(k.r)),
        neg_clo_r: V::splat(V::Elem::from_f64(-k.c_lo * k.r)),
    };
    match (k.scale != 1.0, kind == Norm::Layer) {
        (false, false) => write_affine::<V, false, false>(x, y, n, coeffs, affine),
        (false, true) => write_affine::<V, false, true>(x, y, n, coeffs, affine),
        (true, false) => write_affine::<V, true, false>(x, y, n, coeffs, affine),
        (true, true) => write_affine::<V, true, true>(x, y, n, coeffs, affine),
    }
}

#[inline(always)]
pub unsafe fn norm<V: Vector>(kind: Norm, x: *const V::Elem, y: *mut V::Elem, n: usize, eps: f64, affine: Affine<V::Elem>) {
    if n == 0 {
        return;
    }
    let first = first_sums::<V, false>(kind, x, n, V::Elem::ONE);
    finish::<V>(kind, x, y, n, eps, affine, first)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub unsafe fn add_norm<V: Vector>(
    kind: Norm,
    x: *const V::Elem,
    residual: *const V::Elem,
    sum: *mut V::Elem,
    y: *mut V::Elem,
    n: usize,
    eps: f64,
    affine: Affine<V::Elem>,
) {
    if n == 0 {
        return;
    }
    let first = add_store::<V>(x, residual, sum, n);
    finish::<V>(kind, sum, y, n, eps, affine, first)
}
