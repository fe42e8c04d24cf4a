//! The per-row integer arithmetic of the int8 contract (see `mod.rs`): the
//! exact mean and mean absolute deviation, and the fixed-point multiplier
//! that every instruction set then applies element by element.
//!
//! All of it runs once per row in scalar code, so every ISA shares it and
//! only the three element passes are vectorized. [`Mean::new`] and
//! [`Requant::new`] define it in plain (u128) integer arithmetic; the
//! kernels go through [`BatchConstants`], which gives the same values with
//! less work on rows of up to 2^16 elements.

/// The exact mean of a row: `sum / n = q + r / n` with `0 <= r < n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mean {
    pub q: i32,
    pub r: u64,
}

impl Mean {
    /// From the row sum `s` of `n >= 1` int8 values (so `q` is an int8).
    pub fn new(s: i64, n: u64) -> Mean {
        let n = n as i64;
        Mean { q: s.div_euclid(n) as i32, r: s.rem_euclid(n) as u64 }
    }
}

/// A = sum |n x_i - S| = n * sum |x_i - mean| from two sums of absolute
/// differences to integers: `sad_q = sum |x_i - q|` and
/// `sad_q1 = sum |x_i - (q + 1)|` (any value when r = 0).
///
/// No integer x lies strictly between q and q + 1, so sum |x_i - m| is
/// linear in m on [q, q + 1]: at m = q + r/n it is
/// ((n - r) sad_q + r sad_q1) / n.
pub fn abs_dev_sum(n: u64, mean: Mean, sad_q: u64, sad_q1: u64) -> u128 {
    let r = mean.r as u128;
    (n as u128 - r) * sad_q as u128 + r * sad_q1 as u128
}

/// Fraction bits of R: y = round(R * w / 2^U_BITS) + b.
pub const U_BITS: i32 = 12;

/// |R| beyond this saturates every weighted output (|R w| / 2^12 rounds to
/// at least 256 for |w| >= 1), so the vector kernels clamp R to it to keep
/// R * w inside i32.
pub const R_CLAMP: i32 = (1 << 20) - 1;

/// Smallest shift of the contract: K * 2^sh in [2^21, 2^22) and K <= 512
/// give sh >= 12; t = sh - 12.
const T_BASE: i32 = U_BITS;
/// K * 2^sh is normalized into [2^M_BITS, 2^(M_BITS + 1)).
const M_BITS: i32 = 21;

/// The per-row constants of the element pass (contract steps 5-7 in
/// `mod.rs`): M, C, the shift t, and the mean's integer part q.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requant {
    pub m: i32,
    pub c: i32,
    pub t: u32,
    pub q: i32,
}

impl Requant {
    /// Constants for a row of `n` values with exact mean `mean`, abs-dev
    /// sum `a` (= sum |n x - S|) and output gain `gain` (> 0, finite).
    ///
    /// K = gain * n^2 / A and c = gain * n * r / A, so that
    /// (x - q) * K - c = (x - mean) * gain / s with s = A / n^2.
    pub fn new(n: u64, mean: Mean, a: u128, gain: f32) -> Requant {
        let zero = Requant { m: 0, c: 0, t: 0, q: mean.q };
        if a == 0 {
            return zero;
        }
        debug_assert!(gain > 0.0 && gain.is_finite(), "gain must be positive and finite");
        let (g, e) = split_f32(gain);
        let (n, r) = (n as u128, mean.r as u128);
        // K = k_num * 2^e / a, c = c_num * 2^e / a.
        let k_num = g * n * n;
        let c_num = g * n * r;
        let log2_k = floor_log2_ratio(k_num, a) + e;
        let (m, c, sh) = if log2_k >= 9 && !(log2_k == 9 && is_exact_pow2_ratio(k_num, e, a, 9)) {
            // K > 512: only x = q and x = q + 1 can escape saturation;
            // see `saturated_constants`.
            saturated_constants(n, r, k_num, c_num, e, a)
        } else {
            let sh = M_BITS - log2_k;
            if sh - T_BASE > 31 {
                // |P| < 2^30 <= 2^(t - 1): every R is 0.
                return zero;
            }
            (round_scaled(k_num, e + sh, a), round_scaled(c_num, e + sh, a), sh)
        };
        Requant { m: m as i32, c: c as i32, t: (sh - T_BASE) as u32, q: mean.q }
    }

