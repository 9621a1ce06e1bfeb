//! Influx connections over REST (`/api/stores/:store/influx/connections
//! [/:id]`, with the store's key): create, list, get, delete. The
//! connections themselves are `outbound::influx`'s; answers never show a
//! token or password, and show how far behind the engine is.

use std::sync::atomic::Ordering::Relaxed;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
#[cfg(test)]
use utoipa::ToSchema;
#[cfg(test)]
use utoipa_axum::router::OpenApiRouter;
#[cfg(test)]
use utoipa_axum::routes;

use tsstore::DataType;

use super::connections::{self, ConnectionDeleted, Rest};
use super::error::ApiResult;
use super::extract::{Body, StoreAccess};
use crate::app::App;
use crate::outbound::influx::InfluxConnection;
use crate::outbound::{InfluxSpec, OutboundError, State as ConnState};
use crate::records::{ReadSpec, RecordResult};

/// Records counted at most for a connection's lag (each view walks them:
/// beyond, `lag_at_least` and `lag_seconds` tell).
const MAX_LAG_COUNT: usize = 10_000;

#[cfg(test)]
pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(create_influx_connection, list_influx_connections))
        .routes(routes!(get_influx_connection, delete_influx_connection))
}

/// An influx connection as the API shows it: its settings (secrets
/// redacted) and its state.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct InfluxConnectionOut {
    /// 8 hex digits.
    id: String,
    url: String,
    /// `[redacted]` when one is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'static str>,
    measurement: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tag_fields: Vec<String>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[cfg_attr(test, schema(value_type = Object))]
    tags: std::collections::BTreeMap<String, String>,
    batch_size: usize,
    max_delay: String,
    gzip: bool,
    created_at: String,
    /// connecting, connected, disconnected or error.
    #[cfg_attr(test, schema(value_type = String))]
    status: ConnState,
    /// The last record the engine acknowledged (resume point).
    last_timestamp: i64,
    /// The last record read from the store.
    read_timestamp: i64,
    /// Records in the store after `last_timestamp` (counted up to
    /// 10 000; `lag_at_least` beyond).
    lag_records: u64,
    lag_at_least: bool,
    /// The newest record's time less `last_timestamp`'s, in seconds.
    lag_seconds: f64,
    /// Points and records the engine answered 2xx for.
    points_sent: u64,
    records_sent: u64,
    /// Lines in the batch being built.
    in_flight: u64,
    /// Records with nothing to send, and points the engine refused
    /// (400, 422).
    skipped: u64,
    errors: u64,
    last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agg_window: Option<String>,
}

