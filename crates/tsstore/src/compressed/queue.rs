//! The framer's queue: the staged records not yet framed, oldest first,
//! with their payloads and what the insert found of their split.
//!
//! The framer packs from this queue instead of reading the staging ring
//! back. What it holds is bounded by the staging ring's capacity, which
//! never wraps over a record not yet framed. An insert builds its records
//! into `StagedBatch`es as it checks them, and queues each once staged.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::encoding::columns::Laid;
use crate::encoding::frame::raw_size;
use crate::encoding::split::{Checked, Record, Split, Splitter, Template};

/// A batch of at most this many records is appended to the newest queued
/// one (if the framer does not hold it), so that one `put` after another
/// makes one batch, not one each; larger ones are queued as they are.
const APPEND_MAX: usize = 16;

/// Most rows a batch's template makes room for at once.
const MAX_EXPECTED_ROWS: usize = 4096;

/// The queue, and the framer's round.
#[derive(Debug, Default)]
pub(super) struct Unframed {
    /// One batch per staging insert; none is empty past `front_done`.
    pub(super) batches: VecDeque<Arc<StagedBatch>>,
    /// Records of the front batch already framed.
    pub(super) front_done: usize,
    /// Records after those, oldest first, written in frames that are not
    /// yet durable (`written`): kept queued, so that the staging ring
    /// does not wrap over their staged copies, and skipped by framing.
    pub(super) written: usize,
    /// Those frames (at most `FRAMES_PER_SYNC`).
    pub(super) written_frames: usize,
    /// The newest of their records' timestamp.
    pub(super) written_last: i64,
    /// The raw size of the records neither framed nor written, as the
    /// codec counts it (`frame::raw_size`).
    pub(super) bytes: u64,
    /// `bytes` at which to wake the framer next (`u64::MAX` while a round
    /// is asked for or running).
    pub(super) next_try: u64,
    /// A round is asked for.
    pub(super) wanted: bool,
    /// A round is running.
    pub(super) busy: bool,
    pub(super) stop: bool,
}

/// Records checked by one insert and staged together.
#[derive(Debug, Default, Clone)]
pub(super) struct StagedBatch {
    payloads: Vec<u8>,
    pub(super) records: Vec<StagedRecord>,
    /// The templates the insert split records with, and the values of
    /// the records of each, laid out in columns.
    templates: Vec<Arc<Template>>,
    laid: Vec<Laid>,
    /// Where the values of the record being split end (reused).
    ends: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct StagedRecord {
    /// Set when the insert stamps its batch.
    pub(super) timestamp: i64,
    /// The staging block it starts in; set once staged.
    pub(super) block: u32,
    /// Its payload in the batch's `payloads`.
    start: usize,
    end: usize,
    shape: Shape,
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Unknown,
    Whole,
    /// `templates[template]`; its values are row `row` of
    /// `laid[template]`.
    Split {
        template: u32,
        row: u32,
    },
}

impl StagedRecord {
    pub(super) fn raw_size(&self) -> u64 {
        raw_size(self.end - self.start) as u64
    }

    pub(super) fn len(&self) -> usize {
        self.end - self.start
    }
}

impl StagedBatch {
    /// A batch with room for `bytes` of payloads and as many small
    /// records.
    pub(super) fn with_capacity(bytes: usize) -> StagedBatch {
        StagedBatch {
            payloads: Vec::with_capacity(bytes),
            records: Vec::with_capacity(bytes / 64),
            templates: Vec::new(),
            laid: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// Adds a JSON payload if `splitter` is sure it is valid, split or
    /// whole; false (nothing added) if unsure.
    pub(super) fn add_json(&mut self, splitter: &mut Splitter, payload: &[u8]) -> bool {
        self.ends.clear();
        let shape = match splitter.check_json(payload, &mut self.ends) {
            Checked::Unsure => return false,
            Checked::Whole => Shape::Whole,
            Checked::Split => match splitter.template() {
                Some(template) => {
                    let t = self.template_index(template, payload.len());
                    match self.laid[t as usize].push(payload, template, &self.ends) {
                        Some(row) => Shape::Split { template: t, row },
                        None => Shape::Unknown,
                    }
                }
                None => Shape::Unknown,
            },
        };
        self.push(payload, shape);
        true
    }

    /// Adds a payload the framer is to split.
    pub(super) fn add(&mut self, payload: &[u8]) {
        self.push(payload, Shape::Unknown);
    }

    fn push(&mut self, payload: &[u8], shape: Shape) {
        let start = self.payloads.len();
        self.payloads.extend_from_slice(payload);
        self.records.push(StagedRecord {
            timestamp: 0,
            block: 0,
            start,
            end: self.payloads.len(),
            shape,
        });
    }

    /// The index of `template` in this batch's, added if new with room
    /// for as many rows of about `len` bytes as the batch has room for.
    fn template_index(&mut self, template: &Arc<Template>, len: usize) -> u32 {
        if let Some(k) = self
            .templates
            .iter()
            .rposition(|t| Arc::ptr_eq(t, template))
        {
            return k as u32;
        }
        self.templates.push(Arc::clone(template));
        let room = self.payloads.capacity().saturating_sub(self.payloads.len());
        let rows = room.checked_div(len).unwrap_or(0);
        self.laid
            .push(Laid::new(template.keys.len(), rows.min(MAX_EXPECTED_ROWS)));
        (self.templates.len() - 1) as u32
    }

    pub(super) fn payload(&self, r: &StagedRecord) -> &[u8] {
        &self.payloads[r.start..r.end]
    }

    /// `r` as the framer packs it.
    pub(super) fn record<'a>(&'a self, r: &StagedRecord) -> Record<'a> {
        let split = match r.shape {
            Shape::Unknown => Split::Unknown,
            Shape::Whole => Split::Whole,
            Shape::Split { template, row } => {
                let t = template as usize;
                match (self.templates.get(t), self.laid.get(t)) {
                    (Some(template), Some(laid)) => Split::Laid(template, laid, row),
                    _ => Split::Unknown,
                }
            }
        };
        Record {
            timestamp: r.timestamp,
            payload: self.payload(r),
            split,
        }
    }

