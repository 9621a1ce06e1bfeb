//! What can go wrong with records, whatever carried them: a variant per
//! failure a transport answers differently. `http::error` turns these into
//! statuses and codes; the WebSocket and socket paths into their own lines.

use tsstore::{DataType, SchemaError};

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The body or message is not the JSON it should be.
    #[error("{0}")]
    InvalidJson(String),
    #[error(
        "the body needs a \"data\" field: {{\"timestamp\"?: ns, \"data\": ...}} (or send the data itself with envelope=none)"
    )]
    MissingData,
    /// `data` does not suit the store's type (not a string, not base64 ...).
    #[error("{0}")]
    InvalidData(String),
    /// The media type is not one the store takes; the message says which are.
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the batch holds no records")]
    EmptyBatch,
    /// One record of a batch failed; nothing of the batch was stored.
    #[error("record {index}: {source}")]
    InBatch {
        index: usize,
        source: Box<RecordError>,
    },
    #[error("malformed query string: {0}")]
    InvalidQuery(#[from] serde_urlencoded::de::Error),
    /// A read option or query parameter is not valid; the message names it.
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    InvalidTimestamp(String),
    #[error("limit {limit} is above the maximum of {max}")]
    LimitTooLarge { limit: i64, max: usize },
    #[error(transparent)]
    InvalidAggregation(#[from] tsstore::aggregate::AggError),
    #[error(transparent)]
    InvalidPrecision(#[from] tsstore::ParsePrecisionError),
    #[error("aggregation needs a json or schema store; this one is {0}")]
    AggregationUnsupported(DataType),
    #[error(
        "the aggregation would read more than {0} records; narrow the time range (start_time/end_time or since)"
    )]
    ScanLimitExceeded(usize),
    /// Nobody waits for the read any more (timeout, client gone).
    #[error("the request was abandoned")]
    Abandoned,
    #[error(transparent)]
    Task(#[from] crate::registry::TaskFailed),
    #[error(transparent)]
    Store(#[from] tsstore::Error),
}

pub type RecordResult<T> = Result<T, RecordError>;

impl RecordError {
    /// The label under which a refused insert is counted in `/metrics`.
    pub fn reject_reason(&self) -> &'static str {
        use tsstore::Error as E;
        match self {
            RecordError::InBatch { source, .. } => source.reject_reason(),
            RecordError::UnsupportedMediaType(_) => "content_type",
            RecordError::Task(_) | RecordError::Abandoned => "internal",
            RecordError::Store(e) => match e {
                E::TimestampOutOfOrder { .. } => "out_of_order",
                E::InvalidTimestamp(_) | E::TimestampOverflow { .. } => "invalid_timestamp",
                E::TimestampInFuture { .. } => "future_timestamp",
                E::TooLarge { .. } => "too_large",
                E::Schema(SchemaError::BadFile(_)) => "internal",
                E::Schema(_) => "schema",
                E::InvalidData { .. } | E::Json(_) => "invalid_data",
                // The store's state or the disk, not the record.
                E::TruncateIncomplete(_)
                | E::NotFound(_)
                | E::StoreExists(_)
                | E::StoreNotFound(_)
                | E::RollupExists(_)
                | E::RollupNotFound(_)
                | E::InUse(_)
                | E::ReadOnly(_)
                | E::InvalidName { .. }
                | E::InvalidConfig(_)
                | E::ReadOverrun
                | E::Corrupt(_)
                | E::Io(_) => "internal",
            },
            RecordError::InvalidJson(_)
            | RecordError::MissingData
            | RecordError::InvalidData(_)
            | RecordError::EmptyBatch
            | RecordError::InvalidQuery(_)
            | RecordError::InvalidParameter(_)
            | RecordError::InvalidPrecision(_)
            | RecordError::InvalidTimestamp(_)
            | RecordError::LimitTooLarge { .. }
            | RecordError::InvalidAggregation(_)
            | RecordError::AggregationUnsupported(_)
            | RecordError::ScanLimitExceeded(_) => "invalid_data",
        }
    }

    /// The error of record `index` of a batch.
    pub fn in_batch(self, index: usize) -> RecordError {
        RecordError::InBatch {
            index,
            source: Box::new(self),
        }
    }

    /// The error that decides how the failure is answered: a batch
    /// record's own, else this one.
    pub fn cause(&self) -> &RecordError {
        match self {
            RecordError::InBatch { source, .. } => source.cause(),
            other => other,
        }
    }
}
