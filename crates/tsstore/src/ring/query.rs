//! Reading a ring: exact-time lookup and ordered iteration in both
//! directions, which the store's list queries (`oldest`, `newest`,
//! `range`, `since`, `after`) are built on (`store::read`).
//!
//! A read plans which blocks it needs under a short `RingIndex` read lock,
//! reads them with positioned reads and no lock, then checks that none of
//! them was reclaimed meanwhile (`tail_seq` has not passed the first one).
//! If one was, the read is retried from the new tail; stale bytes are never
//! decoded into records.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use super::Ring;
use crate::block::{Found, ObjectWalk, block_end, gather_span};
use crate::error::{Error, Result};
use crate::format::{OBJECT_HEADER_SIZE, blocks_for, stored_checksum};
use crate::lock::read_lock;
use crate::record::{ObjectHandle, Record};
use crate::ring::index::BlockRef;

/// Most bytes read by one batch of an iterator (a single spanning object
/// may need more: it is always read whole).
pub const READ_BATCH_BYTES: usize = 256 * 1024;
/// Most records a list query reserves room for before reading.
pub(crate) const PREALLOC_RECORDS: usize = 4096;
/// Re-plans of one lookup after the writer reclaimed what it was reading.
const MAX_RETRIES: usize = 64;

impl Ring {
    /// Reads consecutive live blocks into `buf`; false if any was reclaimed
    /// while reading (the bytes may then be newer data and are discarded).
    fn read_run(&self, refs: &[BlockRef], buf: &mut Vec<u8>) -> Result<bool> {
        let bs = self.block_size() as usize;
        buf.resize(refs.len() * bs, 0);
        let mut j = 0;
        while j < refs.len() {
            let mut k = j + 1;
            while k < refs.len() && refs[k].phys == refs[k - 1].phys + 1 {
                k += 1;
            }
            self.data
                .read_exact_at(&mut buf[j * bs..k * bs], refs[j].phys as u64 * bs as u64)?;
            j = k;
        }
        Ok(read_lock(&self.ring).tail_seq() <= refs[0].seq)
    }

    /// Builds the record for `found`, which sits in block `j` of `buf`,
    /// verifying its checksum against `seed` (stores with checksums).
    /// `None`: the object is damaged (checksum, length or continuation).
    fn record(
        &self,
        buf: &[u8],
        refs: &[BlockRef],
        j: usize,
        found: &Found,
        with_data: bool,
        seed: Option<u32>,
    ) -> Result<Option<Record>> {
        let bs = self.block_size();
        let len = found.header.data_len;
        let ts = found.header.timestamp;
        let start = j * bs as usize;
        if len as u64 > self.max_object_size() {
            // Never size an allocation from a header that cannot be right.
            return Ok(None);
        }
        let verifies = |payload: &[u8]| {
            seed.is_none_or(|seed| {
                stored_checksum(seed, ts, payload, self.encoding()) == found.header.reserved
            })
        };
        let mut data = Vec::new();
        if found.header.spans() {
            if with_data || seed.is_some() {
                data.reserve_exact(len as usize);
                if gather_span(&buf[start..], bs, found, seed.is_some(), &mut data).is_err()
                    || !verifies(&data)
                {
                    return Ok(None);
                }
                if !with_data {
                    data = Vec::new();
                }
            }
        } else {
            let at = start + found.offset as usize + OBJECT_HEADER_SIZE;
            let payload = &buf[at..at + len as usize];
            if !verifies(payload) {
                return Ok(None);
            }
            if with_data {
                data.extend_from_slice(payload);
            }
        }
        Ok(Some(Record {
            handle: ObjectHandle {
                timestamp: ts,
                block_num: refs[j].phys,
                offset: found.offset,
                size: len,
                span_count: blocks_for(len as u64, bs) as u32,
            },
            data,
        }))
    }

