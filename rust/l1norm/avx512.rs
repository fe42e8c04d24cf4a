//! AVX-512 (F + BW + VL) L1 norm kernels: the int8 contract with direct
//! integer intrinsics, and the float entry point of `vector.rs`.
//!
//! int8 passes: (1) S from `vpsadbw` of x ^ 0x80 against zero (sum of
//! x + 128 in u64 lanes); (2) sum |x - q| from `vpsadbw` of x ^ 0x80
//! against q ^ 0x80 (exact: both sides are offset by 128), and from it
//! and the count of x above q, sum |x - q - 1| (`row_sad`); (3) 16
//! elements at a time widened to i32, requantized (see `fixed::Requant`)
//! and narrowed with signed saturation (packs in the main loop, `vpmovsdb`
//! in the tail). Tails use byte masks.
//!
//! Pass (3) of a row without weight or bias maps each byte through a
//! table on CPUs with AVX-512 VBMI: the output is then a function of the
//! input byte alone, so the row's 256 outputs are requantized once (four
//! registers, in steps of 16 from one multiply: `table`) and each 64
//! bytes of x take two `vpermt2b` lookups and a blend on the index's sign
//! bit instead of four widenings, multiplies and shifts and three packs.
//! The outputs are the same bits. VBMI is detected at run time inside
//! this level (Ice Lake, Sapphire Rapids and Zen 4 have it; Skylake-SP
//! does not).

use super::fixed::{Requant, R_CLAMP, U_BITS};
use super::pipeline::{self, I8Passes};
use super::{Affine, RowBatch};
use crate::simd::prefetch;
use std::arch::x86_64::*;

/// The int8 L1 norm of every row of `batch` at the avx512 level, with the
/// table write where the CPU has VBMI.
///
/// # Safety
/// As for [`super::l1_norm_i8_rows_raw`]; the CPU has this level's
/// features (`dispatch`'s `Avx512` list, POPCNT included).
#[inline(always)]
pub(super) unsafe fn run(batch: RowBatch<i8>, gain: f32, affine: Affine<i8>) {
    // SAFETY: the caller's contract; `run_vbmi` only after detecting its
    // feature.
    unsafe {
        if std::arch::is_x86_feature_detected!("avx512vbmi") {
            run_vbmi(batch, gain, affine)
        } else {
            pipeline::run::<Avx512Passes<false>>(batch, gain, affine)
        }
    }
}

/// [`run`] with the table write: VBMI is enabled here and everything
/// below is inlined into this function.
///
/// # Safety
/// As for [`run`], and the CPU must have AVX-512 VBMI.
// The level's features (`dispatch`'s `Avx512` list, compared with this
// one by a test there) plus VBMI: without popcnt, `row_sad`'s
// `count_ones` would compile to a software bit count.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx512vbmi,avx2,fma,f16c,popcnt")]
#[inline(never)]
unsafe fn run_vbmi(batch: RowBatch<i8>, gain: f32, affine: Affine<i8>) {
    // SAFETY: the caller's contract, with the features of this function.
    unsafe { pipeline::run::<Avx512Passes<true>>(batch, gain, affine) }
}

/// The int8 passes with Avx512 intrinsics; `VBMI` writes rows without
/// weight or bias through a table. Reached only through [`run`].
pub(super) struct Avx512Passes<const VBMI: bool>;

impl<const VBMI: bool> I8Passes for Avx512Passes<VBMI> {
    /// # Safety
    /// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
    /// arguments must be valid for the elements read and written (`n` per
    /// row), with the aliasing the module documents.
    #[inline(always)]
    unsafe fn sum(x: *const i8, n: usize) -> i64 {
        // SAFETY: this function's contract: the CPU has this file's instruction set,
        // and every access below stays inside the elements the caller vouched for.
        unsafe {
            row_sum(x, n)
        }
    }

