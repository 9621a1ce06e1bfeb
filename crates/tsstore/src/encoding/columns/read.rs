//! Reading a body back: all of it (`BodyView`, `decode`) or only what
//! one record needs (`find`), checking it as it goes.

use crate::encoding::split::{FrameTemplate, closing};
use crate::encoding::varint::{BodyError, Cursor};

/// A parsed body: where every piece of every record lies, so that one
/// record can be rebuilt without the others (a lookup by time rebuilds
/// one; an iterator all of them).
#[derive(Debug)]
pub struct BodyView<'a> {
    body: &'a [u8],
    stamps: Vec<i64>,
    /// Per record: its template + 1 (0: raw) and its row among those.
    shapes: Vec<(u32, u32)>,
    templates: Vec<TemplateView>,
    /// Where the raw records start, and one more offset.
    raw: Vec<usize>,
}

/// One template's records: the text around their values and where the
/// values lie in the body.
#[derive(Debug)]
struct TemplateView {
    separators: Separators,
    /// `[key * (rows + 1) + row]`: where its records' values start; a
    /// key's column ends its values with one more offset.
    values: Vec<usize>,
    rows: usize,
}

/// What a rebuilt record of one template holds around its values: its
/// k + 1 separators one after another (`{"k1":`, `,"k2":`, …, `}`; `{}`
/// alone without keys), then `SLACK` zeros so that `put_piece` may read
/// past the last. Shared by both rebuilds (`BodyView::unpack` and the
/// typed body's `unpack_records`).
#[derive(Debug)]
pub(crate) struct Separators {
    text: Vec<u8>,
    /// Where each separator starts in `text`, and one more offset.
    bounds: Vec<usize>,
}

impl Separators {
    pub(crate) fn new(template: &FrameTemplate<'_>) -> Separators {
        let keys = &template.keys;
        let mut text = Vec::with_capacity(keys.iter().map(|k| k.len() + 6).sum::<usize>() + SLACK);
        let mut bounds = Vec::with_capacity(keys.len() + 2);
        bounds.push(0);
        for (j, key) in keys.iter().enumerate() {
            template.separator(&mut text, j, key);
            bounds.push(text.len());
        }
        text.extend_from_slice(closing(keys.len()));
        bounds.push(text.len());
        text.resize(text.len() + SLACK, 0);
        Separators { text, bounds }
    }

    /// The template's key count.
    pub(crate) fn keys(&self) -> usize {
        self.bounds.len() - 2
    }

    /// Bytes of separators in each record.
    pub(crate) fn fixed(&self) -> usize {
        self.text.len() - SLACK
    }

    /// Writes separator `j` (the closing one: `j == keys()`) into `dst`
    /// at `at`; returns where it ends.
    #[inline(always)]
    pub(crate) fn put(&self, dst: &mut [u8], at: usize, j: usize) -> usize {
        let (from, to) = (self.bounds[j], self.bounds[j + 1]);
        put_piece(dst, at, &self.text, from, to - from)
    }
}

/// Bytes a rebuild may read and write past a piece (`put_piece`).
pub(crate) const SLACK: usize = 32;

/// Copies `src[from..from + len]` to `dst[at..]`; returns where it ends.
/// A rebuilt record is many short pieces (a key's separator, a number's
/// text): one fixed-size move of 16 or 32 bytes, when both sides have
/// them, costs a fraction of a call to `memcpy`. What it writes past the
/// piece is overwritten by the next one or cut off at the end.
#[inline(always)]
pub(crate) fn put_piece(dst: &mut [u8], at: usize, src: &[u8], from: usize, len: usize) -> usize {
    if len <= 16
        && let (Some(d), Some(s)) = (chunk_mut::<16>(dst, at), chunk::<16>(src, from))
    {
        *d = *s;
    } else if len <= SLACK
        && let (Some(d), Some(s)) = (chunk_mut::<SLACK>(dst, at), chunk::<SLACK>(src, from))
    {
        *d = *s;
    } else {
        dst[at..at + len].copy_from_slice(&src[from..from + len]);
    }
    at + len
}

/// `N` bytes of `b` from `at`, as an array (a move of a known size).
#[inline(always)]
fn chunk<const N: usize>(b: &[u8], at: usize) -> Option<&[u8; N]> {
    b.get(at..)?.first_chunk::<N>()
}

