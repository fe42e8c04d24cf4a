//! The software-prefetch switch (`simd::prefetch`): its default is this
//! CPU's measured policy, and it changes no result, only timing. One test,
//! in a binary of its own, because it flips a process-wide flag.

use normkit::dispatch::{self, available};
use normkit::l1norm;
use normkit::norm::{self, Norm};
use normkit::simd::prefetch;
use normkit::softmax::{self, Algorithm};

/// Softmax (every algorithm), log-softmax, logsumexp, the three norms and
/// their fused add forms over `rows x n` float32 inputs, and the int8 L1
/// norm, at every level, as one vector of output bits.
fn outputs(rows: usize, n: usize) -> Vec<u64> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        state >> 40
    };
    let x: Vec<f32> = (0..rows * n).map(|_| next() as f32 / (1u64 << 24) as f32 * 20.0 - 10.0).collect();
    let x8: Vec<i8> = (0..rows * n).map(|_| next() as u8 as i8).collect();
    let mut bits = Vec::new();
    for isa in available() {
        let mut y = vec![0f32; rows * n];
        for algorithm in Algorithm::ALL {
            softmax::softmax_rows(isa, algorithm, &x, &mut y, n);
            bits.extend(y.iter().map(|v| u64::from(v.to_bits())));
        }
        softmax::log_softmax_rows(isa, &x, &mut y, n);
        bits.extend(y.iter().map(|v| u64::from(v.to_bits())));
        bits.extend(x.chunks(n).map(|row| softmax::logsumexp(isa, row).to_bits()));
        let mut sum = vec![0f32; n];
        for kind in Norm::ALL {
            norm::norm_rows(isa, kind, &x, &mut y, n, 1e-5, None, None);
            bits.extend(y.iter().map(|v| u64::from(v.to_bits())));
            norm::add_norm(isa, kind, &x[..n], &x[(rows - 1) * n..], &mut sum, &mut y[..n], 1e-5, None, None);
            bits.extend(sum.iter().chain(&y[..n]).map(|v| u64::from(v.to_bits())));
        }
        let mut y8 = vec![0i8; rows * n];
        l1norm::l1_norm_i8_rows(isa, &x8, &mut y8, n, 1.0, None, None);
        bits.extend(y8.iter().map(|&v| v as u8 as u64));
    }
    bits
}

#[test]
fn the_switch_defaults_to_this_cpus_policy_and_changes_no_result() {
    // The probe, which every kernel's dispatch runs first, sets the default.
    dispatch::detected();
    assert_eq!(prefetch::enabled(), prefetch::pays_on_this_cpu());
    // Off x86-64 nothing prefetches, whatever the switch says.
    let x86 = cfg!(target_arch = "x86_64");
    // The policy: on x86-64 but on AMD Zen 4.
    assert_eq!(prefetch::pays_on_this_cpu(), x86 && dispatch::tuning() != dispatch::Tuning::AmdZen4);
    if !x86 {
        assert_eq!(dispatch::tuning(), dispatch::Tuning::Default);
    }
    // Short rows (in registers), rows around the 8 KiB prefetch distance,
    // and one long row, with tails at every level.
    for (rows, n) in [(9, 5), (33, 64), (17, 384), (5, 2047), (4, 2048), (3, 2049), (2, 16_411), (1, 70_001)] {
        prefetch::set_enabled(true);
        assert_eq!(prefetch::enabled(), x86);
        let on = outputs(rows, n);
        prefetch::set_enabled(false);
        assert!(!prefetch::enabled());
        let off = outputs(rows, n);
        assert!(on == off, "{rows}x{n}: the prefetch switch changed a result");
    }
    prefetch::set_enabled(prefetch::pays_on_this_cpu());
}
