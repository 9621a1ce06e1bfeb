//! Reads over REST: one record by timestamp (get, soft delete), and the
//! list queries oldest, newest and range with filter, format and
//! aggregation. Options become a `ReadSpec`; `records::pipeline` does the
//! reading, here or on the blocking pool (`records::budget`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
#[cfg(test)]
use utoipa::ToSchema;
#[cfg(test)]
use utoipa_axum::router::OpenApiRouter;
#[cfg(test)]
use utoipa_axum::routes;

#[cfg(test)]
use super::ErrorBody;
use super::error::{ApiError, ApiResult};
use super::extract::StoreAccess;
use crate::app::App;
use crate::records::budget::{self, Budget};
use crate::records::encode::{DataEncoding, Stamps, push_object};
use crate::records::options::compact_format;
use crate::records::resolution::{self, Asked};
use crate::records::{
    ListDefaults, ReadOptions, ReadSpec, RecordError, RecordResult, TimeRange, pipeline,
};
use tsstore::Resolution;
use tsstore::aggregate::AggSpec;

#[cfg(test)]
pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(get_by_time, delete_by_time))
        .routes(routes!(oldest))
        .routes(routes!(newest))
        .routes(routes!(range))
}

/// A timestamp in an answer: nanoseconds as a JSON number, or with
/// `timestamps=string` as a decimal string (for clients whose numbers are
/// doubles: nanoseconds exceed 2^53).
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
#[serde(untagged)]
pub enum StampOut {
    Number(i64),
    Text(String),
}

impl StampOut {
    pub fn new(ts: i64, stamps: Stamps) -> StampOut {
        match stamps {
            Stamps::Numbers => StampOut::Number(ts),
            Stamps::Strings => StampOut::Text(ts.to_string()),
        }
    }
}

/// One stored record as returned by the API.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
#[allow(dead_code)]
pub struct ObjectOut {
    timestamp: StampOut,
    block_num: u32,
    size: u32,
    /// json stores: the JSON value; text: a string; binary: base64.
    /// Absent with `include_data=false`.
    #[cfg_attr(test, schema(value_type = Object))]
    data: Option<serde_json::Value>,
}

/// `{"objects": [...], "count": n}`. With aggregation, each object is a
/// window `{timestamp (window end), records, partial, data}`, and with
/// `format=compact` the first element is `{"_schema": {"1": name, ...}}`.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
#[allow(dead_code)]
pub struct ObjectList {
    objects: Vec<ObjectOut>,
    count: usize,
}

/// A list read of `range` at the resolution `spec` asks for: a rollup's
/// windows, or `raw` (records, or windows aggregated from them); the body
/// says which ring answered when a resolution was asked for (without
/// one, it is ts-store's, unchanged).
fn answer(
    store: &tsstore::Store,
    spec: &mut ReadSpec,
    range: TimeRange,
    newest: bool,
    raw: impl FnOnce(&ReadSpec, Option<AggSpec>) -> RecordResult<Vec<u8>>,
) -> RecordResult<Vec<u8>> {
    let at = spec.resolution.resolve(store, (range.from, range.to));
    let body = match at {
        Resolution::Rollup(w) => pipeline::rollup_list(store, w, spec, range, newest)?,
        Resolution::Raw => {
            let agg = spec.agg.take();
            raw(spec, agg)?
        }
    };
    Ok(match spec.resolution {
        Asked::Unset => body,
        _ => resolution::labelled(body, at),
    })
}

/// A finished JSON body.
fn json_response(body: Vec<u8>) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The list read of `access` with `defaults`, checked for its store.
fn read_spec(
    app: &App,
    access: &StoreAccess,
    defaults: ListDefaults,
) -> ApiResult<(ReadOptions, ReadSpec)> {
    let options = ReadOptions::from_query(&access.params);
    let dt = access.open.store.data_type();
    let spec = ReadSpec::new(&options, defaults, app.limits.max_records, dt)?;
    Ok((options, spec))
}

