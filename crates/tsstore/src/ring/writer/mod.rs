//! `Writer`: the single-writer half of a store (behind the store's mutex).
//!
//! The head block lives in memory while objects are packed into it, so an
//! insert costs one `pwrite` of the previous object's header (its
//! `next_offset` and last-in-block flag change) through the end of the new
//! object, and never a read. The head's block header (`data_len`) and the
//! index entries are written at checkpoints and when a block is sealed:
//! readers take the head's used length from the in-memory `RingIndex`, and
//! recovery rebuilds both from the objects themselves.
//!
//! Publication order is what makes lock-free reading safe: blocks are
//! reclaimed in the `RingIndex` *before* their bytes are overwritten, and new
//! objects are published *after* their bytes are written.

mod checkpoint;
mod truncate;

use std::sync::RwLock;

use crate::error::{Error, Result};
use crate::format::{
    BLOCK_CONTINUATION, BLOCK_HEADER_SIZE, BLOCK_PACKED, BLOCK_PRIMARY, BlockHeader, Meta,
    OBJ_CONTINUES_IN_NEXT, OBJ_DELETED, OBJ_FLAGS_OFFSET, OBJ_LAST_IN_BLOCK, OBJECT_HEADER_SIZE,
    ObjectHeader, blocks_for, checksum_seed, continuation_capacity, first_block_capacity,
    object_checksum,
};
use crate::io::StoreFile;
use crate::lock::write_lock;
use crate::record::ObjectHandle;
use crate::ring::index::RingIndex;
use checkpoint::DirtyBits;
pub(crate) use truncate::RingCut;

/// The files and shared index a writer works on.
pub(crate) struct Ctx<'a> {
    pub data: &'a dyn StoreFile,
    pub index: &'a dyn StoreFile,
    pub meta: &'a dyn StoreFile,
    pub ring: &'a RwLock<RingIndex>,
}

#[derive(Debug)]
pub(crate) struct Writer {
    bs: u32,
    n: u32,
    /// Image of the head block while it accepts packed objects (`bs` bytes).
    head: Vec<u8>,
    head_open: bool,
    head_phys: u32,
    write_offset: u32,
    /// Offset of the last object header in the head block (0: none yet).
    last_obj: u32,
    /// First head byte that differs from disk; `== write_offset` when clean.
    dirty_from: u32,
    /// The head's block header on disk has an old `data_len`.
    header_stale: bool,
    /// The head block was started but is not yet in the `RingIndex`.
    unpublished_block: bool,
    unpublished_objects: u32,
    /// Newest timestamp written, published or not.
    newest: i64,
    /// One block of scratch for writing spanning objects.
    scratch: Vec<u8>,
    dirty_index: DirtyBits,
    /// Template for meta writes (geometry, type, features, epoch).
    meta: Meta,
    /// Seed of object checksums; `None` in stores without checksums.
    checksum_seed: Option<u32>,
    /// Sequence number of the block recovery would start scanning from
    /// (the checkpoint's head); see `make_room`.
    scan_start_guard: u64,
    /// Checkpoints the writer takes on its own are fsynced.
    durable_checkpoints: bool,
    /// Something was written since the last checkpoint.
    dirty: bool,
    /// Times objects were published to readers; the store compares it
    /// around a write to know whether to signal a commit.
    publishes: u64,
}

impl Writer {
    pub fn new(meta: Meta) -> Writer {
        let bs = meta.data_block_size;
        Writer {
            bs,
            n: meta.num_blocks,
            head: vec![0; bs as usize],
            head_open: false,
            head_phys: 0,
            write_offset: 0,
            last_obj: 0,
            dirty_from: 0,
            header_stale: false,
            unpublished_block: false,
            unpublished_objects: 0,
            newest: 0,
            scratch: Vec::new(),
            dirty_index: DirtyBits::new(meta.num_blocks),
            meta,
            checksum_seed: meta.has_checksums().then(|| checksum_seed(meta.epoch)),
            scan_start_guard: 0,
            durable_checkpoints: false,
            dirty: false,
            publishes: 0,
        }
    }

