//! Checksums: a damaged payload is never served, in stores with checksums;
//! resets start a new checksum epoch.

use std::os::unix::fs::FileExt;
use std::path::Path;

use tsstore::layout::{BLOCK_HEADER_SIZE, OBJECT_HEADER_SIZE};
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

/// The read path copies blocks out of a mapping and verifies each object
/// once per read, a point lookup copying only as far as it walks: damage
/// anywhere in a block, made while the store is open (so no reopen
/// re-reads anything), is still caught by every kind of read.
#[test]
fn damage_inside_an_open_stores_block_is_found_by_every_read() {
    assert!(
        tsstore::read_mapping() || cfg!(target_pointer_width = "32"),
        "this test covers reads out of a mapping"
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        num_blocks: 16,
        data_block_size: 4096,
        index_block_size: 4096,
        data_type: DataType::Binary,
        encoding: tsstore::Encoding::Raw,
    };
    let s = Store::create(dir.path(), "c", cfg).unwrap();
    // 60 objects of 24 + 40 bytes: block 0 holds all; object 40 sits at
    // 24 + 39 × 64 = 2520, beyond a lookup's first 1 KiB step.
    let object = |ts: u64| BLOCK_HEADER_SIZE as u64 + (ts - 1) * (OBJECT_HEADER_SIZE as u64 + 40);
    for ts in 1..=60 {
        s.put(ts, &[ts as u8; 40]).unwrap();
    }
    s.sync().unwrap();
    let before_skips = s.stats().corruption_skips;
    assert_eq!(s.get_by_time(40).unwrap().data, vec![40; 40]);
    flip(dir.path(), object(40) + OBJECT_HEADER_SIZE as u64 + 7); // its payload
    let err = s.get_by_time(40).unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err}");
    assert_eq!(s.get_by_time(41).unwrap().data, vec![41; 40]);
    let all = timestamps(&s);
    assert_eq!(all.len(), 59);
    assert!(!all.contains(&40));
    let mut it = s.iter_range(35, 45);
    let mut seen = Vec::new();
    while let Some(r) = it.next_ref() {
        seen.push(r.unwrap().timestamp());
    }
    assert_eq!(seen, vec![35, 36, 37, 38, 39, 41, 42, 43, 44, 45]);
    let newest: Vec<i64> = s
        .newest(25)
        .unwrap()
        .iter()
        .map(|r| r.timestamp())
        .collect();
    assert!(!newest.contains(&40) && newest.len() == 25);
    // A broken header (object 50's length) ends the walk of its block.
    flip(dir.path(), object(50) + 9);
    assert!(matches!(s.get_by_time(55), Err(Error::Corrupt(_))));
    assert_eq!(s.get_by_time(45).unwrap().data, vec![45; 40]);
    assert_eq!(
        timestamps(&s),
        (1..=49).filter(|&t| t != 40).collect::<Vec<_>>()
    );
    assert!(s.stats().corruption_skips > before_skips);
}
