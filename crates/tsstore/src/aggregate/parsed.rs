//! `ParsedRecords`: a batch of JSON records parsed where they were
//! checked (an insert), kept with their text, so that whoever aggregates
//! them later (a store's rollups) neither reads them back nor parses them
//! again. Only records the scanner read whole are kept; its parse is also
//! their validity check (see `RecordFields::read_whole`).

use super::fields::{Key, RecordFields, Value};

/// One record of a `ParsedRecords`: where its text and its fields end.
#[derive(Debug, Clone, Copy)]
struct Parsed {
    text_end: usize,
    entries_end: usize,
    shape: u64,
}

/// Records parsed one after the other, with their text copied beside
/// them. Grows without bound: its owner bounds it by `bytes`, and
/// reuses it (`clear`) so that it stops allocating.
#[derive(Debug, Default)]
pub struct ParsedRecords {
    parser: RecordFields,
    text: Vec<u8>,
    records: Vec<Parsed>,
    entries: Vec<(Key, Value)>,
}

impl ParsedRecords {
    /// Parses `record` and keeps it, if the scanner reads it whole: then
    /// it is a JSON object that serde_json accepts too, and this is its
    /// check. False (keeping nothing) otherwise: the caller checks it
    /// another way, and this batch no longer holds every record.
    pub fn push(&mut self, record: &[u8]) -> bool {
        self.parser.parse(record);
        if !self.parser.read_whole() {
            return false;
        }
        // Positions in `entries` are from the record's start: they stay
        // right beside its copied text.
        self.text.extend_from_slice(record);
        self.entries.extend_from_slice(&self.parser.entries);
        self.records.push(Parsed {
            text_end: self.text.len(),
            entries_end: self.entries.len(),
            shape: self.parser.shape,
        });
        true
    }

    /// Makes room for `records` more records of `text` bytes in all.
    pub fn reserve(&mut self, records: usize, text: usize) {
        self.text.reserve(text);
        self.records.reserve(records);
        // As many fields a record as the last one parsed (or a few).
        let fields = match self.parser.entries.len() {
            0 => 4,
            n => n,
        };
        self.entries.reserve(records * fields);
    }

    /// Empties the batch, keeping its room and what its parser learnt
    /// (a record shaped like the last one parses by its values alone).
    pub fn clear(&mut self) {
        self.text.clear();
        self.records.clear();
        self.entries.clear();
    }

    /// The records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// What the batch takes in memory, about.
    pub fn bytes(&self) -> usize {
        self.text.capacity()
            + self.records.capacity() * size_of::<Parsed>()
            + self.entries.capacity() * size_of::<(Key, Value)>()
    }

    /// Calls `f` with each record's text and its fields, in order: what
    /// `RecordFields::parse` of that text gives.
    pub fn for_each(&self, mut f: impl FnMut(usize, &[u8], &RecordFields)) {
        let mut fields = RecordFields::default();
        let (mut text_from, mut entries_from) = (0, 0);
        for (i, r) in self.records.iter().enumerate() {
            let text = &self.text[text_from..r.text_end];
            fields.load(&self.entries[entries_from..r.entries_end], r.shape);
            f(i, text, &fields);
            (text_from, entries_from) = (r.text_end, r.entries_end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{AggSpec, Aggregator};

    /// Records given to an aggregator from a `ParsedRecords` make the
    /// windows the same records added one by one make.
    #[test]
    fn handed_records_aggregate_as_the_records_do() {
        let records: Vec<String> = (0..50)
            .map(|i| match i % 7 {
                6 => format!(
                    r#"{{"t":{}.5,"h":{},"room":"lab{}","x":1}}"#,
                    i,
                    i * 3,
                    i % 2
                ),
                _ => format!(r#"{{"t":{}.25,"h":{},"room":"lab{}"}}"#, i, -i, i % 3),
            })
            .collect();
        let spec = AggSpec::parse(Some("1s"), None, Some("avg,min,max,count,first,last"))
            .expect("a spec")
            .expect("a window");
        let mut direct = Aggregator::new(spec.clone());
        let mut want = Vec::new();
        for (i, r) in records.iter().enumerate() {
            want.extend(direct.add(i as i64 * 100_000_000, r.as_bytes()));
        }
        want.extend(direct.flush());
        let mut batch = ParsedRecords::default();
        for r in &records {
            assert!(batch.push(r.as_bytes()));
        }
        assert!(!batch.push(br#"{"a":{"nested":1}}"#), "not read whole");
        assert!(!batch.push(br#"{"a":1"#), "not JSON");
        assert_eq!(batch.len(), records.len());
        let mut handed = Aggregator::new(spec);
        let mut got = Vec::new();
        batch.for_each(|i, text, fields| {
            assert_eq!(text, records[i].as_bytes());
            got.extend(handed.add_fields(i as i64 * 100_000_000, text, fields));
        });
        got.extend(handed.flush());
        let show = |w: &[crate::aggregate::Window]| {
            w.iter()
                .map(|w| (w.end, String::from_utf8_lossy(&w.data).into_owned()))
                .collect::<Vec<_>>()
        };
        assert_eq!(show(&got), show(&want));
    }
}
