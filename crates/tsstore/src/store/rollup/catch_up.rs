//! Writing rollups: the job that adds raw records to each rollup's open
//! window as they come (`Feed`) and writes the windows they close.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Rollup, RollupConfig, Shared, row};
use crate::aggregate::{AggSpec, Aggregator, Window};
use crate::background::Job;
use crate::error::Result;
use crate::lock::{mutex_lock, read_lock};
use crate::store::Core;

/// Rows written to a rollup ring in one insert.
const ROWS_PER_WRITE: usize = 256;

/// After a failed round (a full disk, say), the next try.
const RETRY: Duration = Duration::from_secs(5);

/// The store's rollup job: woken by an insert that closes a window, and
/// by every eighth of raw's capacity inserted (`Shared::unfed`), so that
/// raw does not wrap past records a feed has not seen.
pub(super) struct CatchUp {
    pub(super) shared: Arc<Shared>,
    pub(super) core: Core,
}

impl Job for CatchUp {
    fn run(&self) -> Option<Duration> {
        all(&self.shared, &self.core).err().map(|_| RETRY)
    }
}

/// Feeds every rollup what raw has now and writes the windows that
/// closed; then sets when the next insert should wake the job.
pub(super) fn all(shared: &Shared, core: &Core) -> Result<()> {
    shared.unfed.store(0, Ordering::Relaxed);
    let list = read_lock(&shared.list).clone();
    let mut out = Ok(());
    let mut wake_at = i64::MAX;
    for rollup in list {
        let done = one(&rollup, core);
        *mutex_lock(&rollup.fault) = done.as_ref().err().map(ToString::to_string);
        match done {
            Ok(Some(next)) => wake_at = wake_at.min(next),
            // Raw is empty: its first insert wakes the job.
            Ok(None) => wake_at = i64::MIN,
            Err(e) => out = out.and(Err(e)),
        }
    }
    shared.wake_at.store(wake_at, Ordering::Relaxed);
    out
}

/// Adds the raw records `rollup` has not seen to its feed, and writes the
/// windows they close. Returns the timestamp that closes its next window
/// (`None`: raw is empty).
fn one(rollup: &Rollup, core: &Core) -> Result<Option<i64>> {
    let _writing = mutex_lock(&rollup.writing);
    let Some(newest) = core.newest_timestamp() else {
        return Ok(None);
    };
    let next_close = rollup.window_start(newest).saturating_add(rollup.window_ns);
    let (done, feed) = {
        let progress = mutex_lock(&rollup.progress);
        (progress.done_to, progress.feed.clone())
    };
    // Reads clone the feed meanwhile: this round works on its own copy.
    let mut feed = match feed {
        Some(feed) => feed,
        None => Feed::start(rollup, core, done)?,
    };
    if feed.next > newest {
        return Ok(Some(next_close));
    }
    if feed.next > done
        && let Some(oldest) = oldest(core)?
        && oldest > feed.next
    {
        // The ring wrapped past records this feed never saw.
        feed.agg.lost_before(oldest);
    }
    let ring = read_lock(&rollup.ring);
    let Some(ring) = ring.as_ref() else {
        return Ok(Some(next_close));
    };
    let mut rows: Vec<(Option<i64>, Vec<u8>)> = Vec::with_capacity(ROWS_PER_WRITE);
    let mut spare: Vec<Vec<u8>> = Vec::new();
    let flush = |rows: &mut Vec<(Option<i64>, Vec<u8>)>, spare: &mut Vec<Vec<u8>>| {
        let Some(&(Some(last), _)) = rows.last() else {
            return Ok(());
        };
        ring.put_many(rows.iter().map(|(ts, r)| (*ts, &r[..])))?;
        mutex_lock(&rollup.progress).done_to = last;
        spare.extend(rows.drain(..).map(|(_, r)| r));
        Ok::<(), crate::Error>(())
    };
    feed.add(core, newest, |window| {
        let mut bytes = spare.pop().unwrap_or_default();
        row::encode(&window, &mut bytes);
        rows.push((Some(window.end), bytes));
        if rows.len() == ROWS_PER_WRITE {
            flush(&mut rows, &mut spare)?;
        }
        Ok(())
    })?;
    flush(&mut rows, &mut spare)?;
    let mut progress = mutex_lock(&rollup.progress);
    progress.done_to = progress.done_to.max(feed.open_from(rollup));
    progress.feed = Some(feed);
    Ok(Some(next_close))
}

