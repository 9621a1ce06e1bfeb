//! The evaluation task of one push connection with rules: it follows the
//! store from the newest record when the connection was created or
//! restored (rules are about new readings), the way a live reader does
//! (`records::follow`: a batch at a time on the blocking pool, then a wait for
//! the next commit), applies the connection's filter, parses each record
//! once, and evaluates every rule with its cooldown.
//!
//! The store is the queue: records wait in the ring, not in memory, so an
//! evaluation that falls behind (a burst, a batch of 100 000) catches up
//! instead of dropping, and only records the ring overwrites before their
//! turn are lost to it (counted as a gap). The task runs whether the peer
//! is connected or not, so webhooks fire while it is away, and it lives as
//! long as the connection, so cooldowns hold across reconnects. A firing
//! goes to the socket through a queue of `NOTICE_QUEUE` (full: dropped and
//! counted) and to the rule's webhook (`webhook::Webhook`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tsstore::rules::Rule;

use super::AlertCounters;
use super::rule::RuleSpec;
use super::webhook::{self, Webhook};
use crate::records::follow::{Follower, Moved};
use crate::records::pipeline::{self, Shower};
use crate::registry::OpenStore;
use crate::shutdown::Shutdown;

/// Alerts waiting to be sent on the connection's socket, at most.
pub const NOTICE_QUEUE: usize = 64;

/// A rule with where its alerts go besides the socket.
struct Armed {
    rule: Rule,
    webhook: Option<Webhook>,
}

/// What the alerting of one push connection is made of.
pub struct Alerting {
    pub connection_id: String,
    pub rules: Vec<RuleSpec>,
    /// The connection's CA file, trusted by its webhooks too.
    pub ca_file: Option<PathBuf>,
    /// The connection's filter: rules see only the records it passes.
    pub filter: Option<tsstore::Filter>,
    pub counters: Arc<AlertCounters>,
    /// Rules see the records committed after this timestamp.
    pub from: i64,
    /// The connection's stop: evaluation and webhooks end with it.
    pub stop: CancellationToken,
}

/// Starts evaluating `alerting`'s rules on the records of `open`'s store
/// committed after `alerting.from`. Returns the queue of alert messages
/// for the socket. The task ends at the connection's stop, when the store
/// goes, or when the receiver is dropped.
pub fn start(
    shutdown: &Shutdown,
    open: &Arc<OpenStore>,
    alerting: Alerting,
) -> mpsc::Receiver<String> {
    let (notices, notices_rx) = mpsc::channel(NOTICE_QUEUE);
    let evaluator = Evaluator {
        open: Arc::clone(open),
        armed: arm(shutdown, &alerting),
        connection_id: alerting.connection_id,
        filter: alerting.filter,
        notices,
        counters: alerting.counters,
    };
    shutdown.spawn(evaluator.run(alerting.from, alerting.stop));
    notices_rx
}

/// The rules, each with its webhook started.
fn arm(shutdown: &Shutdown, alerting: &Alerting) -> Vec<Armed> {
    let id = &alerting.connection_id;
    let needs_client = alerting.rules.iter().any(|r| r.webhook.is_some());
    let client = if needs_client {
        match webhook::client(alerting.ca_file.as_deref()) {
            Ok(client) => Some(client),
            Err(e) => {
                tracing::error!(connection = %id, "webhooks disabled: {e}");
                None
            }
        }
    } else {
        None
    };
    alerting
        .rules
        .iter()
        .filter_map(|r| {
            // Checked at create; a rule that no longer parses is skipped.
            let rule = match r.rule() {
                Ok(rule) => rule,
                Err(e) => {
                    tracing::error!(connection = %id, "rule skipped: {e}");
                    return None;
                }
            };
            let webhook = match (&r.webhook, &client) {
                (Some(url), Some(client)) => Some(Webhook::start(
                    shutdown,
                    Arc::clone(client),
                    url,
                    &r.webhook_headers,
                    &alerting.counters,
                    alerting.stop.clone(),
                )),
                _ => None,
            };
            Some(Armed { rule, webhook })
        })
        .collect()
}

struct Evaluator {
    open: Arc<OpenStore>,
    connection_id: String,
    armed: Vec<Armed>,
    filter: Option<tsstore::Filter>,
    notices: mpsc::Sender<String>,
    counters: Arc<AlertCounters>,
}

impl Evaluator {
    async fn run(mut self, from: i64, stop: CancellationToken) {
        let Some(mut follower) = Follower::new(&self.open, from) else {
            return;
        };
        // Rules see records as users do: expanded, through the filter.
        let spec = pipeline::whole(self.filter.take());
        loop {
            let cursor = follower.cursor();
            let step = match follower.step().await {
                Ok(step) => step,
                Err(e) => {
                    tracing::warn!(connection = %self.connection_id, "alert rules stopped: reading the store failed: {e}");
                    return;
                }
            };
            if step.oldest_after_cursor.is_some() && cursor > 0 {
                self.counters.evaluation_gaps.fetch_add(1, Relaxed);
            }
            let mut shower = Shower::new(&self.open.store, &spec);
            for rec in &step.records {
                if let Some(shown) = shower.show(&rec.data) {
                    self.evaluate(rec.timestamp(), shown);
                }
            }
            if self.notices.is_closed() {
                return;
            }
            if !step.caught_up() {
                // A long backlog yields between batches.
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                moved = follower.moved() => match moved {
                    // A reset: everything before is gone, follow from the top.
                    Moved::On { .. } | Moved::Reset => {}
                    Moved::Closed | Moved::Stopping => return,
                },
            }
        }
    }

    /// One record, as shown, against every rule: parsed once.
    fn evaluate(&mut self, timestamp: i64, shown: &[u8]) {
        // A record that is not a JSON object matches no rule.
        let Ok(record) = serde_json::from_slice::<serde_json::Value>(shown) else {
            return;
        };
        let now = Instant::now();
        for a in &mut self.armed {
            if !a.rule.fire(&record, now) {
                continue;
            }
            self.counters.fired.fetch_add(1, Relaxed);
            let alert = alert_object(&self.open, &self.connection_id, &a.rule, timestamp, &record);
            let message =
                format!("{{\"type\":\"alert\",\"timestamp\":{timestamp},\"alert\":{alert}}}");
            if self.notices.try_send(message).is_err() {
                self.counters.socket_drops.fetch_add(1, Relaxed);
            }
            if let Some(webhook) = &a.webhook {
                webhook.offer(alert);
            }
        }
    }
}

/// The alert object: what the socket's alert message carries and what
/// the webhook is POSTed.
fn alert_object(
    open: &OpenStore,
    connection_id: &str,
    rule: &Rule,
    timestamp: i64,
    record: &serde_json::Value,
) -> Arc<str> {
    serde_json::json!({
        "rule_name": rule.name,
        "condition": rule.condition,
        "timestamp": timestamp,
        "data": record,
        "store_name": open.store.name(),
        "connection_id": connection_id,
        "fired_at": tsstore::now_ns(),
    })
    .to_string()
    .into()
}
