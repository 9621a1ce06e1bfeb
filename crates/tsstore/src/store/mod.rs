//! `Store`: one named ring on disk. This module has the type, its
//! accessors, `stats`, the commit signals and the two helpers every
//! modification goes through; `lifecycle` creates, opens, closes and
//! removes stores, `write` inserts, deletes, resets and syncs, `schema` is
//! the schema store API.
//!
//! Lock order: the writer mutex, then the `RingIndex` lock. Readers
//! (see `query`) take only the `RingIndex` read lock, briefly, never across
//! I/O.

mod lifecycle;
mod read;
mod schema;
mod schema_file;
mod sink;
mod truncate;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::config::Config;
use crate::durability::{FlushFault, Flusher, GroupCommit, SyncPolicy};
use crate::encoding::compressed::{Compressed, Compression};
use crate::error::Result;
use crate::format::Meta;
use crate::index::RingIndex;
use crate::io::StoreFile;
use crate::lock::{mutex_lock, read_lock};
use crate::notify::{
    CommitEvent, CommitNotifier, CommitSubscription, CommitWatch, TooManyCallbacks,
};
use crate::writer::{Ctx, Writer};
pub use read::Records;
pub use schema_file::SCHEMA_FILE;
pub(crate) use schema_file::SchemaState;
pub(crate) use sink::FrameSink;
pub use truncate::TruncateReport;
pub(crate) use write::{check_timestamp, next_timestamp};

pub(crate) const META_FILE: &str = "meta.tsdb";
pub(crate) const DATA_FILE: &str = "data.tsdb";
pub(crate) const INDEX_FILE: &str = "index.tsdb";

/// A point-in-time view of a store's geometry and fill.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Stats {
    pub num_blocks: u32,
    pub data_block_size: u32,
    pub index_block_size: u32,
    pub data_type: crate::DataType,
    pub encoding: crate::Encoding,
    /// Ring pointers and blocks in use (a compressed store: its main
    /// ring's, so `active_blocks == num_blocks - staging_blocks` once it
    /// has wrapped).
    pub head_block: u32,
    pub tail_block: u32,
    pub write_offset: u32,
    pub active_blocks: u32,
    /// Timestamp of the oldest stored object (deleted ones included).
    pub oldest_timestamp: Option<i64>,
    pub newest_timestamp: Option<i64>,
    pub oldest_time: Option<String>,
    pub newest_time: Option<String>,
    /// Live objects, when known: blocks found on disk at open are not
    /// counted until the ring has moved past them.
    pub object_count: Option<u64>,
    /// Bytes of the ring in use (full blocks plus the head's used part).
    pub bytes_used: u64,
    pub capacity_bytes: u64,
    /// Times reads since open skipped damaged data (an object failing its
    /// checksum, or the rest of a block whose structure is broken).
    pub corruption_skips: u64,
    /// Compressed stores: what the frames measured so far keep (`None`
    /// until a frame exists).
    pub compression: Option<Compression>,
    /// Compressed stores: blocks of the footprint taken by the staging
    /// ring (counted in `num_blocks` and `capacity_bytes`).
    pub staging_blocks: u32,
}

/// The three files of a store, for `Store::create_on` / `Store::open_on`;
/// a compressed store also needs its staging ring's.
#[derive(Debug, Clone)]
pub struct StoreFiles {
    pub meta: Arc<dyn StoreFile>,
    pub data: Arc<dyn StoreFile>,
    pub index: Arc<dyn StoreFile>,
    pub staging: Option<Box<StoreFiles>>,
}

/// An open store. `Send + Sync`: share it by reference or `Arc`; one
/// writer at a time, readers concurrently with it and each other.
#[derive(Debug)]
pub struct Store {
    name: String,
    path: PathBuf,
    meta: Meta,
    pub(crate) data: Arc<dyn StoreFile>,
    index: Arc<dyn StoreFile>,
    /// Holds the advisory lock for as long as the store is open.
    meta_file: Arc<dyn StoreFile>,
    pub(crate) ring: Arc<RwLock<RingIndex>>,
    writer: Arc<Mutex<Writer>>,
    /// Times a read skipped damaged data: an object whose checksum did not
    /// verify, or the rest of a block whose structure is broken.
    pub(crate) corruption_skips: AtomicU64,
    sync: SyncPolicy,
    commit: GroupCommit,
    flusher: Option<Flusher>,
    /// A failure of the background flusher, reported by the next write
    /// or `sync`.
    flush_fault: Arc<FlushFault>,
    /// The schema of a schema store (empty for other types).
    pub(crate) schema: SchemaState,
    /// Signals commits and resets to watchers and callbacks (in a
    /// compressed store, the staging ring's is the one that signals).
    pub(crate) commits: CommitNotifier,
    /// The staging ring and framer of a compressed store (this store's
    /// ring then holds frames).
    pub(crate) compressed: Option<Compressed>,
    /// `set_max_future_skew`, in nanoseconds; 0 = off.
    max_future_skew: AtomicI64,
    closed: bool,
    /// Opened by `open_read_only`: no lock, no writes, a fixed snapshot.
    read_only: bool,
}

impl Store {
    /// The store's sync policy.
    pub fn sync_policy(&self) -> SyncPolicy {
        self.sync
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
        Config {
            num_blocks: self.meta.num_blocks + self.staging_blocks(),
            data_block_size: self.meta.data_block_size,
            index_block_size: self.meta.index_block_size,
            data_type: self.meta.data_type,
            encoding: self.meta.encoding,
        }
    }

    pub fn encoding(&self) -> crate::Encoding {
        self.meta.encoding
    }

