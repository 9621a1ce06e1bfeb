//! `Store::truncate_after`: rewinds a store's head to a time, for a store
//! wedged by a far-future timestamp (every `put_now` stamps after it).
//! The ring work is `Ring::truncate` (raw stores, and each ring of a
//! compressed one, `compressed`); this module dispatches, reports,
//! signals readers, and finishes at open a truncate a crash interrupted.

use super::Store;
use crate::error::{Error, Result};
use crate::ring::TruncateReport;

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
    /// Rollup rows of windows no longer closed go too.
    pub fn truncate_after(&self, ts: i64) -> Result<TruncateReport> {
        self.core.main.check_writable()?;
        let report = match &self.core.compressed {
            Some(c) => c.truncate_after(&self.core.main, ts, false),
            None => self
                .core
                .main
                .truncate(ts, false, false)
                .map(|cut| match cut {
                    Some(cut) => TruncateReport::of_ring(cut),
                    None => TruncateReport::nothing(self.core.main.newest()),
                }),
        };
        self.rollups.raw_changed();
        let report = report?;
        if report.removed_any() {
            self.rollups.truncate(ts, report.newest_timestamp)?;
            self.notifier().truncated(report.newest_timestamp);
        }
        Ok(report)
    }

    /// Completes a truncate found under way at open (before the store is
    /// used). A read-only open cannot write, and refuses the store.
    pub(super) fn finish_truncate(&self) -> Result<()> {
        let Some(c) = &self.core.compressed else {
            return self.core.main.finish_truncate();
        };
        let Some(ts) = self.core.main.pending_truncate() else {
            return Ok(());
        };
        if self.core.main.is_read_only() {
            return Err(Error::TruncateIncomplete(ts.max(0)));
        }
        c.truncate_after(&self.core.main, ts, true).map(drop)
    }
}
