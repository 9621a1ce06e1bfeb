//! Reads: one record by timestamp (get, soft delete), and the list
//! queries oldest, newest and range with filter, format and aggregation.
//!
//! Lists stream from the engine's iterators into the response buffer, so
//! memory is bounded by `limit` (itself capped), not by the store. An
//! aggregation reads at most `max_records` raw records and says so when a
//! query would need more.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use tsstore::aggregate::{AggSpec, Aggregator, Window};
use tsstore::{DataType, Filter, Record, Records, Store};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Params, StoreAccess};
use super::render::{json_response, push_object};
use super::scan::{self, Budget, INLINE_READ_RECORDS};
use super::{App, ErrorBody};
use crate::error::{ApiError, ApiResult};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(get_by_time, delete_by_time))
        .routes(routes!(oldest))
        .routes(routes!(newest))
        .routes(routes!(range))
}

/// One stored record as returned by the API.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ObjectOut {
    timestamp: i64,
    block_num: u32,
    size: u32,
    /// json stores: the JSON value; text: a string; binary: base64.
    /// Absent with `include_data=false`.
    #[schema(value_type = Object)]
    data: Option<serde_json::Value>,
}

/// `{"objects": [...], "count": n}`. With aggregation, each object is a
/// window `{timestamp (window end), records, partial, data}`, and with
/// `format=compact` the first element is `{"_schema": {"1": name, ...}}`.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ObjectList {
    objects: Vec<ObjectOut>,
    count: usize,
}

/// How to show records: shared by every list query.
struct View {
    include_data: bool,
    filter: Option<Filter>,
    compact: bool,
    limit: usize,
}

/// `format`: full (default) or compact.
fn compact_format(p: &Params) -> ApiResult<bool> {
    match p.get("format") {
        None | Some("full") => Ok(false),
        Some("compact") => Ok(true),
        Some(other) => Err(ApiError::bad_request(
            "invalid_parameter",
            format!("format: '{other}' is not full or compact"),
        )),
    }
}

impl View {
    fn parse(
        p: &Params,
        default_limit: usize,
        include_default: bool,
        max: usize,
    ) -> ApiResult<View> {
        let compact = compact_format(p)?;
        let filter = match p.get("filter") {
            None | Some("") => None,
            Some(needle) => Some(Filter::new(needle, p.bool("filter_ignore_case", false)?)),
        };
        Ok(View {
            include_data: p.bool("include_data", include_default)?,
            filter,
            compact,
            limit: p.limit(default_limit, max)?,
        })
    }

    /// Whether the read may touch many records: a large limit, or a
    /// filter or aggregation, which read more than they return.
    fn is_long(&self, aggregating: bool) -> bool {
        aggregating || self.filter.is_some() || self.limit > INLINE_READ_RECORDS
    }
}

/// A record as users see it: schema records expanded unless compact.
fn shown<'a>(store: &Store, data: &'a [u8], compact: bool) -> Cow<'a, [u8]> {
    if compact {
        Cow::Borrowed(data)
    } else {
        store.expand(data)
    }
}

/// Whether the record passes the filter, which always sees the expanded form.
fn passes(store: &Store, filter: &Option<Filter>, data: &[u8]) -> bool {
    filter
        .as_ref()
        .is_none_or(|f| f.matches(&store.expand(data)))
}

fn list_records(
    store: &Store,
    iter: Records<'_>,
    view: &View,
    budget: &mut Budget,
) -> ApiResult<Response> {
    let need_data = view.include_data || view.filter.is_some();
    let mut iter = iter.with_data(need_data);
    if view.filter.is_none() {
        iter = iter.limit(view.limit);
    }
    let (dt, trusted) = (store.data_type(), store.has_checksums());
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"objects\":[");
    let mut count = 0;
    for rec in iter {
        let rec = rec?;
        budget.take()?;
        if !passes(store, &view.filter, &rec.data) {
            continue;
        }
        if count > 0 {
            out.push(b',');
        }
        let data = view
            .include_data
            .then(|| shown(store, &rec.data, view.compact));
        push_object(
            &mut out,
            &rec.handle,
            data.as_deref().map(|d| (d, dt, trusted)),
        );
        count += 1;
        if count >= view.limit {
            break;
        }
    }
    out.extend_from_slice(format!("],\"count\":{count}}}").as_bytes());
    Ok(json_response(StatusCode::OK, out))
}