    fn staging_blocks(&self) -> u32 {
        self.compressed
            .as_ref()
            .map_or(0, |c| c.shared.staging.meta.num_blocks)
    }

    /// Waits until a compressed store's background framing is idle (at
    /// once for a raw store). The framer moves staged records into frames
    /// after the inserts that staged them returned, and in a full ring
    /// that drops the oldest frames: two reads with a round between them
    /// can start at different records, as two reads with an insert
    /// between them can in any ring. Tests and benches that compare two
    /// reads settle first.
    pub fn settle(&self) {
        if let Some(c) = &self.compressed {
            c.settle();
        }
    }

    /// What the frames of a compressed store measured so far keep.
    pub fn compression(&self) -> Option<Compression> {
        self.compressed.as_ref().and_then(Compressed::compression)
    }

    /// Frames every record a compressed store has staged but not yet
    /// framed, on this thread (a last frame as full as they make it).
    /// Nothing to do for a raw store. Readers never need it; benches and
    /// tests use it to measure or compare a settled store.
    pub fn frame_staged(&self) -> Result<()> {
        match &self.compressed {
            Some(c) => c.frame_staged(),
            None => Ok(()),
        }
    }

    pub fn data_type(&self) -> crate::DataType {
        self.meta.data_type
    }

    /// Whether objects carry checksums (false for stores written by ts-store (Go)).
    pub fn has_checksums(&self) -> bool {
        self.meta.has_checksums()
    }

    /// Largest payload one record can have in this store.
    pub fn max_object_size(&self) -> u64 {
        match &self.compressed {
            Some(c) => c.max_record(),
            None => self.ring_max_object_size(),
        }
    }

    /// Largest payload one object of the ring can have.
    pub(crate) fn ring_max_object_size(&self) -> u64 {
        crate::format::max_object_len(self.meta.num_blocks, self.meta.data_block_size)
    }

    pub(crate) fn block_size(&self) -> u32 {
        self.meta.data_block_size
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            data: self.data.as_ref(),
            index: self.index.as_ref(),
            meta: self.meta_file.as_ref(),
            ring: &self.ring,
        }
    }

    /// Whether the store was opened with `open_read_only`.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(crate::error::Error::ReadOnly(self.name.clone()));
        }
        Ok(())
    }

    /// Runs `f` with the writer; on failure, unpublished work is rolled back.
    /// If `f` made records readable (even when it then failed: a batch may
    /// publish its first blocks before an error), a commit is signalled
    /// once the writer lock is released.
    fn with_writer<T>(&self, f: impl FnOnce(&mut Writer, &Ctx) -> Result<T>) -> Result<T> {
        self.check_writable()?;
        let mut w = mutex_lock(&self.writer);
        let before = w.publishes();
        let ctx = self.ctx();
        let out = f(&mut w, &ctx);
        if out.is_err() {
            w.rollback(&ctx);
        }
        let published = w.publishes() != before;
        drop(w);
        if published {
            self.commits.committed();
        }
        out
    }

    /// Runs a modification under the writer and, under `Always`, returns
    /// only once it is durable (sharing the fsync with concurrent writers).
    fn write<T>(&self, f: impl FnOnce(&mut Writer, &Ctx) -> Result<T>) -> Result<T> {
        self.flush_fault.take()?;
        let entered = (self.sync == SyncPolicy::Always).then(|| self.commit.enter());
        let (out, ticket) = self.with_writer(|w, ctx| {
            let out = f(w, ctx)?;
            Ok((out, entered.as_ref().map(|e| self.commit.ticket(e))))
        })?;
        if let Some(ticket) = ticket {
            self.commit.wait(ticket, self.data.as_ref())?;
        }
        Ok(out)
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

    fn notifier(&self) -> &CommitNotifier {
        match &self.compressed {
            Some(c) => &c.shared.staging.commits,
            None => &self.commits,
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

    pub fn stats(&self) -> Stats {
        let mut stats = self.ring_stats();
        if let Some(c) = &self.compressed {
            let staged = c.shared.staging.ring_stats();
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

    pub(crate) fn ring_stats(&self) -> Stats {
        let ring = read_lock(&self.ring);
        let bs = self.meta.data_block_size as u64;
        let oldest = ring.oldest();
        let newest = (ring.len() > 0).then(|| ring.newest());
        let head_end = ring.head_end();
        let bytes_used = match ring.len() {
            0 => 0,
            len => (len as u64 - 1) * bs + if head_end > 0 { head_end as u64 } else { bs },
        };
        Stats {
            num_blocks: self.meta.num_blocks,
            data_block_size: self.meta.data_block_size,
            index_block_size: self.meta.index_block_size,
            data_type: self.meta.data_type,
            encoding: self.meta.encoding,
            head_block: ring.head_phys().unwrap_or(ring.tail()),
            tail_block: ring.tail(),
            write_offset: head_end,
            active_blocks: ring.len(),
            oldest_timestamp: oldest,
            newest_timestamp: newest,
            oldest_time: oldest.map(crate::time::rfc3339),
            newest_time: newest.map(crate::time::rfc3339),
            object_count: ring.object_count(),
            bytes_used,
            capacity_bytes: self.meta.num_blocks as u64 * bs,
            corruption_skips: self.corruption_skips.load(Ordering::Relaxed),
            compression: None,
            staging_blocks: 0,
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Best effort: an explicit close() reports errors, a drop cannot.
        // The framer goes first: it writes into this ring.
        drop(self.compressed.take());
        self.stop_flusher();
        if !self.closed && !self.read_only {
            let mut w = mutex_lock(&self.writer);
            let _ = w.checkpoint(&self.ctx(), true);
        }
        self.commits.close();
    }
}
