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

use super::{inv_rms, rescale_factor, safe_min, Affine, Norm, RowBatch, RowConstants, BLOCK};
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

/// Elements before the first address at `p` aligned to a whole register
/// (at most `n`): loads and stores that straddle cache lines cost extra,
/// and NumPy's large arrays are only 16-byte aligned.
#[inline(always)]
fn head_len<V: Vector>(p: *const V::Elem, n: usize) -> usize {
    let size = std::mem::size_of::<V::Elem>();
    let bytes = V::LANES * size;
    (((bytes - p as usize % bytes) % bytes) / size).min(n)
}

/// The input that maps to 0 (so it adds nothing to the sums): 0, or the
/// centre itself; none for scaled and centred values (one rounding
/// x * s - c), whose head and tail are then summed one by one.
#[inline(always)]
fn neutral<T: Real, const SCALED: bool, const CENTER: bool>(neg_c: T) -> Option<T> {
    match (SCALED, CENTER) {
        (_, false) => Some(T::ZERO),
        (false, true) => Some(-neg_c),
        (true, true) => None,
    }
}

/// Adds v (LIN) and v^2 (SQ) into the accumulators.
#[inline(always)]
unsafe fn accumulate<V: Vector, const LIN: bool, const SQ: bool>(l: &mut V, q: &mut V, v: V) {
    if LIN {
        *l = l.add(v);
    }
    if SQ {
        *q = v.mul_add(v, *q);
    }
}

/// Work done alongside a sums pass on the same element indices of other
/// rows: `at(i, count)` for `count <= LANES` elements at `i`.
trait Alongside<V: Vector> {
    unsafe fn at(&self, i: usize, count: usize);
}

/// A plain sums pass.
struct Nothing;

impl<V: Vector> Alongside<V> for Nothing {
    #[inline(always)]
    unsafe fn at(&self, _: usize, _: usize) {}
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
    sums_along::<V, SCALED, CENTER, LIN, SQ, Nothing>(x, n, scale, neg_c, x, &Nothing)
}

/// [`sums`] with `along` run on the same indices, the main loop aligned on
/// `align` (a row `along` stores to, else `x`).
#[inline(always)]
unsafe fn sums_along<V: Vector, const SCALED: bool, const CENTER: bool, const LIN: bool, const SQ: bool, A: Alongside<V>>(
    x: *const V::Elem,
    n: usize,
    scale: V::Elem,
    neg_c: V::Elem,
    align: *const V::Elem,
    along: &A,
) -> (f64, f64) {
    let lanes = V::LANES;
    let (vs, vc) = (V::splat(scale), V::splat(neg_c));
    let zero = V::splat(V::Elem::ZERO);
    let fill = neutral::<V::Elem, SCALED, CENTER>(neg_c);
    let (mut lin, mut sq) = (0.0f64, 0.0f64);
    // Partial registers need a neutral fill; without one, the unaligned
    // ends are summed one element at a time.
    let head = if fill.is_some() { head_len::<V>(align, n) } else { 0 };
    let body = head + (n - head) / lanes * lanes;
    let mut start = head;
    let (mut l, mut q) = ([zero; CHAINS], [zero; CHAINS]);
    if head > 0 {
        along.at(0, head);
        if let Some(f) = fill {
            let v = map::<V, SCALED, CENTER>(V::load_partial(x, head, f), vs, vc);
            accumulate::<V, LIN, SQ>(&mut l[1], &mut q[1], v);
        }
    }
    if body < n {
        along.at(body, n - body);
        if let Some(f) = fill {
            let v = map::<V, SCALED, CENTER>(V::load_partial(x.add(body), n - body, f), vs, vc);
            accumulate::<V, LIN, SQ>(&mut l[2], &mut q[2], v);
        }
    }
    loop {
        let end = (start + BLOCK).min(body);
        let mut i = start;
        while i + CHAINS * lanes <= end {
            for c in 0..CHAINS {
                along.at(i + c * lanes, lanes);
                let v = map::<V, SCALED, CENTER>(V::load(x.add(i + c * lanes)), vs, vc);
                accumulate::<V, LIN, SQ>(&mut l[c], &mut q[c], v);
            }
            i += CHAINS * lanes;
        }
        while i < end {
            along.at(i, lanes);
            let v = map::<V, SCALED, CENTER>(V::load(x.add(i)), vs, vc);
            accumulate::<V, LIN, SQ>(&mut l[0], &mut q[0], v);
            i += lanes;
        }
        if LIN {
            lin += l[0].add(l[1]).add(l[2].add(l[3])).reduce_add().to_f64();
        }
        if SQ {
            sq += q[0].add(q[1]).add(q[2].add(q[3])).reduce_add().to_f64();
        }
        (l, q) = ([zero; CHAINS], [zero; CHAINS]);
        start = end;
        if start >= body {
            break;
        }
    }
    if fill.is_none() {
        for i in body..n {
            let v = map_one::<V::Elem, SCALED, CENTER>(*x.add(i), scale, neg_c).to_f64();
            lin += v;
            sq += v * v;
        }
    }
    (if LIN { lin } else { 0.0 }, if SQ { sq } else { 0.0 })
}

