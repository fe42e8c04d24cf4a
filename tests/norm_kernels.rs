//! RMSNorm, LayerNorm, CRMSNorm and the fused residual forms on every
//! instruction set this CPU has, against a float64 computation and against
//! the scalar reference: all lengths 0..=300 at unaligned starts, with and
//! without weight / bias, batches of rows (the vector kernels pipeline
//! short rows and take LayerNorm rows in blocks), in place, constant,
//! huge, tiny, large-mean and NaN / inf rows, and long rows. Under Miri
//! the sizes are cut down (`common::size`).

use normkit::dispatch::{self, Isa};
use normkit::norm::{self, Norm, RowBatch, RowStats};
use normkit::simd::Float;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

mod common;
use common::{reference, size};

const EPS: f64 = 1e-5;

/// The longest of the every-length rows (16 under Miri, where only the
/// scalar level runs and each element costs about a millisecond).
const MAX_LEN: usize = size(300, 16);

/// The error allowed at element i: `rel` times the size of the result,
/// with one output unit (|w|) as the floor for results near 0.
fn allowed(rel: f64, want: f64, w: f64) -> f64 {
    rel * (want.abs() + w.abs())
}

fn tolerance<T: Float>() -> f64 {
    if T::MANTISSA_DIGITS == 24 { 1e-5 } else { 1e-12 }
}

fn to_f64<T: Float>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

/// Checks `y` (the norm of `x`) against the f64 reference: NaN exactly
/// where expected, else within [`allowed`].
fn assert_matches_f64<T: Float>(what: &str, kind: Norm, x: &[T], y: &[T], eps: f64, w: Option<&[T]>, b: Option<&[T]>) {
    let (wf, bf) = (w.map(to_f64), b.map(to_f64));
    let want = reference::norm(kind, &to_f64(x), eps, wf.as_deref(), bf.as_deref());
    for (i, (&got, &want)) in y.iter().zip(&want).enumerate() {
        let got = got.to_f64();
        if want.is_nan() {
            assert!(got.is_nan(), "{what}: [{i}] = {got}, want NaN");
            continue;
        }
        let wi = wf.as_ref().map_or(1.0, |w| w[i]);
        let err = (got - want).abs();
        assert!(
            err <= allowed(tolerance::<T>(), want, wi),
            "{what}: [{i}] = {got:e}, want {want:e} (err {err:e}), n = {}",
            x.len()
        );
    }
}

/// Checks a result against another computation of it (the scalar
/// reference, a single-row call): same rule, twice the tolerance. (Results
/// need not be bit-identical: the vector sums are split at the row's
/// alignment, which changes their rounding.)
fn assert_matches_scalar<T: Float>(what: &str, y: &[T], y_ref: &[T], w: Option<&[T]>) {
    for (i, (a, b)) in y.iter().zip(y_ref).enumerate() {
        let (a, b) = (a.to_f64(), b.to_f64());
        if b.is_nan() {
            assert!(a.is_nan(), "{what}: [{i}] = {a}, scalar NaN");
            continue;
        }
        let wi = w.map_or(1.0, |w| w[i].to_f64());
        assert!((a - b).abs() <= allowed(2.0 * tolerance::<T>(), b, wi), "{what}: [{i}] = {a:e}, scalar {b:e}");
    }
}

fn run<T: Float>(isa: Isa, kind: Norm, x: &[T], eps: f64, w: Option<&[T]>, b: Option<&[T]>) -> Vec<T> {
    let mut y = vec![T::ZERO; x.len()];
    norm::norm(isa, kind, x, &mut y, eps, w, b);
    y
}

fn random<T: Float>(rng: &mut SmallRng, n: usize, mean: f64, scale: f64) -> Vec<T> {
    (0..n).map(|_| T::from_f64(mean + scale * rng.random_range(-1.0..1.0))).collect()
}

/// Every kind, ISA and affine combination on one row, against f64 and the
/// scalar reference.
fn check_row<T: Float>(what: &str, x: &[T], eps: f64, w: &[T], b: &[T]) {
    for kind in Norm::ALL {
        for (wo, bo) in [(None, None), (Some(w), None), (Some(w), Some(b))] {
            let y_ref = run(Isa::Scalar, kind, x, eps, wo, bo);
            for isa in dispatch::available() {
                let what = format!("{what} {isa} {} w={} b={}", kind.name(), wo.is_some(), bo.is_some());
                let y = run(isa, kind, x, eps, wo, bo);
                assert_matches_f64(&what, kind, x, &y, eps, wo, bo);
                assert_matches_scalar(&what, &y, &y_ref, wo);
            }
        }
    }
}

