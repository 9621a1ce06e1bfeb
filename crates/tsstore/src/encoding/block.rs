//! A frame laid out in ring blocks: the block images a compressed store
//! writes, and their checks on the way back.
//!
//! Primary block (the first of a frame), `bs` bytes:
//!
//! ```text
//!  0  i64  first_ts      first record's timestamp (the index key, as in raw blocks)
//!  8  u32  data_len      frame bytes in this block
//! 12  u32  flags         BLOCK_PRIMARY | BLOCK_FRAME
//! 16  u32  count         records in the frame (≥ 1)
//! 20  u32  crc           CRC-32C, seeded by the store's epoch, over bytes 0..20,
//!                        frame_len and the whole frame
//! 24  u32  frame_len     frame bytes in all its blocks
//! 28  u32  reserved      0
//! 32  ...  the frame (or its first part)
//! bs - ceil(count / 8) .. bs
//!          tombstones    bit i of byte i / 8 set: record i is deleted
//! ```
//!
//! A frame larger than its primary block continues in the next blocks (in
//! ring order), each with a raw-style continuation header (timestamp 0,
//! `data_len`, flags `BLOCK_FRAME | BLOCK_CONTINUATION`, the frame's
//! `first_ts` at 16) and up to `bs - 24` frame bytes.
//!
//! The tombstones are outside the checksum: a delete sets one bit with a
//! one-byte write, and a bit is only ever set, so a torn write can at
//! worst leave a delete undone, never show a record that was not written.

use std::borrow::Cow;

use crate::format::{BLOCK_CONTINUATION, BLOCK_HEADER_SIZE, BLOCK_PRIMARY};

/// Flag of blocks that hold (part of) a compressed frame.
pub const BLOCK_FRAME: u32 = 1 << 3;
/// Header of a frame's primary block.
pub const FRAME_HEADER_SIZE: usize = 32;

/// Why blocks do not hold a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("not the primary block of a frame")]
    NotAFrame,
    #[error("frame header out of bounds: {0}")]
    Header(&'static str),
    #[error("continuation block {0} of the frame does not belong to it")]
    Continuation(usize),
    #[error("frame checksum does not match")]
    Checksum,
}

/// Bytes of tombstones a frame of `count` records keeps in its block.
pub fn tombstone_len(count: usize) -> usize {
    count.div_ceil(8)
}

/// Room for frame bytes in a primary block of a frame of `count` records.
pub fn primary_room(bs: usize, count: usize) -> usize {
    bs.saturating_sub(FRAME_HEADER_SIZE + tombstone_len(count))
}

/// Blocks a frame of `frame_len` bytes and `count` records takes.
pub fn blocks_for(bs: usize, frame_len: usize, count: usize) -> usize {
    let first = primary_room(bs, count);
    if frame_len <= first {
        return 1;
    }
    1 + (frame_len - first).div_ceil(bs - BLOCK_HEADER_SIZE)
}

fn crc(seed: u32, header: &[u8], frame_len: u32, frame: &[u8]) -> u32 {
    let c = crc32c::crc32c_append(seed, &header[..20]);
    let c = crc32c::crc32c_append(c, &frame_len.to_le_bytes());
    crc32c::crc32c_append(c, frame)
}

