//! Rollups against the windowed aggregation they must equal: on generated
//! data with gaps and wraps, after a kill, after raw lost its tail (what
//! a power cut can leave), and across a year in a ring that wrapped many
//! times.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tsstore::aggregate::{AggFn, AggSpec, Window, aggregate};
use tsstore::sim::{SimFile, WriteBudget};
use tsstore::{
    Config, DataType, Encoding, Keep, RollupConfig, RollupFiles, RollupRing, Store, StoreFiles,
    SyncPolicy,
};

const MINUTE: i64 = 60_000_000_000;
const HOUR: i64 = 60 * MINUTE;

fn config(num_blocks: u32, encoding: Encoding) -> Config {
    Config {
        num_blocks,
        data_block_size: 4096,
        index_block_size: 4096,
        data_type: DataType::Json,
        encoding,
    }
}

fn rollup(window_ns: i64, functions: &[AggFn]) -> RollupConfig {
    RollupConfig {
        window_ns,
        functions: functions.to_vec(),
        keep: Keep::Blocks(64),
    }
}

fn spec_of(r: &RollupConfig) -> AggSpec {
    let functions = if r.functions.is_empty() {
        tsstore::DEFAULT_ROLLUP_FUNCTIONS.to_vec()
    } else {
        r.functions.clone()
    };
    AggSpec::with_default(r.window_ns, functions)
}

/// What a windowed query over every record written gives.
fn expected(r: &RollupConfig, written: &[(i64, Vec<u8>)]) -> Vec<Window> {
    let newest = written.last().map_or(i64::MIN, |w| w.0);
    aggregate(
        &spec_of(r),
        written.iter().map(|(t, d)| (*t, &d[..])),
        (i64::MIN, newest),
    )
}

