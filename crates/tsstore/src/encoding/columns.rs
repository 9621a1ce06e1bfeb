//! The body of a compressed frame before zstd: records turned on their
//! side so that like sits next to like.
//!
//! Sensor records are flat JSON objects that repeat their keys and change
//! their values a little at a time. Written one after another, zstd sees
//! each key again and again between values; laid out in columns (every
//! record's timestamp delta, then its shape, then each key's values in a
//! row) the keys appear once per frame and each column holds one kind of
//! value. Measured on the pvlib weather files this nearly doubles what
//! zstd-1 alone keeps in a 4 KiB block (docs/BENCHMARKS.md).
//!
//! The transform is exact by construction: a record is split into a
//! template (its keys) and value texts only if rebuilding it gives back
//! the very same bytes; anything else (spacing, nesting at the top, other
//! data types, a key with an escape) is kept whole as a raw record.
//!
//! Layout (varints are unsigned LEB128):
//!
//! ```text
//! first_ts            i64 LE
//! n                   varint, records (≥ 1)
//! n - 1 × delta       varint, timestamp minus the previous one (≥ 1)
//! t                   varint, templates
//! t × template        varint k, then k × (varint len, key bytes as written)
//! n × shape           varint: 0 = raw, s + 1 = template s
//! raw column          varint len per raw record, then their bytes
//! value columns       per template, per key: varint len per record of
//!                     that template, then the value texts
//! ```

use std::collections::HashMap;

use super::split::{self, Record, Split, Template};

/// Most templates one frame keeps; records of further shapes are raw.
pub const MAX_TEMPLATES: usize = 64;
/// Most keys a template has; wider records are raw.
pub const MAX_KEYS: usize = 256;

/// Why a body cannot be read back (a bug or damage the frame's checksum
/// did not catch; callers treat it as corruption).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("compressed frame body: {0}")]
pub struct BodyError(pub &'static str);

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads forward through a body.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn varint(&mut self) -> Result<u64, BodyError> {
        // Most are one byte (value lengths, shapes); the rest a few
        // (timestamp steps), read from one slice without a check each.
        let rest = &self.b[self.i.min(self.b.len())..];
        let mut v = 0u64;
        for (k, &byte) in rest.iter().take(10).enumerate() {
            v |= u64::from(byte & 0x7f) << (7 * k as u32);
            if byte < 0x80 {
                self.i += k + 1;
                return Ok(v);
            }
        }
        Err(BodyError(if rest.len() < 10 {
            "truncated varint"
        } else {
            "varint longer than 64 bits"
        }))
    }

    /// A count that cannot exceed what is left of the body.
    #[inline]
    fn count(&mut self) -> Result<usize, BodyError> {
        let v = self.varint()?;
        if v > (self.b.len() - self.i) as u64 + 1 {
            return Err(BodyError("count larger than the body"));
        }
        Ok(v as usize)
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], BodyError> {
        let end = self
            .i
            .checked_add(len)
            .ok_or(BodyError("length overflow"))?;
        let s = self
            .b
            .get(self.i..end)
            .ok_or(BodyError("truncated bytes"))?;
        self.i = end;
        Ok(s)
    }
}

/// Rebuilds a templated record into `out`.
fn rebuild(out: &mut Vec<u8>, keys: &[&[u8]], values: &[&[u8]]) {
    out.push(b'{');
    for (j, (k, v)) in keys.iter().zip(values).enumerate() {
        if j > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(k);
        out.extend_from_slice(b"\":");
        out.extend_from_slice(v);
    }
    out.push(b'}');
}

/// One column of a body, laid out once for every record a frame may take:
/// any prefix of its rows is then two copies (their lengths, their texts).
#[derive(Debug, Default)]
struct Column {
    lens: Vec<u8>,
    texts: Vec<u8>,
    /// Every length took one byte: a prefix of rows is as many bytes of
    /// `lens`, whose sum is its texts' length.
    short: bool,
}

