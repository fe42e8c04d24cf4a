//! The norms written once over a SIMD register type `V`.
//!
//! Every function is `#[inline(always)]` and only meaningful when inlined
//! into the `#[target_feature]` trampoline of `dispatch::run`. Sums
//! run in four register chains per statistic (to hide the add / FMA
//! latency) over blocks of `BLOCK` elements and are folded into f64
//! totals. Main loops start at the first register-aligned element of the
//! input row (NumPy's large arrays are only 16-byte aligned, and loads
//! that straddle cache lines cost extra), so the rounding of the sums
//! depends on the input only, never on the outputs or the thread split.
//!
//! Each row is read once from memory and once more from L1 / L2:
//!
//! 1. the first pass sums d = x - K and d^2, with K = 0 (RMSNorm,
//!    CRMSNorm) or K = x[0] (LayerNorm: the shifted-data sums, accurate
//!    when the mean is within a few standard deviations of x[0]); the
//!    fused forms compute s = x + residual here, store it, and sum s - K;
//! 2. LayerNorm rows whose mean is far from x[0] take one more pass from
//!    cache with the corrected two-pass formula;
//! 3. the write pass.
//!
//! Rows of at most four registers ([`ShortRow`]: 64 float32 elements
//! with AVX-512, 32 with AVX2) are read once: loaded into registers,
//! summed there (one register per chain, so their sums do not depend on
//! where the row starts) and normalized from there. Rows that need
//! rescaling, and LayerNorm rows whose mean is far from x[0], take their
//! second passes from x, split at alignment as above.
//!
//! (Fusing the write of one row with the first pass of the next, so that
//! loads and stores stream together, was measured slower on AMD Zen 5 (family 26) for
//! 1024-element rows than these plain passes.)
//!
//! Where the time goes (AMD EPYC Zen 3, float32 RMSNorm, rows in L2, ns
//! per row, fastest of 3 rounds on a shared machine, by a scratch build
//! that skipped the write pass, the first pass, or both): rows of 64
//! 35 in all, of which ~25 is per-row fixed cost (the f64 fold, square
//! root and division, the row constants, the loop and the call); rows of
//! 384 82 (first pass ~30, write pass ~32); rows of 1024 177 (~80, ~90).

use super::{rescale_factor, safe_min, Affine, Norm, RowBatch, RowConstants, RowStats, BLOCK};
use crate::dispatch::{Isa, Tuning};
use crate::simd::{prefetch, Real, Storage, Vector};

/// Rows of at most this many bytes are pipelined in batches: the first
/// pass of row i + 1 is issued before the rest of row i, so the
/// out-of-order core overlaps the next row's loads with this row's
/// reductions, square root and division. Measured on AMD Zen 5 (family 26) (time / copy
/// time, float32): 64-element rows 2.2 -> 1.8 (RMSNorm), 3.2 -> 2.7
/// (LayerNorm); from 128 elements on RMSNorm got slower. Rows that are
/// also short ([`is_short`]) are pipelined as [`ShortRow`]s (with AVX-512
/// every float32 and float64 row of this size); this loop pipeline serves
/// the others (AVX2 float32 rows of 33 to 64 elements, AVX-512 16-bit
/// rows of 65 to 128, NEON rows above 16 float32 elements). Float32
/// LayerNorm rows of this size in calls of 16 rows to 4 MiB go in blocks
/// instead at AVX-512, and at AVX2 except on AMD Zen 4 ([`in_layer_blocks`]).
const PIPELINE_MAX_BYTES: usize = 256;

/// Register chains per statistic.
const CHAINS: usize = 4;

/// LayerNorm's shifted sums are used when n (mean - K)^2 <= this times
/// sum (x - K)^2, i.e. (mean - K)^2 <= 3 var: then the cancellation in
/// sum d^2 - (sum d)^2 / n costs at most a factor 4 on the rounding of the
/// sums (Chan, Golub & LeVeque 1983, the shifted-data algorithm).
const SHIFT_OK: f64 = 0.75;

/// Prefetches the cache lines of one unrolled step (`CHAINS` registers)
/// [`prefetch::AHEAD_BYTES`] after `p`, when `ahead` is on: the hardware
/// prefetchers stop at 4 KiB page boundaries and ramp up again on each new
/// page, so short rows otherwise wait on memory at every row start. (The
/// fused forms' first pass, with two input streams and one output,
/// measured faster without.)
#[inline(always)]
fn prefetch_ahead<V: Storage<M>, M>(ahead: prefetch::Ahead, p: *const M) {
    ahead.fetch(p, CHAINS * V::LANES * std::mem::size_of::<M>());
}

/// The value a pass works on: x * scale (`SCALED`), minus the centre
/// (`CENTER`; `neg_c` = -c), one rounding for both.
#[inline(always)]
fn map<V: Vector, const SCALED: bool, const CENTER: bool>(x: V, scale: V, neg_c: V) -> V {
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
/// (at most `n`).
#[inline(always)]
fn head_len<V: Storage<M>, M>(p: *const M, n: usize) -> usize {
    let size = std::mem::size_of::<M>();
    let bytes = V::LANES * size;
    (((bytes - p as usize % bytes) % bytes) / size).min(n)
}

/// The input that maps to 0 (so it adds nothing to the sums): 0, or the
/// centre itself; none for scaled and centred values (one rounding
/// x * s - c), whose ends are then summed one element at a time.
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
fn accumulate<V: Vector, const LIN: bool, const SQ: bool>(l: &mut V, q: &mut V, v: V) {
    if LIN {
        *l = l.add(v);
    }
    if SQ {
        *q = v.mul_add(v, *q);
    }
}

/// Folds the chains into the f64 totals and clears them.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn fold<V: Vector, const LIN: bool, const SQ: bool>(l: &mut [V; CHAINS], q: &mut [V; CHAINS], lin: &mut f64, sq: &mut f64) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let zero = V::splat(V::Elem::ZERO);
        if LIN {
            *lin += l[0].add(l[1]).add(l[2].add(l[3])).reduce_add().to_f64();
        }
        if SQ {
            *sq += q[0].add(q[1]).add(q[2].add(q[3])).reduce_add().to_f64();
        }
        (*l, *q) = ([zero; CHAINS], [zero; CHAINS]);
    }
}

/// A register's lane sum as a row total, as [`fold`] makes it: added to a
/// 0.0 total, so a sum of -0.0 becomes +0.0 (the short paths must give
/// fold's bits).
#[inline(always)]
fn total<E: Real>(lane_sum: E) -> f64 {
    0.0 + lane_sum.to_f64()
}