fn ts_param(access: &StoreAccess) -> ApiResult<i64> {
    let raw = access.path.get("ts").map(String::as_str).unwrap_or("");
    match raw.parse::<i64>() {
        Ok(ts) if ts > 0 => Ok(ts),
        _ => Err(ApiError::invalid_timestamp(raw)),
    }
}

/// One record by its exact timestamp.
#[cfg_attr(test, utoipa::path(get, path = "/api/stores/{store}/data/time/{ts}", tag = "data",
    params(("store" = String, Path), ("ts" = i64, Path),
        ("format" = Option<String>, Query, description = "full (default) or compact"),
        ("timestamps" = Option<String>, Query, description = "number (default) or string: timestamps as decimal strings")),
    responses((status = 200, body = ObjectOut), (status = 404, body = ErrorBody))))]
pub(super) async fn get_by_time(access: StoreAccess) -> ApiResult<Response> {
    let ts = ts_param(&access)?;
    let compact = compact_format(access.params.get("format"))?;
    let stamps = access.params.stamps()?;
    let store = &access.open.store;
    let rec = store.get_by_time(ts)?;
    let mut out = Vec::with_capacity(64 + rec.data.len());
    let data = if compact {
        std::borrow::Cow::Borrowed(&rec.data[..])
    } else {
        store.expand(&rec.data)
    };
    push_object(
        &mut out,
        &rec.handle,
        Some((&data, DataEncoding::of(store))),
        stamps,
    );
    Ok(json_response(out))
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct Deleted {
    status: &'static str,
    timestamp: i64,
}

/// Soft-delete exactly the record at this timestamp; its neighbours stay.
#[cfg_attr(test, utoipa::path(delete, path = "/api/stores/{store}/data/time/{ts}", tag = "data",
    params(("store" = String, Path), ("ts" = i64, Path)),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody))))]
pub(super) async fn delete_by_time(access: StoreAccess) -> ApiResult<Json<Deleted>> {
    let ts = ts_param(&access)?;
    access.open.store.delete_by_time(ts)?;
    Ok(Json(Deleted {
        status: "deleted",
        timestamp: ts,
    }))
}

/// The oldest records, oldest first.
#[cfg_attr(test, utoipa::path(get, path = "/api/stores/{store}/data/oldest", tag = "data",
    params(("store" = String, Path),
        ("limit" = Option<u64>, Query, description = "default 10"),
        ("include_data" = Option<bool>, Query, description = "default true"),
        ("filter" = Option<String>, Query), ("filter_ignore_case" = Option<bool>, Query),
        ("format" = Option<String>, Query, description = "full or compact"),
        ("timestamps" = Option<String>, Query, description = "number (default) or string: timestamps as decimal strings")),
    responses((status = 200, body = ObjectList), (status = 400, body = ErrorBody))))]
pub(super) async fn oldest(State(app): State<App>, access: StoreAccess) -> ApiResult<Response> {
    let defaults = ListDefaults {
        limit: 10,
        include_data: true,
    };
    let (_, spec) = read_spec(&app, &access, defaults)?;
    if spec.resolution != Asked::Unset {
        return Err(RecordError::InvalidParameter(
            "resolution is offered on newest and range, not oldest".into(),
        )
        .into());
    }
    if spec.agg.is_some() {
        return Err(RecordError::InvalidParameter(
            "aggregation is offered on newest and range, not oldest".into(),
        )
        .into());
    }
    let open = Arc::clone(&access.open);
    let body = budget::run(spec.is_long(), move |cancelled| {
        let store = &open.store;
        pipeline::list(
            store,
            store.iter(),
            &spec,
            &mut Budget::unlimited(cancelled),
        )
    })
    .await?;
    Ok(json_response(body))
}