impl Column {
    fn new() -> Column {
        Column {
            short: true,
            ..Column::default()
        }
    }

    fn push(&mut self, text: &[u8]) {
        match u8::try_from(text.len()) {
            Ok(len) if len < 0x80 => self.lens.push(len),
            _ => {
                self.short = false;
                put_varint(&mut self.lens, text.len() as u64);
            }
        }
        self.texts.extend_from_slice(text);
    }

    /// Writes its first `rows` rows: their lengths, then their texts.
    fn write(&self, rows: usize, out: &mut Vec<u8>) {
        let (lens, texts) = if self.short {
            let lens = &self.lens[..rows];
            (rows, lens.iter().map(|&l| usize::from(l)).sum())
        } else {
            let mut cursor = Cursor {
                b: &self.lens,
                i: 0,
            };
            let mut texts = 0;
            for _ in 0..rows {
                // Written by `push`: a varint per row.
                texts += cursor.varint().unwrap_or(0) as usize;
            }
            (cursor.i, texts)
        };
        out.extend_from_slice(&self.lens[..lens]);
        out.extend_from_slice(&self.texts[..texts]);
    }
}

/// A shape is written as one varint byte: template + 1, or 0 (raw).
const _: () = assert!(MAX_TEMPLATES < 0x7f);

/// Records split once into templates and value columns, from which the
/// body of any prefix can be written by copying: `FrameCodec::pack` tries
/// a few prefix lengths per block.
#[derive(Debug)]
pub struct Prepared<'a> {
    first: i64,
    /// Timestamp steps as varints; `step_ends[r - 1]`: their length up to
    /// record `r`'s.
    steps: Vec<u8>,
    step_ends: Vec<usize>,
    /// Per record: its shape byte.
    shapes: Vec<u8>,
    /// Templates in order of first use, so a prefix uses a prefix of them.
    templates: Vec<Vec<&'a [u8]>>,
    /// Per template: the records of that shape, in order, and its value
    /// columns (one per key).
    rows: Vec<Vec<usize>>,
    columns: Vec<Vec<Column>>,
    /// Raw records, and which they are.
    raw: Column,
    raw_rows: Vec<usize>,
}

