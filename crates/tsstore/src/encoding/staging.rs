//! The staging log: where a compressed store keeps the records it has
//! acknowledged but not yet framed, so that they survive a crash.
//!
//! Entries are appended from offset 0 of the staging area, each a raw
//! record with its checksum:
//!
//! ```text
//!  0  i64  timestamp
//!  8  u32  len
//! 12  u32  flags      bit 0: deleted (outside the checksum, set in place)
//! 16  u32  crc        CRC-32C of timestamp, len and payload, seeded by
//!                     the store's epoch (the raw object checksum)
//! 20  u32  reserved   0
//! 24  ...  payload, then the next entry
//! ```
//!
//! The writer never rewrites an entry. When the area is full it frames
//! every staged record into ring blocks, makes them durable, and starts
//! over at offset 0 (a new lap). Replay walks entries from 0 while they
//! verify and their timestamps increase: a new lap's entries end where an
//! older lap's (older timestamps) or a torn write begin. Entries a frame
//! already holds (timestamp not after the ring's newest) are skipped.

use crate::format::object_checksum;

/// Bytes before each staged payload.
pub const ENTRY_HEADER_SIZE: usize = 24;
/// Flag of a deleted staged record.
pub const STAGED_DELETED: u32 = 1;

/// Appends one entry for `payload` at `timestamp` to `out`.
pub fn push_entry(out: &mut Vec<u8>, seed: u32, timestamp: i64, payload: &[u8]) {
    out.extend_from_slice(&timestamp.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&object_checksum(seed, timestamp, payload).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Bytes an entry for a payload of `len` takes.
pub fn entry_len(len: usize) -> usize {
    ENTRY_HEADER_SIZE + len
}

/// One entry found by `replay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// Where the entry starts in the area (its flags are at `offset + 12`).
    pub offset: usize,
    pub timestamp: i64,
    pub payload: std::ops::Range<usize>,
    pub deleted: bool,
}

/// The entries of the current lap in `area` that are newer than `after`
/// (the ring's newest timestamp), and the offset where the next entry
/// goes (the end of the lap's last valid entry).
pub fn replay(area: &[u8], seed: u32, after: i64) -> (Vec<Staged>, usize) {
    let mut found = Vec::new();
    let mut at = 0;
    let mut prev = i64::MIN;
    while at + ENTRY_HEADER_SIZE <= area.len() {
        let h = &area[at..at + ENTRY_HEADER_SIZE];
        let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let ts = i64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
        let len = word(8) as usize;
        let Some(end) = (at + ENTRY_HEADER_SIZE).checked_add(len) else {
            break;
        };
        if ts <= prev || ts <= 0 || end > area.len() || word(20) != 0 {
            break;
        }
        let payload = at + ENTRY_HEADER_SIZE..end;
        if object_checksum(seed, ts, &area[payload.clone()]) != word(16) {
            break;
        }
        if ts > after {
            found.push(Staged {
                offset: at,
                timestamp: ts,
                payload,
                deleted: word(12) & STAGED_DELETED != 0,
            });
        }
        prev = ts;
        at = end;
    }
    (found, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: u32 = 0x5eed;

    fn lap(entries: &[(i64, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (ts, p) in entries {
            push_entry(&mut out, SEED, *ts, p);
        }
        out
    }

    fn stamps(area: &[u8], after: i64) -> Vec<i64> {
        replay(area, SEED, after)
            .0
            .iter()
            .map(|s| s.timestamp)
            .collect()
    }

    #[test]
    fn replay_finds_the_lap_and_where_to_append() {
        let mut area = lap(&[(10, b"a"), (11, b"bb"), (12, b"")]);
        let end = area.len();
        area.resize(4096, 0);
        let (found, next) = replay(&area, SEED, 0);
        assert_eq!(next, end);
        assert_eq!(found.len(), 3);
        assert_eq!(&area[found[1].payload.clone()], b"bb");
        // Entries already framed are skipped, not the end of the lap.
        assert_eq!(stamps(&area, 11), [12]);
        assert_eq!(replay(&area, SEED + 1, 0).0, []);
    }

    #[test]
    fn a_new_lap_ends_where_the_old_one_shows_through() {
        let old: Vec<(i64, Vec<u8>)> = (1..=50).map(|t| (t, vec![t as u8; 30])).collect();
        let old_refs: Vec<(i64, &[u8])> = old.iter().map(|(t, p)| (*t, p.as_slice())).collect();
        let mut area = lap(&old_refs);
        area.resize(8192, 0);
        let new = lap(&[(100, b"new one"), (101, b"new two")]);
        area[..new.len()].copy_from_slice(&new);
        assert_eq!(stamps(&area, 50), [100, 101]);
        // Torn: the second new entry only half written.
        let mut torn = area.clone();
        let half = entry_len(7) + entry_len(7) / 2;
        torn[half..new.len()].copy_from_slice(&lap(&old_refs)[half..new.len()]);
        assert_eq!(stamps(&torn, 50), [100]);
    }

    #[test]
    fn damage_stops_the_walk_and_a_delete_flag_does_not() {
        let mut area = lap(&[(1, b"one"), (2, b"two"), (3, b"three")]);
        area[12 + entry_len(3)] |= STAGED_DELETED as u8;
        let (found, _) = replay(&area, SEED, 0);
        assert_eq!(
            found.iter().map(|s| s.deleted).collect::<Vec<_>>(),
            [false, true, false]
        );
        for byte in 0..area.len() {
            let flags = [12, 12 + entry_len(3), 12 + 2 * entry_len(3)];
            if flags.iter().any(|&f| (f..f + 4).contains(&byte)) {
                continue;
            }
            let mut bad = area.clone();
            bad[byte] ^= 0x04;
            assert!(replay(&bad, SEED, 0).0.len() < 3, "byte {byte}");
        }
    }
}