    /// Moves `other`'s records to the end of this batch.
    fn append(&mut self, other: StagedBatch) {
        let base = self.payloads.len();
        self.payloads.extend_from_slice(&other.payloads);
        // Each of `other`'s templates here, and the row its first laid
        // out row became.
        let moved: Vec<(u32, u32)> = other
            .templates
            .iter()
            .zip(&other.laid)
            .map(|(template, laid)| {
                let t = self.template_index(template, 0);
                (t, self.laid[t as usize].append(laid))
            })
            .collect();
        for r in other.records {
            let shape = match r.shape {
                Shape::Split { template, row } => match moved.get(template as usize) {
                    Some(&(t, first)) => Shape::Split {
                        template: t,
                        row: first + row,
                    },
                    None => Shape::Unknown,
                },
                shape => shape,
            };
            self.records.push(StagedRecord {
                start: r.start + base,
                end: r.end + base,
                shape,
                ..r
            });
        }
    }
}

impl Unframed {
    /// The staging block of the first record not yet in a durable frame.
    pub(super) fn first_block(&self) -> Option<u32> {
        let front = self.batches.front()?;
        front.records.get(self.front_done).map(|r| r.block)
    }

    /// Queues one record just staged (a lone `put`, or each staged record
    /// when the store opens), onto the newest batch unless the framer
    /// holds it.
    pub(super) fn queue_one(&mut self, timestamp: i64, block: u32, payload: &[u8]) {
        if !matches!(self.batches.back_mut().map(Arc::get_mut), Some(Some(_))) {
            self.batches.push_back(Arc::default());
        }
        if let Some(batch) = self.batches.back_mut().and_then(Arc::get_mut) {
            batch.add(payload);
            if let Some(r) = batch.records.last_mut() {
                r.timestamp = timestamp;
                r.block = block;
                self.bytes += r.raw_size();
            }
        }
    }

    /// Queues a batch just staged.
    pub(super) fn queue(&mut self, batch: StagedBatch) {
        if batch.records.is_empty() {
            return;
        }
        self.bytes += batch
            .records
            .iter()
            .map(StagedRecord::raw_size)
            .sum::<u64>();
        match self.batches.back_mut().and_then(Arc::get_mut) {
            Some(back) if batch.records.len() <= APPEND_MAX => back.append(batch),
            _ => self.batches.push_back(Arc::new(batch)),
        }
    }

    /// The queue past the written records: the batches from the first
    /// that holds a record not yet written, and how many of that one's
    /// records to skip.
    pub(super) fn unwritten(&self) -> (Vec<Arc<StagedBatch>>, usize) {
        let mut skip = self.front_done + self.written;
        let mut batches = self.batches.iter();
        let mut out = Vec::new();
        for batch in batches.by_ref() {
            if skip < batch.records.len() {
                out.push(Arc::clone(batch));
                break;
            }
            skip -= batch.records.len();
        }
        out.extend(batches.cloned());
        (out, skip)
    }

    /// The `n` oldest records not yet written are written in a frame that
    /// is not yet durable; `last` is the newest's timestamp.
    pub(super) fn written(&mut self, n: usize, last: i64) {
        let bytes: u64 = (self.batches.iter())
            .flat_map(|b| &b.records)
            .skip(self.front_done + self.written)
            .take(n)
            .map(StagedRecord::raw_size)
            .sum();
        self.bytes = self.bytes.saturating_sub(bytes);
        self.written += n;
        self.written_frames += 1;
        self.written_last = last;
    }

    /// The `frames` oldest written frames, the `n` oldest written
    /// records, are durable: those records leave the queue.
    pub(super) fn settled(&mut self, mut n: usize, frames: usize) {
        self.written = self.written.saturating_sub(n);
        self.written_frames = self.written_frames.saturating_sub(frames);
        while n > 0 {
            let Some(front) = self.batches.front() else {
                break;
            };
            let take = n.min(front.records.len() - self.front_done);
            self.front_done += take;
            n -= take;
            if self.front_done == front.records.len() {
                self.batches.pop_front();
                self.front_done = 0;
            }
        }
        if self.batches.is_empty() {
            self.bytes = 0;
        }
    }

    /// Takes the record at `ts` out of the queue (it was deleted while
    /// staged); false if it is not queued.
    pub(super) fn remove(&mut self, ts: i64) -> bool {
        let skip = self.front_done;
        for (b, batch) in self.batches.iter_mut().enumerate() {
            let from = if b == 0 { skip } else { 0 };
            let records = &batch.records[from..];
            let (Some(first), Some(last)) = (records.first(), records.last()) else {
                continue;
            };
            if ts < first.timestamp || ts > last.timestamp {
                continue;
            }
            let Ok(k) = records.binary_search_by_key(&ts, |r| r.timestamp) else {
                return false;
            };
            let batch = Arc::make_mut(batch);
            let r = batch.records.remove(from + k);
            self.bytes = self.bytes.saturating_sub(r.raw_size());
            if batch.records.len() == from {
                self.batches.remove(b);
                if b == 0 {
                    self.front_done = 0;
                }
            }
            return true;
        }
        false
    }
}
