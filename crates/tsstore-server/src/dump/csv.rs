//! CSV (RFC 4180) for json and schema records: the header row is
//! `timestamp` and one column per field; each row one record.
//!
//! Cells must keep apart what JSON keeps apart, yet read naturally in a
//! spreadsheet:
//! * an empty cell: the record has no such field;
//! * a number, `true`, `false`, `null`, an array or an object: its JSON
//!   text, as stored (`21.50` stays `21.50`);
//! * a string: its text, unquoted, unless that text would read as one of
//!   the above or is empty; then its JSON form with the quotes (`"42"`).
//!
//! An import rebuilds `{"field":value,...}` in column order. A JSON record
//! written that way (no spaces, fields in the same order, JSON's usual
//! escapes) comes back byte for byte; the exporter counts the records that
//! would not (`would_round_trip`).

use std::borrow::Cow;
use std::io::{BufRead, Read};

use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::{DumpError, MAX_LINE};

/// Appends one row: `cells` joined by commas, quoted where needed, and a newline.
pub fn push_row<'a>(out: &mut Vec<u8>, cells: impl IntoIterator<Item = &'a str>) {
    for (i, cell) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if cell
            .bytes()
            .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
        {
            out.push(b'"');
            for b in cell.bytes() {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(cell.as_bytes());
        }
    }
    out.push(b'\n');
}

/// The cell text of one JSON value (see the module doc).
pub fn cell_of(value: &RawValue) -> Cow<'_, str> {
    let text = value.get();
    if !text.starts_with('"') {
        return Cow::Borrowed(text);
    }
    match serde_json::from_str::<String>(text) {
        Ok(s) if !s.is_empty() && serde_json::from_str::<IgnoredAny>(&s).is_err() => Cow::Owned(s),
        // Empty, or it would read as another JSON value: keep the quotes.
        _ => Cow::Borrowed(text),
    }
}

/// Appends the JSON text a cell stands for; false for an empty cell.
fn push_value(out: &mut Vec<u8>, cell: &str) -> bool {
    if cell.is_empty() {
        return false;
    }
    match serde_json::from_str::<&RawValue>(cell) {
        Ok(raw) => out.extend_from_slice(raw.get().as_bytes()),
        Err(_) => {
            let _ = serde_json::to_writer(&mut *out, cell);
        }
    }
    true
}

/// The JSON record a row stands for: `{"column":value,...}` for every
/// non-empty cell, in column order.
pub fn record_from_cells<S: AsRef<str>>(columns: &[String], cells: &[S]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(b'{');
    for (column, cell) in columns.iter().zip(cells) {
        let before = out.len();
        if out.len() > 1 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut out, column);
        out.push(b':');
        if !push_value(&mut out, cell.as_ref()) {
            out.truncate(before);
        }
    }
    out.push(b'}');
    out
}

/// Whether a record exported as `cells` imports back as exactly `data`.
pub fn would_round_trip<S: AsRef<str>>(columns: &[String], cells: &[S], data: &[u8]) -> bool {
    record_from_cells(columns, cells) == data
}

/// Splits a CSV stream into records; a quoted cell may hold newlines.
#[derive(Debug, Default)]
pub struct CsvReader {
    line: u64,
    buf: Vec<u8>,
    cell: Vec<u8>,
}

impl CsvReader {
    /// Fills `cells` with the next non-blank record and returns the line
    /// it starts on; `None` at the end. A malformed record is a
    /// `DumpError::Record`, after which reading can go on.
    pub fn next_record(
        &mut self,
        input: &mut impl BufRead,
        cells: &mut Vec<String>,
        bytes_read: &mut u64,
    ) -> Result<Option<u64>, DumpError> {
        cells.clear();
        loop {
            self.buf.clear();
            let start = self.line + 1;
            loop {
                let n = input
                    .by_ref()
                    .take((MAX_LINE + 1 - self.buf.len().min(MAX_LINE)) as u64)
                    .read_until(b'\n', &mut self.buf)?;
                if n == 0 {
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    return Err(DumpError::File(format!(
                        "line {start}: a quoted cell is not closed before the end of the file"
                    )));
                }
                *bytes_read += n as u64;
                self.line += 1;
                if self.buf.len() > MAX_LINE {
                    return Err(DumpError::File(format!(
                        "line {start}: a record longer than {} MiB",
                        MAX_LINE >> 20
                    )));
                }
                // Quotes inside a quoted cell come in pairs, so an odd
                // count means the record goes on past this newline.
                if self.buf.iter().filter(|&&b| b == b'"').count() % 2 == 0 {
                    break;
                }
            }
            let mut rec = &self.buf[..];
            rec = rec.strip_suffix(b"\n").unwrap_or(rec);
            rec = rec.strip_suffix(b"\r").unwrap_or(rec);
            if rec.is_empty() {
                continue;
            }
            return match split_cells(rec, &mut self.cell, cells) {
                Ok(()) => Ok(Some(start)),
                Err(bad) => Err(DumpError::Record {
                    line: start,
                    message: bad.to_string(),
                }),
            };
        }
    }
}

