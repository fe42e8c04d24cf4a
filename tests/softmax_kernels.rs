//! Every softmax algorithm on every instruction set this CPU has, against
//! a float64 computation and against the scalar reference of the same
//! algorithm: all lengths 0..=300, unaligned starts, random / large /
//! constant / special-value rows, and long rows. Under Miri the sizes are
//! cut down (`common::size`).

use normkit::dispatch::{self, Isa, Tuning};
use normkit::simd::Float;
use normkit::softmax::{self, Algorithm, AutoCall};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

mod common;
use common::{in_place_batch, log_softmax_tolerance, reference, size, two_pass_log_rows};

fn run<T: Float>(isa: Isa, algorithm: Algorithm, x: &[T]) -> Vec<T> {
    let mut y = vec![T::ZERO; x.len()];
    softmax::softmax(isa, algorithm, x, &mut y);
    y
}

/// Checks y against the f64 reference: NaN exactly where expected, else
/// |y - ref| <= rel * ref + tiny (tiny covers results in the subnormal range).
fn assert_close<T: Float>(what: &str, x: &[T], y: &[T], rel: f64) {
    let xf: Vec<f64> = x.iter().map(|v| v.to_f64()).collect();
    let want = reference::softmax(&xf);
    let tiny = if T::MANTISSA_DIGITS == 24 { 1e-37 } else { 1e-300 };
    for (i, (&got, &want)) in y.iter().zip(&want).enumerate() {
        let got = got.to_f64();
        if want.is_nan() {
            assert!(got.is_nan(), "{what}: [{i}] = {got}, want NaN; x = {:?}", &xf[..xf.len().min(8)]);
        } else {
            let err = (got - want).abs();
            assert!(err <= rel * want + tiny, "{what}: [{i}] = {got:e}, want {want:e} (rel err {:e}), n = {}", err / want, x.len());
        }
    }
}

fn tolerance<T: Float>() -> f64 {
    if T::MANTISSA_DIGITS == 24 { 2e-6 } else { 1e-13 }
}

/// The longest of the every-length rows (16 under Miri, where only the
/// scalar level runs and each element costs milliseconds).
const MAX_LEN: usize = size(300, 16);

/// Random rows of every length 0..=MAX_LEN at offsets 0..4 into a buffer.
fn random_rows<T: Float>(rng: &mut SmallRng, scale: f64) -> Vec<(usize, Vec<T>)> {
    let mut rows = Vec::new();
    for n in 0..=MAX_LEN {
        let offset = n % 4;
        let buf: Vec<T> = (0..n + offset).map(|_| T::from_f64(rng.random_range(-1.0..1.0) * scale)).collect();
        rows.push((offset, buf));
    }
    rows
}

fn check_random<T: Float>(scale: f64, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    for (offset, buf) in random_rows::<T>(&mut rng, scale) {
        let x = &buf[offset..];
        for isa in dispatch::available() {
            for algorithm in Algorithm::ALL {
                let what = format!("{isa} {} n={} offset={offset} scale={scale}", algorithm.name(), x.len());
                let y = run(isa, algorithm, x);
                assert_close(&what, x, &y, tolerance::<T>());
                let y_ref = run(Isa::Scalar, algorithm, x);
                for (a, b) in y.iter().zip(&y_ref) {
                    let (a, b) = (a.to_f64(), b.to_f64());
                    assert!((a - b).abs() <= 2.0 * tolerance::<T>() * b.abs() + 1e-37, "{what}: vs scalar {a} {b}");
                }
            }
        }
    }
}

#[test]
fn random_rows_every_length_isa_and_algorithm_f32() {
    for (scale, seed) in [(1.0, 1), (30.0, 2), (1e4, 3)].into_iter().take(size(3, 1)) {
        check_random::<f32>(scale, seed);
    }
}

#[test]
fn random_rows_every_length_isa_and_algorithm_f64() {
    for (scale, seed) in [(1.0, 4), (100.0, 5), (1e5, 6)].into_iter().take(size(3, 1)) {
        check_random::<f64>(scale, seed);
    }
}

fn special_rows() -> Vec<Vec<f32>> {
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    let mut rows = vec![
        vec![-inf, 0.0, 1.0],
        vec![-inf; 5],
        vec![-inf],
        vec![1.0, inf, 2.0],
        vec![inf, inf],
        vec![nan, 1.0, 2.0],
        vec![1.0, 2.0, nan],
        vec![-inf, nan],
        vec![3e38, -3e38, 3e38],
        vec![3.4e38, 3.3e38],
        vec![-3.4e38, -3.3e38, -3.2e38],
        vec![1e30, 1e30],
        vec![-2e6, -2e6 + 1.0],
        vec![7.5; 33],
        vec![0.0; 17],
        vec![88.0, 89.0, 100.0],
        vec![-103.0, -104.0, -150.0],
        vec![f32::MIN_POSITIVE, -f32::MIN_POSITIVE, 1e-45],
    ];
    // -inf masks at every position of a row longer than any register.
    for k in (0..40).step_by(size(1, 20)) {
        let mut row: Vec<f32> = (0..40).map(|i| (i as f32 * 0.37).sin() * 5.0).collect();
        row[k] = -inf;
        rows.push(row);
        let mut nan_row: Vec<f32> = (0..40).map(|i| i as f32).collect();
        nan_row[k] = nan;
        rows.push(nan_row);
    }
    rows
}

