//! Durable live readers: a named consumer of a store whose resume point
//! (the last record it acknowledged) the server keeps on disk, so a
//! client that reconnects to the same URL — a browser `WebSocket`, a flow
//! engine's websocket node — resumes after what it has handled, with
//! nothing lost and at most one window sent twice.
//!
//! One cursor file per consumer (`cursor_file`, in the store's
//! `cursors/` directory as `consumer-NAME.cursor`, written on every ack),
//! so the directory is the list of consumers and a restart finds them
//! all. At most `MAX_CONSUMERS` per store. One connection per consumer:
//! a new one takes over, and the older is told so and closed, so the
//! half-open socket of a crashed client never locks its successor out
//! until a keep-alive expires. Transport-neutral: `http::ws` runs the
//! feed; this keeps the names, cursors and sessions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cursor_file::{CURSORS_DIR, CursorFile};

/// Consumers one store may have.
pub const MAX_CONSUMERS: usize = 64;
/// Longest consumer name.
pub const MAX_NAME: usize = 64;
/// Records counted at most for a consumer's lag (beyond: "at least").
pub const MAX_LAG_COUNT: usize = 100_000;
const PREFIX: &str = "consumer-";
const SUFFIX: &str = ".cursor";

/// Why a consumer cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error(
        "consumer: '{0}' is not a name of 1 to 64 letters, digits, '-', '_' or '.' (not starting with '.')"
    )]
    InvalidName(String),
    #[error("store has {max} consumers already; delete one first")]
    TooMany { max: usize },
    #[error("no consumer '{0}' on this store")]
    NotFound(String),
    #[error("consumer cursor file: {0}")]
    Io(#[from] std::io::Error),
    #[error("a lock was poisoned by an earlier panic")]
    Poisoned,
}

/// Checks a consumer's name: it names a file.
pub fn check_name(name: &str) -> Result<(), ConsumerError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ConsumerError::InvalidName(name.to_string()))
    }
}

/// One consumer that is connected, or was since the store was opened.
#[derive(Debug)]
pub struct Consumer {
    pub name: String,
    file: Mutex<CursorFile>,
    /// The session connected now, if any: its stop and whether it was
    /// taken over.
    session: Mutex<Option<Session>>,
    pub refused_acks: AtomicU64,
    pub in_flight: AtomicU64,
}

#[derive(Debug)]
struct Session {
    id: u64,
    stop: CancellationToken,
    replaced: Arc<AtomicBool>,
}

/// What a new connection of a consumer gets.
#[derive(Debug)]
pub struct Attached {
    pub consumer: Arc<Consumer>,
    /// Where its feed starts: after the last acknowledged record.
    pub from: i64,
    /// Cancelled when the server stops or another connection takes over.
    pub stop: CancellationToken,
    /// Set before `stop` is cancelled by a takeover.
    pub replaced: Arc<AtomicBool>,
    session: u64,
}

impl Drop for Attached {
    /// Ends this session's hold on the consumer, unless a later
    /// connection took it over.
    fn drop(&mut self) {
        if let Ok(mut s) = self.consumer.session.lock()
            && s.as_ref().is_some_and(|s| s.id == self.session)
        {
            *s = None;
        }
    }
}

impl Consumer {
    /// The last record acknowledged.
    pub fn acked(&self) -> i64 {
        self.file
            .lock()
            .ok()
            .and_then(|f| f.last())
            .map_or(0, |s| s.cursor)
    }

    /// The client acknowledged up to `cursor`: written at once.
    pub fn ack(&self, cursor: i64) -> std::io::Result<()> {
        match self.file.lock() {
            Ok(mut f) => f.write(cursor),
            Err(_) => Ok(()),
        }
    }

    /// `ack`, a failure logged (the next ack writes again; the resume
    /// point on disk lags meanwhile).
    pub fn ack_or_log(&self, cursor: i64) {
        if let Err(e) = self.ack(cursor) {
            tracing::warn!(consumer = %self.name, "cursor not written: {e}");
        }
    }

    /// Starts over after `cursor` (a reset of the store, `reset=true`).
    fn restart(&self, cursor: i64) -> std::io::Result<()> {
        self.ack(cursor)
    }

    pub fn connected(&self) -> bool {
        self.session.lock().is_ok_and(|s| s.is_some())
    }
}

