//! Compressed stores (frames in the main ring, records staged first)
//! against a model: every record acknowledged comes back byte for byte, in
//! both directions and by time, across framing, deletes, reopen, a killed
//! process and reset; a wrapped ring keeps the newest records, contiguous.

use proptest::prelude::*;
use tsstore::{Config, DataType, Encoding, Store, SyncPolicy};

fn config(blocks: u32) -> Config {
    Config {
        num_blocks: blocks,
        data_block_size: 1024,
        index_block_size: 256,
        data_type: DataType::Json,
        encoding: Encoding::Compressed,
    }
}

fn all(store: &Store) -> Vec<(i64, Vec<u8>)> {
    store
        .iter()
        .map(|r| r.map(|r| (r.timestamp(), r.data)))
        .collect::<tsstore::Result<_>>()
        .unwrap()
}

/// Every record as the store gives it back (a schema store's expanded).
fn expanded(store: &Store) -> Vec<(i64, Vec<u8>)> {
    store
        .iter()
        .map(|r| {
            let r = r.unwrap();
            (r.timestamp(), store.expand(&r.data).into_owned())
        })
        .collect()
}

fn reading(i: i64, wide: bool) -> Vec<u8> {
    if wide {
        format!(
            r#"{{"t":{}.{},"note":"{}"}}"#,
            20 + i % 7,
            i % 10,
            "x".repeat((i % 300) as usize)
        )
    } else {
        format!(r#"{{"t":{}.{},"h":{}}}"#, 20 + i % 7, i % 10, 40 + i % 13)
    }
    .into_bytes()
}

#[derive(Debug, Clone)]
enum Op {
    Put {
        count: usize,
        wide: bool,
    },
    /// One record around or above what the staging ring takes at once.
    Big {
        len: usize,
    },
    Frame,
    /// Deletes the model's record at this fraction of it.
    Delete(f64),
    Reopen,
    Crash,
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1usize..200, any::<bool>()).prop_map(|(count, wide)| Op::Put { count, wide }),
        1 => (3_000usize..40_000).prop_map(|len| Op::Big { len }),
        1 => Just(Op::Frame),
        2 => (0.0..1.0).prop_map(Op::Delete),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
        1 => Just(Op::Reset),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_acknowledged_record_comes_back(ops in proptest::collection::vec(op(), 1..25)) {
        let dir = tempfile::tempdir().unwrap();
        // Large enough never to wrap: the model is the whole history.
        let sync = SyncPolicy::Interval(std::time::Duration::from_secs(3600));
        let mut store = Some(Store::create_with(dir.path(), "s", config(4096), sync).unwrap());
        let mut model: Vec<(i64, Vec<u8>)> = Vec::new();
        let mut ts = 1_000;
        for op in ops {
            let s = store.take().unwrap();
            let reopen = || Store::open_with(dir.path(), "s", sync).unwrap();
            let s = match op {
                Op::Put { count, wide } => {
                    let batch: Vec<(i64, Vec<u8>)> = (0..count as i64)
                        .map(|k| { ts += 1 + k % 3; (ts, reading(ts, wide)) })
                        .collect();
                    s.put_many(batch.iter().map(|(t, p)| (Some(*t), p.as_slice()))).unwrap();
                    model.extend(batch);
                    s
                }
                Op::Big { len } => {
                    ts += 1;
                    let p = format!(r#"{{"blob":"{}"}}"#, "b".repeat(len)).into_bytes();
                    s.put(ts, &p).unwrap();
                    model.push((ts, p));
                    s
                }
                Op::Frame => {
                    s.frame_staged().unwrap();
                    s
                }
                Op::Delete(at) => {
                    if !model.is_empty() {
                        let (t, _) = model.remove((at * model.len() as f64) as usize);
                        s.delete_by_time(t).unwrap();
                        prop_assert!(s.get_by_time(t).is_err(), "deleted {}", t);
                        prop_assert!(s.delete_by_time(t).is_err(), "deleted twice {}", t);
                    }
                    s
                }
                Op::Reopen => {
                    s.close().unwrap();
                    reopen()
                }
                Op::Crash => {
                    s.abandon();
                    reopen()
                }
                Op::Reset => {
                    s.reset().unwrap();
                    model.clear();
                    s
                }
            };
            prop_assert_eq!(all(&s), model.clone());
            let mut rev: Vec<(i64, Vec<u8>)> = s
                .iter_range_rev(i64::MIN, i64::MAX)
                .map(|r| r.map(|r| (r.timestamp(), r.data)))
                .collect::<tsstore::Result<_>>()
                .unwrap();
            rev.reverse();
            prop_assert_eq!(rev, model.clone());
            if let Some((t, p)) = model.get(model.len() / 2) {
                prop_assert_eq!(&s.get_by_time(*t).unwrap().data, p);
                // A window that starts and ends inside frames.
                let (a, b) = (model.len() / 3, model.len() / 2);
                let window: Vec<i64> = s
                    .range(model[a].0, model[b].0, None)
                    .unwrap()
                    .iter()
                    .map(|r| r.timestamp())
                    .collect();
                let want: Vec<i64> = model[a..=b].iter().map(|r| r.0).collect();
                prop_assert_eq!(window, want);
                let newest: Vec<i64> = s.newest(3).unwrap().iter().map(|r| r.timestamp()).collect();
                let want: Vec<i64> = model.iter().rev().take(3).map(|r| r.0).collect();
                prop_assert_eq!(newest, want);
            }
            if let Some((t, _)) = model.last() {
                prop_assert!(s.put(*t, b"{}").is_err(), "not after the newest");
            }
            store = Some(s);
        }
    }
}

#[test]
fn a_wrapped_ring_keeps_the_newest_records_and_far_more_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create_with(dir.path(), "s", config(80), SyncPolicy::Never).unwrap();
    let raw_config = Config {
        encoding: Encoding::Raw,
        ..config(80)
    };
    let raw = Store::create_with(dir.path(), "raw", raw_config, SyncPolicy::Never).unwrap();
    let records: Vec<(i64, Vec<u8>)> = (1..=60_000).map(|i| (i, reading(i, false))).collect();
    for chunk in records.chunks(500) {
        store
            .put_many(chunk.iter().map(|(t, p)| (Some(*t), p.as_slice())))
            .unwrap();
        raw.put_many(chunk.iter().map(|(t, p)| (Some(*t), p.as_slice())))
            .unwrap();
    }
    // The framer may still be filling (and wrapping) the main ring; a
    // reader meanwhile loses what is overwritten under it, as with any ring.
    store.frame_staged().unwrap();
    let kept = all(&store);
    let first = kept[0].0 as usize;
    assert_eq!(
        kept,
        records[first - 1..].to_vec(),
        "the newest records, contiguous"
    );
    let raw_kept = raw.iter().count();
    // The same footprint (both rings against one raw ring of their size).
    assert!(
        kept.len() > 5 * raw_kept,
        "{} framed against {raw_kept} raw",
        kept.len()
    );
}