/// Rows of every length 0..=MAX_LEN (every other one under Miri) at
/// offsets 0..4 into a buffer.
fn check_lengths<T: Float>(mean: f64, scale: f64, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    for n in (0..=MAX_LEN).step_by(size(1, 2)) {
        let offset = n % 4;
        let buf = random::<T>(&mut rng, n + offset, mean, scale);
        let w = random::<T>(&mut rng, n, 0.0, 2.0);
        let b = random::<T>(&mut rng, n, 0.0, 1.0);
        check_row(&format!("mean={mean} scale={scale} offset={offset}"), &buf[offset..], EPS, &w, &b);
    }
}

#[test]
fn every_length_isa_kind_and_affine_f32() {
    check_lengths::<f32>(0.0, 1.0, 1);
    check_lengths::<f32>(3.0, 2.0, 2);
}

#[test]
fn every_length_isa_kind_and_affine_f64() {
    check_lengths::<f64>(0.0, 1.0, 3);
    check_lengths::<f64>(-7.0, 0.5, 4);
}

/// LayerNorm of 1e4 + N(0, 1) and 1e6 + U(-1, 1) rows: mean >> std must
/// not cancel (the f64 reference works on the same float32 inputs).
#[test]
fn large_mean_small_spread_keeps_precision() {
    let mut rng = SmallRng::seed_from_u64(5);
    for (mean, scale) in [(1e4, 1.7), (-1e4, 1.7), (1e6, 1.0), (3e7, 8.0)] {
        let lengths: &[usize] = if cfg!(miri) { &[3, 37] } else { &[3, 17, 64, 100, 1024, 4099] };
        for &n in lengths {
            let x = random::<f32>(&mut rng, n, mean, scale);
            let w = random::<f32>(&mut rng, n, 1.0, 0.5);
            let b = random::<f32>(&mut rng, n, 0.0, 0.5);
            check_row(&format!("mean={mean} n={n}"), &x, EPS, &w, &b);
            let x64 = random::<f64>(&mut rng, n, mean * 1e4, scale);
            check_row(&format!("f64 mean={mean}e4 n={n}"), &x64, EPS, &to_f64(&w), &to_f64(&b));
        }
    }
}

/// LayerNorm shifts its first-pass sums by x[0]; a row whose x[0] lies
/// far from the mean takes the corrected two-pass path instead. Both must
/// be accurate, at every length and with a large mean.
#[test]
fn outlier_first_elements() {
    let mut rng = SmallRng::seed_from_u64(15);
    for n in (2..=MAX_LEN).step_by(size(7, 13)) {
        for (mean, outlier) in [(0.0, 2.0), (0.0, 40.0), (1e4, 1.8), (1e4, 300.0), (-5e5, 1e3)] {
            let mut x = random::<f32>(&mut rng, n, mean, 1.0);
            x[0] = (mean + outlier) as f32;
            let w = random::<f32>(&mut rng, n, 1.0, 0.5);
            check_row(&format!("x[0] = {mean} + {outlier}, n={n}"), &x, EPS, &w, &w);
            let mut x64 = random::<f64>(&mut rng, n, mean, 1.0);
            x64[0] = mean + outlier;
            check_row(&format!("f64 x[0] = {mean} + {outlier}, n={n}"), &x64, EPS, &to_f64(&w), &to_f64(&w));
        }
    }
}

/// 1e30 and 1e-30 rows over- / underflow float32 squares; they are
/// rescaled and must be as accurate as ordinary rows, with eps = 0 too.
#[test]
fn huge_and_tiny_magnitudes() {
    let mut rng = SmallRng::seed_from_u64(6);
    for scale in [1e30, 3e38, 1e18, 1e-30, 1e-40, 1e-20].into_iter().step_by(size(1, 2)) {
        let lengths: &[usize] = if cfg!(miri) { &[1, 17] } else { &[1, 2, 15, 16, 33, 300] };
        for &n in lengths {
            let x = random::<f32>(&mut rng, n, 0.0, scale);
            let w = random::<f32>(&mut rng, n, 1.0, 0.5);
            let b = random::<f32>(&mut rng, n, 0.0, 0.5);
            for eps in [EPS, 0.0] {
                check_row(&format!("scale={scale:e} eps={eps}"), &x, eps, &w, &b);
            }
            // Large mean relative to the spread, at the extremes.
            let x = random::<f32>(&mut rng, n, 4.0 * scale, scale);
            check_row(&format!("mean=4*{scale:e}"), &x, 0.0, &w, &b);
        }
    }
    for scale in [1e150, 1e-150, 1e-310] {
        let n = size(40, 9);
        let x = random::<f64>(&mut rng, n, 0.0, scale);
        let w = random::<f64>(&mut rng, n, 1.0, 0.5);
        for eps in [EPS, 0.0] {
            check_row(&format!("f64 scale={scale:e} eps={eps}"), &x, eps, &w, &w);
        }
    }
}

