//! Feeding a coarse aggregator from a finer one: a store's hourly rollup
//! takes the minute rollup's closed windows instead of every record, so
//! three rollups cost little more than one.
//!
//! The result is byte for byte what feeding it every record gives, which
//! is what a windowed query gives: counts, integer sums, minima, maxima,
//! first and last merge exactly (ties keep the earlier value, as one pass
//! does). A float sum does not: added in another order it may differ in
//! its last bit. So the coarse aggregator still adds each record's
//! numbers to its own float sums, in record order (`add_sums`, a few
//! instructions a field), and takes everything else from the finer one's
//! windows as they close (`merge_closed`).
//!
//! The caller keeps the two in step: the finer aggregator gets every
//! record first; after it, the coarse one takes the finer window that
//! record closed (if any, `merge_closed`), moves to the record's window
//! (`advance_to`), and adds its sums (`add_sums`). The coarse windows
//! must be whole multiples of the finer ones, so a coarse window closes
//! only with a finer one. A coarse aggregator fed whole records so far
//! can be fed so from a record that opens a finer window (it has every
//! record before it, and none of that window). The coarse one plus the
//! finer one's open window (`merge_open`, on a copy) holds every record
//! given, as if fed one by one.

use super::field::FieldAcc;
use super::fields::{RecordFields, Value};
use super::window::{Aggregator, Window};

const UNSET: usize = usize::MAX;
const NONE: usize = usize::MAX - 1;

/// The coarse aggregator's slot for each of the finer one's (made as
/// fields appear); one per pair, for as long as both live.
#[derive(Debug, Default, Clone)]
pub struct ChainMap(Vec<usize>);

impl ChainMap {
    fn slot(&mut self, coarse: &mut Aggregator, finer: &Aggregator, slot: usize) -> Option<usize> {
        if self.0.len() <= slot {
            self.0.resize(slot + 1, UNSET);
        }
        match self.0[slot] {
            UNSET => {
                let made = coarse.slot_named(&finer.fields[slot].name);
                self.0[slot] = made.unwrap_or(NONE);
                made
            }
            NONE => None,
            s => Some(s),
        }
    }
}

impl Aggregator {
    /// Keeps each closed window's tallies for a coarser aggregator to
    /// take (`merge_closed`).
    pub fn keep_closed(&mut self) {
        self.keep_closed = true;
    }

    /// Start of the window open now, if any.
    pub fn open_window(&self) -> Option<i64> {
        self.window_start
    }

    /// Windows closed so far: a change after a record means it closed one.
    pub fn closes(&self) -> u64 {
        self.closes
    }

    /// Moves to the window of `timestamp` without adding a record,
    /// closing the current window if it lies before.
    pub fn advance_to(&mut self, timestamp: i64) -> Option<Window> {
        self.advance(timestamp)
    }

    /// Adds the finer aggregator's last closed window, all but its float
    /// sums (`add_sums` adds those, record by record).
    pub fn merge_closed(&mut self, finer: &Aggregator, map: &mut ChainMap) {
        for &slot in &finer.closed_touched {
            if let Some(mine) = map.slot(self, finer, slot) {
                self.merge_field(mine, &finer.closed[slot]);
            }
        }
        self.records += finer.closed_records;
    }

    /// Adds the finer aggregator's open window, all but its float sums.
    pub fn merge_open(&mut self, finer: &Aggregator, map: &mut ChainMap) {
        for &slot in &finer.touched {
            if let Some(mine) = map.slot(self, finer, slot) {
                self.merge_field(mine, &finer.fields[slot]);
            }
        }
        self.records += finer.records;
    }

    fn merge_field(&mut self, slot: usize, from: &FieldAcc) {
        let acc = &mut self.fields[slot];
        if acc.count == 0 && !acc.has_other {
            self.touched.push(slot);
        }
        acc.merge(from);
    }

    /// Adds the numbers of one record (parsed into `fields`) to this
    /// aggregator's float sums, and nothing else.
    pub fn add_sums(&mut self, fields: &RecordFields, record: &[u8]) {
        if !fields.object {
            return;
        }
        self.place(record, fields, |agg, slot, value| {
            if let Value::Number(n) = value {
                agg.fields[slot].sum_float += n.as_f64();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AggFn, AggSpec};
    use super::*;

    const MIN: i64 = 60_000_000_000;

    /// Records of every kind the rollups see: integers, floats whose sums
    /// depend on their order, text, a field that comes and goes, and
    /// records that are not objects.
    fn records() -> Vec<(i64, Vec<u8>)> {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut ts = 7 * MIN + 3;
        let mut out = Vec::new();
        for i in 0..4_000i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly seconds apart, sometimes hours of nothing.
            ts += if x.is_multiple_of(97) {
                (x % 300) as i64 * MIN
            } else {
                1 + (x % 40) as i64 * 1_000_000_000
            };
            let f = (x % 1_000_003) as f64 / 7.0 + 1e9 * ((x >> 20) % 3) as f64;
            let rec = match x % 7 {
                0 => format!(r#"{{"t":{},"s":"a{i}"}}"#, x % 100),
                1 => format!(r#"{{"t":{f},"h":{}}}"#, x % 13),
                2 => format!(r#"{{"h":-{},"t":{f:.3}}}"#, x % 11),
                3 => r#"{"s":"text"}"#.to_string(),
                4 => format!("[{i}]"),
                _ => format!(
                    r#"{{"t":{},"h":{},"s":null}}"#,
                    i64::MAX - (x % 5) as i64,
                    x % 3
                ),
            };
            out.push((ts, rec.into_bytes()));
        }
        out
    }

    fn spec(window: i64) -> AggSpec {
        AggSpec::with_default(window, AggFn::ALL.to_vec())
    }

    /// A coarse aggregator fed from a finer one gives every window one fed
    /// directly gives, byte for byte, and its open window at the end.
    #[test]
    fn a_chained_aggregator_gives_what_a_direct_one_gives() {
        let (fine_w, coarse_w) = (MIN, 60 * MIN);
        let (mut fine, mut direct) = (
            Aggregator::new(spec(fine_w)),
            Aggregator::new(spec(coarse_w)),
        );
        let mut chained = Aggregator::new(spec(coarse_w));
        fine.keep_closed();
        let mut map = ChainMap::default();
        let (mut want, mut got) = (Vec::new(), Vec::new());
        let mut fields = RecordFields::default();
        for (ts, rec) in records() {
            fields.parse(&rec);
            want.extend(direct.add_fields(ts, &rec, &fields));
            let closes = fine.closes();
            fine.add_fields(ts, &rec, &fields);
            if fine.closes() != closes {
                chained.merge_closed(&fine, &mut map);
            }
            got.extend(chained.advance_to(ts));
            chained.add_sums(&fields, &rec);
        }
        chained.merge_open(&fine, &mut map);
        want.extend(direct.flush());
        got.extend(chained.flush());
        assert!(want.len() > 20, "{} windows", want.len());
        assert_eq!(got, want);
    }
}
