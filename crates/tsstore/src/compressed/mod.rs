//! The compressed store (`Encoding::Compressed`): two raw rings (`Ring`)
//! in the store's directory, as docs/FORMAT.md ("Compressed encoding")
//! lays them out, and the framer between them. The codecs it packs with
//! are `encoding`'s; this module is the store logic around them.
//!
//! * The **main ring** is the store's `Ring`: its objects are frames, each
//!   `count` (u32), ⌈count / 8⌉ tombstone bytes (bit i: record i deleted),
//!   then a zstd frame of the records' columnar body, sized to fill one
//!   block. A frame's timestamp is its first record's.
//! * The **staging ring** (`<store>/staging/`, `STAGING`) receives every
//!   record first as a raw object: an insert is a raw insert, with its
//!   durability and its commit signal.
//!
//! Once a frame's worth is staged (`stage`) past the last framed record,
//! the framer job (`framing`, on the engine's background workers) packs
//! full frames into the main ring; the rest waits. It packs from a queue
//! in memory of the staged records not yet framed (`Unframed`), not by
//! reading the staging ring back, and starts each frame's write-back as
//! soon as it is written. Frames that each start a block share one
//! `fdatasync` (up to `framing::FRAMES_PER_SYNC`): an insert's, if one
//! waits for room in the staging ring (it syncs while the framer packs
//! on), else the framer's; open wipes what a power cut kept after a lost
//! frame (`ring::recovery::wipe_orphans`). Nothing is rewritten: the
//! staging ring wraps only over records already in a durable frame,
//! which also bounds the queue. Readers (`read`) merge the frames with
//! the records still staged. Both rings recover on open as raw stores
//! do; what is staged after the newest frame's last record is what is
//! left to frame.
//!
//! Lock order: `writer` (one insert, delete or reset at a time), then
//! `framing` (one framing at a time; it holds the writer's codec), then
//! `settling`, then the main ring's writer, then `state`, then the
//! staging ring's index. The framer never takes `writer`.

pub(crate) mod frame_cache;
mod framing;
mod queue;
mod read;
mod stage;
mod truncate;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use crate::background::{self, Job, JobHandle, Waker};
pub(crate) use crate::config::STAGING;
use crate::config::staging_blocks;
use crate::durability::BackgroundFault;
use crate::encoding::FrameCodec;
use crate::encoding::frame::{FILL, max_record};
use crate::encoding::split::Template;
use crate::error::{Error, Result};
use crate::format::{BLOCK_HEADER_SIZE, DataType, OBJECT_HEADER_SIZE};
use crate::lock::mutex_lock;
use crate::ring::{FrameSink, Ring};
use crate::stats::Compression;

use queue::{StagedBatch, Unframed};
pub(crate) use read::FramedRecords;

/// Frame payload bytes before the tombstones: the record count.
const COUNT_SIZE: usize = 4;

/// A compressed store's staging ring and framer (the main ring is the
/// store's, passed in by the `Store` that owns this).
#[derive(Debug)]
pub(crate) struct Compressed {
    /// Dropped first: stops the framer (waiting for a round under way) before the rings go.
    framer: Framer,
    pub(crate) shared: Arc<Shared>,
}

/// The framer: a job on the engine's background workers (`background`),
/// woken by inserts; dropping it stops it and waits for a round under way.
#[derive(Debug)]
struct Framer {
    shared: Arc<Shared>,
    job: Option<JobHandle>,
}

impl Drop for Framer {
    fn drop(&mut self) {
        mutex_lock(&self.shared.state).stop = true;
        self.shared.progress.notify_all();
        if let Some(job) = self.job.take() {
            job.stop();
        }
    }
}

/// The framer's job holds its store weakly: the store owns the job.
struct FramerJob(std::sync::Weak<Shared>);

