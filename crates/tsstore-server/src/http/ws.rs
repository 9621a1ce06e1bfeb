//! WebSocket ingest (`GET .../ws/write`, SPEC §7) and live read
//! (`GET .../ws/read`, beyond the reference). Both authenticate and check
//! their options before the upgrade, so a refusal is an ordinary JSON
//! error response; after it, everything goes through `records` as REST
//! does, and errors are mapped by `http::error` (code and message).
//!
//! Ingest: each text message is an envelope `{"timestamp"?, "data"}` and
//! gets one `{"type":"ack",...}` or `{"type":"error",...}`, in order; an
//! error never closes the connection. Messages already waiting are stored
//! with one `put_many` (`intake::store_each`).
//!
//! Live read: records after the cursor (`from`), then new ones as the
//! engine signals commits, as `{"type":"data","timestamp","data"}` (or
//! windows with aggregation). The session reads the store at its own pace
//! and a send waits for the client, so a slow reader holds one batch at
//! most and never slows ingest. If the ring overwrote records after the
//! cursor, `{"type":"gap","from","to"}` says so (records with
//! `from < timestamp < to` may be lost) and the stream goes on.
//!
//! Bounds: messages up to `Limits::max_message` get an error, larger ones
//! up to `HARD_MESSAGE_FACTOR` times that close the connection (1009),
//! nothing larger is read; `MAX_WRITE_BATCH` messages per `put_many`;
//! `READ_BATCH` records per read; `Limits::max_live_readers` per store;
//! a ping every `PING_EVERY`, and a client silent for `IDLE_TIMEOUT` is
//! closed.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tsstore::aggregate::{Aggregator, Window};
use tsstore::{CommitEvent, Record};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult};
use super::extract::StoreAccess;
use crate::app::App;
use crate::metrics::Open;
use crate::records::encode::{DataEncoding, push_window};
use crate::records::options::compact_format;
use crate::records::{
    ListDefaults, ReadOptions, ReadSpec, RecordError, RecordResult, intake, pipeline,
};
use crate::registry::OpenStore;

/// Messages stored with one `put_many` at most.
const MAX_WRITE_BATCH: usize = 1024;
/// Records read from the store per step of a live read.
const READ_BATCH: usize = 256;
/// Messages over the limit but under this many times it are answered with
/// an error; larger ones close the connection.
const HARD_MESSAGE_FACTOR: usize = 4;
const PING_EVERY: Duration = Duration::from_secs(30);
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(ws_write))
        .routes(routes!(ws_read))
}

type Upgrade = Result<WebSocketUpgrade, WebSocketUpgradeRejection>;

/// Stream records in over a WebSocket: each text message is
/// `{"timestamp"?, "data"}` and is answered by `{"type":"ack","timestamp",
/// "block_num","size"}` or `{"type":"error","message","code"}`, in order.
#[utoipa::path(get, path = "/api/stores/{store}/ws/write", tag = "data",
    params(("store" = String, Path),
        ("format" = Option<String>, Query, description = "full or compact (schema stores take both)")),
    responses((status = 101, description = "WebSocket upgrade")))]
async fn ws_write(
    State(app): State<App>,
    access: StoreAccess,
    upgrade: Upgrade,
) -> ApiResult<Response> {
    compact_format(access.params.get("format"))?;
    let upgrade = upgrade.map_err(|_| ApiError::websocket_required())?;
    let hard = app.limits.max_message.saturating_mul(HARD_MESSAGE_FACTOR);
    let open = access.open;
    Ok(upgrade
        .max_message_size(hard)
        .max_frame_size(hard)
        .on_upgrade(move |socket| write_session(app, open, socket)))
}

/// The close frame of a session that ends for `reason`.
fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// Why a session is told to end, whatever it was doing.
enum Ending {
    ServerStopping,
    StoreDeleted,
    Idle,
}

impl Ending {
    fn frame(&self) -> Message {
        match self {
            Ending::ServerStopping => close(close_code::AWAY, "the server is stopping"),
            Ending::StoreDeleted => close(close_code::AWAY, "the store is being deleted"),
            Ending::Idle => close(
                close_code::POLICY,
                "idle timeout: nothing received for 90 s",
            ),
        }
    }
}

