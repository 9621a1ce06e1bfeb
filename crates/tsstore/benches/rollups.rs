//! Rollups: what three of them cost an ingest (the same run's store
//! without any is the baseline), and a year's `auto` read from a store
//! holding a year of 1 Hz readings in rollups.
//! Run: `cargo bench -p tsstore --bench rollups`. Figures in
//! docs/BENCHMARKS.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tsstore::{Config, Keep, Resolution, RollupConfig, Store, SyncPolicy};

const S: i64 = 1_000_000_000;
const DAY: i64 = 86_400 * S;
/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600 * S;

/// A raw JSON store of 4 KiB blocks (the defaults) with `num_blocks`.
fn config(num_blocks: u32) -> Config {
    Config {
        num_blocks,
        ..Config::default()
    }
}

fn three(keep_days: i64) -> [RollupConfig; 3] {
    ["1m", "1h", "1d"].map(|w| RollupConfig {
        window_ns: tsstore::parse_duration_ns(w).expect("window"),
        functions: Vec::new(),
        keep: Keep::Span(keep_days * DAY),
    })
}

/// A reading at `t` (seconds since T0), about 60 bytes.
fn reading(i: i64, out: &mut Vec<u8>) {
    out.clear();
    let temp = 15.0 + (i % 86_400) as f64 / 8_640.0;
    let hum = 40 + (i % 17);
    out.extend_from_slice(
        format!(r#"{{"temp":{temp:.2},"hum":{hum},"room":"kitchen1","ok":true}}"#).as_bytes(),
    );
}

fn batch(first: i64, n: i64) -> Vec<(Option<i64>, Vec<u8>)> {
    (first..first + n)
        .map(|i| {
            let mut p = Vec::new();
            reading(i, &mut p);
            (Some(T0 + i * S), p)
        })
        .collect()
}

fn ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("rollups");
    g.throughput(Throughput::Elements(1000));
    let dir = tempfile::tempdir().expect("tempdir");
    let plain =
        Store::create_with(dir.path(), "plain", config(4096), SyncPolicy::Never).expect("create");
    let rolled =
        Store::create_with(dir.path(), "rolled", config(4096), SyncPolicy::Never).expect("create");
    for r in three(30) {
        rolled.add_rollup(&r).expect("rollup");
    }
    for (name, store) in [("none", &plain), ("three", &rolled)] {
        let mut next = 0i64;
        g.bench_function(format!("put_many_1000_rollups_{name}"), |b| {
            b.iter_batched(
                || {
                    next += 1000;
                    batch(next - 1000, 1000)
                },
                |items| black_box(store.put_many(items.iter().map(|(t, p)| (*t, &p[..])))),
                BatchSize::SmallInput,
            )
        });
    }
    // The whole cost on one thread: the insert, then the rows its
    // records make (what the background job does on another core).
    // Past whatever the run above wrote (about 30 years of seconds).
    let mut next = 1_000_000_000i64;
    g.bench_function("put_many_1000_then_catch_up_three", |b| {
        b.iter_batched(
            || {
                next += 1000;
                batch(next - 1000, 1000)
            },
            |items| {
                rolled
                    .put_many(items.iter().map(|(t, p)| (*t, &p[..])))
                    .expect("put");
                rolled.catch_up_rollups().expect("catch up")
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn year(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    // Raw keeps about a day of these readings; the rollups a year.
    let store =
        Store::create_with(dir.path(), "year", config(2048), SyncPolicy::Never).expect("create");
    for r in three(366) {
        store.add_rollup(&r).expect("rollup");
    }
    let began = Instant::now();
    let seconds = 365 * 86_400;
    let mut i = 0;
    while i < seconds {
        let n = 86_400.min(seconds - i);
        let items = batch(i, n);
        store
            .put_many(items.iter().map(|(t, p)| (*t, &p[..])))
            .expect("put");
        store.catch_up_rollups().expect("catch up");
        i += n;
    }
    eprintln!(
        "a year of 1 Hz readings written and rolled up in {:.1} s; rollups: {:?}",
        began.elapsed().as_secs_f64(),
        store
            .rollups()
            .iter()
            .map(|r| (r.window.clone(), r.num_blocks, r.oldest_timestamp))
            .collect::<Vec<_>>()
    );
    let (start, end) = (T0, T0 + 365 * DAY - 1);
    assert_eq!(
        store.choose_resolution(start, end, 1000),
        Resolution::Rollup(DAY)
    );
    let mut g = c.benchmark_group("rollups");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("range_year_auto_1000", |b| {
        b.iter(|| {
            let at = store.choose_resolution(start, end, 1000);
            let Resolution::Rollup(w) = at else {
                panic!("raw cannot reach a year back")
            };
            let windows = store.rollup_windows(w, start, end, 1000).expect("read");
            assert_eq!(windows.len(), 365);
            black_box(windows)
        })
    });
    g.bench_function("range_week_hourly", |b| {
        b.iter(|| {
            let from = T0 + 200 * DAY;
            let windows = store
                .rollup_windows(3_600 * S, from, from + 7 * DAY - 1, 1000)
                .expect("read");
            black_box(windows)
        })
    });
    g.finish();
}

criterion_group!(benches, ingest, year);
criterion_main!(benches);
