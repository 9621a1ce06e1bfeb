//! The stores a server has open, opened lazily on first use and kept open
//! while used (`idle` closes the others), and the per-store key files.
//!
//! A store is authenticated against its `keys.json` before it is opened,
//! so a request for a store that does not exist gets the same 401 as a
//! wrong key. `keys.json` is re-read whenever its identity (inode, size,
//! modification time) changes, checked at most every `KEYS_RECHECK`, so
//! `tsstore key revoke` takes effect on a running server within that time
//! without a `stat` on every request.
//!
//! Opening (with its recovery scan), creating and deleting a store touch
//! the disk for as long as the store is large, so they run on the blocking
//! pool, one at a time (`lifecycle`), while requests for stores already
//! open go on.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tsstore::{CommitEvent, CommitState, CommitSubscription, Config, Store, SyncPolicy};

use crate::auth::AuthError;
use crate::consumers::Consumers;
use crate::keys::{KeyError, KeyFile, NewKey};
use crate::metrics::StoreMetrics;
use crate::provision::{self, ProvisionError};
use crate::store_settings::{SettingsError, StoreSettings};

mod idle;

use idle::LastUsed;
pub use idle::StoreResidency;

/// A task on the blocking pool that did not finish: it panicked, or the
/// runtime cancelled it (the server is stopping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TaskFailed {
    #[error("a store task panicked")]
    Panicked,
    #[error("a store task was cancelled")]
    Cancelled,
}

impl From<tokio::task::JoinError> for TaskFailed {
    fn from(e: tokio::task::JoinError) -> TaskFailed {
        if e.is_panic() {
            TaskFailed::Panicked
        } else {
            TaskFailed::Cancelled
        }
    }
}

/// What can go wrong opening, creating or deleting a store.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] tsstore::Error),
    /// Being deleted: try again later, it will be gone.
    #[error("store '{0}' is being deleted")]
    Closing(String),
    /// A delete waited `DELETE_DRAIN` for requests on the store; it stays.
    #[error("store '{0}' still has requests running; retry the delete")]
    Busy(String),
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// Creating the store or its first key failed (nothing is left).
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error(transparent)]
    Task(#[from] TaskFailed),
    #[error("a lock was poisoned by an earlier panic")]
    Poisoned,
    /// The store's `settings.json` cannot be read or written.
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

pub type RegistryResult<T> = Result<T, RegistryError>;

/// How often a store's `keys.json` is checked for changes.
pub const KEYS_RECHECK: Duration = Duration::from_millis(500);
/// How long `DELETE` waits for in-flight requests on the store to finish.
const DELETE_DRAIN: Duration = Duration::from_secs(5);

/// An open store with what the server keeps beside it.
#[derive(Debug)]
pub struct OpenStore {
    pub store: Store,
    pub metrics: StoreMetrics,
    /// Set to `true` when the store is being deleted or the server stops;
    /// long-lived connections on the store watch it.
    pub stopping: watch::Sender<bool>,
    /// The store's last commit event, bridged from the engine's callback:
    /// async tasks wait for new records with `commits().changed()`, with no
    /// thread per waiter.
    commits: watch::Sender<CommitEvent>,
    /// Keeps the engine callback registered for as long as the store is open.
    _subscription: Option<CommitSubscription>,
    /// Each live reader's cursor (the last timestamp it was sent), by
    /// reader id: one entry per live reader, at most
    /// `Limits::max_live_readers`. For the bound and `/metrics` (lag).
    pub reader_cursors: Mutex<HashMap<u64, i64>>,
    /// Its durable live readers (`ws/read?consumer=`).
    pub consumers: Consumers,
    /// For closing it once idle (`idle`).
    last_used: LastUsed,
}

impl OpenStore {
    fn new(store: Store, totals: &Arc<StoreMetrics>) -> OpenStore {
        let commits = watch::channel(CommitEvent::NewRecords(store.commits().current())).0;
        let tx = commits.clone();
        // The callback holds only a channel end, never the store.
        let subscription = store.on_commit(Box::new(move |event| {
            tx.send_replace(event);
        }));
        if subscription.is_err() {
            tracing::error!(store = %store.name(), "live readers will not be woken: too many commit callbacks");
        }
        OpenStore {
            store,
            metrics: StoreMetrics::within(totals),
            stopping: watch::channel(false).0,
            commits,
            _subscription: subscription.ok(),
            reader_cursors: Default::default(),
            consumers: Consumers::default(),
            last_used: LastUsed::default(),
        }
    }

    /// Live readers on the store now.
    pub fn live_readers(&self) -> usize {
        self.reader_cursors.lock().map_or(0, |c| c.len())
    }

    /// How far the slowest live reader is behind the newest record, in
    /// nanoseconds of record time (`None` without readers).
    pub fn reader_lag_ns(&self) -> Option<i64> {
        let slowest = self.reader_cursors.lock().ok()?.values().min().copied()?;
        let newest = self.store.newest_timestamp().unwrap_or(0);
        Some(newest.saturating_sub(slowest).max(0))
    }

    /// Wakes on every commit that makes records readable, on a reset, and
    /// when the store closes.
    pub fn commits(&self) -> watch::Receiver<CommitEvent> {
        self.commits.subscribe()
    }

    /// Where a follower at `cursor` goes on after `event`. The channel
    /// keeps only the latest event, so a reset or truncate followed at
    /// once by an insert arrives as `NewRecords`: the counters in its
    /// state (against `seen`, which is updated) tell what was missed.
    pub fn after_commit(&self, event: &CommitEvent, seen: &mut CommitState, cursor: i64) -> Resume {
        let Some(state) = commit_state(event) else {
            return Resume::Closed;
        };
        let before = std::mem::replace(seen, state);
        if state.resets != before.resets {
            Resume::Reset
        } else if state.truncations != before.truncations {
            // Records after the store's newest are gone: a cursor past it
            // would skip what is inserted from now on.
            let newest = self.store.newest_timestamp().unwrap_or(0);
            Resume::At(cursor.min(newest))
        } else {
            Resume::At(cursor)
        }
    }
}

/// The state an event carries; `None`: the store closed.
pub fn commit_state(event: &CommitEvent) -> Option<CommitState> {
    match *event {
        CommitEvent::NewRecords(s) | CommitEvent::Reset(s) => Some(s),
        CommitEvent::Truncated { state, .. } => Some(state),
        CommitEvent::Closed => None,
    }
}

/// What a follower of a store's commits does next (`after_commit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Read on after this cursor.
    At(i64),
    /// The store was emptied.
    Reset,
    /// The store is gone.
    Closed,
}

