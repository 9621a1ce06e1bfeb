//! `RingIndex`: the in-memory copy of `index.tsdb` plus the ring pointers.
//!
//! Readers consult it under a short read lock to turn a time into block
//! positions, then do their I/O without any lock. Positions are handed out
//! as absolute block *sequence numbers* (blocks ever placed since open), so
//! a reader can tell afterwards whether the writer reclaimed a block while it
//! was reading: a block is live iff `seq >= tail_seq`.
//!
//! Keys: `keys[phys]` is the timestamp of the first object starting in that
//! block, `-ts` for a continuation block of a spanning object with timestamp
//! `ts`, and 0 for a block outside the live range. So `|key|` is
//! non-decreasing from tail to head, strictly increasing over primary
//! blocks, which is what the binary searches rely on.

use crate::error::Error;

/// Sentinel in `counts` for a block whose objects have not been counted
/// (blocks found on disk at open are not scanned).
pub(crate) const UNKNOWN_COUNT: u32 = u32::MAX;

#[derive(Debug)]
pub(crate) struct RingIndex {
    n: u32,
    keys: Vec<i64>,
    counts: Vec<u32>,
    /// Physical block of the oldest live block.
    tail: u32,
    /// Number of live blocks.
    len: u32,
    /// Sequence number of the tail block.
    tail_seq: u64,
    /// Bytes committed in the head block (its write offset); readers never
    /// look past it, because the writer may be appending there.
    head_end: u32,
    /// Newest timestamp ever written to the live ring (deleted objects count).
    newest: i64,
    known_count: u64,
    unknown_blocks: u32,
    /// Seed objects' checksums verify against; `None` in stores without checksums.
    checksum_seed: Option<u32>,
    /// Truncates since open. A reader that planned under another
    /// generation re-plans by time, not by its block cursor.
    generation: u64,
}

/// A live block as a reader sees it at one instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockRef {
    pub seq: u64,
    pub phys: u32,
    pub key: i64,
    /// `Some(end)` when this was the head block: bytes beyond `end` are not committed.
    pub head_end: Option<u32>,
}

impl RingIndex {
    pub fn new(n: u32) -> RingIndex {
        RingIndex {
            n,
            keys: vec![0; n as usize],
            counts: vec![0; n as usize],
            tail: 0,
            len: 0,
            tail_seq: 0,
            head_end: 0,
            newest: 0,
            known_count: 0,
            unknown_blocks: 0,
            checksum_seed: None,
            generation: 0,
        }
    }

    pub fn checksum_seed(&self) -> Option<u32> {
        self.checksum_seed
    }

    pub fn set_checksum_seed(&mut self, seed: Option<u32>) {
        self.checksum_seed = seed;
    }

    /// Rebuilds the live range from on-disk index timestamps (tail first).
    /// An inconsistency means the index file contradicts itself: `Corrupt`,
    /// naming the first block at fault.
    pub fn load(&mut self, tail: u32, live_ts: &[i64]) -> Result<(), Error> {
        self.tail = tail;
        self.len = 0;
        let mut prev = 0i64;
        for (i, &ts) in live_ts.iter().enumerate() {
            let phys = self.phys(i as u32);
            let key = if ts > 0 {
                if ts <= prev {
                    return Err(Error::Corrupt(format!(
                        "index entry of block {phys} ({ts}) is not after the previous block ({prev})"
                    )));
                }
                prev = ts;
                ts
            } else if ts == 0 && i > 0 {
                -prev
            } else {
                return Err(Error::Corrupt(format!(
                    "index entry of block {phys} is invalid ({ts})"
                )));
            };
            self.keys[phys as usize] = key;
            self.counts[phys as usize] = if key > 0 { UNKNOWN_COUNT } else { 0 };
            if key > 0 {
                self.unknown_blocks += 1;
            }
            self.len += 1;
        }
        self.newest = prev;
        Ok(())
    }

