//! Encoders: records and windows written as JSON straight into an output
//! buffer. `data` is the stored JSON itself (json and schema stores), a
//! JSON string (text) or base64 (binary); writing by hand avoids parsing
//! and re-serialising every payload.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tsstore::aggregate::Window;
use tsstore::{DataType, ObjectHandle};

/// How timestamps are written: JSON numbers (the default), or decimal
/// strings (`timestamps=string`) for clients whose numbers are doubles,
/// which nanoseconds since the epoch (over 2^53) do not fit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Stamps {
    #[default]
    Numbers,
    Strings,
}

impl Stamps {
    /// From a `timestamps` option: `number` (the default) or `string`.
    pub fn parse(text: Option<&str>) -> super::RecordResult<Stamps> {
        match text {
            None | Some("number") => Ok(Stamps::Numbers),
            Some("string") => Ok(Stamps::Strings),
            Some(other) => Err(super::RecordError::InvalidParameter(format!(
                "timestamps: '{other}' is not number or string"
            ))),
        }
    }

    /// Appends `ts` as this says.
    pub fn push(self, out: &mut Vec<u8>, ts: i64) {
        let mut num = itoa::Buffer::new();
        match self {
            Stamps::Numbers => out.extend_from_slice(num.format(ts).as_bytes()),
            Stamps::Strings => {
                out.push(b'"');
                out.extend_from_slice(num.format(ts).as_bytes());
                out.push(b'"');
            }
        }
    }
}

/// How payloads of one store are written, and their timestamps.
#[derive(Debug, Clone, Copy)]
pub struct DataEncoding {
    pub data_type: DataType,
    /// The store verifies checksums, so stored JSON is known to be valid
    /// and is copied as it is.
    pub trusted: bool,
    pub stamps: Stamps,
}

impl DataEncoding {
    pub fn of(store: &tsstore::Store) -> DataEncoding {
        DataEncoding {
            data_type: store.data_type(),
            trusted: store.has_checksums(),
            stamps: Stamps::Numbers,
        }
    }

    /// The same, with timestamps written as `stamps` says.
    pub fn with_stamps(self, stamps: Stamps) -> DataEncoding {
        DataEncoding { stamps, ..self }
    }

    /// Appends `data` as a JSON value.
    pub fn push(self, out: &mut Vec<u8>, data: &[u8]) {
        match self.data_type {
            DataType::Json | DataType::Schema
                if self.trusted || tsstore::validate_payload(DataType::Json, data).is_ok() =>
            {
                out.extend_from_slice(data)
            }
            DataType::Binary => {
                out.push(b'"');
                out.extend_from_slice(BASE64.encode(data).as_bytes());
                out.push(b'"');
            }
            // Text, and JSON that did not verify (a foreign store's damage):
            // a JSON string of the bytes, so the output stays valid JSON.
            _ => {
                let text = String::from_utf8_lossy(data);
                let _ = serde_json::to_writer(&mut *out, text.as_ref());
            }
        }
    }
}

/// Appends `{"timestamp":..,"data":..}`: a record as MQTT publishes it
/// and as an export line carries it.
pub fn push_plain(out: &mut Vec<u8>, timestamp: i64, data: &[u8], enc: DataEncoding) {
    out.extend_from_slice(b"{\"timestamp\":");
    enc.stamps.push(out, timestamp);
    out.extend_from_slice(b",\"data\":");
    enc.push(out, data);
    out.push(b'}');
}

/// Appends `{"timestamp":..,"block_num":..,"size":..[,"data":..]}`.
pub fn push_object(
    out: &mut Vec<u8>,
    h: &ObjectHandle,
    data: Option<(&[u8], DataEncoding)>,
    stamps: Stamps,
) {
    // itoa rather than `write!`: formatting machinery was a tenth of a
    // newest?limit=10 request's instructions.
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(b"{\"timestamp\":");
    stamps.push(out, h.timestamp);
    out.extend_from_slice(b",\"block_num\":");
    out.extend_from_slice(num.format(h.block_num).as_bytes());
    out.extend_from_slice(b",\"size\":");
    out.extend_from_slice(num.format(h.size).as_bytes());
    if let Some((bytes, enc)) = data {
        out.extend_from_slice(b",\"data\":");
        enc.push(out, bytes);
    }
    out.push(b'}');
}

