//! Model-based property test: random operation sequences on tiny stores,
//! compared after every step with a plain in-memory model of the ring.
//!
//! The model knows only the rules of the layout (pack while it fits, an
//! object too big for one block spans whole blocks, the ring drops whole
//! objects from the tail), not the engine's data structures.

use std::collections::VecDeque;

use proptest::prelude::*;
use tsstore::{Config, DataType, Error, Store, SyncPolicy};

#[path = "model_ops/mod.rs"]
mod model_ops;
use model_ops::{Obj, Op};

const HDR: usize = 24;

#[derive(Debug)]
struct ModelBlock {
    objs: Vec<Obj>,
    span: usize,
    used: usize,
}

struct Model {
    n: usize,
    bs: usize,
    blocks: VecDeque<ModelBlock>,
    newest: i64,
}

impl Model {
    fn blocks_for(&self, len: usize) -> usize {
        let first = self.bs - 2 * HDR;
        if len <= first {
            1
        } else {
            1 + (len - first).div_ceil(self.bs - HDR)
        }
    }

    fn max_len(&self) -> usize {
        (self.bs - 2 * HDR) + (self.n - 1) * (self.bs - HDR)
    }

    fn put(&mut self, ts: i64, data: Vec<u8>) {
        let len = data.len();
        self.newest = ts;
        if let Some(last) = self.blocks.back_mut() {
            let packable = last.span == 1 && last.used + HDR + len <= self.bs && {
                let first = self.bs - 2 * HDR;
                last.objs.iter().all(|o| o.data.len() <= first)
            };
            if packable {
                last.used += HDR + len;
                last.objs.push(Obj {
                    ts,
                    data,
                    deleted: false,
                });
                return;
            }
        }
        let span = self.blocks_for(len);
        while self.blocks.iter().map(|b| b.span).sum::<usize>() + span > self.n {
            self.blocks.pop_front();
        }
        let used = if span == 1 { 2 * HDR + len } else { self.bs };
        self.blocks.push_back(ModelBlock {
            objs: vec![Obj {
                ts,
                data,
                deleted: false,
            }],
            span,
            used,
        });
    }

    fn live(&self) -> Vec<&Obj> {
        self.blocks
            .iter()
            .flat_map(|b| b.objs.iter())
            .filter(|o| !o.deleted)
            .collect()
    }

    fn all(&self) -> Vec<&Obj> {
        self.blocks.iter().flat_map(|b| b.objs.iter()).collect()
    }
}

impl model_ops::Model for Model {
    fn newest(&self) -> i64 {
        self.newest
    }

    fn put(&mut self, ts: i64, data: Vec<u8>) {
        Model::put(self, ts, data);
    }
}

fn payload(ts: i64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (ts as usize).wrapping_mul(31).wrapping_add(i * 7) as u8)
        .collect()
}

fn op_strategy(bs: usize) -> impl Strategy<Value = Op> {
    let len = prop_oneof![
        6 => 0..=(bs / 3),
        2 => 0..=(bs - 2 * HDR + 2),
        1 => 0..=(4 * bs),
    ];
    model_ops::op_strategy(len, 12, 1)
}

fn scenario() -> impl Strategy<Value = (u32, u32, Vec<Op>)> {
    (4u32..=16, prop_oneof![Just(64u32), Just(128), Just(256)]).prop_flat_map(|(n, bs)| {
        (
            Just(n),
            Just(bs),
            proptest::collection::vec(op_strategy(bs as usize), 1..60),
        )
    })
}

fn check(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    let live = model.live();
    let got: Vec<_> = store
        .iter()
        .collect::<Result<_, _>>()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(got.len(), live.len(), "record count");
    for (g, m) in got.iter().zip(&live) {
        prop_assert_eq!(g.timestamp(), m.ts);
        prop_assert_eq!(&g.data, &m.data, "payload of {}", m.ts);
    }
    model_ops::check_lookups(store, model.all())?;
    let newest: Vec<i64> = store
        .newest(3)
        .unwrap()
        .iter()
        .map(|r| r.timestamp())
        .collect();
    let want: Vec<i64> = live.iter().rev().take(3).map(|o| o.ts).collect();
    prop_assert_eq!(newest, want);
    let oldest: Vec<i64> = store
        .oldest(3)
        .unwrap()
        .iter()
        .map(|r| r.timestamp())
        .collect();
    let want: Vec<i64> = live.iter().take(3).map(|o| o.ts).collect();
    prop_assert_eq!(oldest, want);
    let stats = store.stats();
    let blocks: usize = model.blocks.iter().map(|b| b.span).sum();
    prop_assert_eq!(stats.active_blocks as usize, blocks);
    if let Some(c) = stats.object_count {
        prop_assert_eq!(c as usize, live.len());
    }
    Ok(())
}

fn run(n: u32, bs: u32, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        num_blocks: n,
        data_block_size: bs,
        index_block_size: 64,
        data_type: DataType::Binary,
        encoding: tsstore::Encoding::Raw,
    };
    // Process crashes keep the page cache: no fsync needed, and none wanted
    // in thousands of cases.
    let mut store = Store::create_with(dir.path(), "m", config, SyncPolicy::Never).unwrap();
    let mut model = Model {
        n: n as usize,
        bs: bs as usize,
        blocks: VecDeque::new(),
        newest: 0,
    };
    for op in ops {
        let max_len = model.max_len();
        if model_ops::insert(&store, &mut model, &op, payload, max_len)? {
            check(&store, &model)?;
            continue;
        }
        match op {
            Op::Delete { pick } => {
                let live: Vec<i64> = model.live().iter().map(|o| o.ts).collect();
                if live.is_empty() {
                    prop_assert!(matches!(store.delete_by_time(1), Err(Error::NotFound(1))));
                } else {
                    let ts = live[pick % live.len()];
                    store.delete_by_time(ts).unwrap();
                    for b in model.blocks.iter_mut() {
                        for o in b.objs.iter_mut().filter(|o| o.ts == ts) {
                            o.deleted = true;
                        }
                    }
                    prop_assert!(matches!(store.delete_by_time(ts), Err(Error::NotFound(_))));
                }
            }
            Op::Frame => store.frame_staged().unwrap(),
            // Inserts ran above.
            Op::Put { .. }
            | Op::PutNow { .. }
            | Op::PutMany { .. }
            | Op::PutStale { .. }
            | Op::PutTooLarge => {}
            Op::Reset => {
                store.reset().unwrap();
                model.blocks.clear();
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
                prop_assert_eq!(store.stats().corruption_skips, 0);
            }
            Op::Range { a, b } => {
                let bounds: Vec<i64> = model.all().iter().map(|o| o.ts).collect();
                let live: Vec<i64> = model.live().iter().map(|o| o.ts).collect();
                model_ops::check_range(&store, &bounds, &live, a, b)?;
            }
        }
        check(&store, &model)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_matches_model((n, bs, ops) in scenario()) {
        run(n, bs, ops)?;
    }
}
