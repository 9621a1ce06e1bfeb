//! Model-based property test of compressed stores: random operation
//! sequences, compared after every step with the list of every record
//! inserted since the last reset.
//!
//! Which records a wrapped compressed ring still holds depends on how
//! well they compressed, so the model does not predict where the ring
//! starts; it checks what holds whatever the frames: the store keeps the
//! newest records, contiguous (deleted ones excepted), byte for byte, in
//! both directions and by time, and nothing is lost while the records are
//! too few to fill half the main ring even uncompressed.
//!
//! Long run: `PROPTEST_CASES=100000 cargo test -p tsstore --release --test model_compressed`.

use proptest::prelude::*;
use tsstore::{Config, DataType, Encoding, Error, Store, SyncPolicy};

#[derive(Debug, Clone)]
enum Op {
    Put { delta: i64, len: usize },
    PutNow { len: usize },
    PutMany { items: Vec<(bool, i64, usize)> },
    PutStale { back: i64 },
    PutTooLarge,
    Delete { pick: usize },
    Frame,
    Reset,
    Reopen,
    CrashReopen,
    Range { a: usize, b: usize },
}

#[derive(Debug, Clone)]
struct Obj {
    ts: i64,
    data: Vec<u8>,
    deleted: bool,
}

/// A payload of about `len` bytes: a flat JSON reading (JSON stores, so
/// the columnar split is exercised) or bytes of a pattern.
fn payload(json: bool, ts: i64, len: usize) -> Vec<u8> {
    if json {
        let pad = "x".repeat(len.saturating_sub(30) % 97);
        format!(
            r#"{{"t":{},"v":{}.{},"s":"{pad}"}}"#,
            ts % 1000,
            ts % 37,
            ts % 10
        )
        .into_bytes()
    } else {
        (0..len)
            .map(|i| (ts as usize).wrapping_mul(31).wrapping_add(i * 7) as u8)
            .collect()
    }
}

fn op_strategy(bs: usize) -> impl Strategy<Value = Op> {
    let len = prop_oneof![
        8 => 0..=(bs / 4),
        2 => 0..=bs,
        1 => 0..=(6 * bs),
    ];
    prop_oneof![
        30 => (1..1000i64, len.clone()).prop_map(|(delta, len)| Op::Put { delta, len }),
        4 => len.clone().prop_map(|len| Op::PutNow { len }),
        8 => proptest::collection::vec((any::<bool>(), 1..50i64, len.clone()), 1..40)
            .prop_map(|items| Op::PutMany { items }),
        3 => (0..3i64).prop_map(|back| Op::PutStale { back }),
        1 => Just(Op::PutTooLarge),
        6 => any::<usize>().prop_map(|pick| Op::Delete { pick }),
        3 => Just(Op::Frame),
        1 => Just(Op::Reset),
        3 => Just(Op::Reopen),
        3 => Just(Op::CrashReopen),
        5 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Range { a, b }),
    ]
}

fn scenario() -> impl Strategy<Value = (u32, u32, bool, Vec<Op>)> {
    (
        24u32..=64,
        prop_oneof![Just(128u32), Just(256), Just(1024)],
        any::<bool>(),
    )
        .prop_flat_map(|(n, bs, json)| {
            (
                Just(n),
                Just(bs),
                Just(json),
                proptest::collection::vec(op_strategy(bs as usize), 1..60),
            )
        })
}

struct Model {
    objs: Vec<Obj>,
    newest: i64,
    /// Raw bytes (payload and object header) the main ring can surely
    /// hold however the records compress: half its blocks' capacity.
    safe_bytes: usize,
}

impl Model {
    fn put(&mut self, ts: i64, data: Vec<u8>) {
        self.newest = ts;
        self.objs.push(Obj {
            ts,
            data,
            deleted: false,
        });
    }
}

fn records(store: &Store, reverse: bool) -> Result<Vec<(i64, Vec<u8>)>, TestCaseError> {
    let it = if reverse {
        store.iter_range_rev(i64::MIN, i64::MAX)
    } else {
        store.iter()
    };
    it.map(|r| r.map(|r| (r.timestamp(), r.data)))
        .collect::<Result<_, _>>()
        .map_err(|e| TestCaseError::fail(e.to_string()))
}

