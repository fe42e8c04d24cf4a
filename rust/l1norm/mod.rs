//! L1 normalization along a row: the standard deviation of LayerNorm is
//! replaced by the mean absolute deviation s = mean |x - mean|, so no
//! squares or square roots are needed (Wu et al. 2018, "L1-Norm Batch
//! Normalization"; after the fully quantized L1 norm layer of "Towards Accurate
//! and Efficient Sub-8-Bit Integer Training"). For Gaussian data
//! sigma ~= sqrt(pi/2) * s.
//!
//! # The int8 contract
//!
//! For a row x of n int8 values (1 <= n < 2^32; n = 0 rows are left
//! untouched), an output gain g > 0 (a finite f32: 1 / the output scale),
//! an optional int8 weight w (else w_i = 1) and int8 bias b (else 0), with
//! exact integer arithmetic throughout (/ is exact division of rationals):
//!
//! 1. S = sum x_i; q = floor(S / n), r = S - q n in [0, n). The mean is
//!    exactly q + r / n (it is not rounded).
//! 2. A = sum |n x_i - S| (= n^2 s).
//! 3. If A = 0 (constant row): y_i = b_i.
//! 4. K = g n^2 / A and c = g n r / A, so (x_i - q) K - c = (x_i - mean) g / s.
//!    If K > 512 (s < g / 512): K := 512 and c := min(c, 256) when
//!    2r <= n, else c := 512 - min(K_old - c, 256). (Only x_i = q and
//!    q + 1 can then escape saturation, and the exact value (x_i - q) K - c
//!    of each that does is kept; see `fixed::saturated_constants`.)
//! 5. sh: the integer with 2^21 <= K 2^sh < 2^22 (sh >= 12);
//!    M = floor(K 2^sh + 1/2), C = floor(c 2^sh + 1/2), t = sh - 12.
//! 6. P_i = (x_i - q) M - C; R_i = floor(P_i / 2^t + 1/2).
//! 7. y_i = clamp(floor(R_i w_i / 2^12 + 1/2) + b_i, -128, 127).
//!
//! Rounding is to nearest with ties toward +inf, saturation to [-128, 127].
//! So y_i approximates clamp((x_i - mean) / s * g * w_i + b_i) to within
//! 0.55 (0.5 from the last rounding, the rest from M, C and R): always
//! within one output step of the float formula.
//!
//! Nothing overflows for any n < 2^32: sums are u64 / i64, A and the
//! per-row constants are defined in u128 ([`fixed`]; rows of up to 2^16
//! elements take a shorter path to the same values), and |P_i| < 2^30.
//! The vector kernels evaluate steps 6-7 in i32 lanes with rearrangements
//! that give identical results (see [`fixed::Requant`]).
//!
//! # The float mode
//!
//! y = (x - mean) / (mean |x - mean| + eps) (* w + b), f32 or f64 in and
//! out, sums accumulated in f64. A constant row has s = 0 exactly: it gives
//! b (0 without bias), or NaN (0 / 0) when eps = 0, on every ISA.
//!
//! `scalar` holds the references, `vector` the float algorithm written
//! once over [`Vector`](crate::simd::Vector), `avx2` / `avx512` (x86-64)
//! and `neon` (aarch64, with `sdot` / `udot` where the CPU has them) the
//! int8 passes (direct `std::arch` intrinsics: `vpsadbw`, `sabd` and
//! integer packs have no place in the float `Vector` trait), run by
//! `pipeline`. Every level reaches them through [`dispatch::run`].

pub mod fixed;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod pipeline;
pub mod scalar;
mod vector;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;

use crate::dispatch::{self, Isa, Kernel};
use crate::simd::{Element, Simd};
use std::ptr;

/// The optional per-channel affine of a row kernel: `weight` and `bias`
/// point at `n` elements each, or are null when absent.
#[derive(Clone, Copy, Debug)]
pub struct Affine<T> {
    pub weight: *const T,
    pub bias: *const T,
}

impl<T> Affine<T> {
    pub const NONE: Affine<T> = Affine { weight: ptr::null(), bias: ptr::null() };

    /// From optional slices (their lengths are checked by the callers).
    pub fn from_slices(weight: Option<&[T]>, bias: Option<&[T]>) -> Affine<T> {
        Affine { weight: weight.map_or(ptr::null(), <[T]>::as_ptr), bias: bias.map_or(ptr::null(), <[T]>::as_ptr) }
    }
}

/// `rows` rows of `n` elements: row i of x starts `i * x_stride` elements
/// after `x`, and likewise for y.
#[derive(Clone, Copy, Debug)]
pub struct RowBatch<T> {
    pub x: *const T,
    pub x_stride: isize,
    pub y: *mut T,
    pub y_stride: isize,
    pub rows: usize,
    pub n: usize,
}

