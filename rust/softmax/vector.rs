//! The softmax algorithms written once over a SIMD register type `V`.
//!
//! Every function here is `#[inline(always)]` and only meaningful when
//! inlined into the `#[target_feature]` trampoline of `dispatch::run`.
//! Sums are kept in registers for blocks of `BLOCK` elements (more where a
//! lane still adds at most 16 terms: `sum_block`, `PAIR_BLOCK`) and folded
//! into an f64 total, so float32 rows of millions of elements keep their
//! digits.

use super::ln::ln;
use super::scalar::{merge_pair, pair_ln_sum, two_pass_accept, TWO_PASS_X_LIMIT};
use super::Algorithm;
use crate::simd::exp::{exp_down_fast as exp_down, exp_fast as exp, exp_parts_fast as exp_parts, exp_parts_scalar};
use crate::l1norm::RowBatch;
use crate::dispatch::Isa;
use crate::simd::{prefetch, Real, Storage, Vector};

/// Elements summed in registers before folding into the f64 total. A lane
/// then adds at most 16 terms (`online`: one chain of 8 AVX2 float32
/// lanes; the other kernels: two or four chains), each rounding by at most
/// half an ulp of the lane's value, so a lane drifts by at most 16 * 2^-24 = 1e-6
/// relative even when every term rounds the same way. Found by the fuzzer:
/// 4096 let the AVX2 two-pass drift 3.5e-6 on constant rows; 512 let AVX2
/// `online` drift 3.7e-6 when one lane holds exp(0) = 1 and adds many terms
/// below its ulp (one 0 among 1062 values of -14.07).
const BLOCK: usize = 128;

/// Elements per block of [`sum_map`]'s two sum chains: 16 terms per lane,
/// `BLOCK`'s bound, and never fewer than `BLOCK`. Float32 rows take blocks
/// of 512 elements on AVX-512 and 256 on AVX2: a quarter and a half of the
/// block ends (each a horizontal sum, a conversion and an f64 add). AMD
/// Zen 4, AVX-512 (issue 11, round 37; `benches/ab/stack_depths.py`, both
/// orders): float32 softmax rows of 256 to 2000 elements took 0.94-0.99
/// of the time, rows of 30522 0.98-1.01; AVX2 0.99-1.02. A lane's sum can
/// now drop up to 15 terms below half its ulp where it dropped 3: on a
/// row of one 0 among values of -16.6 the relative error went from 1.9e-7
/// to 1.1e-6, inside the 2e-6 bound.
const fn sum_block<V: Vector>() -> usize {
    let sixteen_per_lane = 2 * 16 * V::LANES;
    if sixteen_per_lane > BLOCK { sixteen_per_lane } else { BLOCK }
}

/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub unsafe fn softmax<V, M>(algorithm: Algorithm, x: *const M, y: *mut M, n: usize)
where
    V: Storage<M> + Storage<<V as Vector>::Elem>,
{
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        match algorithm {
            // A short row keeps its exponentials in registers, whatever
            // its storage type.
            Algorithm::ThreePassReload if is_short::<V>(n) => {
                ShortRow::write(y, n, ShortRow::<V>::load(x, n).exp_sum());
            }
            // Stored exponentials would be rounded once more in a 16-bit
            // row: those keep them in a buffer of the compute type, or
            // recompute them when the row does not fit.
            Algorithm::ThreePassReload if size_of::<M>() >= size_of::<V::Elem>() => three_pass::<V, M, true>(x, y, n),
            Algorithm::ThreePassReload if n <= STAGE_MAX => three_pass_staged::<V, M>(x, y, n),
            Algorithm::ThreePassReload => three_pass::<V, M, false>(x, y, n),
            Algorithm::ThreePassRecompute => three_pass::<V, M, false>(x, y, n),
            Algorithm::TwoPass => two_pass::<V, M>(x, y, n),
            Algorithm::Online => online::<V, M>(x, y, n),
        }
    }
}

/// Rows of at most this many bytes go through [`softmax_rows`] as a
/// pipeline: while row i takes its exp-and-sum pass, row i + 1 has had its
/// max pass and row i - 1 waits for its write pass. A lone row's next pass
/// waits on its horizontal reduction, scalar exp or division; in the
/// pipeline those run while the neighbouring rows' vector passes do.
/// Three consecutive rows (input and output) stay in L1. Each row gets the
/// same operations in the same order as alone: results are bit-identical.
/// Up to 2 KiB until issue 11's round 14, when [`fused_rows`] measured
/// faster on AMD Zen 4 (`benches/ab`, rows of n float32 elements, B/A of
/// medians of 15 rounds, fused rows against this pipeline): AVX-512 n = 96
/// to 512 0.67-0.94, n = 128 in cache 0.96 and 1.03; AVX2 n = 128 to 512
/// 0.75-0.97, but n = 64 (which this pipeline keeps) 1.06. With AVX-512
/// every row this short is a [`ShortRow`]: the pipeline serves AVX2
/// (float32 rows of 33 to 64 elements, float64 of 17 to 32) and NEON.
const PIPELINE_MAX_BYTES: usize = 256;

/// Rows of at least this many elements take the pair form through
/// [`Vector::exp_down_n_first`] wherever a [`ShiftedExp`] evaluates it:
/// the exp-and-sum pass of three-pass softmax and log-softmax, both passes
/// of recompute, the online write pass and logsumexp's fallback sum. On
/// AVX-512 float32 that is the 16-entry table exp, whose every operation
/// waits on the row's exponent n(m): 10 operations per register on the
/// FMA port instead of 13 (with the sum's add), but in a short row that is
/// not pipelined the passes then wait for the max's reduction. Measured
/// with the form in every pair-form exponential (`benches/ab`, both builds
/// in one process, medians of 21 rounds, time ratio): rows of 1024 to
/// 30522, softmax 0.92-0.97, recompute 0.91-0.95, two-pass 0.91-0.95;
/// rows of 64 and 128, recompute 1.21-1.31, two-pass 1.12-1.20, logsumexp
/// 1.05-1.15 (an Intel Xeon, issue 11's round 9). Shorter rows and the
/// two-pass sums (two-pass, logsumexp) keep the polynomial form. On AMD
/// Zen 4 (round 27, both orders) the polynomial form here instead took
/// 0.94-1.08 of the time (faster on recompute, slower on log-softmax,
/// softmax either way; directions only, as unchanged kernels moved by up
/// to 9% in the same runs), and the table form in the two-pass sums and
/// write 1.02-1.08 in every cell where it ran (logsumexp, the sum alone,
/// 1.02-1.06).
const N_FIRST_MIN: usize = 256;

/// Whether [`softmax_rows`] pipelines rows of `n` elements of `M`.
fn pipelines_rows<M>(n: usize) -> bool {
    n * size_of::<M>() <= PIPELINE_MAX_BYTES
}

/// Rows of more than [`PIPELINE_MAX_BYTES`] and at most this many bytes,
/// stored in the compute type, go through [`fused_rows`] (three-pass-reload
/// softmax, which at AVX2 goes on to [`FUSED_LONG_MAX_BYTES`];
/// log-softmax above [`LOG_FUSED_MIN_BYTES`]).
/// Measured on AMD Zen 4 against the paths before (issue 11, round 14;
/// `benches/ab`, rows of n float32 elements, B/A of medians of 15 rounds;
/// two runs at AVX-512, one at AVX2):
///
/// * softmax (before: the pipeline up to 2 KiB, then rows one by one),
///   AVX-512: n = 128 0.79 / 0.92, 256 0.84 / 0.98, 384 0.83 / 0.79, 512
///   0.60 / 0.68, 1024 0.97 / 0.86 (4096 rows, from memory) and 0.88 /
///   0.89 (512 rows, in cache), 2048 1.00 / 0.89 (2048 rows) and 0.89 /
///   0.89 (256 rows); AVX2 0.63-0.96, n = 64 (not fused) 1.01;
/// * log-softmax (before: groups up to 2 KiB, then rows one by one),
///   AVX-512: n = 384 0.77 / 0.82, 512 0.77 / 0.77, 1024 1.00 / 0.99
///   (from memory) and 0.90 / 0.92 (in cache), 2048 1.01 / 0.98 and 0.90 /
///   0.90; AVX2 0.76-1.01;
/// * through the Python binding (AVX-512, both builds in one process,
///   medians of 21 rounds): float64 rows of 1.5 to 8 KiB softmax
///   0.76-0.96, log-softmax 0.73-0.88 (rows of 8 KiB in cache 1.02);
///   16-bit rows, which are not fused, 0.98-1.02.
///
/// Longer rows lost from memory in a first version (n = 3072 1.13, 4096
/// 1.19, 16384 1.14); softmax rows of n = 2048 from memory measured
/// 0.89-1.10 over six AVX-512 runs, and 0.86-0.89 in cache.
const FUSED_MAX_BYTES: usize = 8192;

/// Whether log-softmax fuses rows of `n` elements of `M`: at most
/// [`FUSED_MAX_BYTES`] (softmax: [`softmax_fused_max_bytes`]).
fn log_fuses_rows<M>(n: usize) -> bool {
    n * size_of::<M>() <= FUSED_MAX_BYTES
}

/// Softmax rows of more than [`FUSED_MAX_BYTES`] and at most this many
/// bytes go through [`fused_rows`] too at AVX2 (float32 rows, since round
/// 31, through [`next_max_in_exp_pass`]; [`softmax_fused_max_bytes`]).
/// Measured on AMD Zen 3 at AVX2 (issue 11,
/// round 30; `benches/ab/threads.py`, both builds through the binding, one
/// thread, 15-21 rounds, both orders; time fused / not), float32: calls
/// of 8 MiB with rows of 12288 to 32768 elements 0.94-0.98; 64x30522
/// 0.93-0.95; calls of 2 MiB 0.97-1.00, but 16 rows of 32768 1.02-1.04
/// and 32 rows of 16384 0.98-1.00 in two runs, 1.02-1.06 in a third; 8
/// rows of 65536 0.98-1.01; float64 64x30522 0.97-1.01. Log-softmax
/// rows of this length took 0.99-1.13 in calls of 2 MiB and 0.93-1.04 in
/// calls of 8 MiB, so they stay at [`FUSED_MAX_BYTES`]. Softmax on 32
/// rows of 16384 float32 elements (64 KiB, a multiple of 4 KiB) lost
/// 4-5% where the output lay 16 or 64 bytes above the input modulo 4 KiB
/// (128 such rows gained at offset 16): a load of row i + 1 then matches
/// a recent store to row i in its low 12 bits, which 4K aliasing would
/// explain (no counters here). On AMD Zen 4 at AVX2 (`NORMKIT_ISA=avx2`;
/// round 33, the same method with both builds aligned to 64 bytes, 15
/// rounds, one run per order), float32: 64x30522 0.94-0.95, 16x30522
/// 0.97-0.99, 64x4096 0.95, 128x8192 0.94-0.95, 8x65536 0.96, but
/// 32x16384 1.06-1.08. Until then Zen 4 had been left out, by inference
/// from round 14's AVX-512 rows. AVX-512 and NEON were not measured with
/// the fused long rows since round 14 (round 21 measured the next row's
/// max in the exp pass of long rows at AVX-512 on Zen 4: it lost).
const FUSED_LONG_MAX_BYTES: usize = 256 << 10;

/// The longest rows, in bytes, that [`softmax_rows`] fuses at `isa`
/// ([`FUSED_MAX_BYTES`], [`FUSED_LONG_MAX_BYTES`]).
pub fn softmax_fused_max_bytes(isa: Isa) -> usize {
    if isa == Isa::Avx2 {
        FUSED_LONG_MAX_BYTES
    } else {
        FUSED_MAX_BYTES
    }
}

/// Every row of `batch` in three passes, the first pass of row i + 1 (its
/// max) fused into the loop of row i's last pass: the loads of the next
/// row then overlap the in-place update of this one, which runs from L1
/// (L2 for rows longer than L1).
/// `middle(x, y, m)` is a row's middle pass for its max `m`; it returns the
/// row's last pass, applied in place to `y`, or `None` when it has left
/// the row finished. Each row gets the same operations as alone: results
/// are bit-identical. Row i + 1's input is read while row i's output is
/// written, which the batch contract makes safe: each output row is its
/// input row or disjoint from every row.
///
/// # Safety
/// As for [`softmax_rows`], with `middle` safe for each row's `x` and `y`.
#[inline(always)]
unsafe fn fused_rows<V: Storage<M>, M, F: WriteValue<V>>(batch: &RowBatch<M>, mut middle: impl FnMut(*const M, *mut M, V::Elem) -> Option<F>) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and rows i < batch.rows are valid with the aliasing it names.
    unsafe {
        let (rows, n) = (batch.rows, batch.n);
        let ahead = prefetch::Ahead::current();
        let mut m = row_max::<V, M>(batch.x_row(0), n);
        for i in 0..rows {
            let y = batch.y_row(i);
            let last = middle(batch.x_row(i), y, m);
            if i + 1 == rows {
                if let Some(f) = last {
                    update_in_place::<V, M, F>(y, n, &f);
                }
                break;
            }
            m = match last {
                Some(f) => row_max_alongside::<V, M>(
                    batch.x_row(i + 1),
                    n,
                    #[inline(always)]
                    |j, count| update_register::<V, M, F>(ahead, y, j, count, &f),
                ),
                None => row_max::<V, M>(batch.x_row(i + 1), n),
            };
        }
    }
}

/// Softmax of each row of `batch`; three-pass-reload rows pipelined: in
/// registers when they are short ([`is_short`], every storage type), else
/// up to [`PIPELINE_MAX_BYTES`] when stored in the compute type, and up to
/// `fused_max_bytes` ([`softmax_fused_max_bytes`]) with the next row's
/// max in the last pass ([`fused_rows`]), or in the exp pass where that
/// is staged ([`next_max_in_exp_pass`]); at AVX-512 and AVX2, rows of up
/// to 1 KiB of those in blocks of rows ([`row_block`]).
///
/// # Safety
/// The CPU must have the instruction set of `V`; the batch's rows must be
/// valid (the contract of `softmax_rows_raw`: x and y rows of `n`
/// elements, each output row its input row or disjoint from every row).
#[inline(always)]
pub unsafe fn softmax_rows<V, M>(algorithm: Algorithm, batch: RowBatch<M>, fused_max_bytes: usize)
where
    V: Storage<M> + Storage<<V as Vector>::Elem>,
{
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and rows i < batch.rows are valid with the aliasing it names.
    unsafe {
        let (rows, n) = (batch.rows, batch.n);
        if algorithm == Algorithm::ThreePassReload && is_short::<V>(n) && rows > 1 {
            return short_reload_pipeline::<V, M>(&batch);
        }
        if algorithm == Algorithm::ThreePassReload && size_of::<M>() >= size_of::<V::Elem>() && pipelines_rows::<M>(n) && rows > 1 {
            return three_pass_reload_pipeline::<V, M>(&batch);
        }
        if algorithm == Algorithm::ThreePassReload && size_of::<M>() >= size_of::<V::Elem>() && n * size_of::<M>() <= fused_max_bytes && rows > 1 {
            if stages_exp::<V, M>(n) {
                return next_max_in_exp_pass::<V, M>(&batch);
            }
            let mut batch = batch;
            let block_rows = row_block::<V, M>(n);
            if block_rows > 0 && rows >= block_rows {
                let blocked = rows - rows % block_rows;
                if block_rows == 16 {
                    row_blocks::<V, M, 16>(&batch, blocked);
                } else {
                    row_blocks::<V, M, 8>(&batch, blocked);
                }
                if blocked == rows {
                    return;
                }
                // The last rows, fewer than a block, fused as before.
                batch = RowBatch { x: batch.x_row(blocked), y: batch.y_row(blocked), rows: rows - blocked, ..batch };
            }
            return fused_rows::<V, M, _>(
                &batch,
                #[inline(always)]
                |x, y, m| {
                    let (_, r) = exp_sum_or_nan_row::<V, M, true>(x, y, n, m, true)?;
                    Some(Scale(V::splat(r)))
                },
            );
        }
        for i in 0..rows {
            softmax::<V, M>(algorithm, batch.x_row(i), batch.y_row(i), n);
        }
    }
}

/// The longest rows, in bytes, that [`row_blocks`] takes in blocks of 16
/// and of 8 rows: a block's outputs (up to 8 KiB) are read back from L1
/// in the last pass.
const ROW_BLOCK_16_MAX_BYTES: usize = 512;
const ROW_BLOCK_8_MAX_BYTES: usize = 1024;

