//! RMSNorm, LayerNorm, CRMSNorm and the fused residual-add form on every
//! available ISA against the scalar reference and a float64 computation,
//! with the tolerances of tests/norm_kernels.rs.
//!
//! byte 0: bit 0 dtype (f32 / f64), bits 1-2 kind (rms, layer, crms, and
//! 3: layer fused with a residual add), bit 3 weight, bit 4 bias, bits 5-6
//! ISA choice (0: all available); byte 1: offset 0..16; bytes 2-3: length
//! 0..=4096; byte 4: eps; byte 5: scale; then values (see normkit_fuzz).

#![no_main]

use libfuzzer_sys::fuzz_target;
use normkit::dispatch::Isa;
use normkit::norm::{self, Affine, Norm, RowBatch};
use normkit::simd::Element;
use normkit_fuzz::{close, isas, row_buffer, values, Reader, ValueSpec};

const MAX_LEN: usize = 4096;

/// y = (x - c) / sqrt(q / d + eps) * w + b in f64 from the definitions,
/// the centre as an unevaluated sum (as in tests/norm_kernels.rs); a row
/// with a non-finite entry is all NaN.
fn reference(kind: Norm, x: &[f64], eps: f64, w: Option<&[f64]>, b: Option<&[f64]>) -> Vec<f64> {
    let n = x.len() as f64;
    if x.iter().any(|v| !v.is_finite()) {
        return vec![f64::NAN; x.len()];
    }
    // Scaled by a power of two so squares of 1e300 neither overflow nor
    // those of 1e-300 underflow (exact; eps scaled to match).
    let top = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let k = if top > 0.0 { -(top.log2().floor()) } else { 0.0 };
    // 2^k in two factors: 2^1074 (subnormal rows) is beyond f64 (found by
    // this target: a row of 5e-324 gave NaN here).
    let (s1, s2) = ((k / 2.0).floor().exp2(), (k - (k / 2.0).floor()).exp2());
    let xs: Vec<f64> = x.iter().map(|v| v * s1 * s2).collect();
    let eps = eps * s1 * s1 * s2 * s2;
    let sum: f64 = xs.iter().sum();
    let (c, c_lo, ms) = match kind {
        Norm::Rms => (0.0, 0.0, xs.iter().map(|v| v * v).sum::<f64>() / n),
        Norm::Crms => (0.0, 0.0, (xs.iter().map(|v| v * v).sum::<f64>() + sum * sum) / (n + 1.0)),
        Norm::Layer => {
            let c = sum / n;
            let c_lo = xs.iter().map(|v| v - c).sum::<f64>() / n;
            (c, c_lo, xs.iter().map(|v| ((v - c) - c_lo).powi(2)).sum::<f64>() / n)
        }
    };
    let r = 1.0 / (ms + eps).sqrt();
    (0..x.len()).map(|i| ((xs[i] - c) - c_lo) * r * w.map_or(1.0, |w| w[i]) + b.map_or(0.0, |b| b[i])).collect()
}

fn tolerance<T: Element>() -> f64 {
    if T::MANTISSA_DIGITS == 24 { 1e-5 } else { 1e-12 }
}

/// The tests' rule: rel times the size of the result, one output unit
/// (|w|) as the floor for results near 0.
fn allowed(rel: f64, want: f64, w: f64) -> f64 {
    rel * (want.abs() + w.abs())
}

fn f64s<T: Element>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

struct Case<'a, T> {
    kind: Norm,
    eps: f64,
    w: Option<&'a [T]>,
    b: Option<&'a [T]>,
}

impl<T: Element> Case<'_, T> {
    fn affine(&self) -> Affine<T> {
        Affine::from_slices(self.w, self.b)
    }

    fn w_at(&self, i: usize) -> f64 {
        self.w.map_or(1.0, |w| w[i].to_f64())
    }

    /// `y` (the norm of `x` on `isa`) against f64 and the scalar result.
    fn check(&self, isa: Isa, what: &str, x: &[T], y: &[T], scalar: &[T]) {
        let (wf, bf) = (self.w.map(f64s), self.b.map(f64s));
        let want = reference(self.kind, &f64s(x), self.eps, wf.as_deref(), bf.as_deref());
        let tol = tolerance::<T>();
        for i in 0..x.len() {
            let (got, s, e, wi) = (y[i].to_f64(), scalar[i].to_f64(), want[i], self.w_at(i));
            assert!(close(got, e, allowed(tol, e, wi)), "{isa} {what} {:?} [{i}] = {got:e}, f64 {e:e}, n = {}", self.kind, x.len());
            assert!(close(got, s, allowed(2.0 * tol, s, wi)), "{isa} {what} {:?} [{i}] = {got:e}, scalar {s:e}", self.kind);
        }
    }
}

