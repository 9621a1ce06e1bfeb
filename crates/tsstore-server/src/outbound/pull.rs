//! Outbound pull: store what a WebSocket source sends. Each text message
//! is an envelope `{"timestamp"?, "data"}` (`type` `data` too, so another
//! tsstore's live read is a source as it is), or with `envelope: none` a
//! record's data as it is (`envelope::Framing`); what arrived together is
//! stored with one `put_many`, through `records::intake`. Binary frames
//! are records of a binary store. Invalid messages are counted and
//! skipped, and never end the connection.
//!
//! Resuming: the last timestamp stored is the connection's cursor,
//! written to its cursor file after every batch. A record the source
//! sends again, at or before the newest one the store holds, is skipped
//! and counted (`skipped`), so a source that replays after a reconnect
//! stores nothing twice. With `ack: app` each batch, once stored, is
//! acknowledged to the source as `{"type":"ack","timestamp":T}` (`T` as
//! the source sent it): against another tsstore's durable live read
//! (`ws/read?consumer=NAME`) that is what makes it resume after the last
//! record stored, whichever side restarted. Other sources can take the
//! last timestamp in their URL (`{last_timestamp}`, `spec::dial_url`).
//!
//! A compact source (`format: compact`) announces its fields as
//! `{"type":"schema","_schema":{"1":"name",...}}`; its data is renamed
//! back to field names before it is stored, so the local store's schema
//! need not number its fields the same way.
//!
//! The source is pinged every `keepalive`; one that answers nothing for
//! `MISSED_PINGS` of them is dropped and dialled again.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tsstore::DataType;

use super::connection::Connection;
use super::connection::State;
use super::dial::{MISSED_PINGS, Socket, to_message};
use super::spec::AckMode;
use super::spec::ConnectionSpec;
use crate::records::intake::{self, Envelope, Framing, Item};
use crate::records::session::Ending;
use crate::records::{RecordError, RecordResult};
use crate::registry::{OpenStore, store_stopping};

/// Fields a compact source may announce, at most (a schema's bound).
const MAX_NAMES: usize = 4096;

/// What one message of the source is.
enum Received<'a> {
    /// A record to store, with the timestamp as the source sent it.
    Record(Item<'a>, Option<i64>),
    /// Not a record (a gap notice, an alert, a schema announcement).
    Notice,
}

/// What the pull knows of its source between messages.
struct Source {
    dt: DataType,
    framing: Framing,
    /// A compact source's field names, by index.
    names: HashMap<String, String>,
}

impl Source {
    fn read<'a>(&mut self, text: &'a [u8], store: &str) -> RecordResult<Received<'a>> {
        if self.framing.bare {
            return Ok(Received::Record(
                self.framing.message(self.dt, text).0?,
                None,
            ));
        }
        let env = Envelope::parse(text)?;
        match env.kind.as_deref() {
            None | Some("data") => {}
            Some("schema") => {
                self.learn_names(text)?;
                return Ok(Received::Notice);
            }
            Some("gap") => {
                tracing::warn!(
                    store,
                    "the pull's source says it lost records: {}",
                    String::from_utf8_lossy(text)
                );
                return Ok(Received::Notice);
            }
            Some(_) => return Ok(Received::Notice),
        }
        let sent = env.timestamp;
        let mut item = env.into_item(self.dt, self.framing.precision)?;
        if !self.names.is_empty() && matches!(self.dt, DataType::Json | DataType::Schema) {
            item.payload = std::borrow::Cow::Owned(self.named(&item.payload)?);
        }
        Ok(Received::Record(item, sent))
    }

    /// Takes the names a `{"type":"schema","_schema":{..}}` announces.
    fn learn_names(&mut self, text: &[u8]) -> RecordResult<()> {
        #[derive(serde::Deserialize)]
        struct Announcement {
            #[serde(rename = "_schema")]
            schema: HashMap<String, String>,
        }
        let a: Announcement = serde_json::from_slice(text).map_err(|e| {
            RecordError::InvalidData(format!("a schema message maps indices to names: {e}"))
        })?;
        if a.schema.len() > MAX_NAMES {
            return Err(RecordError::InvalidData(format!(
                "a schema message of more than {MAX_NAMES} fields"
            )));
        }
        // Announced whole each time: it replaces what came before.
        self.names = a.schema;
        Ok(())
    }

    /// Compact data with its indices replaced by the announced names.
    fn named(&self, data: &[u8]) -> RecordResult<Vec<u8>> {
        let Ok(object) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(data)
        else {
            // Not an object: nothing to rename; the store checks it.
            return Ok(data.to_vec());
        };
        let renamed: serde_json::Map<String, serde_json::Value> = object
            .into_iter()
            .map(|(k, v)| (self.names.get(&k).cloned().unwrap_or(k), v))
            .collect();
        serde_json::to_vec(&renamed)
            .map_err(|e| RecordError::InvalidData(format!("cannot rename compact data: {e}")))
    }
}

