//! A live feed of one store over a WebSocket, whichever side dialled: the
//! records after a cursor, then each new one as the engine signals its
//! commit, shown and aggregated as a `ReadSpec` says. The WebSocket live
//! read (`http::ws`) runs it as a server; outbound push connections run
//! it as a client, with the alerts of their rules as `notices`.
//!
//! Compact output names fields by index: a `{"type":"schema","_schema":
//! {"1":"name",...}}` message comes before the first data that uses an
//! index, and again (whole, indices unchanged) when new names appear (a
//! schema update, or a window with a field not seen before).
//!
//! The feed reads the store at its own pace, `READ_BATCH` records at a
//! time, and every send waits for the peer while racing the stop signals:
//! a slow or stalled peer holds one batch, never slows ingest, and never
//! keeps a stopping server or a store being deleted waiting. Windows of an
//! aggregation are sent when they close, by time too, and the window being
//! filled goes out marked partial when the feed is stopped. If the ring has
//! overwritten records after the cursor, `{"type":"gap","from","to"}` says
//! so (records with `from < timestamp < to` may be lost) and the feed goes
//! on. It pings the peer every `ping_every`, and ends when it has heard
//! nothing for `idle_timeout`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tsstore::aggregate::{Aggregator, Window};
use tsstore::{CommitEvent, Record};

use super::encode::{DataEncoding, compact_window, push_names, push_window};
use super::error::RecordResult;
use super::options::ReadSpec;
use super::pipeline;
use crate::registry::{OpenStore, store_stopping};

/// Records read from the store per step.
pub const READ_BATCH: usize = 256;
/// Longest the partial window at a stop may wait for the peer.
const PARTIAL_FLUSH_WAIT: Duration = Duration::from_secs(1);

/// What the feed sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Text(String),
    /// Raw bytes (`Envelope::Bare`).
    Binary(Vec<u8>),
    Ping,
    /// A ping carrying a cursor (8 bytes, little-endian): the peer's pong
    /// proves it has read everything sent before it.
    Mark(i64),
    /// A WebSocket close frame.
    Close {
        code: u16,
        reason: String,
    },
}

/// What the peer did, as far as the feed cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// Anything but a close: the peer is alive.
    Alive,
    /// The pong of a `Mark`: the peer has read up to this cursor.
    Confirmed(i64),
    /// A close frame, an error, or the end of the stream.
    Gone,
}

/// Why a feed ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    ServerStopping,
    StoreDeleted,
    StoreReset,
    StoreClosed,
    Idle,
    /// The peer closed, or a send failed.
    PeerGone,
    ReadFailed(String),
}

impl Ending {
    /// The close frame to send for it (`None`: the peer is gone already).
    pub fn close_frame(&self) -> Option<Outgoing> {
        let (code, reason) = match self {
            Ending::ServerStopping => (1001, "the server is stopping".to_string()),
            Ending::StoreDeleted => (1001, "the store is being deleted".to_string()),
            Ending::StoreReset => (1000, "the store was reset".to_string()),
            Ending::StoreClosed => (1001, "the store was closed".to_string()),
            Ending::Idle => (
                1008,
                "idle timeout: nothing heard from the peer".to_string(),
            ),
            Ending::ReadFailed(why) => (1011, format!("reading the store failed: {why}")),
            Ending::PeerGone => return None,
        };
        Some(Outgoing::Close { code, reason })
    }
}

/// How the feed wraps each record or window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// `{"type":"data","timestamp","data"}`, with `gap` and `schema`
    /// messages beside them (WebSocket).
    Typed,
    /// `{"timestamp","data"}` (MQTT with timestamps).
    Plain,
    /// The data alone, as raw bytes: JSON as stored (expanded), text and
    /// binary as they are (MQTT without timestamps).
    Bare,
}

/// When a feed marks its cursor for the peer to confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    Never,
    /// After each batch of messages (a WebSocket ping each).
    PerBatch,
    /// After each message (MQTT: a mark costs no network, and resuming
    /// repeats nothing acknowledged).
    PerMessage,
}