#[test]
fn special_values_follow_scipy_on_every_isa_and_algorithm() {
    for row in special_rows() {
        for isa in dispatch::available() {
            for algorithm in Algorithm::ALL {
                let what = format!("{isa} {}", algorithm.name());
                let y = run(isa, algorithm, &row);
                assert_close(&what, &row, &y, 2e-6);
                let y64 = run(isa, algorithm, &row.iter().map(|&v| v as f64).collect::<Vec<_>>());
                let x64: Vec<f64> = row.iter().map(|&v| v as f64).collect();
                assert_close(&format!("{what} f64"), &x64, &y64, 1e-13);
            }
        }
    }
}

/// Rows drawn mostly from special values, of lengths that cross register
/// boundaries: the NaN pattern and values must match the f64 reference.
#[test]
fn random_special_heavy_rows() {
    let pool = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, 1.0, -1.0, 3e38, -3e38, 100.0, -100.0, 2e6, -2e6];
    let mut rng = SmallRng::seed_from_u64(11);
    for _ in 0..size(3000, 20) {
        let n = rng.random_range(1..48);
        let row: Vec<f32> = (0..n).map(|_| pool[rng.random_range(0..pool.len())]).collect();
        for isa in dispatch::available() {
            for algorithm in Algorithm::ALL {
                let y = run(isa, algorithm, &row);
                assert_close(&format!("{isa} {}", algorithm.name()), &row, &y, 2e-6);
            }
        }
    }
}

#[test]
fn in_place_equals_out_of_place() {
    let mut rng = SmallRng::seed_from_u64(7);
    let x: Vec<f32> = (0..size(1000, 100)).map(|_| rng.random_range(-20.0..20.0)).collect();
    for isa in dispatch::available() {
        for algorithm in Algorithm::ALL {
            let want = run(isa, algorithm, &x);
            let mut y = x.clone();
            softmax::softmax_inplace(isa, algorithm, &mut y);
            assert_eq!(y, want, "{isa} {}", algorithm.name());
        }
    }
}

/// Long rows: the f64 block sums keep float32 accurate (issue: 2e-6 up to
/// 64K elements, 2e-5 up to 16M). Under Miri, one row past the first fold
/// of the register sums (every 512 elements).
#[test]
fn long_rows_stay_accurate() {
    let mut rng = SmallRng::seed_from_u64(8);
    let rows: &[(usize, f64)] = if cfg!(miri) { &[(600, 2e-6)] } else { &[(65_536, 2e-6), (1 << 24, 2e-5)] };
    for &(n, tol) in rows {
        let x: Vec<f32> = (0..n).map(|_| rng.random_range(-10.0..10.0)).collect();
        let xf: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let want = reference::softmax(&xf);
        for isa in dispatch::available() {
            for algorithm in Algorithm::ALL {
                let y = run(isa, algorithm, &x);
                let worst = y.iter().zip(&want).map(|(&g, &w)| ((g as f64 - w) / w).abs()).fold(0.0, f64::max);
                assert!(worst <= tol, "{isa} {} n={n}: rel err {worst:e}", algorithm.name());
            }
        }
    }
}

#[test]
fn log_softmax_matches_f64_on_every_isa() {
    let mut rng = SmallRng::seed_from_u64(9);
    let mut rows = special_rows();
    for n in 0..=MAX_LEN {
        rows.push((0..n).map(|_| rng.random_range(-50.0..50.0)).collect());
    }
    rows.push(vec![1e4, 1e4 + 1.0, 1e4 - 3.0]);
    for row in &rows {
        let want = reference::log_softmax(&row.iter().map(|&v| v as f64).collect::<Vec<_>>());
        for isa in dispatch::available() {
            let mut y = vec![0.0f32; row.len()];
            softmax::log_softmax(isa, row, &mut y);
            for (i, (&g, &w)) in y.iter().zip(&want).enumerate() {
                // The f32 result of an f64 value beyond f32 range is +-inf.
                let w = w as f32 as f64;
                let ok = if w.is_nan() { g.is_nan() } else if w.is_infinite() { g as f64 == w } else { (g as f64 - w).abs() <= log_softmax_tolerance::<f32>(w) };
                assert!(ok, "{isa} log_softmax [{i}] = {g}, want {w}; row {:?}", &row[..row.len().min(6)]);
            }
        }
    }
}

/// Rows whose max lies on either side of the pair form's limit
/// (|m| <= 2^18 - 2048) and at ordinary sizes, with -inf entries and
/// entries from 0.5 to 1e5 and 3e38 below the max: those just below
/// 87.3 (a term near the smallest normal float32), those 88-89 below (a
/// term the float32 pair form may flush), those far below (and below
/// -2^18, where the kernels clamp) must give what float64 gives, in
/// softmax, log_softmax and logsumexp, float32 and float64, the row
/// crossing register boundaries (37 entries), and in a row of 7, which
/// log-softmax sums in the plain form exp(x - m) (at most two registers)
/// at AVX2 and AVX-512, and on NEON in float32.
#[test]
fn rows_with_maxima_near_the_pair_form_limits() {
    let below = [0.0, 0.5, 3.0, 87.3, 87.6, 88.0, 88.7, 89.0, 100.0, 150.0, 1000.0, 1e5, 3e38, f64::INFINITY];
    let limit = 262_144.0 - 2048.0;
    let maxima = [limit - 1.0, limit, limit + 1.0, 1e5, 0.0, -1e5, -limit - 1.0, -limit, -limit + 1.0];
    for (m, len) in maxima.into_iter().flat_map(|m| [(m, 37), (m, 7)]) {
        let row: Vec<f32> = (0..len).map(|i| (m - below[(i * 5) % below.len()]) as f32).collect();
        let x64: Vec<f64> = row.iter().map(|&v| v as f64).collect();
        for isa in dispatch::available() {
            for algorithm in Algorithm::ALL {
                let what = format!("{isa} {} m = {m}, {len} entries", algorithm.name());
                assert_close(&what, &row, &run(isa, algorithm, &row), tolerance::<f32>());
                assert_close(&format!("{what} f64"), &x64, &run(isa, algorithm, &x64), tolerance::<f64>());
            }
            let want = reference::log_softmax(&x64);
            let mut y = vec![0.0f32; row.len()];
            softmax::log_softmax(isa, &row, &mut y);
            for (i, (&g, &w)) in y.iter().zip(&want).enumerate() {
                let w = w as f32 as f64;
                let ok = if w.is_infinite() { g as f64 == w } else { (g as f64 - w).abs() <= log_softmax_tolerance::<f32>(w) };
                assert!(ok, "{isa} log_softmax m = {m}, {len} entries: [{i}] = {g}, want {w}");
            }
            let mut y64 = vec![0.0f64; row.len()];
            softmax::log_softmax(isa, &x64, &mut y64);
            for (i, (&g, &w)) in y64.iter().zip(&want).enumerate() {
                let ok = if w.is_infinite() { g == w } else { (g - w).abs() <= log_softmax_tolerance::<f64>(w) };
                assert!(ok, "{isa} log_softmax f64 m = {m}, {len} entries: [{i}] = {g}, want {w}");
            }
            let want = reference::logsumexp(&x64);
            let got = softmax::logsumexp(isa, &row);
            assert!((got - want).abs() <= 2e-7 + 2f64.powi(-24) * want.abs(), "{isa} logsumexp m = {m}, {len} entries: {got}, want {want}");
        }
    }
}

