//! Alert rules on push connections (a condition over a record's fields,
//! a cooldown, an optional webhook), kept off the data path.
//!
//! One evaluation task per connection with rules follows the store like a
//! live reader (the ring is its queue: nothing waits for it, nothing is
//! buffered in memory), parses each new record once, evaluates every rule
//! (with its cooldown), and hands a firing to the connection's socket (a
//! queue of `NOTICE_QUEUE` the push feed sends from) and to the rule's
//! webhook (`webhook::Webhook`, a queue of `WEBHOOK_QUEUE`). A full queue
//! pauses evaluation instead of dropping the alert (the records wait in
//! the ring), except the socket's while the peer is away: then what does
//! not fit is counted (`socket_drops`), so that an absent peer never holds
//! up the webhooks. So a slow evaluation, a slow peer or a hung webhook
//! never slows a push or an insert, and an alert is lost only when the
//! ring overwrites its record before evaluation reaches it, or its
//! webhook still fails after the retries (both counted and logged).
//!
//! `rule` checks rules at create; `evaluate` runs them; `webhook` POSTs;
//! `ledger` keeps the point a restart resumes from.

pub mod evaluate;
pub mod ledger;
pub mod rule;
pub mod webhook;

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

pub use evaluate::{Alerting, NOTICE_QUEUE, start};
pub use ledger::{Ledger, SaveNow};
pub use rule::{MAX_RULES, RuleSpec, RuleSpecError};
pub use webhook::WEBHOOK_QUEUE;

/// What the alerting of one connection has done, for its status,
/// `/metrics` and its connection file.
#[derive(Debug, Default)]
pub struct AlertCounters {
    /// Rule firings (each one is sent to the socket and the webhook).
    pub fired: AtomicU64,
    /// Times the ring overwrote records before they were evaluated.
    pub evaluation_gaps: AtomicU64,
    /// Alerts not sent on the socket: they were made while the peer was
    /// away and the socket's queue was full. (While the peer is
    /// connected, a full queue pauses evaluation instead.)
    pub socket_drops: AtomicU64,
    /// Webhook POSTs that succeeded.
    pub webhook_sent: AtomicU64,
    /// Alerts whose webhook POST failed after its retries.
    pub webhook_failures: AtomicU64,
    /// The last alert lost, and why (a webhook that failed, records
    /// overwritten before evaluation, evaluation stopped).
    last_error: Mutex<Option<String>>,
    /// Where evaluation resumes after a restart.
    pub ledger: Ledger,
}

impl AlertCounters {
    /// Counters of a connection whose rules see the records after `from`.
    pub fn starting_after(from: i64) -> AlertCounters {
        AlertCounters {
            ledger: Ledger::starting_after(from),
            ..AlertCounters::default()
        }
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    fn set_last_error(&self, why: String) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(why);
        }
    }
}
