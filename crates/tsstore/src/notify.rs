//! Commit notifications: tell threads and callbacks that an insert made new
//! records readable, or that the store was reset, truncated or closed.
//!
//! Std only, so the engine stays free of an async runtime: a thread waits
//! on a `CommitWatch` (a `Mutex` + `Condvar` over two counters), and an
//! async caller registers a callback that pokes its own primitive (a tokio
//! `Notify`, say) instead of parking a thread per waiter. The store signals
//! after the writer lock is released and the records are in the
//! `RingIndex`, so whoever is woken can read them at once.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use crate::lock::{mutex_lock, read_lock, write_lock};

/// Most callbacks one store accepts through `Store::on_commit`; each one
/// runs on every commit, so the bound keeps an insert's cost bounded too.
pub const MAX_COMMIT_CALLBACKS: usize = 64;

/// Where a store's commits have got to. Compare two states to learn what
/// happened between them; both counters only grow while the store is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CommitState {
    /// Commits that made at least one record readable (one per `put`,
    /// `put_now` or `put_many` call, not one per record).
    pub seq: u64,
    /// Resets since the store was opened.
    pub resets: u64,
    /// Truncates (`Store::truncate_after` calls that removed records)
    /// since the store was opened.
    pub truncations: u64,
}

/// What a callback registered with `Store::on_commit` is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitEvent {
    /// New records are readable; the state is as of right after them.
    NewRecords(CommitState),
    /// The store was emptied; everything read before is gone.
    Reset(CommitState),
    /// `Store::truncate_after` removed every record after a time: the
    /// store's newest record is now `newest` (`None`: the store is empty),
    /// and inserts may again take timestamps after it. A reader whose
    /// cursor is past `newest` moves it back to `newest`, or it would skip
    /// the records inserted from now on; records up to `newest` are as
    /// they were.
    Truncated {
        state: CommitState,
        newest: Option<i64>,
    },
    /// The store was closed (or dropped); no further events follow.
    Closed,
}

/// How `CommitWatch::wait_past` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// New records were committed since the state the caller had seen, and
    /// no reset: reading on from where the caller stopped finds them.
    NewRecords(CommitState),
    /// At least one reset happened since the state the caller had seen
    /// (records may have come after it): start reading from scratch.
    Reset(CommitState),
    /// No reset, but at least one truncate since the state the caller had
    /// seen: a cursor past the store's newest record (`Store::stats`)
    /// moves back to it before reading on.
    Truncated(CommitState),
    /// The store was closed.
    Closed,
    /// Nothing happened within the timeout.
    TimedOut,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<(CommitState, bool)>,
    changed: Condvar,
    callbacks: RwLock<Arc<[Entry]>>,
    next_id: AtomicU64,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            state: Mutex::default(),
            changed: Condvar::new(),
            callbacks: RwLock::new(Arc::from(Vec::new())),
            next_id: AtomicU64::new(0),
        }
    }
}

/// One registered callback; the id lets its guard remove exactly it.
struct Entry {
    id: u64,
    callback: Arc<dyn Fn(CommitEvent) + Send + Sync>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry").field("id", &self.id).finish()
    }
}

/// The store's side: it signals, watchers and callbacks listen.
#[derive(Debug, Default)]
pub(crate) struct CommitNotifier {
    shared: Arc<Shared>,
}

impl CommitNotifier {
    /// New records are readable (call after releasing the writer lock).
    pub(crate) fn committed(&self) {
        let state = self.update(|s| s.seq += 1);
        self.fire(CommitEvent::NewRecords(state));
    }

    /// The store was reset.
    pub(crate) fn reset(&self) {
        let state = self.update(|s| s.resets += 1);
        self.fire(CommitEvent::Reset(state));
    }

    /// Records after `newest` were removed by a truncate.
    pub(crate) fn truncated(&self, newest: Option<i64>) {
        let state = self.update(|s| s.truncations += 1);
        self.fire(CommitEvent::Truncated { state, newest });
    }

