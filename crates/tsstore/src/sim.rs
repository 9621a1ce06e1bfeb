//! A simulated disk for crash tests, behind the `StoreFile` trait.
//!
//! Each `SimFile` remembers what was made durable by `sync_data` and which
//! writes came after. `crash` then plays a power cut: every unsynced write
//! independently survives or is lost, and one of them may be torn (only a
//! prefix of whole 512-byte sectors reaches the disk). A shared write
//! budget lets a test stop "the process" at any write inside an operation:
//! once spent, every I/O call fails. The same shared state can play a full
//! disk: every `sync_data` fails with `StorageFull` (ENOSPC) until freed.

use std::io;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use crate::io::StoreFile;
use crate::lock::mutex_lock;

/// Granularity of a torn write.
pub const SECTOR: u64 = 512;

/// Writes left before the simulated process dies, and whether the disk is
/// full; shared by a store's files.
#[derive(Debug, Clone)]
pub struct WriteBudget {
    left: Arc<AtomicI64>,
    full: Arc<AtomicBool>,
}

impl Default for WriteBudget {
    /// No writes left: the process is gone until `set` (what a budget
    /// created for a test that sets it at once starts from).
    fn default() -> WriteBudget {
        WriteBudget {
            left: Arc::new(AtomicI64::new(0)),
            full: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl WriteBudget {
    /// No limit.
    pub fn unlimited() -> WriteBudget {
        let budget = WriteBudget::default();
        budget.set(i64::MAX);
        budget
    }

    /// The process dies at the `n`-th write (or sync) from now.
    pub fn set(&self, n: i64) {
        self.left.store(n, Ordering::SeqCst);
    }

    /// From now on every `sync_data` fails with `StorageFull`, as fsync
    /// does when the filesystem cannot place data it accepted (thin
    /// provisioning, delayed allocation). Writes still succeed: a store's
    /// blocks were reserved at creation, so a full disk shows at the sync.
    pub fn fill_disk(&self) {
        self.full.store(true, Ordering::SeqCst);
    }

    /// Room again: syncs succeed.
    pub fn free_disk(&self) {
        self.full.store(false, Ordering::SeqCst);
    }

    fn spend(&self) -> io::Result<()> {
        if self.left.fetch_sub(1, Ordering::SeqCst) <= 0 {
            return Err(io::Error::other("simulated crash: the process is gone"));
        }
        Ok(())
    }

    fn check_room(&self) -> io::Result<()> {
        if self.full.load(Ordering::SeqCst) {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        Ok(())
    }
}

#[derive(Debug)]
struct State {
    durable: Vec<u8>,
    current: Vec<u8>,
    /// Writes since the last sync, oldest first.
    pending: Vec<(u64, Vec<u8>)>,
    bytes_written: u64,
    syncs: u64,
}

/// One simulated file of fixed size.
#[derive(Debug)]
pub struct SimFile {
    state: Mutex<State>,
    budget: WriteBudget,
}

impl SimFile {
    /// A zero-filled, fully durable file of `len` bytes.
    pub fn new(len: usize, budget: WriteBudget) -> Arc<SimFile> {
        Arc::new(SimFile {
            state: Mutex::new(State {
                durable: vec![0; len],
                current: vec![0; len],
                pending: Vec::new(),
                bytes_written: 0,
                syncs: 0,
            }),
            budget,
        })
    }

    /// Bytes written so far (for write amplification).
    pub fn bytes_written(&self) -> u64 {
        mutex_lock(&self.state).bytes_written
    }

    /// `sync_data` calls that succeeded so far.
    pub fn syncs(&self) -> u64 {
        mutex_lock(&self.state).syncs
    }

    /// Plays a power cut with the pseudo-random stream from `seed`: each
    /// unsynced write is kept or lost, and one may be torn at a sector
    /// boundary. Afterwards the file holds only what reached the disk.
    pub fn crash(&self, seed: u64) {
        let mut rng = seed | 1;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut st = mutex_lock(&self.state);
        let pending = std::mem::take(&mut st.pending);
        let mut torn = false;
        for (at, bytes) in pending {
            let r = next();
            let keep = match r % 4 {
                0 => 0,
                1 if !torn && bytes.len() as u64 > SECTOR => {
                    torn = true;
                    // Whole sectors from the write's start, up to a boundary inside it.
                    let boundaries = (at + bytes.len() as u64) / SECTOR - at.div_ceil(SECTOR);
                    if boundaries == 0 {
                        0
                    } else {
                        let b = at.div_ceil(SECTOR) + (next() % boundaries);
                        (b * SECTOR - at) as usize
                    }
                }
                _ => bytes.len(),
            };
            let at = at as usize;
            st.durable[at..at + keep].copy_from_slice(&bytes[..keep]);
        }
        st.current = st.durable.clone();
    }
}

impl StoreFile for SimFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let st = mutex_lock(&self.state);
        let at = offset as usize;
        let src = st
            .current
            .get(at..at + buf.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.budget.spend()?;
        let mut st = mutex_lock(&self.state);
        let at = offset as usize;
        let dst = st
            .current
            .get_mut(at..at + buf.len())
            .ok_or_else(|| io::Error::other("write past the end of a fixed-size file"))?;
        dst.copy_from_slice(buf);
        st.pending.push((offset, buf.to_vec()));
        st.bytes_written += buf.len() as u64;
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.budget.spend()?;
        self.budget.check_room()?;
        let mut st = mutex_lock(&self.state);
        st.durable = st.current.clone();
        st.pending.clear();
        st.syncs += 1;
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        Ok(mutex_lock(&self.state).current.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_writes_survive_a_crash() {
        let f = SimFile::new(2048, WriteBudget::unlimited());
        f.write_all_at(b"abc", 0).unwrap();
        f.sync_data().unwrap();
        f.write_all_at(&[7u8; 1500], 100).unwrap();
        f.crash(42);
        let mut b = [0u8; 3];
        f.read_exact_at(&mut b, 0).unwrap();
        assert_eq!(&b, b"abc");
    }

    #[test]
    fn torn_writes_keep_whole_sectors_only() {
        for seed in 0..200 {
            let f = SimFile::new(4096, WriteBudget::unlimited());
            f.write_all_at(&[9u8; 2000], 100).unwrap();
            f.crash(seed);
            let mut b = vec![0u8; 4096];
            f.read_exact_at(&mut b, 0).unwrap();
            let kept = b.iter().filter(|x| **x == 9).count() as u64;
            // Nothing, everything, or up to a sector boundary.
            assert!(
                kept == 0 || kept == 2000 || (100 + kept).is_multiple_of(SECTOR),
                "{seed}: {kept}"
            );
        }
    }

    #[test]
    fn a_spent_budget_fails_every_write() {
        let budget = WriteBudget::unlimited();
        let f = SimFile::new(64, budget.clone());
        budget.set(1);
        f.write_all_at(b"x", 0).unwrap();
        assert!(f.write_all_at(b"y", 1).is_err());
        assert!(f.sync_data().is_err());
    }

    #[test]
    fn a_full_disk_fails_syncs_until_freed() {
        let budget = WriteBudget::unlimited();
        let f = SimFile::new(64, budget.clone());
        budget.fill_disk();
        f.write_all_at(b"x", 0).unwrap();
        let e = f.sync_data().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        budget.free_disk();
        f.sync_data().unwrap();
    }
}
