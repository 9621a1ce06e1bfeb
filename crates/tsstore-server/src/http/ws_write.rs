//! WebSocket ingest (`GET .../ws/write`, ts-store's protocol): each text
//! message is an envelope `{"timestamp"?, "data", "id"?}` (or, with
//! `envelope=none`, the record's data itself), each binary message a
//! binary store's record; each gets one `{"type":"ack",...}` or
//! `{"type":"error",...}`, in order, carrying the envelope's `id` when it
//! had one, so a client can match answers to what it sent. An error
//! never closes the connection. Messages already waiting are stored with
//! one `put_many` (`intake::store_each`). Bounds are `ws`'s.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde_json::value::RawValue;
#[cfg(test)]
use utoipa_axum::router::OpenApiRouter;
#[cfg(test)]
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult};
use super::extract::StoreAccess;
use super::ws::{
    BROWSER_PROTOCOL, HARD_MESSAGE_FACTOR, IDLE_TIMEOUT, PING_EVERY, READ_BUFFER, Upgrade,
    read_error, to_message,
};
use crate::app::App;
use crate::guard::{Incident, Peer};
use crate::metrics::Open;
use crate::records::encode::Stamps;
use crate::records::intake::{self, Framing, Item};
use crate::records::options::compact_format;
use crate::records::session::Ending;
use crate::records::{RecordError, RecordResult};
use crate::registry::{OpenStore, store_stopping};
use tsstore::{DataType, ObjectHandle};

#[cfg(test)]
pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(ws_write))
}

/// How a write session reads messages and writes its answers.
struct Options {
    framing: Framing,
    stamps: Stamps,
}

/// Stream records in over a WebSocket: each text message is
/// `{"timestamp"?, "data", "id"?}` (or with `envelope=none` the data
/// itself) and is answered by `{"type":"ack","timestamp","block_num",
/// "size","id"?}` or `{"type":"error","message","code","id"?}`, in order.
/// Binary messages are records of a binary store.
#[cfg_attr(test, utoipa::path(get, path = "/api/stores/{store}/ws/write", tag = "data",
    params(("store" = String, Path),
        ("format" = Option<String>, Query, description = "full or compact (schema stores take both)"),
        ("precision" = Option<String>, Query, description = "unit of the timestamps sent: ns (default), us, ms or s"),
        ("envelope" = Option<String>, Query, description = "data (default): each message is {\"timestamp\"?, \"data\", \"id\"?}; none: each message is the record's data"),
        ("timestamp_field" = Option<String>, Query, description = "with envelope=none: the top-level field that holds the timestamp (a whole number or a decimal string); else the arrival time"),
        ("timestamps" = Option<String>, Query, description = "number (default) or string: timestamps in acks as decimal strings")),
    responses((status = 101, description = "WebSocket upgrade"))))]
pub(super) async fn ws_write(
    State(app): State<App>,
    access: StoreAccess,
    upgrade: Upgrade,
) -> ApiResult<Response> {
    compact_format(access.params.get("format"))?;
    let options = Options {
        framing: access.params.framing()?,
        stamps: access.params.stamps()?,
    };
    let upgrade = upgrade.map_err(|_| ApiError::websocket_required())?;
    let hard = app.limits.max_message.saturating_mul(HARD_MESSAGE_FACTOR);
    let (open, peer) = (access.open, access.peer);
    Ok(upgrade
        .protocols([BROWSER_PROTOCOL])
        .read_buffer_size(READ_BUFFER)
        .max_message_size(hard)
        .max_frame_size(hard)
        .on_upgrade(move |socket| write_session(app, open, peer, options, socket)))
}

/// A message that may be a record.
enum Frame {
    Text(axum::extract::ws::Utf8Bytes),
    Binary(axum::body::Bytes),
}

impl Frame {
    fn len(&self) -> usize {
        match self {
            Frame::Text(t) => t.len(),
            Frame::Binary(b) => b.len(),
        }
    }

    /// The record it holds, and the `id` its answer echoes.
    fn read<'a>(
        &'a self,
        dt: DataType,
        framing: &Framing,
        max: usize,
    ) -> (RecordResult<Item<'a>>, Option<&'a RawValue>) {
        if self.len() > max {
            let e = RecordError::InvalidData(format!(
                "message of {} bytes is larger than {max} (server.max_message_bytes)",
                self.len()
            ));
            return (Err(e), None);
        }
        match self {
            Frame::Text(t) => framing.message(dt, t.as_bytes()),
            Frame::Binary(b) if dt == DataType::Binary => {
                let item = Item {
                    timestamp: None,
                    payload: std::borrow::Cow::Borrowed(&b[..]),
                };
                (Ok(item), None)
            }
            Frame::Binary(_) => {
                let e = RecordError::InvalidData(format!(
                    "binary messages are records of binary stores; send a {dt} store's records as text messages"
                ));
                (Err(e), None)
            }
        }
    }
}

