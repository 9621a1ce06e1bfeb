//! The compressed encoding of a `Store` (`Encoding::Compressed`): two raw
//! rings in the store's directory, as docs/FORMAT.md ("Compressed
//! encoding") lays them out.
//!
//! * The **main ring** is the `Store` itself: its objects are frames, each
//!   `count` (u32), ⌈count / 8⌉ tombstone bytes (bit i: record i deleted),
//!   then a zstd frame of the records' columnar body, sized to fill one
//!   block. A frame's timestamp is its first record's.
//! * The **staging ring** (`<store>/staging/`, `STAGING`) receives every
//!   record first as a raw object: an insert is a raw insert, with its
//!   durability and its commit signal.
//!
//! Once a frame's worth is staged past the last framed record, the framer
//! thread (`stage`) packs full frames into the main ring; the rest waits.
//! It packs from a queue in memory of the staged records not yet framed
//! (`Unframed`), not by reading the staging ring back, and starts each
//! frame's write-back as soon as it is written, to wait for it (fdatasync)
//! only before writing the next. Nothing is rewritten: the staging ring
//! wraps only over records already in a durable frame, which also bounds
//! the queue. Readers (`read`) merge the frames with the records still
//! staged. Both rings recover on open as raw stores do; what is staged
//! after the newest frame's last record is what is left to frame.
//!
//! Lock order: `writer` (one insert, delete or reset at a time), then
//! `framing` (one framing at a time; it holds the writer's codec), then
//! the main ring's writer, then `state`, then the staging ring's index.
//! The framer never takes `writer`.

mod queue;
mod read;
mod stage;
mod truncate;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::FrameCodec;
use super::split::Template;
use crate::error::{Error, Result};
use crate::format::{DataType, OBJECT_HEADER_SIZE};
use crate::lock::mutex_lock;
use crate::store::{FrameSink, Store};

use queue::{StagedBatch, Unframed};
pub(crate) use read::FramedRecords;

/// Name of the staging ring's directory inside the store's.
pub const STAGING: &str = "staging";

/// Fewest blocks a compressed store can have: the staging ring takes
/// `staging_blocks(n)` of them and the main ring must stay at least twice
/// as large (so a record still staged always has its frame, if any, in it).
pub const MIN_COMPRESSED_BLOCKS: u32 = 24;

/// Blocks of a compressed store of `n` blocks that go to its staging ring:
/// a fifth, from 8 to 128. Every record not yet framed is staged, so this
/// is how far inserts can run ahead of the framer: a frame fills its block
/// with 13–15 blocks' worth of staged sensor readings. The insert and the
/// framer each stop now and then on a sync (the staging ring's checkpoint
/// once a lap, a frame's write-back), and the other runs on only while
/// the ring has room or records: with 64 blocks (4 TMY3 frames) batch
/// ingest swung between 0.44 and 0.70 of a raw store's rate, with 128
/// (and the insert laying out columns) 0.4998 – 0.73, 13 runs of 14 at
/// 0.57 or more (docs/BENCHMARKS.md, session 4). That costs 12.5 %
/// of a store of the default 1 024 blocks, 7 % of the readings it keeps;
/// the cap is reached at 640 blocks, so larger stores pay less. Fewer
/// than 8 would leave too little to make a frame of.
pub fn staging_blocks(n: u32) -> u32 {
    (n / 5).clamp(8, 128)
}

/// Frame payload bytes before the tombstones: the record count.
const COUNT_SIZE: usize = 4;

/// The figures behind a compressed store's ratio, from the frames written
/// since open plus the newest frame found at open.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Compression {
    /// Frames measured.
    pub frames: u64,
    /// Records in them.
    pub records: u64,
    /// What those records take in the raw layout (payload and object
    /// header each) per byte they take as frames (object header included).
    pub ratio: f64,
    /// Records per frame; a frame fills one block.
    pub readings_per_block: f64,
    /// Readings the store keeps per MiB of its whole footprint (files of
    /// both rings) at that rate.
    pub readings_per_mib: f64,
    /// Readings the full main ring holds at that rate (the staging ring
    /// holds a few more).
    pub capacity_readings: u64,
}

/// A compressed store's staging ring and framer (the main ring is the
/// `Store` that owns this).
#[derive(Debug)]
pub(crate) struct Compressed {
    /// Dropped first: stops and joins the framer before the rings go.
    framer: Framer,
    pub(crate) shared: Arc<Shared>,
}

