//! `tsstore status`: every store under the data path, as a table or JSON.
//!
//! Each store is opened read-only (so a store a server holds is shown
//! too, as of now) and read through once: that counts its records and
//! verifies every checksum, which is where the corruption figure comes
//! from. It costs one sequential read of each ring.

use tsstore::{Footprint, Stats, Store};

use super::{CliError, human_bytes, human_duration};
use crate::config::Settings;

/// One row of `status`.
#[derive(Debug, serde::Serialize)]
struct StoreStatus {
    name: String,
    /// Whether a process (a server) has the store open for writing.
    #[serde(skip_serializing_if = "Option::is_none")]
    held_by_server: Option<bool>,
    /// Bytes on disk: data, index and meta files.
    #[serde(skip_serializing_if = "Option::is_none")]
    footprint_bytes: Option<u64>,
    /// Records counted by reading the store through.
    #[serde(skip_serializing_if = "Option::is_none")]
    records: Option<u64>,
    /// Damaged data the read-through skipped (checksums, broken blocks).
    #[serde(skip_serializing_if = "Option::is_none")]
    corruption_skips: Option<u64>,
    /// The time the ring holds when full: the span it holds now, scaled
    /// up by how full it is (`null` until it holds two records).
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_secs: Option<f64>,
    /// Whether the ring has wrapped, so `retention_secs` is measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    full: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<Stats>,
    /// Why the store could not be read; the fields above are then absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl StoreStatus {
    fn of(base: &std::path::Path, name: String) -> StoreStatus {
        let mut row = StoreStatus {
            name,
            held_by_server: None,
            footprint_bytes: None,
            records: None,
            corruption_skips: None,
            retention_secs: None,
            full: None,
            stats: None,
            error: None,
        };
        if let Err(e) = row.read(base) {
            row.error = Some(e.to_string());
        }
        row
    }

    fn read(&mut self, base: &std::path::Path) -> tsstore::Result<()> {
        self.held_by_server = Some(Store::is_held(base, &self.name)?);
        let store = Store::open_read_only(base, &self.name)?;
        let mut records = 0;
        for rec in store.iter().with_data(false) {
            rec?;
            records += 1;
        }
        let stats = store.stats();
        let fill = stats.bytes_used as f64 / stats.capacity_bytes.max(1) as f64;
        let full = stats.active_blocks == stats.num_blocks - stats.staging_blocks;
        self.retention_secs = match (stats.oldest_timestamp, stats.newest_timestamp) {
            (Some(a), Some(b)) if b > a && fill > 0.0 => {
                let span = (b - a) as f64 / 1e9;
                Some(if full { span } else { span / fill })
            }
            _ => None,
        };
        self.full = Some(full);
        self.footprint_bytes = Some(Footprint::of(&store.config())?.total_bytes);
        self.records = Some(records);
        self.corruption_skips = Some(stats.corruption_skips);
        self.stats = Some(stats);
        Ok(())
    }
}

pub(super) fn status(settings: &Settings, json: bool) -> Result<String, CliError> {
    let base = &settings.base_path;
    let names = Store::list(base).map_err(|source| CliError::DataPath {
        path: base.display().to_string(),
        source,
    })?;
    let rows: Vec<StoreStatus> = names
        .into_iter()
        .map(|name| StoreStatus::of(base, name))
        .collect();
    if json {
        return Ok(serde_json::to_string_pretty(&rows)?);
    }
    if rows.is_empty() {
        return Ok(format!("no stores in {}", base.display()));
    }
    let mut out = format!(
        "{:<20} {:<6} {:>10} {:>10} {:>6} {:>10} {:>13}  {:<19}  {:<19}  {:>5}  server",
        "name",
        "type",
        "encoding",
        "footprint",
        "fill",
        "records",
        "retention",
        "oldest",
        "newest",
        "skips"
    );
    for row in rows {
        let (Some(s), Some(footprint), Some(records)) =
            (&row.stats, row.footprint_bytes, row.records)
        else {
            out.push_str(&format!(
                "\n{:<20} {}",
                row.name,
                row.error.as_deref().unwrap_or_default()
            ));
            continue;
        };
        let retention = match (row.retention_secs, row.full) {
            (Some(secs), Some(true)) => human_duration(secs),
            (Some(secs), _) => format!("~{}", human_duration(secs)),
            (None, _) => "-".into(),
        };
        // A compressed store shows the ratio its frames measured.
        let encoding = match (s.encoding, &s.compression) {
            (tsstore::Encoding::Compressed, Some(c)) => format!("{:.1}x", c.ratio),
            (e, _) => e.as_str().to_string(),
        };
        out.push_str(&format!(
            "\n{:<20} {:<6} {:>10} {:>10} {:>5.1}% {:>10} {:>13}  {:<19}  {:<19}  {:>5}  {}",
            row.name,
            s.data_type.as_str(),
            encoding,
            human_bytes(footprint),
            100.0 * s.bytes_used as f64 / s.capacity_bytes.max(1) as f64,
            records,
            retention,
            short_time(s.oldest_timestamp),
            short_time(s.newest_timestamp),
            row.corruption_skips.unwrap_or(0),
            if row.held_by_server == Some(true) {
                "running"
            } else {
                "-"
            },
        ));
    }
    out.push_str(
        "\n(retention: the time a full ring holds; ~ marks an estimate from the part filled so far; \
         encoding: raw, or the ratio a compressed store's frames keep)",
    );
    Ok(out)
}

/// `2026-11-28 10:20:58` (UTC), or `-`.
fn short_time(ts: Option<i64>) -> String {
    ts.map_or("-".into(), |ts| {
        let full = tsstore::rfc3339(ts);
        format!("{} {}", &full[..10], &full[11..19])
    })
}
