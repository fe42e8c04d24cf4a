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
use crate::simd::{Float, Real, Simd};

/// The per-row operands of the fused form. `bias` and `mask` may be null
/// (absent); when present they are valid for reading the row's `n`
/// elements (the contract of [`softmax_fused_raw`](super::softmax_fused_raw)).
/// The mask is read as bytes, nonzero keeping the entry: NumPy keeps any
/// byte in a bool array (a uint8 array viewed as bool holds 2 as True),
/// which is not a valid Rust `bool`.
#[derive(Clone, Copy, Debug)]
pub struct Fused<T> {
    pub scale: T,
    pub bias: *const T,
    pub mask: *const u8,
}

/// One row of the fused form. `algorithm` `None`: log-softmax.
pub(super) struct FusedRow<T> {
    pub algorithm: Option<Algorithm>,
    pub fused: Fused<T>,
    pub x: *const T,
    pub y: *mut T,
    pub n: usize,
}

/// Writes z into `y`, returning how many entries the mask keeps. Plain
/// code, one loop per combination of operands (no per-element test of
/// which are present): inlined into each level's trampoline, where the
/// compiler vectorizes it for that level.
///
/// # Safety
/// `x` and `y` are valid for `n` elements (equal or disjoint); `f.bias`
/// (if `BIAS`) and `f.mask` (if `MASK`) are valid for reading `n` elements
/// and overlap no element of `y`.
#[inline(always)]
unsafe fn prologue<T: Real, const BIAS: bool, const MASK: bool>(f: &Fused<T>, x: *const T, y: *mut T, n: usize) -> usize {
    // SAFETY: this function's contract: every access stays inside the `n`
    // elements of each row the caller vouched for.
    unsafe {
        let mut kept = 0usize;
        for i in 0..n {
            let z = f.scale * *x.add(i) + if BIAS { *f.bias.add(i) } else { T::ZERO };
            if MASK {
                let keep = *f.mask.add(i) != 0;
                *y.add(i) = if keep { z } else { T::NEG_INFINITY };
                kept += keep as usize;
            } else {
                *y.add(i) = z;
            }
        }
        if MASK {
            kept
        } else {
            n
        }
    }
}

/// Sets the masked entries of a normalized row to `value` (0 or -inf).
///
/// # Safety
/// `y` is valid for writing `n` elements and `mask` for reading them.
unsafe fn clear_masked<T: Real>(mask: *const u8, y: *mut T, n: usize, value: T) {
    // SAFETY: this function's contract.
    unsafe {
        for i in 0..n {
            if *mask.add(i) == 0 {
                *y.add(i) = value;
            }
        }
    }
}

impl<T: Float> FusedRow<T> {
    /// What a dropped entry becomes: probability 0, log-probability -inf.
    #[inline(always)]
    fn dropped(&self) -> T {
        if self.algorithm.is_some() {
            T::ZERO
        } else {
            T::NEG_INFINITY
        }
    }

    /// The prologue: z into `y`. False when the mask keeps no entry: the
    /// row is then final (all 0 / -inf).
    ///
    /// # Safety
    /// The fields satisfy the contract of `softmax_fused_raw`.
    #[inline(always)]
    unsafe fn begin(&self) -> bool {
        let (f, x, y, n) = (&self.fused, self.x, self.y, self.n);
        // SAFETY: this function's contract, with each operand used only
        // when its pointer is non-null.
        unsafe {
            let kept = match (!f.bias.is_null(), !f.mask.is_null()) {
                (false, false) => prologue::<T, false, false>(f, x, y, n),
                (true, false) => prologue::<T, true, false>(f, x, y, n),
                (false, true) => prologue::<T, false, true>(f, x, y, n),
                (true, true) => prologue::<T, true, true>(f, x, y, n),
            };
            if kept == 0 {
                for i in 0..n {
                    *y.add(i) = self.dropped();
                }
            }
            kept > 0
        }
    }

    /// After the in-place normalization: masked entries are 0 / -inf
    /// already unless the scipy rules made the row NaN (a kept NaN or
    /// +inf, or kept entries all -inf); then they are set back. The first
    /// masked entry tells which case this is.
    ///
    /// # Safety
    /// The fields satisfy the contract of `softmax_fused_raw`.
    #[inline(always)]
    unsafe fn end(&self) {
        let (mask, y, n) = (self.fused.mask, self.y, self.n);
        if mask.is_null() {
            return;
        }
        // SAFETY: this function's contract: `mask` and `y` hold `n` elements.
        unsafe {
            if let Some(i) = (0..n).find(|&i| *mask.add(i) == 0) {
                if (*y.add(i)).is_nan() {
                    clear_masked(mask, y, n, self.dropped());
                }
            }
        }
    }
}

// Both paths spell out the same three steps rather than sharing them
// through a closure: a closure is compiled without the trampoline's target
// features, and the vector kernels inside it would become calls.
impl<T: Float> Kernel for FusedRow<T> {
    type Output = ();

    fn scalar(self) {
        // SAFETY: the contract of `softmax_fused_raw`, the only constructor;
        // after `begin`, `y` holds `n` valid elements, normalized in place.
        unsafe {
            if !self.begin() {
                return;
            }
            let (y, n) = (self.y, self.n);
            match self.algorithm {
                Some(a) => scalar::softmax(a, y.cast_const(), y, n),
                None => scalar::log_softmax(y.cast_const(), y, n),
            }
            self.end();
        }
    }

    #[inline(always)]
    fn vector<S: Simd>(self, _: S) {
        // SAFETY: as in `scalar`; the token proves the CPU has `S`.
        unsafe {
            if !self.begin() {
                return;
            }
            let (y, n) = (self.y, self.n);
            match self.algorithm {
                Some(a) => vector::softmax::<T::Vector<S>, T>(a, y.cast_const(), y, n),
                None => vector::log_softmax::<T::Vector<S>, T>(y.cast_const(), y, n),
            }
            self.end();
        }
    }
}
