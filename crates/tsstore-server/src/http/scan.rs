//! Long reads off the async workers. A read that may touch many records
//! (a large `limit`, a filter, an aggregation) runs on the blocking pool,
//! so the workers keep serving other requests meanwhile, and it stops at
//! its next record once its request is gone (the request timeout fired or
//! the client left). Short reads stay inline: handing them to another
//! thread would cost more than they do.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{ApiError, ApiResult};

/// Reads returning at most this many records, without filter or
/// aggregation, run inline on the async worker.
pub const INLINE_READ_RECORDS: usize = 1000;

/// What a read may still do: the raw records it may read, and whether its
/// request is still waiting for it.
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
    pub fn take(&mut self) -> ApiResult<()> {
        if self.cancelled.load(Ordering::Relaxed) {
            // Nobody receives this: the request's future is already gone.
            return Err(ApiError::unavailable(
                "timeout",
                "the request was abandoned",
            ));
        }
        if self.left == 0 {
            return Err(ApiError::bad_request(
                "scan_limit_exceeded",
                format!(
                    "the aggregation would read more than {} records; narrow the time range (start_time/end_time or since)",
                    self.max
                ),
            ));
        }
        self.left -= 1;
        Ok(())
    }
}

/// Sets the flag when dropped: when the request's future is dropped
/// before the read finishes.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `read` inline when it is short, else on the blocking pool.
pub async fn run<T, F>(long: bool, read: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&AtomicBool) -> ApiResult<T> + Send + 'static,
{
    if !long {
        return read(&AtomicBool::new(false));
    }
    let cancelled = Arc::new(AtomicBool::new(false));
    let _cancel = CancelOnDrop(Arc::clone(&cancelled));
    tokio::task::spawn_blocking(move || read(&cancelled))
        .await
        .map_err(|e| ApiError::internal(format!("a read task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_counts_and_stops_when_cancelled() {
        let flag = AtomicBool::new(false);
        let mut b = Budget::new(2, &flag);
        assert!(b.take().is_ok() && b.take().is_ok());
        assert_eq!(b.take().unwrap_err().code, "scan_limit_exceeded");
        let mut b = Budget::unlimited(&flag);
        assert!(b.take().is_ok());
        flag.store(true, Ordering::Relaxed);
        assert_eq!(b.take().unwrap_err().code, "timeout");
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
                    let _ = tx.send(e.code);
                    return Ok(());
                }
                std::thread::yield_now();
            }
            Ok(())
        });
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(20), read).await;
        assert!(timed_out.is_err());
        let code = rx.recv_timeout(std::time::Duration::from_secs(20));
        assert_eq!(code.ok(), Some("timeout"));
    }
}
