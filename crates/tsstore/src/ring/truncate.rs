//! Rewinding a ring's head to a time (`Writer::truncate_after` under the
//! writer), and `TruncateReport`, what a store's truncate did (a
//! compressed store adds up its two rings'). `Store::truncate_after` runs
//! it, reports and signals readers.

use super::Ring;
use crate::error::{Error, Result};
use crate::lock::mutex_lock;
use crate::ring::writer::RingCut;

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

impl Ring {
    /// Truncates this ring (`Writer::truncate_after`); no signal.
    pub(crate) fn truncate(&self, ts: i64, redo: bool, hold: bool) -> Result<Option<RingCut>> {
        self.check_writable()?;
        self.with_writer(|w, ctx| w.truncate_after(ctx, ts, redo, hold))
    }

    /// The truncate this ring's meta header says is under way, if any.
    pub(crate) fn pending_truncate(&self) -> Option<i64> {
        mutex_lock(&self.writer).pending_truncate()
    }

    /// Completes a truncate this ring's header says is under way, as a
    /// raw ring on its own (a raw store's, a compressed store's staging
    /// ring). A read-only ring cannot write, and refuses.
    pub(crate) fn finish_truncate(&self) -> Result<()> {
        let Some(ts) = self.pending_truncate() else {
            return Ok(());
        };
        if self.read_only {
            return Err(Error::TruncateIncomplete(ts.max(0)));
        }
        self.truncate(ts, true, false).map(drop)
    }

    /// The newest timestamp written (deleted objects count).
    pub(crate) fn newest(&self) -> i64 {
        mutex_lock(&self.writer).newest()
    }
}
