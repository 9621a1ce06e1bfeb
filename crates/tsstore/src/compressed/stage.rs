//! The insert path of a compressed store: records are staged as raw
//! objects and queued in memory for the framer (`framing`), which an
//! insert wakes once a frame's worth waits, and waits for (making its
//! frames durable meanwhile) when the staging ring is about to wrap over
//! a record not yet in a durable frame.

use std::sync::atomic::Ordering;

use super::{Compressed, Shared, StagedBatch, Unframed, cost};
use crate::encoding::split::{Record, Splitter};
use crate::error::{Error, Result};
use crate::lock::mutex_lock;
use crate::record::ObjectHandle;
use crate::ring::{check_timestamp, next_timestamp};

/// Blocks an insert stages at a time (fewer when the staging ring is
/// small), so that the framer can start on a frame while the rest of a
/// batch is staged.
const STAGE_CHUNK_BLOCKS: u64 = 8;

/// The records of one insert, checked and not yet stamped or staged: in
/// batches of a staging chunk each (`STAGE_CHUNK_BLOCKS`), a record too
/// large to stage alone in its own.
#[derive(Debug)]
pub(crate) struct Intake {
    batches: Vec<StagedBatch>,
    /// Each record's timestamp as asked (none: now).
    wanted: Vec<Option<i64>>,
    splitter: Splitter,
    /// Staging cost of the last batch's records.
    bytes: u64,
    /// The last batch is a record too large to stage.
    last_alone: bool,
    /// More than a few records are coming.
    many: bool,
    chunk_max: u64,
    largest: u64,
}

impl Intake {
    /// Says how many records are coming, at least.
    pub(crate) fn expect(&mut self, records: usize) {
        self.many = records > 16;
    }

    /// Adds a JSON payload if it is surely valid, checked and split for
    /// the framer in one pass; false (nothing added) if the caller must
    /// check it the usual way.
    pub(crate) fn add_json(&mut self, timestamp: Option<i64>, payload: &[u8]) -> bool {
        let place = self.place(payload.len());
        self.open(place);
        let added = match self.batches.last_mut() {
            Some(batch) => batch.add_json(&mut self.splitter, payload),
            None => false,
        };
        if !added {
            if place.new {
                self.batches.pop();
            }
            return false;
        }
        self.placed(place, timestamp);
        true
    }

    /// Adds a payload the caller checked.
    pub(crate) fn add(&mut self, timestamp: Option<i64>, payload: &[u8]) {
        let place = self.place(payload.len());
        self.open(place);
        if let Some(batch) = self.batches.last_mut() {
            batch.add(payload);
        }
        self.placed(place, timestamp);
    }

    /// Where a payload of `len` bytes goes: the last batch, or a new one
    /// if the chunk would be too large; a record too large to stage gets
    /// a batch of its own.
    fn place(&self, len: usize) -> Place {
        let cost = cost(len);
        let alone = cost > self.largest;
        Place {
            cost,
            alone,
            new: self.batches.is_empty()
                || alone
                || self.last_alone
                || self.bytes + cost > self.chunk_max,
        }
    }

    fn open(&mut self, place: Place) {
        if place.new {
            // A batch of many records fills its chunk: sized for it at
            // once rather than grown (regrowth had cost a tenth of a
            // batch insert).
            let capacity = if self.many { self.chunk_max } else { 0 };
            self.batches
                .push(StagedBatch::with_capacity(capacity as usize));
        }
    }

    fn placed(&mut self, place: Place, timestamp: Option<i64>) {
        if place.new {
            self.bytes = 0;
        }
        self.bytes += place.cost;
        self.last_alone = place.alone;
        self.wanted.push(timestamp);
    }
}

#[derive(Debug, Clone, Copy)]
struct Place {
    cost: u64,
    alone: bool,
    new: bool,
}

impl Compressed {
    /// An insert's records, to be added and then put (`put`).
    pub(crate) fn intake(&self) -> Intake {
        let shared = &self.shared;
        let largest = shared.largest_staged();
        Intake {
            batches: Vec::new(),
            wanted: Vec::new(),
            splitter: Splitter::with_template(mutex_lock(&shared.template).clone()),
            bytes: 0,
            last_alone: false,
            many: false,
            // Staged a few blocks at a time, so that the framer can start
            // on a frame while the rest of a batch is staged; in an eighth
            // of a small staging ring at most: an insert frames early when
            // its chunk does not fit, so chunks of 4 blocks in a 12-block
            // ring cut every frame at half a ring's worth.
            chunk_max: largest.min(
                (u64::from(shared.staging.config().num_blocks) / 8).clamp(1, STAGE_CHUNK_BLOCKS)
                    * u64::from(shared.staging.block_size()),
            ),
            largest,
        }
    }

