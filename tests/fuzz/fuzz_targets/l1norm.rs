//! The L1 norm on every available ISA against the scalar reference, with
//! the tolerances of tests/l1norm_kernels.rs, on rows decoded from the
//! fuzzer's bytes.
//!
//! byte 0: bits 0-1 mode (0, 1: int8; 2: float f32; 3: float f64), bit 2
//! weight, bit 3 bias, bits 4-5 ISA choice (0: all available);
//! int8: byte 1 rows 1..=4, byte 2 row padding (stride - n) 0..8, bytes
//! 3-4 length 0..=4096, then the gain (two or five bytes: see `gain`), the values of
//! x (the padding included), the weight and the bias (each a shape byte, a
//! centre byte and the values: see `normkit_fuzz::i8_values`);
//! float: byte 1 offset, bytes 2-3 length, byte 4 eps, bytes 5-6 the row
//! spec, then values (see normkit_fuzz). Past the input's end, bytes come
//! from a PRNG seeded by it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use normkit::dispatch::Isa;
use normkit::l1norm::{self, Affine, RowBatch};
use normkit::simd::Float;
use normkit_fuzz::reference::{self, close};
use normkit_fuzz::{i8_values, isas, row_buffer, Reader, RowSpec};

const MAX_LEN: usize = 4096;

/// A positive finite gain: for a first byte s < 192, 2^((s - 96) / 8) times
/// 1 + (next byte) / 256 (the useful range, 2^-12..2^12); else from the
/// raw bits of the next four bytes (any float32, a fixed one when they are
/// not positive and finite).
fn gain(r: &mut Reader) -> f32 {
    let s = r.byte();
    if s < 192 {
        return ((s as f32 - 96.0) / 8.0).exp2() * (1.0 + r.byte() as f32 / 256.0);
    }
    let bits = r.u32();
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
    let n = r.length(MAX_LEN);
    let gain = gain(r);
    let stride = n + pad;
    let x = i8_values(r, rows * stride);
    let w = i8_values(r, n);
    let b = i8_values(r, n);
    let w = (header & 4 != 0).then_some(&w[..]);
    let b = (header & 8 != 0).then_some(&b[..]);

    // Scalar, row by row: within 0.56 of the exact formula.
    let mut want = vec![0i8; rows * n];
    for i in 0..rows {
        let row = &x[i * stride..i * stride + n];
        l1norm::l1_norm_i8(Isa::Scalar, row, &mut want[i * n..(i + 1) * n], gain, w, b);
        for (k, e) in reference::l1_norm_i8(row, gain, w, b).into_iter().enumerate() {
            let y = want[i * n + k] as f64;
            assert!((y - e).abs() <= 0.56, "scalar row {i} [{k}] = {y}, exact {e}, n = {n}, gain {gain:e}");
        }
    }
    let affine = Affine::from_slices(w, b);
    for &isa in &isas {
        // A strided batch into a dense output, bit-exact with scalar.
        let mut y = vec![99i8; rows * n];
        let batch = RowBatch { x: x.as_ptr(), x_stride: stride as isize, y: y.as_mut_ptr(), y_stride: n as isize, rows, n };
        // SAFETY: `rows` x rows of n at stride n + pad in `x` (rows * stride
        // long), y rows of n at stride n in `y` (rows * n long), distinct
        // live buffers; the affine slices are n long; the gain is positive
        // and finite (`gain`) and n <= 4096.
        unsafe { l1norm::l1_norm_i8_rows_raw(isa, batch, gain, affine) };
        assert_eq!(y, want, "{isa} batch of {rows} rows, n = {n}, stride {stride}, gain {gain:e}");
        // The same batch in place (padding must stay untouched).
        let mut z = x.clone();
        let zp = z.as_mut_ptr();
        let batch = RowBatch { x: zp, x_stride: stride as isize, y: zp, y_stride: stride as isize, rows, n };
        // SAFETY: as above, with every y row its own x row in `z` (both
        // pointers derived from one borrow).
        unsafe { l1norm::l1_norm_i8_rows_raw(isa, batch, gain, affine) };
        for i in 0..rows {
            assert_eq!(&z[i * stride..i * stride + n], &want[i * n..(i + 1) * n], "{isa} in place row {i}, n = {n}");
            assert_eq!(&z[i * stride + n..(i + 1) * stride], &x[i * stride + n..(i + 1) * stride], "{isa} wrote padding");
        }
    }
}

fn run_float<T: Float>(r: &mut Reader, header: u8) {
    let isas = isas((header >> 4) & 3);
    let offset = r.byte() as usize % 16;
    let n = r.length(MAX_LEN);
    let eps = T::from_f64([1e-5, 1e-12, 1.0, 0.0][r.byte() as usize % 4]);
    let spec = RowSpec::read(r, true, 1e4);
    let buf = row_buffer::<T>(r, spec, offset, n);
    let x = &buf[offset..];
    // Weight in [-2, 2] and bias in [-1, 1], as in the kernel tests.
    let w: Vec<T> = (0..n).map(|i| T::from_f64(((i * 37 % 101) as f64 / 25.0) - 2.0)).collect();
    let b: Vec<T> = (0..n).map(|i| T::from_f64(((i * 53 % 97) as f64 / 48.0) - 1.0)).collect();
    let w = (header & 4 != 0).then_some(&w[..]);
    let b = (header & 8 != 0).then_some(&b[..]);

    let f = |v: &[T]| v.iter().map(|e| e.to_f64()).collect::<Vec<f64>>();
    let (wf, bf) = (w.map(f), b.map(f));
    let reference::L1Float { y: want, amplification: amp, inv_scale: inv } = reference::l1_norm_float(&f(x), eps.to_f64(), wf.as_deref(), bf.as_deref());
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
