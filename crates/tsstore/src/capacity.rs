//! What a store of a given geometry costs on disk and holds: the sizes of
//! its three files and how many objects of one payload size fit in the
//! ring. The arithmetic follows how the writer packs and spans objects, so
//! tools (the CLI's `calc`) need not redo header arithmetic themselves.

use std::time::Duration;

use crate::config::Config;
use crate::error::Result;
use crate::format::{
    BLOCK_HEADER_SIZE, Encoding, META_SIZE, OBJECT_HEADER_SIZE, blocks_for, index_file_len,
    max_object_len,
};

/// The disk footprint of a store: its files are allocated in full at
/// create and never grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// `data.tsdb`: every block.
    pub data_bytes: u64,
    /// `index.tsdb`: one entry per block, rounded up to whole index blocks.
    pub index_bytes: u64,
    /// `meta.tsdb`.
    pub meta_bytes: u64,
    pub total_bytes: u64,
}

impl Footprint {
    /// The footprint of a store created with `config` (which is checked
    /// as `Store::create` checks it). A compressed store's staging ring
    /// is part of it: its blocks come out of `num_blocks`, and its index
    /// and meta files are counted here.
    pub fn of(config: &Config) -> Result<Footprint> {
        config.validate()?;
        let data_bytes = config.num_blocks as u64 * config.data_block_size as u64;
        let (index_bytes, meta_bytes) = match config.encoding {
            Encoding::Raw => (
                index_file_len(config.num_blocks, config.index_block_size),
                META_SIZE as u64,
            ),
            Encoding::Compressed => {
                let staging = crate::config::staging_blocks(config.num_blocks);
                (
                    index_file_len(config.num_blocks - staging, config.index_block_size)
                        + index_file_len(staging, crate::config::STAGING_INDEX_BLOCK_SIZE),
                    2 * META_SIZE as u64,
                )
            }
        };
        Ok(Footprint {
            data_bytes,
            index_bytes,
            meta_bytes,
            total_bytes: data_bytes + index_bytes + meta_bytes,
        })
    }
}

/// How many objects of one payload size a ring holds.
///
/// ```
/// use tsstore::{Capacity, Config};
///
/// # fn main() -> tsstore::Result<()> {
/// let config = Config { num_blocks: 1024, data_block_size: 4096, ..Config::default() };
/// let cap = Capacity::of(&config, 60)?;
/// assert_eq!((cap.objects_per_block, cap.max_objects), (48, 49_152));
/// assert_eq!(cap.footprint.total_bytes, 4_210_752);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub footprint: Footprint,
    /// The payload size asked about.
    pub object_size: u64,
    /// Objects packed into one block (each with its 24-byte header after
    /// the block's 24-byte header); 0 when one object spans blocks.
    pub objects_per_block: u64,
    /// Blocks one object occupies: 1 when objects pack.
    pub blocks_per_object: u64,
    /// Largest payload this ring takes (one object filling it).
    pub max_object_size: u64,
    /// Objects the full ring holds; 0 when one object does not fit at all.
    /// Once the ring wraps, it holds between this less one block's worth
    /// and this: the oldest block is dropped whole before a new one opens.
    pub max_objects: u64,
}

impl Capacity {
    /// The capacity of a store created with `config` (checked as
    /// `Store::create` checks it) for payloads of `object_size` bytes.
    pub fn of(config: &Config, object_size: u64) -> Result<Capacity> {
        let footprint = Footprint::of(config)?;
        let blocks = config.num_blocks as u64;
        let max_object_size = max_object_len(config.num_blocks, config.data_block_size);
        let per_object = object_size.saturating_add(OBJECT_HEADER_SIZE as u64);
        let room = config.data_block_size as u64 - BLOCK_HEADER_SIZE as u64;
        let blocks_per_object = blocks_for(object_size, config.data_block_size);
        let (objects_per_block, max_objects) = if blocks_per_object == 1 {
            let per_block = room / per_object;
            (per_block, per_block * blocks)
        } else if object_size <= max_object_size {
            (0, blocks / blocks_per_object)
        } else {
            (0, 0)
        };
        Ok(Capacity {
            footprint,
            object_size,
            objects_per_block,
            blocks_per_object,
            max_object_size,
            max_objects,
        })
    }

