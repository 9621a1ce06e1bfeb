//! Reading a ring: exact-time lookup, and what the ordered iteration in
//! both directions (`records`, which the store's list queries `oldest`,
//! `newest`, `range`, `since`, `after` are built on) shares with it:
//! reading a run of blocks, finding and verifying a payload.
//!
//! A read plans which blocks it needs under a short `RingIndex` read lock,
//! reads them with positioned reads and no lock, then checks that none of
//! them was reclaimed meanwhile (`tail_seq` has not passed the first one).
//! If one was, the read is retried from the new tail; stale bytes are never
//! decoded into records.

use std::sync::atomic::Ordering;

use super::Ring;
use crate::block::{BrokenBlock, Found, ObjectWalk, block_end, gather_span};
use crate::error::{Error, Result};
use crate::format::{BLOCK_HEADER_SIZE, OBJECT_HEADER_SIZE, blocks_for, stored_checksum};
use crate::lock::read_lock;
use crate::record::{ObjectHandle, Record};
use crate::ring::index::BlockRef;

/// Re-plans of one lookup after the writer reclaimed what it was reading.
pub(super) const MAX_RETRIES: usize = 64;

/// Block bytes a thread keeps for its next point lookup (more was a
/// spanning object's, given back).
const LOOKUP_KEPT_BYTES: usize = 32 * 1024;
/// Bytes of a block a point lookup copies at a time (`find_with`).
const LOOKUP_STEP: usize = 512;

/// What a point lookup found in the bytes copied so far.
enum Lookup {
    Found(Found),
    /// Not in the block (or not yet seen in what was copied).
    Absent,
    Broken(BrokenBlock),
}

