//! How a live feed wraps what it sends: records and windows in the
//! envelope the transport wants (`Envelope`), and, for compact output,
//! the `{"type":"schema","_schema":{...}}` messages that say what each
//! index stands for (`Announcer`): sent before the first data that uses
//! an index, and again, whole and with the same indices, when new names
//! appear.

use tsstore::aggregate::Window;

use super::encode::{DataEncoding, Stamps, compact_window, push_names, push_window};
use super::session::Outgoing;

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

/// The names behind the indices of a compact feed, and how many of them
/// the peer has been told (a `{"type":"schema","_schema":{..}}` message
/// mapping each index to its name, sent before the compact data that
/// uses it); and how windows are wrapped.
pub(super) struct Announcer {
    compact: bool,
    envelope: Envelope,
    /// Output names of windows, numbered from 1 in order of appearance.
    window_names: Vec<String>,
    announced: usize,
    /// The store schema's version last announced.
    schema_version: Option<u32>,
    stamps: Stamps,
}

impl Announcer {
    pub(super) fn new(compact: bool, envelope: Envelope, stamps: Stamps) -> Announcer {
        Announcer {
            stamps,
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
    pub(super) fn store_schema(&mut self, store: &tsstore::Store) -> Option<String> {
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
    pub(super) fn window(&mut self, w: &Window) -> (Option<String>, Outgoing) {
        match self.envelope {
            Envelope::Bare => return (None, Outgoing::Binary(w.data.clone())),
            Envelope::Plain => {
                let mut out = Vec::with_capacity(96 + w.data.len());
                push_window(&mut out, b"", w, &w.data, self.stamps);
                return (
                    None,
                    Outgoing::Text(String::from_utf8(out).unwrap_or_default()),
                );
            }
            Envelope::Typed if !self.compact => {
                return (None, Outgoing::Text(window_message(w, self.stamps)));
            }
            Envelope::Typed => {}
        }
        let data = compact_window(&w.data, &mut self.window_names);
        let mut out = Vec::with_capacity(96 + data.len());
        push_window(&mut out, b"\"type\":\"data\",", w, &data, self.stamps);
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

/// A record as `envelope` wraps it.
pub(super) fn record_message(
    envelope: Envelope,
    timestamp: i64,
    data: &[u8],
    enc: DataEncoding,
) -> Outgoing {
    match envelope {
        Envelope::Typed => Outgoing::Text(data_message(timestamp, data, enc)),
        Envelope::Plain => {
            let mut out = Vec::with_capacity(32 + data.len());
            super::encode::push_plain(&mut out, timestamp, data, enc);
            Outgoing::Text(String::from_utf8(out).unwrap_or_default())
        }
        Envelope::Bare => Outgoing::Binary(data.to_vec()),
    }
}

/// `{"type":"data","timestamp":..,"data":..}`.
pub fn data_message(timestamp: i64, data: &[u8], enc: DataEncoding) -> String {
    let mut out = Vec::with_capacity(48 + data.len());
    out.extend_from_slice(b"{\"type\":\"data\",\"timestamp\":");
    enc.stamps.push(&mut out, timestamp);
    out.extend_from_slice(b",\"data\":");
    enc.push(&mut out, data);
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default()
}

/// A window as `{"type":"data","timestamp":end,"records","partial","data"}`.
pub fn window_message(w: &Window, stamps: Stamps) -> String {
    let mut out = Vec::with_capacity(96 + w.data.len());
    push_window(&mut out, b"\"type\":\"data\",", w, &w.data, stamps);
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
            stamps: Stamps::Numbers,
        };
        assert_eq!(
            data_message(5, br#"{"t":1}"#, enc),
            r#"{"type":"data","timestamp":5,"data":{"t":1}}"#
        );
        assert_eq!(
            data_message(5, br#"{"t":1}"#, enc.with_stamps(Stamps::Strings)),
            r#"{"type":"data","timestamp":"5","data":{"t":1}}"#
        );
        let w = Window {
            start: 0,
            end: 10,
            partial: false,
            records: 2,
            data: br#"{"t":1.5}"#.to_vec(),
        };
        assert_eq!(
            window_message(&w, Stamps::Numbers),
            r#"{"type":"data","timestamp":10,"records":2,"partial":false,"data":{"t":1.5}}"#
        );
    }

    #[test]
    fn envelopes_and_announcements() {
        let enc = DataEncoding {
            data_type: tsstore::DataType::Json,
            trusted: true,
            stamps: Stamps::Numbers,
        };
        let text = |o: Outgoing| match o {
            Outgoing::Text(t) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            text(record_message(Envelope::Plain, 5, br#"{"t":1}"#, enc)),
            r#"{"timestamp":5,"data":{"t":1}}"#
        );
        assert_eq!(
            record_message(Envelope::Bare, 5, br#"{"t":1}"#, enc),
            Outgoing::Binary(br#"{"t":1}"#.to_vec())
        );
        let w = |data: &str| Window {
            start: 0,
            end: 10,
            partial: false,
            records: 1,
            data: data.as_bytes().to_vec(),
        };
        let mut a = Announcer::new(true, Envelope::Typed, Stamps::Numbers);
        let (schema, m) = a.window(&w(r#"{"t":1}"#));
        assert_eq!(
            schema.as_deref(),
            Some(r#"{"type":"schema","_schema":{"1":"t"}}"#)
        );
        assert!(text(m).contains(r#""data":{"1":1}"#));
        // Known names: no announcement; a new one: the whole map again.
        assert_eq!(a.window(&w(r#"{"t":2}"#)).0, None);
        let (schema, _) = a.window(&w(r#"{"t":3,"u":4}"#));
        assert_eq!(
            schema.as_deref(),
            Some(r#"{"type":"schema","_schema":{"1":"t","2":"u"}}"#)
        );
        // Only a typed feed announces.
        assert_eq!(
            Announcer::new(true, Envelope::Plain, Stamps::Numbers)
                .window(&w("{}"))
                .0,
            None
        );
    }
}