/// The framer thread; dropping it stops it and waits for it.
#[derive(Debug)]
struct Framer {
    shared: Arc<Shared>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Framer {
    fn drop(&mut self) {
        mutex_lock(&self.shared.state).stop = true;
        self.shared.wake.notify_all();
        self.shared.progress.notify_all();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

#[derive(Debug, Default)]
struct Measured {
    frames: AtomicU64,
    records: AtomicU64,
    raw_bytes: AtomicU64,
    frame_bytes: AtomicU64,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) staging: Store,
    /// Appends frames to the main ring (the framer has no `Store`).
    sink: Option<FrameSink>,
    /// JSON and schema records are split into columns; others kept whole.
    columnar: bool,
    /// One insert, delete or reset at a time.
    writer: Mutex<()>,
    /// The template of the last record an insert split: the next insert
    /// starts from it (`Intake`).
    template: Mutex<Option<Arc<Template>>>,
    /// One framing at a time, with the codec it packs with (readers make
    /// their own).
    framing: Mutex<FrameCodec>,
    /// What is staged and not yet framed, and the framer's round.
    state: Mutex<Unframed>,
    /// Wakes the framer for a round, or to stop.
    wake: Condvar,
    /// Signalled after each frame and each round of the framer.
    progress: Condvar,
    /// A failure of the framer, reported by the next insert.
    failed: Mutex<Option<String>>,
    /// The newest record, framed or staged (0: none).
    newest: AtomicI64,
    /// The newest record already in a frame (0: none).
    last_framed: AtomicI64,
    /// Unframed staged bytes that trigger framing.
    stage_bytes: u64,
    /// Unframed staged bytes the staging ring can hold without wrapping
    /// over any of them.
    stage_max: u64,
    /// Largest frame body a codec may inflate.
    max_body: usize,
    /// Codecs readers reuse (a zstd context costs more to make than a
    /// frame to inflate); at most `READER_CODECS` are kept.
    readers: Mutex<Vec<FrameCodec>>,
    /// Payload bytes a frame object may have (the main ring's object limit).
    max_frame: u64,
    /// Records in the last frame written: its successor's first guess of
    /// the room its tombstones take.
    frame_records: std::sync::atomic::AtomicUsize,
    measured: Measured,
}

/// Reader codecs kept for reuse: about the readers a gateway runs at once.
const READER_CODECS: usize = 4;

/// A reader's codec, from the pool and back to it when dropped.
pub(crate) struct ReaderCodec<'a> {
    codec: Option<FrameCodec>,
    pool: &'a Mutex<Vec<FrameCodec>>,
}

impl std::ops::Deref for ReaderCodec<'_> {
    type Target = FrameCodec;
    fn deref(&self) -> &FrameCodec {
        self.codec.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for ReaderCodec<'_> {
    fn deref_mut(&mut self) -> &mut FrameCodec {
        self.codec.as_mut().expect("present until dropped")
    }
}

impl Drop for ReaderCodec<'_> {
    fn drop(&mut self) {
        let mut pool = mutex_lock(self.pool);
        if pool.len() < READER_CODECS
            && let Some(codec) = self.codec.take()
        {
            pool.push(codec);
        }
    }
}

impl Shared {
    /// Waits, with the state lock held in `state`, until the framer has
    /// no round running or wanted (or is stopping), or `done` holds.
    fn wait_idle<'a>(
        &self,
        mut state: std::sync::MutexGuard<'a, Unframed>,
        done: impl Fn(&Unframed) -> bool,
    ) -> std::sync::MutexGuard<'a, Unframed> {
        while (state.wanted || state.busy) && !state.stop && !done(&state) {
            state = self
                .progress
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        state
    }

    /// A codec for reading, reused when one is free.
    pub(crate) fn reader(&self) -> Result<ReaderCodec<'_>> {
        let codec = match mutex_lock(&self.readers).pop() {
            Some(c) => c,
            None => FrameCodec::new(self.max_body).map_err(frame_error)?,
        };
        Ok(ReaderCodec {
            codec: Some(codec),
            pool: &self.readers,
        })
    }
}

fn frame_error(e: super::FrameError) -> Error {
    Error::Corrupt(format!("compressed frame: {e}"))
}

/// A frame object's payload, split.
pub(crate) struct FrameObject<'a> {
    pub count: usize,
    pub tombstones: &'a [u8],
    pub frame: &'a [u8],
}