/// Lookups of neighbouring records: the first in a frame decompresses
/// it, the next ones search its kept body, later ones find it rebuilt
/// whole. Each answers the same, and a record deleted between them is
/// gone from every form.
#[test]
fn neighbouring_lookups_agree_in_every_form_of_the_frame_cache() {
    let dir = tempfile::tempdir().unwrap();
    // Large enough not to wrap: no range may read (and so rebuild) the
    // frames before the lookups do.
    let store = Store::create(dir.path(), "n", config(1024)).unwrap();
    let kept: Vec<(i64, Vec<u8>)> = (1..=3000).map(|i| (i * 10, reading(i, false))).collect();
    store
        .put_many(kept.iter().map(|(t, p)| (Some(*t), p.as_slice())))
        .unwrap();
    store.frame_staged().unwrap();
    for (k, (ts, p)) in kept.iter().enumerate() {
        if k % 5 == 3 {
            store.delete_by_time(*ts).unwrap();
            assert!(store.get_by_time(*ts).is_err(), "deleted {ts}");
        } else {
            assert_eq!(&store.get_by_time(*ts).unwrap().data, p, "{ts}");
        }
        assert!(store.get_by_time(ts + 1).is_err(), "none at {}", ts + 1);
    }
    for (k, (ts, p)) in kept.iter().enumerate().rev() {
        let got = store.get_by_time(*ts).map(|r| r.data);
        assert_eq!(got.ok().as_ref(), (k % 5 != 3).then_some(p), "{ts}");
    }
    let live: Vec<_> = kept
        .into_iter()
        .enumerate()
        .filter(|(k, _)| k % 5 != 3)
        .map(|(_, r)| r)
        .collect();
    assert_eq!(all(&store), live);
}

