//! `FramedStore`: the compressed encoding built from two raw rings, the
//! plan of docs/ARCHITECTURE.md ("Seams for later work"). Not yet what
//! `Store` or the server use: it is here to measure the encoding end to
//! end (readings kept per MiB of footprint, with the staging writes) and
//! to grow the store's compressed path from.
//!
//! * The main ring (`dir/name`) holds frames as objects: each object's
//!   timestamp is its first record's, its payload `count` (u32), the
//!   tombstone bytes (`ceil(count / 8)`, reserved for deletes), then the
//!   zstd frame, sized to fill one block.
//! * The staging ring (`dir/name/staging`) receives every record first,
//!   as a raw object: a put is a raw put, with its durability.
//! * Once a frame's worth or more is staged past the last framed record,
//!   full frames are made of it and put into the main ring; the rest stays
//!   staged for the next. Nothing is rewritten: the staging ring wraps
//!   over records already framed (each put into the main ring is durable
//!   under `always` before that can happen), and never over one that is
//!   not (framing comes first).
//!
//! Framing runs on a thread of its own (the "framer"), so an insert costs
//! a raw put into the staging ring; only when the staging ring is about
//! to fill does an insert frame by itself.
//!
//! Both rings recover on open as raw stores do; the records staged after
//! the main ring's last framed one are what is left to frame. Nothing here
//! writes a byte the raw engine does not.
//!
//! Lock order: `writer` (one insert or reset at a time), then `framing`
//! (one framing at a time; it holds the writer's codec), then `state`.
//! The framer takes `framing` and `state`, never `writer`.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::FrameCodec;
use crate::durability::SyncPolicy;
use crate::error::{Error, Result};
use crate::format::{DataType, first_block_capacity};
use crate::lock::mutex_lock;
use crate::{Config, Store};

/// The staged records not yet framed.
#[derive(Debug, Default)]
struct Unframed {
    /// Their bytes (payloads and object headers).
    bytes: u64,
    /// The staging block of the first of them.
    first_block: Option<u32>,
    /// `bytes` at which to try framing next: after a try that left a
    /// part-frame staged, only once more has come.
    next_try: u64,
}

/// Name of the staging ring inside the store's directory.
pub const STAGING: &str = "staging";

/// Frame payload bytes before the frame: the record count.
const COUNT_SIZE: usize = 4;

/// A compressed store over two raw rings; see the module doc.
#[derive(Debug)]
pub struct FramedStore {
    /// Dropped first: stops and joins the framer before the rings go.
    framer: Framer,
    shared: Arc<Shared>,
}

