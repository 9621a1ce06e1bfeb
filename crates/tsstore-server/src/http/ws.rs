//! WebSocket live read (`GET .../ws/read`, beyond the reference), and
//! what it shares with ingest (`ws_write`): the bounds, the browser
//! subprotocol, close frames and read errors. Both authenticate and check
//! their options before the upgrade, so a refusal is an ordinary JSON
//! error response; after it, everything goes through `records` as REST
//! does, and errors are mapped by `http::error` (code and message).
//!
//! Live read: a `records::live` feed from the cursor (`from`): records as
//! `{"type":"data","timestamp","data"}` (or windows with aggregation), new
//! ones as the engine signals commits, gap notices, and a close frame that
//! says why it ended. A durable reader (`consumer=NAME`) acknowledges
//! what it has handled and resumes after it on its next connection.
//!
//! Bounds: messages up to `Limits::max_message` get an error, larger ones
//! up to `HARD_MESSAGE_FACTOR` times that close the connection (1009),
//! nothing larger is read; `intake::MAX_MESSAGE_BATCH` messages per `put_many`;
//! `follow::READ_BATCH` records per read; `Limits::max_live_readers` per store;
//! `READ_BUFFER` bytes of read buffer per connection; a ping every
//! `PING_EVERY`, and a client silent for `IDLE_TIMEOUT` is closed. An
//! ingest connection that sends no record for `ws_idle_timeout` is closed
//! too (1008), pongs or not: a slot is for writing. A live reader on a
//! quiet store stays as long as it answers pings. A send the peer takes
//! nothing of for the send timeout fails beneath, in `front::timed`.
//! Close codes and reasons come from one table, `session::Ending`.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
#[cfg(test)]
use utoipa_axum::router::OpenApiRouter;
#[cfg(test)]
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult};
use super::extract::StoreAccess;
use crate::app::App;
use crate::consumers::Attached;
use crate::metrics::Open;
use crate::records::ack_window::AckWindow;
use crate::records::live::{self, Confirm, Envelope, Feed, Progress};
use crate::records::options::ConsumerOptions;
use crate::records::session::{Ending, Incoming, Outgoing};
use crate::records::{ListDefaults, ReadOptions, ReadSpec, RecordError, pipeline};
use crate::registry::OpenStore;

/// Messages over the limit but under this many times it are answered with
/// an error; larger ones close the connection.
pub(super) const HARD_MESSAGE_FACTOR: usize = 4;
pub(super) const PING_EVERY: Duration = Duration::from_secs(30);
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Bytes read from the socket at a time. Allocated per connection for
/// its whole life (tungstenite's default is 128 KiB, which made 512
/// idle WebSockets cost 64 MB); larger messages still arrive whole.
pub(super) const READ_BUFFER: usize = 16 * 1024;

#[cfg(test)]
pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(ws_read))
}

/// Selected when a browser offers it (with its key in a
/// `tsstore.key.` subprotocol, see `extract::api_key`): a browser fails
/// a handshake that selects none of the protocols it offered.
pub(super) const BROWSER_PROTOCOL: &str = "tsstore";

pub(super) type Upgrade = Result<WebSocketUpgrade, WebSocketUpgradeRejection>;

/// The close frame of a session that ends for `reason`.
fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// Why reading a message failed, as the close it calls for.
pub(super) fn read_error(e: axum::Error, max: usize) -> Ending {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match e.into_inner().downcast::<WsError>() {
        Ok(e) => match *e {
            WsError::Utf8(_) => Ending::InvalidUtf8,
            WsError::Capacity(_) => Ending::TooBig(max),
            WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Io(_) => Ending::PeerGone,
            other => Ending::Protocol(other.to_string()),
        },
        Err(other) => Ending::Protocol(other.to_string()),
    }
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

/// A live reader registered on its store while it lives (the entry is
/// what counts it against the bound), publishing its cursor for
/// `/metrics`.
struct Reader {
    open: Arc<OpenStore>,
    id: u64,
}

static NEXT_READER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Reader {
    /// Registers a reader at `cursor`; `None` when the store has `max`.
    fn new(open: Arc<OpenStore>, cursor: i64, max: usize) -> Option<Reader> {
        let id = NEXT_READER.fetch_add(1, Relaxed);
        let mut cursors = open.reader_cursors.lock().ok()?;
        if cursors.len() >= max {
            return None;
        }
        cursors.insert(id, cursor);
        drop(cursors);
        Some(Reader { open, id })
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
    }
}

/// Follow a store live: records after `from` (a timestamp, `now`, the
/// default, or `oldest`), then each new one as it is committed, as
/// `{"type":"data","timestamp","data"}`. Takes filter, format and the
/// aggregation options (windows are sent when they close, by time too).
#[cfg_attr(test, utoipa::path(get, path = "/api/stores/{store}/ws/read", tag = "data",
    params(("store" = String, Path),
        ("from" = Option<String>, Query, description = "now (default), oldest, or a timestamp: records after it (a durable reader: only when it is new)"),
        ("consumer" = Option<String>, Query, description = "a durable reader's name: the server keeps its cursor, it acknowledges with {\"type\":\"ack\",\"timestamp\":T}, and a new connection with the name resumes after the last ack (and closes the older one)"),
        ("reset" = Option<bool>, Query, description = "durable reader: start over from `from`"),
        ("window" = Option<u32>, Query, description = "durable reader: messages in flight unacknowledged, at most (1000)"),
        ("window_bytes" = Option<u32>, Query, description = "durable reader: bytes in flight unacknowledged, at most (4 MiB)"),
        ("filter" = Option<String>, Query), ("filter_ignore_case" = Option<bool>, Query),
        ("format" = Option<String>, Query, description = "full or compact"),
        ("agg_window" = Option<String>, Query), ("agg_fields" = Option<String>, Query),
        ("agg_default" = Option<String>, Query),
        ("timestamps" = Option<String>, Query, description = "number (default) or string: timestamps as decimal strings")),
    responses((status = 101, description = "WebSocket upgrade"))))]
