//! Intake: what a client sent → items a store takes, by data type.
//!
//! An envelope is `{"timestamp"?: ns, "data": ...}`; `data` is kept as the
//! exact JSON text sent (json and schema stores, which validate it
//! themselves), a JSON string (text) or base64 (binary). A raw body (text
//! or binary) is the payload itself. A timestamp of 0 or none means "now"
//! (the store's `max(now, newest + 1)`). Nothing here is written before
//! every item of a batch has been checked.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use tsstore::{DataType, ObjectHandle, Precision, SyncPolicy};

use super::error::{RecordError, RecordResult};
use crate::registry::OpenStore;

/// A record ready to be stored.
#[derive(Debug)]
pub struct Item<'a> {
    /// `None`: now.
    pub timestamp: Option<i64>,
    pub payload: Cow<'a, [u8]>,
}

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

/// `{"timestamp"?, "data", "type"?, "id"?}` as sent; `data` borrowed from
/// the body. Only a JSON object is an envelope (derived deserializers
/// would also take an array `[timestamp, data]`, which the API does not
/// document), and unknown or repeated keys are refused. `type` lets what
/// a live read sends (`{"type":"data",...}`) be stored as it is; `id` is
/// the client's, echoed in a WebSocket write's answer.
#[derive(Debug)]
pub struct Envelope<'a> {
    /// As sent (a whole number or a decimal string), not yet scaled.
    pub timestamp: Option<i64>,
    /// `None`: absent (a present `null` is `Some`).
    pub data: Option<&'a RawValue>,
    pub kind: Option<String>,
    pub id: Option<&'a RawValue>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EnvelopeVisitor(std::marker::PhantomData))
    }
}

struct EnvelopeVisitor<'a>(std::marker::PhantomData<&'a ()>);

/// An envelope's keys; any other is an unknown field.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Key {
    Timestamp,
    Data,
    Type,
    Id,
}

/// `timestamp` as a whole JSON number (`3` or `3.0`), a decimal string
/// (`"3"`), or null.
struct WholeTimestamp(Option<i64>);

impl<'de> Deserialize<'de> for WholeTimestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::json_int::optional_timestamp(d).map(WholeTimestamp)
    }
}

impl<'de: 'a, 'a> serde::de::Visitor<'de> for EnvelopeVisitor<'a> {
    type Value = Envelope<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object {\"timestamp\"?: ns, \"data\": ...}")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Envelope<'a>, M::Error> {
        use serde::de::Error;
        let mut env = Envelope {
            timestamp: None,
            data: None,
            kind: None,
            id: None,
        };
        let mut seen_timestamp = false;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Timestamp if seen_timestamp => {
                    return Err(M::Error::duplicate_field("timestamp"));
                }
                Key::Timestamp => {
                    seen_timestamp = true;
                    env.timestamp = map.next_value::<WholeTimestamp>()?.0;
                }
                Key::Data if env.data.is_some() => return Err(M::Error::duplicate_field("data")),
                Key::Data => env.data = Some(map.next_value()?),
                Key::Type if env.kind.is_some() => return Err(M::Error::duplicate_field("type")),
                Key::Type => env.kind = Some(map.next_value()?),
                Key::Id if env.id.is_some() => return Err(M::Error::duplicate_field("id")),
                Key::Id => env.id = Some(map.next_value()?),
            }
        }
        Ok(env)
    }
}

impl<'a> Envelope<'a> {
    /// Parses one envelope (not yet checked against a store).
    pub fn parse(text: &'a [u8]) -> RecordResult<Envelope<'a>> {
        serde_json::from_slice(text)
            .map_err(|e| RecordError::InvalidJson(format!("invalid JSON body: {e}")))
    }

    /// Whether it is a record (no `type`, or `"data"`), not a notice.
    pub fn is_record(&self) -> bool {
        self.kind.as_deref().is_none_or(|k| k == "data")
    }

    pub fn into_item(self, dt: DataType, precision: Precision) -> RecordResult<Item<'a>> {
        if let Some(kind) = self.kind.as_deref().filter(|&k| k != "data") {
            return Err(RecordError::InvalidData(format!(
                "a \"{kind}\" message is not a record: only \"type\": \"data\" (or no type) is stored"
            )));
        }
        let raw = self.data.ok_or(RecordError::MissingData)?;
        let payload = match dt {
            DataType::Json | DataType::Schema => Cow::Borrowed(raw.get().as_bytes()),
            DataType::Text => Cow::Owned(
                json_string(raw, "a text store's data must be a JSON string")?.into_bytes(),
            ),
            DataType::Binary => {
                let s = json_string(raw, "a binary store's data must be a base64 JSON string")?;
                Cow::Owned(BASE64.decode(s.as_bytes()).map_err(|e| {
                    RecordError::InvalidData(format!("data is not valid base64: {e}"))
                })?)
            }
        };
        Ok(Item {
            timestamp: scaled(self.timestamp, precision)?,
            payload,
        })
    }
}

