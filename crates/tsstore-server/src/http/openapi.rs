//! `/api/openapi.json`, made to tell the truth about what the server
//! answers.
//!
//! utoipa builds the document from the handlers' annotations (routes,
//! success bodies). This module then writes what the annotations cannot
//! know: every error status an operation can return, computed by passing
//! one example of every variant of the errors it meets through the same
//! `From` impls the server answers with (`http::error`), so the two cannot
//! disagree; and the constraints the server checks on parameters and
//! bodies (store name pattern, limits, enums, power-of-two sizes), so that
//! a request the document calls valid is one the server takes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use tsstore::{Error as StoreError, SchemaError};

use super::error::ApiError;
use crate::app::Limits;
use crate::auth::AuthError;
use crate::keys::KeyError;
use crate::outbound::{OutboundError, SpecError};
use crate::provision::ProvisionError;
use crate::records::RecordError;
use crate::registry::RegistryError;

/// What an operation can run into; each has the examples of its errors.
#[derive(Debug, Clone, Copy)]
enum Meets {
    /// Every request: the request timeout, internal faults.
    Always,
    /// `{store}` in the path and a store key.
    StoreKey,
    AdminKey,
    /// The store is opened (lazily) for the request.
    OpenStore,
    /// A request body is read.
    Body,
    /// The body must be JSON of the operation's shape.
    JsonBody,
    CreateStore,
    DeleteStore,
    /// Records are taken in.
    Intake,
    /// A list read with options.
    Read,
    /// `{ts}` in the path, one record by time.
    ByTime,
    Schema,
    /// Files of the store are touched (reset, stats, listing).
    Disk,
    /// A WebSocket upgrade, and for live reads the reader bound.
    Upgrade,
    /// A geometry to compute with.
    Calc,
    /// Outbound connections: their settings, bound and ids.
    Connections,
}

#[cfg(test)]
fn store_error_examples() -> Vec<StoreError> {
    use std::io::{Error as IoError, ErrorKind};
    vec![
        StoreError::TimestampOutOfOrder {
            timestamp: 1,
            newest: 2,
        },
        StoreError::InvalidTimestamp(-1),
        StoreError::NotFound(1),
        StoreError::StoreExists("s".into()),
        StoreError::StoreNotFound("s".into()),
        StoreError::InUse("s".into()),
        StoreError::InvalidName {
            name: "?".into(),
            reason: "r",
        },
        StoreError::InvalidConfig("c".into()),
        StoreError::TooLarge { size: 2, max: 1 },
        StoreError::InvalidData {
            data_type: "text",
            reason: "r".into(),
        },
        StoreError::ReadOverrun,
        StoreError::Corrupt("c".into()),
        StoreError::Schema(SchemaError::NoSchema),
        StoreError::Json(serde_json::from_str::<u8>("x").unwrap_err()),
        StoreError::Io(IoError::from(ErrorKind::StorageFull)),
        StoreError::Io(IoError::from(ErrorKind::Other)),
    ]
}

