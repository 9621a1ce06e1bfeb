//! Rollups: a store's history at coarser resolutions, each in a
//! fixed-size ring of its own inside the store's directory
//! (`rollups/<window>/`, a plain JSON store beside a `rollup.json`), so a
//! year of hourly averages outlives the raw readings it came from.
//!
//! One background job per store (on the engine's shared workers, woken
//! by an insert that closes a window or by an eighth of raw inserted)
//! takes the raw records the rollups have not seen, once for all of
//! them (as inserts handed them over, parsed, or read back from raw:
//! `handoff`), adds each to every rollup's open window (`Feed`, kept in
//! memory) with `aggregate::Aggregator`, the code windowed queries run,
//! and writes the windows that close: a row and a query over the same raw
//! records agree byte for byte. A rollup whose window is a multiple of a
//! finer one's takes that one's closed windows instead of whole records
//! (`aggregate::chain`), so the finest rollup costs most and the others
//! little. Inserts do not wait for it unless it lags
//! half a raw ring behind (`make_room`), so raw never drops a record a
//! rollup has not seen. Reads join the rows with the open windows, so
//! they never depend on the job's timing.
//!
//! Invariant: a rollup's progress is its ring's newest row; nothing else
//! is persisted. At open, rows past the raw ring's last closed window
//! (which a power cut can leave when raw lost its tail) are cut, and
//! the job recomputes every window after the newest row from raw: none
//! is written twice, and under `SyncPolicy::Always` none is missing.
//! Rows are never changed once written: a record deleted after the job
//! took it (at once, if its insert handed it over) stays counted, and
//! records cannot arrive late (timestamps strictly increase). The rings
//! live where `home` says: the store's directory, or a caller's
//! `RollupFiles`.

mod catch_up;
mod choose;
mod handoff;
mod home;
mod row;
mod spec;

use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crate::aggregate::{AggFn, AggSpec, Window};
use crate::background::{self, JobHandle};
use crate::config::Config;
use crate::durability::SyncPolicy;
use crate::error::{Error, Result};
use crate::format::{DataType, Encoding};
use crate::lock::{mutex_lock, read_lock, write_lock};
use crate::store::{Core, Store};
use catch_up::{Chained, Feed};
pub use choose::Resolution;
pub(crate) use choose::{Candidates, choose};
pub(crate) use handoff::Batch;
use handoff::{Handoff, MAX_HANDOFF_BYTES, Offered};
use home::Home;
pub use home::{RollupFiles, RollupRing};
use spec::RollupFile;
pub use spec::{
    DEFAULT_ROLLUP_FUNCTIONS, Keep, MAX_ROLLUPS, MIN_ROLLUP_BLOCKS, RollupConfig, RollupPlan,
    label as window_label,
};

/// The directory of a store's rollup rings, inside the store's.
pub const ROLLUPS_DIR: &str = "rollups";

/// What `Store::rollups` reports of one rollup.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupInfo {
    /// The window, as users write it (`1h`).
    pub window: String,
    pub window_ns: i64,
    /// Functions of numeric fields; other fields keep their last value.
    pub functions: Vec<AggFn>,
    pub num_blocks: u32,
    /// The ring's footprint on disk, fixed at creation.
    pub capacity_bytes: u64,
    pub bytes_used: u64,
    /// End of the oldest and newest window the ring holds.
    pub oldest_timestamp: Option<i64>,
    pub newest_timestamp: Option<i64>,
    /// Every window ending at or before this is written (or held no
    /// record); later ones are aggregated from raw when read.
    pub written_to: Option<i64>,
    /// The last failure of the job writing this rollup, until it next
    /// succeeds (a full disk, say).
    pub error: Option<String>,
}

/// How far a rollup is written, and the job's place in raw.
#[derive(Debug)]
struct Progress {
    /// Windows ending at or before this are in the ring or held no
    /// record; `i64::MIN`: none yet. Moved on after the rows it covers.
    done_to: i64,
    /// The open window, when the job has run since open.
    feed: Option<Feed>,
    /// The job's own copy of a feed fed from a finer rollup's windows, to
    /// go on so (`feed` has the finer rollup's open window added).
    chained: Option<Chained>,
}

/// One rollup: its ring and how far it has been written.
#[derive(Debug)]
struct Rollup {
    window_ns: i64,
    label: String,
    functions: Vec<AggFn>,
    spec: AggSpec,
    /// `None` once removed (a read or the job may still hold the rollup).
    ring: RwLock<Option<Store>>,
    progress: Mutex<Progress>,
    /// Held by whatever writes the ring: the job, a reset, a truncate.
    writing: Mutex<()>,
    fault: Mutex<Option<String>>,
}

