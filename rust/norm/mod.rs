//! RMSNorm, LayerNorm and CRMSNorm along a row, plus the fused
//! residual-add forms used in transformer inference.
//!
//! Every kernel computes y = (x - c) * r (* w + b) with, for a row of n:
//!
//! * [`Norm::Rms`]: c = 0, r = 1 / sqrt(sum x^2 / n + eps) (Zhang & Sennrich 2019).
//! * [`Norm::Layer`]: c = mean, r = 1 / sqrt(sum (x - c)^2 / n + eps): the
//!   biased variance with eps inside the square root, as in torch.
//! * [`Norm::Crms`]: CRMSNorm (Jiang et al. 2023, "Pre-RMSNorm and
//!   Pre-CRMSNorm Transformers"): x holds
//!   the first d - 1 entries of a zero-mean vector of d = n + 1, whose last
//!   entry is -sum x, so c = 0 and r = 1 / sqrt((sum x^2 + (sum x)^2) / d + eps).
//!
//! The fused forms first write s = x + residual, then normalize s while it
//! is in cache (one read of x and residual, one write of each output).
//!
//! # Accuracy
//!
//! No sum / sum-of-squares cancellation in LayerNorm. The vector kernels
//! sum d = x - K and d^2 with K = x[0] in the first pass (the shifted
//! data algorithm; Chan, Golub & LeVeque 1983), giving
//! var = (sum d^2 - (sum d)^2 / n) / n and the centre K + sum d / n as an
//! unevaluated sum. That is accurate when (mean - K)^2 <= 3 var (the
//! cancellation then costs at most a factor 4 on the rounding of the
//! sums), which the kernel checks; other rows take one more pass over
//! the row, now in cache, with the corrected two-pass formula around the
//! mean rounded to the element type (ibid., eq. 1.7). Either way a row of
//! 1e4 + N(0, 1) keeps full float32 precision. The outputs subtract the
//! centre in two parts, (x - c_hi) - c_lo, so the mean's own rounding
//! does not show either. The scalar reference works in f64 with the
//! corrected two-pass formula.
//!
//! Sums run in registers for blocks of `BLOCK` elements and are folded
//! into f64 totals (float32 rows of millions of elements keep their
//! digits); the reciprocal square root is taken once per row in f64.
//!
//! Rows whose sum of squares over- or underflows the element type (|x|
//! beyond ~1e18 or below ~1e-16 in float32, and all-zero or constant
//! rows) are recomputed on x * 2^k, a power of two that brings max |x| to
//! [1, 2) (exact), with eps scaled to match: huge and tiny rows are as
//! accurate as ordinary ones.
//!
//! The vector sums start their aligned main loop at the input row's first
//! register-aligned element, so results depend on the input (its values
//! and address) only, not on the outputs or the split over threads; the
//! same values at another address may differ in the last bit.
//!
//! # Row statistics
//!
//! On request ([`RowStats`]) a kernel also writes each row's centre c and
//! rstd = 1 / sqrt(q / d + eps), the numbers y was computed from, during
//! the same pass (ONNX LayerNormalization's Mean and InvStdDev outputs,
//! `torch.native_layer_norm`).
//!
//! # Special values
//!
//! A row holding NaN or +-inf becomes all NaN, for every norm, and so do
//! its statistics. (torch gives the same for layer_norm; its rms_norm
//! gives 0 for the finite entries of a row with an infinity.) An empty row
//! writes no y, and NaN statistics (the mean of no values, as `np.mean`).
//!
//! `scalar` holds the reference (f64 arithmetic, also the portable path),
//! `vector` the algorithm written once over [`Vector`](crate::simd::Vector);
//! each level reaches it through [`dispatch::run`].

pub mod scalar;
mod split;
mod vector;

pub use split::norm_split_raw;

use crate::dispatch::{self, Isa, Kernel};
pub use crate::l1norm::{Affine, RowBatch};
use crate::simd::{Element, Real, Simd};

/// Elements summed in registers before folding into the f64 totals.
pub(crate) const BLOCK: usize = 512;

