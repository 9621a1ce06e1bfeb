//! The constraints the server checks on parameters and bodies (store
//! name pattern, limits, enums, power-of-two sizes, an exact duration
//! pattern), written into the document so that a request it calls valid
//! is one the server takes.

use serde_json::{Value, json};

use crate::limits::Limits;
use crate::records::ack_window;

/// A regex for the integers 1..=`max` in decimal, leading zeros allowed.
fn up_to(max: u64) -> String {
    let digits: Vec<u8> = max.to_string().bytes().map(|b| b - b'0').collect();
    let n = digits.len();
    let mut alts = Vec::new();
    if n > 1 {
        alts.push(format!("[1-9][0-9]{{0,{}}}", n - 2));
    }
    for i in 0..n {
        let low = if i == 0 { 1 } else { 0 };
        if digits[i] > low {
            let prefix: String = digits[..i].iter().map(|d| d.to_string()).collect();
            let range = format!("[{low}-{}]", digits[i] - 1);
            alts.push(format!("{prefix}{range}[0-9]{{{}}}", n - i - 1));
        }
    }
    alts.push(max.to_string());
    format!("0*({})", alts.join("|"))
}

/// A duration as `tsstore::parse_duration` takes it: a whole number > 0
/// and a unit, at most `i64::MAX` nanoseconds.
fn duration_pattern() -> String {
    let units = [
        ("ms", 1_000_000u64),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
        ("d", 86_400_000_000_000),
        ("w", 604_800_000_000_000),
    ];
    let alts: Vec<String> = units
        .iter()
        .map(|(unit, scale)| format!("({}){unit}", up_to(i64::MAX as u64 / scale)))
        .collect();
    format!("^({})$", alts.join("|"))
}

/// The constraints the server checks on a parameter of this name.
pub(super) fn parameter_schema(name: &str, limits: &Limits) -> Option<Value> {
    let duration = json!({"type": "string", "pattern": duration_pattern()});
    let time = json!({"type": "integer", "format": "int64", "minimum": 0});
    const FNS: &str = "(sum|avg|min|max|count|first|last)";
    Some(match name {
        "store" => json!({"type": "string", "pattern": STORE_NAME_PATTERN}),
        "ts" => json!({"type": "integer", "format": "int64", "minimum": 1}),
        "limit" => super::limit_schema(limits),
        "format" => json!({"type": "string", "enum": ["full", "compact"]}),
        "encoding" => json!({"type": "string", "enum": ["raw", "compressed"]}),
        "every" => duration.clone(),
        "precision" => json!({"type": "string", "enum": ["ns", "us", "ms", "s"]}),
        "include_data" | "filter_ignore_case" | "reset" => json!({"type": "boolean"}),
        // `consumers::check_name`.
        "name" | "consumer" => {
            json!({"type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$"})
        }
        "window" => json!({"type": "integer", "minimum": 1, "maximum": ack_window::MAX_RECORDS}),
        "window_bytes" => {
            json!({"type": "integer", "minimum": 1, "maximum": ack_window::MAX_BYTES})
        }
        "start_time" | "end_time" | "after" | "timestamp" => time,
        "since" | "agg_window" => duration,
        "agg_fields" => json!({
            "type": "string",
            "pattern": format!("^[A-Za-z0-9_.]+:{FNS}(\\+{FNS})*(,[A-Za-z0-9_.]+:{FNS}(\\+{FNS})*)*$"),
        }),
        "agg_default" => json!({"type": "string", "pattern": format!("^{FNS}(,{FNS})*$")}),
        "timestamps" => json!({"type": "string", "enum": ["number", "string"]}),
        // A rollup's window (`DELETE …/rollups/{rollup}`).
        "rollup" => duration,
        "resolution" => json!({
            "type": "string",
            "pattern": duration_pattern().replacen("^(", "^(raw|auto|", 1),
        }),
        "max_points" => json!({"type": "integer", "minimum": 1, "maximum": limits.max_records}),
        "envelope" => json!({"type": "string", "enum": ["data", "none"]}),
        // `envelope::Framing::new`.
        "timestamp_field" => json!({"type": "string", "minLength": 1, "maxLength": 256}),
        _ => return None,
    })
}

/// `[A-Za-z0-9_-]{1,64}`, not starting with `-` (`tsstore::validate_store_name`).
const STORE_NAME_PATTERN: &str = "^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$";

fn powers_of_two(from: u32, to: u32) -> Vec<u32> {
    (from..=to).map(|p| 1u32 << p).collect()
}

/// `schema`, or JSON `null` (an optional field sent as null is absent).
pub(super) fn or_null(mut schema: Value) -> Value {
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        schema["type"] = json!([t, "null"]);
    }
    if let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut) {
        values.push(Value::Null);
    }
    schema
}

/// A timestamp in an answer: a number, or with `timestamps=string` a
/// decimal string.
fn stamp_out() -> Value {
    json!({"oneOf": [
        {"type": "integer", "format": "int64"},
        {"type": "string", "pattern": "^-?[0-9]{1,19}$"},
    ]})
}

