//! One message as a client sent it: an envelope `{"timestamp"?, "data",
//! "type"?, "id"?}` (`Envelope`), or bare data whose timestamp is the
//! arrival or one of its fields (`bare`); and, for a transport that takes
//! either, how it reads them (`Framing`: `envelope=none`,
//! `timestamp_field`, `precision`). Timestamps come as whole numbers or
//! decimal strings, in the framing's precision.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use tsstore::{DataType, Precision};

use super::error::{RecordError, RecordResult};

/// A record ready to be stored.
#[derive(Debug)]
pub struct Item<'a> {
    /// `None`: now.
    pub timestamp: Option<i64>,
    pub payload: Cow<'a, [u8]>,
}

/// `{"timestamp"?, "data", "type"?, "id"?}` as sent; `data` borrowed from
/// the body. Only a JSON object is an envelope (derived deserializers
/// would also take an array `[timestamp, data]`, which the API does not
/// document); repeated keys are refused, unknown ones by `into_item`.
/// `type` lets what a live read sends (`{"type":"data",...}`) be stored
/// as it is; `id` is the client's, echoed in a WebSocket write's answer.
#[derive(Debug)]
pub struct Envelope<'a> {
    /// As sent (a whole number or a decimal string), not yet scaled.
    pub timestamp: Option<i64>,
    /// `None`: absent (a present `null` is `Some`).
    pub data: Option<&'a RawValue>,
    pub kind: Option<String>,
    pub id: Option<&'a RawValue>,
    /// The first key that is none of these: a notice's own field, or a
    /// record refused by `into_item` (after its `id` is known, so the
    /// refusal can name it).
    pub unknown: Option<String>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EnvelopeVisitor(std::marker::PhantomData))
    }
}

struct EnvelopeVisitor<'a>(std::marker::PhantomData<&'a ()>);

/// An envelope's keys.
enum Key {
    Timestamp,
    Data,
    Type,
    Id,
    /// Any other key: a notice's own field (`_schema`, a gap's counts), or
    /// in a record most often a bare record sent without `envelope=none`.
    Other(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match &*<Cow<'de, str>>::deserialize(d)? {
            "timestamp" => Key::Timestamp,
            "data" => Key::Data,
            "type" => Key::Type,
            "id" => Key::Id,
            other => Key::Other(other.to_string()),
        })
    }
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
            unknown: None,
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
                Key::Other(name) => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    env.unknown.get_or_insert(name);
                }
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
        // A notice may carry fields of its own; a record may not, so a
        // typo or a bare record is not half stored.
        if let Some(name) = self.unknown {
            return Err(RecordError::InvalidJson(format!(
                "unknown field `{name}`: a record is sent as {{\"timestamp\"?, \"data\", \"id\"?}}, or as its data alone with envelope=none"
            )));
        }
        let raw = self.data.ok_or(RecordError::MissingData)?;
        Ok(Item {
            timestamp: scaled(self.timestamp, precision)?,
            payload: payload(dt, raw)?,
        })
    }
}

/// A JSON value as the payload of a `dt` store: json and schema stores
/// take its text (and check it themselves), text stores a JSON string,
/// binary stores a base64 string.
fn payload(dt: DataType, raw: &RawValue) -> RecordResult<Cow<'_, [u8]>> {
    Ok(match dt {
        DataType::Json | DataType::Schema => Cow::Borrowed(raw.get().as_bytes()),
        DataType::Text => {
            Cow::Owned(json_string(raw, "a text store's data must be a JSON string")?.into_bytes())
        }
        DataType::Binary => {
            let s = json_string(raw, "a binary store's data must be a base64 JSON string")?;
            Cow::Owned(
                BASE64.decode(s.as_bytes()).map_err(|e| {
                    RecordError::InvalidData(format!("data is not valid base64: {e}"))
                })?,
            )
        }
    })
}

/// How a transport that takes both reads a message: as an envelope (the
/// default), or bare (`envelope=none`: the whole message is the record's
/// data, stored at the arrival time or at the value of its top-level
/// `timestamp_field`, as MQTT subscribe does). Timestamps sent are in
/// `precision`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Framing {
    pub bare: bool,
    pub timestamp_field: Option<String>,
    pub precision: Precision,
}

/// A `timestamp_field`'s length, at most.
const MAX_FIELD_NAME: usize = 256;

impl Framing {
    /// From the options `envelope` (`data`, the default, or `none`) and
    /// `timestamp_field` (only with `none`).
    pub fn new(
        envelope: Option<&str>,
        timestamp_field: Option<&str>,
        precision: Precision,
    ) -> RecordResult<Framing> {
        let bare = match envelope {
            None | Some("data") => false,
            Some("none") => true,
            Some(other) => {
                return Err(RecordError::InvalidParameter(format!(
                    "envelope: '{other}' is not data ({{\"timestamp\"?, \"data\"}}) or none (the message is the data)"
                )));
            }
        };
        match timestamp_field {
            Some(_) if !bare => Err(RecordError::InvalidParameter(
                "timestamp_field applies to envelope=none only".into(),
            )),
            Some(f) if f.is_empty() || f.len() > MAX_FIELD_NAME => {
                Err(RecordError::InvalidParameter(format!(
                    "timestamp_field: a field name of 1 to {MAX_FIELD_NAME} bytes"
                )))
            }
            _ => Ok(Framing {
                bare,
                timestamp_field: timestamp_field.map(str::to_string),
                precision,
            }),
        }
    }