/// Which normalization a kernel computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Norm {
    Rms,
    Layer,
    Crms,
}

impl Norm {
    pub const ALL: [Norm; 3] = [Norm::Rms, Norm::Layer, Norm::Crms];

    pub fn name(self) -> &'static str {
        match self {
            Norm::Rms => "rms",
            Norm::Layer => "layer",
            Norm::Crms => "crms",
        }
    }

    pub fn from_name(name: &str) -> Option<Norm> {
        Norm::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The divisor of the sum of squares: n, or d = n + 1 for CRMSNorm.
    pub(crate) fn divisor(self, n: usize) -> f64 {
        match self {
            Norm::Crms => n as f64 + 1.0,
            _ => n as f64,
        }
    }
}

/// The per-row constants of y = ((x * scale - c_hi) - c_lo) * r.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowConstants {
    /// 1, or the power of two applied to rows that needed rescaling.
    pub scale: f64,
    pub c_hi: f64,
    pub c_lo: f64,
    pub r: f64,
    /// The row's 1 / sqrt(var + eps) (its statistic): r * scale, except
    /// where r had to be capped (see [`inv_rms`]).
    pub rstd: f64,
}

impl RowConstants {
    /// The constants of a row multiplied by `scale`, centred at
    /// c_hi + c_lo, whose scaled mean square about the centre is `ms`.
    pub(crate) fn new(scale: f64, c_hi: f64, c_lo: f64, ms: f64, eps: f64) -> RowConstants {
        let (r, rstd) = inv_rms(ms, eps, scale);
        RowConstants { scale, c_hi, c_lo, r, rstd }
    }
}

/// (r, rstd) for a row whose (scaled) mean square is `ms`: the row was
/// multiplied by `scale`, so rstd = 1 / sqrt(ms / scale^2 + eps) and
/// r = rstd / scale multiplies the scaled values. Computed as
/// r = 1 / sqrt(ms + eps scale^2); or, when eps scale^2 overflows (ms is
/// then negligible) or underflows to 0 on a row with ms = 0 (a constant
/// float64 row of |x| ~ 1e160 or more, with eps > 0: 1 / sqrt(0) would be
/// +inf), from rstd = 1 / sqrt(eps). There r = rstd / scale can overflow
/// (a constant row near the float maximum, scale = 2^-1023); every x - c of
/// such a row is 0, and the largest finite r keeps 0 * r at 0.
pub(crate) fn inv_rms(ms: f64, eps: f64, scale: f64) -> (f64, f64) {
    let eps_scaled = eps * scale * scale;
    if eps_scaled.is_finite() && (ms > 0.0 || eps_scaled > 0.0 || eps == 0.0) {
        let r = 1.0 / (ms + eps_scaled).sqrt();
        (r, r * scale)
    } else {
        let rstd = 1.0 / eps.sqrt();
        ((rstd / scale).min(f64::MAX), rstd)
    }
}

/// The power of two that brings `amax` (finite, > 0) to [1, 2), capped so
/// it stays a normal number of `T` (subnormal rows then land near 2^-22 in
/// float32, where their squares are still normal).
pub(crate) fn rescale_factor<T: Real>(amax: f64) -> f64 {
    let max_exp = if T::MANTISSA_DIGITS == 24 { 127 } else { 1023 };
    let k = (-amax.log2().floor()).min(max_exp as f64);
    f64::ONE.scale_pow2(k)
}

/// A sum of squares computed in the element type is trusted when finite
/// and at least this (2^24 / 2^53 times the smallest normal): squares that
/// flushed to subnormals or zero then cannot matter. Otherwise the row is
/// rescaled (which also covers all-zero and constant rows).
pub(crate) fn safe_min<T: Real>() -> f64 {
    if T::MANTISSA_DIGITS == 24 {
        f64::ONE.scale_pow2(-102.0)
    } else {
        f64::ONE.scale_pow2(-969.0)
    }
}

