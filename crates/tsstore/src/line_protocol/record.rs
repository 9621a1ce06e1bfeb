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

/// Why a point cannot join a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointRefused {
    #[error(
        "field '{0}' has a name tsstore keeps for line protocol records (_measurement, _tags, _series)"
    )]
    ReservedName(String),
    #[error("the store's schema has no field '{0}'")]
    NotInSchema(String),
    #[error("'{0}' has another value in a point of the same timestamp (a schema record holds one)")]
    SchemaClash(String),
}

/// What kind of record points become.
#[derive(Debug, Clone, Copy)]
pub enum Target<'s> {
    Json,
    Schema(&'s Schema),
    Text,
}

/// One record being made of the points of one timestamp. The usual
/// record, one point, is written as it comes, without a copy of its
/// parts; a second point at the timestamp keeps the lines, read again
/// when the record is finished.
#[derive(Debug)]
pub struct RecordBuilder<'s, 'a> {
    target: Target<'s>,
    /// json: the first point's record; text: the lines so far.
    out: Vec<u8>,
    /// json: every point's line, once there is more than one.
    lines: Vec<&'a [u8]>,
    first: &'a [u8],
    /// schema: name and value text, in order.
    values: Vec<(String, String)>,
    points: usize,
}

#[derive(Debug)]
struct Series {
    measurement: String,
    /// Sorted by key.
    tags: Vec<(String, String)>,
    fields: Vec<(String, String)>,
}

impl<'s, 'a> RecordBuilder<'s, 'a> {
    pub fn new(target: Target<'s>) -> RecordBuilder<'s, 'a> {
        RecordBuilder {
            target,
            out: Vec::new(),
            lines: Vec::new(),
            first: b"",
            values: Vec::new(),
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

    /// Adds `point`, parsed from `line`; on refusal (why, in words)
    /// nothing of it is kept.
    pub fn add(&mut self, line: &'a [u8], point: &Point) -> Result<(), PointRefused> {
        match self.target {
            Target::Json => {
                if let Some((k, _)) = point.fields.iter().find(|(k, _)| RESERVED.contains(&&**k)) {
                    return Err(PointRefused::ReservedName(k.to_string()));
                }
                match self.points {
                    0 => {
                        self.first = line;
                        write_point(&mut self.out, point);
                    }
                    1 => self.lines.extend([self.first, line]),
                    _ => self.lines.push(line),
                }
            }
            Target::Schema(schema) => self.add_schema(schema, point)?,
            Target::Text => {
                if !self.out.is_empty() {
                    self.out.push(b'\n');
                }
                self.out.extend_from_slice(line);
            }
        }
        self.points += 1;
        Ok(())
    }

    fn add_schema(&mut self, schema: &Schema, point: &Point) -> Result<(), PointRefused> {
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
                return Err(PointRefused::NotInSchema(name.clone()));
            }
            let clash = self
                .values
                .iter()
                .chain(named.iter().take_while(|(n, _)| n != name))
                .any(|(n, v)| n == name && v != value);
            if clash {
                return Err(PointRefused::SchemaClash(name.clone()));
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
        let mut out = Vec::new();
        self.finish_into(&mut out);
        out
    }

    /// Appends the record's payload to `out`.
    pub fn finish_into(self, out: &mut Vec<u8>) {
        match self.target {
            Target::Text => out.extend_from_slice(&self.out),
            Target::Schema(_) => {
                out.push(b'{');
                push_members(out, &self.values);
                out.push(b'}');
            }
            Target::Json if self.lines.is_empty() => out.extend_from_slice(&self.out),
            Target::Json => {
                let series = merged(&self.lines);
                if let [one] = series.as_slice() {
                    push_series(out, one);
                    return;
                }
                out.extend_from_slice(b"{\"_series\":[");
                for (i, s) in series.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    push_series(out, s);
                }
                out.extend_from_slice(b"]}");
            }
        }
    }
}

/// The points of `lines` by series, in the order each series came; a
/// series' later value of a field replaces the earlier.
fn merged(lines: &[&[u8]]) -> Vec<Series> {
    let mut series: Vec<Series> = Vec::new();
    // Every line parsed once already: none fails now.
    for point in lines.iter().filter_map(|l| super::parse_line(l).ok()) {
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
        match series
            .iter_mut()
            .find(|s| s.measurement == point.measurement && s.tags == tags)
        {
            Some(s) => {
                for (k, v) in fields {
                    match s.fields.iter_mut().find(|(have, _)| *have == k) {
                        Some(slot) => slot.1 = v,
                        None => s.fields.push((k, v)),
                    }
                }
            }
            None => series.push(Series {
                measurement: point.measurement.to_string(),
                tags,
                fields: fields.collect(),
            }),
        }
    }
    series
}

/// One point in the one-series layout, written straight from its parts.
fn write_point(out: &mut Vec<u8>, p: &Point) {
    out.extend_from_slice(b"{\"_measurement\":");
    push_json_string(out, &p.measurement);
    out.extend_from_slice(b",\"_tags\":{");
    let sorted = p.tags.windows(2).all(|w| w[0].0 <= w[1].0);
    let mut order: Vec<usize> = (0..p.tags.len()).collect();
    if !sorted {
        order.sort_by(|&a, &b| p.tags[a].0.cmp(&p.tags[b].0));
    }
    for (i, &t) in order.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json_string(out, &p.tags[t].0);
        out.push(b':');
        push_json_string(out, &p.tags[t].1);
    }
    out.push(b'}');
    for (k, v) in &p.fields {
        out.push(b',');
        push_json_string(out, k);
        out.push(b':');
        push_value(out, v);
    }
    out.push(b'}');
}

fn push_series(out: &mut Vec<u8>, s: &Series) {
    out.extend_from_slice(b"{\"_measurement\":");
    push_json_string(out, &s.measurement);
    out.extend_from_slice(b",\"_tags\":{");
    for (i, (k, v)) in s.tags.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json_string(out, k);
        out.push(b':');
        push_json_string(out, v);
    }
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
        push_json_string(out, k);
        out.push(b':');
        out.extend_from_slice(v.as_bytes());
    }
}

/// `s` as a JSON string: copied as it is when nothing in it needs an
/// escape (the usual name or tag), else by serde_json.
fn push_json_string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

fn json_string(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    push_json_string(&mut out, s);
    String::from_utf8(out).unwrap_or_default()
}

/// A field value as JSON: a float keeps a `.` or an exponent (`40.0`),
/// so it is told apart from an integer.
fn push_value(out: &mut Vec<u8>, v: &FieldValue) {
    // Writing to a Vec cannot fail.
    let _ = match v {
        FieldValue::Float(f) => serde_json::to_writer(&mut *out, f),
        FieldValue::Integer(i) => serde_json::to_writer(&mut *out, i),
        FieldValue::Unsigned(u) => serde_json::to_writer(&mut *out, u),
        FieldValue::String(s) => {
            push_json_string(out, s);
            Ok(())
        }
        FieldValue::Boolean(b) => serde_json::to_writer(&mut *out, b),
    };
}

fn value_json(v: &FieldValue) -> String {
    let mut out = Vec::new();
    push_value(&mut out, v);
    String::from_utf8(out).unwrap_or_default()
}
