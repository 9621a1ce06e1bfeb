//! `Ring`: one raw ring of blocks on disk, the layout of docs/FORMAT.md.
//! A raw store is one ring; a compressed store is two (`compressed`): its
//! frames' and its staging ring. This module has the type, its accessors,
//! `stats` and the two helpers every modification goes through; `index`
//! is the in-memory copy of the index file, `writer` the single writer and
//! its checkpoints, `recovery` what open finds after the last checkpoint;
//! `open` opens a ring and runs its flusher, `write` inserts, deletes,
//! resets and syncs, `query` looks up by time, `records` streams in order,
//! `truncate` rewinds, and `sink` is the compressed framer's way in.
//!
//! Lock order: the writer mutex, then the `RingIndex` lock. Readers
//! (see `query`) take only the `RingIndex` read lock, briefly, never across
//! I/O.

pub(crate) mod index;
mod open;
mod query;
mod records;
mod recovery;
mod sink;
mod truncate;
mod write;
pub(crate) mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::config::Config;
use crate::durability::{BackgroundFault, Flusher, GroupCommit, SyncPolicy};
use crate::error::{Error, Result};
use crate::format::Meta;
use crate::io::StoreFile;
use crate::lock::{mutex_lock, read_lock};
use crate::notify::CommitNotifier;
use crate::ring::index::RingIndex;
use crate::ring::writer::{Ctx, Writer};
use crate::stats::Stats;
pub(crate) use open::RingFiles;
pub use records::READ_BATCH_BYTES;
pub(crate) use records::{PREALLOC_RECORDS, RingRecords};
pub(crate) use sink::FrameSink;
pub use truncate::TruncateReport;
pub(crate) use write::{check_timestamp, next_timestamp};

/// A ring's three files, by name, in its directory.
pub(crate) const META_FILE: &str = "meta.tsdb";
pub(crate) const DATA_FILE: &str = "data.tsdb";
pub(crate) const INDEX_FILE: &str = "index.tsdb";

/// An open ring. `Send + Sync`: one writer at a time, readers
/// concurrently with it and each other.
#[derive(Debug)]
pub(crate) struct Ring {
    /// For messages (`ReadOnly`): the store's name, or `STAGING`.
    name: String,
    meta: Meta,
    data: Arc<dyn StoreFile>,
    index: Arc<dyn StoreFile>,
    /// Holds the advisory lock for as long as the ring is open.
    meta_file: Arc<dyn StoreFile>,
    pub(crate) ring: Arc<RwLock<RingIndex>>,
    writer: Arc<Mutex<Writer>>,
    /// Times a read skipped damaged data: an object whose checksum did not
    /// verify, or the rest of a block whose structure is broken.
    corruption_skips: AtomicU64,
    sync: SyncPolicy,
    commit: GroupCommit,
    flusher: Option<Flusher>,
    /// A failure of the background flusher, reported by the next write
    /// or `sync`.
    flush_fault: Arc<BackgroundFault>,
    /// Signals commits and resets to watchers and callbacks (in a
    /// compressed store, the staging ring's is the one that signals).
    pub(crate) commits: CommitNotifier,
    closed: bool,
    /// Opened read-only: no lock, no writes, a fixed snapshot.
    read_only: bool,
}

impl Ring {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn sync_policy(&self) -> SyncPolicy {
        self.sync
    }

    /// This ring's geometry and type (a compressed store's main ring
    /// says `Compressed`; its records' type is the store's).
    pub(crate) fn config(&self) -> Config {
        Config {
            num_blocks: self.meta.num_blocks,
            data_block_size: self.meta.data_block_size,
            index_block_size: self.meta.index_block_size,
            data_type: self.meta.data_type,
            encoding: self.meta.encoding,
        }
    }

    pub(crate) fn encoding(&self) -> crate::Encoding {
        self.meta.encoding
    }

    pub(crate) fn data_type(&self) -> crate::DataType {
        self.meta.data_type
    }

    /// Whether objects carry checksums (false for rings written by ts-store (Go)).
    pub(crate) fn has_checksums(&self) -> bool {
        self.meta.has_checksums()
    }

    /// Largest payload one object of the ring can have.
    pub(crate) fn max_object_size(&self) -> u64 {
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

    pub(crate) fn is_read_only(&self) -> bool {
        self.read_only
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly(self.name.clone()));
        }
        Ok(())
    }

    /// The background flusher's failure not reported yet, as an `Err`
    /// (`BackgroundFault`): for a write that does not go through `write`.
    pub(crate) fn report_flush_fault(&self) -> Result<()> {
        self.flush_fault.take()
    }

    /// Runs `f` with the writer; on failure, unpublished work is rolled back.
    /// If `f` made records readable (even when it then failed: a batch may
    /// publish its first blocks before an error), a commit is signalled
    /// once the writer lock is released.
    pub(crate) fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut Writer, &Ctx) -> Result<T>,
    ) -> Result<T> {
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

    /// The newest record's timestamp (`None`: empty), as `stats` says it.
    pub(crate) fn newest_timestamp(&self) -> Option<i64> {
        let ring = read_lock(&self.ring);
        (ring.len() > 0).then(|| ring.newest())
    }

    /// The ring's geometry and fill (a compressed store adds its parts).
    pub(crate) fn stats(&self) -> Stats {
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

    fn stop_flusher(&mut self) {
        if let Some(mut f) = self.flusher.take() {
            f.stop();
        }
    }

    /// Stops the flusher and checkpoints with fsync; the drop that
    /// follows does nothing more.
    pub(crate) fn close(&mut self) -> Result<()> {
        if self.read_only {
            self.closed = true;
            return Ok(());
        }
        self.stop_flusher();
        let out = self.sync();
        self.closed = true;
        out
    }

    /// Releases the ring *without* a checkpoint, leaving the files as a
    /// killed process would (or as a store about to be removed needs).
    pub(crate) fn abandon(&mut self) {
        self.stop_flusher();
        self.closed = true;
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // Best effort: an explicit close() reports errors, a drop cannot.
        self.stop_flusher();
        if !self.closed && !self.read_only {
            let mut w = mutex_lock(&self.writer);
            let _ = w.checkpoint(&self.ctx(), true);
        }
        self.commits.close();
    }
}