    pub fn set_durable_checkpoints(&mut self, yes: bool) {
        self.durable_checkpoints = yes;
    }

    /// Whether anything was written since the last checkpoint.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Times objects were published to readers since open.
    pub fn publishes(&self) -> u64 {
        self.publishes
    }

    pub fn checksum_seed(&self) -> Option<u32> {
        self.checksum_seed
    }

    fn checksum(&self, ts: i64, payload: &[u8]) -> u32 {
        self.checksum_seed
            .map_or(0, |seed| object_checksum(seed, ts, payload))
    }

    /// Adopts the head block found at open: its bytes, used length and last
    /// object. `header_stale`: its block header on disk does not yet say
    /// `end` (recovered objects), so the next flush rewrites it.
    pub fn adopt_head(
        &mut self,
        phys: u32,
        block: &[u8],
        end: u32,
        last_obj: u32,
        header_stale: bool,
    ) {
        self.head[..block.len()].copy_from_slice(block);
        let data_len = end - BLOCK_HEADER_SIZE as u32;
        self.head[8..12].copy_from_slice(&data_len.to_le_bytes());
        self.head_phys = phys;
        self.head_open = true;
        self.write_offset = end;
        self.dirty_from = end;
        self.last_obj = last_obj;
        self.header_stale = header_stale;
    }

    /// Forgets the head block (recovery moved past it).
    pub fn drop_head(&mut self) {
        self.head_open = false;
    }

    /// Index entries recovery changed, for the next checkpoint.
    pub fn mark_index_dirty(&mut self, first: u32, span: u32) {
        self.dirty_index.mark_span(first, span, self.n);
    }

    /// Writes the final header of a block recovery found sealed.
    pub fn seal_recovered(
        &self,
        data: &dyn StoreFile,
        phys: u32,
        header: &BlockHeader,
    ) -> Result<()> {
        let mut b = [0u8; BLOCK_HEADER_SIZE];
        header.encode_into(&mut b);
        data.write_all_at(&b, phys as u64 * self.bs as u64)?;
        Ok(())
    }

    pub fn set_newest(&mut self, newest: i64) {
        self.newest = newest;
    }

    pub fn newest(&self) -> i64 {
        self.newest
    }

    /// Largest payload this ring can take.
    pub fn max_object_len(&self) -> u64 {
        crate::format::max_object_len(self.n, self.bs)
    }

    /// Payload bytes the next object may have and still be packed into
    /// the open head block; 0 when no head block is open (the next object
    /// opens one).
    pub fn head_room(&self) -> usize {
        if !self.head_open {
            return 0;
        }
        (self.bs as usize).saturating_sub(self.write_offset as usize + OBJECT_HEADER_SIZE)
    }

    /// Places one object; its bytes may still sit in the head buffer
    /// (call `flush` before acknowledging).
    pub fn append(&mut self, ctx: &Ctx, ts: i64, payload: &[u8]) -> Result<ObjectHandle> {
        self.check_no_pending_truncate()?;
        let len = payload.len();
        let bs = self.bs as usize;
        let max = self.max_object_len();
        if len as u64 > max {
            return Err(Error::TooLarge {
                size: len as u64,
                max,
            });
        }
        if self.head_open && self.write_offset as usize + OBJECT_HEADER_SIZE + len <= bs {
            return Ok(self.pack(ts, payload));
        }
        self.flush(ctx, true)?;
        self.head_open = false;
        if len as u64 <= first_block_capacity(self.bs) {
            let link = self.link();
            let phys = self.make_room(ctx, 1)?;
            BlockHeader {
                timestamp: ts,
                data_len: 0,
                flags: BLOCK_PRIMARY | BLOCK_PACKED,
                object_ts: link,
            }
            .encode_into(&mut self.head[..BLOCK_HEADER_SIZE]);
            self.head_phys = phys;
            self.head_open = true;
            self.write_offset = BLOCK_HEADER_SIZE as u32;
            self.last_obj = 0;
            self.dirty_from = 0;
            self.unpublished_block = true;
            return Ok(self.pack(ts, payload));
        }
        self.write_spanning(ctx, ts, payload)
    }