    /// # Safety
    /// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
    /// arguments must be valid for the elements read and written (`n` per
    /// row), with the aliasing the module documents.
    #[inline(always)]
    unsafe fn sad(x: *const i8, n: usize, q: i8) -> (u64, u64) {
        // SAFETY: this function's contract: the CPU has this file's instruction set,
        // and every access below stays inside the elements the caller vouched for.
        unsafe {
            row_sad(x, n, q)
        }
    }

    /// # Safety
    /// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
    /// arguments must be valid for the elements read and written (`n` per
    /// row), with the aliasing the module documents.
    #[inline(always)]
    unsafe fn write(x: *const i8, y: *mut i8, n: usize, rq: &Requant, affine: Affine<i8>) {
        // SAFETY: this function's contract: the CPU has this file's instruction set,
        // and every access below stays inside the elements the caller vouched for.
        unsafe {
            match (!affine.weight.is_null(), !affine.bias.is_null()) {
                (false, false) if VBMI && n >= TABLE_MIN_LEN => write_row_table(x, y, n, rq),
                (false, false) => write_row::<false, false>(x, y, n, rq, affine),
                (false, true) => write_row::<false, true>(x, y, n, rq, affine),
                (true, false) => write_row::<true, false>(x, y, n, rq, affine),
                (true, true) => write_row::<true, true>(x, y, n, rq, affine),
            }
        }
    }
}

/// Mask of the first `count < 64` bytes.
#[inline(always)]
fn byte_mask(count: usize) -> u64 {
    (1u64 << count) - 1
}

/// S = sum x_i, exact for any n < 2^56.
///
/// # Safety
/// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn row_sum(x: *const i8, n: usize) -> i64 {
    // SAFETY: this function's contract: the CPU has this file's instruction set,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let flip = _mm512_set1_epi8(i8::MIN);
        let zero = _mm512_setzero_si512();
        let (mut s0, mut s1) = (zero, zero);
        let mut i = 0;
        let ahead = prefetch::Ahead::current();
        while i + 128 <= n {
            // The pipeline's first pass over a row fetches ahead (the
            // hardware prefetchers restart at every 4 KiB page), and the
            // write pass fetches its output lines ahead. Both together,
            // int8 4096x1024, time / int8 copy, in-process A/B (medians
            // of 11 interleaved rounds, three runs, Emerald Rapids):
            // 2.33 -> 1.96, 2.70 -> 2.34, 2.31 -> 2.02.
            ahead.fetch(x.add(i), 128);
            let a = _mm512_xor_si512(_mm512_loadu_si512(x.add(i).cast()), flip);
            let b = _mm512_xor_si512(_mm512_loadu_si512(x.add(i + 64).cast()), flip);
            s0 = _mm512_add_epi64(s0, _mm512_sad_epu8(a, zero));
            s1 = _mm512_add_epi64(s1, _mm512_sad_epu8(b, zero));
            i += 128;
        }
        while i < n {
            // Lanes past the row load -128, which adds 0 after the flip.
            let count = (n - i).min(64);
            let v = if count == 64 { _mm512_loadu_si512(x.add(i).cast()) } else { _mm512_mask_loadu_epi8(flip, byte_mask(count), x.add(i)) };
            s0 = _mm512_add_epi64(s0, _mm512_sad_epu8(_mm512_xor_si512(v, flip), zero));
            i += count;
        }
        let biased = _mm512_reduce_add_epi64(_mm512_add_epi64(s0, s1)) as i64;
        biased - 128 * n as i64
    }
}

