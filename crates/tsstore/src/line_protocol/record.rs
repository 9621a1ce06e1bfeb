//! Points as one record of a store: the points of a write that share a
//! timestamp are one record, since a store's timestamps strictly increase.
//! The layouts are part of the API (docs/LINE_PROTOCOL.md):
//!
//! - json: `{"_measurement":"weather","_tags":{"site":"roof"},"temp":21.5,
//!   "hum":40}`: tags (sorted, strings) under `_tags`, fields at the top
//!   level so that filters, rules, aggregation and the console read them
//!   as any record's. A float keeps a `.` or an exponent (`40.0`), an
//!   integer has none. Points of one series at one timestamp merge (the
//!   later value of a field wins, as InfluxDB keeps it); points of several
//!   series at one timestamp make `{"_series":[{...},{...}]}`, each in the
//!   one-series layout, in the order they came.
//! - schema: tags and fields by name, flat (`_measurement` too when the
//!   schema has a field of that name); a name the schema lacks refuses the
//!   line, and so does a second point at the timestamp that gives a name
//!   another value.
//! - text and binary: the lines as written, joined by `\n`.

use super::parse::{FieldValue, Point};
use crate::schema::Schema;

/// Names a json record of points keeps for itself.
pub const RESERVED: [&str; 3] = ["_measurement", "_tags", "_series"];

/// What kind of record points become.
#[derive(Debug, Clone, Copy)]
pub enum Target<'s> {
    Json,
    Schema(&'s Schema),
    Text,
}

/// One record being made of the points of one timestamp.
#[derive(Debug)]
pub struct RecordBuilder<'s> {
    target: Target<'s>,
    /// json: each series (its key, and the record text of its point).
    series: Vec<Series>,
    /// schema: name and value text, in order.
    values: Vec<(String, String)>,
    /// text: the lines.
    text: Vec<u8>,
    points: usize,
}

#[derive(Debug)]
struct Series {
    measurement: String,
    /// Sorted by key.
    tags: Vec<(String, String)>,
    fields: Vec<(String, String)>,
}

impl<'s> RecordBuilder<'s> {
    pub fn new(target: Target<'s>) -> RecordBuilder<'s> {
        RecordBuilder {
            target,
            series: Vec::new(),
            values: Vec::new(),
            text: Vec::new(),
            points: 0,
        }
    }

    /// Points added so far.
    pub fn len(&self) -> usize {
        self.points
    }

    pub fn is_empty(&self) -> bool {
        self.points == 0
    }

    /// Adds the point of `line`; on refusal (why, in words) nothing of it
    /// is kept.
    pub fn add(&mut self, line: &[u8], point: &Point) -> Result<(), String> {
        match self.target {
            Target::Json => self.add_json(point)?,
            Target::Schema(schema) => self.add_schema(schema, point)?,
            Target::Text => {
                if !self.text.is_empty() {
                    self.text.push(b'\n');
                }
                self.text.extend_from_slice(line);
            }
        }
        self.points += 1;
        Ok(())
    }

    fn add_json(&mut self, point: &Point) -> Result<(), String> {
        if let Some((k, _)) = point.fields.iter().find(|(k, _)| RESERVED.contains(&&**k)) {
            return Err(format!(
                "field '{k}' has a name tsstore keeps for line protocol records (_measurement, _tags, _series)"
            ));
        }
        let mut tags: Vec<(String, String)> = point
            .tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tags.sort();
        let fields = point
            .fields
            .iter()
            .map(|(k, v)| (k.to_string(), value_json(v)));
        let same = self
            .series
            .iter_mut()
            .find(|s| s.measurement == point.measurement && s.tags == tags);
        match same {
            Some(s) => {
                for (k, v) in fields {
                    match s.fields.iter_mut().find(|(have, _)| *have == k) {
                        Some(slot) => slot.1 = v,
                        None => s.fields.push((k, v)),
                    }
                }
            }
            None => self.series.push(Series {
                measurement: point.measurement.to_string(),
                tags,
                fields: fields.collect(),
            }),
        }
        Ok(())
    }

    fn add_schema(&mut self, schema: &Schema, point: &Point) -> Result<(), String> {
        let known = |name: &str| schema.fields().iter().any(|f| f.name == name);
        let mut named: Vec<(String, String)> = Vec::new();
        if known("_measurement") {
            named.push(("_measurement".into(), json_string(&point.measurement)));
        }
        for (k, v) in &point.tags {
            named.push((k.to_string(), json_string(v)));
        }
        for (k, v) in &point.fields {
            named.push((k.to_string(), value_json(v)));
        }
        for (name, value) in &named {
            if name != "_measurement" && !known(name) {
                return Err(format!("the store's schema has no field '{name}'"));
            }
            let clash = self
                .values
                .iter()
                .chain(named.iter().take_while(|(n, _)| n != name))
                .any(|(n, v)| n == name && v != value);
            if clash {
                return Err(format!(
                    "'{name}' has another value in a point of the same timestamp (a schema record holds one)"
                ));
            }
        }
        for (name, value) in named {
            if !self.values.iter().any(|(n, _)| *n == name) {
                self.values.push((name, value));
            }
        }
        Ok(())
    }

    /// The record's payload.
    pub fn finish(self) -> Vec<u8> {
        match self.target {
            Target::Text => self.text,
            Target::Schema(_) => {
                let mut out = b"{".to_vec();
                push_members(&mut out, &self.values);
                out.push(b'}');
                out
            }
            Target::Json => {
                let mut out = Vec::new();
                if let [one] = self.series.as_slice() {
                    push_series(&mut out, one);
                    return out;
                }
                out.extend_from_slice(b"{\"_series\":[");
                for (i, s) in self.series.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    push_series(&mut out, s);
                }
                out.extend_from_slice(b"]}");
                out
            }
        }
    }
}

fn push_series(out: &mut Vec<u8>, s: &Series) {
    out.extend_from_slice(b"{\"_measurement\":");
    out.extend_from_slice(json_string(&s.measurement).as_bytes());
    out.extend_from_slice(b",\"_tags\":{");
    let tags: Vec<(String, String)> = s
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), json_string(v)))
        .collect();
    push_members(out, &tags);
    out.push(b'}');
    if !s.fields.is_empty() {
        out.push(b',');
        push_members(out, &s.fields);
    }
    out.push(b'}');
}

/// `"k":v,...` with `v` already JSON.
fn push_members(out: &mut Vec<u8>, members: &[(String, String)]) {
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(json_string(k).as_bytes());
        out.push(b':');
        out.extend_from_slice(v.as_bytes());
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// A field value as JSON text.
fn value_json(v: &FieldValue) -> String {
    match v {
        // Shortest text that reads back the same, with a `.` or exponent.
        FieldValue::Float(f) => serde_json::Value::from(*f).to_string(),
        FieldValue::Integer(i) => i.to_string(),
        FieldValue::Unsigned(u) => u.to_string(),
        FieldValue::String(s) => json_string(s),
        FieldValue::Boolean(b) => b.to_string(),
    }
}
