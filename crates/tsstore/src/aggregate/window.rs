//! The window accumulator: records in, closed windows out, O(fields) per
//! record with no allocation once every field has been seen.
//!
//! Per field and window it keeps the numeric count, sums (exact `i128`
//! while every value is an integer, `f64` always), min, max, first and
//! last, plus the raw text of the last non-numeric value, which is what a
//! field shows when it held no number in the window.

use std::collections::HashMap;

use super::AggSpec;
use super::field::FieldAcc;
use super::fields::{RecordFields, Value};

/// Most distinct fields one aggregator tracks; later new fields are not
/// aggregated (and counted in `Aggregator::dropped_fields`).
pub const MAX_AGG_FIELDS: usize = 1024;

/// One finished window.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// First timestamp of the window (a multiple of its length).
    pub start: i64,
    /// `start + length`: the timestamp the window is reported at.
    pub end: i64,
    /// Closed before its end was reached (or cut by a query's start):
    /// `sum` is `null` in it.
    pub partial: bool,
    /// Records aggregated into it.
    pub records: u64,
    /// The aggregated record, a JSON object.
    pub data: Vec<u8>,
}

impl Window {
    /// The output timestamp: the window's end.
    pub fn timestamp(&self) -> i64 {
        self.end
    }
}

/// Streaming aggregation: feed records in time order with `add`, which
/// returns each window as soon as a record falls past its end. A clone
/// carries on from the same point (a rollup's reads do that to show its
/// open window).
#[derive(Debug, Clone)]
pub struct Aggregator {
    spec: AggSpec,
    pub(super) fields: Vec<FieldAcc>,
    by_name: HashMap<String, usize>,
    /// Field slots of the current window, in order of first appearance.
    pub(super) touched: Vec<usize>,
    /// `hints[i]`: the slot of the i-th key of the previous record, which
    /// is usually the slot of the i-th key of this one too (`usize::MAX`:
    /// not aggregated).
    hints: Vec<usize>,
    /// The shape (`RecordFields::shape`) `hints` were made for: a record of
    /// that shape takes them as they are.
    hints_shape: u64,
    /// What `add` parses each record into, reused.
    parsed: RecordFields,
    pub(super) window_start: Option<i64>,
    pub(super) records: u64,
    /// Windows starting before this are partial (a query's start cut them).
    covered_from: i64,
    skipped: u64,
    dropped_fields: u64,
    /// The last closed window's tallies, kept for coarser aggregators fed
    /// from this one (`chain`): `closed[slot]` for the slots in
    /// `closed_touched`. Off unless asked for (`keep_closed`).
    pub(super) keep_closed: bool,
    pub(super) closed: Vec<FieldAcc>,
    pub(super) closed_touched: Vec<usize>,
    pub(super) closed_records: u64,
    /// Windows closed so far (with or without records).
    pub(super) closes: u64,
}

impl Aggregator {
    pub fn new(spec: AggSpec) -> Aggregator {
        Aggregator {
            spec,
            fields: Vec::new(),
            by_name: HashMap::new(),
            touched: Vec::new(),
            hints: Vec::new(),
            hints_shape: 0,
            parsed: RecordFields::default(),
            window_start: None,
            records: 0,
            covered_from: i64::MIN,
            skipped: 0,
            dropped_fields: 0,
            keep_closed: false,
            closed: Vec::new(),
            closed_touched: Vec::new(),
            closed_records: 0,
            closes: 0,
        }
    }

    /// Marks windows that start before `from` as partial: a range query
    /// starting at `from` saw only part of them.
    pub fn covered_from(mut self, from: i64) -> Aggregator {
        self.covered_from = from;
        self
    }

    /// Records before `ts` were lost before they were added (a ring
    /// wrapped past them): windows starting before it are partial.
    pub fn lost_before(&mut self, ts: i64) {
        self.covered_from = self.covered_from.max(ts);
    }

    pub fn spec(&self) -> &AggSpec {
        &self.spec
    }

    /// Records that were not JSON objects, so were left out.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Field occurrences not aggregated because `MAX_AGG_FIELDS` distinct
    /// fields were already tracked.
    pub fn dropped_fields(&self) -> u64 {
        self.dropped_fields
    }

