//! Modifications: inserts (checked before the writer lock is taken),
//! soft deletes, reset and sync. Each runs through `Store::write` or
//! `Store::with_writer`, which roll back on error and signal commits.

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use super::Store;
use crate::encoding::compressed::Compressed;
use crate::error::{Error, Result};
use crate::format::{DataType, OBJ_DELETED};
use crate::lock::write_lock;
use crate::record::ObjectHandle;
use crate::schema::SchemaError;

impl Store {
    /// Checks `payload` against the data type (schema stores: validates
    /// and compacts it) and the object size limit; returns what to store.
    fn check_payload<'a>(&self, payload: &'a [u8]) -> Result<Cow<'a, [u8]>> {
        let stored = if self.meta.data_type == DataType::Schema {
            let schema = self.schema.current().ok_or(SchemaError::NoSchema)?;
            Cow::Owned(schema.compact(payload)?)
        } else {
            crate::payload::validate(self.meta.data_type, payload)?;
            Cow::Borrowed(payload)
        };
        let max = self.max_object_size();
        if stored.len() as u64 > max {
            return Err(Error::TooLarge {
                size: stored.len() as u64,
                max,
            });
        }
        Ok(stored)
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
        let json = self.meta.data_type == DataType::Json;
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
        self.check_writable()?;
        self.flush_fault.take()
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
    fn check_future(&self, timestamp: i64) -> Result<()> {
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
        if let Some(c) = &self.compressed {
            self.check_compressed_writable()?;
            return c.put_one(Some(timestamp), &payload);
        }
        self.write(|w, ctx| {
            check_timestamp(timestamp, w.newest())?;
            let h = w.append(ctx, timestamp, &payload)?;
            w.flush(ctx, false)?;
            Ok(h)
        })
    }

    /// Inserts at `max(now, newest + 1)`, so it never collides or goes back.
    pub fn put_now(&self, payload: &[u8]) -> Result<ObjectHandle> {
        let payload = self.check_payload(payload)?;
        if let Some(c) = &self.compressed {
            self.check_compressed_writable()?;
            return c.put_one(None, &payload);
        }
        self.write(|w, ctx| {
            let ts = next_timestamp(w.newest())?;
            let h = w.append(ctx, ts, &payload)?;
            w.flush(ctx, false)?;
            Ok(h)
        })
    }

    /// Inserts a batch under one lock, each touched block written once.
    /// Every payload and timestamp is checked before anything is written
    /// (all or nothing); entries without a timestamp get
    /// `max(now, previous + 1)`.
    pub fn put_many<I, B>(&self, items: I) -> Result<Vec<ObjectHandle>>
    where
        I: IntoIterator<Item = (Option<i64>, B)>,
        B: AsRef<[u8]>,
    {
        if let Some(c) = &self.compressed {
            return self.put_compressed(c, items);
        }
        let owned: Vec<(Option<i64>, B)> = items.into_iter().collect();
        let mut items = Vec::with_capacity(owned.len());
        for (ts, p) in &owned {
            if let Some(ts) = *ts {
                self.check_future(ts)?;
            }
            items.push((*ts, self.check_payload(p.as_ref())?));
        }
        self.write(|w, ctx| {
            let mut prev = w.newest();
            let mut stamps = Vec::with_capacity(items.len());
            for (ts, _) in &items {
                let ts = match *ts {
                    Some(ts) => {
                        check_timestamp(ts, prev)?;
                        ts
                    }
                    None => next_timestamp(prev)?,
                };
                stamps.push(ts);
                prev = ts;
            }
            let mut handles = Vec::with_capacity(items.len());
            for ((_, p), ts) in items.iter().zip(stamps) {
                handles.push(w.append(ctx, ts, p.as_ref())?);
            }
            w.flush(ctx, false)?;
            Ok(handles)
        })
    }

    /// Soft-deletes exactly the object at `timestamp`; its neighbours stay.
    pub fn delete_by_time(&self, timestamp: i64) -> Result<()> {
        if let Some(c) = &self.compressed {
            self.check_compressed_writable()?;
            return c.delete_by_time(self, timestamp);
        }
        self.write(|w, ctx| {
            let (phys, found) = self.locate(timestamp)?.ok_or(Error::NotFound(timestamp))?;
            let low_byte = (found.header.flags | OBJ_DELETED) as u8;
            w.mark_deleted(ctx, phys, found.offset, low_byte)?;
            write_lock(&self.ring).note_deleted(phys);
            Ok(())
        })
    }

    /// Empties the store in O(1); configuration stays. Signals
    /// `CommitEvent::Reset` even if the checkpoint after it fails: readers
    /// see an empty store either way.
    pub fn reset(&self) -> Result<()> {
        match &self.compressed {
            Some(c) => c.reset(self),
            None => self.reset_ring(),
        }
    }

    pub(crate) fn reset_ring(&self) -> Result<()> {
        let out = self.with_writer(|w, ctx| {
            w.reset(ctx);
            w.checkpoint(ctx, true)
        });
        self.commits.reset();
        out
    }

    /// Sets `bits` in the byte at `at` of block `phys`, whose value on
    /// disk is `current`: a one-byte write in place (a frame's tombstone).
    pub(crate) fn set_bits(&self, phys: u32, at: usize, current: u8, bits: u8) -> Result<()> {
        self.write(|w, ctx| w.set_bits(ctx, phys, at, current, bits))
    }

    /// Writes every pointer and index entry and makes the store durable.
    /// Also reports a failure of the background flusher since the last call.
    pub fn sync(&self) -> Result<()> {
        if let Some(c) = &self.compressed {
            c.shared.staging.sync()?;
        }
        self.sync_ring()
    }

    pub(crate) fn sync_ring(&self) -> Result<()> {
        self.flush_fault.take()?;
        self.with_writer(|w, ctx| w.checkpoint(ctx, true))
    }
}

pub(crate) fn check_timestamp(ts: i64, newest: i64) -> Result<()> {
    if ts <= 0 {
        return Err(Error::InvalidTimestamp(ts));
    }
    if ts <= newest {
        return Err(Error::TimestampOutOfOrder {
            timestamp: ts,
            newest,
        });
    }
    Ok(())
}

/// `max(now, newest + 1)`; when the newest timestamp is already
/// `i64::MAX` there is no later one, and the insert is refused rather than
/// given a timestamp that does not increase.
pub(crate) fn next_timestamp(newest: i64) -> Result<i64> {
    match newest.checked_add(1) {
        Some(next) => Ok(crate::time::now_ns().max(next)),
        None => Err(Error::TimestampOutOfOrder {
            timestamp: newest,
            newest,
        }),
    }
}
