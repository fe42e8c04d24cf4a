//! The L1 norm on every instruction set this CPU has: int8 kernels
//! bit-exact against the scalar reference and within 0.56 of the exact
//! float formula (computed in f64), float kernels against the scalar
//! reference and an f64 computation. All lengths 0..=300 at unaligned
//! starts, with and without weight / bias, special rows, long rows. Under
//! Miri the sizes are cut down (`common::size`).

use normkit::dispatch::{self, Isa};
use normkit::l1norm::{self, fixed};
use normkit::simd::Float;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

mod common;
use common::{reference, size};

/// The longest of the every-length rows (16 under Miri, where only the
/// scalar level runs and each element costs milliseconds).
const MAX_LEN: usize = size(300, 16);

fn run_i8(isa: Isa, x: &[i8], gain: f32, w: Option<&[i8]>, b: Option<&[i8]>) -> Vec<i8> {
    let mut y = vec![99i8; x.len()];
    l1norm::l1_norm_i8(isa, x, &mut y, gain, w, b);
    y
}

/// Every ISA equals scalar (also in place) and scalar is within 0.56 of
/// the float formula.
fn check_i8(what: &str, x: &[i8], gain: f32, w: Option<&[i8]>, b: Option<&[i8]>) {
    let want = run_i8(Isa::Scalar, x, gain, w, b);
    let exact = reference::l1_norm_i8(x, gain, w, b);
    for (i, (&y, &e)) in want.iter().zip(&exact).enumerate() {
        assert!((y as f64 - e).abs() <= 0.56, "{what}: scalar [{i}] = {y}, exact {e}, n = {}", x.len());
    }
    for isa in dispatch::available() {
        let got = run_i8(isa, x, gain, w, b);
        assert_eq!(got, want, "{what}: {isa} differs from scalar, n = {}", x.len());
        let mut inplace = x.to_vec();
        l1norm::l1_norm_i8_inplace(isa, &mut inplace, gain, w, b);
        assert_eq!(inplace, want, "{what}: {isa} in place differs, n = {}", x.len());
    }
}

fn random_i8(rng: &mut SmallRng, n: usize, center: i32, spread: i32) -> Vec<i8> {
    (0..n).map(|_| (center + rng.random_range(-spread..=spread)).clamp(-128, 127) as i8).collect()
}

#[test]
fn int8_every_length_offset_and_affine() {
    let mut rng = SmallRng::seed_from_u64(1);
    for n in 0..=MAX_LEN {
        let offset = n % 5;
        for (center, spread, gain) in [(0, 127, 30.0f32), (40, 5, 12.5), (-100, 30, 0.7), (3, 1, 200.0)] {
            let buf = random_i8(&mut rng, n + offset, center, spread);
            let x = &buf[offset..];
            let w = random_i8(&mut rng, n, 0, 128);
            let b = random_i8(&mut rng, n, 0, 128);
            let what = format!("center {center} spread {spread} gain {gain}");
            check_i8(&what, x, gain, None, None);
            check_i8(&what, x, gain, Some(&w), None);
            check_i8(&what, x, gain, None, Some(&b));
            check_i8(&what, x, gain, Some(&w), Some(&b));
        }
    }
}

