//! Intake: what a client sent → items a store takes, by data type.
//!
//! An envelope is `{"timestamp"?: ns, "data": ...}`; `data` is kept as the
//! exact JSON text sent (json and schema stores, which validate it
//! themselves), a JSON string (text) or base64 (binary). A raw body (text
//! or binary) is the payload itself. A timestamp of 0 or none means "now"
//! (the store's `max(now, newest + 1)`). Nothing here is written before
//! every item of a batch has been checked.

use std::borrow::Cow;

use tsstore::{DataType, ObjectHandle, Precision, SyncPolicy};

use serde_json::value::RawValue;

use super::envelope::scaled;
pub use super::envelope::{Envelope, Framing, Item, bare};
use super::error::{RecordError, RecordResult};
use crate::registry::OpenStore;

/// How a body was sent, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media<'a> {
    /// `application/json`: one envelope, or an array of them (batch).
    Json,
    /// `application/x-ndjson`: one envelope per line (batch).
    Ndjson,
    /// `text/plain`: the payload of a text or binary store.
    Text,
    /// `application/octet-stream`: the payload of a binary store.
    Binary,
    Other(Option<&'a str>),
}

impl<'a> Media<'a> {
    /// From a media type without parameters, lowercased (`None`: absent).
    pub fn of(media_type: Option<&'a str>) -> Media<'a> {
        match media_type {
            Some("application/json") => Media::Json,
            Some("application/x-ndjson") => Media::Ndjson,
            Some("text/plain") => Media::Text,
            Some("application/octet-stream") => Media::Binary,
            other => Media::Other(other),
        }
    }

    fn describe(self) -> &'a str {
        match self {
            Media::Json => "application/json",
            Media::Ndjson => "application/x-ndjson",
            Media::Text => "text/plain",
            Media::Binary => "application/octet-stream",
            Media::Other(t) => t.unwrap_or("a body without Content-Type"),
        }
    }
}

/// One envelope `{"timestamp"?, "data"}` (a file being loaded), its
/// timestamp in `precision`.
pub fn envelope(dt: DataType, text: &[u8], precision: Precision) -> RecordResult<Item<'_>> {
    Envelope::parse(text)?.into_item(dt, precision)
}

/// One record from a body of `media` type, read as `framing` says; a
/// raw body, or one whose timestamp is not given, takes `raw_ts` (in the
/// framing's precision).
pub fn one<'a>(
    dt: DataType,
    media: Media<'_>,
    body: &'a [u8],
    raw_ts: Option<i64>,
    framing: &Framing,
) -> RecordResult<Item<'a>> {
    let raw_ts = scaled(raw_ts, framing.precision)?;
    match (media, dt) {
        (Media::Json, _) => {
            let mut item = framing.message(dt, body).0?;
            item.timestamp = item.timestamp.or(raw_ts);
            Ok(item)
        }
        (Media::Binary, DataType::Binary) | (Media::Text, DataType::Binary | DataType::Text) => {
            Ok(Item {
                timestamp: raw_ts,
                payload: Cow::Borrowed(body),
            })
        }
        (other, _) => {
            let accepted = match dt {
                DataType::Binary => "application/octet-stream, text/plain or application/json",
                DataType::Text => "text/plain or application/json",
                DataType::Json | DataType::Schema => {
                    "application/json ({\"timestamp\"?, \"data\"}, or the data itself with envelope=none)"
                }
            };
            Err(RecordError::UnsupportedMediaType(format!(
                "a {dt} store takes {accepted}, not {}",
                other.describe()
            )))
        }
    }
}