    /// One whole message (a WebSocket text message, a JSON body): the
    /// item, and the envelope's `id` to echo in the answer, if it had one.
    pub fn message<'a>(
        &self,
        dt: DataType,
        text: &'a [u8],
    ) -> (RecordResult<Item<'a>>, Option<&'a RawValue>) {
        if self.bare {
            return (self.bare(text), None);
        }
        match Envelope::parse(text) {
            Ok(env) => {
                let id = env.id;
                (env.into_item(dt, self.precision), id)
            }
            Err(e) => (Err(e), None),
        }
    }

    /// One element of a batch (of a JSON array, or a line of NDJSON).
    /// Bare, it is the data as an envelope's `data` would be: the JSON
    /// text for json and schema stores, a string for text stores, base64
    /// for binary ones.
    pub fn element<'a>(&self, dt: DataType, text: &'a [u8]) -> RecordResult<Item<'a>> {
        if !self.bare {
            return Envelope::parse(text)?.into_item(dt, self.precision);
        }
        let mut item = self.bare(text)?;
        if !matches!(dt, DataType::Json | DataType::Schema) {
            let raw: &RawValue = serde_json::from_slice(text)
                .map_err(|e| RecordError::InvalidJson(format!("invalid JSON: {e}")))?;
            item.payload = payload(dt, raw)?;
        }
        Ok(item)
    }

    fn bare<'a>(&self, text: &'a [u8]) -> RecordResult<Item<'a>> {
        bare(text, self.timestamp_field.as_deref(), self.precision)
    }
}

/// A client timestamp in `precision` as nanoseconds; 0 or none: now.
pub(super) fn scaled(timestamp: Option<i64>, precision: Precision) -> RecordResult<Option<i64>> {
    match timestamp.filter(|&t| t != 0) {
        None => Ok(None),
        Some(t) => Ok(Some(precision.to_ns(t)?)),
    }
}

fn json_string(raw: &RawValue, message: &str) -> RecordResult<String> {
    serde_json::from_str::<String>(raw.get())
        .map_err(|_| RecordError::InvalidData(message.to_string()))
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

/// A whole JSON number (`3` or `3.0`) or a decimal string (`"3"`);
/// anything else is `None`.
struct WholeOrOther(Option<i64>);

impl<'de> Deserialize<'de> for WholeOrOther {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&RawValue>::deserialize(d)?;
        let text = raw.get();
        if let Some(quoted) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            return Ok(WholeOrOther(crate::json_int::decimal(quoted).ok()));
        }
        let whole = text.parse::<i64>().ok().or_else(|| {
            text.parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        });
        Ok(WholeOrOther(whole))
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
        // As a decimal string, as clients whose numbers are doubles send it.
        assert_eq!(
            ts(br#"{"ts":"1700000000000"}"#, Some("ts")),
            Some(1_700_000_000_000_000_000)
        );
        // Not there, not a whole number > 0, not an object, no field: now.
        for (payload, field) in [
            (&br#"{"v":1}"#[..], Some("ts")),
            (br#"{"ts":"soon"}"#, Some("ts")),
            (br#"{"ts":"1.5"}"#, Some("ts")),
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
    fn framings_read_envelopes_or_bare_data() {
        let envelope = Framing::new(None, None, Ns).unwrap();
        let (item, id) = envelope.message(
            DataType::Json,
            br#"{"id":"a-1","data":{"t":1},"timestamp":"1733472000123456789"}"#,
        );
        let item = item.unwrap();
        assert_eq!(item.timestamp, Some(1_733_472_000_123_456_789));
        assert_eq!(&*item.payload, br#"{"t":1}"#);
        assert_eq!(id.map(RawValue::get), Some(r#""a-1""#));
        // A refused envelope still names its id.
        let (item, id) = envelope.message(DataType::Json, br#"{"id":7}"#);
        assert!(matches!(item, Err(RecordError::MissingData)));
        assert_eq!(id.map(RawValue::get), Some("7"));
        // A record with a field of its own is refused (the message says
        // how to send bare data); a notice's own fields are its business.
        let (item, id) = envelope.message(DataType::Json, br#"{"id":2,"temp":21}"#);
        assert!(item.unwrap_err().to_string().contains("envelope=none"));
        assert_eq!(id.map(RawValue::get), Some("2"));
        let notice = br#"{"type":"schema","_schema":{"1":"t"}}"#;
        assert!(!Envelope::parse(notice).unwrap().is_record());

        let bare = Framing::new(Some("none"), Some("ts"), Ms).unwrap();
        let text = br#"{"temp":21,"ts":1700000000000,"id":3}"#;
        let (item, id) = bare.message(DataType::Json, text);
        let item = item.unwrap();
        assert_eq!(item.timestamp, Some(1_700_000_000_000_000_000));
        assert_eq!(&*item.payload, &text[..], "stored as sent");
        assert!(id.is_none(), "a bare message's fields are its data");
        // Batch elements: data as an envelope's would be.
        let bare = Framing::new(Some("none"), None, Ns).unwrap();
        let item = bare.element(DataType::Text, br#""hi""#).unwrap();
        assert_eq!((&*item.payload, item.timestamp), (&b"hi"[..], None));
        let item = bare.element(DataType::Binary, br#""AP8=""#).unwrap();
        assert_eq!(&*item.payload, &[0u8, 255][..]);
        assert!(bare.element(DataType::Text, b"3").is_err());

        for (envelope, field) in [
            (Some("raw"), None),
            (None, Some("ts")),
            (Some("data"), Some("ts")),
            (Some("none"), Some("")),
        ] {
            let e = Framing::new(envelope, field, S).unwrap_err();
            assert!(matches!(e, RecordError::InvalidParameter(_)), "{e}");
        }
    }
}
