//! Softmax and log-softmax along a row.
//!
//! Four algorithms with the same result (see DESIGN.md for their memory
//! traffic):
//!
//! * [`Algorithm::ThreePassReload`]: max; y = exp(x - max) stored while
//!   summing; y *= 1/sum.
//! * [`Algorithm::ThreePassRecompute`]: max; sum of exp(x - max);
//!   y = exp(x - max) / sum, computing each exponential twice.
//! * [`Algorithm::TwoPass`]: Dukhan & Ablavatski, "The Two-Pass Softmax
//!   Algorithm" (2020): pass 1 sums exp(x) as (mantissa, exponent) pairs, so
//!   no max pass is needed and nothing overflows; pass 2 recomputes and
//!   scales.
//! * [`Algorithm::Online`]: Milakov & Gimelshein (2018): one pass keeps a
//!   running max and a sum rescaled to it; a second pass writes.
//!
//! [`logsumexp`] shares the two-pass algorithm's first pass: its
//! (mantissa, exponent) sum is ln-ready, so the row is read once.
//!
//! Special values follow `scipy.special.softmax`: a `-inf` entry gets 0;
//! a row holding NaN or `+inf`, and a row that is all `-inf`, is all NaN.
//!
//! `scalar` holds the reference of each algorithm, `vector` the SIMD
//! version written once over [`Vector`](crate::simd::Vector); each level
//! reaches it through [`dispatch::run`].

mod fused;
pub(crate) mod ln;
#[rustfmt::skip]
mod ln_table;
pub mod scalar;
mod split;
mod vector;

pub use fused::Fused;
pub use split::{log_softmax_split_raw, logsumexp_split_raw, softmax_split_raw};
pub use vector::{LOG_TWO_PASS_MIN_BYTES, STREAM_MIN_BYTES};

use crate::dispatch::{self, Isa, Kernel, Tuning};
use crate::l1norm::RowBatch;
use crate::simd::{Element, Float, Simd};

/// Which softmax algorithm to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    TwoPass,
    ThreePassReload,
    ThreePassRecompute,
    Online,
}

impl Algorithm {
    pub const ALL: [Algorithm; 4] = [
        Algorithm::TwoPass,
        Algorithm::ThreePassReload,
        Algorithm::ThreePassRecompute,
        Algorithm::Online,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::TwoPass => "two_pass",
            Algorithm::ThreePassReload => "three_pass_reload",
            Algorithm::ThreePassRecompute => "three_pass_recompute",
            Algorithm::Online => "online",
        }
    }

    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The algorithm `"auto"` runs for `call` with elements of `elem_size`
    /// bytes on `isa`, on this CPU ([`dispatch::tuning`]; see
    /// [`Algorithm::auto_for`]).
    pub fn auto(call: AutoCall, elem_size: usize, isa: Isa) -> Algorithm {
        Algorithm::auto_for(call, elem_size, isa, dispatch::tuning())
    }

    /// The algorithm `"auto"` runs for `call` with elements of `elem_size`
    /// bytes on `isa`, on a CPU of `tuning` (docs/guide/performance.md has
    /// the measurements). Three-pass reload computes each exponential once
    /// and reads the row three times; two-pass computes it twice and reads
    /// the row twice, so it wins once the traffic it saves costs more than
    /// its second exponential:
    ///
    /// * AVX-512, [`Tuning::Default`]: from rows of 1 MiB (set on AMD Zen
    ///   5, beyond its L2, and kept on an Intel Xeon whose crossover measured
    ///   between 1 and 16 MB); float64 from 8 MiB
    ///   ([`AUTO_TWO_PASS_MIN_BYTES_F64`]).
    /// * AVX-512, [`Tuning::AmdZen4`]: float32 rows of
    ///   [`AUTO_TWO_PASS_MIN_BYTES_ZEN4`] and more, float64 rows of
    ///   [`AUTO_TWO_PASS_MIN_BYTES_ZEN4_F64`] and more; and in a call of
    ///   [`AUTO_ZEN4_LARGE_CALL_BYTES`] or more, whose rows come from memory,
    ///   from rows of [`AUTO_ZEN4_LARGE_CALL_MIN_ROW_BYTES`]: float32 always,
    ///   float64 when two or more threads work on the call. 16-bit rows
    ///   never. Our reading: Zen 4 issues one 512-bit FMA per cycle
    ///   (measured), Zen 5 two (not measured), so the second exponential
    ///   costs relatively more there.
    /// * AVX2, where 2^n scaling costs several instructions: reload until
    ///   the two-pass output is written with streaming stores (float32 and
    ///   float64 rows of [`STREAM_MIN_BYTES`] and more): two-pass then moves
    ///   2/3 of reload's bytes (AMD Zen 3, 1 thread, time / copy: 1x4M
    ///   float32 1.64x against 2.11x, 1x16M 1.69x against 2.06x). On Zen 4
    ///   (AVX2 only when forced) reload at every length.
    pub fn auto_for(call: AutoCall, elem_size: usize, isa: Isa, tuning: Tuning) -> Algorithm {
        let bytes = call.len.saturating_mul(elem_size);
        let large_call = call.rows.saturating_mul(bytes) >= AUTO_ZEN4_LARGE_CALL_BYTES
            && bytes >= AUTO_ZEN4_LARGE_CALL_MIN_ROW_BYTES;
        let two_pass = match (isa, tuning) {
            (Isa::Avx512, Tuning::Default) if elem_size >= 8 => bytes >= AUTO_TWO_PASS_MIN_BYTES_F64,
            (Isa::Avx512, Tuning::Default) => bytes >= AUTO_TWO_PASS_MIN_BYTES,
            (Isa::Avx512, Tuning::AmdZen4) if elem_size >= 8 => {
                bytes >= AUTO_TWO_PASS_MIN_BYTES_ZEN4_F64 || (large_call && call.threads >= 2)
            }
            (Isa::Avx512, Tuning::AmdZen4) => elem_size >= 4 && (bytes >= AUTO_TWO_PASS_MIN_BYTES_ZEN4 || large_call),
            // 16-bit rows have no streaming store.
            (Isa::Avx2, Tuning::Default) => elem_size >= 4 && bytes >= STREAM_MIN_BYTES,
            _ => false,
        };
        if two_pass {
            Algorithm::TwoPass
        } else {
            Algorithm::ThreePassReload
        }
    }
}