impl Job for FramerJob {
    fn run(&self) -> Option<std::time::Duration> {
        if let Some(shared) = self.0.upgrade() {
            shared.framer_round();
        }
        None
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
    pub(crate) staging: Ring,
    /// Appends frames to the main ring (the framer cannot hold its `Ring`).
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
    /// One `settle_written` at a time, so that frames are published in
    /// the order they were written.
    settling: Mutex<()>,
    /// What is staged and not yet framed, and the framer's round.
    state: Mutex<Unframed>,
    /// Wakes the framer for a round (unset: no framer, read-only).
    wake: OnceLock<Waker>,
    /// Signalled after each frame and each round of the framer.
    progress: Condvar,
    /// A failure of the framer, reported by the next insert.
    failed: BackgroundFault,
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

pub(crate) fn frame_error(e: crate::encoding::FrameError) -> Error {
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
    ) -> Result<crate::encoding::columns::BodyView<'c>> {
        let view = codec.inflate(self.frame).map_err(frame_error)?;
        self.check_count(view.len())?;
        Ok(view)
    }

    /// Every record of the frame rebuilt into `out` with `codec`; their
    /// count must be the object's.
    pub(crate) fn unpack(
        &self,
        codec: &mut FrameCodec,
        out: &mut crate::encoding::columns::Unpacked,
    ) -> Result<()> {
        codec.unpack(self.frame, out).map_err(frame_error)?;
        self.check_count(out.len())
    }

    pub(crate) fn check_count(&self, count: usize) -> Result<()> {
        if count != self.count {
            return Err(Error::Corrupt(format!(
                "compressed frame holds {count} records, its object says {}",
                self.count
            )));
        }
        Ok(())
    }

    pub(crate) fn deleted(&self, i: usize) -> bool {
        tombstoned(self.tombstones, i)
    }
}

/// Whether record `i`'s bit is set in a frame's tombstones.
fn tombstoned(tombstones: &[u8], i: usize) -> bool {
    tombstones
        .get(i / 8)
        .is_some_and(|b| b & (1 << (i % 8)) != 0)
}

impl Compressed {
    /// Sets up the compressed part of `main` (just opened and recovered)
    /// around its opened staging ring; without a sink (read-only) there
    /// is no framer.
    pub(crate) fn start(main: &Ring, staging: Ring, writable: bool) -> Result<Compressed> {
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
            settling: Mutex::new(()),
            template: Mutex::new(None),
            state: Mutex::new(Unframed::default()),
            wake: OnceLock::new(),
            progress: Condvar::new(),
            failed: BackgroundFault::new("framing"),
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
            max_frame: main.max_object_size(),
            frame_records: Default::default(),
            staging,
            last_framed: AtomicI64::new(0),
            measured: Measured::default(),
        };
        let last = match main.range(i64::MIN, i64::MAX, true).limit(1).next() {
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
            .range(last.saturating_add(1), i64::MAX, false)
            .collect_all()?;
        for r in &staged {
            unframed.queue_one(r.timestamp(), r.handle.block_num, &r.data);
        }
        let staged = shared.staging.stats().newest_timestamp.unwrap_or(0);
        shared.newest = AtomicI64::new(staged.max(last));
        *mutex_lock(&shared.state) = unframed;
        let shared = Arc::new(shared);
        let job = writable.then(|| {
            let job = background::register(FramerJob(Arc::downgrade(&shared)), None);
            let _ = shared.wake.set(job.waker());
            job
        });
        Ok(Compressed {
            framer: Framer {
                shared: Arc::clone(&shared),
                job,
            },
            shared,
        })
    }

    /// Stops the framer (what it left staged stays staged) and hands back
    /// the staging ring.
    pub(crate) fn stop(self) -> Result<Ring> {
        let Compressed { framer, shared } = self;
        drop(framer);
        let shared = Arc::try_unwrap(shared)
            .map_err(|_| Error::InUse("the staging ring of a compressed store".into()))?;
        Ok(shared.staging)
    }

    /// Empties both rings (the caller is the main ring's store).
    pub(crate) fn reset(&self, main: &Ring) -> Result<()> {
        let _writer = mutex_lock(&self.shared.writer);
        let _framing = mutex_lock(&self.shared.framing);
        let out = main.reset().and(self.shared.staging.reset());
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
            bytes_per_reading: frame_bytes as f64 / records.max(1) as f64,
            // Frames fill a block each, or share one (a small store's):
            // counted by bytes, with a tenth of each block left unfilled.
            readings_per_block: records as f64
                * ((self.shared.staging.block_size() as usize - BLOCK_HEADER_SIZE) as f64 * FILL)
                / frame_bytes as f64,
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
        let raw = (0..view.len()).map(|i| cost(view.record_len(i))).sum();
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
