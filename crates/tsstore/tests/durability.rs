//! Sync policies: group commit under `Always`, the background flusher
//! under `Interval`, and parsing. (Crash behaviour: kill.rs, model.rs.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use tsstore::{Config, DataType, Error, Store, SyncPolicy};

mod common;

fn cfg() -> Config {
    Config {
        num_blocks: 64,
        data_block_size: 256,
        index_block_size: 64,
        data_type: DataType::Binary,
        encoding: tsstore::Encoding::Raw,
    }
}

fn meta_write_offset(dir: &std::path::Path) -> u32 {
    let meta = std::fs::read(dir.join("s/meta.tsdb")).unwrap();
    u32::from_le_bytes(meta[32..36].try_into().unwrap())
}

#[test]
fn always_acknowledges_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::create_with(dir.path(), "s", cfg(), SyncPolicy::Always).unwrap());
    assert_eq!(store.sync_policy(), SyncPolicy::Always);
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for _ in 0..25 {
                    store.put_now(&[t; 20]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    store
        .put_many((0..10).map(|_| (None, &b"batch"[..])))
        .unwrap();
    store
        .delete_by_time(store.newest(1).unwrap()[0].timestamp())
        .unwrap();
    assert_eq!(store.iter().count(), 8 * 25 + 9);
}

#[test]
fn interval_flusher_checkpoints_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let policy = SyncPolicy::Interval(Duration::from_millis(20));
    let store = Store::create_with(dir.path(), "s", cfg(), policy).unwrap();
    assert_eq!(meta_write_offset(dir.path()), 0);
    store.put(1, b"hello").unwrap();
    // No sync() call: the flusher alone must move the checkpoint.
    let deadline = Instant::now() + Duration::from_secs(10);
    while meta_write_offset(dir.path()) != 24 + 24 + 5 {
        assert!(Instant::now() < deadline, "flusher never checkpointed");
        std::thread::sleep(Duration::from_millis(5));
    }
    store.close().unwrap();
    let store = Store::open_with(dir.path(), "s", SyncPolicy::Never).unwrap();
    assert_eq!(store.get_by_time(1).unwrap().data, b"hello");
}

/// A full disk found by the background flusher (or a compressed store's
/// framer) reaches the next write as `Error::Io` of kind `StorageFull`
/// (the server's 507), once; with room again, writes and syncs succeed.
#[test]
fn a_full_disk_found_by_the_flusher_fails_the_next_write() {
    for encoding in [tsstore::Encoding::Raw, tsstore::Encoding::Compressed] {
        let config = Config {
            encoding,
            data_type: DataType::Json,
            ..cfg()
        };
        let budget = tsstore::sim::WriteBudget::unlimited();
        let files = common::sim_files(&config, &budget, &mut Vec::new());
        let policy = SyncPolicy::Interval(Duration::from_millis(5));
        let store = Store::create_on("s", files, config, policy).unwrap();
        store.put(1, b"{\"v\":1}").unwrap();
        budget.fill_disk();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut ts = 1;
        let err = loop {
            assert!(Instant::now() < deadline, "{encoding:?}: no write failed");
            std::thread::sleep(Duration::from_millis(10));
            ts += 1;
            if let Err(e) = store.put(ts, b"{\"v\":2}") {
                break e;
            }
        };
        match &err {
            Error::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{err}"),
            other => panic!("{encoding:?}: expected an I/O error, got {other}"),
        }
        // The flusher's (or, compressed, the framer's) failure, not the put's own.
        assert!(err.to_string().contains("background"), "{err}");

        budget.free_disk();
        // Failures met between the write above and the freeing may still
        // wait to be reported, one per background thread (a compressed
        // store has three: two flushers and the framer; syncs report the
        // flushers', writes all): each is reported once, then all succeed.
        std::thread::sleep(Duration::from_millis(50));
        let mut attempts = 0;
        while let Err(e) = store.sync() {
            attempts += 1;
            assert!(attempts <= 2, "{encoding:?}: sync still fails: {e}");
        }
        let mut attempts = 0;
        loop {
            ts += 1;
            match store.put(ts, b"{\"v\":3}") {
                Ok(_) => break,
                Err(e) => {
                    attempts += 1;
                    assert!(attempts <= 1, "{encoding:?}: put still fails: {e}");
                }
            }
        }
        store.sync().unwrap();
        store.close().unwrap();
    }
}

#[test]
fn never_leaves_pointers_until_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create_with(dir.path(), "s", cfg(), SyncPolicy::Never).unwrap();
    store.put(1, b"x").unwrap();
    assert_eq!(meta_write_offset(dir.path()), 0, "no checkpoint per insert");
    store.sync().unwrap();
    assert_eq!(meta_write_offset(dir.path()), 24 + 24 + 1);
}

#[test]
fn sync_policies_parse_with_clear_errors() {
    assert_eq!(SyncPolicy::parse("always", 0).unwrap(), SyncPolicy::Always);
    assert_eq!(SyncPolicy::parse("never", 5).unwrap(), SyncPolicy::Never);
    assert_eq!(
        SyncPolicy::parse("interval", 250).unwrap(),
        SyncPolicy::Interval(Duration::from_millis(250))
    );
    let err = SyncPolicy::parse("interval", 0).unwrap_err();
    assert!(
        matches!(err, Error::InvalidConfig(ref m) if m.contains("interval")),
        "{err}"
    );
    let err = SyncPolicy::parse("sometimes", 0).unwrap_err();
    assert!(err.to_string().contains("sometimes"), "{err}");
    assert_eq!(
        SyncPolicy::default(),
        SyncPolicy::Interval(Duration::from_millis(1000))
    );
}
