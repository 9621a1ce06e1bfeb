//! Outbound WebSocket connections (SPEC §7 pull, §8 push): the server
//! dials a peer and either sends it a store's records (push, a
//! `records::live` feed) or stores what it sends (pull, through
//! `records::intake`). `spec` checks what a connection is asked to do,
//! `manager` keeps, persists, restores and runs them, `backoff` spaces the
//! reconnects. Nothing here knows HTTP: the REST endpoints are in
//! `http::connections`.

pub mod backoff;
pub mod manager;
pub mod spec;

pub use manager::{Connection, Outbound, OutboundError, State};
pub use spec::{ConnectionSpec, Mode, SpecError};