    /// The store is going away: wakes every waiter for good.
    pub(crate) fn close(&self) {
        let mut st = mutex_lock(&self.shared.state);
        if st.1 {
            return;
        }
        st.1 = true;
        drop(st);
        self.shared.changed.notify_all();
        self.fire(CommitEvent::Closed);
    }

    fn update(&self, f: impl FnOnce(&mut CommitState)) -> CommitState {
        let mut st = mutex_lock(&self.shared.state);
        f(&mut st.0);
        let state = st.0;
        drop(st);
        self.shared.changed.notify_all();
        state
    }

    /// Runs the callbacks outside every lock, so one may read the store,
    /// register or drop a subscription without deadlocking.
    fn fire(&self, event: CommitEvent) {
        let callbacks = Arc::clone(&read_lock(&self.shared.callbacks));
        for entry in callbacks.iter() {
            (entry.callback)(event);
        }
    }

    pub(crate) fn watch(&self) -> CommitWatch {
        CommitWatch {
            shared: Arc::clone(&self.shared),
        }
    }

    pub(crate) fn subscribe(
        &self,
        callback: Box<dyn Fn(CommitEvent) + Send + Sync>,
    ) -> Result<CommitSubscription, TooManyCallbacks> {
        let mut list = write_lock(&self.shared.callbacks);
        if list.len() >= MAX_COMMIT_CALLBACKS {
            return Err(TooManyCallbacks);
        }
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        // Copy on write: a commit firing meanwhile keeps iterating the old list.
        let mut next: Vec<Entry> = list
            .iter()
            .map(|e| Entry {
                id: e.id,
                callback: Arc::clone(&e.callback),
            })
            .collect();
        next.push(Entry {
            id,
            callback: Arc::from(callback),
        });
        *list = Arc::from(next);
        Ok(CommitSubscription {
            shared: Arc::downgrade(&self.shared),
            id,
        })
    }
}

/// A handle for waiting on a store's commits from any thread. Cheap to
/// clone (one `Arc`); outlives the store harmlessly (it then reports
/// `Closed`).
///
/// Wait without missing a commit by taking the state *before* reading:
///
/// ```
/// use std::time::Duration;
/// use tsstore::{Config, Store, Wake};
///
/// # fn main() -> tsstore::Result<()> {
/// let dir = tempfile::tempdir()?;
/// let store = Store::create(dir.path(), "s", Config::default())?;
/// let watch = store.commits();
/// std::thread::scope(|s| {
///     s.spawn(|| store.put(1_000, br#"{"v":1}"#));
///     let mut seen = watch.current();
///     loop {
///         // Read first, then wait for anything after `seen`.
///         if let Some(r) = store.newest(1).ok().and_then(|v| v.into_iter().next()) {
///             assert_eq!(r.timestamp(), 1_000);
///             break;
///         }
///         match watch.wait_past(seen, Duration::from_secs(10)) {
///             Wake::NewRecords(now) | Wake::Reset(now) | Wake::Truncated(now) => seen = now,
///             Wake::Closed | Wake::TimedOut => panic!("no commit"),
///         }
///     }
/// });
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CommitWatch {
    shared: Arc<Shared>,
}

impl CommitWatch {
    /// The state now. Take it before reading, then pass it to `wait_past`.
    pub fn current(&self) -> CommitState {
        mutex_lock(&self.shared.state).0
    }

    /// Whether the store was closed.
    pub fn is_closed(&self) -> bool {
        mutex_lock(&self.shared.state).1
    }

