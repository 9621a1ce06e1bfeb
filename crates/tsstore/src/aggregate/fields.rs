//! A record's top-level fields, parsed once for every aggregator that
//! adds the same record: a store's rollups read each raw record once and
//! parse it once, however many windows they keep.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::value::RawValue;

use super::field::Num;
use crate::flat_json::{Shape, for_each_entry};
use crate::json_scan::{FlatValue, flat_object, flat_value};

/// A field's value: a number, or the byte range of its text in the record.
#[derive(Debug, Clone, Copy)]
pub(super) enum Value {
    Number(Num),
    Other(usize, usize),
}

/// A field's name: a byte range of the record, or (when JSON escapes made
/// it differ from its text) one of `RecordFields::owned`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Key {
    At(usize, usize),
    Owned(usize),
}

/// The top-level fields of one JSON record, in its order; reused from
/// record to record (no allocation once it has grown).
#[derive(Debug, Default, Clone)]
pub struct RecordFields {
    pub(super) entries: Vec<(Key, Value)>,
    owned: Vec<String>,
    /// The record is a JSON object (anything else is skipped).
    pub(super) object: bool,
    /// Names the record's keys, in order: records with the same keys have
    /// the same shape, so an aggregator that placed one record's fields
    /// places the next one's without comparing names. 0: no shape (keys
    /// with escapes), never matched.
    pub(super) shape: u64,
    /// The keys of the last shape, one after the other, and where each
    /// ends.
    shape_keys: Vec<u8>,
    shape_ends: Vec<usize>,
    /// The last record's text between its values (`{"t":`, `,"h":`, …,
    /// `}`), when the scanner read it whole: a record with the same text
    /// there has the same shape, and only its values need reading
    /// (`parse_like_last`). `cuts` has, per field, where its separator
    /// ends in `skeleton` and where the key lies in the separator.
    skeleton: Vec<u8>,
    cuts: Vec<Cut>,
    skeleton_ok: bool,
    /// Where each value's text lies, while the scanner reads a record.
    spans: Vec<(usize, usize)>,
}

#[derive(Debug, Clone, Copy)]
struct Cut {
    end: usize,
    key: (usize, usize),
}

/// A scanned value as `RecordFields` keeps it: a number, or where its
/// text lies in the record that starts at `base` (it is a slice of it).
fn value_of(value: FlatValue<'_>, base: usize) -> Value {
    match value {
        FlatValue::Int(v) => Value::Number(Num::Int(v)),
        FlatValue::Float(v) => Value::Number(Num::Float(v)),
        FlatValue::Other(text) => {
            let from = text.as_ptr() as usize - base;
            Value::Other(from, from + text.len())
        }
    }
}

/// Shapes are unique across every `RecordFields` (an aggregator may be
/// fed from several: a rollup's job, then a read of its open window).
static NEXT_SHAPE: AtomicU64 = AtomicU64::new(1);

