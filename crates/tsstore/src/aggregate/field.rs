//! One field's accumulator within a window (`FieldAcc`) and the numbers
//! it keeps (`Num`): exact integers while they last, floats after, and the
//! JSON text each aggregate function writes.

use std::io::Write;

use super::AggFn;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Num {
    Int(i64),
    /// Integers beyond i64 (large u64 values, sums): exact, but kept off
    /// the common path because i128 → f64 is a library call.
    Big(i128),
    Float(f64),
}

impl Num {
    pub(super) fn parse(text: &str) -> Option<Num> {
        let first = *text.as_bytes().first()?;
        if first != b'-' && !first.is_ascii_digit() {
            return None;
        }
        if !text.contains(['.', 'e', 'E']) {
            if let Ok(v) = text.parse::<i64>() {
                return Some(Num::Int(v));
            }
            if let Ok(v) = text.parse::<i128>() {
                return Some(Num::Big(v));
            }
        }
        text.parse::<f64>().ok().map(Num::Float)
    }

    pub(super) fn as_f64(self) -> f64 {
        match self {
            Num::Int(v) => v as f64,
            Num::Big(v) => v as f64,
            Num::Float(v) => v,
        }
    }

    pub(super) fn as_i128(self) -> Option<i128> {
        match self {
            Num::Int(v) => Some(v.into()),
            Num::Big(v) => Some(v),
            Num::Float(_) => None,
        }
    }

    pub(super) fn less(self, other: Num) -> bool {
        // Readings of one field are nearly always all integers or all
        // floats: those compare without widening.
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => return a < b,
            (Num::Float(a), Num::Float(b)) => return a < b,
            _ => {}
        }
        match (self.as_i128(), other.as_i128()) {
            (Some(a), Some(b)) => a < b,
            _ => self.as_f64() < other.as_f64(),
        }
    }

    pub(super) fn write(self, out: &mut Vec<u8>) {
        // Writing to a Vec cannot fail; non-finite floats become null.
        let _ = match self {
            Num::Int(v) => write!(out, "{v}"),
            Num::Big(v) => write!(out, "{v}"),
            Num::Float(v) => serde_json::to_writer(&mut *out, &v).map_err(std::io::Error::other),
        };
    }
}

/// One field's state: its identity and what the current window saw.
#[derive(Debug, Clone)]
pub(super) struct FieldAcc {
    pub(super) name: String,
    pub(super) fns: Vec<AggFn>,
    /// Output keys as JSON string literals: the name alone, then one per
    /// function (`"temp_avg"`) when there are several.
    pub(super) key: String,
    pub(super) fn_keys: Vec<String>,
    pub(super) count: u64,
    /// `sum_int` is exact while every value is an integer and it fits.
    pub(super) all_int: bool,
    pub(super) sum_int: i128,
    pub(super) sum_float: f64,
    pub(super) min: Num,
    pub(super) max: Num,
    pub(super) first: Num,
    pub(super) last: Num,
    /// Raw text of the last non-numeric value (its capacity is reused).
    /// The raw JSON text of the last non-numeric value (the record was
    /// checked: it is UTF-8).
    pub(super) other: Vec<u8>,
    pub(super) has_other: bool,
}

impl FieldAcc {
    pub(super) fn new(name: &str, fns: &[AggFn]) -> FieldAcc {
        let quote = |s: &str| serde_json::Value::from(s).to_string();
        FieldAcc {
            name: name.to_string(),
            fns: fns.to_vec(),
            key: quote(name),
            fn_keys: fns
                .iter()
                .map(|f| quote(&format!("{name}_{}", f.as_str())))
                .collect(),
            count: 0,
            all_int: true,
            sum_int: 0,
            sum_float: 0.0,
            min: Num::Int(0),
            max: Num::Int(0),
            first: Num::Int(0),
            last: Num::Int(0),
            other: Vec::new(),
            has_other: false,
        }
    }

    pub(super) fn clear(&mut self) {
        self.count = 0;
        self.all_int = true;
        self.sum_int = 0;
        self.sum_float = 0.0;
        self.other.clear();
        self.has_other = false;
    }

    pub(super) fn add_number(&mut self, v: Num) {
        if self.count == 0 {
            (self.first, self.min, self.max) = (v, v, v);
        } else {
            if v.less(self.min) {
                self.min = v;
            }
            if self.max.less(v) {
                self.max = v;
            }
        }
        self.last = v;
        self.count += 1;
        self.sum_float += v.as_f64();
        match v {
            Num::Int(_) | Num::Big(_) if self.all_int => {
                match v.as_i128().and_then(|i| self.sum_int.checked_add(i)) {
                    Some(s) => self.sum_int = s,
                    None => self.all_int = false,
                }
            }
            _ => self.all_int = false,
        }
    }

    /// Adds what `other` saw in a later stretch of the same window (a
    /// finer window's tally), except its `sum_float`: a float sum taken
    /// in another order could differ in its last bit, so a rollup fed
    /// this way adds every record's value itself (`Aggregator::add_sums`).
    /// Integer sums merge exactly; only a sum past `i128` (integers beyond
    /// 10^36 in the records) can make one pass and a merge fall back to
    /// the float sum at different points.
    pub(super) fn merge(&mut self, other: &FieldAcc) {
        if other.count > 0 {
            if self.count == 0 {
                (self.first, self.min, self.max) = (other.first, other.min, other.max);
            } else {
                if other.min.less(self.min) {
                    self.min = other.min;
                }
                if self.max.less(other.max) {
                    self.max = other.max;
                }
            }
            self.last = other.last;
            self.count += other.count;
            let sum = match self.all_int && other.all_int {
                true => self.sum_int.checked_add(other.sum_int),
                false => None,
            };
            match sum {
                Some(s) => self.sum_int = s,
                None => self.all_int = false,
            }
        }
        if other.has_other {
            self.other.clear();
            self.other.extend_from_slice(&other.other);
            self.has_other = true;
        }
    }

    pub(super) fn value(&self, f: AggFn, partial: bool) -> Option<Num> {
        Some(match f {
            AggFn::Sum if partial => return None,
            AggFn::Sum if self.all_int => Num::Big(self.sum_int),
            AggFn::Sum => Num::Float(self.sum_float),
            AggFn::Avg if self.all_int => Num::Float(self.sum_int as f64 / self.count as f64),
            AggFn::Avg => Num::Float(self.sum_float / self.count as f64),
            AggFn::Min => self.min,
            AggFn::Max => self.max,
            AggFn::Count => Num::Big(self.count.into()),
            AggFn::First => self.first,
            AggFn::Last => self.last,
        })
    }

    /// Appends this field's `"key":value` pairs; false if it has none.
    pub(super) fn write(&self, out: &mut Vec<u8>, partial: bool) -> bool {
        if self.count == 0 {
            if !self.has_other {
                return false;
            }
            out.extend_from_slice(self.key.as_bytes());
            out.push(b':');
            out.extend_from_slice(&self.other);
            return true;
        }
        for (i, f) in self.fns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let key = if self.fns.len() == 1 {
                &self.key
            } else {
                &self.fn_keys[i]
            };
            out.extend_from_slice(key.as_bytes());
            out.push(b':');
            match self.value(*f, partial) {
                Some(v) => v.write(out),
                None => out.extend_from_slice(b"null"),
            }
        }
        true
    }
}