thread_local! {
    /// A point lookup's block list and bytes, kept per thread so a lookup
    /// allocates only the record it returns (at most `LOOKUP_KEPT_BYTES`).
    static FIND_SCRATCH: std::cell::RefCell<(Vec<BlockRef>, Vec<u8>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

impl Ring {
    /// Reads consecutive live blocks into `buf`; false if any was reclaimed
    /// while reading (the bytes may then be newer data and are discarded).
    pub(super) fn read_run(&self, refs: &[BlockRef], buf: &mut Vec<u8>) -> Result<bool> {
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
        Ok(self.still_live(refs[0].seq))
    }

    /// Whether the block `seq` (and so every later one) was not reclaimed
    /// by the writer: checked after reading, before trusting the bytes.
    fn still_live(&self, seq: u64) -> bool {
        read_lock(&self.ring).tail_seq() <= seq
    }

    /// Where the payload of `found` (in block `j` of `buf`) is, after
    /// verifying its checksum against `seed` (stores with checksums). A
    /// spanning object's payload is gathered onto the end of `spill`.
    /// `None`: the object is damaged (checksum, length or continuation).
    #[inline(always)]
    pub(super) fn locate_payload(
        &self,
        buf: &[u8],
        j: usize,
        found: &Found,
        with_data: bool,
        seed: Option<u32>,
        spill: &mut Vec<u8>,
    ) -> Option<Payload> {
        // Inlined into the per-object loops: returned through memory, the
        // payload's place cost a store-forwarding stall per object.
        let len = found.header.data_len;
        if found.header.spans() {
            // Built here from scalars: a `Payload` returned by the cold
            // call would make every object's go through memory.
            return match self.gather_payload(buf, j, found, with_data, seed, spill)? {
                Some(at) => Some(Payload {
                    at,
                    len,
                    spilled: true,
                }),
                None => Some(Payload::EMPTY),
            };
        }
        let at = j * self.block_size() as usize + found.offset as usize + OBJECT_HEADER_SIZE;
        let payload = buf.get(at..at + len as usize)?;
        if !self.verifies(seed, found, payload) {
            return None;
        }
        Some(if with_data {
            Payload {
                at,
                len,
                spilled: false,
            }
        } else {
            Payload::EMPTY
        })
    }

    /// Whether `payload` is the one `found`'s checksum was written for
    /// (always, in stores without checksums: `seed` is `None`).
    #[inline(always)]
    fn verifies(&self, seed: Option<u32>, found: &Found, payload: &[u8]) -> bool {
        seed.is_none_or(|seed| {
            stored_checksum(seed, found.header.timestamp, payload, self.encoding())
                == found.header.reserved
        })
    }

    /// `locate_payload` for an object spanning blocks: gathered onto the
    /// end of `spill`, then verified. `Some(Some(at))`: its payload is at
    /// `at` in `spill`; `Some(None)`: verified, read without data; `None`:
    /// damaged.
    #[cold]
    fn gather_payload(
        &self,
        buf: &[u8],
        j: usize,
        found: &Found,
        with_data: bool,
        seed: Option<u32>,
        spill: &mut Vec<u8>,
    ) -> Option<Option<usize>> {
        let bs = self.block_size();
        let len = found.header.data_len;
        if len as u64 > self.max_object_size() {
            // Never size an allocation from a header that cannot be right.
            return None;
        }
        if !with_data && seed.is_none() {
            return Some(None);
        }
        let at = spill.len();
        spill.reserve(len as usize);
        let start = j * bs as usize;
        if gather_span(&buf[start..], bs, found, seed.is_some(), spill).is_err()
            || !self.verifies(seed, found, &spill[at..])
        {
            spill.truncate(at);
            return None;
        }
        if !with_data {
            spill.truncate(at);
            return Some(None);
        }
        Some(Some(at))
    }

    pub(super) fn handle(&self, phys: u32, found: &Found) -> ObjectHandle {
        let len = found.header.data_len;
        let span_count = if found.header.spans() {
            blocks_for(len as u64, self.block_size()) as u32
        } else {
            1
        };
        ObjectHandle {
            timestamp: found.header.timestamp,
            block_num: phys,
            offset: found.offset,
            size: len,
            span_count,
        }
    }

    /// Finds the live object at `ts` (deleted ones are not found).
    fn find(&self, ts: i64, with_data: bool) -> Result<Option<(Record, Found)>> {
        FIND_SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => {
                let (refs, buf) = &mut *scratch;
                let out = self.find_with(ts, with_data, refs, buf);
                if buf.capacity() > LOOKUP_KEPT_BYTES {
                    // A spanning object was read: do not keep its size.
                    *buf = Vec::new();
                }
                out
            }
            Err(_) => self.find_with(ts, with_data, &mut Vec::new(), &mut Vec::new()),
        })
    }

    fn find_with(
        &self,
        ts: i64,
        with_data: bool,
        refs: &mut Vec<BlockRef>,
        buf: &mut Vec<u8>,
    ) -> Result<Option<(Record, Found)>> {
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
            let bs = self.block_size() as usize;
            let first = refs[0];
            // The first block is copied a step at a time, only as far as
            // the walk needs: a lookup stops half way on average, and
            // copying memory that is not in the CPU's caches is most of
            // its cost.
            buf.resize(refs.len() * bs, 0);
            let base = first.phys as u64 * bs as u64;
            let mut have = 0;
            let mut position = (BLOCK_HEADER_SIZE, 0);
            let outcome = loop {
                let want = (have + LOOKUP_STEP).min(bs);
                self.data
                    .read_exact_at(&mut buf[have..want], base + have as u64)?;
                have = want;
                let end = block_end(&buf[..bs], first.head_end);
                let mut outcome = Lookup::Absent;
                let mut walk =
                    ObjectWalk::resume(&buf[..have], end, first.phys, first.key, position);
                while let Some(f) = walk.next_found() {
                    if f.header.timestamp >= ts {
                        if f.header.timestamp == ts && !f.header.is_deleted() {
                            outcome = Lookup::Found(*f);
                        }
                        break;
                    }
                }
                if let Some(broken) = walk.fault() {
                    outcome = Lookup::Broken(broken);
                }
                position = walk.position();
                match outcome {
                    // The walk ran into the end of what was copied.
                    Lookup::Absent if have < end => {}
                    outcome => break outcome,
                }
            };
            let live = match &outcome {
                // Its continuation blocks too, whole.
                Lookup::Found(f) if f.header.spans() => self.read_run(refs, buf)?,
                _ => self.still_live(first.seq),
            };
            if !live {
                continue;
            }
            let found = match outcome {
                Lookup::Found(found) => found,
                Lookup::Broken(broken) => return Err(broken.into()),
                Lookup::Absent => return Ok(None),
            };
            let mut spill = Vec::new();
            let Some(payload) = self.locate_payload(buf, 0, &found, with_data, seed, &mut spill)
            else {
                self.corruption_skips.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Corrupt(format!(
                    "object {ts} in block {} is damaged (checksum or structure)",
                    first.phys
                )));
            };
            let data = if payload.spilled {
                spill
            } else {
                payload.of(buf, &spill).to_vec()
            };
            let handle = self.handle(first.phys, &found);
            return Ok(Some((Record { handle, data }, found)));
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
}

/// Where a record's payload is among what a read holds: `len` bytes from
/// `at` in its block bytes, or in its spill buffer (an object spanning
/// blocks, gathered). Read without data: empty.
#[derive(Debug, Clone, Copy)]
pub(super) struct Payload {
    at: usize,
    len: u32,
    spilled: bool,
}

impl Payload {
    const EMPTY: Payload = Payload {
        at: 0,
        len: 0,
        spilled: false,
    };

    pub(super) fn of<'b>(self, buf: &'b [u8], spill: &'b [u8]) -> &'b [u8] {
        let from = if self.spilled { spill } else { buf };
        &from[self.at..self.at + self.len as usize]
    }
}
