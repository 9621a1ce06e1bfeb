//! The server's small JSON files (`config.json`, a store's `keys.json`,
//! `settings.json` and connection files): read and parsed in one step,
//! with one error type that keeps what failed, the I/O or the JSON.

use std::path::Path;

use serde::de::DeserializeOwned;

/// Why a JSON file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JsonFileError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// The file parsed; `None` when it does not exist.
pub fn read_optional<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, JsonFileError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The file parsed; a missing file is an error.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<T, JsonFileError> {
    Ok(serde_json::from_slice(&std::fs::read(path)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_unreadable_and_malformed_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        assert!(read_optional::<u32>(&path).unwrap().is_none());
        assert!(matches!(read::<u32>(&path), Err(JsonFileError::Io(_))));
        std::fs::write(&path, "{").unwrap();
        assert!(matches!(read::<u32>(&path), Err(JsonFileError::Json(_))));
        std::fs::write(&path, "7").unwrap();
        assert_eq!(read_optional::<u32>(&path).unwrap(), Some(7));
    }
}
