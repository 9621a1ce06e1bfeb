//! The insert path of a compressed store and its framer: records are
//! staged as raw objects and queued in memory, and full frames of them are
//! put into the main ring by the framer thread (or by an insert, when the
//! staging ring is about to wrap over a record not yet framed).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{COUNT_SIZE, Compressed, Shared, StagedBatch, Unframed, cost, frame_error};
use crate::encoding::FrameCodec;
use crate::encoding::frame::raw_size;
use crate::error::{Error, Result};
use crate::format::{BLOCK_HEADER_SIZE, OBJECT_HEADER_SIZE, blocks_for, first_block_capacity};
use crate::lock::mutex_lock;
use crate::record::ObjectHandle;
use crate::store::{FrameSink, check_timestamp, next_timestamp};

/// Blocks an insert stages at a time (fewer when the staging ring is
/// small), so that the framer can start on a frame while the rest of a
/// batch is staged.
const STAGE_CHUNK_BLOCKS: u64 = 8;

/// What `put_frames` did.
#[derive(Default)]
struct Framed {
    /// Records framed.
    records: usize,
    /// The handle of the last frame.
    last: Option<ObjectHandle>,
    /// A last frame was packed and left unwritten: it would not fill its
    /// block.
    short: bool,
    /// The last frame written, while it is not yet durable: its records.
    pending: Option<usize>,
}

impl Compressed {
    /// Inserts a batch of checked payloads: timestamps settled and
    /// checked whole, then staged with raw `put_many`s; the framer is
    /// woken once a frame's worth is staged. An insert frames by itself
    /// only before the staging ring could wrap over a record not yet
    /// framed, or for a record too large to stage.
    pub(crate) fn put_many(&self, items: &[(Option<i64>, &[u8])]) -> Result<Vec<ObjectHandle>> {
        let shared = &self.shared;
        let _writer = mutex_lock(&shared.writer);
        if let Some(why) = mutex_lock(&shared.failed).take() {
            return Err(Error::Io(std::io::Error::other(format!(
                "background framing failed: {why}"
            ))));
        }
        let mut prev = shared.newest.load(Ordering::Relaxed);
        let mut stamped = Vec::with_capacity(items.len());
        for &(ts, p) in items {
            let ts = match ts {
                Some(ts) => {
                    check_timestamp(ts, prev)?;
                    ts
                }
                None => next_timestamp(prev)?,
            };
            stamped.push((ts, p));
            prev = ts;
        }
        shared.stage(&stamped)
    }

    /// Frames every staged record not yet framed (a last frame as full as
    /// they make it), on this thread.
    pub(crate) fn frame_staged(&self) -> Result<()> {
        let mut codec = mutex_lock(&self.shared.framing);
        self.shared.frame(&mut codec, true)
    }
}

impl Shared {
    fn stage(&self, items: &[(i64, &[u8])]) -> Result<Vec<ObjectHandle>> {
        let largest = self.stage_max.saturating_sub(self.stage_bytes);
        // Staged a few blocks at a time, so that the framer can start on
        // a frame while the rest of a batch is staged.
        let chunk_max = largest.min(STAGE_CHUNK_BLOCKS * u64::from(self.staging.block_size()));
        let mut handles = Vec::with_capacity(items.len());
        let mut i = 0;
        while i < items.len() {
            if cost(items[i].1.len()) > largest {
                let mut codec = mutex_lock(&self.framing);
                self.frame(&mut codec, true)?;
                let framed = self.put_frames(&mut codec, &items[i..i + 1], true, false)?;
                self.newest.store(items[i].0, Ordering::Relaxed);
                handles.extend(framed.last.map(|h| ObjectHandle {
                    size: items[i].1.len() as u32,
                    ..h
                }));
                self.staging.commits.committed();
                i += 1;
                continue;
            }
            let mut end = i;
            let mut bytes = 0;
            while end < items.len() && (end == i || bytes + cost(items[end].1.len()) <= chunk_max) {
                bytes += cost(items[end].1.len());
                end += 1;
            }
            // Measured on the ring, not estimated: the blocks from the
            // first unframed record to the head, plus what the chunk
            // takes. Only this insert stages, and framing only frees
            // blocks. When they do not fit, the insert waits for the
            // framer's frames until they do; if its round ends first,
            // what is left (less than a frame) is framed here, as a
            // part-frame.
            let need = blocks_for_chunk(&items[i..end], self.staging.block_size());
            let fits = |state: &Unframed| {
                self.unframed_blocks(state) + need < self.staging.config().num_blocks
            };
            if !fits(&mutex_lock(&self.state)) && !self.await_room(fits) {
                let mut codec = mutex_lock(&self.framing);
                self.frame(&mut codec, true)?;
            }
            // One record (the common `put`) skips the batch's vectors.
            let staged = match &items[i..end] {
                &[(ts, p)] => vec![self.staging.put(ts, p)?],
                chunk => self
                    .staging
                    .put_many(chunk.iter().map(|&(ts, p)| (Some(ts), p)))?,
            };
            self.newest.store(items[end - 1].0, Ordering::Relaxed);
            let mut state = mutex_lock(&self.state);
            state.queue(
                items[i..end]
                    .iter()
                    .zip(&staged)
                    .map(|(&(ts, p), h)| (ts, h.block_num, p)),
            );
            i = end;
            handles.extend(staged);
            if state.bytes >= state.next_try && self.sink.is_some() && !state.stop {
                // Not again until this round is done.
                state.next_try = u64::MAX;
                state.wanted = true;
                drop(state);
                self.wake.notify_one();
            }
        }
        Ok(handles)
    }