fn check(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    store.settle();
    let got = records(store, false)?;
    let mut rev = records(store, true)?;
    rev.reverse();
    let stamps = |r: &[(i64, Vec<u8>)]| r.iter().map(|r| r.0).collect::<Vec<_>>();
    prop_assert_eq!(
        stamps(&rev),
        stamps(&got),
        "reverse order gives the same records"
    );
    prop_assert!(rev == got, "reverse order gives the same payloads");
    // Where the kept records start in the model: everything live after
    // that point must be there, in order, byte for byte.
    let start = match got.first() {
        Some((ts, _)) => model
            .objs
            .iter()
            .position(|o| o.ts == *ts)
            .ok_or_else(|| TestCaseError::fail(format!("{ts} was never inserted")))?,
        None => model.objs.len(),
    };
    let want: Vec<(i64, Vec<u8>)> = model.objs[start..]
        .iter()
        .filter(|o| !o.deleted)
        .map(|o| (o.ts, o.data.clone()))
        .collect();
    prop_assert_eq!(
        stamps(&got),
        stamps(&want),
        "the newest records, contiguous"
    );
    prop_assert!(got == want, "the newest records, byte for byte");
    let raw: usize = model
        .objs
        .iter()
        .filter(|o| !o.deleted)
        .map(|o| o.data.len() + 24)
        .sum();
    if raw <= model.safe_bytes {
        let live = model.objs.iter().filter(|o| !o.deleted).count();
        prop_assert_eq!(got.len(), live, "nothing lost while so little is stored");
    }
    for o in &model.objs[start..] {
        match store.get_by_time(o.ts) {
            Ok(r) => {
                prop_assert!(!o.deleted, "deleted {} still found", o.ts);
                prop_assert_eq!(&r.data, &o.data);
                prop_assert_eq!(store.get(&r.handle).ok(), Some(o.data.clone()));
            }
            Err(Error::NotFound(_)) => prop_assert!(o.deleted, "{} not found", o.ts),
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        }
    }
    let newest: Vec<i64> = store
        .newest(3)
        .unwrap()
        .iter()
        .map(|r| r.timestamp())
        .collect();
    let want_newest: Vec<i64> = want.iter().rev().take(3).map(|o| o.0).collect();
    prop_assert_eq!(newest, want_newest);
    let oldest: Vec<i64> = store
        .oldest(3)
        .unwrap()
        .iter()
        .map(|r| r.timestamp())
        .collect();
    let want_oldest: Vec<i64> = want.iter().take(3).map(|o| o.0).collect();
    prop_assert_eq!(oldest, want_oldest);
    let stats = store.stats();
    if let Some(last) = want.last() {
        prop_assert!(stats.newest_timestamp >= Some(last.0));
    }
    prop_assert_eq!(stats.corruption_skips, 0);
    Ok(())
}

