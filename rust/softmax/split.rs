//! Softmax, log-softmax and logsumexp of one long row split into chunks
//! that run on the thread pool ([`rows::map_chunks`]).
//!
//! Each algorithm's first pass returns a partial result per chunk; the
//! partials combine exactly as the algorithm combines its own blocks, then
//! every chunk is written with the row's constants:
//!
//! * two-pass: per-chunk (sum, exponent) pairs, added with
//!   [`merge_pair`] (Dukhan & Ablavatski 2020);
//! * online: per-chunk (max, sum of exp(x - max)), merged by rescaling to
//!   the larger max (Milakov & Gimelshein 2018);
//! * three-pass: per-chunk maxima, then per-chunk sums of exp(x - max)
//!   with the row max, added, then the writes;
//! * log-softmax: as the unsplit kernel (`vector::log_two_pass`), rows of
//!   `LOG_TWO_PASS_MIN_BYTES` and more the two-pass pairs and the chunk
//!   maxima, then the writes; other rows as three-pass;
//! * logsumexp: the two-pass pairs.
//!
//! The results differ from the unsplit kernel's only by the order of the
//! f64 additions of block sums, far below the documented error. Rows the
//! two-pass and online forms and two-pass log-softmax hand to three-pass
//! (NaN, inf, |x| > 2^18) take the split three-pass path; logsumexp's rare
//! fallback runs unsplit.
//! The portable level runs the unsplit reference.

use super::scalar::{merge_pair, pair_ln_sum, two_pass_accept};
use super::vector::{self, ShiftedExp};
use super::Algorithm;
use crate::dispatch::{self, Isa, Kernel};
use crate::rows;
use crate::simd::{Element, Real, Simd};
use std::ops::Range;

/// One pass over one chunk.
#[derive(Clone, Copy)]
enum Pass<T> {
    /// The chunk's max (may drop a NaN: the sums catch it).
    Max,
    /// The two-pass (sum, exponent) pair of the chunk, and its max.
    PairSum,
    /// The online (max, sum of exp(x - max)) of the chunk.
    OnlineSum,
    /// (sum of exp(x - m) * c, c) (see `ShiftedExp`); `store` also writes
    /// the terms; `warm_y` prefetches the output lines (`vector::sum_map`).
    ExpSum { m: T, store: bool, warm_y: bool },
    /// (sum of exp(x), 1): log-softmax's plain form for a non-finite max.
    PlainExpSum { warm_y: bool },
    /// Two-pass writes with the row's accepted pair. (`stream`, here and
    /// below: with streaming stores, decided by the whole row's size.)
    PairWrite { sum: f64, exp: f64, stream: bool },
    /// Online writes with the row's accepted (max, sum).
    OnlineWrite { m: f64, d: f64, stream: bool },
    /// y = exp(x - m) * c * factor (three-pass recompute).
    ExpWrite { m: T, factor: T, stream: bool },
    /// y *= r (three-pass reload).
    Scale { r: T },
    /// y = (x - m) - ln_sum.
    LogWrite { m: T, ln_sum: T, stream: bool },
    /// y = NaN.
    FillNan,
    /// ln(sum) as the unsplit kernel takes it at this level
    /// (`vector::row_ln`); touches no elements.
    Ln { sum: f64 },
}

/// A pass over the chunk `x[..n]` / `y[..n]`, reached through
/// [`dispatch::run`]; returns up to three numbers (0 where unused).
struct ChunkPass<T: Element> {
    pass: Pass<T::Real>,
    x: *const T,
    y: *mut T,
    n: usize,
    /// The whole row's length, which picks the exponential's form
    /// (`ShiftedExp::new`) the same in every chunk.
    row_n: usize,
}

impl<T: Element> Kernel for ChunkPass<T> {
    type Output = (f64, f64, f64);

    fn scalar(self) -> (f64, f64, f64) {
        unreachable!("split rows run at vector levels only (`Row::run` takes the unsplit path at the scalar level)")
    }

