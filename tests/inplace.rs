//! The safe in-place entry points give the out-of-place result on every
//! level this CPU has (bit for bit where the kernels do not depend on the
//! input address). Small on purpose: this file is what Miri
//! runs (README, "Miri"), where the pointer both reads and writes go through
//! must come from one borrow.

mod common;
use common::in_place_batch;
use normkit::dispatch::{self, Isa};
use normkit::l1norm;
use normkit::norm::{self, Norm};
use normkit::softmax::{self, Algorithm};

/// Lengths that cover empty rows, a partial register, one full AVX-512
/// register plus a tail, and several registers.
const LENGTHS: [usize; 5] = [0, 3, 17, 40, 67];

fn row(n: usize, seed: u32) -> Vec<f64> {
    // A small deterministic mix of signs and magnitudes.
    (0..n).map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f64 / 97.0 - 5.0).collect()
}

fn levels() -> Vec<Isa> {
    dispatch::available()
}

fn same_bits<T: Copy + Into<f64>>(a: &[T], b: &[T], what: &str) {
    assert_eq!(a.len(), b.len());
    for (i, (&p, &q)) in a.iter().zip(b).enumerate() {
        let (p, q): (f64, f64) = (p.into(), q.into());
        assert!(p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()), "{what}: element {i}: {p} vs {q}");
    }
}

#[test]
fn softmax_in_place_matches_out_of_place() {
    for isa in levels() {
        for n in LENGTHS {
            let x: Vec<f32> = row(n, 7).into_iter().map(|v| v as f32).collect();
            for algorithm in Algorithm::ALL {
                let mut want = vec![0.0f32; n];
                softmax::softmax(isa, algorithm, &x, &mut want);
                let mut got = x.clone();
                softmax::softmax_inplace(isa, algorithm, &mut got);
                same_bits(&got, &want, &format!("softmax {isa} {algorithm:?} n={n}"));
            }
            let mut want = vec![0.0f32; n];
            softmax::log_softmax(isa, &x, &mut want);
            let mut got = x.clone();
            softmax::log_softmax_inplace(isa, &mut got);
            same_bits(&got, &want, &format!("log_softmax {isa} n={n}"));
        }
    }
}

/// Batches of rows written over themselves through one pointer (the raw
/// batch entry points, as the Python layer calls them). At the vector
/// levels this runs softmax's pipelines and log-softmax's groups of eight
/// (nine rows: one whole group and one more), which read each row before
/// they write it; under Miri, which has only the scalar level, it checks
/// the scalar batch path's pointers.
#[test]
fn batches_in_place_match_rows_out_of_place() {
    let rows = 9;
    for isa in levels() {
        for n in [3, 17] {
            let x: Vec<f32> = (0..rows).flat_map(|r| row(n, r as u32)).map(|v| v as f32).collect();
            let mut want = vec![0.0f32; x.len()];
            let mut want_log = vec![0.0f32; x.len()];
            for ((xr, yr), lr) in x.chunks(n).zip(want.chunks_mut(n)).zip(want_log.chunks_mut(n)) {
                softmax::softmax(isa, Algorithm::ThreePassReload, xr, yr);
                softmax::log_softmax(isa, xr, lr);
            }
            let mut got = x.clone();
            let batch = in_place_batch(&mut got, n);
            // SAFETY: the batch covers `got`'s rows, each written over itself.
            unsafe { softmax::softmax_rows_raw(isa, Algorithm::ThreePassReload, batch) };
            same_bits(&got, &want, &format!("softmax rows {isa} n={n}"));
            let mut got = x.clone();
            let batch = in_place_batch(&mut got, n);
            // SAFETY: as above.
            unsafe { softmax::log_softmax_rows_raw(isa, batch) };
            same_bits(&got, &want_log, &format!("log_softmax rows {isa} n={n}"));
        }
    }
}

/// The norms' vector sums start at the input's first register-aligned
/// element (rust/norm/mod.rs), so the same row at another address may
/// differ in the last bits: compare to a few ulp of the row's largest output.
fn close(a: &[f64], b: &[f64], what: &str) {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (p, q)) in a.iter().zip(b).enumerate() {
        assert!((p - q).abs() <= 4.0 * f64::EPSILON * scale, "{what}: element {i}: {p} vs {q}");
    }
}

#[test]
fn norms_in_place_match_out_of_place() {
    for isa in levels() {
        for n in LENGTHS {
            let x = row(n, 11);
            let residual = row(n, 5);
            let weight = row(n, 3);
            for kind in Norm::ALL {
                let mut want = vec![0.0; n];
                norm::norm(isa, kind, &x, &mut want, 1e-5, Some(&weight), None);
                let mut got = x.clone();
                norm::norm_inplace(isa, kind, &mut got, 1e-5, Some(&weight), None);
                close(&got, &want, &format!("{kind:?} {isa} n={n}"));

                let (mut sum, mut y) = (vec![0.0; n], vec![0.0; n]);
                norm::add_norm(isa, kind, &x, &residual, &mut sum, &mut y, 1e-5, None, None);
                let (mut x2, mut r2) = (x.clone(), residual.clone());
                norm::add_norm_inplace(isa, kind, &mut x2, &mut r2, 1e-5, None, None);
                close(&r2, &sum, &format!("add {kind:?} sum {isa} n={n}"));
                close(&x2, &y, &format!("add {kind:?} y {isa} n={n}"));
            }
        }
    }
}

#[test]
fn int8_l1_norm_in_place_matches_out_of_place() {
    for isa in levels() {
        for n in LENGTHS {
            let x: Vec<i8> = row(n, 13).into_iter().map(|v| (v * 20.0) as i8).collect();
            let mut want = vec![0i8; n];
            l1norm::l1_norm_i8(isa, &x, &mut want, 20.0, None, None);
            let mut got = x.clone();
            l1norm::l1_norm_i8_inplace(isa, &mut got, 20.0, None, None);
            assert_eq!(got, want, "l1_norm_i8 {isa} n={n}");
        }
    }
}
