//! RMSNorm, LayerNorm and CRMSNorm of one long row split into chunks that
//! run on the thread pool ([`rows::map_chunks`]).
//!
//! Each chunk returns its sums; they combine into the row's, then every
//! chunk is written with the row's constants:
//!
//! * LayerNorm: each chunk's (count, centre, M2), M2 the sum of squares
//!   about the centre, computed as the unsplit kernel computes a row's
//!   (shifted sums, or the corrected two-pass formula where the shift is
//!   far from the mean), combine with Chan, Golub & LeVeque's parallel
//!   formula (1979; 1983, eq. 2.1) in its k-way form: with d_j the
//!   chunk means about a reference c_0 and d their weighted mean,
//!   M2 = sum_j M2_j + sum_j n_j (d_j - d)^2, a sum of non-negative terms;
//! * RMSNorm and CRMSNorm: sum x^2 (and sum x) add up.
//!
//! The row-wide rules of the module hold: a row whose combined sum of
//! squares is not finite or too small is rescaled by one power of two from
//! its max |x| over all chunks and summed again, and a NaN or +-inf in any
//! chunk makes the whole row (and its statistics) NaN. The portable level
//! runs the unsplit reference.

use super::{rescale_factor, safe_min, vector, Affine, Norm, RowConstants, RowStats};
use crate::dispatch::{self, Isa, Kernel};
use crate::rows;
use crate::simd::{Element, Real, Simd};
use std::ops::Range;

/// One pass over one chunk.
#[derive(Clone, Copy)]
enum Pass {
    /// The chunk's sums of x * scale (see `vector::chunk_sums`).
    Sums { scale: f64 },
    /// The chunk's max |x| (may drop a NaN: the sums catch it).
    AbsMax,
    /// The chunk normalized with the row's constants.
    Write { k: RowConstants },
}

/// A pass over the chunk `x[..n]` / `y[..n]`, whose channels start at
/// `affine`, reached through [`dispatch::run`].
struct ChunkPass<T: Element> {
    kind: Norm,
    pass: Pass,
    x: *const T,
    y: *mut T,
    n: usize,
    affine: Affine<T::Real>,
}

impl<T: Element> Kernel for ChunkPass<T> {
    type Output = (f64, f64, f64);

    fn scalar(self) -> (f64, f64, f64) {
        unreachable!("split rows run at vector levels only (`norm_split_raw` takes the unsplit path at the scalar level)")
    }

    #[inline(always)]
    fn vector<S: Simd>(self, _: S) -> (f64, f64, f64) {
        let ChunkPass { kind, pass, x, y, n, affine } = self;
        // SAFETY: the pointers are valid for the chunk's `n > 0` elements,
        // y is x or apart from it, the affine pointers are valid for `n`
        // channels, and no other thread writes the chunk (the contract of
        // `Row`, the only constructor); the token proves the CPU has `S`.
        unsafe {
            match pass {
                Pass::Sums { scale } => vector::chunk_sums::<T::Vector<S>, T>(kind, x, n, scale),
                Pass::AbsMax => (vector::abs_max::<T::Vector<S>, T>(x, n), 0.0, 0.0),
                Pass::Write { k } => {
                    vector::write_normalized::<T::Vector<S>, T>(kind, x, y, n, &k, affine);
                    (0.0, 0.0, 0.0)
                }
            }
        }
    }
}

/// One row split into chunks of `len` elements.
struct Row<T: Element> {
    isa: Isa,
    kind: Norm,
    x: *const T,
    y: *mut T,
    n: usize,
    affine: Affine<T::Real>,
    len: usize,
}

// SAFETY: a `Row` is addresses and sizes; its passes touch one chunk each,
// and `map_chunks` hands each chunk to one thread only, so concurrent
// passes of one stage write disjoint elements of `y` (and read `x` only
// where it is `y` itself, chunk for chunk). The buffers outlive the call
// that builds the row (the contract of `norm_split_raw`).
unsafe impl<T: Element> Sync for Row<T> {}

/// A pointer `offset` elements on, or null when null.
fn offset<T>(p: *const T, offset: usize) -> *const T {
    if p.is_null() { p } else { p.wrapping_add(offset) }
}

