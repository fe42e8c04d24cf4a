//! bfloat16 and float16 rows against float32 on the same shape (issue 12's
//! targets): 4096 rows of 1024, one thread, every kernel that reads and
//! writes 16-bit floats, on every instruction set, next to a copy of the
//! same bytes of each type.
//!
//! `cargo bench --bench half`; group `half_4096x1024`, functions
//! `<type>/<kernel>/<isa>` and `<type>/copy`.

mod common;

use criterion::{criterion_group, Criterion};
use normkit::dispatch::{self, Isa};
use normkit::norm::{self, Norm};
use normkit::simd::{bf16, f16, Element};
use normkit::softmax::{self, Algorithm, AutoCall};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;
use std::time::Duration;

/// One row's kernel at a level.
type RowKernel<T> = dyn Fn(Isa, &[T], &mut [T]);

const ROWS: usize = 4096;
const COLS: usize = 1024;

/// Benchmarks every kernel on rows stored as `T`.
fn bench_type<T: Element<Real = f32>>(c: &mut Criterion, name: &str) {
    let mut rng = SmallRng::seed_from_u64(7);
    let x: Vec<T> = (0..ROWS * COLS).map(|_| T::from_real(rng.random_range(-4.0f32..4.0))).collect();
    let weight: Vec<f32> = (0..COLS).map(|_| rng.random_range(0.5f32..1.5)).collect();
    let bias: Vec<f32> = (0..COLS).map(|_| rng.random_range(-0.5f32..0.5)).collect();
    let mut y = vec![T::default(); ROWS * COLS];
    let mut group = c.benchmark_group("half_4096x1024");
    group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    group.bench_function(format!("{name}/copy"), |b| b.iter(|| y.copy_from_slice(black_box(&x))));
    for isa in dispatch::available() {
        let rows = |y: &mut [T], f: &RowKernel<T>| {
            for (xr, yr) in x.chunks_exact(COLS).zip(y.chunks_exact_mut(COLS)) {
                f(isa, black_box(xr), yr);
            }
        };
        // The rows run one after another on this thread.
        let auto = Algorithm::auto(AutoCall { len: COLS, rows: x.len() / COLS, threads: 1 }, size_of::<T>(), isa);
        group.bench_function(format!("{name}/softmax/{isa}"), |b| b.iter(|| rows(&mut y, &move |isa, xr, yr| softmax::softmax(isa, auto, xr, yr))));
        group.bench_function(format!("{name}/log_softmax/{isa}"), |b| b.iter(|| rows(&mut y, &|isa, xr, yr| softmax::log_softmax(isa, xr, yr))));
        group.bench_function(format!("{name}/rms_norm/{isa}"), |b| {
            b.iter(|| norm::norm_rows(isa, Norm::Rms, black_box(&x), &mut y, COLS, 1e-5, Some(&weight), None))
        });
        group.bench_function(format!("{name}/layer_norm/{isa}"), |b| {
            b.iter(|| norm::norm_rows(isa, Norm::Layer, black_box(&x), &mut y, COLS, 1e-5, Some(&weight), Some(&bias)))
        });
    }
    group.finish();
}

fn bench(c: &mut Criterion) {
    bench_type::<f32>(c, "f32");
    bench_type::<bf16>(c, "bf16");
    bench_type::<f16>(c, "f16");
}

criterion_group!(benches, bench);
common::criterion_main_with_machine!(benches);
