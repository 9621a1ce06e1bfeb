//! Opening a store: rebuild the in-memory state from the checkpoint (meta
//! pointers and index entries) and recover what was written after it.
//!
//! The meta header and the index are a *checkpoint*, written at sync
//! points; the objects in `data.tsdb` are the log. In a store with
//! checksums, open therefore
//! 1. takes the live range from the meta pointers and live block count,
//!    dropping leading index entries that are zero or out of order: blocks
//!    the writer reclaimed or reused after the checkpoint, whose new
//!    entries a crash let reach the index before the next meta header;
//! 2. walks the head block to its end, verifying every object, and then the
//!    blocks after it in ring order, accepting objects while their
//!    structure holds, their timestamps keep increasing and their checksum
//!    verifies (with the current reset epoch's seed). The first object that
//!    fails ends the log; stale blocks from an earlier lap fail on
//!    timestamp order, stale ones from before a reset on the checksum;
//! 3. drops tail blocks that were already overwritten when the process
//!    stopped (their header no longer matches their index entry).
//!
//! Stores without checksums (written by ts-store (Go)) are trusted as their
//! pointers say, as ts-store does.

use crate::block::{ObjectWalk, block_end, gather_span};
use crate::error::{Error, Result};
use crate::format::{
    BLOCK_HEADER_SIZE, BLOCK_PRIMARY, BlockHeader, Encoding, INDEX_ENTRY_SIZE, IndexEntry, Meta,
    OBJECT_HEADER_SIZE, blocks_for, stored_checksum,
};
use crate::io::StoreFile;
use crate::ring::index::RingIndex;
use crate::ring::writer::Writer;

/// The state of an opened store, and whether recovery changed anything
/// that must be checkpointed before the store is used.
pub(crate) struct Loaded {
    pub ring: RingIndex,
    pub writer: Writer,
    pub recovered: bool,
}

/// What a walk over one primary block accepted.
struct BlockScan {
    first_ts: i64,
    last_obj: u32,
    end: usize,
    newest: i64,
    live: u32,
    /// Set when the block's first object spans blocks.
    span: Option<u32>,
    /// A checkpointed object failed its checksum and was skipped.
    damaged: bool,
    /// The block header's link to the object before it (kept when the
    /// header is rewritten).
    link: i64,
}