fn examples(meets: Meets) -> Vec<ApiError> {
    use StoreError as E;
    let io = || E::Io(std::io::Error::from(std::io::ErrorKind::Other));
    let store = |errors: Vec<StoreError>| errors.into_iter().map(ApiError::from).collect();
    match meets {
        Meets::Always => vec![
            ApiError::timeout(std::time::Duration::from_secs(1)),
            RegistryError::Poisoned.into(),
        ],
        Meets::StoreKey => vec![
            ApiError::invalid_path("p"),
            AuthError::MissingKey.into(),
            AuthError::BadKey.into(),
            AuthError::InvalidStoreName(E::InvalidName {
                name: "?".into(),
                reason: "r",
            })
            .into(),
            AuthError::KeyFile(KeyError::UnknownId("k".into())).into(),
            AuthError::Poisoned.into(),
        ],
        Meets::AdminKey => vec![
            AuthError::MissingAdminKey.into(),
            AuthError::BadAdminKey.into(),
        ],
        Meets::OpenStore => vec![
            RegistryError::Closing("s".into()).into(),
            RegistryError::Store(E::InUse("s".into())).into(),
            RegistryError::Store(E::StoreNotFound("s".into())).into(),
            RegistryError::Store(E::Corrupt("c".into())).into(),
            RegistryError::Store(io()).into(),
            RegistryError::Task("t".into()).into(),
        ],
        Meets::Body => vec![
            ApiError::payload_too_large(),
            ApiError::unreadable_body("b"),
        ],
        Meets::JsonBody => vec![ApiError::json_expected(None), ApiError::invalid_json("j")],
        Meets::CreateStore => vec![
            ProvisionError::TooLarge { bytes: 2, max: 1 }.into(),
            ProvisionError::Keys(KeyError::UnknownId("k".into())).into(),
            ProvisionError::Store(E::StoreExists("s".into())).into(),
            ProvisionError::Store(E::InvalidName {
                name: "?".into(),
                reason: "r",
            })
            .into(),
            ProvisionError::Store(E::InvalidConfig("c".into())).into(),
            ProvisionError::Store(E::Io(std::io::Error::from(std::io::ErrorKind::StorageFull)))
                .into(),
            ProvisionError::Store(io()).into(),
            RegistryError::Keys(KeyError::UnknownId("k".into())).into(),
        ],
        Meets::DeleteStore => vec![
            RegistryError::Closing("s".into()).into(),
            RegistryError::Busy("s".into()).into(),
            RegistryError::Store(io()).into(),
            RegistryError::Task("t".into()).into(),
        ],
        Meets::Intake => {
            let mut out: Vec<ApiError> = vec![
                RecordError::InvalidJson("j".into()).into(),
                RecordError::MissingData.into(),
                RecordError::InvalidData("d".into()).into(),
                RecordError::UnsupportedMediaType("m".into()).into(),
                RecordError::EmptyBatch.into(),
                RecordError::InvalidParameter("p".into()).into(),
                RecordError::EmptyBatch.in_batch(1).into(),
            ];
            out.extend(store(vec![
                E::TimestampOutOfOrder {
                    timestamp: 1,
                    newest: 2,
                },
                E::InvalidTimestamp(-1),
                E::TooLarge { size: 2, max: 1 },
                E::InvalidData {
                    data_type: "text",
                    reason: "r".into(),
                },
                E::Schema(SchemaError::NoSchema),
                E::Schema(SchemaError::UnknownField("f".into())),
                io(),
            ]));
            out
        }
        Meets::Read => {
            let mut out: Vec<ApiError> = vec![
                RecordError::InvalidQuery("q".into()).into(),
                RecordError::InvalidParameter("p".into()).into(),
                RecordError::LimitTooLarge { limit: 2, max: 1 }.into(),
                RecordError::InvalidAggregation("a".into()).into(),
                RecordError::AggregationUnsupported(tsstore::DataType::Text).into(),
                RecordError::ScanLimitExceeded(1).into(),
                RecordError::Abandoned.into(),
                RecordError::Task("t".into()).into(),
            ];
            out.extend(store(vec![E::ReadOverrun, E::Corrupt("c".into()), io()]));
            out
        }
        Meets::ByTime => {
            let mut out = vec![
                ApiError::invalid_timestamp("t"),
                RecordError::InvalidParameter("p".into()).into(),
            ];
            out.extend(store(vec![
                E::NotFound(1),
                E::ReadOverrun,
                E::Corrupt("c".into()),
                io(),
            ]));
            out
        }
        Meets::Schema => store(vec![
            E::Schema(SchemaError::NotASchemaStore("json")),
            E::Schema(SchemaError::NoFields),
            E::Schema(SchemaError::FieldDropped {
                name: "f".into(),
                index: 1,
            }),
            E::Schema(SchemaError::BadFile("b".into())),
            io(),
        ]),
        Meets::Disk => store(vec![io()]),
        Meets::Calc => vec![
            RecordError::InvalidParameter("p".into()).into(),
            E::InvalidConfig("c".into()).into(),
        ],
        Meets::Upgrade => vec![
            ApiError::websocket_required(),
            ApiError::too_many_readers(1),
        ],
        Meets::Connections => vec![
            OutboundError::Spec(SpecError::TooManyHeaders).into(),
            OutboundError::Spec(SpecError::InvalidOption(RecordError::InvalidParameter(
                "p".into(),
            )))
            .into(),
            OutboundError::TooMany {
                store: "s".into(),
                max: 1,
            }
            .into(),
            OutboundError::NotFound("i".into()).into(),
            OutboundError::Persist {
                path: "p".into(),
                reason: "r".into(),
            }
            .into(),
        ],
    }
}