/// A rollup's place in raw: the aggregator holding its open window, and
/// the first timestamp it has not seen. Kept in memory only: after a
/// restart it starts again from the last row, reading raw.
#[derive(Debug, Clone)]
pub(super) struct Feed {
    agg: Aggregator,
    next: i64,
}

impl Feed {
    /// A feed that starts at `done` (the end of the last row written).
    pub(super) fn start(rollup: &Rollup, core: &Core, done: i64) -> Result<Feed> {
        let agg = Aggregator::new(rollup.spec.clone()).covered_from(covered_from(core, done)?);
        Ok(Feed { agg, next: done })
    }

    /// Adds the raw records from `next` to `to` (inclusive), handing out
    /// the windows they close.
    pub(super) fn add(
        &mut self,
        core: &Core,
        to: i64,
        mut emit: impl FnMut(Window) -> Result<()>,
    ) -> Result<()> {
        let mut records = core.records(self.next, to, false);
        while let Some(rec) = records.next_ref() {
            let rec = rec?;
            let ts = rec.handle.timestamp;
            self.next = ts.saturating_add(1);
            let data = core.expand(rec.data);
            if let Some(window) = self.agg.add(ts, &data) {
                emit(window)?;
            }
        }
        Ok(())
    }

    /// Start of the window still open: every window before it was handed
    /// out.
    fn open_from(&self, rollup: &Rollup) -> i64 {
        match self.next {
            i64::MIN => i64::MIN,
            next => rollup.window_start(next - 1),
        }
    }

    /// The open window so far; partial unless raw has reached its end.
    pub(super) fn finish(mut self, core: &Core) -> Option<Window> {
        let reached = core.newest_timestamp().unwrap_or(i64::MIN);
        self.agg.finish(reached)
    }
}

/// Raw's oldest record's timestamp.
fn oldest(core: &Core) -> Result<Option<i64>> {
    Ok(core
        .records(i64::MIN, i64::MAX, false)
        .with_data(false)
        .next()
        .transpose()?
        .map(|r| r.timestamp()))
}

/// Windows starting before this may lack records: raw's oldest, when raw
/// may have dropped records from `from` on that no feed saw.
fn covered_from(core: &Core, from: i64) -> Result<i64> {
    let Some(oldest) = oldest(core)? else {
        return Ok(i64::MIN);
    };
    if from >= oldest {
        return Ok(i64::MIN);
    }
    // Rows end at `from`: raw dropped whatever lay between. With no rows,
    // only a ring that filled can have dropped anything.
    let stats = core.main.stats();
    let filled = stats.active_blocks >= stats.num_blocks;
    Ok(if filled || from != i64::MIN {
        oldest
    } else {
        i64::MIN
    })
}

/// What one row of `config` is expected to take, from the store's newest
/// record (`None`: the store is empty).
pub(super) fn row_bytes(core: &Core, config: &RollupConfig) -> Option<u64> {
    let newest = core.records(i64::MIN, i64::MAX, true).next()?.ok()?;
    let functions = config.checked_functions().ok()?;
    let spec = AggSpec::with_default(config.window_ns, functions);
    let data = core.expand(&newest.data);
    let mut agg = Aggregator::new(spec);
    agg.add(newest.timestamp(), &data);
    let window = agg.flush()?;
    // An average has more digits than one reading: allow for them.
    let values = window.data.iter().filter(|&&b| b == b':').count() as u64;
    Some(window.data.len() as u64 + 48 + 8 * values)
}