/// (sum v, sum v^2) over the row for v = map(x); `LIN` / `SQ` select which
/// sums are computed (the other is 0). The main loop starts after `head`
/// elements (the row's [`head_len`]).
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn sums<V: Storage<M>, M, const SCALED: bool, const CENTER: bool, const LIN: bool, const SQ: bool>(
    x: *const M,
    n: usize,
    head: usize,
    scale: V::Elem,
    neg_c: V::Elem,
) -> (f64, f64) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let lanes = V::LANES;
        let (vs, vc) = (V::splat(scale), V::splat(neg_c));
        let zero = V::splat(V::Elem::ZERO);
        let fill = neutral::<V::Elem, SCALED, CENTER>(neg_c);
        let head = if fill.is_some() { head } else { 0 };
        let body = head + (n - head) / lanes * lanes;
        let (mut lin, mut sq) = (0.0f64, 0.0f64);
        let (mut l, mut q) = ([zero; CHAINS], [zero; CHAINS]);
        match fill {
            Some(f) => {
                if head > 0 {
                    let v = map::<V, SCALED, CENTER>(V::load_partial_from(x, head, f), vs, vc);
                    accumulate::<V, LIN, SQ>(&mut l[1], &mut q[1], v);
                }
                if body < n {
                    let v = map::<V, SCALED, CENTER>(V::load_partial_from(x.add(body), n - body, f), vs, vc);
                    accumulate::<V, LIN, SQ>(&mut l[2], &mut q[2], v);
                }
            }
            None => {
                for i in body..n {
                    let v = map_one::<V::Elem, SCALED, CENTER>(V::read(x.add(i)), scale, neg_c).to_f64();
                    lin += v;
                    sq += v * v;
                }
            }
        }
        let mut start = head;
        let ahead = prefetch::Ahead::current();
        loop {
            let end = (start + BLOCK).min(body);
            let mut i = start;
            while i + CHAINS * lanes <= end {
                prefetch_ahead::<V, M>(ahead, x.wrapping_add(i));
                for c in 0..CHAINS {
                    let v = map::<V, SCALED, CENTER>(V::load_from(x.add(i + c * lanes)), vs, vc);
                    accumulate::<V, LIN, SQ>(&mut l[c], &mut q[c], v);
                }
                i += CHAINS * lanes;
            }
            while i < end {
                let v = map::<V, SCALED, CENTER>(V::load_from(x.add(i)), vs, vc);
                accumulate::<V, LIN, SQ>(&mut l[0], &mut q[0], v);
                i += lanes;
            }
            fold::<V, LIN, SQ>(&mut l, &mut q, &mut lin, &mut sq);
            start = end;
            if start >= body {
                break;
            }
        }
        (if LIN { lin } else { 0.0 }, if SQ { sq } else { 0.0 })
    }
}



/// s = x + r at `i` for `count` elements, stored; adds s - K and its
/// square to the chains (lanes past `count` hold K + 0, adding nothing).
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn add_lanes<V: Storage<M>, M>(x: *const M, r: *const M, s: *mut M, i: usize, count: usize, k: V::Elem, l: &mut V, q: &mut V) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let (xv, rv) = if count == V::LANES {
            (V::load_from(x.add(i)), V::load_from(r.add(i)))
        } else {
            (V::load_partial_from(x.add(i), count, k), V::load_partial_from(r.add(i), count, V::Elem::ZERO))
        };
        let v = xv.add(rv);
        v.store_n_to(s.add(i), count);
        // A 16-bit sum is normalized as stored, rounded; its sums are too.
        let v = if size_of::<M>() < size_of::<V::Elem>() { V::load_n_from(s.add(i), count, k) } else { v };
        accumulate::<V, true, true>(l, q, v.sub(V::splat(k)));
    }
}

/// s = x + r, stored, and (sum (s - K), sum (s - K)^2) with K = `k`; the
/// main loop starts after `head` elements (x's [`head_len`]).
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn add_store<V: Storage<M>, M>(x: *const M, r: *const M, s: *mut M, n: usize, head: usize, k: V::Elem) -> (f64, f64) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let lanes = V::LANES;
        let zero = V::splat(V::Elem::ZERO);
        let (mut lin, mut sq) = (0.0f64, 0.0f64);
        let (mut l, mut q) = ([zero; CHAINS], [zero; CHAINS]);
        if head > 0 {
            add_lanes::<V, M>(x, r, s, 0, head, k, &mut l[1], &mut q[1]);
        }
        let mut start = head;
        loop {
            let end = (start + BLOCK).min(n);
            let mut i = start;
            while i + CHAINS * lanes <= end {
                for c in 0..CHAINS {
                    add_lanes::<V, M>(x, r, s, i + c * lanes, lanes, k, &mut l[c], &mut q[c]);
                }
                i += CHAINS * lanes;
            }
            while i < end {
                let count = (end - i).min(lanes);
                add_lanes::<V, M>(x, r, s, i, count, k, &mut l[0], &mut q[0]);
                i += count;
            }
            fold::<V, true, true>(&mut l, &mut q, &mut lin, &mut sq);
            start = end;
            if start >= n {
                break;
            }
        }
        (lin, sq)
    }
}

/// max |x| over the row (a NaN may be dropped: callers catch NaN rows
/// through their sums, which NaN always poisons).
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub(crate) unsafe fn abs_max<V: Storage<M>, M>(x: *const M, n: usize) -> f64 {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let lanes = V::LANES;
        let zero = V::Elem::ZERO;
        let (mut m0, mut m1) = (V::splat(zero), V::splat(zero));
        let mut i = 0;
        while i + 2 * lanes <= n {
            m0 = m0.max(V::load_from(x.add(i)).abs());
            m1 = m1.max(V::load_from(x.add(i + lanes)).abs());
            i += 2 * lanes;
        }
        if i + lanes <= n {
            m0 = m0.max(V::load_from(x.add(i)).abs());
            i += lanes;
        }
        if i < n {
            m1 = m1.max(V::load_partial_from(x.add(i), n - i, zero).abs());
        }
        m0.max(m1).reduce_max().to_f64()
    }
}

/// The shift K of the first pass: x[0] (times `scale`) for LayerNorm, else 0.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn shift<V: Storage<M>, M, const SCALED: bool>(kind: Norm, x: *const M, scale: V::Elem) -> V::Elem {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        match kind {
            Norm::Layer => map_one::<V::Elem, SCALED, false>(V::read(x), scale, V::Elem::ZERO),
            _ => V::Elem::ZERO,
        }
    }
}

/// The first-pass sums of `kind` on x * scale: (sum d, sum d^2) for
/// d = x * scale - K (see [`shift`]).
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn first_sums<V: Storage<M>, M, const SCALED: bool>(kind: Norm, x: *const M, n: usize, head: usize, scale: V::Elem) -> (f64, f64) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let zero = V::Elem::ZERO;
        match kind {
            Norm::Rms => sums::<V, M, SCALED, false, false, true>(x, n, head, scale, zero),
            Norm::Crms => sums::<V, M, SCALED, false, true, true>(x, n, head, scale, zero),
            Norm::Layer => sums::<V, M, SCALED, true, true, true>(x, n, head, scale, -shift::<V, M, SCALED>(kind, x, scale)),
        }
    }
}

/// `v` clamped at 0 (rounding can take a sum of squares below it), NaN
/// kept: `f64::max` would turn the NaN sums of a NaN row into 0, and the
/// row into a finite one.
#[inline(always)]
fn non_negative(v: f64) -> f64 {
    if v < 0.0 { 0.0 } else { v }
}

/// The centre c_hi + c_lo of x times `scale` and the sum of squares q
/// about it (see the module docs of `norm`), from the first-pass sums
/// `(s1, s2)`; LayerNorm rows whose mean is far from the shift take one
/// more pass.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn centred<V: Storage<M>, M, const SCALED: bool>(kind: Norm, x: *const M, n: usize, head: usize, scale: f64, (s1, s2): (f64, f64)) -> (f64, f64, f64) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let s = V::Elem::from_f64(scale);
        let nf = n as f64;
        match kind {
            Norm::Rms => (0.0, 0.0, s2),
            Norm::Crms => (0.0, 0.0, s2 + s1 * s1),
            Norm::Layer => {
                let k = shift::<V, M, SCALED>(kind, x, s);
                // Times 1 / n, not divided by n: see `constants`.
                let m = s1 * (1.0 / nf);
                if s1 * m <= SHIFT_OK * s2 {
                    (k.to_f64(), m, non_negative(s2 - s1 * m))
                } else {
                    // Chan, Golub & LeVeque (1983), eq. 1.7: the corrected
                    // two-pass sum around c = the mean rounded to the type.
                    let c = V::Elem::from_f64(k.to_f64() + m);
                    let (sd, sd2) = sums::<V, M, SCALED, true, true, true>(x, n, head, s, -c);
                    (c.to_f64(), sd / nf, non_negative(sd2 - sd * sd / nf))
                }
            }
        }
    }
}

