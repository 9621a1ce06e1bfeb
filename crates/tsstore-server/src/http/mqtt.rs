//! MQTT connections over REST (`/api/stores/:store/mqtt/connections[/:id]`,
//! with the store's key): create, list, get, delete.
//! The connections themselves are `outbound::mqtt`'s; answers never show
//! a password.

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
use crate::outbound::mqtt::MqttConnection;
use crate::outbound::{MqttMode, MqttSpec, OutboundError, State as ConnState};
use crate::records::{ReadSpec, RecordResult};

#[cfg(test)]
pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(create_mqtt_connection, list_mqtt_connections))
        .routes(routes!(get_mqtt_connection, delete_mqtt_connection))
}

/// An MQTT connection as the API shows it: its settings (the password
/// redacted) and its state.
#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct MqttConnectionOut {
    /// 8 hex digits.
    id: String,
    /// publish or subscribe.
    mode: &'static str,
    broker_url: String,
    topic: String,
    client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    /// `[redacted]` when one is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'static str>,
    created_at: String,
    /// connecting, connected, disconnected or error.
    #[cfg_attr(test, schema(value_type = String))]
    status: ConnState,
    /// Publish: the last record the broker acknowledged (resume point).
    last_timestamp: i64,
    /// Publish: the last record read from the store.
    read_timestamp: i64,
    /// Publish: messages sent and not yet acknowledged.
    in_flight: u64,
    messages_sent: u64,
    /// Subscribe: messages stored.
    messages_received: u64,
    errors: u64,
    last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    include_timestamp: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor_persist_interval: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    in_flight_window: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp_field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agg_window: Option<String>,
}

impl MqttConnectionOut {
    fn of(store: &str, c: &MqttConnection) -> MqttConnectionOut {
        let (errors, status, last_error) = c.errors_and_state();
        let s = &c.spec;
        let publish = s.mode == MqttMode::Publish;
        MqttConnectionOut {
            id: c.id.clone(),
            mode: s.mode.as_str(),
            broker_url: s.redacted_url(),
            topic: s.topic.clone(),
            client_id: s.client_id_for(store, &c.id),
            username: s.username.clone(),
            password: s.password.as_ref().map(|_| "[redacted]"),
            created_at: c.created_at.clone(),
            status,
            last_timestamp: if publish { c.cursor() } else { 0 },
            read_timestamp: if publish {
                c.read_timestamp.load(Relaxed)
            } else {
                0
            },
            in_flight: c.in_flight.load(Relaxed),
            messages_sent: c.messages_sent.load(Relaxed),
            messages_received: c.messages_received.load(Relaxed),
            errors,
            last_error,
            include_timestamp: publish.then(|| s.include_timestamp()),
            cursor_persist_interval: publish.then(|| s.persist_every()),
            in_flight_window: publish.then(|| s.in_flight()),
            timestamp_field: s.timestamp_field.clone(),
            filter: s.read.filter.clone(),
            agg_window: s.read.agg_window.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(test, derive(ToSchema))]
pub struct MqttConnectionList {
    connections: Vec<MqttConnectionOut>,
    count: usize,
}

impl Rest for MqttSpec {
    type Out = MqttConnectionOut;
    type List = MqttConnectionList;

    fn parse(body: &[u8], dt: DataType, max_records: usize) -> Result<Self, OutboundError> {
        Ok(MqttSpec::parse(body, dt, max_records)?)
    }

    fn read(&self, dt: DataType, max_records: usize) -> RecordResult<ReadSpec> {
        self.read_spec(dt, max_records)
    }

    fn out(store: &str, c: &MqttConnection) -> MqttConnectionOut {
        MqttConnectionOut::of(store, c)
    }

    fn list(connections: Vec<MqttConnectionOut>) -> MqttConnectionList {
        let count = connections.len();
        MqttConnectionList { connections, count }
    }
}

/// Connect to an MQTT broker: `{"mode": "publish"|"subscribe",
/// "broker_url": "tcp://host:1883"|"ssl://host:8883", "topic", "from"?,
/// "include_timestamp"?, "cursor_persist_interval"?, "in_flight"?,
/// "client_id"?, "username"?, "password"?, "ca_file"?,
/// "timestamp_field"?, "filter"?, "agg_window"?, "agg_fields"?,
/// "agg_default"?}`. Publish sends the store's records after `from` (0:
/// the oldest, -1: from now on) with QoS 1, moving its cursor past what
/// the broker acknowledged; subscribe stores each message published on
/// the topic filter. Reconnects with backoff.
#[cfg_attr(test, utoipa::path(post, path = "/api/stores/{store}/mqtt/connections", tag = "connections",
    params(("store" = String, Path)), request_body(content = Object, content_type = "application/json"),
    responses((status = 201, body = MqttConnectionOut))))]
pub(super) async fn create_mqtt_connection(
    State(app): State<App>,
    access: StoreAccess,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<MqttConnectionOut>)> {
    connections::create::<MqttSpec>(&app, &access, &body)
}

/// The store's MQTT connections and their state.
#[cfg_attr(test, utoipa::path(get, path = "/api/stores/{store}/mqtt/connections", tag = "connections",
    params(("store" = String, Path)), responses((status = 200, body = MqttConnectionList))))]
pub(super) async fn list_mqtt_connections(
    State(app): State<App>,
    access: StoreAccess,
) -> Json<MqttConnectionList> {
    connections::list::<MqttSpec>(&app, &access)
}

/// One MQTT connection and its state.
#[cfg_attr(test, utoipa::path(get, path = "/api/stores/{store}/mqtt/connections/{id}", tag = "connections",
    params(("store" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = MqttConnectionOut))))]
pub(super) async fn get_mqtt_connection(
    State(app): State<App>,
    access: StoreAccess,
) -> ApiResult<Json<MqttConnectionOut>> {
    connections::get::<MqttSpec>(&app, &access)
}

/// Stop an MQTT connection (with a DISCONNECT to the broker) and forget it.
#[cfg_attr(test, utoipa::path(delete, path = "/api/stores/{store}/mqtt/connections/{id}", tag = "connections",
    params(("store" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = ConnectionDeleted))))]
pub(super) async fn delete_mqtt_connection(
    State(app): State<App>,
    access: StoreAccess,
) -> ApiResult<Json<ConnectionDeleted>> {
    connections::delete::<MqttSpec>(&app, &access)
}
