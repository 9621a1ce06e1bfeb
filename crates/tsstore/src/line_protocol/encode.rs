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

use std::collections::BTreeMap;

use serde_json::Value;

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

/// Appends the points of one record (`data`, JSON) at `timestamp` (ns)
/// to `out`, one line each; how many. `Err`: not a JSON object, or
/// nothing in it to send (why).
pub fn encode_record(
    out: &mut Vec<u8>,
    timestamp: i64,
    data: &[u8],
    options: &LineOptions,
) -> Result<usize, String> {
    let value: Value = serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err("not a JSON object".into());
    };
    if let Some(Value::Array(series)) = object.get("_series") {
        let mut points = 0;
        for entry in series {
            if let Value::Object(o) = entry {
                points += usize::from(encode_point(out, timestamp, o, options));
            }
        }
        return match points {
            0 => Err("no point with a field to send".into()),
            n => Ok(n),
        };
    }
    if encode_point(out, timestamp, &object, options) {
        Ok(1)
    } else {
        Err("no field to send (line protocol needs one)".into())
    }
}

/// One point; `false` (nothing written) when it has no field.
fn encode_point(
    out: &mut Vec<u8>,
    timestamp: i64,
    object: &serde_json::Map<String, Value>,
    options: &LineOptions,
) -> bool {
    let from_lines = object.get("_measurement").and_then(Value::as_str);
    let measurement = from_lines.unwrap_or(&options.measurement);
    let mut tags: BTreeMap<&str, String> = options
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    if let Some(Value::Object(own)) = object.get("_tags") {
        for (k, v) in own {
            if let Some(text) = tag_text(v) {
                tags.insert(k, text);
            }
        }
    }
    let mut fields: Vec<(String, String)> = Vec::new();
    for (k, v) in object {
        if from_lines.is_some() && (k == "_measurement" || k == "_tags") {
            continue;
        }
        if options.tag_fields.iter().any(|t| t == k) {
            if let Some(text) = tag_text(v) {
                tags.insert(k, text);
            }
            continue;
        }
        push_fields(&mut fields, k.clone(), v, from_lines.is_some());
    }
    if fields.is_empty() {
        return false;
    }
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
    for (i, (k, v)) in fields.iter().enumerate() {
        out.push(if i == 0 { b' ' } else { b',' });
        escape(out, k, b",= ");
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
    }
    out.push(b' ');
    out.extend_from_slice(timestamp.to_string().as_bytes());
    out.push(b'\n');
    true
}

/// A tag's text: strings as they are, numbers and booleans as written;
/// nothing for null, objects and arrays.
fn tag_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The fields of `value` under `name` (flattened when nested), as line
/// protocol values. `typed`: integers keep their type (`i`).
fn push_fields(fields: &mut Vec<(String, String)>, name: String, value: &Value, typed: bool) {
    match value {
        Value::Null => {}
        Value::Bool(b) => fields.push((name, b.to_string())),
        Value::Number(n) => {
            let text = n.to_string();
            let integer = !text.contains(['.', 'e', 'E']);
            let v = match (typed && integer, n.as_f64()) {
                (true, _) => format!("{text}i"),
                (false, Some(f)) if f.is_finite() => {
                    if integer {
                        text
                    } else {
                        f.to_string()
                    }
                }
                (false, _) => return,
            };
            fields.push((name, v));
        }
        Value::String(s) => {
            let mut v = String::with_capacity(s.len() + 2);
            v.push('"');
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    v.push('\\');
                }
                v.push(c);
            }
            v.push('"');
            fields.push((name, v));
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                push_fields(fields, format!("{name}{SEPARATOR}{i}"), item, typed);
            }
        }
        Value::Object(o) => {
            for (k, item) in o {
                push_fields(fields, format!("{name}{SEPARATOR}{k}"), item, typed);
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