impl<'a> FrameObject<'a> {
    pub(crate) fn parse(payload: &'a [u8]) -> Result<FrameObject<'a>> {
        let count = payload
            .get(..COUNT_SIZE)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| Error::Corrupt("frame object shorter than its count".into()))?;
        let end = COUNT_SIZE + count.div_ceil(8);
        let tombstones = payload
            .get(COUNT_SIZE..end)
            .ok_or_else(|| Error::Corrupt("frame object shorter than its tombstones".into()))?;
        Ok(FrameObject {
            count,
            tombstones,
            frame: &payload[end..],
        })
    }

    /// Decompresses the frame with `codec`; its record count must be the
    /// object's.
    pub(crate) fn inflate<'c>(
        &self,
        codec: &'c mut FrameCodec,
    ) -> Result<super::columns::BodyView<'c>> {
        let view = codec.inflate(self.frame).map_err(frame_error)?;
        self.check_count(view.len())?;
        Ok(view)
    }

    /// The record at `ts`, appended to `out` (`FrameCodec::find`): its
    /// place in the frame, if there.
    pub(crate) fn find(
        &self,
        codec: &mut FrameCodec,
        ts: i64,
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>> {
        let (count, at) = codec.find(self.frame, ts, out).map_err(frame_error)?;
        self.check_count(count)?;
        Ok(at)
    }

    fn check_count(&self, count: usize) -> Result<()> {
        if count != self.count {
            return Err(Error::Corrupt(format!(
                "compressed frame holds {count} records, its object says {}",
                self.count
            )));
        }
        Ok(())
    }

    pub(crate) fn deleted(&self, i: usize) -> bool {
        self.tombstones
            .get(i / 8)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }
}

/// Largest record a compressed store takes: it must fit in one frame
/// object of the main ring even if zstd cannot shrink it (its bound is
/// n + n/128 + a header), with the count, tombstone and body varints.
pub fn max_record(max_frame: u64) -> u64 {
    max_frame.saturating_sub(max_frame / 128 + 256)
}

impl Compressed {
    /// Sets up the compressed part of `main` (just opened and recovered)
    /// around its opened staging ring; without a sink (read-only) there
    /// is no framer.
    pub(crate) fn start(main: &Store, staging: Store, writable: bool) -> Result<Compressed> {
        let bs = main.block_size() as u64;
        let n = staging.config().num_blocks;
        if staging.block_size() as u64 != bs || n < staging_blocks(0) {
            return Err(Error::Corrupt(format!(
                "the staging ring ({n} blocks of {} bytes) does not fit the main ring's \
                 {bs}-byte blocks",
                staging.block_size()
            )));
        }
        // Both rings are made with checksums and the staging ring is a raw
        // binary one: anything else is a damaged header, and records read
        // without checksums could be served wrong.
        if !main.has_checksums()
            || !staging.has_checksums()
            || staging.data_type() != DataType::Binary
            || staging.encoding() != crate::Encoding::Raw
        {
            return Err(Error::Corrupt(
                "a meta header of this compressed store is damaged (checksums off, or a \
                 staging ring that is not a raw binary one)"
                    .into(),
            ));
        }
        let staging_bytes = staging.stats().capacity_bytes;
        let max_body = (staging_bytes as usize * 2).max(1 << 20);
        let stage_bytes = (staging_bytes / 2).max(bs);
        let mut shared = Shared {
            framing: Mutex::new(FrameCodec::new(max_body).map_err(frame_error)?),
            writer: Mutex::new(()),
            template: Mutex::new(None),
            state: Mutex::new(Unframed::default()),
            wake: Condvar::new(),
            progress: Condvar::new(),
            failed: Mutex::new(None),
            newest: AtomicI64::new(0),
            max_body,
            readers: Mutex::new(Vec::new()),
            // Frame once half the staging ring waits: room for the batch
            // that crosses the mark; at most all of it but two blocks
            // (the raw ring's packing slack).
            stage_bytes,
            stage_max: staging_bytes.saturating_sub(2 * bs),
            sink: writable.then(|| main.frame_sink()),
            columnar: matches!(main.data_type(), DataType::Json | DataType::Schema),
            max_frame: main.ring_max_object_size(),
            frame_records: Default::default(),
            staging,
            last_framed: AtomicI64::new(0),
            measured: Measured::default(),
        };
        let last = match main.ring_range(i64::MIN, i64::MAX, true).limit(1).next() {
            Some(frame) => shared.measure_newest(&frame?)?,
            None => 0,
        };
        shared.last_framed.store(last, Ordering::Relaxed);
        let mut unframed = Unframed {
            next_try: stage_bytes,
            ..Unframed::default()
        };
        let staged = shared
            .staging
            .ring_range(last.saturating_add(1), i64::MAX, false)
            .collect_all()?;
        for r in &staged {
            unframed.queue_one(r.timestamp(), r.handle.block_num, &r.data);
        }
        let staged = shared.staging.stats().newest_timestamp.unwrap_or(0);
        shared.newest = AtomicI64::new(staged.max(last));
        *mutex_lock(&shared.state) = unframed;
        let shared = Arc::new(shared);
        let handle = if writable {
            let for_framer = Arc::clone(&shared);
            Some(
                std::thread::Builder::new()
                    .name("tsstore-framer".into())
                    .spawn(move || for_framer.run_framer())?,
            )
        } else {
            None
        };
        Ok(Compressed {
            framer: Framer {
                shared: Arc::clone(&shared),
                handle,
            },
            shared,
        })
    }

