//! Named edge cases of the engine, one test each.

use tsstore::{Config, DataType, Error, Store};

fn tiny(dir: &std::path::Path, n: u32, bs: u32) -> Store {
    let config = Config {
        num_blocks: n,
        data_block_size: bs,
        index_block_size: 64,
        data_type: DataType::Binary,
        encoding: tsstore::Encoding::Raw,
    };
    Store::create(dir, "s", config).unwrap()
}

fn timestamps(recs: &[tsstore::Record]) -> Vec<i64> {
    recs.iter().map(|r| r.timestamp()).collect()
}

#[test]
fn empty_store_answers_every_query_with_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny(dir.path(), 4, 64);
    assert!(s.newest(10).unwrap().is_empty());
    assert!(s.oldest(10).unwrap().is_empty());
    assert!(s.range(0, i64::MAX, None).unwrap().is_empty());
    assert!(matches!(s.get_by_time(1), Err(Error::NotFound(1))));
    assert!(matches!(s.delete_by_time(1), Err(Error::NotFound(1))));
    let st = s.stats();
    assert_eq!(
        (st.active_blocks, st.object_count, st.oldest_timestamp),
        (0, Some(0), None)
    );
    assert_eq!(st.bytes_used, 0);
    s.close().unwrap();
    let s = Store::open(dir.path(), "s").unwrap();
    assert_eq!(s.stats().active_blocks, 0);
    s.put(5, b"first").unwrap();
    assert_eq!(s.get_by_time(5).unwrap().data, b"first");
}

#[test]
fn exactly_full_block_then_next_object_starts_a_new_block() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny(dir.path(), 4, 128);
    // 128 - 24 block header = 104 bytes = objects of 24 + 28 bytes, twice.
    let a = s.put(1, &[1; 28]).unwrap();
    let b = s.put(2, &[2; 28]).unwrap();
    assert_eq!((a.block_num, b.block_num), (0, 0));
    assert_eq!(b.offset, 24 + 24 + 28);
    assert_eq!(s.stats().write_offset, 128);
    let c = s.put(3, &[]).unwrap();
    assert_eq!(c.block_num, 1);
    s.close().unwrap();
    let s = Store::open(dir.path(), "s").unwrap();
    assert_eq!(timestamps(&s.oldest(10).unwrap()), vec![1, 2, 3]);
}

#[test]
fn object_of_one_blocks_usable_size_and_one_byte_more() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny(dir.path(), 8, 64);
    let usable = 64 - 48;
    let one = s.put(1, &vec![7; usable]).unwrap();
    assert_eq!((one.span_count, one.block_num), (1, 0));
    let two = s.put(2, &vec![8; usable + 1]).unwrap();
    assert_eq!((two.span_count, two.block_num), (2, 1));
    let after = s.put(3, b"x").unwrap();
    assert_eq!(
        after.block_num, 3,
        "the object after a spanning one starts a fresh block"
    );
    assert_eq!(s.get_by_time(1).unwrap().data, vec![7; usable]);
    assert_eq!(s.get_by_time(2).unwrap().data, vec![8; usable + 1]);
    assert_eq!(s.get_by_time(3).unwrap().data, b"x");
}

#[test]
fn object_as_large_as_the_ring_and_one_byte_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny(dir.path(), 4, 64);
    let max = (64 - 48) + 3 * (64 - 24);
    assert_eq!(s.max_object_size(), max as u64);
    s.put(1, b"small").unwrap();
    let before = s.stats();
    let err = s.put(2, &vec![0; max + 1]).unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { size, max: m } if size == max as u64 + 1 && m == max as u64)
    );
    assert!(err.to_string().contains("too large"), "{err}");
    assert_eq!(s.stats(), before, "a rejected insert changes nothing");
    let payload: Vec<u8> = (0..max).map(|i| i as u8).collect();
    let h = s.put(2, &payload).unwrap();
    assert_eq!(h.span_count, 4);
    assert_eq!(s.stats().active_blocks, 4);
    assert!(matches!(s.get_by_time(1), Err(Error::NotFound(1))));
    assert_eq!(s.get_by_time(2).unwrap().data, payload);
    s.put(3, b"next").unwrap();
    assert_eq!(timestamps(&s.oldest(10).unwrap()), vec![3]);
}

