//! A write of InfluxDB line protocol into a store, with InfluxDB's partial
//! write semantics: every line that can be stored is, and each one that
//! cannot is refused on its own, with its number and why. Points that
//! share a timestamp become one record (`tsstore::line_protocol`'s
//! layouts); records are stored in time order with one `put_many`, after
//! the lines at or before the store's newest timestamp, or too far in the
//! future, are refused (a store only appends). Lines without a timestamp
//! take the server's time, the same for all of one write, as InfluxDB
//! gives them.

use tsstore::line_protocol::{self, RecordBuilder, Target};
use tsstore::{DataType, now_ns};

use super::intake::{self, Item};
use super::{RecordError, RecordResult};
use crate::registry::OpenStore;

/// Longest piece of a refused line quoted back.
const QUOTED_LINE: usize = 120;
/// Refused lines described in one answer, at most (the count is exact).
const DESCRIBED: usize = 20;

/// The unit of a write's timestamps, in nanoseconds: 1.x's `n`, `u`, `ms`,
/// `s`, `m`, `h` and 2.x's `ns`, `us` (absent: nanoseconds).
pub fn precision_factor(precision: Option<&str>) -> RecordResult<i64> {
    Ok(match precision.unwrap_or("ns") {
        "n" | "ns" => 1,
        "u" | "us" | "µ" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        other => {
            return Err(RecordError::InvalidParameter(format!(
                "precision: '{other}' is not ns, us, ms, s (or 1.x's n, u, m, h)"
            )));
        }
    })
}

/// One line refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// 1-based, counting every line of the body.
    pub number: usize,
    /// The line, cut at `QUOTED_LINE` bytes.
    pub text: String,
    pub why: String,
}

/// What a write did.
#[derive(Debug, Default)]
pub struct LineWrite {
    /// Lines stored.
    pub written: usize,
    /// Records they made.
    pub records: usize,
    /// Lines refused, in order (`refused_count` may be larger).
    pub refused: Vec<Refused>,
    pub refused_count: usize,
    /// Each refusal's `/metrics` reason.
    reasons: Vec<&'static str>,
}

impl LineWrite {
    fn refuse(&mut self, number: usize, line: &[u8], why: String) {
        self.refuse_as("invalid_data", number, line, why);
    }

    /// `reason`: the `/metrics` label it is counted under.
    fn refuse_as(&mut self, reason: &'static str, number: usize, line: &[u8], why: String) {
        self.refused_count += 1;
        self.reasons.push(reason);
        if self.refused.len() < DESCRIBED {
            let mut end = line.len().min(QUOTED_LINE);
            let text = loop {
                match std::str::from_utf8(&line[..end]) {
                    Ok(t) => break t.to_string(),
                    Err(e) => end = e.valid_up_to(),
                }
            };
            self.refused.push(Refused { number, text, why });
        }
    }

    /// InfluxDB's words for what was refused: `unable to parse 'line'
    /// (line N): why`, one per line.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for r in &self.refused {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!(
                "unable to parse '{}' (line {}): {}",
                r.text, r.number, r.why
            ));
        }
        if self.refused_count > self.refused.len() {
            out.push_str(&format!(
                "\n... and {} more lines",
                self.refused_count - self.refused.len()
            ));
        }
        out
    }
}

/// A line that parsed, waiting for its record.
struct Parsed<'a> {
    number: usize,
    line: &'a [u8],
    point: line_protocol::Point<'a>,
}

/// Stores what `body` holds. `Err` only when nothing could be stored for
/// a reason that is not a line's (the disk, the store): then no line is.
pub fn write(open: &OpenStore, body: &[u8], factor: i64) -> RecordResult<LineWrite> {
    let mut report = LineWrite::default();
    let result = write_lines(open, body, factor, &mut report);
    for reason in report.reasons.drain(..) {
        open.metrics.rejected(reason);
    }
    result.map(|()| report)
}

