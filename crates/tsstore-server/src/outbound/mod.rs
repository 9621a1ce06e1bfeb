//! Outbound connections: the server dials a peer and sends it a store's
//! records or stores what it sends. WebSocket (`ws`: push, a
//! `records::live` feed; `pull`, through `records::intake`), MQTT
//! (`mqtt`: publish, subscribe) and line protocol to a central engine
//! (`influx`: ship over HTTP) are three `Kind`s of the same
//! `Connection`, kept, persisted and restored by `manager`, and spaced on
//! reconnects by `backoff`. `spec` checks what a WebSocket connection is
//! asked to do, `mqtt::spec` an MQTT one, `influx::spec` an influx one.
//! Nothing here knows HTTP statuses: the REST endpoints are in
//! `http::connections`, `http::mqtt` and `http::influx_connections`.

pub mod backoff;
pub mod connection;
mod dial;
pub mod influx;
pub mod manager;
pub mod mqtt;
pub mod pull;
pub mod spec;
pub mod ws;

pub use connection::{Connection, Env, Kind, SessionError, State};
pub use influx::{InfluxSpec, InfluxSpecError};
pub use manager::{Connections, Outbound, OutboundError, Registered};
pub use mqtt::{MqttMode, MqttSpec, MqttSpecError};
pub use spec::{AckMode, ConnectionSpec, Mode, SpecError};
pub use ws::WsConnection;
