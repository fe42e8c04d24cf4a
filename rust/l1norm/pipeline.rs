//! The int8 row loop of the vector kernels, software-pipelined across rows.
//!
//! Each row needs three passes with long serial latency between them
//! (a horizontal reduction and a division before pass 2, the fixed-point
//! constants before pass 3). Issuing the independent pass 1 of the next
//! row ahead of pass 3 of this one, and pass 2 of the next row after it,
//! lets the out-of-order core hide that latency behind useful work.

use super::fixed::{Requant, RowConstants};
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
unsafe fn constants<P: I8Passes>(x: *const i8, n: usize, sum: i64, rows: &RowConstants) -> Requant {
    // SAFETY: this function's contract: the CPU has this file's instruction set,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let mean = rows.mean(sum);
        // q = 127 only for a row of 127s, where r = 0 and sad_q1 is unused.
        let (sad_q, sad_q1) = P::sad(x, n, mean.q as i8);
        rows.requant(mean, sad_q, sad_q1)
    }
}

/// Every row of `batch`, in the order: pass 1 of row i + 1, pass 3 of
/// row i, pass 2 and constants of row i + 1. Row i is fully read before it
/// is written, so `y` may equal `x` row for row.
///
/// # Safety
/// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
pub(super) unsafe fn run<P: I8Passes>(batch: RowBatch<i8>, gain: f32, affine: Affine<i8>) {
    // SAFETY: this function's contract: the CPU has this file's instruction set,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let n = batch.n;
        if n == 0 || batch.rows == 0 {
            return;
        }
        let rows = RowConstants::new(n as u64, gain);
        let mut rq = constants::<P>(batch.x_row(0), n, P::sum(batch.x_row(0), n), &rows);
        for i in 0..batch.rows {
            let next = i + 1 < batch.rows;
            let next_sum = if next { P::sum(batch.x_row(i + 1), n) } else { 0 };
            P::write(batch.x_row(i), batch.y_row(i), n, &rq, affine);
            if next {
                rq = constants::<P>(batch.x_row(i + 1), n, next_sum, &rows);
            }
        }
    }
}
