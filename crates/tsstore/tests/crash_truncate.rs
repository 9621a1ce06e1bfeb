//! Power cuts during `truncate_after` on the simulated disk: the process
//! dies at every write and sync of the truncate in turn, a power cut then
//! keeps an arbitrary subset of the unsynced writes (one maybe torn), and
//! the reopened store must hold exactly the records before the truncate or
//! exactly those after it, take inserts after its newest record, and keep
//! them over another reopen without a removed record coming back.
//!
//! More seeds per cut: `TRUNCATE_CRASH_SEEDS=50 cargo test -p tsstore
//! --test crash_truncate`.

mod common;

use std::sync::Arc;

use tsstore::sim::{SimFile, WriteBudget};
use tsstore::{Config, Store, StoreFiles, SyncPolicy};

fn config(compressed: bool) -> Config {
    common::crash_config(compressed, (12, 128), (24, 256))
}

fn files(compressed: bool, budget: &WriteBudget) -> (StoreFiles, Vec<Arc<SimFile>>) {
    common::sim_store_files(&config(compressed), budget)
}

fn payload(ts: i64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (ts as usize * 29 + i * 3) as u8).collect()
}

fn all(s: &Store) -> Vec<(i64, Vec<u8>)> {
    s.iter()
        .map(|r| r.map(|r| (r.timestamp(), r.data)))
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The store the truncate runs on: `count` records (every fifth one
/// large enough to span blocks), a few deleted, all synced; `frame`
/// frames a compressed store's staged records first.
fn fill(s: &Store, count: i64, frame: bool) {
    for ts in 1..=count {
        let len = if ts % 5 == 0 {
            150
        } else {
            12 + (ts as usize % 9)
        };
        s.put(ts * 10, &payload(ts, len)).unwrap();
        if frame && ts == count / 2 {
            s.frame_staged().unwrap();
        }
    }
    let second = s.iter().nth(1).unwrap().unwrap().timestamp();
    s.delete_by_time(second).unwrap();
    s.delete_by_time(count * 10 - 20).unwrap();
    s.sync().unwrap();
}

/// Crashes a truncate after `cut` at write `crash_at`; false once the
/// truncate ran to its end without meeting the crash.
fn run(compressed: bool, count: i64, frame: bool, cut: i64, crash_at: i64, seed: u64) -> bool {
    let budget = WriteBudget::unlimited();
    let (f, sims) = files(compressed, &budget);
    let s = Store::create_on("c", f.clone(), config(compressed), SyncPolicy::Never).unwrap();
    fill(&s, count, frame);
    s.settle();
    let before = all(&s);
    let after: Vec<_> = before.iter().filter(|(t, _)| *t <= cut).cloned().collect();
    budget.set(crash_at);
    let finished = s.truncate_after(cut).is_ok();
    let spent = finished && {
        // The budget must not have run out exactly at the end.
        budget.set(i64::MAX);
        true
    };
    s.abandon();
    for (i, sim) in sims.iter().enumerate() {
        sim.crash(seed.wrapping_add(i as u64 * 0x9E37_79B9));
    }
    budget.set(i64::MAX);
    let what = format!("compressed {compressed}, cut {cut}, crash at {crash_at}, seed {seed}");
    let s = Store::open_on("c", f.clone(), SyncPolicy::Never)
        .unwrap_or_else(|e| panic!("{what}: open: {e}"));
    let got = all(&s);
    assert!(
        got == before || got == after,
        "{what}: neither before nor after:\n got {:?}\n before {:?}",
        got.iter().map(|r| r.0).collect::<Vec<_>>(),
        before.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    if finished {
        assert_eq!(got, after, "{what}: a finished truncate was undone");
    }
    // Inserts after the newest record go in and stay, and nothing removed
    // comes back with them (nor after another power cut).
    let newest = s.stats().newest_timestamp.unwrap_or(0);
    let mut expect = got.clone();
    for k in 1..=6 {
        let ts = newest + k;
        let p = payload(ts, if k == 3 { 150 } else { 20 });
        s.put(ts, &p)
            .unwrap_or_else(|e| panic!("{what}: put after: {e}"));
        expect.push((ts, p));
    }
    s.sync().unwrap();
    s.abandon();
    for (i, sim) in sims.iter().enumerate() {
        sim.crash(seed.wrapping_mul(31).wrapping_add(i as u64));
    }
    let s = Store::open_on("c", f, SyncPolicy::Never).unwrap();
    let again = all(&s);
    assert!(
        expect.ends_with(&again) && again.len() >= 6,
        "{what}: after inserts: {:?}",
        again.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    !spent
}

fn seeds() -> u64 {
    std::env::var("TRUNCATE_CRASH_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn every_crash_point(compressed: bool, count: i64, frame: bool, cut: i64) {
    for crash_at in 0.. {
        let mut more = false;
        for seed in 0..seeds() {
            more |= run(compressed, count, frame, cut, crash_at, seed * 7919 + 1);
        }
        if !more {
            break;
        }
        assert!(crash_at < 10_000, "the truncate never ends");
    }
}

#[test]
fn raw_power_cut_at_every_step() {
    // 30 records wrap the 12-block ring; cuts inside a packed block,
    // before a spanning object, and before everything left.
    for cut in [285, 255, 249, 0] {
        every_crash_point(false, 30, false, cut);
    }
    for cut in [75, 48] {
        every_crash_point(false, 9, false, cut);
    }
}

#[test]
fn compressed_power_cut_at_every_step() {
    // Inside the framed records, inside the staged ones, everything.
    for cut in [100, 275, 0] {
        every_crash_point(true, 40, true, cut);
    }
}