/// Where a kernel writes each row's statistics: `mean`, the centre c the
/// row is normalized around (its mean for LayerNorm, 0 for RMSNorm and
/// CRMSNorm), and `rstd` = 1 / sqrt(q / d + eps) (see the module docs), so
/// that y = (x - mean) * rstd (* w + b). Each is computed in f64 and rounded
/// once to `T`. Row i of a batch writes element i of each; a null pointer
/// is not written ([`RowStats::NONE`] costs nothing).
#[derive(Clone, Copy, Debug)]
pub struct RowStats<T> {
    pub mean: *mut T,
    pub rstd: *mut T,
}

impl<T: Real> RowStats<T> {
    pub const NONE: RowStats<T> = RowStats { mean: std::ptr::null_mut(), rstd: std::ptr::null_mut() };

    /// From optional slices (their lengths are checked by the callers).
    pub fn from_slices(mean: Option<&mut [T]>, rstd: Option<&mut [T]>) -> RowStats<T> {
        let ptr = |s: Option<&mut [T]>| s.map_or(std::ptr::null_mut(), <[T]>::as_mut_ptr);
        RowStats { mean: ptr(mean), rstd: ptr(rstd) }
    }

    /// The statistics of row `i` (null pointers stay null; forming the
    /// pointers is safe, writing them is [`RowStats::write`]'s contract).
    #[inline(always)]
    pub(crate) fn row(self, i: usize) -> RowStats<T> {
        let at = |p: *mut T| if p.is_null() { p } else { p.wrapping_add(i) };
        RowStats { mean: at(self.mean), rstd: at(self.rstd) }
    }

    /// Writes the statistics of a row normalized with `k`; None (a row
    /// holding NaN or +-inf, or an empty row) writes NaN.
    ///
    /// # Safety
    /// The non-null pointers must be valid for writing one element.
    #[inline(always)]
    pub(crate) unsafe fn write(self, k: Option<&RowConstants>) {
        // SAFETY: this function's contract.
        unsafe {
            if !self.mean.is_null() {
                // The row was multiplied by `scale` (a power of two: exact).
                *self.mean = T::from_f64(k.map_or(f64::NAN, |k| (k.c_hi + k.c_lo) / k.scale));
            }
            if !self.rstd.is_null() {
                *self.rstd = T::from_f64(k.map_or(f64::NAN, |k| k.rstd));
            }
        }
    }
}

/// What a [`NormKernel`] computes.
enum NormWork<T> {
    /// One row, `x` into `y`.
    Row { x: *const T, y: *mut T, n: usize },
    /// Every row of a batch.
    Rows(RowBatch<T>),
    /// The fused form on one row: `sum` = x + residual, `y` = its norm.
    Add { x: *const T, residual: *const T, sum: *mut T, y: *mut T, n: usize },
}

/// A norm kernel call. Built only by the `unsafe` functions below, whose
/// callers vouch for every pointer in it.
struct NormKernel<T: Element> {
    kind: Norm,
    eps: f64,
    affine: Affine<T::Real>,
    stats: RowStats<T::Real>,
    work: NormWork<T>,
}

impl<T: Element> Kernel for NormKernel<T> {
    type Output = ();

    fn scalar(self) {
        let NormKernel { kind, eps, affine, stats, work } = self;
        // SAFETY: the pointers satisfy the contract of the constructor
        // (`norm_raw`, `norm_rows_raw` or `add_norm_raw`).
        unsafe {
            match work {
                NormWork::Row { x, y, n } => T::scalar_row(x, y, n, |x, y| scalar::norm(kind, x, y, n, eps, affine, stats)),
                NormWork::Rows(batch) => {
                    for i in 0..batch.rows {
                        let n = batch.n;
                        T::scalar_row(batch.x_row(i), batch.y_row(i), n, |x, y| scalar::norm(kind, x, y, n, eps, affine, stats.row(i)))
                    }
                }
                NormWork::Add { x, residual, sum, y, n } => scalar::add_norm(kind, x, residual, sum, y, n, eps, affine, stats),
            }
        }
    }