/// The row constants on x times `scale` (a power of two; 1 on the fast
/// path) from the first-pass sums `first`, and the sum of squares q
/// they rest on. None when q is not finite.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn constants<V: Storage<M>, M, const SCALED: bool>(
    kind: Norm,
    x: *const M,
    n: usize,
    head: usize,
    eps: f64,
    scale: f64,
    first: (f64, f64),
) -> Option<(RowConstants, f64)> {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let (c_hi, c_lo, q) = centred::<V, M, SCALED>(kind, x, n, head, scale, first);
        // The mean square as q times 1 / divisor, not q / divisor (and
        // `centred`'s mean likewise): the reciprocal depends on n alone,
        // so it is ready before the row's sums are, and the chain from
        // the row's sums to its write loses a division, leaving the
        // square root and 1 / sqrt. Exact where n is a power of two;
        // otherwise one more rounding in f64 (half an ulp of the mean
        // square at most). Issue 11, round 36, AMD Zen 4, AVX-512,
        // `benches/ab` under six call depths, both orders: LayerNorm
        // 65536x64 0.90-0.98 of the time, RMSNorm 65536x16 0.90-1.03,
        // float64 LayerNorm rows of 32 0.91-0.96; float32 outputs the
        // same bits on every case tried.
        q.is_finite().then(|| (RowConstants::new(scale, c_hi, c_lo, q * (1.0 / kind.divisor(n)), eps), q))
    }
}

/// The sums of one chunk of a split row (`norm::split`) of x times
/// `scale`: for LayerNorm the chunk's centre c_hi + c_lo and its sum of
/// squares about it, computed as for a whole row; for RMSNorm and
/// CRMSNorm (0, sum x, sum x^2).
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); `x` must be
/// valid for reading `n > 0` elements.
#[inline(always)]
pub(crate) unsafe fn chunk_sums<V: Storage<M>, M>(kind: Norm, x: *const M, n: usize, scale: f64) -> (f64, f64, f64) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let head = head_len::<V, M>(x, n);
        let s = V::Elem::from_f64(scale);
        if scale == 1.0 {
            let first = first_sums::<V, M, false>(kind, x, n, head, s);
            if kind == Norm::Layer { centred::<V, M, false>(kind, x, n, head, scale, first) } else { (0.0, first.0, first.1) }
        } else {
            let first = first_sums::<V, M, true>(kind, x, n, head, s);
            if kind == Norm::Layer { centred::<V, M, true>(kind, x, n, head, scale, first) } else { (0.0, first.0, first.1) }
        }
    }
}

/// The constants of a row whose first pass gave `first`: the fast path
/// when its sum of squares is safe, else recomputed on the rescaled row.
/// None for a row holding NaN or +-inf.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn row_constants<V: Storage<M>, M>(kind: Norm, x: *const M, n: usize, head: usize, eps: f64, first: (f64, f64)) -> Option<RowConstants> {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        if let Some((k, q)) = constants::<V, M, false>(kind, x, n, head, eps, 1.0, first) {
            if q >= safe_min::<V::Elem>() {
                return Some(k);
            }
        }
        let amax = abs_max::<V, M>(x, n);
        if !amax.is_finite() {
            return None;
        }
        let scale = if amax == 0.0 { 1.0 } else { rescale_factor::<V::Elem>(amax) };
        let first = first_sums::<V, M, true>(kind, x, n, head, V::Elem::from_f64(scale));
        constants::<V, M, true>(kind, x, n, head, eps, scale, first).map(|(k, _)| k)
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

impl<V: Vector> Coeffs<V> {
    /// # Safety
    /// The CPU must have the instruction set of `V` (vector code); pointer
    /// arguments must be valid for the elements read and written (`n` per
    /// row), with the aliasing the module documents.
    #[inline(always)]
    unsafe fn new(k: &RowConstants) -> Self {
        // SAFETY: this function's contract: the CPU has the instruction set of V,
        // and every access below stays inside the elements the caller vouched for.
        unsafe {
            // r beyond the type's range only occurs for rescaled rows that are
            // constant (every x - c is 0); the largest finite r keeps their
            // 0 * r at 0. An infinite r (eps = 0) stays: 0 / 0 is NaN.
            let max = if V::Elem::MANTISSA_DIGITS == 24 { f32::MAX as f64 } else { f64::MAX };
            let r = if k.r.is_finite() { k.r.min(max) } else { k.r };
            Coeffs {
                scale: V::splat(V::Elem::from_f64(k.scale)),
                neg_c: V::splat(V::Elem::from_f64(-k.c_hi)),
                r: V::splat(V::Elem::from_f64(r)),
                neg_clo_r: V::splat(V::Elem::from_f64(-k.c_lo * r)),
            }
        }
    }
}

/// map(xv) * r (- c_lo r) (* w + b) for the `count` elements at `i`
/// whose inputs are the lanes of `xv`.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn normalized<V: Storage<M>, M, const SCALED: bool, const CENTER: bool, const W: bool, const B: bool>(
    xv: V,
    i: usize,
    count: usize,
    k: Coeffs<V>,
    affine: Affine<V::Elem>,
) -> V {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let d = map::<V, SCALED, CENTER>(xv, k.scale, k.neg_c);
        let z = if CENTER { d.mul_add(k.r, k.neg_clo_r) } else { d.mul(k.r) };
        if W && B {
            z.mul_add(V::load_n(affine.weight.add(i), count, V::Elem::ZERO), V::load_n(affine.bias.add(i), count, V::Elem::ZERO))
        } else if W {
            z.mul(V::load_n(affine.weight.add(i), count, V::Elem::ZERO))
        } else if B {
            z.add(V::load_n(affine.bias.add(i), count, V::Elem::ZERO))
        } else {
            z
        }
    }
}

/// The write pass over one row. The aligned body runs whole registers;
/// rows of at least one register write their unaligned ends as whole
/// registers too, at 0 and n - LANES, overlapping the body with the same
/// values (each y is a function of its own x only). Their inputs are
/// loaded before anything is stored, as y may be x. This replaces two
/// masked stores (`vmaskmovps`, microcoded on AMD Zen) per row of a
/// NumPy array (16-byte aligned): measured on AMD EPYC Zen 3, float32
/// 65536 x 64, time / copy time, LayerNorm 2.05 -> 1.59, RMSNorm
/// 1.85 -> 1.60 (medians of 5 interleaved rounds).
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn write_row<V: Storage<M>, M, const SCALED: bool, const CENTER: bool, const W: bool, const B: bool>(
    x: *const M,
    y: *mut M,
    n: usize,
    head: usize,
    k: Coeffs<V>,
    affine: Affine<V::Elem>,
) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for
    // (the end registers when n >= LANES: elements [0, LANES) and [n - LANES, n)).
    unsafe {
        let lanes = V::LANES;
        if n < lanes {
            let z = normalized::<V, M, SCALED, CENTER, W, B>(V::load_n_from(x, n, V::Elem::ZERO), 0, n, k, affine);
            return z.store_n_to(y, n);
        }
        let (first, last) = (V::load_from(x), V::load_from(x.add(n - lanes)));
        let mut i = head;
        let ahead = prefetch::Ahead::current();
        while i + lanes <= n {
            // The output line [`prefetch::AHEAD_BYTES`] ahead, once per
            // 64-byte line (x's lines were fetched by the first pass).
            // Float32, time / copy, medians of 3 runs (Emerald Rapids):
            // AVX-512 LayerNorm rows of 1024 1.31 -> 1.02, RMSNorm 1.05 ->
            // 1.03, both 1.06-1.07 -> 1.04 on rows of 384; AVX2 unchanged
            // (LayerNorm 1.14 -> 1.14).
            if i % (64 / size_of::<M>()) < lanes {
                ahead.fetch(y.add(i), 64);
            }
            normalized::<V, M, SCALED, CENTER, W, B>(V::load_from(x.add(i)), i, lanes, k, affine).store_to(y.add(i));
            i += lanes;
        }
        if head > 0 {
            normalized::<V, M, SCALED, CENTER, W, B>(first, 0, lanes, k, affine).store_to(y);
        }
        if i < n {
            normalized::<V, M, SCALED, CENTER, W, B>(last, n - lanes, lanes, k, affine).store_to(y.add(n - lanes));
        }
    }
}

