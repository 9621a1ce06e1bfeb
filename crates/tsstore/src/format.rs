//! Byte layout of the three store files, as `docs/FORMAT.md` describes it.
//!
//! Everything here is plain encode/decode of fixed-size little-endian
//! records; no I/O. The layout is shared with ts-store (Go) v0.4, so field
//! positions must never move.

use crate::error::{Error, Result};

/// The ASCII bytes "TSSTORE1" read as a big-endian u64 (stored little-endian,
/// so the file starts `31 45 52 4F 54 53 53 54`).
pub const META_MAGIC: u64 = 0x5453_5354_4F52_4531;
pub const FORMAT_VERSION: u32 = 1;
/// Format version of compressed stores: byte 38 of the meta header names
/// the encoding. ts-store (Go) and tsstore before it read only version 1,
/// so they refuse such a store instead of misreading its frames.
pub const FORMAT_VERSION_ENCODED: u32 = 2;
/// Format version of compressed stores whose frames may be typed
/// (`encoding::typed`, marked per frame). Builds that read only 2 refuse
/// a version 3 store instead of failing on its typed frames.
pub const FORMAT_VERSION_TYPED: u32 = 3;
/// Format version of compressed stores whose typed frames' number
/// columns may be predicted (`encoding::typed::predict`): what this build
/// writes. It reads versions 2 to 4 alike; builds that read only up to 3
/// refuse a version 4 store instead of failing on its frames. A store of
/// an earlier version opened for writing is marked 4 before anything is
/// framed.
pub const FORMAT_VERSION_PREDICTED: u32 = 4;
pub const META_SIZE: usize = 64;
pub const BLOCK_HEADER_SIZE: usize = 24;
pub const OBJECT_HEADER_SIZE: usize = 24;
pub const INDEX_ENTRY_SIZE: usize = 16;
/// Largest block size accepted; offsets inside a block are u32 and a block
/// is read whole, so it is kept well below that.
pub const MAX_BLOCK_SIZE: u32 = 1 << 30;

/// Meta byte 37, bit 0: objects carry a CRC-32C in their reserved word.
pub const FEATURE_CHECKSUMS: u8 = 1;

/// Block header flags.
pub const BLOCK_PRIMARY: u32 = 1;
pub const BLOCK_PACKED: u32 = 1 << 1;
pub const BLOCK_CONTINUATION: u32 = 1 << 2;

/// Object header flags.
pub const OBJ_CONTINUES_FROM_PREV: u32 = 1;
pub const OBJ_CONTINUES_IN_NEXT: u32 = 1 << 1;
pub const OBJ_LAST_IN_BLOCK: u32 = 1 << 2;
pub const OBJ_DELETED: u32 = 1 << 3;
/// Byte offset of the flags word inside an object header (soft delete writes here).
pub const OBJ_FLAGS_OFFSET: usize = 12;

/// What payloads a store accepts; the numeric values are the on-disk byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    Binary = 0,
    Text = 1,
    Json = 2,
    Schema = 3,
}

impl DataType {
    pub fn from_byte(b: u8) -> Option<DataType> {
        match b {
            0 => Some(DataType::Binary),
            1 => Some(DataType::Text),
            2 => Some(DataType::Json),
            3 => Some(DataType::Schema),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Binary => "binary",
            DataType::Text => "text",
            DataType::Json => "json",
            DataType::Schema => "schema",
        }
    }
}

impl std::str::FromStr for DataType {
    type Err = Error;
    fn from_str(s: &str) -> Result<DataType> {
        match s {
            "binary" => Ok(DataType::Binary),
            "text" => Ok(DataType::Text),
            "json" => Ok(DataType::Json),
            "schema" => Ok(DataType::Schema),
            other => Err(Error::InvalidConfig(format!(
                "unknown data type '{other}' (expected binary, text, json or schema)"
            ))),
        }
    }
}

/// How records are laid out in the ring; the numeric values are meta byte 38.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// One object per record, byte-compatible with ts-store (Go).
    #[default]
    Raw = 0,
    /// Records staged, then kept as zstd frames that fill a block each
    /// (docs/FORMAT.md, "Compressed encoding").
    Compressed = 1,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Raw => "raw",
            Encoding::Compressed => "compressed",
        }
    }
}

