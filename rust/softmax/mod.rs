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
//! Special values follow `scipy.special.softmax`: a `-inf` entry gets 0;
//! a row holding NaN or `+inf`, and a row that is all `-inf`, is all NaN.
//!
//! `scalar` holds the reference of each algorithm, `vector` the SIMD
//! version written once over [`Vector`](crate::simd::Vector), and `avx2` /
//! `avx512` the entry points that instantiate it for each instruction set.

pub mod scalar;
mod vector;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

use crate::dispatch::Isa;
use crate::simd::Element;

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

    /// The algorithm `"auto"` runs for rows of `len` elements of `elem_size`
    /// bytes on `isa`. Measured with `cargo bench --bench softmax` and
    /// `benches/compare.py` (README): with AVX-512, three-pass reload wins
    /// while a row fits in L2 (the reload is a cache hit and each exp is
    /// computed once) and two-pass wins beyond (1 MB rows and up), where
    /// memory traffic dominates. With AVX2, where 2^n scaling costs several
    /// instructions and the two-pass kernel needs three per element,
    /// three-pass reload won at every row length up to 16M elements.
    pub fn auto(len: usize, elem_size: usize, isa: Isa) -> Algorithm {
        if isa == Isa::Avx512 && len * elem_size >= AUTO_TWO_PASS_MIN_BYTES {
            Algorithm::TwoPass
        } else {
            Algorithm::ThreePassReload
        }
    }
}

/// Row size in bytes from which `auto` picks the two-pass algorithm.
pub const AUTO_TWO_PASS_MIN_BYTES: usize = 1 << 20;

/// Softmax of one row of `n` elements from `x` into `y`.
///
/// # Safety
/// `x` must be valid for reading and `y` for writing `n` elements; they are
/// either the same pointer (in place) or do not overlap. `isa` must be
/// supported by this CPU.
pub unsafe fn softmax_raw<T: Element>(isa: Isa, algorithm: Algorithm, x: *const T, y: *mut T, n: usize) {
    match isa {
        Isa::Scalar => scalar::softmax(algorithm, x, y, n),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => avx2::softmax::<T>(algorithm, x, y, n),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => avx512::softmax::<T>(algorithm, x, y, n),
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("{isa} kernels exist only on x86-64"),
    }
}

/// Log-softmax of one row: y = x - max - ln(sum exp(x - max)), with the
/// special values of `scipy.special.log_softmax` (a non-finite max is
/// replaced by 0 before shifting).
///
/// # Safety
/// As for [`softmax_raw`].
pub unsafe fn log_softmax_raw<T: Element>(isa: Isa, x: *const T, y: *mut T, n: usize) {
    match isa {
        Isa::Scalar => scalar::log_softmax(x, y, n),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => avx2::log_softmax::<T>(x, y, n),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => avx512::log_softmax::<T>(x, y, n),
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("{isa} kernels exist only on x86-64"),
    }
}

fn check_isa(isa: Isa) {
    assert!(isa.is_supported(), "{isa} is not supported by this CPU");
}

/// Softmax of `x` into `y` (same length) with the given instruction set.
pub fn softmax<T: Element>(isa: Isa, algorithm: Algorithm, x: &[T], y: &mut [T]) {
    assert_eq!(x.len(), y.len(), "softmax: input and output lengths differ");
    check_isa(isa);
    unsafe { softmax_raw(isa, algorithm, x.as_ptr(), y.as_mut_ptr(), x.len()) }
}

/// Softmax of `y` in place.
pub fn softmax_inplace<T: Element>(isa: Isa, algorithm: Algorithm, y: &mut [T]) {
    check_isa(isa);
    unsafe { softmax_raw(isa, algorithm, y.as_ptr(), y.as_mut_ptr(), y.len()) }
}

/// Log-softmax of `x` into `y` (same length) with the given instruction set.
pub fn log_softmax<T: Element>(isa: Isa, x: &[T], y: &mut [T]) {
    assert_eq!(x.len(), y.len(), "log_softmax: input and output lengths differ");
    check_isa(isa);
    unsafe { log_softmax_raw(isa, x.as_ptr(), y.as_mut_ptr(), x.len()) }
}
