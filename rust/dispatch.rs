//! Run-time choice of the instruction set.
//!
//! The CPU is probed once; the active level is the best one it has, or the
//! lower one forced through the `NORMKIT_ISA` environment variable. Nothing
//! is compiled with `target-cpu=native`: each level's feature list is
//! written once (`vector_levels!` below), and [`run`] reaches a
//! [`Kernel`]'s vector path through one `#[target_feature]` trampoline per
//! level, only after this module has confirmed the CPU has the features.
//! It also names the CPUs whose measured tuning differs ([`Tuning`]).

use crate::simd::{prefetch, Simd};
use std::fmt;
use std::sync::OnceLock;

/// An instruction-set level, ordered from lowest to highest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust, no intrinsics: every target.
    Scalar,
    /// AVX2 + FMA + F16C (Haswell, Zen 1 and later).
    Avx2,
    /// AVX-512 F + BW + DQ + VL (Skylake-SP, Zen 4 and later), plus AVX2, FMA,
    /// F16C and POPCNT.
    /// The int8 L1 norm also uses VBMI's byte permutes (`vpermt2b`; Ice
    /// Lake, Sapphire Rapids, Zen 4) when the CPU has them, detected at run
    /// time inside this level.
    Avx512,
    /// Advanced SIMD (NEON) on aarch64, where it is the baseline: every
    /// aarch64 CPU has it. The int8 L1 norm also uses the dot-product
    /// instructions (`sdot` / `udot`, Armv8.4, optional from Armv8.2) when
    /// the CPU has them, detected at run time inside this level.
    Neon,
}

impl Isa {
    /// The levels of this target, lowest first (the order of the enum is
    /// only meaningful within one target's list).
    #[cfg(target_arch = "x86_64")]
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];
    #[cfg(target_arch = "aarch64")]
    pub const ALL: [Isa; 2] = [Isa::Scalar, Isa::Neon];
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub const ALL: [Isa; 1] = [Isa::Scalar];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|isa| isa.name() == name.trim().to_ascii_lowercase())
    }

    /// True when this CPU can run kernels of this level (a level of
    /// another target never can).
    pub fn is_supported(self) -> bool {
        Isa::ALL.contains(&self) && self <= detected()
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The best level this CPU supports (probed once). The probe also sets
/// whether the kernels prefetch ([`prefetch::pays_on_this_cpu`]); [`run`]
/// asks for the level before any vector kernel runs.
pub fn detected() -> Isa {
    static DETECTED: OnceLock<Isa> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        prefetch::set_from_probe(prefetch::pays_on_this_cpu());
        probe()
    })
}

/// CPUs on which choices that the instruction set alone does not
/// determine were measured to differ: the software prefetches
/// ([`prefetch::pays_on_this_cpu`]), where softmax's `auto` switches to
/// two-pass (`softmax::Algorithm::auto_for`) and which LayerNorm rows go in
/// blocks at AVX2 (`norm::vector::in_layer_blocks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tuning {
    /// AMD Zen 4: family 25 with AVX-512 enabled (a Zen 4 whose AVX-512 is
    /// hidden, by a hypervisor or the BIOS, cannot be told from Zen 3 this
    /// way and gets [`Tuning::Default`]). The part measured issues one
    /// 512-bit FMA per cycle (issue 11, round 18) and has 32 MiB of L3 per
    /// core complex.
    AmdZen4,
    /// Every other CPU, tuned on AMD Zen 5 and an Intel Xeon (Emerald
    /// Rapids) at AVX-512 and on AMD Zen 3 at AVX2.
    Default,
}

impl Tuning {
    pub fn name(self) -> &'static str {
        match self {
            Tuning::AmdZen4 => "amd_zen4",
            Tuning::Default => "default",
        }
    }
}

/// This CPU's [`Tuning`] (probed once).
pub fn tuning() -> Tuning {
    static TUNING: OnceLock<Tuning> = OnceLock::new();
    *TUNING.get_or_init(|| {
        // Miri cannot run CPUID (inline assembly); it runs the scalar level
        // only, where neither choice applies.
        #[cfg(target_arch = "x86_64")]
        if !cfg!(miri) && std::arch::is_x86_feature_detected!("avx512f") && is_amd_family(0x19) {
            return Tuning::AmdZen4;
        }
        Tuning::Default
    })
}