/// Every record of a batch body (a JSON array or NDJSON) read as
/// `framing` says, all checked.
pub fn batch<'a>(
    dt: DataType,
    media: Media<'_>,
    body: &'a [u8],
    framing: &Framing,
) -> RecordResult<Vec<Item<'a>>> {
    let shape = if framing.bare {
        "of records"
    } else {
        "of {\"timestamp\"?, \"data\"}"
    };
    let items: Vec<Item> = match media {
        // Envelopes straight from the array: this is the bulk path.
        Media::Json if !framing.bare => {
            let envelopes: Vec<Envelope> = serde_json::from_slice(body).map_err(|e| {
                RecordError::InvalidJson(format!("a batch is a JSON array {shape}: {e}"))
            })?;
            envelopes
                .into_iter()
                .enumerate()
                .map(|(i, env)| {
                    env.into_item(dt, framing.precision)
                        .map_err(|e| e.in_batch(i))
                })
                .collect::<RecordResult<_>>()?
        }
        Media::Json => {
            let elements: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
                RecordError::InvalidJson(format!("a batch is a JSON array {shape}: {e}"))
            })?;
            elements
                .into_iter()
                .enumerate()
                .map(|(i, raw)| {
                    framing
                        .element(dt, raw.get().as_bytes())
                        .map_err(|e| e.in_batch(i))
                })
                .collect::<RecordResult<_>>()?
        }
        Media::Ndjson => body
            .split(|&b| b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.trim_ascii().is_empty())
            .enumerate()
            .map(|(record, (line_index, line))| {
                framing.element(dt, line).map_err(|e| match e {
                    RecordError::InvalidJson(m) => {
                        RecordError::InvalidJson(format!("line {}: {m}", line_index + 1))
                    }
                    other => other.in_batch(record),
                })
            })
            .collect::<RecordResult<_>>()?,
        other => {
            return Err(RecordError::UnsupportedMediaType(format!(
                "a batch is application/json (an array) or application/x-ndjson, not {}",
                other.describe()
            )));
        }
    };
    if items.is_empty() {
        return Err(RecordError::EmptyBatch);
    }
    Ok(items)
}

/// Messages of one connection stored together (one `put_many`), at most.
pub const MAX_MESSAGE_BATCH: usize = 1024;

/// `first`, then what `stream` already has ready (nothing waits for more),
/// up to `max` in all: messages that arrived together are stored together.
/// Stops after the end of the stream (`None`).
pub fn join_ready<S>(first: Option<S::Item>, stream: &mut S, max: usize) -> Vec<Option<S::Item>>
where
    S: futures_util::Stream + Unpin,
{
    use futures_util::{FutureExt, StreamExt};
    let mut messages = vec![first];
    while messages.len() < max && messages.last().is_some_and(Option::is_some) {
        match stream.next().now_or_never() {
            Some(m) => messages.push(m),
            None => break,
        }
    }
    messages
}

/// One line of the Unix-socket protocol: a JSON value (json and schema
/// stores, which check it), text (text stores) or bytes (binary stores),
/// stored at "now". A trailing `\r` (CRLF clients) is not part of it.
pub fn line(line: &[u8]) -> Item<'_> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Item {
        timestamp: None,
        payload: Cow::Borrowed(line),
    }
}

/// Stores every item that intake accepted, each answered on its own and
/// in order: first all together with one `put_many` (one lock, one sync),
/// and only if that refuses the batch, one at a time, so one bad record
/// never fails its neighbours. Items that intake already refused keep
/// their error.
pub fn store_each(
    open: &OpenStore,
    items: Vec<RecordResult<Item<'_>>>,
) -> Vec<RecordResult<ObjectHandle>> {
    let good = items.iter().filter(|i| i.is_ok()).count();
    if good >= 2 {
        let pairs = items
            .iter()
            .filter_map(|i| i.as_ref().ok())
            .map(|i| (i.timestamp, &i.payload[..]));
        if let Ok(handles) = blocking_write(open, || open.store.put_many(pairs)) {
            let bytes = handles.iter().map(|h| h.size as u64).sum();
            open.metrics.inserted(handles.len() as u64, bytes);
            let mut handles = handles.into_iter();
            return items
                .into_iter()
                .map(|item| match item {
                    Ok(_) => handles.next().ok_or(RecordError::EmptyBatch),
                    Err(e) => {
                        open.metrics.rejected(e.reject_reason());
                        Err(e)
                    }
                })
                .collect();
        }
    }
    items.into_iter().map(|i| store_one(open, i)).collect()
}