/// The newest records, newest first; with `agg_window`, the newest windows.
#[cfg_attr(test, utoipa::path(get, path = "/api/stores/{store}/data/newest", tag = "data",
    params(("store" = String, Path),
        ("limit" = Option<u64>, Query, description = "default 10; windows when aggregating"),
        ("include_data" = Option<bool>, Query, description = "default true"),
        ("since" = Option<String>, Query, description = "only records younger than this, e.g. 15m"),
        ("filter" = Option<String>, Query), ("filter_ignore_case" = Option<bool>, Query),
        ("format" = Option<String>, Query, description = "full or compact"),
        ("agg_window" = Option<String>, Query), ("agg_fields" = Option<String>, Query),
        ("agg_default" = Option<String>, Query),
        ("resolution" = Option<String>, Query, description = "raw, auto, or a rollup's window (1h): which ring answers; the body then says which in `resolution`"),
        ("max_points" = Option<u64>, Query, description = "with resolution=auto: the most points (default 1000, also the default limit)"),
        ("timestamps" = Option<String>, Query, description = "number (default) or string: timestamps as decimal strings")),
    responses((status = 200, body = ObjectList), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody))))]
pub(super) async fn newest(State(app): State<App>, access: StoreAccess) -> ApiResult<Response> {
    let defaults = ListDefaults {
        limit: 10,
        include_data: true,
    };
    let (options, mut spec) = read_spec(&app, &access, defaults)?;
    let now = tsstore::now_ns();
    let from = options.since_start(now)?;
    let (open, max) = (Arc::clone(&access.open), app.limits.max_records);
    let body = budget::run(spec.is_long(), move |cancelled| {
        let store = &open.store;
        let range = TimeRange {
            from,
            to: i64::MAX,
            covered_to: now,
        };
        answer(store, &mut spec, range, true, |spec, agg| match agg {
            None => {
                let iter = store.iter_range_rev(from, i64::MAX);
                pipeline::list(store, iter, spec, &mut Budget::unlimited(cancelled))
            }
            Some(agg) => {
                let budget = &mut Budget::new(max, cancelled);
                pipeline::newest_windows(store, agg, spec, from, now, budget)
            }
        })
    })
    .await?;
    Ok(json_response(body))
}

/// Records in a time range, oldest first; with `agg_window`, windows.
#[cfg_attr(test, utoipa::path(get, path = "/api/stores/{store}/data/range", tag = "data",
    params(("store" = String, Path),
        ("start_time" = Option<i64>, Query, description = "ns, inclusive; 0 or absent: open"),
        ("end_time" = Option<i64>, Query, description = "ns, inclusive; 0 or absent: open"),
        ("since" = Option<String>, Query, description = "instead of start_time: a duration before now"),
        ("after" = Option<i64>, Query, description = "instead of start_time: an exclusive cursor"),
        ("limit" = Option<u64>, Query, description = "default 100; windows when aggregating"),
        ("include_data" = Option<bool>, Query, description = "default false"),
        ("filter" = Option<String>, Query), ("filter_ignore_case" = Option<bool>, Query),
        ("format" = Option<String>, Query, description = "full or compact"),
        ("agg_window" = Option<String>, Query), ("agg_fields" = Option<String>, Query),
        ("agg_default" = Option<String>, Query),
        ("resolution" = Option<String>, Query, description = "raw, auto, or a rollup's window (1h): which ring answers; the body then says which in `resolution`"),
        ("max_points" = Option<u64>, Query, description = "with resolution=auto: the most points (default 1000, also the default limit)"),
        ("timestamps" = Option<String>, Query, description = "number (default) or string: timestamps as decimal strings")),
    responses((status = 200, body = ObjectList), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody))))]
pub(super) async fn range(State(app): State<App>, access: StoreAccess) -> ApiResult<Response> {
    let defaults = ListDefaults {
        limit: 100,
        include_data: false,
    };
    let (options, mut spec) = read_spec(&app, &access, defaults)?;
    let range = options.range(tsstore::now_ns())?;
    let (open, max) = (Arc::clone(&access.open), app.limits.max_records);
    let body = budget::run(spec.is_long(), move |cancelled| {
        let store = &open.store;
        answer(store, &mut spec, range, false, |spec, agg| match agg {
            None => {
                let iter = store.iter_range(range.from, range.to);
                pipeline::list(store, iter, spec, &mut Budget::unlimited(cancelled))
            }
            Some(agg) => {
                let budget = &mut Budget::new(max, cancelled);
                pipeline::range_windows(store, agg, spec, range, budget)
            }
        })
    })
    .await?;
    Ok(json_response(body))
}