/// The framer thread; dropping it stops it and waits for it.
#[derive(Debug)]
struct Framer {
    shared: Arc<Shared>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Framer {
    fn drop(&mut self) {
        mutex_lock(&self.shared.signal).stop = true;
        self.shared.wake.notify_all();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

#[derive(Debug)]
struct Shared {
    main: Store,
    staging: Store,
    data_type: DataType,
    /// One insert or reset at a time.
    writer: Mutex<()>,
    /// One framing at a time, with the codec it packs with (readers make
    /// their own).
    framing: Mutex<FrameCodec>,
    /// What is staged and not yet framed.
    state: Mutex<Unframed>,
    /// Wakes the framer: whether a round is wanted, or it must stop.
    signal: Mutex<Signal>,
    wake: Condvar,
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
}

#[derive(Debug, Default)]
struct Signal {
    wanted: bool,
    stop: bool,
}

fn frame_error(e: super::FrameError) -> Error {
    Error::Corrupt(format!("compressed frame: {e}"))
}

impl FramedStore {
    /// Creates `dir/name` with a main ring of `config` (its data type is
    /// the records') and a staging ring of `staging_blocks` blocks.
    pub fn create(
        dir: impl AsRef<Path>,
        name: &str,
        config: Config,
        staging_blocks: u32,
        sync: SyncPolicy,
    ) -> Result<FramedStore> {
        let dir = dir.as_ref();
        let data_type = config.data_type;
        let main = Store::create_with(
            dir,
            name,
            Config {
                data_type: DataType::Binary,
                ..config
            },
            sync,
        )?;
        let staging = Store::create_with(
            main.path(),
            STAGING,
            Config {
                num_blocks: staging_blocks,
                data_type: DataType::Binary,
                ..config
            },
            sync,
        )?;
        FramedStore::assemble(main, staging, data_type)
    }

    /// Opens (and recovers) a store made by `create`.
    pub fn open(
        dir: impl AsRef<Path>,
        name: &str,
        data_type: DataType,
        sync: SyncPolicy,
    ) -> Result<FramedStore> {
        let main = Store::open_with(dir, name, sync)?;
        let staging = Store::open_with(main.path(), STAGING, sync)?;
        FramedStore::assemble(main, staging, data_type)
    }

    fn assemble(main: Store, staging: Store, data_type: DataType) -> Result<FramedStore> {
        let bs = main.block_size() as u64;
        let staging_bytes = staging.stats().capacity_bytes;
        let max_body = (staging_bytes as usize * 2).max(1 << 20);
        let stage_bytes = (staging_bytes / 2).max(bs);
        let shared = Shared {
            framing: Mutex::new(FrameCodec::new(max_body).map_err(frame_error)?),
            writer: Mutex::new(()),
            state: Mutex::new(Unframed::default()),
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
            failed: Mutex::new(None),
            newest: AtomicI64::new(0),
            max_body,
            // Frame once half the staging ring waits: room for the batch
            // that crosses the mark; at most all of it but two blocks
            // (the raw ring's packing slack).
            stage_bytes,
            stage_max: staging_bytes.saturating_sub(2 * bs),
            main,
            staging,
            data_type,
            last_framed: AtomicI64::new(0),
        };
        let last = match shared.main.newest(1)?.pop() {
            Some(frame) => shared.last_of(&frame.data)?,
            None => 0,
        };
        shared.last_framed.store(last, Ordering::Relaxed);
        let mut unframed = Unframed {
            next_try: stage_bytes,
            ..Unframed::default()
        };
        for rec in shared
            .staging
            .iter_range(last.saturating_add(1), i64::MAX)
            .with_data(false)
        {
            let rec = rec?;
            unframed.first_block.get_or_insert(rec.handle.block_num);
            unframed.bytes += cost(rec.handle.size as usize);
        }
        let staged = shared.staging.stats().newest_timestamp.unwrap_or(0);
        shared.newest.store(staged.max(last), Ordering::Relaxed);
        *mutex_lock(&shared.state) = unframed;
        let shared = Arc::new(shared);
        let for_framer = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("tsstore-framer".into())
            .spawn(move || for_framer.run_framer())?;
        Ok(FramedStore {
            framer: Framer {
                shared: Arc::clone(&shared),
                handle: Some(handle),
            },
            shared,
        })
    }

    /// The newest record's timestamp (0 when empty).
    pub fn newest_timestamp(&self) -> i64 {
        self.shared.newest.load(Ordering::Relaxed)
    }

    /// Inserts `payload` at `timestamp` (after every stored one).
    pub fn put(&self, timestamp: i64, payload: &[u8]) -> Result<()> {
        self.shared.put_many(&[(timestamp, payload)])
    }

    /// Inserts a batch: checked whole, then staged with raw `put_many`s;
    /// the framer is woken once a frame's worth is staged. An insert
    /// frames by itself only before the staging ring could wrap over a
    /// record not yet framed, or for a record too large to stage.
    pub fn put_many<'a>(&self, items: impl IntoIterator<Item = (i64, &'a [u8])>) -> Result<()> {
        let items: Vec<(i64, &[u8])> = items.into_iter().collect();
        self.shared.put_many(&items)
    }

    /// Frames every staged record not yet framed (a last frame as full
    /// as they make it), on this thread.
    pub fn frame_staged(&self) -> Result<()> {
        let mut codec = mutex_lock(&self.shared.framing);
        self.shared.frame(&mut codec, true)
    }

    /// Calls `each` with every record in `from..=to`, oldest first.
    pub fn for_each(&self, from: i64, to: i64, each: impl FnMut(i64, &[u8])) -> Result<()> {
        self.shared.for_each(from, to, each)
    }

    /// The record at exactly `timestamp`.
    pub fn get_by_time(&self, timestamp: i64) -> Result<Vec<u8>> {
        self.shared.get_by_time(timestamp)
    }

    /// Empties both rings.
    pub fn reset(&self) -> Result<()> {
        self.shared.reset()
    }

    /// Bytes of ring in use: the main ring's and the staging ring's.
    pub fn bytes_used(&self) -> u64 {
        self.shared.main.stats().bytes_used + self.shared.staging.stats().bytes_used
    }

    /// Checkpoints and syncs both rings.
    pub fn sync(&self) -> Result<()> {
        self.shared.main.sync()?;
        self.shared.staging.sync()
    }

    /// Stops the framer (what it left staged stays in the staging ring),
    /// then closes both rings.
    pub fn close(self) -> Result<()> {
        let FramedStore { framer, shared } = self;
        drop(framer);
        let shared = Arc::try_unwrap(shared).map_err(|_| Error::InUse("a framed store".into()))?;
        shared.staging.close()?;
        shared.main.close()
    }

    /// Releases both rings as a killed process would (for recovery tests).
    #[doc(hidden)]
    pub fn abandon(self) {
        let FramedStore { framer, shared } = self;
        drop(framer);
        if let Ok(shared) = Arc::try_unwrap(shared) {
            shared.staging.abandon();
            shared.main.abandon();
        }
    }
}

impl Shared {
    /// The newest timestamp of the frame object `payload`.
    fn last_of(&self, payload: &[u8]) -> Result<i64> {
        let frame = frame_of(payload)?;
        let mut codec = mutex_lock(&self.framing);
        let view = codec.inflate(frame).map_err(frame_error)?;
        Ok(*view.timestamps().last().unwrap_or(&0))
    }

