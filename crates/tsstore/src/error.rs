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
    /// The timestamp is further ahead of the wall clock than the store's
    /// `max_future_skew` allows (`Store::set_max_future_skew`); nothing
    /// was written. Usually a client's clock, or a timestamp sent in the
    /// wrong unit.
    #[error(
        "timestamp {timestamp} ({}) is more than {} ahead of the server clock ({}, {now}); \
         check the client's clock and its timestamp precision",
        crate::time::rfc3339_short(*.timestamp),
        crate::time::format_duration_ns(*.max_skew_ns),
        crate::time::rfc3339_short(*.now)
    )]
    TimestampInFuture {
        timestamp: i64,
        now: i64,
        max_skew_ns: i64,
    },
    /// A timestamp in `precision` units whose nanoseconds do not fit in
    /// an `i64` (`Precision::to_ns`).
    #[error(
        "timestamp {value} {precision} is out of range: as nanoseconds since the Unix epoch \
         it does not fit in 64 bits (which end at {}); check its precision",
        crate::time::rfc3339_short(i64::MAX)
    )]
    TimestampOverflow { value: i64, precision: &'static str },
    /// A `truncate_after` was interrupted (a crash, or an I/O error);
    /// until it completes, nothing is written and a read-only open is
    /// refused. Opening the store for writing, or calling
    /// `truncate_after` again, completes it.
    #[error(
        "a truncate of the records after timestamp {0} has not completed: call truncate_after \
         again, or open the store for writing, which completes it"
    )]
    TruncateIncomplete(i64),
    /// No live object has this timestamp (or the handle no longer points at one).
    #[error("no object with timestamp {0}")]
    NotFound(i64),
    #[error("store '{0}' already exists")]
    StoreExists(String),
    #[error("store '{0}' does not exist")]
    StoreNotFound(String),
    /// Another `Store` (in this or another process) holds the store's lock.
    /// `add_rollup` for a window the store already rolls up.
    #[error("the store already has a rollup of {0} windows")]
    RollupExists(String),
    /// No rollup of that window.
    #[error("the store has no rollup of {0} windows")]
    RollupNotFound(String),
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