pub(super) async fn ws_read(
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
    let spec = pipeline::for_feed(spec, store)?;
    let durable = ConsumerOptions::from_query(&access.params)?;
    if let Some(o) = &durable {
        crate::consumers::check_name(&o.name)?;
    }
    let newest = store.newest_timestamp().unwrap_or(0);
    let from = parse_from(access.params.get("from"), newest)?;
    let upgrade = upgrade.map_err(|_| ApiError::websocket_required())?;
    let open = access.open;
    let max = app.limits.max_live_readers;
    let reader =
        Reader::new(Arc::clone(&open), from, max).ok_or(ApiError::too_many_readers(max))?;
    // A durable reader resumes after its last ack, whatever `from` says.
    let durable = match durable {
        Some(o) => {
            let token = app.shutdown.token();
            let attached =
                open.consumers
                    .attach(open.store.path(), &o.name, from, o.reset, &token)?;
            reader.at(attached.from);
            Some((attached, o.window))
        }
        None => None,
    };
    Ok(upgrade
        .protocols([BROWSER_PROTOCOL])
        .read_buffer_size(READ_BUFFER)
        .max_message_size(app.limits.max_message)
        .on_upgrade(move |socket| read_session(app, reader, spec, from, durable, socket)))
}

async fn read_session(
    app: App,
    reader: Reader,
    spec: ReadSpec,
    from: i64,
    durable: Option<(Attached, AckWindow)>,
    socket: WebSocket,
) {
    let _gauge = Open::new(&app.transports.ws_read_connections);
    let (tx, rx) = socket.split();
    let mut sink = tx.with(|o: Outgoing| std::future::ready(Ok::<_, axum::Error>(to_message(o))));
    // A plain reader only listens: whatever it sends shows it is alive.
    // A durable one acknowledges.
    let acks = durable.is_some();
    let mut incoming = rx.map(move |m| match m {
        Ok(Message::Close(_)) | Err(_) => Incoming::Gone,
        Ok(Message::Text(t)) if acks => Incoming::from_text(&t),
        Ok(_) => Incoming::Alive,
    });
    let sent = &app.transports.ws_records_sent;
    let mut feed = Feed {
        open: Arc::clone(&reader.open),
        spec,
        from,
        stop: app.shutdown.token(),
        ping_every: PING_EVERY,
        idle_timeout: IDLE_TIMEOUT,
        confirm: Confirm::Never,
        notices: None,
        envelope: Envelope::Typed,
        replaced: None,
    };
    match durable {
        None => {
            let mut progress = |cursor| reader.at(cursor);
            live::run(feed, &mut sink, &mut incoming, &mut progress, sent).await;
        }
        Some((attached, window)) => {
            feed.from = attached.from;
            feed.stop = attached.stop.clone();
            feed.replaced = Some(Arc::clone(&attached.replaced));
            feed.confirm = Confirm::App(window);
            let mut progress = ConsumerProgress {
                reader: &reader,
                attached: &attached,
            };
            let ending = live::run(feed, &mut sink, &mut incoming, &mut progress, sent).await;
            if ending == Ending::StoreReset {
                attached.consumer.ack_or_log(0);
            }
        }
    }
}

/// A durable reader's progress: acks move its cursor on disk.
struct ConsumerProgress<'a> {
    reader: &'a Reader,
    attached: &'a Attached,
}

impl Progress for ConsumerProgress<'_> {
    fn reached(&mut self, cursor: i64) {
        self.reader.at(cursor);
    }

    fn confirmed(&mut self, cursor: i64) {
        self.attached.consumer.ack_or_log(cursor);
    }

    fn in_flight(&mut self, messages: usize) {
        let c = &self.attached.consumer;
        c.in_flight.store(messages as u64, Relaxed);
    }

    fn refused_ack(&mut self, why: &str) {
        let c = &self.attached.consumer;
        c.refused_acks.fetch_add(1, Relaxed);
        tracing::info!(consumer = %c.name, "refused an ack: {why}");
    }
}

/// A feed's message as an axum WebSocket message.
pub(super) fn to_message(o: Outgoing) -> Message {
    match o {
        Outgoing::Text(t) => Message::Text(t.into()),
        Outgoing::Binary(b) => Message::Binary(b.into()),
        Outgoing::Ping => Message::Ping(Default::default()),
        Outgoing::Mark(c) => Message::Ping(c.to_le_bytes().to_vec().into()),
        Outgoing::Close { code, reason } => close(code, &reason),
    }
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
}
