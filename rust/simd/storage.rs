//! The element types rows are stored in, and how registers read and write
//! them.
//!
//! The kernels compute in f32 or f64 registers ([`Vector`]). A row in memory
//! holds either that type itself or a 16-bit float computed in f32:
//! bfloat16 (8 exponent bits, 8 significant bits) or IEEE float16 (5 and
//! 11), the `half` crate's [`bf16`] and [`f16`]. Loads widen exactly; stores
//! round once, to nearest with ties to even. NaN stays NaN (made quiet,
//! keeping its sign and leading payload bits), infinities are kept, values
//! beyond the format's range become infinities, and subnormals are kept, not
//! flushed.
//!
//! Each level converts with its own instructions ([`HalfFloats`]: F16C's
//! `vcvtph2ps` / `vcvtps2ph` and integer rounding for bfloat16 on x86-64,
//! `fcvtl` / `fcvtn` and integer rounding on aarch64); the scalar path and
//! the single elements of row heads use the `half` crate. Every one of them
//! maps each f32 to the same 16 bits: the unit tests below compare them over
//! every 16-bit pattern and every f32 (every 251st on aarch64, whose tests
//! run under emulation).
//!
//! AVX-512 BF16's `vcvtneps2bf16` is not used: it treats subnormal inputs
//! as zero, which would make bfloat16 results depend on the CPU, and the
//! integer rounding costs a few instructions on data that is memory-bound.

use super::{Real, Simd, Vector};
use std::fmt::Debug;
use std::ptr;

pub use half::{bf16, f16};

/// The most f32 lanes of any register type (AVX-512).
const MAX_F32_LANES: usize = 16;

/// A type rows are stored in: `f32` and `f64` computed as themselves, the
/// 16-bit [`bf16`] and [`f16`] computed in f32.
pub trait Element: Copy + Send + Sync + Debug + Default + 'static {
    /// The type the kernels compute in.
    type Real: Real;
    /// The register type of `Real` on the instruction set `S`, which loads
    /// and stores this type (and `Real` itself, for buffers of it).
    type Vector<S: Simd>: Storage<Self> + Storage<Self::Real> + Vector<Elem = Self::Real>;

    fn to_real(self) -> Self::Real;
    /// Rounds to nearest, ties to even.
    fn from_real(x: Self::Real) -> Self;
    /// Rounds an f64 (for 16-bit types through f32: a second rounding that
    /// matters only within 2^-13 ulp of a tie).
    fn round_from_f64(x: f64) -> Self;

    /// Runs the scalar reference `f` on one row in the compute type: on the
    /// row itself for f32 and f64; for 16-bit types on an f32 copy of `x`,
    /// which `f` may overwrite and which is rounded once into `y` after
    /// (unless `y` is null: reductions).
    ///
    /// # Safety
    /// `x` must be valid for reading `n` elements and `y`, unless null, for
    /// writing them; they are equal or disjoint. `f` receives pointers valid
    /// for the same and must honour the same aliasing.
    unsafe fn scalar_row<R>(x: *const Self, y: *mut Self, n: usize, f: impl FnOnce(*const Self::Real, *mut Self::Real) -> R) -> R;
}

/// f32 or f64: an [`Element`] that is its own compute type.
pub trait Float: Element<Real = Self> + Real {}

impl Float for f32 {}
impl Float for f64 {}