fn ts_param(access: &StoreAccess) -> ApiResult<i64> {
    let raw = access.path.get("ts").map(String::as_str).unwrap_or("");
    match raw.parse::<i64>() {
        Ok(ts) if ts > 0 => Ok(ts),
        _ => Err(ApiError::bad_request(
            "invalid_timestamp",
            format!("'{raw}' is not a timestamp (positive nanoseconds since the Unix epoch)"),
        )),
    }
}

/// One record by its exact timestamp.
#[utoipa::path(get, path = "/api/stores/{store}/data/time/{ts}", tag = "data",
    params(("store" = String, Path), ("ts" = i64, Path),
        ("format" = Option<String>, Query, description = "full (default) or compact")),
    responses((status = 200, body = ObjectOut), (status = 404, body = ErrorBody)))]
async fn get_by_time(access: StoreAccess) -> ApiResult<Response> {
    let ts = ts_param(&access)?;
    let compact = compact_format(&access.params)?;
    let store = &access.open.store;
    let rec: Record = store.get_by_time(ts)?;
    let mut out = Vec::with_capacity(64 + rec.data.len());
    let data = shown(store, &rec.data, compact);
    push_object(
        &mut out,
        &rec.handle,
        Some((&data, store.data_type(), store.has_checksums())),
    );
    Ok(json_response(StatusCode::OK, out))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    status: &'static str,
    timestamp: i64,
}

/// Soft-delete exactly the record at this timestamp; its neighbours stay.
#[utoipa::path(delete, path = "/api/stores/{store}/data/time/{ts}", tag = "data",
    params(("store" = String, Path), ("ts" = i64, Path)),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)))]
async fn delete_by_time(access: StoreAccess) -> ApiResult<Json<Deleted>> {
    let ts = ts_param(&access)?;
    access.open.store.delete_by_time(ts)?;
    Ok(Json(Deleted {
        status: "deleted",
        timestamp: ts,
    }))
}

fn agg_spec(p: &Params, dt: DataType) -> ApiResult<Option<AggSpec>> {
    let spec = AggSpec::parse(
        p.get("agg_window"),
        p.get("agg_fields"),
        p.get("agg_default"),
    )
    .map_err(|e| ApiError::bad_request("invalid_aggregation", e.to_string()))?;
    if spec.is_some() && !matches!(dt, DataType::Json | DataType::Schema) {
        return Err(ApiError::bad_request(
            "aggregation_unsupported",
            format!("aggregation needs a json or schema store; this one is {dt}"),
        ));
    }
    Ok(spec)
}

/// The oldest records, oldest first.
#[utoipa::path(get, path = "/api/stores/{store}/data/oldest", tag = "data",
    params(("store" = String, Path),
        ("limit" = Option<u64>, Query, description = "default 10"),
        ("include_data" = Option<bool>, Query, description = "default true"),
        ("filter" = Option<String>, Query), ("filter_ignore_case" = Option<bool>, Query),
        ("format" = Option<String>, Query, description = "full or compact")),
    responses((status = 200, body = ObjectList), (status = 400, body = ErrorBody)))]
async fn oldest(State(app): State<App>, access: StoreAccess) -> ApiResult<Response> {
    let p = &access.params;
    let view = View::parse(p, 10, true, app.limits.max_records)?;
    if agg_spec(p, access.open.store.data_type())?.is_some() {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "aggregation is offered on newest and range, not oldest",
        ));
    }
    let open = Arc::clone(&access.open);
    scan::run(view.is_long(false), move |cancelled| {
        let store = &open.store;
        list_records(
            store,
            store.iter(),
            &view,
            &mut Budget::unlimited(cancelled),
        )
    })
    .await
}

