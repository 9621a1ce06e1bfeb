//! How far the alerts of one connection are done, so that a restart
//! resumes evaluation without missing a record or re-firing more than a
//! bounded few.
//!
//! Evaluation moves `evaluated` past a record once every firing of it has
//! been handed to the socket's queue and the webhooks' queues; each firing
//! handed to a webhook stays `pending` until its POST has finished
//! (succeeded, or failed after its retries). The resume point is
//! everything before the oldest pending firing, and never past
//! `evaluated`: so it covers only records whose alerts were all delivered.
//! An alert in the socket's queue counts as handed over: the feed takes it
//! from there like any message, and while the peer is away the queue is
//! best effort anyway (`socket_drops`).
//!
//! `keep_saved` writes the resume point through the connection's file at
//! most every `SAVE_EVERY` while it moves; the connection's task writes it
//! once more when it ends. The bound on alerts fired twice: a restart
//! evaluates again every record after the saved point, that is the
//! records evaluated since the last save (at most `SAVE_EVERY` of
//! evaluation before a crash; none after a clean stop) plus those
//! evaluated after the oldest firing that was then still queued for or
//! being POSTed to a webhook (at most `WEBHOOK_QUEUE` + 1 firings per
//! webhook, and the other rules' firings on the records in between: with
//! webhooks that answer, a few milliseconds of records). Rules' cooldowns
//! start afresh, too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Longest the saved resume point lags while it moves.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Writes the connection's file (with the resume point `Ledger::resume`
/// gives). Blocking: it is run on the blocking pool.
pub type SaveNow = Arc<dyn Fn() + Send + Sync>;

/// The resume point of a connection's alerts.
#[derive(Debug, Default)]
pub struct Ledger {
    book: Mutex<Book>,
}

#[derive(Debug, Default)]
struct Book {
    /// Every firing of the records up to here has been handed over.
    evaluated: i64,
    /// Timestamps of firings handed to a webhook and not yet delivered,
    /// with how many (one per webhook at most). Bounded by the webhooks'
    /// queues: at most `WEBHOOK_QUEUE` + 2 entries per webhook.
    pending: BTreeMap<i64, u32>,
}

impl Ledger {
    /// Nothing is pending; evaluation starts after `from`.
    pub fn starting_after(from: i64) -> Ledger {
        Ledger {
            book: Mutex::new(Book {
                evaluated: from,
                pending: BTreeMap::new(),
            }),
        }
    }

    /// A poisoned lock still holds consistent figures: every update is
    /// one step that cannot panic halfway.
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where evaluation resumes after a restart: the records up to here
    /// have had all their alerts delivered.
    pub fn resume(&self) -> i64 {
        let book = self.book();
        match book.pending.keys().next() {
            Some(&oldest) => book.evaluated.min(oldest.saturating_sub(1)),
            None => book.evaluated,
        }
    }

    /// Every firing of the records up to `timestamp` has been handed over.
    pub(crate) fn evaluated(&self, timestamp: i64) {
        let mut book = self.book();
        book.evaluated = book.evaluated.max(timestamp);
    }

    /// The store was truncated or reset: evaluation starts again after
    /// `timestamp`.
    pub(crate) fn rewound(&self, timestamp: i64) {
        let mut book = self.book();
        book.evaluated = book.evaluated.min(timestamp);
    }

    /// A firing about the record at `timestamp` is being handed to a
    /// webhook.
    pub(crate) fn queued(&self, timestamp: i64) {
        *self.book().pending.entry(timestamp).or_default() += 1;
    }

    /// The webhook is done with a firing about `timestamp` (POSTed, or
    /// failed after its retries, or never queued).
    pub(crate) fn finished(&self, timestamp: i64) {
        let mut book = self.book();
        if let Some(count) = book.pending.get_mut(&timestamp) {
            *count -= 1;
            if *count == 0 {
                book.pending.remove(&timestamp);
            }
        }
    }
}

/// Saves the resume point at most every `SAVE_EVERY` while it moves,
/// until `stop` (the connection's task saves it once more as it ends).
pub(crate) async fn keep_saved(
    counters: Arc<super::AlertCounters>,
    save: SaveNow,
    stop: CancellationToken,
) {
    let mut saved = counters.ledger.resume();
    let mut tick = tokio::time::interval(SAVE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = counters.ledger.resume();
        if now == saved {
            continue;
        }
        // A file write and its sync: off the runtime's threads. It is
        // short and bounded, so it is awaited even at stop.
        let save = Arc::clone(&save);
        if tokio::task::spawn_blocking(move || save()).await.is_err() {
            tracing::warn!("saving the alerts' resume point failed");
        }
        saved = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_is_before_the_oldest_undelivered_firing() {
        let l = Ledger::starting_after(100);
        assert_eq!(l.resume(), 100);
        l.queued(110);
        l.queued(110);
        l.queued(120);
        l.evaluated(130);
        assert_eq!(l.resume(), 109);
        l.finished(110);
        assert_eq!(l.resume(), 109, "one webhook still has 110");
        l.finished(110);
        assert_eq!(l.resume(), 119);
        l.finished(120);
        assert_eq!(l.resume(), 130);
        // Not past what was evaluated, even with nothing pending.
        l.queued(140);
        assert_eq!(l.resume(), 130);
        l.finished(140);
        l.finished(140);
        assert_eq!(l.resume(), 130);
        l.evaluated(120);
        assert_eq!(l.resume(), 130, "evaluated never moves back by itself");
        l.rewound(50);
        assert_eq!(l.resume(), 50);
    }
}
