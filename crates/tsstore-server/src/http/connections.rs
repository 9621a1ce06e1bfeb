//! Outbound connections over REST: create, list, get, delete, written
//! once for every kind (`Rest`), and the WebSocket kind's endpoints
//! (`/api/stores/:store/ws/connections[/:id]`, with the store's key;
//! `http::mqtt` has the MQTT kind's). The connections themselves are
//! `outbound`'s; answers never show a header's value.

use std::sync::atomic::Ordering::Relaxed;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use std::collections::BTreeMap;
#[cfg(test)]
use utoipa::ToSchema;
#[cfg(test)]
use utoipa_axum::router::OpenApiRouter;
#[cfg(test)]
use utoipa_axum::routes;

use tsstore::DataType;

use super::error::ApiResult;
use super::extract::{Body, StoreAccess, expect_json};
use crate::alerts::RuleSpec;
use crate::app::App;
use crate::outbound::{
    AckMode, Connection, ConnectionSpec, Mode, OutboundError, Registered, State as ConnState,
    WsConnection,
};
use crate::records::{ReadSpec, RecordResult, pipeline};

#[cfg(test)]
pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(create_connection, list_connections))
        .routes(routes!(get_connection, delete_connection))
}

/// A connection as the API shows it: its settings (header values
/// redacted) and its state.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct ConnectionOut {
    /// 8 hex digits.
    id: String,
    mode: &'static str,
    url: String,
    #[cfg_attr(test, schema(value_type = Object))]
    headers: BTreeMap<String, String>,
    created_at: String,
    /// connecting, connected, disconnected or error.
    #[cfg_attr(test, schema(value_type = String))]
    status: ConnState,
    /// Push: the last record the peer confirmed (resume point): taken by
    /// its WebSocket (`ack: transport`) or acknowledged (`ack: app`).
    /// Pull: the last record stored.
    last_timestamp: i64,
    /// Push: `transport` or `app`; pull: `app` when it acks what it stores.
    ack: &'static str,
    /// Push with `ack: app`: messages sent and not yet acknowledged.
    in_flight: u64,
    /// Acks for timestamps never sent, refused.
    refused_acks: u64,
    /// Pull: records the source sent again (at or before the newest
    /// stored), skipped.
    skipped: u64,
    /// Push: the last record read from the store (sent, filtered out or
    /// in the window being filled).
    read_timestamp: i64,
    messages_sent: u64,
    messages_received: u64,
    errors: u64,
    last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agg_window: Option<String>,
    /// Alert rules (webhook paths and header values redacted).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(test, schema(value_type = Vec<Object>))]
    rules: Vec<RuleSpec>,
    rules_count: usize,
    alerts_fired: u64,
    /// Alerts not sent on the socket: made while the peer was away, with
    /// its queue (64) full. (While the peer is connected, a full queue
    /// pauses the rules instead.)
    alerts_dropped: u64,
    /// Times the ring overwrote records before the rules saw them.
    evaluation_gaps: u64,
    webhook_sent: u64,
    /// Alerts whose webhook POST failed after its retries.
    webhook_failures: u64,
    /// The last alert lost and why: a webhook that failed after its
    /// retries, records overwritten before the rules saw them.
    #[serde(skip_serializing_if = "Option::is_none")]
    alerts_last_error: Option<String>,
}

impl ConnectionOut {
    fn of(c: &WsConnection) -> ConnectionOut {
        let (errors, status, last_error) = c.errors_and_state();
        let a = &c.alerts;
        ConnectionOut {
            id: c.id.clone(),
            mode: c.spec.mode.as_str(),
            url: c.spec.redacted_url(),
            headers: c.spec.redacted_headers(),
            created_at: c.created_at.clone(),
            status,
            last_timestamp: c.cursor(),
            ack: match c.spec.ack {
                Some(AckMode::App) => "app",
                _ => "transport",
            },
            in_flight: c.in_flight.load(Relaxed),
            refused_acks: c.refused_acks.load(Relaxed),
            skipped: c.skipped.load(Relaxed),
            read_timestamp: if c.spec.mode == Mode::Push {
                c.read_timestamp.load(Relaxed)
            } else {
                0
            },
            messages_sent: c.messages_sent.load(Relaxed),
            messages_received: c.messages_received.load(Relaxed),
            errors,
            last_error,
            filter: c.spec.read.filter.clone(),
            format: c.spec.format.clone(),
            agg_window: c.spec.read.agg_window.clone(),
            rules: c.spec.rules.iter().map(RuleSpec::redacted).collect(),
            rules_count: c.spec.rules.len(),
            alerts_fired: a.fired.load(Relaxed),
            alerts_dropped: a.socket_drops.load(Relaxed),
            evaluation_gaps: a.evaluation_gaps.load(Relaxed),
            webhook_sent: a.webhook_sent.load(Relaxed),
            webhook_failures: a.webhook_failures.load(Relaxed),
            alerts_last_error: a.last_error(),
        }
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct ConnectionList {
    connections: Vec<ConnectionOut>,
    count: usize,
}

/// Dial out: `{"mode": "push"|"pull", "url": "ws://...", "headers"?,
/// "from"?, "filter"?, "filter_ignore_case"?, "format"?, "agg_window"?,
/// "agg_fields"?, "agg_default"?, "rules"?, "ca_file"?}`. Push sends the
/// store's records after `from` (0: the oldest) and then each new one,
/// and alerts when a rule `{name, condition, cooldown?, webhook?,
/// webhook_headers?}` fires; pull stores every `{"timestamp"?, "data"}`
/// the peer sends. Reconnects with backoff.
#[cfg_attr(test, utoipa::path(post, path = "/api/stores/{store}/ws/connections", tag = "connections",
    params(("store" = String, Path)), request_body(content = Object, content_type = "application/json"),
    responses((status = 201, body = ConnectionOut))))]
