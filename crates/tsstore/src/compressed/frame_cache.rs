//! Decoded frames kept for the next read: one process-wide cache, shared
//! by every compressed store, bounded in bytes (`set_frame_cache_bytes`,
//! 4 MiB by default, 0 turns it off).
//!
//! Why: a point lookup in a compressed store spent most of its time
//! decompressing its frame (tens of microseconds for a block's worth of
//! zstd), and neighbouring lookups (a dashboard reading around a moment,
//! a client walking records one by one) decompressed the same frame again
//! and again; a dashboard re-reading the last hour rebuilt every record
//! of it each time. A frame's first lookup keeps its decompressed body
//! (searching it costs less than rebuilding all its records); a second
//! read, or any range, keeps its records rebuilt, which a lookup then
//! finds by binary search and a range copies out as a raw store's does.
//! A hit costs a comparison of the frame's compressed bytes (which the
//! read reads and verifies anyway).
//!
//! Correct by construction: an entry is used only when the frame object
//! just read has the same compressed bytes, so a frame rewritten in place
//! (a reset, a truncate, the ring wrapping) can never be answered from an
//! older decoding; tombstones are outside the compressed bytes and are
//! read from the frame object each time. Least recently used entries go
//! first; a frame larger than the whole budget is not kept.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::encoding::columns::Unpacked;
use crate::encoding::frame::Body;
use crate::lock::mutex_lock;

/// The cache's budget unless `set_frame_cache_bytes` says otherwise.
pub const DEFAULT_FRAME_CACHE_BYTES: usize = 4 << 20;
/// Bytes the cache may hold (decoded bodies and their compressed copies).
static BUDGET: AtomicUsize = AtomicUsize::new(DEFAULT_FRAME_CACHE_BYTES);
/// Bytes it holds now.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// Sets how many bytes of decoded frames the process keeps (0: none).
/// Takes effect at the next insertion.
pub fn set_frame_cache_bytes(bytes: usize) {
    BUDGET.store(bytes, Ordering::Relaxed);
}

/// Bytes of decoded frames kept now (for memory figures).
pub fn frame_cache_bytes() -> usize {
    HELD.load(Ordering::Relaxed)
}

/// Which frame: its store (the address of its shared state) and place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameKey {
    pub store: usize,
    pub block: u32,
    pub offset: u32,
    pub timestamp: i64,
}

/// What is kept of a frame.
pub(crate) enum Form {
    /// Its decompressed body: a lookup searches it (`columns::find`)
    /// without rebuilding the other records.
    Body(Body),
    /// Every record rebuilt, once the frame is looked up often enough
    /// (`REBUILD_AFTER`) or read by a range: a lookup is a binary search,
    /// a range copies records out.
    Records(Arc<Unpacked>),
}

/// One decoded frame.
pub(crate) struct Decoded {
    key: FrameKey,
    compressed: Box<[u8]>,
    pub form: Form,
    /// Lookups answered from it so far (a kept body is rebuilt whole
    /// once enough lookups have come: `REBUILD_AFTER`).
    lookups: AtomicUsize,
}

/// Lookups a kept body answers by searching it before its records are
/// rebuilt whole. A search costs a few microseconds, rebuilding a
/// frame's records tens of times that: lookups spread over a store (about
/// one per frame) stay searches, a client walking neighbouring records
/// soon gets records copied out (at 8, neighbouring TMY3 lookups took
/// 2.1 µs on average, at 3 1.4 – 1.8 µs; docs/BENCHMARKS.md, issue 33).
pub(crate) const REBUILD_AFTER: usize = 3;

impl Decoded {
    /// Counts one more lookup; true once the body should be rebuilt.
    pub(crate) fn looked_up(&self) -> bool {
        self.lookups.fetch_add(1, Ordering::Relaxed) + 1 >= REBUILD_AFTER
    }

    fn size(&self) -> usize {
        self.compressed.len()
            + match &self.form {
                Form::Body(body) => body.len(),
                Form::Records(records) => records.held_bytes(),
            }
    }
}

static CACHE: Mutex<VecDeque<Arc<Decoded>>> = Mutex::new(VecDeque::new());

/// The decoded body of the frame at `key` whose compressed bytes are
/// `compressed`, if kept.
pub(crate) fn get(key: FrameKey, compressed: &[u8]) -> Option<Arc<Decoded>> {
    if BUDGET.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let mut cache = mutex_lock(&CACHE);
    let at = cache
        .iter()
        .position(|d| d.key == key && *d.compressed == *compressed)?;
    let hit = cache.remove(at)?;
    cache.push_front(Arc::clone(&hit));
    Some(hit)
}

/// Keeps a decoded frame (in place of what was kept of it), dropping the
/// least recently used beyond the budget.
pub(crate) fn put(key: FrameKey, compressed: &[u8], form: Form) -> Arc<Decoded> {
    let decoded = Arc::new(Decoded {
        key,
        compressed: compressed.into(),
        form,
        lookups: AtomicUsize::new(0),
    });
    let budget = BUDGET.load(Ordering::Relaxed);
    if decoded.size() > budget {
        return decoded;
    }
    let mut cache = mutex_lock(&CACHE);
    // The same frame decoded by two reads at once, or rebuilt after a
    // lookup: keep one.
    cache.retain(|d| {
        let same = d.key == key;
        if same {
            HELD.fetch_sub(d.size(), Ordering::Relaxed);
        }
        !same
    });
    HELD.fetch_add(decoded.size(), Ordering::Relaxed);
    cache.push_front(Arc::clone(&decoded));
    while HELD.load(Ordering::Relaxed) > budget {
        let Some(old) = cache.pop_back() else { break };
        HELD.fetch_sub(old.size(), Ordering::Relaxed);
    }
    decoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_needs_the_same_compressed_bytes_and_the_budget_holds() {
        // Keys no other test uses: the cache is process-wide.
        let key = |block| FrameKey {
            store: usize::MAX,
            block,
            offset: 24,
            timestamp: 7,
        };
        let body = |b: &[u8]| Form::Body(Body::Plain(b.into()));
        let kept = |d: Arc<Decoded>| match &d.form {
            Form::Body(Body::Plain(b)) => b.to_vec(),
            Form::Body(Body::Typed { .. }) => unreachable!("only plain bodies are put"),
            Form::Records(r) => r.payloads.clone(),
        };
        put(key(1), b"frame", body(b"decoded"));
        assert_eq!(kept(get(key(1), b"frame").unwrap()), b"decoded");
        assert!(get(key(1), b"other").is_none(), "rewritten frame");
        assert!(get(key(2), b"frame").is_none());
        let records = Unpacked {
            stamps: vec![5],
            ends: vec![7],
            payloads: b"rebuilt".to_vec(),
        };
        put(key(1), b"frame", Form::Records(Arc::new(records)));
        assert_eq!(kept(get(key(1), b"frame").unwrap()), b"rebuilt", "replaced");
        let big = vec![0u8; DEFAULT_FRAME_CACHE_BYTES + 1];
        put(key(3), b"x", body(&big));
        assert!(get(key(3), b"x").is_none(), "larger than the budget");
        assert!(frame_cache_bytes() <= DEFAULT_FRAME_CACHE_BYTES);
    }
}