    /// Inserts an intake's records: timestamps settled and checked whole,
    /// then staged with raw `put_many`s; the framer is woken once a
    /// frame's worth is staged. An insert frames by itself only before
    /// the staging ring could wrap over a record not yet framed, or for a
    /// record too large to stage.
    pub(crate) fn put(&self, intake: Intake) -> Result<Vec<ObjectHandle>> {
        let Intake {
            mut batches,
            wanted,
            splitter,
            ..
        } = intake;
        let shared = &self.shared;
        *mutex_lock(&shared.template) = splitter.into_template();
        let _writer = shared.writer_lock()?;
        let mut prev = shared.newest.load(Ordering::Relaxed);
        let mut wanted = wanted.into_iter();
        for record in batches.iter_mut().flat_map(|b| b.records.iter_mut()) {
            record.timestamp = stamp(wanted.next().flatten(), prev)?;
            prev = record.timestamp;
        }
        let mut handles = Vec::with_capacity(batches.iter().map(|b| b.records.len()).sum());
        for batch in batches {
            shared.stage(batch, &mut handles)?;
        }
        Ok(handles)
    }

    /// Inserts one checked payload, as `put` does, without an `Intake`:
    /// a lone `put` is bound by this thread, and the framer, idle then,
    /// splits the record.
    pub(crate) fn put_one(&self, timestamp: Option<i64>, payload: &[u8]) -> Result<ObjectHandle> {
        let shared = &self.shared;
        let _writer = shared.writer_lock()?;
        let ts = stamp(timestamp, shared.newest.load(Ordering::Relaxed))?;
        if shared.too_large_to_stage(payload.len()) {
            return shared.frame_alone(Record::new(ts, payload));
        }
        shared.make_room(blocks_for_chunk(
            std::iter::once(payload.len()),
            shared.staging.block_size(),
        ))?;
        let handle = shared.staging.put(ts, payload)?;
        shared.newest.store(ts, Ordering::Relaxed);
        let mut state = mutex_lock(&shared.state);
        state.queue_one(ts, handle.block_num, payload);
        shared.wake_if_due(state);
        Ok(handle)
    }

    /// Frames every staged record not yet framed (a last frame as full as
    /// they make it), on this thread.
    pub(crate) fn frame_staged(&self) -> Result<()> {
        let mut codec = mutex_lock(&self.shared.framing);
        self.shared.frame(&mut codec, true)
    }
}

/// `timestamp`, checked to follow `prev`, or the next one after it.
fn stamp(timestamp: Option<i64>, prev: i64) -> Result<i64> {
    match timestamp {
        Some(ts) => {
            check_timestamp(ts, prev)?;
            Ok(ts)
        }
        None => next_timestamp(prev),
    }
}

