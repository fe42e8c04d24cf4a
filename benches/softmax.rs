//! Softmax throughput on one thread: every algorithm on every instruction
//! set, float32 rows of 1K to 64M elements, next to a copy of the same
//! bytes (the memory-bandwidth yardstick of DESIGN.md).
//!
//! Each measurement runs over at least 16M elements (64 MB in, 64 MB out:
//! beyond every cache), cut into rows of the given length, so short rows
//! show per-row costs and long rows the streaming rate. Throughput is
//! reported as bytes read once plus written once per iteration.
//!
//! Rows of 1K also run logsumexp (read once, nothing written) and the
//! fused attention form (scale, bias and mask of the row).
//!
//! `softmax_f32_row16M_threads`: one row of 16M elements with 1 and 2
//! threads, as the binding runs it (with 2, the row is split into chunks
//! across the pool: `rows::split_len`), at the best instruction set.
//!
//! `softmax_f32_in_cache_row4096`: one float32 row of 4096 elements (16 KB
//! in, 16 KB out: both stay in L1 / L2) softmaxed over and over, every
//! algorithm and log_softmax at the best instruction set: the compute cost
//! per element of the passes (the exp + store + sum pass above all)
//! without memory traffic. Criterion reports elements per second.
//!
//! `softmax_f32_short_rows/<n>`: 65536 float32 rows of n = 8, 16, 32 and
//! 64 elements (2 to 16 MiB), softmax (`auto`) and log_softmax of the whole
//! batch as the binding runs it (`softmax_rows`, `log_softmax_rows`), at
//! every instruction set, next to a copy: the per-row costs of the rows
//! kept in registers, where log_softmax's row constant and logarithm show.
//!
//! `cargo bench --bench softmax` (all), or a filter such as
//! `cargo bench --bench softmax -- 'avx512/two_pass'`.

mod common;

use criterion::{criterion_group, BenchmarkGroup, Criterion, Throughput};
use normkit::dispatch;
use normkit::rows;
use normkit::softmax::{self, Algorithm, AutoCall};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;
use std::time::Duration;

const MIN_ELEMENTS: usize = 1 << 24;
const ROW_LENGTHS: [usize; 5] = [1 << 10, 1 << 14, 1 << 18, 1 << 22, 1 << 26];

fn configure<'a>(
    c: &'a mut Criterion,
    len: usize,
    total: usize,
) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(format!("softmax_f32_row{len}"));
    group.throughput(Throughput::Bytes((2 * total * std::mem::size_of::<f32>()) as u64));
    group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    group
}

fn bench(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(7);
    for len in ROW_LENGTHS {
        let total = len.max(MIN_ELEMENTS);
        let x: Vec<f32> = (0..total).map(|_| rng.random_range(-8.0..8.0)).collect();
        let mut y = vec![0f32; total];
        let mut group = configure(c, len, total);
        group.bench_function("copy", |b| b.iter(|| y.copy_from_slice(black_box(&x))));
        for isa in dispatch::available() {
            for algorithm in Algorithm::ALL {
                group.bench_function(format!("{}/{}", isa.name(), algorithm.name()), |b| {
                    b.iter(|| {
                        for (xr, yr) in x.chunks_exact(len).zip(y.chunks_exact_mut(len)) {
                            softmax::softmax(isa, algorithm, black_box(xr), yr);
                        }
                    })
                });
            }
        }
        if len == ROW_LENGTHS[0] {
            let bias: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
            let mask: Vec<bool> = (0..len).map(|i| i % 7 != 0).collect();
            for isa in dispatch::available() {
                group.bench_function(format!("{}/logsumexp", isa.name()), |b| {
                    b.iter(|| x.chunks_exact(len).map(|xr| softmax::logsumexp(isa, black_box(xr))).sum::<f64>())
                });
                group.bench_function(format!("{}/fused_scale_bias_mask", isa.name()), |b| {
                    b.iter(|| {
                        for (xr, yr) in x.chunks_exact(len).zip(y.chunks_exact_mut(len)) {
                            softmax::softmax_fused(isa, Some(Algorithm::ThreePassReload), 0.125, Some(&bias), Some(&mask), black_box(xr), yr);
                        }
                    })
                });
            }
        }
        group.finish();
    }
}

