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
//! The feed reads the store at its own pace, `follow::READ_BATCH` records at a
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tsstore::aggregate::Aggregator;

use super::ack_window::{AckWindow, InFlight};
use super::encode::DataEncoding;
use super::follow::{Follower, Moved};
use super::options::ReadSpec;
use super::pipeline;
use super::session::{Ending, Incoming, Outgoing, error_message};
use super::wrap::{Announcer, record_message};
pub use super::wrap::{Envelope, data_message, window_message};
use crate::registry::{OpenStore, store_stopping};

/// Longest the partial window at a stop may wait for the peer.
const PARTIAL_FLUSH_WAIT: Duration = Duration::from_secs(1);

/// How the peer confirms what it has: when the feed marks its cursor
/// for the peer's transport to confirm, or whether the peer acknowledges
/// messages itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    Never,
    /// After each batch of messages (a WebSocket ping each).
    PerBatch,
    /// After each message (MQTT: a mark costs no network, and resuming
    /// repeats nothing acknowledged).
    PerMessage,
    /// The peer sends `{"type":"ack","timestamp":T}` once it has handled
    /// the message `T` and those before; at most the window is in flight.
    App(AckWindow),
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
    /// Set when `stop` was cancelled because another connection took the
    /// feed over (a durable reader), not because the server stops.
    pub replaced: Option<Arc<AtomicBool>>,
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

    /// A truncate removed every record after `cursor`: a resume point
    /// past it moves back to it, or it would skip what comes next.
    fn rewound(&mut self, _cursor: i64) {}

    /// App acks: this many messages are sent and not yet acknowledged.
    fn in_flight(&mut self, _messages: usize) {}

    /// The peer sent an ack the feed refused (answered with an error).
    fn refused_ack(&mut self, _why: &str) {}
}