/// How many rows of `n` elements of `M` (the compute type) [`softmax_rows`]
/// takes per block ([`row_blocks`]), or 0 for none: at AVX-512 and AVX2
/// (registers of 512 and 256 bits), of the rows it is asked about
/// (longer than the pipelined ones: [`is_short`], [`PIPELINE_MAX_BYTES`]),
/// those that take the pair form without [`N_FIRST_MIN`]'s table in one
/// sum block ([`sum_block`]): 16 rows of at most
/// [`ROW_BLOCK_16_MAX_BYTES`] (float32 rows of 65 to 128 elements,
/// float64 of 33 to 64), 8 of at most [`ROW_BLOCK_8_MAX_BYTES`] (float32
/// 129 to 255, float64 65 to 128).
///
/// Measured on AMD Zen 4 (issue 11, round 40; both builds and a copy of
/// the first in one process through the binding, medians of 15 rounds
/// over six stack depths, one run in each order; time / rows one at a
/// time in [`fused_rows`]; the copies 0.985-1.014 in these runs):
///
/// * blocks of 16: float32 64x128 0.91, 8192x128 0.89-0.91, 64x96
///   0.91-0.93, 4096x80 0.85-0.86, 16x128 0.93; float64 64x64 0.83-0.86,
///   8192x64 0.79-0.83, 4096x40 0.73-0.76;
/// * blocks of 8 (against blocks of 16 only): float32 64x200 0.78-0.88,
///   4096x160 0.89-0.90, 64x129 0.96, 4096x250 1.00-1.01; float64 64x100
///   0.98, 4096x80 0.93, 4096x120 0.945-0.949.
///
/// AVX2 (round 41, the same Zen 4 at `NORMKIT_ISA=avx2`, time / rows one
/// at a time, one run in each order of 11 or 15 rounds, and for 64x128,
/// 8192x128, 64x80, 4096x250 and float64 4096x128 a second in each order
/// of 21 rounds, which alone had 16x128; copies 0.92-1.15 in the noisiest run,
/// 1.00-1.02 in the quietest): float32
/// 4096x80 0.81-0.82, 64x80 0.84-0.85 (one run 1.02), 4096x100 0.91,
/// 64x128 0.90-0.98, 8192x128 0.91-0.96 (one run 1.10), 16x128 0.94,
/// 64x160 and 4096x160 0.90-0.94, 64x200 0.91-0.95, 4096x250 0.96-1.00;
/// float64 4096x40 0.74-0.84, 64x64 0.95-0.97, 4096x100 0.83-0.94,
/// 4096x128 0.88-0.95, 4096x64 0.94 and 1.09 (its copy 1.15). Round 40
/// had measured float32 rows of 128 at 1.01-1.02 in one run.
///
/// Not taken (one run each): float32 rows of 256 to 512 in blocks of 16
/// 1.05-1.42 (their block outgrows L1), rows of 256 (the table form) in
/// blocks of 8 1.01-1.02; rows of at most four registers, which stay
/// [`ShortRow`]s, 0.99-1.37 (64x64 0.85, its copy 0.87). NEON (128-bit
/// registers) keeps rows one at a time: not measured.
#[inline(always)]
fn row_block<V: Vector, M>(n: usize) -> usize {
    let bytes = n * size_of::<M>();
    if size_of::<V>() < 32 || n > sum_block::<V>() || n >= N_FIRST_MIN {
        0
    } else if bytes <= ROW_BLOCK_16_MAX_BYTES {
        16
    } else if bytes <= ROW_BLOCK_8_MAX_BYTES {
        8
    } else {
        0
    }
}

/// Rows `0..blocked` (a multiple of `R`) of `batch`, `R` rows (16 or 8) at
/// a time, each pass over the whole block before the next: the maxes,
/// the exponentials and their sums, the scaling. Row by row, each pass
/// waits for the reductions at the end of the one before (the max, the
/// sum, the division: about 50 cycles a row on AMD Zen 4, round 39); here
/// the core overlaps them with the other rows' passes, and a block's
/// sixteen sums take one transposed reduction ([`Vector::reduce_add16`]).
/// Each row gets the operations of [`exp_sum_or_nan_row`] in one sum
/// block: the same bits as one at a time. Rows whose max is not finite
/// or far from 0 (the plain form) go alone. Row j + 1's input is read
/// after row j's output is written, which the batch contract makes safe
/// (each output row is its input row or disjoint from every row).
///
/// # Safety
/// As for [`softmax_rows`]; `blocked <= batch.rows`, and `R` is
/// [`row_block`] of the rows.
#[inline(always)]
unsafe fn row_blocks<V: Storage<M>, M, const R: usize>(batch: &RowBatch<M>, blocked: usize) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and rows i < blocked <= batch.rows are valid with the aliasing it names.
    unsafe {
        let n = batch.n;
        let ahead = prefetch::Ahead::current();
        let mut first = 0;
        while first < blocked {
            let mut m = [V::Elem::ZERO; R];
            for (j, mj) in m.iter_mut().enumerate() {
                *mj = row_max::<V, M>(batch.x_row(first + j), n);
            }
            let mut sums = [V::splat(V::Elem::ZERO); R];
            let mut alone = [false; R];
            for j in 0..R {
                let shifted = ShiftedExp::<V>::new(m[j], n);
                let (x, y) = (batch.x_row(first + j), batch.y_row(first + j));
                if m[j].is_finite() && shifted.pairs {
                    sums[j] = block_exp_sum::<V, M, M, WriteExp, true, false>(x, y, 0, n, &shifted, true, ahead);
                } else {
                    alone[j] = true;
                }
            }
            // Sixteen sums in one transposed reduction, eight one by one.
            let mut total = [V::Elem::ZERO; R];
            if let (Ok(sums16), Ok(total16)) = (<&[V; 16]>::try_from(&sums[..]), <&mut [V::Elem; 16]>::try_from(&mut total[..])) {
                *total16 = V::reduce_add16(sums16);
            } else {
                for (t, s) in total.iter_mut().zip(&sums) {
                    *t = s.reduce_add();
                }
            }
            for j in 0..R {
                let y = batch.y_row(first + j);
                if alone[j] {
                    if let Some((_, r)) = exp_sum_or_nan_row::<V, M, true>(batch.x_row(first + j), y, n, m[j], true) {
                        scale_in_place::<V, M>(y, n, r);
                    }
                    continue;
                }
                // As sum_map's total of one block: 0 + the block's sum.
                let sum = total[j].to_f64();
                if sum.is_finite() {
                    scale_in_place::<V, M>(y, n, V::Elem::from_f64(1.0 / sum));
                } else {
                    fill::<V, M>(y, n, V::Elem::NAN);
                }
            }
            first += R;
        }
    }
}

/// Every row of `batch` in three passes, the first pass of row i + 1 (its
/// max) taken in the loop of row i's exp-and-sum pass
/// ([`sum_map_staged`]), whose exponentials leave the load ports idle;
/// the last pass scales row i alone, in place. For rows of more than
/// [`FUSED_MAX_BYTES`] that [`stages_exp`], up to
/// [`softmax_fused_max_bytes`]. Each row gets the same operations as
/// alone, and row i + 1's max is taken in [`row_max`]'s chains: results
/// are bit-identical. Row i + 1's input is read while row i's output is
/// written, which the batch contract makes safe (each output row is its
/// input row or disjoint from every row).
///
/// Measured on AMD Zen 3 at AVX2 (issue 11, round 31;
/// `benches/ab/threads.py`, both builds through the binding, one thread,
/// 15 rounds, both orders; time / that of [`fused_rows`], which took the
/// next row's max in the last pass), float32, with the staged exponential
/// ([`stages_exp`]): with both builds' functions and jump targets aligned
/// to 64 bytes (`-C llvm-args=-align-all-functions=6
/// -C llvm-args=-align-all-nofallthru-blocks=6`), 64x30522 0.94 / 0.95,
/// rows of 4096 to 30522 in calls of 2 and 8 MiB 0.89-0.97; in default
/// builds, 64x30522 took 0.91-1.01 over three runs, and between builds
/// of different source unchanged kernels moved by up to 8%. The next row's max in
/// the exp pass without the staged exponential took 0.97-0.98 on 64x30522
/// but 1.01-1.03 on rows of 4096 and 8192 in calls of 2 MiB; round 21 had
/// measured it at AVX-512 on AMD Zen 4, where it lost 1-14%.
///
/// # Safety
/// As for [`softmax_rows`]; the rows [`stages_exp`].
#[inline(always)]
unsafe fn next_max_in_exp_pass<V: Storage<M>, M>(batch: &RowBatch<M>) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and rows i < batch.rows are valid with the aliasing it names.
    unsafe {
        let (rows, n) = (batch.rows, batch.n);
        let mut m = row_max::<V, M>(batch.x_row(0), n);
        for i in 0..rows {
            let (x, y) = (batch.x_row(i), batch.y_row(i));
            let last = i + 1 == rows;
            let shifted = ShiftedExp::<V>::new(m, n);
            let (r, m_next) = if !last && m.is_finite() && shifted.pairs {
                let (sum, m_next) = sum_map_staged::<V, M, M, WriteExp, true>(x, y, n, &shifted, true, batch.x_row(i + 1));
                if sum.is_finite() {
                    (Some(V::Elem::from_f64(1.0 / sum)), m_next)
                } else {
                    fill::<V, M>(y, n, V::Elem::NAN);
                    (None, m_next)
                }
            } else {
                // The last row, and rows whose max is not finite or far
                // from 0 (the plain form): the next max in a pass of its
                // own, called here rather than in a closure, whose
                // intrinsics would not inline (`.ci/check-inlined`).
                let r = exp_sum_or_nan_row::<V, M, true>(x, y, n, m, true).map(|(_, r)| r);
                (r, if last { V::Elem::NEG_INFINITY } else { row_max::<V, M>(batch.x_row(i + 1), n) })
            };
            if let Some(r) = r {
                scale_in_place::<V, M>(y, n, r);
            }
            m = m_next;
        }
    }
}

/// Runs three stages over rows `0..rows`, staggered so that neighbouring
/// rows' work overlaps: `first` of row i + 1, then `second` of row i (on
/// `first`'s result), then `third` of row i - 1 (on `second`'s). Every
/// stage is called with a row index below `rows` only, and each row gets
/// its stages in order and the same operations as alone: results are
/// bit-identical. Row i + 1 is only read before row i's output is written,
/// so in-place rows are safe as long as `first` only reads. The stages are
/// passed as `#[inline(always)]` closures so that their intrinsics inline
/// into the caller's instruction set.
#[inline(always)]
fn staggered_rows<A: Copy, B>(rows: usize, mut first: impl FnMut(usize) -> A, mut second: impl FnMut(usize, A) -> B, mut third: impl FnMut(usize, B)) {
    if rows == 0 {
        return;
    }
    let mut next = first(0);
    // Row i - 1 and its second stage's result, waiting for the third.
    let mut pending: Option<(usize, B)> = None;
    for i in 0..rows {
        let current = next;
        if i + 1 < rows {
            next = first(i + 1);
        }
        let done = second(i, current);
        if let Some((prev, result)) = pending.take() {
            third(prev, result);
        }
        pending = Some((i, done));
    }
    if let Some((prev, result)) = pending {
        third(prev, result);
    }
}

/// [`three_pass`] (reload) of every row of `batch` (at least one row),
/// pipelined ([`PIPELINE_MAX_BYTES`]): max of row i + 1, exp-and-sum of
/// row i, scaling of row i - 1.
///
/// # Safety
/// As for [`softmax_rows`].
#[inline(always)]
unsafe fn three_pass_reload_pipeline<V: Storage<M>, M>(batch: &RowBatch<M>) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the rows the caller vouched for.
    unsafe {
        let n = batch.n;
        staggered_rows(
            batch.rows,
            #[inline(always)]
            |i| row_max::<V, M>(batch.x_row(i), n),
            // 1 / sum, or None for a row exp_sum_or_nan_row filled with NaN.
            #[inline(always)]
            |i, m| exp_sum_or_nan_row::<V, M, true>(batch.x_row(i), batch.y_row(i), n, m, true).map(|(_, r)| r),
            #[inline(always)]
            |i, r: Option<V::Elem>| {
                if let Some(r) = r {
                    scale_in_place::<V, M>(batch.y_row(i), n, r);
                }
            },
        );
    }
}

/// Registers of a short row ([`is_short`]).
const SHORT_REGS: usize = 4;

/// Whether three-pass reload takes a row of `n` elements in registers
/// ([`ShortRow`]): loaded once, its exponentials kept in registers and
/// scaled there, instead of stored and read back; no loops. For rows of
/// every storage type: 16-bit rows are computed in the compute type and
/// rounded once, as [`three_pass_staged`] does. Measured (`benches/ab`,
/// both builds in one process, medians of 21 rounds, time / the passes'
/// time, float32, two runs unless one is given): AVX-512 rows of 64 in L2
/// (2048 rows) 0.69 / 0.77, 65536 rows of 64 (from memory) 0.96 / 0.91,
/// rows of 32 0.78 / 0.70, of 48 0.64 (one run); AVX2 rows of 16 0.93, of
/// 32 1.01 (one run; its 16 registers hold the exponential's constants
/// too). 16-bit rows were not measured. Eight registers (AVX-512 rows up
/// to 128) spilled: rows of 32 and 64 1.29-1.41 against four, rows of 128
/// 0.91 (64 rows) and 1.15 (16384).
#[inline(always)]
fn is_short<V: Vector>(n: usize) -> bool {
    n <= SHORT_REGS * V::LANES
}

/// Whether log-softmax sums a short row ([`is_short`]) of `n` elements in
/// the plain form exp(x - m) ([`ShiftedExp::plain`]) rather than the pair
/// form: for rows of at most two registers. At AVX-512 float32, whose pair
/// form has the same polynomial, the plain form takes one operation more
/// per register (x - m and a two-sided clamp, against a one-sided clamp and
/// k - n), and its exponentials also wait for the row max, which the pair
/// form needs only for its last scaling; at AVX2 the pair form is a table
/// lookup and a shorter polynomial. But it needs no row constant c, whose
/// exponential and division are a row cost (issue 11, round 43). exp(0) is
/// exactly 1, as c / c was, so a one-element row's result is exactly 0 and
/// every sum is at least 1. Measured on AMD Zen 4 (issue 11, round 44;
/// log-softmax through the binding, both builds and a copy of the first in
/// one process, medians of 11 rounds at six stack depths, one run in each
/// order; time / main's): AVX-512 float32 rows of 8 0.91, of 16 0.93-0.96,
/// of 32 1.00, float64 rows of 4 and 8 0.79-0.80, of 16 0.91-0.92; AVX2
/// float32 rows of 8 0.75-0.78, of 16 0.87-0.89, float64 rows of 4
/// 0.84-0.86, of 8 1.02. Longer short rows in the plain form as well (a
/// build not kept, against main): AVX-512 float32 rows of three and four
/// registers 1.08-1.12; AVX2 float32 rows of three 0.99, of four 1.04-1.05,
/// float64 of three 1.09 and of four 1.23-1.24. Only AVX-512 float64 would
/// have gained there (three and four registers 0.95-0.98); one rule for
/// every level keeps it simple. NEON: not measured.
#[inline(always)]
fn log_sums_plain<V: Vector>(n: usize) -> bool {
    n <= 2 * V::LANES
}

/// The registers of a short row of `n` elements ([`is_short`]) that hold
/// elements of it.
#[inline(always)]
fn short_regs<V: Vector>(n: usize) -> usize {
    n.div_ceil(V::LANES)
}

/// How much of one register a short row of `n` elements fills, as the
/// `PART` of [`Vector::reduce_add_part`] and [`ShortRow`]: 4 for at most a
/// quarter of its lanes, 2 for at most half, 1 otherwise, and 1 at levels
/// where the parts take no fewer steps ([`Vector::PART_REDUCTIONS`]). The
/// batch loops take it as a constant, once per batch: chosen row by row
/// (a `match` on `n` in the reductions), the same reductions left AVX-512
/// softmax on float32 rows of 8 at 0.97-1.00x the time and on rows of 16,
/// which they do not shorten, at 1.10-1.14x (issue 11, round 46, one run
/// in each order of two builds).
#[inline(always)]
fn register_part<V: Vector>(n: usize) -> usize {
    if !V::PART_REDUCTIONS {
        1
    } else if n <= V::LANES / 4 {
        4
    } else if n <= V::LANES / 2 {
        2
    } else {
        1
    }
}

