//! What `Store::stats` reports: `Stats`, and for a compressed store the
//! figures of its frames (`Compression`). Plain data, filled by the ring
//! (`Ring::stats`), the compressed store and the store that adds them up.

/// A point-in-time view of a store's geometry and fill.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Stats {
    pub num_blocks: u32,
    pub data_block_size: u32,
    pub index_block_size: u32,
    pub data_type: crate::DataType,
    pub encoding: crate::Encoding,
    /// Ring pointers and blocks in use (a compressed store: its main
    /// ring's, so `active_blocks == num_blocks - staging_blocks` once it
    /// has wrapped).
    pub head_block: u32,
    pub tail_block: u32,
    pub write_offset: u32,
    pub active_blocks: u32,
    /// Timestamp of the oldest stored object (deleted ones included).
    pub oldest_timestamp: Option<i64>,
    pub newest_timestamp: Option<i64>,
    pub oldest_time: Option<String>,
    pub newest_time: Option<String>,
    /// Live objects, when known: blocks found on disk at open are not
    /// counted until the ring has moved past them.
    pub object_count: Option<u64>,
    /// Bytes of the ring in use (full blocks plus the head's used part).
    pub bytes_used: u64,
    pub capacity_bytes: u64,
    /// Times reads since open skipped damaged data (an object failing its
    /// checksum, or the rest of a block whose structure is broken).
    pub corruption_skips: u64,
    /// Compressed stores: what the frames measured so far keep (`None`
    /// until a frame exists).
    pub compression: Option<Compression>,
    /// Compressed stores: blocks of the footprint taken by the staging
    /// ring (counted in `num_blocks` and `capacity_bytes`).
    pub staging_blocks: u32,
}

/// The figures behind a compressed store's ratio, from the frames written
/// since open plus the newest frame found at open.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Compression {
    /// Frames measured.
    pub frames: u64,
    /// Records in them.
    pub records: u64,
    /// What those records take in the raw layout (payload and object
    /// header each) per byte they take as frames (object header included).
    pub ratio: f64,
    /// Ring bytes a reading takes: its frames' bytes (object headers
    /// included) per record.
    pub bytes_per_reading: f64,
    /// Records a block holds at that size, less the tenth of a block a
    /// frame may leave unfilled (`encoding::frame::FILL`).
    pub readings_per_block: f64,
    /// Readings the store keeps per MiB of its whole footprint (files of
    /// both rings) at that rate.
    pub readings_per_mib: f64,
    /// Readings the full main ring holds at that rate (the staging ring
    /// holds a few more).
    pub capacity_readings: u64,
}