fn payload(value: i64, kind: u8) -> Vec<u8> {
    match kind % 5 {
        0 => format!(r#"{{"t":{value},"h":{}}}"#, value % 7).into_bytes(),
        1 => format!(r#"{{"t":{}.25,"s":"v{value}"}}"#, value / 3).into_bytes(),
        2 => format!(r#"{{"h":{},"t":-{value}}}"#, value % 11).into_bytes(),
        3 => br#"{"s":"text only"}"#.to_vec(),
        _ => format!("[{value}]").into_bytes(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Every function, gaps of many windows, a raw ring that wraps: the
    /// rollup gives what the windowed aggregation gives.
    #[test]
    fn rollups_equal_the_windowed_aggregation(
        batches in prop::collection::vec(
            prop::collection::vec((1i64..40 * MINUTE, any::<i64>(), any::<u8>()), 1..60),
            1..25,
        ),
        compressed in any::<bool>(),
        gaps in prop::collection::vec(0i64..50 * HOUR, 25),
        objects_only in any::<u32>(),
        rounds in any::<u32>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (blocks, encoding) = if compressed { (24, Encoding::Compressed) } else { (8, Encoding::Raw) };
        let store = Store::create(dir.path(), "s", config(blocks, encoding)).unwrap();
        let rollups = [
            rollup(10 * MINUTE, &AggFn::ALL),
            rollup(HOUR, &[]),
            rollup(24 * HOUR, &[AggFn::Sum, AggFn::Last]),
        ];
        for r in &rollups {
            store.add_rollup(r).unwrap();
        }
        let mut written: Vec<(i64, Vec<u8>)> = Vec::new();
        let mut ts = 1_700_000_000_000_000_000i64;
        for (i, (batch, gap)) in batches.iter().zip(&gaps).enumerate() {
            ts += gap;
            // A batch of objects only is handed to the job parsed; one
            // with an array in it is read back from raw.
            let batch: Vec<_> = match objects_only & (1 << i) != 0 {
                true => batch.iter().map(|&(step, v, kind)| (step, v, kind % 4)).collect(),
                false => batch.clone(),
            };
            put_batch(&store, &mut ts, &batch, &mut written);
            // Rounds over several batches, handed or not.
            if rounds & (1 << i) != 0 {
                store.catch_up_rollups().unwrap();
            }
        }
        store.catch_up_rollups().unwrap();
        for r in &rollups {
            let got = all_windows(&store, r.window_ns);
            prop_assert_eq!(&got, &expected(r, &written));
            let info = store.rollups().into_iter().find(|i| i.window_ns == r.window_ns).unwrap();
            prop_assert_eq!(info.error, None);
        }
        store.close().unwrap();
    }
}

fn write_minutes(store: &Store, from: i64, minutes: i64, written: &mut Vec<(i64, Vec<u8>)>) {
    let items: Vec<(Option<i64>, Vec<u8>)> = (0..minutes)
        .map(|m| {
            let t = from + m * MINUTE + 7;
            (Some(t), payload(t / MINUTE, (m % 3) as u8))
        })
        .collect();
    store
        .put_many(items.iter().map(|(t, p)| (*t, &p[..])))
        .unwrap();
    written.extend(items.into_iter().map(|(t, p)| (t.unwrap(), p)));
}

/// Every window of the rollup of `window_ns`, oldest first.
fn all_windows(store: &Store, window_ns: i64) -> Vec<Window> {
    store
        .rollup_windows(window_ns, i64::MIN, i64::MAX, usize::MAX)
        .unwrap()
}

/// The timestamps of the rows in the rollup ring `label` of store `s`.
fn row_stamps(dir: &Path, label: &str) -> Vec<i64> {
    rows(dir, label).iter().map(|r| r.timestamp()).collect()
}

/// Writes `batch` (steps, values, kinds) after `ts`, as one insert.
fn put_batch(
    store: &Store,
    ts: &mut i64,
    batch: &[(i64, i64, u8)],
    written: &mut Vec<(i64, Vec<u8>)>,
) {
    let items: Vec<(Option<i64>, Vec<u8>)> = batch
        .iter()
        .map(|&(step, value, kind)| {
            *ts += step;
            (Some(*ts), payload(value.rem_euclid(1_000_000), kind))
        })
        .collect();
    store
        .put_many(items.iter().map(|(t, p)| (*t, &p[..])))
        .unwrap();
    written.extend(items.into_iter().map(|(t, p)| (t.unwrap(), p)));
}

fn rows(dir: &Path, label: &str) -> Vec<tsstore::Record> {
    let ring = Store::open_read_only(dir.join("s").join(tsstore::ROLLUPS_DIR), label).unwrap();
    ring.range(i64::MIN, i64::MAX, None).unwrap()
}

#[test]
fn a_killed_store_writes_the_windows_it_missed_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path(), "s", config(64, Encoding::Raw)).unwrap();
    let hourly = rollup(HOUR, &[]);
    store.add_rollup(&hourly).unwrap();
    let mut written = Vec::new();
    write_minutes(&store, 100 * HOUR, 300, &mut written);
    store.catch_up_rollups().unwrap();
    // More windows close, and the process dies before (or while) the
    // job writes them.
    write_minutes(&store, 105 * HOUR, 200, &mut written);
    store.abandon();
    let store = Store::open(dir.path(), "s").unwrap();
    store.catch_up_rollups().unwrap();
    let got = all_windows(&store, HOUR);
    assert_eq!(got, expected(&hourly, &written));
    store.close().unwrap();
    // The ring itself: every closed hour once, in order.
    let stamps = row_stamps(dir.path(), "1h");
    let hours: Vec<i64> = (101..=108).map(|h| h * HOUR).collect();
    assert_eq!(stamps, hours);
}

/// Records an insert handed to the rollups' job, then truncated away
/// before the job took them, never reach a rollup: the truncate ends
/// their epoch, and the job reads raw as it is.
#[test]
fn a_truncate_drops_what_inserts_handed_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path(), "s", config(64, Encoding::Raw)).unwrap();
    let hourly = rollup(HOUR, &AggFn::ALL);
    store.add_rollup(&hourly).unwrap();
    let mut written = Vec::new();
    write_minutes(&store, 10 * HOUR, 1, &mut written);
    store.catch_up_rollups().unwrap();
    // Within the open hour and far below an eighth of raw: this batch
    // wakes no job, and waits in the handoff.
    write_minutes(&store, 10 * HOUR + MINUTE, 40, &mut written);
    let cut = 10 * HOUR + 20 * MINUTE;
    store.truncate_after(cut).unwrap();
    written.retain(|(t, _)| *t <= cut);
    // Later records, some stamped before the truncated ones were.
    write_minutes(&store, 10 * HOUR + 30 * MINUTE, 50, &mut written);
    store.catch_up_rollups().unwrap();
    assert_eq!(all_windows(&store, HOUR), expected(&hourly, &written));
    store.close().unwrap();
}

#[test]
fn rows_raw_no_longer_has_are_cut_and_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path(), "s", config(64, Encoding::Raw)).unwrap();
    let hourly = rollup(HOUR, &[AggFn::Sum, AggFn::Count]);
    store.add_rollup(&hourly).unwrap();
    let mut written = Vec::new();
    write_minutes(&store, 10 * HOUR, 6 * 60, &mut written);
    store.catch_up_rollups().unwrap();
    store.close().unwrap();
    // A power cut under `interval` can lose raw's tail while the rollup
    // ring kept rows made from it: keep the rows aside, cut raw, put them
    // back.
    let rollups = dir.path().join("s").join(tsstore::ROLLUPS_DIR);
    let aside = dir.path().join("aside");
    common::copy_dir(&rollups, &aside);
    let cut = 12 * HOUR + 30 * MINUTE;
    let store = Store::open(dir.path(), "s").unwrap();
    store.truncate_after(cut).unwrap();
    store.close().unwrap();
    std::fs::remove_dir_all(&rollups).unwrap();
    common::copy_dir(&aside, &rollups);
    assert_eq!(rows(dir.path(), "1h").len(), 5, "rows up to 15:00 are back");

    written.retain(|(t, _)| *t <= cut);
    // A read-only open cannot cut them, and reads past them.
    let snapshot = Store::open_read_only(dir.path(), "s").unwrap();
    assert_eq!(all_windows(&snapshot, HOUR), expected(&hourly, &written));
    assert_eq!(snapshot.rollups()[0].written_to, Some(12 * HOUR));
    drop(snapshot);
    let store = Store::open(dir.path(), "s").unwrap();
    let got = all_windows(&store, HOUR);
    assert_eq!(got, expected(&hourly, &written));
    // New records close 12:00 again, from raw as it is now.
    write_minutes(&store, 13 * HOUR, 90, &mut written);
    store.catch_up_rollups().unwrap();
    let got = all_windows(&store, HOUR);
    assert_eq!(got, expected(&hourly, &written));
    store.close().unwrap();
    let stamps = row_stamps(dir.path(), "1h");
    assert_eq!(stamps, vec![11 * HOUR, 12 * HOUR, 13 * HOUR, 14 * HOUR]);
}

