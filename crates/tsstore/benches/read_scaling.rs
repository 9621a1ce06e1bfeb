//! Reads from many threads on one store, with and without a writer:
//! readers take the ring's index lock only to plan (never the writer's
//! mutex, never across a copy), so they should scale with cores and
//! barely notice an insert stream. Point lookups and 100-record ranges
//! from 1, 2 and 8 reader threads, each for `SECONDS`, alone and beside
//! one thread inserting as fast as it can.
//! Run: `cargo bench -p tsstore --bench read_scaling`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tsstore::{Config, DataType, Store, SyncPolicy};

const PAYLOAD: &[u8] = br#"{"temp":21.52,"hum":48.25,"room":"kitchen1","ok":true,"n":7}"#;
const RECORDS: i64 = 500_000;
const SECONDS: f64 = 2.0;
/// Inserts one run makes at most: the ring must not wrap over the
/// records the readers look up (3 runs × this + `RECORDS` < the ring).
const MAX_INSERTS: u64 = 600_000;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        num_blocks: 65_536,
        data_block_size: 4096,
        index_block_size: 4096,
        data_type: DataType::Json,
        encoding: tsstore::Encoding::Raw,
    };
    let store =
        Arc::new(Store::create_with(dir.path(), "s", config, SyncPolicy::Never).expect("create"));
    for chunk in (1..=RECORDS).collect::<Vec<_>>().chunks(10_000) {
        store
            .put_many(chunk.iter().map(|ts| (Some(*ts * 1000), PAYLOAD)))
            .expect("fill");
    }
    println!("readers | writer | lookups/s (per reader) | 100-record ranges/s | inserts/s");
    for writer in [false, true] {
        for readers in [1usize, 2, 8] {
            let (lookups, ranges, inserts) = run(&store, readers, writer);
            println!(
                "{readers:7} | {:6} | {:>12.0} ({:>8.0}) | {:>19.0} | {:>9.0}",
                if writer { "yes" } else { "no" },
                lookups,
                lookups / readers as f64,
                ranges,
                inserts
            );
        }
    }
}

/// (lookups/s, ranges/s, inserts/s) over `SECONDS`.
fn run(store: &Arc<Store>, readers: usize, writer: bool) -> (f64, f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicU64::new(0));
    let ranges = Arc::new(AtomicU64::new(0));
    let inserts = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for r in 0..readers {
        let (store, stop, lookups, ranges) = (
            Arc::clone(store),
            Arc::clone(&stop),
            Arc::clone(&lookups),
            Arc::clone(&ranges),
        );
        threads.push(std::thread::spawn(move || {
            let mut probe = r as i64 * 7919;
            while !stop.load(Ordering::Relaxed) {
                // Within the records written before the run: the writer's
                // new ones come after them.
                for _ in 0..64 {
                    probe = (probe + 7919) % (RECORDS - 200);
                    black_box(store.get_by_time((probe + 1) * 1000).expect("get"));
                }
                lookups.fetch_add(64, Ordering::Relaxed);
                let from = (probe + 1) * 1000;
                let mut it = store.iter_range(from, from + 99 * 1000);
                let mut n = 0;
                while let Some(rec) = it.next_ref() {
                    black_box(rec.expect("range").data);
                    n += 1;
                }
                assert_eq!(n, 100);
                ranges.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    if writer {
        let (store, stop, inserts) = (Arc::clone(store), Arc::clone(&stop), Arc::clone(&inserts));
        threads.push(std::thread::spawn(move || {
            let t = Instant::now();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < MAX_INSERTS {
                store.put_now(PAYLOAD).expect("put");
                n += 1;
            }
            // Inserts per second of the writer's own time.
            inserts.store(
                (n as f64 / t.elapsed().as_secs_f64()) as u64,
                Ordering::Relaxed,
            );
        }));
    }
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(SECONDS));
    stop.store(true, Ordering::Relaxed);
    let took = t.elapsed().as_secs_f64();
    for t in threads {
        t.join().expect("thread");
    }
    let per = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64 / took;
    (
        per(&lookups),
        per(&ranges),
        inserts.load(Ordering::Relaxed) as f64,
    )
}
