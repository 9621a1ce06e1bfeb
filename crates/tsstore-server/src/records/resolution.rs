//! `resolution` and `max_points`: which ring a list read answers from,
//! raw or one of the store's rollups (`tsstore::Store::add_rollup`), and
//! the body's label. A rollup's rows have the shape of a
//! windowed aggregation's windows, so a client that reads one reads the
//! other; a body read at a resolution says which one answered.

use tsstore::{Resolution, Store};

use super::error::{RecordError, RecordResult};

/// Points an `auto` read aims at when `max_points` is not given.
pub const DEFAULT_MAX_POINTS: usize = 1000;

/// What a read asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Asked {
    /// Nothing: raw records, and the body says nothing of a resolution.
    #[default]
    Unset,
    Raw,
    /// A rollup's window (ns).
    Window(i64),
    /// The finest ring within this many points.
    Auto(usize),
}

impl Asked {
    /// From the `resolution` and `max_points` texts; `max_records` caps
    /// the budget.
    pub fn parse(
        resolution: Option<&str>,
        max_points: Option<&str>,
        max_records: usize,
    ) -> RecordResult<Asked> {
        let asked = match resolution {
            None => Asked::Unset,
            Some("raw") => Asked::Raw,
            Some("auto") => {
                let max = max_records;
                let points = match max_points {
                    None => DEFAULT_MAX_POINTS.min(max),
                    Some(text) => match text.parse::<usize>() {
                        Ok(n) if (1..=max).contains(&n) => n,
                        _ => {
                            return Err(RecordError::InvalidParameter(format!(
                                "max_points: '{text}' is not a whole number from 1 to {max}"
                            )));
                        }
                    },
                };
                return Ok(Asked::Auto(points));
            }
            Some(window) => match tsstore::parse_duration_ns(window) {
                Ok(ns) => Asked::Window(ns),
                Err(e) => {
                    return Err(RecordError::InvalidParameter(format!(
                        "resolution: '{window}' is not raw, auto or a rollup's window such \
                         as 1h ({e})"
                    )));
                }
            },
        };
        if max_points.is_some() {
            return Err(RecordError::InvalidParameter(
                "max_points applies to resolution=auto".into(),
            ));
        }
        Ok(asked)
    }

    /// Whether a rollup may answer (the options that only raw records
    /// have are refused with it).
    pub fn may_roll_up(self) -> bool {
        matches!(self, Asked::Window(_) | Asked::Auto(_))
    }

    /// The ring that answers a read of `range` in `store`.
    pub fn resolve(self, store: &Store, range: (i64, i64)) -> Resolution {
        match self {
            Asked::Unset | Asked::Raw => Resolution::Raw,
            Asked::Window(w) => Resolution::Rollup(w),
            Asked::Auto(points) => store.choose_resolution(range.0, range.1, points),
        }
    }
}

/// Adds `"resolution": label` to a list body (`{…}`).
pub fn labelled(mut body: Vec<u8>, resolution: Resolution) -> Vec<u8> {
    if body.last() == Some(&b'}') {
        body.pop();
        body.extend_from_slice(b",\"resolution\":\"");
        body.extend_from_slice(resolution.label().as_bytes());
        body.extend_from_slice(b"\"}");
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_options_parse_or_say_why_not() {
        let ok = |r, p| Asked::parse(r, p, 10_000).unwrap();
        assert_eq!(ok(None, None), Asked::Unset);
        assert_eq!(ok(Some("raw"), None), Asked::Raw);
        assert_eq!(ok(Some("1h"), None), Asked::Window(3_600_000_000_000));
        assert_eq!(ok(Some("auto"), None), Asked::Auto(1000));
        assert_eq!(ok(Some("auto"), Some("250")), Asked::Auto(250));
        assert_eq!(
            Asked::parse(Some("auto"), None, 500).unwrap(),
            Asked::Auto(500)
        );
        let err = |r, p| Asked::parse(r, p, 10_000).unwrap_err().to_string();
        assert!(err(Some("hourly"), None).contains("not raw, auto or a rollup's window"));
        assert!(err(Some("0s"), None).contains("resolution"));
        assert!(err(Some("auto"), Some("0")).contains("max_points: '0'"));
        assert!(err(Some("auto"), Some("10001")).contains("from 1 to 10000"));
        assert!(err(Some("1h"), Some("10")).contains("applies to resolution=auto"));
        assert!(err(None, Some("10")).contains("applies to resolution=auto"));
    }

    #[test]
    fn a_label_goes_last_in_the_body() {
        let body = labelled(
            b"{\"objects\":[],\"count\":0}".to_vec(),
            Resolution::Rollup(3_600_000_000_000),
        );
        assert_eq!(body, b"{\"objects\":[],\"count\":0,\"resolution\":\"1h\"}");
    }
}
