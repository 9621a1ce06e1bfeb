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

/// Why a walk stopped early: the block's structure is broken from here
/// on. Boxed, so the walk's item stays small (it is the hot loop of every
/// read); becomes `Error::Corrupt` with `?`.
/// Built without formatting: a point lookup walks what it copied so far
/// and meets "runs past the end" routinely; only an error reported is
/// turned into words.
#[derive(Debug)]
pub(crate) struct BrokenBlock(Box<(u32, usize, Broken)>);

#[derive(Debug)]
enum Broken {
    FirstTimestamp { found: i64, index: i64 },
    NotAfter { ts: i64, prev: i64 },
    SpanNotFirst,
    PastEnd { len: u32, end: usize },
}

impl From<BrokenBlock> for Error {
    fn from(b: BrokenBlock) -> Error {
        let (phys, offset, what) = *b.0;
        let what = match what {
            Broken::FirstTimestamp { found, index } => {
                format!("first object has timestamp {found}, the index says {index}")
            }
            Broken::NotAfter { ts, prev } => format!("timestamp {ts} not after {prev}"),
            Broken::SpanNotFirst => "spanning object does not start the block".into(),
            Broken::PastEnd { len, end } => {
                format!("object of {len} bytes runs past the block's used end {end}")
            }
        };
        Error::Corrupt(format!("block {phys} offset {offset}: {what}"))
    }
}

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
    fault: Option<BrokenBlock>,
    /// The object last found (`next_found`).
    current: Found,
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
            fault: None,
            current: Found {
                offset: 0,
                header: ObjectHeader::default(),
            },
        }
    }

    /// Where the walk stands: the next header's offset and the last
    /// timestamp seen (for `resume`).
    pub fn position(&self) -> (usize, i64) {
        (self.offset, self.prev_ts)
    }

    /// A walk that goes on from `position`, where a walk of the same block
    /// stopped at the end of the bytes it was given. `block` may be a
    /// prefix of the block shorter than `end`: the walk then stops, without
    /// a fault, at the first object not wholly inside it.
    pub fn resume(
        block: &'a [u8],
        end: usize,
        phys: u32,
        first_ts: i64,
        position: (usize, i64),
    ) -> ObjectWalk<'a> {
        ObjectWalk {
            offset: position.0,
            prev_ts: position.1,
            ..ObjectWalk::new(block, end, phys, first_ts)
        }
    }

    #[cold]
    fn corrupt(&mut self, what: Broken) -> Option<&Found> {
        self.done = true;
        self.fault = Some(BrokenBlock(Box::new((self.phys, self.offset, what))));
        None
    }
}

impl ObjectWalk<'_> {
    /// The next object, for hot loops: a fault ends the walk and is kept
    /// for `fault` instead of being returned through every step (a
    /// `Result` item cost a store-forwarding stall per object).
    #[inline(always)]
    pub fn next_found(&mut self) -> Option<&Found> {
        let at = self.offset;
        if self.done || at + OBJECT_HEADER_SIZE > self.end {
            return None;
        }
        let bytes = self.block.get(at..)?.first_chunk::<OBJECT_HEADER_SIZE>()?;
        let header = ObjectHeader::from_array(bytes);
        let expected_first = self.prev_ts == 0;
        if expected_first && header.timestamp != self.first_ts {
            return self.corrupt(Broken::FirstTimestamp {
                found: header.timestamp,
                index: self.first_ts,
            });
        }
        if header.timestamp <= self.prev_ts {
            return self.corrupt(Broken::NotAfter {
                ts: header.timestamp,
                prev: self.prev_ts,
            });
        }
        if header.spans() {
            // A spanning object fills the rest of its first block alone.
            if at != BLOCK_HEADER_SIZE {
                return self.corrupt(Broken::SpanNotFirst);
            }
            self.done = true;
            self.current = Found {
                offset: at as u32,
                header,
            };
            return Some(&self.current);
        }
        let next = at + OBJECT_HEADER_SIZE + header.data_len as usize;
        if next > self.end {
            return self.corrupt(Broken::PastEnd {
                len: header.data_len,
                end: self.end,
            });
        }
        if next > self.block.len() {
            // Past what the caller has read so far (`resume`): not found
            // yet, and not a fault.
            return None;
        }
        self.prev_ts = header.timestamp;
        self.offset = next;
        // Handed out by reference: a caller copying it whole out of an
        // `Option` paid a store-forwarding stall per object.
        self.current = Found {
            offset: at as u32,
            header,
        };
        Some(&self.current)
    }

    /// Why `next_found` stopped early, if it did.
    pub fn fault(&mut self) -> Option<BrokenBlock> {
        self.fault.take()
    }
}

impl Iterator for ObjectWalk<'_> {
    type Item = std::result::Result<Found, BrokenBlock>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_found() {
            Some(found) => Some(Ok(*found)),
            None => self.fault.take().map(Err),
        }
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