    /// The contract for one element, in plain i64 arithmetic (the scalar
    /// reference); `w` is 1 without a weight, `b` 0 without a bias.
    #[inline]
    pub fn apply(&self, x: i8, w: i8, b: i8) -> i8 {
        let p = (x as i64 - self.q as i64) * self.m as i64 - self.c as i64;
        let r = if self.t == 0 { p } else { (p + (1 << (self.t - 1))) >> self.t };
        let v = (r * w as i64 + (1 << (U_BITS - 1))) >> U_BITS;
        (v + b as i64).clamp(-128, 127) as i8
    }

    /// Lane constants for R = round(P / 2^t) (the weighted path).
    pub fn r_lanes(&self) -> Lanes {
        // |P| < 2^30, so t >= 31 gives R = 0; below, P + 2^(t-1) fits.
        if self.t >= 31 {
            return Lanes::ZERO;
        }
        self.lanes(self.t, half(self.t))
    }

    /// Lane constants for round(R / 2^12), the output of an unweighted
    /// row before the bias: nested floors of integers fold into one,
    /// floor((floor((P + h) / 2^t) + 2^11) / 2^12)
    ///     = floor((P + h + 2^(t + 11)) / 2^(t + 12)).
    pub fn unweighted_lanes(&self) -> Lanes {
        // For t >= 19 the sum lies in [0, 2^(t + 12)): the result is 0.
        if self.t >= 19 {
            return Lanes::ZERO;
        }
        self.lanes(self.t + U_BITS as u32, half(self.t) + (1 << (self.t + U_BITS as u32 - 1)))
    }

    /// floor((P + add) / 2^shift) as floor((x M - (q M + C - add)) / 2^shift).
    fn lanes(&self, shift: u32, add: i64) -> Lanes {
        let sub = self.q as i64 * self.m as i64 + self.c as i64 - add;
        Lanes { mul: self.m, sub: sub as i32, shift }
    }
}

/// [`Mean::new`] and [`Requant::new`] for the rows of one batch, which
/// share n and the gain: what depends on those alone is computed once,
/// and rows of at most [`QUICK_MAX_LEN`] elements take a short path in
/// u64 and f64 arithmetic that gives the same values (checked against the
/// definitions in the tests). Longer rows, rows with K >= 512 and rows
/// whose R are all 0 (t > 31, as with every subnormal gain) take the
/// definitions.
///
/// The short path replaces three integer divisions and the u128 code
/// (about 16.5 ns a row in a loop of its own on Zen 4) with two f64
/// divisions and a few multiplies (about 4.8 ns). The constants sit on a
/// row's serial chain between pass 2 and pass 3: a first version of this
/// path (9.5 ns) took int8 rows of 1 KiB to 0.88-0.89 of their time, and
/// this one to 0.94 of that (see the performance page, round 16).
#[derive(Clone, Copy, Debug)]
pub struct BatchConstants {
    n: u64,
    gain: f32,
    /// g n^2, g n and e, with gain = g 2^e (see `split_f32`), when n is
    /// at most `QUICK_MAX_LEN`.
    quick: Option<(u64, u64, i32)>,
    /// ceil(2^40 / n), for the mean of rows of up to 2^16.
    reciprocal_n: u64,
}

/// The longest row of the short path: then |S| <= 2^23, A = sum |n x - S|
/// < 2^40 and g n^2 < 2^56, which keeps every intermediate of
/// [`BatchConstants::requant`] in u64 and its f64 quotients within one of
/// the exact ones.
pub const QUICK_MAX_LEN: u64 = 1 << 16;

impl BatchConstants {
    /// For rows of `n >= 1` elements and the output gain `gain` (> 0, finite).
    pub fn new(n: u64, gain: f32) -> BatchConstants {
        let (g, e) = split_f32(gain);
        let quick = (n <= QUICK_MAX_LEN).then(|| ((g * n as u128 * n as u128) as u64, (g * n as u128) as u64, e));
        BatchConstants { n, gain, quick, reciprocal_n: (1u64 << 40).div_ceil(n) }
    }

    /// [`Mean::new`] of the row sum `s` of an int8 row, so
    /// -128 n <= s <= 127 n.
    #[inline(always)]
    pub fn mean(&self, s: i64) -> Mean {
        if self.quick.is_none() {
            return Mean::new(s, self.n);
        }
        debug_assert!((-128 * self.n as i64..=127 * self.n as i64).contains(&s));
        // floor(u / n) for u = s + 128 n in [0, 255 n], below 2^24, by a
        // multiply (Granlund and Montgomery 1994): m = ceil(2^40 / n) =
        // (2^40 + d) / n with 0 <= d < n <= 2^16, so u m / 2^40 = u / n +
        // u d / (n 2^40) exceeds u / n by less than 1 / n, which keeps it
        // below the next integer; u m < 2^48.
        let n = self.n as i64;
        let u = (s + 128 * n) as u64;
        let q = ((u * self.reciprocal_n) >> 40) as i64 - 128;
        Mean { q: q as i32, r: (s - q * n) as u64 }
    }