/// Why a CSV row does not split into cells (cells count from 1).
#[derive(Debug, thiserror::Error)]
enum BadRow {
    #[error("a quoted cell is not closed")]
    Unclosed,
    #[error("cell {0}: text after its closing quote")]
    AfterQuote(usize),
    #[error("cell {0}: a quote inside a cell that does not start with one")]
    StrayQuote(usize),
    #[error("cell {0} is not UTF-8")]
    NotUtf8(usize),
}

fn split_cells(rec: &[u8], cell: &mut Vec<u8>, cells: &mut Vec<String>) -> Result<(), BadRow> {
    let mut i = 0;
    loop {
        cell.clear();
        if rec.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match rec.get(i) {
                    Some(b'"') if rec.get(i + 1) == Some(&b'"') => {
                        cell.push(b'"');
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(&b) => {
                        cell.push(b);
                        i += 1;
                    }
                    None => return Err(BadRow::Unclosed),
                }
            }
            if !matches!(rec.get(i), None | Some(b',')) {
                return Err(BadRow::AfterQuote(cells.len() + 1));
            }
        } else {
            let end = rec[i..]
                .iter()
                .position(|&b| b == b',')
                .map_or(rec.len(), |p| i + p);
            if rec[i..end].contains(&b'"') {
                return Err(BadRow::StrayQuote(cells.len() + 1));
            }
            cell.extend_from_slice(&rec[i..end]);
            i = end;
        }
        let text = String::from_utf8(std::mem::take(cell))
            .map_err(|_| BadRow::NotUtf8(cells.len() + 1))?;
        cells.push(text);
        if i >= rec.len() {
            return Ok(());
        }
        i += 1; // the comma
        if i == rec.len() {
            cells.push(String::new());
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str) -> Vec<Result<(u64, Vec<String>), String>> {
        let mut reader = CsvReader::default();
        let mut input = text.as_bytes();
        let mut out = Vec::new();
        let mut n = 0;
        loop {
            let mut cells = Vec::new();
            match reader.next_record(&mut input, &mut cells, &mut n) {
                Ok(Some(line)) => out.push(Ok((line, cells))),
                Ok(None) => return out,
                Err(e) => out.push(Err(e.to_string())),
            }
        }
    }

    #[test]
    fn rows_round_trip_through_quoting() {
        let cells = ["plain", "a,b", "say \"hi\"", "two\nlines", "", "cr\r"];
        let mut out = Vec::new();
        push_row(&mut out, cells);
        push_row(&mut out, ["x", "y"]);
        let text = String::from_utf8(out).unwrap();
        let rows = read_all(&text);
        assert_eq!(rows[0], Ok((1, cells.map(String::from).to_vec())));
        assert_eq!(rows[1], Ok((3, vec!["x".into(), "y".into()])));
    }

    #[test]
    fn malformed_rows_name_their_line_and_reading_goes_on() {
        let rows = read_all("a,b\nx\"y\"z,1\n\n\"q\"z,2\nok,3\r\n\"open\n");
        assert_eq!(rows[0], Ok((1, vec!["a".into(), "b".into()])));
        assert!(matches!(&rows[1], Err(e) if e.starts_with("line 2: cell 1: a quote inside")));
        assert!(matches!(&rows[2], Err(e) if e.starts_with("line 4: cell 1: text after")));
        assert_eq!(rows[3], Ok((5, vec!["ok".into(), "3".into()])));
        assert!(matches!(&rows[4], Err(e) if e.contains("line 6: a quoted cell is not closed")));
    }

    #[test]
    fn cells_keep_json_types_apart() {
        let raw = |s: &str| serde_json::from_str::<Box<RawValue>>(s).unwrap();
        let cases = [
            (r#""room 1""#, "room 1"),
            (r#""42""#, r#""42""#),
            (r#""true""#, r#""true""#),
            (r#""""#, r#""""#),
            (r#""[1]""#, r#""[1]""#),
            ("21.50", "21.50"),
            ("null", "null"),
            ("[1,2]", "[1,2]"),
        ];
        for (json, cell) in cases {
            assert_eq!(cell_of(&raw(json)), cell, "{json}");
            let mut back = Vec::new();
            assert!(push_value(&mut back, cell));
            assert_eq!(String::from_utf8(back).unwrap(), json);
        }
        assert!(!push_value(&mut Vec::new(), ""));
    }

    #[test]
    fn records_rebuild_in_column_order_without_missing_fields() {
        let columns = ["t".to_string(), "name".into(), "ok".into()];
        let rebuilt = record_from_cells(&columns, &["21.5", "", "true"]);
        assert_eq!(rebuilt, br#"{"t":21.5,"ok":true}"#);
        assert!(would_round_trip(
            &columns,
            &["21.5", "", "true"],
            br#"{"t":21.5,"ok":true}"#
        ));
        assert!(!would_round_trip(
            &columns,
            &["21.5", "", "true"],
            br#"{"ok":true,"t":21.5}"#
        ));
        assert_eq!(record_from_cells(&columns, &["", "", ""]), b"{}");
    }
}
