//! Fused attention softmax: softmax (or log-softmax) of `scale * x + bias`
//! over the entries a mask keeps, as `jax.nn.softmax(where=)` and ggml's
//! `soft_max_ext` compute it.
//!
//! One kernel call per row: the prologue writes z = scale * x + bias (or
//! -inf where the mask drops the entry) into the output row, and the row is
//! then normalized in place while it is still in cache. No array of z is
//! ever made. -inf entries get probability exactly 0 (log-probability
//! -inf), so for rows with a finite max the masked entries come out right
//! with no extra pass.
//!
//! Rows the mask drops entirely get all 0 (all -inf for log-softmax), not
//! NaN. A row whose kept entries include NaN or +inf, or are all -inf,
//! follows the scipy rules of [`super`] on the kept entries, and its
//! masked entries are still 0 / -inf.

use super::{scalar, vector, Algorithm};
use crate::dispatch::Kernel;
use crate::simd::{Element, Real, Simd};

/// The per-row operands of the fused form. `bias` and `mask` may be null
/// (absent); when present they are valid for reading the row's `n`
/// elements (the contract of [`softmax_fused_raw`](super::softmax_fused_raw)).
#[derive(Clone, Copy, Debug)]
pub struct Fused<T> {
    pub scale: T,
    pub bias: *const T,
    pub mask: *const bool,
}

/// One row of the fused form. `algorithm` `None`: log-softmax.
pub(super) struct FusedRow<T> {
    pub algorithm: Option<Algorithm>,
    pub fused: Fused<T>,
    pub x: *const T,
    pub y: *mut T,
    pub n: usize,
}

/// What the prologue saw of the kept entries.
struct Kept<T> {
    count: usize,
    /// The largest kept z (NaN when any kept z is NaN).
    max: T,
}

/// Writes z into `y` and returns what it saw. Plain code: inlined into each
/// level's trampoline, where the compiler vectorizes it for that level.
///
/// # Safety
/// `x` and `y` are valid for `n` elements (equal or disjoint); `f.bias`
/// and `f.mask` are null or valid for reading `n` elements and overlap no
/// element of `y`.
#[inline(always)]
unsafe fn prologue<T: Real>(f: &Fused<T>, x: *const T, y: *mut T, n: usize) -> Kept<T> {
    // SAFETY: this function's contract: every access stays inside the `n`
    // elements of each row the caller vouched for.
    unsafe {
        let (mut count, mut max, mut nan) = (0usize, T::NEG_INFINITY, false);
        for i in 0..n {
            let keep = f.mask.is_null() || *f.mask.add(i);
            let b = if f.bias.is_null() { T::ZERO } else { *f.bias.add(i) };
            let z = if keep { f.scale * *x.add(i) + b } else { T::NEG_INFINITY };
            *y.add(i) = z;
            count += keep as usize;
            nan |= z.is_nan();
            max = max.max(z);
        }
        Kept { count, max: if nan { T::NAN } else { max } }
    }
}

/// Sets the masked entries of a normalized row to `value` (0 or -inf):
/// only needed for rows whose kept max is not finite, which the scipy
/// rules fill with NaN.
///
/// # Safety
/// `y` is valid for writing `n` elements and `mask` for reading them.
unsafe fn clear_masked<T: Real>(mask: *const bool, y: *mut T, n: usize, value: T) {
    // SAFETY: this function's contract.
    unsafe {
        for i in 0..n {
            if !*mask.add(i) {
                *y.add(i) = value;
            }
        }
    }
}

impl<T: Element> FusedRow<T> {
    /// The prologue, the in-place normalization `normalize` (scalar or
    /// vector), and the masked-row rules.
    ///
    /// # Safety
    /// The fields satisfy the contract of `softmax_fused_raw`, and
    /// `normalize(y, n)` is safe to call on a row of `n` valid elements.
    #[inline(always)]
    unsafe fn run(self, normalize: impl FnOnce(*mut T, usize)) {
        let FusedRow { algorithm, fused, y, n, .. } = self;
        // What a dropped entry becomes: probability 0, log-probability -inf.
        let dropped = if algorithm.is_some() { T::ZERO } else { T::NEG_INFINITY };
        // SAFETY: the contract of `softmax_fused_raw` (this function's).
        unsafe {
            let kept = prologue(&fused, self.x, y, n);
            if kept.count == 0 {
                return (0..n).for_each(|i| *y.add(i) = dropped);
            }
            normalize(y, n);
            if !fused.mask.is_null() && !kept.max.is_finite() {
                clear_masked(fused.mask, y, n, dropped);
            }
        }
    }
}

impl<T: Element> Kernel for FusedRow<T> {
    type Output = ();

    fn scalar(self) {
        let algorithm = self.algorithm;
        // SAFETY: the contract of `softmax_fused_raw`, the only constructor;
        // `y` then holds `n` valid elements, normalized in place (x = y).
        unsafe {
            self.run(|y, n| match algorithm {
                Some(a) => scalar::softmax(a, y.cast_const(), y, n),
                None => scalar::log_softmax(y.cast_const(), y, n),
            })
        }
    }

    #[inline(always)]
    fn vector<S: Simd>(self, _: S) {
        let algorithm = self.algorithm;
        // SAFETY: as in `scalar`; the token proves the CPU has `S`.
        unsafe {
            self.run(|y, n| match algorithm {
                Some(a) => vector::softmax::<T::Vector<S>>(a, y.cast_const(), y, n),
                None => vector::log_softmax::<T::Vector<S>>(y.cast_const(), y, n),
            })
        }
    }
}
