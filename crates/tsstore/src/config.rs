//! Store configuration and the checks applied before anything touches disk.

use crate::error::{Error, Result};
use crate::format::{DataType, Encoding, check_geometry};

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
        if self.encoding == Encoding::Compressed
            && self.num_blocks < crate::encoding::MIN_COMPRESSED_BLOCKS
        {
            return Err(Error::InvalidConfig(format!(
                "a compressed store needs at least {} blocks (its staging ring takes some)",
                crate::encoding::MIN_COMPRESSED_BLOCKS
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