pub(super) async fn pull(
    open: &Arc<OpenStore>,
    conn: &Arc<Connection<ConnectionSpec>>,
    socket: Socket,
) -> Ending {
    let (mut tx, mut rx) = socket.split();
    let mut stopping = open.stopping.subscribe();
    // Checked when the connection was made.
    let keepalive = conn.spec.keepalive().unwrap_or(Duration::from_secs(30));
    let mut source = Source {
        dt: open.store.data_type(),
        framing: conn.spec.framing().unwrap_or_default(),
        names: HashMap::new(),
    };
    let acks = conn.spec.ack == Some(AckMode::App);
    let store_name = open.store.name().to_string();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    let mut last_heard = Instant::now();
    let ending = loop {
        let message = tokio::select! {
            _ = conn.stop.cancelled() => break Ending::ServerStopping,
            _ = store_stopping(&mut stopping) => break Ending::StoreDeleted,
            _ = ping.tick() => {
                if last_heard.elapsed() > keepalive * MISSED_PINGS {
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
        // What else has arrived is stored with it, in one `put_many`.
        let messages = intake::join_ready(message, &mut rx, intake::MAX_MESSAGE_BATCH);
        let mut texts = Vec::with_capacity(messages.len());
        let mut binaries = Vec::new();
        let mut end = None;
        for m in messages {
            match m {
                Some(Ok(Message::Text(t))) => texts.push(t),
                Some(Ok(Message::Binary(b))) => binaries.push(b),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => end = Some(Ending::PeerGone),
                Some(Ok(_)) => {}
            }
        }
        let ack = store_batch(open, conn, &mut source, &store_name, &texts, &binaries);
        if acks && let Some(t) = ack {
            let ack = format!("{{\"type\":\"ack\",\"timestamp\":{t}}}");
            let sent = tokio::select! {
                r = tx.send(Message::Text(ack.into())) => r.is_ok(),
                _ = conn.stop.cancelled() => break Ending::ServerStopping,
            };
            if !sent {
                break Ending::PeerGone;
            }
        }
        if let Some(end) = end {
            break end;
        }
    };
    if let Some(frame) = ending.close_frame() {
        let _ = tx.send(to_message(frame)).await;
    }
    let _ = tx.close().await;
    ending
}

/// Stores one batch of messages: records the store holds already
/// skipped, invalid ones counted. Returns the source's timestamp to
/// acknowledge: the newest of the batch that was handled (stored,
/// skipped or refused), so a source never sends it again.
fn store_batch(
    open: &OpenStore,
    conn: &Connection<ConnectionSpec>,
    source: &mut Source,
    store_name: &str,
    texts: &[impl AsRef<str>],
    binaries: &[impl AsRef<[u8]>],
) -> Option<i64> {
    let mut newest = open.store.newest_timestamp().unwrap_or(i64::MIN);
    let mut items = Vec::with_capacity(texts.len() + binaries.len());
    let mut handled = None;
    for text in texts {
        match source.read(text.as_ref().as_bytes(), store_name) {
            Ok(Received::Record(item, sent)) => {
                handled = sent.or(handled);
                if let Some(ts) = item.timestamp {
                    if ts <= newest {
                        conn.skipped.fetch_add(1, Relaxed);
                        continue;
                    }
                    newest = ts;
                }
                items.push(Ok(item));
            }
            Ok(Received::Notice) => {}
            Err(e) => conn.failed(State::Connected, format!("message skipped: {e}")),
        }
    }
    for b in binaries {
        if source.dt == DataType::Binary {
            items.push(Ok(Item {
                timestamp: None,
                payload: std::borrow::Cow::Borrowed(b.as_ref()),
            }));
        } else {
            conn.failed(
                State::Connected,
                format!(
                    "binary message skipped: a {} store takes text messages {{\"timestamp\"?, \"data\"}}",
                    source.dt
                ),
            );
        }
    }
    let mut last_stored = None;
    for stored in intake::store_each(open, items) {
        match stored {
            Ok(h) => {
                conn.messages_received.fetch_add(1, Relaxed);
                last_stored = Some(h.timestamp);
            }
            Err(e) => conn.failed(State::Connected, format!("message skipped: {e}")),
        }
    }
    if let Some(ts) = last_stored {
        conn.cursor.store(ts, Relaxed);
        conn.read_timestamp.store(ts, Relaxed);
        conn.write_cursor();
    }
    handled
}