/// Body schemas, as strict as the server's checks; response shapes as
/// the encoders write them.
pub(super) fn component_schemas() -> Vec<(&'static str, Value)> {
    let field_types = [
        "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32",
        "float64", "bool", "string",
    ];
    vec![
        (
            "CreateStore",
            json!({
                "type": "object",
                "required": ["name"],
                "additionalProperties": false,
                "properties": {
                    "name": {"type": "string", "pattern": STORE_NAME_PATTERN},
                    "num_blocks": or_null(json!({"type": "integer", "minimum": 1, "maximum": u32::MAX})),
                    "data_block_size": or_null(json!({"type": "integer", "enum": powers_of_two(6, 30)})),
                    "index_block_size": or_null(json!({"type": "integer", "enum": powers_of_two(4, 30)})),
                    "data_type": or_null(json!({"type": "string", "enum": ["binary", "text", "json", "schema"]})),
                    "max_future_skew": or_null(json!({
                        "type": "string",
                        "pattern": duration_pattern().replacen("^(", "^(0+|off|", 1),
                    })),
                    "rollups": or_null(json!({
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/RollupIn"},
                    })),
                },
            }),
        ),
        (
            "RollupIn",
            json!({
                "type": "object",
                "required": ["window"],
                "additionalProperties": false,
                "properties": {
                    "window": {"type": "string", "pattern": duration_pattern()},
                    "functions": or_null(json!({
                        "type": "array",
                        "uniqueItems": true,
                        "items": {"type": "string", "enum": ["sum", "avg", "min", "max", "count", "first", "last"]},
                    })),
                    "keep": or_null(json!({"type": "string", "pattern": duration_pattern()})),
                    "num_blocks": or_null(json!({"type": "integer", "minimum": 1, "maximum": u32::MAX})),
                },
                // `keep` or `num_blocks`, not both.
                "not": {
                    "required": ["keep", "num_blocks"],
                    "properties": {"keep": {"type": "string"}, "num_blocks": {"type": "integer"}},
                },
            }),
        ),
        (
            "RecordIn",
            json!({
                "type": "object",
                "required": ["data"],
                "additionalProperties": false,
                "properties": {
                    "timestamp": {
                        "description": "Nanoseconds since the Unix epoch (or the precision asked), a whole number or a decimal string; absent, null or 0: now.",
                        "oneOf": [
                            {"type": "integer", "format": "int64", "minimum": 0},
                            // 18 digits: every such string is in range.
                            {"type": "string", "pattern": "^[0-9]{1,18}$"},
                            {"type": "null"},
                        ],
                    },
                    "data": {"description": "json stores: any JSON value; text: a string; binary: base64."},
                },
            }),
        ),
        ("StampOut", stamp_out()),
        (
            "RecordOrData",
            json!({
                "description": "A record {\"timestamp\"?, \"data\"}, or with envelope=none the record's data itself (any JSON value).",
                "anyOf": [
                    {"$ref": "#/components/schemas/RecordIn"},
                    {"description": "envelope=none: the record's data"},
                ],
            }),
        ),
        (
            "SchemaIn",
            json!({
                "type": "object",
                "required": ["fields"],
                "additionalProperties": false,
                "properties": {"fields": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": tsstore::MAX_FIELDS,
                    "items": {
                        "type": "object",
                        "required": ["index", "name", "type"],
                        "additionalProperties": false,
                        "properties": {
                            "index": {"type": "integer", "minimum": 1, "maximum": u32::MAX},
                            "name": {"type": "string", "minLength": 1, "maxLength": tsstore::MAX_FIELD_NAME},
                            "type": {"type": "string", "enum": field_types},
                        },
                    },
                }},
            }),
        ),
        (
            "ObjectOut",
            json!({
                "type": "object",
                "description": "One stored record.",
                "required": ["timestamp", "block_num", "size"],
                "properties": {
                    "timestamp": {"$ref": "#/components/schemas/StampOut"},
                    "block_num": {"type": "integer", "minimum": 0},
                    "size": {"type": "integer", "minimum": 0},
                    "data": {"description": "json stores: the JSON value; text: a string; binary: base64. Absent with include_data=false."},
                },
            }),
        ),
        (
            "WindowOut",
            json!({
                "type": "object",
                "description": "One aggregation window, reported at its end.",
                "required": ["timestamp", "records", "partial", "data"],
                "properties": {
                    "timestamp": {"$ref": "#/components/schemas/StampOut"},
                    "records": {"type": "integer", "minimum": 0},
                    "partial": {"type": "boolean"},
                    "data": {"type": "object"},
                },
            }),
        ),
        (
            "ObjectList",
            json!({
                "type": "object",
                "description": "Records, or with agg_window windows; with format=compact and aggregation the first element is {\"_schema\": {index: name}} (not counted).",
                "required": ["objects", "count"],
                "properties": {
                    "count": {"type": "integer", "minimum": 0},
                    "objects": {"type": "array", "items": {"anyOf": [
                        {"$ref": "#/components/schemas/ObjectOut"},
                        {"$ref": "#/components/schemas/WindowOut"},
                        {"type": "object", "required": ["_schema"], "properties": {"_schema": {"type": "object"}}},
                    ]}},
                },
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_ranges_as_patterns() {
        assert_eq!(up_to(1), "0*(1)");
        assert_eq!(up_to(9), "0*([1-8][0-9]{0}|9)");
        assert_eq!(up_to(10), "0*([1-9][0-9]{0,0}|10)");
        assert_eq!(
            up_to(15250),
            "0*([1-9][0-9]{0,3}|1[0-4][0-9]{3}|15[0-1][0-9]{2}|152[0-4][0-9]{1}|15250)"
        );
        // Checked against the parser by the schemathesis run (tests/openapi.rs).
        assert!(duration_pattern().contains(&format!("({})w", up_to(15250))));
    }
}