#[test]
fn duplicate_and_older_timestamps_are_rejected_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny(dir.path(), 4, 256);
    s.put(100, b"a").unwrap();
    s.put(200, b"b").unwrap();
    s.put(300, b"c").unwrap();
    let before = s.stats();
    // 250 is older than the newest (300) but newer than the head block's first (100).
    for ts in [300, 250, 100, 50] {
        let err = s.put(ts, b"x").unwrap_err();
        assert!(
            matches!(err, Error::TimestampOutOfOrder { timestamp, newest: 300 } if timestamp == ts),
            "{err}"
        );
    }
    for ts in [0, -5] {
        assert!(matches!(s.put(ts, b"x"), Err(Error::InvalidTimestamp(t)) if t == ts));
    }
    let batch = s.put_many([(Some(400), &b"ok"[..]), (Some(350), &b"bad"[..])]);
    assert!(matches!(
        batch,
        Err(Error::TimestampOutOfOrder { timestamp: 350, .. })
    ));
    assert_eq!(s.stats(), before);
    assert_eq!(timestamps(&s.oldest(10).unwrap()), vec![100, 200, 300]);
    s.close().unwrap();
    let s = Store::open(dir.path(), "s").unwrap();
    assert_eq!(timestamps(&s.oldest(10).unwrap()), vec![100, 200, 300]);
    assert!(s.put(300, b"x").is_err());
    s.put(301, b"d").unwrap();
}

#[test]
fn range_starting_inside_a_packed_block_returns_every_record_in_range() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny(dir.path(), 16, 256);
    for ts in 1..=40 {
        s.put(ts * 10, &[ts as u8; 8]).unwrap();
    }
    // Blocks hold 7 objects of 32 bytes; 95 falls between 90 and 100 in block 1.
    let got = timestamps(&s.range(95, 255, None).unwrap());
    assert_eq!(got, (10..=25).map(|t| t * 10).collect::<Vec<_>>());
    let got = timestamps(&s.range(100, 100, None).unwrap());
    assert_eq!(got, vec![100]);
    let got = timestamps(&s.range(95, 255, Some(3)).unwrap());
    assert_eq!(got, vec![100, 110, 120]);
    let got: Vec<i64> = s
        .iter_range_rev(95, 255)
        .map(|r| r.unwrap().timestamp())
        .collect();
    assert_eq!(got, (10..=25).rev().map(|t| t * 10).collect::<Vec<_>>());
    assert_eq!(timestamps(&s.after(380, None).unwrap()), vec![390, 400]);
}

#[test]
fn deleting_the_second_object_of_a_packed_block_keeps_its_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny(dir.path(), 4, 256);
    for ts in 1..=4 {
        s.put(ts, &[ts as u8; 4]).unwrap();
    }
    s.delete_by_time(2).unwrap();
    assert!(matches!(s.get_by_time(2), Err(Error::NotFound(2))));
    assert!(matches!(s.delete_by_time(2), Err(Error::NotFound(2))));
    assert_eq!(timestamps(&s.oldest(10).unwrap()), vec![1, 3, 4]);
    assert_eq!(s.stats().object_count, Some(3));
    // The head block keeps packing after a delete without losing the flag.
    s.put(5, b"e").unwrap();
    s.close().unwrap();
    let s = Store::open(dir.path(), "s").unwrap();
    assert_eq!(timestamps(&s.oldest(10).unwrap()), vec![1, 3, 4, 5]);
    assert_eq!(timestamps(&s.newest(2).unwrap()), vec![5, 4]);
    assert_eq!(s.get_by_time(3).unwrap().data, vec![3; 4]);
    // A timestamp of a deleted object still counts as taken.
    assert!(s.put(2, b"again").is_err());
}

#[test]
fn records_next_to_spanning_objects_and_after_a_wrap_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny(dir.path(), 6, 64);
    let mut expected = Vec::new();
    for round in 0..5i64 {
        let base = round * 100;
        s.put(base + 1, b"a").unwrap();
        s.put(base + 2, &[round as u8; 70]).unwrap(); // spans 2 blocks
        s.put(base + 3, b"b").unwrap();
        expected = vec![base + 1, base + 2, base + 3];
    }
    let live = timestamps(&s.oldest(100).unwrap());
    assert!(live.ends_with(&expected), "{live:?}");
    for ts in &live {
        assert_eq!(s.get_by_time(*ts).unwrap().timestamp(), *ts);
    }
    assert_eq!(s.get_by_time(402).unwrap().data, vec![4; 70]);
    assert!(matches!(s.get_by_time(399), Err(Error::NotFound(_))));
}