/// `{"objects":[ ... ],"count":n}`, written one element at a time.
pub struct ListWriter {
    out: Vec<u8>,
    elements: usize,
    count: usize,
}

impl ListWriter {
    pub fn with_capacity(bytes: usize) -> ListWriter {
        let mut out = Vec::with_capacity(bytes.max(32));
        out.extend_from_slice(b"{\"objects\":[");
        ListWriter {
            out,
            elements: 0,
            count: 0,
        }
    }

    /// The buffer to write the next counted element into.
    pub fn element(&mut self) -> &mut Vec<u8> {
        self.count += 1;
        self.preamble()
    }

    /// The buffer to write an element into that `count` leaves out (the
    /// `_schema` of a compact aggregation).
    pub fn preamble(&mut self) -> &mut Vec<u8> {
        if self.elements > 0 {
            self.out.push(b',');
        }
        self.elements += 1;
        &mut self.out
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn finish(mut self) -> Vec<u8> {
        let mut num = itoa::Buffer::new();
        self.out.extend_from_slice(b"],\"count\":");
        self.out
            .extend_from_slice(num.format(self.count).as_bytes());
        self.out.push(b'}');
        self.out
    }
}

/// Windows as a list `{timestamp (window end), records, partial, data}`;
/// compact replaces field names by indices listed in a leading
/// `{"_schema": {...}}` element (not counted).
pub fn windows_list(windows: &[Window], compact: bool, stamps: Stamps) -> Vec<u8> {
    let mut names: Vec<String> = Vec::new();
    let bodies: Vec<Cow<[u8]>> = windows
        .iter()
        .map(|w| {
            if compact {
                Cow::Owned(compact_window(&w.data, &mut names))
            } else {
                Cow::Borrowed(&w.data[..])
            }
        })
        .collect();
    let mut list = ListWriter::with_capacity(128 * (windows.len() + 1));
    if compact {
        let out = list.preamble();
        out.extend_from_slice(b"{\"_schema\":");
        push_names(
            out,
            names.iter().enumerate().map(|(i, n)| (i + 1, n.as_str())),
        );
        out.push(b'}');
    }
    for (w, body) in windows.iter().zip(&bodies) {
        push_window(list.element(), b"", w, body, stamps);
    }
    list.finish()
}

/// Appends `{<prefix>"timestamp":end,"records","partial","data":data}`
/// (`prefix` such as `"type":"data",`, with its comma).
pub fn push_window(out: &mut Vec<u8>, prefix: &[u8], w: &Window, data: &[u8], stamps: Stamps) {
    let mut num = itoa::Buffer::new();
    out.push(b'{');
    out.extend_from_slice(prefix);
    out.extend_from_slice(b"\"timestamp\":");
    stamps.push(out, w.end);
    out.extend_from_slice(b",\"records\":");
    out.extend_from_slice(num.format(w.records).as_bytes());
    out.extend_from_slice(if w.partial {
        b",\"partial\":true,\"data\":"
    } else {
        b",\"partial\":false,\"data\":"
    });
    out.extend_from_slice(data);
    out.push(b'}');
}

/// Appends `{"1":"name",...}`: what each index of compact data stands for.
pub fn push_names<'a>(out: &mut Vec<u8>, names: impl Iterator<Item = (usize, &'a str)>) {
    let map: serde_json::Map<String, serde_json::Value> = names
        .map(|(i, n)| (i.to_string(), serde_json::Value::from(n)))
        .collect();
    let _ = serde_json::to_writer(&mut *out, &map);
}