/// The block images of a frame, `blocks_for(..)` blocks of `bs` bytes
/// each (tombstones clear, unused bytes zero), appended to `out`.
pub fn write_blocks(
    out: &mut Vec<u8>,
    frame: &[u8],
    first_ts: i64,
    count: u32,
    seed: u32,
    bs: usize,
) {
    let blocks = blocks_for(bs, frame.len(), count as usize);
    let start = out.len();
    out.resize(start + blocks * bs, 0);
    let first_part = frame.len().min(primary_room(bs, count as usize));
    let b = &mut out[start..start + bs];
    b[0..8].copy_from_slice(&first_ts.to_le_bytes());
    b[8..12].copy_from_slice(&(first_part as u32).to_le_bytes());
    b[12..16].copy_from_slice(&(BLOCK_PRIMARY | BLOCK_FRAME).to_le_bytes());
    b[16..20].copy_from_slice(&count.to_le_bytes());
    b[24..28].copy_from_slice(&(frame.len() as u32).to_le_bytes());
    b[FRAME_HEADER_SIZE..FRAME_HEADER_SIZE + first_part].copy_from_slice(&frame[..first_part]);
    let sum = crc(seed, b, frame.len() as u32, frame);
    b[20..24].copy_from_slice(&sum.to_le_bytes());
    let mut rest = &frame[first_part..];
    for j in 1..blocks {
        let b = &mut out[start + j * bs..start + (j + 1) * bs];
        let take = rest.len().min(bs - BLOCK_HEADER_SIZE);
        b[8..12].copy_from_slice(&(take as u32).to_le_bytes());
        b[12..16].copy_from_slice(&(BLOCK_FRAME | BLOCK_CONTINUATION).to_le_bytes());
        b[16..24].copy_from_slice(&first_ts.to_le_bytes());
        b[BLOCK_HEADER_SIZE..BLOCK_HEADER_SIZE + take].copy_from_slice(&rest[..take]);
        rest = &rest[take..];
    }
}

/// A frame read back from its blocks, checked.
#[derive(Debug)]
pub struct FrameBlocks<'a> {
    pub first_ts: i64,
    pub count: u32,
    /// The frame's bytes (borrowed when it sits in one block).
    pub frame: Cow<'a, [u8]>,
    /// The tombstone bytes of the primary block.
    pub tombstones: &'a [u8],
}

impl FrameBlocks<'_> {
    pub fn is_deleted(&self, i: usize) -> bool {
        self.tombstones
            .get(i / 8)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }
}

/// How many blocks the frame starting at `primary` takes, from its header
/// alone (to know how much to read before `read_frame`).
pub fn frame_blocks(primary: &[u8]) -> Result<usize, BlockError> {
    let (count, frame_len) = primary_fields(primary)?;
    Ok(blocks_for(primary.len(), frame_len, count))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn primary_fields(b: &[u8]) -> Result<(usize, usize), BlockError> {
    let bs = b.len();
    if bs < FRAME_HEADER_SIZE + 2 || u32_at(b, 12) != BLOCK_PRIMARY | BLOCK_FRAME {
        return Err(BlockError::NotAFrame);
    }
    let count = u32_at(b, 16) as usize;
    let frame_len = u32_at(b, 24) as usize;
    let data_len = u32_at(b, 8) as usize;
    if count == 0 || FRAME_HEADER_SIZE + tombstone_len(count) > bs {
        return Err(BlockError::Header("record count"));
    }
    if u32_at(b, 28) != 0 {
        return Err(BlockError::Header("reserved word"));
    }
    if data_len != frame_len.min(primary_room(bs, count)) {
        return Err(BlockError::Header("frame length"));
    }
    Ok((count, frame_len))
}

/// Reads the frame whose blocks are `blocks` (its primary block first,
/// then its continuation blocks in ring order, `bs` bytes each), checking
/// every header and the checksum.
pub fn read_frame(blocks: &[u8], bs: usize, seed: u32) -> Result<FrameBlocks<'_>, BlockError> {
    let primary = blocks.get(..bs).ok_or(BlockError::NotAFrame)?;
    let (count, frame_len) = primary_fields(primary)?;
    let first_ts = i64::from_le_bytes(
        primary[0..8]
            .try_into()
            .map_err(|_| BlockError::NotAFrame)?,
    );
    let span = blocks_for(bs, frame_len, count);
    if blocks.len() < span * bs {
        return Err(BlockError::Header("fewer blocks than the frame needs"));
    }
    let first_part = u32_at(primary, 8) as usize;
    let frame: Cow<[u8]> = if span == 1 {
        Cow::Borrowed(&primary[FRAME_HEADER_SIZE..FRAME_HEADER_SIZE + first_part])
    } else {
        let mut whole = Vec::with_capacity(frame_len);
        whole.extend_from_slice(&primary[FRAME_HEADER_SIZE..FRAME_HEADER_SIZE + first_part]);
        for j in 1..span {
            let b = &blocks[j * bs..(j + 1) * bs];
            let take = u32_at(b, 8) as usize;
            let want = (frame_len - whole.len()).min(bs - BLOCK_HEADER_SIZE);
            if u32_at(b, 12) != BLOCK_FRAME | BLOCK_CONTINUATION
                || b[0..8] != [0; 8]
                || b[16..24] != primary[0..8]
                || take != want
            {
                return Err(BlockError::Continuation(j));
            }
            whole.extend_from_slice(&b[BLOCK_HEADER_SIZE..BLOCK_HEADER_SIZE + take]);
        }
        Cow::Owned(whole)
    };
    if crc(seed, primary, frame_len as u32, &frame) != u32_at(primary, 20) {
        return Err(BlockError::Checksum);
    }
    Ok(FrameBlocks {
        first_ts,
        count: count as u32,
        frame,
        tombstones: &primary[bs - tombstone_len(count)..],
    })
}

