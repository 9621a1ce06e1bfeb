//! Checksums: a damaged payload is never served, in stores with checksums;
//! resets start a new checksum epoch.

use std::os::unix::fs::FileExt;
use std::path::Path;

use tsstore::{Config, DataType, Error, Store};

fn store(dir: &Path) -> Store {
    let cfg = Config {
        num_blocks: 8,
        data_block_size: 128,
        index_block_size: 64,
        data_type: DataType::Binary,
        encoding: tsstore::Encoding::Raw,
    };
    Store::create(dir, "c", cfg).unwrap()
}

/// Flips one byte of `data.tsdb` at `at` behind the engine's back.
fn flip(dir: &Path, at: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("c/data.tsdb"))
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x40], at).unwrap();
}

fn timestamps(s: &Store) -> Vec<i64> {
    s.iter().map(|r| r.unwrap().timestamp()).collect()
}

#[test]
fn a_damaged_packed_payload_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    for ts in 1..=3 {
        s.put(ts, &[ts as u8; 10]).unwrap();
    }
    s.close().unwrap();
    // Object 2 starts at 24 + 34 = 58; its payload at 82.
    flip(dir.path(), 82 + 3);
    let s = Store::open(dir.path(), "c").unwrap();
    assert!(s.has_checksums());
    assert_eq!(timestamps(&s), vec![1, 3]);
    assert_eq!(s.newest(5).unwrap().len(), 2);
    let err = s.get_by_time(2).unwrap_err();
    assert!(
        matches!(err, Error::Corrupt(ref m) if m.contains("checksum")),
        "{err}"
    );
    assert_eq!(s.get_by_time(3).unwrap().data, vec![3; 10]);
    assert!(s.stats().corruption_skips >= 3);
}

#[test]
fn a_damaged_spanning_payload_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.put(1, b"before").unwrap();
    s.put(2, &[9u8; 300]).unwrap(); // blocks 1..=3
    s.put(3, b"after").unwrap();
    s.close().unwrap();
    flip(dir.path(), 3 * 128 + 40); // inside the last continuation block
    let s = Store::open(dir.path(), "c").unwrap();
    assert_eq!(timestamps(&s), vec![1, 3]);
    assert!(matches!(s.get_by_time(2), Err(Error::Corrupt(_))));
    let handles: Vec<i64> = s
        .iter()
        .with_data(false)
        .map(|r| r.unwrap().timestamp())
        .collect();
    assert_eq!(handles, vec![1, 3], "verified even without payloads");
}

#[test]
fn a_damaged_header_timestamp_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    for ts in [10, 20, 30] {
        s.put(ts, b"abc").unwrap();
    }
    s.close().unwrap();
    flip(dir.path(), 24 + 27 + 1); // second object's timestamp, second byte
    let s = Store::open(dir.path(), "c").unwrap();
    let got: Vec<_> = s.iter().collect();
    assert!(got.iter().all(|r| {
        r.as_ref()
            .map_or(true, |r| [10, 20, 30].contains(&r.timestamp()))
    }));
    assert!(
        !got.iter()
            .any(|r| r.as_ref().is_ok_and(|r| r.timestamp() == 20))
    );
}

#[test]
fn reset_starts_a_new_checksum_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.put(100, b"old").unwrap();
    s.reset().unwrap();
    s.reset().unwrap();
    s.put(5, b"new").unwrap();
    s.close().unwrap();
    let meta = std::fs::read(dir.path().join("c/meta.tsdb")).unwrap();
    assert_eq!(u32::from_le_bytes(meta[40..44].try_into().unwrap()), 2);
    let s = Store::open(dir.path(), "c").unwrap();
    assert_eq!(s.get_by_time(5).unwrap().data, b"new");
    assert_eq!(s.stats().corruption_skips, 0);
}

#[test]
fn legacy_stores_are_served_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.put(1, b"abc").unwrap();
    s.close().unwrap();
    // Clear the feature bit: the store now reads like one written by ts-store (Go).
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("c/meta.tsdb"))
        .unwrap();
    f.write_all_at(&[0], 37).unwrap();
    flip(dir.path(), 48);
    let s = Store::open(dir.path(), "c").unwrap();
    assert!(!s.has_checksums());
    assert_eq!(s.get_by_time(1).unwrap().data, [b'a' ^ 0x40, b'b', b'c']);
}
