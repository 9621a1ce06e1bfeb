//! Layout proof against the byte tables of docs/FORMAT.md (ts-store (Go)
//! v0.4's layout, plus tsstore's checksums and meta extensions).
//!
//! 1. A store is built byte by byte from the tables (as ts-store (Go) v0.4
//!    writes it: no checksums), kept in `tests/fixtures/legacy-v0.4`, and
//!    read and appended to through the engine.
//! 2. A store written by the engine is checked field by field.
//!
//! Set `UPDATE_FIXTURES=1` to rewrite the committed fixture from the builder.

use std::path::{Path, PathBuf};

use tsstore::{Config, DataType, Store};

const BS: usize = 128;
const N: usize = 8;

mod common;
use common::{le32, le64, rd32, rd64};

/// Block header at block `blk`: timestamp, data_len, flags.
fn block_header(d: &mut [u8], blk: usize, ts: i64, data_len: u32, flags: u32) {
    let at = blk * BS;
    le64(d, at, ts);
    le32(d, at + 8, data_len);
    le32(d, at + 12, flags);
}

/// Object header `(timestamp, total length, flags, next offset)` at
/// `blk`/`off`, followed by this block's part of the payload.
fn object(d: &mut [u8], blk: usize, off: usize, hdr: (i64, u32, u32, u32), payload: &[u8]) {
    let (ts, total, flags, next) = hdr;
    let at = blk * BS + off;
    le64(d, at, ts);
    le32(d, at + 8, total);
    le32(d, at + 12, flags);
    le32(d, at + 16, next);
    d[at + 24..at + 24 + payload.len()].copy_from_slice(payload);
}