#[test]
fn a_year_of_hourly_averages_outlives_a_ring_that_wrapped_ten_times() {
    let dir = tempfile::tempdir().unwrap();
    // 64 blocks of 4 KiB hold about two weeks of these 5-minute readings.
    let store = Store::create(dir.path(), "s", config(64, Encoding::Raw)).unwrap();
    let hourly = RollupConfig {
        window_ns: HOUR,
        functions: vec![],
        keep: Keep::Span(366 * 24 * HOUR),
    };
    store.add_rollup(&hourly).unwrap();
    let start = 1_704_067_200_000_000_000i64; // 2024-01-01T00:00:00Z
    let mut written: Vec<(i64, Vec<u8>)> = Vec::new();
    for day in 0..365 {
        let items: Vec<(Option<i64>, Vec<u8>)> = (0..288)
            .map(|i| {
                let t = start + day * 24 * HOUR + i * 5 * MINUTE;
                let temp = 10.0 + (day as f64 / 30.0) + (i as f64 / 48.0);
                (
                    Some(t),
                    format!(r#"{{"temp":{temp:.2},"site":"a"}}"#).into_bytes(),
                )
            })
            .collect();
        store
            .put_many(items.iter().map(|(t, p)| (*t, &p[..])))
            .unwrap();
        written.extend(items.into_iter().map(|(t, p)| (t.unwrap(), p)));
        store.catch_up_rollups().unwrap();
    }
    let raw_oldest = store.stats().oldest_timestamp.unwrap();
    let wraps = (written.len() as i64 * 4 * HOUR) / (raw_oldest.max(1) - start).max(1);
    assert!(
        raw_oldest > start + 300 * 24 * HOUR,
        "raw kept only the last weeks (oldest {raw_oldest}, {wraps})"
    );
    let year = store
        .rollup_windows(HOUR, start, start + 365 * 24 * HOUR - 1, usize::MAX)
        .unwrap();
    assert_eq!(year.len(), 365 * 24);
    assert_eq!(year, expected(&hourly, &written));
    store.close().unwrap();
}

#[test]
fn the_background_job_writes_rows_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path(), "s", config(64, Encoding::Raw)).unwrap();
    let mut written = Vec::new();
    write_minutes(&store, 20 * HOUR, 120, &mut written);
    // Added to a store that already has records: they are rolled up too.
    store.add_rollup(&rollup(10 * MINUTE, &[])).unwrap();
    write_minutes(&store, 22 * HOUR, 61, &mut written);
    let deadline = Instant::now() + Duration::from_secs(20);
    let want = Some(23 * HOUR);
    while store.rollups()[0].written_to != want {
        assert!(Instant::now() < deadline, "{:?}", store.rollups());
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(store.rollups()[0].newest_timestamp, want);
    store.close().unwrap();
}