/// The max of a short row's registers `regs` (as [`ShortRow::load`] loads
/// them), over the registers that hold elements of the row when those are
/// one or two: the others hold -inf, and max(a, -inf) is a for every a but
/// NaN, so leaving them out shortens the row's chain by one or two
/// maxes and changes no bit of the max of a row without NaN. A row that
/// fills at most LANES / `PART` lanes of one register leaves out the
/// halving steps over the other lanes too ([`Vector::reduce_max_part`]).
/// In a row with NaN the max may differ (NaN, or below the largest
/// element); softmax fills such a row with NaN either way, and the plain
/// form of log-softmax's rows of at most two registers gives NaN of the
/// same bits for any shift.
/// Rows of three and four registers combine all four as [`row_max`]
/// does: three registers and -inf take as many steps, and a different
/// max there could switch log-softmax's form and with it a NaN's sign.
#[inline(always)]
fn short_max<V: Vector, const PART: usize>(regs: &[V; SHORT_REGS], n: usize) -> V::Elem {
    const { assert!(SHORT_REGS == 4) };
    match short_regs::<V>(n) {
        0 | 1 => regs[0].reduce_max_part::<PART>(),
        2 => regs[0].max(regs[1]).reduce_max(),
        _ => max_of_chains(*regs),
    }
}

/// The lane sums of a short row's exponentials `e` (registers past the
/// row hold 0), in two chains over the registers that hold elements of the
/// row, (e0 + e2) + (e1 + e3). Every exponential is NaN, +0 or positive
/// (no form gives -0), so adding the zero registers, as this did before
/// (each chain began at 0), changes no value; it only lengthens each
/// row's chain. (Which of two NaNs with different payloads a sum passes on
/// is the compiler's choice, which may swap an add's operands: in rows of
/// three registers it changed with this function.) For rows of more than
/// two registers the order differs from [`sum_map`]'s, which adds the
/// whole registers in one chain. Measured against the four registers
/// (issue 11, round 45; both builds through the binding in one process,
/// one run per order): AVX-512 float32 rows of 8 to 32 softmax 0.83-0.88
/// of the time, log-softmax 0.86-0.95, float64 rows of 4 to 16 0.90-0.95
/// and 0.85-0.93; AVX2 float32 rows of 8 and 16 0.89-0.95, float64 rows
/// of 16 (four registers) 0.96-1.03.
#[inline(always)]
fn short_sum<V: Vector>(e: &[V; SHORT_REGS], n: usize) -> V {
    const { assert!(SHORT_REGS == 4) };
    match short_regs::<V>(n) {
        0 | 1 => e[0],
        2 => e[0].add(e[1]),
        3 => e[0].add(e[2]).add(e[1]),
        _ => e[0].add(e[2]).add(e[1].add(e[3])),
    }
}

/// A short row ([`is_short`]) in registers, and its max. `PART` > 1 for
/// rows that fill at most LANES / `PART` lanes of one register
/// ([`register_part`]), whose max and sum take fewer steps.
#[derive(Clone, Copy)]
struct ShortRow<V: Vector, const PART: usize = 1> {
    /// Register c holds x[c LANES..]; lanes past n hold -inf, whose
    /// exponential is 0.
    regs: [V; SHORT_REGS],
    m: V::Elem,
    n: usize,
}

/// A short row's exponentials exp(x - m) c (lanes past n: 0) and 1 / their
/// sum; `None` for a row whose softmax is NaN.
type ShortExp<V> = Option<([V; SHORT_REGS], <V as Vector>::Elem)>;

impl<V: Vector, const PART: usize> ShortRow<V, PART> {
    /// Loads the row `x` of `n` elements and takes its max. `n` must be at
    /// most LANES / `PART` if `PART` > 1, or the max and the sum may miss
    /// elements.
    ///
    /// # Safety
    /// The CPU must have the instruction set of `V`; `x` must be valid for
    /// reading `n <= SHORT_REGS * LANES` elements.
    #[inline(always)]
    unsafe fn load<M>(x: *const M, n: usize) -> Self
    where
        V: Storage<M>,
    {
        // SAFETY: this function's contract: the CPU has the instruction set of V,
        // and every load below stays inside x[0..n).
        unsafe {
            prefetch::Ahead::current().fetch(x, SHORT_REGS * V::LANES * size_of::<M>());
            let regs = V::load_registers::<SHORT_REGS>(x, n, V::Elem::NEG_INFINITY);
            debug_assert!(PART == 1 || n <= V::LANES / PART);
            ShortRow { regs, m: short_max::<V, PART>(&regs, n), n }
        }
    }

    /// The exponentials and 1 / sum, as [`exp_sum_or_nan_row`] computes
    /// them: `None` when the max is not finite or a NaN or +inf entry
    /// poisons the sum.
    ///
    /// # Safety
    /// The CPU must have the instruction set of `V`.
    #[inline(always)]
    unsafe fn exp_sum(&self) -> ShortExp<V> {
        // SAFETY: this function's contract: the CPU has the instruction set of V.
        unsafe {
            if !self.m.is_finite() {
                return None;
            }
            let (e, sum) = self.exps_and_sum(&ShiftedExp::<V>::new(self.m, self.n));
            sum.is_finite().then(|| (e, V::Elem::from_f64(1.0 / sum)))
        }
    }

    /// Log-softmax's shift m and sum exp(x - m), as [`log_softmax_max`]
    /// and [`log_softmax_sum`] compute them but with the max and the sum in
    /// [`ShortRow::exp_sum`]'s order ([`short_max`], whose max of a row
    /// with NaN may differ from [`row_max`]'s), and in the plain form for
    /// rows of at most two registers ([`log_sums_plain`]).
    ///
    /// # Safety
    /// The CPU must have the instruction set of `V`.
    #[inline(always)]
    unsafe fn log_sum(&self) -> (V::Elem, f64) {
        // SAFETY: this function's contract: the CPU has the instruction set of V.
        unsafe {
            if log_sums_plain::<V>(self.n) {
                // Here rather than in log_softmax_shift, which would then
                // return the plain form too and leave the division by
                // c = 1 below: that build gave the same bits but took
                // 1.04-1.06x this one's time on AVX-512 rows of one
                // register (0.97-0.99 on two) and 1.12-1.21x on AVX2 rows
                // of one and two (issue 11, round 44, one run; why was not
                // examined).
                let m = if self.m.is_finite() { self.m } else { V::Elem::ZERO };
                let (_, sum) = self.exps_and_sum(&ShiftedExp::<V>::plain(m));
                return (m, sum);
            }
            let (m, f) = log_softmax_shift::<V>(self.m, self.n);
            let (_, scaled) = self.exps_and_sum(&f);
            (m, scaled / f.row_constant().to_f64())
        }
    }

    /// f(x) of the registers that hold elements of the row (the others: 0)
    /// and their sum in f64.
    ///
    /// # Safety
    /// The CPU must have the instruction set of `V`.
    #[inline(always)]
    unsafe fn exps_and_sum(&self, f: &ShiftedExp<V>) -> ([V; SHORT_REGS], f64) {
        // SAFETY: this function's contract: the CPU has the instruction set of V.
        unsafe {
            const { assert!(SHORT_REGS * V::LANES < N_FIRST_MIN, "a short row takes the pair form, not the n-first one") };
            let e = if f.pairs { self.exps::<true>(f) } else { self.exps::<false>(f) };
            (e, short_sum(&e, self.n).reduce_add_part::<PART>().to_f64())
        }
    }

    /// f(x) of the registers that hold elements of the row (the others: 0),
    /// with f's form fixed (`PAIRS` must be `f.pairs`; a short row is below
    /// [`N_FIRST_MIN`]).
    ///
    /// # Safety
    /// The CPU must have the instruction set of `V`.
    #[inline(always)]
    unsafe fn exps<const PAIRS: bool>(&self, f: &ShiftedExp<V>) -> [V; SHORT_REGS] {
        // SAFETY: this function's contract: the CPU has the instruction set of V.
        unsafe {
            let mut e = [V::splat(V::Elem::ZERO); SHORT_REGS];
            for (c, ec) in e.iter_mut().enumerate() {
                if c * V::LANES < self.n {
                    *ec = f.eval_form::<PAIRS, false>(self.regs[c]);
                }
            }
            e
        }
    }
}

/// The writes, which do not depend on `PART`.
impl<V: Vector> ShortRow<V> {
    /// Writes the row: each exponential times 1 / sum, or NaN.
    ///
    /// # Safety
    /// The CPU must have the instruction set of `V`; `y` must be valid for
    /// writing `n` elements (it may be the row's x: every load is done).
    #[inline(always)]
    unsafe fn write<M>(y: *mut M, n: usize, exps: ShortExp<V>)
    where
        V: Storage<M>,
    {
        // SAFETY: this function's contract: the CPU has the instruction set of V,
        // and every store below stays inside y[0..n).
        unsafe {
            let Some((e, r)) = exps else {
                return fill::<V, M>(y, n, V::Elem::NAN);
            };
            Self::store_row(y, n, e, &Scale(V::splat(r)));
        }
    }

    /// Writes log-softmax, (x - m) - ln_sum, of the row `regs` hold (as
    /// [`ShortRow::load`] loads them) to `y`.
    ///
    /// # Safety
    /// The CPU must have the instruction set of `V`; `y` must be valid for
    /// writing `n` elements (it may be the row's x: every load is done).
    #[inline(always)]
    unsafe fn write_log<M>(regs: [V; SHORT_REGS], y: *mut M, n: usize, m: V::Elem, ln_sum: V::Elem)
    where
        V: Storage<M>,
    {
        // SAFETY: this function's contract: the CPU has the instruction set of V,
        // and every store below stays inside y[0..n).
        unsafe { Self::store_row(y, n, regs, &LogValue { m: V::splat(m), ln_sum: V::splat(ln_sum) }) }
    }

    /// Stores f(register c) for each register c of `regs` that holds
    /// elements of the row `y` of `n` elements, the last one partly.
    ///
    /// # Safety
    /// The CPU must have the instruction set of `V`; `y` must be valid for
    /// writing `n` elements.
    #[inline(always)]
    unsafe fn store_row<M, F: WriteValue<V>>(y: *mut M, n: usize, regs: [V; SHORT_REGS], f: &F)
    where
        V: Storage<M>,
    {
        // SAFETY: this function's contract: the CPU has the instruction set of V,
        // and every store below stays inside y[0..n).
        unsafe {
            let lanes = V::LANES;
            for (c, reg) in regs.into_iter().enumerate() {
                let start = c * lanes;
                if start + lanes <= n {
                    f.value(reg).store_to(y.add(start));
                } else if start < n {
                    f.value(reg).store_partial_to(y.add(start), n - start);
                }
            }
        }
    }
}

/// Three-pass reload of every row of `batch` (more than one) in registers
/// ([`ShortRow`]), pipelined as [`three_pass_reload_pipeline`]: row i + 1
/// loaded and its max taken, row i's exponentials and sum, row i - 1
/// written.
///
/// # Safety
/// As for [`softmax_rows`]; the rows are short ([`is_short`]).
#[inline(always)]
unsafe fn short_reload_pipeline<V: Storage<M>, M>(batch: &RowBatch<M>) {
    // SAFETY: this function's contract.
    unsafe {
        match register_part::<V>(batch.n) {
            4 => short_reload_rows::<V, M, 4>(batch),
            2 => short_reload_rows::<V, M, 2>(batch),
            _ => short_reload_rows::<V, M, 1>(batch),
        }
    }
}

/// [`short_reload_pipeline`] for rows of [`register_part`] `PART` (with
/// another part, the rows' max and sum may miss elements).
///
/// # Safety
/// As for [`short_reload_pipeline`].
#[inline(always)]
unsafe fn short_reload_rows<V: Storage<M>, M, const PART: usize>(batch: &RowBatch<M>) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the rows the caller vouched for.
    unsafe {
        let n = batch.n;
        staggered_rows(
            batch.rows,
            #[inline(always)]
            |i| ShortRow::<V, PART>::load(batch.x_row(i), n),
            #[inline(always)]
            |_, row| row.exp_sum(),
            #[inline(always)]
            |i, exps| ShortRow::<V>::write(batch.y_row(i), n, exps),
        );
    }
}

/// Largest element (a NaN may or may not survive; callers catch NaN rows
/// through the sum, which NaN always poisons).
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub(crate) unsafe fn row_max<V: Storage<M>, M>(x: *const M, n: usize) -> V::Elem {
    // SAFETY: this function's contract.
    unsafe {
        row_max_alongside::<V, M>(
            x,
            n,
            #[inline(always)]
            |_, _| {},
        )
    }
}

/// [`row_max`] of `x`, calling `alongside(i, count)` in the same loop for
/// each register of the row's positions: i a multiple of `V::LANES`,
/// `count` = `V::LANES`, or n - i for the last partial one. The max is
/// the same bits with any `alongside`; [`fused_rows`] runs another row's
/// last pass in it.
///
/// # Safety
/// As for [`row_max`], and `alongside` must be safe to call for every
/// register position of a row of `n` elements.
#[inline(always)]
unsafe fn row_max_alongside<V: Storage<M>, M>(x: *const M, n: usize, mut alongside: impl FnMut(usize, usize)) -> V::Elem {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let lanes = V::LANES;
        let neg_inf = V::Elem::NEG_INFINITY;
        // Four independent chains: max has a latency of several cycles and
        // two can issue per cycle.
        let mut m = [V::splat(neg_inf); 4];
        let mut i = 0;
        let ahead = prefetch::Ahead::current();
        while i + 4 * lanes <= n {
            ahead.fetch(x.add(i), 4 * lanes * size_of::<M>());
            for (k, mk) in m.iter_mut().enumerate() {
                *mk = mk.max(V::load_from(x.add(i + k * lanes)));
                alongside(i + k * lanes, lanes);
            }
            i += 4 * lanes;
        }
        while i + lanes <= n {
            m[0] = m[0].max(V::load_from(x.add(i)));
            alongside(i, lanes);
            i += lanes;
        }
        if i < n {
            m[1] = m[1].max(V::load_partial_from(x.add(i), n - i, neg_inf));
            alongside(i, n - i);
        }
        max_of_chains(m)
    }
}

/// The max of [`row_max`]'s four chains, combined in the one order every
/// loop that takes a row's max uses, so that they all give the same bits.
#[inline(always)]
fn max_of_chains<V: Vector>(m: [V; 4]) -> V::Elem {
    m[0].max(m[1]).max(m[2].max(m[3])).reduce_max()
}

/// x -> exp(x - m) * c for a row whose max is `m`, where c is a constant of
/// the row in [1.41, 2.83] ([`ShiftedExp::row_constant`]). Softmax divides
/// by a sum of the same values, so c cancels and the scalar exp(m) it
/// would take is kept off the hot path.
///
/// x - m is never rounded: in f32 that rounding alone costs up to 2e-6
/// relative error (|x - m| near 50). For |m| <= 2^18 the value is
/// exp(x) / 2^n(m), built from the (mantissa, exponent) pair of x, and
/// c = 2 p(m) from exp(m) = 2 p(m) * 2^n(m) (n(m) one below the exponent of
/// exp(m)'s pair: [`ShiftedExp::new`]); beyond, every x whose result does
/// not underflow lies in [m/2, 2m], where x - m is exact (Sterbenz), and
/// the plain form with c = 1 is used.
#[derive(Clone, Copy)]
pub(crate) struct ShiftedExp<V: Vector> {
    pairs: bool,
    /// The pair form through [`Vector::exp_down_n_first`] (rows of at
    /// least [`N_FIRST_MIN`] elements).
    n_first: bool,
    lo: V,
    m: V::Elem,
    /// n(m), one below the exponent of exp(m)'s pair: exp(m) =
    /// 2 p(m) * 2^n(m).
    n_m: V,
}

impl<V: Vector> ShiftedExp<V> {
    /// The shifted exponential of a row of `n` elements (a split row's
    /// whole length) whose max is `m`; `n` picks the form
    /// ([`N_FIRST_MIN`]).
    ///
    /// # Safety
    /// The CPU must have the instruction set of `V`.
    #[inline(always)]
    pub(crate) unsafe fn new(m: V::Elem, n: usize) -> Self {
        // SAFETY: this function's contract: the CPU has the instruction set of V,
        // and every access below stays inside the elements the caller vouched for.
        unsafe {
            let limit = TWO_PASS_X_LIMIT;
            // n(m) = round(m log2 e) - 1, one below the exponent of the
            // scalar pair of exp(m) (every lane's pair exponent is at most
            // n(m) + 1, x <= m), so the row's largest term exp(m) / 2^n(m)
            // is in [1.41, 2.83] and the sum at least 1.41. Every
            // softmax result is then at most its term, so a normal result
            // comes from a normal term: with round(m log2 e) itself the
            // sum could be 0.71, and results down to 1.18e-38 came from
            // terms below the normal range, which the fast exponentials
            // flush or mis-scale (up to 41% low; issue 11, round 37). For
            // larger results a factor of 2 on every term and on the sum
            // changes no bits.
            let (_, k_m) = exp_parts_scalar(m);
            let pairs = m.to_f64().abs() <= limit - 2048.0;
            ShiftedExp {
                pairs,
                n_first: pairs && n >= N_FIRST_MIN,
                lo: V::splat(V::Elem::from_f64(-limit)),
                m,
                n_m: V::splat(k_m - V::Elem::ONE),
            }
        }
    }