    /// See `FramedStore::put_many`.
    fn put_many(&self, items: &[(i64, &[u8])]) -> Result<()> {
        let _writer = mutex_lock(&self.writer);
        if let Some(why) = mutex_lock(&self.failed).take() {
            return Err(Error::Io(std::io::Error::other(format!(
                "background framing failed: {why}"
            ))));
        }
        let mut prev = self.newest.load(Ordering::Relaxed);
        for &(ts, p) in items {
            crate::payload::validate(self.data_type, p)?;
            crate::store::check_timestamp(ts, prev)?;
            prev = ts;
        }
        let chunk_max = self.stage_max - self.stage_bytes;
        let mut i = 0;
        while i < items.len() {
            if cost(items[i].1.len()) > chunk_max {
                let mut codec = mutex_lock(&self.framing);
                self.frame(&mut codec, true)?;
                self.put_frames(&mut codec, &items[i..i + 1], true)?;
                self.newest.store(items[i].0, Ordering::Relaxed);
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
            // first unframed record to the head, plus what the chunk can
            // take (packing can leave up to half of each block unused).
            // Only this insert stages, and framing only frees blocks.
            let unframed = self.unframed_blocks(&mutex_lock(&self.state));
            if unframed + blocks_for_chunk(bytes, self.staging.block_size())
                >= self.staging.config().num_blocks
            {
                let mut codec = mutex_lock(&self.framing);
                self.frame(&mut codec, true)?;
            }
            let handles = self
                .staging
                .put_many(items[i..end].iter().map(|&(ts, p)| (Some(ts), p)))?;
            self.newest.store(items[end - 1].0, Ordering::Relaxed);
            i = end;
            let mut state = mutex_lock(&self.state);
            if let Some(h) = handles.first() {
                state.first_block.get_or_insert(h.block_num);
            }
            state.bytes += bytes;
            if state.bytes >= state.next_try {
                // Not again until this round is done.
                state.next_try = u64::MAX;
                drop(state);
                mutex_lock(&self.signal).wanted = true;
                self.wake.notify_one();
            }
        }
        Ok(())
    }

    /// The framer: a round of full frames each time it is woken.
    fn run_framer(&self) {
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
            }
            let mut codec = mutex_lock(&self.framing);
            if let Err(e) = self.frame(&mut codec, false) {
                *mutex_lock(&self.failed) = Some(e.to_string());
            }
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
    fn frame(&self, codec: &mut FrameCodec, all: bool) -> Result<()> {
        let after = self.last_framed.load(Ordering::Relaxed);
        let staged: Vec<crate::record::Record> = self
            .staging
            .iter_range(after.saturating_add(1), i64::MAX)
            .collect::<Result<_>>()?;
        let refs: Vec<(i64, &[u8])> = staged
            .iter()
            .map(|r| (r.timestamp(), r.data.as_slice()))
            .collect();
        let framed = self.put_frames(codec, &refs, all)?;
        let framed_bytes: u64 = refs[..framed].iter().map(|(_, p)| cost(p.len())).sum();
        let mut state = mutex_lock(&self.state);
        state.bytes = state.bytes.saturating_sub(framed_bytes);
        state.first_block = match staged.get(framed) {
            Some(r) => Some(r.handle.block_num),
            // Every record of the snapshot is framed: the first unframed
            // one, if any, came after it (inserts wait for `state`).
            None => self
                .staging
                .iter_range(
                    self.last_framed.load(Ordering::Relaxed).saturating_add(1),
                    i64::MAX,
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
    /// records went in.
    fn put_frames(
        &self,
        codec: &mut FrameCodec,
        refs: &[(i64, &[u8])],
        last_partial: bool,
    ) -> Result<usize> {
        let columnar = matches!(self.data_type, DataType::Json | DataType::Schema);
        let room = first_block_capacity(self.main.block_size()) as usize - COUNT_SIZE;
        let mut i = 0;
        let mut payload = Vec::new();
        while i < refs.len() {
            // The tombstones take a byte per 8 records of the frame.
            let mut fit = room;
            let (n, frame) = loop {
                let (n, frame) = codec.pack(&refs[i..], columnar, fit).map_err(frame_error)?;
                if n == 1 || frame.len() + n.div_ceil(8) <= room {
                    break (n, frame);
                }
                fit = room - n.div_ceil(8);
            };
            let full = frame.len() as f64 >= fit as f64 * super::frame::FILL;
            if i + n == refs.len() && !full && !last_partial {
                break;
            }
            payload.clear();
            payload.extend_from_slice(&(n as u32).to_le_bytes());
            payload.resize(COUNT_SIZE + n.div_ceil(8), 0);
            payload.extend_from_slice(&frame);
            self.main.put(refs[i].0, &payload)?;
            i += n;
            self.last_framed.store(refs[i - 1].0, Ordering::Relaxed);
        }
        Ok(i)
    }

    /// Calls `each` with every record in `from..=to`, oldest first.
    ///
    /// The staged records are read first (at most the staging ring), then
    /// the frames: a record framed meanwhile is then found in its frame,
    /// and one read both ways is given once.
    fn for_each(&self, from: i64, to: i64, mut each: impl FnMut(i64, &[u8])) -> Result<()> {
        let staged: Vec<(i64, Vec<u8>)> = self
            .staging
            .iter_range(from, to)
            .map(|r| r.map(|r| (r.timestamp(), r.data)))
            .collect::<Result<_>>()?;
        // The frame that holds `from` starts at or before it.
        let start = self
            .main
            .iter_range_rev(i64::MIN, from)
            .with_data(false)
            .limit(1)
            .collect_all()?
            .first()
            .map_or(from, |r| r.timestamp());
        let mut codec = FrameCodec::new(self.max_body).map_err(frame_error)?;
        let mut record = Vec::new();
        let mut last = i64::MIN;
        for frame in self.main.iter_range(start, to) {
            let frame = frame?;
            let view = codec.inflate(frame_of(&frame.data)?).map_err(frame_error)?;
            for (i, &ts) in view.timestamps().iter().enumerate() {
                if ts >= from && ts <= to {
                    record.clear();
                    view.write_record(i, &mut record);
                    each(ts, &record);
                }
                last = last.max(ts);
            }
        }
        for (ts, data) in staged {
            if ts > last {
                each(ts, &data);
            }
        }
        Ok(())
    }

    /// The record at exactly `timestamp`.
    fn get_by_time(&self, timestamp: i64) -> Result<Vec<u8>> {
        match self.staging.get_by_time(timestamp) {
            Ok(rec) => return Ok(rec.data),
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let frame = self
            .main
            .iter_range_rev(i64::MIN, timestamp)
            .limit(1)
            .collect_all()?
            .pop()
            .ok_or(Error::NotFound(timestamp))?;
        let mut codec = FrameCodec::new(self.max_body).map_err(frame_error)?;
        let view = codec.inflate(frame_of(&frame.data)?).map_err(frame_error)?;
        let i = view
            .timestamps()
            .binary_search(&timestamp)
            .map_err(|_| Error::NotFound(timestamp))?;
        let mut out = Vec::new();
        view.write_record(i, &mut out);
        Ok(out)
    }

    /// See `FramedStore::reset`.
    fn reset(&self) -> Result<()> {
        let _writer = mutex_lock(&self.writer);
        let _framing = mutex_lock(&self.framing);
        self.main.reset()?;
        self.staging.reset()?;
        self.last_framed.store(0, Ordering::Relaxed);
        self.newest.store(0, Ordering::Relaxed);
        *mutex_lock(&self.state) = Unframed {
            next_try: self.stage_bytes,
            ..Unframed::default()
        };
        Ok(())
    }
}

/// Blocks a chunk of staged records of `bytes` (payloads and headers)
/// can take at most: packing leaves less than half a block unused only
/// when records are under half a block, so twice the bytes, plus one.
fn blocks_for_chunk(bytes: u64, block_size: u32) -> u32 {
    (2 * bytes).div_ceil(block_size as u64) as u32 + 1
}

/// What a staged record takes in the staging ring: payload and header.
fn cost(len: usize) -> u64 {
    (len + crate::format::OBJECT_HEADER_SIZE) as u64
}

/// The frame inside a frame object's payload.
fn frame_of(payload: &[u8]) -> Result<&[u8]> {
    let count = payload
        .get(..COUNT_SIZE)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(|| Error::Corrupt("frame object shorter than its count".into()))?;
    payload
        .get(COUNT_SIZE + count.div_ceil(8)..)
        .ok_or_else(|| Error::Corrupt("frame object shorter than its tombstones".into()))
}