/// Two threads inserting at once, the job running beside them: the
/// batches they hand over interleave in raw, and the rollups still equal
/// the windowed aggregation of what raw holds.
#[test]
fn concurrent_inserts_hand_over_what_raw_holds() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path(), "s", config(512, Encoding::Raw)).unwrap();
    let rollups = [rollup(MINUTE, &AggFn::ALL), rollup(HOUR, &[])];
    for r in &rollups {
        store.add_rollup(r).unwrap();
    }
    std::thread::scope(|s| {
        for thread in 0..2i64 {
            let store = &store;
            s.spawn(move || {
                for b in 0..150i64 {
                    // Seven seconds apart after raw's newest: a batch the
                    // other thread got in first makes this one retry.
                    loop {
                        let base = store.newest_timestamp().unwrap_or(HOUR);
                        let items: Vec<(Option<i64>, Vec<u8>)> = (1..=20)
                            .map(|i| {
                                let v = thread * 1_000_000 + b * 20 + i;
                                (Some(base + i * 7_000_000_000), payload(v, (b % 3) as u8))
                            })
                            .collect();
                        match store.put_many(items.iter().map(|(t, p)| (*t, &p[..]))) {
                            Ok(_) => break,
                            Err(tsstore::Error::TimestampOutOfOrder { .. }) => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
    });
    store.catch_up_rollups().unwrap();
    let written: Vec<(i64, Vec<u8>)> = store
        .range(i64::MIN, i64::MAX, None)
        .unwrap()
        .into_iter()
        .map(|r| (r.timestamp(), r.data.to_vec()))
        .collect();
    assert_eq!(written.len(), 2 * 150 * 20);
    for r in &rollups {
        assert_eq!(all_windows(&store, r.window_ns), expected(r, &written));
    }
    store.close().unwrap();
}

#[test]
fn bad_rollups_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path(), "s", config(16, Encoding::Raw)).unwrap();
    store.add_rollup(&rollup(HOUR, &[])).unwrap();
    let err = |c: RollupConfig| store.add_rollup(&c).unwrap_err().to_string();
    assert!(err(rollup(HOUR, &[])).contains("already has a rollup of 1h"));
    assert!(err(rollup(1_500, &[])).contains("whole number of milliseconds"));
    assert!(err(rollup(0, &[])).contains("longer than zero"));
    assert!(err(rollup(MINUTE, &[AggFn::Avg, AggFn::Avg])).contains("twice"));
    assert_eq!(store.rollups().len(), 1);
    assert!(matches!(
        store.remove_rollup(MINUTE),
        Err(tsstore::Error::RollupNotFound(_))
    ));
    store.remove_rollup(HOUR).unwrap();
    assert!(store.rollups().is_empty());
    store.close().unwrap();
    let store = Store::open(dir.path(), "s").unwrap();
    assert!(store.rollups().is_empty());
    assert!(
        !dir.path()
            .join("s")
            .join(tsstore::ROLLUPS_DIR)
            .join("1h")
            .exists()
    );
    store.close().unwrap();
}

#[test]
fn a_batch_larger_than_raw_loses_no_window() {
    let dir = tempfile::tempdir().unwrap();
    // 8 blocks of 4 KiB: about 450 of these records; the batch is 13 rings.
    let store = Store::create(dir.path(), "s", config(8, Encoding::Raw)).unwrap();
    let daily = rollup(24 * HOUR, &AggFn::ALL);
    store.add_rollup(&daily).unwrap();
    let mut written = Vec::new();
    write_minutes(&store, 1000 * HOUR, 6000, &mut written);
    // One at a time as well: the inserter catches up when the job lags.
    for m in 0..3000 {
        let t = 1000 * HOUR + (6000 + m) * MINUTE;
        let p = payload(m, (m % 3) as u8);
        store.put(t, &p).unwrap();
        written.push((t, p));
    }
    store.catch_up_rollups().unwrap();
    let got = all_windows(&store, daily.window_ns);
    assert_eq!(got, expected(&daily, &written));
    assert!(
        got.iter()
            .all(|w| !w.partial || w.end > written.last().unwrap().0)
    );
    store.close().unwrap();
}

#[test]
fn a_bad_record_in_a_batch_split_in_parts_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path(), "s", config(8, Encoding::Raw)).unwrap();
    store.add_rollup(&rollup(HOUR, &[])).unwrap();
    let mut items: Vec<(Option<i64>, Vec<u8>)> = (0..3000)
        .map(|m| (Some(HOUR + m * MINUTE), payload(m, 0)))
        .collect();
    items[2500].1 = b"{not json".to_vec();
    assert!(
        store
            .put_many(items.iter().map(|(t, p)| (*t, &p[..])))
            .is_err()
    );
    items[2500].1 = payload(1, 0);
    items[2600].0 = Some(HOUR);
    assert!(
        store
            .put_many(items.iter().map(|(t, p)| (*t, &p[..])))
            .is_err()
    );
    assert_eq!(store.newest_timestamp(), None);
    store.close().unwrap();
}

#[test]
fn a_schema_store_rolls_up_what_users_see() {
    use tsstore::{Field, FieldType};
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        data_type: DataType::Schema,
        ..config(64, Encoding::Raw)
    };
    let store = Store::create(dir.path(), "s", cfg).unwrap();
    store
        .set_schema(vec![
            Field::new(1, "temp", FieldType::Float64),
            Field::new(2, "room", FieldType::String),
        ])
        .unwrap();
    let hourly = rollup(HOUR, &[]);
    store.add_rollup(&hourly).unwrap();
    let mut written = Vec::new();
    for m in 0..200i64 {
        let t = 50 * HOUR + m * MINUTE;
        let p = format!(r#"{{"temp":{}.5,"room":"r{}"}}"#, m % 9, m % 2).into_bytes();
        store.put(t, &p).unwrap();
        written.push((t, p));
    }
    store.catch_up_rollups().unwrap();
    let got = all_windows(&store, HOUR);
    assert_eq!(got, expected(&hourly, &written));
    assert!(String::from_utf8_lossy(&got[0].data).contains("\"temp_avg\""));
    store.close().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Every state a power cut can leave: raw cut back to any record (it
    /// loses an unsynced tail), the rollup ring as it was at any earlier
    /// or later point (it loses its own, independently). After open, the
    /// rollup answers what the surviving raw records give: no window
    /// missing, none twice.
    #[test]
    fn any_raw_and_rollup_states_a_crash_leaves_recover_to_agree(
        batches in prop::collection::vec(
            prop::collection::vec((1i64..20 * MINUTE, any::<i64>(), any::<u8>()), 1..40),
            2..12,
        ),
        snapshot_after in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path(), "s", config(256, Encoding::Raw)).unwrap();
        let hourly = rollup(HOUR, &AggFn::ALL);
        store.add_rollup(&hourly).unwrap();
        let rollups = dir.path().join("s").join(tsstore::ROLLUPS_DIR);
        let aside = dir.path().join("aside");
        let snapshot_after = snapshot_after.index(batches.len());
        let mut written: Vec<(i64, Vec<u8>)> = Vec::new();
        let mut ts = 1_700_000_000_000_000_000i64;
        let mut store = Some(store);
        for (i, batch) in batches.iter().enumerate() {
            let s = store.as_ref().unwrap();
            put_batch(s, &mut ts, batch, &mut written);
            s.catch_up_rollups().unwrap();
            if i == snapshot_after {
                store.take().unwrap().close().unwrap();
                common::copy_dir(&rollups, &aside);
                store = Some(Store::open(dir.path(), "s").unwrap());
            }
        }
        let s = store.take().unwrap();
        let cut_at = written[cut.index(written.len())].0;
        s.truncate_after(cut_at).unwrap();
        s.close().unwrap();
        std::fs::remove_dir_all(&rollups).unwrap();
        common::copy_dir(&aside, &rollups);
        let s = Store::open(dir.path(), "s").unwrap();
        s.catch_up_rollups().unwrap();
        written.retain(|(t, _)| *t <= cut_at);
        let got = all_windows(&s, HOUR);
        prop_assert_eq!(&got, &expected(&hourly, &written));
        s.close().unwrap();
    }
}

/// Rollup rings on the simulated disk: each ring's files (which a power
/// cut hits like the store's own), and descriptions written whole and
/// durably, as `atomic_write` does.
/// A ring and the simulated files a power cut hits.
type SimRing = (RollupRing, Vec<Arc<SimFile>>);

#[derive(Debug)]
struct SimRollups {
    budget: WriteBudget,
    rings: Mutex<BTreeMap<String, SimRing>>,
}

impl SimRollups {
    fn crash(&self, seed: u64) {
        for (_, sims) in self.rings.lock().unwrap().values() {
            for (i, f) in sims.iter().enumerate() {
                f.crash(seed.wrapping_add(i as u64 * 7919));
            }
        }
    }
}

impl RollupFiles for SimRollups {
    fn list(&self) -> std::io::Result<Vec<RollupRing>> {
        let rings = self.rings.lock().unwrap();
        Ok(rings.values().map(|(ring, _)| ring.clone()).collect())
    }

    fn create(&self, label: &str, config: &Config) -> std::io::Result<StoreFiles> {
        let mut sims = Vec::new();
        let files = common::sim_files(config, &self.budget, &mut sims);
        let ring = RollupRing {
            label: label.to_string(),
            description: None,
            files: files.clone(),
        };
        let mut rings = self.rings.lock().unwrap();
        rings.insert(label.to_string(), (ring, sims));
        Ok(files)
    }

    fn write_description(&self, label: &str, bytes: &[u8]) -> std::io::Result<()> {
        if let Some((ring, _)) = self.rings.lock().unwrap().get_mut(label) {
            ring.description = Some(bytes.to_vec());
        }
        Ok(())
    }

    fn remove(&self, label: &str) -> std::io::Result<()> {
        self.rings.lock().unwrap().remove(label);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// A power cut at any write or sync of the store and its rollup ring
    /// (each unsynced write kept, lost or torn), under `SyncPolicy::Always`:
    /// after open, the rollup answers what the raw records that survived
    /// give. No window missing, none twice.
    #[test]
    fn rollups_on_the_simulated_disk_survive_power_cuts(
        batches in prop::collection::vec(
            prop::collection::vec((1i64..20 * MINUTE, any::<i64>(), any::<u8>()), 1..30),
            2..10,
        ),
        crash_at in 0i64..400,
        seed in any::<u64>(),
    ) {
        let cfg = Config {
            num_blocks: 64,
            data_block_size: 4096,
            index_block_size: 64,
            data_type: DataType::Json,
            encoding: Encoding::Raw,
        };
        let budget = WriteBudget::unlimited();
        let mut sims = Vec::new();
        let mut files = common::sim_files(&cfg, &budget, &mut sims);
        let home = Arc::new(SimRollups { budget: budget.clone(), rings: Mutex::new(BTreeMap::new()) });
        files.rollups = Some(home.clone());
        // `always`: what a power cut is survived with (under `never` a cut
        // may lose any write not synced, the store's own records too).
        let store = Store::create_on("s", files.clone(), cfg, SyncPolicy::Always).unwrap();
        let hourly = RollupConfig { keep: Keep::Blocks(16), ..rollup(HOUR, &AggFn::ALL) };
        store.add_rollup(&hourly).unwrap();
        budget.set(crash_at);
        let mut ts = 1_700_000_000_000_000_000i64;
        for batch in &batches {
            let items: Vec<(Option<i64>, Vec<u8>)> = batch
                .iter()
                .map(|&(step, value, kind)| {
                    ts += step;
                    (Some(ts), payload(value.rem_euclid(1_000_000), kind))
                })
                .collect();
            if store.put_many(items.iter().map(|(t, p)| (*t, &p[..]))).is_err() {
                break;
            }
            if store.catch_up_rollups().is_err() {
                break;
            }
        }
        store.abandon();
        for (i, f) in sims.iter().enumerate() {
            f.crash(seed.wrapping_add(i as u64));
        }
        home.crash(seed);
        budget.set(i64::MAX);
        let store = Store::open_on("s", files, SyncPolicy::Always).unwrap();
        store.catch_up_rollups().unwrap();
        let raw: Vec<(i64, Vec<u8>)> = store
            .iter()
            .map(|r| r.map(|r| (r.timestamp(), r.data)))
            .collect::<tsstore::Result<_>>()
            .unwrap();
        prop_assert_eq!(all_windows(&store, HOUR), expected(&hourly, &raw));
        store.close().unwrap();
    }
}
