//! Shared by the kernel tests (tests/*_kernels.rs, as `mod common;`). The
//! float64 references in `reference.rs` are also compiled into the fuzz
//! targets (tests/fuzz/src/lib.rs includes that file by path).

// Each test binary uses only part of this.
#![allow(dead_code)]

pub mod reference;

use normkit::l1norm::RowBatch;

/// The rows of `v` (of `n` elements) as a batch written in place, through
/// one pointer derived from `v`.
pub fn in_place_batch<T>(v: &mut [T], n: usize) -> RowBatch<T> {
    let p = v.as_mut_ptr();
    RowBatch { x: p, x_stride: n as isize, y: p, y_stride: n as isize, rows: v.len() / n, n }
}

/// A size for a test loop: `full` natively, `miri` under Miri, which
/// interprets the code (~10^4 times slower) and has only the scalar level:
/// `cargo +nightly miri test --test softmax_kernels` and the like finish in
/// minutes with these cuts.
pub const fn size(full: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        full
    }
}
