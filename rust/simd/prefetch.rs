//! Software prefetch ahead of a streaming pass.
//!
//! The hardware prefetchers follow a stream within a 4 KiB page and ramp
//! up again on each new one, and they only see the addresses a pass
//! touches: while a compute-bound pass (softmax's exponentials) works on a
//! row that is already in L1, nothing fetches the next rows. Prefetching a
//! fixed distance ahead from inside every pass keeps memory busy while the
//! core computes.
//!
//! Whether that pays depends on the core, so it is switched at run time
//! ([`enabled`]): on by default, off where it was measured to cost (see
//! [`pays_on_this_cpu`]).

use crate::dispatch::{self, Tuning};
use std::sync::atomic::{AtomicBool, Ordering};

/// How far ahead a pass prefetches: two rows of 1024 float32. Measured on
/// AMD Zen 5 (family 26) for the norms' statistics pass, 4096 x 1024
/// float32, time / copy time: RMSNorm 1.40 -> 1.20, LayerNorm 1.50 ->
/// 1.10; 2, 4, 6, 12 and 16 KiB were no better.
pub const AHEAD_BYTES: usize = 8192;

/// The prefetch switch ([`enabled`]) as a pass read it before its loop,
/// so that the loop tests a register rather than loading the flag on every
/// step. (Forced on, on AMD Zen 4, against the build before the switch,
/// in two `benches/ab` runs, one of them of the softmax kernels only:
/// 0.93-1.06 but for one cell at 1.14 (two-pass 4096x1024, then 1.01);
/// loading the flag on every step instead measured 1.03-1.08 for softmax
/// in both of its runs.)
#[derive(Clone, Copy)]
pub struct Ahead(bool);

impl Ahead {
    /// The switch as it is now.
    #[inline(always)]
    pub fn current() -> Ahead {
        Ahead(enabled())
    }

    /// Prefetches the cache lines of `bytes` bytes starting
    /// [`AHEAD_BYTES`] after `p` into L1 when the switch was on (x86-64;
    /// elsewhere nothing: the NEON kernels have not been measured with a
    /// prefetch). The pointer is never dereferenced, so it may point
    /// anywhere, past the end of the data included.
    #[inline(always)]
    pub fn fetch<T>(self, p: *const T, bytes: usize) {
        #[cfg(target_arch = "x86_64")]
        if self.0 {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let at = (p as *const i8).wrapping_add(AHEAD_BYTES);
            let mut b = 0;
            while b < bytes {
                // SAFETY: a prefetch is a hint that never faults, whatever the
                // address, and reads nothing the program sees; SSE is baseline
                // on x86-64.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(b)) };
                b += 64;
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (self.0, p, bytes);
    }
}

/// Whether the passes prefetch: set from [`pays_on_this_cpu`] when
/// `dispatch::detected` probes the CPU, which every vector kernel's
/// dispatch does first, or by [`set_enabled`] since (which probes first).
/// A plain flag, with no call on first use, because a call inside a pass
/// makes it save and restore every vector register (all are
/// caller-saved). Relaxed loads: the flag changes nothing but timing, so
/// a pass that sees it change midway is still correct.
static ENABLED: AtomicBool = AtomicBool::new(true);

/// True when the passes issue software prefetches (never off x86-64,
/// where the kernels have none).
#[inline(always)]
pub fn enabled() -> bool {
    cfg!(target_arch = "x86_64") && ENABLED.load(Ordering::Relaxed)
}

/// Turns the software prefetches on or off for every later pass (the
/// results do not change, only the timing). The CPU is probed first, so
/// the probe's default cannot undo this.
pub fn set_enabled(on: bool) {
    crate::dispatch::detected();
    set_from_probe(on);
}

/// The probe's own setting (`dispatch::detected`).
pub(crate) fn set_from_probe(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether software prefetch was measured to pay on this CPU.
///
/// - AMD Zen 4 ([`Tuning::AmdZen4`]): no. Prefetching off against on,
///   float32, AVX-512, same-process A/B (`benches/ab`, medians of 21
///   rounds), one run: softmax 0.87-0.99 (4096x1024 0.92, the 4M row
///   0.87), log_softmax 0.80 (4096x1024), LayerNorm / RMSNorm 0.71 / 0.76
///   (4096x1024), 0.84 / 0.91 (8192x384), 0.87 / 0.80 (65536x64), but
///   1.12 / 1.11 on 64 rows of 30522 (1.10 / 1.29 in another run, where
///   16 such rows took 0.84 / 0.87, and the int8 L1 norm 0.86-0.97 but
///   1.19 on 64 rows of 30522). Other runs that day mostly agreed on the
///   norms and spread more on softmax (8192x384: 0.93 to 1.15). A 2 KiB
///   distance or the `prefetcht1` hint lost to no prefetch on the norms
///   of rows of up to 1024 elements as well.
/// - AMD Zen 5 (family 26) and Intel Emerald Rapids: yes (see
///   [`AHEAD_BYTES`] and the norms' write pass).
/// - Other x86-64 CPUs: not measured; prefetching stays on, as before the
///   switch.
/// - Other targets: false; their kernels have no prefetches.
pub fn pays_on_this_cpu() -> bool {
    cfg!(target_arch = "x86_64") && dispatch::tuning() != Tuning::AmdZen4
}
