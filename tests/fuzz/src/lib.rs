//! Turning fuzzer bytes into kernel inputs, shared by the fuzz targets.
//!
//! Every target reads its input as: a header of choices (which ISA,
//! algorithm, dtype, ...), a row length, an offset into the buffer (so
//! starts are unaligned), a scale, then values. Each value is three bytes:
//! a tag picking either one of the special values (NaN, +-inf, +-0, the
//! extremes of the type, subnormals, the exp overflow / underflow
//! thresholds) or a 16-bit integer times the scale. The row cycles through
//! the decoded values, so a short input still describes a long row.

use normkit::dispatch::{self, Isa};
use normkit::simd::Element;

/// Bytes consumed from the front; zeros once exhausted.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
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

/// Special values of the type (f32 or f64), in f64.
fn specials<T: Element>() -> [f64; 14] {
    let f32_type = T::MANTISSA_DIGITS == 24;
    let (max, min_pos, sub) = if f32_type {
        (f32::MAX as f64, f32::MIN_POSITIVE as f64, 1e-45)
    } else {
        (f64::MAX, f64::MIN_POSITIVE, 5e-324)
    };
    let (exp_max, exp_min) = if f32_type { (88.72, -103.97) } else { (709.78, -745.13) };
    [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, max, -max, min_pos, sub, exp_max, exp_min, max / 2.0, -1e30, 1e-30]
}

/// Scales for the 16-bit values: unit, logits, large, near overflow.
const SCALES: [f64; 6] = [1.0, 30.0, 1e4, 1e-3, 1e30, 1e300];

/// How the row values are drawn.
#[derive(Clone, Copy, Debug)]
pub struct ValueSpec {
    pub scale: f64,
    /// Whether special values may appear.
    pub specials: bool,
}

impl ValueSpec {
    /// Reads a scale byte; `max_scale` caps it (finite-only families).
    pub fn read(r: &mut Reader, specials: bool, max_scale: f64) -> Self {
        let scale = SCALES[r.byte() as usize % SCALES.len()].min(max_scale);
        ValueSpec { scale, specials }
    }
}

/// Decodes the remaining bytes into values of `T`.
pub fn values<T: Element>(r: &mut Reader, spec: ValueSpec) -> Vec<T> {
    let specials = specials::<T>();
    let mut out = Vec::new();
    while !r.is_empty() {
        let tag = r.byte();
        let v = r.u16() as i16 as f64;
        let value = if spec.specials && (tag as usize) < specials.len() {
            specials[tag as usize]
        } else {
            v / 32768.0 * spec.scale
        };
        out.push(T::from_f64(value));
    }
    out
}

/// A buffer of `offset + n` elements whose row `[offset..]` cycles through
/// `vals` (zeros when there are none).
pub fn row_buffer<T: Element>(vals: &[T], offset: usize, n: usize) -> Vec<T> {
    let mut buf = vec![T::ZERO; offset + n];
    if !vals.is_empty() {
        for (i, slot) in buf[offset..].iter_mut().enumerate() {
            *slot = vals[i % vals.len()];
        }
    }
    buf
}

/// True when `a` and `b` are both NaN or within `bound` of each other
/// (equal infinities included).
pub fn close(a: f64, b: f64, bound: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    a == b || (a - b).abs() <= bound
}
