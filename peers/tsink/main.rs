//! tsink beside tsstore on the pvlib readings of the compressed-encoding
//! bench (`crates/tsstore/benches/pvlib`): bytes on disk per reading and
//! ingest rate, in the same run.
//!
//! * tsink keeps numbers only: each reading becomes one point per numeric
//!   field (one series per field, the reading's timestamp), inserted in
//!   batches of 1 000 rows, then `close` flushes it to disk; the bytes are
//!   those of its data directory afterwards.
//! * tsstore keeps each reading as written: a raw store (ts-store's
//!   layout) and a compressed store, each inserted with `put_many` in
//!   batches of 1 000 and closed (the compressed one after framing what
//!   it staged); bytes are the blocks in use of its ring (a compressed
//!   store's frames; its staging ring is a fixed 64 blocks more, 256 KiB,
//!   whatever it holds).

#[path = "../../crates/tsstore/benches/pvlib/mod.rs"]
mod pvlib;

use std::path::Path;
use std::time::Instant;

use tsink::{DataPoint, Row, StorageBuilder, TimestampPrecision};
use tsstore::{Config, DataType, Encoding, Store, SyncPolicy};

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Prints every file under `dir` with its size (`PEER_LIST_FILES=1`).
fn list(root: &Path, dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match e.metadata() {
            Ok(m) if m.is_dir() => list(root, &e.path()),
            Ok(m) => println!(
                "    {:>9}  {}",
                m.len(),
                e.path().strip_prefix(root).unwrap_or(&e.path()).display()
            ),
            Err(_) => {}
        }
    }
}

/// tsink: (bytes per reading, readings per second, points per reading).
fn tsink(records: &[pvlib::Reading]) -> (f64, f64, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rows = Vec::new();
    for (ts, payload) in records {
        let value: serde_json::Value = serde_json::from_slice(payload).expect("json");
        for (field, v) in value.as_object().expect("object") {
            if let Some(x) = v.as_f64() {
                rows.push(Row::new(field.as_str(), DataPoint::new(*ts, x)));
            }
        }
    }
    let storage = StorageBuilder::new()
        .with_data_path(dir.path())
        .with_timestamp_precision(TimestampPrecision::Nanoseconds)
        .build()
        .expect("tsink storage");
    let start = Instant::now();
    for chunk in rows.chunks(1000) {
        storage.insert_rows(chunk).expect("insert");
    }
    storage.close().expect("close");
    let secs = start.elapsed().as_secs_f64();
    if std::env::var_os("PEER_LIST_FILES").is_some() {
        list(dir.path(), dir.path());
    }
    let n = records.len() as f64;
    (
        dir_bytes(dir.path()) as f64 / n,
        n / secs,
        rows.len() as f64 / n,
    )
}

/// tsstore: (bytes per reading, readings per second), in a store large
/// enough never to wrap.
fn tsstore(records: &[pvlib::Reading], encoding: Encoding) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        num_blocks: (records.len() / 4 + 64) as u32,
        data_block_size: 4096,
        index_block_size: 4096,
        data_type: DataType::Json,
        encoding,
    };
    let store =
        Store::create_with(dir.path(), "raw", config, SyncPolicy::default()).expect("create");
    let start = Instant::now();
    for chunk in records.chunks(1000) {
        store
            .put_many(chunk.iter().map(|(t, p)| (Some(*t), p.as_slice())))
            .expect("insert");
    }
    store.frame_staged().expect("frame");
    let bytes = store.stats().active_blocks as u64 * 4096;
    store.close().expect("close");
    let secs = start.elapsed().as_secs_f64();
    let n = records.len() as f64;
    (bytes as f64 / n, n / secs)
}

fn main() {
    let cache = std::env::temp_dir().join("tsstore-pvlib");
    let Some(datasets) = pvlib::datasets(&cache) else {
        eprintln!("cannot download pvlib 0.16.1 from PyPI (pip); nothing measured");
        std::process::exit(1);
    };
    for (name, records) in datasets {
        let (raw_bpr, raw_rate) = tsstore(&records, Encoding::Raw);
        let (frame_bpr, frame_rate) = tsstore(&records, Encoding::Compressed);
        let (bpr, rate, points) = tsink(&records);
        println!("{name}: {} readings", records.len());
        println!(
            "  tsstore raw layout   {raw_bpr:>7.1} B/reading  {raw_rate:>9.0} readings/s  (the record as written)"
        );
        println!(
            "  tsstore compressed   {frame_bpr:>7.1} B/reading  {frame_rate:>9.0} readings/s  (the record as written)"
        );
        println!(
            "  tsink 0.10.2         {bpr:>7.1} B/reading  {rate:>9.0} readings/s  ({points:.0} numbers per reading, {:.2} B/point)",
            bpr / points
        );
    }
}
