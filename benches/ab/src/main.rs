//! Two builds of the kernels, `build_a` and `build_b`, timed in one process
//! (see run.sh). Arguments: shapes ROWSxCOLS.

use std::time::Instant;

/// A kernel over contiguous float32 rows: (x, y, row length).
type Kernel = dyn Fn(&[f32], &mut [f32], usize);
type Run = Box<Kernel>;

/// The kernels of one build, by name, at the level the environment
/// variable `$var` names (or the best this CPU has).
macro_rules! kernels {
    ($build:ident, $var:expr) => {{
        use $build::dispatch::{self, Isa};
        use $build::norm::{self, Norm};
        use $build::softmax::{self, Algorithm};
        let isa = std::env::var($var).ok().map_or_else(dispatch::detected, |name| Isa::from_name(&name).expect("ISA, ISA_B: scalar, avx2, avx512 or neon"));
        assert!(isa.is_supported(), "{isa} is not supported by this CPU");
        let softmax_with = move |algorithm| -> Run { Box::new(move |x, y, n| softmax::softmax_rows(isa, algorithm, x, y, n)) };
        let norm_of = move |kind| -> Run { Box::new(move |x, y, n| norm::norm_rows(isa, kind, x, y, n, 1e-5, None, None)) };
        let kernels: Vec<(&str, Run)> = vec![
            ("softmax", softmax_with(Algorithm::ThreePassReload)),
            ("two_pass", softmax_with(Algorithm::TwoPass)),
            ("recompute", softmax_with(Algorithm::ThreePassRecompute)),
            ("log_softmax", Box::new(move |x, y, n| softmax::log_softmax_rows(isa, x, y, n))),
            // Compared as float32 (rounded from the float64 result).
            ("logsumexp", Box::new(move |x, y, n| x.chunks(n).zip(y.iter_mut()).for_each(|(row, y)| *y = softmax::logsumexp(isa, row) as f32))),
            ("rms_norm", norm_of(Norm::Rms)),
            ("layer_norm", norm_of(Norm::Layer)),
            // The same bytes as int8 rows of 4 x COLS elements.
            ("l1_norm_i8", Box::new(move |x, y, n| $build::l1norm::l1_norm_i8_rows(isa, as_i8(x), as_i8_mut(y), 4 * n, 1.0, None, None))),
        ];
        (isa, kernels)
    }};
}

/// The bytes of float32 data as int8 (any bit pattern is an int8).
fn as_i8(x: &[f32]) -> &[i8] {
    // SAFETY: i8 has no invalid bit patterns and an alignment of 1; the
    // slice covers exactly the bytes of `x`, borrowed for as long.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast(), 4 * x.len()) }
}

fn as_i8_mut(y: &mut [f32]) -> &mut [i8] {
    // SAFETY: as `as_i8`; the borrow of `y` is exclusive and moves to the
    // returned slice, and any int8 bits are a valid float32 afterwards.
    unsafe { std::slice::from_raw_parts_mut(y.as_mut_ptr().cast(), 4 * y.len()) }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (isa, a) = kernels!(build_a, "ISA");
    // B at another level than A (ISA_B), to compare levels of one build.
    let (isa_b, b) = kernels!(build_b, if std::env::var_os("ISA_B").is_some() { "ISA_B" } else { "ISA" });
    let rounds: usize = std::env::var("ROUNDS").map_or(21, |s| s.parse().expect("ROUNDS: a number"));
    assert!(rounds > 0, "ROUNDS: at least 1");
    let scale: f32 = std::env::var("SCALE").map_or(20.0, |s| s.parse().expect("SCALE: a number"));
    // KERNELS: a comma-separated list of kernel names to time (default: all).
    let only: Option<Vec<String>> = std::env::var("KERNELS").ok().map(|s| s.split(',').map(String::from).collect());
    let mut shapes: Vec<String> = std::env::args().skip(1).collect();
    if shapes.is_empty() {
        shapes = ["16x1024", "4x30522", "64x30522", "4096x1024", "8192x384", "65536x64"].map(String::from).to_vec();
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()));
    let levels = if isa.name() == isa_b.name() { isa.to_string() } else { format!("{isa} (A) and {isa_b} (B)") };
    println!("{} at {levels}, {rounds} rounds; B/A is the median of time(B) / time(A) per round", cpu.unwrap_or_default());
    for shape in shapes {
        let (rows, n) = shape.split_once('x').and_then(|(r, c)| Some((r.parse::<usize>().ok()?, c.parse::<usize>().ok()?))).filter(|&(r, c)| r > 0 && c > 0).expect("shapes are ROWSxCOLS, both above 0");
        let len = rows * n;
        // A fixed LCG: the same inputs for both builds and every run.
        let mut state = 0x853c_49e6_748f_ea9bu64;
        let x: Vec<f32> = (0..len)
            .map(|_| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
            })
            .collect();
        let (mut y, mut y_b) = (vec![0f32; len], vec![0f32; len]);
        let reps = (2_000_000 / len).max(1);
        let time = |f: &Kernel, y: &mut [f32]| {
            let start = Instant::now();
            for _ in 0..reps {
                f(&x, y, n);
                std::hint::black_box(&mut *y);
            }
            start.elapsed().as_secs_f64() / reps as f64
        };
        let copy: Run = Box::new(|x, y, _| y.copy_from_slice(x));
        println!("{rows}x{n}:");
        for ((name, fa), (_, fb)) in a.iter().zip(&b).filter(|((name, _), _)| only.as_ref().is_none_or(|k| k.iter().any(|k| k == name))) {
            fa(&x, &mut y, n);
            fb(&x, &mut y_b, n);
            let outputs = if name == &"logsumexp" { rows } else { len };
            let differ = y[..outputs].iter().zip(&y_b[..outputs]).filter(|(p, q)| p.to_bits() != q.to_bits()).count();
            let (mut ratio, mut per_copy, mut wins) = (vec![], vec![], 0);
            for round in 0..rounds {
                let t_copy = time(&*copy, &mut y);
                let (ta, tb) = if round % 2 == 0 {
                    let ta = time(&**fa, &mut y);
                    (ta, time(&**fb, &mut y))
                } else {
                    let tb = time(&**fb, &mut y);
                    (time(&**fa, &mut y), tb)
                };
                ratio.push(tb / ta);
                per_copy.push(ta / t_copy);
                wins += usize::from(tb < ta);
            }
            println!("  {name:<12} B/A {:.3}  B faster in {wins:>2}/{rounds}  A {:.2}x a copy  outputs differing {differ}/{outputs}", median(ratio), median(per_copy));
        }
    }
}