/// Beyond the f64 reference's own range: compare with the scalar path and
/// check the defining property (unit RMS) directly.
#[test]
fn f64_rows_near_the_limits() {
    for scale in [1e300, 1.7e308, 1e-300] {
        let x: Vec<f64> = (0..37).map(|i| scale * ((i as f64 * 0.7).sin())).collect();
        for isa in dispatch::available() {
            let y = run(isa, Norm::Rms, &x, 0.0, None, None);
            let ms: f64 = y.iter().map(|v| v * v).sum::<f64>() / 37.0;
            assert!((ms - 1.0).abs() < 1e-13, "{isa} scale={scale:e}: mean square {ms}");
            let y_ref = run(Isa::Scalar, Norm::Rms, &x, 0.0, None, None);
            assert_matches_scalar(&format!("{isa} rms f64 scale={scale:e}"), &y, &y_ref, None);
        }
    }
}

/// Constant rows (variance 0) give the bias; zero rows give 0 (NaN for
/// eps = 0, the 0 / 0 of the definition).
#[test]
fn constant_and_zero_rows() {
    let lengths: &[usize] = if cfg!(miri) { &[1, 17] } else { &[1, 5, 16, 17, 64, 300] };
    for &n in lengths {
        for v in [7.5f32, -1e-3, 3.3e4, 1e30] {
            check_row(&format!("constant {v} n={n}"), &vec![v; n], EPS, &vec![1.5; n], &vec![0.25; n]);
        }
        check_row(&format!("zeros n={n}"), &vec![0.0f32; n], EPS, &vec![1.5; n], &vec![0.25; n]);
        for isa in dispatch::available() {
            for kind in Norm::ALL {
                let y = run(isa, kind, &vec![0.0f32; n], 0.0, None, None);
                assert!(y.iter().all(|v| v.is_nan()), "{isa} {} zeros eps=0: {y:?}", kind.name());
            }
        }
    }
}

/// NaN or +-inf anywhere in a row gives an all-NaN row.
#[test]
fn nan_and_inf_rows_are_all_nan() {
    let mut rng = SmallRng::seed_from_u64(9);
    let lengths: &[usize] = if cfg!(miri) { &[1, 17] } else { &[1, 2, 7, 16, 31, 64, 100] };
    for &n in lengths {
        for special in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for pos in [0, n / 2, n - 1] {
                let mut x = random::<f32>(&mut rng, n, 0.0, 1.0);
                x[pos] = special;
                for isa in dispatch::available() {
                    for kind in Norm::ALL {
                        let y = run(isa, kind, &x, EPS, None, None);
                        assert!(y.iter().all(|v| v.is_nan()), "{isa} {} n={n} {special} at {pos}: {y:?}", kind.name());
                        let x64: Vec<f64> = to_f64(&x);
                        let y = run(isa, kind, &x64, EPS, None, None);
                        assert!(y.iter().all(|v| v.is_nan()), "{isa} {} f64 n={n} {special} at {pos}", kind.name());
                    }
                }
            }
        }
    }
}

