//! Store configuration and the checks applied before anything touches disk.

use crate::error::{Error, Result};
use crate::format::{DataType, Encoding, check_geometry};

/// Name of the staging ring's directory inside the store's.
pub const STAGING: &str = "staging";

/// Fewest blocks a compressed store can have: the staging ring takes
/// `staging_blocks(n)` of them and the main ring must stay at least twice
/// as large (so a record still staged always has its frame, if any, in it).
pub const MIN_COMPRESSED_BLOCKS: u32 = 24;

/// Blocks of a compressed store of `n` blocks that go to its staging ring:
/// a fifth, from 8 to 128. Every record not yet framed is staged, so this
/// is how far inserts can run ahead of the framer: a frame fills its block
/// with 15–25 blocks' worth of staged sensor readings. A smaller store's
/// staging ring holds less than that, so its frames are cut short when it
/// fills, and the next frame fills the rest of the block (`Shared::
/// frame_room`). At 64 blocks a fifth kept 82–89 % of a 1 024-block
/// store's readings per MiB (TMY3 and soiling, JSON and schema); an eighth
/// (smaller frames) and a quarter (fewer main blocks) kept less
/// (docs/BENCHMARKS.md, issue 35). The insert and the
/// framer each stop now and then on a sync (the staging ring's checkpoint
/// once a lap, a frame's write-back), and the other runs on only while
/// the ring has room or records: with 64 blocks (4 TMY3 frames) batch
/// ingest swung between 0.44 and 0.70 of a raw store's rate, with 128
/// (and the insert laying out columns) 0.4998 – 0.73, 13 runs of 14 at
/// 0.57 or more (docs/BENCHMARKS.md, session 4). That costs 12.5 %
/// of a store of the default 1 024 blocks, 7 % of the readings it keeps;
/// the cap is reached at 640 blocks, so larger stores pay less. Fewer
/// than 8 would leave too little to make a frame of.
pub fn staging_blocks(n: u32) -> u32 {
    (n / 5).clamp(8, 128)
}

/// Index granularity of a staging ring made since frames share blocks: its
/// entries and nothing more. The staging ring is the store's own, so it
/// need not follow the granularity asked for the main ring (ts-store's
/// `index_block_size`), which in a 64-block store doubled the index files
/// for 12 entries.
pub const STAGING_INDEX_BLOCK_SIZE: u32 = 16;

/// Longest store name.
pub const MAX_NAME_LEN: usize = 64;

/// Geometry and type of a new store. Fixed for the store's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub num_blocks: u32,
    /// Bytes per data block; a power of two, at least 64.
    pub data_block_size: u32,
    /// Granularity `index.tsdb` is rounded up to; a power of two, at least 16.
    pub index_block_size: u32,
    pub data_type: DataType,
    /// Raw (the default, ts-store's layout) or compressed.
    pub encoding: Encoding,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            num_blocks: 1024,
            data_block_size: 4096,
            index_block_size: 4096,
            data_type: DataType::Json,
            encoding: Encoding::Raw,
        }
    }
}

impl Config {
    pub fn validate(&self) -> Result<()> {
        if let Err(fault) =
            check_geometry(self.num_blocks, self.data_block_size, self.index_block_size)
        {
            // `InvalidConfig` carries a message: that is its public shape.
            return Err(Error::InvalidConfig(format!("{fault}")));
        }
        if self.encoding == Encoding::Compressed && self.num_blocks < MIN_COMPRESSED_BLOCKS {
            return Err(Error::InvalidConfig(format!(
                "a compressed store needs at least {} blocks (its staging ring takes some)",
                MIN_COMPRESSED_BLOCKS
            )));
        }
        Ok(())
    }
}

/// Store names become directory names, so only a safe alphabet passes:
/// 1–64 of `[A-Za-z0-9_-]`, not starting with `-`.
pub fn validate_store_name(name: &str) -> Result<()> {
    let fail = |reason| {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("a name needs at least one character");
    }
    if name.len() > MAX_NAME_LEN {
        return fail("a name has at most 64 characters");
    }
    if name.starts_with('-') {
        return fail("a name must not start with '-'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return fail("only letters, digits, '_' and '-' are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "sensor_1", "A-b_9", &"x".repeat(64)] {
            assert!(validate_store_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "..",
            "a/b",
            "-a",
            "a b",
            "a\0",
            "é",
            &"x".repeat(65),
            "%2e%2e",
        ] {
            assert!(
                matches!(validate_store_name(bad), Err(Error::InvalidName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn geometry() {
        assert!(Config::default().validate().is_ok());
        let bad = Config {
            data_block_size: 96,
            ..Config::default()
        };
        assert!(matches!(bad.validate(), Err(Error::InvalidConfig(_))));
    }
}
