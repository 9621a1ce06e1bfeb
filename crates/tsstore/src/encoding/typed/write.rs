//! Writing typed columns: each value column of a `Prepared` body typed
//! once, so that the typed body of any prefix of its records is a few
//! copies, as the plain body's is: `FrameCodec::pack` tries a few prefix
//! lengths per block, and typing is the costly part.
//!
//! Everything a column's codec decides (codec, flags, plane width, the
//! dictionary) is decided over all the rows prepared and holds for any
//! prefix of them: a prefix may carry a dictionary entry or a plane it
//! does not use, never one it lacks.

use std::collections::HashMap;

use super::number::Number;
use super::{
    DELTA_OF_DELTA, DICT, FORM_NULL, FORM_TEXT, HAS_FORMS, MAX_DICT, NUMBER, SCALES_VARY, TEXT,
    zigzag,
};
use crate::encoding::split::laid::Column;
use crate::encoding::varint::put_varint;

/// A value column in its typed form, for any prefix of its rows.
#[derive(Debug)]
pub(crate) enum TypedColumn {
    /// Written as the plain body has it.
    Text,
    Numbers(Numbers),
    Dict(Dict),
}

/// A `NUMBER` column's streams, each for all rows prepared.
#[derive(Debug, Default)]
pub(crate) struct Numbers {
    flags: u8,
    /// A form byte per value (with `HAS_FORMS`).
    forms: Vec<u8>,
    /// A scale per number (with `SCALES_VARY`), else the one scale.
    scales: Vec<u8>,
    /// Zig-zagged differences as byte planes: plane p of the numbers is
    /// `planes[p * numbers..][..numbers]`.
    planes: Vec<u8>,
    width: usize,
    numbers: usize,
    /// The exponents' and the other texts' streams, and where each
    /// value's part ends in them.
    exponents: Vec<u8>,
    exponent_ends: Vec<u32>,
    texts: Vec<u8>,
    text_ends: Vec<u32>,
    /// With `HAS_FORMS`: after each value, how many numbers, exponents
    /// and texts the column has had so far (a prefix's stream lengths).
    counts: Vec<[u32; 3]>,
}

/// A `DICT` column: its distinct texts, and each value's index.
#[derive(Debug, Default)]
pub(crate) struct Dict {
    entries: Vec<u8>,
    indices: Vec<u32>,
}

/// Bits a zig-zagged difference takes: what the choice between delta
/// and delta-of-delta weighs.
fn bits(v: i64) -> u32 {
    64 - (zigzag(v) | 1).leading_zeros()
}

impl TypedColumn {
    /// Types the column `plain` (all its rows).
    pub(crate) fn new(plain: &Column) -> TypedColumn {
        match Numbers::new(plain) {
            Some(n) => TypedColumn::Numbers(n),
            None => Dict::new(plain).map_or(TypedColumn::Text, TypedColumn::Dict),
        }
    }

    /// Writes its first `rows` rows (`plain`: the column it was made of).
    pub(crate) fn write(&self, rows: usize, plain: &Column, out: &mut Vec<u8>) {
        match self {
            TypedColumn::Text => {
                out.push(TEXT);
                plain.write(rows, out);
            }
            TypedColumn::Numbers(n) => n.write(rows, out),
            TypedColumn::Dict(d) => d.write(rows, out),
        }
    }
}