impl std::str::FromStr for Encoding {
    type Err = Error;
    fn from_str(s: &str) -> Result<Encoding> {
        match s {
            "raw" => Ok(Encoding::Raw),
            "compressed" => Ok(Encoding::Compressed),
            other => Err(Error::InvalidConfig(format!(
                "unknown encoding '{other}' (expected raw or compressed)"
            ))),
        }
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    u64_at(b, at) as i64
}

/// A geometry the format cannot hold. `Config::validate` answers it as
/// `InvalidConfig`, the meta decoder as `Corrupt`: the same rule, two faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    #[error("num_blocks must be at least 1")]
    NoBlocks,
    #[error("data_block_size {0} must be a power of two between 64 and {MAX_BLOCK_SIZE}")]
    DataBlockSize(u32),
    #[error("index_block_size {0} must be a power of two between 16 and {MAX_BLOCK_SIZE}")]
    IndexBlockSize(u32),
}

/// The geometries the format allows; `Config::validate` and the meta
/// decoder both check with it, so a store that can be created can be opened.
pub(crate) fn check_geometry(
    num_blocks: u32,
    data_block_size: u32,
    index_block_size: u32,
) -> Result<(), GeometryError> {
    if num_blocks == 0 {
        return Err(GeometryError::NoBlocks);
    }
    if !data_block_size.is_power_of_two() || !(64..=MAX_BLOCK_SIZE).contains(&data_block_size) {
        return Err(GeometryError::DataBlockSize(data_block_size));
    }
    if !index_block_size.is_power_of_two() || !(16..=MAX_BLOCK_SIZE).contains(&index_block_size) {
        return Err(GeometryError::IndexBlockSize(index_block_size));
    }
    Ok(())
}

/// `meta.tsdb`: the store's geometry and its ring pointers at the last checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub num_blocks: u32,
    pub data_block_size: u32,
    pub index_block_size: u32,
    pub head_block: u32,
    pub tail_block: u32,
    pub write_offset: u32,
    pub data_type: DataType,
    pub features: u8,
    /// Byte 38 of a version 2 header (version 1: always raw). In a
    /// compressed store the data type is the records', not the frames'.
    pub encoding: Encoding,
    /// Bytes 40..44 (tsstore extension, reserved for ts-store): bumped by
    /// every reset. It seeds object checksums, so objects written before a
    /// reset never verify again and recovery cannot bring them back.
    pub epoch: u32,
    /// Bytes 44..48 (tsstore extension): live blocks at the checkpoint, so
    /// "empty" does not depend on an index entry a later checkpoint may
    /// already have overwritten.
    pub live_blocks: u32,
    /// Bytes 48..56 (tsstore extension): the timestamp of a
    /// `truncate_after` under way (0: none). Set durably before a truncate
    /// touches anything, cleared by the checkpoint that ends it; open
    /// finishes a truncate it finds here.
    pub truncate_pending: i64,
}

impl Meta {
    pub fn encode(&self) -> [u8; META_SIZE] {
        let mut b = [0u8; META_SIZE];
        b[0..8].copy_from_slice(&META_MAGIC.to_le_bytes());
        let version = match self.encoding {
            Encoding::Raw => FORMAT_VERSION,
            Encoding::Compressed => FORMAT_VERSION_PREDICTED,
        };
        b[8..12].copy_from_slice(&version.to_le_bytes());
        b[12..16].copy_from_slice(&self.num_blocks.to_le_bytes());
        b[16..20].copy_from_slice(&self.data_block_size.to_le_bytes());
        b[20..24].copy_from_slice(&self.index_block_size.to_le_bytes());
        b[24..28].copy_from_slice(&self.head_block.to_le_bytes());
        b[28..32].copy_from_slice(&self.tail_block.to_le_bytes());
        b[32..36].copy_from_slice(&self.write_offset.to_le_bytes());
        b[36] = self.data_type as u8;
        b[37] = self.features;
        b[38] = self.encoding as u8;
        b[40..44].copy_from_slice(&self.epoch.to_le_bytes());
        b[44..48].copy_from_slice(&self.live_blocks.to_le_bytes());
        b[48..56].copy_from_slice(&self.truncate_pending.to_le_bytes());
        b
    }

