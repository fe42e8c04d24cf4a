//! Running a per-row kernel over a batch of rows, split across threads.
//!
//! The thread count comes from `NORMKIT_NUM_THREADS` (else the number of
//! CPUs) and can be changed with [`set_num_threads`]. Small batches run on
//! the calling thread: spreading them costs more than it saves.

use rayon::prelude::*;
use std::ops::Range;
use std::sync::{Arc, OnceLock, RwLock};

/// Below this many elements per call, one thread does all rows.
pub const PARALLEL_MIN_ELEMENTS: usize = 1 << 16;

struct Pool {
    threads: usize,
    pool: Option<Arc<rayon::ThreadPool>>,
}

fn pool() -> &'static RwLock<Pool> {
    static POOL: OnceLock<RwLock<Pool>> = OnceLock::new();
    POOL.get_or_init(|| RwLock::new(build_pool(default_threads())))
}

fn default_threads() -> usize {
    std::env::var("NORMKIT_NUM_THREADS")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn build_pool(threads: usize) -> Pool {
    let pool = (threads > 1).then(|| {
        let built = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("normkit-{i}"))
            .build();
        Arc::new(built.expect("normkit: cannot start worker threads"))
    });
    Pool { threads, pool }
}

/// Number of threads kernels use for large batches.
pub fn num_threads() -> usize {
    pool().read().unwrap_or_else(|e| e.into_inner()).threads
}

/// Sets the number of threads (at least 1) for later calls.
pub fn set_num_threads(threads: usize) {
    let threads = threads.max(1);
    let mut guard = pool().write().unwrap_or_else(|e| e.into_inner());
    if guard.threads != threads {
        *guard = build_pool(threads);
    }
}

/// Calls `work` on disjoint ranges of `0..rows` that together cover it, in
/// parallel when the batch (`rows * cols` elements) is large enough.
pub fn for_each_row_range<F>(rows: usize, cols: usize, work: F)
where
    F: Fn(Range<usize>) + Sync,
{
    let pool = {
        let guard = pool().read().unwrap_or_else(|e| e.into_inner());
        guard.pool.clone()
    };
    let parallel = rows > 1 && rows.saturating_mul(cols) >= PARALLEL_MIN_ELEMENTS;
    match pool {
        Some(pool) if parallel => {
            let chunks = (pool.current_num_threads() * 4).min(rows);
            let per_chunk = rows.div_ceil(chunks);
            pool.install(|| {
                (0..rows.div_ceil(per_chunk)).into_par_iter().for_each(|c| {
                    work(c * per_chunk..((c + 1) * per_chunk).min(rows));
                })
            });
        }
        _ => work(0..rows),
    }
}

/// A raw pointer that may cross threads. Users promise that the threads
/// touch disjoint elements (one row range each).
#[derive(Debug)]
pub struct SharedPtr<T>(pub *mut T);

impl<T> Clone for SharedPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SharedPtr<T> {}

unsafe impl<T> Send for SharedPtr<T> {}
unsafe impl<T> Sync for SharedPtr<T> {}

impl<T> SharedPtr<T> {
    /// Pointer to the first element of `row` for rows `stride` elements apart.
    ///
    /// # Safety
    /// The result must stay inside the allocation the pointer came from.
    #[inline]
    pub unsafe fn row(self, row: usize, stride: isize) -> *mut T {
        self.0.offset(row as isize * stride)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn ranges_cover_every_row_once() {
        for threads in [1, 2, 3] {
            set_num_threads(threads);
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
}
