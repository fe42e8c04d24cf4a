//! The L1 norm on every available ISA against the scalar reference, with
//! the tolerances of tests/l1norm_kernels.rs, on rows decoded from the
//! fuzzer's bytes.
//!
//! byte 0: bits 0-1 mode (0, 1: int8; 2: float f32; 3: float f64), bit 2
//! weight, bit 3 bias, bits 4-5 ISA choice (0: all available);
//! int8: byte 1 rows 1..=4, byte 2 row padding (stride - n) 0..8, bytes
//! 3-4 length 0..=4096, bytes 5-8 the gain's f32 bits, then the values
//! (int8, cycled; weight and bias are rotations of them);
//! float: byte 1 offset, bytes 2-3 length, byte 4 eps, byte 5 scale, then
//! values (see normkit_fuzz).

#![no_main]

use libfuzzer_sys::fuzz_target;
use normkit::dispatch::Isa;
use normkit::l1norm::{self, Affine, RowBatch};
use normkit::simd::Element;
use normkit_fuzz::{close, isas, row_buffer, values, Reader, ValueSpec};

const MAX_LEN: usize = 4096;

/// clamp((x - mean) / s * gain * w + b, -128, 127) in f64 from exact
/// integer sums (as in tests/l1norm_kernels.rs).
fn int_reference(x: &[i8], gain: f32, w: Option<&[i8]>, b: Option<&[i8]>) -> Vec<f64> {
    let n = x.len() as i64;
    let sum: i64 = x.iter().map(|&v| v as i64).sum();
    let a: i64 = x.iter().map(|&v| (n * v as i64 - sum).abs()).sum();
    (0..x.len())
        .map(|i| {
            let bias = b.map_or(0.0, |b| b[i] as f64);
            if a == 0 {
                return bias;
            }
            let d = (n * x[i] as i64 - sum) as f64;
            (d * n as f64 / a as f64 * gain as f64 * w.map_or(1.0, |w| w[i] as f64) + bias).clamp(-128.0, 127.0)
        })
        .collect()
}

/// A positive finite gain from raw bits, or a fixed one when they are not.
fn gain_from_bits(bits: u32) -> f32 {
    let g = f32::from_bits(bits).abs();
    if g > 0.0 && g.is_finite() {
        g
    } else {
        [1.0, 30.0, 1e-30, f32::MAX][bits as usize % 4]
    }
}

fn run_int8(r: &mut Reader, header: u8) {
    let isas = isas((header >> 4) & 3);
    let rows = r.byte() as usize % 4 + 1;
    let pad = r.byte() as usize % 8;
    let n = r.u16() as usize % (MAX_LEN + 1);
    let gain = gain_from_bits(r.u32());
    let mut vals = Vec::new();
    while !r.is_empty() {
        vals.push(r.byte() as i8);
    }
    if vals.is_empty() {
        vals.push(0);
    }
    let at = |k: usize| vals[k % vals.len()];
    let stride = n + pad;
    let x: Vec<i8> = (0..rows * stride).map(at).collect();
    let w: Vec<i8> = (0..n).map(|i| at(i + vals.len() / 2)).collect();
    let b: Vec<i8> = (0..n).map(|i| at(3 * i + 1)).collect();
    let w = (header & 4 != 0).then_some(&w[..]);
    let b = (header & 8 != 0).then_some(&b[..]);

    // Scalar, row by row: within 0.56 of the exact formula.
    let mut want = vec![0i8; rows * n];
    for i in 0..rows {
        let row = &x[i * stride..i * stride + n];
        l1norm::l1_norm_i8(Isa::Scalar, row, &mut want[i * n..(i + 1) * n], gain, w, b);
        for (k, e) in int_reference(row, gain, w, b).into_iter().enumerate() {
            let y = want[i * n + k] as f64;
            assert!((y - e).abs() <= 0.56, "scalar row {i} [{k}] = {y}, exact {e}, n = {n}, gain {gain:e}");
        }
    }
    let affine = Affine::from_slices(w, b);
    for &isa in &isas {
        // A strided batch into a dense output, bit-exact with scalar.
        let mut y = vec![99i8; rows * n];
        let batch = RowBatch { x: x.as_ptr(), x_stride: stride as isize, y: y.as_mut_ptr(), y_stride: n as isize, rows, n };
        unsafe { l1norm::l1_norm_i8_rows_raw(isa, batch, gain, affine) };
        assert_eq!(y, want, "{isa} batch of {rows} rows, n = {n}, stride {stride}, gain {gain:e}");
        // The same batch in place (padding must stay untouched).
        let mut z = x.clone();
        let zp = z.as_mut_ptr();
        let batch = RowBatch { x: zp, x_stride: stride as isize, y: zp, y_stride: stride as isize, rows, n };
        unsafe { l1norm::l1_norm_i8_rows_raw(isa, batch, gain, affine) };
        for i in 0..rows {
            assert_eq!(&z[i * stride..i * stride + n], &want[i * n..(i + 1) * n], "{isa} in place row {i}, n = {n}");
            assert_eq!(&z[i * stride + n..(i + 1) * stride], &x[i * stride + n..(i + 1) * stride], "{isa} wrote padding");
        }
    }
}