#[test]
fn int8_row_batches_match_single_rows() {
    // The pipelined batch loops (passes of the next two rows around this
    // row's pass 3 on rows of up to 1024, of the next row on longer ones)
    // against the scalar reference row by row, also in place: one to
    // sixteen rows up to the switch, one to eleven after it.
    let mut rng = SmallRng::seed_from_u64(8);
    let shapes: &[(usize, usize)] = if cfg!(miri) {
        &[(1, 5), (2, 64), (3, 1), (5, 7)]
    } else {
        &[(1, 5), (2, 64), (3, 1), (7, 300), (16, 1024), (5, 77), (11, 1023), (2, 1025), (3, 1500), (11, 4100), (1, 2000)]
    };
    for &(rows, n) in shapes {
        let mut x = random_i8(&mut rng, rows * n, 0, 127);
        x[..n].fill(42); // a constant row first
        let w = random_i8(&mut rng, n, 0, 128);
        let b = random_i8(&mut rng, n, 0, 128);
        for affine in [(None, None), (Some(&w[..]), Some(&b[..]))] {
            let want: Vec<i8> = x.chunks(n).flat_map(|row| run_i8(Isa::Scalar, row, 25.0, affine.0, affine.1)).collect();
            for isa in dispatch::available() {
                let mut y = vec![0i8; x.len()];
                l1norm::l1_norm_i8_rows(isa, &x, &mut y, n, 25.0, affine.0, affine.1);
                assert_eq!(y, want, "{isa} rows={rows} n={n}");
                let mut z = x.clone();
                let p = z.as_mut_ptr();
                let batch = l1norm::RowBatch { x: p, x_stride: n as isize, y: p, y_stride: n as isize, rows, n };
                // SAFETY: `rows` rows of n at stride n in `z` (rows * n
                // long), each y row its own x row, both pointers from one
                // borrow; w and b are n long; the gain is positive and finite.
                unsafe { l1norm::l1_norm_i8_rows_raw(isa, batch, 25.0, l1norm::Affine::from_slices(affine.0, affine.1)) };
                assert_eq!(z, want, "{isa} in place rows={rows} n={n}");
            }
        }
    }
}

#[test]
fn int8_n0_rows_are_untouched() {
    for isa in dispatch::available() {
        let mut y: Vec<i8> = vec![];
        l1norm::l1_norm_i8(isa, &[], &mut y, 1.0, Some(&[]), Some(&[]));
        let mut z = [5i8; 3];
        let p = z.as_mut_ptr();
        // SAFETY: zero elements are read or written, in place through one
        // pointer into `z`.
        unsafe { l1norm::l1_norm_i8_raw(isa, p, p, 0, 1.0, l1norm::Affine::NONE) };
        assert_eq!(z, [5; 3]);
        let p = z.as_mut_ptr();
        let batch = l1norm::RowBatch { x: p, x_stride: 1, y: p, y_stride: 1, rows: 3, n: 0 };
        // SAFETY: three rows of zero elements inside `z`: nothing is read
        // or written.
        unsafe { l1norm::l1_norm_i8_rows_raw(isa, batch, 1.0, l1norm::Affine::NONE) };
        assert_eq!(z, [5; 3]);
    }
}

fn special_rows() -> Vec<Vec<i8>> {
    let mut rows = vec![vec![-128; 77], vec![127; 65], vec![0; 33], vec![-7; size(300, 40)], vec![-128, 127], vec![127, -128, 127]];
    let lengths: &[usize] = if cfg!(miri) { &[1, 33] } else { &[1, 2, 31, 32, 33, 63, 64, 65, 100, 257] };
    for &n in lengths {
        // One outlier among constants: mean just off an integer, tiny s.
        for (base, out) in [(0i8, 1i8), (0, -1), (-128, 127), (127, -128), (5, 6)] {
            for pos in [0, n / 2, n - 1] {
                let mut row = vec![base; n];
                row[pos] = out;
                rows.push(row);
            }
        }
        rows.push((0..n).map(|i| if i % 2 == 0 { -128 } else { 127 }).collect());
        rows.push((0..n).map(|i| (i % 256) as u8 as i8).collect());
    }
    rows
}

#[test]
fn int8_special_rows_and_gains() {
    let mut rng = SmallRng::seed_from_u64(2);
    for row in special_rows().into_iter().step_by(size(1, 4)) {
        let n = row.len();
        let w = random_i8(&mut rng, n, 0, 128);
        let b = random_i8(&mut rng, n, 0, 128);
        let gains = [1e-30f32, 1e-3, 0.5, 1.0, 31.75, 1000.0, 1e9, 1e30, f32::MAX, f32::MIN_POSITIVE, 1e-45];
        for gain in gains.into_iter().step_by(size(1, 6)) {
            let what = format!("gain {gain:e}");
            check_i8(&what, &row, gain, None, None);
            check_i8(&what, &row, gain, Some(&w), Some(&b));
            check_i8(&what, &row, gain, Some(&vec![-128; n]), Some(&vec![127; n]));
        }
    }
}

