//! The natural logarithm of a row's sum, inline in the kernels.
//!
//! Log-softmax takes one logarithm per row, between the pass that sums the
//! row's exponentials and the pass that writes it. The C library's `log` is
//! a call, around which every vector register is caller-saved, and one the
//! compiler cannot spread over the lanes of a register. This one is inline,
//! in the caller's instruction set (multiply-adds where the caller has FMA),
//! and at most about an ulp from the C library's (1.01 ulps measured, see
//! the tests); log-softmax takes it at AVX-512 (`vector::row_ln`), where
//! its groups of short rows compute eight at once ([`ln8_avx512`], the
//! same operations in the lanes of one register).
//!
//! For a positive normal s = 2^k z, z in [OFF, 2 OFF) with OFF just below
//! 0.6875, the top seven bits of z's mantissa above OFF pick an interval of
//! z, and with it invc (about 1/c for the interval's midpoint c) and
//! logc = -ln(invc), in two float64 parts, from a table
//! (`tools/gen_ln_table.py`). Then
//!
//!   ln(s) = k ln 2 + logc + ln(1 + r),   r = z invc - 1, |r| <= 2^-8,
//!
//! with r from one multiply-add (exact but for its final rounding) and
//! ln(1 + r) from its Taylor series to r^7, whose remainder is below
//! |r|^8 / 8 <= 2^-67. The interval holding 1 takes invc = 1 and logc = 0,
//! so near s = 1 the result is ln(1 + r) with r = s - 1 exact: relative
//! error stays small where ln(s) is near 0. The sum k ln 2 + logc + r is
//! carried with its rounding errors (two Fast2Sum steps, valid because
//! |k ln 2| >= |logc| >= |r| wherever the smaller one is not zero).
//! Zero, subnormals, infinities, NaN and negative input go to the C
//! library's `ln`.

use super::ln_table::TABLE;

/// Bits of the bottom of z's range, half an interval below 0.6875, so that
/// 1 is inside an interval rather than at its edge.
const OFF: u64 = 0x3FE6_0000_0000_0000 - (1 << 44);
/// log2 of the table's length.
const TABLE_BITS: u32 = 7;
/// ln 2 in two parts; the high one has 21 trailing zero bits, so k * LN2_HI
/// is exact for every exponent k of a float64.
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;

/// ln(s), within about an ulp of the C library's (see the module comment).
#[inline(always)]
pub(crate) fn ln(s: f64) -> f64 {
    // NaN is in no range, so it takes the library's path.
    if !(f64::MIN_POSITIVE..f64::INFINITY).contains(&s) {
        return library_ln(s);
    }
    let bits = s.to_bits();
    let above = bits.wrapping_sub(OFF);
    let i = (above >> (52 - TABLE_BITS)) as usize % TABLE.len();
    // s's exponent relative to z's range; z keeps the rest of the bits.
    let k = (above as i64) >> 52;
    let z = f64::from_bits(bits.wrapping_sub((k as u64) << 52));
    let (invc, logc, logc_lo) = (f64::from_bits(TABLE[i].0), f64::from_bits(TABLE[i].1), f64::from_bits(TABLE[i].2));
    let r = z.mul_add(invc, -1.0);
    let kd = k as f64;
    // w = k ln2_hi + logc and hi = w + r, each with its rounding error
    // (Fast2Sum: the first operand is the larger in magnitude or zero).
    let k_ln2 = kd * LN2_HI;
    let w = k_ln2 + logc;
    let w_err = (k_ln2 - w) + logc;
    let hi = w + r;
    let hi_err = (w - hi) + r;
    // ln(1 + r) - r = r^2 (-1/2 + r/3 - r^2/4 + r^3/5 - r^4/6 + r^5/7), the
    // series in Estrin's form: pairs first, so the chain is short.
    let r2 = r * r;
    let p01 = r.mul_add(1.0 / 3.0, -0.5);
    let p23 = r.mul_add(1.0 / 5.0, -0.25);
    let p45 = r.mul_add(1.0 / 7.0, -1.0 / 6.0);
    let tail = r2 * r2.mul_add(r2.mul_add(p45, p23), p01);
    hi + (hi_err + (w_err + logc_lo) + kd.mul_add(LN2_LO, tail))
}