/// A call as [`Algorithm::auto_for`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoCall {
    /// Elements per row.
    pub len: usize,
    /// Rows in the call.
    pub rows: usize,
    /// Threads working on the call ([`crate::rows::call_threads`]).
    pub threads: usize,
}

/// Row size in bytes from which `auto` picks the two-pass algorithm with
/// AVX-512 (float32 and 16-bit rows), [`Tuning::Default`]: set on AMD Zen
/// 5 (two-pass 27% faster at rows of 1 MiB), kept on an Intel Xeon.
pub const AUTO_TWO_PASS_MIN_BYTES: usize = 1 << 20;

/// The same for float64 rows, whose exponential costs more per byte, so
/// two-pass's second exp outweighs reload's extra traffic for longer:
/// measured on an Intel Xeon (Emerald Rapids, 2 MB L2), one thread, time /
/// copy, medians of 5 rounds: reload 1.96x / 1.80x / 1.90x against
/// two-pass 2.52x / 2.02x / 2.21x for rows of 1, 2 and 4 MB; two-pass
/// 1.50x / 1.58x / 1.63x against reload 1.68x / 2.10x / 2.14x for rows of
/// 16, 32 and 64 MB.
pub const AUTO_TWO_PASS_MIN_BYTES_F64: usize = 1 << 23;

/// Row size in bytes from which `auto` picks the two-pass algorithm with
/// AVX-512 on [`Tuning::AmdZen4`], float32 rows, in any call. Measured at
/// one thread in calls of 16 MiB (issue 11, round 23;
/// `benches/softmax_sweep.py --from-bytes 65536`, three runs of 9 rounds,
/// CPU clock; time(two-pass) / time(reload)): rows of 64 KiB to 4 MiB
/// 1.03-1.39, 8 MiB 0.91-1.07, 16 MiB 0.94-1.27, 32 MiB 0.79-0.86,
/// 64 MiB 0.74-0.78. A call of 16 MiB is read again from the L3 (32 MiB)
/// when it repeats, which favours reload; larger calls are below
/// ([`AUTO_ZEN4_LARGE_CALL_BYTES`]). bfloat16 and float16 (one thread,
/// two runs of a scratch script and a third of bfloat16): 1.06-1.19 for
/// rows of 1 to 64 MiB, so 16-bit rows stay with reload.
pub const AUTO_TWO_PASS_MIN_BYTES_ZEN4: usize = 1 << 25;

