//! What three rollups (1m, 1h, 1d) add to an insert, in instructions:
//! 300 batches of 1 000 REST-bench-like readings, each followed by the
//! rollup job's round on the same thread, so callgrind counts all of it.
//! Run `plain` for the same inserts into a store without rollups.
//!
//! ```text
//! cargo build --release -p tsstore --example rollup_cost
//! valgrind --tool=callgrind target/release/examples/rollup_cost rolled
//! valgrind --tool=callgrind target/release/examples/rollup_cost plain
//! ```
//! Figures in docs/BENCHMARKS.md.

use tsstore::{Config, Keep, RollupConfig, Store, SyncPolicy};

const S: i64 = 1_000_000_000;

fn main() -> tsstore::Result<()> {
    let rolled = std::env::args().nth(1).as_deref() != Some("plain");
    let dir = tempfile::tempdir()?;
    let config = Config {
        num_blocks: 4096,
        ..Config::default()
    };
    let store = Store::create_with(dir.path(), "s", config, SyncPolicy::Never)?;
    if rolled {
        for w in ["1m", "1h", "1d"] {
            store.add_rollup(&RollupConfig {
                window_ns: tsstore::parse_duration_ns(w).expect("a window"),
                functions: vec![],
                keep: Keep::Span(30 * 86_400 * S),
            })?;
        }
    }
    // 2025-01-01, readings a millisecond apart.
    let mut ts = 1_735_689_600 * S;
    for b in 0..300i64 {
        let items: Vec<(Option<i64>, Vec<u8>)> = (0..1000i64)
            .map(|i| {
                ts += 1_000_000;
                let n = b * 1000 + i;
                let (t, h) = (20 + n % 10, 40 + n % 7);
                let reading = format!(r#"{{"temperature":{t},"humidity":{h},"room":"lab"}}"#);
                (Some(ts), reading.into_bytes())
            })
            .collect();
        store.put_many(items.iter().map(|(t, p)| (*t, &p[..])))?;
        if rolled {
            store.catch_up_rollups()?;
        }
    }
    store.close()
}