impl Rollup {
    fn new(file: &RollupFile, ring: Store) -> Result<Rollup> {
        let functions = file.functions()?;
        Ok(Rollup {
            window_ns: file.window_ns,
            label: file.window.clone(),
            spec: AggSpec::with_default(file.window_ns, functions.clone()),
            functions,
            ring: RwLock::new(Some(ring)),
            progress: Mutex::new(Progress {
                done_to: i64::MIN,
                feed: None,
                chained: None,
            }),
            writing: Mutex::new(()),
            fault: Mutex::new(None),
        })
    }

    /// Start of the window holding `ts` (`i64::MIN` stays itself).
    fn window_start(&self, ts: i64) -> i64 {
        crate::aggregate::window_start(ts, self.window_ns)
    }

    fn done_to(&self) -> i64 {
        mutex_lock(&self.progress).done_to
    }

    fn info(&self) -> Option<RollupInfo> {
        let ring = read_lock(&self.ring);
        let stats = ring.as_ref()?.stats();
        let done = self.done_to();
        Some(RollupInfo {
            window: self.label.clone(),
            window_ns: self.window_ns,
            functions: self.functions.clone(),
            num_blocks: stats.num_blocks,
            capacity_bytes: stats.capacity_bytes,
            bytes_used: stats.bytes_used,
            oldest_timestamp: stats.oldest_timestamp,
            newest_timestamp: stats.newest_timestamp.filter(|&n| n <= done),
            written_to: (done != i64::MIN).then_some(done),
            error: mutex_lock(&self.fault).clone(),
        })
    }
}

/// What the store and its job share.
#[derive(Debug)]
struct Shared {
    /// Where the rings are.
    home: Home,
    sync: SyncPolicy,
    read_only: bool,
    list: RwLock<Vec<Arc<Rollup>>>,
    /// An insert at or past this closes a window of some rollup: it wakes
    /// the job. `i64::MAX` without rollups.
    wake_at: AtomicI64,
    /// Bytes inserted (payloads and object headers) since the job last
    /// began a round: raw must not wrap past records the feeds have not
    /// seen. An eighth of raw's capacity wakes the job, half of it makes
    /// the inserter catch up itself first (`make_room`), and a batch is
    /// written a quarter of it at a time (`batch_bytes`).
    unfed: AtomicU64,
    /// The raw ring's capacity in bytes (`u64::MAX` without rollups).
    raw_bytes: AtomicU64,
    /// Records inserts handed to the job, parsed (`handoff`).
    handoff: Mutex<Handoff>,
}

impl Shared {
    /// The handoff's bound: half the raw ring, at most
    /// `MAX_HANDOFF_BYTES`.
    fn handoff_limit(&self) -> usize {
        let half = self.raw_bytes.load(Ordering::Relaxed) / 2;
        usize::try_from(half).map_or(MAX_HANDOFF_BYTES, |h| h.min(MAX_HANDOFF_BYTES))
    }
}

/// A store's rollups and the job that writes them.
#[derive(Debug)]
pub(crate) struct Rollups {
    shared: Arc<Shared>,
    /// Started with the first rollup; stopped by `close`.
    job: OnceLock<JobHandle>,
}

impl Rollups {
    /// None, and nowhere to keep any (a store being assembled, or one on
    /// caller-given files).
    pub(crate) fn none() -> Rollups {
        Rollups::empty(Home::Nowhere, SyncPolicy::Never, true)
    }

    fn empty(home: Home, sync: SyncPolicy, read_only: bool) -> Rollups {
        Rollups {
            shared: Arc::new(Shared {
                home,
                sync,
                read_only,
                list: RwLock::new(Vec::new()),
                wake_at: AtomicI64::new(i64::MAX),
                unfed: AtomicU64::new(0),
                raw_bytes: AtomicU64::new(u64::MAX),
                handoff: Mutex::new(Handoff::default()),
            }),
            job: OnceLock::new(),
        }
    }