    /// The plain form exp(x - m) (c = 1), which maps x = +inf to +inf.
    ///
    /// # Safety
    /// The CPU must have the instruction set of `V` (vector code); pointer
    /// arguments must be valid for the elements read and written (`n` per
    /// row), with the aliasing the module documents.
    #[inline(always)]
    pub(crate) unsafe fn plain(m: V::Elem) -> Self {
        // SAFETY: this function's contract: the CPU has the instruction set of V,
        // and every access below stays inside the elements the caller vouched for.
        unsafe {
            ShiftedExp { pairs: false, n_first: false, ..Self::new(m, 0) }
        }
    }

    /// c: exp(x - m) = eval(x) / c, so c = eval(m): for the pair form
    /// exp(m) / 2^n(m) as the lanes compute it, not 2 p(m) from the scalar
    /// pair, which may differ in the last bits (with it a one-element row's
    /// log_softmax was not exactly 0), and with the lanes' n(m) (c and n(m)
    /// from two separate roundings of m log2 e were off by a factor of 2
    /// when those differed, e.g. m = 1.732868, where m log2 e =
    /// 2.50000000687). One vector exp per call, whose lanes are all equal:
    /// lane 0 is c, with no reduction after the exponential's chain.
    /// Log-softmax, which divides each row's sum by c, took 0.90-1.00 of
    /// the time with lane 0 than with the max over the lanes (issue 11,
    /// round 41; AMD Zen 4, AVX-512, float32 rows of 16 to 30522 and
    /// float64 rows of 40 to 384, time / the max's, two runs in each
    /// order), but for three cells of one run each: 16x128 1.07 (0.96 in
    /// the other), float64 8192x384 1.05 (its copy 0.93), 4096x1024 1.03
    /// (its copy 0.975). AVX2, one run: 0.85-0.98. Softmax, which divides
    /// by a sum of the same values, needs no c.
    ///
    /// # Safety
    /// The CPU must have the instruction set of `V`.
    #[inline(always)]
    pub(crate) unsafe fn row_constant(&self) -> V::Elem {
        if self.pairs {
            // SAFETY: this function's contract: the CPU has the instruction set of V.
            unsafe { self.eval(V::splat(self.m)).first_lane() }
        } else {
            V::Elem::ONE
        }
    }

    /// # Safety
    /// The CPU must have the instruction set of `V`.
    #[inline(always)]
    unsafe fn eval(&self, x: V) -> V {
        // SAFETY: this function's contract.
        unsafe {
            match (self.pairs, self.n_first) {
                (true, true) => self.eval_form::<true, true>(x),
                (true, false) => self.eval_form::<true, false>(x),
                _ => self.eval_form::<false, false>(x),
            }
        }
    }

    /// [`Self::eval`] with the form fixed at compile time (`PAIRS` and
    /// `N_FIRST` must be `self.pairs` and `self.n_first`), for loops that
    /// pick it once per row.
    ///
    /// # Safety
    /// The CPU must have the instruction set of `V`.
    #[inline(always)]
    unsafe fn eval_form<const PAIRS: bool, const N_FIRST: bool>(&self, x: V) -> V {
        // SAFETY: this function's contract: the CPU has the instruction set of V.
        unsafe {
            if PAIRS {
                // -inf becomes `lo` (the table form: a masked lane), whose
                // term vanishes; NaN passes through.
                // +inf (only in rows that are NaN anyway, whose sum is not
                // finite) may give +inf (vscalefps(NaN, +inf) = +inf) or NaN
                // (the table form).
                if N_FIRST {
                    x.exp_down_n_first(self.lo, self.n_m)
                } else {
                    exp_down(x, self.lo, self.n_m)
                }
            } else {
                exp(x.sub(V::splat(self.m)))
            }
        }
    }
}

/// What the exp-and-sum pass ([`sum_map`]) writes to `y`: at most one of
/// the two.
pub(crate) trait SumWrite {
    /// Each element's shifted exponential.
    const EXP: bool = false;
    /// Each element of x itself, stored as soon as it is loaded.
    const INPUT: bool = false;
}

/// Writes nothing: the sum alone.
pub(crate) struct NoWrite;

impl SumWrite for NoWrite {}

/// Writes the exponentials (three-pass reload, which scales them next).
pub(crate) struct WriteExp;

impl SumWrite for WriteExp {
    const EXP: bool = true;
}

/// Copies x to `y` (log-softmax, whose last pass then computes
/// (y - m) - ln(sum) in place).
struct CopyInput;

impl SumWrite for CopyInput {
    const INPUT: bool = true;
}

/// Sum of f(x) over the row, writing what `W` says for each element to `y`
/// (of the row's type, or of the compute type: `three_pass_staged`). With
/// `warm_y` the lines of `y` are prefetched ahead too: the ones this pass
/// stores, or the next pass writes through the cache (the recompute form,
/// log-softmax of 16-bit rows); not when the next pass streams its stores
/// past the cache, where they would be read from memory for nothing.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub(crate) unsafe fn sum_map<V: Storage<M> + Storage<Y>, M, Y, W: SumWrite>(x: *const M, y: *mut Y, n: usize, f: &ShiftedExp<V>, warm_y: bool) -> f64 {
    // SAFETY: this function's contract. The form is picked here, once per
    // row: tested inside the loop it cost a compare on the port the
    // exponential's FMAs wait for (AVX-512).
    unsafe {
        match (f.pairs, f.n_first) {
            (true, true) => sum_map_form::<V, M, Y, W, true, true>(x, y, n, f, warm_y),
            (true, false) => sum_map_form::<V, M, Y, W, true, false>(x, y, n, f, warm_y),
            _ => sum_map_form::<V, M, Y, W, false, false>(x, y, n, f, warm_y),
        }
    }
}

/// [`sum_map`] with `f`'s form fixed (`PAIRS` and `N_FIRST` must be
/// `f.pairs` and `f.n_first`).
///
/// # Safety
/// As for [`sum_map`].
#[inline(always)]
unsafe fn sum_map_form<V: Storage<M> + Storage<Y>, M, Y, W: SumWrite, const PAIRS: bool, const N_FIRST: bool>(x: *const M, y: *mut Y, n: usize, f: &ShiftedExp<V>, warm_y: bool) -> f64 {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        if PAIRS && !W::INPUT && stages_exp::<V, M>(n) {
            return sum_map_staged::<V, M, Y, W, false>(x, y, n, f, warm_y, std::ptr::null()).0;
        }
        let mut total = 0.0f64;
        // The last block's sum register, reduced into `total` only after
        // the next block's loop: see the end of the loop.
        let mut pending: Option<V> = None;
        let mut start = 0;
        let ahead = prefetch::Ahead::current();
        while start < n {
            let end = (start + sum_block::<V>()).min(n);
            let s = block_exp_sum::<V, M, Y, W, PAIRS, N_FIRST>(x, y, start, end, f, warm_y, ahead);
            // The previous block's horizontal sum, a chain of about eight
            // dependent operations, is issued here, after this block's
            // loop, when its inputs have long been ready. Issued at the end
            // of its own block, it waited there for the block's last
            // exponentials (each a chain of about ten dependent
            // operations) and held back the retirement of everything
            // after it. The blocks are still added in order: the same
            // bits. AMD Zen 3, AVX2 (issue 11,
            // round 29; `benches/ab/threads.py`, both builds through the
            // binding, both orders): softmax took 0.92-0.95 of the time on
            // rows of 384 to 30522 elements, log-softmax 0.93-0.96. Not
            // measured at AVX-512.
            if let Some(p) = pending {
                total += p.reduce_add().to_f64();
            }
            pending = Some(s);
            start = end;
        }
        // Not `map_or` with a closure: a closure is a function of its own,
        // compiled without the level's features, and the intrinsics in it
        // were not inlined (`.ci/check-inlined`).
        if let Some(p) = pending {
            total += p.reduce_add().to_f64();
        }
        total
    }
}

/// One block of [`sum_map_form`]'s exp-and-sum pass, x[start..end) (at
/// most [`sum_block`] elements): the exponentials in the form `PAIRS`,
/// `N_FIRST`, stored as `W` asks, and their sum in one register (two
/// chains added), not yet reduced.
///
/// # Safety
/// As for [`sum_map_form`] on x[start..end) and y[start..end).
#[inline(always)]
unsafe fn block_exp_sum<V: Storage<M> + Storage<Y>, M, Y, W: SumWrite, const PAIRS: bool, const N_FIRST: bool>(x: *const M, y: *mut Y, start: usize, end: usize, f: &ShiftedExp<V>, warm_y: bool, ahead: prefetch::Ahead) -> V {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside x[start..end) and y[start..end).
    unsafe {
        let lanes = V::LANES;
        // Four vectors per step, so the four exp evaluations
        // (independent chains) overlap (XNNPACK's raddstoreexpminusmax
        // u4 kernels), summed in two chains: an add's latency is still
        // hidden, and two fewer live registers cut the loop's stack
        // spills on AVX2, whose 16 registers also hold the exp's
        // constants.
        let mut s = [V::splat(V::Elem::ZERO); 2];
        let mut i = start;
        while i + 4 * lanes <= end {
            ahead.fetch(x.add(i), 4 * lanes * size_of::<M>());
            if warm_y {
                ahead.fetch(y.add(i), 4 * lanes * size_of::<Y>());
            }
            let v = [V::load_from(x.add(i)), V::load_from(x.add(i + lanes)), V::load_from(x.add(i + 2 * lanes)), V::load_from(x.add(i + 3 * lanes))];
            if W::INPUT {
                // Stored before the exponentials, so x's registers are
                // not kept live across them (nor x loaded again, nor
                // anything computed: the exponentials' FMA port is the
                // loop's bound, AVX-512).
                for (k, vk) in v.into_iter().enumerate() {
                    vk.store_to(y.add(i + k * lanes));
                }
            }
            let e = [f.eval_form::<PAIRS, N_FIRST>(v[0]), f.eval_form::<PAIRS, N_FIRST>(v[1]), f.eval_form::<PAIRS, N_FIRST>(v[2]), f.eval_form::<PAIRS, N_FIRST>(v[3])];
            for (k, ek) in e.into_iter().enumerate() {
                if W::EXP {
                    ek.store_to(y.add(i + k * lanes));
                }
                s[k % 2] = s[k % 2].add(ek);
            }
            i += 4 * lanes;
        }
        sum_map_tail::<V, M, Y, W, PAIRS, N_FIRST>(x, y, i, end, f, &mut s, None);
        s[0].add(s[1])
    }
}

/// The exp-and-sum pass over the registers of x[i..end) left after a
/// block's whole groups of four: evaluates `f` in the form `PAIRS`,
/// `N_FIRST` (the caller's: [`sum_map_form`] passes `f`'s own,
/// [`sum_map_staged`] always the pair form), stores to `y` what `W` asks
/// for, and adds the whole registers' exponentials to sum chain 0 and the
/// partial one's (lanes past `end` loaded as -inf, whose exponential is
/// 0) to chain 1, where both callers put them. With `next_max =
/// Some((next, m))`, also the max of the row `next` at the same
/// positions, in chains 0 and 1 of `m`, where [`row_max`] puts them.
///
/// # Safety
/// As for [`sum_map_form`] on x[i..end) and y[i..end); `next`, if given,
/// must be valid for reading at the same positions and not overlap `y`
/// (y[i] is stored before next[i] is read).
#[inline(always)]
unsafe fn sum_map_tail<V: Storage<M> + Storage<Y>, M, Y, W: SumWrite, const PAIRS: bool, const N_FIRST: bool>(x: *const M, y: *mut Y, mut i: usize, end: usize, f: &ShiftedExp<V>, s: &mut [V; 2], mut next_max: Option<(*const M, &mut [V; 4])>) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside x[i..end), y[i..end) and the
    // same positions of next.
    unsafe {
        let lanes = V::LANES;
        while i + lanes <= end {
            let v = V::load_from(x.add(i));
            if W::INPUT {
                v.store_to(y.add(i));
            }
            let e = f.eval_form::<PAIRS, N_FIRST>(v);
            if W::EXP {
                e.store_to(y.add(i));
            }
            s[0] = s[0].add(e);
            if let Some((next, m)) = next_max.as_mut() {
                m[0] = m[0].max(V::load_from(next.add(i)));
            }
            i += lanes;
        }
        if i < end {
            let v = V::load_partial_from(x.add(i), end - i, V::Elem::NEG_INFINITY);
            if W::INPUT {
                v.store_partial_to(y.add(i), end - i);
            }
            let e = f.eval_form::<PAIRS, N_FIRST>(v);
            if W::EXP {
                e.store_partial_to(y.add(i), end - i);
            }
            s[1] = s[1].add(e);
            if let Some((next, m)) = next_max {
                m[1] = m[1].max(V::load_partial_from(next.add(i), end - i, V::Elem::NEG_INFINITY));
            }
        }
    }
}

/// Whether the exp-and-sum pass of a row of `n` elements stored as `M`
/// issues its exponentials in two stages ([`sum_map_staged`]): where the
/// register splits them ([`Vector::EXP_DOWN_STAGED`], AVX2 float32), for
/// rows of more than [`FUSED_MAX_BYTES`] stored in the compute type,
/// except in log-softmax's pass that copies x to `y` (which keeps
/// [`sum_map_form`]'s loop). The passes that store nothing (recompute,
/// logsumexp, split rows, log-softmax's sum of a split row) take it too.
/// Measured on AMD Zen 3 at AVX2 (issue 11,
/// round 31; `benches/ab/threads.py`, both builds through the binding, one
/// thread, 15 rounds, both orders; time staged / not), float32 softmax
/// staged at every length: 1x2^20 0.95 / 0.96, rows of 2048 to 30522
/// 0.975-0.995; but rows of 384 1.01-1.03, of 128 1.03-1.05 and
/// log-softmax 1.02-1.04
/// (64x30522, 4096x1024), which are left out (rows up to 8 KiB, and the
/// pass with [`CopyInput`]). 16-bit rows and the passes that store
/// nothing were not measured. (A version that kept those passes out and
/// moved [`sum_map_form`]'s loop into a function of its own, the same
/// bits, took 64x30522 to 0.97-1.00 of its time instead of 0.94-0.95,
/// aligned builds: the gain depends on how LLVM compiles the loop.)
#[inline(always)]
fn stages_exp<V: Vector, M>(n: usize) -> bool {
    V::EXP_DOWN_STAGED && size_of::<M>() == size_of::<V::Elem>() && n * size_of::<M>() > FUSED_MAX_BYTES
}

