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

/// Runs `rounds` rounds alternating `a` and `b` (each for `window`),
/// printing each round's rates and ratio b/a, then the median ratio.
fn alternate(
    label: (&str, &str),
    rounds: usize,
    window: Duration,
    a: impl Fn(Duration) -> f64,
    b: impl Fn(Duration) -> f64,
) {
    let mut ratios = Vec::new();
    println!("round {:>12} {:>12}   ratio", label.0, label.1);
    for round in 0..rounds {
        let (x, y) = (a(window), b(window));
        ratios.push(y / x);
        println!("{round:>5} {x:>12.0} {y:>12.0} {:>7.3}", y / x);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "median {}/{} {:.3}",
        label.1,
        label.0,
        ratios[ratios.len() / 2]
    );
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = Config {
        num_blocks: 1024,
        data_block_size: 4096,
        index_block_size: 4096,
        data_type: DataType::Json,
        encoding: tsstore::Encoding::Raw,
    };
    let create =
        |name, policy| Arc::new(Store::create_with(dir.path(), name, cfg, policy).expect("create"));

    let always = create("always", SyncPolicy::Always);
    let (rounds, window) = if quick { (1, 50) } else { (10, 500) };
    alternate(
        ("1 writer/s", "8 writers/s"),
        rounds,
        Duration::from_millis(window),
        |w| rate(&always, 1, w),
        |w| rate(&always, 8, w),
    );

    let never = create("never", SyncPolicy::Never);
    let interval = create("interval", SyncPolicy::Interval(Duration::from_secs(1)));
    let (rounds, window) = if quick { (1, 50) } else { (6, 2000) };
    alternate(
        ("never/s", "interval/s"),
        rounds,
        Duration::from_millis(window),
        |w| rate(&never, 1, w),
        |w| rate(&interval, 1, w),
    );
}
