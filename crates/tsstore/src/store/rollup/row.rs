//! A rollup row as it is stored: one object per window in the rollup's
//! ring, at the window's end timestamp, holding
//! `{"records":N,"partial":B,"data":{…}}`. JSON, so that a rollup ring
//! opened as a store of its own (`tsstore` tools, a backup) reads as
//! plain records; the prefix is always written in this order, so reading
//! it back is a few comparisons, not a parse.

use crate::aggregate::Window;
use crate::error::{Error, Result};

const RECORDS: &[u8] = b"{\"records\":";
const PARTIAL: &[u8] = b",\"partial\":true,\"data\":";
const COMPLETE: &[u8] = b",\"partial\":false,\"data\":";

/// The stored bytes of `window`.
pub(crate) fn encode(window: &Window, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(RECORDS);
    // Rows are written once per window: the allocation does not matter.
    out.extend_from_slice(window.records.to_string().as_bytes());
    out.extend_from_slice(if window.partial { PARTIAL } else { COMPLETE });
    out.extend_from_slice(&window.data);
    out.push(b'}');
}

/// The window stored at `end` in a ring of `window_ns` windows.
pub(crate) fn decode(end: i64, window_ns: i64, stored: &[u8]) -> Result<Window> {
    let bad = || Error::Corrupt(format!("rollup row at {end} is not a window: {stored:?}"));
    let rest = stored.strip_prefix(RECORDS).ok_or_else(bad)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let records = std::str::from_utf8(&rest[..digits])
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
        .ok_or_else(bad)?;
    let rest = &rest[digits..];
    let (partial, rest) = match rest.strip_prefix(PARTIAL) {
        Some(rest) => (true, rest),
        None => (false, rest.strip_prefix(COMPLETE).ok_or_else(bad)?),
    };
    let data = rest.strip_suffix(b"}").ok_or_else(bad)?;
    if data.len() < 2 || data[0] != b'{' || data[data.len() - 1] != b'}' {
        return Err(bad());
    }
    Ok(Window {
        start: end.saturating_sub(window_ns),
        end,
        partial,
        records,
        data: data.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_reads_back_as_the_window_it_was() {
        for partial in [false, true] {
            let w = Window {
                start: 3_600,
                end: 7_200,
                partial,
                records: 42,
                data: br#"{"t_avg":1.5,"s":"x}"}"#.to_vec(),
            };
            let mut row = Vec::new();
            encode(&w, &mut row);
            assert!(serde_json::from_slice::<serde_json::Value>(&row).is_ok());
            assert_eq!(decode(7_200, 3_600, &row).unwrap(), w);
        }
    }

    #[test]
    fn anything_else_is_corrupt() {
        for bad in [
            &b""[..],
            b"{}",
            b"{\"records\":,\"partial\":false,\"data\":{}}",
            b"{\"records\":1,\"partial\":maybe,\"data\":{}}",
            b"{\"records\":1,\"partial\":false,\"data\":{}",
            b"{\"records\":1,\"partial\":false,\"data\":3}",
        ] {
            assert!(
                matches!(decode(1, 1, bad), Err(Error::Corrupt(_))),
                "{bad:?}"
            );
        }
    }
}
