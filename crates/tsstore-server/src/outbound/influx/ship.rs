//! The shipper of an influx session: the feed's messages become lines,
//! lines become POSTs of at most `batch_size` lines (sooner when the first
//! line has waited `max_delay`), and the feed's marks are confirmed once
//! every line before them is delivered. While a POST is out the shipper
//! takes nothing from the feed, whose channel holds one message: a slow
//! engine holds the feed back, and memory holds one batch.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tsstore::line_protocol::{EncodeError, LineOptions, encode_record};

use super::InfluxConnection;
use crate::net::{HttpClient, HttpResponse};
use crate::outbound::backoff::Backoff;
use crate::outbound::connection::{SessionError, State};
use crate::records::session::{Incoming, Outgoing};

/// The most of an engine's answer kept for the connection's `last_error`.
const ANSWER_SHOWN: usize = 300;

/// A record as the feed writes it (`Envelope::Plain`): a window of an
/// aggregation has the same two members.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(deserialize_with = "crate::json_int::optional_timestamp")]
    timestamp: Option<i64>,
    #[serde(borrow)]
    data: &'a RawValue,
}

pub(super) struct Shipper<'a> {
    client: HttpClient,
    url: String,
    headers: HeaderMap,
    gzip: bool,
    batch_size: usize,
    max_delay: Duration,
    options: LineOptions,
    conn: &'a Arc<InfluxConnection>,
    backoff: &'a mut Backoff,
    /// Lines waiting, and how many.
    lines: Vec<u8>,
    points: usize,
    records: u64,
    /// The newest mark that the waiting lines come before.
    mark: Option<i64>,
    /// When the waiting lines go, at the latest.
    due: Option<Instant>,
}