/// Reads and writes of a register from and to memory holding `M`.
///
/// # Safety
/// Implementations read and write exactly the elements their contracts
/// name, and use only instructions of the register type's feature set.
pub unsafe trait Storage<M>: Vector {
    /// Loads `LANES` elements.
    ///
    /// # Safety
    /// The CPU must have this type's features, and `p` must be valid for
    /// reading `LANES` elements.
    unsafe fn load_from(p: *const M) -> Self;
    /// Loads `n < LANES` elements; the other lanes hold `fill`.
    ///
    /// # Safety
    /// As for [`Storage::load_from`], for `n` elements.
    unsafe fn load_partial_from(p: *const M, n: usize, fill: Self::Elem) -> Self;
    /// Stores all lanes.
    ///
    /// # Safety
    /// `p` must be valid for writing `LANES` elements.
    unsafe fn store_to(self, p: *mut M);
    /// [`Vector::store_stream`] into memory holding `M`: a non-temporal
    /// store where the level has one for `M`, else [`Storage::store_to`].
    ///
    /// # Safety
    /// As for [`Storage::store_to`], and `p` must be aligned to
    /// `LANES * size_of::<M>()` bytes.
    #[inline(always)]
    unsafe fn stream_to(self, p: *mut M) {
        // SAFETY: the caller's contract includes `store_to`'s.
        unsafe { self.store_to(p) }
    }
    /// Stores the first `n < LANES` lanes; nothing else is written.
    ///
    /// # Safety
    /// `p` must be valid for writing `n` elements.
    unsafe fn store_partial_to(self, p: *mut M, n: usize);
    /// One element, widened.
    ///
    /// # Safety
    /// `p` must be valid for reading one element.
    unsafe fn read(p: *const M) -> Self::Elem;
    /// Stores one element, rounded as the register stores round.
    ///
    /// # Safety
    /// `p` must be valid for writing one element.
    unsafe fn write(p: *mut M, v: Self::Elem);
    /// The value `v` has once stored and read back.
    fn as_stored(v: Self::Elem) -> Self::Elem;

    /// `count <= LANES` elements: a full load or a partial one.
    ///
    /// # Safety
    /// As for [`Storage::load_from`], for `count` elements.
    #[inline(always)]
    unsafe fn load_n_from(p: *const M, count: usize, fill: Self::Elem) -> Self {
        if count == Self::LANES {
            // SAFETY: the caller's contract with count = LANES.
            unsafe { Self::load_from(p) }
        } else {
            // SAFETY: the caller's contract with count < LANES.
            unsafe { Self::load_partial_from(p, count, fill) }
        }
    }
    /// Stores the first `count <= LANES` lanes.
    ///
    /// # Safety
    /// As for [`Storage::store_to`], for `count` elements.
    #[inline(always)]
    unsafe fn store_n_to(self, p: *mut M, count: usize) {
        if count == Self::LANES {
            // SAFETY: the caller's contract with count = LANES.
            unsafe { self.store_to(p) }
        } else {
            // SAFETY: the caller's contract with count < LANES.
            unsafe { self.store_partial_to(p, count) }
        }
    }
    /// A short row of `n <= R * LANES` elements in `R` registers: register
    /// c holds elements [c LANES, (c + 1) LANES); lanes past n hold `fill`.
    ///
    /// # Safety
    /// As for [`Storage::load_from`], for `n` elements.
    #[inline(always)]
    unsafe fn load_registers<const R: usize>(p: *const M, n: usize, fill: Self::Elem) -> [Self; R] {
        // SAFETY: the caller's contract: the CPU has this type's features,
        // and elements [start, min(n, start + LANES)) of each register's
        // range below n are readable.
        unsafe {
            let mut regs = [Self::splat(fill); R];
            for (c, r) in regs.iter_mut().enumerate() {
                let start = c * Self::LANES;
                if start < n {
                    *r = Self::load_n_from(p.add(start), (n - start).min(Self::LANES), fill);
                }
            }
            regs
        }
    }
}

/// An f32 register type that converts to and from 16-bit floats, whole
/// registers at a time (`LANES` 16-bit values).
///
/// # Safety
/// As for [`Vector`]: only instructions of the type's feature set, and
/// exactly `LANES` elements read or written. The conversions must agree bit
/// for bit with the `half` crate's (see the module documentation).
pub unsafe trait HalfFloats: Vector<Elem = f32> {
    /// # Safety
    /// The CPU must have this type's features; `p` valid for reading `LANES` values.
    unsafe fn load_bf16(p: *const u16) -> Self;
    /// # Safety
    /// `p` valid for writing `LANES` values.
    unsafe fn store_bf16(self, p: *mut u16);
    /// # Safety
    /// The CPU must have this type's features; `p` valid for reading `LANES` values.
    unsafe fn load_f16(p: *const u16) -> Self;
    /// # Safety
    /// `p` valid for writing `LANES` values.
    unsafe fn store_f16(self, p: *mut u16);
}