    #[inline(always)]
    fn vector<S: Simd>(self, _: S) {
        let NormKernel { kind, eps, affine, stats, work } = self;
        // SAFETY: as in `scalar`; the token proves the CPU has `S`.
        unsafe {
            match work {
                NormWork::Row { x, y, n } => vector::norm::<T::Vector<S>, T>(kind, x, y, n, eps, affine, stats),
                NormWork::Rows(batch) => vector::norm_rows::<T::Vector<S>, T>(kind, batch, eps, affine, stats),
                NormWork::Add { x, residual, sum, y, n } => {
                    vector::add_norm::<T::Vector<S>, T>(kind, x, residual, sum, y, n, eps, affine, stats)
                }
            }
        }
    }
}

/// The normalization `kind` of one row of `n` elements from `x` into `y`,
/// then `* weight + bias` where given (for every kind; the Python API
/// offers a bias for LayerNorm only).
///
/// # Safety
/// `x` must be valid for reading and `y` for writing `n` elements; they are
/// the same pointer (in place) or do not overlap. Non-null `affine`
/// pointers must be valid for reading `n` elements, non-null `stats`
/// pointers for writing one element, apart from everything else. Panics
/// when `isa` is not supported by this CPU.
#[allow(clippy::too_many_arguments)]
pub unsafe fn norm_raw<T: Element>(isa: Isa, kind: Norm, x: *const T, y: *mut T, n: usize, eps: f64, affine: Affine<T::Real>, stats: RowStats<T::Real>) {
    dispatch::run(isa, NormKernel { kind, eps, affine, stats, work: NormWork::Row { x, y, n } })
}

/// [`norm_raw`] of every row of `batch`, with the same results. The vector
/// kernels pipeline short rows (the first pass of the next row before the
/// rest of this one), and at avx512 take float32 and float64 LayerNorm
/// rows of 257 bytes to 1.5 KiB in blocks of eight (the block's constants
/// together; rows over 512 bytes in batches of up to 8 MiB) and float32
/// LayerNorm rows of at most 64 elements in blocks (batches of up to 4
/// MiB), as does avx2 for float32 except on AMD Zen 4
/// (`vector::in_layer_blocks`), so batches of such rows run faster than
/// single rows.
///
/// # Safety
/// Every x row must be valid for reading and every y row for writing `n`
/// elements; a y row is either its own x row, overlapping no other x row,
/// or overlaps no x row. Non-null
/// `stats` pointers must be valid for writing `batch.rows` elements, apart
/// from everything else. Otherwise as for [`norm_raw`].
pub unsafe fn norm_rows_raw<T: Element>(isa: Isa, kind: Norm, batch: RowBatch<T>, eps: f64, affine: Affine<T::Real>, stats: RowStats<T::Real>) {
    // SAFETY: the caller's contract; the batch is the whole call.
    unsafe { norm_rows_part_raw(isa, kind, batch, batch.rows, eps, affine, stats) }
}

/// [`norm_rows_raw`] of `batch`, one part of a call of `call_rows` rows
/// (the rows one thread takes): the path (rows one at a time or in
/// blocks) follows the size of the whole call, which says whether its
/// rows come from the caches or from memory, not the size of the part.
/// With two threads a call's parts are an eighth of it, so a 16 MiB array
/// would otherwise take the blocks from memory (1.34 of the time there).
///
/// # Safety
/// As for [`norm_rows_raw`]. `call_rows` only chooses the path: any value
/// is safe, and every path runs exactly the rows of `batch`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn norm_rows_part_raw<T: Element>(isa: Isa, kind: Norm, batch: RowBatch<T>, call_rows: usize, eps: f64, affine: Affine<T::Real>, stats: RowStats<T::Real>) {
    if kind == Norm::Layer && vector::in_layer_blocks::<T>(isa, dispatch::tuning(), batch.n, call_rows) {
        dispatch::run(isa, LayerBlocksKernel { eps, affine, stats, batch })
    } else {
        dispatch::run(isa, NormKernel { kind, eps, affine, stats, work: NormWork::Rows(batch) })
    }
}

