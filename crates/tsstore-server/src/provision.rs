//! Provisioning: the one way a store comes to exist, for the CLI and the
//! server alike: its configuration from the request and the defaults, the
//! store itself, and its first API key. A store whose key cannot be saved
//! is removed again, so there is never a store nobody can authenticate to.

use std::path::Path;

use tsstore::{Config, DataType, Store, SyncPolicy};

use crate::keys::{KeyError, KeyFile, NewKey};

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Store(#[from] tsstore::Error),
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// Over the server's `max_store_bytes`.
    #[error(
        "the store would take {bytes} bytes on disk; this server creates stores of at most {max} bytes (server.max_store_bytes)"
    )]
    TooLarge { bytes: u64, max: u64 },
}

/// What a caller asked of a new store's geometry and type; what it leaves
/// out comes from the configured defaults.
#[derive(Debug, Default, Clone, Copy)]
pub struct StoreRequest<'a> {
    pub num_blocks: Option<u32>,
    pub data_block_size: Option<u32>,
    pub index_block_size: Option<u32>,
    /// binary, text, json (default) or schema.
    pub data_type: Option<&'a str>,
    /// raw or compressed (default: the configured default, raw).
    pub encoding: Option<&'a str>,
}

impl StoreRequest<'_> {
    /// The checked configuration (`InvalidConfig` names what is wrong), at
    /// most `max_bytes` on disk when that is given.
    pub fn resolve(
        &self,
        defaults: &Config,
        max_bytes: Option<u64>,
    ) -> Result<Config, ProvisionError> {
        let data_type = match self.data_type {
            None => DataType::Json,
            Some(t) => t.parse()?,
        };
        let encoding = match self.encoding {
            None => defaults.encoding,
            Some(e) => e.parse()?,
        };
        let config = Config {
            num_blocks: self.num_blocks.unwrap_or(defaults.num_blocks),
            data_block_size: self.data_block_size.unwrap_or(defaults.data_block_size),
            index_block_size: self.index_block_size.unwrap_or(defaults.index_block_size),
            data_type,
            encoding,
        };
        let bytes = tsstore::Footprint::of(&config)?.total_bytes;
        match max_bytes {
            Some(max) if bytes > max => Err(ProvisionError::TooLarge { bytes, max }),
            _ => Ok(config),
        }
    }
}

/// Creates the store `base/name` and its first API key (noted `note`).
pub fn create_store(
    base: &Path,
    name: &str,
    config: Config,
    sync: SyncPolicy,
    note: &str,
) -> Result<(Store, NewKey), ProvisionError> {
    let store = Store::create_with(base, name, config, sync)?;
    let mut keys = KeyFile::new(name);
    let saved = keys
        .add(note)
        .and_then(|key| keys.save(store.path()).map(|()| key));
    match saved {
        Ok(key) => Ok((store, key)),
        Err(e) => {
            let _ = store.delete();
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_fill_from_defaults_and_are_checked() {
        let d = Config::default();
        let c = StoreRequest {
            num_blocks: Some(8),
            data_type: Some("text"),
            ..StoreRequest::default()
        }
        .resolve(&d, None)
        .unwrap();
        assert_eq!((c.num_blocks, c.data_block_size), (8, d.data_block_size));
        assert_eq!(c.data_type, DataType::Text);
        let bad = StoreRequest {
            data_type: Some("xml"),
            ..StoreRequest::default()
        };
        let invalid = |r: Result<Config, ProvisionError>| {
            matches!(
                r,
                Err(ProvisionError::Store(tsstore::Error::InvalidConfig(_)))
            )
        };
        assert!(invalid(bad.resolve(&d, None)));
        let bad = StoreRequest {
            data_block_size: Some(100),
            ..StoreRequest::default()
        };
        assert!(invalid(bad.resolve(&d, None)));
        let big = StoreRequest {
            num_blocks: Some(1024),
            data_block_size: Some(4096),
            index_block_size: Some(4096),
            ..StoreRequest::default()
        };
        let footprint_of_big = (4 << 20) + 16384 + 64;
        let resolved = big.resolve(&d, None).unwrap();
        let footprint = tsstore::Footprint::of(&resolved).unwrap();
        assert_eq!(footprint.total_bytes, footprint_of_big);
        assert!(big.resolve(&d, Some(footprint_of_big)).is_ok());
        assert!(matches!(
            big.resolve(&d, Some(4 << 20)),
            Err(ProvisionError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_store_comes_with_its_first_key() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            num_blocks: 4,
            ..Config::default()
        };
        let (store, key) =
            create_store(dir.path(), "s", config, SyncPolicy::Never, "test").unwrap();
        let keys = KeyFile::load(store.path(), "s").unwrap();
        assert!(keys.verify(&key.key).is_some());
        store.close().unwrap();
        assert!(matches!(
            create_store(dir.path(), "s", config, SyncPolicy::Never, "again"),
            Err(ProvisionError::Store(tsstore::Error::StoreExists(_)))
        ));
    }
}