impl<'a> Prepared<'a> {
    /// Lays out `records` (timestamps strictly increasing), split by the
    /// insert or here (`split`). `columnar` false keeps every record raw
    /// (text and binary stores, whose payloads are not JSON objects).
    pub fn new(records: &'a [Record<'a>], columnar: bool) -> Prepared<'a> {
        let mut p = Prepared {
            first: records.first().map_or(0, |r| r.timestamp),
            steps: Vec::with_capacity(records.len() * 2),
            step_ends: Vec::with_capacity(records.len()),
            shapes: Vec::with_capacity(records.len()),
            templates: Vec::new(),
            rows: Vec::new(),
            columns: Vec::new(),
            raw: Column::new(),
            raw_rows: Vec::new(),
        };
        for w in records.windows(2) {
            put_varint(
                &mut p.steps,
                w[1].timestamp.wrapping_sub(w[0].timestamp) as u64,
            );
            p.step_ends.push(p.steps.len());
        }
        let mut by_keys: HashMap<Vec<&[u8]>, usize> = HashMap::new();
        // The insert's templates met so far, and their frame template.
        let mut known: Vec<(&Template, usize)> = Vec::new();
        let mut keys = Vec::new();
        let mut values = Vec::new();
        let mut last: Option<usize> = None;
        for (r, record) in records.iter().enumerate() {
            let payload = record.payload;
            values.clear();
            let shape = match record.split {
                _ if !columnar => None,
                Split::Whole => None,
                Split::Values(template, ends) => {
                    let t = match known.iter().rev().find(|(k, _)| std::ptr::eq(*k, template)) {
                        Some(&(_, t)) => Some(t),
                        None => {
                            keys.clear();
                            keys.extend(template.keys.iter().map(|k| &**k));
                            let t = p.template_of(&mut by_keys, &keys);
                            // Bounded, so that a search stays short when
                            // every record brings a template of its own.
                            if known.len() < MAX_TEMPLATES {
                                known.extend(t.map(|t| (template, t)));
                            }
                            t
                        }
                    };
                    t.filter(|_| split::presplit_values(payload, template, ends, &mut values))
                }
                // `split_as` and `split_into` accept exactly `{"k":v,...}`,
                // so rebuilding gives back these bytes: the transform is
                // exact by construction. Consecutive records mostly share
                // their keys: the last template is tried first, without
                // collecting the keys.
                Split::Unknown => match last {
                    Some(t) if split::split_as(payload, &p.templates[t], &mut values) => Some(t),
                    _ => {
                        values.clear();
                        if split::split_into(payload, &mut keys, &mut values) {
                            p.template_of(&mut by_keys, &keys)
                        } else {
                            None
                        }
                    }
                },
            };
            match shape {
                Some(t) => {
                    debug_assert!({
                        let mut check = Vec::new();
                        rebuild(&mut check, &p.templates[t], &values);
                        check == payload
                    });
                    last = Some(t);
                    p.rows[t].push(r);
                    for (column, value) in p.columns[t].iter_mut().zip(&values) {
                        column.push(value);
                    }
                    p.shapes.push(t as u8 + 1);
                }
                None => {
                    p.raw.push(payload);
                    p.raw_rows.push(r);
                    p.shapes.push(0);
                }
            }
        }
        p
    }

    /// The frame template for `keys`, made if new; None once the frame
    /// has `MAX_TEMPLATES` (the record is kept raw).
    fn template_of(
        &mut self,
        by_keys: &mut HashMap<Vec<&'a [u8]>, usize>,
        keys: &[&'a [u8]],
    ) -> Option<usize> {
        if let Some(&t) = by_keys.get(keys) {
            return Some(t);
        }
        if self.templates.len() >= MAX_TEMPLATES {
            return None;
        }
        self.templates.push(keys.to_vec());
        self.rows.push(Vec::new());
        self.columns
            .push((0..keys.len()).map(|_| Column::new()).collect());
        by_keys.insert(keys.to_vec(), self.templates.len() - 1);
        Some(self.templates.len() - 1)
    }

    /// Writes the body of the first `n` records (at least one, at most
    /// those prepared) to `out`.
    pub fn body(&self, n: usize, out: &mut Vec<u8>) {
        out.clear();
        if n == 0 {
            return;
        }
        let below = |rows: &[usize]| rows.partition_point(|&r| r < n);
        out.extend_from_slice(&self.first.to_le_bytes());
        put_varint(out, n as u64);
        out.extend_from_slice(&self.steps[..n.checked_sub(2).map_or(0, |r| self.step_ends[r])]);
        let used = self
            .rows
            .partition_point(|rows| rows.first().is_some_and(|&r| r < n));
        put_varint(out, used as u64);
        for t in &self.templates[..used] {
            put_varint(out, t.len() as u64);
            for k in t {
                put_varint(out, k.len() as u64);
                out.extend_from_slice(k);
            }
        }
        out.extend_from_slice(&self.shapes[..n]);
        self.raw.write(below(&self.raw_rows), out);
        for (rows, columns) in self.rows[..used].iter().zip(&self.columns) {
            let rows = below(rows);
            for column in columns {
                column.write(rows, out);
            }
        }
    }
}

/// Lays `records` (timestamps strictly increasing, at least one) out as a
/// frame body in `out`. `columnar` false keeps every record raw (text and
/// binary stores, whose payloads are not JSON objects).
pub fn encode(records: &[Record<'_>], columnar: bool, out: &mut Vec<u8>) {
    Prepared::new(records, columnar).body(records.len(), out);
}

/// A parsed body: where every piece of every record lies, so that one
/// record can be rebuilt without the others (a lookup by time rebuilds
/// one; an iterator all of them).
#[derive(Debug)]
pub struct BodyView<'a> {
    body: &'a [u8],
    stamps: Vec<i64>,
    /// Per record: its template + 1 (0: raw) and its row among those.
    shapes: Vec<(u32, u32)>,
    /// Per template: what comes before each value (`{"k":` then `,"k":`).
    prefixes: Vec<Vec<Vec<u8>>>,
    /// Per template: where its records' values start, `[key * (rows + 1)
    /// + row]`; a key's column ends its values with one more offset.
    values: Vec<Vec<usize>>,
    rows: Vec<usize>,
    /// Where the raw records start, and one more offset.
    raw: Vec<usize>,
}