/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn write_affine<V: Storage<M>, M, const SCALED: bool, const CENTER: bool>(
    x: *const M,
    y: *mut M,
    n: usize,
    head: usize,
    k: Coeffs<V>,
    affine: Affine<V::Elem>,
) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        match (!affine.weight.is_null(), !affine.bias.is_null()) {
            (false, false) => write_row::<V, M, SCALED, CENTER, false, false>(x, y, n, head, k, affine),
            (false, true) => write_row::<V, M, SCALED, CENTER, false, true>(x, y, n, head, k, affine),
            (true, false) => write_row::<V, M, SCALED, CENTER, true, false>(x, y, n, head, k, affine),
            (true, true) => write_row::<V, M, SCALED, CENTER, true, true>(x, y, n, head, k, affine),
        }
    }
}

/// Normalizes the row `x` (whose first-pass sums are `first`) into `y`
/// and writes its `stats`; from `short`'s registers when the row was
/// loaded as a [`ShortRow`] and needs no rescaling.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn finish<V: Storage<M>, M>(
    kind: Norm,
    x: *const M,
    y: *mut M,
    n: usize,
    head: usize,
    eps: f64,
    affine: Affine<V::Elem>,
    stats: RowStats<V::Elem>,
    first: (f64, f64),
    short: Option<&ShortRow<V>>,
) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe { write_out::<V, M>(kind, x, y, n, affine, stats, row_constants::<V, M>(kind, x, n, head, eps, first), short) }
}

/// Writes the row `x` normalized with the constants `k` into `y` (all NaN
/// for None: a row holding NaN or +-inf) and its `stats`; from `short`'s
/// registers when the row was loaded as a [`ShortRow`] and needs no
/// rescaling.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn write_out<V: Storage<M>, M>(
    kind: Norm,
    x: *const M,
    y: *mut M,
    n: usize,
    affine: Affine<V::Elem>,
    stats: RowStats<V::Elem>,
    k: Option<RowConstants>,
    short: Option<&ShortRow<V>>,
) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        stats.write(k.as_ref());
        match k {
            Some(k) => match short {
                Some(row) if k.scale == 1.0 => row.write(kind, y, &k, affine),
                // A rescaled row (tiny or huge values) is written from x.
                _ => write_normalized::<V, M>(kind, x, y, n, &k, affine),
            },
            None => {
                for i in 0..n {
                    V::write(y.add(i), V::Elem::NAN);
                }
            }
        }
    }
}

/// The write pass: y = ((x * scale - c_hi) - c_lo) * r (* w + b) with the
/// row constants `k`.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub(crate) unsafe fn write_normalized<V: Storage<M>, M>(kind: Norm, x: *const M, y: *mut M, n: usize, k: &RowConstants, affine: Affine<V::Elem>) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let head = head_len::<V, M>(x, n);
        let coeffs = Coeffs::new(k);
        match (k.scale != 1.0, kind == Norm::Layer) {
            (false, false) => write_affine::<V, M, false, false>(x, y, n, head, coeffs, affine),
            (false, true) => write_affine::<V, M, false, true>(x, y, n, head, coeffs, affine),
            (true, false) => write_affine::<V, M, true, false>(x, y, n, head, coeffs, affine),
            (true, true) => write_affine::<V, M, true, true>(x, y, n, head, coeffs, affine),
        }
    }
}

/// Whether a row of `n` elements fits in [`CHAINS`] registers: such a row
/// is loaded into registers once ([`ShortRow`]), summed there and
/// normalized from there. The first pass's loops, its alignment split and
/// the write pass's second read of x are per-row costs that rows of a few
/// registers do not amortize. Measured (`benches/ab`, both builds in one
/// process, medians of 21 rounds, time / the loop path's time, float32,
/// Emerald Rapids, two runs each): AVX-512 rows of 64 (65536 rows)
/// RMSNorm 0.86, LayerNorm 0.82; rows of 64 in L2 (2048 rows) 0.76-0.80;
/// rows of 32 0.76-0.88, of 48 0.79-0.82 (one run); AVX2 rows of 16 and 32
/// 0.82-0.86 (one run). Eight registers instead of four measured, against
/// the loops: AVX-512 rows of 96 / 128 LayerNorm 0.84 / 0.91 but RMSNorm
/// 0.99 / 1.02; AVX2 rows of 64 RMSNorm 0.89-0.96, LayerNorm 0.96-1.01.
/// Not taken.
#[inline(always)]
fn is_short<V: Vector>(n: usize) -> bool {
    n <= CHAINS * V::LANES
}

/// A row of at most [`CHAINS`] registers ([`is_short`]), in registers.
#[derive(Clone, Copy)]
struct ShortRow<V: Vector> {
    /// Register c holds x[c LANES..]; lanes past n hold the shift K, so
    /// that they add nothing to the sums of x - K.
    regs: [V; CHAINS],
    /// x[n - LANES..n] when n > LANES is not a whole number of registers:
    /// the write pass stores its last, partial register as this whole one,
    /// overlapping the register before it with the same values (as
    /// [`write_row`] does).
    last: V,
    /// The row's length.
    n: usize,
    /// The sums (sum (x - K), sum (x - K)^2) of [`first_sums`].
    first: (f64, f64),
}

impl<V: Vector> ShortRow<V> {
    /// Loads the row `x` of `n > 0` elements and computes its first-pass
    /// sums, one register per chain. They fold as [`first_sums`] folds its
    /// chains, so a register-aligned row of one or four whole registers
    /// gets the same bits either way (the loop path adds the registers of
    /// a shorter row into one chain); any other row's sums differ from the
    /// loop path's in rounding, and do not depend on where the row starts.
    ///
    /// # Safety
    /// The CPU must have the instruction set of `V`; `x` must be valid for
    /// reading `n` elements, `0 < n <= CHAINS * LANES`.
    #[inline(always)]
    unsafe fn load<M>(kind: Norm, x: *const M, n: usize) -> Self
    where
        V: Storage<M>,
    {
        // SAFETY: this function's contract.
        unsafe {
            prefetch_ahead::<V, M>(prefetch::Ahead::current(), x);
            let k = shift::<V, M, false>(kind, x, V::Elem::ONE);
            let mut row = Self::load_only(x, n, k);
            row.first = match kind {
                Norm::Rms => Self::sums::<false, false>(&row.regs, k),
                Norm::Crms => Self::sums::<true, false>(&row.regs, k),
                Norm::Layer => Self::sums::<true, true>(&row.regs, k),
            };
            row
        }
    }

    /// The row's registers, lanes past n holding the row's shift `k`
    /// ([`shift`]), without its sums (`first` is (0, 0)).
    ///
    /// # Safety
    /// As for [`ShortRow::load`].
    #[inline(always)]
    unsafe fn load_only<M>(x: *const M, n: usize, k: V::Elem) -> Self
    where
        V: Storage<M>,
    {
        // SAFETY: this function's contract: the CPU has the instruction set of V,
        // and every load below stays inside x[0..n).
        unsafe {
            let lanes = V::LANES;
            let regs = V::load_registers::<CHAINS>(x, n, k);
            let last = if n > lanes && !n.is_multiple_of(lanes) { V::load_from(x.add(n - lanes)) } else { regs[0] };
            ShortRow { regs, last, n, first: (0.0, 0.0) }
        }
    }

