//! Spanning objects across tsstore and ts-store (Go) v0.4, both ways.
//!
//! `GoImage` lays out a store the way ts-store's writer does (its header
//! values as read from the bytes of stores it wrote: a spanning object's
//! first block has flags 3 and `data_len` = object header + the payload in
//! that block; each continuation block has timestamp 0, flags 7 and
//! `data_len` = the payload it holds; continuation index entries are 0).
//! 1. Stores built by it are read and appended to through the engine.
//! 2. Stores written by the engine are compared with what it would write,
//!    header field by header field.

use std::path::Path;

use tsstore::{Config, DataType, Field, FieldType, Store};

const BS: usize = 256;
const N: usize = 64;
const HDR: usize = 24;

mod common;
use common::{le32, le64, rd32, rd64};

/// The three files of a store as ts-store (Go) v0.4 writes them, built one
/// object at a time (no wrapping: the tests stay inside one lap).
struct GoImage {
    meta_head: u32,
    write_offset: u32,
    data: Vec<u8>,
    index: Vec<u8>,
    /// Next block to use; the head is `next - 1`.
    next: usize,
    /// Offset of the head block's last object while the head takes more
    /// packed objects (None: empty store, or the head ends a spanning object).
    open: Option<usize>,
    /// File offsets of every object header.
    headers: Vec<usize>,
}

impl GoImage {
    fn new() -> GoImage {
        GoImage {
            meta_head: 0,
            write_offset: 0,
            data: vec![0; N * BS],
            index: vec![0; N * 16],
            next: 0,
            open: None,
            headers: Vec::new(),
        }
    }

    fn block_header(&mut self, blk: usize, ts: i64, data_len: usize, flags: u32) {
        let at = blk * BS;
        le64(&mut self.data, at, ts);
        le32(&mut self.data, at + 8, data_len as u32);
        le32(&mut self.data, at + 12, flags);
    }

    fn object_header(&mut self, at: usize, ts: i64, len: usize, flags: u32) {
        self.headers.push(at);
        le64(&mut self.data, at, ts);
        le32(&mut self.data, at + 8, len as u32);
        le32(&mut self.data, at + 12, flags);
        le32(&mut self.data, at + 16, 0);
    }

    fn index_entry(&mut self, blk: usize, ts: i64) {
        le64(&mut self.index, blk * 16, ts);
        le32(&mut self.index, blk * 16 + 8, blk as u32);
    }

    fn put(&mut self, ts: i64, payload: &[u8]) {
        let len = payload.len();
        let end = self.write_offset as usize;
        if let Some(last) = self.open
            && end + HDR + len <= BS
        {
            // Packs: the previous object points here and is no longer last.
            let blk = self.next - 1;
            let base = blk * BS;
            let flags = rd32(&self.data, base + last + 12) & !4;
            le32(&mut self.data, base + last + 12, flags);
            le32(&mut self.data, base + last + 16, end as u32);
            self.object_header(base + end, ts, len, 4);
            self.data[base + end + HDR..base + end + HDR + len].copy_from_slice(payload);
            le32(&mut self.data, base + 8, (end + HDR + len - HDR) as u32);
            self.open = Some(end);
            self.write_offset = (end + HDR + len) as u32;
            return;
        }
        let first_cap = BS - 2 * HDR;
        let blk = self.next;
        if len <= first_cap {
            self.block_header(blk, ts, HDR + len, 3);
            self.object_header(blk * BS + HDR, ts, len, 4);
            self.data[blk * BS + 2 * HDR..blk * BS + 2 * HDR + len].copy_from_slice(payload);
            self.index_entry(blk, ts);
            self.next += 1;
            self.open = Some(HDR);
            self.write_offset = (2 * HDR + len) as u32;
        } else {
            self.block_header(blk, ts, HDR + first_cap, 3);
            self.object_header(blk * BS + HDR, ts, len, 4 | 2);
            self.data[blk * BS + 2 * HDR..(blk + 1) * BS].copy_from_slice(&payload[..first_cap]);
            self.index_entry(blk, ts);
            let mut rest = &payload[first_cap..];
            let mut b = blk + 1;
            while !rest.is_empty() {
                let take = rest.len().min(BS - HDR);
                self.block_header(b, 0, take, 7);
                self.data[b * BS + HDR..b * BS + HDR + take].copy_from_slice(&rest[..take]);
                self.write_offset = (HDR + take) as u32;
                rest = &rest[take..];
                b += 1;
            }
            self.next = b;
            self.open = None;
        }
        assert!(self.next <= N, "the model does not wrap");
        self.meta_head = (self.next - 1) as u32;
    }