async fn write_session(
    app: App,
    open: Arc<OpenStore>,
    peer: Option<Peer>,
    options: Options,
    socket: WebSocket,
) {
    let _gauge = Open::new(&app.transports.ws_write_connections);
    let token = app.shutdown.token();
    let mut stopping = open.stopping.subscribe();
    let (mut tx, mut rx) = socket.split();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_heard = Instant::now();
    // Pings and pongs keep a connection alive, not busy: a writer that
    // sends no record for `ws_idle_timeout` gives its slot back.
    let idle_after = app.guard.settings.ws_idle_timeout;
    let idle = tokio::time::sleep(idle_after);
    tokio::pin!(idle);
    let soft = app.limits.max_message;
    let hard = soft.saturating_mul(HARD_MESSAGE_FACTOR);
    let dt = open.store.data_type();
    let ending = loop {
        let first = tokio::select! {
            _ = token.cancelled() => break Ending::ServerStopping,
            _ = store_stopping(&mut stopping) => break Ending::StoreDeleted,
            _ = &mut idle => {
                app.guard.incidents.record(Incident::WsIdle, peer);
                break Ending::NoRecords(idle_after);
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_TIMEOUT {
                    break Ending::Idle;
                }
                if tx.send(Message::Ping(Default::default())).await.is_err() {
                    break Ending::PeerGone;
                }
                continue;
            }
            m = rx.next() => m,
        };
        last_heard = Instant::now();
        // What else is already waiting joins this batch.
        let messages = intake::join_ready(first, &mut rx, intake::MAX_MESSAGE_BATCH);
        let mut frames = Vec::with_capacity(messages.len());
        let mut end = None;
        for m in messages {
            match m {
                Some(Ok(Message::Text(t))) => frames.push(Frame::Text(t)),
                Some(Ok(Message::Binary(b))) => frames.push(Frame::Binary(b)),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => end = Some(Ending::PeerGone),
                Some(Err(e)) => {
                    end = Some(read_error(e, hard));
                    break;
                }
            }
        }
        if !frames.is_empty() {
            idle.as_mut()
                .reset(tokio::time::Instant::now() + idle_after);
        }
        let (items, ids): (Vec<_>, Vec<_>) = frames
            .iter()
            .map(|f| f.read(dt, &options.framing, soft))
            .unzip();
        let replies: Vec<Message> = intake::store_each(&open, items)
            .into_iter()
            .zip(ids)
            .map(|(result, id)| {
                let reply = match result {
                    Ok(h) => {
                        app.transports.ws_messages_accepted.fetch_add(1, Relaxed);
                        ack_message(&h, id, options.stamps)
                    }
                    Err(e) => {
                        app.transports.ws_messages_rejected.fetch_add(1, Relaxed);
                        error_message(ApiError::from(e), id)
                    }
                };
                Message::Text(reply.into())
            })
            .collect();
        // Acks wait for the client to read them, but never past a stop.
        // Biased: a stop that comes while the acks can be written does not
        // drop them (the client would send those records again, and
        // records stamped at arrival would be stored twice).
        let sent = tokio::select! {
            biased;
            r = async {
                for m in replies {
                    tx.feed(m).await?;
                }
                tx.flush().await
            } => r.is_ok(),
            _ = token.cancelled() => break Ending::ServerStopping,
            _ = store_stopping(&mut stopping) => break Ending::StoreDeleted,
        };
        if !sent {
            break Ending::PeerGone;
        }
        if let Some(ending) = end {
            break ending;
        }
    };
    if let Some(frame) = ending.close_frame() {
        let _ = tx.send(to_message(frame)).await;
    }
    // Completes the closing handshake (or answers the client's close).
    let _ = tx.close().await;
}

/// `{"type":"ack","timestamp","block_num","size"[,"id"]}`.
fn ack_message(h: &ObjectHandle, id: Option<&RawValue>, stamps: Stamps) -> String {
    let mut num = itoa::Buffer::new();
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(b"{\"type\":\"ack\",\"timestamp\":");
    stamps.push(&mut out, h.timestamp);
    out.extend_from_slice(b",\"block_num\":");
    out.extend_from_slice(num.format(h.block_num).as_bytes());
    out.extend_from_slice(b",\"size\":");
    out.extend_from_slice(num.format(h.size).as_bytes());
    if let Some(id) = id {
        out.extend_from_slice(b",\"id\":");
        out.extend_from_slice(id.get().as_bytes());
    }
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default()
}

/// `{"type":"error","message","code"[,"id"]}`.
fn error_message(e: ApiError, id: Option<&RawValue>) -> String {
    let mut reply = serde_json::json!({"type": "error", "message": e.message, "code": e.code});
    if let Some(id) = id.and_then(|id| serde_json::from_str::<serde_json::Value>(id.get()).ok()) {
        reply["id"] = id;
    }
    reply.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_echo_the_id_as_sent() {
        let h = ObjectHandle {
            timestamp: 1_733_472_000_123_456_789,
            block_num: 3,
            offset: 0,
            size: 9,
            span_count: 1,
        };
        let id = RawValue::from_string(r#"{"n":[1,"a"]}"#.into()).unwrap();
        assert_eq!(
            ack_message(&h, Some(&id), Stamps::Strings),
            r#"{"type":"ack","timestamp":"1733472000123456789","block_num":3,"size":9,"id":{"n":[1,"a"]}}"#
        );
        assert_eq!(
            ack_message(&h, None, Stamps::Numbers),
            r#"{"type":"ack","timestamp":1733472000123456789,"block_num":3,"size":9}"#
        );
        let e = ApiError::from(RecordError::MissingData);
        let reply: serde_json::Value = serde_json::from_str(&error_message(e, Some(&id))).unwrap();
        assert_eq!(reply["id"], serde_json::json!({"n": [1, "a"]}));
        assert_eq!(reply["code"], "missing_data");
    }
}