pub(crate) fn load_state(
    meta: &Meta,
    data: &dyn StoreFile,
    index: &dyn StoreFile,
) -> Result<Loaded> {
    let n = meta.num_blocks;
    let mut raw = vec![0u8; n as usize * INDEX_ENTRY_SIZE];
    index
        .read_exact_at(&mut raw, 0)
        .map_err(|e| Error::Corrupt(format!("cannot read index.tsdb: {e}")))?;
    let entry = |phys: u32| {
        let at = phys as usize * INDEX_ENTRY_SIZE;
        IndexEntry::decode(&raw[at..at + INDEX_ENTRY_SIZE]).timestamp
    };
    let checksums = meta.has_checksums();
    let mut tail = meta.tail_block;
    // Stores with checksums record the live block count; ts-store's mark
    // "empty" with a zero index entry at the tail.
    let empty = if checksums {
        meta.live_blocks == 0
    } else {
        entry(tail) == 0
    };
    let len = if empty {
        0
    } else {
        (meta.head_block + n - tail) % n + 1
    };
    let mut live: Vec<i64> = (0..len)
        .map(|i| entry(((tail as u64 + i as u64) % n as u64) as u32))
        .collect();
    let mut recovered = false;
    if checksums {
        let start = valid_suffix(&live);
        if start > 0 {
            recovered = true;
            tail = ((tail as u64 + start as u64) % n as u64) as u32;
            live.drain(..start);
            if live.is_empty() {
                tail = (meta.head_block + 1) % n;
            }
        }
    }
    let mut ring = RingIndex::new(n);
    ring.load(tail, &live)?;
    let mut writer = Writer::new(*meta);
    ring.set_checksum_seed(writer.checksum_seed());
    writer.set_newest(ring.newest());

    let bs = meta.data_block_size as usize;
    let mut block = vec![0u8; bs];
    // The head block the checkpoint recorded, if it takes more objects.
    let mut head: Option<(u32, BlockScan)> = None;
    if let Some(phys) = ring.head_phys() {
        let key = ring.key_of(phys);
        if key < 0 {
            ring.set_head_count(0, 0);
        } else {
            data.read_exact_at(&mut block, phys as u64 * bs as u64)?;
            let checkpointed = if meta.write_offset as usize >= BLOCK_HEADER_SIZE {
                meta.write_offset as usize
            } else {
                block_end(&block, None)
            };
            let seed = writer.checksum_seed();
            // With checksums the checkpointed objects are verified too, and a
            // damaged one closes the head block (see below): a power cut
            // under `never` can leave the head reused behind a checkpoint
            // that never reached the disk.
            let limit = if seed.is_some() { bs } else { checkpointed };
            let seed = seed.map(|s| (s, meta.encoding));
            let scan = scan_block(&block, phys, key, limit, checkpointed, seed, 0);
            recovered |= scan.end != checkpointed;
            ring.set_head_count(scan.live, scan.end as u32);
            ring.set_newest(scan.newest.max(key));
            writer.set_newest(scan.newest.max(key));
            // Write offset 0 means "nothing more goes into the head block";
            // nor does anything go after a head without one good object.
            // Nothing is appended after damage (its timestamps cannot be
            // trusted to be older), nor to a head holding a spanning object.
            if meta.write_offset != 0 && scan.last_obj != 0 && scan.span.is_none() && !scan.damaged
            {
                let stale = scan.end != checkpointed;
                writer.adopt_head(phys, &block, scan.end as u32, scan.last_obj, stale);
                head = Some((phys, scan));
            }
        }
    }
    if let Some(seed) = writer.checksum_seed() {
        recovered |= scan_forward(
            data,
            &mut ring,
            &mut writer,
            &mut block,
            (seed, meta.encoding),
            &mut head,
        )?;
        recovered |= trim_stale_tail(data, &mut ring, &mut writer, bs)?;
    }
    writer.remember_checkpoint(&ring);
    Ok(Loaded {
        ring,
        writer,
        recovered,
    })
}

/// Start of the longest tail of `live` (index timestamps from the recorded
/// tail) that is a valid index: a primary block first, then primaries with
/// increasing timestamps or continuation (zero) entries.
fn valid_suffix(live: &[i64]) -> usize {
    let mut start = 0;
    let mut prev = 0i64;
    for (j, &ts) in live.iter().enumerate() {
        if ts < 0 {
            start = j + 1;
        } else if ts == 0 {
            if j == start {
                start = j + 1;
            }
        } else if j > start && ts <= prev {
            start = j;
            prev = ts;
        } else {
            prev = ts;
        }
    }
    start
}

/// Walks a primary block up to `limit`. Objects from `log_from` on are the
/// log: each must be newer than `after` and verify, and the first that
/// does not ends it. Objects before `log_from` were checkpointed: one that
/// fails its checksum (damage) is skipped and marks the block `damaged`.
fn scan_block(
    block: &[u8],
    phys: u32,
    first_ts: i64,
    limit: usize,
    log_from: usize,
    seed: Option<(u32, Encoding)>,
    after: i64,
) -> BlockScan {
    let mut scan = BlockScan {
        first_ts,
        last_obj: 0,
        end: BLOCK_HEADER_SIZE,
        newest: 0,
        live: 0,
        span: None,
        damaged: false,
        link: BlockHeader::decode(block).object_ts,
    };
    for found in ObjectWalk::new(block, limit, phys, first_ts) {
        let Ok(found) = found else { break };
        let h = found.header;
        let start = found.offset as usize;
        let in_log = start >= log_from;
        if in_log && h.timestamp <= after {
            break;
        }
        if h.spans() {
            // Verified by the caller, who reads the continuation blocks.
            scan.span = Some(blocks_for(h.data_len as u64, block.len() as u32) as u32);
        } else if let Some((seed, encoding)) = seed {
            let at = start + OBJECT_HEADER_SIZE;
            let payload = &block[at..at + h.data_len as usize];
            if stored_checksum(seed, h.timestamp, payload, encoding) != h.reserved {
                if in_log {
                    break;
                }
                scan.damaged = true;
                scan.end = at + h.data_len as usize;
                continue;
            }
        }
        scan.last_obj = found.offset;
        scan.newest = h.timestamp;
        scan.live += u32::from(!h.is_deleted());
        scan.end = if h.spans() {
            block.len()
        } else {
            start + OBJECT_HEADER_SIZE + h.data_len as usize
        };
        if h.spans() {
            break;
        }
    }
    scan
}

