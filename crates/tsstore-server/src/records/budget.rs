//! Long reads off the async workers. A read that may touch many records
//! (a large `limit`, a filter, an aggregation) runs on the blocking pool,
//! so the workers keep serving others meanwhile, and it stops at its next
//! record once whoever asked for it is gone (a timeout fired, the client
//! left). Short reads stay inline: handing them to another thread would
//! cost more than they do.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::error::{RecordError, RecordResult};
use crate::registry::TaskFailed;

/// What a read may still do: the raw records it may read, and whether its
/// caller still waits for it.
pub struct Budget<'a> {
    left: usize,
    max: usize,
    cancelled: &'a AtomicBool,
}

impl<'a> Budget<'a> {
    /// At most `max` records (aggregations).
    pub fn new(max: usize, cancelled: &'a AtomicBool) -> Budget<'a> {
        Budget {
            left: max,
            max,
            cancelled,
        }
    }

    /// As many records as the read wants (lists stop at their `limit`).
    pub fn unlimited(cancelled: &'a AtomicBool) -> Budget<'a> {
        Budget::new(usize::MAX, cancelled)
    }

    /// Accounts for one more record read.
    pub fn take(&mut self) -> RecordResult<()> {
        if self.cancelled.load(Ordering::Relaxed) {
            // Nobody receives this: the caller's future is already gone.
            return Err(RecordError::Abandoned);
        }
        if self.left == 0 {
            return Err(RecordError::ScanLimitExceeded(self.max));
        }
        self.left -= 1;
        Ok(())
    }
}

/// Sets the flag when dropped: when the caller's future is dropped before
/// the read finishes.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `read` inline when it is short, else on the blocking pool.
pub async fn run<T, F>(long: bool, read: F) -> RecordResult<T>
where
    T: Send + 'static,
    F: FnOnce(&AtomicBool) -> RecordResult<T> + Send + 'static,
{
    if !long {
        return read(&AtomicBool::new(false));
    }
    let cancelled = Arc::new(AtomicBool::new(false));
    let _cancel = CancelOnDrop(Arc::clone(&cancelled));
    tokio::task::spawn_blocking(move || read(&cancelled))
        .await
        .map_err(TaskFailed::from)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_counts_and_stops_when_cancelled() {
        let flag = AtomicBool::new(false);
        let mut b = Budget::new(2, &flag);
        assert!(b.take().is_ok() && b.take().is_ok());
        assert!(matches!(b.take(), Err(RecordError::ScanLimitExceeded(2))));
        let mut b = Budget::unlimited(&flag);
        assert!(b.take().is_ok());
        flag.store(true, Ordering::Relaxed);
        assert!(matches!(b.take(), Err(RecordError::Abandoned)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn dropping_a_long_read_cancels_it() {
        let (tx, rx) = std::sync::mpsc::channel();
        let read = run(true, move |cancelled| {
            let mut b = Budget::unlimited(cancelled);
            // Reads until cancelled; bounded so a broken cancel fails the test.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if let Err(e) = b.take() {
                    let _ = tx.send(matches!(e, RecordError::Abandoned));
                    return Ok(());
                }
                std::thread::yield_now();
            }
            Ok(())
        });
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(20), read).await;
        assert!(timed_out.is_err());
        let abandoned = rx.recv_timeout(std::time::Duration::from_secs(20));
        assert_eq!(abandoned.ok(), Some(true));
    }
}
