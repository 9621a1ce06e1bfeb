//! The server-wide stop signal and the background tasks that obey it.
//!
//! `Shutdown` is handed to every listener and background task (a clone
//! shares the one signal). A stop (SIGINT/SIGTERM) cancels its token:
//! listeners stop accepting, tasks finish what they are doing, and
//! `Shutdown::stop` waits for them at most a bound before aborting what is
//! left. Only then are the stores synced and closed (`serve.rs`), so
//! nothing writes to a closed store.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The server-wide stop signal and the background tasks that obey it.
#[derive(Debug, Default, Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    token: CancellationToken,
    /// Running background tasks (finished ones are reaped as new ones
    /// come), so their number is that of the connections and listeners
    /// the server runs, each of which has its own bound.
    tasks: Mutex<JoinSet<()>>,
}

impl Shutdown {
    /// Cancelled when the server stops; select on `cancelled()`.
    pub fn token(&self) -> CancellationToken {
        self.inner.token.clone()
    }

    pub fn is_stopping(&self) -> bool {
        self.inner.token.is_cancelled()
    }

    /// Runs `task` until it ends or the server stops. The task should end
    /// by itself once `token()` is cancelled; `stop` aborts it otherwise.
    /// Once the server is stopping, nothing new is started.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.inner.token.is_cancelled() {
            return;
        }
        let Ok(mut tasks) = self.inner.tasks.lock() else {
            tracing::error!("background task not started: a lock was poisoned");
            return;
        };
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    /// Asks every listener and task to stop (idempotent).
    pub fn begin(&self) {
        self.inner.token.cancel();
    }

    /// Stops: cancels the token, waits up to `grace` for the background
    /// tasks to end, and aborts those still running. Returns how many had
    /// to be aborted.
    pub async fn stop(&self, grace: Duration) -> usize {
        self.begin();
        let Ok(mut tasks) = self.inner.tasks.lock().map(|mut t| std::mem::take(&mut *t)) else {
            return 0;
        };
        let deadline = tokio::time::Instant::now() + grace;
        while !tasks.is_empty() {
            match tokio::time::timeout_at(deadline, tasks.join_next()).await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    let left = tasks.len();
                    tracing::warn!(left, "background tasks did not stop in time; aborting them");
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    return left;
                }
            }
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn a_background_task_is_stopped_by_shutdown() {
        let shutdown = Shutdown::default();
        let ended = Arc::new(AtomicBool::new(false));
        let (token, flag) = (shutdown.token(), Arc::clone(&ended));
        shutdown.spawn(async move {
            // A listener-like loop: works until the stop signal.
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(1)) => {}
                }
            }
            flag.store(true, Ordering::SeqCst);
        });
        assert!(!shutdown.is_stopping());
        let aborted = shutdown.stop(Duration::from_secs(10)).await;
        assert_eq!(aborted, 0);
        assert!(
            ended.load(Ordering::SeqCst),
            "the task saw the signal and ended"
        );
    }

    #[tokio::test]
    async fn a_task_that_ignores_the_signal_is_aborted_after_the_grace() {
        let shutdown = Shutdown::default();
        struct Dropped(Arc<AtomicBool>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = Dropped(Arc::clone(&dropped));
        shutdown.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        let aborted = shutdown.stop(Duration::from_millis(20)).await;
        assert_eq!(aborted, 1);
        assert!(dropped.load(Ordering::SeqCst));
        // Nothing new starts once the server stops.
        shutdown.spawn(std::future::pending());
        assert!(shutdown.inner.tasks.lock().unwrap().is_empty());
    }
}
