//! A resume point kept on disk: one timestamp (and when it was last
//! written), for the cursors that move with every acknowledgement (a push
//! connection's, a durable reader's, a pull's). Rewriting a JSON file for
//! each ack would cost two fsyncs; this is one 32-byte `pwrite`, so the
//! cursor can be written on every ack and a process crash re-delivers at
//! most what was in flight.
//!
//! Two slots of `SLOT` bytes, written in turn: `magic u32 | seq u32 |
//! cursor i64 | seen_ns i64 | crc32c u32 | 0u32` (little-endian; the CRC
//! covers the 24 bytes before it). A read takes the valid slot with the
//! higher `seq`, so a write torn by a power cut leaves the other one. The
//! file is fsynced at most once per `SYNC_EVERY` and when closed: a power
//! cut may take back that much, a process crash nothing.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MAGIC: u32 = u32::from_le_bytes(*b"TSCU");
const SLOT: usize = 32;
/// The directory of a store's cursor files (outbound connections' and
/// durable readers').
pub const CURSORS_DIR: &str = "cursors";
/// Longest a written cursor may wait for its fsync.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

/// What a cursor file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saved {
    pub cursor: i64,
    /// When it was written (ns since the epoch).
    pub seen_ns: i64,
}

/// An open cursor file.
#[derive(Debug)]
pub struct CursorFile {
    file: File,
    path: PathBuf,
    seq: u32,
    last: Option<Saved>,
    synced_at: Instant,
    dirty: bool,
}

impl CursorFile {
    /// Opens (or creates, mode 0600) the file at `path`; what it holds,
    /// if anything valid.
    pub fn open(path: &Path) -> io::Result<(CursorFile, Option<Saved>)> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        let mut bytes = [0u8; 2 * SLOT];
        let n = read_up_to(&file, &mut bytes)?;
        let best = [0, SLOT]
            .into_iter()
            .filter(|&at| at + SLOT <= n)
            .filter_map(|at| decode(&bytes[at..at + SLOT]))
            .max_by_key(|(seq, _)| *seq);
        let (seq, last) = match best {
            Some((seq, saved)) => (seq, Some(saved)),
            None => (0, None),
        };
        let f = CursorFile {
            file,
            path: path.to_path_buf(),
            seq,
            last,
            synced_at: Instant::now(),
            dirty: false,
        };
        Ok((f, last))
    }

    /// Reads what the file at `path` holds without opening it for
    /// writing (`None`: no file, or nothing valid in it).
    pub fn peek(path: &Path) -> io::Result<Option<Saved>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut bytes = [0u8; 2 * SLOT];
        let n = read_up_to(&file, &mut bytes)?;
        Ok([0, SLOT]
            .into_iter()
            .filter(|&at| at + SLOT <= n)
            .filter_map(|at| decode(&bytes[at..at + SLOT]))
            .max_by_key(|(seq, _)| *seq)
            .map(|(_, s)| s))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value last written.
    pub fn last(&self) -> Option<Saved> {
        self.last
    }

    /// Writes `cursor` (stamped now) into the older slot; fsyncs when the
    /// last fsync is `SYNC_EVERY` old. Writing the value already there is
    /// free.
    pub fn write(&mut self, cursor: i64) -> io::Result<()> {
        if self.last.map(|s| s.cursor) == Some(cursor) {
            return Ok(());
        }
        let saved = Saved {
            cursor,
            seen_ns: tsstore::now_ns(),
        };
        self.seq = self.seq.wrapping_add(1);
        let at = if self.seq.is_multiple_of(2) { 0 } else { SLOT };
        self.file
            .write_all_at(&encode(self.seq, saved), at as u64)?;
        self.last = Some(saved);
        self.dirty = true;
        if self.synced_at.elapsed() >= SYNC_EVERY {
            self.sync()?;
        }
        Ok(())
    }

    /// Makes what was written durable.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
        }
        self.synced_at = Instant::now();
        Ok(())
    }
}

impl Drop for CursorFile {
    fn drop(&mut self) {
        let _ = self.sync();
    }
}

fn read_up_to(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64)? {
            0 => break,
            m => n += m,
        }
    }
    Ok(n)
}

fn encode(seq: u32, s: Saved) -> [u8; SLOT] {
    let mut b = [0u8; SLOT];
    b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    b[4..8].copy_from_slice(&seq.to_le_bytes());
    b[8..16].copy_from_slice(&s.cursor.to_le_bytes());
    b[16..24].copy_from_slice(&s.seen_ns.to_le_bytes());
    let crc = crc32c::crc32c(&b[..24]);
    b[24..28].copy_from_slice(&crc.to_le_bytes());
    b
}

fn decode(b: &[u8]) -> Option<(u32, Saved)> {
    let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let long = |at: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[at..at + 8]);
        i64::from_le_bytes(x)
    };
    if word(0) != MAGIC || word(24) != crc32c::crc32c(&b[..24]) {
        return None;
    }
    Some((
        word(4),
        Saved {
            cursor: long(8),
            seen_ns: long(16),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_valid_slot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        assert_eq!(CursorFile::peek(&path).unwrap(), None);
        let (mut f, saved) = CursorFile::open(&path).unwrap();
        assert_eq!(saved, None);
        for c in [5, 9, 12] {
            f.write(c).unwrap();
        }
        drop(f);
        let (mut f, saved) = CursorFile::open(&path).unwrap();
        assert_eq!(saved.map(|s| s.cursor), Some(12));
        // It moves back too (a reset, a truncate).
        f.write(3).unwrap();
        assert_eq!(CursorFile::peek(&path).unwrap().map(|s| s.cursor), Some(3));
        // A torn newest slot: the one before it is what the file holds.
        let seq = f.seq;
        drop(f);
        let torn_at = if seq.is_multiple_of(2) { 0 } else { SLOT };
        let bytes = std::fs::read(&path).unwrap();
        let mut torn = bytes.clone();
        torn[torn_at + 10] ^= 0xff;
        std::fs::write(&path, &torn).unwrap();
        assert_eq!(CursorFile::peek(&path).unwrap().map(|s| s.cursor), Some(12));
        // Garbage: nothing.
        std::fs::write(&path, [7u8; 64]).unwrap();
        assert_eq!(CursorFile::peek(&path).unwrap(), None);
    }
}
