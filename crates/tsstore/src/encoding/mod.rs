//! The compressed encoding's codecs: pure functions of bytes, no store
//! logic and no I/O. A compressed store (`compressed`) keeps runs of
//! records as zstd frames of a columnar body, one frame per block, so a
//! block holds ten or more times the readings; this module has how a
//! record splits into a template and values (`split`), the columnar body
//! (`columns`), the frame codec (`frame`) and the varints under them.
//! Public for benches and tools.

pub mod columns;
pub mod frame;
pub mod split;
mod typed;
mod varint;

// The footprint's split between the rings is configuration and the
// figures are stats; re-exported here, where library users (and the
// server's `calc`) have found them.
pub use crate::config::{MIN_COMPRESSED_BLOCKS, STAGING, staging_blocks};
pub use crate::stats::Compression;
pub use frame::{FrameCodec, FrameError};
