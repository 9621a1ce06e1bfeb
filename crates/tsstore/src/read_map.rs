//! `ReadMap`: a read-only shared mapping of a ring's data file, so a read
//! copies block bytes from memory instead of making a `pread` per block.
//!
//! Why: a 4 KiB `pread` from the page cache costs about a microsecond on
//! the small machines tsstore runs on, more than the rest of a point
//! lookup; a copy out of a mapping costs a few tens of nanoseconds. The
//! mapping is `MAP_SHARED` and the writer keeps writing with `pwrite`:
//! Linux keeps both views of one page cache page coherent, so a read sees
//! what a `pread` at the same moment would.
//!
//! What stays the same: reads still copy the bytes out (never decode in
//! place) and still check afterwards that the writer did not reclaim the
//! blocks meanwhile (`ring::query`), so a copy racing the writer is
//! thrown away exactly as a racing `pread` was; checksums are verified on
//! the copy.
//!
//! The cost, as with every mmap-based store (LMDB, SQLite's `mmap_size`):
//! an I/O error while the kernel pages the file in arrives as `SIGBUS`,
//! not as an error, and so does a file shortened by another process.
//! `set_read_mapping(false)` turns mapping off for rings opened afterwards
//! (the server's `read_mapping` setting) where a failing SD card must come
//! back as an error instead. Only 64-bit targets map: on 32-bit ones the
//! address space is too small for many large stores.

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether rings opened from now on map their data file.
static READ_MAPPING: AtomicBool = AtomicBool::new(cfg!(target_pointer_width = "64"));

/// Turns mapped reads on or off for rings opened afterwards (open rings
/// keep what they have). Off: every read is a `pread`. 32-bit targets
/// never map.
pub fn set_read_mapping(on: bool) {
    READ_MAPPING.store(on && cfg!(target_pointer_width = "64"), Ordering::Relaxed);
}

/// Whether rings opened now map their data file.
pub fn read_mapping() -> bool {
    READ_MAPPING.load(Ordering::Relaxed)
}

/// A read-only, shared mapping of the first `len` bytes of a file.
#[derive(Debug)]
pub(crate) struct ReadMap {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value until drop;
// reads copy out of it (see `copy_to`), so sharing the pointer between
// threads shares nothing mutable of ours.
unsafe impl Send for ReadMap {}
// SAFETY: as for Send.
unsafe impl Sync for ReadMap {}

impl ReadMap {
    /// Maps `len` bytes of `file` (which must be at least that long), or
    /// `None` when mapping is off or the system refuses (the caller then
    /// reads with `pread`).
    pub(crate) fn new(file: &File, len: u64) -> Option<ReadMap> {
        use std::os::fd::AsRawFd;
        if !read_mapping() || len == 0 {
            return None;
        }
        let len = usize::try_from(len).ok()?;
        // SAFETY: a fresh mapping chosen by the kernel (no address given),
        // read-only; the descriptor is valid for the call and the mapping
        // stays valid after it is closed.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        Some(ReadMap {
            ptr: ptr as *const u8,
            len,
        })
    }

    /// Copies `buf.len()` bytes from `offset`; false (nothing copied) when
    /// the range is not inside the mapping.
    pub(crate) fn copy_to(&self, buf: &mut [u8], offset: u64) -> bool {
        let Ok(offset) = usize::try_from(offset) else {
            return false;
        };
        if offset
            .checked_add(buf.len())
            .is_none_or(|end| end > self.len)
        {
            return false;
        }
        // SAFETY: the source range lies inside the live mapping (checked
        // above) and cannot overlap `buf`, which is ours. The writer may
        // change these bytes through the page cache during the copy; the
        // caller treats them as untrusted (bounds-checked decoding,
        // checksums, the reclaim check after reading), as it would a
        // `pread` that raced the same write.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.add(offset), buf.as_mut_ptr(), buf.len());
        }
        true
    }
}

impl Drop for ReadMap {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned; no borrow of the
        // mapping outlives `self` (copy_to hands out copies only).
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn a_mapping_sees_later_pwrites_and_refuses_ranges_outside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [0u8; 8192]).unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let Some(map) = ReadMap::new(&file, 8192) else {
            assert!(!read_mapping(), "mapping is on but mmap failed");
            return;
        };
        file.write_all_at(b"fresh", 4095).unwrap();
        let mut buf = [0u8; 5];
        assert!(map.copy_to(&mut buf, 4095));
        assert_eq!(&buf, b"fresh");
        assert!(!map.copy_to(&mut buf, 8190));
        assert!(!map.copy_to(&mut buf, u64::MAX));
    }
}