impl InfluxConnectionOut {
    fn of(store: &str, c: &InfluxConnection, open: Option<&tsstore::Store>) -> InfluxConnectionOut {
        let (errors, status, last_error) = c.errors_and_state();
        let s = &c.spec;
        let cursor = c.cursor();
        let (lag_records, lag_seconds) = open.map_or((0, 0.0), |store| {
            let newest = store.newest_timestamp().unwrap_or(0);
            let records = if newest > cursor {
                store
                    .iter_range(cursor.saturating_add(1), i64::MAX)
                    .with_data(false)
                    .limit(MAX_LAG_COUNT)
                    .filter(Result::is_ok)
                    .count()
            } else {
                0
            };
            (
                records as u64,
                newest.saturating_sub(cursor).max(0) as f64 / 1e9,
            )
        });
        InfluxConnectionOut {
            id: c.id.clone(),
            url: s.redacted_url(),
            token: s.token.as_ref().map(|_| "[redacted]"),
            username: s.username.clone(),
            password: s.password.as_ref().map(|_| "[redacted]"),
            measurement: s.line_options(store).measurement,
            tag_fields: s.tag_fields.clone(),
            tags: s.tags.clone(),
            batch_size: s.batch_size(),
            max_delay: s.max_delay.clone().unwrap_or_else(|| "1s".into()),
            gzip: s.gzip(),
            created_at: c.created_at.clone(),
            status,
            last_timestamp: cursor,
            read_timestamp: c.read_timestamp.load(Relaxed),
            lag_records,
            lag_at_least: lag_records >= MAX_LAG_COUNT as u64,
            lag_seconds,
            points_sent: c.points_sent.load(Relaxed),
            records_sent: c.records_sent.load(Relaxed),
            in_flight: c.in_flight.load(Relaxed),
            skipped: c.skipped.load(Relaxed),
            errors,
            last_error,
            filter: s.read.filter.clone(),
            agg_window: s.read.agg_window.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct InfluxConnectionList {
    connections: Vec<InfluxConnectionOut>,
    count: usize,
}

impl Rest for InfluxSpec {
    type Out = InfluxConnectionOut;
    type List = InfluxConnectionList;

    fn parse(body: &[u8], dt: DataType, max_records: usize) -> Result<Self, OutboundError> {
        Ok(InfluxSpec::parse(body, dt, max_records)?)
    }

    fn read(&self, dt: DataType, max_records: usize) -> RecordResult<ReadSpec> {
        self.read_spec(dt, max_records)
    }

    fn out(store: &str, c: &InfluxConnection) -> InfluxConnectionOut {
        InfluxConnectionOut::of(store, c, None)
    }

    fn out_with(store: &str, c: &InfluxConnection, open: &tsstore::Store) -> InfluxConnectionOut {
        InfluxConnectionOut::of(store, c, Some(open))
    }

    fn list(connections: Vec<InfluxConnectionOut>) -> InfluxConnectionList {
        let count = connections.len();
        InfluxConnectionList { connections, count }
    }
}

/// Ship the store's records as line protocol to a central engine:
/// `{"url", "token"? | "username"?, "password"?, "measurement"?,
/// "tag_fields"?, "tags"?, "from"?, "batch_size"?, "max_delay"?, "gzip"?,
/// "ca_file"?, "filter"?, "agg_window"?, "agg_fields"?, "agg_default"?}`.
/// `url` is the engine's write URL (VictoriaMetrics
/// `http://host:8428/write`, InfluxDB `/write?db=…` or
/// `/api/v2/write?org=…&bucket=…`). At least once: the cursor moves
/// after a 2xx only; see docs/FLEET.md.
#[cfg_attr(test, utoipa::path(post, path = "/api/stores/{store}/influx/connections", tag = "connections",
    params(("store" = String, Path)), request_body(content = Object, content_type = "application/json"),
    responses((status = 201, body = InfluxConnectionOut))))]
pub(super) async fn create_influx_connection(
    State(app): State<App>,
    access: StoreAccess,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<InfluxConnectionOut>)> {
    connections::create::<InfluxSpec>(&app, &access, &body)
}

/// The store's influx connections, their state and lag.
#[cfg_attr(test, utoipa::path(get, path = "/api/stores/{store}/influx/connections", tag = "connections",
    params(("store" = String, Path)), responses((status = 200, body = InfluxConnectionList))))]
pub(super) async fn list_influx_connections(
    State(app): State<App>,
    access: StoreAccess,
) -> Json<InfluxConnectionList> {
    connections::list::<InfluxSpec>(&app, &access)
}

/// One influx connection, its state and lag.
#[cfg_attr(test, utoipa::path(get, path = "/api/stores/{store}/influx/connections/{id}", tag = "connections",
    params(("store" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = InfluxConnectionOut))))]
pub(super) async fn get_influx_connection(
    State(app): State<App>,
    access: StoreAccess,
) -> ApiResult<Json<InfluxConnectionOut>> {
    connections::get::<InfluxSpec>(&app, &access)
}

/// Stop an influx connection and forget it.
#[cfg_attr(test, utoipa::path(delete, path = "/api/stores/{store}/influx/connections/{id}", tag = "connections",
    params(("store" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = ConnectionDeleted))))]
pub(super) async fn delete_influx_connection(
    State(app): State<App>,
    access: StoreAccess,
) -> ApiResult<Json<ConnectionDeleted>> {
    connections::delete::<InfluxSpec>(&app, &access)
}
