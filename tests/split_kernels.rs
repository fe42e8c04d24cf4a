//! One row split into chunks on the thread pool (`softmax_split_raw` and
//! friends, `norm_split_raw`) against the float64 reference and against
//! the unsplit kernel, on every instruction set this CPU has: many lengths
//! and chunk lengths (chunk boundaries at odd offsets, one chunk, a
//! one-element last chunk), unaligned rows, offset / trending / huge /
//! tiny rows, and special values in one chunk only. The pool runs with
//! its default thread count (the CPUs), so chunks run concurrently.

use normkit::dispatch::{self, Isa};
use normkit::norm::{self, Affine, Norm, RowStats};
use normkit::simd::{bf16, f16, Element, Float, Real};
use normkit::softmax::{self, Algorithm};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

mod common;
use common::{log_softmax_tolerance, reference, size, two_pass_log_rows};

const LENGTHS: [usize; 7] = [0, 1, 63, 64, 1000, 4099, 20_011];
const CHUNKS: [usize; 6] = [1, 3, 17, 64, 1001, 4096];

fn random<T: Float>(rng: &mut SmallRng, n: usize, mean: f64, scale: f64) -> Vec<T> {
    (0..n).map(|_| T::from_f64(mean + scale * rng.random_range(-1.0..1.0))).collect()
}

fn to_f64<T: Float>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

/// The row of `n` elements at an offset of `n % 3` into a buffer, so
/// rows start unaligned.
fn unaligned<T: Float>(values: Vec<T>) -> (Vec<T>, usize) {
    let offset = values.len() % 3;
    let mut buf = vec![T::ZERO; offset];
    buf.extend(values);
    (buf, offset)
}

/// Which softmax-family kernel a check runs: an algorithm, or log-softmax.
#[derive(Clone, Copy, Debug)]
enum Op {
    Softmax(Algorithm),
    LogSoftmax,
}

const OPS: [Op; 5] = [
    Op::Softmax(Algorithm::TwoPass),
    Op::Softmax(Algorithm::ThreePassReload),
    Op::Softmax(Algorithm::ThreePassRecompute),
    Op::Softmax(Algorithm::Online),
    Op::LogSoftmax,
];

fn run_op<T: Element>(isa: Isa, op: Op, x: &[T], split: Option<usize>) -> Vec<T> {
    let mut y = vec![T::default(); x.len()];
    let (xp, yp, n) = (x.as_ptr(), y.as_mut_ptr(), x.len());
    // SAFETY: two distinct buffers of n elements.
    unsafe {
        match (op, split) {
            (Op::Softmax(a), Some(len)) => softmax::softmax_split_raw(isa, a, xp, yp, n, len),
            (Op::Softmax(a), None) => softmax::softmax_raw(isa, a, xp, yp, n),
            (Op::LogSoftmax, Some(len)) => softmax::log_softmax_split_raw(isa, xp, yp, n, len),
            (Op::LogSoftmax, None) => softmax::log_softmax_raw(isa, xp, yp, n),
        }
    }
    y
}

/// y against the float64 result `want`: NaN exactly where expected, else
/// within the documented bound (softmax: 2e-6 relative in float32, 1e-13
/// in float64; log-softmax: 1e-5 + 1e-7 |want| in float32, the f64 analog).
fn assert_op_close<T: Float>(what: &str, op: Op, y: &[T], want: &[f64]) {
    let f32 = T::MANTISSA_DIGITS == 24;
    for (i, (&got, &w)) in y.iter().zip(want).enumerate() {
        let got = got.to_f64();
        let w = T::from_f64(w).to_f64();
        let ok = match op {
            _ if w.is_nan() => got.is_nan(),
            _ if w.is_infinite() => got == w,
            Op::Softmax(_) => (got - w).abs() <= if f32 { 2e-6 * w + 1e-37 } else { 1e-13 * w + 1e-300 },
            Op::LogSoftmax => (got - w).abs() <= log_softmax_tolerance::<T>(w),
        };
        assert!(ok, "{what}: [{i}] = {got:e}, want {w:e}, n = {}", y.len());
    }
}

fn reference_op(op: Op, x: &[f64]) -> Vec<f64> {
    match op {
        Op::Softmax(_) => reference::softmax(x),
        Op::LogSoftmax => reference::log_softmax(x),
    }
}