/// A batch of rows with ordinary, NaN, +inf, rescaled (huge and tiny),
/// constant rows and a LayerNorm row whose mean is far from x[0], in
/// every order, each of every length 0..=MAX_LEN at an unaligned start:
/// each row must equal the single-row result, out of place and in place.
#[test]
fn batches_equal_single_rows() {
    let mut rng = SmallRng::seed_from_u64(10);
    // 383 to 385: both sides of the LayerNorm blocks' 1.5 KiB.
    // 37 rows: two whole blocks of 16 short rows (AVX-512 float32
    // LayerNorm) and five more, with special rows in each block and in the
    // rest.
    let rows = size(37, 11);
    for n in (0..=MAX_LEN).step_by(size(1, 5)).chain([size(383, 17), size(384, 18), size(385, 19)]) {
        let offset = (n + 1) % 4;
        let mut buf = random::<f32>(&mut rng, offset + rows * n, 1.0, 3.0);
        let x = &mut buf[offset..];
        for base in (0..rows).step_by(16) {
            let mut row = |r: usize, f: &dyn Fn(usize, f32) -> f32| {
                if n > 0 && base + r < rows {
                    let row = &mut x[(base + r) * n..(base + r + 1) * n];
                    row.iter_mut().enumerate().for_each(|(i, v)| *v = f(i, *v));
                }
            };
            row(1, &|i, v| if i == n / 2 { f32::NAN } else { v });
            row(3, &|_, v| v * 1e30); // rescaled
            row(4, &|_, _| 2.5); // constant
            row(5, &|i, v| if i == 0 { 1e4 } else { v }); // LayerNorm's second pass (n > 1)
            row(9, &|_, v| v * 1e-30); // rescaled
            row(10, &|i, v| if i == n / 3 { f32::INFINITY } else { v });
            row(15, &|_, _| 0.0);
        }
        let w = random::<f32>(&mut rng, n, 1.0, 0.5);
        let b = random::<f32>(&mut rng, n, 0.0, 0.5);
        // eps = 0: rows whose sum of squares is too small for the fast
        // constants (the tiny row 9) differ from them there.
        for (isa, eps) in dispatch::available().into_iter().flat_map(|isa| [(isa, EPS), (isa, 0.0)]) {
            for kind in Norm::ALL {
                for (wo, bo) in [(None, None), (Some(&w[..]), None), (None, Some(&b[..])), (Some(&w[..]), Some(&b[..]))] {
                    let what = format!("{isa} {} n={n} eps={eps} w={} b={}", kind.name(), wo.is_some(), bo.is_some());
                    let mut y = vec![0.0f32; x.len()];
                    norm::norm_rows(isa, kind, x, &mut y, n, eps, wo, bo);
                    let mut y_inplace = x.to_vec();
                    let p = y_inplace.as_mut_ptr();
                    let batch = RowBatch { x: p, x_stride: n as isize, y: p, y_stride: n as isize, rows, n };
                    // SAFETY: `rows` rows of n at stride n in `y_inplace`
                    // (rows * n long), each y row its own x row, both
                    // pointers from one borrow; w and b are n long.
                    unsafe { norm::norm_rows_raw(isa, kind, batch, eps, norm::Affine::from_slices(wo, bo), RowStats::NONE) };
                    for r in 0..rows {
                        // The sums split at x's alignment in both: identical.
                        let mut want = vec![0.0f32; n];
                        let row = &x[r * n..(r + 1) * n];
                        // SAFETY: `row` and `want` are n long and distinct;
                        // w and b are n long.
                        unsafe { norm::norm_raw(isa, kind, row.as_ptr(), want.as_mut_ptr(), n, eps, norm::Affine::from_slices(wo, bo), RowStats::NONE) };
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert!(bits(&y[r * n..(r + 1) * n]) == bits(&want), "{what} row {r}");
                        // In place reads a copy of x: another alignment, so
                        // only close.
                        assert_matches_scalar(&format!("{what} in place row {r}"), &y_inplace[r * n..(r + 1) * n], &want, wo);
                    }
                }
            }
        }
    }
}

/// The pipelined rows (at most 256 bytes) go two at a time, in turns, with
/// the last row loaded once more before it is written: batches of one to
/// six rows (an odd and an even last turn, in place too) give the bits of
/// their rows alone. In place, each row alone is normalized in place in a
/// copy of the batch at the same alignment.
#[test]
fn pipelined_batches_of_every_count_equal_single_rows() {
    let mut rng = SmallRng::seed_from_u64(23);
    for n in [1, 5, 16, 33, 48, 64] {
        for rows in 1..=size(6, 3) {
            let len = rows * n;
            // The batch at 0 and the rows alone at `twin`, a whole number of
            // 64-byte lines further on.
            let twin = len.div_ceil(16) * 16;
            let x = random::<f32>(&mut rng, len, 1.0, 3.0);
            let w = random::<f32>(&mut rng, n, 1.0, 0.5);
            for isa in dispatch::available() {
                for kind in Norm::ALL {
                    let what = format!("{isa} {} n={n} rows={rows}", kind.name());
                    let mut y = vec![0.0f32; len];
                    norm::norm_rows(isa, kind, &x, &mut y, n, EPS, Some(&w), None);
                    let mut buf = vec![0.0f32; twin + len];
                    buf[..len].copy_from_slice(&x);
                    buf[twin..].copy_from_slice(&x);
                    // SAFETY: the first `rows` rows of n of `buf`, each
                    // written over itself; w is n long.
                    unsafe { norm::norm_rows_raw(isa, kind, common::in_place_batch(&mut buf[..len], n), EPS, norm::Affine::from_slices(Some(&w), None), RowStats::NONE) };
                    for r in 0..rows {
                        let mut want = vec![0.0f32; n];
                        norm::norm(isa, kind, &x[r * n..(r + 1) * n], &mut want, EPS, Some(&w), None);
                        let p = buf[twin + r * n..].as_mut_ptr();
                        // SAFETY: row r of the copy at `twin`, n long,
                        // written over itself; w is n long.
                        unsafe { norm::norm_raw(isa, kind, p, p, n, EPS, norm::Affine::from_slices(Some(&w), None), RowStats::NONE) };
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert!(bits(&y[r * n..(r + 1) * n]) == bits(&want), "{what} row {r}");
                        assert!(bits(&buf[r * n..(r + 1) * n]) == bits(&buf[twin + r * n..twin + (r + 1) * n]), "{what} in place row {r}");
                    }
                }
            }
        }
    }
}

