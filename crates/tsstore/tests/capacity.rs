//! `Capacity` against a real ring: the most objects ever live at once is
//! what it predicts, for packed and spanning sizes.

use tsstore::{Capacity, Config, DataType, Store, SyncPolicy};

#[test]
fn the_ring_holds_what_capacity_says() {
    for size in [0u64, 10, 60, 100, 232 - 24, 300, 700] {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            num_blocks: 8,
            data_block_size: 256,
            index_block_size: 4096,
            data_type: DataType::Binary,
            encoding: tsstore::Encoding::Raw,
        };
        let cap = Capacity::of(&config, size).unwrap();
        let store = Store::create_with(dir.path(), "c", config, SyncPolicy::Never).unwrap();
        let payload = vec![b'p'; size as usize];
        let mut most = 0;
        for t in 1..=200 {
            store.put(t, &payload).unwrap();
            most = most.max(store.iter().count() as u64);
        }
        assert_eq!(most, cap.max_objects, "size {size}: {cap:?}");
    }
}