/// Reads a body front to back, checking it as it goes: timestamps,
/// templates, shapes, then columns. `BodyView::parse` keeps all of it;
/// `find` only what one record needs.
struct Walk<'a> {
    c: Cursor<'a>,
    n: usize,
}

impl<'a> Walk<'a> {
    /// Reads every timestamp, giving each with its record's place.
    fn stamps(body: &'a [u8], mut each: impl FnMut(usize, i64)) -> Result<Walk<'a>, BodyError> {
        let mut c = Cursor { b: body, i: 0 };
        let mut ts = i64::from_le_bytes(
            c.bytes(8)?
                .try_into()
                .map_err(|_| BodyError("truncated timestamp"))?,
        );
        let n = c.count()?;
        if n == 0 {
            return Err(BodyError("no records"));
        }
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

    /// The templates: each one's keys.
    fn templates(&mut self) -> Result<Vec<Vec<&'a [u8]>>, BodyError> {
        let t = self.c.count()?;
        let mut templates = Vec::with_capacity(t);
        for _ in 0..t {
            let k = self.c.count()?;
            let mut keys = Vec::with_capacity(k);
            for _ in 0..k {
                let len = self.c.count()?;
                keys.push(self.c.bytes(len)?);
            }
            templates.push(keys);
        }
        Ok(templates)
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
    for (t, keys) in templates.iter().enumerate() {
        for _ in keys.iter() {
            if let Some(value) = walk.piece(rows[t], row_in(t + 1))? {
                values.push(value);
            }
        }
    }
    walk.finish()?;
    match shape {
        Some((0, _)) => out.extend_from_slice(record.unwrap_or_default()),
        Some((s, _)) => rebuild(out, &templates[s - 1], &values),
        None => {}
    }
    Ok((walk.n, found))
}

impl<'a> BodyView<'a> {
    pub fn parse(body: &'a [u8]) -> Result<BodyView<'a>, BodyError> {
        let mut stamps = Vec::new();
        let mut walk = Walk::stamps(body, |_, ts| stamps.push(ts))?;
        let prefixes: Vec<Vec<Vec<u8>>> = walk
            .templates()?
            .iter()
            .map(|keys| {
                keys.iter()
                    .enumerate()
                    .map(|(j, key)| {
                        let mut prefix = Vec::with_capacity(key.len() + 4);
                        prefix.extend_from_slice(if j == 0 { b"{\"" } else { b",\"" });
                        prefix.extend_from_slice(key);
                        prefix.extend_from_slice(b"\":");
                        prefix
                    })
                    .collect()
            })
            .collect();
        let mut shapes = Vec::with_capacity(stamps.len());
        let (rows, raw_count) = walk.shapes(prefixes.len(), |_, s, row| shapes.push((s, row)))?;
        let mut raw = Vec::with_capacity(raw_count + 1);
        walk.column(raw_count, &mut raw)?;
        let mut values = Vec::with_capacity(prefixes.len());
        for (keys, &count) in prefixes.iter().zip(&rows) {
            let mut starts = Vec::with_capacity(keys.len() * (count + 1));
            for _ in keys.iter() {
                walk.column(count, &mut starts)?;
            }
            values.push(starts);
        }
        walk.finish()?;
        Ok(BodyView {
            body,
            stamps,
            shapes,
            prefixes,
            values,
            rows,
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

    /// Every record: its timestamp and the range of its payload in
    /// `payloads`, in order (both cleared first).
    pub fn write_all(
        &self,
        records: &mut Vec<(i64, std::ops::Range<usize>)>,
        payloads: &mut Vec<u8>,
    ) {
        records.clear();
        payloads.clear();
        for (i, &ts) in self.stamps.iter().enumerate() {
            let start = payloads.len();
            self.write_record(i, payloads);
            records.push((ts, start..payloads.len()));
        }
    }

    /// Appends record `i`'s payload to `out`.
    pub fn write_record(&self, i: usize, out: &mut Vec<u8>) {
        let (s, row) = (self.shapes[i].0 as usize, self.shapes[i].1 as usize);
        if s == 0 {
            out.extend_from_slice(&self.body[self.raw[row]..self.raw[row + 1]]);
            return;
        }
        let (prefixes, starts, rows) =
            (&self.prefixes[s - 1], &self.values[s - 1], self.rows[s - 1]);
        for (j, prefix) in prefixes.iter().enumerate() {
            let at = j * (rows + 1) + row;
            out.extend_from_slice(prefix);
            out.extend_from_slice(&self.body[starts[at]..starts[at + 1]]);
        }
        out.push(b'}');
    }
}

/// Reads a body back: each record's timestamp and the range of its
/// payload in `payloads` (which is cleared first), in order.
pub fn decode(
    body: &[u8],
    records: &mut Vec<(i64, std::ops::Range<usize>)>,
    payloads: &mut Vec<u8>,
) -> Result<(), BodyError> {
    BodyView::parse(body)?.write_all(records, payloads);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unsplit(records: &[(i64, Vec<u8>)]) -> Vec<Record<'_>> {
        records.iter().map(|(t, p)| Record::new(*t, p)).collect()
    }

    fn round_trip(records: &[(i64, Vec<u8>)], columnar: bool) -> Vec<u8> {
        let mut body = Vec::new();
        encode(&unsplit(records), columnar, &mut body);
        if columnar {
            // Split as an insert splits JSON (in the check's pass): the
            // very same body.
            let mut splitter = crate::encoding::split::Splitter::default();
            let splits: Vec<_> = records
                .iter()
                .map(|(_, p)| {
                    let mut ends = Vec::new();
                    let checked = splitter.check_json(p, &mut ends);
                    (checked, splitter.template().cloned(), ends)
                })
                .collect();
            let presplit: Vec<Record<'_>> = records
                .iter()
                .zip(&splits)
                .map(|((t, p), (checked, template, ends))| Record {
                    timestamp: *t,
                    payload: p,
                    split: match (checked, template) {
                        (crate::encoding::split::Checked::Split, Some(t)) => Split::Values(t, ends),
                        (crate::encoding::split::Checked::Whole, _) => Split::Whole,
                        _ => Split::Unknown,
                    },
                })
                .collect();
            let mut again = Vec::new();
            encode(&presplit, true, &mut again);
            assert_eq!(again, body, "split by the insert");
        }
        let (mut out, mut payloads) = (Vec::new(), Vec::new());
        decode(&body, &mut out, &mut payloads).unwrap();
        let back: Vec<(i64, Vec<u8>)> = out
            .into_iter()
            .map(|(t, r)| (t, payloads[r].to_vec()))
            .collect();
        assert_eq!(&back, records);
        // Each record found alone, and a time just before it found only
        // if it is a record's.
        let n = records.len();
        for (i, (ts, payload)) in records.iter().enumerate() {
            let mut one = Vec::new();
            assert_eq!(find(&body, *ts, &mut one), Ok((n, Some(i))));
            assert_eq!(&one, payload);
            let before = records.iter().position(|(t, _)| *t == ts - 1);
            let mut other = Vec::new();
            assert_eq!(find(&body, ts - 1, &mut other), Ok((n, before)));
            assert_eq!(other, before.map_or(vec![], |b| records[b].1.clone()));
        }
        body
    }

    #[test]
    fn flat_objects_become_columns_and_the_rest_stays_whole() {
        let records: Vec<(i64, Vec<u8>)> = [
            r#"{"temp":21.50,"room":"lab, \"east\"","ok":true}"#,
            r#"{"temp":21.75,"room":"lab","ok":false}"#,
            r#"{ "temp": 22 }"#,
            r#"{"nested":{"a":[1,{"b":"}"}]},"s":"x,y"}"#,
            r#"[1,2]"#,
            r#"{}"#,
            r#"{"esc\"aped":1}"#,
            "not json at all {",
        ]
        .iter()
        .enumerate()
        .map(|(i, r)| (1_000 + i as i64 * 7, r.as_bytes().to_vec()))
        .collect();
        let body = round_trip(&records, true);
        let text = String::from_utf8_lossy(&body);
        // The keys of the first two records are written once.
        assert_eq!(text.matches("temp").count(), 2, "{text}");
        round_trip(&records, false);
    }

    #[test]
    fn many_shapes_fall_back_to_raw_past_the_template_bound() {
        let records: Vec<(i64, Vec<u8>)> = (0..MAX_TEMPLATES as i64 + 10)
            .map(|i| (i + 1, format!(r#"{{"k{i}":{i}}}"#).into_bytes()))
            .collect();
        round_trip(&records, true);
    }

    #[test]
    fn damaged_bodies_are_errors_not_panics() {
        let records: Vec<(i64, Vec<u8>)> = (1..50)
            .map(|i| (i, format!(r#"{{"a":{i},"b":"x"}}"#).into_bytes()))
            .collect();
        let mut body = Vec::new();
        encode(&unsplit(&records), true, &mut body);
        let (mut out, mut payloads) = (Vec::new(), Vec::new());
        for cut in 0..body.len() {
            assert!(decode(&body[..cut], &mut out, &mut payloads).is_err());
            assert!(find(&body[..cut], 25, &mut payloads).is_err());
        }
        for i in 0..body.len() {
            for bit in [0x01, 0x80] {
                let mut bad = body.clone();
                bad[i] ^= bit;
                let _ = decode(&bad, &mut out, &mut payloads);
                let _ = find(&bad, 25, &mut payloads);
            }
        }
    }

    fn json_like() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec(
                (
                    "[a-z\"\\\\]{0,4}",
                    "(-?[0-9]{1,4}(\\.[0-9]{1,3})?|\"[a-z,\"\\\\}]{0,5}\"|true|null|\\[1,\\{\\}\\])"
                ),
                0..5
            )
            .prop_map(|kv| {
                let body: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", body.join(",")).into_bytes()
            }),
            // Few keys, so that records often have the shape of the one
            // before (`split_as`), and near misses of it: a key that is
            // another's prefix, text after the object.
            (
                proptest::collection::vec(
                    (
                        "(a|ab|b)",
                        "(-?[0-9]{1,3}|\"[a-z,:}]{0,3}\"|\\{\"a\":1\\}|\"[a-z]{126,200}\")"
                    ),
                    1..4
                ),
                prop_oneof![Just(""), Just(""), Just(" "), Just("}"), Just(",\"a\":1")],
            )
                .prop_map(|(kv, tail)| {
                    let body: Vec<String> =
                        kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}{tail}", body.join(",")).into_bytes()
                }),
        ]
    }

    proptest! {
        #[test]
        fn any_records_come_back_byte_for_byte(
            start in 1i64..1_000_000,
            // Steps that repeat too (regular series), and values of 128
            // bytes or more (lengths of two bytes).
            steps in proptest::collection::vec(
                (prop_oneof![Just(7i64), Just(3_600_000_000_000), 1i64..1_000_000_000], json_like()),
                1..60,
            ),
            columnar in any::<bool>(),
        ) {
            let mut ts = start;
            let records: Vec<(i64, Vec<u8>)> = steps
                .into_iter()
                .map(|(d, p)| { ts += d; (ts, p) })
                .collect();
            round_trip(&records, columnar);
        }
    }
}
