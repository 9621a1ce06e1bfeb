//! The bounds of one request, whatever transport carries it: body and
//! message sizes, records per read, time per request, and the per-store
//! counts of live readers and outbound connections. Set once at start
//! from the configuration.

use std::time::Duration;

/// Bounds of one request, whatever transport carries it.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body, bytes.
    pub max_body: usize,
    /// Largest `limit`, and most raw records one aggregation may read.
    pub max_records: usize,
    /// Longest a request may run before it is answered as timed out.
    pub request_timeout: Duration,
    /// Largest footprint of a store created over the API; `None`: no cap.
    pub max_store_bytes: Option<u64>,
    /// Longest Unix-socket line.
    pub max_line: usize,
    /// Unix-socket clients served at once.
    pub max_socket_clients: usize,
    /// Largest WebSocket message.
    pub max_message: usize,
    /// Live readers per store.
    pub max_live_readers: usize,
    /// Outbound connections per store.
    pub max_outbound: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 1 << 20,
            max_records: 100_000,
            request_timeout: Duration::from_secs(30),
            max_store_bytes: None,
            max_line: 1 << 20,
            max_socket_clients: 64,
            max_message: 1 << 20,
            max_live_readers: 64,
            max_outbound: 16,
        }
    }
}