/// The consumers of one store.
#[derive(Debug, Default)]
pub struct Consumers {
    known: Mutex<HashMap<String, Arc<Consumer>>>,
    next_session: AtomicU64,
}

/// A consumer as listed.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(utoipa::ToSchema))]
pub struct ConsumerView {
    pub name: String,
    /// The last record it acknowledged (ns; it resumes after it).
    pub acked_timestamp: i64,
    /// Records stored after it (counted up to 100 000).
    pub lag: u64,
    /// Whether `lag` stopped counting at 100 000.
    pub lag_at_least: bool,
    pub connected: bool,
    /// When it last acknowledged anything (RFC 3339; `null`: never).
    pub last_seen: Option<String>,
    /// Messages sent to its connection and not yet acknowledged.
    pub in_flight: u64,
    /// Acks for timestamps never sent, refused.
    pub refused_acks: u64,
}

fn file_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(CURSORS_DIR)
        .join(format!("{PREFIX}{name}{SUFFIX}"))
}

impl Consumers {
    /// A connection of consumer `name` on the store in `dir`: it resumes
    /// after its last ack, or after `from` when the consumer is new or
    /// `reset`. An older connection of the same consumer is closed.
    pub fn attach(
        &self,
        dir: &Path,
        name: &str,
        from: i64,
        reset: bool,
        server_stop: &CancellationToken,
    ) -> Result<Attached, ConsumerError> {
        check_name(name)?;
        let mut known = self.known.lock().map_err(|_| ConsumerError::Poisoned)?;
        let consumer = match known.get(name) {
            Some(c) => Arc::clone(c),
            None => {
                let path = file_path(dir, name);
                if !path.exists() && count_on_disk(dir) >= MAX_CONSUMERS {
                    return Err(ConsumerError::TooMany { max: MAX_CONSUMERS });
                }
                std::fs::create_dir_all(dir.join(CURSORS_DIR))?;
                let (mut file, saved) = CursorFile::open(&path)?;
                if saved.is_none() {
                    file.write(from)?;
                    file.sync()?;
                }
                let c = Arc::new(Consumer {
                    name: name.to_string(),
                    file: Mutex::new(file),
                    session: Mutex::new(None),
                    refused_acks: AtomicU64::new(0),
                    in_flight: AtomicU64::new(0),
                });
                known.insert(name.to_string(), Arc::clone(&c));
                c
            }
        };
        drop(known);
        if reset {
            consumer.restart(from)?;
        }
        let stop = server_stop.child_token();
        let replaced = Arc::new(AtomicBool::new(false));
        let id = self.next_session.fetch_add(1, Relaxed);
        let older = consumer
            .session
            .lock()
            .map_err(|_| ConsumerError::Poisoned)?
            .replace(Session {
                id,
                stop: stop.clone(),
                replaced: Arc::clone(&replaced),
            });
        if let Some(older) = older {
            older.replaced.store(true, Relaxed);
            older.stop.cancel();
        }
        Ok(Attached {
            from: consumer.acked(),
            consumer,
            stop,
            replaced,
            session: id,
        })
    }

    /// Every consumer of the store in `dir`, by name, with its lag in
    /// `store`.
    pub fn list(&self, dir: &Path, store: &tsstore::Store) -> Vec<ConsumerView> {
        let mut names = names_on_disk(dir);
        names.sort();
        names
            .into_iter()
            .filter_map(|name| self.view(dir, store, &name).ok())
            .collect()
    }

    fn view(
        &self,
        dir: &Path,
        store: &tsstore::Store,
        name: &str,
    ) -> Result<ConsumerView, ConsumerError> {
        let saved = CursorFile::peek(&file_path(dir, name))?
            .ok_or_else(|| ConsumerError::NotFound(name.to_string()))?;
        let live = self.known.lock().ok().and_then(|k| k.get(name).cloned());
        let acked = live.as_ref().map_or(saved.cursor, |c| c.acked());
        let lag = store
            .iter_range(acked.saturating_add(1), i64::MAX)
            .with_data(false)
            .limit(MAX_LAG_COUNT)
            .filter(Result::is_ok)
            .count();
        Ok(ConsumerView {
            name: name.to_string(),
            acked_timestamp: acked,
            lag: lag as u64,
            lag_at_least: lag >= MAX_LAG_COUNT,
            connected: live.as_ref().is_some_and(|c| c.connected()),
            last_seen: (saved.seen_ns > 0).then(|| tsstore::rfc3339(saved.seen_ns)),
            in_flight: live.as_ref().map_or(0, |c| c.in_flight.load(Relaxed)),
            refused_acks: live.as_ref().map_or(0, |c| c.refused_acks.load(Relaxed)),
        })
    }