    #[inline(always)]
    fn vector<S: Simd>(self, _: S) -> (f64, f64, f64) {
        let ChunkPass { pass, x, y, n, row_n } = self;
        // SAFETY: the pointers are valid for the chunk's `n` elements, y is
        // x or apart from it, and no other thread touches the chunk (the
        // contract of `Row`, the only constructor); the token proves the
        // CPU has `S`.
        unsafe {
            match pass {
                Pass::Max => return (vector::row_max::<T::Vector<S>, T>(x, n).to_f64(), 0.0, 0.0),
                Pass::PairSum => return vector::two_pass_sum::<T::Vector<S>, T>(x, n),
                Pass::OnlineSum => {
                    let (m, d) = vector::online_sum::<T::Vector<S>, T>(x, n);
                    return (m, d, 0.0);
                }
                Pass::ExpSum { m, store, warm_y } => {
                    let f = ShiftedExp::new(m, row_n);
                    let sum = if store {
                        vector::sum_map::<T::Vector<S>, T, T, vector::WriteExp>(x, y, n, &f, warm_y)
                    } else {
                        vector::sum_map::<T::Vector<S>, T, T, vector::NoWrite>(x, y, n, &f, warm_y)
                    };
                    return (sum, f.row_constant().to_f64(), 0.0);
                }
                Pass::PlainExpSum { warm_y } => return (vector::sum_map::<T::Vector<S>, T, T, vector::NoWrite>(x, y, n, &ShiftedExp::plain(T::Real::ZERO), warm_y), 1.0, 0.0),
                Pass::PairWrite { sum, exp, stream } => vector::two_pass_write::<T::Vector<S>, T>(x, y, n, sum, exp, stream),
                Pass::OnlineWrite { m, d, stream } => vector::online_write::<T::Vector<S>, T>(x, y, n, m, d, stream),
                Pass::ExpWrite { m, factor, stream } => vector::write_map::<T::Vector<S>, T>(x, y, n, &ShiftedExp::new(m, row_n), factor, stream),
                Pass::Scale { r } => vector::scale_in_place::<T::Vector<S>, T>(y, n, r),
                Pass::LogWrite { m, ln_sum, stream } => vector::log_softmax_write::<T::Vector<S>, T>(x, y, n, m, ln_sum, stream),
                Pass::FillNan => vector::fill::<T::Vector<S>, T>(y, n, T::Real::NAN),
                Pass::Ln { sum } => return (vector::row_ln::<T::Vector<S>>(sum), 0.0, 0.0),
            }
        }
        (0.0, 0.0, 0.0)
    }
}

/// One row split into chunks of `len` elements.
struct Row<T: Element> {
    isa: Isa,
    x: *const T,
    y: *mut T,
    n: usize,
    len: usize,
}

// SAFETY: a `Row` is addresses and sizes; its passes touch one chunk each,
// and `map_chunks` hands each chunk to one thread only, so concurrent
// passes of one stage touch disjoint elements of `y` (and `x` only where
// it is `y` itself, chunk for chunk). The buffers outlive the call that
// builds the row (the contract of its `unsafe` constructors).
unsafe impl<T: Element> Sync for Row<T> {}

impl<T: Element> Row<T> {
    /// Runs `pass` on every chunk, in parallel; the results in chunk order.
    fn each(&self, pass: Pass<T::Real>) -> Vec<(f64, f64, f64)> {
        rows::map_chunks(self.n, self.len, |r: Range<usize>| {
            let chunk = ChunkPass { pass, x: self.x.wrapping_add(r.start), y: self.y.wrapping_add(r.start), n: r.len(), row_n: self.n };
            dispatch::run(self.isa, chunk)
        })
    }

    /// The row max over the chunk maxima.
    fn max(&self) -> T::Real {
        T::Real::from_f64(self.each(Pass::Max).iter().fold(f64::NEG_INFINITY, |m, c| m.max(c.0)))
    }

    /// The total of a pass's first results, and its second result (the
    /// same for every chunk; 1 for an empty row).
    fn total(&self, pass: Pass<T::Real>) -> (f64, f64) {
        let chunks = self.each(pass);
        (chunks.iter().map(|c| c.0).sum(), chunks.first().map_or(1.0, |c| c.1))
    }

    /// The two-pass pair (sum, exponent) of the whole row, merged over the
    /// chunks, when [`two_pass_accept`] accepts it, and the row max.
    fn accepted_pair(&self) -> Option<(f64, f64, f64)> {
        let (sum, exp, max) = self.each(Pass::PairSum).into_iter().fold((0.0, f64::NEG_INFINITY, f64::NEG_INFINITY), |(s, e, m), (v, x, mc)| {
            let (s, e) = merge_pair(s, e, v, x);
            (s, e, m.max(mc))
        });
        two_pass_accept(sum, exp).map(|(sum, exp)| (sum, exp, max))
    }

    fn softmax(&self, algorithm: Algorithm) {
        match algorithm {
            Algorithm::ThreePassReload => self.three_pass(true),
            Algorithm::ThreePassRecompute => self.three_pass(false),
            Algorithm::TwoPass => match self.accepted_pair() {
                Some((sum, exp, _)) => drop(self.each(Pass::PairWrite { sum, exp, stream: vector::streams::<T>(self.n) })),
                None => self.three_pass(false),
            },
            Algorithm::Online => {
                let (m, d) = self
                    .each(Pass::OnlineSum)
                    .into_iter()
                    .fold((f64::NEG_INFINITY, 0.0), |(m, d), (mc, dc, _)| vector::online_merge(m, d, mc, dc));
                if vector::online_accept::<T::Real>(m, d) {
                    self.each(Pass::OnlineWrite { m, d, stream: vector::streams::<T>(self.n) });
                } else {
                    self.three_pass(false);
                }
            }
        }
    }

