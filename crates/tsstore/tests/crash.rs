//! Power cuts on the simulated disk: random operations, a crash at a random
//! write (inside an operation or between two), then a power cut that keeps
//! an arbitrary subset of the unsynced writes and may tear one. After
//! reopening: open succeeds; every acknowledged-durable record the ring
//! still holds is there, byte for byte; nothing served was never written;
//! order is strict; under `always` what is served is a prefix of what was
//! written (no hole); new inserts are accepted.
//!
//! Both encodings: a compressed store's two rings (frames and staging)
//! live on the same simulated disk and lose their unsynced writes together.
//!
//! Long run: `PROPTEST_CASES=100000 cargo test -p tsstore --release --test crash`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use proptest::prelude::*;
use tsstore::sim::{SimFile, WriteBudget};
use tsstore::{Config, Store, StoreFiles, SyncPolicy};

const N: u32 = 12;
const BS: u32 = 128;
/// A compressed store: 8 staging blocks (2 KiB: records up to 512 bytes
/// are staged, larger ones framed at once) and 16 main blocks.
const N_COMPRESSED: u32 = 24;
const BS_COMPRESSED: u32 = 256;

#[derive(Debug, Clone)]
enum Op {
    Put(usize),
    PutMany(Vec<usize>),
    Delete(usize),
    Sync,
    /// Frames what is staged (`Store::frame_staged`).
    Frame,
    Reset,
}

fn payload(ts: i64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (ts as usize * 29 + i * 3) as u8).collect()
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let len = prop_oneof![4 => 0..60usize, 1 => 60..300usize];
    let op = prop_oneof![
        12 => len.clone().prop_map(Op::Put),
        3 => proptest::collection::vec(len, 1..6).prop_map(Op::PutMany),
        2 => any::<usize>().prop_map(Op::Delete),
        2 => Just(Op::Sync),
        1 => Just(Op::Frame),
        1 => Just(Op::Reset),
    ];
    proptest::collection::vec(op, 1..50)
}

fn config(compressed: bool) -> Config {
    common::crash_config(compressed, (N, BS), (N_COMPRESSED, BS_COMPRESSED))
}

/// A compressed store whose staging ring holds several frames' worth of
/// records that hardly compress (`noise`): a framing writes several
/// frames, each made durable either by an insert waiting for room in the
/// staging ring or by the framing itself.
fn wide_staging_config() -> Config {
    Config {
        num_blocks: 60,
        ..config(true)
    }
}