impl Numbers {
    /// The number column of `plain`, if at least three quarters of its
    /// values are numbers or `null`.
    fn new(plain: &Column) -> Option<Numbers> {
        let rows = plain.rows();
        let most_texts = rows / 4;
        let mut n = Numbers::default();
        let mut mantissas = Vec::with_capacity(rows);
        n.scales.reserve(rows);
        // Sizes of both differencings: steady ramps (counters, clocks)
        // are near zero as delta-of-delta, wandering readings as delta.
        let (mut delta, mut dod) = (0u64, 0u64);
        let (mut last, mut last_step) = (0i64, 0i64);
        let mut count = [0u32; 3];
        for (i, v) in plain.values().enumerate() {
            let form = match Number::parse(v) {
                Some(number) => {
                    if number.has_exponent() {
                        put_varint(&mut n.exponents, u64::from(number.exponent.0));
                        put_varint(&mut n.exponents, number.exponent.1);
                        n.exponent_ends.push(n.exponents.len() as u32);
                        count[1] += 1;
                    }
                    n.scales.push(number.scale);
                    let step = number.mantissa.wrapping_sub(last);
                    delta += u64::from(bits(step));
                    dod += u64::from(bits(step.wrapping_sub(last_step)));
                    (last, last_step) = (number.mantissa, step);
                    mantissas.push(number.mantissa);
                    count[0] += 1;
                    number.form
                }
                None if v == b"null" => FORM_NULL,
                None => {
                    if count[2] as usize >= most_texts {
                        return None;
                    }
                    put_varint(&mut n.texts, v.len() as u64);
                    n.texts.extend_from_slice(v);
                    n.text_ends.push(n.texts.len() as u32);
                    count[2] += 1;
                    FORM_TEXT
                }
            };
            // Forms and counts are kept from the first value that needs
            // them, the plain numbers before it filled in.
            if form != 0 && n.flags & HAS_FORMS == 0 {
                n.flags |= HAS_FORMS;
                n.forms = vec![0; i];
                n.counts = (1..=i as u32).map(|k| [k, 0, 0]).collect();
            }
            if n.flags & HAS_FORMS != 0 {
                n.forms.push(form);
                n.counts.push(count);
            }
        }
        if mantissas.is_empty() {
            return None;
        }
        if n.scales.iter().any(|&s| s != n.scales[0]) {
            n.flags |= SCALES_VARY;
        } else {
            n.scales.truncate(1);
        }
        if dod < delta {
            n.flags |= DELTA_OF_DELTA;
        }
        let (mut last, mut last_step) = (0i64, 0i64);
        let mut widest = 0u64;
        for m in &mut mantissas {
            let step = m.wrapping_sub(last);
            let put = if n.flags & DELTA_OF_DELTA != 0 {
                step.wrapping_sub(last_step)
            } else {
                step
            };
            (last, last_step) = (*m, step);
            *m = zigzag(put) as i64;
            widest |= *m as u64;
        }
        n.numbers = mantissas.len();
        n.width = (64 - widest.leading_zeros() as usize).div_ceil(8);
        n.planes = Vec::with_capacity(n.width * n.numbers);
        for plane in 0..n.width {
            n.planes
                .extend(mantissas.iter().map(|&v| (v as u64 >> (8 * plane)) as u8));
        }
        Some(n)
    }

    /// Writes its first `rows` values: flags, forms, scales, planes,
    /// exponents, texts (see `typed`).
    fn write(&self, rows: usize, out: &mut Vec<u8>) {
        let [numbers, exponents, texts] = if self.flags & HAS_FORMS != 0 {
            rows.checked_sub(1).map_or([0; 3], |r| self.counts[r])
        } else {
            [rows as u32, 0, 0]
        }
        .map(|c| c as usize);
        out.push(NUMBER);
        out.push(self.flags);
        if self.flags & HAS_FORMS != 0 {
            out.extend_from_slice(&self.forms[..rows]);
        }
        if self.flags & SCALES_VARY != 0 {
            out.extend_from_slice(&self.scales[..numbers]);
        } else {
            out.extend_from_slice(&self.scales);
        }
        out.push(self.width as u8);
        for plane in 0..self.width {
            let start = plane * self.numbers;
            out.extend_from_slice(&self.planes[start..start + numbers]);
        }
        let end = |ends: &[u32], k: usize| k.checked_sub(1).map_or(0, |k| ends[k] as usize);
        out.extend_from_slice(&self.exponents[..end(&self.exponent_ends, exponents)]);
        out.extend_from_slice(&self.texts[..end(&self.text_ends, texts)]);
    }
}

impl Dict {
    /// The dictionary of `plain`, if few of its values are distinct.
    fn new(plain: &Column) -> Option<Dict> {
        let rows = plain.rows();
        let limit = MAX_DICT.min(rows / 2);
        let mut index: HashMap<&[u8], u32> = HashMap::new();
        let mut order: Vec<&[u8]> = Vec::new();
        let mut indices = Vec::with_capacity(rows);
        for v in plain.values() {
            let i = match index.get(v) {
                Some(&i) => i,
                None => {
                    if order.len() >= limit {
                        return None;
                    }
                    index.insert(v, order.len() as u32);
                    order.push(v);
                    order.len() as u32 - 1
                }
            };
            indices.push(i);
        }
        let mut entries = Vec::new();
        put_varint(&mut entries, order.len() as u64);
        for v in &order {
            put_varint(&mut entries, v.len() as u64);
        }
        for v in &order {
            entries.extend_from_slice(v);
        }
        Some(Dict { entries, indices })
    }

    fn write(&self, rows: usize, out: &mut Vec<u8>) {
        out.push(DICT);
        out.extend_from_slice(&self.entries);
        for &i in &self.indices[..rows] {
            put_varint(out, u64::from(i));
        }
    }
}
