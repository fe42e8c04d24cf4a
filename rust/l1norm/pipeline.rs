//! The int8 row loop of the vector kernels, software-pipelined across rows.
//!
//! Each row needs three passes with long serial latency between them
//! (a horizontal reduction and the mean before pass 2, another reduction
//! and the fixed-point constants before pass 3). Interleaving the passes
//! of the next rows with pass 3 of this one lets the out-of-order core
//! hide that latency behind independent work.

use super::fixed::{BatchConstants, Requant};
use super::{Affine, RowBatch};

/// The three element passes of one instruction set.
pub(super) trait I8Passes {
    /// S = sum of the row.
    unsafe fn sum(x: *const i8, n: usize) -> i64;
    /// (sum |x - q|, sum |x - q1|) with q1 = min(q + 1, 127).
    unsafe fn sad(x: *const i8, n: usize, q: i8) -> (u64, u64);
    /// Steps 6-7 of the contract for the whole row.
    unsafe fn write(x: *const i8, y: *mut i8, n: usize, rq: &Requant, affine: Affine<i8>);
}

/// Passes 2 and the constants of a row whose sum is known.
///
/// # Safety
/// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn constants<P: I8Passes>(x: *const i8, n: usize, sum: i64, consts: &BatchConstants) -> Requant {
    // SAFETY: this function's contract: the CPU has this file's instruction set,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let mean = consts.mean(sum);
        // q = 127 only for a row of 127s, where r = 0 and sad_q1 is unused.
        let (sad_q, sad_q1) = P::sad(x, n, mean.q as i8);
        consts.requant(mean, sad_q, sad_q1)
    }
}

/// Rows of at most this many elements take [`run_two_ahead`], longer
/// ones [`run_one_ahead`].
const TWO_AHEAD_MAX_LEN: usize = 1024;

/// Every row of `batch`, with the passes of consecutive rows interleaved.
/// Row i is fully read before it is written, so `y` may equal `x` row for
/// row.
///
/// # Safety
/// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub(super) unsafe fn run<P: I8Passes>(batch: RowBatch<i8>, gain: f32, affine: Affine<i8>) {
    // SAFETY: this function's contract; the early return leaves the
    // two loops at least one row of at least one element.
    unsafe {
        if batch.n == 0 || batch.rows == 0 {
            return;
        }
        let consts = BatchConstants::new(batch.n as u64, gain);
        if batch.n <= TWO_AHEAD_MAX_LEN {
            run_two_ahead::<P>(batch, &consts, affine)
        } else {
            run_one_ahead::<P>(batch, &consts, affine)
        }
    }
}

/// In the order: pass 1 of row i + 1, pass 3 of row i, pass 2 and
/// constants of row i + 1.
///
/// # Safety
/// As for [`run`], with at least one row of at least one element.
#[inline(always)]
unsafe fn run_one_ahead<P: I8Passes>(batch: RowBatch<i8>, consts: &BatchConstants, affine: Affine<i8>) {
    // SAFETY: this function's contract: the CPU has this file's instruction set,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let n = batch.n;
        let mut rq = constants::<P>(batch.x_row(0), n, P::sum(batch.x_row(0), n), consts);
        for i in 0..batch.rows {
            let next = i + 1 < batch.rows;
            let next_sum = if next { P::sum(batch.x_row(i + 1), n) } else { 0 };
            P::write(batch.x_row(i), batch.y_row(i), n, &rq, affine);
            if next {
                rq = constants::<P>(batch.x_row(i + 1), n, next_sum, consts);
            }
        }
    }
}

/// In the order: pass 1 of row i + 2, pass 2 and constants of row i + 1,
/// pass 3 of row i. On short rows the constants' serial chain (two
/// reductions, the mean, pass 2, the per-row arithmetic) is a large part
/// of a row's time. Here row i + 1's chain is followed by the write of
/// row i, which does not depend on it; [`run_one_ahead`] follows it with
/// the write of row i + 1, which waits for it.
///
/// Time against `run_one_ahead` at AVX-512 (Zen 4, `benches/ab`, 31
/// rounds): rows of 64 bytes 0.91, 128 0.76, 256 0.66, 512 0.76, 1 KiB
/// 0.87-0.89 (0.99-1.00 in two runs of 21 rounds); but rows of 1.5 to 4
/// KiB 1.07-1.12 (21 rounds), hence `TWO_AHEAD_MAX_LEN`. At AVX2
/// 0.95-1.08 (two runs): no clear change.
///
/// # Safety
/// As for [`run_one_ahead`].
#[inline(always)]
unsafe fn run_two_ahead<P: I8Passes>(batch: RowBatch<i8>, consts: &BatchConstants, affine: Affine<i8>) {
    // SAFETY: this function's contract: the CPU has this file's instruction set,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let n = batch.n;
        let mut rq = constants::<P>(batch.x_row(0), n, P::sum(batch.x_row(0), n), consts);
        let mut next_sum = if batch.rows > 1 { P::sum(batch.x_row(1), n) } else { 0 };
        for i in 0..batch.rows {
            let after_next_sum = if i + 2 < batch.rows { P::sum(batch.x_row(i + 2), n) } else { 0 };
            let next_rq = if i + 1 < batch.rows { constants::<P>(batch.x_row(i + 1), n, next_sum, consts) } else { rq };
            P::write(batch.x_row(i), batch.y_row(i), n, &rq, affine);
            (rq, next_sum) = (next_rq, after_next_sum);
        }
    }
}
