//! When inserts become durable: the sync policy, group commit for
//! `Always`, and the background flusher for `Interval`.
//!
//! Durability rests on the recovery scan: objects verify themselves, so
//! making an insert durable needs only `fdatasync` of the data file; the
//! pointers (meta, index) are made durable at checkpoints, which recovery
//! starts from.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::background::{Job, JobHandle};
use crate::error::{Error, Result};
use crate::io::StoreFile;
use crate::lock::mutex_lock;

/// When an acknowledged insert is on stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// An insert returns after an fsync covering it; concurrent inserts
    /// share one fsync (group commit).
    Always,
    /// Inserts return once handed to the OS; a background thread makes
    /// them durable (and checkpoints) at this interval. A process crash
    /// loses nothing acknowledged, a power cut at most one interval.
    Interval(Duration),
    /// The OS decides (tests, tmpfs).
    Never,
}

impl Default for SyncPolicy {
    /// `Interval(1 s)`, the server's default too.
    fn default() -> Self {
        SyncPolicy::Interval(Duration::from_millis(1000))
    }
}

impl SyncPolicy {
    /// Parses `always`, `never` or `interval` (with `interval_ms`, > 0).
    pub fn parse(name: &str, interval_ms: u64) -> Result<SyncPolicy> {
        match name {
            "always" => Ok(SyncPolicy::Always),
            "never" => Ok(SyncPolicy::Never),
            "interval" if interval_ms > 0 => {
                Ok(SyncPolicy::Interval(Duration::from_millis(interval_ms)))
            }
            "interval" => Err(Error::InvalidConfig(
                "sync interval must be at least 1 ms".into(),
            )),
            other => Err(Error::InvalidConfig(format!(
                "unknown sync policy '{other}' (expected always, interval or never)"
            ))),
        }
    }
}

/// Longest a group-commit leader waits for other writers to join its
/// fsync; it waits at most half as long as the last fsync took, so joining
/// never costs more than it saves.
const MAX_GATHER: Duration = Duration::from_millis(2);

/// Group commit: writers take a ticket after their write and wait until
/// an fsync that started after it has finished. Whoever finds no fsync
/// running leads one for everybody. Before it starts, the leader waits (at
/// most half the last fsync's time) for writers already mid-insert to take their tickets
/// and for as many tickets as there were writers about when the last fsync
/// ended: otherwise concurrent writers settle into two half-size groups
/// that alternate. A lone writer never waits.
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    state: Mutex<CommitState>,
    /// Followers wait here for an fsync to finish.
    synced: Condvar,
    /// The leader waits here while gathering: tickets and departures.
    progress: Condvar,
}

#[derive(Debug, Default)]
struct CommitState {
    /// Tickets handed out (writes that reached the OS).
    written: u64,
    /// Every ticket up to here is durable.
    synced: u64,
    syncing: bool,
    /// Writers inside an insert that have not taken their ticket yet.
    in_flight: u64,
    /// Writers inside an insert, waiting for durability included.
    active: u64,
    /// `active` when the last fsync ended: how many to expect next time.
    concurrency: u64,
    /// How long the last fsync took.
    last_sync: Duration,
}

/// A writer inside an insert, from before its write to after its wait.
pub(crate) struct Entered<'a> {
    commit: &'a GroupCommit,
    ticketed: std::cell::Cell<bool>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let mut st = mutex_lock(&self.commit.state);
        st.active -= 1;
        if !self.ticketed.get() {
            st.in_flight -= 1;
        }
        drop(st);
        self.commit.progress.notify_all();
    }
}

