//! Engine benchmarks with SQLite (bundled, WAL, synchronous=NORMAL) as the
//! baseline in the same run. Run: `cargo bench -p tsstore --bench engine`.
//! Figures and ratios are recorded in docs/BENCHMARKS.md.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rusqlite::{Connection, params};
use tsstore::{Config, DataType, Store, SyncPolicy};

/// A 60-byte JSON reading.
const PAYLOAD: &[u8] = br#"{"temp":21.52,"hum":48.25,"room":"kitchen1","ok":true,"n":7}"#;
const BIG_RECORDS: i64 = 1_000_000;
const RANGE_LEN: i64 = 10_000;

fn store_config(num_blocks: u32) -> Config {
    Config {
        num_blocks,
        data_block_size: 4096,
        index_block_size: 4096,
        data_type: DataType::Json,
        encoding: tsstore::Encoding::Raw,
    }
}

fn sqlite(path: &std::path::Path) -> Connection {
    let c = Connection::open(path).expect("open sqlite");
    c.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
         CREATE TABLE IF NOT EXISTS t (ts INTEGER PRIMARY KEY, data BLOB NOT NULL);",
    )
    .expect("sqlite schema");
    c
}

/// The 1 000 000-record store and table, built once and shared.
struct Big {
    _dir: tempfile::TempDir,
    store: Store,
    db: Connection,
}

fn big() -> &'static std::sync::Mutex<Big> {
    static BIG: OnceLock<std::sync::Mutex<Big>> = OnceLock::new();
    BIG.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::create_with(dir.path(), "big", store_config(32_768), SyncPolicy::Never)
            .expect("create");
        for chunk in (1..=BIG_RECORDS).collect::<Vec<_>>().chunks(10_000) {
            store
                .put_many(chunk.iter().map(|ts| (Some(*ts * 1000), PAYLOAD)))
                .expect("fill");
        }
        let mut db = sqlite(&dir.path().join("big.db"));
        let tx = db.transaction().expect("tx");
        {
            let mut st = tx
                .prepare("INSERT INTO t VALUES (?1, ?2)")
                .expect("prepare");
            for ts in 1..=BIG_RECORDS {
                st.execute(params![ts * 1000, PAYLOAD]).expect("insert");
            }
        }
        tx.commit().expect("commit");
        std::sync::Mutex::new(Big {
            _dir: dir,
            store,
            db,
        })
    })
}

fn ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(1));
    let dir = tempfile::tempdir().expect("tempdir");
    // The engine's own cost: no fsync (the durability bench covers policies).
    let store = Store::create_with(dir.path(), "put", store_config(1024), SyncPolicy::Never)
        .expect("create");
    let mut ts = 0i64;
    g.bench_function("tsstore_put", |b| {
        b.iter(|| {
            ts += 1;
            black_box(store.put(ts, PAYLOAD).expect("put"));
        })
    });
    // The syscall floor under `put`: one positioned write of what a put
    // writes (previous header through the new object, 168 bytes) into a
    // preallocated 4 MiB file, with nothing else around it.
    let floor = tsstore::RealFile::new(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("floor"))
            .expect("floor file"),
    );
    floor.allocate(4 << 20).expect("allocate");
    let chunk = [7u8; 168];
    let mut at = 0u64;
    g.bench_function("floor_pwrite_168b", |b| {
        b.iter(|| {
            at = (at + 84) % ((4 << 20) - 168);
            tsstore::StoreFile::write_all_at(&floor, &chunk, at).expect("pwrite");
        })
    });
    let mut db = sqlite(&dir.path().join("put.db"));
    let mut ts = 0i64;
    g.bench_function("sqlite_insert", |b| {
        let mut st = db
            .prepare("INSERT INTO t VALUES (?1, ?2)")
            .expect("prepare");
        b.iter(|| {
            ts += 1;
            black_box(st.execute(params![ts, PAYLOAD]).expect("insert"));
        })
    });

    g.bench_function("validate_json_60b", |b| {
        b.iter(|| tsstore::validate_payload(DataType::Json, black_box(PAYLOAD)).expect("valid"))
    });

    g.bench_function("serde_json_validate_60b", |b| {
        b.iter(|| {
            serde_json::from_slice::<serde::de::IgnoredAny>(black_box(PAYLOAD)).expect("valid")
        })
    });

    g.throughput(Throughput::Elements(1000));
    let mut ts = 1_000_000_000i64;
    g.bench_function("tsstore_put_many_1000", |b| {
        b.iter_batched(
            || {
                let first = ts + 1;
                ts += 1000;
                first
            },
            |first| {
                black_box(
                    store
                        .put_many((first..first + 1000).map(|t| (Some(t), PAYLOAD)))
                        .expect("put_many"),
                )
            },
            BatchSize::SmallInput,
        )
    });
    let mut ts = 1_000_000_000i64;
    g.bench_function("sqlite_insert_tx_1000", |b| {
        b.iter(|| {
            let tx = db.transaction().expect("tx");
            {
                let mut st = tx
                    .prepare_cached("INSERT INTO t VALUES (?1, ?2)")
                    .expect("prepare");
                for _ in 0..1000 {
                    ts += 1;
                    st.execute(params![ts, PAYLOAD]).expect("insert");
                }
            }
            tx.commit().expect("commit");
        })
    });
    g.finish();
}