    /// Finds the live object at `ts` (deleted ones are not found).
    fn find(&self, ts: i64, with_data: bool) -> Result<Option<(Record, Found)>> {
        let mut refs = Vec::new();
        let mut buf = Vec::new();
        for _ in 0..MAX_RETRIES {
            refs.clear();
            let seed;
            {
                let ring = read_lock(&self.ring);
                seed = ring.checksum_seed();
                let Some(i) = ring.block_for(ts) else {
                    return Ok(None);
                };
                let mut seq = ring.tail_seq() + i as u64;
                while let Some(r) = ring.block_ref(seq) {
                    if !refs.is_empty() && r.key > 0 {
                        break;
                    }
                    refs.push(r);
                    seq += 1;
                }
            }
            if refs.is_empty() {
                return Ok(None);
            }
            if !self.read_run(&refs, &mut buf)? {
                continue;
            }
            let bs = self.block_size() as usize;
            let end = block_end(&buf[..bs], refs[0].head_end);
            for found in ObjectWalk::new(&buf[..bs], end, refs[0].phys, refs[0].key) {
                let found = found?;
                if found.header.timestamp == ts && !found.header.is_deleted() {
                    let Some(rec) = self.record(&buf, &refs, 0, &found, with_data, seed)? else {
                        self.corruption_skips.fetch_add(1, Ordering::Relaxed);
                        return Err(Error::Corrupt(format!(
                            "object {ts} in block {} is damaged (checksum or structure)",
                            refs[0].phys
                        )));
                    };
                    return Ok(Some((rec, found)));
                }
                if found.header.timestamp >= ts {
                    break;
                }
            }
            return Ok(None);
        }
        Err(Error::ReadOverrun)
    }

    /// Physical block and header of the live object at `ts` (for deletes).
    pub(crate) fn locate(&self, ts: i64) -> Result<Option<(u32, Found)>> {
        Ok(self
            .find(ts, false)?
            .map(|(rec, found)| (rec.handle.block_num, found)))
    }

    /// The raw object with exactly this timestamp (in a compressed store's
    /// main ring: the frame object; see `Store::get_by_time`).
    pub(crate) fn get(&self, ts: i64) -> Result<Record> {
        self.find(ts, true)?
            .map(|(rec, _)| rec)
            .ok_or(Error::NotFound(ts))
    }

    /// Raw objects with `start <= ts <= end`, streamed in either direction.
    pub(crate) fn range(&self, start: i64, end: i64, reverse: bool) -> RingRecords<'_> {
        RingRecords::new(self, reverse, start, end)
    }
}

/// A streaming iterator over records in time order (either direction).
/// Holds at most one read batch (`READ_BATCH_BYTES`) of block bytes and the
/// records decoded from it.
pub(crate) struct RingRecords<'a> {
    src: &'a Ring,
    reverse: bool,
    /// Forward: next block sequence to read. Reverse: one past it.
    cursor: Option<u64>,
    /// Remaining inclusive time window; narrowed past each yielded record,
    /// so a retried read never yields a record twice.
    from: i64,
    to: i64,
    remaining: usize,
    with_data: bool,
    batch: usize,
    max_batch: usize,
    refs: Vec<BlockRef>,
    buf: Vec<u8>,
    found: Vec<Found>,
    ready: VecDeque<Record>,
    done: bool,
    /// Checksum seed as of the last plan.
    seed: Option<u32>,
    /// Forward: the block last read while it was the head, and its used
    /// length then. The writer may have appended to it since, so it is
    /// read again (the window already excludes what was yielded) unless
    /// it is unchanged: moving past it would skip those records while
    /// yielding later ones.
    partial: Option<(u64, Option<u32>)>,
    /// `RingIndex::generation` as of the last plan: after a truncate the
    /// cursor's blocks are renumbered, so the next plan starts again from
    /// the (narrowed) time window instead.
    generation: u64,
}