    /// (sum d, sum d^2) (`LIN`; else only sum d^2) for d = x - k
    /// (`CENTER`; else d = x), one register per chain.
    ///
    /// # Safety
    /// The CPU must have the instruction set of `V`.
    #[inline(always)]
    unsafe fn sums<const LIN: bool, const CENTER: bool>(regs: &[V; CHAINS], k: V::Elem) -> (f64, f64) {
        // SAFETY: this function's contract: the CPU has the instruction set of V.
        unsafe {
            let (l, q) = Self::chains::<LIN, CENTER>(regs, k);
            (if LIN { total(l.reduce_add()) } else { 0.0 }, total(q.reduce_add()))
        }
    }

    /// [`ShortRow::sums`] before the lanes are added: the chains folded
    /// into one register each, (sum d, sum d^2) lane by lane, as [`fold`]
    /// folds them.
    ///
    /// # Safety
    /// The CPU must have the instruction set of `V`.
    #[inline(always)]
    unsafe fn chains<const LIN: bool, const CENTER: bool>(regs: &[V; CHAINS], k: V::Elem) -> (V, V) {
        // SAFETY: this function's contract: the CPU has the instruction set of V.
        unsafe {
            let (zero, neg_k) = (V::splat(V::Elem::ZERO), V::splat(-k));
            let (mut l, mut q) = ([zero; CHAINS], [zero; CHAINS]);
            for c in 0..CHAINS {
                accumulate::<V, LIN, true>(&mut l[c], &mut q[c], map::<V, false, CENTER>(regs[c], zero, neg_k));
            }
            (l[0].add(l[1]).add(l[2].add(l[3])), q[0].add(q[1]).add(q[2].add(q[3])))
        }
    }

    /// The write pass from the registers into `y`, for a row that needed no
    /// rescaling (`k.scale` 1): y = ((x - c_hi) - c_lo) r (* w + b).
    ///
    /// # Safety
    /// The CPU must have the instruction set of `V`; `y` must be valid for
    /// writing the row's n elements (it may be the row's x: every load is
    /// done), and `affine`'s weight and bias, where not null, for reading n.
    #[inline(always)]
    unsafe fn write<M>(&self, kind: Norm, y: *mut M, k: &RowConstants, affine: Affine<V::Elem>)
    where
        V: Storage<M>,
    {
        // SAFETY: this function's contract.
        unsafe {
            match kind {
                Norm::Layer => self.write_affine::<M, true>(y, Coeffs::new(k), affine),
                _ => self.write_affine::<M, false>(y, Coeffs::new(k), affine),
            }
        }
    }

    /// # Safety
    /// As for [`ShortRow::write`].
    #[inline(always)]
    unsafe fn write_affine<M, const CENTER: bool>(&self, y: *mut M, k: Coeffs<V>, affine: Affine<V::Elem>)
    where
        V: Storage<M>,
    {
        // SAFETY: this function's contract.
        unsafe {
            match (!affine.weight.is_null(), !affine.bias.is_null()) {
                (false, false) => self.write_form::<M, CENTER, false, false>(y, k, affine),
                (false, true) => self.write_form::<M, CENTER, false, true>(y, k, affine),
                (true, false) => self.write_form::<M, CENTER, true, false>(y, k, affine),
                (true, true) => self.write_form::<M, CENTER, true, true>(y, k, affine),
            }
        }
    }

    /// # Safety
    /// As for [`ShortRow::write`].
    #[inline(always)]
    unsafe fn write_form<M, const CENTER: bool, const W: bool, const B: bool>(&self, y: *mut M, k: Coeffs<V>, affine: Affine<V::Elem>)
    where
        V: Storage<M>,
    {
        // SAFETY: this function's contract: the CPU has the instruction set of V,
        // and every store below stays inside y[0..n) (weight and bias are
        // read at the same indices).
        unsafe {
            let (lanes, n) = (V::LANES, self.n);
            prefetch::Ahead::current().fetch(y, CHAINS * lanes * size_of::<M>());
            if n < lanes {
                let z = normalized::<V, M, false, CENTER, W, B>(self.regs[0], 0, n, k, affine);
                return z.store_n_to(y, n);
            }
            for (c, &r) in self.regs.iter().enumerate() {
                if (c + 1) * lanes <= n {
                    normalized::<V, M, false, CENTER, W, B>(r, c * lanes, lanes, k, affine).store_to(y.add(c * lanes));
                }
            }
            if !n.is_multiple_of(lanes) {
                normalized::<V, M, false, CENTER, W, B>(self.last, n - lanes, lanes, k, affine).store_to(y.add(n - lanes));
            }
        }
    }

    /// [`finish`] for this row, loaded from `x`: written from the
    /// registers unless it needs rescaling.
    ///
    /// # Safety
    /// As for [`finish`], with the row's n.
    #[inline(always)]
    unsafe fn finish<M>(&self, kind: Norm, x: *const M, y: *mut M, eps: f64, affine: Affine<V::Elem>, stats: RowStats<V::Elem>)
    where
        V: Storage<M>,
    {
        // SAFETY: this function's contract.
        unsafe { finish::<V, M>(kind, x, y, self.n, head_len::<V, M>(x, self.n), eps, affine, stats, self.first, Some(self)) }
    }
}

/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub unsafe fn norm<V: Storage<M>, M>(kind: Norm, x: *const M, y: *mut M, n: usize, eps: f64, affine: Affine<V::Elem>, stats: RowStats<V::Elem>) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        if n == 0 {
            return stats.write(None);
        }
        if is_short::<V>(n) {
            return ShortRow::<V>::load(kind, x, n).finish(kind, x, y, eps, affine, stats);
        }
        let head = head_len::<V, M>(x, n);
        let first = first_sums::<V, M, false>(kind, x, n, head, V::Elem::ONE);
        finish::<V, M>(kind, x, y, n, head, eps, affine, stats, first, None)
    }
}

/// Every row of `batch`; short rows are pipelined (see
/// [`PIPELINE_MAX_BYTES`]). Row i is fully read before it is written, and
/// row i + 1 only read before that: `y` may equal `x` row for row. The
/// results are those of [`norm`] on each row. (LayerNorm batches that
/// [`in_layer_blocks`] takes go to [`layer_blocks`] instead.)
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub unsafe fn norm_rows<V: Storage<M>, M>(kind: Norm, batch: RowBatch<M>, eps: f64, affine: Affine<V::Elem>, stats: RowStats<V::Elem>) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let n = batch.n;
        if n == 0 || n * size_of::<M>() > PIPELINE_MAX_BYTES {
            for i in 0..batch.rows {
                norm::<V, M>(kind, batch.x_row(i), batch.y_row(i), n, eps, affine, stats.row(i));
            }
            return;
        }
        if batch.rows == 0 {
            return;
        }
        if is_short::<V>(n) {
            // Two rows in flight, in turns, rather than `row = next` in a
            // loop: with that copy the compiler gave both rows the same
            // registers and kept one on the stack (at AVX-512 five 64-byte
            // stores and reloads per row, two to five of them split
            // across cache lines as the caller's stack depth decided).
            // In turns, AMD Zen 4, float32, `benches/ab/stack_depths.py`,
            // four runs, the same bits: RMSNorm rows of 16 and 64
            // 0.73-0.82 of the time, the spread over six call depths
            // 1.00-1.06 (was 1.12-1.44). The turn past the last row loads
            // the last row again, before it is written, and drops it.
            let last = batch.rows - 1;
            let (mut even, mut i) = (ShortRow::<V>::load(kind, batch.x_row(0), n), 0);
            loop {
                let odd = ShortRow::<V>::load(kind, batch.x_row((i + 1).min(last)), n);
                even.finish(kind, batch.x_row(i), batch.y_row(i), eps, affine, stats.row(i));
                if i == last {
                    return;
                }
                even = ShortRow::<V>::load(kind, batch.x_row((i + 2).min(last)), n);
                odd.finish(kind, batch.x_row(i + 1), batch.y_row(i + 1), eps, affine, stats.row(i + 1));
                if i + 1 == last {
                    return;
                }
                i += 2;
            }
        }
        let one = V::Elem::ONE;
        let mut head = head_len::<V, M>(batch.x_row(0), n);
        let mut first = first_sums::<V, M, false>(kind, batch.x_row(0), n, head, one);
        for i in 0..batch.rows {
            let (x, y) = (batch.x_row(i), batch.y_row(i));
            let (next_head, next_first) = if i + 1 < batch.rows {
                let next = batch.x_row(i + 1);
                let h = head_len::<V, M>(next, n);
                (h, first_sums::<V, M, false>(kind, next, n, h, one))
            } else {
                (0, (0.0, 0.0))
            };
            finish::<V, M>(kind, x, y, n, head, eps, affine, stats.row(i), first, None);
            (head, first) = (next_head, next_first);
        }
    }
}

