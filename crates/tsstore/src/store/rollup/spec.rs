//! What a rollup is: its window, its functions and its ring's size, as a
//! caller asks for it (`RollupConfig`) and as it is kept beside its ring
//! (`rollup.json`), and the label that names its directory (`1h`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::aggregate::AggFn;
use crate::atomic_file::atomic_write;
use crate::config::Config;
use crate::duration::parse_duration_ns;
use crate::error::{Error, Result};
use crate::format::{BLOCK_HEADER_SIZE, OBJECT_HEADER_SIZE};

/// Functions a rollup computes for numeric fields when none are given;
/// fields that hold anything else keep their `last` value.
pub const DEFAULT_ROLLUP_FUNCTIONS: [AggFn; 4] = [AggFn::Avg, AggFn::Min, AggFn::Max, AggFn::Count];

/// Most rollups one store can have: each is a ring and a pass over the
/// raw records when its windows close.
pub const MAX_ROLLUPS: usize = 8;

/// Fewest blocks of a rollup ring: a ring drops a whole block when it
/// wraps, so with fewer it would keep little more than one.
pub const MIN_ROLLUP_BLOCKS: u32 = 4;

/// Bytes a row is assumed to take when sizing a ring by duration
/// (`Keep::Span`) for a store with no record yet to measure: four numeric
/// fields with the default functions (an average is printed with up to
/// 17 digits). Fewer or shorter fields keep longer; more keep less.
const ASSUMED_ROW_BYTES: u64 = 512;

/// What a rollup keeps when neither `keep` nor `num_blocks` says.
const DEFAULT_KEEP_NS: i64 = 7 * 86_400_000_000_000;

/// How much history a rollup's ring keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// A ring of this many blocks (of the store's block size).
    Blocks(u32),
    /// A ring sized to hold about this many nanoseconds of windows, from
    /// the size of a row (measured on the store's newest record when it
    /// has one).
    Span(i64),
}

/// What a rollup's ring costs and keeps, planned before it exists.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupPlan {
    pub window: String,
    pub num_blocks: u32,
    /// Its files on disk.
    pub total_bytes: u64,
    pub rows: u64,
    /// How far back its rows reach.
    pub history_ns: i64,
}

/// A rollup as a caller asks for it.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupConfig {
    /// Window length in nanoseconds: a whole number of milliseconds.
    pub window_ns: i64,
    /// Functions for numeric fields (empty: `DEFAULT_ROLLUP_FUNCTIONS`).
    pub functions: Vec<AggFn>,
    /// A span shorter than a window keeps at least `MIN_ROLLUP_BLOCKS`.
    pub keep: Keep,
}

impl RollupConfig {
    /// A rollup as users write one: a window (`1h`), functions (`avg`,
    /// `min`, … separated by `+` or `,`; none: the defaults), and either
    /// how long to keep it (`365d`) or its ring's blocks (neither: a
    /// week of windows, at least `MIN_ROLLUP_BLOCKS`).
    pub fn parse(
        window: &str,
        functions: Option<&str>,
        keep: Option<&str>,
        num_blocks: Option<u32>,
    ) -> Result<RollupConfig> {
        let bad = |what: String| Error::InvalidConfig(format!("rollup: {what}"));
        let window_ns = parse_duration_ns(window).map_err(|e| bad(format!("window: {e}")))?;
        let mut parsed = Vec::new();
        for name in functions.unwrap_or("").split(['+', ',']).map(str::trim) {
            if name.is_empty() {
                continue;
            }
            let f = AggFn::ALL
                .into_iter()
                .find(|f| f.as_str() == name)
                .ok_or_else(|| {
                    bad(format!(
                        "unknown function '{name}' (use sum, avg, min, max, count, first or last)"
                    ))
                })?;
            parsed.push(f);
        }
        let keep = match (keep, num_blocks) {
            (Some(_), Some(_)) => return Err(bad("give keep or num_blocks, not both".into())),
            (Some(span), None) => {
                Keep::Span(parse_duration_ns(span).map_err(|e| bad(format!("keep: {e}")))?)
            }
            (None, Some(0)) => return Err(bad("num_blocks must be at least 1".into())),
            (None, Some(n)) => Keep::Blocks(n),
            (None, None) => Keep::Span(DEFAULT_KEEP_NS.max(window_ns)),
        };
        let config = RollupConfig {
            window_ns,
            functions: parsed,
            keep,
        };
        config.checked_functions()?;
        Ok(config)
    }

    /// Checks the window and functions; the functions, defaults filled in.
    pub(crate) fn checked_functions(&self) -> Result<Vec<AggFn>> {
        label(self.window_ns)?;
        let mut functions = if self.functions.is_empty() {
            DEFAULT_ROLLUP_FUNCTIONS.to_vec()
        } else {
            self.functions.clone()
        };
        let mut seen = Vec::with_capacity(functions.len());
        functions.retain(|f| {
            let new = !seen.contains(f);
            seen.push(*f);
            new
        });
        if functions.len() != seen.len() {
            return Err(Error::InvalidConfig(
                "a rollup lists the same function twice".into(),
            ));
        }
        Ok(functions)
    }

