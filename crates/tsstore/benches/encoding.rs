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
//! records as they are, with the columnar body, and with its typed form
//! (issue 35); every frame is read
//! back and compared byte for byte. Also the cost: packing per reading and
//! unpacking per block.
//!
//! `cargo bench -p tsstore --bench encoding`

mod pvlib;

use std::time::Instant;

use tsstore::encoding::FrameCodec;
use tsstore::{Config, DataType, Store, SyncPolicy};

use pvlib::BLOCK;

/// Bytes per reading in today's layout: a raw store that holds them all.
fn raw_bytes_per_reading(records: &[(i64, Vec<u8>)]) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        num_blocks: (records.len() / 4 + 16) as u32,
        data_block_size: BLOCK as u32,
        index_block_size: 4096,
        data_type: DataType::Json,
        encoding: tsstore::Encoding::Raw,
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
fn compressed(
    records: &[(i64, Vec<u8>)],
    columnar: bool,
    typed: bool,
) -> (f64, f64, f64, f64, f64) {
    let mut codec = FrameCodec::new(1 << 20).expect("codec");
    codec.set_typed(typed);
    let start = Instant::now();
    let frames = pvlib::pack_blocks(&mut codec, records, columnar);
    let pack = start.elapsed().as_secs_f64() * 1e6 / records.len() as f64;
    let mut out = tsstore::encoding::columns::Unpacked::default();
    let start = Instant::now();
    for (first, n, frame) in &frames {
        codec.unpack(frame, &mut out).expect("unpack");
        assert_eq!(out.len(), *n);
        for k in 0..out.len() {
            let (want_ts, want) = &records[first + k];
            assert!(
                out.stamps[k] == *want_ts && out.payload(k) == want,
                "read back differs"
            );
        }
    }
    let unpack = start.elapsed().as_secs_f64() * 1e6 / frames.len() as f64;
    // A lookup by time: inflate the block's frame, rebuild one record
    // (`FrameCodec::find`, as `get_by_time` does).
    let start = Instant::now();
    let mut one = Vec::new();
    for (first, n, frame) in &frames {
        let want = records[first + n / 2].0;
        one.clear();
        let (count, at) = codec.find(frame, want, &mut one).expect("find");
        assert_eq!((count, at), (*n, Some(n / 2)));
        assert_eq!(one, records[first + n / 2].1);
    }
    let lookup = start.elapsed().as_secs_f64() * 1e6 / frames.len() as f64;
    let mut zstd = zstd::bulk::Decompressor::new().expect("zstd");
    let start = Instant::now();
    for (_, _, frame) in &frames {
        let zstd_frame = match frame.split_first() {
            Some((&tsstore::encoding::frame::TYPED, rest)) => rest,
            _ => frame,
        };
        zstd.decompress(zstd_frame, 1 << 20).expect("decompress");
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
    let Some(datasets) = pvlib::bench_datasets() else {
        return;
    };
    for (name, records) in datasets {
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
        for (label, columnar, typed) in [
            ("zstd-1, records as written", false, false),
            ("zstd-1, columnar body", true, false),
            ("zstd-1, typed columns", true, true),
        ] {
            let (bpr, pack, unpack, inflate, lookup) = compressed(&records, columnar, typed);
            println!(
                "  {label:<28} {bpr:>6.1} B/reading  {:>5.1}x  pack {pack:.2} µs/reading, unpack {unpack:.0} µs/block (zstd {inflate:.0}), one record {lookup:.0} µs",
                raw / bpr
            );
        }
    }
}