/// [`sum_map_form`] in the pair form with the exponential's two stages
/// ([`Vector::exp_down_first`], [`Vector::exp_down_second`]) issued for
/// different registers: each step of two registers starts the next
/// step's first stage before its own second stage (software pipelining;
/// steps of one register, the next one's first stage ahead, or the one
/// after it, lost 2-13% on all but one long row). The same operations and the same order of sums
/// as [`sum_map_form`]: the same bits. With `NEXT`, also the max of the
/// row `next` (as long as this one), in [`row_max`]'s four chains: the
/// same bits as `row_max(next, n)`; otherwise `next` is not read and the
/// max returned is -inf.
///
/// It evaluates [`Vector::exp_down_fast`], which is also the `N_FIRST`
/// form wherever a register splits it ([`Vector::EXP_DOWN_STAGED`]); `f`
/// must be in the pair form.
///
/// # Safety
/// As for [`sum_map`], and with `NEXT` `next` must be valid for reading
/// `n` elements and not overlap `y`.
#[inline(always)]
unsafe fn sum_map_staged<V: Storage<M> + Storage<Y>, M, Y, W: SumWrite, const NEXT: bool>(x: *const M, y: *mut Y, n: usize, f: &ShiftedExp<V>, warm_y: bool, next: *const M) -> (f64, V::Elem) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        // Blocks of whole groups of four registers, so a group's sums and
        // maxima go where sum_map_form's and row_max's go. x is not copied
        // to y: `sum_map` does not send CopyInput here.
        const { assert!(sum_block::<V>().is_multiple_of(4 * V::LANES)) };
        debug_assert!(!W::INPUT);
        let lanes = V::LANES;
        let (lo, n_m) = (f.lo, f.n_m);
        let ahead = prefetch::Ahead::current();
        let mut total = 0.0f64;
        // As in sum_map_form: the last block's sums, reduced after the next.
        let mut pending: Option<V> = None;
        let mut s = [V::splat(V::Elem::ZERO); 2];
        let mut m = [V::splat(V::Elem::NEG_INFINITY); 4];
        let groups = n / (4 * lanes);
        if groups > 0 {
            // Registers 0 and 1 of the current group, first stage done.
            let mut first = first_stages::<V, M>(x, lo, n_m);
            for g in 0..groups {
                let i = g * 4 * lanes;
                ahead.fetch(x.add(i), 4 * lanes * size_of::<M>());
                if warm_y {
                    ahead.fetch(y.add(i), 4 * lanes * size_of::<Y>());
                }
                if NEXT {
                    ahead.fetch(next.add(i), 4 * lanes * size_of::<M>());
                    for (k, mk) in m.iter_mut().enumerate() {
                        *mk = mk.max(V::load_from(next.add(i + k * lanes)));
                    }
                }
                let second = first_stages::<V, M>(x.add(i + 2 * lanes), lo, n_m);
                for (k, staged) in first.into_iter().enumerate() {
                    let e = V::exp_down_second(staged, lo, n_m);
                    if W::EXP {
                        e.store_to(y.add(i + k * lanes));
                    }
                    s[k] = s[k].add(e);
                }
                // The next group's registers 0 and 1; past the last group,
                // this one's again (never read past the row; not used).
                let ahead_at = if g + 1 < groups { i + 4 * lanes } else { i };
                first = first_stages::<V, M>(x.add(ahead_at), lo, n_m);
                for (k, staged) in second.into_iter().enumerate() {
                    let e = V::exp_down_second(staged, lo, n_m);
                    if W::EXP {
                        e.store_to(y.add(i + (2 + k) * lanes));
                    }
                    s[k] = s[k].add(e);
                }
                if (i + 4 * lanes).is_multiple_of(sum_block::<V>()) {
                    if let Some(p) = pending {
                        total += p.reduce_add().to_f64();
                    }
                    pending = Some(s[0].add(s[1]));
                    s = [V::splat(V::Elem::ZERO); 2];
                }
            }
        }
        // The last block's registers after its whole groups, as in
        // sum_map_form, unless its last group closed it.
        if !n.is_multiple_of(sum_block::<V>()) {
            let next_max = if NEXT { Some((next, &mut m)) } else { None };
            sum_map_tail::<V, M, Y, W, true, false>(x, y, groups * 4 * lanes, n, f, &mut s, next_max);
            if let Some(p) = pending {
                total += p.reduce_add().to_f64();
            }
            pending = Some(s[0].add(s[1]));
        }
        if let Some(p) = pending {
            total += p.reduce_add().to_f64();
        }
        (total, max_of_chains(m))
    }
}

/// The first stage ([`Vector::exp_down_first`]) of the exponentials of the
/// two registers at `x`.
///
/// # Safety
/// The CPU must have the instruction set of `V`; `x` must be valid for
/// reading two registers.
#[inline(always)]
unsafe fn first_stages<V: Storage<M>, M>(x: *const M, lo: V, n_m: V) -> [(V, V); 2] {
    // SAFETY: the caller's contract.
    unsafe { [V::load_from(x).exp_down_first(lo, n_m), V::load_from(x.add(V::LANES)).exp_down_first(lo, n_m)] }
}

/// What a write pass stores for each register of x.
pub(crate) trait WriteValue<V: Vector> {
    /// # Safety
    /// The CPU must have the instruction set of `V`.
    unsafe fn value(&self, x: V) -> V;
}

/// f(x) * factor: the last pass of three-pass recompute and online, with
/// f's form fixed (`PAIRS` and `N_FIRST` must be `f.pairs` and
/// `f.n_first`): picked once per row, as in [`sum_map`].
struct ScaledExp<'a, V: Vector, const PAIRS: bool, const N_FIRST: bool> {
    f: &'a ShiftedExp<V>,
    factor: V,
}

impl<V: Vector, const PAIRS: bool, const N_FIRST: bool> WriteValue<V> for ScaledExp<'_, V, PAIRS, N_FIRST> {
    #[inline(always)]
    unsafe fn value(&self, x: V) -> V {
        // SAFETY: the caller's contract: the CPU has V's instruction set.
        unsafe { self.f.eval_form::<PAIRS, N_FIRST>(x).mul(self.factor) }
    }
}

/// Rows whose output takes at least this many bytes are written with
/// streaming (non-temporal) stores, which skip reading each output line
/// before writing it: the last pass then moves 8 bytes per float32 element
/// instead of 12. A quarter of the 32 MiB L3 of the Zen 3 it was measured
/// on: an output that large does not stay cached for the caller anyway.
pub const STREAM_MIN_BYTES: usize = 1 << 23;

/// Whether a row of `n` elements of `M` is written with streaming stores
/// (float32 and float64: 16-bit storage has none, [`Storage::stream_to`]).
pub(crate) fn streams<M>(n: usize) -> bool {
    size_of::<M>() >= 4 && n * size_of::<M>() >= STREAM_MIN_BYTES
}

/// y = f.value(x) for the whole row, prefetching ahead; with `stream`,
/// through streaming stores from the first register-aligned element of `y`.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub(crate) unsafe fn write_row<V: Storage<M>, M, F: WriteValue<V>>(x: *const M, y: *mut M, n: usize, f: &F, stream: bool) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let step = V::LANES * size_of::<M>();
        let mut i = 0;
        let head = aligned_start::<V, M>(y);
        let ahead = prefetch::Ahead::current();
        if stream && head + V::LANES <= n {
            if head > 0 {
                f.value(V::load_partial_from(x, head, V::Elem::ZERO)).store_partial_to(y, head);
            }
            i = head;
            while i + V::LANES <= n {
                ahead.fetch(x.add(i), step);
                // Aligned: i - head is a multiple of LANES.
                f.value(V::load_from(x.add(i))).stream_to(y.add(i));
                i += V::LANES;
            }
            V::stream_fence();
        }
        while i + V::LANES <= n {
            ahead.fetch(x.add(i), step);
            ahead.fetch(y.add(i), step);
            f.value(V::load_from(x.add(i))).store_to(y.add(i));
            i += V::LANES;
        }
        if i < n {
            f.value(V::load_partial_from(x.add(i), n - i, V::Elem::ZERO)).store_partial_to(y.add(i), n - i);
        }
    }
}

/// The index of the first element of `y` at a register-aligned address
/// (`LANES * size_of::<M>()` bytes; `y` is aligned to its element size).
fn aligned_start<V: Vector, M>(y: *mut M) -> usize {
    let align = V::LANES * size_of::<M>();
    (align - y as usize % align) % align / size_of::<M>()
}

/// y = f(x) * factor for the whole row.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub(crate) unsafe fn write_map<V: Storage<M>, M>(x: *const M, y: *mut M, n: usize, f: &ShiftedExp<V>, factor: V::Elem, stream: bool) {
    // SAFETY: this function's contract.
    unsafe {
        let factor = V::splat(factor);
        match (f.pairs, f.n_first) {
            (true, true) => write_row(x, y, n, &ScaledExp::<V, true, true> { f, factor }, stream),
            (true, false) => write_row(x, y, n, &ScaledExp::<V, true, false> { f, factor }, stream),
            _ => write_row(x, y, n, &ScaledExp::<V, false, false> { f, factor }, stream),
        }
    }
}

/// y = y * r for the whole row.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub(crate) unsafe fn scale_in_place<V: Storage<M>, M>(y: *mut M, n: usize, r: V::Elem) {
    // SAFETY: this function's contract.
    unsafe { update_in_place::<V, M, _>(y, n, &Scale(V::splat(r))) }
}

/// y = f.value(y) for the whole row, prefetching ahead.
///
/// Four registers per step, with one `fetch` for their bytes (one
/// prefetch per cache line). Against one register per step, each with a
/// `fetch` of its own (AMD Zen 3, AVX2, issue 11 round 29;
/// `benches/ab/threads.py`, both orders, the same bits): softmax took
/// 0.95-0.97 of the time on rows of 64 KiB to 1 MiB and 0.91-0.96 on rows
/// of 64 elements, log-softmax 0.93-0.96 on rows of 122 KB and 256 KiB,
/// three-pass softmax of a 16 MiB row 0.96-0.99; 0.99 on rows of 0.5 to 4
/// KiB, whose last pass is fused with the next row's max and comes here
/// for the last row only.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn update_in_place<V: Storage<M>, M, F: WriteValue<V>>(y: *mut M, n: usize, f: &F) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let lanes = V::LANES;
        let mut i = 0;
        let ahead = prefetch::Ahead::current();
        while i + 4 * lanes <= n {
            ahead.fetch(y.add(i), 4 * lanes * size_of::<M>());
            for k in 0..4 {
                let p = y.add(i + k * lanes);
                f.value(V::load_from(p)).store_to(p);
            }
            i += 4 * lanes;
        }
        while i + lanes <= n {
            update_register::<V, M, F>(ahead, y, i, lanes, f);
            i += lanes;
        }
        if i < n {
            update_register::<V, M, F>(ahead, y, i, n - i, f);
        }
    }
}

/// y = f.value(y) for the `count <= LANES` elements at `y + i`; a whole
/// register is prefetched ahead.
///
/// # Safety
/// The CPU must have the instruction set of `V`; `y + i` must be valid for
/// reading and writing `count` elements.
#[inline(always)]
unsafe fn update_register<V: Storage<M>, M, F: WriteValue<V>>(ahead: prefetch::Ahead, y: *mut M, i: usize, count: usize, f: &F) {
    // SAFETY: this function's contract.
    unsafe {
        let p = y.add(i);
        if count == V::LANES {
            ahead.fetch(p, V::LANES * size_of::<M>());
            f.value(V::load_from(p)).store_to(p);
        } else {
            f.value(V::load_partial_from(p, count, V::Elem::ZERO)).store_partial_to(p, count);
        }
    }
}

/// y * r.
struct Scale<V>(V);

impl<V: Vector> WriteValue<V> for Scale<V> {
    #[inline(always)]
    unsafe fn value(&self, y: V) -> V {
        y.mul(self.0)
    }
}

/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub(crate) unsafe fn fill<V: Storage<M>, M>(y: *mut M, n: usize, value: V::Elem) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let v = V::splat(value);
        let mut i = 0;
        while i + V::LANES <= n {
            v.store_to(y.add(i));
            i += V::LANES;
        }
        if i < n {
            v.store_partial_to(y.add(i), n - i);
        }
    }
}

/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn three_pass<V: Storage<M>, M, const RELOAD: bool>(x: *const M, y: *mut M, n: usize) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let m = row_max::<V, M>(x, n);
        let Some((shifted, r)) = exp_sum_or_nan_row::<V, M, RELOAD>(x, y, n, m, RELOAD || !streams::<M>(n)) else {
            return;
        };
        if RELOAD {
            scale_in_place::<V, M>(y, n, r);
        } else {
            write_map::<V, M>(x, y, n, &shifted, r, streams::<M>(n));
        }
    }
}

/// The middle pass of three-pass softmax for a row whose max is `m`: the
/// row's [`ShiftedExp`] and 1 / sum of its values (with `STORE`, the
/// values are written to `y`), or `None` with `y` filled with NaN when the
/// max is not finite or a NaN or +inf entry (the max may have skipped it:
/// x86 max drops NaN) poisons the sum, as scipy gives a NaN row.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn exp_sum_or_nan_row<V: Storage<M>, M, const STORE: bool>(x: *const M, y: *mut M, n: usize, m: V::Elem, warm_y: bool) -> Option<(ShiftedExp<V>, V::Elem)> {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        if m.is_finite() {
            let shifted = ShiftedExp::<V>::new(m, n);
            let sum = if STORE {
                sum_map::<V, M, M, WriteExp>(x, y, n, &shifted, warm_y)
            } else {
                sum_map::<V, M, M, NoWrite>(x, y, n, &shifted, warm_y)
            };
            if sum.is_finite() {
                return Some((shifted, V::Elem::from_f64(1.0 / sum)));
            }
        }
        fill::<V, M>(y, n, V::Elem::NAN);
        None
    }
}

/// The longest 16-bit row [`three_pass_staged`] takes (16 KB of f32 on
/// the stack: the row's exponentials stay in L1 / L2).
const STAGE_MAX: usize = 4096;

/// Three-pass reload for rows stored narrower than the compute type: the
/// exponentials go to a buffer of the compute type, and the last pass
/// scales them into `y`, rounding once.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row, `n <= STAGE_MAX`), with the aliasing the module documents.
#[inline(always)]
unsafe fn three_pass_staged<V, M>(x: *const M, y: *mut M, n: usize)
where
    V: Storage<M> + Storage<<V as Vector>::Elem>,
{
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched
    // for or the first n <= STAGE_MAX elements of the buffer, each written
    // by `sum_map` before it is read.
    unsafe {
        let m = row_max::<V, M>(x, n);
        if !m.is_finite() {
            return fill::<V, M>(y, n, V::Elem::NAN);
        }
        let shifted = ShiftedExp::<V>::new(m, n);
        let mut stage = [const { std::mem::MaybeUninit::<V::Elem>::uninit() }; STAGE_MAX];
        let e = stage.as_mut_ptr().cast::<V::Elem>();
        let sum = sum_map::<V, M, V::Elem, WriteExp>(x, e, n, &shifted, true);
        if !sum.is_finite() {
            return fill::<V, M>(y, n, V::Elem::NAN);
        }
        let r = V::splat(V::Elem::from_f64(1.0 / sum));
        let mut i = 0;
        while i < n {
            let count = (n - i).min(V::LANES);
            <V as Storage<V::Elem>>::load_n_from(e.add(i), count, V::Elem::ZERO).mul(r).store_n_to(y.add(i), count);
            i += count;
        }
    }
}

/// Elements per block of the two-pass sum: twice `BLOCK`, which halves
/// the per-block work (a max reduction, one exp, a sum reduction, an f64
/// merge) and measured 3-13% faster on AVX2 float32 (two-pass softmax and
/// logsumexp, 4096 to 2^24 elements per row). Each of the four chains adds at most 16 terms per
/// lane for float32 registers of 4 lanes (NEON; 8 on AVX2, 4 on AVX-512),
/// the bound of `BLOCK`'s error argument.
const PAIR_BLOCK: usize = 2 * BLOCK;

/// The sum of exp(x) over one block of `len <= PAIR_BLOCK` elements whose
/// largest element is `m`, as the pair (sum, exponent): sum * 2^exponent.
/// Every term is scaled to the one exponent n_ref = n(max(m, lo)), which
/// bounds the exponent of every other element (n(x) is nondecreasing in x),
/// so no term overflows and the block's largest term is at least ~0.96: a
/// term flushed to 0 below 2^-126 (f32) is below every rounding of the
/// sum.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); `x` must be
/// valid for reading `len` elements.
#[inline(always)]
unsafe fn block_pair_sum<V: Storage<M>, M>(x: *const M, len: usize, lo: V, m: V::Elem) -> (f64, f64) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the `len` elements of the block.
    unsafe {
        let lanes = V::LANES;
        let (_, n_ref) = exp_parts(lo.max(V::splat(m)));
        // Four independent chains, as in `sum_map`: the exp evaluations overlap.
        let mut s = [V::splat(V::Elem::ZERO); 4];
        let mut i = 0;
        while i + 4 * lanes <= len {
            for (k, sk) in s.iter_mut().enumerate() {
                *sk = sk.add(exp_down(V::load_from(x.add(i + k * lanes)), lo, n_ref));
            }
            i += 4 * lanes;
        }
        // The last (up to four) registers, one per chain.
        for sk in s.iter_mut() {
            if i >= len {
                break;
            }
            let count = (len - i).min(lanes);
            *sk = sk.add(exp_down(V::load_n_from(x.add(i), count, V::Elem::NEG_INFINITY), lo, n_ref));
            i += count;
        }
        // Every lane of n_ref holds n(m): lane 0, no reduction.
        (s[0].add(s[1]).add(s[2].add(s[3])).reduce_add().to_f64(), n_ref.first_lane().to_f64())
    }
}

/// Pass 1 of the two-pass softmax: the row sum of exp(x) as sum * 2^exp.
/// Per block of `PAIR_BLOCK` elements (in L1 after its max pass), a max pass
/// and then the terms scaled to the block's largest exponent: one scaling
/// per element instead of the two of a per-lane running exponent (the pair
/// sum of Dukhan & Ablavatski 2020, with the reference exponent found
/// first). NaNs as soon as a block holds NaN, +inf or a value beyond
/// `TWO_PASS_X_LIMIT` that its max shows: [`two_pass_accept`] rejects those
/// rows anyway (a NaN the max drops poisons the sum). Also returns the row
/// max (the largest block max), which two-pass log-softmax shifts by.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub(crate) unsafe fn two_pass_sum<V: Storage<M>, M>(x: *const M, n: usize) -> (f64, f64, f64) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let lo = V::splat(V::Elem::from_f64(-TWO_PASS_X_LIMIT));
        let (mut sum, mut exp, mut max) = (0.0f64, f64::NEG_INFINITY, f64::NEG_INFINITY);
        let mut start = 0;
        while start < n {
            let len = PAIR_BLOCK.min(n - start);
            let m = row_max::<V, M>(x.add(start), len);
            if m.is_nan() || m.to_f64() > TWO_PASS_X_LIMIT {
                return (f64::NAN, f64::NAN, f64::NAN);
            }
            let (v, e) = block_pair_sum::<V, M>(x.add(start), len, lo, m);
            (sum, exp) = merge_pair(sum, exp, v, e);
            max = max.max(m.to_f64());
            start += len;
        }
        (sum, exp, max)
    }
}

