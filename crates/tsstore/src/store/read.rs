//! The public read API, whatever the store's encoding: raw stores read
//! their ring directly (`Ring::range`), compressed ones merge frames with
//! staged records (`compressed`). `Records` streams either.

use std::time::Duration;

use super::{Core, Store};
use crate::compressed::FramedRecords;
use crate::error::{Error, Result};
use crate::record::{ObjectHandle, Record, RecordRef};
use crate::ring::{PREALLOC_RECORDS, RingRecords};

/// A streaming iterator over records in time order (either direction).
/// Holds at most one read batch (`READ_BATCH_BYTES`) of block bytes and
/// the records decoded from it; for a compressed store also the records
/// of its window still staged (at most its staging ring).
pub struct Records<'a>(Walk<'a>, Record);

// The raw walk stays inline: it is the common case, and boxing it would
// cost every read of a raw store an allocation.
#[allow(clippy::large_enum_variant)]
enum Walk<'a> {
    Ring(RingRecords<'a>),
    /// Boxed: it is the larger by far, and compressed stores are the
    /// rarer.
    Framed(Box<FramedRecords<'a>>),
}

impl Records<'_> {
    /// Yields at most `n` records.
    pub fn limit(self, n: usize) -> Self {
        Records(
            match self.0 {
                Walk::Ring(r) => Walk::Ring(r.limit(n)),
                Walk::Framed(f) => Walk::Framed(Box::new(f.limit(n))),
            },
            self.1,
        )
    }

    /// Whether to copy payloads (false: handles only, cheaper).
    pub fn with_data(self, yes: bool) -> Self {
        Records(
            match self.0 {
                Walk::Ring(r) => Walk::Ring(r.with_data(yes)),
                Walk::Framed(f) => Walk::Framed(Box::new(f.with_data(yes))),
            },
            self.1,
        )
    }

    /// Collects the remaining records, sized up front from the limit.
    pub fn collect_all(self) -> Result<Vec<Record>> {
        match self.0 {
            Walk::Ring(r) => r.collect_all(),
            Walk::Framed(f) => {
                let mut out = Vec::with_capacity(f.remaining().min(PREALLOC_RECORDS));
                for rec in *f {
                    out.push(rec?);
                }
                Ok(out)
            }
        }
    }
}

impl Records<'_> {
    /// The next record, its payload borrowed from the read's buffers and
    /// valid until the next call: how an encoder writes records straight
    /// from the block bytes (a raw store copies nothing; a compressed
    /// store's records are decoded once, into one buffer reused).
    pub fn next_ref(&mut self) -> Option<Result<RecordRef<'_>>> {
        match &mut self.0 {
            Walk::Ring(r) => r.next_ref(),
            Walk::Framed(f) => match f.next()? {
                Ok(rec) => {
                    self.1 = rec;
                    Some(Ok(RecordRef {
                        handle: self.1.handle,
                        data: &self.1.data,
                    }))
                }
                Err(e) => Some(Err(e)),
            },
        }
    }
}

impl Iterator for Records<'_> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        match &mut self.0 {
            Walk::Ring(r) => r.next(),
            Walk::Framed(f) => f.next(),
        }
    }
}

impl Core {
    /// The oldest record's timestamp (`None`: the store is empty).
    pub(crate) fn oldest_timestamp(&self) -> Result<Option<i64>> {
        let first = self
            .records(i64::MIN, i64::MAX, false)
            .with_data(false)
            .next();
        Ok(first.transpose()?.map(|r| r.timestamp()))
    }

    pub(crate) fn records(&self, start: i64, end: i64, reverse: bool) -> Records<'_> {
        let walk = match &self.compressed {
            Some(c) => Walk::Framed(Box::new(FramedRecords::new(
                &self.main, c, reverse, start, end,
            ))),
            None => Walk::Ring(self.main.range(start, end, reverse)),
        };
        Records(walk, Record::default())
    }
}

impl Store {
    fn records(&self, start: i64, end: i64, reverse: bool) -> Records<'_> {
        self.core.records(start, end, reverse)
    }

    /// The record with exactly this timestamp.
    pub fn get_by_time(&self, ts: i64) -> Result<Record> {
        match &self.core.compressed {
            Some(c) => c.get_by_time(&self.core.main, ts),
            None => self.core.main.get(ts),
        }
    }

    /// Payload of the record a handle points at, if it is still stored
    /// there (in a compressed store: still stored at its timestamp; a
    /// record moves from the staging ring into a frame).
    pub fn get(&self, handle: &ObjectHandle) -> Result<Vec<u8>> {
        match self.get_by_time(handle.timestamp) {
            Ok(rec) if self.core.compressed.is_some() || rec.handle == *handle => Ok(rec.data),
            Ok(_) => Err(Error::NotFound(handle.timestamp)),
            Err(e) => Err(e),
        }
    }

    /// Records with `start <= ts <= end`, oldest first, streamed.
    pub fn iter_range(&self, start: i64, end: i64) -> Records<'_> {
        self.records(start, end, false)
    }

    /// Records with `start <= ts <= end`, newest first, streamed.
    pub fn iter_range_rev(&self, start: i64, end: i64) -> Records<'_> {
        self.records(start, end, true)
    }

    /// Every record, oldest first.
    pub fn iter(&self) -> Records<'_> {
        self.iter_range(i64::MIN, i64::MAX)
    }

    /// The `n` oldest records, oldest first.
    pub fn oldest(&self, n: usize) -> Result<Vec<Record>> {
        self.iter().limit(n).collect_all()
    }

    /// The `n` newest records, newest first.
    pub fn newest(&self, n: usize) -> Result<Vec<Record>> {
        self.iter_range_rev(i64::MIN, i64::MAX)
            .limit(n)
            .collect_all()
    }

    /// Records in `[start, end]` (inclusive), oldest first, at most `limit`.
    pub fn range(&self, start: i64, end: i64, limit: Option<usize>) -> Result<Vec<Record>> {
        self.iter_range(start, end)
            .limit(limit.unwrap_or(usize::MAX))
            .collect_all()
    }

    /// Records from `age` ago until now and later, oldest first.
    pub fn since(&self, age: Duration, limit: Option<usize>) -> Result<Vec<Record>> {
        let age = i64::try_from(age.as_nanos()).unwrap_or(i64::MAX);
        let start = crate::time::now_ns().saturating_sub(age);
        self.range(start, i64::MAX, limit)
    }

    /// Records strictly after `cursor`, oldest first (for resumable paging).
    pub fn after(&self, cursor: i64, limit: Option<usize>) -> Result<Vec<Record>> {
        self.range(cursor.saturating_add(1), i64::MAX, limit)
    }
}