    /// Three-pass softmax; `reload` stores exp(x - max) in pass 2 and
    /// rescales it in pass 3, otherwise pass 3 recomputes it (always for
    /// 16-bit rows, where a stored exponential would be rounded once more:
    /// split rows are beyond the unsplit kernel's f32 stage buffer, where
    /// it recomputes too).
    fn three_pass(&self, reload: bool) {
        let reload = reload && size_of::<T>() >= size_of::<T::Real>();
        let m = self.max();
        if !m.is_finite() {
            self.each(Pass::FillNan);
            return;
        }
        let warm_y = reload || !vector::streams::<T>(self.n);
        let (sum, _) = self.total(Pass::ExpSum { m, store: reload, warm_y });
        if !sum.is_finite() {
            // A NaN or +inf entry (the max may have skipped a NaN).
            self.each(Pass::FillNan);
            return;
        }
        let r = T::Real::from_f64(1.0 / sum);
        self.each(if reload { Pass::Scale { r } } else { Pass::ExpWrite { m, factor: r, stream: vector::streams::<T>(self.n) } });
    }

    fn log_softmax(&self) {
        let stream = vector::streams::<T>(self.n);
        // Two passes, as the unsplit kernel takes them (`log_two_pass`).
        if vector::log_two_pass::<T>(self.n) {
            if let Some((sum, exp, max)) = self.accepted_pair() {
                let ln_sum = T::Real::from_f64(pair_ln_sum(sum, exp, max));
                self.each(Pass::LogWrite { m: T::Real::from_f64(max), ln_sum, stream });
                return;
            }
        }
        let m = self.max();
        // As the unsplit kernel: the pair form for a finite max (its sum is
        // c times sum exp(x - m)), else the plain form around 0.
        let (m, (scaled, c)) = if m.is_finite() {
            (m, self.total(Pass::ExpSum { m, store: false, warm_y: !stream }))
        } else {
            (T::Real::ZERO, self.total(Pass::PlainExpSum { warm_y: !stream }))
        };
        let ln_sum = T::Real::from_f64(dispatch::run(self.isa, ChunkPass::<T> { pass: Pass::Ln { sum: scaled / c }, x: std::ptr::null(), y: std::ptr::null_mut(), n: 0, row_n: 0 }).0);
        self.each(Pass::LogWrite { m, ln_sum, stream });
    }
}

/// Softmax of one row of `n` elements from `x` into `y`, split into chunks
/// of `len` elements run on the thread pool; the unsplit kernel at the
/// scalar level.
///
/// # Safety
/// As for [`softmax_raw`](super::softmax_raw); `len > 0`.
pub unsafe fn softmax_split_raw<T: Element>(isa: Isa, algorithm: Algorithm, x: *const T, y: *mut T, n: usize, len: usize) {
    if isa == Isa::Scalar {
        // SAFETY: this function's contract.
        return unsafe { super::softmax_raw(isa, algorithm, x, y, n) };
    }
    assert!(isa.is_supported(), "{isa} is not supported by this CPU");
    Row { isa, x, y, n, len }.softmax(algorithm)
}

/// Log-softmax of one row, split as in [`softmax_split_raw`].
///
/// # Safety
/// As for [`softmax_split_raw`].
pub unsafe fn log_softmax_split_raw<T: Element>(isa: Isa, x: *const T, y: *mut T, n: usize, len: usize) {
    if isa == Isa::Scalar {
        // SAFETY: this function's contract.
        return unsafe { super::log_softmax_raw(isa, x, y, n) };
    }
    assert!(isa.is_supported(), "{isa} is not supported by this CPU");
    Row { isa, x, y, n, len }.log_softmax()
}

/// logsumexp of one row (see [`logsumexp_raw`](super::logsumexp_raw)),
/// its pass split as in [`softmax_split_raw`]. Rows the pair sum does not
/// represent (NaN, inf, |x| > 2^18) take the unsplit kernel.
///
/// # Safety
/// `x` must be valid for reading `n` elements; `len > 0`.
pub unsafe fn logsumexp_split_raw<T: Element>(isa: Isa, x: *const T, n: usize, len: usize) -> f64 {
    if isa != Isa::Scalar {
        assert!(isa.is_supported(), "{isa} is not supported by this CPU");
        // A pair-sum pass writes nothing: `y` is never used.
        let row = Row { isa, x, y: std::ptr::null_mut(), n, len };
        if let Some((sum, exp, _)) = row.accepted_pair() {
            return sum.ln() + exp * std::f64::consts::LN_2;
        }
    }
    // SAFETY: this function's contract.
    unsafe { super::logsumexp_raw(isa, x, n) }
}