#[test]
fn auto_picks_two_pass_for_long_rows_where_measured_to_win() {
    let one = |len| AutoCall { len, rows: 1, threads: 1 };
    let auto = |len, size, isa| Algorithm::auto_for(one(len), size, isa, Tuning::Default);
    assert_eq!(auto(1024, 4, Isa::Avx512), Algorithm::ThreePassReload);
    assert_eq!(auto((1 << 18) - 1, 4, Isa::Avx512), Algorithm::ThreePassReload);
    assert_eq!(auto(1 << 18, 4, Isa::Avx512), Algorithm::TwoPass);
    assert_eq!(auto((1 << 19) - 1, 2, Isa::Avx512), Algorithm::ThreePassReload);
    assert_eq!(auto(1 << 19, 2, Isa::Avx512), Algorithm::TwoPass);
    assert_eq!(auto((1 << 20) - 1, 8, Isa::Avx512), Algorithm::ThreePassReload);
    assert_eq!(auto(1 << 20, 8, Isa::Avx512), Algorithm::TwoPass);
    let streamed = softmax::STREAM_MIN_BYTES / 4;
    assert_eq!(auto(streamed - 1, 4, Isa::Avx2), Algorithm::ThreePassReload);
    assert_eq!(auto(streamed, 4, Isa::Avx2), Algorithm::TwoPass);
    assert_eq!(auto(streamed / 2, 8, Isa::Avx2), Algorithm::TwoPass);
    assert_eq!(auto(1 << 24, 2, Isa::Avx2), Algorithm::ThreePassReload);
    // The default rule looks at the row alone.
    let many = AutoCall { len: (1 << 18) - 1, rows: 1 << 10, threads: 8 };
    assert_eq!(Algorithm::auto_for(many, 4, Isa::Avx512, Tuning::Default), Algorithm::ThreePassReload);

    // AMD Zen 4: two-pass only with AVX-512, for float32 rows of 32 MiB and
    // more and float64 rows of 64 MiB and more ...
    let zen4 = |call, size, isa| Algorithm::auto_for(call, size, isa, Tuning::AmdZen4);
    assert_eq!(zen4(one(1 << 18), 4, Isa::Avx512), Algorithm::ThreePassReload);
    assert_eq!(zen4(one((1 << 23) - 1), 4, Isa::Avx512), Algorithm::ThreePassReload);
    assert_eq!(zen4(one(1 << 23), 4, Isa::Avx512), Algorithm::TwoPass);
    assert_eq!(zen4(one((1 << 23) - 1), 8, Isa::Avx512), Algorithm::ThreePassReload);
    assert_eq!(zen4(one(1 << 23), 8, Isa::Avx512), Algorithm::TwoPass);
    assert_eq!(zen4(one(1 << 24), 2, Isa::Avx512), Algorithm::ThreePassReload);
    assert_eq!(zen4(one(1 << 26), 2, Isa::Avx512), Algorithm::ThreePassReload);
    assert_eq!(zen4(one(1 << 26), 4, Isa::Avx2), Algorithm::ThreePassReload);
    assert_eq!(zen4(one(1 << 26), 8, Isa::Avx2), Algorithm::ThreePassReload);
    // ... and in calls of 32 MiB and more from rows of 8 MiB: float32 on
    // any thread count, float64 with two or more threads on the call.
    let call = |row_bytes: usize, size: usize, rows, threads| AutoCall { len: row_bytes / size, rows, threads };
    let mib = 1 << 20;
    assert_eq!(zen4(call(8 * mib, 4, 4, 1), 4, Isa::Avx512), Algorithm::TwoPass);
    assert_eq!(zen4(call(8 * mib - 4, 4, 5, 1), 4, Isa::Avx512), Algorithm::ThreePassReload);
    assert_eq!(zen4(call(8 * mib, 4, 3, 2), 4, Isa::Avx512), Algorithm::ThreePassReload);
    // Three rows just under and just over 32 MiB together.
    assert_eq!(zen4(AutoCall { len: 2_796_202, rows: 3, threads: 1 }, 4, Isa::Avx512), Algorithm::ThreePassReload);
    assert_eq!(zen4(AutoCall { len: 2_796_203, rows: 3, threads: 1 }, 4, Isa::Avx512), Algorithm::TwoPass);
    assert_eq!(zen4(call(16 * mib, 4, 2, 1), 4, Isa::Avx512), Algorithm::TwoPass);
    assert_eq!(zen4(call(16 * mib, 4, 1, 1), 4, Isa::Avx512), Algorithm::ThreePassReload);
    assert_eq!(zen4(call(8 * mib, 8, 4, 1), 8, Isa::Avx512), Algorithm::ThreePassReload);
    assert_eq!(zen4(call(32 * mib, 8, 2, 1), 8, Isa::Avx512), Algorithm::ThreePassReload);
    assert_eq!(zen4(call(8 * mib, 8, 4, 2), 8, Isa::Avx512), Algorithm::TwoPass);
    assert_eq!(zen4(call(8 * mib - 8, 8, 8, 2), 8, Isa::Avx512), Algorithm::ThreePassReload);
    assert_eq!(zen4(call(16 * mib, 8, 1, 1), 8, Isa::Avx512), Algorithm::ThreePassReload);
    assert_eq!(zen4(call(32 * mib, 8, 1, 2), 8, Isa::Avx512), Algorithm::TwoPass);
    assert_eq!(zen4(call(16 * mib, 8, 1, 2), 8, Isa::Avx512), Algorithm::ThreePassReload);
    assert_eq!(zen4(call(8 * mib, 2, 8, 2), 2, Isa::Avx512), Algorithm::ThreePassReload);
    assert_eq!(zen4(call(8 * mib, 4, 8, 2), 4, Isa::Avx2), Algorithm::ThreePassReload);

    for tuning in [Tuning::Default, Tuning::AmdZen4] {
        assert_eq!(Algorithm::auto_for(one(1 << 24), 8, Isa::Scalar, tuning), Algorithm::ThreePassReload);
        assert_eq!(Algorithm::auto_for(one(1 << 24), 8, Isa::Neon, tuning), Algorithm::ThreePassReload);
    }
    for algorithm in Algorithm::ALL {
        assert_eq!(Algorithm::from_name(algorithm.name()), Some(algorithm));
    }
}

