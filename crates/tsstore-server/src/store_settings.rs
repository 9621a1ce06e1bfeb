//! Server settings of one store, beside its files in `settings.json`:
//! today the timestamp guard's skew, set when the store is created
//! (`"max_future_skew"` in `POST /api/stores`). A store without the file
//! takes the server's setting. Written atomically; read when the store
//! is opened. The rollups a store is created with come along, but live in
//! their rings (`tsstore::Store::add_rollup`), not in this file.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub const SETTINGS_FILE: &str = "settings.json";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// `max_future_skew` is not a duration (the error names it).
    #[error(transparent)]
    Skew(#[from] crate::config::ConfigError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: crate::json_file::JsonFileError,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// What a store sets for itself; `None` takes the server's setting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// A duration (`1h`), or `0`/`off` for no guard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_future_skew: Option<String>,
    /// Rollups made with the store. Not in this file: each keeps its own
    /// `rollup.json` beside its ring.
    #[serde(skip)]
    pub rollups: Vec<tsstore::RollupConfig>,
}

impl StoreSettings {
    /// Checks what a client asked for.
    pub fn new(max_future_skew: Option<&str>) -> Result<StoreSettings, SettingsError> {
        if let Some(text) = max_future_skew {
            parse_skew(text)?;
        }
        Ok(StoreSettings {
            max_future_skew: max_future_skew.map(str::to_string),
            rollups: Vec::new(),
        })
    }

    pub fn is_default(&self) -> bool {
        self.max_future_skew.is_none()
    }

    /// The skew this store uses, given the server's.
    pub fn future_skew(&self, server: Option<Duration>) -> Option<Duration> {
        match &self.max_future_skew {
            Some(text) => parse_skew(text).unwrap_or(server),
            None => server,
        }
    }

    /// The settings in `dir` (the defaults when there is no file).
    pub fn load(dir: &Path) -> Result<StoreSettings, SettingsError> {
        let path = dir.join(SETTINGS_FILE);
        match crate::json_file::read_optional(&path) {
            Ok(settings) => Ok(settings.unwrap_or_default()),
            Err(source) => Err(SettingsError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Writes the settings to `dir` (nothing for the defaults).
    pub fn save(&self, dir: &Path) -> Result<(), SettingsError> {
        if self.is_default() {
            return Ok(());
        }
        let path = dir.join(SETTINGS_FILE);
        let text = serde_json::to_vec_pretty(self).unwrap_or_default();
        tsstore::atomic_write(&path, &text, None).map_err(|source| SettingsError::Write {
            path: path.display().to_string(),
            source,
        })
    }
}

/// `None`: no guard.
fn parse_skew(text: &str) -> Result<Option<Duration>, SettingsError> {
    Ok(crate::config::future_skew(Some(text))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_overrides_the_server_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let server = Some(Duration::from_secs(86_400));
        let none = StoreSettings::load(dir.path()).unwrap();
        assert_eq!(none.future_skew(server), server);
        none.save(dir.path()).unwrap();
        assert!(!dir.path().join(SETTINGS_FILE).exists());

        let own = StoreSettings::new(Some("1h")).unwrap();
        own.save(dir.path()).unwrap();
        let loaded = StoreSettings::load(dir.path()).unwrap();
        assert_eq!(loaded, own);
        assert_eq!(loaded.future_skew(server), Some(Duration::from_secs(3600)));
        let off = StoreSettings::new(Some("0")).unwrap();
        assert_eq!(off.future_skew(server), None);
        let e = StoreSettings::new(Some("soon")).unwrap_err().to_string();
        assert!(e.contains("max_future_skew"), "{e}");
    }
}
