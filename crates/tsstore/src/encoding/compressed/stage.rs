//! The insert path of a compressed store and its framer: records are
//! staged as raw objects, and full frames of them are put into the main
//! ring by the framer thread (or by an insert, when the staging ring is
//! about to wrap over a record not yet framed).

use std::sync::atomic::Ordering;

use super::{COUNT_SIZE, Compressed, Shared, Unframed, cost, frame_error};
use crate::encoding::FrameCodec;
use crate::error::{Error, Result};
use crate::format::{BLOCK_HEADER_SIZE, OBJECT_HEADER_SIZE, blocks_for, first_block_capacity};
use crate::lock::mutex_lock;
use crate::record::ObjectHandle;
use crate::store::{check_timestamp, next_timestamp};

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
        let chunk_max = self.stage_max.saturating_sub(self.stage_bytes);
        let mut handles = Vec::with_capacity(items.len());
        let mut i = 0;
        while i < items.len() {
            if cost(items[i].1.len()) > chunk_max {
                let mut codec = mutex_lock(&self.framing);
                self.frame(&mut codec, true)?;
                let (_, handle) = self.put_frames(&mut codec, &items[i..i + 1], true)?;
                self.newest.store(items[i].0, Ordering::Relaxed);
                handles.extend(handle.map(|h| ObjectHandle {
                    size: items[i].1.len() as u32,
                    ..h
                }));
                self.staging.commits.committed();
                i += 1;
                continue;
            }
            let mut end = i;
            let mut bytes = 0;
            while end < items.len() && bytes + cost(items[end].1.len()) <= chunk_max {
                bytes += cost(items[end].1.len());
                end += 1;
            }
            // Measured on the ring, not estimated: the blocks from the
            // first unframed record to the head, plus what the chunk
            // takes. Only this insert stages, and framing only frees
            // blocks. When they do not fit, the framer frames the full
            // frames it can (the insert waits for that round); only what
            // is left then, less than a frame, is framed here, as a
            // part-frame.
            let need = blocks_for_chunk(&items[i..end], self.staging.block_size());
            let fits = || {
                self.unframed_blocks(&mutex_lock(&self.state)) + need
                    < self.staging.config().num_blocks
            };
            if !fits() {
                self.await_round();
                if !fits() {
                    let mut codec = mutex_lock(&self.framing);
                    self.frame(&mut codec, true)?;
                }
            }
            // One record (the common `put`) skips the batch's vectors.
            let staged = match &items[i..end] {
                &[(ts, p)] => vec![self.staging.put(ts, p)?],
                chunk => self
                    .staging
                    .put_many(chunk.iter().map(|&(ts, p)| (Some(ts), p)))?,
            };
            self.newest.store(items[end - 1].0, Ordering::Relaxed);
            i = end;
            let mut state = mutex_lock(&self.state);
            if let Some(h) = staged.first() {
                state.first_block.get_or_insert(h.block_num);
            }
            handles.extend(staged);
            state.bytes += bytes;
            if state.bytes >= state.next_try {
                // Not again until this round is done.
                state.next_try = u64::MAX;
                drop(state);
                mutex_lock(&self.signal).wanted = true;
                self.wake.notify_one();
            }
        }
        Ok(handles)
    }

    /// Asks the framer for a round and waits until it is done (at once if
    /// there is no framer: a read-only store, or one closing).
    fn await_round(&self) {
        let mut signal = mutex_lock(&self.signal);
        if self.sink.is_none() || signal.stop {
            return;
        }
        signal.wanted = true;
        self.wake.notify_one();
        self.wait_idle(signal);
    }

    /// The framer: a round of full frames each time it is woken.
    pub(super) fn run_framer(&self) {
        loop {
            {
                let mut signal = mutex_lock(&self.signal);
                while !signal.wanted && !signal.stop {
                    signal = self
                        .wake
                        .wait(signal)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                if signal.stop {
                    return;
                }
                signal.wanted = false;
                signal.busy = true;
            }
            let mut codec = mutex_lock(&self.framing);
            if let Err(e) = self.frame(&mut codec, false) {
                *mutex_lock(&self.failed) = Some(e.to_string());
            }
            drop(codec);
            mutex_lock(&self.signal).busy = false;
            self.idle.notify_all();
        }
    }

    /// Blocks of the staging ring from the first record not yet framed to
    /// the head (0 when every staged record is framed).
    fn unframed_blocks(&self, unframed: &Unframed) -> u32 {
        let Some(first) = unframed.first_block else {
            return 0;
        };
        let ring = crate::lock::read_lock(&self.staging.ring);
        let n = ring.num_blocks();
        let head = ring.head_phys().unwrap_or(first);
        (head + n - first) % n + 1
    }

    /// Frames the staged records after the last framed one: full frames
    /// only, unless `all`. The caller holds `framing` (its codec).
    pub(super) fn frame(&self, codec: &mut FrameCodec, all: bool) -> Result<()> {
        let after = self.last_framed.load(Ordering::Relaxed);
        let staged: Vec<crate::record::Record> = self
            .staging
            .ring_range(after.saturating_add(1), i64::MAX, false)
            .collect_all()?;
        let refs: Vec<(i64, &[u8])> = staged
            .iter()
            .map(|r| (r.timestamp(), r.data.as_slice()))
            .collect();
        let (framed, _) = self.put_frames(codec, &refs, all)?;
        let framed_bytes: u64 = refs[..framed].iter().map(|(_, p)| cost(p.len())).sum();
        let mut state = mutex_lock(&self.state);
        state.bytes = state.bytes.saturating_sub(framed_bytes);
        state.first_block = match staged.get(framed) {
            Some(r) => Some(r.handle.block_num),
            // Every record of the snapshot is framed: the first unframed
            // one, if any, came after it (inserts wait for `state`).
            None => self
                .staging
                .ring_range(
                    self.last_framed.load(Ordering::Relaxed).saturating_add(1),
                    i64::MAX,
                    false,
                )
                .with_data(false)
                .limit(1)
                .collect_all()?
                .first()
                .map(|r| r.handle.block_num),
        };
        if state.first_block.is_none() {
            state.bytes = 0;
        }
        // After a round that left a part-frame, wait for a quarter more.
        state.next_try = if framed == 0 {
            state.bytes + self.stage_bytes / 4
        } else {
            self.stage_bytes.max(state.bytes + self.stage_bytes / 4)
        };
        Ok(())
    }

    /// Puts `refs` into the main ring as frames that fill a block each;
    /// with `last_partial` false, stops before a last frame that would
    /// not fill its block (those records wait for more). Returns how many
    /// records went in and the handle of the last frame. Each frame is
    /// made durable before the next is written, whatever the sync policy.
    fn put_frames(
        &self,
        codec: &mut FrameCodec,
        refs: &[(i64, &[u8])],
        last_partial: bool,
    ) -> Result<(usize, Option<ObjectHandle>)> {
        let Some(sink) = &self.sink else {
            return Err(Error::ReadOnly(self.staging.name().to_string()));
        };
        let block = first_block_capacity(self.staging.block_size()) as usize - COUNT_SIZE;
        let mut i = 0;
        let mut last = None;
        let mut payload = Vec::new();
        while i < refs.len() {
            // The tombstones take a byte per 8 records of the frame.
            let mut fit = block;
            let (n, frame) = loop {
                let (n, frame) = codec
                    .pack(&refs[i..], self.columnar, fit)
                    .map_err(frame_error)?;
                if n == 1 || frame.len() + n.div_ceil(8) <= block {
                    break (n, frame);
                }
                fit = block - n.div_ceil(8);
            };
            let full = frame.len() as f64 >= fit as f64 * crate::encoding::frame::FILL;
            if i + n == refs.len() && !full && !last_partial {
                break;
            }
            payload.clear();
            payload.extend_from_slice(&(n as u32).to_le_bytes());
            payload.resize(COUNT_SIZE + n.div_ceil(8), 0);
            payload.extend_from_slice(&frame);
            if payload.len() as u64 > self.max_frame {
                return Err(Error::TooLarge {
                    size: refs[i].1.len() as u64,
                    max: super::max_record(self.max_frame),
                });
            }
            last = Some(sink.put(refs[i].0, &payload)?);
            let raw: u64 = refs[i..i + n].iter().map(|(_, p)| cost(p.len())).sum();
            self.count_frame(n, raw, payload.len());
            i += n;
            // Each frame is durable before the next is written: a power
            // cut can then lose only the newest frames, never one between
            // two kept ones (the staged records after the newest kept
            // frame are what open frames again), and a record's staged
            // copy is overwritten only once its frame is durable.
            let synced = sink.make_durable();
            // Published either way: never framed twice.
            self.last_framed
                .store(refs[i - 1].0, std::sync::atomic::Ordering::Release);
            synced?;
        }
        Ok((i, last))
    }

    /// Empties both rings' bookkeeping after the caller reset them.
    pub(super) fn forget_all(&self) {
        self.last_framed.store(0, Ordering::Relaxed);
        self.newest.store(0, Ordering::Relaxed);
        *mutex_lock(&self.state) = Unframed {
            next_try: self.stage_bytes,
            ..Unframed::default()
        };
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
