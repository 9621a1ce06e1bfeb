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

#[path = "model_ops/mod.rs"]
mod model_ops;
use model_ops::{Obj, Op};

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
    model_ops::op_strategy(len, 40, 3)
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
    /// Blocks that frames filling their block only in part may take: one
    /// per `Frame` op, and two per record too large to stage (framed
    /// alone, spanning, after a part-frame of what was staged).
    part_frames: usize,
    block: usize,
}

impl model_ops::Model for Model {
    fn newest(&self) -> i64 {
        self.newest
    }

    fn put(&mut self, ts: i64, data: Vec<u8>) {
        if data.len() > self.block / 2 {
            self.part_frames += 2;
        }
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
    // A deleted record keeps its bytes until the ring wraps over it.
    let raw: usize = model.objs.iter().map(|o| o.data.len() + 24).sum::<usize>()
        + model.part_frames * model.block;
    if raw <= model.safe_bytes {
        let live = model.objs.iter().filter(|o| !o.deleted).count();
        prop_assert_eq!(got.len(), live, "nothing lost while so little is stored");
    }
    model_ops::check_lookups(store, &model.objs[start..])?;
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
        part_frames: 0,
        block: bs as usize,
    };
    let max_len = store.max_object_size() as usize;
    for op in ops {
        let make = |ts, len| payload(json, ts, len);
        if model_ops::insert(&store, &mut model, &op, make, max_len)? {
            check(&store, &model)?;
            continue;
        }
        match op {
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
            Op::Frame => {
                store.frame_staged().unwrap();
                model.part_frames += 1;
            }
            // Inserts ran above.
            Op::Put { .. }
            | Op::PutNow { .. }
            | Op::PutMany { .. }
            | Op::PutStale { .. }
            | Op::PutTooLarge => {}
            Op::Reset => {
                store.reset().unwrap();
                model.objs.clear();
                model.newest = 0;
                model.part_frames = 0;
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
                let kept: Vec<i64> = records(&store, false)?.iter().map(|r| r.0).collect();
                model_ops::check_range(&store, &kept, &kept, a, b)?;
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
