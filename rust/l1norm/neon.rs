//! NEON int8 passes of the L1 norm (aarch64), bit-exact with the contract
//! in `mod.rs`, like `avx2.rs` / `avx512.rs`.
//!
//! The two reductions (S = sum x_i; sum |x_i - q| and sum |x_i - q1|)
//! take absolute differences with `sabd` and add bytes pairwise into u16 /
//! i16 lanes with `sadalp` / `uadalp`, folded into 64-bit totals once per
//! block. CPUs with the dot-product extension (`FEAT_DotProd`: Armv8.4,
//! optional from 8.2; Neoverse N1 / V1 / V2 (Graviton 2-4), Apple M1 and
//! later, Cortex-A55 / A76 and later) add four bytes into each u32 / i32
//! lane per instruction instead (`sdot` / `udot` against a vector of
//! ones), detected at run time. `vdotq_s32` is still an unstable
//! intrinsic (`stdarch_neon_dotprod`, Rust 1.96), so those two
//! instructions are written as inline assembly in functions compiled with
//! the `dotprod` feature.
//!
//! The element pass widens 16 bytes to four i32 registers, requantizes
//! them as `avx2.rs` does and narrows with signed saturation (`sqxtn`),
//! which keeps the lane order. Tails go through 16-byte stack buffers.

use super::fixed::{Requant, R_CLAMP, U_BITS};
use super::pipeline::{self, I8Passes};
use super::{Affine, RowBatch};
use std::arch::aarch64::*;
use std::arch::asm;
use std::ptr;

/// Bytes in one register.
const LANES: usize = 16;

/// Bytes summed into 16-bit lanes before they are folded into 64-bit
/// totals: each of the two accumulators takes at most BLOCK / 32 + 2
/// pairwise adds of two bytes (66 * 2 * 255 < 2^16, 66 * 2 * 128 < 2^15).
const BLOCK: usize = 2048;

/// The int8 L1 norm of every row of `batch` on NEON, with `sdot` / `udot`
/// where the CPU has them.
///
/// # Safety
/// As for [`super::l1_norm_i8_rows_raw`]; the CPU has NEON (aarch64).
#[inline(always)]
pub(super) unsafe fn run(batch: RowBatch<i8>, gain: f32, affine: Affine<i8>) {
    // SAFETY: the caller's contract; `run_dotprod` only after detecting
    // its feature.
    unsafe {
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            run_dotprod(batch, gain, affine)
        } else {
            pipeline::run::<NeonPasses<false>>(batch, gain, affine)
        }
    }
}

/// [`run`] with the dot-product passes: the `dotprod` feature is enabled
/// here and everything below is inlined into this function.
///
/// # Safety
/// As for [`run`], and the CPU must have `dotprod`.
#[target_feature(enable = "neon,dotprod")]
#[inline(never)]
unsafe fn run_dotprod(batch: RowBatch<i8>, gain: f32, affine: Affine<i8>) {
    // SAFETY: the caller's contract, with the features of this function.
    unsafe { pipeline::run::<NeonPasses<true>>(batch, gain, affine) }
}

/// The int8 passes on NEON; `DOT` sums bytes with `sdot` / `udot`.
/// Reached only through [`run`].
pub(super) struct NeonPasses<const DOT: bool>;

impl<const DOT: bool> I8Passes for NeonPasses<DOT> {
    /// # Safety
    /// The CPU must have NEON (and `dotprod` if `DOT`); `x` must be valid
    /// for reading `n` elements.
    #[inline(always)]
    unsafe fn sum(x: *const i8, n: usize) -> i64 {
        // SAFETY: this function's contract.
        unsafe { row_sum::<DOT>(x, n) }
    }

    /// # Safety
    /// As for `sum`.
    #[inline(always)]
    unsafe fn sad(x: *const i8, n: usize, q: i8) -> (u64, u64) {
        // SAFETY: this function's contract.
        unsafe { row_sad::<DOT>(x, n, q) }
    }

    /// # Safety
    /// The CPU must have NEON; `x` (and non-null `affine` pointers) must be
    /// valid for reading and `y` for writing `n` elements, `y` either `x`
    /// or overlapping no input.
    #[inline(always)]
    unsafe fn write(x: *const i8, y: *mut i8, n: usize, rq: &Requant, affine: Affine<i8>) {
        // SAFETY: this function's contract.
        unsafe {
            match (!affine.weight.is_null(), !affine.bias.is_null()) {
                (false, false) => write_row::<false, false>(x, y, n, rq, affine),
                (false, true) => write_row::<false, true>(x, y, n, rq, affine),
                (true, false) => write_row::<true, false>(x, y, n, rq, affine),
                (true, true) => write_row::<true, true>(x, y, n, rq, affine),
            }
        }
    }
}

