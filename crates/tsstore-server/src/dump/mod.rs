//! The export file format, written by `tsstore export` and read by
//! `tsstore import`; no store access and no I/O policy here, only bytes.
//!
//! **NDJSON** (the backup format, exact for every data type): an optional
//! first line `{"tsstore_export":1, "store", "data_type", geometry,
//! "schema"?, ...}` that lets an import recreate the store, then one
//! `{"timestamp":ns,"data":...}` per record with `data` as the API shows it
//! (JSON as stored, schema records expanded, text as a JSON string, binary
//! as base64). Files without the first line (from other tools) import too.
//!
//! **CSV** (json and schema stores, for spreadsheets and other tools):
//! `timestamp` then one column per field; see `csv` for how cells keep
//! strings, numbers and missing fields apart.

pub mod csv;

use std::fmt;
use std::io::{BufRead, Read};

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tsstore::{DataType, SchemaDoc};

use crate::records::encode::{self, DataEncoding};
use crate::records::intake;

/// The version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// Longest line (or CSV record) an import reads: records are at most a
/// store's object size, and a reader must not buffer an unbounded line.
pub const MAX_LINE: usize = 64 << 20;

/// Why a file cannot be read; line numbers count from 1.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// One record is malformed; the rest of the file may be fine.
    #[error("line {line}: {message}")]
    Record { line: u64, message: String },
    /// The file as a whole cannot be imported.
    #[error("{0}")]
    File(String),
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Ndjson,
    Csv,
}

/// The first line of an NDJSON export: what the store was.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    /// The format version (`FORMAT_VERSION`).
    pub tsstore_export: u32,
    pub store: String,
    pub data_type: DataType,
    /// Absent in files written before compressed stores: raw.
    #[serde(default)]
    pub encoding: tsstore::Encoding,
    pub num_blocks: u32,
    pub data_block_size: u32,
    pub index_block_size: u32,
    /// Schema stores: the current schema, to recreate the store with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<SchemaDoc>,
    /// The window asked for (inclusive nanoseconds; absent: unbounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
    pub exported_at: String,
}

impl Header {
    /// The header line, with its newline.
    pub fn line(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// `Some` if `line` is an export header (its version checked).
    fn parse(line: &[u8]) -> Result<Option<Header>, DumpError> {
        #[derive(Deserialize)]
        struct Probe {
            tsstore_export: Option<u32>,
        }
        let Ok(Probe {
            tsstore_export: Some(version),
        }) = serde_json::from_slice::<Probe>(line)
        else {
            return Ok(None);
        };
        if version > FORMAT_VERSION {
            return Err(DumpError::File(format!(
                "the file is export format {version}; this tsstore reads up to \
                 {FORMAT_VERSION} (import it with a newer tsstore)"
            )));
        }
        serde_json::from_slice(line)
            .map(Some)
            .map_err(|e| DumpError::Record {
                line: 1,
                message: format!("export header: {e}"),
            })
    }
}

/// Appends one NDJSON record line.
pub fn push_ndjson(out: &mut Vec<u8>, timestamp: i64, data: &[u8], enc: DataEncoding) {
    encode::push_plain(out, timestamp, data, enc);
    out.push(b'\n');
}

/// One record read from a file, or why its line is not one.
#[derive(Debug)]
pub enum Entry {
    Record {
        line: u64,
        timestamp: i64,
        payload: Vec<u8>,
    },
    Invalid(DumpError),
}

/// Reads records from an export (or any NDJSON / CSV of the same shape)
/// one at a time, so memory does not grow with the file.
pub struct Reader<R> {
    input: R,
    format: Format,
    header: Option<Header>,
    /// CSV: the field names after `timestamp`.
    columns: Vec<String>,
    /// NDJSON: the first line, when it was a record rather than a header.
    pending: Option<Vec<u8>>,
    line: u64,
    buf: Vec<u8>,
    csv: csv::CsvReader,
    bytes_read: u64,
}

impl<R: BufRead> Reader<R> {
    /// Reads the header (NDJSON) or the header row (CSV).
    pub fn new(input: R, format: Format) -> Result<Reader<R>, DumpError> {
        let mut reader = Reader {
            input,
            format,
            header: None,
            columns: Vec::new(),
            pending: None,
            line: 0,
            buf: Vec::new(),
            csv: csv::CsvReader::default(),
            bytes_read: 0,
        };
        match format {
            Format::Ndjson => {
                if reader.read_line()? {
                    match Header::parse(&reader.buf)? {
                        Some(h) => reader.header = Some(h),
                        None => reader.pending = Some(std::mem::take(&mut reader.buf)),
                    }
                }
            }
            Format::Csv => {
                let mut fields = Vec::new();
                let read = &mut reader.bytes_read;
                let got = match reader.csv.next_record(&mut reader.input, &mut fields, read) {
                    Err(DumpError::Record { .. }) => None,
                    other => other?,
                };
                if got.is_none() || fields.first().map(String::as_str) != Some("timestamp") {
                    return Err(DumpError::File(
                        "a CSV import starts with a header row whose first column is \
                         `timestamp`, then one column per field"
                            .into(),
                    ));
                }
                reader.columns = fields.split_off(1);
            }
        }
        Ok(reader)
    }