impl GroupCommit {
    /// Announces an insert that will want a ticket.
    pub fn enter(&self) -> Entered<'_> {
        let mut st = mutex_lock(&self.state);
        st.active += 1;
        st.in_flight += 1;
        Entered {
            commit: self,
            ticketed: std::cell::Cell::new(false),
        }
    }

    /// Called by the writer, under its lock, once the write reached the OS.
    pub fn ticket(&self, entered: &Entered) -> u64 {
        let mut st = mutex_lock(&self.state);
        st.in_flight -= 1;
        entered.ticketed.set(true);
        st.written += 1;
        let t = st.written;
        drop(st);
        self.progress.notify_all();
        t
    }

    /// Returns once `ticket`'s write is durable.
    pub fn wait(&self, ticket: u64, data: &dyn StoreFile) -> Result<()> {
        let mut st = mutex_lock(&self.state);
        loop {
            if st.synced >= ticket {
                return Ok(());
            }
            if !st.syncing {
                st.syncing = true;
                let deadline = std::time::Instant::now() + (st.last_sync / 2).min(MAX_GATHER);
                while st.in_flight > 0 || st.written - st.synced < st.concurrency {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    st = self
                        .progress
                        .wait_timeout(st, left)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
                let target = st.written;
                drop(st);
                let started = std::time::Instant::now();
                let res = data.sync_data();
                st = mutex_lock(&self.state);
                st.last_sync = started.elapsed();
                st.syncing = false;
                if res.is_ok() {
                    st.synced = st.synced.max(target);
                }
                st.concurrency = st.active;
                self.synced.notify_all();
                res?;
                continue;
            }
            st = self
                .synced
                .wait(st)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

/// What the flusher job needs of a store: two steps of a checkpoint,
/// so this module knows nothing of the writer or the layout.
pub(crate) trait FlushTarget: Send + Sync + 'static {
    /// Writes back the data written since the last checkpoint without
    /// holding the writer, so the checkpoint that follows has little left
    /// to sync while inserts wait. Does nothing when nothing was written.
    fn write_back(&self) -> Result<()>;
    /// Takes the writer and, if anything was written since the last
    /// checkpoint, checkpoints with fsync.
    fn checkpoint(&self) -> Result<()>;
}

/// An I/O failure of a background thread, wrapped so its message says
/// where it came from while `io::Error::kind` stays the original's (a full
/// disk stays `StorageFull`, which the server answers with 507).
#[derive(Debug, thiserror::Error)]
#[error("background {task} failed: {source}")]
struct BackgroundError {
    task: &'static str,
    source: io::Error,
}

/// The last failure of a background thread (the flusher's syncs, a
/// compressed store's framing), kept until a write or a sync reports it.
///
/// Reported once: the caller that gets it learns that records it or others
/// were acknowledged since the last good checkpoint may not be durable (or
/// framed); the call after it runs normally (if the disk is still failing,
/// the thread's next attempt fails and reports again). A later success
/// does not clear it, so a failure is never silently lost.
#[derive(Debug)]
pub(crate) struct BackgroundFault {
    /// What the thread does, for the message: "sync", "framing".
    task: &'static str,
    /// Mirrors `error.is_some()` so writes check it without the lock;
    /// changed only with the lock held.
    pending: AtomicBool,
    error: Mutex<Option<Error>>,
}

impl BackgroundFault {
    pub fn new(task: &'static str) -> BackgroundFault {
        BackgroundFault {
            task,
            pending: AtomicBool::new(false),
            error: Mutex::new(None),
        }
    }

    /// Keeps `error` for the next write or sync; an I/O error keeps its
    /// kind. Other errors (a corrupt frame, say) are kept as they are.
    pub fn set(&self, error: Error) {
        let error = match error {
            Error::Io(source) => Error::Io(io::Error::new(
                source.kind(),
                BackgroundError {
                    task: self.task,
                    source,
                },
            )),
            other => other,
        };
        let mut slot = mutex_lock(&self.error);
        // The last failure wins: it describes the disk as it is now.
        *slot = Some(error);
        self.pending.store(true, Ordering::Release);
    }

    /// The failure not reported yet, if any, as an `Err`.
    pub fn take(&self) -> Result<()> {
        if !self.pending.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut slot = mutex_lock(&self.error);
        self.pending.store(false, Ordering::Release);
        match slot.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The `Interval` policy's flusher: a checkpoint with fsync every
/// interval, skipped while nothing was written (no wear when idle). A job
/// on the engine's shared workers (`background`), not a thread of its own.
#[derive(Debug)]
pub(crate) struct Flusher {
    job: JobHandle,
}

struct FlushJob<T> {
    interval: Duration,
    target: T,
    fault: Arc<BackgroundFault>,
}

impl<T: FlushTarget> Job for FlushJob<T> {
    fn run(&self) -> Option<Duration> {
        if let Err(e) = self.target.write_back() {
            self.fault.set(e);
        }
        if let Err(e) = self.target.checkpoint() {
            self.fault.set(e);
        }
        Some(self.interval)
    }
}

impl Flusher {
    /// Registers the flusher; a failure of either step is kept in `fault`
    /// for the store's next write or sync to report.
    pub fn start(
        interval: Duration,
        target: impl FlushTarget,
        fault: Arc<BackgroundFault>,
    ) -> Flusher {
        let job = FlushJob {
            interval,
            target,
            fault,
        };
        Flusher {
            job: crate::background::register(job, Some(interval)),
        }
    }

    /// Stops the flusher, waiting for a checkpoint under way (at most one
    /// checkpoint long).
    pub fn stop(&mut self) {
        self.job.stop();
    }
}