/// The newest records, newest first; with `agg_window`, the newest windows.
#[utoipa::path(get, path = "/api/stores/{store}/data/newest", tag = "data",
    params(("store" = String, Path),
        ("limit" = Option<u64>, Query, description = "default 10; windows when aggregating"),
        ("include_data" = Option<bool>, Query, description = "default true"),
        ("since" = Option<String>, Query, description = "only records younger than this, e.g. 15m"),
        ("filter" = Option<String>, Query), ("filter_ignore_case" = Option<bool>, Query),
        ("format" = Option<String>, Query, description = "full or compact"),
        ("agg_window" = Option<String>, Query), ("agg_fields" = Option<String>, Query),
        ("agg_default" = Option<String>, Query)),
    responses((status = 200, body = ObjectList), (status = 400, body = ErrorBody)))]
async fn newest(State(app): State<App>, access: StoreAccess) -> ApiResult<Response> {
    let p = &access.params;
    let view = View::parse(p, 10, true, app.limits.max_records)?;
    let now = tsstore::now_ns();
    let from = match p.duration_ns("since")? {
        Some(age) => now.saturating_sub(age),
        None => 0,
    };
    let spec = agg_spec(p, access.open.store.data_type())?;
    let (open, max) = (Arc::clone(&access.open), app.limits.max_records);
    scan::run(view.is_long(spec.is_some()), move |cancelled| {
        let store = &open.store;
        let Some(spec) = spec else {
            let iter = store.iter_range_rev(from, i64::MAX);
            return list_records(store, iter, &view, &mut Budget::unlimited(cancelled));
        };
        let budget = &mut Budget::new(max, cancelled);
        let start = newest_windows_start(store, &spec, &view, from, budget)?;
        let mut windows =
            aggregate_forward(store, spec, &view, (start, i64::MAX), (start, now), budget)?;
        let keep = windows.len().saturating_sub(view.limit);
        windows.drain(..keep);
        windows.reverse();
        Ok(list_windows(&windows, view.compact))
    })
    .await
}

/// Records in a time range, oldest first; with `agg_window`, windows.
#[utoipa::path(get, path = "/api/stores/{store}/data/range", tag = "data",
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
        ("agg_default" = Option<String>, Query)),
    responses((status = 200, body = ObjectList), (status = 400, body = ErrorBody)))]
async fn range(State(app): State<App>, access: StoreAccess) -> ApiResult<Response> {
    let p = &access.params;
    let store = &access.open.store;
    let view = View::parse(p, 100, false, app.limits.max_records)?;
    let now = tsstore::now_ns();
    let start_time = p.timestamp("start_time")?.filter(|&t| t != 0);
    let end_time = p.timestamp("end_time")?.filter(|&t| t != 0);
    let since = p.duration_ns("since")?;
    let after = p.timestamp("after")?;
    let starts = [start_time.is_some(), since.is_some(), after.is_some()];
    if starts.iter().filter(|&&s| s).count() > 1 {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "give at most one of start_time, since and after",
        ));
    }
    let from = start_time
        .or(since.map(|age| now.saturating_sub(age)))
        .or(after.map(|a| a.saturating_add(1)))
        .unwrap_or(0);
    let to = end_time.unwrap_or(i64::MAX);
    if from > to {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("end_time {to} is before the start of the range {from}"),
        ));
    }
    let spec = agg_spec(p, store.data_type())?;
    let covered = (from, end_time.unwrap_or(now));
    let (open, max) = (Arc::clone(&access.open), app.limits.max_records);
    scan::run(view.is_long(spec.is_some()), move |cancelled| {
        let store = &open.store;
        let Some(spec) = spec else {
            let iter = store.iter_range(from, to);
            return list_records(store, iter, &view, &mut Budget::unlimited(cancelled));
        };
        let budget = &mut Budget::new(max, cancelled);
        let windows = aggregate_forward(store, spec, &view, (from, to), covered, budget)?;
        Ok(list_windows(&windows, view.compact))
    })
    .await
}

