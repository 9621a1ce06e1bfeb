//! The two pvlib 0.16.1 data files the compressed-encoding benches read,
//! fetched from PyPI (`pip download pvlib==0.16.1 --no-deps`, read from
//! the wheel; nothing is committed), as JSON readings with timestamps.
//! Shared by `benches/encoding.rs`, `benches/framed.rs` and the tsink
//! peer (`peers/tsink`).

// Each bench uses a part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tsstore::encoding::split::Record;

/// Block size of every store and frame measured.
pub const BLOCK: usize = 4096;
/// What the codec bench keeps beside each frame in its block: a header
/// and one tombstone bit per record. (`FramedStore`'s frames carry the
/// raw block and object headers and a count, 52 bytes: its figures are
/// `benches/framed.rs`'s.)
const HEADER: usize = 32;
/// Raw bytes the writer stages before it packs blocks (a staging ring of
/// 64 blocks): `pack` sees at most this much at a time.
const STAGED: usize = 64 * BLOCK;

/// Packs every reading into 4 KiB blocks of frames as the writer will:
/// (index of the first reading, readings, frame) per block.
pub fn pack_blocks(
    codec: &mut tsstore::encoding::FrameCodec,
    records: &[Reading],
    columnar: bool,
) -> Vec<(usize, usize, Vec<u8>)> {
    let refs: Vec<Record<'_>> = records.iter().map(|(t, p)| Record::new(*t, p)).collect();
    let mut frames = Vec::new();
    let mut i = 0;
    while i < refs.len() {
        let mut room = BLOCK - HEADER;
        let mut end = i;
        let mut staged = 0;
        while end < refs.len() && staged + refs[end].payload.len() + 16 <= STAGED {
            staged += refs[end].payload.len() + 16;
            end += 1;
        }
        loop {
            let n = codec
                .pack(&refs[i..end.max(i + 1)], columnar, room)
                .expect("pack");
            let frame = codec.packed();
            if frame.len() + n.div_ceil(8) <= BLOCK - HEADER {
                frames.push((i, n, frame.to_vec()));
                i += n;
                break;
            }
            room = BLOCK - HEADER - n.div_ceil(8);
        }
    }
    frames
}

/// A reading: nanoseconds, and a flat JSON object of the row's fields.
pub type Reading = (i64, Vec<u8>);

/// The readings of a bench run (`cargo bench` passes `--bench`; a test
/// run of the benches gets `None` and does nothing), fetched once into
/// the target's temporary directory; without them the run fails.
pub fn bench_datasets() -> Option<Vec<(&'static str, Vec<Reading>)>> {
    if !std::env::args().any(|a| a == "--bench") {
        return None;
    }
    let base = option_env!("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let Some(datasets) = datasets(&base.join("pvlib")) else {
        eprintln!("cannot download pvlib 0.16.1 from PyPI (pip); nothing measured");
        std::process::exit(1);
    };
    Some(datasets)
}

/// Both files' readings, named: fetched once into `cache`.
pub fn datasets(cache: &Path) -> Option<Vec<(&'static str, Vec<Reading>)>> {
    std::fs::create_dir_all(cache).ok()?;
    let wheel = fetch(cache)?;
    Some(vec![
        (
            "723170TYA.CSV (TMY3, 14 fields)",
            tmy(&from_wheel(&wheel, "723170TYA.CSV")),
        ),
        (
            "soiling_hsu_example_inputs.csv",
            soiling(&from_wheel(&wheel, "soiling_hsu_example_inputs.csv")),
        ),
    ])
}

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

/// Nanoseconds at hour `h` (0..=24; 24 is the next day's midnight, as
/// TMY3 writes it) of a date, UTC.
fn ns(y: i64, mo: i64, d: i64, h: i64) -> i64 {
    let midnight = format!("{y:04}-{mo:02}-{d:02}T00:00:00Z");
    tsstore::parse_rfc3339(&midnight).expect("a date of the file") + h * 3_600_000_000_000
}

pub fn tmy(csv: &str) -> Vec<(i64, Vec<u8>)> {
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

pub fn soiling(csv: &str) -> Vec<(i64, Vec<u8>)> {
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
