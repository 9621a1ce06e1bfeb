//! `Store::truncate_after` on both encodings: records after the cut go,
//! those at or before it stay byte for byte (also after a reopen), and
//! inserts after the new newest record work again.

use std::sync::{Arc, Mutex};

use tsstore::{CommitEvent, Config, DataType, Encoding, Error, Store, SyncPolicy};

fn raw(dir: &std::path::Path, blocks: u32) -> Store {
    let config = Config {
        num_blocks: blocks,
        data_block_size: 128,
        index_block_size: 64,
        data_type: DataType::Binary,
        encoding: Encoding::Raw,
    };
    Store::create_with(dir, "s", config, SyncPolicy::Never).unwrap()
}

/// 10-byte payloads: three objects fill a 128-byte block.
fn small(ts: i64) -> Vec<u8> {
    (0..10).map(|i| (ts as usize * 7 + i) as u8).collect()
}

/// Spans three 128-byte blocks.
fn large(ts: i64) -> Vec<u8> {
    (0..250).map(|i| (ts as usize * 13 + i) as u8).collect()
}

fn all(s: &Store) -> Vec<(i64, Vec<u8>)> {
    s.iter()
        .map(|r| r.map(|r| (r.timestamp(), r.data)))
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Puts `records`, truncates after `cut`, and checks the result before
/// and after a reopen; returns the reopened store.
fn check_cut(dir: &std::path::Path, s: Store, cut: i64) -> Store {
    let before = all(&s);
    let expect: Vec<_> = before.iter().filter(|(t, _)| *t <= cut).cloned().collect();
    let report = s.truncate_after(cut).unwrap();
    assert_eq!(all(&s), expect, "cut after {cut}");
    let newest = s.stats().newest_timestamp;
    assert_eq!(report.newest_timestamp, newest);
    assert!(newest.is_none_or(|n| n <= cut));
    s.close().unwrap();
    let s = Store::open_with(dir, "s", SyncPolicy::Never).unwrap();
    assert_eq!(all(&s), expect, "cut after {cut}, reopened");
    assert_eq!(s.stats().newest_timestamp, newest);
    s
}

/// Inserts after the cut go in, and nothing removed comes back with them.
fn check_inserts_after(dir: &std::path::Path, s: Store) {
    let mut expect = all(&s);
    let newest = s.stats().newest_timestamp.unwrap_or(0);
    if newest > 0 {
        assert!(matches!(
            s.put(newest, b"x"),
            Err(Error::TimestampOutOfOrder { .. })
        ));
    }
    for k in 1..=7 {
        let ts = newest + k;
        let p = if k == 4 { large(ts) } else { small(ts) };
        s.put(ts, &p).unwrap();
        expect.push((ts, p));
    }
    let h = s.put_now(b"now").unwrap();
    expect.push((h.timestamp, b"now".to_vec()));
    // A small ring may have given up its oldest records for these.
    let got = all(&s);
    assert!(got.len() >= 8 && expect.ends_with(&got), "{got:?}");
    s.close().unwrap();
    let s = Store::open_with(dir, "s", SyncPolicy::Never).unwrap();
    assert_eq!(all(&s), got);
}

#[test]
fn raw_cuts_in_a_packed_block_and_at_its_boundary() {
    for cut in [5_000, 5_500, 6_000, 6_001, 1_000, 9_999] {
        let dir = tempfile::tempdir().unwrap();
        let s = raw(dir.path(), 16);
        for i in 1..=10 {
            s.put(i * 1_000, &small(i)).unwrap();
        }
        let s = check_cut(dir.path(), s, cut);
        check_inserts_after(dir.path(), s);
    }
}

#[test]
fn raw_report_counts_what_went() {
    let dir = tempfile::tempdir().unwrap();
    let s = raw(dir.path(), 16);
    for i in 1..=10 {
        s.put(i * 1_000, &small(i)).unwrap();
    }
    // Blocks hold 1-3, 4-6, 7-9, 10: the cut after 5 000 drops 6 000 from
    // its block and two blocks whole.
    let report = s.truncate_after(5_500).unwrap();
    assert_eq!(report.removed_records, Some(5));
    assert_eq!(report.removed_blocks, 2);
    assert_eq!(report.newest_timestamp, Some(5_000));
    let nothing = s.truncate_after(5_000).unwrap();
    assert_eq!(nothing.removed_records, Some(0));
    assert_eq!(nothing.removed_blocks, 0);
    assert_eq!(nothing.newest_timestamp, Some(5_000));
    assert_eq!(s.stats().object_count, Some(5));
}

#[test]
fn raw_spanning_objects_stay_or_go_whole() {
    // small 1, 2 | large 3 (3 blocks) | small 4, 5, 6 | large 7 | small 8
    for cut in [2_500, 3_000, 3_500, 4_000, 6_500, 7_000, 7_500] {
        let dir = tempfile::tempdir().unwrap();
        let s = raw(dir.path(), 16);
        for i in 1..=8 {
            let p = if i == 3 || i == 7 { large(i) } else { small(i) };
            s.put(i * 1_000, &p).unwrap();
        }
        let s = check_cut(dir.path(), s, cut);
        check_inserts_after(dir.path(), s);
    }
}

#[test]
fn raw_deleted_neighbours_stay_deleted_and_keep_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let s = raw(dir.path(), 16);
    for i in 1..=9 {
        s.put(i * 1_000, &small(i)).unwrap();
    }
    s.delete_by_time(4_000).unwrap();
    s.delete_by_time(5_000).unwrap();
    s.delete_by_time(7_000).unwrap();
    let s = check_cut(dir.path(), s, 5_000);
    // The deleted 5 000 is still the newest timestamp for ordering.
    assert_eq!(s.stats().newest_timestamp, Some(5_000));
    assert!(matches!(s.get_by_time(4_000), Err(Error::NotFound(_))));
    check_inserts_after(dir.path(), s);
}

