//! L1 norm throughput on one thread, 4096 x 1024 rows: the int8 kernel on
//! every instruction set (row by row, and as one pipelined batch as the
//! Python binding runs it, plain and with weight + bias), the float32 mode,
//! and copies of the same bytes as the memory-bandwidth baseline.
//!
//! `cargo bench --bench l1norm`; elements/s are reported per benchmark.

mod common;

use criterion::{criterion_group, Criterion, Throughput};
use normkit::dispatch;
use normkit::l1norm;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;
use std::time::Duration;

const ROWS: usize = 4096;
const COLS: usize = 1024;
/// 1 / out_scale for out_scale = 4 / 127 (|z| <= 4 maps to the int8 range).
const GAIN: f32 = 127.0 / 4.0;

fn configure<'a>(c: &'a mut Criterion, name: &str) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements((ROWS * COLS) as u64));
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    group
}

fn bench(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(1);
    let x8: Vec<i8> = (0..ROWS * COLS).map(|_| rng.random_range(-128..=127)).collect();
    let w8: Vec<i8> = (0..COLS).map(|_| rng.random_range(-128..=127)).collect();
    let b8: Vec<i8> = (0..COLS).map(|_| rng.random_range(-128..=127)).collect();
    let xf: Vec<f32> = x8.iter().map(|&v| v as f32 * 0.03).collect();
    let mut y8 = vec![0i8; x8.len()];
    let mut yf = vec![0f32; xf.len()];

    let mut group = configure(c, "l1norm_int8_4096x1024");
    for isa in dispatch::available() {
        group.bench_function(isa.name(), |b| {
            b.iter(|| {
                for (x, y) in x8.chunks_exact(COLS).zip(y8.chunks_exact_mut(COLS)) {
                    l1norm::l1_norm_i8(isa, black_box(x), y, GAIN, None, None);
                }
            })
        });
        group.bench_function(format!("{}_batch", isa.name()), |b| {
            b.iter(|| l1norm::l1_norm_i8_rows(isa, black_box(&x8), &mut y8, COLS, GAIN, None, None))
        });
        group.bench_function(format!("{}_batch_weight_bias", isa.name()), |b| {
            b.iter(|| l1norm::l1_norm_i8_rows(isa, black_box(&x8), &mut y8, COLS, GAIN, Some(&w8), Some(&b8)))
        });
    }
    group.bench_function("copy_int8", |b| b.iter(|| y8.copy_from_slice(black_box(&x8))));
    group.finish();

    let mut group = configure(c, "l1norm_f32_4096x1024");
    for isa in dispatch::available() {
        group.bench_function(isa.name(), |b| {
            b.iter(|| {
                for (x, y) in xf.chunks_exact(COLS).zip(yf.chunks_exact_mut(COLS)) {
                    l1norm::l1_norm_float(isa, black_box(x), y, 1e-5, None, None);
                }
            })
        });
    }
    group.bench_function("copy_f32", |b| b.iter(|| yf.copy_from_slice(black_box(&xf))));
    group.finish();
}

criterion_group!(benches, bench);
common::criterion_main_with_machine!(benches);
