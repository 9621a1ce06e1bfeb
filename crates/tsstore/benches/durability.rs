//! Insert throughput under each sync policy with 1 and 8 writer threads
//! (group commit shares fsyncs between concurrent writers under `Always`).
//! Run: `cargo bench -p tsstore --bench durability`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tsstore::{Config, DataType, Store, SyncPolicy};

const PAYLOAD: &[u8] = br#"{"temp":21.52,"hum":48.25,"room":"kitchen1","ok":true,"n":7}"#;

fn policies(c: &mut Criterion) {
    let mut g = c.benchmark_group("policy");
    g.throughput(Throughput::Elements(1));
    let cases = [
        ("never", SyncPolicy::Never),
        ("interval_1s", SyncPolicy::Interval(Duration::from_secs(1))),
        ("always", SyncPolicy::Always),
    ];
    for (name, policy) in cases {
        for threads in [1usize, 8] {
            let dir = tempfile::tempdir().expect("tempdir");
            let cfg = Config {
                num_blocks: 1024,
                data_block_size: 4096,
                index_block_size: 4096,
                data_type: DataType::Json,
                encoding: tsstore::Encoding::Raw,
            };
            let store = Arc::new(Store::create_with(dir.path(), "p", cfg, policy).expect("create"));
            let ts = Arc::new(AtomicI64::new(0));
            g.bench_function(format!("{name}_{threads}_writers"), |b| {
                b.iter_custom(|iters| {
                    let per = iters.div_ceil(threads as u64);
                    let start = Instant::now();
                    let handles: Vec<_> = (0..threads)
                        .map(|_| {
                            let store = Arc::clone(&store);
                            let ts = Arc::clone(&ts);
                            std::thread::spawn(move || {
                                for _ in 0..per {
                                    if threads == 1 {
                                        let t = ts.fetch_add(1, Ordering::Relaxed) + 1;
                                        store.put(t, PAYLOAD).expect("put");
                                    } else {
                                        store.put_now(PAYLOAD).expect("put_now");
                                    }
                                }
                            })
                        })
                        .collect();
                    for h in handles {
                        h.join().expect("writer");
                    }
                    start.elapsed()
                })
            });
        }
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = policies }
criterion_main!(benches);
