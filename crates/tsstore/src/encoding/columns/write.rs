//! Writing a body: records laid out in columns once per `pack`, so that
//! the body of any prefix of them is a few copies (`Prepared`).

use std::collections::HashMap;
use std::ops::Range;

use super::{Cursor, MAX_TEMPLATES, put_varint, rebuild};
use crate::encoding::split::{self, Record, Split, Template};

/// Bytes `Column::push_from` copies at once for a short value.
const WORD_COPY: usize = 16;

/// One column of a body, laid out once for every record a frame may take:
/// any prefix of its rows is then two copies (their lengths, their texts).
#[derive(Debug, Default, Clone)]
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

    #[inline]
    fn push(&mut self, text: &[u8]) {
        self.push_len(text.len());
        self.texts.extend_from_slice(text);
    }

    #[inline]
    fn push_len(&mut self, len: usize) {
        match u8::try_from(len) {
            Ok(len) if len < 0x80 => self.lens.push(len),
            _ => {
                self.short = false;
                put_varint(&mut self.lens, len as u64);
            }
        }
    }

    /// Pushes `p[start..end]`. A short value is copied as the 16 bytes
    /// from its start, where `p` has them, and cut to its length: a call
    /// to `memcpy` per value had cost more than the copy.
    #[inline]
    fn push_from(&mut self, p: &[u8], start: usize, end: usize) {
        let len = end - start;
        self.push_len(len);
        match p.get(start..start + WORD_COPY) {
            Some(word) if len <= WORD_COPY => {
                let at = self.texts.len();
                self.texts.extend_from_slice(word);
                self.texts.truncate(at + len);
            }
            _ => self.texts.extend_from_slice(&p[start..end]),
        }
    }

    /// Takes off the last row (its length is the last varint of `lens`:
    /// the bytes before a varint's last have their high bit set). `short`
    /// stays as it was: the varint walk reads one-byte lengths too.
    fn pop(&mut self) {
        let Some(mut start) = self.lens.len().checked_sub(1) else {
            return;
        };
        while start > 0 && self.lens[start - 1] & 0x80 != 0 {
            start -= 1;
        }
        let mut cursor = Cursor {
            b: &self.lens[start..],
            i: 0,
        };
        let len = cursor.varint().unwrap_or(0) as usize;
        self.lens.truncate(start);
        self.texts.truncate(self.texts.len().saturating_sub(len));
    }

    /// How many bytes of `lens` and of `texts` its first `rows` rows take.
    fn prefix(&self, rows: usize) -> (usize, usize) {
        if self.short {
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
        }
    }

    /// Writes its first `rows` rows: their lengths, then their texts.
    fn write(&self, rows: usize, out: &mut Vec<u8>) {
        let (lens, texts) = self.prefix(rows);
        out.extend_from_slice(&self.lens[..lens]);
        out.extend_from_slice(&self.texts[..texts]);
    }

    /// Appends rows `rows` of `from`: two copies.
    fn extend_rows(&mut self, from: &Column, rows: Range<usize>) {
        let (lens0, texts0) = from.prefix(rows.start);
        let (lens1, texts1) = from.prefix(rows.end);
        self.lens.extend_from_slice(&from.lens[lens0..lens1]);
        self.texts.extend_from_slice(&from.texts[texts0..texts1]);
        self.short &= from.short;
    }

    /// The text of row `row` (a debug check's).
    fn text(&self, row: usize) -> &[u8] {
        let (_, from) = self.prefix(row);
        let (_, to) = self.prefix(row + 1);
        &self.texts[from..to]
    }
}

/// The value columns of the records an insert split with one template,
/// laid out as it checks them: their payloads are in its cache then, where
/// the framer had to fetch each from the other core's, and copying values
/// one by one was a quarter of the framer's time. A frame takes runs of
/// these rows in two copies per column (`Split::Laid`). Bounded by the
/// payloads of the insert's batch: a byte of length per value, and the
/// values' texts.
#[derive(Debug, Clone)]
pub struct Laid {
    columns: Vec<Column>,
    rows: u32,
    /// Rows to make room for at the first: growing 2 buffers per column
    /// from empty had cost the insert as much as laying the values out.
    expect: usize,
}