    /// Appends to the open head block (the caller checked that it fits).
    fn pack(&mut self, ts: i64, payload: &[u8]) -> ObjectHandle {
        let off = self.write_offset as usize;
        if self.last_obj != 0 {
            let prev = self.last_obj as usize;
            let mut h = ObjectHeader::decode(&self.head[prev..prev + OBJECT_HEADER_SIZE]);
            h.flags &= !OBJ_LAST_IN_BLOCK;
            h.next_offset = off as u32;
            h.encode_into(&mut self.head[prev..prev + OBJECT_HEADER_SIZE]);
            self.dirty_from = self.dirty_from.min(self.last_obj);
        }
        ObjectHeader {
            timestamp: ts,
            data_len: payload.len() as u32,
            flags: OBJ_LAST_IN_BLOCK,
            next_offset: 0,
            reserved: self.checksum(ts, payload),
        }
        .encode_into(&mut self.head[off..off + OBJECT_HEADER_SIZE]);
        let end = off + OBJECT_HEADER_SIZE + payload.len();
        self.head[off + OBJECT_HEADER_SIZE..end].copy_from_slice(payload);
        self.write_offset = end as u32;
        let data_len = (end - BLOCK_HEADER_SIZE) as u32;
        self.head[8..12].copy_from_slice(&data_len.to_le_bytes());
        self.last_obj = off as u32;
        self.unpublished_objects += 1;
        self.newest = ts;
        ObjectHandle {
            timestamp: ts,
            block_num: self.head_phys,
            offset: off as u32,
            size: payload.len() as u32,
            span_count: 1,
        }
    }

    /// Reclaims tail objects until `span` fresh blocks fit; returns the first.
    ///
    /// Recovery scans forward from the block the last checkpoint recorded
    /// as head, so that block must not be overwritten before a newer
    /// checkpoint exists: when this reclaim takes it, a checkpoint of the
    /// state after the reclaim is written first.
    fn make_room(&mut self, ctx: &Ctx, span: u32) -> Result<u32> {
        let mut ring = write_lock(ctx.ring);
        while ring.len() + span > self.n {
            let (first, freed) = ring.reclaim_tail();
            self.dirty_index.mark_span(first, freed, self.n);
        }
        let phys = ring.next_free();
        let guard_reclaimed = ring.tail_seq() > self.scan_start_guard;
        drop(ring);
        if guard_reclaimed {
            let durable = self.durable_checkpoints;
            self.checkpoint(ctx, durable)?;
        }
        Ok(phys)
    }

    /// Records which block recovery would scan from, given `ring` as just
    /// checkpointed (or loaded): the head, or the first block to be placed.
    pub fn remember_checkpoint(&mut self, ring: &RingIndex) {
        self.scan_start_guard = ring.tail_seq() + ring.len().saturating_sub(1) as u64;
    }

    /// What a new primary block's header links back to (its reserved
    /// word, in stores with checksums): the timestamp of the last object
    /// before it, 0 if none. Writes of one batch reach the disk in any
    /// order until it is synced; recovery accepts a block only if the one
    /// before ends with the object it names, so a power cut that kept a
    /// new block but lost the tail of the one before cannot leave a gap.
    fn link(&self) -> i64 {
        if self.checksum_seed.is_some() {
            self.newest
        } else {
            0
        }
    }