impl Shared {
    /// The writer's lock, unless the framer failed since the last insert
    /// (the error is reported once, to that insert).
    fn writer_lock(&self) -> Result<std::sync::MutexGuard<'_, ()>> {
        let writer = mutex_lock(&self.writer);
        self.failed.take()?;
        Ok(writer)
    }

    /// The largest record's staging cost that stages: more would let the
    /// staging ring wrap over a record not yet framed.
    fn largest_staged(&self) -> u64 {
        self.stage_max.saturating_sub(self.stage_bytes)
    }

    /// A payload of `len` bytes is framed at once, not staged.
    fn too_large_to_stage(&self, len: usize) -> bool {
        cost(len) > self.largest_staged()
    }

    /// Stages one batch of an insert and queues it for the framer.
    fn stage(&self, mut batch: StagedBatch, handles: &mut Vec<ObjectHandle>) -> Result<()> {
        if let [record] = &batch.records[..]
            && self.too_large_to_stage(record.len())
        {
            handles.push(self.frame_alone(batch.record(record))?);
            return Ok(());
        }
        let Some(newest) = batch.records.last().map(|r| r.timestamp) else {
            return Ok(());
        };
        self.make_room(blocks_for_chunk(
            batch.records.iter().map(|r| r.len()),
            self.staging.block_size(),
        ))?;
        let staged = self.staging.put_many(
            batch
                .records
                .iter()
                .map(|r| (Some(r.timestamp), batch.payload(r))),
        )?;
        for (r, h) in batch.records.iter_mut().zip(&staged) {
            r.block = h.block_num;
        }
        self.newest.store(newest, Ordering::Relaxed);
        handles.extend(staged);
        let mut state = mutex_lock(&self.state);
        state.queue(batch);
        self.wake_if_due(state);
        Ok(())
    }

    /// Frames a record too large to stage, after every staged one.
    fn frame_alone(&self, record: Record<'_>) -> Result<ObjectHandle> {
        let mut codec = mutex_lock(&self.framing);
        self.frame(&mut codec, true)?;
        let framed = self.put_frames(&mut codec, &[record], true, false)?;
        self.newest.store(record.timestamp, Ordering::Relaxed);
        self.staging.commits.committed();
        let handle = framed.last.ok_or_else(|| {
            Error::Io(std::io::Error::other(
                "a record too large to stage was not framed",
            ))
        })?;
        Ok(ObjectHandle {
            size: record.payload.len() as u32,
            ..handle
        })
    }

    /// Waits until `need` more blocks fit in the staging ring without
    /// wrapping over a record not yet in a durable frame. Measured on the
    /// ring, not estimated: the blocks from the first such record to the
    /// head, plus `need`. Only the insert holding the writer stages, and
    /// framing only frees blocks. When they do not fit, the insert waits
    /// for the framer's frames until they do; if its round ends first,
    /// what is left (less than a frame) is framed here, as a part-frame.
    fn make_room(&self, need: u32) -> Result<()> {
        let fits = |state: &Unframed| {
            self.unframed_blocks(state) + need < self.staging.config().num_blocks
        };
        if !fits(&mutex_lock(&self.state)) && !self.await_room(fits)? {
            let mut codec = mutex_lock(&self.framing);
            self.frame(&mut codec, true)?;
        }
        Ok(())
    }

    /// Wakes the framer for a round once a frame's worth is queued.
    fn wake_if_due(&self, mut state: std::sync::MutexGuard<'_, Unframed>) {
        if state.bytes >= state.next_try && self.sink.is_some() && !state.stop {
            // Not again until this round is done.
            state.next_try = u64::MAX;
            state.wanted = true;
            drop(state);
            self.wake_framer();
        }
    }

    /// Asks the framer for a round and waits until `fits` holds; false if
    /// the round ended first (or there is no framer: a read-only store,
    /// or one closing). The frames the framer has written are made
    /// durable here (`settle_written`), on this thread, while the framer
    /// packs on: the staged copies of their records are the room this
    /// insert waits for, and the framer need not wait for their
    /// `fdatasync`.
    fn await_room(&self, fits: impl Fn(&Unframed) -> bool) -> Result<bool> {
        let mut state = mutex_lock(&self.state);
        if self.sink.is_none() || state.stop {
            return Ok(false);
        }
        state.next_try = u64::MAX;
        state.wanted = true;
        self.wake_framer();
        loop {
            state = self.wait_idle(state, |s| fits(s) || s.written > 0);
            if fits(&state) {
                return Ok(true);
            }
            if state.written == 0 {
                return Ok(false);
            }
            drop(state);
            self.settle_written()?;
            state = mutex_lock(&self.state);
        }
    }

    /// Asks the framer's job for a round.
    fn wake_framer(&self) {
        if let Some(waker) = self.wake.get() {
            waker.wake();
        }
    }

    /// Blocks of the staging ring from the first record not yet in a
    /// durable frame to the head (0 when there is none).
    fn unframed_blocks(&self, unframed: &Unframed) -> u32 {
        let Some(first) = unframed.first_block() else {
            return 0;
        };
        let ring = crate::lock::read_lock(&self.staging.ring);
        let n = ring.num_blocks();
        let head = ring.head_phys().unwrap_or(first);
        (head + n - first) % n + 1
    }

    /// Empties both rings' bookkeeping after the caller reset them.
    pub(super) fn forget_all(&self) {
        self.last_framed.store(0, Ordering::Relaxed);
        self.newest.store(0, Ordering::Relaxed);
        let mut state = mutex_lock(&self.state);
        state.batches.clear();
        state.front_done = 0;
        state.written = 0;
        state.written_frames = 0;
        state.bytes = 0;
        state.next_try = self.stage_bytes;
    }
}

/// Blocks a chunk of records takes when staged, packed as the raw writer
/// packs them, as if the head were full, plus one.
fn blocks_for_chunk(lens: impl Iterator<Item = usize>, block_size: u32) -> u32 {
    let (blocks, _) = crate::format::blocks_packed(lens, block_size);
    (blocks + 1).min(u32::MAX as u64) as u32
}
