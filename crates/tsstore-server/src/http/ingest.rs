//! Inserts: one record (`POST .../data`, by content type) or a batch
//! (`POST .../data/batch`, a JSON array or NDJSON, all or nothing).
//!
//! A JSON body is the envelope `{"timestamp"?: ns, "data": ...}`; `data`
//! is kept as the exact text sent (json stores), a JSON string (text) or
//! base64 (binary). A raw `text/plain` or `application/octet-stream` body
//! is the payload itself, with `?timestamp=`. A timestamp of 0 or none
//! means "now" (the store's `max(now, newest + 1)`).

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use tsstore::{DataType, ObjectHandle, SyncPolicy};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Body, StoreAccess};
use super::render::json_response;
use super::{App, ErrorBody};
use crate::error::{ApiError, ApiResult};
use crate::registry::OpenStore;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(insert))
        .routes(routes!(insert_batch))
}

/// `{"timestamp"?, "data"}` as sent; `data` borrowed from the body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(default, borrow)]
    data: Present<'a>,
}

/// A JSON value that was present (even `null`), or absent.
#[derive(Debug, Default)]
struct Present<'a>(Option<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for Present<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a RawValue>::deserialize(d).map(|raw| Present(Some(raw)))
    }
}

/// The record as documented in the API (the handler reads it zero-copy).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct RecordIn {
    /// Nanoseconds since the Unix epoch; absent or 0: now.
    timestamp: Option<i64>,
    /// json stores: any JSON value; text: a string; binary: base64.
    #[schema(value_type = Object)]
    data: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Inserted {
    timestamp: i64,
    block_num: u32,
    /// Stored payload bytes.
    size: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchInserted {
    count: usize,
    first_timestamp: i64,
    last_timestamp: i64,
}

impl<'a> Envelope<'a> {
    /// The payload to store and its timestamp (`None`: now).
    fn into_item(self, dt: DataType) -> ApiResult<(Option<i64>, Cow<'a, [u8]>)> {
        let raw = self.data.0.ok_or_else(|| {
            ApiError::bad_request(
                "missing_data",
                "the body needs a \"data\" field: {\"timestamp\"?: ns, \"data\": ...}",
            )
        })?;
        let payload = match dt {
            DataType::Json | DataType::Schema => Cow::Borrowed(raw.get().as_bytes()),
            DataType::Text => Cow::Owned(
                json_string(raw, "a text store's data must be a JSON string")?.into_bytes(),
            ),
            DataType::Binary => {
                let s = json_string(raw, "a binary store's data must be a base64 JSON string")?;
                Cow::Owned(BASE64.decode(s.as_bytes()).map_err(|e| {
                    ApiError::bad_request("invalid_data", format!("data is not valid base64: {e}"))
                })?)
            }
        };
        Ok((self.timestamp.filter(|&t| t != 0), payload))
    }
}

fn json_string(raw: &RawValue, message: &str) -> ApiResult<String> {
    serde_json::from_str::<String>(raw.get())
        .map_err(|_| ApiError::bad_request("invalid_data", message))
}

/// Runs a write; under sync `always` it waits for an fsync, so the worker
/// thread is handed over to other tasks meanwhile.
fn blocking_write<T>(open: &OpenStore, f: impl FnOnce() -> T) -> T {
    if open.store.sync_policy() == SyncPolicy::Always {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

fn unsupported(dt: DataType, got: Option<&str>) -> ApiError {
    let accepted = match dt {
        DataType::Binary => "application/octet-stream, text/plain or application/json",
        DataType::Text => "text/plain or application/json",
        DataType::Json | DataType::Schema => "application/json ({\"timestamp\"?, \"data\"})",
    };
    ApiError::unsupported_type(format!(
        "a {dt} store takes {accepted}, not {}",
        got.unwrap_or("a body without Content-Type")
    ))
}

/// Counts the outcome of an insert in the store's metrics.
fn counted<T>(
    open: &OpenStore,
    r: ApiResult<T>,
    records: impl Fn(&T) -> (u64, u64),
) -> ApiResult<T> {
    match &r {
        Ok(v) => {
            let (n, bytes) = records(v);
            open.metrics.inserted(n, bytes);
        }
        Err(e) => open.metrics.rejected(e.reject_reason()),
    }
    r
}

/// Insert one record. By Content-Type: `application/json` takes
/// `{"timestamp"?, "data"}`; `text/plain` (text, binary stores) and
/// `application/octet-stream` (binary) take the raw payload, with
/// `?timestamp=`.
#[utoipa::path(post, path = "/api/stores/{store}/data", tag = "data",
    params(("store" = String, Path), ("timestamp" = Option<i64>, Query, description = "for raw bodies")),
    request_body(content((RecordIn = "application/json"), (String = "text/plain"),
        (Vec<u8> = "application/octet-stream"))),
    responses((status = 201, body = Inserted), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn insert(access: StoreAccess, Body(body): Body) -> Response {
    let open = &access.open;
    let result = insert_one(&access, &body);
    match counted(open, result, |h| (1, h.size as u64)) {
        Ok(h) => {
            let body = Inserted {
                timestamp: h.timestamp,
                block_num: h.block_num,
                size: h.size,
            };
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

fn insert_one(access: &StoreAccess, body: &[u8]) -> ApiResult<ObjectHandle> {
    let store = &access.open.store;
    let dt = store.data_type();
    let ct = &access.content_type;
    let query_ts = access.params.timestamp("timestamp")?.filter(|&t| t != 0);
    let (ts, payload): (Option<i64>, Cow<[u8]>) = match (ct.as_deref(), dt) {
        (Some("application/json"), _) => {
            let env: Envelope = serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request("invalid_json", format!("invalid JSON body: {e}"))
            })?;
            let (ts, payload) = env.into_item(dt)?;
            (ts.or(query_ts), payload)
        }
        (Some("application/octet-stream"), DataType::Binary)
        | (Some("text/plain"), DataType::Binary | DataType::Text) => {
            (query_ts, Cow::Borrowed(body))
        }
        (other, _) => return Err(unsupported(dt, other)),
    };
    let handle = blocking_write(&access.open, || match ts {
        Some(ts) => store.put(ts, &payload),
        None => store.put_now(&payload),
    })?;
    Ok(handle)
}

/// Insert many records at once: a JSON array of `{"timestamp"?, "data"}`,
/// or NDJSON (`application/x-ndjson`, one per line). Every record is
/// checked before any is written; one failure stores nothing.
#[utoipa::path(post, path = "/api/stores/{store}/data/batch", tag = "data",
    params(("store" = String, Path)),
    request_body(content((Vec<RecordIn> = "application/json"), (RecordIn = "application/x-ndjson"))),
    responses((status = 201, body = BatchInserted), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn insert_batch(access: StoreAccess, Body(body): Body) -> Response {
    let open = &access.open;
    let result = insert_many(&access, &body);
    match counted(open, result, |(n, bytes, _)| (*n as u64, *bytes)) {
        Ok((count, _, (first, last))) => {
            let out = BatchInserted {
                count,
                first_timestamp: first,
                last_timestamp: last,
            };
            match serde_json::to_vec(&out) {
                Ok(body) => json_response(StatusCode::CREATED, body),
                Err(e) => ApiError::internal(e.to_string()).into_response(),
            }
        }
        Err(e) => e.into_response(),
    }
}

type BatchOutcome = (usize, u64, (i64, i64));

fn insert_many(access: &StoreAccess, body: &[u8]) -> ApiResult<BatchOutcome> {
    let store = &access.open.store;
    let dt = store.data_type();
    let ct = &access.content_type;
    let envelopes: Vec<Envelope> = match ct.as_deref() {
        Some("application/json") => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(
                "invalid_json",
                format!("a batch is a JSON array of {{\"timestamp\"?, \"data\"}}: {e}"),
            )
        })?,
        Some("application/x-ndjson") => body
            .split(|&b| b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.trim_ascii().is_empty())
            .map(|(i, line)| {
                serde_json::from_slice(line).map_err(|e| {
                    ApiError::bad_request("invalid_json", format!("line {}: {e}", i + 1))
                })
            })
            .collect::<ApiResult<_>>()?,
        other => {
            return Err(ApiError::unsupported_type(format!(
                "a batch is application/json (an array) or application/x-ndjson, not {}",
                other.unwrap_or("a body without Content-Type")
            )));
        }
    };
    if envelopes.is_empty() {
        return Err(ApiError::bad_request(
            "empty_batch",
            "the batch holds no records",
        ));
    }
    let items = envelopes
        .into_iter()
        .enumerate()
        .map(|(i, env)| {
            env.into_item(dt).map_err(|mut e| {
                e.message = format!("record {i}: {}", e.message);
                e
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let bytes = items.iter().map(|(_, p)| p.len() as u64).sum();
    let handles = blocking_write(&access.open, || store.put_many(items))?;
    let (Some(first), Some(last)) = (handles.first(), handles.last()) else {
        return Err(ApiError::internal("the store accepted an empty batch"));
    };
    Ok((handles.len(), bytes, (first.timestamp, last.timestamp)))
}