impl<T> RowBatch<T> {
    /// One row: `n` elements at `x` into `y`.
    pub fn single(x: *const T, y: *mut T, n: usize) -> RowBatch<T> {
        RowBatch { x, x_stride: 0, y, y_stride: 0, rows: 1, n }
    }

    /// # Safety
    /// `i < rows`, and the batch must describe valid memory (the offset
    /// then stays inside x's allocation).
    #[inline(always)]
    pub unsafe fn x_row(&self, i: usize) -> *const T {
        // SAFETY: the caller's contract keeps the offset inside x's allocation.
        unsafe { self.x.offset(i as isize * self.x_stride) }
    }

    /// # Safety
    /// As for [`RowBatch::x_row`].
    #[inline(always)]
    pub unsafe fn y_row(&self, i: usize) -> *mut T {
        // SAFETY: the caller's contract keeps the offset inside y's allocation.
        unsafe { self.y.offset(i as isize * self.y_stride) }
    }
}

/// The int8 L1 norm of a batch of rows. Built only by
/// [`l1_norm_i8_rows_raw`], whose caller vouches for the pointers.
struct L1NormI8 {
    batch: RowBatch<i8>,
    gain: f32,
    affine: Affine<i8>,
}

impl Kernel for L1NormI8 {
    type Output = ();

    fn scalar(self) {
        // SAFETY: the contract of `l1_norm_i8_rows_raw`, the only constructor.
        unsafe { scalar::l1_norm_i8_rows(self.batch, self.gain, self.affine) }
    }

    #[inline(always)]
    fn vector<S: Simd>(self, _: S) {
        let L1NormI8 { batch, gain, affine } = self;
        // SAFETY: as in `scalar`; the token proves the CPU has `S`, and each
        // arm runs the passes written for exactly that level.
        unsafe {
            match S::ISA {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => pipeline::run::<avx2::Avx2Passes>(batch, gain, affine),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => avx512::run(batch, gain, affine),
                #[cfg(target_arch = "aarch64")]
                Isa::Neon => neon::run(batch, gain, affine),
                _ => scalar::l1_norm_i8_rows(batch, gain, affine),
            }
        }
    }
}

/// The float L1 norm of one row. Built only by [`l1_norm_float_raw`].
struct L1NormFloat<T: Element> {
    x: *const T,
    y: *mut T,
    n: usize,
    eps: T::Real,
    affine: Affine<T::Real>,
}

impl<T: Element> Kernel for L1NormFloat<T> {
    type Output = ();

    fn scalar(self) {
        let L1NormFloat { x, y, n, eps, affine } = self;
        // SAFETY: the contract of `l1_norm_float_raw`, the only constructor.
        unsafe { T::scalar_row(x, y, n, |x, y| scalar::l1_norm_float(x, y, n, eps, affine)) }
    }

    #[inline(always)]
    fn vector<S: Simd>(self, _: S) {
        let L1NormFloat { x, y, n, eps, affine } = self;
        // SAFETY: as in `scalar`; the token proves the CPU has `S`.
        unsafe { vector::l1_norm::<T::Vector<S>, T>(x, y, n, eps, affine) }
    }
}

/// The int8 L1 norm of every row of `batch` (see the module documentation
/// for the exact contract). The vector kernels interleave the passes of
/// consecutive rows (see `pipeline`), so batches run faster than single rows.
///
/// # Safety
/// Every x row must be valid for reading and every y row for writing `n`
/// elements; a y row is either its own x row, overlapping no other x row,
/// or overlaps no x row. Non-null
/// `affine` pointers must be valid for reading `n` elements. `gain` must be
/// positive and finite and `n < 2^32`. Panics when `isa` is not supported
/// by this CPU.
pub unsafe fn l1_norm_i8_rows_raw(isa: Isa, batch: RowBatch<i8>, gain: f32, affine: Affine<i8>) {
    dispatch::run(isa, L1NormI8 { batch, gain, affine })
}

/// The int8 L1 norm of one row of `n` elements from `x` into `y`.
///
/// # Safety
/// As for [`l1_norm_i8_rows_raw`] with one row.
pub unsafe fn l1_norm_i8_raw(isa: Isa, x: *const i8, y: *mut i8, n: usize, gain: f32, affine: Affine<i8>) {
    // SAFETY: one row under this function's contract.
    unsafe { l1_norm_i8_rows_raw(isa, RowBatch::single(x, y, n), gain, affine) }
}

