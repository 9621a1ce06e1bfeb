//! Reading objects out of block bytes: the walk every query shares.
//!
//! Objects inside a primary block are found by stepping over
//! `24 + data_len` bytes from the first header. `next_offset` is not
//! followed: the writer rewrites it while readers may be looking, whereas a
//! header's timestamp and length never change once written.

use crate::error::{Error, Result};
use crate::format::{
    BLOCK_HEADER_SIZE, BlockHeader, OBJECT_HEADER_SIZE, ObjectHeader, continuation_capacity,
    first_block_capacity,
};

/// One object header found in a block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    pub offset: u32,
    pub header: ObjectHeader,
}

/// Where a block's objects end: the committed head offset for the head
/// block, otherwise the block header's `data_len`.
pub(crate) fn block_end(block: &[u8], head_end: Option<u32>) -> usize {
    let end = match head_end {
        Some(end) => end as usize,
        None => BLOCK_HEADER_SIZE + BlockHeader::decode(block).data_len as usize,
    };
    end.min(block.len())
}

/// Walks the objects of one primary block, checking that each lies inside
/// the block and that timestamps increase from `first_ts`.
pub(crate) struct ObjectWalk<'a> {
    block: &'a [u8],
    end: usize,
    offset: usize,
    prev_ts: i64,
    first_ts: i64,
    phys: u32,
    done: bool,
}

impl<'a> ObjectWalk<'a> {
    pub fn new(block: &'a [u8], end: usize, phys: u32, first_ts: i64) -> ObjectWalk<'a> {
        ObjectWalk {
            block,
            end,
            offset: BLOCK_HEADER_SIZE,
            prev_ts: 0,
            first_ts,
            phys,
            done: false,
        }
    }

    fn corrupt(&mut self, what: String) -> Option<Result<Found>> {
        self.done = true;
        Some(Err(Error::Corrupt(format!(
            "block {} offset {}: {what}",
            self.phys, self.offset
        ))))
    }
}

impl Iterator for ObjectWalk<'_> {
    type Item = Result<Found>;

    fn next(&mut self) -> Option<Result<Found>> {
        if self.done || self.offset + OBJECT_HEADER_SIZE > self.end {
            return None;
        }
        let at = self.offset;
        let header = ObjectHeader::decode(&self.block[at..at + OBJECT_HEADER_SIZE]);
        let expected_first = self.prev_ts == 0;
        if expected_first && header.timestamp != self.first_ts {
            return self.corrupt(format!(
                "first object has timestamp {}, the index says {}",
                header.timestamp, self.first_ts
            ));
        }
        if header.timestamp <= self.prev_ts {
            return self.corrupt(format!(
                "timestamp {} not after {}",
                header.timestamp, self.prev_ts
            ));
        }
        let found = Found {
            offset: at as u32,
            header,
        };
        if header.spans() {
            // A spanning object fills the rest of its first block alone.
            if at != BLOCK_HEADER_SIZE {
                return self.corrupt("spanning object does not start the block".into());
            }
            self.done = true;
            return Some(Ok(found));
        }
        let next = at + OBJECT_HEADER_SIZE + header.data_len as usize;
        if next > self.end {
            return self.corrupt(format!(
                "object of {} bytes runs past the block's used end {}",
                header.data_len, self.end
            ));
        }
        self.prev_ts = header.timestamp;
        self.offset = next;
        Some(Ok(found))
    }
}

/// Copies the payload of a spanning object whose first block starts at
/// `blocks[0..]`, with its continuation blocks following contiguously.
///
/// Every following block must carry the continuation flag. With `strict`
/// (stores with checksums) it must also name the object: its reserved word
/// holds the object's timestamp (tsstore now), or its timestamp field does
/// (tsstore before it wrote continuation headers as ts-store does). Stores
/// without checksums are read as ts-store reads them: its continuation
/// blocks say timestamp 0 and nothing else ties them to the object.
pub(crate) fn gather_span(
    blocks: &[u8],
    block_size: u32,
    found: &Found,
    strict: bool,
    out: &mut Vec<u8>,
) -> Result<()> {
    let bs = block_size as usize;
    let total = found.header.data_len as u64;
    let first = first_block_capacity(block_size).min(total) as usize;
    let start = found.offset as usize + OBJECT_HEADER_SIZE;
    out.extend_from_slice(&blocks[start..start + first]);
    let mut left = total as usize - first;
    let mut b = 1;
    while left > 0 {
        let block = blocks.get(b * bs..(b + 1) * bs).ok_or_else(|| {
            Error::Corrupt("spanning object runs past the blocks read".to_string())
        })?;
        let hdr = BlockHeader::decode(block);
        let ts = found.header.timestamp;
        let names_object = hdr.object_ts == ts || hdr.timestamp == ts;
        if !hdr.is_continuation() || (strict && !names_object) {
            return Err(Error::Corrupt(format!(
                "block after spanning object {} is not its continuation",
                found.header.timestamp
            )));
        }
        let take = left.min(continuation_capacity(block_size) as usize);
        out.extend_from_slice(&block[BLOCK_HEADER_SIZE..BLOCK_HEADER_SIZE + take]);
        left -= take;
        b += 1;
    }
    Ok(())
}