/// A window's fields renamed to indices, numbering new names in `names`.
pub fn compact_window(data: &[u8], names: &mut Vec<String>) -> Vec<u8> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(data).unwrap_or_default();
    let mut compacted = serde_json::Map::new();
    for (k, v) in map {
        let index = match names.iter().position(|n| *n == k) {
            Some(i) => i + 1,
            None => {
                names.push(k);
                names.len()
            }
        };
        compacted.insert(index.to_string(), v);
    }
    serde_json::to_vec(&compacted).unwrap_or_else(|_| b"{}".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle() -> ObjectHandle {
        ObjectHandle {
            timestamp: 5,
            block_num: 1,
            offset: 24,
            size: 3,
            span_count: 1,
        }
    }

    fn enc(data_type: DataType, trusted: bool) -> DataEncoding {
        DataEncoding {
            data_type,
            trusted,
            stamps: Stamps::Numbers,
        }
    }

    #[test]
    fn data_per_type() {
        let mut out = Vec::new();
        push_object(
            &mut out,
            &handle(),
            Some((b"[1]", enc(DataType::Json, true))),
            Stamps::Numbers,
        );
        assert_eq!(
            out,
            br#"{"timestamp":5,"block_num":1,"size":3,"data":[1]}"#.to_vec()
        );
        let mut out = Vec::new();
        push_object(&mut out, &handle(), None, Stamps::Strings);
        assert_eq!(out, br#"{"timestamp":"5","block_num":1,"size":3}"#.to_vec());
        assert_eq!(Stamps::parse(Some("string")).unwrap(), Stamps::Strings);
        assert!(
            Stamps::parse(Some("text"))
                .unwrap_err()
                .to_string()
                .contains("number or string")
        );
        let mut out = Vec::new();
        push_object(
            &mut out,
            &handle(),
            Some((b"a\"\n", enc(DataType::Text, true))),
            Stamps::Numbers,
        );
        assert_eq!(
            String::from_utf8(out).unwrap().rsplit_once(':').unwrap().1,
            "\"a\\\"\\n\"}"
        );
        let mut out = Vec::new();
        enc(DataType::Binary, true).push(&mut out, &[0, 255]);
        assert_eq!(out, b"\"AP8=\"");
        let mut out = Vec::new();
        enc(DataType::Json, false).push(&mut out, b"{bad");
        assert_eq!(out, b"\"{bad\"");
        let mut out = Vec::new();
        push_object(&mut out, &handle(), None, Stamps::Numbers);
        assert_eq!(out, br#"{"timestamp":5,"block_num":1,"size":3}"#.to_vec());
    }

    #[test]
    fn lists_and_windows() {
        let mut list = ListWriter::with_capacity(0);
        list.element().extend_from_slice(b"1");
        list.element().extend_from_slice(b"2");
        assert_eq!(list.finish(), br#"{"objects":[1,2],"count":2}"#.to_vec());
        assert_eq!(
            ListWriter::with_capacity(0).finish(),
            br#"{"objects":[],"count":0}"#.to_vec()
        );
        let w = |end, data: &str| Window {
            start: end - 10,
            end,
            records: 2,
            partial: end == 20,
            data: data.as_bytes().to_vec(),
        };
        let windows = [w(10, r#"{"t":1}"#), w(20, r#"{"t":2,"u":3}"#)];
        let full = String::from_utf8(windows_list(&windows, false, Stamps::Numbers)).unwrap();
        assert_eq!(
            full,
            r#"{"objects":[{"timestamp":10,"records":2,"partial":false,"data":{"t":1}},{"timestamp":20,"records":2,"partial":true,"data":{"t":2,"u":3}}],"count":2}"#
        );
        let compact = String::from_utf8(windows_list(&windows, true, Stamps::Numbers)).unwrap();
        assert_eq!(
            compact,
            r#"{"objects":[{"_schema":{"1":"t","2":"u"}},{"timestamp":10,"records":2,"partial":false,"data":{"1":1}},{"timestamp":20,"records":2,"partial":true,"data":{"1":2,"2":3}}],"count":2}"#
        );
    }
}