#[test]
fn records_that_pack_badly_never_lose_a_staged_one() {
    // Records of 400–1 000 bytes in 1 KiB blocks leave up to half of each
    // staging block empty: the framing guard must count blocks, not bytes.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create_with(dir.path(), "s", config(8192), SyncPolicy::Never).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut model = Vec::new();
    for i in 1..=3000i64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = 400 + (state % 600) as usize;
        let p = format!(r#"{{"n":{i},"pad":"{}"}}"#, "p".repeat(len)).into_bytes();
        model.push((i, p));
        if i % 7 == 0 {
            let batch = &model[model.len() - 7..];
            store
                .put_many(batch.iter().map(|(t, p)| (Some(*t), p.as_slice())))
                .unwrap();
        }
    }
    let tail = model.len() % 7;
    let batch = &model[model.len() - tail..];
    store
        .put_many(batch.iter().map(|(t, p)| (Some(*t), p.as_slice())))
        .unwrap();
    assert_eq!(all(&store), model);
}

/// Batches of 1 000 (larger than half the staging ring, so split), a
/// main ring that wraps, and the background checkpointer of `interval`:
/// what is kept is the newest records, exactly, and each is found by time.
#[test]
fn batches_larger_than_the_staging_ring_come_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        num_blocks: 288,
        data_block_size: 4096,
        index_block_size: 4096,
        data_type: DataType::Json,
        encoding: Encoding::Compressed,
    };
    let sync = SyncPolicy::Interval(std::time::Duration::from_secs(1));
    let store = Store::create_with(dir.path(), "s", config, sync).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let records: Vec<(i64, Vec<u8>)> = (1..=150_000i64)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let fields: Vec<String> = (0..3)
                .map(|f| format!("\"f{f}\":{}", (state >> (f * 4)) % 10))
                .collect();
            (
                i * 3_600_000_000_000,
                format!("{{{}}}", fields.join(",")).into_bytes(),
            )
        })
        .collect();
    for chunk in records.chunks(1000) {
        store
            .put_many(chunk.iter().map(|(t, p)| (Some(*t), p.as_slice())))
            .unwrap();
    }
    // The framer may still be filling (and wrapping) the main ring; a
    // reader meanwhile loses what is overwritten under it, as with any ring.
    store.frame_staged().unwrap();
    let kept = all(&store);
    let first = records.iter().position(|r| r.0 == kept[0].0).unwrap();
    if kept[..] != records[first..] {
        let at = kept.iter().zip(&records[first..]).position(|(a, b)| a != b);
        panic!(
            "kept {} of {}, first {first}, first difference at {at:?}: {:?} vs {:?}",
            kept.len(),
            records.len() - first,
            at.map(|i| kept[i].0),
            at.map(|i| records[first + i].0)
        );
    }
    for k in 0..2000 {
        let (ts, p) = &kept[k * kept.len() / 2000];
        assert_eq!(&store.get_by_time(*ts).unwrap().data, p, "{ts}");
    }
}

