//! The float64 references of every kernel, written from the definitions,
//! shared by the kernel tests (tests/*_kernels.rs, as `common::reference`)
//! and the fuzz targets (tests/fuzz/src/lib.rs includes this file by path:
//! `normkit_fuzz::reference`). One copy: a fix found by the fuzzer (the
//! subnormal scaling of [`norm`], the exact mean of constant rows in
//! [`l1_norm_float`]) holds for the tests too.
//!
//! Everything here works on `f64` (the element types are converted by the
//! caller), so it depends on no kernel code but the `Norm` enum.

// Each test binary uses only the references of its own kernel.
#![allow(dead_code)]

use normkit::norm::Norm;

/// Softmax with the scipy special-value rules: a NaN anywhere, or a
/// non-finite maximum (+inf, or every entry -inf), gives a NaN row.
pub fn softmax(x: &[f64]) -> Vec<f64> {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, |a, b| if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) });
    if !m.is_finite() {
        return vec![f64::NAN; x.len()];
    }
    let e: Vec<f64> = x.iter().map(|&v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// Log-softmax with the scipy rules (a non-finite maximum shifts by 0).
pub fn log_softmax(x: &[f64]) -> Vec<f64> {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let m = if m.is_finite() { m } else { 0.0 };
    let s: f64 = x.iter().map(|&v| (v - m).exp()).sum();
    x.iter().map(|&v| (v - m) - s.ln()).collect()
}

/// The relative error of summing `n` terms one after another in f64 (the
/// scalar kernels and these references do; Higham, "Accuracy and
/// Stability of Numerical Algorithms", eq. 4.4: gamma_(n-1) ~ (n-1) u).
/// The kernel tests' f64 tolerances cover rows of at most ~300 elements;
/// constant rows of thousands reach it (found by the fuzzer: 1.01e-13 at
/// n = 4080).
pub fn f64_sum_error(n: usize) -> f64 {
    n as f64 * f64::EPSILON / 2.0
}

/// RMSNorm, LayerNorm or CRMSNorm: y = (x - c) / sqrt(q / d + eps) * w + b,
/// with c the mean (LayerNorm) or 0, q the sum of squares of x - c (plus
/// the square of the sum for CRMSNorm) and d = n (n + 1 for CRMSNorm). A
/// row with a non-finite entry is all NaN.
///
/// The centre is an unevaluated sum c + c_lo: for |mean| >> std an f64
/// mean alone is off by up to half its ulp, beyond the f64 tolerance. The
/// row is scaled by a power of two so squares of 1e300 neither overflow nor
/// those of 1e-300 underflow (exact; eps scaled to match).
pub fn norm(kind: Norm, x: &[f64], eps: f64, w: Option<&[f64]>, b: Option<&[f64]>) -> Vec<f64> {
    let n = x.len() as f64;
    if x.iter().any(|v| !v.is_finite()) {
        return vec![f64::NAN; x.len()];
    }
    let top = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let k = if top > 0.0 { -(top.log2().floor()) } else { 0.0 };
    // 2^k in two factors: 2^1074 (subnormal rows) is beyond f64 (found by
    // the fuzzer: a row of 5e-324 gave NaN here).
    let (s1, s2) = ((k / 2.0).floor().exp2(), (k - (k / 2.0).floor()).exp2());
    let xs: Vec<f64> = x.iter().map(|v| v * s1 * s2).collect();
    let eps_s = eps * s1 * s1 * s2 * s2;
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
    let centred = |i: usize| (xs[i] - c) - c_lo;
    // A scaled eps beyond f64 (eps > 0 on a row of subnormals) leaves the
    // mean square negligible: y = x / sqrt(eps), undone scaling first; so
    // does one that underflowed to 0 on a row with ms = 0 (a constant row
    // of huge values), where 1 / sqrt(0) would make y = 0 * inf = NaN.
    let r = 1.0 / (ms + eps_s).sqrt();
    let direct = eps_s.is_finite() && (ms > 0.0 || eps_s > 0.0 || eps == 0.0);
    let y = |i: usize| if direct { centred(i) * r } else { centred(i) / s1 / s2 / eps.sqrt() };
    (0..x.len()).map(|i| y(i) * w.map_or(1.0, |w| w[i]) + b.map_or(0.0, |b| b[i])).collect()
}

/// The int8 L1 norm's exact formula: (x - mean) / s * gain * w + b in f64,
/// clamped to [-128, 127], with s = mean |x - mean| (n x - S and
/// sum |n x - S| are exact integers, so this rounds only once or twice). A
/// constant row gives the bias.
pub fn l1_norm_i8(x: &[i8], gain: f32, w: Option<&[i8]>, b: Option<&[i8]>) -> Vec<f64> {
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

/// The float L1 norm in f64, with what a caller needs to bound the
/// kernels' error.
pub struct L1Float {
    /// (x - mean) / (s + eps) * w + b, s = mean |x - mean|.
    pub y: Vec<f64>,
    /// max|x| / (s + eps): how much a rounding of the input's scale (of
    /// the mean) is amplified in the result; 0 for a constant row.
    pub amplification: f64,
    /// 1 / (s + eps) (beyond the element type's range, the kernels give
    /// inf / NaN: a documented limit).
    pub inv_scale: f64,
}

/// The float L1 norm. A constant row has its value as the exact mean and
/// s = 0 (the kernel contract: b, or NaN when eps = 0).
pub fn l1_norm_float(x: &[f64], eps: f64, w: Option<&[f64]>, b: Option<&[f64]>) -> L1Float {
    let n = x.len() as f64;
    let sum = x.iter().sum::<f64>();
    let constant = sum.is_finite() && !x.is_empty() && x.iter().all(|&v| v == x[0]);
    let mean = if constant { x[0] } else { sum / n };
    let s = x.iter().map(|v| (v - mean).abs()).sum::<f64>() / n;
    let inv = 1.0 / (s + eps);
    let y = (0..x.len()).map(|i| (x[i] - mean) * inv * w.map_or(1.0, |w| w[i]) + b.map_or(0.0, |b| b[i])).collect();
    let amplification = if constant { 0.0 } else { x.iter().fold(0.0f64, |m, v| m.max(v.abs())) * inv };
    L1Float { y, amplification, inv_scale: inv }
}

/// True when `a` and `b` are both NaN or within `bound` of each other
/// (equal infinities included).
pub fn close(a: f64, b: f64, bound: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    a == b || (a - b).abs() <= bound
}

/// ln(sum(exp(x))) with the special values of `scipy.special.logsumexp`.
pub fn logsumexp(x: &[f64]) -> f64 {
    if x.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + x.iter().map(|&v| (v - m).exp()).sum::<f64>().ln()
}

/// The row statistics of [`norm`]: (mean, rstd) with mean the centre (the
/// row's mean for LayerNorm, 0 otherwise) and rstd = 1 / sqrt(q / d + eps)
/// on the unscaled row; (NaN, NaN) for a row with a non-finite entry and
/// for an empty row. Rows are scaled by 2^k as in [`norm`] (exact), the
/// mean refined once.
pub fn norm_stats(kind: Norm, x: &[f64], eps: f64) -> (f64, f64) {
    if x.is_empty() || x.iter().any(|v| !v.is_finite()) {
        return (f64::NAN, f64::NAN);
    }
    let n = x.len() as f64;
    let top = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let k = if top > 0.0 { -(top.log2().floor()) } else { 0.0 };
    let (s1, s2) = ((k / 2.0).floor().exp2(), (k - (k / 2.0).floor()).exp2());
    let xs: Vec<f64> = x.iter().map(|v| v * s1 * s2).collect();
    let sum: f64 = xs.iter().sum();
    let c = sum / n;
    let c = c + xs.iter().map(|v| v - c).sum::<f64>() / n;
    let (mean, q) = match kind {
        Norm::Rms => (0.0, xs.iter().map(|v| v * v).sum::<f64>()),
        Norm::Crms => (0.0, xs.iter().map(|v| v * v).sum::<f64>() + sum * sum),
        Norm::Layer => (c, xs.iter().map(|v| (v - c).powi(2)).sum::<f64>()),
    };
    let ms = q / if kind == Norm::Crms { n + 1.0 } else { n };
    let eps_s = eps * s1 * s1 * s2 * s2;
    // 1 / sqrt(ms / s^2 + eps) = s / sqrt(ms + eps s^2), or 1 / sqrt(eps)
    // when eps s^2 is beyond f64 (ms is then negligible) or ms = 0 (eps s^2
    // may underflow for a constant row of huge values).
    let rstd = if eps_s.is_finite() && ms > 0.0 { 1.0 / (ms + eps_s).sqrt() * s1 * s2 } else { 1.0 / eps.sqrt() };
    (mean / s1 / s2, rstd)
}