    fn write(&self, base: &Path, name: &str, data_type: DataType) {
        let mut meta = vec![0u8; 64];
        le64(&mut meta, 0, 0x5453_5354_4F52_4531);
        le32(&mut meta, 8, 1);
        le32(&mut meta, 12, N as u32);
        le32(&mut meta, 16, BS as u32);
        le32(&mut meta, 20, 4096);
        le32(&mut meta, 24, self.meta_head);
        le32(&mut meta, 28, 0);
        le32(&mut meta, 32, self.write_offset);
        meta[36] = data_type as u8;
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("meta.tsdb"), meta).unwrap();
        std::fs::write(dir.join("data.tsdb"), &self.data).unwrap();
        let mut index = self.index.clone();
        index.resize(4096, 0);
        std::fs::write(dir.join("index.tsdb"), index).unwrap();
    }
}

/// A JSON string payload of exactly `len` bytes, its characters varying so
/// that a misplaced chunk shows.
fn json_of_len(len: usize, seed: u8) -> Vec<u8> {
    let mut p = vec![b'"'];
    p.extend((0..len - 2).map(|i| b'a' + ((i + seed as usize) % 26) as u8));
    p.push(b'"');
    p
}

/// The store ts-store v0.4 was seen writing: 64 blocks of 256 bytes, JSON,
/// objects of 34, 690 (blocks 1–4), 41, 1610 (blocks 6–13) and 38 bytes.
fn seen_store(extra: &[(i64, Vec<u8>)]) -> (GoImage, Vec<(i64, Vec<u8>)>) {
    let mut objects: Vec<(i64, Vec<u8>)> = [34usize, 690, 41, 1610, 38]
        .iter()
        .enumerate()
        .map(|(i, &len)| (1_000 * (i as i64 + 1), json_of_len(len, i as u8)))
        .collect();
    objects.extend_from_slice(extra);
    let mut go = GoImage::new();
    for (ts, p) in &objects {
        go.put(*ts, p);
    }
    (go, objects)
}

fn assert_all(s: &Store, objects: &[(i64, Vec<u8>)]) {
    let all = s.oldest(100).unwrap();
    assert_eq!(all.len(), objects.len(), "every object listed");
    for (rec, (ts, payload)) in all.iter().zip(objects) {
        assert_eq!(rec.timestamp(), *ts);
        assert_eq!(&rec.data, payload, "object {ts} read whole by oldest");
        assert_eq!(&s.get_by_time(*ts).unwrap().data, payload, "by time {ts}");
    }
    let newest = s.newest(100).unwrap();
    let mut want: Vec<_> = objects.to_vec();
    want.reverse();
    assert_eq!(
        newest
            .iter()
            .map(|r| (r.timestamp(), r.data.clone()))
            .collect::<Vec<_>>(),
        want
    );
    let first = objects[0].0;
    let last = objects[objects.len() - 1].0;
    let ranged = s.range(first, last, None).unwrap();
    assert_eq!(ranged.len(), objects.len());
    assert!(ranged.iter().zip(objects).all(|(r, (_, p))| &r.data == p));
    // A range starting at a continuation block's time still finds the next object.
    let inner = s.range(2_500, 4_000, None).unwrap();
    assert_eq!(
        inner.iter().map(|r| r.timestamp()).collect::<Vec<_>>(),
        vec![3_000, 4_000]
    );
}