    fn write_spanning(&mut self, ctx: &Ctx, ts: i64, payload: &[u8]) -> Result<ObjectHandle> {
        let len = payload.len() as u64;
        let span = blocks_for(len, self.bs) as u32;
        let first = self.make_room(ctx, span)?;
        let bs = self.bs as usize;
        self.scratch.resize(bs, 0);
        let first_cap = first_block_capacity(self.bs) as usize;
        let cont_cap = continuation_capacity(self.bs) as usize;
        let crc = self.checksum(ts, payload);
        // Continuation headers as ts-store writes them (timestamp 0, flags
        // 7); stores with checksums also name the object in the reserved
        // word, which ts-store ignores and recovery checks.
        let cont_ts = if self.checksum_seed.is_some() { ts } else { 0 };
        let link = self.link();
        let mut rest = payload;
        for j in 0..span {
            let phys = ((first as u64 + j as u64) % self.n as u64) as u32;
            let used = if j == 0 {
                let (chunk, tail) = rest.split_at(first_cap);
                BlockHeader {
                    timestamp: ts,
                    data_len: (OBJECT_HEADER_SIZE + first_cap) as u32,
                    flags: BLOCK_PRIMARY | BLOCK_PACKED,
                    object_ts: link,
                }
                .encode_into(&mut self.scratch[..BLOCK_HEADER_SIZE]);
                ObjectHeader {
                    timestamp: ts,
                    data_len: len as u32,
                    flags: OBJ_CONTINUES_IN_NEXT | OBJ_LAST_IN_BLOCK,
                    next_offset: 0,
                    reserved: crc,
                }
                .encode_into(&mut self.scratch[BLOCK_HEADER_SIZE..BLOCK_HEADER_SIZE + 24]);
                self.scratch[BLOCK_HEADER_SIZE + OBJECT_HEADER_SIZE..].copy_from_slice(chunk);
                rest = tail;
                bs
            } else {
                let take = rest.len().min(cont_cap);
                let (chunk, tail) = rest.split_at(take);
                BlockHeader {
                    timestamp: 0,
                    data_len: take as u32,
                    flags: BLOCK_PRIMARY | BLOCK_PACKED | BLOCK_CONTINUATION,
                    object_ts: cont_ts,
                }
                .encode_into(&mut self.scratch[..BLOCK_HEADER_SIZE]);
                self.scratch[BLOCK_HEADER_SIZE..BLOCK_HEADER_SIZE + take].copy_from_slice(chunk);
                rest = tail;
                BLOCK_HEADER_SIZE + take
            };
            self.dirty = true;
            ctx.data
                .write_all_at(&self.scratch[..used], phys as u64 * bs as u64)?;
        }
        self.newest = ts;
        self.dirty_index.mark_span(first, span, self.n);
        let mut ring = write_lock(ctx.ring);
        ring.push_blocks(ts, span, 1, 0);
        ring.set_newest(ts);
        self.publishes += 1;
        Ok(ObjectHandle {
            timestamp: ts,
            block_num: first,
            offset: BLOCK_HEADER_SIZE as u32,
            size: len as u32,
            span_count: span,
        })
    }

    /// Writes what the head buffer holds beyond disk (with the block header
    /// when `with_header`), then publishes it to readers.
    pub fn flush(&mut self, ctx: &Ctx, with_header: bool) -> Result<()> {
        if !self.head_open {
            return Ok(());
        }
        let pending = self.dirty_from < self.write_offset;
        let from = if with_header && (pending || self.header_stale) {
            0
        } else if pending {
            self.dirty_from
        } else {
            return Ok(());
        };
        let to = if pending {
            self.write_offset
        } else {
            BLOCK_HEADER_SIZE as u32
        };
        let at = self.head_phys as u64 * self.bs as u64 + from as u64;
        self.dirty = true;
        ctx.data
            .write_all_at(&self.head[from as usize..to as usize], at)?;
        self.header_stale = from != 0;
        self.dirty_from = self.write_offset;
        self.publish(ctx);
        Ok(())
    }