/// A part of a call (`norm_rows_part_raw`, as one thread runs it) takes
/// the path of the whole call's size: parts of a small call (LayerNorm
/// blocks at avx512) and of a large one (rows one at a time) give the
/// bits of single-row calls, also for parts shorter than a block. (Both
/// paths give the same bits, so which one ran is checked by the unit tests
/// of `in_layer_blocks`, not here.)
#[test]
fn parts_of_calls_equal_single_rows() {
    let mut rng = SmallRng::seed_from_u64(19);
    for n in [1, 17, 64, 100, 384] {
        let rows = 21;
        let x = random::<f32>(&mut rng, rows * n, 1.0, 3.0);
        for isa in dispatch::available() {
            let mut want = vec![0.0f32; x.len()];
            for r in 0..rows {
                norm::norm(isa, Norm::Layer, &x[r * n..(r + 1) * n], &mut want[r * n..(r + 1) * n], EPS, None, None);
            }
            for call_rows in [rows, 1 << 24] {
                for part in [rows, 5] {
                    let mut y = vec![0.0f32; x.len()];
                    for start in (0..rows).step_by(part) {
                        let count = part.min(rows - start);
                        let (xp, yp) = (x[start * n..].as_ptr(), y[start * n..].as_mut_ptr());
                        let batch = RowBatch { x: xp, x_stride: n as isize, y: yp, y_stride: n as isize, rows: count, n };
                        // SAFETY: `count` rows of n from row `start` of x and
                        // of y, distinct buffers of rows * n.
                        unsafe { norm::norm_rows_part_raw(isa, Norm::Layer, batch, call_rows, EPS, norm::Affine::NONE, RowStats::NONE) };
                    }
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert!(bits(&y) == bits(&want), "{isa} n={n} call of {call_rows} rows, parts of {part}");
                }
            }
        }
    }
}

/// A row of at most four registers (the kernels' `ShortRow`) is summed
/// whole, so it gives the same bits wherever it starts: every such length
/// of float32 at every start within a cache line, every norm, with weight
/// and bias. (x[0] is the mean of the others, so LayerNorm keeps its
/// shifted sums; rows far from it take a second pass split at alignment.)
#[test]
fn short_rows_do_not_depend_on_their_start() {
    let mut rng = SmallRng::seed_from_u64(16);
    for isa in dispatch::available().into_iter().filter(|&isa| isa != Isa::Scalar) {
        let lanes = match isa.name() {
            "avx512" => 16,
            "avx2" => 8,
            _ => 4,
        };
        for n in (1..=4 * lanes).step_by(size(1, 7)) {
            let mut x = random::<f32>(&mut rng, n, 1.0, 3.0);
            x[0] = if n > 1 { x[1..].iter().sum::<f32>() / (n - 1) as f32 } else { x[0] };
            let w = random::<f32>(&mut rng, n, 1.0, 0.5);
            let b = random::<f32>(&mut rng, n, 0.0, 0.5);
            for kind in Norm::ALL {
                let mut first: Option<Vec<u32>> = None;
                for offset in 0..lanes {
                    let mut buf = vec![0.0f32; offset + n];
                    buf[offset..].copy_from_slice(&x);
                    let mut y = vec![0.0f32; n];
                    norm::norm(isa, kind, &buf[offset..], &mut y, EPS, Some(&w), Some(&b));
                    let bits: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
                    match &first {
                        None => first = Some(bits),
                        Some(want) => assert!(&bits == want, "{isa} {} n={n} at offset {offset}", kind.name()),
                    }
                }
            }
        }
    }
}

/// The fused forms: the sum is exactly x + residual (as stored in T) and
/// the norm is the norm of that sum; in place (x <- norm, residual <- sum)
/// and with the sum written over x gives the same.
fn check_add<T: Float>(seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    for n in (0..=MAX_LEN).step_by(size(1, 3)) {
        let offset = n % 3;
        let xb = random::<T>(&mut rng, n + offset, 0.5, 2.0);
        let rb = random::<T>(&mut rng, n + offset, -0.5, 2.0);
        let (x, r) = (&xb[offset..], &rb[offset..]);
        let w = random::<T>(&mut rng, n, 1.0, 0.5);
        let b = random::<T>(&mut rng, n, 0.0, 0.5);
        let sum: Vec<T> = x.iter().zip(r).map(|(&a, &b)| a + b).collect();
        for isa in dispatch::available() {
            for kind in Norm::ALL {
                for (wo, bo) in [(None, None), (Some(&w[..]), Some(&b[..]))] {
                    let what = format!("add {isa} {} n={n} w={}", kind.name(), wo.is_some());
                    let (mut s, mut y) = (vec![T::ZERO; n], vec![T::ZERO; n]);
                    norm::add_norm(isa, kind, x, r, &mut s, &mut y, EPS, wo, bo);
                    assert_eq!(to_f64(&s), to_f64(&sum), "{what}: sum");
                    assert_matches_f64(&what, kind, &sum, &y, EPS, wo, bo);
                    assert_matches_scalar(&format!("{what}: vs norm of the sum"), &y, &run(isa, kind, &sum, EPS, wo, bo), wo);
                    let (mut xi, mut ri) = (x.to_vec(), r.to_vec());
                    norm::add_norm_inplace(isa, kind, &mut xi, &mut ri, EPS, wo, bo);
                    assert_eq!(to_f64(&ri), to_f64(&s), "{what}: in place sum");
                    assert_matches_scalar(&format!("{what}: in place"), &xi, &y, wo);
                    // sum over x, norm over residual.
                    let (mut xi, mut ri) = (x.to_vec(), r.to_vec());
                    let affine = norm::Affine::from_slices(wo, bo);
                    let (xp, rp) = (xi.as_mut_ptr(), ri.as_mut_ptr());
                    // SAFETY: `xi` and `ri` are distinct buffers of n, each
                    // pointer from one borrow; the sum goes over x and the
                    // norm over the residual (each an input, not overlapping
                    // the other); w and b are n long.
                    unsafe { norm::add_norm_raw(isa, kind, xp, rp, xp, rp, n, EPS, affine, RowStats::NONE) };
                    assert_eq!(to_f64(&xi), to_f64(&s), "{what}: sum over x");
                    assert_matches_scalar(&format!("{what}: norm over residual"), &ri, &y, wo);
                }
            }
        }
    }
}