macro_rules! native_element {
    ($t:ident, $register:ident) => {
        impl Element for $t {
            type Real = $t;
            type Vector<S: Simd> = S::$register;

            #[inline(always)]
            fn to_real(self) -> $t {
                self
            }
            #[inline(always)]
            fn from_real(x: $t) -> $t {
                x
            }
            #[inline(always)]
            fn round_from_f64(x: f64) -> $t {
                x as $t
            }
            unsafe fn scalar_row<R>(x: *const $t, y: *mut $t, _: usize, f: impl FnOnce(*const $t, *mut $t) -> R) -> R {
                f(x, y)
            }
        }

        // SAFETY: every method is the register type's own load or store,
        // with the same contract.
        unsafe impl<V: Vector<Elem = $t>> Storage<$t> for V {
            #[inline(always)]
            unsafe fn load_from(p: *const $t) -> Self {
                // SAFETY: the caller's contract is `Vector::load`'s.
                unsafe { V::load(p) }
            }
            #[inline(always)]
            unsafe fn load_partial_from(p: *const $t, n: usize, fill: $t) -> Self {
                // SAFETY: the caller's contract is `Vector::load_partial`'s.
                unsafe { V::load_partial(p, n, fill) }
            }
            #[inline(always)]
            unsafe fn store_to(self, p: *mut $t) {
                // SAFETY: the caller's contract is `Vector::store`'s.
                unsafe { self.store(p) }
            }
            #[inline(always)]
            unsafe fn stream_to(self, p: *mut $t) {
                // SAFETY: the caller's contract is `Vector::store_stream`'s.
                unsafe { self.store_stream(p) }
            }
            #[inline(always)]
            unsafe fn store_partial_to(self, p: *mut $t, n: usize) {
                // SAFETY: the caller's contract is `Vector::store_partial`'s.
                unsafe { self.store_partial(p, n) }
            }
            #[inline(always)]
            unsafe fn read(p: *const $t) -> $t {
                // SAFETY: the caller's contract: `p` is valid for reading.
                unsafe { *p }
            }
            #[inline(always)]
            unsafe fn write(p: *mut $t, v: $t) {
                // SAFETY: the caller's contract: `p` is valid for writing.
                unsafe { *p = v }
            }
            #[inline(always)]
            fn as_stored(v: $t) -> $t {
                v
            }
        }
    };
}

native_element!(f32, F32);
native_element!(f64, F64);