    /// Adds one record (a JSON object; anything else is skipped and
    /// counted). Returns the previous window if `timestamp` lies past its
    /// end. Records must come in time order; a late one joins the current
    /// window.
    pub fn add(&mut self, timestamp: i64, record: &[u8]) -> Option<Window> {
        let mut fields = std::mem::take(&mut self.parsed);
        fields.parse(record);
        let closed = self.add_fields(timestamp, record, &fields);
        self.parsed = fields;
        closed
    }

    /// `add` for a record already parsed into `fields` (one parse for
    /// several aggregators).
    pub fn add_fields(
        &mut self,
        timestamp: i64,
        record: &[u8],
        fields: &RecordFields,
    ) -> Option<Window> {
        let closed = self.advance(timestamp);
        self.accumulate(record, fields);
        closed
    }

    /// Moves to the window of `timestamp`, closing the current one if it
    /// lies before.
    pub(super) fn advance(&mut self, timestamp: i64) -> Option<Window> {
        let start = super::window_start(timestamp, self.spec.window_ns);
        let closed = match self.window_start {
            Some(current) if start > current => self.emit(false),
            _ => None,
        };
        if self.window_start.is_none_or(|current| start > current) {
            self.window_start = Some(start);
        }
        closed
    }

    fn accumulate(&mut self, record: &[u8], fields: &RecordFields) {
        if !fields.object {
            self.skipped += 1;
            return;
        }
        // The record parsed whole: every field goes straight in.
        self.records += 1;
        self.place(record, fields, |agg, slot, value| {
            let acc = &mut agg.fields[slot];
            if acc.count == 0 && !acc.has_other {
                agg.touched.push(slot);
            }
            match value {
                Value::Number(n) => acc.add_number(n),
                Value::Other(from, to) => {
                    acc.other.clear();
                    // The range came from a &str inside `record`.
                    acc.other.extend_from_slice(&record[from..to]);
                    acc.has_other = true;
                }
            }
        });
    }

    /// Calls `f` with the slot and value of each field of a parsed
    /// object, in order; a record of the last one's shape takes its slots
    /// as they are.
    pub(super) fn place(
        &mut self,
        record: &[u8],
        fields: &RecordFields,
        mut f: impl FnMut(&mut Aggregator, usize, Value),
    ) {
        let placed = fields.shape != 0
            && fields.shape == self.hints_shape
            && fields.entries.len() <= self.hints.len();
        for (position, &(key, value)) in fields.entries.iter().enumerate() {
            let slot = match placed {
                true => Some(self.hints[position]).filter(|&s| s != usize::MAX),
                false => self.slot(position, fields.key(record, key)),
            };
            match slot {
                Some(slot) => f(self, slot, value),
                None => self.dropped_fields += u64::from(placed),
            }
        }
        self.hints_shape = fields.shape;
    }

    /// The slot of field `key`, the `position`-th key of its record.
    fn slot(&mut self, position: usize, key: &[u8]) -> Option<usize> {
        if let Some(&hint) = self.hints.get(position)
            && self
                .fields
                .get(hint)
                .is_some_and(|f| f.name.as_bytes() == key)
        {
            return Some(hint);
        }
        // Keys come from a &str or are ASCII.
        let slot = std::str::from_utf8(key)
            .ok()
            .and_then(|key| self.slot_named(key));
        if position < MAX_AGG_FIELDS {
            if self.hints.len() <= position {
                self.hints.resize(position + 1, usize::MAX);
            }
            self.hints[position] = slot.unwrap_or(usize::MAX);
        }
        slot
    }

    /// The slot of field `key`, made if new (`None`: `MAX_AGG_FIELDS`
    /// fields are tracked already).
    pub(super) fn slot_named(&mut self, key: &str) -> Option<usize> {
        if let Some(&slot) = self.by_name.get(key) {
            return Some(slot);
        }
        if self.fields.len() >= MAX_AGG_FIELDS {
            self.dropped_fields += 1;
            return None;
        }
        let fns = self.spec.functions_for(key).to_vec();
        self.fields.push(FieldAcc::new(key, &fns));
        self.by_name.insert(key.to_string(), self.fields.len() - 1);
        Some(self.fields.len() - 1)
    }