    fn publish(&mut self, ctx: &Ctx) {
        if self.unpublished_objects > 0 {
            self.publishes += 1;
        }
        let mut ring = write_lock(ctx.ring);
        if self.unpublished_block {
            let first_ts = i64::from_le_bytes(self.head[0..8].try_into().unwrap_or_default());
            ring.push_blocks(first_ts, 1, self.unpublished_objects, self.write_offset);
            ring.set_newest(self.newest);
            self.dirty_index.mark(self.head_phys);
        } else {
            ring.extend_head(self.unpublished_objects, self.write_offset, self.newest);
        }
        self.unpublished_block = false;
        self.unpublished_objects = 0;
    }

    /// Forgets everything not yet published after a failed write, so the
    /// in-memory head matches what readers (and the disk) have.
    pub fn rollback(&mut self, ctx: &Ctx) {
        let ring = crate::lock::read_lock(ctx.ring);
        self.newest = ring.newest();
        if self.unpublished_block || !self.head_open {
            self.head_open = false;
        } else {
            self.write_offset = ring.head_end();
            let mut off = BLOCK_HEADER_SIZE;
            let mut last = 0;
            while off + OBJECT_HEADER_SIZE <= self.write_offset as usize {
                last = off;
                let h = ObjectHeader::decode(&self.head[off..off + OBJECT_HEADER_SIZE]);
                off += OBJECT_HEADER_SIZE + h.data_len as usize;
            }
            self.last_obj = last as u32;
            if last != 0 {
                let mut h = ObjectHeader::decode(&self.head[last..last + OBJECT_HEADER_SIZE]);
                h.flags |= OBJ_LAST_IN_BLOCK;
                h.next_offset = 0;
                h.encode_into(&mut self.head[last..last + OBJECT_HEADER_SIZE]);
            }
            let data_len = (self.write_offset as usize - BLOCK_HEADER_SIZE) as u32;
            self.head[8..12].copy_from_slice(&data_len.to_le_bytes());
            // Rewrite from the last header on the next flush: disk may hold either version.
            self.dirty_from = self.last_obj.min(self.write_offset);
            self.header_stale = true;
        }
        self.unpublished_block = false;
        self.unpublished_objects = 0;
    }

    /// Sets the deleted bit of the object header at `phys`/`offset`.
    ///
    /// The bit lives in the flags word's low byte and only that byte is
    /// written: a one-byte write cannot tear, wherever the (unpadded)
    /// header sits relative to a sector boundary. `low_byte` is that byte
    /// as read from disk, with the bit already set.
    pub fn mark_deleted(&mut self, ctx: &Ctx, phys: u32, offset: u32, low_byte: u8) -> Result<()> {
        let at = offset as usize + OBJ_FLAGS_OFFSET;
        self.set_bits(ctx, phys, at, low_byte, OBJ_DELETED as u8)
    }

    /// Writes `current | bits` as the byte at `at` of block `phys` (and
    /// sets `bits` in the head buffer if that block is the head, so a
    /// later flush of the head keeps them). One byte: it cannot tear.
    pub fn set_bits(
        &mut self,
        ctx: &Ctx,
        phys: u32,
        at: usize,
        current: u8,
        bits: u8,
    ) -> Result<()> {
        self.dirty = true;
        ctx.data
            .write_all_at(&[current | bits], phys as u64 * self.bs as u64 + at as u64)?;
        if self.head_open && phys == self.head_phys {
            self.head[at] |= bits;
        }
        Ok(())
    }

    /// Empties the store: pointers only, O(1). A new epoch makes every
    /// object written before it fail verification from now on.
    pub fn reset(&mut self, ctx: &Ctx) {
        self.meta.epoch = self.meta.epoch.wrapping_add(1);
        if self.checksum_seed.is_some() {
            self.checksum_seed = Some(checksum_seed(self.meta.epoch));
        }
        let mut ring = write_lock(ctx.ring);
        ring.reset();
        ring.set_checksum_seed(self.checksum_seed);
        drop(ring);
        self.head_open = false;
        self.unpublished_block = false;
        self.unpublished_objects = 0;
        self.newest = 0;
        self.dirty_index.mark(0);
    }
}