    /// Opens the rollups of the store at `path`, or on `files` for a
    /// store on caller-given files (raw already recovered): cuts rows past
    /// raw's last closed window, and starts the job, which writes what is
    /// missing.
    pub(crate) fn open(
        path: &Path,
        files: Option<Arc<dyn RollupFiles>>,
        core: &Core,
        read_only: bool,
    ) -> Result<Rollups> {
        let home = match files {
            Some(files) => Home::Files(files),
            None if path.as_os_str().is_empty() => Home::Nowhere,
            None => Home::Dir(path.join(ROLLUPS_DIR)),
        };
        let rollups = Rollups::empty(home, core.main.sync_policy(), read_only);
        let newest = core.newest_timestamp();
        let mut list = Vec::new();
        for (file, ring) in rollups
            .shared
            .home
            .open_all(rollups.shared.sync, read_only)?
        {
            let rollup = Rollup::new(&file, ring)?;
            rollup.recover(newest)?;
            list.push(Arc::new(rollup));
        }
        let any = !list.is_empty();
        list.sort_by_key(|r| r.window_ns);
        *write_lock(&rollups.shared.list) = list;
        if any {
            rollups.start(core);
        }
        Ok(rollups)
    }

    /// Starts the job (once) and runs it now.
    fn start(&self, core: &Core) {
        if self.shared.read_only {
            return;
        }
        let capacity = core.main.stats().capacity_bytes;
        self.shared.raw_bytes.store(capacity, Ordering::Relaxed);
        let job = self.job.get_or_init(|| {
            background::register(
                catch_up::CatchUp {
                    shared: Arc::clone(&self.shared),
                    core: core.clone(),
                },
                None,
            )
        });
        self.shared.wake_at.store(i64::MIN, Ordering::Relaxed);
        job.waker().wake();
    }

    /// Called after every insert with the newest timestamp it wrote and
    /// the bytes it took (`OBJECT_HEADER_SIZE` a record, plus payloads).
    pub(crate) fn wrote(&self, newest: i64, bytes: u64) {
        let Some(job) = self.job.get() else {
            return;
        };
        let shared = &self.shared;
        let unfed = shared.unfed.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if newest >= shared.wake_at.load(Ordering::Relaxed)
            || unfed >= shared.raw_bytes.load(Ordering::Relaxed) / 8
        {
            job.waker().wake();
        }
    }

    /// Called before an insert of `bytes`: when the job has fallen half a
    /// raw ring behind, the inserter writes the rollups' rows itself, so
    /// raw never drops a record before every rollup has it. A failure is
    /// kept for `RollupInfo::error`, not the insert's.
    pub(crate) fn make_room(&self, core: &Core, bytes: u64) {
        if self.job.get().is_none() {
            return;
        }
        let unfed = self.shared.unfed.load(Ordering::Relaxed);
        if unfed.saturating_add(bytes) > self.shared.raw_bytes.load(Ordering::Relaxed) / 2 {
            let _ = catch_up::all(&self.shared, core);
        }
    }

    /// An empty batch for an insert of `bytes` (payloads and headers) to
    /// fill and hand to the job, and the epoch it is of (read before the
    /// insert writes); `None` when this store's inserts hand nothing (not
    /// a plain JSON store, no job) or the queue has no room for it.
    pub(crate) fn handing(&self, core: &Core, bytes: u64) -> Option<(u64, Batch)> {
        self.job.get()?;
        // What a schema or compressed store keeps is not the JSON checked.
        if core.main.data_type() != DataType::Json || core.compressed.is_some() {
            return None;
        }
        // Parsed, a record takes about four times its bytes in raw.
        let room = usize::try_from(bytes.saturating_mul(4)).unwrap_or(usize::MAX);
        mutex_lock(&self.shared.handoff).start(room, self.shared.handoff_limit())
    }

    /// Hands the job the records an insert wrote after raw's record
    /// `after`; dropped (the job reads them back) when the epoch is over
    /// or the queue is full.
    pub(crate) fn hand(&self, epoch: u64, after: i64, batch: Batch) {
        let Some(job) = self.job.get() else {
            return;
        };
        let limit = self.shared.handoff_limit();
        let offered = mutex_lock(&self.shared.handoff).offer(epoch, after, batch, limit);
        if offered != (Offered::Kept { wake: false }) {
            job.waker().wake();
        }
    }

    /// Called after raw was reset or truncated, whether or not that
    /// failed: the batches handed before may not be raw's any more.
    pub(crate) fn raw_changed(&self) {
        mutex_lock(&self.shared.handoff).new_epoch();
    }

    /// The most bytes one insert may write with rollups to feed (`None`:
    /// none): a quarter of raw, so a batch larger than that is written in
    /// parts, with `make_room` before each.
    pub(crate) fn batch_bytes(&self) -> Option<u64> {
        self.job.get()?;
        Some((self.shared.raw_bytes.load(Ordering::Relaxed) / 4).max(1))
    }

