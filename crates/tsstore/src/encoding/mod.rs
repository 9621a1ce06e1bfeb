//! Store encodings: how records sit in a block.
//!
//! `raw` is the layout of `docs/FORMAT.md` (ts-store's, byte for byte).
//! `compressed` keeps runs of records as zstd frames of a columnar body,
//! one frame per block, so a block holds ten or more times the readings.
//! This module has the columnar body (`columns`), the frame codec
//! (`frame`), and `FramedStore` (`framed`), the encoding end to end over
//! two raw rings.

pub mod columns;
pub mod frame;
pub mod framed;

pub use frame::{FrameCodec, FrameError};
pub use framed::FramedStore;