#[test]
fn int8_gain_sweep_covers_every_shift() {
    // Gains 2^-40 .. 2^20 in quarter octaves move t through 0..=31 and
    // beyond, across the one-shift (t < 19) and R (t < 31) limits.
    let mut rng = SmallRng::seed_from_u64(7);
    let rows = [random_i8(&mut rng, size(97, 17), 0, 127), random_i8(&mut rng, size(70, 9), 9, 2), random_i8(&mut rng, size(300, 33), -120, 8)];
    let w = random_i8(&mut rng, 300, 0, 128);
    let b = random_i8(&mut rng, 300, 0, 128);
    for k in (-160..=80).step_by(size(1, 12)) {
        let gain = (k as f32 / 4.0).exp2();
        for row in &rows {
            let n = row.len();
            check_i8(&format!("gain 2^{}", k as f32 / 4.0), row, gain, None, Some(&b[..n]));
            check_i8(&format!("gain 2^{}", k as f32 / 4.0), row, gain, Some(&w[..n]), None);
        }
    }
}

/// The abs-dev pass (sum |x - q| and sum |x - q - 1|, the vector kernels
/// unroll it by 64 bytes) on rows whose values sit at q - 1, q and q + 1,
/// so that both sums and the exact mean decide every output; means at the
/// ends of the int8 range (q = -128, q = 127 where q + 1 saturates) and
/// every length up to three unrolled blocks plus a tail.
#[test]
fn int8_rows_around_the_integer_mean() {
    let mut rng = SmallRng::seed_from_u64(9);
    for n in (1..=size(200, 40)).step_by(size(1, 7)) {
        for center in [-128i32, -127, 0, 126, 127] {
            let row: Vec<i8> = (0..n).map(|_| (center + rng.random_range(-1..=1)).clamp(-128, 127) as i8).collect();
            for gain in [0.75f32, 31.75, 3000.0] {
                check_i8(&format!("center {center} gain {gain}"), &row, gain, None, None);
            }
        }
    }
}

#[test]
fn int8_constant_rows_give_the_bias() {
    for isa in dispatch::available() {
        for v in [-128i8, 0, 127] {
            let b: Vec<i8> = (0..70).map(|i| (i * 3) as i8).collect();
            assert_eq!(run_i8(isa, &[v; 70], 30.0, None, Some(&b)), b);
            assert_eq!(run_i8(isa, &[v; 70], 30.0, Some(&[9; 70]), None), vec![0; 70]);
        }
    }
}

#[test]
fn int8_long_rows_do_not_overflow() {
    let mut rng = SmallRng::seed_from_u64(3);
    // Also the longest rows of `BatchConstants`' short path and the
    // first after them.
    let lengths: &[usize] = if cfg!(miri) { &[1 << 9] } else { &[1 << 16, (1 << 16) + 1, 1 << 20, 1 << 22, 1 << 24] };
    for &n in lengths {
        let mut rows = vec![vec![-128i8; n], vec![127i8; n], random_i8(&mut rng, n, -60, 68)];
        let mut outlier = vec![-128i8; n];
        outlier[n / 3] = 127;
        rows.push(outlier);
        let mut outlier = vec![127i8; n];
        outlier[n - 1] = -128;
        rows.push(outlier);
        for row in &rows {
            check_i8(&format!("n = {n}"), row, 40.0, None, None);
        }
    }
}

