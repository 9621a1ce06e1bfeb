//! What inserts return and reads give back: `ObjectHandle` and `Record`.
//!
//! Kept apart from `store` so the writer, which makes handles, and the
//! readers, which make records, depend on these types and not on `Store`.

/// Where an object lives; returned by every insert and by queries.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ObjectHandle {
    pub timestamp: i64,
    /// Block holding the object's header (its first block when it spans).
    pub block_num: u32,
    /// Offset of the object header inside that block.
    pub offset: u32,
    /// Payload length in bytes.
    pub size: u32,
    /// Blocks the object occupies (1 unless it spans).
    pub span_count: u32,
}

/// One object read back: where it is and its payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub handle: ObjectHandle,
    /// The payload as inserted (empty when read without data).
    pub data: Vec<u8>,
}

impl Record {
    pub fn timestamp(&self) -> i64 {
        self.handle.timestamp
    }
}

/// One object read back, its payload borrowed from the reader's buffers:
/// what a streaming read hands out without copying (`Records::next_ref`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub handle: ObjectHandle,
    pub data: &'a [u8],
}

impl RecordRef<'_> {
    pub fn timestamp(&self) -> i64 {
        self.handle.timestamp
    }

    /// An owned copy.
    pub fn to_record(&self) -> Record {
        Record {
            handle: self.handle,
            data: self.data.to_vec(),
        }
    }
}
