//! `/api/openapi.json`, made to tell the truth about what the server
//! answers.
//!
//! The binary serves `docs/openapi.json` (`DOCUMENT`), committed, with
//! this server's limits written in (`served`). The document is made in
//! tests, not at run time: utoipa builds it from the handlers'
//! annotations (routes, success bodies), then `finish` writes what the
//! annotations cannot know: every error status an operation can return,
//! computed by passing one example of every variant of the errors it
//! meets through the same `From` impls the server answers with
//! (`http::error`), so the two cannot disagree; and the constraints the
//! server checks on parameters and bodies (store name pattern, limits,
//! enums, power-of-two sizes), so that a request the document calls valid
//! is one the server takes. `tests` fail when the committed file differs
//! from what that makes (`UPDATE_OPENAPI=1 cargo test -p tsstore-server
//! --lib openapi` rewrites it) or names other routes than the router
//! serves.

#[cfg(test)]
mod connections;
#[cfg(test)]
mod constraints;
#[cfg(test)]
mod errors;
#[cfg(test)]
mod tests;

use serde_json::{Value, json};

use super::embedded::{Gzipped, gzipped};
use crate::limits::Limits;
#[cfg(test)]
use constraints::{component_schemas, parameter_schema};
#[cfg(test)]
use errors::{document_errors, operation_meets};

/// The document as committed, made with `Limits::default()`; gzipped in
/// the binary.
const DOCUMENT_GZ: Gzipped = gzipped!("openapi.json");
/// The committed document's text (tests compare it with what they make).
#[cfg(test)]
pub(super) const DOCUMENT: &str = include_str!("../../../../../docs/openapi.json");

/// The schema of the `limit` parameter: up to the server's `max_records`.
fn limit_schema(limits: &Limits) -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": limits.max_records})
}

/// The committed document with `limits` written in: the `limit`
/// parameter's maximum is the one limit it states. If the embedded copy
/// did not inflate to JSON (the tests rule it out), it is served as text.
pub(super) fn served(limits: &Limits) -> String {
    let text = DOCUMENT_GZ.inflate().unwrap_or_default();
    let Ok(mut doc) = serde_json::from_slice::<Value>(&text) else {
        return String::from_utf8_lossy(&text).into_owned();
    };
    let operations = doc
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut());
    for op in operations {
        let params = op.get_mut("parameters").and_then(Value::as_array_mut);
        for p in params.into_iter().flatten() {
            if p["name"] == "limit" {
                p["schema"] = limit_schema(limits);
            }
        }
    }
    serde_json::to_string(&doc).unwrap_or_else(|_| String::from_utf8_lossy(&text).into_owned())
}

/// Why the document could not be finished (`tests` rule each out).
#[cfg(test)]
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("the document has no paths")]
    NoPaths,
    #[error("{method} {path} ({id}) has no error table")]
    NoErrorTable {
        method: String,
        path: String,
        id: String,
    },
}

/// The finished document as JSON text.
#[cfg(test)]
pub fn finish(doc: &utoipa::openapi::OpenApi, limits: &Limits) -> Result<String, DocumentError> {
    let mut v = serde_json::to_value(doc)?;
    let Some(paths) = v.get_mut("paths").and_then(Value::as_object_mut) else {
        return Err(DocumentError::NoPaths);
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let id = op["operationId"].as_str().unwrap_or_default().to_string();
            let Some(meets) = operation_meets(&id) else {
                return Err(DocumentError::NoErrorTable {
                    method: method.clone(),
                    path: path.clone(),
                    id,
                });
            };
            document_errors(op, meets);
            if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
                for p in params {
                    let name = p["name"].as_str().unwrap_or_default().to_string();
                    if let Some(schema) = parameter_schema(&name, limits) {
                        p["schema"] = schema;
                    }
                }
            }
            let body = &mut op["requestBody"]["content"]["application/json"]["schema"];
            match id.as_str() {
                // With envelope=none a record is its data: any JSON.
                "insert" => *body = json!({"$ref": "#/components/schemas/RecordOrData"}),
                "insert_batch" => {
                    *body = json!({
                        "type": "array",
                        "minItems": 1,
                        "items": {"$ref": "#/components/schemas/RecordOrData"},
                    });
                }
                "create_connection" => {
                    *body = json!({"$ref": "#/components/schemas/WsConnectionIn"})
                }
                "create_mqtt_connection" => {
                    *body = json!({"$ref": "#/components/schemas/MqttConnectionIn"});
                }
                "create_influx_connection" => {
                    *body = json!({"$ref": "#/components/schemas/InfluxConnectionIn"});
                }
                _ => {}
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
        schemas.insert("WsConnectionIn".into(), connections::ws_connection(limits));
        schemas.insert(
            "MqttConnectionIn".into(),
            connections::mqtt_connection(limits),
        );
        schemas.insert(
            "InfluxConnectionIn".into(),
            connections::influx_connection(limits),
        );
    }
    Ok(serde_json::to_string(&v)?)
}
