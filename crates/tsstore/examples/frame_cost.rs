//! What packing frames, and reading them back, costs in instructions, on
//! the TMY3 readings of `benches/pvlib` (fetched once with pip): the
//! readings loaded (`load`); then every one packed into frames of one
//! 4 KiB block, as the framer does (`pack`, `pvlib::pack_blocks`, as
//! the `encoding` bench packs them); then each frame's middle
//! record looked up 20 times (`find`), or each frame's records all
//! rebuilt 20 times (`unpack`). Each run does the ones before it, so the
//! difference of two runs is what the later step costs.
//!
//! ```text
//! cargo build --release -p tsstore --example frame_cost
//! for step in load pack find unpack; do
//!   valgrind --tool=callgrind target/release/examples/frame_cost $step
//! done
//! ```
//! Figures in docs/BENCHMARKS.md (issue 35).

#[path = "../benches/pvlib/mod.rs"]
mod pvlib;

use tsstore::encoding::FrameCodec;
use tsstore::encoding::columns::Unpacked;
use tsstore::encoding::split::Record;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let what = std::env::args().nth(1).unwrap_or_default();
    let cache = std::env::temp_dir().join("tsstore-pvlib");
    let datasets = pvlib::datasets(&cache).ok_or("cannot fetch pvlib 0.16.1 with pip")?;
    let (_, readings) = &datasets[0];
    let records: Vec<Record<'_>> = readings.iter().map(|(t, p)| Record::new(*t, p)).collect();
    if what == "load" {
        return Ok(());
    }
    let mut codec = FrameCodec::new(1 << 22)?;
    let frames = pvlib::pack_blocks(&mut codec, readings, true);
    let bytes: usize = frames.iter().map(|(_, _, f)| f.len()).sum();
    println!(
        "{} readings in {} frames: {:.2} bytes per reading",
        records.len(),
        frames.len(),
        bytes as f64 / records.len() as f64
    );
    let mut out = Unpacked::default();
    let mut one = Vec::new();
    for _ in 0..20 {
        for (first, n, frame) in &frames {
            match what.as_str() {
                "find" => {
                    let want = &records[first + n / 2];
                    one.clear();
                    codec.find(frame, want.timestamp, &mut one)?;
                    assert_eq!(one, want.payload, "the record read back");
                }
                "unpack" => {
                    codec.unpack(frame, &mut out)?;
                    assert_eq!(out.len(), *n, "the frame's records");
                }
                _ => {}
            }
        }
    }
    Ok(())
}
