//! Reading a compressed store: the frames of the main ring merged with
//! the records still staged, lookups by time, and deletes.
//!
//! A read first takes what is staged in its window past `last_framed`
//! (at most the staging ring), then `last_framed` again: every record up
//! to it is in a frame (put and made durable before it moved), every
//! staged record after it is not yet. Frames give the records up to that
//! bound, the staged copy those after it, so a record framed while the
//! read runs is given once: a staged copy is overwritten only once its
//! record is framed, so what was not framed by the end of the staged
//! read is in it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::frame_cache::{self, Decoded, Form, FrameKey};
use super::{Compressed, FrameObject, Shared, tombstoned};
use crate::encoding::columns::Unpacked;
use crate::encoding::frame::Body;
use crate::error::{Error, Result};
use crate::format::OBJECT_HEADER_SIZE;
use crate::lock::mutex_lock;
use crate::record::{ObjectHandle, Record};
use crate::ring::Ring;
use crate::ring::RingRecords;

/// A streaming iterator over a compressed store's records (either
/// direction). Holds the staged records of its window, one frame's
/// records, and the frame iterator's read batch.
pub(crate) struct FramedRecords<'a> {
    main: &'a Ring,
    shared: &'a Shared,
    reverse: bool,
    from: i64,
    to: i64,
    remaining: usize,
    with_data: bool,
    started: bool,
    /// The staged records to give (those after `bound`), in order.
    staged: VecDeque<Record>,
    frames: Option<RingRecords<'a>>,
    /// The frame being given.
    current: Option<Current>,
    /// `last_framed` as of the start: frames give records up to it.
    bound: i64,
    done: bool,
}

/// A frame's records being given: those of `lo..hi` (its records in the
/// window) not yet given and not tombstoned.
struct Current {
    records: Arc<Unpacked>,
    tombstones: Vec<u8>,
    handle: ObjectHandle,
    lo: usize,
    hi: usize,
}

impl<'a> FramedRecords<'a> {
    pub(crate) fn new(
        main: &'a Ring,
        c: &'a Compressed,
        reverse: bool,
        from: i64,
        to: i64,
    ) -> FramedRecords<'a> {
        FramedRecords {
            main,
            shared: &c.shared,
            reverse,
            from,
            to,
            remaining: usize::MAX,
            with_data: true,
            started: false,
            staged: VecDeque::new(),
            frames: None,
            current: None,
            bound: 0,
            done: from > to,
        }
    }

    pub(crate) fn limit(mut self, n: usize) -> Self {
        self.remaining = n;
        self
    }

    pub(crate) fn with_data(mut self, yes: bool) -> Self {
        self.with_data = yes;
        self
    }

    pub(crate) fn remaining(&self) -> usize {
        self.remaining
    }

    fn start(&mut self) -> Result<()> {
        self.started = true;
        // The staged copies of framed records stay in the staging ring
        // until it wraps over them: a range reaching back past them need
        // not read them (a tenth of a TMY3 range of 10 000 had gone to
        // it, a third of a soiling one).
        let framed = self.shared.last_framed.load(Ordering::Acquire);
        // Newest first, the staged records are given first: no more than
        // the limit can be wanted (`newest(1)` reads one).
        let staged = self
            .shared
            .staging
            .range(
                self.from.max(framed.saturating_add(1)),
                self.to,
                self.reverse,
            )
            .with_data(self.with_data)
            .limit(if self.reverse {
                self.remaining
            } else {
                usize::MAX
            })
            .collect_all()?;
        self.bound = self.shared.last_framed.load(Ordering::Acquire);
        self.staged = staged
            .into_iter()
            .filter(|r| r.timestamp() > self.bound)
            .collect();
        let frames_to = self.to.min(self.bound);
        if self.from > frames_to {
            return Ok(());
        }
        self.frames = Some(if self.reverse {
            self.main.range(i64::MIN, frames_to, true)
        } else {
            let start = match frame_holding(self.main, self.from, false) {
                Some(frame) => frame?.timestamp(),
                None => self.from,
            };
            self.main.range(start, frames_to, false)
        });
        Ok(())
    }

    /// Makes `frame` the one to give its records in the window from;
    /// false once no older frame can hold any (reverse).
    fn open_frame(&mut self, frame: Record) -> Result<bool> {
        let object = FrameObject::parse(&frame.data)?;
        let records = self.shared.unpacked(&frame, &object, None)?;
        let to = self.to.min(self.bound);
        let lo = records.stamps.partition_point(|&ts| ts < self.from);
        let hi = records.stamps.partition_point(|&ts| ts <= to);
        let older = !self.reverse || frame.timestamp() > self.from;
        self.current = Some(Current {
            tombstones: object.tombstones.to_vec(),
            handle: frame.handle,
            records,
            lo,
            hi: hi.max(lo),
        });
        Ok(older)
    }

    /// The current frame's next record in the window, if any is left.
    fn next_in_frame(&mut self) -> Option<Record> {
        let c = self.current.as_mut()?;
        let records = &c.records;
        while c.lo < c.hi {
            let i = if self.reverse {
                c.hi -= 1;
                c.hi
            } else {
                c.lo += 1;
                c.lo - 1
            };
            if tombstoned(&c.tombstones, i) {
                continue;
            }
            let payload = records.payload(i);
            return Some(Record {
                handle: ObjectHandle {
                    timestamp: records.stamps[i],
                    size: payload.len() as u32,
                    span_count: 1,
                    ..c.handle
                },
                data: if self.with_data {
                    payload.to_vec()
                } else {
                    Vec::new()
                },
            });
        }
        self.current = None;
        None
    }

    fn step(&mut self) -> Result<Option<Record>> {
        if !self.started {
            self.start()?;
        }
        loop {
            if self.reverse {
                // Newest first: the staged records come before the frames.
                if let Some(r) = self.staged.pop_front() {
                    return Ok(Some(r));
                }
            }
            if let Some(r) = self.next_in_frame() {
                return Ok(Some(r));
            }
            match self.frames.as_mut().and_then(Iterator::next) {
                Some(frame) => {
                    if !self.open_frame(frame?)? {
                        self.frames = None;
                    }
                }
                None => {
                    self.frames = None;
                    return Ok(if self.reverse {
                        None
                    } else {
                        self.staged.pop_front()
                    });
                }
            }
        }
    }
}

