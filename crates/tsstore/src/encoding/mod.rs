//! Store encodings: how records sit in a block.
//!
//! `raw` is the layout of `docs/FORMAT.md` (ts-store's, byte for byte).
//! `compressed` keeps runs of records as zstd frames of a columnar body,
//! one frame per block, so a block holds ten or more times the readings.
//! This module has the pieces that do not depend on the ring: the
//! columnar body (`columns`), the frame codec (`frame`), the block
//! images a frame is written as (`block`) and the staging log that keeps
//! acknowledged records until they are framed (`staging`).

pub mod block;
pub mod columns;
pub mod frame;
pub mod framed;
pub mod staging;

pub use frame::{FrameCodec, FrameError};
pub use framed::FramedStore;
