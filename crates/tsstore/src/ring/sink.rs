//! `FrameSink`: the framer job's way into a compressed store's main
//! ring. The framer cannot hold the `Ring` (the store owns and joins the
//! framer), so it gets the writer and files, as the flusher's
//! `Checkpointer` does, and appends frame objects through the same
//! `Writer` the store uses.

use std::sync::{Arc, Mutex, RwLock};

use super::Ring;
use crate::error::Result;
use crate::io::StoreFile;
use crate::lock::mutex_lock;
use crate::record::ObjectHandle;
use crate::ring::index::RingIndex;
use crate::ring::writer::{Ctx, Writer};

#[derive(Debug)]
pub(crate) struct FrameSink {
    writer: Arc<Mutex<Writer>>,
    ring: Arc<RwLock<RingIndex>>,
    data: Arc<dyn StoreFile>,
    index: Arc<dyn StoreFile>,
    meta: Arc<dyn StoreFile>,
}

impl FrameSink {
    /// Appends one frame object and publishes it; on failure, rolls back
    /// what it did not publish.
    pub(crate) fn put(&self, timestamp: i64, payload: &[u8]) -> Result<ObjectHandle> {
        let mut w = mutex_lock(&self.writer);
        let ctx = Ctx {
            data: self.data.as_ref(),
            index: self.index.as_ref(),
            meta: self.meta.as_ref(),
            ring: &self.ring,
        };
        let out = w
            .append(&ctx, timestamp, payload)
            .and_then(|h| w.flush(&ctx, false).map(|()| h));
        if out.is_err() {
            w.rollback(&ctx);
        }
        out
    }

    /// Bytes the next frame may take and still share the head block with
    /// the frames before it (`Writer::head_room`).
    pub(crate) fn head_room(&self) -> usize {
        mutex_lock(&self.writer).head_room()
    }

    /// Starts writing back the frames put so far, so that the next
    /// `make_durable` waits less (the framer packs meanwhile).
    pub(crate) fn start_durable(&self) {
        self.data.start_sync();
    }

    /// Makes every frame put so far durable. Whatever the sync policy:
    /// once framed, a record's staged copy may be overwritten, and a
    /// record made durable (by `Always` or by a `sync`) must stay so.
    pub(crate) fn make_durable(&self) -> Result<()> {
        self.data.sync_data()?;
        Ok(())
    }
}

impl Ring {
    /// Starts writing back what was written to the data file, without
    /// waiting (`StoreFile::start_sync`).
    pub(crate) fn start_write_back(&self) {
        self.data.start_sync();
    }

    pub(crate) fn frame_sink(&self) -> FrameSink {
        FrameSink {
            writer: Arc::clone(&self.writer),
            ring: Arc::clone(&self.ring),
            data: Arc::clone(&self.data),
            index: Arc::clone(&self.index),
            meta: Arc::clone(&self.meta_file),
        }
    }
}
