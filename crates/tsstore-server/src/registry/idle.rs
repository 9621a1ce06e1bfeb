//! Idle stores cost nothing: a store no request, reader or connection has
//! used for `StoreResidency::idle` is closed (its files, its mapping and
//! its background jobs go), and at most `StoreResidency::max_open` stores
//! stay open, the least recently used idle ones closed first. A closed
//! store is opened again by the next request for it, exactly as at start
//! (lazily), so closing is invisible to clients but for that open's cost.
//!
//! "Used" means held: every request, live reader, consumer, outbound
//! connection and alert rule holds its store's `Arc<OpenStore>` for as long
//! as it runs, so a store with a live reader or a connection is never idle
//! (a push connection is waiting for its records; a pull connection writes
//! at its source's pace). Only stores nothing holds are closed, chosen
//! under the slots' write lock, so nothing can take one while it closes;
//! closing holds the lifecycle lock, so an open of the same name waits
//! for the close instead of racing it for the store's lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{OpenStore, Registry, RegistryError, RegistryResult, Slot, blocking, close_logged};

/// How long stores stay open unused, and how many may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreResidency {
    /// Unused this long, a store is closed (`None`: never for idleness).
    pub idle: Option<Duration>,
    /// Stores open at most; beyond it the least recently used idle ones
    /// close (stores in use are never closed, so this bound is soft while
    /// more than this many are in use at once).
    pub max_open: usize,
}

impl Default for StoreResidency {
    fn default() -> StoreResidency {
        StoreResidency {
            idle: Some(Duration::from_secs(300)),
            max_open: 256,
        }
    }
}

/// Most stores one sweep closes: the lifecycle lock is held while they
/// close, and opens wait for it.
const MAX_CLOSE_PER_SWEEP: usize = 256;
/// How often the sweeper looks at most (and at least, with a long idle
/// time: a quarter of it).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Milliseconds since the process's first use of this module: when a
/// store was last used, in an atomic.
fn now_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// When a store was last used (`touch`), for the sweeper.
#[derive(Debug)]
pub struct LastUsed(AtomicU64);

impl Default for LastUsed {
    fn default() -> LastUsed {
        LastUsed(AtomicU64::new(now_ms()))
    }
}

impl LastUsed {
    pub fn touch(&self) {
        self.0.store(now_ms(), Ordering::Relaxed);
    }

    fn ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Registry {
    /// How often the sweeper should look.
    pub fn sweep_period(&self) -> Duration {
        self.residency.idle.map_or(SWEEP_EVERY, |idle| {
            (idle / 4).clamp(Duration::from_millis(50), SWEEP_EVERY)
        })
    }

    /// Closes the stores idle for longer than the idle time, and the least
    /// recently used idle ones beyond `max_open`. Returns how many closed.
    pub async fn close_idle(&self) -> RegistryResult<usize> {
        let lifecycle = Arc::clone(&self.lifecycle).lock_owned().await;
        let victims = self.take_idle()?;
        if victims.is_empty() {
            return Ok(0);
        }
        let closed = victims.len();
        self.idle_closes
            .fetch_add(closed as u64, std::sync::atomic::Ordering::Relaxed);
        let closing = Arc::clone(&self.closing);
        blocking(move || {
            let _lifecycle = lifecycle;
            // Taken with no other holder under the write lock: each closes.
            for (name, open) in victims {
                close_logged(&name, open, "idle store");
                closing.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
        .await?;
        Ok(closed)
    }

    /// Removes from the open set what `close_idle` closes.
    fn take_idle(&self) -> RegistryResult<Vec<(String, Arc<OpenStore>)>> {
        let mut slots = self.slots.write().map_err(|_| RegistryError::Poisoned)?;
        let open = slots
            .values()
            .filter(|s| matches!(s, Slot::Open(_)))
            .count();
        let now = now_ms();
        let idle_ms = self.residency.idle.map(|d| d.as_millis() as u64);
        // Unheld stores, least recently used first.
        let mut unheld: Vec<(u64, &String)> = slots
            .iter()
            .filter_map(|(name, slot)| match slot {
                Slot::Open(s) if Arc::strong_count(s) == 1 => Some((s.last_used.ms(), name)),
                _ => None,
            })
            .collect();
        unheld.sort_unstable();
        let over = open.saturating_sub(self.residency.max_open);
        let names: Vec<String> = unheld
            .iter()
            .enumerate()
            .take_while(|(i, (used, _))| {
                *i < over || idle_ms.is_some_and(|idle| now.saturating_sub(*used) >= idle)
            })
            .take(MAX_CLOSE_PER_SWEEP)
            .map(|(_, (_, name))| (*name).clone())
            .collect();
        let taken: Vec<(String, Arc<OpenStore>)> = names
            .into_iter()
            .filter_map(|name| match slots.remove(&name) {
                Some(Slot::Open(s)) => Some((name, s)),
                other => {
                    if let Some(other) = other {
                        slots.insert(name, other);
                    }
                    None
                }
            })
            .collect();
        // Counted as closing while the slots are still locked: open either
        // way until their files are closed.
        self.closing
            .fetch_add(taken.len(), std::sync::atomic::Ordering::Relaxed);
        Ok(taken)
    }

    /// Asks the sweeper to look now (an open went past `max_open`).
    pub(super) fn wake_sweeper(&self) {
        self.sweep_now.notify_one();
    }

    /// Closes idle stores until `stop` is cancelled: a background task of
    /// the server's (at most one sweep runs past the cancellation).
    pub async fn run_sweeper(&self, stop: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.sweep_period()) => {}
                _ = self.sweep_now.notified() => {}
            }
            if let Err(e) = self.close_idle().await {
                tracing::warn!("closing idle stores failed: {e}");
            }
        }
    }
}