#[test]
fn fused_add_every_length_f32() {
    check_add::<f32>(11);
}

#[test]
fn fused_add_every_length_f64() {
    check_add::<f64>(12);
}

#[test]
fn fused_add_with_huge_and_nan_sums() {
    let n = 40;
    let x: Vec<f32> = (0..n).map(|i| 1e30 * (i as f32 * 0.3).cos()).collect();
    let r: Vec<f32> = (0..n).map(|i| 1e29 * (i as f32 * 0.7).sin()).collect();
    let mut xn = x.clone();
    xn[7] = f32::NAN;
    for isa in dispatch::available() {
        for kind in Norm::ALL {
            let (mut s, mut y) = (vec![0.0f32; n], vec![0.0f32; n]);
            norm::add_norm(isa, kind, &x, &r, &mut s, &mut y, 0.0, None, None);
            assert_matches_f64(&format!("{isa} {} huge add", kind.name()), kind, &s, &y, 0.0, None, None);
            norm::add_norm(isa, kind, &xn, &r, &mut s, &mut y, EPS, None, None);
            assert!(s[7].is_nan() && s[6] == xn[6] + r[6] && y.iter().all(|v| v.is_nan()), "{isa} {} NaN add", kind.name());
        }
    }
}

#[test]
fn in_place_equals_out_of_place() {
    let mut rng = SmallRng::seed_from_u64(13);
    let n = size(1000, 100);
    let x = random::<f32>(&mut rng, n, 0.3, 4.0);
    let w = random::<f32>(&mut rng, n, 1.0, 0.5);
    for isa in dispatch::available() {
        for kind in Norm::ALL {
            // Same buffer alignment for both, so the sums split alike and
            // the results are identical.
            let mut y = x.clone();
            let want = run(isa, kind, &y, EPS, Some(&w), Some(&w));
            norm::norm_inplace(isa, kind, &mut y, EPS, Some(&w), Some(&w));
            assert_eq!(y, want, "{isa} {}", kind.name());
        }
    }
}

/// Long float32 rows: the f64 block totals keep the sums accurate.
#[test]
fn long_rows_stay_accurate() {
    let mut rng = SmallRng::seed_from_u64(14);
    let lengths: &[usize] = if cfg!(miri) { &[600] } else { &[65_536, 1 << 22] };
    for &n in lengths {
        let x = random::<f32>(&mut rng, n, 2.0, 1.0);
        for isa in dispatch::available() {
            for kind in Norm::ALL {
                let y = run(isa, kind, &x, EPS, None, None);
                assert_matches_f64(&format!("{isa} {} n={n}", kind.name()), kind, &x, &y, EPS, None, None);
            }
        }
    }
}

#[test]
fn kinds_are_named() {
    for kind in Norm::ALL {
        assert_eq!(Norm::from_name(kind.name()), Some(kind));
    }
    assert_eq!(Norm::from_name("batch"), None);
}

/// Found by the fuzzer (target norm, from an empty corpus): float64
/// LayerNorm of long near-constant rows of huge values (the rescaled path:
/// squares of |x| >= ~1e154 overflow), every value within a few ulps of the
/// mean (|mean| / std ~ 6e15), was up to 2.9e-12 off on the scalar level
/// (n = 4076, c = -1.15e300: 2.8e-12; AVX2 2.4e-14; the f64 reference
/// agrees with an exact rational computation to 1e-16). Rows of c and its
/// neighbours one ulp away, the first element at the mean or at an end;
/// every kind, ISA and affine combination.
#[test]
fn float64_huge_rows_within_an_ulp_of_their_mean() {
    let mut rng = SmallRng::seed_from_u64(16);
    let lengths: &[usize] = if cfg!(miri) { &[40] } else { &[1000, 4076] };
    for &n in lengths {
        for c in [1e160f64, 1e200, -1.14776611328125e300] {
            let ulps = |j: i64| f64::from_bits((c.to_bits() as i64 + j) as u64);
            let mut x: Vec<f64> = (0..n).map(|_| ulps(rng.random_range(-1..=1))).collect();
            let w = random::<f64>(&mut rng, n, 1.0, 0.5);
            let b = random::<f64>(&mut rng, n, 0.0, 0.5);
            check_row(&format!("c={c:e} n={n}"), &x, EPS, &w, &b);
            x[0] = ulps(-1);
            check_row(&format!("c={c:e} n={n}, x[0] at an end"), &x, EPS, &w, &b);
        }
    }
}