/// True on an AMD CPU of the given (displayed) family.
#[cfg(target_arch = "x86_64")]
fn is_amd_family(family: u32) -> bool {
    use std::arch::x86_64::__cpuid;
    // `__cpuid` is a safe function in recent Rust (1.95 here) and an
    // unsafe one in older releases within the crate's rust-version.
    // SAFETY: CPUID exists on every x86-64 CPU, and leaves 0 and 1 on
    // every one; it reads no memory.
    #[allow(unused_unsafe)]
    let (vendor, eax) = unsafe { (__cpuid(0), __cpuid(1).eax) };
    let amd = [vendor.ebx, vendor.edx, vendor.ecx] == [0x6874_7541, 0x6974_6e65, 0x444d_4163]; // "AuthenticAMD"
    let base = (eax >> 8) & 0xf;
    let displayed = if base == 0xf { base + ((eax >> 20) & 0xff) } else { base };
    amd && displayed == family
}

/// Every vector level: its [`Isa`], its token type, and its feature list,
/// written once. The list drives both the CPU probe and the
/// `#[target_feature]` trampoline that instantiates kernels for the level.
/// Adding an instruction set is one [`Simd`] impl plus one line here.
macro_rules! vector_levels {
    ($( #[cfg($cfg:meta)] $isa:ident => $token:ty, $detect:ident [$($feature:tt),+]; )+) => {
        /// The best level this CPU has: the highest whose features are all
        /// detected.
        #[allow(unused_mut)] // targets without a vector level never assign
        fn probe() -> Isa {
            let mut best = Isa::Scalar;
            $(
                #[cfg($cfg)]
                if $(std::arch::$detect!($feature))&&+ {
                    best = best.max(Isa::$isa);
                }
            )+
            best
        }

        /// Runs `kernel` at `isa`, which must be supported (checked).
        pub fn run<K: Kernel>(isa: Isa, kernel: K) -> K::Output {
            assert!(isa.is_supported(), "{isa} is not supported by this CPU");
            match isa {
                Isa::Scalar => kernel.scalar(),
                $(
                    #[cfg($cfg)]
                    Isa::$isa => {
                        $( #[target_feature(enable = $feature)] )+
                        #[inline(never)]
                        unsafe fn trampoline<K: Kernel>(kernel: K) -> K::Output {
                            // SAFETY: `run` checked that the CPU has the
                            // level, and so the features of its token.
                            kernel.vector(unsafe { <$token>::new_unchecked() })
                        }
                        // SAFETY: `isa.is_supported()` was asserted above, so
                        // every feature of the trampoline is present.
                        unsafe { trampoline(kernel) }
                    }
                )+
                #[allow(unreachable_patterns)]
                _ => unreachable!("{isa} kernels are not compiled for this target"),
            }
        }
    };
}

vector_levels! {
    #[cfg(target_arch = "x86_64")]
    Avx2 => crate::simd::avx2::Avx2, is_x86_feature_detected ["avx2", "fma", "f16c"];
    #[cfg(target_arch = "x86_64")]
    Avx512 => crate::simd::avx512::Avx512,
        is_x86_feature_detected ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma", "f16c", "popcnt"];
    #[cfg(target_arch = "aarch64")]
    Neon => crate::simd::neon::Neon, is_aarch64_feature_detected ["neon"];
}

/// A computation with one portable path and one path written once over the
/// vector types of any instruction set; [`run`] picks the path for a level.
/// Adding a kernel is one impl of this trait.
///
/// Impls mark `vector` `#[inline(always)]`, and everything it calls down to
/// the intrinsics is `#[inline(always)]` too: the code is compiled with the
/// level's features only where it is inlined into the trampoline. Anything
/// left out of line runs without them, and its intrinsics become function
/// calls (ten times slower or worse); `.ci/check-inlined` fails the build
/// when an intrinsic survives as a symbol.
pub trait Kernel {
    type Output;
    /// The portable path (the scalar reference).
    fn scalar(self) -> Self::Output;
    /// The vector path for the instruction set of `simd`, whose existence
    /// proves the CPU has it.
    fn vector<S: Simd>(self, simd: S) -> Self::Output;
}

/// Every level this CPU supports, lowest first.
pub fn available() -> Vec<Isa> {
    Isa::ALL.into_iter().filter(|isa| isa.is_supported()).collect()
}

/// Why the level requested through `NORMKIT_ISA` cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IsaError {
    Unknown(String),
    Unsupported { requested: Isa, detected: Isa },
}

impl fmt::Display for IsaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IsaError::Unknown(name) => {
                let levels: Vec<String> = Isa::ALL.iter().map(|isa| format!("{:?}", isa.name())).collect();
                write!(f, "NORMKIT_ISA={name:?} is not a level; expected one of {}", levels.join(", "))
            }
            IsaError::Unsupported { requested, detected } => write!(
                f,
                "NORMKIT_ISA={requested} is not supported by this CPU (best available: {detected})"
            ),
        }
    }
}

impl std::error::Error for IsaError {}