    /// Closes the current window if `now` has reached its end (a stream
    /// that went quiet still gets its window out).
    pub fn close_if_ended(&mut self, now: i64) -> Option<Window> {
        let start = self.window_start?;
        if now >= start.saturating_add(self.spec.window_ns) {
            self.emit(false)
        } else {
            None
        }
    }

    /// Flushes the current window before its end: it is partial.
    pub fn flush(&mut self) -> Option<Window> {
        self.emit(true)
    }

    /// Flushes the current window at the end of a query whose range
    /// reached `covered_until` (inclusive): partial unless the range
    /// covered the window to its last nanosecond.
    pub fn finish(&mut self, covered_until: i64) -> Option<Window> {
        let start = self.window_start?;
        let last = start.saturating_add(self.spec.window_ns - 1);
        self.emit(covered_until < last)
    }

    fn emit(&mut self, partial: bool) -> Option<Window> {
        let start = self.window_start.take()?;
        let records = std::mem::take(&mut self.records);
        self.closes += 1;
        let partial = partial || start < self.covered_from;
        if self.keep_closed {
            // New fields get their twin once; tallies are swapped, so
            // keeping them costs no allocation.
            let known = self.closed.len();
            self.closed.extend_from_slice(&self.fields[known..]);
            self.closed_touched.clone_from(&self.touched);
            self.closed_records = records;
        }
        let mut data = Vec::with_capacity(16 + 24 * self.touched.len());
        data.push(b'{');
        for &slot in &self.touched {
            let before = data.len();
            if before > 1 {
                data.push(b',');
            }
            if !self.fields[slot].write(&mut data, partial) {
                data.truncate(before);
            }
            if self.keep_closed {
                std::mem::swap(&mut self.fields[slot], &mut self.closed[slot]);
            }
            self.fields[slot].clear();
        }
        data.push(b'}');
        self.touched.clear();
        (records > 0).then(|| Window {
            start,
            end: start.saturating_add(self.spec.window_ns),
            partial,
            records,
            data,
        })
    }
}