fn run_norm<T: Element>(isas: &[Isa], case: &Case<T>, x: &[T]) {
    let n = x.len();
    let mut scalar = vec![T::ZERO; n];
    norm::norm(Isa::Scalar, case.kind, x, &mut scalar, case.eps, case.w, case.b);
    for &isa in isas {
        let mut y = vec![T::NAN; n];
        norm::norm(isa, case.kind, x, &mut y, case.eps, case.w, case.b);
        case.check(isa, "row", x, &y, &scalar);
        let mut z = x.to_vec();
        norm::norm_inplace(isa, case.kind, &mut z, case.eps, case.w, case.b);
        case.check(isa, "in place", x, &z, &scalar);
        // Three copies of the row as a batch with a padded stride.
        let stride = n + 3;
        let mut xs = vec![T::ZERO; 3 * stride];
        for r in 0..3 {
            xs[r * stride..r * stride + n].copy_from_slice(x);
        }
        let mut ys = vec![T::NAN; 3 * n];
        let batch = RowBatch { x: xs.as_ptr(), x_stride: stride as isize, y: ys.as_mut_ptr(), y_stride: n as isize, rows: 3, n };
        unsafe { norm::norm_rows_raw(isa, case.kind, batch, case.eps, case.affine()) };
        for r in 0..3 {
            case.check(isa, "batch", x, &ys[r * n..(r + 1) * n], &scalar);
        }
    }
}

fn run_add<T: Element>(isas: &[Isa], case: &Case<T>, x: &[T]) {
    let n = x.len();
    let residual: Vec<T> = x.iter().rev().cloned().collect();
    let mut sum = vec![T::ZERO; n];
    let mut scalar = vec![T::ZERO; n];
    norm::add_norm(Isa::Scalar, case.kind, x, &residual, &mut sum, &mut scalar, case.eps, case.w, case.b);
    for &isa in isas {
        let (mut s, mut y) = (vec![T::NAN; n], vec![T::NAN; n]);
        norm::add_norm(isa, case.kind, x, &residual, &mut s, &mut y, case.eps, case.w, case.b);
        let same = s.iter().zip(&sum).all(|(a, b)| a.to_f64().to_bits() == b.to_f64().to_bits() || (a.is_nan() && b.is_nan()));
        assert!(same, "{isa} add_norm: the sum differs from scalar's");
        case.check(isa, "add_norm", &sum, &y, &scalar);
        let (mut xi, mut ri) = (x.to_vec(), residual.clone());
        norm::add_norm_inplace(isa, case.kind, &mut xi, &mut ri, case.eps, case.w, case.b);
        case.check(isa, "add_norm in place", &sum, &xi, &scalar);
    }
}

fn run<T: Element>(r: &mut Reader, header: u8) {
    let (kind, fused) = match (header >> 1) & 3 {
        0 => (Norm::Rms, false),
        1 => (Norm::Layer, false),
        2 => (Norm::Crms, false),
        _ => (Norm::Layer, true),
    };
    let isas = isas((header >> 5) & 3);
    let offset = r.byte() as usize % 16;
    let n = r.u16() as usize % (MAX_LEN + 1);
    let eps = [1e-5, 1e-12, 1e-6, 1.0][r.byte() as usize % 4];
    let spec = ValueSpec::read(r, true, f64::INFINITY);
    let vals = values::<T>(r, spec);
    let buf = row_buffer(&vals, offset, n);
    let x = &buf[offset..];
    let w: Vec<T> = (0..n).map(|i| T::from_f64(((i * 37 % 101) as f64 / 25.0) - 2.0)).collect();
    let b: Vec<T> = (0..n).map(|i| T::from_f64(((i * 53 % 97) as f64 / 48.0) - 1.0)).collect();
    let case = Case { kind, eps, w: (header & 8 != 0).then_some(&w[..]), b: (header & 16 != 0).then_some(&b[..]) };
    if fused {
        run_add(&isas, &case, x);
    } else {
        run_norm(&isas, &case, x);
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
