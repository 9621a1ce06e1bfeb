//! Outbound connections: the server dials a peer and sends it a store's
//! records or stores what it sends. WebSocket (`ws`: push, a
//! `records::live` feed; `pull`, through `records::intake`) and MQTT
//! (`mqtt`: publish, subscribe) are two `Kind`s of the
//! same `Connection`, kept, persisted and restored by `manager`, and
//! spaced on reconnects by `backoff`. `spec` checks what a WebSocket
//! connection is asked to do, `mqtt::spec` an MQTT one. Nothing here
//! knows HTTP: the REST endpoints are in `http::connections` and
//! `http::mqtt`.

pub mod backoff;
pub mod connection;
mod dial;
pub mod manager;
pub mod mqtt;
pub mod pull;
pub mod spec;
pub mod ws;

pub use connection::{Connection, Env, Kind, SessionError, State};
pub use manager::{Connections, Outbound, OutboundError, Registered};
pub use mqtt::{MqttMode, MqttSpec, MqttSpecError};
pub use spec::{AckMode, ConnectionSpec, Mode, SpecError};
pub use ws::WsConnection;