/// (sum |x_i - q|, sum |x_i - q1|) for q1 = min(q + 1, 127). For
/// integers |x - (q + 1)| is |x - q| + 1 where x <= q and |x - q| - 1
/// where x > q, so below q = 127 the second sum is the first plus
/// n - 2 count(x > q): one `vpsadbw` per 64 bytes, and the count from a
/// compare into a mask and `popcnt` on the integer side. Issue 11, round
/// 21: 2.61-2.77 cycles per 64 bytes in L1 (eight runs) against 3.11-3.16
/// for two `vpsadbw` (`benches/probes/l1_norm_i8_passes.c`), and
/// 0.85-0.97 of the kernel's time in `benches/ab` (six shapes, both
/// orders).
///
/// # Safety
/// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn row_sad(x: *const i8, n: usize, q: i8) -> (u64, u64) {
    // SAFETY: this function's contract: the CPU has this file's instruction set,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let flip = _mm512_set1_epi8(i8::MIN);
        let qv = _mm512_set1_epi8(q);
        let qf = _mm512_xor_si512(qv, flip);
        let (mut s0, mut s1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
        let (mut above0, mut above1) = (0u64, 0u64);
        let mut i = 0;
        while i + 128 <= n {
            let a = _mm512_loadu_si512(x.add(i).cast());
            let b = _mm512_loadu_si512(x.add(i + 64).cast());
            s0 = _mm512_add_epi64(s0, _mm512_sad_epu8(_mm512_xor_si512(a, flip), qf));
            s1 = _mm512_add_epi64(s1, _mm512_sad_epu8(_mm512_xor_si512(b, flip), qf));
            above0 += _mm512_cmpgt_epi8_mask(a, qv).count_ones() as u64;
            above1 += _mm512_cmpgt_epi8_mask(b, qv).count_ones() as u64;
            i += 128;
        }
        while i < n {
            // Lanes past the row load q: 0 in the sum, not above q.
            let count = (n - i).min(64);
            let v = if count == 64 { _mm512_loadu_si512(x.add(i).cast()) } else { _mm512_mask_loadu_epi8(qv, byte_mask(count), x.add(i)) };
            s0 = _mm512_add_epi64(s0, _mm512_sad_epu8(_mm512_xor_si512(v, flip), qf));
            above0 += _mm512_cmpgt_epi8_mask(v, qv).count_ones() as u64;
            i += count;
        }
        let sad_q = _mm512_reduce_add_epi64(_mm512_add_epi64(s0, s1)) as u64;
        // q1 = q at q = 127 (no x is above it): the second sum is the first.
        let sad_q1 = if q == i8::MAX { sad_q } else { sad_q + n as u64 - 2 * (above0 + above1) };
        (sad_q, sad_q1)
    }
}

/// The row constants broadcast to registers.
struct Consts {
    mul: __m512i,
    sub: __m512i,
    shift: __m128i,
    half: __m512i,
    r_max: __m512i,
    r_min: __m512i,
    /// Undoes the lane interleaving of the two packs.
    order: __m512i,
}

impl Consts {
    /// # Safety
    /// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
    /// arguments must be valid for the elements read and written (`n` per
    /// row), with the aliasing the module documents.
    #[inline(always)]
    unsafe fn new(rq: &Requant, weighted: bool) -> Consts {
        // SAFETY: this function's contract: the CPU has this file's instruction set,
        // and every access below stays inside the elements the caller vouched for.
        unsafe {
            let lanes = if weighted { rq.r_lanes() } else { rq.unweighted_lanes() };
            Consts {
                mul: _mm512_set1_epi32(lanes.mul),
                sub: _mm512_set1_epi32(lanes.sub),
                shift: _mm_cvtsi32_si128(lanes.shift as i32),
                half: _mm512_set1_epi32(1 << (U_BITS - 1)),
                r_max: _mm512_set1_epi32(R_CLAMP),
                r_min: _mm512_set1_epi32(-R_CLAMP),
                order: _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15),
            }
        }
    }
}

/// Steps 6-7 of the contract for 16 int8 lanes, before saturation. Unweighted rows get the
/// output directly from one shift (`Requant::unweighted_lanes`); weighted
/// ones get R, clamped so that R w fits i32, then round(R w / 2^12).
///
/// # Safety
/// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn requant16_lanes<const W: bool, const B: bool>(x: __m128i, w: __m128i, b: __m128i, k: &Consts) -> __m512i {
    // SAFETY: this function's contract: the CPU has this file's instruction set,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let prod = _mm512_sub_epi32(_mm512_mullo_epi32(_mm512_cvtepi8_epi32(x), k.mul), k.sub);
        let shifted = _mm512_sra_epi32(prod, k.shift);
        let mut v = if W {
            let r = _mm512_max_epi32(_mm512_min_epi32(shifted, k.r_max), k.r_min);
            let u = _mm512_mullo_epi32(r, _mm512_cvtepi8_epi32(w));
            _mm512_srai_epi32::<{ U_BITS as u32 }>(_mm512_add_epi32(u, k.half))
        } else {
            shifted
        };
        if B {
            v = _mm512_add_epi32(v, _mm512_cvtepi8_epi32(b));
        }
        v
    }
}

