//! Policy ratios measured in alternating rounds, so both sides of each
//! ratio see the same disk (fsync latency on shared virtual disks drifts by
//! 2× within minutes): group commit under `Always` (8 writer threads
//! against one), and `Interval(1 s)` against `Never` (one writer, rounds of
//! 2 s so every round includes background syncs). Prints each round and
//! the medians. Run: `cargo bench -p tsstore --bench group_commit`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tsstore::{Config, DataType, Store, SyncPolicy};

const PAYLOAD: &[u8] = br#"{"temp":21.52,"hum":48.25,"room":"kitchen1","ok":true,"n":7}"#;

/// Inserts per second with `threads` writers over about `window`.
fn rate(store: &Arc<Store>, threads: usize, window: Duration) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let store = Arc::clone(store);
            std::thread::spawn(move || {
                let mut n = 0u64;
                while start.elapsed() < window {
                    store.put_now(PAYLOAD).expect("put_now");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().expect("writer")).sum();
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let (rounds, window) = if quick {
        (1, Duration::from_millis(50))
    } else {
        (10, Duration::from_millis(500))
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = Config {
        num_blocks: 1024,
        data_block_size: 4096,
        index_block_size: 4096,
        data_type: DataType::Json,
    };
    let store =
        Arc::new(Store::create_with(dir.path(), "g", cfg, SyncPolicy::Always).expect("create"));
    let mut ratios = Vec::new();
    println!("round   1 writer/s   8 writers/s   ratio");
    for round in 0..rounds {
        let one = rate(&store, 1, window);
        let eight = rate(&store, 8, window);
        ratios.push(eight / one);
        println!("{round:>5} {one:>12.0} {eight:>13.0} {:>7.2}", eight / one);
    }
    ratios.sort_by(f64::total_cmp);
    println!("median ratio {:.2}", ratios[ratios.len() / 2]);

    let (rounds, window) = if quick {
        (1, Duration::from_millis(50))
    } else {
        (6, Duration::from_secs(2))
    };
    let create = |name, policy| {
        Arc::new(Store::create_with(dir.path(), name, cfg, policy).expect("create"))
    };
    let never = create("never", SyncPolicy::Never);
    let interval = create("interval", SyncPolicy::Interval(Duration::from_secs(1)));
    let mut ratios = Vec::new();
    println!("round      never/s   interval/s   ratio");
    for round in 0..rounds {
        let n = rate(&never, 1, window);
        let i = rate(&interval, 1, window);
        ratios.push(i / n);
        println!("{round:>5} {n:>12.0} {i:>12.0} {:>7.3}", i / n);
    }
    ratios.sort_by(f64::total_cmp);
    println!("median interval/never {:.3}", ratios[ratios.len() / 2]);
}