    /// Asks the framer for a round and waits until `fits` holds; false if
    /// the round ended first (or there is no framer: a read-only store,
    /// or one closing).
    fn await_room(&self, fits: impl Fn(&Unframed) -> bool) -> bool {
        let mut state = mutex_lock(&self.state);
        if self.sink.is_none() || state.stop {
            return false;
        }
        state.next_try = u64::MAX;
        state.wanted = true;
        self.wake.notify_one();
        let state = self.wait_idle(state, &fits);
        fits(&state)
    }

    /// The framer: a round each time it is woken, framing full frames
    /// for as long as inserts stage a frame's worth.
    pub(super) fn run_framer(&self) {
        loop {
            {
                let mut state = mutex_lock(&self.state);
                while !state.wanted && !state.stop {
                    state = self
                        .wake
                        .wait(state)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                if state.stop {
                    return;
                }
                state.wanted = false;
                state.busy = true;
            }
            let mut codec = mutex_lock(&self.framing);
            if let Err(e) = self.frame(&mut codec, false) {
                *mutex_lock(&self.failed) = Some(e.to_string());
            }
            drop(codec);
            mutex_lock(&self.state).busy = false;
            self.progress.notify_all();
        }
    }

    /// Blocks of the staging ring from the first record not yet framed to
    /// the head (0 when every staged record is framed).
    fn unframed_blocks(&self, unframed: &Unframed) -> u32 {
        let Some(first) = unframed.first_block() else {
            return 0;
        };
        let ring = crate::lock::read_lock(&self.staging.ring);
        let n = ring.num_blocks();
        let head = ring.head_phys().unwrap_or(first);
        (head + n - first) % n + 1
    }

    /// Frames the queued records: full frames only, unless `all`. Without
    /// `all`, takes what inserts queue meanwhile too, until less than a
    /// frame's worth is left. The caller holds `framing` (its codec).
    pub(super) fn frame(&self, codec: &mut FrameCodec, all: bool) -> Result<()> {
        let mut short = false;
        loop {
            let (batches, skip) = {
                let state = mutex_lock(&self.state);
                let batches: Vec<Arc<StagedBatch>> = state.batches.iter().cloned().collect();
                (batches, state.front_done)
            };
            let refs: Vec<(i64, &[u8])> = batches
                .iter()
                .enumerate()
                .flat_map(|(b, batch)| {
                    let from = if b == 0 { skip } else { 0 };
                    batch.records[from..]
                        .iter()
                        .map(|r| (r.timestamp, batch.payload(r)))
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
        let mut state = mutex_lock(&self.state);
        // After a try that left a part-frame, wait for a quarter more.
        state.next_try = if short {
            state.bytes + self.stage_bytes / 4
        } else {
            self.frame_worth(codec)
        };
        Ok(())
    }

    /// Raw bytes a full frame is expected to take (`FrameCodec::
    /// frame_worth`); at most `stage_bytes`, so the framer tries at least
    /// once that much waits.
    fn frame_worth(&self, codec: &FrameCodec) -> u64 {
        (codec.frame_worth(self.frame_room()) as u64).min(self.stage_bytes)
    }

    /// Bytes a frame's tombstones and zstd frame may take in one block:
    /// a block's room for one object, less the record count.
    fn frame_room(&self) -> usize {
        first_block_capacity(self.staging.block_size()) as usize - COUNT_SIZE
    }

    /// Puts `refs` into the main ring as frames that fill a block each;
    /// with `last_partial` false, stops before a last frame that would
    /// not fill its block (those records wait for more). Each frame is
    /// made durable before the next is written, whatever the sync policy;
    /// its write-back runs while the next one is packed. `queued`: `refs`
    /// are the queue's oldest records, dropped from it frame by frame.
    fn put_frames(
        &self,
        codec: &mut FrameCodec,
        refs: &[(i64, &[u8])],
        last_partial: bool,
        queued: bool,
    ) -> Result<Framed> {
        let Some(sink) = &self.sink else {
            return Err(Error::ReadOnly(self.staging.name().to_string()));
        };
        let mut framed = Framed::default();
        let written = self.write_frames(sink, codec, refs, last_partial, queued, &mut framed);
        let settled = self.settle_frame(sink, refs, &mut framed, queued);
        written.and(settled).map(|()| framed)
    }

    /// `put_frames`' loop; leaves the last frame written pending, for the
    /// caller to settle even when this fails.
    fn write_frames(
        &self,
        sink: &FrameSink,
        codec: &mut FrameCodec,
        refs: &[(i64, &[u8])],
        last_partial: bool,
        queued: bool,
        framed: &mut Framed,
    ) -> Result<()> {
        let block = self.frame_room();
        let mut payload = Vec::new();
        // Raw bytes not yet framed, as the codec counts them.
        let mut left: usize = refs.iter().map(|(_, p)| raw_size(p.len())).sum();
        let worth = self.frame_worth(codec) as usize;
        while framed.records < refs.len() {
            let i = framed.records;
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
                fit = block - n.div_ceil(8);
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
                    size: refs[i].1.len() as u64,
                    max: super::max_record(self.max_frame),
                });
            }
            // Each frame is durable before the next is written: a power
            // cut can then lose only the newest frames, never one between
            // two kept ones (the staged records after the newest kept
            // frame are what open frames again), and a record's staged
            // copy is overwritten only once its frame is durable.
            self.settle_frame(sink, refs, framed, queued)?;
            framed.last = Some(sink.put(refs[i].0, &payload)?);
            sink.start_durable();
            framed.pending = Some(n);
            let raw: u64 = refs[i..i + n].iter().map(|(_, p)| cost(p.len())).sum();
            self.count_frame(n, raw, payload.len());
            left -= refs[i..i + n]
                .iter()
                .map(|(_, p)| raw_size(p.len()))
                .sum::<usize>();
            self.frame_records.store(n, Ordering::Relaxed);
            framed.records += n;
        }
        Ok(())
    }

    /// Makes `framed`'s pending frame (its last) durable and publishes
    /// it; its records leave the queue if `queued`.
    fn settle_frame(
        &self,
        sink: &FrameSink,
        refs: &[(i64, &[u8])],
        framed: &mut Framed,
        queued: bool,
    ) -> Result<()> {
        let Some(n) = framed.pending.take() else {
            return Ok(());
        };
        let synced = sink.make_durable();
        // Published either way: never framed twice.
        self.last_framed
            .store(refs[framed.records - 1].0, Ordering::Release);
        if queued {
            mutex_lock(&self.state).advance(n);
            self.progress.notify_all();
        }
        synced
    }

    /// Empties both rings' bookkeeping after the caller reset them.
    pub(super) fn forget_all(&self) {
        self.last_framed.store(0, Ordering::Relaxed);
        self.newest.store(0, Ordering::Relaxed);
        let mut state = mutex_lock(&self.state);
        state.batches.clear();
        state.front_done = 0;
        state.bytes = 0;
        state.next_try = self.stage_bytes;
    }
}

/// Blocks a chunk of records takes when staged, packed as the raw writer
/// packs them (a record opens a block when it does not fit in what is
/// left; one larger than a block spans blocks of its own), as if the
/// head were full, plus one.
fn blocks_for_chunk(items: &[(i64, &[u8])], block_size: u32) -> u32 {
    let bs = block_size as u64;
    let (block_header, object_header) = (BLOCK_HEADER_SIZE as u64, OBJECT_HEADER_SIZE as u64);
    let mut blocks = 0u64;
    let mut used = bs;
    for (_, p) in items {
        let len = p.len() as u64;
        if len > first_block_capacity(block_size) {
            blocks += blocks_for(len, block_size);
            used = bs;
        } else if used + object_header + len > bs {
            blocks += 1;
            used = block_header + object_header + len;
        } else {
            used += object_header + len;
        }
    }
    (blocks + 1).min(u32::MAX as u64) as u32
}
