//! RMSNorm / LayerNorm / CRMSNorm and the fused residual forms on one
//! thread: every kernel on every instruction set, as the Python binding
//! runs them (one batch of rows), against a copy of the same bytes.
//!
//! * `norm_f32_4096x1024`: the shape of the README targets, with and
//!   without weight (+ bias for LayerNorm).
//! * `norm_f32_rowlen/<kernel>/<isa>/<n>`: 4M elements as rows of n.
//!
//! * `norm_f32_row16M_threads/<kernel>/<isa>/<threads>`: one row of 16M
//!   elements with 1 and 2 threads, as the binding runs it (with 2, the
//!   row is split into chunks across the pool: `rows::split_len`).
//!
//! `cargo bench --bench norm`; bytes/s count one read and one write of the
//! array (the fused forms move twice that).
//!
//! Two yardsticks: `copy` copies x into y; `copy_two` copies x into s and r
//! into y, the four arrays the fused forms read and write. The fused forms
//! are measured against `copy_two`, not twice `copy`, which touches half
//! their bytes: at 16 MiB per array, x and y (32 MiB) can partly stay in a
//! 32 MiB L3 between calls, four arrays (64 MiB) far less. On AMD Zen 4
//! (issue 11, round 44) `copy_two` took 1.30-1.85x twice `copy`.

mod common;

use criterion::{criterion_group, BenchmarkGroup, Criterion, Throughput};
use criterion::measurement::WallTime;
use normkit::dispatch::{self, Isa};
use normkit::norm::{self, Affine, Norm, RowStats};
use normkit::rows;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;
use std::time::Duration;

const ELEMENTS: usize = 4096 * 1024;
const EPS: f64 = 1e-5;

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    group
}

struct Data {
    x: Vec<f32>,
    r: Vec<f32>,
    y: Vec<f32>,
    s: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
}

impl Data {
    fn new(cols: usize) -> Data {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut fill = |len: usize, mean: f32| (0..len).map(|_| mean + rng.random_range(-2.0f32..2.0)).collect::<Vec<_>>();
        Data { x: fill(ELEMENTS, 0.5), r: fill(ELEMENTS, 0.0), y: vec![0.0; ELEMENTS], s: vec![0.0; ELEMENTS], w: fill(cols, 1.0), b: fill(cols, 0.0) }
    }
}

/// The fused forms' yardstick: the same four arrays, x into s and r into y.
fn copy_two(d: &mut Data) {
    d.s.copy_from_slice(black_box(&d.x));
    d.y.copy_from_slice(black_box(&d.r));
}

/// The fused form over every row, as the binding runs it.
fn add_rows(isa: Isa, kind: Norm, d: &mut Data, cols: usize, weight: bool) {
    let w = weight.then_some(&d.w[..]);
    let b = (weight && kind == Norm::Layer).then_some(&d.b[..]);
    let rows = d.x.chunks_exact(cols).zip(d.r.chunks_exact(cols));
    for ((x, r), (s, y)) in rows.zip(d.s.chunks_exact_mut(cols).zip(d.y.chunks_exact_mut(cols))) {
        norm::add_norm(isa, kind, black_box(x), black_box(r), s, y, EPS, w, b);
    }
}

fn norm_rows(isa: Isa, kind: Norm, d: &mut Data, cols: usize, weight: bool) {
    let w = weight.then_some(&d.w[..]);
    let b = (weight && kind == Norm::Layer).then_some(&d.b[..]);
    norm::norm_rows(isa, kind, black_box(&d.x), &mut d.y, cols, EPS, w, b);
}

fn target_shape(c: &mut Criterion) {
    let cols = 1024;
    let mut d = Data::new(cols);
    let mut group = configure(c, "norm_f32_4096x1024");
    group.throughput(Throughput::Bytes((2 * ELEMENTS * 4) as u64));
    group.bench_function("copy", |b| b.iter(|| d.y.copy_from_slice(black_box(&d.x))));
    group.bench_function("copy_two", |b| b.iter(|| copy_two(&mut d)));
    for isa in dispatch::available() {
        for kind in Norm::ALL {
            let name = kind.name();
            group.bench_function(format!("{name}/{isa}"), |b| b.iter(|| norm_rows(isa, kind, &mut d, cols, false)));
            group.bench_function(format!("{name}_affine/{isa}"), |b| b.iter(|| norm_rows(isa, kind, &mut d, cols, true)));
        }
        for kind in [Norm::Rms, Norm::Layer] {
            let name = kind.name();
            group.bench_function(format!("add_{name}_affine/{isa}"), |b| b.iter(|| add_rows(isa, kind, &mut d, cols, true)));
        }
    }
    group.finish();
}

fn row_lengths(c: &mut Criterion) {
    let mut group = configure(c, "norm_f32_rowlen");
    group.throughput(Throughput::Bytes((2 * ELEMENTS * 4) as u64));
    for cols in [64, 256, 1024, 4096, 65536] {
        let mut d = Data::new(cols);
        group.bench_function(format!("copy/{cols}"), |b| b.iter(|| d.y.copy_from_slice(black_box(&d.x))));
        group.bench_function(format!("copy_two/{cols}"), |b| b.iter(|| copy_two(&mut d)));
        for isa in dispatch::available() {
            for kind in Norm::ALL {
                group.bench_function(format!("{}/{isa}/{cols}", kind.name()), |b| b.iter(|| norm_rows(isa, kind, &mut d, cols, true)));
            }
            for kind in [Norm::Rms, Norm::Layer] {
                group.bench_function(format!("add_{}/{isa}/{cols}", kind.name()), |b| b.iter(|| add_rows(isa, kind, &mut d, cols, true)));
            }
        }
    }
    group.finish();
}

fn split_row(c: &mut Criterion) {
    let n = 1 << 24;
    let mut rng = SmallRng::seed_from_u64(9);
    let x: Vec<f32> = (0..n).map(|_| 0.5 + rng.random_range(-2.0f32..2.0)).collect();
    let mut y = vec![0f32; n];
    let isa = dispatch::detected();
    let mut group = configure(c, "norm_f32_row16M_threads");
    group.throughput(Throughput::Bytes((2 * n * 4) as u64));
    let before = rows::num_threads();
    for threads in [1, 2] {
        rows::set_num_threads(threads).expect("the pool starts");
        let split = rows::split_len(threads, 1, n);
        for kind in [Norm::Layer, Norm::Rms] {
            group.bench_function(format!("{}/{isa}/{threads}", kind.name()), |b| {
                b.iter(|| {
                    let (xp, yp) = (black_box(&x).as_ptr(), y.as_mut_ptr());
                    let (affine, stats) = (Affine::NONE, RowStats::NONE);
                    // SAFETY: two distinct buffers of n elements; no affine
                    // or statistics pointers.
                    unsafe {
                        match split {
                            Some(len) => norm::norm_split_raw(isa, kind, xp, yp, n, EPS, affine, stats, len),
                            None => norm::norm_raw(isa, kind, xp, yp, n, EPS, affine, stats),
                        }
                    }
                })
            });
        }
    }
    rows::set_num_threads(before).expect("the pool starts");
    group.finish();
}

criterion_group!(benches, target_shape, row_lengths, split_row);
common::criterion_main_with_machine!(benches);
