//! Readings per block of the compressed encoding's frame codec, on real
//! sensor data: two files of pvlib 0.16.1, fetched from PyPI by this bench
//! (`pip download pvlib==0.16.1 --no-deps`, read from the wheel; nothing
//! is committed).
//!
//! * `723170TYA.CSV`: TMY3 weather, hourly, 8 760 readings; the 14 first
//!   measured fields (irradiance, illuminance, cloud cover, temperature,
//!   dew point) as a flat JSON object. A TMY stitches months of different
//!   years together, so its timestamps are laid on one year (2001) to make
//!   them increase, as a store requires.
//! * `soiling_hsu_example_inputs.csv`: rain, PM2.5 and PM10, hourly.
//!
//! For each: bytes per reading in today's layout (a raw store, measured by
//! inserting every reading), then in 4 KiB blocks of zstd-1 frames, with
//! records as they are and with the columnar body; every frame is read
//! back and compared byte for byte. Also the cost: packing per reading and
//! unpacking per block.
//!
//! `cargo bench -p tsstore --bench encoding`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tsstore::encoding::FrameCodec;
use tsstore::{Config, DataType, Store, SyncPolicy};

const BLOCK: usize = 4096;
/// What a compressed block keeps beside its frame: a header and one
/// tombstone bit per record (the block layout reserves both).
const HEADER: usize = 32;
/// Raw bytes the writer stages before it packs a block (a staging area of
/// 32 blocks): `pack` sees at most this much at a time.
const STAGED: usize = 32 * BLOCK;

fn fetch(dir: &Path) -> Option<PathBuf> {
    let wheel = dir.join("pvlib-0.16.1-py3-none-any.whl");
    if !wheel.exists() {
        let ok = Command::new("pip")
            .args(["download", "pvlib==0.16.1", "--no-deps", "--quiet", "-d"])
            .arg(dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return None;
        }
    }
    Some(wheel)
}

/// A file of the wheel (a zip), through Python's zipfile (pip needs Python).
fn from_wheel(wheel: &Path, name: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))",
        ])
        .arg(wheel)
        .arg(format!("pvlib/data/{name}"))
        .output()
        .expect("python3");
    assert!(out.status.success(), "{name} not in the wheel");
    String::from_utf8(out.stdout).expect("utf-8 csv")
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

fn ns(y: i64, mo: i64, d: i64, h: i64) -> i64 {
    (days_from_civil(y, mo, d) * 86_400 + h * 3600) * 1_000_000_000
}

fn tmy(csv: &str) -> Vec<(i64, Vec<u8>)> {
    let mut lines = csv.lines().skip(1);
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let fields: Vec<(usize, &str)> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| {
            h.contains('(')
                && !h.contains("source")
                && !h.contains("uncert")
                && !h.starts_with("Date")
                && !h.starts_with("Time")
        })
        .map(|(i, h)| (i, h.split(" (").next().unwrap_or(h)))
        .take(14)
        .collect();
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let date: Vec<i64> = cells[0]
                .split('/')
                .map(|v| v.parse().expect("date"))
                .collect();
            let hour: i64 = cells[1][..2].parse().expect("hour");
            let body: Vec<String> = fields
                .iter()
                .map(|(i, name)| format!("\"{name}\":{}", cells[*i]))
                .collect();
            (
                ns(2001, date[0], date[1], hour),
                format!("{{{}}}", body.join(",")).into_bytes(),
            )
        })
        .collect()
}

fn soiling(csv: &str) -> Vec<(i64, Vec<u8>)> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let (date, time) = cells[0].split_once(' ').expect("timestamp");
            let d: Vec<i64> = date.split('-').map(|v| v.parse().expect("date")).collect();
            let hour: i64 = time[..2].parse().expect("hour");
            let body: Vec<String> = (1..header.len())
                .map(|i| format!("\"{}\":{}", header[i], cells[i]))
                .collect();
            (
                ns(d[0], d[1], d[2], hour),
                format!("{{{}}}", body.join(",")).into_bytes(),
            )
        })
        .collect()
}

/// Bytes per reading in today's layout: a raw store that holds them all.
fn raw_bytes_per_reading(records: &[(i64, Vec<u8>)]) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        num_blocks: (records.len() / 4 + 16) as u32,
        data_block_size: BLOCK as u32,
        index_block_size: 4096,
        data_type: DataType::Json,
    };
    let store = Store::create_with(dir.path(), "raw", config, SyncPolicy::Never).expect("create");
    store
        .put_many(records.iter().map(|(t, p)| (Some(*t), p.as_slice())))
        .expect("insert");
    store.stats().active_blocks as f64 * BLOCK as f64 / records.len() as f64
}

