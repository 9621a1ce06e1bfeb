//! Inserts over REST: one record (`POST .../data`, by content type) or a
//! batch (`POST .../data/batch`, a JSON array or NDJSON, all or nothing).
//! The records themselves are `records::intake`'s business.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
#[cfg(test)]
use utoipa::ToSchema;
#[cfg(test)]
use utoipa_axum::router::OpenApiRouter;
#[cfg(test)]
use utoipa_axum::routes;

#[cfg(test)]
use super::ErrorBody;
use super::error::ApiError;
use super::extract::{Body, StoreAccess};
use super::read::StampOut;
#[cfg(test)]
use crate::app::App;
use crate::records::encode::Stamps;
use crate::records::intake::{self, Media};

#[cfg(test)]
pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(insert))
        .routes(routes!(insert_batch))
}

/// The record as documented in the API (intake reads it zero-copy).
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(ToSchema))]
#[allow(dead_code)]
pub struct RecordIn {
    /// Since the Unix epoch, in nanoseconds (or the `precision` asked),
    /// as a whole number or a decimal string; absent or 0: now. More than
    /// the server's `max_future_skew` (24h) ahead of its clock is refused
    /// (`timestamp_in_future`).
    timestamp: Option<i64>,
    /// json stores: any JSON value; text: a string; binary: base64.
    #[cfg_attr(test, schema(value_type = Object))]
    data: serde_json::Value,
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct Inserted {
    timestamp: StampOut,
    block_num: u32,
    /// Stored payload bytes.
    size: u32,
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct BatchInserted {
    count: usize,
    first_timestamp: StampOut,
    last_timestamp: StampOut,
}

/// Insert one record. By Content-Type: `application/json` takes
/// `{"timestamp"?, "data"}`, or with `envelope=none` the data itself;
/// `text/plain` (text, binary stores) and `application/octet-stream`
/// (binary) take the raw payload, with `?timestamp=`.
#[cfg_attr(test, utoipa::path(post, path = "/api/stores/{store}/data", tag = "data",
    params(("store" = String, Path), ("timestamp" = Option<i64>, Query, description = "for raw and bare bodies"),
        ("precision" = Option<String>, Query, description = "unit of the timestamps sent: ns (default), us, ms or s"),
        ("envelope" = Option<String>, Query, description = "data (default): the body is {\"timestamp\"?, \"data\"}; none: the body is the record's data"),
        ("timestamp_field" = Option<String>, Query, description = "with envelope=none: the top-level field that holds the timestamp (a whole number or a decimal string); else the arrival time"),
        ("timestamps" = Option<String>, Query, description = "number (default) or string: timestamps in the answer as decimal strings")),
    request_body(content((RecordIn = "application/json"), (String = "text/plain"),
        (Vec<u8> = "application/octet-stream"))),
    responses((status = 201, body = Inserted), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody))))]
pub(super) async fn insert(access: StoreAccess, Body(body): Body) -> Response {
    let open = &access.open;
    // A bad option is a refused record too (counted as one).
    let read = || {
        let raw_ts = access.params.timestamp("timestamp")?;
        let media = Media::of(access.content_type.as_deref());
        let framing = access.params.framing()?;
        intake::one(open.store.data_type(), media, &body, raw_ts, &framing)
    };
    let (stamps, item) = match access.params.stamps() {
        Ok(stamps) => (stamps, read()),
        Err(e) => (Stamps::Numbers, Err(e)),
    };
    match intake::store_one(open, item) {
        Ok(h) => {
            let body = Inserted {
                timestamp: StampOut::new(h.timestamp, stamps),
                block_num: h.block_num,
                size: h.size,
            };
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Insert many records at once: a JSON array of `{"timestamp"?, "data"}`,
/// or NDJSON (`application/x-ndjson`, one per line); with `envelope=none`
/// each element or line is a record's data. Every record is checked
/// before any is written; one failure stores nothing.
#[cfg_attr(test, utoipa::path(post, path = "/api/stores/{store}/data/batch", tag = "data",
    params(("store" = String, Path),
        ("precision" = Option<String>, Query, description = "unit of the timestamps sent: ns (default), us, ms or s"),
        ("envelope" = Option<String>, Query, description = "data (default): each record is {\"timestamp\"?, \"data\"}; none: each is the record's data"),
        ("timestamp_field" = Option<String>, Query, description = "with envelope=none: the top-level field that holds the timestamp (a whole number or a decimal string); else the arrival time"),
        ("timestamps" = Option<String>, Query, description = "number (default) or string: timestamps in the answer as decimal strings")),
    request_body(content((Vec<RecordIn> = "application/json"), (RecordIn = "application/x-ndjson"))),
    responses((status = 201, body = BatchInserted), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody))))]
pub(super) async fn insert_batch(access: StoreAccess, Body(body): Body) -> Response {
    let open = &access.open;
    let media = Media::of(access.content_type.as_deref());
    let read = || {
        let framing = access.params.framing()?;
        intake::batch(open.store.data_type(), media, &body, &framing)
    };
    let (stamps, items) = match access.params.stamps() {
        Ok(stamps) => (stamps, read()),
        Err(e) => (Stamps::Numbers, Err(e)),
    };
    match intake::store_batch(open, items) {
        Ok(b) => {
            let body = BatchInserted {
                count: b.count,
                first_timestamp: StampOut::new(b.first_timestamp, stamps),
                last_timestamp: StampOut::new(b.last_timestamp, stamps),
            };
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
