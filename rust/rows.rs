//! Running a per-row kernel over a batch of rows, split across threads.
//!
//! The thread count comes from `NORMKIT_NUM_THREADS` (else the number of
//! CPUs), at most [`MAX_THREADS`], and can be changed with
//! [`set_num_threads`]. Small batches run on the calling thread: spreading
//! them costs more than it saves.
//!
//! The calling thread is one of the threads: a parallel call hands work to
//! `threads - 1` pool workers and takes chunks itself from the same counter
//! ([`run_claimed`]). It starts at once, takes on more chunks while a
//! worker is still waking up, and waits for the workers only while they
//! finish a chunk they took. (With rayon's `install` the caller slept while
//! the workers woke up, then waited to be woken itself: on issue 11's
//! 2-CPU virtual machine a two-thread softmax of 64x2048 float32 took
//! 121-134 µs after an idle millisecond, one thread 53-57 µs; see the
//! performance page, round 20.)
//!
//! Fork safety: a child made by `fork()` inherits the pool's handle but not
//! its worker threads, so jobs handed to it would never run (the calling
//! thread would still do every range, but alone). The pool
//! records the id of the process that built it, and the first parallel call
//! in a process with another id builds a fresh pool (the stale one is leaked:
//! its threads do not exist, and its locks may have been held by them at the
//! fork). This costs one `getpid` per parallel call, needs no `libc`
//! dependency and no `pthread_atfork` handler. A fork taken while another
//! thread of the parent was inside [`set_num_threads`] can still leave the
//! child's pool lock held: as with any lock, fork only from a quiet process.

use std::any::Any;
use std::fmt;
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// Below this many elements per call, one thread does all rows.
pub const PARALLEL_MIN_ELEMENTS: usize = 1 << 16;

/// The largest thread count [`set_num_threads`] accepts (and the cap on
/// `NORMKIT_NUM_THREADS`). A fixed bound rather than a multiple of the CPU
/// count, so the same call (e.g. `set_num_threads(os.cpu_count())`) is
/// accepted on every machine, including the largest servers; it is far above
/// any useful count for these memory-bound kernels. Starting 1024 threads
/// took 3 s on a busy 2-core machine (256: 20 ms), against ~40 s for `10**6`.
pub const MAX_THREADS: usize = 1024;

/// Why [`set_num_threads`] refused a thread count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadsError {
    /// The count is outside `1..=MAX_THREADS`.
    OutOfRange(usize),
    /// The operating system would not start the worker threads (the
    /// previous pool stays in use).
    Spawn { threads: usize, reason: String },
}

impl fmt::Display for ThreadsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadsError::OutOfRange(n) => {
                write!(f, "the number of threads must be between 1 and {MAX_THREADS}, got {n}")
            }
            ThreadsError::Spawn { threads, reason } => {
                write!(f, "cannot start the {} worker threads of {threads} threads: {reason}", threads - 1)
            }
        }
    }
}

impl std::error::Error for ThreadsError {}

struct Pool {
    /// The calling thread and `threads - 1` workers.
    threads: usize,
    /// The workers: `None` for one thread, or when the default pool could
    /// not be started.
    pool: Option<Arc<rayon::ThreadPool>>,
    /// The process that built `pool` (see the module notes on fork).
    pid: u32,
}

fn pool() -> &'static RwLock<Pool> {
    static POOL: OnceLock<RwLock<Pool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = default_threads();
        // No pool at all is better than a panic at the first kernel call:
        // if the threads cannot start, every call runs on the caller.
        RwLock::new(build_pool(threads).unwrap_or(Pool { threads: 1, pool: None, pid: std::process::id() }))
    })
}

fn default_threads() -> usize {
    std::env::var("NORMKIT_NUM_THREADS")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(MAX_THREADS)
}

