//! Turning fuzzer bytes into kernel inputs, shared by the fuzz targets, and
//! the float64 references of tests/common/reference.rs (one copy, shared
//! with the kernel tests).
//!
//! Every target reads its input through a [`Reader`]: a header of choices
//! (which ISA, algorithm, dtype, ...), a row length, an offset into the
//! buffer (so starts are unaligned), then a [`RowSpec`] (scale, value
//! distribution, density of special values, period) and the values.
//!
//! **Short inputs still give long, varied rows.** When the input's bytes
//! run out, the reader goes on with the bytes of a small PRNG (SplitMix64)
//! seeded from a hash of the whole input. So every byte of an input (the
//! header fields, the first values) is under the fuzzer's control, and the
//! rest of a row of up to 4096 elements is random but a function of the
//! input: libFuzzer's habit of keeping inputs short (its `-len_control`)
//! no longer means short or constant rows, and any mutation of a short
//! input gives a new row. (Before, an 8-byte input cycled one value over
//! the whole row: libFuzzer kept the `norm` target's inputs at 8 bytes for
//! a whole 90 s run.) Constant and periodic rows, which found real bugs,
//! are kept as a choice of the [`RowSpec`].

#[path = "../../common/reference.rs"]
pub mod reference;

use normkit::dispatch::{self, Isa};
use normkit::simd::Float;

/// The input's bytes, then an endless stream of pseudo-random bytes seeded
/// from a hash of the whole input.
pub struct Reader<'a> {
    data: &'a [u8],
    state: u64,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        // FNV-1a over the input (and its length), so that inputs that are
        // prefixes of one another still continue differently.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in data.iter().chain(&(data.len() as u64).to_le_bytes()) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        Reader { data, state: h }
    }

    /// The next input byte, or a pseudo-random one once they are used up.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => (self.next_u64() >> 56) as u8,
        }
    }

    /// SplitMix64 (Steele, Lea, Flood 2014).
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// A value in [-1, 1) from two bytes.
    pub fn unit(&mut self) -> f64 {
        self.u16() as i16 as f64 / 32768.0
    }

    /// A row length in 0..=max from two bytes.
    pub fn length(&mut self, max: usize) -> usize {
        self.u16() as usize % (max + 1)
    }
}

/// The ISAs to compare with the scalar reference: every available one when
/// `choice` is 0, else the one it picks among the available levels.
pub fn isas(choice: u8) -> Vec<Isa> {
    let available = dispatch::available();
    match choice {
        0 => available,
        k => vec![available[k as usize % available.len()]],
    }
}

fn is_f32<T: Float>() -> bool {
    T::MANTISSA_DIGITS == 24
}

/// The largest finite value of the type, in f64.
fn type_max<T: Float>() -> f64 {
    if is_f32::<T>() { f32::MAX as f64 } else { f64::MAX }
}

/// Special values of the type (f32 or f64), in f64: NaN, +-inf, +-0, the
/// extremes, the smallest normal, a subnormal, the exp overflow /
/// underflow thresholds. (With [`special`], which adds one more.)
fn specials<T: Float>() -> [f64; 14] {
    let max = type_max::<T>();
    let (min_pos, sub) = if is_f32::<T>() { (f32::MIN_POSITIVE as f64, 1e-45) } else { (f64::MIN_POSITIVE, 5e-324) };
    let (exp_max, exp_min) = if is_f32::<T>() { (88.72, -103.97) } else { (709.78, -745.13) };
    [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, max, -max, min_pos, sub, exp_max, exp_min, max / 2.0, -1e30, 1e-30]
}

/// Special value number `index % 15` for the 16 bits `bits`: one of
/// [`specials`], or a boundary of exp's range reduction, (k / 2) ln 2 for
/// k = `bits` as i16 (|x| < 11357), rounded to T: the row maximum x there
/// has x log2(e) within rounding of an integer or a half-integer, where a
/// float32 and a float64 computation of round(x log2(e)) can differ (the
/// float32 `online` softmax was off by a factor of 2 there).
fn special(specials: &[f64; 14], index: u8, bits: u16) -> f64 {
    match specials.get(index as usize % 15) {
        Some(&v) => v,
        None => bits as i16 as f64 * HALF_LN2,
    }
}

const HALF_LN2: f64 = std::f64::consts::LN_2 / 2.0;

/// Scales: unit, logits, large, small, near overflow.
const SCALES: [f64; 6] = [1.0, 30.0, 1e4, 1e-3, 1e30, 1e300];

/// Spreads of a centred row relative to its scale, as powers of two: from
/// ordinary to below the float32 / float64 resolution of the mean
/// (near-constant rows, where cancellation and summation drift show).
const SPREADS: [i32; 8] = [-1, -4, -8, -12, -16, -24, -32, -52];