#[test]
fn batch_constants_match_the_definitions() {
    // The kernels' per-row arithmetic (`BatchConstants`, with its short path
    // on rows of up to 2^16) against `Mean::new` and `Requant::new`: short,
    // medium and the longest short rows, the first longer ones and rows up
    // to 2^32; sums at both ends of the range and at multiples of n (an
    // integer mean); abs-dev sums from 0 to their maximum; typical gains
    // and gains from random float32 bit patterns (subnormal to huge, so
    // K >= 512 and t > 31 are reached too).
    let mut rng = SmallRng::seed_from_u64(12);
    let quick = fixed::QUICK_MAX_LEN;
    for i in 0..size(300_000, 300) {
        let n: u64 = match i % 5 {
            0 => rng.random_range(1..=16),
            1 => rng.random_range(1..=2048),
            2 => rng.random_range(1..=quick),
            3 => rng.random_range(quick - 2..=quick + 2),
            _ => rng.random_range(1..1 << 32),
        };
        let gain = if i % 3 == 0 { f32::from_bits(rng.random_range(1..f32::INFINITY.to_bits())) } else { rng.random_range(0.01f32..5000.0) };
        let s: i64 = match rng.random_range(0..4) {
            0 => rng.random_range(-128..=127) * n as i64,
            1 => rng.random_range(-128 * n as i64..=-127 * n as i64) + rng.random_range(0..=1) * (254 * n as i64),
            _ => rng.random_range(-128 * n as i64..=127 * n as i64),
        };
        let consts = fixed::BatchConstants::new(n, gain);
        let mean = fixed::Mean::new(s, n);
        assert_eq!(consts.mean(s), mean, "n={n} s={s}");
        let most = 255 * n;
        let sad_q = match rng.random_range(0..4) {
            0 => rng.random_range(0..=3.min(most)),
            1 => rng.random_range(0..=n),
            _ => rng.random_range(0..=most),
        };
        let sad_q1 = sad_q.saturating_add_signed(rng.random_range(-(n as i64)..=n as i64)).min(most);
        let want = fixed::Requant::new(n, mean, fixed::abs_dev_sum(n, mean, sad_q, sad_q1), gain);
        assert_eq!(consts.requant(mean, sad_q, sad_q1), want, "n={n} s={s} sads={sad_q},{sad_q1} gain={gain:e}");
    }
}

#[test]
fn requant_constants_stay_in_their_ranges() {
    // The bounds the vector kernels rely on: M <= 2^22, C <= M, t <= 31.
    let mut rng = SmallRng::seed_from_u64(4);
    for _ in 0..size(20000, 500) {
        let n: u64 = rng.random_range(1..1 << 32);
        let s: i64 = rng.random_range(-128 * n as i64..=127 * n as i64);
        let mean = fixed::Mean::new(s, n);
        let a: u128 = rng.random_range(1..=255 * n as u128 * n as u128);
        let gain = f32::from_bits(rng.random_range(1..f32::INFINITY.to_bits()));
        let rq = fixed::Requant::new(n, mean, a, gain);
        assert!(rq.m <= 1 << 22 && rq.c >= 0 && rq.c <= rq.m && rq.t <= 31, "{rq:?} n={n} a={a} gain={gain:e}");
        assert_eq!(rq.q, mean.q);
    }
}

fn check_float<T: Float>(what: &str, x: &[T], eps: T, w: Option<&[T]>, b: Option<&[T]>, tol: f64) {
    let f = |v: &[T]| v.iter().map(|e| e.to_f64()).collect::<Vec<f64>>();
    let (wf, bf) = (w.map(f), b.map(f));
    let want = reference::l1_norm_float(&f(x), eps.to_f64(), wf.as_deref(), bf.as_deref()).y;
    let mut scalar = vec![T::ZERO; x.len()];
    l1norm::l1_norm_float(Isa::Scalar, x, &mut scalar, eps, w, b);
    for isa in dispatch::available() {
        let mut y = vec![T::NAN; x.len()];
        l1norm::l1_norm_float(isa, x, &mut y, eps, w, b);
        for i in 0..x.len() {
            let (got, s, e) = (y[i].to_f64(), scalar[i].to_f64(), want[i]);
            let bound = tol * (1.0 + e.abs());
            assert!((got - e).abs() <= bound, "{what}: {isa} [{i}] = {got}, f64 {e}, n = {}", x.len());
            assert!((got - s).abs() <= 2.0 * bound, "{what}: {isa} [{i}] = {got}, scalar {s}, n = {}", x.len());
        }
    }
}