/// A client timestamp in `precision` as nanoseconds; 0 or none: now.
fn scaled(timestamp: Option<i64>, precision: Precision) -> RecordResult<Option<i64>> {
    match timestamp.filter(|&t| t != 0) {
        None => Ok(None),
        Some(t) => Ok(Some(precision.to_ns(t)?)),
    }
}

fn json_string(raw: &RawValue, message: &str) -> RecordResult<String> {
    serde_json::from_str::<String>(raw.get())
        .map_err(|_| RecordError::InvalidData(message.to_string()))
}

/// One envelope `{"timestamp"?, "data"}` (a WebSocket message, a JSON
/// body), its timestamp in `precision`.
pub fn envelope(dt: DataType, text: &[u8], precision: Precision) -> RecordResult<Item<'_>> {
    Envelope::parse(text)?.into_item(dt, precision)
}

/// One record from a body of `media` type; a raw body takes `raw_ts`.
/// Timestamps are in `precision`.
pub fn one<'a>(
    dt: DataType,
    media: Media<'_>,
    body: &'a [u8],
    raw_ts: Option<i64>,
    precision: Precision,
) -> RecordResult<Item<'a>> {
    let raw_ts = scaled(raw_ts, precision)?;
    match (media, dt) {
        (Media::Json, _) => {
            let mut item = envelope(dt, body, precision)?;
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
                    "application/json ({\"timestamp\"?, \"data\"})"
                }
            };
            Err(RecordError::UnsupportedMediaType(format!(
                "a {dt} store takes {accepted}, not {}",
                other.describe()
            )))
        }
    }
}

/// Every record of a batch body (a JSON array or NDJSON), all checked;
/// timestamps in `precision`.
pub fn batch<'a>(
    dt: DataType,
    media: Media<'_>,
    body: &'a [u8],
    precision: Precision,
) -> RecordResult<Vec<Item<'a>>> {
    let envelopes: Vec<Envelope> = match media {
        Media::Json => serde_json::from_slice(body).map_err(|e| {
            RecordError::InvalidJson(format!(
                "a batch is a JSON array of {{\"timestamp\"?, \"data\"}}: {e}"
            ))
        })?,
        Media::Ndjson => body
            .split(|&b| b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.trim_ascii().is_empty())
            .map(|(i, line)| {
                serde_json::from_slice(line)
                    .map_err(|e| RecordError::InvalidJson(format!("line {}: {e}", i + 1)))
            })
            .collect::<RecordResult<_>>()?,
        other => {
            return Err(RecordError::UnsupportedMediaType(format!(
                "a batch is application/json (an array) or application/x-ndjson, not {}",
                other.describe()
            )));
        }
    };
    if envelopes.is_empty() {
        return Err(RecordError::EmptyBatch);
    }
    envelopes
        .into_iter()
        .enumerate()
        .map(|(i, env)| env.into_item(dt, precision).map_err(|e| e.in_batch(i)))
        .collect()
}

/// A bare payload, as MQTT subscribe receives it (the message is the
/// record), stored at the timestamp its top-level `field` holds (a whole
/// number > 0, in `precision`), or at "now" when there is none, it is not
/// a number, or the payload is not a JSON object. Only that one key is
/// read; the rest is skipped without building values.
pub fn bare<'a>(
    payload: &'a [u8],
    timestamp_field: Option<&str>,
    precision: Precision,
) -> RecordResult<Item<'a>> {
    let timestamp = match timestamp_field {
        Some(field) => {
            let mut d = serde_json::Deserializer::from_slice(payload);
            serde::de::DeserializeSeed::deserialize(FieldTimestamp(field), &mut d)
                .ok()
                .flatten()
        }
        None => None,
    };
    Ok(Item {
        timestamp: scaled(timestamp.filter(|&t| t > 0), precision)?,
        payload: Cow::Borrowed(payload),
    })
}

