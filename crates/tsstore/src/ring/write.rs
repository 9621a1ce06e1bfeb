//! Modifications of a ring: inserts of payloads already checked (the
//! store checks them against its data type and schema), soft deletes,
//! reset and sync. Each runs through `Ring::write` or `Ring::with_writer`,
//! which roll back on error and signal commits.

use super::Ring;
use crate::error::{Error, Result};
use crate::format::OBJ_DELETED;
use crate::lock::write_lock;
use crate::record::ObjectHandle;

impl Ring {
    /// Inserts `payload` at `timestamp`, which must be after every stored one.
    pub(crate) fn put(&self, timestamp: i64, payload: &[u8]) -> Result<ObjectHandle> {
        self.write(|w, ctx| {
            check_timestamp(timestamp, w.newest())?;
            let h = w.append(ctx, timestamp, payload)?;
            w.flush(ctx, false)?;
            Ok(h)
        })
    }

    /// Inserts at `max(now, newest + 1)`, so it never collides or goes back.
    pub(crate) fn put_now(&self, payload: &[u8]) -> Result<ObjectHandle> {
        self.write(|w, ctx| {
            let ts = next_timestamp(w.newest())?;
            let h = w.append(ctx, ts, payload)?;
            w.flush(ctx, false)?;
            Ok(h)
        })
    }

    /// Inserts a batch under one lock, each touched block written once.
    /// Every timestamp is checked before anything is written (all or
    /// nothing); entries without one get `max(now, previous + 1)`.
    pub(crate) fn put_many<I, B>(&self, items: I) -> Result<Vec<ObjectHandle>>
    where
        I: IntoIterator<Item = (Option<i64>, B)>,
        B: AsRef<[u8]>,
    {
        self.put_many_after(items).map(|(_, handles)| handles)
    }

    /// `put_many`, also saying which record the batch follows: the ring's
    /// newest before it (0: none), read under the writer lock, so
    /// no record lies between the two.
    pub(crate) fn put_many_after<I, B>(&self, items: I) -> Result<(i64, Vec<ObjectHandle>)>
    where
        I: IntoIterator<Item = (Option<i64>, B)>,
        B: AsRef<[u8]>,
    {
        let items: Vec<(Option<i64>, B)> = items.into_iter().collect();
        self.write(|w, ctx| {
            let after = w.newest();
            let mut prev = after;
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
            Ok((after, handles))
        })
    }

    /// Soft-deletes exactly the object at `timestamp`; its neighbours stay.
    pub(crate) fn delete_by_time(&self, timestamp: i64) -> Result<()> {
        self.write(|w, ctx| {
            let (phys, found) = self.locate(timestamp)?.ok_or(Error::NotFound(timestamp))?;
            let low_byte = (found.header.flags | OBJ_DELETED) as u8;
            w.mark_deleted(ctx, phys, found.offset, low_byte)?;
            write_lock(&self.ring).note_deleted(phys);
            Ok(())
        })
    }

    /// Empties the ring in O(1). Signals `CommitEvent::Reset` even if the
    /// checkpoint after it fails: readers see an empty ring either way.
    pub(crate) fn reset(&self) -> Result<()> {
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

    /// Writes every pointer and index entry and makes the ring durable.
    /// Also reports a failure of the background flusher since the last
    /// write or sync.
    pub(crate) fn sync(&self) -> Result<()> {
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