/// acc + the sums of each four consecutive signed bytes of `a` times `b`.
///
/// # Safety
/// The CPU must have `dotprod`.
#[target_feature(enable = "neon,dotprod")]
#[inline]
unsafe fn sdot(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    // SAFETY: `sdot` exists on CPUs with dotprod (this function's
    // contract); it reads and writes only the three registers.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc, a = in(vreg) a, b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// acc + the sums of each four consecutive unsigned bytes of `a` times `b`.
///
/// # Safety
/// The CPU must have `dotprod`.
#[target_feature(enable = "neon,dotprod")]
#[inline]
unsafe fn udot(mut acc: uint32x4_t, a: uint8x16_t, b: uint8x16_t) -> uint32x4_t {
    // SAFETY: as for `sdot`.
    unsafe {
        asm!(
            "udot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc, a = in(vreg) a, b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// 16 bytes at `p`, or the `count < 16` there followed by `fill`.
///
/// # Safety
/// The CPU must have NEON; `p` must be valid for reading `count <= 16` bytes.
#[inline(always)]
unsafe fn load16(p: *const i8, count: usize, fill: i8) -> int8x16_t {
    // SAFETY: this function's contract; a short load reads the local buffer.
    unsafe {
        if count == LANES {
            vld1q_s8(p)
        } else {
            let mut buf = [fill; LANES];
            ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), count);
            vld1q_s8(buf.as_ptr())
        }
    }
}

/// S = sum x_i, exact for any n < 2^56.
///
/// # Safety
/// The CPU must have NEON (and `dotprod` if `DOT`); `x` must be valid for
/// reading `n` elements.
#[inline(always)]
unsafe fn row_sum<const DOT: bool>(x: *const i8, n: usize) -> i64 {
    // SAFETY: this function's contract: every load stays inside the row.
    unsafe {
        let ones = vdupq_n_s8(1);
        let mut total = vdupq_n_s64(0);
        let mut i = 0;
        while i < n {
            let end = (i + BLOCK).min(n);
            // Each accumulator lane: i16 pair sums, or i32 sums of four.
            let block = if DOT {
                let (mut a0, mut a1) = (vdupq_n_s32(0), vdupq_n_s32(0));
                while i + 2 * LANES <= end {
                    a0 = sdot(a0, vld1q_s8(x.add(i)), ones);
                    a1 = sdot(a1, vld1q_s8(x.add(i + LANES)), ones);
                    i += 2 * LANES;
                }
                while i < end {
                    // Bytes past the row are 0.
                    let count = (end - i).min(LANES);
                    a0 = sdot(a0, load16(x.add(i), count, 0), ones);
                    i += count;
                }
                vaddq_s32(a0, a1)
            } else {
                let (mut a0, mut a1) = (vdupq_n_s16(0), vdupq_n_s16(0));
                while i + 2 * LANES <= end {
                    a0 = vpadalq_s8(a0, vld1q_s8(x.add(i)));
                    a1 = vpadalq_s8(a1, vld1q_s8(x.add(i + LANES)));
                    i += 2 * LANES;
                }
                while i < end {
                    let count = (end - i).min(LANES);
                    a0 = vpadalq_s8(a0, load16(x.add(i), count, 0));
                    i += count;
                }
                vaddq_s32(vpaddlq_s16(a0), vpaddlq_s16(a1))
            };
            total = vpadalq_s32(total, block);
        }
        vaddvq_s64(total)
    }
}

/// (sum |x_i - q|, sum |x_i - q1|) for q1 = min(q + 1, 127).
///
/// # Safety
/// As for [`row_sum`].
#[inline(always)]
unsafe fn row_sad<const DOT: bool>(x: *const i8, n: usize, q: i8) -> (u64, u64) {
    // SAFETY: this function's contract: every load stays inside the row.
    unsafe {
        let q1 = q.saturating_add(1);
        let (qv, q1v) = (vdupq_n_s8(q), vdupq_n_s8(q1));
        let ones = vdupq_n_u8(1);
        // |a - b| of two int8 is at most 255: exact in a u8 lane.
        let dist = |v: int8x16_t, c: int8x16_t| vreinterpretq_u8_s8(vabdq_s8(v, c));
        let (mut total_q, mut total_q1) = (vdupq_n_u64(0), vdupq_n_u64(0));
        let mut filled = 0;
        let mut i = 0;
        while i < n {
            let end = (i + BLOCK).min(n);
            let (block_q, block_q1) = if DOT {
                let zero = vdupq_n_u32(0);
                let (mut s0, mut s1, mut t0, mut t1) = (zero, zero, zero, zero);
                while i + 2 * LANES <= end {
                    let (a, b) = (vld1q_s8(x.add(i)), vld1q_s8(x.add(i + LANES)));
                    s0 = udot(s0, dist(a, qv), ones);
                    t0 = udot(t0, dist(a, q1v), ones);
                    s1 = udot(s1, dist(b, qv), ones);
                    t1 = udot(t1, dist(b, q1v), ones);
                    i += 2 * LANES;
                }
                while i < end {
                    let count = (end - i).min(LANES);
                    let a = load16(x.add(i), count, q);
                    s0 = udot(s0, dist(a, qv), ones);
                    t0 = udot(t0, dist(a, q1v), ones);
                    filled += LANES - count;
                    i += count;
                }
                (vaddq_u32(s0, s1), vaddq_u32(t0, t1))
            } else {
                let zero = vdupq_n_u16(0);
                let (mut s0, mut s1, mut t0, mut t1) = (zero, zero, zero, zero);
                while i + 2 * LANES <= end {
                    let (a, b) = (vld1q_s8(x.add(i)), vld1q_s8(x.add(i + LANES)));
                    s0 = vpadalq_u8(s0, dist(a, qv));
                    t0 = vpadalq_u8(t0, dist(a, q1v));
                    s1 = vpadalq_u8(s1, dist(b, qv));
                    t1 = vpadalq_u8(t1, dist(b, q1v));
                    i += 2 * LANES;
                }
                while i < end {
                    let count = (end - i).min(LANES);
                    let a = load16(x.add(i), count, q);
                    s0 = vpadalq_u8(s0, dist(a, qv));
                    t0 = vpadalq_u8(t0, dist(a, q1v));
                    filled += LANES - count;
                    i += count;
                }
                (vaddq_u32(vpaddlq_u16(s0), vpaddlq_u16(s1)), vaddq_u32(vpaddlq_u16(t0), vpaddlq_u16(t1)))
            };
            total_q = vpadalq_u32(total_q, block_q);
            total_q1 = vpadalq_u32(total_q1, block_q1);
        }
        // Bytes past the row hold q: 0 in the first sum, q1 - q in the second.
        (vaddvq_u64(total_q), vaddvq_u64(total_q1) - filled as u64 * (q1 as i64 - q as i64) as u64)
    }
}

/// The row constants broadcast to registers.
struct Consts {
    mul: int32x4_t,
    sub: int32x4_t,
    /// Minus the shift: `sshl` by a negative count is an arithmetic right shift.
    neg_shift: int32x4_t,
    half: int32x4_t,
    r_max: int32x4_t,
    r_min: int32x4_t,
}

impl Consts {
    /// # Safety
    /// The CPU must have NEON.
    #[inline(always)]
    unsafe fn new(rq: &Requant, weighted: bool) -> Consts {
        // SAFETY: this function's contract (register operations only).
        unsafe {
            let lanes = if weighted { rq.r_lanes() } else { rq.unweighted_lanes() };
            Consts {
                mul: vdupq_n_s32(lanes.mul),
                sub: vdupq_n_s32(lanes.sub),
                neg_shift: vdupq_n_s32(-(lanes.shift as i32)),
                half: vdupq_n_s32(1 << (U_BITS - 1)),
                r_max: vdupq_n_s32(R_CLAMP),
                r_min: vdupq_n_s32(-R_CLAMP),
            }
        }
    }
}

/// The 16 int8 at `p` sign-extended to four i32 registers, in order.
///
/// # Safety
/// The CPU must have NEON; `p` must be valid for reading 16 bytes.
#[inline(always)]
unsafe fn widen16(p: *const i8) -> [int32x4_t; 4] {
    // SAFETY: this function's contract.
    unsafe {
        let v = vld1q_s8(p);
        let (lo, hi) = (vmovl_s8(vget_low_s8(v)), vmovl_high_s8(v));
        [vmovl_s16(vget_low_s16(lo)), vmovl_high_s16(lo), vmovl_s16(vget_low_s16(hi)), vmovl_high_s16(hi)]
    }
}

/// Steps 6-7 of the contract for four elements before saturation (i32
/// lanes); as `requant8` in `avx2.rs`.
///
/// # Safety
/// The CPU must have NEON.
#[inline(always)]
unsafe fn requant4<const W: bool, const B: bool>(x: int32x4_t, w: int32x4_t, b: int32x4_t, k: &Consts) -> int32x4_t {
    // SAFETY: this function's contract (register operations only).
    unsafe {
        let shifted = vshlq_s32(vsubq_s32(vmulq_s32(x, k.mul), k.sub), k.neg_shift);
        let v = if W {
            let r = vmaxq_s32(vminq_s32(shifted, k.r_max), k.r_min);
            vshrq_n_s32::<U_BITS>(vaddq_s32(vmulq_s32(r, w), k.half))
        } else {
            shifted
        };
        if B {
            vaddq_s32(v, b)
        } else {
            v
        }
    }
}

/// 16 outputs from the 16 elements at `x`, `w`, `b` (saturated to int8);
/// `w` and `b` are read only when `W` / `B`.
///
/// # Safety
/// The CPU must have NEON; `x` (and `w`, `b` when read) must be valid for
/// reading 16 bytes.
#[inline(always)]
unsafe fn requant16<const W: bool, const B: bool>(x: *const i8, w: *const i8, b: *const i8, k: &Consts) -> int8x16_t {
    // SAFETY: this function's contract.
    unsafe {
        let zero = vdupq_n_s32(0);
        let xs = widen16(x);
        let ws = if W { widen16(w) } else { [zero; 4] };
        let bs = if B { widen16(b) } else { [zero; 4] };
        let v: [int32x4_t; 4] = std::array::from_fn(|j| requant4::<W, B>(xs[j], ws[j], bs[j], k));
        let lo = vqmovn_high_s32(vqmovn_s32(v[0]), v[1]);
        let hi = vqmovn_high_s32(vqmovn_s32(v[2]), v[3]);
        vqmovn_high_s16(vqmovn_s16(lo), hi)
    }
}

/// # Safety
/// As for `NeonPasses::write`.
#[inline(always)]
unsafe fn write_row<const W: bool, const B: bool>(x: *const i8, y: *mut i8, n: usize, rq: &Requant, affine: Affine<i8>) {
    // SAFETY: this function's contract: full loads and stores stay inside
    // the row, the tail goes through local buffers.
    unsafe {
        let k = Consts::new(rq, W);
        let (w, b) = (affine.weight, affine.bias);
        let mut i = 0;
        while i + LANES <= n {
            let v = requant16::<W, B>(x.add(i), w.wrapping_add(i), b.wrapping_add(i), &k);
            vst1q_s8(y.add(i), v);
            i += LANES;
        }
        if i < n {
            let count = n - i;
            let mut buf = [[0i8; LANES]; 4];
            ptr::copy_nonoverlapping(x.add(i), buf[0].as_mut_ptr(), count);
            if W {
                ptr::copy_nonoverlapping(w.add(i), buf[1].as_mut_ptr(), count);
            }
            if B {
                ptr::copy_nonoverlapping(b.add(i), buf[2].as_mut_ptr(), count);
            }
            let v = requant16::<W, B>(buf[0].as_ptr(), buf[1].as_ptr(), buf[2].as_ptr(), &k);
            vst1q_s8(buf[3].as_mut_ptr(), v);
            ptr::copy_nonoverlapping(buf[3].as_ptr(), y.add(i), count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l1norm::{lcg_rows, scalar};

    /// Both NEON variants (plain, and dotprod when this CPU has it: under
    /// `qemu -cpu max`) against the scalar reference, bit for bit: every
    /// tail length, rows longer than a block, saturated and flat rows,
    /// with and without weight and bias.
    #[test]
    fn plain_and_dotprod_passes_match_the_scalar_reference() {
        let dotprod = std::arch::is_aarch64_feature_detected!("dotprod");
        let lengths = (1..=80).chain([255, 2047, 2048, 2049, 4133]);
        for (case, n) in lengths.enumerate() {
            for (lo, hi) in [(-128, 127), (-3, 5), (120, 127), (-128, -126), (7, 7)] {
                let x = lcg_rows(3, n, lo, hi, case as u64);
                let w = lcg_rows(1, n, -128, 127, 1 + case as u64);
                let b = lcg_rows(1, n, -128, 127, 2 + case as u64);
                for (weight, bias) in [(None, None), (Some(&w), None), (None, Some(&b)), (Some(&w), Some(&b))] {
                    let affine = Affine::from_slices(weight.map(|v| &v[..]), bias.map(|v| &v[..]));
                    let batch = |y: &mut Vec<i8>| RowBatch {
                        x: x.as_ptr(),
                        x_stride: n as isize,
                        y: y.as_mut_ptr(),
                        y_stride: n as isize,
                        rows: 3,
                        n,
                    };
                    for gain in [0.75, 60.0] {
                        let mut want = vec![0i8; x.len()];
                        // SAFETY: the batch covers `x` and `want` exactly;
                        // weight and bias have n elements.
                        unsafe { scalar::l1_norm_i8_rows(batch(&mut want), gain, affine) };
                        let mut plain = vec![0i8; x.len()];
                        // SAFETY: as above; NEON is the aarch64 baseline.
                        unsafe { pipeline::run::<NeonPasses<false>>(batch(&mut plain), gain, affine) };
                        assert_eq!(plain, want, "plain n={n} range={lo}..={hi} gain={gain}");
                        if dotprod {
                            let mut dot = vec![0i8; x.len()];
                            // SAFETY: as above, and dotprod was detected.
                            unsafe { run_dotprod(batch(&mut dot), gain, affine) };
                            assert_eq!(dot, want, "dotprod n={n} range={lo}..={hi} gain={gain}");
                        }
                    }
                }
            }
        }
    }
}