/// [`ln`] of each of eight values in the lanes of one AVX-512 register: the
/// same IEEE operations in each lane (the table's entries by gathers, the
/// integer steps in 64-bit lanes), so the same bits as [`ln`] lane by lane.
/// Lanes out of [`ln`]'s range are redone by the C library afterwards.
/// Log-softmax's groups of rows take their eight logarithms here.
///
/// # Safety
/// The CPU must have AVX-512 F and DQ (`vcvtqq2pd`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn ln8_avx512(s: &[f64; 8]) -> [f64; 8] {
    use std::arch::x86_64::*;
    use std::mem::{offset_of, size_of};
    type Entry = (u64, u64, u64);
    // SAFETY: the caller's contract gives the features; the loads and
    // stores touch the eight elements of `s` and `out`, and each gather
    // reads one field of TABLE[i] with i < 128 (masked to seven bits, as
    // `%` does in `ln`).
    unsafe {
        let x = _mm512_loadu_pd(s.as_ptr());
        let in_range = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(x, _mm512_set1_pd(f64::MIN_POSITIVE))
            & _mm512_cmp_pd_mask::<_CMP_LT_OQ>(x, _mm512_set1_pd(f64::INFINITY));
        let bits = _mm512_castpd_si512(x);
        let above = _mm512_sub_epi64(bits, _mm512_set1_epi64(OFF as i64));
        let i = _mm512_and_si512(_mm512_srli_epi64::<{ 52 - TABLE_BITS }>(above), _mm512_set1_epi64(TABLE.len() as i64 - 1));
        let k = _mm512_srai_epi64::<52>(above);
        let z = _mm512_castsi512_pd(_mm512_sub_epi64(bits, _mm512_slli_epi64::<52>(k)));
        // Byte offsets of the entries: i * 24, as two shifts.
        const _: () = assert!(size_of::<Entry>() == 24);
        let entry = _mm512_add_epi64(_mm512_slli_epi64::<4>(i), _mm512_slli_epi64::<3>(i));
        let table = TABLE.as_ptr().cast::<u8>();
        let invc = _mm512_i64gather_pd::<1>(entry, table.add(offset_of!(Entry, 0)).cast());
        let logc = _mm512_i64gather_pd::<1>(entry, table.add(offset_of!(Entry, 1)).cast());
        let logc_lo = _mm512_i64gather_pd::<1>(entry, table.add(offset_of!(Entry, 2)).cast());
        let r = _mm512_fmadd_pd(z, invc, _mm512_set1_pd(-1.0));
        let kd = _mm512_cvtepi64_pd(k);
        let k_ln2 = _mm512_mul_pd(kd, _mm512_set1_pd(LN2_HI));
        let w = _mm512_add_pd(k_ln2, logc);
        let w_err = _mm512_add_pd(_mm512_sub_pd(k_ln2, w), logc);
        let hi = _mm512_add_pd(w, r);
        let hi_err = _mm512_add_pd(_mm512_sub_pd(w, hi), r);
        let r2 = _mm512_mul_pd(r, r);
        let p01 = _mm512_fmadd_pd(r, _mm512_set1_pd(1.0 / 3.0), _mm512_set1_pd(-0.5));
        let p23 = _mm512_fmadd_pd(r, _mm512_set1_pd(1.0 / 5.0), _mm512_set1_pd(-0.25));
        let p45 = _mm512_fmadd_pd(r, _mm512_set1_pd(1.0 / 7.0), _mm512_set1_pd(-1.0 / 6.0));
        let tail = _mm512_mul_pd(r2, _mm512_fmadd_pd(r2, _mm512_fmadd_pd(r2, p45, p23), p01));
        let low = _mm512_add_pd(_mm512_add_pd(hi_err, _mm512_add_pd(w_err, logc_lo)), _mm512_fmadd_pd(kd, _mm512_set1_pd(LN2_LO), tail));
        let mut out = [0.0; 8];
        _mm512_storeu_pd(out.as_mut_ptr(), _mm512_add_pd(hi, low));
        if in_range != 0xFF {
            for lane in 0..8 {
                if in_range & (1 << lane) == 0 {
                    out[lane] = library_ln(s[lane]);
                }
            }
        }
        out
    }
}

