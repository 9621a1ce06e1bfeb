//! A record's top-level fields, parsed once for every aggregator that
//! adds the same record: a store's rollups read each raw record once and
//! parse it once, however many windows they keep.

use std::borrow::Cow;

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
}

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
    }

    /// The name of the field `key` of `record` (the record parsed).
    pub(super) fn key<'a>(&'a self, record: &'a [u8], key: Key) -> &'a [u8] {
        match key {
            Key::At(from, to) => &record[from..to],
            Key::Owned(i) => self.owned[i].as_bytes(),
        }
    }
}
