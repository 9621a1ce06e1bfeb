//! What stays open and what `/metrics` lists per store, resolved and
//! checked: `store_idle_close_ms` (0: stores never close for idleness),
//! `max_open_stores` (at least 1), `metrics_stores` ("all", "none" or a
//! number of busiest stores); and the engine's process-wide settings
//! (`read_mapping`, `background_workers`, `frame_cache_bytes`).

use std::time::Duration;

use super::{ConfigError, positive};
use crate::metrics::StoreSeries;
use crate::registry::StoreResidency;

pub(super) fn resolve(
    idle_ms: Option<u64>,
    max_open: Option<usize>,
) -> Result<StoreResidency, ConfigError> {
    let d = StoreResidency::default();
    let idle = match idle_ms {
        None => d.idle,
        Some(0) => None,
        Some(ms) => Some(Duration::from_millis(ms)),
    };
    Ok(StoreResidency {
        idle,
        max_open: positive("max_open_stores", max_open, d.max_open)?,
    })
}

/// The engine's process-wide settings (`tsstore::set_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineSettings {
    pub read_mapping: bool,
    pub background_workers: usize,
    pub frame_cache_bytes: usize,
}

impl EngineSettings {
    /// Hands them to the engine: before the first store opens.
    pub fn apply(&self) {
        tsstore::set_read_mapping(self.read_mapping);
        tsstore::set_background_workers(self.background_workers);
        tsstore::set_frame_cache_bytes(self.frame_cache_bytes);
    }
}

pub(super) fn engine(
    read_mapping: Option<bool>,
    workers: Option<usize>,
    frame_cache_bytes: Option<usize>,
) -> Result<EngineSettings, ConfigError> {
    let workers = positive(
        "background_workers",
        workers,
        tsstore::DEFAULT_BACKGROUND_WORKERS,
    )?;
    if workers > tsstore::MAX_WORKERS {
        return Err(ConfigError::Invalid {
            setting: "background_workers",
            reason: format!("it must be at most {}", tsstore::MAX_WORKERS),
        });
    }
    Ok(EngineSettings {
        read_mapping: read_mapping.unwrap_or(true),
        background_workers: workers,
        frame_cache_bytes: frame_cache_bytes.unwrap_or(tsstore::DEFAULT_FRAME_CACHE_BYTES),
    })
}

pub(super) fn store_series(v: Option<&str>) -> Result<StoreSeries, ConfigError> {
    match v {
        None => Ok(StoreSeries::default()),
        Some("all") => Ok(StoreSeries::All),
        Some("none") => Ok(StoreSeries::None),
        Some(n) => n
            .parse()
            .map(StoreSeries::Busiest)
            .map_err(|_| ConfigError::Invalid {
                setting: "metrics_stores",
                reason: format!(
                    "expected \"all\", \"none\" or a number of busiest stores, got {n:?}"
                ),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_idle_time_means_never_and_bad_series_are_refused() {
        let r = resolve(Some(0), None).unwrap();
        assert_eq!(r.idle, None);
        assert_eq!(r.max_open, StoreResidency::default().max_open);
        assert!(resolve(None, Some(0)).is_err());
        assert_eq!(store_series(Some("all")).unwrap(), StoreSeries::All);
        assert_eq!(store_series(Some("none")).unwrap(), StoreSeries::None);
        assert_eq!(store_series(Some("7")).unwrap(), StoreSeries::Busiest(7));
        let err = store_series(Some("most")).unwrap_err().to_string();
        assert!(err.contains("metrics_stores"), "{err}");
        assert!(engine(None, Some(0), None).is_err());
        assert!(engine(None, Some(tsstore::MAX_WORKERS + 1), None).is_err());
        let e = engine(Some(false), None, Some(0)).unwrap();
        assert!(!e.read_mapping && e.background_workers == 3 && e.frame_cache_bytes == 0);
        assert_eq!(engine(None, None, None).unwrap().frame_cache_bytes, 4 << 20);
    }
}
