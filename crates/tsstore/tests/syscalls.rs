//! The insert hot path costs at most one write syscall and no read: counted
//! with the kernel's per-process I/O counters (`/proc/self/io`), so this
//! file holds a single test and nothing else runs beside it.

use tsstore::{Config, DataType, Store, SyncPolicy};

fn io_counters() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/io").expect("/proc/self/io");
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .expect("counter")
    };
    (field("syscr:"), field("syscw:"))
}

#[test]
fn put_is_at_most_one_pwrite_and_no_pread() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        num_blocks: 64,
        data_block_size: 4096,
        index_block_size: 4096,
        data_type: DataType::Json,
        encoding: tsstore::Encoding::Raw,
    };
    // No background flusher: only the inserts' own syscalls are counted.
    let store = Store::create_with(dir.path(), "io", cfg, SyncPolicy::Never).unwrap();
    let payload = br#"{"temp":21.52,"hum":48.25,"room":"kitchen1","ok":true,"n":7}"#;
    let puts = 20_000u64; // wraps the 64-block ring several times
    // Reading /proc/self/io costs read syscalls itself: measure that first.
    let (ra, _) = io_counters();
    let (r0, w0) = io_counters();
    let probe_reads = r0 - ra;
    for ts in 1..=puts as i64 {
        store.put(ts, payload).unwrap();
    }
    let (r1, w1) = io_counters();
    // 84 bytes per object: 48 per 4 KiB block. Sealing a full block costs
    // one header write per block, and once per lap of the ring (before the
    // block recovery starts from is reused) a checkpoint writes the index
    // and the meta header: a few writes per 64 blocks.
    let blocks = puts.div_ceil(48);
    let laps = blocks.div_ceil(64);
    assert_eq!(r1 - r0 - probe_reads, 0, "no reads on the insert path");
    assert!(
        w1 - w0 <= puts + blocks + 4 * laps,
        "{} write syscalls for {puts} puts over {blocks} blocks",
        w1 - w0
    );
    assert!(w1 - w0 >= puts, "every put reached the OS");
}
