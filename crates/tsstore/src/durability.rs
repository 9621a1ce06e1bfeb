//! When inserts become durable: the sync policy, group commit for
//! `Always`, and the background flusher for `Interval`.
//!
//! Durability rests on the recovery scan: objects verify themselves, so
//! making an insert durable needs only `fdatasync` of the data file; the
//! pointers (meta, index) are made durable at checkpoints, which recovery
//! starts from.

use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::index::RingIndex;
use crate::io::StoreFile;
use crate::lock::mutex_lock;
use crate::writer::{Ctx, Writer};

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

/// Group commit: writers take a ticket after their write and wait until
/// an fsync that started after it has finished. Whoever finds no fsync
/// running starts one for everybody who is waiting.
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    state: Mutex<CommitState>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct CommitState {
    /// Tickets handed out (writes that reached the OS).
    written: u64,
    /// Every ticket up to here is durable.
    synced: u64,
    syncing: bool,
}

impl GroupCommit {
    /// Called by the writer, under its lock, once a write reached the OS.
    pub fn ticket(&self) -> u64 {
        let mut st = mutex_lock(&self.state);
        st.written += 1;
        st.written
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
                let target = st.written;
                drop(st);
                let res = data.sync_data();
                st = mutex_lock(&self.state);
                st.syncing = false;
                if res.is_ok() {
                    st.synced = st.synced.max(target);
                }
                self.done.notify_all();
                res?;
                continue;
            }
            st = self
                .done
                .wait(st)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

/// What the flusher thread needs of a store.
pub(crate) struct FlushTarget {
    pub writer: Arc<Mutex<Writer>>,
    pub ring: Arc<RwLock<RingIndex>>,
    pub data: Arc<dyn StoreFile>,
    pub index: Arc<dyn StoreFile>,
    pub meta: Arc<dyn StoreFile>,
    /// The last background failure, reported by the next `sync`/`close`.
    pub error: Arc<Mutex<Option<String>>>,
}

/// The `Interval` policy's background thread: a checkpoint with fsync
/// every interval, skipped while nothing was written (no wear when idle).
#[derive(Debug)]
pub(crate) struct Flusher {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    pub fn start(interval: Duration, target: FlushTarget) -> Result<Flusher> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("tsstore-flush".into())
            .spawn(move || {
                let (lock, cond) = &*signal;
                let mut stopped = mutex_lock(lock);
                loop {
                    // Checked before waiting too: stop() may come first.
                    if *stopped {
                        return;
                    }
                    let (guard, _) = cond
                        .wait_timeout(stopped, interval)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    stopped = guard;
                    if *stopped {
                        return;
                    }
                    let mut w = mutex_lock(&target.writer);
                    if w.is_dirty() {
                        let ctx = Ctx {
                            data: target.data.as_ref(),
                            index: target.index.as_ref(),
                            meta: target.meta.as_ref(),
                            ring: &target.ring,
                        };
                        if let Err(e) = w.checkpoint(&ctx, true) {
                            *mutex_lock(&target.error) = Some(e.to_string());
                        }
                    }
                }
            })?;
        Ok(Flusher {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it (at most one checkpoint long).
    pub fn stop(&mut self) {
        let (lock, cond) = &*self.stop;
        *mutex_lock(lock) = true;
        cond.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop();
    }
}
