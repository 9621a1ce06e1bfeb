//! A record's top-level fields, parsed once for every aggregator that
//! adds the same record: a store's rollups read each raw record once and
//! parse it once, however many windows they keep.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::value::RawValue;

use super::field::Num;
use crate::flat_json::{Shape, for_each_entry};
use crate::json_scan::{FlatValue, flat_object};

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
}

/// Shapes are unique across every `RecordFields` (an aggregator may be
/// fed from several: a rollup's job, then a read of its open window).
static NEXT_SHAPE: AtomicU64 = AtomicU64::new(1);

impl RecordFields {
    /// Parses `record`: flat records with plain numbers (nearly all sensor
    /// data) take the scanner; anything else, or anything it is unsure
    /// of, serde_json.
    pub fn parse(&mut self, record: &[u8]) {
        self.entries.clear();
        self.owned.clear();
        let base = record.as_ptr() as usize;
        // Every slice handed out below lies inside `record`.
        let at = |s: &[u8]| {
            let from = s.as_ptr() as usize - base;
            (from, from + s.len())
        };
        let entries = &mut self.entries;
        let flat = flat_object(record, |key, value| {
            let (kf, kt) = at(key);
            let value = match value {
                FlatValue::Int(v) => Value::Number(Num::Int(v)),
                FlatValue::Float(v) => Value::Number(Num::Float(v)),
                FlatValue::Other(text) => {
                    let (f, t) = at(text.as_bytes());
                    Value::Other(f, t)
                }
            };
            entries.push((Key::At(kf, kt), value));
        });
        if flat {
            self.object = true;
            self.shape(record);
            return;
        }
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
