//! Following a store: the records after a cursor, `READ_BATCH` at a time
//! on the blocking pool, then, once caught up, a wait for the next commit
//! (or the store's end). The one loop under the live feed (live read,
//! push, MQTT publish) and alert evaluation, so a truncate, a reset or a
//! store going away means the same to each of them.
//!
//! Subscribed to the store's commits before the first read, so nothing
//! committed after it is missed; the commit channel keeps only the latest
//! event, and `OpenStore::after_commit` tells from its counters what was
//! missed in between (a reset, a truncate that moves the cursor back).

use std::ops::Range;
use std::sync::Arc;

use tokio::sync::watch;
use tsstore::{CommitEvent, CommitState, ObjectHandle, RecordRef};

use super::error::RecordResult;
use crate::registry::{OpenStore, Resume, TaskFailed, commit_state, store_stopping};

/// Records read from the store per step.
pub const READ_BATCH: usize = 256;

/// One step: what the store holds after the cursor. The payloads share
/// one buffer (a follower reads without an allocation per record).
pub struct Step {
    /// Each record's handle and where its payload lies in `payloads`.
    handles: Vec<(ObjectHandle, Range<usize>)>,
    payloads: Vec<u8>,
    /// The oldest timestamp in the store, when it is past the cursor:
    /// records after the cursor and before it were overwritten unread.
    pub oldest_after_cursor: Option<i64>,
}

impl Step {
    /// Fewer than a full batch: the store has nothing more for now.
    pub fn caught_up(&self) -> bool {
        self.handles.len() < READ_BATCH
    }

    /// The records read, oldest first.
    pub fn records(&self) -> impl Iterator<Item = RecordRef<'_>> {
        self.handles.iter().map(|(handle, at)| RecordRef {
            handle: *handle,
            data: &self.payloads[at.clone()],
        })
    }

    /// The newest record's timestamp, if any was read.
    pub fn last_timestamp(&self) -> Option<i64> {
        self.handles.last().map(|(h, _)| h.timestamp)
    }
}

/// What the store did while a follower waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// New records (or a truncate): read on after the cursor, which a
    /// truncate may have moved back (`rewound`).
    On { rewound: bool },
    /// The store was emptied; the cursor is back at 0.
    Reset,
    /// The store was closed.
    Closed,
    /// The store is being deleted, or the server closes it.
    Stopping,
}

/// A follower of one store from a cursor.
pub struct Follower {
    open: Arc<OpenStore>,
    commits: watch::Receiver<CommitEvent>,
    seen: CommitState,
    stopping: watch::Receiver<bool>,
    cursor: i64,
}

impl Follower {
    /// Follows `open`'s store from the records after `from` (0: from the
    /// oldest); `None` if the store is closed already.
    pub fn new(open: &Arc<OpenStore>, from: i64) -> Option<Follower> {
        let mut commits = open.commits();
        let seen = commit_state(&commits.borrow_and_update())?;
        Some(Follower {
            open: Arc::clone(open),
            commits,
            seen,
            stopping: open.stopping.subscribe(),
            cursor: from,
        })
    }

    /// Every record up to here has been read.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// Reads the next batch after the cursor and moves the cursor past
    /// it.
    pub async fn step(&mut self) -> RecordResult<Step> {
        let open = Arc::clone(&self.open);
        let cursor = self.cursor;
        let step = tokio::task::spawn_blocking(move || read_step(&open, cursor))
            .await
            .map_err(TaskFailed::from)??;
        if let Some(last) = step.last_timestamp() {
            self.cursor = last;
        }
        Ok(step)
    }

    /// Waits for the store to move past the cursor, or to end.
    /// Cancel-safe: a wait left for another branch of a `select!` loses
    /// nothing.
    pub async fn moved(&mut self) -> Moved {
        tokio::select! {
            _ = store_stopping(&mut self.stopping) => Moved::Stopping,
            changed = self.commits.changed() => {
                if changed.is_err() {
                    return Moved::Closed;
                }
                let event = *self.commits.borrow_and_update();
                match self.open.after_commit(&event, &mut self.seen, self.cursor) {
                    Resume::At(at) => {
                        let rewound = at < self.cursor;
                        self.cursor = at;
                        Moved::On { rewound }
                    }
                    Resume::Reset => {
                        self.cursor = 0;
                        Moved::Reset
                    }
                    Resume::Closed => Moved::Closed,
                }
            }
        }
    }

    /// The store's `stopping` flag, for sends that must not outlive it.
    pub fn stopping(&mut self) -> &mut watch::Receiver<bool> {
        &mut self.stopping
    }
}

/// Up to `READ_BATCH` records after `cursor` (blocking: run it on the
/// blocking pool).
pub fn read_step(open: &OpenStore, cursor: i64) -> RecordResult<Step> {
    let store = &open.store;
    let oldest = store.stats().oldest_timestamp;
    let mut iter = store
        .iter_range(cursor.saturating_add(1), i64::MAX)
        .limit(READ_BATCH);
    let (mut handles, mut payloads) = (Vec::with_capacity(READ_BATCH), Vec::new());
    while let Some(rec) = iter.next_ref() {
        let rec = rec?;
        let start = payloads.len();
        payloads.extend_from_slice(rec.data);
        handles.push((rec.handle, start..payloads.len()));
    }
    Ok(Step {
        handles,
        payloads,
        oldest_after_cursor: oldest.filter(|&o| o > cursor.saturating_add(1)),
    })
}
