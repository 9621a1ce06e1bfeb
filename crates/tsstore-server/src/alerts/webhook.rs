//! Webhook delivery: one task per rule with a webhook, fed through a
//! queue of `WEBHOOK_QUEUE` alerts. When the queue is full (the receiver
//! is slow or down), evaluation waits for room: the records wait in the
//! ring meanwhile, and nothing is dropped. Each POST has
//! `WEBHOOK_TIMEOUT`; a connection failure, a timeout, a 408, 429 or 5xx
//! answer is retried up to `ATTEMPTS` times with a doubling pause, then
//! counted as a failure, logged and shown as the connection's
//! `alerts_last_error` (the URL without its path or query, which may hold
//! a token). Other 4xx answers are not retried: sending the same POST
//! again would get the same answer. A firing stays pending in the
//! connection's `Ledger` until its POST is done, so a restart resumes
//! before it.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::AlertCounters;
use super::rule::redacted_webhook;
use crate::net::{HttpClient, HttpError, TlsError};
use crate::shutdown::Shutdown;

/// Alerts waiting for one webhook, at most.
pub const WEBHOOK_QUEUE: usize = 100;
/// Longest one POST may take, connecting included.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// POSTs of one alert before it counts as failed.
const ATTEMPTS: u32 = 3;
/// Pause before the first retry; doubled before each next one.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// The client every webhook of a connection shares: TLS with the
/// system's roots plus the connection's CA file.
pub fn client(ca_file: Option<&std::path::Path>) -> Result<Arc<HttpClient>, TlsError> {
    let tls = crate::net::client_tls(ca_file)?;
    Ok(Arc::new(HttpClient::new(tls, WEBHOOK_TIMEOUT)))
}

/// An alert waiting for its POST, with the record it is about.
struct Queued {
    timestamp: i64,
    alert: Arc<str>,
}

/// Where alerts of one rule are POSTed.
pub struct Webhook {
    queue: mpsc::Sender<Queued>,
    counters: Arc<AlertCounters>,
}

impl Webhook {
    /// Starts the delivery task, which ends at `stop` or when the
    /// `Webhook` is dropped.
    pub fn start(
        shutdown: &Shutdown,
        client: Arc<HttpClient>,
        rule: &str,
        url: &str,
        headers: &std::collections::BTreeMap<String, String>,
        counters: &Arc<AlertCounters>,
        stop: CancellationToken,
    ) -> Webhook {
        let (queue, rx) = mpsc::channel(WEBHOOK_QUEUE);
        // Checked at create; headers that no longer parse are left out.
        let mut map = crate::net::header_map(headers).unwrap_or_default();
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let target = Target {
            client,
            rule: rule.to_string(),
            url: url.to_string(),
            shown: redacted_webhook(url),
            headers: map,
            counters: Arc::clone(counters),
        };
        shutdown.spawn(deliver_all(target, rx, stop));
        Webhook {
            queue,
            counters: Arc::clone(counters),
        }
    }

    /// Queues an alert (the JSON alert object) about the record at
    /// `timestamp`, waiting for room: a receiver that is slow or down
    /// pauses evaluation rather than lose alerts. `false`: the connection
    /// stops (or its webhook task has ended), nothing was queued.
    pub async fn send(&self, timestamp: i64, alert: Arc<str>, stop: &CancellationToken) -> bool {
        // Pending before it is in the queue: the task may take it and
        // finish it at once.
        self.counters.ledger.queued(timestamp);
        let queued = tokio::select! {
            biased;
            _ = stop.cancelled() => false,
            sent = self.queue.send(Queued { timestamp, alert }) => sent.is_ok(),
        };
        if !queued {
            self.counters.ledger.finished(timestamp);
        }
        queued
    }
}

struct Target {
    client: Arc<HttpClient>,
    /// The rule's name, for `alerts_last_error`.
    rule: String,
    url: String,
    /// The URL as logs show it.
    shown: String,
    headers: HeaderMap,
    counters: Arc<AlertCounters>,
}

async fn deliver_all(target: Target, mut rx: mpsc::Receiver<Queued>, stop: CancellationToken) {
    loop {
        let queued = tokio::select! {
            _ = stop.cancelled() => return,
            queued = rx.recv() => match queued {
                Some(queued) => queued,
                None => return,
            },
        };
        // At stop, a POST under way is left pending: the resume point
        // stays before it, so a restart POSTs it again.
        tokio::select! {
            _ = stop.cancelled() => return,
            () = deliver(&target, queued.alert) => {}
        }
        target.counters.ledger.finished(queued.timestamp);
    }
}

/// POSTs one alert, retrying what may succeed later.
async fn deliver(target: &Target, alert: Arc<str>) {
    let mut pause = FIRST_RETRY;
    for attempt in 1..=ATTEMPTS {
        let body = Bytes::copy_from_slice(alert.as_bytes());
        let sent = target
            .client
            .send(Method::POST, &target.url, &target.headers, body)
            .await;
        let (why, retry) = match sent {
            Ok(answer) if answer.status.is_success() => {
                target.counters.webhook_sent.fetch_add(1, Relaxed);
                return;
            }
            Ok(answer) => {
                let status = answer.status;
                let retry = status.is_server_error() || matches!(status.as_u16(), 408 | 429);
                (Failure::Answered(status.as_u16()), retry)
            }
            Err(e) => (Failure::Sending(e), true),
        };
        if !retry || attempt == ATTEMPTS {
            target.counters.webhook_failures.fetch_add(1, Relaxed);
            tracing::warn!(webhook = %target.shown, rule = %target.rule, attempts = attempt, "webhook failed: {why}");
            target.counters.set_last_error(format!(
                "rule '{}': webhook {} failed after {attempt} attempt(s): {why}",
                target.rule, target.shown
            ));
            return;
        }
        tracing::debug!(webhook = %target.shown, attempt, "webhook failed, retrying: {why}");
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
}

/// Why one POST failed, as the log says it (never with the URL, whose
/// path or query may hold a token).
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("answered {0}")]
    Answered(u16),
    #[error(transparent)]
    Sending(HttpError),
}
