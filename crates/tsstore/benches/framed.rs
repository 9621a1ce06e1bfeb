//! The compressed encoding end to end (a `Store` created with
//! `Encoding::Compressed`: frames in its main ring, records staged first
//! in its staging ring) against a raw store of the same data blocks, on
//! the pvlib readings (`benches/pvlib`).
//!
//! Each file is inserted several times, each lap shifted by the file's
//! span so that timestamps keep increasing, until both stores have
//! wrapped; then the readings each keeps are counted, per MiB of its whole
//! footprint (data, index and meta files), and the framed store's are read
//! back and compared byte for byte with what was inserted; the same for
//! JSON and schema stores of 256 KiB and 4 MiB (filled with `put_many`).
//! In the same
//! run: `put` one at a time, batches of 1 000, `get_by_time`, a range of
//! 10 000 with payloads (frame cache off, then warm), and the bytes
//! written per payload byte (`/proc/self/io`, sync policy `interval`),
//! each beside the raw store's.
//!
//! `cargo bench -p tsstore --bench framed` (with `ONLY_RETENTION=1`, the
//! retention figures alone; with `ONLY_READS=1`, the read figures alone,
//! `READ_ROUNDS` times)

mod proc_io;
mod pvlib;

use std::path::Path;
use std::time::{Duration, Instant};

use proc_io::write_bytes;
use tsstore::{Config, DataType, Encoding, Footprint, Store, SyncPolicy};

/// Data blocks of either store: the default store's. The compressed one
/// gives 64 of them to its staging ring.
const BLOCKS: u32 = 1024;
/// Store sizes of the retention figures: a small sensor's ring (256 KiB
/// of 4 KiB blocks) and the default store (4 MiB).
const SIZES: [u32; 2] = [64, BLOCKS];
/// Each store is filled this many times, raw and compressed alternately,
/// and each figure is the median: timings on these machines drift.
const RUNS: usize = 3;

fn config(blocks: u32) -> Config {
    Config {
        num_blocks: blocks,
        data_block_size: pvlib::BLOCK as u32,
        index_block_size: 4096,
        data_type: DataType::Json,
        encoding: tsstore::Encoding::Raw,
    }
}