/// The C library's ln, out of line: inline, `s.ln()` is a pure intrinsic
/// that the compiler may compute for every input, not only these (it did
/// in log-softmax's groups of rows, whose eight logarithms it vectorized
/// and then called `log` eight times as well).
#[cold]
#[inline(never)]
fn library_ln(s: f64) -> f64 {
    s.ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{self, Kernel};
    use crate::simd::{Simd, Vector};

    /// |got - want| / |want| in units of 2^-52 (one such unit is one to two
    /// ulps of `want`).
    fn ulps(got: f64, want: f64) -> f64 {
        (got - want).abs() / (f64::EPSILON * want.abs().max(f64::MIN_POSITIVE))
    }

    #[test]
    fn the_table_is_what_its_generator_describes() {
        for (i, &(invc, logc, logc_lo)) in TABLE.iter().enumerate() {
            let (invc, logc, logc_lo) = (f64::from_bits(invc), f64::from_bits(logc), f64::from_bits(logc_lo));
            let lo = f64::from_bits(OFF + ((i as u64) << 45));
            let hi = f64::from_bits(OFF + ((i as u64 + 1) << 45));
            let c = if lo <= 1.0 && 1.0 < hi { 1.0 } else { (lo + hi) / 2.0 };
            assert!(ulps(invc, 1.0 / c) <= 0.5, "entry {i}: invc {invc} for c {c}");
            assert!(ulps(logc, -invc.ln()) <= 1.0, "entry {i}: logc {logc} for invc {invc}");
            assert!(logc_lo.abs() <= f64::EPSILON * logc.abs(), "entry {i}: logc_lo {logc_lo}");
            // |r| <= 2^-8 over the interval, the series' bound.
            for z in [lo, f64::from_bits(hi.to_bits() - 1)] {
                assert!(z.mul_add(invc, -1.0).abs() <= 1.0 / 256.0, "entry {i}: z {z}");
            }
        }
    }

    /// Every interval's edges and middle, values near 1, and a fixed
    /// pseudo-random sweep over the whole exponent range.
    fn sweep() -> Vec<f64> {
        let mut inputs = vec![1.0, f64::MIN_POSITIVE, f64::MAX, 2.0, 0.5, std::f64::consts::E];
        for i in 0..=(TABLE.len() as u64) {
            let edge = OFF + (i << 45);
            inputs.extend([f64::from_bits(edge - 1), f64::from_bits(edge), f64::from_bits(edge + (1 << 44))]);
        }
        for k in 1..=60 {
            let d = (-(k as f64)).exp2();
            inputs.extend([1.0 + d, 1.0 - d, 1.0 + 3.0 * d]);
        }
        // A fixed pseudo-random sweep: mantissas at random, exponents from
        // -1022 to 1023.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..if cfg!(miri) { 200 } else { 2_000_000 } {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let exponent = 1 + state % 2046;
            inputs.push(f64::from_bits((exponent << 52) | (state >> 12)));
        }
        inputs
    }

    /// Against the C library's `ln` (not correctly rounded either) on the
    /// sweep, which includes the sums a row of up to 2^40 terms gives.
    #[test]
    fn within_about_one_ulp_of_the_library() {
        let inputs = sweep();
        let mut worst = (0.0, 0.0);
        for &s in &inputs {
            let (got, want) = (ln(s), s.ln());
            if s == 1.0 {
                assert_eq!(got.to_bits(), 0, "ln(1)");
                continue;
            }
            let e = ulps(got, want);
            if e > worst.0 {
                worst = (e, s);
            }
        }
        // Two results within about half an ulp each of the exact one: at
        // most 0.956 measured (at s = 4.0e235, where ln(s) = 542.5 and that
        // is 1.01 ulps).
        assert!(worst.0 <= 1.0, "{} ulps at {}", worst.0, worst.1);
    }

    /// [`Vector::ln8`] of each level's two register types over `inputs`,
    /// eight at a time, and whether the level takes the inline logarithm.
    struct Ln8(Vec<f64>);

    impl Kernel for Ln8 {
        type Output = Option<(bool, [Vec<f64>; 2])>;

        fn scalar(self) -> Self::Output {
            None
        }

        #[inline(always)]
        fn vector<S: Simd>(self, _: S) -> Self::Output {
            let (mut f32_regs, mut f64_regs) = (Vec::new(), Vec::new());
            for chunk in self.0.chunks_exact(8) {
                let eight = chunk.try_into().unwrap();
                // SAFETY: the token proves the CPU has S's features.
                unsafe {
                    f32_regs.extend(S::F32::ln8(eight));
                    f64_regs.extend(S::F64::ln8(eight));
                }
            }
            assert_eq!(S::F32::INLINE_LN, S::F64::INLINE_LN);
            Some((S::F64::INLINE_LN, [f32_regs, f64_regs]))
        }
    }

    /// Each level's eight logarithms at once are the ones it takes one at a
    /// time (`vector::row_ln`), bit for bit: [`ln`]'s where it is inline
    /// (AVX-512, eight in one register), the C library's elsewhere. On the
    /// sweep, and on the special values in every lane among in-range ones.
    #[test]
    fn eight_at_once_are_the_levels_logarithm_bit_for_bit() {
        let special = [0.0, -0.0, -1.0, f64::INFINITY, f64::NEG_INFINITY, 1e-310, f64::from_bits(1), f64::NAN, f64::MIN_POSITIVE, f64::MAX];
        let mut inputs = sweep();
        for (lane, &x) in special.iter().enumerate() {
            let mut eight = [1.5, 0.25, 3.0e200, 1.0, 7.0e-300, 2.0, 0.9, 1.1];
            eight[lane % 8] = x;
            inputs.extend(eight);
        }
        inputs.resize(inputs.len().next_multiple_of(8), 1.0);
        let mut inline_levels = 0;
        for isa in dispatch::available() {
            let Some((inline, per_type)) = dispatch::run(isa, Ln8(inputs.clone())) else { continue };
            inline_levels += usize::from(inline);
            for got in per_type {
                for (&s, &got) in inputs.iter().zip(&got) {
                    let want = if inline { ln(s) } else { s.ln() };
                    assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{isa}: ln8 gives {got:e}, want {want:e} at {s:e}");
                }
            }
        }
        assert_eq!(inline_levels, usize::from(dispatch::available().contains(&dispatch::Isa::Avx512)));
    }

    #[test]
    fn special_values_follow_the_library() {
        for s in [0.0, -0.0, -1.0, f64::INFINITY, f64::NEG_INFINITY, 1e-310, f64::from_bits(1)] {
            assert_eq!(ln(s).to_bits(), s.ln().to_bits(), "ln({s})");
        }
        assert!(ln(f64::NAN).is_nan());
    }
}