/// Resolves once the store's `stopping` flag (a receiver of
/// `OpenStore::stopping`) is set: the store is being deleted, or the
/// server closes it. Holds no borrow of the flag across an await, so the
/// future stays `Send`.
pub async fn store_stopping(stopping: &mut watch::Receiver<bool>) {
    drop(stopping.wait_for(|s| *s).await);
}

#[derive(Debug)]
enum Slot {
    Open(Arc<OpenStore>),
    /// Being deleted: requests get 503 until it is gone.
    Closing,
}

/// A parsed `keys.json`, the identity of the file it came from, and when
/// that identity was last checked.
#[derive(Debug)]
struct CachedKeys {
    stamp: (u64, u64, i64, i64),
    checked: Instant,
    file: KeyFile,
}

#[derive(Debug)]
pub struct Registry {
    base: PathBuf,
    sync: SyncPolicy,
    /// One entry per store opened since start (bounded by the stores on disk).
    slots: Arc<RwLock<HashMap<String, Slot>>>,
    /// One entry per store that has authenticated a request.
    keys: Mutex<HashMap<String, CachedKeys>>,
    /// Held while a store is opened, created or marked for deletion, so
    /// that those never race each other on one name.
    lifecycle: Arc<tokio::sync::Mutex<()>>,
    /// The timestamp guard of stores without their own (`settings.json`).
    future_skew: Option<Duration>,
    /// The most bytes all stores may take together (`None`: no cap).
    max_total_bytes: Option<u64>,
    /// When unused stores close, and how many may be open.
    residency: StoreResidency,
    /// Wakes the idle sweeper early (an open went past `max_open`).
    sweep_now: tokio::sync::Notify,
    /// Stores closed for idleness since start.
    idle_closes: std::sync::atomic::AtomicU64,
    /// Stores taken out to be closed and not closed yet: still open.
    closing: Arc<std::sync::atomic::AtomicUsize>,
    /// Every store's counters added up since start (closed stores too).
    totals: Arc<StoreMetrics>,
}

