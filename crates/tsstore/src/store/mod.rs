//! `Store`: the public front of one named store. It owns the store's
//! main `Ring` and, for a compressed store, the `Compressed` part (its
//! staging ring and framer), and dispatches on which it has; it also
//! keeps what belongs to the store rather than a ring: its directory, its
//! schema, the future-timestamp guard. This module has the type, its
//! accessors, `stats` and the commit signals; `lifecycle` creates, opens,
//! closes and removes stores, `read` and `write` are the record API,
//! `schema` the schema store API, `truncate` rewinds.
//!
//! Lock order (compressed stores): the compressed store's writer, then
//! its framing, then a ring's writer, then its `RingIndex` (`ring`).

mod lifecycle;
mod read;
pub(crate) mod rollup;
mod rollups;
mod schema;
mod schema_file;
mod truncate;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use crate::compressed::Compressed;
use crate::config::Config;
use crate::durability::SyncPolicy;
use crate::error::Result;
use crate::io::StoreFile;
use crate::notify::{
    CommitEvent, CommitNotifier, CommitSubscription, CommitWatch, TooManyCallbacks,
};
use crate::ring::Ring;
use crate::stats::{Compression, Stats};
pub use read::Records;
use rollup::{RollupFiles, Rollups};
pub use schema_file::SCHEMA_FILE;
pub(crate) use schema_file::SchemaState;

/// The three files of a store, for `Store::create_on` / `Store::open_on`;
/// a compressed store also needs its staging ring's.
#[derive(Debug, Clone)]
pub struct StoreFiles {
    pub meta: Arc<dyn StoreFile>,
    pub data: Arc<dyn StoreFile>,
    pub index: Arc<dyn StoreFile>,
    pub staging: Option<Box<StoreFiles>>,
    /// Where its rollups go (`None`: the store cannot have any).
    pub rollups: Option<Arc<dyn RollupFiles>>,
}

/// A store's rings and schema: everything a read of its records takes.
/// The rollups' job, which reads on a background worker outside any
/// borrow of the store, holds a clone (three `Arc`s); `close` stops the
/// job before taking them back.
#[derive(Debug, Clone)]
pub(crate) struct Core {
    /// The staging ring and framer of a compressed store (`main` then
    /// holds frames). Dropped first: the framer writes into `main`.
    pub(crate) compressed: Option<Arc<Compressed>>,
    /// The raw ring of a raw store; a compressed store's frames.
    pub(crate) main: Arc<Ring>,
    /// The schema of a schema store (empty for other types).
    pub(crate) schema: Arc<SchemaState>,
}

impl Core {
    pub(crate) fn newest_timestamp(&self) -> Option<i64> {
        match &self.compressed {
            Some(c) => Some(c.newest()).filter(|&n| n > 0),
            None => self.main.newest_timestamp(),
        }
    }
}

/// An open store. `Send + Sync`: share it by reference or `Arc`; one
/// writer at a time, readers concurrently with it and each other.
#[derive(Debug)]
pub struct Store {
    name: String,
    path: PathBuf,
    /// The rings and the schema.
    core: Core,
    /// The store's rollup rings and the job that writes them.
    rollups: Rollups,
    /// `set_max_future_skew`, in nanoseconds; 0 = off.
    max_future_skew: AtomicI64,
}