/// What a feed follows and how.
pub struct Feed<'a> {
    pub open: Arc<OpenStore>,
    pub spec: ReadSpec,
    /// Records after this timestamp are sent (0: from the oldest).
    pub from: i64,
    pub stop: CancellationToken,
    pub ping_every: Duration,
    pub idle_timeout: Duration,
    /// When to send a `Mark`, whose confirmation tells the feed (and
    /// whoever resumes it) what the peer has.
    pub confirm: Confirm,
    /// Messages made beside the records (alerts), sent as they come.
    pub notices: Option<&'a mut mpsc::Receiver<String>>,
    pub envelope: Envelope,
}

/// Where the feed has got to, for whoever tracks it (lag, resume).
pub trait Progress {
    /// Every record up to `cursor` has been read (sent, filtered out or
    /// aggregated).
    fn reached(&mut self, cursor: i64);

    /// Every record up to `cursor` that the peer is to see has been
    /// written to the connection (the peer may not have read it yet).
    fn delivered(&mut self, _cursor: i64) {}

    /// The peer has read everything up to `cursor` (a `Mark` came back):
    /// resuming after it loses nothing.
    fn confirmed(&mut self, _cursor: i64) {}
}

impl<F: FnMut(i64)> Progress for F {
    fn reached(&mut self, cursor: i64) {
        self(cursor)
    }
}

/// One step: what the store holds after the cursor.
pub struct Step {
    pub records: Vec<Record>,
    /// The oldest timestamp in the store, when it is past the cursor.
    pub oldest_after_cursor: Option<i64>,
}

/// Up to `READ_BATCH` records after `cursor` (blocking: run it on the
/// blocking pool).
pub fn read_step(open: &OpenStore, cursor: i64) -> RecordResult<Step> {
    let store = &open.store;
    let oldest = store.stats().oldest_timestamp;
    let records = store
        .iter_range(cursor.saturating_add(1), i64::MAX)
        .limit(READ_BATCH)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Step {
        records,
        oldest_after_cursor: oldest.filter(|&o| o > cursor.saturating_add(1)),
    })
}

/// Sends `message` unless the server stops or the store goes first.
async fn deliver<S>(
    sink: &mut S,
    message: Outgoing,
    stop: &CancellationToken,
    stopping: &mut watch::Receiver<bool>,
) -> Result<(), Ending>
where
    S: Sink<Outgoing> + Unpin,
{
    tokio::select! {
        sent = sink.send(message) => sent.map_err(|_| Ending::PeerGone),
        _ = stop.cancelled() => Err(Ending::ServerStopping),
        _ = store_stopping(stopping) => Err(Ending::StoreDeleted),
    }
}

/// Runs the feed until it ends, then sends the close frame (if the peer
/// is still there) and returns why it ended. `sent` counts the messages
/// of records and windows sent.
pub async fn run<S, I>(
    mut feed: Feed<'_>,
    sink: &mut S,
    incoming: &mut I,
    progress: &mut (dyn Progress + Send),
    sent: &AtomicU64,
) -> Ending
where
    S: Sink<Outgoing> + Unpin,
    I: Stream<Item = Incoming> + Unpin,
{
    let ending = follow(&mut feed, sink, incoming, progress, sent).await;
    if let Some(frame) = ending.close_frame() {
        let _ = sink.send(frame).await;
    }
    let _ = sink.close().await;
    ending
}