    /// The rows and the time a ring of `blocks` keeps at `row_bytes` a
    /// row (`None`: an assumed 512 bytes): one block is always being
    /// reused.
    pub fn reach(&self, blocks: u32, block_size: u32, row_bytes: Option<u64>) -> (u64, i64) {
        let rows = rows_per_block(block_size, row_bytes) * u64::from(blocks.saturating_sub(1));
        let span = (rows as i64).saturating_mul(self.window_ns);
        (rows, span)
    }

    /// What a row takes for records of `object_size` bytes when none can
    /// be measured: a field per 16 bytes of record, and each numeric
    /// field a name and a number (32 bytes) per function.
    pub fn estimated_row_bytes(&self, object_size: u64) -> u64 {
        let functions = match self.functions.len() {
            0 => DEFAULT_ROLLUP_FUNCTIONS.len(),
            n => n,
        } as u64;
        let fields = (object_size / 16).max(1);
        48 + fields * functions * 32
    }

    /// Its ring in a store of `geometry` whose records take
    /// `object_size` bytes (`None`: rows of an assumed 512 bytes).
    pub fn plan(&self, geometry: &Config, object_size: Option<u64>) -> Result<RollupPlan> {
        let row_bytes = object_size.map(|size| self.estimated_row_bytes(size));
        let num_blocks = self.blocks(geometry.data_block_size, row_bytes);
        let ring = Config {
            num_blocks,
            data_type: crate::format::DataType::Json,
            encoding: crate::format::Encoding::Raw,
            ..*geometry
        };
        let (rows, history_ns) = self.reach(num_blocks, geometry.data_block_size, row_bytes);
        Ok(RollupPlan {
            window: label(self.window_ns)?,
            num_blocks,
            total_bytes: crate::capacity::Footprint::of(&ring)?.total_bytes,
            rows,
            history_ns,
        })
    }

    /// Blocks of `block_size` bytes its ring needs; `row_bytes` is what
    /// one row is expected to take (`None`: an assumed 512 bytes).
    pub fn blocks(&self, block_size: u32, row_bytes: Option<u64>) -> u32 {
        let span = match self.keep {
            Keep::Blocks(n) => return n.max(MIN_ROLLUP_BLOCKS),
            Keep::Span(span) => span,
        };
        let rows = (span / self.window_ns).saturating_add(1) as u64;
        let per_block = rows_per_block(block_size, row_bytes).max(1);
        // One block more than the rows fill: a wrap drops a whole block.
        let blocks = rows.div_ceil(per_block).saturating_add(1);
        blocks.clamp(MIN_ROLLUP_BLOCKS as u64, u32::MAX as u64) as u32
    }
}

/// Rows of `row_bytes` (`None`: an assumed 512) that fit in one block.
fn rows_per_block(block_size: u32, row_bytes: Option<u64>) -> u64 {
    let per_row = row_bytes.unwrap_or(ASSUMED_ROW_BYTES) + OBJECT_HEADER_SIZE as u64;
    (block_size as usize - BLOCK_HEADER_SIZE) as u64 / per_row
}

/// `WINDOW[:FUNCTIONS[:KEEP]]`, as command-line flags and configuration
/// files write a rollup: `1h`, `1m:avg+max`, `1h::365d`.
impl std::str::FromStr for RollupConfig {
    type Err = Error;

    fn from_str(text: &str) -> Result<RollupConfig> {
        let mut parts = text.splitn(3, ':');
        let window = parts.next().unwrap_or("");
        let functions = parts.next().filter(|f| !f.is_empty());
        let keep = parts.next().filter(|k| !k.is_empty());
        RollupConfig::parse(window, functions, keep, None)
    }
}

/// The name of a window as users write it (`1h`, `15m`, `500ms`), which
/// is also its ring's directory: the largest unit that divides it.
pub fn label(window_ns: i64) -> Result<String> {
    const UNITS: [(&str, i64); 6] = [
        ("w", 604_800_000_000_000),
        ("d", 86_400_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
    ];
    if window_ns <= 0 {
        return Err(Error::InvalidConfig(
            "a rollup's window must be longer than zero".into(),
        ));
    }
    UNITS
        .iter()
        .find(|(_, ns)| window_ns % ns == 0)
        .map(|(unit, ns)| format!("{}{unit}", window_ns / ns))
        .ok_or_else(|| {
            Error::InvalidConfig(format!(
                "a rollup's window must be a whole number of milliseconds, not {window_ns} ns"
            ))
        })
}

/// The file beside a rollup's ring that says what it holds.
pub(crate) const ROLLUP_FILE: &str = "rollup.json";

/// `rollup.json`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RollupFile {
    /// The window, as a label (`1h`): for people reading the file.
    pub window: String,
    pub window_ns: i64,
    pub functions: Vec<String>,
}

impl RollupFile {
    pub(crate) fn new(window_ns: i64, functions: &[AggFn]) -> Result<RollupFile> {
        Ok(RollupFile {
            window: label(window_ns)?,
            window_ns,
            functions: functions.iter().map(|f| f.as_str().to_string()).collect(),
        })
    }