impl Iterator for FramedRecords<'_> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        if self.done || self.remaining == 0 {
            return None;
        }
        match self.step() {
            Ok(Some(r)) => {
                self.remaining -= 1;
                Some(Ok(r))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// The frame that would hold `ts`: the newest one starting at or before
/// it (frames hold consecutive records), with its payload or not.
fn frame_holding(main: &Ring, ts: i64, with_data: bool) -> Option<Result<Record>> {
    main.range(i64::MIN, ts, true)
        .with_data(with_data)
        .limit(1)
        .next()
}

/// A record found in its frame.
struct InFrame {
    /// The frame object.
    frame: Record,
    /// The record's place in the frame.
    index: usize,
    /// Its payload, if asked for and not deleted.
    data: Option<Vec<u8>>,
}

impl Compressed {
    /// The live record at exactly `ts`: staged, or in the frame that
    /// starts at or before it.
    pub(crate) fn get_by_time(&self, main: &Ring, ts: i64) -> Result<Record> {
        match self.shared.staging.get(ts) {
            Ok(rec) => return Ok(rec),
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let InFrame { frame, data, .. } = self
            .find_in_frame(main, ts, true)?
            .ok_or(Error::NotFound(ts))?;
        let data = data.ok_or(Error::NotFound(ts))?;
        Ok(Record {
            handle: ObjectHandle {
                timestamp: ts,
                size: data.len() as u32,
                span_count: 1,
                ..frame.handle
            },
            data,
        })
    }

    /// The frame object holding `ts`, the record's place in it, and (with
    /// `rebuild`) its payload, `None` if it is deleted.
    fn find_in_frame(&self, main: &Ring, ts: i64, rebuild: bool) -> Result<Option<InFrame>> {
        let Some(frame) = frame_holding(main, ts, true) else {
            return Ok(None);
        };
        let frame = frame?;
        let object = FrameObject::parse(&frame.data)?;
        let key = self.shared.frame_key(&frame);
        let cached = frame_cache::get(key, object.frame);
        // The record searched for in a body: its place, and its payload.
        let search = |body: &Body| -> Result<Option<(usize, Vec<u8>)>> {
            let mut data = Vec::new();
            let (count, at) = body
                .find(ts, &mut data)
                .map_err(|e| super::frame_error(e.into()))?;
            object.check_count(count)?;
            Ok(at.map(|i| (i, data)))
        };
        let found = match cached {
            Some(hit) => match &hit.form {
                // Searched before, not yet often enough to rebuild it.
                Form::Body(body) if !hit.looked_up() => search(body)?,
                // Read often, or by a range: its records rebuilt, kept
                // for what follows.
                _ => {
                    let records = self.shared.unpacked(&frame, &object, Some(hit))?;
                    records
                        .stamps
                        .binary_search(&ts)
                        .ok()
                        .map(|i| (i, records.payload(i).to_vec()))
                }
            },
            // Its first read: one record rebuilt, the body kept.
            None => {
                let body = self
                    .shared
                    .reader()?
                    .decompressed(object.frame)
                    .map_err(super::frame_error)?;
                let found = search(&body)?;
                frame_cache::put(key, object.frame, Form::Body(body));
                found
            }
        };
        let Some((index, data)) = found else {
            return Ok(None);
        };
        let data = (rebuild && !object.deleted(index)).then_some(data);
        Ok(Some(InFrame { frame, index, data }))
    }

    /// Soft-deletes the record at `ts`: its staged copy (a raw delete),
    /// then, if it is framed, its tombstone bit (one byte written in
    /// place; the frame's checksum reads tombstones as zeros). In that
    /// order, a crash between the two leaves the record live both ways.
    pub(crate) fn delete_by_time(&self, main: &Ring, ts: i64) -> Result<()> {
        let _writer = mutex_lock(&self.shared.writer);
        let _framing = mutex_lock(&self.shared.framing);
        let staged = match self.shared.staging.delete_by_time(ts) {
            Ok(()) => {
                // Not framed: the framer must not frame it.
                mutex_lock(&self.shared.state).remove(ts);
                true
            }
            Err(Error::NotFound(_)) => false,
            Err(e) => return Err(e),
        };
        if ts > self.shared.last_framed.load(Ordering::Acquire) {
            return if staged {
                Ok(())
            } else {
                Err(Error::NotFound(ts))
            };
        }
        let Some(InFrame {
            frame, index: i, ..
        }) = self.find_in_frame(main, ts, false)?
        else {
            return Err(Error::NotFound(ts));
        };
        let object = FrameObject::parse(&frame.data)?;
        if object.deleted(i) {
            return Err(Error::NotFound(ts));
        }
        let at = frame.handle.offset as usize + OBJECT_HEADER_SIZE + super::COUNT_SIZE + i / 8;
        if at >= main.block_size() as usize {
            return Err(Error::Corrupt(format!(
                "the tombstones of the frame at {} are not in its first block",
                frame.timestamp()
            )));
        }
        main.set_bits(
            frame.handle.block_num,
            at,
            object.tombstones[i / 8],
            1 << (i % 8),
        )
    }
}

impl Shared {
    fn frame_key(&self, frame: &Record) -> FrameKey {
        FrameKey {
            store: self as *const Shared as usize,
            block: frame.handle.block_num,
            offset: frame.handle.offset,
            timestamp: frame.handle.timestamp,
        }
    }

    /// The records of frame object `frame`, rebuilt: kept, or rebuilt
    /// from `cached` (its body, kept by a lookup) or from the frame, and
    /// kept.
    fn unpacked(
        &self,
        frame: &Record,
        object: &FrameObject,
        cached: Option<Arc<Decoded>>,
    ) -> Result<Arc<Unpacked>> {
        let key = self.frame_key(frame);
        let cached = match cached {
            Some(hit) => Some(hit),
            None => frame_cache::get(key, object.frame),
        };
        let mut records = Unpacked::default();
        match cached.as_deref().map(|d| &d.form) {
            Some(Form::Records(kept)) => {
                object.check_count(kept.len())?;
                return Ok(Arc::clone(kept));
            }
            Some(Form::Body(body)) => body
                .unpack(&mut records)
                .map_err(|e| super::frame_error(e.into()))?,
            None => object.unpack(&mut *self.reader()?, &mut records)?,
        }
        object.check_count(records.len())?;
        let records = Arc::new(records);
        frame_cache::put(key, object.frame, Form::Records(Arc::clone(&records)));
        Ok(records)
    }
}