/// Parses a requested level against what the CPU has.
pub fn resolve(request: Option<&str>) -> Result<Isa, IsaError> {
    let Some(name) = request.filter(|s| !s.trim().is_empty()) else {
        return Ok(detected());
    };
    let requested = Isa::from_name(name).ok_or_else(|| IsaError::Unknown(name.to_string()))?;
    if requested.is_supported() {
        Ok(requested)
    } else {
        Err(IsaError::Unsupported { requested, detected: detected() })
    }
}

/// The level kernels run at: `NORMKIT_ISA` if set (read once), else [`detected`].
pub fn active() -> Result<Isa, IsaError> {
    static ACTIVE: OnceLock<Result<Isa, IsaError>> = OnceLock::new();
    ACTIVE
        .get_or_init(|| resolve(std::env::var("NORMKIT_ISA").ok().as_deref()))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_named() {
        assert!(Isa::ALL.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(Isa::ALL[0], Isa::Scalar);
        for isa in Isa::ALL {
            assert_eq!(Isa::from_name(isa.name()), Some(isa));
        }
        assert_eq!(Isa::from_name(" SCALAR "), Some(Isa::Scalar));
        assert_eq!(Isa::from_name("sse"), None);
    }

    #[test]
    fn resolve_accepts_supported_and_rejects_the_rest() {
        assert_eq!(resolve(None), Ok(detected()));
        assert_eq!(resolve(Some("")), Ok(detected()));
        assert_eq!(resolve(Some("scalar")), Ok(Isa::Scalar));
        // A level of another target is unknown here, not unsupported.
        let foreign = if cfg!(target_arch = "aarch64") { "avx2" } else { "neon" };
        assert!(matches!(resolve(Some(foreign)), Err(IsaError::Unknown(_))));
        for isa in Isa::ALL {
            let got = resolve(Some(isa.name()));
            if isa <= detected() {
                assert_eq!(got, Ok(isa));
            } else {
                assert!(matches!(got, Err(IsaError::Unsupported { .. })), "{got:?}");
            }
        }
    }

    /// Reports which path and token `run` chose.
    struct WhichLevel;

    impl Kernel for WhichLevel {
        type Output = Isa;
        fn scalar(self) -> Isa {
            Isa::Scalar
        }
        #[inline(always)]
        fn vector<S: Simd>(self, _: S) -> Isa {
            S::ISA
        }
    }

    #[test]
    fn run_reaches_each_available_level_with_its_own_token() {
        for isa in available() {
            assert_eq!(run(isa, WhichLevel), isa);
        }
    }

    #[test]
    fn run_refuses_levels_this_cpu_lacks() {
        let every = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];
        for isa in every.into_iter().filter(|isa| !isa.is_supported()) {
            let refused = std::panic::catch_unwind(|| run(isa, WhichLevel));
            assert!(refused.is_err(), "{isa} ran on a CPU without it");
        }
    }

    /// A level's feature list as `vector_levels!` above writes it.
    fn level_features(level: &str) -> Vec<&'static str> {
        let source = include_str!("dispatch.rs");
        let line = source.find(&format!("\n    {level} => crate::simd::")).expect("the level's line in vector_levels!");
        let rest = &source[line..];
        let list = &rest[rest.find('[').unwrap() + 1..rest.find(']').unwrap()];
        list.split(',').map(|feature| feature.trim().trim_matches('"')).collect()
    }

    /// Kernels that add a feature of their own inside a level (the int8 L1
    /// norm's VBMI write, its dot products on NEON) enable the level's
    /// features again on their `#[target_feature]` function. One left out
    /// would cost only speed (the level's intrinsics below it would no
    /// longer inline), so the lists are compared here, as text (spaces
    /// removed, so any spacing of the attribute is found).
    #[test]
    fn functions_that_extend_a_level_enable_all_of_its_features() {
        let extensions = [("Avx512", include_str!("l1norm/avx512.rs")), ("Neon", include_str!("l1norm/neon.rs"))];
        for (level, source) in extensions {
            let wanted = level_features(level);
            let source: String = source.chars().filter(|c| !c.is_whitespace()).collect();
            let attributes: Vec<&str> = source.split("#[target_feature(enable=\"").skip(1).collect();
            assert!(!attributes.is_empty(), "no #[target_feature] function found for {level}");
            for attribute in attributes {
                let enabled: Vec<&str> = attribute[..attribute.find('"').unwrap()].split(',').collect();
                for feature in &wanted {
                    assert!(enabled.contains(feature), "{level}'s {feature} is not enabled in {enabled:?}");
                }
            }
        }
    }

    #[test]
    fn available_starts_with_scalar_and_ends_with_detected() {
        let levels = available();
        assert_eq!(levels.first(), Some(&Isa::Scalar));
        assert_eq!(levels.last(), Some(&detected()));
    }
}
