//! Where `tsstore import` puts records: a store it opened itself
//! (`import::Local`) or a running server's API (`remote::Remote`). Both
//! check a record the way the store would before anything is written, so
//! a bad file changes nothing either way.

use tsstore::DataType;

use super::CliError;

/// Where records go: a store opened here, or a server's API.
pub(super) trait Target {
    fn data_type(&self) -> DataType;
    /// The newest timestamp already stored (0 when empty).
    fn newest(&self) -> i64;
    /// Whether `payload` would be stored (type, schema, size); why not.
    fn check(&self, payload: &[u8]) -> Result<(), tsstore::Error>;
    /// Most records and payload bytes in one `put`.
    fn batch_limit(&self) -> (usize, usize);
    fn put(&mut self, batch: &[(i64, Vec<u8>)]) -> Result<(), CliError>;
}

/// Why one record of the file cannot be imported.
#[derive(Debug, thiserror::Error)]
pub(super) enum Refusal {
    #[error("timestamp {ts} is not after {after} ({prev})")]
    OutOfOrder {
        ts: i64,
        prev: i64,
        after: &'static str,
    },
    #[error(transparent)]
    Store(#[from] tsstore::Error),
}