/// What each operation (by its `operationId`, the handler's name) meets.
fn operation_meets(operation_id: &str) -> Option<&'static [Meets]> {
    use Meets::*;
    Some(match operation_id {
        "health" | "metrics" | "openapi" => &[Always],
        "calc" => &[Always, Calc],
        "list_stores" => &[Always, Disk],
        "create_store" => &[Always, AdminKey, Body, JsonBody, CreateStore],
        "delete_store" => &[Always, StoreKey, DeleteStore],
        "reset_store" | "store_stats" => &[Always, StoreKey, OpenStore, Disk],
        "get_schema" => &[Always, StoreKey, OpenStore, Schema],
        "put_schema" => &[Always, StoreKey, OpenStore, Body, JsonBody, Schema],
        "insert" | "insert_batch" => &[Always, StoreKey, OpenStore, Body, Intake],
        "get_by_time" | "delete_by_time" => &[Always, StoreKey, OpenStore, ByTime],
        "oldest" | "newest" | "range" => &[Always, StoreKey, OpenStore, Read],
        "ws_write" => &[Always, StoreKey, OpenStore, Upgrade],
        "ws_read" => &[Always, StoreKey, OpenStore, Read, Upgrade],
        "create_connection" => &[
            Always,
            StoreKey,
            OpenStore,
            Body,
            JsonBody,
            Connections,
            Read,
        ],
        "create_mqtt_connection" => &[
            Always,
            StoreKey,
            OpenStore,
            Body,
            JsonBody,
            Connections,
            Read,
        ],
        "list_connections"
        | "get_connection"
        | "delete_connection"
        | "list_mqtt_connections"
        | "get_mqtt_connection"
        | "delete_mqtt_connection" => &[Always, StoreKey, OpenStore, Connections],
        _ => return None,
    })
}

/// Error statuses of an operation, each with the codes it may carry.
fn error_statuses(meets: &[Meets]) -> BTreeMap<u16, BTreeSet<&'static str>> {
    let mut out: BTreeMap<u16, BTreeSet<&'static str>> = BTreeMap::new();
    for &m in meets {
        for e in examples(m) {
            out.entry(e.status.as_u16()).or_default().insert(e.code);
        }
    }
    out
}

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
fn parameter_schema(name: &str, limits: &Limits) -> Option<Value> {
    let duration = json!({"type": "string", "pattern": duration_pattern()});
    let time = json!({"type": "integer", "format": "int64", "minimum": 0});
    const FNS: &str = "(sum|avg|min|max|count|first|last)";
    Some(match name {
        "store" => json!({"type": "string", "pattern": STORE_NAME_PATTERN}),
        "ts" => json!({"type": "integer", "format": "int64", "minimum": 1}),
        "limit" => json!({"type": "integer", "minimum": 1, "maximum": limits.max_records}),
        "format" => json!({"type": "string", "enum": ["full", "compact"]}),
        "include_data" | "filter_ignore_case" => json!({"type": "boolean"}),
        "start_time" | "end_time" | "after" | "timestamp" => time,
        "since" | "agg_window" => duration,
        "agg_fields" => json!({
            "type": "string",
            "pattern": format!("^[A-Za-z0-9_.]+:{FNS}(\\+{FNS})*(,[A-Za-z0-9_.]+:{FNS}(\\+{FNS})*)*$"),
        }),
        "agg_default" => json!({"type": "string", "pattern": format!("^{FNS}(,{FNS})*$")}),
        _ => return None,
    })
}

/// `[A-Za-z0-9_-]{1,64}`, not starting with `-` (`tsstore::validate_store_name`).
const STORE_NAME_PATTERN: &str = "^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$";

fn powers_of_two(from: u32, to: u32) -> Vec<u32> {
    (from..=to).map(|p| 1u32 << p).collect()
}

/// `schema`, or JSON `null` (an optional field sent as null is absent).
fn or_null(mut schema: Value) -> Value {
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        schema["type"] = json!([t, "null"]);
    }
    if let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut) {
        values.push(Value::Null);
    }
    schema
}

