//! Software prefetch ahead of a streaming pass.
//!
//! The hardware prefetchers follow a stream within a 4 KiB page and ramp
//! up again on each new one, and they only see the addresses a pass
//! touches: while a compute-bound pass (softmax's exponentials) works on a
//! row that is already in L1, nothing fetches the next rows. Prefetching a
//! fixed distance ahead from inside every pass keeps memory busy while the
//! core computes.

/// How far ahead a pass prefetches: two rows of 1024 float32. Measured on
/// AMD Zen 5 (family 26) for the norms' statistics pass, 4096 x 1024
/// float32, time / copy time: RMSNorm 1.40 -> 1.20, LayerNorm 1.50 ->
/// 1.10; 2, 4, 6, 12 and 16 KiB were no better.
pub const AHEAD_BYTES: usize = 8192;

/// Prefetches the cache lines of `bytes` bytes starting [`AHEAD_BYTES`]
/// after `p` into L1 (x86-64; elsewhere nothing: the NEON kernels have not
/// been measured with a prefetch). The pointer is never dereferenced, so
/// it may point anywhere, past the end of the data included.
#[inline(always)]
pub fn ahead<T>(p: *const T, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let ahead = (p as *const i8).wrapping_add(AHEAD_BYTES);
        let mut b = 0;
        while b < bytes {
            // SAFETY: a prefetch is a hint that never faults, whatever the
            // address, and reads nothing the program sees; SSE is baseline
            // on x86-64.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(b)) };
            b += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, bytes);
}