/// 16 (or `count` < 16, zero-filled) bytes at `p + i`; nothing when `USE` is false.
///
/// # Safety
/// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn load16<const USE: bool>(p: *const i8, i: usize, count: usize) -> __m128i {
    // SAFETY: this function's contract: the CPU has this file's instruction set,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        if !USE {
            _mm_setzero_si128()
        } else if count == 16 {
            _mm_loadu_si128(p.add(i).cast())
        } else {
            _mm_maskz_loadu_epi8(byte_mask(count) as u16, p.add(i))
        }
    }
}

/// `requant16_lanes` for the 16 full lanes at offset `i`.
///
/// # Safety
/// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn group16<const W: bool, const B: bool>(x: *const i8, w: *const i8, b: *const i8, i: usize, k: &Consts) -> __m512i {
    // SAFETY: this function's contract: the CPU has this file's instruction set,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        requant16_lanes::<W, B>(load16::<true>(x, i, 16), load16::<W>(w, i, 16), load16::<B>(b, i, 16), k)
    }
}

/// Four 16-lane groups of i32 narrowed to 64 int8 with `vpackssdw` /
/// `vpacksswb` (signed saturation; cheaper than four `vpmovsdb` on some
/// cores) and put back in order with one dword permute.
///
/// # Safety
/// The CPU must have AVX-512 F and BW.
#[inline(always)]
unsafe fn narrow64(v: [__m512i; 4], k: &Consts) -> __m512i {
    // SAFETY: this function's contract; registers only.
    unsafe {
        let packed = _mm512_packs_epi16(_mm512_packs_epi32(v[0], v[1]), _mm512_packs_epi32(v[2], v[3]));
        _mm512_permutexvar_epi32(k.order, packed)
    }
}

/// 64 outputs from the 64 elements at `x + i`, `w + i`, `b + i`.
///
/// # Safety
/// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn requant64<const W: bool, const B: bool>(x: *const i8, w: *const i8, b: *const i8, i: usize, k: &Consts) -> __m512i {
    // SAFETY: this function's contract: the CPU has this file's instruction set,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        // Four calls, not `[0, 16, 32, 48].map(..)`: a closure handed to
        // `map` is compiled without this level's features, its intrinsics
        // left as calls (`.ci/check-inlined`).
        let groups = [group16::<W, B>(x, w, b, i, k), group16::<W, B>(x, w, b, i + 16, k), group16::<W, B>(x, w, b, i + 32, k), group16::<W, B>(x, w, b, i + 48, k)];
        narrow64(groups, k)
    }
}

/// # Safety
/// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn write_row<const W: bool, const B: bool>(x: *const i8, y: *mut i8, n: usize, rq: &Requant, affine: Affine<i8>) {
    // SAFETY: this function's contract: the CPU has this file's instruction set,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let k = Consts::new(rq, W);
        let (w, b) = (affine.weight, affine.bias);
        let mut i = 0;
        let ahead = prefetch::Ahead::current();
        while i + 64 <= n {
            ahead.fetch(y.add(i), 64);
            let v = requant64::<W, B>(x, w, b, i, &k);
            _mm512_storeu_si512(y.add(i).cast(), v);
            i += 64;
        }
        while i < n {
            let count = (n - i).min(16);
            let xs = load16::<true>(x, i, count);
            let ws = load16::<W>(w, i, count);
            let bs = load16::<B>(b, i, count);
            let v = _mm512_cvtsepi32_epi8(requant16_lanes::<W, B>(xs, ws, bs, &k));
            _mm_mask_storeu_epi8(y.add(i), byte_mask(count) as u16, v);
            i += count;
        }
    }
}

