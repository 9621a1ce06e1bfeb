//! `tsstore status`: every store under the data path, as a table or JSON.

use tsstore::{Store, SyncPolicy};

use super::{CliError, human_bytes};
use crate::config::Settings;

/// One row of `status`.
#[derive(Debug, serde::Serialize)]
struct StoreStatus {
    name: String,
    /// `null` when the store could not be opened; `error` says why.
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<tsstore::Stats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub(super) fn status(settings: &Settings, json: bool) -> Result<String, CliError> {
    let base = &settings.base_path;
    let names = Store::list(base).map_err(|source| CliError::DataPath {
        path: base.display().to_string(),
        source,
    })?;
    let rows: Vec<StoreStatus> = names
        .into_iter()
        .map(
            |name| match Store::open_with(base, &name, SyncPolicy::Never) {
                Ok(store) => {
                    let stats = store.stats();
                    let _ = store.close();
                    StoreStatus {
                        name,
                        stats: Some(stats),
                        error: None,
                    }
                }
                Err(e) => StoreStatus {
                    name,
                    stats: None,
                    error: Some(e.to_string()),
                },
            },
        )
        .collect();
    if json {
        return Ok(serde_json::to_string_pretty(&rows)?);
    }
    if rows.is_empty() {
        return Ok(format!("no stores in {}", base.display()));
    }
    let mut out = format!(
        "{:<24} {:<7} {:>10} {:>6}  {:<30}  newest",
        "name", "type", "size", "fill", "oldest"
    );
    for row in rows {
        match row.stats {
            Some(s) => out.push_str(&format!(
                "\n{:<24} {:<7} {:>10} {:>5.1}%  {:<30}  {}",
                row.name,
                s.data_type.as_str(),
                human_bytes(s.capacity_bytes),
                100.0 * s.bytes_used as f64 / s.capacity_bytes.max(1) as f64,
                s.oldest_time.as_deref().unwrap_or("-"),
                s.newest_time.as_deref().unwrap_or("-"),
            )),
            None => out.push_str(&format!(
                "\n{:<24} {}",
                row.name,
                row.error.unwrap_or_default()
            )),
        }
    }
    Ok(out)
}