    /// Decodes and sanity-checks a header; any inconsistency is `Corrupt`
    /// because nothing else in the store can be interpreted without it.
    pub fn decode(b: &[u8]) -> Result<Meta> {
        if b.len() < META_SIZE {
            return Err(Error::Corrupt(format!(
                "meta.tsdb is {} bytes, expected {META_SIZE}",
                b.len()
            )));
        }
        if u64_at(b, 0) != META_MAGIC {
            return Err(Error::Corrupt("meta.tsdb has a wrong magic number".into()));
        }
        let version = u32_at(b, 8);
        let encoding = match (version, b[38]) {
            (FORMAT_VERSION, _) => Encoding::Raw,
            (FORMAT_VERSION_ENCODED..=FORMAT_VERSION_PREDICTED, 1) => Encoding::Compressed,
            (FORMAT_VERSION_ENCODED..=FORMAT_VERSION_PREDICTED, e) => {
                return Err(Error::Corrupt(format!(
                    "meta.tsdb has unknown encoding {e}"
                )));
            }
            _ => {
                return Err(Error::Corrupt(format!(
                    "meta.tsdb has format version {version}, this build reads versions \
                     {FORMAT_VERSION} to {FORMAT_VERSION_PREDICTED}"
                )));
            }
        };
        let data_type = DataType::from_byte(b[36])
            .ok_or_else(|| Error::Corrupt(format!("meta.tsdb has unknown data type {}", b[36])))?;
        let meta = Meta {
            num_blocks: u32_at(b, 12),
            data_block_size: u32_at(b, 16),
            index_block_size: u32_at(b, 20),
            head_block: u32_at(b, 24),
            tail_block: u32_at(b, 28),
            write_offset: u32_at(b, 32),
            data_type,
            features: b[37],
            encoding,
            epoch: u32_at(b, 40),
            live_blocks: u32_at(b, 44),
            truncate_pending: u64_at(b, 48) as i64,
        };
        check_geometry(meta.num_blocks, meta.data_block_size, meta.index_block_size)
            .map_err(|e| Error::Corrupt(format!("meta.tsdb geometry: {e}")))?;
        if meta.head_block >= meta.num_blocks || meta.tail_block >= meta.num_blocks {
            return Err(Error::Corrupt(format!(
                "meta.tsdb head {} / tail {} outside {} blocks",
                meta.head_block, meta.tail_block, meta.num_blocks
            )));
        }
        if meta.write_offset as u64 > meta.data_block_size as u64 {
            return Err(Error::Corrupt(format!(
                "meta.tsdb write offset {} beyond block size {}",
                meta.write_offset, meta.data_block_size
            )));
        }
        Ok(meta)
    }

    pub fn has_checksums(&self) -> bool {
        self.features & FEATURE_CHECKSUMS != 0
    }
}

/// The first 24 bytes of every data block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockHeader {
    pub timestamp: i64,
    /// Bytes used after the block header.
    pub data_len: u32,
    pub flags: u32,
    /// Bytes 16..24, reserved in ts-store (which ignores them). tsstore
    /// writes the spanning object's timestamp here in the continuation
    /// blocks of stores with checksums, where the `timestamp` field is 0 as
    /// ts-store writes it; 0 everywhere else.
    pub object_ts: i64,
}

impl BlockHeader {
    pub fn encode_into(&self, b: &mut [u8]) {
        b[0..8].copy_from_slice(&self.timestamp.to_le_bytes());
        b[8..12].copy_from_slice(&self.data_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.object_ts.to_le_bytes());
    }

    pub fn decode(b: &[u8]) -> BlockHeader {
        BlockHeader {
            timestamp: i64_at(b, 0),
            data_len: u32_at(b, 8),
            flags: u32_at(b, 12),
            object_ts: i64_at(b, 16),
        }
    }

    pub fn is_continuation(&self) -> bool {
        self.flags & BLOCK_CONTINUATION != 0
    }

    /// Whether objects (with headers) start in this block: primary and not
    /// a continuation. Both writers set the primary bit on continuation
    /// blocks too (flags 7), so the primary bit alone does not say it.
    pub fn starts_objects(&self) -> bool {
        self.flags & BLOCK_PRIMARY != 0 && !self.is_continuation()
    }
}

/// The 24-byte header in front of every object's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ObjectHeader {
    pub timestamp: i64,
    /// Total payload length, also when the payload spans blocks.
    pub data_len: u32,
    pub flags: u32,
    /// Offset of the next object header from the block start, 0 if none.
    pub next_offset: u32,
    /// CRC-32C of timestamp, length and payload in stores with checksums.
    pub reserved: u32,
}

impl ObjectHeader {
    pub fn encode_into(&self, b: &mut [u8]) {
        b[0..8].copy_from_slice(&self.timestamp.to_le_bytes());
        b[8..12].copy_from_slice(&self.data_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..20].copy_from_slice(&self.next_offset.to_le_bytes());
        b[20..24].copy_from_slice(&self.reserved.to_le_bytes());
    }