    /// Stops the framer (what it left staged stays staged) and hands back
    /// the staging ring.
    pub(crate) fn stop(self) -> Result<Store> {
        let Compressed { framer, shared } = self;
        drop(framer);
        let shared = Arc::try_unwrap(shared)
            .map_err(|_| Error::InUse("the staging ring of a compressed store".into()))?;
        Ok(shared.staging)
    }

    /// Empties both rings (the caller is the main ring's store).
    pub(crate) fn reset(&self, main: &Store) -> Result<()> {
        let _writer = mutex_lock(&self.shared.writer);
        let _framing = mutex_lock(&self.shared.framing);
        let out = main.reset_ring().and(self.shared.staging.reset());
        self.shared.forget_all();
        out
    }

    /// The newest record's timestamp (0 when empty).
    pub(crate) fn newest(&self) -> i64 {
        self.shared.newest.load(Ordering::Relaxed)
    }

    /// Largest record this store takes.
    pub(crate) fn max_record(&self) -> u64 {
        max_record(self.shared.max_frame)
    }

    /// Returns once the framer has no round running or wanted.
    pub(crate) fn settle(&self) {
        drop(
            self.shared
                .wait_idle(mutex_lock(&self.shared.state), |_| false),
        );
    }

    pub(crate) fn compression(&self) -> Option<Compression> {
        let m = &self.shared.measured;
        let frames = m.frames.load(Ordering::Relaxed);
        let records = m.records.load(Ordering::Relaxed);
        let frame_bytes = m.frame_bytes.load(Ordering::Relaxed);
        (frames > 0 && frame_bytes > 0).then(|| Compression {
            frames,
            records,
            ratio: m.raw_bytes.load(Ordering::Relaxed) as f64 / frame_bytes as f64,
            readings_per_block: records as f64 / frames as f64,
            readings_per_mib: 0.0,
            capacity_readings: 0,
        })
    }
}

impl Shared {
    /// Counts the frame object `frame` into the measured figures; returns
    /// its newest timestamp.
    fn measure_newest(&self, frame: &crate::record::Record) -> Result<i64> {
        let object = FrameObject::parse(&frame.data)?;
        let mut codec = mutex_lock(&self.framing);
        let view = object.inflate(&mut codec)?;
        let mut raw = 0;
        let mut scratch = Vec::new();
        for i in 0..view.len() {
            scratch.clear();
            view.write_record(i, &mut scratch);
            raw += cost(scratch.len());
        }
        self.count_frame(view.len(), raw, frame.data.len());
        // Its last record without a tombstone: a truncate tombstones the
        // records it cut from the newest frame, which the frame must not
        // claim as framed (a delete leaves the staged copy deleted too, so
        // nothing of it is framed again either way).
        let times = view.timestamps();
        let last = (0..times.len()).rev().find(|&i| !object.deleted(i));
        Ok(last
            .or((!times.is_empty()).then_some(0))
            .map_or(0, |i| times[i]))
    }

    fn count_frame(&self, records: usize, raw_bytes: u64, payload: usize) {
        let m = &self.measured;
        m.frames.fetch_add(1, Ordering::Relaxed);
        m.records.fetch_add(records as u64, Ordering::Relaxed);
        m.raw_bytes.fetch_add(raw_bytes, Ordering::Relaxed);
        m.frame_bytes.fetch_add(cost(payload), Ordering::Relaxed);
    }
}

/// What a record takes in a raw ring: payload and object header.
fn cost(len: usize) -> u64 {
    (len + OBJECT_HEADER_SIZE) as u64
}