#[test]
fn store_names_are_validated_before_touching_disk() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["..", "a/b", "", "-x", "a b", &"n".repeat(65), "%2e%2e"] {
        let err = Store::create(dir.path(), bad, Config::default()).unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{bad}: {err}");
        assert!(matches!(
            Store::open(dir.path(), bad),
            Err(Error::InvalidName { .. })
        ));
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn lifecycle_errors_are_specific() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Store::open(dir.path(), "nope"),
        Err(Error::StoreNotFound(_))
    ));
    let bad = Config {
        data_block_size: 100,
        ..Config::default()
    };
    assert!(matches!(
        Store::create(dir.path(), "x", bad),
        Err(Error::InvalidConfig(_))
    ));
    let s = tiny(dir.path(), 4, 64);
    assert!(matches!(tiny_err(dir.path()), Error::StoreExists(_)));
    assert!(matches!(Store::open(dir.path(), "s"), Err(Error::InUse(_))));
    assert!(matches!(
        Store::destroy(dir.path(), "s"),
        Err(Error::InUse(_))
    ));
    s.close().unwrap();
    let s = Store::open(dir.path(), "s").unwrap();
    s.delete().unwrap();
    assert!(!dir.path().join("s").exists());
    tiny(dir.path(), 4, 64).close().unwrap();
    Store::destroy(dir.path(), "s").unwrap();
    assert!(matches!(
        Store::destroy(dir.path(), "s"),
        Err(Error::StoreNotFound(_))
    ));
}

fn tiny_err(dir: &std::path::Path) -> Error {
    Store::create(dir, "s", Config::default()).unwrap_err()
}

#[test]
fn files_are_allocated_to_full_size_at_create() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny(dir.path(), 10, 128);
    let p = s.path().to_path_buf();
    assert_eq!(std::fs::metadata(p.join("data.tsdb")).unwrap().len(), 1280);
    assert_eq!(std::fs::metadata(p.join("index.tsdb")).unwrap().len(), 192);
    assert_eq!(std::fs::metadata(p.join("meta.tsdb")).unwrap().len(), 64);
    for i in 0..200 {
        s.put(i + 1, &[0; 50]).unwrap();
    }
    s.close().unwrap();
    assert_eq!(std::fs::metadata(p.join("data.tsdb")).unwrap().len(), 1280);
}

#[test]
fn data_types_validate_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let mk = |name, data_type| {
        Store::create(
            dir.path(),
            name,
            Config {
                num_blocks: 4,
                data_type,
                ..Config::default()
            },
        )
        .unwrap()
    };
    let text = mk("t", DataType::Text);
    text.put(1, "grüße".as_bytes()).unwrap();
    let err = text.put(2, &[0xc3, 0x28]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidData {
                data_type: "text",
                ..
            }
        ),
        "{err}"
    );
    let json = mk("j", DataType::Json);
    json.put(1, br#"{"t":1}"#).unwrap();
    assert!(matches!(
        json.put(2, b"{oops"),
        Err(Error::InvalidData {
            data_type: "json",
            ..
        })
    ));
    assert!(matches!(
        json.put_many([(None, &b"1"[..]), (None, &b"nope"[..])]),
        Err(Error::InvalidData { .. })
    ));
    assert_eq!(
        json.oldest(10).unwrap().len(),
        1,
        "a bad batch writes nothing"
    );
    let bin = mk("b", DataType::Binary);
    bin.put(1, &[0, 255, 0]).unwrap();
    bin.put(2, &[]).unwrap();
    assert_eq!(bin.get_by_time(2).unwrap().data, Vec::<u8>::new());
}

#[test]
fn json_helpers_round_trip_serde_types() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Reading {
        temp: f64,
        room: String,
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Store::create(
        dir.path(),
        "j",
        Config {
            num_blocks: 4,
            ..Config::default()
        },
    )
    .unwrap();
    let r = Reading {
        temp: 21.5,
        room: "kitchen".into(),
    };
    let h = s.put_json(Some(10), &r).unwrap();
    assert_eq!(s.get_json::<Reading>(10).unwrap(), r);
    let h2 = s.put_json(None, &r).unwrap();
    assert!(h2.timestamp > h.timestamp);
    assert!(matches!(
        s.get_json::<Reading>(11),
        Err(Error::NotFound(11))
    ));
}

#[test]
fn put_many_writes_a_batch_across_blocks_and_wraps() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny(dir.path(), 8, 128);
    let items: Vec<(Option<i64>, Vec<u8>)> = (1..=100)
        .map(|i| (Some(i), vec![i as u8; 10 + (i as usize % 90)]))
        .collect();
    let handles = s
        .put_many(items.iter().map(|(t, d)| (*t, d.as_slice())))
        .unwrap();
    assert_eq!(handles.len(), 100);
    let live = s.oldest(1000).unwrap();
    assert!(!live.is_empty());
    assert_eq!(live.last().unwrap().timestamp(), 100);
    for r in &live {
        assert_eq!(r.data, items[r.timestamp() as usize - 1].1);
        assert_eq!(s.get(&r.handle).unwrap(), r.data);
    }
    let assigned = s.put_many([(None, &b"x"[..]), (None, &b"y"[..])]).unwrap();
    assert!(assigned[0].timestamp > 100 && assigned[1].timestamp > assigned[0].timestamp);
}