fn build_pool(threads: usize) -> Result<Pool, ThreadsError> {
    let pid = std::process::id();
    if threads <= 1 {
        return Ok(Pool { threads, pool: None, pid });
    }
    let spawn_error = |reason: String| ThreadsError::Spawn { threads, reason };
    // `build` reports a failed spawn as an error; catch_unwind also turns any
    // panic inside rayon into an error, so none can reach the caller.
    let built = std::panic::catch_unwind(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads - 1)
            .thread_name(|i| format!("normkit-{i}"))
            .build()
    })
    .map_err(|_| spawn_error("panic while starting the thread pool".into()))?
    .map_err(|e| spawn_error(e.to_string()))?;
    Ok(Pool { threads, pool: Some(Arc::new(built)), pid })
}

/// Number of threads kernels use for large batches.
pub fn num_threads() -> usize {
    pool().read().unwrap_or_else(|e| e.into_inner()).threads
}

/// Sets the number of threads, `1..=MAX_THREADS`, for later calls. On error
/// nothing changes.
pub fn set_num_threads(threads: usize) -> Result<(), ThreadsError> {
    if !(1..=MAX_THREADS).contains(&threads) {
        return Err(ThreadsError::OutOfRange(threads));
    }
    let mut guard = pool().write().unwrap_or_else(|e| e.into_inner());
    if guard.threads != threads || guard.pid != std::process::id() {
        let fresh = build_pool(threads)?;
        replace_pool(&mut guard, fresh);
    }
    Ok(())
}

/// Installs `fresh`; a pool inherited through fork is leaked, not dropped
/// (dropping signals worker threads that do not exist in this process).
fn replace_pool(slot: &mut Pool, fresh: Pool) {
    let old = std::mem::replace(slot, fresh);
    if old.pid != slot.pid {
        std::mem::forget(old);
    }
}

/// The pool for a parallel call: the current one, rebuilt first if it was
/// built by another process (we are a fork child). `None`: run serially.
fn current_pool() -> Option<Arc<rayon::ThreadPool>> {
    let pid = std::process::id();
    {
        let guard = pool().read().unwrap_or_else(|e| e.into_inner());
        if guard.pid == pid {
            return guard.pool.clone();
        }
    }
    let mut guard = pool().write().unwrap_or_else(|e| e.into_inner());
    if guard.pid != pid {
        // If the threads cannot start in the child, run on the caller (and
        // say so in num_threads).
        let fresh = build_pool(guard.threads).unwrap_or(Pool { threads: 1, pool: None, pid });
        replace_pool(&mut guard, fresh);
    }
    guard.pool.clone()
}

/// Row ranges per thread of a parallel call: several, so that the caller
/// takes on more of them while a worker is still waking up, and no thread
/// waits long for another's last range.
const RANGES_PER_THREAD: usize = 16;

/// A parallel call's ranges hold at least this many elements (unless that
/// leaves fewer ranges than threads), so that a range's own start-up work
/// (e.g. a row pipeline filling) stays small next to it.
const RANGE_MIN_ELEMENTS: usize = 1 << 13;

/// Whether [`for_each_row_range`] spreads a batch of `rows` rows of `cols`
/// elements over the pool (when it has more than one thread).
fn runs_in_parallel(rows: usize, cols: usize) -> bool {
    rows > 1 && rows.saturating_mul(cols) >= PARALLEL_MIN_ELEMENTS
}

/// Calls `work` on disjoint ranges of `0..rows` that together cover it, in
/// parallel when the batch (`rows * cols` elements) is large enough.
pub fn for_each_row_range<F>(rows: usize, cols: usize, work: F)
where
    F: Fn(Range<usize>) + Sync,
{
    let pool = if runs_in_parallel(rows, cols) { current_pool() } else { None };
    match pool {
        Some(pool) => {
            let threads = pool.current_num_threads() + 1;
            let elements = rows.saturating_mul(cols);
            let ranges = (threads * RANGES_PER_THREAD).min(elements / RANGE_MIN_ELEMENTS).max(threads).min(rows);
            let per_range = rows.div_ceil(ranges);
            run_claimed(&pool, rows.div_ceil(per_range), &|k| work(k * per_range..((k + 1) * per_range).min(rows)));
        }
        None => work(0..rows),
    }
}