/// A LayerNorm batch in blocks (`vector::layer_blocks`): a kernel of its
/// own, so that its code is compiled apart from the other norms' (see
/// `vector::in_layer_blocks`). Built only by [`norm_rows_part_raw`], whose
/// caller vouches for every pointer in it.
struct LayerBlocksKernel<T: Element> {
    eps: f64,
    affine: Affine<T::Real>,
    stats: RowStats<T::Real>,
    batch: RowBatch<T>,
}

impl<T: Element> Kernel for LayerBlocksKernel<T> {
    type Output = ();

    fn scalar(self) {
        let LayerBlocksKernel { eps, affine, stats, batch } = self;
        NormKernel { kind: Norm::Layer, eps, affine, stats, work: NormWork::Rows(batch) }.scalar()
    }

    #[inline(always)]
    fn vector<S: Simd>(self, _: S) {
        let LayerBlocksKernel { eps, affine, stats, batch } = self;
        // SAFETY: the pointers satisfy `norm_rows_raw`'s contract; the
        // token proves the CPU has `S` (and so its f64 register).
        unsafe { vector::layer_blocks::<T::Vector<S>, S::F64, T>(batch, eps, affine, stats) }
    }
}

/// The fused form: `sum` = x + residual, `y` = the normalization of `sum`
/// (`stats` those of `sum`).
///
/// # Safety
/// `x` and `residual` valid for reading, `sum` and `y` for writing `n`
/// elements. `sum` and `y` do not overlap; each of them is either `x`,
/// `residual`, or overlaps neither. Otherwise as for [`norm_raw`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn add_norm_raw<T: Element>(
    isa: Isa,
    kind: Norm,
    x: *const T,
    residual: *const T,
    sum: *mut T,
    y: *mut T,
    n: usize,
    eps: f64,
    affine: Affine<T::Real>,
    stats: RowStats<T::Real>,
) {
    dispatch::run(isa, NormKernel { kind, eps, affine, stats, work: NormWork::Add { x, residual, sum, y, n } })
}

fn check_args<W>(what: &str, n: usize, weight: Option<&[W]>, bias: Option<&[W]>) {
    for (name, v) in [("weight", weight), ("bias", bias)] {
        if let Some(v) = v {
            assert_eq!(v.len(), n, "{what}: {name} length differs from the row length");
        }
    }
}

/// The normalization `kind` of `x` into `y` (same length).
pub fn norm<T: Element>(isa: Isa, kind: Norm, x: &[T], y: &mut [T], eps: f64, weight: Option<&[T::Real]>, bias: Option<&[T::Real]>) {
    assert_eq!(x.len(), y.len(), "norm: input and output lengths differ");
    check_args("norm", x.len(), weight, bias);
    let affine = Affine::from_slices(weight, bias);
    // SAFETY: distinct slices of one length; weight and bias have that length.
    unsafe { norm_raw(isa, kind, x.as_ptr(), y.as_mut_ptr(), x.len(), eps, affine, RowStats::NONE) }
}

/// [`norm`] of every row of `n` elements of the contiguous rows `x` into
/// `y` (same length, a multiple of `n`; `n = 0` writes nothing).
#[allow(clippy::too_many_arguments)]
pub fn norm_rows<T: Element>(isa: Isa, kind: Norm, x: &[T], y: &mut [T], n: usize, eps: f64, weight: Option<&[T::Real]>, bias: Option<&[T::Real]>) {
    assert_eq!(x.len(), y.len(), "norm_rows: input and output lengths differ");
    assert!(n == 0 || x.len().is_multiple_of(n), "norm_rows: length is not a multiple of the row length");
    check_args("norm_rows", n, weight, bias);
    let rows = x.len().checked_div(n).unwrap_or(0);
    let batch = RowBatch { x: x.as_ptr(), x_stride: n as isize, y: y.as_mut_ptr(), y_stride: n as isize, rows, n };
    // SAFETY: the batch covers the two distinct slices exactly (rows * n
    // elements each); weight and bias have length n.
    unsafe { norm_rows_raw(isa, kind, batch, eps, Affine::from_slices(weight, bias), RowStats::NONE) }
}