#[inline(always)]
fn chunk_mut<const N: usize>(b: &mut [u8], at: usize) -> Option<&mut [u8; N]> {
    b.get_mut(at..)?.first_chunk_mut::<N>()
}

impl TemplateView {
    fn new(template: &FrameTemplate<'_>, values: Vec<usize>, rows: usize) -> TemplateView {
        TemplateView {
            separators: Separators::new(template),
            values,
            rows,
        }
    }

    /// Where key `j`'s value of `row` lies in the body.
    fn value(&self, j: usize, row: usize) -> (usize, usize) {
        let at = j * (self.rows + 1) + row;
        (self.values[at], self.values[at + 1] - self.values[at])
    }

    /// Bytes of values in all its records.
    fn value_bytes(&self) -> usize {
        (0..self.separators.keys())
            .map(|j| {
                self.values[j * (self.rows + 1) + self.rows] - self.values[j * (self.rows + 1)]
            })
            .sum()
    }

    /// Rebuilds record `row` into `dst` at `at` (with `SLACK` to spare).
    fn put(&self, dst: &mut [u8], mut at: usize, body: &[u8], row: usize) -> usize {
        let keys = self.separators.keys();
        for j in 0..keys {
            at = self.separators.put(dst, at, j);
            let (v, len) = self.value(j, row);
            at = put_piece(dst, at, body, v, len);
        }
        self.separators.put(dst, at, keys)
    }

    fn record_len(&self, row: usize) -> usize {
        let keys = self.separators.keys();
        self.separators.fixed() + (0..keys).map(|j| self.value(j, row).1).sum::<usize>()
    }
}

/// Every record of a body rebuilt: what a range hands out, and what the
/// frame cache keeps of a frame read more than once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unpacked {
    pub stamps: Vec<i64>,
    /// Where each record's payload ends in `payloads`; each starts where
    /// the one before ends.
    pub ends: Vec<usize>,
    pub payloads: Vec<u8>,
}

impl Unpacked {
    pub fn len(&self) -> usize {
        self.stamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stamps.is_empty()
    }

    /// Record `i`'s payload.
    pub fn payload(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.payloads[start..self.ends[i]]
    }

    /// Bytes it holds (for the frame cache's budget).
    pub fn held_bytes(&self) -> usize {
        self.payloads.len() + self.stamps.len() * 16
    }
}

/// Reads a body front to back, checking it as it goes: timestamps,
/// templates, shapes, then columns. `BodyView::parse` keeps all of it;
/// `find` only what one record needs.
struct Walk<'a> {
    c: Cursor<'a>,
    n: usize,
}

/// A body's first two parts, plain or typed: its first timestamp and its
/// record count (at least one).
pub(crate) fn head(c: &mut Cursor<'_>) -> Result<(i64, usize), BodyError> {
    let first = i64::from_le_bytes(
        c.bytes(8)?
            .try_into()
            .map_err(|_| BodyError("truncated timestamp"))?,
    );
    let n = c.count()?;
    if n == 0 {
        return Err(BodyError("no records"));
    }
    Ok((first, n))
}

impl<'a> Walk<'a> {
    /// Reads every timestamp, giving each with its record's place.
    fn stamps(body: &'a [u8], mut each: impl FnMut(usize, i64)) -> Result<Walk<'a>, BodyError> {
        let mut c = Cursor { b: body, i: 0 };
        let (mut ts, n) = head(&mut c)?;
        each(0, ts);
        // A step written with the same bytes as the one before is the
        // same step (a varint ends at its first byte below 0x80): regular
        // series repeat one step, read once.
        let (mut step, mut step_bytes) = (0i64, 0..0);
        for k in 1..n {
            let same = !step_bytes.is_empty() && c.b[c.i..].starts_with(&c.b[step_bytes.clone()]);
            if same {
                c.i += step_bytes.len();
            } else {
                let at = c.i;
                step = match i64::try_from(c.varint()?) {
                    Ok(d) if d > 0 => d,
                    _ => return Err(BodyError("timestamps do not increase")),
                };
                step_bytes = at..c.i;
            }
            ts = ts
                .checked_add(step)
                .ok_or(BodyError("timestamps do not increase"))?;
            each(k, ts);
        }
        Ok(Walk { c, n })
    }

    /// The templates.
    fn templates(&mut self) -> Result<Vec<FrameTemplate<'a>>, BodyError> {
        let t = self.c.count()?;
        (0..t).map(|_| FrameTemplate::read(&mut self.c)).collect()
    }