macro_rules! half_element {
    ($t:ident, $load:ident, $store:ident) => {
        impl Element for $t {
            type Real = f32;
            type Vector<S: Simd> = S::F32;

            #[inline(always)]
            fn to_real(self) -> f32 {
                self.to_f32()
            }
            #[inline(always)]
            fn from_real(x: f32) -> $t {
                $t::from_f32(x)
            }
            #[inline(always)]
            fn round_from_f64(x: f64) -> $t {
                $t::from_f32(x as f32)
            }
            unsafe fn scalar_row<R>(x: *const $t, y: *mut $t, n: usize, f: impl FnOnce(*const f32, *mut f32) -> R) -> R {
                // SAFETY: the caller's contract: x is valid for reading and
                // y (when not null) for writing n elements.
                unsafe {
                    let mut row: Vec<f32> = (0..n).map(|i| (*x.add(i)).to_f32()).collect();
                    let result = f(row.as_ptr(), row.as_mut_ptr());
                    if !y.is_null() {
                        for (i, &v) in row.iter().enumerate() {
                            *y.add(i) = $t::from_f32(v);
                        }
                    }
                    result
                }
            }
        }

        // SAFETY: full registers go through `HalfFloats`, whose contract
        // covers them; partial ones through local buffers of
        // MAX_F32_LANES >= LANES elements, touching only the `n` elements
        // of memory given.
        unsafe impl<V: HalfFloats> Storage<$t> for V {
            #[inline(always)]
            unsafe fn load_from(p: *const $t) -> Self {
                // SAFETY: the caller's contract; $t is a transparent u16.
                unsafe { V::$load(p.cast()) }
            }
            #[inline(always)]
            unsafe fn load_partial_from(p: *const $t, n: usize, fill: f32) -> Self {
                const { assert!(V::LANES <= MAX_F32_LANES) };
                // SAFETY: the caller's contract: n < LANES elements readable
                // at p; the register is loaded from the local buffer.
                unsafe {
                    let mut lanes = [fill; MAX_F32_LANES];
                    for (i, lane) in lanes.iter_mut().enumerate().take(n) {
                        *lane = (*p.add(i)).to_f32();
                    }
                    V::load(lanes.as_ptr())
                }
            }
            #[inline(always)]
            unsafe fn store_to(self, p: *mut $t) {
                // SAFETY: the caller's contract; $t is a transparent u16.
                unsafe { self.$store(p.cast()) }
            }
            #[inline(always)]
            unsafe fn store_partial_to(self, p: *mut $t, n: usize) {
                const { assert!(V::LANES <= MAX_F32_LANES) };
                // SAFETY: the register's LANES values go to the local buffer,
                // then the first n < LANES of them to p, which the caller
                // vouches for.
                unsafe {
                    let mut lanes = [0u16; MAX_F32_LANES];
                    self.$store(lanes.as_mut_ptr());
                    ptr::copy_nonoverlapping(lanes.as_ptr(), p.cast::<u16>(), n);
                }
            }
            #[inline(always)]
            unsafe fn read(p: *const $t) -> f32 {
                // SAFETY: the caller's contract: `p` is valid for reading.
                unsafe { (*p).to_f32() }
            }
            #[inline(always)]
            unsafe fn write(p: *mut $t, v: f32) {
                // SAFETY: the caller's contract: `p` is valid for writing.
                unsafe { *p = $t::from_f32(v) }
            }
            #[inline(always)]
            fn as_stored(v: f32) -> f32 {
                $t::from_f32(v).to_f32()
            }
        }
    };
}

