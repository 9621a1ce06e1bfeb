//! Writing rollups: the job that adds raw records to each rollup's open
//! window as they come (`Feed`) and writes the windows they close.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::handoff::Handed;
use super::{Rollup, RollupConfig, Shared, row};
use crate::aggregate::{AggSpec, Aggregator, ChainMap, RecordFields, Window};
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
    // Raw's oldest record, read once a round if a lane asks (it reads a
    // block).
    let mut oldest = None;
    for (rollup, ring) in list.iter().zip(&rings) {
        wake_at = wake_at.min(rollup.window_start(newest).saturating_add(rollup.window_ns));
        let Some(ring) = ring.as_ref() else { continue };
        match Lane::new(rollup, ring, core, newest, &mut oldest) {
            Ok(Some(lane)) => lanes.push(lane),
            Ok(None) => {}
            Err(e) => *mutex_lock(&rollup.fault) = Some(e.to_string()),
        }
    }
    chain(&mut lanes);
    let handed = mutex_lock(&shared.handoff).take();
    let mut out = read_into(&mut lanes, core, newest, &handed);
    let limit = shared.handoff_limit();
    let mut handoff = mutex_lock(&shared.handoff);
    for h in handed {
        handoff.recycle(h.batch, limit);
    }
    drop(handoff);
    let whole = settle(&lanes);
    let parents: Vec<_> = lanes
        .iter()
        .map(|l| l.parent.map(|p| lanes[p].feed.generation))
        .collect();
    for ((lane, whole), parent) in lanes.into_iter().zip(whole).zip(parents) {
        let done = lane.finish(whole, parent);
        *mutex_lock(&done.0.fault) = done.1.as_ref().err().map(ToString::to_string);
        out = out.and(done.1);
    }
    shared.wake_at.store(wake_at, Ordering::Relaxed);
    out
}