fn float_every_length<T: Float>(tol: f64, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut rand = |n: usize, lo: f64, hi: f64| (0..n).map(|_| T::from_f64(rng.random_range(lo..hi))).collect::<Vec<T>>();
    for n in 0..=MAX_LEN {
        let offset = n % 4;
        for (lo, hi) in [(-1.0, 1.0), (90.0, 110.0), (-1e3, 1e4)] {
            let buf = rand(n + offset, lo, hi);
            let x = &buf[offset..];
            let (w, b) = (rand(n, -2.0, 2.0), rand(n, -1.0, 1.0));
            let eps = T::from_f64(1e-5);
            let what = format!("range [{lo}, {hi}]");
            check_float(&what, x, eps, None, None, tol);
            check_float(&what, x, eps, Some(&w), None, tol);
            check_float(&what, x, eps, None, Some(&b), tol);
            check_float(&what, x, eps, Some(&w), Some(&b), tol);
        }
        let constant = vec![T::from_f64(3.5); n];
        check_float("constant", &constant, T::from_f64(1e-5), None, None, tol);
    }
}

#[test]
fn float_every_length_and_isa_f32() {
    float_every_length::<f32>(1e-5, 5);
}

#[test]
fn float_every_length_and_isa_f64() {
    float_every_length::<f64>(1e-12, 6);
}

#[test]
fn float_in_place_matches() {
    let x: Vec<f32> = (0..123).map(|i| (i as f32 * 0.7).sin()).collect();
    for isa in dispatch::available() {
        let mut y = vec![0.0f32; x.len()];
        l1norm::l1_norm_float(isa, &x, &mut y, 1e-5, None, None);
        let mut z = x.clone();
        let p = z.as_mut_ptr();
        // SAFETY: in place on the whole of `z` through one pointer.
        unsafe { l1norm::l1_norm_float_raw(isa, p, p, z.len(), 1e-5, l1norm::Affine::NONE) };
        assert_eq!(y, z, "{isa}");
    }
}

/// Found by tests/test_stress.py (hypothesis, a broadcast view): a
/// constant float32 row gave (x - mean) / eps = 7e-4 instead of 0 on the
/// vector kernels, whose register sums rounded the mean by one ulp; and by
/// the fuzzer (target l1norm): with eps = 0 scalar gave 0 / 0 = NaN where
/// the vector kernels gave b, and for float64 rows scalar's rounded f64
/// mean gave +-1. Constant rows now have s = 0 exactly on every ISA: b, or
/// NaN when eps = 0.
#[test]
fn float_constant_rows_give_the_bias() {
    fn check<T: Float>(c: f64, n: usize) {
        let x = vec![T::from_f64(c); n];
        let b: Vec<T> = (0..n).map(|i| T::from_f64(i as f64 * 0.25 - 3.0)).collect();
        let w = vec![T::from_f64(2.0); n];
        for isa in dispatch::available() {
            let mut y = vec![T::NAN; n];
            l1norm::l1_norm_float(isa, &x, &mut y, T::from_f64(1e-5), None, None);
            assert!(y.iter().all(|&v| v.to_f64() == 0.0), "{isa} n={n} c={c}: {:?}", y[0].to_f64());
            l1norm::l1_norm_float(isa, &x, &mut y, T::from_f64(1e-5), Some(&w), Some(&b));
            assert!(y.iter().zip(&b).all(|(g, b)| g.to_f64() == b.to_f64()), "{isa} n={n} c={c} with affine");
            l1norm::l1_norm_float(isa, &x, &mut y, T::ZERO, Some(&w), Some(&b));
            assert!(y.iter().all(|v| v.is_nan()), "{isa} n={n} c={c} eps=0: {:?}", y[0].to_f64());
        }
    }
    let long: &[usize] = if cfg!(miri) { &[600] } else { &[3833, 4096, 10_000] };
    for n in (1..=MAX_LEN).step_by(size(1, 3)).chain(long.iter().copied()) {
        for c in [0.11807583, -0.04849358, 3.3, 10000.1, -7.7e-3, 77.8].into_iter().take(size(6, 2)) {
            check::<f32>(c, n);
            check::<f64>(c, n);
        }
    }
}