    /// Waits until the state differs from `seen` or the store closes, at
    /// most `timeout`. Returns at once if it already differs, so a commit
    /// between `current()` and this call is never missed.
    pub fn wait_past(&self, seen: CommitState, timeout: Duration) -> Wake {
        let deadline = Instant::now().checked_add(timeout);
        let mut st = mutex_lock(&self.shared.state);
        loop {
            let (now, closed) = *st;
            if closed {
                return Wake::Closed;
            }
            if now.resets != seen.resets {
                return Wake::Reset(now);
            }
            if now.truncations != seen.truncations {
                return Wake::Truncated(now);
            }
            if now.seq != seen.seq {
                return Wake::NewRecords(now);
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                // A timeout past the end of time: wait in long steps.
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return Wake::TimedOut;
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }
}

/// Keeps a callback registered; dropping it unregisters the callback.
///
/// A commit that had already started firing when the guard is dropped may
/// still call the callback once, on the writer's thread, after the drop.
#[derive(Debug)]
#[must_use = "dropping the subscription unregisters the callback at once"]
pub struct CommitSubscription {
    shared: Weak<Shared>,
    id: u64,
}

impl Drop for CommitSubscription {
    fn drop(&mut self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mut list = write_lock(&shared.callbacks);
        let next: Vec<Entry> = list
            .iter()
            .filter(|e| e.id != self.id)
            .map(|e| Entry {
                id: e.id,
                callback: Arc::clone(&e.callback),
            })
            .collect();
        *list = Arc::from(next);
    }
}

/// `Store::on_commit` refused: `MAX_COMMIT_CALLBACKS` are registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyCallbacks;

impl fmt::Display for TooManyCallbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a store accepts at most {MAX_COMMIT_CALLBACKS} commit callbacks"
        )
    }
}

impl std::error::Error for TooManyCallbacks {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_returns_at_once_when_state_moved() {
        let n = CommitNotifier::default();
        let w = n.watch();
        let seen = w.current();
        n.committed();
        assert_eq!(
            w.wait_past(seen, Duration::ZERO),
            Wake::NewRecords(CommitState {
                seq: 1,
                ..CommitState::default()
            })
        );
        n.committed();
        n.reset();
        assert_eq!(
            w.wait_past(seen, Duration::ZERO),
            Wake::Reset(CommitState {
                seq: 2,
                resets: 1,
                truncations: 0
            })
        );
        let seen = w.current();
        n.truncated(Some(5));
        n.committed();
        assert_eq!(
            w.wait_past(seen, Duration::ZERO),
            Wake::Truncated(CommitState {
                seq: 3,
                resets: 1,
                truncations: 1
            })
        );
        let now = w.current();
        assert_eq!(w.wait_past(now, Duration::from_millis(10)), Wake::TimedOut);
        n.close();
        assert_eq!(w.wait_past(now, Duration::from_secs(10)), Wake::Closed);
        assert!(w.is_closed());
    }

    #[test]
    fn callbacks_are_bounded_and_unregister_on_drop() {
        let n = CommitNotifier::default();
        let count = Arc::new(AtomicU64::new(0));
        let mut subs = Vec::new();
        for _ in 0..MAX_COMMIT_CALLBACKS {
            let count = Arc::clone(&count);
            let sub = n.subscribe(Box::new(move |_| {
                count.fetch_add(1, Ordering::Relaxed);
            }));
            subs.push(sub.expect("below the bound"));
        }
        assert_eq!(n.subscribe(Box::new(|_| {})).err(), Some(TooManyCallbacks));
        n.committed();
        assert_eq!(count.load(Ordering::Relaxed), MAX_COMMIT_CALLBACKS as u64);
        subs.truncate(1);
        n.committed();
        assert_eq!(
            count.load(Ordering::Relaxed),
            MAX_COMMIT_CALLBACKS as u64 + 1
        );
        assert!(n.subscribe(Box::new(|_| {})).is_ok());
    }

    #[test]
    fn a_callback_may_drop_its_own_subscription() {
        let n = CommitNotifier::default();
        let slot: Arc<Mutex<Option<CommitSubscription>>> = Arc::default();
        let inner = Arc::clone(&slot);
        let sub = n.subscribe(Box::new(move |_| {
            mutex_lock(&inner).take();
        }));
        *mutex_lock(&slot) = sub.ok();
        n.committed();
        assert!(mutex_lock(&slot).is_none());
        assert!(read_lock(&n.shared.callbacks).is_empty());
    }
}