    /// A header from exactly its bytes (no bounds to check: the walk every
    /// read makes calls this per object); `decode` copies into one.
    #[inline]
    pub fn from_array(b: &[u8; OBJECT_HEADER_SIZE]) -> ObjectHeader {
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        ObjectHeader {
            timestamp: i64::from_le_bytes(ts),
            data_len: u32_at(8),
            flags: u32_at(12),
            next_offset: u32_at(16),
            reserved: u32_at(20),
        }
    }

    pub fn decode(b: &[u8]) -> ObjectHeader {
        let mut bytes = [0u8; OBJECT_HEADER_SIZE];
        bytes.copy_from_slice(&b[..OBJECT_HEADER_SIZE]);
        ObjectHeader::from_array(&bytes)
    }

    pub fn is_deleted(&self) -> bool {
        self.flags & OBJ_DELETED != 0
    }

    pub fn spans(&self) -> bool {
        self.flags & OBJ_CONTINUES_IN_NEXT != 0
    }
}

/// One `index.tsdb` entry; entry *n* describes data block *n*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexEntry {
    /// First object starting in the block; 0 for empty or continuation blocks.
    pub timestamp: i64,
    pub block_num: u32,
}

impl IndexEntry {
    pub fn encode_into(&self, b: &mut [u8]) {
        b[0..8].copy_from_slice(&self.timestamp.to_le_bytes());
        b[8..12].copy_from_slice(&self.block_num.to_le_bytes());
        b[12..16].fill(0);
    }

    pub fn decode(b: &[u8]) -> IndexEntry {
        IndexEntry {
            timestamp: i64_at(b, 0),
            block_num: u32_at(b, 8),
        }
    }
}

/// Checksum seed of a reset epoch: 0 for a store never reset, so its
/// checksums are exactly CRC-32C(timestamp ‖ length ‖ payload).
pub fn checksum_seed(epoch: u32) -> u32 {
    if epoch == 0 {
        0
    } else {
        crc32c::crc32c(&epoch.to_le_bytes())
    }
}

/// CRC-32C of an object's timestamp, length (both little-endian) and whole
/// payload, continued from `seed`.
pub fn object_checksum(seed: u32, timestamp: i64, payload: &[u8]) -> u32 {
    crate::checksum::object_crc(seed, timestamp, payload)
}

/// The checksum state after an object's timestamp and payload length,
/// which every object checksum starts with.
fn checksum_head(seed: u32, timestamp: i64, len: usize) -> u32 {
    let mut head = [0u8; 12];
    head[..8].copy_from_slice(&timestamp.to_le_bytes());
    head[8..].copy_from_slice(&(len as u32).to_le_bytes());
    crate::checksum::crc32c_append(seed, &head)
}

/// The checksum an object must verify against on read. In a compressed
/// store's main ring every object is a frame whose tombstone bytes (after
/// its `u32` record count, one bit per record) are set in place by deletes
/// after the checksum was written, so they are read as zeros here: a
/// delete never makes its frame fail. The writer needs no such care, since
/// a new frame's tombstones are zero.
pub fn stored_checksum(seed: u32, timestamp: i64, payload: &[u8], encoding: Encoding) -> u32 {
    if encoding != Encoding::Compressed {
        return object_checksum(seed, timestamp, payload);
    }
    let tombstones = match (encoding, payload.get(..4)) {
        (Encoding::Compressed, Some(count)) => {
            let count = u32::from_le_bytes([count[0], count[1], count[2], count[3]]);
            (count as usize).div_ceil(8)
        }
        _ => return object_checksum(seed, timestamp, payload),
    };
    if payload.len() < 4 + tombstones {
        return object_checksum(seed, timestamp, payload);
    }
    let mut crc = checksum_head(seed, timestamp, payload.len());
    crc = crate::checksum::crc32c_append(crc, &payload[..4]);
    const ZEROS: [u8; 256] = [0; 256];
    let mut left = tombstones;
    while left > 0 {
        let n = left.min(ZEROS.len());
        crc = crate::checksum::crc32c_append(crc, &ZEROS[..n]);
        left -= n;
    }
    crate::checksum::crc32c_append(crc, &payload[4 + tombstones..])
}

/// Payload bytes a block can hold after its block header and one object header.
pub fn first_block_capacity(block_size: u32) -> u64 {
    block_size as u64 - (BLOCK_HEADER_SIZE + OBJECT_HEADER_SIZE) as u64
}

/// Payload bytes a continuation block holds after its block header.
pub fn continuation_capacity(block_size: u32) -> u64 {
    block_size as u64 - BLOCK_HEADER_SIZE as u64
}

