//! The framer: packs the staged records queued in `Unframed` into frames
//! in the main ring, and makes them durable (`settle_written`), several
//! to one `fdatasync`. Its rounds run on the engine's background workers
//! (`framer_round`); an insert frames here too, when the staging ring is
//! about to wrap over a record not yet framed or for a record too large
//! to stage.

use std::sync::atomic::Ordering;

use super::{COUNT_SIZE, Shared, cost, frame_error};
use crate::encoding::FrameCodec;
use crate::encoding::frame::raw_size;
use crate::encoding::split::Record;
use crate::error::{Error, Result};
use crate::format::first_block_capacity;
use crate::lock::mutex_lock;
use crate::record::ObjectHandle;
use crate::ring::FrameSink;

/// Most frames written and not yet durable: frames that each start a
/// block of their own may share one `fdatasync` (`write_frames`), up to
/// this many. Open wipes what a power cut kept after a lost frame in
/// `recovery::ORPHAN_SCAN_BLOCKS` blocks, more than this.
const FRAMES_PER_SYNC: usize = 8;

/// What `put_frames` did.
#[derive(Default)]
pub(super) struct Framed {
    /// Records framed.
    pub(super) records: usize,
    /// The handle of the last frame.
    pub(super) last: Option<ObjectHandle>,
    /// A last frame was packed and left unwritten: it would not fill its
    /// block.
    pub(super) short: bool,
}

impl Shared {
    /// One round of the framer (run by its background job when woken):
    /// frames full frames for as long as inserts stage a frame's worth.
    pub(super) fn framer_round(&self) {
        {
            let mut state = mutex_lock(&self.state);
            if state.stop || !state.wanted {
                return;
            }
            state.wanted = false;
            state.busy = true;
        }
        let mut codec = mutex_lock(&self.framing);
        if let Err(e) = self.frame(&mut codec, false) {
            self.failed.set(e);
        }
        drop(codec);
        mutex_lock(&self.state).busy = false;
        self.progress.notify_all();
    }

    /// Frames the queued records: full frames only, unless `all`. Without
    /// `all`, takes what inserts queue meanwhile too, until less than a
    /// frame's worth is left. The caller holds `framing` (its codec).
    pub(super) fn frame(&self, codec: &mut FrameCodec, all: bool) -> Result<()> {
        let framed = self.frame_queued(codec, all);
        // Every frame of the round is durable before `framing` is let go:
        // only a framing has frames not yet durable.
        let settled = self.settle_written();
        let short = framed?;
        settled?;
        // Asked before `state` is locked: it locks the main ring's writer.
        let worth = self.frame_worth(codec);
        let mut state = mutex_lock(&self.state);
        // After a try that left a part-frame, wait for a quarter more.
        state.next_try = if short {
            state.bytes + self.stage_bytes / 4
        } else {
            worth
        };
        Ok(())
    }

    /// `frame`'s loop, which may leave its last frames not yet durable;
    /// true if it left a part-frame.
    fn frame_queued(&self, codec: &mut FrameCodec, all: bool) -> Result<bool> {
        let mut short = false;
        loop {
            let (batches, skip) = mutex_lock(&self.state).unwritten();
            let refs: Vec<Record<'_>> = batches
                .iter()
                .enumerate()
                .flat_map(|(b, batch)| {
                    let from = if b == 0 { skip } else { 0 };
                    batch.records[from..].iter().map(|r| batch.record(r))
                })
                .collect();
            if refs.is_empty() {
                break;
            }
            let framed = self.put_frames(codec, &refs, all, true)?;
            short = framed.short;
            if all || framed.records == 0 {
                break;
            }
        }
        Ok(short)
    }

    /// Raw bytes a full frame is expected to take (`FrameCodec::
    /// frame_worth`); at most `stage_bytes`, so the framer tries at least
    /// once that much waits.
    fn frame_worth(&self, codec: &FrameCodec) -> u64 {
        (codec.frame_worth(self.frame_room()) as u64).min(self.stage_bytes)
    }

    /// Bytes the next frame's tombstones and zstd frame may take, less
    /// the record count: the room left in the main ring's head block when
    /// that is at least an eighth of a block, else a whole block's room
    /// for one object. A full frame leaves less than a tenth (`FILL`), so
    /// a store whose staging ring holds a full frame's worth writes a
    /// frame per block; a small store's frames are forced out short (its
    /// staging ring fills first), and the next frame fills the rest of the
    /// block instead of leaving it empty.
    fn frame_room(&self) -> usize {
        let block = first_block_capacity(self.staging.block_size()) as usize;
        let head = self.sink.as_ref().map_or(0, FrameSink::head_room);
        let room = if head >= block / 8 { head } else { block };
        room - COUNT_SIZE
    }