half_element!(bf16, load_bf16, store_bf16);
half_element!(f16, load_f16, store_f16);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{self, Isa, Kernel};

    /// Rounds the f32 bit patterns `start + k * stride` for k < `count`
    /// to each 16-bit type with full-register stores at one level, and
    /// returns the first disagreement with the `half` crate.
    struct Agree {
        start: u32,
        count: u32,
        stride: u32,
    }

    impl Agree {
        #[inline(always)]
        fn check<M: Element<Real = f32> + PartialEq, V: Storage<M> + Vector<Elem = f32>>(&self, from: fn(f32) -> M, to: fn(M) -> u16) -> Option<String> {
            let mut out = [M::default(); MAX_F32_LANES];
            let mut input = [0.0f32; MAX_F32_LANES];
            for first in (0..self.count).step_by(V::LANES) {
                for (k, v) in input.iter_mut().enumerate().take(V::LANES) {
                    let index = first.wrapping_add(k as u32).min(self.count - 1);
                    *v = f32::from_bits(self.start.wrapping_add(index.wrapping_mul(self.stride)));
                }
                // SAFETY: the token of this level exists (`vector`), and
                // both buffers hold MAX_F32_LANES >= LANES elements.
                unsafe { V::load(input.as_ptr()).store_to(out.as_mut_ptr()) };
                for k in 0..V::LANES {
                    if to(out[k]) != to(from(input[k])) {
                        return Some(format!("{:#010x}: {:#06x} != {:#06x}", input[k].to_bits(), to(out[k]), to(from(input[k]))));
                    }
                }
            }
            None
        }
    }

    impl Kernel for Agree {
        type Output = Option<String>;
        fn scalar(self) -> Option<String> {
            None
        }
        #[inline(always)]
        fn vector<S: Simd>(self, _: S) -> Option<String> {
            let bf = self.check::<bf16, S::F32>(bf16::from_f32, bf16::to_bits);
            bf.or_else(|| self.check::<f16, S::F32>(f16::from_f32, f16::to_bits))
        }
    }

    /// Every 16-bit pattern widened by each level's full-register load.
    struct Widen;

    impl Kernel for Widen {
        type Output = Option<String>;
        fn scalar(self) -> Option<String> {
            None
        }
        #[inline(always)]
        fn vector<S: Simd>(self, _: S) -> Option<String> {
            let patterns: Vec<u16> = (0..=u16::MAX).collect();
            let mut out = [0.0f32; MAX_F32_LANES];
            for chunk in patterns.chunks_exact(S::F32::LANES) {
                for (load, widen) in [
                    (<S::F32 as HalfFloats>::load_bf16 as unsafe fn(*const u16) -> S::F32, (|b| bf16::from_bits(b).to_f32()) as fn(u16) -> f32),
                    (<S::F32 as HalfFloats>::load_f16, |b| f16::from_bits(b).to_f32()),
                ] {
                    // SAFETY: the level's token exists, the chunk holds LANES values.
                    unsafe { load(chunk.as_ptr()).store(out.as_mut_ptr()) };
                    for (k, &b) in chunk.iter().enumerate() {
                        // NaN payloads may differ in the quiet bit (a shift
                        // keeps a signalling NaN as it is, F16C quiets it).
                        let same = if widen(b).is_nan() {
                            out[k].is_nan() && out[k].is_sign_negative() == widen(b).is_sign_negative()
                        } else {
                            out[k].to_bits() == widen(b).to_bits()
                        };
                        if !same {
                            return Some(format!("{b:#06x}: {} != {}", out[k], widen(b)));
                        }
                    }
                }
            }
            None
        }
    }

    /// Every f32 (2^32 values) on every x86-64 vector level, in slices
    /// across threads (about 10 s per level in release builds); every
    /// 251st f32 on other targets, whose tests run under emulation.
    #[test]
    fn vector_conversions_agree_with_half_on_every_f32() {
        use rayon::prelude::*;
        let stride = if cfg!(target_arch = "x86_64") { 1u64 } else { 251 };
        let slices = if cfg!(miri) { 0u64 } else { 256 };
        let per_slice = (1u64 << 32) / stride / 256 + 1;
        for isa in dispatch::available().into_iter().filter(|&isa| isa != Isa::Scalar) {
            assert_eq!(dispatch::run(isa, Widen), None, "{isa}");
            let first = (0..slices).into_par_iter().find_map_first(|k| {
                let start = (k * per_slice * stride) as u32;
                dispatch::run(isa, Agree { start, count: per_slice as u32, stride: stride as u32 })
            });
            assert_eq!(first, None, "{isa}");
        }
    }

    #[test]
    fn special_values_round_as_documented() {
        let cases: [(f32, u16, u16); 8] = [
            (1.0 + f32::EPSILON, 0x3f80, 0x3c00),   // below half an ulp: down
            (1.0 + 2f32.powi(-8), 0x3f80, 0x3c04),  // bfloat16: a tie, to even (down)
            (1.0 + 3.0 * 2f32.powi(-8), 0x3f82, 0x3c0c), // a tie, to even (up)
            (f32::MAX, 0x7f80, 0x7c00),             // beyond the range: inf
            (f32::NEG_INFINITY, 0xff80, 0xfc00),
            (2f32.powi(-24), 0x3380, 0x0001),       // float16's smallest subnormal kept
            (f32::from_bits(1), 0x0000, 0x0000),    // f32 subnormal: bf16 rounds it to 0
            (-0.0, 0x8000, 0x8000),
        ];
        for (x, b, h) in cases {
            assert_eq!(bf16::from_f32(x).to_bits(), b, "{x:e}");
            assert_eq!(f16::from_f32(x).to_bits(), h, "{x:e}");
        }
        assert!(bf16::from_f32(f32::NAN).is_nan() && f16::from_f32(-f32::NAN).is_nan());
        assert_eq!(bf16::from_f32(f32::from_bits(0x0001_8000)).to_bits(), 0x0002); // subnormal tie to even
    }
}