/// CRC-32C, bit by bit: an implementation independent of the engine's.
fn crc32c_bitwise(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn bitwise_crc32c_matches_the_standard_check_value() {
    assert_eq!(crc32c_bitwise(b"123456789"), 0xE306_9283);
}

fn span_payload() -> Vec<u8> {
    let mut p = vec![b'"'];
    p.extend(std::iter::repeat_n(b'x', 148));
    p.push(b'"');
    p
}

/// The legacy fixture: 8 blocks of 128 bytes, JSON; block 0 packs three
/// objects, blocks 1–2 hold one spanning object, block 3 is the head.
fn build_legacy() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut meta = vec![0u8; 64];
    le64(&mut meta, 0, 0x5453_5354_4F52_4531);
    le32(&mut meta, 8, 1);
    le32(&mut meta, 12, N as u32);
    le32(&mut meta, 16, BS as u32);
    le32(&mut meta, 20, 64);
    le32(&mut meta, 24, 3); // head
    le32(&mut meta, 28, 0); // tail
    le32(&mut meta, 32, 55); // write offset
    meta[36] = 2; // json
    meta[37] = 0; // no checksums: written by ts-store (Go)

    let mut data = vec![0u8; N * BS];
    block_header(&mut data, 0, 1000, 93, 0b011);
    object(&mut data, 0, 24, (1000, 7, 0, 55), br#"{"a":1}"#);
    object(&mut data, 0, 55, (2000, 7, 0, 86), br#"{"b":2}"#);
    object(&mut data, 0, 86, (3000, 7, 0b100, 0), br#"{"c":3}"#);
    let span = span_payload();
    // A spanning object as ts-store writes it: first block primary and
    // packed, the continuation block with timestamp 0 and flags 7.
    block_header(&mut data, 1, 4000, 104, 0b011);
    object(&mut data, 1, 24, (4000, 150, 0b110, 0), &span[..80]);
    block_header(&mut data, 2, 0, 70, 0b111);
    data[2 * BS + 24..2 * BS + 24 + 70].copy_from_slice(&span[80..]);
    block_header(&mut data, 3, 5000, 31, 0b011);
    object(&mut data, 3, 24, (5000, 7, 0b100, 0), br#"{"e":5}"#);

    let mut index = vec![0u8; 128];
    for (blk, ts) in [(0usize, 1000i64), (1, 4000), (3, 5000)] {
        le64(&mut index, blk * 16, ts);
        le32(&mut index, blk * 16 + 8, blk as u32);
    }
    (meta, data, index)
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy-v0.4")
}

#[test]
fn committed_fixture_is_what_the_tables_describe() {
    let (meta, data, index) = build_legacy();
    let dir = fixture_dir();
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("meta.tsdb"), &meta).unwrap();
        std::fs::write(dir.join("data.tsdb"), &data).unwrap();
        std::fs::write(dir.join("index.tsdb"), &index).unwrap();
    }
    assert_eq!(std::fs::read(dir.join("meta.tsdb")).unwrap(), meta);
    assert_eq!(std::fs::read(dir.join("data.tsdb")).unwrap(), data);
    assert_eq!(std::fs::read(dir.join("index.tsdb")).unwrap(), index);
}

fn copy_fixture(to: &Path) {
    let dst = to.join("legacy");
    std::fs::create_dir_all(&dst).unwrap();
    for f in ["meta.tsdb", "data.tsdb", "index.tsdb"] {
        std::fs::copy(fixture_dir().join(f), dst.join(f)).unwrap();
    }
}

#[test]
fn engine_reads_and_appends_to_a_legacy_store() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixture(tmp.path());
    let s = Store::open(tmp.path(), "legacy").unwrap();
    assert!(!s.has_checksums());
    assert_eq!(s.data_type(), DataType::Json);
    let recs = s.oldest(10).unwrap();
    let ts: Vec<i64> = recs.iter().map(|r| r.timestamp()).collect();
    assert_eq!(ts, vec![1000, 2000, 3000, 4000, 5000]);
    assert_eq!(recs[1].data, br#"{"b":2}"#);
    assert_eq!(recs[3].data, span_payload());
    assert_eq!(
        (recs[3].handle.block_num, recs[3].handle.span_count),
        (1, 2)
    );
    assert_eq!(s.get_by_time(3000).unwrap().data, br#"{"c":3}"#);
    assert_eq!(s.range(1500, 4500, None).unwrap().len(), 3);
    let st = s.stats();
    assert_eq!(
        (
            st.head_block,
            st.tail_block,
            st.write_offset,
            st.active_blocks
        ),
        (3, 0, 55, 4)
    );

    // Append: packs into the head block after the existing object.
    let h = s.put(6000, br#"{"f":6}"#).unwrap();
    assert_eq!((h.block_num, h.offset), (3, 55));
    s.close().unwrap();

    let dir = tmp.path().join("legacy");
    let meta = std::fs::read(dir.join("meta.tsdb")).unwrap();
    let data = std::fs::read(dir.join("data.tsdb")).unwrap();
    assert_eq!(meta[37] & 1, 0, "a legacy store stays without checksums");
    assert_eq!(
        (rd32(&meta, 24), rd32(&meta, 28), rd32(&meta, 32)),
        (3, 0, 86)
    );
    let b3 = 3 * BS;
    assert_eq!(
        rd32(&data, b3 + 8),
        62,
        "block data_len covers both objects"
    );
    assert_eq!(
        rd32(&data, b3 + 24 + 12),
        0,
        "old last object lost its last-in-block flag"
    );
    assert_eq!(rd32(&data, b3 + 24 + 16), 55, "and points at the new one");
    assert_eq!(rd64(&data, b3 + 55), 6000);
    assert_eq!(rd32(&data, b3 + 55 + 12), 0b100);
    assert_eq!(&data[b3 + 79..b3 + 86], br#"{"f":6}"#);
    // Everything else is untouched.
    let (_, orig, _) = build_legacy();
    assert_eq!(&data[..b3], &orig[..b3]);
    assert_eq!(&data[b3 + 86..], &orig[b3 + 86..]);
}

#[test]
fn engine_writes_the_documented_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = Config {
        num_blocks: N as u32,
        data_block_size: BS as u32,
        index_block_size: 64,
        data_type: DataType::Json,
        encoding: tsstore::Encoding::Raw,
    };
    let s = Store::create(tmp.path(), "w", cfg).unwrap();
    s.put(1000, br#"{"a":1}"#).unwrap();
    s.put(2000, br#"{"b":2}"#).unwrap();
    s.put(3000, br#"{"c":3}"#).unwrap();
    s.put(4000, &span_payload()).unwrap();
    s.put(5000, br#"{"e":5}"#).unwrap();
    s.delete_by_time(2000).unwrap();
    s.close().unwrap();

    let dir = tmp.path().join("w");
    let meta = std::fs::read(dir.join("meta.tsdb")).unwrap();
    let data = std::fs::read(dir.join("data.tsdb")).unwrap();
    let index = std::fs::read(dir.join("index.tsdb")).unwrap();
    assert_eq!(meta.len(), 64);
    assert_eq!(&meta[0..8], &0x5453_5354_4F52_4531u64.to_le_bytes());
    assert_eq!(rd32(&meta, 8), 1);
    assert_eq!(
        (rd32(&meta, 12), rd32(&meta, 16), rd32(&meta, 20)),
        (8, 128, 64)
    );
    assert_eq!(
        (rd32(&meta, 24), rd32(&meta, 28), rd32(&meta, 32)),
        (3, 0, 55)
    );
    assert_eq!(meta[36], 2);
    assert_eq!(meta[37], 1, "stores created by tsstore carry checksums");
    assert_eq!(rd32(&meta, 40), 0, "epoch: never reset");
    assert_eq!(rd32(&meta, 44), 4, "live blocks at the checkpoint");
    assert!(
        meta[38..40].iter().chain(&meta[48..]).all(|b| *b == 0),
        "reserved zero"
    );
    assert_eq!(data.len(), N * BS);
    assert_eq!(index.len(), 128);

    // Byte for byte what the tables say, plus the deleted flag on object 2
    // and each object's CRC-32C(timestamp ‖ length ‖ payload) in its reserved word.
    let (_, mut want, want_index) = build_legacy();
    want[55 + 12] |= 0b1000;
    // With checksums, the continuation block names its object in the
    // block header's reserved word, and every other block links back to
    // the last object before it (docs/FORMAT.md, "Recovery on open").
    le64(&mut want, 2 * BS + 16, 4000);
    le64(&mut want, BS + 16, 3000);
    le64(&mut want, 3 * BS + 16, 4000);
    let objects: [(usize, i64, Vec<u8>); 5] = [
        (24, 1000, br#"{"a":1}"#.to_vec()),
        (55, 2000, br#"{"b":2}"#.to_vec()),
        (86, 3000, br#"{"c":3}"#.to_vec()),
        (BS + 24, 4000, span_payload()),
        (3 * BS + 24, 5000, br#"{"e":5}"#.to_vec()),
    ];
    for (at, ts, payload) in objects {
        let mut covered = ts.to_le_bytes().to_vec();
        covered.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        covered.extend_from_slice(&payload);
        le32(&mut want, at + 20, crc32c_bitwise(&covered));
    }
    assert_eq!(&data[..4 * BS], &want[..4 * BS]);
    assert_eq!(index, want_index);
}
