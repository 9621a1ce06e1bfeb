//! Alert rules on push connections (SPEC §10), kept off the data path.
//!
//! The push feed offers each record it sends to `Alerting::offer`, which
//! never waits: the record goes into a queue of `EVALUATION_QUEUE`, or is
//! dropped for evaluation and counted. One evaluation task per connection
//! parses each record once, evaluates every rule (with its cooldown), and
//! hands a firing to the connection's socket (a queue of `NOTICE_QUEUE`
//! the feed sends from) and to the rule's webhook (`webhook::Webhook`, a
//! queue of `WEBHOOK_QUEUE`). So a slow evaluator, a slow peer or a hung
//! webhook costs dropped alerts, counted, never a slower push or ingest.
//!
//! `rule` checks rules at create; `evaluate` runs them; `webhook` POSTs.

pub mod evaluate;
pub mod rule;
pub mod webhook;

use std::sync::atomic::AtomicU64;

pub use evaluate::{Alerting, EVALUATION_QUEUE, NOTICE_QUEUE};
pub use rule::{MAX_RULES, RuleSpec, RuleSpecError};
pub use webhook::WEBHOOK_QUEUE;

/// What the alerting of one connection has done, for its status and
/// `/metrics`.
#[derive(Debug, Default)]
pub struct AlertCounters {
    /// Rule firings (each one is sent to the socket and the webhook).
    pub fired: AtomicU64,
    /// Records not evaluated: the evaluation queue was full.
    pub evaluation_drops: AtomicU64,
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
