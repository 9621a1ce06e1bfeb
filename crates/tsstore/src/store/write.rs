//! The store's modifications: every payload is checked here (data type,
//! schema, size, the future guard) before it goes to the main ring or the
//! compressed store, which do the writing.

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use super::Store;
use crate::compressed::Compressed;
use crate::error::{Error, Result};
use crate::format::DataType;
use crate::record::ObjectHandle;

/// What a record takes in a ring: its payload and its object header (what
/// rollups count to know how far raw is ahead of them).
pub(super) fn record_bytes(payload: &[u8]) -> u64 {
    payload.len() as u64 + crate::format::OBJECT_HEADER_SIZE as u64
}

impl Store {
    /// Checks `payload` against the data type (schema stores: validates
    /// and compacts it) and the object size limit; returns what to store.
    fn check_payload<'a>(&self, payload: &'a [u8]) -> Result<Cow<'a, [u8]>> {
        // Only a schema store's check needs it (and the Arc it costs).
        let schema = match self.data_type() {
            DataType::Schema => self.core.schema.current(),
            _ => None,
        };
        let max = self.max_object_size();
        crate::payload::check(self.data_type(), schema.as_deref(), max, payload)
    }

    /// Checks every payload, then inserts them into a compressed store. A
    /// JSON payload is checked and split into its columns in one pass
    /// when the fast check is sure of it (`Intake::add_json`).
    fn put_compressed<I, B>(&self, c: &Compressed, items: I) -> Result<Vec<ObjectHandle>>
    where
        I: IntoIterator<Item = (Option<i64>, B)>,
        B: AsRef<[u8]>,
    {
        let items = items.into_iter();
        let mut intake = c.intake();
        intake.expect(items.size_hint().0);
        let json = self.data_type() == DataType::Json;
        let max = self.max_object_size();
        for (ts, p) in items {
            if let Some(ts) = ts {
                self.check_future(ts)?;
            }
            let p = p.as_ref();
            if json && p.len() as u64 <= max && intake.add_json(ts, p) {
                continue;
            }
            intake.add(ts, &self.check_payload(p)?);
        }
        self.check_compressed_writable()?;
        c.put(intake)
    }

    /// A write to a compressed store goes to its staging ring, which
    /// reports its own flusher's failure; the frames' ring's is reported
    /// here, so a full disk found by either reaches the writer.
    fn check_compressed_writable(&self) -> Result<()> {
        self.core.main.check_writable()?;
        self.core.main.report_flush_fault()
    }

    /// Refuses timestamps further ahead of the wall clock than
    /// `max_future_skew` (none or zero: off). A timestamp the caller gave
    /// is checked here, before the writer lock and the order check, so a
    /// far-future timestamp is reported as such even when it is also out
    /// of order; server-stamped ones (`put_now`, `None` in a batch) never
    /// are, since the store picks them itself.
    ///
    /// A store that once took a far-future timestamp stamps every later
    /// `put_now` after it (`max(now, newest + 1)`); `truncate_after`
    /// rewinds it.
    pub fn set_max_future_skew(&self, skew: Option<std::time::Duration>) {
        let ns = skew.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        self.max_future_skew.store(ns, Ordering::Relaxed);
    }

    /// The guard `set_max_future_skew` set (`None`: off, the default).
    pub fn max_future_skew(&self) -> Option<std::time::Duration> {
        match self.max_future_skew.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(std::time::Duration::from_nanos(ns as u64)),
        }
    }

    /// `Error::TimestampInFuture` if the guard is on and `timestamp` is
    /// past it.
    pub(super) fn check_future(&self, timestamp: i64) -> Result<()> {
        let max_skew_ns = self.max_future_skew.load(Ordering::Relaxed);
        if max_skew_ns <= 0 {
            return Ok(());
        }
        let now = crate::time::now_ns();
        if timestamp > now.saturating_add(max_skew_ns) {
            return Err(Error::TimestampInFuture {
                timestamp,
                now,
                max_skew_ns,
            });
        }
        Ok(())
    }

    /// Checks `payload` as `put` would (data type, schema, size) without
    /// writing anything: for validating a whole import before any of it
    /// goes in.
    pub fn check(&self, payload: &[u8]) -> Result<()> {
        self.check_payload(payload).map(drop)
    }

    /// Inserts `payload` at `timestamp`, which must be after every stored one.
    pub fn put(&self, timestamp: i64, payload: &[u8]) -> Result<ObjectHandle> {
        self.check_future(timestamp)?;
        let payload = self.check_payload(payload)?;
        let bytes = record_bytes(&payload);
        self.rollups.make_room(&self.core, bytes);
        let handle = match &self.core.compressed {
            Some(c) => {
                self.check_compressed_writable()?;
                c.put_one(Some(timestamp), &payload)
            }
            None => self.core.main.put(timestamp, &payload),
        }?;
        self.rollups.wrote(handle.timestamp, bytes);
        Ok(handle)
    }

    /// Inserts at `max(now, newest + 1)`, so it never collides or goes back.
    pub fn put_now(&self, payload: &[u8]) -> Result<ObjectHandle> {
        let payload = self.check_payload(payload)?;
        let bytes = record_bytes(&payload);
        self.rollups.make_room(&self.core, bytes);
        let handle = match &self.core.compressed {
            Some(c) => {
                self.check_compressed_writable()?;
                c.put_one(None, &payload)
            }
            None => self.core.main.put_now(&payload),
        }?;
        self.rollups.wrote(handle.timestamp, bytes);
        Ok(handle)
    }

    /// Inserts a batch under one lock, each touched block written once.
    /// Every payload and timestamp is checked before anything is written
    /// (all or nothing); entries without a timestamp get
    /// `max(now, previous + 1)`. In a store with rollups, a batch larger
    /// than a quarter of the raw ring is written in parts, the rollups fed
    /// between them (`put_many_in_parts`).
    pub fn put_many<I, B>(&self, items: I) -> Result<Vec<ObjectHandle>>
    where
        I: IntoIterator<Item = (Option<i64>, B)>,
        B: AsRef<[u8]>,
    {
        match self.rollups.batch_bytes() {
            Some(limit) => self.put_many_in_parts(items, limit),
            None => self.put_many_whole(items),
        }
    }

    /// `put_many` under one lock.
    pub(super) fn put_many_whole<I, B>(&self, items: I) -> Result<Vec<ObjectHandle>>
    where
        I: IntoIterator<Item = (Option<i64>, B)>,
        B: AsRef<[u8]>,
    {
        let handles = match &self.core.compressed {
            Some(c) => self.put_compressed(c, items)?,
            None => {
                let owned: Vec<(Option<i64>, B)> = items.into_iter().collect();
                let mut items = Vec::with_capacity(owned.len());
                for (ts, p) in &owned {
                    if let Some(ts) = *ts {
                        self.check_future(ts)?;
                    }
                    items.push((*ts, self.check_payload(p.as_ref())?));
                }
                self.core.main.put_many(items)?
            }
        };
        Ok(handles)
    }

    /// Checks a whole batch as `put_many` would before writing any of it:
    /// payloads, the future guard, and explicit timestamps increasing
    /// from the store's newest.
    pub(super) fn check_batch<B: AsRef<[u8]>>(&self, items: &[(Option<i64>, B)]) -> Result<()> {
        let mut newest = self.newest_timestamp().unwrap_or(i64::MIN);
        for (ts, p) in items {
            if let Some(ts) = *ts {
                self.check_future(ts)?;
                crate::ring::check_timestamp(ts, newest)?;
                newest = ts;
            }
            self.check_payload(p.as_ref())?;
        }
        Ok(())
    }

    /// Soft-deletes exactly the object at `timestamp`; its neighbours stay.
    pub fn delete_by_time(&self, timestamp: i64) -> Result<()> {
        match &self.core.compressed {
            Some(c) => {
                self.check_compressed_writable()?;
                c.delete_by_time(&self.core.main, timestamp)
            }
            None => self.core.main.delete_by_time(timestamp),
        }
    }

    /// Empties the store in O(1); configuration stays. Signals
    /// `CommitEvent::Reset` even if the checkpoint after it fails: readers
    /// see an empty store either way.
    /// Its rollups are emptied too.
    pub fn reset(&self) -> Result<()> {
        let out = match &self.core.compressed {
            Some(c) => c.reset(&self.core.main),
            None => self.core.main.reset(),
        };
        self.rollups.raw_changed();
        out?;
        self.rollups.reset()
    }

    /// Writes every pointer and index entry and makes the store durable.
    /// Also reports a failure of the background flusher since the last
    /// write or sync.
    pub fn sync(&self) -> Result<()> {
        if let Some(c) = &self.core.compressed {
            c.shared.staging.sync()?;
        }
        self.core.main.sync()
    }
}