/// The same for float64 rows (the same runs): 64 KiB to 16 MiB 1.00-1.41,
/// 32 MiB 1.01-1.08, 64 MiB 0.87-0.89.
pub const AUTO_TWO_PASS_MIN_BYTES_ZEN4_F64: usize = 1 << 26;

/// On [`Tuning::AmdZen4`], a call whose input has at least this many bytes
/// (the measured part's L3, so input and output together are twice it)
/// takes two-pass from rows of [`AUTO_ZEN4_LARGE_CALL_MIN_ROW_BYTES`]:
/// float32 always, float64 when two or more threads work on the call.
/// Measured in calls of 64 MiB (issue 11, round 24; `softmax_sweep.py
/// --call-bytes 67108864 --sample-seconds 0.2 --rounds 11`, three runs;
/// time(two-pass) / time(reload)): one thread, float32 rows of 4 MiB
/// 1.02-1.05, 8 MiB 0.83-0.91, 16 MiB 0.79-0.87; float64 rows of 8 MiB
/// 0.97-1.06, 16 and 32 MiB 0.87-0.94 (0.89-1.02 in a scratch script,
/// so left to reload). Two threads: float32 rows of 4 MiB 0.84-0.91,
/// 8 MiB 0.66-0.71, 16 MiB 0.63-0.65; float64 rows of 4 MiB 0.95-0.97,
/// 8 MiB 0.79-1.04, 16 MiB 0.74-1.01, 32 MiB 0.72-0.76. Calls of 16 MiB
/// read part of their rows back from the L3 when they repeat, which
/// favours reload (above).
pub const AUTO_ZEN4_LARGE_CALL_BYTES: usize = 1 << 25;

/// The shortest row that [`AUTO_ZEN4_LARGE_CALL_BYTES`] sends to two-pass.
pub const AUTO_ZEN4_LARGE_CALL_MIN_ROW_BYTES: usize = 1 << 23;

/// Softmax or log-softmax of a batch of rows. Built only by the `unsafe`
/// functions below, whose callers vouch for the pointers.
///
/// One dispatch per batch, not per row: the instruction-set check, the
/// `#[target_feature]` trampoline call (with its `vzeroupper`) are paid
/// once for all rows, which counts for short rows.
struct SoftmaxRows<T> {
    /// `None`: log-softmax.
    algorithm: Option<Algorithm>,
    batch: RowBatch<T>,
}

impl<T: Element> Kernel for SoftmaxRows<T> {
    type Output = ();

    fn scalar(self) {
        let (batch, n) = (self.batch, self.batch.n);
        for i in 0..batch.rows {
            // SAFETY: row i < rows of the batch holds `n` valid elements in x
            // and y, either equal or disjoint (the contract of
            // `softmax_rows_raw` / `log_softmax_rows_raw`, the only
            // constructors).
            unsafe {
                T::scalar_row(batch.x_row(i), batch.y_row(i), n, |x, y| match self.algorithm {
                    Some(algorithm) => scalar::softmax(algorithm, x, y, n),
                    None => scalar::log_softmax(x, y, n),
                })
            }
        }
    }

    #[inline(always)]
    fn vector<S: Simd>(self, _: S) {
        // SAFETY: as in `scalar`; the token proves the CPU has `S`.
        unsafe {
            match self.algorithm {
                Some(algorithm) => {
                    let fused_max_bytes = vector::softmax_fused_max_bytes(S::ISA);
                    vector::softmax_rows::<T::Vector<S>, T>(algorithm, self.batch, fused_max_bytes)
                }
                None => vector::log_softmax_rows::<T::Vector<S>, T>(self.batch),
            }
        }
    }
}