/// Runs a write; under sync `always` it waits for an fsync, so the async
/// worker is handed over to other tasks meanwhile.
fn blocking_write<T>(open: &OpenStore, f: impl FnOnce() -> T) -> T {
    if open.store.sync_policy() == SyncPolicy::Always {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

/// Stores one item (or counts why not) in the store's metrics.
pub fn store_one(open: &OpenStore, item: RecordResult<Item<'_>>) -> RecordResult<ObjectHandle> {
    let stored = item.and_then(|item| {
        let store = &open.store;
        Ok(blocking_write(open, || match item.timestamp {
            Some(ts) => store.put(ts, &item.payload),
            None => store.put_now(&item.payload),
        })?)
    });
    match &stored {
        Ok(h) => open.metrics.inserted(1, h.size as u64),
        Err(e) => open.metrics.rejected(e.reject_reason()),
    }
    stored
}

/// What a stored batch was: how many records, their first and last timestamps.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    pub count: usize,
    pub first_timestamp: i64,
    pub last_timestamp: i64,
}

/// Stores a checked batch all at once (one lock, one sync), counting it.
pub fn store_batch(open: &OpenStore, items: RecordResult<Vec<Item<'_>>>) -> RecordResult<Batch> {
    let stored = items.and_then(|items| {
        let bytes: u64 = items.iter().map(|i| i.payload.len() as u64).sum();
        let pairs = items.into_iter().map(|i| (i.timestamp, i.payload));
        let handles = blocking_write(open, || open.store.put_many(pairs))?;
        match (handles.first(), handles.last()) {
            (Some(first), Some(last)) => Ok((
                Batch {
                    count: handles.len(),
                    first_timestamp: first.timestamp,
                    last_timestamp: last.timestamp,
                },
                bytes,
            )),
            _ => Err(RecordError::EmptyBatch),
        }
    });
    match stored {
        Ok((batch, bytes)) => {
            open.metrics.inserted(batch.count as u64, bytes);
            Ok(batch)
        }
        Err(e) => {
            open.metrics.rejected(e.reject_reason());
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tsstore::Precision::{self, Ms, Ns, S};

    fn env(precision: Precision) -> Framing {
        Framing {
            precision,
            ..Framing::default()
        }
    }

    #[test]
    fn what_is_ready_joins_the_first_message() {
        let mut ready = futures_util::stream::iter([2, 3, 4]);
        let joined = join_ready(Some(1), &mut ready, 3);
        assert_eq!(joined, [Some(1), Some(2), Some(3)]);
        let joined = join_ready(Some(9), &mut ready, 10);
        assert_eq!(joined, [Some(9), Some(4), None], "stops at the end");
        let mut pending = futures_util::stream::pending::<i32>();
        assert_eq!(join_ready(Some(1), &mut pending, 10), [Some(1)]);
    }

    #[test]
    fn envelopes_per_data_type() {
        let item = envelope(DataType::Json, br#"{"timestamp":5,"data":{"a": 1}}"#, Ns).unwrap();
        assert_eq!(
            (item.timestamp, &*item.payload),
            (Some(5), &br#"{"a": 1}"#[..])
        );
        let item = envelope(DataType::Text, br#"{"data":"hi"}"#, Ns).unwrap();
        assert_eq!((item.timestamp, &*item.payload), (None, &b"hi"[..]));
        let item = envelope(DataType::Binary, br#"{"timestamp":0,"data":"AP8="}"#, Ns).unwrap();
        assert_eq!((item.timestamp, &*item.payload), (None, &[0u8, 255][..]));
        assert!(matches!(
            envelope(DataType::Json, br#"{"timestamp":5}"#, Ns),
            Err(RecordError::MissingData)
        ));
        assert!(matches!(
            envelope(DataType::Text, br#"{"data":1}"#, Ns),
            Err(RecordError::InvalidData(_))
        ));
        for bad in [
            &br#"{"data":1,"extra":2}"#[..],
            br#"[5, 1]"#,
            br#"{"data":1,"data":2}"#,
            br#"{"timestamp":1.5,"data":1}"#,
            br#""data""#,
            br#"{"data":1,"timestamp":2,"timestamp":3}"#,
        ] {
            assert!(
                matches!(
                    envelope(DataType::Json, bad, Ns),
                    Err(RecordError::InvalidJson(_))
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let item = envelope(DataType::Json, br#"{"timestamp":7.0,"d\u0061ta":null}"#, Ns).unwrap();
        assert_eq!((item.timestamp, &*item.payload), (Some(7), &b"null"[..]));
    }

    #[test]
    fn raw_bodies_and_media_types() {
        let item = one(DataType::Text, Media::Text, b"raw", Some(7), &env(Ns)).unwrap();
        assert_eq!((item.timestamp, &*item.payload), (Some(7), &b"raw"[..]));
        let item = one(DataType::Text, Media::Text, b"raw", Some(7), &env(S)).unwrap();
        assert_eq!(item.timestamp, Some(7_000_000_000));
        let err = one(DataType::Json, Media::Text, b"raw", None, &env(Ns)).unwrap_err();
        assert_eq!(err.reject_reason(), "content_type");
        assert!(err.to_string().contains("text/plain"), "{err}");
        let err = one(DataType::Json, Media::of(None), b"{}", None, &env(Ns)).unwrap_err();
        assert!(err.to_string().contains("without Content-Type"), "{err}");
    }

    #[test]
    fn batches_are_checked_whole() {
        let items = batch(
            DataType::Json,
            Media::Ndjson,
            b"{\"data\":1}\n\n{\"data\":2,\"timestamp\":1700000000000}\n",
            &env(Ms),
        )
        .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].timestamp, Some(1_700_000_000_000_000_000));
        // Past 2262 in nanoseconds: refused, not wrapped.
        let err = batch(
            DataType::Json,
            Media::Json,
            br#"[{"data":1,"timestamp":9300000000}]"#,
            &env(S),
        )
        .unwrap_err();
        assert_eq!(err.reject_reason(), "invalid_timestamp");
        let err = batch(
            DataType::Text,
            Media::Json,
            br#"[{"data":"a"},{"data":2}]"#,
            &env(Ns),
        )
        .unwrap_err();
        assert!(matches!(err, RecordError::InBatch { index: 1, .. }));
        assert!(err.to_string().starts_with("record 1: "), "{err}");
        // Bare: each element or line is a record's data.
        let bare = Framing::new(Some("none"), Some("at"), Ns).unwrap();
        let items = batch(
            DataType::Json,
            Media::Json,
            br#"[{"t":1,"at":"5"}, 7, {"t":2}]"#,
            &bare,
        )
        .unwrap();
        let got: Vec<_> = items.iter().map(|i| (i.timestamp, &*i.payload)).collect();
        assert_eq!(
            got,
            [
                (Some(5), &br#"{"t":1,"at":"5"}"#[..]),
                (None, b"7"),
                (None, br#"{"t":2}"#)
            ]
        );
        let items = batch(DataType::Text, Media::Ndjson, b"\"a\"\n\"b\"\n", &bare).unwrap();
        assert_eq!(&*items[1].payload, b"b");
        let err = batch(
            DataType::Json,
            Media::Ndjson,
            b"{\"data\":1}\n{bad\n",
            &env(Ns),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("line 2: "), "{err}");
        assert!(matches!(
            batch(DataType::Json, Media::Json, b"[]", &env(Ns)),
            Err(RecordError::EmptyBatch)
        ));
    }
}