    fn find(&self, window_ns: i64) -> Result<Arc<Rollup>> {
        read_lock(&self.shared.list)
            .iter()
            .find(|r| r.window_ns == window_ns)
            .cloned()
            .ok_or_else(|| Error::RollupNotFound(window_label(window_ns).unwrap_or_default()))
    }

    pub(crate) fn infos(&self) -> Vec<RollupInfo> {
        read_lock(&self.shared.list)
            .iter()
            .filter_map(|r| r.info())
            .collect()
    }

    pub(crate) fn add(&self, config: &RollupConfig, core: &Core) -> Result<RollupInfo> {
        let functions = config.checked_functions()?;
        let label = window_label(config.window_ns)?;
        if self.shared.read_only {
            return Err(Error::ReadOnly(core.main.name().to_string()));
        }
        if !matches!(core.main.data_type(), DataType::Json | DataType::Schema) {
            return Err(Error::InvalidConfig(format!(
                "only json and schema stores have rollups, not {} stores",
                core.main.data_type().as_str()
            )));
        }
        let mut list = write_lock(&self.shared.list);
        if list.iter().any(|r| r.window_ns == config.window_ns) {
            return Err(Error::RollupExists(label));
        }
        if list.len() >= MAX_ROLLUPS {
            return Err(Error::InvalidConfig(format!(
                "a store has at most {MAX_ROLLUPS} rollups"
            )));
        }
        let main = core.main.config();
        let ring_config = Config {
            num_blocks: Rollups::blocks(config, core),
            data_block_size: main.data_block_size,
            index_block_size: main.index_block_size,
            data_type: DataType::Json,
            encoding: Encoding::Raw,
        };
        let file = RollupFile::new(config.window_ns, &functions)?;
        let ring = self
            .shared
            .home
            .create(&file, ring_config, self.shared.sync)?;
        let rollup = Arc::new(Rollup::new(&file, ring)?);
        list.push(Arc::clone(&rollup));
        list.sort_by_key(|r| r.window_ns);
        drop(list);
        self.start(core);
        rollup
            .info()
            .ok_or_else(|| Error::RollupNotFound(rollup.label.clone()))
    }

    /// The blocks the ring of `config` takes in this store: `keep` at the
    /// size of a row made from the store's newest record.
    pub(crate) fn blocks(config: &RollupConfig, core: &Core) -> u32 {
        let block_size = core.main.config().data_block_size;
        config.blocks(block_size, catch_up::row_bytes(core, config))
    }

    pub(crate) fn remove(&self, window_ns: i64) -> Result<()> {
        let rollup = self.find(window_ns)?;
        if self.shared.read_only {
            return Err(Error::ReadOnly(rollup.label.clone()));
        }
        write_lock(&self.shared.list).retain(|r| !Arc::ptr_eq(r, &rollup));
        let _writing = mutex_lock(&rollup.writing);
        let Some(ring) = write_lock(&rollup.ring).take() else {
            return Ok(());
        };
        self.shared.home.remove(ring, &rollup.label)
    }