    /// The file's bytes, as `write` puts them in `rollup.json`.
    pub(crate) fn bytes(&self) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec_pretty(self)?)
    }

    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        atomic_write(&dir.join(ROLLUP_FILE), &self.bytes()?, None)?;
        Ok(())
    }

    pub(crate) fn read(dir: &Path) -> Result<RollupFile> {
        let bytes = std::fs::read(dir.join(ROLLUP_FILE))?;
        RollupFile::parse(&bytes, &dir.join(ROLLUP_FILE).display().to_string())
    }

    /// A `rollup.json` read from `origin` (for messages).
    pub(crate) fn parse(bytes: &[u8], origin: &str) -> Result<RollupFile> {
        let file: RollupFile =
            serde_json::from_slice(bytes).map_err(|e| Error::Corrupt(format!("{origin}: {e}")))?;
        if label(file.window_ns).ok().as_deref() != Some(&file.window) {
            return Err(Error::Corrupt(format!(
                "{origin}: window {} does not match {} ns",
                file.window, file.window_ns
            )));
        }
        Ok(file)
    }

    pub(crate) fn functions(&self) -> Result<Vec<AggFn>> {
        self.functions
            .iter()
            .map(|name| {
                AggFn::ALL
                    .into_iter()
                    .find(|f| f.as_str() == name)
                    .ok_or_else(|| Error::Corrupt(format!("rollup function '{name}' is unknown")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_use_the_largest_unit() {
        let ok = |ns| label(ns).unwrap();
        assert_eq!(ok(3_600_000_000_000), "1h");
        assert_eq!(ok(90_000_000_000), "90s");
        assert_eq!(ok(5_400_000_000_000), "90m");
        assert_eq!(ok(86_400_000_000_000), "1d");
        assert_eq!(ok(1_209_600_000_000_000), "2w");
        assert_eq!(ok(1_500_000_000), "1500ms");
        assert!(label(0).is_err() && label(-5).is_err() && label(1_500_000).is_err());
        for ns in [1_000_000i64, 61_000, 7_000_000_000_000] {
            if let Ok(l) = label(ns) {
                assert_eq!(crate::duration::parse_duration_ns(&l).unwrap(), ns);
            }
        }
    }

    #[test]
    fn rollups_parse_as_users_write_them() {
        let hour = 3_600_000_000_000;
        let r: RollupConfig = "1h:avg+max:365d".parse().unwrap();
        assert_eq!(r.window_ns, hour);
        assert_eq!(r.functions, [AggFn::Avg, AggFn::Max]);
        assert_eq!(r.keep, Keep::Span(365 * 24 * hour));
        let r: RollupConfig = "1m".parse().unwrap();
        assert!(r.functions.is_empty());
        assert_eq!(r.keep, Keep::Span(7 * 24 * hour));
        let r: RollupConfig = "2w".parse().unwrap();
        assert_eq!(r.keep, Keep::Span(2 * 7 * 24 * hour));
        let r = RollupConfig::parse("1d", Some("min, max"), None, Some(9)).unwrap();
        assert!(RollupConfig::parse("1d", None, None, Some(0)).is_err());
        assert_eq!((r.functions.len(), r.keep), (2, Keep::Blocks(9)));
        let err = |t: &str| t.parse::<RollupConfig>().unwrap_err().to_string();
        assert!(
            err("hourly").contains("rollup: window"),
            "{}",
            err("hourly")
        );
        assert!(err("1h:median").contains("'median'"));
        assert!(err("1h::soon").contains("keep"));
        assert!(err("1h:avg+avg").contains("twice"));
        let both = RollupConfig::parse("1h", None, Some("1d"), Some(4)).unwrap_err();
        assert!(both.to_string().contains("not both"));
    }

    #[test]
    fn a_ring_reaches_back_as_far_as_its_rows() {
        let hour = 3_600_000_000_000;
        let r: RollupConfig = "1h::365d".parse().unwrap();
        let blocks = r.blocks(4096, Some(100));
        let (rows, span) = r.reach(blocks, 4096, Some(100));
        assert!(rows >= 365 * 24 && span >= 365 * 24 * hour, "{rows} {span}");
        assert!(span < 366 * 24 * hour + 32 * hour);
        assert_eq!(r.estimated_row_bytes(60), 48 + 3 * 4 * 32);
    }

    #[test]
    fn a_span_sizes_the_ring() {
        let hour = 3_600_000_000_000;
        let year = RollupConfig {
            window_ns: hour,
            functions: vec![],
            keep: Keep::Span(365 * 24 * hour),
        };
        // 8 761 rows of 100 + 24 bytes, 32 to a 4 KiB block: 274 blocks + 1.
        assert_eq!(year.blocks(4096, Some(100)), 275);
        let tiny = RollupConfig {
            keep: Keep::Blocks(1),
            ..year.clone()
        };
        assert_eq!(tiny.blocks(4096, None), MIN_ROLLUP_BLOCKS);
        let short = RollupConfig {
            keep: Keep::Span(hour / 2),
            ..year
        };
        assert_eq!(short.blocks(4096, None), MIN_ROLLUP_BLOCKS);
    }
}