/// Found by the fuzzer (tests/fuzz, target softmax): constant and
/// near-constant long rows make every lane add the same rounded term
/// thousands of times, so float32 lane sums drift one way (AVX2 two-pass
/// was 3.5e-6 off on 3863 copies of 7.78e-6). Lane sums are now folded
/// into the f64 total often enough to stay within 2e-6.
#[test]
fn constant_and_near_constant_long_rows() {
    let mut rows: Vec<Vec<f32>> = Vec::new();
    let lengths: &[usize] = if cfg!(miri) { &[600] } else { &[1000, 2047, 3863, 4096, 4097, 10_000, 65_536] };
    for &n in lengths {
        let sweep = (0..size(40, 0)).map(|k| (k as f32 * 0.37).exp() * 1e-5 - 0.5);
        for c in [7.78e-6f32, 0.3, -2.5, 1.7e3].into_iter().take(size(4, 1)).chain(sweep) {
            rows.push(vec![c; n]);
            if !cfg!(miri) {
                rows.push((0..n).map(|i| c + (i % 3) as f32 * 1e-3).collect());
            }
        }
    }
    for row in &rows {
        for isa in dispatch::available() {
            for algorithm in Algorithm::ALL {
                let y = run(isa, algorithm, row);
                assert_close(&format!("{isa} {} c={}", algorithm.name(), row[0]), row, &y, 2e-6);
            }
        }
    }
}

/// Checks one softmax result against the f64 reference `want` (rows of
/// finite values) and that it sums to 1; `what` is formatted on failure
/// only (the sweep below makes millions of calls).
fn check_row_sum<T: Float>(what: impl Fn() -> String, y: &[T], want: &[f64], rel: f64) {
    for (i, (&got, &want)) in y.iter().zip(want).enumerate() {
        let got = got.to_f64();
        assert!((got - want).abs() <= rel * want + 1e-300, "{}: [{i}] = {got:e}, want {want:e}", what());
    }
    let sum: f64 = y.iter().map(|v| v.to_f64()).sum();
    assert!((sum - 1.0).abs() <= rel, "{}: sums to {sum}", what());
}

/// Issue 10, item 9 (found by the fuzzer, target softmax): float32
/// `online` softmax on AVX2 and AVX-512 was off by a factor of 2 for rows
/// whose maximum m has m log2(e) within rounding of a half-integer
/// (m = 1.732868: 2.50000000687, 2 in float32 (a tie, to even) but 3 in
/// float64, and the two roundings met in one row constant). Every
/// algorithm on every ISA, float32 and float64: each element within the
/// tolerance of f64, the row summing to 1 within it.
#[test]
fn row_maxima_near_half_integer_multiples_of_ln2() {
    let rows: [&[f32]; 2] = [&[1.732868, 0.0, -1.0], &[867.4737, 867.4737]];
    for row in rows {
        let x64: Vec<f64> = row.iter().map(|&v| v as f64).collect();
        let want = reference::softmax(&x64);
        for isa in dispatch::available() {
            for algorithm in Algorithm::ALL {
                let what = || format!("{isa} {} {row:?}", algorithm.name());
                check_row_sum(what, &run(isa, algorithm, row), &want, tolerance::<f32>());
                check_row_sum(|| format!("{} f64", what()), &run(isa, algorithm, &x64), &want, tolerance::<f64>());
            }
        }
    }
}