impl<F: FnMut(i64)> Progress for F {
    fn reached(&mut self, cursor: i64) {
        self(cursor)
    }
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
    let ending = match follow(&mut feed, sink, incoming, progress, sent).await {
        Ending::ServerStopping if feed.replaced.as_ref().is_some_and(|r| r.load(Relaxed)) => {
            Ending::Replaced
        }
        other => other,
    };
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
    let Some(mut follower) = Follower::new(&open, feed.from) else {
        return Ending::StoreClosed;
    };
    let stamps = feed.spec.stamps;
    let enc = DataEncoding::of(&open.store).with_stamps(stamps);
    let mut agg = feed
        .spec
        .agg
        .take()
        .map(|a| (a.window_ns, Aggregator::new(a)));
    let mut names = Announcer::new(feed.spec.compact, feed.envelope, stamps);
    // Windows are made of records as users see them (a schema store's
    // fields by name), then compacted by the announcer.
    if agg.is_some() {
        feed.spec.compact = false;
    }
    let mut notices = feed.notices.take();
    let mut in_flight = match feed.confirm {
        Confirm::App(window) => Some(InFlight::new(window, feed.from)),
        _ => None,
    };
    // The end of the window the aggregator holds, to close it by time.
    let mut window_end: Option<i64> = None;
    // A gap is only news when the cursor pointed at something.
    let mut cursor_is_known = feed.from > 0;
    let start = tokio::time::Instant::now() + feed.ping_every;
    let mut ping = tokio::time::interval_at(start, feed.ping_every);
    let mut last_heard = Instant::now();
    // Sends one message, or ends the feed.
    macro_rules! send {
        ($message:expr) => {
            if let Err(e) = deliver(sink, $message, &stop, follower.stopping()).await {
                return e;
            }
        };
    }
    // Takes in what the peer said: acks move the window, a refused one is
    // answered; ends the feed when the peer has gone.
    macro_rules! hear {
        ($m:expr) => {
            match heard($m, &mut last_heard, progress, in_flight.as_mut()) {
                Heard::Fine => {}
                Heard::Answer(answer) => send!(Outgoing::Text(answer)),
                Heard::Gone => return Ending::PeerGone,
            }
        };
    }
    // Sends a data message (a record or a window), first waiting for
    // acks while the window is full.
    macro_rules! send_data {
        ($message:expr, $timestamp:expr, $upto:expr) => {
            while in_flight.as_ref().is_some_and(InFlight::is_full) {
                tokio::select! {
                    _ = stop.cancelled() => return Ending::ServerStopping,
                    _ = store_stopping(follower.stopping()) => return Ending::StoreDeleted,
                    _ = ping.tick() => {
                        if last_heard.elapsed() > feed.idle_timeout {
                            return Ending::Idle;
                        }
                        send!(Outgoing::Ping);
                    }
                    m = incoming.next() => hear!(m),
                }
            }
            let message: Outgoing = $message;
            if let Some(w) = &mut in_flight {
                w.push($timestamp, $upto, message_bytes(&message));
                progress.in_flight(w.len());
            }
            sent.fetch_add(1, Relaxed);
            send!(message);
            progress.delivered($upto);
        };
    }
    loop {
        let cursor = follower.cursor();
        let step = match follower.step().await {
            Ok(step) => step,
            Err(e) => return Ending::ReadFailed(e.to_string()),
        };
        if let Some(oldest) = step.oldest_after_cursor
            && cursor_is_known
        {
            if feed.envelope == Envelope::Typed {
                let mut gap = b"{\"type\":\"gap\",\"from\":".to_vec();
                stamps.push(&mut gap, cursor);
                gap.extend_from_slice(b",\"to\":");
                stamps.push(&mut gap, oldest);
                gap.push(b'}');
                let gap = String::from_utf8(gap).unwrap_or_default();
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
        let caught_up = step.caught_up();
        let mut written = None;
        if let Some(last) = step.last_timestamp() {
            // Reported before sending: the lag is what is not yet sent.
            progress.reached(last);
        }
        for rec in step.records() {
            cursor_is_known = true;
            let Some(data) = pipeline::shown(&open.store, &feed.spec, rec.data) else {
                continue;
            };
            // The message, the timestamp it shows, and up to where it
            // makes the peer complete.
            let (message, shown_at, upto) = match &mut agg {
                None => (
                    record_message(feed.envelope, rec.timestamp(), &data, enc),
                    rec.timestamp(),
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
                    (message, w.end, w.end - 1)
                }
            };
            send_data!(message, shown_at, upto);
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
        // confirming earlier batches, acks).
        while let Some(notice) = notices.as_mut().and_then(|n| n.try_recv().ok()) {
            send!(Outgoing::Text(notice));
        }
        while let Some(m) = incoming.next().now_or_never() {
            hear!(m);
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
            moved = follower.moved() => match moved {
                Moved::On { rewound } => {
                    if rewound {
                        progress.rewound(follower.cursor());
                    }
                }
                Moved::Reset => return Ending::StoreReset,
                Moved::Closed => return Ending::StoreClosed,
                Moved::Stopping => return Ending::StoreDeleted,
            },
            _ = window_timer => {
                if let Some((_, aggregator)) = &mut agg
                    && let Some(w) = aggregator.close_if_ended(tsstore::now_ns())
                {
                    window_end = None;
                    let (schema, message) = names.window(&w);
                    if let Some(schema) = schema {
                        send!(Outgoing::Text(schema));
                    }
                    send_data!(message, w.end, w.end - 1);
                    if matches!(feed.confirm, Confirm::PerBatch | Confirm::PerMessage) {
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
            m = incoming.next() => hear!(m),
        }
    }
}

/// The bytes a message puts in flight.
fn message_bytes(m: &Outgoing) -> usize {
    match m {
        Outgoing::Text(t) => t.len(),
        Outgoing::Binary(b) => b.len(),
        _ => 0,
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

/// What the feed makes of a message from the peer.
enum Heard {
    Fine,
    /// An error to send back (a refused ack).
    Answer(String),
    Gone,
}

/// Takes note of what the peer sent.
fn heard(
    m: Option<Incoming>,
    last_heard: &mut Instant,
    progress: &mut (dyn Progress + Send),
    in_flight: Option<&mut InFlight>,
) -> Heard {
    let refuse = |progress: &mut (dyn Progress + Send), why: String| {
        progress.refused_ack(&why);
        Heard::Answer(error_message(&why, "invalid_ack"))
    };
    match m {
        Some(Incoming::Alive) => *last_heard = Instant::now(),
        Some(Incoming::Confirmed(c)) => {
            *last_heard = Instant::now();
            progress.confirmed(c);
        }
        Some(Incoming::Acked(t)) => {
            *last_heard = Instant::now();
            let Some(window) = in_flight else {
                return refuse(
                    progress,
                    "this feed takes no acks (its acknowledgement is the transport's)".into(),
                );
            };
            match window.ack(t) {
                Ok(Some(upto)) => {
                    progress.in_flight(window.len());
                    progress.confirmed(upto);
                }
                Ok(None) => {}
                Err(why) => return refuse(progress, why),
            }
        }
        Some(Incoming::BadAck(why)) => {
            *last_heard = Instant::now();
            return refuse(progress, why);
        }
        Some(Incoming::Gone) | None => return Heard::Gone,
    }
    Heard::Fine
}
