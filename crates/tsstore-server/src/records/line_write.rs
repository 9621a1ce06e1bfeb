//! A write of InfluxDB line protocol into a store, with InfluxDB's partial
//! write semantics: every line that can be stored is, and each one that
//! cannot is refused on its own, with its number and why. Points that
//! share a timestamp become one record (`tsstore::line_protocol`'s
//! layouts); records are stored in time order with one `put_many`, after
//! the lines at or before the store's newest timestamp, or too far in the
//! future, are refused (a store only appends). Lines without a timestamp
//! take the server's time, the same for all of one write, as InfluxDB
//! gives them.

use std::ops::Range;

use tsstore::line_protocol::{self, Point, RecordBuilder, Target};
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
    fn refuse(&mut self, number: usize, line: &[u8], why: impl std::fmt::Display) {
        self.refuse_as("invalid_data", number, line, why);
    }

    /// `reason`: the `/metrics` label it is counted under.
    fn refuse_as(
        &mut self,
        reason: &'static str,
        number: usize,
        line: &[u8],
        why: impl std::fmt::Display,
    ) {
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
            let why = why.to_string();
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

/// What the store is asked to take: records as slices of one buffer,
/// each with the lines it holds (to refuse them if the store will not).
#[derive(Default)]
struct Plan<'a> {
    buf: Vec<u8>,
    records: Vec<Planned>,
    members: Vec<(usize, &'a [u8])>,
}

struct Planned {
    timestamp: Option<i64>,
    bytes: Range<usize>,
    members: Range<usize>,
}

/// The lines of a write, grouped into a record per timestamp as they come
/// in time order.
struct Grouper<'s, 'a> {
    target: Target<'s>,
    current: Option<(i64, RecordBuilder<'s, 'a>, usize)>,
    plan: Plan<'a>,
}

impl<'s, 'a> Grouper<'s, 'a> {
    fn new(target: Target<'s>) -> Grouper<'s, 'a> {
        Grouper {
            target,
            current: None,
            plan: Plan::default(),
        }
    }

    /// Adds a line at `ts`; `false` (and nothing added) when `ts` is
    /// before the timestamp being grouped: the lines are not in order.
    fn add(
        &mut self,
        ts: i64,
        number: usize,
        line: &'a [u8],
        point: &Point,
        report: &mut LineWrite,
    ) -> bool {
        match &self.current {
            Some((t, _, _)) if *t == ts => {}
            Some((t, _, _)) if *t > ts => return false,
            _ => {
                self.close();
                let start = self.plan.members.len();
                self.current = Some((ts, RecordBuilder::new(self.target), start));
            }
        }
        if let Some((_, builder, _)) = &mut self.current {
            match builder.add(line, point) {
                Ok(()) => self.plan.members.push((number, line)),
                Err(why) => report.refuse(number, line, why),
            }
        }
        true
    }

    /// Ends the record being grouped.
    fn close(&mut self) {
        if let Some((ts, builder, start)) = self.current.take() {
            self.plan.push(Some(ts), builder, start);
        }
    }

    /// The plan, with the lines without a timestamp as its last record.
    fn finish(mut self, untimed: &[(usize, &'a [u8])], report: &mut LineWrite) -> Plan<'a> {
        self.close();
        let mut builder = RecordBuilder::new(self.target);
        let start = self.plan.members.len();
        let mut point = Point::default();
        for &(number, line) in untimed {
            if line_protocol::parse_line_into(line, &mut point).is_err() {
                continue; // parsed once already: cannot happen
            }
            match builder.add(line, &point) {
                Ok(()) => self.plan.members.push((number, line)),
                Err(why) => report.refuse(number, line, why),
            }
        }
        self.plan.push(None, builder, start);
        self.plan
    }
}

impl Plan<'_> {
    fn push(&mut self, timestamp: Option<i64>, builder: RecordBuilder, members_start: usize) {
        if builder.is_empty() {
            return;
        }
        let from = self.buf.len();
        builder.finish_into(&mut self.buf);
        self.records.push(Planned {
            timestamp,
            bytes: from..self.buf.len(),
            members: members_start..self.members.len(),
        });
    }
}

/// Why a point at `ts` cannot be stored, if it cannot: `(metrics reason,
/// words)`.
fn inadmissible(ts: i64, newest: i64, latest: Option<i64>) -> Option<(&'static str, String)> {
    if ts <= newest {
        return Some((
            "out_of_order",
            format!(
                "timestamp {ts} is not after the newest in the store ({newest}): a store only appends"
            ),
        ));
    }
    if latest.is_some_and(|l| ts > l) {
        return Some((
            "future_timestamp",
            format!(
                "timestamp {ts} is too far ahead of the server's clock (the store's max_future_skew)"
            ),
        ));
    }
    None
}

/// The time bounds of what a store takes now.
struct Bounds {
    factor: i64,
    newest: i64,
    latest: Option<i64>,
}

impl Bounds {
    /// The line's timestamp in ns, if it has one and the store can take
    /// it; refusals go to `report`. `Err(())`: no timestamp.
    fn of(
        &self,
        point: &Point,
        number: usize,
        line: &[u8],
        report: &mut LineWrite,
    ) -> Result<Option<i64>, ()> {
        let Some(raw) = point.timestamp else {
            return Err(());
        };
        let Some(ts) = raw.checked_mul(self.factor) else {
            report.refuse_as(
                "invalid_timestamp",
                number,
                line,
                line_protocol::LineError::TimestampOutOfRange,
            );
            return Ok(None);
        };
        match inadmissible(ts, self.newest, self.latest) {
            Some((reason, why)) => {
                report.refuse_as(reason, number, line, why);
                Ok(None)
            }
            None => Ok(Some(ts)),
        }
    }
}

/// Parses each line of `body`, refusing those that cannot be stored, and
/// hands each one with a timestamp to `timed`, which may stop the scan
/// (`None`). The lines without a timestamp, for the last record.
fn scan<'a>(
    body: &'a [u8],
    bounds: &Bounds,
    report: &mut LineWrite,
    mut timed: impl FnMut(i64, usize, &'a [u8], &Point<'a>, &mut LineWrite) -> bool,
) -> Option<Vec<(usize, &'a [u8])>> {
    let mut untimed = Vec::new();
    let mut point = Point::default();
    for (number, line) in line_protocol::lines(body) {
        if let Err(why) = line_protocol::parse_line_into(line, &mut point) {
            report.refuse(number, line, why);
            continue;
        }
        match bounds.of(&point, number, line, report) {
            Err(()) => untimed.push((number, line)),
            Ok(None) => {}
            Ok(Some(ts)) => {
                if !timed(ts, number, line, &point, report) {
                    return None;
                }
            }
        }
    }
    Some(untimed)
}

/// The usual write, its lines in time order: each line parsed once and
/// grouped as it comes. `None` when a line goes back in time (nothing
/// is decided then: the write is planned again by `sorted`).
fn streamed<'s, 'a>(
    body: &'a [u8],
    target: Target<'s>,
    bounds: &Bounds,
    report: &mut LineWrite,
) -> Option<Plan<'a>> {
    let mut grouper = Grouper::new(target);
    let untimed = scan(body, bounds, report, |ts, number, line, point, report| {
        grouper.add(ts, number, line, point, report)
    })?;
    Some(grouper.finish(&untimed, report))
}

/// Any write: the lines sorted by time first (stable, so points of one
/// timestamp keep their order), then grouped.
fn sorted<'s, 'a>(
    body: &'a [u8],
    target: Target<'s>,
    bounds: &Bounds,
    report: &mut LineWrite,
) -> Plan<'a> {
    let mut timed = Vec::new();
    let untimed = scan(body, bounds, report, |ts, number, line, _, _| {
        timed.push((ts, number, line));
        true
    })
    .unwrap_or_default();
    let mut point = Point::default();
    timed.sort_by_key(|(ts, _, _)| *ts);
    let mut grouper = Grouper::new(target);
    for (ts, number, line) in timed {
        if line_protocol::parse_line_into(line, &mut point).is_ok() {
            grouper.add(ts, number, line, &point, report);
        }
    }
    grouper.finish(&untimed, report)
}