    /// The capacity of a compressed store created with `config`, for
    /// readings of `object_size` bytes that compress `ratio` times (raw
    /// layout bytes, payload and object header, per frame byte: what
    /// `Stats::compression` measures on real data). Its main ring's blocks
    /// each hold one frame; the staging ring is not counted.
    pub fn compressed(config: &Config, object_size: u64, ratio: f64) -> Result<Capacity> {
        let footprint = Footprint::of(config)?;
        if !(ratio.is_finite() && ratio > 0.0) {
            return Err(crate::Error::InvalidConfig(format!(
                "a compression ratio must be a positive number, not {ratio}"
            )));
        }
        let main = (config.num_blocks - crate::config::staging_blocks(config.num_blocks)) as u64;
        let frame_room =
            config.data_block_size as u64 - (BLOCK_HEADER_SIZE + OBJECT_HEADER_SIZE) as u64 - 4;
        let per_object = object_size.saturating_add(OBJECT_HEADER_SIZE as u64) as f64;
        let per_block = (frame_room as f64 * ratio / per_object) as u64;
        let max_object_size =
            crate::encoding::frame::max_record(max_object_len(main as u32, config.data_block_size));
        let fits = object_size <= max_object_size;
        Ok(Capacity {
            footprint,
            object_size,
            objects_per_block: if fits { per_block } else { 0 },
            blocks_per_object: 1,
            max_object_size,
            max_objects: if fits { per_block * main } else { 0 },
        })
    }

    /// The capacity a store created with `config` is expected to have
    /// for payloads of `object_size` bytes: `of` for a raw store,
    /// `compressed` at `ratio` for a compressed one (a raw store ignores
    /// `ratio`).
    pub fn expected(config: &Config, object_size: u64, ratio: f64) -> Result<Capacity> {
        match config.encoding {
            Encoding::Raw => Capacity::of(config, object_size),
            Encoding::Compressed => Capacity::compressed(config, object_size, ratio),
        }
    }

    /// Whether several objects share a block.
    pub fn packs(&self) -> bool {
        self.objects_per_block > 0
    }

    /// Whether an object of this size can be stored at all.
    pub fn fits(&self) -> bool {
        self.max_objects > 0
    }

    /// How much time a full ring covers at one object every `every`
    /// (`Duration::MAX` if that overflows).
    pub fn history(&self, every: Duration) -> Duration {
        let nanos = every.as_nanos().saturating_mul(self.max_objects as u128);
        let secs = nanos / 1_000_000_000;
        match u64::try_from(secs) {
            Ok(secs) => Duration::new(secs, (nanos % 1_000_000_000) as u32),
            Err(_) => Duration::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn config(num_blocks: u32, data_block_size: u32) -> Config {
        Config {
            num_blocks,
            data_block_size,
            index_block_size: 4096,
            ..Config::default()
        }
    }

    // The expected numbers are those `tsstore calc` prints for the same
    // arguments (crates/tsstore-server/tests/cli.rs).

    #[test]
    fn packed_objects() {
        let cap = Capacity::of(&config(1024, 4096), 60).unwrap();
        assert_eq!(
            cap.footprint,
            Footprint {
                data_bytes: 4 << 20,
                index_bytes: 16 << 10,
                meta_bytes: 64,
                total_bytes: (4 << 20) + (16 << 10) + 64,
            }
        );
        assert!(cap.packs() && cap.fits());
        assert_eq!(cap.objects_per_block, 48);
        assert_eq!(cap.blocks_per_object, 1);
        assert_eq!(cap.max_objects, 49_152);
        // "5.7 days of history" at one object every 10 s.
        let days = cap.history(Duration::from_secs(10)).as_secs_f64() / 86_400.0;
        assert_eq!(format!("{days:.1}"), "5.7");
    }

    #[test]
    fn spanning_objects() {
        let cap = Capacity::of(&config(100, 4096), 10_000).unwrap();
        assert!(!cap.packs() && cap.fits());
        assert_eq!(cap.objects_per_block, 0);
        assert_eq!(cap.blocks_per_object, 3);
        assert_eq!(cap.max_objects, 33);
    }

    #[test]
    fn objects_larger_than_the_ring() {
        let cap = Capacity::of(&config(4, 4096), 100_000).unwrap();
        assert!(!cap.fits());
        assert_eq!(cap.blocks_per_object, 25);
        assert_eq!(cap.max_objects, 0);
        assert_eq!(cap.max_object_size, 4048 + 3 * 4072);
    }

    #[test]
    fn boundaries_follow_the_writer() {
        // 64-byte blocks: 16 payload bytes pack, 17 span two blocks.
        let packs = Capacity::of(&config(10, 64), 16).unwrap();
        assert_eq!((packs.objects_per_block, packs.max_objects), (1, 10));
        let spans = Capacity::of(&config(10, 64), 17).unwrap();
        assert_eq!((spans.blocks_per_object, spans.max_objects), (2, 5));
        let empty = Capacity::of(&config(10, 64), 0).unwrap();
        assert_eq!(empty.objects_per_block, 1);
        let huge = Capacity::of(&config(u32::MAX, 1 << 30), u64::MAX).unwrap();
        assert!(!huge.fits());
        assert_eq!(huge.history(Duration::MAX), Duration::ZERO);
        let many = Capacity::of(&config(u32::MAX, 1 << 30), 0).unwrap();
        assert_eq!(many.history(Duration::MAX), Duration::MAX);
    }

    #[test]
    fn invalid_geometry_is_refused() {
        assert!(matches!(
            Capacity::of(&config(0, 4096), 1),
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            Footprint::of(&config(4, 100)),
            Err(Error::InvalidConfig(_))
        ));
    }
}