/// The file's readings, `laps` times, each lap shifted past the last.
fn laps(records: &[pvlib::Reading], laps: usize) -> Vec<pvlib::Reading> {
    let span = records[records.len() - 1].0 - records[0].0 + 3_600_000_000_000;
    (0..laps as i64)
        .flat_map(|lap| {
            records
                .iter()
                .map(move |(t, p)| (t + lap * span, p.clone()))
        })
        .collect()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn interval() -> SyncPolicy {
    SyncPolicy::Interval(Duration::from_secs(1))
}

#[derive(Clone, Copy)]
struct Figures {
    kept: usize,
    footprint: u64,
    put: f64,
    batch: f64,
    lookup_us: f64,
    /// Lookups of 1 000 consecutive records: neighbours share frames
    /// (the frame cache's case).
    warm_lookup_us: f64,
    range_ms: f64,
    warm_range_ms: f64,
    amplification: f64,
}

/// Fills two stores of `config` named after `name`, one a reading at a
/// time, one in batches of 1 000, and measures them. Both wrap; the second
/// must give back the newest readings, contiguous, byte for byte.
fn measure(dir: &Path, name: &str, config: Config, readings: &[pvlib::Reading]) -> Figures {
    let payload: u64 = readings.iter().map(|(_, p)| p.len() as u64).sum();
    let before = write_bytes();
    let store = Store::create_with(dir, name, config, interval()).expect("create");
    let start = Instant::now();
    for (t, p) in readings {
        store.put(*t, p).expect("put");
    }
    let put = readings.len() as f64 / start.elapsed().as_secs_f64();
    store.close().expect("close");
    let amplification = (write_bytes() - before) as f64 / payload as f64;
    let store = Store::create_with(dir, &format!("{name}2"), config, interval()).expect("create");
    let start = Instant::now();
    for chunk in readings.chunks(1000) {
        store
            .put_many(chunk.iter().map(|(t, p)| (Some(*t), p.as_slice())))
            .expect("put_many");
    }
    let batch = readings.len() as f64 / start.elapsed().as_secs_f64();
    // A compressed store's framer may still be filling (and wrapping) its
    // main ring; a reader meanwhile loses what is overwritten under it, as
    // with any ring.
    store.frame_staged().expect("frame");
    let kept: Vec<(i64, Vec<u8>)> = store
        .iter()
        .map(|r| r.map(|r| (r.timestamp(), r.data)))
        .collect::<tsstore::Result<_>>()
        .expect("read");
    let first = readings
        .iter()
        .position(|r| r.0 == kept[0].0)
        .expect("kept from the input");
    if kept[..] != readings[first..] {
        let at = kept
            .iter()
            .zip(&readings[first..])
            .position(|(a, b)| a != b);
        panic!(
            "the {name} store must give back what went in, byte for byte: kept {} of {}, \
             first difference at {at:?}: {:?} against {:?}",
            kept.len(),
            readings.len() - first,
            at.map(|i| kept[i].0),
            at.map(|i| readings[first + i].0)
        );
    }
    let start = Instant::now();
    for k in 0..1000 {
        let ts = kept[k * kept.len() / 1000].0;
        std::hint::black_box(store.get_by_time(ts).expect("get"));
    }
    let lookup_us = start.elapsed().as_secs_f64() * 1e6 / 1000.0;
    let from = kept.len() / 3;
    let start = Instant::now();
    for (ts, _) in &kept[from..(from + 1000).min(kept.len())] {
        std::hint::black_box(store.get_by_time(*ts).expect("get"));
    }
    let warm_lookup_us = start.elapsed().as_secs_f64() * 1e6 / (kept.len() - from).min(1000) as f64;
    let from = kept[kept.len().saturating_sub(10_000)].0;
    let range = || {
        let start = Instant::now();
        let mut n = 0;
        for r in store.iter_range(from, i64::MAX) {
            std::hint::black_box(r.expect("range"));
            n += 1;
        }
        start.elapsed().as_secs_f64() * 1e3 * 10_000.0 / n as f64
    };
    // First with the frame cache off: every frame decompressed and
    // rebuilt. Then read once more to fill it, and measured again.
    tsstore::set_frame_cache_bytes(0);
    let range_ms = range();
    tsstore::set_frame_cache_bytes(tsstore::DEFAULT_FRAME_CACHE_BYTES);
    range();
    let warm_range_ms = range();
    Figures {
        kept: kept.len(),
        footprint: Footprint::of(&config).expect("footprint").total_bytes,
        put,
        batch,
        lookup_us,
        warm_lookup_us,
        range_ms,
        warm_range_ms,
        amplification,
    }
}

/// `readings` with their keys spelled as schema field names may be (TMY3
/// has `"DH illum"`): other characters become `_`, in the record's bytes,
/// so the values keep their text.
fn schema_readings(readings: &[pvlib::Reading]) -> Vec<pvlib::Reading> {
    let value: serde_json::Value = serde_json::from_slice(&readings[0].1).expect("json reading");
    let renames: Vec<(Vec<u8>, Vec<u8>)> = value
        .as_object()
        .expect("an object")
        .keys()
        .map(|k| {
            let safe: String = k
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            (
                format!("\"{k}\":").into_bytes(),
                format!("\"{safe}\":").into_bytes(),
            )
        })
        .filter(|(a, b)| a != b)
        .collect();
    readings
        .iter()
        .map(|(t, p)| {
            let mut p = p.clone();
            for (from, to) in &renames {
                if let Some(at) = p.windows(from.len()).position(|w| w == &from[..]) {
                    p.splice(at..at + from.len(), to.iter().copied());
                }
            }
            (*t, p)
        })
        .collect()
}

/// A schema store's schema for `reading`'s fields (numbers as float64,
/// strings, bools), in its key order, so expanded records read back as
/// written.
fn schema_of(reading: &[u8]) -> Vec<tsstore::Field> {
    let value: serde_json::Value = serde_json::from_slice(reading).expect("json reading");
    let object = value.as_object().expect("an object");
    // In the record's own order (serde_json's map is sorted).
    let at = |k: &str| {
        let key = format!("\"{k}\":").into_bytes();
        reading.windows(key.len()).position(|w| w == &key[..])
    };
    let mut fields: Vec<(&String, &serde_json::Value)> = object.iter().collect();
    fields.sort_by_key(|(k, _)| at(k));
    fields
        .into_iter()
        .enumerate()
        .map(|(i, (name, v))| tsstore::Field {
            index: i as u32 + 1,
            name: name.clone(),
            field_type: match v {
                serde_json::Value::Bool(_) => tsstore::FieldType::Bool,
                serde_json::Value::String(_) => tsstore::FieldType::String,
                _ => tsstore::FieldType::Float64,
            },
        })
        .collect()
}

/// The readings a store of `config` keeps (a schema store's expanded),
/// filled with `put_many` until it wrapped.
fn kept(dir: &Path, readings: &[pvlib::Reading], config: Config) -> Vec<(i64, Vec<u8>)> {
    let name = format!(
        "{}-{}-{}",
        config.data_type, config.encoding, config.num_blocks
    );
    let store = Store::create_with(dir, &name, config, interval()).expect("create");
    if config.data_type == DataType::Schema {
        store.set_schema(schema_of(&readings[0].1)).expect("schema");
    }
    for chunk in readings.chunks(1000) {
        store
            .put_many(chunk.iter().map(|(t, p)| (Some(*t), p.as_slice())))
            .expect("put_many");
    }
    store.frame_staged().expect("frame");
    let kept: Vec<(i64, Vec<u8>)> = store
        .iter()
        .map(|r| r.map(|r| (r.timestamp(), store.expand(&r.data).into_owned())))
        .collect::<tsstore::Result<_>>()
        .expect("read");
    assert!(kept.len() < readings.len(), "the {name} store wrapped");
    kept
}

/// Readings per MiB of its whole footprint a store of `config` keeps.
fn per_mib(kept: usize, config: &Config) -> f64 {
    kept as f64 / mib(Footprint::of(config).expect("footprint").total_bytes)
}

/// Readings kept per MiB by raw and compressed stores of `data_type`, at
/// each size of `SIZES`, filled alike; the compressed ones give back the
/// newest readings, contiguous, and (schema) what the raw one gives.
fn retention(readings: &[pvlib::Reading], data_type: DataType) {
    let kind = data_type.to_string();
    let mut line = format!("  {kind:<6} readings kept per MiB");
    let mut framed_at = Vec::new();
    for blocks in SIZES {
        let dir = tempfile::tempdir().expect("temp dir");
        let raw = Config {
            data_type,
            ..config(blocks)
        };
        let compressed = Config {
            encoding: Encoding::Compressed,
            ..raw
        };
        let raw_kept = kept(dir.path(), readings, raw);
        let framed = kept(dir.path(), readings, compressed);
        let first = readings
            .iter()
            .position(|r| r.0 == framed[0].0)
            .expect("kept from the input");
        assert!(
            framed
                .iter()
                .map(|r| r.0)
                .eq(readings[first..].iter().map(|r| r.0)),
            "the newest readings, contiguous"
        );
        if data_type == DataType::Schema {
            // A schema store gives back its own form of a record (numbers
            // as their float64 text): the compressed one must give the
            // raw one's, byte for byte.
            let tail = &framed[framed.len().saturating_sub(raw_kept.len())..];
            assert!(
                tail == &raw_kept[..],
                "compressed and raw schema stores agree"
            );
        }
        let (r, f) = (
            per_mib(raw_kept.len(), &raw),
            per_mib(framed.len(), &compressed),
        );
        framed_at.push(f);
        line += &format!(
            "   {} KiB: raw {r:>7.0} framed {f:>7.0} {:>5.1}x",
            u64::from(blocks) * pvlib::BLOCK as u64 / 1024,
            f / r
        );
    }
    println!("{line}");
    println!(
        "  {kind:<6} {} blocks keep {:.1} % of {} blocks' readings per MiB",
        SIZES[0],
        100.0 * framed_at[0] / framed_at[1],
        SIZES[1]
    );
}

/// The read figures alone, raw and compressed stores filled once with
/// `put_many`, each read `READ_ROUNDS` times (for profiling the read
/// path: `ONLY_READS=1`, under callgrind with `READ_ROUNDS=1`).
fn reads(name: &str, readings: &[pvlib::Reading]) {
    let rounds: usize = std::env::var("READ_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().expect("temp dir");
    let compressed = Config {
        encoding: Encoding::Compressed,
        ..config(BLOCKS)
    };
    let stores: Vec<Store> = [config(BLOCKS), compressed]
        .into_iter()
        .map(|config| {
            let store =
                Store::create_with(dir.path(), &config.encoding.to_string(), config, interval())
                    .expect("create");
            for chunk in readings.chunks(1000) {
                store
                    .put_many(chunk.iter().map(|(t, p)| (Some(*t), p.as_slice())))
                    .expect("put_many");
            }
            store.frame_staged().expect("frame");
            store
        })
        .collect();
    tsstore::set_frame_cache_bytes(0);
    let stamps: Vec<Vec<i64>> = stores
        .iter()
        .map(|store| {
            store
                .iter()
                .with_data(false)
                .map(|r| r.map(|r| r.timestamp()))
                .collect::<tsstore::Result<_>>()
                .expect("read")
        })
        .collect();
    for _ in 0..rounds {
        let mut line = format!("{name}:");
        for (store, stamps) in stores.iter().zip(&stamps) {
            tsstore::set_frame_cache_bytes(tsstore::DEFAULT_FRAME_CACHE_BYTES);
            let start = Instant::now();
            for k in 0..1000 {
                std::hint::black_box(
                    store
                        .get_by_time(stamps[k * stamps.len() / 1000])
                        .expect("get"),
                );
            }
            let spread = start.elapsed().as_secs_f64() * 1e3;
            let start = Instant::now();
            for &ts in &stamps[stamps.len() / 3..][..1000] {
                std::hint::black_box(store.get_by_time(ts).expect("get"));
            }
            let neighbours = start.elapsed().as_secs_f64() * 1e3;
            let from = stamps[stamps.len() - 10_000];
            let range = || {
                let start = Instant::now();
                let mut records = store.iter_range(from, i64::MAX);
                while let Some(r) = records.next_ref() {
                    std::hint::black_box(r.expect("range"));
                }
                start.elapsed().as_secs_f64() * 1e3
            };
            tsstore::set_frame_cache_bytes(0);
            let cold = range();
            tsstore::set_frame_cache_bytes(tsstore::DEFAULT_FRAME_CACHE_BYTES);
            range();
            let warm = range();
            line += &format!(
                "  get_by_time spread {spread:>6.1} µs neighbours {neighbours:>4.1} µs  range cold {cold:>5.2} ms warm {warm:>5.2} ms |"
            );
        }
        println!("{line}");
    }
}

/// Each figure's median over `runs`.
fn median(runs: &[Figures]) -> Figures {
    let mid = |f: fn(&Figures) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Figures {
        kept: mid(|x| x.kept as f64) as usize,
        footprint: runs[0].footprint,
        put: mid(|x| x.put),
        batch: mid(|x| x.batch),
        lookup_us: mid(|x| x.lookup_us),
        warm_lookup_us: mid(|x| x.warm_lookup_us),
        range_ms: mid(|x| x.range_ms),
        warm_range_ms: mid(|x| x.warm_range_ms),
        amplification: mid(|x| x.amplification),
    }
}

fn main() {
    let Some(datasets) = pvlib::bench_datasets() else {
        return;
    };
    for ((name, records), lap_count) in datasets.into_iter().zip([72, 240]) {
        let readings = laps(&records, lap_count);
        let compressed = Config {
            encoding: Encoding::Compressed,
            ..config(BLOCKS)
        };
        if std::env::var_os("ONLY_READS").is_some() {
            reads(name, &readings);
            continue;
        }
        if std::env::var_os("ONLY_RETENTION").is_some() {
            retention(&readings, DataType::Json);
            retention(&schema_readings(&readings), DataType::Schema);
            continue;
        }
        let (mut raw_runs, mut framed_runs) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let dir = tempfile::tempdir().expect("temp dir");
            raw_runs.push(measure(dir.path(), "raw", config(BLOCKS), &readings));
            framed_runs.push(measure(dir.path(), "framed", compressed, &readings));
        }
        let (r, f) = (median(&raw_runs), median(&framed_runs));
        assert!(f.kept < readings.len(), "the framed store wrapped");
        let per_mib = |x: &Figures| x.kept as f64 / mib(x.footprint);
        println!(
            "{name}, {lap_count} laps: {} readings, {BLOCKS} data blocks of {} bytes each store, \
             medians of {RUNS} runs",
            readings.len(),
            pvlib::BLOCK
        );
        println!(
            "  readings kept per MiB   raw {:>9.0}   framed {:>9.0}   {:.1}x",
            per_mib(&r),
            per_mib(&f),
            per_mib(&f) / per_mib(&r)
        );
        println!(
            "  put, one at a time      raw {:>9.0}/s framed {:>9.0}/s {:.2}x",
            r.put,
            f.put,
            f.put / r.put
        );
        println!(
            "  put_many of 1 000       raw {:>9.0}/s framed {:>9.0}/s {:.2}x",
            r.batch,
            f.batch,
            f.batch / r.batch
        );
        println!(
            "  get_by_time             raw {:>7.1} µs  framed {:>7.1} µs",
            r.lookup_us, f.lookup_us
        );
        println!(
            "  get_by_time, neighbours raw {:>7.1} µs  framed {:>7.1} µs (frame cache)",
            r.warm_lookup_us, f.warm_lookup_us
        );
        println!(
            "  range of 10 000         raw {:>7.2} ms  framed {:>7.2} ms  {:.2}x",
            r.range_ms,
            f.range_ms,
            f.range_ms / r.range_ms
        );
        println!(
            "  range of 10 000, again  raw {:>7.2} ms  framed {:>7.2} ms  {:.2}x (frame cache)",
            r.warm_range_ms,
            f.warm_range_ms,
            f.warm_range_ms / r.warm_range_ms
        );
        println!(
            "  bytes written per payload byte (interval)  raw {:.2}  framed {:.2}  {:.2}x",
            r.amplification,
            f.amplification,
            f.amplification / r.amplification
        );
        retention(&readings, DataType::Json);
        retention(&schema_readings(&readings), DataType::Schema);
    }
}
