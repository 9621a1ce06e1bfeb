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
use super::predict::{self, Candidate, Mode, Predictor};
use super::{
    DELTA_OF_DELTA, DICT, FORM_NULL, FORM_TEXT, HAS_FORMS, MAX_DICT, NUMBER, PREDICTED,
    SCALES_VARY, TEXT, zigzag,
};
use crate::encoding::split::laid::Column;
use crate::encoding::varint::put_varint;

/// A value column in its typed form, for any prefix of its rows.
#[derive(Debug)]
pub(crate) enum TypedColumn {
    /// Written as the plain body has it.
    Text,
    /// Boxed: a number column carries many streams.
    Numbers(Box<Numbers>),
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
    /// The mantissas, kept while the template's columns are typed: a
    /// later column may refer to them.
    values: Vec<i64>,
    predictor: Predictor,
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

/// Types the value columns of one template (all their rows): each by
/// itself, then each number column's predictor chosen (`predict`),
/// referring to an earlier column of plain numbers where that pays.
/// `lag`: the seasonal modes' lag, when the template has every record of
/// a steady series (`daily_lag`).
pub(crate) fn template(plain: &[Column], lag: Option<usize>) -> Vec<TypedColumn> {
    let mut typed: Vec<TypedColumn> = plain.iter().map(TypedColumn::new).collect();
    let mut base = Vec::new();
    let mut norms: Vec<f64> = vec![0.0; typed.len()];
    for j in 0..typed.len() {
        let (before, rest) = typed.split_at_mut(j);
        let TypedColumn::Numbers(n) = &mut rest[0] else {
            continue;
        };
        // References and seasonal lags need a number's place to be its
        // row's: plain numbers on both sides.
        let plain = n.plain_numbers();
        let earlier: Vec<Candidate<'_>> = before
            .iter()
            .enumerate()
            .filter_map(|(column, t)| match t {
                TypedColumn::Numbers(e) if plain && e.plain_numbers() => Some(Candidate {
                    column,
                    values: &e.values,
                    norm: norms[column],
                }),
                _ => None,
            })
            .collect();
        let lag = lag.filter(|_| plain);
        let (predictor, reference) = predict::choose(&n.values, &earlier, lag, &mut base);
        n.finish(predictor, reference);
        if plain {
            norms[j] = predict::norm(&n.values);
        }
    }
    for t in &mut typed {
        if let TypedColumn::Numbers(n) = t {
            n.values = Vec::new();
        }
    }
    typed
}

/// The lag of a day, in records, of a series at a steady pace: three
/// steps in four at least are its first step, which divides a day. Only
/// if two days fit in `rows`: the seasonal modes pay from the second.
pub(crate) fn daily_lag(mut stamps: impl Iterator<Item = i64>, rows: usize) -> Option<usize> {
    const DAY: i64 = 86_400_000_000_000;
    let mut last = stamps.next()?;
    let (mut step, mut same, mut steps) = (None, 0usize, 0usize);
    for ts in stamps {
        let s = ts.wrapping_sub(last);
        last = ts;
        steps += 1;
        match step {
            None => {
                step = Some(s);
                same = 1;
            }
            Some(t) if t == s => same += 1,
            _ => {}
        }
    }
    let step = step.filter(|&s| s > 0 && DAY % s == 0 && same * 4 >= steps * 3)?;
    let lag = usize::try_from(DAY / step).ok()?;
    (lag >= 2 && lag * 2 <= rows).then_some(lag)
}

impl TypedColumn {
    /// Types the column `plain` (all its rows); a number column is
    /// left for `template` to difference.
    fn new(plain: &Column) -> TypedColumn {
        match Numbers::new(plain) {
            Some(n) => TypedColumn::Numbers(Box::new(n)),
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
    /// values are numbers or `null`: its mantissas in `values`, to be
    /// differenced (`finish`).
    fn new(plain: &Column) -> Option<Numbers> {
        let rows = plain.rows();
        let most_texts = rows / 4;
        let mut n = Numbers::default();
        n.values.reserve(rows);
        n.scales.reserve(rows);
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
                    n.values.push(number.mantissa);
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
        if n.values.is_empty() {
            return None;
        }
        if n.scales.iter().any(|&s| s != n.scales[0]) {
            n.flags |= SCALES_VARY;
        } else {
            n.scales.truncate(1);
        }
        n.numbers = n.values.len();
        Some(n)
    }

    /// Whether every value is a plain number: what a reference needs on
    /// both sides (a number's place is then its row's).
    fn plain_numbers(&self) -> bool {
        self.flags & HAS_FORMS == 0
    }

    /// Differences the mantissas by `predictor` (`reference`: the values
    /// of the column it refers to) into byte planes.
    fn finish(&mut self, predictor: Predictor, reference: Option<&[i64]>) {
        self.predictor = predictor;
        if predictor.is_plain() {
            if predictor.mode == Mode::DeltaOfDelta {
                self.flags |= DELTA_OF_DELTA;
            }
        } else {
            self.flags |= PREDICTED;
        }
        let mut differences = self.values.clone();
        predictor.difference(&mut differences, reference);
        let mut widest = 0u64;
        for d in &mut differences {
            *d = zigzag(*d) as i64;
            widest |= *d as u64;
        }
        self.width = (64 - widest.leading_zeros() as usize).div_ceil(8);
        self.planes = Vec::with_capacity(self.width * self.numbers);
        for plane in 0..self.width {
            self.planes
                .extend(differences.iter().map(|&v| (v as u64 >> (8 * plane)) as u8));
        }
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
        if self.flags & PREDICTED != 0 {
            self.predictor.write(out);
        }
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