/// Rows per block of short LayerNorm rows ([`layer_short_blocks`]): the
/// lanes of one f32 register of AVX-512 (at AVX2 the sixteen lane sums are
/// taken one register at a time), two blocks of [`BLOCK_ROWS`] for the
/// constants.
const SHORT_BLOCK_ROWS: usize = 16;

/// The largest call of short float32 rows [`layer_short_blocks`] takes,
/// in bytes of x. Against rows one at a time (`benches/ab`, AMD Zen 4,
/// AVX-512, medians of 31 rounds, each build as A and as B, the same
/// bits): rows of 64, 2048 / 8192 / 16384 rows (512 KiB / 2 / 4 MiB)
/// 0.79-0.86 / 0.79-0.86 / 0.85-0.99; 8192 rows of 32 0.82-0.84, 16384
/// rows of 16 0.81-0.87. From memory an earlier build did not reliably
/// gain (8 MiB 1.28 in one run, 16 MiB 0.85 and 1.06; RMSNorm in the same
/// blocks 1.09 and 1.52-1.59, which is why it is not in them); why, we did
/// not find (no counters): reading the next block's rows between this
/// block's writes lost more (16 MiB 1.52).
const SHORT_BLOCK_MAX_BATCH_BYTES: usize = 4 << 20;

/// A short LayerNorm row's chains ([`ShortRow::chains`]) and its shift
/// K = x[0].
///
/// # Safety
/// As for [`ShortRow::load`].
#[inline(always)]
unsafe fn layer_chains<V: Storage<M>, M>(x: *const M, n: usize) -> (V, V, V::Elem) {
    // SAFETY: this function's contract.
    unsafe {
        prefetch_ahead::<V, M>(prefetch::Ahead::current(), x);
        let k = shift::<V, M, false>(Norm::Layer, x, V::Elem::ONE);
        let (l, q) = ShortRow::<V>::chains::<true, true>(&V::load_registers::<CHAINS>(x, n, k), k);
        (l, q, k)
    }
}

/// LayerNorm of short float32 rows ([`is_short`]: at most 64 elements at
/// AVX-512, 32 at AVX2) in blocks of [`SHORT_BLOCK_ROWS`]: the chains of every row
/// of the block ([`ShortRow::chains`]), their lane sums together
/// ([`Vector::reduce_add16`], the same bits as one row at a time), the
/// constants of each half of the block together
/// ([`LayerBlock::constants`]), then each row loaded again (from L1) and
/// written. Rows past the last whole block go one at a time, pipelined
/// ([`norm_rows`]). No row is read after it is written: `y` may equal `x`
/// row for row. The results are those of [`norm`] on each row.
///
/// # Safety
/// As for [`layer_blocks`], with rows that are [`is_short`] and not empty.
#[inline(always)]
unsafe fn layer_short_blocks<V: Storage<M>, D: Vector<Elem = f64>, M>(batch: RowBatch<M>, eps: f64, affine: Affine<V::Elem>, stats: RowStats<V::Elem>) {
    // SAFETY: this function's contract: the CPU has the instruction set of V
    // and D, and every access below stays inside the rows of the batch.
    unsafe {
        const { assert!(SHORT_BLOCK_ROWS.is_multiple_of(BLOCK_ROWS)) };
        let (kind, n) = (Norm::Layer, batch.n);
        let whole = batch.rows / SHORT_BLOCK_ROWS * SHORT_BLOCK_ROWS;
        for start in (0..whole).step_by(SHORT_BLOCK_ROWS) {
            let zero = V::splat(V::Elem::ZERO);
            let (mut l, mut q) = ([zero; SHORT_BLOCK_ROWS], [zero; SHORT_BLOCK_ROWS]);
            let mut shift = [V::Elem::ZERO; SHORT_BLOCK_ROWS];
            for j in 0..SHORT_BLOCK_ROWS {
                (l[j], q[j], shift[j]) = layer_chains::<V, M>(batch.x_row(start + j), n);
            }
            let (s1, s2) = (V::reduce_add16(&l), V::reduce_add16(&q));
            for h in 0..SHORT_BLOCK_ROWS / BLOCK_ROWS {
                let mut block = LayerBlock { s1: [0.0; BLOCK_ROWS], s2: [0.0; BLOCK_ROWS], shift: [0.0; BLOCK_ROWS] };
                for j in 0..BLOCK_ROWS {
                    let r = h * BLOCK_ROWS + j;
                    (block.s1[j], block.s2[j], block.shift[j]) = (total(s1[r]), total(s2[r]), shift[r].to_f64());
                }
                let fast = block.constants::<D, V::Elem>(n, eps);
                for (j, &fast) in fast.iter().enumerate() {
                    let i = start + h * BLOCK_ROWS + j;
                    let (x, y) = (batch.x_row(i), batch.y_row(i));
                    let mut row = ShortRow::<V>::load_only(x, n, shift[h * BLOCK_ROWS + j]);
                    match fast {
                        Some(k) => {
                            stats.row(i).write(Some(&k));
                            row.write(kind, y, &k, affine);
                        }
                        None => {
                            row.first = (block.s1[j], block.s2[j]);
                            row.finish(kind, x, y, eps, affine, stats.row(i));
                        }
                    }
                }
            }
        }
        if whole < batch.rows {
            let rest = RowBatch { x: batch.x_row(whole), y: batch.y_row(whole), rows: batch.rows - whole, ..batch };
            norm_rows::<V, M>(kind, rest, eps, affine, stats.row(whole));
        }
    }
}

/// LayerNorm rows of more than [`PIPELINE_MAX_BYTES`] and at most this
/// many bytes go in blocks of [`BLOCK_ROWS`] ([`in_layer_blocks`]). One row
/// at a time, the row constants (in f64 a square root and three divisions,
/// one since issue 11's round 36 (see [`constants`]); and the checks
/// around them) are a large share of such rows: a scratch build without
/// them took 0.72-0.82 of the time of LayerNorm rows of 384 float32
/// elements (AMD Zen 4, `benches/ab`). Blocks against rows one at
/// a time, the same bits (AVX-512, medians of 31 rounds): float32 rows of
/// 128 / 384 in cache (2048 / 1024 rows) 0.78 / 0.76; from memory (10 to
/// 16 MiB) rows of 128 0.78, of 256 0.91, of 320 0.89, of 384 0.95;
/// float64 rows of 96 from memory 0.81, of 192 in cache 0.785 and from
/// memory 1.05 (through the binding, 21 rounds; unchanged RMSNorm there
/// measured 0.88-1.03). RMSNorm lost from memory in blocks (1.08-1.17, 41
/// rounds: its constants cost less), and rows of at most four registers,
/// written from registers ([`ShortRow`]), did not gain (0.94-1.06); both
/// stay as they were. Rows of 1792 and 2048 bytes lost from memory
/// (1.25-1.30, 21 rounds, an earlier version). These are round 15's
/// numbers; round 16 measured the blocks slower from memory on rows of 1
/// to 1.5 KiB ([`LAYER_BLOCK_MAX_BATCH_BYTES`]).
const LAYER_BLOCK_MAX_BYTES: usize = 1536;