/// Bytes that zstd cannot shorten, different for each record.
fn noise(ts: i64, len: usize) -> Vec<u8> {
    let mut x = (ts as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Batches of records, and now and then everything staged framed at
/// once: framings decide when frames become durable.
fn batches(count: usize) -> Vec<Op> {
    (0..count)
        .map(|i| match i % 7 {
            6 => Op::Frame,
            _ => Op::PutMany(vec![205 + (i * 7) % 25; 4]),
        })
        .collect()
}

/// Every record `store` serves, in order.
fn served(store: &Store) -> tsstore::Result<Vec<(i64, Vec<u8>)>> {
    store
        .iter()
        .map(|r| r.map(|r| (r.timestamp(), r.data)))
        .collect()
}

/// A store of `wide_staging_config` under `always` holding six records
/// that fill most of a block each, staged and not yet framed (less than
/// half the staging ring: the framer is not woken).
struct SixStaged {
    store: Store,
    files: StoreFiles,
    /// The simulated disks, the main ring's first: meta, data, index.
    sims: Vec<Arc<SimFile>>,
    records: Vec<(i64, Vec<u8>)>,
}

fn six_staged() -> SixStaged {
    let budget = WriteBudget::unlimited();
    let cfg = wide_staging_config();
    let (files, sims) = common::sim_store_files(&cfg, &budget);
    let store = Store::create_on("c", files.clone(), cfg, SyncPolicy::Always).unwrap();
    let records: Vec<(i64, Vec<u8>)> = (1..=6).map(|ts| (ts, noise(ts, 200))).collect();
    store
        .put_many(records.iter().map(|(t, p)| (Some(*t), p.as_slice())))
        .unwrap();
    assert!(store.stats().compression.is_none(), "nothing framed yet");
    SixStaged {
        store,
        files,
        sims,
        records,
    }
}

/// What a power cut at write `crash_at` of `ops` on a store of `cfg` may
/// leave, checked as the module says; with `again`, the recovered store
/// is then written on and the process dies (`write_on_and_die`).
fn run(
    always: bool,
    cfg: Config,
    payload: fn(i64, usize) -> Vec<u8>,
    ops: Vec<Op>,
    (crash_at, seed): (i64, u64),
    again: bool,
) -> Result<(), TestCaseError> {
    let policy = if always {
        SyncPolicy::Always
    } else {
        SyncPolicy::Never
    };
    let budget = WriteBudget::unlimited();
    let (f, sims) = common::sim_store_files(&cfg, &budget);
    let store = Store::create_on("c", f.clone(), cfg, policy).unwrap();
    budget.set(crash_at);

    // ts -> payload of everything attempted; durable: acknowledged as durable.
    let mut written: HashMap<i64, Vec<u8>> = HashMap::new();
    let mut durable: Vec<i64> = Vec::new();
    let mut unsynced: Vec<i64> = Vec::new();
    let mut deleted: Vec<i64> = Vec::new();
    let mut next = 1i64;
    let mut crashed_inside = false;
    for op in ops {
        let res = match op {
            Op::Put(len) => {
                let ts = next;
                next += 1;
                written.insert(ts, payload(ts, len));
                store.put(ts, &payload(ts, len)).map(|_| vec![ts])
            }
            Op::PutMany(lens) => {
                let batch: Vec<(i64, Vec<u8>)> = lens
                    .iter()
                    .map(|&len| {
                        let ts = next;
                        next += 1;
                        (ts, payload(ts, len))
                    })
                    .collect();
                for (ts, p) in &batch {
                    written.insert(*ts, p.clone());
                }
                store
                    .put_many(batch.iter().map(|(t, p)| (Some(*t), p.as_slice())))
                    .map(|_| batch.iter().map(|(t, _)| *t).collect())
            }
            Op::Delete(pick) => {
                let live: Vec<i64> = store
                    .iter()
                    .filter_map(Result::ok)
                    .map(|r| r.timestamp())
                    .collect();
                if live.is_empty() {
                    Ok(vec![])
                } else {
                    let ts = live[pick % live.len()];
                    // Even a delete that fails may have reached the disk.
                    deleted.push(ts);
                    store.delete_by_time(ts).map(|_| vec![])
                }
            }
            Op::Sync => store.sync().map(|_| {
                durable.append(&mut unsynced);
                vec![]
            }),
            Op::Frame => store.frame_staged().map(|_| vec![]),
            Op::Reset => store.reset().map(|_| {
                durable.clear();
                unsynced.clear();
                written.clear();
                vec![]
            }),
        };
        match res {
            Ok(ts) if always => durable.extend(ts),
            Ok(ts) => unsynced.extend(ts),
            Err(_) => {
                crashed_inside = true;
                break;
            }
        }
    }
    // What the ring still held when the process died: older records were
    // already given up for newer writes, which a power cut may half undo.
    // (A compressed store's framer may still be dropping old frames.)
    store.settle();
    let retained_from = store.stats().oldest_timestamp.unwrap_or(i64::MAX);
    store.abandon();
    for (i, sim) in sims.iter().enumerate() {
        sim.crash(seed.wrapping_add(i as u64 * 0x9E37_79B9));
    }
    budget.set(i64::MAX);

    let store = Store::open_on("c", f.clone(), SyncPolicy::Never)
        .map_err(|e| TestCaseError::fail(format!("open after crash: {e}")))?;
    let recs: Vec<_> = store
        .iter()
        .collect::<Result<_, _>>()
        .map_err(|e| TestCaseError::fail(format!("read: {e}")))?;
    let mut prev = 0;
    for r in &recs {
        let ts = r.timestamp();
        prop_assert!(ts > prev, "order broken at {}", ts);
        prev = ts;
        prop_assert_eq!(
            written.get(&ts),
            Some(&r.data),
            "record {} was never written so",
            ts
        );
    }
    let present: std::collections::HashSet<i64> = recs.iter().map(|r| r.timestamp()).collect();
    for ts in durable
        .iter()
        .filter(|t| **t >= retained_from && !deleted.contains(t))
    {
        prop_assert!(
            present.contains(ts),
            "durable record {} lost (ring held from {}; crash inside an op: {})",
            ts,
            retained_from,
            crashed_inside
        );
    }
    // Under `always`, what survives is a prefix of what was written, never
    // a log with a hole: between the oldest and the newest record served,
    // every record written is there (unless deleted, or given up for the
    // ring's space). Only the last batch was in flight, and a block that
    // survived without the tail of the one before is not accepted. (Under
    // `never` nothing orders the writes: the kernel writes pages back as
    // it likes.)
    if always && let (Some(first), Some(last)) = (recs.first(), recs.last()) {
        let from = first.timestamp().max(retained_from);
        for ts in written
            .keys()
            .filter(|&&t| t >= from && t <= last.timestamp())
        {
            prop_assert!(
                present.contains(ts) || deleted.contains(ts),
                "record {} missing between {} and {}: a hole in the log",
                ts,
                from,
                last.timestamp()
            );
        }
    }
    if again {
        let survivors = recs.into_iter().map(|r| (r.timestamp(), r.data)).collect();
        return write_on_and_die(f, store, payload, survivors, next);
    }
    let after = store.put(next + 1_000, b"after");
    prop_assert!(
        after.is_ok(),
        "store refuses inserts after recovery: {:?} stats {:?}",
        after,
        store.stats()
    );
    Ok(())
}

/// A store just recovered from a power cut, holding `survivors`, takes
/// more batches and frames them (the records after the newest frame kept
/// are framed again, in the place of frames the cut lost), then the
/// process dies. Reopened, it must serve every survivor and every new
/// record it still holds, in order, once each.
fn write_on_and_die(
    files: StoreFiles,
    store: Store,
    payload: fn(i64, usize) -> Vec<u8>,
    survivors: Vec<(i64, Vec<u8>)>,
    next: i64,
) -> Result<(), TestCaseError> {
    let fail = |what: &str, e: tsstore::Error| TestCaseError::fail(format!("{what}: {e}"));
    let mut expected: BTreeMap<i64, Vec<u8>> = survivors.into_iter().collect();
    let mut ts = next + 1_000;
    // Dying soon after the first frames matters most: a block a frame
    // written again is followed by has not been overwritten yet.
    for i in 0..1 + (next as usize % 12) {
        let batch: Vec<(i64, Vec<u8>)> = (0..6)
            .map(|_| {
                ts += 1;
                (ts, payload(ts, 40 + i * 7))
            })
            .collect();
        store
            .put_many(batch.iter().map(|(t, p)| (Some(*t), p.as_slice())))
            .map_err(|e| fail("insert after recovery", e))?;
        expected.extend(batch);
        if i % 4 == 0 {
            store
                .frame_staged()
                .map_err(|e| fail("framing after recovery", e))?;
        }
    }
    store.settle();
    let retained_from = store.stats().oldest_timestamp.unwrap_or(i64::MAX);
    store.abandon();
    let store = Store::open_on("c", files, SyncPolicy::Never).map_err(|e| fail("open again", e))?;
    let served = served(&store).map_err(|e| fail("read again", e))?;
    let kept: Vec<(i64, Vec<u8>)> = expected
        .into_iter()
        .filter(|(t, _)| *t >= retained_from)
        .collect();
    prop_assert!(
        served == kept,
        "after the second open: served {} records, {:?} .. {:?}; expected {}, {:?} .. {:?}",
        served.len(),
        served.first().map(|r| r.0),
        served.last().map(|r| r.0),
        kept.len(),
        kept.first().map(|r| r.0),
        kept.last().map(|r| r.0)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn power_cuts_lose_nothing_durable_and_serve_nothing_false(
        always in any::<bool>(),
        ops in ops(),
        crash_at in 0..400i64,
        seed in any::<u64>(),
    ) {
        run(always, config(false), payload, ops, (crash_at, seed), false)?;
    }

    #[test]
    fn compressed_stores_survive_power_cuts_too(
        always in any::<bool>(),
        ops in ops(),
        crash_at in 0..400i64,
        seed in any::<u64>(),
    ) {
        run(always, config(true), payload, ops, (crash_at, seed), false)?;
    }
}

proptest! {
    // Each case writes about ten times as much as the cases above.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(600),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn frames_sharing_a_sync_survive_power_cuts(
        always in any::<bool>(),
        crash_at in 0..1500i64,
        seed in any::<u64>(),
    ) {
        run(always, wide_staging_config(), if seed % 2 == 0 { noise } else { payload }, batches(60), (crash_at, seed), true)?;
    }
}

/// The case `frames_sharing_a_sync_survive_power_cuts` is there for:
/// frames that each start a block share one `fdatasync` of the main
/// ring's data file.
#[test]
fn frames_share_a_sync() {
    let SixStaged {
        store,
        sims,
        records,
        ..
    } = six_staged();
    let (data, before) = (&sims[1], sims[1].syncs());
    store.frame_staged().unwrap();
    let frames = store.stats().compression.expect("frames written").frames;
    assert!(frames >= 3, "{frames} frames");
    assert_eq!(data.syncs() - before, 1, "{frames} frames, one sync");
    assert_eq!(served(&store).unwrap(), records);
}

/// A power cut that keeps a frame after a lost one leaves a block that
/// could pass for the successor of the frame written again in the lost
/// one's place (it starts at the same record, so its block header's link
/// matches): open wipes such blocks before anything is written, and the
/// records are framed again from their staged copies.
#[test]
fn open_wipes_frames_kept_after_a_lost_one() {
    use tsstore::StoreFile;
    use tsstore::layout::{BLOCK_HEADER_SIZE, BlockHeader};

    let SixStaged {
        store,
        files: f,
        sims,
        records,
    } = six_staged();
    let bs = wide_staging_config().data_block_size as usize;
    store.frame_staged().unwrap();
    // Gone without a checkpoint of the main ring: open walks its frames.
    store.abandon();
    let data = &sims[1];
    let header = |block: usize| {
        let mut h = [0u8; BLOCK_HEADER_SIZE];
        data.read_exact_at(&mut h, (block * bs) as u64).unwrap();
        BlockHeader::decode(&h)
    };
    let blocks = data.size().unwrap() as usize / bs;
    let framed: Vec<usize> = (0..blocks)
        .filter(|&b| header(b).starts_objects())
        .collect();
    assert!(framed.len() >= 3, "frames in blocks {framed:?}");
    // The cut: the second frame's block lost, those after it kept.
    data.write_all_at(&vec![0; bs], (framed[1] * bs) as u64)
        .unwrap();
    data.sync_data().unwrap();

    let store = Store::open_on("c", f.clone(), SyncPolicy::Always).unwrap();
    for &b in &framed[2..] {
        assert!(
            !header(b).starts_objects(),
            "block {b}, kept after the lost one, still starts objects"
        );
    }
    assert_eq!(served(&store).unwrap(), records);
    store.frame_staged().unwrap();
    store.abandon();
    let store = Store::open_on("c", f, SyncPolicy::Always).unwrap();
    assert_eq!(served(&store).unwrap(), records);
}