/// Split vs float64 and vs unsplit (twice the bound apart at most) for one
/// row, every op, ISA and chunk length; logsumexp too.
fn check_softmax_row<T: Float>(what: &str, x: &[T]) {
    let xf = to_f64(x);
    let want_lse = reference::logsumexp(&xf);
    for op in OPS {
        let want = reference_op(op, &xf);
        for isa in dispatch::available() {
            let unsplit = run_op(isa, op, x, None);
            for len in CHUNKS {
                let what = format!("{what} {isa} {op:?} chunk {len}");
                let y = run_op(isa, op, x, Some(len));
                assert_op_close(&what, op, &y, &want);
                // Against the unsplit result: the same bound around it.
                let unsplit_f64 = to_f64(&unsplit);
                assert_op_close(&format!("{what} vs unsplit"), op, &y, &unsplit_f64);
            }
        }
    }
    for isa in dispatch::available() {
        for len in CHUNKS {
            // SAFETY: `x` is valid for reading its length.
            let got = unsafe { softmax::logsumexp_split_raw(isa, x.as_ptr(), x.len(), len) };
            let (abs, rel) = if T::MANTISSA_DIGITS == 24 { (2e-7, 2f64.powi(-24)) } else { (2e-15, 2f64.powi(-51)) };
            let got_t = T::from_f64(got).to_f64();
            assert!(
                reference::close(got_t, want_lse, abs + rel * want_lse.abs()) || (got.is_nan() && want_lse.is_nan()),
                "{what} {isa} logsumexp chunk {len} = {got:e}, want {want_lse:e}"
            );
        }
    }
}

fn check_softmax_random<T: Float>(seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    for n in LENGTHS.into_iter().take(size(7, 4)) {
        for scale in [4.0, 60.0] {
            let (buf, offset) = unaligned(random::<T>(&mut rng, n, 0.0, scale));
            check_softmax_row(&format!("scale {scale}"), &buf[offset..]);
        }
    }
}

#[test]
fn split_softmax_matches_f64_and_unsplit_f32() {
    check_softmax_random::<f32>(1);
}

#[test]
fn split_softmax_matches_f64_and_unsplit_f64() {
    check_softmax_random::<f64>(2);
}

/// One special value in one chunk only (first, middle, last element, at a
/// chunk boundary): NaN and +inf make the row NaN, -inf gives 0, values
/// beyond 2^18 send two-pass and online to the three-pass path.
#[test]
fn special_values_in_one_chunk() {
    let mut rng = SmallRng::seed_from_u64(3);
    let n = size(1000, 40);
    for value in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 2e6, -2e6, 88.0, -1e30] {
        for at in [0, 16, 17, n / 2, n - 1] {
            let mut x = random::<f32>(&mut rng, n, 0.0, 5.0);
            x[at] = value;
            check_softmax_row(&format!("x[{at}] = {value}"), &x);
        }
    }
    check_softmax_row("all -inf", &vec![f32::NEG_INFINITY; n]);
}

/// A split row of at least `LOG_TWO_PASS_MIN_BYTES` takes log-softmax in
/// two passes as the unsplit kernel does (the chunks' pair sums and maxima
/// merged, then the writes), or three when the pair sum rejects the row:
/// the rows of `common::two_pass_log_rows`, float32 and float64, every ISA,
/// chunks of odd lengths, against float64 and the unsplit result.
fn check_split_two_pass_log<T: Float>() {
    let n = softmax::LOG_TWO_PASS_MIN_BYTES / size_of::<T>() + 37;
    two_pass_log_rows::<T>(n, |what, row| {
        let want = reference::log_softmax(&to_f64(row));
        for isa in dispatch::available() {
            let unsplit = to_f64(&run_op(isa, Op::LogSoftmax, row, None));
            for len in [65_537, 1 << 20, n / 3 + 1] {
                let y = run_op(isa, Op::LogSoftmax, row, Some(len));
                let what = format!("{what} {isa} f{} chunk {len}", size_of::<T>() * 8);
                assert_op_close(&what, Op::LogSoftmax, &y, &want);
                assert_op_close(&format!("{what} vs unsplit"), Op::LogSoftmax, &y, &unsplit);
            }
        }
    });
}

#[test]
fn split_log_softmax_in_two_passes() {
    if cfg!(miri) {
        return; // rows of LOG_TWO_PASS_MIN_BYTES: far beyond what Miri interprets in time.
    }
    check_split_two_pass_log::<f32>();
    check_split_two_pass_log::<f64>();
}