#[test]
fn spanning_objects_of_a_go_store_are_read_and_appended_to() {
    let tmp = tempfile::tempdir().unwrap();
    let (go, mut objects) = seen_store(&[]);
    // What the issue read off the Go store's bytes.
    assert_eq!(rd32(&go.data, BS + 8), 232);
    assert_eq!(rd32(&go.data, BS + 12), 3);
    for blk in 2..=4 {
        assert_eq!(rd64(&go.data, blk * BS), 0);
        assert_eq!(rd32(&go.data, blk * BS + 12), 7);
    }
    assert_eq!(rd32(&go.data, 4 * BS + 8), 690 - 208 - 2 * 232);
    assert_eq!(rd32(&go.data, 13 * BS + 8), 1610 - 208 - 6 * 232);
    go.write(tmp.path(), "go", DataType::Json);

    let s = Store::open(tmp.path(), "go").unwrap();
    assert!(!s.has_checksums());
    assert_all(&s, &objects);
    let h = s.get_by_time(4_000).unwrap().handle;
    assert_eq!((h.block_num, h.span_count, h.size), (6, 8, 1610));

    // Appends after them: one packs into the head, one spans again.
    let small = br#"{"f":6}"#.to_vec();
    let h = s.put(6_000, &small).unwrap();
    assert_eq!((h.block_num, h.offset), (14, 86));
    let big = json_of_len(500, 9);
    let h = s.put(7_000, &big).unwrap();
    assert_eq!((h.block_num, h.span_count), (15, 3));
    objects.push((6_000, small));
    objects.push((7_000, big));
    assert_all(&s, &objects);
    s.close().unwrap();

    let s = Store::open(tmp.path(), "go").unwrap();
    assert_all(&s, &objects);
    s.close().unwrap();
    // What tsstore appended is what ts-store would have written.
    let mut want = GoImage::new();
    for (ts, p) in &objects {
        want.put(*ts, p);
    }
    let data = std::fs::read(tmp.path().join("go/data.tsdb")).unwrap();
    assert_eq!(data, want.data, "byte for byte the Go writer's layout");
}

#[test]
fn a_go_store_whose_head_ends_a_spanning_object_takes_appends() {
    let tmp = tempfile::tempdir().unwrap();
    // ts-store leaves write_offset at the end of the last continuation's
    // payload; nothing may be packed into a continuation block.
    let (go, mut objects) = seen_store(&[(6_000, json_of_len(900, 3))]);
    assert_ne!(go.write_offset, 0);
    go.write(tmp.path(), "go", DataType::Json);
    let s = Store::open(tmp.path(), "go").unwrap();
    assert_all(&s, &objects);
    let small = br#"{"g":7}"#.to_vec();
    let h = s.put(8_000, &small).unwrap();
    assert_eq!(h.offset, 24, "a fresh block after a spanning object");
    let before = s.get_by_time(6_000).unwrap().handle;
    assert_eq!(h.block_num, before.block_num + before.span_count);
    objects.push((8_000, small));
    assert_all(&s, &objects);
    s.close().unwrap();
    let s = Store::open(tmp.path(), "go").unwrap();
    assert_all(&s, &objects);
}