    pub fn num_blocks(&self) -> u32 {
        self.n
    }

    pub fn len(&self) -> u32 {
        self.len
    }
    pub fn tail(&self) -> u32 {
        self.tail
    }
    pub fn tail_seq(&self) -> u64 {
        self.tail_seq
    }
    pub fn newest(&self) -> i64 {
        self.newest
    }
    pub fn head_end(&self) -> u32 {
        self.head_end
    }
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Live objects counted in block `phys`, if known.
    pub fn count_of(&self, phys: u32) -> Option<u32> {
        match self.counts[phys as usize] {
            UNKNOWN_COUNT => None,
            c => Some(c),
        }
    }

    pub fn phys(&self, i: u32) -> u32 {
        // No division in the common case: this sits in every step of a
        // lookup's binary search, and tail < n, i <= n.
        let (at, n) = (self.tail as u64 + i as u64, self.n as u64);
        if at < n {
            at as u32
        } else if at < 2 * n {
            (at - n) as u32
        } else {
            (at % n) as u32
        }
    }

    /// Physical block where the next fresh block goes.
    pub fn next_free(&self) -> u32 {
        self.phys(self.len)
    }

    pub fn head_phys(&self) -> Option<u32> {
        (self.len > 0).then(|| self.phys(self.len - 1))
    }

    pub fn key_of(&self, phys: u32) -> i64 {
        self.keys[phys as usize]
    }

    pub fn oldest(&self) -> Option<i64> {
        (self.len > 0).then(|| self.keys[self.tail as usize])
    }

    /// Number of live (not deleted) objects, when every live block has been counted.
    pub fn object_count(&self) -> Option<u64> {
        (self.unknown_blocks == 0).then_some(self.known_count)
    }

    fn abs_key(&self, i: u32) -> i64 {
        self.keys[self.phys(i) as usize].abs()
    }

