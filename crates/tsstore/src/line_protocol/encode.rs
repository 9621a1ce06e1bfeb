//! Records as line protocol, for shipping a store to InfluxDB or
//! VictoriaMetrics. A record made from line protocol (`_measurement`,
//! `_tags`, `_series`: `record`'s layouts) becomes its points again, types
//! kept (an integer gets its `i`). Any other JSON object is one point of
//! `measurement`: the `tag_fields` named become tags, numbers and booleans
//! fields (numbers as floats, since a JSON number says nothing of type and
//! a central engine refuses a field that changes type), strings string
//! fields; nested objects and arrays flatten into `parent_child` and
//! `parent_0` names, as Telegraf's JSON parser names them; nulls are
//! left out. Extra `tags` (the gateway's) go on every point.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::value::RawValue;

use crate::flat_json::{Shape, for_each_entry};

/// Between the names of a nested field: `{"a":{"b":1}}` is field `a_b`.
pub const SEPARATOR: char = '_';

/// How records become points.
#[derive(Debug, Clone, Default)]
pub struct LineOptions {
    /// For records without their own measurement.
    pub measurement: String,
    /// Top-level fields sent as tags.
    pub tag_fields: Vec<String>,
    /// Tags added to every point (a record's own tag of the name wins).
    pub tags: BTreeMap<String, String>,
}

/// Why a record has no line to send.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("{0}, not a JSON object")]
    NotAnObject(&'static str),
    #[error("_series is not a list of points")]
    SeriesNotAList,
    #[error("no point with a field to send")]
    NoPoint,
    #[error("no field to send (line protocol needs one)")]
    NoField,
}

/// An object's members, borrowed from the record's text.
type Members<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

fn members(text: &[u8]) -> Result<Members<'_>, EncodeError> {
    let mut out = Members::new();
    match for_each_entry::<&RawValue, _>(text, |k, v| out.push((k, v)))? {
        Shape::Object => Ok(out),
        Shape::Other(what) => Err(EncodeError::NotAnObject(what)),
    }
}

/// Appends the points of one record (`data`, JSON) at `timestamp` (ns)
/// to `out`, one line each; how many. `Err`: not a JSON object, or
/// nothing in it to send (why).
pub fn encode_record(
    out: &mut Vec<u8>,
    timestamp: i64,
    data: &[u8],
    options: &LineOptions,
) -> Result<usize, EncodeError> {
    let object = members(data)?;
    if let Some((_, series)) = object.iter().find(|(k, _)| k == "_series") {
        let entries: Vec<&RawValue> =
            serde_json::from_str(series.get()).map_err(|_| EncodeError::SeriesNotAList)?;
        let mut points = 0;
        for entry in entries {
            if let Ok(o) = members(entry.get().as_bytes()) {
                points += usize::from(encode_point(out, timestamp, &o, options));
            }
        }
        return match points {
            0 => Err(EncodeError::NoPoint),
            n => Ok(n),
        };
    }
    if encode_point(out, timestamp, &object, options) {
        Ok(1)
    } else {
        Err(EncodeError::NoField)
    }
}

