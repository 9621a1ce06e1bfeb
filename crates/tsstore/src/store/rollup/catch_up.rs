//! Writing rollups: the job that adds raw records to each rollup's open
//! window as they come (`Feed`) and writes the windows they close.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Rollup, RollupConfig, Shared, row};
use crate::aggregate::{AggSpec, Aggregator, RecordFields, Window};
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
/// closed, reading and parsing each raw record once for all of them;
/// then sets when the next insert should wake the job.
pub(super) fn all(shared: &Shared, core: &Core) -> Result<()> {
    shared.unfed.store(0, Ordering::Relaxed);
    let list = read_lock(&shared.list).clone();
    let Some(newest) = core.newest_timestamp() else {
        // Raw is empty: its first insert wakes the job.
        shared.wake_at.store(i64::MIN, Ordering::Relaxed);
        return Ok(());
    };
    // Every writer of a rollup takes these in the list's order.
    let _writing: Vec<_> = list.iter().map(|r| mutex_lock(&r.writing)).collect();
    let rings: Vec<_> = list.iter().map(|r| read_lock(&r.ring)).collect();
    let mut lanes = Vec::new();
    let mut wake_at = i64::MAX;
    for (rollup, ring) in list.iter().zip(&rings) {
        wake_at = wake_at.min(rollup.window_start(newest).saturating_add(rollup.window_ns));
        let Some(ring) = ring.as_ref() else { continue };
        match Lane::new(rollup, ring, core, newest) {
            Ok(Some(lane)) => lanes.push(lane),
            Ok(None) => {}
            Err(e) => *mutex_lock(&rollup.fault) = Some(e.to_string()),
        }
    }
    let mut out = read_into(&mut lanes, core, newest);
    for lane in lanes {
        let done = lane.finish();
        *mutex_lock(&done.0.fault) = done.1.as_ref().err().map(ToString::to_string);
        out = out.and(done.1);
    }
    shared.wake_at.store(wake_at, Ordering::Relaxed);
    out
}

/// Reads raw from the earliest record a lane lacks to `newest`, once,
/// adding each record to every lane that lacks it.
fn read_into(lanes: &mut [Lane<'_>], core: &Core, newest: i64) -> Result<()> {
    let Some(from) = lanes.iter().map(|l| l.feed.next).min() else {
        return Ok(());
    };
    let mut fields = RecordFields::default();
    let mut records = core.records(from, newest, false);
    while let Some(rec) = records.next_ref() {
        let rec = rec?;
        let ts = rec.handle.timestamp;
        let data = core.expand(rec.data);
        fields.parse(&data);
        for lane in lanes.iter_mut() {
            lane.add(ts, &data, &fields);
        }
    }
    Ok(())
}

/// One rollup's part of a round: its feed (a copy: reads clone the one in
/// `Progress` meanwhile), and the rows it makes, written 256 at a time.
struct Lane<'a> {
    rollup: &'a Rollup,
    ring: &'a crate::Store,
    feed: Feed,
    rows: Vec<(Option<i64>, Vec<u8>)>,
    spare: Vec<Vec<u8>>,
    /// The first failure writing rows; the lane adds nothing after it.
    failed: Result<()>,
}

impl<'a> Lane<'a> {
    /// `None` when the rollup has every record already.
    fn new(
        rollup: &'a Rollup,
        ring: &'a crate::Store,
        core: &Core,
        newest: i64,
    ) -> Result<Option<Lane<'a>>> {
        let (done, feed) = {
            let progress = mutex_lock(&rollup.progress);
            (progress.done_to, progress.feed.clone())
        };
        let mut feed = match feed {
            Some(feed) => feed,
            None => Feed::start(rollup, core, done)?,
        };
        if feed.next > newest {
            return Ok(None);
        }
        if feed.next > done
            && let Some(oldest) = core.oldest_timestamp()?
            && oldest > feed.next
        {
            // The ring wrapped past records this feed never saw.
            feed.agg.lost_before(oldest);
        }
        Ok(Some(Lane {
            rollup,
            ring,
            feed,
            rows: Vec::with_capacity(ROWS_PER_WRITE),
            spare: Vec::new(),
            failed: Ok(()),
        }))
    }

    fn add(&mut self, ts: i64, record: &[u8], fields: &RecordFields) {
        if self.failed.is_err() {
            return;
        }
        let Some(window) = self.feed.add_record(ts, record, fields) else {
            return;
        };
        let mut bytes = self.spare.pop().unwrap_or_default();
        row::encode(&window, &mut bytes);
        self.rows.push((Some(window.end), bytes));
        if self.rows.len() == ROWS_PER_WRITE {
            self.failed = self.flush();
        }
    }

    /// Writes the rows made so far; `done_to` moves past them.
    fn flush(&mut self) -> Result<()> {
        let Some(&(Some(last), _)) = self.rows.last() else {
            return Ok(());
        };
        (self.ring).put_many(self.rows.iter().map(|(ts, r)| (*ts, &r[..])))?;
        mutex_lock(&self.rollup.progress).done_to = last;
        self.spare.extend(self.rows.drain(..).map(|(_, r)| r));
        Ok(())
    }

    /// Writes what is left and keeps the feed for the next round (or, after
    /// a failure, drops it: the next round starts again from the rows).
    fn finish(mut self) -> (&'a Rollup, Result<()>) {
        let out = std::mem::replace(&mut self.failed, Ok(())).and_then(|()| self.flush());
        let mut progress = mutex_lock(&self.rollup.progress);
        if out.is_ok() {
            progress.done_to = progress.done_to.max(self.feed.open_from(self.rollup));
            progress.feed = Some(self.feed);
        } else {
            progress.feed = None;
        }
        (self.rollup, out)
    }
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
        let mut fields = RecordFields::default();
        let mut records = core.records(self.next, to, false);
        while let Some(rec) = records.next_ref() {
            let rec = rec?;
            let data = core.expand(rec.data);
            fields.parse(&data);
            if let Some(window) = self.add_record(rec.handle.timestamp, &data, &fields) {
                emit(window)?;
            }
        }
        Ok(())
    }

    /// Adds one raw record, parsed into `fields`, unless the feed has it
    /// already; the window it closes, if any.
    fn add_record(&mut self, ts: i64, record: &[u8], fields: &RecordFields) -> Option<Window> {
        if ts < self.next {
            return None;
        }
        self.next = ts.saturating_add(1);
        self.agg.add_fields(ts, record, fields)
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

/// Windows starting before this may lack records: raw's oldest, when raw
/// may have dropped records from `from` on that no feed saw.
fn covered_from(core: &Core, from: i64) -> Result<i64> {
    let Some(oldest) = core.oldest_timestamp()? else {
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
