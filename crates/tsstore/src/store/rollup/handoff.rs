//! The handoff: records an insert into a plain JSON store parsed while
//! checking them (`ParsedRecords`), passed to the rollups' job so that it
//! neither reads them back from raw nor parses them again.
//!
//! Raw stays the source of truth. A batch says which raw record it
//! follows (`after`: raw's newest when it was written, read under the
//! writer lock), so the job uses it only where it knows raw holds exactly
//! those records there, and reads raw for everything else: a batch the
//! bounded queue had no room for, a single `put`, anything before a
//! restart. A reset or truncate changes raw under the queue: it starts a
//! new epoch and drops every batch of the old one, including one an
//! insert hands after it.

use crate::aggregate::ParsedRecords;

/// The most memory the queue of one store holds, and a limit of half
/// the raw ring's size below that: past it, inserts stop handing
/// batches (the job reads those back from raw). Half of it wakes the job.
pub(super) const MAX_HANDOFF_BYTES: usize = 16 << 20;

/// Records written to raw in one insert, parsed.
#[derive(Debug)]
pub(crate) struct Handed {
    epoch: u64,
    /// Raw's newest record before these (0: none).
    pub(super) after: i64,
    /// Each record's timestamp, in order.
    pub(super) stamps: Vec<i64>,
    pub(super) records: ParsedRecords,
}

impl Handed {
    /// The newest record of the batch.
    pub(super) fn last(&self) -> i64 {
        self.stamps.last().copied().unwrap_or(i64::MIN)
    }
}

/// The queue, in the order inserts handed batches (about raw's order:
/// the job sorts them by `after`).
#[derive(Debug, Default)]
pub(super) struct Handoff {
    epoch: u64,
    batches: Vec<Handed>,
    bytes: usize,
}

/// What `Handoff::offer` did with a batch.
#[derive(Debug, PartialEq)]
pub(super) enum Offered {
    Kept { wake: bool },
    Dropped,
}

impl Handoff {
    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Drops every batch: raw changed under them.
    pub(super) fn new_epoch(&mut self) {
        self.epoch += 1;
        self.batches.clear();
        self.bytes = 0;
    }

    /// A batch of `epoch` written after raw's record `after`, stamped
    /// `stamps`; kept if it is of this epoch and fits in `limit` bytes.
    pub(super) fn offer(
        &mut self,
        epoch: u64,
        after: i64,
        stamps: Vec<i64>,
        records: ParsedRecords,
        limit: usize,
    ) -> Offered {
        let bytes = records.bytes() + stamps.capacity() * size_of::<i64>();
        if epoch != self.epoch || stamps.len() != records.len() || self.bytes + bytes > limit {
            return Offered::Dropped;
        }
        self.bytes += bytes;
        self.batches.push(Handed {
            epoch,
            after,
            stamps,
            records,
        });
        Offered::Kept {
            wake: self.bytes >= limit / 2,
        }
    }

    /// Every batch of the current epoch, sorted by where it lies in raw.
    pub(super) fn take(&mut self) -> Vec<Handed> {
        let mut batches = std::mem::take(&mut self.batches);
        self.bytes = 0;
        batches.retain(|b| b.epoch == self.epoch);
        batches.sort_by_key(|b| b.after);
        batches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(stamps: &[i64]) -> (Vec<i64>, ParsedRecords) {
        let mut records = ParsedRecords::with_capacity(stamps.len(), 0);
        for _ in stamps {
            assert!(records.push(br#"{"t":1}"#));
        }
        (stamps.to_vec(), records)
    }

    #[test]
    fn the_queue_keeps_its_epoch_and_its_bound() {
        let mut h = Handoff::default();
        let (s, r) = batch(&[5, 6]);
        assert_eq!(h.offer(0, 4, s, r, 1 << 20), Offered::Kept { wake: false });
        let (s, r) = batch(&[2, 3]);
        assert!(matches!(h.offer(0, 1, s, r, 1 << 20), Offered::Kept { .. }));
        let taken = h.take();
        assert_eq!(taken.iter().map(|b| b.after).collect::<Vec<_>>(), [1, 4]);
        assert_eq!(taken[1].last(), 6);
        // An insert that read the epoch before a reset hands a batch of
        // the old one: dropped.
        let epoch = h.epoch();
        h.new_epoch();
        let (s, r) = batch(&[7]);
        assert_eq!(h.offer(epoch, 6, s, r, 1 << 20), Offered::Dropped);
        // Past the bound: dropped; half of it wakes the job.
        let (s, r) = batch(&[8; 40]);
        assert_eq!(h.offer(h.epoch(), 7, s, r, 64), Offered::Dropped);
        let (s, r) = batch(&[8]);
        let limit = r.bytes() + 8;
        assert_eq!(
            h.offer(h.epoch(), 7, s, r, limit),
            Offered::Kept { wake: true }
        );
        assert!(h.take().len() == 1 && h.take().is_empty());
    }
}
