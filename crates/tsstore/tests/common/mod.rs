//! Helpers shared by the engine's tests: little-endian fields read and
//! written at byte offsets, for tests that build or inspect store files.
#![allow(dead_code)]

pub fn le32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

pub fn le64(b: &mut [u8], at: usize, v: i64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

pub fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

pub fn rd64(b: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// A binary store's geometry for the crash tests: `raw` or, compressed,
/// `packed` (blocks, block size), with small index blocks.
pub fn crash_config(compressed: bool, raw: (u32, u32), packed: (u32, u32)) -> tsstore::Config {
    let ((num_blocks, data_block_size), encoding) = if compressed {
        (packed, tsstore::Encoding::Compressed)
    } else {
        (raw, tsstore::Encoding::Raw)
    };
    tsstore::Config {
        num_blocks,
        data_block_size,
        index_block_size: 64,
        data_type: tsstore::DataType::Binary,
        encoding,
    }
}

/// `sim_files`, with the files it made, where a test cuts the power.
pub fn sim_store_files(
    cfg: &tsstore::Config,
    budget: &tsstore::sim::WriteBudget,
) -> (
    tsstore::StoreFiles,
    Vec<std::sync::Arc<tsstore::sim::SimFile>>,
) {
    let mut sims = Vec::new();
    let files = sim_files(cfg, budget, &mut sims);
    (files, sims)
}

/// A store's files on the simulated disk for `cfg`: one ring, or for a
/// compressed store the main ring and its staging ring, as the engine
/// splits the blocks.
pub fn sim_files(
    cfg: &tsstore::Config,
    budget: &tsstore::sim::WriteBudget,
    sims: &mut Vec<std::sync::Arc<tsstore::sim::SimFile>>,
) -> tsstore::StoreFiles {
    let (blocks, bs) = (cfg.num_blocks, cfg.data_block_size);
    if cfg.encoding == tsstore::Encoding::Raw {
        return sim_ring_files(blocks, bs, budget, sims);
    }
    let staging = tsstore::encoding::staging_blocks(blocks);
    let mut files = sim_ring_files(blocks - staging, bs, budget, sims);
    files.staging = Some(Box::new(sim_ring_files(staging, bs, budget, sims)));
    files
}

/// One ring's files on the simulated disk (`blocks` blocks of `bs` bytes),
/// sharing `budget`; each file is also pushed to `sims`, where a test cuts
/// the power on all of them.
fn sim_ring_files(
    blocks: u32,
    bs: u32,
    budget: &tsstore::sim::WriteBudget,
    sims: &mut Vec<std::sync::Arc<tsstore::sim::SimFile>>,
) -> tsstore::StoreFiles {
    use tsstore::sim::SimFile;
    let meta = SimFile::new(64, budget.clone());
    let data = SimFile::new((blocks * bs) as usize, budget.clone());
    let index = SimFile::new(1024, budget.clone());
    sims.extend([meta.clone(), data.clone(), index.clone()]);
    tsstore::StoreFiles {
        meta,
        data,
        index,
        staging: None,
        rollups: None,
    }
}

/// Copies a directory tree (a store fixture) to `to`.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