/// Body schemas, as strict as the server's checks; response shapes as
/// the encoders write them.
fn component_schemas() -> Vec<(&'static str, Value)> {
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
                    "timestamp": or_null(json!({
                        "type": "integer", "format": "int64", "minimum": 0,
                        "description": "Nanoseconds since the Unix epoch; absent, null or 0: now.",
                    })),
                    "data": {"description": "json stores: any JSON value; text: a string; binary: base64."},
                },
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
                    "timestamp": {"type": "integer", "format": "int64"},
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
                    "timestamp": {"type": "integer", "format": "int64"},
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

/// The finished document as JSON text. Panics only if an operation is
/// missing from `operation_meets`, which `tests` rule out.
pub fn finish(doc: &utoipa::openapi::OpenApi, limits: &Limits) -> Result<String, String> {
    let mut v = serde_json::to_value(doc).map_err(|e| e.to_string())?;
    let Some(paths) = v.get_mut("paths").and_then(Value::as_object_mut) else {
        return Err("the document has no paths".into());
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let id = op["operationId"].as_str().unwrap_or_default().to_string();
            let meets = operation_meets(&id)
                .ok_or_else(|| format!("{method} {path} ({id}) has no error table"))?;
            document_errors(op, meets);
            if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                for p in params {
                    let name = p["name"].as_str().unwrap_or_default().to_string();
                    if let Some(schema) = parameter_schema(&name, limits) {
                        p["schema"] = schema;
                    }
                }
            }
            if id == "insert_batch" {
                let body = &mut op["requestBody"]["content"]["application/json"]["schema"];
                body["minItems"] = json!(1);
            }
        }
    }
    if let Some(schemas) = v
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in component_schemas() {
            schemas.insert(name.to_string(), schema);
        }
    }
    serde_json::to_string(&v).map_err(|e| e.to_string())
}

/// Replaces the operation's error responses by those `meets` gives.
fn document_errors(op: &mut Value, meets: &[Meets]) {
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    responses.retain(|status, _| status.starts_with('2'));
    for (status, codes) in error_statuses(meets) {
        let codes: Vec<&str> = codes.into_iter().collect();
        responses.insert(
            status.to_string(),
            json!({
                "description": format!("`code`: {}", codes.join(", ")),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant of every error enum is in some example list, so the
    /// documented statuses cover everything the mapping can answer.
    #[test]
    fn examples_cover_every_variant() {
        let all = [
            Meets::Always,
            Meets::StoreKey,
            Meets::AdminKey,
            Meets::OpenStore,
            Meets::Body,
            Meets::JsonBody,
            Meets::CreateStore,
            Meets::DeleteStore,
            Meets::Intake,
            Meets::Read,
            Meets::ByTime,
            Meets::Schema,
            Meets::Disk,
            Meets::Upgrade,
            Meets::Connections,
        ];
        let codes: BTreeSet<&str> = all
            .iter()
            .flat_map(|&m| examples(m))
            .map(|e| e.code)
            .collect();
        let engine: Vec<&str> = store_error_examples()
            .into_iter()
            .map(|e| ApiError::from(e).code)
            .collect();
        for code in engine {
            assert!(
                codes.contains(code),
                "engine code {code} is not documented anywhere"
            );
        }
        for code in [
            "missing_api_key",
            "invalid_api_key",
            "missing_admin_key",
            "invalid_admin_key",
            "store_closing",
            "store_busy",
            "store_too_large",
            "payload_too_large",
            "unsupported_content_type",
            "scan_limit_exceeded",
            "timeout",
            "insufficient_storage",
        ] {
            assert!(codes.contains(code), "{code}");
        }
    }

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

    #[test]
    fn store_routes_document_401_and_bad_names() {
        let statuses = error_statuses(operation_meets("insert").unwrap());
        for s in [400, 401, 409, 413, 415, 500, 503] {
            assert!(statuses.contains_key(&s), "{s}: {statuses:?}");
        }
        assert!(statuses[&400].contains("invalid_store_name"));
        assert!(
            error_statuses(operation_meets("health").unwrap())
                .keys()
                .all(|s| *s >= 500)
        );
    }
}