/// The float L1 norm of one row: y = (x - mean) / (mean |x - mean| + eps),
/// then `* weight + bias` where given.
///
/// # Safety
/// As for [`l1_norm_i8_raw`] (without the gain).
pub unsafe fn l1_norm_float_raw<T: Element>(isa: Isa, x: *const T, y: *mut T, n: usize, eps: T::Real, affine: Affine<T::Real>) {
    dispatch::run(isa, L1NormFloat { x, y, n, eps, affine })
}

fn check_args<T>(what: &str, n: usize, weight: Option<&[T]>, bias: Option<&[T]>) {
    assert!((n as u64) < 1 << 32, "{what}: rows must be shorter than 2^32");
    for (name, v) in [("weight", weight), ("bias", bias)] {
        if let Some(v) = v {
            assert_eq!(v.len(), n, "{what}: {name} length differs from the row length");
        }
    }
}

/// The int8 L1 norm of `x` into `y` (same length) with the given
/// instruction set, output gain and optional int8 weight / bias.
pub fn l1_norm_i8(isa: Isa, x: &[i8], y: &mut [i8], gain: f32, weight: Option<&[i8]>, bias: Option<&[i8]>) {
    assert_eq!(x.len(), y.len(), "l1_norm_i8: input and output lengths differ");
    assert!(gain > 0.0 && gain.is_finite(), "l1_norm_i8: gain must be positive and finite");
    check_args("l1_norm_i8", x.len(), weight, bias);
    let affine = Affine::from_slices(weight, bias);
    // SAFETY: distinct slices of one length; weight and bias have it too.
    unsafe { l1_norm_i8_raw(isa, x.as_ptr(), y.as_mut_ptr(), x.len(), gain, affine) }
}

/// [`l1_norm_i8`] of every row of `n` elements of the contiguous rows `x`
/// into `y` (same length, a multiple of `n`; `n = 0` writes nothing).
pub fn l1_norm_i8_rows(isa: Isa, x: &[i8], y: &mut [i8], n: usize, gain: f32, weight: Option<&[i8]>, bias: Option<&[i8]>) {
    assert_eq!(x.len(), y.len(), "l1_norm_i8_rows: input and output lengths differ");
    assert!(n == 0 || x.len().is_multiple_of(n), "l1_norm_i8_rows: length is not a multiple of the row length");
    assert!(gain > 0.0 && gain.is_finite(), "l1_norm_i8_rows: gain must be positive and finite");
    check_args("l1_norm_i8_rows", n, weight, bias);
    let rows = x.len().checked_div(n).unwrap_or(0);
    let batch = RowBatch { x: x.as_ptr(), x_stride: n as isize, y: y.as_mut_ptr(), y_stride: n as isize, rows, n };
    // SAFETY: the batch covers the two distinct slices exactly; weight and
    // bias have length n.
    unsafe { l1_norm_i8_rows_raw(isa, batch, gain, Affine::from_slices(weight, bias)) }
}

/// [`l1_norm_i8`] in place.
pub fn l1_norm_i8_inplace(isa: Isa, y: &mut [i8], gain: f32, weight: Option<&[i8]>, bias: Option<&[i8]>) {
    assert!(gain > 0.0 && gain.is_finite(), "l1_norm_i8: gain must be positive and finite");
    check_args("l1_norm_i8", y.len(), weight, bias);
    let affine = Affine::from_slices(weight, bias);
    // One pointer for x and y, from the one mutable borrow.
    let p = y.as_mut_ptr();
    // SAFETY: `p` is valid for `y.len()` elements, in place.
    unsafe { l1_norm_i8_raw(isa, p.cast_const(), p, y.len(), gain, affine) }
}

/// The float L1 norm of `x` into `y` (same length).
pub fn l1_norm_float<T: Element>(isa: Isa, x: &[T], y: &mut [T], eps: T::Real, weight: Option<&[T::Real]>, bias: Option<&[T::Real]>) {
    assert_eq!(x.len(), y.len(), "l1_norm_float: input and output lengths differ");
    check_args("l1_norm_float", x.len(), weight, bias);
    let affine = Affine::from_slices(weight, bias);
    // SAFETY: distinct slices of one length; weight and bias have it too.
    unsafe { l1_norm_float_raw(isa, x.as_ptr(), y.as_mut_ptr(), x.len(), eps, affine) }
}

/// Rows of `n` pseudo-random int8 in [lo, hi] from a small LCG (the lib's
/// unit tests have no `rand`), for the per-level tests of `avx512` and
/// `neon`.
#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
fn lcg_rows(rows: usize, n: usize, lo: i32, hi: i32, seed: u64) -> Vec<i8> {
    let mut s = seed;
    (0..rows * n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (lo + ((s >> 33) % (hi - lo + 1) as u64) as i32) as i8
        })
        .collect()
}
