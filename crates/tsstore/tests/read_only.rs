//! `Store::open_read_only`: a snapshot beside a running writer that never
//! writes, never serves what the writer overwrote, and `Store::is_held`.

use std::path::Path;

use tsstore::{Config, DataType, Error, Field, FieldType, Store, SyncPolicy};

fn config(n: u32, data_type: DataType) -> Config {
    Config {
        num_blocks: n,
        data_block_size: 256,
        index_block_size: 64,
        data_type,
        encoding: tsstore::Encoding::Raw,
    }
}

/// The payload written at `ts`, so any record read back can be checked.
fn payload(ts: i64) -> Vec<u8> {
    format!("reading-{ts:08}").into_bytes()
}

fn file_bytes(dir: &Path) -> Vec<Vec<u8>> {
    ["meta.tsdb", "data.tsdb", "index.tsdb", "schema.json"]
        .iter()
        .map(|f| std::fs::read(dir.join("s").join(f)).unwrap_or_default())
        .collect()
}

#[test]
fn a_snapshot_sees_what_the_writer_has_not_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Store::create_with(
        dir.path(),
        "s",
        config(64, DataType::Text),
        SyncPolicy::Interval(std::time::Duration::from_secs(3600)),
    )
    .unwrap();
    for ts in 1..=300 {
        writer.put(ts, &payload(ts)).unwrap();
    }
    assert!(Store::is_held(dir.path(), "s").unwrap());
    assert!(matches!(Store::open(dir.path(), "s"), Err(Error::InUse(_))));

    let snap = Store::open_read_only(dir.path(), "s").unwrap();
    assert!(snap.is_read_only());
    let recs = snap.iter().collect_all().unwrap();
    assert_eq!(recs.len(), 300);
    for r in &recs {
        assert_eq!(r.data, payload(r.timestamp()));
    }
    assert_eq!(snap.get_by_time(150).unwrap().data, payload(150));

    // Later inserts are not part of the snapshot.
    writer.put(301, &payload(301)).unwrap();
    assert_eq!(snap.range(290, i64::MAX, None).unwrap().len(), 11);
    drop(snap);
    writer.close().unwrap();
    assert!(!Store::is_held(dir.path(), "s").unwrap());
}

#[test]
fn nothing_is_written_through_a_read_only_store() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Store::create(dir.path(), "s", config(16, DataType::Schema)).unwrap();
    writer
        .set_schema(vec![Field::new(1, "t", FieldType::Float64)])
        .unwrap();
    writer.put(1, br#"{"t":1.5}"#).unwrap();
    writer.put(2, br#"{"t":2.5}"#).unwrap();
    // Left as a killed process leaves it: recovery has work to do, and a
    // read-only open must do it in memory only.
    writer.abandon();
    let before = file_bytes(dir.path());

    let snap = Store::open_read_only(dir.path(), "s").unwrap();
    assert_eq!(snap.newest(5).unwrap().len(), 2);
    let refused = [
        snap.put(3, br#"{"t":3.5}"#).map(drop),
        snap.put_now(br#"{"t":3.5}"#).map(drop),
        snap.put_many([(Some(3), br#"{"t":3.5}"#)]).map(drop),
        snap.delete_by_time(1),
        snap.reset(),
        snap.sync(),
        snap.set_schema(vec![
            Field::new(1, "t", FieldType::Float64),
            Field::new(2, "u", FieldType::Int64),
        ])
        .map(drop),
    ];
    for r in refused {
        assert!(
            matches!(r, Err(Error::ReadOnly(ref n)) if n == "s"),
            "{r:?}"
        );
    }
    // `check` validates without writing, read-only or not.
    snap.check(br#"{"t":4.5}"#).unwrap();
    assert!(snap.check(br#"{"nope":1}"#).is_err());
    snap.close().unwrap();
    let snap = Store::open_read_only(dir.path(), "s").unwrap();
    assert!(matches!(snap.delete(), Err(Error::ReadOnly(_))));
    assert_eq!(file_bytes(dir.path()), before);
    assert!(dir.path().join("s").join("meta.tsdb").exists());

    // The writer's own open still recovers both records.
    let writer = Store::open(dir.path(), "s").unwrap();
    assert_eq!(writer.oldest(5).unwrap().len(), 2);
}

#[test]
fn records_the_writer_overwrites_are_skipped_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Store::create_with(
        dir.path(),
        "s",
        config(8, DataType::Text),
        SyncPolicy::Never,
    )
    .unwrap();
    let mut ts = 0;
    while writer.stats().active_blocks < 8 {
        ts += 1;
        writer.put(ts, &payload(ts)).unwrap();
    }
    writer.sync().unwrap();
    let snap = Store::open_read_only(dir.path(), "s").unwrap();
    let snap_newest = snap.stats().newest_timestamp.unwrap();
    let whole = snap.iter().collect_all().unwrap().len();

    // The writer wraps half the ring after the snapshot was taken.
    let target = writer.stats().tail_block + 4;
    while writer.stats().tail_block < target {
        ts += 1;
        writer.put(ts, &payload(ts)).unwrap();
    }
    writer.sync().unwrap();

    let recs = snap.iter().collect_all().unwrap();
    assert!(
        !recs.is_empty() && recs.len() < whole,
        "{} of {whole}",
        recs.len()
    );
    let mut prev = 0;
    for r in &recs {
        assert!(r.timestamp() > prev && r.timestamp() <= snap_newest);
        assert_eq!(r.data, payload(r.timestamp()));
        prev = r.timestamp();
    }
    assert!(snap.stats().corruption_skips > 0);
}

#[test]
fn a_missing_store_is_reported_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Store::open_read_only(dir.path(), "nope"),
        Err(Error::StoreNotFound(_))
    ));
    assert!(matches!(
        Store::is_held(dir.path(), "nope"),
        Err(Error::StoreNotFound(_))
    ));
}