    /// The windows of the rollup of `window_ns` overlapping `[start,
    /// end]`, at most `limit`, oldest first (or newest first): its rows,
    /// and the windows past them, from the job's open window and the raw
    /// records it has not seen yet.
    pub(crate) fn windows(
        &self,
        window_ns: i64,
        core: &Core,
        (start, end): (i64, i64),
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<Window>> {
        let rollup = self.find(window_ns)?;
        let (done, feed) = {
            let progress = mutex_lock(&rollup.progress);
            (progress.done_to, progress.feed.clone())
        };
        let w = rollup.window_ns;
        // Past `done` rows may be half written: the feed answers there.
        let mut tail = Vec::new();
        let to = rollup.window_start(end).saturating_add(w).saturating_sub(1);
        if to >= done {
            let mut feed = match feed {
                Some(feed) => feed,
                None => Feed::start(&rollup, core, done)?,
            };
            let wanted = |win: &Window| win.end > done.max(start) && win.start <= end;
            let keep = if newest_first { usize::MAX } else { limit };
            feed.add(core, to, |win| {
                if tail.len() < keep && wanted(&win) {
                    tail.push(win);
                }
                Ok(())
            })?;
            if let Some(win) = feed.finish(core)
                && tail.len() < keep
                && wanted(&win)
            {
                tail.push(win);
            }
        }
        // A window [s, s + w) overlaps [start, end] when its end (its
        // row's timestamp) lies in (start, end + w].
        let (lo, hi) = (start.saturating_add(1), end.saturating_add(w).min(done));
        let rows = |out: &mut Vec<Window>| -> Result<()> {
            let left = limit.saturating_sub(out.len());
            if done == i64::MIN || lo > hi || left == 0 {
                return Ok(());
            }
            let ring = read_lock(&rollup.ring);
            let ring = ring
                .as_ref()
                .ok_or_else(|| Error::RollupNotFound(rollup.label.clone()))?;
            let records = match newest_first {
                true => ring.iter_range_rev(lo, hi),
                false => ring.iter_range(lo, hi),
            };
            for rec in records.limit(left) {
                let rec = rec?;
                out.push(row::decode(rec.timestamp(), w, &rec.data)?);
            }
            Ok(())
        };
        if newest_first {
            tail.reverse();
            tail.truncate(limit);
            rows(&mut tail)?;
            return Ok(tail);
        }
        let mut out = Vec::new();
        rows(&mut out)?;
        let left = limit - out.len().min(limit);
        out.extend(tail.into_iter().take(left));
        Ok(out)
    }

    /// Writes every window closed so far, on this thread.
    pub(crate) fn catch_up(&self, core: &Core) -> Result<()> {
        catch_up::all(&self.shared, core)
    }

    /// After the store's reset: empties every ring.
    pub(crate) fn reset(&self) -> Result<()> {
        let list = read_lock(&self.shared.list).clone();
        for rollup in list {
            let _writing = mutex_lock(&rollup.writing);
            if let Some(ring) = read_lock(&rollup.ring).as_ref() {
                ring.reset()?;
            }
            *mutex_lock(&rollup.progress) = Progress {
                done_to: i64::MIN,
                feed: None,
                chained: None,
            };
        }
        Ok(())
    }

    /// After the store was truncated after `cut` (its newest record now
    /// `newest`): cuts the rows of windows holding a removed record, or
    /// no longer closed. Older windows stay, raw's or not.
    pub(crate) fn truncate(&self, cut: i64, newest: Option<i64>) -> Result<()> {
        let list = read_lock(&self.shared.list).clone();
        for rollup in list {
            let _writing = mutex_lock(&rollup.writing);
            let kept = cut.saturating_add(1);
            let end = match newest {
                Some(n) => kept.min(rollup.window_start(n)),
                None => kept,
            };
            // A row at `e` is the window [e - w, e): it holds a removed
            // record when e - 1 > cut.
            rollup.cut_after(end)?;
        }
        self.shared.wake_at.store(i64::MIN, Ordering::Relaxed);
        Ok(())
    }

    /// Stops the job and closes every ring (before the store's own rings
    /// close: the job reads them).
    pub(crate) fn close(self) -> Result<()> {
        self.stop_job();
        let list = std::mem::take(&mut *write_lock(&self.shared.list));
        let mut out = Ok(());
        for rollup in list {
            if let Some(ring) = write_lock(&rollup.ring).take() {
                out = out.and(ring.close());
            }
        }
        out
    }

    /// As `close`, without checkpoints (what a killed process leaves).
    pub(crate) fn abandon(self) {
        self.stop_job();
        for rollup in std::mem::take(&mut *write_lock(&self.shared.list)) {
            if let Some(ring) = write_lock(&rollup.ring).take() {
                ring.abandon();
            }
        }
    }

    fn stop_job(&self) {
        if let Some(job) = self.job.get() {
            job.stop();
        }
    }
}

impl Rollup {
    /// Makes the ring agree with raw, whose newest record is `newest`:
    /// rows of windows not closed in raw go (a power cut can leave raw
    /// behind its rollups); the job writes the missing ones.
    fn recover(&self, newest: Option<i64>) -> Result<()> {
        // Raw is empty only when nothing of it survived (a power cut before
        // any sync, a reset the crash split from the rollups'): a ring
        // never drops its newest records. Its rollups go with it.
        let closed = newest.map_or(i64::MIN, |n| self.window_start(n));
        self.cut_after(closed)
    }

    /// Cuts every row of a window ending after `end`; the job writes them
    /// again from raw.
    fn cut_after(&self, end: i64) -> Result<()> {
        let ring = read_lock(&self.ring);
        let Some(ring) = ring.as_ref() else {
            return Ok(());
        };
        let mut last = ring.newest_timestamp();
        if let Some(row) = last
            && row > end
        {
            if !ring.is_read_only() {
                ring.truncate_after(end)?;
            }
            // Rows ran past `end`: every window ending by it is written (a
            // read-only ring keeps the rows past it, which reads skip).
            last = Some(self.window_start(end));
        }
        *mutex_lock(&self.progress) = Progress {
            done_to: last.unwrap_or(i64::MIN),
            feed: None,
            chained: None,
        };
        Ok(())
    }
}
