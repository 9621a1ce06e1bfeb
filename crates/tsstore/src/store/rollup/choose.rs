//! `auto` resolution: the finest of raw and a store's rollups that shows
//! a time span within a point budget.

use super::{RollupInfo, window_label};
use crate::aggregate::window_start;

/// Which ring a read answers from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Raw,
    /// The rollup of this window (ns).
    Rollup(i64),
}

impl Resolution {
    /// `raw`, or the rollup's window as users write it (`1h`).
    pub fn label(self) -> String {
        match self {
            Resolution::Raw => "raw".to_string(),
            Resolution::Rollup(w) => window_label(w).unwrap_or_else(|_| format!("{w}ns")),
        }
    }
}

/// What the choice looks at: the raw ring's reach and how many records it
/// has in a span, and the rollups (finest first).
pub(crate) struct Candidates<'a> {
    pub raw_oldest: Option<i64>,
    pub newest: Option<i64>,
    pub rollups: &'a [RollupInfo],
}

/// Where a rollup's history begins: its oldest window's start, unless
/// raw's oldest record lies in that window (its data then begins there
/// too: nothing older is kept), or, with no row yet, raw's oldest record
/// (it is made from raw). So a rollup never seems to reach further back
/// than raw when it holds nothing older.
fn reach(r: &RollupInfo, raw_oldest: Option<i64>) -> Option<i64> {
    let Some(end) = r.oldest_timestamp else {
        return raw_oldest;
    };
    let start = end.saturating_sub(r.window_ns);
    Some(match raw_oldest {
        Some(raw) if (start..end).contains(&raw) => raw,
        _ => start,
    })
}

/// The finest ring that reaches back to the span's start (or as far as
/// any ring does) and shows `[start, end]` in at most `max_points`
/// points; when none fits, the coarsest that reaches. `raw_points(from,
/// to, n)` counts raw records in a span, stopping past `n`.
pub(crate) fn choose(
    c: &Candidates<'_>,
    (start, end): (i64, i64),
    max_points: usize,
    raw_points: impl FnOnce(i64, i64, usize) -> usize,
) -> Resolution {
    let Some(coarsest) = c.rollups.last() else {
        return Resolution::Raw;
    };
    let reaches = c.rollups.iter().filter_map(|r| reach(r, c.raw_oldest));
    let Some(earliest) = reaches.chain(c.raw_oldest).min() else {
        return Resolution::Raw;
    };
    let newest_row = c.rollups.iter().filter_map(|r| r.newest_timestamp).max();
    let Some(newest) = c.newest.or(newest_row) else {
        return Resolution::Raw;
    };
    let (from, to) = (start.max(earliest), end.min(newest));
    if from > to {
        return Resolution::Raw;
    }
    if c.raw_oldest.is_some_and(|o| o <= from) && raw_points(from, to, max_points) <= max_points {
        return Resolution::Raw;
    }
    let reaching = |r: &&RollupInfo| reach(r, c.raw_oldest).is_some_and(|at| at <= from);
    let points = |r: &RollupInfo| {
        let w = r.window_ns;
        let windows = (window_start(to, w) - window_start(from, w)) / w + 1;
        usize::try_from(windows).unwrap_or(usize::MAX)
    };
    c.rollups
        .iter()
        .filter(reaching)
        .find(|r| points(r) <= max_points)
        .or_else(|| c.rollups.iter().rfind(reaching))
        .map_or(Resolution::Rollup(coarsest.window_ns), |r| {
            Resolution::Rollup(r.window_ns)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000_000;

    fn info(window_ns: i64, oldest_end: Option<i64>) -> RollupInfo {
        RollupInfo {
            window: window_label(window_ns).unwrap(),
            window_ns,
            functions: Vec::new(),
            num_blocks: 4,
            capacity_bytes: 0,
            bytes_used: 0,
            oldest_timestamp: oldest_end,
            newest_timestamp: oldest_end.map(|_| 1000 * H),
            written_to: None,
            error: None,
        }
    }

    #[test]
    fn the_finest_ring_within_the_budget_that_reaches_back() {
        let rollups = [info(H, Some(500 * H)), info(24 * H, Some(24 * H))];
        let c = Candidates {
            raw_oldest: Some(990 * H),
            newest: Some(1000 * H),
            rollups: &rollups,
        };
        // Raw holds the last ten hours: 600 records fit a budget of 1000.
        let raw = |_, _, _| 600;
        assert_eq!(choose(&c, (995 * H, i64::MAX), 1000, raw), Resolution::Raw);
        assert_eq!(
            choose(&c, (995 * H, i64::MAX), 599, raw),
            Resolution::Rollup(H)
        );
        // Before raw's oldest: the hourly ring, 101 points.
        assert_eq!(
            choose(&c, (900 * H, 1000 * H), 101, raw),
            Resolution::Rollup(H)
        );
        assert_eq!(
            choose(&c, (900 * H, 1000 * H), 100, raw),
            Resolution::Rollup(24 * H)
        );
        // Before the hourly ring's oldest: the daily one, whatever fits.
        assert_eq!(
            choose(&c, (100 * H, 1000 * H), 1000, raw),
            Resolution::Rollup(24 * H)
        );
        // Everything (an open start): as far back as any ring reaches.
        assert_eq!(
            choose(&c, (0, i64::MAX), 3, raw),
            Resolution::Rollup(24 * H)
        );
        // Nothing fits: the coarsest that reaches.
        assert_eq!(
            choose(&c, (0, i64::MAX), 1, raw),
            Resolution::Rollup(24 * H)
        );
        let none = Candidates { rollups: &[], ..c };
        assert_eq!(choose(&none, (0, i64::MAX), 1, raw), Resolution::Raw);
        // A young store: its rollups hold nothing older than raw, whose
        // few records fit.
        let young = [info(H, Some(991 * H)), info(24 * H, None)];
        let c = Candidates {
            raw_oldest: Some(990 * H + 5),
            rollups: &young,
            ..c
        };
        assert_eq!(choose(&c, (0, i64::MAX), 1000, raw), Resolution::Raw);
        // Eleven hours from 990 h to 1000 h.
        assert_eq!(choose(&c, (0, i64::MAX), 11, raw), Resolution::Rollup(H));
        assert_eq!(
            choose(&c, (0, i64::MAX), 10, raw),
            Resolution::Rollup(24 * H)
        );
    }
}
