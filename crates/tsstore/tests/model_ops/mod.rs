//! What the two model tests share (`model.rs`: the raw ring against a
//! model of its blocks; `model_compressed.rs`: compressed stores against
//! the list of records): the operations, their generator, and the inserts,
//! which both models check the same way.
#![allow(dead_code)]

use proptest::prelude::*;
use tsstore::{Error, Store};

/// A record as a model keeps it.
#[derive(Debug, Clone)]
pub struct Obj {
    pub ts: i64,
    pub data: Vec<u8>,
    pub deleted: bool,
}

/// Every record of `objs` is found by time (and by its handle) unless it
/// was deleted, and a deleted one is not.
pub fn check_lookups<'a>(
    store: &Store,
    objs: impl IntoIterator<Item = &'a Obj>,
) -> Result<(), TestCaseError> {
    for o in objs {
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
    Ok(())
}

#[derive(Debug, Clone)]
pub enum Op {
    Put {
        delta: i64,
        len: usize,
    },
    PutNow {
        len: usize,
    },
    PutMany {
        items: Vec<(bool, i64, usize)>,
    },
    PutStale {
        back: i64,
    },
    PutTooLarge,
    Delete {
        pick: usize,
    },
    /// `Store::frame_staged` (nothing to do in a raw store).
    Frame,
    Reset,
    Reopen,
    CrashReopen,
    Range {
        a: usize,
        b: usize,
    },
}

/// Operations with payload lengths from `len`; `batch` items at most per
/// `put_many`, `frame` the weight of `Frame`.
pub fn op_strategy(
    len: impl Strategy<Value = usize> + Clone + 'static,
    batch: usize,
    frame: u32,
) -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (1..1000i64, len.clone()).prop_map(|(delta, len)| Op::Put { delta, len }),
        4 => len.clone().prop_map(|len| Op::PutNow { len }),
        6 => proptest::collection::vec((any::<bool>(), 1..50i64, len), 1..batch)
            .prop_map(|items| Op::PutMany { items }),
        3 => (0..3i64).prop_map(|back| Op::PutStale { back }),
        1 => Just(Op::PutTooLarge),
        5 => any::<usize>().prop_map(|pick| Op::Delete { pick }),
        frame => Just(Op::Frame),
        1 => Just(Op::Reset),
        3 => Just(Op::Reopen),
        3 => Just(Op::CrashReopen),
        5 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Range { a, b }),
    ]
}

/// What the inserts need of a model.
pub trait Model {
    /// The newest timestamp inserted (0: none).
    fn newest(&self) -> i64;
    /// Notes an acknowledged insert.
    fn put(&mut self, ts: i64, data: Vec<u8>);
}

/// Runs an insert operation against `store` and `model` and checks what
/// the store answered: accepted with the right handle, or refused for
/// the right reason. `payload(ts, len)` makes a payload of about `len`
/// bytes valid for the store; `max_len` is the largest the store takes.
/// Returns false for an operation that is not an insert.
pub fn insert(
    store: &Store,
    model: &mut impl Model,
    op: &Op,
    payload: impl Fn(i64, usize) -> Vec<u8>,
    max_len: usize,
) -> Result<bool, TestCaseError> {
    match op {
        Op::Put { delta, len } => {
            let ts = model.newest() + delta;
            let data = payload(ts, *len);
            let res = store.put(ts, &data);
            if data.len() > max_len {
                prop_assert!(matches!(res, Err(Error::TooLarge { .. })), "{res:?}");
            } else {
                let h = res.map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(h.timestamp, ts);
                prop_assert_eq!(h.size as usize, data.len());
                model.put(ts, data);
            }
        }
        Op::PutNow { len } => {
            let data = payload(model.newest(), *len);
            if data.len() <= max_len {
                let h = store
                    .put_now(&data)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(h.timestamp > model.newest());
                model.put(h.timestamp, data);
            }
        }
        Op::PutMany { items } => {
            let mut prev = model.newest();
            let mut batch = Vec::new();
            for (given, delta, len) in items {
                let ts = given.then_some(prev + delta);
                // An assigned timestamp is `now` or later; a given one after
                // it must clear it, so plan those well ahead of the clock.
                prev = ts.unwrap_or_else(|| tsstore::now_ns().max(prev) + 1_000_000_000_000);
                batch.push((ts, payload(prev, (*len).min(max_len))));
            }
            let handles = store
                .put_many(batch.iter().map(|(t, d)| (*t, d.as_slice())))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(handles.len(), batch.len());
            let mut last = model.newest();
            for (h, (t, d)) in handles.iter().zip(batch) {
                prop_assert!(h.timestamp > last);
                if let Some(t) = t {
                    prop_assert_eq!(h.timestamp, t);
                }
                last = h.timestamp;
                // The payload was made for the planned timestamp; keep it.
                model.put(h.timestamp, d);
            }
        }
        Op::PutStale { back } => {
            let res = store.put(model.newest() - back, b"{}");
            prop_assert!(
                matches!(
                    res,
                    Err(Error::TimestampOutOfOrder { .. }) | Err(Error::InvalidTimestamp(_))
                ),
                "{res:?}"
            );
        }
        Op::PutTooLarge => {
            // A JSON string: a valid payload for every data type but schema.
            let mut big = vec![b'x'; max_len + 1];
            big[0] = b'"';
            big[max_len] = b'"';
            let res = store.put(model.newest() + 1, &big);
            prop_assert!(matches!(res, Err(Error::TooLarge { .. })), "{res:?}");
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The `Range` operation: bounds picked among `bounds` (shifted off exact
/// timestamps now and then); `range`, `iter_range_rev` and `after` must
/// give exactly the timestamps of `live` inside them.
pub fn check_range(
    store: &Store,
    bounds: &[i64],
    live: &[i64],
    a: usize,
    b: usize,
) -> Result<(), TestCaseError> {
    if bounds.is_empty() {
        return Ok(());
    }
    let (mut lo, mut hi) = (bounds[a % bounds.len()], bounds[b % bounds.len()]);
    if lo > hi {
        std::mem::swap(&mut lo, &mut hi);
    }
    let lo = lo - (a % 2) as i64;
    let hi = hi + (b % 2) as i64;
    let stamps = |records: Vec<tsstore::Record>| -> Vec<i64> {
        records.iter().map(|r| r.timestamp()).collect()
    };
    let fail = |e: Error| TestCaseError::fail(e.to_string());
    let want: Vec<i64> = live
        .iter()
        .copied()
        .filter(|t| (lo..=hi).contains(t))
        .collect();
    prop_assert_eq!(&stamps(store.range(lo, hi, None).map_err(fail)?), &want);
    let rev = store
        .iter_range_rev(lo, hi)
        .collect::<tsstore::Result<Vec<_>>>()
        .map_err(fail)?;
    prop_assert!(stamps(rev).into_iter().eq(want.iter().rev().copied()));
    let want_after: Vec<i64> = live.iter().copied().filter(|t| *t > lo).take(2).collect();
    prop_assert_eq!(stamps(store.after(lo, Some(2)).map_err(fail)?), want_after);
    Ok(())
}
