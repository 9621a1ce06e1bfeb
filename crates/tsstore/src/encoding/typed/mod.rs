//! The typed body: a plain body (`columns`) with its timestamps and
//! value columns written by type, which zstd then keeps in about half
//! the bytes (docs/BENCHMARKS.md, issue 35).
//!
//! It is the plain body with two of its parts written otherwise, nothing
//! more: `columns::Prepared` writes either form (typing its columns once,
//! `write`), and `unpack` gives back the very same plain body, which the
//! plain reader then parses and checks as ever. So the layout of records
//! (templates, shapes, raw records) and every check made on reading stay
//! one code; only the two parts that gain from types change:
//!
//! - timestamps: the plain body's steps become zig-zag varints of the
//!   change from step to step (delta-of-delta): a steady series is a run
//!   of zero bytes;
//! - value columns: each is written with the codec that suits it
//!   (`column`: numbers as scaled integers, a dictionary, or text).
//!
//! Layout (varints unsigned LEB128, as the plain body):
//!
//! ```text
//! first_ts            i64 LE
//! n                   varint, records (≥ 1)
//! n - 1 × dod         zig-zag varint: step minus the step before (the
//!                     first step minus 0); steps stay ≥ 1
//! templates, shapes, raw column   as in the plain body
//! value columns       per template, per key: a codec byte and its data:
//!   0 TEXT            as in the plain body: lengths, then texts
//!   1 NUMBER          flags (1 forms, 2 scales vary, 4 delta-of-delta,
//!                     8 predicted); with flag 8 the predictor: a mode
//!                     byte (0 values, 1 delta, 2 delta-of-delta, 3
//!                     seasonal, 4 seasonal delta), for 3 and 4 a varint
//!                     lag, and a varint reference (0 none, else 1 + an
//!                     earlier column of the template, both of plain
//!                     numbers) with a zig-zag varint factor in 1/4096ths;
//!                     with flag 1 a form byte per value (0..=13 a number,
//!                     `number::Number::form`; 0xFE `null`; 0xFF a text);
//!                     a scale byte per number (flag 2) or one for all;
//!                     the plane width w (0..=8) and w planes of one byte
//!                     per number of the zig-zagged differences of the
//!                     mantissas (by the predictor, else delta or
//!                     delta-of-delta), lowest first;
//!                     per number with an exponent: varint digits, varint
//!                     value; per text: varint length, bytes
//!   2 DICT            varint d, d lengths, d texts, then a varint index
//!                     per value
//! ```

mod number;
mod predict;
mod read;
mod records;
mod write;

use crate::encoding::split::FrameTemplate;
use crate::encoding::varint::{BodyError, Cursor, put_varint};

use read::ColumnView;
pub(crate) use read::Scratch;
pub(crate) use records::unpack_all;
pub(crate) use write::{TypedColumn, daily_lag, template};

/// Column codecs.
const TEXT: u8 = 0;
const NUMBER: u8 = 1;
const DICT: u8 = 2;

/// `NUMBER` flags: a form byte per value is written (else every value
/// is a plain number); the scale varies (a byte per number, else one);
/// mantissas are delta-of-delta (else delta).
const HAS_FORMS: u8 = 1;
const SCALES_VARY: u8 = 2;
const DELTA_OF_DELTA: u8 = 4;
/// A predictor follows the flags (`predict`); `DELTA_OF_DELTA` is then
/// clear. Written since format version 4.
const PREDICTED: u8 = 8;
const FLAGS: u8 = HAS_FORMS | SCALES_VARY | DELTA_OF_DELTA | PREDICTED;

/// Form bytes of values that are not numbers.
const FORM_NULL: u8 = 0xfe;
const FORM_TEXT: u8 = 0xff;
const _: () = assert!(number::MAX_FORM < FORM_NULL);

/// Most distinct texts a `DICT` column keeps; a column with more is
/// `TEXT` (mostly unique values gain nothing from a dictionary).
const MAX_DICT: usize = 1024;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