/// How a row's values are drawn.
#[derive(Clone, Copy, Debug)]
pub enum Dist {
    /// scale * U(-1, 1).
    Uniform,
    /// A centre scale * U(-1, 1) plus scale * 2^k * U(-1, 1).
    Centred { k: i32 },
    /// scale * U(-1, 1) * 2^e, e uniform in -30..=30: many magnitudes in
    /// one row.
    Wide,
    /// scale * U(-1, 1) rounded to a multiple of ln(2) / 2: boundaries of
    /// exp's range reduction (see [`special`]) as the row maximum.
    Boundary,
}

/// The row's parameters, two bytes:
/// byte A: bits 0-2 scale ([`SCALES`], capped by the caller), bits 3-4
/// distribution (uniform, centred, wide, boundary), bits 5-7 the spread of
/// a centred row ([`SPREADS`]);
/// byte B: bits 0-1 density of special values (none, ~1/1024, 1/32, 1/4;
/// none when the caller excludes them), bits 2-7 p: for p < 16 the row
/// repeats p + 1 values (p = 0: a constant row), else all are drawn.
#[derive(Clone, Copy, Debug)]
pub struct RowSpec {
    pub scale: f64,
    pub dist: Dist,
    pub density: u8,
    pub period: Option<usize>,
}

impl RowSpec {
    /// Reads the two bytes; `max_scale` caps the scale, `specials: false`
    /// keeps special values out.
    pub fn read(r: &mut Reader, specials: bool, max_scale: f64) -> Self {
        let (a, b) = (r.byte(), r.byte());
        let scale = SCALES[(a & 7) as usize % SCALES.len()].min(max_scale);
        let dist = match (a >> 3) & 3 {
            1 => Dist::Centred { k: SPREADS[(a >> 5) as usize] },
            2 => Dist::Wide,
            3 => Dist::Boundary,
            _ => Dist::Uniform,
        };
        let density = if specials { b & 3 } else { 0 };
        let p = (b >> 2) as usize;
        RowSpec { scale, dist, density, period: (p < 16).then_some(p + 1) }
    }

    /// Whether a value with these tag bits is special.
    fn special(&self, tag: u8, bits: u16) -> bool {
        match self.density {
            0 => false,
            1 => tag == 0 && bits & 3 == 0,
            2 => tag < 8,
            _ => tag < 64,
        }
    }
}

/// `offset` padding elements (zeros) and then a row of `n` values of `T`
/// drawn by `spec` from the reader (three bytes a value: a tag and 16 bits;
/// a fourth picks which special value, when the tag makes it one).
pub fn row_buffer<T: Float>(r: &mut Reader, spec: RowSpec, offset: usize, n: usize) -> Vec<T> {
    let specials = specials::<T>();
    let max = type_max::<T>();
    let centre = spec.scale * r.unit();
    let drawn = spec.period.map_or(n, |p| p.min(n));
    let mut vals = Vec::with_capacity(drawn);
    for _ in 0..drawn {
        let tag = r.byte();
        let bits = r.u16();
        let u = bits as i16 as f64 / 32768.0;
        let v = if spec.special(tag, bits) {
            special(&specials, r.byte(), bits)
        } else {
            let v = match spec.dist {
                Dist::Uniform => spec.scale * u,
                Dist::Centred { k } => centre + spec.scale * (k as f64).exp2() * u,
                Dist::Wide => spec.scale * u * ((tag % 61) as f64 - 30.0).exp2(),
                Dist::Boundary => (spec.scale * u / HALF_LN2).round() * HALF_LN2,
            };
            v.clamp(-max, max)
        };
        vals.push(T::from_f64(v));
    }
    let mut buf = vec![T::ZERO; offset + n];
    for (i, slot) in buf[offset..].iter_mut().enumerate() {
        *slot = vals[i % vals.len()];
    }
    buf
}

/// `count` int8 values from the reader, one byte each, shaped by a shape
/// byte and a centre byte read first. Shape bits 0-1: uniform; the centre
/// plus or minus 2^(bits 4-6) minus 1; extremes (-128, 127, 0, -1); the
/// centre with an outlier in 32. Bits 2-3: 0 repeats the first 1 + (bits
/// 4-7) values (constant and periodic rows), else all are drawn.
pub fn i8_values(r: &mut Reader, count: usize) -> Vec<i8> {
    let shape = r.byte();
    let centre = r.byte() as i8 as i32;
    let spread = (1i32 << ((shape >> 4) & 7)) - 1;
    let drawn = if (shape >> 2) & 3 == 0 { (1 + (shape >> 4) as usize).min(count) } else { count };
    let mut vals = Vec::with_capacity(drawn);
    for _ in 0..drawn {
        let b = r.byte();
        let v = match shape & 3 {
            0 => b as i8,
            1 => (centre + (b as i32 % (2 * spread + 1)) - spread).clamp(-128, 127) as i8,
            2 => [-128, 127, 0, -1][b as usize % 4],
            _ => {
                if b < 8 {
                    r.byte() as i8
                } else {
                    centre as i8
                }
            }
        };
        vals.push(v);
    }
    (0..count).map(|i| vals[i % vals.len().max(1)]).collect()
}