fn write_lines(
    open: &OpenStore,
    body: &[u8],
    factor: i64,
    report: &mut LineWrite,
) -> RecordResult<()> {
    // Explicit timestamps in time order, arrival order within one; then
    // the lines without.
    let mut timed: Vec<(i64, Parsed)> = Vec::new();
    let mut untimed: Vec<Parsed> = Vec::new();
    for (number, line) in line_protocol::lines(body) {
        match line_protocol::parse_line(line) {
            Err(why) => report.refuse(number, line, why.to_string()),
            Ok(point) => match point.timestamp.map(|t| t.checked_mul(factor)) {
                None => untimed.push(Parsed {
                    number,
                    line,
                    point,
                }),
                Some(Some(ts)) => timed.push((
                    ts,
                    Parsed {
                        number,
                        line,
                        point,
                    },
                )),
                Some(None) => report.refuse(number, line, "timestamp out of range".into()),
            },
        }
    }
    timed.sort_by_key(|(ts, _)| *ts);
    let store = &open.store;
    let schema = store.schema();
    let target = match store.data_type() {
        DataType::Json => Target::Json,
        DataType::Schema => match schema.as_deref() {
            Some(s) => Target::Schema(s),
            None => {
                for p in timed.iter().map(|(_, p)| p).chain(&untimed) {
                    report.refuse_as(
                        "schema",
                        p.number,
                        p.line,
                        "the schema store has no schema yet".into(),
                    );
                }
                return Ok(());
            }
        },
        DataType::Text | DataType::Binary => Target::Text,
    };
    let newest = store.stats().newest_timestamp.unwrap_or(i64::MIN);
    let latest = store
        .max_future_skew()
        .map(|d| now_ns().saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)));
    let mut records: Vec<(Option<i64>, Vec<u8>, Vec<&Parsed>)> = Vec::new();
    let mut i = 0;
    while i < timed.len() {
        let ts = timed[i].0;
        let group: Vec<&Parsed> = timed[i..]
            .iter()
            .take_while(|(t, _)| *t == ts)
            .map(|(_, p)| p)
            .collect();
        i += group.len();
        let why = if ts <= newest {
            Some((
                "out_of_order",
                format!(
                    "timestamp {ts} is not after the newest in the store ({newest}): a store only appends"
                ),
            ))
        } else if latest.is_some_and(|l| ts > l) {
            Some((
                "future_timestamp",
                format!(
                    "timestamp {ts} is too far ahead of the server's clock (the store's max_future_skew)"
                ),
            ))
        } else {
            None
        };
        if let Some((reason, why)) = why {
            for p in group {
                report.refuse_as(reason, p.number, p.line, why.clone());
            }
            continue;
        }
        if let Some(record) = build(target, group, report) {
            records.push((Some(ts), record.0, record.1));
        }
    }
    if let Some(record) = build(target, untimed.iter().collect(), report) {
        records.push((None, record.0, record.1));
    }
    // A record the store would refuse (a schema's types, its size) refuses
    // its lines, and only them.
    records.retain(|(_, payload, lines)| match store.check(payload) {
        Ok(()) => true,
        Err(e) => {
            let why_text = e.to_string();
            let reason = RecordError::Store(e).reject_reason();
            for p in lines {
                report.refuse_as(reason, p.number, p.line, why_text.clone());
            }
            false
        }
    });
    if records.is_empty() {
        return Ok(());
    }
    let written: usize = records.iter().map(|(_, _, lines)| lines.len()).sum();
    let items = records
        .iter()
        .map(|(ts, payload, _)| Item {
            timestamp: *ts,
            payload: payload.as_slice().into(),
        })
        .collect();
    let batch = intake::store_batch(open, Ok(items))?;
    report.written = written;
    report.records = batch.count;
    Ok(())
}

/// The record of one timestamp's lines (and those lines), refusing the
/// lines it cannot take; `None` when it takes none.
fn build<'p, 'a>(
    target: Target,
    group: Vec<&'p Parsed<'a>>,
    report: &mut LineWrite,
) -> Option<(Vec<u8>, Vec<&'p Parsed<'a>>)> {
    let mut builder = RecordBuilder::new(target);
    let mut taken = Vec::with_capacity(group.len());
    for p in group {
        match builder.add(p.line, &p.point) {
            Ok(()) => taken.push(p),
            Err(why) => report.refuse(p.number, p.line, why),
        }
    }
    (!builder.is_empty()).then(|| (builder.finish(), taken))
}
