//! Checkpoints: the head block's header, the index entries that changed
//! (tracked per block in `DirtyBits`) and the meta header, written in the
//! order that keeps a crash between any two of them recoverable.

use super::{Ctx, Writer};
use crate::error::Result;
use crate::ring::index::RingIndex;

/// Index entries serialized per `pwrite` at a checkpoint (bounds the scratch buffer).
const INDEX_CHUNK_ENTRIES: usize = 4096;

/// Which index entries changed since the last checkpoint; one bit per block.
#[derive(Debug)]
pub(super) struct DirtyBits {
    words: Vec<u64>,
}

impl DirtyBits {
    pub(super) fn new(n: u32) -> DirtyBits {
        DirtyBits {
            words: vec![0; (n as usize).div_ceil(64)],
        }
    }

    pub(super) fn mark(&mut self, phys: u32) {
        self.words[phys as usize / 64] |= 1 << (phys % 64);
    }

    pub(super) fn mark_span(&mut self, first: u32, span: u32, n: u32) {
        for j in 0..span {
            self.mark(((first as u64 + j as u64) % n as u64) as u32);
        }
    }

    /// Takes every set bit as maximal runs `[start, end)`, clearing them.
    pub(super) fn take_runs(&mut self) -> Vec<(usize, usize)> {
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for (w, word) in self.words.iter_mut().enumerate() {
            let mut bits = std::mem::take(word);
            while bits != 0 {
                let b = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                match runs.last_mut() {
                    Some(run) if run.1 == b => run.1 = b + 1,
                    _ => runs.push((b, b + 1)),
                }
            }
        }
        runs
    }
}

impl Writer {
    /// Writes the head block header, changed index entries and the meta
    /// header, then (with `durable`) makes them durable.
    ///
    /// Order matters for a crash in the middle: entries of live blocks go
    /// first (the previous meta header's live range can only see them as
    /// out-of-order blocks at its tail, which recovery drops), then the meta
    /// header, and only then the zero entries of blocks that left the ring,
    /// which the previous header would still count as live.
    pub fn checkpoint(&mut self, ctx: &Ctx, durable: bool) -> Result<()> {
        self.flush(ctx, true)?;
        if durable {
            ctx.data.sync_data()?;
        }
        let ring = crate::lock::read_lock(ctx.ring);
        if ring.len() == 0 {
            // ts-store marks an empty store with a zero entry at the tail.
            self.dirty_index.mark(ring.tail());
        }
        let runs = self.dirty_index.take_runs();
        let mut meta = self.meta;
        meta.tail_block = ring.tail();
        meta.live_blocks = ring.len();
        meta.head_block = ring.head_phys().unwrap_or(ring.tail());
        meta.write_offset = if self.head_open && ring.len() > 0 {
            self.write_offset
        } else {
            0
        };
        let written = (|| {
            write_entries(ctx, &ring, &runs, true)?;
            if durable {
                ctx.index.sync_data()?;
            }
            ctx.meta.write_all_at(&meta.encode(), 0)?;
            if durable {
                ctx.meta.sync_data()?;
            }
            write_entries(ctx, &ring, &runs, false)
        })();
        if let Err(e) = written {
            for &(start, end) in &runs {
                self.dirty_index
                    .mark_span(start as u32, (end - start) as u32, self.n);
            }
            return Err(e);
        }
        self.remember_checkpoint(&ring);
        self.dirty = false;
        Ok(())
    }
}

/// Writes the entries in `runs` of blocks that are (`live`) or are not in
/// the live range, at most `INDEX_CHUNK_ENTRIES` per write. Continuation
/// and dead blocks get an all-zero entry.
fn write_entries(ctx: &Ctx, ring: &RingIndex, runs: &[(usize, usize)], live: bool) -> Result<()> {
    let mut buf = Vec::new();
    for &(start, end) in runs {
        let mut p = start;
        while p < end {
            if ring.is_live(p as u32) != live {
                p += 1;
                continue;
            }
            let first = p;
            buf.clear();
            while p < end && ring.is_live(p as u32) == live && p - first < INDEX_CHUNK_ENTRIES {
                let key = if live { ring.key_of(p as u32) } else { 0 };
                let entry = if key > 0 {
                    crate::format::IndexEntry {
                        timestamp: key,
                        block_num: p as u32,
                    }
                } else {
                    crate::format::IndexEntry::default()
                };
                let at = buf.len();
                buf.resize(at + crate::format::INDEX_ENTRY_SIZE, 0);
                entry.encode_into(&mut buf[at..]);
                p += 1;
            }
            ctx.index
                .write_all_at(&buf, first as u64 * crate::format::INDEX_ENTRY_SIZE as u64)?;
        }
    }
    Ok(())
}