    /// One consumer, as listed.
    pub fn get(
        &self,
        dir: &Path,
        store: &tsstore::Store,
        name: &str,
    ) -> Result<ConsumerView, ConsumerError> {
        check_name(name)?;
        self.view(dir, store, name)
    }

    /// Removes a consumer: its connection is closed and its cursor
    /// forgotten (a later connection with its name starts anew).
    pub fn delete(&self, dir: &Path, name: &str) -> Result<(), ConsumerError> {
        check_name(name)?;
        let path = file_path(dir, name);
        if !path.exists() {
            return Err(ConsumerError::NotFound(name.to_string()));
        }
        let gone = self
            .known
            .lock()
            .map_err(|_| ConsumerError::Poisoned)?
            .remove(name);
        if let Some(c) = gone
            && let Ok(mut s) = c.session.lock()
            && let Some(s) = s.take()
        {
            s.stop.cancel();
        }
        std::fs::remove_file(&path)?;
        Ok(())
    }

    /// After a store reset, every consumer starts from the top.
    pub fn reset_all(&self, dir: &Path) {
        for name in names_on_disk(dir) {
            let live = self.known.lock().ok().and_then(|k| k.get(&name).cloned());
            let written = match live {
                Some(c) => c.restart(0),
                None => CursorFile::open(&file_path(dir, &name)).and_then(|(mut f, _)| f.write(0)),
            };
            if let Err(e) = written {
                tracing::warn!(consumer = %name, "cursor not reset: {e}");
            }
        }
    }
}

fn names_on_disk(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join(CURSORS_DIR)) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let name = file.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
            check_name(name).ok()?;
            Some(name.to_string())
        })
        .collect()
}

fn count_on_disk(dir: &Path) -> usize {
    names_on_disk(dir).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["a", "node-red.1", "gw_7", &"x".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "a b", "ü", &"x".repeat(65), ".."] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_consumer_resumes_and_a_new_connection_takes_over() {
        let dir = tempfile::tempdir().unwrap();
        let server = CancellationToken::new();
        let consumers = Consumers::default();
        let first = consumers
            .attach(dir.path(), "c", 10, false, &server)
            .unwrap();
        assert_eq!(first.from, 10);
        first.consumer.ack(25).unwrap();
        let second = consumers
            .attach(dir.path(), "c", 0, false, &server)
            .unwrap();
        assert!(first.stop.is_cancelled() && first.replaced.load(Relaxed));
        assert_eq!(second.from, 25, "`from` applies only to a new consumer");
        // The first one going away does not detach the second.
        drop(first);
        assert!(second.consumer.connected());
        drop(second);
        assert!(!consumers.known.lock().unwrap()["c"].connected());
        // After a restart (a new registry), the file has it.
        let again = Consumers::default();
        let third = again.attach(dir.path(), "c", 0, false, &server).unwrap();
        assert_eq!(third.from, 25);
        let reset = again.attach(dir.path(), "c", 3, true, &server).unwrap();
        assert_eq!(reset.from, 3);
        again.delete(dir.path(), "c").unwrap();
        assert!(matches!(
            again.delete(dir.path(), "c"),
            Err(ConsumerError::NotFound(_))
        ));
        assert!(reset.stop.is_cancelled());
    }

    #[test]
    fn a_store_has_a_bounded_number() {
        let dir = tempfile::tempdir().unwrap();
        let server = CancellationToken::new();
        let consumers = Consumers::default();
        for i in 0..MAX_CONSUMERS {
            consumers
                .attach(dir.path(), &format!("c{i}"), 0, false, &server)
                .unwrap();
        }
        assert!(matches!(
            consumers.attach(dir.path(), "one-more", 0, false, &server),
            Err(ConsumerError::TooMany { .. })
        ));
        // A known one still connects.
        assert!(
            consumers
                .attach(dir.path(), "c0", 0, false, &server)
                .is_ok()
        );
    }
}
