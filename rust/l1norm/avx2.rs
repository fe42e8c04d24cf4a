//! AVX2 L1 norm kernels: the int8 contract with direct integer intrinsics,
//! and the float entry point of `vector.rs`.
//!
//! The int8 passes follow `avx512.rs` on 32-byte registers, except that
//! sum |x - q - 1| takes its own `vpsadbw` (the AVX-512 pass counts the x
//! above q instead): `vpsadbw` for S, sum |x - q| and sum |x - q - 1|,
//! then 8 elements per i32 register requantized and narrowed with
//! `vpackssdw` / `vpacksswb` (signed saturation) plus a lane fix-up. Tails
//! go through 32-byte stack buffers.

use super::fixed::{Requant, R_CLAMP, U_BITS};
use super::pipeline::I8Passes;
use super::Affine;
use crate::simd::prefetch;
use std::arch::x86_64::*;
use std::ptr;

/// The int8 passes with Avx2 intrinsics. Reached only through
/// [`crate::dispatch::run`] at the avx2 level.
pub(super) struct Avx2Passes;

impl I8Passes for Avx2Passes {
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
                (false, false) => write_row::<false, false>(x, y, n, rq, affine),
                (false, true) => write_row::<false, true>(x, y, n, rq, affine),
                (true, false) => write_row::<true, false>(x, y, n, rq, affine),
                (true, true) => write_row::<true, true>(x, y, n, rq, affine),
            }
        }
    }
}

const LANES: usize = 32;

/// 32 bytes at `p`, or the `count < 32` there followed by `fill`.
///
/// # Safety
/// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn load32(p: *const i8, count: usize, fill: i8) -> __m256i {
    // SAFETY: this function's contract: the CPU has this file's instruction set,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        if count == LANES {
            _mm256_loadu_si256(p.cast())
        } else {
            let mut buf = [fill; LANES];
            ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), count);
            _mm256_loadu_si256(buf.as_ptr().cast())
        }
    }
}

/// # Safety
/// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn sum_u64(v: __m256i) -> u64 {
    // SAFETY: this function's contract: the CPU has this file's instruction set,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        (_mm_cvtsi128_si64(s) + _mm_extract_epi64::<1>(s)) as u64
    }
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
        let flip = _mm256_set1_epi8(i8::MIN);
        let zero = _mm256_setzero_si256();
        let (mut s0, mut s1) = (zero, zero);
        let mut i = 0;
        let ahead = prefetch::Ahead::current();
        while i + 2 * LANES <= n {
            // As in avx512.rs: the first pass over a row fetches ahead.
            ahead.fetch(x.add(i), 2 * LANES);
            let a = _mm256_xor_si256(_mm256_loadu_si256(x.add(i).cast()), flip);
            let b = _mm256_xor_si256(_mm256_loadu_si256(x.add(i + LANES).cast()), flip);
            s0 = _mm256_add_epi64(s0, _mm256_sad_epu8(a, zero));
            s1 = _mm256_add_epi64(s1, _mm256_sad_epu8(b, zero));
            i += 2 * LANES;
        }
        while i < n {
            // Bytes past the row are -128, which adds 0 after the flip.
            let count = (n - i).min(LANES);
            let v = _mm256_xor_si256(load32(x.add(i), count, i8::MIN), flip);
            s0 = _mm256_add_epi64(s0, _mm256_sad_epu8(v, zero));
            i += count;
        }
        sum_u64(_mm256_add_epi64(s0, s1)) as i64 - 128 * n as i64
    }
}

/// (sum |x_i - q|, sum |x_i - q1|) for q1 = min(q + 1, 127).
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
        let q1 = q.saturating_add(1);
        let flip = _mm256_set1_epi8(i8::MIN);
        let (qf, q1f) = (_mm256_set1_epi8(q ^ i8::MIN), _mm256_set1_epi8(q1 ^ i8::MIN));
        let (mut s0, mut s1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        let mut i = 0;
        while i + 2 * LANES <= n {
            let a = _mm256_xor_si256(_mm256_loadu_si256(x.add(i).cast()), flip);
            let b = _mm256_xor_si256(_mm256_loadu_si256(x.add(i + LANES).cast()), flip);
            s0 = _mm256_add_epi64(s0, _mm256_add_epi64(_mm256_sad_epu8(a, qf), _mm256_sad_epu8(b, qf)));
            s1 = _mm256_add_epi64(s1, _mm256_add_epi64(_mm256_sad_epu8(a, q1f), _mm256_sad_epu8(b, q1f)));
            i += 2 * LANES;
        }
        let mut filled = 0;
        while i < n {
            let count = (n - i).min(LANES);
            let f = _mm256_xor_si256(load32(x.add(i), count, q), flip);
            s0 = _mm256_add_epi64(s0, _mm256_sad_epu8(f, qf));
            s1 = _mm256_add_epi64(s1, _mm256_sad_epu8(f, q1f));
            filled += LANES - count;
            i += count;
        }
        // Bytes past the row hold q: 0 in the first sum, q1 - q in the second.
        (sum_u64(s0), sum_u64(s1) - filled as u64 * (q1 as i64 - q as i64) as u64)
    }
}

