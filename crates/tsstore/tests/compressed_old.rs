//! Compressed stores written by earlier builds still read, record for
//! record, and take new records: their header is marked version 4 before
//! anything is framed, after which old frames and new ones (typed, their
//! number columns predicted) sit side by side.
//!
//! - `tests/fixtures/compressed-v2`: format version 2, every frame plain,
//!   written by tsstore at commit 74f0651;
//! - `tests/fixtures/compressed-v3`: format version 3, typed frames
//!   without predictors, written at commit 41c7fbc.
//!
//! Each was written with `Store::put_many` of the 600 readings `reading`
//! makes, to a JSON store and to a schema store (fields temp, hum, room,
//! on), each of 32 blocks of 1 KiB, then `frame_staged` and `close`.

mod common;

use std::path::Path;

use tsstore::{Store, SyncPolicy};

const FIRST: i64 = 1_700_000_000_000_000_000;
const STEP: i64 = 60_000_000_000;

/// What the fixture's writer inserted as reading `i`.
fn reading(i: i64) -> String {
    let t = 2000 + (i * 37 % 41) - 20;
    let h = 400 + (i * 13 % 17);
    format!(
        "{{\"temp\":{}.{:02},\"hum\":{}.{},\"room\":\"lab-{}\",\"on\":{}}}",
        t / 100,
        t % 100,
        h / 10,
        h % 10,
        i % 3,
        i % 2 == 0
    )
}

fn version(dir: &Path, name: &str) -> u32 {
    let meta = std::fs::read(dir.join(name).join("meta.tsdb")).unwrap();
    u32::from_le_bytes(meta[8..12].try_into().unwrap())
}

/// A record as its values: a schema store keeps its records compact
/// (field numbers for names, numbers as parsed), a JSON store as written.
fn values(text: &[u8]) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(text).unwrap();
    if let Some(map) = v.as_object_mut() {
        for (number, name) in [("1", "temp"), ("2", "hum"), ("3", "room"), ("4", "on")] {
            if let Some(x) = map.remove(number) {
                map.insert(name.to_string(), x);
            }
        }
    }
    v
}

/// Every record the store serves, as (timestamp, text): exact in a JSON
/// store; a schema store's as values.
fn all(store: &Store) -> Vec<(i64, serde_json::Value)> {
    store
        .iter()
        .map(|r| {
            let r = r.unwrap();
            (r.timestamp(), values(&r.data))
        })
        .collect()
}

fn expected(count: i64) -> Vec<(i64, serde_json::Value)> {
    (0..count)
        .map(|i| (FIRST + i * STEP, values(reading(i).as_bytes())))
        .collect()
}

/// The JSON store gives back the very bytes it was given.
fn exact(store: &Store, count: i64) {
    let texts: Vec<Vec<u8>> = store.iter().map(|r| r.unwrap().data).collect();
    let want: Vec<Vec<u8>> = (count - texts.len() as i64..count)
        .map(|i| reading(i).into_bytes())
        .collect();
    assert_eq!(texts, want);
}

#[test]
fn stores_with_plain_frames_read_and_grow_with_predicted_ones() {
    grows("compressed-v2", 2);
}

#[test]
fn stores_with_typed_frames_read_and_grow_with_predicted_ones() {
    grows("compressed-v3", 3);
}

/// The stores of `fixture`, written at format version `written`: read,
/// then grown by as many readings again.
fn grows(fixture: &str, written: u32) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&fixture, dir.path());
    for name in ["json", "schema"] {
        assert_eq!(
            version(dir.path(), name),
            written,
            "{name}: the fixture as written"
        );
        // Read-only: nothing is marked.
        let store = Store::open_read_only(dir.path(), name).unwrap();
        assert_eq!(all(&store), expected(600), "{name}: old frames");
        drop(store);
        assert_eq!(
            version(dir.path(), name),
            written,
            "{name}: a reader changes nothing"
        );

        let store = Store::open_with(dir.path(), name, SyncPolicy::Always).unwrap();
        assert_eq!(
            version(dir.path(), name),
            4,
            "{name}: marked before framing"
        );
        assert_eq!(
            all(&store),
            expected(600),
            "{name}: old frames, opened to write"
        );
        assert_eq!(
            values(&store.get_by_time(FIRST + 123 * STEP).unwrap().data),
            values(reading(123).as_bytes()),
            "{name}: a lookup in an old frame"
        );
        if name == "json" {
            exact(&store, 600);
        }
        let more: Vec<(i64, String)> = (600..1200)
            .map(|i| (FIRST + i * STEP, reading(i)))
            .collect();
        store
            .put_many(more.iter().map(|(t, p)| (Some(*t), p.as_bytes())))
            .unwrap();
        store.frame_staged().unwrap();
        store.close().unwrap();

        let store = Store::open_with(dir.path(), name, SyncPolicy::Always).unwrap();
        // The ring keeps the newest records; whatever it keeps is exact,
        // old frames and typed ones alike.
        let kept = all(&store);
        let want = expected(1200);
        assert!(kept.len() > 600, "{name}: kept {}", kept.len());
        assert_eq!(
            kept,
            want[want.len() - kept.len()..],
            "{name}: after growing"
        );
        assert_eq!(
            values(&store.get_by_time(FIRST + 1100 * STEP).unwrap().data),
            values(reading(1100).as_bytes()),
            "{name}: a lookup in a new frame"
        );
        if name == "json" {
            exact(&store, 1200);
        }
        store.close().unwrap();
    }
}