impl<T: Element> Row<T> {
    /// Runs `pass` on every chunk, in parallel: (chunk length, result) in
    /// chunk order.
    fn each(&self, pass: Pass) -> Vec<(usize, (f64, f64, f64))> {
        rows::map_chunks(self.n, self.len, |r: Range<usize>| {
            let (start, n) = (r.start, r.len());
            let affine = Affine { weight: offset(self.affine.weight, start), bias: offset(self.affine.bias, start) };
            let chunk = ChunkPass { kind: self.kind, pass, x: self.x.wrapping_add(start), y: self.y.wrapping_add(start), n, affine };
            (n, dispatch::run(self.isa, chunk))
        })
    }

    /// (c_hi, c_lo, q) of the row times `scale`: its centre, rounded to
    /// `T` plus a remainder, and its sum of squares about the centre.
    fn sums(&self, scale: f64) -> (f64, f64, f64) {
        let chunks = self.each(Pass::Sums { scale });
        match self.kind {
            Norm::Rms => (0.0, 0.0, chunks.iter().map(|(_, c)| c.2).sum()),
            Norm::Crms => {
                let (s1, s2) = chunks.iter().fold((0.0, 0.0), |(s1, s2), (_, c)| (s1 + c.1, s2 + c.2));
                (0.0, 0.0, s2 + s1 * s1)
            }
            Norm::Layer => {
                // Chunk means about the first chunk's centre c0: c_hi - c0
                // is exact in f64 for float32 (and for float64 centres
                // within a factor 2 of each other, Sterbenz).
                let c0 = chunks[0].1 .0;
                let nf = self.n as f64;
                let mean_about = |(_, c): &(usize, (f64, f64, f64))| (c.0 - c0) + c.1;
                let d = chunks.iter().map(|ch| ch.0 as f64 * mean_about(ch)).sum::<f64>() / nf;
                let m2 = chunks.iter().map(|ch| ch.1 .2 + ch.0 as f64 * (mean_about(ch) - d).powi(2)).sum();
                let c_hi = T::Real::from_f64(c0 + d).to_f64();
                (c_hi, (c0 - c_hi) + d, m2)
            }
        }
    }

    /// The row constants, or None for a row holding NaN or +-inf; as
    /// `vector::row_constants` on the whole row.
    fn constants(&self, eps: f64) -> Option<RowConstants> {
        // Times 1 / divisor, as `vector::constants` computes the mean square.
        let per_element = 1.0 / self.kind.divisor(self.n);
        let (c_hi, c_lo, q) = self.sums(1.0);
        if q.is_finite() && q >= safe_min::<T::Real>() {
            return Some(RowConstants::new(1.0, c_hi, c_lo, q * per_element, eps));
        }
        let amax = self.each(Pass::AbsMax).iter().fold(0.0f64, |m, (_, c)| m.max(c.0));
        if !amax.is_finite() {
            return None;
        }
        let scale = if amax == 0.0 { 1.0 } else { rescale_factor::<T::Real>(amax) };
        let (c_hi, c_lo, q) = self.sums(scale);
        q.is_finite().then(|| RowConstants::new(scale, c_hi, c_lo, q * per_element, eps))
    }
}

/// The normalization `kind` of one row of `n` elements from `x` into `y`,
/// as [`norm_raw`](super::norm_raw), split into chunks of `len` elements
/// run on the thread pool; the unsplit kernel at the scalar level.
///
/// # Safety
/// As for [`norm_raw`](super::norm_raw); `len > 0`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn norm_split_raw<T: Element>(
    isa: Isa,
    kind: Norm,
    x: *const T,
    y: *mut T,
    n: usize,
    eps: f64,
    affine: Affine<T::Real>,
    stats: RowStats<T::Real>,
    len: usize,
) {
    if isa == Isa::Scalar || n == 0 {
        // SAFETY: this function's contract.
        return unsafe { super::norm_raw(isa, kind, x, y, n, eps, affine, stats) };
    }
    assert!(isa.is_supported(), "{isa} is not supported by this CPU");
    let row = Row { isa, kind, x, y, n, affine, len };
    let k = row.constants(eps);
    // SAFETY: the caller vouches for the stats pointers.
    unsafe { stats.write(k.as_ref()) };
    match k {
        Some(k) => {
            row.each(Pass::Write { k });
        }
        None => {
            // Written through the pointer, with no slice: an output may be
            // uninitialized memory (a new array), which a `&mut [T]` must
            // not cover.
            for i in 0..n {
                // SAFETY: `y` is valid for writing `n` elements (this
                // function's contract); nothing else runs on the row now.
                unsafe { y.add(i).write(T::from_real(T::Real::NAN)) };
            }
        }
    }
}