fn split_row(c: &mut Criterion) {
    let n = 1 << 24;
    let mut rng = SmallRng::seed_from_u64(9);
    let x: Vec<f32> = (0..n).map(|_| rng.random_range(-8.0..8.0)).collect();
    let mut y = vec![0f32; n];
    let isa = dispatch::detected();
    let mut group = configure(c, n, n);
    group.throughput(Throughput::Bytes((2 * n * std::mem::size_of::<f32>()) as u64));
    let before = rows::num_threads();
    for threads in [1, 2] {
        rows::set_num_threads(threads).expect("the pool starts");
        let split = rows::split_len(threads, 1, n);
        let auto = Algorithm::auto(AutoCall { len: n, rows: 1, threads: rows::call_threads(threads, 1, n, true) }, 4, isa);
        let algorithms = [("auto", Some(auto)), ("two_pass", Some(Algorithm::TwoPass)), ("log_softmax", None)];
        for (name, algorithm) in algorithms {
            group.bench_function(format!("threads/{isa}/{name}/{threads}"), |b| {
                b.iter(|| {
                    let (xp, yp) = (black_box(&x).as_ptr(), y.as_mut_ptr());
                    // SAFETY: two distinct buffers of n elements.
                    unsafe {
                        match (algorithm, split) {
                            (Some(a), Some(len)) => softmax::softmax_split_raw(isa, a, xp, yp, n, len),
                            (Some(a), None) => softmax::softmax_raw(isa, a, xp, yp, n),
                            (None, Some(len)) => softmax::log_softmax_split_raw(isa, xp, yp, n, len),
                            (None, None) => softmax::log_softmax_raw(isa, xp, yp, n),
                        }
                    }
                })
            });
        }
    }
    rows::set_num_threads(before).expect("the pool starts");
    group.finish();
}

fn in_cache(c: &mut Criterion) {
    let n = 4096;
    let mut rng = SmallRng::seed_from_u64(11);
    let x: Vec<f32> = (0..n).map(|_| rng.random_range(-8.0..8.0)).collect();
    let mut y = vec![0f32; n];
    let isa = dispatch::detected();
    let mut group = c.benchmark_group(format!("softmax_f32_in_cache_row{n}"));
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    for algorithm in Algorithm::ALL {
        group.bench_function(format!("{isa}/{}", algorithm.name()), |b| {
            b.iter(|| softmax::softmax(isa, algorithm, black_box(&x), &mut y))
        });
    }
    group.bench_function(format!("{isa}/log_softmax"), |b| b.iter(|| softmax::log_softmax(isa, black_box(&x), &mut y)));
    group.finish();
}

fn short_rows(c: &mut Criterion) {
    const ROWS: usize = 1 << 16;
    let mut rng = SmallRng::seed_from_u64(13);
    let mut group = c.benchmark_group("softmax_f32_short_rows");
    group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    for n in [8, 16, 32, 64] {
        let x: Vec<f32> = (0..ROWS * n).map(|_| rng.random_range(-8.0..8.0)).collect();
        let mut y = vec![0f32; x.len()];
        group.throughput(Throughput::Bytes((2 * x.len() * std::mem::size_of::<f32>()) as u64));
        group.bench_function(format!("copy/{n}"), |b| b.iter(|| y.copy_from_slice(black_box(&x))));
        for isa in dispatch::available() {
            let auto = Algorithm::auto(AutoCall { len: n, rows: ROWS, threads: 1 }, 4, isa);
            group.bench_function(format!("{isa}/softmax/{n}"), |b| b.iter(|| softmax::softmax_rows(isa, auto, black_box(&x), &mut y, n)));
            group.bench_function(format!("{isa}/log_softmax/{n}"), |b| b.iter(|| softmax::log_softmax_rows(isa, black_box(&x), &mut y, n)));
        }
    }
    group.finish();
}

criterion_group!(benches, bench, split_row, in_cache, short_rows);
common::criterion_main_with_machine!(benches);
