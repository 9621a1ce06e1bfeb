//! Threads: many writers, and readers running beside a writer that wraps
//! the ring under them. Loops are bounded by count, never by time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::thread;

use tsstore::{Config, DataType, Store};

fn payload(ts: i64) -> Vec<u8> {
    let len = (ts % 97) as usize;
    (0..len).map(|i| (ts as usize ^ i) as u8).collect()
}

#[test]
fn put_now_from_8_threads_always_succeeds_with_increasing_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        num_blocks: 4096,
        data_type: DataType::Binary,
        ..Config::default()
    };
    let store = Arc::new(Store::create(dir.path(), "w", cfg).unwrap());
    let per_thread = 2000;
    let handles: Vec<_> = (0..8u8)
        .map(|t| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                let mut last = 0;
                let mut stamps = Vec::with_capacity(per_thread);
                for _ in 0..per_thread {
                    let h = store.put_now(&[t; 16]).expect("put_now must not fail");
                    assert!(h.timestamp > last, "a thread's own inserts increase");
                    last = h.timestamp;
                    stamps.push(h.timestamp);
                }
                stamps
            })
        })
        .collect();
    let mut all: Vec<i64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(
        all.len(),
        8 * per_thread,
        "no two inserts share a timestamp"
    );
    let stored: Vec<i64> = store.iter().map(|r| r.unwrap().timestamp()).collect();
    assert_eq!(stored, all, "stored in strictly increasing order");
}

/// 16 blocks of 256 bytes: a ring a test wraps, or leaves its head block
/// in, with a few records.
fn small_ring() -> Config {
    Config {
        num_blocks: 16,
        data_block_size: 256,
        index_block_size: 64,
        data_type: DataType::Binary,
        encoding: tsstore::Encoding::Raw,
    }
}

#[test]
fn readers_run_beside_a_writer_that_wraps_the_ring() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_ring();
    let store = Arc::new(Store::create(dir.path(), "r", cfg).unwrap());
    let newest = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, newest, stop) = (Arc::clone(&store), Arc::clone(&newest), Arc::clone(&stop));
        thread::spawn(move || {
            for ts in 1..=30_000i64 {
                // Mostly packed objects, now and then one spanning three blocks.
                let data = if ts % 500 == 0 {
                    vec![ts as u8; 600]
                } else {
                    payload(ts)
                };
                store.put(ts, &data).unwrap();
                newest.store(ts, Ordering::Release);
                if ts % 1000 == 0 {
                    store.delete_by_time(ts - 1).unwrap();
                }
            }
            stop.store(true, Ordering::Release);
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (store, newest, stop) =
                (Arc::clone(&store), Arc::clone(&newest), Arc::clone(&stop));
            thread::spawn(move || {
                let mut rounds = 0u64;
                while !stop.load(Ordering::Acquire) && rounds < 1_000_000 {
                    rounds += 1;
                    let seen = newest.load(Ordering::Acquire);
                    let recs: Vec<_> = if r == 0 {
                        store.iter().collect::<Result<_, _>>().unwrap()
                    } else {
                        store.newest(50).unwrap()
                    };
                    let mut prev = None;
                    for rec in &recs {
                        let ts = rec.timestamp();
                        let want = if ts % 500 == 0 {
                            vec![ts as u8; 600]
                        } else {
                            payload(ts)
                        };
                        assert_eq!(rec.data, want, "garbage served for {ts}");
                        // The delete of ts follows the put of ts + 1, and precedes that of ts + 2.
                        assert!(
                            ts % 1000 != 999 || seen < ts + 2,
                            "deleted record {ts} served"
                        );
                        if let Some(p) = prev {
                            assert!(if r == 0 { ts > p } else { ts < p }, "order broken at {ts}");
                        }
                        prev = Some(ts);
                    }
                    if seen > 0 {
                        // What was acknowledged before this read is visible now,
                        // unless the ring has wrapped past it meanwhile.
                        let got = store.get_by_time(seen);
                        let wrapped = || store.stats().oldest_timestamp.is_some_and(|o| o > seen);
                        assert!(
                            got.is_ok() || seen % 1000 == 999 || wrapped(),
                            "{seen}: {got:?}"
                        );
                    }
                }
                rounds
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
}

/// A forward iterator that has read the head block goes back to it for
/// what the writer appended there meanwhile, before the records of the
/// blocks after it: it never skips a record to yield a later one (live
/// readers and outbound cursors resume after the last record given).
#[test]
fn an_iterator_that_read_the_head_block_sees_what_was_appended_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_ring();
    let store = Store::create(dir.path(), "h", cfg).unwrap();
    store.put(1, b"a").unwrap();
    store.put(2, b"b").unwrap();
    let mut it = store.iter();
    assert_eq!(it.next().unwrap().unwrap().timestamp(), 1);
    assert_eq!(it.next().unwrap().unwrap().timestamp(), 2);
    // 3 goes into the same (head) block, 4 fills the next ones.
    store.put(3, b"c").unwrap();
    store.put(4, &[7u8; 400]).unwrap();
    let rest: Vec<i64> = it.map(|r| r.unwrap().timestamp()).collect();
    assert_eq!(rest, vec![3, 4]);
}