/// The shortest row written through the table. 512 until issue 11's
/// round 22, when [`table`] took its cost from 3.25 to 2.20-2.25 cycles
/// per 64 bytes of a 1 KiB row (`benches/probes/l1_norm_i8_passes.c`);
/// `benches/ab` on AMD Zen 4 (medians of 21 rounds, one run in each
/// order), time(256) / time(512): rows of 384 bytes 0.82 / 0.86, 256
/// bytes 0.97-0.98; time(128) / time(256): rows of 128 bytes 1.14 / 1.15,
/// 192 bytes 1.05-1.09. Not re-measured on Intel: on Emerald Rapids,
/// with the table before round 22 (4 MB batches, time / int8 copy, three
/// runs, without -> with the table), rows of 256 lost (2.72-2.76 ->
/// 2.90-2.94), 384 were mixed (2.36-2.41 -> 2.26-2.62), 512 2.19-2.20 ->
/// 1.89-2.04 and 1024 1.93-1.96 -> 1.36-1.51.
const TABLE_MIN_LEN: usize = 256;

/// The row's table: the outputs (steps 6-7 of the contract, unweighted)
/// of the bytes 0-255 read as int8, x = 0, ..., 127, -128, ..., -1, in
/// four registers. x mul - sub grows by mul from one x to the next, so
/// each 16-lane group is the previous one plus 16 mul (wrapping i32
/// arithmetic, as `vpmulld`'s product wraps: the same bits as
/// [`requant64`] of those bytes): one multiply for the row instead of one
/// per group, and no widening.
///
/// # Safety
/// The CPU must have AVX-512 F and BW.
#[inline(always)]
unsafe fn table(k: &Consts) -> [__m512i; 4] {
    // SAFETY: this function's contract; registers only.
    unsafe {
        let first = _mm512_sub_epi32(_mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), k.mul), k.sub);
        let step = _mm512_slli_epi32::<4>(k.mul);
        // x = 0..15 and x = -128..-113 (first - 128 mul).
        let (mut up, mut down) = (first, _mm512_sub_epi32(first, _mm512_slli_epi32::<7>(k.mul)));
        let mut groups = [_mm512_setzero_si512(); 16];
        for j in 0..8 {
            groups[j] = _mm512_sra_epi32(up, k.shift);
            groups[8 + j] = _mm512_sra_epi32(down, k.shift);
            up = _mm512_add_epi32(up, step);
            down = _mm512_add_epi32(down, step);
        }
        let [g0, g1, g2, g3, g4, g5, g6, g7, g8, g9, g10, g11, g12, g13, g14, g15] = groups;
        [narrow64([g0, g1, g2, g3], k), narrow64([g4, g5, g6, g7], k), narrow64([g8, g9, g10, g11], k), narrow64([g12, g13, g14, g15], k)]
    }
}

/// 64 outputs of a row without weight or bias for the 64 bytes `v`, from
/// the row's table `t` (four registers, entries 0-255 by the byte read as
/// unsigned): `vpermt2b` takes index bits 0-6 over two registers, so one
/// lookup covers bytes 0-127, one 128-255, and bit 7 picks between them.
///
/// # Safety
/// The CPU must have AVX-512 BW and VBMI.
#[inline(always)]
unsafe fn lookup64(t: &[__m512i; 4], v: __m512i) -> __m512i {
    // SAFETY: this function's contract.
    unsafe {
        let low = _mm512_permutex2var_epi8(t[0], v, t[1]);
        let high = _mm512_permutex2var_epi8(t[2], v, t[3]);
        _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), low, high)
    }
}