    /// Puts `refs` into the main ring as frames that fill a block each
    /// (or the rest of the head block: `frame_room`);
    /// with `last_partial` false, stops before a last frame that would
    /// not fill its block (those records wait for more). Every frame is
    /// made durable, whatever the sync policy; each one's write-back runs
    /// while the next one is packed. `queued`: `refs` are the queue's
    /// oldest records not yet written, and the last frames may be left
    /// for `settle_written` (an insert waiting for room, or the end of the
    /// framing); otherwise (a record too large to stage) they are durable
    /// when this returns.
    pub(super) fn put_frames(
        &self,
        codec: &mut FrameCodec,
        refs: &[Record<'_>],
        last_partial: bool,
        queued: bool,
    ) -> Result<Framed> {
        let Some(sink) = &self.sink else {
            return Err(Error::ReadOnly(self.staging.name().to_string()));
        };
        let mut framed = Framed::default();
        let written = self.write_frames(sink, codec, refs, last_partial, queued, &mut framed);
        if queued || framed.records == 0 {
            return written.map(|()| framed);
        }
        let synced = sink.make_durable();
        // Published either way: never framed twice.
        self.last_framed
            .store(refs[framed.records - 1].timestamp, Ordering::Release);
        written.and(synced).map(|()| framed)
    }

    /// `put_frames`' loop.
    fn write_frames(
        &self,
        sink: &FrameSink,
        codec: &mut FrameCodec,
        refs: &[Record<'_>],
        last_partial: bool,
        queued: bool,
        framed: &mut Framed,
    ) -> Result<()> {
        let mut payload = Vec::new();
        // Raw bytes not yet framed, as the codec counts them.
        let mut left: usize = refs.iter().map(|r| raw_size(r.payload.len())).sum();
        while framed.records < refs.len() {
            let i = framed.records;
            let block = self.frame_room();
            let worth = self.frame_worth(codec) as usize;
            // Not worth a try: less than a full frame's worth is left.
            if !last_partial && left < worth {
                break;
            }
            // The tombstones take a byte per 8 records of the frame: room
            // for a tenth more records than the last frame had, so that
            // the frame seldom needs packing again.
            let guess = self.frame_records.load(Ordering::Relaxed);
            let mut fit = block - (guess + guess / 10).div_ceil(8).min(block / 2);
            let n = loop {
                let n = codec
                    .pack(&refs[i..], self.columnar, fit)
                    .map_err(frame_error)?;
                if n == 1 || codec.packed().len() + n.div_ceil(8) <= block {
                    break n;
                }
                // Never wider than the try before: the record count (so
                // the tombstones) may grow as the fit shrinks, and in a
                // small room two fits could take turns for ever.
                let next = block.saturating_sub(n.div_ceil(8));
                fit = if next < fit {
                    next
                } else {
                    fit.saturating_sub((fit / 16).max(1))
                };
            };
            let frame = codec.packed();
            let full = frame.len() as f64 >= fit as f64 * crate::encoding::frame::FILL;
            if i + n == refs.len() && !full && !last_partial {
                framed.short = true;
                break;
            }
            payload.clear();
            payload.extend_from_slice(&(n as u32).to_le_bytes());
            payload.resize(COUNT_SIZE + n.div_ceil(8), 0);
            payload.extend_from_slice(frame);
            if payload.len() as u64 > self.max_frame {
                return Err(Error::TooLarge {
                    size: refs[i].payload.len() as u64,
                    max: crate::encoding::frame::max_record(self.max_frame),
                });
            }
            // Frames that each start a block may share a sync: a power
            // cut may then keep a block after a lost one, which open
            // wipes (`recovery::wipe_orphans`; it would pass for the
            // successor of the frame written again in the lost one's
            // place). Within a block it cannot tell, so a frame that
            // goes into the head block is written only once every frame
            // before it is durable: what a cut keeps of a block is then
            // a prefix. (The main ring's writer packs an object into the
            // head block exactly when it fits its room.)
            let appends = payload.len() <= sink.head_room();
            let shares = mutex_lock(&self.state).written_frames < FRAMES_PER_SYNC;
            if appends || !shares {
                self.settle_written()?;
            }
            framed.last = Some(sink.put(refs[i].timestamp, &payload)?);
            sink.start_durable();
            // The staging ring's checkpoint, once a lap, syncs the lap's
            // blocks while the insert that reaches it waits: written back
            // a frame's worth at a time from here, they are mostly on disk
            // by then (a third of the insert's time had gone to it).
            self.staging.start_write_back();
            if queued {
                mutex_lock(&self.state).written(n, refs[i + n - 1].timestamp);
                // An insert waiting for room makes it durable.
                self.progress.notify_all();
            }
            let raw: u64 = refs[i..i + n].iter().map(|r| cost(r.payload.len())).sum();
            self.count_frame(n, raw, payload.len());
            left -= refs[i..i + n]
                .iter()
                .map(|r| raw_size(r.payload.len()))
                .sum::<usize>();
            self.frame_records.store(n, Ordering::Relaxed);
            framed.records += n;
        }
        Ok(())
    }

    /// Makes the frames written so far durable, with one `fdatasync`,
    /// and publishes them: their records leave the queue (so their staged
    /// copies may be overwritten) and readers look for them in frames.
    /// Run by an insert waiting for room in the staging ring, and by the
    /// framing when it may not write on without it and at its end; one at
    /// a time (`settling`), in order.
    pub(super) fn settle_written(&self) -> Result<()> {
        let Some(sink) = &self.sink else {
            return Ok(());
        };
        let _settling = mutex_lock(&self.settling);
        let (n, frames, last) = {
            let state = mutex_lock(&self.state);
            (state.written, state.written_frames, state.written_last)
        };
        if n == 0 {
            return Ok(());
        }
        // Covers the frames written before it starts; those the framer
        // writes meanwhile wait for the next.
        let synced = sink.make_durable();
        // Published either way: never framed twice.
        self.last_framed.store(last, Ordering::Release);
        mutex_lock(&self.state).settled(n, frames);
        self.progress.notify_all();
        synced
    }
}