/// Softmax of each row of `batch`.
///
/// # Safety
/// For each row `i < batch.rows`, `batch.x_row(i)` must be valid for
/// reading and `batch.y_row(i)` for writing `batch.n` elements; they are
/// either the same pointer (in place) or do not overlap, and no output row
/// overlaps another row of the batch (input or output). Panics when `isa`
/// is not supported by this CPU.
pub unsafe fn softmax_rows_raw<T: Element>(isa: Isa, algorithm: Algorithm, batch: RowBatch<T>) {
    dispatch::run(isa, SoftmaxRows { algorithm: Some(algorithm), batch })
}

/// Log-softmax of each row of `batch` (see [`log_softmax_raw`]).
///
/// # Safety
/// As for [`softmax_rows_raw`].
pub unsafe fn log_softmax_rows_raw<T: Element>(isa: Isa, batch: RowBatch<T>) {
    dispatch::run(isa, SoftmaxRows { algorithm: None, batch })
}

/// Softmax of one row of `n` elements from `x` into `y`.
///
/// # Safety
/// `x` must be valid for reading and `y` for writing `n` elements; they are
/// either the same pointer (in place) or do not overlap. Panics when `isa`
/// is not supported by this CPU.
pub unsafe fn softmax_raw<T: Element>(isa: Isa, algorithm: Algorithm, x: *const T, y: *mut T, n: usize) {
    // SAFETY: one row: this function's contract is the batch's.
    unsafe { softmax_rows_raw(isa, algorithm, RowBatch::single(x, y, n)) }
}

/// Log-softmax of one row: y = x - max - ln(sum exp(x - max)), with the
/// special values of `scipy.special.log_softmax` (a non-finite max is
/// replaced by 0 before shifting).
///
/// # Safety
/// As for [`softmax_raw`].
pub unsafe fn log_softmax_raw<T: Element>(isa: Isa, x: *const T, y: *mut T, n: usize) {
    // SAFETY: one row: this function's contract is the batch's.
    unsafe { log_softmax_rows_raw(isa, RowBatch::single(x, y, n)) }
}

/// Softmax (`algorithm` `Some`) or log-softmax (`None`) of one row of
/// `scale * x + bias` over the entries `mask` keeps (see [`fused`]).
///
/// # Safety
/// As for [`softmax_raw`], and `fused.bias` / `fused.mask` are null or
/// valid for reading `n` elements and overlap no element of `y`.
pub unsafe fn softmax_fused_raw<T: Float>(isa: Isa, algorithm: Option<Algorithm>, fused: Fused<T>, x: *const T, y: *mut T, n: usize) {
    dispatch::run(isa, fused::FusedRow { algorithm, fused, x, y, n })
}

/// [`softmax_fused_raw`] on slices: `bias` and `mask` of `x`'s length.
pub fn softmax_fused<T: Float>(isa: Isa, algorithm: Option<Algorithm>, scale: T, bias: Option<&[T]>, mask: Option<&[bool]>, x: &[T], y: &mut [T]) {
    let n = x.len();
    assert!(y.len() == n && bias.is_none_or(|b| b.len() == n) && mask.is_none_or(|m| m.len() == n), "softmax_fused: lengths differ");
    let bias = bias.map_or(std::ptr::null(), <[T]>::as_ptr);
    let mask = mask.map_or(std::ptr::null(), |m| m.as_ptr().cast::<u8>());
    // SAFETY: slices of length n; `y` is borrowed mutably, so it overlaps
    // none of the shared slices.
    unsafe { softmax_fused_raw(isa, algorithm, Fused { scale, bias, mask }, x.as_ptr(), y.as_mut_ptr(), n) }
}

/// Softmax of `x` into `y` (same length) with the given instruction set.
pub fn softmax<T: Element>(isa: Isa, algorithm: Algorithm, x: &[T], y: &mut [T]) {
    assert_eq!(x.len(), y.len(), "softmax: input and output lengths differ");
    // SAFETY: two distinct slices of the same length: valid and disjoint.
    unsafe { softmax_raw(isa, algorithm, x.as_ptr(), y.as_mut_ptr(), x.len()) }
}

/// Contiguous rows of `n` elements of `x` and `y` (same length, a
/// multiple of `n`; `n = 0`: no rows) as one batch.
fn contiguous_rows<T>(what: &str, x: &[T], y: &mut [T], n: usize) -> RowBatch<T> {
    assert_eq!(x.len(), y.len(), "{what}: input and output lengths differ");
    assert!(n == 0 || x.len().is_multiple_of(n), "{what}: length is not a multiple of the row length");
    let rows = x.len().checked_div(n).unwrap_or(0);
    RowBatch { x: x.as_ptr(), x_stride: n as isize, y: y.as_mut_ptr(), y_stride: n as isize, rows, n }
}