impl<'a> RingRecords<'a> {
    fn new(src: &'a Ring, reverse: bool, from: i64, to: i64) -> RingRecords<'a> {
        // A snapshot cannot hold anything newer than its newest record: a
        // later one read from a block the writer is refilling would move
        // the window past records still to come.
        let to = if src.is_read_only() {
            to.min(read_lock(&src.ring).newest())
        } else {
            to
        };
        RingRecords {
            src,
            reverse,
            cursor: None,
            from,
            to,
            remaining: usize::MAX,
            with_data: true,
            batch: 1,
            max_batch: (READ_BATCH_BYTES / src.block_size() as usize).max(1),
            refs: Vec::new(),
            buf: Vec::new(),
            found: Vec::new(),
            ready: VecDeque::with_capacity(64),
            done: from > to,
            seed: None,
            partial: None,
            generation: 0,
        }
    }

    /// Yields at most `n` records.
    pub(crate) fn limit(mut self, n: usize) -> Self {
        self.remaining = n;
        self
    }

    /// Collects the remaining records, sized up front from the limit.
    pub(crate) fn collect_all(self) -> Result<Vec<Record>> {
        let mut out = Vec::with_capacity(self.remaining.min(PREALLOC_RECORDS));
        for rec in self {
            out.push(rec?);
        }
        Ok(out)
    }

    /// Whether to copy payloads (false: handles only, cheaper).
    pub(crate) fn with_data(mut self, yes: bool) -> Self {
        self.with_data = yes;
        self
    }

    /// Plans the next batch of blocks; returns false when there is none.
    fn plan(&mut self, max_blocks: usize) -> bool {
        self.refs.clear();
        let ring = read_lock(&self.src.ring);
        self.seed = ring.checksum_seed();
        if ring.generation() != self.generation {
            self.generation = ring.generation();
            self.cursor = None;
            self.partial = None;
        }
        if self.reverse {
            let end = match self.cursor {
                Some(c) => c.min(ring.end_seq()),
                None => ring.seq_after(self.to),
            };
            if end <= ring.tail_seq() {
                return false;
            }
            let mut start = end.saturating_sub(max_blocks as u64).max(ring.tail_seq());
            while start > ring.tail_seq() && ring.block_ref(start).is_some_and(|r| r.key < 0) {
                start -= 1;
            }
            self.refs
                .extend((start..end).filter_map(|s| ring.block_ref(s)));
        } else {
            let mut seq = match self.cursor {
                Some(c) => c.max(ring.tail_seq()),
                None => ring.start_seq(self.from),
            };
            if let Some((at, end)) = self.partial
                && at == seq
                && ring.block_ref(seq).is_some_and(|r| r.head_end == end)
            {
                // Caught up with the writer.
                return false;
            }
            while let Some(r) = ring.block_ref(seq) {
                if r.key < 0 && self.refs.is_empty() {
                    seq += 1;
                    continue;
                }
                if r.key > 0 && (r.key > self.to || self.refs.len() >= max_blocks) {
                    break;
                }
                self.refs.push(r);
                seq += 1;
            }
        }
        !self.refs.is_empty()
    }

    fn fill(&mut self) -> Result<()> {
        for attempt in 0..MAX_RETRIES {
            let max_blocks = if attempt == 0 { self.batch } else { 1 };
            if !self.plan(max_blocks) {
                self.done = true;
                return Ok(());
            }
            if !self.src.read_run(&self.refs, &mut self.buf)? {
                // Reclaimed under us: those records are gone; re-plan from the tail.
                continue;
            }
            let last = self.refs[self.refs.len() - 1];
            self.cursor = Some(if self.reverse {
                self.refs[0].seq
            } else if last.head_end.is_some() {
                self.partial = Some((last.seq, last.head_end));
                last.seq
            } else {
                last.seq + 1
            });
            self.batch = (self.batch * 2).min(self.max_batch);
            return self.decode();
        }
        Err(Error::ReadOverrun)
    }

    /// Turns the blocks just read into records within the window.
    fn decode(&mut self) -> Result<()> {
        let bs = self.src.block_size() as usize;
        let want = self.remaining;
        let blocks = self.refs.len();
        for step in 0..blocks {
            let j = if self.reverse {
                blocks - 1 - step
            } else {
                step
            };
            let r = self.refs[j];
            if r.key < 0 {
                continue;
            }
            let block = &self.buf[j * bs..(j + 1) * bs];
            self.found.clear();
            for f in ObjectWalk::new(block, block_end(block, r.head_end), r.phys, r.key) {
                match f {
                    Ok(f) => self.found.push(f),
                    Err(_) => {
                        // Keep what came before; the index leads on to the next block.
                        self.src.corruption_skips.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            let mut k = 0;
            while k < self.found.len() {
                let f = if self.reverse {
                    self.found[self.found.len() - 1 - k]
                } else {
                    self.found[k]
                };
                k += 1;
                let ts = f.header.timestamp;
                if ts > self.to {
                    if self.reverse {
                        continue;
                    }
                    self.done = true;
                    return Ok(());
                }
                if ts < self.from {
                    if self.reverse {
                        self.done = true;
                        return Ok(());
                    }
                    continue;
                }
                if f.header.is_deleted() {
                    continue;
                }
                let Some(rec) =
                    self.src
                        .record(&self.buf, &self.refs, j, &f, self.with_data, self.seed)?
                else {
                    // Not served: counted in the store's stats instead.
                    self.src.corruption_skips.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                if self.reverse {
                    self.to = ts.saturating_sub(1);
                } else {
                    self.from = ts.saturating_add(1);
                }
                self.ready.push_back(rec);
                if self.ready.len() >= want {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

impl Iterator for RingRecords<'_> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        if self.remaining == 0 {
            return None;
        }
        while self.ready.is_empty() {
            if self.done {
                return None;
            }
            if let Err(e) = self.fill() {
                self.done = true;
                return Some(Err(e));
            }
        }
        self.remaining -= 1;
        self.ready.pop_front().map(Ok)
    }
}