impl Laid {
    /// Columns for `keys` keys, expecting about `rows` rows.
    pub fn new(keys: usize, rows: usize) -> Laid {
        Laid {
            columns: (0..keys).map(|_| Column::new()).collect(),
            rows: 0,
            expect: rows,
        }
    }

    /// Lays out the values of a record split with `template` as the next
    /// row: each key's `,"k":` (or `{"k":` first) is before its value,
    /// which ends at its `ends` entry. Its row, or None (nothing laid) if
    /// they do not lie within `payload` (they always do when the splitter
    /// made them).
    pub fn push(&mut self, payload: &[u8], template: &Template, ends: &[u32]) -> Option<u32> {
        if self.columns.len() != template.keys.len() || ends.len() != template.keys.len() {
            return None;
        }
        let first = self.rows == 0;
        let mut at = 0;
        for (j, (key, &end)) in template.keys.iter().zip(ends).enumerate() {
            let (start, end) = (at + key.len() + 4, end as usize);
            if start > end || end > payload.len() {
                self.columns[..j].iter_mut().for_each(Column::pop);
                return None;
            }
            let column = &mut self.columns[j];
            if first {
                column.lens.reserve(self.expect);
                column
                    .texts
                    .reserve(self.expect * (end - start + 2) + WORD_COPY);
            }
            column.push_from(payload, start, end);
            at = end;
        }
        self.rows += 1;
        Some(self.rows - 1)
    }

    /// Appends `other`'s rows; returns the row its first one became.
    pub fn append(&mut self, other: &Laid) -> u32 {
        let first = self.rows;
        for (column, from) in self.columns.iter_mut().zip(&other.columns) {
            column.extend_rows(from, 0..other.rows as usize);
        }
        self.rows += other.rows;
        first
    }

    /// The values of row `row` (a debug check's).
    fn values(&self, row: u32) -> Vec<&[u8]> {
        self.columns.iter().map(|c| c.text(row as usize)).collect()
    }
}

