//! Alert rules on push connections (a condition over a record's fields,
//! a cooldown, an optional webhook), kept off the data path.
//!
//! One evaluation task per connection with rules follows the store like a
//! live reader (the ring is its queue: nothing waits for it, nothing is
//! buffered in memory), parses each new record once, evaluates every rule
//! (with its cooldown), and hands a firing to the connection's socket (a
//! queue of `NOTICE_QUEUE` the push feed sends from) and to the rule's
//! webhook (`webhook::Webhook`, a queue of `WEBHOOK_QUEUE`). So a slow
//! evaluation, a slow peer or a hung webhook never slows a push or an
//! insert; what overflows a queue is counted.
//!
//! `rule` checks rules at create; `evaluate` runs them; `webhook` POSTs.

pub mod evaluate;
pub mod rule;
pub mod webhook;

use std::sync::atomic::AtomicU64;

pub use evaluate::{Alerting, NOTICE_QUEUE, start};
pub use rule::{MAX_RULES, RuleSpec, RuleSpecError};
pub use webhook::WEBHOOK_QUEUE;

/// What the alerting of one connection has done, for its status and
/// `/metrics`.
#[derive(Debug, Default)]
pub struct AlertCounters {
    /// Rule firings (each one is sent to the socket and the webhook).
    pub fired: AtomicU64,
    /// Times the ring overwrote records before they were evaluated.
    pub evaluation_gaps: AtomicU64,
    /// Alerts not sent on the socket: its queue was full (the peer is
    /// slow or the connection is down).
    pub socket_drops: AtomicU64,
    /// Webhook POSTs that succeeded.
    pub webhook_sent: AtomicU64,
    /// Alerts whose webhook POST failed after its retries.
    pub webhook_failures: AtomicU64,
    /// Alerts not POSTed: the webhook's queue was full.
    pub webhook_drops: AtomicU64,
}