#[test]
fn reset_empties_in_place_and_keeps_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny(dir.path(), 4, 64);
    for ts in 1..=20 {
        s.put(ts * 1000, b"abc").unwrap();
    }
    s.reset().unwrap();
    assert!(s.oldest(10).unwrap().is_empty());
    assert_eq!(s.stats().active_blocks, 0);
    s.put(5, b"after reset").unwrap(); // older than before the reset: the store is empty
    s.close().unwrap();
    let s = Store::open(dir.path(), "s").unwrap();
    assert_eq!(timestamps(&s.oldest(10).unwrap()), vec![5]);
    assert_eq!(s.config().data_block_size, 64);
}

#[test]
fn stats_report_fill_and_times() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny(dir.path(), 4, 128);
    s.put(1_000_000_000, b"a").unwrap();
    s.put(2_000_000_000, b"b").unwrap();
    let st = s.stats();
    assert_eq!(st.oldest_timestamp, Some(1_000_000_000));
    assert_eq!(
        st.newest_time.as_deref(),
        Some("1970-01-01T00:00:02.000000000Z")
    );
    assert_eq!(st.object_count, Some(2));
    assert_eq!(st.bytes_used, 24 + 2 * 25);
    assert_eq!(st.capacity_bytes, 512);
    assert_eq!((st.head_block, st.tail_block, st.write_offset), (0, 0, 74));
}

#[test]
fn list_and_exists_see_only_complete_stores() {
    let dir = tempfile::tempdir().unwrap();
    assert!(tsstore::Store::list(dir.path()).unwrap().is_empty());
    for name in ["b", "a"] {
        let cfg = tsstore::Config {
            num_blocks: 4,
            ..tsstore::Config::default()
        };
        tsstore::Store::create(dir.path(), name, cfg)
            .unwrap()
            .close()
            .unwrap();
    }
    std::fs::create_dir(dir.path().join("half")).unwrap();
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    assert_eq!(tsstore::Store::list(dir.path()).unwrap(), ["a", "b"]);
    assert!(tsstore::Store::exists(dir.path(), "a"));
    assert!(!tsstore::Store::exists(dir.path(), "half"));
    assert!(!tsstore::Store::exists(dir.path(), ".."));
    assert!(tsstore::Store::list(dir.path().join("none")).is_err());

    // The header can be read while the store is open (no lock taken).
    let open = tsstore::Store::open(dir.path(), "a").unwrap();
    let cfg = tsstore::Store::read_config(dir.path(), "a").unwrap();
    assert_eq!(
        (cfg.num_blocks, cfg.data_type),
        (4, tsstore::DataType::Json)
    );
    open.close().unwrap();
    assert!(matches!(
        tsstore::Store::read_config(dir.path(), "half"),
        Err(tsstore::Error::StoreNotFound(_))
    ));
    assert!(matches!(
        tsstore::Store::read_config(dir.path(), ".."),
        Err(tsstore::Error::InvalidName { .. })
    ));
    std::fs::write(dir.path().join("half/meta.tsdb"), b"short").unwrap();
    assert!(matches!(
        tsstore::Store::read_config(dir.path(), "half"),
        Err(tsstore::Error::Corrupt(_))
    ));
}

#[test]
fn nothing_comes_after_the_largest_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny(dir.path(), 4, 128);
    s.put(i64::MAX, b"last").unwrap();
    // put_now and put_many have no later timestamp to give: refused, and
    // nothing is written (the store never holds two equal timestamps).
    assert!(matches!(
        s.put_now(b"x"),
        Err(Error::TimestampOutOfOrder { .. })
    ));
    assert!(matches!(
        s.put_many([(None, &b"y"[..])]),
        Err(Error::TimestampOutOfOrder { .. })
    ));
    assert_eq!(timestamps(&s.oldest(10).unwrap()), vec![i64::MAX]);
}

#[test]
fn a_create_the_disk_cannot_hold_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    // 4 EiB: more than any disk (or largest file) this runs on.
    let config = Config {
        num_blocks: u32::MAX,
        data_block_size: 1 << 30,
        index_block_size: 4096,
        data_type: DataType::Json,
        encoding: tsstore::Encoding::Raw,
    };
    let err = Store::create(dir.path(), "huge", config).unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err}");
    assert!(!dir.path().join("huge").exists(), "no directory left");
    // The name is free for a store that fits.
    let small = Config {
        num_blocks: 4,
        ..config
    };
    Store::create(dir.path(), "huge", small).unwrap();
}