/// Rows of a `Laid` that a frame template takes, not yet copied.
struct Run<'a> {
    template: usize,
    laid: &'a Laid,
    rows: Range<usize>,
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
        // Rows laid out by the insert, copied a run at a time, before any
        // row split here reaches the columns: rows stay in record order.
        let mut run: Option<Run<'a>> = None;
        for (r, record) in records.iter().enumerate() {
            let payload = record.payload;
            let shape = match record.split {
                _ if !columnar => None,
                Split::Whole => None,
                Split::Laid(template, laid, row) => {
                    let row = row as usize;
                    let t = p
                        .frame_template(template, &mut known, &mut keys, &mut by_keys)
                        .filter(|_| row < laid.rows as usize);
                    if let Some(t) = t {
                        debug_assert!(rebuilds(&p.templates[t], laid.values(row as u32), payload));
                        match &mut run {
                            Some(run)
                                if run.template == t
                                    && std::ptr::eq(run.laid, laid)
                                    && run.rows.end == row =>
                            {
                                run.rows.end += 1;
                            }
                            _ => p.copy_run(run.replace(Run {
                                template: t,
                                laid,
                                rows: row..row + 1,
                            })),
                        }
                    }
                    t
                }
                // `split_as` and `split_into` accept exactly `{"k":v,...}`,
                // so rebuilding gives back these bytes: the transform is
                // exact by construction. Consecutive records mostly share
                // their keys: the last template is tried first, without
                // collecting the keys.
                Split::Unknown => {
                    values.clear();
                    let t = match last {
                        Some(t) if split::split_as(payload, &p.templates[t], &mut values) => {
                            Some(t)
                        }
                        _ => {
                            values.clear();
                            if split::split_into(payload, &mut keys, &mut values) {
                                p.template_of(&mut by_keys, &keys)
                            } else {
                                None
                            }
                        }
                    };
                    if let Some(t) = t {
                        debug_assert!(rebuilds(&p.templates[t], values.clone(), payload));
                        p.copy_run(run.take());
                        for (column, value) in p.columns[t].iter_mut().zip(&values) {
                            column.push(value);
                        }
                    }
                    t
                }
            };
            match shape {
                Some(t) => {
                    last = Some(t);
                    p.rows[t].push(r);
                    p.shapes.push(t as u8 + 1);
                }
                None => {
                    p.raw.push(payload);
                    p.raw_rows.push(r);
                    p.shapes.push(0);
                }
            }
        }
        p.copy_run(run);
        p
    }

    /// Copies a run of laid-out rows into their template's columns.
    fn copy_run(&mut self, run: Option<Run<'_>>) {
        if let Some(run) = run {
            for (column, from) in self.columns[run.template].iter_mut().zip(&run.laid.columns) {
                column.extend_rows(from, run.rows.clone());
            }
        }
    }

    /// The frame template of the insert's `template`: found by pointer
    /// among those met so far (`known`), else by its keys.
    fn frame_template(
        &mut self,
        template: &'a Template,
        known: &mut Vec<(&'a Template, usize)>,
        keys: &mut Vec<&'a [u8]>,
        by_keys: &mut HashMap<Vec<&'a [u8]>, usize>,
    ) -> Option<usize> {
        if let Some(&(_, t)) = known.iter().rev().find(|(k, _)| std::ptr::eq(*k, template)) {
            return Some(t);
        }
        keys.clear();
        keys.extend(template.keys.iter().map(|k| &**k));
        let t = self.template_of(by_keys, keys);
        // Bounded, so that a search stays short when every record brings
        // a template of its own.
        if known.len() < MAX_TEMPLATES {
            known.extend(t.map(|t| (template, t)));
        }
        t
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

/// Whether `values` in `template` rebuild `payload`: the split is exact
/// (a debug check).
fn rebuilds(template: &[&[u8]], values: Vec<&[u8]>, payload: &[u8]) -> bool {
    let mut check = Vec::new();
    rebuild(&mut check, template, &values);
    check == payload
}

/// Lays `records` (timestamps strictly increasing, at least one) out as a
/// frame body in `out`. `columnar` false keeps every record raw (text and
/// binary stores, whose payloads are not JSON objects).
pub fn encode(records: &[Record<'_>], columnar: bool, out: &mut Vec<u8>) {
    Prepared::new(records, columnar).body(records.len(), out);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row whose split does not fit its payload (never made by the
    /// splitter) is refused, and the values already laid out for it are
    /// taken off again, long lengths (two varint bytes) included.
    #[test]
    fn a_row_that_does_not_fit_its_payload_leaves_the_columns_as_they_were() {
        let template = Template {
            keys: vec![
                b"a".to_vec().into_boxed_slice(),
                b"b".to_vec().into_boxed_slice(),
            ]
            .into_boxed_slice(),
        };
        let long = "x".repeat(200);
        let rows = [
            r#"{"a":1,"b":22}"#.to_string(),
            format!(r#"{{"a":"{long}","b":3}}"#),
        ];
        let ends = |p: &str| {
            let b = p.find(",\"b\"").unwrap() as u32;
            vec![b, p.len() as u32 - 1]
        };
        let mut laid = Laid::new(2, 4);
        assert_eq!(
            laid.push(rows[0].as_bytes(), &template, &ends(&rows[0])),
            Some(0)
        );
        let before = laid.clone();
        for p in &rows {
            let mut bad = ends(p);
            bad[1] = p.len() as u32 + 1;
            assert_eq!(laid.push(p.as_bytes(), &template, &bad), None);
            assert_eq!(laid.rows, before.rows);
            for (c, b) in laid.columns.iter().zip(&before.columns) {
                assert_eq!((&c.lens, &c.texts), (&b.lens, &b.texts));
            }
        }
        assert_eq!(
            laid.push(rows[1].as_bytes(), &template, &ends(&rows[1])),
            Some(1)
        );
        assert_eq!(laid.values(1), [format!("\"{long}\"").as_bytes(), b"3"]);
        assert_eq!(laid.values(0), [&b"1"[..], b"22"]);
    }
}