    /// Reads every record's shape, giving each with its place and its row
    /// among the records of that shape; returns the rows per template
    /// and the raw records' count.
    fn shapes(
        &mut self,
        templates: usize,
        mut each: impl FnMut(usize, u32, u32),
    ) -> Result<(Vec<usize>, usize), BodyError> {
        let mut rows = vec![0usize; templates];
        let mut raw = 0;
        for k in 0..self.n {
            let s = self.c.count()?;
            let counter = match s.checked_sub(1) {
                None => &mut raw,
                Some(t) => rows.get_mut(t).ok_or(BodyError("unknown template"))?,
            };
            *counter += 1;
            each(k, s as u32, *counter as u32 - 1);
        }
        Ok((rows, raw))
    }

    /// The `count` lengths that start a column, if each is one byte (the
    /// common case: values shorter than 128 bytes), skipped.
    fn short_lengths(&mut self, count: usize) -> Option<&'a [u8]> {
        let lengths = self.c.b.get(self.c.i..self.c.i + count)?;
        if lengths.iter().any(|&b| b >= 0x80) {
            return None;
        }
        self.c.i += count;
        Some(lengths)
    }

    /// Reads one column of `count` pieces (their lengths, then their
    /// bytes); appends where each piece starts in the body to `starts`,
    /// then where the last one ends.
    fn column(&mut self, count: usize, starts: &mut Vec<usize>) -> Result<(), BodyError> {
        let from = starts.len();
        let mut total = 0usize;
        if let Some(lengths) = self.short_lengths(count) {
            for &len in lengths {
                starts.push(total);
                total += usize::from(len);
            }
        } else {
            for _ in 0..count {
                starts.push(total);
                total = total
                    .checked_add(self.c.count()?)
                    .ok_or(BodyError("length overflow"))?;
            }
        }
        starts.push(total);
        let base = self.c.i;
        self.c.bytes(total)?;
        for start in &mut starts[from..] {
            *start += base;
        }
        Ok(())
    }

    /// Reads one column of `count` pieces as `column` does, keeping only
    /// piece `row`'s bytes (if `row` is given).
    fn piece(&mut self, count: usize, row: Option<usize>) -> Result<Option<&'a [u8]>, BodyError> {
        let (mut total, mut span) = (0usize, None);
        if let Some(lengths) = self.short_lengths(count) {
            let sum = |l: &[u8]| l.iter().map(|&b| usize::from(b)).sum::<usize>();
            total = sum(lengths);
            span = row.map(|r| (sum(&lengths[..r]), usize::from(lengths[r])));
        } else {
            for r in 0..count {
                let len = self.c.count()?;
                if Some(r) == row {
                    span = Some((total, len));
                }
                total = total.checked_add(len).ok_or(BodyError("length overflow"))?;
            }
        }
        let bytes = self.c.bytes(total)?;
        Ok(span.map(|(at, len)| &bytes[at..at + len]))
    }

    fn finish(&self) -> Result<(), BodyError> {
        if self.c.i != self.c.b.len() {
            return Err(BodyError("bytes after the last column"));
        }
        Ok(())
    }
}

