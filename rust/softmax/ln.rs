//! The natural logarithm of a row's sum, inline in the kernels.
//!
//! Log-softmax takes one logarithm per row, between the pass that sums the
//! row's exponentials and the pass that writes it. The C library's `log` is
//! a call, around which every vector register is caller-saved, and one the
//! compiler cannot spread over the lanes of a register. This one is inline,
//! in the caller's instruction set (multiply-adds where the caller has FMA),
//! and at most about an ulp from the C library's (1.01 ulps measured, see
//! the tests); log-softmax takes it at AVX-512 (`vector::row_ln`), where
//! its groups of short rows compute eight at once.
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

    /// Against the C library's `ln` (not correctly rounded either) on every
    /// interval's edges and middle, near 1, and over the whole exponent
    /// range, including the sums a row of up to 2^40 terms gives.
    #[test]
    fn within_about_one_ulp_of_the_library() {
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

    #[test]
    fn special_values_follow_the_library() {
        for s in [0.0, -0.0, -1.0, f64::INFINITY, f64::NEG_INFINITY, 1e-310, f64::from_bits(1)] {
            assert_eq!(ln(s).to_bits(), s.ln().to_bits(), "ln({s})");
        }
        assert!(ln(f64::NAN).is_nan());
    }
}
