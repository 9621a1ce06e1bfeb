//! Webhook delivery: one task per rule with a webhook, fed through a
//! queue of `WEBHOOK_QUEUE` alerts. Whoever offers an alert never waits:
//! when the queue is full (the receiver is slow or down) the alert is
//! dropped for the webhook and counted. Each POST has `WEBHOOK_TIMEOUT`;
//! a connection failure, a timeout, a 408, 429 or 5xx answer is retried
//! up to `ATTEMPTS` times with a doubling pause, then counted as a
//! failure and logged (the URL without its path or query, which may hold
//! a token). Other 4xx answers are not retried: sending the same POST
//! again would get the same answer.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::AlertCounters;
use super::rule::redacted_webhook;
use crate::app::App;

/// Alerts waiting for one webhook, at most.
pub const WEBHOOK_QUEUE: usize = 100;
/// Longest one POST may take, connecting included.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// POSTs of one alert before it counts as failed.
const ATTEMPTS: u32 = 3;
/// Pause before the first retry; doubled before each next one.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// The client every webhook of a connection shares: TLS with the
/// system's roots plus the connection's CA file (`spec::http_client`).
pub fn client(tls: rustls::ClientConfig) -> Result<reqwest::Client, String> {
    crate::outbound::spec::http_client(tls, WEBHOOK_TIMEOUT)
}

/// Where alerts of one rule are POSTed.
pub struct Webhook {
    queue: mpsc::Sender<Arc<str>>,
    counters: Arc<AlertCounters>,
}

impl Webhook {
    /// Starts the delivery task, which ends at `stop` or when the
    /// `Webhook` is dropped.
    pub fn start(
        app: &App,
        client: reqwest::Client,
        url: &str,
        headers: &std::collections::BTreeMap<String, String>,
        counters: &Arc<AlertCounters>,
        stop: CancellationToken,
    ) -> Webhook {
        let (queue, rx) = mpsc::channel(WEBHOOK_QUEUE);
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            // Checked at create; a header that no longer parses is left out.
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                map.insert(name, value);
            }
        }
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let target = Target {
            client,
            url: url.to_string(),
            shown: redacted_webhook(url),
            headers: map,
            counters: Arc::clone(counters),
        };
        app.shutdown.spawn(deliver_all(target, rx, stop));
        Webhook {
            queue,
            counters: Arc::clone(counters),
        }
    }

    /// Queues an alert (the JSON alert object) without waiting.
    pub fn offer(&self, alert: Arc<str>) {
        if self.queue.try_send(alert).is_err() {
            self.counters.webhook_drops.fetch_add(1, Relaxed);
        }
    }
}

struct Target {
    client: reqwest::Client,
    url: String,
    /// The URL as logs show it.
    shown: String,
    headers: HeaderMap,
    counters: Arc<AlertCounters>,
}

async fn deliver_all(target: Target, mut rx: mpsc::Receiver<Arc<str>>, stop: CancellationToken) {
    loop {
        let alert = tokio::select! {
            _ = stop.cancelled() => return,
            alert = rx.recv() => match alert {
                Some(alert) => alert,
                None => return,
            },
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            () = deliver(&target, alert) => {}
        }
    }
}

/// POSTs one alert, retrying what may succeed later.
async fn deliver(target: &Target, alert: Arc<str>) {
    let mut pause = FIRST_RETRY;
    for attempt in 1..=ATTEMPTS {
        let sent = target
            .client
            .post(&target.url)
            .headers(target.headers.clone())
            .body(alert.as_bytes().to_vec())
            .send()
            .await;
        let (why, retry) = match sent {
            Ok(answer) if answer.status().is_success() => {
                target.counters.webhook_sent.fetch_add(1, Relaxed);
                return;
            }
            Ok(answer) => {
                let status = answer.status();
                let retry = status.is_server_error() || matches!(status.as_u16(), 408 | 429);
                (format!("answered {status}"), retry)
            }
            // Without the URL: reqwest's message would show it whole.
            Err(e) => (describe(&e.without_url()), true),
        };
        if !retry || attempt == ATTEMPTS {
            target.counters.webhook_failures.fetch_add(1, Relaxed);
            tracing::warn!(webhook = %target.shown, attempts = attempt, "webhook failed: {why}");
            return;
        }
        tracing::debug!(webhook = %target.shown, attempt, "webhook failed, retrying: {why}");
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {} s", WEBHOOK_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        e.to_string()
    }
}