/// The record at `ts` in `body`, appended to `out`: the body's record
/// count, and the record's place (`None` if no record has that
/// timestamp). Checks the whole body as `BodyView::parse` does, without
/// building its tables: a lookup by time rebuilds one record of a frame.
pub fn find(body: &[u8], ts: i64, out: &mut Vec<u8>) -> Result<(usize, Option<usize>), BodyError> {
    let mut found = None;
    let mut walk = Walk::stamps(body, |k, stamp| {
        if stamp == ts {
            found = Some(k);
        }
    })?;
    let templates = walk.templates()?;
    let mut shape = None;
    let (rows, raw) = walk.shapes(templates.len(), |k, s, row| {
        if Some(k) == found {
            shape = Some((s as usize, row as usize));
        }
    })?;
    let row_in = |s: usize| shape.filter(|&(at, _)| at == s).map(|(_, row)| row);
    let record = walk.piece(raw, row_in(0))?;
    let mut values = Vec::new();
    for (t, template) in templates.iter().enumerate() {
        for _ in template.keys.iter() {
            if let Some(value) = walk.piece(rows[t], row_in(t + 1))? {
                values.push(value);
            }
        }
    }
    walk.finish()?;
    match shape {
        Some((0, _)) => out.extend_from_slice(record.unwrap_or_default()),
        Some((s, _)) => templates[s - 1].rebuild(out, &values),
        None => {}
    }
    Ok((walk.n, found))
}

impl<'a> BodyView<'a> {
    pub fn parse(body: &'a [u8]) -> Result<BodyView<'a>, BodyError> {
        let mut stamps = Vec::new();
        let mut walk = Walk::stamps(body, |_, ts| stamps.push(ts))?;
        let keys = walk.templates()?;
        let mut shapes = Vec::with_capacity(stamps.len());
        let (rows, raw_count) = walk.shapes(keys.len(), |_, s, row| shapes.push((s, row)))?;
        let mut raw = Vec::with_capacity(raw_count + 1);
        walk.column(raw_count, &mut raw)?;
        let mut templates = Vec::with_capacity(keys.len());
        for (template, &count) in keys.iter().zip(&rows) {
            let mut starts = Vec::with_capacity(template.keys.len() * (count + 1));
            for _ in template.keys.iter() {
                walk.column(count, &mut starts)?;
            }
            templates.push(TemplateView::new(template, starts, count));
        }
        walk.finish()?;
        Ok(BodyView {
            body,
            stamps,
            shapes,
            templates,
            raw,
        })
    }

    /// Records in the body.
    pub fn len(&self) -> usize {
        self.stamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stamps.is_empty()
    }

    pub fn timestamps(&self) -> &[i64] {
        &self.stamps
    }

    /// Every record, rebuilt into `out` (its contents replaced).
    pub fn unpack(&self, out: &mut Unpacked) {
        out.stamps.clear();
        out.stamps.extend_from_slice(&self.stamps);
        out.ends.clear();
        out.ends.reserve(self.stamps.len());
        // The exact size first, so that the pieces are written in place
        // with `SLACK` to spare and the buffer never grows.
        let raw = self.raw[self.raw.len() - 1] - self.raw[0];
        let total = raw
            + self
                .templates
                .iter()
                .map(|t| t.rows * t.separators.fixed() + t.value_bytes())
                .sum::<usize>();
        let payloads = &mut out.payloads;
        payloads.clear();
        payloads.resize(total + SLACK, 0);
        let mut at = 0;
        for i in 0..self.stamps.len() {
            at = self.put_record(i, payloads, at);
            out.ends.push(at);
        }
        payloads.truncate(at);
    }

    fn put_record(&self, i: usize, dst: &mut [u8], at: usize) -> usize {
        let (s, row) = (self.shapes[i].0 as usize, self.shapes[i].1 as usize);
        match s.checked_sub(1) {
            None => {
                let (from, to) = (self.raw[row], self.raw[row + 1]);
                put_piece(dst, at, self.body, from, to - from)
            }
            Some(t) => self.templates[t].put(dst, at, self.body, row),
        }
    }

    /// Record `i`'s payload size.
    pub fn record_len(&self, i: usize) -> usize {
        let (s, row) = (self.shapes[i].0 as usize, self.shapes[i].1 as usize);
        match s.checked_sub(1) {
            None => self.raw[row + 1] - self.raw[row],
            Some(t) => self.templates[t].record_len(row),
        }
    }

    /// Appends record `i`'s payload to `out`.
    pub fn write_record(&self, i: usize, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + self.record_len(i) + SLACK, 0);
        let end = self.put_record(i, out, start);
        out.truncate(end);
    }
}

/// Reads a body back: every record rebuilt into `out` (its contents
/// replaced).
pub fn decode(body: &[u8], out: &mut Unpacked) -> Result<(), BodyError> {
    BodyView::parse(body)?.unpack(out);
    Ok(())
}