/// Checks row statistics against [`reference::norm_stats`]: NaN exactly
/// where expected, the mean within the tolerance of |mean| + 1 / rstd (the
/// row's spread), rstd within the tolerance relative to itself (equal
/// infinities included).
fn assert_stats_match<T: Float>(what: &str, kind: Norm, x: &[f64], eps: f64, (mean, rstd): (T, T)) {
    let (want_mean, want_rstd) = reference::norm_stats(kind, x, eps);
    let (mean, rstd) = (mean.to_f64(), rstd.to_f64());
    let tol = tolerance::<T>();
    assert!(reference::close(mean, want_mean, tol * (want_mean.abs() + 1.0 / want_rstd)), "{what}: mean {mean:e}, want {want_mean:e}");
    assert!(reference::close(rstd, want_rstd, tol * want_rstd), "{what}: rstd {rstd:e}, want {want_rstd:e}");
}

/// Row statistics on every ISA, kind and length 0..=MAX_LEN, for a batch
/// of 35 rows with NaN, inf, huge, tiny, constant, zero and large-mean
/// rows among ordinary ones in each block of 16 (the kernels' blocks of
/// short LayerNorm rows; of longer ones, blocks of 8 and part of another):
/// against the f64 reference; y is bit for bit the
/// same with and without them; a single-row call gives the batch's y and
/// statistics bit for bit, and the fused form gives those of the sum.
fn check_stats<T: Float>(seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let (huge, tiny) = if T::MANTISSA_DIGITS == 24 { (1e30, 1e-30) } else { (1e200, 1e-200) };
    // Two blocks of 16 short rows (AVX-512 float32 LayerNorm) and three
    // more rows.
    let rows = size(35, 11);
    for n in (0..=MAX_LEN).step_by(size(1, 5)) {
        let offset = n % 4;
        let mut buf = random::<T>(&mut rng, offset + rows * n, 0.0, 1.0);
        let x = &mut buf[offset..];
        let residual = random::<T>(&mut rng, rows * n, 0.5, 1.0);
        let mut row = |r: usize, f: &mut dyn FnMut(usize, T) -> T| (0..n).for_each(|i| x[r * n + i] = f(i, x[r * n + i]));
        for base in (0..rows).step_by(16).filter(|&base| base + 7 < rows) {
            row(base + 1, &mut |i, v| if i == n / 2 { T::NAN } else { v });
            row(base + 2, &mut |i, v| if i == n - 1 { T::NEG_INFINITY } else { v });
            row(base + 3, &mut |_, v| v * T::from_f64(huge));
            row(base + 4, &mut |_, v| v * T::from_f64(tiny));
            row(base + 5, &mut |_, _| T::from_f64(2.5));
            row(base + 6, &mut |_, _| T::ZERO);
            row(base + 7, &mut |_, v| v + T::from_f64(1e4));
        }
        let x = &*x;
        for isa in dispatch::available() {
            for kind in Norm::ALL {
                let what = format!("{isa} {} n={n}", kind.name());
                let mut plain = vec![T::ZERO; x.len()];
                norm::norm_rows(isa, kind, x, &mut plain, n, EPS, None, None);
                let (mut y, mut mean, mut rstd) = (vec![T::ZERO; x.len()], vec![T::ZERO; rows], vec![T::ZERO; rows]);
                norm::norm_rows_stats(isa, kind, x, &mut y, n, EPS, None, None, &mut mean, &mut rstd);
                assert!(to_f64(&y).iter().zip(to_f64(&plain)).all(|(a, b)| a.to_bits() == b.to_bits()), "{what}: y changed");
                for r in 0..rows {
                    let xr = &x[r * n..(r + 1) * n];
                    assert_stats_match(&format!("{what} row {r}"), kind, &to_f64(xr), EPS, (mean[r], rstd[r]));
                    let (mut m1, mut s1, mut y1) = (T::ZERO, T::ZERO, vec![T::ZERO; n]);
                    let stats = RowStats { mean: &mut m1, rstd: &mut s1 };
                    // SAFETY: `xr` and `y1` are n long and distinct; the
                    // statistics point at two distinct locals.
                    unsafe { norm::norm_raw(isa, kind, xr.as_ptr(), y1.as_mut_ptr(), n, EPS, norm::Affine::NONE, stats) };
                    assert!(to_f64(&y1).iter().zip(to_f64(&y[r * n..(r + 1) * n])).all(|(a, b)| a.to_bits() == b.to_bits()), "{what} row {r}: single-row y");
                    assert!(m1.to_f64().to_bits() == mean[r].to_f64().to_bits(), "{what} row {r}: single-row mean");
                    assert!(s1.to_f64().to_bits() == rstd[r].to_f64().to_bits(), "{what} row {r}: single-row rstd");
                    let rr = &residual[r * n..(r + 1) * n];
                    let (mut sum, mut ya) = (vec![T::ZERO; n], vec![T::ZERO; n]);
                    let stats = RowStats { mean: &mut m1, rstd: &mut s1 };
                    // SAFETY: four distinct buffers of n; the statistics
                    // point at two distinct locals.
                    unsafe { norm::add_norm_raw(isa, kind, xr.as_ptr(), rr.as_ptr(), sum.as_mut_ptr(), ya.as_mut_ptr(), n, EPS, norm::Affine::NONE, stats) };
                    assert_stats_match(&format!("{what} row {r} fused"), kind, &to_f64(&sum), EPS, (m1, s1));
                }
            }
        }
    }
}