    /// [`Requant::new`] for an int8 row with exact mean `mean` and the
    /// sums of absolute differences to q and q + 1 (see [`abs_dev_sum`]),
    /// each at most 255 n.
    #[inline(always)]
    pub fn requant(&self, mean: Mean, sad_q: u64, sad_q1: u64) -> Requant {
        let Some((k_num, g_n, e)) = self.quick else {
            return Requant::new(self.n, mean, abs_dev_sum(self.n, mean, sad_q, sad_q1), self.gain);
        };
        debug_assert!(sad_q <= 255 * self.n && (mean.r == 0 || sad_q1 <= 255 * self.n));
        // A < 2^40: sad <= 255 n and n <= 2^16.
        let a = (self.n - mean.r) * sad_q + mean.r * sad_q1;
        if a == 0 {
            return Requant { m: 0, c: 0, t: 0, q: mean.q };
        }
        // floor(log2(K)) as in `floor_log2_ratio` (both operands below 2^63,
        // and each shift gives the shifted one the other's bit length).
        let l = a.leading_zeros() as i32 - k_num.leading_zeros() as i32;
        let below = if l >= 0 { k_num < a << l } else { k_num << -l < a };
        let log2_k = l - below as i32 + e;
        let sh = M_BITS - log2_k;
        if log2_k >= 9 || sh - T_BASE > 31 {
            // K >= 512 (saturated rows), or every R is 0.
            return Requant::new(self.n, mean, a as u128, self.gain);
        }
        // round_half_up(num 2^shift / a) as in `round_scaled`, as
        // floor(top / bottom). M = K 2^sh is at most 2^22, so for shift >= 0
        // num 2^shift < 2^22 A < 2^62, and for shift < 0 the shifted A is
        // below g n^2 / 2^21 < 2^35: every top fits u64 and every bottom is
        // below 2^41. C's numerator g n r is at most g n^2.
        let shift = e + sh;
        let c_num = g_n * mean.r;
        let (m_top, c_top, bottom) = if shift >= 0 {
            (2 * (k_num << shift) + a, 2 * (c_num << shift) + a, 2 * a)
        } else {
            (2 * k_num + (a << -shift), 2 * c_num + (a << -shift), 2 * (a << -shift))
        };
        Requant { m: floor_div(m_top, bottom) as i32, c: floor_div(c_top, bottom) as i32, t: (sh - T_BASE) as u32, q: mean.q }
    }
}

/// floor(top / bottom) for 1 <= bottom < 2^53 and quotients below 2^23,
/// from the f64 quotient of the two (top rounded to f64, then the
/// division rounded): its relative error is about 2^-52, under 2^-29 in
/// absolute terms, so the estimate rounded to an integer is the floor or
/// one off it either way, and the remainder tells which. (Other inputs
/// give wrong values, never undefined behaviour.)
#[inline(always)]
fn floor_div(top: u64, bottom: u64) -> u64 {
    let estimate = top as f64 / bottom as f64;
    // Adding 2^52 rounds an estimate in [0, 2^52) to the nearest integer,
    // which is then the low bits of the sum (one instruction, where `as
    // u64` adds the checks of a saturating conversion).
    let two_52 = (1u64 << 52) as f64;
    let q = (estimate + two_52).to_bits().wrapping_sub(two_52.to_bits());
    // The true remainder lies in (-bottom, 2 bottom), well inside i64.
    let rem = top.wrapping_sub(q.wrapping_mul(bottom)) as i64;
    if rem < 0 {
        q - 1
    } else if rem >= bottom as i64 {
        q + 1
    } else {
        q
    }
}

/// 2^(t-1), or 0 for t = 0: the rounding constant of a shift by t.
fn half(t: u32) -> i64 {
    if t == 0 {
        0
    } else {
        1 << (t - 1)
    }
}

/// floor((x * mul - sub) / 2^shift) on i32 lanes. x * mul - sub is computed
/// with wrapping i32 arithmetic, exact because the true value,
/// P + add, lies in (-2^30, 2^31) while |x M|, |q M + C - add| < 2^31 too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lanes {
    pub mul: i32,
    pub sub: i32,
    pub shift: u32,
}

impl Lanes {
    const ZERO: Lanes = Lanes { mul: 0, sub: 0, shift: 0 };
}

