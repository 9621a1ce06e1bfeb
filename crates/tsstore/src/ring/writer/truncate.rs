//! `Writer::truncate_after`: drops every object newer than a timestamp
//! from the head end of the ring, in O(log n + blocks dropped).
//!
//! Crash safety rests on an intent in the meta header
//! (`Meta::truncate_pending`):
//! 1. a durable checkpoint of the state before, carrying the intent,
//!    comes before anything is changed; a crash before it lands leaves
//!    the state before;
//! 2. the cut is made in memory (readers re-plan), then on disk: the
//!    bytes after the new head's end and every dropped block are zeroed,
//!    so neither recovery's forward scan nor a later head walk can ever
//!    take a dropped object back (it would pass: its timestamp is newer
//!    than anything kept, and its checksum still verifies);
//! 3. a durable checkpoint of the state after clears the intent; its
//!    data sync puts the zeros on disk before its meta header.
//!
//! Between 1 and 3 open finds the intent and truncates again: the cut is
//! idempotent and reads only what the truncate never touches (the kept
//! objects, their index entries and the checkpoint's pointers), so the
//! state after is reached whatever part of step 2 reached the disk.

use super::{Ctx, Writer};
use crate::block::{ObjectWalk, block_end};
use crate::error::{Error, Result};
use crate::format::{BLOCK_HEADER_SIZE, OBJ_LAST_IN_BLOCK, OBJECT_HEADER_SIZE, ObjectHeader};
use crate::lock::{read_lock, write_lock};

/// Zeros written per `pwrite` when wiping dropped blocks.
const WIPE_CHUNK: usize = 64 * 1024;

/// What a truncate of one ring did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RingCut {
    /// Live (not deleted) objects dropped, when every dropped block's
    /// objects were counted (blocks found at open are not).
    pub objects: Option<u64>,
    /// Blocks dropped whole.
    pub blocks: u32,
    /// The newest timestamp kept (deleted objects count), 0 if none.
    pub newest: i64,
    /// The ring was emptied (everything was newer).
    pub emptied: bool,
}

/// Where the cut falls, as planned from the `RingIndex` and one block.
struct Plan {
    /// Live blocks kept, from the tail.
    keep: u32,
    /// The kept head's physical block.
    head_phys: u32,
    /// A packed head: its bytes, the end of its last kept object, that
    /// object's offset, and the live objects kept.
    packed: Option<(Vec<u8>, u32, u32, u32)>,
    newest: i64,
    /// Live objects dropped from the kept head block.
    dropped_in_head: Option<u32>,
}

impl Writer {
    /// The timestamp of a truncate that has not completed, if any.
    pub fn pending_truncate(&self) -> Option<i64> {
        (self.meta.truncate_pending != 0).then_some(self.meta.truncate_pending)
    }

    /// Refuses writes while a truncate has not completed: a crash would
    /// make open finish it, dropping them too.
    pub(super) fn check_no_pending_truncate(&self) -> Result<()> {
        match self.pending_truncate() {
            Some(ts) => Err(Error::TruncateIncomplete(ts.max(0))),
            None => Ok(()),
        }
    }

    /// Drops every object with a timestamp after `ts`; objects at or
    /// before it stay byte for byte (the last kept one's `next_offset`
    /// and last-in-block flag, outside its checksum, are set as the
    /// last object of a block has them). Nothing to drop: `None`, and
    /// nothing is written, unless `redo` (finishing a truncate found at
    /// open, or one that failed), which always goes through every step.
    /// With `hold`, the intent stays in the meta header afterwards: a
    /// compressed store clears it only once both rings are cut.
    pub fn truncate_after(
        &mut self,
        ctx: &Ctx,
        ts: i64,
        redo: bool,
        hold: bool,
    ) -> Result<Option<RingCut>> {
        if !redo {
            if let Some(pending) = self.pending_truncate() {
                self.truncate_after(ctx, pending, true, hold)?;
            }
            if self.newest <= ts {
                return Ok(None);
            }
        }
        self.set_truncate_intent(ctx, Some(ts))?;
        let (len, plan) = {
            let ring = read_lock(ctx.ring);
            (ring.len(), ring.block_for(ts))
        };
        let cut = match plan {
            _ if len == 0 => RingCut::default(),
            None => self.empty_by_truncate(ctx, len),
            Some(p) => self.cut(ctx, ts, p)?,
        };
        // The state after is wholly durable (zeros before pointers, as a
        // checkpoint orders them) before the intent goes.
        self.checkpoint(ctx, true)?;
        if !hold {
            self.set_truncate_intent(ctx, None)?;
        }
        Ok(Some(cut))
    }

    /// Records (`Some`) or clears the intent of a truncate after `ts` in
    /// a durable checkpoint. Timestamps are > 0, so any `ts` ≤ 0 (drop
    /// everything) is recorded as `i64::MIN`, which means the same.
    pub fn set_truncate_intent(&mut self, ctx: &Ctx, ts: Option<i64>) -> Result<()> {
        self.meta.truncate_pending = match ts {
            None => 0,
            Some(ts) if ts <= 0 => i64::MIN,
            Some(ts) => ts,
        };
        self.checkpoint(ctx, true)
    }

    /// Everything is newer than the cut: a reset (O(1); its new epoch
    /// keeps recovery from taking any dropped object back).
    fn empty_by_truncate(&mut self, ctx: &Ctx, len: u32) -> RingCut {
        let objects = {
            let ring = read_lock(ctx.ring);
            ring.object_count()
        };
        self.reset(ctx);
        RingCut {
            objects,
            blocks: len,
            newest: 0,
            emptied: true,
        }
    }