#[test]
fn row_statistics_f32() {
    check_stats::<f32>(17);
}

#[test]
fn row_statistics_f64() {
    check_stats::<f64>(18);
}

/// eps = 0 on a zero row: rstd is +inf (1 / sqrt(0)), the mean 0, and y
/// NaN (0 * inf), for every kind and ISA; the mean of RMSNorm and CRMSNorm
/// rows is their centre, 0.
#[test]
fn row_statistics_of_zero_rows_without_eps() {
    // Rows of 100: a LayerNorm block at avx512.
    for (n, isa) in [size(37, 5), size(100, 6)].into_iter().flat_map(|n| dispatch::available().into_iter().map(move |isa| (n, isa))) {
        for kind in Norm::ALL {
            let (x, mut y, mut mean, mut rstd) = (vec![0.0f32; 2 * n], vec![0.0f32; 2 * n], [1.0f32; 2], [1.0f32; 2]);
            norm::norm_rows_stats(isa, kind, &x, &mut y, n, 0.0, None, None, &mut mean, &mut rstd);
            assert_eq!((mean, rstd), ([0.0; 2], [f32::INFINITY; 2]), "{isa} {}", kind.name());
            assert!(y.iter().all(|v| v.is_nan()), "{isa} {} n={n}", kind.name());
        }
    }
}

/// A constant float64 row of huge values is rescaled by 2^-k so far that
/// eps 2^-2k underflows to 0: its rstd is still 1 / sqrt(eps), not +inf,
/// and its y the bias, not 0 * inf = NaN (both were wrong before
/// `inv_rms` took this case, as was `reference::norm`). Near the float
/// maximum r = rstd / scale itself overflows (found by the fuzzer, target
/// norm: -f64::MAX, n = 3887, gave NaN): it is capped, and every x - c of
/// such a row is 0. float32 rows at their maximum take the same path.
#[test]
fn row_statistics_of_huge_constant_rows() {
    for &v in &[f32::MAX, -f32::MAX, 3e38] {
        for isa in dispatch::available() {
            let (mut y, mut mean, mut rstd) = (vec![1.0f32; 9], [0.0f32], [0.0f32]);
            norm::norm_rows_stats(isa, Norm::Layer, &[v; 9], &mut y, 9, EPS, None, None, &mut mean, &mut rstd);
            assert_eq!((mean[0], rstd[0]), (v, (1.0 / EPS.sqrt()) as f32), "{isa} {v:e}");
            assert!(y.iter().all(|&v| v == 0.0), "{isa} {v:e}: {y:?}");
        }
        check_row(&format!("constant {v:e}"), &[v; 9], EPS, &[1.5; 9], &[0.25; 9]);
    }
    for v in [1e200f64, -3e300, 1e160, 1e306, f64::MAX, -f64::MAX] {
        for isa in dispatch::available() {
            let x = vec![v; 9];
            let (mut y, mut mean, mut rstd) = (vec![1.0; 9], [0.0], [0.0]);
            norm::norm_rows_stats(isa, Norm::Layer, &x, &mut y, 9, EPS, None, None, &mut mean, &mut rstd);
            assert_eq!((mean[0], rstd[0]), (v, 1.0 / EPS.sqrt()), "{isa} {v:e}");
            assert!(y.iter().all(|&v| v == 0.0), "{isa} {v:e}: {y:?}");
        }
        check_row(&format!("constant {v:e}"), &[v; 9], EPS, &[1.5; 9], &[0.25; 9]);
    }
}