/// One point; `false` (nothing written) when it has no field.
fn encode_point(
    out: &mut Vec<u8>,
    timestamp: i64,
    object: &Members,
    options: &LineOptions,
) -> bool {
    let own = |name: &str| object.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let from_lines =
        own("_measurement").and_then(|v| serde_json::from_str::<Cow<str>>(v.get()).ok());
    let measurement: &str = from_lines.as_deref().unwrap_or(&options.measurement);
    let mut tags: Vec<(Cow<str>, Cow<str>)> = options
        .tags
        .iter()
        .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str())))
        .collect();
    let mut put_tag = |k: Cow<'_, str>, v: &RawValue| {
        if let Some(text) = tag_text(v) {
            match tags.iter_mut().find(|(have, _)| *have == k) {
                Some(slot) => slot.1 = Cow::Owned(text.into_owned()),
                None => tags.push((Cow::Owned(k.into_owned()), Cow::Owned(text.into_owned()))),
            }
        }
    };
    if from_lines.is_some()
        && let Some(raw) = own("_tags")
        && let Ok(list) = members(raw.get().as_bytes())
    {
        for (k, v) in list {
            put_tag(k, v);
        }
    }
    for (k, v) in object {
        if options.tag_fields.iter().any(|t| t == k) {
            put_tag(k.clone(), v);
        }
    }
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    let start = out.len();
    escape(out, measurement, b", ");
    for (k, v) in &tags {
        if v.is_empty() || k.is_empty() {
            continue;
        }
        out.push(b',');
        escape(out, k, b",= ");
        out.push(b'=');
        escape(out, v, b",= ");
    }
    let mut fields = 0;
    for (k, v) in object {
        let reserved = from_lines.is_some() && (k == "_measurement" || k == "_tags");
        if reserved || options.tag_fields.iter().any(|t| t == k) {
            continue;
        }
        push_field(out, &mut fields, k, v, from_lines.is_some());
    }
    if fields == 0 {
        out.truncate(start);
        return false;
    }
    out.push(b' ');
    out.extend_from_slice(timestamp.to_string().as_bytes());
    out.push(b'\n');
    true
}

/// A tag's text: strings as they are, numbers and booleans as written;
/// nothing for null, objects and arrays.
fn tag_text(v: &RawValue) -> Option<Cow<'_, str>> {
    let text = v.get();
    match text.as_bytes().first()? {
        b'"' => serde_json::from_str::<Cow<str>>(text).ok(),
        b'{' | b'[' | b'n' => None,
        _ => Some(Cow::Borrowed(text)),
    }
}

/// The field(s) of `value` under `name` (flattened when nested), written
/// as line protocol. `typed`: integers keep their type (`i`); otherwise
/// every number is a float, written as JSON wrote it (line protocol reads
/// JSON's number syntax).
fn push_field(out: &mut Vec<u8>, fields: &mut usize, name: &str, value: &RawValue, typed: bool) {
    let text = value.get();
    let Some(&first) = text.as_bytes().first() else {
        return;
    };
    let mut name_and_sep = |out: &mut Vec<u8>| {
        out.push(if *fields == 0 { b' ' } else { b',' });
        *fields += 1;
        escape(out, name, b",= ");
        out.push(b'=');
    };
    match first {
        b'n' => {}
        b't' | b'f' => {
            name_and_sep(out);
            out.extend_from_slice(text.as_bytes());
        }
        b'"' => {
            let Ok(s) = serde_json::from_str::<Cow<str>>(text) else {
                return;
            };
            name_and_sep(out);
            out.push(b'"');
            for &b in s.as_bytes() {
                if b == b'"' || b == b'\\' {
                    out.push(b'\\');
                }
                out.push(b);
            }
            out.push(b'"');
        }
        b'{' => {
            if let Ok(list) = members(text.as_bytes()) {
                for (k, v) in list {
                    push_field(out, fields, &format!("{name}{SEPARATOR}{k}"), v, typed);
                }
            }
        }
        b'[' => {
            if let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(text) {
                for (i, v) in items.into_iter().enumerate() {
                    push_field(out, fields, &format!("{name}{SEPARATOR}{i}"), v, typed);
                }
            }
        }
        _ => {
            name_and_sep(out);
            out.extend_from_slice(text.as_bytes());
            if typed && !text.contains(['.', 'e', 'E']) {
                out.push(b'i');
            }
        }
    }
}

/// `text` with a backslash before each of `special` (and newlines, which
/// would end the line, as spaces).
fn escape(out: &mut Vec<u8>, text: &str, special: &[u8]) {
    for &b in text.as_bytes() {
        match b {
            b'\n' | b'\r' => out.push(b' '),
            _ => {
                if special.contains(&b) {
                    out.push(b'\\');
                }
                out.push(b);
            }
        }
    }
}
