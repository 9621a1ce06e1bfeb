//! Store encodings: how records sit in a block.
//!
//! `raw` is the layout of `docs/FORMAT.md` (ts-store's, byte for byte).
//! `compressed` keeps runs of records as zstd frames of a columnar body,
//! one frame per block, so a block holds ten or more times the readings.
//! This module has the columnar body (`columns`), the frame codec
//! (`frame`), and the compressed store's staging ring, framer and readers
//! (`compressed`), which `Store` uses when its encoding says so.

pub mod columns;
pub(crate) mod compressed;
pub mod frame;
pub mod split;
mod varint;

pub use compressed::{Compression, MIN_COMPRESSED_BLOCKS, STAGING, staging_blocks};
pub use frame::{FrameCodec, FrameError};