/// Dukhan & Ablavatski two-pass softmax. Rows the pair arithmetic cannot
/// represent exactly (NaN, +-inf, all -inf, |x| > 2^18) take the three-pass
/// path, which gives the scipy results for them.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn two_pass<V: Storage<M>, M>(x: *const M, y: *mut M, n: usize) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let (sum, exp, _) = two_pass_sum::<V, M>(x, n);
        match two_pass_accept(sum, exp) {
            Some((sum, exp)) => two_pass_write::<V, M>(x, y, n, sum, exp, streams::<M>(n)),
            None => three_pass::<V, M, false>(x, y, n),
        }
    }
}

/// Pass 2 of the two-pass softmax for a row whose pass-1 pair (sum, exp)
/// [`two_pass_accept`] accepted.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub(crate) unsafe fn two_pass_write<V: Storage<M>, M>(x: *const M, y: *mut M, n: usize, sum: f64, exp: f64, stream: bool) {
    // SAFETY: this function's contract.
    unsafe {
        let value = PairValue {
            lo: V::splat(V::Elem::from_f64(-TWO_PASS_X_LIMIT)),
            r: V::splat(V::Elem::from_f64(1.0 / sum)),
            exp: V::splat(V::Elem::from_f64(exp)),
        };
        write_row(x, y, n, &value, stream)
    }
}

/// Pass 2 of the two-pass softmax: p * 2^k / (sum * 2^exp) with (p, k) the
/// pair of x and r = 1/sum.
struct PairValue<V> {
    lo: V,
    r: V,
    exp: V,
}

impl<V: Vector> WriteValue<V> for PairValue<V> {
    #[inline(always)]
    unsafe fn value(&self, x: V) -> V {
        // SAFETY: the caller's contract: the CPU has V's instruction set.
        unsafe {
            exp_down(x, self.lo, self.exp).mul(self.r)
        }
    }
}

/// One online step per lane (Milakov & Gimelshein 2018): the running max
/// m and the sum d of exp(x - m); when m grows, d is rescaled by exp(m - m').
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn online_step<V: Vector>(m: &mut V, d: &mut V, x: V) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let m_new = m.max(x); // NaN in x propagates into m_new and d
        *d = d.mul(exp(m.sub(m_new))).add(exp(x.sub(m_new)));
        *m = m_new;
    }
}

/// Online softmax: pass 1 keeps (max, rescaled sum) per lane, folded into
/// an f64 pair every `BLOCK` elements; pass 2 writes exp(x - max) / sum.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn online<V: Storage<M>, M>(x: *const M, y: *mut M, n: usize) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let (m_row, d_row) = online_sum::<V, M>(x, n);
        if online_accept::<V::Elem>(m_row, d_row) {
            online_write::<V, M>(x, y, n, m_row, d_row, streams::<M>(n));
        } else {
            three_pass::<V, M, false>(x, y, n);
        }
    }
}

/// Lanes of the online pass start at the lowest finite value, so m - m' is
/// never -inf - (-inf); a -inf input then adds exp(-inf - m') = 0.
fn online_lowest<T: Real>() -> T {
    T::from_f64(if T::MANTISSA_DIGITS == 24 { f32::MIN as f64 } else { f64::MIN })
}

/// Pass 1 of the online softmax: the row's (max, sum of exp(x - max)).
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub(crate) unsafe fn online_sum<V: Storage<M>, M>(x: *const M, n: usize) -> (f64, f64) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let lowest = online_lowest::<V::Elem>();
        let (mut m_row, mut d_row) = (f64::NEG_INFINITY, 0.0f64);
        let mut start = 0;
        let ahead = prefetch::Ahead::current();
        while start < n {
            let end = (start + BLOCK).min(n);
            let (mut m, mut d) = (V::splat(lowest), V::splat(V::Elem::ZERO));
            let mut i = start;
            while i + V::LANES <= end {
                ahead.fetch(x.add(i), V::LANES * size_of::<M>());
                online_step(&mut m, &mut d, V::load_from(x.add(i)));
                i += V::LANES;
            }
            if i < end {
                online_step(&mut m, &mut d, V::load_partial_from(x.add(i), end - i, V::Elem::NEG_INFINITY));
            }
            let m_block = m.reduce_max();
            let d_block = d.mul(exp(m.sub(V::splat(m_block)))).reduce_add().to_f64();
            (m_row, d_row) = online_merge(m_row, d_row, m_block.to_f64(), d_block);
            start = end;
        }
        (m_row, d_row)
    }
}

/// Two (max, sum of exp(x - max)) pairs merged: the sums rescaled to the
/// larger max (Milakov & Gimelshein 2018).
#[inline(always)]
pub(crate) fn online_merge(m: f64, d: f64, m_other: f64, d_other: f64) -> (f64, f64) {
    let m_new = m.max(m_other);
    (m_new, d * (m - m_new).exp() + d_other * (m_other - m_new).exp())
}

/// True when pass 2 of the online softmax can use the pair (m, d); false
/// for NaN or +inf in the row, nothing but -inf, or a row at the very
/// bottom of the range: the three-pass path gives the scipy result.
pub(crate) fn online_accept<T: Real>(m: f64, d: f64) -> bool {
    let m = T::from_f64(m);
    m.is_finite() && d.is_finite() && m != online_lowest::<T>()
}

/// Pass 2 of the online softmax for a row whose pair [`online_accept`]
/// accepted: y = exp(x - m) / d.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub(crate) unsafe fn online_write<V: Storage<M>, M>(x: *const M, y: *mut M, n: usize, m: f64, d: f64, stream: bool) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let shifted = ShiftedExp::<V>::new(V::Elem::from_f64(m), n);
        let factor = 1.0 / (d * shifted.row_constant().to_f64());
        write_map::<V, M>(x, y, n, &shifted, V::Elem::from_f64(factor), stream);
    }
}

/// y = (x - m) - ln(sum exp(x - m)), m the row max or 0 when not finite.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub unsafe fn log_softmax<V: Storage<M>, M>(x: *const M, y: *mut M, n: usize) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        if is_short::<V>(n) {
            let row = ShortRow::<V>::load(x, n);
            let (m, sum) = row.log_sum();
            return ShortRow::write_log(row.regs, y, n, m, V::Elem::from_f64(row_ln::<V>(sum)));
        }
        if log_two_pass::<M>(n) && log_softmax_two_pass::<V, M>(x, y, n) {
            return;
        }
        log_softmax_three_pass::<V, M>(x, y, n);
    }
}

/// Log-softmax in three passes over the row: its max, the sum of the
/// shifted exponentials, the write.
///
/// # Safety
/// As for [`log_softmax`].
#[inline(always)]
unsafe fn log_softmax_three_pass<V: Storage<M>, M>(x: *const M, y: *mut M, n: usize) {
    // SAFETY: this function's contract.
    unsafe {
        let (m, shifted) = log_softmax_max::<V, M>(x, n);
        let ln_sum = log_softmax_ln_sum::<V, M>(x, y, n, &shifted);
        log_softmax_finish::<V, M>(x, y, n, m, ln_sum);
    }
}

/// Log-softmax rows stored in float32 or float64 of at least this many
/// bytes take two passes (`log_softmax_two_pass`) instead of three.
/// Measured on AMD Zen 4 (issue 11, round 25; `benches/ab`, float32 rows
/// of n elements, 2^24 elements per call, two passes / three, medians of
/// 15 rounds, both orders): n = 2^21 (8 MiB) 0.86 / 0.82, 2^22 0.83-0.90
/// (two runs in each order), 2^24 0.78 / 0.81; shorter rows, which the three
/// passes read back from the L2 or the L3, lost: n = 2^20 1.05 / 1.01,
/// 2^18 1.05 / 1.04, 2^16 1.02 / 1.00, 2^14 1.05 / 1.03, and 64 rows of
/// 30522 1.26 / 1.28 (the pair form's exponential takes more operations
/// than the three passes' shifted one, see `N_FIRST_MIN`). 16-bit rows
/// keep three passes (not measured).
pub const LOG_TWO_PASS_MIN_BYTES: usize = 1 << 23;

/// Whether log-softmax of a row of `n` elements of `M` tries two passes
/// ([`log_softmax_two_pass`]) first; split rows ([`super::split`]) follow
/// the same rule.
pub(crate) fn log_two_pass<M>(n: usize) -> bool {
    size_of::<M>() >= 4 && n * size_of::<M>() >= LOG_TWO_PASS_MIN_BYTES
}

/// Log-softmax in two passes over the row: the pair sum of two-pass
/// softmax ([`two_pass_sum`]), which reads each block of the row once for
/// its max and its exponentials' sum, then the write, y = (x - m) -
/// ln(sum exp(x - m)) with ln(sum exp(x - m)) from the pair
/// ([`pair_ln_sum`]). Three-pass log-softmax reads the row once more, for
/// its max. Returns `false`, having written nothing, for a row the pair
/// does not represent (NaN, +inf, x > 2^18, all -inf or a max below about
/// -2^18), which takes the three passes; -inf entries and entries below
/// -2^18 are clamped in the sum, as in two-pass softmax.
///
/// # Safety
/// As for [`log_softmax`].
#[inline(always)]
unsafe fn log_softmax_two_pass<V: Storage<M>, M>(x: *const M, y: *mut M, n: usize) -> bool {
    // SAFETY: this function's contract.
    unsafe {
        let (sum, exp, max) = two_pass_sum::<V, M>(x, n);
        let Some((sum, exp)) = two_pass_accept(sum, exp) else {
            return false;
        };
        let ln_sum = V::Elem::from_f64(pair_ln_sum(sum, exp, max));
        log_softmax_write::<V, M>(x, y, n, V::Elem::from_f64(max), ln_sum, streams::<M>(n));
        #[cfg(test)]
        tests::TWO_PASS_LOG_ROWS.with(|rows| rows.set(rows.get() + 1));
        true
    }
}

/// Whether log-softmax copies x to `y` in its exp-and-sum pass and
/// computes (y - m) - ln(sum) in place, rather than (x - m) - ln(sum) from
/// `x` in its last pass (the same arithmetic, so the same bits): for rows
/// stored in the compute type that are not streamed. The lines of `y` are
/// then fetched for writing while the compute-bound pass runs, as
/// softmax's exponentials are, and the last pass touches `y` alone, which
/// that pass left in cache. Measured (AVX-512, Emerald Rapids, float32,
/// medians of 5 runs, time / softmax's time), with x - m written in that
/// pass (round 6): rows of 1024 (4096 rows) 1.19 -> 1.05, 30522 (64 rows)
/// 1.13 -> 1.02, 65536 1.18 -> 1.02, 2^20 1.31 -> 1.09; in the write pass,
/// y's lines came from L2 or memory with nothing to hide behind. A copy
/// instead of x - m keeps the exponentials' loop free of the subtraction
/// and of x's second load (both forms in one process, interleaved, six
/// runs, log-softmax's time): 4096x1024 -3% to -5% (one run 0), 256x1024
/// -3% to -8%, 1024x128 -3% to -8%, 64x30522 -1% to -5% (now 1.00x
/// softmax's time). Streamed rows keep the write from `x`, whose stores
/// skip the cache. So do 16-bit rows: the copy would give them the same
/// bits too, but it has not been measured on them.
fn copies_input<V: Vector, M>(n: usize) -> bool {
    size_of::<M>() == size_of::<V::Elem>() && !streams::<M>(n)
}

/// The shift m of log-softmax (the row max, or 0 when not finite) and its
/// exponential.
///
/// # Safety
/// The CPU must have the instruction set of `V`; `x` valid for `n` elements.
#[inline(always)]
unsafe fn log_softmax_max<V: Storage<M>, M>(x: *const M, n: usize) -> (V::Elem, ShiftedExp<V>) {
    // SAFETY: this function's contract.
    unsafe {
        log_softmax_shift::<V>(row_max::<V, M>(x, n), n)
    }
}

/// The shift of log-softmax for a row of `n` elements whose max is `max`:
/// `max`, or 0 when it is not finite, and its exponential.
///
/// # Safety
/// The CPU must have the instruction set of `V`.
#[inline(always)]
unsafe fn log_softmax_shift<V: Vector>(max: V::Elem, n: usize) -> (V::Elem, ShiftedExp<V>) {
    // SAFETY: this function's contract.
    unsafe {
        // The pair form when the max is finite: cheaper per element than
        // the plain exp (one scaling step instead of a clamp and two) and
        // the same form softmax uses, so log_softmax costs no more. Its sum
        // is c times sum exp(x - m).
        if max.is_finite() {
            (max, ShiftedExp::new(max, n))
        } else {
            (V::Elem::ZERO, ShiftedExp::plain(V::Elem::ZERO))
        }
    }
}

/// ln(sum exp(x - m)) of log-softmax, for the row's `shifted` from
/// [`log_softmax_max`], through [`log_softmax_sum`].
///
/// # Safety
/// The CPU must have the instruction set of `V`; `x` and `y` valid for `n`
/// elements.
#[inline(always)]
unsafe fn log_softmax_ln_sum<V: Storage<M>, M>(x: *const M, y: *mut M, n: usize, shifted: &ShiftedExp<V>) -> V::Elem {
    // SAFETY: this function's contract.
    unsafe {
        // One logarithm per row: ln(scaled / c) is ln(scaled) - ln(c) within
        // the f64 quotient's rounding, far below an f32 or f64 result's ulp.
        V::Elem::from_f64(row_ln::<V>(log_softmax_sum::<V, M>(x, y, n, shifted)))
    }
}

/// sum exp(x - m) of log-softmax (the scaled sum over the row constant c),
/// for the row's `shifted` from [`log_softmax_max`]; copies x to `y` when
/// [`copies_input`], and otherwise warms `y` for the last pass unless that
/// pass streams.
///
/// # Safety
/// As for [`log_softmax_ln_sum`].
#[inline(always)]
unsafe fn log_softmax_sum<V: Storage<M>, M>(x: *const M, y: *mut M, n: usize, shifted: &ShiftedExp<V>) -> f64 {
    // SAFETY: this function's contract.
    unsafe {
        let scaled = if copies_input::<V, M>(n) {
            sum_map::<V, M, M, CopyInput>(x, y, n, shifted, true)
        } else {
            sum_map::<V, M, M, NoWrite>(x, y, n, shifted, !streams::<M>(n))
        };
        scaled / shifted.row_constant().to_f64()
    }
}

/// The last pass of log-softmax: y = (x - m) - ln_sum, in place from the
/// copy of x [`log_softmax_sum`] left in `y`, or from `x`.
///
/// # Safety
/// The CPU must have the instruction set of `V`; `x` and `y` valid for `n`
/// elements.
#[inline(always)]
unsafe fn log_softmax_finish<V: Storage<M>, M>(x: *const M, y: *mut M, n: usize, m: V::Elem, ln_sum: V::Elem) {
    // SAFETY: this function's contract.
    unsafe {
        if copies_input::<V, M>(n) {
            update_in_place::<V, M, _>(y, n, &LogValue { m: V::splat(m), ln_sum: V::splat(ln_sum) });
        } else {
            log_softmax_write::<V, M>(x, y, n, m, ln_sum, streams::<M>(n));
        }
    }
}

/// Log-softmax rows of more than this many bytes, stored in the compute
/// type, go through [`fused_rows`] up to [`FUSED_MAX_BYTES`]; shorter ones
/// keep their groups. Fused rows against groups of eight (`benches/ab`,
/// AVX-512, rows of n float32 elements, medians of 15 rounds, one run):
/// n = 384 0.71, 512 0.78 (from memory), 512 in cache 1.00; n = 256 0.99
/// (from memory) but 1.07 in cache, n = 128 1.22.
const LOG_FUSED_MIN_BYTES: usize = 1024;

