//! Real process crashes: a child process inserts numbered records (sync
//! policy `Always`) and reports each acknowledgement on a pipe; the parent
//! SIGKILLs it at arbitrary moments, reopens the store and checks that every acknowledged
//! record that the ring still holds is there, byte for byte, in order, and
//! that the store takes new inserts.
//!
//! The child is this same test binary, re-run with `CHILD_ENV` set. It
//! runs for raw and for compressed stores (the child opens whichever the
//! parent created; a compressed store's framer is killed with it).
//!
//! The two tests run on threads of one process, and a store's lock is a
//! `flock` on its open `meta.tsdb`: a child forked by one test while the
//! other has its store open shares that open file, and with it the lock,
//! until the child execs. Under load that window lasted long enough for
//! the other test's next open (its child's, or its own check) to find the
//! store in use. So the parent opens stores and spawns children only
//! under `PARENT` (`parent_only`), and a child that cannot open its store
//! says so and fails the run instead of exiting unnoticed.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use tsstore::{Config, DataType, Encoding, Store, SyncPolicy};

const CHILD_ENV: &str = "TSSTORE_KILL_TEST_DIR";
/// What a child prints when it cannot open its store.
const OPEN_FAILED: &str = "CHILD OPEN FAILED";

/// Held by a test while its own process has a store open or forks.
static PARENT: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn parent_only<T>(f: impl FnOnce() -> T) -> T {
    let _held = PARENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f()
}

/// Kills per run; `TSSTORE_KILLS` raises it for a long run.
fn kills() -> u64 {
    std::env::var("TSSTORE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
}

fn payload(ts: i64) -> Vec<u8> {
    // 0..300 bytes: packed objects and, with 256-byte blocks, spanning ones.
    let len = (ts as usize * 37) % 300;
    (0..len)
        .map(|i| (ts as usize).wrapping_mul(131).wrapping_add(i) as u8)
        .collect()
}

fn config(encoding: Encoding) -> Config {
    match encoding {
        Encoding::Raw => Config {
            num_blocks: 32,
            data_block_size: 256,
            index_block_size: 64,
            data_type: DataType::Binary,
            encoding,
        },
        // 8 staging blocks of 1 KiB and 40 main ones: staged records,
        // frames, and a main ring that wraps within the run.
        Encoding::Compressed => Config {
            num_blocks: 48,
            data_block_size: 1024,
            index_block_size: 64,
            data_type: DataType::Binary,
            encoding,
        },
    }
}

/// The child: appends until killed (bounded, in case nobody kills it).
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = match Store::open_with(&dir, "k", SyncPolicy::Always) {
        Ok(store) => store,
        Err(e) => {
            // Its stderr goes nowhere: the parent reads this line.
            println!("{OPEN_FAILED}: {e}");
            return;
        }
    };
    let first = store.stats().newest_timestamp.unwrap_or(0) + 1;
    let mut out = std::io::stdout().lock();
    for (i, next) in (first..first + 100_000).enumerate() {
        store.put(next, &payload(next)).expect("child put");
        writeln!(out, "ACK {next}").expect("pipe");
        out.flush().expect("pipe");
        if i % 97 == 96 {
            store.sync().expect("child sync");
        }
    }
}

fn check(dir: &Path, acked: i64) -> i64 {
    let store = Store::open(dir, "k").expect("open after a kill must succeed");
    let recs: Vec<_> = store.iter().collect::<Result<_, _>>().expect("read back");
    let mut prev = 0;
    for r in &recs {
        let ts = r.timestamp();
        assert!(ts > prev, "order broken at {ts}");
        assert_eq!(r.data, payload(ts), "payload of {ts}");
        prev = ts;
    }
    let newest = recs.last().map_or(0, |r| r.timestamp());
    assert!(
        newest >= acked,
        "acknowledged {acked} lost: newest is {newest}"
    );
    // Everything acknowledged since the oldest retained record is present.
    if let Some(oldest) = recs.first().map(|r| r.timestamp()) {
        let expected = (oldest..=acked).count();
        let have = recs.iter().filter(|r| r.timestamp() <= acked).count();
        assert_eq!(
            have, expected,
            "gap among acknowledged records {oldest}..={acked}"
        );
    }
    assert_eq!(store.stats().corruption_skips, 0);
    store.close().expect("close");
    newest
}

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    kill_and_check(Encoding::Raw);
}

#[test]
fn sigkill_loses_nothing_acknowledged_by_a_compressed_store() {
    kill_and_check(Encoding::Compressed);
}

fn kill_and_check(encoding: Encoding) {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    parent_only(|| {
        Store::create(tmp.path(), "k", config(encoding))
            .unwrap()
            .close()
            .unwrap()
    });
    let exe = std::env::current_exe().unwrap();
    let mut acked = 0i64;
    let mut rng = std::env::var("TSSTORE_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x2545_F491_4F6C_DD1Du64);
    for kill in 0..kills() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Kill after 0..400 acknowledgements (0: as soon as it says anything).
        let after = rng % 400;
        let mut child = parent_only(|| {
            Command::new(&exe)
                .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, tmp.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            // The harness prints `test child_writer ... ` before the
            // child's first line, on the same line.
            assert!(!line.contains(OPEN_FAILED), "kill {kill}: {line}");
            if let Some((_, ts)) = line.split_once("ACK ") {
                acked = ts.parse().unwrap();
                seen += 1;
                if seen > after {
                    break;
                }
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let newest = parent_only(|| check(tmp.path(), acked));
        assert!(newest >= acked, "kill {kill}");
        acked = newest;
    }
    // And the store still takes inserts.
    parent_only(|| {
        let store = Store::open(tmp.path(), "k").unwrap();
        store.put(acked + 1, b"after").unwrap();
        store.close().unwrap();
    });
}