/// [`softmax`] of every row of `n` elements of the contiguous rows `x`
/// into `y` (same length, a multiple of `n`).
pub fn softmax_rows<T: Element>(isa: Isa, algorithm: Algorithm, x: &[T], y: &mut [T], n: usize) {
    let batch = contiguous_rows("softmax_rows", x, y, n);
    // SAFETY: the batch covers the two distinct slices exactly.
    unsafe { softmax_rows_raw(isa, algorithm, batch) }
}

/// [`log_softmax`] of every row of `n` elements of the contiguous rows `x`
/// into `y` (same length, a multiple of `n`).
pub fn log_softmax_rows<T: Element>(isa: Isa, x: &[T], y: &mut [T], n: usize) {
    let batch = contiguous_rows("log_softmax_rows", x, y, n);
    // SAFETY: the batch covers the two distinct slices exactly.
    unsafe { log_softmax_rows_raw(isa, batch) }
}

/// Softmax of `y` in place.
pub fn softmax_inplace<T: Element>(isa: Isa, algorithm: Algorithm, y: &mut [T]) {
    // Both pointers come from one mutable borrow, so reading through the
    // first does not invalidate the second (Stacked / Tree Borrows).
    let p = y.as_mut_ptr();
    // SAFETY: `p` is valid for `y.len()` elements; x and y are the same.
    unsafe { softmax_raw(isa, algorithm, p.cast_const(), p, y.len()) }
}

/// Log-softmax of `x` into `y` (same length) with the given instruction set.
pub fn log_softmax<T: Element>(isa: Isa, x: &[T], y: &mut [T]) {
    assert_eq!(x.len(), y.len(), "log_softmax: input and output lengths differ");
    // SAFETY: two distinct slices of the same length: valid and disjoint.
    unsafe { log_softmax_raw(isa, x.as_ptr(), y.as_mut_ptr(), x.len()) }
}

/// Log-softmax of `y` in place.
pub fn log_softmax_inplace<T: Element>(isa: Isa, y: &mut [T]) {
    let p = y.as_mut_ptr();
    // SAFETY: `p` is valid for `y.len()` elements; x and y are the same.
    unsafe { log_softmax_raw(isa, p.cast_const(), p, y.len()) }
}

/// logsumexp of one row. Built only by [`logsumexp_raw`].
struct LogSumExpRow<T> {
    x: *const T,
    n: usize,
}

impl<T: Element> Kernel for LogSumExpRow<T> {
    type Output = f64;

    fn scalar(self) -> f64 {
        // SAFETY: `x` is valid for `n` elements (the contract of
        // `logsumexp_raw`, the only constructor).
        unsafe { T::scalar_row(self.x, std::ptr::null_mut(), self.n, |x, _| scalar::logsumexp(x, self.n)) }
    }

    #[inline(always)]
    fn vector<S: Simd>(self, _: S) -> f64 {
        // SAFETY: as in `scalar`; the token proves the CPU has `S`.
        unsafe { vector::logsumexp::<T::Vector<S>, T>(self.x, self.n) }
    }
}

/// ln(sum(exp(x))) of one row of `n` elements, in f64 (the caller rounds
/// it once to its type), with the special values of
/// `scipy.special.logsumexp`: NaN anywhere gives NaN; else a `+inf` entry
/// gives `+inf`; a row of `-inf` entries only (or empty) gives `-inf`.
///
/// # Safety
/// `x` must be valid for reading `n` elements. Panics when `isa` is not
/// supported by this CPU.
pub unsafe fn logsumexp_raw<T: Element>(isa: Isa, x: *const T, n: usize) -> f64 {
    dispatch::run(isa, LogSumExpRow { x, n })
}

/// logsumexp of `x` with the given instruction set (see [`logsumexp_raw`]).
pub fn logsumexp<T: Element>(isa: Isa, x: &[T]) -> f64 {
    // SAFETY: a slice is valid for reading its length.
    unsafe { logsumexp_raw(isa, x.as_ptr(), x.len()) }
}