    /// Cuts after `ts`, whose primary block is at logical position `p`.
    fn cut(&mut self, ctx: &Ctx, ts: i64, p: u32) -> Result<RingCut> {
        let plan = self.plan(ctx, ts, p)?;
        let mut objects = plan.dropped_in_head.map(u64::from);
        let (first, dropped) = {
            let mut ring = write_lock(ctx.ring);
            for i in plan.keep..ring.len() {
                let count = ring.count_of(ring.phys(i));
                objects = objects.zip(count).map(|(a, b)| a + u64::from(b));
            }
            let (head_count, head_end) = match &plan.packed {
                Some((_, end, _, live)) => (Some(*live), *end),
                None => (None, 0),
            };
            ring.truncate(plan.keep, head_count, head_end, plan.newest)
        };
        self.dirty_index.mark_span(first, dropped, self.n);
        self.newest = plan.newest;
        self.unpublished_block = false;
        self.unpublished_objects = 0;
        let bs = self.bs as usize;
        match plan.packed {
            Some((block, end, last, _)) => {
                self.head.copy_from_slice(&block);
                let end = end as usize;
                let at = last as usize;
                let mut h = ObjectHeader::decode(&self.head[at..at + OBJECT_HEADER_SIZE]);
                h.flags |= OBJ_LAST_IN_BLOCK;
                h.next_offset = 0;
                h.encode_into(&mut self.head[at..at + OBJECT_HEADER_SIZE]);
                let data_len = (end - BLOCK_HEADER_SIZE) as u32;
                self.head[8..12].copy_from_slice(&data_len.to_le_bytes());
                self.head[end..].fill(0);
                self.head_phys = plan.head_phys;
                self.head_open = true;
                self.write_offset = end as u32;
                self.last_obj = last;
                // The next flush writes the block header and the last
                // header (its flags changed) from the head buffer.
                self.dirty_from = last;
                self.header_stale = true;
                self.dirty = true;
                if end < bs {
                    let at = plan.head_phys as u64 * bs as u64 + end as u64;
                    wipe(ctx, at, (bs - end) as u64)?;
                }
            }
            None => self.head_open = false,
        }
        // Ring order may wrap past the last block: wipe in two runs.
        let before_end = dropped.min(self.n - first);
        wipe(ctx, first as u64 * bs as u64, before_end as u64 * bs as u64)?;
        wipe(ctx, 0, (dropped - before_end) as u64 * bs as u64)?;
        Ok(RingCut {
            objects,
            blocks: dropped,
            newest: plan.newest,
            emptied: false,
        })
    }

    /// Finds the cut: a spanning object at `p` is kept whole; a packed
    /// block is read and walked to its first object after `ts` (or the
    /// end of what a walk accepts: a crash during an earlier attempt may
    /// have zeroed the rest).
    fn plan(&self, ctx: &Ctx, ts: i64, p: u32) -> Result<Plan> {
        let (phys, key, keep_span, head_end, count) = {
            let ring = read_lock(ctx.ring);
            let phys = ring.phys(p);
            let key = ring.key_of(phys);
            let mut span = 1;
            while p + span < ring.len() && ring.key_of(ring.phys(p + span)) == -key {
                span += 1;
            }
            let head_end = (p + 1 == ring.len()).then(|| ring.head_end());
            (phys, key, span, head_end, ring.count_of(phys))
        };
        let mut block = vec![0u8; self.bs as usize];
        ctx.data
            .read_exact_at(&mut block, phys as u64 * self.bs as u64)?;
        let end = block_end(
            &block,
            head_end.filter(|&e| e as usize >= BLOCK_HEADER_SIZE),
        );
        let (mut last, mut kept_end, mut live, mut newest) = (0u32, 0usize, 0u32, key);
        let mut spans = false;
        for found in ObjectWalk::new(&block, end, phys, key) {
            let Ok(found) = found else { break };
            let h = found.header;
            if h.timestamp > ts {
                break;
            }
            spans = h.spans();
            last = found.offset;
            kept_end = found.offset as usize + OBJECT_HEADER_SIZE + h.data_len as usize;
            live += u32::from(!h.is_deleted());
            newest = h.timestamp;
            if spans {
                break;
            }
        }
        let head_phys = {
            let ring = read_lock(ctx.ring);
            ring.phys(p + keep_span - 1)
        };
        if spans || keep_span > 1 || last == 0 || kept_end > block.len() {
            // A spanning object (or a block whose first object no walk
            // accepts) is kept whole and closes the head.
            return Ok(Plan {
                keep: p + keep_span,
                head_phys,
                packed: None,
                newest,
                dropped_in_head: Some(0),
            });
        }
        Ok(Plan {
            keep: p + 1,
            head_phys,
            dropped_in_head: count.map(|c| c.saturating_sub(live)),
            packed: Some((block, kept_end as u32, last, live)),
            newest,
        })
    }
}

/// Writes `len` zero bytes at `at` of the data file.
fn wipe(ctx: &Ctx, mut at: u64, mut len: u64) -> Result<()> {
    let zeros = vec![0u8; WIPE_CHUNK.min(len as usize)];
    while len > 0 {
        let n = len.min(zeros.len() as u64);
        ctx.data.write_all_at(&zeros[..n as usize], at)?;
        at += n;
        len -= n;
    }
    Ok(())
}
