//! The engine's error type: one variant per failure a caller can act on.
//!
//! Messages are written for people (the server shows them verbatim), and
//! variants carry the values that explain the failure.

use std::io;

/// Every failure the engine reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The timestamp is not after the newest one in the store; nothing was written.
    #[error("timestamp {timestamp} is not after the newest timestamp in the store ({newest})")]
    TimestampOutOfOrder { timestamp: i64, newest: i64 },
    /// Timestamps are nanoseconds since the epoch and must be positive.
    #[error(
        "timestamp {0} is invalid: timestamps must be positive nanoseconds since the Unix epoch"
    )]
    InvalidTimestamp(i64),
    /// No live object has this timestamp (or the handle no longer points at one).
    #[error("no object with timestamp {0}")]
    NotFound(i64),
    #[error("store '{0}' already exists")]
    StoreExists(String),
    #[error("store '{0}' does not exist")]
    StoreNotFound(String),
    /// Another `Store` (in this or another process) holds the store's lock.
    #[error("store '{0}' is in use by another process or handle")]
    InUse(String),
    /// The store was opened with `Store::open_read_only`; nothing can be written through it.
    #[error("store '{0}' is open read-only")]
    ReadOnly(String),
    #[error("invalid store name '{name}': {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The payload cannot fit in the ring even when it holds nothing else.
    #[error("object of {size} bytes is too large: this store holds at most {max} bytes per object")]
    TooLarge { size: u64, max: u64 },
    /// The payload does not match the store's data type.
    #[error("payload rejected by {data_type} store: {reason}")]
    InvalidData {
        data_type: &'static str,
        reason: String,
    },
    /// A read kept losing its blocks to the writer wrapping the ring; retry.
    #[error("the ring was overwritten faster than it could be read; retry the read")]
    ReadOverrun,
    /// The files on disk contradict the format; the message says where.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// A schema update or a record rejected by the store's schema.
    #[error("{0}")]
    Schema(#[from] crate::schema::SchemaError),
    #[error("JSON (de)serialization failed: {0}")]
    Json(#[from] serde_json::Error),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Short alias used across the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;