/// The same on every float32 row maximum within one ulp of (k + 1/2) ln 2
/// for |m| < 16384 (where the issue measured 1e-4 of all maxima affected),
/// and the float64 one nearest to it, on a row of two equal maxima and on a
/// row of 19 (vector body and tail).
#[test]
fn row_maxima_near_half_integer_multiples_of_ln2_sweep() {
    fn rows<T: Float>(m: T) -> [Vec<T>; 2] {
        let long = (0..19).map(|i| if i % 7 == 3 { m } else { m - T::from_f64(0.5 + (i as f64 * 0.61).sin().abs()) }).collect();
        [vec![m, m], long]
    }
    fn check<T: Float>(m: T, isas: &[Isa]) {
        for row in rows(m) {
            let want = reference::softmax(&row.iter().map(|v| v.to_f64()).collect::<Vec<_>>());
            for &isa in isas {
                for algorithm in Algorithm::ALL {
                    let what = || format!("{isa} {} m = {:e}, n = {}", algorithm.name(), m.to_f64(), row.len());
                    check_row_sum(what, &run(isa, algorithm, &row), &want, tolerance::<T>());
                }
            }
        }
    }
    let isas = dispatch::available();
    // 16384 log2(e) = 23637.3.
    let ks: Vec<i64> = if cfg!(miri) { vec![-4, 2, 1251] } else { (-23_638..23_638).collect() };
    for k in ks {
        let t = (k as f64 + 0.5) * std::f64::consts::LN_2;
        let m = t as f32;
        for m in [m.next_down(), m, m.next_up()] {
            check::<f32>(m, &isas);
        }
        check::<f64>(t, &isas);
    }
}

/// Found by the fuzzer (target softmax, from an empty corpus): one large
/// term among many small ones. A float32 lane holding exp(max - max) = 1
/// then adds terms below its ulp, and each addition rounds by up to half
/// an ulp of 1, not of the term: the lane sums between two folds into the
/// f64 total drift by up to (terms per lane) * 2^-25, beyond 2e-6 (AVX2
/// `online` was 3.7e-6 off on 1062 copies of -14.0696 and one 0.0; the
/// other algorithms 1.9e-6). Every algorithm on every ISA, the large term
/// at the start, middle and end.
#[test]
fn one_large_term_among_many_small_ones() {
    let lengths: &[usize] = if cfg!(miri) { &[600] } else { &[100, 1063, 4096] };
    for &n in lengths {
        for k in 0..size(160, 1) {
            let small = -10.0 - k as f32 * 0.05;
            for pos in [n / 2, 0, n - 1].into_iter().take(size(3, 1)) {
                let mut row = vec![small; n];
                row[pos] = 0.0;
                for isa in dispatch::available() {
                    for algorithm in Algorithm::ALL {
                        let what = format!("{isa} {} n={n} small={small} large at {pos}", algorithm.name());
                        assert_close(&what, &row, &run(isa, algorithm, &row), tolerance::<f32>());
                    }
                }
            }
        }
    }
}