/// s = x + r at `i` for `count <= LANES` elements, stored; returns s
/// (zero in the lanes past `count`).
#[inline(always)]
unsafe fn add_lanes<V: Vector>(x: *const V::Elem, r: *const V::Elem, s: *mut V::Elem, i: usize, count: usize) -> V {
    let v = load_n::<V>(x.add(i), count).add(load_n::<V>(r.add(i), count));
    if count == V::LANES {
        v.store(s.add(i));
    } else {
        v.store_partial(s.add(i), count);
    }
    v
}

/// s = x + r, stored, and (sum s, sum s^2).
#[inline(always)]
unsafe fn add_store<V: Vector>(x: *const V::Elem, r: *const V::Elem, s: *mut V::Elem, n: usize) -> (f64, f64) {
    let lanes = V::LANES;
    let zero = V::splat(V::Elem::ZERO);
    let (mut lin, mut sq) = (0.0f64, 0.0f64);
    let (mut l, mut q) = ([zero; CHAINS], [zero; CHAINS]);
    // Zero-filled lanes of the partial head and tail add nothing.
    let head = head_len::<V>(s, n);
    if head > 0 {
        let v = add_lanes::<V>(x, r, s, 0, head);
        accumulate::<V, true, true>(&mut l[1], &mut q[1], v);
    }
    let mut start = head;
    while start < n {
        let end = (start + BLOCK).min(n);
        let mut i = start;
        while i + CHAINS * lanes <= end {
            for c in 0..CHAINS {
                let v = add_lanes::<V>(x, r, s, i + c * lanes, lanes);
                accumulate::<V, true, true>(&mut l[c], &mut q[c], v);
            }
            i += CHAINS * lanes;
        }
        while i < end {
            let count = (end - i).min(lanes);
            let v = add_lanes::<V>(x, r, s, i, count);
            accumulate::<V, true, true>(&mut l[0], &mut q[0], v);
            i += count;
        }
        lin += l[0].add(l[1]).add(l[2].add(l[3])).reduce_add().to_f64();
        sq += q[0].add(q[1]).add(q[2].add(q[3])).reduce_add().to_f64();
        (l, q) = ([zero; CHAINS], [zero; CHAINS]);
        start = end;
    }
    if head == n {
        lin += l[1].reduce_add().to_f64();
        sq += q[1].reduce_add().to_f64();
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

/// The write pass of one row, run alongside the sums of the next.
struct RowWriter<V: Vector, const SCALED: bool, const CENTER: bool, const W: bool, const B: bool> {
    x: *const V::Elem,
    y: *mut V::Elem,
    k: Coeffs<V>,
    affine: Affine<V::Elem>,
}

impl<V: Vector, const SCALED: bool, const CENTER: bool, const W: bool, const B: bool> Alongside<V> for RowWriter<V, SCALED, CENTER, W, B> {
    #[inline(always)]
    unsafe fn at(&self, i: usize, count: usize) {
        write_lanes::<V, SCALED, CENTER, W, B>(self.x, self.y, i, count, self.k, self.affine)
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
    let writer = RowWriter::<V, SCALED, CENTER, W, B> { x, y, k, affine };
    let mut i = head_len::<V>(y, n);
    if i > 0 {
        writer.at(0, i);
    }
    while i + V::LANES <= n {
        writer.at(i, V::LANES);
        i += V::LANES;
    }
    if i < n {
        writer.at(i, n - i);
    }
}

/// Writes row `x` into `y` while summing row `next` (its first pass):
/// the loads of the next row overlap the stores of this one.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn write_and_sum<V: Vector, const CENTER: bool, const W: bool, const B: bool, const LIN: bool, const SQ: bool>(
    x: *const V::Elem,
    y: *mut V::Elem,
    next: *const V::Elem,
    n: usize,
    k: Coeffs<V>,
    affine: Affine<V::Elem>,
) -> (f64, f64) {
    let writer = RowWriter::<V, false, CENTER, W, B> { x, y, k, affine };
    sums_along::<V, false, false, LIN, SQ, _>(next, n, V::Elem::ONE, V::Elem::ZERO, y, &writer)
}

#[inline(always)]
unsafe fn write_and_sum_affine<V: Vector, const CENTER: bool, const LIN: bool, const SQ: bool>(
    x: *const V::Elem,
    y: *mut V::Elem,
    next: *const V::Elem,
    n: usize,
    k: Coeffs<V>,
    affine: Affine<V::Elem>,
) -> (f64, f64) {
    match (!affine.weight.is_null(), !affine.bias.is_null()) {
        (false, false) => write_and_sum::<V, CENTER, false, false, LIN, SQ>(x, y, next, n, k, affine),
        (false, true) => write_and_sum::<V, CENTER, false, true, LIN, SQ>(x, y, next, n, k, affine),
        (true, false) => write_and_sum::<V, CENTER, true, false, LIN, SQ>(x, y, next, n, k, affine),
        (true, true) => write_and_sum::<V, CENTER, true, true, LIN, SQ>(x, y, next, n, k, affine),
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

impl<V: Vector> Coeffs<V> {
    #[inline(always)]
    unsafe fn new(k: &RowConstants) -> Self {
        Coeffs {
            scale: V::splat(V::Elem::from_f64(k.scale)),
            neg_c: V::splat(V::Elem::from_f64(-k.c_hi)),
            r: V::splat(V::Elem::from_f64(k.r)),
            neg_clo_r: V::splat(V::Elem::from_f64(-k.c_lo * k.r)),
        }
    }
}

/// Writes row `x` into `y` with the constants `k`, or NaN when None.
#[inline(always)]
unsafe fn write<V: Vector>(kind: Norm, x: *const V::Elem, y: *mut V::Elem, n: usize, k: Option<RowConstants>, affine: Affine<V::Elem>) {
    let Some(k) = k else {
        for i in 0..n {
            *y.add(i) = V::Elem::NAN;
        }
        return;
    };
    let coeffs = Coeffs::new(&k);
    match (k.scale != 1.0, kind == Norm::Layer) {
        (false, false) => write_affine::<V, false, false>(x, y, n, coeffs, affine),
        (false, true) => write_affine::<V, false, true>(x, y, n, coeffs, affine),
        (true, false) => write_affine::<V, true, false>(x, y, n, coeffs, affine),
        (true, true) => write_affine::<V, true, true>(x, y, n, coeffs, affine),
    }
}

/// Normalizes the row `x` (whose first-pass sums are `first`) into `y`.
#[inline(always)]
unsafe fn finish<V: Vector>(kind: Norm, x: *const V::Elem, y: *mut V::Elem, n: usize, eps: f64, affine: Affine<V::Elem>, first: (f64, f64)) {
    write::<V>(kind, x, y, n, row_constants::<V>(kind, x, n, eps, first), affine)
}

#[inline(always)]
pub unsafe fn norm<V: Vector>(kind: Norm, x: *const V::Elem, y: *mut V::Elem, n: usize, eps: f64, affine: Affine<V::Elem>) {
    if n == 0 {
        return;
    }
    let first = first_sums::<V, false>(kind, x, n, V::Elem::ONE);
    finish::<V>(kind, x, y, n, eps, affine, first)
}

/// Every row of `batch`. The write pass of row i runs in one loop with
/// the first pass of row i + 1 (when row i needs no rescaling), so loads
/// of the next row and stores of this one stream together as in a copy.
/// Row i + 1 is only read there, row i fully read before it is written:
/// `y` may equal `x` row for row.
#[inline(always)]
pub unsafe fn norm_rows<V: Vector>(kind: Norm, batch: RowBatch<V::Elem>, eps: f64, affine: Affine<V::Elem>) {
    let n = batch.n;
    if n == 0 || batch.rows == 0 {
        return;
    }
    let mut first = first_sums::<V, false>(kind, batch.x_row(0), n, V::Elem::ONE);
    for i in 0..batch.rows {
        let (x, y) = (batch.x_row(i), batch.y_row(i));
        let k = row_constants::<V>(kind, x, n, eps, first);
        match k {
            Some(k) if k.scale == 1.0 && i + 1 < batch.rows => {
                let (next, c) = (batch.x_row(i + 1), Coeffs::new(&k));
                first = match kind {
                    Norm::Rms => write_and_sum_affine::<V, false, false, true>(x, y, next, n, c, affine),
                    Norm::Layer => write_and_sum_affine::<V, true, true, false>(x, y, next, n, c, affine),
                    Norm::Crms => write_and_sum_affine::<V, false, true, true>(x, y, next, n, c, affine),
                };
            }
            _ => {
                write::<V>(kind, x, y, n, k, affine);
                if i + 1 < batch.rows {
                    first = first_sums::<V, false>(kind, batch.x_row(i + 1), n, V::Elem::ONE);
                }
            }
        }
    }
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
