//! Truncating a compressed store: both rings are cut after the time, and
//! the records after it inside the newest frame kept (a frame cannot be
//! cut: its body is one zstd frame) get their tombstone bits, as a delete
//! sets them.
//!
//! Two rings have two meta headers, so the main ring's carries the intent
//! for the whole (`Meta::truncate_pending`, set durably first, cleared
//! last): open, finding it, truncates again, and each step is idempotent
//! (the staging ring's own truncate has its own intent in its header).
//! Until it is cleared, a reopened store's `last_framed` comes from the
//! newest frame's last record without a tombstone, so a frame whose
//! newest records were cut never claims them.

use std::sync::atomic::Ordering;

use super::{COUNT_SIZE, Compressed, FrameObject, Unframed};
use crate::error::{Error, Result};
use crate::format::OBJECT_HEADER_SIZE;
use crate::lock::{mutex_lock, read_lock};
use crate::ring::{Ring, TruncateReport};

impl Compressed {
    /// `Store::truncate_after` for a compressed store (`main` is its
    /// main ring). With `redo`, every step runs even if nothing seems
    /// newer (finishing an interrupted truncate).
    pub(crate) fn truncate_after(
        &self,
        main: &Ring,
        ts: i64,
        redo: bool,
    ) -> Result<TruncateReport> {
        let shared = &self.shared;
        let _writer = mutex_lock(&shared.writer);
        // Held throughout: the framer writes no frame meanwhile.
        let mut codec = mutex_lock(&shared.framing);
        if !redo {
            if let Some(pending) = main.pending_truncate() {
                self.cut(main, &mut codec, pending)?;
            }
            let newest = shared.newest.load(Ordering::Relaxed);
            if newest <= ts {
                return Ok(TruncateReport::nothing(newest));
            }
        }
        self.cut(main, &mut codec, ts)
    }

    fn cut(
        &self,
        main: &Ring,
        codec: &mut crate::encoding::FrameCodec,
        ts: i64,
    ) -> Result<TruncateReport> {
        let shared = &self.shared;
        main.with_writer(|w, ctx| w.set_truncate_intent(ctx, Some(ts)))?;
        let framed_before = shared.last_framed.load(Ordering::Acquire);
        // Readers started from now on take no framed record after `ts`.
        shared.last_framed.fetch_min(ts.max(0), Ordering::AcqRel);
        let staged = shared.staging.truncate(ts, false, false)?;
        mutex_lock(&shared.state).truncate_after(ts);
        let frames = main.truncate(ts, true, true)?;
        let (tombstoned, framed_newest) = self.tombstone_after(main, codec, ts)?;
        let staged_newest = read_lock(&shared.staging.ring).newest();
        let newest = staged_newest.max(framed_newest);
        shared.newest.store(newest, Ordering::Relaxed);
        // The tombstones reach the disk in this checkpoint's data sync,
        // before the header that no longer holds the intent.
        main.with_writer(|w, ctx| w.set_truncate_intent(ctx, None))?;
        let frame_blocks = frames.map_or(0, |c| c.blocks);
        let staged_blocks = staged.map_or(0, |c| c.blocks);
        // Staged copies of framed records are not records of their own:
        // the count is known only when no framed record went.
        let removed_records = if ts >= framed_before && frame_blocks == 0 && tombstoned == 0 {
            staged.map_or(Some(0), |c| c.objects)
        } else {
            None
        };
        Ok(TruncateReport {
            removed_records,
            removed_blocks: frame_blocks + staged_blocks,
            newest_timestamp: (newest > 0).then_some(newest),
        })
    }

    /// Sets the tombstone bits of the records after `ts` in the newest
    /// frame (one byte written per tombstone byte that changes, as a
    /// delete writes it). Returns how many bits were set and the newest
    /// record of that frame at or before `ts` (0: no frame).
    fn tombstone_after(
        &self,
        main: &Ring,
        codec: &mut crate::encoding::FrameCodec,
        ts: i64,
    ) -> Result<(u32, i64)> {
        let Some(frame) = main.range(i64::MIN, i64::MAX, true).limit(1).next() else {
            return Ok((0, 0));
        };
        let frame = frame?;
        let object = FrameObject::parse(&frame.data)?;
        let timestamps = object.inflate(codec)?.timestamps().to_vec();
        let newest = timestamps
            .iter()
            .copied()
            .filter(|&t| t <= ts)
            .max()
            .unwrap_or(0);
        let base = frame.handle.offset as usize + OBJECT_HEADER_SIZE + COUNT_SIZE;
        let mut writes: Vec<(usize, u8, u8)> = Vec::new();
        let mut set = 0;
        for (i, &t) in timestamps.iter().enumerate() {
            if t <= ts || object.deleted(i) {
                continue;
            }
            let at = base + i / 8;
            if at >= main.block_size() as usize {
                return Err(Error::Corrupt(format!(
                    "the tombstones of the frame at {} are not in its first block",
                    frame.timestamp()
                )));
            }
            match writes.last_mut() {
                Some((last, _, bits)) if *last == at => *bits |= 1 << (i % 8),
                _ => writes.push((at, object.tombstones[i / 8], 1 << (i % 8))),
            }
            set += 1;
        }
        if !writes.is_empty() {
            main.with_writer(|w, ctx| {
                for &(at, current, bits) in &writes {
                    w.set_bits(ctx, frame.handle.block_num, at, current, bits)?;
                }
                Ok(())
            })?;
        }
        Ok((set, newest))
    }
}

impl Unframed {
    /// Drops the queued records after `ts` (they were truncated).
    pub(super) fn truncate_after(&mut self, ts: i64) {
        loop {
            let from = if self.batches.len() == 1 {
                self.front_done
            } else {
                0
            };
            let Some(back) = self.batches.back_mut() else {
                break;
            };
            let keep = from + back.records[from..].partition_point(|r| r.timestamp <= ts);
            if keep == back.records.len() {
                break;
            }
            let dropped: u64 = back.records[keep..].iter().map(|r| r.raw_size()).sum();
            self.bytes = self.bytes.saturating_sub(dropped);
            if keep == from {
                self.batches.pop_back();
                if self.batches.is_empty() {
                    self.front_done = 0;
                }
                continue;
            }
            std::sync::Arc::make_mut(back).records.truncate(keep);
            break;
        }
        if self.batches.is_empty() {
            self.bytes = 0;
        }
    }
}
