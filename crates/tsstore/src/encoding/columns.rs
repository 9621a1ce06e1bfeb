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

/// Splits a flat object written as `{"k":v,...}` (no spaces, keys without
/// escapes) into its keys (into `keys`, cleared first) and value texts
/// (appended to `values`); false for anything else, after which `values`
/// may hold some of its values (the caller truncates).
fn split_into<'a>(p: &'a [u8], keys: &mut Vec<&'a [u8]>, values: &mut Vec<&'a [u8]>) -> bool {
    keys.clear();
    if p.len() < 2 || p[0] != b'{' || p[p.len() - 1] != b'}' || p == b"{}" {
        return false;
    }
    let mut i = 1;
    loop {
        if p.get(i) != Some(&b'"') {
            return false;
        }
        let start = i + 1;
        let Some(len) = p[start..].iter().position(|&b| b == b'"' || b == b'\\') else {
            return false;
        };
        if p[start + len] != b'"' || p.get(start + len + 1) != Some(&b':') {
            return false;
        }
        keys.push(&p[start..start + len]);
        i = start + len + 2;
        let Some(end) = value_end(p, i) else {
            return false;
        };
        values.push(&p[i..end]);
        if keys.len() > MAX_KEYS {
            return false;
        }
        match p.get(end) {
            Some(b',') => i = end + 1,
            Some(b'}') if end + 1 == p.len() => return true,
            _ => return false,
        }
    }
}

/// Splits `p` into `values` (appended) if it is written as `{"k":v,...}`
/// with exactly `keys`, in order: the check for a record shaped like the
/// one before, without collecting its keys. False for anything else,
/// after which `values` may hold some of its values (the caller
/// truncates).
fn split_as<'a>(p: &'a [u8], keys: &[&[u8]], values: &mut Vec<&'a [u8]>) -> bool {
    let mut i = 0;
    for (j, key) in keys.iter().enumerate() {
        let open = if j == 0 { b'{' } else { b',' };
        // `{"` (first) or `,"`, the key, `":`, then the value.
        let end = i + key.len() + 4;
        match p.get(i..end) {
            Some([o, b'"', rest @ ..])
                if *o == open && rest.starts_with(key) && rest[key.len()..] == *b"\":" => {}
            _ => return false,
        }
        let Some(value) = value_end(p, end) else {
            return false;
        };
        values.push(&p[end..value]);
        i = value;
    }
    i + 1 == p.len() && p[i] == b'}'
}

