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
//! insert hands after it. The job gives the buffers back (`recycle`), so
//! a steady stream of inserts allocates nothing.

use crate::aggregate::ParsedRecords;

/// The most memory the queue of one store holds, and a limit of half
/// the raw ring's size below that: past it, inserts stop handing
/// batches (the job reads those back from raw). Half of it wakes the job.
pub(super) const MAX_HANDOFF_BYTES: usize = 4 << 20;

/// What an insert fills for the job: each record's timestamp, and the
/// records parsed.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) stamps: Vec<i64>,
    pub(crate) records: ParsedRecords,
}

impl Batch {
    fn bytes(&self) -> usize {
        self.records.bytes() + self.stamps.capacity() * size_of::<i64>()
    }
}

/// Records written to raw in one insert, parsed. Every batch in the
/// queue is of its current epoch (`offer`, `new_epoch`).
#[derive(Debug)]
pub(crate) struct Handed {
    /// Raw's newest record before these (0: none).
    pub(super) after: i64,
    pub(super) batch: Batch,
}

impl Handed {
    /// The newest record of the batch.
    pub(super) fn last(&self) -> i64 {
        self.batch.stamps.last().copied().unwrap_or(i64::MIN)
    }
}

/// The queue, in the order inserts handed batches (about raw's order:
/// the job sorts them by `after`).
#[derive(Debug, Default)]
pub(super) struct Handoff {
    epoch: u64,
    batches: Vec<Handed>,
    bytes: usize,
    /// Buffers the job gave back, for the next inserts: at most half the
    /// queue's limit in all. Fresh ones would cost page faults as well as
    /// allocations.
    spare: Vec<Batch>,
    spare_bytes: usize,
}

/// What `Handoff::offer` did with a batch.
#[derive(Debug, PartialEq)]
pub(super) enum Offered {
    Kept { wake: bool },
    Dropped,
}

impl Handoff {
    /// Drops every batch: raw changed under them.
    pub(super) fn new_epoch(&mut self) {
        self.epoch += 1;
        self.batches.clear();
        self.bytes = 0;
    }

    /// An empty batch for an insert that expects to fill about `room`
    /// bytes, and the epoch it is of; `None` when the queue has no room.
    pub(super) fn start(&mut self, room: usize, limit: usize) -> Option<(u64, Batch)> {
        if self.bytes.saturating_add(room) > limit {
            return None;
        }
        let batch = self.spare.pop().unwrap_or_default();
        self.spare_bytes -= batch.bytes();
        Some((self.epoch, batch))
    }

    /// A batch of `epoch` written after raw's record `after`; kept if it
    /// is of this epoch and fits in `limit` bytes.
    pub(super) fn offer(&mut self, epoch: u64, after: i64, batch: Batch, limit: usize) -> Offered {
        let bytes = batch.bytes();
        if epoch != self.epoch
            || batch.stamps.len() != batch.records.len()
            || self.bytes + bytes > limit
        {
            self.recycle(batch, limit);
            return Offered::Dropped;
        }
        self.bytes += bytes;
        self.batches.push(Handed { after, batch });
        Offered::Kept {
            wake: self.bytes >= limit / 2,
        }
    }

    /// Every batch, sorted by where it lies in raw.
    pub(super) fn take(&mut self) -> Vec<Handed> {
        let mut batches = std::mem::take(&mut self.batches);
        self.bytes = 0;
        batches.sort_by_key(|b| b.after);
        batches
    }

    /// Keeps a used batch's buffers for a later insert, if there is room.
    pub(super) fn recycle(&mut self, mut batch: Batch, limit: usize) {
        let bytes = batch.bytes();
        if self.spare_bytes + bytes <= limit / 2 {
            batch.stamps.clear();
            batch.records.clear();
            self.spare_bytes += bytes;
            self.spare.push(batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1 << 20;

    fn batch(h: &mut Handoff, stamps: &[i64]) -> (u64, Batch) {
        let (epoch, mut batch) = h.start(0, LIMIT).expect("room");
        for &t in stamps {
            assert!(batch.records.push(br#"{"t":1}"#));
            batch.stamps.push(t);
        }
        (epoch, batch)
    }

    #[test]
    fn the_queue_keeps_its_epoch_and_its_bound() {
        let mut h = Handoff::default();
        let (e, b) = batch(&mut h, &[5, 6]);
        assert_eq!(h.offer(e, 4, b, LIMIT), Offered::Kept { wake: false });
        let (e, b) = batch(&mut h, &[2, 3]);
        assert!(matches!(h.offer(e, 1, b, LIMIT), Offered::Kept { .. }));
        let taken = h.take();
        assert_eq!(taken.iter().map(|b| b.after).collect::<Vec<_>>(), [1, 4]);
        assert_eq!(taken[1].last(), 6);
        for t in taken {
            h.recycle(t.batch, LIMIT);
        }
        // The buffers come back empty.
        let (e, b) = h.start(0, LIMIT).expect("room");
        assert!(b.records.is_empty() && b.stamps.is_empty() && b.records.bytes() > 0);
        // An insert that started before a reset hands a batch of the old
        // epoch: dropped.
        h.new_epoch();
        assert_eq!(h.offer(e, 6, b, LIMIT), Offered::Dropped);
        // Past the bound: not even started, or dropped; half of it wakes
        // the job.
        assert!(h.start(LIMIT + 1, LIMIT).is_none());
        let (e, b) = batch(&mut h, &[8; 40]);
        assert_eq!(h.offer(e, 7, b, 64), Offered::Dropped);
        let (e, b) = batch(&mut h, &[8]);
        let limit = b.bytes();
        assert_eq!(h.offer(e, 7, b, limit), Offered::Kept { wake: true });
        assert!(h.take().len() == 1 && h.take().is_empty());
    }
}