impl Store {
    /// The store's sync policy.
    pub fn sync_policy(&self) -> SyncPolicy {
        self.core.main.sync_policy()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration the store was created with (a compressed
    /// store's `num_blocks` includes its staging ring's).
    pub fn config(&self) -> Config {
        let main = self.core.main.config();
        Config {
            num_blocks: main.num_blocks + self.staging_blocks(),
            ..main
        }
    }

    pub fn encoding(&self) -> crate::Encoding {
        self.core.main.encoding()
    }

    fn staging_blocks(&self) -> u32 {
        self.core
            .compressed
            .as_ref()
            .map_or(0, |c| c.shared.staging.config().num_blocks)
    }

    /// Waits until a compressed store's background framing is idle (at
    /// once for a raw store). The framer moves staged records into frames
    /// after the inserts that staged them returned, and in a full ring
    /// that drops the oldest frames: two reads with a round between them
    /// can start at different records, as two reads with an insert
    /// between them can in any ring. Tests and benches that compare two
    /// reads settle first.
    pub fn settle(&self) {
        if let Some(c) = &self.core.compressed {
            c.settle();
        }
    }

    /// What the frames of a compressed store measured so far keep.
    pub fn compression(&self) -> Option<Compression> {
        self.core
            .compressed
            .as_deref()
            .and_then(Compressed::compression)
    }

    /// Frames every record a compressed store has staged but not yet
    /// framed, on this thread (a last frame as full as they make it).
    /// Nothing to do for a raw store. Readers never need it; benches and
    /// tests use it to measure or compare a settled store.
    pub fn frame_staged(&self) -> Result<()> {
        match &self.core.compressed {
            Some(c) => c.frame_staged(),
            None => Ok(()),
        }
    }

    pub fn data_type(&self) -> crate::DataType {
        self.core.main.data_type()
    }

    /// Whether objects carry checksums (false for stores written by ts-store (Go)).
    pub fn has_checksums(&self) -> bool {
        self.core.main.has_checksums()
    }

    /// Largest payload one record can have in this store.
    pub fn max_object_size(&self) -> u64 {
        match &self.core.compressed {
            Some(c) => c.max_record(),
            None => self.core.main.max_object_size(),
        }
    }

    /// Whether the store was opened with `open_read_only`.
    pub fn is_read_only(&self) -> bool {
        self.core.main.is_read_only()
    }

    /// A handle to wait for commits on from any thread; see `CommitWatch`.
    ///
    /// A commit is signalled when `put`, `put_now` or `put_many` made
    /// records readable: once per call (a batch signals once), after the
    /// writer lock is released and before the call returns (under
    /// `SyncPolicy::Always`, before the fsync it waits for, since readers
    /// can already see the records). `reset` signals a reset. Deletes and
    /// syncs signal nothing: they make no new record readable.
    pub fn commits(&self) -> CommitWatch {
        self.notifier().watch()
    }

    /// The notifier that signals: a compressed store's inserts commit
    /// in its staging ring.
    fn notifier(&self) -> &CommitNotifier {
        match &self.core.compressed {
            Some(c) => &c.shared.staging.commits,
            None => &self.core.main.commits,
        }
    }

    /// Registers `callback` to run on every commit, reset and at close,
    /// until the returned guard is dropped. At most
    /// `MAX_COMMIT_CALLBACKS` (64) may be registered at once.
    ///
    /// The callback runs on the thread that inserted, after the writer
    /// lock and every notifier lock are released, before that insert
    /// returns: it may read the store or drop its own guard without
    /// deadlock, but it delays the insert, so it should only signal
    /// something (a tokio `Notify`, a channel send that does not block).
    /// It must not insert into the same store (that would signal again,
    /// recursively) and must not panic (the panic reaches the inserter,
    /// whose write has already succeeded). With `Closed` it runs from the
    /// store's drop; a callback holding an `Arc<Store>` would keep the store
    /// open for good, so hold a `Weak` if it needs one.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
    /// use tsstore::{CommitEvent, Config, Store};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::create(dir.path(), "s", Config::default())?;
    /// let commits = Arc::new(AtomicU64::new(0));
    /// let seen = Arc::clone(&commits);
    /// let guard = store.on_commit(Box::new(move |event| {
    ///     if let CommitEvent::NewRecords(_) = event {
    ///         seen.fetch_add(1, Ordering::Relaxed);
    ///     }
    /// }))?;
    /// store.put_many([(Some(1), b"{}"), (Some(2), b"{}")])?;
    /// assert_eq!(commits.load(Ordering::Relaxed), 1);
    /// drop(guard);
    /// store.put(3, b"{}")?;
    /// assert_eq!(commits.load(Ordering::Relaxed), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_commit(
        &self,
        callback: Box<dyn Fn(CommitEvent) + Send + Sync>,
    ) -> std::result::Result<CommitSubscription, TooManyCallbacks> {
        self.notifier().subscribe(callback)
    }

    /// The newest record's timestamp, as `stats` says it, without the
    /// rest of `stats` (for checks made on every write or scrape).
    pub fn newest_timestamp(&self) -> Option<i64> {
        self.core.newest_timestamp()
    }

    pub fn stats(&self) -> Stats {
        let mut stats = self.core.main.stats();
        if let Some(c) = &self.core.compressed {
            let staged = c.shared.staging.stats();
            let newest = c.newest();
            stats.num_blocks += staged.num_blocks;
            stats.staging_blocks = staged.num_blocks;
            stats.bytes_used += staged.bytes_used;
            stats.capacity_bytes += staged.capacity_bytes;
            stats.corruption_skips += staged.corruption_skips;
            stats.oldest_timestamp = stats.oldest_timestamp.or(staged.oldest_timestamp);
            stats.newest_timestamp = (newest > 0).then_some(newest);
            stats.oldest_time = stats.oldest_timestamp.map(crate::time::rfc3339);
            stats.newest_time = stats.newest_timestamp.map(crate::time::rfc3339);
            // Frames are counted, not records.
            stats.object_count = None;
            stats.compression = c.compression().map(|mut m| {
                let main_blocks = (stats.num_blocks - stats.staging_blocks) as f64;
                let footprint = crate::Footprint::of(&self.config())
                    .map_or(stats.capacity_bytes, |f| f.total_bytes);
                m.capacity_readings = (m.readings_per_block * main_blocks) as u64;
                m.readings_per_mib =
                    m.readings_per_block * main_blocks * (1 << 20) as f64 / footprint as f64;
                m
            });
        }
        stats
    }
}