/// Reads the whole number at one key of a JSON object, skipping the rest.
struct FieldTimestamp<'f>(&'f str);

impl<'de> serde::de::DeserializeSeed<'de> for FieldTimestamp<'_> {
    type Value = Option<i64>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<i64>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FieldTimestamp<'_> {
    type Value = Option<i64>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Option<i64>, M::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == self.0 && found.is_none() {
                // Not a whole number: as if absent.
                found = map.next_value::<WholeOrOther>()?.0;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// A whole JSON number (`3` or `3.0`); anything else is `None`.
struct WholeOrOther(Option<i64>);

impl<'de> Deserialize<'de> for WholeOrOther {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&RawValue>::deserialize(d)?;
        let text = raw.get();
        let whole = text.parse::<i64>().ok().or_else(|| {
            text.parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        });
        Ok(WholeOrOther(whole))
    }
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
    use tsstore::Precision::{Ms, Ns, S};

    #[test]
    fn a_bare_payload_takes_its_timestamp_from_one_field() {
        let ts = |payload: &[u8], field: Option<&str>| bare(payload, field, Ms).unwrap().timestamp;
        let payload = br#"{"v":{"ts":1},"ts":1700000000000,"tail":[1,2]}"#;
        assert_eq!(ts(payload, Some("ts")), Some(1_700_000_000_000_000_000));
        assert_eq!(ts(br#"{"ts":5.0}"#, Some("ts")), Some(5_000_000));
        // Not there, not a whole number > 0, not an object, no field: now.
        for (payload, field) in [
            (&br#"{"v":1}"#[..], Some("ts")),
            (br#"{"ts":"soon"}"#, Some("ts")),
            (br#"{"ts":1.5}"#, Some("ts")),
            (br#"{"ts":0}"#, Some("ts")),
            (br#"{"ts":-3}"#, Some("ts")),
            (br#"[1,2]"#, Some("ts")),
            (b"not json", Some("ts")),
            (br#"{"ts":7}"#, None),
        ] {
            assert_eq!(
                ts(payload, field),
                None,
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
        // The payload is stored as sent.
        assert_eq!(
            &*bare(payload, Some("ts"), Ns).unwrap().payload,
            &payload[..]
        );
        assert!(bare(br#"{"ts":9223372036854775807}"#, Some("ts"), S).is_err());
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
        let item = one(DataType::Text, Media::Text, b"raw", Some(7), Ns).unwrap();
        assert_eq!((item.timestamp, &*item.payload), (Some(7), &b"raw"[..]));
        let item = one(DataType::Text, Media::Text, b"raw", Some(7), S).unwrap();
        assert_eq!(item.timestamp, Some(7_000_000_000));
        let err = one(DataType::Json, Media::Text, b"raw", None, Ns).unwrap_err();
        assert_eq!(err.reject_reason(), "content_type");
        assert!(err.to_string().contains("text/plain"), "{err}");
        let err = one(DataType::Json, Media::of(None), b"{}", None, Ns).unwrap_err();
        assert!(err.to_string().contains("without Content-Type"), "{err}");
    }

    #[test]
    fn batches_are_checked_whole() {
        let items = batch(
            DataType::Json,
            Media::Ndjson,
            b"{\"data\":1}\n\n{\"data\":2,\"timestamp\":1700000000000}\n",
            Ms,
        )
        .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].timestamp, Some(1_700_000_000_000_000_000));
        // Past 2262 in nanoseconds: refused, not wrapped.
        let err = batch(
            DataType::Json,
            Media::Json,
            br#"[{"data":1,"timestamp":9300000000}]"#,
            S,
        )
        .unwrap_err();
        assert_eq!(err.reject_reason(), "invalid_timestamp");
        let err = batch(
            DataType::Text,
            Media::Json,
            br#"[{"data":"a"},{"data":2}]"#,
            Ns,
        )
        .unwrap_err();
        assert!(matches!(err, RecordError::InBatch { index: 1, .. }));
        assert!(err.to_string().starts_with("record 1: "), "{err}");
        assert!(matches!(
            batch(DataType::Json, Media::Json, b"[]", Ns),
            Err(RecordError::EmptyBatch)
        ));
    }
}