/// A row of at least this many elements is split into chunks across the
/// pool when the call has fewer rows than threads (see [`split_len`]).
/// Each stage of a split row waits for every chunk, so shorter rows lose
/// more to waking the workers than they gain. Measured on the 2-core
/// AMD EPYC (Zen 3, AVX2) with 2 threads, under a load average of 6 from
/// other jobs (best of 11, split / unsplit time): at 2^16 elements every
/// kernel was slower split (0.12x-0.78x); at 2^18 the two-pass softmax
/// and log-softmax gained up to 1.5x but the norms lost (0.5x); at 2^20
/// the norms were still 0.8x. 2^20 (the "one long row") stands
/// until a measurement on a quiet machine.
pub const SPLIT_MIN_ELEMENTS: usize = 1 << 20;

/// Chunks per thread when a row is split: more than one, so a thread slowed
/// by other work on a shared machine holds up the row by less.
const SPLIT_CHUNKS_PER_THREAD: usize = 4;

/// Chunk lengths are multiples of this many elements (whole cache lines,
/// and whole registers at every level).
const SPLIT_ALIGN: usize = 64;

/// The chunk length to split each row of a call of `rows` rows of `n`
/// elements with on `threads` threads (a call reads [`num_threads`] once
/// and passes it to every block), or `None` when rows are not split: one
/// thread, rows shorter than [`SPLIT_MIN_ELEMENTS`], or at least as many
/// rows as threads (the rows alone then keep every thread busy).
pub fn split_len(threads: usize, rows: usize, n: usize) -> Option<usize> {
    (threads > 1 && rows < threads && n >= SPLIT_MIN_ELEMENTS)
        .then(|| n.div_ceil(threads * SPLIT_CHUNKS_PER_THREAD).next_multiple_of(SPLIT_ALIGN))
}

/// How many of `threads` threads work on a call of `rows` rows of `n`
/// elements: every thread when the kernel splits rows (`splits`) and
/// [`split_len`] splits these, else one per row up to the thread count
/// when the call is large enough to run in parallel
/// ([`for_each_row_range`]), else one.
pub fn call_threads(threads: usize, rows: usize, n: usize, splits: bool) -> usize {
    if splits && split_len(threads, rows, n).is_some() {
        threads
    } else if runs_in_parallel(rows, n) {
        threads.min(rows)
    } else {
        1
    }
}