fn run_norm<T: Element>(
    isa: Isa,
    kind: Norm,
    x: &[T],
    eps: f64,
    w: Option<&[T::Real]>,
    b: Option<&[T::Real]>,
    split: Option<usize>,
) -> (Vec<T>, T::Real, T::Real) {
    let mut y = vec![T::default(); x.len()];
    let (mut mean, mut rstd) = (T::Real::ZERO, T::Real::ZERO);
    let stats = RowStats { mean: &mut mean, rstd: &mut rstd };
    let affine = Affine::from_slices(w, b);
    // SAFETY: distinct buffers of n elements; weight and bias of n; the
    // statistics are two locals.
    unsafe {
        match split {
            Some(len) => norm::norm_split_raw(isa, kind, x.as_ptr(), y.as_mut_ptr(), x.len(), eps, affine, stats, len),
            None => norm::norm_raw(isa, kind, x.as_ptr(), y.as_mut_ptr(), x.len(), eps, affine, stats),
        }
    }
    (y, mean, rstd)
}

fn norm_tolerance<T: Float>() -> f64 {
    if T::MANTISSA_DIGITS == 24 { 1e-5 } else { 1e-12 }
}

/// y against `want` (the reference, or another computation): NaN exactly
/// where expected, else within `rel` of |want| + |w| (norm_kernels.rs).
fn assert_norm_close<T: Float>(what: &str, y: &[T], want: &[f64], w: Option<&[T]>, rel: f64) {
    for (i, (&got, &want)) in y.iter().zip(want).enumerate() {
        let got = got.to_f64();
        if want.is_nan() {
            assert!(got.is_nan(), "{what}: [{i}] = {got}, want NaN");
            continue;
        }
        let wi = w.map_or(1.0, |w| w[i].to_f64());
        assert!((got - want).abs() <= rel * (want.abs() + wi.abs()), "{what}: [{i}] = {got:e}, want {want:e}, n = {}", y.len());
    }
}

/// Split vs float64 (values and statistics) and vs unsplit for one row,
/// every kind, ISA, chunk length and affine combination.
fn check_norm_row<T: Float>(what: &str, x: &[T], eps: f64, w: &[T], b: &[T]) {
    let tol = norm_tolerance::<T>();
    let xf = to_f64(x);
    for kind in Norm::ALL {
        let (want_mean, want_rstd) = reference::norm_stats(kind, &xf, eps);
        for (wo, bo) in [(None, None), (Some(w), Some(b))] {
            let (wf, bf) = (wo.map(to_f64), bo.map(to_f64));
            let want = reference::norm(kind, &xf, eps, wf.as_deref(), bf.as_deref());
            for isa in dispatch::available() {
                let (unsplit, _, _) = run_norm(isa, kind, x, eps, wo, bo, None);
                for len in CHUNKS {
                    let what = format!("{what} {isa} {} chunk {len} affine {}", kind.name(), wo.is_some());
                    let (y, mean, rstd) = run_norm(isa, kind, x, eps, wo, bo, Some(len));
                    assert_norm_close(&what, &y, &want, wo, tol);
                    assert_norm_close(&format!("{what} vs unsplit"), &y, &to_f64(&unsplit), wo, 2.0 * tol);
                    let (mean, rstd) = (mean.to_f64(), rstd.to_f64());
                    assert!(reference::close(mean, want_mean, tol * (want_mean.abs() + 1.0 / want_rstd)), "{what}: mean {mean:e}, want {want_mean:e}");
                    assert!(reference::close(rstd, want_rstd, tol * want_rstd), "{what}: rstd {rstd:e}, want {want_rstd:e}");
                }
            }
        }
    }
}

/// Ordinary, offset (1e4 + noise: cancellation), trending (chunk means
/// far apart: Chan's combination term dominates), huge and tiny rows
/// (rescaled), constant rows.
fn check_norm_rows<T: Float>(seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let (huge, tiny) = if T::MANTISSA_DIGITS == 24 { (1e30, 1e-30) } else { (1e200, 1e-200) };
    for n in LENGTHS.into_iter().take(size(7, 4)) {
        let w = random::<T>(&mut rng, n, 1.0, 0.5);
        let b = random::<T>(&mut rng, n, 0.0, 0.5);
        let trend: Vec<T> = (0..n).map(|i| T::from_f64(i as f64 * 0.5 + rng.random_range(-1.0..1.0))).collect();
        let rows = [
            ("ordinary", random::<T>(&mut rng, n, 0.0, 2.0)),
            ("offset 1e4", random::<T>(&mut rng, n, 1e4, 1.0)),
            ("trending", trend),
            ("huge", random::<T>(&mut rng, n, 0.0, huge)),
            ("tiny", random::<T>(&mut rng, n, 0.0, tiny)),
            ("constant", vec![T::from_f64(2.5); n]),
        ];
        for (what, x) in rows {
            let (buf, offset) = unaligned(x);
            for eps in [1e-5, 0.0] {
                check_norm_row(&format!("{what} eps {eps}"), &buf[offset..], eps, &w, &b);
            }
        }
    }
}

#[test]
fn split_norms_match_f64_and_unsplit_f32() {
    check_norm_rows::<f32>(4);
}