async fn write_session(app: App, open: Arc<OpenStore>, socket: WebSocket) {
    let _gauge = Open::new(&app.transports.ws_write_connections);
    let token = app.shutdown.token();
    let mut stopping = open.stopping.subscribe();
    let (mut tx, mut rx) = socket.split();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_heard = Instant::now();
    let soft = app.limits.max_message;
    let dt = open.store.data_type();
    let ending = loop {
        let first = tokio::select! {
            _ = token.cancelled() => break Some(Ending::ServerStopping),
            _ = async { drop(stopping.wait_for(|s| *s).await) } => break Some(Ending::StoreDeleted),
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_TIMEOUT {
                    break Some(Ending::Idle);
                }
                if tx.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
                continue;
            }
            m = rx.next() => m,
        };
        last_heard = Instant::now();
        // What else is already waiting joins this batch.
        let mut messages = vec![first];
        while messages.len() < MAX_WRITE_BATCH {
            match rx.next().now_or_never() {
                Some(m) => messages.push(m),
                None => break,
            }
        }
        let mut texts = Vec::with_capacity(messages.len());
        let mut end = false;
        for m in messages {
            match m {
                Some(Ok(Message::Text(t))) => texts.push(Ok(t)),
                Some(Ok(Message::Binary(_))) => texts.push(Err(RecordError::InvalidData(
                    "send each record as a text message: {\"timestamp\"?, \"data\"}".into(),
                ))),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => end = true,
                Some(Err(e)) => {
                    let reason = if e.to_string().to_lowercase().contains("too long") {
                        format!("message larger than {} bytes", soft * HARD_MESSAGE_FACTOR)
                    } else {
                        format!("cannot read the message: {e}")
                    };
                    let _ = tx.send(close(close_code::SIZE, &reason)).await;
                    return;
                }
            }
        }
        let items = texts
            .iter()
            .map(|t| match t {
                Ok(t) if t.len() > soft => Err(RecordError::InvalidData(format!(
                    "message of {} bytes is larger than {soft} (server.max_message_bytes)",
                    t.len()
                ))),
                Ok(t) => intake::envelope(dt, t.as_bytes()),
                Err(e) => Err(RecordError::InvalidData(e.to_string())),
            })
            .collect();
        let mut sent_ok = true;
        for result in intake::store_each(&open, items) {
            let reply = match result {
                Ok(h) => {
                    app.transports.ws_messages_accepted.fetch_add(1, Relaxed);
                    let mut num = itoa::Buffer::new();
                    let mut out = String::with_capacity(80);
                    out.push_str("{\"type\":\"ack\",\"timestamp\":");
                    out.push_str(num.format(h.timestamp));
                    out.push_str(",\"block_num\":");
                    out.push_str(num.format(h.block_num));
                    out.push_str(",\"size\":");
                    out.push_str(num.format(h.size));
                    out.push('}');
                    out
                }
                Err(e) => {
                    app.transports.ws_messages_rejected.fetch_add(1, Relaxed);
                    error_message(ApiError::from(e))
                }
            };
            if tx.feed(Message::Text(reply.into())).await.is_err() {
                sent_ok = false;
                break;
            }
        }
        if !sent_ok || tx.flush().await.is_err() || end {
            break None;
        }
    };
    if let Some(ending) = ending {
        let _ = tx.send(ending.frame()).await;
    }
    // Completes the closing handshake (or answers the client's close).
    let _ = tx.close().await;
}

/// `{"type":"error","message","code"}`.
fn error_message(e: ApiError) -> String {
    serde_json::json!({"type": "error", "message": e.message, "code": e.code}).to_string()
}

/// Where a live read starts: after this timestamp.
fn parse_from(raw: Option<&str>, newest: i64) -> ApiResult<i64> {
    match raw {
        None | Some("now") => Ok(newest),
        Some("oldest") => Ok(0),
        Some(v) => match v.parse::<i64>() {
            Ok(ts) if ts >= 0 => Ok(ts),
            _ => Err(RecordError::InvalidParameter(format!(
                "from: '{v}' is not now, oldest or a timestamp (nanoseconds; records after it are sent)"
            ))
            .into()),
        },
    }
}

/// Counts a live reader on its store while it lives, and publishes its
/// cursor for `/metrics`.
struct Reader {
    open: Arc<OpenStore>,
    id: u64,
}