fn run(n: u32, bs: u32, json: bool, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        num_blocks: n,
        data_block_size: bs,
        index_block_size: 64,
        data_type: if json {
            DataType::Json
        } else {
            DataType::Binary
        },
        encoding: Encoding::Compressed,
    };
    let mut store = Store::create_with(dir.path(), "m", config, SyncPolicy::Never).unwrap();
    let main_blocks = (n - tsstore::encoding::staging_blocks(n)) as usize;
    let mut model = Model {
        objs: Vec::new(),
        newest: 0,
        safe_bytes: (main_blocks - 2) * (bs as usize - 48) / 2,
    };
    let max_len = store.max_object_size() as usize;
    for op in ops {
        match op {
            Op::Put { delta, len } => {
                let ts = model.newest + delta;
                let data = payload(json, ts, len);
                let res = store.put(ts, &data);
                if data.len() > max_len {
                    prop_assert!(matches!(res, Err(Error::TooLarge { .. })), "{res:?}");
                } else {
                    let h = res.unwrap();
                    prop_assert_eq!(h.timestamp, ts);
                    prop_assert_eq!(h.size as usize, data.len());
                    model.put(ts, data);
                }
            }
            Op::PutNow { len } => {
                let data = payload(json, model.newest, len);
                if data.len() <= max_len {
                    let h = store.put_now(&data).unwrap();
                    prop_assert!(h.timestamp > model.newest);
                    model.put(h.timestamp, data);
                }
            }
            Op::PutMany { items } => {
                let mut prev = model.newest;
                let mut batch = Vec::new();
                for (given, delta, len) in &items {
                    let ts = if *given { Some(prev + delta) } else { None };
                    prev = ts.unwrap_or_else(|| tsstore::now_ns().max(prev) + 1_000_000_000_000);
                    let mut data = payload(json, prev, *len);
                    data.truncate(max_len);
                    if json && data.len() == max_len {
                        data = b"{}".to_vec();
                    }
                    batch.push((ts, data));
                }
                let handles = store
                    .put_many(batch.iter().map(|(t, d)| (*t, d.as_slice())))
                    .unwrap();
                prop_assert_eq!(handles.len(), batch.len());
                let mut last = model.newest;
                for (h, (t, d)) in handles.iter().zip(batch) {
                    prop_assert!(h.timestamp > last);
                    if let Some(t) = t {
                        prop_assert_eq!(h.timestamp, t);
                    }
                    last = h.timestamp;
                    model.put(h.timestamp, d);
                }
            }
            Op::PutStale { back } => {
                let res = store.put(model.newest - back, b"{}");
                prop_assert!(
                    matches!(
                        res,
                        Err(Error::TimestampOutOfOrder { .. }) | Err(Error::InvalidTimestamp(_))
                    ),
                    "{res:?}"
                );
            }
            Op::PutTooLarge => {
                // A JSON string: valid for every data type but schema.
                let mut big = vec![b'x'; max_len + 1];
                big[0] = b'"';
                big[max_len] = b'"';
                let res = store.put(model.newest + 1, &big);
                prop_assert!(matches!(res, Err(Error::TooLarge { .. })), "{res:?}");
            }
            Op::Delete { pick } => {
                store.settle();
                let live: Vec<i64> = records(&store, false)?.iter().map(|r| r.0).collect();
                if live.is_empty() {
                    prop_assert!(matches!(store.delete_by_time(1), Err(Error::NotFound(1))));
                } else {
                    let ts = live[pick % live.len()];
                    store.delete_by_time(ts).unwrap();
                    for o in model.objs.iter_mut().filter(|o| o.ts == ts) {
                        o.deleted = true;
                    }
                    prop_assert!(matches!(store.delete_by_time(ts), Err(Error::NotFound(_))));
                }
            }
            Op::Frame => store.frame_staged().unwrap(),
            Op::Reset => {
                store.reset().unwrap();
                model.objs.clear();
                model.newest = 0;
            }
            Op::Reopen => {
                store.close().unwrap();
                store = Store::open_with(dir.path(), "m", SyncPolicy::Never).unwrap();
            }
            Op::CrashReopen => {
                // As if the process died: recovery must find every insert.
                store.abandon();
                store = Store::open_with(dir.path(), "m", SyncPolicy::Never).unwrap();
            }
            Op::Range { a, b } => {
                store.settle();
                let kept = records(&store, false)?;
                if !kept.is_empty() {
                    let (mut lo, mut hi) = (kept[a % kept.len()].0, kept[b % kept.len()].0);
                    if lo > hi {
                        std::mem::swap(&mut lo, &mut hi);
                    }
                    let lo = lo - (a % 2) as i64;
                    let hi = hi + (b % 2) as i64;
                    let want: Vec<i64> = kept
                        .iter()
                        .map(|r| r.0)
                        .filter(|t| (lo..=hi).contains(t))
                        .collect();
                    let got: Vec<i64> = store
                        .range(lo, hi, None)
                        .unwrap()
                        .iter()
                        .map(|r| r.timestamp())
                        .collect();
                    prop_assert_eq!(&got, &want);
                    let mut rev: Vec<i64> = store
                        .iter_range_rev(lo, hi)
                        .map(|r| r.unwrap().timestamp())
                        .collect();
                    rev.reverse();
                    prop_assert_eq!(rev, want.clone());
                    let after: Vec<i64> = store
                        .after(lo, Some(2))
                        .unwrap()
                        .iter()
                        .map(|r| r.timestamp())
                        .collect();
                    let want_after: Vec<i64> = kept
                        .iter()
                        .map(|r| r.0)
                        .filter(|t| *t > lo)
                        .take(2)
                        .collect();
                    prop_assert_eq!(after, want_after);
                }
            }
        }
        check(&store, &model)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn compressed_store_matches_model((n, bs, json, ops) in scenario()) {
        run(n, bs, json, ops)?;
    }
}
