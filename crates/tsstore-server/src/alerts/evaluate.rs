//! The evaluation task of one push connection: records come in through a
//! bounded queue, each is parsed once and evaluated against every rule,
//! and each firing becomes an alert for the socket and the webhook.
//!
//! The task lives as long as the connection (across reconnects), so
//! cooldowns hold across a dropped peer; records sent again after a
//! reconnect (at-least-once delivery) are not evaluated twice: the task
//! skips any record not newer than the last one it evaluated.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tsstore::rules::Rule;

use super::AlertCounters;
use super::rule::RuleSpec;
use super::webhook::{self, Webhook};
use crate::app::App;
use crate::outbound::ConnectionSpec;
use crate::registry::OpenStore;

/// Records waiting for evaluation, at most.
pub const EVALUATION_QUEUE: usize = 1000;
/// Alerts waiting to be sent on the connection's socket, at most.
pub const NOTICE_QUEUE: usize = 64;

/// A record to evaluate: as stored (expanded by the task, not the feed).
struct Candidate {
    timestamp: i64,
    stored: Vec<u8>,
}

/// The data path's side of a connection's alerting.
pub struct Alerting {
    candidates: mpsc::Sender<Candidate>,
    counters: Arc<AlertCounters>,
}

/// A rule with where its alerts go besides the socket.
struct Armed {
    rule: Rule,
    webhook: Option<Webhook>,
}

/// Who the alerts are about.
struct Origin {
    open: Arc<OpenStore>,
    connection_id: String,
}

impl Alerting {
    /// Starts evaluating the rules of `spec` (a push connection `id` on
    /// `open`'s store). Returns the offering side and the queue of alert
    /// messages for the socket. The task ends at `stop` or once the
    /// `Alerting` is dropped.
    pub fn start(
        app: &App,
        open: &Arc<OpenStore>,
        id: &str,
        spec: &ConnectionSpec,
        counters: &Arc<AlertCounters>,
        stop: &CancellationToken,
    ) -> (Alerting, mpsc::Receiver<String>) {
        let (candidates, rx) = mpsc::channel(EVALUATION_QUEUE);
        let (notices, notices_rx) = mpsc::channel(NOTICE_QUEUE);
        let armed = arm(app, id, spec, counters, stop);
        let origin = Origin {
            open: Arc::clone(open),
            connection_id: id.to_string(),
        };
        app.shutdown.spawn(evaluate_all(
            origin,
            armed,
            rx,
            notices,
            Arc::clone(counters),
            stop.clone(),
        ));
        let alerting = Alerting {
            candidates,
            counters: Arc::clone(counters),
        };
        (alerting, notices_rx)
    }

    /// Queues a record (as stored) for evaluation without waiting; when
    /// the queue is full it is dropped and counted.
    pub fn offer(&self, timestamp: i64, stored: &[u8]) {
        let candidate = Candidate {
            timestamp,
            stored: stored.to_vec(),
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.candidates.try_send(candidate) {
            self.counters.evaluation_drops.fetch_add(1, Relaxed);
        }
    }
}

/// The rules of `spec`, each with its webhook started.
fn arm(
    app: &App,
    id: &str,
    spec: &ConnectionSpec,
    counters: &Arc<AlertCounters>,
    stop: &CancellationToken,
) -> Vec<Armed> {
    let needs_client = spec.rules.iter().any(|r| r.webhook.is_some());
    let client = if needs_client {
        match spec
            .tls_config()
            .map_err(|e| e.to_string())
            .and_then(webhook::client)
        {
            Ok(client) => Some(client),
            Err(e) => {
                tracing::error!(connection = %id, "webhooks disabled: {e}");
                None
            }
        }
    } else {
        None
    };
    spec.rules
        .iter()
        .filter_map(|r: &RuleSpec| {
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
                    app,
                    client.clone(),
                    url,
                    &r.webhook_headers,
                    counters,
                    stop.clone(),
                )),
                _ => None,
            };
            Some(Armed { rule, webhook })
        })
        .collect()
}

async fn evaluate_all(
    origin: Origin,
    mut armed: Vec<Armed>,
    mut rx: mpsc::Receiver<Candidate>,
    notices: mpsc::Sender<String>,
    counters: Arc<AlertCounters>,
    stop: CancellationToken,
) {
    let mut evaluated_to = i64::MIN;
    loop {
        let candidate = tokio::select! {
            _ = stop.cancelled() => return,
            c = rx.recv() => match c {
                Some(c) => c,
                None => return,
            },
        };
        if candidate.timestamp <= evaluated_to {
            continue;
        }
        evaluated_to = candidate.timestamp;
        let expanded = origin.open.store.expand(&candidate.stored);
        // Parsed once for every rule; a record that is not JSON matches none.
        let Ok(record) = serde_json::from_slice::<serde_json::Value>(&expanded) else {
            continue;
        };
        let now = Instant::now();
        for a in &mut armed {
            if !a.rule.fire(&record, now) {
                continue;
            }
            counters.fired.fetch_add(1, Relaxed);
            let alert = alert_object(&origin, &a.rule, candidate.timestamp, &record);
            let message = format!(
                "{{\"type\":\"alert\",\"timestamp\":{},\"alert\":{alert}}}",
                candidate.timestamp
            );
            if notices.try_send(message).is_err() {
                counters.socket_drops.fetch_add(1, Relaxed);
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
    origin: &Origin,
    rule: &Rule,
    timestamp: i64,
    record: &serde_json::Value,
) -> Arc<str> {
    serde_json::json!({
        "rule_name": rule.name,
        "condition": rule.condition,
        "timestamp": timestamp,
        "data": record,
        "store_name": origin.open.store.name(),
        "connection_id": origin.connection_id,
        "fired_at": tsstore::now_ns(),
    })
    .to_string()
    .into()
}