/// Aggregates records sorted by time that a query selected from the
/// inclusive range `covered`: windows cut by either end of the range are
/// partial.
pub fn aggregate<'a, I>(spec: &AggSpec, records: I, covered: (i64, i64)) -> Vec<Window>
where
    I: IntoIterator<Item = (i64, &'a [u8])>,
{
    let mut agg = Aggregator::new(spec.clone()).covered_from(covered.0);
    let mut out = Vec::new();
    for (ts, data) in records {
        out.extend(agg.add(ts, data));
    }
    out.extend(agg.finish(covered.1));
    out
}

#[cfg(test)]
mod tests {
    use super::super::AggFn::*;
    use super::*;
    use serde_json::{Value, json};

    const MIN: i64 = 60_000_000_000;

    fn spec(fields: Option<&str>, default: Option<&str>) -> AggSpec {
        AggSpec::parse(Some("1m"), fields, default)
            .unwrap()
            .unwrap()
    }

    fn data(w: &Window) -> Value {
        serde_json::from_slice(&w.data).unwrap()
    }

    #[test]
    fn windows_close_on_the_first_later_record() {
        let mut agg = Aggregator::new(spec(Some("t:avg+min+max+sum+count+first+last"), None));
        assert!(agg.add(MIN + 1, br#"{"t":1}"#).is_none());
        assert!(agg.add(2 * MIN - 1, br#"{"t":4.5}"#).is_none());
        let w = agg.add(3 * MIN, br#"{"t":-2}"#).unwrap();
        assert_eq!(
            (w.start, w.end, w.timestamp(), w.partial, w.records),
            (MIN, 2 * MIN, 2 * MIN, false, 2)
        );
        assert_eq!(
            data(&w),
            json!({"t_avg": 2.75, "t_min": 1, "t_max": 4.5, "t_sum": 5.5, "t_count": 2, "t_first": 1, "t_last": 4.5})
        );
        let w = agg.flush().unwrap();
        assert!(w.partial);
        assert_eq!(w.start, 3 * MIN);
        assert_eq!(data(&w)["t_sum"], Value::Null);
        assert_eq!(data(&w)["t_avg"], json!(-2.0));
        assert!(agg.flush().is_none());
    }

    #[test]
    fn naming_defaults_and_non_numeric_fields() {
        let mut agg = Aggregator::new(spec(Some("count:sum"), Some("max")));
        agg.add(
            1,
            br#"{"count":2,"temp":20,"status":"ok","nested":{"a":1}}"#,
        );
        agg.add(2, br#"{"count":3,"temp":25,"status":"error","nested":[1]}"#);
        let w = agg.finish(MIN - 1).unwrap();
        assert!(!w.partial);
        assert_eq!(
            data(&w),
            json!({"count": 5, "temp": 25, "status": "error", "nested": [1]})
        );
        // Exact integer sums; avg without agg_default.
        let mut agg = Aggregator::new(spec(None, None));
        agg.add(1, br#"{"big":9007199254740993}"#);
        agg.add(2, br#"{"big":1}"#);
        agg.add(3, br#"{"other":1}"#);
        let w = agg.flush().unwrap();
        assert_eq!(data(&w), json!({"big": 4503599627370497.0, "other": 1.0}));
        let mut agg = Aggregator::new(spec(None, Some("sum")));
        agg.add(1, br#"{"big":9007199254740993}"#);
        agg.add(2, br#"{"big":1}"#);
        assert_eq!(
            &agg.finish(MIN).unwrap().data,
            br#"{"big":9007199254740994}"#
        );
    }

    #[test]
    fn booleans_and_nulls_of_flat_records_are_kept() {
        // The scanner's path (flat, plain numbers): a literal is located
        // in the record like a string is.
        let mut agg = Aggregator::new(spec(None, Some("last")));
        agg.add(1, br#"{"t":1,"ok":true,"gone":null}"#);
        agg.add(2, br#"{"t":2,"ok":false,"gone":null}"#);
        let w = agg.finish(MIN - 1).unwrap();
        assert_eq!(data(&w), json!({"t": 2, "ok": false, "gone": null}));
    }

    #[test]
    fn skips_what_is_not_an_object() {
        let mut agg = Aggregator::new(spec(None, Some("count")));
        agg.add(1, b"12");
        agg.add(2, br#"{"a":1"#);
        agg.add(3, br#"{"a":1} trailing"#);
        assert_eq!(agg.skipped(), 3);
        assert!(agg.flush().is_none(), "no record, no window");
        agg.add(4, br#"{"a":1}"#);
        assert_eq!(&agg.flush().unwrap().data, br#"{"a":1}"#);
    }

    #[test]
    fn batch_marks_windows_cut_by_the_range() {
        let recs: Vec<(i64, Vec<u8>)> = (0..5)
            .map(|i| (MIN / 2 + i * MIN / 2, br#"{"v":1}"#.to_vec()))
            .collect();
        let it = || recs.iter().map(|(t, d)| (*t, &d[..]));
        let ws = aggregate(&spec(None, Some("sum")), it(), (MIN / 2, 3 * MIN - 1));
        let summary: Vec<_> = ws.iter().map(|w| (w.start, w.partial, w.records)).collect();
        assert_eq!(
            summary,
            [(0, true, 1), (MIN, false, 2), (2 * MIN, false, 2)]
        );
        let ws = aggregate(&spec(None, Some("sum")), it(), (0, 3 * MIN - 2));
        assert_eq!(
            ws.iter().map(|w| w.partial).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert_eq!(data(&ws[2])["v"], Value::Null);
    }

    #[test]
    fn close_if_ended_uses_the_clock() {
        let mut agg = Aggregator::new(AggSpec::with_default(MIN, vec![Last]));
        agg.add(10, br#"{"v":"x"}"#);
        assert!(agg.close_if_ended(MIN - 1).is_none());
        let w = agg.close_if_ended(MIN).unwrap();
        assert!(!w.partial);
        assert_eq!(&w.data, br#"{"v":"x"}"#);
    }

    #[test]
    fn field_count_is_bounded() {
        let mut agg = Aggregator::new(spec(None, None));
        let mut rec = String::from("{");
        for i in 0..MAX_AGG_FIELDS + 5 {
            rec.push_str(&format!("\"f{i}\":1,"));
        }
        rec.pop();
        rec.push('}');
        agg.add(1, rec.as_bytes());
        assert_eq!(agg.dropped_fields(), 5);
        let w = agg.flush().unwrap();
        assert_eq!(data(&w).as_object().unwrap().len(), MAX_AGG_FIELDS);
    }
}