/// Accepts whole blocks after the head while they hold a valid new log:
/// a primary block whose objects are newer than everything before and
/// verify. Returns whether anything was recovered.
fn scan_forward(
    data: &dyn StoreFile,
    ring: &mut RingIndex,
    writer: &mut Writer,
    block: &mut [u8],
    (seed, encoding): (u32, Encoding),
    head: &mut Option<(u32, BlockScan)>,
) -> Result<bool> {
    let n = ring.num_blocks();
    let bs = block.len();
    let mut recovered = false;
    for _ in 0..n {
        let phys = ring.next_free();
        data.read_exact_at(block, phys as u64 * bs as u64)?;
        let hdr = BlockHeader::decode(block);
        if !hdr.starts_objects() || hdr.timestamp <= ring.newest() {
            break;
        }
        let scan = scan_block(
            block,
            phys,
            hdr.timestamp,
            bs,
            BLOCK_HEADER_SIZE,
            Some((seed, encoding)),
            ring.newest(),
        );
        if scan.last_obj == 0 {
            break;
        }
        let span = scan.span.unwrap_or(1);
        // The block names the last object written before it (0: written
        // before links, or nothing before it). Another last object means
        // the tail of the block before was lost: the log ends there, a
        // prefix of what was written, never a log with a hole. Unless
        // nothing is before it: an object that takes the whole ring
        // reclaims the block it links to.
        if hdr.object_ts != 0 && ring.len() > 0 && span < n && hdr.object_ts != ring.newest() {
            break;
        }
        if let Some(k) = scan.span
            && !spanning_object_verifies(data, block, phys, k, n, (seed, encoding))?
        {
            break;
        }
        // The writer reclaimed the tail before writing here; do the same.
        while ring.len() + span > n {
            let (first, freed) = ring.reclaim_tail();
            writer.mark_index_dirty(first, freed);
        }
        let head_end = if scan.span.is_some() {
            0
        } else {
            scan.end as u32
        };
        ring.push_blocks(scan.first_ts, span, scan.live, head_end);
        ring.set_newest(scan.newest);
        writer.mark_index_dirty(phys, span);
        writer.set_newest(scan.newest);
        recovered = true;
        // The block before this one is sealed: its header must say how
        // much it holds (the writer may have died before writing it).
        if let Some((prev, prev_scan)) = head.take() {
            writer.seal_recovered(data, prev, &prev_scan_header(&prev_scan))?;
        }
        writer.drop_head();
        if scan.span.is_none() {
            writer.adopt_head(phys, block, scan.end as u32, scan.last_obj, true);
            *head = Some((phys, scan));
        }
    }
    Ok(recovered)
}

/// Drops tail blocks the writer had already reused when it stopped (a
/// crash can leave the index and meta one step apart): their header no
/// longer carries the timestamp the index has for them. Overwriting goes in
/// ring order, so only the tail end can be affected.
fn trim_stale_tail(
    data: &dyn StoreFile,
    ring: &mut RingIndex,
    writer: &mut Writer,
    bs: usize,
) -> Result<bool> {
    let mut trimmed = false;
    let mut hdr = [0u8; BLOCK_HEADER_SIZE];
    while let Some(key) = ring.oldest() {
        // The head is never stale: recovery just verified it.
        if ring.len() <= 1 {
            break;
        }
        let tail = ring.tail();
        data.read_exact_at(&mut hdr, tail as u64 * bs as u64)?;
        let h = BlockHeader::decode(&hdr);
        if h.starts_objects() && h.timestamp == key {
            break;
        }
        let (first, freed) = ring.reclaim_tail();
        writer.mark_index_dirty(first, freed);
        trimmed = true;
    }
    Ok(trimmed)
}

