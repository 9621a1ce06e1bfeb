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

mod constraints;
mod errors;

use serde_json::{Value, json};

use crate::app::Limits;
use constraints::{component_schemas, parameter_schema};
use errors::{document_errors, operation_meets};

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