async fn follow<S, I>(
    feed: &mut Feed<'_>,
    sink: &mut S,
    incoming: &mut I,
    progress: &mut (dyn Progress + Send),
    sent: &AtomicU64,
) -> Ending
where
    S: Sink<Outgoing> + Unpin,
    I: Stream<Item = Incoming> + Unpin,
{
    let open = Arc::clone(&feed.open);
    let stop = feed.stop.clone();
    let mut stopping = open.stopping.subscribe();
    // Subscribed before the first read: nothing committed after it is missed.
    let mut commits = open.commits();
    commits.borrow_and_update();
    let enc = DataEncoding::of(&open.store);
    let mut agg = feed
        .spec
        .agg
        .take()
        .map(|a| (a.window_ns, Aggregator::new(a)));
    let mut names = Announcer::new(feed.spec.compact, feed.envelope);
    let mut notices = feed.notices.take();
    // The end of the window the aggregator holds, to close it by time.
    let mut window_end: Option<i64> = None;
    let mut cursor = feed.from;
    // A gap is only news when the cursor pointed at something.
    let mut cursor_is_known = feed.from > 0;
    let start = tokio::time::Instant::now() + feed.ping_every;
    let mut ping = tokio::time::interval_at(start, feed.ping_every);
    let mut last_heard = Instant::now();
    // Sends one message, or ends the feed.
    macro_rules! send {
        ($message:expr) => {
            if let Err(e) = deliver(sink, $message, &stop, &mut stopping).await {
                return e;
            }
        };
    }
    loop {
        let step = {
            let open = Arc::clone(&open);
            tokio::task::spawn_blocking(move || read_step(&open, cursor)).await
        };
        let step = match step {
            Ok(Ok(step)) => step,
            Ok(Err(e)) => return Ending::ReadFailed(e.to_string()),
            Err(e) => return Ending::ReadFailed(e.to_string()),
        };
        if let Some(oldest) = step.oldest_after_cursor
            && cursor_is_known
        {
            if feed.envelope == Envelope::Typed {
                let gap = format!("{{\"type\":\"gap\",\"from\":{cursor},\"to\":{oldest}}}");
                send!(Outgoing::Text(gap));
            } else {
                tracing::warn!(store = %open.store.name(), "records between {cursor} and {oldest} were overwritten before they were sent");
            }
        }
        if agg.is_none()
            && let Some(schema) = names.store_schema(&open.store)
        {
            send!(Outgoing::Text(schema));
        }
        let caught_up = step.records.len() < READ_BATCH;
        let mut written = None;
        if let Some(last) = step.records.last() {
            // Reported before sending: the lag is what is not yet sent.
            progress.reached(last.timestamp());
        }
        for rec in step.records {
            cursor = rec.timestamp();
            cursor_is_known = true;
            let Some(data) = pipeline::shown(&open.store, &feed.spec, &rec.data) else {
                continue;
            };
            // The message, and up to where it makes the peer complete.
            let (message, upto) = match &mut agg {
                None => (
                    record_message(feed.envelope, rec.timestamp(), &data, enc),
                    rec.timestamp(),
                ),
                Some((window_ns, aggregator)) => {
                    window_end = Some((rec.timestamp().div_euclid(*window_ns) + 1) * *window_ns);
                    let Some(w) = aggregator.add(rec.timestamp(), &data) else {
                        continue;
                    };
                    let (schema, message) = names.window(&w);
                    if let Some(schema) = schema {
                        send!(Outgoing::Text(schema));
                    }
                    (message, w.end - 1)
                }
            };
            sent.fetch_add(1, Relaxed);
            send!(message);
            progress.delivered(upto);
            written = Some(upto);
            if feed.confirm == Confirm::PerMessage {
                send!(Outgoing::Mark(upto));
            }
        }
        if let Some(upto) = written
            && feed.confirm == Confirm::PerBatch
        {
            send!(Outgoing::Mark(upto));
        }
        // Alerts made meanwhile, and what the peer said (pongs
        // confirming earlier batches).
        while let Some(notice) = notices.as_mut().and_then(|n| n.try_recv().ok()) {
            send!(Outgoing::Text(notice));
        }
        while let Some(m) = incoming.next().now_or_never() {
            if heard(m, &mut last_heard, progress).is_err() {
                return Ending::PeerGone;
            }
        }
        if !caught_up {
            continue;
        }
        // Caught up: wait for a commit, the window's end, or an ending.
        let window_timer = async {
            match window_end {
                Some(end) => {
                    let wait = end.saturating_sub(tsstore::now_ns()).max(0) as u64;
                    tokio::time::sleep(Duration::from_nanos(wait)).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => {
                // The window being filled goes out as it is (partial).
                if let Some((_, aggregator)) = &mut agg
                    && let Some(w) = aggregator.flush()
                {
                    let (schema, message) = names.window(&w);
                    let last_words = async {
                        if let Some(schema) = schema {
                            sink.send(Outgoing::Text(schema)).await?;
                        }
                        sink.send(message).await
                    };
                    if let Ok(Ok(())) = tokio::time::timeout(PARTIAL_FLUSH_WAIT, last_words).await {
                        sent.fetch_add(1, Relaxed);
                    }
                }
                return Ending::ServerStopping;
            }
            _ = store_stopping(&mut stopping) => return Ending::StoreDeleted,
            changed = commits.changed() => {
                if changed.is_err() {
                    return Ending::StoreClosed;
                }
                match *commits.borrow_and_update() {
                    CommitEvent::NewRecords(_) => {}
                    CommitEvent::Reset(_) => return Ending::StoreReset,
                    CommitEvent::Closed => return Ending::StoreClosed,
                }
            }
            _ = window_timer => {
                if let Some((_, aggregator)) = &mut agg
                    && let Some(w) = aggregator.close_if_ended(tsstore::now_ns())
                {
                    window_end = None;
                    let (schema, message) = names.window(&w);
                    if let Some(schema) = schema {
                        send!(Outgoing::Text(schema));
                    }
                    sent.fetch_add(1, Relaxed);
                    send!(message);
                    progress.delivered(w.end - 1);
                    if feed.confirm != Confirm::Never {
                        send!(Outgoing::Mark(w.end - 1));
                    }
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > feed.idle_timeout {
                    return Ending::Idle;
                }
                send!(Outgoing::Ping);
            }
            notice = next_notice(&mut notices) => send!(Outgoing::Text(notice)),
            m = incoming.next() => {
                if heard(m, &mut last_heard, progress).is_err() {
                    return Ending::PeerGone;
                }
            }
        }
    }
}

/// The next notice; never, without a queue or once it is closed.
async fn next_notice(notices: &mut Option<&mut mpsc::Receiver<String>>) -> String {
    match notices {
        Some(rx) => match rx.recv().await {
            Some(notice) => notice,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// The names behind the indices of a compact feed, and how many of them
/// the peer has been told (SPEC §9: `{"type":"schema","_schema":{..}}`);
/// and how windows are wrapped.
struct Announcer {
    compact: bool,
    envelope: Envelope,
    /// Output names of windows, numbered from 1 in order of appearance.
    window_names: Vec<String>,
    announced: usize,
    /// The store schema's version last announced.
    schema_version: Option<u32>,
}

impl Announcer {
    fn new(compact: bool, envelope: Envelope) -> Announcer {
        Announcer {
            // Only a typed feed can announce a schema.
            compact: compact && envelope == Envelope::Typed,
            envelope,
            window_names: Vec::new(),
            announced: 0,
            schema_version: None,
        }
    }

    /// The schema message to send before compact records of a schema
    /// store, when the store's schema is new to the peer.
    fn store_schema(&mut self, store: &tsstore::Store) -> Option<String> {
        if !self.compact {
            return None;
        }
        let schema = store.schema()?;
        if self.schema_version == Some(schema.version()) {
            return None;
        }
        self.schema_version = Some(schema.version());
        let fields = schema.fields();
        Some(schema_message(
            fields.iter().map(|f| (f.index as usize, f.name.as_str())),
        ))
    }

    /// A window's message, compacted when the feed is, with the schema
    /// message to send first when it names new fields.
    fn window(&mut self, w: &Window) -> (Option<String>, Outgoing) {
        match self.envelope {
            Envelope::Bare => return (None, Outgoing::Binary(w.data.clone())),
            Envelope::Plain => {
                let mut out = Vec::with_capacity(96 + w.data.len());
                push_window(&mut out, b"", w, &w.data);
                return (
                    None,
                    Outgoing::Text(String::from_utf8(out).unwrap_or_default()),
                );
            }
            Envelope::Typed if !self.compact => {
                return (None, Outgoing::Text(window_message(w)));
            }
            Envelope::Typed => {}
        }
        let data = compact_window(&w.data, &mut self.window_names);
        let mut out = Vec::with_capacity(96 + data.len());
        push_window(&mut out, b"\"type\":\"data\",", w, &data);
        let message = Outgoing::Text(String::from_utf8(out).unwrap_or_default());
        if self.window_names.len() == self.announced {
            return (None, message);
        }
        self.announced = self.window_names.len();
        let names = self.window_names.iter().map(String::as_str);
        (
            Some(schema_message(names.enumerate().map(|(i, n)| (i + 1, n)))),
            message,
        )
    }
}

/// `{"type":"schema","_schema":{"1":"name",...}}`.
fn schema_message<'a>(names: impl Iterator<Item = (usize, &'a str)>) -> String {
    let mut out = b"{\"type\":\"schema\",\"_schema\":".to_vec();
    push_names(&mut out, names);
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default()
}

/// Takes note of what the peer sent; `Err` when it has gone.
fn heard(
    m: Option<Incoming>,
    last_heard: &mut Instant,
    progress: &mut (dyn Progress + Send),
) -> Result<(), ()> {
    match m {
        Some(Incoming::Alive) => *last_heard = Instant::now(),
        Some(Incoming::Confirmed(c)) => {
            *last_heard = Instant::now();
            progress.confirmed(c);
        }
        Some(Incoming::Gone) | None => return Err(()),
    }
    Ok(())
}

/// A record as `envelope` wraps it.
fn record_message(envelope: Envelope, timestamp: i64, data: &[u8], enc: DataEncoding) -> Outgoing {
    match envelope {
        Envelope::Typed => Outgoing::Text(data_message(timestamp, data, enc)),
        Envelope::Plain => {
            let mut out = Vec::with_capacity(32 + data.len());
            out.extend_from_slice(b"{\"timestamp\":");
            out.extend_from_slice(itoa::Buffer::new().format(timestamp).as_bytes());
            out.extend_from_slice(b",\"data\":");
            enc.push(&mut out, data);
            out.push(b'}');
            Outgoing::Text(String::from_utf8(out).unwrap_or_default())
        }
        Envelope::Bare => Outgoing::Binary(data.to_vec()),
    }
}

/// `{"type":"data","timestamp":..,"data":..}`.
pub fn data_message(timestamp: i64, data: &[u8], enc: DataEncoding) -> String {
    let mut out = Vec::with_capacity(48 + data.len());
    out.extend_from_slice(b"{\"type\":\"data\",\"timestamp\":");
    out.extend_from_slice(itoa::Buffer::new().format(timestamp).as_bytes());
    out.extend_from_slice(b",\"data\":");
    enc.push(&mut out, data);
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default()
}

/// A window as `{"type":"data","timestamp":end,"records","partial","data"}`.
pub fn window_message(w: &Window) -> String {
    let mut out = Vec::with_capacity(96 + w.data.len());
    push_window(&mut out, b"\"type\":\"data\",", w, &w.data);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let enc = DataEncoding {
            data_type: tsstore::DataType::Json,
            trusted: true,
        };
        assert_eq!(
            data_message(5, br#"{"t":1}"#, enc),
            r#"{"type":"data","timestamp":5,"data":{"t":1}}"#
        );
        let w = Window {
            start: 0,
            end: 10,
            partial: false,
            records: 2,
            data: br#"{"t":1.5}"#.to_vec(),
        };
        assert_eq!(
            window_message(&w),
            r#"{"type":"data","timestamp":10,"records":2,"partial":false,"data":{"t":1.5}}"#
        );
    }

    #[test]
    fn every_ending_but_a_gone_peer_says_why() {
        for e in [
            Ending::ServerStopping,
            Ending::StoreDeleted,
            Ending::StoreReset,
            Ending::StoreClosed,
            Ending::Idle,
            Ending::ReadFailed("x".into()),
        ] {
            let Some(Outgoing::Close { reason, .. }) = e.close_frame() else {
                panic!("{e:?} has a close frame");
            };
            assert!(!reason.is_empty());
        }
        assert_eq!(Ending::PeerGone.close_frame(), None);
    }
}