#[test]
fn split_norms_match_f64_and_unsplit_f64() {
    check_norm_rows::<f64>(5);
}

/// A NaN or infinity in one chunk makes the whole row and its statistics
/// NaN; a huge value in one chunk rescales the whole row.
#[test]
fn norm_special_values_in_one_chunk() {
    let mut rng = SmallRng::seed_from_u64(6);
    let n = size(1000, 40);
    let w = random::<f32>(&mut rng, n, 1.0, 0.5);
    for value in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 3e38, 1e20] {
        for at in [0, 17, n / 2, n - 1] {
            let mut x = random::<f32>(&mut rng, n, 0.0, 1.0);
            x[at] = value;
            check_norm_row(&format!("x[{at}] = {value}"), &x, 1e-5, &w, &w);
        }
    }
}

/// In place (y = x) equals out of place from the same buffer (results
/// may depend on the input's address, through its alignment).
#[test]
fn split_in_place_equals_out_of_place() {
    let mut rng = SmallRng::seed_from_u64(7);
    let n = size(4099, 100);
    let x = random::<f32>(&mut rng, n, 3.0, 4.0);
    for isa in dispatch::available() {
        for op in OPS {
            let mut y = x.clone();
            let want = run_op(isa, op, &y, Some(17));
            let p = y.as_mut_ptr();
            // SAFETY: one buffer of n elements, in place.
            unsafe {
                match op {
                    Op::Softmax(a) => softmax::softmax_split_raw(isa, a, p, p, n, 17),
                    Op::LogSoftmax => softmax::log_softmax_split_raw(isa, p, p, n, 17),
                }
            }
            assert!(y == want, "{isa} {op:?}");
        }
        for kind in Norm::ALL {
            let mut y = x.clone();
            let (want, _, _) = run_norm(isa, kind, &y, 1e-5, None, None, Some(17));
            let p = y.as_mut_ptr();
            // SAFETY: one buffer of n elements, in place; no statistics.
            unsafe { norm::norm_split_raw(isa, kind, p, p, n, 1e-5, Affine::NONE, RowStats::NONE, 17) };
            assert!(y == want, "{isa} {}", kind.name());
        }
    }
}

/// bfloat16 and float16 rows (loaded into f32 registers, rounded once at
/// the store): the split results within the documented f32 bound plus the
/// rounding to the storage type (`ulp`: half an ulp relative) of the
/// float64 result, or half the spacing `tiny` of its subnormals.
fn check_half<T: Element<Real = f32>>(name: &str, to: fn(f32) -> T, from: fn(T) -> f32, ulp: f64, tiny: f64) {
    let mut rng = SmallRng::seed_from_u64(8);
    let n = size(4099, 100);
    let x: Vec<T> = (0..n).map(|_| to(rng.random_range(-8.0..8.0))).collect();
    let xf: Vec<f64> = x.iter().map(|&v| from(v) as f64).collect();
    let w: Vec<f32> = (0..n).map(|_| rng.random_range(0.5..1.5)).collect();
    for isa in dispatch::available() {
        for len in [17, 1001] {
            for op in OPS {
                let want = reference_op(op, &xf);
                let y = run_op(isa, op, &x, Some(len));
                for (i, (&got, &want)) in y.iter().zip(&want).enumerate() {
                    let got = from(got) as f64;
                    let bound = match op {
                        Op::Softmax(_) => (2e-6 + ulp) * want + tiny,
                        Op::LogSoftmax => 1e-5 + (1e-7 + ulp) * want.abs(),
                    };
                    assert!((got - want).abs() <= bound, "{name} {isa} {op:?} chunk {len}: [{i}] = {got:e}, want {want:e}");
                }
            }
            for kind in Norm::ALL {
                let want = reference::norm(kind, &xf, 1e-5, Some(&to_f64(&w)), None);
                let (y, _, _) = run_norm(isa, kind, &x, 1e-5, Some(&w), None, Some(len));
                for (i, (&got, &want)) in y.iter().zip(&want).enumerate() {
                    let got = from(got) as f64;
                    assert!((got - want).abs() <= (1e-5 + ulp) * (want.abs() + w[i] as f64), "{name} {isa} {} chunk {len}: [{i}] = {got:e}, want {want:e}", kind.name());
                }
            }
        }
    }
}

#[test]
fn split_half_storage_rows() {
    check_half::<bf16>("bfloat16", bf16::from_f32, bf16::to_f32, 2f64.powi(-8), 2f64.powi(-134));
    check_half::<f16>("float16", f16::from_f32, f16::to_f32, 2f64.powi(-11), 2f64.powi(-25));
}
