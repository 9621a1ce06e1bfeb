//! What stays open and what `/metrics` lists per store, resolved and
//! checked: `store_idle_close_ms` (0: stores never close for idleness),
//! `max_open_stores` (at least 1), `metrics_stores` ("all", "none" or a
//! number of busiest stores).

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

pub(super) fn store_series(v: Option<&str>) -> Result<StoreSeries, ConfigError> {
    match v {
        None => Ok(StoreSeries::default()),
        Some(text) => text.parse().map_err(|reason| ConfigError::Invalid {
            setting: "metrics_stores",
            reason,
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
    }
}
