//! Commit notifications: waiters wake when (and only when) new records are
//! readable, resets are told apart, and no wake-up is lost to a race.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use tsstore::{CommitEvent, CommitState, Config, DataType, Store, SyncPolicy, Wake};

const LONG: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(50);

fn store(dir: &tempfile::TempDir, sync: SyncPolicy) -> Store {
    let config = Config {
        num_blocks: 64,
        data_block_size: 256,
        data_type: DataType::Binary,
        ..Config::default()
    };
    Store::create_with(dir.path(), "s", config, sync).unwrap()
}

fn newest_ts(store: &Store) -> Option<i64> {
    store.newest(1).unwrap().first().map(|r| r.timestamp())
}

#[test]
fn waiter_wakes_after_put_and_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, SyncPolicy::Never);
    let watch = store.commits();
    let seen = watch.current();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let wake = watch.wait_past(seen, LONG);
            (wake, newest_ts(&store))
        });
        store.put(7, b"x").unwrap();
        let (wake, newest) = waiter.join().unwrap();
        assert_eq!(
            wake,
            Wake::NewRecords(CommitState {
                seq: 1,
                resets: 0,
                truncations: 0
            })
        );
        assert_eq!(newest, Some(7));
    });
}

#[test]
fn waiter_wakes_once_after_put_many_and_reads_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, SyncPolicy::Always);
    store.put(1, b"first").unwrap();
    let watch = store.commits();
    let seen = watch.current();
    // Enough records to fill several 256-byte blocks: the writer publishes
    // each sealed block on its own, the batch must still count once.
    let batch: Vec<(Option<i64>, Vec<u8>)> = (2..=40).map(|t| (Some(t), vec![b'b'; 50])).collect();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let wake = watch.wait_past(seen, LONG);
            (wake, store.newest(100).unwrap().len())
        });
        store.put_many(batch).unwrap();
        let (wake, count) = waiter.join().unwrap();
        assert_eq!(
            wake,
            Wake::NewRecords(CommitState {
                seq: seen.seq + 1,
                resets: 0,
                truncations: 0
            })
        );
        assert_eq!(count, 40);
    });
}

#[test]
fn spanning_object_and_put_now_wake_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, SyncPolicy::Never);
    let watch = store.commits();
    let seen = watch.current();
    store.put(5, &vec![b'z'; 1000]).unwrap();
    assert!(matches!(watch.wait_past(seen, LONG), Wake::NewRecords(_)));
    let seen = watch.current();
    let h = store.put_now(b"now").unwrap();
    assert!(matches!(watch.wait_past(seen, LONG), Wake::NewRecords(_)));
    assert_eq!(newest_ts(&store), Some(h.timestamp));
}

#[test]
fn nothing_readable_means_no_wake() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, SyncPolicy::Never);
    let watch = store.commits();
    let seen = watch.current();
    assert_eq!(watch.wait_past(seen, SHORT), Wake::TimedOut);

    store.put(10, b"a").unwrap();
    let seen = watch.current();
    // Rejected inserts, a delete and a sync make no new record readable.
    assert!(store.put(10, b"again").is_err());
    assert!(
        store
            .put_many([(Some(11), &b"ok"[..]), (Some(11), &b"dup"[..])])
            .is_err()
    );
    store.delete_by_time(10).unwrap();
    store.sync().unwrap();
    assert_eq!(watch.wait_past(seen, SHORT), Wake::TimedOut);
    assert_eq!(watch.current(), seen);
}

#[test]
fn reset_wakes_with_its_own_signal() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, SyncPolicy::Never);
    store.put(3, b"a").unwrap();
    let watch = store.commits();
    let seen = watch.current();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let wake = watch.wait_past(seen, LONG);
            (wake, newest_ts(&store))
        });
        store.reset().unwrap();
        let (wake, newest) = waiter.join().unwrap();
        assert_eq!(
            wake,
            Wake::Reset(CommitState {
                seq: seen.seq,
                resets: 1,
                truncations: 0
            })
        );
        assert_eq!(newest, None);
    });
    // A reset followed by inserts still reads as a reset to an old state.
    store.put(1, b"after").unwrap();
    assert!(matches!(watch.wait_past(seen, LONG), Wake::Reset(_)));
}

#[test]
fn no_wake_up_is_lost_between_reading_and_waiting() {
    const N: i64 = 2000;
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, SyncPolicy::Never);
    let watch = store.commits();
    let started = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            for t in 1..=N {
                store.put(t, &t.to_le_bytes()).unwrap();
            }
        });
        let mut wakes = 0u64;
        let mut checks = 0u64;
        loop {
            let state = watch.current();
            checks += 1;
            if newest_ts(&store) == Some(N) {
                break;
            }
            match watch.wait_past(state, LONG) {
                Wake::NewRecords(_) => wakes += 1,
                other => panic!("waiter got {other:?} after {wakes} wake-ups"),
            }
            assert!(started.elapsed() < Duration::from_secs(60), "took too long");
        }
        // Woken at least once, unless the writer had finished before the
        // waiter first looked (nothing to wait for then).
        assert!(wakes >= 1 || checks == 1);
    });
    assert_eq!(watch.current().seq, N as u64);
}

/// An event and the newest timestamp readable when the callback ran.
type Seen = (CommitEvent, Option<i64>);

#[test]
fn callback_fires_once_per_batch_after_the_data_is_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(store(&dir, SyncPolicy::Never));
    // The callback reads the store through a weak reference, to check the
    // records are readable by the time it runs.
    let handle: Arc<OnceLock<Weak<Store>>> = Arc::default();
    let events: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let (h, ev) = (Arc::clone(&handle), Arc::clone(&events));
    let guard = store
        .on_commit(Box::new(move |event| {
            let newest = h.get().and_then(Weak::upgrade).and_then(|s| newest_ts(&s));
            ev.lock().unwrap().push((event, newest));
        }))
        .unwrap();
    handle.set(Arc::downgrade(&store)).unwrap();

    let batch: Vec<(Option<i64>, Vec<u8>)> = (1..=30).map(|t| (Some(t), vec![7; 60])).collect();
    store.put_many(batch).unwrap();
    store.put(31, b"one").unwrap();
    store.reset().unwrap();
    assert_eq!(
        *events.lock().unwrap(),
        [
            (
                CommitEvent::NewRecords(CommitState {
                    seq: 1,
                    resets: 0,
                    truncations: 0
                }),
                Some(30)
            ),
            (
                CommitEvent::NewRecords(CommitState {
                    seq: 2,
                    resets: 0,
                    truncations: 0
                }),
                Some(31)
            ),
            (
                CommitEvent::Reset(CommitState {
                    seq: 2,
                    resets: 1,
                    truncations: 0
                }),
                None
            ),
        ]
    );

    drop(guard);
    store.put(1, b"unheard").unwrap();
    assert_eq!(events.lock().unwrap().len(), 3);
}

#[test]
fn closing_wakes_waiters_and_callbacks() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, SyncPolicy::Never);
    let watch = store.commits();
    let closed = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&closed);
    let _guard = store
        .on_commit(Box::new(move |event| {
            if event == CommitEvent::Closed {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }))
        .unwrap();
    let seen = watch.current();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| watch.wait_past(seen, LONG));
        store.close().unwrap();
        assert_eq!(waiter.join().unwrap(), Wake::Closed);
    });
    assert_eq!(closed.load(Ordering::Relaxed), 1);
    assert!(watch.is_closed());
}