/// Found by the fuzzer (target l1norm): large finite values overflowed the
/// vector kernels' register sums (a row with 750 float32 1.7e38s gave NaN
/// where the f64 sums of scalar give finite results).
#[test]
fn float_rows_near_the_type_maximum() {
    let lengths: &[usize] = if cfg!(miri) { &[3, 17] } else { &[3, 17, 100, 2251] };
    for &n in lengths {
        for big in [f32::MAX / 2.0, f32::MAX, -f32::MAX] {
            // Also rows of -MAX, -3e-8, MAX: x - mean beyond float32 (fuzzer).
            let spread: Vec<f32> = (0..n).map(|i| [-f32::MAX, -3e-8, f32::MAX][i % 3]).collect();
            let want = reference::l1_norm_float(&spread.iter().map(|&v| v as f64).collect::<Vec<_>>(), 0.0, None, None).y;
            for isa in dispatch::available() {
                let mut y = vec![0.0f32; n];
                l1norm::l1_norm_float(isa, &spread, &mut y, 0.0, None, None);
                for (i, (&g, &w)) in y.iter().zip(&want).enumerate() {
                    assert!((g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()), "{isa} n={n} [{i}] = {g}, want {w}");
                }
            }
            let x: Vec<f32> = (0..n).map(|i| if i % 3 == 2 { big } else { (i % 7) as f32 * 0.1 - 0.3 }).collect();
            let mut want = vec![0.0f32; n];
            l1norm::l1_norm_float(Isa::Scalar, &x, &mut want, 1e-5, None, None);
            for isa in dispatch::available() {
                let mut y = vec![0.0f32; n];
                l1norm::l1_norm_float(isa, &x, &mut y, 1e-5, None, None);
                for (i, (&g, &w)) in y.iter().zip(&want).enumerate() {
                    assert!(g == w || (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{isa} n={n} [{i}] = {g}, scalar {w}");
                }
            }
        }
    }
}

/// Found by the fuzzer (target l1norm): float32 register sums of the mean
/// drifted by many ulps, and |mean| / s = 240 amplified it to 4e-4 (rows of
/// -18.8 with one -18.5 in eight). Compensated sums keep every ISA within
/// the f32 rounding of the mean that scalar has too (8e-6 here).
#[test]
fn float_rows_with_a_large_mean_and_small_spread() {
    for (a, b, tol) in [(-18.82, -18.46, 3e-5), (6195.984, 6194.763, 5e-3)] {
        check_large_mean(a, b, tol);
    }
}

/// Rows of a with b every eighth element: every ISA within `tol` of f64
/// (the float32 rounding of the mean, |mean| 2^-24 / s, is 3e-3 for the
/// second pair; scalar has it too).
fn check_large_mean(a: f32, b: f32, tol: f64) {
    let lengths: &[usize] = if cfg!(miri) { &[100, 600] } else { &[100, 768, 1000, 4005, 4096, 4097, 8000, 40_000] };
    for &n in lengths {
        let x: Vec<f32> = (0..n).map(|i| if i % 8 == 7 { b } else { a }).collect();
        let xf: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let want = reference::l1_norm_float(&xf, 0.0, None, None).y;
        for isa in dispatch::available() {
            let mut y = vec![0.0f32; n];
            l1norm::l1_norm_float(isa, &x, &mut y, 0.0, None, None);
            let worst = y.iter().zip(&want).map(|(&g, &w)| (g as f64 - w).abs() / w.abs()).fold(0.0, f64::max);
            assert!(worst <= tol, "{isa} n={n} a={a}: rel err {worst:e}");
        }
    }
}

/// Found by hypothesis in tests/test_l1norm.py (CI, avx512 run): with
/// eps = 0 and a spread below the smallest normal float32, 1 / s overflowed
/// float32 and gave inf; it is now applied in f64.
#[test]
fn float_tiny_spread_with_eps_zero() {
    let tiny = f32::MIN_POSITIVE;
    for n in [2usize, 7, 40, 300].into_iter().take(size(4, 3)) {
        let mut x = vec![tiny; n];
        x[0] = 0.0;
        let want = reference::l1_norm_float(&x.iter().map(|&v| v as f64).collect::<Vec<_>>(), 0.0, None, None).y;
        for isa in dispatch::available() {
            let mut y = vec![0.0f32; n];
            l1norm::l1_norm_float(isa, &x, &mut y, 0.0, None, None);
            for (i, (&g, &w)) in y.iter().zip(&want).enumerate() {
                assert!((g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()), "{isa} n={n} [{i}] = {g}, want {w}");
            }
        }
    }
}