pub(super) async fn create_connection(
    State(app): State<App>,
    access: StoreAccess,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<ConnectionOut>)> {
    create::<ConnectionSpec>(&app, &access, &body)
}

/// The store's outbound connections and their state.
#[cfg_attr(test, utoipa::path(get, path = "/api/stores/{store}/ws/connections", tag = "connections",
    params(("store" = String, Path)), responses((status = 200, body = ConnectionList))))]
pub(super) async fn list_connections(
    State(app): State<App>,
    access: StoreAccess,
) -> Json<ConnectionList> {
    list::<ConnectionSpec>(&app, &access)
}

/// One connection and its state.
#[cfg_attr(test, utoipa::path(get, path = "/api/stores/{store}/ws/connections/{id}", tag = "connections",
    params(("store" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = ConnectionOut))))]
pub(super) async fn get_connection(
    State(app): State<App>,
    access: StoreAccess,
) -> ApiResult<Json<ConnectionOut>> {
    get::<ConnectionSpec>(&app, &access)
}

/// Stop a connection (with a close frame to the peer) and forget it.
#[cfg_attr(test, utoipa::path(delete, path = "/api/stores/{store}/ws/connections/{id}", tag = "connections",
    params(("store" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = ConnectionDeleted))))]
pub(super) async fn delete_connection(
    State(app): State<App>,
    access: StoreAccess,
) -> ApiResult<Json<ConnectionDeleted>> {
    delete::<ConnectionSpec>(&app, &access)
}

impl Rest for ConnectionSpec {
    type Out = ConnectionOut;
    type List = ConnectionList;

    fn parse(body: &[u8], dt: DataType, max_records: usize) -> Result<Self, OutboundError> {
        Ok(ConnectionSpec::parse(body, dt, max_records)?)
    }

    fn read(&self, dt: DataType, max_records: usize) -> RecordResult<ReadSpec> {
        self.read_spec(dt, max_records)
    }

    fn out(_store: &str, c: &WsConnection) -> ConnectionOut {
        ConnectionOut::of(c)
    }

    fn list(connections: Vec<ConnectionOut>) -> ConnectionList {
        let count = connections.len();
        ConnectionList { connections, count }
    }
}

/// What the REST endpoints need of one kind of outbound connection. The
/// endpoints themselves (create, list, get, delete) are written once,
/// below, for every kind; each kind's handlers only carry its OpenAPI
/// description.
pub(super) trait Rest: Registered {
    /// A connection as answers show it (secrets redacted).
    type Out: Serialize;
    type List: Serialize;
    fn parse(body: &[u8], dt: DataType, max_records: usize) -> Result<Self, OutboundError>;
    /// What it reads of the store (checked at create against what only
    /// the store can tell: its rollups).
    fn read(&self, dt: DataType, max_records: usize) -> RecordResult<ReadSpec>;
    fn out(store: &str, c: &Connection<Self>) -> Self::Out;
    /// The same, with what only the store can tell (a lag).
    fn out_with(store: &str, c: &Connection<Self>, _open: &tsstore::Store) -> Self::Out {
        Self::out(store, c)
    }
    fn list(connections: Vec<Self::Out>) -> Self::List;
}

pub(super) fn create<S: Rest>(
    app: &App,
    access: &StoreAccess,
    body: &[u8],
) -> ApiResult<(StatusCode, Json<S::Out>)> {
    expect_json(access.content_type.as_deref())?;
    let (dt, max) = (access.open.store.data_type(), app.limits.max_records);
    let spec = S::parse(body, dt, max)?;
    pipeline::for_feed(spec.read(dt, max)?, &access.open.store)?;
    let conn =
        S::registry(&app.outbound).create(&app.outbound, &access.name, &access.open, spec)?;
    Ok((StatusCode::CREATED, Json(S::out(&access.name, &conn))))
}

pub(super) fn list<S: Rest>(app: &App, access: &StoreAccess) -> Json<S::List> {
    let connections = S::registry(&app.outbound)
        .list(&access.name)
        .iter()
        .map(|c| S::out_with(&access.name, c, &access.open.store))
        .collect();
    Json(S::list(connections))
}

pub(super) fn get<S: Rest>(app: &App, access: &StoreAccess) -> ApiResult<Json<S::Out>> {
    let conn = S::registry(&app.outbound).get(&access.name, id_param(access))?;
    Ok(Json(S::out_with(&access.name, &conn, &access.open.store)))
}

pub(super) fn delete<S: Rest>(
    app: &App,
    access: &StoreAccess,
) -> ApiResult<Json<ConnectionDeleted>> {
    let id = id_param(access).to_string();
    S::registry(&app.outbound).delete(access.open.store.path(), &access.name, &id)?;
    Ok(Json(ConnectionDeleted::new(id)))
}

fn id_param(access: &StoreAccess) -> &str {
    access.path.get("id").map_or("", String::as_str)
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct ConnectionDeleted {
    status: &'static str,
    id: String,
}

impl ConnectionDeleted {
    fn new(id: String) -> ConnectionDeleted {
        ConnectionDeleted {
            status: "deleted",
            id,
        }
    }
}