/// Where the newest `view.limit` windows (of object records passing the
/// filter) begin: scans backwards without aggregating.
fn newest_windows_start(
    store: &Store,
    spec: &AggSpec,
    view: &View,
    from: i64,
    budget: &mut Budget,
) -> ApiResult<i64> {
    let mut windows = 0;
    let mut current = None;
    for rec in store.iter_range_rev(from, i64::MAX) {
        let rec = rec?;
        budget.take()?;
        // Only records the aggregator takes (objects) make a window.
        let is_object = rec.data.trim_ascii_start().first() == Some(&b'{');
        if !is_object || !passes(store, &view.filter, &rec.data) {
            continue;
        }
        let w = rec.timestamp().div_euclid(spec.window_ns);
        if current != Some(w) {
            if windows == view.limit {
                return Ok(current.map_or(from, |c: i64| c * spec.window_ns));
            }
            windows += 1;
            current = Some(w);
        }
    }
    Ok(from)
}

/// Aggregates the records in `range` (after the filter); windows cut by
/// `covered` are partial. Stops after `view.limit` windows.
fn aggregate_forward(
    store: &Store,
    spec: AggSpec,
    view: &View,
    range: (i64, i64),
    covered: (i64, i64),
    budget: &mut Budget,
) -> ApiResult<Vec<Window>> {
    let mut agg = Aggregator::new(spec).covered_from(covered.0);
    let mut windows = Vec::new();
    for rec in store.iter_range(range.0, range.1) {
        let rec = rec?;
        budget.take()?;
        let data = store.expand(&rec.data);
        if view.filter.as_ref().is_some_and(|f| !f.matches(&data)) {
            continue;
        }
        if let Some(w) = agg.add(rec.timestamp(), &data) {
            windows.push(w);
            if windows.len() >= view.limit {
                return Ok(windows);
            }
        }
    }
    windows.extend(agg.finish(covered.1));
    windows.truncate(view.limit);
    Ok(windows)
}

/// Windows as a list; compact replaces field names by indices listed in a
/// leading `{"_schema": {...}}` element.
fn list_windows(windows: &[Window], compact: bool) -> Response {
    let mut out = Vec::with_capacity(128 * (windows.len() + 1));
    out.extend_from_slice(b"{\"objects\":[");
    let mut names: Vec<String> = Vec::new();
    let mut bodies: Vec<Cow<[u8]>> = Vec::with_capacity(windows.len());
    for w in windows {
        if !compact {
            bodies.push(Cow::Borrowed(&w.data));
            continue;
        }
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&w.data).unwrap_or_default();
        let mut compacted = serde_json::Map::new();
        for (k, v) in map {
            let index = match names.iter().position(|n| *n == k) {
                Some(i) => i + 1,
                None => {
                    names.push(k);
                    names.len()
                }
            };
            compacted.insert(index.to_string(), v);
        }
        bodies.push(Cow::Owned(
            serde_json::to_vec(&compacted).unwrap_or_else(|_| b"{}".to_vec()),
        ));
    }
    if compact {
        let schema: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .enumerate()
            .map(|(i, n)| ((i + 1).to_string(), serde_json::Value::from(n.as_str())))
            .collect();
        out.extend_from_slice(b"{\"_schema\":");
        let _ = serde_json::to_writer(&mut out, &schema);
        out.push(b'}');
    }
    for (i, (w, body)) in windows.iter().zip(&bodies).enumerate() {
        if i > 0 || compact {
            out.push(b',');
        }
        out.extend_from_slice(
            format!(
                "{{\"timestamp\":{},\"records\":{},\"partial\":{},\"data\":",
                w.end, w.records, w.partial
            )
            .as_bytes(),
        );
        out.extend_from_slice(body);
        out.push(b'}');
    }
    out.extend_from_slice(format!("],\"count\":{}}}", windows.len()).as_bytes());
    json_response(StatusCode::OK, out)
}