    /// The export header, if the file has one.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// Bytes consumed so far (for progress).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next record for a store of type `dt`; `None` at the end.
    pub fn next_entry(&mut self, dt: DataType) -> Result<Option<Entry>, DumpError> {
        match self.format {
            Format::Ndjson => self.next_ndjson(dt),
            Format::Csv => self.next_csv(),
        }
    }

    /// Reads one line into `buf` (without its newline); false at the end.
    fn read_line(&mut self) -> Result<bool, DumpError> {
        self.buf.clear();
        let n = self
            .input
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(false);
        }
        self.bytes_read += n as u64;
        self.line += 1;
        if self.buf.len() > MAX_LINE {
            return Err(DumpError::File(format!(
                "line {} is longer than {} MiB",
                self.line,
                MAX_LINE >> 20
            )));
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(true)
    }

    fn next_ndjson(&mut self, dt: DataType) -> Result<Option<Entry>, DumpError> {
        loop {
            if let Some(first) = self.pending.take() {
                self.buf = first;
            } else if !self.read_line()? {
                return Ok(None);
            }
            if self.buf.trim_ascii().is_empty() {
                continue;
            }
            let line = self.line;
            let entry = match intake::envelope(dt, &self.buf, tsstore::Precision::Ns) {
                Ok(item) => match item.timestamp {
                    Some(timestamp) => Entry::Record {
                        line,
                        timestamp,
                        payload: item.payload.into_owned(),
                    },
                    None => Entry::Invalid(DumpError::Record {
                        line,
                        message: "no timestamp (an import keeps the times of the records)".into(),
                    }),
                },
                Err(e) => Entry::Invalid(DumpError::Record {
                    line,
                    message: e.to_string(),
                }),
            };
            return Ok(Some(entry));
        }
    }

    fn next_csv(&mut self) -> Result<Option<Entry>, DumpError> {
        let mut cells = Vec::with_capacity(self.columns.len() + 1);
        let read = &mut self.bytes_read;
        let line = match self.csv.next_record(&mut self.input, &mut cells, read) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(None),
            Err(e @ DumpError::Record { .. }) => return Ok(Some(Entry::Invalid(e))),
            Err(e) => return Err(e),
        };
        let invalid =
            |message: String| Ok(Some(Entry::Invalid(DumpError::Record { line, message })));
        if cells.len() != self.columns.len() + 1 {
            return invalid(format!(
                "{} cells; the header row has {}",
                cells.len(),
                self.columns.len() + 1
            ));
        }
        let timestamp = match cells[0].parse::<i64>() {
            Ok(ts) if ts > 0 => ts,
            _ => {
                return invalid(format!(
                    "timestamp {:?} is not positive whole nanoseconds",
                    cells[0]
                ));
            }
        };
        Ok(Some(Entry::Record {
            line,
            timestamp,
            payload: csv::record_from_cells(&self.columns, &cells[1..]),
        }))
    }
}

/// The entries of a JSON object in their order, keys unescaped, values as
/// their exact text; `None` if `data` is not a JSON object.
pub fn object_entries(data: &[u8]) -> Option<Vec<(String, &RawValue)>> {
    struct Entries<'a>(Vec<(String, &'a RawValue)>);
    impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V<'a>(std::marker::PhantomData<&'a ()>);
            impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
                type Value = Entries<'a>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<'a>, A::Error> {
                    let mut out = Vec::new();
                    while let Some(key) = map.next_key::<String>()? {
                        out.push((key, map.next_value::<&RawValue>()?));
                    }
                    Ok(Entries(out))
                }
            }
            d.deserialize_map(V(std::marker::PhantomData))
        }
    }
    serde_json::from_slice::<Entries>(data).ok().map(|e| e.0)
}
