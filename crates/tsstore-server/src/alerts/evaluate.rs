//! The evaluation task of one push connection with rules: it follows the
//! store from `Alerting::from` (the newest record when the connection was
//! created: rules are about new readings; the saved resume point when it
//! was restored), the way a live reader does (`records::follow`: a batch at
//! a time on the blocking pool, then a wait for the next commit), applies
//! the connection's filter, parses each record once, and evaluates every
//! rule with its cooldown.
//!
//! The store is the queue: records wait in the ring, not in memory, so an
//! evaluation that falls behind (a burst, a batch of 100 000) catches up
//! instead of dropping, and only records the ring overwrites before their
//! turn are lost to it (a gap: counted, logged, shown). The task runs
//! whether the peer is connected or not, so webhooks fire while it is
//! away, and it lives as long as the connection, so cooldowns hold across
//! reconnects. A firing goes to the socket through a queue of
//! `NOTICE_QUEUE` and to the rule's webhook (`webhook::Webhook`); a full
//! queue pauses evaluation until there is room, except the socket's while
//! the peer is away (not connected): what does not fit then is dropped and
//! counted, or an absent peer would hold up every webhook for as long as
//! it is gone. Once a record's firings are all handed over, the `Ledger`
//! records it evaluated.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tsstore::rules::Rule;

use super::AlertCounters;
use super::ledger::{self, SaveNow};
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
    /// Its counters and `Ledger` (which starts at `from`).
    pub counters: Arc<AlertCounters>,
    /// Rules see the records committed after this timestamp.
    pub from: i64,
    /// Whether the push's peer is connected now: a full socket queue
    /// pauses evaluation only then.
    pub connected: watch::Receiver<bool>,
    /// Writes the connection's file with the ledger's resume point.
    pub save: SaveNow,
    /// The connection's stop: evaluation and webhooks end with it.
    pub stop: CancellationToken,
}

/// Starts evaluating `alerting`'s rules on the records of `open`'s store
/// committed after `alerting.from`, and saving the resume point. Returns
/// the queue of alert messages for the socket. The tasks end at the
/// connection's stop; evaluation also when the store goes or the receiver
/// is dropped.
pub fn start(
    shutdown: &Shutdown,
    open: &Arc<OpenStore>,
    alerting: Alerting,
) -> mpsc::Receiver<String> {
    let (notices, notices_rx) = mpsc::channel(NOTICE_QUEUE);
    shutdown.spawn(ledger::keep_saved(
        Arc::clone(&alerting.counters),
        Arc::clone(&alerting.save),
        alerting.stop.clone(),
    ));
    let evaluator = Evaluator {
        open: Arc::clone(open),
        armed: arm(shutdown, &alerting),
        connection_id: alerting.connection_id,
        filter: alerting.filter,
        notices,
        connected: alerting.connected,
        counters: alerting.counters,
        stop: alerting.stop,
    };
    shutdown.spawn(evaluator.run(alerting.from));
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
                    &r.name,
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
    connected: watch::Receiver<bool>,
    counters: Arc<AlertCounters>,
    stop: CancellationToken,
}

/// One firing of a rule (by its place in `armed`) on one record.
struct Firing {
    rule: usize,
    message: String,
    alert: Arc<str>,
}

/// Evaluation must end: the connection stops or its socket queue is gone.
struct Ended;

impl Evaluator {
    async fn run(mut self, from: i64) {
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
                    let why = format!("alert rules stopped: reading the store failed: {e}");
                    tracing::warn!(connection = %self.connection_id, "{why}");
                    self.counters.set_last_error(why);
                    return;
                }
            };
            if let Some(oldest) = step.oldest_after_cursor
                && cursor > 0
            {
                self.gap(cursor, oldest);
            }
            let mut shower = Shower::new(&self.open.store, &spec);
            for rec in step.records() {
                let timestamp = rec.timestamp();
                let firings = match shower.show(rec.data) {
                    Some(shown) => self.fire(timestamp, shown),
                    None => Vec::new(),
                };
                for firing in firings {
                    if self.hand_over(timestamp, firing).await.is_err() {
                        return;
                    }
                }
                self.counters.ledger.evaluated(timestamp);
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
                _ = self.stop.cancelled() => return,
                moved = follower.moved() => match moved {
                    Moved::On { rewound: false } => {}
                    // A truncate moved the cursor back, or a reset emptied
                    // the store: what comes after is new.
                    Moved::On { rewound: true } | Moved::Reset => {
                        self.counters.ledger.rewound(follower.cursor());
                    }
                    Moved::Closed | Moved::Stopping => return,
                },
            }
        }
    }

    /// Records between `cursor` and `oldest` were overwritten unread.
    fn gap(&self, cursor: i64, oldest: i64) {
        self.counters.evaluation_gaps.fetch_add(1, Relaxed);
        let why = format!(
            "records after {cursor} and before {oldest} were overwritten before the alert rules saw them"
        );
        tracing::warn!(connection = %self.connection_id, "{why}");
        self.counters.set_last_error(why);
    }

    /// One record, as shown, against every rule: parsed once.
    fn fire(&mut self, timestamp: i64, shown: &[u8]) -> Vec<Firing> {
        // A record that is not a JSON object matches no rule.
        let Ok(record) = serde_json::from_slice::<serde_json::Value>(shown) else {
            return Vec::new();
        };
        let now = Instant::now();
        let mut firings = Vec::new();
        for (i, a) in self.armed.iter_mut().enumerate() {
            if !a.rule.fire(&record, now) {
                continue;
            }
            self.counters.fired.fetch_add(1, Relaxed);
            let alert = alert_object(&self.open, &self.connection_id, &a.rule, timestamp, &record);
            let message =
                format!("{{\"type\":\"alert\",\"timestamp\":{timestamp},\"alert\":{alert}}}");
            firings.push(Firing {
                rule: i,
                message,
                alert,
            });
        }
        firings
    }

    /// Hands one firing to the socket's queue and to its rule's webhook,
    /// waiting for room in each (but see `queue_for_socket`).
    async fn hand_over(&mut self, timestamp: i64, firing: Firing) -> Result<(), Ended> {
        self.queue_for_socket(firing.message).await?;
        if let Some(webhook) = &self.armed[firing.rule].webhook
            && !webhook.send(timestamp, firing.alert, &self.stop).await
        {
            return Err(Ended);
        }
        Ok(())
    }

    /// Queues an alert message for the socket: waits for room while the
    /// peer is connected; while it is away (or once it goes), keeps what
    /// fits and counts the rest as dropped.
    async fn queue_for_socket(&mut self, message: String) -> Result<(), Ended> {
        // Room is reserved first, so a wait given up loses no message.
        let permit = tokio::select! {
            biased;
            _ = self.stop.cancelled() => return Err(Ended),
            permit = self.notices.reserve() => Some(permit.map_err(|_| Ended)?),
            // Ready at once when the peer is away already; a closed
            // channel means the connection has gone, which is away too.
            _ = self.connected.wait_for(|up| !*up) => None,
        };
        match permit {
            Some(permit) => permit.send(message),
            None => match self.notices.try_reserve() {
                Ok(permit) => permit.send(message),
                Err(mpsc::error::TrySendError::Full(())) => {
                    self.counters.socket_drops.fetch_add(1, Relaxed);
                }
                Err(mpsc::error::TrySendError::Closed(())) => return Err(Ended),
            },
        }
        Ok(())
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
