//! `tsstore export` and `tsstore import` on a store of 1 000 000 JSON
//! readings, run as the bench-profile binary (as a user runs it), timed
//! from spawn to exit, with the child's peak RSS from `wait4`.
//!
//! Baselines in the same run: the engine's own iterator over the same
//! records (what export cannot beat), and `put_many` of the same records
//! from memory (what import cannot beat). A store of 100 000 records shows
//! that memory does not grow with the store.
//!
//! `cargo bench -p tsstore-server --bench transfer`
//! (`STREAMING_SCALE=0.1`: a tenth of the records, a quick look).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tsstore::{Config, DataType, Store, SyncPolicy};

const T0: i64 = 1_764_000_000_000_000_000;

/// A reading like a sensor's: ~60 bytes of flat JSON.
fn reading(i: usize) -> Vec<u8> {
    format!(
        r#"{{"temp":{}.{},"hum":{}.5,"room":"lab-{}","seq":{i}}}"#,
        18 + i % 9,
        i % 10,
        40 + i % 17,
        i % 5
    )
    .into_bytes()
}

fn config(n: usize) -> Config {
    // 84 bytes a record stored (payload and header), plus room to spare.
    let blocks = (n * 84 / 4096 + 64) as u32;
    Config {
        num_blocks: blocks,
        data_block_size: 4096,
        index_block_size: 4096,
        data_type: DataType::Json,
        encoding: tsstore::Encoding::Raw,
    }
}

/// `put_many` of `n` readings in batches of 8192 (the import's batch).
fn put_from_memory(dir: &Path, name: &str, n: usize) -> Duration {
    let records: Vec<(Option<i64>, Vec<u8>)> = (0..n)
        .map(|i| (Some(T0 + i as i64 * 1_000_000), reading(i)))
        .collect();
    let store = Store::create_with(dir, name, config(n), SyncPolicy::Never).expect("create");
    let start = Instant::now();
    for chunk in records.chunks(8192) {
        store
            .put_many(chunk.iter().map(|(t, p)| (*t, p.as_slice())))
            .expect("put_many");
    }
    store.close().expect("close");
    start.elapsed()
}

/// Reads every record with its payload, as export does before encoding.
fn iterate(dir: &Path, name: &str) -> (Duration, usize) {
    let store = Store::open_read_only(dir, name).expect("open");
    let start = Instant::now();
    let mut bytes = 0;
    for rec in store.iter() {
        bytes += rec.expect("read").data.len();
    }
    (start.elapsed(), bytes)
}

/// Runs the binary; its wall time and peak RSS in kB.
///
/// The peak is the child's `VmHWM`, read every 2 ms until it exits: the
/// `ru_maxrss` of `wait4` would carry this (large) bench process's peak
/// over the child's exec.
fn timed(args: &[&str]) -> (Duration, u64) {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tsstore"))
        .args(args)
        .env_remove("TSSTORE_CONFIG")
        .env_remove("TSSTORE_DATA_PATH")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn tsstore");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Some(kb) = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        }) {
            peak = peak.max(kb);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = start.elapsed();
    assert!(status.success(), "{args:?} failed");
    (elapsed, peak)
}

fn rate(n: usize, t: Duration) -> f64 {
    n as f64 / t.as_secs_f64()
}

fn main() {
    if !common::bench_requested() {
        return;
    }
    let n = common::scaled(1_000_000);
    let small = n / 10;
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().join("data");
    std::fs::create_dir_all(&d).expect("data dir");
    let path = d.to_str().expect("utf-8");
    let file = dir.path().join("export.ndjson");
    let f = file.to_str().expect("utf-8");
    let csv = dir.path().join("export.csv");

    let put = put_from_memory(&d, "big", n);
    put_from_memory(&d, "small", small);
    let (iter, bytes) = iterate(&d, "big");
    println!(
        "{n} readings, {bytes} payload bytes ({} per reading)",
        bytes / n
    );
    println!(
        "baseline  engine iterator            {:>10.0} records/s",
        rate(n, iter)
    );
    println!(
        "baseline  put_many from memory       {:>10.0} records/s",
        rate(n, put)
    );

    let (small_t, small_rss) = timed(&["export", "small", "--path", path, "-q", "-o", f]);
    let (t, rss) = timed(&["export", "big", "--path", path, "-q", "-o", f]);
    let size = std::fs::metadata(&file).expect("export file").len();
    println!(
        "export    ndjson to a file           {:>10.0} records/s  ({:.2}x the iterator)  {:.1} MB written",
        rate(n, t),
        rate(n, t) / rate(n, iter),
        size as f64 / 1e6
    );
    println!(
        "export    peak RSS                   {rss} kB for {n} records, {small_rss} kB for {small} ({:.0} records/s)",
        rate(small, small_t)
    );
    let (t, _) = timed(&[
        "export",
        "big",
        "--path",
        path,
        "-q",
        "--format",
        "csv",
        "-o",
        csv.to_str().expect("utf-8"),
    ]);
    println!(
        "export    csv to a file              {:>10.0} records/s  (two passes: columns, rows)",
        rate(n, t)
    );

    let (t, rss) = timed(&["import", "copy", f, "--path", path, "--create", "-q"]);
    println!(
        "import    ndjson, checked then put   {:>10.0} records/s  ({:.2}x put_many)  peak RSS {rss} kB",
        rate(n, t),
        rate(n, t) / rate(n, put)
    );
    let (t, _) = timed(&[
        "import",
        "copy2",
        f,
        "--path",
        path,
        "--create",
        "-q",
        "--skip-invalid",
    ]);
    println!(
        "import    ndjson, one pass            {:>10.0} records/s  ({:.2}x put_many)",
        rate(n, t),
        rate(n, t) / rate(n, put)
    );
    let copied = Store::open_read_only(&d, "copy")
        .expect("copy")
        .iter()
        .count();
    assert_eq!(copied, n, "every record imported");
}