/// Blocks after the head in which `wipe_orphans` looks for blocks a power
/// cut kept after a lost one: more than a compressed store's framer ever
/// leaves written and not yet durable (`FRAMES_PER_SYNC`), so that a
/// writer that leaves more, up to this many, stays safe with this reader.
pub(crate) const ORPHAN_SCAN_BLOCKS: u32 = 64;

/// Zeroes the header of each of the `ORPHAN_SCAN_BLOCKS` blocks after the
/// recovered head that starts objects newer than the log's newest, then
/// makes that durable; true if there was any.
///
/// Such a block was written after a block the power cut lost, which ended
/// the log (a compressed store's framer lets several frames, each
/// starting a block, share one `fdatasync`). Left in place, it could
/// pass for the successor of a block written later in the lost one's
/// place: a frame written again starts at the same record, so its block
/// header links to an object with the lost one's timestamp. Live blocks
/// after the head (a full ring's tail) are older than the log's newest
/// and never touched. Run on open, before anything is written.
pub(crate) fn wipe_orphans(data: &dyn StoreFile, ring: &RingIndex, bs: usize) -> Result<bool> {
    let n = ring.num_blocks();
    let (first, newest) = (ring.next_free(), ring.newest());
    let mut hdr = [0u8; BLOCK_HEADER_SIZE];
    let mut wiped = false;
    for j in 0..ORPHAN_SCAN_BLOCKS.min(n) {
        let at = ((first as u64 + j as u64) % n as u64) * bs as u64;
        data.read_exact_at(&mut hdr, at)?;
        let h = BlockHeader::decode(&hdr);
        if h.starts_objects() && h.timestamp > newest {
            data.write_all_at(&[0; BLOCK_HEADER_SIZE], at)?;
            wiped = true;
        }
    }
    if wiped {
        data.sync_data()?;
    }
    Ok(wiped)
}

fn prev_scan_header(scan: &BlockScan) -> BlockHeader {
    BlockHeader {
        timestamp: scan.first_ts,
        data_len: (scan.end - BLOCK_HEADER_SIZE) as u32,
        flags: BLOCK_PRIMARY | crate::format::BLOCK_PACKED,
        object_ts: scan.link,
    }
}

/// Reads the continuation blocks of the spanning object starting at
/// `first` (whose block is in `block`) and checks them and its checksum.
fn spanning_object_verifies(
    data: &dyn StoreFile,
    block: &[u8],
    first: u32,
    span: u32,
    n: u32,
    (seed, encoding): (u32, Encoding),
) -> Result<bool> {
    if span > n {
        return Ok(false);
    }
    let bs = block.len();
    let mut blocks = Vec::with_capacity(span as usize * bs);
    blocks.extend_from_slice(block);
    blocks.resize(span as usize * bs, 0);
    for j in 1..span as usize {
        let phys = ((first as u64 + j as u64) % n as u64) * bs as u64;
        data.read_exact_at(&mut blocks[j * bs..(j + 1) * bs], phys)?;
    }
    let Some(Ok(found)) =
        ObjectWalk::new(block, bs, first, BlockHeader::decode(block).timestamp).next()
    else {
        return Ok(false);
    };
    let mut payload = Vec::with_capacity(found.header.data_len as usize);
    if gather_span(&blocks, bs as u32, &found, true, &mut payload).is_err() {
        return Ok(false);
    }
    Ok(stored_checksum(seed, found.header.timestamp, &payload, encoding) == found.header.reserved)
}