impl Registry {
    pub fn new(base: PathBuf, sync: SyncPolicy) -> Registry {
        Registry {
            base,
            sync,
            slots: Arc::new(RwLock::new(HashMap::new())),
            keys: Mutex::new(HashMap::new()),
            lifecycle: Arc::new(tokio::sync::Mutex::new(())),
            future_skew: None,
            max_total_bytes: None,
            residency: StoreResidency::default(),
            sweep_now: tokio::sync::Notify::new(),
            idle_closes: Default::default(),
            closing: Default::default(),
            totals: Arc::default(),
        }
    }

    /// Every store's counters added up since start.
    pub fn totals(&self) -> &StoreMetrics {
        &self.totals
    }

    /// Sets when unused stores close and how many may be open.
    pub fn with_residency(mut self, residency: StoreResidency) -> Registry {
        self.residency = residency;
        self
    }

    /// Stores closed because they were idle (or the least recently used
    /// beyond `max_open`) since start.
    pub fn idle_closes(&self) -> u64 {
        self.idle_closes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Refuses client timestamps further than `skew` ahead of the clock in
    /// every store that does not set its own (`None`: no guard).
    pub fn with_future_skew(mut self, skew: Option<Duration>) -> Registry {
        self.future_skew = skew;
        self
    }

    /// Refuses a create that would take the stores past `max` bytes
    /// together. Checked under the lifecycle lock, so two creates cannot
    /// both fit in the same room.
    /// The most bytes all stores (and their rollups) may take together.
    pub fn max_total_bytes(&self) -> Option<u64> {
        self.max_total_bytes
    }

    pub fn with_max_total_bytes(mut self, max: Option<u64>) -> Registry {
        self.max_total_bytes = max;
        self
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    pub fn sync_policy(&self) -> SyncPolicy {
        self.sync
    }

    /// Checks `presented` against the store's keys. An unknown store and a
    /// wrong key are the same `BadKey`.
    pub fn authorize(&self, name: &str, presented: Option<&str>) -> Result<(), AuthError> {
        tsstore::validate_store_name(name).map_err(AuthError::InvalidStoreName)?;
        let presented = presented.ok_or(AuthError::MissingKey)?;
        let mut keys = self.keys.lock().map_err(|_| AuthError::Poisoned)?;
        let now = Instant::now();
        let recent = keys
            .get(name)
            .is_some_and(|c| now.duration_since(c.checked) < KEYS_RECHECK);
        if !recent {
            let dir = self.base.join(name);
            let Ok(meta) = std::fs::metadata(dir.join(crate::keys::KEYS_FILE)) else {
                keys.remove(name);
                return Err(AuthError::BadKey);
            };
            let stamp = (meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec());
            match keys.get_mut(name) {
                Some(c) if c.stamp == stamp => c.checked = now,
                _ => {
                    let file = KeyFile::load(&dir, name)?;
                    let entry = CachedKeys {
                        stamp,
                        checked: now,
                        file,
                    };
                    keys.insert(name.to_string(), entry);
                }
            }
        }
        match keys.get(name).and_then(|c| c.file.verify(presented)) {
            Some(_) => Ok(()),
            None => Err(AuthError::BadKey),
        }
    }

    /// The open store `name`, or `None` when it is not open yet.
    fn open_slot(&self, name: &str) -> RegistryResult<Option<Arc<OpenStore>>> {
        let slots = self.slots.read().map_err(|_| RegistryError::Poisoned)?;
        match slots.get(name) {
            Some(Slot::Open(s)) => {
                s.last_used.touch();
                Ok(Some(Arc::clone(s)))
            }
            Some(Slot::Closing) => Err(RegistryError::Closing(name.to_string())),
            None => Ok(None),
        }
    }

    /// The open store `name`, opening it on first use.
    pub async fn get(&self, name: &str) -> RegistryResult<Arc<OpenStore>> {
        if let Some(open) = self.open_slot(name)? {
            return Ok(open);
        }
        let lifecycle = Arc::clone(&self.lifecycle).lock_owned().await;
        // Opened by the request that held the lock before us?
        if let Some(open) = self.open_slot(name)? {
            return Ok(open);
        }
        let (base, name, sync) = (self.base.clone(), name.to_string(), self.sync);
        let slots = Arc::clone(&self.slots);
        let skew = self.future_skew;
        let totals = Arc::clone(&self.totals);
        // Runs to the end even when this request is dropped (timeout), so
        // a slow open is done once, not restarted by every request.
        let opened = blocking(move || {
            let _lifecycle = lifecycle;
            let store = Store::open_with(&base, &name, sync)?;
            let settings = StoreSettings::load(store.path())?;
            store.set_max_future_skew(settings.future_skew(skew));
            let open = Arc::new(OpenStore::new(store, &totals));
            let mut slots = slots.write().map_err(|_| RegistryError::Poisoned)?;
            slots.insert(name.clone(), Slot::Open(Arc::clone(&open)));
            tracing::debug!(store = %name, "opened store");
            Ok(open)
        })
        .await?;
        if self.open_count() > self.residency.max_open {
            self.wake_sweeper();
        }
        opened
    }

    /// Creates a store with one API key (and its own `settings`) and
    /// keeps it open.
    pub async fn create(
        &self,
        name: &str,
        config: Config,
        settings: StoreSettings,
    ) -> RegistryResult<NewKey> {
        let lifecycle = Arc::clone(&self.lifecycle).lock_owned().await;
        if self.open_slot(name)?.is_some() {
            return Err(tsstore::Error::StoreExists(name.to_string()).into());
        }
        let (base, name, sync) = (self.base.clone(), name.to_string(), self.sync);
        let slots = Arc::clone(&self.slots);
        let (skew, max_total) = (self.future_skew, self.max_total_bytes);
        let totals = Arc::clone(&self.totals);
        blocking(move || {
            let _lifecycle = lifecycle;
            let note = "created by POST /api/stores";
            let (store, key) = provision::create_store_with(
                &base, &name, config, sync, note, &settings, max_total,
            )?;
            store.set_max_future_skew(settings.future_skew(skew));
            let open = Slot::Open(Arc::new(OpenStore::new(store, &totals)));
            slots
                .write()
                .map_err(|_| RegistryError::Poisoned)?
                .insert(name.clone(), open);
            tracing::info!(store = %name, key_id = %key.id, "created store");
            Ok(key)
        })
        .await?
    }

    /// Stops the store's connections, waits for its requests, and removes
    /// it from disk.
    pub async fn delete(&self, name: &str) -> RegistryResult<()> {
        let previous = {
            // No open or create of this name is half done once this is held.
            let _lifecycle = self.lifecycle.lock().await;
            let mut slots = self.slots.write().map_err(|_| RegistryError::Poisoned)?;
            match slots.insert(name.to_string(), Slot::Closing) {
                // Another delete is under way and will remove the slot.
                Some(Slot::Closing) => return Err(RegistryError::Closing(name.to_string())),
                Some(Slot::Open(s)) => Some(s),
                None => None,
            }
        };
        let result = match previous {
            Some(open) => self.drain_and_delete(name, open).await,
            None => {
                let (base, owned) = (self.base.clone(), name.to_string());
                blocking(move || Store::destroy(&base, &owned))
                    .await?
                    .map_err(RegistryError::from)
            }
        };
        if let Ok(mut slots) = self.slots.write() {
            slots.remove(name);
        }
        if let Ok(mut keys) = self.keys.lock() {
            keys.remove(name);
        }
        if result.is_ok() {
            tracing::info!(store = name, "deleted store");
        }
        result
    }

    /// Removes `name`'s directory, which holds no complete store (so
    /// nothing has it open).
    pub async fn remove_incomplete(&self, name: &str) -> RegistryResult<()> {
        let _lifecycle = self.lifecycle.lock().await;
        let (base, owned) = (self.base.clone(), name.to_string());
        blocking(move || {
            if provision::incomplete(&base, &owned).is_none() {
                // Completed meanwhile (a create that got there first).
                return Err(tsstore::Error::StoreExists(owned).into());
            }
            std::fs::remove_dir_all(base.join(&owned)).map_err(tsstore::Error::from)?;
            tracing::info!(store = %owned, "removed an incomplete store directory");
            Ok(())
        })
        .await?
    }

    async fn drain_and_delete(&self, name: &str, open: Arc<OpenStore>) -> RegistryResult<()> {
        open.stopping.send_replace(true);
        let deadline = Instant::now() + DELETE_DRAIN;
        let mut open = open;
        loop {
            match Arc::try_unwrap(open) {
                Ok(owned) => {
                    return blocking(move || owned.store.delete())
                        .await?
                        .map_err(RegistryError::from);
                }
                Err(still_shared) if Instant::now() < deadline => {
                    open = still_shared;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(still_shared) => {
                    // Put it back: the store stays usable rather than half-deleted.
                    open = still_shared;
                    open.stopping.send_replace(false);
                    if let Ok(mut slots) = self.slots.write() {
                        slots.insert(name.to_string(), Slot::Open(Arc::clone(&open)));
                    }
                    return Err(RegistryError::Busy(name.to_string()));
                }
            }
        }
    }

    /// How many stores are open (those closing too: their files are).
    pub fn open_count(&self) -> usize {
        let listed = self.slots.read().map_or(0, |slots| {
            slots
                .values()
                .filter(|s| matches!(s, Slot::Open(_)))
                .count()
        });
        listed + self.closing_count()
    }

    /// Stores being closed for idleness right now.
    pub fn closing_count(&self) -> usize {
        self.closing.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every open store, for metrics.
    pub fn open_stores(&self) -> Vec<(String, Arc<OpenStore>)> {
        let Ok(slots) = self.slots.read() else {
            return Vec::new();
        };
        let mut out: Vec<_> = slots
            .iter()
            .filter_map(|(n, s)| match s {
                Slot::Open(s) => Some((n.clone(), Arc::clone(s))),
                Slot::Closing => None,
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Signals every store's connections to stop, then syncs and closes
    /// every store. Called once the listeners have stopped.
    pub fn close_all(&self) {
        let drained: Vec<(String, Slot)> = match self.slots.write() {
            Ok(mut slots) => slots.drain().collect(),
            Err(_) => return,
        };
        for (name, slot) in drained {
            let Slot::Open(open) = slot else { continue };
            open.stopping.send_replace(true);
            close_logged(&name, open, "store");
        }
    }
}

/// Closes a store taken out of the slots, and logs how that went. Still
/// referenced elsewhere (a task that outlived the server), it is made
/// durable now and the last reference closes it.
fn close_logged(name: &str, open: Arc<OpenStore>, what: &str) {
    let result = match Arc::try_unwrap(open) {
        Ok(owned) => owned.store.close(),
        Err(shared) => shared.store.sync(),
    };
    match result {
        Ok(()) => tracing::debug!(store = %name, "closed {what}"),
        Err(e) => tracing::error!(store = %name, "closing {what} failed: {e}"),
    }
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> RegistryResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RegistryError::Task(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commits_wake_async_waiters() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            num_blocks: 8,
            ..Config::default()
        };
        let store = Store::create_with(dir.path(), "s", config, SyncPolicy::Never).unwrap();
        let open = Arc::new(OpenStore::new(store, &Arc::default()));
        let mut rx = open.commits();
        rx.borrow_and_update();
        let writer = Arc::clone(&open);
        let put = tokio::task::spawn_blocking(move || writer.store.put_now(b"1").unwrap());
        tokio::time::timeout(Duration::from_secs(10), rx.changed())
            .await
            .expect("woken within the bound")
            .unwrap();
        assert!(matches!(
            *rx.borrow_and_update(),
            CommitEvent::NewRecords(_)
        ));
        let seen = open.store.newest(1).unwrap();
        assert_eq!(
            seen.len(),
            1,
            "the record is readable once the waiter wakes"
        );
        assert_eq!(seen[0].handle, put.await.unwrap());
        open.store.reset().unwrap();
        tokio::time::timeout(Duration::from_secs(10), rx.changed())
            .await
            .expect("woken by the reset")
            .unwrap();
        assert!(matches!(*rx.borrow(), CommitEvent::Reset(_)));
    }
}
