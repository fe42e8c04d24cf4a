//! Shared by the kernel tests (tests/*_kernels.rs, as `mod common;`). The
//! float64 references in `reference.rs` are also compiled into the fuzz
//! targets (tests/fuzz/src/lib.rs includes that file by path).

// Each test binary uses only part of this.
#![allow(dead_code)]

pub mod reference;

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