/// Reads `recs` to the end with borrowed records (as the server's
/// encoders do): how many, and their payload bytes.
fn read_borrowed(mut recs: tsstore::Records<'_>) -> (usize, usize) {
    let (mut n, mut bytes) = (0usize, 0usize);
    while let Some(rec) = recs.next_ref() {
        n += 1;
        bytes += black_box(rec.expect("read").data).len();
    }
    (n, bytes)
}

/// The same for SQLite rows of `(ts, data)`, read borrowed.
fn read_rows(mut rows: rusqlite::Rows<'_>) -> (usize, usize) {
    let (mut n, mut bytes) = (0usize, 0usize);
    while let Some(row) = rows.next().expect("row") {
        let _ts: i64 = row.get(0).expect("ts");
        n += 1;
        bytes += black_box(row.get_ref(1).expect("data").as_blob().expect("blob")).len();
    }
    (n, bytes)
}

fn reads(c: &mut Criterion) {
    let big = big().lock().expect("big");
    let mut g = c.benchmark_group("read");
    g.bench_function("tsstore_newest_100", |b| {
        b.iter(|| black_box(big.store.newest(100).expect("newest")))
    });
    // The newest 100 borrowed from the read's buffers, as the REST
    // encoder takes them: no allocation per record.
    g.bench_function("tsstore_newest_100_ref", |b| {
        b.iter(|| {
            let recs = big.store.iter_range_rev(i64::MIN, i64::MAX).limit(100);
            let (n, bytes) = read_borrowed(recs);
            assert_eq!(n, 100);
            black_box(bytes)
        })
    });
    g.bench_function("sqlite_newest_100_ref", |b| {
        let mut st = big
            .db
            .prepare("SELECT ts, data FROM t ORDER BY ts DESC LIMIT 100")
            .expect("prepare");
        b.iter(|| {
            let (n, bytes) = read_rows(st.query([]).expect("query"));
            assert_eq!(n, 100);
            black_box(bytes)
        })
    });
    let mut probe = 0i64;
    g.bench_function("tsstore_get_by_time", |b| {
        b.iter(|| {
            probe = (probe + 7919) % BIG_RECORDS;
            black_box(big.store.get_by_time((probe + 1) * 1000).expect("get"))
        })
    });
    g.bench_function("sqlite_get_by_time", |b| {
        let mut st = big
            .db
            .prepare("SELECT data FROM t WHERE ts = ?1")
            .expect("prepare");
        b.iter(|| {
            probe = (probe + 7919) % BIG_RECORDS;
            let v: Vec<u8> = st
                .query_row(params![(probe + 1) * 1000], |r| r.get(0))
                .expect("get");
            black_box(v)
        })
    });
    g.throughput(Throughput::Elements(RANGE_LEN as u64));
    let mut start = 0i64;
    g.bench_function("tsstore_range_10k", |b| {
        b.iter(|| {
            start = (start + 123_457) % (BIG_RECORDS - RANGE_LEN);
            let from = (start + 1) * 1000;
            let recs = big
                .store
                .range(from, from + (RANGE_LEN - 1) * 1000, None)
                .expect("range");
            assert_eq!(recs.len(), RANGE_LEN as usize);
            black_box(recs)
        })
    });
    g.bench_function("tsstore_range_10k_ref", |b| {
        b.iter(|| {
            start = (start + 123_457) % (BIG_RECORDS - RANGE_LEN);
            let from = (start + 1) * 1000;
            let recs = big.store.iter_range(from, from + (RANGE_LEN - 1) * 1000);
            let (n, bytes) = read_borrowed(recs);
            assert_eq!(n, RANGE_LEN as usize);
            black_box(bytes)
        })
    });
    g.bench_function("sqlite_range_10k_ref", |b| {
        let mut st = big
            .db
            .prepare("SELECT ts, data FROM t WHERE ts BETWEEN ?1 AND ?2 ORDER BY ts")
            .expect("prepare");
        b.iter(|| {
            start = (start + 123_457) % (BIG_RECORDS - RANGE_LEN);
            let from = (start + 1) * 1000;
            let rows = st
                .query(params![from, from + (RANGE_LEN - 1) * 1000])
                .expect("query");
            let (n, bytes) = read_rows(rows);
            assert_eq!(n, RANGE_LEN as usize);
            black_box(bytes)
        })
    });
    g.bench_function("sqlite_range_10k", |b| {
        let mut st = big
            .db
            .prepare("SELECT ts, data FROM t WHERE ts BETWEEN ?1 AND ?2 ORDER BY ts")
            .expect("prepare");
        b.iter(|| {
            start = (start + 123_457) % (BIG_RECORDS - RANGE_LEN);
            let from = (start + 1) * 1000;
            let rows: Vec<(i64, Vec<u8>)> = st
                .query_map(params![from, from + (RANGE_LEN - 1) * 1000], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows");
            assert_eq!(rows.len(), RANGE_LEN as usize);
            black_box(rows)
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = ingest, reads }
criterion_main!(benches);