    /// First logical position whose |key| does not satisfy `pred` (keys are sorted).
    fn partition_point(&self, pred: impl Fn(i64) -> bool) -> u32 {
        let (mut lo, mut hi) = (0u32, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(self.abs_key(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Logical position of the primary block that would hold `ts`, if any:
    /// the last block whose first timestamp is ≤ `ts`, stepped back over
    /// continuation blocks to the start of their object.
    pub fn block_for(&self, ts: i64) -> Option<u32> {
        let p = self.partition_point(|k| k <= ts);
        if p == 0 {
            return None;
        }
        let key = self.keys[self.phys(p - 1) as usize];
        if key > 0 {
            // A primary block: blocks before it hold older objects only.
            return Some(p - 1);
        }
        let key = key.abs();
        Some(self.partition_point(|k| k < key))
    }

    /// Sequence number of the first block a forward scan from `ts` must read.
    pub fn start_seq(&self, ts: i64) -> u64 {
        self.tail_seq + self.block_for(ts).unwrap_or(0) as u64
    }

    /// One past the sequence number of the last block whose first timestamp is ≤ `ts`.
    pub fn seq_after(&self, ts: i64) -> u64 {
        self.tail_seq + self.partition_point(|k| k <= ts) as u64
    }

    /// Snapshot of the live block with this sequence number, if it is live.
    pub fn block_ref(&self, seq: u64) -> Option<BlockRef> {
        if seq < self.tail_seq || seq >= self.tail_seq + self.len as u64 {
            return None;
        }
        let i = (seq - self.tail_seq) as u32;
        let phys = self.phys(i);
        Some(BlockRef {
            seq,
            phys,
            key: self.keys[phys as usize],
            head_end: (i + 1 == self.len).then_some(self.head_end),
        })
    }

    /// How many blocks back from `end` (exclusive) hold `wanted` live
    /// objects, by the counts kept per block; `None` if a block on the
    /// way has no known count. At most `max` (then `max`).
    pub fn blocks_holding(&self, end: u64, wanted: usize, max: usize) -> Option<usize> {
        let mut held = 0usize;
        for back in 1..=max as u64 {
            let Some(seq) = end.checked_sub(back) else {
                return Some(back as usize - 1);
            };
            if seq < self.tail_seq || seq >= self.end_seq() {
                return Some(back as usize - 1);
            }
            match self.counts[self.phys((seq - self.tail_seq) as u32) as usize] {
                UNKNOWN_COUNT => return None,
                c => held += c as usize,
            }
            if held >= wanted {
                return Some(back as usize);
            }
        }
        Some(max)
    }

    /// Whether physical block `phys` is in the live range.
    pub fn is_live(&self, phys: u32) -> bool {
        let i = (phys as u64 + self.n as u64 - self.tail as u64) % self.n as u64;
        i < self.len as u64
    }

    pub fn end_seq(&self) -> u64 {
        self.tail_seq + self.len as u64
    }

    /// Drops the tail object (all its blocks); returns the first physical
    /// block freed and how many blocks were freed.
    pub fn reclaim_tail(&mut self) -> (u32, u32) {
        debug_assert!(self.len > 0);
        let key = self.keys[self.tail as usize];
        let mut span = 1;
        while span < self.len && self.keys[self.phys(span) as usize] == -key {
            span += 1;
        }
        let first = self.tail;
        for i in 0..span {
            let phys = self.phys(i) as usize;
            self.forget_count(phys);
            self.keys[phys] = 0;
        }
        self.tail = self.phys(span);
        self.len -= span;
        self.tail_seq += span as u64;
        (first, span)
    }

    fn forget_count(&mut self, phys: usize) {
        match self.counts[phys] {
            UNKNOWN_COUNT => self.unknown_blocks -= 1,
            c => self.known_count -= c as u64,
        }
        self.counts[phys] = 0;
    }

    /// Adds `span` fresh blocks after the head for an object at `ts`,
    /// holding `objects` live objects (the first block is primary).
    pub fn push_blocks(&mut self, ts: i64, span: u32, objects: u32, head_end: u32) {
        for j in 0..span {
            let phys = self.phys(self.len) as usize;
            self.keys[phys] = if j == 0 { ts } else { -ts };
            self.counts[phys] = if j == 0 { objects } else { 0 };
            self.len += 1;
        }
        self.known_count += objects as u64;
        self.head_end = head_end;
    }

    /// Records objects appended to the head block.
    pub fn extend_head(&mut self, objects: u32, head_end: u32, newest: i64) {
        if let Some(h) = self.head_phys() {
            let c = &mut self.counts[h as usize];
            if *c != UNKNOWN_COUNT {
                *c += objects;
                self.known_count += objects as u64;
            }
        }
        self.head_end = head_end;
        self.newest = newest;
    }

    pub fn set_newest(&mut self, newest: i64) {
        self.newest = newest;
    }

    /// Sets the head's object count once it is known (after parsing it at open).
    pub fn set_head_count(&mut self, count: u32, head_end: u32) {
        if let Some(h) = self.head_phys() {
            let c = &mut self.counts[h as usize];
            if *c == UNKNOWN_COUNT {
                self.unknown_blocks -= 1;
                *c = count;
                self.known_count += count as u64;
            }
        }
        self.head_end = head_end;
    }

    /// One object in block `phys` was soft-deleted.
    pub fn note_deleted(&mut self, phys: u32) {
        let c = &mut self.counts[phys as usize];
        if *c != UNKNOWN_COUNT && *c > 0 {
            *c -= 1;
            self.known_count -= 1;
        }
    }

    /// Keeps the first `keep` live blocks and drops the rest (the head
    /// end of the ring); the last kept block becomes the head, holding
    /// `head_count` live objects (`None`: unchanged) up to `head_end`.
    /// Every block is renumbered past the old range, as `reset` does, so
    /// a reader that read a dropped block (or a kept one before the cut)
    /// finds it reclaimed and re-plans; `generation` tells it to re-plan
    /// by time. Returns the first dropped physical block and how many.
    pub fn truncate(
        &mut self,
        keep: u32,
        head_count: Option<u32>,
        head_end: u32,
        newest: i64,
    ) -> (u32, u32) {
        debug_assert!(keep >= 1 && keep <= self.len);
        let first = self.phys(keep);
        let dropped = self.len - keep;
        for i in keep..self.len {
            let phys = self.phys(i) as usize;
            self.forget_count(phys);
            self.keys[phys] = 0;
        }
        self.tail_seq += self.len as u64;
        self.len = keep;
        if let (Some(count), Some(h)) = (head_count, self.head_phys()) {
            self.forget_count(h as usize);
            self.counts[h as usize] = count;
            self.known_count += count as u64;
        }
        self.head_end = head_end;
        self.newest = newest;
        self.generation += 1;
        (first, dropped)
    }

    /// Empties the ring in O(1): every block becomes reclaimed, the next
    /// block written is block 0. Keys outside the live range are never read,
    /// so they are left as they are.
    pub fn reset(&mut self) {
        self.tail_seq += self.len as u64;
        self.tail = 0;
        self.len = 0;
        self.keys[0] = 0;
        self.head_end = 0;
        self.newest = 0;
        self.known_count = 0;
        self.unknown_blocks = 0;
        // Counts of the old live range are stale but outside the live range;
        // push_blocks overwrites them before they are read again.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[i64]) -> RingIndex {
        let mut r = RingIndex::new(8);
        r.load(5, keys).unwrap();
        r
    }

    #[test]
    fn search_steps_over_continuations() {
        // blocks (from tail): 10, 20 spanning 3 blocks, 30, 40
        let r = ring(&[10, 20, 0, 0, 30, 40]);
        assert_eq!(r.block_for(5), None);
        assert_eq!(r.block_for(10), Some(0));
        assert_eq!(r.block_for(19), Some(0));
        assert_eq!(r.block_for(20), Some(1));
        assert_eq!(r.block_for(25), Some(1));
        assert_eq!(r.block_for(30), Some(4));
        assert_eq!(r.block_for(99), Some(5));
        assert_eq!(r.head_phys(), Some((5 + 5) % 8));
    }

    #[test]
    fn reclaim_takes_whole_spanning_object() {
        let mut r = ring(&[20, 0, 0, 30]);
        let (first, span) = r.reclaim_tail();
        assert_eq!((first, span), (5, 3));
        assert_eq!(r.len(), 1);
        assert_eq!(r.oldest(), Some(30));
        assert_eq!(r.tail_seq(), 3);
    }

    #[test]
    fn truncate_keeps_the_tail_and_renumbers() {
        let mut r = ring(&[10, 20, 0, 0, 30, 40]);
        let (seq, generation) = (r.tail_seq(), r.generation());
        let (first, dropped) = r.truncate(5, Some(2), 100, 35);
        assert_eq!((first, dropped), ((5 + 5) % 8, 1));
        assert_eq!(r.len(), 5);
        assert_eq!(r.tail(), 5);
        assert_eq!(r.tail_seq(), seq + 6);
        assert_eq!(r.generation(), generation + 1);
        assert_eq!((r.newest(), r.head_end()), (35, 100));
        assert_eq!(r.key_of((5 + 5) % 8), 0);
        assert_eq!(r.block_for(99), Some(4));
        assert_eq!(r.head_phys(), Some((5 + 4) % 8));
        assert_eq!(r.count_of((5 + 4) % 8), Some(2));
    }

    #[test]
    fn load_rejects_unsorted_index() {
        let mut r = RingIndex::new(8);
        assert!(r.load(0, &[10, 5]).is_err());
        let mut r = RingIndex::new(8);
        assert!(r.load(0, &[0, 5]).is_err());
    }
}
