//! A full disk found by a store's background flusher (sync policy
//! `interval`) answers the next write with 507, as a full disk found by
//! the write itself does, not 500. The engine keeps the flusher's I/O
//! error with its kind (`StorageFull`); this checks the server's mapping
//! of what the next write then returns, on the engine's simulated disk
//! (a real filesystem does not run out under a store whose blocks were
//! reserved at creation).

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tsstore::sim::{SimFile, WriteBudget};
use tsstore::{Config, DataType, Store, StoreFiles, SyncPolicy};
use tsstore_server::http::error::ApiError;
use tsstore_server::records::RecordError;

#[test]
fn a_full_disk_found_by_the_flusher_answers_507_to_the_next_write() {
    let config = Config {
        num_blocks: 64,
        data_block_size: 4096,
        index_block_size: 4096,
        data_type: DataType::Json,
        ..Config::default()
    };
    let budget = WriteBudget::unlimited();
    let files = StoreFiles {
        meta: SimFile::new(64, budget.clone()),
        data: SimFile::new(64 * 4096, budget.clone()),
        index: SimFile::new(1024, budget.clone()),
        staging: None,
        rollups: None,
    };
    let policy = SyncPolicy::Interval(Duration::from_millis(5));
    let store = Store::create_on("s", files, config, policy).unwrap();
    store.put(1, br#"{"v":1}"#).unwrap();
    budget.fill_disk();
    // The flusher's next round fails; the write after it reports that.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ts = 1;
    let err = loop {
        assert!(Instant::now() < deadline, "no write reported the full disk");
        std::thread::sleep(Duration::from_millis(10));
        ts += 1;
        if let Err(e) = store.put(ts, br#"{"v":2}"#) {
            break e;
        }
    };
    let answer = ApiError::from(RecordError::from(err));
    assert_eq!(
        answer.status,
        StatusCode::INSUFFICIENT_STORAGE,
        "{}",
        answer.message
    );
    assert_eq!(answer.code, "insufficient_storage");
    budget.free_disk();
    drop(store);
}