/// Appends the typed timestamp steps of `stamps` (strictly increasing)
/// to `out`, with where each record's step ends (`ends[r - 1]`, record
/// r ≥ 1), so that any prefix is one copy.
pub(crate) fn steps(stamps: impl Iterator<Item = i64>, out: &mut Vec<u8>, ends: &mut Vec<usize>) {
    let (mut last, mut last_step) = (None, 0i64);
    for ts in stamps {
        if let Some(last) = last {
            let step = ts.wrapping_sub(last);
            put_varint(out, zigzag(step.wrapping_sub(last_step)));
            ends.push(out.len());
            last_step = step;
        }
        last = Some(ts);
    }
}

/// Reads a typed body's timestamps one after another: each step is the
/// one before plus the next change (delta-of-delta), and must be above 0.
struct Stamps {
    ts: i64,
    step: i64,
}

impl Stamps {
    fn next(&mut self, c: &mut Cursor<'_>) -> Result<i64, BodyError> {
        self.step = self.step.wrapping_add(unzigzag(c.varint()?));
        if self.step <= 0 {
            return Err(BodyError("timestamps do not increase"));
        }
        self.ts = self
            .ts
            .checked_add(self.step)
            .ok_or(BodyError("timestamps do not increase"))?;
        Ok(self.ts)
    }
}

/// A typed body's first part: first timestamp, record count, and every
/// timestamp (each given with its record's place to `each`).
fn stamps(c: &mut Cursor<'_>, mut each: impl FnMut(usize, i64)) -> Result<usize, BodyError> {
    let (ts, n) = crate::encoding::columns::head(c)?;
    each(0, ts);
    let mut stamps = Stamps { ts, step: 0 };
    for k in 1..n {
        each(k, stamps.next(c)?);
    }
    Ok(n)
}

/// A typed body's first part, read as far as `ts`: the record count
/// and `ts`'s place, if a record has it. The steps after it are stepped
/// over unread (a lookup reads half a frame's steps on average).
fn find_stamp(c: &mut Cursor<'_>, ts: i64) -> Result<(usize, Option<usize>), BodyError> {
    let (first, n) = crate::encoding::columns::head(c)?;
    let mut stamps = Stamps { ts: first, step: 0 };
    let mut k = 0;
    while stamps.ts < ts && k + 1 < n {
        stamps.next(c)?;
        k += 1;
    }
    c.skip_varints(n - 1 - k)?;
    Ok((n, (stamps.ts == ts).then_some(k)))
}

/// The part of a body both forms share: templates, shapes and raw
/// column, as `Layout` gives them.
struct Layout<'a> {
    templates: Vec<FrameTemplate<'a>>,
    /// Records per template.
    rows: Vec<usize>,
    /// Per record a byte: its template + 1 (0: raw). A varint in the
    /// format, always one byte: no frame has more than `MAX_TEMPLATES`
    /// (< 0x7f) templates.
    shapes: &'a [u8],
    /// The raw records' lengths (a varint each) and bytes.
    raw_lens: &'a [u8],
    raw: &'a [u8],
    /// Where it starts and ends in the body.
    span: std::ops::Range<usize>,
}