/// A positive finite f32 as `g * 2^e` with an integer mantissa `g < 2^24`.
fn split_f32(x: f32) -> (u128, i32) {
    let bits = x.to_bits();
    let exp = ((bits >> 23) & 0xff) as i32;
    let frac = (bits & 0x7f_ffff) as u128;
    if exp == 0 {
        (frac, -149)
    } else {
        (frac | 1 << 23, exp - 150)
    }
}

fn bit_len(v: u128) -> i32 {
    128 - v.leading_zeros() as i32
}

/// floor(log2(a / b)) for positive integers.
fn floor_log2_ratio(a: u128, b: u128) -> i32 {
    let l = bit_len(a) - bit_len(b);
    let below = if l >= 0 { a < b << l } else { a << -l < b };
    l - below as i32
}

/// round_half_up(num * 2^e / den), for results that fit the caller's bound.
fn round_scaled(num: u128, e: i32, den: u128) -> u128 {
    let (num, den) = if e >= 0 { (num << e, den) } else { (num, den << -e) };
    let (top, bottom) = (2 * num + den, 2 * den);
    // u64 division when it fits (the common case): u128 division is a
    // slow library call, and this runs once per row.
    match (u64::try_from(top), u64::try_from(bottom)) {
        (Ok(t), Ok(b)) => (t / b) as u128,
        _ => top / bottom,
    }
}

/// True when k_num * 2^e / a == 2^p exactly.
fn is_exact_pow2_ratio(k_num: u128, e: i32, a: u128, p: i32) -> bool {
    let s = e - p;
    if s >= 0 {
        k_num << s == a
    } else {
        k_num == a << -s
    }
}

/// (M, C, sh) for K > 512 (contract step 4), where K' = 512 and
/// c' = min(c, 256) if 2r <= n, else 512 - min(K - c, 256).
///
/// With e = x - q, v = e K - c is the exact output before weight and bias.
/// For e >= 2 or e <= -1, |v| >= K > 512 and |v'| >= 512. For e = 0 and
/// e = 1, v' equals v, or both are beyond 256 on the same side (if 2r <= n
/// then c <= K/2, so v(1) = K - c > 256; else v(0) = -c < -256). And
/// |v| >= 256 saturates whatever the int8 weight (nonzero) and bias.
fn saturated_constants(n: u128, r: u128, k_num: u128, c_num: u128, e: i32, a: u128) -> (u128, u128, i32) {
    let sh = M_BITS - 9;
    let cap = 256u128 << sh;
    let c = if 2 * r <= n {
        capped_scaled(c_num, e + sh, a, cap)
    } else {
        // K - c = (k_num - c_num) * 2^e / a, positive as r < n.
        (512u128 << sh) - capped_scaled_down(k_num - c_num, e + sh, a, cap)
    };
    (1 << M_BITS, c, sh)
}

/// min(round_half_up(num * 2^e / a), cap).
fn capped_scaled(num: u128, e: i32, a: u128, cap: u128) -> u128 {
    if num == 0 {
        return 0;
    }
    if floor_log2_ratio(num, a) + e >= bit_len(cap) {
        return cap;
    }
    round_scaled(num, e, a).min(cap)
}

/// min(v, cap) rounded so that cap' - result equals round_half_up(cap' - v)
/// for the caller's subtraction: round_half_down(v) = ceil(v - 1/2).
fn capped_scaled_down(num: u128, e: i32, a: u128, cap: u128) -> u128 {
    if floor_log2_ratio(num, a) + e >= bit_len(cap) {
        return cap;
    }
    let (num, den) = if e >= 0 { (num << e, a) } else { (num, a << -e) };
    // ceil((2 num - den) / (2 den)) for 2 num >= den, else 0.
    let two = 2 * num;
    let v = if two <= den { 0 } else { (two - den).div_ceil(2 * den) };
    v.min(cap)
}

#[cfg(test)]
mod tests {
    use super::floor_div;

    /// floor_div against integer division where the f64 estimate is most
    /// likely off: remainders of 0, 1, bottom / 2 and bottom - 1, bottoms up
    /// to 2^41 and quotients up to 2^22 + 1 (every top below 2^64).
    #[test]
    fn floor_div_is_exact_next_to_integer_quotients() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |below: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) % below
        };
        for _ in 0..if cfg!(miri) { 200 } else { 200_000 } {
            let bits = 1 + next(41);
            let bottom = 1 + next(1 << bits);
            let q = next((1 << 22) + 2);
            for rem in [0, 1, bottom / 2, bottom - 1] {
                let top = q * bottom + rem;
                assert_eq!(floor_div(top, bottom), top / bottom, "top={top} bottom={bottom}");
            }
        }
    }
}