/// Log-softmax rows of at most this many bytes that [`fused_rows`] does
/// not take go in groups of [`LOG_GROUP`] ([`log_softmax_groups`]);
/// longer ones one by one.
///
/// Up to 1 KiB (issue 11, round 11; `benches/ab`, AVX-512, Emerald Rapids,
/// float32, the groups' time / that of log-softmax rows pipelined as
/// [`softmax_rows`] pipelines softmax rows, a path removed in round 13):
/// rows of 256 0.89 (16384 rows), 0.94 (2048 rows); of 384 0.99; of 512
/// 1.01. Raised to 2 KiB in round 13 on AMD Zen 4, against that pipeline
/// for rows of 1025 to 2048 bytes: float32 `benches/ab` (B/A, medians of
/// 21 rounds) AVX-512 4096x512 0.88, 0.83, 2048x512 0.94, 8192x448 0.99,
/// 8192x384 1.03, 8192x320 0.91; AVX2 4096x512 0.87, 8192x384 0.95,
/// 8192x320 0.86; through the native binding (both builds in one
/// process, AVX-512) bfloat16 / float16 4096x1024 0.93 / 0.93, float64
/// 8192x256 0.89, 4096x192 0.92, float32 4096x512 0.99. Longer rows
/// pipelined lost (4096x1024 1.62, 8192x768 1.14): rows one by one keep
/// more of L1.
const LOG_GROUP_MAX_BYTES: usize = 2048;

/// Log-softmax of the short rows of `batch` ([`is_short`], more than one)
/// in groups ([`log_softmax_groups`]), loaded into registers for the sum
/// and again for the write: no loops, and no copy of x. `PART` is
/// [`register_part`] of the rows (with another, their max and sum may
/// miss elements).
///
/// # Safety
/// As for [`log_softmax_rows`].
#[inline(always)]
unsafe fn short_log_groups<V: Storage<M>, M, const PART: usize>(batch: &RowBatch<M>) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and rows i < batch.rows are valid with the aliasing it names.
    unsafe {
        let n = batch.n;
        log_softmax_groups::<V>(
            batch.rows,
            #[inline(always)]
            |i| ShortRow::<V, PART>::load(batch.x_row(i), n).log_sum(),
            #[inline(always)]
            |i, m, ln_sum| {
                let regs = V::load_registers::<SHORT_REGS>(batch.x_row(i), n, V::Elem::NEG_INFINITY);
                ShortRow::<V>::write_log(regs, batch.y_row(i), n, m, ln_sum)
            },
        );
    }
}

/// Rows per group of [`log_softmax_groups`]. Measured only on a variant
/// not kept, with short rows in registers (`benches/ab`, AVX-512, float32,
/// time / groups of 8): 65536 rows of 64 (from memory) 2: 1.18, 4: 1.06,
/// 16: 1.08; 2048 rows of 64 (in L2) 2: 1.12, 4: 1.07, 16: 0.94. Other
/// sizes of the landed groups were not measured.
const LOG_GROUP: usize = 8;

/// Log-softmax of each row of `batch`, each computed as by
/// [`log_softmax`]: rows stored in the compute type of more than
/// [`LOG_FUSED_MIN_BYTES`] and up to [`FUSED_MAX_BYTES`] with the next
/// row's max in the last pass ([`fused_rows`]), the other rows of up to
/// [`LOG_GROUP_MAX_BYTES`] in groups, the rest one by one.
///
/// # Safety
/// As for [`softmax_rows`].
#[inline(always)]
pub unsafe fn log_softmax_rows<V: Storage<M>, M>(batch: RowBatch<M>) {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and rows i < batch.rows are valid with the aliasing it names.
    unsafe {
        let (rows, n) = (batch.rows, batch.n);
        let bytes = n * size_of::<M>();
        if rows > 1 && is_short::<V>(n) {
            // Short rows in groups too, each batch with its rows' part of
            // a register as a constant.
            return match register_part::<V>(n) {
                4 => short_log_groups::<V, M, 4>(&batch),
                2 => short_log_groups::<V, M, 2>(&batch),
                _ => short_log_groups::<V, M, 1>(&batch),
            };
        }
        if rows > 1 && bytes > LOG_FUSED_MIN_BYTES && log_fuses_rows::<M>(n) && copies_input::<V, M>(n) {
            return fused_rows::<V, M, _>(
                &batch,
                #[inline(always)]
                |x, y, max| {
                    let (m, shifted) = log_softmax_shift::<V>(max, n);
                    let ln_sum = log_softmax_ln_sum::<V, M>(x, y, n, &shifted);
                    Some(LogValue { m: V::splat(m), ln_sum: V::splat(ln_sum) })
                },
            );
        }
        if rows > 1 && bytes <= LOG_GROUP_MAX_BYTES {
            return log_softmax_groups::<V>(
                rows,
                #[inline(always)]
                |i| {
                    let (x, y) = (batch.x_row(i), batch.y_row(i));
                    let (m, shifted) = log_softmax_max::<V, M>(x, n);
                    (m, log_softmax_sum::<V, M>(x, y, n, &shifted))
                },
                #[inline(always)]
                |i, m, ln_sum| log_softmax_finish::<V, M>(batch.x_row(i), batch.y_row(i), n, m, ln_sum),
            );
        }
        for i in 0..rows {
            log_softmax::<V, M>(batch.x_row(i), batch.y_row(i), n);
        }
    }
}

/// Log-softmax of rows `0..rows` in groups of [`LOG_GROUP`]: `sum` of each
/// row of a group (its shift m and sum exp(x - m)), then the group's
/// logarithms ([`Vector::ln8`], each [`row_ln`]'s), then `finish` of each
/// row with m and ln(sum). Below AVX-512 the logarithm is a call into the C
/// library, which clobbers every vector register: within a group the calls
/// follow each other with no vector state to save and restore around them,
/// and their latencies overlap. At AVX-512 the group's eight are computed in
/// the lanes of one register ([`Vector::ln8`]), with [`ln`]'s operations in
/// each lane, and a group is finished after the next one is summed. Each
/// row gets the same operations as alone: results are bit-identical. A
/// group's rows are all summed before any is finished: `sum` may write row
/// i's output (a copy of x), `finish` reads row i's input or that copy.
/// Finishing a group after the next one's sums keeps this, since each
/// output row is its input row or disjoint from every row.
///
/// # Safety
/// The CPU must have the instruction set of `V`.
#[inline(always)]
unsafe fn log_softmax_groups<V: Vector>(rows: usize, mut sum: impl FnMut(usize) -> (V::Elem, f64), mut finish: impl FnMut(usize, V::Elem, V::Elem)) {
    if !V::INLINE_LN {
        // The C library's logarithms, between the group's sums and its last
        // pass. At AVX2, a group late they measured 0.97-1.04x this loop's
        // time, and the loop below without its lag 1.03-1.14x (issue 11,
        // round 42).
        let mut start = 0;
        while start < rows {
            let group = LOG_GROUP.min(rows - start);
            // A short last group's other lanes take ln(1).
            let (mut m, mut s) = ([V::Elem::ZERO; LOG_GROUP], [1.0; LOG_GROUP]);
            for k in 0..group {
                (m[k], s[k]) = sum(start + k);
            }
            // SAFETY: this function's contract: the CPU has V's features.
            let ln8 = unsafe { V::ln8(&s) };
            for k in 0..group {
                finish(start + k, m[k], V::Elem::from_f64(ln8[k]));
            }
            start += group;
        }
        return;
    }
    // With the eight logarithms in one register (`INLINE_LN`), a group's
    // logarithms and last pass come one step late, after the next group's
    // sums, so that their latency overlaps those sums. With the scalar
    // logarithms and no lag, rows of 16-200 float32 elements took 1.00-1.05x
    // this loop's time (issue 11, round 42).
    let lag = 1;
    let groups = rows.div_ceil(LOG_GROUP);
    // Each group's shifts m and sums, in two slots for the lag.
    let mut slots = [([V::Elem::ZERO; LOG_GROUP], [0.0; LOG_GROUP]); 2];
    for step in 0..groups + lag {
        if step < groups {
            let (start, (m, s)) = (step * LOG_GROUP, &mut slots[step % 2]);
            let group = LOG_GROUP.min(rows - start);
            for k in 0..group {
                (m[k], s[k]) = sum(start + k);
            }
            // A short last group's other lanes take ln(1), in range.
            s[group..].fill(1.0);
        }
        if step >= lag {
            let (start, (m, s)) = ((step - lag) * LOG_GROUP, &slots[(step - lag) % 2]);
            let group = LOG_GROUP.min(rows - start);
            // SAFETY: this function's contract: the CPU has V's features.
            let ln8 = unsafe { V::ln8(s) };
            let mut ln_sum = [V::Elem::ZERO; LOG_GROUP];
            for k in 0..group {
                ln_sum[k] = V::Elem::from_f64(ln8[k]);
            }
            for k in 0..group {
                finish(start + k, m[k], ln_sum[k]);
            }
        }
    }
}

/// The write pass of log-softmax from `x`: y = (x - m) - ln_sum.
///
/// # Safety
/// The CPU must have the instruction set of `V` (vector code); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub(crate) unsafe fn log_softmax_write<V: Storage<M>, M>(x: *const M, y: *mut M, n: usize, m: V::Elem, ln_sum: V::Elem, stream: bool) {
    // SAFETY: this function's contract.
    unsafe { write_row(x, y, n, &LogValue { m: V::splat(m), ln_sum: V::splat(ln_sum) }, stream) }
}

/// ln(sum) for log-softmax at the level of `V`: the inline [`ln`] on
/// 512-bit registers (AVX-512), the C library's `ln` below. Measured on AMD
/// Zen 4 (issue 11, round 38; log-softmax through the binding, both builds
/// in one process, one thread, six call depths, five rounds, one run;
/// time with the inline logarithm at every level / with the C library's,
/// short rows in registers in both): AVX-512 float32 65536x16
/// 0.91, 2048x64 0.92, 65536x64 0.93, 4096x1024 0.98, 8192x384 0.98;
/// AVX2 2048x64 1.06, 65536x64 1.07 (eight logarithms in two 256-bit
/// halves, with gathers), 8192x384 1.03, float64 0.96-0.99. The two
/// differ by about an ulp at most ([`ln`]); every path of one level takes
/// the same one, so that a row's bits do not depend on whether it runs
/// alone, in a group or fused.
#[inline(always)]
pub(crate) fn row_ln<V: Vector>(sum: f64) -> f64 {
    if V::INLINE_LN {
        ln(sum)
    } else {
        sum.ln()
    }
}

/// (x - m) - ln_sum.
struct LogValue<V> {
    m: V,
    ln_sum: V,
}

impl<V: Vector> WriteValue<V> for LogValue<V> {
    #[inline(always)]
    unsafe fn value(&self, x: V) -> V {
        x.sub(self.m).sub(self.ln_sum)
    }
}