fn write_lines(
    open: &OpenStore,
    body: &[u8],
    factor: i64,
    report: &mut LineWrite,
) -> RecordResult<()> {
    let store = &open.store;
    let schema = store.schema();
    let target = match store.data_type() {
        DataType::Json => Target::Json,
        DataType::Schema => match schema.as_deref() {
            Some(s) => Target::Schema(s),
            None => {
                for (number, line) in line_protocol::lines(body) {
                    report.refuse_as("schema", number, line, "the schema store has no schema yet");
                }
                return Ok(());
            }
        },
        DataType::Text | DataType::Binary => Target::Text,
    };
    let bounds = Bounds {
        factor,
        newest: store.newest_timestamp().unwrap_or(i64::MIN),
        latest: store
            .max_future_skew()
            .map(|d| now_ns().saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))),
    };
    let plan = match streamed(body, target, &bounds, report) {
        Some(plan) => plan,
        None => {
            *report = LineWrite::default();
            sorted(body, target, &bounds, report)
        }
    };
    // A record the store would refuse refuses its lines, and only them.
    // Json and text records are valid by construction: only their size
    // can be wrong; a schema record is checked whole (types).
    let max = usize::try_from(store.max_object_size()).unwrap_or(usize::MAX);
    let mut items = Vec::with_capacity(plan.records.len());
    let mut written = 0;
    for r in &plan.records {
        let payload = &plan.buf[r.bytes.clone()];
        let members = &plan.members[r.members.clone()];
        let refusal = match target {
            Target::Schema(_) => store.check(payload).err(),
            _ if payload.len() > max => store.check(payload).err(),
            _ => None,
        };
        if let Some(e) = refusal {
            let why = e.to_string();
            let reason = RecordError::Store(e).reject_reason();
            for &(number, line) in members {
                report.refuse_as(reason, number, line, &why);
            }
            continue;
        }
        written += members.len();
        items.push(Item {
            timestamp: r.timestamp,
            payload: payload.into(),
        });
    }
    if items.is_empty() {
        return Ok(());
    }
    let batch = intake::store_batch(open, Ok(items))?;
    report.written = written;
    report.records = batch.count;
    Ok(())
}