/// The row constants broadcast to registers.
struct Consts {
    mul: __m256i,
    sub: __m256i,
    shift: __m128i,
    half: __m256i,
    r_max: __m256i,
    r_min: __m256i,
    /// Undoes the lane interleaving of the two packs.
    order: __m256i,
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
                mul: _mm256_set1_epi32(lanes.mul),
                sub: _mm256_set1_epi32(lanes.sub),
                shift: _mm_cvtsi32_si128(lanes.shift as i32),
                half: _mm256_set1_epi32(1 << (U_BITS - 1)),
                r_max: _mm256_set1_epi32(R_CLAMP),
                r_min: _mm256_set1_epi32(-R_CLAMP),
                order: _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7),
            }
        }
    }
}

/// Eight int8 at `p` sign-extended to i32.
///
/// # Safety
/// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn widen8(p: *const i8) -> __m256i {
    // SAFETY: this function's contract: the CPU has this file's instruction set,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        _mm256_cvtepi8_epi32(_mm_loadl_epi64(p.cast()))
    }
}

/// Steps 6-7 of the contract for the 8 elements at offset `j`, before
/// saturation (i32 lanes); as `requant16` in `avx512.rs`.
///
/// # Safety
/// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn requant8<const W: bool, const B: bool>(x: *const i8, w: *const i8, b: *const i8, j: usize, k: &Consts) -> __m256i {
    // SAFETY: this function's contract: the CPU has this file's instruction set,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let prod = _mm256_sub_epi32(_mm256_mullo_epi32(widen8(x.add(j)), k.mul), k.sub);
        let shifted = _mm256_sra_epi32(prod, k.shift);
        let v = if W {
            let r = _mm256_max_epi32(_mm256_min_epi32(shifted, k.r_max), k.r_min);
            let u = _mm256_mullo_epi32(r, widen8(w.add(j)));
            _mm256_srai_epi32::<U_BITS>(_mm256_add_epi32(u, k.half))
        } else {
            shifted
        };
        if B {
            _mm256_add_epi32(v, widen8(b.add(j)))
        } else {
            v
        }
    }
}

/// 32 outputs from the 32 elements at `x`, `w`, `b` (saturated to int8).
///
/// # Safety
/// The CPU must have this code's instruction set (`V`'s, or the file's); pointer
/// arguments must be valid for the elements read and written (`n` per
/// row), with the aliasing the module documents.
#[inline(always)]
unsafe fn requant32<const W: bool, const B: bool>(x: *const i8, w: *const i8, b: *const i8, k: &Consts) -> __m256i {
    // SAFETY: this function's contract: the CPU has this file's instruction set,
    // and every access below stays inside the elements the caller vouched for.
    unsafe {
        let v0 = requant8::<W, B>(x, w, b, 0, k);
        let v1 = requant8::<W, B>(x, w, b, 8, k);
        let v2 = requant8::<W, B>(x, w, b, 16, k);
        let v3 = requant8::<W, B>(x, w, b, 24, k);
        let packed = _mm256_packs_epi16(_mm256_packs_epi32(v0, v1), _mm256_packs_epi32(v2, v3));
        _mm256_permutevar8x32_epi32(packed, k.order)
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
        while i + LANES <= n {
            // One prefetch per 64-byte line of y.
            if i % 64 == 0 {
                ahead.fetch(y.add(i), 64);
            }
            let v = requant32::<W, B>(x.add(i), w.wrapping_add(i), b.wrapping_add(i), &k);
            _mm256_storeu_si256(y.add(i).cast(), v);
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
            let v = requant32::<W, B>(buf[0].as_ptr(), buf[1].as_ptr(), buf[2].as_ptr(), &k);
            _mm256_storeu_si256(buf[3].as_mut_ptr().cast(), v);
            ptr::copy_nonoverlapping(buf[3].as_ptr(), y.add(i), count);
        }
    }
}