/// Number of blocks an object of `len` payload bytes occupies (1 when it packs).
pub fn blocks_for(len: u64, block_size: u32) -> u64 {
    let first = first_block_capacity(block_size);
    if len <= first {
        1
    } else {
        1 + (len - first).div_ceil(continuation_capacity(block_size))
    }
}

/// Blocks objects of `lens` bytes take, written one after the other from
/// a fresh block, packed as the writer packs them (an object opens a
/// block when it does not fit in what is left; one larger than a block's
/// room spans blocks of its own), and the bytes used of the last.
pub fn blocks_packed(lens: impl Iterator<Item = usize>, block_size: u32) -> (u64, u64) {
    let bs = block_size as u64;
    let (block_header, object_header) = (BLOCK_HEADER_SIZE as u64, OBJECT_HEADER_SIZE as u64);
    let mut blocks = 0u64;
    let mut used = bs;
    for len in lens {
        let len = len as u64;
        if len > first_block_capacity(block_size) {
            blocks += blocks_for(len, block_size);
            used = bs;
        } else if used + object_header + len > bs {
            blocks += 1;
            used = block_header + object_header + len;
        } else {
            used += object_header + len;
        }
    }
    (blocks, if blocks == 0 { 0 } else { used })
}

/// Largest payload a ring of `num_blocks` blocks can hold (one object
/// filling it), capped by the u32 length field of the object header.
pub fn max_object_len(num_blocks: u32, block_size: u32) -> u64 {
    let ring = first_block_capacity(block_size)
        + (num_blocks as u64 - 1) * continuation_capacity(block_size);
    ring.min(u32::MAX as u64)
}

/// Size of `index.tsdb`: one entry per block, rounded up to whole index blocks.
pub fn index_file_len(num_blocks: u32, index_block_size: u32) -> u64 {
    let raw = num_blocks as u64 * INDEX_ENTRY_SIZE as u64;
    raw.div_ceil(index_block_size as u64) * index_block_size as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_spells_tsstore1() {
        assert_eq!(&META_MAGIC.to_be_bytes(), b"TSSTORE1");
    }

    #[test]
    fn checksum_covers_timestamp_length_and_payload() {
        let base = object_checksum(0, 7, b"abc");
        let mut raw = Vec::new();
        raw.extend_from_slice(&7i64.to_le_bytes());
        raw.extend_from_slice(&3u32.to_le_bytes());
        raw.extend_from_slice(b"abc");
        assert_eq!(base, crc32c::crc32c(&raw));
        assert_ne!(base, object_checksum(0, 8, b"abc"));
        assert_ne!(base, object_checksum(0, 7, b"abd"));
        assert_ne!(base, object_checksum(checksum_seed(1), 7, b"abc"));
    }

    #[test]
    fn frame_checksums_read_tombstones_as_zeros() {
        // count 9: two tombstone bytes, then the frame.
        let mut frame = vec![9, 0, 0, 0, 0, 0, 1, 2, 3];
        let written = object_checksum(5, 7, &frame);
        assert_eq!(stored_checksum(5, 7, &frame, Encoding::Compressed), written);
        frame[5] = 0b1;
        assert_eq!(stored_checksum(5, 7, &frame, Encoding::Compressed), written);
        assert_ne!(stored_checksum(5, 7, &frame, Encoding::Raw), written);
        frame[6] = 9;
        assert_ne!(stored_checksum(5, 7, &frame, Encoding::Compressed), written);
    }

    #[test]
    fn geometry() {
        assert!(check_geometry(1, 64, 16).is_ok());
        let bad = [
            (0, 64, 16),
            (4, 63, 16),
            (4, 96, 16),
            (4, 64, 8),
            (4, 64, 24),
        ];
        for (n, d, i) in bad {
            assert!(check_geometry(n, d, i).is_err(), "{n} {d} {i}");
        }
    }

    #[test]
    fn span_arithmetic() {
        // 64-byte blocks: 16 payload bytes in a first block, 40 per continuation.
        assert_eq!(blocks_for(0, 64), 1);
        assert_eq!(blocks_for(16, 64), 1);
        assert_eq!(blocks_for(17, 64), 2);
        assert_eq!(blocks_for(56, 64), 2);
        assert_eq!(blocks_for(57, 64), 3);
        assert_eq!(max_object_len(4, 64), 16 + 3 * 40);
        assert_eq!(index_file_len(1024, 4096), 16 * 1024);
        assert_eq!(index_file_len(1, 4096), 4096);
    }
}
