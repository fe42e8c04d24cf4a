//! Softmax (every algorithm) and log-softmax on every available ISA against
//! the scalar reference and a float64 computation, with the tolerances of
//! tests/softmax_kernels.rs, on rows decoded from the fuzzer's bytes:
//!
//! byte 0: bit 0 dtype (f32 / f64), bit 1 softmax / log-softmax, bits 2-3
//! algorithm, bits 4-5 ISA choice (0: all available), bit 6 also in place;
//! byte 1: offset 0..16; bytes 2-3: length 0..=4096; bytes 4-5: the row
//! spec, then values (see normkit_fuzz; past the input's end, bytes come
//! from a PRNG seeded by it).

#![no_main]

use libfuzzer_sys::fuzz_target;
use normkit::dispatch::Isa;
use normkit::simd::Float;
use normkit::softmax::{self, Algorithm};
use normkit_fuzz::reference::{self, close, f64_sum_error};
use normkit_fuzz::{isas, row_buffer, Reader, RowSpec};

const MAX_LEN: usize = 4096;

fn is_f32<T: Float>() -> bool {
    T::MANTISSA_DIGITS == 24
}

fn check_softmax<T: Float>(isas: &[Isa], algorithm: Algorithm, x: &[T], in_place: bool) {
    let rel = if is_f32::<T>() { 2e-6 } else { 1e-13 + f64_sum_error(x.len()) };
    let tiny = if is_f32::<T>() { 1e-37 } else { 1e-300 };
    let xf: Vec<f64> = x.iter().map(|v| v.to_f64()).collect();
    let want = reference::softmax(&xf);
    let mut scalar = vec![T::ZERO; x.len()];
    softmax::softmax(Isa::Scalar, algorithm, x, &mut scalar);
    for &isa in isas {
        let mut y = vec![T::NAN; x.len()];
        softmax::softmax(isa, algorithm, x, &mut y);
        for i in 0..x.len() {
            let (got, s, w) = (y[i].to_f64(), scalar[i].to_f64(), want[i]);
            assert!(close(got, w, rel * w.abs() + tiny), "{isa} {algorithm:?} [{i}] = {got:e}, f64 {w:e}, n = {}", x.len());
            assert!(close(got, s, 2.0 * rel * s.abs() + 1e-37), "{isa} {algorithm:?} [{i}] = {got:e}, scalar {s:e}, n = {}", x.len());
        }
        if in_place {
            let mut z = x.to_vec();
            softmax::softmax_inplace(isa, algorithm, &mut z);
            assert!(z.iter().zip(&y).all(|(a, b)| a.to_f64().to_bits() == b.to_f64().to_bits()), "{isa} {algorithm:?} in place differs");
        }
    }
}

fn check_log_softmax<T: Float>(isas: &[Isa], x: &[T], in_place: bool) {
    // The documented bound (softmax.py): 1e-5 absolute or one ulp of the
    // result (the final subtraction rounds once more than (x - m) did),
    // whichever is larger. The kernel tests' 1e-7 |w| is below one ulp for
    // |w| >= 2^13: this target found scalar 1 ulp off at -8673.4.
    let (abs, rel) = if is_f32::<T>() { (1e-5, f32::EPSILON as f64) } else { (1e-13 + f64_sum_error(x.len()), f64::EPSILON) };
    let xf: Vec<f64> = x.iter().map(|v| v.to_f64()).collect();
    // The T result of an f64 value beyond T's range is +-inf.
    let want: Vec<f64> = reference::log_softmax(&xf).into_iter().map(|w| T::from_f64(w).to_f64()).collect();
    let mut scalar = vec![T::ZERO; x.len()];
    softmax::log_softmax(Isa::Scalar, x, &mut scalar);
    for &isa in isas {
        let mut y = vec![T::NAN; x.len()];
        softmax::log_softmax(isa, x, &mut y);
        for i in 0..x.len() {
            let (got, s, w) = (y[i].to_f64(), scalar[i].to_f64(), want[i]);
            let ok_ref = if w.is_infinite() { got == w } else { close(got, w, abs + rel * w.abs()) };
            assert!(ok_ref, "{isa} log_softmax [{i}] = {got:e}, f64 {w:e}, n = {}", x.len());
            assert!(close(got, s, 2.0 * (abs + rel * s.abs())), "{isa} log_softmax [{i}] = {got:e}, scalar {s:e}");
        }
        if in_place {
            let mut z = x.to_vec();
            softmax::log_softmax_inplace(isa, &mut z);
            assert!(z.iter().zip(&y).all(|(a, b)| a.to_f64().to_bits() == b.to_f64().to_bits()), "{isa} log_softmax in place differs");
        }
    }
}

fn run<T: Float>(r: &mut Reader, header: u8) {
    let log = header & 2 != 0;
    let algorithm = Algorithm::ALL[(header >> 2) as usize & 3];
    let isas = isas((header >> 4) & 3);
    let in_place = header & 0x40 != 0;
    let offset = r.byte() as usize % 16;
    let n = r.length(MAX_LEN);
    let spec = RowSpec::read(r, true, f64::INFINITY);
    let buf = row_buffer::<T>(r, spec, offset, n);
    let x = &buf[offset..];
    if log {
        check_log_softmax(&isas, x, in_place);
    } else {
        check_softmax(&isas, algorithm, x, in_place);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let header = r.byte();
    if header & 1 == 0 {
        run::<f32>(&mut r, header);
    } else {
        run::<f64>(&mut r, header);
    }
});