/// Whether the LayerNorm rows of a call of `rows` rows of `n` elements of
/// `M` at level `isa` on a CPU of `tuning` go to [`layer_blocks`] rather
/// than [`norm_rows`] (`rows` is the whole call's, also when threads take
/// parts of it: `norm::norm_rows_part_raw`):
///
/// - at `avx512`, float32 and float64 rows of 257 bytes to 1.5 KiB, rows
///   over 512 bytes only in calls of up to 8 MiB
///   ([`LAYER_BLOCK_MAX_BATCH_BYTES`]), and float32 rows of at most 64
///   elements ([`layer_short_blocks`] for those of at most four registers)
///   in calls of at least one block and up to 4 MiB
///   ([`SHORT_BLOCK_MAX_BATCH_BYTES`]). Measured on AMD Zen 4 (see the
///   constants).
/// - at `avx2`, the same rows and calls, float32 only, except on
///   [`Tuning::AmdZen4`]. On AMD Zen 3 (issue 11, round 28: `benches/ab`,
///   medians of 21 rounds, each build as A and as B, the same bits) the
///   blocks took, of the time of rows one at a time, on calls of 1 to 8
///   MiB: rows of 16 (16384 and 65536 rows) 0.79-0.95, of 32 (8192) 0.89-0.96,
///   of 64 (4096 and 16384) 0.85-0.86, of 96 (4096) 0.66, of 128 (2048 to
///   16384) 0.70-0.83, of 256 (2048) 0.83 / 0.97 and of 384 (1024 and 2048)
///   0.81-0.82 / 1.00-1.03 in the two orders. On 16 MiB, from memory (a
///   build without the limits on the call's size), rows of 32 took
///   0.97-0.99, but rows of 64 1.10 / 0.97, of 128 1.07 / 0.89, of 256 1.26
///   / 1.14 and of 384 (12 MiB) 1.14 / 0.99: past the limits set for
///   AVX-512 the blocks lost in at least one order, so they are kept (rows
///   of 128, 512 bytes, take the blocks in calls of any size, as at
///   AVX-512). On Zen 4
///   at `avx2` they measured 1.14-1.45 (round 17, a build with the blocks
///   inside `norm_rows`, in cache too; not measured since), and float64
///   rows at `avx2` were not measured.
///
/// Elsewhere the blocks did not pay, or were not measured (time / rows
/// one at a time, same bits): bfloat16 rows of 768 elements 1.13 from
/// memory and 1.06 in cache, of 384 1.01, float16 rows of 512 1.00 (AVX-512,
/// Zen 4, through the binding, 21 rounds). NEON has not been measured. The
/// blocks are a kernel of their own (`norm::LayerBlocksKernel`), compiled
/// apart from the other norms: one build with them inside `norm_rows`'
/// function made RMSNorm rows of 256 and 384 float32 elements from memory
/// 1.09-1.34 times slower against `main` (two runs of 31 rounds), though
/// RMSNorm ran the same code, and LayerNorm gained less; an earlier build
/// inside it did not (which difference in code generation does it was not
/// found).
pub fn in_layer_blocks<M>(isa: Isa, tuning: Tuning, n: usize, rows: usize) -> bool {
    // The short rows here are those of at most four AVX-512 float32
    // registers; `layer_blocks` tells apart the rows of at most four
    // registers of the level (`is_short`), so at avx2 float32 rows of 33 to
    // 64 elements take the blocks of eight.
    const { assert!(PIPELINE_MAX_BYTES == CHAINS * SHORT_BLOCK_ROWS * size_of::<f32>()) };
    let bytes = n * size_of::<M>();
    let short = size_of::<M>() == size_of::<f32>()
        && n > 0
        && bytes <= PIPELINE_MAX_BYTES
        && rows >= SHORT_BLOCK_ROWS
        && rows.saturating_mul(bytes) <= SHORT_BLOCK_MAX_BATCH_BYTES;
    let long = bytes > PIPELINE_MAX_BYTES
        && bytes <= LAYER_BLOCK_MAX_BYTES
        && (bytes <= LAYER_BLOCK_ANY_BATCH_MAX_BYTES || rows.saturating_mul(bytes) <= LAYER_BLOCK_MAX_BATCH_BYTES);
    let level = match isa {
        Isa::Avx512 => size_of::<M>() >= 4,
        Isa::Avx2 => tuning != Tuning::AmdZen4 && size_of::<M>() == size_of::<f32>(),
        _ => false,
    };
    level && (short || long)
}

/// Rows of at most this many bytes go in blocks in batches of any size;
/// longer ones only in batches of at most [`LAYER_BLOCK_MAX_BATCH_BYTES`].
const LAYER_BLOCK_ANY_BATCH_MAX_BYTES: usize = 512;

/// The largest batch of rows of more than [`LAYER_BLOCK_ANY_BATCH_MAX_BYTES`]
/// in blocks (the whole call, also when threads take parts of it). On the Zen 4 of round 16 (`benches/ab`, 31
/// rounds, each build as A and as B), blocks of float32 rows of 1 to 1.5
/// KiB took 0.76-0.79 of the time of rows one at a time on 4 and 6 MiB
/// arrays, but 0.89-1.29 on 10 to 32 MiB ones (the geometric means of the
/// two orders 0.97-1.26), where round 15 on the same CPU had measured
/// 0.89-0.95 from memory. Rows of 512 bytes did not lose from memory on
/// either day (0.91-0.99; 0.78); shorter ones were not measured there.
const LAYER_BLOCK_MAX_BATCH_BYTES: usize = 8 << 20;

/// Rows per block: one f64 register of AVX-512.
const BLOCK_ROWS: usize = 8;

/// The first-pass sums of a block of LayerNorm rows, lane j for row j:
/// (sum d, sum d^2) for d = x - K, and the shift K = x[0] ([`shift`]).
struct LayerBlock {
    s1: [f64; BLOCK_ROWS],
    s2: [f64; BLOCK_ROWS],
    shift: [f64; BLOCK_ROWS],
}

impl LayerBlock {
    /// The row constants of the block, from the sums in f64 registers `D`
    /// (each division and square root one instruction per register): the
    /// fast path of [`row_constants`], bit for bit (the same IEEE
    /// operations on the same operands: [`centred`]'s shifted sums, then
    /// [`super::inv_rms`] at scale 1; `RowConstants::new` there must stay
    /// in step with this). None for the rows that need another path (the
    /// mean far from x[0], rescaling, NaN or +-inf, or an eps that is not
    /// finite), which `row_constants` then takes.
    ///
    /// # Safety
    /// The CPU must have the instruction set of `D`.
    #[inline(always)]
    unsafe fn constants<D: Vector<Elem = f64>, T: Real>(&self, n: usize, eps: f64) -> [Option<RowConstants>; BLOCK_ROWS] {
        const { assert!(BLOCK_ROWS.is_multiple_of(D::LANES)) };
        // SAFETY: this function's contract: the CPU has the instruction set
        // of D; every load and store is of D::LANES elements at j < BLOCK_ROWS,
        // a multiple of D::LANES (asserted above), inside the arrays.
        unsafe {
            let (mut m, mut q, mut r) = ([0.0; BLOCK_ROWS], [0.0; BLOCK_ROWS], [0.0; BLOCK_ROWS]);
            let (per_element, eps_v, one) = (D::splat(1.0 / n as f64), D::splat(eps), D::splat(1.0));
            for j in (0..BLOCK_ROWS).step_by(D::LANES) {
                let (s1, s2) = (D::load(self.s1.as_ptr().add(j)), D::load(self.s2.as_ptr().add(j)));
                let mean = s1.mul(per_element);
                let sq = s2.sub(s1.mul(mean));
                mean.store(m.as_mut_ptr().add(j));
                sq.store(q.as_mut_ptr().add(j));
                one.div(sq.mul(per_element).add(eps_v).sqrt()).store(r.as_mut_ptr().add(j));
            }
            let min = safe_min::<T>();
            std::array::from_fn(|j| {
                let fast = self.s1[j] * m[j] <= SHIFT_OK * self.s2[j] && q[j] >= min && q[j] < f64::INFINITY && eps.is_finite();
                fast.then_some(RowConstants { scale: 1.0, c_hi: self.shift[j], c_lo: m[j], r: r[j], rstd: r[j] })
            })
        }
    }
}

