//! Shared by the kernel tests (tests/*_kernels.rs, as `mod common;`). The
//! float64 references in `reference.rs` are also compiled into the fuzz
//! targets (tests/fuzz/src/lib.rs includes that file by path).

// Each test binary uses only part of this.
#![allow(dead_code)]

pub mod reference;

use normkit::l1norm::RowBatch;
use normkit::simd::Float;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

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

/// The documented bound on a finite log-softmax output of `T` against
/// the float64 result `want` (rounded to `T`): 1e-5 + 1e-7 |want| in
/// float32, 1e-12 + 1e-15 |want| in float64.
pub fn log_softmax_tolerance<T: Float>(want: f64) -> f64 {
    if T::MANTISSA_DIGITS == 24 { 1e-5 + 1e-7 * want.abs() } else { 1e-12 + 1e-15 * want.abs() }
}

/// Rows of `n` elements for the two-pass log-softmax (rows of at least
/// `softmax::LOG_TWO_PASS_MIN_BYTES`), each handed to `each` with a name:
/// random rows; rows whose only NaN, +inf or 3e5 sits in a late block
/// (the pair sum rejects the row, which then takes the three passes) or
/// whose only -inf or -3e5 does (clamped in the pair sum, the row takes
/// two passes); all -inf (three passes); maxima near the pair form's
/// limits (|m| <= 2^18 - 2048); one dominant entry (ln(sum exp(x - m))
/// about 3e-81 in float64, 0 in float32).
pub fn two_pass_log_rows<T: Float>(n: usize, mut each: impl FnMut(&str, &[T])) {
    let mut rng = SmallRng::seed_from_u64(23);
    let mut random = |scale: f64| -> Vec<T> { (0..n).map(|_| T::from_f64(rng.random_range(-1.0..1.0) * scale)).collect() };
    each("random", &random(30.0));
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 3e5, -3e5] {
        let mut row = random(5.0);
        row[n - 100] = T::from_f64(v);
        each(&format!("x[n - 100] = {v}"), &row);
    }
    each("all -inf", &vec![T::from_f64(f64::NEG_INFINITY); n]);
    let limit = 262_144.0 - 2048.0;
    for m in [limit, -limit, 1e4] {
        let mut row: Vec<T> = random(20.0).into_iter().map(|v| T::from_f64(m - 20.0 + v.to_f64())).collect();
        row[n / 3] = T::from_f64(m);
        each(&format!("max {m}"), &row);
    }
    let mut row = vec![T::from_f64(-200.0); n];
    row[n / 2] = T::ZERO;
    each("one dominant entry", &row);
}