/// A payload of exactly `len` stored bytes for a store of `data_type`.
fn payload(data_type: DataType, len: usize, seed: u8) -> Vec<u8> {
    let fill = |n: usize| (0..n).map(move |i| b'a' + ((i + seed as usize) % 26) as u8);
    match data_type {
        DataType::Binary => (0..len).map(|i| (i * 7 + seed as usize) as u8).collect(),
        DataType::Text => fill(len).collect(),
        DataType::Json => json_of_len(len, seed),
        DataType::Schema => {
            let mut p = br#"{"1":""#.to_vec();
            p.extend(fill(len - 8));
            p.extend_from_slice(br#""}"#);
            p
        }
    }
}

/// Payload lengths: packed objects, a block filled exactly by one object
/// and by two, spanning objects (one filling its last block exactly), and
/// objects after each.
const LENGTHS: [usize; 13] = [34, 690, 41, 1610, 38, 208, 100, 84, 440, 50, 60, 70, 1000];

#[test]
fn spanning_objects_written_by_tsstore_carry_the_go_header_values() {
    for data_type in [
        DataType::Binary,
        DataType::Text,
        DataType::Json,
        DataType::Schema,
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = Config {
            num_blocks: N as u32,
            data_block_size: BS as u32,
            index_block_size: 4096,
            data_type,
            encoding: tsstore::Encoding::Raw,
        };
        let s = Store::create(tmp.path(), "t", cfg).unwrap();
        if data_type == DataType::Schema {
            s.set_schema(vec![Field::new(1, "s", FieldType::String)])
                .unwrap();
        }
        let mut go = GoImage::new();
        let mut objects = Vec::new();
        for (i, &len) in LENGTHS.iter().enumerate() {
            let ts = 1_000 * (i as i64 + 1);
            let p = payload(data_type, len, i as u8);
            s.put(ts, &p).unwrap();
            assert_eq!(s.get_by_time(ts).unwrap().data.len(), len, "{data_type}");
            go.put(ts, &p);
            objects.push((ts, p));
        }
        s.close().unwrap();

        let data = std::fs::read(tmp.path().join("t/data.tsdb")).unwrap();
        let index = std::fs::read(tmp.path().join("t/index.tsdb")).unwrap();
        for blk in 0..go.next {
            let (at, want) = (blk * BS, &go.data);
            let what = format!("{data_type} block {blk}");
            assert_eq!(rd64(&data, at), rd64(want, at), "{what}: timestamp");
            assert_eq!(rd32(&data, at + 8), rd32(want, at + 8), "{what}: data_len");
            assert_eq!(rd32(&data, at + 12), rd32(want, at + 12), "{what}: flags");
            // The reserved word (tsstore's own checks, ignored by Go): the
            // spanning object's timestamp in a continuation block, else the
            // link to the last object before the block (0 before the first).
            let named = if rd32(want, at + 12) == 7 {
                let mut first = blk;
                while rd32(want, first * BS + 12) == 7 {
                    first -= 1;
                }
                rd64(want, first * BS)
            } else {
                let first = objects.iter().position(|(ts, _)| *ts == rd64(want, at));
                first
                    .and_then(|i| i.checked_sub(1))
                    .map_or(0, |i| objects[i].0)
            };
            assert_eq!(rd64(&data, at + 16), named, "{what}: reserved");
        }
        // Object headers too, except the checksum word.
        for (ts, p) in &objects {
            let h = {
                let s = Store::open(tmp.path(), "t").unwrap();
                let h = s.get_by_time(*ts).unwrap().handle;
                assert_eq!(&s.get_by_time(*ts).unwrap().data, p);
                s.close().unwrap();
                h
            };
            let at = h.block_num as usize * BS + h.offset as usize;
            assert_eq!(
                &data[at..at + 20],
                &go.data[at..at + 20],
                "{data_type} {ts}"
            );
        }
        assert_eq!(&index[..N * 16], &go.index[..], "{data_type}: index");
        // Every used byte where ts-store's reader looks for it (with the
        // checksum words, which it ignores, masked).
        let (mut ours, mut theirs) = (data.clone(), go.data.clone());
        for &at in &go.headers {
            ours[at + 20..at + 24].fill(0);
            theirs[at + 20..at + 24].fill(0);
        }
        for blk in 0..go.next {
            let at = blk * BS;
            ours[at + 16..at + 24].fill(0);
            let used = at + HDR + rd32(&theirs, at + 8) as usize;
            assert_eq!(
                &ours[at..used],
                &theirs[at..used],
                "{data_type} block {blk}: used bytes"
            );
        }
    }
}

#[test]
fn continuation_headers_of_earlier_tsstore_builds_still_read() {
    // Before it wrote ts-store's values, tsstore put the object's timestamp
    // in the continuation block's timestamp field with flags 4.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = Config {
        num_blocks: N as u32,
        data_block_size: BS as u32,
        index_block_size: 4096,
        data_type: DataType::Json,
        encoding: tsstore::Encoding::Raw,
    };
    let s = Store::create(tmp.path(), "old", cfg).unwrap();
    let big = json_of_len(700, 1);
    s.put(1_000, &big).unwrap();
    s.put(2_000, br#"{"b":2}"#).unwrap();
    s.close().unwrap();
    let path = tmp.path().join("old/data.tsdb");
    let mut data = std::fs::read(&path).unwrap();
    le32(&mut data, 12, 1);
    for blk in 1..4 {
        le64(&mut data, blk * BS, 1_000);
        le32(&mut data, blk * BS + 12, 4);
        le64(&mut data, blk * BS + 16, 0);
    }
    std::fs::write(&path, data).unwrap();
    let s = Store::open(tmp.path(), "old").unwrap();
    assert_eq!(s.get_by_time(1_000).unwrap().data, big);
    assert_eq!(s.oldest(10).unwrap().len(), 2);
    // A continuation block that names another object is not this one's.
    s.close().unwrap();
    let mut data = std::fs::read(&path).unwrap();
    le64(&mut data, 2 * BS, 999);
    std::fs::write(&path, data).unwrap();
    let s = Store::open(tmp.path(), "old").unwrap();
    assert!(
        s.get_by_time(1_000).is_err(),
        "a foreign continuation is damage"
    );
}