#[test]
fn raw_wrapped_ring() {
    for cut in [0, 40_000, 52_000, 55_000, 58_500, 60_000] {
        let dir = tempfile::tempdir().unwrap();
        let s = raw(dir.path(), 8);
        // 60 records through 8 blocks: the ring wrapped many times.
        for i in 1..=60 {
            let p = if i % 11 == 0 { large(i) } else { small(i) };
            s.put(i * 1_000, &p).unwrap();
        }
        let s = check_cut(dir.path(), s, cut);
        check_inserts_after(dir.path(), s);
    }
}

#[test]
fn raw_cut_everything_and_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = raw(dir.path(), 16);
    for i in 1..=10 {
        s.put(i * 1_000, &small(i)).unwrap();
    }
    let report = s.truncate_after(10_000).unwrap();
    assert_eq!(report.removed_blocks, 0);
    assert_eq!(report.removed_records, Some(0));
    let s = check_cut(dir.path(), s, 999);
    assert_eq!(s.stats().newest_timestamp, None);
    assert_eq!(s.truncate_after(5).unwrap().newest_timestamp, None);
    // An empty store takes any timestamp again.
    s.put(1, b"first").unwrap();
    check_inserts_after(dir.path(), s);
}

#[test]
fn a_far_future_record_is_rewound() {
    for encoding in [Encoding::Raw, Encoding::Compressed] {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            num_blocks: 32,
            data_type: DataType::Json,
            encoding,
            ..Config::default()
        };
        let s = Store::create(dir.path(), "s", config).unwrap();
        let now = tsstore::now_ns();
        s.put(now - 1_000, b"{\"a\":1}").unwrap();
        s.put(i64::MAX, b"{\"a\":2}").unwrap();
        assert!(s.put_now(b"{}").is_err());
        let report = s.truncate_after(now).unwrap();
        assert_eq!(report.newest_timestamp, Some(now - 1_000));
        let h = s.put_now(b"{\"a\":3}").unwrap();
        assert!(h.timestamp >= now && h.timestamp < i64::MAX);
        assert_eq!(s.iter().count(), 2);
        s.close().unwrap();
    }
}

#[test]
fn read_only_stores_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let s = raw(dir.path(), 16);
    s.put(1_000, b"x").unwrap();
    s.close().unwrap();
    let r = Store::open_read_only(dir.path(), "s").unwrap();
    assert!(matches!(r.truncate_after(0), Err(Error::ReadOnly(_))));
    assert_eq!(r.iter().count(), 1);
}

#[test]
fn stores_without_checksums_are_truncated_too() {
    let dir = tempfile::tempdir().unwrap();
    let s = raw(dir.path(), 16);
    s.close().unwrap();
    // As ts-store (Go) writes them: feature bit 0 clear.
    let meta = dir.path().join("s").join("meta.tsdb");
    let mut bytes = std::fs::read(&meta).unwrap();
    bytes[37] = 0;
    std::fs::write(&meta, bytes).unwrap();
    let s = Store::open_with(dir.path(), "s", SyncPolicy::Never).unwrap();
    assert!(!s.has_checksums());
    for i in 1..=12 {
        let p = if i == 5 { large(i) } else { small(i) };
        s.put(i * 1_000, &p).unwrap();
    }
    let s = check_cut(dir.path(), s, 8_500);
    check_inserts_after(dir.path(), s);
}

