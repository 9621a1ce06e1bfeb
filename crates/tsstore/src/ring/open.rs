//! Opening a ring: recovery of what was written after its last
//! checkpoint, then (for a writable ring under `Interval`) its background
//! flusher. Files and locks are the caller's (`store::lifecycle`).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use super::Ring;
use crate::durability::{BackgroundFault, FlushTarget, Flusher, GroupCommit, SyncPolicy};
use crate::error::Result;
use crate::format::{Encoding, Meta};
use crate::io::StoreFile;
use crate::lock::mutex_lock;
use crate::notify::CommitNotifier;
use crate::ring::index::RingIndex;
use crate::ring::writer::{Ctx, Writer};

/// A ring's files: its meta header (`meta` is what it says), data and index.
pub(crate) struct RingFiles {
    pub meta: Arc<dyn StoreFile>,
    pub data: Arc<dyn StoreFile>,
    pub index: Arc<dyn StoreFile>,
}

impl Ring {
    /// Opens and recovers the ring in `files`, whose header says `meta`.
    /// A writable ring that recovered anything checkpoints it before it
    /// is used. The flusher is started by `start_flusher`, once the caller
    /// has finished what opening needs.
    pub(crate) fn open(
        name: &str,
        meta: Meta,
        files: RingFiles,
        sync: SyncPolicy,
        read_only: bool,
    ) -> Result<Ring> {
        let RingFiles {
            meta: meta_file,
            data,
            index,
        } = files;
        let mut loaded = crate::ring::recovery::load_state(&meta, data.as_ref(), index.as_ref())?;
        // Only a compressed store's main ring writes a block before the
        // one before it is durable.
        if meta.encoding == Encoding::Compressed && !read_only {
            let bs = meta.data_block_size as usize;
            crate::ring::recovery::wipe_orphans(data.as_ref(), &loaded.ring, bs)?;
        }
        // Before the recorded head is reused, a checkpoint must be durable
        // too, or a power cut could leave recovery nowhere to start.
        // A compressed store's frames hold records that were durable in
        // the staging ring before they were framed, whatever the policy.
        loaded.writer.set_durable_checkpoints(
            sync != SyncPolicy::Never || meta.encoding == Encoding::Compressed,
        );
        let ring = Ring {
            name: name.to_string(),
            meta,
            data,
            index,
            meta_file,
            ring: Arc::new(RwLock::new(loaded.ring)),
            writer: Arc::new(Mutex::new(loaded.writer)),
            corruption_skips: AtomicU64::new(0),
            sync,
            commit: GroupCommit::default(),
            flusher: None,
            flush_fault: Arc::new(BackgroundFault::new("sync")),
            commits: CommitNotifier::default(),
            closed: false,
            read_only,
        };
        if loaded.recovered && !read_only {
            // Make the recovered log the new checkpoint before accepting writes.
            ring.sync()?;
        }
        Ok(ring)
    }

    /// Starts the `Interval` policy's flusher (nothing for other policies
    /// or a read-only ring).
    pub(crate) fn start_flusher(&mut self) {
        if self.read_only {
            return;
        }
        if let SyncPolicy::Interval(every) = self.sync {
            self.flusher = Some(Flusher::start(
                every,
                Checkpointer {
                    writer: Arc::clone(&self.writer),
                    ring: Arc::clone(&self.ring),
                    data: Arc::clone(&self.data),
                    index: Arc::clone(&self.index),
                    meta: Arc::clone(&self.meta_file),
                },
                Arc::clone(&self.flush_fault),
            ));
        }
    }
}

/// The flusher's view of a ring: its writer and files, not the `Ring`
/// (which owns the flusher and must be able to stop it).
struct Checkpointer {
    writer: Arc<Mutex<Writer>>,
    ring: Arc<RwLock<RingIndex>>,
    data: Arc<dyn StoreFile>,
    index: Arc<dyn StoreFile>,
    meta: Arc<dyn StoreFile>,
}

impl FlushTarget for Checkpointer {
    fn write_back(&self) -> Result<()> {
        if mutex_lock(&self.writer).is_dirty() {
            self.data.sync_data()?;
        }
        Ok(())
    }

    fn checkpoint(&self) -> Result<()> {
        let mut w = mutex_lock(&self.writer);
        if !w.is_dirty() {
            return Ok(());
        }
        let ctx = Ctx {
            data: self.data.as_ref(),
            index: self.index.as_ref(),
            meta: self.meta.as_ref(),
            ring: &self.ring,
        };
        w.checkpoint(&ctx, true)
    }
}
