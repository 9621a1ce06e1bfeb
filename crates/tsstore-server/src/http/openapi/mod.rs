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

use crate::limits::Limits;
use constraints::{component_schemas, parameter_schema};
use errors::{document_errors, operation_meets};

/// Why the document could not be finished (`tests` rule each out).
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
    Ok(serde_json::to_string(&v)?)
}
