//! tsstore: an embedded time series store with a fixed disk footprint.
//!
//! A store is a ring of fixed-size blocks allocated in full at creation;
//! once it is full, the oldest blocks are overwritten. Every reading is kept
//! as inserted until then. Timestamps are nanoseconds since the Unix epoch
//! and strictly increase, which keeps the block index sorted: lookups are
//! O(log n) and range scans O(log n + k).
//!
//! ```
//! use tsstore::{Config, DataType, Store};
//!
//! # fn main() -> tsstore::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let config = Config { num_blocks: 64, data_type: DataType::Json, ..Config::default() };
//! let store = Store::create(dir.path(), "sensors", config)?;
//!
//! store.put(1_000, br#"{"temp":21.5}"#)?;
//! store.put(2_000, br#"{"temp":21.7}"#)?;
//! let handle = store.put_now(br#"{"temp":21.9}"#)?; // timestamp = max(now, newest + 1)
//!
//! assert_eq!(store.get_by_time(2_000)?.data, br#"{"temp":21.7}"#);
//! assert_eq!(store.newest(1)?[0].handle, handle);
//! let between: Vec<_> = store.range(1_000, 2_000, None)?;
//! assert_eq!(between.len(), 2);
//!
//! store.delete_by_time(1_000)?; // soft delete: only that object disappears
//! assert_eq!(store.oldest(10)?.len(), 2);
//! store.close()?;
//!
//! let store = Store::open(dir.path(), "sensors")?;
//! assert_eq!(store.iter().count(), 2);
//! # Ok(())
//! # }
//! ```

pub mod aggregate;
mod atomic_file;
mod block;
mod capacity;
mod config;
mod durability;
mod duration;
/// The compressed encoding's building blocks (columnar frame body, zstd
/// frame codec); public for benches and tools.
pub mod encoding;
mod error;
mod filter;
mod flat_json;
mod format;
mod index;
mod io;
mod json;
mod json_scan;
mod lock;
mod notify;
mod payload;
mod precision;
mod query;
mod record;
mod recovery;
pub mod rules;
mod schema;
pub mod sim;
mod store;
mod time;
mod writer;

pub use atomic_file::atomic_write;
pub use capacity::{Capacity, Footprint};
pub use config::{Config, MAX_NAME_LEN, validate_store_name};
pub use durability::SyncPolicy;
pub use duration::{DurationError, parse_duration, parse_duration_ns};
pub use encoding::Compression;
pub use error::{Error, Result};
pub use filter::Filter;
pub use format::{DataType, Encoding, MAX_BLOCK_SIZE};
pub use io::{RealFile, StoreFile};
pub use notify::{
    CommitEvent, CommitState, CommitSubscription, CommitWatch, MAX_COMMIT_CALLBACKS,
    TooManyCallbacks, Wake,
};
pub use payload::{check as check_payload, validate as validate_payload};
pub use precision::{ParsePrecisionError, Precision};
pub use query::READ_BATCH_BYTES;
pub use record::{ObjectHandle, Record};
pub use schema::{
    Field, FieldType, MAX_FIELD_NAME, MAX_FIELDS, Schema, SchemaDoc, SchemaError, SchemaFileError,
};
pub use store::{Records, SCHEMA_FILE, Stats, Store, StoreFiles, TruncateReport};
pub use time::{ParseTimeError, now_ns, parse_rfc3339, rfc3339};

/// Byte layout constants and codecs, public for tools and layout tests.
pub mod layout {
    pub use crate::format::*;
}

/// Compiles and runs the README's example as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExample;