static NEXT_READER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Reader {
    fn new(open: Arc<OpenStore>, cursor: i64) -> Reader {
        let id = NEXT_READER.fetch_add(1, Relaxed);
        if let Ok(mut cursors) = open.reader_cursors.lock() {
            cursors.insert(id, cursor);
        }
        Reader { open, id }
    }

    fn at(&self, cursor: i64) {
        if let Ok(mut cursors) = self.open.reader_cursors.lock() {
            cursors.insert(self.id, cursor);
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Ok(mut cursors) = self.open.reader_cursors.lock() {
            cursors.remove(&self.id);
        }
        self.open.live_readers.fetch_sub(1, Relaxed);
    }
}

/// Follow a store live: records after `from` (a timestamp, `now`, the
/// default, or `oldest`), then each new one as it is committed, as
/// `{"type":"data","timestamp","data"}`. Takes filter, format and the
/// aggregation options (windows are sent when they close, by time too).
#[utoipa::path(get, path = "/api/stores/{store}/ws/read", tag = "data",
    params(("store" = String, Path),
        ("from" = Option<String>, Query, description = "now (default), oldest, or a timestamp: records after it"),
        ("filter" = Option<String>, Query), ("filter_ignore_case" = Option<bool>, Query),
        ("format" = Option<String>, Query, description = "full or compact"),
        ("agg_window" = Option<String>, Query), ("agg_fields" = Option<String>, Query),
        ("agg_default" = Option<String>, Query)),
    responses((status = 101, description = "WebSocket upgrade")))]
async fn ws_read(
    State(app): State<App>,
    access: StoreAccess,
    upgrade: Upgrade,
) -> ApiResult<Response> {
    let options = ReadOptions::from_query(&access.params);
    let defaults = ListDefaults {
        limit: 1,
        include_data: true,
    };
    let store = &access.open.store;
    let spec = ReadSpec::new(
        &options,
        defaults,
        app.limits.max_records,
        store.data_type(),
    )?;
    if spec.agg.is_some() && spec.compact {
        return Err(RecordError::InvalidParameter(
            "format=compact with aggregation is not offered on a live read".into(),
        )
        .into());
    }
    let newest = store.stats().newest_timestamp.unwrap_or(0);
    let from = parse_from(access.params.get("from"), newest)?;
    let upgrade = upgrade.map_err(|_| ApiError::websocket_required())?;
    let open = access.open;
    let max = app.limits.max_live_readers;
    if open.live_readers.fetch_add(1, Relaxed) >= max {
        open.live_readers.fetch_sub(1, Relaxed);
        return Err(ApiError::too_many_readers(max));
    }
    let reader = Reader::new(Arc::clone(&open), from);
    Ok(upgrade
        .max_message_size(app.limits.max_message)
        .on_upgrade(move |socket| read_session(app, reader, spec, from, socket)))
}

/// One step of a live read: what the store holds after the cursor.
struct Step {
    records: Vec<Record>,
    /// The oldest timestamp in the store, when it is after the cursor.
    oldest_after_cursor: Option<i64>,
}

