//! RMSNorm, LayerNorm, CRMSNorm and the fused residual-add form on every
//! available ISA against the scalar reference and a float64 computation,
//! with the tolerances of tests/norm_kernels.rs.
//!
//! byte 0: bit 0 dtype (f32 / f64), bits 1-2 kind (rms, layer, crms, and
//! 3: layer fused with a residual add), bit 3 weight, bit 4 bias, bits 5-6
//! ISA choice (0: all available); byte 1: offset 0..16; bytes 2-3: length
//! 0..=4096; byte 4: eps; bytes 5-6: the row spec, then values (see
//! normkit_fuzz; past the input's end, bytes come from a PRNG seeded by it).

#![no_main]

use libfuzzer_sys::fuzz_target;
use normkit::dispatch::Isa;
use normkit::norm::{self, Affine, Norm, RowBatch};
use normkit::simd::Float;
use normkit_fuzz::reference::{self, close};
use normkit_fuzz::{isas, row_buffer, Reader, RowSpec};

const MAX_LEN: usize = 4096;

fn tolerance<T: Float>() -> f64 {
    if T::MANTISSA_DIGITS == 24 { 1e-5 } else { 1e-12 }
}

/// The tests' rule: rel times the size of the result, one output unit
/// (|w|) as the floor for results near 0.
fn allowed(rel: f64, want: f64, w: f64) -> f64 {
    rel * (want.abs() + w.abs())
}

fn f64s<T: Float>(v: &[T]) -> Vec<f64> {
    v.iter().map(|x| x.to_f64()).collect()
}

struct Case<'a, T> {
    kind: Norm,
    eps: f64,
    w: Option<&'a [T]>,
    b: Option<&'a [T]>,
}

impl<T: Float> Case<'_, T> {
    fn affine(&self) -> Affine<T> {
        Affine::from_slices(self.w, self.b)
    }

    fn w_at(&self, i: usize) -> f64 {
        self.w.map_or(1.0, |w| w[i].to_f64())
    }

    /// `y` (the norm of `x` on `isa`) against f64 and the scalar result.
    fn check(&self, isa: Isa, what: &str, x: &[T], y: &[T], scalar: &[T]) {
        let (wf, bf) = (self.w.map(f64s), self.b.map(f64s));
        let want = reference::norm(self.kind, &f64s(x), self.eps, wf.as_deref(), bf.as_deref());
        let tol = tolerance::<T>();
        for i in 0..x.len() {
            let (got, s, e, wi) = (y[i].to_f64(), scalar[i].to_f64(), want[i], self.w_at(i));
            assert!(close(got, e, allowed(tol, e, wi)), "{isa} {what} {:?} [{i}] = {got:e}, f64 {e:e}, n = {}", self.kind, x.len());
            assert!(close(got, s, allowed(2.0 * tol, s, wi)), "{isa} {what} {:?} [{i}] = {got:e}, scalar {s:e}", self.kind);
        }
    }
}

fn run_norm<T: Float>(isas: &[Isa], case: &Case<T>, x: &[T]) {
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
        // SAFETY: the batch describes 3 rows of n elements at stride n + 3 in
        // `xs` (3 * stride long) and at stride n in `ys` (3 * n long),
        // distinct live buffers; the affine slices are n long.
        unsafe { norm::norm_rows_raw(isa, case.kind, batch, case.eps, case.affine(), norm::RowStats::NONE) };
        for r in 0..3 {
            case.check(isa, "batch", x, &ys[r * n..(r + 1) * n], &scalar);
        }
    }
}

fn run_add<T: Float>(isas: &[Isa], case: &Case<T>, x: &[T]) {
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

fn run<T: Float>(r: &mut Reader, header: u8) {
    let (kind, fused) = match (header >> 1) & 3 {
        0 => (Norm::Rms, false),
        1 => (Norm::Layer, false),
        2 => (Norm::Crms, false),
        _ => (Norm::Layer, true),
    };
    let isas = isas((header >> 5) & 3);
    let offset = r.byte() as usize % 16;
    let n = r.length(MAX_LEN);
    let eps = [1e-5, 1e-12, 1e-6, 1.0][r.byte() as usize % 4];
    let spec = RowSpec::read(r, true, f64::INFINITY);
    let buf = row_buffer::<T>(r, spec, offset, n);
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
