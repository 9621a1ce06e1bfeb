//! The store's rollup API: add, remove and list rollups, and read windows
//! at a rollup's resolution. The rings and the job are `rollup`'s.

use super::Store;
use super::rollup::{Batch, Candidates, Resolution, RollupConfig, RollupInfo, Rollups, choose};
use super::write::record_bytes;
use crate::aggregate::Window;
use crate::error::Result;
use crate::record::ObjectHandle;

impl Store {
    /// Adds a rollup: a ring in the store's directory that keeps one row
    /// per window of `config.window_ns`, written in the background as
    /// windows close, starting with every window of the records the
    /// store holds now. The ring's size is fixed here (`config.keep`).
    ///
    /// ```
    /// use tsstore::{Config, Keep, RollupConfig, Store};
    ///
    /// # fn main() -> tsstore::Result<()> {
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::create(dir.path(), "s", Config::default())?;
    /// let minute = 60_000_000_000;
    /// store.add_rollup(&RollupConfig {
    ///     window_ns: minute,
    ///     functions: vec![],
    ///     keep: Keep::Span(7 * 24 * 60 * minute),
    /// })?;
    /// store.put(10 * minute + 1, br#"{"t":20}"#)?;
    /// store.put(10 * minute + 2, br#"{"t":22}"#)?;
    /// store.put(11 * minute, br#"{"t":30}"#)?;
    /// let windows = store.rollup_windows(minute, 0, i64::MAX, 10)?;
    /// assert_eq!(windows[0].end, 11 * minute);
    /// assert_eq!(windows[0].data, br#"{"t_avg":21.0,"t_min":20,"t_max":22,"t_count":2}"#);
    /// assert!(windows[1].partial); // the minute still open
    /// # Ok(())
    /// # }
    /// ```
    pub fn add_rollup(&self, config: &RollupConfig) -> Result<RollupInfo> {
        self.rollups.add(config, &self.core)
    }

    /// The blocks `add_rollup(config)` would give its ring now (`keep`
    /// at the size of a row made from the newest record): for checking
    /// the room before adding it.
    pub fn rollup_blocks(&self, config: &RollupConfig) -> u32 {
        Rollups::blocks(config, &self.core)
    }

    /// Removes the rollup of `window_ns` windows and its ring.
    pub fn remove_rollup(&self, window_ns: i64) -> Result<()> {
        self.rollups.remove(window_ns)
    }

    /// The store's rollups, finest first.
    pub fn rollups(&self) -> Vec<RollupInfo> {
        self.rollups.infos()
    }

    /// The windows of the rollup of `window_ns` that overlap `[start,
    /// end]`, oldest first, at most `limit`: its rows, then, past the
    /// last row written, windows aggregated from the raw records (the
    /// newest of them partial while it is open). Each is what a windowed
    /// aggregation of the same raw records gives.
    pub fn rollup_windows(
        &self,
        window_ns: i64,
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Window>> {
        self.rollups
            .windows(window_ns, &self.core, (start, end), limit, false)
    }

    /// `rollup_windows`, newest first: the newest `limit` windows.
    pub fn rollup_windows_rev(
        &self,
        window_ns: i64,
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Window>> {
        self.rollups
            .windows(window_ns, &self.core, (start, end), limit, true)
    }

    /// The ring a read of `[start, end]` shown in at most `max_points`
    /// points should answer from: the finest of raw and the rollups that
    /// reaches back to `start` (or as far as any ring does) within the
    /// budget; when none fits, the coarsest that reaches.
    pub fn choose_resolution(&self, start: i64, end: i64, max_points: usize) -> Resolution {
        let rollups = self.rollups();
        let candidates = Candidates {
            // A damaged oldest record: judged as if raw were empty.
            raw_oldest: self.core.oldest_timestamp().ok().flatten(),
            newest: self.newest_timestamp(),
            rollups: &rollups,
        };
        choose(&candidates, (start, end), max_points, |from, to, n| {
            self.iter_range(from, to)
                .with_data(false)
                .limit(n + 1)
                .count()
        })
    }

    /// `put_many` in a store with rollups: the records into raw in parts
    /// of at most `limit` bytes (a quarter of the raw ring), each after
    /// the rollups have room (`Rollups::make_room`), so raw never wraps
    /// past records a rollup has not seen. A batch that fits in one part
    /// is one insert; a larger one is checked whole first, so bad input
    /// still changes nothing, but a failure while writing (a full disk, a
    /// concurrent insert stamped after it) can leave its first parts in.
    pub(super) fn put_many_in_parts<I, B>(&self, items: I, limit: u64) -> Result<Vec<ObjectHandle>>
    where
        I: IntoIterator<Item = (Option<i64>, B)>,
        B: AsRef<[u8]>,
    {
        let items: Vec<(Option<i64>, B)> = items.into_iter().collect();
        let size = |(_, p): &(Option<i64>, B)| record_bytes(p.as_ref());
        let total: u64 = items.iter().map(size).sum();
        if total > limit {
            self.check_batch(&items)?;
        }
        let mut handles = Vec::with_capacity(items.len());
        let mut rest = &items[..];
        while !rest.is_empty() {
            let (mut n, mut bytes) = (0, 0);
            while n < rest.len() && (n == 0 || bytes + size(&rest[n]) <= limit) {
                bytes += size(&rest[n]);
                n += 1;
            }
            let (part, after) = rest.split_at(n);
            self.rollups.make_room(&self.core, bytes);
            let written = match self.rollups.handing(&self.core, bytes) {
                Some((epoch, batch)) => self.put_many_handing(part, epoch, batch)?,
                None => self.put_many_whole(part.iter().map(|(t, p)| (*t, p.as_ref())))?,
            };
            if let Some(last) = written.last() {
                self.rollups.wrote(last.timestamp, bytes);
            }
            handles.extend(written);
            rest = after;
        }
        Ok(handles)
    }

    /// `put_many_whole` into a plain JSON store whose inserts hand their
    /// records to the rollups' job: each payload's check is its parse
    /// (`ParsedRecords::push`) when the scanner reads it whole, and the
    /// parsed batch goes to the job (`Rollups::hand`) with the raw record
    /// it follows. One the scanner cannot read is checked as usual, and
    /// then the batch is not handed: the job reads it back.
    fn put_many_handing<B: AsRef<[u8]>>(
        &self,
        part: &[(Option<i64>, B)],
        epoch: u64,
        mut batch: Batch,
    ) -> Result<Vec<ObjectHandle>> {
        let max = self.max_object_size();
        let text = part.iter().map(|(_, p)| p.as_ref().len()).sum();
        batch.records.reserve(part.len(), text);
        batch.stamps.reserve(part.len());
        let mut whole = true;
        for (ts, p) in part {
            if let Some(ts) = *ts {
                self.check_future(ts)?;
            }
            let p = p.as_ref();
            whole = whole && p.len() as u64 <= max && batch.records.push(p);
            if !whole {
                self.check(p)?;
            }
        }
        let items = part.iter().map(|(t, p)| (*t, p.as_ref()));
        let (after, handles) = self.core.main.put_many_after(items)?;
        if whole {
            batch.stamps.extend(handles.iter().map(|h| h.timestamp));
            self.rollups.hand(epoch, after, batch);
        }
        Ok(handles)
    }

    /// Writes every closed window of every rollup now, on this thread
    /// (the background job does the same when a window closes): for
    /// tests and benches that look at the rings themselves.
    pub fn catch_up_rollups(&self) -> Result<()> {
        self.rollups.catch_up(&self.core)
    }
}