impl RecordFields {
    /// Parses `record`: flat records with plain numbers (nearly all sensor
    /// data) take the scanner; anything else, or anything it is unsure
    /// of, serde_json.
    pub fn parse(&mut self, record: &[u8]) {
        if self.parse_like_last(record) {
            return;
        }
        self.entries.clear();
        self.owned.clear();
        self.spans.clear();
        let base = record.as_ptr() as usize;
        // Every slice handed out below lies inside `record`.
        let at = |s: &[u8]| {
            let from = s.as_ptr() as usize - base;
            (from, from + s.len())
        };
        let (entries, spans) = (&mut self.entries, &mut self.spans);
        let flat = flat_object(record, |key, value, span| {
            let (kf, kt) = at(key);
            entries.push((Key::At(kf, kt), value_of(value, base)));
            spans.push(span);
        });
        if flat {
            self.object = true;
            self.shape(record);
            self.keep_skeleton(record);
            return;
        }
        self.skeleton_ok = false;
        self.entries.clear();
        let (entries, owned) = (&mut self.entries, &mut self.owned);
        let shape = for_each_entry(record, |key: Cow<'_, str>, raw: &RawValue| {
            let key = match key {
                Cow::Borrowed(k) => {
                    let (f, t) = at(k.as_bytes());
                    Key::At(f, t)
                }
                Cow::Owned(k) => {
                    owned.push(k);
                    Key::Owned(owned.len() - 1)
                }
            };
            let text = raw.get();
            let value = match Num::parse(text) {
                Some(n) => Value::Number(n),
                None => {
                    let (f, t) = at(text.as_bytes());
                    Value::Other(f, t)
                }
            };
            entries.push((key, value));
        });
        self.object = matches!(shape, Ok(Shape::Object));
        self.shape(record);
    }

    /// Reads `record` as one with the last record's skeleton, if it has
    /// it; false (having changed nothing that `parse` keeps) if not.
    fn parse_like_last(&mut self, record: &[u8]) -> bool {
        if !self.skeleton_ok {
            return false;
        }
        self.entries.clear();
        let base = record.as_ptr() as usize;
        let (mut pos, mut from) = (0, 0);
        for cut in &self.cuts {
            let separator = &self.skeleton[from..cut.end];
            if record.get(pos..pos + separator.len()) != Some(separator) {
                return false;
            }
            let key = Key::At(pos + cut.key.0, pos + cut.key.1);
            pos += separator.len();
            let Some((value, end)) = flat_value(record, pos) else {
                return false;
            };
            self.entries.push((key, value_of(value, base)));
            (pos, from) = (end, cut.end);
        }
        if record.get(pos..) != Some(&self.skeleton[from..]) {
            return false;
        }
        // Same keys, same order: same shape.
        self.owned.clear();
        self.object = true;
        true
    }

    /// Keeps the skeleton of `record`, which the scanner read whole.
    fn keep_skeleton(&mut self, record: &[u8]) {
        self.skeleton.clear();
        self.cuts.clear();
        let mut prev = 0;
        for (&(key, _), &(start, end)) in self.entries.iter().zip(&self.spans) {
            let Key::At(kf, kt) = key else {
                self.skeleton_ok = false;
                return;
            };
            self.skeleton.extend_from_slice(&record[prev..start]);
            self.cuts.push(Cut {
                end: self.skeleton.len(),
                key: (kf - prev, kt - prev),
            });
            prev = end;
        }
        self.skeleton.extend_from_slice(&record[prev..]);
        self.skeleton_ok = true;
    }

    /// Sets `shape`: the last one if the keys are the same, else a new one.
    fn shape(&mut self, record: &[u8]) {
        if !self.owned.is_empty() {
            self.shape = 0;
            self.shape_ends.clear();
            return;
        }
        let key = |k: &Key| match *k {
            Key::At(from, to) => &record[from..to],
            Key::Owned(_) => &[][..],
        };
        let mut start = 0;
        let same = self.shape != 0
            && self.entries.len() == self.shape_ends.len()
            && self
                .entries
                .iter()
                .zip(&self.shape_ends)
                .all(|((k, _), &end)| {
                    let was = self.shape_keys.get(start..end).unwrap_or_default();
                    start = end;
                    was == key(k)
                });
        if same {
            return;
        }
        self.shape_keys.clear();
        self.shape_ends.clear();
        for (k, _) in &self.entries {
            self.shape_keys.extend_from_slice(key(k));
            self.shape_ends.push(self.shape_keys.len());
        }
        self.shape = NEXT_SHAPE.fetch_add(1, Ordering::Relaxed);
    }

    /// The last record was read by the scanner whole (not by serde_json):
    /// then it is a JSON object serde_json accepts, keys without escapes.
    pub(super) fn read_whole(&self) -> bool {
        self.skeleton_ok && self.object
    }

    /// Takes the fields of a record parsed elsewhere (`ParsedRecords`):
    /// `entries` as that parse left them, `shape` its shape. What this
    /// parser knew of earlier records goes, so a later `parse` starts
    /// afresh, but a parser given to `load` should not `parse` again: an
    /// empty object would keep the loaded shape.
    pub(super) fn load(&mut self, entries: &[(Key, Value)], shape: u64) {
        self.entries.clear();
        self.entries.extend_from_slice(entries);
        self.owned.clear();
        self.object = true;
        self.shape = shape;
        self.shape_keys.clear();
        self.shape_ends.clear();
        self.skeleton_ok = false;
    }

    /// The name of the field `key` of `record` (the record parsed).
    pub(super) fn key<'a>(&'a self, record: &'a [u8], key: Key) -> &'a [u8] {
        match key {
            Key::At(from, to) => &record[from..to],
            Key::Owned(i) => self.owned[i].as_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a parse gives, spelled out.
    fn read(f: &RecordFields, record: &[u8]) -> (bool, Vec<(String, String)>) {
        let entries = f.entries.iter().map(|&(k, v)| {
            let key = String::from_utf8_lossy(f.key(record, k)).into_owned();
            let value = match v {
                Value::Number(n) => format!("{n:?}"),
                Value::Other(from, to) => String::from_utf8_lossy(&record[from..to]).into_owned(),
            };
            (key, value)
        });
        (f.object, entries.collect())
    }

    /// A parser reused from record to record (taking the last record's
    /// skeleton where it fits) reads each as a fresh one does.
    #[test]
    fn a_reused_parser_reads_each_record_as_a_fresh_one() {
        let records: &[&[u8]] = &[
            br#"{"t":20,"h":40,"s":"lab"}"#,
            br#"{"t":21,"h":41,"s":"lab2"}"#,
            br#"{"t":-2.5,"h":4e3,"s":"x"}"#,
            br#"{"t":2.5,"h":true,"s":null}"#,
            br#"{"t":20, "h":40,"s":"lab"}"#,
            br#"{"t":20, "h":40,"s":"lab"} "#,
            br#"{"t":20, "h":40,"s":"lab"}x"#,
            br#"{"t":20, "h":40,"s":"a","h":1"}"#,
            br#"{"t":20, "h":40,"s":"aA"}"#,
            "{\"t\":201, \"h\":40,\"s\":\"\u{e9}\"}".as_bytes(),
            b"{\"t\":201, \"h\":40,\"s\":\"\xff\"}",
            br#"{"t":20x, "h":40,"s":"lab"}"#,
            br#"{"t":20, "h":[40],"s":"lab"}"#,
            br#"{"t":20, "h":40,"s":"lab","u":1}"#,
            br#"{"t":20, "h":40}"#,
            br#"{"t\u0062":20, "h":40}"#,
            br#"{"t":20, "h":40}"#,
            br#"{"t":12345678901234567890, "h":40}"#,
            br#"{"t":1.0000000000000001, "h":40}"#,
            br#"{"t":20, "h":-0}"#,
            br#"{}"#,
            br#"{}"#,
            b"[1]",
            br#"{"t":20,"t":21}"#,
            br#"{"t":22,"t":23}"#,
            br#"{"t":"#,
        ];
        let mut reused = RecordFields::default();
        for record in records {
            reused.parse(record);
            let mut fresh = RecordFields::default();
            fresh.parse(record);
            let shown = String::from_utf8_lossy(record);
            assert_eq!(read(&reused, record), read(&fresh, record), "{shown}");
            assert_eq!(reused.shape == 0, fresh.shape == 0, "{shown}");
        }
    }

    #[test]
    fn records_with_the_same_keys_have_the_same_shape() {
        let mut f = RecordFields::default();
        f.parse(br#"{"a":1,"bb":"x"}"#);
        let first = f.shape;
        assert_ne!(first, 0);
        f.parse(br#"{ "a" : 2.5, "bb" : null }"#);
        assert_eq!(f.shape, first, "values and spaces do not matter");
        for other in [
            &br#"{"a":1}"#[..],
            br#"{"bb":1,"a":1}"#,
            br#"{"a":1,"bc":1}"#,
        ] {
            f.parse(other);
            assert_ne!(f.shape, first, "{}", String::from_utf8_lossy(other));
        }
        f.parse(br#"{"a\u0062":1}"#);
        assert_eq!(f.shape, 0, "escaped keys have no shape");
        f.parse(br#"{"a":1,"bb":"x"}"#);
        assert!(
            f.shape != first && f.shape != 0,
            "a shape seen again is new"
        );
        let mut g = RecordFields::default();
        g.parse(br#"{"a":1,"bb":"x"}"#);
        assert_ne!(g.shape, f.shape, "shapes are unique across parsers");
    }
}