impl<'a> Layout<'a> {
    fn parse(c: &mut Cursor<'a>, n: usize) -> Result<Layout<'a>, BodyError> {
        let start = c.i;
        let t = c.count()?;
        let templates = (0..t)
            .map(|_| FrameTemplate::read(c))
            .collect::<Result<Vec<_>, _>>()?;
        // Counted per template + 1 (0: raw). Folds, not `all`: without
        // an early exit they vectorize.
        let mut counts = vec![0usize; t + 1];
        let shapes = c.bytes(n)?;
        if shapes.iter().fold(0, |a, &b| a | b) >= 0x80 {
            return Err(BodyError("unknown template"));
        }
        if shapes.iter().fold(0, |a, &b| a | (b ^ shapes[0])) == 0 {
            *counts
                .get_mut(usize::from(shapes[0]))
                .ok_or(BodyError("unknown template"))? = n;
        } else {
            for &b in shapes {
                *counts
                    .get_mut(usize::from(b))
                    .ok_or(BodyError("unknown template"))? += 1;
            }
        }
        let lens_at = c.i;
        let total = c.sum_varints(counts[0])?;
        let raw_lens = &c.b[lens_at..c.i];
        let raw = c.bytes(total)?;
        Ok(Layout {
            templates,
            rows: counts.split_off(1),
            shapes,
            raw_lens,
            raw,
            span: start..c.i,
        })
    }

    /// Record `k`'s template + 1 (0: raw), and its row among those.
    fn shape(&self, k: usize) -> (usize, usize) {
        let s = self.shapes[k];
        let row = self.shapes[..k].iter().filter(|&&b| b == s).count();
        (usize::from(s), row)
    }
}

/// Gives back in `out` (cleared) the plain body whose typed form is
/// `typed`, refusing one that would be longer than `max` bytes.
pub(crate) fn unpack(
    typed: &[u8],
    out: &mut Vec<u8>,
    max: usize,
    s: &mut Scratch,
) -> Result<(), BodyError> {
    out.clear();
    let mut c = Cursor { b: typed, i: 0 };
    out.extend_from_slice(typed.get(..8).ok_or(BodyError("truncated timestamp"))?);
    let mut last = 0i64;
    let mut steps = Vec::new();
    let n = stamps(&mut c, |k, ts| {
        if k > 0 {
            put_varint(&mut steps, ts.wrapping_sub(last) as u64);
        }
        last = ts;
    })?;
    put_varint(out, n as u64);
    out.extend_from_slice(&steps);
    let layout = Layout::parse(&mut c, n)?;
    out.extend_from_slice(&typed[layout.span.clone()]);
    let mut earlier = Vec::new();
    for (template, &count) in layout.templates.iter().zip(&layout.rows) {
        earlier.clear();
        for j in 0..template.keys.len() {
            let column = ColumnView::parse(&mut c, count, j)?;
            column.decode(count, out, max.saturating_sub(out.len()), s, &mut earlier)?;
            if out.len() > max {
                return Err(BodyError("typed body unpacks larger than its bound"));
            }
        }
    }
    if c.i != typed.len() {
        return Err(BodyError("bytes after the last column"));
    }
    Ok(())
}

/// The record at `ts` in the typed body `typed`, appended to `out`: the
/// body's record count, and the record's place (`None` if no record has
/// that timestamp). Walks the whole body, as `columns::find` does a plain
/// one, but formats only the record's own values: a lookup by time
/// rebuilds one record of a frame.
pub(crate) fn find(
    typed: &[u8],
    ts: i64,
    out: &mut Vec<u8>,
) -> Result<(usize, Option<usize>), BodyError> {
    let mut c = Cursor { b: typed, i: 0 };
    let (n, found) = find_stamp(&mut c, ts)?;
    let layout = Layout::parse(&mut c, n)?;
    let shape = found.map(|k| layout.shape(k));
    // Every column's parts are found (checking the body); only the
    // record's own template's columns give a value.
    let mut texts = Vec::new();
    let mut ends = Vec::new();
    let mut earlier = Vec::new();
    for (t, (template, &count)) in layout.templates.iter().zip(&layout.rows).enumerate() {
        for j in 0..template.keys.len() {
            let column = ColumnView::parse(&mut c, count, j)?;
            if let Some((s, row)) = shape
                && s == t + 1
            {
                column.value(row, &mut texts, &mut earlier)?;
                ends.push(texts.len());
            }
        }
    }
    if c.i != typed.len() {
        return Err(BodyError("bytes after the last column"));
    }
    match shape {
        Some((0, row)) => out.extend_from_slice(read::nth(layout.raw_lens, layout.raw, row)?),
        Some((s, _)) => {
            let mut values = Vec::with_capacity(ends.len());
            let mut from = 0;
            for &end in &ends {
                values.push(&texts[from..end]);
                from = end;
            }
            layout.templates[s - 1].rebuild(out, &values);
        }
        None => {}
    }
    Ok((n, found))
}

#[cfg(test)]
mod tests;