/// Where the JSON value starting at `i` ends: before the `,` or `}` that
/// follows it at depth 0 (strings and nesting skipped whole).
fn value_end(p: &[u8], mut i: usize) -> Option<usize> {
    let start = i;
    let mut depth = 0u32;
    while i < p.len() {
        match p[i] {
            b'"' => {
                i += 1;
                while *p.get(i)? != b'"' {
                    i += if p[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth > 0 => depth -= 1,
            b',' | b'}' if depth == 0 => return (i > start).then_some(i),
            _ => {}
        }
        i += 1;
    }
    None
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

/// Records split once into templates and values, from which the body of
/// any prefix can be written: `FrameCodec::pack` tries a few prefix
/// lengths per block and splits each record only once.
#[derive(Debug)]
pub struct Prepared<'a> {
    records: &'a [(i64, &'a [u8])],
    /// Templates in order of first use, so a prefix uses a prefix of them.
    templates: Vec<Vec<&'a [u8]>>,
    /// Per record: its template + 1, or 0 (raw).
    shapes: Vec<u32>,
    /// Per template: its records, in order.
    rows: Vec<Vec<u32>>,
    /// Every templated record's values, one after another.
    values: Vec<&'a [u8]>,
    /// Per record: where its values start in `values`.
    value_start: Vec<u32>,
}

impl<'a> Prepared<'a> {
    /// Splits `records` (timestamps strictly increasing). `columnar` false
    /// keeps every record raw (text and binary stores, whose payloads are
    /// not JSON objects).
    pub fn new(records: &'a [(i64, &'a [u8])], columnar: bool) -> Prepared<'a> {
        let mut p = Prepared {
            records,
            templates: Vec::new(),
            shapes: Vec::with_capacity(records.len()),
            rows: Vec::new(),
            values: Vec::new(),
            value_start: Vec::with_capacity(records.len()),
        };
        let mut by_keys: HashMap<Vec<&[u8]>, usize> = HashMap::new();
        let mut keys = Vec::new();
        let mut last: Option<usize> = None;
        for (r, &(_, payload)) in records.iter().enumerate() {
            p.value_start.push(p.values.len() as u32);
            let start = p.values.len();
            let mut shape = 0;
            // `split_as` and `split_into` accept exactly `{"k":v,...}`, so
            // rebuilding gives back these bytes: the transform is exact by
            // construction. Consecutive records mostly share their keys: the last
            // template is tried first, without collecting the keys.
            if let Some(t) = last.filter(|_| columnar)
                && split_as(payload, &p.templates[t], &mut p.values)
            {
                p.rows[t].push(r as u32);
                p.shapes.push(t as u32 + 1);
                continue;
            }
            p.values.truncate(start);
            if columnar && split_into(payload, &mut keys, &mut p.values) {
                let t = match by_keys.get(&keys).copied() {
                    Some(t) => Some(t),
                    None if p.templates.len() < MAX_TEMPLATES => {
                        p.templates.push(keys.clone());
                        p.rows.push(Vec::new());
                        by_keys.insert(keys.clone(), p.templates.len() - 1);
                        Some(p.templates.len() - 1)
                    }
                    None => None,
                };
                if let Some(t) = t {
                    debug_assert!({
                        let mut check = Vec::new();
                        rebuild(&mut check, &keys, &p.values[start..]);
                        check == payload
                    });
                    p.rows[t].push(r as u32);
                    last = Some(t);
                    shape = t + 1;
                }
            }
            if shape == 0 {
                p.values.truncate(start);
            }
            p.shapes.push(shape as u32);
        }
        p
    }

    /// Writes the body of the first `n` records (at least one) to `out`.
    pub fn body(&self, n: usize, out: &mut Vec<u8>) {
        out.clear();
        let records = &self.records[..n];
        let Some(&(first, _)) = records.first() else {
            return;
        };
        out.extend_from_slice(&first.to_le_bytes());
        put_varint(out, n as u64);
        for w in records.windows(2) {
            put_varint(out, w[1].0.wrapping_sub(w[0].0) as u64);
        }
        let shapes = &self.shapes[..n];
        let used = shapes.iter().copied().max().unwrap_or(0) as usize;
        put_varint(out, used as u64);
        for t in &self.templates[..used] {
            put_varint(out, t.len() as u64);
            for k in t {
                put_varint(out, k.len() as u64);
                out.extend_from_slice(k);
            }
        }
        for &s in shapes {
            put_varint(out, u64::from(s));
        }
        let raw = || records.iter().zip(shapes).filter(|(_, s)| **s == 0);
        for ((_, p), _) in raw() {
            put_varint(out, p.len() as u64);
        }
        for ((_, p), _) in raw() {
            out.extend_from_slice(p);
        }
        for (t, keys) in self.templates[..used].iter().enumerate() {
            let rows = &self.rows[t];
            let rows = &rows[..rows.partition_point(|&r| (r as usize) < n)];
            for j in 0..keys.len() {
                let value = |r: u32| self.values[self.value_start[r as usize] as usize + j];
                for &r in rows {
                    put_varint(out, value(r).len() as u64);
                }
                for &r in rows {
                    out.extend_from_slice(value(r));
                }
            }
        }
    }
}

/// Lays `records` (timestamps strictly increasing, at least one) out as a
/// frame body in `out`. `columnar` false keeps every record raw (text and
/// binary stores, whose payloads are not JSON objects).
pub fn encode(records: &[(i64, &[u8])], columnar: bool, out: &mut Vec<u8>) {
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

    fn round_trip(records: &[(i64, Vec<u8>)], columnar: bool) -> Vec<u8> {
        let refs: Vec<(i64, &[u8])> = records.iter().map(|(t, p)| (*t, p.as_slice())).collect();
        let mut body = Vec::new();
        encode(&refs, columnar, &mut body);
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
        let refs: Vec<(i64, &[u8])> = records.iter().map(|(t, p)| (*t, p.as_slice())).collect();
        let mut body = Vec::new();
        encode(&refs, true, &mut body);
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