/// Packs every reading into blocks; returns bytes per reading, µs of
/// packing per reading and of unpacking per block, after checking that
/// every block reads back exactly.
fn compressed(records: &[(i64, Vec<u8>)], columnar: bool) -> (f64, f64, f64, f64, f64) {
    let refs: Vec<(i64, &[u8])> = records.iter().map(|(t, p)| (*t, p.as_slice())).collect();
    let mut codec = FrameCodec::new(1 << 20).expect("codec");
    let mut frames = Vec::new();
    let start = Instant::now();
    let mut i = 0;
    while i < refs.len() {
        let mut room = BLOCK - HEADER;
        let mut end = i;
        let mut staged = 0;
        while end < refs.len() && staged + refs[end].1.len() + 16 <= STAGED {
            staged += refs[end].1.len() + 16;
            end += 1;
        }
        loop {
            let (n, frame) = codec
                .pack(&refs[i..end.max(i + 1)], columnar, room)
                .expect("pack");
            if frame.len() + n.div_ceil(8) <= BLOCK - HEADER {
                frames.push((i, n, frame));
                i += n;
                break;
            }
            room = BLOCK - HEADER - n.div_ceil(8);
        }
    }
    let pack = start.elapsed().as_secs_f64() * 1e6 / refs.len() as f64;
    let (mut out, mut payloads) = (Vec::new(), Vec::new());
    let start = Instant::now();
    for (first, n, frame) in &frames {
        codec
            .unpack(frame, &mut out, &mut payloads)
            .expect("unpack");
        assert_eq!(out.len(), *n);
        for (k, (ts, range)) in out.iter().enumerate() {
            let (want_ts, want) = &records[first + k];
            assert!(
                ts == want_ts && &payloads[range.clone()] == want,
                "read back differs"
            );
        }
    }
    let unpack = start.elapsed().as_secs_f64() * 1e6 / frames.len() as f64;
    // A lookup by time: inflate the block's frame, rebuild one record.
    let start = Instant::now();
    let mut one = Vec::new();
    for (first, n, frame) in &frames {
        let view = codec.inflate(frame).expect("inflate");
        let want = records[first + n / 2].0;
        let i = view.timestamps().binary_search(&want).expect("found");
        one.clear();
        view.write_record(i, &mut one);
        assert_eq!(one, records[first + n / 2].1);
    }
    let lookup = start.elapsed().as_secs_f64() * 1e6 / frames.len() as f64;
    let mut zstd = zstd::bulk::Decompressor::new().expect("zstd");
    let start = Instant::now();
    for (_, _, frame) in &frames {
        zstd.decompress(frame, 1 << 20).expect("decompress");
    }
    let inflate = start.elapsed().as_secs_f64() * 1e6 / frames.len() as f64;
    (
        frames.len() as f64 * BLOCK as f64 / records.len() as f64,
        pack,
        unpack,
        inflate,
        lookup,
    )
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pvlib");
    std::fs::create_dir_all(&cache).expect("cache dir");
    let Some(wheel) = fetch(&cache) else {
        eprintln!("cannot download pvlib 0.16.1 from PyPI (pip); nothing measured");
        std::process::exit(1);
    };
    for (name, records) in [
        (
            "723170TYA.CSV (TMY3, 14 fields)",
            tmy(&from_wheel(&wheel, "723170TYA.CSV")),
        ),
        (
            "soiling_hsu_example_inputs.csv",
            soiling(&from_wheel(&wheel, "soiling_hsu_example_inputs.csv")),
        ),
    ] {
        assert!(
            records.windows(2).all(|w| w[0].0 < w[1].0),
            "timestamps increase"
        );
        let payload =
            records.iter().map(|(_, p)| p.len()).sum::<usize>() as f64 / records.len() as f64;
        let raw = raw_bytes_per_reading(&records);
        println!(
            "{name}: {} readings, {payload:.1} payload bytes each",
            records.len()
        );
        println!("  raw layout (today)           {raw:>6.1} B/reading");
        for (label, columnar) in [
            ("zstd-1, records as written", false),
            ("zstd-1, columnar body", true),
        ] {
            let (bpr, pack, unpack, inflate, lookup) = compressed(&records, columnar);
            println!(
                "  {label:<28} {bpr:>6.1} B/reading  {:>5.1}x  pack {pack:.2} µs/reading, unpack {unpack:.0} µs/block (zstd {inflate:.0}), one record {lookup:.0} µs",
                raw / bpr
            );
        }
    }
}