/// Pass (3) of a row without weight or bias through the row's table: the
/// table holds the requantized outputs of every byte ([`table`]: the bits
/// [`write_row`] gives).
///
/// # Safety
/// The CPU must have AVX-512 BW and VBMI; pointer arguments must be valid
/// for the elements read and written (`n` per row), with the aliasing the
/// module documents.
#[inline(always)]
unsafe fn write_row_table(x: *const i8, y: *mut i8, n: usize, rq: &Requant) {
    // SAFETY: this function's contract.
    unsafe {
        let t = table(&Consts::new(rq, false));
        let mut i = 0;
        let ahead = prefetch::Ahead::current();
        while i + 64 <= n {
            ahead.fetch(y.add(i), 64);
            _mm512_storeu_si512(y.add(i).cast(), lookup64(&t, _mm512_loadu_si512(x.add(i).cast())));
            i += 64;
        }
        if i < n {
            let mask = byte_mask(n - i);
            _mm512_mask_storeu_epi8(y.add(i), mask, lookup64(&t, _mm512_maskz_loadu_epi8(mask, x.add(i))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{self, Isa, Kernel};
    use crate::l1norm::{lcg_rows, scalar};
    use crate::simd::Simd;

    /// One variant of the avx512 passes over a batch: the plain write
    /// (`vbmi` false) or the table write.
    struct Variant {
        vbmi: bool,
        batch: RowBatch<i8>,
        gain: f32,
        affine: Affine<i8>,
    }

    impl Kernel for Variant {
        type Output = ();

        fn scalar(self) {
            unreachable!("run at the avx512 level only")
        }

        #[inline(always)]
        fn vector<S: Simd>(self, _: S) {
            assert_eq!(S::ISA, Isa::Avx512);
            // SAFETY: the token proves the CPU has the avx512 level, and the
            // table variant runs only where VBMI was detected (the caller);
            // the batch covers the caller's vectors exactly.
            unsafe {
                if self.vbmi {
                    run_vbmi(self.batch, self.gain, self.affine)
                } else {
                    pipeline::run::<Avx512Passes<false>>(self.batch, self.gain, self.affine)
                }
            }
        }
    }

    /// Both avx512 variants (plain, and the table write when this CPU has
    /// VBMI) against the scalar reference, bit for bit: lengths around the
    /// table's threshold and every tail of the 64-byte loop, rows that use
    /// every byte, narrow and saturated rows, with and without weight and
    /// bias (the table write takes neither).
    #[test]
    fn plain_and_table_writes_match_the_scalar_reference() {
        if !Isa::Avx512.is_supported() {
            // Nothing of this file can run here; the dispatch tests and
            // tests/l1norm_kernels.rs cover the levels this CPU has.
            return;
        }
        let vbmi = std::arch::is_x86_feature_detected!("avx512vbmi");
        let lengths = (1..=70).chain(TABLE_MIN_LEN - 1..=TABLE_MIN_LEN + 130).chain([1000, 4133]);
        for (case, n) in lengths.enumerate() {
            for (lo, hi) in [(-128, 127), (-3, 5), (120, 127), (-128, -126), (7, 7)] {
                let x = lcg_rows(3, n, lo, hi, case as u64);
                let w = lcg_rows(1, n, -128, 127, 1 + case as u64);
                let b = lcg_rows(1, n, -128, 127, 2 + case as u64);
                for (weight, bias) in [(None, None), (Some(&w), None), (None, Some(&b)), (Some(&w), Some(&b))] {
                    let affine = Affine::from_slices(weight.map(|v| &v[..]), bias.map(|v| &v[..]));
                    let batch = |y: &mut Vec<i8>| RowBatch { x: x.as_ptr(), x_stride: n as isize, y: y.as_mut_ptr(), y_stride: n as isize, rows: 3, n };
                    for gain in [0.75, 60.0, 5000.0] {
                        let mut want = vec![0i8; x.len()];
                        // SAFETY: the batch covers `x` and `want` exactly;
                        // weight and bias have n elements.
                        unsafe { scalar::l1_norm_i8_rows(batch(&mut want), gain, affine) };
                        for table in [false, true].into_iter().filter(|&t| !t || vbmi) {
                            let mut got = vec![0i8; x.len()];
                            dispatch::run(Isa::Avx512, Variant { vbmi: table, batch: batch(&mut got), gain, affine });
                            assert_eq!(got, want, "table={table} n={n} range={lo}..={hi} gain={gain}");
                        }
                    }
                }
            }
        }
    }
}