/// `work` applied to the chunks `k * len .. min((k + 1) * len, n)` that
/// cover `0..n`, in parallel on the pool (serially without one); the
/// results in chunk order, so combining them does not depend on which
/// thread ran which chunk.
pub fn map_chunks<R, F>(n: usize, len: usize, work: F) -> Vec<R>
where
    R: Send,
    F: Fn(Range<usize>) -> R + Sync,
{
    assert!(len > 0, "map_chunks: chunk length 0");
    let chunk = |k: usize| work(k * len..((k + 1) * len).min(n));
    let count = n.div_ceil(len);
    match current_pool().filter(|_| count > 1) {
        Some(pool) => {
            let results: Vec<Mutex<Option<R>>> = (0..count).map(|_| Mutex::new(None)).collect();
            run_claimed(&pool, count, &|k| *lock(&results[k]) = Some(chunk(k)));
            results.into_iter().map(|r| r.into_inner().unwrap_or_else(|e| e.into_inner()).expect("run_claimed ran every chunk")).collect()
        }
        None => (0..count).map(chunk).collect(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Calls `job(k)` once for every `k` in `0..count`, on the calling thread
/// and on up to `count - 1` of `pool`'s workers, each taking the next `k`
/// from one counter until none is left; returns when every call has
/// returned. A panic in any call is raised again here, after the others
/// have finished.
fn run_claimed(pool: &rayon::ThreadPool, count: usize, job: &(dyn Fn(usize) + Sync)) {
    // A raw pointer: the workers' jobs must be 'static, and the closure may
    // be gone by the time a late worker looks at the counter.
    let job: *const (dyn Fn(usize) + Sync + '_) = job;
    // SAFETY: only the lifetime bound of the pointer's type changes (the
    // layout is the same). It is dereferenced only for a k < count taken
    // from `next` (`Claims::run`), and this function neither returns nor
    // unwinds before `Finish` (below) has seen `done` count every such
    // call, so none starts or still runs after `job`'s borrow ends.
    let job = unsafe { std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const (dyn Fn(usize) + Sync + 'static)>(job) };
    let claims = Arc::new(Claims {
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        count,
        job,
        panic: Mutex::new(None),
    });
    // Dropped on every way out of this function, unwinding included: the
    // caller's share of the work and the wait that the SAFETY comment above
    // relies on.
    let finish = Finish(&claims);
    for _ in 0..pool.current_num_threads().min(count.saturating_sub(1)) {
        let claims = Arc::clone(&claims);
        pool.spawn(move || claims.run());
    }
    drop(finish);
    let payload = lock(&claims.panic).take();
    if let Some(payload) = payload {
        panic::resume_unwind(payload);
    }
}

/// The shared state of one [`run_claimed`] call.
struct Claims {
    /// The next k to hand out (it runs past `count` once all are taken).
    next: AtomicUsize,
    /// How many calls of `job` have returned.
    done: AtomicUsize,
    count: usize,
    /// Valid until `done` reaches `count` (see `run_claimed`).
    job: *const (dyn Fn(usize) + Sync),
    /// The first panic of a call of `job`.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

// SAFETY: `job` points to a `Sync` closure, called from several threads
// only while it is alive (see `run_claimed`); the other fields are atomics,
// a Mutex and a count.
unsafe impl Send for Claims {}
// SAFETY: as for `Send`.
unsafe impl Sync for Claims {}

/// On drop: the caller takes every range still left, then waits until the
/// ranges that workers took are done (at most one each is still running).
/// It spins, then yields; it does not sleep, since a range ends within one
/// range's time.
struct Finish<'a>(&'a Claims);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        let claims = self.0;
        claims.run();
        let mut spins = 0u32;
        while claims.done.load(Ordering::Acquire) < claims.count {
            if spins < 1 << 10 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

impl Claims {
    fn run(&self) {
        loop {
            let k = self.next.fetch_add(1, Ordering::Relaxed);
            if k >= self.count {
                return;
            }
            // SAFETY: k < count, so `run_claimed` has not returned and the
            // closure behind `job` is alive (it waits for `done`, which
            // counts this call only after it returns).
            let call = || unsafe { (*self.job)(k) };
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(call)) {
                lock(&self.panic).get_or_insert(payload);
            }
            // Release: the call's writes happen before the caller's Acquire
            // load that sees this count.
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

/// A raw pointer that may cross threads. Users promise that the threads
/// touch disjoint elements (one row range each) and that the memory outlives
/// the call that shares it ([`for_each_row_range`] returns only after every
/// range is done).
#[derive(Debug)]
pub struct SharedPtr<T>(pub *mut T);

impl<T> Clone for SharedPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SharedPtr<T> {}

// SAFETY: a `SharedPtr` is only an address: moving or sharing it between
// threads touches no memory. Every access through it is a raw-pointer
// operation inside an `unsafe` block (or `unsafe fn row`), whose caller must
// guarantee validity and freedom from data races: in this crate each worker
// of `for_each_row_range` reads / writes only the rows of its own disjoint
// range, and the buffers stay alive (borrowed by the binding, with the
// arrays held) until `for_each_row_range` has returned. The impls are not
// bounded on `T: Send` (generic binding code would need the bound spelled
// out everywhere); the element types shared this way are f32, f64 and i8,
// plain data that is Send and Sync.
unsafe impl<T> Send for SharedPtr<T> {}
// SAFETY: as for `Send`: `&SharedPtr` only exposes the address (Copy), and
// concurrent accesses through copies of it are to disjoint rows.
unsafe impl<T> Sync for SharedPtr<T> {}

impl<T> SharedPtr<T> {
    /// Pointer to the first element of `row` for rows `stride` elements apart.
    ///
    /// # Safety
    /// `row * stride` must not overflow `isize`, and the result must stay
    /// inside (or one past the end of) the allocation the pointer came from
    /// (the rules of `<*mut T>::offset`).
    #[inline]
    pub unsafe fn row(self, row: usize, stride: isize) -> *mut T {
        // SAFETY: the caller guarantees the offset stays in the allocation
        // and does not overflow, which is all `offset` requires.
        unsafe { self.0.offset(row as isize * stride) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// The pool is global: tests that change the thread count take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn ranges_cover_every_row_once() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        for threads in [1, 2, 3] {
            set_num_threads(threads).unwrap();
            for rows in [0, 1, 2, 7, 1000] {
                let seen: Vec<AtomicUsize> = (0..rows).map(|_| AtomicUsize::new(0)).collect();
                for_each_row_range(rows, 1 << 12, |r| {
                    for i in r {
                        seen[i].fetch_add(1, Ordering::Relaxed);
                    }
                });
                assert!(seen.iter().all(|c| c.load(Ordering::Relaxed) == 1), "rows={rows}");
            }
        }
        assert_eq!(num_threads(), 3);
    }

    #[test]
    fn parallel_ranges_cover_every_row_once() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        // Miri interprets every spin of a waiting thread: two counts there.
        let counts: &[usize] = if cfg!(miri) { &[2, 3] } else { &[2, 3, 5] };
        for &threads in counts {
            set_num_threads(threads).unwrap();
            // Rows fewer than, as many as and more than the threads, and
            // more than RANGES_PER_THREAD ranges' worth.
            for (rows, cols) in [(2, PARALLEL_MIN_ELEMENTS), (3, PARALLEL_MIN_ELEMENTS), (7, 1 << 14), (1000, 1 << 10)] {
                let seen: Vec<AtomicUsize> = (0..rows).map(|_| AtomicUsize::new(0)).collect();
                let ranges = AtomicUsize::new(0);
                for_each_row_range(rows, cols, |r| {
                    assert!(!r.is_empty());
                    ranges.fetch_add(1, Ordering::Relaxed);
                    for i in r {
                        seen[i].fetch_add(1, Ordering::Relaxed);
                    }
                });
                assert!(seen.iter().all(|c| c.load(Ordering::Relaxed) == 1), "threads={threads} rows={rows}");
                let ranges = ranges.load(Ordering::Relaxed);
                assert!((2..=threads * RANGES_PER_THREAD).contains(&ranges), "{ranges} ranges");
            }
        }
    }

    #[test]
    fn a_busy_worker_does_not_hold_up_a_call() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        set_num_threads(2).unwrap();
        // The only worker waits until the call below has returned: the
        // calling thread must do every range itself.
        // (If the call waited for the worker, it would never return: it runs
        // on a thread of its own, and the test fails after a timeout.)
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started, has_started) = std::sync::mpsc::channel::<()>();
        current_pool().unwrap().spawn(move || {
            let _ = started.send(());
            let _ = wait.recv();
        });
        has_started.recv().unwrap();
        let (finished, has_finished) = std::sync::mpsc::channel::<usize>();
        std::thread::spawn(move || {
            let done = AtomicUsize::new(0);
            for_each_row_range(64, PARALLEL_MIN_ELEMENTS, |r| {
                done.fetch_add(r.len(), Ordering::Relaxed);
            });
            let _ = finished.send(done.load(Ordering::Relaxed));
        });
        let rows = has_finished.recv_timeout(std::time::Duration::from_secs(60));
        release.send(()).unwrap();
        assert_eq!(rows, Ok(64), "the call did not finish while the worker was busy");
    }

    #[test]
    fn a_panic_in_one_range_reaches_the_caller_after_the_others_ran() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        set_num_threads(2).unwrap();
        let rows = 256;
        let seen: Vec<AtomicUsize> = (0..rows).map(|_| AtomicUsize::new(0)).collect();
        let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
            for_each_row_range(rows, PARALLEL_MIN_ELEMENTS, |r| {
                for i in r.clone() {
                    seen[i].fetch_add(1, Ordering::Relaxed);
                }
                assert!(!r.contains(&100), "row 100");
            })
        }));
        let payload = caught.unwrap_err();
        let message = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_default();
        assert!(message.contains("row 100"), "{message}");
        assert!(seen.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        // The pool still runs later calls.
        let done = AtomicUsize::new(0);
        for_each_row_range(rows, PARALLEL_MIN_ELEMENTS, |r| {
            done.fetch_add(r.len(), Ordering::Relaxed);
        });
        assert_eq!(done.load(Ordering::Relaxed), rows);
    }

    #[test]
    fn chunks_cover_the_row_once_in_order() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        for threads in [1, 2, 3] {
            set_num_threads(threads).unwrap();
            for (n, len) in [(0, 5), (1, 1), (10, 3), (10, 10), (10, 64), (1000, 7)] {
                let chunks = map_chunks(n, len, |r| r);
                let flat: Vec<usize> = chunks.iter().cloned().flatten().collect();
                assert_eq!(flat, (0..n).collect::<Vec<_>>(), "n={n} len={len}");
                assert!(chunks.iter().all(|r| !r.is_empty() && r.len() <= len));
            }
        }
    }

    #[test]
    fn rows_split_only_when_fewer_than_threads_and_long() {
        assert_eq!(split_len(1, 1, 1 << 24), None);
        assert_eq!(split_len(2, 2, 1 << 24), None);
        assert_eq!(split_len(2, 1, SPLIT_MIN_ELEMENTS - 1), None);
        let len = split_len(2, 1, (1 << 24) + 3).unwrap();
        assert!(len.is_multiple_of(SPLIT_ALIGN) && ((1 << 24) + 3usize).div_ceil(len) == 2 * SPLIT_CHUNKS_PER_THREAD);
    }

    #[test]
    fn call_threads_counts_the_threads_a_call_keeps_busy() {
        for splits in [false, true] {
            assert_eq!(call_threads(1, 64, 1 << 20, splits), 1);
            assert_eq!(call_threads(1, 1, 1 << 24, splits), 1);
            assert_eq!(call_threads(3, 64, 1 << 20, splits), 3);
            assert_eq!(call_threads(3, 2, 1 << 16, splits), 2);
            assert_eq!(call_threads(2, 4, 1 << 24, splits), 2);
            assert_eq!(call_threads(3, 3, 1 << 24, splits), 3);
            // One thread does a small call.
            assert_eq!(call_threads(3, 2, PARALLEL_MIN_ELEMENTS / 2 - 1, splits), 1);
            assert_eq!(call_threads(3, 2, PARALLEL_MIN_ELEMENTS / 2, splits), 2);
            assert_eq!(call_threads(3, 1, SPLIT_MIN_ELEMENTS - 1, splits), 1);
        }
        // A split row keeps every thread busy; unsplit, one row keeps one
        // and two rows two.
        assert_eq!(call_threads(3, 1, SPLIT_MIN_ELEMENTS, true), 3);
        assert_eq!(call_threads(3, 2, 1 << 24, true), 3);
        assert_eq!(call_threads(3, 1, SPLIT_MIN_ELEMENTS, false), 1);
        assert_eq!(call_threads(3, 2, 1 << 24, false), 2);
    }

    #[test]
    fn thread_counts_out_of_range_are_errors_and_change_nothing() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        set_num_threads(2).unwrap();
        for bad in [0, MAX_THREADS + 1, usize::MAX] {
            assert_eq!(set_num_threads(bad), Err(ThreadsError::OutOfRange(bad)));
            assert_eq!(num_threads(), 2);
        }
        assert!(ThreadsError::OutOfRange(0).to_string().contains("between 1 and 1024"));
    }
}