/// Where record `i`'s tombstone bit is: the byte's offset in the primary
/// block, and the bit.
pub fn tombstone_at(bs: usize, count: usize, i: usize) -> (usize, u8) {
    (bs - tombstone_len(count) + i / 8, 1 << (i % 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BS: usize = 256;

    fn frame(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn frames_of_every_size_come_back_and_say_how_many_blocks_they_take() {
        for len in [
            1,
            100,
            primary_room(BS, 20),
            primary_room(BS, 20) + 1,
            1000,
            5000,
        ] {
            let f = frame(len);
            let mut out = Vec::new();
            write_blocks(&mut out, &f, 42, 20, 7, BS);
            let span = blocks_for(BS, len, 20);
            assert_eq!(out.len(), span * BS, "{len}");
            assert_eq!(frame_blocks(&out[..BS]), Ok(span));
            let back = read_frame(&out, BS, 7).unwrap();
            assert_eq!(
                (back.first_ts, back.count, &back.frame[..]),
                (42, 20, &f[..])
            );
            assert!((0..20).all(|i| !back.is_deleted(i)));
            assert_eq!(read_frame(&out, BS, 8).unwrap_err(), BlockError::Checksum);
        }
    }

    #[test]
    fn any_flipped_bit_outside_the_tombstones_is_caught() {
        let f = frame(600);
        let mut out = Vec::new();
        write_blocks(&mut out, &f, 9, 30, 1, BS);
        let tombs = BS - tombstone_len(30)..BS;
        let unused = |byte: usize| {
            // Past a continuation block's data: not part of the frame.
            let block = &out[byte / BS * BS..];
            byte >= BS && byte % BS >= BLOCK_HEADER_SIZE + u32_at(block, 8) as usize
        };
        for byte in 0..out.len() {
            if tombs.contains(&byte) || unused(byte) {
                continue;
            }
            let mut bad = out.clone();
            bad[byte] ^= 0x10;
            assert!(read_frame(&bad, BS, 1).is_err(), "byte {byte}");
        }
    }

    #[test]
    fn tombstones_set_a_bit_and_leave_the_frame_valid() {
        let f = frame(50);
        let mut out = Vec::new();
        write_blocks(&mut out, &f, 1, 12, 3, BS);
        for i in [0, 9, 11] {
            let (at, bit) = tombstone_at(BS, 12, i);
            out[at] |= bit;
        }
        let back = read_frame(&out, BS, 3).unwrap();
        let deleted: Vec<usize> = (0..12).filter(|&i| back.is_deleted(i)).collect();
        assert_eq!(deleted, [0, 9, 11]);
    }

    #[test]
    fn raw_blocks_and_zeros_are_not_frames() {
        assert_eq!(frame_blocks(&[0u8; BS]), Err(BlockError::NotAFrame));
        let mut raw = [0u8; BS];
        raw[12..16].copy_from_slice(&(BLOCK_PRIMARY | 2).to_le_bytes());
        assert_eq!(read_frame(&raw, BS, 0).unwrap_err(), BlockError::NotAFrame);
    }
}