/// logsumexp of one row in f64, in one pass over the data for every row
/// the two-pass (mantissa, exponent) sum represents (|x| <= 2^18, no NaN or
/// +inf, not all -inf): ln(sum * 2^exp) = ln(sum) + exp ln 2. Other rows
/// take a max pass and a shifted-exp sum, or are special (see
/// [`scalar::logsumexp`](super::scalar::logsumexp)).
///
/// # Safety
/// The CPU must have the instruction set of `V`; `x` must be valid for
/// reading `n` elements.
#[inline(always)]
pub unsafe fn logsumexp<V: Storage<M>, M>(x: *const M, n: usize) -> f64 {
    // SAFETY: this function's contract: the CPU has the instruction set of V,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let (sum, exp, _) = two_pass_sum::<V, M>(x, n);
        if let Some((sum, exp)) = two_pass_accept(sum, exp) {
            return sum.ln() + exp * std::f64::consts::LN_2;
        }
        let m = row_max::<V, M>(x, n);
        if !m.is_finite() {
            // +inf, or -inf (all -inf, or empty); the vector max may have
            // dropped a NaN, which wins over both.
            let has_nan = (0..n).any(|i| V::read(x.add(i)).is_nan());
            return if has_nan { f64::NAN } else { m.to_f64() };
        }
        // A finite max: the row's entries beyond 2^18 in magnitude. NaN
        // entries poison the sum.
        let f = ShiftedExp::<V>::new(m, n);
        let scaled = sum_map::<V, M, M, NoWrite>(x, std::ptr::null_mut(), n, &f, false);
        m.to_f64() + (scaled / f.row_constant().to_f64()).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{self, Isa, Kernel};
    use crate::simd::{Element, Simd};

    /// Log-softmax of one row at a vector level through the two passes
    /// (`TWO`: [`log_softmax_two_pass`], which returns whether it took the
    /// row) or the three (`false` then).
    struct LogRow<'a, T, const TWO: bool> {
        x: &'a [T],
        y: &'a mut [T],
    }

    impl<T: Element, const TWO: bool> Kernel for LogRow<'_, T, TWO> {
        type Output = bool;

        fn scalar(self) -> bool {
            unreachable!("the two- and three-pass forms are the vector kernels'")
        }

        #[inline(always)]
        fn vector<S: Simd>(self, _: S) -> bool {
            let (x, y, n) = (self.x.as_ptr(), self.y.as_mut_ptr(), self.x.len());
            assert_eq!(n, self.y.len());
            // SAFETY: x and y are distinct slices of n elements; the token
            // proves the CPU has S.
            unsafe {
                if TWO {
                    return log_softmax_two_pass::<T::Vector<S>, T>(x, y, n);
                }
                log_softmax_three_pass::<T::Vector<S>, T>(x, y, n);
                false
            }
        }
    }

    std::thread_local! {
        /// Rows [`log_softmax_two_pass`] has written on this thread (unit
        /// tests only).
        pub(super) static TWO_PASS_LOG_ROWS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Float32 and float64 rows of `LOG_TWO_PASS_MIN_BYTES` (here 37
    /// elements past it) take the two passes through the public function,
    /// so the accuracy tests of such rows (`tests/softmax_kernels.rs`)
    /// check the two passes wherever the pair accepts the row: on every
    /// vector level the public `log_softmax` writes the row through
    /// [`log_softmax_two_pass`] (its count of rows goes up by one), and
    /// its output is the two passes' bit for bit. On the float64 row the
    /// three passes give other bits (asserted), so the comparison alone
    /// tells the paths apart; on this float32 row they gave the same bits
    /// (not asserted: each row's float32 logarithm rounded alike), and the
    /// count does.
    /// The threshold and 16-bit rows (three passes) are asserted through
    /// `log_two_pass`.
    #[test]
    fn long_log_softmax_rows_take_the_two_passes() {
        if cfg!(miri) {
            return; // rows of 8 MiB: far beyond what Miri interprets in time.
        }
        let min = LOG_TWO_PASS_MIN_BYTES;
        assert!(log_two_pass::<f32>(min / 4) && !log_two_pass::<f32>(min / 4 - 1));
        assert!(log_two_pass::<f64>(min / 8) && !log_two_pass::<f64>(min / 8 - 1));
        assert!(!log_two_pass::<half::bf16>(min) && !log_two_pass::<half::f16>(min));
        check_public_path_is_two_pass::<f32>(min / 4 + 37, false);
        check_public_path_is_two_pass::<f64>(min / 8 + 37, true);
    }

    fn check_public_path_is_two_pass<T: Element>(n: usize, three_differs: bool) {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let x: Vec<T> = (0..n)
            .map(|_| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                T::round_from_f64(((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 40.0)
            })
            .collect();
        let bits = |v: &[T]| v.iter().map(|e| e.to_real().to_f64().to_bits()).collect::<Vec<_>>();
        for isa in dispatch::available().into_iter().filter(|&isa| isa != Isa::Scalar) {
            let nan = vec![T::round_from_f64(f64::NAN); n];
            let (mut two, mut three, mut public) = (nan.clone(), nan.clone(), nan);
            assert!(dispatch::run(isa, LogRow::<T, true> { x: &x, y: &mut two }), "{isa}: two passes refused a row of finite values");
            dispatch::run(isa, LogRow::<T, false> { x: &x, y: &mut three });
            let before = TWO_PASS_LOG_ROWS.with(|rows| rows.get());
            super::super::log_softmax(isa, &x, &mut public);
            let written = TWO_PASS_LOG_ROWS.with(|rows| rows.get()) - before;
            assert_eq!(written, 1, "{isa}: log_softmax of {n} elements did not take the two passes");
            assert!(bits(&public) == bits(&two), "{isa}: log_softmax of {n} elements is not the two passes' result");
            if three_differs {
                assert!(bits(&three) != bits(&two), "{isa}: the three passes gave the two passes' bits; the comparison above cannot tell the paths apart");
            }
        }
    }

    /// The staged exp-and-sum pass against [`sum_map_form`]'s loop and
    /// [`row_max`] on one row of `x` (its max `m`) and the next, `next`.
    struct StagedRow<'a> {
        x: &'a [f32],
        next: &'a [f32],
    }

    impl Kernel for StagedRow<'_> {
        type Output = ();

        fn scalar(self) {
            unreachable!("the staged pass is the vector kernels'")
        }

        #[inline(always)]
        fn vector<S: Simd>(self, _: S) {
            type V<S> = <f32 as Element>::Vector<S>;
            let (x, n) = (self.x.as_ptr(), self.x.len());
            assert_eq!(self.next.len(), n);
            let bits = |v: &[f32]| v.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
            let (mut plain, mut staged) = (vec![0.0f32; n], vec![0.0f32; n]);
            // SAFETY: x, next, plain and staged are distinct slices of n
            // elements; the token proves the CPU has S.
            unsafe {
                let m = row_max::<V<S>, f32>(x, n);
                let f = ShiftedExp::<V<S>>::new(m, n);
                assert!(f.pairs);
                // The staged loop evaluates exp_down_fast, the n-first form
                // too where it is split (not at AVX-512, whose n-first form
                // differs but which does not stage).
                let f = ShiftedExp { n_first: f.n_first && V::<S>::EXP_DOWN_STAGED, ..f };
                let sum_plain = if f.n_first {
                    sum_map_form::<V<S>, f32, f32, WriteExp, true, true>(x, plain.as_mut_ptr(), n, &f, true)
                } else {
                    sum_map_form::<V<S>, f32, f32, WriteExp, true, false>(x, plain.as_mut_ptr(), n, &f, true)
                };
                let (sum, m_next) = sum_map_staged::<V<S>, f32, f32, WriteExp, true>(x, staged.as_mut_ptr(), n, &f, true, self.next.as_ptr());
                assert_eq!(sum.to_bits(), sum_plain.to_bits(), "n={n}");
                assert_eq!(bits(&staged), bits(&plain), "n={n}");
                assert_eq!(m_next.to_bits(), row_max::<V<S>, f32>(self.next.as_ptr(), n).to_bits(), "n={n}");
                let (sum_alone, _) = sum_map_staged::<V<S>, f32, f32, NoWrite, false>(x, std::ptr::null_mut(), n, &f, false, std::ptr::null());
                assert_eq!(sum_alone.to_bits(), sum_plain.to_bits(), "n={n}");
            }
        }
    }

    /// The staged exp-and-sum pass gives [`sum_map_form`]'s bits (sum and
    /// exponentials) and the next row's max [`row_max`]'s, at every vector
    /// level (AVX2 float32 splits the exponential, the others run the
    /// same loop unsplit), across every tail: lengths around the groups
    /// of four registers and the blocks, short rows, rows with -inf (the
    /// staged pass takes finite maxima only), and a next row with a larger
    /// max and a NaN in one of its last four registers (each max chain's).
    /// Rows of more than 8 KiB at AVX2 take the staged loop in
    /// `sum_map_form` too, so there only the max and the pass without
    /// stores are checked against another path; every tail's structure
    /// is among the shorter lengths.
    #[test]
    fn staged_exp_pass_equals_the_plain_one_on_every_level() {
        let mut lens: Vec<usize> = (1..=300).collect();
        lens.extend([2047, 2048, 2049, 2080, 2083, 4096 + 31, 30522]);
        for n in lens {
            let x: Vec<f32> = (0..n).map(|i| if i % 37 == 5 { f32::NEG_INFINITY } else { ((i * 7919) % 6007) as f32 / 100.0 - 30.0 }).collect();
            let mut next: Vec<f32> = x.iter().rev().map(|v| if v.is_finite() { v * 0.5 + 1.0 } else { -3.0 }).collect();
            next[n / 2] = 55.0 + (n % 3) as f32;
            let back = 1 + 8 * (n % 5);
            if n % 2 == 0 && back <= n {
                next[n - back] = f32::NAN;
            }
            for isa in dispatch::available().into_iter().filter(|&isa| isa != Isa::Scalar) {
                dispatch::run(isa, StagedRow { x: &x, next: &next });
            }
        }
    }

    /// Softmax fuses rows of up to 256 KiB at AVX2 (measured on AMD Zen 3
    /// and Zen 4, where it gained on most long rows); every other level
    /// keeps the fusion to rows of up to 8 KiB.
    #[test]
    fn softmax_fuses_long_rows_at_avx2() {
        for isa in [Isa::Scalar, Isa::Avx512, Isa::Neon] {
            assert_eq!(softmax_fused_max_bytes(isa), 8 << 10, "{isa}");
        }
        assert_eq!(softmax_fused_max_bytes(Isa::Avx2), 256 << 10);
    }

    /// Softmax of a batch of rows through [`softmax_rows`] with rows of up
    /// to [`FUSED_LONG_MAX_BYTES`] fused ([`fused_rows`], or
    /// [`next_max_in_exp_pass`] at AVX2 float32), at a vector level: from
    /// `x` into `y`, or in place in `y` when `x` is `None`.
    struct FusedBatch<'a, T> {
        x: Option<&'a [T]>,
        y: &'a mut [T],
        n: usize,
    }

    impl<T: Element> Kernel for FusedBatch<'_, T> {
        type Output = ();

        fn scalar(self) {
            unreachable!("the fused rows are the vector kernels'")
        }

        #[inline(always)]
        fn vector<S: Simd>(self, _: S) {
            let rows = self.y.len() / self.n;
            let y = self.y.as_mut_ptr();
            let x = match self.x {
                Some(x) => {
                    assert_eq!(x.len(), self.y.len());
                    x.as_ptr()
                }
                None => y.cast_const(),
            };
            let batch = RowBatch { x, x_stride: self.n as isize, y, y_stride: self.n as isize, rows, n: self.n };
            // SAFETY: x and y are `rows` rows of n elements, either distinct
            // slices or the same rows (each output row its input row); the
            // token proves the CPU has S.
            unsafe { softmax_rows::<T::Vector<S>, T>(Algorithm::ThreePassReload, batch, FUSED_LONG_MAX_BYTES) };
        }
    }

    /// Rows up to [`FUSED_LONG_MAX_BYTES`] fused give each row exactly
    /// what a lone row gives, at every vector level (production fuses them
    /// at AVX2 only, float32 rows longer than [`FUSED_MAX_BYTES`] through
    /// [`next_max_in_exp_pass`]): lengths just above [`FUSED_MAX_BYTES`], between and
    /// at the long limit, with a NaN row, an all -inf row and a +inf row
    /// among finite ones, float32 and float64.
    #[test]
    fn long_rows_fused_equal_rows_one_at_a_time_on_every_level() {
        fn check<T: Element + Real>(lens: [usize; 3]) {
            for n in lens {
                let rows = 9;
                let mut x: Vec<T> = (0..rows * n).map(|i| T::from_f64(((i * 7919) % 6007) as f64 / 100.0 - 30.0)).collect();
                x[n + n / 2] = T::from_f64(f64::NAN);
                x[2 * n..3 * n].fill(T::NEG_INFINITY);
                x[3 * n + 1] = T::from_f64(f64::INFINITY);
                // Finite rows after finite rows, each with its own max
                // (taken in the previous row's pass), and one whose max is
                // far from 0 (the plain form).
                for (r, shift) in [(5, 7.0), (6, -11.0), (7, 4.0e5), (8, 3.0)] {
                    for v in &mut x[r * n..(r + 1) * n] {
                        *v = T::from_f64(v.to_f64() + shift);
                    }
                }
                let bits = |v: &[T]| v.iter().map(|e| e.to_f64().to_bits()).collect::<Vec<_>>();
                for isa in dispatch::available().into_iter().filter(|&isa| isa != Isa::Scalar) {
                    let mut want = vec![T::ZERO; x.len()];
                    for (xr, yr) in x.chunks(n).zip(want.chunks_mut(n)) {
                        crate::softmax::softmax(isa, Algorithm::ThreePassReload, xr, yr);
                    }
                    let mut y = vec![T::ZERO; x.len()];
                    dispatch::run(isa, FusedBatch { x: Some(&x), y: &mut y, n });
                    assert_eq!(bits(&y), bits(&want), "{isa} n={n}");
                }
            }
        }
        check::<f32>([2049, 30522, FUSED_LONG_MAX_BYTES / 4]);
        check::<f64>([1025, 30522, FUSED_LONG_MAX_BYTES / 8]);
    }

    /// Rows taken in blocks ([`row_blocks`]) give each row exactly what a
    /// lone row gives, at every vector level (blocks at AVX-512 and AVX2
    /// only, which the next test checks): the ends of both block lengths
    /// and a row between, 8 to 35 rows (the last rows fused one at a
    /// time), with a NaN row, a +inf row, an all -inf row, a row with one
    /// -inf and a row whose max is far from 0 (the plain form, alone)
    /// inside the first block, in place and not.
    #[test]
    fn row_blocks_equal_rows_one_at_a_time_on_every_level() {
        fn check<T: Element + Real>(lens: &[usize]) {
            for &n in lens {
                for rows in [8, 9, 16, 17, 32, 35] {
                    let mut x: Vec<T> = (0..rows * n).map(|i| T::from_f64(((i * 7919) % 6007) as f64 / 100.0 - 30.0)).collect();
                    x[n + n / 2] = T::from_f64(f64::NAN);
                    x[3 * n + 1] = T::from_f64(f64::INFINITY);
                    x[4 * n..5 * n].fill(T::NEG_INFINITY);
                    x[6 * n + 2] = T::NEG_INFINITY;
                    for (r, shift) in [(7, 4.0e5), (5, -11.0), (2, 7.0)] {
                        for v in &mut x[r * n..(r + 1) * n] {
                            *v = T::from_f64(v.to_f64() + shift);
                        }
                    }
                    let bits = |v: &[T]| v.iter().map(|e| e.to_f64().to_bits()).collect::<Vec<_>>();
                    for isa in dispatch::available().into_iter().filter(|&isa| isa != Isa::Scalar) {
                        let mut want = vec![T::ZERO; x.len()];
                        for (xr, yr) in x.chunks(n).zip(want.chunks_mut(n)) {
                            crate::softmax::softmax(isa, Algorithm::ThreePassReload, xr, yr);
                        }
                        let mut y = vec![T::ZERO; x.len()];
                        dispatch::run(isa, FusedBatch { x: Some(&x), y: &mut y, n });
                        assert_eq!(bits(&y), bits(&want), "{isa} n={n} rows={rows}");
                        let mut in_place = x.clone();
                        dispatch::run(isa, FusedBatch { x: None, y: &mut in_place, n });
                        assert_eq!(bits(&in_place), bits(&want), "{isa} n={n} rows={rows}, in place");
                    }
                }
            }
        }
        check::<f32>(&[65, 100, 128, 129, 200, 255]);
        check::<f64>(&[33, 50, 64, 65, 100, 128]);
    }

    /// One short row's [`short_max`] and [`short_sum`] (and its sum, as
    /// [`ShortRow::exps_and_sum`] takes it) against the same reductions
    /// over all four registers, at a vector level, for each `PART` of a
    /// register the row fits ([`register_part`]).
    struct ShortReductions<'a, T> {
        x: &'a [T],
    }

    impl<T: Element<Real = T> + Real> ShortReductions<'_, T> {
        /// The checks for rows loaded as `ShortRow<_, PART>`, which hold at
        /// most LANES / `PART` elements if `PART` > 1.
        ///
        /// # Safety
        /// The CPU must have S.
        #[inline(always)]
        unsafe fn check_part<S: Simd, const PART: usize>(&self) {
            type V<S, T> = <T as Element>::Vector<S>;
            let (x, n) = (self.x.as_ptr(), self.x.len());
            let lane_bits = |v: V<S, T>| {
                let mut out = vec![T::ZERO; V::<S, T>::LANES];
                // SAFETY: out holds LANES elements; the caller has S.
                unsafe { v.store_to(out.as_mut_ptr()) };
                out.iter().map(|e| e.to_f64().to_bits()).collect::<Vec<_>>()
            };
            // SAFETY: x holds n <= SHORT_REGS * LANES elements; the caller
            // has S.
            unsafe {
                let row = ShortRow::<V<S, T>, PART>::load(x, n);
                assert_eq!(row.m.to_f64().to_bits(), max_of_chains(row.regs).to_f64().to_bits(), "n={n}, part {PART}");
                if !row.m.is_finite() {
                    return;
                }
                // Softmax's pair form and log-softmax's plain form.
                for f in [ShiftedExp::new(row.m, n), ShiftedExp::plain(row.m)] {
                    let e = if f.pairs { row.exps::<true>(&f) } else { row.exps::<false>(&f) };
                    let mut chains = [V::<S, T>::splat(T::ZERO); 2];
                    for (c, &ec) in e.iter().enumerate() {
                        chains[c % 2] = chains[c % 2].add(ec);
                    }
                    let all_four = chains[0].add(chains[1]);
                    assert_eq!(lane_bits(short_sum(&e, n)), lane_bits(all_four), "n={n}, pairs {}", f.pairs);
                    let (_, sum) = row.exps_and_sum(&f);
                    assert_eq!(sum.to_bits(), all_four.reduce_add().to_f64().to_bits(), "n={n}, part {PART}, pairs {}, sum", f.pairs);
                }
            }
        }
    }

    impl<T: Element<Real = T> + Real> Kernel for ShortReductions<'_, T> {
        type Output = ();

        fn scalar(self) {
            unreachable!("short rows are the vector kernels'")
        }

        #[inline(always)]
        fn vector<S: Simd>(self, _: S) {
            let n = self.x.len();
            let lanes = <T as Element>::Vector::<S>::LANES;
            // SAFETY: the token proves the CPU has S. (Each part is checked
            // only on rows that fit it.)
            unsafe {
                self.check_part::<S, 1>();
                if n <= lanes / 2 {
                    self.check_part::<S, 2>();
                }
                if n <= lanes / 4 {
                    self.check_part::<S, 4>();
                }
            }
        }
    }

    /// [`short_max`] and [`short_sum`] over the registers that hold a short
    /// row's elements against all four registers (the padding: -inf in x,
    /// 0 among the exponentials; the sum from zero in two chains, as before
    /// round 45), bit for bit, at every vector level, for every length up
    /// to four registers: rows without NaN holding +-0, -inf and values
    /// from -30 to 30, and all -inf rows; the sums in softmax's pair form
    /// and log-softmax's plain form, and for each part of a register the
    /// row fits ([`register_part`]).
    #[test]
    fn short_rows_reduce_over_their_registers_as_over_all_four() {
        fn check<T: Element<Real = T> + Real>() {
            for isa in dispatch::available().into_iter().filter(|&isa| isa != Isa::Scalar) {
                // The longest short row at this level.
                let longest = dispatch::run(isa, ShortLen::<T>(std::marker::PhantomData));
                for n in 0..=longest {
                    let mut x: Vec<T> = (0..n).map(|i| T::from_f64(((i * 7919) % 6007) as f64 / 100.0 - 30.0)).collect();
                    for (i, v) in x.iter_mut().enumerate() {
                        match i % 7 {
                            1 => *v = T::ZERO,
                            3 => *v = T::from_f64(-0.0),
                            5 => *v = T::NEG_INFINITY,
                            _ => {}
                        }
                    }
                    dispatch::run(isa, ShortReductions { x: &x });
                    let neg_inf = vec![T::NEG_INFINITY; n];
                    dispatch::run(isa, ShortReductions { x: &neg_inf });
                }
            }
        }
        check::<f32>();
        check::<f64>();
    }

    /// [`is_short`]'s longest row at a level.
    struct ShortLen<T>(std::marker::PhantomData<T>);

    impl<T: Element> Kernel for ShortLen<T> {
        type Output = usize;

        fn scalar(self) -> usize {
            0
        }

        #[inline(always)]
        fn vector<S: Simd>(self, _: S) -> usize {
            SHORT_REGS * <T::Vector<S> as Vector>::LANES
        }
    }

    /// [`row_block`] at each level: the lengths the test above checks are
    /// blocked at AVX-512 and AVX2, and nowhere else.
    #[test]
    fn row_blocks_take_the_lengths_the_test_checks() {
        struct Blocks(usize, usize);
        impl Kernel for Blocks {
            type Output = (usize, usize);
            fn scalar(self) -> (usize, usize) {
                (0, 0)
            }
            #[inline(always)]
            fn vector<S: Simd>(self, _: S) -> (usize, usize) {
                (row_block::<<f32 as Element>::Vector<S>, f32>(self.0), row_block::<<f64 as Element>::Vector<S>, f64>(self.1))
            }
        }
        for isa in dispatch::available() {
            let on = |rows| if matches!(isa, Isa::Avx512 | Isa::Avx2) { rows } else { 0 };
            for (n32, n64, rows) in [(65, 33, 16), (100, 50, 16), (128, 64, 16), (129, 65, 8), (200, 100, 8), (255, 127, 8), (255, 128, 8)] {
                assert_eq!(dispatch::run(isa, Blocks(n32, n64)), (on(rows), on(rows)), "{isa} {n32} {n64}");
            }
            assert_eq!(dispatch::run(isa, Blocks(128, 128)), (on(16), on(8)), "{isa}");
            assert_eq!(dispatch::run(isa, Blocks(256, 129)), (0, 0), "{isa}");
        }
    }
}
