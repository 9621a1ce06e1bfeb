//! The file operations the engine needs, behind a trait.
//!
//! The engine only ever reads and writes whole ranges at known offsets and
//! asks for durability explicitly, so a small trait covers it. `RealFile`
//! maps it onto positioned syscalls (`pread`/`pwrite`, no shared cursor, so
//! readers and the writer never contend on a file position); tests can put a
//! simulated disk behind the same trait.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::read_map::ReadMap;

/// Positioned I/O on one store file.
pub trait StoreFile: Send + Sync + std::fmt::Debug {
    /// Fills `buf` from `offset`; a short file is an `UnexpectedEof` error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset` (one syscall in the common case).
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes written data durable; metadata only as far as needed to read it back.
    fn sync_data(&self) -> io::Result<()>;
    /// Starts writing back what was written, without waiting: a hint that
    /// a `sync_data` follows soon. Promises nothing about durability.
    fn start_sync(&self) {}
    fn size(&self) -> io::Result<u64>;
}

/// A `StoreFile` on the real filesystem.
#[derive(Debug)]
pub struct RealFile {
    file: File,
    /// Reads inside it copy from memory (`read_map`); others use `pread`.
    map: Option<ReadMap>,
}

impl RealFile {
    pub fn new(file: File) -> RealFile {
        RealFile { file, map: None }
    }

    /// Serves reads of the first `len` bytes from a mapping of the file
    /// (when mapping is on and the system allows it); the file must be
    /// at least `len` long and must not be shortened while open.
    pub fn map_for_reads(&mut self, len: u64) {
        self.map = ReadMap::new(&self.file, len);
    }

    /// Whether reads come from a mapping.
    pub fn is_mapped(&self) -> bool {
        self.map.is_some()
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Reserves `len` bytes of real blocks so later writes cannot fail for
    /// lack of space; falls back to a sparse file where the filesystem
    /// cannot preallocate (tmpfs on old kernels, some FUSE mounts).
    pub fn allocate(&self, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let Ok(len_off) = libc::off_t::try_from(len) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "file size exceeds off_t",
            ));
        };
        // SAFETY: fallocate only reads its integer arguments; the fd is owned by `self.file`.
        let rc = unsafe { libc::fallocate(self.file.as_raw_fd(), 0, 0, len_off) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => self.file.set_len(len),
            _ => Err(err),
        }
    }
}

impl StoreFile for RealFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if self.map.as_ref().is_some_and(|m| m.copy_to(buf, offset)) {
            return Ok(());
        }
        FileExt::read_exact_at(&self.file, buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(&self.file, buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    #[cfg(target_os = "linux")]
    fn start_sync(&self) {
        use std::os::fd::AsRawFd;
        // A hint only: if it fails, `sync_data` does all the work.
        // SAFETY: the descriptor is this file's, open for as long as
        // `self`; sync_file_range reads no memory of ours.
        unsafe {
            libc::sync_file_range(self.file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

/// A file read through, with writes kept in memory over it: how a
/// read-only open lets recovery seal a block header (what a crashed writer
/// left unsaid) without touching the disk. Recovery writes only block
/// headers, at most one per block, so this holds at most
/// `num_blocks × BLOCK_HEADER_SIZE` bytes.
#[derive(Debug)]
pub(crate) struct OverlayFile {
    inner: std::sync::Arc<dyn StoreFile>,
    /// Writes by offset, and the longest one (how far back a write that
    /// overlaps a read can start).
    writes: std::sync::Mutex<(std::collections::BTreeMap<u64, Vec<u8>>, u64)>,
}

impl OverlayFile {
    pub(crate) fn new(inner: std::sync::Arc<dyn StoreFile>) -> OverlayFile {
        OverlayFile {
            inner,
            writes: Default::default(),
        }
    }
}

impl StoreFile for OverlayFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)?;
        let guard = crate::lock::mutex_lock(&self.writes);
        let (writes, longest) = &*guard;
        let end = offset + buf.len() as u64;
        for (&at, bytes) in writes.range(offset.saturating_sub(*longest)..end) {
            let (from, to) = (at.max(offset), (at + bytes.len() as u64).min(end));
            if from < to {
                buf[(from - offset) as usize..(to - offset) as usize]
                    .copy_from_slice(&bytes[(from - at) as usize..(to - at) as usize]);
            }
        }
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut guard = crate::lock::mutex_lock(&self.writes);
        guard.1 = guard.1.max(buf.len() as u64);
        guard.0.insert(offset, buf.to_vec());
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_writes_show_through_reads_and_never_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [0u8; 64]).unwrap();
        let inner = std::sync::Arc::new(RealFile::new(File::open(&path).unwrap()));
        let overlay = OverlayFile::new(inner);
        overlay.write_all_at(&[1; 8], 10).unwrap();
        overlay.write_all_at(&[2; 4], 30).unwrap();
        overlay.write_all_at(&[3; 2], 12).unwrap();
        let mut buf = [9u8; 24];
        overlay.read_exact_at(&mut buf, 14).unwrap();
        let mut want = [0u8; 24];
        want[..4].fill(1); // 14..18 of the first write
        want[16..20].fill(2); // 30..34
        assert_eq!(buf, want);
        let mut buf = [9u8; 4];
        overlay.read_exact_at(&mut buf, 11).unwrap();
        assert_eq!(buf, [1, 3, 3, 1]);
        assert_eq!(std::fs::read(&path).unwrap(), [0u8; 64]);
    }
}