/// (x - mean) / (s + eps) * w + b in f64; also the amplification
/// max|x| / (s + eps) of a rounding of the input scale, and 1 / (s + eps).
fn float_reference(x: &[f64], eps: f64, w: Option<&[f64]>, b: Option<&[f64]>) -> (Vec<f64>, f64, f64) {
    let n = x.len() as f64;
    let sum = x.iter().sum::<f64>();
    // A constant row has its value as the exact mean and s = 0 (kernel contract).
    let constant = sum.is_finite() && x.iter().all(|&v| v == x[0]) && !x.is_empty();
    let mean = if constant { x[0] } else { sum / n };
    let s = x.iter().map(|v| (v - mean).abs()).sum::<f64>() / n;
    let inv = 1.0 / (s + eps);
    let y = (0..x.len()).map(|i| (x[i] - mean) * inv * w.map_or(1.0, |w| w[i]) + b.map_or(0.0, |b| b[i])).collect();
    let amp = if constant { 0.0 } else { x.iter().fold(0.0f64, |m, v| m.max(v.abs())) * inv };
    (y, amp, inv)
}

fn run_float<T: Element>(r: &mut Reader, header: u8) {
    let isas = isas((header >> 4) & 3);
    let offset = r.byte() as usize % 16;
    let n = r.u16() as usize % (MAX_LEN + 1);
    let eps = T::from_f64([1e-5, 1e-12, 1.0, 0.0][r.byte() as usize % 4]);
    let spec = ValueSpec::read(r, true, 1e4);
    let vals = values::<T>(r, spec);
    let buf = row_buffer(&vals, offset, n);
    let x = &buf[offset..];
    // Weight in [-2, 2] and bias in [-1, 1], as in the kernel tests.
    let w: Vec<T> = (0..n).map(|i| T::from_f64(((i * 37 % 101) as f64 / 25.0) - 2.0)).collect();
    let b: Vec<T> = (0..n).map(|i| T::from_f64(((i * 53 % 97) as f64 / 48.0) - 1.0)).collect();
    let w = (header & 4 != 0).then_some(&w[..]);
    let b = (header & 8 != 0).then_some(&b[..]);

    let f = |v: &[T]| v.iter().map(|e| e.to_f64()).collect::<Vec<f64>>();
    let (wf, bf) = (w.map(f), b.map(f));
    let (want, amp, inv) = float_reference(&f(x), eps.to_f64(), wf.as_deref(), bf.as_deref());
    let max_t = if T::MANTISSA_DIGITS == 24 { f32::MAX as f64 } else { f64::MAX };
    let (tol, unit) = if T::MANTISSA_DIGITS == 24 { (1e-5, f32::EPSILON as f64) } else { (1e-12, f64::EPSILON) };
    let mut scalar = vec![T::ZERO; n];
    l1norm::l1_norm_float(Isa::Scalar, x, &mut scalar, eps, w, b);
    for &isa in &isas {
        let mut y = vec![T::NAN; n];
        l1norm::l1_norm_float(isa, x, &mut y, eps, w, b);
        for i in 0..n {
            let (got, s, e) = (y[i].to_f64(), scalar[i].to_f64(), want[i]);
            // The tests' bound, plus the error of the mean amplified by
            // max|x| / (s + eps) (nearly constant rows): a few roundings of
            // T, and the n roundings of summing in f64 one after another
            // (Higham eq. 4.4; the scalar reference and this reference do;
            // found at n = 2847 for float64). It moves x - mean (times
            // |w| <= 2) and s (times the result): hence 2 + |e|.
            let bound = tol * (1.0 + e.abs()) + (4.0 * unit + n as f64 * f64::EPSILON) * amp * (2.0 + e.abs());
            // Where 1 / (s + eps) overflows T (eps = 0 and a subnormal
            // spread) the kernels' result is inf / NaN: a documented limit,
            // checked against scalar only.
            if e.is_finite() && inv <= max_t {
                assert!(close(got, e, bound), "{isa} [{i}] = {got:e}, f64 {e:e}, n = {n}, eps {:e}", eps.to_f64());
            }
            assert!(close(got, s, 2.0 * bound), "{isa} [{i}] = {got:e}, scalar {s:e}, n = {n}, eps {:e}", eps.to_f64());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let header = r.byte();
    match header & 3 {
        0 | 1 => run_int8(&mut r, header),
        2 => run_float::<f32>(&mut r, header),
        _ => run_float::<f64>(&mut r, header),
    }
});