/// Results at the bottom of the normal range, [MIN_POSITIVE, ~2 MIN_POSITIVE]
/// (float32 1.18e-38, float64 2.2e-308), held to the relative bound with no
/// absolute floor (results below it within MIN_POSITIVE): a row's max m,
/// one element m + d whose result lands there, the rest far below. The
/// pair form's terms exp(x) / 2^n(m) must not fall below the normal range
/// where the result does not (issue 11, round 37: with n(m) =
/// round(m log2 e) the sum could be 0.71 and such results came out up to
/// 41% low on the SIMD levels).
fn check_bottom_of_normal_range<T: Float>(min_positive: f64, far: f64) {
    let lengths: &[usize] = if cfg!(miri) { &[3] } else { &[2, 17, 64, 255, 256, 300, 1024] };
    let maxima = [0.0, 10.0, 60.0, 86.32271, 88.42799, 111.3, -50.0, 1000.7, 2.6e5];
    for &n in lengths {
        for &m in maxima.iter().take(size(maxima.len(), 2)) {
            for k in 0..size(41, 3) {
                let d = min_positive.ln() - 0.1 + k as f64 * 0.02;
                let mut row = vec![T::from_f64(m - far); n];
                row[0] = T::from_f64(m);
                row[n / 2] = T::from_f64(m + d);
                let xf: Vec<f64> = row.iter().map(|v| v.to_f64()).collect();
                let want = reference::softmax(&xf);
                for isa in dispatch::available() {
                    for algorithm in Algorithm::ALL {
                        let y = run(isa, algorithm, &row);
                        for (i, (&got, &want)) in y.iter().zip(&want).enumerate() {
                            let (got, bound) = (got.to_f64(), tolerance::<T>() * want);
                            let ok = if want >= min_positive { (got - want).abs() <= bound } else { (got - want).abs() <= min_positive };
                            assert!(ok, "{isa} {} n={n} m={m} d={d}: [{i}] = {got:e}, want {want:e}", algorithm.name());
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn results_at_the_bottom_of_the_normal_range_f32() {
    check_bottom_of_normal_range::<f32>(f32::MIN_POSITIVE as f64, 1000.0);
}

#[test]
fn results_at_the_bottom_of_the_normal_range_f64() {
    check_bottom_of_normal_range::<f64>(f64::MIN_POSITIVE, 1e4);
}

/// logsumexp against the f64 reference on every instruction set: random
/// rows of every length and offset at scales that take the one-pass path
/// (|x| <= 2^18) and the max-pass path beyond, and the special rows.
/// Bound: `abs` + one rounding of the result to T (relative `rel`).
fn check_logsumexp<T: Float>(abs: f64, rel: f64) {
    let mut rng = SmallRng::seed_from_u64(21);
    let mut rows: Vec<(usize, Vec<T>)> = Vec::new();
    for scale in [1.0, 60.0, 3e4, 5e6] {
        rows.extend(random_rows::<T>(&mut rng, scale));
    }
    for row in special_rows() {
        rows.push((0, row.iter().map(|&v| T::from_f64(v as f64)).collect()));
    }
    let mut worst = 0.0f64;
    for (offset, buf) in &rows {
        let x = &buf[*offset..];
        let want = reference::logsumexp(&x.iter().map(|v| v.to_f64()).collect::<Vec<_>>());
        let want_t = T::from_f64(want).to_f64();
        for isa in dispatch::available() {
            let got = T::from_f64(softmax::logsumexp(isa, x)).to_f64();
            let ok = if want.is_nan() {
                got.is_nan()
            } else if want_t.is_infinite() {
                got == want_t
            } else {
                worst = worst.max((got - want).abs() / (abs + rel * want.abs()));
                (got - want).abs() <= abs + rel * want.abs()
            };
            assert!(ok, "{isa} logsumexp = {got:e}, want {want:e}; n = {}, x = {:?}", x.len(), &x[..x.len().min(6)].iter().map(|v| v.to_f64()).collect::<Vec<_>>());
        }
    }
    eprintln!("logsumexp f{}: worst error / bound = {worst:.3}", size_of::<T>() * 8);
}

#[test]
fn logsumexp_matches_f64_on_every_isa() {
    // f32: the pair sums in f32 lanes (a few ulps of the sum: ~3e-7 after
    // ln) plus the rounding of the result (2^-24 relative).
    check_logsumexp::<f32>(2e-7, 2f64.powi(-24));
    check_logsumexp::<f64>(2e-15, 2f64.powi(-51));
}

/// The fused form (scale, bias, mask) on every instruction set against the
/// float64 softmax of the kept entries of scale * x + bias, every length
/// and offset: masked entries exactly 0, all-masked rows all 0.
#[test]
fn fused_softmax_matches_f64_on_every_isa() {
    let mut rng = SmallRng::seed_from_u64(33);
    for (offset, buf) in random_rows::<f32>(&mut rng, 8.0) {
        let x = &buf[offset..];
        let n = x.len();
        let bias: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
        let mask: Vec<bool> = (0..n).map(|i| i % 5 != 1 && rng.random_range(0.0..1.0) < 0.7).collect();
        let z: Vec<f64> = (0..n).map(|i| if mask[i] { -0.5 * x[i] as f64 + bias[i] as f64 } else { f64::NEG_INFINITY }).collect();
        let any = mask.iter().any(|&m| m);
        let want = if any { reference::softmax(&z) } else { vec![0.0; n] };
        let want_log: Vec<f64> = if any { reference::log_softmax(&z) } else { vec![f64::NEG_INFINITY; n] };
        for isa in dispatch::available() {
            for algorithm in Algorithm::ALL {
                let mut y = vec![f32::NAN; n];
                softmax::softmax_fused(isa, Some(algorithm), -0.5, Some(&bias), Some(&mask), x, &mut y);
                for i in 0..n {
                    let (g, w) = (y[i] as f64, want[i]);
                    assert!((g - w).abs() <= 2e-6 * w + 1e-37 && (mask[i] || g == 0.0), "{isa} {} [{i}] = {g}, want {w}, n = {n}", algorithm.name());
                }
            }
            let mut y = vec![f32::NAN; n];
            softmax::softmax_fused(isa, None, -0.5, Some(&bias), Some(&mask), x, &mut y);
            for i in 0..n {
                let (g, w) = (y[i] as f64, want_log[i]);
                assert!(if w.is_infinite() { g == w } else { (g - w).abs() <= log_softmax_tolerance::<f32>(w) }, "{isa} log [{i}] = {g}, want {w}, n = {n}");
            }
        }
    }
}

/// Rows of at least `STREAM_MIN_BYTES` are written with streaming stores
/// from their first register-aligned element on: every alignment of the
/// output (offsets 0..8 elements), every algorithm and log-softmax, out of
/// place and in place, against float64.
#[test]
fn streamed_rows_at_every_output_alignment() {
    if cfg!(miri) {
        return; // 8 MiB rows: far beyond what Miri interprets in time.
    }
    let n = softmax::STREAM_MIN_BYTES / 4 + 37;
    let mut rng = SmallRng::seed_from_u64(21);
    let x: Vec<f32> = (0..n).map(|_| rng.random_range(-30.0..30.0)).collect();
    let xf: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let want_log = reference::log_softmax(&xf);
    let mut buf = vec![f32::NAN; n + 8];
    for isa in dispatch::available() {
        for offset in 0..8 {
            for algorithm in Algorithm::ALL {
                let y = &mut buf[offset..offset + n];
                y.fill(f32::NAN); // an element left unwritten fails
                softmax::softmax(isa, algorithm, &x, y);
                assert_close(&format!("{isa} {} offset {offset}", algorithm.name()), &x, y, 2e-6);
                y.copy_from_slice(&x);
                softmax::softmax_inplace(isa, algorithm, y);
                assert_close(&format!("{isa} {} in place, offset {offset}", algorithm.name()), &x, y, 2e-6);
            }
            let y = &mut buf[offset..offset + n];
            y.fill(f32::NAN);
            softmax::log_softmax(isa, &x, y);
            for (i, (&g, &w)) in y.iter().zip(&want_log).enumerate() {
                assert!((g as f64 - w).abs() <= log_softmax_tolerance::<f32>(w), "{isa} log_softmax offset {offset} [{i}] = {g}, want {w}");
            }
        }
    }
}

/// Log-softmax rows of at least `LOG_TWO_PASS_MIN_BYTES` (float32 and
/// float64) take two passes, the pair sum of two-pass softmax and the
/// write (the rows of `common::two_pass_log_rows`), on every ISA, against float64: within
/// 1e-5 + 1e-7 |want| in float32 and 1e-12 + 1e-15 |want| in float64; in
/// place, the same bits.
fn check_two_pass_log_softmax<T: Float>() {
    let n = softmax::LOG_TWO_PASS_MIN_BYTES / size_of::<T>() + 37;
    let (mut y, mut z) = (vec![T::ZERO; n], vec![T::ZERO; n]);
    two_pass_log_rows::<T>(n, |what, row| {
        let want = reference::log_softmax(&row.iter().map(|v| v.to_f64()).collect::<Vec<_>>());
        for isa in dispatch::available() {
            y.fill(T::from_f64(f64::NAN));
            softmax::log_softmax(isa, row, &mut y);
            for (i, (&g, &w)) in y.iter().zip(&want).enumerate() {
                let (g, w) = (g.to_f64(), T::from_f64(w).to_f64());
                let ok = if w.is_nan() {
                    g.is_nan()
                } else if w.is_infinite() {
                    g == w
                } else {
                    (g - w).abs() <= log_softmax_tolerance::<T>(w)
                };
                assert!(ok, "{isa} f{} log_softmax {what}: [{i}] = {g:e}, want {w:e}", size_of::<T>() * 8);
            }
            z.copy_from_slice(row);
            softmax::log_softmax_inplace(isa, &mut z);
            let same = y.iter().zip(&z).all(|(a, b)| a.to_f64().to_bits() == b.to_f64().to_bits() || (a.is_nan() && b.is_nan()));
            assert!(same, "{isa} f{} log_softmax {what}: in place differs", size_of::<T>() * 8);
        }
    });
}

#[test]
fn two_pass_log_softmax_matches_f64_on_every_isa() {
    if cfg!(miri) {
        return; // rows of LOG_TWO_PASS_MIN_BYTES: far beyond what Miri interprets in time.
    }
    check_two_pass_log_softmax::<f32>();
    check_two_pass_log_softmax::<f64>();
}

/// The two-pass sum scales each block of 256 elements to the exponent of
/// the block's max and folds the blocks in f64: rows whose parts lie far
/// apart (a step of 150 every 128 elements, the max first or last; 1000 =
/// 3 blocks and a tail), with the values in each block spanning more than the float32
/// range of exp (terms flushed to 0), and rows whose only NaN, inf or
/// beyond-2^18 value sits in a late block (the sum stops there and the row
/// takes the three-pass path). Softmax and logsumexp, every ISA.
fn check_far_apart_blocks<T: Float>() {
    let n = size(1000, 300);
    let mut rows: Vec<Vec<T>> = Vec::new();
    for (lead, slope) in [(-80.0, 1.0), (0.0, -1.0), (-300.0, 1.0), (200.0, -1.0)] {
        // Part k sits at lead + slope * 150 k; within a part, a ramp over 200.
        rows.push((0..n).map(|i| T::from_f64(lead + slope * 150.0 * (i / 128) as f64 - (i % 128) as f64 * 1.6)).collect());
    }
    let special = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 3e5, -3e5];
    for (k, &v) in special.iter().enumerate() {
        let mut row: Vec<T> = (0..n).map(|i| T::from_f64((i % 7) as f64 - 3.0)).collect();
        row[n - 1 - 40 * k] = T::from_f64(v);
        rows.push(row);
    }
    for row in &rows {
        let xf: Vec<f64> = row.iter().map(|v| v.to_f64()).collect();
        let want_lse = reference::logsumexp(&xf);
        for isa in dispatch::available() {
            let what = format!("{isa} two_pass f{} x[0] = {:?}", size_of::<T>() * 8, xf[0]);
            assert_close(&what, row, &run(isa, Algorithm::TwoPass, row), tolerance::<T>());
            // The bounds of `logsumexp_matches_f64_on_every_isa`.
            let (abs, rel) = if T::MANTISSA_DIGITS == 24 { (2e-7, 2f64.powi(-24)) } else { (2e-15, 2f64.powi(-51)) };
            let got = T::from_f64(softmax::logsumexp(isa, row)).to_f64();
            let ok = if want_lse.is_nan() {
                got.is_nan()
            } else if want_lse.is_infinite() {
                got == want_lse
            } else {
                (got - want_lse).abs() <= abs + rel * want_lse.abs()
            };
            assert!(ok, "{what}: logsumexp = {got:e}, want {want_lse:e}");
        }
    }
}

#[test]
fn two_pass_blocks_far_apart_and_late_special_values() {
    check_far_apart_blocks::<f32>();
    check_far_apart_blocks::<f64>();
}

/// A batch of rows gives each row exactly what a lone row gives.
/// `softmax_rows` pipelines softmax rows of up to 256 bytes (2 KiB before
/// round 14), takes rows of up to 512 bytes and 1 KiB in blocks of 16 and
/// 8 rows at AVX-512 and AVX2 (rounds 40, 41) and fuses the next row's
/// max into the last pass of rows of up to 8 KiB (256 KiB at AVX2 but on
/// AMD Zen 4); `log_softmax_rows` fuses float32 / float64 rows of more than 1 KiB up
/// to 8 KiB and takes the other rows of up to 2 KiB in groups of eight.
/// Every algorithm and level, float32 and float64, two whole groups and a
/// partial one (one block of 16 or two of 8, and three rows after them),
/// special rows next to ordinary ones and to each other, in both groups
/// and last, lengths on both sides of the four-register, 256-byte,
/// 512-byte, 1 KiB, 2 KiB, 8 KiB and 256 KiB limits; out of place and in
/// place.
#[test]
fn batches_of_rows_equal_rows_one_at_a_time() {
    let mut rng = SmallRng::seed_from_u64(23);
    let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
    for n in [1, 2, 3, 4, 5, 8, 16, 32, 37, 64, 65, 128, 129, 256, 257, 512, 513, 700, 1024, 1025, 2048, 2049, 30522, 32768, 32769, 65536, 65537] {
        let n = size(n, n.min(9));
        let rows = size(19, 5);
        let mut x: Vec<f32> = (0..rows * n).map(|_| rng.random_range(-30.0..30.0)).collect();
        // In the first group of eight: row 1 one NaN, row 2 all -inf, row
        // 3 one +inf.
        x[n] = specials[0];
        x[2 * n..3 * n].fill(specials[2]);
        x[3 * n + n / 2] = specials[1];
        // Row 4 (rows of at least three): +inf, then NaN two lanes on,
        // whose max over part of a register (AVX-512, issue 11, round 46)
        // may be below +inf where the whole register's is +inf.
        if n >= 3 {
            x[4 * n] = specials[1];
            x[4 * n + 2] = specials[0];
        }
        // In the second group of eight (not under Miri): row 8 all -inf
        // (the group's first row), row 11 one +inf.
        if rows > 11 {
            x[8 * n..9 * n].fill(specials[2]);
            x[11 * n + n / 3] = specials[1];
        }
        // The last row: one NaN (nothing left pending after it).
        x[(rows - 1) * n] = specials[0];
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        for isa in dispatch::available() {
            for algorithm in Algorithm::ALL {
                let mut want = vec![0.0f32; x.len()];
                for (xr, yr) in x.chunks(n).zip(want.chunks_mut(n)) {
                    softmax::softmax(isa, algorithm, xr, yr);
                }
                let mut y = vec![0.0f32; x.len()];
                softmax::softmax_rows(isa, algorithm, &x, &mut y, n);
                let bits = |v: &[f32]| v.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&y), bits(&want), "{isa} {} n={n}", algorithm.name());
                let mut y = x.clone();
                let batch = in_place_batch(&mut y, n);
                // SAFETY: `batch` covers `y`'s rows, each written over itself.
                unsafe { softmax::softmax_rows_raw(isa, algorithm, batch) };
                assert_eq!(bits(&y), bits(&want), "{isa} {} n={n} in place", algorithm.name());
                // Without the last row (one NaN), the batch ends on a
                // finite row, whose last pass then runs alone.
                let head = (rows - 1) * n;
                let mut y = vec![0.0f32; head];
                softmax::softmax_rows(isa, algorithm, &x[..head], &mut y, n);
                assert_eq!(bits(&y), bits(&want[..head]), "{isa} {} n={n} without the last row", algorithm.name());
                let mut y64 = vec![0.0f64; x.len()];
                softmax::softmax_rows(isa, algorithm, &x64, &mut y64, n);
                for (k, (xr, yr)) in x64.chunks(n).zip(y64.chunks(n)).enumerate() {
                    let mut want64 = vec![0.0f64; n];
                    softmax::softmax(isa, algorithm, xr, &mut want64);
                    assert!(yr.iter().zip(&want64).all(|(a, b)| a.to_bits() == b.to_bits()), "{isa} {} f64 n={n} row {k}", algorithm.name());
                }
                let mut y64_in_place = x64.clone();
                let batch = in_place_batch(&mut y64_in_place, n);
                // SAFETY: `batch` covers the rows, each written over itself.
                unsafe { softmax::softmax_rows_raw(isa, algorithm, batch) };
                assert!(y64_in_place.iter().zip(&y64).all(|(a, b)| a.to_bits() == b.to_bits()), "{isa} {} f64 n={n} in place", algorithm.name());
                let mut y64_head = vec![0.0f64; head];
                softmax::softmax_rows(isa, algorithm, &x64[..head], &mut y64_head, n);
                assert!(y64_head.iter().zip(&y64).all(|(a, b)| a.to_bits() == b.to_bits()), "{isa} {} f64 n={n} without the last row", algorithm.name());
            }
            let mut want = vec![0.0f32; x.len()];
            for (xr, yr) in x.chunks(n).zip(want.chunks_mut(n)) {
                softmax::log_softmax(isa, xr, yr);
            }
            let mut y = vec![0.0f32; x.len()];
            softmax::log_softmax_rows(isa, &x, &mut y, n);
            let bits = |v: &[f32]| v.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&y), bits(&want), "{isa} log_softmax n={n}");
            let mut y = x.clone();
            let batch = in_place_batch(&mut y, n);
            // SAFETY: `batch` covers `y`'s rows, each written over itself.
            unsafe { softmax::log_softmax_rows_raw(isa, batch) };
            assert_eq!(bits(&y), bits(&want), "{isa} log_softmax n={n} in place");
            let mut y64 = vec![0.0f64; x.len()];
            softmax::log_softmax_rows(isa, &x64, &mut y64, n);
            for (k, (xr, yr)) in x64.chunks(n).zip(y64.chunks(n)).enumerate() {
                let mut want64 = vec![0.0f64; n];
                softmax::log_softmax(isa, xr, &mut want64);
                assert!(yr.iter().zip(&want64).all(|(a, b)| a.to_bits() == b.to_bits()), "{isa} log_softmax f64 n={n} row {k}");
            }
            // In place too: float64 rows of up to 1024 go in groups or
            // fused, both of which copy x into y in their sums.
            let mut y64_in_place = x64.clone();
            let batch = in_place_batch(&mut y64_in_place, n);
            // SAFETY: `batch` covers the rows, each written over itself.
            unsafe { softmax::log_softmax_rows_raw(isa, batch) };
            assert!(y64_in_place.iter().zip(&y64).all(|(a, b)| a.to_bits() == b.to_bits()), "{isa} log_softmax f64 n={n} in place");
        }
    }
}
