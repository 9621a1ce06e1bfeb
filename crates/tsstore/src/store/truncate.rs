//! `Store::truncate_after`: rewinds a store's head to a time, for a store
//! wedged by a far-future timestamp (every `put_now` stamps after it).
//! The ring work is `Writer::truncate_after` (raw stores, and each ring
//! of a compressed one, `encoding::compressed`); this module runs it
//! under the writer, reports, signals readers, and finishes at open a
//! truncate a crash interrupted.

use super::Store;
use crate::error::{Error, Result};
use crate::lock::mutex_lock;
use crate::writer::RingCut;

/// What `Store::truncate_after` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TruncateReport {
    /// Records removed (deleted ones not counted), when known cheaply: a
    /// raw store knows it unless some removed block was found on disk at
    /// open and not counted since; a compressed store knows it when only
    /// records not yet framed were removed.
    pub removed_records: Option<u64>,
    /// Blocks removed whole (both rings of a compressed store).
    pub removed_blocks: u32,
    /// The store's newest timestamp now (deleted records count, as for
    /// the order of inserts); `None` if the store is empty.
    pub newest_timestamp: Option<i64>,
}

impl TruncateReport {
    /// Nothing was newer than the cut.
    pub(crate) fn nothing(newest: i64) -> TruncateReport {
        TruncateReport {
            removed_records: Some(0),
            removed_blocks: 0,
            newest_timestamp: (newest > 0).then_some(newest),
        }
    }

    pub(crate) fn of_ring(cut: RingCut) -> TruncateReport {
        TruncateReport {
            removed_records: cut.objects,
            removed_blocks: cut.blocks,
            newest_timestamp: (cut.newest > 0).then_some(cut.newest),
        }
    }

    /// Whether records were removed (and readers are to be told).
    pub fn removed_any(&self) -> bool {
        self.removed_blocks > 0 || self.removed_records != Some(0)
    }
}

impl Store {
    /// Removes every record with a timestamp after `ts`; records at or
    /// before it stay byte for byte, and the newest of them becomes the
    /// store's newest, so inserts after it (and `put_now`, which stamps
    /// `max(now, newest + 1)`) work again. Nothing newer: a no-op.
    /// Costs O(log n + blocks removed): the removed blocks are zeroed.
    ///
    /// Crash-safe: after a power cut at any point, open gives the store
    /// as it was before or as it is after (open completes a truncate it
    /// finds under way; see docs/ARCHITECTURE.md). Readers running
    /// meanwhile never get bytes that are not a record; a read that
    /// overlaps the truncate may still return records it removes, as one
    /// overlapping a delete may. Watchers and callbacks get
    /// `CommitEvent::Truncated` / `Wake::Truncated`.
    ///
    /// Stores written by ts-store (Go), without checksums, are truncated
    /// the same way (their recovery never scans past the checkpoint, so
    /// the intent and the zeroing only keep them tidy for ts-store).
    pub fn truncate_after(&self, ts: i64) -> Result<TruncateReport> {
        self.check_writable()?;
        let report = match &self.compressed {
            Some(c) => c.truncate_after(self, ts, false)?,
            None => match self.truncate_ring(ts, false, false)? {
                Some(cut) => TruncateReport::of_ring(cut),
                None => TruncateReport::nothing(self.ring_newest()),
            },
        };
        if report.removed_any() {
            self.notifier().truncated(report.newest_timestamp);
        }
        Ok(report)
    }

    /// Truncates this ring (`Writer::truncate_after`); no signal.
    pub(crate) fn truncate_ring(&self, ts: i64, redo: bool, hold: bool) -> Result<Option<RingCut>> {
        self.check_writable()?;
        self.with_writer(|w, ctx| w.truncate_after(ctx, ts, redo, hold))
    }

    /// Runs `f` with this ring's writer (a compressed store's main ring,
    /// from `encoding::compressed`), rolled back on error.
    pub(crate) fn with_main_writer<T>(
        &self,
        f: impl FnOnce(&mut crate::writer::Writer, &crate::writer::Ctx) -> Result<T>,
    ) -> Result<T> {
        self.with_writer(f)
    }

    /// The truncate this ring's meta header says is under way, if any.
    pub(crate) fn pending_truncate(&self) -> Option<i64> {
        mutex_lock(&self.writer).pending_truncate()
    }

    /// Completes a truncate found under way at open (before the store is
    /// used). A read-only open cannot write, and refuses the store.
    pub(super) fn finish_truncate(&self) -> Result<()> {
        let Some(ts) = self.pending_truncate() else {
            return Ok(());
        };
        if self.read_only {
            return Err(Error::TruncateIncomplete(ts.max(0)));
        }
        match &self.compressed {
            Some(c) => c.truncate_after(self, ts, true).map(drop),
            None => self.truncate_ring(ts, true, false).map(drop),
        }
    }

    fn ring_newest(&self) -> i64 {
        mutex_lock(&self.writer).newest()
    }
}