#[test]
fn watchers_and_callbacks_are_told() {
    for encoding in [Encoding::Raw, Encoding::Compressed] {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            num_blocks: 32,
            encoding,
            ..Config::default()
        };
        let s = Store::create(dir.path(), "s", config).unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&events);
        let _guard = s
            .on_commit(Box::new(move |e| seen.lock().unwrap().push(e)))
            .unwrap();
        let watch = s.commits();
        for i in 1..=5 {
            s.put(i * 1_000, b"{}").unwrap();
        }
        let state = watch.current();
        s.truncate_after(5_000).unwrap(); // nothing newer: no event
        s.truncate_after(3_000).unwrap();
        assert!(matches!(
            watch.wait_past(state, std::time::Duration::ZERO),
            tsstore::Wake::Truncated(st) if st.truncations == 1
        ));
        let last = *events.lock().unwrap().last().unwrap();
        assert!(matches!(
            last,
            CommitEvent::Truncated { newest: Some(3_000), state } if state.truncations == 1
        ));
        s.close().unwrap();
    }
}

#[test]
fn an_iterator_across_a_truncate_stays_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = raw(dir.path(), 32);
    for i in 1..=40 {
        s.put(i * 1_000, &small(i)).unwrap();
    }
    let mut forward = s.iter();
    let mut backward = s.iter_range_rev(i64::MIN, i64::MAX);
    let mut got: Vec<i64> = (0..5)
        .map(|_| forward.next().unwrap().unwrap().timestamp())
        .collect();
    let mut back: Vec<i64> = (0..5)
        .map(|_| backward.next().unwrap().unwrap().timestamp())
        .collect();
    s.truncate_after(20_500).unwrap();
    for ts in 41..45 {
        s.put(20_000 + ts, &small(ts)).unwrap();
    }
    got.extend(forward.map(|r| r.unwrap().timestamp()));
    back.extend(backward.map(|r| r.unwrap().timestamp()));
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    assert_eq!(
        got[..20],
        (1..=20).map(|i| i * 1_000).collect::<Vec<_>>()[..]
    );
    // The reverse iterator had passed 36 000 when the cut came; it goes
    // on below that, and finds every kept record.
    assert!(back.windows(2).all(|w| w[0] > w[1]), "{back:?}");
    assert!(back.ends_with(&(1..=20).rev().map(|i| i * 1_000).collect::<Vec<_>>()));
}

fn compressed(dir: &std::path::Path) -> Store {
    let config = Config {
        num_blocks: 48,
        data_block_size: 512,
        index_block_size: 64,
        data_type: DataType::Json,
        encoding: Encoding::Compressed,
    };
    Store::create_with(dir, "s", config, SyncPolicy::Never).unwrap()
}

fn reading(i: i64) -> Vec<u8> {
    format!(
        r#"{{"t":{},"h":{},"room":"r{}"}}"#,
        20 + i % 7,
        40 + i % 13,
        i % 3
    )
    .into_bytes()
}

#[test]
fn compressed_cuts_inside_frames_and_staged_records() {
    for (cut, frame_first) in [
        (150_000, true),
        (150_000, false),
        (300_500, false),
        (40_000, true),
        (1, true),
        (299_000, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let s = compressed(dir.path());
        for i in 1..=300 {
            s.put(i * 1_000, &reading(i)).unwrap();
        }
        if frame_first {
            s.frame_staged().unwrap();
        }
        s.delete_by_time(120_000).unwrap();
        s.settle();
        let s = check_cut(dir.path(), s, cut);
        let mut expect = all(&s);
        let newest = s.stats().newest_timestamp.unwrap_or(0);
        assert!(newest <= cut);
        for k in 1..=50 {
            let ts = newest + k;
            s.put(ts, &reading(ts)).unwrap();
            expect.push((ts, reading(ts)));
        }
        s.frame_staged().unwrap();
        assert_eq!(all(&s), expect, "cut {cut}");
        s.close().unwrap();
        let s = Store::open_with(dir.path(), "s", SyncPolicy::Never).unwrap();
        assert_eq!(all(&s), expect, "cut {cut}, reopened");
        for (ts, data) in expect.iter().step_by(17) {
            assert_eq!(&s.get_by_time(*ts).unwrap().data, data);
        }
    }
}