/// [`norm_rows`] that also writes each row's statistics (see [`RowStats`])
/// into `mean` and `rstd`, one element per row: `x` holds `mean.len()`
/// rows of `n` (rows of `n = 0` get NaN statistics).
#[allow(clippy::too_many_arguments)]
pub fn norm_rows_stats<T: Element>(
    isa: Isa,
    kind: Norm,
    x: &[T],
    y: &mut [T],
    n: usize,
    eps: f64,
    weight: Option<&[T::Real]>,
    bias: Option<&[T::Real]>,
    mean: &mut [T::Real],
    rstd: &mut [T::Real],
) {
    let rows = mean.len();
    assert_eq!(rstd.len(), rows, "norm_rows_stats: mean and rstd lengths differ");
    assert!(x.len() == y.len() && rows.checked_mul(n) == Some(x.len()), "norm_rows_stats: x and y must hold mean.len() rows of n");
    check_args("norm_rows_stats", n, weight, bias);
    let batch = RowBatch { x: x.as_ptr(), x_stride: n as isize, y: y.as_mut_ptr(), y_stride: n as isize, rows, n };
    let stats = RowStats::from_slices(Some(mean), Some(rstd));
    // SAFETY: the batch covers the two distinct slices exactly (rows * n
    // elements each); weight and bias have length n; mean and rstd are two
    // more distinct slices of `rows` elements.
    unsafe { norm_rows_raw(isa, kind, batch, eps, Affine::from_slices(weight, bias), stats) }
}

/// [`norm`] in place.
pub fn norm_inplace<T: Element>(isa: Isa, kind: Norm, y: &mut [T], eps: f64, weight: Option<&[T::Real]>, bias: Option<&[T::Real]>) {
    check_args("norm", y.len(), weight, bias);
    let affine = Affine::from_slices(weight, bias);
    // One pointer for both x and y, from the one mutable borrow (a second
    // reborrow would invalidate the first under Stacked / Tree Borrows).
    let p = y.as_mut_ptr();
    // SAFETY: `p` is valid for `y.len()` elements, in place.
    unsafe { norm_raw(isa, kind, p.cast_const(), p, y.len(), eps, affine, RowStats::NONE) }
}

/// The fused form into separate outputs: `sum` = x + residual, `y` = the
/// normalization of `sum`.
#[allow(clippy::too_many_arguments)]
pub fn add_norm<T: Element>(
    isa: Isa,
    kind: Norm,
    x: &[T],
    residual: &[T],
    sum: &mut [T],
    y: &mut [T],
    eps: f64,
    weight: Option<&[T::Real]>,
    bias: Option<&[T::Real]>,
) {
    let n = x.len();
    assert!(residual.len() == n && sum.len() == n && y.len() == n, "add_norm: lengths differ");
    check_args("add_norm", n, weight, bias);
    let affine = Affine::from_slices(weight, bias);
    // SAFETY: four distinct slices of length n (x and residual may be the
    // same slice: both are only read).
    unsafe { add_norm_raw(isa, kind, x.as_ptr(), residual.as_ptr(), sum.as_mut_ptr(), y.as_mut_ptr(), n, eps, affine, RowStats::NONE) }
}

/// The fused form in place, as inference loops use it: `residual` becomes
/// x + residual and `x` its normalization.
pub fn add_norm_inplace<T: Element>(
    isa: Isa,
    kind: Norm,
    x: &mut [T],
    residual: &mut [T],
    eps: f64,
    weight: Option<&[T::Real]>,
    bias: Option<&[T::Real]>,
) {
    let n = x.len();
    assert_eq!(residual.len(), n, "add_norm_inplace: lengths differ");
    check_args("add_norm_inplace", n, weight, bias);
    let affine = Affine::from_slices(weight, bias);
    let (xp, rp) = (x.as_mut_ptr(), residual.as_mut_ptr());
    // SAFETY: two distinct mutable slices of length n: sum is residual's
    // buffer and y is x's, as `add_norm_raw` allows.
    unsafe { add_norm_raw(isa, kind, xp, rp, rp, xp, n, eps, affine, RowStats::NONE) }
}