/// A batch of every kind of JSON record an insert meets: compact objects
/// of changing shapes, short exponents among their values (split as they
/// are checked), ones the fast check is
/// unsure of or that are not compact (checked the slow way and split by
/// the framer), objects too wide for a template, values that are not
/// objects, and one record too large to stage. All come back byte for
/// byte, across a reopen; a batch with one invalid record changes nothing.
#[test]
fn every_kind_of_json_record_in_one_batch_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        num_blocks: 96,
        data_block_size: 4096,
        index_block_size: 4096,
        data_type: DataType::Json,
        encoding: Encoding::Compressed,
    };
    let store = Store::create_with(dir.path(), "j", config, SyncPolicy::Never).unwrap();
    let wide: Vec<String> = (0..300).map(|k| format!("\"k{k}\":{k}")).collect();
    let wide = format!("{{{}}}", wide.join(","));
    let big = format!(r#"{{"blob":"{}"}}"#, "b".repeat(40_000));
    assert!(big.len() as u64 <= store.max_object_size());
    let kinds = |i: i64| -> String {
        match i % 11 {
            0 => format!(r#"{{"t":{i},"h":{}e-5}}"#, i % 13),
            1 => format!(r#"{{"t":{i},"h":{},"extra":[1,{{"a":"}},"}}]}}"#, i % 13),
            2 => format!(r#"{{"t":{i}e300,"h":1}}"#),
            3 => format!(r#"{{"t":{i}, "h":2}}"#),
            4 => format!(r#"{{ "t":{i},"h":3}}"#),
            5 => format!(r#"{{"t":"\u00e9{i}","h":4}}"#),
            6 => format!(r#"{{"t\"q":{i}}}"#),
            7 => format!(r#"{{"té":{i},"h":"ü"}}"#),
            8 => format!("[{i},2]"),
            9 => format!("{i}"),
            _ => format!(r#"{{"t": {i}}}"#),
        }
    };
    let mut want: Vec<(i64, Vec<u8>)> = Vec::new();
    let mut ts = 1_000;
    for round in 0..30 {
        let mut batch: Vec<Vec<u8>> = (0..200)
            .map(|i| kinds(round * 200 + i).into_bytes())
            .collect();
        if round % 7 == 3 {
            batch.insert(50, wide.clone().into_bytes());
            batch.insert(120, big.clone().into_bytes());
        }
        let stamped: Vec<(i64, Vec<u8>)> = batch
            .into_iter()
            .map(|p| {
                ts += 1_000;
                (ts, p)
            })
            .collect();
        store
            .put_many(stamped.iter().map(|(t, p)| (Some(*t), p.as_slice())))
            .unwrap();
        want.extend(stamped);
    }
    let bad = [
        (Some(ts + 1), &b"{\"t\":1}"[..]),
        (Some(ts + 2), &b"{\"t\":}"[..]),
    ];
    assert!(matches!(
        store.put_many(bad),
        Err(tsstore::Error::InvalidData { .. })
    ));
    assert_eq!(all(&store), want);
    drop(store);
    let store = Store::open(dir.path(), "j").unwrap();
    assert_eq!(all(&store), want);
    store.frame_staged().unwrap();
    assert_eq!(all(&store), want);
    for (ts, p) in want.iter().step_by(37) {
        assert_eq!(&store.get_by_time(*ts).unwrap().data, p, "{ts}");
    }
}

/// Schema and text stores compress too: a schema store keeps compact
/// records (expanded on read), a text store whole ones; both come back as
/// a raw store of the same type gives them, across a reopen.
/// Records spaced as Python's `json.dumps` writes them (`{"k": v, ...}`)
/// are split into columns by the framer, as compact ones are by the
/// insert: the store keeps about as many of them, and gives them back
/// byte for byte.
#[test]
fn spaced_json_records_compress_as_compact_ones_do() {
    let dir = tempfile::tempdir().unwrap();
    let mut kept = Vec::new();
    for (name, colon, comma) in [("compact", ":", ","), ("spaced", ": ", ", ")] {
        let store = Store::create_with(dir.path(), name, config(64), SyncPolicy::Never).unwrap();
        let records: Vec<(i64, Vec<u8>)> = (0..60_000i64)
            .map(|i| {
                let p = format!(
                    "{{\"t\"{colon}{}.{}{comma}\"h\"{colon}{}{comma}\"site\"{colon}\"s{}\"}}",
                    20 + i % 7,
                    i % 10,
                    40 + i % 13,
                    i % 3
                );
                ((i + 1) * 1_000, p.into_bytes())
            })
            .collect();
        store
            .put_many(records.iter().map(|(t, p)| (Some(*t), p.as_slice())))
            .unwrap();
        store.frame_staged().unwrap();
        let back = all(&store);
        assert!(back.len() < records.len(), "{name}: the store wrapped");
        assert_eq!(back[..], records[records.len() - back.len()..], "{name}");
        kept.push(back.len());
    }
    // Whole records would keep about half as many.
    assert!(
        kept[1] * 10 >= kept[0] * 9,
        "spaced {} against compact {}",
        kept[1],
        kept[0]
    );
}

#[test]
fn schema_and_text_stores_compress_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    for data_type in [DataType::Schema, DataType::Text] {
        let make = |name: &str, encoding| {
            let config = Config {
                data_type,
                encoding,
                ..config(256)
            };
            let store = Store::create_with(dir.path(), name, config, SyncPolicy::Never).unwrap();
            if data_type == DataType::Schema {
                let field = |index, name: &str, field_type| tsstore::Field {
                    index,
                    name: name.into(),
                    field_type,
                };
                store
                    .set_schema(vec![
                        field(1, "t", tsstore::FieldType::Float64),
                        field(2, "room", tsstore::FieldType::String),
                    ])
                    .unwrap();
            }
            store
        };
        let name = format!("{data_type}");
        let raw = make(&format!("{name}-raw"), Encoding::Raw);
        let compressed = make(&name, Encoding::Compressed);
        let records: Vec<(i64, Vec<u8>)> = (1..=5_000i64)
            .map(|i| {
                let p = match data_type {
                    DataType::Text => format!("t={}.{} room=lab-{}", 20 + i % 7, i % 10, i % 3),
                    _ => format!(
                        r#"{{"t":{}.{},"room":"lab-{}"}}"#,
                        20 + i % 7,
                        i % 10,
                        i % 3
                    ),
                };
                (i * 1_000, p.into_bytes())
            })
            .collect();
        for store in [&raw, &compressed] {
            store
                .put_many(records.iter().map(|(t, p)| (Some(*t), p.as_slice())))
                .unwrap();
        }
        compressed.frame_staged().unwrap();
        compressed.close().unwrap();
        let compressed = Store::open(dir.path(), &name).unwrap();
        assert_eq!(compressed.data_type(), data_type);
        assert_eq!(compressed.encoding(), Encoding::Compressed);
        assert_eq!(expanded(&compressed), expanded(&raw), "{data_type}");
        assert_eq!(expanded(&compressed).len(), records.len());
        assert!(compressed.compression().unwrap().ratio > 3.0);
    }
}

/// A reader that pages with `after` (as live read and outbound cursors
/// do) while a writer inserts and the framer moves records into frames
/// is given every record once, in order, and is woken by each commit.
#[test]
fn a_cursor_sees_every_record_while_records_are_framed() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(Store::create_with(dir.path(), "s", config(4096), SyncPolicy::Never).unwrap());
    let total = 40_000i64;
    let writer = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            for chunk in (1..=total).collect::<Vec<_>>().chunks(97) {
                store
                    .put_many(chunk.iter().map(|i| (Some(*i), reading(*i, false))))
                    .unwrap();
            }
        })
    };
    let watch = store.commits();
    let mut cursor = 0i64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while cursor < total {
        let seen = watch.current();
        let page = store.after(cursor, Some(500)).unwrap();
        for r in &page {
            assert_eq!(r.timestamp(), cursor + 1, "no record skipped or repeated");
            assert_eq!(r.data, reading(r.timestamp(), false));
            cursor = r.timestamp();
        }
        if page.is_empty() {
            assert!(std::time::Instant::now() < deadline, "stuck at {cursor}");
            watch.wait_past(seen, std::time::Duration::from_millis(200));
        }
    }
    writer.join().unwrap();
}

/// A compressed store whose staging ring's header lost its checksum flag
/// (or says another data type) is refused: its staged records would be
/// read unverified.
#[test]
fn a_staging_header_without_checksums_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create_with(dir.path(), "s", config(64), SyncPolicy::Never).unwrap();
    store.put(1, br#"{"a":1}"#).unwrap();
    store.close().unwrap();
    let meta = dir.path().join("s/staging/meta.tsdb");
    let good = std::fs::read(&meta).unwrap();
    for (at, value) in [(37, good[37] & !1), (36, 2)] {
        let mut bad = good.clone();
        bad[at] = value;
        std::fs::write(&meta, &bad).unwrap();
        let err = Store::open(dir.path(), "s").unwrap_err();
        assert!(
            matches!(err, tsstore::Error::Corrupt(_)),
            "byte {at}: {err}"
        );
    }
    std::fs::write(&meta, &good).unwrap();
    let store = Store::open(dir.path(), "s").unwrap();
    assert_eq!(store.get_by_time(1).unwrap().data, br#"{"a":1}"#);
}

/// One schema field's value as a client writes it, or absent.
fn schema_value(field_type: tsstore::FieldType) -> BoxedStrategy<Option<String>> {
    use tsstore::FieldType as T;
    let value: BoxedStrategy<String> = match field_type {
        T::Int64 => prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(0i64),
            any::<i64>(),
            -50i64..50
        ]
        .prop_map(|v| v.to_string())
        .boxed(),
        T::Uint64 => prop_oneof![Just(u64::MAX), any::<u64>(), 0u64..100]
            .prop_map(|v| v.to_string())
            .boxed(),
        T::Int8 => any::<i8>().prop_map(|v| v.to_string()).boxed(),
        T::Float32 => any::<f32>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| v.to_string())
            .boxed(),
        T::Bool => any::<bool>().prop_map(|v| v.to_string()).boxed(),
        T::String => "[a-c]{0,4}".prop_map(|s| format!("\"{s}\"")).boxed(),
        _ => prop_oneof![
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
            Just(5e-324),
            Just(-0.0),
            any::<f64>().prop_filter("finite", |v| v.is_finite()),
            (-5000i64..5000).prop_map(|v| v as f64 / 100.0),
        ]
        .prop_map(|v| v.to_string())
        .boxed(),
    };
    prop_oneof![1 => Just(None), 4 => value.prop_map(Some)].boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// A compressed schema store gives back what a raw one gives, byte
    /// for byte, for every field type at its extremes, sparse fields, and
    /// the schema evolving between records that share a frame (then
    /// again after a reopen).
    #[test]
    fn schema_records_of_every_type_round_trip_across_an_evolution(
        rows in proptest::collection::vec(
            (
                schema_value(tsstore::FieldType::Float64),
                schema_value(tsstore::FieldType::Int64),
                schema_value(tsstore::FieldType::Uint64),
                schema_value(tsstore::FieldType::Bool),
                schema_value(tsstore::FieldType::String),
                schema_value(tsstore::FieldType::Int8),
                schema_value(tsstore::FieldType::Float32),
            ),
            1..400,
        ),
        evolve_at in 0.0f64..1.0,
    ) {
        use tsstore::FieldType as T;
        let dir = tempfile::tempdir().unwrap();
        let field = |index, name: &str, field_type| tsstore::Field {
            index,
            name: name.into(),
            field_type,
        };
        let first = vec![
            field(1, "f", T::Float64),
            field(2, "i", T::Int64),
            field(3, "u", T::Uint64),
            field(4, "b", T::Bool),
            field(5, "s", T::String),
        ];
        let mut second = first.clone();
        second.push(field(6, "small", T::Int8));
        second.push(field(7, "single", T::Float32));
        let stores: Vec<Store> = [Encoding::Raw, Encoding::Compressed]
            .into_iter()
            .map(|encoding| {
                let config = Config {
                    data_type: DataType::Schema,
                    encoding,
                    ..config(64)
                };
                let s = Store::create_with(dir.path(), &encoding.to_string(), config, SyncPolicy::Never)
                    .unwrap();
                s.set_schema(first.clone()).unwrap();
                s
            })
            .collect();
        let evolve = (rows.len() as f64 * evolve_at) as usize;
        for (n, row) in rows.iter().enumerate() {
            if n == evolve {
                for s in &stores {
                    s.set_schema(second.clone()).unwrap();
                }
            }
            let names = ["f", "i", "u", "b", "s", "small", "single"];
            let values = [&row.0, &row.1, &row.2, &row.3, &row.4, &row.5, &row.6];
            let known = if n >= evolve { 7 } else { 5 };
            let body: Vec<String> = names
                .iter()
                .zip(values)
                .take(known)
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("\"{k}\":{v}")))
                .collect();
            let p = format!("{{{}}}", body.join(","));
            for s in &stores {
                s.put(n as i64 + 1, p.as_bytes()).unwrap();
            }
        }
        stores[1].frame_staged().unwrap();
        let want = expanded(&stores[0]);
        prop_assert_eq!(want.len(), rows.len());
        prop_assert_eq!(&expanded(&stores[1]), &want);
        let name = Encoding::Compressed.to_string();
        let mut stores = stores;
        stores.pop().unwrap().close().unwrap();
        let reopened = Store::open(dir.path(), &name).unwrap();
        prop_assert_eq!(&expanded(&reopened), &want);
        prop_assert!(reopened.compression().is_some(), "framed");
    }
}