/// LayerNorm of every row of `batch` ([`in_layer_blocks`]) in blocks of
/// [`BLOCK_ROWS`]: the first passes of the block, the block's constants
/// together ([`LayerBlock::constants`]), then the write passes. No row is
/// read after it is written (a row's second pass, where it needs one,
/// comes before its write): `y` may equal `x` row for row. The results are those of [`norm`] on each row. `D` is the f64
/// register of `V`'s level.
///
/// # Safety
/// The CPU must have the instruction set of `V` and `D` (vector code);
/// pointer arguments must be valid for the elements read and written (`n`
/// per row), with the aliasing the module documents.
#[inline(always)]
pub unsafe fn layer_blocks<V: Storage<M>, D: Vector<Elem = f64>, M>(batch: RowBatch<M>, eps: f64, affine: Affine<V::Elem>, stats: RowStats<V::Elem>) {
    // SAFETY: this function's contract: the CPU has the instruction set of V
    // and D, and every access below stays inside the rows of the batch.
    unsafe {
        let (kind, n, one) = (Norm::Layer, batch.n, V::Elem::ONE);
        if is_short::<V>(n) {
            return layer_short_blocks::<V, D, M>(batch, eps, affine, stats);
        }
        for start in (0..batch.rows).step_by(BLOCK_ROWS) {
            let rows = BLOCK_ROWS.min(batch.rows - start);
            let mut block = LayerBlock { s1: [0.0; BLOCK_ROWS], s2: [0.0; BLOCK_ROWS], shift: [0.0; BLOCK_ROWS] };
            for j in 0..rows {
                let x = batch.x_row(start + j);
                block.shift[j] = shift::<V, M, false>(kind, x, one).to_f64();
                (block.s1[j], block.s2[j]) = first_sums::<V, M, false>(kind, x, n, head_len::<V, M>(x, n), one);
            }
            let fast = block.constants::<D, V::Elem>(n, eps);
            for (j, &fast) in fast.iter().enumerate().take(rows) {
                let (x, y) = (batch.x_row(start + j), batch.y_row(start + j));
                // A match, not `or_else`: a closure is compiled without this
                // level's features unless it is inlined.
                let k = match fast {
                    Some(k) => Some(k),
                    None => row_constants::<V, M>(kind, x, n, head_len::<V, M>(x, n), eps, (block.s1[j], block.s2[j])),
                };
                write_out::<V, M>(kind, x, y, n, affine, stats.row(start + j), k, None);
            }
        }
    }
}

/// The fused form. Every pass over the sum splits at x's alignment, so the
/// result does not depend on where the outputs are.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub unsafe fn add_norm<V: Storage<M>, M>(
    kind: Norm,
    x: *const M,
    residual: *const M,
    sum: *mut M,
    y: *mut M,
    n: usize,
    eps: f64,
    affine: Affine<V::Elem>,
    stats: RowStats<V::Elem>,
) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        if n == 0 {
            return stats.write(None);
        }
        let head = head_len::<V, M>(x, n);
        // The shift is the sum's first element as stored, as the plain
        // LayerNorm of the stored sum takes it (`constants` reads it back).
        let k = if kind == Norm::Layer { V::as_stored(V::read(x) + V::read(residual)) } else { V::Elem::ZERO };
        let first = add_store::<V, M>(x, residual, sum, n, head, k);
        finish::<V, M>(kind, sum, y, n, head, eps, affine, stats, first, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::in_layer_blocks as blocks;

    /// The levels and CPUs that take the blocks of float32 rows: avx512
    /// everywhere, avx2 everywhere except on AMD Zen 4.
    fn float32_block_levels() -> [(Isa, Tuning); 3] {
        [(Isa::Avx512, Tuning::Default), (Isa::Avx512, Tuning::AmdZen4), (Isa::Avx2, Tuning::Default)]
    }

    /// The rows `layer_blocks` takes: float32 rows of 257 to 1536 bytes
    /// at avx512 and at avx2 (except on Zen 4), float64 ones at avx512 only
    /// (those over 512 bytes in batches of up to 8 MiB), nothing else.
    #[test]
    fn layer_blocks_take_rows_of_257_bytes_to_1_5_kib_at_avx512_and_float32_at_avx2() {
        let rows = 8;
        for (isa, tuning) in float32_block_levels() {
            assert!(!blocks::<f32>(isa, tuning, 64, rows) && blocks::<f32>(isa, tuning, 65, rows), "{isa}");
            assert!(blocks::<f32>(isa, tuning, 384, rows) && !blocks::<f32>(isa, tuning, 385, rows), "{isa}");
            // Batches of rows of more than 512 bytes: up to 8 MiB.
            assert!(blocks::<f32>(isa, tuning, 128, 1 << 20), "{isa}: 512-byte rows, any batch");
            assert!(blocks::<f32>(isa, tuning, 129, (8 << 20) / 516) && !blocks::<f32>(isa, tuning, 129, (8 << 20) / 516 + 1), "{isa}");
            assert!(blocks::<f32>(isa, tuning, 384, 5461) && !blocks::<f32>(isa, tuning, 384, 5462), "{isa}");
            assert!(!blocks::<u16>(isa, tuning, 384, rows), "{isa}: 16-bit storage");
        }
        for tuning in [Tuning::Default, Tuning::AmdZen4] {
            assert!(!blocks::<f64>(Isa::Avx512, tuning, 32, rows) && blocks::<f64>(Isa::Avx512, tuning, 33, rows));
            assert!(blocks::<f64>(Isa::Avx512, tuning, 192, rows) && !blocks::<f64>(Isa::Avx512, tuning, 193, rows));
            assert!(!blocks::<f64>(Isa::Avx2, tuning, 33, rows), "float64 at avx2");
            for isa in [Isa::Scalar, Isa::Neon] {
                assert!(!blocks::<f32>(isa, tuning, 128, rows), "{isa}");
            }
        }
        assert!(!blocks::<f32>(Isa::Avx2, Tuning::AmdZen4, 128, rows), "avx2 on Zen 4");
    }

    #[test]
    fn layer_blocks_take_short_float32_rows_in_whole_blocks_of_cached_batches() {
        for (isa, tuning) in float32_block_levels() {
            assert!(blocks::<f32>(isa, tuning, 64, 16) && blocks::<f32>(isa, tuning, 1, 16), "{isa}");
            assert!(!blocks::<f32>(isa, tuning, 64, 15), "{isa}: less than a block");
            assert!(!blocks::<f32>(isa, tuning, 0, 16), "{isa}: empty rows");
            // Batches of up to 4 MiB.
            assert!(blocks::<f32>(isa, tuning, 64, 16384) && !blocks::<f32>(isa, tuning, 64, 16385), "{isa}");
            assert!(blocks::<f32>(isa, tuning, 16, 65536) && !blocks::<f32>(isa, tuning, 16, 65537), "{isa}");
            assert!(!blocks::<f64>(isa, tuning, 32, 16), "{isa}: float64");
            assert!(!blocks::<u16>(isa, tuning, 64, 16), "{isa}: 16-bit storage");
        }
        for tuning in [Tuning::Default, Tuning::AmdZen4] {
            for isa in [Isa::Scalar, Isa::Neon] {
                assert!(!blocks::<f32>(isa, tuning, 64, 16), "{isa}");
            }
        }
        assert!(!blocks::<f32>(Isa::Avx2, Tuning::AmdZen4, 64, 16), "avx2 on Zen 4");
    }
}
