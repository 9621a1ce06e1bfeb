//! `Laid`: the value columns of records an insert split with one
//! template, laid out once as `Column`s so a frame takes runs of their rows
//! with a copy per column. Here, beside the splitter that fills it, rather
//! than in `columns`, which writes bodies from it: the splitter's
//! `Split::Laid` names it, and `columns` comes after `split`.

use std::ops::Range;

use super::Template;
use crate::encoding::varint::{Cursor, put_varint};

/// Bytes `Column::push_from` copies at once for a short value.
const WORD_COPY: usize = 16;

/// One column of a body, laid out once for every record a frame may take:
/// any prefix of its rows is then two copies (their lengths, their texts).
#[derive(Debug, Default, Clone)]
pub(crate) struct Column {
    lens: Vec<u8>,
    texts: Vec<u8>,
    /// Every length took one byte: a prefix of rows is as many bytes of
    /// `lens`, whose sum is its texts' length.
    short: bool,
}

impl Column {
    pub(crate) fn new() -> Column {
        Column {
            short: true,
            ..Column::default()
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, text: &[u8]) {
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
    pub(crate) fn write(&self, rows: usize, out: &mut Vec<u8>) {
        let (lens, texts) = self.prefix(rows);
        out.extend_from_slice(&self.lens[..lens]);
        out.extend_from_slice(&self.texts[..texts]);
    }

    /// Appends rows `rows` of `from`: two copies.
    pub(crate) fn extend_rows(&mut self, from: &Column, rows: Range<usize>) {
        let (lens0, texts0) = from.prefix(rows.start);
        let (lens1, texts1) = from.prefix(rows.end);
        self.lens.extend_from_slice(&from.lens[lens0..lens1]);
        self.texts.extend_from_slice(&from.texts[texts0..texts1]);
        self.short &= from.short;
    }

    /// Its rows.
    pub(crate) fn rows(&self) -> usize {
        if self.short {
            self.lens.len()
        } else {
            self.lens.iter().filter(|&&b| b < 0x80).count()
        }
    }

    /// Every row's text, in order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut lens = Cursor {
            b: &self.lens,
            i: 0,
        };
        let mut at = 0;
        std::iter::from_fn(move || {
            if lens.i >= lens.b.len() {
                return None;
            }
            // Written by `push`: a varint per row.
            let len = lens.varint().unwrap_or(0) as usize;
            let text = self.texts.get(at..at + len)?;
            at += len;
            Some(text)
        })
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
    pub(crate) columns: Vec<Column>,
    pub(crate) rows: u32,
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
    pub(crate) fn values(&self, row: u32) -> Vec<&[u8]> {
        self.columns.iter().map(|c| c.text(row as usize)).collect()
    }
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