impl<'a> Shipper<'a> {
    pub(super) fn new(
        client: HttpClient,
        store: &str,
        conn: &'a Arc<InfluxConnection>,
        backoff: &'a mut Backoff,
    ) -> Result<Shipper<'a>, SessionError> {
        let spec = &conn.spec;
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if spec.gzip() {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        if let Some(auth) = spec.authorization() {
            let mut value = HeaderValue::from_str(&auth).map_err(|_| SessionError::Credentials)?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        Ok(Shipper {
            client,
            url: spec.url.clone(),
            headers,
            gzip: spec.gzip(),
            batch_size: spec.batch_size(),
            max_delay: spec.max_delay()?,
            options: spec.line_options(store),
            conn,
            backoff,
            lines: Vec::new(),
            points: 0,
            records: 0,
            mark: None,
            due: None,
        })
    }

    /// Runs until the feed ends (`Ok`, what was waiting sent) or a batch
    /// cannot be delivered (`Err`).
    pub(super) async fn run(
        mut self,
        mut from_feed: mpsc::Receiver<Outgoing>,
        confirms: mpsc::Sender<Incoming>,
    ) -> Result<(), SessionError> {
        self.probe().await?;
        loop {
            let due = self.due;
            let message = tokio::select! {
                m = from_feed.recv() => m,
                _ = async { tokio::time::sleep_until(due.unwrap_or_else(Instant::now)).await },
                    if due.is_some() => {
                    self.post(&confirms).await?;
                    continue;
                }
            };
            match message {
                Some(Outgoing::Text(text)) => {
                    self.take(&text);
                    if self.points >= self.batch_size {
                        self.post(&confirms).await?;
                    }
                }
                Some(Outgoing::Mark(cursor)) => {
                    if self.points == 0 {
                        // Everything before it is delivered (or had
                        // nothing to send).
                        let _ = confirms.try_send(Incoming::Confirmed(cursor));
                    } else {
                        self.mark = Some(cursor);
                    }
                }
                Some(Outgoing::Ping) => {
                    let _ = confirms.try_send(Incoming::Alive);
                }
                Some(Outgoing::Binary(_)) => {}
                Some(Outgoing::Close { .. }) | None => {
                    // The feed ended (server stopping, store gone): what
                    // waits goes now, or with the next session.
                    if self.points > 0 {
                        self.post(&confirms).await?;
                    }
                    return Ok(());
                }
            }
            self.conn.in_flight.store(self.points as u64, Relaxed);
        }
    }

    /// One record (or window) as lines; one with nothing to send is
    /// counted as skipped.
    fn take(&mut self, text: &str) {
        let points = serde_json::from_str::<Message>(text)
            .map_err(EncodeError::from)
            .and_then(|m| {
                let ts = m.timestamp.unwrap_or(0);
                encode_record(&mut self.lines, ts, m.data.get().as_bytes(), &self.options)
            });
        match points {
            Ok(n) => {
                self.points += n;
                self.records += 1;
                if self.due.is_none() {
                    self.due = Some(Instant::now() + self.max_delay);
                }
            }
            Err(why) => {
                self.conn.skipped.fetch_add(1, Relaxed);
                tracing::debug!(connection = %self.conn.id, "record not shipped: {why}");
            }
        }
    }

    /// An empty write: whether the engine is there and takes the
    /// credentials, before there is anything to send (the state shows
    /// it). A 400 is an engine that wants lines: it is there.
    async fn probe(&mut self) -> Result<(), SessionError> {
        let body = if self.gzip { gzip(b"")? } else { Vec::new() };
        let answer = self
            .client
            .send(Method::POST, &self.url, &self.headers, Bytes::from(body))
            .await?;
        if answer.status.is_success() || answer.status.as_u16() == 400 {
            self.conn.set_state(State::Connected);
            return Ok(());
        }
        Err(answered(&answer))
    }

    /// Sends the waiting lines. Delivered (2xx) or refused as points
    /// (400, 422: counted, passed over): the marks before them are
    /// confirmed. Anything else ends the session.
    async fn post(&mut self, confirms: &mpsc::Sender<Incoming>) -> Result<(), SessionError> {
        self.due = None;
        if self.points == 0 {
            return Ok(());
        }
        let body = if self.gzip {
            gzip(&self.lines)?
        } else {
            std::mem::take(&mut self.lines)
        };
        let answer = self
            .client
            .send(Method::POST, &self.url, &self.headers, Bytes::from(body))
            .await?;
        let status = answer.status;
        if status.is_success() {
            self.conn.points_sent.fetch_add(self.points as u64, Relaxed);
            self.conn.records_sent.fetch_add(self.records, Relaxed);
            self.conn.set_state(State::Connected);
            self.backoff.reset();
        } else if matches!(status.as_u16(), 400 | 422) {
            // The engine refuses points (400 Bad Request, 422
            // Unprocessable Entity), not the request.
            // InfluxDB stores the rest of a partial write and says how
            // many it dropped; otherwise the whole batch is counted.
            let dropped = dropped(&answer.body).unwrap_or(self.points as u64);
            self.conn.skipped.fetch_add(dropped, Relaxed);
            self.conn
                .points_sent
                .fetch_add((self.points as u64).saturating_sub(dropped), Relaxed);
            let why = format!(
                "the engine refused {dropped} of {} points ({status}), passed over: {}",
                self.points,
                excerpt(&answer.body)
            );
            tracing::warn!(connection = %self.conn.id, "{why}");
            self.conn.failed(State::Connected, why);
        } else {
            return Err(answered(&answer));
        }
        self.lines.clear();
        self.points = 0;
        self.records = 0;
        self.conn.in_flight.store(0, Relaxed);
        if let Some(cursor) = self.mark.take() {
            let _ = confirms.try_send(Incoming::Confirmed(cursor));
        }
        Ok(())
    }
}

fn gzip(lines: &[u8]) -> Result<Vec<u8>, SessionError> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(lines.len() / 4),
        flate2::Compression::fast(),
    );
    e.write_all(lines)
        .and_then(|()| e.finish())
        .map_err(SessionError::Gzip)
}

/// An answer that ends the session.
fn answered(answer: &HttpResponse) -> SessionError {
    SessionError::EngineAnswered {
        status: answer.status.as_u16(),
        answer: excerpt(&answer.body),
    }
}

/// `dropped=N` of an InfluxDB partial write's answer.
fn dropped(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let at = text.rfind("dropped=")? + "dropped=".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The start of an answer, on one line.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(ANSWER_SHOWN)]);
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
