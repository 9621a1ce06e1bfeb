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
//!
//! How it fits together, roughly from the bottom up (no file uses another
//! that uses it back: `scripts/check-cycles.py` checks the graph):
//!
//! * `error`, `time`, `duration`, `precision`: the error type (one variant
//!   per failure a caller acts on) and the units timestamps come in.
//! * `format`, `block`, `record`, `checksum`: the on-disk layout of
//!   docs/FORMAT.md (meta header, block and object headers, checksums;
//!   public as `layout`), walking the objects of a block, what a read
//!   returns, and CRC-32C fast on short objects.
//! * `io`, `read_map`, `lock`, `atomic_file`: positioned file I/O behind
//!   `StoreFile` (real files, and the simulated disk `sim` for crash tests),
//!   reads of data files out of a mapping, poison-free locks, whole-file
//!   replacement.
//! * `config`, `capacity`: a store's geometry and the checks before
//!   anything touches disk; what a geometry holds (`Capacity`, `Footprint`).
//! * `encoding`: the compressed encoding's pure codecs (record split,
//!   columnar body, zstd frame): bytes in, bytes out, no I/O.
//! * `durability`, `notify`: sync policies (group commit, the background
//!   flusher, background failures kept for the next write), commit signals.
//! * `ring`: one raw ring of blocks (`Ring`): its in-memory index
//!   (`ring::index`), its single writer and checkpoints (`ring::writer`),
//!   recovery at open (`ring::recovery`); open, insert, delete, reset, sync,
//!   truncate, and its reads (`RingRecords`).
//! * `compressed`: the compressed store: a staging ring, the frames' ring
//!   and the framer between them, and reads that merge the two.
//! * `schema`, `payload`, `json_scan`, `flat_json`: what a payload must be
//!   for a store's data type, and schema records' compact form.
//! * `store`: `Store`, the public front: creates and opens stores in a
//!   directory, checks payloads, and dispatches to its `Ring` or its
//!   compressed store; `stats` is what it reports, `json` its serde
//!   helpers. `store::rollup` keeps a store's rollup rings (one row per
//!   closed window, kept past the raw ring's wrap) and the job that
//!   writes them.
//! * `filter`, `aggregate`, `rules`: what callers apply to records read
//!   (substring filters, time windows, alert rules).
//!
//! Entry points: `Store` (`create`, `open`, `open_read_only`, `put`,
//! `put_many`, `get_by_time`, `range`, `iter_range`, `commits`, `stats`),
//! `Config`, `SyncPolicy`, `Error`.
//!
//! Invariants: timestamps strictly increase within a store; readers take a
//! ring's index lock only briefly, never across I/O, and never decode
//! bytes the writer may have reclaimed (they re-check and retry); an
//! acknowledged insert survives a process crash, and under
//! `SyncPolicy::Always` a power cut; a crash at any point leaves a store
//! that opens as it was before or after the interrupted operation.
//!
//! Public modules, and why: `aggregate`, `rules` (the server evaluates
//! windows and alert rules with them), `encoding` (benches and tools use
//! the codecs; the server sizes stores with `staging_blocks`), `layout`
//! (byte constants for tools and layout tests), and `sim` only with the
//! `sim` feature (this crate's crash tests turn it on). Everything else is
//! reached through the re-exports below.

pub mod aggregate;
mod atomic_file;
mod background;
mod block;
mod capacity;
mod checksum;
mod compressed;
mod config;
mod durability;
mod duration;
pub mod encoding;
mod error;
mod filter;
mod flat_json;
mod format;
mod io;
mod json;
mod json_scan;
pub mod line_protocol;
mod lock;
mod notify;
mod payload;
mod precision;
mod reach;
mod read_map;
mod record;
mod ring;
pub mod rules;
mod schema;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
mod stats;
mod store;
mod time;

pub use atomic_file::atomic_write;
pub use background::{
    DEFAULT_WORKERS as DEFAULT_BACKGROUND_WORKERS, MAX_WORKERS, background_threads,
    set_background_workers,
};
pub use capacity::{Capacity, Footprint};
pub use compressed::frame_cache::{
    DEFAULT_FRAME_CACHE_BYTES, frame_cache_bytes, set_frame_cache_bytes,
};
pub use config::{Config, MAX_NAME_LEN, validate_store_name};
pub use durability::SyncPolicy;
pub use duration::{DurationError, parse_duration, parse_duration_ns};
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
pub use reach::{EncodingReach, REACH_SAMPLE, Reach};
pub use read_map::{read_mapping, set_read_mapping};
pub use record::{ObjectHandle, Record, RecordRef};
pub use ring::{READ_BATCH_BYTES, TruncateReport};
pub use schema::{
    Field, FieldType, MAX_FIELD_NAME, MAX_FIELDS, Schema, SchemaDoc, SchemaError, SchemaFileError,
};
pub use stats::{Compression, Stats};
pub use store::rollup::{
    DEFAULT_ROLLUP_FUNCTIONS, Keep, MAX_ROLLUPS, MIN_ROLLUP_BLOCKS, ROLLUPS_DIR, Resolution,
    RollupConfig, RollupFiles, RollupInfo, RollupPlan, RollupRing, window_label,
};
pub use store::{Records, SCHEMA_FILE, Store, StoreFiles};
pub use time::{ParseTimeError, now_ns, parse_rfc3339, rfc3339};

/// Byte layout constants and codecs, public for tools and layout tests.
pub mod layout {
    pub use crate::format::*;
}

/// Compiles and runs the README's example as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExample;
