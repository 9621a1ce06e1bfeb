//! The `config.json` layer: its sections as the file spells them (an
//! unknown key is an error), turned into an `Overrides`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, Overrides};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileConfig {
    server: ServerSection,
    store: StoreSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ServerSection {
    host: Option<String>,
    port: Option<u16>,
    socket_path: Option<String>,
    admin_key: Option<String>,
    tls: Option<TlsSection>,
    /// Largest request body (default 1 MiB).
    max_body_bytes: Option<usize>,
    /// Largest `limit` and most records one aggregation reads (default 100 000).
    max_records: Option<usize>,
    /// Concurrent connections served (default 512).
    max_connections: Option<usize>,
    /// Longest a request may run (default 30 000).
    request_timeout_ms: Option<u64>,
    /// Threads serving requests (default: one per core).
    worker_threads: Option<usize>,
    /// Largest footprint of a store created over the API (default: none).
    max_store_bytes: Option<u64>,
    /// Longest Unix-socket line (default 1 MiB).
    max_line_bytes: Option<usize>,
    /// Unix-socket clients served at once (default 64).
    max_socket_clients: Option<usize>,
    /// Largest WebSocket message (default 1 MiB).
    max_message_bytes: Option<usize>,
    /// Live readers (WebSocket read) per store (default 64).
    max_live_readers: Option<usize>,
    /// Outbound connections per store (default 16).
    max_outbound_connections: Option<usize>,
    /// Connections from one client address (default 64).
    max_connections_per_address: Option<usize>,
    /// Addresses or networks exempt from the per-address bound.
    trusted_addresses: Option<Vec<String>>,
    /// Time for a complete request head (default 10 000).
    request_header_timeout_ms: Option<u64>,
    /// Idle keep-alive connections are closed after (default 60 000).
    keep_alive_timeout_ms: Option<u64>,
    /// A write the client takes nothing of closes it after (default 30 000).
    send_timeout_ms: Option<u64>,
    /// A WebSocket write connection without a message is closed after
    /// (default 600 000).
    ws_idle_timeout_ms: Option<u64>,
    /// Failed authentications one address may make at once (default 10).
    auth_failure_burst: Option<u32>,
    /// ...and per second after that (default 2).
    auth_failures_per_sec: Option<f64>,
    /// Client timestamps further ahead of the clock are refused
    /// (default "24h"; "0" turns the guard off).
    max_future_skew: Option<String>,
    /// Largest total footprint of all stores (default: none).
    max_total_store_bytes: Option<u64>,
    /// A store nothing uses is closed after (default 300 000; 0: never).
    store_idle_close_ms: Option<u64>,
    /// Stores open at once, least recently used idle ones closed beyond
    /// it (default 256).
    max_open_stores: Option<usize>,
    /// Stores with their own series in /metrics: "all", "none" or the
    /// busiest N (default "20").
    metrics_stores: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TlsSection {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct StoreSection {
    base_path: Option<PathBuf>,
    data_block_size: Option<u32>,
    index_block_size: Option<u32>,
    num_blocks: Option<u32>,
    sync: Option<String>,
    sync_interval_ms: Option<u64>,
    /// Read data files out of a memory mapping (default true; false: a
    /// failing disk answers reads with an error instead of SIGBUS).
    read_mapping: Option<bool>,
    /// The engine's background workers, shared by all stores (default 3).
    background_workers: Option<usize>,
    /// Decoded compressed frames kept for lookups, all stores together
    /// (default 4 MiB; 0: none).
    frame_cache_bytes: Option<usize>,
    /// Rollups of new stores that give none (`["1m::7d", "1h::365d"]`).
    rollups: Option<Vec<String>>,
}

/// Reads a `config.json` layer.
pub fn from_file(path: &Path) -> Result<Overrides, ConfigError> {
    let file: FileConfig = crate::json_file::read(path).map_err(|source| ConfigError::File {
        path: path.display().to_string(),
        source,
    })?;
    let tls = file.server.tls.unwrap_or_default();
    Ok(Overrides {
        host: file.server.host,
        port: file.server.port,
        socket_path: file.server.socket_path,
        admin_key: file.server.admin_key,
        tls_cert: tls.cert_file,
        tls_key: tls.key_file,
        base_path: file.store.base_path,
        data_block_size: file.store.data_block_size,
        index_block_size: file.store.index_block_size,
        num_blocks: file.store.num_blocks,
        sync: file.store.sync,
        sync_interval_ms: file.store.sync_interval_ms,
        read_mapping: file.store.read_mapping,
        background_workers: file.store.background_workers,
        frame_cache_bytes: file.store.frame_cache_bytes,
        rollups: file.store.rollups,
        log_level: None,
        max_body_bytes: file.server.max_body_bytes,
        max_records: file.server.max_records,
        max_connections: file.server.max_connections,
        request_timeout_ms: file.server.request_timeout_ms,
        worker_threads: file.server.worker_threads,
        max_store_bytes: file.server.max_store_bytes,
        max_line_bytes: file.server.max_line_bytes,
        max_socket_clients: file.server.max_socket_clients,
        max_message_bytes: file.server.max_message_bytes,
        max_live_readers: file.server.max_live_readers,
        max_outbound_connections: file.server.max_outbound_connections,
        max_connections_per_address: file.server.max_connections_per_address,
        trusted_addresses: file.server.trusted_addresses,
        request_header_timeout_ms: file.server.request_header_timeout_ms,
        keep_alive_timeout_ms: file.server.keep_alive_timeout_ms,
        send_timeout_ms: file.server.send_timeout_ms,
        ws_idle_timeout_ms: file.server.ws_idle_timeout_ms,
        auth_failure_burst: file.server.auth_failure_burst,
        auth_failures_per_sec: file.server.auth_failures_per_sec,
        max_future_skew: file.server.max_future_skew,
        max_total_store_bytes: file.server.max_total_store_bytes,
        store_idle_close_ms: file.server.store_idle_close_ms,
        max_open_stores: file.server.max_open_stores,
        metrics_stores: file.server.metrics_stores,
    })
}
