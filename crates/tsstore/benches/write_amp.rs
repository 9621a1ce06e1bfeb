//! Write amplification: bytes this process caused to be written to storage
//! (`/proc/self/io` `write_bytes`) per payload byte, for 1 000 000 records of
//! 60 bytes, under each sync policy.
//! Run: `cargo bench -p tsstore --bench write_amp`.

mod proc_io;

use std::time::{Duration, Instant};

use proc_io::write_bytes;
use tsstore::{Config, DataType, Store, SyncPolicy};

const PAYLOAD: &[u8] = br#"{"temp":21.52,"hum":48.25,"room":"kitchen1","ok":true,"n":7}"#;
const RECORDS: i64 = 1_000_000;

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: keep that quick.
    let records = if std::env::args().any(|a| a == "--bench") {
        RECORDS
    } else {
        1000
    };
    println!("policy        records   payload MB   written MB   amplification   s");
    for (name, policy) in [
        ("interval_1s", SyncPolicy::Interval(Duration::from_secs(1))),
        ("never", SyncPolicy::Never),
        ("always_batch", SyncPolicy::Always),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = Config {
            num_blocks: 32_768,
            data_block_size: 4096,
            index_block_size: 4096,
            data_type: DataType::Json,
            encoding: tsstore::Encoding::Raw,
        };
        let store = Store::create_with(dir.path(), "w", cfg, policy).expect("create");
        store.sync().expect("sync");
        let before = write_bytes();
        let start = Instant::now();
        if policy == SyncPolicy::Always {
            // One fsync per insert would measure the disk, not the layout:
            // batches of 100 share one.
            for chunk in (1..=records).collect::<Vec<_>>().chunks(100) {
                store
                    .put_many(chunk.iter().map(|t| (Some(*t), PAYLOAD)))
                    .expect("put_many");
            }
        } else {
            for ts in 1..=records {
                store.put(ts, PAYLOAD).expect("put");
            }
        }
        store.close().expect("close");
        let secs = start.elapsed().as_secs_f64();
        let written = write_bytes() - before;
        let payload = records as u64 * PAYLOAD.len() as u64;
        println!(
            "{name:<13} {records:>8} {:>12.1} {:>12.1} {:>15.3} {secs:>5.2}",
            payload as f64 / 1e6,
            written as f64 / 1e6,
            written as f64 / payload as f64
        );
    }
}