/// Adds raw's records from the earliest one a lane lacks to `newest`,
/// once, to every lane that lacks each: from the batches inserts handed
/// (`handoff`) where they say they hold raw's records, read back from
/// raw (and parsed) everywhere else.
fn read_into(lanes: &mut [Lane<'_>], core: &Core, newest: i64, handed: &[Handed]) -> Result<()> {
    let Some(mut next) = lanes.iter().map(|l| l.feed.next).min() else {
        return Ok(());
    };
    let mut fields = RecordFields::default();
    for h in handed {
        if h.last() < next {
            continue;
        }
        // Raw holds no record between `after` and the batch's first.
        if h.after >= next {
            read_back(core, (next, h.after), &mut fields, |ts, record, parsed| {
                add_to_all(lanes, ts, record, parsed);
                Ok(())
            })?;
        }
        h.batch.records.for_each(|i, record, parsed| {
            add_to_all(lanes, h.batch.stamps[i], record, parsed);
        });
        next = h.last().saturating_add(1);
    }
    if next <= newest {
        read_back(core, (next, newest), &mut fields, |ts, record, parsed| {
            add_to_all(lanes, ts, record, parsed);
            Ok(())
        })?;
    }
    Ok(())
}

/// Reads raw's records in `from..=to` back and parses them (into
/// `fields`, reused), calling `f` with each: the one read-back loop of
/// the job and of reads of the open window.
fn read_back(
    core: &Core,
    (from, to): (i64, i64),
    fields: &mut RecordFields,
    mut f: impl FnMut(i64, &[u8], &RecordFields) -> Result<()>,
) -> Result<()> {
    let mut records = core.records(from, to, false);
    while let Some(rec) = records.next_ref() {
        let rec = rec?;
        let data = core.expand(rec.data);
        fields.parse(&data);
        f(rec.handle.timestamp, &data, fields)?;
    }
    Ok(())
}

/// Adds one record to every lane that lacks it, finest first.
fn add_to_all(lanes: &mut [Lane<'_>], ts: i64, record: &[u8], fields: &RecordFields) {
    for i in 0..lanes.len() {
        let (finer, rest) = lanes.split_at_mut(i);
        let lane = &mut rest[0];
        let parent = lane.parent.map(|p| &finer[p]);
        lane.add(ts, record, fields, parent);
    }
}

/// Gives each lane the coarsest finer lane whose windows divide its own
/// (the list is sorted finest first), to be fed from (`aggregate::chain`),
/// and goes on feeding it so if the last round did and both feeds are
/// where that round left them.
fn chain(lanes: &mut [Lane<'_>]) {
    for i in 0..lanes.len() {
        let w = lanes[i].rollup.window_ns;
        let parent = (0..i).rev().find(|&j| {
            let v = lanes[j].rollup.window_ns;
            v < w && w % v == 0
        });
        lanes[i].parent = parent;
        let chained = lanes[i].chained.take();
        let Some(p) = parent else { continue };
        lanes[p].feed.agg.keep_closed();
        let finer = &lanes[p].feed;
        if let Some(c) = chained
            && c.parent == finer.generation
            && c.feed.next == finer.next
            && c.feed.next == lanes[i].feed.next
        {
            lanes[i].feed = c.feed;
            lanes[i].mode = Mode::Chained;
        }
    }
}

/// What each lane's feed holds with its parent's open window added
/// (finest first, so a grandparent's reaches it through its parent): for
/// a chained lane, a feed that holds every record it was given, as one
/// given them one by one does, for reads and for a round that cannot
/// chain it. `None` for the others, whose feeds are that already.
fn settle(lanes: &[Lane<'_>]) -> Vec<Option<Feed>> {
    let mut whole: Vec<Option<Feed>> = Vec::with_capacity(lanes.len());
    for lane in lanes {
        let settled = match (lane.parent, lane.mode) {
            (Some(p), Mode::Chained) => {
                let finer = whole[p].as_ref().unwrap_or(&lanes[p].feed);
                let mut feed = lane.feed.clone();
                let mut map = lane.map.clone();
                feed.agg.merge_open(&finer.agg, &mut map);
                Some(feed)
            }
            _ => None,
        };
        whole.push(settled);
    }
    whole
}

/// A feed fed from a finer rollup's windows, as the job keeps it between
/// rounds: it lacks the finer feed's open window, and goes on only while
/// that feed (`parent`, its `generation`) is where it was.
#[derive(Debug, Clone)]
pub(super) struct Chained {
    feed: Feed,
    parent: u64,
}

/// How a lane takes records.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Each record whole.
    Direct,
    /// Its parent's windows, and each record's float sums: from a record
    /// that opened one of the parent's windows (the lane had every record
    /// before it), and on in later rounds while both feeds go on.
    Chained,
    /// Its chained parent stopped (failed to write a row): this lane
    /// stops too, and starts again from its rows in the next round.
    Stopped,
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
    /// The lane it may be fed from (`chain`), an index into the round's
    /// lanes, finer and before it.
    parent: Option<usize>,
    mode: Mode,
    map: ChainMap,
    /// The timestamps of the last records that closed one of its windows
    /// and that opened one.
    closed_at: i64,
    opened_at: i64,
    /// The feed the last round kept for chaining (`chain` takes it).
    chained: Option<Chained>,
}

impl<'a> Lane<'a> {
    /// `None` when the rollup has every record already.
    fn new(
        rollup: &'a Rollup,
        ring: &'a crate::Store,
        core: &Core,
        newest: i64,
        oldest: &mut Option<Option<i64>>,
    ) -> Result<Option<Lane<'a>>> {
        let (done, feed, mut chained) = {
            let progress = mutex_lock(&rollup.progress);
            let chained = progress.chained.clone();
            (progress.done_to, progress.feed.clone(), chained)
        };
        let mut feed = match feed {
            Some(feed) => feed,
            None => Feed::start(rollup, core, done)?,
        };
        if feed.next > newest {
            return Ok(None);
        }
        if feed.next > done
            && let Some(oldest) = match *oldest {
                Some(known) => known,
                None => *oldest.insert(core.oldest_timestamp()?),
            }
            && oldest > feed.next
        {
            // The ring wrapped past records this feed never saw.
            feed.agg.lost_before(oldest);
            if let Some(c) = &mut chained {
                c.feed.agg.lost_before(oldest);
            }
        }
        Ok(Some(Lane {
            rollup,
            ring,
            feed,
            rows: Vec::with_capacity(ROWS_PER_WRITE),
            spare: Vec::new(),
            failed: Ok(()),
            parent: None,
            mode: Mode::Direct,
            map: ChainMap::default(),
            closed_at: i64::MIN,
            opened_at: i64::MIN,
            chained,
        }))
    }

    /// Adds one record (parsed into `fields`) unless the lane has it,
    /// straight or, once it can, through its parent (which took the
    /// record just before).
    fn add(&mut self, ts: i64, record: &[u8], fields: &RecordFields, parent: Option<&Lane<'_>>) {
        if self.failed.is_err() || self.mode == Mode::Stopped || ts < self.feed.next {
            return;
        }
        let (closes, open) = (self.feed.agg.closes(), self.feed.agg.open_window());
        let parent = parent.filter(|p| p.failed.is_ok() && p.mode != Mode::Stopped);
        let window = match (self.mode, parent) {
            (Mode::Chained, None) => {
                self.mode = Mode::Stopped;
                return;
            }
            (Mode::Chained, Some(p)) => {
                if p.closed_at == ts {
                    self.feed.agg.merge_closed(&p.feed.agg, &mut self.map);
                }
                self.take_through(ts, record, fields)
            }
            // It has every record before this one, which opens one of
            // its parent's windows: from here on the parent's windows
            // bring the rest.
            (Mode::Direct, Some(p)) if p.opened_at == ts => {
                self.mode = Mode::Chained;
                self.take_through(ts, record, fields)
            }
            _ => self.feed.add_record(ts, record, fields),
        };
        if self.feed.agg.closes() != closes {
            self.closed_at = ts;
        }
        if self.feed.agg.open_window() != open {
            self.opened_at = ts;
        }
        let Some(window) = window else {
            return;
        };
        let mut bytes = self.spare.pop().unwrap_or_default();
        row::encode(&window, &mut bytes);
        self.rows.push((Some(window.end), bytes));
        if self.rows.len() == ROWS_PER_WRITE {
            self.failed = self.flush();
        }
    }

    /// A record whose parent has it: its window, and its float sums.
    fn take_through(&mut self, ts: i64, record: &[u8], fields: &RecordFields) -> Option<Window> {
        self.feed.next = ts.saturating_add(1);
        let window = self.feed.agg.advance_to(ts);
        self.feed.agg.add_sums(fields, record);
        window
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
    /// `whole`: the feed with its parent's open window added, when the
    /// lane is chained to the parent whose feed is `parent`.
    fn finish(mut self, whole: Option<Feed>, parent: Option<u64>) -> (&'a Rollup, Result<()>) {
        let out = std::mem::replace(&mut self.failed, Ok(())).and_then(|()| self.flush());
        let mut progress = mutex_lock(&self.rollup.progress);
        progress.chained = None;
        if out.is_ok() && self.mode != Mode::Stopped {
            progress.done_to = progress.done_to.max(self.feed.open_from(self.rollup));
            match (whole, parent) {
                (Some(whole), Some(parent)) => {
                    progress.feed = Some(whole);
                    progress.chained = Some(Chained {
                        feed: self.feed,
                        parent,
                    });
                }
                _ => progress.feed = Some(self.feed),
            }
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
    /// Names this feed's line from its start, in every copy: a feed
    /// chained to it checks it goes on from the same one.
    generation: u64,
}

/// Feed generations are unique in the process.
static GENERATION: AtomicU64 = AtomicU64::new(1);

impl Feed {
    /// A feed that starts at `done` (the end of the last row written).
    pub(super) fn start(rollup: &Rollup, core: &Core, done: i64) -> Result<Feed> {
        let agg = Aggregator::new(rollup.spec.clone()).covered_from(covered_from(core, done)?);
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        Ok(Feed {
            agg,
            next: done,
            generation,
        })
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
        read_back(
            core,
            (self.next, to),
            &mut fields,
            |ts, record, parsed| match self.add_record(ts, record, parsed) {
                Some(window) => emit(window),
                None => Ok(()),
            },
        )
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