fn read_step(open: &OpenStore, cursor: i64) -> RecordResult<Step> {
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

async fn read_session(app: App, reader: Reader, mut spec: ReadSpec, from: i64, socket: WebSocket) {
    let _gauge = Open::new(&app.transports.ws_read_connections);
    let open = Arc::clone(&reader.open);
    let token = app.shutdown.token();
    let mut stopping = open.stopping.subscribe();
    // Subscribed before the first read: nothing committed after it is missed.
    let mut commits = open.commits();
    commits.borrow_and_update();
    let (mut tx, mut rx) = socket.split();
    let enc = DataEncoding::of(&open.store);
    let mut agg = spec.agg.take().map(|a| (a.window_ns, Aggregator::new(a)));
    // The end of the window the aggregator holds, to close it by time.
    let mut window_end: Option<i64> = None;
    let mut cursor = from;
    // A gap is only news when the cursor pointed at something.
    let mut cursor_is_known = from > 0;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_heard = Instant::now();
    let ending: Option<Message> = 'session: loop {
        let step = {
            let open = Arc::clone(&open);
            tokio::task::spawn_blocking(move || read_step(&open, cursor)).await
        };
        let step = match step {
            Ok(Ok(step)) => step,
            Ok(Err(e)) => break Some(close(close_code::ERROR, &e.to_string())),
            Err(e) => break Some(close(close_code::ERROR, &format!("read failed: {e}"))),
        };
        if let Some(oldest) = step.oldest_after_cursor
            && cursor_is_known
        {
            let gap = format!("{{\"type\":\"gap\",\"from\":{cursor},\"to\":{oldest}}}");
            if tx.send(Message::Text(gap.into())).await.is_err() {
                break None;
            }
        }
        let caught_up = step.records.len() < READ_BATCH;
        if let Some(last) = step.records.last() {
            // Published before sending: the lag is what is not yet sent.
            reader.at(last.timestamp());
        }
        for rec in step.records {
            cursor = rec.timestamp();
            cursor_is_known = true;
            let Some(data) = pipeline::shown(&open.store, &spec, &rec.data) else {
                continue;
            };
            let message = match &mut agg {
                None => Some(data_message(rec.timestamp(), &data, enc)),
                Some((window_ns, aggregator)) => {
                    window_end = Some((rec.timestamp().div_euclid(*window_ns) + 1) * *window_ns);
                    aggregator
                        .add(rec.timestamp(), &data)
                        .map(|w| window_message(&w))
                }
            };
            if let Some(m) = message {
                app.transports.ws_records_sent.fetch_add(1, Relaxed);
                if tx.send(Message::Text(m.into())).await.is_err() {
                    break 'session None;
                }
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
            _ = token.cancelled() => break Some(Ending::ServerStopping.frame()),
            _ = async { drop(stopping.wait_for(|s| *s).await) } => break Some(Ending::StoreDeleted.frame()),
            changed = commits.changed() => {
                if changed.is_err() {
                    break Some(close(close_code::AWAY, "the store was closed"));
                }
                match *commits.borrow_and_update() {
                    CommitEvent::NewRecords(_) => {}
                    CommitEvent::Reset(_) => break Some(close(close_code::NORMAL, "the store was reset")),
                    CommitEvent::Closed => break Some(close(close_code::AWAY, "the store was closed")),
                }
            }
            _ = window_timer => {
                if let Some((_, aggregator)) = &mut agg
                    && let Some(w) = aggregator.close_if_ended(tsstore::now_ns())
                {
                    window_end = None;
                    app.transports.ws_records_sent.fetch_add(1, Relaxed);
                    if tx.send(Message::Text(window_message(&w).into())).await.is_err() {
                        break None;
                    }
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_TIMEOUT {
                    break Some(Ending::Idle.frame());
                }
                if tx.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
            m = rx.next() => match m {
                // A reader only listens; what it sends shows it is alive.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                Some(Ok(_)) => last_heard = Instant::now(),
            },
        }
    };
    if let Some(frame) = ending {
        let _ = tx.send(frame).await;
    }
    let _ = tx.close().await;
    drop(reader);
}

/// `{"type":"data","timestamp":..,"data":..}`.
fn data_message(timestamp: i64, data: &[u8], enc: DataEncoding) -> String {
    let mut out = Vec::with_capacity(48 + data.len());
    out.extend_from_slice(b"{\"type\":\"data\",\"timestamp\":");
    out.extend_from_slice(itoa::Buffer::new().format(timestamp).as_bytes());
    out.extend_from_slice(b",\"data\":");
    enc.push(&mut out, data);
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default()
}

/// A window as `{"type":"data","timestamp":end,"records","partial","data"}`.
fn window_message(w: &Window) -> String {
    let mut out = Vec::with_capacity(96 + w.data.len());
    push_window(&mut out, b"\"type\":\"data\",", w, &w.data);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors() {
        assert_eq!(parse_from(None, 7).unwrap(), 7);
        assert_eq!(parse_from(Some("now"), 7).unwrap(), 7);
        assert_eq!(parse_from(Some("oldest"), 7).unwrap(), 0);
        assert_eq!(parse_from(Some("42"), 7).unwrap(), 42);
        for bad in ["-1", "soon", ""] {
            assert_eq!(
                parse_from(Some(bad), 7).unwrap_err().code,
                "invalid_parameter"
            );
        }
    }

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
}
