//! `RingRecords`: a ring's records in time order, either direction,
//! streamed a batch of blocks at a time; what `Store`'s list queries and
//! a compressed store's frame walk are built on. Records are handed out
//! borrowed from the batch's bytes (`next_ref`), or copied (`Iterator`).
//!
//! Like a point lookup (`query`), a batch is planned under a short
//! `RingIndex` read lock, read with no lock, and checked against the
//! writer's reclaiming before any byte of it is decoded.

use std::sync::atomic::Ordering;

use super::Ring;
use super::query::{MAX_RETRIES, Payload};
use crate::block::{Found, ObjectWalk, block_end};
use crate::error::{Error, Result};
use crate::format::OBJECT_HEADER_SIZE;
use crate::lock::read_lock;
use crate::record::{ObjectHandle, Record, RecordRef};
use crate::ring::index::BlockRef;

/// Most bytes read by one batch of an iterator (a single spanning object
/// may need more: it is always read whole).
pub const READ_BATCH_BYTES: usize = 32 * 1024;
/// Most records a list query reserves room for before reading.
pub(crate) const PREALLOC_RECORDS: usize = 4096;

impl Ring {
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
    /// A reverse read's objects of one block, by offset (walked forward,
    /// taken backwards).
    found: Vec<u32>,
    /// Records decoded from the last batch, their payloads still in `buf`
    /// or `spill`: a batch is read only once all of them were taken.
    ready: Vec<(ObjectHandle, Payload)>,
    /// How many of `ready` were handed out.
    taken: usize,
    /// Payloads of spanning objects of the last batch, gathered.
    spill: Vec<u8>,
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
        let ReadBuffers {
            refs,
            buf,
            found,
            ready,
            spill,
        } = READ_BUFFERS.with(|kept| kept.take()).unwrap_or_default();
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
            refs,
            buf,
            found,
            ready,
            taken: 0,
            spill,
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
            // A read of the newest `n` takes the blocks holding them in
            // one batch, by the index's counts (one `pread` for
            // `newest(100)`, not a batch of 1 block, then 2), never
            // more than a full batch.
            let max_blocks = match self.remaining {
                usize::MAX => max_blocks,
                n => ring
                    .blocks_holding(end, n, self.max_batch)
                    .map_or(max_blocks, |b| b.max(max_blocks)),
            };
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
        self.spill.clear();
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

    /// Turns the blocks just read into records within the window: one
    /// pass over each block (forward), or its objects listed then taken
    /// backwards (reverse); payloads stay where they are.
    fn decode(&mut self) -> Result<()> {
        let bs = self.src.block_size() as usize;
        let want = self.remaining;
        let blocks = self.refs.len();
        let src = self.src;
        self.ready.clear();
        self.taken = 0;
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
            let mut walk = ObjectWalk::new(block, block_end(block, r.head_end), r.phys, r.key);
            self.found.clear();
            if self.reverse {
                while let Some(f) = walk.next_found() {
                    self.found.push(f.offset);
                }
                if walk.fault().is_some() {
                    // Keep what came before; the index leads on.
                    src.corruption_skips.fetch_add(1, Ordering::Relaxed);
                }
            }
            // One body for both directions, taking the object by
            // reference where the walk left it: copying the `Found` out of
            // an `if`/`match` cost a store-forwarding stall per object.
            macro_rules! take {
                ($f:expr) => {{
                    let f: &Found = $f;
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
                    let Some(payload) = src.locate_payload(
                        &self.buf,
                        j,
                        f,
                        self.with_data,
                        self.seed,
                        &mut self.spill,
                    ) else {
                        // Not served: counted in the store's stats instead.
                        src.corruption_skips.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    if self.reverse {
                        self.to = ts.saturating_sub(1);
                    } else {
                        self.from = ts.saturating_add(1);
                    }
                    self.ready.push((src.handle(r.phys, f), payload));
                    if self.ready.len() >= want {
                        return Ok(());
                    }
                }};
            }
            if self.reverse {
                for k in (0..self.found.len()).rev() {
                    // Decoded again from the block (validated by the walk
                    // above): a copied `Found` stalled on its reload.
                    let offset = self.found[k];
                    let at = j * bs + offset as usize;
                    let Some(bytes) = self.buf[at..].first_chunk::<OBJECT_HEADER_SIZE>() else {
                        break;
                    };
                    let f = Found {
                        offset,
                        header: crate::format::ObjectHeader::from_array(bytes),
                    };
                    take!(&f);
                }
            } else {
                while let Some(f) = walk.next_found() {
                    take!(f);
                }
                if walk.fault().is_some() {
                    src.corruption_skips.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }
}

impl RingRecords<'_> {
    /// The next record, its payload borrowed from the read's own buffers
    /// (no copy, no allocation): valid until the next call.
    pub(crate) fn next_ref(&mut self) -> Option<Result<RecordRef<'_>>> {
        if self.remaining == 0 {
            return None;
        }
        while self.taken == self.ready.len() {
            if self.done {
                return None;
            }
            if let Err(e) = self.fill() {
                self.done = true;
                return Some(Err(e));
            }
        }
        self.remaining -= 1;
        let (handle, payload) = *self.ready.get(self.taken)?;
        self.taken += 1;
        Some(Ok(RecordRef {
            handle,
            data: payload.of(&self.buf, &self.spill),
        }))
    }
}

/// A streaming read's buffers, kept per thread between reads so that a
/// small read (the newest ten over REST, say) allocates only what it
/// returns. One set per thread, and only sets within `KEPT_*` are kept.
#[derive(Default)]
struct ReadBuffers {
    refs: Vec<BlockRef>,
    buf: Vec<u8>,
    found: Vec<u32>,
    ready: Vec<(ObjectHandle, Payload)>,
    spill: Vec<u8>,
}

/// Largest block bytes, spill and record list a thread keeps for its next
/// read: a batch's worth (a spanning object's larger buffers go).
const KEPT_BYTES: usize = 2 * READ_BATCH_BYTES;
const KEPT_RECORDS: usize = 1024;

thread_local! {
    static READ_BUFFERS: std::cell::Cell<Option<ReadBuffers>> =
        const { std::cell::Cell::new(None) };
}

impl Drop for RingRecords<'_> {
    fn drop(&mut self) {
        if self.buf.capacity() > KEPT_BYTES
            || self.spill.capacity() > KEPT_BYTES
            || self.ready.capacity() > KEPT_RECORDS
            || self.found.capacity() > KEPT_RECORDS
        {
            return;
        }
        let mut kept = ReadBuffers {
            refs: std::mem::take(&mut self.refs),
            buf: std::mem::take(&mut self.buf),
            found: std::mem::take(&mut self.found),
            ready: std::mem::take(&mut self.ready),
            spill: std::mem::take(&mut self.spill),
        };
        kept.refs.clear();
        kept.found.clear();
        kept.ready.clear();
        kept.spill.clear();
        // `buf` keeps its length: `read_run` overwrites what it uses, and
        // keeping it spares zeroing it again.
        READ_BUFFERS.with(|slot| slot.set(Some(kept)));
    }
}

impl Iterator for RingRecords<'_> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        self.next_ref().map(|r| r.map(|r| r.to_record()))
    }
}
